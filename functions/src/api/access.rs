//! `/access/{accessToken}`: the end user's side of one session. The token is
//! the only credential, so a malformed or unknown one is a plain `404`.

use korala_domain::JsonMap;
use korala_domain::session::Session;
use lambda_http::Request;
use serde::Deserialize;

use super::documents;
use super::views::AccessView;
use super::{mutate, read};
use crate::app::App;
use crate::evaluation::offloaded;
use crate::web::auth::EndUser;
use crate::web::{ApiError, ApiResult, Reply, json_body, path_param};

pub(crate) async fn load(app: &App, user: &EndUser) -> Result<Option<Session>, ApiError> {
    Ok(app.store.sessions().find_by_token_hash(&user.token_hash).await?)
}

pub async fn get(app: &App, user: EndUser, _req: Request) -> ApiResult {
    let session = read(app, || load(app, &user)).await?;
    Reply::ok(&AccessView::new(&session))
}

pub async fn start(app: &App, user: EndUser, _req: Request) -> ApiResult {
    let session = mutate(
        app,
        || load(app, &user),
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

pub async fn submit(app: &App, user: EndUser, req: Request) -> ApiResult {
    let workflow = path_param(&req, "sessionWorkflowId")?;
    let body: Submission = json_body(app, &req)?;
    let submission = documents::Submission {
        app: app.clone(),
        workflow,
        data: std::sync::Arc::new(body.data),
    };
    let session = mutate(app, || load(app, &user), submission).await?;
    Reply::ok(&AccessView::new(&session))
}
