//! [`TableScanner`] over DynamoDB: Scan (parallel, with consumed capacity) and DescribeTable.

use aws_sdk_dynamodb::types::{KeyType, ReturnConsumedCapacity};

use super::DynamoDbCallError;
use crate::source::scan::{ScanError, ScanPage, ScanRequest, TableScanner, TableShape};

/// [`TableScanner`] over an `aws_sdk_dynamodb::Client`.
#[derive(Debug, Clone)]
pub struct DynamoDbScanner {
    client: aws_sdk_dynamodb::Client,
}

impl DynamoDbScanner {
    pub fn new(client: aws_sdk_dynamodb::Client) -> DynamoDbScanner {
        DynamoDbScanner { client }
    }
}

impl TableScanner for DynamoDbScanner {
    async fn scan(&self, request: ScanRequest<'_>) -> Result<ScanPage, ScanError> {
        let table = request.table;
        let mut call = self
            .client
            .scan()
            .table_name(table)
            .segment(request.segment as i32)
            .total_segments(request.total_segments as i32)
            .set_exclusive_start_key(request.start_key)
            .set_limit(request.limit.map(|n| n as i32))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        if let Some(names) = request.attributes {
            // Placeholders, so that no attribute name collides with a reserved word.
            let mut projection = Vec::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                let placeholder = format!("#k{i}");
                call = call.expression_attribute_names(&placeholder, name);
                projection.push(placeholder);
            }
            call = call.projection_expression(projection.join(", "));
        }
        let out = call
            .send()
            .await
            .map_err(|e| service_error("Scan", table, e))?;
        Ok(ScanPage {
            items: out.items.unwrap_or_default(),
            last_evaluated_key: out.last_evaluated_key.filter(|k| !k.is_empty()),
            consumed_read_units: out
                .consumed_capacity
                .and_then(|c| c.capacity_units)
                .unwrap_or_default(),
        })
    }

    async fn describe(&self, table: &str) -> Result<TableShape, ScanError> {
        let out = self
            .client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| service_error("DescribeTable", table, e))?;
        let no_schema = || ScanError::NoKeySchema {
            table: table.to_string(),
        };
        let description = out.table.ok_or_else(no_schema)?;
        let mut keys = description.key_schema.unwrap_or_default();
        // The partition key first.
        keys.sort_by_key(|k| k.key_type != KeyType::Hash);
        let key_names: Vec<String> = keys.into_iter().map(|k| k.attribute_name).collect();
        if key_names.is_empty() {
            return Err(no_schema());
        }
        Ok(TableShape {
            key_names,
            item_count: description.item_count.map(|n| n.max(0) as u64),
        })
    }
}

fn service_error(operation: &'static str, table: &str, e: impl DynamoDbCallError) -> ScanError {
    ScanError::Service {
        operation,
        table: table.to_string(),
        transient: e.is_transient(),
        source: Box::new(e.into()),
    }
}
