//! [`TableReader`] over DynamoDB: one BatchGetItem per call, sent and decoded on a task of its own.

use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnConsumedCapacity};

use super::Spawned;
use crate::record::Image;
use crate::source::table::{BatchGet, BatchGetOutput, LookupError, TableReader};

/// [`TableReader`] over an `aws_sdk_dynamodb::Client`.
#[derive(Debug, Clone)]
pub struct DynamoDbReader {
    client: aws_sdk_dynamodb::Client,
}

impl DynamoDbReader {
    pub fn new(client: aws_sdk_dynamodb::Client) -> DynamoDbReader {
        DynamoDbReader { client }
    }
}

impl TableReader for DynamoDbReader {
    async fn batch_get(&self, request: BatchGet<'_>) -> Result<BatchGetOutput, LookupError> {
        let BatchGet {
            table,
            keys,
            consistent_read,
        } = request;
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(consistent_read)
            .build()
            .map_err(|source| LookupError::Request {
                table: table.to_string(),
                source,
            })?;
        // Its own task: decoding an answer of 100 items is most of a call's CPU, and the caller
        // (one task for all of a batch's calls) would otherwise decode its answers one at a time,
        // holding back the calls it has yet to start.
        let send = self
            .client
            .batch_get_item()
            .request_items(table, request)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send();
        let output = Spawned::spawn(send)
            .await
            .map_err(|source| LookupError::Task {
                table: table.to_string(),
                source,
            })?
            .map_err(|source| LookupError::BatchGetItem {
                table: table.to_string(),
                source: Box::new(source),
            })?;
        let mut out = BatchGetOutput {
            consumed_read_units: output
                .consumed_capacity
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c.capacity_units)
                .sum(),
            ..BatchGetOutput::default()
        };
        // Fail closed: an answer under a table key this request did not use is an error, never
        // an absent item.
        for (answered, items) in output.responses.unwrap_or_default() {
            check_table(table, &answered)?;
            out.items.extend(items.into_iter().map(Image::Item));
        }
        for (answered, keys) in output.unprocessed_keys.unwrap_or_default() {
            check_table(table, &answered)?;
            out.unprocessed.extend(keys.keys);
        }
        Ok(out)
    }
}

/// Whether an answer's table key is the requested table: the same text, or the same table named
/// once by its name and once by its ARN (`arn:...:table/NAME`).
fn check_table(requested: &str, answered: &str) -> Result<(), LookupError> {
    let name = |t: &str| match t.strip_prefix("arn:") {
        Some(_) => t
            .split_once(":table/")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default().to_string()),
        None => Some(t.to_string()),
    };
    let same = requested == answered
        || (name(requested).is_some() && name(requested) == name(answered)
            // Two different ARNs of one name (another account or region) are different tables.
            && !(requested.starts_with("arn:") && answered.starts_with("arn:")));
    if same {
        Ok(())
    } else {
        Err(LookupError::Unmatched {
            table: requested.to_string(),
            what: format!("table key {answered:?}"),
        })
    }
}
