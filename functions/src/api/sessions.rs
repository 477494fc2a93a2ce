//! `/sessions`: creating cases, reading them, and the partner's decisions.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use korala_domain::ids::SessionId;
use korala_domain::ports::{Position, SessionQuery};
use korala_domain::session::{Decision, Origin, Session, SessionDraft, SessionStatus};
use korala_domain::tenancy::Tenant;
use korala_domain::transition::Transition;
use korala_domain::{DomainError, FieldErrors};
use lambda_http::Request;
use serde::Deserialize;
use serde_json::json;

use super::views::{SessionView, event, session_summary};
use super::{catalog, mutate, read};
use crate::app::App;
use crate::evaluation::offloaded;
use crate::web::auth::Caller;
use crate::web::idempotency::records::Creation;
use crate::web::{ApiError, ApiResult, Reply, idempotency, json_body, number_param, path_param, query};

pub const MAX_LIMIT: u32 = 100;
pub const DEFAULT_LIMIT: u32 = 10;

pub async fn create(app: &App, caller: Caller, req: Request) -> ApiResult {
    idempotency::once(app, &caller, &req, |keyed| async {
        let draft: SessionDraft = json_body(app, &req)?;
        let configuration = app
            .store
            .configurations()
            .get(&caller.tenant, &draft.configuration_slug)
            .await?
            .ok_or_else(|| FieldErrors::single("configurationSlug", "no configuration with this slug exists"))?;
        let catalog = catalog(app, &caller.tenant).await?;
        let (_, access_token) = app.sealer.new_access_token();
        let origin = Origin {
            access_token,
            configuration: &configuration,
            catalog: &catalog,
        };
        let transition = Session::create(draft, origin, caller.actor(), app.clock.now(), app.ids.as_ref())?;
        let session = &transition.session;
        let reply = Reply::created(
            &SessionView::new(session, &app.sealer),
            format!("/api/v1/sessions/{}", session.id),
        )?;
        keyed.create(app, Creation::Session(&transition), &reply).await?;
        Ok(reply)
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListParams {
    external_user_id: Option<String>,
    status: Option<String>,
    page: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list(app: &App, caller: Caller, req: Request) -> ApiResult {
    let params: ListParams = query(&req)?;
    let mut errors = FieldErrors::new();
    let status = params.status.as_deref().and_then(|s| {
        let status = SessionStatus::parse(s);
        if status.is_none() {
            let all: Vec<&str> = SessionStatus::ALL.iter().map(|s| s.as_str()).collect();
            errors.push("status", format!("must be one of: {}", all.join(", ")));
        }
        status
    });
    let limit = number_param(
        &mut errors,
        "limit",
        params.limit.as_deref(),
        DEFAULT_LIMIT,
        1..=MAX_LIMIT,
    );
    let page = number_param(&mut errors, "page", params.page.as_deref(), 1, 1..=10_000);
    let position = match (params.cursor.as_deref(), params.page.is_some()) {
        (Some(_), true) => {
            errors.push("cursor", "give either page or cursor, not both");
            Position::Page(1)
        }
        (Some(cursor), false) => match decode_cursor(&caller.tenant, cursor) {
            Some(after) => Position::After(after),
            None => {
                errors.push("cursor", "is not a cursor this API returned");
                Position::Page(1)
            }
        },
        (None, _) => Position::Page(page),
    };
    if let Some(id) = &params.external_user_id
        && (id.is_empty() || id.len() > 255)
    {
        errors.push("externalUserId", "must be 1 to 255 characters");
    }
    let query = errors.finish(SessionQuery {
        external_user_id: params.external_user_id,
        status,
        limit,
        position,
    })?;
    let result = app.store.sessions().list(&caller.tenant, &query).await?;
    let now = app.clock.now();
    let next_cursor = match (result.has_more, result.sessions.last()) {
        (true, Some(last)) => Some(encode_cursor(&caller.tenant, &last.id)),
        _ => None,
    };
    let data: Vec<serde_json::Value> = result.sessions.iter().map(|s| session_summary(s, now)).collect();
    let page = match query.position {
        Position::Page(page) => Some(page),
        Position::After(_) => None,
    };
    Reply::ok(
        &json!({ "data": data, "page": page, "limit": limit, "hasMore": result.has_more, "nextCursor": next_cursor }),
    )
}

/// Cursors are opaque to partners and bound to the organisation that got them.
/// A cursor names its tenant, so one from another organisation or the
/// other mode is refused rather than positioning a listing.
fn encode_cursor(tenant: &Tenant, after: &SessionId) -> String {
    URL_SAFE_NO_PAD.encode(format!("{tenant}|{after}"))
}

fn decode_cursor(tenant: &Tenant, cursor: &str) -> Option<SessionId> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (cursor_tenant, after) = raw.split_once('|')?;
    (cursor_tenant == tenant.to_string())
        .then(|| SessionId::parse(after))
        .flatten()
}

async fn load(app: &App, caller: &Caller, id: &Option<SessionId>) -> Result<Option<Session>, ApiError> {
    match id {
        Some(id) => Ok(app.store.sessions().get(&caller.tenant, id).await?),
        None => Ok(None),
    }
}

fn session_id(req: &Request) -> Result<Option<SessionId>, ApiError> {
    Ok(SessionId::parse(&path_param(req, "id")?))
}

pub async fn get(app: &App, caller: Caller, req: Request) -> ApiResult {
    let id = session_id(&req)?;
    let session = read(app, || load(app, &caller, &id)).await?;
    Reply::ok(&SessionView::new(&session, &app.sealer))
}

pub async fn events(app: &App, caller: Caller, req: Request) -> ApiResult {
    let id = session_id(&req)?.ok_or(ApiError::NotFound("session"))?;
    let (session, mut history) = app
        .store
        .sessions()
        .get_with_events(&caller.tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("session"))?;
    // An overdue session expires on read; its history then gains the event.
    if session.is_overdue(app.clock.now()) {
        let id = Some(id);
        let session = read(app, || load(app, &caller, &id)).await?;
        history = app.store.sessions().list_events(&caller.tenant, &session.id).await?;
    }
    let data: Vec<serde_json::Value> = history.iter().map(event).collect();
    Reply::ok(&json!({ "data": data }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResolveBody {
    resolution: Decision,
    #[serde(default)]
    reason: String,
}

pub async fn resolve(app: &App, caller: Caller, req: Request) -> ApiResult {
    decide(app, caller, req, |app, session, body: &ResolveBody, caller| {
        session.resolve(
            body.resolution,
            &body.reason,
            caller.actor(),
            app.clock.now(),
            app.ids.as_ref(),
        )
    })
    .await
}

/// A partner's decision on a session: the body read, the domain transition
/// applied to the freshest version of the organisation's session (re-applied
/// after a lost race), and the session answered.
async fn decide<B, F>(app: &App, caller: Caller, req: Request, change: F) -> ApiResult
where
    B: serde::de::DeserializeOwned + Send + Sync + 'static,
    F: Fn(&App, &Session, &B, &Caller) -> Result<Transition, DomainError> + Send + Sync + 'static,
{
    let id = session_id(&req)?;
    let body: B = json_body(app, &req)?;
    let who = caller.clone();
    let session = mutate(
        app,
        || load(app, &caller, &id),
        offloaded(app, move |app, s| change(app, s, &body, &who).map(Some)),
    )
    .await?;
    Reply::ok(&SessionView::new(&session, &app.sealer))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReviewBody {
    decision: Decision,
    #[serde(default)]
    reason: String,
}

pub async fn review(app: &App, caller: Caller, req: Request) -> ApiResult {
    let workflow = path_param(&req, "sessionWorkflowId")?;
    decide(app, caller, req, move |app, session, body: &ReviewBody, caller| {
        let now = app.clock.now();
        session.review(
            &workflow,
            body.decision,
            &body.reason,
            caller.actor(),
            now,
            app.ids.as_ref(),
        )
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

pub async fn resubmit(app: &App, caller: Caller, req: Request) -> ApiResult {
    let workflow = path_param(&req, "sessionWorkflowId")?;
    decide(app, caller, req, move |app, session, _: &Empty, caller| {
        session.resubmit(&workflow, caller.actor(), app.clock.now(), app.ids.as_ref())
    })
    .await
}
