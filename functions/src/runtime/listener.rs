//! The local server's listener limits: how many connections it serves at
//! once, how long a client has to send its request's headers, and how the
//! accept loop rides out failures.
//!
//! Without them, a client that opens connections and sends nothing held a
//! task and a descriptor each for ever, and once the descriptors ran out
//! every `accept` failed at once and the loop spun, logging each failure
//! (53 MB of log in two seconds).

use std::time::Duration;

/// `LISTEN_MAX_CONNECTIONS`: connections served at once; more wait in the
/// kernel's backlog until one closes.
pub const MAX_CONNECTIONS_ENV: &str = "LISTEN_MAX_CONNECTIONS";
/// `LISTEN_HEADER_TIMEOUT_SECONDS`: how long a connection may take to send a
/// request's headers (and an idle one to start the next request).
pub const HEADER_TIMEOUT_ENV: &str = "LISTEN_HEADER_TIMEOUT_SECONDS";

pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS_RANGE: (u64, u64) = (1, 65_536);
const HEADER_TIMEOUT_RANGE: (u64, u64) = (1, 300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error("{var} must be a whole number from {min} to {max}, not `{value}`")]
    Invalid {
        var: &'static str,
        value: String,
        min: u64,
        max: u64,
    },
}

impl Limits {
    /// The limits `var` sets (the defaults for unset or blank variables); a
    /// value that is not a number in range stops the start rather than being
    /// replaced by a default the operator did not ask for.
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, LimitsError> {
        let defaults = Limits::default();
        let read = |name: &'static str, (min, max): (u64, u64), default: u64| -> Result<u64, LimitsError> {
            let Some(value) = var(name).filter(|v| !v.trim().is_empty()) else {
                return Ok(default);
            };
            match value.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(LimitsError::Invalid {
                    var: name,
                    value,
                    min,
                    max,
                }),
            }
        };
        let connections = read(
            MAX_CONNECTIONS_ENV,
            MAX_CONNECTIONS_RANGE,
            defaults.max_connections as u64,
        )?;
        let seconds = read(
            HEADER_TIMEOUT_ENV,
            HEADER_TIMEOUT_RANGE,
            defaults.header_timeout.as_secs(),
        )?;
        Ok(Self {
            // In range, so it fits.
            max_connections: usize::try_from(connections).unwrap_or(DEFAULT_MAX_CONNECTIONS),
            header_timeout: Duration::from_secs(seconds),
        })
    }
}

/// The waits of the accept loop after failures: from 10 ms, doubling, to a
/// second at most, until a connection is accepted again. A failure to accept
/// (out of descriptors, mostly) leaves the pending connection in the
/// backlog, so retrying at once fails at once: without a wait the loop
/// spins.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AcceptBackoff {
    /// Failures since the last accepted connection.
    failures: u32,
}

/// What the loop does after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub delay: Duration,
    /// The back-off starts with this failure: the one to log. The others
    /// are not, however long it lasts.
    pub first: bool,
}

impl AcceptBackoff {
    pub const FIRST_DELAY: Duration = Duration::from_millis(10);
    pub const MAX_DELAY: Duration = Duration::from_secs(1);

    pub fn failed(&mut self) -> Wait {
        self.failures = self.failures.saturating_add(1);
        let doublings = (self.failures - 1).min(16);
        Wait {
            delay: (Self::FIRST_DELAY * 2u32.pow(doublings)).min(Self::MAX_DELAY),
            first: self.failures == 1,
        }
    }

    /// A connection was accepted: the back-off, if one was running, ends;
    /// how many failures it lasted (to log once, as it ends).
    pub fn accepted(&mut self) -> Option<u32> {
        let failures = std::mem::take(&mut self.failures);
        (failures > 0).then_some(failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_limits_default_to_1024_connections_and_10_seconds_for_headers() {
        assert_eq!(
            Limits::from_env(&env(&[])),
            Ok(Limits {
                max_connections: 1024,
                header_timeout: Duration::from_secs(10)
            })
        );
        assert_eq!(
            Limits::from_env(&env(&[(MAX_CONNECTIONS_ENV, " ")])),
            Ok(Limits::default())
        );
        assert_eq!(
            Limits::from_env(&env(&[(MAX_CONNECTIONS_ENV, "64"), (HEADER_TIMEOUT_ENV, "3")])),
            Ok(Limits {
                max_connections: 64,
                header_timeout: Duration::from_secs(3)
            })
        );
    }

    #[test]
    fn a_limit_that_is_not_a_number_in_range_stops_the_start() {
        for (var, value) in [
            (MAX_CONNECTIONS_ENV, "0"),
            (MAX_CONNECTIONS_ENV, "65537"),
            (MAX_CONNECTIONS_ENV, "lots"),
            (MAX_CONNECTIONS_ENV, "-1"),
            (HEADER_TIMEOUT_ENV, "0"),
            (HEADER_TIMEOUT_ENV, "301"),
            (HEADER_TIMEOUT_ENV, "1.5"),
        ] {
            let error = Limits::from_env(&env(&[(var, value)])).unwrap_err();
            assert!(error.to_string().starts_with(var), "{error}");
            assert!(error.to_string().contains(&format!("`{value}`")), "{error}");
        }
    }

    #[test]
    fn accept_failures_wait_longer_each_time_and_are_logged_once() {
        let mut backoff = AcceptBackoff::default();
        let waits: Vec<Wait> = (0..12).map(|_| backoff.failed()).collect();
        let delays: Vec<u128> = waits.iter().map(|w| w.delay.as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000, 1000]);
        assert_eq!(waits.iter().filter(|w| w.first).count(), 1);
        assert!(waits[0].first);
        // A million failures in a row still wait a second each and log nothing.
        for _ in 0..1_000_000 {
            let wait = backoff.failed();
            assert_eq!(
                wait,
                Wait {
                    delay: AcceptBackoff::MAX_DELAY,
                    first: false
                }
            );
        }
        assert_eq!(backoff.accepted(), Some(1_000_012));
        assert_eq!(backoff.accepted(), None, "over once logged");
        // The next failure starts a new back-off, from the shortest wait.
        assert_eq!(
            backoff.failed(),
            Wait {
                delay: AcceptBackoff::FIRST_DELAY,
                first: true
            }
        );
    }
}
