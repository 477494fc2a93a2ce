//! The store conformance suite against the DynamoDB adapter on DynamoDB
//! Local, each case on a fresh table made from the adapter's own table
//! definition, plus what the hot paths cost in requests and capacity.
//!
//! DynamoDB Local must be running and `AWS_ENDPOINT_URL_DYNAMODB` point at
//! it: `scripts/test` starts it around `cargo test`. Without it these tests
//! skip, or fail under `CI=true` (see `acceptance::engines`).

use std::sync::Arc;

use acceptance::dynamodb::Table;
use functions::adapters::store::dynamodb::{CallLog, keys};
use functions::web::idempotency::records::{Answer, Creation, IdempotencyClaim, IdempotencyRecords, StoredResponse};
use korala_domain::ports::{Position, SessionQuery, Store};
use korala_domain::session::SessionSummary;

mod dynamodb_local {
    acceptance::store_conformance_tests!(super::Table::here);
}

/// The requests behind the calls every API request makes: each must be one
/// DynamoDB request. Prints what each consumed, for the cost report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_paths_are_one_request_each() {
    acceptance::require!(DynamoDbLocal);
    use acceptance::support::{SequentialIds, configuration, create_session, minutes, start, t0, tenant};

    let table = Table::new().await;
    let log = CallLog::new();
    let store = table.store.clone().with_call_log(Arc::clone(&log));
    let ids = SequentialIds::new();
    let acme = tenant("acme");
    let created = create_session(&configuration(&acme, "kyc"), "user-1", t0(), 60, &ids);
    let id = created.session.id.clone();
    let mut report = Vec::new();
    // The requests a call must make, in order: (operation, how many).
    let mut measure = |label: &str, expected: &[(&str, usize)]| {
        let calls = log.take();
        let operations: Vec<&str> = calls.iter().map(|c| c.operation).collect();
        let wanted: Vec<&str> = expected
            .iter()
            .flat_map(|(operation, count)| std::iter::repeat_n(*operation, *count))
            .collect();
        let requests = expected
            .iter()
            .map(|(operation, count)| format!("{count:>2} × {operation}"))
            .collect::<Vec<_>>()
            .join(" + ");
        assert_eq!(operations, wanted, "{label}: {requests}");
        let capacity: f64 = calls.iter().map(|c| c.consumed_capacity).sum();
        let mut line = format!("{label:<34} {requests:<38} {capacity:>6.1} capacity units");
        if expected.len() > 1 {
            let parts: Vec<String> = expected
                .iter()
                .map(|(operation, _)| {
                    let part: f64 = calls
                        .iter()
                        .filter(|c| c.operation == *operation)
                        .map(|c| c.consumed_capacity)
                        .sum();
                    format!("{operation} {part:.1}")
                })
                .collect();
            line.push_str(&format!(" ({})", parts.join(", ")));
        }
        report.push(line);
    };

    store.sessions().commit(&created).await.unwrap();
    measure(
        &format!("sessions().commit (create, {} events)", created.events.len()),
        &[("TransactWriteItems", 1)],
    );

    let read = store.sessions().get(&acme, &id).await.unwrap().expect("the session");
    measure("sessions().get", &[("GetItem", 1)]);

    let found = store
        .sessions()
        .find_by_token_hash(&created.session.access_token.hash)
        .await
        .unwrap();
    assert_eq!(found.as_ref().map(|s| &s.id), Some(&id));
    measure("sessions().find_by_token_hash", &[("Query", 1)]);

    let started = start(&read, minutes(1), &ids);
    store.sessions().commit(&started).await.unwrap();
    measure(
        &format!("sessions().commit (update, {} events)", started.events.len()),
        &[("TransactWriteItems", 1)],
    );

    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-1", t0()).await,
        Ok(IdempotencyClaim::Acquired)
    );
    measure("claim_idempotency_key (new)", &[("PutItem", 1)]);
    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-1", t0()).await,
        Ok(IdempotencyClaim::InProgress)
    );
    measure("claim_idempotency_key (taken)", &[("PutItem", 1)]);
    let response = StoredResponse {
        status: 201,
        body: "{}".into(),
        location: None,
    };
    let answer = Answer {
        tenant: &acme,
        key: "key-1",
        claimed_at: t0(),
        response: &response,
    };
    store.complete_idempotency_key(&answer).await.unwrap();
    measure("complete_idempotency_key", &[("TransactWriteItems", 1)]);
    store.claim_idempotency_key(&acme, "key-2", "fp-2", t0()).await.unwrap();
    measure("claim_idempotency_key (another)", &[("PutItem", 1)]);
    let config = configuration(&acme, "keyed");
    let answer = Answer { key: "key-2", ..answer };
    store
        .create_answered(Creation::Configuration(&config), &answer)
        .await
        .unwrap();
    measure("create_answered (configuration)", &[("TransactWriteItems", 1)]);

    let events = store.sessions().list_events(&acme, &id).await.unwrap();
    assert_eq!(events.len(), created.events.len() + started.events.len());
    measure("sessions().list_events", &[("Query", 1)]);

    // Not per-request paths, measured for the cost report.
    let first_page = SessionQuery {
        external_user_id: None,
        status: None,
        limit: 20,
        position: Position::Page(1),
    };
    let page = store.sessions().list(&acme, &first_page).await.unwrap();
    assert_eq!(page.sessions, vec![SessionSummary::from(&started.session)]);
    measure("sessions().list (page of 1)", &[("Query", 1)]);
    let due = store.sessions().due(minutes(120), 100).await.unwrap();
    assert_eq!(due, vec![started.session.clone()], "the whole, latest session");
    measure(
        "sessions().due (1 due)",
        &[("Query", keys::DUE_SHARDS as usize), ("BatchGetItem", 1)],
    );
    assert_eq!(store.sessions().due(minutes(30), 100).await.unwrap(), vec![]);
    measure("sessions().due (none due)", &[("Query", keys::DUE_SHARDS as usize)]);

    // A full page, and a sweep that finds as many.
    for i in 2..=20 {
        let other = create_session(&configuration(&acme, "kyc"), &format!("user-{i}"), t0(), 60, &ids);
        store.sessions().commit(&other).await.unwrap();
    }
    log.take();
    let page = store.sessions().list(&acme, &first_page).await.unwrap();
    assert_eq!((page.sessions.len(), page.has_more), (20, false));
    measure("sessions().list (page of 20)", &[("Query", 1)]);
    let due = store.sessions().due(minutes(120), 100).await.unwrap();
    assert_eq!(due.len(), 20);
    measure(
        "sessions().due (20 due)",
        &[("Query", keys::DUE_SHARDS as usize), ("BatchGetItem", 1)],
    );

    println!("DynamoDB Local:\n  {}", report.join("\n  "));
    drop(table);
}

/// A sweep of more due sessions than one `BatchGetItem` takes reads them all,
/// still one query per shard, and returns them in deadline order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_larger_than_a_batch_reads_every_due_session() {
    acceptance::require!(DynamoDbLocal);
    use acceptance::support::{SequentialIds, configuration, create_session, minutes, t0, tenant};

    let table = Table::new().await;
    let log = CallLog::new();
    let store = table.store.clone().with_call_log(Arc::clone(&log));
    let ids = SequentialIds::new();
    let config = configuration(&tenant("acme"), "kyc");
    let mut created = Vec::new();
    for i in 0..130 {
        // Deadlines from t0 + 10 min to t0 + 139 min, in reverse creation order
        // so that deadline order is not id order.
        let t = create_session(&config, &format!("user-{i}"), t0(), 139 - i, &ids);
        store.sessions().commit(&t).await.unwrap();
        created.push(t.session);
    }
    log.take();
    let due = store.sessions().due(minutes(200), 120).await.unwrap();
    let mut expected = created.clone();
    expected.sort_by(|a, b| (a.expires_at, &a.id).cmp(&(b.expires_at, &b.id)));
    expected.truncate(120);
    assert_eq!(due, expected, "the 120 earliest deadlines, earliest first");
    let operations: Vec<&str> = log.take().iter().map(|c| c.operation).collect();
    let queries = operations.iter().filter(|o| **o == "Query").count();
    let batches = operations.iter().filter(|o| **o == "BatchGetItem").count();
    assert_eq!((queries, batches, operations.len()), (keys::DUE_SHARDS as usize, 2, 18));
    drop(table);
}
