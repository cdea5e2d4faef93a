//! The local demo: two simulated accounts on DynamoDB Local, a source table written with deliberate
//! replication drift, its stream read with GetRecords and handed to the stream verifier as Lambda
//! would, then the verdicts, the EMF metrics and the Lambda response printed.
//!
//! Run it with `make demo` (which starts DynamoDB Local and sets the environment below).
//! The verifier is configured exactly as the Lambda function is: `Config::from_env()`, with the other
//! account reached through `VERIFY_PROFILE` (see scripts/local-aws-config).

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
use aws_sdk_dynamodb::Client;
use ddb_verify::aws::clients::{dynamodb_clients, source_sdk_config};
use ddb_verify::aws::reader::DynamoDbReader;
use ddb_verify::config::Config;
use ddb_verify::lambda::event::StreamEvent;
use ddb_verify::lambda::handler::{Invocation, StreamVerifier};
use ddb_verify::record::Item;
use ddb_verify::verify::{Outcome, Verdict, Verifier};
use ddb_verify_testkit::setup::{self, ORDER_KEYS};

type Error = Box<dyn std::error::Error + Send + Sync>;
/// A write in one account: put the item, or (without one) delete the key.
type Write<'a> = (&'a Client, Option<Item>, Item);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber_with_writer(std::io::stderr);
    let config = Config::from_env()?;
    let table = config.target_table.name.clone();
    let (source, target) = dynamodb_clients(&config).await;
    let streams = aws_sdk_dynamodbstreams::Client::new(&source_sdk_config().await);

    println!("== Two accounts on DynamoDB Local: table {table} in each, the source with a stream");
    let stream_arn = recreate_table(&source, &table, true)
        .await?
        .ok_or("source table has no stream")?;
    recreate_table(&target, &table, false).await?;

    println!("== Writing to the source, replicating to the target with deliberate drift");
    let key = |c: &str, o: &str| -> Item {
        [
            ("customerId".into(), AttributeValue::S(c.into())),
            ("orderId".into(), AttributeValue::N(o.into())),
        ]
        .into()
    };
    let order = |c: &str, o: &str, status: &str, total: &str| -> Item {
        let mut item = key(c, o);
        item.insert("status".into(), AttributeValue::S(status.into()));
        item.insert("total".into(), AttributeValue::N(total.into()));
        item.insert(
            "tags".into(),
            AttributeValue::Ss(vec!["gift".into(), "express".into()]),
        );
        item
    };
    let both = [&source, &target];
    let steps: Vec<(&str, Vec<Write>)> = vec![
        (
            "c#1 replicated correctly",
            both.iter()
                .map(|c| {
                    (
                        *c,
                        Some(order("customer#1", "1", "PLACED", "19.90")),
                        key("customer#1", "1"),
                    )
                })
                .collect(),
        ),
        (
            "c#2 never replicated",
            vec![(
                &source,
                Some(order("customer#2", "2", "PLACED", "5")),
                key("customer#2", "2"),
            )],
        ),
        (
            "c#3 replicated with a different status and total 1E1 (= 10: equal)",
            vec![
                (
                    &source,
                    Some(order("customer#3", "3", "PAID", "10")),
                    key("customer#3", "3"),
                ),
                (
                    &target,
                    Some(order("customer#3", "3", "PLACED", "1E1")),
                    key("customer#3", "3"),
                ),
            ],
        ),
        (
            "c#4 deleted in the source, the delete never applied",
            vec![
                (
                    &source,
                    Some(order("customer#4", "4", "PLACED", "7")),
                    key("customer#4", "4"),
                ),
                (
                    &target,
                    Some(order("customer#4", "4", "PLACED", "7")),
                    key("customer#4", "4"),
                ),
                (&source, None, key("customer#4", "4")),
            ],
        ),
        (
            "c#5 changed twice; the target has the latest",
            vec![
                (
                    &source,
                    Some(order("customer#5", "5", "PLACED", "3")),
                    key("customer#5", "5"),
                ),
                (
                    &source,
                    Some(order("customer#5", "5", "SHIPPED", "3")),
                    key("customer#5", "5"),
                ),
                (
                    &target,
                    Some(order("customer#5", "5", "SHIPPED", "3")),
                    key("customer#5", "5"),
                ),
            ],
        ),
        (
            "c#6 reaches the target 1.5 s late, within MAX_REPLICATION_LAG",
            vec![(
                &source,
                Some(order("customer#6", "6", "PLACED", "8")),
                key("customer#6", "6"),
            )],
        ),
    ];
    for (what, writes) in &steps {
        println!("   {what}");
        for (client, item, key) in writes {
            match item {
                Some(item) => {
                    client
                        .put_item()
                        .table_name(&table)
                        .set_item(Some(item.clone()))
                        .send()
                        .await?;
                }
                None => {
                    client
                        .delete_item()
                        .table_name(&table)
                        .set_key(Some(key.clone()))
                        .send()
                        .await?;
                }
            }
        }
    }

    println!(
        "== Reading the source stream with GetRecords, as Lambda's event source mapping would"
    );
    let records = ddb_verify_testkit::events::read_all(&streams, &stream_arn).await?;
    // Read from its bytes, as the function reads what Lambda sends.
    let stream_event = StreamEvent::from_slice(
        ddb_verify_testkit::events::lambda_event_json(&records, &stream_arn)
            .to_string()
            .as_bytes(),
    )?;
    println!("   {} records", stream_event.len());

    let verifier = StreamVerifier::new(Verifier::new(
        config.clone(),
        DynamoDbReader::new(target.clone()),
        DynamoDbReader::new(source.clone()),
    ));
    let late = {
        let (target, table, item) = (
            target.clone(),
            table.clone(),
            order("customer#6", "6", "PLACED", "8"),
        );
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            target
                .put_item()
                .table_name(table)
                .set_item(Some(item))
                .send()
                .await
                .map(|_| ())
        })
    };
    println!(
        "== Batch 1: the stream's records (MAX_REPLICATION_LAG={:?})",
        config.max_replication_lag
    );
    let invocation = verifier.handle(&stream_event, None).await;
    late.await??;
    show(&invocation, &config);

    println!("\n== Batch 2: events/malformed.json, a batch with records that cannot be checked");
    let malformed = StreamEvent::from_slice(include_str!("../events/malformed.json").as_bytes())?;
    let invocation = verifier.handle(&malformed, None).await;
    show(&invocation, &config);

    // The shard poller (run next by `make demo`) keeps its checkpoints in its own account's table.
    let _ = source
        .delete_table()
        .table_name(CHECKPOINT_TABLE)
        .send()
        .await;
    ddb_verify::aws::checkpoints::create_checkpoint_table(&source, CHECKPOINT_TABLE).await?;
    println!("\n== Next: the shard poller reads the same stream itself (checkpoints in {CHECKPOINT_TABLE})");
    Ok(())
}

/// Must match CHECKPOINT_TABLE in the Makefile's demo target.
const CHECKPOINT_TABLE: &str = "VerifierCheckpoints";

fn show(invocation: &Invocation, config: &Config) {
    println!(
        "\n{:<10} {:<8} {:<37} {:<20} DETAIL",
        "EVENT", "CHANGE", "KEY", "VERDICT"
    );
    for r in &invocation.records {
        let (verdict, detail) = match &r.outcome {
            Outcome::Verdict(v) => (
                v.name().to_string(),
                match v {
                    Verdict::Match { lag } => format!("lag {} ms", lag.as_millis()),
                    Verdict::Mismatch { diff, proof } => format!("{diff} ({})", proof.name()),
                    Verdict::Missing { proof }
                    | Verdict::DeleteNotApplied { proof }
                    | Verdict::Extra { proof } => proof.name().to_string(),
                    Verdict::Superseded { by } => by.to_string(),
                    Verdict::Unverifiable { reason } => reason.clone(),
                    Verdict::Expired { ttl, instead_of } => {
                        format!("past its TTL ({ttl}), would be {instead_of}")
                    }
                },
            ),
            Outcome::Retry(reason) => ("RETRY".to_string(), reason.to_string()),
            Outcome::NotSampled => ("NOT_SAMPLED".to_string(), String::new()),
        };
        let id = r.event_id.as_deref().unwrap_or("-");
        println!(
            "{:<10} {:<8} {:<37} {:<20} {}",
            &id[..id.len().min(10)],
            r.event_name.unwrap_or("-"),
            r.key.as_deref().unwrap_or("-"),
            verdict,
            detail
        );
    }
    println!("\nEMF metrics (what CloudWatch receives on stdout):");
    for doc in
        invocation
            .metrics
            .emf_documents(&config.metrics_namespace, &config.target_table.name, 0)
    {
        println!("{doc}");
    }
    println!(
        "\nLambda response: {}",
        serde_json::to_string(&invocation.response).unwrap_or_default()
    );
}

/// Deletes the table if a previous demo left it, then creates it (with a stream on the source).
async fn recreate_table(
    client: &Client,
    table: &str,
    with_stream: bool,
) -> Result<Option<String>, Error> {
    let view = with_stream.then_some(StreamViewType::NewAndOldImages);
    Ok(setup::recreate_table(client, table, ORDER_KEYS, view).await?)
}
