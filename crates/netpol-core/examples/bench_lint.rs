//! Times `lint` (and `exposure`) on the synthetic bench cluster, several runs, with percentiles.
//!
//! `cargo run --release -p netpol-core --example bench_lint -- [runs] [workloads] [namespaces] [policies]`
//! (defaults: 10 runs of the 10,000 / 200 / 2,000 cluster that `netpol bench` uses).

use std::time::{Duration, Instant};

use netpol_core::exposure::exposure;
use netpol_core::lint::lint;
use netpol_core::model::EvalOptions;
use netpol_core::synth::{generate, SynthParams};

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// `p50 / p90 / max` of the runs, in milliseconds.
fn percentiles(mut runs: Vec<Duration>) -> String {
    runs.sort();
    let at = |q: f64| {
        let i = ((runs.len() as f64 - 1.0) * q).round() as usize;
        runs[i.min(runs.len() - 1)].as_secs_f64() * 1000.0
    };
    format!(
        "p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms ({} runs)",
        at(0.5),
        at(0.9),
        at(1.0),
        runs.len()
    )
}

/// One run of each check on its own, to see where the time goes.
fn per_check(cluster: &netpol_core::Cluster, opts: EvalOptions) {
    use netpol_core::lint::{dns, redundant, selection};
    let time = |name: &str, f: &dyn Fn() -> usize| {
        let t = Instant::now();
        let n = f();
        println!(
            "  {name:<28} {:>7.0} ms  {n} findings",
            t.elapsed().as_secs_f64() * 1000.0
        );
    };
    let index = selection::Index::new(cluster);
    time("NP001 selects no workload", &|| {
        selection::policies_selecting_nothing(cluster, &index).len()
    });
    time("NP002 peer selects nothing", &|| {
        selection::peers_selecting_nothing(cluster, &index).len()
    });
    time("NP003 redundant", &|| {
        redundant::redundant(cluster, opts).len()
    });
    time("NP004 egress without DNS", &|| {
        dns::egress_without_dns(cluster).len()
    });
    time("NP005 ipBlock over workloads", &|| {
        selection::ip_blocks_covering_workloads(cluster, opts).len()
    });
    time("NP006 unknown named port", &|| {
        selection::unknown_named_ports(cluster, &index).len()
    });
    time("NP007 egress without rules", &|| {
        selection::egress_without_rules(cluster).len()
    });
    time("NP008 split peer", &|| {
        selection::dash_mistakes(cluster, &index).len()
    });
}

fn main() {
    let runs = arg(1, 10).max(1);
    let params = SynthParams {
        workloads: arg(2, 10_000),
        namespaces: arg(3, 200),
        policies: arg(4, 2_000),
        nodes: 20,
        seed: 1,
    };
    let cluster = generate(&params);
    println!("{params:?}");
    for ipblock_matches_workloads in [true, false] {
        let opts = EvalOptions {
            ipblock_matches_workloads,
        };
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..runs {
            let t = Instant::now();
            count = lint(&cluster, opts).findings.len();
            times.push(t.elapsed());
        }
        println!(
            "lint     ipblock_matches_workloads={ipblock_matches_workloads}: {count} findings; {}",
            percentiles(times)
        );
    }
    per_check(&cluster, EvalOptions::default());
    let t = Instant::now();
    let e = exposure(&cluster, EvalOptions::default());
    println!(
        "exposure (one run): {} workloads in {:.0} ms",
        e.workloads.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
}
