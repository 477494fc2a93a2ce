//! Cold start: every function's release binary started as Lambda starts it,
//! against a stub of the Lambda Runtime API ([`crate::runtime_api`]), with
//! DynamoDB Local behind it, beside two baselines built with the same
//! profile: a hello-world `lambda_http` binary (what any Rust function pays
//! to start) and a raw-SDK binary that loads `aws-config`, builds a DynamoDB
//! client and sends the same DynamoDB requests the function's handler sent
//! (what the work itself costs through the SDK, with nothing of ours).
//!
//! Each run of a function: its target is seeded; its request runs once
//! in-process on a fresh application whose DynamoDB client records every
//! request ([`crate::replay::Recorder`]); then, in an order that rotates
//! each run, the function's binary gets the same kind of request on a fresh
//! target of its own, and the two baselines are started. The raw-SDK
//! baseline replays the recorded requests on a mirror of the table: DynamoDB
//! Local keeps one database per access key id, so everything seeded for the
//! recording is replayed there too, under the access key `mirror`, and its
//! replay meets the same items the recording met.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acceptance::api::Api;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Credentials as AwsCredentials;
use chrono::Utc;
use functions::adapters::crypto::Sealer;
use functions::adapters::store::dynamodb::{DynamoStore, create_table};
use functions::admin::{self, Credentials};
use functions::api::routes::{self, PREFIX, Route, Router};
use functions::app::App;
use http::Method;
use hyper::body::Bytes;
use korala_domain::delivery::{AttemptOutcome, WebhookDelivery};
use korala_domain::ids::WebhookEndpointId;
use korala_domain::tenancy::Mode;
use serde_json::{Value, json};

use crate::replay::{Call, Recorder, replay_all};
use crate::runtime_api::RuntimeApi;
use crate::{Result, Section, Target, quantile};

/// Limits of the issue: init ≤ 1.5× hello-world, first response ≤ 1.2× the
/// raw-SDK baseline, binary ≤ 1.3× the raw-SDK baseline.
const INIT_LIMIT: f64 = 1.5;
const FIRST_RESPONSE_LIMIT: f64 = 1.2;
const SIZE_LIMIT: f64 = 1.3;

const HELLO: &str = "hello-lambda";
const RAW_SDK: &str = "raw-sdk-lambda";
/// Prints how long its process waited for aws-lc's first random bytes.
const FIRST_RANDOM: &str = "first-random";
/// The access key id the raw-SDK baseline uses: its own DynamoDB Local database.
const MIRROR_KEY: &str = "mirror";
/// What the raw-SDK baseline reads its calls from.
const CALLS_ENV: &str = "KORALA_BASELINE_CALLS";
/// Where nothing listens: the SQS and EventBridge endpoints when moto is not
/// running, so nothing can reach AWS.
const NOWHERE: &str = "http://127.0.0.1:9";

#[derive(Debug, Clone)]
pub struct ColdStartOptions {
    /// Where the function binaries and both baselines are
    /// (`target/release`; `target/debug` while developing).
    pub bin_dir: PathBuf,
    /// Starts per function and baseline; the median is reported.
    pub runs: usize,
    /// Where each process's stdout and stderr go (`{name}.log`, the latest
    /// start's); `None` discards them.
    pub log_dir: Option<PathBuf>,
    /// Only these functions (all when empty).
    pub only: Vec<String>,
    /// How long a process may take to start or to answer.
    pub timeout: Duration,
}

impl Default for ColdStartOptions {
    fn default() -> Self {
        Self {
            bin_dir: PathBuf::from("target/release"),
            runs: 5,
            log_dir: None,
            only: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Runs the benchmark: needs DynamoDB Local (`eval "$(scripts/dynamodb-local
/// start)"`) and, for the functions that send to SQS or EventBridge, moto
/// (`eval "$(scripts/moto start)"`; without it they are started but not
/// invoked).
pub async fn run(options: &ColdStartOptions) -> Result<Section> {
    let bench = Bench::new(options).await?;
    let subjects = bench.subjects();
    if subjects.is_empty() {
        return Err("no function to measure: check `only`".into());
    }
    for path in subjects
        .iter()
        .map(|s| s.name)
        .chain([HELLO, RAW_SDK, FIRST_RANDOM])
        .map(|name| options.bin_dir.join(name))
    {
        warm_page_cache(&path)?;
    }
    let mut rows: Vec<Row> = subjects.iter().map(Row::new).collect();
    let mut cache = HashMap::new();
    for round in 0..options.runs.max(1) {
        for (subject, row) in subjects.iter().zip(rows.iter_mut()) {
            bench.round(subject, row, round, &mut cache).await?;
        }
    }
    let sizes = Sizes::read(&options.bin_dir, &subjects)?;
    let random = FirstRandom::measure(&options.bin_dir, options.runs.max(1))?;
    Ok(section(&bench, &rows, &sizes, &random))
}

/// aws-lc's first random bytes in fresh processes: what a cold start's
/// first TLS handshake waits for. DynamoDB Local is plain HTTP, so the
/// starts above never pay it; on AWS every function does.
struct FirstRandom {
    p50_ms: f64,
    processes: usize,
    /// `AWS_LC_SYS_NO_JITTER_ENTROPY` as the probe was built.
    no_jitter_entropy: String,
}

impl FirstRandom {
    fn measure(bin_dir: &Path, processes: usize) -> Result<Self> {
        let mut waits = Vec::new();
        let mut no_jitter_entropy = String::new();
        for _ in 0..processes {
            let output = std::process::Command::new(bin_dir.join(FIRST_RANDOM)).output()?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let mut words = stdout.split_whitespace();
            let micros: f64 = match (output.status.success(), words.next().map(str::parse)) {
                (true, Some(Ok(micros))) => micros,
                _ => return Err(format!("{FIRST_RANDOM} answered {:?}: {stdout}", output.status).into()),
            };
            waits.push(micros / 1e3);
            no_jitter_entropy = words.next().unwrap_or_default().to_owned();
        }
        Ok(Self {
            p50_ms: quantile(&waits, 0.5),
            processes,
            no_jitter_entropy,
        })
    }
}

/// Reads a binary once, so that no start waits for the disk (only the first
/// start of each binary would): starts then differ by what binaries do.
fn warm_page_cache(path: &Path) -> Result<()> {
    let mut file = File::open(path).map_err(|e| format!("{}: {e} (build it first)", path.display()))?;
    std::io::copy(&mut file, &mut std::io::sink())?;
    Ok(())
}

// ---------------------------------------------------------------------------
// What is measured

/// How a function is invoked.
#[derive(Clone, Copy)]
enum Kind {
    /// An API function: an API Gateway HTTP API (v2) event answering this status.
    Api(&'static str, u16),
    /// An event function, given its sample event (`events/*.json`).
    Event(EventFunction),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventFunction {
    ExpirySweeper,
    OutboxPublisher,
    ChecksWorker,
    WebhookFanout,
    WebhookDispatcher,
}

impl EventFunction {
    const ALL: [(&'static str, EventFunction); 5] = [
        ("expiry-sweeper", EventFunction::ExpirySweeper),
        ("outbox-publisher", EventFunction::OutboxPublisher),
        ("checks-worker", EventFunction::ChecksWorker),
        ("webhook-fanout", EventFunction::WebhookFanout),
        ("webhook-dispatcher", EventFunction::WebhookDispatcher),
    ];

    fn sample(self) -> &'static str {
        match self {
            EventFunction::ExpirySweeper => include_str!("../../events/expiry-sweeper.json"),
            EventFunction::OutboxPublisher => include_str!("../../events/outbox-publisher.json"),
            EventFunction::ChecksWorker => include_str!("../../events/checks-worker.json"),
            EventFunction::WebhookFanout => include_str!("../../events/webhook-fanout.json"),
            EventFunction::WebhookDispatcher => include_str!("../../events/webhook-dispatcher.json"),
        }
    }
}

struct Subject {
    name: &'static str,
    kind: Kind,
    /// Invoked (first response measured), or only started (init).
    invoked: bool,
    /// Whether the first response is held to the raw-SDK baseline: not
    /// when the function's work is not DynamoDB requests.
    compared: bool,
}

/// What one function's runs gave, and its baselines' in the same rounds.
struct Row {
    name: &'static str,
    invoked: bool,
    compared: bool,
    own: Starts,
    hello: Starts,
    raw: Starts,
    /// DynamoDB requests the recorded handler sent (the latest run's).
    calls: usize,
    /// Replayed requests DynamoDB refused, over all runs.
    refused: usize,
}

#[derive(Default)]
struct Starts {
    init_ms: Vec<f64>,
    first_response_ms: Vec<f64>,
}

impl Starts {
    fn add(&mut self, start: &Start) {
        self.init_ms.push(start.init_ms);
        if let Some(ms) = start.first_response_ms {
            self.first_response_ms.push(ms);
        }
    }

    fn init(&self) -> f64 {
        quantile(&self.init_ms, 0.5)
    }

    fn first_response(&self) -> f64 {
        quantile(&self.first_response_ms, 0.5)
    }
}

impl Row {
    fn new(subject: &Subject) -> Self {
        Self {
            name: subject.name,
            invoked: subject.invoked,
            compared: subject.compared,
            own: Starts::default(),
            hello: Starts::default(),
            raw: Starts::default(),
            calls: 0,
            refused: 0,
        }
    }
}

// ---------------------------------------------------------------------------
// The environment: the table, its mirror, the seeding application

/// A request as a partner (or an end user, without a key) sends it.
#[derive(Clone)]
struct Req {
    method: Method,
    /// Under `/api/v1`, with the query.
    path: String,
    body: Option<Value>,
    key: Option<Credentials>,
}

/// The queues and bus on moto, when it runs.
struct Moto {
    sqs_endpoint: String,
    eventbridge_endpoint: String,
    bus: String,
    deliveries: String,
    events: String,
    checks: String,
}

struct Bench {
    options: ColdStartOptions,
    table: String,
    master_key: String,
    dynamodb_endpoint: String,
    region: String,
    /// The functions' SDK configuration, for the recording applications.
    config: SdkConfig,
    seed: Seed,
    moto: Option<Moto>,
    /// The machine's one-minute load average when the run began (Linux).
    load: Option<String>,
}

impl Bench {
    async fn new(options: &ColdStartOptions) -> Result<Self> {
        let dynamodb_endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").map_err(|_| {
            "AWS_ENDPOINT_URL_DYNAMODB is not set: start DynamoDB Local first (eval \"$(scripts/dynamodb-local start)\")"
        })?;
        let config = functions::adapters::aws::sdk_config().await;
        // The baseline's database is DynamoDB Local's for its access key and
        // region: the same region as the mirror client's.
        let region = config
            .region()
            .map_or_else(|| "eu-west-1".to_owned(), ToString::to_string);
        let table = format!("bench-cold-start-{}", Utc::now().timestamp_millis());
        let main = Client::new(&config);
        let mirror = Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config)
                .credentials_provider(AwsCredentials::new(MIRROR_KEY, MIRROR_KEY, None, None, "cold-start"))
                .build(),
        );
        create_table(&main, &table).await?;
        create_table(&mirror, &table).await?;
        let master_key = Sealer::generate_key();
        let seed = Seed::new(&config, &table, &master_key, mirror)?;
        Ok(Self {
            options: options.clone(),
            moto: Moto::provision(&table).await?,
            table,
            master_key,
            dynamodb_endpoint,
            region,
            config,
            seed,
            load: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|l| l.split_whitespace().next().map(str::to_owned)),
        })
    }

    /// The API functions, then the event functions, as `only` allows.
    fn subjects(&self) -> Vec<Subject> {
        let moto = self.moto.is_some();
        let api = routes::all().into_iter().map(|route| {
            let queues = route.sends.is_some();
            Subject {
                name: route.function,
                kind: Kind::Api(route.function, route.status),
                invoked: moto || !queues,
                compared: true,
            }
        });
        let events = EventFunction::ALL.into_iter().map(|(name, function)| {
            let publishes = function == EventFunction::OutboxPublisher;
            Subject {
                name,
                kind: Kind::Event(function),
                invoked: moto || !publishes,
                compared: !publishes,
            }
        });
        api.chain(events)
            .filter(|s| self.options.only.is_empty() || self.options.only.iter().any(|o| o == s.name))
            .collect()
    }

    /// One run of one function and its baselines.
    async fn round(
        &self,
        subject: &Subject,
        row: &mut Row,
        round: usize,
        cache: &mut HashMap<&'static str, Req>,
    ) -> Result<()> {
        let Some((event, check, calls)) = self.prepare(subject, round, cache).await? else {
            // Started only: the function and hello-world, in turn.
            let spawns = [
                (self.spawn_function(subject, None), Which::Own),
                (self.spawn_hello(None), Which::Hello),
            ];
            return self.measure(rotate(spawns, round), &Check::Started, row).await;
        };
        row.calls = calls.len();
        // The baselines are `lambda_http` functions: an event function's
        // baselines get an HTTP event carrying its event as the body.
        let baseline_event = match subject.kind {
            Kind::Api(..) => event.clone(),
            Kind::Event(_) => http_event_of(&event)?,
        };
        let spawns = [
            (self.spawn_function(subject, Some(event)), Which::Own),
            (self.spawn_hello(Some(baseline_event.clone())), Which::Hello),
            (
                self.spawn_raw_sdk(baseline_event, serde_json::to_string(&calls)?),
                Which::RawSdk,
            ),
        ];
        self.measure(rotate(spawns, round), &check, row).await
    }

    /// Starts each in turn, checks its answer and adds its figures to the row.
    async fn measure<const N: usize>(&self, spawns: [(Spawn, Which); N], check: &Check, row: &mut Row) -> Result<()> {
        for (spawn, which) in spawns {
            let start = self.start(&spawn).await?;
            let body = start.body.as_deref().unwrap_or_default();
            match which {
                Which::Own => {
                    check.verify(spawn.name, body)?;
                    row.own.add(&start);
                }
                Which::Hello => {
                    if start.body.is_some() {
                        Check::Status(200).verify(HELLO, body)?;
                    }
                    row.hello.add(&start);
                }
                Which::RawSdk => {
                    row.refused += raw_sdk_refused(body)?;
                    row.raw.add(&start);
                }
            }
        }
        Ok(())
    }

    /// Seeds the run's targets and records the handler's DynamoDB requests:
    /// the cold process's event, how to check its answer, and the requests
    /// the raw-SDK baseline replays. `None`: the function is only started.
    async fn prepare(
        &self,
        subject: &Subject,
        round: usize,
        cache: &mut HashMap<&'static str, Req>,
    ) -> Result<Option<(Vec<u8>, Check, Vec<Call>)>> {
        if !subject.invoked {
            return Ok(None);
        }
        match subject.kind {
            Kind::Api(function, status) => {
                let route = route(function)?;
                // The recorded request's target is mirrored; the cold
                // process's is not (only the baseline reads the mirror).
                let recorded = self.request(function, true, cache).await?;
                let calls = self.record_api(&route, &recorded, status).await?;
                let cold = self.request(function, false, cache).await?;
                let event = api_event(&route, &cold, &format!("cold-{function}-{round}"))?;
                Ok(Some((event.into_bytes(), Check::Status(status), calls)))
            }
            Kind::Event(function) => {
                if function == EventFunction::ExpirySweeper {
                    self.seed.overdue_session(true).await?;
                }
                let calls = self.record_event(function).await?;
                let check = match function {
                    EventFunction::ExpirySweeper => {
                        self.seed.overdue_session(false).await?;
                        Check::Expired
                    }
                    _ => Check::NoBatchFailures,
                };
                Ok(Some((function.sample().as_bytes().to_vec(), check, calls)))
            }
        }
    }

    /// A request of `function` on a target of its own: seeded once for the
    /// functions that only read, for every request for those that change or
    /// use up their target (each in an organisation of its own, so no limit
    /// per organisation is reached). Mirrored when the raw-SDK baseline will
    /// replay it.
    async fn request(
        &self,
        function: &'static str,
        mirrored: bool,
        cache: &mut HashMap<&'static str, Req>,
    ) -> Result<Req> {
        let reads = reads_only(function)?;
        if reads && let Some(req) = cache.get(function) {
            return Ok(req.clone());
        }
        let req = self.seed.target(function).await?;
        // A read's target serves the recording and the cold process alike.
        if mirrored || reads {
            self.seed.mirror().await?;
        } else {
            self.seed.forget();
        }
        if reads {
            cache.insert(function, req.clone());
        }
        Ok(req)
    }

    /// A fresh application, as a cold process builds (its own key cache),
    /// whose DynamoDB client records every request.
    async fn recording_app(&self, deliveries: Option<&str>) -> Result<(App, Recorder)> {
        let recorder = Recorder::default();
        let client = Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&self.config)
                .interceptor(recorder.clone())
                .build(),
        );
        let mut app = App::new(
            Arc::new(DynamoStore::new(client, self.table.clone())),
            Sealer::from_base64(&self.master_key)?,
        );
        if let Some(url) = deliveries {
            app.deliveries = Some(Arc::new(self.queue(url).await));
        }
        Ok((app, recorder))
    }

    async fn queue(&self, url: &str) -> functions::adapters::queue::sqs::SqsQueue {
        functions::adapters::queue::sqs::SqsQueue::new(functions::adapters::aws::Aws::default().sqs().await, url)
    }

    /// Runs the request in-process through the function's handler, as its
    /// binary does; returns the DynamoDB requests it sent.
    async fn record_api(&self, route: &Route, req: &Req, expected: u16) -> Result<Vec<Call>> {
        let (app, recorder) = self
            .recording_app(self.moto.as_ref().map(|m| m.deliveries.as_str()))
            .await?;
        let event = api_event(route, req, "recorded")?;
        let request = lambda_http::request::from_str(&event)?;
        let response = routes::handle(route.function, route.handler, app, request, "recorded").await;
        if response.status().as_u16() != expected {
            return Err(format!(
                "{} answered {} in-process, not {expected}: {}",
                route.function,
                response.status(),
                String::from_utf8_lossy(response.body().as_ref())
            )
            .into());
        }
        Ok(recorder.take())
    }

    /// Handles the function's sample event in-process, as its binary does;
    /// returns the DynamoDB requests it sent.
    async fn record_event(&self, function: EventFunction) -> Result<Vec<Call>> {
        use functions::consumers::{Consumer, sqs_batch};
        let deliveries = self.queue_url(|m| &m.deliveries, "deliveries");
        let (app, recorder) = self.recording_app(Some(&deliveries)).await?;
        let batch = || serde_json::from_str(function.sample());
        let consumer: Arc<dyn Consumer> = match function {
            EventFunction::ExpirySweeper => {
                let report = functions::consumers::expiry::run(&app, Duration::from_secs(20)).await?;
                if report.expired == 0 {
                    return Err("the in-process sweep expired nothing: the overdue session was not seeded".into());
                }
                return Ok(recorder.take());
            }
            // Its work is a PutEvents, not DynamoDB: nothing to record.
            EventFunction::OutboxPublisher => return Ok(Vec::new()),
            EventFunction::ChecksWorker => {
                let providers = functions::adapters::providers::Providers::from_env()?;
                Arc::new(functions::consumers::checks_worker::ChecksWorker::new(
                    &app,
                    Arc::new(providers),
                ))
            }
            EventFunction::WebhookFanout => Arc::new(functions::consumers::fanout::FanOut::new(
                app.store.clone(),
                app.clock.clone(),
                Arc::new(self.queue(&deliveries).await),
            )),
            EventFunction::WebhookDispatcher => Arc::new(functions::consumers::dispatcher::Dispatcher::new(&app)?),
        };
        let queue = self.queue(&self.queue_url(|m| &m.events, "events")).await;
        let response = sqs_batch(consumer, &queue, batch()?).await;
        if !response.batch_item_failures.is_empty() {
            return Err(format!("{function:?} failed its sample batch in-process").into());
        }
        Ok(recorder.take())
    }

    /// A queue on moto, or a URL nothing answers (for functions that must
    /// name a queue to start but send nothing to it here).
    fn queue_url(&self, pick: impl Fn(&Moto) -> &String, name: &str) -> String {
        self.moto
            .as_ref()
            .map(|m| pick(m).clone())
            .unwrap_or_else(|| format!("{NOWHERE}/123456789012/{}-{name}", self.table))
    }

    // Processes ------------------------------------------------------------

    /// What Lambda gives every function's process, plus DynamoDB Local's
    /// endpoint and the given access key.
    fn lambda_env(&self, function: &str, access_key: &str) -> Vec<(String, String)> {
        let (sqs, eventbridge) = match &self.moto {
            Some(m) => (m.sqs_endpoint.as_str(), m.eventbridge_endpoint.as_str()),
            None => (NOWHERE, NOWHERE),
        };
        [
            ("AWS_LAMBDA_FUNCTION_NAME", function),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", &format!("/aws/lambda/{function}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/26/[$LATEST]0123456789abcdef"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
            ("AWS_REGION", &self.region),
            ("AWS_DEFAULT_REGION", &self.region),
            ("AWS_ACCESS_KEY_ID", access_key),
            ("AWS_SECRET_ACCESS_KEY", access_key),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_ENDPOINT_URL_DYNAMODB", &self.dynamodb_endpoint),
            ("AWS_ENDPOINT_URL_SQS", sqs),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", eventbridge),
            ("TZ", ":UTC"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn spawn_function(&self, subject: &Subject, event: Option<Vec<u8>>) -> Spawn {
        let mut env = self.lambda_env(subject.name, "local");
        env.push(("SESSIONS_TABLE".into(), self.table.clone()));
        env.push(("KORALA_MASTER_KEY".into(), self.master_key.clone()));
        let queues: &[(&str, String)] = &[
            (
                "WEBHOOK_DELIVERIES_QUEUE_URL",
                self.queue_url(|m| &m.deliveries, "deliveries"),
            ),
            ("WEBHOOK_EVENTS_QUEUE_URL", self.queue_url(|m| &m.events, "events")),
            ("CHECKS_QUEUE_URL", self.queue_url(|m| &m.checks, "checks")),
            (
                "EVENT_BUS_NAME",
                self.moto.as_ref().map(|m| m.bus.clone()).unwrap_or_default(),
            ),
        ];
        // Each function gets what its deployment gives it (infra/template.yaml).
        let wanted: &[&str] = match subject.name {
            "webhook-endpoints-test" | "webhook-deliveries-redeliver" | "webhook-dispatcher" => {
                &["WEBHOOK_DELIVERIES_QUEUE_URL"]
            }
            "webhook-fanout" => &["WEBHOOK_EVENTS_QUEUE_URL", "WEBHOOK_DELIVERIES_QUEUE_URL"],
            "checks-worker" => &["CHECKS_QUEUE_URL"],
            "outbox-publisher" => &["EVENT_BUS_NAME"],
            _ => &[],
        };
        env.extend(
            queues
                .iter()
                .filter(|(name, _)| wanted.contains(name))
                .map(|(name, value)| ((*name).to_owned(), value.clone())),
        );
        if subject.name == "outbox-publisher" && self.moto.is_none() {
            // Only started: it needs a bus name to get that far.
            env.retain(|(k, _)| k != "EVENT_BUS_NAME");
            env.push(("EVENT_BUS_NAME".into(), format!("{}-sessions", self.table)));
        }
        Spawn {
            name: subject.name,
            env,
            event,
        }
    }

    /// Hello-world, given the function's event (answered without a look).
    fn spawn_hello(&self, event: Option<Vec<u8>>) -> Spawn {
        Spawn {
            name: HELLO,
            env: self.lambda_env(HELLO, "local"),
            event,
        }
    }

    fn spawn_raw_sdk(&self, event: Vec<u8>, calls: String) -> Spawn {
        let mut env = self.lambda_env(RAW_SDK, MIRROR_KEY);
        env.push((CALLS_ENV.into(), calls));
        Spawn {
            name: RAW_SDK,
            env,
            event: Some(event),
        }
    }

    /// Starts the binary against a fresh Runtime API stub, waits for its
    /// first poll and (when it has an event) its answer, and kills it.
    async fn start(&self, spawn: &Spawn) -> Result<Start> {
        let api = RuntimeApi::start(spawn.name, spawn.event.clone()).await?;
        let mut command = Command::new(self.options.bin_dir.join(spawn.name));
        command
            .env_clear()
            .envs(spawn.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .stdin(Stdio::null());
        let log = self.log_file(spawn.name)?;
        match &log {
            Some((_, file)) => command.stdout(file.try_clone()?).stderr(file.try_clone()?),
            None => command.stdout(Stdio::null()).stderr(Stdio::null()),
        };
        let started = Instant::now();
        let mut child = Killed(command.spawn()?);
        let timeout = self.options.timeout;
        let outcome = async {
            let init = until_exit(&mut child.0, api.init_done(timeout)).await?;
            let response = match spawn.event {
                Some(_) => Some(until_exit(&mut child.0, api.response(timeout)).await?),
                None => None,
            };
            Ok::<_, crate::Error>((init, response))
        }
        .await;
        drop(child);
        let (init, response) = outcome.map_err(|e| {
            let log = log
                .as_ref()
                .map(|(path, _)| format!(" (its output: {})", path.display()));
            format!("{}: {e}{}", spawn.name, log.unwrap_or_default())
        })?;
        Ok(Start {
            init_ms: ms(init - started),
            first_response_ms: response.as_ref().map(|(at, _)| ms(*at - started)),
            body: response.map(|(_, body)| body),
        })
    }

    fn log_file(&self, name: &str) -> Result<Option<(PathBuf, File)>> {
        let Some(dir) = &self.options.log_dir else {
            return Ok(None);
        };
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}.log"));
        let file = File::create(&path)?;
        Ok(Some((path, file)))
    }
}

#[derive(Clone, Copy)]
enum Which {
    Own,
    Hello,
    RawSdk,
}

/// A process to start: which binary, its environment, its event.
struct Spawn {
    name: &'static str,
    env: Vec<(String, String)>,
    event: Option<Vec<u8>>,
}

/// One start: milliseconds from spawn to the first poll and to the answer.
struct Start {
    init_ms: f64,
    first_response_ms: Option<f64>,
    body: Option<Bytes>,
}

/// A child killed when dropped, however the measurement ended.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `waiting`, unless the process exits first (a crash at start).
async fn until_exit<T>(
    child: &mut Child,
    waiting: impl std::future::Future<Output = std::result::Result<T, crate::runtime_api::Stalled>>,
) -> Result<T> {
    let exited = async {
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        result = waiting => Ok(result?),
        status = exited => Err(format!("exited ({status}) before it got there").into()),
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// `items` rotated left by `by`: each run starts with another process.
fn rotate<T, const N: usize>(mut items: [T; N], by: usize) -> [T; N] {
    items.rotate_left(by % N);
    items
}

// ---------------------------------------------------------------------------
// Answers

/// What a process's answer must be.
#[derive(Debug)]
enum Check {
    /// An API Gateway response with this status.
    Status(u16),
    /// An SQS or stream batch answer naming no failed record.
    NoBatchFailures,
    /// A sweep that expired at least the session seeded for it.
    Expired,
    /// Not invoked: nothing to check.
    Started,
}

impl Check {
    fn verify(&self, name: &str, body: &[u8]) -> Result<()> {
        if matches!(self, Check::Started) {
            return Ok(());
        }
        let answer: Value = serde_json::from_slice(body)
            .map_err(|e| format!("{name} answered {} ({e})", String::from_utf8_lossy(body)))?;
        let ok = match self {
            Check::Status(status) => answer["statusCode"].as_u64() == Some(u64::from(*status)),
            Check::NoBatchFailures => answer["batchItemFailures"].as_array().is_some_and(Vec::is_empty),
            Check::Expired => answer["expired"].as_u64().is_some_and(|n| n >= 1),
            Check::Started => true,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{name} answered {answer}, not {self:?}").into())
        }
    }
}

/// How many replayed requests DynamoDB refused, from the raw-SDK baseline's
/// answer (which must be a 200).
fn raw_sdk_refused(body: &[u8]) -> Result<usize> {
    Check::Status(200).verify(RAW_SDK, body)?;
    let answer: Value = serde_json::from_slice(body)?;
    let inner: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("{}"))?;
    Ok(inner["refused"].as_u64().unwrap_or_default() as usize)
}

// ---------------------------------------------------------------------------
// Seeding

/// The application that seeds the table in-process (through the router, as
/// partners and end users would), recording its DynamoDB requests so they
/// can be replayed on the mirror.
#[derive(Clone)]
struct Seed {
    app: App,
    router: Arc<Router>,
    recorder: Recorder,
    mirror: Client,
}

const KYC: &[&str] = &["id-document", "proof-of-address"];

impl Seed {
    fn new(config: &SdkConfig, table: &str, master_key: &str, mirror: Client) -> Result<Self> {
        let recorder = Recorder::default();
        let client = Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(config)
                .interceptor(recorder.clone())
                .build(),
        );
        let app = App::new(
            Arc::new(DynamoStore::new(client, table)),
            Sealer::from_base64(master_key)?,
        );
        Ok(Self {
            app,
            router: Arc::new(Router::new()),
            recorder,
            mirror,
        })
    }

    /// Sends what was seeded since the last call to the mirror as well.
    async fn mirror(&self) -> Result<()> {
        let calls = self.recorder.take();
        let refused = replay_all(&self.mirror, &calls).await?;
        if refused > 0 {
            return Err(format!("the mirror refused {refused} of {} seeding requests", calls.len()).into());
        }
        Ok(())
    }

    /// Keeps what was seeded since the last call out of the mirror.
    fn forget(&self) {
        self.recorder.take();
    }

    /// A new organisation's test key.
    async fn organisation(&self) -> Result<Credentials> {
        let org = admin::create_organization(&self.app, "Cold start").await?;
        Ok(admin::create_key(&self.app, &org.id, Mode::Test).await?)
    }

    /// A signed partner request, which must succeed; its answer.
    async fn partner(&self, key: &Credentials, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let path = format!("{PREFIX}{path}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let timestamp = crate::signing_time(
            self.app.clock.now().timestamp(),
            method.as_str(),
            &path,
            body.as_bytes(),
        );
        let headers = Api::signature_headers(key, timestamp, method.as_str(), &path, body.as_bytes());
        let mut request = http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        self.send(request, body).await
    }

    /// An end user's request (the access token in the path), which must succeed.
    async fn end_user(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let request = http::Request::builder().method(method).uri(format!("{PREFIX}{path}"));
        self.send(request, body.map(|b| b.to_string()).unwrap_or_default())
            .await
    }

    async fn send(&self, mut request: http::request::Builder, body: String) -> Result<Value> {
        let label = format!(
            "{} {}",
            request.method_ref().map(Method::as_str).unwrap_or_default(),
            request.uri_ref().map(|u| u.path().to_owned()).unwrap_or_default()
        );
        let body = if body.is_empty() {
            lambda_http::Body::Empty
        } else {
            request = request.header("content-type", "application/json");
            lambda_http::Body::from(body)
        };
        let response = self.router.dispatch(self.app.clone(), request.body(body)?).await;
        let text = String::from_utf8_lossy(response.body().as_ref()).into_owned();
        if !response.status().is_success() {
            return Err(format!("seeding {label} answered {}: {text}", response.status()).into());
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn configuration(&self, key: &Credentials, slug: &str, workflows: &[&str]) -> Result<()> {
        let body = json!({ "name": format!("Configuration {slug}"), "slug": slug, "workflowSlugs": workflows });
        self.partner(key, Method::POST, "/session-configurations", Some(body))
            .await?;
        Ok(())
    }

    async fn workflow(&self, key: &Credentials, slug: &str) -> Result<()> {
        self.partner(key, Method::POST, "/workflows", Some(source_of_funds(slug)))
            .await?;
        Ok(())
    }

    /// A session of `configuration`: its id, access token and first workflow.
    async fn session(&self, key: &Credentials, configuration: &str) -> Result<SessionIds> {
        let view = self
            .partner(key, Method::POST, "/sessions", Some(session_body(configuration)))
            .await?;
        let text = |v: &Value| v.as_str().map(str::to_owned).ok_or("a session view without ids");
        Ok(SessionIds {
            id: text(&view["id"])?,
            token: text(&view["accessToken"])?,
            workflow: text(&view["workflows"][0]["id"])?,
        })
    }

    /// The end user starts the session and completes its first step.
    async fn submit(&self, session: &SessionIds, data: Value) -> Result<()> {
        self.end_user(Method::POST, &format!("/access/{}/start", session.token), None)
            .await?;
        let path = format!("/access/{}/workflows/{}", session.token, session.workflow);
        self.end_user(Method::POST, &path, Some(json!({ "data": data })))
            .await?;
        Ok(())
    }

    async fn endpoint(&self, key: &Credentials) -> Result<String> {
        let view = self
            .partner(key, Method::POST, "/webhook-endpoints", Some(endpoint_body()))
            .await?;
        Ok(view["id"].as_str().ok_or("an endpoint without an id")?.to_owned())
    }

    /// A test delivery to the endpoint, stored directly (sending it needs
    /// SQS): pending, or already delivered (so it can be redelivered).
    async fn delivery(&self, key: &Credentials, endpoint: &str, delivered: bool) -> Result<String> {
        let id = WebhookEndpointId::parse(endpoint).ok_or("not an endpoint id")?;
        let endpoint = self
            .app
            .store
            .endpoints()
            .get(&key.tenant().ok_or("a key id without a mode")?, &id)
            .await?
            .ok_or("the seeded endpoint is gone")?;
        let now = self.app.clock.now();
        let mut delivery = WebhookDelivery::test(&endpoint, self.app.ids.as_ref(), now);
        if delivered {
            delivery = delivery
                .record(AttemptOutcome::Responded { status_code: 200 }, 12, now)
                .0;
        }
        self.app.store.deliveries().insert(&delivery).await?;
        Ok(delivery.id.as_str().to_owned())
    }

    /// A session whose deadline passed a day ago, for the sweeper: created
    /// two days back with the default one-day deadline.
    async fn overdue_session(&self, mirrored: bool) -> Result<()> {
        let mut past = self.clone();
        past.app.clock = Arc::new(acceptance::api::TestClock::new(Utc::now() - chrono::Duration::days(2)));
        let key = past.organisation().await?;
        past.configuration(&key, "kyc-standard", KYC).await?;
        past.session(&key, "kyc-standard").await?;
        if mirrored {
            self.mirror().await
        } else {
            self.forget();
            Ok(())
        }
    }

    /// A new organisation with what `function`'s request needs to succeed,
    /// and that request.
    async fn target(&self, function: &str) -> Result<Req> {
        let key = self.organisation().await?;
        let area = function.split('-').next().unwrap_or_default();
        let (method, path, body) = match area {
            "configurations" => self.configurations(&key, function).await?,
            "workflows" => self.workflows(&key, function).await?,
            "sessions" => self.sessions(&key, function).await?,
            "webhook" => self.webhooks(&key, function).await?,
            "access" => return self.access(&key, function).await,
            _ => return Err(format!("no request is planned for {function}").into()),
        };
        Ok(Req {
            method,
            path,
            body,
            key: Some(key),
        })
    }

    async fn configurations(&self, key: &Credentials, function: &str) -> Result<Plan> {
        let path = "/session-configurations/kyc-standard".to_owned();
        match function {
            "configurations-create" => {
                let body = json!({ "name": "KYC Standard", "slug": "kyc-standard", "workflowSlugs": KYC });
                return Ok((Method::POST, "/session-configurations".to_owned(), Some(body)));
            }
            "configurations-list" => {
                for slug in ["kyc-standard", "kyc-enhanced", "kyc-light"] {
                    self.configuration(key, slug, KYC).await?;
                }
                return Ok((Method::GET, "/session-configurations".to_owned(), None));
            }
            _ => self.configuration(key, "kyc-standard", KYC).await?,
        }
        Ok(match function {
            "configurations-get" => (Method::GET, path, None),
            "configurations-update" => (Method::PATCH, path, Some(json!({ "defaultExpiresInMinutes": 2880 }))),
            _ => (Method::DELETE, path, None),
        })
    }

    async fn workflows(&self, key: &Credentials, function: &str) -> Result<Plan> {
        if function == "workflows-create" {
            let body = source_of_funds("source-of-funds");
            return Ok((Method::POST, "/workflows".to_owned(), Some(body)));
        }
        self.workflow(key, "source-of-funds").await?;
        let path = "/workflows/source-of-funds".to_owned();
        Ok(match function {
            "workflows-list" => (Method::GET, "/workflows".to_owned(), None),
            "workflows-get" => (Method::GET, path, None),
            "workflows-update" => (Method::PUT, path, Some(source_of_funds_update())),
            _ => (Method::DELETE, path, None),
        })
    }

    async fn sessions(&self, key: &Credentials, function: &str) -> Result<Plan> {
        if function == "sessions-review" {
            return self.review(key).await;
        }
        self.configuration(key, "kyc-standard", KYC).await?;
        match function {
            "sessions-create" => {
                return Ok((Method::POST, "/sessions".to_owned(), Some(session_body("kyc-standard"))));
            }
            "sessions-list" => {
                for _ in 0..5 {
                    self.session(key, "kyc-standard").await?;
                }
                return Ok((Method::GET, "/sessions?limit=10".to_owned(), None));
            }
            _ => {}
        }
        let session = self.session(key, "kyc-standard").await?;
        // A session with some history (and, for a resubmission, a workflow
        // done to resubmit); a resolution needs none.
        if function != "sessions-resolve" {
            self.submit(&session, id_document()).await?;
        }
        let path = format!("/sessions/{}", session.id);
        Ok(match function {
            "sessions-get" => (Method::GET, path, None),
            "sessions-events" => (Method::GET, format!("{path}/events"), None),
            "sessions-resolve" => {
                let body = json!({ "resolution": "approved", "reason": "Manually verified after review" });
                (Method::POST, format!("{path}/resolve"), Some(body))
            }
            _ => (
                Method::POST,
                format!("{path}/workflows/{}/resubmit", session.workflow),
                None,
            ),
        })
    }

    /// A workflow paused for the partner's review: a declared income this
    /// high sends it there.
    async fn review(&self, key: &Credentials) -> Result<Plan> {
        self.workflow(key, "source-of-funds").await?;
        self.configuration(key, "funds", &["source-of-funds"]).await?;
        let session = self.session(key, "funds").await?;
        self.submit(&session, json!({ "source": "salary", "annualIncome": 5_000_000 }))
            .await?;
        let path = format!("/sessions/{}/workflows/{}/review", session.id, session.workflow);
        let body = json!({ "decision": "approved", "reason": "Source of funds confirmed by phone" });
        Ok((Method::POST, path, Some(body)))
    }

    async fn webhooks(&self, key: &Credentials, function: &str) -> Result<Plan> {
        match function {
            "webhook-endpoints-create" => {
                return Ok((Method::POST, "/webhook-endpoints".to_owned(), Some(endpoint_body())));
            }
            "webhook-endpoints-list" => {
                for _ in 0..3 {
                    self.endpoint(key).await?;
                }
                return Ok((Method::GET, "/webhook-endpoints".to_owned(), None));
            }
            _ => {}
        }
        let endpoint = self.endpoint(key).await?;
        let path = format!("/webhook-endpoints/{endpoint}");
        Ok(match function {
            "webhook-endpoints-get" => (Method::GET, path, None),
            "webhook-endpoints-update" => (Method::PATCH, path, Some(json!({ "enabled": false }))),
            "webhook-endpoints-delete" => (Method::DELETE, path, None),
            "webhook-endpoints-test" => (Method::POST, format!("{path}/test"), None),
            "webhook-deliveries-list" => {
                for _ in 0..3 {
                    self.delivery(key, &endpoint, false).await?;
                }
                (Method::GET, format!("{path}/deliveries?limit=10"), None)
            }
            _ => {
                let delivery = self.delivery(key, &endpoint, true).await?;
                (Method::POST, format!("/webhook-deliveries/{delivery}/redeliver"), None)
            }
        })
    }

    /// The end user's requests: the access token is the only credential.
    async fn access(&self, key: &Credentials, function: &str) -> Result<Req> {
        self.configuration(key, "kyc-standard", KYC).await?;
        let session = self.session(key, "kyc-standard").await?;
        let path = format!("/access/{}", session.token);
        let (method, path, body) = match function {
            "access-get" => (Method::GET, path, None),
            "access-start" => (Method::POST, format!("{path}/start"), None),
            _ => {
                self.end_user(Method::POST, &format!("{path}/start"), None).await?;
                let path = format!("{path}/workflows/{}", session.workflow);
                (Method::POST, path, Some(json!({ "data": id_document() })))
            }
        };
        Ok(Req {
            method,
            path,
            body,
            key: None,
        })
    }
}

/// A request's method, path (under `/api/v1`, with the query) and body.
type Plan = (Method, String, Option<Value>);

struct SessionIds {
    id: String,
    token: String,
    /// The first session workflow.
    workflow: String,
}

/// The functions whose request changes nothing (a `GET`): one target
/// serves every run.
fn reads_only(function: &str) -> Result<bool> {
    Ok(route(function)?.method == Method::GET)
}

fn route(function: &str) -> Result<Route> {
    routes::all()
        .into_iter()
        .find(|r| r.function == function)
        .ok_or_else(|| format!("no route is served by {function}").into())
}

// The request bodies of the sample events (events/*.json).

fn session_body(configuration: &str) -> Value {
    json!({
        "configurationSlug": configuration,
        "externalUserId": "usr_abc123",
        "participants": [{ "role": "subject", "displayName": "John Smith" }],
        "context": { "applicationType": "retail" },
        "metadata": { "applicationId": "app_001" }
    })
}

fn id_document() -> Value {
    use chrono::Datelike;
    json!({
        "documentType": "passport",
        "documentNumber": "X1234567",
        "fullName": "John Smith",
        "dateOfBirth": "1990-01-01",
        "expiryDate": format!("{}-01-01", Utc::now().year() + 5),
        "issuingCountry": "GB"
    })
}

fn source_of_funds(slug: &str) -> Value {
    json!({
        "name": "Source of funds",
        "slug": slug,
        "steps": [
            { "type": "capture", "config": { "fields": [
                { "name": "source", "type": "select", "options": ["salary", "savings", "investments"], "label": "Main source of funds" },
                { "name": "annualIncome", "type": "number", "label": "Annual income (EUR)" }
            ] } },
            { "type": "validate", "config": { "rules": [
                { "name": "income_positive", "expression": "data.annualIncome > 0", "onFailure": "retry", "message": "Enter your annual income." },
                { "name": "large_income_reviewed", "expression": "data.annualIncome < 1000000", "onFailure": "review", "message": "High declared income." }
            ] } },
            { "type": "output", "config": { "fields": {} } }
        ]
    })
}

fn source_of_funds_update() -> Value {
    json!({
        "name": "Source of funds",
        "steps": [
            { "type": "capture", "config": { "fields": [{ "name": "source", "type": "text", "label": "Main source of funds" }] } },
            { "type": "output", "config": { "fields": {} } }
        ]
    })
}

fn endpoint_body() -> Value {
    json!({
        "url": "https://hooks.yourapp.com/korala",
        "events": ["session_completed", "session_resolved"],
        "description": "Onboarding service"
    })
}

// ---------------------------------------------------------------------------
// Events

/// The API Gateway HTTP API (payload v2) event of `req`, signed now when it
/// has a key: what API Gateway hands the function.
fn api_event(route: &Route, req: &Req, request_id: &str) -> Result<String> {
    let full = format!("{PREFIX}{}", req.path);
    let (path, query) = full.split_once('?').unwrap_or((&full, ""));
    let body = req.body.as_ref().map(Value::to_string);
    let now = Utc::now();
    let mut headers = json!({ "host": "api.example.com", "user-agent": "korala-client/1.0" });
    if body.is_some() {
        headers["content-type"] = json!("application/json");
    }
    if let Some(key) = &req.key {
        let body = body.as_deref().unwrap_or_default().as_bytes();
        let at = crate::signing_time(now.timestamp(), req.method.as_str(), &full, body);
        for (name, value) in Api::signature_headers(key, at, req.method.as_str(), &full, body) {
            headers[name.to_ascii_lowercase()] = json!(value);
        }
    }
    let mut event = functions::codegen::api_gateway_event(route, path, query, headers, request_id, now);
    event["pathParameters"] = path_parameters(&format!("{PREFIX}{}", route.path), path)?;
    if !query.is_empty() {
        let parameters: serde_json::Map<String, Value> = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        event["queryStringParameters"] = Value::Object(parameters);
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    Ok(event.to_string())
}

/// An API Gateway event carrying `event` as its body, for a `lambda_http`
/// baseline standing in for an event function.
fn http_event_of(event: &[u8]) -> Result<Vec<u8>> {
    let route = route("workflows-create")?;
    let req = Req {
        method: Method::POST,
        path: "/workflows".to_owned(),
        body: Some(serde_json::from_slice(event)?),
        key: None,
    };
    Ok(api_event(&route, &req, "baseline")?.into_bytes())
}

/// `{name}` segments of `pattern`, read from `path`.
fn path_parameters(pattern: &str, path: &str) -> Result<Value> {
    let (names, values): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    if names.len() != values.len() {
        return Err(format!("{path} does not match {pattern}").into());
    }
    let parameters: serde_json::Map<String, Value> = names
        .iter()
        .zip(&values)
        .filter_map(|(name, value)| {
            let name = name.strip_prefix('{')?.strip_suffix('}')?;
            Some((name.to_owned(), json!(value)))
        })
        .collect();
    Ok(Value::Object(parameters))
}

// ---------------------------------------------------------------------------
// Moto

impl Moto {
    /// The queues and bus the functions name, on moto when it runs
    /// (`AWS_ENDPOINT_URL_SQS` and `…_EVENTBRIDGE` set).
    async fn provision(prefix: &str) -> Result<Option<Self>> {
        let (Ok(sqs_endpoint), Ok(eventbridge_endpoint)) = (
            std::env::var("AWS_ENDPOINT_URL_SQS"),
            std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE"),
        ) else {
            return Ok(None);
        };
        let (sqs, eventbridge) = functions::adapters::topology::clients().await;
        let provisioned = functions::adapters::topology::provision(&sqs, &eventbridge, prefix).await?;
        Ok(Some(Self {
            sqs_endpoint,
            eventbridge_endpoint,
            bus: provisioned.bus_name,
            deliveries: provisioned.webhook_deliveries.url,
            events: provisioned.webhook_events.url,
            checks: provisioned.checks.url,
        }))
    }
}

// ---------------------------------------------------------------------------
// The report

/// Binary sizes in bytes.
struct Sizes {
    own: HashMap<&'static str, u64>,
    hello: u64,
    raw: u64,
}

impl Sizes {
    fn read(dir: &Path, subjects: &[Subject]) -> Result<Self> {
        let size = |name: &str| -> Result<u64> { Ok(std::fs::metadata(dir.join(name))?.len()) };
        let mut own = HashMap::new();
        for subject in subjects {
            own.insert(subject.name, size(subject.name)?);
        }
        Ok(Self {
            own,
            hello: size(HELLO)?,
            raw: size(RAW_SDK)?,
        })
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

fn millis(ms: f64) -> String {
    if ms.is_nan() {
        "—".to_owned()
    } else {
        format!("{ms:.1}")
    }
}

fn times(ratio: f64) -> String {
    if ratio.is_nan() {
        "—".to_owned()
    } else {
        format!("{ratio:.2}")
    }
}

fn section(bench: &Bench, rows: &[Row], sizes: &Sizes, random: &FirstRandom) -> Section {
    let mut targets = Vec::new();
    let mut table = String::from(
        "| function | binary MB | ×raw-SDK | init ms | ×hello | first response ms | ×raw-SDK (same calls) | raw-SDK first response ms (DynamoDB calls) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let size = sizes.own.get(row.name).copied().unwrap_or_default();
        let size_ratio = size as f64 / sizes.raw as f64;
        let init_ratio = row.own.init() / row.hello.init();
        let (first, raw_first) = (row.own.first_response(), row.raw.first_response());
        let first_ratio = if row.compared { first / raw_first } else { f64::NAN };
        let raw = if row.invoked {
            format!("{} ({})", millis(raw_first), row.calls)
        } else {
            "—".to_owned()
        };
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {} | {raw} |",
            row.name,
            mb(size),
            times(size_ratio),
            millis(row.own.init()),
            times(init_ratio),
            millis(first),
            times(first_ratio),
        );
        targets.push(Target::new(
            format!("{}: init vs hello-world", row.name),
            init_ratio,
            INIT_LIMIT,
        ));
        if row.invoked && row.compared {
            targets.push(Target::new(
                format!("{}: first response vs raw-SDK (same DynamoDB calls)", row.name),
                first_ratio,
                FIRST_RESPONSE_LIMIT,
            ));
        }
        targets.push(Target::new(
            format!("{}: binary vs raw-SDK", row.name),
            size_ratio,
            SIZE_LIMIT,
        ));
    }
    let all = |pick: fn(&Row) -> &Starts, first: bool| {
        let samples: Vec<f64> = rows
            .iter()
            .flat_map(|r| {
                let starts = pick(r);
                if first {
                    starts.first_response_ms.clone()
                } else {
                    starts.init_ms.clone()
                }
            })
            .collect();
        quantile(&samples, 0.5)
    };
    let (hello_init, raw_init) = (all(|r| &r.hello, false), all(|r| &r.raw, false));
    let _ = writeln!(
        table,
        "| *hello-world* (`lambda_http`) | {} | {} | {} | 1.00 | {} | — | — |",
        mb(sizes.hello),
        times(sizes.hello as f64 / sizes.raw as f64),
        millis(hello_init),
        millis(all(|r| &r.hello, true)),
    );
    let _ = writeln!(
        table,
        "| *raw-SDK* (`aws-config` + DynamoDB client) | {} | 1.00 | {} | {} | — | 1.00 | — |",
        mb(sizes.raw),
        millis(raw_init),
        times(raw_init / hello_init),
    );
    let misses = misses(&targets, raw_init / hello_init);
    let random = format!(
        "**First random bytes** (aws-lc, under rustls): {:.2} ms p50 over {} fresh processes \
         (`bench/src/bin/first-random.rs`), built with `AWS_LC_SYS_NO_JITTER_ENTROPY={}` \
         (`.cargo/config.toml`). A cold start's first TLS handshake waits this long; DynamoDB Local \
         is plain HTTP, so the starts above do not include it, while every function on AWS does. \
         Without the setting, aws-lc first gathers CPU-jitter entropy, tens of milliseconds a process \
         (the README has the measurement).\n",
        random.p50_ms, random.processes, random.no_jitter_entropy,
    );
    Section {
        title: "Cold start".to_owned(),
        body: format!(
            "{}\n{table}\n{random}\n{}\n{misses}",
            method(bench, rows),
            notes(bench, rows)
        ),
        targets,
    }
}

fn method(bench: &Bench, rows: &[Row]) -> String {
    let refused: usize = rows.iter().map(|r| r.refused).sum();
    let replays: usize = rows.iter().map(|r| r.raw.first_response_ms.len()).sum();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!(
        "Each function's binary (`{dir}`, {profile}) is started {runs} times as Lambda starts it, against a minimal \
         Lambda Runtime API on 127.0.0.1 (`bench/src/runtime_api.rs`), with DynamoDB Local behind it, on a \
         {cpus}-CPU machine{load}; the figures are medians. **Init** is the time from spawning the process to its first \
         `GET /runtime/invocation/next` (logging and the runtime ready, the environment read and checked; the \
         functions build their SDK clients on the first invocation); **first response** is from spawning it to its `POST /runtime/invocation/{{id}}/response` for its first \
         event (init included). Each process gets the environment Lambda gives (name, 256 MB, version, JSON logs \
         at INFO, region, credentials) plus the table, the master key and DynamoDB Local's endpoint, and is killed \
         once it has answered. An API function's event is an API Gateway HTTP API (v2) event, signed now with a \
         test key, for data seeded for it (its own organisation with the configuration, workflow, session, webhook \
         endpoint or delivery it needs; a new one for each request that changes or uses up its target); every \
         answer's status is checked (see the notes).\n\n\
         Two baselines built with the same profile are started the same way in the same rounds, in an order that \
         rotates each round: **hello-world**, a `lambda_http` function that answers \"hello\" \
         (`bench/src/bin/hello-lambda.rs`), and **raw-SDK**, a `lambda_http` function that loads `aws-config` and \
         builds a DynamoDB client at init and, given the event, sends in order the DynamoDB requests the \
         function's handler sent for the same kind of request (`bench/src/bin/raw-sdk-lambda.rs`). Those requests \
         are recorded by running the request in-process on a fresh application (its own key cache, as a cold \
         process has) whose client records them. The baseline sends them to a mirror of the table (DynamoDB \
         Local's database for another access key id, `mirror`, where every request that seeded the recorded \
         target was replayed), on a target seeded for it that the recording used up in the main table only, so \
         the replay does the same work: in its {replays} replays DynamoDB refused {refused} requests.\n\n\
         Targets: init ≤ {INIT_LIMIT}× hello-world's, first response ≤ {FIRST_RESPONSE_LIMIT}× the raw-SDK \
         baseline's with the same calls, binary ≤ {SIZE_LIMIT}× the raw-SDK binary (MB: 10⁶ bytes). The ratios \
         are of the medians of the same rounds.\n",
        dir = bench.options.bin_dir.display(),
        profile = if bench.options.bin_dir.ends_with("release") {
            "the workspace's release profile: no LTO, one codegen unit, opt-level 3, stripped, abort on panic; \
             the functions without the embedded store, as `cargo lambda build` builds them"
        } else {
            "not a release build: figures for development only"
        },
        runs = bench.options.runs.max(1),
        load = bench
            .load
            .as_ref()
            .map(|l| format!(" (load average {l} as the run began)"))
            .unwrap_or_default(),
    )
}

fn notes(bench: &Bench, rows: &[Row]) -> String {
    let present = |name: &str| rows.iter().any(|r| r.name == name);
    let mut notes = String::from("Notes:\n\n");
    if rows.iter().any(|r| route(r.name).is_ok()) {
        notes.push_str(
            "- Every API function's request succeeds: 200, except the creations (201: `configurations-create`, \
             `workflows-create`, `sessions-create`, `webhook-endpoints-create`), the deletions (204) and \
             `webhook-endpoints-test` and `webhook-deliveries-redeliver` (202: the delivery is queued).\n",
        );
    }
    let queuing: Vec<&str> = ["webhook-endpoints-test", "webhook-deliveries-redeliver"]
        .into_iter()
        .filter(|n| present(n))
        .collect();
    if bench.moto.is_some() && !queuing.is_empty() {
        let _ = writeln!(
            notes,
            "- SQS and EventBridge were moto's. {} also send the delivery to SQS, which the raw-SDK baseline \
             (DynamoDB only) does not.",
            code_list(&queuing)
        );
    }
    if bench.moto.is_some() && present("outbox-publisher") {
        notes.push_str(
            "- `outbox-publisher`'s work is one EventBridge `PutEvents` (to moto) and no DynamoDB request: its \
             first response is shown but held to no baseline.\n",
        );
    }
    let not_invoked: Vec<&str> = rows.iter().filter(|r| !r.invoked).map(|r| r.name).collect();
    if !not_invoked.is_empty() {
        let _ = writeln!(
            notes,
            "- Without moto (`eval \"$(scripts/moto start)\"`), {} {} only started (init): a first request \
             sends to SQS or EventBridge.",
            code_list(&not_invoked),
            if not_invoked.len() == 1 { "was" } else { "were" }
        );
    }
    if present("expiry-sweeper") {
        let _ = writeln!(
            notes,
            "- `expiry-sweeper` gets its sample (scheduled) event and expires a session seeded overdue for it: \
             {} due-index queries in parallel, a read of the session and its expiry. The raw-SDK baseline sends \
             the same requests one after the other.",
            functions::adapters::store::dynamodb::keys::DUE_SHARDS
        );
    }
    let consumers: Vec<&str> = ["checks-worker", "webhook-fanout", "webhook-dispatcher"]
        .into_iter()
        .filter(|n| present(n))
        .collect();
    if !consumers.is_empty() {
        let _ = writeln!(
            notes,
            "- {} {} the sample SQS messages (`events/*.json`), about a session, organisation or delivery the \
             table does not have: the function reads, finds nothing and acknowledges the message (no failure in \
             its answer), so its first response is the start and that read. Queue URLs are named, as they must \
             be to start, and never called.",
            code_list(&consumers),
            if consumers.len() == 1 { "gets" } else { "get" }
        );
    }
    notes.push_str(
        "- The raw-SDK baseline's first response depends on the requests it replays: it is in the last column, \
         with their number.\n",
    );
    notes
}

/// Why the targets this run missed are missed, and what would meet them:
/// the causes found by tracing the binaries' start (strace) and reading
/// what they link.
fn misses(targets: &[Target], raw_sdk_init_ratio: f64) -> String {
    // The functions that missed a kind of target, by name.
    let missed = |kind: &str| -> Vec<&str> {
        targets
            .iter()
            .filter(|t| !t.met())
            .filter_map(|t| t.what.strip_suffix(kind)?.strip_suffix(": "))
            .collect()
    };
    let (init, size, first) = (
        missed("init vs hello-world"),
        missed("binary vs raw-SDK"),
        missed("first response vs raw-SDK (same DynamoDB calls)"),
    );
    let mut out = String::new();
    if init.is_empty() && size.is_empty() && first.is_empty() {
        return out;
    }
    out.push_str("Where targets are missed, and what would meet them:\n\n");
    if !init.is_empty() {
        let _ = writeln!(
            out,
            "- **Init** over {INIT_LIMIT}× hello-world ({}): the functions build their clients on the first \
             invocation (`functions::runtime::lambda::LazyApp`), so init loads neither `aws-config` nor the root \
             certificates (the raw-SDK baseline, which does, is {raw_sdk_init_ratio:.1}× hello-world). What \
             remains over hello-world grows with the binary: the loader maps it and applies its relocations \
             (every pointer in `.data.rel.ro`), and the code init runs (the runtime, telemetry, reading the \
             environment) faults in more pages of a larger file. Smaller binaries shrink all three; a non-PIE \
             executable would need no relocation, but gives up address-space randomisation for the \
             executable, which we keep.",
            code_list(&init)
        );
    }
    if !size.is_empty() {
        let _ = writeln!(
            out,
            "- **Binary size** over {SIZE_LIMIT}× raw-SDK ({}): each endpoint links only its own handler \
             (`functions::serve_route!`), no embedded store (built without the `embedded` feature) and no SQS \
             client unless it queues. The functions that evaluate workflow rules link CEL, with its ANTLR \
             parser and regex engine, on top; parsing rules where they are written and storing the parsed \
             program (which needs a serialisable AST that `cel` does not offer), or evaluating them in one \
             function the others call, would take it out of them.",
            code_list(&size)
        );
    }
    if !first.is_empty() {
        let _ = writeln!(
            out,
            "- **First response** over {FIRST_RESPONSE_LIMIT}× raw-SDK ({}): the functions that also queue to \
             SQS (`webhook-endpoints-test`, `webhook-deliveries-redeliver`) build an SQS client and send, which \
             the DynamoDB-only baseline does not; the dispatcher's first invocation builds its webhook HTTPS \
             client, loading the root certificates, which the baseline never does. Elsewhere a few \
             milliseconds over a 20–40 ms start are within the run's noise.",
            code_list(&first)
        );
    }
    out
}

fn code_list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use lambda_http::RequestExt;

    use functions::web::auth::{sign, signing_payload};

    use super::*;

    #[test]
    fn the_misses_name_the_functions_that_missed() {
        let targets = vec![
            Target::new("sessions-get: init vs hello-world", 1.4, INIT_LIMIT),
            Target::new("access-submit: init vs hello-world", 2.1, INIT_LIMIT),
            Target::new("access-submit: binary vs raw-SDK", 1.7, SIZE_LIMIT),
            Target::new("sessions-get: binary vs raw-SDK", 1.2, SIZE_LIMIT),
            Target::new(
                "webhook-dispatcher: first response vs raw-SDK (same DynamoDB calls)",
                1.4,
                FIRST_RESPONSE_LIMIT,
            ),
        ];
        let text = misses(&targets, 4.0);
        let line = |start: &str| {
            text.lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_default()
                .to_owned()
        };
        assert!(line("- **Init**").contains("(`access-submit`)"), "{text}");
        assert!(line("- **Binary size**").contains("(`access-submit`)"), "{text}");
        assert!(
            line("- **First response**").contains("(`webhook-dispatcher`)"),
            "{text}"
        );
        assert_eq!(misses(&targets[3..4], 4.0), "", "nothing missed, nothing said");
    }

    fn key() -> Credentials {
        Credentials {
            org_id: korala_domain::ids::OrgId::parse("org_0192f0a1b2c37d4e8f90a1b2c3d4e5f6").unwrap(),
            api_key_id: "ak_test_0123456789abcdef01234567".to_owned(),
            api_secret: "sk_test_secret".to_owned(),
        }
    }

    #[test]
    fn an_api_event_reads_as_api_gateway_hands_it() {
        let route = route("webhook-deliveries-list").unwrap();
        let req = Req {
            method: Method::GET,
            path: "/webhook-endpoints/whe_0195f2c4a3b27c1e9d3a7b5c6d7e8f92/deliveries?limit=10".to_owned(),
            body: None,
            key: Some(key()),
        };
        let event = api_event(&route, &req, "req-1").unwrap();
        let request = lambda_http::request::from_str(&event).unwrap();
        assert_eq!(request.method(), Method::GET);
        assert_eq!(
            request.uri().path_and_query().unwrap().as_str(),
            format!("{PREFIX}{}", req.path)
        );
        assert_eq!(
            request.path_parameters().first("id"),
            Some("whe_0195f2c4a3b27c1e9d3a7b5c6d7e8f92")
        );
        let timestamp = request.headers()["x-timestamp"].to_str().unwrap();
        let payload = signing_payload(timestamp, "GET", &format!("{PREFIX}{}", req.path), b"");
        assert_eq!(
            request.headers()["x-signature"].to_str().unwrap(),
            sign("sk_test_secret", &payload).unwrap()
        );
    }

    #[test]
    fn an_event_with_a_body_says_it_is_json() {
        let route = route("access-submit").unwrap();
        let req = Req {
            method: Method::POST,
            path: "/access/at_token/workflows/swf_1".to_owned(),
            body: Some(json!({ "data": { "a": 1 } })),
            key: None,
        };
        let request = lambda_http::request::from_str(&api_event(&route, &req, "req-2").unwrap()).unwrap();
        assert_eq!(request.headers()["content-type"], "application/json");
        assert_eq!(request.body().as_ref(), br#"{"data":{"a":1}}"#);
        assert!(!request.headers().contains_key("x-signature"));
        assert_eq!(request.path_parameters().first("accessToken"), Some("at_token"));
        assert_eq!(request.path_parameters().first("sessionWorkflowId"), Some("swf_1"));
    }

    #[test]
    fn answers_are_checked() {
        assert!(
            Check::Status(201)
                .verify("f", br#"{"statusCode":201,"body":""}"#)
                .is_ok()
        );
        assert!(Check::Status(201).verify("f", br#"{"statusCode":409}"#).is_err());
        assert!(
            Check::NoBatchFailures
                .verify("f", br#"{"batchItemFailures":[]}"#)
                .is_ok()
        );
        assert!(
            Check::NoBatchFailures
                .verify("f", br#"{"batchItemFailures":[{"itemIdentifier":"1"}]}"#)
                .is_err()
        );
        assert!(Check::Expired.verify("f", br#"{"due":1,"expired":1}"#).is_ok());
        assert!(Check::Expired.verify("f", br#"{"due":0,"expired":0}"#).is_err());
        assert_eq!(
            raw_sdk_refused(br#"{"statusCode":200,"body":"{\"calls\":3,\"refused\":1}"}"#).unwrap(),
            1
        );
    }

    /// The whole benchmark on the binaries in `KORALA_COLD_START_BIN_DIR`
    /// (default `target/debug`), once, on DynamoDB Local (and moto if its
    /// variables are set); `KORALA_COLD_START_ONLY` picks functions
    /// (comma-separated). Prints the section.
    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "needs DynamoDB Local and built binaries"]
    async fn cold_start_once() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let bin_dir = std::env::var("KORALA_COLD_START_BIN_DIR").unwrap_or_else(|_| format!("{root}/target/debug"));
        let options = ColdStartOptions {
            bin_dir: PathBuf::from(bin_dir),
            runs: std::env::var("KORALA_COLD_START_RUNS")
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(1),
            log_dir: Some(PathBuf::from(format!("{root}/target/cold-start-logs"))),
            only: std::env::var("KORALA_COLD_START_ONLY")
                .map(|o| o.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            ..ColdStartOptions::default()
        };
        let section = run(&options).await.unwrap_or_else(|e| panic!("{e}"));
        println!("## {}\n\n{}", section.title, section.body);
        for target in &section.targets {
            println!(
                "{} {}: {:.2} (≤ {})",
                if target.met() { "met" } else { "MISSED" },
                target.what,
                target.measured,
                target.limit
            );
        }
    }
}
