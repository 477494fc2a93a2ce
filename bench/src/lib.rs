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
