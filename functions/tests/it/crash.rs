//! The outbox survives a crash: a local server commits a session's events
//! and is killed (SIGKILL, no clean-up) before any is published; a second
//! server on the same database delivers every one of them to the endpoint.
//!
//! The first server runs with `KORALA_EVENTS=off`, which holds the window
//! between commit and publish open for as long as the test needs, so the kill
//! lands in it every time instead of racing the relay.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use functions::web::auth::{sign, signing_payload};
use serde_json::{Value, json};

const KEY_ID: &str = "ak_test_crashcrashcrashcrash0001";
const SECRET: &str = "sk_test_crash-test-secret-0123456789abcdef";

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(db: &Path, events: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_local-server"))
            .env("SESSIONS_DB_PATH", db)
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("DEV_API_KEY_ID", KEY_ID)
            .env("DEV_API_SECRET", SECRET)
            .env("KORALA_EVENTS", events)
            .env_remove("SESSIONS_TABLE")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the local server starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("the server prints its address").unwrap();
            if let Some(rest) = line.strip_prefix("Sessions API listening on ") {
                break rest.trim_end_matches("/api/v1").to_owned();
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, base }
    }

    /// One request over a fresh connection; partner requests are signed.
    fn call(&self, method: &str, path: &str, body: Option<Value>, signed: bool) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let path = format!("/api/v1{path}");
        let mut headers = String::new();
        if signed {
            let ts = chrono::Utc::now().timestamp().to_string();
            let signature = sign(SECRET, &signing_payload(&ts, method, &path, body.as_bytes())).unwrap();
            headers = format!("x-api-key: {KEY_ID}\r\nx-timestamp: {ts}\r\nx-signature: {signature}\r\n");
        }
        if !body.is_empty() {
            headers.push_str("content-type: application/json\r\n");
        }
        let address = self.base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: {address}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    fn partner(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body, true);
        assert!(status < 300, "{method} {path}: {status} {value}");
        value
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_committed_before_a_crash_are_delivered_after_it() {
    let dir = std::env::temp_dir().join(format!("korala-crash-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("sessions.db");
    let receiver = support::Receiver::start();
    let port = receiver.port;

    let first = Server::start(&db, "off");
    first.partner(
        "POST",
        "/webhook-endpoints",
        Some(json!({"url": format!("http://127.0.0.1:{port}/hooks"), "events": [
            "session_completed", "session_resolved", "session_workflow_completed"]})),
    );
    first.partner(
        "POST",
        "/session-configurations",
        Some(json!({"name": "Identity", "slug": "identity", "workflowSlugs": ["id-document"]})),
    );
    let session = first.partner(
        "POST",
        "/sessions",
        Some(json!({"configurationSlug": "identity", "externalUserId": "usr_crash"})),
    );
    let id = session["id"].as_str().unwrap().to_owned();
    let token = session["accessToken"].as_str().unwrap();
    let step = session["workflows"][0]["id"].as_str().unwrap();
    let document = json!({"data": {
        "documentType": "passport", "documentNumber": "X1234567", "fullName": "Jane Doe",
        "dateOfBirth": "1990-04-12", "expiryDate": "2034-01-01", "issuingCountry": "gb"}});
    let (status, view) = first.call(
        "POST",
        &format!("/access/{token}/workflows/{step}"),
        Some(document),
        false,
    );
    assert_eq!((status, view["status"].as_str()), (200, Some("completed")), "{view}");
    let history = first.partner("GET", &format!("/sessions/{id}/events"), None);
    let expected: BTreeSet<String> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            ["session_completed", "session_resolved", "session_workflow_completed"]
                .contains(&e["type"].as_str().unwrap())
        })
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(expected.len(), 3, "{history}");
    first.kill();
    assert!(
        receiver.deliveries().is_empty(),
        "nothing was published before the crash"
    );

    let second = Server::start(&db, "on");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got: BTreeSet<String> = receiver.deliveries().into_iter().map(|d| d.webhook_id).collect();
        if got == expected {
            break;
        }
        assert!(Instant::now() < deadline, "delivered {got:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}
