//! `/access/{accessToken}`: the end user's side of one session. The token is
//! the only credential, so a malformed or unknown one is a plain `404`.

use korala_domain::JsonMap;
use korala_domain::session::Session;
use lambda_http::Request;
use serde::Deserialize;

use super::views::AccessView;
use super::{mutate, read};
use crate::app::App;
use crate::crypto::{looks_like_token, token_hash};
use crate::evaluation::offloaded;
use crate::http::{ApiError, ApiResult, Reply, json_body, path_param};

fn token_digest(req: &Request) -> Result<Option<String>, ApiError> {
    let token = path_param(req, "accessToken")?;
    Ok(looks_like_token(&token).then(|| token_hash(&token)))
}

async fn load(app: &App, digest: &Option<String>) -> Result<Option<Session>, ApiError> {
    match digest {
        Some(hash) => Ok(app.store.find_session_by_token_hash(hash).await?),
        None => Ok(None),
    }
}

pub async fn get(app: &App, req: Request) -> ApiResult {
    let digest = token_digest(&req)?;
    let session = read(app, || load(app, &digest)).await?;
    Reply::ok(&AccessView::new(&session))
}

pub async fn start(app: &App, req: Request) -> ApiResult {
    let digest = token_digest(&req)?;
    let session = mutate(
        app,
        || load(app, &digest),
        offloaded(app, |app, s| s.start(app.clock.now(), app.ids.as_ref())),
    )
    .await?;
    Reply::ok(&AccessView::new(&session))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    data: JsonMap,
}

pub async fn submit(app: &App, req: Request) -> ApiResult {
    let digest = token_digest(&req)?;
    let workflow = path_param(&req, "sessionWorkflowId")?;
    let body: Submission = json_body(app, &req)?;
    let session = mutate(
        app,
        || load(app, &digest),
        offloaded(app, move |app, s| {
            s.submit(&workflow, &body.data, app.clock.now(), app.ids.as_ref())
                .map(Some)
        }),
    )
    .await?;
    Reply::ok(&AccessView::new(&session))
}
