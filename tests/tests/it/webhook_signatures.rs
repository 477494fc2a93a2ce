//! Our webhook signatures, verified by the off-the-shelf PyPI
//! `standardwebhooks` library exactly as a partner's receiver would verify
//! them — not by our own code. `scripts/test` installs the library
//! (scripts/python-tools) and points `KORALA_PYTHON` at its interpreter.

use std::io::Write;
use std::process::{Command, Stdio};

use functions::adapters::standard_webhooks::SigningSecret;

const VERIFY: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
request = json.load(sys.stdin)
try:
    Webhook(request["secret"]).verify(request["body"], request["headers"])
except Exception as e:
    print(type(e).__name__, e)
    sys.exit(1)
"#;

/// Whether `standardwebhooks` accepts this delivery.
fn verified(secret: &str, body: &str, headers: &[(&str, String)]) -> bool {
    let python = std::env::var("KORALA_PYTHON").unwrap_or_else(|_| {
        panic!("KORALA_PYTHON is not set: run scripts/test, which installs standardwebhooks (scripts/python-tools)")
    });
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone().into()))
        .collect();
    let request = serde_json::json!({"secret": secret, "body": body, "headers": headers});
    let mut child = Command::new(python)
        .args(["-c", VERIFY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the Python interpreter runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    eprintln!("standardwebhooks: {}", String::from_utf8_lossy(&output.stdout));
    output.status.success()
}

#[test]
fn standardwebhooks_verifies_our_signatures() {
    acceptance::require!(StandardWebhooks);
    let secret = SigningSecret::generate();
    let key = SigningSecret::parse(&secret).unwrap();
    let body = r#"{"eventId":"evt_01","event":"session_completed","timestamp":"2026-11-25T21:00:00Z","data":{"sessionId":"ses_01","status":"completed","name":"Zoë Ünal"}}"#;
    let now = chrono::Utc::now().timestamp();
    let headers = key.headers("evt_01", now, body.as_bytes()).unwrap();
    assert!(verified(&secret, body, &headers), "a genuine delivery verifies");

    let tampered = body.replace("completed", "failed");
    assert!(!verified(&secret, &tampered, &headers), "a changed body does not");
    let other = SigningSecret::generate();
    assert!(!verified(&other, body, &headers), "another endpoint's secret does not");
    let stale = key.headers("evt_01", now - 3600, body.as_bytes()).unwrap();
    assert!(
        !verified(&secret, body, &stale),
        "an hour-old timestamp does not (replay protection)"
    );
}
