//! The two-account wiring as the function builds it (`clients::dynamodb_clients`): the function's own
//! credentials from the environment, the other account's from `VERIFY_PROFILE` in the shared config
//! file, even though environment credentials are set too. Against DynamoDB Local, where each access
//! key id is a separate database. The credentials come from process environment variables, which
//! tests sharing a process must not set: the test runs itself again as a child process of the test
//! binary with those variables, and the child does the checking.

use std::process::Command;

use aws_sdk_dynamodb::types::{ScalarAttributeType, StreamViewType};
use ddb_verify::aws::clients::dynamodb_clients;
use ddb_verify::config::Config;

/// Set in the child process, which then checks the clients (with the credentials in its environment).
const CHILD: &str = "DDB_VERIFY_TEST_PROFILE_CREDENTIALS_CHILD";

#[test]
fn verify_profile_reaches_the_other_account() {
    if std::env::var_os(CHILD).is_some() {
        return clients_reach_their_own_accounts();
    }
    let endpoint = crate::common::endpoint();
    let config_file = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/local-aws-config");
    let (_, this_module) = module_path!()
        .split_once("::")
        .expect("a module of the test binary");
    let this_test = format!("{this_module}::verify_profile_reaches_the_other_account");
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args([&this_test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .envs([
            ("AWS_ACCESS_KEY_ID", crate::common::SOURCE_ACCOUNT),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("AWS_REGION", crate::common::REGION),
            ("AWS_CONFIG_FILE", config_file),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
            ("DYNAMODB_LOCAL_ENDPOINT", endpoint),
        ])
        .output()
        .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the child failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test:\n{stdout}"
    );
}

fn clients_reach_their_own_accounts() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let source_only = crate::common::unique("SourceOnly");
        let target_only = crate::common::unique("TargetOnly");
        let keys = [("id", ScalarAttributeType::S)];
        crate::common::create_table(
            &crate::common::account(crate::common::SOURCE_ACCOUNT),
            &source_only,
            &keys,
            Some(StreamViewType::KeysOnly),
        )
        .await;
        crate::common::create_table(
            &crate::common::account(crate::common::TARGET_ACCOUNT),
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
