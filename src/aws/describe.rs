//! DescribeTable for what the functions find at run time: the table's current stream (the poller
//! with `SOURCE_TABLE_NAME`, readiness's stream check).

use aws_smithy_types::error::display::DisplayErrorContext;

use crate::config::StreamSelector;
use crate::ports::stream::StreamError;

/// Finds the stream the poller reads (`STREAM_ARN`, or `SOURCE_TABLE_NAME`'s current stream).
pub struct StreamLocator {
    selector: StreamSelector,
    client: aws_sdk_dynamodb::Client,
}

impl StreamLocator {
    pub fn new(selector: StreamSelector, client: aws_sdk_dynamodb::Client) -> StreamLocator {
        StreamLocator { selector, client }
    }

    /// The configured ARN, or the table's current stream (looked up every run: a stream disabled
    /// and enabled again gets a new ARN).
    pub async fn stream_arn(&self) -> Result<String, StreamError> {
        match &self.selector {
            StreamSelector::Arn(arn) => Ok(arn.clone()),
            StreamSelector::SourceTable(table) => latest_stream_arn(&self.client, table).await,
        }
    }
}

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

/// The table's stream now: `Ok(Some(arn))` when enabled, `Ok(None)` when not, or why DescribeTable
/// could not tell.
pub async fn enabled_stream(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Option<String>, String> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| format!("DescribeTable on {table}: {}", DisplayErrorContext(&e)))?;
    let Some(table) = out.table else {
        return Ok(None);
    };
    let enabled = table
        .stream_specification
        .as_ref()
        .is_some_and(|s| s.stream_enabled);
    Ok(table.latest_stream_arn.filter(|_| enabled))
}
