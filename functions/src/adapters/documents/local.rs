//! Documents on this machine: each file sealed with the master key under a
//! folder beside the database, and URLs the local server answers, signed
//! with a key derived from the master key and valid until they expire, as
//! S3's presigned URLs are. The local server serves them at
//! `/storage/{key}` (see [`LocalFiles::serve`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use http::{HeaderMap, Method, StatusCode};
use korala_domain::Timestamp;
use korala_domain::ports::{DocumentStorage, StorageError, UploadTarget};
use lambda_http::{Body, Response};

use crate::adapters::crypto::{SEALED_BYTES_OVERHEAD, Sealer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The path the local server serves files under.
pub const PATH_PREFIX: &str = "/storage/";

pub struct LocalFiles {
    dir: PathBuf,
    sealer: Arc<Sealer>,
    /// Where the local server listens, as URLs name it.
    origin: RwLock<String>,
}

impl LocalFiles {
    pub fn new(dir: PathBuf, sealer: Arc<Sealer>, origin: String) -> Self {
        Self {
            dir,
            sealer,
            origin: RwLock::new(origin),
        }
    }

    /// The folder beside the database, named `documents`.
    pub fn beside(db_path: &Path, sealer: Arc<Sealer>, origin: String) -> Self {
        Self::new(db_path.with_file_name("documents"), sealer, origin)
    }

    /// The server that answers this store's URLs, once it is bound.
    pub fn serve_at(&self, origin: String) {
        if let Ok(mut current) = self.origin.write() {
            *current = origin;
        }
    }

    fn origin(&self) -> String {
        self.origin.read().map(|o| o.clone()).unwrap_or_default()
    }

    /// The file a key names. Keys are made by the service from ids, a
    /// mode and hex, so anything else (a `..`, an absolute path) is refused.
    fn path(&self, key: &str) -> Option<PathBuf> {
        let fair = !key.is_empty()
            && key.len() <= 512
            && key.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        fair.then(|| self.dir.join(key))
    }

    fn url(&self, key: &str, params: &[(&str, String)]) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        format!("{}{PATH_PREFIX}{key}?{query}", self.origin())
    }

    /// Answers a request to one of this store's URLs: `PUT` stores the file
    /// the URL was signed for (its type, its exact size, before it expires);
    /// `GET` serves it back as the download the URL names.
    pub async fn serve(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: impl hyper::body::Body<Data = hyper::body::Bytes, Error: Into<BoxError>>,
        now: Timestamp,
    ) -> Response<Body> {
        let key = path.strip_prefix(PATH_PREFIX).unwrap_or_default();
        let params: BTreeMap<String, String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
        let param = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
        let expires: i64 = param("expires").parse().unwrap_or(0);
        let Some(file) = self.path(key) else {
            return refuse(StatusCode::NOT_FOUND, "no such file");
        };
        match *method {
            Method::PUT => {
                let message = upload_message(key, param("type"), param("size"), expires);
                if !self.sealer.verify_url(&message, param("signature")) {
                    return refuse(StatusCode::FORBIDDEN, "the URL's signature does not match");
                }
                if now.timestamp() > expires {
                    return refuse(StatusCode::FORBIDDEN, "the URL has expired: ask for a new upload");
                }
                let given_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
                if given_type != Some(param("type")) {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        &format!("the Content-Type must be {}, as the upload declared", param("type")),
                    );
                }
                let size: usize = param("size").parse().unwrap_or(0);
                self.receive(&file, body, size).await
            }
            Method::GET => {
                let message = download_message(key, param("name"), param("type"), expires);
                if !self.sealer.verify_url(&message, param("signature")) {
                    return refuse(StatusCode::FORBIDDEN, "the URL's signature does not match");
                }
                if now.timestamp() > expires {
                    return refuse(StatusCode::FORBIDDEN, "the URL has expired: ask for a new one");
                }
                match self.read_file(&file, u64::MAX).await {
                    Ok(Some(bytes)) => download(bytes, param("type"), param("name")),
                    Ok(None) => refuse(StatusCode::NOT_FOUND, "no such file"),
                    Err(e) => {
                        tracing::warn!(error = %e, "a stored file could not be read");
                        refuse(StatusCode::INTERNAL_SERVER_ERROR, "the file could not be read")
                    }
                }
            }
            _ => refuse(StatusCode::METHOD_NOT_ALLOWED, "only PUT and GET"),
        }
    }

    /// Takes exactly `size` bytes (more is refused as soon as it arrives),
    /// seals them and puts them in place at once, so a reader never sees
    /// half a file.
    async fn receive(
        &self,
        file: &Path,
        body: impl hyper::body::Body<Data = hyper::body::Bytes, Error: Into<BoxError>>,
        size: usize,
    ) -> Response<Body> {
        use http_body_util::{BodyExt, Limited};
        let bytes = match Limited::new(body, size).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the upload declared {size} bytes; the body is larger"),
                );
            }
        };
        if bytes.len() != size {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("the upload declared {size} bytes; the body has {}", bytes.len()),
            );
        }
        let sealed = self.sealer.seal_bytes(&bytes);
        match write_atomically(file, sealed).await {
            Ok(()) => Response::builder()
                .status(StatusCode::OK)
                .body(Body::Empty)
                .unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "an upload could not be stored");
                refuse(StatusCode::INTERNAL_SERVER_ERROR, "the file could not be stored")
            }
        }
    }

    async fn read_file(&self, file: &Path, max: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let meta = match tokio::fs::metadata(file).await {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        let size = meta.len().saturating_sub(SEALED_BYTES_OVERHEAD);
        if size > max {
            return Err(StorageError::TooLarge { size, max });
        }
        let sealed = match tokio::fs::read(file).await {
            Ok(sealed) => sealed,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        self.sealer
            .open_bytes(&sealed)
            .map(Some)
            .map_err(|e| StorageError::Unavailable(format!("a stored file: {e}")))
    }
}

fn upload_message(key: &str, content_type: &str, size: &str, expires: i64) -> String {
    format!("PUT\n{key}\n{content_type}\n{size}\n{expires}")
}

fn download_message(key: &str, name: &str, content_type: &str, expires: i64) -> String {
    format!("GET\n{key}\n{name}\n{content_type}\n{expires}")
}

fn unavailable(e: std::io::Error) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

fn no_such_key() -> StorageError {
    StorageError::Unavailable("not a key this service makes".into())
}

async fn write_atomically(file: &Path, contents: Vec<u8>) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        crate::runtime::private::create_dir_all(dir)?;
    }
    let partial = file.with_extension(format!("partial-{:016x}", rand::random::<u64>()));
    tokio::fs::write(&partial, contents).await?;
    tokio::fs::rename(&partial, file).await
}

/// A plain-text refusal, as storage answers (S3 answers XML).
fn refuse(status: StatusCode, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::Text(format!("{message}\n")))
        .unwrap_or_default()
}

fn download(bytes: Vec<u8>, content_type: &str, name: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_DISPOSITION, super::attachment(name))
        .header("x-content-type-options", "nosniff")
        .header(http::header::CACHE_CONTROL, "private, no-store")
        .body(Body::Binary(bytes))
        .unwrap_or_default()
}

#[async_trait]
impl DocumentStorage for LocalFiles {
    async fn upload_url(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        _now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<UploadTarget, StorageError> {
        self.path(key).ok_or_else(no_such_key)?;
        let expires = expires_at.timestamp();
        let size = size.to_string();
        let signature = self.sealer.sign_url(&upload_message(key, content_type, &size, expires));
        let url = self.url(
            key,
            &[
                ("type", content_type.to_owned()),
                ("size", size),
                ("expires", expires.to_string()),
                ("signature", signature),
            ],
        );
        Ok(UploadTarget {
            url,
            headers: BTreeMap::from([("Content-Type".to_owned(), content_type.to_owned())]),
        })
    }

    async fn read(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let file = self.path(key).ok_or_else(no_such_key)?;
        self.read_file(&file, max).await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let (from, to) = (
            self.path(from).ok_or_else(no_such_key)?,
            self.path(to).ok_or_else(no_such_key)?,
        );
        let sealed = tokio::fs::read(&from).await.map_err(unavailable)?;
        write_atomically(&to, sealed).await.map_err(unavailable)
    }

    async fn download_url(
        &self,
        key: &str,
        file_name: &str,
        content_type: &str,
        _now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<String, StorageError> {
        self.path(key).ok_or_else(no_such_key)?;
        let expires = expires_at.timestamp();
        let signature = self
            .sealer
            .sign_url(&download_message(key, file_name, content_type, expires));
        Ok(self.url(
            key,
            &[
                ("name", file_name.to_owned()),
                ("type", content_type.to_owned()),
                ("expires", expires.to_string()),
                ("signature", signature),
            ],
        ))
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let file = self.path(key).ok_or_else(no_such_key)?;
        match tokio::fs::remove_file(&file).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}
