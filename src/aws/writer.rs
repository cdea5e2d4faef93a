//! [`TableWriter`] over DynamoDB: one PutItem or DeleteItem on a condition, for `ddb-verify
//! repair`. A failed condition (ConditionalCheckFailedException) is an answer, not an error.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::DynamoDbCallError;
use crate::ports::table::{ConditionalWrite, TableWriter, WriteAction, WriteError, WriteOutcome};

/// [`TableWriter`] over an `aws_sdk_dynamodb::Client` (the other account's, with write access:
/// `REPAIR_ROLE_ARN`).
#[derive(Debug, Clone)]
pub struct DynamoDbWriter {
    client: aws_sdk_dynamodb::Client,
}

impl DynamoDbWriter {
    pub fn new(client: aws_sdk_dynamodb::Client) -> DynamoDbWriter {
        DynamoDbWriter { client }
    }
}

fn units(capacity: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) -> f64 {
    capacity.and_then(|c| c.capacity_units).unwrap_or(0.0)
}

fn condition_failed<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

/// A write's answer as the port says it: written (with the units it consumed), a failed condition
/// (an answer, not an error), or the call's failure, classified.
fn outcome<E>(
    sent: Result<f64, SdkError<E, HttpResponse>>,
    operation: &'static str,
    on: String,
) -> Result<WriteOutcome, WriteError>
where
    E: ProvideErrorMetadata,
    aws_sdk_dynamodb::Error: From<SdkError<E, HttpResponse>>,
{
    match sent {
        Ok(consumed_write_units) => Ok(WriteOutcome::Written {
            consumed_write_units,
        }),
        Err(e) if e.as_service_error().is_some_and(condition_failed) => {
            Ok(WriteOutcome::ConditionFailed {
                consumed_write_units: 0.0,
            })
        }
        Err(e) => Err(WriteError::Service(e.failure(operation, on))),
    }
}

impl TableWriter for DynamoDbWriter {
    async fn write(&self, write: ConditionalWrite<'_>) -> Result<WriteOutcome, WriteError> {
        let ConditionalWrite {
            table,
            action,
            condition,
        } = write;
        let on = format!("table {table}");
        let (names, values) = (
            Some(condition.names),
            Some(condition.values).filter(|v| !v.is_empty()),
        );
        match action {
            WriteAction::Put(item) => {
                let sent = self
                    .client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(item))
                    .condition_expression(condition.text)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await;
                let sent = sent.map(|out| units(out.consumed_capacity()));
                outcome(sent, "PutItem", on)
            }
            WriteAction::Delete(key) => {
                let sent = self
                    .client
                    .delete_item()
                    .table_name(table)
                    .set_key(Some(key))
                    .condition_expression(condition.text)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await;
                let sent = sent.map(|out| units(out.consumed_capacity()));
                outcome(sent, "DeleteItem", on)
            }
        }
    }
}
