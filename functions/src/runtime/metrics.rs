//! Business metrics, as CloudWatch Embedded Metric Format documents on
//! stdout: CloudWatch Logs turns each `_aws` document into metric values,
//! with no API call on the invocation's path.
//!
//! Each fact is counted once, where it becomes final:
//! - session and check facts by the outbox publisher ([`published`]), for
//!   the events the bus took for good: every transition's events pass
//!   through it once, whichever function committed them;
//! - webhook delivery attempts by the dispatcher ([`delivery_attempt`]),
//!   once its conditional write recorded the attempt (a duplicate message
//!   that lost the race counts nothing).
//!
//! | metric                    | unit         | dimensions                        |
//! |---------------------------|--------------|-----------------------------------|
//! | `SessionsCreated`         | Count        | Mode                              |
//! | `SessionOutcomes`         | Count        | Mode, Status (completed, failed, expired, pending_review) |
//! | `SessionsResolved`        | Count        | Mode, Decision, ResolvedBy        |
//! | `ChecksCompleted`         | Count        | Mode, Kind, Verdict               |
//! | `WebhookDeliveryAttempts` | Count        | Outcome (delivered, retried, failed) |
//! | `WebhookDeliveryLatency`  | Milliseconds | (none)                            |
//!
//! plus `Environment` on all when `KORALA_ENVIRONMENT` is set. Dimension
//! values come from closed enums (`Mode` is `live` or `sandbox`), never from
//! ids or personal data; the invocation's request id is a property, which
//! links a metric document to its log lines.
//!
//! The `metrics` facade records; `metrics_cloudwatch_embedded` (0.10) is the
//! recorder: it aggregates what an invocation recorded and writes one
//! document per dimension set when [`flush`]ed, at the end of each Lambda
//! invocation and of each local relay pass. It is built without its
//! `lambda` feature: that wrapper panics when stdout refuses a write (an
//! abort under `panic = "abort"`), and our own invocation layer
//! (`lambda.rs`) already opens the span and knows when an invocation ends.
//!
//! Only Lambda emits (`AWS_LAMBDA_FUNCTION_NAME` set) unless
//! `KORALA_METRICS=emf` asks for it; `KORALA_METRICS=off` silences it. With
//! no recorder installed the facade's calls do nothing, so the local server
//! and the tests write no metric documents.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use korala_domain::checks::CheckVerdict;
use korala_domain::delivery::{AttemptOutcome, DeliveryState, WebhookDelivery};
use korala_domain::events::{Event, EventKind};
use korala_domain::session::{Decision, ResolvedBy};
use korala_domain::workflow::CheckKind;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_cloudwatch_embedded::{Builder, Collector};

/// `emf` emits off Lambda too, `off` never; otherwise only on Lambda.
pub const SWITCH_ENV: &str = "KORALA_METRICS";
pub const NAMESPACE_ENV: &str = "KORALA_METRICS_NAMESPACE";
pub const DEFAULT_NAMESPACE: &str = "Korala/Sessions";
/// Names the deployment (`prod`, `staging`): the `Environment` dimension.
pub const ENVIRONMENT_ENV: &str = "KORALA_ENVIRONMENT";

pub const SESSIONS_CREATED: &str = "SessionsCreated";
pub const SESSION_OUTCOMES: &str = "SessionOutcomes";
pub const SESSIONS_RESOLVED: &str = "SessionsResolved";
pub const CHECKS_COMPLETED: &str = "ChecksCompleted";
pub const WEBHOOK_DELIVERY_ATTEMPTS: &str = "WebhookDeliveryAttempts";
pub const WEBHOOK_DELIVERY_LATENCY: &str = "WebhookDeliveryLatency";

pub const ENVIRONMENT: &str = "Environment";
pub const MODE: &str = "Mode";
pub const STATUS: &str = "Status";
pub const DECISION: &str = "Decision";
pub const RESOLVED_BY: &str = "ResolvedBy";
pub const KIND: &str = "Kind";
pub const VERDICT: &str = "Verdict";
pub const OUTCOME: &str = "Outcome";

/// The property naming the invocation a document came from.
pub const REQUEST_ID_PROPERTY: &str = "requestId";

static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

/// Whether this process emits, from `KORALA_METRICS` and whether it runs on Lambda.
pub fn emits(switch: Option<&str>, on_lambda: bool) -> bool {
    match switch.map(str::trim) {
        Some(s) if s.eq_ignore_ascii_case("off") => false,
        Some(s) if s.eq_ignore_ascii_case("emf") => true,
        _ => on_lambda,
    }
}

/// Installs the EMF recorder if this process emits ([`emits`]); telemetry,
/// which reads the environment Lambda sets, says whether it runs on Lambda.
pub fn install_from_env(on_lambda: bool) {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if emits(var(SWITCH_ENV).as_deref(), on_lambda) {
        let namespace = var(NAMESPACE_ENV).unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        install(namespace, var(ENVIRONMENT_ENV));
    }
}

/// Installs the EMF recorder as the process's `metrics` recorder; returns
/// whether it is installed (a second call keeps the first).
pub fn install(namespace: String, environment: Option<String>) -> bool {
    if COLLECTOR.get().is_some() {
        return true;
    }
    let mut builder = Builder::new().cloudwatch_namespace(namespace);
    if let Some(environment) = environment {
        builder = builder.with_dimension(ENVIRONMENT, environment);
    }
    match builder.init() {
        Ok(collector) => {
            let _ = COLLECTOR.set(collector);
            describe();
            true
        }
        Err(error) => {
            tracing::warn!(%error, "metrics are not emitted: another recorder is installed");
            false
        }
    }
}

/// The units the documents declare.
fn describe() {
    metrics::describe_counter!(SESSIONS_CREATED, Unit::Count, "Sessions created");
    metrics::describe_counter!(SESSION_OUTCOMES, Unit::Count, "Sessions reaching a status, by status");
    metrics::describe_counter!(SESSIONS_RESOLVED, Unit::Count, "Sessions resolved, by decision");
    metrics::describe_counter!(CHECKS_COMPLETED, Unit::Count, "Checks answered, by kind and verdict");
    metrics::describe_counter!(
        WEBHOOK_DELIVERY_ATTEMPTS,
        Unit::Count,
        "Webhook delivery attempts, by outcome"
    );
    metrics::describe_histogram!(
        WEBHOOK_DELIVERY_LATENCY,
        Unit::Milliseconds,
        "Webhook delivery attempt latency"
    );
}

/// Writes what was recorded since the last flush to stdout, one EMF
/// document per dimension set, tagged with the invocation's request id.
pub fn flush(request_id: Option<&str>) {
    let Some(collector) = COLLECTOR.get() else {
        return;
    };
    match request_id {
        Some(id) => collector.set_property(REQUEST_ID_PROPERTY, id.to_owned()),
        None => collector.remove_property(REQUEST_ID_PROPERTY),
    };
    if let Err(error) = collector.flush(std::io::stdout().lock()) {
        tracing::warn!(%error, "metrics could not be written");
    }
}

/// [`flush`], into `writer`, without a request id.
pub fn flush_into(writer: impl std::io::Write) -> std::io::Result<()> {
    match COLLECTOR.get() {
        Some(collector) => collector.remove_property(REQUEST_ID_PROPERTY).flush(writer),
        None => Ok(()),
    }
}

/// Counts the session and check facts of events the bus took for good.
pub fn published<'a>(events: impl IntoIterator<Item = &'a Event>) {
    for event in events {
        count_event(event);
    }
}

fn count_event(event: &Event) {
    let mode = if event.tenant.is_sandbox() { "sandbox" } else { "live" };
    let outcome = |status: &'static str| metrics::counter!(SESSION_OUTCOMES, MODE => mode, STATUS => status);
    match &event.kind {
        EventKind::SessionCreated => metrics::counter!(SESSIONS_CREATED, MODE => mode).increment(1),
        EventKind::SessionCompleted => outcome("completed").increment(1),
        EventKind::SessionFailed => outcome("failed").increment(1),
        EventKind::SessionExpired => outcome("expired").increment(1),
        EventKind::SessionPendingReview => outcome("pending_review").increment(1),
        EventKind::SessionResolved {
            decision, resolved_by, ..
        } => metrics::counter!(
            SESSIONS_RESOLVED,
            MODE => mode,
            DECISION => decision_name(*decision),
            RESOLVED_BY => resolved_by_name(*resolved_by)
        )
        .increment(1),
        EventKind::SessionCheckCompleted { kind, verdict, .. } => metrics::counter!(
            CHECKS_COMPLETED,
            MODE => mode,
            KIND => kind_name(*kind),
            VERDICT => verdict_name(*verdict)
        )
        .increment(1),
        _ => {}
    }
}

// The dimension values, matched exhaustively so that a new variant in the
// domain is a compile error here rather than an unnamed dimension value.

fn decision_name(decision: Decision) -> &'static str {
    match decision {
        Decision::Approved => "approved",
        Decision::Rejected => "rejected",
    }
}

fn resolved_by_name(by: ResolvedBy) -> &'static str {
    match by {
        ResolvedBy::Auto => "auto",
        ResolvedBy::Partner => "partner",
    }
}

fn kind_name(kind: CheckKind) -> &'static str {
    match kind {
        CheckKind::Pep => "pep",
        CheckKind::Sanctions => "sanctions",
        CheckKind::AdverseMedia => "adverse_media",
        CheckKind::Registry => "registry",
    }
}

fn verdict_name(verdict: CheckVerdict) -> &'static str {
    match verdict {
        CheckVerdict::Clear => "clear",
        CheckVerdict::PossibleMatch => "possible_match",
        CheckVerdict::StrongMatch => "strong_match",
        CheckVerdict::Failed => "failed",
    }
}

/// Counts the latest attempt of a delivery as recorded: `delivered` on a
/// 2xx, `retried` when another attempt is scheduled, `failed` when the
/// delivery was dead-lettered (its attempts spent, or the endpoint gone or
/// disabled). Latency is recorded for attempts that were sent.
pub fn delivery_attempt(delivery: &WebhookDelivery) {
    let Some(attempt) = delivery.attempts.last() else {
        return;
    };
    let outcome = match delivery.state {
        DeliveryState::Delivered { .. } => "delivered",
        DeliveryState::Pending { .. } => "retried",
        DeliveryState::Failed { .. } => "failed",
    };
    metrics::counter!(WEBHOOK_DELIVERY_ATTEMPTS, OUTCOME => outcome).increment(1);
    if !matches!(attempt.outcome, AttemptOutcome::Skipped { .. }) {
        metrics::histogram!(WEBHOOK_DELIVERY_LATENCY).record(attempt.latency_ms as f64);
    }
}

/// A recorder that keeps every count and sample, for tests to install with
/// `metrics::set_default_local_recorder` and read back. Metrics are keyed
/// `Name{Label=value,...}`, labels in the order they were recorded.
#[derive(Default)]
pub struct Tally {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<BTreeMap<String, Arc<Samples>>>,
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl metrics::HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(value);
    }
}

fn tally_key(key: &Key) -> String {
    let labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
    if labels.is_empty() {
        key.name().to_owned()
    } else {
        format!("{}{{{}}}", key.name(), labels.join(","))
    }
}

impl Tally {
    /// Makes this the recorder of the current thread until the guard drops
    /// (a single-threaded test runtime runs every task on it).
    pub fn record_here(&self) -> metrics::LocalRecorderGuard<'_> {
        metrics::set_default_local_recorder(self)
    }

    /// Every counter with a count.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        counters
            .iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .filter(|(_, v)| *v > 0)
            .collect()
    }

    pub fn counter(&self, key: &str) -> u64 {
        self.counters().get(key).copied().unwrap_or(0)
    }

    pub fn samples(&self, key: &str) -> Vec<f64> {
        let histograms = self.histograms.lock().unwrap_or_else(PoisonError::into_inner);
        histograms
            .get(key)
            .map(|s| s.0.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .unwrap_or_default()
    }
}

impl Recorder for Tally {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        Counter::from_arc(counters.entry(tally_key(key)).or_default().clone())
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut histograms = self.histograms.lock().unwrap_or_else(PoisonError::into_inner);
        Histogram::from_arc(histograms.entry(tally_key(key)).or_default().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lambda_emits_unless_told() {
        assert!(!emits(None, false));
        assert!(emits(None, true));
        assert!(emits(Some("emf"), false));
        assert!(!emits(Some("off"), true));
        assert!(emits(Some("anything else"), true));
    }
}
