//! CloudWatch metrics as Embedded Metric Format (EMF) documents on stdout: one set per invocation.
//!
//! A small encoder rather than a library: the candidates keep a global registry and flush on a timer,
//! while a Lambda invocation wants exactly its own figures flushed before it returns. The encoder
//! follows the EMF specification's limits: at most 100 metrics per document and 100 values per
//! metric; larger sets are split over several documents, with each counter in exactly one of them.

use serde_json::{json, Map, Value};

use crate::engine::{BatchReport, Outcome, Verdict};

/// Milliseconds since the epoch (EMF timestamps, deadlines, leases).
pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Writes EMF documents to stdout, one per line, where Lambda's log agent picks them up.
pub fn print_documents(documents: &[Value]) {
    for doc in documents {
        println!("{doc}");
    }
}

/// EMF limits (CloudWatch specification).
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
pub const MAX_VALUES_PER_METRIC: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub values: Vec<f64>,
}

/// Encodes metrics as EMF documents under one namespace and one dimension set.
pub fn emf_documents(
    namespace: &str,
    dimensions: &[(&str, &str)],
    timestamp_ms: u64,
    metrics: &[Metric],
) -> Vec<Value> {
    // Document k holds the k-th slice of 100 values of every metric that has one.
    let mut slices: Vec<Vec<(&Metric, &[f64])>> = Vec::new();
    for metric in metrics {
        for (k, chunk) in metric.values.chunks(MAX_VALUES_PER_METRIC).enumerate() {
            if slices.len() <= k {
                slices.push(Vec::new());
            }
            slices[k].push((metric, chunk));
        }
    }
    let dimension_names: Vec<&str> = dimensions.iter().map(|(n, _)| *n).collect();
    let mut documents = Vec::new();
    for slice in slices {
        for group in slice.chunks(MAX_METRICS_PER_DOCUMENT) {
            let mut doc = Map::new();
            let definitions: Vec<Value> = group
                .iter()
                .map(|(m, _)| json!({"Name": m.name, "Unit": m.unit.as_str()}))
                .collect();
            doc.insert(
                "_aws".into(),
                json!({
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": [dimension_names],
                        "Metrics": definitions,
                    }]
                }),
            );
            for (name, value) in dimensions {
                doc.insert((*name).into(), json!(value));
            }
            for (metric, values) in group {
                let value = if values.len() == 1 {
                    json!(values[0])
                } else {
                    json!(values)
                };
                doc.insert(metric.name.into(), value);
            }
            documents.push(Value::Object(doc));
        }
    }
    documents
}

/// The figures of one invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvocationMetrics {
    pub records_received: u64,
    pub records_sampled: u64,
    pub matches: u64,
    pub missing: u64,
    pub mismatches: u64,
    pub deletes_not_applied: u64,
    pub superseded: u64,
    pub unverifiable: u64,
    pub lookup_errors: u64,
    pub lookup_calls: u64,
    pub source_rechecks: u64,
    pub batch_item_failures: u64,
    pub replication_lag_ms: Vec<f64>,
    pub verify_duration_ms: f64,
}

impl InvocationMetrics {
    /// Counts a report's outcomes, plus `malformed` records that never reached the engine (each
    /// UNVERIFIABLE).
    pub fn from_report(report: &BatchReport, malformed: usize) -> InvocationMetrics {
        let mut m = InvocationMetrics {
            records_received: (report.outcomes.len() + malformed) as u64,
            ..InvocationMetrics::default()
        };
        m.add_calls(report);
        for _ in 0..malformed {
            m.add_unverifiable();
        }
        for outcome in &report.outcomes {
            m.add_outcome(outcome);
        }
        m
    }

    /// A malformed record: sampled (it gets a verdict) and UNVERIFIABLE.
    pub fn add_unverifiable(&mut self) {
        self.records_sampled += 1;
        self.unverifiable += 1;
    }

    /// Lookups and time of a report (not its outcomes).
    pub fn add_calls(&mut self, report: &BatchReport) {
        self.lookup_errors += report.lookup_errors as u64;
        self.lookup_calls += report.lookup_calls as u64;
        self.source_rechecks += report.source_calls as u64;
        self.verify_duration_ms += report.duration.as_secs_f64() * 1000.0;
    }

    /// Counts one record's outcome.
    pub fn add_outcome(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::NotSampled => return,
            Outcome::Retry(_) => self.batch_item_failures += 1,
            Outcome::Verdict(v) => match v {
                Verdict::Match { lag } => {
                    self.matches += 1;
                    self.replication_lag_ms.push(lag.as_millis() as f64);
                }
                Verdict::Missing { .. } => self.missing += 1,
                Verdict::Mismatch { .. } => self.mismatches += 1,
                Verdict::DeleteNotApplied { .. } => self.deletes_not_applied += 1,
                Verdict::Superseded { .. } => self.superseded += 1,
                Verdict::Unverifiable { .. } => self.unverifiable += 1,
            },
        }
        self.records_sampled += 1;
    }

    /// Every metric, zeros included, so alarms see 0 rather than missing data.
    pub fn metrics(&self) -> Vec<Metric> {
        let count = |name, v: u64| Metric {
            name,
            unit: Unit::Count,
            values: vec![v as f64],
        };
        let mut out = vec![
            count("RecordsReceived", self.records_received),
            count("RecordsSampled", self.records_sampled),
            count("Match", self.matches),
            count("Missing", self.missing),
            count("Mismatch", self.mismatches),
            count("DeleteNotApplied", self.deletes_not_applied),
            count("Superseded", self.superseded),
            count("Unverifiable", self.unverifiable),
            count("LookupErrors", self.lookup_errors),
            count("LookupCalls", self.lookup_calls),
            count("SourceRechecks", self.source_rechecks),
            count("BatchItemFailures", self.batch_item_failures),
            Metric {
                name: "VerifyDuration",
                unit: Unit::Milliseconds,
                values: vec![self.verify_duration_ms.round()],
            },
        ];
        if !self.replication_lag_ms.is_empty() {
            out.push(Metric {
                name: "ReplicationLag",
                unit: Unit::Milliseconds,
                values: self.replication_lag_ms.clone(),
            });
        }
        out
    }

    pub fn emf_documents(
        &self,
        namespace: &str,
        verify_table: &str,
        timestamp_ms: u64,
    ) -> Vec<Value> {
        emf_documents(
            namespace,
            &[("VerifyTable", verify_table)],
            timestamp_ms,
            &self.metrics(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &'static str, n: usize) -> Metric {
        Metric {
            name,
            unit: Unit::Count,
            values: (0..n).map(|i| i as f64).collect(),
        }
    }

    /// Checks a document against the EMF specification's structure.
    fn assert_valid_emf(doc: &Value) {
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].is_u64());
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        let d = &directives[0];
        assert!(d["Namespace"].is_string());
        let defs = d["Metrics"].as_array().unwrap();
        assert!(!defs.is_empty() && defs.len() <= MAX_METRICS_PER_DOCUMENT);
        for dims in d["Dimensions"].as_array().unwrap() {
            let dims = dims.as_array().unwrap();
            assert!(dims.len() <= 30);
            for dim in dims {
                assert!(
                    doc[dim.as_str().unwrap()].is_string(),
                    "dimension {dim} needs a string value"
                );
            }
        }
        for def in defs {
            let name = def["Name"].as_str().unwrap();
            let value = &doc[name];
            match value {
                Value::Number(_) => {}
                Value::Array(a) => assert!(!a.is_empty() && a.len() <= MAX_VALUES_PER_METRIC),
                other => panic!("metric {name} has value {other}"),
            }
        }
    }

    #[test]
    fn small_sets_fit_one_document() {
        let docs = emf_documents(
            "NS",
            &[("VerifyTable", "T")],
            1,
            &[metric("A", 1), metric("B", 3)],
        );
        assert_eq!(docs.len(), 1);
        assert_valid_emf(&docs[0]);
        assert_eq!(docs[0]["A"], json!(0.0));
        assert_eq!(docs[0]["B"], json!([0.0, 1.0, 2.0]));
        assert_eq!(docs[0]["VerifyTable"], "T");
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["VerifyTable"]])
        );
    }

    #[test]
    fn values_are_split_at_100_and_counted_once() {
        let docs = emf_documents(
            "NS",
            &[("VerifyTable", "T")],
            1,
            &[metric("Count", 1), metric("Lag", 250)],
        );
        assert_eq!(docs.len(), 3);
        for d in &docs {
            assert_valid_emf(d);
        }
        // The counter appears once; the lag values all appear exactly once, in order.
        assert_eq!(docs.iter().filter(|d| d.get("Count").is_some()).count(), 1);
        let lags: Vec<f64> = docs
            .iter()
            .flat_map(|d| match &d["Lag"] {
                Value::Array(a) => a.iter().map(|v| v.as_f64().unwrap()).collect(),
                v => vec![v.as_f64().unwrap()],
            })
            .collect();
        assert_eq!(lags, (0..250).map(|i| i as f64).collect::<Vec<_>>());
    }

    #[test]
    fn metrics_are_split_at_100_per_document() {
        let names: Vec<&'static str> = (0..150)
            .map(|i| &*Box::leak(format!("M{i}").into_boxed_str()))
            .collect();
        let metrics: Vec<Metric> = names.iter().map(|n| metric(n, 1)).collect();
        let docs = emf_documents("NS", &[("VerifyTable", "T")], 1, &metrics);
        assert_eq!(docs.len(), 2);
        let defined: usize = docs
            .iter()
            .map(|d| {
                assert_valid_emf(d);
                d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!(defined, 150);
    }
}
