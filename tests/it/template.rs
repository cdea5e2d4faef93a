//! The SAM template against the code: the variables the function reads are exactly the ones the
//! template sets, and the stream event source keeps records rather than dropping them. Both places
//! the verifier can run in (`DeployIn`) are deployed here on paper: the template's conditions,
//! intrinsic functions and rules evaluated for given parameters, and the resulting grants checked
//! one by one. And the docs against both: the configuration tables of `docs/configuration.md` list
//! exactly the variables each program asks for, the parameter table of `docs/deploy.md` exactly the
//! template's parameters with their defaults, and every link between the docs leads somewhere.

use std::collections::{BTreeMap, BTreeSet};

use ddb_verify::config::{
    LOCAL_ONLY_VARIABLES, PAIRS_VARIABLES, VARIABLES, VERIFIER_ONLY_VARIABLES,
};
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
        .chain(VERIFIER_ONLY_VARIABLES)
        .chain(PAIRS_VARIABLES)
        .filter(|v| !LOCAL_ONLY_VARIABLES.contains(v))
        .map(|v| v.to_string())
        .collect();
    assert_eq!(
        set, read,
        "template.yaml and config::VARIABLES have drifted apart"
    );
}

#[test]
fn the_template_sets_exactly_the_variables_the_baseline_reads() {
    use ddb_verify::config::{BASELINE_VARIABLES, BASELINE_VARIABLES_NOT_IN_TEMPLATE};
    let t = template();
    let set = variables(&t, "BaselineSegmentFunction");
    let read: BTreeSet<String> = VARIABLES
        .iter()
        .chain(BASELINE_VARIABLES)
        .chain(PAIRS_VARIABLES)
        .filter(|v| {
            !LOCAL_ONLY_VARIABLES.contains(v) && !BASELINE_VARIABLES_NOT_IN_TEMPLATE.contains(v)
        })
        .map(|v| v.to_string())
        .collect();
    assert_eq!(
        set, read,
        "template.yaml and the baseline's variables have drifted apart"
    );
}

#[test]
fn the_template_sets_exactly_the_variables_the_poller_reads() {
    use ddb_verify::config::{POLLER_VARIABLES, POLLER_VARIABLES_NOT_IN_TEMPLATE};
    let t = template();
    let set = variables(&t, "ShardPollerFunction");
    let read: BTreeSet<String> = VARIABLES
        .iter()
        .chain(POLLER_VARIABLES)
        .filter(|v| {
            !LOCAL_ONLY_VARIABLES.contains(v)
                && !POLLER_VARIABLES_NOT_IN_TEMPLATE.contains(v)
                && !VERIFIER_ONLY_VARIABLES.contains(v)
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
    // The mapping is a resource of its own (created only once it can read the stream), not a SAM
    // event: SAM would also attach its managed stream policy in every account.
    assert!(
        f["Events"].is_null(),
        "the verifier has SAM events: {:?}",
        f["Events"]
    );
    let mapping = &t["Resources"]["StreamVerifierFunctionSourceStream"];
    assert_eq!(
        mapping["Type"],
        Value::from("AWS::Lambda::EventSourceMapping")
    );
    let stream = mapping["Properties"].clone();
    assert_eq!(strings(&stream["FunctionName"]), ["StreamVerifierFunction"]);
    assert_eq!(strings(&stream["EventSourceArn"]), ["SourceStreamArn"]);
    assert_eq!(
        stream["FunctionResponseTypes"],
        serde_yaml::from_str::<Value>("[ReportBatchItemFailures]").unwrap()
    );
    assert_eq!(stream["BisectBatchOnFunctionError"], Value::from(true));
    assert_eq!(
        strings(&stream["DestinationConfig"]["OnFailure"]["Destination"]),
        ["FailureQueue.Arn"]
    );
    for key in [
        "Enabled",
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

/// A template's resources, and those its `Fn::ForEach` loops make as they are written (their
/// logical ids with `&{...}`, their values with the loop's identifier): everything it may deploy.
fn resources_and_loops(t: &Value) -> Vec<(String, &Value)> {
    let mut all = Vec::new();
    for (name, resource) in t["Resources"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        if name.starts_with("Fn::ForEach::") {
            let body = resource[2]
                .as_mapping()
                .expect("a loop's body: its resources");
            for (inner, resource) in body {
                all.push((inner.as_str().unwrap().to_string(), resource));
            }
        } else {
            all.push((name.to_string(), resource));
        }
    }
    all
}

/// Every policy statement of a template's functions, roles and policies (those of its loops
/// too), with `!If` branches unfolded (both branches count: either may be deployed).
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
    for (name, resource) in resources_and_loops(t) {
        let properties = &resource["Properties"];
        let mut documents: Vec<&Value> = Vec::new();
        // An AWS::IAM::Policy attached to a role.
        if !properties["PolicyDocument"].is_null() {
            documents.push(&properties["PolicyDocument"]);
        }
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
    // (the stream actions, ListStreams, SendMessage to the on-failure queue), and AssumeRole. The
    // baseline compare: Scan, DescribeTable, its checkpoints (GetItem, PutItem), and its state
    // machine's Lambda invocations and Distributed Map child executions. The opt-in repair role of
    // templates/verify-role.yaml: PutItem and DeleteItem (its own test holds them to that role).
    let allowed: BTreeSet<&str> = [
        "dynamodb:BatchGetItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Scan",
        "dynamodb:DescribeTable",
        "lambda:InvokeFunction",
        "states:StartExecution",
        "states:DescribeExecution",
        "states:StopExecution",
        "states:RedriveExecution",
        "dynamodb:DescribeStream",
        "dynamodb:GetShardIterator",
        "dynamodb:GetRecords",
        "dynamodb:ListStreams",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "lambda:ListEventSourceMappings",
        "lambda:GetFunctionConfiguration",
        "cloudwatch:GetMetricData",
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
                // A Distributed Map's child executions are named by Step Functions: the baseline
                // state machine's own executions, and only the actions that follow them.
                let own_executions = actions.iter().all(|a| {
                    [
                        "states:DescribeExecution",
                        "states:StopExecution",
                        "states:RedriveExecution",
                    ]
                    .contains(&a.as_str())
                }) && text
                    .ends_with(":execution:${AWS::StackName}-baseline/*")
                    && text.matches('*').count() == 1;
                // Listing event source mappings has no resource to name (the Lambda API's own rule).
                let mappings = actions == ["lambda:ListEventSourceMappings"] && text == "*";
                // Nor has reading metrics (CloudWatch's rule for GetMetricData).
                let metrics = actions == ["cloudwatch:GetMetricData"] && text == "*";
                assert!(
                    !text.contains('*') || table_streams || own_executions || mappings || metrics,
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
                    ["VerifyRoleArn", "PollerStreamRoleArn", "SourceRoleArn"].contains(&parameter),
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

/// The stream's resource-based policy for `DeployIn=TargetAccount` (put in the source account with
/// `aws dynamodb put-resource-policy`): the three stream read actions, for exactly the verifier's
/// role, on exactly the stream; and the stack's `SourceStreamPolicy` output is the same document,
/// filled in.
#[test]
fn the_source_stream_policy_lets_only_the_verifier_read_only_the_stream() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/source-stream-policy.json"
    );
    let text = std::fs::read_to_string(path).expect("templates/source-stream-policy.json");
    let policy: serde_json::Value = serde_json::from_str(&text).expect("the policy is JSON");
    assert_eq!(policy["Version"], "2012-10-17");
    let statements = policy["Statement"].as_array().expect("Statement");
    assert_eq!(statements.len(), 1);
    let statement = &statements[0];
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(
        statement["Principal"],
        serde_json::json!({ "AWS": "VERIFIER_ROLE_ARN" })
    );
    assert_eq!(
        statement["Action"],
        serde_json::json!([
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator"
        ])
    );
    assert_eq!(statement["Resource"], "SOURCE_STREAM_ARN");
    assert!(!text.contains('*'), "wildcard in the stream policy");

    let t = template();
    let d = Deployment::new(&t, &target_account(&[]));
    let output = d
        .resolve(&t["Outputs"]["SourceStreamPolicy"]["Value"])
        .expect("SourceStreamPolicy output");
    let filled = text
        .replace("VERIFIER_ROLE_ARN", "GetAtt:StreamVerifierFunctionRole.Arn")
        .replace("SOURCE_STREAM_ARN", SOURCE_STREAM);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(output.as_str().unwrap()).unwrap(),
        serde_json::from_str::<serde_json::Value>(&filled).unwrap(),
        "the SourceStreamPolicy output and templates/source-stream-policy.json differ"
    );
    let source = Deployment::new(&t, &source_account(&[]));
    assert!(!source.condition(
        t["Outputs"]["SourceStreamPolicy"]["Condition"]
            .as_str()
            .unwrap()
    ));
}

// One deployment of the template on paper: the parameters (defaults, then the given values) and
// pseudo parameters, with which conditions, intrinsic functions and rules are evaluated.

const SOURCE_STREAM: &str =
    "arn:aws:dynamodb:us-east-1:111111111111:table/Orders/stream/2026-01-20T10:00:00.000";
const SOURCE_TABLE: &str = "arn:aws:dynamodb:us-east-1:111111111111:table/Orders";
const SOURCE_ROLE: &str = "arn:aws:iam::111111111111:role/verifier-source-read";
/// The account the stack is deployed in.
const THIS_ACCOUNT: &str = "222222222222";
const OTHER_TABLE: &str = "arn:aws:dynamodb:us-east-1:333333333333:table/Orders";
const VERIFY_ROLE: &str = "arn:aws:iam::333333333333:role/verifier-read";

fn source_account(more: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = vec![
        ("SourceStreamArn", SOURCE_STREAM),
        ("VerifyTableName", "Orders"),
        ("VerifyRoleArn", VERIFY_ROLE),
        ("VerifyRoleExternalId", "x1"),
    ];
    p.extend_from_slice(more);
    p.into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn target_account(more: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = vec![
        ("DeployIn", "TargetAccount"),
        ("SourceStreamArn", SOURCE_STREAM),
        ("VerifyTableName", "Orders"),
        ("SourceRoleArn", SOURCE_ROLE),
        ("SourceRoleExternalId", "x2"),
    ];
    p.extend_from_slice(more);
    p.into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A policy statement's actions and resources, each sorted.
type Grant = (Vec<String>, Vec<String>);

struct Deployment<'t> {
    t: &'t Value,
    values: BTreeMap<String, String>,
    /// The template with its `Fn::ForEach` loops made for these values (as the transform
    /// `AWS::LanguageExtensions` makes them): the resources and outputs the stack may have.
    expanded: Value,
}

fn tag_args(tagged: &serde_yaml::value::TaggedValue) -> Vec<Value> {
    match &tagged.value {
        Value::Sequence(items) => items.clone(),
        other => vec![other.clone()],
    }
}

impl<'t> Deployment<'t> {
    fn new(t: &'t Value, given: &[(String, String)]) -> Deployment<'t> {
        let mut values = BTreeMap::new();
        for (name, parameter) in t["Parameters"].as_mapping().unwrap() {
            let default = match &parameter["Default"] {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            if let Some(default) = default {
                values.insert(name.as_str().unwrap().to_string(), default);
            }
        }
        for (name, value) in given {
            assert!(
                !t["Parameters"][name.as_str()].is_null(),
                "no parameter {name}"
            );
            values.insert(name.clone(), value.clone());
        }
        for (name, value) in [
            ("AWS::Partition", "aws"),
            ("AWS::Region", "us-east-1"),
            ("AWS::AccountId", THIS_ACCOUNT),
            ("AWS::StackName", "verifier"),
        ] {
            values.insert(name.to_string(), value.to_string());
        }
        let mut expanded = t.clone();
        for section in ["Conditions", "Resources", "Outputs"] {
            if let Some(entries) = t[section].as_mapping() {
                expanded[section] = Value::Mapping(expand_loops(entries, t, &values));
            }
        }
        Deployment {
            t,
            values,
            expanded,
        }
    }

    /// A parameter's value as a `Ref` gives it: a CommaDelimitedList's is a list (an empty value is
    /// a list of one empty entry).
    fn parameter(&self, name: &str) -> Option<Value> {
        let value = self.values.get(name)?;
        Some(
            if self.t["Parameters"][name]["Type"] == "CommaDelimitedList" {
                Value::Sequence(value.split(',').map(Value::from).collect())
            } else {
                Value::from(value.as_str())
            },
        )
    }

    /// A reference: a parameter's value, or a placeholder naming the resource (one the template
    /// declares, one a loop makes, or a function's role, which SAM makes as `<function>Role`).
    fn reference(&self, name: &str) -> String {
        match self.values.get(name) {
            Some(value) => value.clone(),
            None if name.contains('.') => format!("GetAtt:{name}"),
            None => {
                let sam_role = name.strip_suffix("Role").is_some_and(|function| {
                    self.t["Resources"][function]["Type"] == "AWS::Serverless::Function"
                });
                assert!(
                    !self.expanded["Resources"][name].is_null() || sam_role,
                    "reference to {name}, neither a parameter nor a resource"
                );
                format!("Ref:{name}")
            }
        }
    }

    fn condition(&self, name: &str) -> bool {
        let c = &self.t["Conditions"][name];
        assert!(!c.is_null(), "no condition {name}");
        self.truth(c)
    }

    fn truth(&self, v: &Value) -> bool {
        let Value::Tagged(tagged) = v else {
            panic!("not a condition: {v:?}")
        };
        let args = tag_args(tagged);
        if tagged.tag == "Equals" {
            self.resolve(&args[0]) == self.resolve(&args[1])
        } else if tagged.tag == "Not" {
            !self.truth(&args[0])
        } else if tagged.tag == "Or" {
            args.iter().any(|a| self.truth(a))
        } else if tagged.tag == "And" {
            args.iter().all(|a| self.truth(a))
        } else if tagged.tag == "Condition" {
            self.condition(args[0].as_str().unwrap())
        } else {
            panic!("condition function {:?}", tagged.tag)
        }
    }

    /// A value with every intrinsic function evaluated; None for `AWS::NoValue`.
    fn resolve(&self, v: &Value) -> Option<Value> {
        match v {
            Value::Tagged(tagged) => {
                let args = tag_args(tagged);
                let text = |v: &Value| -> String {
                    match self.resolve(v) {
                        Some(Value::String(s)) => s,
                        other => panic!("not a string: {other:?}"),
                    }
                };
                if tagged.tag == "Ref" {
                    let name = args[0].as_str().unwrap();
                    (name != "AWS::NoValue").then(|| {
                        self.parameter(name)
                            .unwrap_or_else(|| Value::from(self.reference(name)))
                    })
                } else if tagged.tag == "GetAtt" {
                    Some(Value::from(format!(
                        "GetAtt:{}",
                        strings(&tagged.value).join(".")
                    )))
                } else if tagged.tag == "If" {
                    let branch = if self.condition(args[0].as_str().unwrap()) {
                        1
                    } else {
                        2
                    };
                    self.resolve(&args[branch])
                } else if tagged.tag == "Select" {
                    let index = args[0].as_u64().unwrap() as usize;
                    let list = self.resolve(&args[1]).unwrap();
                    Some(list.as_sequence().unwrap()[index].clone())
                } else if tagged.tag == "Split" {
                    let delimiter = text(&args[0]);
                    let whole = text(&args[1]);
                    Some(Value::Sequence(
                        whole.split(delimiter.as_str()).map(Value::from).collect(),
                    ))
                } else if tagged.tag == "Join" {
                    let delimiter = text(&args[0]);
                    let parts = self.resolve(&args[1]).expect("a list to join");
                    let parts: Vec<String> = parts
                        .as_sequence()
                        .unwrap_or_else(|| panic!("Join of {parts:?}"))
                        .iter()
                        .map(|p| match p {
                            Value::String(s) => s.clone(),
                            other => panic!("Join of {other:?}"),
                        })
                        .collect();
                    Some(Value::from(parts.join(&delimiter)))
                } else if tagged.tag == "FindInMap" {
                    let keys: Vec<String> = args.iter().map(text).collect();
                    self.resolve(
                        &self.t["Mappings"][keys[0].as_str()][keys[1].as_str()][keys[2].as_str()],
                    )
                } else if tagged.tag == "Sub" {
                    let mut out = text(&args[0]);
                    let mut locals = BTreeMap::new();
                    if let Some(vars) = args.get(1).and_then(|v| v.as_mapping()) {
                        for (name, value) in vars {
                            locals.insert(name.as_str().unwrap().to_string(), text(value));
                        }
                    }
                    while let Some(start) = out.find("${") {
                        let end = start + out[start..].find('}').expect("unclosed ${");
                        let name = &out[start + 2..end];
                        let value = locals
                            .get(name)
                            .cloned()
                            .unwrap_or_else(|| self.reference(name));
                        out.replace_range(start..=end, &value);
                    }
                    Some(Value::from(out))
                } else {
                    panic!("intrinsic function {:?} not evaluated here", tagged.tag)
                }
            }
            Value::Mapping(m) => {
                let mut out = serde_yaml::Mapping::new();
                for (k, v) in m {
                    if let Some(v) = self.resolve(v) {
                        out.insert(k.clone(), v);
                    }
                }
                Some(Value::Mapping(out))
            }
            Value::Sequence(items) => Some(Value::Sequence(
                items.iter().filter_map(|v| self.resolve(v)).collect(),
            )),
            other => Some(other.clone()),
        }
    }

    /// Whether the stack would have this resource.
    /// `DeployIn=TargetAccount`.
    fn is_target_account(&self) -> bool {
        self.values.get("DeployIn").map(String::as_str) == Some("TargetAccount")
    }

    fn has(&self, resource: &str) -> bool {
        let r = &self.expanded["Resources"][resource];
        assert!(!r.is_null(), "no resource {resource}");
        r["Condition"].as_str().is_none_or(|c| self.condition(c))
    }

    /// The resources of a type the stack has (loops' included), by logical id.
    fn resources_of(&self, kind: &str) -> BTreeMap<String, Value> {
        self.expanded["Resources"]
            .as_mapping()
            .unwrap()
            .iter()
            .map(|(name, resource)| (name.as_str().unwrap().to_string(), resource))
            .filter(|(name, resource)| resource["Type"] == kind && self.has(name))
            .map(|(name, resource)| (name, resource.clone()))
            .collect()
    }

    /// The grants of the policies (`AWS::IAM::Policy`) the stack attaches to a role it makes (a
    /// function's role: `<function>Role`), as (actions, resources) with both sorted.
    fn attached_grants(&self, role: &str) -> BTreeSet<Grant> {
        let mut grants = BTreeSet::new();
        for (name, policy) in self.resources_of("AWS::IAM::Policy") {
            let p = self.resolve(&policy["Properties"]).unwrap();
            let roles = strings(&p["Roles"]);
            assert_eq!(roles.len(), 1, "{name}: one role a policy");
            if roles[0] != format!("Ref:{role}") {
                continue;
            }
            for statement in p["PolicyDocument"]["Statement"].as_sequence().unwrap() {
                assert_eq!(statement["Effect"], Value::from("Allow"), "{name}");
                let mut actions = strings(&statement["Action"]);
                let mut resources = strings(&statement["Resource"]);
                actions.sort();
                resources.sort();
                grants.insert((actions, resources));
            }
        }
        grants
    }

    /// A function's grants, as (actions, resources) with both sorted, and its managed policies.
    fn grants(&self, function: &str) -> (BTreeSet<Grant>, Vec<String>) {
        let policies = self
            .resolve(&self.t["Resources"][function]["Properties"]["Policies"])
            .unwrap();
        let mut grants = BTreeSet::new();
        let mut managed = Vec::new();
        for policy in policies.as_sequence().unwrap() {
            if let Some(arn) = policy.as_str() {
                managed.push(arn.to_string());
                continue;
            }
            for statement in policy["Statement"].as_sequence().unwrap() {
                assert_eq!(statement["Effect"], Value::from("Allow"));
                let mut actions = strings(&statement["Action"]);
                let mut resources = strings(&statement["Resource"]);
                actions.sort();
                resources.sort();
                grants.insert((actions, resources));
            }
        }
        (grants, managed)
    }

    fn variable(&self, function: &str, name: &str) -> Option<String> {
        let own = &self.t["Resources"][function]["Properties"]["Environment"]["Variables"][name];
        let global = &self.t["Globals"]["Function"]["Environment"]["Variables"][name];
        let v = if own.is_null() { global } else { own };
        self.resolve(v).and_then(|v| v.as_str().map(str::to_string))
    }

    /// The descriptions of the rules whose assertions fail (CloudFormation refuses the stack).
    fn rule_failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for (name, rule) in self.t["Rules"].as_mapping().unwrap() {
            let applies = rule.get("RuleCondition").is_none_or(|c| self.truth(c));
            if !applies {
                continue;
            }
            for assertion in rule["Assertions"].as_sequence().unwrap() {
                if !self.truth(&assertion["Assert"]) {
                    failures.push(format!(
                        "{}: {}",
                        name.as_str().unwrap(),
                        assertion["AssertDescription"].as_str().unwrap_or("")
                    ));
                }
            }
        }
        failures
    }
}

/// A mapping (a template's section, or a loop's body) with each `Fn::ForEach::Name: [Identifier,
/// Collection, {OutputKey: OutputValue}]` replaced by what it makes for each item of the
/// collection: `${Identifier}` and `&{Identifier}` (the item's alphanumerics) replaced in the
/// keys, `${Identifier}` in `Fn::Sub` strings, and `!Ref Identifier` by the item. Nowhere else,
/// as CloudFormation does (`&{}` in a value is left as it is, so it cannot name a resource a
/// loop made).
fn expand_loops(
    entries: &serde_yaml::Mapping,
    t: &Value,
    values: &BTreeMap<String, String>,
) -> serde_yaml::Mapping {
    fn substitute(v: &Value, id: &str, item: &str) -> Value {
        let in_sub = |s: &str| s.replace(&format!("${{{id}}}"), item);
        match v {
            Value::Mapping(m) => Value::Mapping(
                m.iter()
                    .map(|(k, v)| {
                        let alphanumerics: String =
                            item.chars().filter(char::is_ascii_alphanumeric).collect();
                        let key = match k.as_str() {
                            Some(k) => Value::from(
                                in_sub(k).replace(&format!("&{{{id}}}"), &alphanumerics),
                            ),
                            None => k.clone(),
                        };
                        (key, substitute(v, id, item))
                    })
                    .collect(),
            ),
            Value::Sequence(items) => {
                Value::Sequence(items.iter().map(|v| substitute(v, id, item)).collect())
            }
            Value::Tagged(tagged) if tagged.tag == "Ref" && tagged.value.as_str() == Some(id) => {
                Value::from(item)
            }
            Value::Tagged(tagged) => {
                let value = match (&tagged.value, tagged.tag == "Sub") {
                    (Value::String(s), true) => Value::from(in_sub(s)),
                    (Value::Sequence(args), true) => {
                        let mut args: Vec<Value> =
                            args.iter().map(|v| substitute(v, id, item)).collect();
                        if let Some(s) = args[0].as_str() {
                            args[0] = Value::from(in_sub(s));
                        }
                        Value::Sequence(args)
                    }
                    (value, _) => substitute(value, id, item),
                };
                Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
                    tag: tagged.tag.clone(),
                    value,
                }))
            }
            other => other.clone(),
        }
    }
    let mut out = serde_yaml::Mapping::new();
    for (key, value) in entries {
        if !key.as_str().is_some_and(|k| k.starts_with("Fn::ForEach::")) {
            assert!(
                out.insert(key.clone(), value.clone()).is_none(),
                "{key:?} twice"
            );
            continue;
        }
        let parts = value.as_sequence().expect("[Identifier, Collection, body]");
        let id = parts[0].as_str().expect("the loop's identifier");
        let items: Vec<String> = match &parts[1] {
            Value::Sequence(items) => items.iter().map(|i| i.as_str().unwrap().into()).collect(),
            Value::Tagged(reference) if reference.tag == "Ref" => {
                let name = reference.value.as_str().unwrap();
                assert_eq!(
                    t["Parameters"][name]["Type"], "CommaDelimitedList",
                    "{name}"
                );
                values[name].split(',').map(str::to_string).collect()
            }
            other => panic!("{key:?}: a collection this evaluator does not take: {other:?}"),
        };
        for item in items {
            let made = substitute(&parts[2], id, &item);
            let made = made.as_mapping().expect("a loop's body is a mapping");
            for (made_key, made_value) in expand_loops(made, t, values) {
                assert!(
                    out.insert(made_key.clone(), made_value).is_none(),
                    "{key:?} makes {made_key:?} twice"
                );
            }
        }
    }
    out
}

fn grant(actions: &[&str], resources: &[&str]) -> Grant {
    let mut a: Vec<String> = actions.iter().map(|s| s.to_string()).collect();
    let mut r: Vec<String> = resources.iter().map(|s| s.to_string()).collect();
    a.sort();
    r.sort();
    (a, r)
}

/// The findings table's status index, as a grant names it.
const FINDINGS_INDEX: &str = "GetAtt:FindingsTable.Arn/index/byStatus";

/// What every function may do with the findings table (EnableFindings=true): record and resolve
/// (UpdateItem), read back by key (GetItem, BatchGetItem) and by the status index (Query); on the
/// table and that index only.
fn findings_grant() -> Grant {
    grant(
        &[
            "dynamodb:UpdateItem",
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
        ],
        &["GetAtt:FindingsTable.Arn", FINDINGS_INDEX],
    )
}

const STREAM_READS: &[&str] = &[
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
];

#[test]
fn in_the_source_account_the_verifier_is_deployed_as_before() {
    let t = template();
    for enable in ["true", "false"] {
        let d = Deployment::new(&t, &source_account(&[("EnableStream", enable)]));
        assert!(d.rule_failures().is_empty(), "{:?}", d.rule_failures());
        let (grants, managed) = d.grants("StreamVerifierFunction");
        let expected: BTreeSet<_> = [
            grant(STREAM_READS, &[SOURCE_STREAM]),
            grant(
                &["dynamodb:ListStreams"],
                &[format!("{SOURCE_TABLE}/stream/*").as_str()],
            ),
            grant(&["dynamodb:BatchGetItem"], &[SOURCE_TABLE]),
            grant(&["sqs:SendMessage"], &["GetAtt:FailureQueue.Arn"]),
            grant(&["sts:AssumeRole"], &[VERIFY_ROLE]),
            findings_grant(),
        ]
        .into();
        assert_eq!(grants, expected);
        // What SAM's DynamoDB event attached before the mapping became a resource of its own.
        assert_eq!(
            managed,
            ["arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole"]
        );
        // The mapping exists either way (disabled until EnableStream=true), on this account's
        // stream.
        assert!(d.has("StreamVerifierFunctionSourceStream"));
        let mapping = d
            .resolve(&t["Resources"]["StreamVerifierFunctionSourceStream"]["Properties"])
            .unwrap();
        assert_eq!(mapping["EventSourceArn"], Value::from(SOURCE_STREAM));
        assert_eq!(mapping["Enabled"], Value::from(enable));
        assert_eq!(
            d.variable("StreamVerifierFunction", "SOURCE_ROLE_ARN")
                .as_deref(),
            Some("")
        );
        assert_eq!(
            d.variable("StreamVerifierFunction", "VERIFY_ROLE_ARN")
                .as_deref(),
            Some(VERIFY_ROLE)
        );
    }
    // Without a role: the other table read directly (its ARN, shared by a resource-based policy).
    let d = Deployment::new(
        &t,
        &source_account(&[("VerifyRoleArn", ""), ("VerifyTableName", OTHER_TABLE)]),
    );
    let (grants, _) = d.grants("StreamVerifierFunction");
    assert!(grants.contains(&grant(&["dynamodb:BatchGetItem"], &[OTHER_TABLE])));
    assert!(!grants.iter().any(|(a, _)| a == &["sts:AssumeRole"]));
}

#[test]
fn in_the_target_account_the_verifier_reads_the_source_stream_across_accounts() {
    let t = template();
    let own_table = format!("arn:aws:dynamodb:us-east-1:{THIS_ACCOUNT}:table/Orders");
    for enable in ["true", "false"] {
        let d = Deployment::new(&t, &target_account(&[("EnableStream", enable)]));
        assert!(d.rule_failures().is_empty(), "{:?}", d.rule_failures());
        let (grants, managed) = d.grants("StreamVerifierFunction");
        // The stream actions on exactly the source stream (its policy names this role), items of
        // exactly this account's table, the source table only through the source account's role; no
        // ListStreams (it has no resource-level form, so the stream's policy cannot grant it; the
        // mapping does not need it) and no managed policy.
        let expected: BTreeSet<_> = [
            grant(STREAM_READS, &[SOURCE_STREAM]),
            grant(&["dynamodb:BatchGetItem"], &[own_table.as_str()]),
            grant(&["sts:AssumeRole"], &[SOURCE_ROLE]),
            grant(&["sqs:SendMessage"], &["GetAtt:FailureQueue.Arn"]),
            findings_grant(),
        ]
        .into();
        assert_eq!(grants, expected);
        assert!(managed.is_empty(), "managed policies {managed:?}");
        // The mapping is created only when it can read the stream: once the stream's policy names
        // the role.
        assert_eq!(
            d.has("StreamVerifierFunctionSourceStream"),
            enable == "true"
        );
        if enable == "true" {
            let mapping = d
                .resolve(&t["Resources"]["StreamVerifierFunctionSourceStream"]["Properties"])
                .unwrap();
            assert_eq!(mapping["EventSourceArn"], Value::from(SOURCE_STREAM));
            assert_eq!(mapping["Enabled"], Value::from("true"));
        }
        for (variable, value) in [
            ("SOURCE_ROLE_ARN", SOURCE_ROLE),
            ("SOURCE_ROLE_EXTERNAL_ID", "x2"),
            ("VERIFY_TABLE_NAME", "Orders"),
            ("VERIFY_ROLE_ARN", ""),
            ("VERIFY_REGION", "us-east-1"),
            ("RECHECK_SOURCE", "true"),
        ] {
            assert_eq!(
                d.variable("StreamVerifierFunction", variable).as_deref(),
                Some(value),
                "{variable}"
            );
        }
    }
    // Without the source re-check no role is needed, and of the source account only its stream is
    // granted.
    let d = Deployment::new(
        &t,
        &target_account(&[
            ("RecheckSource", "false"),
            ("SourceRoleArn", ""),
            ("SourceRoleExternalId", ""),
        ]),
    );
    assert!(d.rule_failures().is_empty(), "{:?}", d.rule_failures());
    let (grants, _) = d.grants("StreamVerifierFunction");
    let expected: BTreeSet<_> = [
        grant(STREAM_READS, &[SOURCE_STREAM]),
        grant(&["dynamodb:BatchGetItem"], &[own_table.as_str()]),
        grant(&["sqs:SendMessage"], &["GetAtt:FailureQueue.Arn"]),
        findings_grant(),
    ]
    .into();
    assert_eq!(grants, expected);
}

#[test]
fn the_rules_refuse_deployments_that_would_read_the_wrong_table() {
    let t = template();
    let fails = |given: Vec<(String, String)>, rule: &str| {
        let failures = Deployment::new(&t, &given).rule_failures();
        assert!(
            failures.iter().any(|f| f.starts_with(rule)),
            "{given:?}: expected {rule}, got {failures:?}"
        );
    };
    // In the target account a re-check by table name would read that account's table: it needs the
    // role.
    fails(
        target_account(&[("SourceRoleArn", ""), ("SourceRoleExternalId", "")]),
        "TargetAccountRecheckNeedsSourceRole",
    );
    fails(
        target_account(&[("SourceRoleExternalId", "")]),
        "TargetAccountRecheckNeedsSourceRole",
    );
    // Before the mapping exists (the first deployment, step 1 in docs/deploy.md) the role may not
    // exist yet.
    first_deployment(&t);
    fails(
        source_account(&[("SourceRoleArn", SOURCE_ROLE)]),
        "SourceRoleOnlyInTargetAccount",
    );
    assert!(Deployment::new(&t, &source_account(&[]))
        .rule_failures()
        .is_empty());
}

#[test]
fn in_the_target_account_the_poller_reads_the_source_account_only_through_its_role() {
    let t = template();
    let stream_role = "arn:aws:iam::111111111111:role/verifier-stream-read";
    let own_table = format!("arn:aws:dynamodb:us-east-1:{THIS_ACCOUNT}:table/Orders");
    let checkpoints = grant(
        &["dynamodb:Query", "dynamodb:UpdateItem"],
        &["GetAtt:CheckpointTable.Arn"],
    );
    let verified = grant(&["dynamodb:BatchGetItem"], &[own_table.as_str()]);
    // Until the stream's account has its role (which trusts the poller's role), the poller reads
    // nothing of that account: its own credentials would re-read source items from this account.
    let first = Deployment::new(
        &t,
        &target_account(&[("EnableStream", "false"), ("DeployPoller", "true")]),
    );
    assert!(first.has("ShardPollerFunction"));
    assert!(!first.has("StreamVerifierFunctionSourceStream"));
    let (grants, managed) = first.grants("ShardPollerFunction");
    assert_eq!(
        grants,
        [checkpoints.clone(), verified.clone(), findings_grant()].into()
    );
    assert!(managed.is_empty());
    let with_role = Deployment::new(
        &t,
        &target_account(&[
            ("EnableStream", "false"),
            ("DeployPoller", "true"),
            ("PollerStreamRoleArn", stream_role),
            ("PollerStreamRoleExternalId", "x3"),
        ]),
    );
    assert!(
        with_role.rule_failures().is_empty(),
        "{:?}",
        with_role.rule_failures()
    );
    let (grants, _) = with_role.grants("ShardPollerFunction");
    assert_eq!(
        grants,
        [
            checkpoints,
            verified,
            grant(&["sts:AssumeRole"], &[stream_role]),
            findings_grant(),
        ]
        .into()
    );
    assert_eq!(
        with_role
            .variable("ShardPollerFunction", "STREAM_ARN")
            .as_deref(),
        Some(SOURCE_STREAM)
    );
    // In the source account the poller reads its own account's stream and table with its own role.
    let source = Deployment::new(&t, &source_account(&[("DeployPoller", "true")]));
    let (grants, _) = source.grants("ShardPollerFunction");
    assert!(grants.contains(&grant(
        &[
            "dynamodb:BatchGetItem",
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator"
        ],
        &[SOURCE_STREAM, SOURCE_TABLE]
    )));
}

// The baseline compare (DeployBaseline=true): the baseline-segment function, its state machine
// (statemachine/baseline.asl.json) and their grants.

const BASELINE_RESOURCES: &[&str] = &[
    "BaselineSegmentFunction",
    "BaselineSegmentLogGroup",
    "BaselineStateMachine",
    "BaselineFailedAlarm",
];

fn definition() -> (String, serde_json::Value) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/statemachine/baseline.asl.json"
    );
    let text = std::fs::read_to_string(path).expect("statemachine/baseline.asl.json");
    let json = serde_json::from_str(&text).expect("the state machine definition is JSON");
    (text, json)
}

#[test]
fn the_baseline_definition_hands_the_input_table_to_every_invocation_empty_when_not_given() {
    let (_, definition) = definition();
    let all = states(&definition);
    // Every invocation of the function names the pair, as the input gave it.
    let invokes: Vec<(&String, &serde_json::Value)> = all
        .iter()
        .filter(|(_, s)| s["Resource"] == "arn:aws:states:::lambda:invoke")
        .collect();
    assert_eq!(invokes.len(), 3, "segment, finish, finish after failures");
    for (name, state) in invokes {
        assert_eq!(
            state["Parameters"]["Payload"]["table.$"], "$.table",
            "{name}"
        );
    }
    // Through the states between: the chunks' parameters and the Map's items.
    assert_eq!(all["Chunk starts"]["Parameters"]["table.$"], "$.table");
    assert_eq!(all["Segments"]["ItemSelector"]["table.$"], "$.table");
    // Not given: an empty table (the function's first pair); given, a string.
    let choices = all["Check values"]["Choices"].as_array().unwrap();
    let absent = choices
        .iter()
        .find(|c| {
            c["And"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["Variable"] == "$.table" && t["IsPresent"] == false)
        })
        .expect("a branch for no table");
    let first = &all[absent["Next"].as_str().unwrap()];
    assert_eq!(
        (&first["Result"], &first["ResultPath"]),
        (&serde_json::json!(""), &serde_json::json!("$.table"))
    );
    assert!(choices.iter().any(|c| c["And"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["Variable"] == "$.table" && t["IsString"] == true)));
}

/// Every state of a definition, nested ones (Map item processors) included, by name.
fn states(definition: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    let mut all = BTreeMap::new();
    let mut graphs = vec![definition.clone()];
    while let Some(graph) = graphs.pop() {
        for (name, state) in graph["States"].as_object().expect("States") {
            assert!(
                all.insert(name.clone(), state.clone()).is_none(),
                "state name {name} used twice"
            );
            for processor in ["ItemProcessor", "Iterator"] {
                if state.get(processor).is_some() {
                    graphs.push(state[processor].clone());
                }
            }
        }
    }
    all
}

#[test]
fn the_baseline_compare_is_deployed_only_with_deploy_baseline() {
    let t = template();
    for name in BASELINE_RESOURCES {
        assert_eq!(
            t["Resources"][*name]["Condition"],
            Value::from("DeployBaselineCondition"),
            "{name}"
        );
    }
    for output in [
        "BaselineStateMachineArn",
        "BaselineSegmentFunctionName",
        "BaselineSegmentRoleArn",
    ] {
        assert_eq!(
            t["Outputs"][output]["Condition"],
            Value::from("DeployBaselineCondition"),
            "{output}"
        );
    }
    // The checkpoint table comes with the poller, the baseline compare, or both.
    for (poller, baseline) in [
        ("false", "false"),
        ("true", "false"),
        ("false", "true"),
        ("true", "true"),
    ] {
        let d = Deployment::new(
            &t,
            &source_account(&[
                ("EnableStream", "false"),
                ("DeployPoller", poller),
                ("DeployBaseline", baseline),
            ]),
        );
        assert!(d.rule_failures().is_empty(), "{:?}", d.rule_failures());
        for name in BASELINE_RESOURCES {
            assert_eq!(d.has(name), baseline == "true", "{name}");
        }
        assert_eq!(
            d.has("CheckpointTable"),
            poller == "true" || baseline == "true"
        );
        assert_eq!(d.has("ShardPollerFunction"), poller == "true");
        assert_eq!(
            d.condition(
                t["Outputs"]["CheckpointTableName"]["Condition"]
                    .as_str()
                    .unwrap()
            ),
            d.has("CheckpointTable")
        );
    }

    // Built like the other functions; 15 minutes per invocation, its own log group.
    let resource = &t["Resources"]["BaselineSegmentFunction"];
    assert_eq!(resource["Type"], Value::from("AWS::Serverless::Function"));
    assert_eq!(
        resource["Metadata"]["BuildMethod"],
        Value::from("rust-cargolambda")
    );
    assert_eq!(
        resource["Metadata"]["BuildProperties"]["Binary"],
        Value::from("baseline-segment")
    );
    let f = function(&t, "BaselineSegmentFunction");
    assert_eq!(f["Timeout"], Value::from(900));
    assert_eq!(
        strings(&f["LoggingConfig"]["LogGroup"]),
        ["BaselineSegmentLogGroup"]
    );
    assert_eq!(f["LoggingConfig"]["LogFormat"], Value::from("JSON"));

    // The state machine: a STANDARD one, its definition in its own file, every ${...} of which is a
    // substitution the template fills in.
    let machine = &t["Resources"]["BaselineStateMachine"];
    assert_eq!(
        machine["Type"],
        Value::from("AWS::Serverless::StateMachine")
    );
    let p = &machine["Properties"];
    assert_eq!(p["Type"], Value::from("STANDARD"));
    assert_eq!(
        p["DefinitionUri"],
        Value::from("statemachine/baseline.asl.json")
    );
    let substitutions: BTreeSet<String> = p["DefinitionSubstitutions"]
        .as_mapping()
        .expect("DefinitionSubstitutions")
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let (text, _) = definition();
    let mut placeholders = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("${") {
        let end = start + rest[start..].find('}').expect("unclosed ${");
        placeholders.insert(rest[start + 2..end].to_string());
        rest = &rest[end..];
    }
    assert_eq!(placeholders, substitutions);
    assert_eq!(
        strings(&p["DefinitionSubstitutions"]["BaselineSegmentFunctionArn"]),
        ["BaselineSegmentFunction.Arn"]
    );
    assert_eq!(
        strings(&p["DefinitionSubstitutions"]["BaselineMaxConcurrency"]),
        ["BaselineMaxConcurrency"]
    );
}

#[test]
fn the_baseline_function_gets_the_verifier_settings_and_its_own() {
    let t = template();
    let set = variables(&t, "BaselineSegmentFunction");
    for name in [
        "VERIFY_TABLE_NAME",
        "VERIFY_ROLE_ARN",
        "VERIFY_ROLE_EXTERNAL_ID",
        "IGNORE_ATTRIBUTES",
        "MAX_REPLICATION_LAG",
        "MAX_CONCURRENCY",
        "METRICS_NAMESPACE",
        "LOG_ITEM_VALUES",
        "SOURCE_ROLE_ARN",
        "SOURCE_ROLE_EXTERNAL_ID",
        "SOURCE_TABLE_NAME",
        "CHECKPOINT_TABLE",
        "MAX_READ_UNITS",
    ] {
        assert!(set.contains(name), "BaselineSegmentFunction lacks {name}");
    }
    let d = Deployment::new(&t, &source_account(&[("DeployBaseline", "true")]));
    for (variable, value) in [
        ("SOURCE_TABLE_NAME", "Orders"),
        ("SOURCE_ROLE_ARN", ""),
        ("CHECKPOINT_TABLE", "Ref:CheckpointTable"),
        ("MAX_READ_UNITS", "100"),
        ("VERIFY_TABLE_NAME", "Orders"),
        ("VERIFY_ROLE_ARN", VERIFY_ROLE),
    ] {
        assert_eq!(
            d.variable("BaselineSegmentFunction", variable).as_deref(),
            Some(value),
            "{variable}"
        );
    }
    let d = Deployment::new(
        &t,
        &target_account(&[("DeployBaseline", "true"), ("MaxReadUnits", "250")]),
    );
    for (variable, value) in [
        ("SOURCE_TABLE_NAME", "Orders"),
        ("SOURCE_ROLE_ARN", SOURCE_ROLE),
        ("SOURCE_ROLE_EXTERNAL_ID", "x2"),
        ("MAX_READ_UNITS", "250"),
    ] {
        assert_eq!(
            d.variable("BaselineSegmentFunction", variable).as_deref(),
            Some(value),
            "{variable}"
        );
    }
}

/// A DynamoDB grant's resources are exact table ARNs (or the checkpoint table, or the findings table
/// and its one index), never a pattern.
fn assert_exact_tables(grants: &BTreeSet<Grant>) {
    for (actions, resources) in grants {
        if !actions.iter().any(|a| a.starts_with("dynamodb:")) {
            continue;
        }
        for resource in resources {
            if [
                "GetAtt:CheckpointTable.Arn",
                "GetAtt:FindingsTable.Arn",
                FINDINGS_INDEX,
            ]
            .contains(&resource.as_str())
            {
                continue;
            }
            let parts: Vec<&str> = resource.splitn(6, ':').collect();
            assert_eq!(parts.len(), 6, "{resource}");
            assert_eq!(&parts[..3], ["arn", "aws", "dynamodb"], "{resource}");
            assert!(
                parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit()),
                "{resource}"
            );
            let name = parts[5]
                .strip_prefix("table/")
                .unwrap_or_else(|| panic!("{resource}"));
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
                "not one table: {resource}"
            );
        }
    }
}

#[test]
fn the_baseline_function_scans_exactly_the_two_tables() {
    let t = template();
    let checkpoints = grant(
        &[
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
        ],
        &["GetAtt:CheckpointTable.Arn"],
    );
    const SCAN: &[&str] = &[
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeTable",
        "dynamodb:Scan",
    ];
    // In the source account: the source table itself, the other side through its role.
    let d = Deployment::new(&t, &source_account(&[("DeployBaseline", "true")]));
    let (grants, managed) = d.grants("BaselineSegmentFunction");
    assert_eq!(
        grants,
        [
            checkpoints.clone(),
            grant(SCAN, &[SOURCE_TABLE]),
            grant(&["sts:AssumeRole"], &[VERIFY_ROLE]),
            findings_grant(),
        ]
        .into()
    );
    assert!(managed.is_empty(), "managed policies {managed:?}");
    assert_exact_tables(&grants);
    // Without a role: the other side's table by its ARN.
    let d = Deployment::new(
        &t,
        &source_account(&[
            ("DeployBaseline", "true"),
            ("VerifyRoleArn", ""),
            ("VerifyTableName", OTHER_TABLE),
        ]),
    );
    let (grants, _) = d.grants("BaselineSegmentFunction");
    assert_eq!(
        grants,
        [
            checkpoints.clone(),
            grant(SCAN, &[SOURCE_TABLE]),
            grant(SCAN, &[OTHER_TABLE]),
            findings_grant(),
        ]
        .into()
    );
    assert_exact_tables(&grants);
    // In the target account: this account's table, the source table only through the source
    // account's role.
    let own_table = format!("arn:aws:dynamodb:us-east-1:{THIS_ACCOUNT}:table/Orders");
    let d = Deployment::new(&t, &target_account(&[("DeployBaseline", "true")]));
    assert!(d.rule_failures().is_empty(), "{:?}", d.rule_failures());
    let (grants, managed) = d.grants("BaselineSegmentFunction");
    assert_eq!(
        grants,
        [
            checkpoints,
            grant(SCAN, &[own_table.as_str()]),
            grant(&["sts:AssumeRole"], &[SOURCE_ROLE]),
            findings_grant(),
        ]
        .into()
    );
    assert!(managed.is_empty(), "managed policies {managed:?}");
    assert_exact_tables(&grants);
    // ...which the template requires there (its own credentials would scan this account's table).
    let failures = Deployment::new(
        &t,
        &target_account(&[
            ("DeployBaseline", "true"),
            ("EnableStream", "false"),
            ("SourceRoleArn", ""),
            ("SourceRoleExternalId", ""),
        ]),
    )
    .rule_failures();
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with("TargetAccountBaselineNeedsSourceRole")),
        "{failures:?}"
    );
}

#[test]
fn the_baseline_state_machine_invokes_its_function_and_starts_only_its_own_executions() {
    let t = template();
    let d = Deployment::new(&t, &source_account(&[("DeployBaseline", "true")]));
    let name = d
        .resolve(&t["Resources"]["BaselineStateMachine"]["Properties"]["Name"])
        .unwrap();
    assert_eq!(name, Value::from("verifier-baseline"));
    let (grants, managed) = d.grants("BaselineStateMachine");
    assert!(managed.is_empty(), "managed policies {managed:?}");
    assert_eq!(
        grants,
        [
            grant(
                &["lambda:InvokeFunction"],
                &["GetAtt:BaselineSegmentFunction.Arn"]
            ),
            grant(
                &["states:StartExecution"],
                &["arn:aws:states:us-east-1:222222222222:stateMachine:verifier-baseline"]
            ),
            grant(
                &[
                    "states:DescribeExecution",
                    "states:RedriveExecution",
                    "states:StopExecution"
                ],
                &["arn:aws:states:us-east-1:222222222222:execution:verifier-baseline/*"]
            ),
        ]
        .into()
    );
}

#[test]
fn the_baseline_definition_maps_every_segment_in_distributed_mode_until_done() {
    let (_, definition) = definition();
    let all = states(&definition);
    for (name, state) in &all {
        // Every transition lands on a state.
        let mut targets: Vec<&str> = Vec::new();
        targets.extend(state["Next"].as_str());
        targets.extend(state["Default"].as_str());
        for rule in state["Choices"].as_array().into_iter().flatten() {
            targets.extend(rule["Next"].as_str());
        }
        for catcher in state["Catch"].as_array().into_iter().flatten() {
            targets.extend(catcher["Next"].as_str());
        }
        for target in targets {
            assert!(
                all.contains_key(target),
                "{name} -> {target}: no such state"
            );
        }
    }

    // The segments: at most 10000 (chunks of 1000, the most States.ArrayRange gives).
    let check = &all["Check values"];
    let bounds = check["Choices"][0]["And"].as_array().unwrap();
    let most = bounds
        .iter()
        .find_map(|b| b["NumericLessThanEquals"].as_u64())
        .expect("an upper bound on total_segments");
    assert!(
        most.div_ceil(1000) <= 1000,
        "{most} segments need more than 1000 chunks"
    );
    // The list of segment numbers is in the state data: it must stay below the 256 KiB payload limit.
    let list = serde_json::to_string(&(0..most).collect::<Vec<_>>()).unwrap();
    assert!(list.len() < 128 * 1024, "{} bytes of segments", list.len());
    assert!(all["Chunk starts"]["Parameters"]["chunk_starts.$"]
        .as_str()
        .unwrap()
        .contains(", 1000)"));
    assert!(all["Chunk end"]["Parameters"]["end.$"]
        .as_str()
        .unwrap()
        .contains(", 999)"));

    // The Distributed Map over the segments.
    let maps: Vec<(&String, &serde_json::Value)> = all
        .iter()
        .filter(|(_, s)| s["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED")
        .collect();
    assert_eq!(maps.len(), 1, "one Distributed Map");
    let (map_name, map) = maps[0];
    assert_eq!(map["Type"], "Map");
    assert_eq!(
        map["ItemProcessor"]["ProcessorConfig"]["ExecutionType"], "STANDARD",
        "each child loops over 15-minute invocations: longer than an EXPRESS execution's 5 minutes"
    );
    // MaxConcurrency: the template's BaselineMaxConcurrency, put into the state data as a number.
    let concurrency = map["MaxConcurrency"].as_u64().map(|_| ()).or_else(|| {
        let path = map["MaxConcurrencyPath"].as_str()?;
        let field = path.strip_prefix("$.")?;
        let set = all["Chunk starts"]["Parameters"][format!("{field}.$")].as_str()?;
        (set == "States.StringToJson('${BaselineMaxConcurrency}')").then_some(())
    });
    assert!(
        concurrency.is_some(),
        "{map_name}: no MaxConcurrency from the template"
    );
    let tolerated = map["ToleratedFailurePercentage"]
        .as_f64()
        .expect("ToleratedFailurePercentage");
    assert!(tolerated > 0.0 && tolerated <= 10.0, "{tolerated}");
    assert_eq!(map["ItemSelector"]["action"], "segment");
    assert_eq!(map["ItemSelector"]["segment.$"], "$$.Map.Item.Value");
    assert_eq!(map["ItemSelector"]["run_id.$"], "$.run_id");
    assert_eq!(map["ItemSelector"]["total_segments.$"], "$.total_segments");
    // The children's results are dropped (the finish step sums up from the checkpoints): thousands
    // of answers would not fit in the state data.
    assert!(map["ResultPath"].is_null() && map.get("ResultPath").is_some());

    // The child: invoke, then loop while done is false.
    let child = &map["ItemProcessor"];
    let start = child["StartAt"].as_str().unwrap();
    let invoke = &child["States"][start];
    assert_eq!(invoke["Type"], "Task");
    assert_eq!(invoke["Resource"], "arn:aws:states:::lambda:invoke");
    assert_eq!(
        invoke["Parameters"]["FunctionName"],
        "${BaselineSegmentFunctionArn}"
    );
    assert_eq!(invoke["Parameters"]["Payload"]["action"], "segment");
    for field in ["run_id", "segment", "total_segments"] {
        assert_eq!(
            invoke["Parameters"]["Payload"][format!("{field}.$")],
            format!("$.{field}")
        );
    }
    let choice = &child["States"][invoke["Next"].as_str().unwrap()];
    assert_eq!(choice["Type"], "Choice");
    let done_path = format!(
        "{}.done",
        invoke["ResultPath"]
            .as_str()
            .expect("the answer kept beside the input")
    );
    assert_eq!(invoke["ResultSelector"]["done.$"], "$.Payload.done");
    let rules = choice["Choices"].as_array().unwrap();
    let on = |value: bool| {
        rules
            .iter()
            .find(|r| r["Variable"] == done_path.as_str() && r["BooleanEquals"] == value)
            .and_then(|r| r["Next"].as_str())
            .unwrap_or_else(|| panic!("no rule for done={value}"))
    };
    assert_eq!(on(false), start, "done=false invokes the segment again");
    let finished = &child["States"][on(true)];
    assert_eq!(finished["End"], true, "done=true ends the child");
    assert_eq!(
        child["States"][choice["Default"].as_str().unwrap()]["Type"],
        "Fail"
    );

    // Every Lambda invocation retries throttling and Lambda's service errors, with backoff.
    let invokes: Vec<_> = all
        .iter()
        .filter(|(_, s)| s["Resource"] == "arn:aws:states:::lambda:invoke")
        .collect();
    assert_eq!(invokes.len(), 3);
    for (name, state) in invokes {
        assert_eq!(
            state["Parameters"]["FunctionName"],
            "${BaselineSegmentFunctionArn}"
        );
        assert!(state["TimeoutSeconds"].as_u64().unwrap() > 900, "{name}");
        for error in [
            "Lambda.TooManyRequestsException",
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
        ] {
            let retrier = state["Retry"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| {
                    r["ErrorEquals"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|e| e == error)
                })
                .unwrap_or_else(|| panic!("{name} does not retry {error}"));
            assert!(
                retrier["MaxAttempts"].as_u64().unwrap() >= 3,
                "{name} {error}"
            );
            assert!(
                retrier["BackoffRate"].as_f64().unwrap() > 1.0,
                "{name} {error}"
            );
        }
    }
    let timeouts = &all["Scan segment"]["Retry"];
    assert!(
        timeouts.as_array().unwrap().iter().any(|r| r["ErrorEquals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "States.Timeout")),
        "a cut invocation resumes from its checkpoint"
    );

    // After the map: finish, whose answer is the execution's output.
    let finish = &all[map["Next"].as_str().unwrap()];
    assert_eq!(finish["Parameters"]["Payload"]["action"], "finish");
    assert_eq!(finish["Parameters"]["Payload"]["run_id.$"], "$.run_id");
    assert_eq!(
        finish["Parameters"]["Payload"]["total_segments.$"],
        "$.total_segments"
    );
    assert_eq!(finish["OutputPath"], "$.Payload");
    assert_eq!(finish["End"], true);
    // Too many failed segments: still summed up, then the execution fails.
    let caught = &all[map["Catch"][0]["Next"].as_str().unwrap()];
    assert_eq!(caught["Parameters"]["Payload"]["action"], "finish");
    assert_eq!(all[caught["Next"].as_str().unwrap()]["Type"], "Fail");
}

#[test]
fn the_other_accounts_role_lets_the_baseline_scan_only_when_it_trusts_it() {
    let t = read_yaml("templates/verify-role.yaml");
    let role = &t["Resources"]["VerifyRole"]["Properties"];
    let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap();
    let read = statements.iter().find(|s| s["Sid"] == "ReadItems").unwrap();
    let Value::Tagged(scan) = statements
        .iter()
        .find(|s| matches!(s, Value::Tagged(t) if strings(&t.value).contains(&"ScanTable".to_string())))
        .expect("a ScanTable statement")
    else {
        unreachable!()
    };
    assert_eq!(scan.tag, "If");
    let branches = scan.value.as_sequence().unwrap();
    assert_eq!(branches[0], Value::from("HasBaselineRole"));
    assert_eq!(
        strings(&branches[1]["Action"]),
        ["dynamodb:Scan", "dynamodb:DescribeTable"]
    );
    // The same one table as the item reads.
    assert_eq!(branches[1]["Resource"], read["Resource"]);
    assert_eq!(
        strings(&t["Conditions"]["HasBaselineRole"]),
        strings(
            &serde_yaml::from_str::<Value>("!Not [!Equals [!Ref BaselineRoleArn, \"\"]]").unwrap()
        )
    );
    let trusted = strings(&role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"]);
    assert!(
        trusted.contains(&"BaselineRoleArn".to_string()),
        "{trusted:?}"
    );
    assert!(
        trusted.contains(&"VerifierRoleArn".to_string()),
        "{trusted:?}"
    );
}

// Findings (EnableFindings=true): the findings table, FINDINGS_TABLE for every function, the
// scheduled revalidator, the dashboard and the alarms that point to it.

const FUNCTIONS: &[&str] = &[
    "StreamVerifierFunction",
    "ShardPollerFunction",
    "BaselineSegmentFunction",
    "RevalidatorFunction",
];

/// Parameter values given to a deployment on paper.
type Parameters = Vec<(String, String)>;

/// `source_account` or `target_account`.
type DeployIn = fn(&[(&str, &str)]) -> Parameters;

/// Every optional part deployed, findings on or off; the poller instead of the stream mapping (the
/// template refuses both on one stream).
fn everything(deploy_in: DeployIn, findings: &str) -> Vec<(String, String)> {
    deploy_in(&[
        ("EnableStream", "false"),
        ("DeployPoller", "true"),
        ("DeployBaseline", "true"),
        ("EnableFindings", findings),
    ])
}

#[test]
fn the_template_sets_exactly_the_variables_the_revalidator_reads() {
    use ddb_verify::config::REVALIDATOR_VARIABLES;
    let t = template();
    let set = variables(&t, "RevalidatorFunction");
    let read: BTreeSet<String> = VARIABLES
        .iter()
        .chain(REVALIDATOR_VARIABLES)
        .chain(PAIRS_VARIABLES)
        .filter(|v| !LOCAL_ONLY_VARIABLES.contains(v))
        .map(|v| v.to_string())
        .collect();
    assert_eq!(
        set, read,
        "template.yaml and the revalidator's variables have drifted apart"
    );
    // The source table as the baseline compare names it, and the baseline's read rate.
    let d = Deployment::new(
        &t,
        &source_account(&[("DeployBaseline", "true"), ("MaxReadUnits", "250")]),
    );
    for variable in ["SOURCE_TABLE_NAME", "MAX_READ_UNITS", "SOURCE_ROLE_ARN"] {
        assert_eq!(
            d.variable("RevalidatorFunction", variable),
            d.variable("BaselineSegmentFunction", variable),
            "{variable}"
        );
    }
    assert_eq!(
        d.variable("RevalidatorFunction", "SOURCE_TABLE_NAME")
            .as_deref(),
        Some("Orders")
    );
    assert_eq!(
        d.variable("RevalidatorFunction", "MAX_READ_UNITS")
            .as_deref(),
        Some("250")
    );
    let d = Deployment::new(&t, &target_account(&[]));
    for (variable, value) in [
        ("SOURCE_TABLE_NAME", "Orders"),
        ("SOURCE_ROLE_ARN", SOURCE_ROLE),
        ("SOURCE_ROLE_EXTERNAL_ID", "x2"),
        ("VERIFY_TABLE_NAME", "Orders"),
        ("VERIFY_ROLE_ARN", ""),
    ] {
        assert_eq!(
            d.variable("RevalidatorFunction", variable).as_deref(),
            Some(value),
            "{variable}"
        );
    }
}

#[test]
fn every_function_names_the_findings_table_or_nothing_when_findings_are_off() {
    let t = template();
    for name in FUNCTIONS {
        assert!(
            variables(&t, name).contains("FINDINGS_TABLE"),
            "{name} lacks FINDINGS_TABLE"
        );
    }
    for (findings, expected) in [("true", "Ref:FindingsTable"), ("false", "")] {
        let d = Deployment::new(&t, &everything(source_account, findings));
        for name in FUNCTIONS {
            assert_eq!(
                d.variable(name, "FINDINGS_TABLE").as_deref(),
                Some(expected),
                "{name} with EnableFindings={findings}"
            );
        }
    }
    let enable = &t["Parameters"]["EnableFindings"];
    assert_eq!(enable["Default"], Value::from("true"));
    assert_eq!(
        enable["AllowedValues"],
        serde_yaml::from_str::<Value>("['true', 'false']").unwrap()
    );
}

#[test]
fn the_findings_table_is_keyed_by_id_with_a_status_index_and_resolved_findings_expire() {
    let t = template();
    let table = &t["Resources"]["FindingsTable"];
    assert_eq!(table["Type"], Value::from("AWS::DynamoDB::Table"));
    assert_eq!(table["Condition"], Value::from("FindingsEnabled"));
    let p = &table["Properties"];
    assert_eq!(p["BillingMode"], Value::from("PAY_PER_REQUEST"));
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        Value::from(true)
    );
    assert_eq!(p["SSESpecification"]["SSEEnabled"], Value::from(true));
    let yaml = |text: &str| serde_yaml::from_str::<Value>(text).unwrap();
    assert_eq!(
        p["KeySchema"],
        yaml("[{AttributeName: id, KeyType: HASH}]"),
        "partition key id only"
    );
    let attributes: BTreeSet<(String, String)> = p["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().unwrap().to_string(),
                a["AttributeType"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        attributes,
        [("id", "S"), ("statusTable", "S"), ("nextCheck", "N")]
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .into()
    );
    let indexes = p["GlobalSecondaryIndexes"].as_sequence().unwrap();
    assert_eq!(indexes.len(), 1, "one index");
    assert_eq!(indexes[0]["IndexName"], Value::from("byStatus"));
    assert_eq!(
        indexes[0]["KeySchema"],
        yaml(
            "[{AttributeName: statusTable, KeyType: HASH}, {AttributeName: nextCheck, KeyType: RANGE}]"
        )
    );
    assert_eq!(indexes[0]["Projection"], yaml("{ProjectionType: ALL}"));
    // The grants name the same index.
    assert!(FINDINGS_INDEX.ends_with("/index/byStatus"));
    assert_eq!(
        p["TimeToLiveSpecification"],
        yaml("{AttributeName: expiresAt, Enabled: true}")
    );
    // Its name and ARN are outputs, with the table.
    for (output, value) in [
        ("FindingsTableName", "Ref:FindingsTable"),
        ("FindingsTableArn", "GetAtt:FindingsTable.Arn"),
    ] {
        assert_eq!(
            t["Outputs"][output]["Condition"],
            Value::from("FindingsEnabled"),
            "{output}"
        );
        let d = Deployment::new(&t, &source_account(&[]));
        assert_eq!(
            d.resolve(&t["Outputs"][output]["Value"]),
            Some(Value::from(value)),
            "{output}"
        );
    }
}

#[test]
fn every_function_gets_only_the_four_findings_actions_on_the_table_and_its_index() {
    let t = template();
    for deploy_in in [source_account, target_account] {
        let d = Deployment::new(&t, &everything(deploy_in, "true"));
        assert!(d.rule_failures().is_empty(), "{:?}", d.rule_failures());
        for name in FUNCTIONS {
            assert!(d.has(name), "{name}");
            let (grants, _) = d.grants(name);
            let on_findings: Vec<&Grant> = grants
                .iter()
                .filter(|(_, resources)| resources.iter().any(|r| r.contains("FindingsTable")))
                .collect();
            assert_eq!(on_findings, [&findings_grant()], "{name}");
        }
    }
}

#[test]
fn without_findings_there_is_no_table_no_revalidator_and_no_findings_grant() {
    let t = template();
    for deploy_in in [source_account, target_account] {
        let d = Deployment::new(&t, &everything(deploy_in, "false"));
        assert!(d.rule_failures().is_empty(), "{:?}", d.rule_failures());
        for name in [
            "FindingsTable",
            "RevalidatorFunction",
            "RevalidatorLogGroup",
            "FindingsWriteFailuresAlarm",
        ] {
            assert!(!d.has(name), "{name} with EnableFindings=false");
        }
        for output in [
            "FindingsTableName",
            "FindingsTableArn",
            "RevalidatorFunctionName",
            "RevalidatorRoleArn",
        ] {
            let condition = t["Outputs"][output]["Condition"].as_str().unwrap();
            assert!(!d.condition(condition), "{output}");
        }
        for name in FUNCTIONS.iter().filter(|f| d.has(f)) {
            let (grants, _) = d.grants(name);
            assert!(
                !grants
                    .iter()
                    .flat_map(|(_, resources)| resources)
                    .any(|r| r.contains("FindingsTable")),
                "{name}: {grants:?}"
            );
        }
        // The rest stays as it was.
        for name in [
            "StreamVerifierFunction",
            "VerifierDashboard",
            "MissingAlarm",
        ] {
            assert!(d.has(name), "{name}");
        }
    }
}

#[test]
fn the_revalidator_reads_both_tables_as_the_verifier_does() {
    let t = template();
    let own_table = format!("arn:aws:dynamodb:us-east-1:{THIS_ACCOUNT}:table/Orders");
    let cases: [(Parameters, Vec<Grant>); 3] = [
        // In the source account: the source table itself, the other side through its role.
        (
            source_account(&[]),
            vec![
                grant(&["dynamodb:BatchGetItem"], &[SOURCE_TABLE]),
                grant(&["sts:AssumeRole"], &[VERIFY_ROLE]),
            ],
        ),
        // Without a role: the other side's table by its ARN.
        (
            source_account(&[("VerifyRoleArn", ""), ("VerifyTableName", OTHER_TABLE)]),
            vec![
                grant(&["dynamodb:BatchGetItem"], &[SOURCE_TABLE]),
                grant(&["dynamodb:BatchGetItem"], &[OTHER_TABLE]),
            ],
        ),
        // In the target account: this account's table, the source only through its role.
        (
            target_account(&[]),
            vec![
                grant(&["dynamodb:BatchGetItem"], &[own_table.as_str()]),
                grant(&["sts:AssumeRole"], &[SOURCE_ROLE]),
            ],
        ),
    ];
    for (given, reads) in cases {
        let d = Deployment::new(&t, &given);
        assert!(d.rule_failures().is_empty(), "{:?}", d.rule_failures());
        assert!(d.has("RevalidatorFunction"), "{given:?}");
        let (grants, managed) = d.grants("RevalidatorFunction");
        let mut expected: BTreeSet<Grant> = reads.into_iter().collect();
        expected.insert(findings_grant());
        // Readiness after each run: the source table's stream (in its own account; from the target
        // account through the source role), the failure queue's depth and the stream's mappings;
        // with a freeze recorded, the stream verifier's Lambda metrics and timeout.
        let mut readiness: BTreeSet<Grant> = [
            grant(&["sqs:GetQueueAttributes"], &["GetAtt:FailureQueue.Arn"]),
            grant(&["lambda:ListEventSourceMappings"], &["*"]),
            grant(&["cloudwatch:GetMetricData"], &["*"]),
            grant(
                &["lambda:GetFunctionConfiguration"],
                &["GetAtt:StreamVerifierFunction.Arn"],
            ),
        ]
        .into();
        if !d.is_target_account() {
            readiness.insert(grant(&["dynamodb:DescribeTable"], &[SOURCE_TABLE]));
        }
        expected.extend(readiness.iter().cloned());
        assert_eq!(grants, expected, "{given:?}");
        assert!(managed.is_empty(), "managed policies {managed:?}");
        assert_exact_tables(&grants);
        // Beyond readiness's reads, nothing the stream verifier may not do itself.
        let (verifier, _) = d.grants("StreamVerifierFunction");
        let items: BTreeSet<Grant> = grants.difference(&readiness).cloned().collect();
        assert!(items.is_subset(&verifier), "{given:?}");
    }
    // In the target account before the source account's role exists (the first deployment): the
    // findings table, but no revalidator, which would read this account's table as the source.
    let first = first_deployment(&t);
    assert!(first.has("FindingsTable"));
    assert!(!first.has("RevalidatorFunction"));
    assert!(!first.has("RevalidatorLogGroup"));
}

#[test]
fn the_revalidator_is_built_like_the_others_and_runs_on_the_revalidation_schedule() {
    let t = template();
    let resource = &t["Resources"]["RevalidatorFunction"];
    assert_eq!(resource["Type"], Value::from("AWS::Serverless::Function"));
    assert_eq!(
        resource["Condition"],
        Value::from("DeployRevalidatorCondition")
    );
    assert_eq!(
        resource["Metadata"]["BuildMethod"],
        Value::from("rust-cargolambda")
    );
    assert_eq!(
        resource["Metadata"]["BuildProperties"]["Binary"],
        Value::from("revalidator")
    );
    let f = function(&t, "RevalidatorFunction");
    // Longer than the longest lag window it may wait for, plus the deadline margin.
    let timeout = f["Timeout"].as_u64().expect("a fixed timeout");
    assert!((300 + 2 + 10..=900).contains(&timeout), "{timeout}");
    assert_eq!(
        strings(&f["LoggingConfig"]["LogGroup"]),
        ["RevalidatorLogGroup"]
    );
    assert_eq!(f["LoggingConfig"]["LogFormat"], Value::from("JSON"));
    let log_group = &t["Resources"]["RevalidatorLogGroup"];
    assert_eq!(log_group["Condition"], resource["Condition"]);
    assert_eq!(
        strings(&log_group["Properties"]["RetentionInDays"]),
        ["LogRetentionInDays"]
    );

    // One event: the schedule, from the parameter (a Sub of it: template.yaml says why).
    let events = f["Events"].as_mapping().expect("Events");
    assert_eq!(events.len(), 1);
    let schedule = &f["Events"]["Schedule"];
    assert!(
        ["Schedule", "ScheduleV2"].contains(&schedule["Type"].as_str().unwrap()),
        "{schedule:?}"
    );
    assert_eq!(
        strings(&schedule["Properties"]["ScheduleExpression"]),
        ["${RevalidationSchedule}"]
    );
    assert_eq!(
        t["Parameters"]["RevalidationSchedule"]["Default"],
        Value::from("rate(15 minutes)")
    );
    let d = Deployment::new(
        &t,
        &source_account(&[("RevalidationSchedule", "rate(1 hour)")]),
    );
    assert_eq!(
        d.resolve(&schedule["Properties"]["ScheduleExpression"]),
        Some(Value::from("rate(1 hour)"))
    );

    // Deployed with findings, in the source account, or in the target account with the source role.
    for (given, deployed) in [
        (source_account(&[]), true),
        (source_account(&[("EnableFindings", "false")]), false),
        (target_account(&[]), true),
        (target_account(&[("EnableFindings", "false")]), false),
    ] {
        let d = Deployment::new(&t, &given);
        assert_eq!(d.has("RevalidatorFunction"), deployed, "{given:?}");
        for output in ["RevalidatorFunctionName", "RevalidatorRoleArn"] {
            let condition = t["Outputs"][output]["Condition"].as_str().unwrap();
            assert_eq!(d.condition(condition), deployed, "{output}");
        }
    }
}

/// The dashboard's body for a deployment, as JSON.
fn dashboard(d: &Deployment, t: &Value) -> serde_json::Value {
    let resource = &t["Resources"]["VerifierDashboard"];
    assert_eq!(resource["Type"], Value::from("AWS::CloudWatch::Dashboard"));
    assert!(d.has("VerifierDashboard"));
    let body = d
        .resolve(&resource["Properties"]["DashboardBody"])
        .expect("DashboardBody");
    serde_json::from_str(body.as_str().expect("a string")).expect("the dashboard body is JSON")
}

/// A dashboard's metrics: (namespace, metric, dimension, dimension value, statistic), each row in
/// full (no "." shorthand).
fn dashboard_metrics(body: &serde_json::Value) -> BTreeSet<[String; 5]> {
    let mut all = BTreeSet::new();
    for widget in body["widgets"].as_array().expect("widgets") {
        assert!(widget["properties"]["title"].is_string(), "{widget}");
        if widget["type"] != "metric" {
            continue;
        }
        assert_eq!(widget["properties"]["region"], "us-east-1", "{widget}");
        for row in widget["properties"]["metrics"].as_array().expect("metrics") {
            let row = row.as_array().unwrap();
            // A metric-math row (the fleet's SEARCH): checked by its own test.
            if row.len() == 1 && row[0]["expression"].is_string() {
                continue;
            }
            assert_eq!(row.len(), 5, "{row:?}");
            let text = |i: usize| {
                row[i]
                    .as_str()
                    .unwrap_or_else(|| panic!("{row:?}"))
                    .to_string()
            };
            assert!((0..4).all(|i| text(i) != "."), "{row:?}");
            let stat = row[4]["stat"].as_str().unwrap_or_else(|| panic!("{row:?}"));
            all.insert([text(0), text(1), text(2), text(3), stat.to_string()]);
        }
    }
    all
}

#[test]
fn the_dashboard_shows_the_metrics_the_code_emits() {
    let t = template();
    // The VerifyTable dimension is the other side's table name, given as a name or an ARN.
    for given in [
        source_account(&[]),
        source_account(&[("VerifyRoleArn", ""), ("VerifyTableName", OTHER_TABLE)]),
    ] {
        let d = Deployment::new(&t, &given);
        let metrics = dashboard_metrics(&dashboard(&d, &t));
        let emf = |name: &str, stat: &str| {
            [
                "DynamoDbMigrationVerifier",
                name,
                "VerifyTable",
                "Orders",
                stat,
            ]
            .map(str::to_string)
        };
        let mut expected: Vec<[String; 5]> = Vec::new();
        for name in [
            "Match",
            "Missing",
            "Mismatch",
            "DeleteNotApplied",
            "Extra",
            "Superseded",
            "Unverifiable",
            "FindingsRecorded",
            "FindingsResolved",
            "FindingsWriteFailures",
            "BatchItemFailures",
            "ItemsScanned",
            "SegmentsCompleted",
        ] {
            expected.push(emf(name, "Sum"));
        }
        expected.push(emf("ReplicationLag", "p50"));
        expected.push(emf("ReplicationLag", "p99"));
        expected.push(emf("IteratorAge", "Maximum"));
        expected.push(emf("OpenFindings", "Maximum"));
        // The baseline's progress as a percentage: segments done over the run's segments.
        expected.push(emf("SegmentsTotal", "Maximum"));
        // The revalidator's readiness: the tile and the checks.
        expected.push(emf("Ready", "Minimum"));
        expected.push(emf("VerifiedAge", "Maximum"));
        for check in [
            "ReadyBaseline",
            "ReadyNoGap",
            "ReadyEveryChange",
            "ReadyStreamRecent",
            "ReadyVerifiedPastFreeze",
            "ReadyNoOpenFindings",
            "ReadyNoRecentRetries",
            "ReadyFailureQueueEmpty",
        ] {
            expected.push(emf(check, "Minimum"));
        }
        expected.push(
            [
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "QueueName",
                "GetAtt:FailureQueue.QueueName",
                "Maximum",
            ]
            .map(str::to_string),
        );
        expected.push(
            [
                "AWS/Lambda",
                "IteratorAge",
                "FunctionName",
                "Ref:StreamVerifierFunction",
                "Maximum",
            ]
            .map(str::to_string),
        );
        for metric in &expected {
            assert!(metrics.contains(metric), "the dashboard lacks {metric:?}");
        }
        let body = dashboard(&d, &t);
        let progress = body["widgets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| {
                w["properties"]["title"]
                    .as_str()
                    .unwrap()
                    .starts_with("Baseline done")
            })
            .expect("a baseline progress tile");
        let rows = progress["properties"]["metrics"].as_array().unwrap();
        assert_eq!(rows[0][0]["expression"], "100 * done / total");
        let ids: Vec<(&str, &str)> = rows[1..]
            .iter()
            .map(|r| (r[1].as_str().unwrap(), r[4]["id"].as_str().unwrap()))
            .collect();
        assert_eq!(
            ids,
            [("SegmentsCompleted", "done"), ("SegmentsTotal", "total")]
        );
        assert_eq!(metrics.len(), expected.len(), "{metrics:?}");
        // The same metrics the alarms watch.
        let alarm = d
            .resolve(&t["Resources"]["MissingAlarm"]["Properties"])
            .unwrap();
        assert_eq!(alarm["Dimensions"][0]["Value"], Value::from("Orders"));
        assert_eq!(alarm["Namespace"], Value::from("DynamoDbMigrationVerifier"));
    }
    // In the configured namespace.
    let d = Deployment::new(&t, &source_account(&[("MetricsNamespace", "Migration1")]));
    assert!(dashboard_metrics(&dashboard(&d, &t)).iter().all(|m| [
        "Migration1",
        "AWS/Lambda",
        "AWS/SQS"
    ]
    .contains(&m[0].as_str())));
}

#[test]
fn every_alarm_points_to_the_dashboard() {
    let t = template();
    let console = "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1\
                   #dashboards:name=";
    let d = Deployment::new(&t, &everything(source_account, "true"));
    // The alarms name the dashboard by its name: the dashboard lists the alarms, and a reference
    // each way would be a cycle.
    let dashboard_name = d
        .resolve(&t["Resources"]["VerifierDashboard"]["Properties"]["DashboardName"])
        .and_then(|v| v.as_str().map(str::to_string))
        .expect("DashboardName");
    assert_eq!(dashboard_name, "verifier-verifier");
    let url = format!("{console}{dashboard_name}");
    let mut alarms = 0;
    for (name, resource) in t["Resources"].as_mapping().unwrap() {
        if resource["Type"] != "AWS::CloudWatch::Alarm" {
            continue;
        }
        let description = d
            .resolve(&resource["Properties"]["AlarmDescription"])
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("{name:?}: no description"));
        assert!(description.contains(&url), "{name:?}: {description}");
        assert!(description.len() <= 1024, "{name:?}: too long");
        alarms += 1;
    }
    assert!(alarms >= 13, "only {alarms} alarms");
    assert_eq!(
        d.resolve(&t["Outputs"]["DashboardUrl"]["Value"]),
        Some(Value::from(format!("{console}Ref:VerifierDashboard")))
    );
    // A finding that could not be written alarms like a verdict does.
    let failures = d
        .resolve(&t["Resources"]["FindingsWriteFailuresAlarm"]["Properties"])
        .unwrap();
    let missing = d
        .resolve(&t["Resources"]["MissingAlarm"]["Properties"])
        .unwrap();
    assert_eq!(failures["MetricName"], Value::from("FindingsWriteFailures"));
    for key in [
        "Namespace",
        "Dimensions",
        "Statistic",
        "Threshold",
        "ComparisonOperator",
        "TreatMissingData",
    ] {
        assert_eq!(failures[key], missing[key], "{key}");
    }
    assert_eq!(
        t["Resources"]["FindingsWriteFailuresAlarm"]["Condition"],
        Value::from("FindingsEnabled")
    );
}

#[test]
fn the_other_accounts_role_trusts_the_revalidator_only_when_given_its_role() {
    let t = read_yaml("templates/verify-role.yaml");
    let verifier = "arn:aws:iam::222222222222:role/verifier";
    let baseline = "arn:aws:iam::222222222222:role/baseline";
    let revalidator = "arn:aws:iam::222222222222:role/revalidator";
    for (with_baseline, with_revalidator) in
        [(false, false), (true, false), (false, true), (true, true)]
    {
        let mut given = vec![
            ("VerifierRoleArn", verifier),
            ("ExternalId", "x1"),
            ("TableName", "Orders"),
        ];
        let mut expected = vec![verifier];
        if with_baseline {
            given.push(("BaselineRoleArn", baseline));
            expected.push(baseline);
        }
        if with_revalidator {
            given.push(("RevalidatorRoleArn", revalidator));
            expected.push(revalidator);
        }
        let given: Vec<(String, String)> = given
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let d = Deployment::new(&t, &given);
        let role = d
            .resolve(&t["Resources"]["VerifyRole"]["Properties"])
            .unwrap();
        let trust = &role["AssumeRolePolicyDocument"]["Statement"][0];
        assert_eq!(strings(&trust["Principal"]["AWS"]), expected);
        assert_eq!(
            trust["Condition"]["StringEquals"]["sts:ExternalId"],
            Value::from("x1")
        );
        // The revalidator reads items only: scanning comes with the baseline's role alone.
        let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
            .as_sequence()
            .unwrap();
        let scans = statements
            .iter()
            .any(|s| strings(&s["Action"]).contains(&"dynamodb:Scan".to_string()));
        assert_eq!(scans, with_baseline);
    }
}

/// `templates/verify-role.yaml`'s required parameters, and more.
fn role_parameters(more: &[(&str, &str)]) -> Parameters {
    let mut p = vec![
        ("VerifierRoleArn", "arn:aws:iam::222222222222:role/verifier"),
        ("ExternalId", "x1"),
        ("TableName", "Orders"),
    ];
    p.extend_from_slice(more);
    p.into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// An IAM role's inline grants, resolved: (actions, resources), each sorted.
fn role_grants(role: &Value) -> BTreeSet<Grant> {
    let mut grants = BTreeSet::new();
    for policy in role["Policies"].as_sequence().expect("Policies") {
        for statement in policy["PolicyDocument"]["Statement"]
            .as_sequence()
            .expect("Statement")
        {
            assert_eq!(statement["Effect"], Value::from("Allow"));
            let mut actions = strings(&statement["Action"]);
            let mut resources = strings(&statement["Resource"]);
            actions.sort();
            resources.sort();
            grants.insert((actions, resources));
        }
    }
    grants
}

/// The actions that write items of a table.
const WRITE_ACTIONS: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
];

/// The other account's roles read, except the repair role of `ddb-verify repair --apply`: created
/// only with `EnableRepair=true`, assumed only by `RepairPrincipalArn` with the external id, and
/// writing items of exactly the one table.
#[test]
fn the_other_accounts_role_writes_only_through_the_opt_in_repair_role() {
    let t = read_yaml("templates/verify-role.yaml");
    // Anywhere in a resource (those of its loops too), with every branch of every condition: a
    // write action only under RepairRole, or in a policy attached to RepairRole alone (an
    // additional table's, AdditionalTableNames) and created only with it.
    for (name, resource) in resources_and_loops(&t) {
        let writes: Vec<String> = strings(resource)
            .into_iter()
            .filter(|s| WRITE_ACTIONS.contains(&s.as_str()) || s == "dynamodb:*")
            .collect();
        let repair_policy = resource["Type"] == "AWS::IAM::Policy"
            && strings(&resource["Properties"]["Roles"]) == ["RepairRole"]
            && strings(&t["Conditions"][resource["Condition"].as_str().unwrap_or("-")])
                .contains(&"RepairEnabled".to_string());
        if name == "RepairRole" || repair_policy {
            assert_eq!(
                writes,
                ["dynamodb:PutItem", "dynamodb:DeleteItem"],
                "{name}"
            );
        } else {
            assert!(writes.is_empty(), "{name} writes: {writes:?}");
        }
    }
    let repair = &t["Resources"]["RepairRole"];
    assert_eq!(repair["Type"], Value::from("AWS::IAM::Role"));
    assert_eq!(repair["Condition"], Value::from("RepairEnabled"));
    assert_eq!(
        t["Conditions"]["RepairEnabled"],
        serde_yaml::from_str::<Value>("!Equals [!Ref EnableRepair, \"true\"]").unwrap()
    );
    assert_eq!(
        t["Parameters"]["EnableRepair"]["Default"],
        Value::from("false")
    );
    assert_eq!(
        t["Outputs"]["RepairRoleArn"]["Condition"],
        Value::from("RepairEnabled")
    );

    let table = format!("arn:aws:dynamodb:us-east-1:{THIS_ACCOUNT}:table/Orders");
    let operator = "arn:aws:iam::222222222222:role/migration-operator";
    // Off (the default): no repair role.
    let off = Deployment::new(&t, &role_parameters(&[]));
    assert!(off.rule_failures().is_empty(), "{:?}", off.rule_failures());
    assert!(!off.has("RepairRole"));
    // On without the principal that may assume it: refused.
    let failures =
        Deployment::new(&t, &role_parameters(&[("EnableRepair", "true")])).rule_failures();
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with("RepairNeedsItsPrincipal")),
        "{failures:?}"
    );
    // On: trusted by that one principal with the external id; items of exactly the table.
    let on = Deployment::new(
        &t,
        &role_parameters(&[("EnableRepair", "true"), ("RepairPrincipalArn", operator)]),
    );
    assert!(on.rule_failures().is_empty(), "{:?}", on.rule_failures());
    assert!(on.has("RepairRole"));
    let role = on
        .resolve(&t["Resources"]["RepairRole"]["Properties"])
        .unwrap();
    let trust = role["AssumeRolePolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap();
    assert_eq!(trust.len(), 1);
    assert_eq!(strings(&trust[0]["Principal"]["AWS"]), [operator]);
    assert_eq!(strings(&trust[0]["Action"]), ["sts:AssumeRole"]);
    assert_eq!(
        trust[0]["Condition"]["StringEquals"]["sts:ExternalId"],
        Value::from("x1")
    );
    let grants = role_grants(&role);
    assert_eq!(
        grants,
        [
            grant(
                &[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:PutItem",
                    "dynamodb:DeleteItem"
                ],
                &[table.as_str()]
            ),
            grant(&["dynamodb:DescribeTable"], &[table.as_str()]),
        ]
        .into()
    );
    assert_exact_tables(&grants);
    // The read role stays as it was, and does not trust the operator.
    let read = on
        .resolve(&t["Resources"]["VerifyRole"]["Properties"])
        .unwrap();
    for (actions, _) in role_grants(&read) {
        assert!(
            actions.iter().all(|a| !WRITE_ACTIONS.contains(&a.as_str())),
            "{actions:?}"
        );
    }
    assert!(
        !strings(&read["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"])
            .contains(&operator.to_string())
    );
}

/// One output of the verifier's stack gives `templates/verify-role.yaml` every function role the
/// stack has (and empties the others), so one deployment of the role trusts exactly them.
#[test]
fn one_output_wires_every_function_role_into_the_other_accounts_role() {
    let t = template();
    let role_template = read_yaml("templates/verify-role.yaml");
    // Each function, the parameter of templates/verify-role.yaml that trusts it, and the stack's
    // output of its role alone.
    let roles = [
        (
            "StreamVerifierFunction",
            "VerifierRoleArn",
            "StreamVerifierRoleArn",
        ),
        ("ShardPollerFunction", "PollerRoleArn", "ShardPollerRoleArn"),
        (
            "BaselineSegmentFunction",
            "BaselineRoleArn",
            "BaselineSegmentRoleArn",
        ),
        (
            "RevalidatorFunction",
            "RevalidatorRoleArn",
            "RevalidatorRoleArn",
        ),
    ];
    assert_eq!(roles.len(), FUNCTIONS.len());
    for given in [
        source_account(&[]),
        everything(source_account, "true"),
        everything(source_account, "false"),
        everything(target_account, "true"),
        source_account(&[("EnableStream", "false"), ("DeployPoller", "true")]),
        target_account(&[("DeployBaseline", "true")]),
        // The first deployment in the target account: no revalidator yet.
        target_account(&[
            ("EnableStream", "false"),
            ("SourceRoleArn", ""),
            ("SourceRoleExternalId", ""),
        ]),
    ] {
        let d = Deployment::new(&t, &given);
        assert!(d.rule_failures().is_empty(), "{:?}", d.rule_failures());
        let output = d
            .resolve(&t["Outputs"]["OtherAccountRoleParameters"]["Value"])
            .and_then(|v| v.as_str().map(str::to_string))
            .expect("the OtherAccountRoleParameters output");
        let overrides: BTreeMap<String, String> = output
            .split_whitespace()
            .map(|pair| {
                let (k, v) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{pair}: not Key=Value"));
                (k.to_string(), v.to_string())
            })
            .collect();
        let mut expected = BTreeMap::new();
        for (function, parameter, own_output) in roles {
            let role = format!("GetAtt:{function}Role.Arn");
            expected.insert(
                parameter.to_string(),
                if d.has(function) {
                    role.clone()
                } else {
                    String::new()
                },
            );
            let o = &t["Outputs"][own_output];
            let shown = o["Condition"].as_str().is_none_or(|c| d.condition(c));
            assert_eq!(shown, d.has(function), "{own_output}");
            if shown {
                assert_eq!(
                    d.resolve(&o["Value"]),
                    Some(Value::from(role)),
                    "{own_output}"
                );
            }
        }
        // In the target account the poller reads the source stream through that same role.
        if d.has("ShardPollerFunction") && d.values["DeployIn"] == "TargetAccount" {
            expected.insert("StreamArn".to_string(), SOURCE_STREAM.to_string());
        }
        assert_eq!(overrides, expected, "{given:?}");

        // The role deployed with them trusts exactly the functions the stack has.
        let mut role_given: Parameters = overrides.into_iter().collect();
        role_given.push(("ExternalId".to_string(), "x1".to_string()));
        role_given.push(("TableName".to_string(), "Orders".to_string()));
        let r = Deployment::new(&role_template, &role_given);
        assert!(r.rule_failures().is_empty(), "{:?}", r.rule_failures());
        let role = r
            .resolve(&role_template["Resources"]["VerifyRole"]["Properties"])
            .unwrap();
        let trust = &role["AssumeRolePolicyDocument"]["Statement"][0];
        let trusted: BTreeSet<String> = strings(&trust["Principal"]["AWS"]).into_iter().collect();
        let deployed: BTreeSet<String> = roles
            .iter()
            .filter(|(function, _, _)| d.has(function))
            .map(|(function, _, _)| format!("GetAtt:{function}Role.Arn"))
            .collect();
        assert_eq!(trusted, deployed, "{given:?}");
        assert_eq!(
            trust["Condition"]["StringEquals"]["sts:ExternalId"],
            Value::from("x1")
        );
    }
    assert!(
        read_doc("docs/deploy.md").contains("OtherAccountRoleParameters"),
        "docs/deploy.md does not wire the roles with the output"
    );
}

/// A replicator, the stream verifier's mapping and the poller on one stream would be three readers
/// per shard (DynamoDB Streams throttles above two): the template takes the poller instead of the
/// mapping, or on another stream, never beside it.
#[test]
fn the_template_refuses_the_poller_beside_the_stream_mapping_on_one_stream() {
    let t = template();
    let rule = "PollerNotBesideTheStreamMapping";
    let other_stream =
        "arn:aws:dynamodb:us-east-1:111111111111:table/Invoices/stream/2026-01-20T10:00:00.000";
    for deploy_in in [source_account, target_account] {
        // The mapping reads the stream (EnableStream=true), and the poller would too: its stream
        // left empty (SourceStreamArn) or named.
        for poller_stream in ["", SOURCE_STREAM] {
            let given = deploy_in(&[("DeployPoller", "true"), ("PollerStreamArn", poller_stream)]);
            let failures = Deployment::new(&t, &given).rule_failures();
            assert!(
                failures.iter().any(|f| f.starts_with(rule)),
                "{given:?}: {failures:?}"
            );
        }
        for given in [
            deploy_in(&[("DeployPoller", "true"), ("EnableStream", "false")]),
            deploy_in(&[("DeployPoller", "true"), ("PollerStreamArn", other_stream)]),
            deploy_in(&[]),
        ] {
            let failures = Deployment::new(&t, &given).rule_failures();
            assert!(failures.is_empty(), "{given:?}: {failures:?}");
        }
    }
    let why = t["Rules"][rule]["Assertions"][0]["AssertDescription"]
        .as_str()
        .unwrap();
    assert!(why.contains("three readers per shard"), "{why}");
}

/// CloudFormation evaluates rules before conditions and resources: only these functions, and
/// references to parameters, may appear in them (the evaluation on paper above would take more).
#[test]
fn the_rules_use_only_what_cloudformation_allows_in_rules() {
    const ALLOWED: &[&str] = &[
        "And",
        "Contains",
        "EachMemberEquals",
        "EachMemberIn",
        "Equals",
        "Not",
        "Or",
        "RefAll",
        "ValueOf",
        "ValueOfAll",
        "Ref",
    ];
    fn walk(v: &Value, at: &str, parameters: &Value) {
        match v {
            Value::Tagged(tagged) => {
                assert!(
                    ALLOWED.iter().any(|a| tagged.tag == *a),
                    "{at}: {:?} in a rule",
                    tagged.tag
                );
                if tagged.tag == "Ref" {
                    let name = tagged.value.as_str().unwrap();
                    assert!(
                        !parameters[name].is_null(),
                        "{at}: Ref {name}, not a parameter"
                    );
                }
                walk(&tagged.value, at, parameters);
            }
            Value::Sequence(items) => items.iter().for_each(|i| walk(i, at, parameters)),
            Value::Mapping(m) => m.values().for_each(|i| walk(i, at, parameters)),
            _ => {}
        }
    }
    let mut rules = 0;
    for path in ["template.yaml", "templates/verify-role.yaml"] {
        let t = read_yaml(path);
        for (name, rule) in t["Rules"].as_mapping().expect("Rules") {
            walk(rule, &format!("{path} {name:?}"), &t["Parameters"]);
            rules += 1;
        }
    }
    assert!(rules >= 5, "only {rules} rules");
}

/// Whether an alarm watches a function's Lambda `Errors`: the function it names.
fn errors_alarm_function(alarm: &Value) -> Option<String> {
    let p = &alarm["Properties"];
    if alarm["Type"] != "AWS::CloudWatch::Alarm"
        || p["Namespace"] != "AWS/Lambda"
        || p["MetricName"] != "Errors"
    {
        return None;
    }
    let dimensions = p["Dimensions"].as_sequence().expect("Dimensions");
    assert_eq!(dimensions.len(), 1, "{dimensions:?}");
    assert_eq!(dimensions[0]["Name"], Value::from("FunctionName"));
    let Value::Tagged(reference) = &dimensions[0]["Value"] else {
        panic!("not a reference to a function: {dimensions:?}")
    };
    assert_eq!(reference.tag, "Ref", "{dimensions:?}");
    reference.value.as_str().map(str::to_string)
}

#[test]
fn every_function_has_an_alarm_on_its_errors_under_its_own_condition() {
    let t = template();
    let resources = t["Resources"].as_mapping().unwrap();
    let mut functions = 0;
    for (name, function) in resources {
        let name = name.as_str().unwrap();
        let kind = function["Type"].as_str().unwrap_or("");
        if !["AWS::Serverless::Function", "AWS::Lambda::Function"].contains(&kind) {
            continue;
        }
        functions += 1;
        let alarms: Vec<&Value> = resources
            .values()
            .filter(|a| errors_alarm_function(a).as_deref() == Some(name))
            .collect();
        assert_eq!(alarms.len(), 1, "{name}: Errors alarms {}", alarms.len());
        let alarm = alarms[0];
        // Deployed exactly with its function.
        assert_eq!(alarm["Condition"], function["Condition"], "{name}");
        // Any error in 5 minutes, to the alarm topic, like the verdict alarms.
        let p = &alarm["Properties"];
        for (key, value) in [
            ("Statistic", Value::from("Sum")),
            ("Period", Value::from(300)),
            ("EvaluationPeriods", Value::from(1)),
            ("Threshold", Value::from(0)),
            ("ComparisonOperator", Value::from("GreaterThanThreshold")),
            ("TreatMissingData", Value::from("notBreaching")),
        ] {
            assert_eq!(p[key], value, "{name}: {key}");
        }
        assert_eq!(
            p["AlarmActions"], t["Resources"]["MissingAlarm"]["Properties"]["AlarmActions"],
            "{name}"
        );
    }
    assert!(functions >= FUNCTIONS.len(), "only {functions} functions");
}

#[test]
fn the_dashboard_shows_every_alarm_the_stack_has() {
    let t = template();
    for given in [
        source_account(&[]),
        everything(source_account, "true"),
        everything(source_account, "false"),
        everything(target_account, "true"),
        target_account(&[("DeployBaseline", "true")]),
        target_account(&[
            ("EnableStream", "false"),
            ("SourceRoleArn", ""),
            ("SourceRoleExternalId", ""),
        ]),
    ] {
        let d = Deployment::new(&t, &given);
        let expected: BTreeSet<String> = t["Resources"]
            .as_mapping()
            .unwrap()
            .iter()
            .map(|(name, resource)| (name.as_str().unwrap(), resource))
            .filter(|(name, resource)| resource["Type"] == "AWS::CloudWatch::Alarm" && d.has(name))
            .map(|(name, _)| format!("GetAtt:{name}.Arn"))
            .collect();
        let body = dashboard(&d, &t);
        let widgets: Vec<&serde_json::Value> = body["widgets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["type"] == "alarm")
            .collect();
        assert_eq!(widgets.len(), 1, "one alarm widget");
        let listed: Vec<String> = widgets[0]["properties"]["alarms"]
            .as_array()
            .expect("alarms")
            .iter()
            .map(|a| a.as_str().expect("an alarm ARN").to_string())
            .collect();
        assert_eq!(listed.len(), expected.len(), "{given:?}: {listed:?}");
        assert_eq!(
            listed.into_iter().collect::<BTreeSet<_>>(),
            expected,
            "{given:?}"
        );
        // The most an alarm widget shows.
        assert!(expected.len() <= 100);
    }
}

/// The first deployment in the target account (step 1 in docs/deploy.md): no stream mapping yet, and
/// no source account role yet; the template's rules accept it.
fn first_deployment(t: &Value) -> Deployment<'_> {
    let first = Deployment::new(
        t,
        &target_account(&[
            ("EnableStream", "false"),
            ("SourceRoleArn", ""),
            ("SourceRoleExternalId", ""),
        ]),
    );
    assert!(
        first.rule_failures().is_empty(),
        "{:?}",
        first.rule_failures()
    );
    first
}

// Many tables, one deployment (TablePairs): a mapping per listed stream to the one function, the
// pairs in TABLE_PAIRS, and grants that name each pair's stream and tables; the other account's
// role (AdditionalTableNames) grants its reads on each listed table.

const INVOICES_STREAM: &str =
    "arn:aws:dynamodb:us-east-1:111111111111:table/Invoices/stream/2026-01-21T08:00:00.000";
const INVOICES_TABLE: &str = "arn:aws:dynamodb:us-east-1:111111111111:table/Invoices";
const CATALOG_STREAM: &str =
    "arn:aws:dynamodb:us-east-1:111111111111:table/Catalog/stream/2026-01-22T09:30:00.000";
const CATALOG_TABLE: &str = "arn:aws:dynamodb:us-east-1:111111111111:table/Catalog";
/// Catalog's other side, given as an ARN (Invoices's is given by name).
const OTHER_CATALOG: &str = "arn:aws:dynamodb:us-east-1:333333333333:table/CatalogCopy";

/// Two more pairs: Invoices to the table of that name, Catalog to another account's table.
fn table_pairs() -> String {
    format!("{INVOICES_STREAM}|Invoices,{CATALOG_STREAM}|{OTHER_CATALOG}")
}

#[test]
fn each_stream_of_table_pairs_is_mapped_to_the_one_function_as_the_primary_stream_is() {
    let t = template();
    let pairs = table_pairs();
    let primary_id = "StreamVerifierFunctionSourceStream";
    for (given, streams) in [
        (source_account(&[("TablePairs", &pairs)]), 3),
        (
            source_account(&[("TablePairs", &pairs), ("EnableStream", "false")]),
            3,
        ),
        (target_account(&[("TablePairs", &pairs)]), 3),
        // In the target account no mapping before the stream's policy allows the role.
        (
            target_account(&[("TablePairs", &pairs), ("EnableStream", "false")]),
            0,
        ),
        // No TablePairs: the primary mapping alone, as before.
        (source_account(&[]), 1),
        (target_account(&[]), 1),
    ] {
        let d = Deployment::new(&t, &given);
        assert!(d.rule_failures().is_empty(), "{:?}", d.rule_failures());
        let mappings = d.resources_of("AWS::Lambda::EventSourceMapping");
        assert_eq!(mappings.len(), streams, "{given:?}: {:?}", mappings.keys());
        if streams == 0 {
            continue;
        }
        let primary = d.resolve(&mappings[primary_id]["Properties"]).unwrap();
        let mut mapped = BTreeSet::new();
        for (id, mapping) in &mappings {
            let mut properties = d.resolve(&mapping["Properties"]).unwrap();
            let stream = properties["EventSourceArn"].as_str().unwrap().to_string();
            // Everything as the primary mapping's (the function, the starting position, the
            // batches, the failure queue and the retries), but the stream.
            properties["EventSourceArn"] = primary["EventSourceArn"].clone();
            assert_eq!(properties, primary, "{id}");
            assert_eq!(properties["FunctionName"], "Ref:StreamVerifierFunction");
            assert!(mapped.insert(stream), "{id}: a stream mapped twice");
            // A pair's mapping is named after its entry (alphanumerics only, as logical ids are).
            if id != primary_id {
                assert!(id.starts_with("StreamMapping"), "{id}");
                assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
            }
        }
        let expected: BTreeSet<String> = [SOURCE_STREAM, INVOICES_STREAM, CATALOG_STREAM]
            .into_iter()
            .take(streams)
            .map(str::to_string)
            .collect();
        assert_eq!(mapped, expected, "{given:?}");
    }
    // The same properties as written, too: no property of the primary mapping is missing from a
    // pair's (nor added), so a change to one is made to the other.
    let raw_primary = t["Resources"][primary_id]["Properties"]
        .as_mapping()
        .unwrap();
    let d = Deployment::new(&t, &source_account(&[("TablePairs", &pairs)]));
    for (id, mapping) in d.resources_of("AWS::Lambda::EventSourceMapping") {
        let keys = |m: &serde_yaml::Mapping| -> BTreeSet<String> {
            m.keys().map(|k| k.as_str().unwrap().to_string()).collect()
        };
        let properties = mapping["Properties"].as_mapping().unwrap();
        assert_eq!(keys(properties), keys(raw_primary), "{id}");
    }
    let entry = &t["Parameters"]["TablePairs"];
    assert_eq!(entry["Type"], "CommaDelimitedList");
    assert_eq!(entry["Default"], "");
    assert_eq!(
        t["Transform"],
        serde_yaml::from_str::<Value>("[AWS::LanguageExtensions, AWS::Serverless-2016-10-31]")
            .unwrap()
    );
}

#[test]
fn table_pairs_reaches_the_stream_verifier_as_the_json_it_parses_primary_pair_first() {
    use ddb_verify::config::pairs::table_pairs as parse;
    let t = template();
    let pairs = table_pairs();
    for deploy_in in [source_account, target_account] {
        let d = Deployment::new(&t, &deploy_in(&[("TablePairs", &pairs)]));
        let value = d
            .variable("StreamVerifierFunction", "TABLE_PAIRS")
            .expect("TABLE_PAIRS");
        let parsed = parse(Some(value.clone()))
            .unwrap_or_else(|e| panic!("{value}: {e}"))
            .expect("pairs");
        // Each source named by its stream, which names its table; each other side as given.
        let got: Vec<(String, Option<String>, String)> = parsed
            .iter()
            .map(|p| (p.source.clone(), p.other.clone(), p.name()))
            .collect();
        let pair = |source: &str, other: &str, name: &str| {
            (
                source.to_string(),
                Some(other.to_string()),
                name.to_string(),
            )
        };
        assert_eq!(
            got,
            [
                pair(SOURCE_TABLE, "Orders", "Orders"),
                pair(INVOICES_TABLE, "Invoices", "Invoices"),
                pair(CATALOG_TABLE, OTHER_CATALOG, "Catalog"),
            ],
            "{value}"
        );
        // No ignore list: IgnoreAttributes (IGNORE_ATTRIBUTES) applies to every pair.
        assert!(parsed.iter().all(|p| p.ignore.is_none()), "{value}");
        // TtlAttribute is the primary table's alone: the others' TTL is their tables' own.
        assert!(parsed[0].ttl.is_some(), "{value}");
        assert!(parsed[1..].iter().all(|p| p.ttl.is_none()), "{value}");
        // The JSON names the streams as given.
        assert!(value.contains(INVOICES_STREAM) && value.contains(CATALOG_STREAM));
        // The baseline and the revalidator get the same pairs; the poller reads its one stream.
        for function in FUNCTIONS {
            let expected = match *function {
                "ShardPollerFunction" => None,
                _ => Some(value.clone()),
            };
            assert_eq!(d.variable(function, "TABLE_PAIRS"), expected, "{function}");
        }
    }
    // One more pair, and the primary table's TTL attribute.
    let d = Deployment::new(
        &t,
        &source_account(&[
            ("TablePairs", &format!("{INVOICES_STREAM}|Invoices")),
            ("TtlAttribute", "expiresAt"),
        ]),
    );
    let value = d.variable("StreamVerifierFunction", "TABLE_PAIRS").unwrap();
    let parsed = parse(Some(value)).unwrap().unwrap();
    assert_eq!(parsed.len(), 2);
    let base = |_: &str| Some("expiresAt".to_string());
    assert_eq!(
        parsed[0].value("TTL_ATTRIBUTE", base).as_deref(),
        Some("expiresAt")
    );
    assert_eq!(parsed[1].value("TTL_ATTRIBUTE", base), None);
    // No TablePairs: empty, so the function serves the one pair of VERIFY_TABLE_NAME as before.
    let d = Deployment::new(&t, &source_account(&[]));
    let value = d.variable("StreamVerifierFunction", "TABLE_PAIRS").unwrap();
    assert_eq!(value, "");
    assert_eq!(parse(Some(value)).unwrap(), None);
}

#[test]
fn the_verifier_is_granted_exactly_each_pairs_stream_and_tables() {
    let t = template();
    let pairs = table_pairs();
    let own = |name: &str| format!("arn:aws:dynamodb:us-east-1:{THIS_ACCOUNT}:table/{name}");
    let listed_streams = |table: &str| format!("{table}/stream/*");
    let cases: [(Parameters, Vec<Grant>); 4] = [
        // The source account, the other side through its role: the streams, and the source
        // tables for the re-check.
        (
            source_account(&[("TablePairs", &pairs)]),
            vec![
                grant(STREAM_READS, &[INVOICES_STREAM]),
                grant(
                    &["dynamodb:ListStreams"],
                    &[&listed_streams(INVOICES_TABLE)],
                ),
                grant(&["dynamodb:BatchGetItem"], &[INVOICES_TABLE]),
                grant(STREAM_READS, &[CATALOG_STREAM]),
                grant(&["dynamodb:ListStreams"], &[&listed_streams(CATALOG_TABLE)]),
                grant(&["dynamodb:BatchGetItem"], &[CATALOG_TABLE]),
            ],
        ),
        // Without the role: each other side read directly, a name in this account, an ARN as given.
        (
            source_account(&[("TablePairs", &pairs), ("VerifyRoleArn", "")]),
            vec![
                grant(STREAM_READS, &[INVOICES_STREAM]),
                grant(
                    &["dynamodb:ListStreams"],
                    &[&listed_streams(INVOICES_TABLE)],
                ),
                grant(&["dynamodb:BatchGetItem"], &[INVOICES_TABLE]),
                grant(&["dynamodb:BatchGetItem"], &[&own("Invoices")]),
                grant(STREAM_READS, &[CATALOG_STREAM]),
                grant(&["dynamodb:ListStreams"], &[&listed_streams(CATALOG_TABLE)]),
                grant(&["dynamodb:BatchGetItem"], &[CATALOG_TABLE]),
                grant(&["dynamodb:BatchGetItem"], &[OTHER_CATALOG]),
            ],
        ),
        // The target account: the streams (their policies name the role) and this side's tables;
        // the source tables only through SourceRoleArn, as the primary pair's.
        (
            target_account(&[("TablePairs", &pairs)]),
            vec![
                grant(STREAM_READS, &[INVOICES_STREAM]),
                grant(&["dynamodb:BatchGetItem"], &[&own("Invoices")]),
                grant(STREAM_READS, &[CATALOG_STREAM]),
                grant(&["dynamodb:BatchGetItem"], &[OTHER_CATALOG]),
            ],
        ),
        (
            target_account(&[("TablePairs", &pairs), ("VerifyRoleArn", VERIFY_ROLE)]),
            vec![
                grant(STREAM_READS, &[INVOICES_STREAM]),
                grant(STREAM_READS, &[CATALOG_STREAM]),
            ],
        ),
    ];
    for (given, pair_grants) in cases {
        let d = Deployment::new(&t, &given);
        assert!(d.rule_failures().is_empty(), "{:?}", d.rule_failures());
        // The function's own statements are those of the primary pair, as without TablePairs.
        let primary_only: Parameters = given
            .iter()
            .filter(|(k, _)| k != "TablePairs")
            .cloned()
            .collect();
        let before = Deployment::new(&t, &primary_only);
        assert_eq!(
            d.grants("StreamVerifierFunction"),
            before.grants("StreamVerifierFunction"),
            "{given:?}"
        );
        assert!(before
            .attached_grants("StreamVerifierFunctionRole")
            .is_empty());
        // Each pair's in a policy of its own on the function's role, naming that pair alone.
        let attached = d.attached_grants("StreamVerifierFunctionRole");
        let expected: BTreeSet<Grant> = pair_grants.into_iter().collect();
        assert_eq!(attached, expected, "{given:?}");
        let policies: BTreeMap<String, Value> = d
            .resources_of("AWS::IAM::Policy")
            .into_iter()
            .filter(|(_, p)| {
                strings(&d.resolve(&p["Properties"]["Roles"]).unwrap())
                    == ["Ref:StreamVerifierFunctionRole"]
            })
            .collect();
        assert_eq!(policies.len(), 2, "{given:?}");
        let names: BTreeSet<String> = policies
            .values()
            .flat_map(|p| strings(&d.resolve(&p["Properties"]["PolicyName"]).unwrap()))
            .collect();
        assert_eq!(names, set(&["TablePair-Catalog", "TablePair-Invoices"]));
        // No wildcard but ListStreams's on a listed table's streams, as the primary's.
        for (actions, resources) in &attached {
            for resource in resources {
                assert!(
                    !resource.contains('*')
                        || actions == &["dynamodb:ListStreams"]
                            && [INVOICES_TABLE, CATALOG_TABLE]
                                .iter()
                                .any(|table| resource == &listed_streams(table)),
                    "{actions:?} on {resource}"
                );
            }
        }
    }
    // The stream's policy for each listed stream (the target account), as SourceStreamPolicy's.
    let d = Deployment::new(&t, &target_account(&[("TablePairs", &pairs)]));
    let primary = d
        .resolve(&d.expanded["Outputs"]["SourceStreamPolicy"]["Value"])
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap();
    let mut policies = BTreeSet::new();
    for (name, output) in d.expanded["Outputs"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        if !name.starts_with("PairStreamPolicy") {
            continue;
        }
        assert!(d.condition(output["Condition"].as_str().unwrap()), "{name}");
        let value = d.resolve(&output["Value"]).unwrap();
        policies.insert(value.as_str().unwrap().to_string());
    }
    let expected: BTreeSet<String> = [INVOICES_STREAM, CATALOG_STREAM]
        .iter()
        .map(|stream| primary.replace(SOURCE_STREAM, stream))
        .collect();
    assert_eq!(policies, expected);
    // In the source account, or without pairs, none.
    for given in [
        source_account(&[("TablePairs", &pairs)]),
        target_account(&[]),
    ] {
        let d = Deployment::new(&t, &given);
        for (name, output) in d.expanded["Outputs"].as_mapping().unwrap() {
            if name.as_str().unwrap().starts_with("PairStreamPolicy") {
                assert!(!d.condition(output["Condition"].as_str().unwrap()));
            }
        }
    }
}

#[test]
fn the_baseline_and_the_revalidator_are_granted_exactly_each_pairs_tables() {
    let t = template();
    let pairs = table_pairs();
    let own = |name: &str| format!("arn:aws:dynamodb:us-east-1:{THIS_ACCOUNT}:table/{name}");
    const SCAN: &[&str] = &[
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeTable",
        "dynamodb:Scan",
    ];
    const READ: &[&str] = &["dynamodb:BatchGetItem", "dynamodb:DescribeTable"];
    let baseline = [("TablePairs", pairs.as_str()), ("DeployBaseline", "true")];
    // The source account, the other side through its role: each pair's source table.
    let d = Deployment::new(&t, &source_account(&baseline));
    assert_eq!(
        d.attached_grants("BaselineSegmentFunctionRole"),
        [
            grant(SCAN, &[INVOICES_TABLE]),
            grant(SCAN, &[CATALOG_TABLE])
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(
        d.attached_grants("RevalidatorFunctionRole"),
        [
            grant(READ, &[INVOICES_TABLE]),
            grant(READ, &[CATALOG_TABLE])
        ]
        .into_iter()
        .collect()
    );
    // Without the role: each other side too, a name in this account, an ARN as given.
    let d = Deployment::new(
        &t,
        &source_account(&[&baseline[..], &[("VerifyRoleArn", "")]].concat()),
    );
    assert_eq!(
        d.attached_grants("BaselineSegmentFunctionRole"),
        [
            grant(SCAN, &[INVOICES_TABLE]),
            grant(SCAN, &[&own("Invoices")]),
            grant(SCAN, &[CATALOG_TABLE]),
            grant(SCAN, &[OTHER_CATALOG])
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(
        d.attached_grants("RevalidatorFunctionRole"),
        [
            grant(READ, &[INVOICES_TABLE]),
            grant(&["dynamodb:BatchGetItem"], &[&own("Invoices")]),
            grant(READ, &[CATALOG_TABLE]),
            grant(&["dynamodb:BatchGetItem"], &[OTHER_CATALOG])
        ]
        .into_iter()
        .collect()
    );
    // The target account: the source tables only through SourceRoleArn (AdditionalTableNames of
    // that account's role), this side's tables directly.
    let d = Deployment::new(&t, &target_account(&baseline));
    assert_eq!(
        d.attached_grants("BaselineSegmentFunctionRole"),
        [
            grant(SCAN, &[&own("Invoices")]),
            grant(SCAN, &[OTHER_CATALOG])
        ]
        .into_iter()
        .collect()
    );
    // The target account through the other account's role: every table through a role, so no
    // policy (an empty one would fail the deployment).
    let d = Deployment::new(
        &t,
        &target_account(&[&baseline[..], &[("VerifyRoleArn", VERIFY_ROLE)]].concat()),
    );
    for role in ["BaselineSegmentFunctionRole", "RevalidatorFunctionRole"] {
        assert!(d.attached_grants(role).is_empty(), "{role}");
    }
    for (name, policy) in d.resources_of("AWS::IAM::Policy") {
        let p = d.resolve(&policy["Properties"]).unwrap();
        assert!(
            !p["PolicyDocument"]["Statement"]
                .as_sequence()
                .unwrap()
                .is_empty(),
            "{name} has no statement"
        );
    }
    // Without pairs, or without the baseline, no policy of theirs.
    for given in [
        source_account(&[("DeployBaseline", "true")]),
        source_account(&[("TablePairs", pairs.as_str())]),
    ] {
        let d = Deployment::new(&t, &given);
        assert!(d.attached_grants("BaselineSegmentFunctionRole").is_empty());
    }
    let d = Deployment::new(&t, &source_account(&[]));
    assert!(d.attached_grants("RevalidatorFunctionRole").is_empty());
}

#[test]
fn the_other_accounts_role_reads_exactly_its_table_and_the_additional_ones() {
    let t = read_yaml("templates/verify-role.yaml");
    let arn = |name: &str| format!("arn:aws:dynamodb:us-east-1:{THIS_ACCOUNT}:table/{name}");
    // Every role's grants, by action list: the tables each is allowed on.
    let tables_by_actions = |d: &Deployment,
                             role: &str|
     -> BTreeMap<Vec<String>, BTreeSet<String>> {
        let mut all = BTreeMap::<Vec<String>, BTreeSet<String>>::new();
        let own = d.resolve(&t["Resources"][role]["Properties"]).unwrap();
        for (actions, resources) in role_grants(&own).into_iter().chain(d.attached_grants(role)) {
            all.entry(actions).or_default().extend(resources);
        }
        all
    };
    let operator = "arn:aws:iam::222222222222:role/migration-operator";
    let everything = [
        ("BaselineRoleArn", "arn:aws:iam::222222222222:role/baseline"),
        (
            "RevalidatorRoleArn",
            "arn:aws:iam::222222222222:role/revalidator",
        ),
        ("EnableRepair", "true"),
        ("RepairPrincipalArn", operator),
    ];
    let actions = |a: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        a.sort();
        a
    };
    let read = actions(&["dynamodb:BatchGetItem"]);
    let describe = actions(&["dynamodb:DescribeTable"]);
    let scan = actions(&["dynamodb:Scan", "dynamodb:DescribeTable"]);
    let repair = actions(&[
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
    ]);
    for (additional, tables) in [
        ("", vec!["Orders"]),
        ("Invoices", vec!["Orders", "Invoices"]),
        ("Invoices,Catalog", vec!["Orders", "Invoices", "Catalog"]),
    ] {
        let tables: BTreeSet<String> = tables.into_iter().map(arn).collect();
        let mut given = vec![("AdditionalTableNames", additional)];
        given.extend_from_slice(&everything);
        let d = Deployment::new(&t, &role_parameters(&given));
        assert!(d.rule_failures().is_empty(), "{:?}", d.rule_failures());
        // Every statement that names the table names each listed table too, and nothing more.
        let verify = tables_by_actions(&d, "VerifyRole");
        let expected: BTreeMap<_, _> = [read.clone(), describe.clone(), scan.clone()]
            .into_iter()
            .map(|a| (a, tables.clone()))
            .collect();
        assert_eq!(verify, expected, "AdditionalTableNames={additional}");
        let repairs = tables_by_actions(&d, "RepairRole");
        let expected: BTreeMap<_, _> = [repair.clone(), describe.clone()]
            .into_iter()
            .map(|a| (a, tables.clone()))
            .collect();
        assert_eq!(repairs, expected, "AdditionalTableNames={additional}");
        // Without the baseline's, the revalidator's and the repair's roles: item reads alone.
        let d = Deployment::new(
            &t,
            &role_parameters(&[("AdditionalTableNames", additional)]),
        );
        assert_eq!(
            tables_by_actions(&d, "VerifyRole"),
            [(read.clone(), tables.clone())].into()
        );
        assert!(d
            .resources_of("AWS::IAM::Policy")
            .keys()
            .all(|p| p.starts_with("ReadTable")));
        // The default: TableName's role exactly as before, no policy added.
        if additional.is_empty() {
            assert!(d.resources_of("AWS::IAM::Policy").is_empty());
        }
    }
    let parameter = &t["Parameters"]["AdditionalTableNames"];
    assert_eq!(parameter["Type"], "CommaDelimitedList");
    assert_eq!(parameter["Default"], "");
}

// The docs against the code and the template.

fn read_doc(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A doc's table rows by the `## ` section they are in: each row's cells, trimmed. Header and
/// separator rows are left out; rows before the first section are under "".
fn table_rows(text: &str) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut sections: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    let mut header = true;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = heading.trim().to_string();
            continue;
        }
        if !line.starts_with('|') {
            header = true;
            continue;
        }
        let cells: Vec<String> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        // A table's first row is its header, the next its separator.
        if header
            || cells
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            header = false;
            continue;
        }
        sections.entry(section.clone()).or_default().push(cells);
    }
    sections
}

/// The names in backticks in a cell: `` `A`, `B` `` gives A and B.
fn quoted(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// A value every variable accepts, so that a parser reads on to its end and asks for each one it
/// knows. The older names of the source role are left unset: setting both names is an error.
fn sample_value(name: &str) -> Option<&'static str> {
    Some(match name {
        "VERIFY_TABLE_NAME" => "OrdersCopy",
        "VERIFY_ROLE_ARN" | "SOURCE_ROLE_ARN" => "arn:aws:iam::222222222222:role/reader",
        "VERIFY_ROLE_EXTERNAL_ID" | "SOURCE_ROLE_EXTERNAL_ID" => "x1",
        "VERIFY_PROFILE" => "target-account",
        "VERIFY_REGION" => "us-east-1",
        "SAMPLE_RATE" => "1",
        "IGNORE_ATTRIBUTES" => "syncedAt",
        "MAX_REPLICATION_LAG" => "30s",
        "LAG_WINDOW_FROM" => "creation",
        "DEADLINE_MARGIN" => "2s",
        "CONSISTENT_READ" | "RECHECK_SOURCE" => "true",
        "LOG_ITEM_VALUES" => "false",
        "MAX_CONCURRENCY" => "5",
        "METRICS_NAMESPACE" => "DynamoDbMigrationVerifier",
        "FINDINGS_TABLE" => "VerifierFindings",
        "TTL_ATTRIBUTE" => "expiresAt",
        "STREAM_ARN" => {
            "arn:aws:dynamodb:us-east-1:111111111111:table/Orders/stream/2026-01-01T00:00:00.000"
        }
        "SOURCE_TABLE_NAME" => "Orders",
        "CHECKPOINT_TABLE" => "VerifierCheckpoints",
        "STARTING_POSITION" => "TRIM_HORIZON",
        "GET_RECORDS_LIMIT" => "1000",
        "LEASE_DURATION" => "5m",
        "POLL_INTERVAL" => "60s",
        "MAX_READ_UNITS" => "100",
        "SCAN_PAGE_LIMIT" => "500",
        "FAILURE_QUEUE_URL" => "https://sqs.us-east-1.amazonaws.com/111111111111/failures",
        _ => return None,
    })
}

/// A configuration's parser, given the lookup of variables.
type Parser<T, E> = fn(&dyn Fn(&str) -> Option<String>) -> Result<T, E>;

/// Every variable a configuration parser asks for (given a valid value for each it knows): what
/// the program reads, whatever the constants say.
fn asked<T, E: std::fmt::Debug>(parse: Parser<T, E>) -> BTreeSet<String> {
    let names = std::cell::RefCell::new(BTreeSet::new());
    let lookup = |name: &str| {
        names.borrow_mut().insert(name.to_string());
        sample_value(name).map(str::to_string)
    };
    if let Err(e) = parse(&lookup) {
        panic!("the sample values do not parse ({e:?}): give the new variable one in sample_value");
    }
    names.into_inner()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn the_configuration_docs_list_exactly_the_variables_each_program_reads() {
    use ddb_verify::config::{
        BaselineConfig, Config, FindingsCliConfig, InitConfig, PollerConfig, PreflightConfig,
        RevalidatorConfig, BASELINE_VARIABLES, INIT_VARIABLES, POLLER_VARIABLES,
        PREFLIGHT_VARIABLES, REVALIDATOR_VARIABLES,
    };
    let common = asked(|l| Config::from_lookup(l));
    let beyond =
        |all: BTreeSet<String>| -> BTreeSet<String> { all.difference(&common).cloned().collect() };
    let poller = beyond(asked(|l| PollerConfig::from_lookup(l)));
    let baseline = beyond(asked(|l| BaselineConfig::from_lookup(l)));
    let revalidator = beyond(asked(|l| RevalidatorConfig::from_lookup(l)));
    let repair: BTreeSet<String> = asked(|l| ddb_verify::config::RepairConfig::from_lookup(l))
        .difference(&asked(|l| RevalidatorConfig::from_lookup(l)))
        .cloned()
        .collect();
    assert_eq!(
        repair,
        set(ddb_verify::config::REPAIR_VARIABLES),
        "config::REPAIR_VARIABLES"
    );
    let cli = asked(|l| FindingsCliConfig::from_lookup(l));
    let preflight = beyond(asked(|l| PreflightConfig::from_lookup(l)));
    let init = asked(|l| InitConfig::from_lookup(l));
    assert_eq!(
        preflight,
        set(PREFLIGHT_VARIABLES),
        "config::PREFLIGHT_VARIABLES"
    );
    assert_eq!(init, set(INIT_VARIABLES), "config::INIT_VARIABLES");
    // The constants the template's tests use say the same.
    assert_eq!(common, set(VARIABLES), "config::VARIABLES");
    assert_eq!(poller, set(POLLER_VARIABLES), "config::POLLER_VARIABLES");
    assert_eq!(
        baseline,
        set(BASELINE_VARIABLES),
        "config::BASELINE_VARIABLES"
    );
    assert_eq!(
        revalidator,
        set(REVALIDATOR_VARIABLES),
        "config::REVALIDATOR_VARIABLES"
    );

    let rows = table_rows(&read_doc("docs/configuration.md"));
    let documented = |section: &str| -> BTreeSet<String> {
        let rows = rows
            .get(section)
            .unwrap_or_else(|| panic!("docs/configuration.md has no table under ## {section}"));
        rows.iter().flat_map(|cells| quoted(&cells[0])).collect()
    };
    for (section, read) in [
        ("Every function", &common),
        ("Shard poller", &poller),
        ("Baseline compare", &baseline),
        ("Revalidator", &revalidator),
        ("`ddb-verify repair`", &repair),
        ("`ddb-verify findings`, `accept` and `readiness`", &cli),
        ("`ddb-verify preflight`", &preflight),
        ("`ddb-verify init`", &init),
    ] {
        let docs = documented(section);
        let undocumented: Vec<_> = read.difference(&docs).collect();
        let not_read: Vec<_> = docs.difference(read).collect();
        assert!(
            undocumented.is_empty() && not_read.is_empty(),
            "docs/configuration.md, ## {section}: read but not in the table {undocumented:?}; \
             in the table but not read {not_read:?}"
        );
    }
}

#[test]
fn the_deploy_docs_list_exactly_the_template_parameters_and_their_defaults() {
    let t = template();
    let parameters: BTreeMap<String, String> = t["Parameters"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(name, p)| {
            let default = match &p["Default"] {
                Value::Null => "(required)".to_string(),
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("{name:?}: default {other:?}"),
            };
            (name.as_str().unwrap().to_string(), default)
        })
        .collect();
    let rows = table_rows(&read_doc("docs/deploy.md"));
    let documented: BTreeMap<String, String> = rows
        .get("Parameters")
        .expect("docs/deploy.md has no table under ## Parameters")
        .iter()
        .map(|cells| {
            let names = quoted(&cells[0]);
            assert_eq!(names.len(), 1, "one parameter a row: {cells:?}");
            (names[0].clone(), cells[1].replace('`', ""))
        })
        .collect();
    let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<BTreeSet<_>>();
    let (template_names, docs_names) = (names(&parameters), names(&documented));
    assert!(
        template_names == docs_names,
        "docs/deploy.md, ## Parameters: in the template only {:?}; in the docs only {:?}",
        template_names.difference(&docs_names).collect::<Vec<_>>(),
        docs_names.difference(&template_names).collect::<Vec<_>>()
    );
    for (name, default) in &parameters {
        assert_eq!(
            &documented[name], default,
            "docs/deploy.md gives {name} another default than template.yaml"
        );
    }
}

/// The Markdown files a reader walks: the README, BENCHMARKS.md and docs/.
fn doc_files() -> Vec<String> {
    let mut files = vec!["README.md".to_string(), "BENCHMARKS.md".to_string()];
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs");
    let mut docs: Vec<String> = std::fs::read_dir(dir)
        .expect("docs/")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The relative links of a Markdown text, `[text](target)`, without web addresses.
fn relative_links(text: &str) -> Vec<String> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            let target = &rest[..rest.find(')')?];
            (!target.contains("://") && !target.is_empty()).then(|| target.to_string())
        })
        .collect()
}

/// The anchors GitHub gives a Markdown file's headings: lower case, spaces as hyphens, other
/// punctuation dropped; a repeated heading gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#').trim();
        let slug: String = heading
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

#[test]
fn every_link_between_the_docs_leads_to_a_file_and_heading_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for file in doc_files() {
        let text = read_doc(&file);
        let dir = std::path::Path::new(&file).parent().unwrap().to_path_buf();
        for link in relative_links(&text) {
            let (path, anchor) = match link.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (link.as_str(), None),
            };
            let target = if path.is_empty() {
                std::path::PathBuf::from(&file)
            } else {
                dir.join(path)
            };
            let full = root.join(&target);
            assert!(full.exists(), "{file}: the link {link} leads nowhere");
            if let Some(anchor) = anchor {
                let target_text = std::fs::read_to_string(&full).unwrap();
                assert!(
                    anchors(&target_text).contains(anchor),
                    "{file}: the link {link} names no heading of {}",
                    target.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} links checked");
}

#[test]
fn every_docs_file_links_to_the_readme_and_the_readme_to_every_docs_file() {
    let readme = read_doc("README.md");
    for file in doc_files().into_iter().filter(|f| f.starts_with("docs/")) {
        assert!(
            readme.contains(&format!("({file})")) || readme.contains(&format!("({file}#")),
            "README.md does not link to {file}"
        );
        assert!(
            read_doc(&file).contains("(../README.md)"),
            "{file} does not link back to README.md"
        );
    }
}

#[test]
fn the_readiness_alarm_is_opt_in_and_no_run_is_no_proof() {
    let t = template();
    let off = Deployment::new(&t, &source_account(&[]));
    assert!(off.has("RevalidatorFunction"));
    assert!(
        !off.has("NotReadyAlarm"),
        "off by default: NO-GO is expected for most of a migration"
    );
    let on = Deployment::new(&t, &source_account(&[("ReadinessAlarm", "true")]));
    assert!(on.has("NotReadyAlarm"));
    let alarm = on
        .resolve(&t["Resources"]["NotReadyAlarm"]["Properties"])
        .unwrap();
    assert_eq!(alarm["MetricName"], Value::from("Ready"));
    assert_eq!(alarm["Dimensions"][0]["Value"], Value::from("Orders"));
    assert_eq!(
        alarm["ComparisonOperator"],
        Value::from("LessThanThreshold")
    );
    assert_eq!(alarm["Threshold"], Value::from(1));
    assert_eq!(alarm["TreatMissingData"], Value::from("breaching"));
    // Without findings there is no revalidator, so no readiness to alarm on.
    let no_findings = Deployment::new(
        &t,
        &source_account(&[("ReadinessAlarm", "true"), ("EnableFindings", "false")]),
    );
    assert!(!no_findings.has("NotReadyAlarm"));
    // The revalidator reports readiness with the failure queue it reads.
    let env = variables(&t, "RevalidatorFunction");
    assert!(env.contains("FAILURE_QUEUE_URL"));
}

#[test]
fn the_dashboard_shows_every_tables_readiness_in_the_namespace() {
    let t = template();
    let d = Deployment::new(&t, &source_account(&[("MetricsNamespace", "Migration1")]));
    let body = dashboard(&d, &t);
    let searches: Vec<String> = body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| {
            w["properties"]["metrics"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|row| row[0]["expression"].as_str().map(String::from))
        .filter(|e| e.starts_with("SEARCH"))
        .collect();
    assert_eq!(
        searches,
        ["SEARCH('{Migration1,VerifyTable} MetricName=\"Ready\"', 'Minimum', 3600)"],
        "one fleet graph: every table's Ready in the configured namespace"
    );
}
