//! A partner's own screening vendor, plugged in as an HTTP check provider,
//! end to end: a workflow whose check step names the provider `vendor`, the
//! checks worker calling a fake vendor on this machine (signed as our
//! webhooks are), and the answer deciding the case — a match to review, a
//! refusal that fails the check at once, an outage retried until the vendor
//! answers. On the embedded store the relay runs in process; with
//! `KORALA_TEST_STORE=dynamodb` through DynamoDB Local's stream, EventBridge
//! and SQS on moto.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use acceptance::api::{Api, str_of};
use functions::adapters::providers::vendor::{HttpProvider, HttpProviderConfig};
use functions::adapters::providers::{Providers, ScreeningProvider};
use functions::adapters::standard_webhooks::SigningSecret;
use functions::runtime::relay::Relay;
use korala_domain::screening::{SAMPLE_LIST, ScreeningList};
use serde_json::{Value, json};

/// One request as the fake vendor saw it.
#[derive(Debug, Clone)]
struct Seen {
    body: Value,
    /// Whether `webhook-signature` is the configured secret's signature of
    /// `webhook-id`, `webhook-timestamp` and the body.
    verified: bool,
}

/// A vendor on 127.0.0.1 answering each request (one connection each) with
/// the next of its answers, the last one again once they run out.
struct Vendor {
    url: String,
    secret: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Vendor {
    fn start(answers: Vec<(u16, Value)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the vendor binds");
        let port = listener.local_addr().expect("its address").port();
        let secret = SigningSecret::generate();
        let key = SigningSecret::parse(&secret).expect("a generated secret parses");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        // A thread, not a task: it serves whatever runtime the test and the
        // relay run on, and it ends with the test process.
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                let (status, body) = &answers[n.min(answers.len() - 1)];
                serve(stream, &key, *status, body, &log);
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}/screen"),
            secret,
            seen,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The built-in screening and this vendor as `vendor`.
    fn providers(&self) -> Arc<Providers> {
        let list = ScreeningList::parse(SAMPLE_LIST).expect("the sample list parses");
        let vendor = HttpProvider::new(HttpProviderConfig {
            name: "vendor".into(),
            url: self.url.parse().expect("the vendor's URL"),
            secret: SigningSecret::parse(&self.secret).expect("the vendor's secret"),
        })
        .expect("the HTTP provider builds");
        Arc::new(Providers::new(Arc::new(ScreeningProvider::new(list))).with("vendor", Arc::new(vendor)))
    }
}

fn serve(mut stream: TcpStream, key: &SigningSecret, status: u16, answer: &Value, log: &Mutex<Vec<Seen>>) {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
        }
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let header = |name: &str| {
        head.split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let length: usize = header("content-length").parse().unwrap_or(0);
    let mut body = bytes[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&buffer[..n]),
        }
    }
    let signature = header("webhook-signature");
    let verified = header("webhook-timestamp")
        .parse::<i64>()
        .ok()
        .and_then(|timestamp| key.sign(&header("webhook-id"), timestamp, &body).ok())
        .is_some_and(|expected| expected == signature);
    log.lock().unwrap().push(Seen {
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        verified,
    });
    let answer = answer.to_string();
    let response = format!(
        "HTTP/1.1 {status} Fake\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

struct Case {
    api: Api,
    relay: Relay,
    vendor: Vendor,
}

impl Case {
    /// An application whose checks worker knows the vendor, enabled for the
    /// main organisation, and a configuration `vendor-screened` whose only
    /// workflow screens for sanctions through it.
    async fn new(answers: Vec<(u16, Value)>) -> Self {
        let c = Self::not_enabled(answers).await;
        let store = &c.api.app.store;
        let mut org = store.get_organization(&c.api.key.org_id).await.unwrap().unwrap();
        org.providers = vec!["vendor".into()];
        store.update_organization(&org).await.unwrap();
        c
    }

    /// [`Case::new`], with the vendor enabled for no organisation.
    async fn not_enabled(answers: Vec<(u16, Value)>) -> Self {
        let vendor = Vendor::start(answers);
        let mut api = Api::new().await;
        let relay = api.relay_with(vendor.providers()).await;
        api.expect(
            201,
            "POST",
            "/workflows",
            Some(json!({
                "name": "Vendor sanctions",
                "slug": "vendor-sanctions",
                "steps": [
                    {"type": "check", "config": {"kind": "sanctions", "provider": "vendor"}},
                    {"type": "output", "config": {}}
                ]
            })),
        )
        .await;
        api.simple_configuration("vendor-screened", &["vendor-sanctions"], json!({}))
            .await;
        Self { api, relay, vendor }
    }

    async fn relay(&self) {
        self.relay.run_until_idle(100).await.expect("the relay steps");
    }

    /// A started session for Maria Clean Example (not on the sample list,
    /// not a sandbox name: only the vendor decides); its id.
    async fn started_session(&self) -> String {
        let session = self
            .api
            .create_session(json!({
                "configurationSlug": "vendor-screened",
                "externalUserId": "usr_maria",
                "participants": [{"role": "subject", "displayName": "Maria Clean Example"}],
            }))
            .await;
        let token = str_of(&session, "accessToken");
        let (status, body, _) = self.api.end_user("POST", &format!("/access/{token}/start"), None).await;
        assert_eq!(status, 200, "{body}");
        str_of(&session, "id").to_owned()
    }

    async fn check(&self, id: &str) -> (Value, Value) {
        let detail = self.api.session(id).await;
        let check = detail["checks"][0].clone();
        (detail, check)
    }
}

fn findings(findings: Value) -> (u16, Value) {
    (200, json!({ "findings": findings }))
}

#[tokio::test]
async fn a_possible_match_from_the_vendor_waits_for_review() {
    let c = Case::new(vec![findings(json!([{
        "entityId": "acme-8812",
        "entityName": "Maria Klean Example",
        "matchedName": "Maria Klean",
        "score": 0.87,
        "strength": "possible",
        "topics": ["sanction"],
        "datasets": ["acme_global_sanctions"],
        "birthDateMatch": null,
        "vendorReference": "ignored"
    }]))])
    .await;
    let id = c.started_session().await;
    c.relay().await;

    let (detail, check) = c.check(&id).await;
    assert_eq!(detail["status"], "pending_review", "{detail}");
    assert_eq!(detail["workflows"][0]["status"], "pending_review");
    assert_eq!(check["status"], "completed", "{check}");
    assert_eq!(check["provider"], "vendor");
    assert_eq!(check["kind"], "sanctions");
    assert_eq!(
        check["findings"],
        json!([{
            "entityId": "acme-8812",
            "entityName": "Maria Klean Example",
            "matchedName": "Maria Klean",
            "score": 0.87,
            "strength": "possible",
            "topics": ["sanction"],
            "datasets": ["acme_global_sanctions"],
            "birthDateMatch": null,
            "countryMatch": null
        }])
    );

    let seen = c.vendor.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].verified, "signed with the provider's secret: {seen:?}");
    let reference = seen[0].body["reference"].clone();
    assert!(reference.as_str().is_some_and(|r| r.starts_with("ref_")), "{reference}");
    assert_eq!(
        seen[0].body,
        json!({"kind": "sanctions", "subject": {
            "name": "Maria Clean Example", "birthDate": null, "countries": [], "entity": "person"},
            "mode": "test", "reference": reference}),
        "a sandbox session's check says so"
    );
}

/// A vendor is a contract: an organisation no operator enabled it for
/// cannot reach it by naming it in a workflow. The check fails at once,
/// and the vendor hears nothing.
#[tokio::test]
async fn a_vendor_not_enabled_for_the_organisation_is_never_called() {
    let c = Case::not_enabled(vec![findings(json!([]))]).await;
    let id = c.started_session().await;
    c.relay().await;

    let (detail, check) = c.check(&id).await;
    assert_eq!(check["status"], "failed", "{detail}");
    assert_eq!(check["provider"], "vendor");
    assert!(
        str_of(&check, "failure").contains("not enabled for this organisation"),
        "{check}"
    );
    assert_eq!(detail["status"], "failed");
    assert!(c.vendor.seen().is_empty(), "{:?}", c.vendor.seen());
}

#[tokio::test]
async fn a_request_the_vendor_refuses_fails_the_check_at_once() {
    let c = Case::new(vec![(400, json!({"error": "unsupported subject"}))]).await;
    let id = c.started_session().await;
    c.relay().await;

    let (detail, check) = c.check(&id).await;
    assert_eq!(check["status"], "failed", "{detail}");
    assert_eq!(check["provider"], "vendor");
    let failure = str_of(&check, "failure");
    assert!(failure.contains("refused") && failure.contains("400"), "{failure}");
    assert!(!failure.contains("attempts"), "not retried: {failure}");
    assert_eq!(detail["status"], "failed");
    assert_eq!(detail["workflows"][0]["status"], "failed");
    assert_eq!(c.vendor.seen().len(), 1, "asked once");
}

#[tokio::test]
async fn a_vendor_outage_is_retried_until_it_answers() {
    let c = Case::new(vec![(503, json!({})), (503, json!({})), findings(json!([]))]).await;
    if c.api.sqlite.is_none() {
        // SQS redelivers in real time: the backoff is tested on the embedded
        // queue, whose visibility follows the test clock.
        eprintln!("skipped on the emulated AWS path: SQS visibility timeouts run in real time");
        return;
    }
    let id = c.started_session().await;
    c.relay().await;
    for (attempt, wait) in [(1, 10), (2, 20)] {
        let (detail, check) = c.check(&id).await;
        assert_eq!(check["status"], "pending", "after attempt {attempt}: {detail}");
        assert_eq!(c.vendor.seen().len(), attempt);
        c.api.clock.advance_seconds(wait);
        c.relay().await;
    }

    let (detail, check) = c.check(&id).await;
    assert_eq!(check["status"], "completed", "{detail}");
    assert_eq!(check["provider"], "vendor");
    assert_eq!(check["findings"], json!([]));
    assert_eq!(detail["status"], "completed");
    assert_eq!(detail["workflows"][0]["output"]["verdict"], "clear");
    let seen = c.vendor.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|s| s.verified), "{seen:?}");
}
