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

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use cel::common::ast::{EntryExpr, Expr, IdedEntryExpr};
use cel::objects::Value;
use cel::{Context, Env, ExecutionError, FunctionContext, IdedExpr, Program};
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

/// The deepest expression tree a rule may have: evaluation recurses once per
/// level. Far beyond what a person writes (`a && b && …` is balanced, so even
/// long conjunctions stay shallow), and a bound on the stack evaluation needs.
pub const MAX_DEPTH: usize = 100;

/// The stack the `cel` parser and evaluator may need. Both recurse with the
/// expression, in large frames: unoptimised, a dozen nested brackets overflow
/// a 2 MiB thread stack while parsing; optimised, evaluating a 1,500-term sum
/// does. Either took the whole process down, whoever's thread it was. The
/// parser's own recursion limit and [`MAX_DEPTH`] bound what runs here to a
/// fraction of this.
const STACK_BYTES: usize = 32 * 1024 * 1024;

/// Evaluation runs on the caller's stack while this much of it is left, and
/// on a fresh [`STACK_BYTES`] segment otherwise. Optimised, an expression
/// [`MAX_DEPTH`] deep needs about a seventh of it (the release run of the
/// deep-expression test below holds that); unoptimised frames are many
/// times larger, so debug builds always take the fresh segment. Parsing
/// always does: it is rare (programs are cached) and deep.
const EVALUATION_RED_ZONE: usize = if cfg!(debug_assertions) {
    STACK_BYTES
} else {
    1024 * 1024
};

/// Compiled programs by expression, for the life of the process: a rule is
/// parsed once, not on every evaluation (parsing costs about ten times what
/// evaluating does). Bounded: emptied when full.
static PROGRAMS: LazyLock<Mutex<HashMap<String, Arc<Program>>>> = LazyLock::new(Mutex::default);
const MAX_CACHED_PROGRAMS: usize = 4096;

pub fn compile(expression: &str) -> Result<Program, String> {
    stacker::maybe_grow(STACK_BYTES, STACK_BYTES, || compile_here(expression))
}

/// The program of `expression`, compiled once per process.
fn program(expression: &str) -> Result<Arc<Program>, String> {
    if let Some(program) = PROGRAMS.lock().ok().and_then(|p| p.get(expression).cloned()) {
        return Ok(program);
    }
    let program = Arc::new(compile(expression)?);
    if let Ok(mut programs) = PROGRAMS.lock() {
        if programs.len() >= MAX_CACHED_PROGRAMS {
            programs.clear();
        }
        programs.insert(expression.to_owned(), Arc::clone(&program));
    }
    Ok(program)
}

/// [`compile`]'s work, on the current stack.
fn compile_here(expression: &str) -> Result<Program, String> {
    if expression.len() > 4096 {
        return Err("expressions are limited to 4096 characters".into());
    }
    let program = ENV.compile(expression).map_err(|e| e.to_string())?;
    if depth_exceeds(program.expression(), MAX_DEPTH) {
        return Err(format!("expressions may nest at most {MAX_DEPTH} operations deep"));
    }
    Ok(program)
}

/// Whether the tree is deeper than `max`, found without recursion.
fn depth_exceeds(root: &IdedExpr, max: usize) -> bool {
    let mut pending = vec![(root, 1)];
    while let Some((node, depth)) = pending.pop() {
        if depth > max {
            return true;
        }
        pending.extend(children(node).into_iter().map(|child| (child, depth + 1)));
    }
    false
}

fn children(node: &IdedExpr) -> Vec<&IdedExpr> {
    match &node.expr {
        Expr::Call(call) => call.target.iter().map(|t| &**t).chain(&call.args).collect(),
        Expr::Comprehension(c) => vec![&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result],
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(map) => entry_values(&map.entries),
        Expr::Struct(st) => entry_values(&st.entries),
        Expr::Select(select) => vec![&select.operand],
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => Vec::new(),
    }
}

fn entry_values(entries: &[IdedEntryExpr]) -> Vec<&IdedExpr> {
    entries
        .iter()
        .flat_map(|entry| match &entry.expr {
            EntryExpr::MapEntry(e) => vec![&e.key, &e.value],
            EntryExpr::StructField(f) => vec![&f.value],
        })
        .collect()
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
    evaluate(expression, scope)?
        .json()
        .map_err(|e| format!("the value cannot be represented as JSON: {e}"))
}

fn evaluate(expression: &str, scope: &Scope<'_>) -> Result<Value, String> {
    let program = program(expression)?;
    stacker::maybe_grow(EVALUATION_RED_ZONE, STACK_BYTES, || execute(&program, scope))
}

fn execute(program: &Program, scope: &Scope<'_>) -> Result<Value, String> {
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

    /// Each of these overflowed the stack of the thread it ran on (a test
    /// thread's 2 MiB here, a server's worker in production) and aborted the
    /// process; now each compiles or is refused, and evaluates.
    #[test]
    fn deep_expressions_are_refused_or_evaluated_never_a_crash() {
        let sum = |terms: usize| vec!["1"; terms].join("+");
        let nested = |levels: usize| format!("{}true{}", "(".repeat(levels), ")".repeat(levels));
        let calls = |levels: usize| format!("{}'x'{} == 'x'", "string(".repeat(levels), ")".repeat(levels));
        assert!(compile(&sum(MAX_DEPTH)).is_ok());
        let refused = compile(&sum(MAX_DEPTH + 1)).unwrap_err();
        assert!(refused.contains("at most 100"), "{refused}");
        assert!(compile(&sum(1500)).unwrap_err().contains("at most 100"));
        assert!(compile(&format!("a{}", ".b".repeat(2000))).is_err());
        assert!(compile(&nested(90)).is_ok());
        assert!(compile(&nested(1000)).is_err());
        assert!(compile(&format!("{}{}", "[".repeat(1000), "]".repeat(1000))).is_err());
        with(json!({}), json!({}), |s| {
            assert_eq!(evaluate_bool(&format!("{} == {}", sum(49), 49), s), Ok(true));
            assert_eq!(evaluate_bool(&nested(90), s), Ok(true));
            assert_eq!(evaluate_bool(&calls(40), s), Ok(true));
            assert!(evaluate_bool(&sum(1500), s).is_err());
            assert_eq!(evaluate_json(&sum(MAX_DEPTH), s), Ok(json!(MAX_DEPTH)));
        });
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
