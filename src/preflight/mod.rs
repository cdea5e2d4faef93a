//! `ddb-verify preflight`: is the migration set up so that verification can work? Each check says
//! what it found and what to do. [`assess`] is pure ([`Facts`] in, [`Check`]s out, one rule per
//! check in [`rules`]); `aws::preflight::gather` makes the calls, each that fails becoming an
//! [`Unchecked`] fact.
//!
//! A check that cannot be made with the credentials at hand is NOT CHECKED, with the call and why,
//! and never fails the run; only the two tables themselves are a FAIL when they cannot be described
//! (nothing else could be verified). The run fails (exit 2) when any check is a FAIL.

pub mod rules;

use serde_json::{json, Value};

use crate::ports::layout::{Layout, TableShape};
use crate::ports::mappings::Mapping;

/// A check's outcome, worst last but [`Status::NotChecked`], which never fails a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Info,
    Warn,
    Fail,
    NotChecked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Info => "INFO",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::NotChecked => "NOT CHECKED",
        }
    }
}

/// One check: what it found, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub found: String,
    pub todo: Option<String>,
}

impl Check {
    pub fn new(name: &'static str, status: Status, found: impl Into<String>) -> Check {
        Check {
            name,
            status,
            found: found.into(),
            todo: None,
        }
    }

    pub fn todo(mut self, todo: impl Into<String>) -> Check {
        self.todo = Some(todo.into());
        self
    }
}

/// A call that could not be made, and why (access denied, not supported by the endpoint, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchecked {
    /// The API and what it was called on: `DescribeTimeToLive on Orders`.
    pub call: String,
    pub reason: String,
}

impl Unchecked {
    pub fn new(call: impl Into<String>, reason: impl Into<String>) -> Unchecked {
        Unchecked {
            call: call.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Unchecked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.call, self.reason)
    }
}

/// A fact from a call: what it answered, or why it could not be had.
pub type Known<T> = Result<T, Unchecked>;

/// One of the two tables compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFacts {
    /// As the operator tells it: `Orders (this account, us-east-1)`.
    pub side: String,
    pub table: Known<TableShape>,
    /// Its TTL attribute when TTL is on (DescribeTimeToLive).
    pub ttl: Known<Option<String>>,
}

/// One of the verifier's own tables (`CHECKPOINT_TABLE`, `FINDINGS_TABLE`), when its variable is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnTable {
    pub name: String,
    pub layout: Layout,
    pub table: Known<TableShape>,
    pub ttl: Known<Option<String>>,
}

/// How one role a function must assume answered a deployed function's role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    Assumed,
    /// Refused (AccessDenied): not trusted, the external id wrong, or no `sts:AssumeRole` allowed.
    Denied(String),
    /// Not known (the network, a time-out).
    Unknown(Unchecked),
}

/// `--as-deployed`: a function's execution role, and what it could assume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleProbe {
    pub role: String,
    /// `Err`: this role could not be assumed from the operator's credentials, so nothing was tried
    /// as it. `Ok`: each role the functions assume (`VERIFY_ROLE_ARN`, `SOURCE_ROLE_ARN`), by its
    /// variable, and how it answered.
    pub hops: Known<Vec<(&'static str, String, Hop)>>,
}

/// Everything `preflight` gathered.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub source: TableFacts,
    pub other: TableFacts,
    /// The configuration's refusal of a table compared with itself (`Sides::refuse_same_table`).
    pub same_table: Option<String>,
    /// `RECHECK_SOURCE`.
    pub recheck_source: bool,
    /// The functions run in another account than the source (`SOURCE_ROLE_ARN` is set): a stream
    /// verifier there reads the stream through its resource policy.
    pub verifier_elsewhere: bool,
    /// The source stream's resource policy (`Ok(None)`: none); `None` when not read (no stream, or
    /// the verifier is in the stream's account).
    pub stream_policy: Option<Known<Option<String>>>,
    /// The event source mappings on the source stream this account can list; `None`: no stream.
    pub mappings: Option<Known<Vec<Mapping>>>,
    /// `--poller`: a shard poller reads the stream too.
    pub poller: bool,
    /// `--other-readers`: readers preflight cannot list (a replicator outside Lambda or elsewhere).
    pub other_readers: u32,
    /// Point-in-time recovery on the source.
    pub point_in_time_recovery: Known<bool>,
    pub checkpoint: Option<OwnTable>,
    pub findings: Option<OwnTable>,
    /// `MAX_READ_UNITS`.
    pub max_read_units: f64,
    /// `--processes`: processes reading each table at once, each at `MAX_READ_UNITS` (a Step
    /// Functions baseline runs `BaselineMaxConcurrency` of them).
    pub processes: u32,
    pub roles: Vec<RoleProbe>,
}

/// Every check, in the order an operator fixes them.
pub fn assess(facts: &Facts) -> Vec<Check> {
    let mut out = vec![
        rules::reachable("source table", &facts.source, rules::SOURCE_TODO),
        rules::reachable("other side", &facts.other, rules::OTHER_TODO),
        rules::not_same_table(facts),
        rules::key_schema(facts),
        rules::secondary_indexes(facts),
        rules::time_to_live(facts),
        rules::stream(facts),
    ];
    out.extend(rules::stream_policy(facts));
    out.extend(rules::stream_readers(facts));
    out.push(rules::point_in_time_recovery(facts));
    out.push(rules::own_table(
        &facts.checkpoint,
        "checkpoint table",
        "CHECKPOINT_TABLE",
    ));
    out.push(rules::own_table(
        &facts.findings,
        "findings table",
        "FINDINGS_TABLE",
    ));
    out.extend(rules::read_budget(facts));
    out.push(rules::global_table(facts));
    out.extend(facts.roles.iter().map(rules::deployed_role));
    out
}

/// The checks of one run, and how they add up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// Whether any check failed: the run's exit status is 2.
    pub fn failed(&self) -> bool {
        self.count(Status::Fail) > 0
    }

    /// `{"checks": [{"name", "status", "found", "todo"}], "failed", "warned", "not_checked"}`.
    pub fn to_json(&self) -> Value {
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|c| {
                json!({"name": c.name, "status": c.status.as_str(), "found": c.found, "todo": c.todo})
            })
            .collect();
        json!({
            "checks": checks,
            "failed": self.count(Status::Fail),
            "warned": self.count(Status::Warn),
            "not_checked": self.count(Status::NotChecked),
        })
    }

    /// `STATUS  check  found`, and `→ what to do` under it; a closing count.
    pub fn to_text(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            out += &format!(
                "{:<11}  {:<width$}  {}\n",
                c.status.as_str(),
                c.name,
                c.found
            );
            if let Some(todo) = &c.todo {
                out += &format!("{:<11}  {:<width$}  → {todo}\n", "", "");
            }
        }
        out += &format!(
            "{} checks: {} FAIL, {} WARN, {} NOT CHECKED\n",
            self.checks.len(),
            self.count(Status::Fail),
            self.count(Status::Warn),
            self.count(Status::NotChecked)
        );
        out
    }
}
