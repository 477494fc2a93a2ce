//! Fuzzy person and company name matching, for comparing the name on one
//! document with the name on another.
//!
//! Names are compared after Unicode normalisation (compatibility decomposition,
//! combining marks dropped), transliteration to ASCII, case folding and
//! punctuation removal, and independently of token order ("SMITH, John" is
//! "John Smith"). Token similarity is Jaro-Winkler from `strsim`.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The comparable tokens of a name, sorted.
pub fn tokens(name: &str) -> Vec<String> {
    let decomposed: String = name.nfkd().filter(|c| !is_combining_mark(*c)).collect();
    let ascii = deunicode::deunicode(&decomposed).to_ascii_lowercase();
    let mut tokens: Vec<String> = ascii
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    tokens.sort();
    tokens
}

/// Similarity of two names in `[0, 1]`: 1 for the same name however written,
/// high for a typo or a missing middle name, low for another person.
pub fn similarity(a: &str, b: &str) -> f64 {
    NormalisedName::new(a).similarity(&NormalisedName::new(b))
}

/// A name normalised once, so one name can be compared with many (a screening
/// list) without normalising and transliterating it again for every pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalisedName {
    tokens: Vec<String>,
    joined: String,
}

impl NormalisedName {
    pub fn new(name: &str) -> Self {
        let tokens = tokens(name);
        let joined = tokens.join(" ");
        NormalisedName { tokens, joined }
    }

    /// The comparable tokens, sorted (see [`tokens`]).
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// Nothing comparable is left (empty, or only punctuation).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The same name however written: the same tokens, in any order.
    pub fn is_exactly(&self, other: &NormalisedName) -> bool {
        !self.is_empty() && self.tokens == other.tokens
    }

    /// [`similarity`] of the two names.
    pub fn similarity(&self, other: &NormalisedName) -> f64 {
        let (ta, tb) = (&self.tokens, &other.tokens);
        if ta.is_empty() || tb.is_empty() {
            return 0.0;
        }
        let (short, long) = if ta.len() <= tb.len() { (ta, tb) } else { (tb, ta) };
        // Each token of the shorter name is matched to its best counterpart, and
        // the share of the longer name left unmatched costs a little: "John Smith"
        // against "John Michael Smith" is a near match, not a perfect one.
        let matched: f64 = short
            .iter()
            .map(|t| long.iter().map(|u| strsim::jaro_winkler(t, u)).fold(0.0, f64::max))
            .sum::<f64>()
            / short.len() as f64;
        let coverage = short.len() as f64 / long.len() as f64;
        let by_token = 0.85 * matched + 0.15 * coverage;
        let whole = strsim::jaro_winkler(&self.joined, &other.joined);
        by_token.max(whole).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_however_written() {
        assert_eq!(similarity("John Smith", "john smith"), 1.0);
        assert_eq!(similarity("SMITH, John", "John Smith"), 1.0);
        assert_eq!(similarity("José Álvarez", "Jose Alvarez"), 1.0);
        // Compatibility forms (full-width letters) normalise too.
        assert_eq!(similarity("Ｊｏｈｎ Ｓｍｉｔｈ", "John Smith"), 1.0);
        // Transliteration from other scripts.
        assert!(similarity("Иван Петров", "Ivan Petrov") > 0.99);
    }

    #[test]
    fn near_matches_are_high_but_not_perfect() {
        let middle = similarity("John Smith", "John Michael Smith");
        assert!(middle > 0.9 && middle < 1.0, "{middle}");
        let typo = similarity("Jonathan Smith", "Jonathon Smith");
        assert!(typo > 0.93 && typo < 1.0, "{typo}");
        let umlaut = similarity("Jürgen Müller", "Juergen Mueller");
        assert!(umlaut > 0.9, "{umlaut}");
    }

    #[test]
    fn other_people_are_low() {
        assert!(similarity("John Smith", "Maria Garcia") < 0.6);
        assert!(similarity("John Smith", "") == 0.0);
        let sibling = similarity("Jane Smith", "John Smith");
        assert!(sibling < 0.93, "{sibling}");
    }

    #[test]
    fn normalised_names_compare_like_strings() {
        let pairs = [
            ("John Smith", "SMITH, John"),
            ("Jonathan Smith", "Jonathon Smith"),
            ("Jane Smith", "John Smith"),
        ];
        for (a, b) in pairs {
            let (na, nb) = (NormalisedName::new(a), NormalisedName::new(b));
            assert_eq!(na.similarity(&nb), similarity(a, b));
        }
        assert!(NormalisedName::new("SMITH, John").is_exactly(&NormalisedName::new("john smith")));
        assert!(!NormalisedName::new("John Smith").is_exactly(&NormalisedName::new("John Michael Smith")));
        assert!(!NormalisedName::new("").is_exactly(&NormalisedName::new("")));
    }
}
