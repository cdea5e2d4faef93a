//! Table set-up on DynamoDB Local, shared by the tests, the benches and the demo.

use aws_sdk_dynamodb::error::BuildError;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PutRequest, ScalarAttributeType,
    StreamSpecification, StreamViewType, WriteRequest,
};
use thiserror::Error;

use ddb_verify::record::Item;

#[derive(Debug, Error)]
pub enum SetupError {
    #[error("CreateTable request for {table} could not be built")]
    Request {
        table: String,
        #[source]
        source: BuildError,
    },
    #[error("CreateTable {table} failed")]
    CreateTable {
        table: String,
        #[source]
        source: Box<aws_sdk_dynamodb::Error>,
    },
    #[error("a put request for {table} could not be built")]
    PutRequest {
        table: String,
        #[source]
        source: BuildError,
    },
    #[error("BatchWriteItem to {table} failed")]
    BatchWrite {
        table: String,
        #[source]
        source: Box<aws_sdk_dynamodb::Error>,
    },
    #[error("BatchWriteItem to {table} left {left} writes unprocessed after {attempts} attempts")]
    Unprocessed {
        table: String,
        left: usize,
        attempts: u32,
    },
}

/// BatchWriteItem takes at most 25 writes a call.
const BATCH_WRITE_LIMIT: usize = 25;
/// Calls per chunk before unprocessed writes fail the set-up (DynamoDB Local processes them all).
const BATCH_WRITE_ATTEMPTS: u32 = 5;

/// The demo's and the benches' `Orders` key: `customerId` (S) and `orderId` (N).
pub const ORDER_KEYS: &[(&str, ScalarAttributeType)] = &[
    ("customerId", ScalarAttributeType::S),
    ("orderId", ScalarAttributeType::N),
];

/// Creates an on-demand table keyed by `keys` (partition key first, then the sort key), with a
/// stream of `stream` when given; returns its stream ARN.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: &[(&str, ScalarAttributeType)],
    stream: Option<StreamViewType>,
) -> Result<Option<String>, SetupError> {
    let built = |source| SetupError::Request {
        table: table.to_string(),
        source,
    };
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest);
    for (i, (attribute, kind)) in keys.iter().enumerate() {
        let key_type = if i == 0 {
            KeyType::Hash
        } else {
            KeyType::Range
        };
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(*attribute)
                    .attribute_type(kind.clone())
                    .build()
                    .map_err(built)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(*attribute)
                    .key_type(key_type)
                    .build()
                    .map_err(built)?,
            );
    }
    if let Some(view) = stream {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(view)
                .build()
                .map_err(built)?,
        );
    }
    let out = request.send().await.map_err(|e| SetupError::CreateTable {
        table: table.to_string(),
        source: Box::new(e.into()),
    })?;
    Ok(out.table_description.and_then(|d| d.latest_stream_arn))
}

/// Deletes the table if an earlier run left it, then creates it as [`create_table`] does.
pub async fn recreate_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: &[(&str, ScalarAttributeType)],
    stream: Option<StreamViewType>,
) -> Result<Option<String>, SetupError> {
    // Absent is fine: there is nothing to delete.
    let _ = client.delete_table().table_name(table).send().await;
    create_table(client, table, keys, stream).await
}

/// Puts `items` into `table` with BatchWriteItem, 25 a call; writes the service leaves unprocessed
/// are sent again, a few times with a short pause, then fail.
pub async fn write_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    items: &[Item],
) -> Result<(), SetupError> {
    for chunk in items.chunks(BATCH_WRITE_LIMIT) {
        let mut writes = chunk
            .iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item.clone()))
                    .build()
                    .map_err(|source| SetupError::PutRequest {
                        table: table.to_string(),
                        source,
                    })?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, SetupError>>()?;
        let mut attempts = 0;
        while !writes.is_empty() {
            if attempts == BATCH_WRITE_ATTEMPTS {
                return Err(SetupError::Unprocessed {
                    table: table.to_string(),
                    left: writes.len(),
                    attempts,
                });
            }
            if attempts > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempts)).await;
            }
            attempts += 1;
            let request = client.batch_write_item().request_items(table, writes);
            let out = request.send().await.map_err(|e| SetupError::BatchWrite {
                table: table.to_string(),
                source: Box::new(e.into()),
            })?;
            writes = out
                .unprocessed_items
                .and_then(|mut left| left.remove(table))
                .unwrap_or_default();
        }
    }
    Ok(())
}

/// One simulated account on DynamoDB Local (`endpoint`): its access key id is the account, as
/// DynamoDB Local keeps a database per access key id and region.
pub fn local_account_config(endpoint: &str, access_key: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(access_key, "secret", None, None, "local"),
            ),
        )
        .build()
}
