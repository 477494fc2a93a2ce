//! `/access/{accessToken}`: the end user's side of one session. The token is
//! the only credential, so a malformed or unknown one is a plain `404`.

use korala_domain::JsonMap;
use korala_domain::limits::Bucket;
use korala_domain::session::Session;
use lambda_http::Request;
use serde::Deserialize;

use super::views::AccessView;
use super::{mutate, read};
use crate::app::App;
use crate::crypto::{looks_like_token, token_hash};
use crate::evaluation::offloaded;
use crate::http::{ApiError, ApiResult, Reply, admission, json_body, path_param};

/// The token's hash, after metering the request against the token's own
/// allowance (a malformed token names no session and costs no store read,
/// so it is not metered).
async fn token_digest(app: &App, req: &Request) -> Result<Option<String>, ApiError> {
    let token = path_param(req, "accessToken")?;
    let Some(hash) = looks_like_token(&token).then(|| token_hash(&token)) else {
        return Ok(None);
    };
    admission::admit(app, &Bucket::access_token(&hash), app.settings.access_rate).await?;
    Ok(Some(hash))
}

async fn load(app: &App, digest: &Option<String>) -> Result<Option<Session>, ApiError> {
    match digest {
        Some(hash) => Ok(app.store.find_session_by_token_hash(hash).await?),
        None => Ok(None),
    }
}

pub async fn get(app: &App, req: Request) -> ApiResult {
    let digest = token_digest(app, &req).await?;
    let session = read(app, || load(app, &digest)).await?;
    Reply::ok(&AccessView::new(&session))
}

pub async fn start(app: &App, req: Request) -> ApiResult {
    let digest = token_digest(app, &req).await?;
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
    let digest = token_digest(app, &req).await?;
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
