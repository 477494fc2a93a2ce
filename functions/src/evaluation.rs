//! Domain calls that may evaluate a workflow's rules (a submission, a start,
//! a review, a resubmission, a check's answer: each runs the pipeline as far
//! as it goes), run off the async executor and within a deadline.
//!
//! The rule budget (`korala_domain::rules::cost`) bounds what one call may
//! evaluate to a few tens of milliseconds of one core. That is still far too
//! long to hold an executor thread: the local server has two, and while they
//! evaluate nothing else answers, whichever organisation asked. So the call
//! runs on tokio's blocking pool, and the request waits for it without
//! holding a thread. The deadline is a backstop for an estimate that is
//! wrong or a machine starved of CPU: the answer is an error, never a
//! request that hangs until Lambda kills it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use korala_domain::checks::CheckOutcome;
use korala_domain::ids::{CheckId, IdGenerator};
use korala_domain::session::Session;
use korala_domain::transition::Transition;
use korala_domain::{DomainError, Timestamp};

use crate::app::App;
use crate::web::ApiError;

/// How long a domain call that evaluates rules may take. The budget keeps
/// one to about 20 ms of one core; a Lambda function of 256 MB has a sixth
/// of a vCPU, so well under a second there, and this leaves room for a
/// loaded machine while staying far inside the functions' 10 s timeout.
pub const DEADLINE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluationError {
    #[error("the workflow's rules did not finish evaluating within {0:?}")]
    DeadlineExceeded(Duration),
    /// The blocking task ended without an answer: it panicked, or the
    /// runtime is shutting down.
    #[error("the workflow's rules stopped evaluating: {0}")]
    Stopped(String),
}

/// Runs `work` on the blocking pool; its answer, or why there is none.
/// On the deadline the work is not stopped (a thread cannot be), only no
/// longer waited for: the budget bounds how long it goes on.
pub async fn run_rules<T, F>(work: F) -> Result<T, EvaluationError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    within(DEADLINE, work).await
}

async fn within<T, F>(deadline: Duration, work: F) -> Result<T, EvaluationError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::time::timeout(deadline, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(stopped)) => Err(EvaluationError::Stopped(stopped.to_string())),
        Err(_) => Err(EvaluationError::DeadlineExceeded(deadline)),
    }
}

/// Past the deadline nothing was committed (the change is applied only
/// once the evaluation answers), so the client may retry: `503`, as for
/// any brief unavailability. A stopped evaluation (a panic) is our bug.
impl From<EvaluationError> for ApiError {
    fn from(error: EvaluationError) -> Self {
        match error {
            EvaluationError::DeadlineExceeded(_) => ApiError::Overloaded(error.to_string()),
            EvaluationError::Stopped(_) => ApiError::Internal(error.to_string()),
        }
    }
}

/// What the API's `mutate` applies to the freshest session: a plain
/// closure (nothing to evaluate, run in place) or an [`Offloaded`] one.
pub(crate) trait Mutation {
    fn apply(&self, session: &Session) -> impl Future<Output = Result<Option<Transition>, ApiError>> + Send;
}

/// Reads: no change at all.
pub(crate) struct Unchanged;

impl Mutation for Unchanged {
    fn apply(&self, _: &Session) -> impl Future<Output = Result<Option<Transition>, ApiError>> + Send {
        std::future::ready(Ok(None))
    }
}

/// A change that may evaluate rules, run by [`run_rules`]. It owns what it
/// needs (the blocking pool outlives any borrow) and is handed the app.
pub(crate) struct Offloaded<F> {
    app: App,
    change: Arc<F>,
}

/// `change` as an [`Offloaded`] change: `move |app, session| …`.
pub(crate) fn offloaded<F>(app: &App, change: F) -> Offloaded<F>
where
    F: Fn(&App, &Session) -> Result<Option<Transition>, DomainError> + Send + Sync + 'static,
{
    Offloaded {
        app: app.clone(),
        change: Arc::new(change),
    }
}

impl<F> Mutation for Offloaded<F>
where
    F: Fn(&App, &Session) -> Result<Option<Transition>, DomainError> + Send + Sync + 'static,
{
    fn apply(&self, session: &Session) -> impl Future<Output = Result<Option<Transition>, ApiError>> + Send {
        let (app, change, session) = (self.app.clone(), Arc::clone(&self.change), session.clone());
        async move { Ok(run_rules(move || change(&app, &session)).await??) }
    }
}

/// [`Session::record_check`], run by [`run_rules`].
pub(crate) async fn record_check(
    session: Session,
    check: &CheckId,
    outcome: &CheckOutcome,
    now: Timestamp,
    ids: &Arc<dyn IdGenerator>,
) -> Result<Result<Option<Transition>, DomainError>, EvaluationError> {
    let (check, outcome, ids) = (check.clone(), outcome.clone(), Arc::clone(ids));
    run_rules(move || session.record_check(&check, outcome, now, ids.as_ref())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call that blocks its thread does not hold up the executor: with one
    /// executor thread, other tasks run while it blocks.
    #[tokio::test(flavor = "current_thread")]
    async fn rules_run_beside_the_executor() {
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let evaluation = tokio::spawn(run_rules(move || blocked.recv().is_ok()));
        // Were the call on this thread, this task would never run and the
        // channel never be released.
        let other = tokio::spawn(async move { release.send(()).is_ok() });
        assert_eq!(other.await.ok(), Some(true));
        assert_eq!(evaluation.await.ok(), Some(Ok(true)));
    }

    /// Past the deadline the request gets an answer. The call here never
    /// finishes by itself (it waits on a channel this test holds open until
    /// it ends), so the deadline, short for the test, always passes first.
    #[tokio::test]
    async fn a_call_past_the_deadline_is_an_error_not_a_hang() {
        let (open, never) = std::sync::mpsc::channel::<()>();
        let deadline = Duration::from_millis(10);
        let answer = within(deadline, move || never.recv().is_ok()).await;
        assert_eq!(answer, Err(EvaluationError::DeadlineExceeded(deadline)));
        let api: ApiError = answer.unwrap_err().into();
        assert_eq!(
            api.status_and_code(),
            (http::StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
            "nothing was committed: the client may retry"
        );
        drop(open);
    }

    #[tokio::test]
    async fn a_call_that_panics_is_an_error() {
        let answer = run_rules(|| -> u32 { panic!("a bug") }).await;
        assert!(matches!(answer, Err(EvaluationError::Stopped(_))));
    }
}
