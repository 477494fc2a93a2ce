//! DynamoDB failing under the API: throttling, 5xx answers, stalled
//! attempts and lost answers injected between the store and DynamoDB Local
//! (see `acceptance::faults`), on every mutating call — configurations,
//! sessions from creation to resolution and resubmission, webhook
//! endpoints, the expiry sweep — and the reads.
//!
//! A fault the SDK's retries absorb leaves no trace: the journey answers
//! and stores exactly what a fault-free twin of it does (same answers, same
//! items at the same versions, same histories). A fault on every attempt
//! answers `503` with a problem document and leaves the table as it was, and
//! the same request succeeds once the faults stop.
//!
//! DynamoDB Local must be running and `AWS_ENDPOINT_URL_DYNAMODB` point at
//! it: `scripts/test` starts it around `cargo test`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use acceptance::api::{
    Api, Raw, Reply, assert_problem, event_types, full_path, near_match, occurrences, str_of, workflow_ids,
};
use acceptance::dynamodb::Table;
use acceptance::faults::{self, Fault, Faults, READS, Rule, WRITES};
use acceptance::support::SequentialIds;
use functions::consumers::expiry::SweepReport;
use functions::web::idempotency::records::CLAIM_TIMEOUT_SECONDS;
use korala_domain::ports::StoreError;
use lambda_http::Body;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// What the journey's requests meet.
#[derive(Debug, Clone)]
enum Mode {
    /// Nothing: the twin the others are held to.
    Clean,
    /// The first attempts of every request meet these faults: reads of
    /// `reads_on`'s operations meet `reads`, writes meet `writes`.
    Transient {
        reads_on: &'static [&'static str],
        reads: Vec<Fault>,
        writes: Vec<Fault>,
    },
    /// Every attempt of a step's writes (of its reads, for a read) meets a
    /// fault, taken in turn from these; then the step is sent again without.
    Persistent(Vec<Fault>),
    /// The test sets the proxy's rules itself.
    ByHand,
}

/// What a journey leaves, in terms a twin run can be compared on.
struct Journey {
    answers: Vec<(&'static str, u16)>,
    /// Every item but the API keys: `PK SK` (ids numbered in creation order)
    /// and its version (or an idempotency record's state).
    stored: BTreeMap<String, String>,
    /// The event types of the journey's two sessions.
    histories: Vec<Vec<String>>,
}

enum Call {
    Http(Raw),
    Sweep,
}

enum Answer {
    Http(Reply),
    Sweep(Result<SweepReport, StoreError>),
}

impl Answer {
    fn status(&self) -> u16 {
        match self {
            Answer::Http((status, _, _)) => status.as_u16(),
            Answer::Sweep(Ok(_)) => 200,
            Answer::Sweep(Err(StoreError::Unavailable(_))) => 503,
            Answer::Sweep(Err(_)) => 500,
        }
    }

    fn body(self) -> Value {
        match self {
            Answer::Http((_, body, _)) => body,
            Answer::Sweep(report) => json!(report.ok()),
        }
    }
}

struct Run {
    api: Api,
    table: Arc<Table>,
    faults: Option<Faults>,
    mode: Mode,
    answers: Vec<(&'static str, u16)>,
}

impl Run {
    /// An application on a table of its own, its store behind the fault proxy
    /// unless the mode is clean; ids are sequential, so twins agree on them.
    async fn new(mode: Mode) -> Self {
        let table = Arc::new(Table::new().await);
        // The organisations and keys are made directly: they are not under test.
        let mut api = Api::with_store(Arc::new(table.store.clone())).await;
        api.app.ids = Arc::new(SequentialIds::new());
        let faults = match mode {
            Mode::Clean => None,
            _ => {
                let faults = Faults::start().await;
                api.app.store = Arc::new(faults::store(&table, &faults).await);
                Some(faults)
            }
        };
        Self {
            api,
            table,
            faults,
            mode,
            answers: Vec::new(),
        }
    }

    fn faults(&self) -> &Faults {
        self.faults.as_ref().expect("a faulty run has the proxy")
    }

    async fn perform(&self, call: &Call) -> Answer {
        match call {
            Call::Http(raw) => Answer::Http(dispatch(&self.api, raw.clone()).await),
            Call::Sweep => {
                Answer::Sweep(functions::consumers::expiry::run(&self.api.app, Duration::from_secs(5)).await)
            }
        }
    }

    /// Sends `call` under the run's faults and returns the answer's body,
    /// which must be a success. `writes` are the operations a persistent
    /// fault hits: the step's own write, so the reads before it succeed.
    async fn step(&mut self, name: &'static str, writes: &'static [&'static str], call: Call) -> Value {
        let answer = match self.mode.clone() {
            Mode::Clean | Mode::ByHand => self.perform(&call).await,
            Mode::Transient {
                reads_on,
                reads: read_faults,
                writes: write_faults,
            } => {
                // The sweep's 16 index queries run at once: faulting them all
                // would spend much of the SDK's retry quota, which every test
                // shares (see `acceptance::faults`).
                let reads_on: &'static [&'static str] = match call {
                    Call::Sweep if reads_on.contains(&"BatchGetItem") => &["BatchGetItem"],
                    Call::Sweep => &[],
                    Call::Http(_) => reads_on,
                };
                self.faults().set(vec![
                    Rule::first(WRITES, &write_faults),
                    Rule::first(reads_on, &read_faults),
                ]);
                let answer = self.perform(&call).await;
                let injected = self.faults().clear();
                assert!(!injected.is_empty(), "{name}: no fault was injected");
                answer
            }
            Mode::Persistent(kinds) => {
                let fault = kinds[self.answers.len() % kinds.len()];
                let targets = if writes.is_empty() { READS } else { writes };
                let before = contents(&self.table).await;
                self.faults().set(vec![Rule::always(targets, fault)]);
                let failed = self.perform(&call).await;
                let injected = self.faults().clear();
                assert!(!injected.is_empty(), "{name}: no fault was injected");
                match &failed {
                    Answer::Http(reply) => {
                        assert_eq!(reply.0, 503, "{name}: {fault:?} on every attempt: {}", reply.1);
                        assert_problem(reply, 503, "service_unavailable");
                    }
                    Answer::Sweep(result) => assert!(
                        matches!(result, Err(StoreError::Unavailable(_))),
                        "{name}: {fault:?} on every attempt: {result:?}"
                    ),
                }
                let after = contents(&self.table).await;
                assert_eq!(
                    changes(&before, &after),
                    Vec::<String>::new(),
                    "{name}: {fault:?} on every attempt of {targets:?} changed the table"
                );
                // The client's retry, signed anew as every retry is.
                let retry = match &call {
                    Call::Http(raw) => Call::Http(self.api.signed_anew(raw)),
                    Call::Sweep => Call::Sweep,
                };
                self.perform(&retry).await
            }
        };
        let status = answer.status();
        let body = answer.body();
        assert!(
            (200..300).contains(&status),
            "{name} under {:?} answered {status}: {body}",
            self.mode
        );
        self.answers.push((name, status));
        body
    }

    async fn partner(
        &mut self,
        name: &'static str,
        writes: &'static [&'static str],
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let raw = self.api.signed(&self.api.key, method, path, body.as_ref());
        self.step(name, writes, Call::Http(raw)).await
    }

    async fn end_user(
        &mut self,
        name: &'static str,
        writes: &'static [&'static str],
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut raw = Raw::new(method, &full_path(path));
        if let Some(body) = body {
            raw = raw
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(&body).expect("JSON"));
        }
        self.step(name, writes, Call::Http(raw)).await
    }

    /// The stored items in the terms twins share: organisation ids named,
    /// the generated ids numbered in order, API keys left out.
    async fn stored(&self) -> BTreeMap<String, String> {
        let orgs = [
            (&self.api.key.org_id, "org_main"),
            (&self.api.other.org_id, "org_other"),
        ];
        let mut stored: Vec<(String, String)> = contents(&self.table)
            .await
            .into_iter()
            .filter(|(key, _)| !key.starts_with("KEY#") && !admission(key))
            .map(|(mut key, attributes)| {
                for (id, name) in orgs {
                    key = key.replace(id.as_str(), name);
                }
                let value = attributes.get("version").or(attributes.get("state")).cloned();
                (key, value.unwrap_or_default())
            })
            .collect();
        // A sequential id is a prefix and 26 digits; ids spent on a request
        // that failed leave gaps, which numbering in order closes.
        let ids: BTreeSet<(String, String)> = stored
            .iter()
            .flat_map(|(key, _)| key.split([' ', '#']))
            .filter_map(|segment| {
                let (_, digits) = segment.rsplit_once('_')?;
                let sequential = digits.len() == 26 && digits.bytes().all(|b| b.is_ascii_digit());
                sequential.then(|| (digits.to_owned(), segment.to_owned()))
            })
            .collect();
        for (key, _) in &mut stored {
            for (rank, (_, id)) in ids.iter().enumerate() {
                *key = key.replace(id.as_str(), &format!("id{rank}"));
            }
        }
        stored.into_iter().collect()
    }
}

/// Sends a request through the router as `Api::send` does, without its
/// check that nothing answers a server error: here some must.
async fn dispatch(api: &Api, raw: Raw) -> Reply {
    let mut request = http::Request::builder()
        .method(raw.method.as_str())
        .uri(raw.path.as_str());
    for (name, value) in &raw.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let body = match raw.body.is_empty() {
        true => Body::Empty,
        false => Body::from(raw.body),
    };
    let response = api
        .router
        .dispatch(api.app.clone(), request.body(body).expect("a well-formed request"))
        .await;
    let (parts, body) = response.into_parts();
    let value = serde_json::from_slice(body.as_ref()).unwrap_or(Value::Null);
    (parts.status, value, parts.headers)
}

/// Every item of the table, read consistently past the proxy: `PK SK` and
/// each attribute as the SDK shows it.
async fn contents(table: &Table) -> BTreeMap<String, BTreeMap<String, String>> {
    let client = table.store.client();
    let mut items = BTreeMap::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(&table.name)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap_or_else(|e| panic!("scanning {}: {e:?}", table.name));
        for item in page.items() {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let attributes = item.iter().map(|(k, v)| (k.clone(), format!("{v:?}"))).collect();
            items.insert(format!("{} {}", text("PK"), text("SK")), attributes);
        }
        start = page.last_evaluated_key.filter(|key| !key.is_empty());
        if start.is_none() {
            return items;
        }
    }
}

/// The items added, removed or changed between two readings.
/// Whether an item is admission's bookkeeping (a rate bucket, a used
/// signature) rather than what a request reads or changes: every request
/// meters itself, whatever then becomes of it.
fn admission(key: &str) -> bool {
    key.starts_with("RATE#") || key.starts_with("SIGNATURE#")
}

fn changes(
    before: &BTreeMap<String, BTreeMap<String, String>>,
    after: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<String> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|key| !admission(key))
        .filter(|key| before.get(*key) != after.get(*key))
        .map(|key| match (before.get(key), after.get(key)) {
            (None, _) => format!("added {key}"),
            (_, None) => format!("removed {key}"),
            _ => format!("changed {key}"),
        })
        .collect()
}

/// Every mutating call once (the end user's and the partner's, webhook
/// endpoints, the sweep) and the reads between them.
async fn journey(mode: Mode) -> Journey {
    let mut run = Run::new(mode).await;
    let r = &mut run;
    // Where a call writes twice (an idempotency claim, then the commit), the
    // persistent faults hit the commit; elsewhere any write.
    let commit: &'static [&'static str] = &["TransactWriteItems"];

    let config = json!({"name": "KYC", "slug": "kyc", "workflowSlugs": ["id-document", "proof-of-address"]});
    r.partner(
        "create a configuration",
        WRITES,
        "POST",
        "/session-configurations",
        Some(config),
    )
    .await;
    let endpoint = json!({"url": "https://hooks.example.com/korala", "events": ["session_completed"]});
    let endpoint = r
        .partner(
            "create a webhook endpoint",
            WRITES,
            "POST",
            "/webhook-endpoints",
            Some(endpoint),
        )
        .await;
    let endpoint = format!("/webhook-endpoints/{}", str_of(&endpoint, "id"));
    let events = json!({"events": ["session_completed", "session_resolved"]});
    r.partner("update the webhook endpoint", WRITES, "PATCH", &endpoint, Some(events))
        .await;

    // Idempotent: the claim and its completion are writes of their own.
    let body = json!({"configurationSlug": "kyc", "externalUserId": "usr_a"});
    let raw = r
        .api
        .signed(&r.api.key, "POST", "/sessions", Some(&body))
        .header("Idempotency-Key", "session-a");
    let session = r.step("create a session", commit, Call::Http(raw)).await;
    let (id, token, wf) = (
        str_of(&session, "id").to_owned(),
        str_of(&session, "accessToken").to_owned(),
        workflow_ids(&session),
    );
    let access = format!("/access/{token}");
    r.end_user("the end user reads it", &[], "GET", &access, None).await;
    r.end_user("start", commit, "POST", &format!("{access}/start"), None)
        .await;
    let (id_name, poa_name) = near_match();
    let document = r.api.id_document(id_name);
    r.end_user(
        "submit the identity document",
        commit,
        "POST",
        &format!("{access}/workflows/{}", wf[0]),
        Some(json!({ "data": document })),
    )
    .await;
    let proof = r.api.proof_of_address(poa_name);
    let view = r
        .end_user(
            "submit the proof of address",
            commit,
            "POST",
            &format!("{access}/workflows/{}", wf[1]),
            Some(json!({ "data": proof })),
        )
        .await;
    assert_eq!(view["status"], "pending_review", "{view}");
    let review = json!({"decision": "approved", "reason": "Same person"});
    let path = format!("/sessions/{id}/workflows/{}/review", wf[1]);
    r.partner("review", commit, "POST", &path, Some(review)).await;
    let path = format!("/sessions/{id}/workflows/{}/resubmit", wf[0]);
    r.partner("resubmit", commit, "POST", &path, None).await;
    let resolution = json!({"resolution": "rejected", "reason": "Known fraud"});
    r.partner(
        "resolve",
        commit,
        "POST",
        &format!("/sessions/{id}/resolve"),
        Some(resolution),
    )
    .await;
    r.partner("read the session", &[], "GET", &format!("/sessions/{id}"), None)
        .await;
    r.partner("read its history", &[], "GET", &format!("/sessions/{id}/events"), None)
        .await;
    r.partner("list sessions", &[], "GET", "/sessions?limit=10", None).await;

    let body = json!({"configurationSlug": "kyc", "externalUserId": "usr_b", "expiresInMinutes": 30});
    let left = r
        .partner("create a session left alone", commit, "POST", "/sessions", Some(body))
        .await;
    let left = str_of(&left, "id").to_owned();
    r.partner("delete the webhook endpoint", WRITES, "DELETE", &endpoint, None)
        .await;
    r.api.clock.advance(31);
    let swept = r.step("the expiry sweep", commit, Call::Sweep).await;
    assert_eq!(swept, json!({"due": 1, "expired": 1}), "the sweep");

    if let Some(faults) = &r.faults {
        faults.clear();
    }
    let mut histories = Vec::new();
    for session in [&id, &left] {
        histories.push(event_types(&r.api.events(session).await));
    }
    Journey {
        answers: std::mem::take(&mut r.answers),
        stored: r.stored().await,
        histories,
    }
}

/// The fault-free journey, run once for every test to compare with.
async fn clean() -> &'static Journey {
    static CLEAN: OnceCell<Journey> = OnceCell::const_new();
    CLEAN.get_or_init(|| journey(Mode::Clean)).await
}

async fn assert_like_clean(mode: Mode) {
    let faulty = journey(mode.clone()).await;
    let clean = clean().await;
    assert_eq!(faulty.answers, clean.answers, "the answers under {mode:?}");
    assert_eq!(faulty.histories, clean.histories, "the histories under {mode:?}");
    let keys: BTreeSet<&String> = faulty.stored.keys().chain(clean.stored.keys()).collect();
    let differing: Vec<String> = keys
        .into_iter()
        .filter(|key| faulty.stored.get(*key) != clean.stored.get(*key))
        .map(|key| {
            format!(
                "{key}: {:?}, fault-free {:?}",
                faulty.stored.get(key),
                clean.stored.get(key)
            )
        })
        .collect();
    assert!(
        differing.is_empty(),
        "the items under {mode:?} differ from the fault-free journey's: {differing:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_and_leaves_no_trace() {
    acceptance::require!(DynamoDbLocal);
    assert_like_clean(Mode::Transient {
        reads_on: READS,
        reads: vec![Fault::Throttled],
        writes: vec![Fault::Throttling, Fault::Throttled],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_and_leave_no_trace() {
    acceptance::require!(DynamoDbLocal);
    assert_like_clean(Mode::Transient {
        reads_on: READS,
        reads: vec![Fault::Unavailable],
        writes: vec![Fault::InternalError],
    })
    .await;
}

/// A stalled read is simply asked again (not the sweep's batch read: each
/// stall costs an attempt timeout); a write that landed but answered too
/// late is recognised when its retry meets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_retried_and_leave_no_trace() {
    acceptance::require!(DynamoDbLocal);
    assert_like_clean(Mode::Transient {
        reads_on: &["GetItem", "Query"],
        reads: vec![Fault::Stall],
        writes: vec![Fault::Late],
    })
    .await;
}

/// The nastiest case: each write lands and its answer is lost, twice, so
/// the third attempt meets the write of the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_are_recognised_and_applied_once() {
    acceptance::require!(DynamoDbLocal);
    assert_like_clean(Mode::Transient {
        reads_on: READS,
        reads: vec![Fault::Lost],
        writes: vec![Fault::Lost, Fault::Lost],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_faults_answer_503_and_change_nothing() {
    acceptance::require!(DynamoDbLocal);
    assert_like_clean(Mode::Persistent(vec![
        Fault::Throttled,
        Fault::InternalError,
        Fault::Stall,
        Fault::Unavailable,
        Fault::Throttling,
    ]))
    .await;
}

/// When every answer to a commit is lost the client hears `503`, but the
/// transaction did land: whole, the session with its events, and the
/// client's retry finds it done rather than applying it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_every_answer_is_lost_lands_whole_and_once() {
    acceptance::require!(DynamoDbLocal);
    let run = Run::new(Mode::ByHand).await;
    let api = &run.api;
    api.kyc_configuration("kyc").await;
    let session = api.session_of("kyc", "usr_a").await;
    let id = str_of(&session, "id");
    let start = Raw::new(
        "POST",
        &full_path(&format!("/access/{}/start", str_of(&session, "accessToken"))),
    );
    let before = api.events(id).await;

    run.faults()
        .set(vec![Rule::always(&["TransactWriteItems"], Fault::Lost)]);
    let reply = dispatch(api, start.clone()).await;
    assert_eq!(run.faults().clear().len(), 3, "every attempt was lost");
    assert_problem(&reply, 503, "service_unavailable");

    // Its events carry the version the session moved to.
    let stored = contents(&run.table).await;
    let number = |text: &str| {
        text.trim_start_matches("N(\"")
            .trim_end_matches("\")")
            .parse::<u64>()
            .ok()
    };
    // The session's partition, under the test key's tenant.
    let partition = format!("SESSION#{}#test#{id}", api.key.org_id);
    let session_version = number(&stored[&format!("{partition} SESSION")]["version"]);
    let event_prefix = format!("{partition} EVENT#");
    let event_versions: BTreeSet<u64> = stored
        .keys()
        .filter_map(|key| key.strip_prefix(&event_prefix)?.split('#').next()?.parse().ok())
        .collect();
    assert_eq!(
        event_versions.last().copied(),
        session_version,
        "the session's version has its events: {stored:#?}"
    );
    let after = api.events(id).await;
    assert_eq!(occurrences(&after[before.len()..], "session_started"), 1, "{after:#?}");

    let retried = dispatch(api, start).await;
    assert_eq!(retried.0, 200, "{}", retried.1);
    assert_eq!(retried.1["status"], "in_progress", "{}", retried.1);
    assert_eq!(api.events(id).await, after, "the retry applied nothing again");
}

/// Every write of an idempotent create loses its first answer: the claim,
/// the commit and the key's completion, a conditional write of its own after
/// the commit, whose retry finds the key completed by its first attempt. The
/// request did what it was asked, and must say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_create_whose_answers_are_lost_still_answers_created() {
    acceptance::require!(DynamoDbLocal);
    let run = Run::new(Mode::ByHand).await;
    let api = &run.api;
    api.kyc_configuration("kyc").await;
    let body = json!({"configurationSlug": "kyc", "externalUserId": "usr_a"});
    let create = api
        .signed(&api.key, "POST", "/sessions", Some(&body))
        .header("Idempotency-Key", "session-a");

    run.faults().set(vec![Rule::first(WRITES, &[Fault::Lost])]);
    let created = dispatch(api, create.clone()).await;
    assert!(!run.faults().clear().is_empty(), "answers were lost");
    assert_eq!(created.0, 201, "{}", created.1);
    let replayed = dispatch(api, api.signed_anew(&create)).await;
    assert_eq!(replayed.1["id"], created.1["id"], "the key replays the session it made");
    assert_eq!(api.count("/sessions?externalUserId=usr_a").await, 1);
}

/// A keyed test delivery stores its answer after it is queued (the queue is
/// not in the store's transaction). When that write fails, the delivery is
/// queued all the same, and the request says so rather than failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_test_delivery_whose_answer_cannot_be_stored_is_still_accepted() {
    acceptance::require!(DynamoDbLocal);
    let mut run = Run::new(Mode::ByHand).await;
    let queues = functions::adapters::store::sqlite::SqliteStore::in_memory().expect("an in-memory store");
    let deliveries = Arc::new(queues.queue("webhook-deliveries", run.api.app.clock.clone()));
    run.api.app.deliveries = Some(deliveries.clone());
    let api = &run.api;
    let endpoint = json!({"url": "https://hooks.example.com/korala", "events": ["session_completed"]});
    let endpoint = api.expect(201, "POST", "/webhook-endpoints", Some(endpoint)).await;
    let path = format!("/webhook-endpoints/{}/test", str_of(&endpoint, "id"));
    let test = api
        .signed(&api.key, "POST", &path, None)
        .header("Idempotency-Key", "test-1");

    run.faults()
        .set(vec![Rule::always(&["TransactWriteItems"], Fault::InternalError)]);
    let accepted = dispatch(api, test).await;
    assert!(!run.faults().clear().is_empty(), "the answer's write failed");
    assert_eq!(accepted.0, 202, "{}", accepted.1);
    let queued = korala_domain::ports::Queue::receive(deliveries.as_ref(), 10, 30)
        .await
        .expect("the queue answers");
    assert_eq!(queued.len(), 1, "the test delivery was queued");
}

/// A delete is conditional on the item existing. When its answer is lost,
/// the SDK's retry finds the item gone, deleted by the first attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_a_delete_still_answers_no_content() {
    acceptance::require!(DynamoDbLocal);
    let run = Run::new(Mode::ByHand).await;
    let api = &run.api;
    let endpoint = json!({"url": "https://hooks.example.com/korala", "events": ["session_completed"]});
    let endpoint = api.expect(201, "POST", "/webhook-endpoints", Some(endpoint)).await;
    let path = format!("/webhook-endpoints/{}", str_of(&endpoint, "id"));

    run.faults().set(vec![Rule::first(WRITES, &[Fault::Lost])]);
    let deleted = dispatch(api, api.signed(&api.key, "DELETE", &path, None)).await;
    assert_eq!(run.faults().clear().len(), 1, "the delete's answer was lost");
    assert_eq!(deleted.0, 204, "{}", deleted.1);
    assert_eq!(api.partner("GET", &path, None).await.0, 404, "deleted");
}

/// The commit lands but no answer reaches the handler: every attempt of the
/// transaction is lost, so the request fails. The key was completed in the
/// commit's own transaction, so the client's retry, even once the claim
/// would count as abandoned, replays the session made rather than making a
/// second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_create_whose_commit_is_not_answered_is_not_run_twice() {
    acceptance::require!(DynamoDbLocal);
    let run = Run::new(Mode::ByHand).await;
    let api = &run.api;
    api.kyc_configuration("kyc").await;
    let body = json!({"configurationSlug": "kyc", "externalUserId": "usr_a"});
    let create = api
        .signed(&api.key, "POST", "/sessions", Some(&body))
        .header("Idempotency-Key", "session-a");

    run.faults()
        .set(vec![Rule::always(&["TransactWriteItems"], Fault::Lost)]);
    let failed = dispatch(api, create.clone()).await;
    assert!(!run.faults().clear().is_empty(), "the commit's answers were lost");
    assert!(failed.0.is_server_error(), "{}", failed.1);

    api.clock.advance_seconds(CLAIM_TIMEOUT_SECONDS + 1);
    let retried = dispatch(api, api.signed_anew(&create)).await;
    assert_eq!(retried.0, 201, "{}", retried.1);
    let listed = api.partner("GET", "/sessions?externalUserId=usr_a", None).await.1;
    assert_eq!(
        listed["data"].as_array().map(Vec::len),
        Some(1),
        "one idempotent request, one session: {listed}"
    );
    assert_eq!(
        listed["data"][0]["id"], retried.1["id"],
        "the retry answers with the session made"
    );
}

/// Metering is a write of its own before the handler runs. When it fails on
/// every attempt the request answers `503` and does nothing; a fault the
/// SDK's retries absorb leaves the request as it would have been; and a
/// lost answer to a signature's put is the request's own (it is not refused
/// as its own replay).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_writes_fail_closed_and_are_retried() {
    acceptance::require!(DynamoDbLocal);
    let mut run = Run::new(Mode::ByHand).await;
    // Metered as deployed (the tests' default meters nothing).
    run.api.app.settings = Arc::new(functions::app::Settings {
        partner_rate: korala_domain::limits::Rate::PARTNER,
        ..(*run.api.app.settings).clone()
    });
    let api = &run.api;
    let body = json!({"name": "KYC", "slug": "kyc", "workflowSlugs": ["id-document"]});
    let create = api.signed(&api.key, "POST", "/session-configurations", Some(&body));

    // Throttling, the fault that spends least of the SDK's retry quota,
    // which every test of this binary shares (see `acceptance::faults`).
    run.faults()
        .set(vec![Rule::always(&["UpdateItem"], Fault::Throttled).on_admission()]);
    let refused = dispatch(api, create.clone()).await;
    assert!(!run.faults().clear().is_empty(), "the meter's writes failed");
    assert_problem(&refused, 503, "service_unavailable");
    assert_eq!(api.count("/session-configurations").await, 0, "nothing was done");

    for fault in [Fault::Throttled, Fault::Lost] {
        run.faults()
            .set(vec![Rule::first(&["UpdateItem", "PutItem"], &[fault]).on_admission()]);
        let slug = format!("kyc-{fault:?}").to_lowercase();
        let body = json!({"name": "KYC", "slug": slug, "workflowSlugs": ["id-document"]});
        let created = dispatch(
            api,
            api.signed(&api.key, "POST", "/session-configurations", Some(&body)),
        )
        .await;
        assert_eq!(
            run.faults().clear().len(),
            2,
            "{fault:?}: the meter's and the signature's first attempts"
        );
        assert_eq!(created.0, 201, "{fault:?}: {}", created.1);
    }
}
