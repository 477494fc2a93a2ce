//! Validation rules and mappings written in CEL (the `cel` crate).
//!
//! Every expression sees the same variables:
//! - `data`: what the end user submitted (plus `extract` results),
//! - `participant`: the participant this workflow runs for (`role`,
//!   `displayName`, `attributes`),
//! - `context`: the session's context overlaid with the binding's context,
//! - `outputs`: earlier workflows' outputs, `outputs.<outputKey>.<participantId>`,
//! - `participantOutputs`: the same participant's earlier outputs, by workflow
//!   slug and by output key (`participantOutputs["id-document"].fullName`),
//! - `now`: the evaluation time, as a timestamp.
//!
//! and these functions besides CEL's standard library:
//! - `name_match(a, b)`: name similarity in `[0, 1]` (see [`crate::names`]),
//! - `date("YYYY-MM-DD")`: midnight UTC of that day, as a timestamp,
//! - `age_years("YYYY-MM-DD")`: whole years from that date to `now`,
//! - `days_since("YYYY-MM-DD")`: whole days from that date to `now`.

use std::sync::{Arc, LazyLock};

use cel::objects::Value;
use cel::{Context, Env, ExecutionError, FunctionContext, Program};
use chrono::{Datelike, NaiveDate, TimeZone, Utc};

use crate::participant::Participant;
use crate::{JsonMap, Timestamp};

static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// The variables a rule reads.
pub struct Scope<'a> {
    pub data: &'a JsonMap,
    pub participant: &'a Participant,
    pub context: &'a JsonMap,
    pub outputs: &'a JsonMap,
    pub participant_outputs: &'a JsonMap,
    pub now: Timestamp,
}

pub fn compile(expression: &str) -> Result<Program, String> {
    if expression.len() > 4096 {
        return Err("expressions are limited to 4096 characters".into());
    }
    ENV.compile(expression).map_err(|e| e.to_string())
}

/// Evaluates a rule: `Ok(true)` passes, `Ok(false)` fails, `Err` explains why
/// it could not be evaluated (a missing field, a wrong type).
pub fn evaluate_bool(expression: &str, scope: &Scope<'_>) -> Result<bool, String> {
    match evaluate(expression, scope)? {
        Value::Bool(b) => Ok(b),
        other => Err(format!(
            "the rule must evaluate to a boolean, not {:?}",
            other.type_of()
        )),
    }
}

/// Evaluates a mapping expression to JSON.
pub fn evaluate_json(expression: &str, scope: &Scope<'_>) -> Result<serde_json::Value, String> {
    let value = evaluate(expression, scope)?;
    value
        .json()
        .map_err(|e| format!("the value cannot be represented as JSON: {e}"))
}

fn evaluate(expression: &str, scope: &Scope<'_>) -> Result<Value, String> {
    let program = compile(expression)?;
    let mut ctx = Context::with_env(ENV.clone());
    let now = scope.now;
    let participant = serde_json::to_value(scope.participant).map_err(|e| e.to_string())?;
    ctx.add_variable_from_value("data", object(scope.data));
    ctx.add_variable_from_value("participant", json(&participant));
    ctx.add_variable_from_value("context", object(scope.context));
    ctx.add_variable_from_value("outputs", object(scope.outputs));
    ctx.add_variable_from_value("participantOutputs", object(scope.participant_outputs));
    ctx.add_variable_from_value("now", Value::Timestamp(now.fixed_offset()));
    let declare = |ctx: &mut Context<'_, '_>| -> Result<(), cel::DeclarationError> {
        ctx.add_function("name_match", |a: Arc<String>, b: Arc<String>| {
            crate::names::similarity(&a, &b)
        })?;
        ctx.add_function(
            "date",
            |ftx: &FunctionContext, s: Arc<String>| -> Result<Value, ExecutionError> {
                let day = parse_date(ftx, &s)?;
                Ok(Value::Timestamp(midnight(day).fixed_offset()))
            },
        )?;
        ctx.add_function(
            "age_years",
            move |ftx: &FunctionContext, s: Arc<String>| -> Result<i64, ExecutionError> {
                let born = parse_date(ftx, &s)?;
                let today = now.date_naive();
                let mut years = i64::from(today.year() - born.year());
                if (today.month(), today.day()) < (born.month(), born.day()) {
                    years -= 1;
                }
                Ok(years)
            },
        )?;
        ctx.add_function(
            "days_since",
            move |ftx: &FunctionContext, s: Arc<String>| -> Result<i64, ExecutionError> {
                let day = parse_date(ftx, &s)?;
                Ok((now.date_naive() - day).num_days())
            },
        )?;
        Ok(())
    };
    declare(&mut ctx).map_err(|e| e.to_string())?;
    program.execute(&ctx).map_err(|e| e.to_string())
}

/// JSON to CEL. Whole numbers become CEL `int` (the `cel` serialiser would
/// make non-negative ones `uint`, and `uint + int` is an error in CEL), so
/// rule authors can write `data.amount + 1`.
fn json(value: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match value {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::String(Arc::new(s.clone())),
        J::Array(items) => Value::List(Arc::new(items.iter().map(json).collect())),
        J::Object(map) => object(map),
    }
}

fn object(map: &JsonMap) -> Value {
    Value::from(
        map.iter()
            .map(|(k, v)| (k.clone(), json(v)))
            .collect::<std::collections::HashMap<String, Value>>(),
    )
}

fn parse_date(ftx: &FunctionContext, s: &str) -> Result<NaiveDate, ExecutionError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| ftx.error(format!("`{s}` is not a YYYY-MM-DD date")))
}

fn midnight(day: NaiveDate) -> Timestamp {
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ParticipantId;
    use crate::participant::Role;
    use serde_json::json;

    fn participant() -> Participant {
        Participant {
            id: ParticipantId::parse("par_1").unwrap(),
            role: Role::Subject,
            display_name: Some("Jane Doe".into()),
            attributes: JsonMap::new(),
        }
    }

    fn with<T>(data: serde_json::Value, prior: serde_json::Value, f: impl FnOnce(&Scope<'_>) -> T) -> T {
        let data = data.as_object().cloned().unwrap();
        let prior = prior.as_object().cloned().unwrap();
        let empty = JsonMap::new();
        let p = participant();
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        f(&Scope {
            data: &data,
            participant: &p,
            context: &empty,
            outputs: &empty,
            participant_outputs: &prior,
            now,
        })
    }

    #[test]
    fn dates_and_ages() {
        with(json!({"dob": "2008-11-26", "exp": "2026-11-26"}), json!({}), |s| {
            assert_eq!(evaluate_bool("age_years(data.dob) >= 18", s), Ok(false));
            assert_eq!(evaluate_bool("age_years(data.dob) == 17", s), Ok(true));
            assert_eq!(evaluate_bool("date(data.exp) > now", s), Ok(true));
            assert_eq!(evaluate_bool("days_since('2026-11-20') == 5", s), Ok(true));
        });
    }

    #[test]
    fn reads_earlier_outputs_and_participant() {
        let prior = json!({"id-document": {"fullName": "DOE, Jane"}});
        with(json!({"fullName": "Jane Doe"}), prior, |s| {
            assert_eq!(
                evaluate_bool(
                    r#"name_match(data.fullName, participantOutputs["id-document"].fullName) >= 0.99"#,
                    s
                ),
                Ok(true)
            );
            assert_eq!(evaluate_bool("participant.displayName == 'Jane Doe'", s), Ok(true));
            assert_eq!(evaluate_bool(r#""poa" in participantOutputs"#, s), Ok(false));
        });
    }

    #[test]
    fn errors_are_explained_not_panics() {
        with(json!({"dob": "yesterday"}), json!({}), |s| {
            assert!(
                evaluate_bool("age_years(data.dob) >= 18", s)
                    .unwrap_err()
                    .contains("YYYY-MM-DD")
            );
            assert!(evaluate_bool("data.missing == 1", s).is_err());
            assert!(evaluate_bool("1 + 1", s).unwrap_err().contains("boolean"));
        });
        assert!(compile("1 +").is_err());
    }

    #[test]
    fn mappings_produce_json() {
        with(json!({"a": "x", "n": 2}), json!({}), |s| {
            assert_eq!(
                evaluate_json("{'v': data.a, 'n': data.n + 1}", s),
                Ok(json!({"v": "x", "n": 3}))
            );
        });
    }
}
