//! The common case of an event read straight from its bytes, without serde, by the byte reader of
//! `record::json`.
//!
//! Events as Lambda sends them are regular: objects of known fields, DynamoDB JSON values of one
//! type each, strings without escapes. This reader handles exactly that, writing the same tapes
//! and the same record fields through the same checks (`record::change::finish`) as the serde
//! reader (`tolerant`), and gives up (`None`) on anything else: a record with a problem, a
//! number field that is not an integer, JSON nested deeper than it allows, text that is not JSON.
//! The caller then reads the whole event with the serde reader, which gives the exact reasons and
//! errors; the property tests hold the two to the same records.
//!
//! Declining is always correct, so this reader stays simple: it never words a problem.

use super::Reader;
use crate::record::change::{Malformed, Shape};
use crate::record::Expectation;

/// Each record of a stream event (`{"Records": [...]}`), in order, handed to `each`: an
/// expectation, or why the record cannot be one (the checks of `record::change::finish`, as the
/// serde reader gives them). `None` if the event is not in the common case: read it with the serde reader
/// instead (records handed over so far are to be discarded).
pub(crate) fn read_event(
    json: &[u8],
    mut each: impl FnMut(Result<Expectation, Malformed>),
) -> Option<()> {
    let mut r = Reader::new(json)?;
    let mut records = false;
    r.object(|r, key| {
        if key == "Records" {
            // A second list replaces the first in serde's reading: not the common case.
            if records {
                return None;
            }
            records = true;
            r.array(|r| {
                each(r.record(Shape::Lambda)?);
                Some(())
            })
            .map(drop)
        } else {
            r.skip(1)
        }
    })?;
    // Only whitespace after the event, and the list was there.
    (r.peek().is_none() && records).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Option<Vec<Result<Expectation, Malformed>>> {
        let mut out = Vec::new();
        read_event(json.as_bytes(), |r| out.push(r))?;
        Some(out)
    }

    #[test]
    fn a_regular_event_is_read_and_anything_else_declined() {
        let record = |image: &str| {
            format!(
                r#"{{"Records": [ {{"eventID":"1","eventName":"INSERT","eventSourceARN":"arn:aws:dynamodb:us-east-1:1:table/T/stream/x",
                "dynamodb":{{"Keys":{{"id":{{"S":"a"}}}},"NewImage":{image},"SequenceNumber":"1","StreamViewType":"NEW_IMAGE",
                "ApproximateCreationDateTime":1793577600}}}} ]}}"#
            )
        };
        let read_one = |image: &str| read(&record(image));
        let ok = read_one(r#"{"id":{"S":"a"},"n":{"N":"1.5"},"l":{"L":[{"BOOL":true},{"NULL":true}]},"s":{"SS":["x","y\n"]},"b":{"B":"AAE="}}"#)
            .expect("the common case");
        assert_eq!(ok.len(), 1);
        let image = ok[0].as_ref().unwrap().image().unwrap().item().into_owned();
        assert_eq!(image.len(), 5);
        assert_eq!(
            image["s"],
            aws_sdk_dynamodb::types::AttributeValue::Ss(vec!["x".into(), "y\n".into()])
        );
        for declined in [
            r#"{"id":{"S":"a"},"id":{"S":"b"}}"#, // a repeated name
            r#"{"id":{"S":"a","N":"1"}}"#,        // two types
            r#"{"id":{"X":"a"}}"#,                // an unknown type
            r#"{"id":{"B":"not base64!"}}"#,
            r#"{"id":{"S":1}}"#,
            r#"{"id":{"S":"a"}"#, // cut short
        ] {
            assert!(read_one(declined).is_none(), "{declined}");
        }
        assert!(read(r#"{"Records": []} x"#).is_none());
        assert!(read(r#"{"records": []}"#).is_none());
        assert!(read(r#"{"Records": [], "Records": []}"#).is_none());
        assert!(
            read(r#"{"Records": [{"dynamodb": {"ApproximateCreationDateTime": 1.5}}]}"#).is_none()
        );
        assert_eq!(read(r#" {"Records": [] } "#).map(|r| r.len()), Some(0));
    }
}
