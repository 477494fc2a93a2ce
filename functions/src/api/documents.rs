//! Documents: the end user's uploads, which go straight to storage, and the
//! partner's downloads, which come straight from it. A submission naming
//! uploads is handled by [`submit`]: each file is read back from storage
//! and inspected (its type by content, its size, its pages) before the
//! domain claims it, and copied to its document's key only once the
//! domain has accepted the submission.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use http::StatusCode;
use korala_domain::documents::{Files, Inspected, MAX_FILE_BYTES, Upload, UploadRequest};
use korala_domain::ids::{DocumentId, SessionId};
use korala_domain::ports::{DocumentStorage, StorageError};
use korala_domain::session::Session;
use korala_domain::transition::Transition;
use lambda_http::Request;
use serde::Serialize;

use super::mutate;
use crate::app::App;
use crate::evaluation::{Mutation, offloaded};
use crate::web::auth::{Caller, EndUser};
use crate::web::{ApiError, ApiResult, Reply, json_body, path_param};

/// `POST /access/{token}/workflows/{swf}/uploads`: the session records the
/// upload, then storage signs a URL for exactly that file.
pub async fn upload(app: &App, user: EndUser, req: Request) -> ApiResult {
    let workflow = path_param(&req, "sessionWorkflowId")?;
    let request: UploadRequest = json_body(app, &req)?;
    // The key's secret part: 128 random bits, minted once so a retried
    // write names the same key.
    let secret = hex::encode(rand::random::<[u8; 16]>());
    let ask = (request.clone(), secret.clone());
    let session = mutate(
        app,
        || super::access::load(app, &user),
        offloaded(app, move |app, s| {
            let (request, secret) = &ask;
            let (transition, _) = s.request_upload(&workflow, request, secret, app.clock.now(), app.ids.as_ref())?;
            Ok(Some(transition))
        }),
    )
    .await?;
    let upload = session
        .uploads
        .iter()
        .find(|u| u.object_key.ends_with(&secret))
        .ok_or_else(|| ApiError::Internal("the recorded upload is missing".into()))?;
    let target = app
        .documents()?
        .upload_url(
            &upload.object_key,
            &upload.content_type,
            upload.size,
            app.clock.now(),
            upload.expires_at,
        )
        .await?;
    Reply::json(
        StatusCode::CREATED,
        &UploadTargetView {
            upload_id: upload.id.as_str(),
            method: "PUT",
            url: &target.url,
            headers: &target.headers,
            expires_at: upload.expires_at,
        },
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UploadTargetView<'a> {
    upload_id: &'a str,
    method: &'static str,
    url: &'a str,
    headers: &'a std::collections::BTreeMap<String, String>,
    expires_at: korala_domain::Timestamp,
}

/// What storage holds for each upload the submission names, inspected.
/// Nothing stored is left out (the domain says the file has not been
/// uploaded); a file refused for what it is carries the refusal.
pub(crate) async fn found(app: &App, uploads: &[Upload]) -> Result<Files, ApiError> {
    let mut files = Files::new();
    if uploads.is_empty() {
        return Ok(files);
    }
    let storage = app.documents()?;
    for upload in uploads {
        let bytes = match storage.read(&upload.object_key, MAX_FILE_BYTES).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => continue,
            Err(StorageError::TooLarge { .. }) => {
                let refusal = format!("the file is larger than {} MiB", MAX_FILE_BYTES / (1024 * 1024));
                files.insert(upload.id.clone(), Err(refusal));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        // Decoding an image to prove it whole is CPU work: off the executor.
        let inspected = tokio::task::spawn_blocking(move || inspect(&bytes))
            .await
            .map_err(|e| ApiError::Internal(format!("inspecting a file stopped: {e}")))?;
        files.insert(upload.id.clone(), inspected);
    }
    Ok(files)
}

fn inspect(bytes: &[u8]) -> Result<Inspected, String> {
    use crate::documents::inspect::{Limits, inspect};
    let found = inspect(bytes, &Limits::DEFAULT).map_err(|refusal| refusal.to_string())?;
    Ok(Inspected {
        content_type: found.kind.mime().to_owned(),
        size: found.size,
        sha256: found.sha256,
        pages: found.pages,
    })
}

/// A submission's change, then the copy of each newly claimed document to
/// its own key: after the domain accepted it (a refused submission copies
/// nothing) and before the session that names the copies is committed.
pub(crate) struct Claiming<M> {
    pub change: M,
    pub storage: Option<Arc<dyn DocumentStorage>>,
}

impl<M: Mutation + Sync> Mutation for Claiming<M> {
    fn apply(&self, session: &Session) -> impl Future<Output = Result<Option<Transition>, ApiError>> + Send {
        let before: HashSet<DocumentId> = session.documents.iter().map(|d| d.id.clone()).collect();
        let uploads = session.uploads.clone();
        let change = self.change.apply(session);
        let storage = self.storage.clone();
        async move {
            let Some(transition) = change.await? else {
                return Ok(None);
            };
            let claimed = transition.session.documents.iter().filter(|d| !before.contains(&d.id));
            for document in claimed {
                let from = uploads
                    .iter()
                    .find(|u| u.id == document.upload_id)
                    .map(|u| u.object_key.clone())
                    .ok_or_else(|| ApiError::Internal("a claimed upload is missing".into()))?;
                let storage = storage
                    .as_ref()
                    .ok_or_else(|| ApiError::Internal("no document storage".into()))?;
                storage.copy(&from, &document.object_key).await?;
            }
            Ok(Some(transition))
        }
    }
}

/// `GET /sessions/{id}/documents/{documentId}/content`: a redirect to a
/// download URL that works for a few minutes.
pub async fn content(app: &App, caller: Caller, req: Request) -> ApiResult {
    let id = SessionId::parse(&path_param(&req, "id")?).ok_or(ApiError::NotFound("session"))?;
    let document_id = DocumentId::parse(&path_param(&req, "documentId")?).ok_or(ApiError::NotFound("document"))?;
    let session = app
        .store
        .sessions()
        .get(&caller.tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("session"))?;
    let document = session.document(&document_id).ok_or(ApiError::NotFound("document"))?;
    let now = app.clock.now();
    let expires_at = now + chrono::Duration::seconds(crate::adapters::documents::DOWNLOAD_URL_SECONDS);
    let url = app
        .documents()?
        .download_url(
            &document.object_key,
            &document.file_name,
            &document.content_type,
            now,
            expires_at,
        )
        .await?;
    Reply::redirect(&DownloadView { url: &url, expires_at }, url.clone())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DownloadView<'a> {
    url: &'a str,
    expires_at: korala_domain::Timestamp,
}

/// The uploads a submission names, for [`found`].
pub(crate) fn named(session: &Session, workflow: &str, data: &korala_domain::JsonMap) -> Vec<Upload> {
    session.uploads_named(workflow, data).into_iter().cloned().collect()
}
