//! What the end user submits for a `capture` step, checked against its fields.
//! A malformed submission is the client's mistake: it is refused with field
//! errors and costs no attempt.

use chrono::NaiveDate;
use serde_json::Value;

use crate::JsonMap;
use crate::validation::FieldErrors;
use crate::workflow::{Field, FieldKind};

pub const MAX_TEXT: usize = 500;

/// The dates a capture accepts. A birth date before 1900 or an expiry after
/// 2199 is a typing mistake or a probe, never a document: chrono alone reads
/// `-262143-01-01` and `0000-02-29`, and rules comparing such dates decided
/// sessions on them. Four-digit years keep the written form unambiguous.
pub const FIRST_DATE: &str = "1900-01-01";
pub const LAST_DATE: &str = "2199-12-31";

/// Returns the submission normalised (trimmed text, upper-case country codes).
pub fn accept(fields: &[Field], data: &JsonMap) -> Result<JsonMap, FieldErrors> {
    let mut errors = FieldErrors::new();
    for key in data.keys() {
        if !fields.iter().any(|f| &f.name == key) {
            errors.push(format!("data.{key}"), "is not a field of this step");
        }
    }
    let mut accepted = JsonMap::new();
    for field in fields {
        let at = format!("data.{}", field.name);
        match data.get(&field.name) {
            None | Some(Value::Null) => {
                if field.required {
                    errors.push(at, "is required");
                }
            }
            Some(value) => match normalise(field, value) {
                Ok(v) => {
                    accepted.insert(field.name.clone(), v);
                }
                Err(message) => errors.push(at, message),
            },
        }
    }
    errors.finish(accepted)
}

fn normalise(field: &Field, value: &Value) -> Result<Value, String> {
    let text = || {
        value
            .as_str()
            .map(str::trim)
            .ok_or_else(|| "must be a string".to_owned())
    };
    match field.kind {
        FieldKind::Document => crate::documents::accept_value(value),
        FieldKind::Text => {
            let s = text()?;
            if s.is_empty() {
                Err("must not be empty".into())
            } else if s.chars().count() > MAX_TEXT {
                Err(format!("must be at most {MAX_TEXT} characters"))
            } else {
                Ok(Value::String(s.to_owned()))
            }
        }
        FieldKind::Date => {
            let s = text()?;
            match plausible_date(s) {
                Some(_) => Ok(Value::String(s.to_owned())),
                None => Err(format!(
                    "must be a date written YYYY-MM-DD, from {FIRST_DATE} to {LAST_DATE}"
                )),
            }
        }
        FieldKind::Country => {
            let s = text()?.to_ascii_uppercase();
            if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
                Ok(Value::String(s))
            } else {
                Err("must be an ISO 3166-1 alpha-2 country code".into())
            }
        }
        FieldKind::Number => match value {
            Value::Number(_) => Ok(value.clone()),
            _ => Err("must be a number".into()),
        },
        FieldKind::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => Err("must be true or false".into()),
        },
        FieldKind::Select => {
            let s = text()?;
            if field.options.iter().any(|o| o == s) {
                Ok(Value::String(s.to_owned()))
            } else {
                Err(format!("must be one of: {}", field.options.join(", ")))
            }
        }
    }
}

/// Strictly `YYYY-MM-DD` (ten ASCII characters, no sign, zero-padded) and
/// within [`FIRST_DATE`]..=[`LAST_DATE`]: chrono's `%Y` takes a sign and any
/// number of digits, and `%m`/`%d` take one digit.
fn plausible_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shaped {
        return None;
    }
    // Both bounds are written in the same form, so the text order is the date order.
    if !(FIRST_DATE..=LAST_DATE).contains(&s) {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin;
    use crate::workflow::Step;
    use serde_json::json;

    fn id_fields() -> Vec<Field> {
        match &builtin::get("id-document").unwrap().steps[0] {
            Step::Capture(c) => c.fields.clone(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn accepts_and_normalises() {
        let data = json!({"documentType": "passport", "documentNumber": " X1 ", "fullName": "Jane Doe",
            "dateOfBirth": "1990-01-02", "expiryDate": "2030-01-01", "issuingCountry": "gb"});
        let out = accept(&id_fields(), data.as_object().unwrap()).unwrap();
        assert_eq!(out["documentNumber"], "X1");
        assert_eq!(out["issuingCountry"], "GB");
        assert!(!out.contains_key("documentImage"));
    }

    #[test]
    fn reports_every_bad_field() {
        let data = json!({"documentType": "visa", "documentNumber": 7, "fullName": "",
            "dateOfBirth": "02/01/1990", "issuingCountry": "GBR", "extra": true});
        let errors = accept(&id_fields(), data.as_object().unwrap()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "data.extra",
                "data.documentType",
                "data.documentNumber",
                "data.fullName",
                "data.dateOfBirth",
                "data.expiryDate",
                "data.issuingCountry"
            ]
        );
    }

    fn date_of_birth(value: &str) -> Result<JsonMap, FieldErrors> {
        let data = json!({"documentType": "passport", "documentNumber": "X1", "fullName": "Jane Doe",
            "dateOfBirth": value, "expiryDate": "2030-01-01", "issuingCountry": "GB"});
        accept(&id_fields(), data.as_object().unwrap())
    }

    #[test]
    fn dates_inside_the_plausible_range_are_accepted() {
        for good in ["1900-01-01", "1990-01-02", "2000-02-29", "2199-12-31", " 1970-06-15 "] {
            let out = date_of_birth(good).unwrap_or_else(|e| panic!("{good:?}: {e:?}"));
            assert_eq!(out["dateOfBirth"], good.trim());
        }
    }

    #[test]
    fn dates_outside_the_range_or_not_strictly_written_are_field_errors() {
        for bad in [
            // The two that reached a decision: a six-digit negative year, year zero.
            "-262143-01-01",
            "0000-02-29",
            "1899-12-31",
            "2200-01-01",
            "+1990-01-01",
            "+001990-01-01",
            "01990-01-01",
            "1990-1-2",
            "1990-01-2",
            "1990-01-02T00:00:00",
            "1990-02-30",
            "1990/01/02",
            "\u{0661}990-01-02",
        ] {
            let errors = date_of_birth(bad).expect_err(bad);
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["data.dateOfBirth"], "{bad:?}");
        }
    }
}
