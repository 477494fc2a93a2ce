//! Operators' command: mint organisations and API keys in the store that
//! `SESSIONS_DB_PATH` names, sealing secrets with `KORALA_MASTER_KEY` (or the
//! local master key beside the database).

use clap::{Parser, Subcommand, ValueEnum};
use functions::admin;
use functions::app::{App, local_sealer, open_store};
use korala_domain::ids::OrgId;
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
    /// Add an API key to an existing organisation; prints the credentials as JSON.
    CreateKey {
        #[arg(long)]
        org: String,
        #[arg(long, value_enum, default_value = "test")]
        mode: Mode,
    },
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let app = App::new(open_store().await?, local_sealer()?);
    let credentials = match cli.command {
        Command::CreateOrg { name, mode } => {
            let org = admin::create_organization(&app, &name).await?;
            admin::create_key(&app, &org.id, mode.into()).await?
        }
        Command::CreateKey { org, mode } => {
            let org = OrgId::parse(&org).ok_or("--org must be an organisation id (org_…)")?;
            admin::create_key(&app, &org, mode.into()).await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&credentials)?);
    Ok(())
}
