//! DynamoDB misbehaving on purpose: a proxy on 127.0.0.1 in front of
//! DynamoDB Local that throttles, fails, stalls or loses requests as the
//! test's [`Rule`]s say, and a store whose client goes through it with
//! timeouts short enough that a retried fault costs milliseconds.
//!
//! A proxy rather than a wrapped SDK HTTP client: the wire is where
//! DynamoDB's faults happen, and a lost answer is real: the request reaches
//! DynamoDB Local, which applies it, and the client sees its connection drop.
//!
//! Faults follow attempts: the SDK resends a retried request byte for byte
//! (the same item with the same `writeId`, the same transaction token), so
//! the proxy counts attempts per request body, and a rule's faults meet its
//! first attempts in order.
//!
//! The SDK keeps a retry quota per service and region for the whole process
//! (a token bucket of 500: a throttling retry takes 5, any other 10; the
//! quota comes back when the request then succeeds, except for the retries
//! before its last one, which are spent). A test binary that injects
//! hundreds of faults retried twice would run out of it and see faults
//! unretried, so the tests inject a second fault on writes only, and
//! throttling where they can.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use functions::adapters::store::dynamodb::DynamoStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::dynamodb::Table;

/// What a faulty attempt meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `400 ProvisionedThroughputExceededException`: a hot partition.
    Throttled,
    /// `400 ThrottlingException`: the control plane's, or an account limit.
    Throttling,
    /// `500 InternalServerError`.
    InternalError,
    /// `503 ServiceUnavailable`.
    Unavailable,
    /// No answer: the attempt times out.
    Stall,
    /// DynamoDB applies the request, and the connection drops before the
    /// answer: the client cannot tell it from a request that never arrived.
    Lost,
    /// DynamoDB applies the request and answers after the attempt timed out.
    Late,
}

/// The operations a store reads with.
pub const READS: &[&str] = &["GetItem", "Query", "BatchGetItem"];
/// The operations a store writes with.
pub const WRITES: &[&str] = &["PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"];

/// Which requests meet which faults.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The operations (`X-Amz-Target`'s action) it applies to.
    operations: &'static [&'static str],
    /// The faults the first attempts of each request meet, one per attempt;
    /// the attempts after them go through.
    faults: Vec<Fault>,
    /// Every attempt meets the last fault instead: the request cannot succeed.
    always: bool,
    /// It meets admission's writes (rate buckets, used signatures) and
    /// nothing else; a rule without it meets everything else. Metering
    /// every request doubles a journey's writes, and faulting them all
    /// would spend the SDK's retry quota (above) on bookkeeping.
    admission: bool,
}

impl Rule {
    /// The first attempts of every request of `operations` meet `faults`.
    pub fn first(operations: &'static [&'static str], faults: &[Fault]) -> Self {
        Self {
            operations,
            faults: faults.to_vec(),
            always: false,
            admission: false,
        }
    }

    /// Every attempt of every request of `operations` meets `fault`.
    pub fn always(operations: &'static [&'static str], fault: Fault) -> Self {
        Self {
            operations,
            faults: vec![fault],
            always: true,
            admission: false,
        }
    }

    /// The rule, meeting admission's writes instead of the others.
    pub fn on_admission(mut self) -> Self {
        self.admission = true;
        self
    }

    fn fault(&self, attempt: usize) -> Option<Fault> {
        match self.always {
            true => self.faults.last().copied(),
            false => self.faults.get(attempt - 1).copied(),
        }
    }
}

#[derive(Default)]
struct Plan {
    rules: Vec<Rule>,
    /// Attempts seen per request (operation and body), since the rules were set.
    attempts: HashMap<u64, usize>,
    injected: Vec<(String, Fault)>,
}

/// Whether a request writes admission's bookkeeping (a rate bucket, a used
/// signature), which every API request does before its handler runs.
fn admission(body: &[u8]) -> bool {
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    has(br#""S":"RATE#"#) || has(br#""S":"SIGNATURE#"#)
}

impl Plan {
    fn decide(&mut self, operation: &str, body: &[u8]) -> Option<Fault> {
        let admitting = admission(body);
        let rule = self
            .rules
            .iter()
            .find(|r| r.operations.contains(&operation) && r.admission == admitting)?;
        let mut hasher = DefaultHasher::new();
        (operation, body).hash(&mut hasher);
        let attempt = self.attempts.entry(hasher.finish()).or_default();
        *attempt += 1;
        let fault = rule.fault(*attempt)?;
        self.injected.push((operation.to_owned(), fault));
        Some(fault)
    }
}

/// The proxy. It serves until dropped.
pub struct Faults {
    addr: SocketAddr,
    plan: Arc<Mutex<Plan>>,
    server: tokio::task::JoinHandle<()>,
}

/// Longer than any attempt timeout of [`store`]: a stalled connection is
/// held until the client gives up on it, or this long.
const STALL: Duration = Duration::from_secs(10);

impl Faults {
    /// A proxy in front of DynamoDB Local (`AWS_ENDPOINT_URL_DYNAMODB`),
    /// passing every request through until rules are set.
    pub async fn start() -> Self {
        let upstream = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .expect("AWS_ENDPOINT_URL_DYNAMODB names DynamoDB Local (scripts/test starts it)");
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("the fault proxy binds");
        let addr = listener.local_addr().expect("the proxy's address");
        let plan = Arc::new(Mutex::new(Plan::default()));
        let shared = plan.clone();
        let server = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream.clone(), shared.clone()));
            }
        });
        Self { addr, plan, server }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn plan(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// From now on requests meet these rules (the first that names a
    /// request's operation), counting attempts afresh.
    pub fn set(&self, rules: Vec<Rule>) {
        let mut plan = self.plan();
        *plan = Plan {
            rules,
            ..Plan::default()
        };
    }

    /// Every request goes through again; returns the faults injected since
    /// the rules were set, as (operation, fault).
    pub fn clear(&self) -> Vec<(String, Fault)> {
        std::mem::take(&mut *self.plan()).injected
    }
}

impl Drop for Faults {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One HTTP/1.1 request as read off the connection.
struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.head, name)
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// Serves one client connection, request after request (the SDK keeps its
/// connections alive), until a fault or the client ends it.
async fn serve(mut client: TcpStream, upstream: String, plan: Arc<Mutex<Plan>>) {
    let mut buffered = Vec::new();
    while let Some(request) = read_request(&mut client, &mut buffered).await {
        let operation = request
            .header("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        let fault = plan
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .decide(&operation, &request.body);
        let answer = match fault {
            None => forward(&upstream, &request).await,
            Some(Fault::Throttled) => error(400, "ProvisionedThroughputExceededException"),
            Some(Fault::Throttling) => error(400, "ThrottlingException"),
            Some(Fault::InternalError) => error(500, "InternalServerError"),
            Some(Fault::Unavailable) => error(503, "ServiceUnavailable"),
            Some(Fault::Stall) => return hold(client).await,
            Some(Fault::Lost) => {
                forward(&upstream, &request).await;
                return;
            }
            Some(Fault::Late) => {
                forward(&upstream, &request).await;
                return hold(client).await;
            }
        };
        if client.write_all(&answer).await.is_err() {
            return;
        }
    }
}

/// Keeps the connection open without answering until the client closes it.
async fn hold(mut client: TcpStream) {
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(STALL, async {
        while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// The next request on the connection (`buffered` keeps what was read past
/// it), or `None` once the client closed it.
async fn read_request(client: &mut TcpStream, buffered: &mut Vec<u8>) -> Option<Request> {
    let end = loop {
        if let Some(end) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        read_more(client, buffered).await?;
    };
    let head = String::from_utf8_lossy(&buffered[..end]).into_owned();
    // The SDK sends every DynamoDB request with its length.
    let length: usize = header(&head, "content-length")?.parse().ok()?;
    while buffered.len() < end + length {
        read_more(client, buffered).await?;
    }
    let body = buffered[end..end + length].to_vec();
    buffered.drain(..end + length);
    Some(Request { head, body })
}

async fn read_more(stream: &mut TcpStream, buffered: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 16 * 1024];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buffered.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

/// DynamoDB's error document.
fn error(status: u16, code: &str) -> Vec<u8> {
    let body = format!(
        r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"injected by the test's fault proxy"}}"#
    );
    response(
        &format!("HTTP/1.1 {status} Fault"),
        &[("content-type", "application/x-amz-json-1.0")],
        body.as_bytes(),
    )
}

fn response(status_line: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{status_line}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends the request to DynamoDB on a connection of its own and returns the
/// answer, re-framed with its length for the client's kept-alive connection;
/// a 502 when DynamoDB cannot be reached.
async fn forward(upstream: &str, request: &Request) -> Vec<u8> {
    match exchange(upstream, request).await {
        Ok(answer) => answer,
        Err(e) => response("HTTP/1.1 502 Bad Gateway", &[], e.to_string().as_bytes()),
    }
}

async fn exchange(upstream: &str, request: &Request) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    let mut head: Vec<&str> = request
        .head
        .trim_end()
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    head.push("connection: close");
    server
        .write_all(format!("{}\r\n\r\n", head.join("\r\n")).as_bytes())
        .await?;
    server.write_all(&request.body).await?;
    let mut raw = Vec::new();
    server.read_to_end(&mut raw).await?;
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, "an unreadable answer from DynamoDB");
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(invalid)?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(invalid)?;
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .filter(|(n, _)| {
            !["content-length", "transfer-encoding", "connection"]
                .iter()
                .any(|framing| n.eq_ignore_ascii_case(framing))
        })
        .collect();
    let rest = &raw[end + 4..];
    let body = match header(&head, "transfer-encoding") {
        Some(coding) if coding.eq_ignore_ascii_case("chunked") => dechunk(rest),
        _ => match header(&head, "content-length").and_then(|l| l.parse::<usize>().ok()) {
            Some(length) => rest[..length.min(rest.len())].to_vec(),
            None => rest.to_vec(),
        },
    };
    Ok(response(status_line, &headers, &body))
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&rest[..end]);
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        let start = end + 2;
        if size == 0 || start + size > rest.len() {
            break;
        }
        body.extend_from_slice(&rest[start..start + size]);
        rest = &rest[(start + size + 2).min(rest.len())..];
    }
    body
}

/// Per attempt: several times DynamoDB Local's slowest answers on a busy
/// two-core machine, and still what a stalled attempt costs a test.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

/// A store on `table` whose requests go through `faults`: production's three
/// attempts (see `functions::adapters::aws`), with attempts of [`ATTEMPT_TIMEOUT`],
/// 3 s for a whole operation, and millisecond backoffs.
pub async fn store(table: &Table, faults: &Faults) -> DynamoStore {
    let base = functions::adapters::aws::sdk_config().await;
    let retries = base
        .retry_config()
        .cloned()
        .expect("the SDK configuration sets retries")
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(40));
    let timeouts = base
        .timeout_config()
        .expect("the SDK configuration sets timeouts")
        .to_builder()
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(Duration::from_secs(3))
        .build();
    // The service's own setting outranks `AWS_ENDPOINT_URL_DYNAMODB`, which
    // names DynamoDB Local itself.
    let config = aws_sdk_dynamodb::config::Builder::from(&base)
        .endpoint_url(faults.url())
        .retry_config(retries)
        .timeout_config(timeouts)
        .build();
    DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), &table.name)
}
