//! A work queue in the embedded store: SQS's semantics over the
//! `queue_messages` table, so the local server and single-node deployments
//! run the same consumers as Lambda does on SQS.
//!
//! Several named queues share the table and the store's connection, and like
//! the store every call runs on tokio's blocking pool. As on SQS:
//! - a received message is hidden for its visibility timeout, then comes back
//!   unless its receiver deleted it;
//! - each receive hands out a fresh receipt, and only the latest one acts on
//!   the message: a receiver whose timeout passed and whose message went to
//!   another cannot delete or delay it from under the new one (its call is a
//!   no-op, not an error);
//! - a message received [`MAX_RECEIVES`] times and still not deleted is
//!   dead-lettered when it would be received once more (SQS's redrive
//!   policy): kept with its `dead_at`, never returned again, listed by
//!   [`SqliteQueue::dead_letters`].
//!
//! Messages are received oldest sent first; SQS promises no order, so
//! consumers must not rely on it.

use std::sync::Arc;

use async_trait::async_trait;
use korala_domain::Timestamp;
use korala_domain::ports::{Clock, MAX_VISIBILITY_SECONDS, Outgoing, Queue, QueueError, Received, StoreError};
use rusqlite::{Connection, params};

use crate::adapters::store::sqlite::{SqliteStore, engine, text, write};

/// Receives a message may take before it is dead-lettered (SQS's
/// `maxReceiveCount`).
pub const MAX_RECEIVES: u32 = 10;
/// The longest delay SQS allows a message; longer ones are cut to it.
pub const MAX_DELAY_SECONDS: u32 = 900;

/// One named queue in the embedded store. Cloning shares the connection.
#[derive(Clone)]
pub struct SqliteQueue {
    store: SqliteStore,
    name: Arc<str>,
    clock: Arc<dyn Clock>,
}

impl SqliteStore {
    /// The queue `name` in this store's database, sharing its connection.
    /// `clock` decides when messages are visible, so tests can move time.
    pub fn queue(&self, name: &str, clock: Arc<dyn Clock>) -> SqliteQueue {
        SqliteQueue {
            store: self.clone(),
            name: Arc::from(name),
            clock,
        }
    }
}

impl SqliteQueue {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bodies of the dead-lettered messages, oldest sent first: for
    /// operators (and tests) to see what never got through.
    pub async fn dead_letters(&self) -> Result<Vec<String>, QueueError> {
        let queue = Arc::clone(&self.name);
        self.run(move |conn| dead_letters(conn, &queue)).await
    }

    async fn run<T, F>(&self, work: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.store
            .run(work)
            .await
            .map_err(|e| QueueError::Unavailable(e.to_string()))
    }
}

/// `seconds` after `now`, as the table stores instants.
fn after(now: Timestamp, seconds: u32) -> String {
    text(&(now + chrono::Duration::seconds(i64::from(seconds))))
}

#[async_trait]
impl Queue for SqliteQueue {
    /// All or nothing: the messages are written in one transaction.
    async fn send(&self, messages: &[Outgoing]) -> Result<(), QueueError> {
        if messages.is_empty() {
            return Ok(());
        }
        let queue = Arc::clone(&self.name);
        let now = self.clock.now();
        let rows: Vec<(String, String)> = messages
            .iter()
            .map(|m| (m.body.clone(), after(now, m.delay_seconds.min(MAX_DELAY_SECONDS))))
            .collect();
        let sent_at = text(&now);
        self.run(move |conn| send(conn, &queue, &sent_at, rows)).await
    }

    async fn receive(&self, max: u32, visibility_seconds: u32) -> Result<Vec<Received>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let queue = Arc::clone(&self.name);
        let now = self.clock.now();
        let hidden_until = after(now, visibility_seconds.min(MAX_VISIBILITY_SECONDS));
        self.run(move |conn| receive(conn, &queue, now, &hidden_until, max))
            .await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        let (queue, receipt) = (Arc::clone(&self.name), receipt.to_owned());
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2",
                params![&*queue, receipt],
            )
            .map_err(engine)?;
            Ok(())
        })
        .await
    }

    /// The receipt stays valid, as SQS's `ChangeMessageVisibility` leaves it.
    async fn retry_after(&self, receipt: &str, seconds: u32) -> Result<(), QueueError> {
        let (queue, receipt) = (Arc::clone(&self.name), receipt.to_owned());
        let visible_at = after(self.clock.now(), seconds.min(MAX_VISIBILITY_SECONDS));
        self.run(move |conn| {
            conn.execute(
                "UPDATE queue_messages SET visible_at = ?1 WHERE queue = ?2 AND receipt = ?3",
                params![visible_at, &*queue, receipt],
            )
            .map_err(engine)?;
            Ok(())
        })
        .await
    }
}

/// The oldest visible messages of a queue, read through the partial index of
/// the live messages rather than every queue's history.
const READY: &str = "SELECT id, body, receive_count FROM queue_messages \
                     WHERE queue = ?1 AND dead_at IS NULL AND visible_at <= ?2 ORDER BY id LIMIT ?3";

/// `rows` are (body, visible_at).
fn send(conn: &mut Connection, queue: &str, sent_at: &str, rows: Vec<(String, String)>) -> Result<(), StoreError> {
    let tx = write(conn)?;
    {
        let mut insert = tx
            .prepare_cached("INSERT INTO queue_messages (queue, body, sent_at, visible_at) VALUES (?1, ?2, ?3, ?4)")
            .map_err(engine)?;
        for (body, visible_at) in rows {
            insert
                .execute(params![queue, body, sent_at, visible_at])
                .map_err(engine)?;
        }
    }
    tx.commit().map_err(engine)
}

/// One write transaction, so two consumers (threads, processes) never
/// receive the same message at once.
fn receive(
    conn: &mut Connection,
    queue: &str,
    now: Timestamp,
    hidden_until: &str,
    max: u32,
) -> Result<Vec<Received>, StoreError> {
    let now = text(&now);
    let tx = write(conn)?;
    // Before choosing, so spent messages do not take live ones' places. The
    // last receipt is dropped: a late delete must not remove a dead letter.
    let dead = tx
        .execute(
            "UPDATE queue_messages SET dead_at = ?1, receipt = NULL \
             WHERE queue = ?2 AND dead_at IS NULL AND visible_at <= ?1 AND receive_count >= ?3",
            params![now, queue, i64::from(MAX_RECEIVES)],
        )
        .map_err(engine)?;
    if dead > 0 {
        tracing::warn!(
            queue,
            dead,
            "dead-lettered messages received {MAX_RECEIVES} times without being deleted"
        );
    }
    let due: Vec<(i64, String, i64)> = {
        let mut select = tx.prepare_cached(READY).map_err(engine)?;
        select
            .query_map(params![queue, now, i64::from(max)], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .map_err(engine)?
            .collect::<Result<_, _>>()
            .map_err(engine)?
    };
    let mut received = Vec::with_capacity(due.len());
    {
        let mut hide = tx
            .prepare_cached("UPDATE queue_messages SET visible_at = ?1, receive_count = ?2, receipt = ?3 WHERE id = ?4")
            .map_err(engine)?;
        for (id, body, count) in due {
            let receive_count = u32::try_from(count + 1)
                .map_err(|_| StoreError::Corrupt(format!("queue message {id} has the receive count {count}")))?;
            let receipt = format!("{:032x}", rand::random::<u128>());
            hide.execute(params![hidden_until, i64::from(receive_count), receipt, id])
                .map_err(engine)?;
            received.push(Received {
                receipt,
                body,
                receive_count,
            });
        }
    }
    tx.commit().map_err(engine)?;
    Ok(received)
}

fn dead_letters(conn: &mut Connection, queue: &str) -> Result<Vec<String>, StoreError> {
    let mut select = conn
        .prepare_cached("SELECT body FROM queue_messages WHERE queue = ?1 AND dead_at IS NOT NULL ORDER BY id")
        .map_err(engine)?;
    select
        .query_map(params![queue], |row| row.get(0))
        .map_err(engine)?
        .collect::<Result<_, _>>()
        .map_err(engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The receive query reads the ready messages through their partial
    /// index rather than scanning every queue's history.
    #[tokio::test]
    async fn receiving_reads_the_ready_index() {
        let store = SqliteStore::in_memory().unwrap();
        let plan = store
            .run(|conn| {
                let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {READY}")).map_err(engine)?;
                let rows = explain
                    .query_map(params!["q", "2026", 1], |row| row.get::<_, String>(3))
                    .map_err(engine)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(engine)?;
                Ok(rows.join("\n"))
            })
            .await
            .unwrap();
        assert!(plan.contains("queue_messages_ready"), "{plan}");
    }
}
