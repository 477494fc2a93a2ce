//! Structured logs and metrics, set up once per process.
//!
//! Logs follow the Lambda Rust runtime's conventions
//! (`lambda_runtime::tracing::init_default_subscriber`): Lambda's advanced
//! logging controls choose the format (`AWS_LAMBDA_LOG_FORMAT=JSON`, from the
//! template's `LoggingConfig.LogFormat`) and the level
//! (`AWS_LAMBDA_LOG_LEVEL`, from `ApplicationLogLevel`, over `RUST_LOG`),
//! and every line of an invocation runs inside the runtime's span,
//! `Lambda runtime invoke{requestId, xrayTraceId}`, here with the function's
//! name added. Locally the text format is the default, JSON on request, and
//! each HTTP request or relay pass has a span of its own with a request id.
//!
//! Where this departs from the runtime's subscriber, and why:
//! - JSON lines keep an RFC 3339 `timestamp`: Lambda's log-level filtering
//!   reads it, and treats a line without a valid one as INFO.
//! - The spans that carry request ids are kept at every level, so a WARN
//!   line still names its request when `ApplicationLogLevel` is WARN.
//! - TRACE events of the Lambda runtime and the AWS SDK are never written,
//!   whatever the filter says: they hold whole events and HTTP bodies
//!   (request bodies with personal data, signatures, DynamoDB items).
//!
//! Our own log lines carry ids, statuses and counts, never request bodies,
//! names, documents, metadata, paths (they hold access tokens), secrets or
//! signatures; `functions/tests/it/logs.rs` checks that end to end.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing::{Level, Metadata, Span, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

/// Set by Lambda from the function's `LoggingConfig.LogFormat` (`JSON` or `Text`).
pub const LOG_FORMAT_ENV: &str = "AWS_LAMBDA_LOG_FORMAT";
/// Set by Lambda from `LoggingConfig.ApplicationLogLevel` (JSON format only).
pub const LOG_LEVEL_ENV: &str = "AWS_LAMBDA_LOG_LEVEL";
/// Set by Lambda in every execution environment.
pub const LAMBDA_FUNCTION_ENV: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// The span of one Lambda invocation: the runtime's own name and fields.
pub const INVOCATION_SPAN: &str = "Lambda runtime invoke";
/// The span of one HTTP request to the local server.
pub const REQUEST_SPAN: &str = "request";
/// The span of one pass of a local relay stage (what one invocation of its
/// Lambda function does on AWS).
pub const LOCAL_INVOCATION_SPAN: &str = "invoke";
const ID_SPANS: [&str; 3] = [INVOCATION_SPAN, REQUEST_SPAN, LOCAL_INVOCATION_SPAN];

/// Targets whose TRACE events dump payloads (the runtime logs each raw event,
/// the SDK each request and response).
const PAYLOAD_TARGETS: [&str; 4] = ["lambda_runtime", "lambda_http", "aws_smithy_runtime", "aws_sigv4"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

/// How this process logs, from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub format: Format,
    /// `EnvFilter` directives.
    pub filter: String,
    /// Running on Lambda, which stamps every line itself.
    pub lambda: bool,
}

impl Config {
    /// `AWS_LAMBDA_LOG_FORMAT` decides the format; without it, JSON on Lambda
    /// (as before Lambda had the setting) and text elsewhere.
    /// `AWS_LAMBDA_LOG_LEVEL` takes precedence over `RUST_LOG`, as in the
    /// runtime; the default is INFO.
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Self {
        let lambda = var(LAMBDA_FUNCTION_ENV).is_some_and(|v| !v.is_empty());
        let format = match var(LOG_FORMAT_ENV) {
            Some(f) if f.eq_ignore_ascii_case("json") => Format::Json,
            Some(f) if f.eq_ignore_ascii_case("text") => Format::Text,
            _ if lambda => Format::Json,
            _ => Format::Text,
        };
        let filter = var(LOG_LEVEL_ENV)
            .and_then(|level| lambda_level(&level))
            .map(str::to_owned)
            .or_else(|| var("RUST_LOG").filter(|f| !f.trim().is_empty()))
            .unwrap_or_else(|| "info".to_owned());
        Self { format, filter, lambda }
    }
}

/// Lambda's levels as filter directives; it has FATAL, tracing has not.
fn lambda_level(level: &str) -> Option<&'static str> {
    Some(match level.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => return None,
    })
}

fn carries_payload(metadata: &Metadata<'_>) -> bool {
    metadata.is_event()
        && *metadata.level() == Level::TRACE
        && PAYLOAD_TARGETS.iter().any(|t| metadata.target().starts_with(t))
}

/// The formatting layer `config` describes, writing to `writer`.
pub fn layer<S, W>(config: &Config, writer: W) -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer().with_target(false).with_writer(writer);
    let formatted = match (config.format, config.lambda) {
        (Format::Json, _) => base.json().boxed(),
        (Format::Text, true) => base.without_time().with_ansi(false).boxed(),
        (Format::Text, false) => base.with_ansi(std::io::stdout().is_terminal()).boxed(),
    };
    let directives = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(&config.filter);
    let id_spans = filter_fn(|m| m.is_span() && ID_SPANS.contains(&m.name())).with_max_level_hint(LevelFilter::INFO);
    let no_payloads = filter_fn(|m| !carries_payload(m)).with_max_level_hint(LevelFilter::TRACE);
    formatted.with_filter(directives.or(id_spans).and(no_payloads))
}

/// Logs to stdout as the environment says and installs the metrics
/// recorder where metrics are emitted ([`crate::runtime::metrics`]). A second call
/// keeps the first setup.
pub fn init() {
    let config = Config::from_env(&|name| std::env::var(name).ok());
    let subscriber = tracing_subscriber::registry().with(layer(&config, std::io::stdout));
    // Tests may call this more than once; the first subscriber stays.
    let _ = tracing::subscriber::set_global_default(subscriber);
    let on_lambda = std::env::var(LAMBDA_FUNCTION_ENV).is_ok_and(|v| !v.trim().is_empty());
    crate::runtime::metrics::install_from_env(on_lambda);
}

/// The span of one Lambda invocation: the runtime's, plus `function`.
pub fn invocation_span(function: &'static str, request_id: &str, xray_trace_id: Option<&str>) -> Span {
    let span = tracing::info_span!(
        INVOCATION_SPAN,
        requestId = request_id,
        function,
        xrayTraceId = tracing::field::Empty
    );
    if let Some(trace) = xray_trace_id {
        span.record("xrayTraceId", trace);
    }
    span
}

/// The span of one local HTTP request; `function` is recorded once routed.
pub fn request_span(request_id: &str) -> Span {
    tracing::info_span!(REQUEST_SPAN, requestId = request_id, function = tracing::field::Empty)
}

/// The span of one local pass of `function`'s work, under a fresh id.
pub fn local_invocation_span(function: &'static str) -> Span {
    tracing::info_span!(LOCAL_INVOCATION_SPAN, requestId = %new_request_id(), function)
}

/// A request id for work that arrived without one.
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Logs captured in memory, for tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Logs this thread writes while it lives, formatted as `config` says.
    pub struct Capture {
        buffer: Buffer,
        _default: tracing::subscriber::DefaultGuard,
    }

    impl Capture {
        pub fn new(config: &Config) -> Self {
            let buffer = Buffer::default();
            let writer = buffer.clone();
            let subscriber = tracing_subscriber::registry().with(layer(config, move || writer.clone()));
            Self {
                buffer,
                _default: tracing::subscriber::set_default(subscriber),
            }
        }

        /// The JSON lines written so far.
        pub fn lines(&self) -> Vec<serde_json::Value> {
            let text = String::from_utf8(self.buffer.0.lock().unwrap().clone()).unwrap();
            text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
        }
    }

    /// Lambda's JSON logs at `filter`.
    pub fn lambda(filter: &str) -> Config {
        Config {
            format: Format::Json,
            filter: filter.into(),
            lambda: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_env(&|name| vars.get(name).cloned())
    }

    #[test]
    fn the_format_follows_lambdas_setting_then_where_it_runs() {
        assert_eq!(config(&[]).format, Format::Text);
        assert_eq!(config(&[(LOG_FORMAT_ENV, "JSON")]).format, Format::Json);
        assert_eq!(config(&[(LAMBDA_FUNCTION_ENV, "f")]).format, Format::Json);
        assert_eq!(
            config(&[(LAMBDA_FUNCTION_ENV, "f"), (LOG_FORMAT_ENV, "Text")]).format,
            Format::Text
        );
    }

    #[test]
    fn lambdas_level_takes_precedence_over_rust_log() {
        assert_eq!(config(&[]).filter, "info");
        assert_eq!(config(&[("RUST_LOG", "functions=debug")]).filter, "functions=debug");
        assert_eq!(config(&[("RUST_LOG", "debug"), (LOG_LEVEL_ENV, "WARN")]).filter, "warn");
        assert_eq!(config(&[(LOG_LEVEL_ENV, "FATAL")]).filter, "error");
        assert_eq!(
            config(&[("RUST_LOG", "debug"), (LOG_LEVEL_ENV, "LOUD")]).filter,
            "debug"
        );
    }

    use super::testing::{Capture, lambda};

    /// The JSON lines `emit` logs under `config`.
    fn lines(config: &Config, emit: impl FnOnce()) -> Vec<serde_json::Value> {
        let capture = Capture::new(config);
        emit();
        capture.lines()
    }

    #[test]
    fn json_lines_carry_the_invocations_ids_level_and_timestamp() {
        let logged = lines(&lambda("info"), || {
            let span = invocation_span("sessions-create", "req-1", Some("Root=1-abc"));
            let _entered = span.enter();
            tracing::info!(status = 201, "request");
        });
        assert_eq!(logged.len(), 1, "{logged:?}");
        let line = &logged[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["fields"]["message"], "request");
        assert_eq!(line["span"]["name"], INVOCATION_SPAN);
        assert_eq!(line["span"]["requestId"], "req-1");
        assert_eq!(line["span"]["function"], "sessions-create");
        assert_eq!(line["span"]["xrayTraceId"], "Root=1-abc");
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(), "{timestamp}");
    }

    #[test]
    fn a_warn_level_keeps_the_request_id_on_warnings() {
        let logged = lines(&lambda("warn"), || {
            let span = invocation_span("webhook-dispatcher", "req-2", None);
            let _entered = span.enter();
            tracing::info!("dropped at WARN");
            tracing::warn!("kept");
        });
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert_eq!(logged[0]["fields"]["message"], "kept");
        assert_eq!(logged[0]["span"]["requestId"], "req-2");
    }

    #[test]
    fn payload_traces_of_the_runtime_and_the_sdk_are_never_written() {
        let logged = lines(&lambda("trace"), || {
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = "{\"fullName\":\"x\"}", "raw event");
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "transmitting request");
            tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "kept");
            tracing::trace!("our own trace is kept");
        });
        let messages: Vec<_> = logged.iter().map(|l| l["fields"]["message"].clone()).collect();
        assert_eq!(messages, ["kept", "our own trace is kept"]);
    }
}
