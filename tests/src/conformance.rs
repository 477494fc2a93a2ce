//! The behaviour every `Store` adapter must show, whatever engine is behind
//! it. Each case takes a fresh, empty store, so a failure names the one
//! contract that broke. Adapters run the cases with
//! [`store_conformance_tests!`](crate::store_conformance_tests) (one test per
//! case) or [`run_all`].
//!
//! The cases drive the store with sessions made by the real domain (created,
//! started, submitted, resolved), so what is stored is exactly what the
//! handlers will store.

use std::future::Future;
use std::sync::Arc;

use functions::adapters::store::AppStore;
use functions::web::idempotency::records::{Answer, Creation, IdempotencyClaim, StoredResponse};
use korala_domain::Timestamp;
use korala_domain::configuration::Configuration;
use korala_domain::delivery::{AttemptOutcome, DeliveryState, WebhookDelivery};
use korala_domain::events::Event;
use korala_domain::ids::{SessionId, WebhookDeliveryId, WebhookEndpointId};
use korala_domain::limits::{Admit, Bucket, Quota, Rate};
use korala_domain::ports::{DeliveryPage, DeliveryQuery, FirstUse, Position, SessionQuery, Store, StoreError};
use korala_domain::session::{Decision, Session, SessionStatus, SessionSummary};
use korala_domain::tenancy::Tenant;
use korala_domain::transition::Transition;

use crate::support::{
    SequentialIds, api_key, completed_session, configuration, create_session, minutes, org, organization, partner,
    reviewed_configuration, sandbox, seconds, start, stored_workflow, submit, t0, tenant, webhook_endpoint,
};

/// What a test needs from whatever set a store up: the store itself (the
/// domain's ports and the idempotency records, as the functions hold it). A
/// fixture may hold more (a temporary directory, a table to drop) and clean
/// it up when dropped after the case.
pub trait Fixture {
    fn store(&self) -> Arc<dyn AppStore>;
}

impl Fixture for Arc<dyn AppStore> {
    fn store(&self) -> Arc<dyn AppStore> {
        Arc::clone(self)
    }
}

pub mod versioned;

/// Calls `$callback! { $args; cases: […]; documents: […]; document_cases: […]; }`
/// with the name of every case, every kind of versioned record, and every
/// case of [`versioned`], which runs for each kind: the one list both [`run_all`]
/// and the per-case test generator read.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ([$($callback:tt)+] [$($args:tt)*]) => {
        $($callback)+! {
            $($args)*;
            cases: [
                tenancy_round_trip,
                webhook_deliveries_round_trip,
                webhook_delivery_updates_are_conditional,
                webhook_deliveries_are_isolated_by_tenant,
                webhook_deliveries_list_newest_first_in_pages,
                session_commits_round_trip,
                session_history_is_every_committed_event_oldest_first,
                stale_commits_conflict_and_change_nothing,
                sessions_are_isolated_by_tenant,
                list_sessions_filters_newest_first,
                list_sessions_pages_by_number,
                list_sessions_cursor_visits_every_session_once,
                sessions_due_are_the_overdue_sessions_waiting_for_the_end_user,
                idempotency_claim_complete_and_replay,
                idempotency_release_lets_a_retry_run,
                idempotency_keys_are_scoped_to_the_tenant,
                idempotency_abandoned_claims_can_be_taken_over,
                keyed_creations_are_written_with_their_answer,
                keyed_creations_that_fail_write_neither,
                keyed_creations_past_the_quota_write_neither,
                concurrent_commits_from_one_version_let_exactly_one_win,
                rates_admit_a_burst_then_the_rate,
                concurrent_requests_never_pass_more_than_the_burst,
                a_signature_is_used_once_until_it_expires,
                concurrent_uses_of_one_signature_let_exactly_one_through,
                organizations_round_trip,
                api_keys_are_listed_by_organization_and_revoked,
            ];
            documents: [
                configurations: ::korala_domain::configuration::Configuration,
                workflows: ::korala_domain::workflow::StoredWorkflow,
                webhook_endpoints: ::korala_domain::webhooks::WebhookEndpoint,
            ];
            document_cases: [
                round_trip,
                keys_are_unique_per_tenant,
                updates_are_conditional,
                are_isolated_by_tenant,
                list_in_key_order,
                creations_past_the_quota_are_refused,
                creations_racing_for_the_last_place_let_one_in,
            ];
        }
    };
}

/// Generates one `#[tokio::test]` per conformance case, and a module per
/// kind of versioned record with a test per case of [`versioned`]
/// (`configurations::round_trip`, …). `$setup` is a closure returning a
/// future of `Option` of a [`Fixture`] (an `Arc<dyn AppStore>` will do); it
/// runs once per case, and `None` skips the case (the setup says why: its
/// engine is not here, see [`engines`](crate::engines)). Invoke it inside
/// its own module per adapter so the test names do not clash.
#[macro_export]
macro_rules! store_conformance_tests {
    ($setup:expr) => {
        /// The adapter's setup, named so that the modules of document
        /// cases reach it from below (`super::…` in `$setup` means this
        /// module).
        async fn conformance_fixture() -> Option<impl $crate::conformance::Fixture> {
            ($setup)().await
        }
        $crate::__conformance_cases!([$crate::store_conformance_tests] [@generate]);
    };
    (@generate;
        cases: [$($case:ident),* $(,)?];
        documents: [$($kind:ident: $document:ty),* $(,)?];
        document_cases: $document_cases:tt;
    ) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(fixture) = conformance_fixture().await else {
                    return;
                };
                $crate::conformance::$case($crate::conformance::Fixture::store(&fixture)).await;
                drop(fixture);
            }
        )*
        $(
            mod $kind {
                $crate::store_conformance_tests!(@documents $document; $document_cases);
            }
        )*
    };
    (@documents $document:ty; [$($case:ident),* $(,)?]) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(fixture) = super::conformance_fixture().await else {
                    return;
                };
                let store = $crate::conformance::Fixture::store(&fixture);
                $crate::conformance::versioned::$case::<$document>(store).await;
                drop(fixture);
            }
        )*
    };
}

/// Runs every case in turn, each on a store of its own from `make_store`.
pub async fn run_all<F, Fut>(make_store: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn AppStore>>,
{
    macro_rules! run_each {
        ($make:ident;
            cases: [$($case:ident),* $(,)?];
            documents: [$($kind:ident: $document:ty),* $(,)?];
            document_cases: $document_cases:tt;
        ) => {
            $( $case($make().await).await; )*
            $( run_each!(@documents $make $document; $document_cases); )*
        };
        (@documents $make:ident $document:ty; [$($case:ident),* $(,)?]) => {
            $( versioned::$case::<$document>($make().await).await; )*
        };
    }
    crate::__conformance_cases!([run_each][make_store]);
}

// ---------------------------------------------------------------------------
// Tenancy

pub async fn tenancy_round_trip(store: Arc<dyn Store>) {
    let acme = org("acme");
    let globex = org("globex");
    store.insert_organization(&organization(&acme, "Acme")).await.unwrap();
    store
        .insert_organization(&organization(&globex, "Globex"))
        .await
        .unwrap();
    assert_eq!(
        store.insert_organization(&organization(&acme, "Acme again")).await,
        Err(StoreError::AlreadyExists),
        "an organisation id is taken once"
    );

    let test_key = api_key("ak_test_0001", &acme);
    let mut revoked = api_key("ak_live_0001", &acme);
    revoked.revoked_at = Some(minutes(5));
    let other = api_key("ak_test_0002", &globex);
    for key in [&test_key, &revoked, &other] {
        store.insert_api_key(key).await.unwrap();
    }
    assert_eq!(store.get_api_key("ak_test_0001").await, Ok(Some(test_key.clone())));
    assert_eq!(store.get_api_key("ak_live_0001").await, Ok(Some(revoked)));
    assert_eq!(store.get_api_key("ak_test_0002").await, Ok(Some(other)));
    assert_eq!(store.get_api_key("ak_test_missing").await, Ok(None));

    assert_eq!(
        store.insert_api_key(&api_key("ak_test_0001", &globex)).await,
        Err(StoreError::AlreadyExists),
        "a key id is unique across organisations"
    );
    assert_eq!(
        store.get_api_key("ak_test_0001").await,
        Ok(Some(test_key)),
        "a refused insert leaves the key as it was"
    );
}

// ---------------------------------------------------------------------------
// Configurations, workflow definitions and webhook endpoints: one contract,
// run for each kind (see `documents`).

/// Runs `case` between two organisations, then between the two modes of a
/// third one: test mode and live mode are as separate as two organisations.
async fn between_tenants<'s, S: ?Sized, F, Fut>(store: &'s S, case: F)
where
    F: Fn(&'s S, Tenant, Tenant) -> Fut,
    Fut: Future<Output = ()>,
{
    case(store, tenant("acme"), tenant("globex")).await;
    case(store, tenant("umbrella"), sandbox("umbrella")).await;
}

// ---------------------------------------------------------------------------
// Webhook deliveries: org-scoped documents under a global id that begins with
// their event's (so ids are time-ordered), replaced version by version, and
// listed per endpoint newest first.

/// A delivery whose log holds every kind of attempt over two rounds, ending
/// dead-lettered: every field of the document set.
fn attempted(delivery: &WebhookDelivery, from: Timestamp) -> WebhookDelivery {
    let at = |s: i64| from + chrono::Duration::seconds(s);
    let (d, _) = delivery.record(AttemptOutcome::Responded { status_code: 503 }, 1_200, at(0));
    let (d, _) = d.record(
        AttemptOutcome::Unreachable {
            error: korala_domain::delivery::Unreachable::Tls,
        },
        30_000,
        at(5),
    );
    let (d, _) = d.record(AttemptOutcome::Responded { status_code: 204 }, 85, at(305));
    let d = d.redeliver(at(3_600)).expect("a delivered delivery can be redelivered");
    let (d, _) = d.record(
        AttemptOutcome::Skipped {
            reason: "the endpoint is disabled".into(),
        },
        0,
        at(3_600),
    );
    d
}

/// The next version of a delivery: one more failed attempt.
fn retried(delivery: &WebhookDelivery, at: Timestamp) -> WebhookDelivery {
    delivery
        .record(AttemptOutcome::Responded { status_code: 500 }, 40, at)
        .0
}

/// The same delivery claiming another version (a stale or skipping write).
fn delivery_at_version(delivery: &WebhookDelivery, version: u64) -> WebhookDelivery {
    WebhookDelivery {
        version,
        ..retried(delivery, delivery.updated_at)
    }
}

fn page(limit: u32, after: Option<&WebhookDelivery>) -> DeliveryQuery {
    DeliveryQuery {
        limit,
        after: after.map(|d| d.id.clone()),
    }
}

/// An endpoint's log page as the ids it shows, and whether more follow.
async fn log(
    store: &dyn Store,
    org: &Tenant,
    endpoint: &WebhookEndpointId,
    query: DeliveryQuery,
) -> (Vec<WebhookDeliveryId>, bool) {
    let DeliveryPage { deliveries, has_more } = store
        .deliveries()
        .list(org, endpoint, &query)
        .await
        .expect("the delivery log reads");
    (deliveries.into_iter().map(|d| d.id).collect(), has_more)
}

fn delivery_ids(deliveries: &[&WebhookDelivery]) -> Vec<WebhookDeliveryId> {
    deliveries.iter().map(|d| d.id.clone()).collect()
}

pub async fn webhook_deliveries_round_trip(store: Arc<dyn Store>) {
    let store = &*store;
    let ids = SequentialIds::new();
    let acme = tenant("acme");
    let endpoint = webhook_endpoint(&acme, "https://hooks.acme.example/a", t0(), &ids);
    store.endpoints().insert(&endpoint).await.unwrap();
    // The organisation's session, whose events a store may keep near its
    // deliveries (DynamoDB lists both from one index).
    let [created, completed] = completed_session(&configuration(&acme, "kyc"), "user-1", t0(), &ids);
    commit(store, &created).await;
    commit(store, &completed).await;
    let event = completed
        .events
        .iter()
        .find(|e| e.kind.webhook().is_some())
        .expect("a completed session has events partners receive");

    let fresh = WebhookDelivery::for_event(event, &endpoint, minutes(2)).expect("a webhook event");
    let tried = attempted(&WebhookDelivery::test(&endpoint, &ids, minutes(3)), minutes(3));
    assert!(matches!(tried.state, DeliveryState::Failed { .. }));
    assert_eq!((tried.round, tried.attempts.len()), (2, 4));
    store.deliveries().insert(&fresh).await.unwrap();
    store.deliveries().insert(&tried).await.unwrap();

    assert_eq!(
        store.deliveries().get(&acme, &fresh.id).await,
        Ok(Some(fresh.clone())),
        "a delivery reads back"
    );
    assert_eq!(
        store.deliveries().get(&acme, &tried.id).await,
        Ok(Some(tried.clone())),
        "every field of its log reads back"
    );
    assert_eq!(
        store.deliveries().get(&acme, &WebhookDeliveryId::generate(&ids)).await,
        Ok(None)
    );
    assert_eq!(
        store.deliveries().list(&acme, &endpoint.id, &page(10, None)).await,
        Ok(DeliveryPage {
            deliveries: vec![tried.clone(), fresh.clone()],
            has_more: false,
        }),
        "the log lists whole deliveries"
    );
    assert_eq!(
        store
            .sessions()
            .list(&acme, &query(10, Position::Page(1)))
            .await
            .map(|p| p.sessions),
        Ok(vec![SessionSummary::from(&completed.session)]),
        "sessions list, and no delivery"
    );
    assert_eq!(
        store.endpoints().list(&acme).await,
        Ok(vec![endpoint.clone()]),
        "endpoints list, and no delivery"
    );

    assert_eq!(
        store.deliveries().insert(&fresh).await,
        Err(StoreError::AlreadyExists),
        "the same event fanned out to the same endpoint again"
    );
    assert_eq!(
        store.deliveries().insert(&retried(&fresh, minutes(4))).await,
        Err(StoreError::AlreadyExists),
        "an insert never replaces a delivery, whatever its version"
    );
    assert_eq!(
        store.deliveries().get(&acme, &fresh.id).await,
        Ok(Some(fresh)),
        "a refused insert leaves the delivery as it was"
    );
}

pub async fn webhook_delivery_updates_are_conditional(store: Arc<dyn Store>) {
    let store = &*store;
    let ids = SequentialIds::new();
    let acme = tenant("acme");
    let endpoint = webhook_endpoint(&acme, "https://hooks.acme.example/", t0(), &ids);
    let v1 = WebhookDelivery::test(&endpoint, &ids, t0());
    assert_eq!(v1.version, 1);
    store.deliveries().insert(&v1).await.unwrap();

    let v2 = retried(&v1, seconds(1));
    assert_eq!(v2.version, 2);
    assert_eq!(
        store.deliveries().update(&v2).await,
        Ok(()),
        "updating from the version read"
    );
    assert_eq!(store.deliveries().get(&acme, &v1.id).await, Ok(Some(v2.clone())));

    let lost = v1
        .record(
            AttemptOutcome::Unreachable {
                error: korala_domain::delivery::Unreachable::Timeout,
            },
            10,
            seconds(2),
        )
        .0;
    assert_eq!(
        store.deliveries().update(&lost).await,
        Err(StoreError::Conflict),
        "a second attempt recorded from version 1"
    );
    for (version, what) in [
        (4, "an update that skips a version"),
        (2, "an update that does not advance the version"),
        (0, "version 0 follows no version"),
    ] {
        assert_eq!(
            store.deliveries().update(&delivery_at_version(&v2, version)).await,
            Err(StoreError::Conflict),
            "{what}"
        );
    }
    assert_eq!(
        store.deliveries().get(&acme, &v1.id).await,
        Ok(Some(v2.clone())),
        "refused updates leave the delivery as it was"
    );

    let (v3, _) = v2.record(AttemptOutcome::Responded { status_code: 200 }, 12, seconds(6));
    assert_eq!(store.deliveries().update(&v3).await, Ok(()));
    let v4 = v3
        .redeliver(minutes(10))
        .expect("a delivered delivery can be redelivered");
    assert_eq!(store.deliveries().update(&v4).await, Ok(()), "a redelivery");
    assert_eq!(store.deliveries().get(&acme, &v1.id).await, Ok(Some(v4.clone())));

    let ghost = WebhookDelivery::test(&endpoint, &ids, t0());
    assert_eq!(
        store.deliveries().update(&retried(&ghost, seconds(1))).await,
        Err(StoreError::NotFound),
        "updating a delivery that was never stored"
    );
    assert_eq!(
        store.deliveries().get(&acme, &ghost.id).await,
        Ok(None),
        "a refused update creates nothing"
    );
    assert_eq!(
        store.deliveries().list(&acme, &endpoint.id, &page(10, None)).await,
        Ok(DeliveryPage {
            deliveries: vec![v4],
            has_more: false,
        }),
        "the log holds the latest version, once"
    );
}

pub async fn webhook_deliveries_are_isolated_by_tenant(store: Arc<dyn Store>) {
    let ids = SequentialIds::new();
    between_tenants(&*store, |store, acme, globex| {
        webhook_deliveries_are_isolated_between(store, acme, globex, &ids)
    })
    .await;
}

async fn webhook_deliveries_are_isolated_between(store: &dyn Store, acme: Tenant, globex: Tenant, ids: &SequentialIds) {
    let ours_endpoint = webhook_endpoint(&acme, "https://hooks.acme.example/", t0(), ids);
    let theirs_endpoint = webhook_endpoint(&globex, "https://hooks.globex.example/", t0(), ids);
    let ours = WebhookDelivery::test(&ours_endpoint, ids, t0());
    let also_ours = WebhookDelivery::test(&ours_endpoint, ids, seconds(1));
    let theirs = WebhookDelivery::test(&theirs_endpoint, ids, seconds(2));
    for delivery in [&ours, &also_ours, &theirs] {
        store.deliveries().insert(delivery).await.unwrap();
    }

    assert_eq!(
        store.deliveries().get(&globex, &ours.id).await,
        Ok(None),
        "another tenant's delivery is invisible"
    );
    assert_eq!(store.deliveries().get(&acme, &theirs.id).await, Ok(None));
    assert_eq!(
        log(store, &acme, &ours_endpoint.id, page(10, None)).await,
        (delivery_ids(&[&also_ours, &ours]), false)
    );
    assert_eq!(
        log(store, &globex, &ours_endpoint.id, page(10, None)).await,
        (vec![], false),
        "another tenant's endpoint has no log"
    );
    assert_eq!(
        log(store, &acme, &theirs_endpoint.id, page(10, None)).await,
        (vec![], false)
    );

    let hijacked = WebhookDelivery {
        tenant: globex.clone(),
        ..retried(&ours, seconds(5))
    };
    assert_eq!(
        store.deliveries().update(&hijacked).await,
        Err(StoreError::NotFound),
        "updating another tenant's delivery"
    );
    assert_eq!(
        store.deliveries().get(&acme, &ours.id).await,
        Ok(Some(ours.clone())),
        "the owner's delivery is untouched"
    );
    assert_eq!(store.deliveries().get(&globex, &ours.id).await, Ok(None));
    assert_eq!(
        log(store, &globex, &ours_endpoint.id, page(10, None)).await,
        (vec![], false),
        "the refused write added nothing to the other tenant"
    );
    assert_eq!(
        log(store, &globex, &theirs_endpoint.id, page(10, None)).await,
        (delivery_ids(&[&theirs]), false)
    );
}

pub async fn webhook_deliveries_list_newest_first_in_pages(store: Arc<dyn Store>) {
    let store = &*store;
    let ids = SequentialIds::new();
    let acme = tenant("acme");
    let endpoint = webhook_endpoint(&acme, "https://hooks.acme.example/a", t0(), &ids);
    let other = webhook_endpoint(&acme, "https://hooks.acme.example/b", t0(), &ids);
    store.endpoints().insert(&endpoint).await.unwrap();
    store.endpoints().insert(&other).await.unwrap();
    // Made in turns for the two endpoints, so their ids interleave.
    let (mut ours, mut others) = (Vec::new(), Vec::new());
    for i in 0..7 {
        ours.push(WebhookDelivery::test(&endpoint, &ids, seconds(i)));
        others.push(WebhookDelivery::test(&other, &ids, seconds(i)));
    }
    // Writes arrive in another order: the id decides.
    for i in [4, 0, 6, 2, 5, 1, 3] {
        store.deliveries().insert(&ours[i]).await.unwrap();
        store.deliveries().insert(&others[6 - i]).await.unwrap();
    }
    let newest: Vec<&WebhookDelivery> = ours.iter().rev().collect();
    let expected = delivery_ids(&newest);

    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let (shown, more) = log(store, &acme, &endpoint.id, page(3, after)).await;
        after = shown.last().and_then(|id| ours.iter().find(|d| &d.id == id));
        pages.push((shown, more));
        if !more || pages.len() > 5 {
            break;
        }
    }
    assert_eq!(
        pages,
        vec![
            (expected[0..3].to_vec(), true),
            (expected[3..6].to_vec(), true),
            (expected[6..7].to_vec(), false),
        ],
        "pages of three, newest first, each after the previous page's last"
    );
    assert_eq!(
        log(store, &acme, &endpoint.id, page(7, None)).await,
        (expected.clone(), false),
        "nothing follows a page that holds the oldest delivery"
    );
    assert_eq!(
        log(store, &acme, &endpoint.id, page(6, None)).await,
        (expected[0..6].to_vec(), true)
    );
    assert_eq!(
        log(store, &acme, &endpoint.id, page(3, Some(&ours[0]))).await,
        (vec![], false),
        "nothing is older than the oldest"
    );
    assert_eq!(
        log(store, &acme, &endpoint.id, page(10, Some(&others[3]))).await,
        (expected[3..7].to_vec(), false),
        "a cursor from another endpoint's log positions by id"
    );
    assert_eq!(
        log(store, &acme, &other.id, page(10, None)).await,
        (delivery_ids(&others.iter().rev().collect::<Vec<_>>()), false),
        "each endpoint lists its own deliveries"
    );
    assert_eq!(
        log(store, &acme, &WebhookEndpointId::generate(&ids), page(10, None)).await,
        (vec![], false)
    );

    // An update keeps a delivery in its place.
    let updated = retried(&ours[2], minutes(5));
    store.deliveries().update(&updated).await.unwrap();
    let mut whole: Vec<WebhookDelivery> = newest.into_iter().cloned().collect();
    whole[4] = updated;
    assert_eq!(
        store.deliveries().list(&acme, &endpoint.id, &page(10, None)).await,
        Ok(DeliveryPage {
            deliveries: whole.clone(),
            has_more: false,
        })
    );

    store.endpoints().delete(&acme, &endpoint.id).await.unwrap();
    assert_eq!(
        store.deliveries().list(&acme, &endpoint.id, &page(10, None)).await,
        Ok(DeliveryPage {
            deliveries: whole,
            has_more: false,
        }),
        "deleting an endpoint keeps its log"
    );
}

// ---------------------------------------------------------------------------
// Sessions and their history

async fn commit(store: &dyn Store, transition: &Transition) {
    store
        .sessions()
        .commit(transition)
        .await
        .unwrap_or_else(|e| panic!("committing version {}: {e}", transition.session.version));
}

async fn history(store: &dyn Store, org: &Tenant, id: &SessionId) -> Vec<Event> {
    store.sessions().list_events(org, id).await.expect("the history reads")
}

fn events_of(transitions: &[&Transition]) -> Vec<Event> {
    transitions.iter().flat_map(|t| t.events.iter().cloned()).collect()
}

pub async fn session_commits_round_trip(store: Arc<dyn Store>) {
    let store = &*store;
    let ids = SequentialIds::new();
    let acme = tenant("acme");
    let config = configuration(&acme, "kyc");

    let created = create_session(&config, "user-1", t0(), 60, &ids);
    assert_eq!(created.expected_version(), None);
    commit(store, &created).await;
    let id = created.session.id.clone();
    assert_eq!(
        store.sessions().get(&acme, &id).await,
        Ok(Some(created.session.clone()))
    );
    assert_eq!(history(store, &acme, &id).await, created.events);
    assert_eq!(
        store.sessions().commit(&created).await,
        Err(StoreError::AlreadyExists),
        "creating the same session twice"
    );
    assert_eq!(
        store.sessions().get(&acme, &id).await,
        Ok(Some(created.session.clone()))
    );
    assert_eq!(history(store, &acme, &id).await, created.events);

    let started = start(&created.session, minutes(1), &ids);
    commit(store, &started).await;
    let submitted = submit(&started.session, minutes(2), &ids);
    assert_eq!(submitted.session.status, SessionStatus::Completed);
    commit(store, &submitted).await;

    assert_eq!(
        store.sessions().get(&acme, &id).await,
        Ok(Some(submitted.session.clone()))
    );
    assert_eq!(
        history(store, &acme, &id).await,
        events_of(&[&created, &started, &submitted])
    );
    assert_eq!(
        store
            .sessions()
            .find_by_token_hash(&created.session.access_token.hash)
            .await,
        Ok(Some(submitted.session.clone())),
        "the access token finds the session's latest version"
    );
    let listed = store
        .sessions()
        .list(&acme, &query(10, Position::Page(1)))
        .await
        .expect("the sessions list");
    let summary = SessionSummary::from(&submitted.session);
    assert_eq!(
        (summary.resolution, summary.workflows_completed),
        (Some(Decision::Approved), 1),
        "the summary shows the outcome"
    );
    assert_eq!(
        listed.sessions,
        vec![summary],
        "a listing shows the summary of the session's latest version"
    );
    assert!(!listed.has_more);
    assert_eq!(store.sessions().find_by_token_hash("hash-unknown").await, Ok(None));
    assert_eq!(
        store
            .sessions()
            .get(&acme, &SessionId::parse("ses_unknown").unwrap())
            .await,
        Ok(None)
    );
    assert_eq!(
        history(store, &acme, &SessionId::parse("ses_unknown").unwrap()).await,
        vec![]
    );
}

pub async fn session_history_is_every_committed_event_oldest_first(store: Arc<dyn Store>) {
    let store = &*store;
    let ids = SequentialIds::new();
    let acme = tenant("acme");
    let config = reviewed_configuration(&acme, "kyc-reviewed");

    let created = create_session(&config, "user-1", t0(), 60, &ids);
    commit(store, &created).await;
    // A submission on a created session starts it too: one transition, many events.
    let submitted = submit(&created.session, minutes(1), &ids);
    assert_eq!(submitted.session.status, SessionStatus::PendingReview);
    assert!(submitted.events.len() > 2, "one transition carries several events");
    commit(store, &submitted).await;
    let resolved = submitted
        .session
        .resolve(Decision::Approved, "Looks right", partner(), minutes(2), &ids)
        .expect("the partner resolves");
    assert_eq!(resolved.session.status, SessionStatus::Completed);
    commit(store, &resolved).await;

    // Another session's history must not leak in.
    let unrelated = create_session(&config, "user-2", minutes(3), 60, &ids);
    commit(store, &unrelated).await;

    let id = &created.session.id;
    let events = history(store, &acme, id).await;
    assert_eq!(events, events_of(&[&created, &submitted, &resolved]));
    let order: Vec<(u64, u32)> = events.iter().map(|e| (e.version, e.sequence)).collect();
    let mut sorted = order.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(order, sorted, "ordered by (version, sequence), each once");
    assert_eq!(
        store.sessions().get(&acme, id).await,
        Ok(Some(resolved.session.clone()))
    );
    assert_eq!(
        store.sessions().get_with_events(&acme, id).await,
        Ok(Some((resolved.session.clone(), events))),
        "the session and its history, read together"
    );
    assert_eq!(
        store.sessions().get_with_events(&tenant("globex"), id).await,
        Ok(None),
        "another organisation's session is not there"
    );
    let missing = korala_domain::ids::SessionId::generate(&ids);
    assert_eq!(store.sessions().get_with_events(&acme, &missing).await, Ok(None));
}

pub async fn stale_commits_conflict_and_change_nothing(store: Arc<dyn Store>) {
    let store = &*store;
    let ids = SequentialIds::new();
    let acme = tenant("acme");
    let config = configuration(&acme, "kyc");

    let created = create_session(&config, "user-1", t0(), 60, &ids);
    commit(store, &created).await;
    let started = start(&created.session, minutes(1), &ids);
    commit(store, &started).await;
    let id = created.session.id.clone();

    // Made from version 1 while version 2 was being committed.
    let stale = created
        .session
        .resolve(Decision::Rejected, "Too late", partner(), minutes(2), &ids)
        .expect("the partner resolves");
    assert_eq!(stale.expected_version(), Some(1));
    assert_eq!(store.sessions().commit(&stale).await, Err(StoreError::Conflict));
    assert_eq!(
        store.sessions().get(&acme, &id).await,
        Ok(Some(started.session.clone())),
        "a conflicting commit leaves the session as it was"
    );
    assert_eq!(
        history(store, &acme, &id).await,
        events_of(&[&created, &started]),
        "a conflicting commit writes no event"
    );

    // The same change made again from what is stored applies.
    let fresh = started
        .session
        .resolve(Decision::Rejected, "In time", partner(), minutes(3), &ids)
        .expect("the partner resolves");
    commit(store, &fresh).await;
    assert_eq!(store.sessions().get(&acme, &id).await, Ok(Some(fresh.session.clone())));
    assert_eq!(
        store.sessions().commit(&fresh).await,
        Err(StoreError::Conflict),
        "the same transition cannot apply twice"
    );
    assert_eq!(
        history(store, &acme, &id).await,
        events_of(&[&created, &started, &fresh])
    );

    // A change to a session that was never stored has nothing to apply to.
    let ghost = create_session(&config, "user-2", t0(), 60, &ids);
    let ghost_started = start(&ghost.session, minutes(1), &ids);
    assert_eq!(store.sessions().commit(&ghost_started).await, Err(StoreError::Conflict));
    assert_eq!(store.sessions().get(&acme, &ghost.session.id).await, Ok(None));
    assert_eq!(history(store, &acme, &ghost.session.id).await, vec![]);
    assert_eq!(
        store
            .sessions()
            .find_by_token_hash(&ghost.session.access_token.hash)
            .await,
        Ok(None)
    );
}

pub async fn sessions_are_isolated_by_tenant(store: Arc<dyn Store>) {
    let ids = SequentialIds::new();
    between_tenants(&*store, |store, acme, globex| {
        sessions_are_isolated_between(store, acme, globex, &ids)
    })
    .await;
}

async fn sessions_are_isolated_between(store: &dyn Store, acme: Tenant, globex: Tenant, ids: &SequentialIds) {
    let ours = create_session(&configuration(&acme, "kyc"), "user-1", t0(), 60, ids);
    let theirs = create_session(&configuration(&globex, "kyc"), "user-1", t0(), 60, ids);
    commit(store, &ours).await;
    commit(store, &theirs).await;

    let id = &ours.session.id;
    assert_eq!(store.sessions().get(&globex, id).await, Ok(None));
    assert_eq!(history(store, &globex, id).await, vec![]);
    assert_eq!(store.sessions().get(&acme, id).await, Ok(Some(ours.session.clone())));
    assert_eq!(store.sessions().get(&acme, &theirs.session.id).await, Ok(None));
    // Every listing (all, by end user, by status) shows the tenant's own
    // sessions only, though both have the same end user.
    for (who, session) in [(&acme, &ours.session), (&globex, &theirs.session)] {
        let listings = [
            query(10, Position::Page(1)),
            SessionQuery {
                external_user_id: Some("user-1".into()),
                ..query(10, Position::Page(1))
            },
            SessionQuery {
                status: Some(SessionStatus::Created),
                ..query(10, Position::Page(1))
            },
        ];
        for listing in listings {
            let page = store.sessions().list(who, &listing).await.unwrap();
            assert_eq!(ids_of(&page.sessions), vec![session.id.clone()], "{who} {listing:?}");
        }
    }
    // The token is the end user's only credential, so it finds the session
    // whatever its tenant.
    assert_eq!(
        store
            .sessions()
            .find_by_token_hash(&theirs.session.access_token.hash)
            .await,
        Ok(Some(theirs.session.clone()))
    );
}

// ---------------------------------------------------------------------------
// Listing sessions

fn query(limit: u32, position: Position) -> SessionQuery {
    SessionQuery {
        external_user_id: None,
        status: None,
        limit,
        position,
    }
}

fn ids_of(sessions: &[SessionSummary]) -> Vec<SessionId> {
    sessions.iter().map(|s| s.id.clone()).collect()
}

/// What a listing shows of these sessions, newest first: the reverse of
/// creation order.
fn newest_first(sessions: &[&Session]) -> Vec<SessionSummary> {
    sessions.iter().rev().map(|s| SessionSummary::from(*s)).collect()
}

pub async fn list_sessions_filters_newest_first(store: Arc<dyn Store>) {
    let store = &*store;
    let ids = SequentialIds::new();
    let acme = tenant("acme");
    let globex = tenant("globex");
    let config = configuration(&acme, "kyc");

    let mut stored = Vec::new();
    for (i, user) in ["user-a", "user-b", "user-a", "user-b", "user-a"]
        .into_iter()
        .enumerate()
    {
        let created = create_session(&config, user, t0(), 60, &ids);
        commit(store, &created).await;
        // The third and fourth move on, so statuses differ.
        let session = if i == 2 || i == 3 {
            let started = start(&created.session, minutes(1), &ids);
            commit(store, &started).await;
            started.session
        } else {
            created.session
        };
        stored.push(session);
        let elsewhere = create_session(&configuration(&globex, "kyc"), user, t0(), 60, &ids);
        commit(store, &elsewhere).await;
    }
    let [s1, s2, s3, s4, s5] = &stored[..] else {
        unreachable!("five sessions")
    };

    let all = store
        .sessions()
        .list(&acme, &query(50, Position::Page(1)))
        .await
        .unwrap();
    assert_eq!(
        all.sessions,
        newest_first(&[s1, s2, s3, s4, s5]),
        "every session, newest first"
    );
    assert!(!all.has_more);

    let by_user = SessionQuery {
        external_user_id: Some("user-a".into()),
        ..query(50, Position::Page(1))
    };
    let page = store.sessions().list(&acme, &by_user).await.unwrap();
    assert_eq!(page.sessions, newest_first(&[s1, s3, s5]), "filtered by externalUserId");
    assert!(!page.has_more);

    let by_status = SessionQuery {
        status: Some(SessionStatus::InProgress),
        ..query(50, Position::Page(1))
    };
    let page = store.sessions().list(&acme, &by_status).await.unwrap();
    assert_eq!(page.sessions, newest_first(&[s3, s4]), "filtered by status");

    let both = SessionQuery {
        external_user_id: Some("user-a".into()),
        status: Some(SessionStatus::Created),
        ..query(50, Position::Page(1))
    };
    let page = store.sessions().list(&acme, &both).await.unwrap();
    assert_eq!(page.sessions, newest_first(&[s1, s5]), "filtered by user and status");

    let none = SessionQuery {
        status: Some(SessionStatus::Completed),
        ..query(50, Position::Page(1))
    };
    let page = store.sessions().list(&acme, &none).await.unwrap();
    assert_eq!(page.sessions, vec![]);
    assert!(!page.has_more);

    let unknown_user = SessionQuery {
        external_user_id: Some("user-z".into()),
        ..query(50, Position::Page(1))
    };
    assert_eq!(
        store.sessions().list(&acme, &unknown_user).await.unwrap().sessions,
        vec![]
    );

    let theirs = store
        .sessions()
        .list(&globex, &query(50, Position::Page(1)))
        .await
        .unwrap();
    assert_eq!(theirs.sessions.len(), 5, "each organisation sees its own");
    assert!(theirs.sessions.iter().all(|s| s.tenant == globex));
    let nobody = store
        .sessions()
        .list(&tenant("initech"), &query(50, Position::Page(1)))
        .await
        .unwrap();
    assert_eq!(nobody.sessions, vec![]);
    assert!(!nobody.has_more);
}

pub async fn list_sessions_pages_by_number(store: Arc<dyn Store>) {
    let store = &*store;
    let ids = SequentialIds::new();
    let acme = tenant("acme");
    let config = configuration(&acme, "kyc");
    let mut created = Vec::new();
    for i in 0..7 {
        let t = create_session(&config, if i % 2 == 0 { "even" } else { "odd" }, t0(), 60, &ids);
        commit(store, &t).await;
        created.push(t.session);
        // Noise in another organisation.
        commit(
            store,
            &create_session(&configuration(&tenant("globex"), "kyc"), "even", t0(), 60, &ids),
        )
        .await;
    }
    let expected = ids_of(&newest_first(&created.iter().collect::<Vec<_>>()));

    let mut pages = Vec::new();
    for n in 1..=4 {
        let page = store
            .sessions()
            .list(&acme, &query(3, Position::Page(n)))
            .await
            .unwrap();
        pages.push((ids_of(&page.sessions), page.has_more));
    }
    assert_eq!(
        pages,
        vec![
            (expected[0..3].to_vec(), true),
            (expected[3..6].to_vec(), true),
            (expected[6..7].to_vec(), false),
            (vec![], false),
        ],
        "pages of three, newest first"
    );

    let exact = store
        .sessions()
        .list(&acme, &query(7, Position::Page(1)))
        .await
        .unwrap();
    assert_eq!(ids_of(&exact.sessions), expected, "a page exactly the size of the list");
    assert!(!exact.has_more, "nothing follows a page that holds the last session");
    let one_short = store
        .sessions()
        .list(&acme, &query(6, Position::Page(1)))
        .await
        .unwrap();
    assert_eq!(ids_of(&one_short.sessions), expected[0..6].to_vec());
    assert!(one_short.has_more);

    let even = SessionQuery {
        external_user_id: Some("even".into()),
        ..query(2, Position::Page(2))
    };
    let page = store.sessions().list(&acme, &even).await.unwrap();
    // "even" holds sessions 0, 2, 4, 6: newest first 6, 4 | 2, 0.
    assert_eq!(ids_of(&page.sessions), vec![expected[4].clone(), expected[6].clone()]);
    assert!(!page.has_more);
}

pub async fn list_sessions_cursor_visits_every_session_once(store: Arc<dyn Store>) {
    let store = &*store;
    let ids = SequentialIds::new();
    let acme = tenant("acme");
    let globex = tenant("globex");
    let config = configuration(&acme, "kyc");
    let mut created = Vec::new();
    for i in 0..12 {
        let user = if i % 2 == 0 { "user-a" } else { "user-b" };
        let t = create_session(&config, user, t0(), 60, &ids);
        commit(store, &t).await;
        created.push(t.session);
        if i % 4 == 0 {
            commit(
                store,
                &create_session(&configuration(&globex, "kyc"), user, t0(), 60, &ids),
            )
            .await;
        }
    }

    async fn walk(store: &dyn Store, org: &Tenant, first: SessionQuery) -> Vec<(Vec<SessionId>, bool)> {
        let mut pages = Vec::new();
        let mut q = first;
        loop {
            let page = store.sessions().list(org, &q).await.unwrap();
            let has_more = page.has_more;
            let last = page.sessions.last().map(|s| s.id.clone());
            pages.push((ids_of(&page.sessions), has_more));
            assert!(pages.len() <= 20, "the cursor never reaches the end");
            match (has_more, last) {
                (true, Some(last)) => q.position = Position::After(last),
                (true, None) => panic!("an empty page says more follow"),
                (false, _) => return pages,
            }
        }
    }

    let expected = ids_of(&newest_first(&created.iter().collect::<Vec<_>>()));
    let pages = walk(store, &acme, query(5, Position::Page(1))).await;
    let sizes: Vec<(usize, bool)> = pages.iter().map(|(p, more)| (p.len(), *more)).collect();
    assert_eq!(sizes, vec![(5, true), (5, true), (2, false)]);
    let visited: Vec<SessionId> = pages.into_iter().flat_map(|(p, _)| p).collect();
    assert_eq!(visited, expected, "every session once, newest first");

    // Six sessions for user-a in pages of three: the second page is full and last.
    let user_a = SessionQuery {
        external_user_id: Some("user-a".into()),
        ..query(3, Position::Page(1))
    };
    let pages = walk(store, &acme, user_a).await;
    let expected_a: Vec<SessionId> = created
        .iter()
        .rev()
        .filter(|s| s.external_user_id == "user-a")
        .map(|s| s.id.clone())
        .collect();
    assert_eq!(expected_a.len(), 6);
    assert_eq!(
        pages,
        vec![(expected_a[0..3].to_vec(), true), (expected_a[3..6].to_vec(), false)]
    );

    // A cursor from one organisation shows nothing of another's sessions.
    let from_acme = SessionQuery {
        position: Position::After(expected[0].clone()),
        ..query(50, Position::Page(1))
    };
    let theirs = store.sessions().list(&globex, &from_acme).await.unwrap();
    assert!(theirs.sessions.iter().all(|s| s.tenant == globex));
    assert_eq!(theirs.sessions.len(), 3);
}

// ---------------------------------------------------------------------------
// The expiry sweep

pub async fn sessions_due_are_the_overdue_sessions_waiting_for_the_end_user(store: Arc<dyn Store>) {
    let store = &*store;
    let ids = SequentialIds::new();
    let acme = tenant("acme");
    let config = configuration(&acme, "kyc");
    let reviewed = reviewed_configuration(&acme, "kyc-reviewed");
    let theirs = configuration(&tenant("globex"), "kyc");

    async fn created(store: &dyn Store, config: &Configuration, minutes: u32, ids: &SequentialIds) -> Transition {
        let t = create_session(config, "user", t0(), minutes, ids);
        commit(store, &t).await;
        t
    }

    // Created, due at t0+10.
    let a = created(store, &config, 10, &ids).await.session;
    // In progress, due at t0+20.
    let b = created(store, &config, 20, &ids).await;
    let b = start(&b.session, minutes(1), &ids);
    commit(store, &b).await;
    let b = b.session;
    assert_eq!(b.status, SessionStatus::InProgress);
    // Completed before its deadline at t0+5.
    let c = created(store, &config, 5, &ids).await;
    let c = submit(&c.session, minutes(1), &ids);
    assert_eq!(c.session.status, SessionStatus::Completed);
    commit(store, &c).await;
    // Waiting for the partner's review, deadline t0+5: the partner's to close.
    let d = created(store, &reviewed, 5, &ids).await;
    let d = submit(&d.session, minutes(1), &ids);
    assert_eq!(d.session.status, SessionStatus::PendingReview);
    commit(store, &d).await;
    // Not due yet at t0+60.
    let _e = created(store, &config, 60, &ids).await;
    // Another organisation's, due at t0+15: the sweep covers every tenant.
    let f = created(store, &theirs, 15, &ids).await.session;
    // Due exactly at the sweep's instant.
    let g = created(store, &config, 30, &ids).await.session;
    // Already expired.
    let h = created(store, &config, 1, &ids).await;
    let h = h
        .session
        .expire(minutes(2), &ids)
        .expect("the session expires")
        .expect("the session is overdue");
    commit(store, &h).await;

    let now = minutes(30);
    let due = store.sessions().due(now, 100).await.unwrap();
    assert_eq!(
        due,
        vec![a.clone(), f.clone(), b.clone(), g.clone()],
        "overdue created and in-progress sessions, earliest deadline first"
    );
    assert!(due.iter().all(|s| s.is_overdue(now)));

    assert_eq!(
        store.sessions().due(now, 2).await.unwrap(),
        vec![a, f],
        "at most `limit`, the most overdue first"
    );
    assert_eq!(store.sessions().due(minutes(9), 100).await.unwrap(), vec![]);
    assert_eq!(store.sessions().due(t0(), 100).await.unwrap(), vec![]);
}

// ---------------------------------------------------------------------------
// Idempotency keys

fn answer<'a>(tenant: &'a Tenant, key: &'a str, claimed_at: Timestamp, response: &'a StoredResponse) -> Answer<'a> {
    Answer {
        tenant,
        key,
        claimed_at,
        response,
    }
}

fn response(status: u16, body: &str) -> StoredResponse {
    StoredResponse {
        status,
        body: body.to_owned(),
        location: Some(format!("/api/v1/things/{status}")),
    }
}

pub async fn idempotency_claim_complete_and_replay(store: Arc<dyn AppStore>) {
    let acme = tenant("acme");
    let claim = |fingerprint: &'static str, at| {
        let store = Arc::clone(&store);
        let acme = acme.clone();
        async move { store.claim_idempotency_key(&acme, "key-1", fingerprint, at).await }
    };
    assert_eq!(claim("fp-1", t0()).await, Ok(IdempotencyClaim::Acquired));
    assert_eq!(
        claim("fp-1", seconds(1)).await,
        Ok(IdempotencyClaim::InProgress),
        "a retry while the first request runs"
    );
    assert_eq!(
        claim("fp-2", seconds(1)).await,
        Ok(IdempotencyClaim::Mismatch),
        "another request with the key while the first runs"
    );

    let created = response(201, r#"{"id":"ses_1"}"#);
    assert_eq!(
        store
            .complete_idempotency_key(&answer(&acme, "key-1", t0(), &created))
            .await,
        Ok(())
    );
    assert_eq!(
        store
            .complete_idempotency_key(&answer(&acme, "key-1", t0(), &created))
            .await,
        Err(StoreError::NotFound),
        "a claim is completed once"
    );
    assert_eq!(
        claim("fp-1", seconds(2)).await,
        Ok(IdempotencyClaim::Completed(created.clone())),
        "a retry replays the response"
    );
    assert_eq!(claim("fp-2", seconds(2)).await, Ok(IdempotencyClaim::Mismatch));
    assert_eq!(
        claim("fp-1", minutes(60)).await,
        Ok(IdempotencyClaim::Completed(created)),
        "a completed request is never taken for an abandoned one"
    );

    assert_eq!(
        store
            .complete_idempotency_key(&answer(&acme, "never-claimed", t0(), &response(200, "{}")))
            .await,
        Err(StoreError::NotFound)
    );
}

pub async fn idempotency_release_lets_a_retry_run(store: Arc<dyn AppStore>) {
    let acme = tenant("acme");
    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-1", t0()).await,
        Ok(IdempotencyClaim::Acquired)
    );
    assert_eq!(store.release_idempotency_key(&acme, "key-1", t0()).await, Ok(()));
    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-1", seconds(1)).await,
        Ok(IdempotencyClaim::Acquired),
        "a released key runs again"
    );
    assert_eq!(store.release_idempotency_key(&acme, "key-1", seconds(1)).await, Ok(()));
    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-2", seconds(2)).await,
        Ok(IdempotencyClaim::Acquired),
        "a released key is free for any request"
    );
    assert_eq!(
        store.release_idempotency_key(&acme, "never-claimed", t0()).await,
        Ok(()),
        "releasing twice or releasing nothing is harmless"
    );

    let done = response(200, "{}");
    store
        .complete_idempotency_key(&answer(&acme, "key-1", seconds(2), &done))
        .await
        .unwrap();
    assert_eq!(store.release_idempotency_key(&acme, "key-1", seconds(2)).await, Ok(()));
    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-2", seconds(3)).await,
        Ok(IdempotencyClaim::Completed(done)),
        "release forgets only an unfinished claim"
    );
}

pub async fn idempotency_keys_are_scoped_to_the_tenant(store: Arc<dyn AppStore>) {
    between_tenants(&*store, idempotency_keys_are_scoped_between).await;
}

async fn idempotency_keys_are_scoped_between(store: &dyn AppStore, acme: Tenant, globex: Tenant) {
    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-acme", t0()).await,
        Ok(IdempotencyClaim::Acquired)
    );
    assert_eq!(
        store.claim_idempotency_key(&globex, "key-1", "fp-globex", t0()).await,
        Ok(IdempotencyClaim::Acquired),
        "another tenant's key of the same name"
    );
    let ours = response(201, "acme");
    store
        .complete_idempotency_key(&answer(&acme, "key-1", t0(), &ours))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency_key(&globex, "key-1", "fp-globex", seconds(1))
            .await,
        Ok(IdempotencyClaim::InProgress),
        "completing one tenant's key leaves the other's running"
    );
    assert_eq!(store.release_idempotency_key(&globex, "key-1", t0()).await, Ok(()));
    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-acme", seconds(2)).await,
        Ok(IdempotencyClaim::Completed(ours))
    );
    assert_eq!(
        store
            .complete_idempotency_key(&answer(&globex, "key-1", t0(), &response(200, "globex")))
            .await,
        Err(StoreError::NotFound),
        "the released key is gone for its tenant only"
    );
}

pub async fn idempotency_abandoned_claims_can_be_taken_over(store: Arc<dyn AppStore>) {
    let acme = tenant("acme");
    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-1", t0()).await,
        Ok(IdempotencyClaim::Acquired)
    );
    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-1", seconds(30)).await,
        Ok(IdempotencyClaim::InProgress),
        "a claim half a minute old is still running"
    );
    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-1", seconds(90)).await,
        Ok(IdempotencyClaim::Acquired),
        "a claim more than a minute old was abandoned"
    );
    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-1", seconds(100)).await,
        Ok(IdempotencyClaim::InProgress),
        "the takeover is a fresh claim"
    );
    let done = response(201, "{}");
    assert_eq!(
        store.release_idempotency_key(&acme, "key-1", t0()).await,
        Ok(()),
        "the abandoned request fails late"
    );
    assert_eq!(
        store
            .complete_idempotency_key(&answer(&acme, "key-1", t0(), &done))
            .await,
        Err(StoreError::NotFound),
        "the abandoned request cannot answer for the takeover"
    );
    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-1", seconds(100)).await,
        Ok(IdempotencyClaim::InProgress),
        "nor release its claim"
    );
    store
        .complete_idempotency_key(&answer(&acme, "key-1", seconds(90), &done))
        .await
        .unwrap();
    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-1", seconds(101)).await,
        Ok(IdempotencyClaim::Completed(done.clone()))
    );
    let retention = functions::web::idempotency::records::RETENTION_HOURS * 3600;
    assert_eq!(
        store
            .claim_idempotency_key(&acme, "key-1", "fp-2", seconds(90 + retention - 1))
            .await,
        Ok(IdempotencyClaim::Mismatch),
        "a completed record is kept for the retention period"
    );
    assert_eq!(
        store
            .claim_idempotency_key(&acme, "key-1", "fp-2", seconds(90 + retention + 1))
            .await,
        Ok(IdempotencyClaim::Acquired),
        "after it, the key is new again"
    );
}

pub async fn keyed_creations_are_written_with_their_answer(store: Arc<dyn AppStore>) {
    let ids = SequentialIds::new();
    let acme = tenant("acme");
    let config = configuration(&acme, "kyc");
    let workflow = stored_workflow(&acme, "kyc");
    let endpoint = webhook_endpoint(&acme, "https://hooks.acme.example/a", t0(), &ids);
    let session = create_session(&config, "user-1", t0(), 60, &ids);
    let creations = [
        ("config", Creation::Configuration(&config)),
        ("workflow", Creation::Workflow(&workflow)),
        ("endpoint", Creation::WebhookEndpoint(&endpoint)),
        ("session", Creation::Session(&session)),
    ];
    for (key, creation) in creations {
        assert_eq!(
            store.claim_idempotency_key(&acme, key, "fp", t0()).await,
            Ok(IdempotencyClaim::Acquired)
        );
        let created = response(201, key);
        assert_eq!(
            store
                .create_answered(creation, &answer(&acme, key, t0(), &created))
                .await,
            Ok(()),
            "{key}"
        );
        assert_eq!(
            store.claim_idempotency_key(&acme, key, "fp", seconds(1)).await,
            Ok(IdempotencyClaim::Completed(created)),
            "the {key}'s key is completed by the same write"
        );
    }
    assert_eq!(store.configurations().get(&acme, "kyc").await, Ok(Some(config)));
    assert_eq!(store.workflows().get(&acme, "kyc").await, Ok(Some(workflow)));
    assert_eq!(store.endpoints().get(&acme, &endpoint.id).await, Ok(Some(endpoint)));
    let id = session.session.id.clone();
    assert_eq!(
        store.sessions().get(&acme, &id).await,
        Ok(Some(session.session.clone()))
    );
    assert_eq!(history(&*store, &acme, &id).await, session.events);
}

pub async fn keyed_creations_that_fail_write_neither(store: Arc<dyn AppStore>) {
    let ids = SequentialIds::new();
    let acme = tenant("acme");
    let config = configuration(&acme, "kyc");
    store.configurations().insert(&config).await.unwrap();

    // A taken slug: the configuration stays, the key stays claimed.
    store.claim_idempotency_key(&acme, "taken", "fp", t0()).await.unwrap();
    let mut other = config.clone();
    other.name = "Another".into();
    assert_eq!(
        store
            .create_answered(
                Creation::Configuration(&other),
                &answer(&acme, "taken", t0(), &response(201, "{}"))
            )
            .await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(store.configurations().get(&acme, "kyc").await, Ok(Some(config.clone())));
    assert_eq!(
        store.claim_idempotency_key(&acme, "taken", "fp", seconds(1)).await,
        Ok(IdempotencyClaim::InProgress),
        "the failed create left its claim unanswered"
    );

    // A claim taken over as abandoned: the late first request writes
    // nothing, the takeover writes its own.
    let session = create_session(&config, "user-1", t0(), 60, &ids);
    let id = session.session.id.clone();
    store.claim_idempotency_key(&acme, "late", "fp", t0()).await.unwrap();
    assert_eq!(
        store.claim_idempotency_key(&acme, "late", "fp", seconds(90)).await,
        Ok(IdempotencyClaim::Acquired)
    );
    let late = response(201, "late");
    assert_eq!(
        store
            .create_answered(Creation::Session(&session), &answer(&acme, "late", t0(), &late))
            .await,
        Err(StoreError::Conflict)
    );
    assert_eq!(store.sessions().get(&acme, &id).await, Ok(None), "nothing written");
    assert_eq!(history(&*store, &acme, &id).await, vec![]);
    let takeover = response(201, "takeover");
    assert_eq!(
        store
            .create_answered(
                Creation::Session(&session),
                &answer(&acme, "late", seconds(90), &takeover)
            )
            .await,
        Ok(())
    );
    assert_eq!(
        store.sessions().get(&acme, &id).await,
        Ok(Some(session.session.clone()))
    );
    assert_eq!(
        store.claim_idempotency_key(&acme, "late", "fp", seconds(91)).await,
        Ok(IdempotencyClaim::Completed(takeover))
    );
}

/// A keyed creation past its tenant's quota: refused as the plain insert
/// is, leaving the key claimed, not completed, and writing nothing.
pub async fn keyed_creations_past_the_quota_write_neither(store: Arc<dyn AppStore>) {
    let acme = tenant("acme");
    for i in 0..Quota::Configurations.max() {
        store
            .configurations()
            .insert(&configuration(&acme, &format!("kyc-{i}")))
            .await
            .unwrap();
    }
    let key = "create-past-the-quota";
    assert_eq!(
        store.claim_idempotency_key(&acme, key, "fp", t0()).await,
        Ok(IdempotencyClaim::Acquired)
    );
    let extra = configuration(&acme, "kyc-extra");
    let answer_body = response(201, "extra");
    assert_eq!(
        store
            .create_answered(Creation::Configuration(&extra), &answer(&acme, key, t0(), &answer_body))
            .await,
        Err(StoreError::LimitReached(Quota::Configurations))
    );
    assert_eq!(store.configurations().get(&acme, "kyc-extra").await, Ok(None));
    assert_eq!(
        store.claim_idempotency_key(&acme, key, "fp", seconds(1)).await,
        Ok(IdempotencyClaim::InProgress),
        "the key was not completed"
    );
    store.configurations().delete(&acme, "kyc-0").await.unwrap();
    store.configurations().insert(&extra).await.unwrap();
}

// ---------------------------------------------------------------------------
// Concurrency

pub async fn concurrent_commits_from_one_version_let_exactly_one_win(store: Arc<dyn Store>) {
    const WRITERS: usize = 16;
    let ids = Arc::new(SequentialIds::new());
    let acme = tenant("acme");
    let created = create_session(&configuration(&acme, "kyc"), "user-1", t0(), 60, &*ids);
    commit(&*store, &created).await;
    let id = created.session.id.clone();

    // Every writer reads before any writes, so all start from version 1.
    let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (store, ids, barrier) = (Arc::clone(&store), Arc::clone(&ids), Arc::clone(&barrier));
            let (acme, id) = (acme.clone(), id.clone());
            tokio::spawn(async move {
                let session = store
                    .sessions()
                    .get(&acme, &id)
                    .await
                    .expect("the session reads")
                    .expect("the session exists");
                let decision = if i % 2 == 0 {
                    Decision::Approved
                } else {
                    Decision::Rejected
                };
                let transition = session
                    .resolve(decision, &format!("Reviewer {i}"), partner(), minutes(1), &*ids)
                    .expect("the partner resolves");
                barrier.wait().await;
                let outcome = store.sessions().commit(&transition).await;
                (transition, outcome)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for writer in writers {
        let (transition, outcome) = writer.await.expect("the writer finishes");
        assert_eq!(transition.expected_version(), Some(1));
        match outcome {
            Ok(()) => winners.push(transition),
            Err(StoreError::Conflict) => conflicts += 1,
            Err(other) => panic!("a losing writer gets Conflict, not {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins");
    assert_eq!(conflicts, WRITERS - 1);
    let winner = &winners[0];
    assert_eq!(store.sessions().get(&acme, &id).await, Ok(Some(winner.session.clone())));
    assert_eq!(
        history(&*store, &acme, &id).await,
        events_of(&[&created, winner]),
        "the history holds the winner's events and no loser's"
    );
}

// ---------------------------------------------------------------------------
// Admission

fn ms(n: i64) -> Timestamp {
    t0() + chrono::Duration::milliseconds(n)
}

/// Admits `n` requests to `bucket` at `now`; how many passed, and the last
/// refusal's wait.
async fn meter(
    store: &dyn Store,
    bucket: &Bucket,
    rate: Rate,
    now: Timestamp,
    n: u32,
) -> (u32, Option<chrono::Duration>) {
    let mut admitted = 0;
    let mut wait = None;
    for _ in 0..n {
        match store.admit(bucket, rate, now).await.expect("the store meters") {
            Admit::Admitted { .. } => admitted += 1,
            Admit::Refused { retry_after } => wait = Some(retry_after),
        }
    }
    (admitted, wait)
}

pub async fn rates_admit_a_burst_then_the_rate(store: Arc<dyn Store>) {
    let store = &*store;
    let rate = Rate::new(10, 20).unwrap();
    let acme = Bucket::organization(&org("acme"));
    let globex = Bucket::organization(&org("globex"));
    assert_eq!(
        meter(store, &acme, rate, t0(), 25).await,
        (20, Some(chrono::Duration::milliseconds(100))),
        "the burst, then the wait for the next place"
    );
    assert_eq!(
        meter(store, &globex, rate, t0(), 20).await,
        (20, None),
        "another bucket is untouched"
    );
    // A second later, ten more places; an hour later, a full burst.
    assert_eq!(meter(store, &acme, rate, ms(1000), 15).await.0, 10);
    assert_eq!(meter(store, &acme, rate, ms(3_600_000), 30).await.0, 20);
    // Another rate on the same bucket meters the same instant.
    let slower = Rate::new(1, 1).unwrap();
    let (admitted, wait) = meter(store, &acme, slower, ms(3_600_000), 1).await;
    assert_eq!(admitted, 0);
    assert!(wait.is_some_and(|w| w > chrono::Duration::zero()), "{wait:?}");
}

pub async fn concurrent_requests_never_pass_more_than_the_burst(store: Arc<dyn Store>) {
    // As many as the concurrent commits case: DynamoDB Local serialises
    // the writes to one item slowly enough that many more time out.
    const REQUESTS: usize = 16;
    let rate = Rate::new(1, 6).unwrap();
    let bucket = Bucket::access_token("token-hash");
    let barrier = Arc::new(tokio::sync::Barrier::new(REQUESTS));
    let requests: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (store, barrier, bucket) = (Arc::clone(&store), Arc::clone(&barrier), bucket.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.admit(&bucket, rate, t0()).await.expect("the store meters")
            })
        })
        .collect();
    let mut admitted = 0;
    for request in requests {
        if let Admit::Admitted { .. } = request.await.expect("the request finishes") {
            admitted += 1;
        }
    }
    assert!((1..=6).contains(&admitted), "{admitted} passed together");
    // What contention turned away is still there for later requests.
    let (more, _) = meter(&*store, &bucket, rate, t0(), 10).await;
    assert_eq!(admitted + more, 6);
}

pub async fn a_signature_is_used_once_until_it_expires(store: Arc<dyn Store>) {
    let until = minutes(5);
    assert_eq!(store.use_once("ak_test_1:abc", until, t0()).await, Ok(FirstUse::Yes));
    assert_eq!(
        store.use_once("ak_test_1:abc", until, seconds(1)).await,
        Ok(FirstUse::No)
    );
    assert_eq!(
        store.use_once("ak_test_1:abd", until, seconds(1)).await,
        Ok(FirstUse::Yes)
    );
    assert_eq!(
        store.use_once("ak_live_1:abc", until, seconds(1)).await,
        Ok(FirstUse::Yes)
    );
    assert_eq!(
        store.use_once("ak_test_1:abc", minutes(10), until).await,
        Ok(FirstUse::Yes),
        "forgotten once its window has shut"
    );
    assert_eq!(
        store.use_once("ak_test_1:abc", minutes(10), minutes(6)).await,
        Ok(FirstUse::No)
    );
}

pub async fn concurrent_uses_of_one_signature_let_exactly_one_through(store: Arc<dyn Store>) {
    const REQUESTS: usize = 16;
    let barrier = Arc::new(tokio::sync::Barrier::new(REQUESTS));
    let requests: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                store.use_once("ak_test_1:replayed", minutes(5), t0()).await
            })
        })
        .collect();
    let mut first = 0;
    for request in requests {
        if request.await.expect("the request finishes") == Ok(FirstUse::Yes) {
            first += 1;
        }
    }
    assert_eq!(first, 1);
}

pub async fn organizations_round_trip(store: Arc<dyn Store>) {
    let acme = org("acme");
    assert_eq!(store.get_organization(&acme).await, Ok(None));
    let mut record = organization(&acme, "Acme");
    assert_eq!(store.update_organization(&record).await, Err(StoreError::NotFound));
    store.insert_organization(&record).await.unwrap();
    assert_eq!(store.get_organization(&acme).await, Ok(Some(record.clone())));
    record.rate = Some(Rate::new(200, 400).unwrap());
    record.name = "Acme Verification".into();
    store.update_organization(&record).await.unwrap();
    assert_eq!(store.get_organization(&acme).await, Ok(Some(record.clone())));
    assert_eq!(record.rate(), Rate::new(200, 400).unwrap());
    assert_eq!(
        store.get_organization(&org("globex")).await,
        Ok(None),
        "only the one updated"
    );
}

pub async fn api_keys_are_listed_by_organization_and_revoked(store: Arc<dyn Store>) {
    let (acme, globex) = (org("acme"), org("globex"));
    let mut second = api_key("ak_live_0002", &acme);
    second.created_at = seconds(2);
    let mut first = api_key("ak_test_0001", &acme);
    first.created_at = seconds(1);
    for key in [&second, &first, &api_key("ak_test_0003", &globex)] {
        store.insert_api_key(key).await.unwrap();
    }
    assert_eq!(
        store.list_api_keys(&acme).await,
        Ok(vec![first.clone(), second.clone()]),
        "oldest first, the organisation's only"
    );
    assert_eq!(store.list_api_keys(&org("initech")).await, Ok(vec![]));

    first.revoked_at = Some(minutes(1));
    store.update_api_key(&first).await.unwrap();
    assert_eq!(store.get_api_key("ak_test_0001").await, Ok(Some(first.clone())));
    assert_eq!(store.list_api_keys(&acme).await, Ok(vec![first, second]));
    assert_eq!(
        store.update_api_key(&api_key("ak_test_missing", &acme)).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.get_api_key("ak_test_missing").await,
        Ok(None),
        "nothing was written"
    );
}
