//! [`TableScanner`] over DynamoDB: Scan (parallel, with consumed capacity) and DescribeTable.

use aws_sdk_dynamodb::operation::scan::{Scan, ScanOutput};
use aws_sdk_dynamodb::types::{KeyType, ReturnConsumedCapacity};
use aws_smithy_runtime_api::client::interceptors::context::Output;

use super::answers::ByteReader;
use super::DynamoDbCallError;
use crate::ports::scan::{ScanError, ScanPage, ScanRequest, TableScanner, TableShape};
use crate::record::json::Reader;
use crate::record::Image;

/// A Scan answer's body read by the byte reader; `None` if it declines any of it (the SDK's
/// decoder reads it then).
fn read_page(json: &[u8]) -> Option<ScanPage> {
    let mut r = Reader::new(json)?;
    let mut page = ScanPage::default();
    r.object(|r, field| match &*field {
        "Items" => r
            .array(|r| r.item_tape().map(|item| page.items.push(Image::Tape(item))))
            .map(drop),
        "LastEvaluatedKey" => {
            page.last_evaluated_key = Some(r.item_sdk()?).filter(|k| !k.is_empty());
            Some(())
        }
        "ConsumedCapacity" => r.object(|r, field| match &*field {
            "CapacityUnits" => {
                page.consumed_read_units = r.number()?.parse().ok()?;
                Some(())
            }
            _ => r.skip(2),
        }),
        _ => r.skip(1),
    })?;
    r.peek().is_none().then_some(page)
}

/// [`TableScanner`] over an `aws_sdk_dynamodb::Client`. Its pages' items are read onto tapes by the
/// byte reader (`aws::answers`), as BatchGetItem's are.
#[derive(Debug, Clone)]
pub struct DynamoDbScanner {
    client: aws_sdk_dynamodb::Client,
    pages: ByteReader,
}

impl DynamoDbScanner {
    pub fn new(client: aws_sdk_dynamodb::Client) -> DynamoDbScanner {
        DynamoDbScanner {
            client,
            pages: ByteReader::new(&Scan::new(), || {
                Output::erase(ScanOutput::builder().build())
            }),
        }
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
        let (interceptor, slot) = self.pages.for_call(read_page);
        let out = call
            .customize()
            .interceptor(interceptor)
            .send()
            .await
            .map_err(|e| service_error("Scan", table, e))?;
        if let Some(page) = slot.take() {
            return Ok(page);
        }
        Ok(ScanPage {
            items: out
                .items
                .unwrap_or_default()
                .into_iter()
                .map(Image::Item)
                .collect(),
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
        let definitions = description.attribute_definitions.unwrap_or_default();
        let key_types = key_names
            .iter()
            .map(|name| {
                definitions
                    .iter()
                    .find(|d| &d.attribute_name == name)
                    .map(|d| d.attribute_type.as_str().to_string())
                    .unwrap_or_default()
            })
            .collect();
        Ok(TableShape {
            key_names,
            key_types,
            item_count: description.item_count.map(|n| n.max(0) as u64),
        })
    }
}

fn service_error(operation: &'static str, table: &str, e: impl DynamoDbCallError) -> ScanError {
    ScanError::Service(e.failure(operation, format!("table {table}")))
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue as V;

    use super::*;

    #[test]
    fn a_scan_page_is_read_onto_tapes_with_its_last_key_and_capacity() {
        let json = br#"{"ConsumedCapacity":{"CapacityUnits":2.5,"TableName":"T"},"Count":2,
            "Items":[{"pk":{"S":"a"},"n":{"N":"1"}},{"pk":{"S":"b"}}],"LastEvaluatedKey":{"pk":{"S":"b"}},"ScannedCount":2}"#;
        let page = read_page(json).expect("read");
        assert_eq!(page.consumed_read_units, 2.5);
        assert!(page.items.iter().all(|i| matches!(i, Image::Tape(_))));
        assert_eq!(page.items[0].item()["n"], V::N("1".into()));
        assert_eq!(
            page.last_evaluated_key,
            Some([("pk".to_string(), V::S("b".into()))].into())
        );
        // The end of a segment: no key, or an empty one.
        for end in [r#"{"Items":[]}"#, r#"{"Items":[],"LastEvaluatedKey":{}}"#] {
            let page = read_page(end.as_bytes()).expect("read");
            assert!(page.items.is_empty() && page.last_evaluated_key.is_none());
        }
        for declined in [
            r#"{"Items":[{"v":{"VECTOR":"x"}}]}"#,
            r#"{"Items":null}"#,
            r#"{"Items":[]} x"#,
        ] {
            assert!(read_page(declined.as_bytes()).is_none(), "{declined}");
        }
    }
}
