//! [`TableReader`] over DynamoDB: one BatchGetItem per call, sent and decoded on a task of its own.
//!
//! The answer's items are read by the byte reader onto tapes (`aws::answers`), not decoded by the
//! SDK into its trees: the SDK's items cost about as much CPU again as the rest of a record's
//! verification (docs/benchmarks-log.md, "The other side's answers on tapes").

use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItem, BatchGetItemOutput};
use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnConsumedCapacity};
use aws_smithy_runtime_api::client::interceptors::context::Output;

use super::answers::ByteReader;
use super::classify;
use super::Spawned;
use crate::ports::table::{BatchGet, BatchGetOutput, LookupError, TableReader};
use crate::record::json::Reader;
use crate::record::{Image, Item, Tape};

/// [`TableReader`] over an `aws_sdk_dynamodb::Client`.
#[derive(Debug, Clone)]
pub struct DynamoDbReader {
    client: aws_sdk_dynamodb::Client,
    answers: ByteReader,
}

impl DynamoDbReader {
    pub fn new(client: aws_sdk_dynamodb::Client) -> DynamoDbReader {
        DynamoDbReader {
            client,
            answers: ByteReader::new(&BatchGetItem::new(), || {
                Output::erase(BatchGetItemOutput::builder().build())
            }),
        }
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
                source: source.into(),
            })?;
        // Its own task: decoding an answer of 100 items is most of a call's CPU, and the caller
        // (one task for all of a batch's calls) would otherwise decode its answers one at a time,
        // holding back the calls it has yet to start.
        let (interceptor, slot) = self.answers.for_call(read_answer);
        let send = self
            .client
            .batch_get_item()
            .request_items(table, request)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .customize()
            .interceptor(interceptor)
            .send();
        let output = Spawned::spawn(send)
            .await
            .map_err(|source| LookupError::Task {
                table: table.to_string(),
                source,
            })?
            .map_err(|source| LookupError::BatchGetItem {
                table: table.to_string(),
                kind: classify(&source),
                source: source.into(),
            })?;
        if let Some(answer) = slot.take() {
            return answer.output(table);
        }
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

/// BatchGetItem's answer as the byte reader read it.
#[derive(Debug, Default)]
struct Answer {
    /// Items found, by the table key they came under.
    responses: Vec<(String, Vec<Tape>)>,
    unprocessed: Vec<(String, Vec<Item>)>,
    consumed_read_units: f64,
}

impl Answer {
    fn output(self, table: &str) -> Result<BatchGetOutput, LookupError> {
        let mut out = BatchGetOutput {
            consumed_read_units: self.consumed_read_units,
            ..BatchGetOutput::default()
        };
        // Fail closed, as for the SDK's answer.
        for (answered, items) in self.responses {
            check_table(table, &answered)?;
            out.items.extend(items.into_iter().map(Image::Tape));
        }
        for (answered, keys) in self.unprocessed {
            check_table(table, &answered)?;
            out.unprocessed.extend(keys);
        }
        Ok(out)
    }
}

/// A BatchGetItem answer's body read by the byte reader; `None` if it declines any of it (the
/// SDK's decoder reads it then). Fields it does not use are skipped, as the SDK skips them.
fn read_answer(json: &[u8]) -> Option<Answer> {
    let mut r = Reader::new(json)?;
    let mut answer = Answer::default();
    r.object(|r, field| match &*field {
        "Responses" => r.object(|r, table| {
            let mut items = Vec::new();
            r.array(|r| r.item_tape().map(|item| items.push(item)))?;
            answer.responses.push((table.into_owned(), items));
            Some(())
        }),
        "UnprocessedKeys" => r.object(|r, table| {
            let mut keys = Vec::new();
            r.object(|r, field| match &*field {
                "Keys" => r
                    .array(|r| r.item_sdk().map(|key| keys.push(key)))
                    .map(drop),
                _ => r.skip(2),
            })?;
            answer.unprocessed.push((table.into_owned(), keys));
            Some(())
        }),
        "ConsumedCapacity" => r
            .array(|r| {
                r.object(|r, field| match &*field {
                    "CapacityUnits" => {
                        answer.consumed_read_units += r.number()?.parse::<f64>().ok()?;
                        Some(())
                    }
                    _ => r.skip(2),
                })
            })
            .map(drop),
        _ => r.skip(1),
    })?;
    r.peek().is_none().then_some(answer)
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

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue as V;

    use super::*;

    #[test]
    fn an_answer_is_read_onto_tapes_with_its_unprocessed_keys_and_capacity() {
        let json = br#"{"ConsumedCapacity":[{"CapacityUnits":1.5,"TableName":"T","Table":{"CapacityUnits":1.5}},{"CapacityUnits":2}],
            "Responses":{"T":[{"pk":{"S":"a\"b"},"n":{"N":"1"},"l":{"L":[{"NULL":true},{"M":{}}]}},{"pk":{"S":"c"}}]},
            "UnprocessedKeys":{"T":{"Keys":[{"pk":{"S":"d"}}],"ConsistentRead":true}},"SomethingNew":[1,{"x":null}]}"#;
        let answer = read_answer(json).expect("read");
        assert_eq!(answer.consumed_read_units, 3.5);
        let out = answer.output("T").unwrap();
        let items: Vec<Item> = out.items.iter().map(|i| i.item().into_owned()).collect();
        assert!(out.items.iter().all(|i| matches!(i, Image::Tape(_))));
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["pk"], V::S("a\"b".into()));
        assert_eq!(
            items[0]["l"],
            V::L(vec![V::Null(true), V::M(Default::default())])
        );
        assert_eq!(
            out.unprocessed,
            vec![[("pk".to_string(), V::S("d".into()))].into()]
        );
        // Under another table key: an error, never an absent item.
        assert!(read_answer(json).unwrap().output("Other").is_err());
        assert_eq!(
            read_answer(br#"{"Responses":{}}"#).map(|a| a.responses.len()),
            Some(0)
        );
    }

    #[test]
    fn what_the_byte_reader_does_not_expect_is_left_to_the_sdk() {
        for declined in [
            r#"{"Responses":{"T":[{"v":{"VECTOR":"x"}}]}}"#, // a type it does not know
            r#"{"Responses":{"T":[{"v":{"S":"x","N":"1"}}]}}"#, // two types
            r#"{"Responses":{"T":[{"v":{"S":"x"},"v":{"S":"y"}}]}}"#, // a repeated name
            r#"{"Responses":{"T":null}}"#,
            r#"{"Responses":{"T":[]}} trailing"#,
            r#"{"ConsumedCapacity":[{"CapacityUnits":"1"}]}"#,
            r#"{"Responses":{"T":[{"v":{"S":"x"}}]}"#, // cut short
            "",
        ] {
            assert!(read_answer(declined.as_bytes()).is_none(), "{declined}");
        }
        assert!(read_answer(&[0xff, b'{', b'}']).is_none());
    }
}
