//! The benchmark suite behind `BENCHMARKS.md` (`scripts/bench` runs it):
//! what each API operation costs on DynamoDB and in latency over the raw
//! SDK calls it makes, how the functions start, how listing and the expiry
//! sweep scale with the table, the local server's throughput, and how one
//! organisation's worst rules affect another's requests.
//!
//! Every figure that has a target is a ratio of two things measured in the
//! same run on the same machine, so a slow or busy machine moves both.

pub mod cold_start;
pub mod isolation;
pub mod operations;
pub mod replay;
pub mod report;
pub mod runtime_api;
pub mod scale;
pub mod throughput;

/// A signing time (Unix seconds) within the five-minute window around `now` at which
/// this process has not signed a request of the same kind (method, path,
/// body) yet: a signed mutation is good once, so a benchmark that repeats
/// one request must sign each repetition at its own instant, as a client's
/// retry does.
pub fn signing_time(now: i64, method: &str, path: &str, body: &[u8]) -> i64 {
    use std::collections::{HashMap, HashSet};
    use std::sync::{LazyLock, Mutex};
    static SIGNED: LazyLock<Mutex<HashMap<Vec<u8>, HashSet<i64>>>> = LazyLock::new(Default::default);
    let mut kind = format!("{method} {path} ").into_bytes();
    kind.extend_from_slice(body);
    let Ok(mut signed) = SIGNED.lock() else {
        return now;
    };
    let used = signed.entry(kind).or_default();
    // now, now - 1, now + 1, now - 2, …: the first not used yet.
    let at = (0..599)
        .map(|n: i64| if n % 2 == 1 { now - (n + 1) / 2 } else { now + n / 2 })
        .find(|at| !used.contains(at))
        .unwrap_or(now);
    used.insert(at);
    at
}

/// A benchmark failed to run (not: missed a target, which is reported).
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// One part of the report.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub title: String,
    /// Markdown: what was measured and how, then the figures.
    pub body: String,
    pub targets: Vec<Target>,
}

/// A figure with a target: met, or the report says by how much it is not.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// What is compared, e.g. "sessions-get: init vs hello-world".
    pub what: String,
    pub measured: f64,
    /// The largest acceptable value.
    pub limit: f64,
}

impl Target {
    pub fn new(what: impl Into<String>, measured: f64, limit: f64) -> Self {
        Self {
            what: what.into(),
            measured,
            limit,
        }
    }

    pub fn met(&self) -> bool {
        self.measured <= self.limit
    }
}

/// The `q`-quantile (0 ≤ q ≤ 1) of `samples`, by nearest rank.
pub fn quantile(samples: &[f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&samples, 0.5), 50.0);
        assert_eq!(quantile(&samples, 0.99), 99.0);
        assert_eq!(quantile(&samples, 1.0), 100.0);
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.5), 2.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn a_target_is_met_at_its_limit() {
        assert!(Target::new("x", 1.1, 1.1).met());
        assert!(!Target::new("x", 1.11, 1.1).met());
    }
}
