//! The two-account wiring as the function builds it (`clients::dynamodb_clients`): the function's own
//! credentials from the environment, the other account's from `VERIFY_PROFILE` in the shared config
//! file, even though environment credentials are set too. Against DynamoDB Local, where each access
//! key id is a separate database. Its own test binary, because it sets process environment variables.

mod common;

use aws_sdk_dynamodb::types::{ScalarAttributeType, StreamViewType};
use ddb_verify::aws::clients::dynamodb_clients;
use ddb_verify::config::Config;

#[test]
fn verify_profile_reaches_the_other_account() {
    let endpoint = common::endpoint();
    let config_file = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/local-aws-config");
    // Safe here: this binary has one test, and no other thread is running yet.
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", common::SOURCE_ACCOUNT),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", common::REGION),
        ("AWS_CONFIG_FILE", config_file),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
    ] {
        std::env::set_var(k, v);
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let source_only = common::unique("SourceOnly");
        let target_only = common::unique("TargetOnly");
        let keys = [("id", ScalarAttributeType::S)];
        common::create_table(
            &common::account(common::SOURCE_ACCOUNT),
            &source_only,
            &keys,
            Some(StreamViewType::KeysOnly),
        )
        .await;
        common::create_table(
            &common::account(common::TARGET_ACCOUNT),
            &target_only,
            &keys,
            None,
        )
        .await;

        let config = Config::from_lookup(|k| match k {
            "VERIFY_TABLE_NAME" => Some(target_only.clone()),
            "VERIFY_PROFILE" => Some("target-account".to_string()),
            _ => None,
        })
        .unwrap();
        let (source, target) = dynamodb_clients(&config).await;
        let exists = |client: aws_sdk_dynamodb::Client, table: String| async move {
            client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .is_ok()
        };
        assert!(
            exists(source.clone(), source_only.clone()).await,
            "source client reads the source account"
        );
        assert!(
            !exists(source, target_only.clone()).await,
            "source client must not see the other account"
        );
        assert!(
            exists(target.clone(), target_only).await,
            "VERIFY_PROFILE's client reads the other account"
        );
        assert!(
            !exists(target, source_only).await,
            "VERIFY_PROFILE's client must not see the source account"
        );
    });
}
