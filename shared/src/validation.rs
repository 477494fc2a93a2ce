//! Field-level validation errors, the currency of every `422` the API answers.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// An accumulator of field errors: validators push every problem they find so a
/// client learns all of them in one round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.push(field, message);
        errors
    }

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn extend(&mut self, other: FieldErrors) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }

    /// `Ok(value)` when nothing was pushed.
    pub fn finish<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.is_empty() { Ok(value) } else { Err(self) }
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
        f.write_str(&parts.join("; "))
    }
}

/// Slugs are URL-safe: lowercase ASCII letters and digits in dash-separated runs.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// Keys that rules reach as `outputs.<key>` must be CEL identifiers.
pub fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && s.len() <= 64
}

pub fn check_text(errors: &mut FieldErrors, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        errors.push(field, "must not be empty");
    } else if value.chars().count() > max {
        errors.push(field, format!("must be at most {max} characters"));
    }
}

/// Redirect URLs must be absolute `https`, or `http` on a loopback host for
/// local development.
pub fn check_redirect_url(errors: &mut FieldErrors, field: &str, value: &str) {
    match url::Url::parse(value) {
        Ok(url) => {
            let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            match url.scheme() {
                "https" => {}
                "http" if local => {}
                _ => errors.push(field, "must be an https URL"),
            }
            if value.len() > 2048 {
                errors.push(field, "must be at most 2048 characters");
            }
        }
        Err(e) => errors.push(field, format!("must be an absolute URL ({e})")),
    }
}

/// Free-form JSON objects are stored with the session: bound their size.
pub fn check_json_size(errors: &mut FieldErrors, field: &str, value: &crate::JsonMap, max: usize) {
    let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > max {
        errors.push(field, format!("must serialise to at most {max} bytes"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(is_slug("kyb-standard"));
        assert!(is_slug("id-document"));
        assert!(!is_slug("KYB"));
        assert!(!is_slug("a--b"));
        assert!(!is_slug("-a"));
        assert!(!is_slug(""));
        assert!(!is_slug("a b"));
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("representative_id"));
        assert!(!is_identifier("1abc"));
        assert!(!is_identifier("a-b"));
    }

    #[test]
    fn redirect_urls() {
        let mut e = FieldErrors::new();
        check_redirect_url(&mut e, "u", "https://yourapp.com/x");
        check_redirect_url(&mut e, "u", "http://localhost:3000/done");
        assert!(e.is_empty());
        check_redirect_url(&mut e, "u", "http://yourapp.com/x");
        check_redirect_url(&mut e, "u", "javascript:alert(1)");
        check_redirect_url(&mut e, "u", "/relative");
        assert_eq!(e.iter().count(), 3);
    }
}
