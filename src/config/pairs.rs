//! `TABLE_PAIRS`: the table pairs of one deployment, for the CLI's `--table` and `--all`.
//!
//! A JSON array, one object per pair:
//! `[{"source": "Orders", "other": "arn:aws:dynamodb:eu-west-1:222222222222:table/Orders",
//! "ignore": ["syncedAt"]}, {"source": "Catalog"}]`
//! - `source` (required): the source table, a name or an ARN, as `SOURCE_TABLE_NAME` takes it,
//!   or its stream's ARN (`.../table/NAME/stream/LABEL`, which names the table; the template
//!   builds its pairs from stream ARNs);
//! - `other`: the other side's table, as `VERIFY_TABLE_NAME` takes it (default: `source`'s name,
//!   in the other account that `VERIFY_PROFILE` or `VERIFY_ROLE_ARN` reach);
//! - `ignore`: the pair's own `IGNORE_ATTRIBUTES` (default: the variable's);
//! - `ttl`: the pair's own `TTL_ATTRIBUTE`. Never the variable's: another table's TTL attribute
//!   would make a real difference EXPIRED; without it, the table's own TTL setting is read
//!   (DescribeTimeToLive), as when `TTL_ATTRIBUTE` is unset.
//!
//! A pair stands for those four variables; everything else (the other account's credentials,
//! `FINDINGS_TABLE`, `CHECKPOINT_TABLE`, rates) is shared: the findings and checkpoint tables
//! key everything by table already.

use serde::Deserialize;

use super::{ConfigError, TableRef};

/// One pair of `TABLE_PAIRS`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TablePair {
    pub source: String,
    #[serde(default)]
    pub other: Option<String>,
    #[serde(default)]
    pub ignore: Option<Vec<String>>,
    #[serde(default)]
    pub ttl: Option<String>,
}

impl TablePair {
    /// The source table's name, as findings and `--table` name it.
    pub fn name(&self) -> String {
        TableRef::parse_or_keep(&self.source).name
    }

    /// The variables as this pair sets them: `SOURCE_TABLE_NAME`, `VERIFY_TABLE_NAME`,
    /// `IGNORE_ATTRIBUTES` and `TTL_ATTRIBUTE` from the pair, every other from `base`.
    pub fn value(&self, name: &str, base: impl Fn(&str) -> Option<String>) -> Option<String> {
        match name {
            "SOURCE_TABLE_NAME" => Some(self.source.clone()),
            "VERIFY_TABLE_NAME" => Some(self.other.clone().unwrap_or_else(|| self.name())),
            "IGNORE_ATTRIBUTES" => match &self.ignore {
                Some(names) => Some(names.join(",")),
                None => base(name),
            },
            "TTL_ATTRIBUTE" => self.ttl.clone().filter(|t| !t.trim().is_empty()),
            _ => base(name),
        }
    }
}

const PAIRS_ACCEPTS: &str = "a JSON array of pairs such as [{\"source\": \"Orders\", \"other\": \"Orders\", \"ignore\": [\"syncedAt\"], \"ttl\": \"expiresAt\"}]: `source` required (a table name or ARN), `other`, `ignore` and `ttl` optional";

/// `TABLE_PAIRS`, parsed: `None` when unset. Every pair's tables are checked as the variables
/// they stand for are, and no source twice.
pub fn table_pairs(value: Option<String>) -> Result<Option<Vec<TablePair>>, ConfigError> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let invalid = |why: String| ConfigError::Pairs { why };
    let mut pairs: Vec<TablePair> = serde_json::from_str(&value).map_err(|e| {
        invalid(format!(
            "TABLE_PAIRS is not valid ({e}): expected {PAIRS_ACCEPTS}"
        ))
    })?;
    if pairs.is_empty() {
        return Err(invalid(format!(
            "TABLE_PAIRS lists no pair: expected {PAIRS_ACCEPTS}"
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for pair in &mut pairs {
        pair.source = table_of_stream(&pair.source);
    }
    for (i, pair) in pairs.iter().enumerate() {
        let at = |field: &str, what: &str| {
            invalid(format!("TABLE_PAIRS pair {} {field}: {what}", i + 1))
        };
        if TableRef::parse(&pair.source).is_none() {
            return Err(at(
                "source",
                &format!("{:?} is not a table name or table ARN", pair.source),
            ));
        }
        if let Some(other) = pair
            .other
            .as_deref()
            .filter(|o| TableRef::parse(o).is_none())
        {
            return Err(at(
                "other",
                &format!("{other:?} is not a table name or table ARN"),
            ));
        }
        if let Some(name) = pair
            .ignore
            .iter()
            .flatten()
            .find(|n| n.contains(',') || n.trim().is_empty())
        {
            // IGNORE_ATTRIBUTES is comma-separated: a name with a comma would ignore others.
            return Err(at(
                "ignore",
                &format!("{name:?} is not an attribute name (no commas, not empty)"),
            ));
        }
        if !seen.insert(pair.name()) {
            return Err(at("source", &format!("{} is listed twice", pair.name())));
        }
    }
    Ok(Some(pairs))
}

/// The table ARN of a stream ARN (`arn:...:table/NAME/stream/LABEL`); anything else as it is.
fn table_of_stream(source: &str) -> String {
    match source.trim().split_once("/stream/") {
        Some((table, label)) if !label.is_empty() && TableRef::parse(table).is_some() => {
            table.to_string()
        }
        _ => source.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pairs_source_may_be_its_streams_arn_which_names_the_table() {
        let stream =
            "arn:aws:dynamodb:us-east-1:111111111111:table/Orders/stream/2026-01-01T00:00:00.000";
        let pairs = table_pairs(Some(format!(
            r#"[{{"source": "{stream}", "other": "Orders"}}]"#
        )))
        .unwrap()
        .unwrap();
        assert_eq!(
            pairs[0].source,
            "arn:aws:dynamodb:us-east-1:111111111111:table/Orders"
        );
        assert_eq!(pairs[0].name(), "Orders");
        let index = r#"[{"source": "arn:aws:dynamodb:us-east-1:111111111111:table/Orders/index/byStatus"}]"#;
        assert!(table_pairs(Some(index.into())).is_err());
    }

    #[test]
    fn a_pair_stands_for_its_three_variables_and_leaves_the_rest() {
        let pairs = table_pairs(Some(
            r#"[{"source": "Orders", "other": "arn:aws:dynamodb:eu-west-1:222222222222:table/Orders", "ignore": ["syncedAt", "v"]}, {"source": "Catalog", "ttl": "expiresAt"}]"#.into(),
        ))
        .unwrap()
        .unwrap();
        let base = |name: &str| Some(format!("base {name}"));
        let orders = &pairs[0];
        assert_eq!(orders.value("SOURCE_TABLE_NAME", base).unwrap(), "Orders");
        assert_eq!(
            orders.value("VERIFY_TABLE_NAME", base).unwrap(),
            "arn:aws:dynamodb:eu-west-1:222222222222:table/Orders"
        );
        assert_eq!(
            orders.value("IGNORE_ATTRIBUTES", base).unwrap(),
            "syncedAt,v"
        );
        assert_eq!(
            orders.value("FINDINGS_TABLE", base).unwrap(),
            "base FINDINGS_TABLE"
        );
        // Never another table's TTL attribute: the pair's own, or the table's setting (None).
        assert_eq!(orders.value("TTL_ATTRIBUTE", base), None);
        let catalog = &pairs[1];
        assert_eq!(
            catalog.value("TTL_ATTRIBUTE", base).as_deref(),
            Some("expiresAt")
        );
        assert_eq!(catalog.value("VERIFY_TABLE_NAME", base).unwrap(), "Catalog");
        assert_eq!(
            catalog.value("IGNORE_ATTRIBUTES", base).unwrap(),
            "base IGNORE_ATTRIBUTES"
        );
    }

    #[test]
    fn bad_pairs_are_refused_naming_the_pair_and_the_field() {
        let err = |v: &str| table_pairs(Some(v.into())).unwrap_err().to_string();
        assert!(err("Orders").contains("TABLE_PAIRS is not valid"));
        assert!(err("[]").contains("lists no pair"));
        assert!(err(r#"[{"other": "X"}]"#).contains("TABLE_PAIRS is not valid"));
        assert!(err(r#"[{"source": "Orders", "otehr": "X"}]"#).contains("otehr"));
        assert!(err(r#"[{"source": "Orders"}, {"source": "a b"}]"#).contains("pair 2 source"));
        assert!(err(r#"[{"source": "Orders", "other": "x"}]"#).contains("pair 1 other"));
        assert!(err(r#"[{"source": "Orders"}, {"source": "Orders"}]"#).contains("listed twice"));
        assert!(err(r#"[{"source": "Orders", "ignore": ["a,b"]}]"#).contains("pair 1 ignore"));
        assert_eq!(table_pairs(None).unwrap(), None);
        assert_eq!(table_pairs(Some(" ".into())).unwrap(), None);
    }
}
