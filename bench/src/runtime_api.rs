//! A minimal Lambda Runtime API (the endpoints `lambda_runtime` 1.5 calls),
//! for timing one cold start of one process: it serves one queued event and
//! notes when the process first polls for work (the end of its init), when it
//! answers and with what, or how it failed.
//!
//! - `GET /2018-06-01/runtime/invocation/next`: the first call is the end of
//!   init; it gets the queued event (if any) with the headers the runtime
//!   reads. Later calls wait until the stub is dropped: the process is killed
//!   before then.
//! - `POST /2018-06-01/runtime/invocation/{id}/response`: the answer.
//! - `POST /2018-06-01/runtime/invocation/{id}/error` and
//!   `POST /2018-06-01/runtime/init/error`: a failure, with its diagnostic.
//!
//! One stub serves one process: a fresh one per spawn keeps the records apart.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

const PREFIX: &str = "/2018-06-01/runtime";

/// The function's timeout the deadline header announces (the API
/// functions' 10 s).
const DEADLINE: Duration = Duration::from_secs(10);

/// What the process did, as the stub saw it.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// When the process first asked for an event: its init is over.
    pub init_done: Option<Instant>,
    /// When it posted its answer, and the answer.
    pub response: Option<(Instant, Bytes)>,
    /// An init or invocation error it reported (which endpoint, the body).
    pub failure: Option<String>,
}

impl Record {
    fn finished(&self) -> bool {
        self.response.is_some() || self.failure.is_some()
    }
}

/// The one invocation the stub hands out.
#[derive(Debug, Clone)]
struct Invocation {
    request_id: String,
    function_arn: String,
    event: Bytes,
}

struct Shared {
    record: watch::Sender<Record>,
    /// Taken by the first `next`.
    invocation: std::sync::Mutex<Option<Invocation>>,
}

/// A Runtime API on `127.0.0.1`, serving until dropped.
pub struct RuntimeApi {
    address: SocketAddr,
    record: watch::Receiver<Record>,
    server: tokio::task::JoinHandle<()>,
}

/// The process did not get as far as the caller waited for.
#[derive(Debug, thiserror::Error)]
pub enum Stalled {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the process reported a failure: {0}")]
    Failed(String),
}

impl RuntimeApi {
    /// Starts a stub that hands `event` (JSON) to the first `next` as an
    /// invocation of `function`; without an event that `next` only marks the
    /// end of init and waits.
    pub async fn start(function: &str, event: Option<Vec<u8>>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let address = listener.local_addr()?;
        let (record, receiver) = watch::channel(Record::default());
        let invocation = event.map(|event| Invocation {
            request_id: format!("{}-{}", function, epoch_ms()),
            function_arn: format!("arn:aws:lambda:eu-west-1:123456789012:function:{function}"),
            event: Bytes::from(event),
        });
        let shared = Arc::new(Shared {
            record,
            invocation: std::sync::Mutex::new(invocation),
        });
        let server = tokio::spawn(serve(listener, shared));
        Ok(Self {
            address,
            record: receiver,
            server,
        })
    }

    /// What `AWS_LAMBDA_RUNTIME_API` is set to: `host:port`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// When the process first polled for an event.
    pub async fn init_done(&self, timeout: Duration) -> Result<Instant, Stalled> {
        let record = self
            .wait(timeout, |r| r.init_done.is_some() || r.failure.is_some())
            .await?;
        match (record.init_done, record.failure) {
            (_, Some(failure)) => Err(Stalled::Failed(failure)),
            (Some(at), None) => Ok(at),
            (None, None) => Err(Stalled::Timeout(timeout)),
        }
    }

    /// When the process answered its invocation, and the answer.
    pub async fn response(&self, timeout: Duration) -> Result<(Instant, Bytes), Stalled> {
        let record = self.wait(timeout, Record::finished).await?;
        match (record.response, record.failure) {
            (_, Some(failure)) => Err(Stalled::Failed(failure)),
            (Some(response), None) => Ok(response),
            (None, None) => Err(Stalled::Timeout(timeout)),
        }
    }

    async fn wait(&self, timeout: Duration, done: impl FnMut(&Record) -> bool) -> Result<Record, Stalled> {
        let mut record = self.record.clone();
        match tokio::time::timeout(timeout, record.wait_for(done)).await {
            Ok(Ok(record)) => Ok(record.clone()),
            // The server is gone (it never stops on its own): as a timeout.
            Ok(Err(_)) | Err(_) => Err(Stalled::Timeout(timeout)),
        }
    }
}

impl Drop for RuntimeApi {
    /// Stops accepting and ends every connection (the pending `next` polls
    /// with them): the connection tasks live in the server task's set.
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, say: wait for some to be freed.
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        // Finished connections are reaped as new ones come.
        while connections.try_join_next().is_some() {}
        let shared = shared.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            // A connection the process drops (or that is killed) just ends.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let Some(route) = path.strip_prefix(PREFIX) else {
        return Ok(reply(StatusCode::NOT_FOUND, "{}"));
    };
    if method == Method::GET && route == "/invocation/next" {
        return Ok(next(&shared, at).await);
    }
    if method != Method::POST {
        return Ok(reply(StatusCode::NOT_FOUND, "{}"));
    }
    let body = match req.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, "{}")),
    };
    if route == "/init/error" {
        fail(&shared, "init error", &body);
        return Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#));
    }
    let Some(rest) = route.strip_prefix("/invocation/") else {
        return Ok(reply(StatusCode::NOT_FOUND, "{}"));
    };
    match rest.rsplit_once('/') {
        Some((_, "response")) => {
            shared.record.send_modify(|r| {
                r.response.get_or_insert((at, body));
            });
            Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#))
        }
        Some((_, "error")) => {
            fail(&shared, "invocation error", &body);
            Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#))
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, "{}")),
    }
}

/// The first poll gets the event; any other waits until the stub goes.
async fn next(shared: &Shared, at: Instant) -> Response<Full<Bytes>> {
    shared.record.send_modify(|r| {
        r.init_done.get_or_insert(at);
    });
    let invocation = shared.invocation.lock().ok().and_then(|mut i| i.take());
    match invocation {
        Some(invocation) => event_response(&invocation),
        None => std::future::pending().await,
    }
}

fn event_response(invocation: &Invocation) -> Response<Full<Bytes>> {
    let deadline = epoch_ms() + DEADLINE.as_millis() as u64;
    let trace = format!(
        "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
        deadline / 1000,
        deadline,
        deadline
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &invocation.request_id)
        .header("lambda-runtime-deadline-ms", deadline.to_string())
        .header("lambda-runtime-invoked-function-arn", &invocation.function_arn)
        .header("lambda-runtime-trace-id", trace)
        .body(Full::new(invocation.event.clone()))
        .unwrap_or_else(|_| reply(StatusCode::INTERNAL_SERVER_ERROR, "{}"))
}

fn fail(shared: &Shared, what: &str, body: &Bytes) {
    let failure = format!("{what}: {}", String::from_utf8_lossy(body));
    shared.record.send_modify(|r| {
        r.failure.get_or_insert(failure);
    });
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// One request on a fresh connection; the answer's head and body.
    async fn send(api: &RuntimeApi, request: &str) -> String {
        let mut stream = TcpStream::connect(api.address()).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let mut buffer = [0; 4096];
        // The stub keeps the connection open: read until the body is in.
        loop {
            let n = stream.read(&mut buffer).await.unwrap();
            answer.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&answer).into_owned();
            if n == 0 || text.ends_with("}") {
                return text;
            }
        }
    }

    const NEXT: &str = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\n\r\n";

    #[tokio::test]
    async fn hands_out_one_event_and_records_the_answer() {
        let api = RuntimeApi::start("sessions-get", Some(br#"{"a":1}"#.to_vec()))
            .await
            .unwrap();
        let next = send(&api, NEXT).await;
        assert!(next.starts_with("HTTP/1.1 200"), "{next}");
        for header in [
            "lambda-runtime-aws-request-id: sessions-get-",
            "lambda-runtime-deadline-ms: ",
            "lambda-runtime-invoked-function-arn: arn:aws:lambda:eu-west-1:123456789012:function:sessions-get",
            "lambda-runtime-trace-id: Root=1-",
        ] {
            assert!(next.contains(header), "{header} in {next}");
        }
        assert!(next.ends_with(r#"{"a":1}"#), "{next}");
        api.init_done(Duration::from_secs(1)).await.unwrap();

        let body = r#"{"statusCode":200}"#;
        let post = format!(
            "POST /2018-06-01/runtime/invocation/abc/response HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        assert!(send(&api, &post).await.starts_with("HTTP/1.1 202"));
        let (_, answer) = api.response(Duration::from_secs(1)).await.unwrap();
        assert_eq!(answer.as_ref(), body.as_bytes());

        // A second poll waits: the process is killed before it gets work.
        let again = tokio::time::timeout(Duration::from_millis(200), send(&api, NEXT)).await;
        assert!(again.is_err());
    }

    #[tokio::test]
    async fn an_init_error_is_a_failure() {
        let api = RuntimeApi::start("f", None).await.unwrap();
        let body = r#"{"errorType":"x","errorMessage":"no table"}"#;
        let post = format!(
            "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        send(&api, &post).await;
        let failure = api.init_done(Duration::from_secs(1)).await.unwrap_err();
        assert!(failure.to_string().contains("no table"), "{failure}");
    }

    #[tokio::test]
    async fn without_an_event_the_first_poll_only_marks_init() {
        let api = RuntimeApi::start("f", None).await.unwrap();
        let poll = tokio::spawn({
            let address = api.address();
            async move {
                let mut stream = TcpStream::connect(address).await.unwrap();
                stream.write_all(NEXT.as_bytes()).await.unwrap();
                let mut buffer = [0; 16];
                stream.read(&mut buffer).await
            }
        });
        api.init_done(Duration::from_secs(1)).await.unwrap();
        assert!(api.response(Duration::from_millis(100)).await.is_err());
        poll.abort();
    }
}
