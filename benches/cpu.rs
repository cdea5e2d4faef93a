//! CPU per record: Lambda event JSON (bytes) to engine records, and comparing a ~1 KB item (nested maps,
//! lists, sets, numbers), for batches of 1, 100 and 10,000 records; and the stream verifier's
//! handler over an in-memory reader (batches of 1 and 100).

mod support;

use std::hint::black_box;

use aws_sdk_dynamodb::types::AttributeValue;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ddb_verify::compare::{diff_items, items_equal};
use ddb_verify::config::{Config, TableRef};
use ddb_verify::lambda::event::StreamEvent;
use ddb_verify::lambda::handler::StreamVerifier;
use ddb_verify::record::{Image, Item, Tape};
use ddb_verify::verify::Verifier;
use ddb_verify_testkit::InMemoryTables;
use std::sync::Arc;

// The binaries' allocator: the handler's figures are what the functions pay.
ddb_verify::use_mimalloc!();

fn parse_and_compare(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_record");
    for n in [1usize, 100, 10_000] {
        let json = support::event_json(n);
        group.throughput(Throughput::Elements(n as u64));
        // Baselines for what serde_json alone costs on this machine, from the bytes as the Lambda
        // runtime receives them: a pass that builds nothing, and a generic `serde_json::Value` tree.
        group.bench_with_input(
            BenchmarkId::new("baseline_skip_json", n),
            &json,
            |b, json| {
                b.iter(|| {
                    black_box(
                        serde_json::from_slice::<serde::de::IgnoredAny>(json.as_bytes()).unwrap(),
                    )
                })
            },
        );
        // The same pass over a `&str` (no UTF-8 checks of its own), the figure of earlier runs.
        group.bench_with_input(
            BenchmarkId::new("baseline_skip_json_str", n),
            &json,
            |b, json| {
                b.iter(|| black_box(serde_json::from_str::<serde::de::IgnoredAny>(json).unwrap()))
            },
        );
        group.bench_with_input(
            BenchmarkId::new("baseline_json_value", n),
            &json,
            |b, json| {
                b.iter(|| {
                    black_box(serde_json::from_slice::<serde_json::Value>(json.as_bytes()).unwrap())
                })
            },
        );
        // What the stream verifier runs: the byte reader (the serde reader for what it declines).
        group.bench_with_input(
            BenchmarkId::new("event_json_to_records", n),
            &json,
            |b, json| b.iter(|| black_box(StreamEvent::from_slice(json.as_bytes()).unwrap())),
        );
        // The serde reader alone, and as lambda_runtime calls a payload's `Deserialize` (through
        // serde_path_to_error, which tracks the path of every value).
        group.bench_with_input(
            BenchmarkId::new("event_json_to_records_serde", n),
            &json,
            |b, json| {
                b.iter(|| {
                    black_box(serde_json::from_slice::<StreamEvent>(json.as_bytes()).unwrap())
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("event_json_to_records_runtime_serde", n),
            &json,
            |b, json| {
                b.iter(|| {
                    let de = &mut serde_json::Deserializer::from_slice(json.as_bytes());
                    black_box(serde_path_to_error::deserialize::<_, StreamEvent>(de).unwrap())
                })
            },
        );
        let records = serde_json::from_str::<StreamEvent>(&json).unwrap().records;
        // The other side's items as the SDK returns them, numbers normalised as DynamoDB stores
        // them (so one number compares as a decimal, not as text).
        let found: Vec<Item> = records
            .iter()
            .map(|r| {
                let mut item = r.image().unwrap().item().into_owned();
                item.insert("total".into(), AttributeValue::N("1234.56".into()));
                item
            })
            .collect();
        group.bench_with_input(
            BenchmarkId::new("compare_1kb_item", n),
            &(&records, &found),
            |b, (records, found)| {
                b.iter(|| {
                    for (r, f) in records.iter().zip(found.iter()) {
                        black_box(r.image().unwrap().equals(f, &[]));
                    }
                })
            },
        );
        // The same, the other side's items as tapes, as the DynamoDB reader now reads its answers.
        let found_tapes: Vec<Image> = found
            .iter()
            .map(|f| Image::Tape(Tape::from_item(f).unwrap()))
            .collect();
        group.bench_with_input(
            BenchmarkId::new("compare_1kb_tapes", n),
            &(&records, &found_tapes),
            |b, (records, found)| {
                b.iter(|| {
                    for (r, f) in records.iter().zip(found.iter()) {
                        black_box(r.image().unwrap().same_as(f, &[]));
                    }
                })
            },
        );
        // The stream verifier's handler as the function runs it, from the event's bytes to its
        // response and metrics (reports built only for what is logged), the other side's items read
        // from memory.
        if n <= 100 {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let target = InMemoryTables::new();
            for item in &found {
                target.put("Orders", &["customerId", "orderId"], item.clone());
            }
            let config = Config::new(TableRef::parse("Orders").unwrap());
            let handler = StreamVerifier::new(Verifier::new(
                config,
                Arc::new(target),
                Arc::new(InMemoryTables::new()),
            ));
            let check = rt.block_on(
                handler.respond(&StreamEvent::from_slice(json.as_bytes()).unwrap(), None),
            );
            assert_eq!(check.metrics.matches as usize, n, "every record matches");
            group.bench_with_input(
                BenchmarkId::new("handler_in_memory", n),
                &json,
                |b, json| {
                    b.iter(|| {
                        let event = StreamEvent::from_slice(json.as_bytes()).unwrap();
                        black_box(rt.block_on(handler.respond(&event, None)))
                    })
                },
            );
        }
        // The same comparison between two SDK items (the poller's and the baseline's records).
        let sdk_images: Vec<Item> = records
            .iter()
            .map(|r| r.image().unwrap().item().into_owned())
            .collect();
        group.bench_with_input(
            BenchmarkId::new("compare_1kb_sdk_items", n),
            &(&sdk_images, &found),
            |b, (images, found)| {
                b.iter(|| {
                    for (i, f) in images.iter().zip(found.iter()) {
                        black_box(items_equal(i, f, &[]));
                    }
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("end_to_end", n),
            &(&json, &found),
            |b, (json, found)| {
                b.iter(|| {
                    let event = StreamEvent::from_slice(json.as_bytes()).unwrap();
                    for (r, f) in event.records.iter().zip(found.iter()) {
                        black_box(r.image().unwrap().equals(f, &[]));
                        black_box(r.item_key().is_sampled(1.0));
                    }
                })
            },
        );
    }
    group.finish();
    // A differing item: the diff path (the image built as an SDK item first, as the engine does).
    let json = support::event_json(1);
    let event: StreamEvent = serde_json::from_str(&json).unwrap();
    let image = event.records[0].image().cloned().unwrap();
    let mut other = image.item().into_owned();
    other.insert("status".into(), AttributeValue::S("SHIPPED".into()));
    c.bench_function("diff_1kb_item", |b| {
        b.iter(|| black_box(diff_items(&image.item(), &other, &[])))
    });
}

criterion_group!(benches, parse_and_compare);
criterion_main!(benches);
