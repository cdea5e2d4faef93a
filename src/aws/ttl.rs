//! [`TimeToLive`] over DynamoDB: DescribeTimeToLive.

use aws_sdk_dynamodb::types::TimeToLiveStatus;

use super::classify;
use crate::ports::ttl::{TimeToLive, TtlError};

#[derive(Debug, Clone)]
pub struct DynamoDbTimeToLive {
    client: aws_sdk_dynamodb::Client,
}

impl DynamoDbTimeToLive {
    pub fn new(client: aws_sdk_dynamodb::Client) -> DynamoDbTimeToLive {
        DynamoDbTimeToLive { client }
    }
}

impl TimeToLive for DynamoDbTimeToLive {
    async fn ttl_attribute(&self, table: &str) -> Result<Option<String>, TtlError> {
        let out = self
            .client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(|e| TtlError::Service {
                table: table.to_string(),
                kind: classify(&e),
                source: e.into(),
            })?;
        let Some(description) = out.time_to_live_description else {
            return Ok(None);
        };
        // While disabling, DynamoDB may still delete by the attribute; while enabling, it may
        // already: either way an expired item's absence can be DynamoDB's doing.
        let deletes = !matches!(
            description.time_to_live_status,
            None | Some(TimeToLiveStatus::Disabled)
        );
        Ok(description.attribute_name.filter(|_| deletes))
    }
}
