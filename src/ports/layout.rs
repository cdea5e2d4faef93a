//! Tables as data: what a table is found to be ([`TableShape`], from DescribeTable), and the layout
//! the verifier's own tables must have ([`Layout`]: the checkpoint table's and the findings table's,
//! defined once next to their ports and used by the adapter that creates them, by `ddb-verify init`
//! and by `ddb-verify preflight`'s check of them). Pure: no SDK type.

/// One key attribute: its name and DynamoDB type (`S`, `N` or `B`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPart {
    pub name: String,
    pub attribute_type: String,
}

impl std::fmt::Display for KeyPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, self.attribute_type)
    }
}

/// A key schema: the partition key and the sort key, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    pub partition: KeyPart,
    pub sort: Option<KeyPart>,
}

impl std::fmt::Display for KeySchema {
    /// `customerId S (partition), orderId N (sort)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (partition)", self.partition)?;
        match &self.sort {
            Some(sort) => write!(f, ", {sort} (sort)"),
            None => Ok(()),
        }
    }
}

/// A secondary index as DescribeTable reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexShape {
    pub name: String,
    /// A global secondary index (else a local one).
    pub global: bool,
    pub keys: KeySchema,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE (a, b)` with the attributes it includes.
    pub projection: String,
}

impl std::fmt::Display for IndexShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.global { "GSI" } else { "LSI" };
        write!(
            f,
            "{kind} {} [{}; {}]",
            self.name, self.keys, self.projection
        )
    }
}

/// What a table's reads may use: on demand (with its maximum, if one is set), or provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadCapacity {
    OnDemand { max_read_units: Option<i64> },
    Provisioned { read_units: i64 },
}

/// A table's enabled stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamShape {
    pub arn: String,
    /// `NEW_AND_OLD_IMAGES`, `NEW_IMAGE`, `OLD_IMAGE` or `KEYS_ONLY`.
    pub view_type: String,
}

/// A table as DescribeTable found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableShape {
    pub arn: Option<String>,
    /// `ACTIVE`, `CREATING`, ...
    pub status: String,
    /// When it was created (epoch ms): with the ARN, tells one table from another of the same
    /// name where ARNs do not carry the account (DynamoDB Local).
    pub created_ms: Option<i64>,
    pub keys: KeySchema,
    pub indexes: Vec<IndexShape>,
    /// The enabled stream; `None` when streams are off.
    pub stream: Option<StreamShape>,
    pub read_capacity: ReadCapacity,
    /// The regions of its global-table replicas (empty: not a global table).
    pub replica_regions: Vec<String>,
    /// `2019.11.21` or `2017.11.29` when it belongs to a global table.
    pub global_table_version: Option<String>,
}

/// A key attribute of a [`Layout`]: its name and type.
pub type LayoutKey = (&'static str, &'static str);

/// A global secondary index of a [`Layout`] (projection `ALL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutIndex {
    pub name: &'static str,
    pub partition: LayoutKey,
    pub sort: Option<LayoutKey>,
}

/// The layout one of the verifier's own tables must have (as `template.yaml` creates it): keys,
/// global secondary indexes (projection `ALL`), the TTL attribute, and point-in-time recovery; always
/// on-demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// What it is, in words (`checkpoint table`).
    pub what: &'static str,
    /// The variable that names it (`CHECKPOINT_TABLE`).
    pub variable: &'static str,
    pub partition: LayoutKey,
    pub sort: Option<LayoutKey>,
    pub indexes: &'static [LayoutIndex],
    pub ttl_attribute: Option<&'static str>,
    pub point_in_time_recovery: bool,
}

fn key_schema(partition: LayoutKey, sort: Option<LayoutKey>) -> KeySchema {
    let part = |(name, attribute_type): LayoutKey| KeyPart {
        name: name.to_string(),
        attribute_type: attribute_type.to_string(),
    };
    KeySchema {
        partition: part(partition),
        sort: sort.map(part),
    }
}

impl Layout {
    pub fn key_schema(&self) -> KeySchema {
        key_schema(self.partition, self.sort)
    }

    /// Every attribute a key or an index names, with its type, once each (CreateTable's
    /// `AttributeDefinitions`).
    pub fn attributes(&self) -> Vec<LayoutKey> {
        let mut out: Vec<LayoutKey> = Vec::new();
        let indexes = self
            .indexes
            .iter()
            .flat_map(|i| [Some(i.partition), i.sort]);
        for key in [Some(self.partition), self.sort].into_iter().chain(indexes) {
            if let Some(key) = key.filter(|k| !out.contains(k)) {
                out.push(key);
            }
        }
        out
    }

    /// How `table` differs from this layout, in words (empty: it fits). Extra indexes are allowed.
    pub fn differences(&self, table: &TableShape) -> Vec<String> {
        let mut out = Vec::new();
        let expected = self.key_schema();
        if table.keys != expected {
            out.push(format!("its key is {}, not {expected}", table.keys));
        }
        for index in self.indexes {
            let keys = key_schema(index.partition, index.sort);
            match table.indexes.iter().find(|i| i.name == index.name) {
                None => out.push(format!("it has no index {}", index.name)),
                Some(found) if !found.global || found.keys != keys || found.projection != "ALL" => {
                    out.push(format!(
                        "its index {} is {found}, not GSI {} [{keys}; ALL]",
                        index.name, index.name
                    ))
                }
                Some(_) => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: Layout = Layout {
        what: "test table",
        variable: "TEST_TABLE",
        partition: ("id", "S"),
        sort: None,
        indexes: &[LayoutIndex {
            name: "byStatus",
            partition: ("statusTable", "S"),
            sort: Some(("nextCheck", "N")),
        }],
        ttl_attribute: Some("expiresAt"),
        point_in_time_recovery: true,
    };

    fn shape(keys: KeySchema, indexes: Vec<IndexShape>) -> TableShape {
        TableShape {
            arn: None,
            status: "ACTIVE".into(),
            created_ms: None,
            keys,
            indexes,
            stream: None,
            read_capacity: ReadCapacity::OnDemand {
                max_read_units: None,
            },
            replica_regions: vec![],
            global_table_version: None,
        }
    }

    fn index() -> IndexShape {
        IndexShape {
            name: "byStatus".into(),
            global: true,
            keys: key_schema(("statusTable", "S"), Some(("nextCheck", "N"))),
            projection: "ALL".into(),
        }
    }

    #[test]
    fn a_table_with_the_layouts_keys_and_index_fits_it() {
        let table = shape(LAYOUT.key_schema(), vec![index()]);
        assert!(LAYOUT.differences(&table).is_empty());
        assert_eq!(
            LAYOUT.attributes(),
            vec![("id", "S"), ("statusTable", "S"), ("nextCheck", "N")]
        );
    }

    #[test]
    fn another_key_or_a_missing_or_different_index_is_named() {
        let other_key = key_schema(("id", "N"), None);
        let found = LAYOUT.differences(&shape(other_key, vec![]));
        assert_eq!(
            found,
            vec![
                "its key is id N (partition), not id S (partition)",
                "it has no index byStatus"
            ]
        );
        let mut keys_only = index();
        keys_only.projection = "KEYS_ONLY".into();
        let found = LAYOUT.differences(&shape(LAYOUT.key_schema(), vec![keys_only]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("KEYS_ONLY"), "{found:?}");
    }
}
