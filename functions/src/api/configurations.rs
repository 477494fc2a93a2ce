//! `/session-configurations`: the organisation's session blueprints.

use korala_domain::configuration::{ConfigurationDraft, ConfigurationPatch};
use korala_domain::ports::StoreError;
use lambda_http::Request;
use serde_json::json;

use super::catalog;
use super::views::ConfigurationView;
use super::{gone_is_not_found, on_the_latest};
use crate::app::App;
use crate::web::auth::Caller;
use crate::web::idempotency::records::Creation;
use crate::web::{ApiError, ApiResult, Reply, idempotency, json_body, path_param};

pub async fn create(app: &App, caller: Caller, req: Request) -> ApiResult {
    idempotency::once(app, &caller, &req, |keyed| async {
        let draft: ConfigurationDraft = json_body(app, &req)?;
        let catalog = catalog(app, &caller.tenant).await?;
        let config = draft.validate(caller.tenant.clone(), &catalog, app.clock.now())?;
        let location = format!("/api/v1/session-configurations/{}", config.slug);
        let reply = Reply::created(&ConfigurationView::from(&config), location)?;
        match keyed.create(app, Creation::Configuration(&config), &reply).await {
            Err(StoreError::AlreadyExists) => Err(ApiError::SlugTaken(config.slug.clone())),
            other => other.map_err(ApiError::from),
        }?;
        Ok(reply)
    })
    .await
}

pub async fn list(app: &App, caller: Caller, _req: Request) -> ApiResult {
    let configs = app.store.configurations().list(&caller.tenant).await?;
    let data: Vec<ConfigurationView> = configs.iter().map(ConfigurationView::from).collect();
    Reply::ok(&json!({ "data": data }))
}

pub async fn get(app: &App, caller: Caller, req: Request) -> ApiResult {
    let slug = path_param(&req, "slug")?;
    let config = app
        .store
        .configurations()
        .get(&caller.tenant, &slug)
        .await?
        .ok_or(ApiError::NotFound("configuration"))?;
    Reply::ok(&ConfigurationView::from(&config))
}

pub async fn update(app: &App, caller: Caller, req: Request) -> ApiResult {
    let slug = path_param(&req, "slug")?;
    let patch: ConfigurationPatch = json_body(app, &req)?;
    let catalog = catalog(app, &caller.tenant).await?;
    let (caller, slug, patch, catalog) = (&caller, &slug, &patch, &catalog);
    let updated = on_the_latest("configuration", || async move {
        let current = app
            .store
            .configurations()
            .get(&caller.tenant, slug)
            .await?
            .ok_or(ApiError::NotFound("configuration"))?;
        let updated = current.patch(patch.clone(), catalog, app.clock.now())?;
        app.store
            .configurations()
            .update(&updated)
            .await
            .map_err(gone_is_not_found("configuration"))?;
        Ok(updated)
    })
    .await?;
    Reply::ok(&ConfigurationView::from(&updated))
}

pub async fn delete(app: &App, caller: Caller, req: Request) -> ApiResult {
    let slug = path_param(&req, "slug")?;
    match app.store.configurations().delete(&caller.tenant, &slug).await {
        Ok(()) => Ok(Reply::no_content()),
        Err(StoreError::NotFound) => Err(ApiError::NotFound("configuration")),
        Err(e) => Err(e.into()),
    }
}
