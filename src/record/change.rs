//! A stream record's JSON read onto an [`Expectation`]. Lambda's events (`record::json`) and the
//! Streams API's GetRecords answers (`aws::streams`) write records alike: the same `dynamodb`
//! object, the same DynamoDB JSON. They differ in three fields ([`Shape`]).
//!
//! The byte reader's part (`Reader::record`) declines (`None`) whatever it does not expect, as
//! everywhere in `record::json`; its callers then read the text the slow way. Both ways end in
//! [`finish`], so that a record passes the same checks however it was read.

use std::borrow::Cow;

use super::json::Reader;
use super::{Expectation, Image, Item, MalformedRecord, OldImage, RecordParts, Tape};

pub(crate) const NOT_A_RECORD: &str = "record does not parse as a DynamoDB stream record";

/// A record that cannot be verified, with what identifies it.
#[derive(Debug)]
pub(crate) struct Malformed {
    pub event_id: Option<String>,
    pub sequence_number: Option<String>,
    pub reason: String,
    pub keys: Option<Box<Item>>,
    pub source_table: Option<Box<str>>,
}

impl Malformed {
    /// The record at `position` of its batch or page, as the engine reports it.
    pub(crate) fn at(self, position: usize) -> MalformedRecord {
        MalformedRecord {
            position,
            event_id: self.event_id,
            sequence_number: self.sequence_number,
            reason: self.reason,
            keys: self.keys,
            source_table: self.source_table,
        }
    }
}

/// Where a record's JSON comes from: where their three differences lie.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape<'a> {
    /// Lambda's event: `eventSourceARN` in each record, `userIdentity` as `type` and
    /// `principalId`. `ApproximateCreationDateTime` is an integer: anything else is declined, so
    /// that it converts exactly as serde_json's reading (the serde reader's) does.
    Lambda,
    /// A GetRecords answer, from this stream: no ARN in the records, `userIdentity` as `Type` and
    /// `PrincipalId`, and `ApproximateCreationDateTime` any number (`1.7E9`), converted as the
    /// SDK converts it.
    Api { stream_arn: &'a str },
}

/// What a record's JSON says, before the checks (strings borrowed from the event where they can be).
#[derive(Default)]
pub(crate) struct Fields<'de> {
    pub event_id: Option<Cow<'de, str>>,
    pub event_name: Option<Cow<'de, str>>,
    pub source_arn: Option<Cow<'de, str>>,
    pub identity_type: Option<Cow<'de, str>>,
    pub principal_id: Option<Cow<'de, str>>,
    pub keys: Option<Item>,
    pub new_image: Option<Tape>,
    /// The old image's JSON text, validated as JSON (most records never need it).
    pub old_image: Option<Box<str>>,
    pub sequence_number: Option<Cow<'de, str>>,
    pub view_type: Option<Cow<'de, str>>,
    pub created_epoch_seconds: Option<f64>,
}

/// The record `fields` describe, through [`Expectation::from_stream`]'s checks; `problem`: the
/// reader's own (the JSON is not a record), which wins.
pub(crate) fn finish(
    mut fields: Fields<'_>,
    problem: Option<String>,
) -> Result<Expectation, Malformed> {
    let malformed = |fields: &Fields, reason: String, keys: Option<Item>| Malformed {
        event_id: fields.event_id.as_deref().map(str::to_owned),
        sequence_number: fields.sequence_number.as_deref().map(str::to_owned),
        reason,
        // A key that is not sound is no key to keep a finding under.
        keys: keys
            .filter(|k| !k.is_empty() && super::check_key(k).is_ok())
            .map(Box::new),
        source_table: fields
            .source_arn
            .as_deref()
            .and_then(super::table_name_from_arn)
            .map(String::into_boxed_str),
    };
    if let Some(problem) = problem {
        let keys = fields.keys.take();
        return Err(malformed(
            &fields,
            format!("{NOT_A_RECORD}: {problem}"),
            keys,
        ));
    }
    let (keys, new_image, old_image) = (
        fields.keys.take(),
        fields.new_image.take(),
        fields.old_image.take(),
    );
    Expectation::from_stream(RecordParts {
        event_id: fields.event_id.as_deref().unwrap_or_default().to_owned(),
        event_name: fields.event_name.as_deref(),
        keys,
        new_image: new_image.map(Image::Tape),
        old_image: old_image.map(OldImage::Json),
        sequence_number: fields.sequence_number.as_deref().map(str::to_owned),
        view_type: fields.view_type.as_deref(),
        created_epoch_seconds: fields.created_epoch_seconds,
        ttl_delete: fields.identity_type.as_deref() == Some("Service")
            && fields.principal_id.as_deref() == Some("dynamodb.amazonaws.com"),
        source_arn: fields.source_arn.as_deref(),
    })
    .map_err(|e| malformed(&fields, e.reason, e.keys))
}

impl<'a> Reader<'a> {
    /// One stream record: its fields, through [`finish`]'s checks.
    pub(crate) fn record(&mut self, shape: Shape<'a>) -> Option<Result<Expectation, Malformed>> {
        let mut fields = Fields::default();
        let (type_field, principal_field) = match shape {
            Shape::Lambda => ("type", "principalId"),
            Shape::Api { stream_arn } => {
                fields.source_arn = Some(Cow::Borrowed(stream_arn));
                ("Type", "PrincipalId")
            }
        };
        // The SDK's decoder replaces a whole object given twice; ours would merge the two.
        let (mut identity_seen, mut change_seen) = (false, false);
        self.object(|r, field| {
            match &*field {
                "eventID" => fields.event_id = r.text()?,
                "eventName" => fields.event_name = r.text()?,
                "eventSourceARN" if matches!(shape, Shape::Lambda) => {
                    fields.source_arn = r.text()?
                }
                "userIdentity" => {
                    if std::mem::replace(&mut identity_seen, true) {
                        return None;
                    }
                    if !r.null()? {
                        r.object(|r, field| match &*field {
                            f if f == type_field => r.text().map(|t| fields.identity_type = t),
                            f if f == principal_field => r.text().map(|t| fields.principal_id = t),
                            _ => r.skip(2),
                        })?;
                    }
                }
                "dynamodb" => {
                    if std::mem::replace(&mut change_seen, true) {
                        return None;
                    }
                    if !r.null()? {
                        r.object(|r, field| r.change(&mut fields, &field, shape))?;
                    }
                }
                _ => r.skip(1)?,
            }
            Some(())
        })?;
        Some(finish(fields, None))
    }

    /// One field of a record's `dynamodb` object.
    fn change(&mut self, fields: &mut Fields<'a>, field: &str, shape: Shape<'a>) -> Option<()> {
        match field {
            "Keys" | "NewImage" => {
                // A null image is an absent one, as in the serde reader.
                if self.null()? {
                    return Some(());
                }
                if field == "Keys" {
                    fields.keys = Some(self.item_sdk()?);
                } else {
                    fields.new_image = Some(self.item_tape()?);
                }
            }
            "OldImage" => {
                fields.old_image = if self.null()? {
                    None
                } else {
                    let start = self.at;
                    self.skip(2)?;
                    Some(self.text.get(start..self.at)?.into())
                }
            }
            "SequenceNumber" => fields.sequence_number = self.text()?,
            "StreamViewType" => fields.view_type = self.text()?,
            "ApproximateCreationDateTime" => {
                fields.created_epoch_seconds = if self.null()? {
                    None
                } else {
                    Some(created_seconds(self.number()?, shape)?)
                };
            }
            _ => self.skip(2)?,
        }
        Some(())
    }
}

/// `ApproximateCreationDateTime` in seconds; `None` to decline (see [`Shape`]).
fn created_seconds(n: &str, shape: Shape<'_>) -> Option<f64> {
    match shape {
        Shape::Lambda => {
            // Integers only: they convert to f64 exactly as serde_json converts them.
            let digits = n.strip_prefix('-').unwrap_or(n);
            if digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(n.parse::<i64>().ok()? as f64)
        }
        Shape::Api { .. } => {
            // As the SDK: the number as f64 (correctly rounded, as its integers are), then a
            // `DateTime`, which keeps it to the nanosecond.
            let seconds: f64 = n.parse().ok().filter(|s: &f64| s.is_finite())?;
            Some(aws_smithy_types::DateTime::from_secs_f64(seconds).as_secs_f64())
        }
    }
}
