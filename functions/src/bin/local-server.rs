//! The whole API on this machine, over the embedded store: no AWS account,
//! no Java. `LISTEN_ADDR` (default 127.0.0.1:3000), `SESSIONS_DB_PATH`
//! (default .data/sessions.db), or DynamoDB when `SESSIONS_TABLE` is set;
//! `DEV_API_KEY_ID` + `DEV_API_SECRET` seed a key; `KORALA_EVENTS=off`
//! serves the API without relaying events; `LISTEN_MAX_CONNECTIONS` and
//! `LISTEN_HEADER_TIMEOUT_SECONDS` bound the connections.

use std::net::SocketAddr;
use std::time::Duration;

use functions::runtime::listener::Limits;
use functions::runtime::local;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    functions::runtime::telemetry::init();
    let addr: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()?;
    let limits = Limits::from_env(&|name| std::env::var(name).ok())?;
    let (app, relay) = local::application().await?;
    let credentials = local::dev_credentials(&app).await?;
    // Before serving: the check runs the engine, which takes descriptors.
    let ocr = local::ocr_status().await;
    let (bound, server) = local::spawn_with(app.clone(), addr, limits).await?;
    local::spawn_expiry_ticker(app, Duration::from_secs(15));
    match relay {
        Some(relay) if local::relays_events() => {
            relay.spawn(Duration::from_millis(200));
            println!("Relaying session events to webhook endpoints");
        }
        _ => println!("Not relaying events: they wait in the outbox"),
    }
    println!("Sessions API listening on http://{bound}/api/v1");
    println!("{ocr}");
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
