//! The rules of `preflight`, one function per check, each pure: [`Facts`] in, a [`Check`] out.

use super::{Check, Facts, Hop, OwnTable, RoleProbe, Status, TableFacts, Unchecked};
use crate::ports::layout::{ReadCapacity, TableShape};

/// What to do when the source cannot be described.
pub const SOURCE_TODO: &str = "check SOURCE_TABLE_NAME and the region, and that these credentials \
(or SOURCE_ROLE_ARN's role) may call dynamodb:DescribeTable on it";
/// What to do when the other side cannot be described.
pub const OTHER_TODO: &str = "check VERIFY_TABLE_NAME and VERIFY_REGION, and that VERIFY_PROFILE \
or VERIFY_ROLE_ARN (with VERIFY_ROLE_EXTERNAL_ID) reach the other account and may call \
dynamodb:DescribeTable on it";

/// Readers of a shard above which DynamoDB Streams throttles.
pub const READERS_PER_SHARD: usize = 2;

fn not_checked(name: &'static str, why: &Unchecked) -> Check {
    Check::new(name, Status::NotChecked, why.to_string())
}

/// Both tables, or the check that cannot be made without them.
fn both<'a>(
    name: &'static str,
    facts: &'a Facts,
) -> Result<(&'a TableShape, &'a TableShape), Check> {
    match (&facts.source.table, &facts.other.table) {
        (Ok(s), Ok(o)) => Ok((s, o)),
        _ => Err(Check::new(
            name,
            Status::NotChecked,
            "needs both tables described (see above)",
        )),
    }
}

/// A table of the pair can be described: FAIL otherwise (nothing can be verified without it).
pub fn reachable(name: &'static str, side: &TableFacts, todo: &str) -> Check {
    match &side.table {
        Ok(t) => Check::new(
            name,
            Status::Ok,
            format!("{}: {}, key {}", side.side, t.status, t.keys),
        ),
        Err(why) => Check::new(
            name,
            Status::Fail,
            format!("{} not reachable: {why}", side.side),
        )
        .todo(todo),
    }
}

/// Not one table compared with itself: by the configuration, or by ARN and creation time.
pub fn not_same_table(facts: &Facts) -> Check {
    const NAME: &str = "two tables";
    const TODO: &str =
        "point VERIFY_TABLE_NAME (or VERIFY_PROFILE, VERIFY_ROLE_ARN, VERIFY_REGION) at the copy";
    if let Some(refusal) = &facts.same_table {
        return Check::new(NAME, Status::Fail, refusal.clone()).todo(TODO);
    }
    if let (Ok(s), Ok(o)) = (&facts.source.table, &facts.other.table) {
        if s.arn.is_some() && s.arn == o.arn && s.created_ms == o.created_ms {
            let arn = s.arn.clone().unwrap_or_default();
            return Check::new(
                NAME,
                Status::Fail,
                format!("both sides are one table ({arn}): every item would match itself"),
            )
            .todo(TODO);
        }
    }
    if facts.source.table.is_err() || facts.other.table.is_err() {
        return Check::new(
            NAME,
            Status::NotChecked,
            "the configuration names two tables; whether they are one needs both described (see above)",
        );
    }
    Check::new(
        NAME,
        Status::Ok,
        "the source and the other side are not one table",
    )
}

/// Key attribute names and types are equal.
pub fn key_schema(facts: &Facts) -> Check {
    const NAME: &str = "key schema";
    let (s, o) = match both(NAME, facts) {
        Ok(pair) => pair,
        Err(check) => return check,
    };
    if s.keys == o.keys {
        return Check::new(NAME, Status::Ok, format!("the same on both: {}", s.keys));
    }
    Check::new(
        NAME,
        Status::Fail,
        format!("source {}; other side {}", s.keys, o.keys),
    )
    .todo("the other side must have the source's key attribute names and types: create it with the same key schema")
}

fn index_list(t: &TableShape) -> String {
    match t.indexes.is_empty() {
        true => "none".to_string(),
        false => t
            .indexes
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Secondary indexes side by side: a difference is a WARN (the verifier compares items only).
pub fn secondary_indexes(facts: &Facts) -> Check {
    const NAME: &str = "secondary indexes";
    let (s, o) = match both(NAME, facts) {
        Ok(pair) => pair,
        Err(check) => return check,
    };
    if s.indexes == o.indexes {
        return Check::new(
            NAME,
            Status::Ok,
            format!("the same on both: {}", index_list(s)),
        );
    }
    Check::new(
        NAME,
        Status::Warn,
        format!("source: {}; other side: {}", index_list(s), index_list(o)),
    )
    .todo("create the same indexes on the other side before the cut-over (queries by a missing index fail; the verifier compares items only)")
}

fn ttl_text(ttl: &Option<String>) -> String {
    match ttl {
        Some(attribute) => format!("on {attribute}"),
        None => "off".to_string(),
    }
}

/// TTL on both with the same attribute, or on neither.
pub fn time_to_live(facts: &Facts) -> Check {
    const NAME: &str = "time to live";
    let (s, o) = match (&facts.source.ttl, &facts.other.ttl) {
        (Err(why), _) | (_, Err(why)) => return not_checked(NAME, why),
        (Ok(s), Ok(o)) => (s, o),
    };
    if s == o {
        return Check::new(NAME, Status::Ok, format!("{} on both sides", ttl_text(s)));
    }
    Check::new(
        NAME,
        Status::Warn,
        format!("source: {}; other side: {}", ttl_text(s), ttl_text(o)),
    )
    .todo("turn TTL on with the same attribute on both sides, or off on both: expired items are deleted at a different pace on each side (the verifier calls such an item EXPIRED)")
}

/// The source's stream: enabled, and a view type the verifier can judge by.
pub fn stream(facts: &Facts) -> Check {
    const NAME: &str = "stream";
    let t = match &facts.source.table {
        Ok(t) => t,
        Err(_) => return Check::new(NAME, Status::NotChecked, "needs the source described"),
    };
    let Some(stream) = &t.stream else {
        return Check::new(NAME, Status::Warn, "the source has no stream enabled: stream verification is impossible, only the baseline compare can verify")
            .todo("enable a stream with NEW_AND_OLD_IMAGES on the source (aws dynamodb update-table --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES)");
    };
    let view = stream.view_type.as_str();
    match (view, facts.recheck_source) {
        ("NEW_AND_OLD_IMAGES" | "NEW_IMAGE", _) => {
            Check::new(NAME, Status::Ok, format!("{view}: {}", stream.arn))
        }
        (_, true) => Check::new(
            NAME,
            Status::Info,
            format!("{view} (no new image): the verifier re-reads each changed item from the source, as RECHECK_SOURCE=true asks; {}", stream.arn),
        ),
        (_, false) => Check::new(
            NAME,
            Status::Warn,
            format!("{view} carries no new image: it needs RECHECK_SOURCE=true; {}", stream.arn),
        )
        .todo("set RECHECK_SOURCE=true (the verifier re-reads the source item), or switch the stream to NEW_AND_OLD_IMAGES"),
    }
}

/// Whether an IAM action pattern (`dynamodb:Get*`, `*`) covers `action`, as IAM matches them:
/// case-insensitive, `*` any run of characters, `?` one.
fn action_matches(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], a) || (!a.is_empty() && go(p, &a[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &a[1..]),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => go(&p[1..], &a[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), action.as_bytes())
}

/// The statements of a policy with `effect` that cover `dynamodb:GetRecords`.
fn reading_statements(doc: &serde_json::Value, effect: &str) -> Vec<serde_json::Value> {
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(list) => list.clone(),
        one @ serde_json::Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    statements
        .into_iter()
        .filter(|s| s["Effect"] == effect)
        .filter(|s| {
            json_strings(&s["Action"])
                .iter()
                .any(|a| action_matches(a, "dynamodb:GetRecords"))
        })
        .collect()
}

fn json_strings(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(l) => l
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a policy has a Deny statement covering `dynamodb:GetRecords` (not evaluated here).
pub fn denies_reads(policy: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(policy)
        .map(|doc| !reading_statements(&doc, "Deny").is_empty())
        .unwrap_or(false)
}

/// Whether an allowed principal stands for `role`: the role itself, `*`, or its account (an id
/// or its root).
fn allows(principal: &str, role: &str) -> bool {
    let account = role.split(':').nth(4).unwrap_or_default();
    principal == role
        || principal == "*"
        || (!account.is_empty()
            && (principal == account || principal == format!("arn:aws:iam::{account}:root")))
}

/// The principals a policy lets read a stream's records (`dynamodb:GetRecords`).
pub fn stream_readers_allowed(policy: &str) -> Result<Vec<String>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(policy).map_err(|e| format!("the policy is not JSON: {e}"))?;
    let mut out = Vec::new();
    for s in reading_statements(&doc, "Allow") {
        match &s["Principal"] {
            serde_json::Value::String(any) => out.push(any.clone()),
            p => out.extend(json_strings(&p["AWS"])),
        }
    }
    Ok(out)
}

/// For a verifier in another account than the stream: the stream's resource policy lets it read.
pub fn stream_policy(facts: &Facts) -> Option<Check> {
    const NAME: &str = "stream policy";
    const TODO: &str = "put the stack's SourceStreamPolicy output on the stream (aws dynamodb put-resource-policy --resource-arn STREAM_ARN --policy ...) in the source account";
    let policy = facts.stream_policy.as_ref()?;
    Some(match policy {
        Err(why) => not_checked(NAME, why),
        Ok(None) => Check::new(NAME, Status::Warn, "the source stream has no resource policy: a stream verifier function in the other account cannot read it (a shard poller through SOURCE_ROLE_ARN can)").todo(TODO),
        Ok(Some(policy)) => match stream_readers_allowed(policy) {
            Err(why) => Check::new(NAME, Status::Warn, why).todo(TODO),
            Ok(readers) if readers.is_empty() => Check::new(NAME, Status::Warn, "the stream's resource policy allows no one dynamodb:GetRecords").todo(TODO),
            Ok(readers) => policy_readers(facts, policy, &readers).todo(TODO),
        },
    })
}

/// A policy that lets `readers` read the stream, against the `--as-deployed` roles.
fn policy_readers(facts: &Facts, policy: &str, readers: &[String]) -> Check {
    const NAME: &str = "stream policy";
    let lets = format!(
        "the stream's resource policy lets {} read it",
        readers.join(", ")
    );
    if denies_reads(policy) {
        return Check::new(NAME, Status::Warn, format!("{lets}, and a Deny statement covers dynamodb:GetRecords (its conditions are not evaluated here)"));
    }
    let roles: Vec<&str> = facts.roles.iter().map(|r| r.role.as_str()).collect();
    if roles.is_empty() {
        return Check::new(NAME, Status::Info, format!("{lets}; not compared with the stream verifier's role: give it with --as-deployed (the stack's StreamVerifierRoleArn)"));
    }
    let allowed: Vec<&str> = roles
        .iter()
        .copied()
        .filter(|role| readers.iter().any(|p| allows(p, role)))
        .collect();
    match allowed.is_empty() {
        true => Check::new(
            NAME,
            Status::Warn,
            format!(
                "{lets}: none of the --as-deployed roles ({})",
                roles.join(", ")
            ),
        ),
        false => Check::new(
            NAME,
            Status::Ok,
            format!("{lets}: {} among them", allowed.join(", ")),
        ),
    }
}

/// Whether a mapping reads the stream now (or is about to).
fn reading(state: &str) -> bool {
    matches!(state, "Enabled" | "Enabling" | "Creating" | "Updating")
}

/// Readers of each shard: the event source mappings this account can list that are enabled, the
/// shard poller with `--poller`, and `--other-readers`. A WARN above two.
pub fn stream_readers(facts: &Facts) -> Option<Check> {
    const NAME: &str = "stream readers";
    let mappings = facts.mappings.as_ref()?;
    let mut parts = Vec::new();
    let mut readers = facts.other_readers as usize + usize::from(facts.poller);
    match mappings {
        Ok(list) => {
            let shown: Vec<String> = list
                .iter()
                .map(|m| format!("{} {}", m.function, m.state))
                .collect();
            readers += list.iter().filter(|m| reading(&m.state)).count();
            parts.push(format!(
                "{} event source mappings [{}]",
                list.len(),
                shown.join(", ")
            ));
        }
        Err(why) => parts.push(format!("event source mappings not listed ({why})")),
    }
    if facts.poller {
        parts.push("the shard poller (--poller)".into());
    }
    if facts.other_readers > 0 {
        parts.push(format!("{} other (--other-readers)", facts.other_readers));
    }
    let found = format!("{}; readers of each shard: {readers}", parts.join(", "));
    Some(if readers > READERS_PER_SHARD {
        Check::new(NAME, Status::Warn, found).todo("more than two readers of a shard are throttled: drop a reader (the shard poller and the stream verifier's mapping are two ways to read the same stream: keep one)")
    } else if mappings.is_err() {
        Check::new(NAME, Status::NotChecked, found)
    } else {
        Check::new(NAME, Status::Ok, found)
    })
}

/// Point-in-time recovery on the source: INFO either way (an export to S3 needs it).
pub fn point_in_time_recovery(facts: &Facts) -> Check {
    const NAME: &str = "point-in-time recovery";
    match &facts.point_in_time_recovery {
        Err(why) => not_checked(NAME, why),
        Ok(true) => Check::new(NAME, Status::Info, "on for the source: it can be exported to S3 for a bulk copy"),
        Ok(false) => Check::new(NAME, Status::Info, "off for the source: an export to S3 (a bulk copy) needs it")
            .todo("if the copy starts from an export: aws dynamodb update-continuous-backups --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true"),
    }
}

/// The checkpoint or findings table: exists with its layout's keys and index (and TTL).
pub fn own_table(table: &Option<OwnTable>, name: &'static str, variable: &str) -> Check {
    const INIT: &str =
        "run `ddb-verify init` (creates CHECKPOINT_TABLE and FINDINGS_TABLE as the template does)";
    let Some(own) = table else {
        return Check::new(
            name,
            Status::Info,
            format!("{variable} is not set: not checked"),
        );
    };
    let t = match &own.table {
        Ok(t) => t,
        Err(why) if why.reason.contains("ResourceNotFoundException") => {
            return Check::new(
                name,
                Status::Fail,
                format!("{} does not exist: {why}", own.name),
            )
            .todo(INIT)
        }
        Err(why) => return not_checked(name, why),
    };
    let differences = own.layout.differences(t);
    if !differences.is_empty() {
        return Check::new(
            name,
            Status::Fail,
            format!("{} is not a {}: {}", own.name, own.layout.what, differences.join("; ")),
        )
        .todo(format!("set {variable} to a new name and run `ddb-verify init`, or delete the table and run it"));
    }
    let expected = own.layout.ttl_attribute.map(String::from);
    match &own.ttl {
        Ok(ttl) if expected.is_some() && *ttl != expected => Check::new(
            name,
            Status::Warn,
            format!(
                "{}: keys and index as expected; TTL {} (expected on {})",
                own.name,
                ttl_text(ttl),
                expected.unwrap_or_default()
            ),
        )
        .todo(format!("{INIT}: resolved findings are deleted only by TTL")),
        Err(why) => Check::new(
            name,
            Status::NotChecked,
            format!(
                "{}: keys and index as expected; its TTL not read ({why})",
                own.name
            ),
        ),
        Ok(_) => Check::new(
            name,
            Status::Ok,
            format!("{}: {}, key {}", own.name, t.status, t.keys),
        ),
    }
}

/// `MAX_READ_UNITS` against each table's read capacity: a WARN above half of it.
pub fn read_budget(facts: &Facts) -> Vec<Check> {
    const NAME: &str = "read budget";
    let per_process = facts.max_read_units;
    let processes = facts.processes.max(1);
    let budget = per_process * processes as f64;
    let said = match processes {
        1 => format!("MAX_READ_UNITS={per_process} (one process; --processes for more)"),
        n => format!("MAX_READ_UNITS={per_process} × {n} processes = {budget}"),
    };
    let mut out = Vec::new();
    for side in [&facts.source, &facts.other] {
        let Ok(t) = &side.table else { continue };
        let capacity = match t.read_capacity {
            ReadCapacity::Provisioned { read_units } => Some(("provisioned", read_units)),
            ReadCapacity::OnDemand {
                max_read_units: Some(max),
            } => Some(("an on-demand maximum of", max)),
            ReadCapacity::OnDemand {
                max_read_units: None,
            } => None,
        };
        out.push(match capacity {
            None => Check::new(NAME, Status::Info, format!("{}: on demand; {said}", side.side)),
            Some((kind, units)) if budget > units as f64 / 2.0 => Check::new(
                NAME,
                Status::Warn,
                format!("{}: {kind} {units} read units; {said} is above half of it", side.side),
            )
            .todo(format!("set MAX_READ_UNITS to at most {} so the baseline and the revalidator leave the application its reads", (units as f64 / 2.0 / processes as f64).floor())),
            Some((kind, units)) => Check::new(
                NAME,
                Status::Ok,
                format!("{}: {kind} {units} read units; {said} is at most half of it", side.side),
            ),
        });
    }
    out
}

/// A global table: the other side a replica of the source (INFO, named), or either in one.
pub fn global_table(facts: &Facts) -> Check {
    const NAME: &str = "global table";
    let (s, o) = match both(NAME, facts) {
        Ok(pair) => pair,
        Err(check) => return check,
    };
    let other_region = o
        .arn
        .as_deref()
        .and_then(|a| a.split(':').nth(3))
        .unwrap_or_default();
    let version = s
        .global_table_version
        .as_deref()
        .or(o.global_table_version.as_deref());
    let version = version
        .map(|v| format!(" (version {v})"))
        .unwrap_or_default();
    let source_region = s
        .arn
        .as_deref()
        .and_then(|a| a.split(':').nth(3))
        .unwrap_or_default();
    let in_source = !other_region.is_empty() && s.replica_regions.iter().any(|r| r == other_region);
    // The other side's own replicas name the source's region back when they are one table.
    let named_back =
        !source_region.is_empty() && o.replica_regions.iter().any(|r| r == source_region);
    let regions = |r: &[String]| match r.is_empty() {
        true => "none listed".to_string(),
        false => r.join(", "),
    };
    match (in_source, named_back) {
        (true, true) => return Check::new(NAME, Status::Info, format!("the other side is a replica of the source in {other_region}{version}: DynamoDB replicates; the verifier proves what arrived, item by item")),
        (true, false) => return Check::new(NAME, Status::Info, format!("the source has a replica in {other_region}{version}, the other side's region: the other side is possibly that replica (its own description does not name the source's region)")),
        _ => {}
    }
    match (s.replica_regions.is_empty(), o.replica_regions.is_empty()) {
        (true, true) if version.is_empty() => Check::new(NAME, Status::Ok, "neither table is in a global table"),
        (false, _) => Check::new(NAME, Status::Info, format!("the source is a global table{version} with replicas in {}; the other side is not one of them", regions(&s.replica_regions))),
        _ => Check::new(NAME, Status::Info, format!("a global table{version} (replicas of the other side: {})", regions(&o.replica_regions))),
    }
}

/// `--as-deployed`: a function's role can assume every role the functions assume.
pub fn deployed_role(probe: &RoleProbe) -> Check {
    const NAME: &str = "deployed role";
    let role = &probe.role;
    let hops = match &probe.hops {
        Err(why) => {
            return Check::new(NAME, Status::NotChecked, format!("{role}: could not act as it from these credentials ({why})"))
                .todo("a Lambda execution role trusts lambda.amazonaws.com only: run preflight with credentials that may assume it, or check the other account's role trust by hand")
        }
        Ok(hops) => hops,
    };
    if hops.is_empty() {
        return Check::new(
            NAME,
            Status::Info,
            format!("{role}: assumed; no VERIFY_ROLE_ARN or SOURCE_ROLE_ARN to try through it"),
        );
    }
    let said: Vec<String> = hops
        .iter()
        .map(|(variable, arn, hop)| match hop {
            Hop::Assumed => format!("assumes {variable} {arn}"),
            Hop::Denied(why) => format!("is refused {variable} {arn} ({why})"),
            Hop::Unknown(why) => format!("could not try {variable} {arn} ({why})"),
        })
        .collect();
    let found = format!("{role} {}", said.join("; "));
    if hops.iter().any(|(.., h)| matches!(h, Hop::Denied(_))) {
        Check::new(NAME, Status::Fail, found).todo("the other account's role must trust this role with the external id: deploy templates/verify-role.yaml with every function role of the stack (the stack's OtherAccountRoleParameters output: VerifierRoleArn, PollerRoleArn, BaselineRoleArn, RevalidatorRoleArn), and the role must be allowed sts:AssumeRole on it")
    } else if hops.iter().any(|(.., h)| matches!(h, Hop::Unknown(_))) {
        Check::new(NAME, Status::NotChecked, found)
    } else {
        Check::new(NAME, Status::Ok, found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::checkpoint::CHECKPOINT_LAYOUT;
    use crate::ports::layout::{IndexShape, KeyPart, KeySchema, StreamShape};
    use crate::ports::mappings::Mapping;
    use crate::preflight::{assess, Known, Report};

    fn keys(partition: (&str, &str), sort: Option<(&str, &str)>) -> KeySchema {
        let part = |(n, t): (&str, &str)| KeyPart {
            name: n.into(),
            attribute_type: t.into(),
        };
        KeySchema {
            partition: part(partition),
            sort: sort.map(part),
        }
    }

    fn table(region: &str, created: i64) -> TableShape {
        TableShape {
            arn: Some(format!(
                "arn:aws:dynamodb:{region}:111111111111:table/Orders"
            )),
            status: "ACTIVE".into(),
            created_ms: Some(created),
            keys: keys(("customerId", "S"), Some(("orderId", "N"))),
            indexes: vec![],
            stream: None,
            read_capacity: ReadCapacity::OnDemand {
                max_read_units: None,
            },
            replica_regions: vec![],
            global_table_version: None,
        }
    }

    /// A clean pair: the source with a NEW_AND_OLD_IMAGES stream, nothing else to say.
    fn clean() -> Facts {
        let mut source = table("us-east-1", 1);
        source.stream = Some(StreamShape {
            arn: "arn:aws:dynamodb:us-east-1:111111111111:table/Orders/stream/L".into(),
            view_type: "NEW_AND_OLD_IMAGES".into(),
        });
        Facts {
            source: TableFacts {
                side: "Orders (this account, us-east-1)".into(),
                table: Ok(source),
                ttl: Ok(None),
            },
            other: TableFacts {
                side: "Orders (account 2, us-east-1)".into(),
                table: Ok(table("us-east-1", 2)),
                ttl: Ok(None),
            },
            same_table: None,
            recheck_source: true,
            verifier_elsewhere: false,
            stream_policy: None,
            mappings: Some(Ok(vec![])),
            poller: false,
            other_readers: 0,
            point_in_time_recovery: Ok(true),
            checkpoint: None,
            findings: None,
            max_read_units: 100.0,
            processes: 1,
            roles: vec![],
        }
    }

    fn denied(call: &str) -> Unchecked {
        Unchecked::new(call, "AccessDeniedException: not authorized")
    }

    fn check(facts: &Facts, name: &str) -> Check {
        let found: Vec<Check> = assess(facts)
            .into_iter()
            .filter(|c| c.name == name)
            .collect();
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        found[0].clone()
    }

    fn mapping(function: &str, state: &str) -> Mapping {
        Mapping {
            uuid: "u".into(),
            function: function.into(),
            state: state.into(),
            last_modified_ms: None,
            batching_window_s: None,
            last_processing_result: Some("OK".into()),
        }
    }

    #[test]
    fn a_clean_pair_fails_and_warns_nothing() {
        let report = Report {
            checks: assess(&clean()),
        };
        assert!(!report.failed(), "{}", report.to_text());
        assert_eq!(report.count(Status::Warn), 0, "{}", report.to_text());
        assert_eq!(report.count(Status::NotChecked), 0, "{}", report.to_text());
        let json = report.to_json();
        assert_eq!(json["failed"], 0);
        assert!(json["checks"][0]["name"] == "source table" && json["checks"][0]["status"] == "OK");
    }

    #[test]
    fn a_table_that_cannot_be_described_fails_and_what_needs_it_is_not_checked() {
        let mut facts = clean();
        facts.other.table = Err(denied("DescribeTable on Orders"));
        let report = Report {
            checks: assess(&facts),
        };
        let other = check(&facts, "other side");
        assert_eq!(other.status, Status::Fail);
        assert!(
            other.found.contains("not reachable")
                && other.todo.unwrap().contains("VERIFY_ROLE_ARN")
        );
        for name in ["key schema", "secondary indexes", "global table"] {
            assert_eq!(check(&facts, name).status, Status::NotChecked, "{name}");
        }
        assert_eq!(report.count(Status::Fail), 1, "{}", report.to_text());
    }

    #[test]
    fn calls_that_cannot_be_made_are_not_checked_and_never_fail_the_run() {
        let mut facts = clean();
        facts.source.ttl = Err(denied("DescribeTimeToLive on Orders"));
        facts.point_in_time_recovery = Err(denied("DescribeContinuousBackups on Orders"));
        facts.mappings = Some(Err(denied("lambda:ListEventSourceMappings")));
        facts.verifier_elsewhere = true;
        facts.stream_policy = Some(Err(denied("GetResourcePolicy on the stream")));
        facts.roles = vec![RoleProbe {
            role: "arn:aws:iam::1:role/verifier".into(),
            hops: Err(denied("sts:AssumeRole")),
        }];
        let report = Report {
            checks: assess(&facts),
        };
        assert_eq!(report.count(Status::NotChecked), 5, "{}", report.to_text());
        assert!(!report.failed(), "{}", report.to_text());
        let ttl = check(&facts, "time to live");
        assert!(ttl.found.contains("DescribeTimeToLive") && ttl.found.contains("AccessDenied"));
    }

    #[test]
    fn keys_of_other_names_or_types_fail_and_other_indexes_warn() {
        let mut facts = clean();
        if let Ok(t) = &mut facts.other.table {
            t.keys = keys(("customerId", "S"), Some(("orderId", "S")));
            t.indexes = vec![IndexShape {
                name: "byStatus".into(),
                global: true,
                keys: keys(("status", "S"), None),
                projection: "ALL".into(),
            }];
        }
        let key = check(&facts, "key schema");
        assert_eq!(key.status, Status::Fail);
        assert!(key.found.contains("orderId N (sort)") && key.found.contains("orderId S (sort)"));
        let indexes = check(&facts, "secondary indexes");
        assert_eq!(indexes.status, Status::Warn);
        assert!(
            indexes
                .found
                .contains("source: none; other side: GSI byStatus"),
            "{indexes:?}"
        );
    }

    #[test]
    fn ttl_on_one_side_or_on_another_attribute_warns() {
        let mut facts = clean();
        facts.other.ttl = Ok(Some("expiresAt".into()));
        assert_eq!(check(&facts, "time to live").status, Status::Warn);
        facts.source.ttl = Ok(Some("ttl".into()));
        assert_eq!(check(&facts, "time to live").status, Status::Warn);
        facts.source.ttl = Ok(Some("expiresAt".into()));
        assert_eq!(check(&facts, "time to live").status, Status::Ok);
    }

    #[test]
    fn a_stream_without_new_images_needs_recheck_source_and_no_stream_means_baseline_only() {
        let mut facts = clean();
        let view = |facts: &mut Facts, v: &str| {
            if let Ok(t) = &mut facts.source.table {
                t.stream.as_mut().unwrap().view_type = v.into();
            }
        };
        view(&mut facts, "NEW_IMAGE");
        assert_eq!(check(&facts, "stream").status, Status::Ok);
        for v in ["KEYS_ONLY", "OLD_IMAGE"] {
            view(&mut facts, v);
            facts.recheck_source = false;
            let warned = check(&facts, "stream");
            assert_eq!(warned.status, Status::Warn);
            assert!(warned.found.contains("RECHECK_SOURCE=true"));
            facts.recheck_source = true;
            assert_eq!(check(&facts, "stream").status, Status::Info);
        }
        if let Ok(t) = &mut facts.source.table {
            t.stream = None;
        }
        let none = check(&facts, "stream");
        assert!(none.status == Status::Warn && none.found.contains("only the baseline"));
    }

    #[test]
    fn a_verifier_in_the_other_account_needs_a_stream_policy_that_lets_it_read() {
        let mut facts = clean();
        facts.verifier_elsewhere = true;
        facts.stream_policy = Some(Ok(None));
        assert_eq!(check(&facts, "stream policy").status, Status::Warn);
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::2:role/verifier"},"Action":["dynamodb:DescribeStream","dynamodb:GetRecords","dynamodb:GetShardIterator"],"Resource":"*"}]}"#;
        facts.stream_policy = Some(Ok(Some(policy.into())));
        // Without the verifier's role, the principals are shown, not judged.
        let shown = check(&facts, "stream policy");
        assert!(
            shown.status == Status::Info && shown.found.contains("--as-deployed"),
            "{shown:?}"
        );
        let deployed = |role: &str| RoleProbe {
            role: role.into(),
            hops: Ok(Vec::new()),
        };
        facts.roles = vec![deployed("arn:aws:iam::2:role/verifier")];
        let ok = check(&facts, "stream policy");
        assert!(ok.status == Status::Ok && ok.found.contains("arn:aws:iam::2:role/verifier"));
        // Someone else's role only: not the verifier.
        facts.roles = vec![deployed("arn:aws:iam::3:role/verifier")];
        assert_eq!(check(&facts, "stream policy").status, Status::Warn);
        // The verifier's account as the principal, and a wildcard action, let it read.
        let by_account = policy
            .replace("arn:aws:iam::2:role/verifier", "arn:aws:iam::3:root")
            .replace("\"dynamodb:GetRecords\"", "\"dynamodb:Get*\"");
        facts.stream_policy = Some(Ok(Some(by_account)));
        assert_eq!(check(&facts, "stream policy").status, Status::Ok);
        // A Deny on reads is not evaluated: a WARN.
        let denied = policy.replace(
            "]}",
            r#",{"Effect":"Deny","Principal":"*","Action":"dynamodb:GetRecords","Resource":"*"}]}"#,
        );
        facts.roles = vec![deployed("arn:aws:iam::2:role/verifier")];
        facts.stream_policy = Some(Ok(Some(denied)));
        assert_eq!(check(&facts, "stream policy").status, Status::Warn);
        let describe_only = policy.replace("\"dynamodb:GetRecords\",", "");
        facts.stream_policy = Some(Ok(Some(describe_only)));
        assert_eq!(check(&facts, "stream policy").status, Status::Warn);
        facts.verifier_elsewhere = false;
        facts.stream_policy = None;
        assert!(assess(&facts).iter().all(|c| c.name != "stream policy"));
    }

    #[test]
    fn more_than_two_readers_of_a_shard_warn_counting_the_poller_and_other_readers() {
        let mut facts = clean();
        facts.mappings = Some(Ok(vec![
            mapping("verifier", "Enabled"),
            mapping("replicator", "Enabled"),
            mapping("old", "Disabled"),
        ]));
        let two = check(&facts, "stream readers");
        assert!(
            two.status == Status::Ok && two.found.ends_with("readers of each shard: 2"),
            "{two:?}"
        );
        facts.poller = true;
        let three = check(&facts, "stream readers");
        assert!(
            three.status == Status::Warn && three.found.contains("--poller"),
            "{three:?}"
        );
        // Without the mappings, what is known already can be too many.
        facts.mappings = Some(Err(denied("lambda:ListEventSourceMappings")));
        facts.other_readers = 2;
        assert_eq!(check(&facts, "stream readers").status, Status::Warn);
        facts.other_readers = 1;
        assert_eq!(check(&facts, "stream readers").status, Status::NotChecked);
    }

    #[test]
    fn point_in_time_recovery_is_information_either_way() {
        let mut facts = clean();
        facts.point_in_time_recovery = Ok(false);
        let off = check(&facts, "point-in-time recovery");
        assert!(off.status == Status::Info && off.found.contains("export"));
    }

    #[test]
    fn the_verifiers_own_tables_fail_when_missing_or_of_another_layout_and_say_run_init() {
        let mut facts = clean();
        let own = |table: Known<TableShape>| OwnTable {
            name: "Checkpoints".into(),
            layout: CHECKPOINT_LAYOUT,
            table,
            ttl: Ok(None),
        };
        facts.checkpoint = Some(own(Err(Unchecked::new(
            "DescribeTable on Checkpoints",
            "ResourceNotFoundException",
        ))));
        let missing = check(&facts, "checkpoint table");
        assert!(
            missing.status == Status::Fail && missing.todo.unwrap().contains("ddb-verify init")
        );
        facts.checkpoint = Some(own(Ok(table("us-east-1", 3))));
        let wrong = check(&facts, "checkpoint table");
        assert!(
            wrong.status == Status::Fail && wrong.found.contains("streamArn S"),
            "{wrong:?}"
        );
        let mut right = table("us-east-1", 3);
        right.keys = CHECKPOINT_LAYOUT.key_schema();
        facts.checkpoint = Some(own(Ok(right.clone())));
        assert_eq!(check(&facts, "checkpoint table").status, Status::Ok);
        assert_eq!(check(&facts, "findings table").status, Status::Info);
        // Denied, not missing: not checked, and `init` is not what to do.
        facts.checkpoint = Some(own(Err(Unchecked::new(
            "DescribeTable on Checkpoints",
            "AccessDeniedException: not authorized",
        ))));
        assert_eq!(check(&facts, "checkpoint table").status, Status::NotChecked);
        // Its TTL not read: not OK either.
        facts.checkpoint = Some(OwnTable {
            ttl: Err(Unchecked::new(
                "DescribeTimeToLive on Checkpoints",
                "throttled",
            )),
            ..own(Ok(right))
        });
        assert_eq!(check(&facts, "checkpoint table").status, Status::NotChecked);
    }

    #[test]
    fn two_tables_not_both_described_are_not_said_to_be_two() {
        let mut facts = clean();
        facts.other.table = Err(Unchecked::new("DescribeTable on Orders", "AccessDenied"));
        assert_eq!(check(&facts, "two tables").status, Status::NotChecked);
    }

    #[test]
    fn a_read_budget_above_half_of_a_tables_read_capacity_warns_and_on_demand_informs() {
        let mut facts = clean();
        if let Ok(t) = &mut facts.other.table {
            t.read_capacity = ReadCapacity::Provisioned { read_units: 150 };
        }
        let budgets: Vec<Check> = assess(&facts)
            .into_iter()
            .filter(|c| c.name == "read budget")
            .collect();
        assert_eq!(budgets[0].status, Status::Info);
        assert_eq!(budgets[1].status, Status::Warn);
        assert!(budgets[1].todo.as_deref().unwrap().contains("at most 75"));
        facts.max_read_units = 75.0;
        let budgets: Vec<Check> = assess(&facts)
            .into_iter()
            .filter(|c| c.name == "read budget")
            .collect();
        assert_eq!(budgets[1].status, Status::Ok);
        if let Ok(t) = &mut facts.source.table {
            t.read_capacity = ReadCapacity::OnDemand {
                max_read_units: Some(100),
            };
        }
        let budgets: Vec<Check> = assess(&facts)
            .into_iter()
            .filter(|c| c.name == "read budget")
            .collect();
        assert_eq!(budgets[0].status, Status::Warn, "{budgets:?}");
        // Forty segment functions at 5 units each read 200 a second: above half of 150.
        facts.max_read_units = 5.0;
        facts.processes = 40;
        let budgets: Vec<Check> = assess(&facts)
            .into_iter()
            .filter(|c| c.name == "read budget")
            .collect();
        assert_eq!(budgets[1].status, Status::Warn, "{budgets:?}");
        assert!(
            budgets[1].found.contains("× 40 processes = 200"),
            "{budgets:?}"
        );
        assert!(budgets[1].todo.as_deref().unwrap().contains("at most 1"));
    }

    #[test]
    fn the_other_side_as_a_replica_of_the_source_is_recognised_and_named() {
        let mut facts = clean();
        if let Ok(t) = &mut facts.source.table {
            t.replica_regions = vec!["eu-west-1".into()];
            t.global_table_version = Some("2019.11.21".into());
        }
        let elsewhere = check(&facts, "global table");
        assert!(elsewhere.status == Status::Info && elsewhere.found.contains("not one of them"));
        facts.other.table = Ok(table("eu-west-1", 2));
        // The other side's region only: possibly the replica.
        let possibly = check(&facts, "global table");
        assert!(
            possibly.found.contains("possibly that replica"),
            "{possibly:?}"
        );
        // Its own replicas name the source's region back: the replica.
        if let Ok(t) = &mut facts.other.table {
            t.replica_regions = vec!["us-east-1".into()];
        }
        let replica = check(&facts, "global table");
        assert!(
            replica.status == Status::Info
                && replica
                    .found
                    .contains("replica of the source in eu-west-1 (version 2019.11.21)"),
            "{replica:?}"
        );
    }

    #[test]
    fn one_table_compared_with_itself_fails_by_configuration_or_by_arn_and_creation_time() {
        let mut facts = clean();
        facts.same_table = Some("VERIFY_TABLE_NAME names the very table verified".into());
        assert_eq!(check(&facts, "two tables").status, Status::Fail);
        facts.same_table = None;
        facts.other.table = Ok(table("us-east-1", 1));
        assert_eq!(check(&facts, "two tables").status, Status::Fail);
        // The same ARN created at another time (DynamoDB Local's accounts): two tables.
        facts.other.table = Ok(table("us-east-1", 9));
        assert_eq!(check(&facts, "two tables").status, Status::Ok);
    }

    #[test]
    fn a_deployed_role_the_other_accounts_role_refuses_fails_and_one_it_trusts_is_ok() {
        let mut facts = clean();
        let probe = |hop: Hop| RoleProbe {
            role: "arn:aws:iam::1:role/revalidator".into(),
            hops: Ok(vec![(
                "VERIFY_ROLE_ARN",
                "arn:aws:iam::2:role/verify".into(),
                hop,
            )]),
        };
        facts.roles = vec![
            probe(Hop::Assumed),
            probe(Hop::Denied("AccessDenied".into())),
        ];
        let roles: Vec<Check> = assess(&facts)
            .into_iter()
            .filter(|c| c.name == "deployed role")
            .collect();
        assert_eq!(roles[0].status, Status::Ok);
        assert_eq!(roles[1].status, Status::Fail);
        assert!(roles[1]
            .todo
            .as_deref()
            .unwrap()
            .contains("RevalidatorRoleArn"));
        facts.roles = vec![probe(Hop::Unknown(denied("sts:AssumeRole")))];
        assert_eq!(check(&facts, "deployed role").status, Status::NotChecked);
    }
}
