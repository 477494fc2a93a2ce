//! The whole API on this machine, over the embedded store: no AWS account,
//! no Java. `LISTEN_ADDR` (default 127.0.0.1:3000), `SESSIONS_DB_PATH`
//! (default .data/sessions.db), or DynamoDB when `SESSIONS_TABLE` is set;
//! `DEV_API_KEY_ID` + `DEV_API_SECRET` seed a key.

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use functions::app::{App, Settings, local_sealer, open_store};
use functions::local;
use korala_domain::webhooks::UrlPolicy;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    functions::telemetry::init();
    let addr: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()?;
    local::ensure_table().await?;
    let mut app = App::new(open_store().await?, local_sealer()?);
    app.settings = Arc::new(Settings::from_env(UrlPolicy::Development));
    let credentials = local::dev_credentials(&app).await?;
    let (bound, server) = local::spawn(app.clone(), addr).await?;
    local::spawn_expiry_ticker(app, Duration::from_secs(15));
    println!("Sessions API listening on http://{bound}/api/v1");
    println!("  organisation  {}", credentials.org_id);
    println!("  API key id    {}", credentials.api_key_id);
    println!("  API secret    {}", credentials.api_secret);
    println!("Sign requests with scripts/korala-curl (see README):");
    println!(
        "  export KORALA_URL=http://{bound} KORALA_API_KEY_ID={} KORALA_API_SECRET={}",
        credentials.api_key_id, credentials.api_secret
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => println!("stopping"),
        _ = server => {}
    }
    Ok(())
}
