//! Renders a 10,000-workload cluster to YAML and times loading it back (single-shot numbers to
//! complement the criterion bench; run under `perf stat` to see CPU time on a busy machine).
//!
//! `cargo run --release -p netpol-k8s --example load_10k [runs]`

#[path = "../benches/generated/mod.rs"]
mod generated;

use std::time::Instant;

use netpol_k8s::{load_str, render_manifests, LoadOptions};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let cluster = generated::cluster(10_000);
    let text = render_manifests(&cluster);
    println!(
        "{} bytes, {} lines of YAML",
        text.len(),
        text.lines().count()
    );
    for _ in 0..runs {
        let t = Instant::now();
        let loaded = load_str("generated.yaml", &text, &LoadOptions::default());
        let elapsed = t.elapsed();
        assert!(!loaded.has_errors());
        println!(
            "loaded {} workloads, {} policies in {:.1} ms",
            loaded.cluster.workloads.len(),
            loaded.cluster.policies.len(),
            elapsed.as_secs_f64() * 1e3
        );
    }
}
