//! One organisation's worst rules beside another's requests, on the release
//! `local-server` (one process serving every organisation, as the incident
//! of issue 15 had it): the other organisation's latency alone, then while
//! the first submits, one after another, sessions whose rules spend as much
//! of the rule budget as it allows. Both runs are in the same process, on
//! the same machine, one after the other.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use acceptance::api::key_signature_headers;
use functions::adapters::crypto::Sealer;
use functions::adapters::store::sqlite::SqliteStore;
use functions::admin;
use functions::app::App;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use korala_domain::rules;
use korala_domain::rules::cost::{self, RULE_BUDGET, Reads, Roots, TRANSITION_BUDGET};
use korala_domain::rules::shape::Shape;
use serde_json::{Value, json};

use crate::throughput::Server;
use crate::{Result, Section, Target, quantile};

#[derive(Debug, Clone)]
pub struct Options {
    /// The `local-server` binary.
    pub server: PathBuf,
    /// How long each run lasts.
    pub duration: Duration,
    /// The other organisation sends a request this often (waiting for each
    /// answer): an ordinary load, not a saturating one.
    pub interval: Duration,
    /// The hostile organisation starts a session and submits it this often
    /// (or as soon as the last is answered, if later).
    pub hostile_interval: Duration,
}

/// The latency the other organisation may see under the hostile load, as a
/// multiple of what it sees alone.
const LIMIT: f64 = 1.2;

/// The hostile organisation's rules, worst first by time per unit of the
/// estimate (building maps and lists costs more per unit than testing
/// booleans): the first that a workflow may hold is the one used.
const CANDIDATES: [&str; 4] = [
    "context.L.map(a, context.L.map(b, {'x': [a, b]})).size() > 0",
    "context.L.map(a, context.L.map(b, [a, b])).size() > 0",
    "context.L.map(a, context.L.filter(b, a != b)).size() > 0",
    "context.L.all(a, context.L.all(b, a != b || a == b))",
];

struct Org {
    key: &'static str,
    secret: &'static str,
}

const HOSTILE: Org = Org {
    key: "ak_test_0000000000000000000hostile",
    secret: "bench-secret-of-the-hostile-organisation",
};
const ORDINARY: Org = Org {
    key: "ak_test_000000000000000000ordinary",
    secret: "bench-secret-of-the-ordinary-organisation",
};

/// The hostile rule, the length of the list it reads, and what one
/// submission costs.
struct Plan {
    rule: &'static str,
    len: u64,
    rule_cost: u64,
    rules: u64,
}

/// The first candidate a workflow may hold, with the longest list it runs
/// on within the rule budget, and as many copies as one change may run.
fn plan() -> Result<Plan> {
    let rule = CANDIDATES
        .into_iter()
        .find(|rule| rules::check(rule).is_ok())
        .ok_or("no candidate rule passes the budget when written")?;
    let program = rules::compile(rule).map_err(|e| e.to_string())?;
    let priced = |len: u64| {
        let context = json!({ "L": (0..len).collect::<Vec<_>>() });
        let roots = Roots {
            context: Shape::of_json(&context),
            ..Roots::nominal()
        };
        let reads = Reads {
            context: true,
            ..Reads::default()
        };
        (
            cost::estimate(program.expression(), &roots).cost,
            roots.conversion_cost(reads),
        )
    };
    let len = (1..10_000)
        .take_while(|&len| priced(len).0 <= RULE_BUDGET)
        .last()
        .ok_or("the rule is over budget on a list of one")?;
    let (rule_cost, conversion) = priced(len);
    // One validate step: its variables converted once, then every rule.
    let by_budget = (TRANSITION_BUDGET - conversion) / rule_cost;
    let nominal = rules::check(rule).map_err(|e| e.to_string())?.cost;
    let by_definition = TRANSITION_BUDGET / nominal;
    Ok(Plan {
        rule,
        len,
        rule_cost,
        rules: by_budget.min(by_definition),
    })
}

/// HTTP/1.1 to the server over kept-alive connections, signing as `org`.
struct Client {
    pool: LegacyClient<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    org: &'static Org,
}

impl Client {
    fn new(addr: SocketAddr, org: &'static Org) -> Self {
        let pool = LegacyClient::builder(TokioExecutor::new()).build_http();
        Self { pool, addr, org }
    }

    /// Sends a request (signed unless `path` is the end user's); its status
    /// and JSON body.
    async fn send(&mut self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .header("content-type", "application/json");
        if !path.starts_with("/api/v1/access/") {
            // A read may be signed at any instant; a mutation is good once.
            let now = chrono::Utc::now().timestamp();
            let at = if method == "GET" {
                now
            } else {
                crate::signing_time(now, method, path, &bytes)
            };
            for (name, value) in key_signature_headers(self.org.key, self.org.secret, at, method, path, &bytes) {
                request = request.header(name, value);
            }
        }
        let response = self.pool.request(request.body(Full::new(Bytes::from(bytes)))?).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok((status, json))
    }

    async fn expect(&mut self, method: &str, path: &str, body: Option<&Value>, status: u16) -> Result<Value> {
        let (answered, json) = self
            .send(method, path, body)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        if answered != status {
            return Err(format!("{method} {path} answered {answered}: {json}").into());
        }
        Ok(json)
    }
}

/// The two organisations, in the store before the server opens it.
async fn seed(dir: &std::path::Path, master_key: &str) -> Result<()> {
    let store = Arc::new(SqliteStore::open(&dir.join("sessions.db"))?);
    let app = App::new(store, Sealer::from_base64(master_key)?);
    for (name, org) in [("Hostile", &HOSTILE), ("Ordinary", &ORDINARY)] {
        let created = admin::create_organization(&app, name).await?;
        admin::add_key(&app, &created.id, org.key, org.secret).await?;
    }
    Ok(())
}

/// One hostile round: a session of the configuration `slug` whose context
/// holds the list, and the submission that runs its rules. The
/// submission's time, in ms, and the session's id.
async fn hostile_round(client: &mut Client, slug: &str, context: &Value) -> Result<(f64, String)> {
    // A user of its own each round, as a partner's would be: the harmless
    // rounds come many a second, and identical bodies signed in one second
    // sign alike, which the server refuses as a replay.
    static ROUND: AtomicU64 = AtomicU64::new(0);
    let user = format!("usr_hostile_{}", ROUND.fetch_add(1, Ordering::Relaxed));
    let draft = json!({"configurationSlug": slug, "externalUserId": user, "context": context});
    let session = client.expect("POST", "/api/v1/sessions", Some(&draft), 201).await?;
    let id = session["id"].as_str().ok_or("a session id")?;
    let token = session["accessToken"].as_str().ok_or("an access token")?;
    let workflow = session["workflows"][0]["id"].as_str().ok_or("a session workflow")?;
    let started = Instant::now();
    client
        .expect(
            "POST",
            &format!("/api/v1/access/{token}/workflows/{workflow}"),
            Some(&json!({"data": {"name": "Hostile"}})),
            200,
        )
        .await?;
    Ok((started.elapsed().as_secs_f64() * 1e3, id.to_owned()))
}

/// A workflow of `count` copies of `rule` in one validate step, and a
/// configuration of it, both named `slug`.
async fn define(client: &mut Client, slug: &str, rule: &str, count: u64) -> Result<()> {
    let rules: Vec<Value> = (0..count)
        .map(|i| json!({"name": format!("r{i}"), "expression": rule, "onFailure": "review"}))
        .collect();
    let workflow = json!({
        "name": slug, "slug": slug,
        "steps": [
            {"type": "capture", "config": {"fields": [{"name": "name", "type": "text"}]}},
            {"type": "validate", "config": {"rules": rules}},
            {"type": "output", "config": {}}
        ]
    });
    client.expect("POST", "/api/v1/workflows", Some(&workflow), 201).await?;
    let configuration = json!({"name": slug, "slug": slug, "workflowSlugs": [slug]});
    client
        .expect("POST", "/api/v1/session-configurations", Some(&configuration), 201)
        .await?;
    Ok(())
}

/// The ordinary organisation's requests, `interval` apart for `duration`:
/// the latencies of each, in ms.
async fn ordinary_load(client: &mut Client, requests: &[String], options: &Options) -> Result<Vec<Vec<f64>>> {
    let mut latencies = vec![Vec::new(); requests.len()];
    let until = Instant::now() + options.duration;
    let mut tick = tokio::time::interval(options.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut turn = 0;
    while Instant::now() < until {
        tick.tick().await;
        let which = turn % requests.len();
        let started = Instant::now();
        client.expect("GET", &requests[which], None, 200).await?;
        latencies[which].push(started.elapsed().as_secs_f64() * 1e3);
        turn += 1;
    }
    Ok(latencies)
}

/// The ordinary load while the hostile organisation submits sessions of
/// `slug`, one after another: its latencies, and the submissions' times.
async fn beside(
    ordinary: &mut Client,
    hostile: Client,
    slug: &'static str,
    context: &Value,
    requests: &[String],
    options: &Options,
) -> Result<(Vec<Vec<f64>>, Vec<f64>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let task = {
        let (stop, context, mut hostile) = (Arc::clone(&stop), context.clone(), hostile);
        let mut tick = tokio::time::interval(options.hostile_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::spawn(async move {
            let mut rounds = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                match hostile_round(&mut hostile, slug, &context).await {
                    Ok((ms, _)) => rounds.push(ms),
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(rounds)
        })
    };
    let latencies = ordinary_load(ordinary, requests, options).await;
    stop.store(true, Ordering::Relaxed);
    let rounds = task.await?.map_err(|e| format!("a hostile round failed: {e}"))?;
    Ok((latencies?, rounds))
}

pub async fn run(options: &Options) -> Result<Section> {
    let plan = plan()?;
    let dir = std::env::temp_dir().join(format!("korala-bench-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let master_key = Sealer::generate_key();
    seed(&dir, &master_key).await?;
    let server = Server::launch(
        &options.server,
        dir,
        &[
            ("KORALA_MASTER_KEY", master_key.as_str()),
            ("DEV_API_KEY_ID", ORDINARY.key),
            ("DEV_API_SECRET", ORDINARY.secret),
        ],
    )
    .await?;
    let addr = server.addr;

    // The hostile organisation: the rules at the budget, and the same
    // workflow with rules that cost nothing (what sharing the server costs
    // without them).
    let mut hostile = Client::new(addr, &HOSTILE);
    define(&mut hostile, "hostile", plan.rule, plan.rules).await?;
    define(&mut hostile, "harmless", "true", plan.rules).await?;
    let context = json!({ "L": (0..plan.len).collect::<Vec<_>>() });

    // The ordinary organisation: a configuration and a session to read.
    let mut ordinary = Client::new(addr, &ORDINARY);
    let kyc = json!({"name": "KYC", "slug": "kyc", "workflowSlugs": ["id-document", "proof-of-address"]});
    ordinary
        .expect("POST", "/api/v1/session-configurations", Some(&kyc), 201)
        .await?;
    let draft = json!({"configurationSlug": "kyc", "externalUserId": "usr_ordinary"});
    let session = ordinary.expect("POST", "/api/v1/sessions", Some(&draft), 201).await?;
    let id = session["id"].as_str().ok_or("a session id")?;
    let requests = vec![
        "/api/v1/session-configurations".to_owned(),
        format!("/api/v1/sessions/{id}"),
    ];

    // Warm both up, and check that a hostile submission runs every rule
    // (none refused, none failed): it spends what the plan says.
    let (_, checked) = hostile_round(&mut hostile, "hostile", &context).await?;
    let checked = hostile
        .expect("GET", &format!("/api/v1/sessions/{checked}"), None, 200)
        .await?;
    let report = &checked["workflows"][0]["validation"];
    if report["outcome"] != "passed" || report["rules"].as_array().map(Vec::len) != Some(plan.rules as usize) {
        return Err(format!("the hostile rules did not all run and pass: {report}").into());
    }
    for _ in 0..20 {
        for path in &requests {
            ordinary.expect("GET", path, None, 200).await?;
        }
    }

    eprintln!("   the other organisation alone");
    let alone = ordinary_load(&mut ordinary, &requests, options).await?;
    eprintln!("   beside the hostile submissions");
    let (hostile_load, rounds) = beside(&mut ordinary, hostile, "hostile", &context, &requests, options).await?;
    eprintln!("   beside the same submissions with rules that cost nothing");
    let harmless = Client::new(addr, &HOSTILE);
    let (harmless_load, harmless_rounds) =
        beside(&mut ordinary, harmless, "harmless", &context, &requests, options).await?;
    let rss = server
        .peak_rss_mib()
        .map_or_else(|| "unknown".to_owned(), |m| format!("{m:.0} MiB"));

    let mut rows = String::new();
    let mut targets = Vec::new();
    for (i, path) in requests.iter().enumerate() {
        let shown = path.replace(id, "{id}");
        let (a50, a99) = (quantile(&alone[i], 0.5), quantile(&alone[i], 0.99));
        let (h50, h99) = (quantile(&hostile_load[i], 0.5), quantile(&hostile_load[i], 0.99));
        let (c50, c99) = (quantile(&harmless_load[i], 0.5), quantile(&harmless_load[i], 0.99));
        rows.push_str(&format!(
            "| `GET {shown}` | {a50:.2} / {a99:.2} | {h50:.2} / {h99:.2} | **{:.2} / {:.2}** | {c50:.2} / {c99:.2} \
             | {:.2} / {:.2} | {} / {} / {} |\n",
            h50 / a50,
            h99 / a99,
            c50 / a50,
            c99 / a99,
            alone[i].len(),
            hostile_load[i].len(),
            harmless_load[i].len(),
        ));
        for (quantile_name, ratio) in [("p50", h50 / a50), ("p99", h99 / a99)] {
            targets.push(Target::new(
                format!("GET {shown} beside another organisation's rules at the budget: {quantile_name} / alone"),
                ratio,
                LIMIT,
            ));
        }
    }
    let spent = plan.rule_cost * plan.rules;
    let body = format!(
        "The release `local-server` on a fresh embedded store serves two organisations. The hostile one has a \
         workflow of {count} copies of the rule `{rule}` in one validate step (of a few candidates, the \
         costliest per unit of the estimate that a workflow may hold), and sessions whose context holds a \
         list of {len} numbers: each rule is priced at {rule_cost} of the {RULE_BUDGET} units a rule may \
         cost, a submission at {spent} of the {TRANSITION_BUDGET} a change may spend. It creates such a \
         session and submits it every {pace} ms (or as soon as the last is answered): {n} submissions in \
         {secs} s, p50 {s50:.1} ms and p99 {s99:.1} ms each. The other organisation reads, one request \
         every {interval} ms on kept-alive connections, for {secs} s alone, then {secs} s beside the hostile \
         submissions, then {secs} s beside the same submissions with rules that cost nothing (`true`: {m} \
         submissions, p50 {h50:.1} ms) — what sharing the process and its store costs without the rules. \
         Target: each latency beside the rules at most {LIMIT}× what it is alone. The server's peak \
         resident memory over the runs: {rss}.\n\n\
         | request | alone p50 / p99 ms | beside the rules | ratio | beside free rules | ratio | requests \
         |\n|---|---|---|---|---|---|---|\n{rows}",
        count = plan.rules,
        rule = plan.rule,
        len = plan.len,
        rule_cost = plan.rule_cost,
        n = rounds.len(),
        s50 = quantile(&rounds, 0.5),
        s99 = quantile(&rounds, 0.99),
        m = harmless_rounds.len(),
        h50 = quantile(&harmless_rounds, 0.5),
        interval = options.interval.as_millis(),
        pace = options.hostile_interval.as_millis(),
        secs = options.duration.as_secs(),
    );
    Ok(Section {
        title: "Rule budget: one organisation's worst rules beside another's requests".to_owned(),
        body,
        targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_fills_the_budget_with_rules_a_workflow_may_hold() {
        let plan = plan().unwrap();
        assert!(rules::check(plan.rule).is_ok());
        assert!(plan.rule_cost <= RULE_BUDGET && plan.rule_cost > RULE_BUDGET / 2);
        assert!(plan.rules >= 2);
        assert!(plan.rules * plan.rule_cost <= TRANSITION_BUDGET);
        assert!(plan.rules * plan.rule_cost > TRANSITION_BUDGET / 2);
    }
}
