//! What partners configure — configurations, workflow definitions, webhook
//! endpoints — is stored through one port, [`Documents`], so one case set
//! states its contract, and the suite runs it for each kind (a module of
//! tests a kind, see [`store_conformance_tests!`](crate::store_conformance_tests)).

use std::fmt::Debug;
use std::sync::Arc;

use korala_domain::catalog::Catalog;
use korala_domain::configuration::{Configuration, ConfigurationPatch};
use korala_domain::ids::WebhookEndpointId;
use korala_domain::ports::{RecordKind, Store, StoreError, VersionedRecord, VersionedRecords};
use korala_domain::tenancy::Tenant;
use korala_domain::webhooks::{UrlPolicy, WebhookEndpoint, WebhookEndpointDraft, WebhookEndpointPatch, WebhookEvent};
use korala_domain::workflow::StoredWorkflow;

use super::between_tenants;
use crate::support::{configuration, sandbox, stored_workflow, t0, tenant};

/// How the cases make documents of one kind.
pub trait Sample: VersionedRecord + Clone + PartialEq + Debug {
    /// The store's port for this kind.
    fn documents(store: &dyn Store) -> &dyn VersionedRecords<Self>;
    /// A new document of `tenant` whose key is made from `name` (lowercase
    /// letters and digits): the same name gives the same key in every
    /// tenant, and names sort as their keys do.
    fn make(tenant: &Tenant, name: &str) -> Self;
    /// The next version, changed as the API would change it.
    fn revised(&self, marker: &str) -> Self;
    /// The same document claiming another version (a stale or skipping write).
    fn at_version(&self, version: u64, marker: &str) -> Self;
}

impl Sample for Configuration {
    fn documents(store: &dyn Store) -> &dyn VersionedRecords<Self> {
        store.configurations()
    }

    fn make(tenant: &Tenant, name: &str) -> Self {
        configuration(tenant, name)
    }

    fn revised(&self, marker: &str) -> Self {
        let patch = ConfigurationPatch {
            name: Some(marker.to_owned()),
            ..ConfigurationPatch::default()
        };
        self.patch(
            patch,
            &Catalog::builtins(),
            self.updated_at + chrono::Duration::minutes(1),
        )
        .expect("a valid patch")
    }

    fn at_version(&self, version: u64, marker: &str) -> Self {
        Self {
            name: marker.to_owned(),
            version,
            ..self.clone()
        }
    }
}

impl Sample for StoredWorkflow {
    fn documents(store: &dyn Store) -> &dyn VersionedRecords<Self> {
        store.workflows()
    }

    fn make(tenant: &Tenant, name: &str) -> Self {
        stored_workflow(tenant, name)
    }

    fn revised(&self, marker: &str) -> Self {
        let mut next = self.at_version(self.version + 1, marker);
        next.updated_at = self.updated_at + chrono::Duration::minutes(1);
        next
    }

    fn at_version(&self, version: u64, marker: &str) -> Self {
        let mut other = self.clone();
        other.definition.name = marker.to_owned();
        other.version = version;
        other
    }
}

impl Sample for WebhookEndpoint {
    fn documents(store: &dyn Store) -> &dyn VersionedRecords<Self> {
        store.endpoints()
    }

    /// Every field set, none at its default, so every field must read back.
    /// The id is the name's (the API's ids are time-ordered, so their order
    /// is creation order).
    fn make(tenant: &Tenant, name: &str) -> Self {
        let id = WebhookEndpointId::parse(&format!("whe_{name}")).expect("an alphanumeric name");
        WebhookEndpointDraft {
            url: format!("https://hooks.example/{name}?tenant=1"),
            events: vec![
                WebhookEvent::SessionWorkflowFailed,
                WebhookEvent::SessionResolved,
                WebhookEvent::SessionExpired,
            ],
            enabled: false,
            description: Some("Back office, «ünïcode» included".into()),
        }
        .validate(
            id,
            tenant.clone(),
            format!("sealed:whsec_{name}"),
            UrlPolicy::Production,
            t0(),
        )
        .expect("a valid endpoint")
    }

    fn revised(&self, marker: &str) -> Self {
        let patch = WebhookEndpointPatch {
            url: Some(format!("https://hooks.example/{marker}")),
            ..WebhookEndpointPatch::default()
        };
        self.apply(
            patch,
            UrlPolicy::Production,
            self.updated_at + chrono::Duration::minutes(1),
        )
        .expect("a valid patch")
    }

    fn at_version(&self, version: u64, marker: &str) -> Self {
        Self {
            version,
            url: format!("https://hooks.example/{marker}"),
            ..self.clone()
        }
    }
}

/// A document of each other kind in `tenant`: a store may keep them beside
/// this kind's (DynamoDB does, in one partition), and must not list them.
async fn neighbours<D: Sample>(store: &dyn Store, tenant: &Tenant) {
    if D::KIND != RecordKind::Configuration {
        let config = Configuration::make(tenant, "neighbour");
        store.configurations().insert(&config).await.unwrap();
    }
    if D::KIND != RecordKind::Workflow {
        let workflow = StoredWorkflow::make(tenant, "neighbour");
        store.workflows().insert(&workflow).await.unwrap();
    }
    if D::KIND != RecordKind::WebhookEndpoint {
        let endpoint = WebhookEndpoint::make(tenant, "neighbour");
        store.endpoints().insert(&endpoint).await.unwrap();
    }
}

pub async fn round_trip<D: Sample>(store: Arc<dyn Store>) {
    let (name, documents) = (D::KIND.noun(), D::documents(&*store));
    let acme = tenant("acme");
    neighbours::<D>(&*store, &acme).await;
    let kyc = D::make(&acme, "kyc");
    let kyb = D::make(&acme, "kyb");
    documents.insert(&kyc).await.unwrap();
    documents.insert(&kyb).await.unwrap();
    assert_eq!(
        documents.get(&acme, kyc.key()).await,
        Ok(Some(kyc.clone())),
        "a {name} reads back"
    );
    let missing = D::make(&acme, "missing");
    assert_eq!(documents.get(&acme, missing.key()).await, Ok(None));
    assert_eq!(
        documents.list(&acme).await,
        Ok(vec![kyb.clone(), kyc.clone()]),
        "{name}s list, and only {name}s"
    );

    assert_eq!(documents.delete(&acme, kyc.key()).await, Ok(()));
    assert_eq!(
        documents.get(&acme, kyc.key()).await,
        Ok(None),
        "a deleted {name} is gone"
    );
    assert_eq!(documents.list(&acme).await, Ok(vec![kyb.clone()]));
    assert_eq!(
        documents.delete(&acme, kyc.key()).await,
        Err(StoreError::NotFound),
        "deleting a deleted {name}"
    );
    assert_eq!(
        documents.update(&kyc.revised("renamed")).await,
        Err(StoreError::NotFound),
        "updating a deleted {name}"
    );
    assert_eq!(
        documents.get(&acme, kyc.key()).await,
        Ok(None),
        "a refused update does not bring it back"
    );
    assert_eq!(
        documents.delete(&acme, missing.key()).await,
        Err(StoreError::NotFound),
        "deleting a {name} that was never stored"
    );

    documents.insert(&kyc).await.unwrap();
    assert_eq!(
        documents.get(&acme, kyc.key()).await,
        Ok(Some(kyc)),
        "a deleted {name}'s key can be used again"
    );
    assert_eq!(
        documents.get(&acme, kyb.key()).await,
        Ok(Some(kyb)),
        "the other {name} stays"
    );
}

pub async fn keys_are_unique_per_tenant<D: Sample>(store: Arc<dyn Store>) {
    between_tenants(&*store, keys_are_unique_between::<D>).await;
}

async fn keys_are_unique_between<D: Sample>(store: &dyn Store, acme: Tenant, globex: Tenant) {
    let (name, documents) = (D::KIND.noun(), D::documents(store));
    let original = D::make(&acme, "kyc");
    documents.insert(&original).await.unwrap();
    assert_eq!(
        documents.insert(&original.at_version(1, "impostor")).await,
        Err(StoreError::AlreadyExists),
        "a second {name} with the same key in the same tenant"
    );
    assert_eq!(
        documents.insert(&original.revised("newer")).await,
        Err(StoreError::AlreadyExists),
        "an insert never replaces a {name}, whatever its version"
    );
    assert_eq!(
        documents.get(&acme, original.key()).await,
        Ok(Some(original.clone())),
        "a refused insert leaves the {name} as it was"
    );

    let theirs = D::make(&globex, "kyc").at_version(1, "theirs");
    assert_eq!(
        documents.insert(&theirs).await,
        Ok(()),
        "another tenant may use the same {name} key"
    );
    assert_eq!(documents.get(&globex, theirs.key()).await, Ok(Some(theirs)));
    assert_eq!(documents.get(&acme, original.key()).await, Ok(Some(original)));
}

pub async fn updates_are_conditional<D: Sample>(store: Arc<dyn Store>) {
    let (name, documents) = (D::KIND.noun(), D::documents(&*store));
    let acme = tenant("acme");
    let v1 = D::make(&acme, "kyc");
    assert_eq!(v1.version(), 1);
    documents.insert(&v1).await.unwrap();

    let v2 = v1.revised("second");
    assert_eq!(v2.version(), 2);
    assert_eq!(
        documents.update(&v2).await,
        Ok(()),
        "updating the {name} from the version read"
    );
    assert_eq!(documents.get(&acme, v1.key()).await, Ok(Some(v2.clone())));

    assert_eq!(
        documents.update(&v1.revised("lost")).await,
        Err(StoreError::Conflict),
        "a second update from version 1 of the {name}"
    );
    for (version, what) in [
        (4, "an update that skips a version"),
        (2, "an update that does not advance the version"),
        (0, "version 0 follows no version"),
    ] {
        assert_eq!(
            documents.update(&v2.at_version(version, "stale")).await,
            Err(StoreError::Conflict),
            "{what} of the {name}"
        );
    }
    assert_eq!(
        documents.get(&acme, v1.key()).await,
        Ok(Some(v2.clone())),
        "refused updates leave the {name} as it was"
    );
    assert_eq!(
        documents.list(&acme).await,
        Ok(vec![v2.clone()]),
        "the list holds the latest version, once"
    );

    let v3 = v2.revised("third");
    assert_eq!(documents.update(&v3).await, Ok(()));
    assert_eq!(documents.get(&acme, v1.key()).await, Ok(Some(v3)));

    let ghost = D::make(&acme, "ghost").revised("ghost");
    assert_eq!(
        documents.update(&ghost).await,
        Err(StoreError::NotFound),
        "updating a {name} that was never stored"
    );
    assert_eq!(
        documents.get(&acme, ghost.key()).await,
        Ok(None),
        "a refused update creates nothing"
    );
}

pub async fn are_isolated_by_tenant<D: Sample>(store: Arc<dyn Store>) {
    between_tenants(&*store, are_isolated_between::<D>).await;
}

async fn are_isolated_between<D: Sample>(store: &dyn Store, acme: Tenant, globex: Tenant) {
    let (name, documents) = (D::KIND.noun(), D::documents(store));
    let ours = D::make(&acme, "kyc");
    let also_ours = D::make(&acme, "kyb");
    let theirs = D::make(&globex, "pep");
    for document in [&ours, &also_ours, &theirs] {
        documents.insert(document).await.unwrap();
    }

    assert_eq!(
        documents.get(&globex, ours.key()).await,
        Ok(None),
        "another tenant's {name} is invisible"
    );
    assert_eq!(documents.get(&acme, theirs.key()).await, Ok(None));
    assert_eq!(documents.list(&acme).await, Ok(vec![also_ours, ours.clone()]));
    assert_eq!(documents.list(&globex).await, Ok(vec![theirs.clone()]));
    assert_eq!(documents.list(&tenant("initech")).await, Ok(vec![]));
    assert_eq!(documents.list(&sandbox("initech")).await, Ok(vec![]));

    // The same key in the other tenant, as a caller there would send it.
    let hijacked = D::make(&globex, "kyc").revised("hijacked");
    assert_eq!(
        documents.update(&hijacked).await,
        Err(StoreError::NotFound),
        "updating another tenant's {name}"
    );
    assert_eq!(
        documents.delete(&globex, ours.key()).await,
        Err(StoreError::NotFound),
        "deleting another tenant's {name}"
    );
    assert_eq!(
        documents.get(&acme, ours.key()).await,
        Ok(Some(ours)),
        "the owner's {name} is untouched"
    );
    assert_eq!(
        documents.list(&globex).await,
        Ok(vec![theirs]),
        "the refused writes added nothing to the other tenant"
    );
}

pub async fn list_in_key_order<D: Sample>(store: Arc<dyn Store>) {
    let documents = D::documents(&*store);
    let acme = tenant("acme");
    let made: Vec<D> = (0..16).map(|i| D::make(&acme, &format!("k{i:02}"))).collect();
    // Writes arrive in another order: the key decides.
    for i in [7, 0, 15, 3, 12, 1, 9, 4, 14, 2, 11, 5, 13, 6, 10, 8] {
        documents.insert(&made[i]).await.unwrap();
    }
    assert_eq!(documents.list(&acme).await, Ok(made.clone()), "in key order");

    // An update keeps a document in its place.
    let mut expected = made.clone();
    expected[0] = made[0].revised("moved");
    documents.update(&expected[0]).await.unwrap();
    assert_eq!(documents.list(&acme).await, Ok(expected.clone()));

    documents.delete(&acme, made[7].key()).await.unwrap();
    expected.remove(7);
    assert_eq!(documents.list(&acme).await, Ok(expected));
}

pub async fn creations_past_the_quota_are_refused<D: Sample>(store: Arc<dyn Store>) {
    let documents = D::documents(&*store);
    let quota = D::KIND.quota();
    let (acme, acme_test) = (tenant("acme"), sandbox("acme"));
    let made: Vec<D> = (0..quota.max()).map(|i| D::make(&acme, &format!("q{i:03}"))).collect();
    for document in &made {
        documents.insert(document).await.unwrap();
    }
    let one_more = D::make(&acme, "more");
    assert_eq!(documents.insert(&one_more).await, Err(StoreError::LimitReached(quota)));
    assert_eq!(
        documents.list(&acme).await.map(|all| all.len()),
        Ok(made.len()),
        "nothing written"
    );
    assert_eq!(
        documents.insert(&made[0]).await,
        Err(StoreError::AlreadyExists),
        "a taken key is still taken, at the quota or not"
    );
    // The other mode counts on its own; a delete frees a place.
    documents.insert(&D::make(&acme_test, "more")).await.unwrap();
    documents.delete(&acme, made[0].key()).await.unwrap();
    documents.insert(&one_more).await.unwrap();
    assert_eq!(
        documents.insert(&D::make(&acme, "another")).await,
        Err(StoreError::LimitReached(quota))
    );
}

pub async fn creations_racing_for_the_last_place_let_one_in<D: Sample>(store: Arc<dyn Store>) {
    const RACERS: usize = 8;
    let quota = D::KIND.quota();
    let acme = tenant("acme");
    for i in 0..quota.max() - 1 {
        let document = D::make(&acme, &format!("q{i:03}"));
        D::documents(&*store).insert(&document).await.unwrap();
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let document = D::make(&acme, &format!("racer{i}"));
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                D::documents(&*store).insert(&document).await
            })
        })
        .collect();
    let mut admitted = 0;
    for racer in racers {
        match racer.await.expect("the racer finishes") {
            Ok(()) => admitted += 1,
            Err(StoreError::LimitReached(refused)) if refused == quota => {}
            other => panic!("a racer answered {other:?}"),
        }
    }
    assert_eq!(admitted, 1);
    assert_eq!(
        D::documents(&*store).list(&acme).await.map(|all| all.len()),
        Ok(quota.max() as usize)
    );
}
