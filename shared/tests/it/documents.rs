//! Documents on the domain's side: an upload is bound to its workflow, step
//! and field; a submission claims it only as storage found it, and a refused
//! one changes nothing.

use korala_domain::DomainError;
use korala_domain::builtin;
use korala_domain::documents::{Files, Inspected, MAX_PENDING_UPLOADS, Upload, UploadRequest};
use korala_domain::ids::UploadId;
use korala_domain::session::{Session, WorkflowStatus};
use korala_domain::tenancy::Actor;
use korala_domain::testing::{SequentialIds, minutes, t0};
use serde_json::{Value, json};

use crate::support::started;

fn passport() -> Session {
    let ids = SequentialIds::new();
    started(
        builtin::get("id-document").unwrap().clone(),
        json!({}),
        Actor::System,
        &ids,
    )
}

/// A started passport session holding one upload for its photo.
fn with_upload(ids: &SequentialIds) -> (Session, String, Upload) {
    let session = passport();
    let swf = session.workflows[0].id.to_string();
    let (transition, upload) = session
        .request_upload(&swf, &request("documentImage"), "s", t0(), ids)
        .unwrap();
    (transition.session, swf, upload)
}

fn request(field: &str) -> UploadRequest {
    serde_json::from_value(
        json!({"field": field, "fileName": "passport.jpg", "contentType": "image/jpeg", "size": 1234}),
    )
    .unwrap()
}

fn found(size: u64) -> Inspected {
    Inspected {
        content_type: "image/jpeg".into(),
        size,
        sha256: "ab".repeat(32),
        pages: 1,
    }
}

fn data(image: Value) -> serde_json::Map<String, Value> {
    json!({"documentType": "passport", "documentNumber": "X1", "fullName": "Jane Doe",
        "dateOfBirth": "1990-01-02", "expiryDate": "2030-01-01", "issuingCountry": "GB", "documentImage": image})
    .as_object()
    .unwrap()
    .clone()
}

fn field_errors(error: DomainError) -> Vec<(String, String)> {
    match error {
        DomainError::Invalid(errors) => errors.iter().map(|e| (e.field.clone(), e.message.clone())).collect(),
        other => panic!("not a field error: {other:?}"),
    }
}

#[test]
fn an_upload_is_claimed_by_the_submission_that_names_it() {
    let ids = SequentialIds::new();
    let session = passport();
    let swf = session.workflows[0].id.to_string();
    let (transition, upload) = session
        .request_upload(&swf, &request("documentImage"), "secret", t0(), &ids)
        .unwrap();
    assert!(transition.events.is_empty(), "an upload is no event of the case");
    assert!(upload.object_key.starts_with("uploads/test/org_0001/"));
    assert!(upload.object_key.ends_with("-secret"));
    assert_eq!(upload.expires_at, minutes(10));
    let session = transition.session;

    let named = session.uploads_named(&swf, &data(json!(upload.id.as_str())));
    assert_eq!(named.len(), 1);
    let files = Files::from([(upload.id.clone(), Ok(found(1234)))]);
    let after = session
        .submit_with_files(&swf, &data(json!(upload.id.as_str())), &files, minutes(1), &ids)
        .unwrap()
        .session;
    assert!(after.uploads.is_empty());
    let document = &after.documents[0];
    assert_eq!(document.upload_id, upload.id);
    assert_eq!(document.field, "documentImage");
    assert!(document.object_key.starts_with("documents/test/org_0001/"));
    let stored = &after.workflows[0].data.as_ref().unwrap()["documentImage"];
    assert_eq!(
        stored,
        &json!(document.id.as_str()),
        "the data names the document, not the upload"
    );
    assert_eq!(after.workflows[0].status, WorkflowStatus::Completed);
}

#[test]
fn a_refused_file_is_a_field_error_and_changes_nothing() {
    let ids = SequentialIds::new();
    let (session, swf, upload) = with_upload(&ids);
    let named = json!(upload.id.as_str());
    let cases: [(Files, &str); 3] = [
        (Files::new(), "the file has not been uploaded"),
        (
            Files::from([(upload.id.clone(), Err("a GIF is not accepted".to_owned()))]),
            "a GIF is not accepted",
        ),
        (
            Files::from([(upload.id.clone(), Ok(found(999_999)))]),
            "the stored file has 999999 bytes, not the 1234 declared: upload it again",
        ),
    ];
    for (files, message) in cases {
        let error = session
            .submit_with_files(&swf, &data(named.clone()), &files, minutes(1), &ids)
            .unwrap_err();
        assert_eq!(
            field_errors(error),
            [("data.documentImage".to_owned(), message.to_owned())]
        );
    }
    assert_eq!(session.workflows[0].attempts, 0, "a refusal costs no attempt");
}

#[test]
fn uploads_of_another_session_or_field_or_claimed_twice_are_refused() {
    let ids = SequentialIds::new();
    let (session, swf, upload) = with_upload(&ids);
    let files = Files::from([(upload.id.clone(), Ok(found(1234)))]);

    let unknown = UploadId::parse("upl_99999").unwrap();
    let error = session
        .submit_with_files(&swf, &data(json!(unknown.as_str())), &files, minutes(1), &ids)
        .unwrap_err();
    assert_eq!(
        field_errors(error),
        [(
            "data.documentImage".to_owned(),
            "is not an upload of this session".to_owned()
        )]
    );

    // Claimed once, then replayed after a retry asks for the step again.
    let mut wrong = data(json!(upload.id.as_str()));
    wrong.insert("expiryDate".into(), json!("2020-01-01"));
    let retried = session
        .submit_with_files(&swf, &wrong, &files, minutes(1), &ids)
        .unwrap()
        .session;
    assert_eq!(
        retried.workflows[0].status,
        WorkflowStatus::InProgress,
        "the expired document asks for a retry"
    );
    let error = retried
        .submit_with_files(&swf, &data(json!(upload.id.as_str())), &files, minutes(2), &ids)
        .unwrap_err();
    assert_eq!(
        field_errors(error),
        [(
            "data.documentImage".to_owned(),
            "this upload was submitted already: upload the file again".to_owned()
        )]
    );

    // Past the time an upload may be named (in a session that lives longer).
    let mut long = session.clone();
    long.expires_at = minutes(3 * 24 * 60);
    let error = long
        .submit_with_files(&swf, &data(json!(upload.id.as_str())), &files, minutes(25 * 60), &ids)
        .unwrap_err();
    assert_eq!(
        field_errors(error),
        [(
            "data.documentImage".to_owned(),
            "this upload has expired: upload the file again".to_owned()
        )]
    );
}

#[test]
fn an_upload_request_must_name_a_document_field_an_accepted_type_and_a_bounded_size() {
    let ids = SequentialIds::new();
    let session = passport();
    let swf = session.workflows[0].id.to_string();
    let bad: UploadRequest = serde_json::from_value(
        json!({"field": "fullName", "fileName": " ", "contentType": "image/gif", "size": 20_000_000}),
    )
    .unwrap();
    let error = session.request_upload(&swf, &bad, "s", t0(), &ids).unwrap_err();
    let fields: Vec<String> = field_errors(error).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["field", "fileName", "contentType", "size"]);

    let mut session = session;
    for _ in 0..MAX_PENDING_UPLOADS {
        session = session
            .request_upload(&swf, &request("documentImage"), "s", t0(), &ids)
            .unwrap()
            .0
            .session;
    }
    let error = session
        .request_upload(&swf, &request("documentImage"), "s", t0(), &ids)
        .unwrap_err();
    assert_eq!(error, DomainError::TooManyUploads(MAX_PENDING_UPLOADS));
    // A day later the unclaimed ones are gone, and there is room again.
    session.expires_at = minutes(3 * 24 * 60);
    assert!(
        session
            .request_upload(&swf, &request("documentImage"), "s", minutes(25 * 60), &ids)
            .is_ok()
    );
}
