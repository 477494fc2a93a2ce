//! Documents: the files an end user uploads for a capture step's `document`
//! fields.
//!
//! A file never passes through the API. The end user first asks for an
//! upload ([`Session::request_upload`]): the session records a pending
//! [`Upload`] bound to its workflow, step and field, and the service answers
//! with a signed URL that takes exactly that file into storage. The
//! submission then names the upload in the field; the service reads what
//! storage holds, inspects it (its type by content, its size, its pages) and
//! hands the findings to [`Session::submit_with_files`], which turns each
//! named upload into a [`Document`] of the case, or refuses the submission
//! with a field error and changes nothing.
//!
//! Storage keys carry the organisation and mode (so a tenant's objects can
//! be listed, erased or kept apart by prefix) and a secret the caller mints,
//! so no one can guess another file's key from ids.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Timestamp;
use crate::error::DomainError;
use crate::ids::{DocumentId, IdGenerator, ParticipantId, SessionId, SessionWorkflowId, UploadId};
use crate::session::Session;
use crate::tenancy::Tenant;
use crate::transition::{Change, Transition};
use crate::validation::FieldErrors;
use crate::workflow::{FieldKind, Step};

/// The largest file accepted (an upload's declared size, and what storage
/// may hold for it).
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// How long an upload URL takes the file.
pub const UPLOAD_URL_MINUTES: i64 = 10;
/// How long a requested upload may be named in a submission. Storage keeps
/// an unclaimed upload about as long (the bucket's lifecycle rule).
pub const UPLOAD_KEEP_HOURS: i64 = 24;
/// Uploads a session may hold that no submission has claimed yet: enough
/// for every page of a step, and a bound on what one token can ask for.
pub const MAX_PENDING_UPLOADS: usize = 20;
/// Documents a session may hold, retries included.
pub const MAX_DOCUMENTS: usize = 60;
/// Files one field may name (front and back, the pages of a statement).
pub const MAX_FILES_PER_FIELD: usize = 10;
/// What an end user may upload, by the type they declare; the content is
/// checked again on submission.
pub const ACCEPTED_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "application/pdf"];
const MAX_FILE_NAME: usize = 255;

/// `POST /access/{token}/workflows/{swf}/uploads`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadRequest {
    pub field: String,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
}

/// A file the end user was given a URL for and has not yet named in a
/// submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Upload {
    pub id: UploadId,
    pub session_workflow_id: SessionWorkflowId,
    /// The capture step it is for.
    pub step: usize,
    pub field: String,
    pub file_name: String,
    /// As declared (and signed into the URL); the document records the
    /// type its content shows.
    pub content_type: String,
    pub size: u64,
    pub object_key: String,
    pub requested_at: Timestamp,
    /// When the URL stops taking the file.
    pub expires_at: Timestamp,
}

impl Upload {
    /// Past the time a submission may still name it.
    pub fn is_stale(&self, now: Timestamp) -> bool {
        now > self.requested_at + chrono::Duration::hours(UPLOAD_KEEP_HOURS)
    }
}

/// A file of the case: an upload a submission named, as the service found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub id: DocumentId,
    pub upload_id: UploadId,
    pub session_workflow_id: SessionWorkflowId,
    pub participant_id: ParticipantId,
    pub field: String,
    pub file_name: String,
    /// By its content, not as declared.
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub pages: u32,
    pub object_key: String,
    pub submitted_at: Timestamp,
}

/// What the service found in storage for an upload a submission names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub pages: u32,
}

/// The findings for the uploads a submission names: a refusal says, in the
/// end user's words, why the file cannot be used ("the file has not been
/// uploaded", "a GIF is not accepted").
pub type Files = BTreeMap<UploadId, Result<Inspected, String>>;

/// Where an upload's bytes are put: by tenant, then session, then a name no
/// one can derive from ids.
pub fn upload_key(tenant: &Tenant, session: &SessionId, upload: &UploadId, secret: &str) -> String {
    format!(
        "uploads/{}/{}/{}/{}-{}",
        tenant.mode.as_str(),
        tenant.org_id,
        session,
        upload,
        secret
    )
}

/// Where a document's bytes are kept once a submission claims its upload:
/// the upload's key under `documents/`, so claiming twice writes one object.
pub fn document_key(upload_key: &str) -> String {
    match upload_key.strip_prefix("uploads/") {
        Some(rest) => format!("documents/{rest}"),
        None => format!("documents/{upload_key}"),
    }
}

impl Session {
    /// The end user asks to upload a file for a `document` field of the
    /// step their workflow waits on. The session records the upload (a
    /// write like any other, so two requests cannot both take the last
    /// place); the caller gives the storage key's secret and signs a URL
    /// for the key the upload holds.
    pub fn request_upload(
        &self,
        session_workflow_id: &str,
        request: &UploadRequest,
        secret: &str,
        now: Timestamp,
        ids: &dyn IdGenerator,
    ) -> Result<(Transition, Upload), DomainError> {
        let (mut change, index) = self.begin_input(session_workflow_id, now, ids)?;
        let workflow = &change.session.workflows[index];
        let step = workflow.step;
        let mut errors = FieldErrors::new();
        if document_field(workflow.definition.steps.get(step), &request.field).is_none() {
            errors.push("field", "is not a document field of the current step");
        }
        let file_name = request.file_name.trim();
        if file_name.is_empty() {
            errors.push("fileName", "must not be empty");
        } else if file_name.chars().count() > MAX_FILE_NAME {
            errors.push("fileName", format!("must be at most {MAX_FILE_NAME} characters"));
        } else if file_name.chars().any(char::is_control) {
            errors.push("fileName", "must not contain control characters");
        }
        if !ACCEPTED_TYPES.contains(&request.content_type.as_str()) {
            errors.push(
                "contentType",
                format!("must be one of: {} (a photo or a PDF)", ACCEPTED_TYPES.join(", ")),
            );
        }
        if request.size == 0 {
            errors.push("size", "must be at least 1 byte");
        } else if request.size > MAX_FILE_BYTES {
            errors.push("size", format!("must be at most {MAX_FILE_BYTES} bytes (10 MiB)"));
        }
        errors.finish(())?;
        change.session.uploads.retain(|u| !u.is_stale(now));
        if change.session.uploads.len() >= MAX_PENDING_UPLOADS {
            return Err(DomainError::TooManyUploads(MAX_PENDING_UPLOADS));
        }
        let id = UploadId::generate(ids);
        let upload = Upload {
            object_key: upload_key(&change.session.tenant, &change.session.id, &id, secret),
            id,
            session_workflow_id: change.session.workflows[index].id.clone(),
            step,
            field: request.field.clone(),
            file_name: file_name.to_owned(),
            content_type: request.content_type.clone(),
            size: request.size,
            requested_at: now,
            expires_at: now + chrono::Duration::minutes(UPLOAD_URL_MINUTES),
        };
        change.session.uploads.push(upload.clone());
        Ok((change.finish()?, upload))
    }

    /// The pending uploads a submission for `session_workflow_id` names in
    /// its `document` fields: what the caller must find in storage and
    /// inspect before [`submit_with_files`](Self::submit_with_files). Names
    /// that are no such upload are left for the submission to refuse.
    pub fn uploads_named(&self, session_workflow_id: &str, data: &crate::JsonMap) -> Vec<&Upload> {
        let Some(workflow) = self.workflows.iter().find(|w| w.id.as_str() == session_workflow_id) else {
            return Vec::new();
        };
        let Some(Step::Capture(capture)) = workflow.definition.steps.get(workflow.step) else {
            return Vec::new();
        };
        capture
            .fields
            .iter()
            .filter(|f| f.kind == FieldKind::Document)
            .filter_map(|f| data.get(&f.name))
            .flat_map(named_ids)
            .filter_map(|id| self.uploads.iter().find(|u| u.id.as_str() == id))
            .collect()
    }

    /// A document of the case.
    pub fn document(&self, id: &DocumentId) -> Option<&Document> {
        self.documents.iter().find(|d| &d.id == id)
    }
}

fn document_field<'a>(step: Option<&'a Step>, name: &str) -> Option<&'a crate::workflow::Field> {
    match step {
        Some(Step::Capture(capture)) => capture
            .fields
            .iter()
            .find(|f| f.name == name && f.kind == FieldKind::Document),
        _ => None,
    }
}

/// The ids a `document` field's value names: one, or a list.
fn named_ids(value: &Value) -> Vec<&str> {
    match value {
        Value::String(id) => vec![id.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A `document` field's value as the end user submits it: an upload id, or
/// a list of distinct ones. Returns the normalised value (trimmed ids).
pub(crate) fn accept_value(value: &Value) -> Result<Value, String> {
    let one = |v: &Value| -> Result<String, String> {
        let id = v.as_str().map(str::trim).ok_or("must name uploads by their ids")?;
        UploadId::parse(id)
            .map(|_| id.to_owned())
            .ok_or_else(|| "must name an upload (an id starting upl_)".to_owned())
    };
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err("must name at least one upload".into());
            }
            if items.len() > MAX_FILES_PER_FIELD {
                return Err(format!("must name at most {MAX_FILES_PER_FIELD} uploads"));
            }
            let ids = items.iter().map(one).collect::<Result<Vec<_>, _>>()?;
            let mut distinct = ids.clone();
            distinct.sort();
            distinct.dedup();
            if distinct.len() != ids.len() {
                return Err("must not name an upload twice".into());
            }
            Ok(Value::Array(ids.into_iter().map(Value::String).collect()))
        }
        other => one(other).map(Value::String),
    }
}

/// Turns the uploads the accepted submission names into documents of the
/// case: each must be a pending upload of this workflow, step and field,
/// found complete in storage and acceptable by content. Replaces each
/// upload id by its document's id. A refusal leaves the change to be
/// dropped (the caller refuses the whole submission).
pub(crate) fn claim(
    change: &mut Change<'_>,
    index: usize,
    accepted: &mut crate::JsonMap,
    files: &Files,
) -> Result<(), FieldErrors> {
    let now = change.now;
    let workflow = &change.session.workflows[index];
    let (workflow_id, participant_id, step) = (workflow.id.clone(), workflow.participant_id.clone(), workflow.step);
    let Some(Step::Capture(capture)) = workflow.definition.steps.get(step) else {
        return Ok(());
    };
    let fields: Vec<String> = capture
        .fields
        .iter()
        .filter(|f| f.kind == FieldKind::Document)
        .map(|f| f.name.clone())
        .collect();
    let mut errors = FieldErrors::new();
    let mut claimed = Vec::new();
    for field in fields {
        let Some(value) = accepted.get_mut(&field) else {
            continue;
        };
        let list = value.is_array();
        let ids: Vec<String> = named_ids(value).into_iter().map(str::to_owned).collect();
        let mut documents = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let at = if list {
                format!("data.{field}[{i}]")
            } else {
                format!("data.{field}")
            };
            let upload = change.session.uploads.iter().find(|u| u.id.as_str() == id);
            let upload = match upload {
                Some(u) if u.is_stale(now) => {
                    errors.push(at, "this upload has expired: upload the file again");
                    continue;
                }
                Some(u) if u.session_workflow_id != workflow_id || u.step != step || u.field != field => {
                    errors.push(
                        at,
                        format!("this upload is not for the field `{field}` of the current step"),
                    );
                    continue;
                }
                Some(u) => u.clone(),
                None => {
                    let message = if change.session.documents.iter().any(|d| d.upload_id.as_str() == id) {
                        "this upload was submitted already: upload the file again"
                    } else {
                        "is not an upload of this session"
                    };
                    errors.push(at, message);
                    continue;
                }
            };
            match files.get(&upload.id) {
                None => errors.push(at, "the file has not been uploaded"),
                Some(Err(refusal)) => errors.push(at, refusal.clone()),
                Some(Ok(found)) if found.size != upload.size => errors.push(
                    at,
                    format!(
                        "the stored file has {} bytes, not the {} declared: upload it again",
                        found.size, upload.size
                    ),
                ),
                Some(Ok(found)) => {
                    let document = Document {
                        id: DocumentId::generate(change.ids),
                        upload_id: upload.id.clone(),
                        session_workflow_id: workflow_id.clone(),
                        participant_id: participant_id.clone(),
                        field: field.clone(),
                        file_name: upload.file_name.clone(),
                        content_type: found.content_type.clone(),
                        size: found.size,
                        sha256: found.sha256.clone(),
                        pages: found.pages,
                        object_key: document_key(&upload.object_key),
                        submitted_at: now,
                    };
                    documents.push(Value::String(document.id.to_string()));
                    claimed.push(document);
                }
            }
        }
        *value = if list {
            Value::Array(documents)
        } else {
            documents.pop().unwrap_or(Value::Null)
        };
    }
    if change.session.documents.len() + claimed.len() > MAX_DOCUMENTS {
        errors.push(
            "data",
            format!("a session holds at most {MAX_DOCUMENTS} documents, retries included"),
        );
    }
    errors.finish(())?;
    let session = &mut change.session;
    session
        .uploads
        .retain(|u| !u.is_stale(now) && !claimed.iter().any(|d| d.upload_id == u.id));
    session.documents.extend(claimed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_document_field_names_one_upload_or_a_list_of_distinct_ones() {
        assert_eq!(accept_value(&json!(" upl_1 ")).unwrap(), json!("upl_1"));
        assert_eq!(
            accept_value(&json!(["upl_1", "upl_2"])).unwrap(),
            json!(["upl_1", "upl_2"])
        );
        for bad in [
            json!("doc_1"),
            json!("upl_"),
            json!("s3://bucket/passport.jpg"),
            json!([]),
            json!(["upl_1", "upl_1"]),
            json!(7),
            json!([7]),
            json!((1..=11).map(|i| format!("upl_{i}")).collect::<Vec<_>>()),
        ] {
            assert!(accept_value(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_carry_the_tenant_and_move_to_documents_when_claimed() {
        let tenant = Tenant::new(crate::ids::OrgId::parse("org_1").unwrap(), crate::tenancy::Mode::Test);
        let key = upload_key(
            &tenant,
            &SessionId::parse("ses_1").unwrap(),
            &UploadId::parse("upl_1").unwrap(),
            "f00d",
        );
        assert_eq!(key, "uploads/test/org_1/ses_1/upl_1-f00d");
        assert_eq!(document_key(&key), "documents/test/org_1/ses_1/upl_1-f00d");
    }
}
