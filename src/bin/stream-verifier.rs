//! Lambda function attached to a DynamoDB stream (or, with `TABLE_PAIRS`, to one stream per pair):
//! verifies each batch against the other account's table and returns the records it could not
//! verify as batch item failures.

use std::sync::Arc;

use ddb_verify::config::pairs::table_pairs;
use ddb_verify::lambda::entry::EventsRead;
use ddb_verify::lambda::event::StreamEvent;
use ddb_verify::lambda::pairs::Verifiers;
use ddb_verify::verify::timing::deadline_instant;
use lambda_runtime::{layers::TracingLayer, service_fn, Error, LambdaEvent, Runtime};

// mimalloc, configured before the first allocation (`ddb_verify::allocator`).
ddb_verify::use_mimalloc!();

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let pairs = table_pairs(std::env::var("TABLE_PAIRS").ok())
        .inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    let handler = ddb_verify::wiring::stream_verifiers(pairs, |n| std::env::var(n).ok())
        .await
        .inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    match &handler {
        // Its source is the table of the stream it is attached to, named by each event.
        Verifiers::One(verifier) => {
            let region = ddb_verify::aws::clients::default_region().await;
            let other_side = verifier.verifier().config().other_side(region.as_deref());
            tracing::info!(other_side = %other_side, "stream verifier started: verifies its stream's table against the other side");
        }
        // Each event goes to the pair of its records' table (`ddb_verify::lambda::pairs`).
        Verifiers::ByTable(by_table) => {
            let tables: Vec<&str> = by_table.keys().map(String::as_str).collect();
            tracing::info!(tables = %tables.join(", "), "stream verifier started: verifies each event's table against its pair's other side (TABLE_PAIRS)");
        }
    }
    let handler = Arc::new(handler);
    // Events are read from the invocation's bytes by the layer (`lambda::entry`).
    let events = EventsRead::default();
    let taken = events.clone();

    let function = service_fn(move |event: LambdaEvent<Option<StreamEvent>>| {
        let (handler, taken) = (Arc::clone(&handler), taken.clone());
        async move {
            let (event, context) = taken.take(event)?;
            let deadline = deadline_instant(context.deadline);
            Ok::<_, Error>(handler.handle_and_emit(&event, Some(deadline)).await)
        }
    });
    // As `lambda_runtime::run`, with the events' layer under the tracing one.
    Runtime::new(function)
        .layer(events)
        .layer(TracingLayer::new())
        .run()
        .await
}
