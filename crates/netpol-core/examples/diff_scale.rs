//! Times the diff of two connectivity maps on a synthetic cluster and an edited copy (the same
//! edit as `netpol bench --diff-rounds`), step by step.
//!
//! `cargo run --release -p netpol-core --example diff_scale -- [workloads] [namespaces] [policies]`

use std::time::Instant;

use netpol_core::analysis::diff::{diff_maps, object_changes};
use netpol_core::analysis::Analyzer;
use netpol_core::model::EvalOptions;
use netpol_core::synth::{generate, SynthParams};

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
        nodes: 20,
        seed: 1,
    };
    let old = generate(&params);
    let mut new = old.clone();
    let mut i = 0;
    new.workloads.retain(|_| {
        i += 1;
        i % 200 != 0
    });
    let mut i = 0;
    new.policies.retain(|_| {
        i += 1;
        i % 100 != 0
    });
    for p in new.policies.iter_mut().skip(50).step_by(100) {
        if !p.ingress.is_empty() {
            p.ingress.remove(0);
        }
    }
    let opts = EvalOptions::default();
    let t = Instant::now();
    let old_map = Analyzer::new(&old, opts).connectivity_map();
    let new_map = Analyzer::new(&new, opts).connectivity_map();
    println!("two maps, one after the other: {:?}", t.elapsed());
    let t = Instant::now();
    let diff = diff_maps(&old, &old_map, &new, &new_map);
    println!(
        "diff_maps: {:?} ({:?} groups compared, {:?})",
        t.elapsed(),
        diff.compared_groups(),
        diff.counts()
    );
    let t = Instant::now();
    let changes = object_changes(&old, &new);
    println!(
        "object_changes: {:?} ({} objects)",
        t.elapsed(),
        changes.len()
    );
    let t = Instant::now();
    let listed: Vec<_> = diff.pairs().take(100).collect();
    let why: usize = listed
        .iter()
        .map(|p| diff.explaining(&changes, p).len())
        .sum();
    println!(
        "100 pairs listed and explained: {:?} ({why} reasons)",
        t.elapsed()
    );
}
