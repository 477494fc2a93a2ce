//! The built-in PEP and sanctions screening engine: a subject's name, birth
//! date and countries against a watch list.
//!
//! # The list
//!
//! Lists come in the open [OpenSanctions] / FollowTheMoney format: one JSON
//! entity per line (`id`, `schema`, `caption`, `properties`, `datasets`). The
//! `Person`, `Organization`, `Company` and `LegalEntity` schemas are screened;
//! other schemas (vessels, aircraft, addresses…) are skipped. The properties
//! read are `name`, `alias`, `birthDate` (a year, `YYYY-MM` or a full date),
//! `nationality`, `citizenship`, `country`, `jurisdiction`, `mainCountry` and
//! `topics`; any may be missing. Names are normalised once, when the list is
//! parsed, so a screening only normalises the subject.
//!
//! # Scope
//!
//! A PEP check looks at entities tagged `role.pep` (or a `role.pep.*` refinement)
//! or `role.rca` (relatives and close associates); a sanctions check at
//! `sanction` and every `sanction.*` topic, and `debarment`. Other topics
//! (`crime`, `poi`…) are never screened here, nor are the other check kinds,
//! which need their own providers. A person is screened against `Person`
//! entities, an organisation against `Organization` and `Company`; a
//! `LegalEntity` could be either and is screened for both.
//!
//! # The rule
//!
//! 1. **Name.** The name score is the best [`names`](crate::names) similarity
//!    of the subject's name with the entity's names and aliases, rounded to
//!    three decimals. A name counts only if it reaches [`POSSIBLE_NAME_SCORE`]
//!    and every significant token of the shorter name (legal forms such as
//!    "Ltd" and particles such as "al" or "van" aside) has a counterpart at
//!    least [`TOKEN_FLOOR`] similar among the other's significant tokens:
//!    Jaro-Winkler rewards a long shared surname, so "John Smith" scores 0.88
//!    against "Jane Smith" although John is not Jane. The score itself is left
//!    as [`names`](crate::names) computes it, so it reads like the rest of the
//!    product's name comparisons.
//! 2. **Corroboration.** A birth date corroborates when it agrees at the
//!    precision both sides know ("1961" agrees with "1961-05-12"); it
//!    contradicts when the year differs. The same year with another month or
//!    day is a disagreement that is not a contradiction: lists often carry
//!    transposed or approximate dates. Countries corroborate when the subject's
//!    and the entity's overlap and contradict when both are known and disjoint.
//! 3. **Strength.** A name at [`STRONG_NAME_SCORE`] or above that something
//!    corroborates is [`MatchStrength::Strong`]; any other counted name is
//!    [`MatchStrength::Possible`]. A contradiction then downgrades one level
//!    (strong to possible, possible to no match), and a same-year date
//!    disagreement keeps a match at possible. An exact name (the same tokens
//!    in any order, script or case) is never dropped: a list's dates and
//!    countries can be wrong, and a human should see a namesake.
//!
//! Findings are ordered strongest first, then by score, and capped at
//! [`MAX_FINDINGS`].
//!
//! # The index, and the recall it trades away
//!
//! Scoring every entity of a 100k-entity list with Jaro-Winkler is too slow for
//! every screening, so the list keeps an index from token keys to entities,
//! and only entities sharing a key with the subject's name are scored. Each
//! significant token has two keys: its first three letters, and the first
//! three letters of a phonetic skeleton that folds common transliteration
//! variants (w/v; j/y/i; c/k/q; kh/ch/h; ph/f; x/ks; a leading vowel; vowels
//! after the first letter dropped; doubled letters collapsed). So "Wladimir
//! Petrow", "Petrov, Vladimir" and "Vladmir Petorv" all reach "Vladimir
//! Petrov", and "Yevgeny"/"Evgeni" or "Mohammed"/"Muhammad" share a key.
//!
//! What is lost: an entity none of whose significant tokens shares either key
//! with a significant token of the subject is never scored, though Jaro-Winkler
//! might have rated it. That happens when every token differs within its first
//! three letters *and* its first three consonants, e.g. a typo at the start of
//! both given name and surname ("Bladimir Qetrov"), or spellings the folding
//! does not know ("Shevchenko"/"Chevchenko") on every token. A subject whose
//! name is made only of particles or legal forms ("Al Bin") is keyed on those,
//! and so reaches only entities whose names are too.
//!
//! [OpenSanctions]: https://www.opensanctions.org/docs/entities/

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::names::NormalisedName;
use crate::workflow::CheckKind;

/// A small, entirely fictional list for tests and local development.
pub const SAMPLE_LIST: &str = include_str!("../data/screening-sample.ftm.jsonl");

/// A name at least this similar can be a strong match, if something else
/// corroborates it. The same name transliterated or with a typo scores 0.94 to
/// 0.98 ("Wladimir Petrow" 0.947 against "Vladimir Petrov"), while another
/// given name with the same surname can reach 0.94 ("Joan Smith" against "Jane
/// Smith"): the name alone never makes a match strong.
pub const STRONG_NAME_SCORE: f64 = 0.92;

/// Below this, a name is not a match. It keeps heavier transliteration and
/// split or joined particles ("Khaled Almansuri" 0.852 against "Khalid
/// Al-Mansouri", "Mohammed Ahmed" 0.897 against "Muhammad Ahmad") and drops
/// another given name ("Nikolai Petrov" 0.833, "Maria Smith" 0.83).
pub const POSSIBLE_NAME_SCORE: f64 = 0.85;

/// Each significant token of the shorter name needs a counterpart at least this
/// similar (Jaro-Winkler). "Volodymyr"/"Vladimir" is 0.75 and "Yevgeny"/"Evgeni"
/// 0.85, while "John"/"Jane" is 0.67 and "Sergeyev"/"Semenov" 0.69.
pub const TOKEN_FLOOR: f64 = 0.75;

/// At most this many findings are returned, the strongest first.
pub const MAX_FINDINGS: usize = 10;

/// How many leading characters of a token (or of its skeleton) key the index.
const KEY_LENGTH: usize = 3;

/// Legal forms: too common to key the index (every "Ltd" would be a candidate
/// for every company) and no evidence that two names are the same.
#[rustfmt::skip] // One word a line would bury the list.
const LEGAL_FORMS: &[&str] = &[
    "ag", "bv", "cjsc", "co", "company", "corp", "corporation", "gmbh", "inc", "jsc", "limited", "llc", "llp", "lp",
    "ltd", "nv", "oao", "ojsc", "ooo", "pjsc", "plc", "sa", "sarl", "srl", "zao",
];

/// Name particles and connectives, for the same reasons.
#[rustfmt::skip] // One word a line would bury the list.
const PARTICLES: &[&str] = &[
    "abd", "al", "and", "bin", "bint", "da", "de", "del", "der", "di", "el", "ibn", "la", "le", "of", "the", "van",
    "von",
];

/// A list that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("line {line} is not a FollowTheMoney entity: {source}")]
    NotAnEntity {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("line {line} is an entity without an id")]
    MissingId { line: usize },
}

/// Who is screened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    pub name: String,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`; anything else is treated as unknown.
    #[serde(default)]
    pub birth_date: Option<String>,
    /// ISO 3166-1 alpha-2 codes (nationality, residence, incorporation), any case.
    #[serde(default)]
    pub countries: Vec<String>,
    pub entity: SubjectKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Person,
    Organization,
}

/// How sure a finding is. Ordered: `Possible < Strong`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchStrength {
    /// Worth a human look: the name is close, nothing else settles it.
    Possible,
    /// The name is very close and a birth date or country agrees.
    Strong,
}

/// One list entity the subject may be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub entity_id: String,
    /// The entity's caption.
    pub entity_name: String,
    /// The name or alias that matched, as the list writes it.
    pub matched_name: String,
    /// Name similarity in `[0, 1]`, rounded to three decimals.
    pub score: f64,
    pub strength: MatchStrength,
    pub topics: Vec<String>,
    pub datasets: Vec<String>,
    /// `None` when either side has no birth date.
    pub birth_date_match: Option<bool>,
    /// `None` when either side has no country.
    pub country_match: Option<bool>,
}

/// A parsed, indexed watch list.
#[derive(Debug, Clone, Default)]
pub struct ScreeningList {
    entities: Vec<Entity>,
    index: HashMap<IndexKey, Vec<usize>>,
}

impl ScreeningList {
    /// Reads line-delimited FollowTheMoney entities. Blank lines are skipped, as
    /// are entities of schemas that are not screened; a line that is not an
    /// entity fails the whole list, naming the line (1-based). Unreadable birth
    /// dates are ignored rather than refused: one odd date should not take a
    /// whole list down.
    pub fn parse(text: &str) -> Result<ScreeningList, ListError> {
        let mut entities = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line_number = number + 1;
            if line.trim().is_empty() {
                continue;
            }
            let raw: RawEntity = serde_json::from_str(line).map_err(|source| ListError::NotAnEntity {
                line: line_number,
                source,
            })?;
            if raw.id.trim().is_empty() {
                return Err(ListError::MissingId { line: line_number });
            }
            if let Some(entity) = Entity::from_raw(raw) {
                entities.push(entity);
            }
        }
        let mut index: HashMap<IndexKey, Vec<usize>> = HashMap::new();
        for (position, entity) in entities.iter().enumerate() {
            let mut keys: Vec<IndexKey> = entity.names.iter().flat_map(|n| index_keys(&n.normalised)).collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                index.entry(key).or_default().push(position);
            }
        }
        Ok(ScreeningList { entities, index })
    }

    /// The number of screened entities (skipped schemas not counted).
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// The entities the subject may be, for a PEP or sanctions check (other
    /// kinds find nothing here). See the module documentation for the rule.
    pub fn screen(&self, subject: &Subject, kind: CheckKind) -> Vec<Finding> {
        let Some(scope) = Scope::of(kind) else {
            return Vec::new();
        };
        let name = NormalisedName::new(&subject.name);
        if name.is_empty() {
            return Vec::new();
        }
        let known = Known {
            birth_date: subject.birth_date.as_deref().and_then(PartialDate::parse),
            countries: normalise_countries(subject.countries.iter().map(String::as_str)),
        };
        let mut findings: Vec<Finding> = self
            .candidates(&name)
            .into_iter()
            .filter_map(|position| self.entities.get(position))
            .filter(|entity| entity.schema.screens(subject.entity) && entity.in_scope(scope))
            .filter_map(|entity| entity.assess(&name, &known))
            .collect();
        findings.sort_by(|a, b| {
            b.strength
                .cmp(&a.strength)
                .then(b.score.total_cmp(&a.score))
                .then_with(|| a.entity_id.cmp(&b.entity_id))
        });
        findings.truncate(MAX_FINDINGS);
        findings
    }

    /// Positions of the entities sharing at least one index key with the name.
    fn candidates(&self, name: &NormalisedName) -> Vec<usize> {
        let mut positions: Vec<usize> = index_keys(name)
            .iter()
            .filter_map(|key| self.index.get(key))
            .flatten()
            .copied()
            .collect();
        positions.sort_unstable();
        positions.dedup();
        positions
    }
}

/// The FollowTheMoney schemas that are screened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    Person,
    Organization,
    Company,
    LegalEntity,
}

impl Schema {
    fn parse(schema: &str) -> Option<Schema> {
        match schema {
            "Person" => Some(Schema::Person),
            "Organization" => Some(Schema::Organization),
            "Company" => Some(Schema::Company),
            "LegalEntity" => Some(Schema::LegalEntity),
            _ => None,
        }
    }

    fn screens(self, subject: SubjectKind) -> bool {
        matches!(
            (self, subject),
            (Schema::LegalEntity, _)
                | (Schema::Person, SubjectKind::Person)
                | (Schema::Organization | Schema::Company, SubjectKind::Organization)
        )
    }
}

/// Which topics a check looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Pep,
    Sanctions,
}

impl Scope {
    fn of(kind: CheckKind) -> Option<Scope> {
        match kind {
            CheckKind::Pep => Some(Scope::Pep),
            CheckKind::Sanctions => Some(Scope::Sanctions),
            CheckKind::AdverseMedia | CheckKind::Registry => None,
        }
    }

    fn covers(self, topic: &str) -> bool {
        match self {
            Scope::Pep => topic == "role.pep" || topic.starts_with("role.pep.") || topic == "role.rca",
            Scope::Sanctions => topic == "sanction" || topic.starts_with("sanction.") || topic == "debarment",
        }
    }
}

/// What the subject brings besides the name, parsed once per screening.
struct Known {
    birth_date: Option<PartialDate>,
    countries: Vec<String>,
}

#[derive(Debug, Clone)]
struct Entity {
    id: String,
    caption: String,
    schema: Schema,
    names: Vec<ListedName>,
    birth_dates: Vec<PartialDate>,
    countries: Vec<String>,
    topics: Vec<String>,
    datasets: Vec<String>,
}

#[derive(Debug, Clone)]
struct ListedName {
    written: String,
    normalised: NormalisedName,
}

/// The entity's best name for a subject.
struct NameMatch<'a> {
    written: &'a str,
    score: f64,
    exact: bool,
}

impl Entity {
    fn from_raw(raw: RawEntity) -> Option<Entity> {
        let schema = Schema::parse(&raw.schema)?;
        let props = raw.properties;
        let mut names: Vec<ListedName> = Vec::new();
        for written in props.name.iter().chain(&props.alias) {
            let normalised = NormalisedName::new(written);
            // The same name in two spellings that normalise alike is scored once.
            if !normalised.is_empty() && !names.iter().any(|n| n.normalised == normalised) {
                names.push(ListedName {
                    written: written.clone(),
                    normalised,
                });
            }
        }
        let caption = raw
            .caption
            .filter(|c| !c.trim().is_empty())
            .or_else(|| props.name.first().cloned())
            .unwrap_or_else(|| raw.id.clone());
        let countries = [
            &props.nationality,
            &props.citizenship,
            &props.country,
            &props.jurisdiction,
            &props.main_country,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str);
        Some(Entity {
            id: raw.id,
            caption,
            schema,
            names,
            birth_dates: props.birth_date.iter().filter_map(|d| PartialDate::parse(d)).collect(),
            countries: normalise_countries(countries),
            topics: props.topics,
            datasets: raw.datasets,
        })
    }

    fn in_scope(&self, scope: Scope) -> bool {
        self.topics.iter().any(|topic| scope.covers(topic))
    }

    fn assess(&self, subject: &NormalisedName, known: &Known) -> Option<Finding> {
        let best = self.best_name(subject)?;
        let birth_date = self.birth_date_evidence(known.birth_date);
        let country = self.country_evidence(&known.countries);
        let strength = classify(best.score, best.exact, birth_date, country)?;
        Some(Finding {
            entity_id: self.id.clone(),
            entity_name: self.caption.clone(),
            matched_name: best.written.to_owned(),
            score: best.score,
            strength,
            topics: self.topics.clone(),
            datasets: self.datasets.clone(),
            birth_date_match: birth_date.as_match(),
            country_match: country.as_match(),
        })
    }

    /// The highest-scoring name that counts (an exact one over a merely
    /// perfect-scoring one).
    fn best_name(&self, subject: &NormalisedName) -> Option<NameMatch<'_>> {
        let mut best: Option<NameMatch<'_>> = None;
        for name in &self.names {
            let exact = subject.is_exactly(&name.normalised);
            let score = round3(subject.similarity(&name.normalised));
            if !exact && (score < POSSIBLE_NAME_SCORE || !every_token_has_a_counterpart(subject, &name.normalised)) {
                continue;
            }
            let better = match &best {
                None => true,
                Some(current) => (score, exact) > (current.score, current.exact),
            };
            if better {
                best = Some(NameMatch {
                    written: &name.written,
                    score,
                    exact,
                });
            }
        }
        best
    }

    fn birth_date_evidence(&self, subject: Option<PartialDate>) -> Evidence {
        let Some(subject) = subject else {
            return Evidence::Unknown;
        };
        // The most favourable of the listed dates: lists give several when the
        // sources disagree, and any of them may be the right one.
        self.birth_dates
            .iter()
            .map(|listed| listed.compare(subject))
            .min_by_key(|evidence| match evidence {
                Evidence::Corroborates => 0,
                Evidence::Differs => 1,
                Evidence::Contradicts => 2,
                Evidence::Unknown => 3,
            })
            .unwrap_or(Evidence::Unknown)
    }

    fn country_evidence(&self, subject: &[String]) -> Evidence {
        if subject.is_empty() || self.countries.is_empty() {
            Evidence::Unknown
        } else if subject.iter().any(|c| self.countries.contains(c)) {
            Evidence::Corroborates
        } else {
            Evidence::Contradicts
        }
    }
}

/// What a birth date or a country says about a name match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evidence {
    /// One side does not know.
    Unknown,
    Corroborates,
    /// Birth dates only: the same year, another month or day. Not the same
    /// person for sure, but too weak to rule a match out.
    Differs,
    Contradicts,
}

impl Evidence {
    fn as_match(self) -> Option<bool> {
        match self {
            Evidence::Unknown => None,
            Evidence::Corroborates => Some(true),
            Evidence::Differs | Evidence::Contradicts => Some(false),
        }
    }
}

/// The rule of the module documentation, step 3.
fn classify(score: f64, exact: bool, birth_date: Evidence, country: Evidence) -> Option<MatchStrength> {
    let corroborated = birth_date == Evidence::Corroborates || country == Evidence::Corroborates;
    let contradicted = birth_date == Evidence::Contradicts || country == Evidence::Contradicts;
    let by_name = if score >= STRONG_NAME_SCORE && corroborated {
        MatchStrength::Strong
    } else if score >= POSSIBLE_NAME_SCORE || exact {
        MatchStrength::Possible
    } else {
        return None;
    };
    let strength = match (by_name, contradicted) {
        (strength, false) => strength,
        (MatchStrength::Strong, true) => MatchStrength::Possible,
        (MatchStrength::Possible, true) if exact => MatchStrength::Possible,
        (MatchStrength::Possible, true) => return None,
    };
    if birth_date == Evidence::Differs {
        return Some(MatchStrength::Possible);
    }
    Some(strength)
}

/// Each significant token of the shorter name (of both, when they are as long)
/// must have a close counterpart among the significant tokens of the other:
/// "Example Star" is not "Acme Example Minerals SARL" because "star" looks like
/// "sarl".
fn every_token_has_a_counterpart(a: &NormalisedName, b: &NormalisedName) -> bool {
    let covered = |short: &[String], long: &[String]| {
        let long = significant(long);
        significant(short).into_iter().all(|token| {
            long.iter()
                .any(|other| strsim::jaro_winkler(token, other) >= TOKEN_FLOOR)
        })
    };
    let (ta, tb) = (a.tokens(), b.tokens());
    match ta.len().cmp(&tb.len()) {
        std::cmp::Ordering::Less => covered(ta, tb),
        std::cmp::Ordering::Greater => covered(tb, ta),
        std::cmp::Ordering::Equal => covered(ta, tb) && covered(tb, ta),
    }
}

/// A legal form or a particle.
fn is_particle(token: &str) -> bool {
    LEGAL_FORMS.contains(&token) || PARTICLES.contains(&token)
}

/// The tokens that say whose name it is: all but legal forms and particles,
/// unless that leaves nothing.
fn significant(tokens: &[String]) -> Vec<&String> {
    let significant: Vec<&String> = tokens.iter().filter(|t| !is_particle(t)).collect();
    if significant.is_empty() {
        tokens.iter().collect()
    } else {
        significant
    }
}

fn round3(score: f64) -> f64 {
    ((score * 1000.0).round() / 1000.0).clamp(0.0, 1.0)
}

fn normalise_countries<'a>(countries: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut normalised: Vec<String> = countries
        .into_iter()
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    normalised.sort_unstable();
    normalised.dedup();
    normalised
}

/// A birth date known to the year, the month or the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartialDate {
    year: i32,
    month: Option<u32>,
    day: Option<u32>,
}

impl PartialDate {
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (a time after a `T` is ignored).
    fn parse(text: &str) -> Option<PartialDate> {
        let date = text.trim().split('T').next()?;
        let mut parts = date.split('-');
        let year = parts.next().filter(|y| y.len() == 4)?.parse::<i32>().ok()?;
        let month = match parts.next() {
            None => None,
            Some(m) => Some(m.parse::<u32>().ok().filter(|m| (1..=12).contains(m))?),
        };
        let day = match parts.next() {
            None => None,
            Some(d) => {
                let day = d.parse::<u32>().ok()?;
                chrono::NaiveDate::from_ymd_opt(year, month?, day)?;
                Some(day)
            }
        };
        if parts.next().is_some() {
            return None;
        }
        Some(PartialDate { year, month, day })
    }

    fn compare(self, other: PartialDate) -> Evidence {
        let differ = |a: Option<u32>, b: Option<u32>| matches!((a, b), (Some(a), Some(b)) if a != b);
        if self.year != other.year {
            Evidence::Contradicts
        } else if differ(self.month, other.month) || differ(self.day, other.day) {
            Evidence::Differs
        } else {
            Evidence::Corroborates
        }
    }
}

/// A key of the candidate index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum IndexKey {
    /// The first letters of a token.
    Prefix(String),
    /// The first letters of a token's phonetic skeleton.
    Skeleton(String),
}

/// The keys of a name: two per significant token (every token, when the name
/// has only particles).
fn index_keys(name: &NormalisedName) -> Vec<IndexKey> {
    significant(name.tokens())
        .into_iter()
        .flat_map(|token| {
            [
                IndexKey::Prefix(token.chars().take(KEY_LENGTH).collect()),
                IndexKey::Skeleton(skeleton(token).chars().take(KEY_LENGTH).collect()),
            ]
        })
        .collect()
}

/// A rough phonetic form of a normalised (ASCII, lower-case) token, so that
/// transliteration variants share an index key: "wladimir" and "vladimir" are
/// both "vldmr", "yevgeny" and "evgeni" both "avgn".
fn skeleton(token: &str) -> String {
    let folded = token
        .replace("ph", "f")
        .replace("kh", "h")
        .replace("ch", "h")
        .replace('x', "ks");
    let mut skeleton = String::with_capacity(folded.len());
    for (position, c) in folded.chars().enumerate() {
        let c = match c {
            'w' => 'v',
            'j' | 'y' => 'i',
            'c' | 'q' => 'k',
            other => other,
        };
        let vowel = matches!(c, 'a' | 'e' | 'i' | 'o' | 'u');
        // A leading vowel is kept as one class (Yusuf, Jusuf, Usuf); later
        // vowels are where transliterations disagree most, so they go.
        let c = match (position, vowel) {
            (0, true) => 'a',
            (_, true) => continue,
            (_, false) => c,
        };
        if !skeleton.ends_with(c) {
            skeleton.push(c);
        }
    }
    skeleton
}

#[derive(Deserialize)]
struct RawEntity {
    id: String,
    schema: String,
    #[serde(default)]
    caption: Option<String>,
    #[serde(default)]
    properties: RawProperties,
    #[serde(default)]
    datasets: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProperties {
    #[serde(default)]
    name: Vec<String>,
    #[serde(default)]
    alias: Vec<String>,
    #[serde(default)]
    birth_date: Vec<String>,
    #[serde(default)]
    nationality: Vec<String>,
    #[serde(default)]
    citizenship: Vec<String>,
    #[serde(default)]
    country: Vec<String>,
    #[serde(default)]
    jurisdiction: Vec<String>,
    #[serde(default)]
    main_country: Vec<String>,
    #[serde(default)]
    topics: Vec<String>,
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use proptest::prelude::*;

    use super::*;

    static SAMPLE: LazyLock<ScreeningList> =
        LazyLock::new(|| ScreeningList::parse(SAMPLE_LIST).expect("the sample parses"));

    fn subject(name: &str, birth_date: Option<&str>, countries: &[&str], entity: SubjectKind) -> Subject {
        Subject {
            name: name.to_owned(),
            birth_date: birth_date.map(str::to_owned),
            countries: countries.iter().map(|c| (*c).to_owned()).collect(),
            entity,
        }
    }

    fn person(name: &str) -> Subject {
        subject(name, None, &[], SubjectKind::Person)
    }

    fn organization(name: &str) -> Subject {
        subject(name, None, &[], SubjectKind::Organization)
    }

    fn finding<'a>(findings: &'a [Finding], id: &str) -> Option<&'a Finding> {
        findings.iter().find(|f| f.entity_id == id)
    }

    fn strength_of(subject: &Subject, kind: CheckKind, id: &str) -> Option<MatchStrength> {
        finding(&SAMPLE.screen(subject, kind), id).map(|f| f.strength)
    }

    fn line(id: &str, name: &str, birth_date: Option<&str>, topic: &str) -> String {
        let properties = serde_json::json!({"name": [name], "birthDate": birth_date.into_iter().collect::<Vec<_>>(), "topics": [topic]});
        serde_json::json!({"id": id, "schema": "Person", "properties": properties}).to_string()
    }

    #[test]
    fn the_sample_parses_and_skips_unscreened_schemas() {
        // 31 lines, one of them a vessel.
        assert_eq!(SAMPLE.len(), 30);
        assert!(!SAMPLE.is_empty());
        assert!(SAMPLE.entities.iter().all(|e| e.id.starts_with("ex-")));
        assert!(ScreeningList::parse("").expect("empty").is_empty());
    }

    #[test]
    fn parsing_tolerates_blank_lines_and_missing_properties() {
        let text = "\n{\"id\":\"a\",\"schema\":\"Person\"}\n   \n{\"id\":\"b\",\"schema\":\"Company\",\"properties\":{\"name\":[\"B Ltd\"]}}\n";
        let list = ScreeningList::parse(text).expect("parses");
        assert_eq!(list.len(), 2);
        // Without a caption, the first name or else the id stands in.
        assert_eq!(list.entities[0].caption, "a");
        assert_eq!(list.entities[1].caption, "B Ltd");
    }

    #[test]
    fn a_line_that_is_not_an_entity_is_refused_with_its_number() {
        let good = line("a", "Anna Example", Some("1970"), "sanction");
        for (bad, expected_line) in [
            (format!("{good}\n\nnot json\n{good}"), 3),
            (format!("{good}\n[1, 2]"), 2),
            (r#"{"schema":"Person"}"#.to_owned(), 1),
            (
                format!(
                    "{good}\n{}",
                    r#"{"id":"x","schema":"Person","properties":{"name":"not a list"}}"#
                ),
                2,
            ),
        ] {
            match ScreeningList::parse(&bad) {
                Err(ListError::NotAnEntity { line, .. }) => assert_eq!(line, expected_line, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let error = ScreeningList::parse(&format!("{good}\n{}", r#"{"id":" ","schema":"Person"}"#)).unwrap_err();
        assert!(matches!(error, ListError::MissingId { line: 2 }));
        assert!(error.to_string().contains("line 2"));
    }

    #[test]
    fn partial_dates_parse_and_compare_at_the_precision_both_know() {
        let date = |s| PartialDate::parse(s).expect(s);
        assert_eq!(
            date("1961"),
            PartialDate {
                year: 1961,
                month: None,
                day: None
            }
        );
        assert_eq!(
            date("1961-05"),
            PartialDate {
                year: 1961,
                month: Some(5),
                day: None
            }
        );
        assert_eq!(
            date("1961-05-12"),
            PartialDate {
                year: 1961,
                month: Some(5),
                day: Some(12)
            }
        );
        assert_eq!(date("1961-05-12T00:00:00"), date("1961-05-12"));
        for bad in [
            "",
            "61",
            "1961-13",
            "1961-02-30",
            "1961-05-12-01",
            "circa 1961",
            "1961-5x",
        ] {
            assert_eq!(PartialDate::parse(bad), None, "{bad}");
        }
        assert_eq!(date("1961").compare(date("1961-05-12")), Evidence::Corroborates);
        assert_eq!(date("1961-05").compare(date("1961-05-12")), Evidence::Corroborates);
        assert_eq!(date("1961-06").compare(date("1961-05-12")), Evidence::Differs);
        assert_eq!(date("1961-05-13").compare(date("1961-05-12")), Evidence::Differs);
        assert_eq!(date("1962").compare(date("1961-05-12")), Evidence::Contradicts);

        // Read from a list: a month-precision date corroborates a full one.
        let milovac = subject("Dragan Milovac", Some("1972-08-19"), &[], SubjectKind::Person);
        let found = SAMPLE.screen(&milovac, CheckKind::Sanctions);
        let milovac = finding(&found, "ex-person-milovac").expect("found");
        assert_eq!(
            (milovac.strength, milovac.birth_date_match),
            (MatchStrength::Strong, Some(true))
        );
    }

    #[test]
    fn an_alias_in_another_script_makes_a_strong_match() {
        // Ukrainian Cyrillic: the alias, not the Russian-style name, matches exactly.
        let petrov = subject("Володимир Петров", Some("1961-05-12"), &[], SubjectKind::Person);
        let found = SAMPLE.screen(&petrov, CheckKind::Sanctions);
        let first = &found[0];
        assert_eq!(first.entity_id, "ex-person-petrov-v");
        assert_eq!(first.entity_name, "Vladimir Petrov");
        assert_eq!(first.matched_name, "Володимир Петров");
        assert_eq!((first.score, first.strength), (1.0, MatchStrength::Strong));
        assert_eq!((first.birth_date_match, first.country_match), (Some(true), None));
        assert_eq!(first.topics, ["sanction"]);
        assert_eq!(first.datasets, ["example_fictional_sanctions"]);

        // Arabic script, corroborated by the nationality (any case).
        let mansouri = subject("خالد المنصوري", None, &["AE"], SubjectKind::Person);
        let found = SAMPLE.screen(&mansouri, CheckKind::Sanctions);
        let first = &found[0];
        assert_eq!(
            (first.entity_id.as_str(), first.matched_name.as_str()),
            ("ex-person-al-mansouri", "خالد المنصوري")
        );
        assert_eq!(
            (first.strength, first.country_match),
            (MatchStrength::Strong, Some(true))
        );
    }

    #[test]
    fn corroboration_decides_between_possible_and_strong() {
        let jane = "ex-person-smith-jane";
        let pep = CheckKind::Pep;
        // The KYB example's beneficial owner: the name alone is only possible.
        assert_eq!(
            strength_of(&person("Jane Smith"), pep, jane),
            Some(MatchStrength::Possible)
        );
        let with_birth = subject("Jane Smith", Some("1975-03-14"), &[], SubjectKind::Person);
        assert_eq!(strength_of(&with_birth, pep, jane), Some(MatchStrength::Strong));
        let with_country = subject("SMITH, Jane", None, &["GB", "fr"], SubjectKind::Person);
        assert_eq!(strength_of(&with_country, pep, jane), Some(MatchStrength::Strong));
        // A close name that is not close enough for strong stays possible, corroborated or not.
        let heavy = subject("Khaled Almansuri", Some("1968-02-01"), &["ae"], SubjectKind::Person);
        let found = SAMPLE.screen(&heavy, CheckKind::Sanctions);
        let mansouri = finding(&found, "ex-person-al-mansouri").expect("found");
        assert!(
            mansouri.score >= POSSIBLE_NAME_SCORE && mansouri.score < STRONG_NAME_SCORE,
            "{}",
            mansouri.score
        );
        assert_eq!(mansouri.strength, MatchStrength::Possible);
        // The same year with another day neither corroborates nor rules out.
        let near_date = subject("Jane Smith", Some("1975-09-14"), &["gb"], SubjectKind::Person);
        let found = SAMPLE.screen(&near_date, pep);
        let smith = finding(&found, jane).expect("found");
        assert_eq!(
            (smith.strength, smith.birth_date_match),
            (MatchStrength::Possible, Some(false))
        );
    }

    #[test]
    fn contradictions_downgrade_unless_the_name_is_exact() {
        let petrov = "ex-person-petrov-v";
        let sanctions = CheckKind::Sanctions;
        let typo = |birth, countries: &[&str]| subject("Wladimir Petrow", birth, countries, SubjectKind::Person);
        assert_eq!(
            strength_of(&typo(None, &[]), sanctions, petrov),
            Some(MatchStrength::Possible)
        );
        assert_eq!(
            strength_of(&typo(Some("1961"), &[]), sanctions, petrov),
            Some(MatchStrength::Strong)
        );
        // Another birth year: possible drops out, strong (a country agrees) becomes possible.
        assert_eq!(strength_of(&typo(Some("1970-01-01"), &[]), sanctions, petrov), None);
        assert_eq!(
            strength_of(&typo(Some("1970-01-01"), &["ru"]), sanctions, petrov),
            Some(MatchStrength::Possible)
        );
        // Disjoint countries contradict too.
        assert_eq!(strength_of(&typo(None, &["fr", "de"]), sanctions, petrov), None);
        // An exact name is never dropped, whatever the list says besides.
        let exact = subject("PETROV Vladimir", Some("1970"), &["fr"], SubjectKind::Person);
        let found = SAMPLE.screen(&exact, sanctions);
        let f = finding(&found, petrov).expect("found");
        assert_eq!(
            (f.strength, f.birth_date_match, f.country_match),
            (MatchStrength::Possible, Some(false), Some(false))
        );
        let exact = subject("Jane Smith", Some("1980-01-01"), &[], SubjectKind::Person);
        assert_eq!(
            strength_of(&exact, CheckKind::Pep, "ex-person-smith-jane"),
            Some(MatchStrength::Possible)
        );
    }

    #[test]
    fn another_person_with_a_similar_name_is_not_matched() {
        // The KYB example's representative shares Jane's surname, and Jaro-Winkler
        // rates the names 0.88; the token floor keeps him off her record.
        assert!(crate::names::similarity("John Smith", "Jane Smith") >= POSSIBLE_NAME_SCORE);
        assert!(SAMPLE.screen(&person("John Smith"), CheckKind::Pep).is_empty());
        for other in ["Nikolai Petrov", "Anna Petrova", "Ivan Petrov"] {
            let found = SAMPLE.screen(&person(other), CheckKind::Sanctions);
            assert!(finding(&found, "ex-person-petrov-v").is_none(), "{other}: {found:?}");
        }
        let found = SAMPLE.screen(&person("Ivan Sorokin"), CheckKind::Sanctions);
        assert!(found.is_empty(), "{found:?}");
        assert!(SAMPLE.screen(&person(""), CheckKind::Sanctions).is_empty());
        assert!(SAMPLE.screen(&person("—"), CheckKind::Sanctions).is_empty());
    }

    #[test]
    fn each_check_sees_only_its_topics() {
        let pep = CheckKind::Pep;
        let sanctions = CheckKind::Sanctions;
        assert!(strength_of(&person("Jane Smith"), sanctions, "ex-person-smith-jane").is_none());
        assert!(strength_of(&person("Vladimir Petrov"), pep, "ex-person-petrov-v").is_none());
        // Relatives and close associates are part of PEP screening.
        assert!(strength_of(&person("Thomas Smith"), pep, "ex-person-smith-thomas").is_some());
        assert!(strength_of(&person("Thomas Smith"), sanctions, "ex-person-smith-thomas").is_none());
        // Linked to a sanctioned party, and debarred, are sanctions findings.
        assert!(strength_of(&person("Omar Zayani"), sanctions, "ex-person-zayani").is_some());
        assert!(strength_of(&person("Petra Novakova"), sanctions, "ex-person-novakova").is_some());
        // Both topics: found by both checks.
        assert!(strength_of(&person("Aleksandr Volkonsky"), pep, "ex-person-volkonsky").is_some());
        assert!(strength_of(&person("Alexander Volkonsky"), sanctions, "ex-person-volkonsky").is_some());
        // Crime and persons of interest are no check's business here, nor other kinds.
        for kind in [pep, sanctions, CheckKind::AdverseMedia, CheckKind::Registry] {
            assert!(SAMPLE.screen(&person("Samira Benali"), kind).is_empty());
            assert!(SAMPLE.screen(&person("Duncan Marsh"), kind).is_empty());
        }
        assert!(
            SAMPLE
                .screen(&person("Vladimir Petrov"), CheckKind::AdverseMedia)
                .is_empty()
        );
    }

    #[test]
    fn organisations_are_screened_against_organisations() {
        let sanctions = CheckKind::Sanctions;
        let found = SAMPLE.screen(&organization("STELLAR HORIZON SHIPPING LLC"), sanctions);
        let stellar = finding(&found, "ex-company-stellar-horizon").expect("found");
        // The legal forms differ, the names do not.
        assert!(stellar.score >= STRONG_NAME_SCORE, "{}", stellar.score);
        assert_eq!(stellar.strength, MatchStrength::Possible);
        let incorporated = subject("Stellar Horizon Shipping Ltd", None, &["AE"], SubjectKind::Organization);
        assert_eq!(
            strength_of(&incorporated, sanctions, "ex-company-stellar-horizon"),
            Some(MatchStrength::Strong)
        );
        // By its Arabic alias.
        assert!(
            strength_of(
                &organization("ستيلار هورايزن للشحن"),
                sanctions,
                "ex-company-stellar-horizon"
            )
            .is_some()
        );
        // Debarred, an Organization, a LegalEntity.
        assert!(
            strength_of(
                &organization("Example Dynamics Holding"),
                sanctions,
                "ex-company-example-dynamics"
            )
            .is_some()
        );
        assert!(
            strength_of(
                &organization("Borealis Example Foundation"),
                sanctions,
                "ex-org-borealis"
            )
            .is_some()
        );
        assert!(strength_of(&organization("Granite Example Ventures"), sanctions, "ex-legal-granite").is_some());
        // A legal entity may be a person too; a company may not; nor may a person be a company.
        assert!(strength_of(&person("Granite Example Ventures"), sanctions, "ex-legal-granite").is_some());
        assert!(
            SAMPLE
                .screen(&person("Stellar Horizon Shipping Ltd"), sanctions)
                .is_empty()
        );
        assert!(SAMPLE.screen(&organization("Vladimir Petrov"), sanctions).is_empty());
        // The vessel was skipped at parse time.
        assert!(SAMPLE.screen(&organization("Example Star"), sanctions).is_empty());
    }

    #[test]
    fn the_index_finds_reordered_transliterated_and_mistyped_names() {
        for name in [
            "Petrov, Vladimir",
            "Wladimir Petrow",
            "Vladmir Petorv",
            "Владимир Петров",
            "vladimir petrov",
        ] {
            let found = SAMPLE.screen(&person(name), CheckKind::Sanctions);
            assert_eq!(
                found.first().map(|f| f.entity_id.as_str()),
                Some("ex-person-petrov-v"),
                "{name}: {found:?}"
            );
        }
        for (name, id) in [
            ("Alexander Wolkonsky", "ex-person-volkonsky"),
            ("Khaled Al Mansuri", "ex-person-al-mansouri"),
            ("Mehmet YILMAZER", "ex-person-yilmazer"),
            ("Chidinma Okonkwo Adeyemi", "ex-person-okonkwo"),
            ("Rosa Quintero Garcia", "ex-person-garcia-ex-minister"),
            ("Nadiya Rakhimova", "ex-person-rahimova"),
        ] {
            let found = SAMPLE
                .screen(&person(name), CheckKind::Sanctions)
                .into_iter()
                .chain(SAMPLE.screen(&person(name), CheckKind::Pep))
                .collect::<Vec<_>>();
            assert!(finding(&found, id).is_some(), "{name}: {found:?}");
        }
    }

    #[test]
    fn keys_fold_transliteration_variants() {
        let key = |s: &str| skeleton(s);
        assert_eq!(key("wladimir"), key("vladimir"));
        assert_eq!(key("petrow"), key("petrov"));
        assert_eq!(key("yevgeny")[..3], key("evgeni")[..3]);
        assert_eq!(key("mohammed")[..3], key("muhammad")[..3]);
        assert_eq!(key("khalid"), key("chalid"));
        assert_eq!(key("alexander")[..3], key("aleksandr")[..3]);
        assert_eq!(key("yusuf"), key("jusuf"));
        // Legal forms and particles do not key a name that has anything else.
        let keys = index_keys(&NormalisedName::new("Al Stellar Ltd"));
        assert_eq!(keys, [IndexKey::Prefix("ste".into()), IndexKey::Skeleton("stl".into())]);
        assert_eq!(index_keys(&NormalisedName::new("Ltd")).len(), 2);
    }

    #[test]
    fn the_index_keeps_a_large_list_from_being_scored_whole() {
        // A deterministic synthetic list: 48 given names by 4096 made-up surnames.
        let given = [
            "Anna", "Boris", "Carla", "Dmitri", "Elena", "Farid", "Greta", "Hassan", "Irina", "Jonas", "Karim", "Lena",
            "Marco", "Nina", "Oskar", "Paula", "Rafael", "Sofia", "Tomas", "Ursula", "Viktor", "Wanda", "Yara",
            "Zoran", "Amir", "Bianca", "Cyril", "Dana", "Emil", "Fatima", "Gustav", "Helga", "Igor", "Julia", "Kenji",
            "Lars", "Maya", "Nikola", "Olga", "Pavel", "Rosa", "Stefan", "Tariq", "Uma", "Vera", "Walid", "Yusuf",
            "Zara",
        ];
        let syllables = [
            "ba", "ko", "mi", "ra", "ten", "lu", "dor", "sa", "ni", "gu", "vel", "zi", "ham", "pe", "ro", "ska",
        ];
        let mut lines = Vec::new();
        let mut seed: u64 = 7;
        for n in 0..20_000 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let pick = |shift: u32, len: usize| ((seed >> shift) as usize) % len;
            let surname: String = [pick(10, 16), pick(20, 16), pick(30, 16)]
                .iter()
                .map(|&i| syllables[i])
                .collect();
            let name = format!(
                "{} {}{}",
                given[pick(40, given.len())],
                &surname[..1].to_uppercase(),
                &surname[1..]
            );
            lines.push(line(&format!("syn-{n}"), &name, Some("1950"), "sanction"));
        }
        lines.push(line("target", "Vladimir Petrov", Some("1961-05-12"), "sanction"));
        let list = ScreeningList::parse(&lines.join("\n")).expect("parses");
        for name in ["Wladimir Petrow", "Petrov, Vladimir", "Vladmir Petorv"] {
            let normalised = NormalisedName::new(name);
            let candidates = list.candidates(&normalised);
            assert!(
                candidates.len() < list.len() / 10,
                "{name}: {} of {}",
                candidates.len(),
                list.len()
            );
            let found = list.screen(&person(name), CheckKind::Sanctions);
            assert_eq!(found.first().map(|f| f.entity_id.as_str()), Some("target"), "{name}");
        }
    }

    #[test]
    fn findings_are_ordered_strongest_first_and_capped() {
        // Two namesakes in the sample: the one whose birth year agrees comes first.
        let ivan = subject("Ivan Sergeyev", Some("1970-03-03"), &[], SubjectKind::Person);
        let found = SAMPLE.screen(&ivan, CheckKind::Sanctions);
        let order: Vec<_> = found.iter().map(|f| (f.entity_id.as_str(), f.strength)).collect();
        assert_eq!(
            order,
            [
                ("ex-person-sergeyev-1970", MatchStrength::Strong),
                ("ex-person-sergeyev-1985", MatchStrength::Possible)
            ]
        );

        let names = [
            "Ivan Sergeyev",
            "Ivan Sergeev",
            "Iwan Sergejew",
            "Ivan Sergeyeva",
            "Ivan Sergeyevich",
            "Ivan Sergeyeff",
            "Ivan Sergiyev",
            "Ivan Sergayev",
            "Ivan A Sergeyev",
            "Ivan Sergeyev Jr",
            "Ivan Sirgeyev",
            "Ivan Sergeyev",
            "Ivan Sergeyew",
            "Ivann Sergeyev",
        ];
        let text: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(n, name)| line(&format!("e{n:02}"), name, (n % 3 == 0).then_some("1970"), "sanction"))
            .collect();
        let list = ScreeningList::parse(&text.join("\n")).expect("parses");
        let found = list.screen(
            &subject("Ivan Sergeyev", Some("1970"), &[], SubjectKind::Person),
            CheckKind::Sanctions,
        );
        assert_eq!(found.len(), MAX_FINDINGS);
        for pair in found.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert!(
                a.strength > b.strength || (a.strength == b.strength && a.score >= b.score),
                "{found:?}"
            );
        }
        assert_eq!(found[0].strength, MatchStrength::Strong);
        assert_eq!(found[0].entity_id, "e00");
        // The exact namesake whose birth date is unknown is only possible, after the strong ones.
        assert!(finding(&found, "e11").is_some_and(|f| f.strength == MatchStrength::Possible));
    }

    #[test]
    fn findings_serialise_in_camel_case() {
        let found = SAMPLE.screen(&person("Jane Smith"), CheckKind::Pep);
        let json = serde_json::to_value(&found[0]).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({
                "entityId": "ex-person-smith-jane",
                "entityName": "Jane Smith",
                "matchedName": "Jane Smith",
                "score": 1.0,
                "strength": "possible",
                "topics": ["role.pep"],
                "datasets": ["example_fictional_peps"],
                "birthDateMatch": null,
                "countryMatch": null,
            })
        );
        let subject: Subject =
            serde_json::from_value(serde_json::json!({"name": "Jane Smith", "entity": "person"})).expect("subject");
        assert_eq!(subject, person("Jane Smith"));
    }

    /// A name as written on the sample, with the check and subject kind that see it.
    struct Case {
        id: String,
        written: String,
        kind: CheckKind,
        entity: SubjectKind,
    }

    static CASES: LazyLock<Vec<Case>> = LazyLock::new(|| {
        let mut cases = Vec::new();
        for entity in &SAMPLE.entities {
            let kinds = [CheckKind::Pep, CheckKind::Sanctions]
                .into_iter()
                .filter(|kind| Scope::of(*kind).is_some_and(|scope| entity.in_scope(scope)));
            let subject_kinds: &[SubjectKind] = match entity.schema {
                Schema::Person => &[SubjectKind::Person],
                Schema::Organization | Schema::Company => &[SubjectKind::Organization],
                Schema::LegalEntity => &[SubjectKind::Person, SubjectKind::Organization],
            };
            for kind in kinds {
                for &subject_kind in subject_kinds {
                    for name in &entity.names {
                        cases.push(Case {
                            id: entity.id.clone(),
                            written: name.written.clone(),
                            kind,
                            entity: subject_kind,
                        });
                    }
                }
            }
        }
        cases
    });

    /// An exact name, as words shuffled and each character's case flipped or not.
    fn exact_name() -> impl Strategy<Value = (usize, String)> {
        (0..CASES.len()).prop_flat_map(|i| {
            let words: Vec<String> = CASES[i].written.split_whitespace().map(str::to_owned).collect();
            let chars = CASES[i].written.chars().count();
            (
                Just(i),
                Just(words).prop_shuffle(),
                proptest::collection::vec(any::<bool>(), chars),
            )
                .prop_map(|(i, words, upper)| {
                    let mut flips = upper.into_iter().cycle();
                    let name: String = words
                        .join(" ")
                        .chars()
                        .flat_map(|c| {
                            if flips.next().unwrap_or(false) {
                                c.to_uppercase().collect::<Vec<_>>()
                            } else {
                                c.to_lowercase().collect::<Vec<_>>()
                            }
                        })
                        .collect();
                    (i, name)
                })
        })
    }

    /// A sample name with a few characters replaced, or anything at all.
    fn any_name() -> impl Strategy<Value = String> {
        let mutated = (
            0..CASES.len(),
            proptest::collection::vec((any::<usize>(), any::<char>()), 0..4),
        )
            .prop_map(|(i, edits)| {
                let mut chars: Vec<char> = CASES[i].written.chars().collect();
                for (at, c) in edits {
                    let len = chars.len();
                    if let Some(slot) = chars.get_mut(at % len.max(1)) {
                        *slot = c;
                    }
                }
                chars.into_iter().collect()
            });
        prop_oneof![mutated, "\\PC{0,40}"]
    }

    fn any_birth_date() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof![
            Just("1961-05-12".to_owned()),
            Just("1970".to_owned()),
            Just("1975-03".to_owned()),
            "(19[0-9]{2})(-0[1-9]){0,2}",
            "\\PC{0,10}",
        ])
    }

    fn any_countries() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(
            prop_oneof![Just("ru"), Just("GB"), Just("ae"), Just("fr"), Just("")],
            0..3,
        )
        .prop_map(|cs| cs.into_iter().map(str::to_owned).collect())
    }

    fn any_kind() -> impl Strategy<Value = CheckKind> {
        prop_oneof![
            Just(CheckKind::Pep),
            Just(CheckKind::Sanctions),
            Just(CheckKind::AdverseMedia),
            Just(CheckKind::Registry)
        ]
    }

    proptest! {
        #[test]
        fn findings_are_well_formed(
            name in any_name(),
            birth_date in any_birth_date(),
            countries in any_countries(),
            kind in any_kind(),
            organisation in any::<bool>(),
        ) {
            let entity = if organisation { SubjectKind::Organization } else { SubjectKind::Person };
            let found = SAMPLE.screen(&Subject { name, birth_date, countries, entity }, kind);
            prop_assert!(found.len() <= MAX_FINDINGS);
            for f in &found {
                prop_assert!((0.0..=1.0).contains(&f.score), "{f:?}");
                prop_assert_eq!(f.score, round3(f.score));
            }
            for pair in found.windows(2) {
                prop_assert!((pair[0].strength, pair[0].score) >= (pair[1].strength, pair[1].score), "{found:?}");
            }
        }

        #[test]
        fn an_exact_name_always_finds_its_entity(
            (case, name) in exact_name(),
            birth_date in any_birth_date(),
            countries in any_countries(),
        ) {
            let case = &CASES[case];
            let found = SAMPLE.screen(&Subject { name: name.clone(), birth_date, countries, entity: case.entity }, case.kind);
            let hit = finding(&found, &case.id);
            prop_assert!(hit.is_some(), "{name} ({}) not found: {found:?}", case.written);
            prop_assert_eq!(hit.map(|f| f.score), Some(1.0));
        }
    }
}
