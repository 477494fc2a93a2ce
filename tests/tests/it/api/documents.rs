//! Documents end to end: the end user asks for an upload, sends the file
//! straight to storage (the local server's signed URL here, moto's S3 on the
//! emulated AWS path), names it in a submission, and the partner reads it
//! back. Files that are not what they claim are refused with a field error
//! and change nothing.

use std::collections::BTreeMap;
use std::io::Cursor;

use acceptance::api::{Api, assert_problem};
use acceptance::files::{self, Storage};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A real PNG photo, `width` × `height`.
fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).expect("a PNG");
    bytes.into_inner()
}

/// A session of the built-in identity-document workflow, started; its
/// access token and the workflow waiting for the end user.
struct Case {
    session: String,
    token: String,
    workflow: String,
}

async fn case(api: &Api, user: &str) -> Case {
    if api.get("/session-configurations").await["data"]
        .as_array()
        .is_none_or(|c| !c.iter().any(|c| c["slug"] == "documents"))
    {
        api.simple_configuration("documents", &["id-document"], json!({})).await;
    }
    let session = api.session_of("documents", user).await;
    let token = session["accessToken"].as_str().expect("a token").to_owned();
    let access = api.access(&token).await;
    Case {
        session: session["id"].as_str().expect("an id").to_owned(),
        workflow: access["currentStep"]["id"].as_str().expect("a current step").to_owned(),
        token,
    }
}

/// Serves the application's own file URLs when its files are on this
/// machine (on S3 the URLs are moto's).
async fn serve_files(api: &Api) {
    if matches!(*api.storage, Storage::Local(_)) {
        let _server = api.spawn_server().await;
    }
}

async fn ask(api: &Api, case: &Case, body: Value) -> (u16, Value) {
    let path = format!("/access/{}/workflows/{}/uploads", case.token, case.workflow);
    let (status, body, _) = api.end_user("POST", &path, Some(body)).await;
    (status.as_u16(), body)
}

/// Asks for an upload of `bytes` declared as `content_type` and sends them
/// where the answer says; the upload's id.
async fn upload(api: &Api, case: &Case, content_type: &str, bytes: Vec<u8>) -> String {
    let (status, target) = ask(
        api,
        case,
        json!({"field": "documentImage", "fileName": "passport.png", "contentType": content_type, "size": bytes.len()}),
    )
    .await;
    assert_eq!(status, 201, "{target}");
    let sent = put(&target, bytes).await;
    assert_eq!(sent.status, 200, "{}", String::from_utf8_lossy(&sent.body));
    target["uploadId"].as_str().expect("an upload id").to_owned()
}

async fn put(target: &Value, bytes: Vec<u8>) -> acceptance::api::WireResponse {
    assert_eq!(target["method"], "PUT", "{target}");
    let headers: BTreeMap<String, String> = serde_json::from_value(target["headers"].clone()).expect("headers");
    files::send("PUT", target["url"].as_str().expect("a URL"), &headers, bytes).await
}

fn passport_data(api: &Api, image: Value) -> Value {
    let mut data = api.id_document("Jane Doe");
    data["documentImage"] = image;
    data
}

#[tokio::test]
async fn an_end_user_uploads_a_photo_and_the_partner_downloads_it() {
    let api = Api::new().await;
    serve_files(&api).await;
    let case = case(&api, "usr_photo").await;
    let photo = png(320, 200);

    let (status, target) = ask(
        &api,
        &case,
        json!({"field": "documentImage", "fileName": "passport.png", "contentType": "image/png", "size": photo.len()}),
    )
    .await;
    assert_eq!(status, 201, "{target}");
    assert!(
        target["uploadId"].as_str().is_some_and(|id| id.starts_with("upl_")),
        "{target}"
    );
    assert_eq!(target["headers"]["Content-Type"], "image/png", "{target}");
    assert!(target["expiresAt"].is_string(), "{target}");
    let url = target["url"].as_str().unwrap();
    assert!(!url.contains(&case.token), "the URL does not carry the access token");
    assert_eq!(put(&target, photo.clone()).await.status, 200);
    let upload = target["uploadId"].as_str().unwrap();

    let view = api
        .submit_ok(&case.token, &case.workflow, passport_data(&api, json!(upload)))
        .await;
    assert_eq!(view["status"], "completed", "{view}");

    let session = api.session(&case.session).await;
    let documents = session["documents"].as_array().expect("documents");
    assert_eq!(documents.len(), 1, "{session}");
    let document = &documents[0];
    assert!(document["id"].as_str().is_some_and(|id| id.starts_with("doc_")));
    assert_eq!(document["sessionWorkflowId"], case.workflow.as_str());
    assert_eq!(document["field"], "documentImage");
    assert_eq!(document["contentType"], "image/png");
    assert_eq!(document["size"], photo.len());
    assert_eq!(document["pages"], 1);
    assert_eq!(document["sha256"], hex::encode(Sha256::digest(&photo)));
    assert!(document.get("objectKey").is_none(), "where it is kept stays ours");
    assert_eq!(
        session["workflows"][0]["data"]["documentImage"], document["id"],
        "the data names the document"
    );

    let path = format!(
        "/sessions/{}/documents/{}/content",
        case.session,
        document["id"].as_str().unwrap()
    );
    let (status, body, headers) = api.partner("GET", &path, None).await;
    assert_eq!(status.as_u16(), 302, "{body}");
    let location = headers["location"].to_str().unwrap().to_owned();
    assert_eq!(body["url"], location.as_str());
    let downloaded = files::fetch(&location).await;
    assert_eq!(downloaded.status, 200);
    assert_eq!(downloaded.body, photo, "the same bytes come back");

    // Another organisation cannot reach it, nor a document id of no session.
    let (status, _, _) = api.partner_as(&api.other, "GET", &path, None).await;
    assert_eq!(status.as_u16(), 404);
    let missing = format!("/sessions/{}/documents/doc_0000/content", case.session);
    assert_problem(&api.partner("GET", &missing, None).await, 404, "not_found");
}

#[tokio::test]
async fn files_that_are_not_what_they_claim_are_refused_and_change_nothing() {
    let api = Api::new().await;
    serve_files(&api).await;
    let case = case(&api, "usr_bad_files").await;

    let photo = png(64, 64);
    let truncated = photo[..photo.len() / 2].to_vec();
    let text = b"this is not a photo of anything".to_vec();
    let named_but_not_sent = {
        let (status, target) = ask(
            &api,
            &case,
            json!({"field": "documentImage", "fileName": "p.jpg", "contentType": "image/jpeg", "size": 10}),
        )
        .await;
        assert_eq!(status, 201);
        target["uploadId"].as_str().unwrap().to_owned()
    };
    let cases = [
        (upload(&api, &case, "image/jpeg", text).await, "is not a photo"),
        (
            upload(&api, &case, "image/png", truncated).await,
            "damaged or incomplete",
        ),
        (named_but_not_sent, "has not been uploaded"),
    ];
    // Another session's upload is no upload of this one.
    let other = case_other(&api).await;
    let foreign = upload(&api, &other, "image/png", photo).await;
    let before = api.session(&case.session).await;

    for (id, says) in cases
        .iter()
        .chain([(foreign, "is not an upload of this session")].iter())
    {
        let reply = api
            .submit(&case.token, &case.workflow, passport_data(&api, json!(id)))
            .await;
        let body = assert_problem(&reply, 422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "data.documentImage", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{says:?} in {body}");
    }
    let after = api.session(&case.session).await;
    assert!(after["documents"].as_array().is_none_or(Vec::is_empty), "{after}");
    assert_eq!(after["workflows"][0]["attempts"], before["workflows"][0]["attempts"]);
    assert_eq!(after["workflows"][0]["status"], before["workflows"][0]["status"]);
    assert_eq!(
        after["version"], before["version"],
        "a refused submission writes nothing"
    );
}

async fn case_other(api: &Api) -> Case {
    case(api, "usr_other_session").await
}

#[tokio::test]
async fn an_upload_request_names_a_document_field_an_accepted_type_and_a_size() {
    let api = Api::new().await;
    let case = case(&api, "usr_requests").await;
    for (body, field) in [
        (
            json!({"field": "fullName", "fileName": "a.png", "contentType": "image/png", "size": 10}),
            "field",
        ),
        (
            json!({"field": "documentImage", "fileName": "a.gif", "contentType": "image/gif", "size": 10}),
            "contentType",
        ),
        (
            json!({"field": "documentImage", "fileName": "a.png", "contentType": "image/png", "size": 0}),
            "size",
        ),
        (
            json!({"field": "documentImage", "fileName": "a.png", "contentType": "image/png", "size": 10 * 1024 * 1024 + 1}),
            "size",
        ),
        (
            json!({"field": "documentImage", "fileName": "", "contentType": "image/png", "size": 10}),
            "fileName",
        ),
    ] {
        let path = format!("/access/{}/workflows/{}/uploads", case.token, case.workflow);
        let reply = api.end_user("POST", &path, Some(body.clone())).await;
        let problem = assert_problem(&reply, 422, "validation_failed");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    // A token of no session is a plain 404, as for every end-user path.
    let path = format!("/access/at_unknown/workflows/{}/uploads", case.workflow);
    let reply = api
        .end_user(
            "POST",
            &path,
            Some(json!({"field": "documentImage", "fileName": "a.png", "contentType": "image/png", "size": 10})),
        )
        .await;
    assert_eq!(reply.0.as_u16(), 404);
}

#[tokio::test]
async fn a_signed_url_takes_only_the_declared_file_before_it_expires() {
    let api = Api::new().await;
    if !matches!(*api.storage, Storage::Local(_)) {
        // moto checks neither the signed length nor the expiry (the
        // submission's own checks stand in for them there: see above).
        return;
    }
    serve_files(&api).await;
    let case = case(&api, "usr_signed_url").await;
    let photo = png(40, 40);
    let (_, target) = ask(
        &api,
        &case,
        json!({"field": "documentImage", "fileName": "p.png", "contentType": "image/png", "size": photo.len()}),
    )
    .await;
    let mut longer = photo.clone();
    longer.extend_from_slice(b"and then some");
    assert_eq!(put(&target, longer).await.status, 413);
    assert_eq!(put(&target, photo[..10].to_vec()).await.status, 400);
    let mut wrong_type = target.clone();
    wrong_type["headers"]["Content-Type"] = json!("image/jpeg");
    assert_eq!(put(&wrong_type, photo.clone()).await.status, 400);
    let mut forged = target.clone();
    forged["url"] = json!(target["url"].as_str().unwrap().replace("size=", "size=1"));
    assert_eq!(put(&forged, photo.clone()).await.status, 403);
    api.clock.advance(11);
    assert_eq!(put(&target, photo).await.status, 403, "an expired URL takes nothing");
}
