//! Documents: the end user's uploads, which go straight to storage, and the
//! partner's downloads, which come straight from it. A submission naming
//! uploads is a `Submission`: each file is read back from storage and
//! inspected (its type by content, its size, its pages) before the domain
//! claims it, and copied to its document's key only once the domain has
//! accepted the submission.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use http::StatusCode;
use korala_domain::JsonMap;
use korala_domain::documents::{Files, Inspected, MAX_FILE_BYTES, Upload, UploadRequest};
use korala_domain::ids::{DocumentId, SessionId};
use korala_domain::ports::StorageError;
use korala_domain::session::Session;
use korala_domain::transition::Transition;
use lambda_http::Request;
use serde::Serialize;

use super::mutate;
use crate::app::App;
use crate::evaluation::{Mutation, offloaded, run_rules};
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
    let ask = (request, secret.clone());
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

/// How long one file's inspection may take: a 25-megapixel photo decodes
/// in well under a second; the API functions have 10 s in all.
const INSPECTION_DEADLINE: std::time::Duration = std::time::Duration::from_secs(4);

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
        // Decoding an image to prove it whole is CPU work: off the executor,
        // and within a deadline, since a hostile PDF may still find a slow
        // path in its parser: a file that takes too long is the file's fault.
        let work = tokio::task::spawn_blocking(move || inspect(&bytes));
        let inspected = match tokio::time::timeout(INSPECTION_DEADLINE, work).await {
            Ok(Ok(inspected)) => inspected,
            Ok(Err(stopped)) => return Err(ApiError::Internal(format!("inspecting a file stopped: {stopped}"))),
            Err(_) => Err(
                "the file could not be read in time: send a simpler copy (a photo, or a PDF of fewer pages)".to_owned(),
            ),
        };
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

/// The end user's submission, as one change of the freshest session: the
/// uploads it names are read back from storage and inspected, the domain
/// decides with what was found, and each newly claimed document is copied
/// to its own key — after the domain accepted the submission (a refused one
/// copies nothing) and before the session that names the copies is
/// committed. A submission naming no uploads touches no storage. A lost
/// race runs it all again on the new state; copying onto the same key
/// twice is harmless.
pub(crate) struct Submission {
    pub app: App,
    pub workflow: String,
    pub data: Arc<JsonMap>,
}

impl Mutation for Submission {
    fn apply(&self, session: &Session) -> impl Future<Output = Result<Option<Transition>, ApiError>> + Send {
        let (app, workflow, data, session) = (
            self.app.clone(),
            self.workflow.clone(),
            Arc::clone(&self.data),
            session.clone(),
        );
        async move {
            let named: Vec<Upload> = session.uploads_named(&workflow, &data).into_iter().cloned().collect();
            let files = found(&app, &named).await?;
            let before: HashSet<DocumentId> = session.documents.iter().map(|d| d.id.clone()).collect();
            let decide = {
                let app = app.clone();
                let session = session.clone();
                move || session.submit_with_files(&workflow, &data, &files, app.clock.now(), app.ids.as_ref())
            };
            let transition = run_rules(decide).await??;
            for document in transition.session.documents.iter().filter(|d| !before.contains(&d.id)) {
                let from = named
                    .iter()
                    .find(|u| u.id == document.upload_id)
                    .ok_or_else(|| ApiError::Internal("a claimed upload was not read".into()))?;
                app.documents()?.copy(&from.object_key, &document.object_key).await?;
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
