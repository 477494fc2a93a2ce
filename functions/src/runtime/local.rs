//! The whole API on this machine: the same handlers as the Lambda functions,
//! routed as API Gateway routes them, over the embedded store, with the expiry
//! sweep and the event relay (outbox → bus → fan-out → dispatcher) running in
//! process.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use lambda_http::{Body, Response};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::adapters::providers::Providers;
use crate::adapters::store::dynamodb::DynamoStore;
use crate::adapters::store::sqlite::SqliteStore;
use crate::admin::{self, Credentials};
use crate::api::routes::Router;
use crate::app::{App, Settings};
use crate::runtime::listener::{AcceptBackoff, Limits};
use crate::runtime::relay::Relay;
use crate::web::{ApiError, problem_response};
use korala_domain::tenancy::Mode;
use korala_domain::webhooks::UrlPolicy;

/// Binds `addr` and serves until the task is dropped, with the default
/// [`Limits`]; returns the bound address (pass port 0 for any free port).
pub async fn spawn(app: App, addr: SocketAddr) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    spawn_with(app, addr, Limits::default()).await
}

/// As [`spawn`], within `limits`: at most `max_connections` at once (the
/// next waits in the backlog until one closes), `header_timeout` for each
/// request's headers, and a growing wait after each failed accept.
pub async fn spawn_with(
    app: App,
    addr: SocketAddr,
    limits: Limits,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    // The files' URLs name this server, unless the service has a public
    // address of its own.
    if let Some(files) = &app.local_files
        && crate::app::public_url().is_none()
    {
        files.serve_at(format!("http://{bound}"));
    }
    let router = Arc::new(Router::new());
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let handle = tokio::spawn(async move {
        let mut backoff = AcceptBackoff::default();
        loop {
            // Taken before accepting: past the cap, connections stay in the
            // kernel's backlog instead of each taking a task and a descriptor.
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return; // Never: the semaphore is never closed.
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    if let Some(failures) = backoff.accepted() {
                        tracing::info!(failures, "accepting connections again");
                    }
                    stream
                }
                Err(e) => {
                    let wait = backoff.failed();
                    if wait.first {
                        tracing::warn!(error = %e, "accept failed; waiting longer after each failure until one succeeds");
                    }
                    drop(permit);
                    tokio::time::sleep(wait.delay).await;
                    continue;
                }
            };
            let (app, router) = (app.clone(), router.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let service = service_fn(move |req| {
                    let (app, router) = (app.clone(), router.clone());
                    async move { Ok::<_, Infallible>(handle(&router, app, req).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "connection closed with an error");
                }
            });
        }
    });
    Ok((bound, handle))
}

async fn handle(router: &Router, app: App, req: hyper::Request<Incoming>) -> Response<Body> {
    let limit = app.settings.max_body_bytes;
    let (parts, body) = req.into_parts();
    // Files go to their own URLs, as they go to S3 on AWS: their bodies
    // are bounded by the size each URL was signed for, not the API's.
    if parts
        .uri
        .path()
        .starts_with(crate::adapters::documents::local::PATH_PREFIX)
        && let Some(files) = &app.local_files
    {
        let now = app.clock.now();
        return files
            .serve(
                &parts.method,
                parts.uri.path(),
                parts.uri.query(),
                &parts.headers,
                body,
                now,
            )
            .await;
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return problem_response(&ApiError::PayloadTooLarge { limit }),
    };
    // The document is the local server's alone: API Gateway routes only the
    // functions' paths.
    if let Some(response) = crate::api::openapi::serve(&parts.method, parts.uri.path()) {
        return response;
    }
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        Body::Binary(bytes.to_vec())
    };
    router
        .dispatch(app, lambda_http::Request::from_parts(parts, body))
        .await
}

/// What the start banner says of reading documents: the OCR engine found,
/// or why there is none and how to get it. Without one, uploads are still
/// taken, stored and checked by content.
pub async fn ocr_status() -> String {
    use crate::adapters::ocr::Tesseract;
    const INSTALL: &str = "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-script-latn";
    match Tesseract::detect() {
        None => format!("No OCR engine (tesseract is not on PATH): documents are stored, not read ({INSTALL})"),
        Some(engine) => match engine.check().await {
            Ok(()) => format!("Reading documents with {}", engine.program().display()),
            Err(e) => format!("No OCR engine: {e} ({INSTALL})"),
        },
    }
}

/// Expires due sessions every `every`, as the scheduled sweeper does on AWS.
pub fn spawn_expiry_ticker(app: App, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        loop {
            interval.tick().await;
            match crate::consumers::expiry::sweep(&app, 100).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "expiry sweep"),
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
            }
        }
    })
}

/// Whether this process relays events (`KORALA_EVENTS`, default `on`).
/// Several servers may share one database; `off` leaves the events in the
/// outbox for the one that relays them.
pub fn relays_events() -> bool {
    !matches!(std::env::var("KORALA_EVENTS").as_deref(), Ok("off"))
}

/// The application of the local server and its event relay: the embedded
/// store at `SESSIONS_DB_PATH`, or DynamoDB when `SESSIONS_TABLE` is set.
pub async fn application() -> Result<(App, Option<Relay>), Box<dyn std::error::Error>> {
    ensure_table().await?;
    let sealer = crate::app::local_sealer()?;
    let settings = Arc::new(Settings::from_env(UrlPolicy::Development));
    let providers = Arc::new(Providers::from_env().map_err(|e| e.to_string())?);
    match crate::app::table_name() {
        None => {
            let store = Arc::new(SqliteStore::open(&crate::app::db_path())?);
            let mut app = App::new(store.clone(), sealer);
            app.settings = settings;
            let mut app = crate::app::with_documents(app, &Default::default()).await;
            let relay = Relay::embedded(&mut app, &store, providers)?;
            Ok((app, Some(relay)))
        }
        Some(table) => {
            let mut app = App::new(Arc::new(DynamoStore::connect(&table).await), sealer);
            app.settings = settings;
            let mut app = crate::app::with_documents(app, &Default::default()).await;
            // The emulated AWS path, where SQS and EventBridge are reachable
            // (moto: scripts/moto); without them the API still serves.
            match Relay::emulated_aws(&mut app, &table, crate::adapters::topology::PREFIX, providers).await {
                Ok(relay) => Ok((app, Some(relay))),
                Err(e) => {
                    eprintln!("not relaying events: no SQS/EventBridge ({e}); start moto with scripts/moto");
                    Ok((app, None))
                }
            }
        }
    }
}

/// The key the local server prints at start: `DEV_API_KEY_ID` and
/// `DEV_API_SECRET` when set (seeded once), otherwise a test key generated on
/// first start and kept beside the database.
pub async fn dev_credentials(app: &App) -> Result<Credentials, Box<dyn std::error::Error>> {
    if let (Ok(key_id), Ok(secret)) = (std::env::var("DEV_API_KEY_ID"), std::env::var("DEV_API_SECRET")) {
        return seed(app, &key_id, &secret).await;
    }
    let path = crate::app::db_path().with_file_name("dev-credentials.json");
    if let Ok(saved) = std::fs::read_to_string(&path) {
        // It holds an API secret: private, even if an earlier version wrote it readable.
        crate::runtime::private::restrict(&path)?;
        let saved: Credentials = serde_json::from_str(&saved)?;
        if app.store.get_api_key(&saved.api_key_id).await?.is_some() {
            return Ok(saved);
        }
    }
    let org = admin::create_organization(app, "Local development").await?;
    let credentials = admin::create_key(app, &org.id, Mode::Test).await?;
    crate::app::write_private(&path, &serde_json::to_string_pretty(&credentials)?)?;
    Ok(credentials)
}

async fn seed(app: &App, key_id: &str, secret: &str) -> Result<Credentials, Box<dyn std::error::Error>> {
    if Mode::of_key_id(key_id).is_none() {
        return Err("DEV_API_KEY_ID must start with ak_test_ or ak_live_".into());
    }
    if let Some(existing) = app.store.get_api_key(key_id).await? {
        if app.sealer.open(&existing.sealed_secret)? != secret {
            return Err(format!("{key_id} already exists with another secret").into());
        }
        return Ok(Credentials {
            org_id: existing.org_id,
            api_key_id: key_id.to_owned(),
            api_secret: secret.to_owned(),
        });
    }
    let org = admin::create_organization(app, "Local development").await?;
    Ok(admin::add_key(app, &org.id, key_id, secret).await?)
}

/// With `SESSIONS_TABLE` set, creates the table (from the same definition the
/// SAM template declares) when it does not exist yet, so the local server runs
/// against a fresh DynamoDB Local in one command. Deployed functions never
/// create tables.
pub async fn ensure_table() -> Result<(), Box<dyn std::error::Error>> {
    let Some(table) = crate::app::table_name() else {
        return Ok(());
    };
    let store = crate::adapters::store::dynamodb::DynamoStore::connect(&table).await;
    let client = store.client();
    match client.describe_table().table_name(&table).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            println!("creating DynamoDB table {table}");
            Ok(crate::adapters::store::dynamodb::table::create_table(client, &table).await?)
        }
        Err(e) => Err(format!(
            "cannot reach DynamoDB table {table}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(e)
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::adapters::crypto::Sealer;

    fn app() -> App {
        let store = Arc::new(SqliteStore::in_memory().expect("an in-memory store"));
        App::new(
            store,
            Sealer::from_base64(&Sealer::generate_key()).expect("a fresh key"),
        )
    }

    /// Reads until the server closes the connection; how long that took, or
    /// `None` if it still had not after `limit`.
    async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        let mut buffer = [0u8; 1024];
        loop {
            match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buffer)).await {
                Err(_) => return None,
                Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
                Ok(Ok(_)) => {}
            }
        }
    }

    fn limits(max_connections: usize, header_seconds: u64) -> Limits {
        Limits {
            max_connections,
            header_timeout: Duration::from_secs(header_seconds),
        }
    }

    async fn serve(limits: Limits) -> SocketAddr {
        let (address, _server) = spawn_with(app(), SocketAddr::from(([127, 0, 0, 1], 0)), limits)
            .await
            .unwrap();
        address
    }

    /// The document the local server serves itself, over a connection.
    async fn get_document(stream: &mut TcpStream) -> String {
        stream
            .write_all(b"GET /api/v1/openapi.json HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[tokio::test]
    async fn a_client_slow_to_send_its_headers_is_disconnected() {
        // The default limits: ten seconds.
        let address = serve(Limits::default()).await;
        let mut slow = TcpStream::connect(address).await.unwrap();
        slow.write_all(b"GET /api/v1/openapi.json HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        let closed = closed_within(&mut slow, Duration::from_secs(15)).await;
        assert!(
            closed.is_some_and(|after| after >= Duration::from_secs(9)),
            "{closed:?}"
        );
        // So is one that sends nothing at all, and one kept alive idle.
        let address = serve(limits(8, 1)).await;
        let mut silent = TcpStream::connect(address).await.unwrap();
        let closed = closed_within(&mut silent, Duration::from_secs(5)).await;
        assert!(closed.is_some_and(|after| after < Duration::from_secs(3)), "{closed:?}");
        let mut idle = TcpStream::connect(address).await.unwrap();
        idle.write_all(b"GET /api/v1/openapi.json HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 12];
        idle.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        let closed = closed_within(&mut idle, Duration::from_secs(5)).await;
        assert!(closed.is_some_and(|after| after < Duration::from_secs(3)), "{closed:?}");
    }

    #[tokio::test]
    async fn connections_past_the_cap_wait_for_one_to_close() {
        let address = serve(limits(2, 30)).await;
        let mut held = vec![
            TcpStream::connect(address).await.unwrap(),
            TcpStream::connect(address).await.unwrap(),
        ];
        // Both held connections are served (they send nothing yet).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut third = TcpStream::connect(address).await.unwrap();
        third
            .write_all(b"GET /api/v1/openapi.json HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut first_byte = [0u8; 1];
        let waited = tokio::time::timeout(Duration::from_millis(500), third.read(&mut first_byte)).await;
        assert!(
            waited.is_err(),
            "the third connection was answered past the cap: {waited:?}"
        );
        // One held connection is used and closes: the third is served.
        assert_eq!(get_document(&mut held[0]).await, "HTTP/1.1 200 OK");
        drop(held.remove(0));
        let answered = tokio::time::timeout(Duration::from_secs(5), third.read(&mut first_byte)).await;
        assert!(matches!(answered, Ok(Ok(1))), "{answered:?}");
    }
}
