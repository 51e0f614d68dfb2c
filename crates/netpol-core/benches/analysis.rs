//! Analyzer at 10,000 workloads / 200 namespaces / 2,000 policies (synthetic, seed 1), without
//! and with 100 admin policies, and with every fifth workload a Deployment of three replicas
//! (whose own pairs are then pairs like any other).

use criterion::{criterion_group, criterion_main, Criterion};
use netpol_core::analysis::Analyzer;
use netpol_core::model::{EvalOptions, Instances, Protocol, WorkloadKind};
use netpol_core::synth::{add_admin_policies, generate, SynthParams};

fn analysis(c: &mut Criterion) {
    let cluster = generate(&SynthParams {
        workloads: 10_000,
        namespaces: 200,
        policies: 2_000,
        nodes: 50,
        seed: 1,
    });
    let opts = EvalOptions::default();
    let mut g = c.benchmark_group("10k_workloads_200_ns_2k_policies");
    g.sample_size(10);
    g.bench_function("Analyzer::new", |b| {
        b.iter(|| Analyzer::new(&cluster, opts))
    });
    let analyzer = Analyzer::new(&cluster, opts);
    g.bench_function("truth_table(TCP, 80)", |b| {
        b.iter(|| analyzer.truth_table(Protocol::Tcp, 80))
    });
    g.bench_function("connectivity_map", |b| {
        b.iter(|| analyzer.connectivity_map())
    });
    g.finish();
}

/// The same cluster with 100 admin policies of both tiers using every feature
/// (`synth::add_admin_policies`).
fn analysis_with_tiers(c: &mut Criterion) {
    let mut cluster = generate(&SynthParams {
        workloads: 10_000,
        namespaces: 200,
        policies: 2_000,
        nodes: 50,
        seed: 1,
    });
    add_admin_policies(&mut cluster, 100, 1);
    let opts = EvalOptions::default();
    let mut g = c.benchmark_group("10k_workloads_200_ns_2k_policies_100_admin_policies");
    g.sample_size(10);
    g.bench_function("Analyzer::new", |b| {
        b.iter(|| Analyzer::new(&cluster, opts))
    });
    let analyzer = Analyzer::new(&cluster, opts);
    g.bench_function("truth_table(TCP, 80)", |b| {
        b.iter(|| analyzer.truth_table(Protocol::Tcp, 80))
    });
    g.bench_function("connectivity_map", |b| {
        b.iter(|| analyzer.connectivity_map())
    });
    g.finish();
}

/// The first cluster with every fifth workload a Deployment of three replicas.
fn analysis_with_replicas(c: &mut Criterion) {
    let mut cluster = generate(&SynthParams {
        workloads: 10_000,
        namespaces: 200,
        policies: 2_000,
        nodes: 50,
        seed: 1,
    });
    for w in cluster.workloads.iter_mut().step_by(5) {
        w.kind = WorkloadKind::Deployment;
        w.instances = Instances::Count(3);
    }
    let opts = EvalOptions::default();
    let mut g = c.benchmark_group("10k_workloads_200_ns_2k_policies_every_fifth_3_replicas");
    g.sample_size(10);
    let analyzer = Analyzer::new(&cluster, opts);
    g.bench_function("truth_table(TCP, 80)", |b| {
        b.iter(|| analyzer.truth_table(Protocol::Tcp, 80))
    });
    g.bench_function("connectivity_map", |b| {
        b.iter(|| analyzer.connectivity_map())
    });
    g.finish();
}

criterion_group!(
    benches,
    analysis,
    analysis_with_tiers,
    analysis_with_replicas
);
criterion_main!(benches);
