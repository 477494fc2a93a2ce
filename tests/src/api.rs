//! A harness for end-to-end API tests: the whole application over an
//! in-memory store, a clock the test moves, two organisations with signed
//! test keys, and helpers that send requests through the same router the
//! local server and API Gateway use.
//!
//! Every request goes in-process through [`Router::dispatch`] as a
//! `lambda_http::Request`; [`Api::spawn_server`] serves the same application
//! over real TCP for the tests that need the wire.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use functions::adapters::crypto::Sealer;
use functions::adapters::store::AppStore;
use functions::adapters::store::sqlite::SqliteStore;
use functions::admin::{self, Credentials};
use functions::api::routes::{PREFIX, Router};
use functions::app::{App, Settings};
use functions::runtime::relay::Relay;
use functions::web::auth::{sign, signing_payload};
use http::{HeaderMap, HeaderValue, StatusCode};
use korala_domain::limits::Rate;
use korala_domain::tenancy::Mode;
use korala_domain::webhooks::UrlPolicy;
use lambda_http::Body;
use serde_json::{Value, json};

/// What every request helper returns: the status, the body as JSON (`null`
/// when empty, a JSON string when the body is not JSON) and the headers.
pub type Reply = (StatusCode, Value, HeaderMap);

pub use korala_domain::testing::TestClock;

/// A request as it goes on the wire, for the tests that send malformed ones.
#[derive(Debug, Clone)]
pub struct Raw {
    pub method: String,
    /// The full path with the query, e.g. `/api/v1/sessions?limit=2`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    pub fn set_header(self, name: &str, value: impl Into<String>) -> Self {
        self.without_header(name).header(name, value)
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The request as the router receives it from API Gateway.
    pub fn request(&self) -> Result<lambda_http::Request, http::Error> {
        let mut builder = http::Request::builder()
            .method(self.method.as_str())
            .uri(self.path.as_str());
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let body = if self.body.is_empty() {
            Body::Empty
        } else {
            Body::from(self.body.clone())
        };
        builder.body(body)
    }
}

/// No limit: nothing is metered (see [`Rate::unmetered`]).
pub fn unmetered() -> Rate {
    Rate::unmetered()
}

/// `path` under `/api/v1` unless it already starts there.
pub fn full_path(path: &str) -> String {
    if path.starts_with(PREFIX) {
        path.to_owned()
    } else {
        format!("{PREFIX}{path}")
    }
}

/// The application under test and who may call it.
#[derive(Clone)]
pub struct Api {
    pub app: App,
    pub clock: Arc<TestClock>,
    pub router: Arc<Router>,
    /// The main organisation's sandbox key (`ak_test_…`).
    pub key: Credentials,
    /// A live key (`ak_live_…`) of the same organisation.
    pub live: Credentials,
    /// A second organisation's key, for tenant isolation.
    pub other: Credentials,
    /// The DynamoDB Local table behind the store, kept for the test's life.
    pub table: Option<Arc<crate::dynamodb::Table>>,
    /// The embedded store, when it is the one behind the application.
    pub sqlite: Option<Arc<SqliteStore>>,
    /// Where the application keeps documents: files on this machine, or,
    /// over DynamoDB Local, a bucket on moto's S3.
    pub storage: Arc<crate::files::Storage>,
    /// The instants each kind of request was signed at (see
    /// [`Api::signing_time`]).
    signatures: Arc<Mutex<std::collections::HashMap<Vec<u8>, std::collections::HashSet<i64>>>>,
}

impl Api {
    /// A fresh application over a private store: an in-memory embedded store,
    /// or a table of its own on DynamoDB Local when `KORALA_TEST_STORE=dynamodb`
    /// (`scripts/test` runs the API tests both ways).
    pub async fn new() -> Self {
        match std::env::var("KORALA_TEST_STORE").as_deref() {
            Ok("dynamodb") => {
                let table = Arc::new(crate::dynamodb::Table::new().await);
                let mut api = Self::with_store(Arc::new(table.store.clone())).await;
                api.storage = Arc::new(crate::files::attach(&mut api.app, Some(&table.name)).await);
                api.table = Some(table);
                api
            }
            Ok("sqlite") | Err(_) => {
                let store = Arc::new(SqliteStore::in_memory().expect("an in-memory store"));
                let mut api = Self::with_store(store.clone()).await;
                api.sqlite = Some(store);
                api
            }
            Ok(other) => panic!("KORALA_TEST_STORE must be sqlite or dynamodb, not {other}"),
        }
    }

    pub async fn with_store(store: Arc<dyn AppStore>) -> Self {
        let sealer = Sealer::from_base64(&Sealer::generate_key()).expect("a generated master key");
        let mut app = App::new(store, sealer);
        let clock = Arc::new(TestClock::new(Utc::now()));
        app.clock = clock.clone();
        // The test clock stands still unless a test moves it, so the
        // default rates would soon refuse everything: tests of the rate
        // limits (and of what metering costs) set their own.
        app.settings = Arc::new(Settings {
            partner_rate: unmetered(),
            access_rate: unmetered(),
            send_rate: unmetered(),
            ..Settings::default()
        });
        let storage = Arc::new(crate::files::attach(&mut app, None).await);
        let org = admin::create_organization(&app, "Acme Verification")
            .await
            .expect("an organisation");
        let key = admin::create_key(&app, &org.id, Mode::Test).await.expect("a test key");
        let live = admin::create_key(&app, &org.id, Mode::Live).await.expect("a live key");
        let second = admin::create_organization(&app, "Other Corp")
            .await
            .expect("a second organisation");
        let other = admin::create_key(&app, &second.id, Mode::Test)
            .await
            .expect("the second org's key");
        Self {
            app,
            clock,
            router: Arc::new(Router::new()),
            key,
            live,
            other,
            table: None,
            sqlite: None,
            storage,
            signatures: Arc::default(),
        }
    }

    /// The event relay of this application (outbox, bus, fan-out, dispatcher),
    /// for the test to step, with webhook URLs on this machine allowed. Over
    /// the embedded store it runs in process; over DynamoDB Local it is the
    /// emulated AWS path: the table's stream, EventBridge and SQS on moto.
    pub async fn relay(&mut self) -> Relay {
        self.relay_with(providers()).await
    }

    /// [`Api::relay`] with these check providers in the checks worker.
    pub async fn relay_with(&mut self, providers: Arc<functions::adapters::providers::Providers>) -> Relay {
        let mut settings = (*self.app.settings).clone();
        settings.webhook_urls = UrlPolicy::Development;
        self.app.settings = Arc::new(settings);
        match (&self.sqlite, &self.table) {
            (Some(store), _) => Relay::embedded(&mut self.app, store, providers).expect("the relay builds"),
            (None, Some(table)) => crate::aws::relay(&mut self.app, table, providers).await,
            (None, None) => panic!("the application has no store the relay knows"),
        }
    }

    /// The three headers of a signed partner request.
    pub fn signature_headers(
        credentials: &Credentials,
        timestamp: i64,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Vec<(String, String)> {
        key_signature_headers(
            &credentials.api_key_id,
            &credentials.api_secret,
            timestamp,
            method,
            path,
            body,
        )
    }

    /// When a request is signed: now, for the first request of its kind
    /// (method, path and body); a second earlier for the second, a second
    /// later for the third, and so on within the signing window. The test
    /// clock stands still, and a signed mutation is good once, so requests a
    /// test means to send separately must not sign alike, however alike
    /// they are; the same [`Raw`] sent twice is still one signature, as a
    /// replay is.
    pub fn signing_time(&self, method: &str, path: &str, body: &[u8]) -> i64 {
        let mut kind = format!("{method} {path} ").into_bytes();
        kind.extend_from_slice(body);
        let now = self.clock.unix();
        let mut seen = self.signatures.lock().expect("the signing times");
        let used = seen.entry(kind).or_default();
        // now, now - 1, now + 1, now - 2, …: the first this kind has not
        // signed at, within the five-minute window.
        let at = (0..599)
            .map(|n: i64| if n % 2 == 1 { now - (n + 1) / 2 } else { now + n / 2 })
            .find(|at| !used.contains(at))
            .unwrap_or(now);
        used.insert(at);
        at
    }

    /// A partner request signed with `credentials` now, as a [`Raw`] the
    /// test may still tamper with. `path` is under `/api/v1`.
    pub fn signed(&self, credentials: &Credentials, method: &str, path: &str, body: Option<&Value>) -> Raw {
        let path = full_path(path);
        let bytes = body
            .map(|b| serde_json::to_vec(b).expect("a JSON body"))
            .unwrap_or_default();
        let mut raw = Raw::new(method, &path);
        let at = self.signing_time(method, &path, &bytes);
        raw.headers = Self::signature_headers(credentials, at, method, &path, &bytes);
        if body.is_some() {
            raw.headers
                .push(("Content-Type".to_owned(), "application/json".to_owned()));
        }
        raw.body = bytes;
        raw
    }

    /// `raw` signed again, as a client signs a retry: the same request under
    /// a new signature (a signed mutation is good once). A request without
    /// a signature, or with a key this application did not make, comes back
    /// as it was.
    pub fn signed_anew(&self, raw: &Raw) -> Raw {
        let key = raw
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("x-api-key"))
            .map(|(_, value)| value.clone());
        let Some(credentials) = [&self.key, &self.live, &self.other]
            .into_iter()
            .find(|c| Some(&c.api_key_id) == key.as_ref())
        else {
            return raw.clone();
        };
        let at = self.signing_time(&raw.method, &raw.path, &raw.body);
        let mut again = raw.clone();
        for (name, value) in Self::signature_headers(credentials, at, &raw.method, &raw.path, &raw.body) {
            again = again.set_header(&name, value);
        }
        again
    }

    /// A signed request with a raw body (which need not be JSON).
    pub fn signed_bytes(&self, credentials: &Credentials, method: &str, path: &str, body: &[u8]) -> Raw {
        let path = full_path(path);
        let mut raw = Raw::new(method, &path).header("Content-Type", "application/json");
        raw.headers.extend(Self::signature_headers(
            credentials,
            self.signing_time(method, &path, body),
            method,
            &path,
            body,
        ));
        raw.body = body.to_vec();
        raw
    }

    /// A request of the main organisation's test key.
    pub async fn partner(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.partner_as(&self.key, method, path, body).await
    }

    pub async fn partner_as(&self, credentials: &Credentials, method: &str, path: &str, body: Option<Value>) -> Reply {
        let raw = self.signed(credentials, method, path, body.as_ref());
        self.send(raw).await
    }

    /// An end user's request: no signature, the access token in the path.
    pub async fn end_user(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let mut raw = Raw::new(method, &full_path(path));
        if let Some(body) = body {
            raw = raw
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(&body).expect("JSON"));
        }
        self.send(raw).await
    }

    /// Sends a request exactly as given. Every answer is checked for the
    /// one thing no request may cause: a server error.
    pub async fn send(&self, raw: Raw) -> Reply {
        let request = raw.request().expect("a well-formed request");
        let response = self.router.dispatch(self.app.clone(), request).await;
        let (parts, body) = response.into_parts();
        let value = parse_body(body.as_ref());
        assert!(
            !parts.status.is_server_error(),
            "{} {} answered {}: {value}",
            raw.method,
            raw.path,
            parts.status
        );
        (parts.status, value, parts.headers)
    }

    /// Serves this application on a free loopback port.
    pub async fn spawn_server(&self) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        functions::runtime::local::spawn(self.app.clone(), SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("the local server binds")
    }

    // Shortcuts for the common calls, asserting success.

    /// A partner call that must answer `expected`; returns the body.
    pub async fn expect(&self, expected: u16, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value, _) = self.partner(method, path, body).await;
        assert_eq!(status.as_u16(), expected, "{method} {path}: {value}");
        value
    }

    pub async fn get(&self, path: &str) -> Value {
        self.expect(200, "GET", path, None).await
    }

    pub async fn session(&self, id: &str) -> Value {
        self.get(&format!("/sessions/{id}")).await
    }

    pub async fn events(&self, id: &str) -> Vec<Value> {
        let body = self.get(&format!("/sessions/{id}/events")).await;
        body["data"].as_array().expect("an event list").clone()
    }

    pub async fn create_configuration(&self, body: Value) -> Value {
        self.expect(201, "POST", "/session-configurations", Some(body)).await
    }

    /// A configuration running `workflows` in order for the subject.
    pub async fn simple_configuration(&self, slug: &str, workflows: &[&str], extra: Value) -> Value {
        let mut body = json!({ "name": format!("Config {slug}"), "slug": slug, "workflowSlugs": workflows });
        merge(&mut body, extra);
        self.create_configuration(body).await
    }

    /// The built-in KYC plan: identity document, then proof of address.
    pub async fn kyc_configuration(&self, slug: &str) -> Value {
        self.simple_configuration(slug, &["id-document", "proof-of-address"], json!({}))
            .await
    }

    pub async fn create_session(&self, body: Value) -> Value {
        self.expect(201, "POST", "/sessions", Some(body)).await
    }

    pub async fn session_of(&self, configuration: &str, user: &str) -> Value {
        self.create_session(json!({ "configurationSlug": configuration, "externalUserId": user }))
            .await
    }

    pub async fn access(&self, token: &str) -> Value {
        let (status, body, _) = self.end_user("GET", &format!("/access/{token}"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The end user's submission for a step.
    pub async fn submit(&self, token: &str, workflow: &str, data: Value) -> Reply {
        self.end_user(
            "POST",
            &format!("/access/{token}/workflows/{workflow}"),
            Some(json!({ "data": data })),
        )
        .await
    }

    /// A submission that must be accepted; returns the end user's view.
    pub async fn submit_ok(&self, token: &str, workflow: &str, data: Value) -> Value {
        let (status, body, _) = self.submit(token, workflow, data).await;
        assert_eq!(status, StatusCode::OK, "submission to {workflow}: {body}");
        body
    }

    /// A valid identity document for `name`.
    pub fn id_document(&self, name: &str) -> Value {
        json!({
            "documentType": "passport",
            "documentNumber": "X1234567",
            "fullName": name,
            "dateOfBirth": "1990-04-12",
            "expiryDate": self.in_years(8),
            "issuingCountry": "gb"
        })
    }

    /// A recent, valid proof of address for `name`.
    pub fn proof_of_address(&self, name: &str) -> Value {
        json!({
            "documentType": "utility_bill",
            "fullName": name,
            "addressLine1": "1 High Street",
            "city": "London",
            "postalCode": "SW1A 1AA",
            "country": "GB",
            "issueDate": self.clock.days_ago(10)
        })
    }

    fn in_years(&self, years: i32) -> String {
        let today = self.clock.now().date_naive();
        NaiveDate::from_ymd_opt(today.year() + years, 1, 1)
            .expect("a valid date")
            .format("%Y-%m-%d")
            .to_string()
    }

    /// Lists all sessions of the main organisation (following the cursor).
    pub async fn all_sessions(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut path = "/sessions?limit=100".to_owned();
        loop {
            let page = self.get(&path).await;
            out.extend(page["data"].as_array().expect("a list").iter().cloned());
            match page["nextCursor"].as_str() {
                Some(cursor) => path = format!("/sessions?limit=100&cursor={cursor}"),
                None => return out,
            }
        }
    }

    pub async fn count(&self, path: &str) -> usize {
        self.get(path).await["data"].as_array().expect("a list").len()
    }
}

/// Overlays the keys of `extra` onto `base` (both objects).
pub fn merge(base: &mut Value, extra: Value) {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
}

fn parse_body(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// Asserts `reply` is the RFC 9457 problem document of `status` and `code`;
/// returns the document.
#[track_caller]
pub fn assert_problem(reply: &Reply, status: u16, code: &str) -> Value {
    let (actual, body, headers) = reply;
    assert_eq!(
        actual.as_u16(),
        status,
        "expected {status} {code}, got {actual}: {body}"
    );
    assert_eq!(
        headers.get(http::header::CONTENT_TYPE),
        Some(&HeaderValue::from_static("application/problem+json")),
        "{body}"
    );
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], format!("urn:korala:problem:{code}"), "{body}");
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    assert!(body["errors"].is_array(), "{body}");
    body.clone()
}

/// Asserts a `422 validation_failed` naming `field`.
#[track_caller]
pub fn assert_invalid(reply: &Reply, field: &str) -> Value {
    let body = assert_problem(reply, 422, "validation_failed");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(
        fields.contains(&field),
        "expected an error on `{field}`, got {fields:?}: {body}"
    );
    for error in body["errors"].as_array().into_iter().flatten() {
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
    body
}

/// A name pair whose similarity lies between a clear mismatch and a match.
pub fn near_match() -> (&'static str, &'static str) {
    let candidates = [
        ("John Smith", "John Michael Smith"),
        ("Jonathan Smith", "Jon Smith"),
        ("John Smith", "Jon Smyth"),
        ("Katherine Johnson", "Catherine Johnston"),
        ("Jane Smith", "John Smith"),
        ("Alexander Petrov", "Alex Petrov"),
        ("Maria Garcia", "Mario Garcia Lopez"),
    ];
    candidates
        .into_iter()
        .find(|(a, b)| {
            let s = korala_domain::names::similarity(a, b);
            (korala_domain::builtin::NAME_MISMATCH..korala_domain::builtin::NAME_MATCH).contains(&s)
        })
        .expect("a near-match pair among the candidates")
}

/// The `type`s of a history, in order.
pub fn event_types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// How often `kind` occurs in a history.
pub fn occurrences(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

/// Ids of the session's workflows, in order.
pub fn workflow_ids(session: &Value) -> Vec<String> {
    session["workflows"]
        .as_array()
        .expect("workflows")
        .iter()
        .map(|w| w["id"].as_str().expect("an id").to_owned())
        .collect()
}

pub fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string in {value}"))
}

/// A parsed HTTP/1.1 response read from a socket.
#[derive(Debug)]
pub struct WireResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl WireResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        parse_body(&self.body)
    }
}

/// Sends one HTTP/1.1 request over a plain TCP connection (`Connection:
/// close`) and reads the whole response. The body is written from another
/// thread, so a server that answers before reading all of it (413) is seen.
pub async fn wire(addr: SocketAddr, raw: Raw) -> WireResponse {
    tokio::task::spawn_blocking(move || wire_blocking(addr, raw))
        .await
        .expect("the wire request finishes")
}

fn wire_blocking(addr: SocketAddr, raw: Raw) -> WireResponse {
    let mut stream = TcpStream::connect(addr).expect("connect to the local server");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a read timeout");
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n",
        raw.method, raw.path
    );
    for (name, value) in &raw.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", raw.body.len()));
    stream.write_all(head.as_bytes()).expect("write the request head");
    let mut writer = stream.try_clone().expect("a second handle");
    let body = raw.body;
    let sender = std::thread::spawn(move || {
        // The server may stop reading (and close) once it has seen enough.
        let _ = writer.write_all(&body);
        let _ = writer.flush();
    });
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            // A reset after the response arrived ends the read as well.
            Err(e) if !bytes.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the response failed: {e}"),
        }
    }
    let _ = sender.join();
    parse_wire(&bytes)
}

fn parse_wire(bytes: &[u8]) -> WireResponse {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("a status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &bytes[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_vec() };
    WireResponse { status, headers, body }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return body;
        };
        let size_text = String::from_utf8_lossy(&rest[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        if size == 0 {
            return body;
        }
        let start = end + 2;
        body.extend_from_slice(&rest[start..(start + size).min(rest.len())]);
        rest = &rest[(start + size + 2).min(rest.len())..];
    }
}

/// The checks' providers of the tests: the built-in screening over the
/// domain crate's sample list.
pub fn providers() -> Arc<functions::adapters::providers::Providers> {
    let list = korala_domain::screening::ScreeningList::parse(korala_domain::screening::SAMPLE_LIST)
        .expect("the sample list parses");
    let screening = functions::adapters::providers::ScreeningProvider::new(list);
    Arc::new(functions::adapters::providers::Providers::new(Arc::new(screening)))
}

/// The headers that sign a request with the key `key_id` and its secret at
/// `timestamp` (Unix seconds), as a partner's client sends them.
pub fn key_signature_headers(
    key_id: &str,
    secret: &str,
    timestamp: i64,
    method: &str,
    path: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    let ts = timestamp.to_string();
    let payload = signing_payload(&ts, method, path, body);
    let signature = sign(secret, &payload).expect("a signature");
    vec![
        ("X-API-Key".to_owned(), key_id.to_owned()),
        ("X-Timestamp".to_owned(), ts),
        ("X-Signature".to_owned(), signature),
    ]
}
