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
//!
//! Every expression is priced before it runs ([`cost`]): a definition whose
//! expression nests comprehensions more than [`cost::MAX_NESTING`] deep, or
//! costs more than [`cost::RULE_BUDGET`] against nominal inputs, is refused
//! when it is written ([`check`]); at run time the price is computed again
//! with the real inputs, and an expression over the budget, or past what the
//! change has left ([`Budget`]), fails instead of running.

pub mod cost;
pub mod shape;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use cel::common::ast::{EntryExpr, Expr, IdedEntryExpr};
use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelTimestamp};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::objects::Value;
use cel::{Context, Env, ExecutionError, FunctionContext, IdedExpr, Program};
use chrono::{Datelike, NaiveDate, TimeZone, Utc};

use self::cost::{Estimate, MAX_NESTING, RULE_BUDGET, Reads, Roots, TRANSITION_BUDGET};
use self::shape::Shape;
use crate::footprint;
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

/// The longest expression, in bytes.
pub const MAX_LENGTH: usize = 4096;

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

/// Why an expression is refused when its definition is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("invalid expression: expressions are limited to {MAX_LENGTH} characters")]
    TooLong,
    #[error("invalid expression: {0}")]
    Invalid(String),
    #[error("invalid expression: expressions may nest at most {MAX_DEPTH} operations deep")]
    TooDeep,
    #[error("nests {found} comprehensions; at most {MAX_NESTING}")]
    Nesting { found: usize },
    #[error(
        "estimated cost {cost} exceeds the budget {RULE_BUDGET} (priced with every list, map and string \
         {nominal} long)",
        nominal = cost::NOMINAL_LEN
    )]
    OverBudget { cost: u64 },
}

/// Why a rule could not be evaluated; the rule fails with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// A definition written before the budget existed may hold one.
    #[error(transparent)]
    Refused(Refusal),
    #[error("estimated cost {cost} exceeds the budget {RULE_BUDGET} for these inputs; the rule was not run")]
    OverBudget { cost: u64 },
    #[error(
        "the rules of this change have spent their budget of {TRANSITION_BUDGET} (this one would cost {cost}); \
         the rule was not run"
    )]
    BudgetSpent { cost: u64 },
    /// The interpreter's own error: a missing field, a wrong type. Cut short:
    /// it may quote whole values, and the session keeps it.
    #[error("{0}")]
    Failed(String),
    #[error("the rule must evaluate to a boolean, not {0}")]
    NotBoolean(String),
    #[error("the value cannot be represented as JSON: {0}")]
    NotJson(String),
}

/// What the rules of one change (a submission, a review, a check's answer)
/// may still spend, in [`cost`] units. Deterministic: the same change on the
/// same session spends the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    left: u64,
}

impl Budget {
    pub fn per_transition() -> Self {
        Budget {
            left: TRANSITION_BUDGET,
        }
    }

    /// What has been spent so far.
    pub fn spent(&self) -> u64 {
        TRANSITION_BUDGET - self.left
    }

    fn spend(&mut self, cost: u64) -> Result<(), RuleError> {
        if cost > self.left {
            return Err(RuleError::BudgetSpent { cost });
        }
        self.left -= cost;
        Ok(())
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::per_transition()
    }
}

pub fn compile(expression: &str) -> Result<Program, Refusal> {
    stacker::maybe_grow(STACK_BYTES, STACK_BYTES, || compile_here(expression))
}

/// Checks an expression as a definition is written: it compiles, nests at
/// most [`MAX_NESTING`] comprehensions, and its price against nominal inputs
/// ([`Roots::nominal`]) is within [`RULE_BUDGET`].
pub fn check(expression: &str) -> Result<Estimate, Refusal> {
    let program = program(expression)?;
    let estimate = cost::estimate(program.expression(), &Roots::nominal());
    if estimate.unspecified {
        return Err(Refusal::Invalid("the expression could not be parsed whole".into()));
    }
    if estimate.nesting > MAX_NESTING {
        return Err(Refusal::Nesting {
            found: estimate.nesting,
        });
    }
    if estimate.cost > RULE_BUDGET {
        return Err(Refusal::OverBudget { cost: estimate.cost });
    }
    Ok(estimate)
}

/// The program of `expression`, compiled once per process.
fn program(expression: &str) -> Result<Arc<Program>, Refusal> {
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
fn compile_here(expression: &str) -> Result<Program, Refusal> {
    if expression.len() > MAX_LENGTH {
        return Err(Refusal::TooLong);
    }
    let program = ENV.compile(expression).map_err(|e| Refusal::Invalid(e.to_string()))?;
    if depth_exceeds(program.expression(), MAX_DEPTH) {
        return Err(Refusal::TooDeep);
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

/// The variables of a scope that a step's expressions read, as CEL values
/// made once for all of them, with the shapes each expression is priced
/// against. The values borrow the scope's strings, and rules borrow the
/// values: a step pays once for the inputs it reads, and nothing for those
/// it does not.
pub struct Variables<'a> {
    data: Option<Box<dyn Val + 'a>>,
    participant: Option<Box<dyn Val + 'a>>,
    context: Option<Box<dyn Val + 'a>>,
    outputs: Option<Box<dyn Val + 'a>>,
    participant_outputs: Option<Box<dyn Val + 'a>>,
    now: Box<dyn Val + 'a>,
    timestamp: Timestamp,
    roots: Roots,
}

impl<'a> Variables<'a> {
    /// Converts what `expressions` read of `scope`, charging `budget`.
    pub fn of<'e>(
        scope: &Scope<'a>,
        expressions: impl IntoIterator<Item = &'e str>,
        budget: &mut Budget,
    ) -> Result<Variables<'a>, RuleError> {
        let reads = expressions
            .into_iter()
            .filter_map(|expression| program(expression).ok())
            .map(|program| cost::estimate(program.expression(), &Roots::nominal()).reads)
            .fold(Reads::default(), Reads::union);
        let participant = reads.participant.then(|| participant_json(scope.participant));
        let shape = |read: bool, map: &JsonMap| if read { Shape::of_object(map) } else { Shape::scalar() };
        let roots = Roots {
            data: shape(reads.data, scope.data),
            participant: participant.as_ref().map_or_else(Shape::scalar, Shape::of_object),
            context: shape(reads.context, scope.context),
            outputs: shape(reads.outputs, scope.outputs),
            participant_outputs: shape(reads.participant_outputs, scope.participant_outputs),
        };
        budget.spend(roots.conversion_cost(reads))?;
        Ok(Variables {
            data: reads.data.then(|| object(scope.data)),
            participant: participant.map(owned_object),
            context: reads.context.then(|| object(scope.context)),
            outputs: reads.outputs.then(|| object(scope.outputs)),
            participant_outputs: reads.participant_outputs.then(|| object(scope.participant_outputs)),
            now: Box::new(CelTimestamp::from(scope.now.fixed_offset())),
            timestamp: scope.now,
            roots,
        })
    }
}

impl VariableResolver for Variables<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let value = match variable {
            "data" => self.data.as_ref()?,
            "participant" => self.participant.as_ref()?,
            "context" => self.context.as_ref()?,
            "outputs" => self.outputs.as_ref()?,
            "participantOutputs" => self.participant_outputs.as_ref()?,
            "now" => &self.now,
            _ => return None,
        };
        Some(CowVal::Borrowed(value.as_ref()))
    }
}

/// Evaluates a rule: `Ok(true)` passes, `Ok(false)` fails, `Err` explains why
/// it could not be evaluated (a missing field, a wrong type, its price).
pub fn evaluate_bool(expression: &str, variables: &Variables<'_>, budget: &mut Budget) -> Result<bool, RuleError> {
    match evaluate(expression, variables, budget)? {
        Value::Bool(b) => Ok(b),
        other => Err(RuleError::NotBoolean(format!("{:?}", other.type_of()))),
    }
}

/// Evaluates a mapping expression to JSON.
pub fn evaluate_json(
    expression: &str,
    variables: &Variables<'_>,
    budget: &mut Budget,
) -> Result<serde_json::Value, RuleError> {
    evaluate(expression, variables, budget)?
        .json()
        .map_err(|e| RuleError::NotJson(footprint::shortened(e.to_string())))
}

/// Prices the expression against the real inputs, then runs it if the
/// price fits both the rule's budget and what the change has left.
fn evaluate(expression: &str, variables: &Variables<'_>, budget: &mut Budget) -> Result<Value, RuleError> {
    let program = program(expression).map_err(RuleError::Refused)?;
    let estimate = cost::estimate(program.expression(), &variables.roots);
    if estimate.unspecified {
        return Err(RuleError::Refused(Refusal::Invalid(
            "the expression could not be parsed whole".into(),
        )));
    }
    if estimate.cost > RULE_BUDGET {
        return Err(RuleError::OverBudget { cost: estimate.cost });
    }
    budget.spend(estimate.cost)?;
    stacker::maybe_grow(EVALUATION_RED_ZONE, STACK_BYTES, || execute(&program, variables))
}

fn execute(program: &Program, variables: &Variables<'_>) -> Result<Value, RuleError> {
    let mut ctx = Context::with_env(ENV.clone());
    ctx.set_variable_resolver(variables);
    let now = variables.timestamp;
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
    declare(&mut ctx).map_err(|e| RuleError::Failed(e.to_string()))?;
    program
        .execute(&ctx)
        .map_err(|e| RuleError::Failed(footprint::shortened(e.to_string())))
}

/// JSON to CEL, borrowing its strings. Whole numbers become CEL `int` (the
/// `cel` serialiser would make non-negative ones `uint`, and `uint + int` is
/// an error in CEL), so rule authors can write `data.amount + 1`. Recurses
/// with the value: JSON is at most 128 levels deep once parsed.
fn json(value: &serde_json::Value) -> Box<dyn Val + '_> {
    use serde_json::Value as J;
    match value {
        J::String(s) => Box::new(CelString::from(s.as_str())),
        J::Array(items) => Box::new(CelList::from(items.iter().map(json).collect::<Vec<_>>())),
        J::Object(map) => object(map),
        J::Null | J::Bool(_) | J::Number(_) => scalar(value),
    }
}

fn object(map: &JsonMap) -> Box<dyn Val + '_> {
    let entries: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> = map
        .iter()
        .map(|(k, v)| (CelMapKey::String(CelString::from(k.as_str())), json(v)))
        .collect();
    Box::new(CelMap::from(entries))
}

/// [`json`] for a value that owns its strings.
fn owned(value: serde_json::Value) -> Box<dyn Val + 'static> {
    use serde_json::Value as J;
    match value {
        J::String(s) => Box::new(CelString::from(s)),
        J::Array(items) => Box::new(CelList::from(items.into_iter().map(owned).collect::<Vec<_>>())),
        J::Object(map) => owned_object(map),
        J::Null | J::Bool(_) | J::Number(_) => scalar(&value),
    }
}

fn owned_object(map: JsonMap) -> Box<dyn Val + 'static> {
    let entries: HashMap<CelMapKey<'static>, Box<dyn Val + 'static>> = map
        .into_iter()
        .map(|(k, v)| (CelMapKey::String(CelString::from(k)), owned(v)))
        .collect();
    Box::new(CelMap::from(entries))
}

fn scalar(value: &serde_json::Value) -> Box<dyn Val + 'static> {
    use serde_json::Value as J;
    match value {
        J::Bool(b) => Box::new(CelBool::from(*b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => Box::new(CelInt::from(i)),
            None => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        J::Null | J::String(_) | J::Array(_) | J::Object(_) => Box::new(CelNull),
    }
}

/// The participant as rules see it: `role`, `displayName`, `attributes`.
/// Owned: its JSON is made here.
fn participant_json(participant: &Participant) -> JsonMap {
    match serde_json::to_value(participant) {
        Ok(serde_json::Value::Object(map)) => map,
        // A participant always serialises to an object.
        _ => JsonMap::new(),
    }
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
        let scope = Scope {
            data: &data,
            participant: &p,
            context: &empty,
            outputs: &empty,
            participant_outputs: &prior,
            now,
        };
        f(&scope)
    }

    fn boolean(expression: &str, scope: &Scope<'_>) -> Result<bool, String> {
        let mut budget = Budget::default();
        let variables = Variables::of(scope, [expression], &mut budget).map_err(|e| e.to_string())?;
        evaluate_bool(expression, &variables, &mut budget).map_err(|e| e.to_string())
    }

    fn mapped(expression: &str, scope: &Scope<'_>) -> Result<serde_json::Value, String> {
        let mut budget = Budget::default();
        let variables = Variables::of(scope, [expression], &mut budget).map_err(|e| e.to_string())?;
        evaluate_json(expression, &variables, &mut budget).map_err(|e| e.to_string())
    }

    #[test]
    fn dates_and_ages() {
        with(json!({"dob": "2008-11-26", "exp": "2026-11-26"}), json!({}), |s| {
            assert_eq!(boolean("age_years(data.dob) >= 18", s), Ok(false));
            assert_eq!(boolean("age_years(data.dob) == 17", s), Ok(true));
            assert_eq!(boolean("date(data.exp) > now", s), Ok(true));
            assert_eq!(boolean("days_since('2026-11-20') == 5", s), Ok(true));
        });
    }

    #[test]
    fn reads_earlier_outputs_and_participant() {
        let prior = json!({"id-document": {"fullName": "DOE, Jane"}});
        with(json!({"fullName": "Jane Doe"}), prior, |s| {
            assert_eq!(
                boolean(
                    r#"name_match(data.fullName, participantOutputs["id-document"].fullName) >= 0.99"#,
                    s
                ),
                Ok(true)
            );
            assert_eq!(boolean("participant.displayName == 'Jane Doe'", s), Ok(true));
            assert_eq!(boolean(r#""poa" in participantOutputs"#, s), Ok(false));
        });
    }

    #[test]
    fn errors_are_explained_not_panics() {
        with(json!({"dob": "yesterday"}), json!({}), |s| {
            assert!(
                boolean("age_years(data.dob) >= 18", s)
                    .unwrap_err()
                    .contains("YYYY-MM-DD")
            );
            assert!(boolean("data.missing == 1", s).is_err());
            assert!(boolean("1 + 1", s).unwrap_err().contains("boolean"));
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
        let refused = compile(&sum(MAX_DEPTH + 1)).unwrap_err().to_string();
        assert!(refused.contains("at most 100"), "{refused}");
        assert!(compile(&sum(1500)).unwrap_err().to_string().contains("at most 100"));
        assert!(compile(&format!("a{}", ".b".repeat(2000))).is_err());
        assert!(compile(&nested(90)).is_ok());
        assert!(compile(&nested(1000)).is_err());
        assert!(compile(&format!("{}{}", "[".repeat(1000), "]".repeat(1000))).is_err());
        with(json!({}), json!({}), |s| {
            assert_eq!(boolean(&format!("{} == {}", sum(49), 49), s), Ok(true));
            assert_eq!(boolean(&nested(90), s), Ok(true));
            assert_eq!(boolean(&calls(40), s), Ok(true));
            assert!(boolean(&sum(1500), s).is_err());
            assert_eq!(mapped(&sum(MAX_DEPTH), s), Ok(json!(MAX_DEPTH)));
        });
    }

    #[test]
    fn mappings_produce_json() {
        with(json!({"a": "x", "n": 2}), json!({}), |s| {
            assert_eq!(
                mapped("{'v': data.a, 'n': data.n + 1}", s),
                Ok(json!({"v": "x", "n": 3}))
            );
        });
    }

    #[test]
    fn a_rule_priced_over_the_budget_is_not_run() {
        let big = json!({"big": (0..1000).collect::<Vec<_>>()});
        let big = big.as_object().unwrap();
        let p = participant();
        let scope = Scope {
            data: big,
            participant: &p,
            context: big,
            outputs: big,
            participant_outputs: big,
            now: Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap(),
        };
        // Run, it would fail dividing by zero; priced, it is refused first.
        let square = "data.big.all(x, data.big.all(y, 1 / 0 == 1))";
        let mut budget = Budget::default();
        let variables = Variables::of(&scope, [square], &mut budget).unwrap();
        let converted = budget.spent();
        match evaluate_bool(square, &variables, &mut budget) {
            Err(RuleError::OverBudget { cost }) => assert!(cost > RULE_BUDGET),
            other => panic!("{other:?}"),
        }
        assert_eq!(budget.spent(), converted, "a refused rule spends nothing");
        assert!(matches!(
            evaluate_bool("data.big.all(x, 1 / 0 == 1)", &variables, &mut budget),
            Err(RuleError::Failed(e)) if e.contains("zero")
        ));
        assert!(budget.spent() > converted);
    }

    #[test]
    fn a_step_converts_only_the_variables_its_rules_read() {
        let big = json!({"big": (0..1000).collect::<Vec<_>>()});
        let big = big.as_object().unwrap();
        let small = json!({"n": 1});
        let small = small.as_object().unwrap();
        let p = participant();
        let scope = Scope {
            data: small,
            participant: &p,
            context: big,
            outputs: big,
            participant_outputs: big,
            now: Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap(),
        };
        let mut reading_data = Budget::default();
        let variables = Variables::of(&scope, ["data.n == 1"], &mut reading_data).unwrap();
        assert!(reading_data.spent() < 10_000, "{}", reading_data.spent());
        assert_eq!(evaluate_bool("data.n == 1", &variables, &mut reading_data), Ok(true));
        // Unread, the others are not there at all.
        assert!(evaluate_bool("size(outputs.big) > 0", &variables, &mut reading_data).is_err());
        let mut reading_outputs = Budget::default();
        Variables::of(&scope, ["data.n == 1", "size(outputs.big) > 0"], &mut reading_outputs).unwrap();
        assert!(reading_outputs.spent() > 100_000, "{}", reading_outputs.spent());
    }

    #[test]
    fn the_budget_of_a_change_runs_out() {
        with(json!({}), json!({}), |s| {
            let mut budget = Budget::default();
            let variables = Variables::of(s, ["true"], &mut budget).unwrap();
            let forty: Vec<String> = (0..40).map(|i| i.to_string()).collect();
            let square = format!("[{0}].all(x, [{0}].all(y, true))", forty.join(","));
            let mut runs = 0;
            while evaluate_bool(&square, &variables, &mut budget) == Ok(true) {
                runs += 1;
                assert!(runs < 1_000, "the budget never ran out");
            }
            assert!(runs > 0);
            assert!(matches!(
                evaluate_bool(&square, &variables, &mut budget),
                Err(RuleError::BudgetSpent { .. })
            ));
            // A cheap rule still fits in what is left.
            assert_eq!(evaluate_bool("true", &variables, &mut budget), Ok(true));
        });
    }
}
