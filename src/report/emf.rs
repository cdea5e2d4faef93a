//! CloudWatch metrics as Embedded Metric Format (EMF) documents on stdout: one set per invocation
//! (or poller run).
//!
//! A small encoder rather than a library: the candidates keep a global registry and flush on a timer,
//! while a Lambda invocation wants exactly its own figures flushed before it returns. The encoder
//! follows the EMF specification's limits: at most 100 metrics per document and 100 values per
//! metric; larger sets are split over several documents, with each counter in exactly one of them.

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::shared::epoch_ms;

/// Writes EMF documents to stdout, one per line, where Lambda's log agent picks them up.
pub fn print_documents(documents: &[Value]) {
    for doc in documents {
        println!("{doc}");
    }
}

/// Prints `metrics` as EMF documents in the configured namespace, with the other side's table as
/// the `VerifyTable` dimension (one dashboard for several migrations).
pub fn emit(config: &Config, metrics: &[Metric]) {
    print_documents(&table_documents(
        &config.metrics_namespace,
        &config.target_table.name,
        epoch_ms(),
        metrics,
    ));
}

/// EMF documents with the `VerifyTable` dimension.
pub fn table_documents(
    namespace: &str,
    verify_table: &str,
    timestamp_ms: u64,
    metrics: &[Metric],
) -> Vec<Value> {
    emf_documents(
        namespace,
        &[("VerifyTable", verify_table)],
        timestamp_ms,
        metrics,
    )
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

impl Metric {
    /// A counter.
    pub fn count(name: &'static str, value: u64) -> Metric {
        Metric {
            name,
            unit: Unit::Count,
            values: vec![value as f64],
        }
    }

    pub fn milliseconds(name: &'static str, values: Vec<f64>) -> Metric {
        Metric {
            name,
            unit: Unit::Milliseconds,
            values,
        }
    }
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
