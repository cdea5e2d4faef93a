//! Tables as data over DynamoDB: DescribeTable read into a [`TableShape`], the verifier's own tables
//! created from their [`Layout`] (one definition: `ports::checkpoint::CHECKPOINT_LAYOUT`,
//! `ports::findings::FINDINGS_LAYOUT`), and [`ensure`], what `ddb-verify init` does to one of them.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    Projection, ProjectionType, ScalarAttributeType, SseSpecification, TableDescription,
    TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::ports::layout::{
    IndexShape, KeyPart, KeySchema, Layout, ReadCapacity, StreamShape, TableShape,
};

/// How long [`ensure`] waits for a table it created (or found being created) to become ACTIVE.
const ACTIVE_WITHIN: Duration = Duration::from_secs(300);

/// A failed call, in words: the service's code and message, or the error's chain (a network
/// failure, a time-out, credentials that could not be had), without the SDK's debug dump.
pub fn call_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    error: &SdkError<E, HttpResponse>,
) -> String {
    match error.as_service_error() {
        Some(e) => match (e.code(), e.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => crate::shared::error_chain(error),
        },
        None => crate::shared::error_chain(error),
    }
}

/// The service's error code, if the service answered.
pub fn error_code<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> Option<&str> {
    error.as_service_error().and_then(|e| e.code())
}

fn key_schema(elements: &[KeySchemaElement], types: &dyn Fn(&str) -> String) -> Option<KeySchema> {
    let part = |kind: KeyType| {
        elements
            .iter()
            .find(|e| e.key_type == kind)
            .map(|e| KeyPart {
                name: e.attribute_name.clone(),
                attribute_type: types(&e.attribute_name),
            })
    };
    Some(KeySchema {
        partition: part(KeyType::Hash)?,
        sort: part(KeyType::Range),
    })
}

/// `ALL`, `KEYS_ONLY`, or `INCLUDE (a, b)`: two INCLUDE indexes of other attributes differ.
fn projection(p: Option<&Projection>) -> String {
    let kind = p
        .and_then(|p| p.projection_type.as_ref())
        .map_or("ALL", |t| t.as_str());
    let mut included: Vec<&str> = p
        .map(|p| p.non_key_attributes().iter().map(String::as_str).collect())
        .unwrap_or_default();
    included.sort_unstable();
    match included.is_empty() {
        true => kind.to_string(),
        false => format!("{kind} ({})", included.join(", ")),
    }
}

/// A described table as data; `None` when it has no key schema (never, from DynamoDB).
pub fn shape_of(t: &TableDescription) -> Option<TableShape> {
    let definitions = t.attribute_definitions();
    let types = |name: &str| {
        definitions
            .iter()
            .find(|d| d.attribute_name == name)
            .map_or("?", |d| d.attribute_type.as_str())
            .to_string()
    };
    let mut indexes: Vec<IndexShape> = Vec::new();
    for i in t.global_secondary_indexes() {
        indexes.extend(key_schema(i.key_schema(), &types).map(|keys| IndexShape {
            name: i.index_name.clone().unwrap_or_default(),
            global: true,
            keys,
            projection: projection(i.projection.as_ref()),
        }));
    }
    for i in t.local_secondary_indexes() {
        indexes.extend(key_schema(i.key_schema(), &types).map(|keys| IndexShape {
            name: i.index_name.clone().unwrap_or_default(),
            global: false,
            keys,
            projection: projection(i.projection.as_ref()),
        }));
    }
    indexes.sort_by(|a, b| a.name.cmp(&b.name));
    let enabled = t.stream_specification.as_ref().filter(|s| s.stream_enabled);
    let stream = enabled
        .zip(t.latest_stream_arn.as_ref())
        .map(|(s, arn)| StreamShape {
            arn: arn.clone(),
            view_type: s
                .stream_view_type
                .as_ref()
                .map_or("?", |v| v.as_str())
                .to_string(),
        });
    Some(TableShape {
        arn: t.table_arn.clone(),
        status: t
            .table_status
            .as_ref()
            .map_or("?", |s| s.as_str())
            .to_string(),
        created_ms: t.creation_date_time.and_then(|d| d.to_millis().ok()),
        keys: key_schema(t.key_schema(), &types)?,
        indexes,
        stream,
        read_capacity: read_capacity(t),
        replica_regions: t
            .replicas()
            .iter()
            .filter_map(|r| r.region_name.clone())
            .collect(),
        global_table_version: t.global_table_version.clone(),
    })
}

fn read_capacity(t: &TableDescription) -> ReadCapacity {
    let on_demand = t
        .billing_mode_summary
        .as_ref()
        .and_then(|b| b.billing_mode.as_ref())
        == Some(&BillingMode::PayPerRequest);
    if on_demand {
        let max = t
            .on_demand_throughput
            .as_ref()
            .and_then(|o| o.max_read_request_units);
        return ReadCapacity::OnDemand {
            max_read_units: max.filter(|m| *m > 0),
        };
    }
    let read_units = t
        .provisioned_throughput
        .as_ref()
        .and_then(|p| p.read_capacity_units)
        .unwrap_or(0);
    ReadCapacity::Provisioned { read_units }
}

/// DescribeTable, as data; the error in words.
pub async fn describe(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<TableShape, String> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| call_error(&e))?;
    out.table
        .as_ref()
        .and_then(shape_of)
        .ok_or_else(|| "DescribeTable answered without the table's key schema".to_string())
}

fn scalar(attribute_type: &str) -> ScalarAttributeType {
    ScalarAttributeType::from(attribute_type)
}

/// Creates `table` with `layout`'s keys and indexes, on demand (CreateTable only: TTL and
/// point-in-time recovery are [`ensure`]'s, as they need the table ACTIVE).
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    layout: &Layout,
) -> Result<(), aws_sdk_dynamodb::Error> {
    let key = super::key_element;
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        // As the template's SSEEnabled: the AWS-managed KMS key.
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .key_schema(key(layout.partition.0, KeyType::Hash));
    if let Some((name, _)) = layout.sort {
        request = request.key_schema(key(name, KeyType::Range));
    }
    for (name, kind) in layout.attributes() {
        request = request.attribute_definitions(super::attribute_definition(name, scalar(kind)));
    }
    for index in layout.indexes {
        let mut gsi = GlobalSecondaryIndex::builder()
            .index_name(index.name)
            .key_schema(key(index.partition.0, KeyType::Hash))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            );
        if let Some((name, _)) = index.sort {
            gsi = gsi.key_schema(key(name, KeyType::Range));
        }
        request = request
            .global_secondary_indexes(gsi.build().expect("name, keys and projection are set"));
    }
    request.send().await?;
    Ok(())
}

/// What [`ensure`] did about one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// The layout does not ask for it.
    NotNeeded,
    AlreadyOn,
    TurnedOn,
    /// The endpoint has no such operation (DynamoDB Local has no point-in-time recovery): said, not
    /// an error.
    Unsupported(String),
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Setting::NotNeeded => f.write_str("not used"),
            Setting::AlreadyOn => f.write_str("on"),
            Setting::TurnedOn => f.write_str("turned on"),
            Setting::Unsupported(why) => write!(f, "not supported by this endpoint ({why})"),
        }
    }
}

/// What [`ensure`] found or made of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured {
    pub created: bool,
    pub time_to_live: Setting,
    pub point_in_time_recovery: Setting,
}

/// `ddb-verify init` for one table: creates it from `layout` when absent (and waits for it), refuses
/// one of another layout, then turns on its TTL and point-in-time recovery where they are off.
/// Idempotent. Errors are in words, naming the table and the call.
pub async fn ensure(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    layout: &Layout,
) -> Result<Ensured, String> {
    let found = client.describe_table().table_name(table).send().await;
    let created = match found {
        Ok(out) => {
            let shape = out.table.as_ref().and_then(shape_of).ok_or_else(|| {
                format!("DescribeTable on {table} answered without its key schema")
            })?;
            let differences = layout.differences(&shape);
            if !differences.is_empty() {
                return Err(format!(
                    "{} {table} exists but is not a {} ({}): set {} to another name, or delete the table",
                    layout.variable,
                    layout.what,
                    differences.join("; "),
                    layout.variable
                ));
            }
            false
        }
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => {
            match create_table(client, table, layout).await {
                Ok(()) => true,
                // Created meanwhile by someone else: checked as an existing table next time.
                Err(aws_sdk_dynamodb::Error::ResourceInUseException(_)) => {
                    return Err(format!(
                        "{table} was being created by someone else meanwhile: run `ddb-verify init` again to check it"
                    ))
                }
                Err(e) => {
                    return Err(format!(
                        "CreateTable {table}: {}",
                        crate::shared::error_chain(&e)
                    ))
                }
            }
        }
        Err(e) => return Err(format!("DescribeTable on {table}: {}", call_error(&e))),
    };
    wait_active(client, table).await?;
    Ok(Ensured {
        created,
        time_to_live: time_to_live(client, table, layout.ttl_attribute).await?,
        point_in_time_recovery: match layout.point_in_time_recovery {
            true => point_in_time_recovery(client, table).await?,
            false => Setting::NotNeeded,
        },
    })
}

/// Waits until the table and its indexes are ACTIVE.
async fn wait_active(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), String> {
    let started = std::time::Instant::now();
    loop {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| format!("DescribeTable on {table}: {}", call_error(&e)))?;
        let t = out
            .table
            .unwrap_or_else(|| TableDescription::builder().build());
        let indexes_active = t.global_secondary_indexes().iter().all(|i| {
            i.index_status
                .as_ref()
                .is_none_or(|s| s.as_str() == "ACTIVE")
        });
        if t.table_status == Some(TableStatus::Active) && indexes_active {
            return Ok(());
        }
        if started.elapsed() > ACTIVE_WITHIN {
            return Err(format!(
                "{table} is not ACTIVE after {} s (status {:?}); run `ddb-verify init` again later",
                ACTIVE_WITHIN.as_secs(),
                t.table_status
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn time_to_live(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    attribute: Option<&str>,
) -> Result<Setting, String> {
    let Some(attribute) = attribute else {
        return Ok(Setting::NotNeeded);
    };
    let described = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await;
    let current = match described {
        Ok(out) => out.time_to_live_description,
        Err(e) if error_code(&e) == Some("UnknownOperationException") => {
            return Ok(Setting::Unsupported(call_error(&e)))
        }
        Err(e) => return Err(format!("DescribeTimeToLive on {table}: {}", call_error(&e))),
    };
    let status = current.as_ref().and_then(|d| d.time_to_live_status.clone());
    let name = current.as_ref().and_then(|d| d.attribute_name.as_deref());
    match status {
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) if name == Some(attribute) => {
            return Ok(Setting::AlreadyOn)
        }
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => {
            return Err(format!(
                "{table} has TTL on {:?}, not on {attribute}: turn it off (aws dynamodb update-time-to-live) and run `ddb-verify init` again",
                name.unwrap_or_default()
            ))
        }
        _ => {}
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(attribute)
        .enabled(true)
        .build()
        .expect("name and flag are set");
    match client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
    {
        Ok(_) => Ok(Setting::TurnedOn),
        Err(e) if error_code(&e) == Some("UnknownOperationException") => {
            Ok(Setting::Unsupported(call_error(&e)))
        }
        Err(e) => Err(format!("UpdateTimeToLive on {table}: {}", call_error(&e))),
    }
}

async fn point_in_time_recovery(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Setting, String> {
    match point_in_time_recovery_on(client, table).await {
        Ok(true) => return Ok(Setting::AlreadyOn),
        Ok(false) => {}
        Err(e) if e.starts_with("UnknownOperationException") => return Ok(Setting::Unsupported(e)),
        Err(e) => return Err(format!("DescribeContinuousBackups on {table}: {e}")),
    }
    let spec = PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(true)
        .build()
        .expect("the flag is set");
    match client
        .update_continuous_backups()
        .table_name(table)
        .point_in_time_recovery_specification(spec)
        .send()
        .await
    {
        Ok(_) => Ok(Setting::TurnedOn),
        Err(e) if error_code(&e) == Some("UnknownOperationException") => {
            Ok(Setting::Unsupported(call_error(&e)))
        }
        Err(e) => Err(format!(
            "UpdateContinuousBackups on {table}: {}",
            call_error(&e)
        )),
    }
}

/// Whether point-in-time recovery is on (DescribeContinuousBackups); the error in words.
pub async fn point_in_time_recovery_on(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<bool, String> {
    let out = client
        .describe_continuous_backups()
        .table_name(table)
        .send()
        .await
        .map_err(|e| call_error(&e))?;
    Ok(out
        .continuous_backups_description
        .and_then(|d| d.point_in_time_recovery_description)
        .and_then(|p| p.point_in_time_recovery_status)
        .is_some_and(|s| s.as_str() == "ENABLED"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_include_projection_names_its_attributes_in_order() {
        let include = Projection::builder()
            .projection_type(ProjectionType::Include)
            .non_key_attributes("total")
            .non_key_attributes("status")
            .build();
        assert_eq!(projection(Some(&include)), "INCLUDE (status, total)");
        let all = Projection::builder()
            .projection_type(ProjectionType::All)
            .build();
        assert_eq!(projection(Some(&all)), "ALL");
        assert_eq!(projection(None), "ALL");
    }
}
