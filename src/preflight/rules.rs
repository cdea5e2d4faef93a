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

/// The principals a policy lets read a stream's records (`dynamodb:GetRecords`).
pub fn stream_readers_allowed(policy: &str) -> Result<Vec<String>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(policy).map_err(|e| format!("the policy is not JSON: {e}"))?;
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(list) => list.clone(),
        one @ serde_json::Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    let strings = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(l) => l
                .iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut out = Vec::new();
    for s in statements.iter().filter(|s| s["Effect"] == "Allow") {
        let actions = strings(&s["Action"]);
        let reads = actions
            .iter()
            .any(|a| matches!(a.as_str(), "dynamodb:GetRecords" | "dynamodb:*" | "*"));
        if reads {
            match &s["Principal"] {
                serde_json::Value::String(any) => out.push(any.clone()),
                p => out.extend(strings(&p["AWS"])),
            }
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
            Ok(readers) => Check::new(
                NAME,
                Status::Ok,
                format!("the stream's resource policy lets {} read it", readers.join(", ")),
            ),
        },
    })
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
        Err(why) => {
            return Check::new(
                name,
                Status::Fail,
                format!("{} not reachable: {why}", own.name),
            )
            .todo(INIT)
        }
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
        _ => Check::new(
            name,
            Status::Ok,
            format!("{}: {}, key {}", own.name, t.status, t.keys),
        ),
    }
}

/// `MAX_READ_UNITS` against each table's read capacity: a WARN above half of it.
pub fn read_budget(facts: &Facts) -> Vec<Check> {
    const NAME: &str = "read budget";
    let budget = facts.max_read_units;
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
            None => Check::new(NAME, Status::Info, format!("{}: on demand; MAX_READ_UNITS={budget} per table per process", side.side)),
            Some((kind, units)) if budget > units as f64 / 2.0 => Check::new(
                NAME,
                Status::Warn,
                format!("{}: {kind} {units} read units; MAX_READ_UNITS={budget} is above half of it", side.side),
            )
            .todo(format!("set MAX_READ_UNITS to at most {} so the baseline and the revalidator leave the application its reads", units / 2)),
            Some((kind, units)) => Check::new(
                NAME,
                Status::Ok,
                format!("{}: {kind} {units} read units; MAX_READ_UNITS={budget} is at most half of it", side.side),
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
    if !other_region.is_empty() && s.replica_regions.iter().any(|r| r == other_region) {
        return Check::new(NAME, Status::Info, format!("the other side is a replica of the source in {other_region}{version}: DynamoDB replicates; the verifier proves what arrived, item by item"));
    }
    match (s.replica_regions.is_empty(), o.replica_regions.is_empty()) {
        (true, true) if version.is_empty() => Check::new(NAME, Status::Ok, "neither table is in a global table"),
        (false, _) => Check::new(NAME, Status::Info, format!("the source is a global table{version} with replicas in {}; the other side is not one of them", s.replica_regions.join(", "))),
        _ => Check::new(NAME, Status::Info, format!("the other side is in a global table{version} (replicas in {})", o.replica_regions.join(", "))),
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
        Check::new(NAME, Status::Fail, found).todo("the other account's role must trust this role with the external id: deploy templates/verify-role.yaml with every function role of the stack (VerifierRoleArn, BaselineRoleArn, RevalidatorRoleArn), and the role must be allowed sts:AssumeRole on it")
    } else if hops.iter().any(|(.., h)| matches!(h, Hop::Unknown(_))) {
        Check::new(NAME, Status::NotChecked, found)
    } else {
        Check::new(NAME, Status::Ok, found)
    }
}
