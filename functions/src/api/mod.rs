//! The endpoint handlers. Each parses, authenticates, calls the domain,
//! persists with a conditional write and answers; nothing more.

pub mod access;
pub mod configurations;
pub mod deliveries;
pub mod documents;
pub mod openapi;
pub mod routes;
pub mod sessions;
pub mod views;
pub mod webhooks;
pub mod workflows;

use korala_domain::catalog::Catalog;
use korala_domain::ports::StoreError;
use korala_domain::session::Session;
use korala_domain::tenancy::Tenant;

use crate::app::App;
use crate::web::ApiError;

/// How often a mutation re-reads and re-applies after losing a race before
/// answering `409 conflict`.
const CONFLICT_RETRIES: usize = 3;

/// The workflow definitions the tenant can use: the built-ins and its own.
pub(crate) async fn catalog(app: &App, tenant: &Tenant) -> Result<Catalog, ApiError> {
    let custom = app.store.workflows().list(tenant).await?;
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
    C: crate::evaluation::Mutation,
{
    let (load, change) = (&load, &change);
    on_the_latest("session", || async move {
        let session = load().await?.ok_or(ApiError::NotFound("session"))?;
        let session = expire_if_overdue(app, session).await?;
        let Some(transition) = change.apply(&session).await? else {
            return Ok(session);
        };
        app.store.sessions().commit(&transition).await?;
        Ok(transition.session)
    })
    .await
}

/// Runs `attempt` (read a record, change it, write it conditional on the
/// version read) until it does not lose a race: an attempt that ends in
/// `StoreError::Conflict` runs again against the new state, which the
/// domain checks the request against anew; after `CONFLICT_RETRIES` lost
/// races the client gets `409 conflict`, naming `what` changed.
pub(crate) async fn on_the_latest<T, A, Fut>(what: &str, mut attempt: A) -> Result<T, ApiError>
where
    A: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    for _ in 0..CONFLICT_RETRIES {
        match attempt().await {
            Err(ApiError::Store(StoreError::Conflict)) => continue,
            done => return done,
        }
    }
    Err(ApiError::Conflict(format!(
        "the {what} changed while this request was applied; retry it"
    )))
}

/// A store error of a write to a record the request named: gone since it
/// was read is the client's `404`, as if it had never been there.
pub(crate) fn gone_is_not_found(what: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |error| match error {
        StoreError::NotFound => ApiError::NotFound(what),
        other => other.into(),
    }
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
            app.store.sessions().commit(&transition).await?;
            Ok(transition.session)
        }
    }
}
