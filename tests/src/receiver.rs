//! A partner's webhook receiver in another process (tests/src/receiver.py):
//! it verifies each delivery with the PyPI `standardwebhooks` library, so
//! the tests check our signatures with a partner's tools, not our own code.
//! `scripts/test` installs the library and sets `KORALA_PYTHON`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

pub struct Receiver {
    child: Child,
    port: u16,
    running: bool,
}

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `webhook-id` header.
    pub id: String,
    pub verified: bool,
    pub error: Option<String>,
    /// The status the receiver answered.
    pub answered: u16,
    pub body: Value,
}

impl Received {
    pub fn event(&self) -> &str {
        self.body["event"].as_str().unwrap_or_default()
    }
}

impl Receiver {
    /// Starts a receiver on a free port (or `port`, to restart one where an
    /// endpoint already points).
    pub fn start(port: Option<u16>) -> Self {
        let python = std::env::var("KORALA_PYTHON").unwrap_or_else(|_| {
            panic!("KORALA_PYTHON is not set: run scripts/test, which installs standardwebhooks (scripts/python-tools)")
        });
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/src/receiver.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(port.unwrap_or(0).to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the receiver starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("the receiver's stdout"))
            .read_line(&mut line)
            .expect("the receiver prints its port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the receiver said {line:?}"));
        Self {
            child,
            port,
            running: true,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where an endpoint should point.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    /// Sets any of `secret` (the endpoint's), `fail` (how many deliveries
    /// to refuse from now) and `clockOffset` (seconds the sender's clock runs
    /// ahead of real time).
    /// A stopped receiver ignores it.
    pub fn set(&self, settings: Value) {
        if !self.running {
            return;
        }
        self.request("POST", "/configure", &settings.to_string());
    }

    /// Tells the receiver what time the sender's (test) clock says.
    pub fn sync_clock(&self, sender_now: chrono::DateTime<chrono::Utc>) {
        let offset = (sender_now - chrono::Utc::now()).num_seconds();
        self.set(json!({ "clockOffset": offset }));
    }

    pub fn received(&self) -> Vec<Received> {
        let text = self.request("GET", "/", "");
        let list: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        list.into_iter()
            .map(|r| Received {
                id: r["id"].as_str().unwrap_or_default().to_owned(),
                verified: r["verified"].as_bool().unwrap_or(false),
                error: r["error"].as_str().map(str::to_owned),
                answered: r["answered"].as_u64().unwrap_or(0) as u16,
                body: r["body"].clone(),
            })
            .collect()
    }

    /// The response body of one plain HTTP/1.1 request.
    fn request(&self, method: &str, path: &str, body: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("the receiver answers");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("the request is sent");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("the receiver responds");
        response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    }

    /// Stops the receiver: deliveries now fail to connect. Start another on
    /// [`port`](Self::port) to bring it back.
    pub fn kill(&mut self) {
        self.running = false;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.kill();
    }
}
