//! EventBridge as the event bus: every committed event goes onto the
//! service's bus, where a rule routes the webhook types to the webhook events
//! queue (see [`crate::adapters::topology`]).
//!
//! `PutEvents` can succeed as a request and still refuse some of its entries
//! (throttling, an internal failure); only those are sent again, so the
//! others are not duplicated. What still fails is reported back for the
//! outbox to publish later.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use korala_domain::events::Event;
use korala_domain::ids::EventId;
use korala_domain::ports::{EventBus, PublishError};

/// The `source` of every event the service puts on the bus; the rules match
/// on it.
pub const SOURCE: &str = "korala.sessions";

/// EventBridge takes at most this many entries in one `PutEvents`…
const MAX_ENTRIES: usize = 10;
/// …and at most this many bytes of them (counted as [`entry_size`] does).
const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// How many times refused entries are sent in all (the first request
/// included), after a pause that doubles from [`FIRST_BACKOFF`].
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The `EventBus` on one EventBridge bus. Cloning shares the client.
#[derive(Clone, Debug)]
pub struct EventBridgeBus {
    client: Client,
    bus_name: String,
}

/// An event ready to put: its entry and that entry's size.
struct Prepared<'a> {
    id: &'a EventId,
    entry: PutEventsRequestEntry,
    size: usize,
}

/// The events of a publish that were not published, and why.
#[derive(Default)]
struct Unpublished {
    ids: Vec<EventId>,
    reasons: Vec<String>,
}

impl Unpublished {
    fn add(&mut self, ids: impl IntoIterator<Item = EventId>, reason: String) {
        self.ids.extend(ids);
        if !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
    }
}

impl EventBridgeBus {
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }

    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    fn prepare<'a>(&self, event: &'a Event) -> Result<Prepared<'a>, String> {
        let detail =
            serde_json::to_string(event).map_err(|e| format!("event {} is not serialisable: {e}", event.id))?;
        let detail_type = event.kind.name();
        let entry = PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(detail)
            .event_bus_name(&self.bus_name)
            .time(DateTime::from_millis(event.occurred_at.timestamp_millis()))
            .build();
        let size = entry_size(&entry);
        if size > MAX_REQUEST_BYTES {
            // No retry can make it smaller: the outbox keeps reporting it
            // until someone looks.
            return Err(format!(
                "event {} is {size} bytes, over EventBridge's {MAX_REQUEST_BYTES}-byte limit",
                event.id
            ));
        }
        Ok(Prepared {
            id: &event.id,
            entry,
            size,
        })
    }

    /// Puts one chunk, sending refused entries again, and notes what it
    /// could not publish. `false` when the request itself failed (after the
    /// SDK's retries): the bus is unreachable, and the caller stops rather
    /// than wait for the next chunks to time out too.
    async fn put_chunk(&self, chunk: &[Prepared<'_>], unpublished: &mut Unpublished) -> bool {
        let mut pending: Vec<&Prepared> = chunk.iter().collect();
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let entries = pending.iter().map(|p| p.entry.clone()).collect();
            let output = match self.client.put_events().set_entries(Some(entries)).send().await {
                Ok(output) => output,
                Err(e) => {
                    unpublished.add(
                        pending.iter().map(|p| p.id.clone()),
                        format!("EventBridge PutEvents failed: {}", DisplayErrorContext(&e)),
                    );
                    return false;
                }
            };
            let failed = failed_entries(&output, pending.len());
            if failed.is_empty() {
                return true;
            }
            if attempt == ATTEMPTS {
                for (position, reason) in failed {
                    if let Some(p) = pending.get(position) {
                        unpublished.add([p.id.clone()], format!("EventBridge refused the entry: {reason}"));
                    }
                }
                return true;
            }
            pending = failed
                .iter()
                .filter_map(|(position, _)| pending.get(*position).copied())
                .collect();
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        true
    }
}

/// The size EventBridge counts against its request limit: the time (14
/// bytes), source, detail type, detail and resources. The bus name is
/// counted too, to stay on the safe side.
fn entry_size(entry: &PutEventsRequestEntry) -> usize {
    let text = |s: Option<&str>| s.map_or(0, str::len);
    14 + text(entry.source())
        + text(entry.detail_type())
        + text(entry.detail())
        + text(entry.event_bus_name())
        + entry.resources().iter().map(String::len).sum::<usize>()
}

/// Consecutive runs of entries, each at most [`MAX_ENTRIES`] long and
/// [`MAX_REQUEST_BYTES`] in all (every size is at most that).
fn chunks(sizes: &[usize]) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, size) in sizes.iter().enumerate() {
        if i > start && (i - start == MAX_ENTRIES || bytes + size > MAX_REQUEST_BYTES) {
            chunks.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        chunks.push(start..sizes.len());
    }
    chunks
}

/// Which of the `sent` entries of a `PutEvents` request EventBridge did not
/// take, by position in the request, with its reason. The result entries
/// line up with the request's; an entry without a result, or a failure count
/// the entries do not account for, counts as failed, since publishing twice
/// is harmless and not publishing is not.
pub fn failed_entries(output: &PutEventsOutput, sent: usize) -> Vec<(usize, String)> {
    let results = output.entries();
    let mut failed: Vec<(usize, String)> = (0..sent)
        .filter_map(|i| match results.get(i) {
            Some(result) => match (result.error_code(), result.event_id()) {
                (Some(code), _) => Some((i, format!("{code}: {}", result.error_message().unwrap_or_default()))),
                (None, Some(_)) => None,
                (None, None) => Some((i, "no event id and no error in its result".to_owned())),
            },
            None => Some((i, "no result for the entry".to_owned())),
        })
        .collect();
    let reported = usize::try_from(output.failed_entry_count()).unwrap_or_default();
    if failed.len() < reported {
        let reason = format!("{reported} entries failed, without saying which");
        failed = (0..sent).map(|i| (i, reason.clone())).collect();
    }
    failed
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError> {
        let mut unpublished = Unpublished::default();
        let mut ready = Vec::with_capacity(events.len());
        for event in events {
            match self.prepare(event) {
                Ok(prepared) => ready.push(prepared),
                Err(reason) => unpublished.add([event.id.clone()], reason),
            }
        }
        let sizes: Vec<usize> = ready.iter().map(|p| p.size).collect();
        let mut ranges = chunks(&sizes).into_iter();
        while let Some(range) = ranges.next() {
            if !self.put_chunk(&ready[range], &mut unpublished).await {
                let rest = ranges.by_ref().flat_map(|r| ready[r].iter().map(|p| p.id.clone()));
                unpublished.add(
                    rest.collect::<Vec<_>>(),
                    "not sent after an earlier request failed".to_owned(),
                );
            }
        }
        if unpublished.ids.is_empty() {
            return Ok(());
        }
        Err(PublishError {
            failed: unpublished.ids,
            reason: unpublished.reasons.join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_eventbridge::types::PutEventsResultEntry;

    use super::*;

    fn accepted(id: &str) -> PutEventsResultEntry {
        PutEventsResultEntry::builder().event_id(id).build()
    }

    fn refused(code: &str, message: &str) -> PutEventsResultEntry {
        PutEventsResultEntry::builder()
            .error_code(code)
            .error_message(message)
            .build()
    }

    fn output(count: i32, entries: Vec<PutEventsResultEntry>) -> PutEventsOutput {
        PutEventsOutput::builder()
            .failed_entry_count(count)
            .set_entries(Some(entries))
            .build()
    }

    #[test]
    fn every_entry_accepted_is_no_failure() {
        assert_eq!(
            failed_entries(&output(0, vec![accepted("a"), accepted("b")]), 2),
            vec![]
        );
    }

    #[test]
    fn refused_entries_are_named_by_position_with_their_code() {
        let result = output(
            2,
            vec![
                accepted("a"),
                refused("ThrottlingException", "slow down"),
                accepted("c"),
                refused("InternalFailure", "oops"),
            ],
        );
        assert_eq!(
            failed_entries(&result, 4),
            vec![
                (1, "ThrottlingException: slow down".to_owned()),
                (3, "InternalFailure: oops".to_owned())
            ]
        );
    }

    #[test]
    fn entries_without_a_result_count_as_failed() {
        let positions: Vec<usize> = failed_entries(&output(0, vec![accepted("a")]), 3)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(positions, vec![1, 2]);
        let blank = output(0, vec![accepted("a"), PutEventsResultEntry::builder().build()]);
        assert_eq!(failed_entries(&blank, 2).len(), 1);
    }

    #[test]
    fn a_failure_count_the_entries_do_not_explain_fails_them_all() {
        let result = output(1, vec![accepted("a"), accepted("b")]);
        let positions: Vec<usize> = failed_entries(&result, 2).into_iter().map(|(i, _)| i).collect();
        assert_eq!(positions, vec![0, 1]);
    }

    #[test]
    fn chunks_hold_at_most_ten_entries_and_the_byte_limit() {
        assert!(chunks(&[]).is_empty());
        assert_eq!(chunks(&[100; 25]), vec![0..10, 10..20, 20..25]);
        let big = MAX_REQUEST_BYTES / 2;
        assert_eq!(chunks(&[big, big, 1, big]), vec![0..2, 2..4]);
        assert_eq!(chunks(&[MAX_REQUEST_BYTES, 1]), vec![0..1, 1..2]);
    }

    #[test]
    fn the_entry_size_counts_what_eventbridge_counts() {
        let entry = PutEventsRequestEntry::builder()
            .source("abc")
            .detail_type("de")
            .detail("{}")
            .event_bus_name("bus")
            .build();
        assert_eq!(entry_size(&entry), 14 + 3 + 2 + 2 + 3);
    }
}
