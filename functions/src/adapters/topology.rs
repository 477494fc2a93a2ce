//! The messaging topology, defined once: the event bus every committed event
//! goes onto, the rule that routes the six webhook types from it to the
//! webhook events queue, and the webhook deliveries queue the fan-out fills
//! for the dispatcher; each queue with a dead-letter queue behind it.
//!
//! [`provision`] creates all of it on an emulator (moto) or a development
//! account, for the tests and the local server; the deployed stack declares
//! the same resources with these names and settings.

use std::collections::HashMap;

use aws_sdk_eventbridge::types::{RuleState, Target};
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::operation::create_queue::CreateQueueError;
use aws_sdk_sqs::types::QueueAttributeName;
use korala_domain::webhooks::WebhookEvent;
use serde_json::{Value, json};

use crate::adapters::bus::eventbridge::SOURCE;

/// The prefix of the service's own resources.
pub const PREFIX: &str = "korala";

/// Every webhook type: the detail types the rule routes to the webhook events
/// queue. (A test fails to compile when a type is added and not listed.)
pub const WEBHOOK_EVENTS: [WebhookEvent; 6] = [
    WebhookEvent::SessionCompleted,
    WebhookEvent::SessionExpired,
    WebhookEvent::SessionFailed,
    WebhookEvent::SessionResolved,
    WebhookEvent::SessionWorkflowCompleted,
    WebhookEvent::SessionWorkflowFailed,
];

/// The detail type of a check request.
pub const CHECK_REQUESTED: &str = "session_check_requested";

const DAY_SECONDS: u32 = 24 * 3600;
/// SQS's default, stated so the stack and the emulator agree.
const DEFAULT_RETENTION_SECONDS: u32 = 4 * DAY_SECONDS;
/// SQS's longest retention.
const MAX_RETENTION_SECONDS: u32 = 14 * DAY_SECONDS;

/// A work queue and the dead-letter queue its redrive policy moves a message
/// to after `max_receive_count` receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    pub dead_letter_name: String,
    /// How long a received message stays hidden unless its consumer says
    /// otherwise.
    pub visibility_timeout_seconds: u32,
    pub max_receive_count: u32,
    pub retention_seconds: u32,
    /// A redriven message keeps its first enqueue time, so its dead-letter
    /// queue keeps messages longer than the queue does (the longest SQS
    /// allows), or they would expire there as soon as they arrive.
    pub dead_letter_retention_seconds: u32,
}

/// The names and settings of every messaging resource, for one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub bus: String,
    /// Routes the webhook types from the bus to `webhook_events`.
    pub rule: String,
    /// The webhook events, as EventBridge delivers them, for the fan-out.
    pub webhook_events: QueueSpec,
    /// One message per (event, endpoint), for the dispatcher.
    pub webhook_deliveries: QueueSpec,
    /// Routes `session_check_requested` from the bus to `checks`.
    pub check_rule: String,
    /// The check requests, as EventBridge delivers them, for the checks worker.
    pub checks: QueueSpec,
}

impl Topology {
    pub fn new(prefix: &str) -> Self {
        Self {
            bus: format!("{prefix}-sessions"),
            rule: format!("{prefix}-webhook-events"),
            webhook_events: QueueSpec {
                name: format!("{prefix}-webhook-events"),
                dead_letter_name: format!("{prefix}-webhook-events-dlq"),
                // The fan-out writes one delivery per endpoint: seconds.
                visibility_timeout_seconds: 60,
                // A fan-out that fails five times will not succeed a sixth:
                // the event is kept in the dead-letter queue for a look.
                max_receive_count: 5,
                retention_seconds: DEFAULT_RETENTION_SECONDS,
                dead_letter_retention_seconds: MAX_RETENTION_SECONDS,
            },
            webhook_deliveries: QueueSpec {
                name: format!("{prefix}-webhook-deliveries"),
                dead_letter_name: format!("{prefix}-webhook-deliveries-dlq"),
                // One HTTP attempt, at most a few seconds.
                visibility_timeout_seconds: 60,
                // The dispatcher gives up by its own attempt count (it
                // records the failure); the dead-letter queue only catches a
                // message that crashes it every time.
                max_receive_count: 20,
                // The retries span about 27 hours.
                retention_seconds: MAX_RETENTION_SECONDS,
                dead_letter_retention_seconds: MAX_RETENTION_SECONDS,
            },
            check_rule: format!("{prefix}-check-requests"),
            checks: QueueSpec {
                name: format!("{prefix}-checks"),
                dead_letter_name: format!("{prefix}-checks-dlq"),
                // One provider call (with its timeout) and one commit.
                visibility_timeout_seconds: 60,
                // The worker gives up by its own count (it fails the check);
                // the dead-letter queue catches what crashes it every time.
                max_receive_count: 10,
                retention_seconds: DEFAULT_RETENTION_SECONDS,
                dead_letter_retention_seconds: MAX_RETENTION_SECONDS,
            },
        }
    }

    /// The check rule's event pattern: the service's check requests.
    pub fn check_pattern() -> Value {
        json!({ "source": [SOURCE], "detail-type": [CHECK_REQUESTED] })
    }

    /// The rule's event pattern: the service's events of the webhook types.
    pub fn event_pattern() -> Value {
        let detail_types: Vec<Value> = WEBHOOK_EVENTS
            .iter()
            .filter_map(|event| serde_json::to_value(event).ok())
            .collect();
        json!({ "source": [SOURCE], "detail-type": detail_types })
    }
}

/// A queue as created: what the adapters and the event source mappings need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedQueue {
    pub name: String,
    pub url: String,
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub bus_name: String,
    pub bus_arn: String,
    pub rule_arn: String,
    pub webhook_events: ProvisionedQueue,
    pub webhook_events_dlq: ProvisionedQueue,
    pub webhook_deliveries: ProvisionedQueue,
    pub webhook_deliveries_dlq: ProvisionedQueue,
    pub check_rule_arn: String,
    pub checks: ProvisionedQueue,
    pub checks_dlq: ProvisionedQueue,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    #[error("SQS {operation} failed: {detail}")]
    Sqs { operation: &'static str, detail: String },
    #[error("EventBridge {operation} failed: {detail}")]
    EventBridge { operation: &'static str, detail: String },
    #[error("the {operation} answer has no {field}")]
    Incomplete {
        operation: &'static str,
        field: &'static str,
    },
}

fn sqs_error<E>(operation: &'static str) -> impl FnOnce(SdkError<E>) -> ProvisionError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |error| ProvisionError::Sqs {
        operation,
        detail: DisplayErrorContext(&error).to_string(),
    }
}

fn eventbridge_error<E>(operation: &'static str) -> impl FnOnce(SdkError<E>) -> ProvisionError
where
    E: aws_sdk_eventbridge::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |error| ProvisionError::EventBridge {
        operation,
        detail: aws_sdk_eventbridge::error::DisplayErrorContext(&error).to_string(),
    }
}

/// SQS and EventBridge clients on the environment's account and region (or
/// the endpoints in `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL_EVENTBRIDGE`).
/// The timeouts keep a request inside the functions' 10 s budget with its
/// retries, as the DynamoDB store's: three attempts of at most 2 s each, 5 s
/// in all.
pub async fn clients() -> (aws_sdk_sqs::Client, aws_sdk_eventbridge::Client) {
    let config = crate::adapters::aws::sdk_config().await;
    (
        aws_sdk_sqs::Client::new(&config),
        aws_sdk_eventbridge::Client::new(&config),
    )
}

/// Creates the whole topology for `prefix`, or brings an existing one to
/// these settings: running it again is harmless.
pub async fn provision(
    sqs: &aws_sdk_sqs::Client,
    eventbridge: &aws_sdk_eventbridge::Client,
    prefix: &str,
) -> Result<Provisioned, ProvisionError> {
    let topology = Topology::new(prefix);
    let (webhook_events, webhook_events_dlq) = queue_pair(sqs, &topology.webhook_events).await?;
    let (webhook_deliveries, webhook_deliveries_dlq) = queue_pair(sqs, &topology.webhook_deliveries).await?;

    let (checks, checks_dlq) = queue_pair(sqs, &topology.checks).await?;

    let bus_arn = event_bus(eventbridge, &topology.bus).await?;
    let rule_arn = route(
        sqs,
        eventbridge,
        &topology.bus,
        &topology.rule,
        Topology::event_pattern(),
        &webhook_events,
        "The webhook event types, to the webhook events queue",
    )
    .await?;
    let check_rule_arn = route(
        sqs,
        eventbridge,
        &topology.bus,
        &topology.check_rule,
        Topology::check_pattern(),
        &checks,
        "Check requests, to the checks queue",
    )
    .await?;

    Ok(Provisioned {
        bus_name: topology.bus,
        bus_arn,
        rule_arn,
        webhook_events,
        webhook_events_dlq,
        webhook_deliveries,
        webhook_deliveries_dlq,
        check_rule_arn,
        checks,
        checks_dlq,
    })
}

/// A rule on the bus sending what `pattern` matches to `queue`, and the
/// queue policy that lets EventBridge (for this rule only) send there.
async fn route(
    sqs: &aws_sdk_sqs::Client,
    eventbridge: &aws_sdk_eventbridge::Client,
    bus: &str,
    rule: &str,
    pattern: Value,
    queue: &ProvisionedQueue,
    description: &str,
) -> Result<String, ProvisionError> {
    let rule_arn = eventbridge
        .put_rule()
        .name(rule)
        .event_bus_name(bus)
        .event_pattern(pattern.to_string())
        .state(RuleState::Enabled)
        .description(description)
        .send()
        .await
        .map_err(eventbridge_error("PutRule"))?
        .rule_arn
        .ok_or(ProvisionError::Incomplete {
            operation: "PutRule",
            field: "RuleArn",
        })?;

    // EventBridge sends to the queue with its own identity: the queue must
    // let it, for this rule only.
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "FromEventBridgeRule",
            "Effect": "Allow",
            "Principal": { "Service": "events.amazonaws.com" },
            "Action": "sqs:SendMessage",
            "Resource": queue.arn,
            "Condition": { "ArnEquals": { "aws:SourceArn": rule_arn } },
        }],
    });
    sqs.set_queue_attributes()
        .queue_url(&queue.url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .map_err(sqs_error("SetQueueAttributes"))?;

    let target = Target::builder()
        .id("queue")
        .arn(&queue.arn)
        .build()
        .map_err(|e| ProvisionError::EventBridge {
            operation: "PutTargets",
            detail: format!("cannot build the target: {e}"),
        })?;
    let targets = eventbridge
        .put_targets()
        .rule(rule)
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .map_err(eventbridge_error("PutTargets"))?;
    if targets.failed_entry_count() > 0 {
        let reasons: Vec<String> = targets
            .failed_entries()
            .iter()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.error_code().unwrap_or_default(),
                    f.error_message().unwrap_or_default()
                )
            })
            .collect();
        return Err(ProvisionError::EventBridge {
            operation: "PutTargets",
            detail: format!("the target was refused: {}", reasons.join("; ")),
        });
    }
    Ok(rule_arn)
}

/// The queue and its dead-letter queue, the latter first since the queue's
/// redrive policy names it.
async fn queue_pair(
    sqs: &aws_sdk_sqs::Client,
    spec: &QueueSpec,
) -> Result<(ProvisionedQueue, ProvisionedQueue), ProvisionError> {
    let dead_letter = queue(
        sqs,
        &spec.dead_letter_name,
        vec![(
            QueueAttributeName::MessageRetentionPeriod,
            spec.dead_letter_retention_seconds.to_string(),
        )],
    )
    .await?;
    let redrive = json!({
        "deadLetterTargetArn": dead_letter.arn,
        "maxReceiveCount": spec.max_receive_count,
    });
    let main = queue(
        sqs,
        &spec.name,
        vec![
            (
                QueueAttributeName::VisibilityTimeout,
                spec.visibility_timeout_seconds.to_string(),
            ),
            (
                QueueAttributeName::MessageRetentionPeriod,
                spec.retention_seconds.to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
        ],
    )
    .await?;
    Ok((main, dead_letter))
}

/// Creates the queue with these attributes, or sets them on the existing
/// one (SQS refuses to "create" a queue whose attributes differ).
async fn queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> Result<ProvisionedQueue, ProvisionError> {
    let attributes: HashMap<QueueAttributeName, String> = attributes.into_iter().collect();
    let created = sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.clone()))
        .send()
        .await;
    let url = match created {
        Ok(output) => output.queue_url.ok_or(ProvisionError::Incomplete {
            operation: "CreateQueue",
            field: "QueueUrl",
        })?,
        Err(e) if exists_already(&e) => {
            let url = sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(sqs_error("GetQueueUrl"))?
                .queue_url
                .ok_or(ProvisionError::Incomplete {
                    operation: "GetQueueUrl",
                    field: "QueueUrl",
                })?;
            sqs.set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attributes))
                .send()
                .await
                .map_err(sqs_error("SetQueueAttributes"))?;
            url
        }
        Err(e) => return Err(sqs_error("CreateQueue")(e)),
    };
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(sqs_error("GetQueueAttributes"))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or(ProvisionError::Incomplete {
            operation: "GetQueueAttributes",
            field: "QueueArn",
        })?;
    Ok(ProvisionedQueue {
        name: name.to_owned(),
        url,
        arn,
    })
}

/// SQS's JSON protocol names the error `QueueNameExists`; its older query
/// protocol (and emulators speaking it) `QueueAlreadyExists`.
fn exists_already(error: &SdkError<CreateQueueError>) -> bool {
    match error.as_service_error() {
        Some(CreateQueueError::QueueNameExists(_)) => true,
        Some(other) => other.code() == Some("QueueAlreadyExists"),
        None => false,
    }
}

/// Creates the bus unless it exists; its ARN either way.
async fn event_bus(eventbridge: &aws_sdk_eventbridge::Client, name: &str) -> Result<String, ProvisionError> {
    use aws_sdk_eventbridge::operation::create_event_bus::CreateEventBusError;

    match eventbridge.create_event_bus().name(name).send().await {
        Ok(output) => {
            if let Some(arn) = output.event_bus_arn {
                return Ok(arn);
            }
        }
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateEventBusError::ResourceAlreadyExistsException(_))
            ) => {}
        Err(e) => return Err(eventbridge_error("CreateEventBus")(e)),
    }
    eventbridge
        .describe_event_bus()
        .name(name)
        .send()
        .await
        .map_err(eventbridge_error("DescribeEventBus"))?
        .arn
        .ok_or(ProvisionError::Incomplete {
            operation: "DescribeEventBus",
            field: "Arn",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resource `logical` of the SAM template, up to the next blank line.
    fn template_block(logical: &str) -> String {
        let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml")).unwrap();
        let start = template
            .find(&format!("\n  {logical}:\n"))
            .unwrap_or_else(|| panic!("the template has no {logical}"));
        let rest = &template[start + 1..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_owned()
    }

    /// The stack declares the topology the tests provision on moto.
    #[test]
    fn the_sam_template_declares_this_topology() {
        let topology = Topology::new(PREFIX);
        for (logical, dead_letter, spec) in [
            (
                "WebhookEventsQueue",
                "WebhookEventsDeadLetterQueue",
                &topology.webhook_events,
            ),
            (
                "WebhookDeliveriesQueue",
                "WebhookDeliveriesDeadLetterQueue",
                &topology.webhook_deliveries,
            ),
            ("ChecksQueue", "ChecksDeadLetterQueue", &topology.checks),
        ] {
            let queue = template_block(logical);
            for line in [
                format!("VisibilityTimeout: {}", spec.visibility_timeout_seconds),
                format!("MessageRetentionPeriod: {}", spec.retention_seconds),
                format!("deadLetterTargetArn: !GetAtt {dead_letter}.Arn"),
                format!("maxReceiveCount: {}", spec.max_receive_count),
            ] {
                assert!(queue.contains(&line), "{logical} lacks `{line}`:\n{queue}");
            }
            let line = format!("MessageRetentionPeriod: {}", spec.dead_letter_retention_seconds);
            assert!(
                template_block(dead_letter).contains(&line),
                "{dead_letter} lacks `{line}`"
            );
        }
        let rule = template_block("WebhookEventsRule");
        let types: Vec<String> = WEBHOOK_EVENTS
            .iter()
            .map(|e| serde_json::to_value(e).unwrap().as_str().unwrap().to_owned())
            .collect();
        for line in [
            format!("source: [{SOURCE}]"),
            format!("detail-type: [{}]", types.join(", ")),
            "Arn: !GetAtt WebhookEventsQueue.Arn".to_owned(),
        ] {
            assert!(rule.contains(&line), "the rule lacks `{line}`:\n{rule}");
        }
        let rule = template_block("ChecksRule");
        for line in [
            format!("source: [{SOURCE}]"),
            format!("detail-type: [{CHECK_REQUESTED}]"),
            "Arn: !GetAtt ChecksQueue.Arn".to_owned(),
        ] {
            assert!(rule.contains(&line), "the check rule lacks `{line}`:\n{rule}");
        }
    }

    /// Adding a webhook type breaks this match: list the type in
    /// [`WEBHOOK_EVENTS`] too, or the rule will never route it.
    fn position(event: WebhookEvent) -> usize {
        match event {
            WebhookEvent::SessionCompleted => 0,
            WebhookEvent::SessionExpired => 1,
            WebhookEvent::SessionFailed => 2,
            WebhookEvent::SessionResolved => 3,
            WebhookEvent::SessionWorkflowCompleted => 4,
            WebhookEvent::SessionWorkflowFailed => 5,
        }
    }

    #[test]
    fn every_webhook_type_is_routed() {
        for (i, event) in WEBHOOK_EVENTS.iter().enumerate() {
            assert_eq!(position(*event), i);
        }
    }

    #[test]
    fn the_pattern_matches_the_service_source_and_the_webhook_types() {
        assert_eq!(
            Topology::event_pattern(),
            json!({
                "source": ["korala.sessions"],
                "detail-type": [
                    "session_completed",
                    "session_expired",
                    "session_failed",
                    "session_resolved",
                    "session_workflow_completed",
                    "session_workflow_failed",
                ],
            })
        );
    }

    #[test]
    fn names_carry_the_prefix() {
        let t = Topology::new("dev1");
        assert_eq!(
            [
                t.bus.as_str(),
                &t.rule,
                &t.webhook_events.name,
                &t.webhook_events.dead_letter_name,
                &t.webhook_deliveries.name,
                &t.webhook_deliveries.dead_letter_name
            ],
            [
                "dev1-sessions",
                "dev1-webhook-events",
                "dev1-webhook-events",
                "dev1-webhook-events-dlq",
                "dev1-webhook-deliveries",
                "dev1-webhook-deliveries-dlq"
            ]
        );
    }

    /// The deliveries' retries span about 27 hours; SQS's longest retention
    /// is 14 days.
    #[test]
    fn deliveries_outlive_their_retries() {
        let t = Topology::new(PREFIX);
        assert_eq!(t.webhook_deliveries.retention_seconds, 1_209_600);
        assert_eq!(t.webhook_deliveries.dead_letter_retention_seconds, 1_209_600);
        assert_eq!(
            (
                t.webhook_events.max_receive_count,
                t.webhook_deliveries.max_receive_count
            ),
            (5, 20)
        );
    }
}
