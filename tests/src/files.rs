//! Document storage for the tests: the application's files kept on this
//! machine (sealed, served by the local server the test spawns), or, on the
//! emulated AWS path, in a bucket of the test's own on moto's S3; and a
//! plain HTTP client for the URLs storage signs, as an end user's browser
//! or a partner's would use them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use functions::adapters::documents::local::LocalFiles;
use functions::adapters::documents::s3::S3Documents;
use functions::app::App;

use crate::api::{Raw, WireResponse, wire};
use crate::support::TempDir;

/// Where a test application keeps documents, kept alive as long as it.
pub enum Storage {
    Local(Arc<TempDir>),
    S3 { bucket: String },
}

/// Gives `app` document storage: a bucket named `bucket` on moto's S3 when
/// one is given and moto's S3 is here, files in a fresh folder otherwise.
pub async fn attach(app: &mut App, bucket: Option<&str>) -> Storage {
    if let Some(bucket) = bucket
        && std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
    {
        let config = functions::adapters::aws::sdk_config().await;
        let client = S3Documents::client(&config);
        let region = config.region().map(|r| r.to_string()).unwrap_or_default();
        let mut create = client.create_bucket().bucket(bucket);
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        create.send().await.expect("a bucket on moto's S3");
        app.documents = Some(Arc::new(S3Documents::new(client, bucket.to_owned())));
        app.local_files = None;
        return Storage::S3 {
            bucket: bucket.to_owned(),
        };
    }
    let dir = Arc::new(TempDir::new("documents"));
    let files = LocalFiles::new(dir.path().to_owned(), app.sealer.clone(), "http://127.0.0.1:9".into());
    *app = app.clone().with_local_files(files);
    Storage::Local(dir)
}

/// The address and the path with its query of an `http://` URL.
fn split(url: &str) -> (SocketAddr, String) {
    let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(parsed.scheme(), "http", "{url}");
    let host = parsed.host_str().expect("a host");
    let host = if host == "localhost" { "127.0.0.1" } else { host };
    let addr: SocketAddr = format!("{host}:{}", parsed.port_or_known_default().expect("a port"))
        .parse()
        .expect("a loopback address");
    let mut path = parsed.path().to_owned();
    if let Some(query) = parsed.query() {
        path.push('?');
        path.push_str(query);
    }
    (addr, path)
}

/// Sends `body` with `method` to a signed URL, carrying `headers`, as the
/// upload target says.
pub async fn send(method: &str, url: &str, headers: &BTreeMap<String, String>, body: Vec<u8>) -> WireResponse {
    let (addr, path) = split(url);
    let mut raw = Raw::new(method, &path);
    for (name, value) in headers {
        raw = raw.header(name, value.clone());
    }
    wire(addr, raw.body(body)).await
}

/// A `GET` of a signed URL.
pub async fn fetch(url: &str) -> WireResponse {
    send("GET", url, &BTreeMap::new(), Vec::new()).await
}
