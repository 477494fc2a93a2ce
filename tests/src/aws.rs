//! The emulated AWS path for the tests: DynamoDB Local's stream read as the
//! event source mapping reads it, EventBridge and SQS on moto (started by
//! `scripts/test`, see `scripts/moto`).

use std::sync::Arc;

use functions::adapters::providers::Providers;
use functions::app::App;
use functions::runtime::relay::Relay;

use crate::dynamodb::Table;

/// A relay over the table's stream, with a bus, rule and queues of its own
/// on moto, named after the table (unique per test), its checks worker
/// running `providers`.
pub async fn relay(app: &mut App, table: &Arc<Table>, providers: Arc<Providers>) -> Relay {
    if std::env::var_os("AWS_ENDPOINT_URL_SQS").is_none() {
        panic!(
            "AWS_ENDPOINT_URL_SQS is not set: the emulated AWS path needs moto. Run scripts/test, which starts it \
             (or `eval \"$(scripts/moto start)\"` first)."
        );
    }
    Relay::emulated_aws(app, &table.name, &table.name, providers)
        .await
        .unwrap_or_else(|e| panic!("the emulated AWS relay: {e}"))
}
