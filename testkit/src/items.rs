//! Items and keys written out in tests.

use aws_sdk_dynamodb::types::AttributeValue;

use ddb_verify::record::Item;

/// An item (or a key) of these attributes.
pub fn item(pairs: &[(&str, AttributeValue)]) -> Item {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.clone()))
        .collect()
}
