//! Every AWS SDK call: clients for both accounts, and the adapters behind the read seams
//! ([`crate::source`]).

pub mod checkpoints;
pub mod clients;
pub mod reader;
pub mod streams;

use aws_smithy_types::error::display::DisplayErrorContext;

use crate::config::StreamSelector;
use crate::source::stream::StreamError;

/// The table's current stream ARN, for `SOURCE_TABLE_NAME`.
pub async fn latest_stream_arn(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<String, StreamError> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| StreamError::NotFound {
            stream_arn: format!("of table {table} ({})", DisplayErrorContext(&e)),
        })?;
    out.table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| StreamError::NotFound {
            stream_arn: format!("of table {table} (the table has no stream enabled)"),
        })
}

/// The stream to read: the configured ARN, or the table's current stream (looked up every run: a
/// stream disabled and enabled again gets a new ARN).
pub async fn stream_arn(
    selector: &StreamSelector,
    client: &aws_sdk_dynamodb::Client,
) -> Result<String, StreamError> {
    match selector {
        StreamSelector::Arn(arn) => Ok(arn.clone()),
        StreamSelector::SourceTable(table) => latest_stream_arn(client, table).await,
    }
}
