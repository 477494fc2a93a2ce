//! The providers a check step can use, and the sandbox's magic names.
//!
//! - `korala-screening` (the default): the built-in PEP and sanctions
//!   screening against a FollowTheMoney list: the file `KORALA_SCREENING_LIST`
//!   names (a deployment points it at the OpenSanctions export it licenses),
//!   else the small fictional sample list shipped with the domain crate.
//! - any vendor `KORALA_CHECK_PROVIDERS` names, called over HTTP
//!   ([`HttpProvider`], its contract in [`super::http`]).
//!
//! Sandbox sessions (`ak_test_` keys) screen as live ones do, except for
//! these participant names, which force each branch so partners can test
//! every path and every webhook:
//!
//! | name contains | answer |
//! |---|---|
//! | `Sandbox Strong Match` | one strong match |
//! | `Sandbox Possible Match` | one possible match |
//! | `Sandbox Provider Error` | the provider fails every time (retried, then the check fails) |

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use korala_domain::screening::{Finding, MatchStrength, SAMPLE_LIST, ScreeningList, Subject};
use korala_domain::tenancy::Tenant;
use korala_domain::workflow::CheckKind;

pub mod vendor;

use self::vendor::HttpProvider;

/// The built-in provider's name, recorded on its checks.
pub const SCREENING: &str = "korala-screening";
/// Names the list file of the built-in provider.
pub const LIST_ENV: &str = "KORALA_SCREENING_LIST";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying: a timeout, an outage, a 5xx.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// No retry will help: the check names a provider this deployment has not.
    #[error("no provider named `{0}` is configured")]
    Unknown(String),
    /// No retry will help: the deployment has the vendor, but no operator
    /// enabled it for the session's organisation.
    #[error("provider `{0}` is not enabled for this organisation")]
    NotEnabled(String),
    /// No retry will help: the provider turned this request down (a 4xx
    /// other than 408 and 429), so asking again would be refused again.
    #[error("the provider refused the request: {0}")]
    Refused(String),
}

/// What a check asks of its provider: the kind of check, whom to screen,
/// and for whom (the tenant: an HTTP vendor is told the mode and an opaque
/// reference to the organisation).
#[derive(Debug, Clone, Copy)]
pub struct ScreenCall<'a> {
    pub kind: CheckKind,
    pub subject: &'a Subject,
    pub tenant: &'a Tenant,
}

#[async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> &str;
    /// Whether it is a vendor the organisation must have enabled (the
    /// built-in screening is every organisation's).
    fn is_vendor(&self) -> bool {
        true
    }
    async fn screen(&self, call: &ScreenCall<'_>) -> Result<Vec<Finding>, ProviderError>;
}

/// The built-in screening, over a list parsed once per process.
pub struct ScreeningProvider {
    list: Arc<ScreeningList>,
}

impl ScreeningProvider {
    pub fn new(list: ScreeningList) -> Self {
        Self { list: Arc::new(list) }
    }

    /// The list `KORALA_SCREENING_LIST` names, else the sample list.
    pub fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let list = match std::env::var_os(LIST_ENV) {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read the screening list {}: {e}", path.to_string_lossy()))?;
                ScreeningList::parse(&text)?
            }
            None => ScreeningList::parse(SAMPLE_LIST)?,
        };
        tracing::info!(entities = list.len(), "screening list loaded");
        Ok(Self::new(list))
    }
}

#[async_trait]
impl Provider for ScreeningProvider {
    fn name(&self) -> &str {
        SCREENING
    }

    fn is_vendor(&self) -> bool {
        false
    }

    async fn screen(&self, call: &ScreenCall<'_>) -> Result<Vec<Finding>, ProviderError> {
        Ok(self.list.screen(call.subject, call.kind))
    }
}

/// The providers of this deployment, by name.
pub struct Providers {
    screening: Arc<dyn Provider>,
    others: BTreeMap<String, Arc<dyn Provider>>,
}

impl Providers {
    /// Only the built-in screening (`screening` stands in for it).
    pub fn new(screening: Arc<dyn Provider>) -> Self {
        Self {
            screening,
            others: BTreeMap::new(),
        }
    }

    /// These providers and `provider` under `name`; under [`SCREENING`] it
    /// replaces the built-in screening.
    pub fn with(mut self, name: impl Into<String>, provider: Arc<dyn Provider>) -> Self {
        let name = name.into();
        if name == SCREENING {
            self.screening = provider;
        } else {
            self.others.insert(name, provider);
        }
        self
    }

    /// The built-in screening and the HTTP providers `KORALA_CHECK_PROVIDERS`
    /// configures, their secrets in variables (a local run). A bad
    /// configuration stops the start: a check naming a provider that
    /// silently failed to load would fail every session.
    pub fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        PendingProviders::from_env()?.with_secrets(&|_| None)
    }
    /// The provider a check step names (`None`: the built-in screening).
    pub fn get(&self, name: Option<&str>) -> Result<Arc<dyn Provider>, ProviderError> {
        match name {
            None | Some(SCREENING) => Ok(self.screening.clone()),
            Some(other) => self
                .others
                .get(other)
                .cloned()
                .ok_or_else(|| ProviderError::Unknown(other.to_owned())),
        }
    }
}

/// The sandbox's forced answer for this subject, if its name asks for one.
pub fn sandbox_answer(kind: CheckKind, subject: &Subject) -> Option<Result<Vec<Finding>, ProviderError>> {
    let forced = |strength| {
        Ok(vec![Finding {
            entity_id: format!("sandbox-{}", strength_name(strength)),
            entity_name: subject.name.clone(),
            matched_name: subject.name.clone(),
            score: 1.0,
            strength,
            topics: vec![
                match kind {
                    CheckKind::Pep => "role.pep",
                    _ => "sanction",
                }
                .to_owned(),
            ],
            datasets: vec!["korala_sandbox".to_owned()],
            birth_date_match: None,
            country_match: None,
        }])
    };
    let name = subject.name.to_ascii_lowercase();
    if name.contains("sandbox strong match") {
        Some(forced(MatchStrength::Strong))
    } else if name.contains("sandbox possible match") {
        Some(forced(MatchStrength::Possible))
    } else if name.contains("sandbox provider error") {
        Some(Err(ProviderError::Unavailable(
            "the sandbox provider fails for this name".into(),
        )))
    } else {
        None
    }
}

fn strength_name(strength: MatchStrength) -> &'static str {
    match strength {
        MatchStrength::Strong => "strong",
        MatchStrength::Possible => "possible",
    }
}

/// A deployed checks worker's providers before their secrets are read: the
/// screening list parsed and every vendor entry checked at init (a bad one
/// fails it), the secrets kept in Secrets Manager read on the first
/// invocation, with the worker's other clients.
pub struct PendingProviders {
    screening: Arc<dyn Provider>,
    entries: Vec<vendor::ProviderEntry>,
}

impl PendingProviders {
    pub fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Self::from_lookup(&|var| std::env::var(var).ok())
    }

    /// [`from_env`](Self::from_env), the vendors' entries read through
    /// `env` (the screening list still from the process's).
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self {
            screening: Arc::new(ScreeningProvider::from_env()?),
            entries: vendor::entries(env)?,
        })
    }

    /// The providers, each stored secret read once from Secrets Manager.
    pub async fn read(
        &self,
        aws: &crate::adapters::aws::Aws,
    ) -> Result<Providers, Box<dyn std::error::Error + Send + Sync>> {
        let mut stored = BTreeMap::new();
        for id in self.entries.iter().filter_map(|e| e.stored_secret()) {
            if !stored.contains_key(id) {
                stored.insert(id.to_owned(), crate::adapters::secrets::fetch(aws, id).await?);
            }
        }
        self.with_secrets(&|id| stored.get(id).cloned())
    }

    /// The providers, their secrets from variables or `stored` (by id).
    pub fn with_secrets(
        &self,
        stored: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Providers, Box<dyn std::error::Error + Send + Sync>> {
        let mut providers = Providers::new(self.screening.clone());
        for entry in self.entries.iter().cloned() {
            let provider = HttpProvider::new(entry.config(&|var| std::env::var(var).ok(), stored)?)?;
            tracing::info!(
                provider = provider.name(),
                host = provider.url().host().unwrap_or_default(),
                "HTTP check provider configured"
            );
            providers = providers.with(provider.name().to_owned(), Arc::new(provider));
        }
        Ok(providers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str);

    #[async_trait]
    impl Provider for Named {
        fn name(&self) -> &str {
            self.0
        }

        async fn screen(&self, _: &ScreenCall<'_>) -> Result<Vec<Finding>, ProviderError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn providers_are_found_by_the_name_a_check_step_gives() {
        let providers = Providers::new(Arc::new(Named("builtin"))).with("vendor", Arc::new(Named("vendor")));
        assert_eq!(providers.get(None).unwrap().name(), "builtin");
        assert_eq!(providers.get(Some(SCREENING)).unwrap().name(), "builtin");
        assert_eq!(providers.get(Some("vendor")).unwrap().name(), "vendor");
        assert_eq!(
            providers.get(Some("other")).err(),
            Some(ProviderError::Unknown("other".into()))
        );
        let replaced = providers.with(SCREENING, Arc::new(Named("stand-in")));
        assert_eq!(replaced.get(None).unwrap().name(), "stand-in");
    }
}
