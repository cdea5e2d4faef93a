//! Table set-up on DynamoDB Local, shared by the tests, the benches and the demo.

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use thiserror::Error;

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
}

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
