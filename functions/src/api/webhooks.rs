//! `/webhook-endpoints`: where an organisation receives its session events.
//! The signing secret is shown once, when the endpoint is created; the store
//! keeps it sealed.

use korala_domain::ids::WebhookEndpointId;
use korala_domain::ports::StoreError;
use korala_domain::webhooks::{WebhookEndpoint, WebhookEndpointDraft, WebhookEndpointPatch};
use lambda_http::Request;
use serde_json::json;

use super::views::WebhookEndpointView;
use super::{gone_is_not_found, on_the_latest};
use crate::adapters::standard_webhooks::SigningSecret;
use crate::app::App;
use crate::web::auth::Caller;
use crate::web::idempotency::records::Creation;
use crate::web::{ApiError, ApiResult, Reply, idempotency, json_body, path_param};

pub async fn create(app: &App, caller: Caller, req: Request) -> ApiResult {
    idempotency::once(app, &caller, &req, |keyed| async {
        let draft: WebhookEndpointDraft = json_body(app, &req)?;
        // The store counts endpoints against the tenant's quota as it
        // writes one (`limit_reached`).
        let secret = SigningSecret::generate();
        let id = WebhookEndpointId::generate(app.ids.as_ref());
        let policy = app.settings.webhook_urls;
        let endpoint = draft.validate(
            id,
            caller.tenant.clone(),
            app.sealer.seal(&secret),
            policy,
            app.clock.now(),
        )?;
        let location = format!("/api/v1/webhook-endpoints/{}", endpoint.id);
        let reply = Reply::created(&WebhookEndpointView::with_secret(&endpoint, &secret), location)?;
        keyed.create(app, Creation::WebhookEndpoint(&endpoint), &reply).await?;
        Ok(reply)
    })
    .await
}

pub async fn list(app: &App, caller: Caller, _req: Request) -> ApiResult {
    let endpoints = app.store.endpoints().list(&caller.tenant).await?;
    let data: Vec<WebhookEndpointView> = endpoints.iter().map(WebhookEndpointView::new).collect();
    Reply::ok(&json!({ "data": data }))
}

async fn load(app: &App, caller: &Caller, req: &Request) -> Result<WebhookEndpoint, ApiError> {
    let id = WebhookEndpointId::parse(&path_param(req, "id")?).ok_or(ApiError::NotFound("webhook endpoint"))?;
    app.store
        .endpoints()
        .get(&caller.tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("webhook endpoint"))
}

pub async fn get(app: &App, caller: Caller, req: Request) -> ApiResult {
    Reply::ok(&WebhookEndpointView::new(&load(app, &caller, &req).await?))
}

pub async fn update(app: &App, caller: Caller, req: Request) -> ApiResult {
    let patch: WebhookEndpointPatch = json_body(app, &req)?;
    patch.validate(app.settings.webhook_urls)?;
    let (caller, req, patch) = (&caller, &req, &patch);
    let updated = on_the_latest("webhook endpoint", || async move {
        let current = load(app, caller, req).await?;
        let updated = current.apply(patch.clone(), app.settings.webhook_urls, app.clock.now())?;
        app.store
            .endpoints()
            .update(&updated)
            .await
            .map_err(gone_is_not_found("webhook endpoint"))?;
        Ok(updated)
    })
    .await?;
    Reply::ok(&WebhookEndpointView::new(&updated))
}

pub async fn delete(app: &App, caller: Caller, req: Request) -> ApiResult {
    let endpoint = load(app, &caller, &req).await?;
    match app.store.endpoints().delete(&caller.tenant, &endpoint.id).await {
        Ok(()) => Ok(Reply::no_content()),
        Err(StoreError::NotFound) => Err(ApiError::NotFound("webhook endpoint")),
        Err(e) => Err(e.into()),
    }
}
