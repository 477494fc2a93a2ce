//! The store conformance suite against the embedded SQLite adapter, in
//! memory and on disk (WAL mode behaves differently from memory, and the
//! file path is what the local server uses).

use std::sync::Arc;

use acceptance::conformance;
use acceptance::support::TempDir;
use functions::store::sqlite::SqliteStore;
use korala_domain::ports::Store;

fn in_memory() -> Arc<dyn Store> {
    Arc::new(SqliteStore::in_memory().expect("an in-memory database"))
}

/// A store in a fresh file, removed with the directory after the case.
struct OnDisk {
    _dir: TempDir,
    store: Arc<dyn Store>,
}

impl OnDisk {
    fn new() -> Self {
        let dir = TempDir::new("sqlite-store");
        let path = dir.path().join("data").join("store.db");
        let store = Arc::new(SqliteStore::open(&path).expect("a database file"));
        Self { _dir: dir, store }
    }
}

impl conformance::Fixture for OnDisk {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }
}

mod memory {
    acceptance::store_conformance_tests!(|| async { super::in_memory() });
}

mod file {
    acceptance::store_conformance_tests!(|| async { super::OnDisk::new() });
}

/// `run_all` is what other adapters may call instead of the macro: it must
/// run every case.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_passes_in_memory() {
    conformance::run_all(|| async { in_memory() }).await;
}

/// A file keeps what was committed when the store is opened again.
#[tokio::test]
async fn a_reopened_file_keeps_its_data() {
    use acceptance::support::{SequentialIds, configuration, create_session, org, t0};
    let dir = TempDir::new("sqlite-reopen");
    let path = dir.path().join("store.db");
    let ids = SequentialIds::new();
    let created = create_session(&configuration(&org("acme"), "kyc"), "user-1", t0(), 60, &ids);
    {
        let store = SqliteStore::open(&path).unwrap();
        store.commit(&created).await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.get_session(&org("acme"), &created.session.id).await,
        Ok(Some(created.session.clone()))
    );
    assert_eq!(
        store.list_events(&org("acme"), &created.session.id).await,
        Ok(created.events)
    );
}
