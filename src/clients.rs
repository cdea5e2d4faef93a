//! AWS clients for the two accounts: the function's own (the source table) and the other account's
//! (the verified table), from [`Config`].
//!
//! Endpoints come from aws-config's standard variables: `AWS_ENDPOINT_URL` (every service) or
//! `AWS_ENDPOINT_URL_DYNAMODB` (DynamoDB only), which is how the tests and the demo point at
//! DynamoDB Local.

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::Config;

/// Session name the verifier uses when it assumes `VERIFY_ROLE_ARN` (visible in CloudTrail).
pub const ROLE_SESSION_NAME: &str = "dynamodb-migration-verifier";

/// The function's own account: default credential chain and region.
pub async fn source_sdk_config() -> SdkConfig {
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

/// The other account: `VERIFY_PROFILE`'s credentials if set (explicitly, so the function's own
/// environment credentials do not win), then `VERIFY_ROLE_ARN` assumed on top of them if set, in
/// `VERIFY_REGION` or else the function's region. Assumed-role credentials refresh by themselves.
pub async fn target_sdk_config(config: &Config, source: &SdkConfig) -> SdkConfig {
    let access = &config.target_access;
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &access.profile {
        loader = loader.profile_name(profile).credentials_provider(
            ProfileFileCredentialsProvider::builder()
                .profile_name(profile)
                .build(),
        );
    }
    let region = access
        .region
        .clone()
        .map(Region::new)
        .or_else(|| source.region().cloned());
    if let Some(region) = &region {
        loader = loader.region(region.clone());
    }
    let base = loader.load().await;
    let Some(role_arn) = &access.role_arn else {
        return base;
    };
    let mut role = AssumeRoleProvider::builder(role_arn)
        .session_name(ROLE_SESSION_NAME)
        .configure(&base);
    if let Some(external_id) = &access.external_id {
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

/// DynamoDB clients for (source account, other account).
pub async fn dynamodb_clients(
    config: &Config,
) -> (aws_sdk_dynamodb::Client, aws_sdk_dynamodb::Client) {
    let source = source_sdk_config().await;
    let target = target_sdk_config(config, &source).await;
    (
        aws_sdk_dynamodb::Client::new(&source),
        aws_sdk_dynamodb::Client::new(&target),
    )
}
