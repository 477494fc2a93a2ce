//! The document storage port's conformance cases, run on each adapter: the
//! local files (sealed on disk, their URLs answered by the local server) and
//! S3 (moto's server). Uploads and downloads go through the signed URLs
//! with real HTTP requests, as an end user's browser and a partner's client
//! send them.

use std::sync::Arc;

use acceptance::engines::Engine;
use acceptance::files;
use acceptance::support::TempDir;
use chrono::{Duration, Utc};
use functions::adapters::crypto::Sealer;
use functions::adapters::documents::local::LocalFiles;
use functions::adapters::store::sqlite::SqliteStore;
use functions::app::App;
use korala_domain::ports::{DocumentStorage, StorageError};

/// A key as the service makes them, unique per case.
fn key(prefix: &str, case: &str) -> String {
    format!("{prefix}/test/org_1/ses_1/upl_{case}-{:032x}", rand_suffix())
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

async fn put(storage: &dyn DocumentStorage, key: &str, content_type: &str, bytes: &[u8]) -> u16 {
    let now = Utc::now();
    let target = storage
        .upload_url(key, content_type, bytes.len() as u64, now, now + Duration::minutes(10))
        .await
        .expect("an upload URL");
    files::send("PUT", &target.url, &target.headers, bytes.to_vec())
        .await
        .status
}

async fn uploads_are_read_back_whole_and_within_a_limit(storage: &dyn DocumentStorage) {
    let key = key("uploads", "read");
    let bytes = b"%PDF-1.7 a small file".to_vec();
    assert_eq!(put(storage, &key, "application/pdf", &bytes).await, 200);
    assert_eq!(storage.read(&key, 1024).await.unwrap(), Some(bytes.clone()));
    assert_eq!(
        storage.read(&key, 4).await,
        Err(StorageError::TooLarge {
            size: bytes.len() as u64,
            max: 4
        })
    );
    let missing = self::key("uploads", "missing");
    assert_eq!(storage.read(&missing, 1024).await.unwrap(), None);
}

async fn a_copy_is_the_same_bytes_under_another_key(storage: &dyn DocumentStorage) {
    let from = key("uploads", "copy");
    let to = from.replacen("uploads/", "documents/", 1);
    assert_eq!(put(storage, &from, "image/png", b"first").await, 200);
    storage.copy(&from, &to).await.expect("a copy");
    assert_eq!(storage.read(&to, 1024).await.unwrap(), Some(b"first".to_vec()));
    // Copying again (a retried claim) replaces the copy.
    assert_eq!(put(storage, &from, "image/png", b"second").await, 200);
    storage.copy(&from, &to).await.expect("a second copy");
    assert_eq!(storage.read(&to, 1024).await.unwrap(), Some(b"second".to_vec()));
}

async fn a_download_url_serves_the_file_as_an_attachment(storage: &dyn DocumentStorage) {
    let key = key("documents", "download");
    let bytes: Vec<u8> = (0..=255).collect();
    assert_eq!(put(storage, &key, "image/jpeg", &bytes).await, 200);
    let now = Utc::now();
    let url = storage
        .download_url(
            &key,
            "my \"passport\".jpg\r\n",
            "image/jpeg",
            now,
            now + Duration::minutes(5),
        )
        .await
        .expect("a download URL");
    let got = files::fetch(&url).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, bytes);
    assert_eq!(got.header("content-type"), Some("image/jpeg"));
    assert_eq!(
        got.header("content-disposition"),
        Some("attachment; filename=\"my__passport_.jpg__\""),
        "only the name's plain characters reach the header"
    );
}

async fn deleted_objects_are_gone_and_deleting_twice_is_no_error(storage: &dyn DocumentStorage) {
    let key = key("documents", "delete");
    assert_eq!(put(storage, &key, "image/webp", b"RIFF").await, 200);
    storage.delete(&key).await.expect("a delete");
    assert_eq!(storage.read(&key, 1024).await.unwrap(), None);
    storage.delete(&key).await.expect("deleting nothing");
}

async fn run_all(storage: &dyn DocumentStorage) {
    uploads_are_read_back_whole_and_within_a_limit(storage).await;
    a_copy_is_the_same_bytes_under_another_key(storage).await;
    a_download_url_serves_the_file_as_an_attachment(storage).await;
    deleted_objects_are_gone_and_deleting_twice_is_no_error(storage).await;
}

#[tokio::test]
async fn local_files() {
    let dir = TempDir::new("storage");
    let store = Arc::new(SqliteStore::in_memory().expect("a store"));
    let app = App::new(store, Sealer::from_base64(&Sealer::generate_key()).expect("a key"));
    let files = LocalFiles::new(dir.path().to_owned(), app.sealer.clone(), String::new());
    let app = app.with_local_files(files);
    // The files' URLs are answered by the local server, which tells the
    // store its address when it binds.
    let (_, _server) = functions::runtime::local::spawn(app.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the local server binds");
    let files = app.local_files.clone().expect("local files");
    run_all(files.as_ref()).await;

    // At rest the files are sealed: no plain bytes of an upload on disk.
    let key = key("uploads", "sealed");
    let secret = b"P<GBRSMITH<<JOHN<<<<<<<<<<<<<<<<<<<<<<<<<<<<<".to_vec();
    assert_eq!(put(files.as_ref(), &key, "image/png", &secret).await, 200);
    let on_disk = std::fs::read(dir.path().join(&key)).expect("the stored file");
    assert!(!on_disk.windows(10).any(|w| secret.windows(10).any(|s| s == w)));
    // Keys are the service's own: nothing outside the folder is reachable.
    for bad in ["../etc/passwd", "/etc/passwd", "uploads/../../x", "uploads//x", ""] {
        assert!(files.read(bad, 1024).await.is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn s3_on_moto() {
    if !Engine::Moto.here() {
        return;
    }
    let mut app = App::new(
        Arc::new(SqliteStore::in_memory().expect("a store")),
        Sealer::from_base64(&Sealer::generate_key()).expect("a key"),
    );
    let bucket = format!("korala-storage-{:x}", rand_suffix());
    files::attach(&mut app, Some(&bucket)).await;
    let storage = app.documents.clone().expect("S3 storage");
    run_all(storage.as_ref()).await;

    // No checksum of an empty body is signed into an upload URL (the SDK's
    // default for a body-less request): real S3 would refuse every file
    // sent to it, and moto checks none.
    let now = Utc::now();
    let target = storage
        .upload_url(
            &key("uploads", "integrity"),
            "image/png",
            1234,
            now,
            now + Duration::minutes(10),
        )
        .await
        .expect("an upload URL");
    let signed = format!("{} {:?}", target.url, target.headers).to_ascii_lowercase();
    assert!(!signed.contains("checksum"), "{signed}");
    assert!(signed.contains("content-length"), "the length is signed: {signed}");
}
