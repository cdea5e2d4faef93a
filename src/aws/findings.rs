//! [`FindingsStore`] in a DynamoDB table (schema in `ports::findings`), and the table's creation.
//!
//! Every write is one conditional UpdateItem, so a Lambda re-delivery or a resumed baseline that
//! repeats a sighting changes nothing, and a MATCH resolves only a finding still open.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::stream::StreamExt;

use super::DynamoDbCallError;
use crate::ports::findings::{
    coverage_id, finding_id, Coverage, CoverageSource, CoverageWrite, Finding, FindingStatus,
    FindingsError, FindingsStore, Gap, GapCause, GapWrite, ListCursor, ListPage, PageRequest,
    ProblemWrite, Recheck, RecordedFreeze, RepairNote, RepairRecord, Resolution, RESOLVED_KEPT,
};
use crate::record::{Item, KeyText};

/// The index of open and accepted findings and of coverage, by next check time.
pub const STATUS_INDEX: &str = crate::ports::findings::FINDINGS_LAYOUT.indexes[0].name;

/// Keys per BatchGetItem call (DynamoDB's limit).
const BATCH_GET_KEYS: usize = 100;

/// Rounds of a BatchGetItem's unprocessed keys before giving up (the SDK already retried throttling).
const UNPROCESSED_ROUNDS: usize = 5;

/// BatchGetItem calls in flight at once when reading which keys have an open finding, as many as
/// the engine's lookups beside them (`MAX_CONCURRENCY`'s default): one at a time, a 10,000-record
/// batch's 100 calls took longer than its lookups (docs/benchmarks-log.md, "The findings leg's reads at once").
const READS_IN_FLIGHT: usize = 5;

#[derive(Debug, Clone)]
pub struct DynamoDbFindings {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

type Attrs = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A findings update applied only where `condition` holds, with `#status` (the status attribute)
/// and `:open` bound for it.
trait IfStatus {
    fn if_status(self, condition: &str) -> Self;
}

impl IfStatus for UpdateItemFluentBuilder {
    fn if_status(self, condition: &str) -> Self {
        self.condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":open", s("OPEN"))
    }
}

fn status_partition(status: &str, table: &str) -> AttributeValue {
    s(format!("{status}#{table}"))
}

impl DynamoDbFindings {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> DynamoDbFindings {
        DynamoDbFindings {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The client it calls with (its account's).
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    fn error(&self, operation: &'static str, err: impl DynamoDbCallError) -> FindingsError {
        if let Some(message) = err.refusal() {
            return FindingsError::Rejected {
                operation,
                table: self.table.clone(),
                message,
            };
        }
        FindingsError::Service(err.failure(operation, format!("findings table {}", self.table)))
    }

    /// A problem write that leaves its finding open, in one of the cases `record` tries in turn.
    fn open_update(
        &self,
        id: &str,
        write: &ProblemWrite<'_>,
        case: OpenAs,
    ) -> UpdateItemFluentBuilder {
        let (mut set, mut remove) = (Vec::new(), Vec::new());
        let update =
            Self::problem_fields(self.update(id.to_string()), write, &mut set, &mut remove);
        set.extend([
            "#status = :open",
            "statusTable = :partition",
            "nextCheck = :next",
            "checks = :zero",
            "unsettled = :false",
        ]);
        remove.extend(["resolvedAt", "resolvedBy", "expiresAt"]);
        let (add, condition) = match case {
            OpenAs::NewSighting => (
                "timesSeen :one",
                "attribute_not_exists(id) OR (occurrence <> :occurrence AND #status <> :accepted)",
            ),
            OpenAs::SameSightingAfterResolution => {
                ("", "#status = :resolved AND occurrence = :occurrence")
            }
            OpenAs::DifferentFromAccepted => (
                "timesSeen :one",
                "#status = :accepted AND occurrence <> :occurrence",
            ),
        };
        remove.push("reason");
        let mut update = update
            .update_expression(expression(&set, &remove, add))
            .if_status(condition)
            .expression_attribute_values(":partition", status_partition("OPEN", write.table))
            .expression_attribute_values(":next", n(write.next_check_ms))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":false", AttributeValue::Bool(false));
        match case {
            OpenAs::NewSighting => {
                update = update
                    .expression_attribute_values(":accepted", s("ACCEPTED"))
                    .expression_attribute_values(":one", n(1))
            }
            OpenAs::SameSightingAfterResolution => {
                update = update.expression_attribute_values(":resolved", s("RESOLVED"))
            }
            OpenAs::DifferentFromAccepted => {
                update = update
                    .expression_attribute_values(":accepted", s("ACCEPTED"))
                    .expression_attribute_values(":one", n(1))
            }
        }
        update
    }

    /// A coverage write's update, with `verifiedUntil` (moved only forward) when `with_until`.
    fn coverage_update(
        &self,
        id: &str,
        w: &CoverageWrite<'_>,
        with_until: bool,
    ) -> UpdateItemFluentBuilder {
        let mut set = vec![
            "tableName = :table",
            "#source = :source",
            "#name = :name",
            "checkedAt = :now",
            "statusTable = :partition",
            "nextCheck = :now",
        ];
        let mut update = self
            .update(id.to_string())
            .expression_attribute_names("#source", "source")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":table", s(w.table))
            .expression_attribute_values(":source", s(w.source.as_str()))
            .expression_attribute_values(":name", s(w.name))
            .expression_attribute_values(":now", n(w.now_ms))
            .expression_attribute_values(":partition", status_partition("COVERAGE", w.table));
        let numbers = [
            (
                "startedAt = if_not_exists(startedAt, :started)",
                ":started",
                w.started_at_ms,
            ),
            ("lastRetryAt = :retry", ":retry", w.retry_at_ms),
        ];
        for (clause, name, value) in numbers {
            if let Some(value) = value {
                set.push(clause);
                update = update.expression_attribute_values(name, n(value));
            }
        }
        if let Some(stream) = w.stream_arn {
            set.push("streamArn = :stream");
            update = update.expression_attribute_values(":stream", s(stream));
        }
        if let Some(rate) = w.sample_rate {
            set.push("sampleRate = :rate");
            update =
                update.expression_attribute_values(":rate", AttributeValue::N(rate.to_string()));
        }
        if let Some(complete) = w.complete {
            set.push("complete = :complete");
            update =
                update.expression_attribute_values(":complete", AttributeValue::Bool(complete));
        }
        match w.verified_until_ms {
            Some(until) if with_until => {
                set.push("verifiedUntil = :until");
                update
                    .expression_attribute_values(":until", n(until))
                    // Never moved back (Lambda's shards report out of order).
                    .condition_expression(
                        "attribute_not_exists(verifiedUntil) OR verifiedUntil < :until",
                    )
                    .update_expression(expression(&set, &[], ""))
            }
            _ => update.update_expression(expression(&set, &[], "")),
        }
    }

    /// Adds one gap to a coverage item: its time moves only forward (a slower writer's older gap
    /// leaves the newer one), its count always grows.
    async fn add_gap(
        &self,
        id: &str,
        w: &CoverageWrite<'_>,
        gap: &GapWrite,
    ) -> Result<(), FindingsError> {
        let stem = gap.cause.attribute_stem();
        let (at, count, detail) = (
            format!("gap{stem}At"),
            format!("gap{stem}Count"),
            format!("gap{stem}Detail"),
        );
        let update = |newer: bool| {
            let base = self
                .update(id.to_string())
                .expression_attribute_names("#count", count.clone())
                .expression_attribute_values(":one", n(1));
            if newer {
                base.update_expression("SET #at = :at, #detail = :detail ADD #count :one")
                    .condition_expression("attribute_not_exists(#at) OR #at < :at")
                    .expression_attribute_names("#at", at.clone())
                    .expression_attribute_names("#detail", detail.clone())
                    .expression_attribute_values(":at", n(w.now_ms))
                    .expression_attribute_values(":detail", s(gap.detail.clone()))
            } else {
                base.update_expression("ADD #count :one")
            }
        };
        if !self.conditional(update(true)).await? {
            self.conditional(update(false)).await?;
        }
        Ok(())
    }

    /// Sends a conditional update: whether it applied (`false`: its condition did not hold).
    async fn conditional(&self, update: UpdateItemFluentBuilder) -> Result<bool, FindingsError> {
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(false),
            Err(e) => Err(self.error("UpdateItem", e)),
        }
    }

    fn update(&self, id: String) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id))
    }

    /// A problem's fields: `SET` clauses and `REMOVE`d names, with their values bound on `update`.
    fn problem_fields(
        update: UpdateItemFluentBuilder,
        write: &ProblemWrite<'_>,
        set: &mut Vec<&'static str>,
        remove: &mut Vec<&'static str>,
    ) -> UpdateItemFluentBuilder {
        let p = write.problem;
        let mut update = update
            .expression_attribute_names("#key", "key")
            .expression_attribute_values(":table", s(write.table))
            .expression_attribute_values(":key", AttributeValue::M(write.key.clone()))
            .expression_attribute_values(":keyText", s(key_text(write.key)))
            .expression_attribute_values(":verdict", s(p.verdict))
            .expression_attribute_values(":detail", s(cut(&p.detail, DETAIL_KEPT)))
            .expression_attribute_values(
                ":attributes",
                AttributeValue::L(kept_paths(&p.attributes).into_iter().map(s).collect()),
            )
            .expression_attribute_values(":origin", s(write.origin.as_str()))
            .expression_attribute_values(":now", n(write.now_ms))
            .expression_attribute_values(":occurrence", s(write.occurrence));
        set.extend([
            "tableName = :table",
            "#key = :key",
            "keyText = :keyText",
            "verdict = :verdict",
            "detail = :detail",
            "attributes = :attributes",
            "origin = :origin",
            "lastSeen = :now",
            "firstSeen = if_not_exists(firstSeen, :now)",
            "occurrence = :occurrence",
        ]);
        let values = p.values.as_deref().map(|v| cut(v, VALUES_KEPT));
        let optional: [(&str, &str, Option<&str>); 4] = [
            ("proof = :proof", "proof", p.proof),
            ("itemValues = :values", "itemValues", values.as_deref()),
            (
                "sequenceNumber = :sequenceNumber",
                "sequenceNumber",
                write.sequence_number,
            ),
            (
                "baselineRun = :baselineRun",
                "baselineRun",
                write.baseline_run,
            ),
        ];
        for (clause, name, value) in optional {
            match value {
                Some(v) => {
                    let placeholder = clause.split(" = ").nth(1).unwrap_or_default();
                    update = update.expression_attribute_values(placeholder, s(v));
                    set.push(clause);
                }
                None => remove.push(name),
            }
        }
        update
    }

    /// BatchGetItem of findings ids (keys and status only), `READS_IN_FLIGHT` calls at a time.
    async fn statuses(&self, ids: &[String]) -> Result<HashMap<String, String>, FindingsError> {
        let mut out = HashMap::new();
        // The calls' futures made first (they start when polled): a closure over the chunks would
        // not be `Send` for every lifetime, as the store's futures must be.
        let calls: Vec<_> = ids
            .chunks(BATCH_GET_KEYS)
            .map(|chunk| self.chunk_statuses(chunk))
            .collect();
        let mut reads = futures::stream::iter(calls).buffer_unordered(READS_IN_FLIGHT);
        while let Some(found) = reads.next().await {
            out.extend(found?);
        }
        Ok(out)
    }

    /// One call's worth of [`Self::statuses`], unprocessed keys asked again.
    async fn chunk_statuses(
        &self,
        chunk: &[String],
    ) -> Result<Vec<(String, String)>, FindingsError> {
        let mut out = Vec::with_capacity(chunk.len());
        let mut keys: Vec<Attrs> = chunk
            .iter()
            .map(|id| HashMap::from([("id".to_string(), s(id.clone()))]))
            .collect();
        for _ in 0..UNPROCESSED_ROUNDS {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut keys)))
                .projection_expression("id, #status")
                .expression_attribute_names("#status", "status")
                .build()
                .map_err(|e| FindingsError::Unreadable {
                    id: self.table.clone(),
                    reason: e.to_string(),
                })?;
            let answer = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| self.error("BatchGetItem", e))?;
            for item in answer
                .responses
                .unwrap_or_default()
                .remove(&self.table)
                .unwrap_or_default()
            {
                if let (Some(id), Some(status)) = (text(&item, "id"), text(&item, "status")) {
                    out.push((id, status));
                }
            }
            keys = answer
                .unprocessed_keys
                .unwrap_or_default()
                .remove(&self.table)
                .map(|k| k.keys)
                .unwrap_or_default();
            if keys.is_empty() {
                break;
            }
        }
        if !keys.is_empty() {
            return Err(FindingsError::Unreadable {
                id: self.table.clone(),
                reason: format!(
                    "{} keys still unprocessed after {UNPROCESSED_ROUNDS} rounds",
                    keys.len()
                ),
            });
        }
        Ok(out)
    }

    /// Every item of an index partition (`statusTable`), in next-check order.
    async fn index_partition(
        &self,
        partition: AttributeValue,
        due_by_ms: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Vec<Attrs>, FindingsError> {
        let mut out = Vec::new();
        let mut start: Option<Attrs> = None;
        loop {
            let want = limit.map(|l| (l - out.len()).clamp(1, 1000));
            let (items, next) = self
                .index_page(partition.clone(), due_by_ms, start.take(), want)
                .await?;
            out.extend(items);
            if limit.is_some_and(|l| out.len() >= l) {
                out.truncate(limit.unwrap_or_default());
                return Ok(out);
            }
            match next {
                Some(key) => start = Some(key),
                None => return Ok(out),
            }
        }
    }

    /// The index's query of one status partition, due by `due_by_ms` when given.
    fn index_query(
        &self,
        partition: AttributeValue,
        due_by_ms: Option<u64>,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(STATUS_INDEX)
            .key_condition_expression("statusTable = :partition")
            .expression_attribute_values(":partition", partition);
        match due_by_ms {
            Some(due) => query
                .key_condition_expression("statusTable = :partition AND nextCheck <= :due")
                .expression_attribute_values(":due", n(due)),
            None => query,
        }
    }

    /// One Query call: its items, and its last key when there is more.
    async fn index_page(
        &self,
        partition: AttributeValue,
        due_by_ms: Option<u64>,
        start: Option<Attrs>,
        limit: Option<usize>,
    ) -> Result<(Vec<Attrs>, Option<Attrs>), FindingsError> {
        let query = self
            .index_query(partition, due_by_ms)
            .set_exclusive_start_key(start)
            .set_limit(limit.map(|l| l.clamp(1, 1000) as i32));
        let page = query.send().await.map_err(|e| self.error("Query", e))?;
        let next = page.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((page.items.unwrap_or_default(), next))
    }
}

fn conditional_failed<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

fn text(item: &Attrs, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn number(item: &Attrs, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

fn finding_of(item: &Attrs) -> Result<Finding, FindingsError> {
    let id = text(item, "id").unwrap_or_default();
    let unreadable = |reason: &str| FindingsError::Unreadable {
        id: id.clone(),
        reason: reason.to_string(),
    };
    let status = text(item, "status")
        .and_then(|s| FindingStatus::parse(&s))
        .ok_or_else(|| unreadable("no status OPEN, RESOLVED or ACCEPTED"))?;
    let key = match item.get("key") {
        Some(AttributeValue::M(key)) if !key.is_empty() => key.clone(),
        _ => return Err(unreadable("no key map")),
    };
    Ok(Finding {
        table: text(item, "tableName").ok_or_else(|| unreadable("no tableName"))?,
        // Printed from the key map, not read from `keyText`: findings written by older versions
        // hold the older `{:?}` form there (see `record::key_text`), and every finding shows in
        // the form `accept` reads.
        key_text: key_text(&key),
        key,
        verdict: text(item, "verdict").unwrap_or_default(),
        proof: text(item, "proof"),
        detail: text(item, "detail").unwrap_or_default(),
        attributes: match item.get("attributes") {
            Some(AttributeValue::L(list)) => {
                list.iter().filter_map(|v| v.as_s().ok().cloned()).collect()
            }
            _ => Vec::new(),
        },
        values: text(item, "itemValues"),
        origin: text(item, "origin").unwrap_or_default(),
        first_seen_ms: number(item, "firstSeen").unwrap_or_default(),
        last_seen_ms: number(item, "lastSeen").unwrap_or_default(),
        times_seen: number(item, "timesSeen").unwrap_or_default(),
        sequence_number: text(item, "sequenceNumber"),
        baseline_run: text(item, "baselineRun"),
        status,
        reason: text(item, "reason"),
        resolved_at_ms: number(item, "resolvedAt"),
        next_check_ms: number(item, "nextCheck"),
        checks: number(item, "checks").unwrap_or_default() as u32,
        unsettled: item
            .get("unsettled")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        repair: repair_of(item),
    })
}

fn repair_of(item: &Attrs) -> Option<RepairNote> {
    Some(RepairNote {
        at_ms: number(item, "repairedAt")?,
        by: text(item, "repairedBy").unwrap_or_default(),
        action: text(item, "repairAction").unwrap_or_default(),
        outcome: text(item, "repairOutcome").unwrap_or_default(),
        count: number(item, "repairs").unwrap_or(1),
    })
}

fn coverage_of(item: &Attrs) -> Result<Coverage, FindingsError> {
    let source = text(item, "source")
        .and_then(|s| CoverageSource::parse(&s))
        .ok_or_else(|| FindingsError::Unreadable {
            id: text(item, "id").unwrap_or_default(),
            reason: "no source stream, poller or baseline".into(),
        })?;
    Ok(Coverage {
        source,
        name: text(item, "name").unwrap_or_default(),
        started_at_ms: number(item, "startedAt"),
        verified_until_ms: number(item, "verifiedUntil"),
        last_retry_at_ms: number(item, "lastRetryAt"),
        complete: item
            .get("complete")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        checked_at_ms: number(item, "checkedAt").unwrap_or_default(),
        sample_rate: item
            .get("sampleRate")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok()),
        stream_arn: text(item, "streamArn"),
        gaps: gaps_of(item),
    })
}

/// The gaps of a coverage item, in [`GapCause`] order. `lastGapAt`, written by versions before
/// the ledger named its causes, was records trimmed.
fn gaps_of(item: &Attrs) -> Vec<Gap> {
    let mut gaps: Vec<Gap> = GapCause::ALL
        .iter()
        .filter_map(|&cause| {
            let stem = cause.attribute_stem();
            Some(Gap {
                cause,
                at_ms: number(item, &format!("gap{stem}At"))?,
                count: number(item, &format!("gap{stem}Count")).unwrap_or(1),
                detail: text(item, &format!("gap{stem}Detail")).unwrap_or_default(),
            })
        })
        .collect();
    if let Some(at) = number(item, "lastGapAt") {
        match gaps.iter_mut().find(|g| g.cause == GapCause::Trimmed) {
            Some(gap) => gap.at_ms = gap.at_ms.max(at),
            None => gaps.push(Gap {
                cause: GapCause::Trimmed,
                at_ms: at,
                count: 1,
                detail: "stream records were trimmed before they were verified".into(),
            }),
        }
        gaps.sort_by_key(|g| g.cause);
    }
    gaps
}

/// Which case of [`FindingsStore::record`] an open-leaving write is.
#[derive(Clone, Copy)]
enum OpenAs {
    /// New, open, or resolved; a sighting not recorded before.
    NewSighting,
    /// Resolved, and the sighting that was recorded before.
    SameSightingAfterResolution,
    /// Accepted, and a problem the acceptance does not cover.
    DifferentFromAccepted,
}

/// How much of a finding's text is kept, so that a finding always fits in an item (400 KB) and its
/// key text stays readable: the rest is cut, with a mark that says how long it was.
const KEY_TEXT_KEPT: usize = 1024;
const DETAIL_KEPT: usize = 8 * 1024;
const VALUES_KEPT: usize = 64 * 1024;
const PATHS_KEPT: usize = 256;
const PATH_KEPT: usize = 512;

/// A finding's key text ([`KeyText`]), cut to [`KEY_TEXT_KEPT`]: what `keyText` holds.
fn key_text(key: &Item) -> String {
    cut(&KeyText(key).to_string(), KEY_TEXT_KEPT)
}

/// `text`, or its first `limit` bytes (at a character's boundary) and a mark.
fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... [cut: {} bytes in all]", &text[..end], text.len())
}

/// The diff's attribute paths as kept: at most [`PATHS_KEPT`], each cut to [`PATH_KEPT`], and a
/// last entry that says how many more there were.
fn kept_paths(paths: &[String]) -> Vec<String> {
    let mut kept: Vec<String> = paths
        .iter()
        .take(PATHS_KEPT)
        .map(|p| cut(p, PATH_KEPT))
        .collect();
    if paths.len() > PATHS_KEPT {
        kept.push(format!("... and {} more", paths.len() - PATHS_KEPT));
    }
    kept
}

/// What an acceptance covers: the verdict and the diff's attribute paths (as kept), in one text.
fn problem_signature(verdict: &str, attributes: &[String]) -> String {
    let attributes = kept_paths(attributes);
    let mut paths: Vec<&str> = attributes.iter().map(String::as_str).collect();
    paths.sort_unstable();
    paths.dedup();
    format!("{verdict} {}", paths.join(","))
}

fn expression(set: &[&str], remove: &[&str], add: &str) -> String {
    let mut out = format!("SET {}", set.join(", "));
    if !add.is_empty() {
        out.push_str(" ADD ");
        out.push_str(add);
    }
    if !remove.is_empty() {
        out.push_str(" REMOVE ");
        out.push_str(&remove.join(", "));
    }
    out
}

impl FindingsStore for DynamoDbFindings {
    async fn record(&self, write: &ProblemWrite<'_>) -> Result<(), FindingsError> {
        let id = finding_id(write.table, write.key);
        // A new finding, or a resolved or open one seen again (not accepted, not this occurrence
        // again: a re-delivery is not counted twice).
        if self
            .conditional(self.open_update(&id, write, OpenAs::NewSighting))
            .await?
        {
            return Ok(());
        }
        // Resolved, and this very occurrence seen wrong again (a resumed baseline page): open
        // again, not counted twice. The sighting key protects the count, not the resolution.
        if self
            .conditional(self.open_update(&id, write, OpenAs::SameSightingAfterResolution))
            .await?
        {
            return Ok(());
        }
        // Accepted, and the same problem as the one accepted: stays accepted, the sighting counted.
        let signature = problem_signature(write.problem.verdict, &write.problem.attributes);
        let (mut set, mut remove) = (Vec::new(), Vec::new());
        let update = Self::problem_fields(self.update(id.clone()), write, &mut set, &mut remove);
        let update = update
            .update_expression(expression(&set, &remove, "timesSeen :one"))
            .condition_expression(
                "#status = :accepted AND occurrence <> :occurrence AND (acceptedProblem = :signature OR (attribute_not_exists(acceptedProblem) AND verdict = :verdict))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":accepted", s("ACCEPTED"))
            .expression_attribute_values(":signature", s(signature))
            .expression_attribute_values(":one", n(1));
        if self.conditional(update).await? {
            return Ok(());
        }
        // Accepted, and a different problem: the acceptance does not cover it; open again.
        // Not applied: this occurrence is recorded already (a re-delivery).
        self.conditional(self.open_update(&id, write, OpenAs::DifferentFromAccepted))
            .await
            .map(|_| ())
    }

    async fn open_among(&self, table: &str, keys: &[&Item]) -> Result<Vec<bool>, FindingsError> {
        let ids: Vec<String> = keys.iter().map(|k| finding_id(table, k)).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        let statuses = self.statuses(&unique).await?;
        Ok(ids
            .iter()
            .map(|id| statuses.get(id).is_some_and(|s| s == "OPEN"))
            .collect())
    }

    async fn resolve(&self, r: &Resolution<'_>) -> Result<bool, FindingsError> {
        let expires_at = r.judged_at_ms / 1000 + RESOLVED_KEPT.as_secs();
        let update = self
            .update(finding_id(r.table, r.key))
            .update_expression(
                "SET #status = :resolved, resolvedAt = :now, resolvedBy = :origin, expiresAt = :expires REMOVE statusTable, nextCheck",
            )
            .if_status("#status = :open AND lastSeen <= :now")
            .expression_attribute_values(":resolved", s("RESOLVED"))
            .expression_attribute_values(":now", n(r.judged_at_ms))
            .expression_attribute_values(":origin", s(r.origin.as_str()))
            .expression_attribute_values(":expires", n(expires_at));
        self.conditional(update).await
    }

    async fn recheck(&self, r: &Recheck<'_>) -> Result<(), FindingsError> {
        let p = r.problem;
        let mut set = vec![
            "verdict = :verdict",
            "detail = :detail",
            "attributes = :attributes",
            "origin = :origin",
            "lastSeen = :now",
            "nextCheck = :next",
            "unsettled = :unsettled",
        ];
        let mut remove = Vec::new();
        let mut update = self
            .update(finding_id(r.table, r.key))
            .expression_attribute_values(":verdict", s(p.verdict))
            .expression_attribute_values(":detail", s(cut(&p.detail, DETAIL_KEPT)))
            .expression_attribute_values(
                ":attributes",
                AttributeValue::L(kept_paths(&p.attributes).into_iter().map(s).collect()),
            )
            .expression_attribute_values(":origin", s("revalidation"))
            .expression_attribute_values(":now", n(r.now_ms))
            .expression_attribute_values(":next", n(r.next_check_ms))
            .expression_attribute_values(":unsettled", AttributeValue::Bool(r.unsettled));
        for (clause, name, placeholder, value) in [
            ("proof = :proof", "proof", ":proof", p.proof),
            (
                "itemValues = :values",
                "itemValues",
                ":values",
                p.values.as_deref().map(|v| cut(v, VALUES_KEPT)).as_deref(),
            ),
        ] {
            match value {
                Some(v) => {
                    set.push(clause);
                    update = update.expression_attribute_values(placeholder, s(v));
                }
                None => remove.push(name),
            }
        }
        let update = update
            .update_expression(expression(&set, &remove, "checks :one"))
            .if_status("#status = :open")
            .expression_attribute_values(":one", n(1));
        // Not applied: resolved or accepted meanwhile, nothing to add.
        self.conditional(update).await.map(|_| ())
    }

    async fn get(&self, table: &str, key: &Item) -> Result<Option<Finding>, FindingsError> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(finding_id(table, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", e))?;
        answer.item.as_ref().map(finding_of).transpose()
    }

    async fn list(
        &self,
        table: &str,
        status: FindingStatus,
        due_by_ms: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Vec<Finding>, FindingsError> {
        let items = self
            .index_partition(status_partition(status.as_str(), table), due_by_ms, limit)
            .await?;
        items.iter().map(finding_of).collect()
    }

    async fn list_page(&self, request: PageRequest<'_>) -> Result<ListPage, FindingsError> {
        let PageRequest {
            table,
            status,
            due_by_ms,
            after,
            size: page,
        } = request;
        let partition = status_partition(status.as_str(), table);
        let (mut items, mut next) = (Vec::new(), after.map(|c| c.0));
        // A Query page may hold fewer items than asked (1 MB): filled up to `page` or the end.
        loop {
            let want = page.saturating_sub(items.len()).max(1);
            let (got, more) = self
                .index_page(partition.clone(), due_by_ms, next.take(), Some(want))
                .await?;
            items.extend(got);
            next = more;
            if next.is_none() || items.len() >= page {
                break;
            }
        }
        Ok(ListPage {
            findings: items.iter().map(finding_of).collect::<Result<_, _>>()?,
            next: next.map(ListCursor),
        })
    }

    async fn count(
        &self,
        table: &str,
        status: FindingStatus,
        due_by_ms: Option<u64>,
    ) -> Result<u64, FindingsError> {
        let partition = status_partition(status.as_str(), table);
        let (mut total, mut start) = (0u64, None);
        loop {
            let page = self
                .index_query(partition.clone(), due_by_ms)
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.error("Query", e))?;
            total += page.count.max(0) as u64;
            match page.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(key) => start = Some(key),
                None => return Ok(total),
            }
        }
    }

    async fn accept(
        &self,
        table: &str,
        key: &Item,
        reason: &str,
        now_ms: u64,
    ) -> Result<bool, FindingsError> {
        // The acceptance covers the problem as it is now: its verdict and attribute paths.
        let Some(finding) = FindingsStore::get(self, table, key).await? else {
            return Ok(false);
        };
        let signature = problem_signature(&finding.verdict, &finding.attributes);
        let update = self
            .update(finding_id(table, key))
            .update_expression(
                "SET #status = :accepted, reason = :reason, acceptedAt = :now, statusTable = :partition, acceptedProblem = :signature",
            )
            .if_status("#status IN (:open, :accepted) AND verdict = :verdict")
            .expression_attribute_values(":accepted", s("ACCEPTED"))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":partition", status_partition("ACCEPTED", table))
            .expression_attribute_values(":signature", s(signature))
            .expression_attribute_values(":verdict", s(finding.verdict));
        self.conditional(update).await
    }

    async fn record_repair(&self, r: &RepairRecord<'_>) -> Result<bool, FindingsError> {
        let update = self
            .update(finding_id(r.table, r.key))
            .update_expression(
                "SET repairedAt = :now, repairedBy = :by, repairAction = :action, \
                 repairOutcome = :outcome, repairs = if_not_exists(repairs, :zero) + :one",
            )
            .condition_expression("attribute_exists(id)")
            .expression_attribute_values(":now", n(r.now_ms))
            .expression_attribute_values(":by", s(cut(r.by, DETAIL_KEPT)))
            .expression_attribute_values(":action", s(r.action))
            .expression_attribute_values(":outcome", s(cut(r.outcome, DETAIL_KEPT)))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1));
        self.conditional(update).await
    }

    async fn cover(&self, w: &CoverageWrite<'_>) -> Result<(), FindingsError> {
        let id = coverage_id(w.table, w.source, w.name, w.stream_arn);
        // Gaps first: a write that fails after them errs on the strict side.
        for gap in &w.gaps {
            self.add_gap(&id, w, gap).await?;
        }
        if !self.conditional(self.coverage_update(&id, w, true)).await? {
            // A newer `verifiedUntil` is stored: the rest still applies.
            self.conditional(self.coverage_update(&id, w, false))
                .await?;
        }
        Ok(())
    }

    async fn coverage(&self, table: &str) -> Result<Vec<Coverage>, FindingsError> {
        let items = self
            .index_partition(status_partition("COVERAGE", table), None, None)
            .await?;
        items.iter().map(coverage_of).collect()
    }

    async fn record_freeze(&self, table: &str, f: &RecordedFreeze) -> Result<(), FindingsError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("id", s(freeze_id(table)))
            .item("writesStoppedAt", n(f.writes_stopped_at_ms))
            .item("recordedAt", n(f.recorded_at_ms))
            .item("recordedBy", s(cut(&f.recorded_by, DETAIL_KEPT)))
            .item("validUntil", n(f.valid_until_ms))
            .send()
            .await
            .map_err(|e| self.error("PutItem", e))?;
        Ok(())
    }

    async fn freeze(&self, table: &str) -> Result<Option<RecordedFreeze>, FindingsError> {
        let id = freeze_id(table);
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", e))?;
        let Some(item) = answer.item else {
            return Ok(None);
        };
        // A freeze that cannot be read is an error, never "no freeze": readiness would then
        // judge against now, which a frozen table fails, but the operator must know why.
        let required = |name: &str| {
            number(&item, name).ok_or_else(|| FindingsError::Unreadable {
                id: id.clone(),
                reason: format!("no {name} number"),
            })
        };
        Ok(Some(RecordedFreeze {
            writes_stopped_at_ms: required("writesStoppedAt")?,
            recorded_at_ms: required("recordedAt")?,
            recorded_by: text(&item, "recordedBy").unwrap_or_default(),
            valid_until_ms: required("validUntil")?,
        }))
    }

    async fn lift_freeze(&self, table: &str) -> Result<bool, FindingsError> {
        let answer = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", s(freeze_id(table)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| self.error("DeleteItem", e))?;
        Ok(answer.attributes.is_some_and(|a| !a.is_empty()))
    }
}

/// The id of a table's recorded freeze.
fn freeze_id(table: &str) -> String {
    format!("freeze#{table}")
}

/// Creates the findings table (on-demand billing, the `byStatus` index) with its one layout,
/// [`FINDINGS_LAYOUT`](crate::ports::findings::FINDINGS_LAYOUT), as the SAM template does
/// (CreateTable only: `ddb-verify init` also turns on TTL and point-in-time recovery).
pub async fn create_findings_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), aws_sdk_dynamodb::Error> {
    super::tables::create_table(client, table, &crate::ports::findings::FINDINGS_LAYOUT).await
}
