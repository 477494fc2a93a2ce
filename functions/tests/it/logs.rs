//! What the logs may hold: the local server runs with every debug line on,
//! in the JSON format Lambda uses, with metric documents opted in, while a
//! session goes through creation, both submissions, a screening check and
//! its webhook deliveries, plus requests the API refuses; a vendor answers a
//! screening with the subject's name where a number belongs, and two
//! receivers answer deliveries with the delivery echoed (in no HTTP at all,
//! and in a 500). Personal data and
//! secrets travel through all of it; none may reach a line of output (the
//! API secret only the start banner's, which exists to show it). Every
//! request line must carry its request id and function, which the response
//! also names in `X-Request-Id`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support;
use functions::adapters::standard_webhooks::SigningSecret;
use functions::web::auth::{sign, signing_payload};
use serde_json::{Value, json};

const KEY_ID: &str = "ak_test_logslogslogslogslogs0001";

/// Output lines, as they were written.
type Lines = Arc<Mutex<Vec<String>>>;

/// The start banner's lines (`local-server`), the only plain-text output.
const BANNER: [&str; 10] = [
    "Relaying session events",
    "Not relaying events",
    "Sessions API listening on ",
    "Reading documents with ",
    "No OCR engine",
    "  organisation ",
    "  API key id ",
    "  API secret ",
    "Sign requests with",
    "  export KORALA_URL=",
];
/// The banner lines that show the API secret, on purpose.
const SECRET_BANNER: [&str; 2] = ["  API secret ", "  export KORALA_URL="];

struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Value,
}

struct Server {
    child: Child,
    address: String,
    secret: String,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn collect(stream: impl Read + Send + 'static, into: Lines) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            into.lock().unwrap().push(line);
        }
    })
}

impl Server {
    fn start(db: &Path, secret: &str, env: &[(&str, String)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_local-server"))
            .env("SESSIONS_DB_PATH", db)
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("DEV_API_KEY_ID", KEY_ID)
            .env("DEV_API_SECRET", secret)
            .env("KORALA_EVENTS", "on")
            .env("RUST_LOG", "debug")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("KORALA_METRICS", "emf")
            .env_remove("AWS_LAMBDA_LOG_LEVEL")
            .env_remove("AWS_LAMBDA_FUNCTION_NAME")
            .env_remove("SESSIONS_TABLE")
            .env_remove("KORALA_SCREENING_LIST")
            .env_remove("KORALA_CHECK_PROVIDERS")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the local server starts");
        let (stdout, stderr) = (Lines::default(), Lines::default());
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        let deadline = Instant::now() + Duration::from_secs(30);
        let address = loop {
            let found = stdout.lock().unwrap().iter().find_map(|l| {
                l.strip_prefix("Sessions API listening on http://")
                    .map(|rest| rest.trim_end_matches("/api/v1").to_owned())
            });
            if let Some(address) = found {
                break address;
            }
            assert!(Instant::now() < deadline, "no address in {:?}", stderr.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            address,
            secret: secret.to_owned(),
            stdout,
            stderr,
            readers,
        }
    }

    /// One request over a fresh connection; returns the signature sent, if any.
    fn send(&self, method: &str, path: &str, body: &str, signed: bool, extra: &str) -> (Reply, Option<String>) {
        let path = format!("/api/v1{path}");
        let mut headers = extra.to_owned();
        let mut signature = None;
        if signed {
            let ts = chrono::Utc::now().timestamp().to_string();
            let sig = sign(&self.secret, &signing_payload(&ts, method, &path, body.as_bytes())).unwrap();
            headers.push_str(&format!(
                "x-api-key: {KEY_ID}\r\nx-timestamp: {ts}\r\nx-signature: {sig}\r\n"
            ));
            signature = Some(sig);
        }
        if !body.is_empty() {
            headers.push_str("content-type: application/json\r\n");
        }
        let mut stream = TcpStream::connect(&self.address).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: {}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.address,
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head[9..12].parse().unwrap();
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let body = serde_json::from_str(body).unwrap_or(Value::Null);
        (Reply { status, headers, body }, signature)
    }

    /// How many output lines so far contain `text`.
    fn logged(&self, text: &str) -> usize {
        self.stdout.lock().unwrap().iter().filter(|l| l.contains(text)).count()
    }

    fn stop(mut self) -> (Vec<String>, Vec<String>) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let stdout = self.stdout.lock().unwrap().clone();
        let stderr = self.stderr.lock().unwrap().clone();
        (stdout, stderr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request read off a raw connection: its request line and
/// its body (`content-length` bytes).
fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return None,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
        }
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    let mut body = bytes[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&buffer[..n]),
        }
    }
    Some((head.lines().next().unwrap_or_default().to_owned(), body))
}

/// A peer on 127.0.0.1 that answers each request (one per connection) as
/// `answer` makes it from the request line and body; counts what it answered.
fn raw_peer(answer: fn(&str, &[u8]) -> Vec<u8>) -> (u16, Arc<Mutex<usize>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answered = Arc::new(Mutex::new(0));
    let count = answered.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            if let Some((line, body)) = read_request(&mut stream) {
                let _ = stream.write_all(&answer(&line, &body));
                *count.lock().unwrap() += 1;
            }
        }
    });
    (port, answered)
}

/// A screening vendor whose 2xx answer cannot be used: the subject's name
/// where a score belongs, which a JSON error message would quote.
fn echoing_vendor(_: &str, body: &[u8]) -> Vec<u8> {
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    let answer = json!({"findings": [{"entityId": "e-1", "entityName": "Someone Else",
        "score": request["subject"]["name"], "strength": "possible"}]})
    .to_string();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    )
    .into_bytes()
}

/// A webhook receiver answering each delivery with its own body: as a
/// header line, which is no HTTP (`/malformed`), or as a 500's reason
/// phrase and body (`/echo`).
fn echoing_receiver(line: &str, body: &[u8]) -> Vec<u8> {
    let body = String::from_utf8_lossy(body).replace(['\r', '\n'], " ");
    if line.contains("/malformed") {
        format!("HTTP/1.1 200 OK\r\n{body}\r\n\r\n").into_bytes()
    } else {
        format!(
            "HTTP/1.1 500 {body}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// Letters only, so that every field accepts it.
fn marker() -> String {
    uuid::Uuid::now_v7()
        .simple()
        .to_string()
        .bytes()
        .rev()
        .take(12)
        .map(|b| (b'a' + b % 26) as char)
        .collect()
}

#[test]
fn no_personal_data_or_secret_is_logged_and_every_request_line_has_its_ids() {
    let dir = std::env::temp_dir().join(format!("korala-logs-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    // A marker of its own in each, so a leak names what leaked.
    let name_marker = marker();
    let name = format!("Jane Q{name_marker} Doe");
    let born = "1971-03-17";
    let document_number = format!("DN{}", marker().to_uppercase());
    let address = format!("{} Street", marker());
    let user = format!("usr_{}", marker());
    let metadata = format!("meta-{}", marker());
    let api_secret = format!("sk_test_{}0123456789", marker());
    let (vendor_port, vendor_asked) = raw_peer(echoing_vendor);
    let vendor = json!({"vendor": {"url": format!("http://127.0.0.1:{vendor_port}/screen"),
                                   "secretEnv": "KORALA_LOGS_VENDOR_SECRET"}});
    let server = Server::start(
        &dir.join("sessions.db"),
        &api_secret,
        &[
            ("KORALA_CHECK_PROVIDERS", vendor.to_string()),
            ("KORALA_LOGS_VENDOR_SECRET", SigningSecret::generate()),
        ],
    );
    // The vendor is enabled for the development organisation, by the
    // operators' command on the server's own store.
    let enabled = Command::new(env!("CARGO_BIN_EXE_korala-admin"))
        .args(["enable-provider", "--org", KEY_ID, "--provider", "vendor"])
        .env("SESSIONS_DB_PATH", dir.join("sessions.db"))
        .env("KORALA_CHECK_PROVIDERS", vendor.to_string())
        .env_remove("SESSIONS_TABLE")
        .env_remove("KORALA_MASTER_KEY")
        .output()
        .expect("korala-admin runs");
    assert!(enabled.status.success(), "{}", String::from_utf8_lossy(&enabled.stderr));
    let receiver = support::Receiver::start();
    let port = receiver.port;
    let (odd_port, odd_answered) = raw_peer(echoing_receiver);

    let mut signatures = Vec::new();
    let mut request_ids = BTreeSet::new();
    let mut call = |method: &str, path: &str, body: Value, signed: bool| {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (reply, signature) = server.send(method, path, &body, signed, "");
        signatures.extend(signature);
        let id = reply.headers.get("x-request-id").cloned();
        request_ids.insert(id.unwrap_or_else(|| panic!("{method} {path}: no X-Request-Id")));
        reply
    };

    let endpoint = call(
        "POST",
        "/webhook-endpoints",
        json!({"url": format!("http://127.0.0.1:{port}/hooks"),
               "events": ["session_completed", "session_resolved"]}),
        true,
    );
    assert_eq!(endpoint.status, 201, "{}", endpoint.body);
    let webhook_secret = endpoint.body["secret"]
        .as_str()
        .expect("the endpoint's secret")
        .to_owned();
    for path in ["malformed", "echo"] {
        let odd = call(
            "POST",
            "/webhook-endpoints",
            json!({"url": format!("http://127.0.0.1:{odd_port}/{path}"), "events": ["session_completed"]}),
            true,
        );
        assert_eq!(odd.status, 201, "{}", odd.body);
    }
    let vendor_workflow = json!({"name": "Vendor sanctions", "slug": "vendor-sanctions", "steps": [
        {"type": "check", "config": {"kind": "sanctions", "provider": "vendor"}}]});
    assert_eq!(call("POST", "/workflows", vendor_workflow, true).status, 201);
    let vendored = json!({"name": "Vendored", "slug": "vendored", "workflowSlugs": ["vendor-sanctions"]});
    assert_eq!(call("POST", "/session-configurations", vendored, true).status, 201);
    let configuration = json!({"name": "Logged", "slug": "logged",
        "workflowSlugs": ["id-document", "proof-of-address", "sanctions-check"]});
    assert_eq!(call("POST", "/session-configurations", configuration, true).status, 201);
    let created = call(
        "POST",
        "/sessions",
        json!({"configurationSlug": "logged", "externalUserId": user,
               "participants": [{"role": "subject", "displayName": name}],
               "metadata": {"note": metadata}}),
        true,
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let session = created.body;
    let id = session["id"].as_str().unwrap().to_owned();
    let token = session["accessToken"].as_str().unwrap().to_owned();
    let steps: Vec<String> = session["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_owned())
        .collect();
    let today = chrono::Utc::now().date_naive();
    let document = json!({"data": {
        "documentType": "passport", "documentNumber": document_number, "fullName": name,
        "dateOfBirth": born, "expiryDate": (today + chrono::Days::new(3000)).to_string(),
        "issuingCountry": "gb"}});
    // Turned down first (an expired document, to be submitted again), so
    // the validation's messages pass the personal data too.
    let mut expired = document.clone();
    expired["data"]["expiryDate"] = json!("2001-01-01");
    let retry = call(
        "POST",
        &format!("/access/{token}/workflows/{}", steps[0]),
        expired,
        false,
    );
    assert_eq!(
        retry.body["currentStep"]["messages"].as_array().map(Vec::len),
        Some(1),
        "{}",
        retry.body
    );
    let accepted = call(
        "POST",
        &format!("/access/{token}/workflows/{}", steps[0]),
        document,
        false,
    );
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let bill = json!({"data": {
        "documentType": "utility_bill", "fullName": name, "addressLine1": address, "city": "London",
        "postalCode": "SW1A 1AA", "country": "GB",
        "issueDate": (today - chrono::Days::new(10)).to_string()}});
    let accepted = call("POST", &format!("/access/{token}/workflows/{}", steps[1]), bill, false);
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(call("GET", &format!("/access/{token}"), Value::Null, false).status, 200);
    // A body that is not JSON, and one of the wrong shape, both naming the user.
    let (broken, _) = server.send(
        "POST",
        "/sessions",
        &format!("{{\"externalUserId\": \"{user}\""),
        true,
        "",
    );
    assert_eq!(broken.status, 400);
    let wrong = call("POST", "/sessions", json!({"externalUserId": user, "name": name}), true);
    assert!(wrong.status >= 400);
    // The vendor's session: screened as soon as it starts.
    let screened = call(
        "POST",
        "/sessions",
        json!({"configurationSlug": "vendored", "externalUserId": user,
               "participants": [{"role": "subject", "displayName": name}]}),
        true,
    );
    assert_eq!(screened.status, 201, "{}", screened.body);
    let screened_token = screened.body["accessToken"].as_str().unwrap().to_owned();
    let started = call("POST", &format!("/access/{screened_token}/start"), Value::Null, false);
    assert_eq!(started.status, 200, "{}", started.body);

    // An id the caller chose is the request's id.
    let chosen = format!("client-{}", uuid::Uuid::now_v7().simple());
    let (reply, _) = server.send(
        "GET",
        &format!("/sessions/{id}"),
        "",
        true,
        &format!("x-request-id: {chosen}\r\n"),
    );
    assert_eq!(reply.headers.get("x-request-id"), Some(&chosen));
    request_ids.insert(chosen.clone());

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivered = receiver.deliveries().len();
        let (status, _) = server.send("GET", &format!("/sessions/{id}"), "", true, "");
        if delivered >= 2 && status.body["status"] == "completed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} deliveries, session {}",
            delivered,
            status.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        receiver.deliveries().iter().any(|d| d.body.contains(&user)),
        "the deliveries carry the user id, so the dispatcher handled it"
    );
    // The vendor's unusable answer and both odd receivers' answers were
    // handled, and logged, before the logs are read.
    let deadline = Instant::now() + Duration::from_secs(30);
    while *vendor_asked.lock().unwrap() < 1
        || *odd_answered.lock().unwrap() < 2
        || server.logged("provider failed; retrying") < 1
        || server.logged("webhook delivery attempt") < 4
    {
        assert!(
            Instant::now() < deadline,
            "vendor asked {}, odd receivers answered {}",
            vendor_asked.lock().unwrap(),
            odd_answered.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (stdout, stderr) = server.stop();
    let _ = std::fs::remove_dir_all(&dir);

    let mut secrets = vec![
        ("name", name_marker),
        ("birth date", born.to_owned()),
        ("document number", document_number),
        ("address", address),
        ("external user id", user),
        ("metadata", metadata),
        ("access token", token),
        ("access token", screened_token),
        ("webhook secret", webhook_secret),
    ];
    secrets.extend(signatures.into_iter().map(|s| ("signature", s)));
    for line in stdout.iter().chain(&stderr) {
        for (what, value) in &secrets {
            assert!(!line.contains(value.as_str()), "the {what} was logged: {line}");
        }
        let banner = SECRET_BANNER.iter().any(|p| line.starts_with(p));
        assert!(
            banner || !line.contains(&api_secret),
            "the API secret was logged: {line}"
        );
    }

    let mut json = Vec::new();
    for line in &stdout {
        match serde_json::from_str::<Value>(line) {
            Ok(value) => json.push(value),
            Err(_) => assert!(
                BANNER.iter().any(|p| line.starts_with(p)),
                "not a JSON log line: {line}"
            ),
        }
    }
    let logs: Vec<&Value> = json.iter().filter(|v| v.get("_aws").is_none()).collect();
    let requests: Vec<&&Value> = logs.iter().filter(|l| l["fields"]["message"] == "request").collect();
    assert!(requests.len() >= request_ids.len(), "{} request lines", requests.len());
    let mut logged_ids = BTreeSet::new();
    for line in &requests {
        let id = line["span"]["requestId"]
            .as_str()
            .unwrap_or_else(|| panic!("no request id: {line}"));
        assert_eq!(line["span"]["function"], line["fields"]["function"], "{line}");
        assert!(line["span"]["function"].is_string(), "{line}");
        logged_ids.insert(id.to_owned());
    }
    assert!(
        request_ids.is_subset(&logged_ids),
        "answered ids {request_ids:?}, logged {logged_ids:?}"
    );
    let attempt = logs
        .iter()
        .find(|l| l["fields"]["message"] == "webhook delivery attempt")
        .expect("the dispatcher logs its attempts");
    assert_eq!(attempt["span"]["function"], "webhook-dispatcher", "{attempt}");
    assert!(attempt["span"]["requestId"].is_string(), "{attempt}");
    // The odd answers reached the logs as what they were, without what
    // they echoed.
    let attempts: Vec<&&Value> = logs
        .iter()
        .filter(|l| l["fields"]["message"] == "webhook delivery attempt")
        .collect();
    assert!(
        attempts.iter().any(|a| a["fields"]["status_code"] == 500),
        "{attempts:?}"
    );
    assert!(
        attempts
            .iter()
            .any(|a| a["fields"]["error"] == "connect" && a["fields"]["detail"].is_string()),
        "{attempts:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l["fields"]["message"] == "provider failed; retrying"
                && l["fields"]["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("findings[0].score"))),
        "the vendor's answer was logged as unusable"
    );
    assert!(
        json.iter().any(|v| v["SessionsCreated"].as_u64() >= Some(1)),
        "metric documents were written (and scanned)"
    );
}
