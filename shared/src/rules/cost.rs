//! What evaluating a rule may cost, estimated from its expression tree and
//! the shapes ([`Shape`]) of the variables it reads, before it runs.
//!
//! The `cel` interpreter has no step counter, deadline or memory limit to
//! hook into: once `execute` starts it runs to the end, however long that
//! takes and whatever it allocates. So every rule is priced first, in
//! abstract units of work, and a rule over its [`RULE_BUDGET`] is not run.
//! The estimate is an upper bound: each node is priced at its most
//! expensive (a comprehension at every element of its range, a conditional
//! at its dearer branch), and the values it builds are bounded by
//! [`Shape`]s, so memory too is bounded by the cost (building a value costs
//! at least its weight).
//!
//! The prices are calibrated against the interpreter in release builds (the
//! `rules` section of `scripts/bench` runs a rule at the budget): a unit is
//! about a nanosecond of one core's time there.

use cel::IdedExpr;
use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedEntryExpr, LiteralValue, operators};

use super::shape::Shape;

/// Comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`) nested
/// in each other's bodies: each level multiplies the work by the length of
/// a list, so a third one is what turns a millisecond into minutes.
pub const MAX_NESTING: usize = 2;

/// The most one expression may cost: about 5 ms of one core.
pub const RULE_BUDGET: u64 = 5_000_000;

/// The most all the expressions one change evaluates may cost together
/// (a submission runs a workflow's steps, then the next workflow's as far as
/// they go), the conversion of their variables included: about 20 ms.
pub const TRANSITION_BUDGET: u64 = 20_000_000;

/// What a definition's expressions are assumed to read when they are
/// written: every list and map this many entries long, every string this
/// many bytes …
pub const NOMINAL_LEN: u64 = 50;
/// … and every value this heavy (see [`Shape::weight`]): a number or a
/// short string. Real inputs are priced again when a rule runs; this only
/// has to tell a rule whose cost the inputs bound from one whose cost its
/// own structure makes huge.
pub const NOMINAL_WEIGHT: u64 = 4;

/// Running an expression at all: a context and its functions set up.
const EVALUATION: u64 = 3_000;
/// Evaluating one node of the tree: a lookup, a literal, an operator's
/// dispatch.
const NODE: u64 = 100;
/// Building a map (a hash table of its own) beside its entries.
const MAP: u64 = 600;
/// One turn of a comprehension: its variable bound in a fresh scope, its
/// condition tested.
const TURN: u64 = 200;
/// Copying or comparing one unit of weight.
const TOUCH: u64 = 20;
/// Converting one unit of weight of a variable from JSON (values boxed one
/// by one, a hash table per map).
const CONVERT: u64 = 250;
/// Compiling a regular expression, per byte of the pattern (`matches`
/// compiles it on every call).
const COMPILE: u64 = 1_000;
/// One pair of bytes `matches` compares.
const PAIR: u64 = 2;
/// `name_match`: the call itself, …
const NAME_MATCH: u64 = 6_000;
/// … normalising the names (Unicode decomposition, transliteration,
/// tokens), per byte, …
const NORMALISE: u64 = 50;
/// … and one pair of bytes compared (Jaro-Winkler, token by token and whole).
const NAME_PAIR: u64 = 12;

/// Which of the variables an expression reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reads {
    pub data: bool,
    pub participant: bool,
    pub context: bool,
    pub outputs: bool,
    pub participant_outputs: bool,
}

impl Reads {
    pub fn union(self, other: Reads) -> Reads {
        Reads {
            data: self.data || other.data,
            participant: self.participant || other.participant,
            context: self.context || other.context,
            outputs: self.outputs || other.outputs,
            participant_outputs: self.participant_outputs || other.participant_outputs,
        }
    }

    fn note(&mut self, name: &str) {
        match name {
            "data" => self.data = true,
            "participant" => self.participant = true,
            "context" => self.context = true,
            "outputs" => self.outputs = true,
            "participantOutputs" => self.participant_outputs = true,
            _ => {}
        }
    }
}

/// The shapes of the variables a rule reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Roots {
    pub data: Shape,
    pub participant: Shape,
    pub context: Shape,
    pub outputs: Shape,
    pub participant_outputs: Shape,
}

impl Roots {
    /// The variables a definition is priced against when it is written.
    pub fn nominal() -> Self {
        let nominal = Shape::nominal(NOMINAL_LEN, NOMINAL_WEIGHT);
        Roots {
            data: nominal.clone(),
            participant: nominal.clone(),
            context: nominal.clone(),
            outputs: nominal.clone(),
            participant_outputs: nominal,
        }
    }

    fn named(&self, name: &str) -> Option<&Shape> {
        match name {
            "data" => Some(&self.data),
            "participant" => Some(&self.participant),
            "context" => Some(&self.context),
            "outputs" => Some(&self.outputs),
            "participantOutputs" => Some(&self.participant_outputs),
            _ => None,
        }
    }

    /// What converting the variables `reads` names to CEL values costs
    /// (once for all the rules of a step).
    pub fn conversion_cost(&self, reads: Reads) -> u64 {
        [
            (reads.data, &self.data),
            (reads.participant, &self.participant),
            (reads.context, &self.context),
            (reads.outputs, &self.outputs),
            (reads.participant_outputs, &self.participant_outputs),
        ]
        .iter()
        .filter(|(read, _)| *read)
        .fold(0_u64, |sum, (_, shape)| sum.saturating_add(shape.weight()))
        .saturating_mul(CONVERT)
    }
}

/// An expression's price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// At most this many units of work.
    pub cost: u64,
    /// The deepest nesting of comprehensions.
    pub nesting: usize,
    /// Whether the tree holds a node the interpreter cannot evaluate (it
    /// panics on one); the parser leaves none in a program it accepts.
    pub unspecified: bool,
    /// The variables it reads.
    pub reads: Reads,
}

/// Prices `expression` against variables of these shapes.
pub fn estimate(expression: &IdedExpr, roots: &Roots) -> Estimate {
    let mut walk = Walk {
        roots,
        locals: Vec::new(),
        depth: 0,
        nesting: 0,
        unspecified: false,
        reads: Reads::default(),
    };
    let (cost, _) = walk.expr(expression);
    Estimate {
        cost: add(EVALUATION, cost),
        nesting: walk.nesting,
        unspecified: walk.unspecified,
        reads: walk.reads,
    }
}

/// The walk's recursion is bounded by the tree's depth, which
/// [`super::MAX_DEPTH`] bounds before anything is priced.
struct Walk<'a> {
    roots: &'a Roots,
    /// Comprehension variables in scope, innermost last.
    locals: Vec<(&'a str, Shape)>,
    depth: usize,
    nesting: usize,
    unspecified: bool,
    reads: Reads,
}

impl<'a> Walk<'a> {
    fn expr(&mut self, node: &'a IdedExpr) -> (u64, Shape) {
        match &node.expr {
            Expr::Literal(literal) => (NODE, literal_shape(literal)),
            Expr::Ident(name) => (NODE, self.lookup(name)),
            Expr::Select(select) => {
                let (cost, operand) = self.expr(&select.operand);
                let shape = if select.test {
                    Shape::scalar()
                } else {
                    operand.field(&select.field)
                };
                (add(cost, NODE), shape)
            }
            Expr::List(list) => {
                let mut cost = NODE;
                let mut elements = Vec::with_capacity(list.elements.len());
                for element in &list.elements {
                    let (c, shape) = self.expr(element);
                    // Elements are copied into the new list.
                    cost = add(cost, add(c, touch(shape.weight())));
                    elements.push(shape);
                }
                (cost, Shape::list(elements))
            }
            Expr::Map(map) => self.entries(&map.entries),
            Expr::Struct(st) => self.entries(&st.entries),
            Expr::Call(call) => self.call(call),
            Expr::Comprehension(comprehension) => self.comprehension(comprehension),
            Expr::Unspecified => {
                self.unspecified = true;
                (NODE, Shape::scalar())
            }
        }
    }

    fn lookup(&mut self, name: &str) -> Shape {
        if let Some((_, shape)) = self.locals.iter().rev().find(|(local, _)| *local == name) {
            return shape.clone();
        }
        self.reads.note(name);
        // `now`, a type's name, or an undeclared name (an error when it runs).
        self.roots.named(name).cloned().unwrap_or_else(Shape::scalar)
    }

    fn entries(&mut self, entries: &'a [IdedEntryExpr]) -> (u64, Shape) {
        let mut cost = add(NODE, MAP);
        let mut shapes = Vec::with_capacity(entries.len());
        for entry in entries {
            let (name, key, value) = match &entry.expr {
                EntryExpr::MapEntry(e) => {
                    let (ck, key) = self.expr(&e.key);
                    let (cv, value) = self.expr(&e.value);
                    cost = add(cost, add(ck, cv));
                    (string_literal(&e.key).map(str::to_owned), key, value)
                }
                EntryExpr::StructField(f) => {
                    let (cv, value) = self.expr(&f.value);
                    cost = add(cost, cv);
                    (Some(f.field.clone()), Shape::text(f.field.len() as u64), value)
                }
            };
            // Keys are hashed, values copied into the new map.
            cost = add(cost, touch(key.weight().saturating_add(value.weight())));
            shapes.push((name, key, value));
        }
        (cost, Shape::map(shapes))
    }

    fn call(&mut self, call: &'a CallExpr) -> (u64, Shape) {
        let name = call.func_name.as_str();
        if name == operators::CONDITIONAL && call.target.is_none() && call.args.len() == 3 {
            // Only one branch runs.
            let (c0, _) = self.expr(&call.args[0]);
            let (c1, s1) = self.expr(&call.args[1]);
            let (c2, s2) = self.expr(&call.args[2]);
            return (add(NODE, add(c0, c1.max(c2))), s1.join(&s2));
        }
        let mut cost = NODE;
        let mut shapes = Vec::with_capacity(call.args.len() + 1);
        for operand in call.target.iter().map(|t| &**t).chain(&call.args) {
            let (c, shape) = self.expr(operand);
            cost = add(cost, c);
            shapes.push(shape);
        }
        let field = call.args.get(1).and_then(string_literal);
        let (work, shape) = match (name, shapes.as_slice()) {
            (
                operators::LOGICAL_AND
                | operators::LOGICAL_OR
                | operators::LOGICAL_NOT
                | operators::NOT_STRICTLY_FALSE
                | operators::NEGATE
                | operators::SUBSTRACT
                | operators::MULTIPLY
                | operators::DIVIDE
                | operators::MODULO
                | "size"
                | "type",
                _,
            ) => (0, Shape::scalar()),
            // Strings and lists are copied end to end.
            (operators::ADD, [a, b]) => (touch(a.weight().saturating_add(b.weight())), a.concat(b)),
            (
                operators::EQUALS
                | operators::NOT_EQUALS
                | operators::LESS
                | operators::LESS_EQUALS
                | operators::GREATER
                | operators::GREATER_EQUALS,
                [a, b],
            ) => (touch(a.weight().min(b.weight())), Shape::scalar()),
            // A list is searched element by element.
            (operators::IN, [a, b]) => (touch(a.weight().saturating_add(b.weight())), Shape::scalar()),
            (operators::INDEX | operators::OPT_INDEX | operators::OPT_SELECT, [container, key]) => {
                let part = match field {
                    Some(field) => container.field(field),
                    None => container.element(),
                };
                (touch(key.weight()), part)
            }
            ("contains" | "startsWith" | "endsWith", [a, b]) => {
                (touch(a.weight().saturating_add(b.weight())), Shape::scalar())
            }
            ("matches", [text, pattern]) => {
                let compile = pattern.length().saturating_mul(COMPILE);
                let scan = text.length().saturating_mul(pattern.length()).saturating_mul(PAIR);
                (add(compile, scan), Shape::scalar())
            }
            ("name_match", [a, b]) => {
                let normalise = a.length().saturating_add(b.length()).saturating_mul(NORMALISE);
                let compare = a.length().saturating_mul(b.length()).saturating_mul(NAME_PAIR);
                (add(NAME_MATCH, add(normalise, compare)), Shape::scalar())
            }
            // `string(x)`: a number or a timestamp is a short string; a
            // string or bytes stays as long as it is.
            ("string" | "bytes", [a]) => (touch(a.weight()), Shape::text(a.length().max(40))),
            ("dyn", [a]) => (0, a.clone()),
            // Everything else reads its operands at most once and returns
            // one of them, a part of one or a scalar: conversions, dates,
            // optionals, timestamp accessors.
            (_, shapes) => {
                let weight = shapes.iter().fold(0_u64, |sum, s| sum.saturating_add(s.weight()));
                let joined = shapes.iter().fold(Shape::scalar(), |joined: Shape, s| joined.join(s));
                (touch(weight), joined)
            }
        };
        (add(cost, work), shape)
    }

    fn comprehension(&mut self, c: &'a ComprehensionExpr) -> (u64, Shape) {
        let (c_range, range) = self.expr(&c.iter_range);
        let (c_init, init) = self.expr(&c.accu_init);
        let turns = range.length();
        let item = range.element();
        let scope = self.locals.len();
        self.locals.push((&c.iter_var, item.clone()));
        if let Some(second) = &c.iter_var2 {
            self.locals.push((second, item.clone()));
        }
        self.locals.push((&c.accu_var, init.clone()));
        self.depth += 1;
        self.nesting = self.nesting.max(self.depth);
        let (c_cond, _) = self.expr(&c.loop_cond);
        let (c_step, step) = self.expr(&c.loop_step);
        self.depth -= 1;
        self.locals.truncate(scope);
        // `map` and `filter` start from an empty list and append an element
        // a turn (in place: the interpreter recognises the shape); `all`,
        // `exists` and `exists_one` keep a boolean or a count.
        let accumulated = if is_empty_list(&c.accu_init) {
            Shape::repeated(turns, &step.element())
        } else {
            init.join(&step)
        };
        self.locals.push((&c.accu_var, accumulated));
        let (c_result, result) = self.expr(&c.result);
        self.locals.truncate(scope);
        // Each turn binds a copy of its element.
        let turn = add(add(TURN, touch(item.weight())), add(c_cond, c_step));
        let cost = add(
            add(NODE, add(c_range, c_init)),
            add(turns.saturating_mul(turn), add(c_result, touch(result.weight()))),
        );
        (cost, result)
    }
}

fn add(a: u64, b: u64) -> u64 {
    a.saturating_add(b)
}

fn touch(weight: u64) -> u64 {
    weight.saturating_mul(TOUCH)
}

fn literal_shape(literal: &LiteralValue) -> Shape {
    match literal {
        LiteralValue::String(s) => Shape::text(s.inner().len() as u64),
        LiteralValue::Bytes(b) => Shape::text(b.inner().len() as u64),
        LiteralValue::Boolean(_)
        | LiteralValue::Double(_)
        | LiteralValue::Int(_)
        | LiteralValue::Null
        | LiteralValue::UInt(_) => Shape::scalar(),
    }
}

fn string_literal(node: &IdedExpr) -> Option<&str> {
    match &node.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner()),
        _ => None,
    }
}

fn is_empty_list(node: &IdedExpr) -> bool {
    matches!(&node.expr, Expr::List(list) if list.elements.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn priced(expression: &str, roots: &Roots) -> Estimate {
        let program = crate::rules::compile(expression).unwrap();
        estimate(program.expression(), roots)
    }

    fn cost(expression: &str) -> u64 {
        priced(expression, &Roots::nominal()).cost
    }

    fn with_context(context: serde_json::Value) -> Roots {
        Roots {
            context: Shape::of_json(&context),
            ..Roots::nominal()
        }
    }

    fn literal(n: usize) -> String {
        let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        format!("[{}]", items.join(","))
    }

    #[test]
    fn a_comprehension_costs_its_body_once_per_element() {
        let one = cost(&format!("{}.all(x, x > 0)", literal(10)));
        let ten = cost(&format!("{}.all(x, x > 0)", literal(100)));
        // Ten times the turns, plus ten times the literal to build.
        assert!(ten > 9 * (one - EVALUATION) && ten < 11 * one, "{one} {ten}");
        let nested = cost(&format!("{0}.all(x, {0}.all(y, x > y))", literal(100)));
        assert!(nested > 90 * ten, "{ten} {nested}");
    }

    #[test]
    fn nesting_counts_comprehensions_inside_bodies_not_chained_ones() {
        let nominal = Roots::nominal();
        assert_eq!(
            priced("data.a.map(x, x).filter(y, y > 1).all(z, z > 2)", &nominal).nesting,
            1
        );
        assert_eq!(priced("data.a.all(x, data.b.exists(y, x == y))", &nominal).nesting, 2);
        assert_eq!(
            priced(
                "data.a.all(x, data.b.exists(y, data.c.exists_one(z, x == z)))",
                &nominal
            )
            .nesting,
            3
        );
        // A comprehension over another's result runs after it, not in it.
        assert_eq!(
            priced("data.a.map(x, data.b.map(y, y)).size() > 0", &nominal).nesting,
            2
        );
        assert_eq!(priced("data.a.all(x, x > 0)", &nominal).nesting, 1);
        assert_eq!(priced("data.a > 0", &nominal).nesting, 0);
    }

    #[test]
    fn real_inputs_price_by_the_field_a_rule_reads() {
        let roots = with_context(json!({"small": [1, 2, 3], "big": (0..1000).collect::<Vec<_>>()}));
        let small = priced("context.small.all(x, context.small.all(y, x != y))", &roots).cost;
        let big = priced("context.big.all(x, context.big.all(y, x != y))", &roots).cost;
        assert!(small < 100_000, "{small}");
        assert!(big > 10_000 * small, "{small} {big}");
        assert!(big > RULE_BUDGET);
    }

    #[test]
    fn a_conditional_costs_its_dearer_branch() {
        let dear = format!("{}.all(x, x > 0)", literal(200));
        let branch = cost(&dear);
        let either = cost(&format!("data.flag ? {dear} : true"));
        assert!(either >= branch && either < branch + 1_000, "{branch} {either}");
        let both = cost(&format!("{dear} && {dear}"));
        assert!(both > 2 * branch - EVALUATION - 1_000, "{branch} {both}");
    }

    #[test]
    fn concatenation_grows_what_comes_after_it() {
        let roots = with_context(json!({"s": "x".repeat(1000), "l": (0..50).collect::<Vec<_>>()}));
        let once = priced("(context.l).all(x, true)", &roots).cost;
        let four = priced("(context.l + context.l + context.l + context.l).all(x, true)", &roots).cost;
        assert!(four > 3 * once, "{once} {four}");
        let name = priced("name_match(context.s, context.s) > 0.5", &roots).cost;
        let doubled = priced("name_match(context.s + context.s, context.s + context.s) > 0.5", &roots).cost;
        assert!(doubled > 3 * name, "{name} {doubled}");
    }

    #[test]
    fn map_and_filter_results_are_as_long_as_their_range() {
        let roots = with_context(json!({"l": (0..100).collect::<Vec<_>>()}));
        let direct = priced("context.l.all(x, context.l.all(y, true))", &roots).cost;
        let mapped = priced(
            "context.l.map(v, v * 2).all(x, context.l.filter(w, w > 0).all(y, true))",
            &roots,
        )
        .cost;
        assert!(mapped >= direct, "{direct} {mapped}");
    }

    #[test]
    fn reads_are_the_variables_named_outside_comprehensions() {
        let nominal = Roots::nominal();
        let reads = priced("data.a > 0 && participantOutputs['id-document'].x == 1", &nominal).reads;
        assert_eq!(
            reads,
            Reads {
                data: true,
                participant_outputs: true,
                ..Reads::default()
            }
        );
        // A comprehension variable named like one is not it.
        assert_eq!(
            priced("[1, 2].all(outputs, outputs > 0)", &nominal).reads,
            Reads::default()
        );
        assert!(priced("[1, 2].all(x, x in outputs.a)", &nominal).reads.outputs);
    }

    #[test]
    fn converting_only_what_is_read_costs_only_that() {
        let roots = with_context(json!({"big": (0..1000).collect::<Vec<_>>()}));
        let context = Reads {
            context: true,
            ..Reads::default()
        };
        let data = Reads {
            data: true,
            ..Reads::default()
        };
        assert!(roots.conversion_cost(context) > 1_000 * CONVERT);
        assert_eq!(roots.conversion_cost(data), NOMINAL_WEIGHT * CONVERT);
        assert_eq!(roots.conversion_cost(Reads::default()), 0);
    }
}
