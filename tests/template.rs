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

fn read_yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every policy statement of a template's functions and roles, with `!If` branches unfolded
/// (both branches count: either may be deployed).
fn statements(t: &Value) -> Vec<(String, Value)> {
    fn unfold(v: &Value, out: &mut Vec<Value>) {
        match v {
            Value::Tagged(tagged) if tagged.tag == "If" => {
                if let Some(branches) = tagged.value.as_sequence() {
                    for branch in branches.iter().skip(1) {
                        unfold(branch, out);
                    }
                }
            }
            Value::Tagged(_) => {} // !Ref AWS::NoValue
            Value::Mapping(_) => out.push(v.clone()),
            _ => {}
        }
    }
    let mut all = Vec::new();
    for (name, resource) in t["Resources"].as_mapping().unwrap() {
        let name = name.as_str().unwrap().to_string();
        let properties = &resource["Properties"];
        let mut documents: Vec<&Value> = Vec::new();
        if let Some(policies) = properties["Policies"].as_sequence() {
            for policy in policies {
                // SAM inline policies are documents; IAM role policies wrap them.
                documents.push(if policy.get("PolicyDocument").is_some() {
                    &policy["PolicyDocument"]
                } else {
                    policy
                });
            }
        }
        for document in documents {
            for statement in document["Statement"].as_sequence().into_iter().flatten() {
                let mut unfolded = Vec::new();
                unfold(statement, &mut unfolded);
                all.extend(unfolded.into_iter().map(|s| (name.clone(), s)));
            }
        }
    }
    all
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::Tagged(tagged) => strings(&tagged.value),
        Value::Mapping(m) => m.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn iam_grants_name_their_actions_and_resources() {
    // What the code calls (BatchGetItem; checkpoints: Query, UpdateItem; streams: DescribeStream,
    // GetShardIterator, GetRecords), what the event source mapping needs with the function's role
    // (the stream actions, ListStreams, SendMessage to the on-failure queue), and AssumeRole.
    let allowed: BTreeSet<&str> = [
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:DescribeStream",
        "dynamodb:GetShardIterator",
        "dynamodb:GetRecords",
        "dynamodb:ListStreams",
        "sqs:SendMessage",
        "sts:AssumeRole",
    ]
    .into();
    let mut checked = 0;
    for path in ["template.yaml", "templates/verify-role.yaml"] {
        let t = read_yaml(path);
        let all = statements(&t);
        assert!(!all.is_empty(), "{path}: no policy statements found");
        for (owner, statement) in all {
            let sid = statement["Sid"].as_str().unwrap_or("-").to_string();
            let at = format!("{path} {owner} {sid}");
            assert_eq!(statement["Effect"].as_str(), Some("Allow"), "{at}");
            let actions = strings(&statement["Action"]);
            assert!(!actions.is_empty(), "{at}: no action");
            for action in &actions {
                assert!(!action.contains('*'), "{at}: wildcard action {action}");
                assert!(
                    allowed.contains(action.as_str()),
                    "{at}: {action} is not used by the code"
                );
            }
            let resource = &statement["Resource"];
            assert!(!resource.is_null(), "{at}: no resource");
            for text in strings(resource) {
                // ListStreams has no per-stream form: it is scoped to the one table's streams.
                let table_streams =
                    actions == ["dynamodb:ListStreams"] && text == "${SourceTableArn}/stream/*";
                assert!(
                    !text.contains('*') || table_streams,
                    "{at}: wildcard resource {text:?}"
                );
            }
            if actions.iter().any(|a| a == "sts:AssumeRole") {
                assert_eq!(actions, ["sts:AssumeRole"], "{at}");
                let Value::Tagged(tagged) = resource else {
                    panic!("{at}: AssumeRole must name the configured role: {resource:?}")
                };
                assert_eq!(tagged.tag, "Ref", "{at}");
                let parameter = tagged.value.as_str().unwrap();
                assert!(
                    ["VerifyRoleArn", "PollerStreamRoleArn"].contains(&parameter),
                    "{at}: AssumeRole on {parameter}"
                );
            }
            checked += 1;
        }
        // Roles others assume require the external id.
        for (name, resource) in t["Resources"].as_mapping().unwrap() {
            let trust = &resource["Properties"]["AssumeRolePolicyDocument"];
            for statement in trust["Statement"].as_sequence().into_iter().flatten() {
                assert!(
                    !statement["Condition"]["StringEquals"]["sts:ExternalId"].is_null(),
                    "{path} {name:?}: trust policy without sts:ExternalId"
                );
            }
        }
    }
    assert!(checked >= 10, "only {checked} statements checked");
}
