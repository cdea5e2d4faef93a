//! Every AWS SDK call: clients for both accounts, and the adapters behind the read seams
//! ([`crate::source`]).

pub mod checkpoints;
pub mod clients;
pub mod reader;
pub mod streams;

use aws_smithy_types::error::display::DisplayErrorContext;

use crate::config::{Config, PollerConfig, StreamSelector};
use crate::poller::Poller;
use crate::source::stream::StreamError;
use crate::verify::Verifier;
use checkpoints::DynamoDbCheckpoints;
use reader::DynamoDbReader;
use streams::DynamoDbStreams;

/// The engine reading both accounts' tables through DynamoDB.
pub type AwsVerifier = Verifier<DynamoDbReader>;
/// The shard poller with every seam on AWS.
pub type AwsPoller = Poller<DynamoDbStreams, DynamoDbCheckpoints, DynamoDbReader>;

/// The stream verifier's engine: clients for both accounts from the configuration.
pub async fn verifier(config: Config) -> AwsVerifier {
    let (source, target) = clients::dynamodb_clients(&config).await;
    Verifier::new(
        config,
        DynamoDbReader::new(target),
        DynamoDbReader::new(source),
    )
}

/// The shard poller, and where to find its stream on every run.
pub async fn poller(config: PollerConfig) -> (AwsPoller, StreamLocator) {
    let clients = clients::poller_clients(&config).await;
    let verifier = Verifier::new(
        config.verify.clone(),
        DynamoDbReader::new(clients.target),
        DynamoDbReader::new(clients.source.clone()),
    );
    let locator = StreamLocator {
        selector: config.stream.clone(),
        client: clients.source,
    };
    let checkpoints = DynamoDbCheckpoints::new(clients.own, &config.checkpoint_table);
    let streams = DynamoDbStreams::new(clients.streams);
    (Poller::new(streams, checkpoints, verifier, config), locator)
}

/// Finds the stream the poller reads (`STREAM_ARN`, or `SOURCE_TABLE_NAME`'s current stream).
pub struct StreamLocator {
    selector: StreamSelector,
    client: aws_sdk_dynamodb::Client,
}

impl StreamLocator {
    /// The configured ARN, or the table's current stream (looked up every run: a stream disabled
    /// and enabled again gets a new ARN).
    pub async fn stream_arn(&self) -> Result<String, StreamError> {
        match &self.selector {
            StreamSelector::Arn(arn) => Ok(arn.clone()),
            StreamSelector::SourceTable(table) => latest_stream_arn(&self.client, table).await,
        }
    }
}

/// The table's current stream ARN, for `SOURCE_TABLE_NAME`.
pub async fn latest_stream_arn(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<String, StreamError> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| StreamError::NotFound {
            stream_arn: format!("of table {table} ({})", DisplayErrorContext(&e)),
        })?;
    out.table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| StreamError::NotFound {
            stream_arn: format!("of table {table} (the table has no stream enabled)"),
        })
}
