//! A partner's screening vendor behind HTTP, so a commercial provider can be
//! plugged in without code: the operator names it in `KORALA_CHECK_PROVIDERS`
//! and a check step names it as its `provider`.
//!
//! The contract (README, "Checks and screening"): we POST
//! `{"kind": "pep"|"sanctions"|"adverse_media"|"registry", "subject": {name,
//! birthDate, countries, entity}}` as JSON, signed as our webhooks are
//! (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
//! `webhook-signature`), so the vendor's side verifies us with the same
//! off-the-shelf libraries partners use. A 2xx answers `{"findings": [...]}`.
//!
//! What a failure means decides whether the worker asks again: 5xx, 429,
//! 408, a timeout, a broken connection or a body we cannot use are
//! [`ProviderError::Unavailable`] (retried, then the check fails); any other
//! 4xx (and a redirect, which we never follow) is
//! [`ProviderError::Refused`]: the same request would be refused again.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use ::http::header::{CONTENT_TYPE, USER_AGENT};
use ::http::{StatusCode, Uri};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::dns::GaiResolver;
use korala_domain::screening::{Finding, MatchStrength, Subject};
use korala_domain::tenancy::{Mode, Tenant};
use korala_domain::workflow::CheckKind;
use serde::{Deserialize, Serialize};

use super::{Provider, ProviderError, SCREENING, ScreenCall};
use crate::adapters::outbound::{HttpsClient, chain, https_client};
use crate::adapters::standard_webhooks::SigningSecret;

/// The variable naming this deployment's HTTP providers.
pub const PROVIDERS_ENV: &str = "KORALA_CHECK_PROVIDERS";
/// How long one call may take, from connecting to the last byte of the body.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The most findings one answer may carry: more is a vendor bug (or a query
/// that matched a whole list), and a partner cannot review it anyway.
pub const MAX_FINDINGS: usize = 100;
/// The findings are stored on the session (one DynamoDB item, 400 KB at
/// most), so an answer is bounded well below that.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Bounds on one finding's texts and labels, for the same reason.
const MAX_TEXT_CHARS: usize = 512;
const MAX_LABELS: usize = 50;
const USER_AGENT_VALUE: &str = concat!("Korala-Checks/", env!("CARGO_PKG_VERSION"));

/// One HTTP provider as configured: where it is and the key we sign with.
pub struct HttpProviderConfig {
    pub name: String,
    pub url: Uri,
    pub secret: SigningSecret,
}

// By hand: the secret must never reach a log line.
impl fmt::Debug for HttpProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProviderConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "KORALA_CHECK_PROVIDERS must be a JSON object of {{\"<name>\": {{\"url\": \"https://…\", \"secretId\": \
         \"<Secrets Manager secret holding the whsec_ secret>\"}}}} (or \"secretEnv\": \"<variable holding it>\" \
         locally): {0}"
    )]
    NotJson(#[source] serde_json::Error),
    #[error("KORALA_CHECK_PROVIDERS: `{0}` is the built-in provider's name; give the HTTP provider another")]
    ReservedName(String),
    #[error("KORALA_CHECK_PROVIDERS: `{0}` is not a provider name (1 to 64 letters, digits, `-`, `_` or `.`)")]
    BadName(String),
    #[error("KORALA_CHECK_PROVIDERS: provider `{name}`: {reason}")]
    BadUrl { name: String, reason: String },
    #[error(
        "KORALA_CHECK_PROVIDERS: provider `{name}`: give its secret exactly one way, `secretId` (Secrets Manager) or \
         `secretEnv` (a variable)"
    )]
    SecretSource { name: String },
    #[error("KORALA_CHECK_PROVIDERS: provider `{name}`: its secret variable `{var}` is not set")]
    MissingSecret { name: String, var: String },
    #[error(
        "KORALA_CHECK_PROVIDERS: provider `{name}`: its secret `{id}` is in Secrets Manager, which only a deployed \
         function reads; locally, name a variable with `secretEnv`"
    )]
    SecretNotRead { name: String, id: String },
    #[error(
        "KORALA_CHECK_PROVIDERS: provider `{name}`: `{source_name}` does not hold a signing secret (`whsec_` followed \
         by base64)"
    )]
    BadSecret { name: String, source_name: String },
}

/// One entry as the operator writes it. Unknown fields are refused so that a
/// secret written inline (`"secret": …`) stops the start instead of being
/// ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    url: String,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    secret_id: Option<String>,
}

/// Where a provider's signing secret is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A variable of the process (local runs).
    Env(String),
    /// A Secrets Manager secret, by ARN or name (a deployment).
    Stored(String),
}

/// One provider as configured, checked, its secret not read yet: a
/// deployed checks worker checks these at init and reads the secrets on
/// its first invocation.
#[derive(Debug, Clone)]
pub struct ProviderEntry {
    pub name: String,
    url: Uri,
    secret: SecretSource,
}

impl ProviderEntry {
    /// The Secrets Manager secret that holds this provider's key, if it is
    /// there.
    pub fn stored_secret(&self) -> Option<&str> {
        match &self.secret {
            SecretSource::Stored(id) => Some(id),
            SecretSource::Env(_) => None,
        }
    }

    /// The provider's configuration, its secret from a variable (`env`) or
    /// from the secrets already read (`stored`, by secret id).
    pub fn config(
        self,
        env: &dyn Fn(&str) -> Option<String>,
        stored: &dyn Fn(&str) -> Option<String>,
    ) -> Result<HttpProviderConfig, ConfigError> {
        let Self { name, url, secret } = self;
        let (value, source_name) = match secret {
            SecretSource::Env(var) => match env(&var).filter(|s| !s.trim().is_empty()) {
                Some(value) => (value, var),
                None => return Err(ConfigError::MissingSecret { name, var }),
            },
            SecretSource::Stored(id) => match stored(&id) {
                Some(value) => (value, id),
                None => return Err(ConfigError::SecretNotRead { name, id }),
            },
        };
        let Ok(secret) = SigningSecret::parse(value.trim()) else {
            return Err(ConfigError::BadSecret { name, source_name });
        };
        Ok(HttpProviderConfig { name, url, secret })
    }
}

/// Reads and checks `KORALA_CHECK_PROVIDERS` (unset or blank: none) through
/// `env`, so tests need not touch the process environment, without reading
/// any secret (an operator's shell need not hold them).
pub fn entries(env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<ProviderEntry>, ConfigError> {
    let Some(text) = env(PROVIDERS_ENV).filter(|text| !text.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let raw: BTreeMap<String, RawConfig> = serde_json::from_str(&text).map_err(ConfigError::NotJson)?;
    raw.into_iter().map(|(name, raw)| entry(name, raw)).collect()
}

/// [`entries`] with their secrets: from variables, or from the secrets
/// already read (`stored`).
pub fn configs(
    env: &dyn Fn(&str) -> Option<String>,
    stored: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<HttpProviderConfig>, ConfigError> {
    entries(env)?.into_iter().map(|e| e.config(env, stored)).collect()
}

/// The provider names `KORALA_CHECK_PROVIDERS` gives.
pub fn names(env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>, ConfigError> {
    Ok(entries(env)?.into_iter().map(|e| e.name).collect())
}

fn entry(name: String, raw: RawConfig) -> Result<ProviderEntry, ConfigError> {
    if name == SCREENING {
        return Err(ConfigError::ReservedName(name));
    }
    if !is_provider_name(&name) {
        return Err(ConfigError::BadName(name));
    }
    let url = match check_url(&raw.url) {
        Ok(url) => url,
        Err(reason) => return Err(ConfigError::BadUrl { name, reason }),
    };
    let secret = match (raw.secret_env, raw.secret_id) {
        (Some(var), None) => SecretSource::Env(var),
        (None, Some(id)) if !id.trim().is_empty() => SecretSource::Stored(id),
        _ => return Err(ConfigError::SecretSource { name }),
    };
    Ok(ProviderEntry { name, url, secret })
}

fn is_provider_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The subject's data goes out in the body, so only TLS will do, except to
/// this machine (a vendor's stub in development and tests).
fn check_url(text: &str) -> Result<Uri, String> {
    let url: Uri = text.parse().map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    let Some(host) = url.host() else {
        return Err(format!("`{text}` is not an absolute URL with a host"));
    };
    // The request is signed; a password in the URL would be a second,
    // unrotated credential sitting in plain configuration.
    if url.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(format!(
            "`{text}` carries credentials; the request is signed with the secret instead"
        ));
    }
    let local = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|l| host.eq_ignore_ascii_case(l));
    match url.scheme_str() {
        Some("https") => Ok(url),
        Some("http") if local => Ok(url),
        Some("http") => Err(format!(
            "`{text}` is not https (plain http is allowed only to 127.0.0.1 and localhost)"
        )),
        _ => Err(format!("`{text}` is not an https URL")),
    }
}

/// A vendor's screening endpoint.
pub struct HttpProvider {
    name: String,
    url: Uri,
    secret: SigningSecret,
    client: HttpsClient<GaiResolver>,
    timeout: Duration,
}

impl HttpProvider {
    /// The vendor's URL is the operator's, not a partner's: it resolves
    /// through the system resolver, not the webhook URL policy.
    pub fn new(config: HttpProviderConfig) -> std::io::Result<Self> {
        Ok(Self {
            name: config.name,
            url: config.url,
            secret: config.secret,
            client: https_client(GaiResolver::new())?,
            timeout: TIMEOUT,
        })
    }

    /// Another deadline for a whole call (tests use a short one).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn url(&self) -> &Uri {
        &self.url
    }

    async fn call(&self, body: Vec<u8>) -> Result<Vec<Finding>, ProviderError> {
        // A fresh id per request: unlike a webhook, a retried screening is a
        // new question, and the vendor may dedupe on the id.
        let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let timestamp = chrono::Utc::now().timestamp();
        let headers = self
            .secret
            .headers(&id, timestamp, &body)
            .map_err(|e| ProviderError::Refused(format!("cannot sign the request to `{}`: {e}", self.name)))?;
        let mut request = hyper::Request::post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, USER_AGENT_VALUE);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ProviderError::Refused(format!("cannot build the request to `{}`: {e}", self.name)))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| ProviderError::Unavailable(format!("cannot reach `{}`: {}", self.name, chain(&e))))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES).collect().await;
        if !status.is_success() {
            // The body of a failure is only read to free the connection.
            return Err(self.failure(status));
        }
        let body = body
            .map_err(|e| {
                let reason = if e.downcast_ref::<LengthLimitError>().is_some() {
                    format!("its answer is over {} KiB", MAX_RESPONSE_BYTES / 1024)
                } else {
                    format!("its answer broke off: {e}")
                };
                ProviderError::Unavailable(format!("`{}`: {reason}", self.name))
            })?
            .to_bytes();
        parse_findings(&body)
            .map_err(|reason| ProviderError::Unavailable(format!("`{}` answered {status} with {reason}", self.name)))
    }

    fn failure(&self, status: StatusCode) -> ProviderError {
        let name = &self.name;
        match status.as_u16() {
            408 | 429 | 500..=599 => ProviderError::Unavailable(format!("`{name}` answered {status}")),
            300..=399 => ProviderError::Refused(format!("`{name}` answered {status}; redirects are not followed")),
            400..=499 => ProviderError::Refused(format!("`{name}` answered {status}")),
            _ => ProviderError::Unavailable(format!("`{name}` answered {status}")),
        }
    }
}

#[derive(Serialize)]
struct ScreenRequest<'a> {
    kind: CheckKind,
    subject: &'a Subject,
    /// `test` for a sandbox session: the vendor answers from its test data
    /// and bills nothing. `live` otherwise.
    mode: Mode,
    /// Which of our partners asks, opaquely: stable per organisation and
    /// vendor, so the vendor can tell partners apart (usage, disputes)
    /// without learning our ids, and two vendors cannot match theirs.
    reference: String,
}

impl HttpProvider {
    /// `ref_` and 128 bits of HMAC-SHA256 of the organisation's id under
    /// this vendor's signing key.
    fn reference(&self, tenant: &Tenant) -> Result<String, ProviderError> {
        let digest = self
            .secret
            .digest(format!("organization:{}", tenant.org_id).as_bytes())
            .map_err(|e| ProviderError::Refused(format!("cannot sign the request to `{}`: {e}", self.name)))?;
        Ok(format!("ref_{}", URL_SAFE_NO_PAD.encode(&digest[..16])))
    }
}

#[async_trait]
impl Provider for HttpProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn screen(&self, call: &ScreenCall<'_>) -> Result<Vec<Finding>, ProviderError> {
        let request = ScreenRequest {
            kind: call.kind,
            subject: call.subject,
            mode: call.tenant.mode,
            reference: self.reference(call.tenant)?,
        };
        let body = serde_json::to_vec(&request)
            .map_err(|e| ProviderError::Refused(format!("cannot encode the request to `{}`: {e}", self.name)))?;
        match tokio::time::timeout(self.timeout, self.call(body)).await {
            Ok(answer) => answer,
            Err(_) => Err(ProviderError::Unavailable(format!(
                "`{}` did not answer within {:?}",
                self.name, self.timeout
            ))),
        }
    }
}

/// A vendor's answer. Unknown fields are ignored: a vendor may say more than
/// we keep.
#[derive(Deserialize)]
struct ScreenResponse {
    findings: Vec<WireFinding>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireFinding {
    entity_id: String,
    entity_name: String,
    matched_name: Option<String>,
    score: f64,
    strength: MatchStrength,
    topics: Option<Vec<String>>,
    datasets: Option<Vec<String>>,
    birth_date_match: Option<bool>,
    country_match: Option<bool>,
}

/// The findings of a 2xx body, or why it is unusable. Everything is checked
/// before anything is kept: a vendor bug must fail the check, never land
/// half-parsed on the session.
fn parse_findings(body: &[u8]) -> Result<Vec<Finding>, String> {
    let response: ScreenResponse = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body))
        .map_err(|e| format!("a body that is not {{\"findings\": [...]}}: {}", unparsable(&e)))?;
    if response.findings.len() > MAX_FINDINGS {
        return Err(format!(
            "{} findings (at most {MAX_FINDINGS} are accepted)",
            response.findings.len()
        ));
    }
    response
        .findings
        .into_iter()
        .enumerate()
        .map(|(i, wire)| finding(wire).map_err(|reason| format!("an invalid findings[{i}]: {reason}")))
        .collect()
}

/// The names of the answer's fields, as [`ScreenResponse`] and
/// [`WireFinding`] read them: the only keys a path may show.
const ANSWER_FIELDS: [&str; 10] = [
    "findings",
    "entityId",
    "entityName",
    "matchedName",
    "score",
    "strength",
    "topics",
    "datasets",
    "birthDateMatch",
    "countryMatch",
];

/// Why a body does not parse, in words that never quote it. serde's
/// messages echo the values they refuse (`invalid type: string "Jane Doe",
/// expected f64`), and a vendor may well echo the subject it was asked
/// about, so the reason keeps only serde_json's category, the kind of a
/// data error, the path through our own field names and the position.
fn unparsable(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    use serde_json::error::Category;
    let inner = error.inner();
    let message = inner.to_string();
    let what = match inner.classify() {
        Category::Io => "an unreadable body".to_owned(),
        Category::Syntax => "a syntax error".to_owned(),
        Category::Eof => "an unexpected end".to_owned(),
        Category::Data => match message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
        {
            Some((field, _)) if ANSWER_FIELDS.contains(&field) => format!("a missing field `{field}`"),
            Some(_) => "a missing field".to_owned(),
            None if message.starts_with("invalid type") => "a value of the wrong type".to_owned(),
            None if message.starts_with("unknown variant") => "a value that is not one of the known ones".to_owned(),
            None if message.starts_with("invalid length") => "a list or object of the wrong length".to_owned(),
            None if message.starts_with("duplicate field") => "a field given twice".to_owned(),
            None => "an invalid value".to_owned(),
        },
    };
    let mut path = String::new();
    for segment in error.path().iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key } | serde_path_to_error::Segment::Enum { variant: key } => {
                if !path.is_empty() {
                    path.push('.');
                }
                // A key of the vendor's own (ignored, or inside a value) is
                // data like any other.
                path.push_str(if ANSWER_FIELDS.contains(&key.as_str()) {
                    key
                } else {
                    "…"
                });
            }
            serde_path_to_error::Segment::Unknown => path.push('?'),
        }
    }
    let at = if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    };
    format!("{what}{at} (line {}, column {})", inner.line(), inner.column())
}

fn finding(wire: WireFinding) -> Result<Finding, String> {
    if !wire.score.is_finite() || !(0.0..=1.0).contains(&wire.score) {
        return Err(format!("score {} is not between 0 and 1", wire.score));
    }
    let entity_id = text("entityId", wire.entity_id)?;
    let entity_name = text("entityName", wire.entity_name)?;
    let matched_name = match wire.matched_name {
        Some(name) => text("matchedName", name)?,
        None => entity_name.clone(),
    };
    Ok(Finding {
        entity_id,
        entity_name,
        matched_name,
        // As the built-in screening records scores.
        score: (wire.score * 1000.0).round() / 1000.0,
        strength: wire.strength,
        topics: labels("topics", wire.topics)?,
        datasets: labels("datasets", wire.datasets)?,
        birth_date_match: wire.birth_date_match,
        country_match: wire.country_match,
    })
}

fn text(field: &str, value: String) -> Result<String, String> {
    if value.trim().is_empty() {
        Err(format!("{field} is empty"))
    } else if value.chars().count() > MAX_TEXT_CHARS {
        Err(format!("{field} is over {MAX_TEXT_CHARS} characters"))
    } else {
        Ok(value)
    }
}

fn labels(field: &str, values: Option<Vec<String>>) -> Result<Vec<String>, String> {
    let values = values.unwrap_or_default();
    if values.len() > MAX_LABELS {
        return Err(format!("{field} has over {MAX_LABELS} entries"));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, value)| text(&format!("{field}[{i}]"), value))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use korala_domain::ids::OrgId;
    use korala_domain::screening::SubjectKind;
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// What the fake vendor answers to one request.
    #[derive(Clone)]
    struct Answer {
        status: u16,
        body: String,
        delay: Duration,
    }

    fn answer(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// One request as the fake vendor read it.
    #[derive(Debug, Clone)]
    struct Seen {
        request_line: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Seen {
        fn header(&self, name: &str) -> &str {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
        }
    }

    struct Vendor {
        url: String,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Vendor {
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    /// A vendor on 127.0.0.1 answering its requests with `answers` in turn
    /// (the last one again once they run out), one connection each.
    async fn vendor(answers: Vec<Answer>) -> Vendor {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            for n in 0.. {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let answer = answers[n.min(answers.len() - 1)].clone();
                tokio::spawn(serve(stream, answer, log.clone()));
            }
        });
        Vendor {
            url: format!("http://127.0.0.1:{port}/screen"),
            seen,
        }
    }

    async fn serve(mut stream: TcpStream, answer: Answer, log: Arc<Mutex<Vec<Seen>>>) {
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 8192];
        let head_end = loop {
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            }
        };
        let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = bytes[head_end + 4..].to_vec();
        while body.len() < length {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => body.extend_from_slice(&buffer[..n]),
            }
        }
        log.lock().unwrap().push(Seen {
            request_line,
            headers,
            body,
        });
        tokio::time::sleep(answer.delay).await;
        let response = format!(
            "HTTP/1.1 {} Fake\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
            answer.status,
            answer.body.len(),
            answer.body
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    fn provider(url: &str, secret: &str) -> HttpProvider {
        HttpProvider::new(HttpProviderConfig {
            name: "vendor".into(),
            url: url.parse().unwrap(),
            secret: SigningSecret::parse(secret).unwrap(),
        })
        .unwrap()
    }

    fn live() -> Tenant {
        Tenant::new(OrgId::parse("org_live1").unwrap(), Mode::Live)
    }

    fn call<'a>(kind: CheckKind, subject: &'a Subject, tenant: &'a Tenant) -> ScreenCall<'a> {
        ScreenCall { kind, subject, tenant }
    }

    fn subject() -> Subject {
        Subject {
            name: "Jane Example".into(),
            birth_date: Some("1970-01-02".into()),
            countries: vec!["gb".into(), "pt".into()],
            entity: SubjectKind::Person,
        }
    }

    #[tokio::test]
    async fn the_request_is_signed_and_the_findings_mapped() {
        let secret = SigningSecret::generate();
        let vendor = vendor(vec![answer(
            200,
            json!({"findings": [
                {"entityId": "v-1", "entityName": "Jane Example", "score": 0.91234, "strength": "possible",
                 "unknownVendorField": {"kept": false}},
                {"entityId": "v-2", "entityName": "Janet Exemple", "matchedName": "J. Exemple", "score": 1,
                 "strength": "strong", "topics": ["role.pep"], "datasets": ["vendor_peps"],
                 "birthDateMatch": true, "countryMatch": false}
            ]})
            .to_string(),
        )])
        .await;
        let findings = provider(&vendor.url, &secret)
            .screen(&call(CheckKind::Pep, &subject(), &live()))
            .await
            .unwrap();
        assert_eq!(
            findings,
            vec![
                Finding {
                    entity_id: "v-1".into(),
                    entity_name: "Jane Example".into(),
                    matched_name: "Jane Example".into(),
                    score: 0.912,
                    strength: MatchStrength::Possible,
                    topics: vec![],
                    datasets: vec![],
                    birth_date_match: None,
                    country_match: None,
                },
                Finding {
                    entity_id: "v-2".into(),
                    entity_name: "Janet Exemple".into(),
                    matched_name: "J. Exemple".into(),
                    score: 1.0,
                    strength: MatchStrength::Strong,
                    topics: vec!["role.pep".into()],
                    datasets: vec!["vendor_peps".into()],
                    birth_date_match: Some(true),
                    country_match: Some(false),
                },
            ]
        );

        let seen = vendor.seen();
        assert_eq!(seen.len(), 1);
        let request = &seen[0];
        assert_eq!(request.request_line, "POST /screen HTTP/1.1");
        assert_eq!(request.header("content-type"), "application/json");
        assert!(request.header("user-agent").starts_with("Korala-Checks/"));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let reference = body["reference"].as_str().unwrap().to_owned();
        assert_eq!(
            body,
            json!({"kind": "pep", "subject": {
                "name": "Jane Example", "birthDate": "1970-01-02", "countries": ["gb", "pt"], "entity": "person"},
                "mode": "live", "reference": reference})
        );
        let id = request.header("webhook-id");
        assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
        let timestamp: i64 = request.header("webhook-timestamp").parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60, "{timestamp}");
        let expected = SigningSecret::parse(&secret)
            .unwrap()
            .sign(id, timestamp, &request.body)
            .unwrap();
        assert_eq!(request.header("webhook-signature"), expected);
        let other = SigningSecret::parse(&SigningSecret::generate())
            .unwrap()
            .sign(id, timestamp, &request.body)
            .unwrap();
        assert_ne!(
            request.header("webhook-signature"),
            other,
            "signed with the configured key"
        );
    }

    /// A vendor is told the mode (a sandbox session's check must not be a
    /// billed, real one) and which partner asks, by a reference that is the
    /// same for one organisation in both modes, another for another, and
    /// unlike what another vendor sees; it never carries our ids.
    #[tokio::test]
    async fn every_request_says_the_mode_and_an_opaque_reference_to_the_organisation() {
        let found = || answer(200, json!({"findings": []}).to_string());
        let vendor = vendor(vec![found(), found(), found(), found()]).await;
        let secret = SigningSecret::generate();
        let ours = provider(&vendor.url, &secret);
        let theirs = provider(&vendor.url, &SigningSecret::generate());
        let acme = OrgId::parse("org_acme1").unwrap();
        let test = Tenant::new(acme.clone(), Mode::Test);
        let live = Tenant::new(acme, Mode::Live);
        let globex = Tenant::new(OrgId::parse("org_globex1").unwrap(), Mode::Live);
        for (provider, tenant) in [(&ours, &test), (&ours, &live), (&ours, &globex), (&theirs, &live)] {
            provider
                .screen(&call(CheckKind::Sanctions, &subject(), tenant))
                .await
                .unwrap();
        }
        let bodies: Vec<Value> = vendor
            .seen()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        let modes: Vec<&str> = bodies.iter().map(|b| b["mode"].as_str().unwrap()).collect();
        assert_eq!(modes, ["test", "live", "live", "live"]);
        let references: Vec<&str> = bodies.iter().map(|b| b["reference"].as_str().unwrap()).collect();
        assert_eq!(references[0], references[1], "one organisation, both modes");
        assert_ne!(references[1], references[2], "another organisation");
        assert_ne!(references[1], references[3], "another vendor");
        for reference in &references {
            assert!(reference.starts_with("ref_") && reference.len() == 26, "{reference}");
            assert!(
                !reference.contains("acme") && !reference.contains("org_"),
                "{reference}"
            );
        }
    }

    #[tokio::test]
    async fn an_outage_or_throttling_is_unavailable_and_each_call_a_new_message() {
        let vendor = vendor(vec![answer(503, "{}"), answer(429, "{}"), answer(408, "")]).await;
        let provider = provider(&vendor.url, &SigningSecret::generate());
        for status in ["503", "429", "408"] {
            match provider.screen(&call(CheckKind::Sanctions, &subject(), &live())).await {
                Err(ProviderError::Unavailable(reason)) => {
                    assert!(reason.contains(&format!("`vendor` answered {status}")), "{reason}")
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        let ids: Vec<String> = vendor
            .seen()
            .iter()
            .map(|s| s.header("webhook-id").to_owned())
            .collect();
        assert_eq!(ids.len(), 3);
        assert!(ids[0] != ids[1] && ids[1] != ids[2], "{ids:?}");
    }

    #[tokio::test]
    async fn a_client_error_or_a_redirect_is_refused() {
        let vendor = vendor(vec![
            answer(400, r#"{"error":"bad subject"}"#),
            answer(404, ""),
            answer(302, ""),
        ])
        .await;
        let provider = provider(&vendor.url, &SigningSecret::generate());
        for status in ["400", "404", "302"] {
            match provider.screen(&call(CheckKind::Sanctions, &subject(), &live())).await {
                Err(ProviderError::Refused(reason)) => {
                    assert!(reason.contains(&format!("`vendor` answered {status}")), "{reason}")
                }
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn an_unusable_body_is_unavailable() {
        let vendor = vendor(vec![
            answer(200, "<html>oops</html>"),
            answer(
                200,
                r#"{"findings": [{"entityId": "x", "entityName": "X", "score": 7, "strength": "strong"}]}"#,
            ),
        ])
        .await;
        let provider = provider(&vendor.url, &SigningSecret::generate());
        for expected in [
            "not {\"findings\": [...]}",
            "findings[0]: score 7 is not between 0 and 1",
        ] {
            match provider.screen(&call(CheckKind::Sanctions, &subject(), &live())).await {
                Err(ProviderError::Unavailable(reason)) => assert!(reason.contains(expected), "{reason}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_slow_vendor_is_unavailable_after_the_timeout() {
        let mut slow = answer(200, r#"{"findings": []}"#);
        slow.delay = Duration::from_secs(5);
        let vendor = vendor(vec![slow]).await;
        let provider = provider(&vendor.url, &SigningSecret::generate()).with_timeout(Duration::from_millis(300));
        let started = Instant::now();
        match provider.screen(&call(CheckKind::Sanctions, &subject(), &live())).await {
            Err(ProviderError::Unavailable(reason)) => assert!(reason.contains("within 300ms"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_unavailable() {
        // A port nothing listens on: bind one, then drop it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let provider = provider(&format!("http://127.0.0.1:{port}/screen"), &SigningSecret::generate());
        match provider.screen(&call(CheckKind::Pep, &subject(), &live())).await {
            Err(ProviderError::Unavailable(reason)) => assert!(reason.contains("cannot reach `vendor`"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    fn finding_json() -> Value {
        json!({"entityId": "v-1", "entityName": "Jane Example", "score": 0.9, "strength": "possible"})
    }

    fn parse(body: Value) -> Result<Vec<Finding>, String> {
        parse_findings(body.to_string().as_bytes())
    }

    #[test]
    fn findings_are_validated_before_any_is_kept() {
        assert_eq!(parse(json!({"findings": []})), Ok(vec![]));
        assert!(parse(json!({"findings": [finding_json()]})).is_ok());
        let cases = [
            (json!({}), "a missing field `findings` (line 1, column 2)"),
            (json!({"findings": null}), "a value of the wrong type at findings"),
            (json!({"findings": [finding_json(), {"entityId": "x"}]}), "findings[1]"),
            (
                json!({"findings": [{"entityId": "x", "entityName": "X", "score": -0.1, "strength": "possible"}]}),
                "score -0.1 is not between 0 and 1",
            ),
            (
                json!({"findings": [{"entityId": " ", "entityName": "X", "score": 0.5, "strength": "possible"}]}),
                "entityId is empty",
            ),
            (
                json!({"findings": [{"entityId": "x", "entityName": "", "score": 0.5, "strength": "possible"}]}),
                "entityName is empty",
            ),
            (
                json!({"findings": [{"entityId": "x", "entityName": "X", "matchedName": "", "score": 0.5,
                                  "strength": "possible"}]}),
                "matchedName is empty",
            ),
            (
                json!({"findings": [{"entityId": "x", "entityName": "X", "score": 0.5, "strength": "certain"}]}),
                "a value that is not one of the known ones at findings[0].strength",
            ),
            (
                json!({"findings": [{"entityId": "x", "entityName": "X", "score": 0.5, "strength": "strong",
                                  "topics": ["sanction", ""]}]}),
                "topics[1] is empty",
            ),
            (
                json!({"findings": [{"entityId": "x".repeat(600), "entityName": "X", "score": 0.5,
                                  "strength": "strong"}]}),
                "entityId is over 512 characters",
            ),
            (
                json!({"findings": vec![finding_json(); MAX_FINDINGS + 1]}),
                "101 findings",
            ),
        ];
        for (body, expected) in cases {
            let error = parse(body.clone()).unwrap_err();
            assert!(error.contains(expected), "{body}: {error}");
        }
        assert_eq!(
            parse(json!({"findings": vec![finding_json(); MAX_FINDINGS]}))
                .unwrap()
                .len(),
            MAX_FINDINGS
        );
        // JSON has no NaN or infinity, but a number too large for f64 is read as one.
        let huge = br#"{"findings": [{"entityId": "x", "entityName": "X", "score": 1e400, "strength": "strong"}]}"#;
        assert!(parse_findings(huge).is_err());
    }

    /// A vendor echoing the subject (here `Jane Marker`) into a body we
    /// cannot use: the reason, which the worker logs and the check keeps,
    /// says what and where, never the value.
    #[test]
    fn a_body_that_does_not_parse_is_described_without_its_values() {
        let cases = [
            (
                r#"{"findings": [{"entityId": "x", "entityName": "X", "score": "Jane Marker", "strength": "strong"}]}"#,
                "a value of the wrong type at findings[0].score (line 1, column 73)",
            ),
            (
                r#"{"findings": [{"entityId": "x", "entityName": "X", "score": 0.5, "strength": "Jane Marker"}]}"#,
                "a value that is not one of the known ones at findings[0].strength",
            ),
            (
                r#"{"findings": [{"entityId": ["Jane Marker"], "entityName": "X", "score": 0.5, "strength": "strong"}]}"#,
                "a value of the wrong type at findings[0].entityId",
            ),
            (
                r#"{"findings": [{"Jane Marker": {"x": [1, }, "entityId": "x"}]}"#,
                "a syntax error at findings[0].… (line 1, column 41)",
            ),
            (r#"{"findings": [], "Jane Marker": tru}"#, "a syntax error at … (line 1"),
            (r#"{"findings": ["Jane Marker""#, "at findings[0]"),
            (r#"Jane Marker"#, "a syntax error (line 1, column 1)"),
            (
                r#"{"findings": {"Jane Marker": 1}}"#,
                "a value of the wrong type at findings",
            ),
        ];
        let mut wrong = Vec::new();
        for (body, expected) in cases {
            let reason = parse_findings(body.as_bytes()).unwrap_err();
            if reason.contains("Jane") || reason.contains("Marker") || !reason.contains(expected) {
                wrong.push(format!("{body}: {reason}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn providers_are_configured_by_name_with_their_secret_in_another_variable() {
        let secret = SigningSecret::generate();
        let config = json!({
            "acme": {"url": "https://screening.acme.example/v1/screen", "secretEnv": "ACME_SECRET"},
            "stub": {"url": "http://localhost:8080/screen", "secretEnv": "STUB_SECRET"},
        })
        .to_string();
        let lookup = env(&[
            (PROVIDERS_ENV, &config),
            ("ACME_SECRET", &secret),
            ("STUB_SECRET", &secret),
        ]);
        let configs = configs(&lookup, &|_| None).unwrap();
        let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["acme", "stub"]);
        assert_eq!(configs[0].url, "https://screening.acme.example/v1/screen");
        assert!(
            !format!("{configs:?}").contains(&secret),
            "the secret stays out of Debug"
        );

        assert!(super::configs(&env(&[]), &|_| None).unwrap().is_empty(), "unset: none");
        assert!(
            super::configs(&env(&[(PROVIDERS_ENV, " ")]), &|_| None)
                .unwrap()
                .is_empty(),
            "blank: none"
        );
        let loopback = json!({"stub": {"url": "http://127.0.0.1:9/screen", "secretEnv": "S"}}).to_string();
        assert!(super::configs(&env(&[(PROVIDERS_ENV, &loopback), ("S", &secret)]), &|_| None).is_ok());
    }

    #[test]
    fn a_deployed_providers_secret_is_read_from_secrets_manager_by_id() {
        let secret = SigningSecret::generate();
        let id = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:korala/acme-AbCdEf";
        let config = json!({"acme": {"url": "https://screening.acme.example/", "secretId": id}}).to_string();
        let lookup = env(&[(PROVIDERS_ENV, &config)]);
        // Checked without the secret (the checks worker's init)…
        let found = entries(&lookup).unwrap();
        assert_eq!(found[0].stored_secret(), Some(id));
        // …then built from what was read.
        let stored = |asked: &str| (asked == id).then(|| secret.clone());
        let configs = configs(&lookup, &stored).unwrap();
        assert_eq!(configs[0].name, "acme");
        // Not read (a local run): a reason, not a silent provider without a key.
        let error = configs_error(&lookup, &|_| None);
        assert!(error.contains("only a deployed function reads"), "{error}");
        let stored_junk = |_: &str| Some("hunter2".to_owned());
        let error = configs_error(&lookup, &stored_junk);
        assert!(error.contains(id) && !error.contains("hunter2"), "{error}");

        for both_or_neither in [
            json!({"acme": {"url": "https://x.example/", "secretId": id, "secretEnv": "S"}}),
            json!({"acme": {"url": "https://x.example/"}}),
            json!({"acme": {"url": "https://x.example/", "secretId": " "}}),
        ] {
            let config = both_or_neither.to_string();
            let error = entries(&env(&[(PROVIDERS_ENV, &config)])).unwrap_err().to_string();
            assert!(error.contains("exactly one way"), "{error}");
        }
    }

    fn configs_error(env: &dyn Fn(&str) -> Option<String>, stored: &dyn Fn(&str) -> Option<String>) -> String {
        match configs(env, stored) {
            Ok(_) => panic!("configured"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_configurations_stop_the_start_with_a_clear_reason() {
        let secret = SigningSecret::generate();
        let one = |name: &str, url: &str, var: &str| json!({ name: {"url": url, "secretEnv": var} }).to_string();
        let cases = [
            (
                one(SCREENING, "https://x.example/", "S"),
                "`korala-screening` is the built-in provider's name",
            ),
            (one("acme", "http://screening.acme.example/", "S"), "is not https"),
            (one("acme", "http://10.0.0.5/screen", "S"), "is not https"),
            (one("acme", "ftp://screening.acme.example/", "S"), "is not an https URL"),
            (one("acme", "/screen", "S"), "not an absolute URL"),
            (
                one("acme", "https://user:pw@screening.acme.example/", "S"),
                "carries credentials",
            ),
            (
                one("acme", "https://screening.acme.example/", "UNSET"),
                "its secret variable `UNSET` is not set",
            ),
            (
                one("acme", "https://screening.acme.example/", "NOT_A_SECRET"),
                "`NOT_A_SECRET` does not hold",
            ),
            (
                one("has space", "https://x.example/", "S"),
                "`has space` is not a provider name",
            ),
            (
                json!({"acme": {"url": "https://x.example/", "secret": "whsec_abc"}}).to_string(),
                "unknown field `secret`",
            ),
            ("[]".to_owned(), "must be a JSON object"),
        ];
        for (config, expected) in cases {
            let lookup = env(&[(PROVIDERS_ENV, &config), ("S", &secret), ("NOT_A_SECRET", "hunter2")]);
            let error = configs(&lookup, &|_| None).unwrap_err().to_string();
            assert!(error.starts_with("KORALA_CHECK_PROVIDERS"), "{error}");
            assert!(error.contains(expected), "{config}: {error}");
            assert!(!error.contains("whsec_abc") && !error.contains("hunter2"), "{error}");
        }
    }
}
