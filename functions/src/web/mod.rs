//! HTTP plumbing shared by every handler: reading bodies and query strings,
//! writing JSON replies and problem documents.

pub mod admission;
pub mod auth;
pub mod idempotency;
pub mod problem;

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use problem::ApiError;

use crate::app::App;

/// A successful reply: a status and an optional JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<String>,
    pub location: Option<String>,
    pub replayed: bool,
}

impl Reply {
    pub fn json(status: StatusCode, value: &impl Serialize) -> Result<Self, ApiError> {
        let body = serde_json::to_string(value).map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(Self {
            status,
            body: Some(body),
            location: None,
            replayed: false,
        })
    }

    pub fn ok(value: &impl Serialize) -> Result<Self, ApiError> {
        Self::json(StatusCode::OK, value)
    }

    pub fn created(value: &impl Serialize, location: String) -> Result<Self, ApiError> {
        let mut reply = Self::json(StatusCode::CREATED, value)?;
        reply.location = Some(location);
        Ok(reply)
    }

    /// `302 Found` to `location`, with `value` for a client that does not
    /// follow redirects.
    pub fn redirect(value: &impl Serialize, location: String) -> Result<Self, ApiError> {
        let mut reply = Self::json(StatusCode::FOUND, value)?;
        reply.location = Some(location);
        Ok(reply)
    }

    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: None,
            location: None,
            replayed: false,
        }
    }
}

pub type ApiResult = Result<Reply, ApiError>;

/// Turns a handler's result into the response, logging server-side failures.
pub fn respond(result: ApiResult) -> Response<Body> {
    match result {
        Ok(reply) => {
            let mut response = Response::builder().status(reply.status);
            if reply.body.is_some() {
                response = response.header(header::CONTENT_TYPE, "application/json");
            }
            if let Some(location) = reply.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
                response = response.header(header::LOCATION, location);
            }
            if reply.replayed {
                response = response.header("Idempotent-Replayed", "true");
            }
            response
                .body(reply.body.map(Body::Text).unwrap_or(Body::Empty))
                .unwrap_or_else(|_| Response::new(Body::Empty))
        }
        Err(error) => problem_response(&error),
    }
}

pub fn problem_response(error: &ApiError) -> Response<Body> {
    let (status, body) = error.to_problem();
    if status.is_server_error() {
        tracing::error!(error = %error, code = status.as_u16(), "request failed");
    } else {
        tracing::info!(
            code = status.as_u16(),
            kind = error.status_and_code().1,
            "request refused"
        );
    }
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    let retry_after = match error {
        ApiError::RateLimited { retry_after } => Some(*retry_after),
        _ if status == StatusCode::SERVICE_UNAVAILABLE => Some(1),
        _ => None,
    };
    if let Some(seconds) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, seconds);
    }
    response
}

/// Parses the body as `T`. Malformed JSON is `400`; well-formed JSON of the
/// wrong shape (unknown or missing fields, wrong types, unknown enum values)
/// is `422` naming the field.
pub fn json_body<T: DeserializeOwned>(app: &App, req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > app.settings.max_body_bytes {
        return Err(ApiError::PayloadTooLarge {
            limit: app.settings.max_body_bytes,
        });
    }
    if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    // Syntax first, so any well-formed body gets its problems by field.
    let value: serde_json::Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedJson(strip_position(&e.to_string())))?
    };
    if !value.is_object() {
        return Err(ApiError::Invalid(korala_domain::FieldErrors::single(
            "body",
            "must be a JSON object",
        )));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = strip_position(&e.inner().to_string());
        ApiError::Invalid(korala_domain::FieldErrors::single(field_of(&path, &message), message))
    })
}

/// The field a deserialisation error is about: its path, completed with the
/// name of a missing field (serde reports those at the enclosing object).
fn field_of(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (path, Some(name)) => format!("{path}.{name}"),
        (path, None) => path.to_owned(),
    }
}

fn strip_position(message: &str) -> String {
    message
        .rsplit_once(" at line ")
        .map(|(m, _)| m)
        .unwrap_or(message)
        .to_owned()
}

/// Parses the query string as `T`, with the same `422` for bad parameters.
pub fn query<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let raw = req.uri().query().unwrap_or("");
    serde_urlencoded::from_str(raw)
        .map_err(|e| ApiError::Invalid(korala_domain::FieldErrors::single("query", e.to_string())))
}

/// A path parameter the route guarantees.
pub fn path_param(req: &Request, name: &str) -> Result<String, ApiError> {
    req.path_parameters()
        .first(name)
        .map(str::to_owned)
        .ok_or(ApiError::NoRoute)
}

/// A whole-number query parameter within `range`, `default` when absent;
/// anything else is pushed on `errors` under `field`.
pub fn number_param(
    errors: &mut korala_domain::FieldErrors,
    field: &str,
    raw: Option<&str>,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> u32 {
    match raw.map(str::parse::<u32>) {
        None => default,
        Some(Ok(n)) if range.contains(&n) => n,
        Some(_) => {
            errors.push(
                field,
                format!("must be a whole number from {} to {}", range.start(), range.end()),
            );
            default
        }
    }
}
