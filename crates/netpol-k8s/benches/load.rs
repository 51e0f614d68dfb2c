//! Load time of a large rendered cluster: 10,000 workloads (pods with named ports and Deckhouse
//! VMs, dual-stack and single-stack) in 50 namespaces, plus 200 policies.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netpol_k8s::{load_str, render_manifests, LoadOptions};

mod generated;
use generated::cluster;

fn bench(cr: &mut Criterion) {
    let c = cluster(10_000);
    let text = render_manifests(&c);
    let check = load_str("bench.yaml", &text, &LoadOptions::default());
    assert!(!check.has_errors());
    assert_eq!(check.cluster.workloads.len(), 10_000);
    let mut g = cr.benchmark_group("load");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("load_str 10k workloads + 200 policies", |b| {
        b.iter(|| load_str("bench.yaml", &text, &LoadOptions::default()))
    });
    g.bench_function("render_manifests 10k workloads + 200 policies", |b| {
        b.iter(|| render_manifests(&c))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
