//! The request path around the model: decoding a body into rows, encoding answers, beside
//! a peer measured in the same run (parsing the same body into a `serde_json::Value`
//! tree, which the full decoder did before it walked it).
//!
//! `cargo bench -p modelfn-runtime-onnx --bench codec`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use modelfn_runtime_onnx::decode::decode;
use modelfn_runtime_onnx::encode::encode;
use modelfn_runtime_onnx::{Label, Prediction, RowAnswer};
use std::sync::Arc;

fn bodies() -> Vec<(&'static str, String, usize)> {
    let row = r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#;
    let batch = format!(
        "[{}]",
        std::iter::repeat_n("[6.9, 3.1, 5.1, 2.3]", 64)
            .collect::<Vec<_>>()
            .join(", ")
    );
    vec![
        ("object row", row.to_string(), 1),
        ("array row", "[6.9, 3.1, 5.1, 2.3]".to_string(), 1),
        (
            "strings row",
            r#"{"sl": "6.9", "sw": "3.1", "pl": "5.1", "pw": "2.3"}"#.to_string(),
            1,
        ),
        ("batch64", batch, 64),
    ]
}

fn bench(c: &mut Criterion) {
    let inputs: Vec<String> = ["sl", "sw", "pl", "pw"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut group = c.benchmark_group("decode");
    for (name, body, rows) in bodies() {
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(BenchmarkId::new("modelfn", name), &body, |b, body| {
            b.iter(|| decode(body.as_bytes(), Some("application/json"), &inputs).unwrap())
        });
        group.bench_with_input(
            BenchmarkId::new("peer: Value tree only", name),
            &body,
            |b, body| {
                b.iter(|| serde_json::from_slice::<serde_json::Value>(body.as_bytes()).unwrap())
            },
        );
    }
    group.finish();

    let classes: Arc<[Arc<str>]> = ["setosa", "versicolor", "virginica"]
        .iter()
        .map(|s| Arc::from(*s))
        .collect();
    let answer = RowAnswer {
        prediction: Prediction::Label(Label::Int(2)),
        probabilities: Some(vec![0.01, 0.09, 0.9]),
    };
    let mut group = c.benchmark_group("encode");
    for rows in [1usize, 64] {
        let answers = vec![answer.clone(); rows];
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(BenchmarkId::new("modelfn", rows), &answers, |b, a| {
            b.iter(|| encode(a, &classes, rows > 1))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
