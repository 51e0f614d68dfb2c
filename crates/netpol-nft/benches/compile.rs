//! Compiling one node's table for a 10,000-workload / 2,000-policy cluster on 20 nodes, plus the
//! size of what comes out (printed once, and the table written to $NETPOL_NFT_BENCH_OUT if set).

// A benchmark aborts on a setup failure by design: without the setup there is nothing to measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use netpol_core::EvalOptions;
use netpol_nft::compile;

fn bench(c: &mut Criterion) {
    let cluster = common::synthetic(10_000, 2_000, 20);
    for opts in [
        EvalOptions::default(),
        EvalOptions {
            ipblock_matches_workloads: false,
        },
    ] {
        let r = compile(&cluster, opts, "node0").unwrap();
        let s = &r.summary;
        eprintln!(
            "ipblock_matches_workloads={}: {} bytes, {} elements, {} policies, identities in/eg {}/{}, classes in/eg {}/{}, largest maps: {:?}",
            opts.ipblock_matches_workloads,
            r.text.len(),
            s.total_elements,
            s.policies.len(),
            s.ingress_identities,
            s.egress_identities,
            s.ingress_classes,
            s.egress_classes,
            {
                let mut m: Vec<(&String, &usize)> = s.elements.iter().collect();
                m.sort_by(|a, b| b.1.cmp(a.1));
                m.into_iter().take(4).collect::<Vec<_>>()
            }
        );
        if let Ok(path) = std::env::var("NETPOL_NFT_BENCH_OUT") {
            let _ = std::fs::write(
                format!("{path}.{}", opts.ipblock_matches_workloads),
                &r.text,
            );
        }
        c.bench_function(
            &format!(
                "compile node0 of 10k workloads / 2k policies (ipblock_matches_workloads={})",
                opts.ipblock_matches_workloads
            ),
            |b| b.iter(|| compile(&cluster, opts, "node0").unwrap()),
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
