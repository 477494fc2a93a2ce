//! The local server's throughput on the embedded store, loaded by `wrk`:
//! the release `local-server` binary as a developer runs it (expiry ticker,
//! event relay and text logs included), on a fresh database.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use acceptance::api::{Raw, key_signature_headers, wire};
use serde_json::{Value, json};

use crate::{Result, Section};

#[derive(Debug, Clone)]
pub struct Options {
    /// The `local-server` binary to load.
    pub server: PathBuf,
    pub duration: Duration,
    pub connections: u32,
    pub threads: u32,
}

/// Rates no load here reaches (`{per second}/{burst}`).
const UNMETERED: &str = "100000/1000000";

/// How many distinct signed mutations a load may send a second: a signed
/// mutation is good once, so each request of such a load is signed anew
/// beforehand (wrk cannot sign) and the loads cycle through them.
const SIGNED_PER_SECOND: u64 = 5_000;

/// A signing key for the run (`DEV_API_KEY_ID` seeds it).
const KEY_ID: &str = "ak_test_00000000000000000000bench";
const SECRET: &str = "bench-secret-of-the-throughput-run";

/// The server, stopped when dropped (its directory removed with it).
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    async fn start(binary: &PathBuf) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("korala-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Self::launch(binary, dir, &[("DEV_API_KEY_ID", KEY_ID), ("DEV_API_SECRET", SECRET)]).await
    }

    /// Starts `binary` on a free port with its embedded store in `dir`
    /// (which it owns from now on) and these variables besides.
    pub(crate) async fn launch(binary: &PathBuf, dir: PathBuf, env: &[(&str, &str)]) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut command = Command::new(binary);
        command
            .env("LISTEN_ADDR", addr.to_string())
            .env("SESSIONS_DB_PATH", dir.join("sessions.db"))
            // What the handlers do under load, not what the limiter
            // refuses: one key and one token carry a whole load here.
            .env("KORALA_PARTNER_RATE", UNMETERED)
            .env("KORALA_ACCESS_RATE", UNMETERED)
            .env("KORALA_SEND_RATE", UNMETERED)
            .envs(env.iter().copied())
            .env_remove("SESSIONS_TABLE")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let server = Self { child, addr, dir };
        let started = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err("the local server did not listen within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }

    /// Its peak resident memory so far, in MiB.
    pub(crate) fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }
}

/// The headers of a JSON request signed now.
fn signed(method: &str, path: &str, body: &[u8]) -> Vec<(String, String)> {
    let mut headers = key_signature_headers(KEY_ID, SECRET, chrono::Utc::now().timestamp(), method, path, body);
    headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
    headers
}

async fn call(addr: SocketAddr, method: &str, path: &str, body: Option<Value>, status: u16) -> Result<Value> {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let mut raw = Raw::new(method, path);
    raw.headers = signed(method, path, &bytes);
    raw.body = bytes;
    let response = wire(addr, raw).await;
    if response.status != status {
        return Err(format!("{method} {path} answered {}: {}", response.status, response.json()).into());
    }
    Ok(response.json())
}

/// What `wrk --latency` reported.
#[derive(Debug, Default, Clone, PartialEq)]
struct Load {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    /// Answers that were not 2xx/3xx, and socket errors.
    failures: u64,
}

/// A wrk duration ("1.23ms", "850.00us", "1.01s") in milliseconds.
fn millis(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => number / 1e3,
        "ms" => number,
        "s" => number * 1e3,
        "m" => number * 60e3,
        _ => return None,
    })
}

fn parse_wrk(output: &str) -> Option<Load> {
    let mut load = Load::default();
    for line in output.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", rate] => load.requests_per_second = rate.parse().ok()?,
            ["50%", latency] => load.p50_ms = millis(latency)?,
            ["99%", latency] => load.p99_ms = millis(latency)?,
            [requests, "requests", "in", ..] => load.requests = requests.parse().ok()?,
            ["Non-2xx", "or", "3xx", "responses:", count] => load.failures += count.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // connect 0, read 0, write 0, timeout 0
                load.failures += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    (load.requests > 0).then_some(load)
}

/// A wrk script sending one request, headers and body included.
fn script(method: &str, headers: &[(String, String)], body: &str) -> String {
    let mut lua = format!("wrk.method = {method:?}\nwrk.body = {body:?}\n");
    for (name, value) in headers {
        lua.push_str(&format!("wrk.headers[{name:?}] = {value:?}\n"));
    }
    lua
}

/// A wrk script sending the signed requests of `requests` (one a line:
/// timestamp, signature and body, tab-separated), each once: thread `t` of
/// `n` (wrk's script argument) sends lines `t`, `t + n`, … (a thread that
/// runs out starts over, and its replays count as failures).
fn signed_script(method: &str, requests: &std::path::Path) -> String {
    format!(
        r#"local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("index", threads)
end
function init(args)
  local threads = tonumber(args[1])
  mine = {{}}
  local count = 0
  for line in io.lines({requests:?}) do
    count = count + 1
    if (count - index) % threads == 0 then
      local t, s, b = line:match("([^\t]*)\t([^\t]*)\t(.*)")
      mine[#mine + 1] = {{t, s, b}}
    end
  end
  next_one = 1
end
function request()
  local r = mine[next_one]
  next_one = next_one % #mine + 1
  return wrk.format({method:?}, nil, {{
    ["Content-Type"] = "application/json",
    ["X-API-Key"] = {KEY_ID:?},
    ["X-Timestamp"] = r[1],
    ["X-Signature"] = r[2],
  }}, r[3])
end
"#
    )
}

/// `count` distinct signed requests with bodies from `body(i)`, written as
/// [`signed_script`] reads them.
fn signed_requests(method: &str, path: &str, count: u64, body: impl Fn(u64) -> String) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut lines = String::new();
    for i in 0..count {
        let body = body(i);
        let headers = key_signature_headers(KEY_ID, SECRET, now, method, path, body.as_bytes());
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        lines.push_str(&format!(
            "{}\t{}\t{body}\n",
            header("X-Timestamp"),
            header("X-Signature")
        ));
    }
    lines
}

async fn load(
    options: &Options,
    server: &Server,
    method: &str,
    path: &str,
    body: Option<&Value>,
    signed_request: bool,
) -> Result<Load> {
    let body_text = body.map(Value::to_string).unwrap_or_default();
    let lua = server.dir.join("request.lua");
    if signed_request && method != "GET" {
        // Each a distinct body (its own end user), so each its own signature.
        let count = SIGNED_PER_SECOND * options.duration.as_secs().max(1);
        let template = body.cloned().unwrap_or(Value::Null);
        let requests = server.dir.join("requests.tsv");
        std::fs::write(
            &requests,
            signed_requests(method, path, count, |i| {
                let mut body = template.clone();
                body["externalUserId"] = Value::String(format!("usr_bench_{i}"));
                body.to_string()
            }),
        )?;
        std::fs::write(&lua, signed_script(method, &requests))?;
    } else {
        let headers = if signed_request {
            signed(method, path, body_text.as_bytes())
        } else {
            Vec::new()
        };
        std::fs::write(&lua, script(method, &headers, &body_text))?;
    }
    let mut wrk = Command::new("wrk");
    wrk.arg(format!("-t{}", options.threads))
        .arg(format!("-c{}", options.connections))
        .arg(format!("-d{}s", options.duration.as_secs()))
        .arg("--latency")
        .arg("-s")
        .arg(&lua)
        .arg(format!("http://{}{path}", server.addr))
        // The signed script's argument: how many threads share its requests.
        .arg("--")
        .arg(options.threads.to_string());
    // Blocking for the whole run; the server is another process.
    let out = tokio::task::spawn_blocking(move || wrk.output())
        .await?
        .map_err(|e| format!("running wrk (scripts/bench installs it): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).ok_or_else(|| format!("cannot read wrk's report:\n{text}").into())
}

pub async fn run(options: &Options) -> Result<Section> {
    let server = Server::start(&options.server).await?;
    let addr = server.addr;
    call(
        addr,
        "POST",
        "/api/v1/session-configurations",
        Some(json!({"name": "KYC", "slug": "kyc", "workflowSlugs": ["id-document", "proof-of-address"]})),
        201,
    )
    .await?;
    let session_body = json!({"configurationSlug": "kyc", "externalUserId": "usr_bench", "participants": [{"role": "subject", "displayName": "John Smith"}]});
    let session = call(addr, "POST", "/api/v1/sessions", Some(session_body.clone()), 201).await?;
    let id = session["id"].as_str().ok_or("a session id")?.to_owned();
    let token = session["accessToken"].as_str().ok_or("an access token")?.to_owned();

    let scenarios: [(&str, &str, String, Option<&Value>, bool); 4] = [
        ("end user's view", "GET", format!("/api/v1/access/{token}"), None, false),
        (
            "a session (signed)",
            "GET",
            format!("/api/v1/sessions/{id}"),
            None,
            true,
        ),
        (
            "first page of sessions (signed)",
            "GET",
            "/api/v1/sessions?limit=10".to_owned(),
            None,
            true,
        ),
        (
            "create a session (signed, a write each)",
            "POST",
            "/api/v1/sessions".to_owned(),
            Some(&session_body),
            true,
        ),
    ];
    let mut rows = String::new();
    for (what, method, path, body, signed_request) in scenarios {
        eprintln!("   wrk: {what}");
        let l = load(options, &server, method, &path, body, signed_request).await?;
        rows.push_str(&format!(
            "| {what} | `{method} {}` | {:.0} | {:.2} | {:.2} | {} | {} |\n",
            path.replace(&token, "{token}").replace(&id, "{id}"),
            l.requests_per_second,
            l.p50_ms,
            l.p99_ms,
            l.requests,
            l.failures
        ));
    }
    let rss = server
        .peak_rss_mib()
        .map_or_else(|| "unknown".to_owned(), |m| format!("{m:.0} MiB"));
    let body = format!(
        "`wrk -t{threads} -c{connections} -d{secs}s --latency` against the release `local-server` on a fresh \
         embedded store (SQLite), with its expiry ticker and event relay running and its log lines written, \
         on the same machine as wrk (which takes part of its cores), with its rate limits raised out of reach. \
         Signed reads reuse one signature, valid for five minutes; a signed mutation is good once, so the \
         creates are signed beforehand, one each, each for its own end user. Every answer must be a success: *failures* counts the others and socket \
         errors. The server's peak resident memory over the whole run: {rss}.\n\n\
         | load | request | requests/s | p50 ms | p99 ms | requests | failures |\n\
         |---|---|---|---|---|---|---|\n{rows}",
        threads = options.threads,
        connections = options.connections,
        secs = options.duration.as_secs(),
    );
    Ok(Section {
        title: "Local server throughput (embedded store)".to_owned(),
        body,
        targets: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_wrk_reports() {
        let report = "Running 10s test @ http://127.0.0.1:3000/api/v1/access/at_x
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  420.11us   9.87ms   81.20%
  Latency Distribution
     50%    1.43ms
     75%    1.70ms
     90%    2.01ms
     99%    3.12ms
  208311 requests in 10.00s, 301.45MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  20828.63
Transfer/sec:     30.14MB
";
        let load = parse_wrk(report).unwrap();
        assert_eq!(load.requests, 208_311);
        assert_eq!(load.failures, 7);
        assert!((load.requests_per_second - 20_828.63).abs() < 1e-6);
        assert!((load.p50_ms - 1.43).abs() < 1e-9);
        assert!((load.p99_ms - 3.12).abs() < 1e-9);
        assert_eq!(millis("850.00us"), Some(0.85));
        assert_eq!(millis("1.01s"), Some(1010.0));
        assert!(parse_wrk("wrk: connection refused").is_none());
    }
}
