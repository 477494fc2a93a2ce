//! A DynamoDB Local table of its own for one test.
//!
//! DynamoDB Local must be running and `AWS_ENDPOINT_URL_DYNAMODB` point at
//! it: `scripts/test` starts it around `cargo test`. A test that needs it
//! asks [`Table::here`] or `require!(DynamoDbLocal)` first (the policy for a
//! missing engine: [`engines`](crate::engines)); [`Table::new`] itself is for
//! runs that asked for DynamoDB (`KORALA_TEST_STORE=dynamodb`), where its
//! absence is a mistake.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use functions::adapters::store::AppStore;
use functions::adapters::store::dynamodb::{DynamoStore, create_table, delete_table};

use crate::engines::Engine;

/// A table of its own for one test, deleted when the test ends.
pub struct Table {
    pub name: String,
    pub store: DynamoStore,
}

impl Table {
    /// A table, when DynamoDB Local is here ([`Engine::here`]).
    pub async fn here() -> Option<Self> {
        if Engine::DynamoDbLocal.here() {
            Some(Self::new().await)
        } else {
            None
        }
    }

    pub async fn new() -> Self {
        if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_none() {
            panic!(
                "AWS_ENDPOINT_URL_DYNAMODB is not set: these tests need DynamoDB Local. Run scripts/test, which \
                 starts DynamoDB Local (or `eval \"$(scripts/dynamodb-local start)\"` first)."
            );
        }
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!(
            "korala-test-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let store = DynamoStore::connect(&name).await;
        create_table(store.client(), &name)
            .await
            .unwrap_or_else(|e| panic!("creating table {name} on DynamoDB Local: {e}"));
        Self { name, store }
    }
}

impl crate::conformance::Fixture for Table {
    fn store(&self) -> Arc<dyn AppStore> {
        Arc::new(self.store.clone())
    }
}

impl Drop for Table {
    /// Keeps DynamoDB Local's memory flat over the run. The table is deleted
    /// on a thread and runtime of its own, with a client of its own: the
    /// test's runtime may be the one shutting down (a task still holding the
    /// table is dropped during its shutdown), and a request blocked on a
    /// runtime in shutdown never completes, which hung a test run.
    fn drop(&mut self) {
        let name = self.name.clone();
        let deleting = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async {
                let store = DynamoStore::connect(&name).await;
                let _ = tokio::time::timeout(Duration::from_secs(10), delete_table(store.client(), &name)).await;
            });
        });
        let _ = deleting.join();
    }
}
