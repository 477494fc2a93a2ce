//! The expiry sweep: sessions whose deadline passed while they waited for the
//! end user become `expired`. Reads also expire overdue sessions, so the sweep
//! only makes the status (and the `session_expired` event) timely.

use korala_domain::ports::StoreError;

use crate::app::App;

/// Expires up to `limit` due sessions; returns how many it expired. A session
/// that changed since it was read (completed meanwhile, say) is left to the
/// next sweep, which re-reads it.
pub async fn sweep(app: &App, limit: u32) -> Result<usize, StoreError> {
    let now = app.clock.now();
    let mut expired = 0;
    for session in app.store.sessions_due(now, limit).await? {
        let transition = match session.expire(now, app.ids.as_ref()) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(session = %session.id, error = %e, "cannot expire session");
                continue;
            }
        };
        match app.store.commit(&transition).await {
            Ok(()) => expired += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(expired)
}
