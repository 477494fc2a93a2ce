//! The table's shape, in one place: the tests create their tables from it and
//! `infra/template.yaml` must hold exactly the block [`cloudformation_yaml`]
//! renders from it (a unit test compares them), so the deployed table and the
//! tested one cannot drift apart.

use std::fmt::Write as _;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use korala_domain::ports::StoreError;

/// The CloudFormation logical id; functions receive the physical name as
/// `SESSIONS_TABLE`.
pub const LOGICAL_ID: &str = "SessionsTable";
pub const PARTITION_KEY: &str = "PK";
pub const SORT_KEY: &str = "SK";
/// Epoch seconds after which DynamoDB may delete the item (idempotency
/// records); expired items can linger for days, so reads re-check it.
pub const TTL_ATTRIBUTE: &str = "expiration";

/// A session item's JSON summary (`SessionSummary`): all a listing reads.
pub const SUMMARY: &str = "summary";
/// A session item's status, for the listing by user and status's filter.
pub const STATUS: &str = "status";

/// What a global secondary index copies of each item besides the keys (the
/// table's and its own). Every session write is also written to each index
/// whose copy changes, so an index keeps no more than its readers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// The whole item: for a read that needs the whole session in one request.
    All,
    /// These attributes only.
    Include(&'static [&'static str]),
    /// The keys only: the reader fetches the items it needs from the table.
    KeysOnly,
}

/// What the listings read: the summary, and the status their filter tests.
const LISTING: Projection = Projection::Include(&[SUMMARY, STATUS]);

/// A global secondary index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: Option<&'static str>,
    pub projection: Projection,
}

pub const BY_ORG: Index = Index {
    name: "by_org",
    partition_key: "OrgPK",
    sort_key: Some("OrgSK"),
    projection: LISTING,
};
pub const BY_USER: Index = Index {
    name: "by_user",
    partition_key: "UserPK",
    sort_key: Some("UserSK"),
    projection: LISTING,
};
pub const BY_STATUS: Index = Index {
    name: "by_status",
    partition_key: "StatusPK",
    sort_key: Some("StatusSK"),
    projection: LISTING,
};
/// Partition key only: a token hash belongs to one session. The whole
/// session, so that the end user's read stays one request.
pub const BY_TOKEN: Index = Index {
    name: "by_token",
    partition_key: "TokenPK",
    sort_key: None,
    projection: Projection::All,
};
/// Sparse: only sessions that can still expire carry its keys. Keys only: the
/// sweep reads the few due sessions from the table (consistently, which it
/// wants anyway before expiring them), so the open sessions' every write is
/// not copied here too.
pub const DUE: Index = Index {
    name: "due",
    partition_key: "DuePK",
    sort_key: Some("DueSK"),
    projection: Projection::KeysOnly,
};

pub const INDEXES: [Index; 5] = [BY_ORG, BY_USER, BY_STATUS, BY_TOKEN, DUE];

/// Every key attribute of the table and its indexes (all strings).
fn key_attributes() -> Vec<&'static str> {
    let mut names = vec![PARTITION_KEY, SORT_KEY];
    for index in INDEXES {
        names.push(index.partition_key);
        names.extend(index.sort_key);
    }
    names
}

impl Projection {
    fn sdk(self) -> aws_sdk_dynamodb::types::Projection {
        let builder = aws_sdk_dynamodb::types::Projection::builder().projection_type(self.kind());
        match self {
            Projection::Include(attributes) => builder
                .set_non_key_attributes(Some(attributes.iter().map(|a| (*a).to_owned()).collect()))
                .build(),
            Projection::All | Projection::KeysOnly => builder.build(),
        }
    }

    fn kind(self) -> ProjectionType {
        match self {
            Projection::All => ProjectionType::All,
            Projection::Include(_) => ProjectionType::Include,
            Projection::KeysOnly => ProjectionType::KeysOnly,
        }
    }
}

fn built<T>(result: Result<T, BuildError>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Corrupt(format!("the table definition is incomplete: {e}")))
}

fn key_schema(partition_key: &str, sort_key: Option<&str>) -> Result<Vec<KeySchemaElement>, StoreError> {
    let mut schema = vec![built(
        KeySchemaElement::builder()
            .attribute_name(partition_key)
            .key_type(KeyType::Hash)
            .build(),
    )?];
    if let Some(sort_key) = sort_key {
        schema.push(built(
            KeySchemaElement::builder()
                .attribute_name(sort_key)
                .key_type(KeyType::Range)
                .build(),
        )?);
    }
    Ok(schema)
}

/// Creates the table and waits until it serves requests. DynamoDB Local may
/// refuse connections for a moment after its port opens, so transport
/// failures are retried for a few seconds.
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let attributes = key_attributes()
        .into_iter()
        .map(|attribute| {
            built(
                AttributeDefinition::builder()
                    .attribute_name(attribute)
                    .attribute_type(ScalarAttributeType::S)
                    .build(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let indexes = INDEXES
        .into_iter()
        .map(|index| {
            built(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name)
                    .set_key_schema(Some(key_schema(index.partition_key, index.sort_key)?))
                    .projection(index.projection.sdk())
                    .build(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let stream = built(
        StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewAndOldImages)
            .build(),
    )?;
    let request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(PARTITION_KEY, Some(SORT_KEY))?))
        .set_global_secondary_indexes(Some(indexes))
        .stream_specification(stream);
    let mut attempt = 0;
    loop {
        match request.clone().send().await {
            Ok(_) => break,
            Err(SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_))
                if attempt < 20 =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            // The table exists: created by an attempt whose answer was lost
            // (the SDK's own retry after a timeout, while a just-started
            // DynamoDB Local warms up), or by a concurrent creator.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => break,
            Err(e) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot create table {name}: {}",
                    DisplayErrorContext(e.into_service_error())
                )));
            }
        }
    }
    client
        .wait_until_table_exists()
        .table_name(name)
        .wait(Duration::from_secs(60))
        .await
        .map_err(|e| {
            StoreError::Unavailable(format!(
                "table {name} did not become active: {}",
                DisplayErrorContext(e)
            ))
        })?;
    let ttl = built(
        TimeToLiveSpecification::builder()
            .attribute_name(TTL_ATTRIBUTE)
            .enabled(true)
            .build(),
    )?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot enable TTL on table {name}: {}",
                DisplayErrorContext(e.into_service_error())
            ))
        })?;
    Ok(())
}

/// Deletes the table; a table that is already gone is fine.
pub async fn delete_table(client: &Client, name: &str) -> Result<(), StoreError> {
    match client.delete_table().table_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) => match e.into_service_error() {
            aws_sdk_dynamodb::operation::delete_table::DeleteTableError::ResourceNotFoundException(_) => Ok(()),
            other => Err(StoreError::Unavailable(format!(
                "cannot delete table {name}: {}",
                DisplayErrorContext(other)
            ))),
        },
    }
}

fn yaml_key_schema(out: &mut String, indent: &str, partition_key: &str, sort_key: Option<&str>) {
    let _ = writeln!(out, "{indent}KeySchema:");
    let _ = writeln!(out, "{indent}  - AttributeName: {partition_key}");
    let _ = writeln!(out, "{indent}    KeyType: HASH");
    if let Some(sort_key) = sort_key {
        let _ = writeln!(out, "{indent}  - AttributeName: {sort_key}");
        let _ = writeln!(out, "{indent}    KeyType: RANGE");
    }
}

/// The `SessionsTable` resource as it appears under `Resources:` in
/// `infra/template.yaml` (two-space indented, newline-terminated).
///
/// Beyond what [`create_table`] sets, the deployed table is retained when the
/// stack is deleted or the resource replaced, and keeps point-in-time
/// backups: it holds every tenant's verification records, which a stack
/// operation must never be able to erase.
pub fn cloudformation_yaml() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "  {LOGICAL_ID}:");
    let _ = writeln!(out, "    Type: AWS::DynamoDB::Table");
    let _ = writeln!(out, "    DeletionPolicy: Retain");
    let _ = writeln!(out, "    UpdateReplacePolicy: Retain");
    let _ = writeln!(out, "    Properties:");
    let _ = writeln!(out, "      BillingMode: PAY_PER_REQUEST");
    let _ = writeln!(out, "      AttributeDefinitions:");
    for attribute in key_attributes() {
        let _ = writeln!(out, "        - AttributeName: {attribute}");
        let _ = writeln!(out, "          AttributeType: S");
    }
    yaml_key_schema(&mut out, "      ", PARTITION_KEY, Some(SORT_KEY));
    let _ = writeln!(out, "      GlobalSecondaryIndexes:");
    for index in INDEXES {
        let _ = writeln!(out, "        - IndexName: {}", index.name);
        yaml_key_schema(&mut out, "          ", index.partition_key, index.sort_key);
        let _ = writeln!(out, "          Projection:");
        let _ = writeln!(out, "            ProjectionType: {}", index.projection.kind().as_str());
        if let Projection::Include(attributes) = index.projection {
            let _ = writeln!(out, "            NonKeyAttributes:");
            for attribute in attributes {
                let _ = writeln!(out, "              - {attribute}");
            }
        }
    }
    let _ = writeln!(out, "      TimeToLiveSpecification:");
    let _ = writeln!(out, "        AttributeName: {TTL_ATTRIBUTE}");
    let _ = writeln!(out, "        Enabled: true");
    let _ = writeln!(out, "      StreamSpecification:");
    let _ = writeln!(out, "        StreamViewType: NEW_AND_OLD_IMAGES");
    let _ = writeln!(out, "      PointInTimeRecoverySpecification:");
    let _ = writeln!(out, "        PointInTimeRecoveryEnabled: true");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml"))
            .expect("infra/template.yaml")
    }

    #[test]
    fn the_template_declares_the_table_as_defined_here() {
        let block = cloudformation_yaml();
        let template = template();
        assert!(
            template.contains(&format!("\n\n{block}\n")),
            "infra/template.yaml must contain this block verbatim, between blank lines:\n\n{block}"
        );
        assert_eq!(template.matches("Type: AWS::DynamoDB::Table").count(), 1);
    }

    #[test]
    fn the_functions_are_told_the_table_name() {
        let template = template();
        let globals = &template[..template.find("\nResources:").expect("a Resources section")];
        assert!(globals.contains(&format!("        SESSIONS_TABLE: !Ref {LOGICAL_ID}\n")));
    }

    #[test]
    fn each_index_keeps_what_its_readers_need() {
        // The listings read the summary and filter on the status.
        for index in [BY_ORG, BY_USER, BY_STATUS] {
            assert_eq!(
                index.projection,
                Projection::Include(&[SUMMARY, STATUS]),
                "{}",
                index.name
            );
        }
        // The end user's read stays one request.
        assert_eq!(BY_TOKEN.projection, Projection::All);
        // The sweep reads the due sessions from the table.
        assert_eq!(DUE.projection, Projection::KeysOnly);
    }

    #[test]
    fn every_key_attribute_is_defined_once() {
        let names = key_attributes();
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(names.len(), 11);
    }
}
