//! The composition root: each function and the CLI's services built from their configuration,
//! with the AWS adapters behind the ports. Only the binaries (`src/bin/`) and the CLI use it; the
//! adapters (`aws`) and the features (`baseline`, `poller`, `revalidate`, `lambda::handler`)
//! know nothing of each other until they meet here.

use crate::aws::checkpoints::DynamoDbCheckpoints;
use crate::aws::clients;
use crate::aws::describe::StreamLocator;
use crate::aws::findings::DynamoDbFindings;
use crate::aws::reader::DynamoDbReader;
use crate::aws::scanner::DynamoDbScanner;
use crate::aws::streams::DynamoDbStreams;
use crate::aws::ttl::DynamoDbTimeToLive;
use crate::aws::writer::DynamoDbWriter;
use crate::baseline::{Baseline, BaselineParts};
use crate::config::{
    BaselineConfig, Config, PollerConfig, RepairConfig, RevalidatorConfig, StreamSelector,
};
use crate::lambda::handler::StreamVerifier;
use crate::lambda::pairs::Verifiers;
use crate::poller::Poller;
use crate::ports::findings::FindingOrigin;
use crate::repair::{RepairParts, Repairer};
use crate::report::findings::FindingsWriter;
use crate::revalidate::Revalidator;
use crate::verify::Verifier;

/// The engine reading both accounts' tables through DynamoDB.
pub type AwsVerifier = Verifier<DynamoDbReader>;
/// The shard poller with every seam on AWS.
pub type AwsPoller = Poller<DynamoDbStreams, DynamoDbCheckpoints, DynamoDbReader, DynamoDbFindings>;

/// The stream verifier's engine: clients for both accounts from the configuration.
pub async fn verifier(config: Config) -> AwsVerifier {
    let (source, target) = clients::dynamodb_clients(&config).await;
    Verifier::new(
        config,
        DynamoDbReader::new(target),
        DynamoDbReader::new(source),
    )
}

/// The stream verifier as the Lambda function runs it: the engine, and the findings store when
/// `FINDINGS_TABLE` is set (in the function's own account; coverage under the function's name).
pub async fn stream_verifier(config: Config) -> StreamVerifier<DynamoDbReader, DynamoDbFindings> {
    let findings_table = config.findings_table.clone();
    let (source, target) = clients::dynamodb_clients(&config).await;
    let configured = config.ttl_attribute.is_some();
    let verifier = Verifier::new(
        config,
        DynamoDbReader::new(target),
        DynamoDbReader::new(source.clone()),
    );
    let mut handler = StreamVerifier::new(verifier);
    if !configured {
        // The events name the source table: its TTL setting is read on the first batch.
        let port = DynamoDbTimeToLive::new(source);
        handler = handler.with_ttl_lookup(Box::new(move |table| {
            let port = port.clone();
            Box::pin(async move { crate::ports::ttl::resolve(None, &port, &table).await })
        }));
    }
    let writer = match findings_table {
        None => None,
        Some(table) => {
            let own = aws_sdk_dynamodb::Client::new(&clients::source_sdk_config().await);
            Some(FindingsWriter::new(
                DynamoDbFindings::new(own, table),
                FindingOrigin::Stream,
                None,
            ))
        }
    };
    let name =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "stream-verifier".to_string());
    handler.with_findings(writer, name)
}

/// The stream verifier function's verifiers: one per pair of `pairs` (`TABLE_PAIRS`), each with
/// the pair standing for `SOURCE_TABLE_NAME`, `VERIFY_TABLE_NAME` and `IGNORE_ATTRIBUTES` over
/// `lookup`; without pairs, one from `lookup` alone, for whatever table it is attached to.
pub async fn stream_verifiers(
    pairs: Option<Vec<crate::config::pairs::TablePair>>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<AwsVerifiers, crate::config::ConfigError> {
    let Some(pairs) = pairs else {
        let config = Config::from_lookup(&lookup)?;
        return Ok(Verifiers::One(Box::new(stream_verifier(config).await)));
    };
    let mut by_table = std::collections::HashMap::new();
    for pair in pairs {
        let config = Config::from_lookup(|name| pair.value(name, &lookup)).map_err(|e| {
            crate::config::ConfigError::Pairs {
                why: format!("TABLE_PAIRS pair {}: {e}", pair.name()),
            }
        })?;
        by_table.insert(pair.name(), stream_verifier(config).await);
    }
    Ok(Verifiers::ByTable(by_table))
}

/// The stream verifier function's verifiers on AWS.
pub type AwsVerifiers = Verifiers<DynamoDbReader, DynamoDbFindings>;

/// The baseline compare with every seam on AWS.
pub type AwsBaseline =
    Baseline<DynamoDbReader, DynamoDbScanner, DynamoDbCheckpoints, DynamoDbFindings>;

/// The baseline compare: the source table (this account, or `SOURCE_ROLE_ARN`), the other side
/// (`VERIFY_*`), and the checkpoint table in this account.
pub async fn baseline(mut config: BaselineConfig) -> AwsBaseline {
    let (source, target) = clients::dynamodb_clients(&config.verify).await;
    config.verify.ttl_attribute =
        ttl_attribute(&config.verify, &source, &config.source_table).await;
    let own_config = clients::source_sdk_config().await;
    let region = own_config.region().map(|r| r.to_string());
    let own = aws_sdk_dynamodb::Client::new(&own_config);
    let parts = BaselineParts {
        source_reader: DynamoDbReader::new(source.clone()),
        source_scanner: DynamoDbScanner::new(source),
        target_reader: DynamoDbReader::new(target.clone()),
        target_scanner: DynamoDbScanner::new(target),
        store: DynamoDbCheckpoints::new(own.clone(), &config.checkpoint_table),
    };
    let findings_table = config.verify.findings_table.clone();
    let baseline = Baseline::new(config, parts).in_region(region);
    let name = baseline.table_name();
    let writer = findings_table.map(|table| {
        FindingsWriter::new(
            DynamoDbFindings::new(own, table),
            FindingOrigin::Baseline,
            Some(name),
        )
    });
    baseline.with_findings(writer)
}

/// The revalidator with every seam on AWS.
pub type AwsRevalidator = Revalidator<DynamoDbReader, DynamoDbFindings>;

/// The revalidator: the source table (this account, or `SOURCE_ROLE_ARN`), the other side
/// (`VERIFY_*`), and the findings table in this account.
pub async fn revalidator(mut config: RevalidatorConfig) -> AwsRevalidator {
    let (source, target) = clients::dynamodb_clients(&config.verify).await;
    config.verify.ttl_attribute =
        ttl_attribute(&config.verify, &source, &config.source_table).await;
    let own = aws_sdk_dynamodb::Client::new(&clients::source_sdk_config().await);
    let store = DynamoDbFindings::new(own, config.findings_table.clone());
    Revalidator::new(
        config,
        DynamoDbReader::new(target),
        DynamoDbReader::new(source),
        store,
    )
}

/// The scheduled revalidator's work, for one pair or for every pair of `TABLE_PAIRS`: each
/// pair's open findings due again, then its readiness (emitted as metrics, under the pair's
/// `VerifyTable`).
pub struct ScheduledRevalidation {
    pairs: Vec<(AwsRevalidator, String)>,
    sources: ReadinessSources,
    /// Whether the answer lists pairs (`TABLE_PAIRS` was set) or is the one pair's report.
    many: bool,
}

impl ScheduledRevalidation {
    /// From each pair's configuration (one, without `TABLE_PAIRS`); readiness in this process's
    /// account, the source tables described as the first pair's configuration reaches them.
    pub async fn new(configs: Vec<RevalidatorConfig>, many: bool) -> ScheduledRevalidation {
        let first = &configs[0];
        let (source, _) = clients::dynamodb_clients(&first.verify).await;
        let sources = ReadinessSources::new(
            &first.findings_table,
            first.failure_queue_url.as_deref(),
            source,
        )
        .await;
        let mut pairs = Vec::new();
        for config in configs {
            let api_name = config.source_table.clone();
            pairs.push((revalidator(config).await, api_name));
        }
        ScheduledRevalidation {
            pairs,
            sources,
            many,
        }
    }

    /// One scheduled run: every pair in turn, each with an equal share of the time left.
    pub async fn run(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<serde_json::Value, crate::revalidate::RevalidateError> {
        let mut answers = Vec::new();
        let mut failed = None;
        for (i, (revalidator, api_name)) in self.pairs.iter().enumerate() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let share = left / u32::try_from(self.pairs.len() - i).unwrap_or(u32::MAX);
            let run =
                crate::revalidate::scheduled(revalidator, tokio::time::Instant::now() + share)
                    .await;
            // One pair's failure stops neither the others nor its own readiness (never GO
            // without proof); the run fails at the end, with the first.
            let mut answer = match run {
                Ok(answer) => answer,
                Err(e) => {
                    let text = crate::shared::error_chain(&e);
                    tracing::error!(table = revalidator.table_name(), error = %text, "revalidation failed");
                    failed.get_or_insert(e);
                    serde_json::json!({ "error": text })
                }
            };
            self.readiness_into(&mut answer, revalidator, api_name)
                .await;
            answers.push(answer);
        }
        if let Some(e) = failed {
            return Err(e);
        }
        if !self.many {
            return Ok(answers.remove(0));
        }
        let ready = answers.iter().all(|a| a["ready"] == true);
        Ok(serde_json::json!({"ready": ready, "pairs": answers}))
    }

    /// The pair's readiness, emitted (`Ready`, a metric per check) and added to its answer.
    async fn readiness_into(
        &self,
        answer: &mut serde_json::Value,
        revalidator: &AwsRevalidator,
        api_name: &str,
    ) {
        use crate::readiness::{Readiness, ReadinessOptions};
        let table = revalidator.table_name();
        let readiness = self
            .sources
            .assess(table, api_name, &ReadinessOptions::default())
            .await;
        let (ready, reasons) = match &readiness {
            Ok(r) => (r.ready, r.reasons().iter().map(|s| s.to_string()).collect()),
            // Not assessed is never GO: Ready 0, and why.
            Err(e) => (false, vec![format!("readiness could not be read: {e}")]),
        };
        let metrics = match &readiness {
            Ok(r) => r.metrics(),
            Err(_) => Readiness::not_assessed_metrics(),
        };
        crate::report::emf::emit(&revalidator.config().verify, &metrics);
        answer["table"] = table.into();
        answer["ready"] = ready.into();
        answer["reasons"] = serde_json::json!(reasons);
    }
}

/// The repair with every seam on AWS.
pub type AwsRepairer = Repairer<DynamoDbReader, DynamoDbWriter, DynamoDbFindings>;

/// The repair: the revalidator's tables and findings store, and the other side written through
/// `REPAIR_ROLE_ARN` when set (else the other side's own credentials).
pub async fn repairer(mut config: RepairConfig) -> AwsRepairer {
    let (source, target) = clients::dynamodb_clients(&config.revalidator.verify).await;
    config.revalidator.verify.ttl_attribute = ttl_attribute(
        &config.revalidator.verify,
        &source,
        &config.revalidator.source_table,
    )
    .await;
    let verify = &config.revalidator.verify;
    let own_config = clients::source_sdk_config().await;
    let writer = match &config.role_arn {
        Some(role_arn) => {
            let access = clients::AccountAccess {
                role_arn: Some(role_arn),
                external_id: config.role_external_id.as_deref(),
                region: verify.target_access.region.as_deref(),
                ..Default::default()
            };
            aws_sdk_dynamodb::Client::new(&clients::account_sdk_config(&access, &own_config).await)
        }
        None => target.clone(),
    };
    let own = aws_sdk_dynamodb::Client::new(&own_config);
    let parts = RepairParts {
        source: DynamoDbReader::new(source),
        target: DynamoDbReader::new(target),
        writer: DynamoDbWriter::new(writer),
        store: DynamoDbFindings::new(own, config.revalidator.findings_table.clone()),
    };
    Repairer::new(config, parts)
}

/// What readiness reads on AWS: the findings store, the source table's current stream
/// (DescribeTable), the stream verifier's event source mappings (Lambda) and its failure queue
/// (SQS). The CLI's `readiness` and the scheduled revalidator assess through it.
pub struct ReadinessSources {
    pub store: DynamoDbFindings,
    /// Describes the source table.
    pub source: aws_sdk_dynamodb::Client,
    pub lambda: aws_sdk_lambda::Client,
    /// With writes frozen: the stream verifier's delivery metrics.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub queue: Option<crate::aws::queue::SqsFailureQueue>,
}

impl ReadinessSources {
    /// In this process's own account; the source table described through `source`.
    pub async fn new(
        findings_table: &str,
        failure_queue_url: Option<&str>,
        source: aws_sdk_dynamodb::Client,
    ) -> ReadinessSources {
        let own = clients::source_sdk_config().await;
        ReadinessSources {
            store: DynamoDbFindings::new(aws_sdk_dynamodb::Client::new(&own), findings_table),
            source,
            lambda: aws_sdk_lambda::Client::new(&own),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&own),
            queue: failure_queue_url.map(|url| {
                crate::aws::queue::SqsFailureQueue::new(aws_sdk_sqs::Client::new(&own), url)
            }),
        }
    }

    /// GO or NO-GO now for `table` (as findings name it), described as `api_name` (its name, or
    /// its ARN).
    pub async fn assess(
        &self,
        table: &str,
        api_name: &str,
        options: &crate::readiness::ReadinessOptions,
    ) -> Result<crate::readiness::Readiness, crate::ports::findings::FindingsError> {
        use crate::ports::mappings::MappingSource;
        use crate::readiness::{self, TableStream};
        let stream = match crate::aws::describe::enabled_stream(&self.source, api_name).await {
            Ok(Some(arn)) => TableStream::Current(arn),
            Ok(None) => TableStream::Disabled,
            Err(why) => TableStream::Unknown(why),
        };
        let mut input = readiness::gather(&self.store, table, stream).await?;
        input.failure_queue = readiness::read_failure_queue(self.queue.as_ref()).await;
        if let Some(stream) = readiness::needs_mappings(&input).map(str::to_string) {
            let lambda = crate::aws::mappings::LambdaMappings::new(self.lambda.clone());
            let found = lambda.mappings(&stream).await.map_err(|e| e.message);
            readiness::apply_mappings(&mut input, found, crate::shared::epoch_ms());
        }
        if let Some(stopped_at) = input.writes_stopped_at(options) {
            input.delivery = self.delivery(&input, stopped_at).await;
        }
        Ok(readiness::assess(
            &input,
            crate::shared::epoch_ms(),
            options,
        ))
    }
}

impl ReadinessSources {
    /// With writes frozen at `stopped_at`, Lambda's delivery metrics of each stream verifier
    /// function that covers the current stream.
    async fn delivery(
        &self,
        input: &crate::readiness::ReadinessInput,
        stopped_at: u64,
    ) -> Vec<crate::readiness::freeze::FunctionDelivery> {
        use crate::ports::delivery::DeliveryMetrics;
        let metrics = crate::aws::delivery::CloudWatchDelivery::new(
            self.cloudwatch.clone(),
            self.lambda.clone(),
        );
        let mut out = Vec::new();
        for (function, from) in crate::readiness::needs_delivery(input, stopped_at) {
            let read = metrics
                .delivery(&function, from, crate::shared::epoch_ms())
                .await;
            out.push(crate::readiness::freeze::FunctionDelivery {
                function,
                metrics: read.map_err(|e| e.message),
            });
        }
        out
    }
}

/// The shard poller, and where to find its stream on every run.
pub async fn poller(mut config: PollerConfig) -> (AwsPoller, StreamLocator) {
    let clients = clients::poller_clients(&config).await;
    let table = match &config.stream {
        // arn:...:table/NAME/stream/LABEL: the table's ARN is what comes before /stream/.
        StreamSelector::Arn(arn) => arn.split("/stream/").next().unwrap_or(arn).to_string(),
        StreamSelector::SourceTable(table) => table.clone(),
    };
    config.verify.ttl_attribute = ttl_attribute(&config.verify, &clients.source, &table).await;
    let verifier = Verifier::new(
        config.verify.clone(),
        DynamoDbReader::new(clients.target),
        DynamoDbReader::new(clients.source.clone()),
    );
    let locator = StreamLocator::new(config.stream.clone(), clients.source);
    let findings = config.verify.findings_table.clone().map(|table| {
        FindingsWriter::new(
            DynamoDbFindings::new(clients.own.clone(), table),
            FindingOrigin::Poller,
            None,
        )
    });
    let checkpoints = DynamoDbCheckpoints::new(clients.own, &config.checkpoint_table);
    let streams = DynamoDbStreams::new(clients.streams);
    let poller = Poller::new(streams, checkpoints, verifier, config);
    (poller.with_findings(findings), locator)
}

/// The TTL attribute the engine judges expiry by: `TTL_ATTRIBUTE`, else the source table's
/// (DescribeTimeToLive through `source`, the client that reads it), once per process.
async fn ttl_attribute(
    config: &Config,
    source: &aws_sdk_dynamodb::Client,
    source_table: &str,
) -> Option<String> {
    let port = DynamoDbTimeToLive::new(source.clone());
    crate::ports::ttl::resolve(config.ttl_attribute.as_deref(), &port, source_table).await
}
