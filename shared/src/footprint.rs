//! What a session may store. A session is one item in the store (DynamoDB
//! keeps at most 400 KB an item; the document is deflated there, but the
//! budget is on the plain JSON so it holds whatever compresses badly). Its
//! parts are fixed when it is created, except for what its changes add: the
//! end user's submissions, what `extract` and `output` mappings produce and
//! what check providers answer. Each of those is bounded on its own, and
//! none may take the whole session past [`MAX_SESSION_BYTES`]: a submission
//! over its bound is refused (`422`), anything the service produces over
//! its bound fails its step instead of being stored.

use serde::Serialize;

/// The most a session's JSON may hold once a change adds to it, leaving
/// room under the store's 400 KB for what every change adds besides
/// (validation reports, events' bookkeeping) and the item's attributes.
pub const MAX_SESSION_BYTES: usize = 256 * 1024;

/// The most one submission may hold, once accepted.
pub const MAX_SUBMISSION_BYTES: usize = 64 * 1024;

/// The most one `extract` or `output` step may produce.
pub const MAX_MAPPING_BYTES: usize = 64 * 1024;

/// The most one check's findings may hold.
pub const MAX_FINDINGS_BYTES: usize = 32 * 1024;

/// The deepest a mapping's value may nest. The session holds it a few
/// levels down, and JSON is read back at most 128 levels deep.
pub const MAX_MAPPING_DEPTH: usize = 32;

/// The longest reason kept from a provider or the rule interpreter: their
/// messages may quote whole values.
pub const MAX_REASON_CHARS: usize = 500;

/// Why something cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Overflow {
    #[error("{what} serialises to {size} bytes; at most {max}")]
    TooLarge {
        what: &'static str,
        size: usize,
        max: usize,
    },
    #[error("the session would hold {size} bytes; at most {MAX_SESSION_BYTES}")]
    SessionTooLarge { size: usize },
    #[error("{what} nests {depth} levels deep; at most {MAX_MAPPING_DEPTH}")]
    TooDeep { what: &'static str, depth: usize },
}

/// The size of `value`'s JSON, counted without keeping it.
pub fn json_size(value: &impl Serialize) -> usize {
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        // Nothing the domain holds fails to serialise; were it to, it
        // cannot be stored either.
        Err(_) => usize::MAX,
    }
}

struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks `value` against `max` bytes.
pub fn check_size(what: &'static str, value: &impl Serialize, max: usize) -> Result<(), Overflow> {
    let size = json_size(value);
    if size > max {
        return Err(Overflow::TooLarge { what, size, max });
    }
    Ok(())
}

/// Checks what a mapping produced: its size and its depth.
pub fn check_mapping(what: &'static str, value: &crate::JsonMap) -> Result<(), Overflow> {
    check_size(what, value, MAX_MAPPING_BYTES)?;
    let depth = depth(value);
    if depth > MAX_MAPPING_DEPTH {
        return Err(Overflow::TooDeep { what, depth });
    }
    Ok(())
}

/// Checks the whole session after a change added to it.
pub fn check_session(session: &crate::session::Session) -> Result<(), Overflow> {
    let size = json_size(session);
    if size > MAX_SESSION_BYTES {
        return Err(Overflow::SessionTooLarge { size });
    }
    Ok(())
}

/// How deep a JSON object nests (itself is one level), found without
/// recursion.
fn depth(map: &crate::JsonMap) -> usize {
    use serde_json::Value as J;
    let mut deepest = 1;
    let mut pending: Vec<(&J, usize)> = map.values().map(|v| (v, 2)).collect();
    while let Some((value, level)) = pending.pop() {
        match value {
            J::Array(items) => {
                deepest = deepest.max(level);
                pending.extend(items.iter().map(|v| (v, level + 1)));
            }
            J::Object(map) => {
                deepest = deepest.max(level);
                pending.extend(map.values().map(|v| (v, level + 1)));
            }
            J::Null | J::Bool(_) | J::Number(_) | J::String(_) => {}
        }
    }
    deepest
}

/// `reason` cut to [`MAX_REASON_CHARS`], marked as cut.
pub fn shortened(reason: String) -> String {
    if reason.chars().count() <= MAX_REASON_CHARS {
        return reason;
    }
    let mut short: String = reason.chars().take(MAX_REASON_CHARS - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_are_those_of_the_json() {
        let value = json!({"a": [1, 2, 3], "b": "text"});
        assert_eq!(json_size(&value), serde_json::to_vec(&value).unwrap().len());
    }

    #[test]
    fn depth_counts_the_object_itself() {
        let map = |v: serde_json::Value| v.as_object().cloned().unwrap();
        assert_eq!(depth(&map(json!({}))), 1);
        assert_eq!(depth(&map(json!({"a": 1}))), 1);
        assert_eq!(depth(&map(json!({"a": [1]}))), 2);
        assert_eq!(depth(&map(json!({"a": [{"b": []}], "c": {}}))), 4);
    }

    #[test]
    fn long_reasons_are_cut() {
        assert_eq!(shortened("short".into()), "short");
        let cut = shortened("é".repeat(MAX_REASON_CHARS + 1));
        assert_eq!(cut.chars().count(), MAX_REASON_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(
            shortened("x".repeat(MAX_REASON_CHARS)).chars().count(),
            MAX_REASON_CHARS
        );
    }
}
