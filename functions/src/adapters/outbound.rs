//! The HTTP client deliveries go out through.
//!
//! A partner's URL passed the URL policy when it was registered, but a host
//! name can resolve (or be re-pointed) anywhere, including this network's
//! private addresses. So the client resolves every name itself and connects
//! only to the addresses [`UrlPolicy::allows_address`] allows: the address
//! checked is the address connected to, and a DNS answer cannot slip an
//! internal address in between. IP literals never reach a resolver; the
//! dispatcher re-checks the URL with the policy before each attempt.
//!
//! No redirects are followed (the hyper client follows none), and each
//! attempt has one deadline for connecting, sending and reading the status.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use korala_domain::delivery::{AttemptOutcome, Unreachable};
use korala_domain::webhooks::UrlPolicy;

/// How long one attempt may take, from connecting to the response status.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a response body read (and discarded) so the connection can be
/// reused; a partner's answer body means nothing to us.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
const USER_AGENT: &str = concat!("Korala-Webhooks/", env!("CARGO_PKG_VERSION"));

/// Resolves host names and keeps only the addresses the policy allows.
#[derive(Debug, Clone, Copy)]
pub struct PolicyResolver {
    policy: UrlPolicy,
}

/// Why [`PolicyResolver`] gave no address: its own type, so that the
/// attempt's failure is told apart from the others however the connector
/// wraps it ([`category`]).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot resolve {name}: {source}")]
    Lookup { name: String, source: io::Error },
    #[error("{name} resolves only to addresses deliveries may not reach ({addresses})")]
    Refused { name: String, addresses: String },
}

type Resolving = Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, ResolveError>> + Send>>;

impl tower_service::Service<Name> for PolicyResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy;
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map_err(|source| ResolveError::Lookup {
                    name: name.to_string(),
                    source,
                })?
                .collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|address| policy.allows_address(address.ip()))
                .collect();
            if allowed.is_empty() {
                let refused: Vec<String> = resolved.iter().map(|a| a.ip().to_string()).collect();
                return Err(ResolveError::Refused {
                    name: name.to_string(),
                    addresses: refused.join(", "),
                });
            }
            Ok(allowed.into_iter())
        })
    }
}

/// The pooled HTTP/1 client over rustls (aws-lc-rs, the system's roots) that
/// resolves names with `R`.
pub(crate) type HttpsClient<R> = Client<HttpsConnector<HttpConnector<R>>, Full<Bytes>>;

/// Builds the outbound client: deliveries resolve through a
/// [`PolicyResolver`], the HTTP check providers (URLs the operator
/// configured, not a partner) through the system resolver. One stack, so TLS
/// and connection settings cannot drift apart.
pub(crate) fn https_client<R>(resolver: R) -> io::Result<HttpsClient<R>>
where
    R: tower_service::Service<
            Name,
            Response: Iterator<Item = SocketAddr>,
            Error: Into<Box<dyn std::error::Error + Send + Sync>>,
            Future: Send,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    let mut http = HttpConnector::new_with_resolver(resolver);
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https))
}

/// Sends signed deliveries. Cheap to clone; build one per process.
#[derive(Clone)]
pub struct DeliveryClient {
    client: HttpsClient<PolicyResolver>,
    timeout: Duration,
}

impl DeliveryClient {
    pub fn new(policy: UrlPolicy) -> io::Result<Self> {
        Ok(Self {
            client: https_client(PolicyResolver { policy })?,
            timeout: ATTEMPT_TIMEOUT,
        })
    }

    /// One attempt: POSTs the JSON body with the given headers and reports
    /// what happened, for the delivery log, and what went wrong in detail,
    /// for the operator's.
    pub async fn post(&self, url: &str, headers: &[(&'static str, String)], body: &str) -> Posted {
        let started = Instant::now();
        let (outcome, detail) = match tokio::time::timeout(self.timeout, self.send(url, headers, body)).await {
            Ok(Ok(status_code)) => (AttemptOutcome::Responded { status_code }, None),
            Ok(Err(error)) => (
                AttemptOutcome::Unreachable { error: error.category },
                Some(error.detail),
            ),
            Err(_) => (
                AttemptOutcome::Unreachable {
                    error: Unreachable::Timeout,
                },
                Some(format!("no response within {} seconds", self.timeout.as_secs())),
            ),
        };
        Posted {
            outcome,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            detail,
        }
    }

    async fn send(&self, url: &str, headers: &[(&'static str, String)], body: &str) -> Result<u16, Failure> {
        let mut request = hyper::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, USER_AGENT);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        // The URL passed the policy and the headers are ours: a request that
        // cannot be built never left, and nothing better describes it.
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
            .map_err(|e| Failure {
                category: Unreachable::Connect,
                detail: format!("cannot build the request: {e}"),
            })?;
        let response = self.client.request(request).await.map_err(|e| Failure {
            category: category(&e),
            detail: chain(&e),
        })?;
        let status = response.status().as_u16();
        // Drain a little of the body so the connection can go back to the
        // pool; a partner that streams more than that just loses its reuse.
        let _ = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await;
        Ok(status)
    }
}

/// One attempt as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// What the delivery log records.
    pub outcome: AttemptOutcome,
    pub latency_ms: u64,
    /// For a failure, the error and its causes: for the operator's log only
    /// (it names hosts, addresses and certificates).
    pub detail: Option<String>,
}

struct Failure {
    category: Unreachable,
    detail: String,
}

/// The category of a failed request, from the first cause that tells: the
/// resolver's own error, a TLS error, a timed-out socket; anything else
/// failed to connect or broke before an answer.
fn category(error: &(dyn std::error::Error + 'static)) -> Unreachable {
    for cause in causes(error) {
        if let Some(resolve) = cause.downcast_ref::<ResolveError>() {
            return match resolve {
                ResolveError::Lookup { .. } => Unreachable::Dns,
                ResolveError::Refused { .. } => Unreachable::RefusedAddress,
            };
        }
        if cause.is::<rustls::Error>() {
            return Unreachable::Tls;
        }
        if cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::TimedOut)
        {
            return Unreachable::Timeout;
        }
    }
    Unreachable::Connect
}

/// An error and every cause under it. `io::Error::source` skips the error
/// an `io::Error` wraps (it answers that error's own source), and the TLS
/// stack wraps its errors in `io::Error`s twice over, so the wrapped error
/// is followed explicitly.
fn causes<'a>(error: &'a (dyn std::error::Error + 'static)) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut found = Vec::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        found.push(cause);
        next = match cause.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        };
    }
    found
}

/// An error and its causes in one line: hyper's own message ("client error
/// (Connect)") says little without them.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tower_service::Service;

    #[tokio::test]
    async fn the_resolver_refuses_loopback_in_production() {
        let mut resolver = PolicyResolver {
            policy: UrlPolicy::Production,
        };
        let error = resolver.call("localhost".parse().unwrap()).await.unwrap_err();
        assert!(matches!(error, ResolveError::Refused { .. }), "{error}");
        assert!(error.to_string().contains("127.0.0.1"), "{error}");
    }

    #[tokio::test]
    async fn the_resolver_allows_loopback_in_development() {
        let mut resolver = PolicyResolver {
            policy: UrlPolicy::Development,
        };
        let addresses: Vec<_> = resolver.call("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(addresses.iter().all(|a| a.ip().is_loopback()), "{addresses:?}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_unreachable_attempt() {
        let client = DeliveryClient::new(UrlPolicy::Development).unwrap();
        // A port nothing listens on: bind one, then drop it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let posted = client.post(&format!("http://localhost:{port}/hook"), &[], "{}").await;
        assert!(
            matches!(posted.outcome, AttemptOutcome::Unreachable { .. }),
            "{posted:?}"
        );
    }

    #[tokio::test]
    async fn production_never_connects_to_a_name_for_loopback() {
        let client = DeliveryClient::new(UrlPolicy::Production).unwrap();
        let posted = client.post("https://localhost:9/hook", &[], "{}").await;
        assert_eq!(
            posted.outcome,
            AttemptOutcome::Unreachable {
                error: Unreachable::RefusedAddress
            }
        );
        let detail = posted.detail.unwrap_or_default();
        assert!(
            detail.contains("may not reach") && detail.contains("127.0.0.1"),
            "{detail}"
        );
    }

    /// What a listener on 127.0.0.1 does with each connection.
    #[derive(Clone, Copy)]
    enum Peer {
        /// Answers every request with this status.
        Status(u16),
        /// Answers whatever arrives with plain HTTP, so a TLS client reads garbage.
        NotTls,
        /// Reads and never answers.
        Silent,
    }

    async fn listen(peer: Peer) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let _ = socket.read(&mut buffer).await;
                    let answer = match peer {
                        Peer::Status(code) => format!("HTTP/1.1 {code} Whatever\r\ncontent-length: 0\r\n\r\n"),
                        Peer::NotTls => "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n".to_owned(),
                        Peer::Silent => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            return;
                        }
                    };
                    let _ = socket.write_all(answer.as_bytes()).await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                });
            }
        });
        port
    }

    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// The delivery log shows a category and nothing else: no host name,
    /// address, certificate name or error message reaches a partner.
    #[tokio::test]
    async fn each_failure_is_logged_as_its_category_only() {
        let development = DeliveryClient::new(UrlPolicy::Development).unwrap();
        let production = DeliveryClient::new(UrlPolicy::Production).unwrap();
        let impatient = DeliveryClient {
            timeout: Duration::from_millis(300),
            ..DeliveryClient::new(UrlPolicy::Development).unwrap()
        };
        let answering = listen(Peer::Status(503)).await;
        let not_tls = listen(Peer::NotTls).await;
        let silent = listen(Peer::Silent).await;
        let cases = [
            (
                &production,
                "https://localhost:9/hook".to_owned(),
                json!({"error": "refused_address"}),
            ),
            (
                &development,
                "https://nonexistent.invalid/hook".to_owned(),
                json!({"error": "dns"}),
            ),
            (
                &development,
                format!("http://127.0.0.1:{}/hook", closed_port()),
                json!({"error": "connect"}),
            ),
            (
                &development,
                format!("https://127.0.0.1:{not_tls}/hook"),
                json!({"error": "tls"}),
            ),
            (
                &impatient,
                format!("http://127.0.0.1:{silent}/hook"),
                json!({"error": "timeout"}),
            ),
            (
                &development,
                format!("http://127.0.0.1:{answering}/hook"),
                json!({"statusCode": 503}),
            ),
        ];
        for (client, url, logged) in cases {
            let posted = client.post(&url, &[], "{}").await;
            assert_eq!(
                serde_json::to_value(&posted.outcome).unwrap(),
                logged,
                "{url}: {posted:?}"
            );
            // The operator's log has the detail the partner's does not.
            assert_eq!(
                posted.detail.is_some(),
                logged.get("error").is_some(),
                "{url}: {posted:?}"
            );
        }
    }
}
