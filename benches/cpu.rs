//! CPU per record: Lambda event JSON to engine records, and comparing a ~1 KB item (nested maps,
//! lists, sets, numbers), for batches of 1, 100 and 10,000 records.

mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ddb_verify::compare::{diff_items, items_equal};
use ddb_verify::lambda::event::StreamEvent;

fn parse_and_compare(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_record");
    for n in [1usize, 100, 10_000] {
        let json = support::event_json(n);
        group.throughput(Throughput::Elements(n as u64));
        // Baselines for what serde_json alone costs on this machine: a pass that builds nothing,
        // and a generic `serde_json::Value` tree.
        group.bench_with_input(
            BenchmarkId::new("baseline_skip_json", n),
            &json,
            |b, json| {
                b.iter(|| black_box(serde_json::from_str::<serde::de::IgnoredAny>(json).unwrap()))
            },
        );
        group.bench_with_input(
            BenchmarkId::new("baseline_json_value", n),
            &json,
            |b, json| {
                b.iter(|| black_box(serde_json::from_str::<serde_json::Value>(json).unwrap()))
            },
        );
        group.bench_with_input(
            BenchmarkId::new("event_json_to_records", n),
            &json,
            |b, json| b.iter(|| black_box(serde_json::from_str::<StreamEvent>(json).unwrap())),
        );
        let records = serde_json::from_str::<StreamEvent>(&json).unwrap().records;
        let images: Vec<_> = records
            .iter()
            .map(|r| r.image().cloned().unwrap())
            .collect();
        // The other side answers with numbers normalised, as DynamoDB stores them.
        let found: Vec<_> = images
            .iter()
            .map(|i| {
                let mut i = i.clone();
                i.insert(
                    "total".into(),
                    aws_sdk_dynamodb::types::AttributeValue::N("1234.56".into()),
                );
                i
            })
            .collect();
        group.bench_with_input(
            BenchmarkId::new("compare_1kb_item", n),
            &(images, found),
            |b, (images, found)| {
                b.iter(|| {
                    for (a, f) in images.iter().zip(found) {
                        black_box(items_equal(a, f, &[]));
                    }
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("end_to_end", n), &json, |b, json| {
            b.iter(|| {
                let event: StreamEvent = serde_json::from_str(json).unwrap();
                for r in &event.records {
                    let image = r.image().unwrap();
                    black_box(items_equal(image, image, &[]));
                    black_box(r.item_key().is_sampled(1.0));
                }
            })
        });
    }
    group.finish();
    // A differing item: the diff path.
    let json = support::event_json(1);
    let event: StreamEvent = serde_json::from_str(&json).unwrap();
    let image = event.records[0].image().cloned().unwrap();
    let mut other = image.clone();
    other.insert(
        "status".into(),
        aws_sdk_dynamodb::types::AttributeValue::S("SHIPPED".into()),
    );
    c.bench_function("diff_1kb_item", |b| {
        b.iter(|| black_box(diff_items(&image, &other, &[])))
    });
}

criterion_group!(benches, parse_and_compare);
criterion_main!(benches);
