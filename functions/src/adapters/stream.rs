//! Reads the table's DynamoDB stream the way Lambda's event source mapping
//! does, for where there is none: the local server on DynamoDB Local and the
//! tests of the emulated AWS path. Each [`StreamReader::next_batch`] is the
//! event the `outbox-publisher` function would receive
//! ([`crate::consumers::outbox::publish_stream`]), and [`StreamReader::commit`] takes
//! its response as the mapping does with `ReportBatchItemFailures`: the
//! records before the first failure are done, the next batch starts at it.
//!
//! The positions live in memory only: a new reader starts again from the
//! oldest record the stream keeps (24 hours on AWS), so after a restart the
//! events are published again, which at least once allows.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use aws_lambda_events::event::dynamodb::{
    Event, EventRecord, StreamRecord, StreamViewType as LambdaViewType, UserIdentity,
};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError;
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, Shard, ShardIteratorType, StreamViewType};

/// What the event source mapping puts in every record's `eventSource`.
pub const EVENT_SOURCE: &str = "aws:dynamodb";

/// The SDK's own variable for the streams endpoint (service id "DynamoDB
/// Streams", spaces made underscores); the SDK reads it itself.
const STREAMS_ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL_DYNAMODB_STREAMS";
/// The same without the underscore, as it is easily spelt: honoured too,
/// rather than silently sending the reader to AWS.
const STREAMS_ENDPOINT_ENV_ALIAS: &str = "AWS_ENDPOINT_URL_DYNAMODBSTREAMS";
/// The DynamoDB endpoint: DynamoDB Local serves the streams API there too.
const DYNAMODB_ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL_DYNAMODB";
/// Set to `true`, the SDK ignores every configured endpoint; so does the fallback.
const IGNORE_ENDPOINTS_ENV: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";

/// DynamoDB Streams returns at most this many records per `GetRecords`.
const MAX_RECORDS_PER_REQUEST: usize = 1000;
/// A closed shard can answer empty pages before its end (on AWS, where it
/// covers hours with gaps); how many such pages one call walks through
/// before leaving the rest to the next call.
const EMPTY_PAGES_OF_CLOSED_SHARD: usize = 10;
/// `DescribeStream` lists at most this many shards per page.
const SHARDS_PER_PAGE: i32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("table {0} has no stream (its StreamSpecification is not enabled)")]
    NoStream(String),
    #[error("{operation} failed: {message}")]
    Request { operation: &'static str, message: String },
    #[error("stream record {record} cannot be delivered: {reason}")]
    Record { record: String, reason: String },
}

fn request_error<E, R>(operation: &'static str, error: SdkError<E, R>) -> StreamError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StreamError::Request {
        operation,
        message: DisplayErrorContext(&error).to_string(),
    }
}

/// The streams client, configured as [`crate::adapters::store::dynamodb::DynamoStore::connect`]
/// configures DynamoDB's (three attempts of at most 2 s, 5 s in all).
///
/// Its endpoint: `AWS_ENDPOINT_URL_DYNAMODB_STREAMS` when set (the SDK's own
/// variable), else `AWS_ENDPOINT_URL_DYNAMODBSTREAMS`, else
/// `AWS_ENDPOINT_URL_DYNAMODB`, else the SDK's default (`AWS_ENDPOINT_URL`,
/// then AWS). The DynamoDB fallback is there because DynamoDB Local serves
/// the streams API on its one port, and the environment that points the
/// store at it (`scripts/dynamodb-local`) sets only the DynamoDB variable:
/// without the fallback this client would read the stream of a table of the
/// same name on AWS (or fail for want of credentials). On AWS none of these
/// is set and both clients use the region's endpoints.
pub async fn streams_client() -> Client {
    let config = crate::adapters::aws::sdk_config().await;
    let mut builder = aws_sdk_dynamodbstreams::config::Builder::from(&config);
    if let Some(endpoint) = endpoint_override(|name| std::env::var(name).ok()) {
        builder = builder.endpoint_url(endpoint);
    }
    Client::from_conf(builder.build())
}

/// The endpoint to set on the streams client, if the SDK's own resolution
/// is not to be used (see [`streams_client`]). An empty variable counts as
/// unset, as it does for the SDK.
fn endpoint_override(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
    let ignored = set(IGNORE_ENDPOINTS_ENV).is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
    if ignored || set(STREAMS_ENDPOINT_ENV).is_some() {
        return None;
    }
    set(STREAMS_ENDPOINT_ENV_ALIAS).or_else(|| set(DYNAMODB_ENDPOINT_ENV))
}

/// Plays the event source mapping of one table's stream: hands out the
/// records not yet committed, from every shard, in the Lambda event format.
///
/// Calls to [`next_batch`](Self::next_batch) run one at a time; between a
/// batch and its [`commit`](Self::commit), another `next_batch` hands out the
/// same records again (nothing is done until committed).
pub struct StreamReader {
    client: Client,
    stream_arn: String,
    /// For records that do not carry theirs.
    region: String,
    /// Taken briefly, never across an await: [`commit`](Self::commit) is
    /// synchronous and must not wait for a read in flight.
    positions: Mutex<Positions>,
    /// Held for the whole of a `next_batch`, so that two calls do not read
    /// with, and overwrite, the same iterators.
    reading: tokio::sync::Mutex<Reading>,
}

#[derive(Debug, Default)]
struct Positions {
    /// Each shard's last committed sequence number; a shard without one is
    /// read from its oldest record (`TRIM_HORIZON`).
    committed: HashMap<String, String>,
    /// The shard of each record handed out and not yet committed, by
    /// `eventID`: the Lambda record does not name its shard, and `commit`
    /// needs it. Redelivered records replace their entry, committed ones
    /// leave, so it holds at most the records in flight.
    delivered: HashMap<String, String>,
}

#[derive(Debug, Default)]
struct Reading {
    cursors: HashMap<String, Cursor>,
    /// Closed shards read to their end with every record committed: their
    /// children may be read, and they need no more requests.
    finished: HashSet<String>,
}

/// Where a shard's reading stopped, kept between calls so that a committed
/// batch is followed by one `GetRecords` rather than a `GetShardIterator`
/// too.
#[derive(Debug)]
struct Cursor {
    /// The last record read (`None`: none yet, the shard's start).
    after: Option<String>,
    /// Reads on from `after`; `None` once a closed shard has no more.
    iterator: Option<String>,
}

/// Orders sequence numbers: decimal strings of up to 40 digits, longer
/// than any integer type, so compared by length and then digit by digit.
fn sequence_order(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Positions {
    /// Moves a shard's committed position forward (never back: an older
    /// batch committed late does not undo a newer one).
    fn advance(&mut self, shard: String, sequence: &str) {
        match self.committed.get_mut(&shard) {
            Some(current) if sequence_order(sequence, current) != Ordering::Greater => {}
            Some(current) => *current = sequence.to_owned(),
            None => {
                self.committed.insert(shard, sequence.to_owned());
            }
        }
    }
}

impl StreamReader {
    /// A reader of `table`'s current stream (its `LatestStreamArn`), that
    /// starts from the oldest record the stream keeps.
    pub async fn connect(
        dynamodb: &aws_sdk_dynamodb::Client,
        streams: Client,
        table: &str,
    ) -> Result<Self, StreamError> {
        let output = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| StreamError::Request {
                operation: "DescribeTable",
                message: aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string(),
            })?;
        let stream_arn = output
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| StreamError::NoStream(table.to_owned()))?
            .to_owned();
        let region = streams.config().region().map(|r| r.to_string()).unwrap_or_default();
        Ok(Self {
            client: streams,
            stream_arn,
            region,
            positions: Mutex::default(),
            reading: tokio::sync::Mutex::default(),
        })
    }

    /// The stream read: every record's `eventSourceARN`.
    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    fn positions(&self) -> MutexGuard<'_, Positions> {
        // Every step taken under the lock leaves the positions consistent (an
        // entry removed, a position moved forward), so they stay usable after
        // a panic while it was held.
        self.positions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Up to `limit` records not yet committed, as the event source mapping
    /// would deliver them: each shard's records in stream order, one shard
    /// after the other, a child shard only once its parent's records are all
    /// committed (as Lambda does, so a key's changes stay in order across a
    /// shard split). Empty when every record is committed.
    pub async fn next_batch(&self, limit: usize) -> Result<Event, StreamError> {
        let mut batch = Event::default();
        if limit == 0 {
            return Ok(batch);
        }
        let mut reading = self.reading.lock().await;
        // Listed on every call: shards close and new ones open (every few
        // hours on AWS), and the listing is how a reader learns of them.
        let shards = self.shards().await?;
        let listed: HashSet<&str> = shards.iter().filter_map(|s| s.shard_id()).collect();
        // Shards trimmed from the stream are gone for good.
        reading.cursors.retain(|id, _| listed.contains(id.as_str()));
        reading.finished.retain(|id| listed.contains(id.as_str()));
        let mut records = Vec::new();
        for shard in &shards {
            let Some(id) = shard.shard_id() else { continue };
            if reading.finished.contains(id) {
                continue;
            }
            let parent_pending = shard
                .parent_shard_id()
                .is_some_and(|parent| listed.contains(parent) && !reading.finished.contains(parent));
            if parent_pending || records.len() >= limit {
                continue;
            }
            let closed = shard
                .sequence_number_range()
                .is_some_and(|range| range.ending_sequence_number().is_some());
            let committed = self.positions().committed.get(id).cloned();
            let read = self
                .read_shard(&mut reading, id, closed, committed.as_deref(), limit - records.len())
                .await?;
            let ended = reading.cursors.get(id).is_some_and(|c| c.iterator.is_none());
            if read.is_empty() && ended {
                reading.finished.insert(id.to_owned());
                reading.cursors.remove(id);
                continue;
            }
            let mut positions = self.positions();
            for record in &read {
                positions.delivered.insert(record.event_id.clone(), id.to_owned());
            }
            drop(positions);
            records.extend(read);
        }
        batch.records = records;
        Ok(batch)
    }

    /// Every shard of the stream, in `DescribeStream`'s order (a parent
    /// before its children).
    async fn shards(&self) -> Result<Vec<Shard>, StreamError> {
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let output = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .limit(SHARDS_PER_PAGE)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| request_error("DescribeStream", e))?;
            let Some(description) = output.stream_description else {
                return Ok(shards);
            };
            shards.extend(description.shards.unwrap_or_default());
            match description.last_evaluated_shard_id {
                Some(last) => start = Some(last),
                None => return Ok(shards),
            }
        }
    }

    /// Up to `want` records of one shard after its committed position,
    /// leaving its cursor after the last one read.
    async fn read_shard(
        &self,
        reading: &mut Reading,
        shard: &str,
        closed: bool,
        committed: Option<&str>,
        want: usize,
    ) -> Result<Vec<EventRecord>, StreamError> {
        // Removed while reading: if a request fails half-way, the next call
        // starts afresh from the committed position rather than from an
        // iterator already used.
        let kept = reading.cursors.remove(shard);
        let mut after = committed.map(str::to_owned);
        let mut iterator = match kept {
            // Still where the last call stopped: everything it read was
            // committed (or nothing was read).
            Some(cursor) if cursor.after == after => cursor.iterator,
            _ => Some(self.iterator(shard, after.as_deref()).await?),
        };
        let mut records = Vec::new();
        let mut empty_pages = 0;
        let mut renewed = false;
        while let Some(current) = iterator.take() {
            if records.len() >= want {
                iterator = Some(current);
                break;
            }
            let page = (want - records.len()).min(MAX_RECORDS_PER_REQUEST);
            let output = match self
                .client
                .get_records()
                .shard_iterator(&current)
                .limit(i32::try_from(page).unwrap_or(i32::MAX))
                .send()
                .await
            {
                Ok(output) => output,
                // Iterators expire 15 minutes after they were handed out (a
                // reader idle that long): a new one from the same position.
                Err(e)
                    if !renewed
                        && matches!(e.as_service_error(), Some(GetRecordsError::ExpiredIteratorException(_))) =>
                {
                    renewed = true;
                    iterator = Some(self.iterator(shard, after.as_deref()).await?);
                    continue;
                }
                Err(e) => return Err(request_error("GetRecords", e)),
            };
            let count = output.records.as_ref().map_or(0, Vec::len);
            for record in output.records.unwrap_or_default() {
                let record = self.lambda_record(record)?;
                after = record.change.sequence_number.clone();
                records.push(record);
            }
            iterator = output.next_shard_iterator;
            if count == 0 {
                // An open shard with nothing more is caught up; a closed one
                // may have more after empty pages, up to its end.
                empty_pages += 1;
                if !closed || empty_pages >= EMPTY_PAGES_OF_CLOSED_SHARD {
                    break;
                }
            }
        }
        reading.cursors.insert(shard.to_owned(), Cursor { after, iterator });
        Ok(records)
    }

    /// An iterator reading a shard after `after`, or from its oldest record.
    async fn iterator(&self, shard: &str, after: Option<&str>) -> Result<String, StreamError> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard);
        let request = match after {
            Some(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let output = match request.send().await {
            Ok(output) => output,
            // The committed record has left the stream (kept 24 hours): the
            // records after it that also left are lost, as they are for
            // Lambda; go on from the oldest one kept.
            Err(e)
                if after.is_some()
                    && matches!(
                        e.as_service_error(),
                        Some(GetShardIteratorError::TrimmedDataAccessException(_))
                    ) =>
            {
                tracing::error!(
                    shard,
                    after,
                    "the committed stream position was trimmed; reading on from the oldest record"
                );
                return Box::pin(self.iterator(shard, None)).await;
            }
            Err(e) => return Err(request_error("GetShardIterator", e)),
        };
        output.shard_iterator.ok_or_else(|| StreamError::Request {
            operation: "GetShardIterator",
            message: format!("no iterator returned for shard {shard}"),
        })
    }

    /// A stream record as the event source mapping delivers it.
    fn lambda_record(&self, record: Record) -> Result<EventRecord, StreamError> {
        let unreadable = |record: &Record, reason: &str| StreamError::Record {
            record: record.event_id.clone().unwrap_or_default(),
            reason: reason.to_owned(),
        };
        let Some(change) = record.dynamodb.clone() else {
            return Err(unreadable(&record, "it has no `dynamodb` change"));
        };
        let (Some(event_id), Some(sequence)) = (record.event_id.clone(), change.sequence_number.clone()) else {
            return Err(unreadable(&record, "it has no eventID or SequenceNumber"));
        };
        let mut stream_record = StreamRecord::default();
        stream_record.approximate_creation_date_time = change
            .approximate_creation_date_time
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            .unwrap_or_default();
        stream_record.keys = item(change.keys).map_err(|reason| unreadable(&record, &reason))?;
        stream_record.new_image = item(change.new_image).map_err(|reason| unreadable(&record, &reason))?;
        stream_record.old_image = item(change.old_image).map_err(|reason| unreadable(&record, &reason))?;
        stream_record.sequence_number = Some(sequence);
        stream_record.size_bytes = change.size_bytes.unwrap_or_default();
        stream_record.stream_view_type = change.stream_view_type.as_ref().and_then(view_type);

        let mut lambda = EventRecord::default();
        lambda.aws_region = record
            .aws_region
            .filter(|region| !region.is_empty())
            .unwrap_or_else(|| self.region.clone());
        lambda.change = stream_record;
        lambda.event_id = event_id;
        lambda.event_name = record
            .event_name
            .map(|name| name.as_str().to_owned())
            .unwrap_or_default();
        lambda.event_source = Some(EVENT_SOURCE.to_owned());
        lambda.event_version = record.event_version;
        lambda.event_source_arn = Some(self.stream_arn.clone());
        // Only on the deletions DynamoDB's TTL makes.
        lambda.user_identity = record.user_identity.map(|identity| {
            let mut user = UserIdentity::default();
            user.type_ = identity.r#type.unwrap_or_default();
            user.principal_id = identity.principal_id.unwrap_or_default();
            user
        });
        Ok(lambda)
    }

    /// Takes the response to a batch from [`next_batch`](Self::next_batch)
    /// as the event source mapping takes the function's: with no failure,
    /// every record of the batch is done; with failures, the records before
    /// the first failed one (in the batch's order) are done and the next
    /// batch starts again at it. A failure that names no record of the batch
    /// (no or an unknown `itemIdentifier`) fails the whole batch, as Lambda
    /// treats it.
    ///
    /// The records after the failed one are not done even in other shards:
    /// [`crate::consumers::outbox::publish_stream`] stops at an unreadable record, so
    /// everything after the failure it reports may be unpublished.
    pub fn commit(&self, batch: &Event, response: &DynamoDbEventResponse) {
        let records = &batch.records;
        let index = |failure: &Option<String>| {
            failure.as_deref().and_then(|sequence| {
                records
                    .iter()
                    .position(|r| r.change.sequence_number.as_deref() == Some(sequence))
            })
        };
        let done = response
            .batch_item_failures
            .iter()
            .map(|failure| index(&failure.item_identifier))
            .try_fold(records.len(), |first, found| found.map(|i| first.min(i)))
            .unwrap_or(0);
        let mut positions = self.positions();
        for record in &records[..done] {
            // Records this reader did not hand out, or already committed.
            let Some(shard) = positions.delivered.remove(&record.event_id) else {
                continue;
            };
            if let Some(sequence) = &record.change.sequence_number {
                positions.advance(shard, sequence);
            }
        }
    }
}

/// An SDK image as the Lambda event's (serde_dynamo's) item. Checked first:
/// serde_dynamo's conversion panics on the SDK's `Unknown` variant (a type
/// newer than this SDK), where a reader must report the record instead.
fn item(image: Option<HashMap<String, AttributeValue>>) -> Result<serde_dynamo::Item, String> {
    let image = image.unwrap_or_default();
    if let Some(name) = image.iter().find(|(_, value)| has_unknown(value)).map(|(name, _)| name) {
        return Err(format!("attribute `{name}` has a type this SDK does not know"));
    }
    Ok(serde_dynamo::Item::from(image))
}

fn has_unknown(value: &AttributeValue) -> bool {
    match value {
        AttributeValue::L(list) => list.iter().any(has_unknown),
        AttributeValue::M(map) => map.values().any(has_unknown),
        AttributeValue::B(_)
        | AttributeValue::Bool(_)
        | AttributeValue::Bs(_)
        | AttributeValue::N(_)
        | AttributeValue::Ns(_)
        | AttributeValue::Null(_)
        | AttributeValue::S(_)
        | AttributeValue::Ss(_) => false,
        _ => true,
    }
}

fn view_type(view: &StreamViewType) -> Option<LambdaViewType> {
    match view {
        StreamViewType::KeysOnly => Some(LambdaViewType::KeysOnly),
        StreamViewType::NewImage => Some(LambdaViewType::NewImage),
        StreamViewType::OldImage => Some(LambdaViewType::OldImage),
        StreamViewType::NewAndOldImages => Some(LambdaViewType::NewAndOldImages),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::BehaviorVersion;
    use aws_lambda_events::event::streams::DynamoDbBatchItemFailure;

    #[test]
    fn the_streams_endpoint_falls_back_to_dynamodb_s() {
        fn env<'a>(pairs: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
            move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        }
        // The SDK's own variable: left to the SDK.
        let standard = [
            (STREAMS_ENDPOINT_ENV, "http://streams"),
            (DYNAMODB_ENDPOINT_ENV, "http://ddb"),
        ];
        assert_eq!(endpoint_override(env(&standard)), None);
        let alias = [
            (STREAMS_ENDPOINT_ENV_ALIAS, "http://streams"),
            (DYNAMODB_ENDPOINT_ENV, "http://ddb"),
        ];
        assert_eq!(endpoint_override(env(&alias)).as_deref(), Some("http://streams"));
        let dynamodb = [(STREAMS_ENDPOINT_ENV, ""), (DYNAMODB_ENDPOINT_ENV, "http://ddb")];
        assert_eq!(endpoint_override(env(&dynamodb)).as_deref(), Some("http://ddb"));
        assert_eq!(endpoint_override(env(&[("AWS_ENDPOINT_URL", "http://all")])), None);
        let ignored = [(IGNORE_ENDPOINTS_ENV, "true"), (DYNAMODB_ENDPOINT_ENV, "http://ddb")];
        assert_eq!(endpoint_override(env(&ignored)), None);
    }

    #[test]
    fn sequence_numbers_order_as_numbers() {
        assert_eq!(sequence_order("900", "1000"), Ordering::Less);
        assert_eq!(sequence_order("000123", "123"), Ordering::Equal);
        assert_eq!(
            sequence_order("4100000000000000000002", "4100000000000000000001"),
            Ordering::Greater
        );
    }

    fn record(sequence: &str) -> EventRecord {
        let mut record = EventRecord::default();
        record.event_id = format!("id-{sequence}");
        record.change.sequence_number = Some(sequence.to_owned());
        record
    }

    fn response(failures: &[Option<&str>]) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        for failure in failures {
            let mut item = DynamoDbBatchItemFailure::default();
            item.item_identifier = failure.map(str::to_owned);
            response.batch_item_failures.push(item);
        }
        response
    }

    /// A batch of shard A's records 1–3 then shard B's 11–12, as handed out.
    fn handed_out(positions: &mut Positions) -> Event {
        let mut batch = Event::default();
        for (shard, sequence) in [("A", "1"), ("A", "2"), ("A", "3"), ("B", "11"), ("B", "12")] {
            positions.delivered.insert(format!("id-{sequence}"), shard.to_owned());
            batch.records.push(record(sequence));
        }
        batch
    }

    /// A reader that sends no request.
    fn reader() -> StreamReader {
        let client = Client::from_conf(
            aws_sdk_dynamodbstreams::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .build(),
        );
        StreamReader {
            client,
            stream_arn: "arn".into(),
            region: "eu-west-1".into(),
            positions: Mutex::default(),
            reading: tokio::sync::Mutex::default(),
        }
    }

    #[test]
    fn a_batch_can_be_read_on_another_task() {
        fn is_send<T: Send>(_: &T) {}
        let reader = reader();
        let reading = reader.next_batch(1);
        is_send(&reading);
    }

    async fn committed_after(failures: &[Option<&str>]) -> HashMap<String, String> {
        let reader = reader();
        let batch = handed_out(&mut reader.positions());
        reader.commit(&batch, &response(failures));
        reader.positions().committed.clone()
    }

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[tokio::test]
    async fn commit_stops_before_the_first_failed_record() {
        assert_eq!(committed_after(&[]).await, map(&[("A", "3"), ("B", "12")]));
        assert_eq!(committed_after(&[Some("12")]).await, map(&[("A", "3"), ("B", "11")]));
        assert_eq!(committed_after(&[Some("2")]).await, map(&[("A", "1")]));
        // The earliest of several failures counts.
        assert_eq!(committed_after(&[Some("12"), Some("3")]).await, map(&[("A", "2")]));
        assert_eq!(committed_after(&[Some("1")]).await, map(&[]));
    }

    #[tokio::test]
    async fn a_failure_naming_no_record_fails_the_whole_batch() {
        assert_eq!(committed_after(&[None]).await, map(&[]));
        assert_eq!(committed_after(&[Some("")]).await, map(&[]));
        assert_eq!(committed_after(&[Some("12"), Some("99")]).await, map(&[]));
    }

    #[test]
    fn commits_never_move_a_shard_back() {
        let mut positions = Positions::default();
        positions.advance("A".into(), "5");
        positions.advance("A".into(), "3");
        assert_eq!(positions.committed.get("A").map(String::as_str), Some("5"));
        positions.advance("A".into(), "10");
        assert_eq!(positions.committed.get("A").map(String::as_str), Some("10"));
    }
}
