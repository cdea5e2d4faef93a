//! The SAM template against the code: the variables the function reads are exactly the ones the
//! template sets, and the stream event source keeps records rather than dropping them.

use std::collections::BTreeSet;

use ddb_verify::config::{LOCAL_ONLY_VARIABLES, VARIABLES};
use serde_yaml::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml"))
        .expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml parses")
}

fn function(t: &Value, name: &str) -> Value {
    t["Resources"][name]["Properties"].clone()
}

/// A function's environment variables: the Globals' and its own (SAM merges them).
fn variables(t: &Value, name: &str) -> BTreeSet<String> {
    let names = |v: &Value| -> Vec<String> {
        v.as_mapping()
            .map(|m| m.keys().map(|k| k.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let mut all: BTreeSet<String> = names(&t["Globals"]["Function"]["Environment"]["Variables"])
        .into_iter()
        .collect();
    all.extend(names(&function(t, name)["Environment"]["Variables"]));
    all
}

#[test]
fn the_template_sets_exactly_the_variables_the_verifier_reads() {
    let t = template();
    let set = variables(&t, "StreamVerifierFunction");
    let read: BTreeSet<String> = VARIABLES
        .iter()
        .filter(|v| !LOCAL_ONLY_VARIABLES.contains(v))
        .map(|v| v.to_string())
        .collect();
    assert_eq!(
        set, read,
        "template.yaml and config::VARIABLES have drifted apart"
    );
}

#[test]
fn the_template_sets_exactly_the_variables_the_poller_reads() {
    use ddb_verify::poller::{POLLER_VARIABLES, POLLER_VARIABLES_NOT_IN_TEMPLATE};
    let t = template();
    let set = variables(&t, "ShardPollerFunction");
    let read: BTreeSet<String> = VARIABLES
        .iter()
        .chain(POLLER_VARIABLES)
        .filter(|v| {
            !LOCAL_ONLY_VARIABLES.contains(v) && !POLLER_VARIABLES_NOT_IN_TEMPLATE.contains(v)
        })
        .map(|v| v.to_string())
        .collect();
    assert_eq!(
        set, read,
        "template.yaml and the poller's variables have drifted apart"
    );
    assert_eq!(
        t["Resources"]["ShardPollerFunction"]["Properties"]["ReservedConcurrentExecutions"],
        Value::from(1)
    );
    let table = &t["Resources"]["CheckpointTable"]["Properties"];
    assert_eq!(table["BillingMode"], Value::from("PAY_PER_REQUEST"));
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        Value::from(true)
    );
}

#[test]
fn the_stream_event_source_reports_failures_and_keeps_what_it_cannot_verify() {
    let t = template();
    let f = function(&t, "StreamVerifierFunction");
    let events = f["Events"].as_mapping().expect("Events");
    let stream = events
        .values()
        .find(|e| e["Type"] == "DynamoDB")
        .expect("a DynamoDB stream event")["Properties"]
        .clone();
    assert_eq!(
        stream["FunctionResponseTypes"],
        serde_yaml::from_str::<Value>("[ReportBatchItemFailures]").unwrap()
    );
    assert_eq!(stream["BisectBatchOnFunctionError"], Value::from(true));
    assert_eq!(
        stream["DestinationConfig"]["OnFailure"]["Type"],
        Value::from("SQS")
    );
    for key in [
        "StartingPosition",
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
    ] {
        assert!(!stream[key].is_null(), "{key} is set");
    }
    assert_eq!(
        t["Globals"]["Function"]["Runtime"],
        Value::from("provided.al2023")
    );
    assert_eq!(
        t["Resources"]["StreamVerifierFunction"]["Metadata"]["BuildMethod"],
        Value::from("rust-cargolambda")
    );
}

#[test]
fn every_lag_window_gives_the_function_time_beyond_it() {
    let t = template();
    let allowed = t["Parameters"]["MaxReplicationLag"]["AllowedValues"]
        .as_sequence()
        .unwrap()
        .clone();
    for lag in allowed {
        let lag = lag.as_str().unwrap();
        let seconds = ddb_verify::config::parse_duration("MaxReplicationLag", lag)
            .unwrap()
            .as_secs();
        let timeout = t["Mappings"]["LagWindow"][lag]["Timeout"]
            .as_u64()
            .unwrap_or_else(|| panic!("no timeout for {lag}"));
        // The window, the 2 s deadline margin, and time for the lookups themselves.
        assert!(timeout >= seconds + 2 + 10, "{lag}: timeout {timeout}");
    }
}
