//! Inference latency per example model: one row, and a batch of 64 rows, through
//! `LoadedModel::run` (ONNX Runtime with one intra-op thread, as served).
//!
//! `cargo bench -p modelfn-runtime-onnx --bench inference`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use modelfn_core::Manifest;
use modelfn_runtime_onnx::model::SessionTuning;
use modelfn_runtime_onnx::{LibraryConfig, LoadedModel, OrtLibrary};
use std::path::Path;

fn bench(c: &mut Criterion) {
    let lib = OrtLibrary::start(&LibraryConfig {
        path: std::env::var_os("ORT_DYLIB_PATH").map(Into::into),
        data_dir: None,
        allow_pip: true,
        ..Default::default()
    })
    .expect("ONNX Runtime");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut dirs: Vec<_> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let mut group = c.benchmark_group("inference");
    for dir in dirs
        .into_iter()
        .filter(|d| d.join("references.json").is_file())
    {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let manifest =
            Manifest::from_toml(&std::fs::read_to_string(dir.join("modelfn.toml")).unwrap())
                .unwrap();
        let spec = manifest.model.unwrap();
        let mut model = LoadedModel::load(
            &lib.environment,
            &dir.join(&spec.file),
            &spec,
            SessionTuning::default(),
        )
        .unwrap();
        let refs: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("references.json")).unwrap())
                .unwrap();
        let rows: Vec<Vec<f32>> = refs["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
                    .collect()
            })
            .collect();
        let one = rows[0].clone();
        let batch: Vec<f32> = rows.iter().cycle().take(64).flatten().copied().collect();
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("row", &name), &one, |b, one| {
            b.iter(|| model.run(one, 1).unwrap())
        });
        group.throughput(Throughput::Elements(64));
        group.bench_with_input(BenchmarkId::new("batch64", &name), &batch, |b, batch| {
            b.iter(|| model.run(batch, 64).unwrap())
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
