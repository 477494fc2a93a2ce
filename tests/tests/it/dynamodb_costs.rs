//! What each API operation costs on DynamoDB: the requests it sends and the
//! capacity they consume, measured through the real handlers on DynamoDB
//! Local. The test fails when an operation sends a request more (or other)
//! than its budget below, so a change cannot add a round trip to a hot path
//! unnoticed; `-- --nocapture` prints the report.
//!
//! Budgets: a read is one request; a mutation one read and one conditional
//! write (a transaction with its events). Authentication costs nothing once
//! the process has the key (it is cached for a minute), so the key is loaded
//! before measuring. The exceptions are spelled out where they are budgeted.
//!
//! The same measurements hold the SAM template's IAM to what the handlers
//! send: each request must be allowed by the policies of the function that
//! serves the operation, so a too-narrow policy fails here, not in production.

use std::sync::Arc;

use acceptance::api::{Api, str_of, workflow_ids};
use acceptance::dynamodb::Table;
use functions::adapters::store::dynamodb::CallLog;
use serde_json::{Value, json};

fn ok(reply: acceptance::api::Reply, status: u16) -> Value {
    assert_eq!(reply.0.as_u16(), status, "{}", reply.1);
    reply.1
}

struct Meter {
    api: Api,
    log: Arc<CallLog>,
    report: Vec<String>,
    /// Per operation, the DynamoDB requests it sent.
    sent: Vec<(String, Vec<&'static str>)>,
}

impl Meter {
    async fn new() -> Self {
        let table = Arc::new(Table::new().await);
        let log = CallLog::new();
        let store = table.store.clone().with_call_log(Arc::clone(&log));
        let mut api = Api::with_store(Arc::new(store)).await;
        api.table = Some(table);
        // Metered as deployed (the tests' default lifts the limits, and with
        // them the meter's writes); the operations here stay within them.
        api.app.settings = Arc::new(functions::app::Settings {
            partner_rate: korala_domain::limits::Rate::PARTNER,
            access_rate: korala_domain::limits::Rate::ACCESS_TOKEN,
            send_rate: korala_domain::limits::WEBHOOK_SENDS,
            ..(*api.app.settings).clone()
        });
        // Test events and redeliveries are queued; the queue is not DynamoDB.
        let queues = functions::adapters::store::sqlite::SqliteStore::in_memory().expect("an in-memory store");
        api.app.deliveries = Some(Arc::new(queues.queue("webhook-deliveries", api.app.clock.clone())));
        // Loads the partner's key into the process's cache.
        api.expect(200, "GET", "/workflows", None).await;
        log.take();
        Self {
            api,
            log,
            report: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Sends one request and checks the DynamoDB requests it made: the
    /// admission requests every request of its kind makes ([`admission`]),
    /// then `expected`, its handler's.
    async fn measure(&mut self, operation: &str, expected: &[&str], reply: impl Future<Output = Value>) -> Value {
        self.log.take();
        let body = reply.await;
        let calls = self.log.take();
        let sent: Vec<&'static str> = calls.iter().map(|c| c.operation).collect();
        let expected: Vec<&str> = admission(operation)
            .into_iter()
            .chain(expected.iter().copied())
            .collect();
        assert_eq!(sent, expected, "{operation}: DynamoDB requests");
        self.sent.push((operation.to_owned(), sent.clone()));
        let capacity: f64 = calls.iter().map(|c| c.consumed_capacity).sum();
        self.report.push(format!(
            "{operation:<48} {:>2} requests {capacity:>7.1} capacity units   {}",
            calls.len(),
            sent.join(" + ")
        ));
        body
    }
}

/// What a request costs before its handler runs: its caller's rate bucket
/// (one conditional update while the process guesses the bucket's state
/// right, as it does here) and, for a signed mutation, its signature (one
/// conditional put: a signature is good once). Test events and
/// redeliveries draw on an allowance of their own besides.
fn admission(operation: &str) -> Vec<&'static str> {
    let mut words = operation.split_whitespace();
    let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let mut sent = vec!["UpdateItem (rate)"];
    if method != "GET" && !path.starts_with("/access") {
        sent.push("PutItem (signature)");
    }
    if path.ends_with("/test") || path.ends_with("/redeliver") {
        sent.push("UpdateItem (rate)");
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_operation_stays_within_its_request_budget() {
    acceptance::require!(DynamoDbLocal);
    let mut m = Meter::new().await;
    let api = m.api.clone();

    // Configurations and workflows: administrative, not hot paths.
    // Creating a configuration reads the organisation's workflows (to check
    // the slugs it names) and writes it with its tenant's count (the quota)
    // in one transaction.
    m.measure(
        "POST /session-configurations",
        &["Query", "TransactWriteItems"],
        async { api.kyc_configuration("kyc").await },
    )
    .await;
    m.measure("GET /session-configurations", &["Query"], async {
        api.expect(200, "GET", "/session-configurations", None).await
    })
    .await;
    m.measure("GET /session-configurations/{slug}", &["GetItem"], async {
        api.expect(200, "GET", "/session-configurations/kyc", None).await
    })
    .await;
    // A patch revalidates the whole configuration, workflows included.
    m.measure(
        "PATCH /session-configurations/{slug}",
        &["Query", "GetItem", "PutItem"],
        async {
            api.expect(
                200,
                "PATCH",
                "/session-configurations/kyc",
                Some(json!({"defaultExpiresInMinutes": 2880})),
            )
            .await
        },
    )
    .await;
    let workflow = json!({
        "name": "Source of funds", "slug": "source-of-funds",
        "steps": [
            {"type": "capture", "config": {"fields": [{"name": "source", "type": "text"}]}},
            {"type": "output", "config": {"fields": {}}}
        ]
    });
    m.measure("POST /workflows", &["TransactWriteItems"], async {
        api.expect(201, "POST", "/workflows", Some(workflow.clone())).await
    })
    .await;
    m.measure("GET /workflows", &["Query"], async {
        api.expect(200, "GET", "/workflows", None).await
    })
    .await;
    m.measure("GET /workflows/{slug}", &["GetItem"], async {
        api.expect(200, "GET", "/workflows/source-of-funds", None).await
    })
    .await;
    m.measure("PUT /workflows/{slug}", &["GetItem", "PutItem"], async {
        api.expect(200, "PUT", "/workflows/source-of-funds", Some(workflow.clone()))
            .await
    })
    .await;
    // Deleting checks that no configuration uses the workflow.
    m.measure(
        "DELETE /workflows/{slug}",
        &["GetItem", "Query", "TransactWriteItems"],
        async { api.expect(204, "DELETE", "/workflows/source-of-funds", None).await },
    )
    .await;

    // Sessions: the hot paths. Creating one reads the configuration and the
    // organisation's workflows (overrides of built-ins), then commits.
    let body = json!({"configurationSlug": "kyc", "externalUserId": "usr_1", "participants": [{"role": "subject", "displayName": "John Smith"}]});
    let session = m
        .measure("POST /sessions", &["GetItem", "Query", "TransactWriteItems"], async {
            api.expect(201, "POST", "/sessions", Some(body.clone())).await
        })
        .await;
    // With an Idempotency-Key: the claim on top, and the stored response
    // inside the commit's transaction.
    m.measure(
        "POST /sessions (Idempotency-Key)",
        &["PutItem", "GetItem", "Query", "TransactWriteItems"],
        async {
            let raw = api
                .signed(&api.key, "POST", "/sessions", Some(&body))
                .header("Idempotency-Key", "costs-1");
            ok(api.send(raw).await, 201)
        },
    )
    .await;
    m.measure("POST /sessions (replayed Idempotency-Key)", &["PutItem"], async {
        let raw = api
            .signed(&api.key, "POST", "/sessions", Some(&body))
            .header("Idempotency-Key", "costs-1");
        ok(api.send(raw).await, 201)
    })
    .await;
    let id = str_of(&session, "id").to_owned();
    let token = str_of(&session, "accessToken").to_owned();
    let swf = workflow_ids(&session);
    m.measure("GET /sessions", &["Query"], async {
        api.expect(200, "GET", "/sessions?limit=10", None).await
    })
    .await;
    m.measure("GET /sessions?externalUserId=&status=", &["Query"], async {
        api.expect(200, "GET", "/sessions?externalUserId=usr_1&status=created", None)
            .await
    })
    .await;
    m.measure("GET /sessions/{id}", &["GetItem"], async {
        api.expect(200, "GET", &format!("/sessions/{id}"), None).await
    })
    .await;
    // The session and its history share a partition: one Query.
    m.measure("GET /sessions/{id}/events", &["Query"], async {
        api.expect(200, "GET", &format!("/sessions/{id}/events"), None).await
    })
    .await;

    // The end user's side.
    m.measure("GET /access/{token}", &["Query"], async {
        ok(api.end_user("GET", &format!("/access/{token}"), None).await, 200)
    })
    .await;
    m.measure("POST /access/{token}/start", &["Query", "TransactWriteItems"], async {
        ok(api.end_user("POST", &format!("/access/{token}/start"), None).await, 200)
    })
    .await;
    let id_document = api.id_document("John Smith");
    m.measure(
        "POST /access/{token}/workflows/{swf}",
        &["Query", "TransactWriteItems"],
        async {
            ok(
                api.end_user(
                    "POST",
                    &format!("/access/{token}/workflows/{}", swf[0]),
                    Some(json!({"data": id_document})),
                )
                .await,
                200,
            )
        },
    )
    .await;
    // An upload: the session records it (one conditional write); signing
    // its URL is storage's, not the table's.
    m.measure(
        "POST /access/{token}/workflows/{swf}/uploads",
        &["Query", "TransactWriteItems"],
        async {
            let body = json!({"field": "documentImage", "fileName": "bill.pdf", "contentType": "application/pdf", "size": 1000});
            ok(
                api.end_user("POST", &format!("/access/{token}/workflows/{}/uploads", swf[1]), Some(body))
                    .await,
                201,
            )
        },
    )
    .await;
    // A download reads the session; the URL is storage's.
    m.measure(
        "GET /sessions/{id}/documents/{documentId}/content",
        &["GetItem"],
        async {
            let path = format!("/sessions/{id}/documents/doc_0000/content");
            ok(api.partner("GET", &path, None).await, 404)
        },
    )
    .await;
    let (_, near) = acceptance::api::near_match();
    let poa = api.proof_of_address(near);
    m.measure(
        "POST /access/{token}/workflows/{swf} (to review)",
        &["Query", "TransactWriteItems"],
        async {
            ok(
                api.end_user(
                    "POST",
                    &format!("/access/{token}/workflows/{}", swf[1]),
                    Some(json!({"data": poa})),
                )
                .await,
                200,
            )
        },
    )
    .await;

    // The partner's decisions.
    m.measure(
        "POST /sessions/{id}/workflows/{swf}/review",
        &["GetItem", "TransactWriteItems"],
        async {
            api.expect(
                200,
                "POST",
                &format!("/sessions/{id}/workflows/{}/review", swf[1]),
                Some(json!({"decision": "approved", "reason": "Name checked"})),
            )
            .await
        },
    )
    .await;
    m.measure(
        "POST /sessions/{id}/resolve",
        &["GetItem", "TransactWriteItems"],
        async {
            api.expect(
                200,
                "POST",
                &format!("/sessions/{id}/resolve"),
                Some(json!({"resolution": "approved", "reason": "Checked"})),
            )
            .await
        },
    )
    .await;
    m.measure(
        "POST /sessions/{id}/workflows/{swf}/resubmit",
        &["GetItem", "TransactWriteItems"],
        async {
            api.expect(
                200,
                "POST",
                &format!("/sessions/{id}/workflows/{}/resubmit", swf[0]),
                None,
            )
            .await
        },
    )
    .await;
    // Webhook endpoints and their delivery log. Creating an endpoint writes
    // it with its tenant's count (the quota) in one transaction; the
    // delivery calls first check the endpoint is the caller's.
    let endpoint = m
        .measure("POST /webhook-endpoints", &["TransactWriteItems"], async {
            api.expect(
                201,
                "POST",
                "/webhook-endpoints",
                Some(json!({"url": "https://hooks.example.com/korala", "events": ["session_completed"]})),
            )
            .await
        })
        .await;
    let endpoint = str_of(&endpoint, "id").to_owned();
    let delivery = m
        .measure("POST /webhook-endpoints/{id}/test", &["GetItem", "PutItem"], async {
            api.expect(202, "POST", &format!("/webhook-endpoints/{endpoint}/test"), None)
                .await
        })
        .await;
    m.measure("GET /webhook-endpoints/{id}/deliveries", &["GetItem", "Query"], async {
        api.expect(200, "GET", &format!("/webhook-endpoints/{endpoint}/deliveries"), None)
            .await
    })
    .await;
    let delivery = str_of(&delivery, "id").to_owned();
    m.measure(
        "POST /webhook-deliveries/{id}/redeliver (refused: pending)",
        &["GetItem"],
        async {
            ok(
                api.partner("POST", &format!("/webhook-deliveries/{delivery}/redeliver"), None)
                    .await,
                409,
            )
        },
    )
    .await;
    m.measure(
        "DELETE /session-configurations/{slug}",
        &["TransactWriteItems"],
        async { api.expect(204, "DELETE", "/session-configurations/kyc", None).await },
    )
    .await;

    println!("\nDynamoDB requests and consumed capacity per API operation (DynamoDB Local):");
    for line in &m.report {
        println!("  {line}");
    }
    the_template_grants_what_each_operation_sent(&m.sent);
}

/// The template's policies on the sessions table, by what they allow.
const READ_POLICY: &str = "- !Ref SessionsTableReadPolicy";
const WRITE_POLICY: &str = "- !Ref SessionsTableWritePolicy";
/// Writes to the rate buckets and used signatures only.
const ADMISSION_POLICY: &str = "- !Ref SessionsTableAdmissionPolicy";

/// The policy a DynamoDB request needs (a transaction needs its items'
/// write actions, which the write policy holds).
fn policy_for(request: &str) -> &'static str {
    match request {
        "GetItem" | "BatchGetItem" | "Query" => READ_POLICY,
        "PutItem" | "UpdateItem" | "DeleteItem" | "TransactWriteItems" => WRITE_POLICY,
        "UpdateItem (rate)" | "PutItem (signature)" => ADMISSION_POLICY,
        other => panic!("no template policy is known to allow {other}"),
    }
}

fn the_template_grants_what_each_operation_sent(sent: &[(String, Vec<&'static str>)]) {
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml"))
        .expect("infra/template.yaml");
    let shape = |path: &str| {
        let path = path.split('?').next().unwrap_or(path);
        path.split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    };
    for (operation, requests) in sent {
        // "POST /sessions (Idempotency-Key)" → POST, /sessions
        let mut words = operation.split_whitespace();
        let (method, path) = (words.next().unwrap(), words.next().unwrap());
        let route = functions::api::routes::all()
            .into_iter()
            .find(|r| r.method.as_str() == method && shape(r.path) == shape(path))
            .unwrap_or_else(|| panic!("{operation}: no route"));
        let at = template
            .find(&format!("        Binary: {}\n", route.function))
            .unwrap_or_else(|| panic!("{}: not in the template", route.function));
        let block = &template[at..];
        let block = &block[..block.find("\n\n").unwrap_or(block.len())];
        for request in requests {
            assert!(
                block.contains(policy_for(request)),
                "{operation}: {} sends {request}, which its template policies do not allow",
                route.function
            );
        }
    }
}
