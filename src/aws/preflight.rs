//! `ddb-verify preflight`'s calls: [`gather`] reads both tables, their TTL, the source stream's
//! policy and readers, point-in-time recovery, the verifier's own tables, and with `--as-deployed`
//! acts as each function role; every call that fails becomes an [`Unchecked`] fact naming the call.
//! The checks themselves are `preflight::assess`'s (pure).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use super::tables::{self, call_error, error_code};
use crate::aws::mappings::LambdaMappings;
use crate::config::{PreflightConfig, Sides};
use crate::ports::checkpoint::CHECKPOINT_LAYOUT;
use crate::ports::findings::FINDINGS_LAYOUT;
use crate::ports::layout::{Layout, TableShape};
use crate::ports::mappings::MappingSource;
use crate::preflight::{Facts, Hop, Known, OwnTable, RoleProbe, TableFacts, Unchecked};

/// Session name of the roles preflight assumes (visible in CloudTrail).
const SESSION_NAME: &str = "ddb-verify-preflight";

/// What preflight is told beyond the variables (its flags).
#[derive(Debug, Clone, Default)]
pub struct GatherOptions {
    /// `--poller`.
    pub poller: bool,
    /// `--other-readers`.
    pub other_readers: u32,
    /// `--as-deployed`: the functions' execution roles.
    pub roles: Vec<String>,
    /// `--processes`: processes reading each table at once.
    pub processes: u32,
}

/// Calls that may go to a service the endpoint does not serve (Lambda, STS next to DynamoDB
/// Local) answer or fail within seconds, not after the SDK's default retries.
fn quick(config: &SdkConfig) -> SdkConfig {
    config
        .to_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .build()
}

/// A DynamoDB client whose calls end within half a minute: preflight never hangs on an endpoint
/// that takes the connection and never answers.
pub fn bounded(client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
    let config = client
        .config()
        .to_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Everything the checks need; never fails (a call that fails is a fact).
pub async fn gather(config: &PreflightConfig, sides: &Sides, options: &GatherOptions) -> Facts {
    let own = super::clients::source_sdk_config().await;
    let (source, other) = super::clients::dynamodb_clients(&config.verify).await;
    let (source, other) = (bounded(&source), bounded(&other));
    let own_dynamodb = bounded(&aws_sdk_dynamodb::Client::new(&own));
    let source_name = config.source_table.as_str();
    let source_facts = table_facts(&source, source_name, sides.source.to_string()).await;
    let other_name = config.verify.target_table.api_name.as_str();
    let other_facts = table_facts(&other, other_name, sides.other.to_string()).await;
    let stream = source_facts
        .table
        .as_ref()
        .ok()
        .and_then(|t| t.stream.as_ref())
        .map(|s| s.arn.clone());
    let verifier_elsewhere = config.verify.source_access.role_arn.is_some();
    let stream_policy = match (&stream, verifier_elsewhere) {
        (Some(arn), true) => Some(stream_policy(&source, arn).await),
        _ => None,
    };
    let mappings = match &stream {
        Some(arn) => Some(mappings(&own, arn).await),
        None => None,
    };
    let own_table = |name: &Option<String>, layout: Layout| {
        let client = own_dynamodb.clone();
        let name = name.clone();
        async move {
            match name {
                Some(name) => Some(own_table(&client, name, layout).await),
                None => None,
            }
        }
    };
    Facts {
        same_table: sides.refuse_same_table().err().map(|e| e.to_string()),
        recheck_source: config.verify.recheck_source,
        verifier_elsewhere,
        stream_policy,
        mappings,
        poller: options.poller,
        other_readers: options.other_readers,
        point_in_time_recovery: tables::point_in_time_recovery_on(&source, source_name)
            .await
            .map_err(|why| {
                Unchecked::new(format!("DescribeContinuousBackups on {source_name}"), why)
            }),
        checkpoint: own_table(&config.checkpoint_table, CHECKPOINT_LAYOUT).await,
        findings: own_table(&config.verify.findings_table, FINDINGS_LAYOUT).await,
        max_read_units: config.max_read_units,
        processes: options.processes,
        roles: probe_roles(&own, config, &options.roles).await,
        source: source_facts,
        other: other_facts,
    }
}

async fn describe(client: &aws_sdk_dynamodb::Client, table: &str) -> Known<TableShape> {
    tables::describe(client, table)
        .await
        .map_err(|why| Unchecked::new(format!("DescribeTable on {table}"), why))
}

/// The TTL attribute while TTL deletes by it (enabling, enabled or disabling), as
/// `aws::ttl::DynamoDbTimeToLive` reads it.
async fn ttl(client: &aws_sdk_dynamodb::Client, table: &str) -> Known<Option<String>> {
    let out = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| Unchecked::new(format!("DescribeTimeToLive on {table}"), call_error(&e)))?;
    let Some(description) = out.time_to_live_description else {
        return Ok(None);
    };
    let deletes = !matches!(
        description.time_to_live_status,
        None | Some(aws_sdk_dynamodb::types::TimeToLiveStatus::Disabled)
    );
    Ok(description.attribute_name.filter(|_| deletes))
}

async fn table_facts(client: &aws_sdk_dynamodb::Client, table: &str, side: String) -> TableFacts {
    TableFacts {
        side,
        table: describe(client, table).await,
        ttl: ttl(client, table).await,
    }
}

async fn own_table(client: &aws_sdk_dynamodb::Client, name: String, layout: Layout) -> OwnTable {
    OwnTable {
        table: describe(client, &name).await,
        ttl: ttl(client, &name).await,
        layout,
        name,
    }
}

/// The stream's resource policy: `Ok(None)` when it has none.
async fn stream_policy(
    client: &aws_sdk_dynamodb::Client,
    stream_arn: &str,
) -> Known<Option<String>> {
    match client
        .get_resource_policy()
        .resource_arn(stream_arn)
        .send()
        .await
    {
        Ok(out) => Ok(out.policy),
        Err(e) if error_code(&e) == Some("PolicyNotFoundException") => Ok(None),
        Err(e) => Err(Unchecked::new(
            format!("GetResourcePolicy on {stream_arn}"),
            call_error(&e),
        )),
    }
}

/// The event source mappings on the stream this account can list (Lambda, quickly).
async fn mappings(
    own: &SdkConfig,
    stream_arn: &str,
) -> Known<Vec<crate::ports::mappings::Mapping>> {
    let lambda = LambdaMappings::new(aws_sdk_lambda::Client::new(&quick(own)));
    lambda
        .mappings(stream_arn)
        .await
        .map_err(|e| Unchecked::new("lambda:ListEventSourceMappings", e.message))
}

/// Each function role, as itself: the roles the functions assume, tried through it.
async fn probe_roles(
    own: &SdkConfig,
    config: &PreflightConfig,
    roles: &[String],
) -> Vec<RoleProbe> {
    let verify = &config.verify;
    let hops: Vec<(&'static str, String, Option<String>)> = [
        (
            "VERIFY_ROLE_ARN",
            &verify.target_access.role_arn,
            &verify.target_access.external_id,
        ),
        (
            "SOURCE_ROLE_ARN",
            &verify.source_access.role_arn,
            &verify.source_access.external_id,
        ),
    ]
    .into_iter()
    .filter_map(|(variable, role, external_id)| {
        Some((variable, role.clone()?, external_id.clone()))
    })
    .collect();
    let own = quick(own);
    let mut out = Vec::new();
    for role in roles {
        out.push(probe_role(&own, role, &hops).await);
    }
    out
}

fn assume(role: &str, external_id: Option<&str>) -> aws_config::sts::AssumeRoleProviderBuilder {
    let builder = AssumeRoleProvider::builder(role).session_name(SESSION_NAME);
    match external_id {
        Some(id) => builder.external_id(id),
        None => builder,
    }
}

/// Assumes `role` from the operator's credentials, then through it each of `hops`.
async fn probe_role(
    own: &SdkConfig,
    role: &str,
    hops: &[(&'static str, String, Option<String>)],
) -> RoleProbe {
    let acting = assume(role, None).configure(own).build().await;
    if let Err(e) = acting.provide_credentials().await {
        return RoleProbe {
            role: role.to_string(),
            hops: Err(Unchecked::new(
                "sts:AssumeRole",
                crate::shared::error_chain(&e),
            )),
        };
    }
    let as_role = own
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(acting))
        .build();
    let mut answers = Vec::new();
    for (variable, arn, external_id) in hops {
        let next = assume(arn, external_id.as_deref())
            .configure(&as_role)
            .build()
            .await;
        let hop = match next.provide_credentials().await {
            Ok(_) => Hop::Assumed,
            Err(e) => {
                let why = crate::shared::error_chain(&e);
                match why.contains("AccessDenied") {
                    true => Hop::Denied(why),
                    false => Hop::Unknown(Unchecked::new("sts:AssumeRole", why)),
                }
            }
        };
        answers.push((*variable, arn.clone(), hop));
    }
    RoleProbe {
        role: role.to_string(),
        hops: Ok(answers),
    }
}
