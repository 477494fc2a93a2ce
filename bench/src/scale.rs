//! How listing and the expiry sweep scale with the table: the same reads at
//! each table size, through the real handlers on DynamoDB Local. They go
//! through indexes keyed by what they ask for (the organisation, the user,
//! the status, the due date), so their cost follows the result, not the
//! table.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use acceptance::api::Api;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, TransactWriteItem, WriteRequest};
use functions::adapters::store::dynamodb::{CallLog, DynamoStore, create_table};
use regex::Regex;
use serde_json::{Value, json};

use crate::{Result, Section, Target, quantile};

/// Captures the typed items of the transactions a client sends, for the
/// seeder to copy.
#[derive(Debug, Clone, Default)]
struct Transactions {
    items: Arc<std::sync::Mutex<Vec<Vec<TransactWriteItem>>>>,
}

impl Intercept for Transactions {
    fn name(&self) -> &'static str {
        "Transactions"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> std::result::Result<(), aws_sdk_dynamodb::error::BoxError> {
        if let Some(input) = context.input().downcast_ref::<TransactWriteItemsInput>()
            && let Ok(mut items) = self.items.lock()
        {
            items.push(input.transact_items().to_vec());
        }
        Ok(())
    }
}

/// Identifiers as the service makes them: a short prefix and 32 hex digits.
fn ids() -> Result<Regex> {
    Ok(Regex::new(r"\b[a-z]{2,5}_[0-9a-f]{32}\b")?)
}

/// `value` with every identifier in it renamed as `rename` says.
fn renamed(value: &AttributeValue, rename: &dyn Fn(&str) -> String) -> AttributeValue {
    match value {
        AttributeValue::S(s) => AttributeValue::S(rename(s)),
        AttributeValue::M(map) => AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), renamed(v, rename))).collect()),
        AttributeValue::L(list) => AttributeValue::L(list.iter().map(|v| renamed(v, rename)).collect()),
        other => other.clone(),
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Table sizes, in sessions, in increasing order.
    pub sizes: Vec<usize>,
    /// Requests measured per listing and size.
    pub repeats: usize,
    /// Sessions overdue at each sweep.
    pub due: usize,
    /// Concurrent requests while seeding.
    pub seeders: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sizes: vec![10_000, 30_000, 100_000],
            repeats: 20,
            due: 200,
            seeders: 8,
        }
    }
}

/// How much a read's cost may grow from the smallest table to the largest.
/// Not 1.0: capacity is billed per item and rounded up per kilobyte, so the
/// sweep's 200 fresh sessions cost a unit more or less from one batch to the
/// next (1,257 and 1,258 units in one quick run) whatever the table holds; a
/// cost that followed the table would grow with it, 3× to 10× here.
pub const GROWTH_LIMIT: f64 = 1.01;

const TABLE: &str = "korala-bench-scale";

/// One measured read at one size.
#[derive(Debug, Clone)]
struct Figure {
    size: usize,
    read: &'static str,
    returned: usize,
    requests: usize,
    capacity: f64,
    p50_ms: f64,
}

/// A DynamoDB Local of the section's own, started fresh by
/// `scripts/dynamodb-local` and stopped when dropped. DynamoDB Local slows as
/// its in-memory database grows, even after tables are dropped: on the
/// engine the other sections had used, the seeding wrote 55 sessions a
/// second, against about 700 on a fresh one.
struct Engine {
    endpoint: String,
    pid: String,
}

const ENGINE_SCRIPT: &str = "scripts/dynamodb-local";

impl Engine {
    fn start() -> Result<Self> {
        let out = std::process::Command::new(ENGINE_SCRIPT)
            .arg("start")
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| format!("{ENGINE_SCRIPT} start (run from the repository's root): {e}"))?;
        if !out.status.success() {
            return Err(format!("{ENGINE_SCRIPT} start failed: {}", out.status).into());
        }
        // `export NAME=value …`, the lines scripts eval.
        let exports = String::from_utf8(out.stdout)?;
        let value = |name: &str| {
            exports
                .split_whitespace()
                .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
                .ok_or_else(|| format!("{ENGINE_SCRIPT} start printed no {name}: {exports}"))
        };
        Ok(Self {
            endpoint: value("AWS_ENDPOINT_URL_DYNAMODB")?,
            pid: value("DYNAMODB_LOCAL_PID")?,
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let stopped = std::process::Command::new(ENGINE_SCRIPT)
            .arg("stop")
            .env("DYNAMODB_LOCAL_PID", &self.pid)
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            eprintln!("could not stop the scale section's DynamoDB Local (pid {})", self.pid);
        }
    }
}

struct Scale {
    api: Api,
    /// The application whose store notes its requests (the measured one).
    measured: functions::app::App,
    calls: Arc<CallLog>,
    client: Client,
    /// The functions' client configuration, on the section's engine.
    base: aws_sdk_dynamodb::Config,
}

type AttributeMap = std::collections::HashMap<String, AttributeValue>;

/// The user of the session the copies are made from.
const TEMPLATE_USER: &str = "usr-template";

/// One `BatchWriteItem`, sent again with what DynamoDB left unprocessed.
async fn write_all(client: &Client, writes: Vec<WriteRequest>) -> std::result::Result<(), String> {
    let mut pending = std::collections::HashMap::from([(TABLE.to_owned(), writes)]);
    for attempt in 0..10u32 {
        let out = client
            .batch_write_item()
            .set_request_items(Some(pending))
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
        pending = out.unprocessed_items.unwrap_or_default();
        if pending.values().all(Vec::is_empty) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
    }
    Err("DynamoDB left writes unprocessed ten times".to_owned())
}

impl Scale {
    async fn new(engine: &Engine) -> Result<Self> {
        let base = aws_sdk_dynamodb::config::Builder::from(&functions::adapters::aws::sdk_config().await)
            .endpoint_url(&engine.endpoint)
            .build();
        // Seeding sends full batches to a busy DynamoDB Local: more time
        // than the functions' budget allows a request.
        let client = Client::from_conf(
            base.to_builder()
                .timeout_config(
                    aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                        .operation_timeout(Duration::from_secs(120))
                        .operation_attempt_timeout(Duration::from_secs(60))
                        .build(),
                )
                .build(),
        );
        // The engine is fresh, so the table is: the sizes are exact.
        create_table(&client, TABLE).await?;
        let store = DynamoStore::new(client.clone(), TABLE);
        let calls = CallLog::new();
        let api = Api::with_store(Arc::new(store.clone())).await;
        let mut measured = api.app.clone();
        measured.store = Arc::new(store.with_call_log(Arc::clone(&calls)));
        Ok(Self {
            api,
            measured,
            calls,
            client,
            base,
        })
    }

    async fn partner(&self, app: &functions::app::App, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let raw = self.api.signed(&self.api.key, method, path, body.as_ref());
        let response = self.api.router.dispatch(app.clone(), raw.request()?).await;
        let (parts, body) = response.into_parts();
        let value: Value = serde_json::from_slice(body.as_ref()).unwrap_or(Value::Null);
        if !parts.status.is_success() {
            return Err(format!("{method} {path} answered {}: {value}", parts.status).into());
        }
        Ok(value)
    }

    /// The items of one session as the API writes it, with `TEMPLATE_USER`
    /// as its user: what [`Scale::copy`] writes copies of.
    async fn template(&self) -> Result<Vec<AttributeMap>> {
        let transactions = Transactions::default();
        let client = Client::from_conf(self.base.to_builder().interceptor(transactions.clone()).build());
        let mut app = self.api.app.clone();
        app.store = Arc::new(DynamoStore::new(client, TABLE));
        let body = json!({"configurationSlug": "kyc", "externalUserId": TEMPLATE_USER});
        self.partner(&app, "POST", "/sessions", Some(body)).await?;
        let items = transactions.items.lock().map(|t| t.concat()).unwrap_or_default();
        items
            .iter()
            .map(|item| {
                item.put()
                    .map(|put| put.item().clone())
                    .ok_or_else(|| "creating a session wrote more than new items; copies would miss it".into())
            })
            .collect()
    }

    /// Writes sessions `from..to`: copies of `template` under fresh ids,
    /// each of its own user, `writers` batches in flight. The API takes a
    /// dozen milliseconds a session on DynamoDB Local; this writes the same
    /// items at a fraction of that.
    async fn copy(&self, template: &[AttributeMap], from: usize, to: usize, writers: usize) -> Result<()> {
        let ids = ids()?;
        let template_ids: Vec<String> = template
            .iter()
            .flat_map(|item| item.values())
            .filter_map(|v| v.as_s().ok())
            .flat_map(|s| ids.find_iter(s).map(|m| m.as_str().to_owned()).collect::<Vec<_>>())
            // The copies belong to the same organisation.
            .filter(|id| !id.starts_with("org_"))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let per_batch = (25 / template.len().max(1)).max(1);
        let next = Arc::new(AtomicUsize::new(from));
        let shared = Arc::new((template.to_vec(), template_ids, ids));
        let mut tasks = Vec::new();
        for _ in 0..writers {
            let (client, next, shared) = (self.client.clone(), Arc::clone(&next), Arc::clone(&shared));
            tasks.push(tokio::spawn(async move {
                let (template, template_ids, ids) = &*shared;
                loop {
                    let first = next.fetch_add(per_batch, Ordering::Relaxed);
                    if first >= to {
                        return Ok::<_, String>(());
                    }
                    let mut writes = Vec::new();
                    for i in first..(first + per_batch).min(to) {
                        let fresh: std::collections::HashMap<&str, String> = template_ids
                            .iter()
                            .map(|id| {
                                let prefix = id.split('_').next().unwrap_or_default();
                                (id.as_str(), format!("{prefix}_{}", uuid::Uuid::now_v7().simple()))
                            })
                            .collect();
                        let user = format!("usr_{i}");
                        let rename = |s: &str| {
                            ids.replace_all(s, |c: &regex::Captures<'_>| {
                                fresh.get(&c[0]).cloned().unwrap_or_else(|| c[0].to_owned())
                            })
                            .replace(TEMPLATE_USER, &user)
                        };
                        for item in template {
                            let item: AttributeMap =
                                item.iter().map(|(k, v)| (k.clone(), renamed(v, &rename))).collect();
                            let put = PutRequest::builder()
                                .set_item(Some(item))
                                .build()
                                .map_err(|e| e.to_string())?;
                            writes.push(WriteRequest::builder().put_request(put).build());
                        }
                    }
                    write_all(&client, writes).await?;
                    let done = (first + per_batch).min(to);
                    if done / 10_000 > first / 10_000 {
                        eprintln!("   {done} sessions written");
                    }
                }
            }));
        }
        for task in tasks {
            task.await??;
        }
        Ok(())
    }

    /// Creates sessions `from..to` through the API, `seeders` in flight.
    async fn seed(&self, from: usize, to: usize, seeders: usize, expires_in_minutes: Option<u32>) -> Result<()> {
        let next = Arc::new(AtomicUsize::new(from));
        let mut tasks = Vec::new();
        for _ in 0..seeders {
            let (api, next) = (self.api.clone(), Arc::clone(&next));
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= to {
                        return Ok::<_, String>(());
                    }
                    let mut body = json!({"configurationSlug": "kyc", "externalUserId": format!("usr_{i}")});
                    if let Some(minutes) = expires_in_minutes {
                        body["expiresInMinutes"] = json!(minutes);
                    }
                    let raw = api.signed(&api.key, "POST", "/sessions", Some(&body));
                    let request = raw.request().map_err(|e| e.to_string())?;
                    let response = api.router.dispatch(api.app.clone(), request).await;
                    if response.status() != 201 {
                        return Err(format!("creating session {i}: {}", response.status()));
                    }
                }
            }));
        }
        for task in tasks {
            task.await??;
        }
        Ok(())
    }

    /// One read `repeats` times: its requests, capacity and median latency.
    async fn list(&self, size: usize, read: &'static str, path: &str, repeats: usize) -> Result<Figure> {
        let mut latencies = Vec::new();
        let (mut requests, mut capacity, mut returned) = (0, 0.0, 0);
        for _ in 0..repeats {
            self.calls.take();
            let started = Instant::now();
            let page = self.partner(&self.measured, "GET", path, None).await?;
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
            let calls = self.calls.take();
            requests = calls.len();
            capacity = calls.iter().map(|c| c.consumed_capacity).sum();
            returned = page["data"].as_array().map_or(0, Vec::len);
        }
        Ok(Figure {
            size,
            read,
            returned,
            requests,
            capacity,
            p50_ms: quantile(&latencies, 0.5),
        })
    }

    /// Makes `due` sessions overdue and sweeps them.
    async fn sweep(&self, size: usize, due: usize, from: usize, seeders: usize) -> Result<Figure> {
        self.seed(from, from + due, seeders, Some(1)).await?;
        self.api.clock.advance(2);
        self.calls.take();
        let started = Instant::now();
        let report = functions::consumers::expiry::run(&self.measured, Duration::from_secs(600)).await?;
        let took = started.elapsed().as_secs_f64() * 1e3;
        let calls = self.calls.take();
        if report.expired != due {
            return Err(format!("the sweep expired {} of {due} due sessions", report.expired).into());
        }
        Ok(Figure {
            size,
            read: "expiry sweep",
            returned: report.expired,
            requests: calls.len(),
            capacity: calls.iter().map(|c| c.consumed_capacity).sum(),
            p50_ms: took,
        })
    }
}

pub async fn run(options: &Options) -> Result<Section> {
    let engine = Engine::start()?;
    let scale = Scale::new(&engine).await?;
    scale
        .partner(
            &scale.api.app,
            "POST",
            "/session-configurations",
            Some(json!({"name": "KYC", "slug": "kyc", "workflowSlugs": ["id-document", "proof-of-address"]})),
        )
        .await?;
    let template = scale.template().await?;
    let mut figures = Vec::new();
    let mut seeded = 1;
    let mut seeding = Duration::ZERO;
    for &size in &options.sizes {
        // The due sessions of earlier sweeps count in the table's size.
        let target = size.saturating_sub(seeded);
        eprintln!("   seeding to {size} sessions");
        let started = Instant::now();
        scale.copy(&template, seeded, seeded + target, options.seeders).await?;
        seeding += started.elapsed();
        seeded += target;
        // A known user with a known history among them all.
        let user = format!("usr_{}", seeded / 2);
        for (read, path) in [
            ("first page of 10", "/sessions?limit=10".to_owned()),
            ("first page of 100", "/sessions?limit=100".to_owned()),
            ("by status, page of 10", "/sessions?status=created&limit=10".to_owned()),
            ("one user's sessions", format!("/sessions?externalUserId={user}")),
        ] {
            figures.push(scale.list(size, read, &path, options.repeats).await?);
        }
        figures.push(scale.sweep(size, options.due, seeded, options.seeders).await?);
        seeded += options.due;
    }
    // The engine, and the table with it, goes when `engine` is dropped.
    Ok(report(&figures, options, seeded, seeding))
}

fn report(figures: &[Figure], options: &Options, seeded: usize, seeding: Duration) -> Section {
    let mut rows = String::new();
    let mut targets = Vec::new();
    let reads: Vec<&'static str> = figures.iter().fold(Vec::new(), |mut reads, f| {
        if !reads.contains(&f.read) {
            reads.push(f.read);
        }
        reads
    });
    for read in reads {
        let of: Vec<&Figure> = figures.iter().filter(|f| f.read == read).collect();
        for f in &of {
            rows.push_str(&format!(
                "| {read} | {} | {} | {} | {:.1} | {:.2} |\n",
                f.size, f.returned, f.requests, f.capacity, f.p50_ms
            ));
        }
        if let (Some(first), Some(last)) = (of.first(), of.last())
            && first.capacity > 0.0
        {
            targets.push(Target::new(
                format!("{read}: capacity at {} / at {} sessions", last.size, first.size),
                last.capacity / first.capacity,
                GROWTH_LIMIT,
            ));
        }
    }
    let rate = seeded as f64 / seeding.as_secs_f64().max(1e-9);
    let body = format!(
        "The section runs on a DynamoDB Local of its own, started fresh for it (the engine slows as its \
         in-memory database grows). The table was grown to each size with copies of one session created \
         through the API: its items exactly, under fresh ids, each copy of its own user, all of one organisation, written with \
         `BatchWriteItem` ({seeded} sessions in all, {rate:.0} per second with {seeders} batches in flight: \
         DynamoDB Local writes them on one core). At each size every listing ran {repeats} times through the \
         handler (its DynamoDB requests and capacity units, and the median latency in ms), then {due} sessions \
         were created through the API to expire in a minute, the clock moved past it and the expiry sweep run \
         once (its total time; it expires one session after another). The target: a read's capacity at the largest table is no more \
         than at the smallest, within 1% (capacity is rounded up per item kilobyte, so fresh sessions cost a \
         unit more or less from batch to batch).\n\n\
         | read | sessions in table | returned | requests | capacity units | ms |\n\
         |---|---|---|---|---|---|\n{rows}",
        seeders = options.seeders,
        repeats = options.repeats,
        due = options.due,
    );
    Section {
        title: "Scale: listing and the expiry sweep against table size".to_owned(),
        body,
        targets,
    }
}
