//! The application: the ports wired to their adapters, built once per process
//! (per Lambda execution environment) and shared by every request.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use korala_domain::ids::IdGenerator;
use korala_domain::limits::{Rate, WEBHOOK_SENDS};
use korala_domain::ports::{Clock, DocumentStorage, Queue};
use korala_domain::webhooks::UrlPolicy;

use crate::adapters::aws::Aws;
use crate::adapters::crypto::Sealer;
use crate::adapters::documents::local::LocalFiles;
use crate::adapters::secrets::{MASTER_KEY_ENV, MASTER_KEY_SECRET_ENV};
use crate::adapters::store::AppStore;
use crate::adapters::store::dynamodb::DynamoStore;
#[cfg(feature = "embedded")]
use crate::adapters::store::sqlite::SqliteStore;
use crate::adapters::system::{SystemClock, UuidV7Ids};
use crate::web::admission::Refusals;
use crate::web::auth::KeyCache;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// How far a signed request's timestamp may be from our clock.
    pub signature_tolerance: Duration,
    /// Which webhook URLs partners may register: production demands public
    /// `https` hosts; development also allows this machine
    /// (`KORALA_WEBHOOK_URLS=development`, the local server's default).
    pub webhook_urls: UrlPolicy,
    /// An organisation's partner calls, unless it has a rate of its own
    /// (`KORALA_PARTNER_RATE`, `{per second}/{burst}`).
    pub partner_rate: Rate,
    /// One access token's calls (`KORALA_ACCESS_RATE`).
    pub access_rate: Rate,
    /// An organisation's test events and redeliveries, each a request to a
    /// URL it chose (`KORALA_SEND_RATE`).
    pub send_rate: Rate,
}

/// `{per second}/{burst}`, as the rate variables are written.
pub fn parse_rate(text: &str) -> Option<Rate> {
    let (per_second, burst) = text.split_once('/')?;
    Rate::new(per_second.trim().parse().ok()?, burst.trim().parse().ok()?).ok()
}

fn rate_env(name: &str, default: Rate) -> Rate {
    match std::env::var(name) {
        Ok(text) => parse_rate(&text).unwrap_or_else(|| {
            tracing::warn!(variable = name, "not a rate (per second/burst); using the default");
            default
        }),
        Err(_) => default,
    }
}

impl Settings {
    /// The settings the environment gives, over the defaults.
    pub fn from_env(default_urls: UrlPolicy) -> Self {
        let webhook_urls = match std::env::var("KORALA_WEBHOOK_URLS").as_deref() {
            Ok("development") => UrlPolicy::Development,
            Ok("production") => UrlPolicy::Production,
            _ => default_urls,
        };
        Self {
            webhook_urls,
            partner_rate: rate_env("KORALA_PARTNER_RATE", Rate::PARTNER),
            access_rate: rate_env("KORALA_ACCESS_RATE", Rate::ACCESS_TOKEN),
            send_rate: rate_env("KORALA_SEND_RATE", WEBHOOK_SENDS),
            ..Self::default()
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            signature_tolerance: Duration::from_secs(300),
            webhook_urls: UrlPolicy::Production,
            partner_rate: Rate::PARTNER,
            access_rate: Rate::ACCESS_TOKEN,
            send_rate: WEBHOOK_SENDS,
        }
    }
}

#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn AppStore>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub sealer: Arc<Sealer>,
    pub settings: Arc<Settings>,
    pub keys: Arc<KeyCache>,
    /// Rate-limit refusals this process still remembers.
    pub refusals: Arc<Refusals>,
    /// Where redeliveries and test events are queued for the dispatcher;
    /// only the functions that queue them have one.
    pub deliveries: Option<Arc<dyn Queue>>,
    /// Where end users' files are kept: S3 when `DOCUMENTS_BUCKET` names a
    /// bucket, else files beside the embedded store.
    pub documents: Option<Arc<dyn DocumentStorage>>,
    /// The same files when they are on this machine: the local server
    /// answers their URLs itself.
    pub local_files: Option<Arc<LocalFiles>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(
        "neither KORALA_MASTER_KEY_SECRET (the Secrets Manager secret that holds the master key) nor \
         KORALA_MASTER_KEY is set: the deployment must supply the key that seals secrets at rest"
    )]
    MissingMasterKey,
    #[error("both KORALA_MASTER_KEY and KORALA_MASTER_KEY_SECRET are set: give the master key one way")]
    TwoMasterKeys,
    #[error("the master key: {0}")]
    Secret(#[from] crate::adapters::secrets::SecretError),
    #[error(transparent)]
    Crypto(#[from] crate::adapters::crypto::CryptoError),
    #[error("cannot open the store: {0}")]
    Store(#[from] korala_domain::ports::StoreError),
    #[error("{0} is not set: the deployment must name the resource this function uses")]
    MissingVariable(&'static str),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(
        "SESSIONS_TABLE is not set, and this build has no embedded store (the `embedded` feature of `functions`): \
         a deployed function must name its table"
    )]
    NoEmbeddedStore,
}

/// The SQS queue of webhook deliveries (the dispatcher's).
pub const DELIVERIES_QUEUE_ENV: &str = "WEBHOOK_DELIVERIES_QUEUE_URL";
/// The SQS queue the EventBridge rule fills with webhook events (the fan-out's).
pub const EVENTS_QUEUE_ENV: &str = "WEBHOOK_EVENTS_QUEUE_URL";
/// The SQS queue the EventBridge rule fills with check requests (the checks worker's).
pub const CHECKS_QUEUE_ENV: &str = "CHECKS_QUEUE_URL";
/// The EventBridge bus the outbox publisher puts events on.
pub const EVENT_BUS_ENV: &str = "EVENT_BUS_NAME";

/// A variable the function cannot run without.
pub fn required_env(name: &'static str) -> Result<String, StartupError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(StartupError::MissingVariable(name))
}

/// Where the embedded store lives unless `SESSIONS_DB_PATH` says otherwise.
pub const DEFAULT_DB_PATH: &str = ".data/sessions.db";

impl App {
    pub fn new(store: Arc<dyn AppStore>, sealer: Sealer) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
            sealer: Arc::new(sealer),
            settings: Arc::new(Settings::default()),
            keys: Arc::new(KeyCache::default()),
            refusals: Arc::new(Refusals::default()),
            deliveries: None,
            documents: None,
            local_files: None,
        }
    }

    /// Keeps documents in `files`, on this machine.
    pub fn with_local_files(mut self, files: LocalFiles) -> Self {
        let files = Arc::new(files);
        self.documents = Some(files.clone());
        self.local_files = Some(files);
        self
    }

    /// The document storage, which the deployment gives every function
    /// whose route handles documents.
    pub fn documents(&self) -> Result<&dyn DocumentStorage, crate::web::ApiError> {
        self.documents.as_deref().ok_or_else(|| {
            crate::web::ApiError::Internal(format!(
                "no document storage: {} is not set",
                crate::adapters::documents::BUCKET_ENV
            ))
        })
    }
}

/// What a deployed function takes from its environment, read and checked
/// on its own so that a Lambda function can do it at init (a missing key or
/// variable fails the init, before any request) and leave building the
/// clients, which loads the AWS configuration and the TLS roots, to its
/// first invocation ([`connect`](Self::connect)).
///
/// Everything comes from the environment, nothing is generated. A deployed
/// function is given the master key as the Secrets Manager secret that
/// holds it (`KORALA_MASTER_KEY_SECRET`), read on its first invocation, so
/// the key is never in its configuration; `KORALA_MASTER_KEY` gives the key
/// itself (tests, benchmarks). Without `SESSIONS_TABLE` the function runs on
/// the embedded store (`cargo lambda watch`), and then shares the local
/// server's key file when neither is set, so the local server's credentials
/// work on both.
pub struct Environment {
    master_key: MasterKey,
    settings: Arc<Settings>,
    deliveries_queue: Option<String>,
}

/// Where a function's master key comes from.
enum MasterKey {
    Given(Arc<Sealer>),
    /// The Secrets Manager secret (ARN or name) that holds it.
    Stored(String),
}

impl Environment {
    pub fn read() -> Result<Self, StartupError> {
        if table_name().is_none() && !cfg!(feature = "embedded") {
            return Err(StartupError::NoEmbeddedStore);
        }
        let given = std::env::var(MASTER_KEY_ENV).ok().filter(|k| !k.is_empty());
        let stored = std::env::var(MASTER_KEY_SECRET_ENV).ok().filter(|k| !k.is_empty());
        let master_key = match (given, stored) {
            (Some(_), Some(_)) => return Err(StartupError::TwoMasterKeys),
            (Some(key), None) => MasterKey::Given(Arc::new(Sealer::from_base64(&key)?)),
            (None, Some(secret)) => MasterKey::Stored(secret),
            (None, None) if table_name().is_none() => MasterKey::Given(Arc::new(local_sealer()?)),
            (None, None) => return Err(StartupError::MissingMasterKey),
        };
        Ok(Self {
            master_key,
            settings: Arc::new(Settings::from_env(UrlPolicy::Production)),
            deliveries_queue: required_env(DELIVERIES_QUEUE_ENV).ok(),
        })
    }

    /// The sealer, its key read from Secrets Manager if that is where it
    /// is (once: the application this builds lives as long as the
    /// execution environment).
    async fn sealer(&self, aws: &Aws) -> Result<Arc<Sealer>, StartupError> {
        match &self.master_key {
            MasterKey::Given(sealer) => Ok(sealer.clone()),
            MasterKey::Stored(secret) => Ok(Arc::new(stored_sealer(aws, secret).await?)),
        }
    }

    /// Fails unless the deployment gives this function the deliveries queue.
    pub fn require_deliveries_queue(&self) -> Result<(), StartupError> {
        match self.deliveries_queue {
            Some(_) => Ok(()),
            None => Err(StartupError::MissingVariable(DELIVERIES_QUEUE_ENV)),
        }
    }

    /// The application on the store the environment names, its clients built
    /// from `aws`, without the deliveries queue.
    pub async fn connect(&self, aws: &Aws) -> Result<App, StartupError> {
        let sealer = self.sealer(aws).await?;
        let app = App {
            store: open_store_with(aws).await?,
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
            sealer: sealer.clone(),
            settings: self.settings.clone(),
            keys: Arc::new(KeyCache::default()),
            refusals: Arc::new(Refusals::default()),
            deliveries: None,
            documents: None,
            local_files: None,
        };
        Ok(with_documents(app, aws).await)
    }

    /// [`connect`](Self::connect), with the deliveries queue on SQS. Only
    /// the functions that queue deliveries call it, so the others link no
    /// SQS client.
    pub async fn connect_with_deliveries(&self, aws: &Aws) -> Result<App, StartupError> {
        let mut app = self.connect(aws).await?;
        if let Some(url) = &self.deliveries_queue {
            app.deliveries = Some(Arc::new(crate::adapters::queue::sqs::SqsQueue::new(
                aws.sqs().await,
                url.clone(),
            )));
        }
        Ok(app)
    }
}

/// Documents in the bucket `DOCUMENTS_BUCKET` names, or, without it, on
/// the embedded path, beside the database (served by the local server at
/// `KORALA_PUBLIC_URL`, by default its own address).
pub async fn with_documents(mut app: App, aws: &Aws) -> App {
    use crate::adapters::documents::{BUCKET_ENV, s3::S3Documents};
    if let Some(bucket) = std::env::var(BUCKET_ENV).ok().filter(|b| !b.is_empty()) {
        let client = S3Documents::client(aws.config().await);
        app.documents = Some(Arc::new(S3Documents::new(client, bucket)));
        return app;
    }
    if table_name().is_some() && !cfg!(feature = "embedded") {
        return app;
    }
    let origin = public_url().unwrap_or_else(|| "http://127.0.0.1:3000".to_owned());
    let files = LocalFiles::beside(&db_path(), app.sealer.clone(), origin);
    app.with_local_files(files)
}

/// Where people reach this service (`KORALA_PUBLIC_URL`), when it is set.
pub fn public_url() -> Option<String> {
    std::env::var("KORALA_PUBLIC_URL")
        .ok()
        .map(|u| u.trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty())
}

/// The sealer whose master key the Secrets Manager secret `secret` holds.
pub async fn stored_sealer(aws: &Aws, secret: &str) -> Result<Sealer, StartupError> {
    let key = crate::adapters::secrets::fetch(aws, secret).await?;
    Ok(Sealer::from_base64(&key)?)
}

pub fn db_path() -> PathBuf {
    std::env::var_os("SESSIONS_DB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB_PATH))
}

/// The table that `SESSIONS_TABLE` names, when set.
pub fn table_name() -> Option<String> {
    std::env::var("SESSIONS_TABLE").ok().filter(|t| !t.is_empty())
}

/// DynamoDB when `SESSIONS_TABLE` names a table (endpoints and credentials
/// from the standard AWS variables), otherwise the embedded store at
/// `SESSIONS_DB_PATH` (an error in a build without it).
pub async fn open_store() -> Result<Arc<dyn AppStore>, StartupError> {
    open_store_with(&Aws::default()).await
}

/// [`open_store`], a DynamoDB client built from `aws`.
pub async fn open_store_with(aws: &Aws) -> Result<Arc<dyn AppStore>, StartupError> {
    Ok(match table_name() {
        Some(table) => Arc::new(DynamoStore::from_config(aws.config().await, &table)),
        #[cfg(feature = "embedded")]
        None => Arc::new(SqliteStore::open(&db_path())?),
        #[cfg(not(feature = "embedded"))]
        None => return Err(StartupError::NoEmbeddedStore),
    })
}

/// For local runs: the master key from `KORALA_MASTER_KEY`, or one kept in
/// `master.key` beside the database, created on first use. A build without
/// the embedded store has no database for it to sit beside: there it is the
/// same error as opening the store, before any key file is written.
#[cfg(not(feature = "embedded"))]
pub fn local_sealer() -> Result<Sealer, StartupError> {
    Err(StartupError::NoEmbeddedStore)
}

/// For local runs: the master key from `KORALA_MASTER_KEY`, or one kept in
/// `master.key` beside the database, created on first use.
#[cfg(feature = "embedded")]
pub fn local_sealer() -> Result<Sealer, StartupError> {
    if let Ok(key) = std::env::var(MASTER_KEY_ENV) {
        return Ok(Sealer::from_base64(&key)?);
    }
    let path = db_path().with_file_name("master.key");
    let key = match std::fs::read_to_string(&path) {
        Ok(key) => {
            // Written readable by every user before the local files were private.
            crate::runtime::private::restrict(&path)?;
            key
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::runtime::private::create_dir_all(dir)?;
            }
            let key = Sealer::generate_key();
            write_private(&path, &key)?;
            key
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Sealer::from_base64(&key)?)
}

/// Writes a file only its owner can read.
pub fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(contents.as_bytes())
}
