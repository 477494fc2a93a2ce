//! The store conformance suite against the DynamoDB adapter on DynamoDB
//! Local, each case on a fresh table made from the adapter's own table
//! definition, plus what the hot paths cost in requests and capacity.
//!
//! DynamoDB Local must be running and `AWS_ENDPOINT_URL_DYNAMODB` point at
//! it: `scripts/test` starts it around `cargo test`. Without it these tests
//! fail rather than pass by skipping.

use std::sync::Arc;

use acceptance::dynamodb::Table;
use functions::store::dynamodb::CallLog;
use korala_domain::ports::{IdempotencyClaim, Position, SessionQuery, Store, StoredResponse};

mod dynamodb_local {
    acceptance::store_conformance_tests!(|| async { super::Table::new().await });
}

/// The requests behind the calls every API request makes: each must be one
/// DynamoDB request. Prints what each consumed, for the cost report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_paths_are_one_request_each() {
    use acceptance::support::{SequentialIds, configuration, create_session, minutes, org, start, t0};

    let table = Table::new().await;
    let log = CallLog::new();
    let store = table.store.clone().with_call_log(Arc::clone(&log));
    let ids = SequentialIds::new();
    let acme = org("acme");
    let created = create_session(&configuration(&acme, "kyc"), "user-1", t0(), 60, &ids);
    let id = created.session.id.clone();
    let mut report = Vec::new();
    let mut measure = |label: &str, expected_operation: &str, expected_calls: usize| {
        let calls = log.take();
        let operations: Vec<&str> = calls.iter().map(|c| c.operation).collect();
        assert_eq!(
            operations,
            vec![expected_operation; expected_calls],
            "{label}: {expected_calls} × {expected_operation}"
        );
        let capacity: f64 = calls.iter().map(|c| c.consumed_capacity).sum();
        report.push(format!(
            "{label:<34} {expected_calls:>2} × {expected_operation:<18} {capacity:>6.1} capacity units"
        ));
    };

    store.commit(&created).await.unwrap();
    measure(
        &format!("commit (create, {} events)", created.events.len()),
        "TransactWriteItems",
        1,
    );

    let read = store.get_session(&acme, &id).await.unwrap().expect("the session");
    measure("get_session", "GetItem", 1);

    let found = store
        .find_session_by_token_hash(&created.session.access_token.hash)
        .await
        .unwrap();
    assert_eq!(found.as_ref().map(|s| &s.id), Some(&id));
    measure("find_session_by_token_hash", "Query", 1);

    let started = start(&read, minutes(1), &ids);
    store.commit(&started).await.unwrap();
    measure(
        &format!("commit (update, {} events)", started.events.len()),
        "TransactWriteItems",
        1,
    );

    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-1", t0()).await,
        Ok(IdempotencyClaim::Acquired)
    );
    measure("claim_idempotency_key (new)", "PutItem", 1);
    assert_eq!(
        store.claim_idempotency_key(&acme, "key-1", "fp-1", t0()).await,
        Ok(IdempotencyClaim::InProgress)
    );
    measure("claim_idempotency_key (taken)", "PutItem", 1);
    let response = StoredResponse {
        status: 201,
        body: "{}".into(),
        location: None,
    };
    store.complete_idempotency_key(&acme, "key-1", &response).await.unwrap();
    measure("complete_idempotency_key", "UpdateItem", 1);

    let events = store.list_events(&acme, &id).await.unwrap();
    assert_eq!(events.len(), created.events.len() + started.events.len());
    measure("list_events", "Query", 1);

    // Not per-request paths, measured for the cost report.
    let page = store
        .list_sessions(
            &acme,
            &SessionQuery {
                external_user_id: None,
                status: None,
                limit: 20,
                position: Position::Page(1),
            },
        )
        .await
        .unwrap();
    assert_eq!(page.sessions.len(), 1);
    measure("list_sessions (first page)", "Query", 1);
    let due = store.sessions_due(minutes(120), 100).await.unwrap();
    assert_eq!(due.len(), 1);
    measure("sessions_due (one per shard)", "Query", 16);

    println!("DynamoDB Local, one session:\n  {}", report.join("\n  "));
    drop(table);
}
