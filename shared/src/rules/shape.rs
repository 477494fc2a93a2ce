//! Upper bounds on the size of the values a rule handles: what the cost
//! estimate ([`super::cost`]) multiplies by. A shape is computed from the
//! real variables before a rule runs, or assumed ([`Shape::nominal`]) when a
//! definition is written.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::JsonMap;

/// How deep the parts of a JSON value are described; deeper parts are
/// bounded by their ancestor (see [`Parts::Whole`]). JSON read back from the
/// store is at most 128 levels deep, and rules rarely reach past a few.
const DESCRIBED_DEPTH: usize = 16;

/// The most fields a map keeps apart; a larger one is described by what any
/// of its values is. Keeps pricing a rule cheap whatever the inputs hold.
const DESCRIBED_FIELDS: usize = 64;

/// Bytes of text that weigh as much as one scalar: copying or comparing
/// a string costs little per byte next to what a value costs to box.
const BYTES_PER_CELL: u64 = 16;

/// What a list and a map weigh beside their elements and entries: each is
/// an allocation of its own (a map, a hash table) whenever it is copied.
const LIST_CELLS: u64 = 4;
const MAP_CELLS: u64 = 8;

/// An upper bound on a value's size.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// Its length: a list's elements, a map's entries, a string's bytes (the
    /// turns of a comprehension over it). Where its parts are not described
    /// ([`Parts::Whole`]), the longest of anything in it.
    len: u64,
    /// The value's size, in cells: one per scalar, element and entry, and one
    /// per [`BYTES_PER_CELL`] bytes of its strings and keys. What copying,
    /// comparing or converting it touches.
    weight: u64,
    parts: Parts,
}

/// What a value's elements, keys and values look like.
#[derive(Debug, Clone, PartialEq)]
enum Parts {
    /// Nothing more is known: any part is no bigger than the whole.
    Whole,
    /// Any element, key or value.
    Each(Arc<Shape>),
    /// A map's values by key, as a rule selects them (`data.fullName`), and
    /// what any key or value is (iteration, a computed key).
    Fields(Arc<BTreeMap<String, Shape>>, Arc<Shape>),
}

impl Shape {
    /// A number, boolean, null, timestamp or duration.
    pub fn scalar() -> Self {
        Shape {
            len: 0,
            weight: 1,
            parts: Parts::Whole,
        }
    }

    /// A string (or bytes) of `bytes` bytes.
    pub fn text(bytes: u64) -> Self {
        Shape {
            len: bytes,
            weight: text_weight(bytes),
            parts: Parts::Whole,
        }
    }

    /// What a definition's expressions are assumed to read when they are
    /// written, before any real input exists: every list, map and string `len`
    /// long and every value `weight` heavy, however deep.
    pub fn nominal(len: u64, weight: u64) -> Self {
        Shape {
            len,
            weight,
            parts: Parts::Whole,
        }
    }

    /// A list of these elements.
    pub fn list(elements: impl IntoIterator<Item = Shape>) -> Self {
        let (count, any) = joined(elements);
        Shape::of_parts(count, any, LIST_CELLS)
    }

    /// A list of `count` elements, each at most `element`.
    pub fn repeated(count: u64, element: &Shape) -> Self {
        Shape {
            len: count,
            weight: count.saturating_mul(element.weight).saturating_add(LIST_CELLS),
            parts: Parts::Each(Arc::new(element.clone())),
        }
    }

    /// A map of these entries; a key known when the rule is written (a
    /// string literal) keeps its value's shape apart.
    pub fn map(entries: impl IntoIterator<Item = (Option<String>, Shape, Shape)>) -> Self {
        let mut fields = BTreeMap::new();
        let mut all_named = true;
        let mut parts = Vec::new();
        for (name, key, value) in entries {
            match name {
                Some(name) if all_named && fields.len() < DESCRIBED_FIELDS => {
                    fields.insert(name, value.clone());
                }
                Some(_) | None => all_named = false,
            }
            parts.push(key);
            parts.push(value);
        }
        let count = parts.len() as u64 / 2;
        let (_, any) = joined(parts);
        let mut shape = Shape::of_parts(count, any, MAP_CELLS);
        let any = match &shape.parts {
            Parts::Each(any) if all_named => Some(Arc::clone(any)),
            _ => None,
        };
        if let Some(any) = any {
            shape.parts = Parts::Fields(Arc::new(fields), any);
        }
        shape
    }

    /// A list or map of `count` parts, each at most the first of `any`,
    /// weighing the second together.
    fn of_parts(count: u64, any: Option<(Shape, u64)>, own: u64) -> Self {
        match any {
            None => Shape {
                len: 0,
                weight: own,
                parts: Parts::Whole,
            },
            Some((part, total)) => Shape {
                len: count,
                weight: total.saturating_add(own),
                parts: Parts::Each(Arc::new(part)),
            },
        }
    }

    /// The shape of a JSON value.
    pub fn of_json(value: &serde_json::Value) -> Self {
        Shape::described(value, DESCRIBED_DEPTH)
    }

    /// The shape of a JSON object.
    pub fn of_object(map: &JsonMap) -> Self {
        Shape::object(map, DESCRIBED_DEPTH)
    }

    fn described(value: &serde_json::Value, depth: usize) -> Self {
        use serde_json::Value as J;
        match value {
            J::Null | J::Bool(_) | J::Number(_) => Shape::scalar(),
            J::String(s) => Shape::text(s.len() as u64),
            J::Array(_) if depth == 0 => Shape::undescribed(value),
            J::Array(items) => Shape::list(items.iter().map(|item| Shape::described(item, depth - 1))),
            J::Object(map) => Shape::object(map, depth),
        }
    }

    fn object(map: &JsonMap, depth: usize) -> Self {
        if depth == 0 {
            return Shape::undescribed(&serde_json::Value::Object(map.clone()));
        }
        Shape::map(map.iter().map(|(key, value)| {
            (
                Some(key.clone()),
                Shape::text(key.len() as u64),
                Shape::described(value, depth - 1),
            )
        }))
    }

    /// A value past [`DESCRIBED_DEPTH`]: its size and its longest part.
    fn undescribed(value: &serde_json::Value) -> Self {
        let (weight, len) = json_size(value);
        Shape {
            len,
            weight,
            parts: Parts::Whole,
        }
    }

    pub fn length(&self) -> u64 {
        self.len
    }

    pub fn weight(&self) -> u64 {
        self.weight
    }

    /// Any element of a list, key or value of a map: what a comprehension's
    /// variable or a computed index gives.
    pub fn element(&self) -> Shape {
        match &self.parts {
            Parts::Whole => self.clone(),
            Parts::Each(any) | Parts::Fields(_, any) => (**any).clone(),
        }
    }

    /// The value of field `name`. Selecting a field the map does not have
    /// fails when the rule runs, so it yields nothing bigger than a scalar.
    pub fn field(&self, name: &str) -> Shape {
        match &self.parts {
            Parts::Fields(fields, _) => fields.get(name).cloned().unwrap_or_else(Shape::scalar),
            Parts::Whole | Parts::Each(_) => self.element(),
        }
    }

    /// A bound on both: what a conditional or an optional may give.
    pub fn join(&self, other: &Shape) -> Shape {
        Shape {
            len: self.len.max(other.len),
            weight: self.weight.max(other.weight),
            parts: join_parts(self, other),
        }
    }

    /// What `a + b` may give: the two strings or lists end to end (or a
    /// number, which is smaller).
    pub fn concat(&self, other: &Shape) -> Shape {
        Shape {
            len: self.len.saturating_add(other.len),
            weight: self.weight.saturating_add(other.weight),
            parts: join_parts(self, other),
        }
    }
}

fn join_parts(a: &Shape, b: &Shape) -> Parts {
    match (&a.parts, &b.parts) {
        (Parts::Whole, Parts::Whole) => Parts::Whole,
        (Parts::Fields(x, any_x), Parts::Fields(y, any_y)) if x.len() + y.len() <= DESCRIBED_FIELDS => {
            let mut fields = (**x).clone();
            for (name, shape) in y.iter() {
                let joined = match fields.get(name) {
                    Some(mine) => mine.join(shape),
                    None => shape.clone(),
                };
                fields.insert(name.clone(), joined);
            }
            Parts::Fields(Arc::new(fields), Arc::new(any_x.join(any_y)))
        }
        _ => Parts::Each(Arc::new(a.element().join(&b.element()))),
    }
}

/// The count of these shapes, and a bound on each with their total weight;
/// `None` when there are none.
fn joined(shapes: impl IntoIterator<Item = Shape>) -> (u64, Option<(Shape, u64)>) {
    let mut count = 0_u64;
    let mut any: Option<(Shape, u64)> = None;
    for shape in shapes {
        count += 1;
        any = Some(match any {
            None => {
                let weight = shape.weight;
                (shape, weight)
            }
            Some((bound, total)) => (bound.join(&shape), total.saturating_add(shape.weight)),
        });
    }
    (count, any)
}

fn text_weight(bytes: u64) -> u64 {
    bytes.div_ceil(BYTES_PER_CELL).saturating_add(1)
}

/// [`Shape::weight`] of a JSON value and the length of its longest list,
/// map or string, found without recursion.
fn json_size(value: &serde_json::Value) -> (u64, u64) {
    use serde_json::Value as J;
    let (mut weight, mut longest) = (0_u64, 0_u64);
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        let len = match value {
            J::Null | J::Bool(_) | J::Number(_) => {
                weight = weight.saturating_add(1);
                0
            }
            J::String(s) => {
                weight = weight.saturating_add(text_weight(s.len() as u64));
                s.len()
            }
            J::Array(items) => {
                weight = weight.saturating_add(LIST_CELLS);
                pending.extend(items);
                items.len()
            }
            J::Object(map) => {
                weight = weight.saturating_add(MAP_CELLS);
                for (key, value) in map {
                    weight = weight.saturating_add(text_weight(key.len() as u64));
                    longest = longest.max(key.len() as u64);
                    pending.push(value);
                }
                map.len()
            }
        };
        longest = longest.max(len as u64);
    }
    (weight, longest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn described_and_undescribed_values_weigh_the_same() {
        let value = json!({"name": "Jane", "items": [1, 2, 3], "nested": {"deep": ["ab", "x".repeat(40)]}});
        let shape = Shape::of_json(&value);
        assert_eq!(shape.weight(), json_size(&value).0);
        assert_eq!(json_size(&value).1, 40);
        // Two maps with four keys, "Jane", two lists, three numbers, "ab" and forty bytes.
        assert_eq!(shape.weight(), 2 * MAP_CELLS + 4 * 2 + 2 + 2 * LIST_CELLS + 3 + 2 + 4);
    }

    #[test]
    fn fields_keep_their_own_shapes_and_elements_are_bounded() {
        let value = json!({"name": "Jane Doe", "items": [1, 2, 3, 4, 5], "long": "x".repeat(300)});
        let shape = Shape::of_json(&value);
        let items = shape.field("items");
        assert_eq!(items.length(), 5);
        assert_eq!(items.element(), Shape::scalar());
        assert_eq!(shape.field("name").length(), 8);
        assert_eq!(shape.field("missing"), Shape::scalar());
        // Iterating the map itself yields keys: bounded by its largest part.
        assert_eq!(shape.element().length(), 300);
        assert_eq!(shape.length(), 3);
    }

    #[test]
    fn deep_values_are_bounded_by_their_described_ancestor() {
        let mut value = json!([1, 2, 3]);
        for _ in 0..40 {
            value = json!({"next": value, "pad": "abcdef"});
        }
        let mut shape = Shape::of_json(&value);
        for _ in 0..40 {
            let next = shape.field("next");
            assert!(next.weight() <= shape.weight());
            shape = next;
        }
        assert!(shape.length() >= 3);
    }

    #[test]
    fn concatenation_adds_and_joins_bound_both() {
        let a = Shape::list([Shape::text(10), Shape::text(20)]);
        let b = Shape::repeated(100, &Shape::scalar());
        let both = a.concat(&b);
        assert_eq!(both.length(), 102);
        assert_eq!(both.weight(), a.weight() + b.weight());
        assert_eq!(both.element().length(), 20);
        let either = a.join(&b);
        assert_eq!(either.length(), 100);
        assert_eq!(either.element().length(), 20);
        assert_eq!(either.weight(), a.weight().max(b.weight()));
    }
}
