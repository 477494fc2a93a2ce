//! Operators' command, on the store `SESSIONS_TABLE` (DynamoDB) or
//! `SESSIONS_DB_PATH` (the embedded store) names, sealing secrets with the
//! master key the Secrets Manager secret `KORALA_MASTER_KEY_SECRET` holds (a
//! deployment's, read with the operator's credentials, so it never passes
//! through their shell), or `KORALA_MASTER_KEY`, or the local master key
//! beside the database:
//! organisations, their keys (create, list, rotate, revoke), their rate and
//! the check vendors they may use.

use clap::{Parser, Subcommand, ValueEnum};
use functions::adapters::secrets::MASTER_KEY_SECRET_ENV;
use functions::admin;
use functions::app::{App, local_sealer, open_store, stored_sealer};
use korala_domain::limits::Rate;
use korala_domain::tenancy::Mode as KeyMode;

#[derive(Parser)]
#[command(about = "Mint organisations and API keys for the sessions API")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Test,
    Live,
}

impl From<Mode> for KeyMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Test => KeyMode::Test,
            Mode::Live => KeyMode::Live,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create an organisation and its first API key; prints the credentials as JSON.
    CreateOrg {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "test")]
        mode: Mode,
    },
    /// Add an API key to an existing organisation (at most two active per
    /// mode); prints the credentials as JSON.
    CreateKey {
        /// The organisation, or one of its key ids.
        #[arg(long)]
        org: String,
        #[arg(long, value_enum, default_value = "test")]
        mode: Mode,
    },
    /// List an organisation's keys (never their secrets) as JSON.
    ListKeys {
        /// The organisation, or one of its key ids.
        #[arg(long)]
        org: String,
    },
    /// Issue a second key beside this one (same organisation and mode); the
    /// old key works until it is revoked. Prints the new credentials.
    RotateKey {
        #[arg(long)]
        key: String,
    },
    /// Revoke a key: every instance refuses it within a minute.
    RevokeKey {
        #[arg(long)]
        key: String,
    },
    /// Give an organisation a request rate of its own (or, with
    /// --default, the deployment's again).
    SetRate {
        /// The organisation, or one of its key ids.
        #[arg(long)]
        org: String,
        #[arg(long, requires = "burst", conflicts_with = "default")]
        per_second: Option<u32>,
        #[arg(long, requires = "per_second")]
        burst: Option<u32>,
        #[arg(long)]
        default: bool,
    },
    /// Let an organisation's checks use an HTTP vendor this deployment
    /// configures (KORALA_CHECK_PROVIDERS), or no longer (--disable).
    EnableProvider {
        /// The organisation, or one of its key ids.
        #[arg(long)]
        org: String,
        #[arg(long)]
        provider: String,
        #[arg(long)]
        disable: bool,
    },
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let sealer = match std::env::var(MASTER_KEY_SECRET_ENV).ok().filter(|s| !s.is_empty()) {
        Some(secret) => stored_sealer(&functions::adapters::aws::Aws::default(), &secret).await?,
        None => local_sealer()?,
    };
    let app = App::new(open_store().await?, sealer);
    let printed = match cli.command {
        Command::CreateOrg { name, mode } => {
            let org = admin::create_organization(&app, &name).await?;
            json(&admin::create_key(&app, &org.id, mode.into()).await?)?
        }
        Command::CreateKey { org, mode } => {
            let org = admin::organization_of(&app, &org).await?;
            json(&admin::create_key(&app, &org.id, mode.into()).await?)?
        }
        Command::ListKeys { org } => {
            let org = admin::organization_of(&app, &org).await?;
            json(&admin::list_keys(&app, &org.id).await?)?
        }
        Command::RotateKey { key } => json(&admin::rotate_key(&app, &key).await?)?,
        Command::RevokeKey { key } => json(&admin::revoke_key(&app, &key).await?)?,
        Command::SetRate {
            org,
            per_second,
            burst,
            default,
        } => {
            let org = admin::organization_of(&app, &org).await?;
            let rate = match (per_second, burst, default) {
                (Some(per_second), Some(burst), false) => Some(Rate::new(per_second, burst)?),
                (None, None, true) => None,
                _ => return Err("give --per-second and --burst, or --default".into()),
            };
            json(&admin::set_rate(&app, &org.id, rate).await?)?
        }
        Command::EnableProvider { org, provider, disable } => {
            let configured = functions::adapters::providers::vendor::names(&|var| std::env::var(var).ok())?;
            if !disable && !configured.contains(&provider) {
                return Err(admin::AdminError::UnknownProvider(provider).into());
            }
            let org = admin::organization_of(&app, &org).await?;
            json(&admin::enable_provider(&app, &org.id, &provider, !disable).await?)?
        }
    };
    println!("{printed}");
    Ok(())
}

fn json(value: &impl serde::Serialize) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(value)
}
