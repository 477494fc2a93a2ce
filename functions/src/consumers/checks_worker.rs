//! The checks worker: the checks queue's consumer. Each message is a
//! `session_check_requested` event (the outbox publishes it; a bus rule
//! routes it here). The worker runs the check's provider on the check's
//! participant and records the answer on the session with a conditional
//! write ([`Session::record_check`](korala_domain::session::Session)).
//!
//! Idempotent: a message for a check that is no longer pending (answered,
//! reset, or its session closed) runs no provider and records nothing.
//! A provider that fails is asked again after 10 s, 20 s, 40 s and 80 s —
//! the message's visibility timeout, not a sleep — and after the fifth
//! failure the check fails, and with it its workflow.

use std::sync::Arc;

use async_trait::async_trait;
use korala_domain::DomainError;
use korala_domain::checks::CheckOutcome;
use korala_domain::delivery::Next;
use korala_domain::events::EventKind;
use korala_domain::ids::{CheckId, IdGenerator};
use korala_domain::ports::{Clock, Store, StoreError};
use korala_domain::session::{Check, CheckStatus, Session};

use crate::adapters::bus::Envelope;
use crate::adapters::providers::{ProviderError, Providers, ScreenCall, sandbox_answer};
use crate::app::App;
use crate::consumers::{Consumer, Message};
use crate::evaluation::{self, EvaluationError};

/// Provider attempts per check, the first included.
pub const MAX_PROVIDER_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("not an event envelope: {0}")]
    BadMessage(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("the session kept changing while the check was recorded")]
    Contended,
}

#[derive(Clone)]
pub struct ChecksWorker {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    providers: Arc<Providers>,
}

/// The wait before attempt `n + 1` after `n` failed: 10 s, doubling.
fn backoff(attempts: u32) -> i64 {
    10 * 2_i64.pow(attempts.saturating_sub(1).min(6))
}

impl ChecksWorker {
    pub fn new(app: &App, providers: Arc<Providers>) -> Self {
        Self {
            store: app.store.clone(),
            clock: app.clock.clone(),
            ids: app.ids.clone(),
            providers,
        }
    }

    pub async fn handle(&self, message: &Message) -> Result<Next, CheckError> {
        let envelope: Envelope = serde_json::from_str(&message.body)?;
        let event = envelope.detail;
        let EventKind::SessionCheckRequested { check_id, .. } = &event.kind else {
            return Ok(Next::Done);
        };
        let Some(session) = self.store.sessions().get(&event.tenant, &event.session_id).await? else {
            return Ok(Next::Done);
        };
        let Some(check) = session
            .checks
            .iter()
            .find(|c| &c.id == check_id && c.status == CheckStatus::Pending)
        else {
            return Ok(Next::Done);
        };
        let outcome = match self.run(&session, check).await {
            Ok(outcome) => outcome,
            Err(error) if message.receive_count < MAX_PROVIDER_ATTEMPTS => {
                let wait = backoff(message.receive_count);
                tracing::warn!(check = %check.id, attempt = message.receive_count, wait, error = %error, "provider failed; retrying");
                return Ok(Next::RetryIn(wait));
            }
            Err(error) => CheckOutcome::Failed {
                provider: check
                    .provider
                    .clone()
                    .unwrap_or_else(|| crate::adapters::providers::SCREENING.to_owned()),
                reason: format!("{error} (after {} attempts)", message.receive_count),
            },
        };
        let check_id = check.id.clone();
        self.record(session, &check_id, outcome).await?;
        Ok(Next::Done)
    }

    /// Runs the check's provider (or the sandbox's forced answer).
    async fn run(&self, session: &Session, check: &Check) -> Result<CheckOutcome, ProviderError> {
        let provider = match self.providers.get(check.provider.as_deref()) {
            Ok(provider) => provider,
            Err(error @ ProviderError::Unknown(_)) => {
                return Ok(CheckOutcome::Failed {
                    provider: check.provider.clone().unwrap_or_default(),
                    reason: error.to_string(),
                });
            }
            Err(error) => return Err(error),
        };
        let name = provider.name().to_owned();
        // A vendor is a contract: only organisations an operator enabled it
        // for reach it, whatever their workflows name.
        if provider.is_vendor() {
            let organization = self
                .store
                .get_organization(&session.tenant.org_id)
                .await
                .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
            if !organization.is_some_and(|org| org.may_use(&name)) {
                return Ok(CheckOutcome::Failed {
                    reason: ProviderError::NotEnabled(name.clone()).to_string(),
                    provider: name,
                });
            }
        }
        let Some(subject) = session.screening_subject(&check.id) else {
            return Ok(CheckOutcome::Failed {
                provider: name,
                reason: "the participant has no name to screen".into(),
            });
        };
        let forced = if session.tenant.is_sandbox() {
            sandbox_answer(check.kind, &subject)
        } else {
            None
        };
        let answer = match forced {
            Some(answer) => answer,
            None => {
                let call = ScreenCall {
                    kind: check.kind,
                    subject: &subject,
                    tenant: &session.tenant,
                };
                provider.screen(&call).await
            }
        };
        let findings = match answer {
            Ok(findings) => findings,
            // Asking again cannot help: the check fails now, not after the backoff.
            Err(error @ (ProviderError::Refused(_) | ProviderError::Unknown(_) | ProviderError::NotEnabled(_))) => {
                return Ok(CheckOutcome::Failed {
                    provider: name,
                    reason: error.to_string(),
                });
            }
            Err(error) => return Err(error),
        };
        tracing::info!(check = %check.id, kind = ?check.kind, findings = findings.len(), "check screened");
        Ok(CheckOutcome::Screened {
            provider: name,
            findings,
        })
    }

    /// Records the answer on the session as read before the provider ran;
    /// a lost race re-reads it and records on the fresh one.
    async fn record(&self, session: Session, check: &CheckId, outcome: CheckOutcome) -> Result<(), CheckError> {
        let (tenant, id) = (session.tenant.clone(), session.id.clone());
        let mut current = Some(session);
        for _ in 0..5 {
            let Some(session) = current.take() else {
                return Ok(());
            };
            let Some(transition) =
                evaluation::record_check(session, check, &outcome, self.clock.now(), &self.ids).await??
            else {
                return Ok(());
            };
            match self.store.sessions().commit(&transition).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict) => current = self.store.sessions().get(&tenant, &id).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CheckError::Contended)
    }
}

#[async_trait]
impl Consumer for ChecksWorker {
    async fn handle(&self, message: &Message) -> Result<Next, String> {
        ChecksWorker::handle(self, message).await.map_err(|e| e.to_string())
    }
}

/// Rules that do not finish evaluating: the worker asks again later (the
/// message comes back after its visibility timeout), as after any transient
/// failure.
impl From<EvaluationError> for CheckError {
    fn from(error: EvaluationError) -> Self {
        CheckError::Store(StoreError::Unavailable(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_that_stop_are_asked_again() {
        let check: CheckError = EvaluationError::Stopped("a bug".into()).into();
        assert!(matches!(check, CheckError::Store(StoreError::Unavailable(_))));
    }

    #[test]
    fn the_backoff_doubles_from_ten_seconds() {
        let waits: Vec<i64> = (1..MAX_PROVIDER_ATTEMPTS).map(backoff).collect();
        assert_eq!(waits, [10, 20, 40, 80]);
    }
}
