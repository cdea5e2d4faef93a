//! Peak memory of the stream verifier's handler on a 10,000-record event with ~1 KB images (the
//! event source mapping's largest batch), in process, reading the other side from DynamoDB Local
//! (the `BenchOrders` table the lookups bench loads). `make bench` runs it under `/usr/bin/time -v`.
//!
//!     memory write FILE [RECORDS]   writes the event (a separate process, so generating it is not measured)
//!     memory FILE                   runs the handler on it

mod support;

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use ddb_verify::allocator::MiMalloc;

/// The binaries' allocator (mimalloc), counting the bytes live and their high-water mark: says
/// which phase (the parse, or the handler) sets the process's peak, and by how much.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(now, Relaxed);
        // SAFETY: forwarded unchanged to the binaries' allocator.
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: forwarded unchanged to the binaries' allocator.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// The binaries' options, before the first allocation (`ddb_verify::allocator`).
ddb_verify::configure_mimalloc_early!();

fn mb(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use ddb_verify::aws::reader::DynamoDbReader;
use ddb_verify::config::{Config, TableRef};
use ddb_verify::lambda::event::StreamEvent;
use ddb_verify::lambda::handler::StreamVerifier;
use ddb_verify::verify::Verifier;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("write") {
        let records: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10_000);
        std::fs::write(&args[2], support::event_json(records)).expect("write the event file");
        return;
    }
    let path = args
        .get(1)
        .expect("usage: memory FILE | memory write FILE [RECORDS]");
    let endpoint = std::env::var("DYNAMODB_LOCAL_ENDPOINT")
        .expect("DYNAMODB_LOCAL_ENDPOINT is not set: run `make bench` (the lookups bench loads BenchOrders first)");
    let client = |key: &str| {
        aws_sdk_dynamodb::Client::new(
            &SdkConfig::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(&endpoint)
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(
                        Credentials::new(key, "secret", None, None, "bench"),
                    ),
                )
                .build(),
        )
    };
    let verifier = Verifier::new(
        Config::new(TableRef::parse("BenchOrders").unwrap()),
        DynamoDbReader::new(client("benchtarget")),
        DynamoDbReader::new(client("benchsource")),
    );
    let handler = StreamVerifier::new(verifier);
    // As Lambda hands it over: the payload bytes, then the parsed event.
    let payload = std::fs::read(path).expect("read the event file");
    let before_parse = LIVE.load(Relaxed);
    let event = StreamEvent::from_slice(&payload).unwrap();
    let payload_bytes = payload.len();
    let parse_peak = PEAK.load(Relaxed);
    let records_live = LIVE.load(Relaxed) - before_parse;
    // As lambda_runtime does: its api_response layer drops the body once the event is built, before
    // the handler runs.
    drop(payload);
    let invocation = handler.handle(&event, None).await;
    let records = event.len();
    assert_eq!(
        invocation.metrics.matches as usize, records,
        "every item is in BenchOrders"
    );
    println!(
        "{}",
        serde_json::json!({"name": "memory_event", "records": records, "payload_bytes": payload_bytes,
            "heap_peak_parse_mb": mb(parse_peak), "heap_records_mb": mb(records_live),
            "heap_peak_mb": mb(PEAK.load(Relaxed))})
    );
}
