use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
#[tokio::main]
async fn main() {
    let ep = std::env::args().nth(1).unwrap();
    let config = SdkConfig::builder().behavior_version(BehaviorVersion::latest()).region(Region::new("us-east-1")).endpoint_url(ep)
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new("sourceaccount","secret",None,None,"t"))).build();
    let c = aws_sdk_dynamodb::Client::new(&config);
    eprintln!("listing");
    let r = c.list_tables().send().await;
    eprintln!("{r:?}");
}
