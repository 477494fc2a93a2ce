//! The endpoint handlers. Each parses, authenticates, calls the domain,
//! persists with a conditional write and answers; nothing more.

pub mod access;
pub mod configurations;
pub mod deliveries;
pub mod openapi;
pub mod sessions;
pub mod views;
pub mod webhooks;
pub mod workflows;

use korala_domain::catalog::Catalog;
use korala_domain::ports::StoreError;
use korala_domain::session::Session;
use korala_domain::tenancy::Tenant;

use crate::app::App;
use crate::http::ApiError;

/// How often a mutation re-reads and re-applies after losing a race before
/// answering `409 conflict`.
const CONFLICT_RETRIES: usize = 3;

/// The workflow definitions the tenant can use: the built-ins and its own.
pub(crate) async fn catalog(app: &App, tenant: &Tenant) -> Result<Catalog, ApiError> {
    let custom = app.store.list_workflows(tenant).await?;
    Ok(Catalog::new(custom.into_iter().map(|w| w.definition)))
}

/// Applies `change` to the freshest session, conditional on the version read.
/// A lost race is retried against the new state (the domain re-checks the
/// request there); after a few losses the client gets `409 conflict`.
///
/// An overdue session is expired first (and that is committed on its own),
/// so correctness never depends on the expiry sweep having run.
pub(crate) async fn mutate<L, LFut, C>(app: &App, load: L, change: C) -> Result<Session, ApiError>
where
    L: Fn() -> LFut,
    LFut: std::future::Future<Output = Result<Option<Session>, ApiError>>,
    C: crate::evaluation::Change,
{
    for _ in 0..CONFLICT_RETRIES {
        let Some(session) = load().await? else {
            return Err(ApiError::NotFound("session"));
        };
        let session = match expire_if_overdue(app, session).await {
            Ok(session) => session,
            Err(ApiError::Store(StoreError::Conflict)) => continue,
            Err(e) => return Err(e),
        };
        let Some(transition) = change.apply(&session).await? else {
            return Ok(session);
        };
        match app.store.commit(&transition).await {
            Ok(()) => return Ok(transition.session),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict(
        "the session changed while this request was applied; retry it".into(),
    ))
}

/// The session as it stands now: an overdue one is expired (and committed).
pub(crate) async fn read<L, LFut>(app: &App, load: L) -> Result<Session, ApiError>
where
    L: Fn() -> LFut,
    LFut: std::future::Future<Output = Result<Option<Session>, ApiError>>,
{
    mutate(app, load, crate::evaluation::Unchanged).await
}

async fn expire_if_overdue(app: &App, session: Session) -> Result<Session, ApiError> {
    match session.expire(app.clock.now(), app.ids.as_ref())? {
        None => Ok(session),
        Some(transition) => {
            app.store.commit(&transition).await?;
            Ok(transition.session)
        }
    }
}
