//! Times the analyzer on a synthetic cluster, for peak-memory measurement with `/usr/bin/time -v`.
//!
//! `cargo run --release -p netpol-core --example bench_scale -- [workloads] [namespaces] [policies]
//! [unique|same] [admin policies]`

use std::time::Instant;

use netpol_core::analysis::Analyzer;
use netpol_core::model::{EvalOptions, Protocol};
use netpol_core::synth::{add_admin_policies, generate, SynthParams};

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let params = SynthParams {
        workloads: arg(1, 10_000),
        namespaces: arg(2, 200),
        policies: arg(3, 2_000),
        nodes: 50,
        seed: 1,
    };
    let t = Instant::now();
    let mut cluster = generate(&params);
    // `unique` as 4th argument: give every workload a label of its own (like `vm: <name>`), which
    // no policy selects on; identities then equal workloads, sides stay few.
    if std::env::args().nth(4).as_deref() == Some("unique") {
        for w in &mut cluster.workloads {
            w.labels.insert("instance".into(), w.key());
        }
    }
    // A number as 5th argument: add that many admin policies of both tiers (every feature).
    if let Some(count) = std::env::args().nth(5).and_then(|a| a.parse().ok()) {
        add_admin_policies(&mut cluster, count, 1);
    }
    println!("generate: {:?} ({params:?})", t.elapsed());
    for ipblock_matches_workloads in [true, false] {
        let opts = EvalOptions {
            ipblock_matches_workloads,
        };
        println!("-- ipblock_matches_workloads = {ipblock_matches_workloads}");
        let t = Instant::now();
        let analyzer = Analyzer::new(&cluster, opts);
        println!(
            "Analyzer::new: {:?} ({} identities, {:?} source/destination sides, {} port atoms)",
            t.elapsed(),
            analyzer.identity_count(),
            analyzer.side_counts(),
            analyzer.atom_count()
        );
        let t = Instant::now();
        let table = analyzer.truth_table(Protocol::Tcp, 80);
        println!(
            "truth_table(TCP, 80): {:?} ({} allowed, {} denied pairs)",
            t.elapsed(),
            table.allowed_count(),
            table.denied_count()
        );
        drop(table);
        let t = Instant::now();
        let map = analyzer.connectivity_map();
        println!(
            "connectivity_map: {:?} ({} distinct port sets)",
            t.elapsed(),
            map.distinct_port_sets()
        );
    }
}
