//! AWS clients for the two accounts: the function's own (the source table) and the other account's
//! (the verified table), from [`Config`].
//!
//! Endpoints come from aws-config's standard variables: `AWS_ENDPOINT_URL` (every service) or
//! `AWS_ENDPOINT_URL_DYNAMODB` (DynamoDB only), which is how the tests and the demo point at
//! DynamoDB Local.

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::{Config, PollerConfig, StreamSelector};

/// Session name the verifier uses when it assumes `VERIFY_ROLE_ARN` (visible in CloudTrail).
pub const ROLE_SESSION_NAME: &str = "dynamodb-migration-verifier";

/// The function's own account: default credential chain and region.
pub async fn source_sdk_config() -> SdkConfig {
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

/// The process's own region (`AWS_REGION`, the profile's, or the instance's), as its clients
/// resolve it; `None` when none is configured.
pub async fn default_region() -> Option<String> {
    aws_config::meta::region::RegionProviderChain::default_provider()
        .region()
        .await
        .map(|r| r.to_string())
}

/// Credentials and region for another account.
#[derive(Debug, Clone, Default)]
pub struct AccountAccess<'a> {
    pub profile: Option<&'a str>,
    pub role_arn: Option<&'a str>,
    pub external_id: Option<&'a str>,
    pub region: Option<&'a str>,
}

/// An account's config: the profile's credentials if set (explicitly, so the function's own
/// environment credentials do not win), then the role assumed on top of them if set, in the given
/// region or else the function's. Assumed-role credentials refresh by themselves.
pub async fn account_sdk_config(access: &AccountAccess<'_>, own: &SdkConfig) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = access.profile {
        loader = loader.profile_name(profile).credentials_provider(
            ProfileFileCredentialsProvider::builder()
                .profile_name(profile)
                .build(),
        );
    }
    let region = access
        .region
        .map(|r| Region::new(r.to_string()))
        .or_else(|| own.region().cloned());
    if let Some(region) = &region {
        loader = loader.region(region.clone());
    }
    let base = loader.load().await;
    let Some(role_arn) = access.role_arn else {
        return base;
    };
    let mut role = AssumeRoleProvider::builder(role_arn)
        .session_name(ROLE_SESSION_NAME)
        .configure(&base);
    if let Some(external_id) = access.external_id {
        role = role.external_id(external_id);
    }
    if let Some(region) = region {
        role = role.region(region);
    }
    let provider = role.build().await;
    base.into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build()
}

/// The other account (`VERIFY_PROFILE`, `VERIFY_ROLE_ARN`, `VERIFY_ROLE_EXTERNAL_ID`, `VERIFY_REGION`).
pub async fn target_sdk_config(config: &Config, source: &SdkConfig) -> SdkConfig {
    let access = &config.target_access;
    account_sdk_config(
        &AccountAccess {
            profile: access.profile.as_deref(),
            role_arn: access.role_arn.as_deref(),
            external_id: access.external_id.as_deref(),
            region: access.region.as_deref(),
        },
        source,
    )
    .await
}

/// DynamoDB clients for (source account, other account). The source is read with the function's
/// own credentials, or through `SOURCE_ROLE_ARN` when the function runs in the other account.
pub async fn dynamodb_clients(
    config: &Config,
) -> (aws_sdk_dynamodb::Client, aws_sdk_dynamodb::Client) {
    let own = source_sdk_config().await;
    let target = target_sdk_config(config, &own).await;
    let source = source_account_config(&config.source_access, own).await;
    (
        aws_sdk_dynamodb::Client::new(&source),
        aws_sdk_dynamodb::Client::new(&target),
    )
}

/// The source table's account as the functions reach it: this process's own credentials, or
/// `SOURCE_ROLE_ARN`'s (for a deployment in the other account).
pub async fn source_dynamodb(access: &crate::config::SourceAccess) -> aws_sdk_dynamodb::Client {
    let own = source_sdk_config().await;
    aws_sdk_dynamodb::Client::new(&source_account_config(access, own).await)
}

/// `own`, or `SOURCE_ROLE_ARN`'s role assumed on top of it (with its external id).
async fn source_account_config(access: &crate::config::SourceAccess, own: SdkConfig) -> SdkConfig {
    let Some(role_arn) = &access.role_arn else {
        return own;
    };
    let access = AccountAccess {
        role_arn: Some(role_arn),
        external_id: access.external_id.as_deref(),
        ..AccountAccess::default()
    };
    account_sdk_config(&access, &own).await
}

/// The shard poller's clients: the stream's account (`SOURCE_ROLE_ARN`, or its older name `STREAM_ROLE_ARN`: its stream, and its table
/// for `RECHECK_SOURCE`), the other account's table, and the checkpoint table in its own account.
pub struct PollerClients {
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub source: aws_sdk_dynamodb::Client,
    pub target: aws_sdk_dynamodb::Client,
    pub own: aws_sdk_dynamodb::Client,
}

pub async fn poller_clients(config: &PollerConfig) -> PollerClients {
    let own = source_sdk_config().await;
    // A stream ARN names its region; a table name is in the function's own.
    let stream_region = match &config.stream {
        StreamSelector::Arn(arn) => arn.split(':').nth(3),
        StreamSelector::SourceTable(_) => None,
    };
    let access = AccountAccess {
        role_arn: config.stream_role_arn.as_deref(),
        external_id: config.stream_role_external_id.as_deref(),
        region: stream_region,
        ..Default::default()
    };
    let stream_account = account_sdk_config(&access, &own).await;
    PollerClients {
        streams: aws_sdk_dynamodbstreams::Client::new(&stream_account),
        source: aws_sdk_dynamodb::Client::new(&stream_account),
        target: aws_sdk_dynamodb::Client::new(&target_sdk_config(&config.verify, &own).await),
        own: aws_sdk_dynamodb::Client::new(&own),
    }
}
