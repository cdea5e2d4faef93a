//! `ddb-verify repair`: the open findings of a table made right on the other side, race-safely,
//! each repair recorded on its finding and then judged again by the engine.
//!
//! Without `apply`, a plan from the findings alone (nothing is read or written): each finding and
//! the write it would make. With `apply`, a finding at a time:
//! 1. the other side's item read consistently, then the source's (at `MAX_READ_UNITS`): what
//!    replication writes after the first read fails the write's condition;
//! 2. the write decided from them ([`decide`]: never a resurrection, a delete only while the
//!    source has no item, every write conditional on the other side still holding what was read),
//!    recorded on the finding as attempted, and made at `MAX_WRITE_UNITS`; a failed condition is
//!    a lost race (replication wrote first): nothing written, reported;
//! 3. the source read again: a put whose item the source deleted meanwhile is removed again, a
//!    delete whose item the source created meanwhile is put back (each on its own condition);
//! 4. the outcome recorded on the finding (`repairedAt`, `repairedBy`, `repairAction`,
//!    `repairOutcome`);
//! 5. a chunk's findings judged again as revalidation judges them ([`Revalidator::recheck`]): a
//!    finding is resolved only by a verified MATCH, never by the repair itself.

pub mod decide;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::{json, Value};
use thiserror::Error;

use crate::config::RepairConfig;
use crate::ports::findings::{
    canonical_key, Finding, FindingStatus, FindingsError, FindingsStore, ListCursor, PageRequest,
    RepairRecord,
};
use crate::ports::rate::{CapacityRate, Limited};
use crate::ports::table::{
    BatchGet, Condition, ConditionExpression, ConditionalWrite, LookupError, TableReader,
    TableWriter, WriteAction, WriteError, WriteOutcome,
};
use crate::record::Item;
use crate::revalidate::{RevalidateError, Revalidator};
use crate::shared::epoch_ms;
use decide::{decide, Decision, Plan, Rules, Skip};

/// Findings listed and judged again at a time.
pub const CHUNK: usize = 100;

/// Attempts at a write that fails transiently (throttling, time-outs) before it is skipped.
const WRITE_ATTEMPTS: u32 = 4;

/// Attempts at reading the keys a BatchGetItem left unprocessed.
const READ_ATTEMPTS: u32 = 8;

#[derive(Debug, Error)]
pub enum RepairError {
    #[error("listing the open findings of {table} failed")]
    List {
        table: String,
        #[source]
        source: FindingsError,
    },
    #[error("reading {side} table {table} failed")]
    Read {
        side: &'static str,
        table: String,
        #[source]
        source: LookupError,
    },
    #[error("writing to the other side's table {table} failed (with REPAIR_ROLE_ARN, the role must allow PutItem and DeleteItem on it: templates/verify-role.yaml with EnableRepair=true)")]
    Write {
        table: String,
        #[source]
        source: WriteError,
    },
    #[error("recording the repair of {key} on its finding failed")]
    Record {
        key: String,
        #[source]
        source: FindingsError,
    },
    #[error("judging the repaired findings again failed")]
    Recheck(#[source] RevalidateError),
}

/// What a run takes on.
#[derive(Debug, Clone, Default)]
pub struct RepairOptions {
    /// Write (else only plan).
    pub apply: bool,
    /// At most this many findings repaired (those with a write planned), in the findings' order.
    pub limit: Option<usize>,
    /// EXTRA findings deleted on the other side too.
    pub delete_extra: bool,
    /// Who runs it, recorded as `repairedBy`.
    pub by: String,
}

/// One finding in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairEntry {
    pub key_text: String,
    pub verdict: String,
    /// `put`, `delete` or `none`.
    pub action: &'static str,
    /// `planned`, `written`, `lost race`, or a [`Skip`]'s reason.
    pub outcome: &'static str,
    /// The finding's attribute paths (names, never values).
    pub attributes: Vec<String>,
    /// Expected and found values, only with `LOG_ITEM_VALUES=true`.
    pub values: Option<String>,
}

/// What a run did (or, without `apply`, would do).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepairReport {
    pub table: String,
    pub applied: bool,
    /// Open findings looked at.
    pub findings: u64,
    /// With a write planned (put or delete).
    pub planned: u64,
    /// Written.
    pub repaired: u64,
    /// The condition failed: the other side changed between the read and the write.
    pub lost_races: u64,
    /// Nothing written, by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Judged again after the repair: resolved by a verified MATCH, or still open.
    pub resolved: u64,
    pub still_open: u64,
    /// Open findings of the table after the run (with `apply`).
    pub open_remaining: Option<u64>,
    pub entries: Vec<RepairEntry>,
}

impl RepairReport {
    /// One JSON object: the counts and every entry.
    pub fn to_json(&self) -> Value {
        let entries: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                let mut entry = json!({
                    "key": e.key_text,
                    "verdict": e.verdict,
                    "action": e.action,
                    "outcome": e.outcome,
                    "attributes": e.attributes,
                });
                if let Some(values) = &e.values {
                    entry["values"] = json!(values);
                }
                entry
            })
            .collect();
        json!({
            "table": self.table,
            "applied": self.applied,
            "findings": self.findings,
            "planned": self.planned,
            "repaired": self.repaired,
            "lost_races": self.lost_races,
            "skipped": self.skipped,
            "resolved": self.resolved,
            "still_open": self.still_open,
            "open_remaining": self.open_remaining,
            "entries": entries,
        })
    }

    fn skip(&mut self, skip: Skip) {
        *self.skipped.entry(skip.as_str()).or_default() += 1;
    }
}

/// The repair's seams: both tables' readers, the other side's writer, the findings store.
pub struct RepairParts<R, W, F> {
    pub source: R,
    pub target: R,
    pub writer: W,
    pub store: F,
}

/// Repairs a table's open findings (module documentation).
pub struct Repairer<R, W, F> {
    source: Limited<R>,
    target: Limited<R>,
    writer: Limited<W>,
    store: F,
    revalidator: Revalidator<R, F>,
    config: RepairConfig,
}

/// A finding taken by a run, with its plan.
struct Taken {
    finding: Finding,
    plan: Plan,
}

impl<R: TableReader + Clone, W: TableWriter, F: FindingsStore + Clone> Repairer<R, W, F> {
    pub fn new(config: RepairConfig, parts: RepairParts<R, W, F>) -> Repairer<R, W, F> {
        let read_units = config.revalidator.max_read_units;
        let revalidator = Revalidator::new(
            config.revalidator.clone(),
            parts.target.clone(),
            parts.source.clone(),
            parts.store.clone(),
        );
        Repairer {
            source: Limited::new(parts.source, CapacityRate::new(read_units)),
            target: Limited::new(parts.target, CapacityRate::new(read_units)),
            writer: Limited::new(parts.writer, CapacityRate::new(config.max_write_units)),
            store: parts.store,
            revalidator,
            config,
        }
    }

    /// The verified table's name, as findings name it.
    pub fn table_name(&self) -> &str {
        self.revalidator.table_name()
    }

    /// One run (module documentation); `progress` is called after every finding.
    pub async fn run(
        &self,
        options: &RepairOptions,
        progress: &mut (dyn FnMut(&RepairReport) + Send),
    ) -> Result<RepairReport, RepairError> {
        let mut report = RepairReport {
            table: self.table_name().to_string(),
            applied: options.apply,
            ..RepairReport::default()
        };
        let mut seen = HashSet::new();
        let mut after = None;
        loop {
            let (chunk, next) = self.next_chunk(options, &mut seen, after, &report).await?;
            if options.apply {
                self.apply(chunk, options, &mut report, progress).await?;
            } else {
                for taken in chunk {
                    self.plan(&taken, &mut report);
                    progress(&report);
                }
            }
            match next {
                Some(next) if !limit_reached(options, &report) => after = Some(next),
                _ => break,
            }
        }
        if options.apply {
            report.open_remaining = Some(
                self.store
                    .count(self.table_name(), FindingStatus::Open, None)
                    .await
                    .map_err(|source| self.list_error(source))?,
            );
        }
        Ok(report)
    }

    /// The next open findings not taken before, at most a chunk and within the limit.
    async fn next_chunk(
        &self,
        options: &RepairOptions,
        seen: &mut HashSet<String>,
        after: Option<ListCursor>,
        report: &RepairReport,
    ) -> Result<(Vec<Taken>, Option<ListCursor>), RepairError> {
        let page = self
            .store
            .list_page(PageRequest {
                table: self.table_name(),
                status: FindingStatus::Open,
                due_by_ms: None,
                after,
                size: CHUNK,
            })
            .await
            .map_err(|source| self.list_error(source))?;
        let mut room = options
            .limit
            .map(|l| l.saturating_sub(report.planned as usize));
        let mut chunk = Vec::new();
        for finding in page.findings {
            // A finding judged again by this run moves in the index: it is not taken twice.
            if !seen.insert(canonical_key(&finding.key)) {
                continue;
            }
            let plan = Plan::of(&finding.verdict, options.delete_extra);
            if !matches!(plan, Plan::Untouched(_)) {
                match &mut room {
                    Some(0) => return Ok((chunk, None)),
                    Some(n) => *n -= 1,
                    None => {}
                }
            }
            chunk.push(Taken { finding, plan });
        }
        Ok((chunk, page.next))
    }

    fn list_error(&self, source: FindingsError) -> RepairError {
        RepairError::List {
            table: self.table_name().to_string(),
            source,
        }
    }

    /// A finding in the plan: the write it would make.
    fn plan(&self, taken: &Taken, report: &mut RepairReport) {
        report.findings += 1;
        let outcome = match taken.plan {
            Plan::Untouched(skip) => {
                report.skip(skip);
                skip.as_str()
            }
            _ => {
                report.planned += 1;
                "planned"
            }
        };
        report
            .entries
            .push(self.entry(&taken.finding, taken.plan, outcome));
    }

    fn entry(&self, finding: &Finding, plan: Plan, outcome: &'static str) -> RepairEntry {
        let log_values = self.config.revalidator.verify.log_item_values;
        RepairEntry {
            key_text: finding.key_text.clone(),
            verdict: finding.verdict.clone(),
            action: plan.action(),
            outcome,
            attributes: finding.attributes.clone(),
            values: finding.values.clone().filter(|_| log_values),
        }
    }

    /// A chunk repaired, a finding at a time (read, decided, written, recorded), then judged
    /// again.
    async fn apply(
        &self,
        chunk: Vec<Taken>,
        options: &RepairOptions,
        report: &mut RepairReport,
        progress: &mut (dyn FnMut(&RepairReport) + Send),
    ) -> Result<(), RepairError> {
        let mut read = Vec::new();
        for taken in chunk {
            if let Plan::Untouched(_) = taken.plan {
                self.plan(&taken, report);
                progress(report);
                continue;
            }
            let outcome = self.repair_one(&taken, options).await?;
            report.findings += 1;
            report.planned += 1;
            match outcome {
                Repaired::Written | Repaired::Undone => report.repaired += 1,
                Repaired::LostRace => report.lost_races += 1,
                Repaired::Skipped(skip) => report.skip(skip),
            }
            let entry = self.entry(&taken.finding, taken.plan, outcome.as_str());
            report.entries.push(entry);
            progress(report);
            read.push(taken.finding);
        }
        if read.is_empty() {
            return Ok(());
        }
        let judged = self
            .revalidator
            .recheck(&read)
            .await
            .map_err(RepairError::Recheck)?;
        report.resolved += judged.resolved;
        report.still_open += judged.still_open + judged.left_due;
        Ok(())
    }

    /// The other side's table as requests name it (its ARN, when configured so).
    fn target_table(&self) -> &str {
        &self.config.revalidator.verify.target_table.api_name
    }

    fn source_table(&self) -> &str {
        &self.config.revalidator.source_table
    }

    /// One finding: both sides read, the write decided and made (and undone when the source
    /// changed meanwhile), each step recorded on the finding.
    ///
    /// The other side is read first: whatever replication writes there after that read fails the
    /// write's condition, so a state newer than the source's read is never overwritten.
    async fn repair_one(
        &self,
        taken: &Taken,
        options: &RepairOptions,
    ) -> Result<Repaired, RepairError> {
        let finding = &taken.finding;
        let key = &finding.key;
        let other = self
            .read_one(&self.target, "other side's", self.target_table(), key)
            .await?;
        let source = self
            .read_one(&self.source, "source", self.source_table(), key)
            .await?;
        let verify = &self.config.revalidator.verify;
        let rules = Rules {
            key,
            ignore: &verify.ignore_attributes,
            version_attribute: self.config.version_attribute.as_deref(),
            ttl_attribute: verify.ttl_attribute.as_deref(),
            now_ms: crate::verify::expiry::now_ms(),
        };
        let outcome = match decide(taken.plan, source.as_ref(), other.as_ref(), rules) {
            Decision::Skip(skip) => Repaired::Skipped(skip),
            Decision::Write { action, condition } => {
                // Recorded before the write: a run stopped after it still leaves a trace.
                self.record(finding, taken.plan.action(), "attempting", options)
                    .await?;
                match self
                    .write(&action, condition.expression(), &finding.key_text)
                    .await?
                {
                    Repaired::Written => self.settle(&action, finding).await?,
                    other => other,
                }
            }
        };
        let action = match outcome {
            Repaired::Skipped(_) => "none",
            _ => taken.plan.action(),
        };
        self.record(finding, action, outcome.as_str(), options)
            .await?;
        tracing::info!(table = %self.table_name(), key = %finding.key_text, verdict = %finding.verdict, action, outcome = outcome.as_str(), "repair");
        Ok(outcome)
    }

    /// After a write, the source read again: an item deleted there since it was read is removed
    /// again from the other side (a put never resurrects it), and an item created there since is
    /// put back after a delete; each on condition that the other side still holds what was
    /// written. Replication would carry either change over too, unless it had already passed the
    /// key; this closes that window.
    async fn settle(&self, done: &WriteAction, finding: &Finding) -> Result<Repaired, RepairError> {
        let key = &finding.key;
        let source = self
            .read_one(&self.source, "source", self.source_table(), key)
            .await?;
        let key_attribute = key.keys().min().cloned().unwrap_or_default();
        let (undo, condition) = match (done, source) {
            (WriteAction::Put(written), None) => (
                WriteAction::Delete(key.clone()),
                Condition::Holds {
                    key_attribute,
                    item: written.clone(),
                    absent: Vec::new(),
                },
            ),
            (WriteAction::Delete(_), Some(now)) => {
                (WriteAction::Put(now), Condition::Absent { key_attribute })
            }
            _ => return Ok(Repaired::Written),
        };
        tracing::warn!(table = %self.table_name(), key = %finding.key_text, "the source changed during the repair: undone on the other side");
        match self
            .write(&undo, condition.expression(), &finding.key_text)
            .await?
        {
            Repaired::Written => Ok(Repaired::Undone),
            // The other side moved on: revalidation judges what it holds.
            other => Ok(other),
        }
    }

    /// The repair's audit trail on the finding, transient failures tried again.
    async fn record(
        &self,
        finding: &Finding,
        action: &str,
        outcome: &str,
        options: &RepairOptions,
    ) -> Result<(), RepairError> {
        let record = RepairRecord {
            table: self.table_name(),
            key: &finding.key,
            by: &options.by,
            action,
            outcome,
            now_ms: epoch_ms(),
        };
        let mut attempt = 0;
        loop {
            match self.store.record_repair(&record).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_transient() && attempt + 1 < WRITE_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(source) => {
                    return Err(RepairError::Record {
                        key: finding.key_text.clone(),
                        source,
                    })
                }
            }
        }
    }

    /// A conditional write, transient failures tried again with backoff; a write refused as it
    /// is (a ValidationException) is skipped, any other failure (access denied) ends the run.
    async fn write(
        &self,
        action: &WriteAction,
        condition: ConditionExpression,
        key: &str,
    ) -> Result<Repaired, RepairError> {
        let table = self.target_table();
        let mut attempt = 0;
        loop {
            let write = ConditionalWrite {
                table,
                action: action.clone(),
                condition: condition.clone(),
            };
            match self.writer.write(write).await {
                Ok(WriteOutcome::Written { .. }) => return Ok(Repaired::Written),
                // After a failure that may have landed, a failed condition may be our own write.
                Ok(WriteOutcome::ConditionFailed { .. }) if attempt > 0 => {
                    return self.landed(action, key).await
                }
                Ok(WriteOutcome::ConditionFailed { .. }) => return Ok(Repaired::LostRace),
                Err(e) if e.is_transient() && attempt + 1 < WRITE_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(e) if e.is_transient() || e.is_refused() => {
                    tracing::warn!(key, error = %crate::shared::error_chain(&e), "repair write not made; skipped");
                    return Ok(Repaired::Skipped(match e.is_refused() {
                        true => Skip::Refused,
                        false => Skip::WriteFailed,
                    }));
                }
                Err(source) => {
                    return Err(RepairError::Write {
                        table: table.to_string(),
                        source,
                    })
                }
            }
        }
    }

    /// Whether a write whose answer was lost landed after all: the other side holds what it
    /// wrote (or, for a delete, nothing).
    async fn landed(&self, action: &WriteAction, key: &str) -> Result<Repaired, RepairError> {
        let (item_key, wrote) = match action {
            WriteAction::Put(item) => (item, Some(item)),
            WriteAction::Delete(k) => (k, None),
        };
        let names: Vec<String> = item_key.keys().cloned().collect();
        let other = self
            .read_one(
                &self.target,
                "other side's",
                self.target_table(),
                &key_of(item_key, &names),
            )
            .await?;
        let landed = match (wrote, &other) {
            (Some(wrote), Some(other)) => crate::compare::items_equal(wrote, other, &[]),
            (None, None) => true,
            _ => false,
        };
        tracing::debug!(
            key,
            landed,
            "a write retried after a failure met its condition failed"
        );
        Ok(if landed {
            Repaired::Written
        } else {
            Repaired::LostRace
        })
    }

    /// The item of `key` in one table, read consistently (`None`: no item).
    async fn read_one(
        &self,
        reader: &Limited<R>,
        side: &'static str,
        table: &str,
        key: &Item,
    ) -> Result<Option<Item>, RepairError> {
        let names: Vec<String> = key.keys().cloned().collect();
        let error = |source| RepairError::Read {
            side,
            table: table.to_string(),
            source,
        };
        for attempt in 0..READ_ATTEMPTS {
            let out = reader
                .batch_get(BatchGet {
                    table,
                    keys: vec![key.clone()],
                    consistent_read: true,
                })
                .await;
            match out {
                Ok(out) if out.unprocessed.is_empty() => {
                    let wanted = canonical_key(key);
                    return Ok(out
                        .items
                        .into_iter()
                        .map(|image| image.into_item())
                        .find(|item| canonical_key(&key_of(item, &names)) == wanted));
                }
                Err(e) if !e.is_transient() => return Err(error(e)),
                // Unprocessed, or a transient failure: asked again after a pause.
                _ => tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await,
            }
        }
        Err(error(LookupError::Unprocessed {
            table: table.to_string(),
            attempts: READ_ATTEMPTS,
        }))
    }
}

/// The key attributes of an item.
fn key_of(item: &Item, names: &[String]) -> Item {
    names
        .iter()
        .filter_map(|n| item.get(n).map(|v| (n.clone(), v.clone())))
        .collect()
}

fn limit_reached(options: &RepairOptions, report: &RepairReport) -> bool {
    options.limit.is_some_and(|l| report.planned as usize >= l)
}

/// What came of one finding's repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repaired {
    Written,
    /// Written, then undone: the source changed while the repair ran.
    Undone,
    LostRace,
    Skipped(Skip),
}

impl Repaired {
    fn as_str(self) -> &'static str {
        match self {
            Repaired::Written => "written",
            Repaired::Undone => "written, then undone (the source changed meanwhile)",
            Repaired::LostRace => "lost race (the other side changed; revalidation decides)",
            Repaired::Skipped(skip) => skip.as_str(),
        }
    }
}
