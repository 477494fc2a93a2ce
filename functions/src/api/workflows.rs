//! `/workflows`: the built-in workflow definitions and the organisation's own
//! (which may override a built-in by slug).

use korala_domain::builtin;
use korala_domain::ports::StoreError;
use korala_domain::workflow::{StoredWorkflow, WorkflowDraft};
use lambda_http::Request;
use serde_json::json;

use super::on_the_latest;
use super::views::WorkflowView;
use crate::app::App;
use crate::web::auth::Caller;
use crate::web::idempotency::records::Creation;
use crate::web::{ApiError, ApiResult, Reply, idempotency, json_body, path_param};

pub async fn list(app: &App, caller: Caller, _req: Request) -> ApiResult {
    let own = app.store.workflows().list(&caller.tenant).await?;
    let mut data: Vec<WorkflowView> = builtin::all()
        .iter()
        .filter(|b| !own.iter().any(|w| w.definition.slug == b.slug))
        .map(WorkflowView::builtin)
        .collect();
    data.extend(own.iter().map(WorkflowView::stored));
    Reply::ok(&json!({ "data": data }))
}

pub async fn get(app: &App, caller: Caller, req: Request) -> ApiResult {
    let slug = path_param(&req, "slug")?;
    if let Some(own) = app.store.workflows().get(&caller.tenant, &slug).await? {
        return Reply::ok(&WorkflowView::stored(&own));
    }
    let builtin = builtin::get(&slug).ok_or(ApiError::NotFound("workflow"))?;
    Reply::ok(&WorkflowView::builtin(builtin))
}

pub async fn create(app: &App, caller: Caller, req: Request) -> ApiResult {
    idempotency::once(app, &caller, &req, |keyed| async {
        let draft: WorkflowDraft = json_body(app, &req)?;
        let definition = draft.validate(None, app.settings.webhook_urls)?;
        let now = app.clock.now();
        let stored = StoredWorkflow {
            tenant: caller.tenant.clone(),
            definition,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let location = format!("/api/v1/workflows/{}", stored.definition.slug);
        let reply = Reply::created(&WorkflowView::stored(&stored), location)?;
        match keyed.create(app, Creation::Workflow(&stored), &reply).await {
            Err(StoreError::AlreadyExists) => Err(ApiError::SlugTaken(stored.definition.slug.clone())),
            other => other.map_err(ApiError::from),
        }?;
        Ok(reply)
    })
    .await
}

/// Replaces the organisation's definition; for a built-in slug, creates the
/// organisation's override.
pub async fn update(app: &App, caller: Caller, req: Request) -> ApiResult {
    let slug = path_param(&req, "slug")?;
    let draft: WorkflowDraft = json_body(app, &req)?;
    let definition = draft.validate(Some(&slug), app.settings.webhook_urls)?;
    let (caller, slug, definition) = (&caller, &slug, &definition);
    let stored = on_the_latest("workflow", || async move {
        let now = app.clock.now();
        let result = match app.store.workflows().get(&caller.tenant, slug).await? {
            Some(current) => {
                let next = StoredWorkflow {
                    definition: definition.clone(),
                    updated_at: now,
                    version: current.version + 1,
                    ..current
                };
                app.store.workflows().update(&next).await.map(|()| next)
            }
            None if builtin::get(slug).is_some() => {
                let next = StoredWorkflow {
                    tenant: caller.tenant.clone(),
                    definition: definition.clone(),
                    created_at: now,
                    updated_at: now,
                    version: 1,
                };
                app.store.workflows().insert(&next).await.map(|()| next)
            }
            None => return Err(ApiError::NotFound("workflow")),
        };
        // Another writer created, replaced or restored this slug since it
        // was read: each is a lost race, met with the state it left.
        result.map_err(|error| match error {
            StoreError::AlreadyExists | StoreError::NotFound => ApiError::Store(StoreError::Conflict),
            other => other.into(),
        })
    })
    .await?;
    Reply::ok(&WorkflowView::stored(&stored))
}

/// Deletes the organisation's definition (a built-in it overrode comes back).
/// A definition that a configuration uses cannot go: new sessions of that
/// configuration would have nothing to run.
pub async fn delete(app: &App, caller: Caller, req: Request) -> ApiResult {
    let slug = path_param(&req, "slug")?;
    if app.store.workflows().get(&caller.tenant, &slug).await?.is_none() {
        return Err(match builtin::get(&slug) {
            Some(_) => ApiError::BuiltinWorkflow(slug),
            None => ApiError::NotFound("workflow"),
        });
    }
    if builtin::get(&slug).is_none() {
        ensure_unused(app, &caller, &slug).await?;
    }
    match app.store.workflows().delete(&caller.tenant, &slug).await {
        Ok(()) => Ok(Reply::no_content()),
        Err(StoreError::NotFound) => Err(ApiError::NotFound("workflow")),
        Err(e) => Err(e.into()),
    }
}

async fn ensure_unused(app: &App, caller: &Caller, slug: &str) -> Result<(), ApiError> {
    let configs = app.store.configurations().list(&caller.tenant).await?;
    match configs
        .iter()
        .find(|c| c.bindings.iter().any(|b| b.workflow_slug == slug))
    {
        Some(config) => Err(ApiError::WorkflowInUse(slug.to_owned(), config.slug.clone())),
        None => Ok(()),
    }
}
