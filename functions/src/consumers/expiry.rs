//! The expiry sweep: sessions whose deadline passed while they waited for the
//! end user become `expired`. Reads also expire overdue sessions, so the sweep
//! only makes the status (and the `session_expired` event) timely.

use korala_domain::ports::StoreError;

use crate::app::App;

/// Expires up to `limit` due sessions; returns how many it expired. A session
/// that changed since it was read (completed meanwhile, say) is left to the
/// next sweep, which re-reads it.
pub async fn sweep(app: &App, limit: u32) -> Result<usize, StoreError> {
    sweep_batch(app, limit).await.map(|(_, expired)| expired)
}

/// What one scheduled run did.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub due: usize,
    pub expired: usize,
}

const BATCH: u32 = 100;

/// The scheduled sweep (the `expiry-sweeper` function, on an EventBridge
/// schedule): batches until no full batch of due sessions is left or
/// `budget` is spent, so a backlog drains over a few runs. A store failure
/// fails the invocation, so the schedule's retry policy sees it.
pub async fn run(app: &App, budget: std::time::Duration) -> Result<SweepReport, StoreError> {
    let started = std::time::Instant::now();
    let mut report = SweepReport::default();
    loop {
        let (due, expired) = sweep_batch(app, BATCH).await?;
        report.due += due;
        report.expired += expired;
        if due < BATCH as usize || started.elapsed() >= budget || expired == 0 {
            tracing::info!(due = report.due, expired = report.expired, "expiry sweep");
            return Ok(report);
        }
    }
}

/// One batch: (sessions found due, sessions expired).
async fn sweep_batch(app: &App, limit: u32) -> Result<(usize, usize), StoreError> {
    let now = app.clock.now();
    let mut expired = 0;
    let due = app.store.sessions().due(now, limit).await?;
    let found = due.len();
    for session in due {
        let transition = match session.expire(now, app.ids.as_ref()) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(session = %session.id, error = %e, "cannot expire session");
                continue;
            }
        };
        match app.store.sessions().commit(&transition).await {
            Ok(()) => expired += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((found, expired))
}
