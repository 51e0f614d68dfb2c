//! `netpol bench`: times the analyzer on a deterministic synthetic cluster.

use std::time::Instant;

use anyhow::{Context, Result};
use netpol_core::synth::{add_admin_policies, generate, SynthParams};
use netpol_core::{Analyzer, EvalOptions, Protocol};

use crate::cli::BenchArgs;

pub fn run(args: &BenchArgs) -> Result<u8> {
    let params = SynthParams {
        workloads: args.workloads,
        namespaces: args.namespaces,
        policies: args.policies,
        nodes: args.nodes,
        seed: args.seed,
    };
    let started = Instant::now();
    let mut cluster = generate(&params);
    if args.admin_policies > 0 {
        add_admin_policies(&mut cluster, args.admin_policies, args.seed);
    }
    println!(
        "generate     {:>9.1} ms  ({} workloads, {} namespaces, {} policies, {} admin policies)",
        ms(started),
        cluster.workloads.len(),
        cluster.namespaces.len(),
        cluster.policies.len(),
        cluster.admin_policies.len()
    );
    if let Some(path) = &args.write {
        let started = Instant::now();
        let yaml = netpol_k8s::render_manifests(&cluster);
        std::fs::write(path, &yaml).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "render yaml  {:>9.1} ms  ({} bytes to {})",
            ms(started),
            yaml.len(),
            path.display()
        );
        let started = Instant::now();
        let loaded = netpol_k8s::load_paths(
            std::slice::from_ref(path),
            &netpol_k8s::LoadOptions::default(),
        );
        println!(
            "load yaml    {:>9.1} ms  ({} workloads, {} policies, {} diagnostics)",
            ms(started),
            loaded.cluster.workloads.len(),
            loaded.cluster.policies.len(),
            loaded.diagnostics.len()
        );
    }
    let started = Instant::now();
    let analyzer = Analyzer::new(&cluster, EvalOptions::default());
    println!(
        "index        {:>9.1} ms  ({} identities)",
        ms(started),
        analyzer.identity_count()
    );
    let started = Instant::now();
    let table = analyzer.truth_table(Protocol::Tcp, 80);
    println!(
        "truth table  {:>9.1} ms  (TCP/80: {} allowed, {} denied)",
        ms(started),
        table.allowed_count(),
        table.denied_count()
    );
    let started = Instant::now();
    let map = analyzer.connectivity_map();
    println!(
        "full map     {:>9.1} ms  ({} distinct port sets)",
        ms(started),
        map.distinct_port_sets()
    );
    if args.diff_rounds > 0 {
        super::diff::bench(&cluster, &params, args.diff_rounds);
    }
    if let Some(peak) = peak_rss_kib() {
        println!("peak RSS     {:>9.1} MiB", peak as f64 / 1024.0);
    }
    Ok(0)
}

pub fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
