//! Documents in S3: presigned `PUT` URLs that sign the content type and
//! length, presigned downloads that name the file, and server-side copies,
//! so no file passes through a function on its way in or out. The bucket
//! encrypts at rest (SSE-KMS, the template's key) and refuses plain HTTP.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use korala_domain::Timestamp;
use korala_domain::ports::{DocumentStorage, StorageError, UploadTarget};

pub struct S3Documents {
    client: Client,
    bucket: String,
}

impl S3Documents {
    pub fn new(client: Client, bucket: String) -> Self {
        Self { client, bucket }
    }

    /// A client for `config`; path-style addressing when an endpoint is
    /// given (moto, where bucket host names do not resolve).
    pub fn client(config: &aws_config::SdkConfig) -> Client {
        let path_style =
            config.endpoint_url().is_some() || std::env::var("AWS_ENDPOINT_URL_S3").is_ok_and(|v| !v.is_empty());
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build();
        Client::from_conf(s3)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

fn presigning(now: Timestamp, expires_at: Timestamp) -> Result<PresigningConfig, StorageError> {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(now.timestamp()).unwrap_or(0));
    let lifetime = (expires_at - now).to_std().unwrap_or(Duration::from_secs(1));
    PresigningConfig::builder()
        .start_time(start)
        .expires_in(lifetime)
        .build()
        .map_err(|e| StorageError::Unavailable(format!("presigning: {e}")))
}

fn unavailable(e: impl std::error::Error) -> StorageError {
    StorageError::Unavailable(aws_sdk_s3::error::DisplayErrorContext(e).to_string())
}

#[async_trait]
impl DocumentStorage for S3Documents {
    async fn upload_url(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<UploadTarget, StorageError> {
        let length = i64::try_from(size).map_err(|_| StorageError::TooLarge {
            size,
            max: i64::MAX as u64,
        })?;
        let presigned = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(length)
            .presigned(presigning(now, expires_at)?)
            .await
            .map_err(unavailable)?;
        // The headers the signature covers, but `host` (the client's HTTP
        // library sets it) and `content-length` (a browser sets it from the
        // body and refuses to be told).
        let headers = presigned
            .headers()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("host") && !name.eq_ignore_ascii_case("content-length"))
            .map(|(name, value)| (canonical_header(name), value.to_owned()))
            .collect::<BTreeMap<_, _>>();
        Ok(UploadTarget {
            url: presigned.uri().to_owned(),
            headers,
        })
    }

    async fn read(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let head = self.client.head_object().bucket(&self.bucket).key(key).send().await;
        let size = match head {
            Ok(head) => head.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        if size > max {
            return Err(StorageError::TooLarge { size, max });
        }
        let object = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(object) => object,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        // The object may have been replaced since the HEAD: read no more
        // than `max` whatever it now holds.
        let mut body = object.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.try_next().await.map_err(unavailable)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max {
                return Err(StorageError::TooLarge {
                    size: bytes.len() as u64,
                    max,
                });
            }
        }
        Ok(Some(bytes))
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .copy_source(format!("{}/{from}", self.bucket))
            .key(to)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn download_url(
        &self,
        key: &str,
        file_name: &str,
        content_type: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<String, StorageError> {
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_type(content_type)
            .response_content_disposition(super::attachment(file_name))
            .presigned(presigning(now, expires_at)?)
            .await
            .map_err(unavailable)?;
        Ok(presigned.uri().to_owned())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// `content-type` → `Content-Type`, as a person reads headers.
fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}
