//! [`CheckpointStore`] and [`BaselineStore`] in a DynamoDB table (schema in `ports::checkpoint`),
//! and the table's creation.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::DynamoDbCallError;
use crate::ports::checkpoint::BaselineCounts;
use crate::ports::checkpoint::{
    BaselineStore, Checkpoint, CheckpointError, CheckpointStore, Direction, DirectionProgress,
    Lease, RunRecord, RunSettings, SegmentProgress, StreamStart,
};

/// The shard id of a stream's own item ([`StreamStart`]); no shard id begins with `#`.
const STREAM_ITEM: &str = "#stream";

/// [`CheckpointStore`] in a DynamoDB table (schema in the module documentation).
#[derive(Debug, Clone)]
pub struct DynamoDbCheckpoints {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDbCheckpoints {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> DynamoDbCheckpoints {
        DynamoDbCheckpoints {
            client,
            table: table.into(),
        }
    }

    fn error(&self, operation: &'static str, err: impl DynamoDbCallError) -> CheckpointError {
        CheckpointError::Service(err.failure(operation, format!("checkpoint table {}", self.table)))
    }

    /// An UpdateItem on the lease's item, with `:me` bound to its owner (every write is
    /// conditional on it).
    fn update(&self, lease: &Lease<'_>) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(lease.stream_arn, lease.shard_id)))
            .expression_attribute_values(":me", AttributeValue::S(lease.owner.to_string()))
    }

    /// An UpdateItem on the stream's own item (its start and unrecorded runs' mark).
    fn update_stream(&self, stream_arn: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(stream_arn, STREAM_ITEM)))
    }

    /// Changes the stream item's unrecorded runs' mark (`update`) if `condition` holds, `:at`
    /// bound to `at_ms`.
    async fn update_unrecorded(
        &self,
        stream_arn: &str,
        update: &str,
        condition: &str,
        at_ms: u64,
    ) -> Result<(), CheckpointError> {
        let update = self
            .update_stream(stream_arn)
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_values(":at", AttributeValue::N(at_ms.to_string()));
        self.if_condition_holds(update).await
    }

    /// Sends a conditional update; a condition that fails changes nothing and is no error.
    async fn if_condition_holds(
        &self,
        update: UpdateItemFluentBuilder,
    ) -> Result<(), CheckpointError> {
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(e) => Err(self.error("UpdateItem", e)),
        }
    }

    fn key(stream_arn: &str, shard_id: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (
                "streamArn".to_string(),
                AttributeValue::S(stream_arn.to_string()),
            ),
            (
                "shardId".to_string(),
                AttributeValue::S(shard_id.to_string()),
            ),
        ])
    }
}

impl DynamoDbCheckpoints {
    /// Every item of a partition (`streamArn`), consistently, Query paged to the end; only sort
    /// keys (`shardId`) beginning with `prefix` when given.
    async fn partition(
        &self,
        partition: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, CheckpointError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("streamArn = :partition")
                .expression_attribute_values(":partition", AttributeValue::S(partition.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            if let Some(prefix) = prefix {
                query = query
                    .key_condition_expression(
                        "streamArn = :partition AND begins_with(shardId, :prefix)",
                    )
                    .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_string()));
            }
            let page = query.send().await.map_err(|e| self.error("Query", e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(out),
            }
        }
    }
}

fn checkpoint_of(item: &HashMap<String, AttributeValue>) -> Checkpoint {
    Checkpoint {
        sequence_number: item
            .get("sequenceNumber")
            .and_then(|v| v.as_s().ok())
            .cloned(),
        shard_end: item
            .get("shardEnd")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        started_at_ms: item
            .get("startedAt")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok()),
    }
}

fn stream_start_of(started_at_ms: u64, item: &HashMap<String, AttributeValue>) -> StreamStart {
    let root_shards = item
        .get("rootShards")
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default();
    StreamStart {
        started_at_ms,
        root_shards,
        unrecorded_at_ms: number(item, "unrecordedAt"),
    }
}

/// Creates the checkpoint table (on-demand billing) with its one layout,
/// [`CHECKPOINT_LAYOUT`](crate::ports::checkpoint::CHECKPOINT_LAYOUT), as the SAM template does
/// (CreateTable only: `ddb-verify init` also turns on point-in-time recovery).
pub async fn create_checkpoint_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), aws_sdk_dynamodb::Error> {
    super::tables::create_table(client, table, &crate::ports::checkpoint::CHECKPOINT_LAYOUT).await
}

impl CheckpointStore for DynamoDbCheckpoints {
    async fn load_all(
        &self,
        stream_arn: &str,
    ) -> Result<HashMap<String, Checkpoint>, CheckpointError> {
        let items = self.partition(stream_arn, None).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let shard = item.get("shardId").and_then(|v| v.as_s().ok())?;
                (!shard.starts_with('#')).then(|| (shard.clone(), checkpoint_of(item)))
            })
            .collect())
    }

    async fn start_stream(
        &self,
        stream_arn: &str,
        start: &StreamStart,
    ) -> Result<(StreamStart, bool), CheckpointError> {
        let roots = start
            .root_shards
            .iter()
            .map(|s| AttributeValue::S(s.clone()))
            .collect();
        let out = self
            .update_stream(stream_arn)
            .update_expression(
                "SET startedAt = if_not_exists(startedAt, :at), rootShards = if_not_exists(rootShards, :roots)",
            )
            .expression_attribute_values(":at", AttributeValue::N(start.started_at_ms.to_string()))
            .expression_attribute_values(":roots", AttributeValue::L(roots))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", e))?;
        let old = out.attributes.unwrap_or_default();
        match number(&old, "startedAt") {
            Some(started_at_ms) => Ok((stream_start_of(started_at_ms, &old), false)),
            None => Ok((start.clone(), true)),
        }
    }

    async fn mark_unrecorded(&self, stream_arn: &str, at_ms: u64) -> Result<(), CheckpointError> {
        // A newer mark is there already if the condition fails.
        self.update_unrecorded(
            stream_arn,
            "SET unrecordedAt = :at",
            "attribute_not_exists(unrecordedAt) OR unrecordedAt < :at",
            at_ms,
        )
        .await
    }

    async fn clear_unrecorded(
        &self,
        stream_arn: &str,
        seen_ms: u64,
    ) -> Result<(), CheckpointError> {
        // A newer mark came meanwhile if the condition fails: the next run records it.
        self.update_unrecorded(
            stream_arn,
            "REMOVE unrecordedAt",
            "unrecordedAt = :at",
            seen_ms,
        )
        .await
    }

    async fn acquire(&self, lease: &Lease<'_>) -> Result<Option<Checkpoint>, CheckpointError> {
        let result = self
            .update(lease)
            .update_expression("SET leaseOwner = :me, leaseExpiresAt = :until, updatedAt = :now")
            .condition_expression(
                "attribute_not_exists(leaseOwner) OR leaseOwner = :me OR leaseExpiresAt < :now",
            )
            .expression_attribute_values(":until", AttributeValue::N(lease.until_ms.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(lease.now_ms.to_string()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(checkpoint_of(&out.attributes.unwrap_or_default()))),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(None),
            Err(e) => Err(self.error("UpdateItem", e)),
        }
    }

    async fn save(
        &self,
        lease: &Lease<'_>,
        checkpoint: &Checkpoint,
    ) -> Result<(), CheckpointError> {
        let mut request = self
            .update(lease)
            .condition_expression("leaseOwner = :me")
            .expression_attribute_values(":end", AttributeValue::Bool(checkpoint.shard_end))
            .expression_attribute_values(":until", AttributeValue::N(lease.until_ms.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(lease.now_ms.to_string()));
        let mut set = vec![
            "shardEnd = :end",
            "leaseExpiresAt = :until",
            "updatedAt = :now",
        ];
        if let Some(seq) = &checkpoint.sequence_number {
            set.push("sequenceNumber = :seq");
            request = request.expression_attribute_values(":seq", AttributeValue::S(seq.clone()));
        }
        if let Some(started) = checkpoint.started_at_ms {
            // The first start stays: a later write never moves it.
            set.push("startedAt = if_not_exists(startedAt, :started)");
            request = request
                .expression_attribute_values(":started", AttributeValue::N(started.to_string()));
        }
        request = request.update_expression(format!("SET {}", set.join(", ")));
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                Err(CheckpointError::LeaseLost {
                    shard_id: lease.shard_id.to_string(),
                })
            }
            Err(e) => Err(self.error("UpdateItem", e)),
        }
    }

    async fn release(&self, lease: &Lease<'_>) -> Result<(), CheckpointError> {
        let update = self
            .update(lease)
            .update_expression("REMOVE leaseOwner, leaseExpiresAt")
            .condition_expression("leaseOwner = :me");
        self.if_condition_holds(update).await
    }
}

/// The counters of a segment item, by attribute name.
const COUNTS: [&str; 10] = [
    "itemsSource",
    "itemsTarget",
    "match",
    "missing",
    "mismatch",
    "extra",
    "superseded",
    "unverifiable",
    // Absent from segments saved before EXPIRED existed: read as 0.
    "expired",
    // Absent from segments saved before the merged scans: read as 0.
    "pointReads",
];

fn counts_fields(c: &mut BaselineCounts) -> [&mut u64; 10] {
    [
        &mut c.items_source,
        &mut c.items_target,
        &mut c.matched,
        &mut c.missing,
        &mut c.mismatched,
        &mut c.extra,
        &mut c.superseded,
        &mut c.unverifiable,
        &mut c.expired,
        &mut c.point_reads,
    ]
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

fn run_partition(run_id: &str) -> String {
    format!("baseline#{run_id}")
}

/// The run item: `startedAt`, `finishedAt` (N), and what it compares: `totalSegments` (N),
/// `sourceTable`, `otherTable` (S), `ignoreAttributes` (L of S), `findingsTable` (S, or NULL when
/// findings are not recorded).
fn run_of(
    run_id: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<RunRecord, CheckpointError> {
    let unreadable = |reason: &str| CheckpointError::Unreadable {
        key: format!("{}/run", run_partition(run_id)),
        reason: reason.to_string(),
    };
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let ignore_attributes = match item.get("ignoreAttributes") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| v.as_s().cloned())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| unreadable("ignoreAttributes holds a value that is not a string"))?,
        _ => return Err(unreadable("no ignoreAttributes list")),
    };
    Ok(RunRecord {
        run_id: run_id.to_string(),
        settings: RunSettings {
            source: text("sourceTable").ok_or_else(|| unreadable("no sourceTable"))?,
            other_side: text("otherTable").ok_or_else(|| unreadable("no otherTable"))?,
            ignore_attributes,
            total_segments: number(item, "totalSegments")
                .ok_or_else(|| unreadable("no totalSegments"))? as u32,
            findings_table: text("findingsTable"),
        },
        started_at_ms: number(item, "startedAt").ok_or_else(|| unreadable("no startedAt"))?,
        finished_at_ms: number(item, "finishedAt"),
    })
}

/// A segment item: per direction, `<direction>Key` (M), `<direction>Done` (BOOL) and
/// `<direction>Counts` (M of N); a direction not saved yet has not started.
fn progress_of(
    key: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<SegmentProgress, CheckpointError> {
    let cursor = |direction: Direction| -> Result<DirectionProgress, CheckpointError> {
        let name = |what: &str| format!("{}{what}", direction.as_str());
        let mut counts = BaselineCounts::default();
        if let Some(stored) = item.get(&name("Counts")) {
            let stored = stored.as_m().map_err(|_| CheckpointError::Unreadable {
                key: key.to_string(),
                reason: format!("{} is not a map", name("Counts")),
            })?;
            for (field, counter) in counts_fields(&mut counts).into_iter().zip(COUNTS) {
                *field = number(stored, counter).unwrap_or(0);
            }
        }
        Ok(DirectionProgress {
            start_key: item.get(&name("Key")).and_then(|v| v.as_m().ok()).cloned(),
            done: item
                .get(&name("Done"))
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
            counts,
        })
    };
    Ok(SegmentProgress {
        source: cursor(Direction::Source)?,
        target: cursor(Direction::Target)?,
    })
}

impl BaselineStore for DynamoDbCheckpoints {
    async fn start_run(
        &self,
        run_id: &str,
        settings: &RunSettings,
        now_ms: u64,
    ) -> Result<RunRecord, CheckpointError> {
        let ignore = settings
            .ignore_attributes
            .iter()
            .map(|a| AttributeValue::S(a.clone()))
            .collect();
        let findings = match &settings.findings_table {
            Some(table) => AttributeValue::S(table.clone()),
            None => AttributeValue::Null(true),
        };
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&run_partition(run_id), "run")))
            .update_expression(
                "SET startedAt = if_not_exists(startedAt, :now), totalSegments = if_not_exists(totalSegments, :n), \
                 sourceTable = if_not_exists(sourceTable, :source), otherTable = if_not_exists(otherTable, :other), \
                 ignoreAttributes = if_not_exists(ignoreAttributes, :ignore), findingsTable = if_not_exists(findingsTable, :findings)",
            )
            // A run recorded without its settings is not given today's: it would pass for them.
            .condition_expression("attribute_not_exists(startedAt) OR attribute_exists(sourceTable)")
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
            .expression_attribute_values(
                ":n",
                AttributeValue::N(settings.total_segments.to_string()),
            )
            .expression_attribute_values(":source", AttributeValue::S(settings.source.clone()))
            .expression_attribute_values(
                ":other",
                AttributeValue::S(settings.other_side.clone()),
            )
            .expression_attribute_values(":ignore", AttributeValue::L(ignore))
            .expression_attribute_values(":findings", findings)
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                return Err(CheckpointError::RunUnrecorded {
                    run_id: run_id.to_string(),
                })
            }
            Err(e) => return Err(self.error("UpdateItem", e)),
        };
        let run = run_of(run_id, &out.attributes.unwrap_or_default())?;
        run.settings.resumed_as(run_id, settings)?;
        Ok(run)
    }

    async fn load_run(&self, run_id: &str) -> Result<Option<RunRecord>, CheckpointError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&run_partition(run_id), "run")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", e))?;
        out.item.map(|item| run_of(run_id, &item)).transpose()
    }

    async fn load_segment(
        &self,
        run_id: &str,
        segment: u32,
    ) -> Result<Option<SegmentProgress>, CheckpointError> {
        let (partition, sort) = (run_partition(run_id), format!("segment#{segment}"));
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&partition, &sort)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", e))?;
        out.item
            .map(|item| progress_of(&format!("{partition}/{sort}"), &item))
            .transpose()
    }

    async fn load_segments(
        &self,
        run_id: &str,
    ) -> Result<HashMap<u32, SegmentProgress>, CheckpointError> {
        let partition = run_partition(run_id);
        let mut out = HashMap::new();
        for item in self.partition(&partition, Some("segment#")).await? {
            let key = item
                .get("shardId")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            let segment = key
                .strip_prefix("segment#")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| CheckpointError::Unreadable {
                    key: format!("{partition}/{key}"),
                    reason: "not segment#<number>".into(),
                })?;
            out.insert(segment, progress_of(&format!("{partition}/{key}"), &item)?);
        }
        Ok(out)
    }

    async fn save_segment(
        &self,
        run_id: &str,
        segment: u32,
        progress: &SegmentProgress,
    ) -> Result<(), CheckpointError> {
        let mut sets = vec!["updatedAt = :now".to_string()];
        let mut removes = Vec::new();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                &run_partition(run_id),
                &format!("segment#{segment}"),
            )))
            .expression_attribute_values(
                ":now",
                AttributeValue::N(crate::shared::epoch_ms().to_string()),
            );
        for direction in [Direction::Source, Direction::Target] {
            let prefix = direction.as_str();
            let cursor = progress.cursor(direction);
            let mut counts = cursor.counts;
            let counts: HashMap<String, AttributeValue> = counts_fields(&mut counts)
                .into_iter()
                .zip(COUNTS)
                .map(|(n, name)| (name.to_string(), AttributeValue::N(n.to_string())))
                .collect();
            sets.push(format!("{prefix}Done = :{prefix}Done"));
            sets.push(format!("{prefix}Counts = :{prefix}Counts"));
            request = request
                .expression_attribute_values(
                    format!(":{prefix}Done"),
                    AttributeValue::Bool(cursor.done),
                )
                .expression_attribute_values(format!(":{prefix}Counts"), AttributeValue::M(counts));
            match &cursor.start_key {
                Some(key) => {
                    sets.push(format!("{prefix}Key = :{prefix}Key"));
                    request = request.expression_attribute_values(
                        format!(":{prefix}Key"),
                        AttributeValue::M(key.clone()),
                    );
                }
                None => removes.push(format!("{prefix}Key")),
            }
        }
        let mut update = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            update.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        request
            .update_expression(update)
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", e))?;
        Ok(())
    }

    async fn finish_run(&self, run_id: &str, now_ms: u64) -> Result<RunRecord, CheckpointError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&run_partition(run_id), "run")))
            .update_expression("SET finishedAt = if_not_exists(finishedAt, :now)")
            .condition_expression("attribute_exists(startedAt)")
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", e))?;
        run_of(run_id, &out.attributes.unwrap_or_default())
    }
}
