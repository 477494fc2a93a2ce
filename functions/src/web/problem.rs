//! Every error the API answers, mapped to an HTTP status and a stable `code`
//! once, here, and rendered as an RFC 9457 problem document.

use http::StatusCode;
use korala_domain::DomainError;
use korala_domain::ports::{StorageError, StoreError};
use korala_domain::validation::FieldErrors;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("no route for this method and path")]
    NoRoute,
    #[error("this path does not accept {0}")]
    MethodNotAllowed(String),
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request is invalid")]
    Invalid(FieldErrors),
    #[error("the slug `{0}` is already in use in this organisation")]
    SlugTaken(String),
    #[error("{0}")]
    Conflict(String),
    #[error("built-in workflow `{0}` cannot be deleted (override it with PUT instead)")]
    BuiltinWorkflow(String),
    #[error("workflow `{0}` is used by configuration `{1}`")]
    WorkflowInUse(String, String),
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyInProgress,
    #[error(transparent)]
    Redelivery(#[from] korala_domain::delivery::RedeliveryRefused),
    /// Past the rate limit: the same request passes after `retry_after`
    /// seconds.
    #[error("too many requests: retry after {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    /// The work did not finish in time (rules past their deadline on a
    /// starved machine): nothing was changed, and a retry may pass.
    #[error("{0}")]
    Overloaded(String),
    /// The deliveries queue did not take a message.
    #[error("the deliveries queue is unavailable: {0}")]
    QueueUnavailable(String),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Document storage failed. (A file too large to read is the end
    /// user's, and the domain's field error, never this.)
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        ApiError::Invalid(errors)
    }
}

impl ApiError {
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ApiError as E;
        use DomainError as D;
        match self {
            E::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            E::NotFound(_) | E::NoRoute => (StatusCode::NOT_FOUND, "not_found"),
            E::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            E::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            E::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            E::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            E::Invalid(_) | E::Domain(D::Invalid(_)) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            E::SlugTaken(_) => (StatusCode::CONFLICT, "slug_taken"),
            E::Store(StoreError::LimitReached(_)) => (StatusCode::UNPROCESSABLE_ENTITY, "limit_reached"),
            E::Conflict(_) | E::Store(StoreError::Conflict | StoreError::AlreadyExists) => {
                (StatusCode::CONFLICT, "conflict")
            }
            E::BuiltinWorkflow(_) => (StatusCode::CONFLICT, "builtin_workflow"),
            E::WorkflowInUse(..) => (StatusCode::CONFLICT, "workflow_in_use"),
            E::IdempotencyKeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            E::IdempotencyInProgress => (StatusCode::CONFLICT, "idempotency_in_progress"),
            E::Domain(D::UnknownSessionWorkflow(_)) | E::Store(StoreError::NotFound) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            E::Domain(D::WorkflowNotCurrent(_)) => (StatusCode::CONFLICT, "workflow_not_current"),
            E::Domain(D::SessionExpired) => (StatusCode::CONFLICT, "session_expired"),
            E::Domain(D::SessionClosed(_)) => (StatusCode::CONFLICT, "session_closed"),
            E::Domain(D::NotAwaitingReview(_)) => (StatusCode::CONFLICT, "workflow_not_pending_review"),
            E::Domain(D::NothingToResubmit(_)) => (StatusCode::CONFLICT, "workflow_not_started"),
            E::Domain(D::ResolutionDisabled) => (StatusCode::CONFLICT, "resolution_disabled"),
            E::Domain(D::TooManyUploads(_)) => (StatusCode::CONFLICT, "too_many_uploads"),
            E::Redelivery(_) => (StatusCode::CONFLICT, "delivery_pending"),
            E::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            E::Store(StoreError::Unavailable(_))
            | E::QueueUnavailable(_)
            | E::Overloaded(_)
            | E::Storage(StorageError::Unavailable(_)) => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
            E::Domain(D::InvariantViolated(_))
            | E::Store(StoreError::Corrupt(_))
            | E::Storage(StorageError::TooLarge { .. })
            | E::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    /// The problem document. Server-side failures say nothing of their cause
    /// to the client; it is logged instead.
    pub fn to_problem(&self) -> (StatusCode, serde_json::Value) {
        let (status, code) = self.status_and_code();
        let detail = if status.is_server_error() {
            match self {
                ApiError::Store(StoreError::Unavailable(_))
                | ApiError::QueueUnavailable(_)
                | ApiError::Overloaded(_)
                | ApiError::Storage(StorageError::Unavailable(_)) => {
                    "The service is briefly unavailable; retry shortly.".to_owned()
                }
                _ => "Something went wrong on our side; it has been logged.".to_owned(),
            }
        } else {
            self.to_string()
        };
        let errors: Vec<serde_json::Value> = match self {
            ApiError::Invalid(errors) | ApiError::Domain(DomainError::Invalid(errors)) => errors
                .iter()
                .map(|e| json!({"field": e.field, "message": e.message}))
                .collect(),
            _ => Vec::new(),
        };
        let body = json!({
            "type": format!("urn:korala:problem:{code}"),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
            "code": code,
            "errors": errors,
        });
        (status, body)
    }
}
