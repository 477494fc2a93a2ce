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
use korala_domain::delivery::AttemptOutcome;
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

type Resolving = Pin<Box<dyn Future<Output = io::Result<std::vec::IntoIter<SocketAddr>>> + Send>>;

impl tower_service::Service<Name> for PolicyResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy;
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|address| policy.allows_address(address.ip()))
                .collect();
            if allowed.is_empty() {
                let refused: Vec<String> = resolved.iter().map(|a| a.ip().to_string()).collect();
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{name} resolves only to addresses deliveries may not reach ({})",
                        refused.join(", ")
                    ),
                ));
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
    /// what happened and how long it took, in milliseconds.
    pub async fn post(&self, url: &str, headers: &[(&'static str, String)], body: &str) -> (AttemptOutcome, u64) {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(self.timeout, self.send(url, headers, body)).await {
            Ok(Ok(status_code)) => AttemptOutcome::Responded { status_code },
            Ok(Err(error)) => AttemptOutcome::unreachable(error),
            Err(_) => AttemptOutcome::unreachable(format!("no response within {} seconds", self.timeout.as_secs())),
        };
        let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        (outcome, latency)
    }

    async fn send(&self, url: &str, headers: &[(&'static str, String)], body: &str) -> Result<u16, String> {
        let mut request = hyper::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, USER_AGENT);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let response = self.client.request(request).await.map_err(|e| chain(&e))?;
        let status = response.status().as_u16();
        // Drain a little of the body so the connection can go back to the
        // pool; a partner that streams more than that just loses its reuse.
        let _ = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await;
        Ok(status)
    }
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
    use tower_service::Service;

    #[tokio::test]
    async fn the_resolver_refuses_loopback_in_production() {
        let mut resolver = PolicyResolver {
            policy: UrlPolicy::Production,
        };
        let error = resolver.call("localhost".parse().unwrap()).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
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
        let (outcome, _) = client.post(&format!("http://localhost:{port}/hook"), &[], "{}").await;
        assert!(matches!(outcome, AttemptOutcome::Unreachable { .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn production_never_connects_to_a_name_for_loopback() {
        let client = DeliveryClient::new(UrlPolicy::Production).unwrap();
        let (outcome, _) = client.post("https://localhost:9/hook", &[], "{}").await;
        match outcome {
            AttemptOutcome::Unreachable { error } => assert!(error.contains("may not reach"), "{error}"),
            other => panic!("{other:?}"),
        }
    }
}
