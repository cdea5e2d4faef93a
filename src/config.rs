//! Configuration, read once at start-up from environment variables: [`Config`] (the verifier, and
//! the engine everywhere) and [`PollerConfig`] (the shard poller: the verifier's plus its own).
//!
//! Every error names the variable and what it accepts, so a mis-set function fails its first
//! invocation with a message an operator can act on.

use std::time::Duration;

use thiserror::Error;

use crate::ports::stream::StartAt;

pub mod pairs;

/// Every variable the verifier reads (kept in one place so the template can be checked against it).
pub const VARIABLES: &[&str] = &[
    "VERIFY_TABLE_NAME",
    "VERIFY_ROLE_ARN",
    "VERIFY_ROLE_EXTERNAL_ID",
    "VERIFY_PROFILE",
    "VERIFY_REGION",
    "SOURCE_ROLE_ARN",
    "SOURCE_ROLE_EXTERNAL_ID",
    "SAMPLE_RATE",
    "IGNORE_ATTRIBUTES",
    "MAX_REPLICATION_LAG",
    "LAG_WINDOW_FROM",
    "DEADLINE_MARGIN",
    "CONSISTENT_READ",
    "RECHECK_SOURCE",
    "MAX_CONCURRENCY",
    "METRICS_NAMESPACE",
    "LOG_ITEM_VALUES",
    "FINDINGS_TABLE",
    "TTL_ATTRIBUTE",
];

/// Variables for running outside Lambda only (a laptop's shared config files); the SAM template does
/// not set them.
pub const LOCAL_ONLY_VARIABLES: &[&str] = &["VERIFY_PROFILE"];

/// Variables of the stream verifier alone (none since `SOURCE_ROLE_ARN` names the source account's
/// role for every function).
pub const VERIFIER_ONLY_VARIABLES: &[&str] = &[];

/// Variables the binaries read before their configuration, to serve many pairs: `TABLE_PAIRS`
/// ([`pairs`]). The template sets it on the stream verifier, the baseline and the revalidator (the
/// shard poller it deploys reads one given stream).
pub const PAIRS_VARIABLES: &[&str] = &["TABLE_PAIRS"];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{variable} is required: {accepted}")]
    Missing {
        variable: &'static str,
        accepted: &'static str,
    },
    #[error("{variable}={value:?} is not valid: expected {accepted}")]
    Invalid {
        variable: &'static str,
        value: String,
        accepted: &'static str,
    },
    #[error("{variable} is set but {requires} is not: {variable} needs {requires}")]
    Requires {
        variable: &'static str,
        requires: &'static str,
    },
    /// `TABLE_PAIRS` as a whole, or one of its pairs' fields.
    #[error("{why}")]
    Pairs { why: String },
    /// Every item would MATCH itself and every finding would resolve: never a verdict.
    #[error("VERIFY_TABLE_NAME names the very table verified: the source (SOURCE_TABLE_NAME, or STREAM_ARN's table) and VERIFY_TABLE_NAME are both {table}, so it would be compared with itself; set VERIFY_PROFILE or VERIFY_ROLE_ARN to the other account, or VERIFY_TABLE_NAME or VERIFY_REGION to the copy")]
    SameTable { table: TableSide },
}

/// The table the verifier reads on the other side: a name, or a full table ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    /// What is sent as `TableName` (DynamoDB accepts a table ARN there for cross-account access).
    pub api_name: String,
    /// The bare table name, used as the metrics dimension.
    pub name: String,
    /// The region, when the reference is an ARN.
    pub region: Option<String>,
    /// The account id, when the reference is an ARN.
    pub account: Option<String>,
}

impl TableRef {
    pub fn parse(value: &str) -> Option<TableRef> {
        let value = value.trim();
        if let Some(rest) = value.strip_prefix("arn:") {
            // arn:partition:dynamodb:region:account:table/NAME
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            if parts.len() != 5 || parts[1] != "dynamodb" {
                return None;
            }
            // Nothing after the name: `table/NAME/stream/LABEL` is the table's stream, and
            // `table/NAME/index/INDEX` an index, neither of which a lookup can read.
            let name = parts[4].strip_prefix("table/")?;
            if !valid_table_name(name) || parts[2].is_empty() {
                return None;
            }
            return Some(TableRef {
                api_name: value.to_string(),
                name: name.to_string(),
                region: Some(parts[2].to_string()),
                account: Some(parts[3].to_string()).filter(|a| !a.is_empty()),
            });
        }
        valid_table_name(value).then(|| TableRef {
            api_name: value.to_string(),
            name: value.to_string(),
            region: None,
            account: None,
        })
    }

    /// A reference as given, kept whole when it is neither a name nor a table ARN.
    pub fn parse_or_keep(value: &str) -> TableRef {
        TableRef::parse(value).unwrap_or_else(|| TableRef {
            api_name: value.to_string(),
            name: value.to_string(),
            region: None,
            account: None,
        })
    }
}

/// Whose account a table is in, as far as the configuration tells without a call to STS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountOf {
    /// The credentials' own account (the function's, or the shell's default credentials).
    This,
    /// An account id, from a table ARN or from the role assumed to read it.
    Id(String),
    /// A shared-config profile's account (not known without a call).
    Profile(String),
    /// A role ARN's account, when the ARN does not tell it.
    Role(String),
}

impl std::fmt::Display for AccountOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountOf::This => f.write_str("this account"),
            AccountOf::Id(id) => write!(f, "account {id}"),
            AccountOf::Profile(profile) => write!(f, "the account of profile {profile}"),
            AccountOf::Role(role) => write!(f, "the account of role {role}"),
        }
    }
}

/// A table as an operator tells it apart: its name, account and region (`None`: the default
/// region of the process, not known to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSide {
    pub table: String,
    pub account: AccountOf,
    pub region: Option<String>,
}

impl std::fmt::Display for TableSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.region {
            Some(region) => write!(f, "{} ({}, {region})", self.table, self.account),
            None => write!(f, "{} ({}, the default region)", self.table, self.account),
        }
    }
}

/// The two tables a baseline or a revalidation compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sides {
    pub source: TableSide,
    pub other: TableSide,
}

impl Sides {
    /// The source (`SOURCE_TABLE_NAME`, read with the process's own credentials or
    /// `SOURCE_ROLE_ARN`) and the other side (`VERIFY_*`); `default_region` is the process's own.
    pub fn of(verify: &Config, source_table: &str, default_region: Option<&str>) -> Sides {
        let role = verify.source_access.role_arn.as_deref();
        Sides::read_through(verify, source_table, role, default_region)
    }

    /// As [`Sides::of`], the source read through `source_role` (or the own credentials).
    fn read_through(
        verify: &Config,
        source_table: &str,
        source_role: Option<&str>,
        default_region: Option<&str>,
    ) -> Sides {
        let source = TableRef::parse_or_keep(source_table);
        let source_account = match (&source.account, source_role) {
            (Some(id), _) => AccountOf::Id(id.clone()),
            (None, Some(role)) => role_account(role),
            (None, None) => AccountOf::This,
        };
        Sides {
            source: TableSide {
                table: source.name,
                account: source_account,
                region: source.region.or_else(|| default_region.map(String::from)),
            },
            other: verify.other_side(default_region),
        }
    }

    /// Refuses a pair that is one table: the same name, region and account, the account known
    /// the same (no profile or role tells the other side apart, or both name one account id).
    pub fn refuse_same_table(&self) -> Result<(), ConfigError> {
        let (source, other) = (&self.source, &self.other);
        let same_account = match (&source.account, &other.account) {
            (AccountOf::This, AccountOf::This) => true,
            (AccountOf::Id(a), AccountOf::Id(b)) => a == b,
            _ => false,
        };
        if same_account && source.table == other.table && source.region == other.region {
            return Err(ConfigError::SameTable {
                table: source.clone(),
            });
        }
        Ok(())
    }

    /// `{"source", "other_side"}`, each table as [`TableSide`] tells it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "source": self.source.to_string(),
            "other_side": self.other.to_string(),
        })
    }
}

impl std::fmt::Display for Sides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "source {} against other side {}",
            self.source, self.other
        )
    }
}

/// The account of a role ARN (`arn:aws:iam::ACCOUNT:role/NAME`, checked when parsed).
fn role_account(role_arn: &str) -> AccountOf {
    match role_arn.split(':').nth(4) {
        Some(id) if !id.is_empty() => AccountOf::Id(id.to_string()),
        _ => AccountOf::Role(role_arn.to_string()),
    }
}

fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Where a record's replication window starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagWindowFrom {
    /// The change's `ApproximateCreationDateTime` (DynamoDB's, to the second): the default.
    Creation,
    /// When the verifier received the record. For streams whose creation times do not follow the
    /// writes (DynamoDB Local's stay fixed), and for readers far behind the stream that want every
    /// record to get a full window after they see it.
    Arrival,
}

/// Where the other account's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetAccess {
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
}

/// How the source table is re-read (`RECHECK_SOURCE`): with the function's own credentials, or,
/// for a verifier deployed in the other account, through a role in the source account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceAccess {
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub target_table: TableRef,
    pub target_access: TargetAccess,
    pub source_access: SourceAccess,
    pub sample_rate: f64,
    pub ignore_attributes: Vec<String>,
    pub max_replication_lag: Duration,
    pub lag_window_from: LagWindowFrom,
    /// Time kept free before the Lambda deadline to answer with batch item failures.
    pub deadline_margin: Duration,
    pub consistent_read: bool,
    pub recheck_source: bool,
    pub max_concurrency: usize,
    pub metrics_namespace: String,
    pub log_item_values: bool,
    /// Where problems are kept until they clear (`FINDINGS_TABLE`); `None`: logs and metrics only.
    pub findings_table: Option<String>,
    /// The TTL attribute (`TTL_ATTRIBUTE`): an item past it is EXPIRED where the tables differ.
    /// When unset, the wiring (`aws`) fills it from DescribeTimeToLive on the source table, once
    /// per process; `None` then: no item is EXPIRED.
    pub ttl_attribute: Option<String>,
}

impl Config {
    /// Defaults for everything but the table: what tests and the demo start from.
    pub fn new(target_table: TableRef) -> Config {
        Config {
            target_table,
            target_access: TargetAccess::default(),
            source_access: SourceAccess::default(),
            sample_rate: 1.0,
            ignore_attributes: Vec::new(),
            max_replication_lag: Duration::from_secs(30),
            lag_window_from: LagWindowFrom::Creation,
            deadline_margin: Duration::from_secs(2),
            consistent_read: true,
            recheck_source: true,
            max_concurrency: 5,
            metrics_namespace: "DynamoDbMigrationVerifier".to_string(),
            log_item_values: false,
            findings_table: None,
            ttl_attribute: None,
        }
    }

    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// The other side's table: its account from its ARN, else `VERIFY_ROLE_ARN`'s, else
    /// `VERIFY_PROFILE`'s, else this account; its region `VERIFY_REGION` (or its ARN's), else
    /// `default_region`.
    pub fn other_side(&self, default_region: Option<&str>) -> TableSide {
        let access = &self.target_access;
        let account = match (
            &self.target_table.account,
            &access.role_arn,
            &access.profile,
        ) {
            (Some(id), _, _) => AccountOf::Id(id.clone()),
            (None, Some(role), _) => role_account(role),
            (None, None, Some(profile)) => AccountOf::Profile(profile.clone()),
            (None, None, None) => AccountOf::This,
        };
        TableSide {
            table: self.target_table.name.clone(),
            account,
            region: access
                .region
                .clone()
                .or_else(|| default_region.map(String::from)),
        }
    }

    /// Parses from any lookup (the environment, or a map in tests). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let mut config = Config::new(verify_table(get("VERIFY_TABLE_NAME"))?);

        let (role_arn, external_id) = role(get, "VERIFY_ROLE_ARN", "VERIFY_ROLE_EXTERNAL_ID")?;
        config.target_access = TargetAccess {
            role_arn,
            external_id,
            profile: get("VERIFY_PROFILE"),
            region: get("VERIFY_REGION").or_else(|| config.target_table.region.clone()),
        };
        let (role_arn, external_id) = role(get, "SOURCE_ROLE_ARN", "SOURCE_ROLE_EXTERNAL_ID")?;
        config.source_access = SourceAccess {
            role_arn,
            external_id,
        };

        if let Some(v) = get("SAMPLE_RATE") {
            config.sample_rate = sample_rate(v)?;
        }
        if let Some(v) = get("IGNORE_ATTRIBUTES") {
            config.ignore_attributes = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(v) = get("MAX_REPLICATION_LAG") {
            config.max_replication_lag = parse_duration("MAX_REPLICATION_LAG", &v)?;
        }
        if let Some(v) = get("LAG_WINDOW_FROM") {
            config.lag_window_from = lag_window_from(v)?;
        }
        if let Some(v) = get("DEADLINE_MARGIN") {
            config.deadline_margin = parse_duration("DEADLINE_MARGIN", &v)?;
        }
        if let Some(v) = get("CONSISTENT_READ") {
            config.consistent_read = parse_bool("CONSISTENT_READ", &v)?;
        }
        if let Some(v) = get("RECHECK_SOURCE") {
            config.recheck_source = parse_bool("RECHECK_SOURCE", &v)?;
        }
        if let Some(v) = get("MAX_CONCURRENCY") {
            config.max_concurrency = up_to_1000("MAX_CONCURRENCY", &v)?;
        }
        if let Some(v) = get("METRICS_NAMESPACE") {
            config.metrics_namespace = metrics_namespace(v)?;
        }
        if let Some(v) = get("LOG_ITEM_VALUES") {
            config.log_item_values = parse_bool("LOG_ITEM_VALUES", &v)?;
        }
        if let Some(v) = get("FINDINGS_TABLE") {
            config.findings_table = Some(findings_table(v)?);
        }
        if let Some(v) = get("TTL_ATTRIBUTE") {
            config.ttl_attribute = Some(ttl_attribute(v)?);
        }
        Ok(config)
    }
}

/// The table verified against (`VERIFY_TABLE_NAME`): a name or an ARN.
fn verify_table(table: Option<String>) -> Result<TableRef, ConfigError> {
    const TABLE_ACCEPTS: &str =
        "a table name (3-255 of a-z A-Z 0-9 _ - .) or a table ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME)";
    let table = table.ok_or(ConfigError::Missing {
        variable: "VERIFY_TABLE_NAME",
        accepted: TABLE_ACCEPTS,
    })?;
    TableRef::parse(&table).ok_or(ConfigError::Invalid {
        variable: "VERIFY_TABLE_NAME",
        value: table.clone(),
        // A stream ARN is an easy mistake next to the stream settings: say so.
        accepted: if table.contains("/stream/") {
            "a table name or a table ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME), not a stream ARN"
        } else {
            TABLE_ACCEPTS
        },
    })
}

/// `SAMPLE_RATE`: a fraction of the records, above 0 and at most 1.
fn sample_rate(v: String) -> Result<f64, ConfigError> {
    match v.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(ConfigError::Invalid {
            variable: "SAMPLE_RATE",
            value: v,
            accepted: "a number r with 0 < r <= 1",
        }),
    }
}

/// `LAG_WINDOW_FROM`: where a record's replication window starts.
fn lag_window_from(v: String) -> Result<LagWindowFrom, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "creation" => Ok(LagWindowFrom::Creation),
        "arrival" => Ok(LagWindowFrom::Arrival),
        _ => Err(ConfigError::Invalid {
            variable: "LAG_WINDOW_FROM",
            value: v,
            accepted: "creation or arrival",
        }),
    }
}

/// `METRICS_NAMESPACE`: a CloudWatch namespace.
fn metrics_namespace(v: String) -> Result<String, ConfigError> {
    let ok = v.len() <= 255 && !v.starts_with("AWS/") && !v.contains(':');
    if !ok {
        return Err(ConfigError::Invalid {
            variable: "METRICS_NAMESPACE",
            value: v,
            accepted:
                "a CloudWatch namespace (at most 255 characters, no ':', not starting with AWS/)",
        });
    }
    Ok(v)
}

/// `FINDINGS_TABLE`: a table name in this account.
fn findings_table(v: String) -> Result<String, ConfigError> {
    let ok = (3..=255).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !ok {
        return Err(ConfigError::Invalid {
            variable: "FINDINGS_TABLE",
            value: v,
            accepted: "a table name in this account (3-255 of a-z A-Z 0-9 _ - .)",
        });
    }
    Ok(v)
}

/// `TTL_ATTRIBUTE`: a top-level attribute name as DynamoDB's TimeToLiveSpecification takes it
/// (1 to 255 characters, any), without surrounding spaces.
fn ttl_attribute(v: String) -> Result<String, ConfigError> {
    let name = v.trim();
    if name.len() > 255 {
        return Err(ConfigError::Invalid {
            variable: "TTL_ATTRIBUTE",
            value: v,
            accepted: "the name of the table's TTL attribute (1-255 characters), or empty to read it with DescribeTimeToLive",
        });
    }
    Ok(name.to_string())
}

/// The variables the poller reads besides the verifier's (`config::VARIABLES`).
pub const POLLER_VARIABLES: &[&str] = &[
    "STREAM_ARN",
    "SOURCE_TABLE_NAME",
    "STREAM_ROLE_ARN",
    "STREAM_ROLE_EXTERNAL_ID",
    "CHECKPOINT_TABLE",
    "STARTING_POSITION",
    "GET_RECORDS_LIMIT",
    "LEASE_DURATION",
    "POLL_INTERVAL",
];

/// Poller variables the SAM template does not set: `SOURCE_TABLE_NAME` is the alternative to
/// `STREAM_ARN` for running by hand, `POLL_INTERVAL` applies outside Lambda only.
/// `STREAM_ROLE_ARN`/`STREAM_ROLE_EXTERNAL_ID` are the older names of `SOURCE_ROLE_ARN`/
/// `SOURCE_ROLE_EXTERNAL_ID`, still read.
pub const POLLER_VARIABLES_NOT_IN_TEMPLATE: &[&str] = &[
    "SOURCE_TABLE_NAME",
    "POLL_INTERVAL",
    "STREAM_ROLE_ARN",
    "STREAM_ROLE_EXTERNAL_ID",
];

/// Which stream to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamSelector {
    Arn(String),
    /// The table's current stream (`LatestStreamArn`), looked up every run: a stream disabled and
    /// enabled again gets a new ARN.
    SourceTable(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PollerConfig {
    pub verify: Config,
    pub stream: StreamSelector,
    pub stream_role_arn: Option<String>,
    pub stream_role_external_id: Option<String>,
    pub checkpoint_table: String,
    /// For shards without a checkpoint.
    pub starting_position: StartAt,
    pub get_records_limit: i32,
    /// How long a shard's lease lasts without being renewed (each checkpoint renews it).
    pub lease_duration: Duration,
    /// Outside Lambda: the time of one polling cycle.
    pub poll_interval: Duration,
}

impl PollerConfig {
    /// The stream's table (from `STREAM_ARN`, or `SOURCE_TABLE_NAME`) and the other side,
    /// `default_region` being the process's own.
    pub fn sides(&self, default_region: Option<&str>) -> Sides {
        let table = match &self.stream {
            // arn:...:table/NAME/stream/LABEL: the table's ARN is what comes before /stream/.
            StreamSelector::Arn(arn) => arn.split("/stream/").next().unwrap_or(arn),
            StreamSelector::SourceTable(table) => table,
        };
        let role = self.stream_role_arn.as_deref();
        Sides::read_through(&self.verify, table, role, default_region)
    }

    pub fn from_env() -> Result<PollerConfig, ConfigError> {
        PollerConfig::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<PollerConfig, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let verify = Config::from_lookup(&lookup)?;
        let stream = stream_selector(get("STREAM_ARN"), get("SOURCE_TABLE_NAME"))?;
        // The source account's role has one name for every function, `SOURCE_ROLE_ARN`;
        // `STREAM_ROLE_ARN` is the poller's older name for it.
        let older = role(get, "STREAM_ROLE_ARN", "STREAM_ROLE_EXTERNAL_ID")?;
        let (stream_role_arn, stream_role_external_id) = stream_role(&verify.source_access, older)?;
        let checkpoint_table = get("CHECKPOINT_TABLE").ok_or(ConfigError::Missing {
            variable: "CHECKPOINT_TABLE",
            accepted: "the name of the poller's checkpoint table",
        })?;
        let starting_position = starting_position(get("STARTING_POSITION"))?;
        let get_records_limit = match get("GET_RECORDS_LIMIT") {
            None => 1000,
            Some(v) => up_to_1000("GET_RECORDS_LIMIT", &v)? as i32,
        };
        let lease_duration = match get("LEASE_DURATION") {
            None => Duration::from_secs(300),
            Some(v) => positive_duration("LEASE_DURATION", &v)?,
        };
        let poll_interval = match get("POLL_INTERVAL") {
            None => Duration::from_secs(60),
            Some(v) => positive_duration("POLL_INTERVAL", &v)?,
        };
        Ok(PollerConfig {
            verify,
            stream,
            stream_role_arn,
            stream_role_external_id,
            checkpoint_table,
            starting_position,
            get_records_limit,
            lease_duration,
            poll_interval,
        })
    }
}

/// The stream read: `STREAM_ARN`, else `SOURCE_TABLE_NAME`'s current stream.
fn stream_selector(
    stream_arn: Option<String>,
    source_table: Option<String>,
) -> Result<StreamSelector, ConfigError> {
    match (stream_arn, source_table) {
        (Some(arn), _) if arn.starts_with("arn:") && arn.contains("/stream/") => {
            Ok(StreamSelector::Arn(arn))
        }
        (Some(arn), _) => Err(ConfigError::Invalid {
            variable: "STREAM_ARN",
            value: arn,
            accepted: "a stream ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL)",
        }),
        (None, Some(table)) => Ok(StreamSelector::SourceTable(table)),
        (None, None) => Err(ConfigError::Missing {
            variable: "STREAM_ARN",
            accepted: "a stream ARN, or SOURCE_TABLE_NAME to read the table's current stream",
        }),
    }
}

/// The stream's role and external ID: `SOURCE_ROLE_ARN`'s (`source`), else the `older` names'.
fn stream_role(
    source: &SourceAccess,
    older: (Option<String>, Option<String>),
) -> Result<(Option<String>, Option<String>), ConfigError> {
    match (&source.role_arn, older) {
        (Some(_), (Some(arn), _)) => Err(ConfigError::Invalid {
            variable: "STREAM_ROLE_ARN",
            value: arn,
            accepted: "unset when SOURCE_ROLE_ARN is set: it is SOURCE_ROLE_ARN's older name",
        }),
        (Some(arn), _) => Ok((Some(arn.clone()), source.external_id.clone())),
        (None, older) => Ok(older),
    }
}

/// `STARTING_POSITION`: where the poller starts a stream (TRIM_HORIZON when unset).
fn starting_position(value: Option<String>) -> Result<StartAt, ConfigError> {
    match value.as_deref().map(str::trim) {
        None | Some("TRIM_HORIZON") => Ok(StartAt::TrimHorizon),
        Some("LATEST") => Ok(StartAt::Latest),
        Some(other) => Err(ConfigError::Invalid {
            variable: "STARTING_POSITION",
            value: other.to_string(),
            accepted: "TRIM_HORIZON or LATEST",
        }),
    }
}

/// Variables of the baseline compare (`ddb-verify baseline`, the `baseline-segment` function),
/// besides the stream verifier's.
pub const BASELINE_VARIABLES: &[&str] = &[
    "SOURCE_TABLE_NAME",
    "CHECKPOINT_TABLE",
    "MAX_READ_UNITS",
    "SCAN_PAGE_LIMIT",
];

/// Variables of the revalidator (`ddb-verify revalidate`, the `revalidator` function), besides the
/// stream verifier's (`FINDINGS_TABLE` is required there).
pub const REVALIDATOR_VARIABLES: &[&str] =
    &["SOURCE_TABLE_NAME", "MAX_READ_UNITS", "FAILURE_QUEUE_URL"];

/// Baseline variables the SAM template does not set: pages of 1 MB suit a function.
pub const BASELINE_VARIABLES_NOT_IN_TEMPLATE: &[&str] = &["SCAN_PAGE_LIMIT"];

/// Read units per second per table when `MAX_READ_UNITS` is not set: about 0.8 MB/s of scan, a
/// small share of an on-demand table's capacity, so a first run never hurts production.
pub const DEFAULT_MAX_READ_UNITS: f64 = 100.0;

/// The baseline compare's configuration: the engine's, the source table to scan, where progress
/// is kept, and the read rate.
#[derive(Debug, Clone)]
pub struct BaselineConfig {
    pub verify: Config,
    /// The source table (read in this account, or through `SOURCE_ROLE_ARN`).
    pub source_table: String,
    pub checkpoint_table: String,
    /// Read capacity units per second on each table, for the whole process.
    pub max_read_units: f64,
    /// Items per Scan page (`SCAN_PAGE_LIMIT`); `None`: DynamoDB's 1 MB pages. A page is the unit
    /// of checkpointing: smaller pages re-verify less after a kill, at more calls.
    pub page_limit: Option<u32>,
    /// Items the merge of a segment's two scans holds at most, both sides together, before the
    /// oldest are settled by point reads ([`DEFAULT_PENDING_LIMIT`]; set in code, not by a
    /// variable). Bounds the baseline's memory whatever the tables' scan orders.
    pub pending_limit: usize,
}

/// A 1 MB page holds about 3,500 items of 300 bytes; when the two scans' orders agree (as measured
/// on DynamoDB Local and relied on by AWS's own bulk diff) the merge holds less than a page.
pub const DEFAULT_PENDING_LIMIT: usize = 10_000;

impl BaselineConfig {
    /// The two tables compared, `default_region` being the process's own.
    pub fn sides(&self, default_region: Option<&str>) -> Sides {
        Sides::of(&self.verify, &self.source_table, default_region)
    }

    pub fn from_env() -> Result<BaselineConfig, ConfigError> {
        BaselineConfig::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<BaselineConfig, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let verify = Config::from_lookup(&lookup)?;
        let source_table = get("SOURCE_TABLE_NAME").ok_or(ConfigError::Missing {
            variable: "SOURCE_TABLE_NAME",
            accepted: "the name of the source table to scan",
        })?;
        let checkpoint_table = get("CHECKPOINT_TABLE").ok_or(ConfigError::Missing {
            variable: "CHECKPOINT_TABLE",
            accepted: "the name of the checkpoint table, where each segment's progress is kept",
        })?;
        let max_read_units = max_read_units(get("MAX_READ_UNITS"))?;
        let page_limit = match get("SCAN_PAGE_LIMIT") {
            None => None,
            Some(v) => Some(up_to_1000("SCAN_PAGE_LIMIT", &v)? as u32),
        };
        Ok(BaselineConfig {
            verify,
            source_table,
            checkpoint_table,
            max_read_units,
            page_limit,
            pending_limit: DEFAULT_PENDING_LIMIT,
        })
    }
}

/// Variables of the revalidator besides [`VARIABLES`] ([`REVALIDATOR_VARIABLES`]): the findings to
/// check again, the source table they name, and the read rate.
#[derive(Debug, Clone)]
pub struct RevalidatorConfig {
    pub verify: Config,
    /// The source table (read in this account, or through `SOURCE_ROLE_ARN`); its name is the one
    /// the findings carry.
    pub source_table: String,
    /// `FINDINGS_TABLE`, required here.
    pub findings_table: String,
    /// Read capacity units per second on each table, for the whole run (`MAX_READ_UNITS`).
    pub max_read_units: f64,
    /// `FAILURE_QUEUE_URL`: the stream verifier's on-failure queue, which the readiness the
    /// scheduled function reports reads.
    pub failure_queue_url: Option<String>,
}

impl RevalidatorConfig {
    /// The two tables compared, `default_region` being the process's own.
    pub fn sides(&self, default_region: Option<&str>) -> Sides {
        Sides::of(&self.verify, &self.source_table, default_region)
    }

    pub fn from_env() -> Result<RevalidatorConfig, ConfigError> {
        RevalidatorConfig::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<RevalidatorConfig, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let verify = Config::from_lookup(&lookup)?;
        let source_table = get("SOURCE_TABLE_NAME").ok_or(ConfigError::Missing {
            variable: "SOURCE_TABLE_NAME",
            accepted: "the name (or ARN) of the source table whose findings are checked again",
        })?;
        let findings_table = verify
            .findings_table
            .clone()
            .ok_or(ConfigError::Missing {
                variable: "FINDINGS_TABLE",
                accepted: "the name of the findings table (in this account) whose open findings are checked again",
            })?;
        let max_read_units = max_read_units(get("MAX_READ_UNITS"))?;
        Ok(RevalidatorConfig {
            verify,
            source_table,
            findings_table,
            max_read_units,
            failure_queue_url: failure_queue_url(get("FAILURE_QUEUE_URL"))?,
        })
    }
}

/// `FAILURE_QUEUE_URL`: an SQS queue's URL, or unset.
fn failure_queue_url(value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
            Err(ConfigError::Invalid {
                variable: "FAILURE_QUEUE_URL",
                value: url,
                accepted: "the SQS queue's URL (https://sqs.<region>.amazonaws.com/<account>/<name>: the stack's FailureQueueUrl output)",
            })
        }
        other => Ok(other),
    }
}

/// Variables of `ddb-verify repair` besides the revalidator's ([`REVALIDATOR_VARIABLES`]): the
/// write rate, the version attribute for items too large for a condition, and the role that may
/// write on the other side.
pub const REPAIR_VARIABLES: &[&str] = &[
    "MAX_WRITE_UNITS",
    "REPAIR_VERSION_ATTRIBUTE",
    "REPAIR_ROLE_ARN",
    "REPAIR_ROLE_EXTERNAL_ID",
];

/// Write units per second on the other side's table when `MAX_WRITE_UNITS` is not set.
pub const DEFAULT_MAX_WRITE_UNITS: f64 = 25.0;

/// `ddb-verify repair`: the revalidator's configuration (the findings, both tables, the read
/// rate), and what writing on the other side takes.
#[derive(Debug, Clone)]
pub struct RepairConfig {
    pub revalidator: RevalidatorConfig,
    /// Write capacity units per second on the other side's table (`MAX_WRITE_UNITS`).
    pub max_write_units: f64,
    /// An attribute every writer changes on every write (`REPAIR_VERSION_ATTRIBUTE`): the
    /// condition of an item too large for an equality condition.
    pub version_attribute: Option<String>,
    /// The role that may write on the other side (`REPAIR_ROLE_ARN`), assumed with
    /// `REPAIR_ROLE_EXTERNAL_ID` (else `VERIFY_ROLE_EXTERNAL_ID`); `None`: the other side's
    /// credentials as `VERIFY_*` give them.
    pub role_arn: Option<String>,
    pub role_external_id: Option<String>,
}

impl RepairConfig {
    pub fn from_env() -> Result<RepairConfig, ConfigError> {
        RepairConfig::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<RepairConfig, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let revalidator = RevalidatorConfig::from_lookup(&lookup)?;
        let max_write_units =
            match get("MAX_WRITE_UNITS") {
                None => DEFAULT_MAX_WRITE_UNITS,
                Some(v) => match v.trim().parse::<f64>() {
                    Ok(n) if n.is_finite() && n >= 1.0 => n,
                    _ => return Err(ConfigError::Invalid {
                        variable: "MAX_WRITE_UNITS",
                        value: v,
                        accepted:
                            "write capacity units per second on the other side's table, at least 1",
                    }),
                },
            };
        let version_attribute = match get("REPAIR_VERSION_ATTRIBUTE") {
            Some(v) if v.trim().len() > 255 => {
                return Err(ConfigError::Invalid {
                    variable: "REPAIR_VERSION_ATTRIBUTE",
                    value: v,
                    accepted: "a top-level attribute name (1-255 characters)",
                })
            }
            v => v.map(|v| v.trim().to_string()),
        };
        let (role_arn, external_id) = role(get, "REPAIR_ROLE_ARN", "REPAIR_ROLE_EXTERNAL_ID")?;
        let role_external_id = external_id.or_else(|| {
            role_arn
                .as_ref()
                .and(revalidator.verify.target_access.external_id.clone())
        });
        Ok(RepairConfig {
            revalidator,
            max_write_units,
            version_attribute,
            role_arn,
            role_external_id,
        })
    }
}

/// `MAX_READ_UNITS`: [`DEFAULT_MAX_READ_UNITS`] when unset.
fn max_read_units(value: Option<String>) -> Result<f64, ConfigError> {
    match value {
        None => Ok(DEFAULT_MAX_READ_UNITS),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 1.0 => Ok(n),
            _ => Err(ConfigError::Invalid {
                variable: "MAX_READ_UNITS",
                value: v,
                accepted: "read capacity units per second per table, at least 1",
            }),
        },
    }
}

/// `ddb-verify findings`, `accept` and `readiness`: the findings table (in the process's own
/// account, its default credentials) and the verified table whose findings and coverage they read.
/// `VERIFY_TABLE_NAME` is not needed: nothing is read on the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingsCliConfig {
    /// `FINDINGS_TABLE`, required here.
    pub findings_table: String,
    /// `SOURCE_TABLE_NAME`: the verified table, as the findings name it.
    pub source_table: String,
    /// `SOURCE_TABLE_NAME` as given (a name, or an ARN naming its region and account): what
    /// readiness describes for the table's current stream.
    pub source_api_name: String,
    /// `SOURCE_ROLE_ARN`, `SOURCE_ROLE_EXTERNAL_ID`: readiness describes the source table through
    /// this role when the functions run in the other account.
    pub source_access: SourceAccess,
    /// `FAILURE_QUEUE_URL`: the stream verifier's on-failure queue, which readiness reads.
    pub failure_queue_url: Option<String>,
    /// `CHECKPOINT_TABLE`, optional: where `readiness` finds which tables the counted baseline
    /// run compared.
    pub checkpoint_table: Option<String>,
}

impl FindingsCliConfig {
    pub fn from_env() -> Result<FindingsCliConfig, ConfigError> {
        FindingsCliConfig::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<FindingsCliConfig, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let findings_table = get("FINDINGS_TABLE").ok_or(ConfigError::Missing {
            variable: "FINDINGS_TABLE",
            accepted: "the name of the findings table (in this account) the verifiers write to",
        })?;
        if !valid_table_name(&findings_table) {
            return Err(ConfigError::Invalid {
                variable: "FINDINGS_TABLE",
                value: findings_table,
                accepted: "a table name in this account (3-255 of a-z A-Z 0-9 _ - .)",
            });
        }
        let source_table = get("SOURCE_TABLE_NAME").ok_or(ConfigError::Missing {
            variable: "SOURCE_TABLE_NAME",
            accepted: "the name (or ARN) of the verified (source) table whose findings are shown",
        })?;
        // The findings carry the table's name, an ARN's too.
        let source_api_name = source_table.clone();
        let source_table = TableRef::parse(&source_table)
            .map(|t| t.name)
            .unwrap_or(source_table);
        let (role_arn, external_id) = role(get, "SOURCE_ROLE_ARN", "SOURCE_ROLE_EXTERNAL_ID")?;
        let source_access = SourceAccess {
            role_arn,
            external_id,
        };
        let failure_queue_url = failure_queue_url(get("FAILURE_QUEUE_URL"))?;
        let checkpoint_table = get("CHECKPOINT_TABLE");
        if let Some(table) = checkpoint_table.as_ref().filter(|t| !valid_table_name(t)) {
            return Err(ConfigError::Invalid {
                variable: "CHECKPOINT_TABLE",
                value: table.clone(),
                accepted: "a table name in this account (3-255 of a-z A-Z 0-9 _ - .)",
            });
        }
        Ok(FindingsCliConfig {
            findings_table,
            source_table,
            source_api_name,
            source_access,
            failure_queue_url,
            checkpoint_table,
        })
    }
}

/// Variables of `ddb-verify preflight` besides every function's ([`VARIABLES`]; `FINDINGS_TABLE`
/// and `RECHECK_SOURCE` are among those).
pub const PREFLIGHT_VARIABLES: &[&str] =
    &["SOURCE_TABLE_NAME", "CHECKPOINT_TABLE", "MAX_READ_UNITS"];

/// Variables of `ddb-verify init`, all of them.
pub const INIT_VARIABLES: &[&str] = &["CHECKPOINT_TABLE", "FINDINGS_TABLE"];

const OWN_TABLE_ACCEPTS: &str = "a table name in this account (3-255 of a-z A-Z 0-9 _ - .)";

/// An optional table name in this account, checked.
fn own_table(
    get: impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<Option<String>, ConfigError> {
    match get(variable).map(|v| v.trim().to_string()) {
        Some(table) if !valid_table_name(&table) => Err(ConfigError::Invalid {
            variable,
            value: table,
            accepted: OWN_TABLE_ACCEPTS,
        }),
        table => Ok(table),
    }
}

/// `ddb-verify preflight`: every function's variables (the other side, the roles,
/// `RECHECK_SOURCE`, `FINDINGS_TABLE`), the source table, and the optional checkpoint table and
/// read rate it checks.
#[derive(Debug, Clone)]
pub struct PreflightConfig {
    pub verify: Config,
    /// `SOURCE_TABLE_NAME` (a name or an ARN), required.
    pub source_table: String,
    /// `CHECKPOINT_TABLE`, checked when set.
    pub checkpoint_table: Option<String>,
    /// `MAX_READ_UNITS` (its default when unset), against the tables' read capacity.
    pub max_read_units: f64,
}

impl PreflightConfig {
    /// The two tables compared, `default_region` being the process's own.
    pub fn sides(&self, default_region: Option<&str>) -> Sides {
        Sides::of(&self.verify, &self.source_table, default_region)
    }

    pub fn from_env() -> Result<PreflightConfig, ConfigError> {
        PreflightConfig::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<PreflightConfig, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let verify = Config::from_lookup(&lookup)?;
        let source_table = get("SOURCE_TABLE_NAME").ok_or(ConfigError::Missing {
            variable: "SOURCE_TABLE_NAME",
            accepted: "the name (or ARN) of the source table",
        })?;
        Ok(PreflightConfig {
            verify,
            source_table: source_table.trim().to_string(),
            checkpoint_table: own_table(get, "CHECKPOINT_TABLE")?,
            max_read_units: max_read_units(get("MAX_READ_UNITS"))?,
        })
    }
}

/// `ddb-verify init`: the tables it creates in this account, at least one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitConfig {
    pub checkpoint_table: Option<String>,
    pub findings_table: Option<String>,
}

impl InitConfig {
    pub fn from_env() -> Result<InitConfig, ConfigError> {
        InitConfig::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<InitConfig, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let config = InitConfig {
            checkpoint_table: own_table(get, "CHECKPOINT_TABLE")?,
            findings_table: own_table(get, "FINDINGS_TABLE")?,
        };
        if config.checkpoint_table.is_none() && config.findings_table.is_none() {
            return Err(ConfigError::Missing {
                variable: "CHECKPOINT_TABLE",
                accepted: "CHECKPOINT_TABLE or FINDINGS_TABLE (or both): the tables `ddb-verify init` creates in this account",
            });
        }
        Ok(config)
    }
}

/// A duration that must not be zero: a lease of 0 expires as it is taken (two runs would read the
/// same shard), and a polling cycle of 0 never waits between runs.
fn positive_duration(variable: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let d = parse_duration(variable, value)?;
    if d.is_zero() {
        return Err(ConfigError::Invalid {
            variable,
            value: value.to_string(),
            accepted: "a duration greater than zero such as 30s, 5m or 1h",
        });
    }
    Ok(d)
}

/// A whole number from 1 to 1000 (`MAX_CONCURRENCY`, `GET_RECORDS_LIMIT`).
fn up_to_1000(variable: &'static str, value: &str) -> Result<usize, ConfigError> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err(ConfigError::Invalid {
            variable,
            value: value.to_string(),
            accepted: "a whole number from 1 to 1000",
        }),
    }
}

/// A role to assume and its external id, from two variables: the role must be a role ARN, and the
/// external id needs the role.
fn role(
    get: impl Fn(&str) -> Option<String>,
    role_variable: &'static str,
    external_id_variable: &'static str,
) -> Result<(Option<String>, Option<String>), ConfigError> {
    let (role_arn, external_id) = (get(role_variable), get(external_id_variable));
    if let Some(role) = &role_arn {
        if !role.starts_with("arn:") || !role.contains(":role/") {
            return Err(ConfigError::Invalid {
                variable: role_variable,
                value: role.clone(),
                accepted: "an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
            });
        }
    }
    if external_id.is_some() && role_arn.is_none() {
        return Err(ConfigError::Requires {
            variable: external_id_variable,
            requires: role_variable,
        });
    }
    Ok((role_arn, external_id))
}

const DURATION_ACCEPTS: &str = "a duration such as 500ms, 30s, 2m or 1h";
const BOOL_ACCEPTS: &str = "true or false";

fn parse_bool(variable: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError::Invalid {
            variable,
            value: value.to_string(),
            accepted: BOOL_ACCEPTS,
        }),
    }
}

/// Parses `500ms`, `30s`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(variable: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let invalid = || ConfigError::Invalid {
        variable,
        value: value.to_string(),
        accepted: DURATION_ACCEPTS,
    };
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(invalid()),
    };
    if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
        return Err(invalid());
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_only_the_table_is_set() {
        let c = parse(&[("VERIFY_TABLE_NAME", "Orders")]).unwrap();
        assert_eq!(c.target_table.name, "Orders");
        assert_eq!(c.sample_rate, 1.0);
        assert_eq!(c.max_replication_lag, Duration::from_secs(30));
        assert!(c.consistent_read && c.recheck_source && !c.log_item_values);
        assert_eq!(c.max_concurrency, 5);
    }

    #[test]
    fn table_arn_gives_name_and_region() {
        let c = parse(&[(
            "VERIFY_TABLE_NAME",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders",
        )])
        .unwrap();
        assert_eq!(c.target_table.name, "Orders");
        assert_eq!(c.target_access.region.as_deref(), Some("eu-west-1"));
        assert!(c.target_table.api_name.starts_with("arn:"));
        // An explicit region wins over the ARN's.
        let c = parse(&[
            (
                "VERIFY_TABLE_NAME",
                "arn:aws:dynamodb:eu-west-1:1:table/Orders",
            ),
            ("VERIFY_REGION", "us-east-2"),
        ])
        .unwrap();
        assert_eq!(c.target_access.region.as_deref(), Some("us-east-2"));
    }

    #[test]
    fn every_error_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "VERIFY_TABLE_NAME"),
            (&[("VERIFY_TABLE_NAME", "a b")], "VERIFY_TABLE_NAME"),
            (
                &[("VERIFY_TABLE_NAME", "arn:aws:s3:::bucket")],
                "VERIFY_TABLE_NAME",
            ),
            (
                &[(
                    "VERIFY_TABLE_NAME",
                    "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders/stream/2026-01-01T00:00:00.000",
                )],
                "VERIFY_TABLE_NAME",
            ),
            (
                &[("VERIFY_TABLE_NAME", "T1x"), ("SAMPLE_RATE", "0")],
                "SAMPLE_RATE",
            ),
            (
                &[("VERIFY_TABLE_NAME", "T1x"), ("SAMPLE_RATE", "1.5")],
                "SAMPLE_RATE",
            ),
            (
                &[("VERIFY_TABLE_NAME", "T1x"), ("SAMPLE_RATE", "abc")],
                "SAMPLE_RATE",
            ),
            (
                &[
                    ("VERIFY_TABLE_NAME", "T1x"),
                    ("MAX_REPLICATION_LAG", "30 parsecs"),
                ],
                "MAX_REPLICATION_LAG",
            ),
            (
                &[("VERIFY_TABLE_NAME", "T1x"), ("DEADLINE_MARGIN", "-1s")],
                "DEADLINE_MARGIN",
            ),
            (
                &[("VERIFY_TABLE_NAME", "T1x"), ("LAG_WINDOW_FROM", "now")],
                "LAG_WINDOW_FROM",
            ),
            (
                &[("VERIFY_TABLE_NAME", "T1x"), ("CONSISTENT_READ", "maybe")],
                "CONSISTENT_READ",
            ),
            (
                &[("VERIFY_TABLE_NAME", "T1x"), ("RECHECK_SOURCE", "2")],
                "RECHECK_SOURCE",
            ),
            (
                &[("VERIFY_TABLE_NAME", "T1x"), ("FINDINGS_TABLE", "my findings")],
                "FINDINGS_TABLE",
            ),
            (
                &[("VERIFY_TABLE_NAME", "T1x"), ("MAX_CONCURRENCY", "0")],
                "MAX_CONCURRENCY",
            ),
            (
                &[("VERIFY_TABLE_NAME", "T1x"), ("LOG_ITEM_VALUES", "y")],
                "LOG_ITEM_VALUES",
            ),
            (
                &[
                    ("VERIFY_TABLE_NAME", "T1x"),
                    ("METRICS_NAMESPACE", "AWS/DynamoDB"),
                ],
                "METRICS_NAMESPACE",
            ),
            (
                &[("VERIFY_TABLE_NAME", "T1x"), ("VERIFY_ROLE_ARN", "my-role")],
                "VERIFY_ROLE_ARN",
            ),
            (
                &[
                    ("VERIFY_TABLE_NAME", "T1x"),
                    ("VERIFY_ROLE_EXTERNAL_ID", "x"),
                ],
                "VERIFY_ROLE_EXTERNAL_ID",
            ),
            (
                &[("VERIFY_TABLE_NAME", "T1x"), ("SOURCE_ROLE_ARN", "source-role")],
                "SOURCE_ROLE_ARN",
            ),
            (
                &[
                    ("VERIFY_TABLE_NAME", "T1x"),
                    ("SOURCE_ROLE_EXTERNAL_ID", "x"),
                ],
                "SOURCE_ROLE_EXTERNAL_ID",
            ),
        ];
        for (vars, variable) in cases {
            let err = parse(vars).expect_err(variable).to_string();
            assert!(err.starts_with(variable), "{err} should name {variable}");
        }
        let err = parse(&[(
            "VERIFY_TABLE_NAME",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders/stream/2026-01-01T00:00:00.000",
        )])
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a stream ARN"), "{err}");
    }

    #[test]
    fn durations_accept_the_documented_forms() {
        let d = |s| parse_duration("X", s).unwrap();
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("30s"), Duration::from_secs(30));
        assert_eq!(d("2m"), Duration::from_secs(120));
        assert_eq!(d("1h"), Duration::from_secs(3600));
        assert_eq!(d("1.5s"), Duration::from_millis(1500));
        assert_eq!(d("7"), Duration::from_secs(7));
        assert!(parse_duration("X", "").is_err());
        assert!(parse_duration("X", "2d").is_err());
    }

    #[test]
    fn ignore_attributes_is_a_trimmed_list() {
        let c = parse(&[
            ("VERIFY_TABLE_NAME", "Orders"),
            ("IGNORE_ATTRIBUTES", " migrated_at, _ver ,,"),
        ])
        .unwrap();
        assert_eq!(c.ignore_attributes, vec!["migrated_at", "_ver"]);
    }

    fn baseline(vars: &[(&str, &str)]) -> BaselineConfig {
        let mut all: HashMap<String, String> = [
            ("VERIFY_TABLE_NAME", "Orders"),
            ("SOURCE_TABLE_NAME", "Orders"),
            ("CHECKPOINT_TABLE", "Checkpoints"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in vars {
            all.insert(k.to_string(), v.to_string());
        }
        BaselineConfig::from_lookup(|k| all.get(k).cloned()).unwrap()
    }

    #[test]
    fn both_tables_are_named_with_their_account_and_region() {
        let region = Some("us-east-1");
        let sides = baseline(&[]).sides(region);
        assert_eq!(sides.source.to_string(), "Orders (this account, us-east-1)");
        assert_eq!(sides.other.to_string(), "Orders (this account, us-east-1)");
        assert_eq!(
            baseline(&[("VERIFY_PROFILE", "target")])
                .sides(None)
                .other
                .to_string(),
            "Orders (the account of profile target, the default region)"
        );
        let roles = baseline(&[
            ("VERIFY_ROLE_ARN", "arn:aws:iam::222222222222:role/verify"),
            ("VERIFY_PROFILE", "target"),
            ("SOURCE_ROLE_ARN", "arn:aws:iam::111111111111:role/source"),
            ("VERIFY_REGION", "eu-west-1"),
        ])
        .sides(region);
        assert_eq!(
            roles.other.to_string(),
            "Orders (account 222222222222, eu-west-1)"
        );
        assert_eq!(
            roles.source.to_string(),
            "Orders (account 111111111111, us-east-1)"
        );
        let arns = baseline(&[
            (
                "VERIFY_TABLE_NAME",
                "arn:aws:dynamodb:eu-west-1:333333333333:table/Copy",
            ),
            (
                "SOURCE_TABLE_NAME",
                "arn:aws:dynamodb:us-east-2:444444444444:table/Orders",
            ),
        ])
        .sides(region);
        assert_eq!(
            arns.other.to_string(),
            "Copy (account 333333333333, eu-west-1)"
        );
        assert_eq!(
            arns.source.to_string(),
            "Orders (account 444444444444, us-east-2)"
        );
    }

    #[test]
    fn a_table_compared_with_itself_is_refused_naming_the_variables() {
        let region = Some("us-east-1");
        let same = |vars: &[(&str, &str)]| baseline(vars).sides(region).refuse_same_table();
        let err = same(&[]).unwrap_err().to_string();
        assert!(
            err.starts_with("VERIFY_TABLE_NAME names the very table verified")
                && err.contains("Orders (this account, us-east-1)")
                && err.contains("VERIFY_PROFILE or VERIFY_ROLE_ARN"),
            "{err}"
        );
        // The default region named explicitly, one account id twice: still the same table.
        assert!(same(&[("VERIFY_REGION", "us-east-1")]).is_err());
        let role = "arn:aws:iam::222222222222:role/r";
        assert!(same(&[("VERIFY_ROLE_ARN", role), ("SOURCE_ROLE_ARN", role)]).is_err());
        // Another account, region or name is another table; a profile's account is not known.
        assert!(same(&[("VERIFY_PROFILE", "target")]).is_ok());
        assert!(same(&[("VERIFY_ROLE_ARN", role)]).is_ok());
        assert!(same(&[("VERIFY_REGION", "eu-west-1")]).is_ok());
        assert!(same(&[("VERIFY_TABLE_NAME", "OrdersCopy")]).is_ok());
    }

    const STREAM: &str =
        "arn:aws:dynamodb:us-east-1:111111111111:table/Source/stream/2026-01-01T00:00:00.000";

    #[test]
    fn revalidator_configuration_errors_name_the_variable() {
        let base = |extra: &[(&str, &str)]| {
            let mut vars: HashMap<String, String> = [
                ("VERIFY_TABLE_NAME", "Target"),
                ("SOURCE_TABLE_NAME", "Orders"),
                ("FINDINGS_TABLE", "Findings"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            for (k, v) in extra {
                vars.insert(k.to_string(), v.to_string());
            }
            RevalidatorConfig::from_lookup(|k| vars.get(k).cloned())
        };
        let ok = base(&[]).unwrap();
        assert_eq!(ok.source_table, "Orders");
        assert_eq!(ok.findings_table, "Findings");
        assert_eq!(ok.max_read_units, DEFAULT_MAX_READ_UNITS);
        assert_eq!(
            base(&[("MAX_READ_UNITS", "250")]).unwrap().max_read_units,
            250.0
        );
        for (var, value) in [
            ("FINDINGS_TABLE", ""),
            ("FINDINGS_TABLE", "my findings"),
            ("SOURCE_TABLE_NAME", ""),
            ("MAX_READ_UNITS", "lots"),
            ("MAX_READ_UNITS", "0.5"),
            ("VERIFY_TABLE_NAME", ""),
        ] {
            let err = base(&[(var, value)]).unwrap_err().to_string();
            assert!(err.starts_with(var), "{var}={value:?}: {err}");
        }
    }

    #[test]
    fn poller_configuration_errors_name_the_variable() {
        let base = |extra: &[(&str, &str)]| {
            let mut vars: HashMap<String, String> = [
                ("VERIFY_TABLE_NAME", "Target"),
                ("CHECKPOINT_TABLE", "Checkpoints"),
                ("STREAM_ARN", STREAM),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            for (k, v) in extra {
                vars.insert(k.to_string(), v.to_string());
            }
            PollerConfig::from_lookup(|k| vars.get(k).cloned())
        };
        assert!(base(&[]).is_ok());
        for (var, value) in [
            ("STREAM_ARN", "not-an-arn"),
            ("STARTING_POSITION", "AT_TIMESTAMP"),
            ("GET_RECORDS_LIMIT", "5000"),
            ("LEASE_DURATION", "forever"),
            ("LEASE_DURATION", "0"),
            ("LEASE_DURATION", "0s"),
            ("POLL_INTERVAL", "x"),
            ("POLL_INTERVAL", "0"),
            ("POLL_INTERVAL", "0ms"),
            ("STREAM_ROLE_EXTERNAL_ID", "id"),
        ] {
            let err = base(&[(var, value)]).unwrap_err().to_string();
            assert!(err.starts_with(var), "{err}");
        }
        let err = base(&[("CHECKPOINT_TABLE", "")]).unwrap_err().to_string();
        assert!(err.starts_with("CHECKPOINT_TABLE"), "{err}");
        let by_table = base(&[("STREAM_ARN", ""), ("SOURCE_TABLE_NAME", "Orders")]).unwrap();
        assert_eq!(
            by_table.stream,
            StreamSelector::SourceTable("Orders".into())
        );
        // The source account's role has one name for every function; the older one still works,
        // and both at once are refused rather than one silently preferred.
        let role = "arn:aws:iam::1:role/r";
        let by_source =
            base(&[("SOURCE_ROLE_ARN", role), ("SOURCE_ROLE_EXTERNAL_ID", "x")]).unwrap();
        assert_eq!(by_source.stream_role_arn.as_deref(), Some(role));
        assert_eq!(by_source.stream_role_external_id.as_deref(), Some("x"));
        let by_older = base(&[("STREAM_ROLE_ARN", role)]).unwrap();
        assert_eq!(by_older.stream_role_arn.as_deref(), Some(role));
        let err = base(&[("SOURCE_ROLE_ARN", role), ("STREAM_ROLE_ARN", role)])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("STREAM_ROLE_ARN") && err.contains("SOURCE_ROLE_ARN"),
            "{err}"
        );
    }

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn preflight_reads_the_source_the_checkpoint_table_and_the_read_budget_naming_each_error() {
        let base = [
            ("VERIFY_TABLE_NAME", "Copy"),
            ("SOURCE_TABLE_NAME", "Orders"),
        ];
        let c = PreflightConfig::from_lookup(lookup(&base)).unwrap();
        assert_eq!(c.source_table, "Orders");
        assert_eq!(
            (c.checkpoint_table, c.max_read_units),
            (None, DEFAULT_MAX_READ_UNITS)
        );
        for (var, value) in [
            ("SOURCE_TABLE_NAME", ""),
            ("CHECKPOINT_TABLE", "my checkpoints"),
            ("MAX_READ_UNITS", "0"),
            ("VERIFY_TABLE_NAME", ""),
        ] {
            let mut vars = base.to_vec();
            vars.push((var, value));
            let err = PreflightConfig::from_lookup(lookup(&vars))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(var), "{var}={value:?}: {err}");
        }
    }

    #[test]
    fn init_needs_one_of_its_two_tables_and_names_them_when_neither_is_set() {
        let err = InitConfig::from_lookup(lookup(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CHECKPOINT_TABLE") && err.contains("FINDINGS_TABLE"),
            "{err}"
        );
        let one = InitConfig::from_lookup(lookup(&[("FINDINGS_TABLE", "F1x")])).unwrap();
        assert_eq!(one.findings_table.as_deref(), Some("F1x"));
        assert_eq!(one.checkpoint_table, None);
        let err = InitConfig::from_lookup(lookup(&[("CHECKPOINT_TABLE", "a b")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("CHECKPOINT_TABLE="), "{err}");
    }

    #[test]
    fn ttl_attribute_is_read_trimmed_and_a_name_too_long_is_refused_by_its_variable() {
        let base = ("VERIFY_TABLE_NAME", "T1x");
        assert_eq!(parse(&[base]).unwrap().ttl_attribute, None);
        let set = parse(&[base, ("TTL_ATTRIBUTE", " expiresAt ")]).unwrap();
        assert_eq!(set.ttl_attribute.as_deref(), Some("expiresAt"));
        // Empty counts as unset: DescribeTimeToLive tells.
        assert_eq!(
            parse(&[base, ("TTL_ATTRIBUTE", " ")])
                .unwrap()
                .ttl_attribute,
            None
        );
        let long = "x".repeat(256);
        let err = parse(&[base, ("TTL_ATTRIBUTE", &long)])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("TTL_ATTRIBUTE="), "{err}");
    }
}
