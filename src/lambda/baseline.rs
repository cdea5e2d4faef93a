//! The `baseline-segment` function's contract, for a Step Functions Distributed Map:
//!
//! - `{"action": "segment", "run_id", "segment", "total_segments"}`: works on the segment from its
//!   checkpoint until the deadline; answers `{"done", "run_id", "segment", "items_scanned",
//!   "verdicts"}` (the segment's counts so far). Not done: invoke it again with the same input.
//! - `{"action": "finish", "run_id", "total_segments"}`: the run from its checkpoints, recorded as
//!   finished once every segment is done; answers `{"run_id", "complete", "segments_done",
//!   "items_scanned", "verdicts"}`.
//!
//! Either may name the pair's source table, `"table"` (with `TABLE_PAIRS`, one function serves
//! every pair; without it, the function's one pair); without it, the first pair.
//!
//! Each segment invocation prints its EMF document: `ItemsScanned`, the verdicts with `Extra`,
//! `ConsumedReadUnits`, `SegmentsCompleted`, and `SegmentsTotal` (the run's segments: the
//! dashboard's progress is `SegmentsCompleted` over it).

use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::baseline::{Baseline, BaselineError};
use crate::ports::checkpoint::BaselineStore;
use crate::ports::findings::FindingsStore;
use crate::ports::scan::TableScanner;
use crate::ports::table::TableReader;
use crate::report::emf::{self, Metric};
use crate::report::metrics::baseline_metrics;
use crate::report::metrics::InvocationMetrics;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum BaselineRequest {
    Segment {
        run_id: String,
        segment: u32,
        total_segments: u32,
        #[serde(default)]
        table: Option<String>,
    },
    Finish {
        run_id: String,
        total_segments: u32,
        #[serde(default)]
        table: Option<String>,
    },
}

impl BaselineRequest {
    /// The pair's source table the request names, if any.
    pub fn table(&self) -> Option<&str> {
        match self {
            BaselineRequest::Segment { table, .. } | BaselineRequest::Finish { table, .. } => {
                table.as_deref().filter(|t| !t.is_empty())
            }
        }
    }
}

/// Answers one request (see the module documentation).
pub async fn handle<R, S, B, F>(
    baseline: &Baseline<R, S, B, F>,
    request: BaselineRequest,
    deadline: Instant,
) -> Result<Value, BaselineError>
where
    R: TableReader + Clone,
    S: TableScanner,
    B: BaselineStore,
    F: FindingsStore,
{
    match request {
        BaselineRequest::Segment {
            run_id,
            segment,
            total_segments,
            ..
        } => {
            baseline.start(&run_id, total_segments).await?;
            let mut metrics = InvocationMetrics::default();
            let units_before = baseline.consumed_read_units();
            let counted =
                std::sync::Mutex::new(crate::ports::checkpoint::BaselineCounts::default());
            let on_page = |page: &crate::ports::checkpoint::BaselineCounts| {
                *counted.lock().unwrap() += *page;
            };
            let report = baseline
                .run_segment(
                    &run_id,
                    segment,
                    total_segments,
                    Some(deadline),
                    &mut metrics,
                    &on_page,
                )
                .await?;
            let units = baseline.consumed_read_units();
            let mut documents = baseline_metrics(&counted.into_inner().unwrap_or_default());
            documents.push(Metric::count(
                "ConsumedReadUnits",
                (units.0 - units_before.0 + units.1 - units_before.1).round() as u64,
            ));
            documents.push(Metric::count("SegmentsCompleted", u64::from(report.done)));
            documents.push(Metric::count("SegmentsTotal", u64::from(total_segments)));
            emf::emit(&baseline.config().verify, &documents);
            tracing::info!(
                run_id,
                segment,
                done = report.done,
                items_source = report.counts.items_source,
                items_target = report.counts.items_target,
                problems = report.counts.problems(),
                "baseline segment worked on"
            );
            let mut out = serde_json::Map::new();
            out.insert("done".into(), report.done.into());
            out.insert("run_id".into(), run_id.into());
            out.insert("segment".into(), segment.into());
            out.extend(report.counts.to_json());
            Ok(Value::Object(out))
        }
        BaselineRequest::Finish {
            run_id,
            total_segments,
            ..
        } => Ok(baseline.finish(&run_id, total_segments).await?.to_json()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_as_the_state_machine_sends_them() {
        let segment: BaselineRequest = serde_json::from_str(
            r#"{"action": "segment", "run_id": "r1", "segment": 3, "total_segments": 8}"#,
        )
        .unwrap();
        assert_eq!(
            segment,
            BaselineRequest::Segment {
                run_id: "r1".into(),
                segment: 3,
                total_segments: 8,
                table: None,
            }
        );
        let named: BaselineRequest = serde_json::from_str(
            r#"{"action": "finish", "run_id": "r1", "total_segments": 8, "table": "Catalog"}"#,
        )
        .unwrap();
        assert_eq!(named.table(), Some("Catalog"));
        let finish: BaselineRequest =
            serde_json::from_str(r#"{"action": "finish", "run_id": "r1", "total_segments": 8}"#)
                .unwrap();
        assert!(matches!(finish, BaselineRequest::Finish { .. }));
        // A misspelt field is an error naming it, not a default.
        let e = serde_json::from_str::<BaselineRequest>(
            r#"{"action": "segment", "run_id": "r1", "segmnet": 3, "total_segments": 8}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("segmnet"), "{e}");
    }
}
