//! The shared model builders (from netpol-test-support) and a checker that asks every
//! implementation the same question.

#![allow(dead_code)]

use std::net::IpAddr;

use netpol_core::analysis::Analyzer;
use netpol_core::eval::{evaluate, Endpoint, Verdict};
use netpol_core::model::*;

pub use netpol_test_support::*;

pub fn index(c: &Cluster, key: &str) -> usize {
    c.workloads
        .iter()
        .position(|w| w.key() == key)
        .unwrap_or_else(|| panic!("no workload {key}"))
}

pub fn endpoint(c: &Cluster, s: &str) -> Endpoint {
    match s.parse::<IpAddr>() {
        Ok(a) => Endpoint::External(a),
        Err(_) => Endpoint::Workload(index(c, s)),
    }
}

/// Evaluates a flow with the reference evaluator and, when both ends are workloads, also with the
/// analyzer's truth table and connectivity map; panics if they disagree. Returns the verdict.
pub fn flow(
    c: &Cluster,
    opts: EvalOptions,
    src: &str,
    dst: &str,
    p: Protocol,
    port: u16,
) -> Verdict {
    let s = endpoint(c, src);
    let d = endpoint(c, dst);
    let v = evaluate(c, opts, &s, &d, p, port);
    if let (Endpoint::Workload(si), Endpoint::Workload(di)) = (s, d) {
        let a = Analyzer::new(c, opts);
        let t = a.truth_table(p, port);
        assert_eq!(
            t.allowed(si, di),
            v.allowed,
            "truth table disagrees with the evaluator on {src} -> {dst} {p}/{port}"
        );
        let m = a.connectivity_map();
        let in_map = m
            .ports(si, di, p)
            .iter()
            .any(|(lo, hi)| *lo <= port && port <= *hi);
        if port != 0 {
            assert_eq!(
                in_map, v.allowed,
                "connectivity map disagrees with the evaluator on {src} -> {dst} {p}/{port}"
            );
        }
    }
    v
}

pub fn allowed(
    c: &Cluster,
    opts: EvalOptions,
    src: &str,
    dst: &str,
    p: Protocol,
    port: u16,
) -> bool {
    flow(c, opts, src, dst, p, port).allowed
}

pub fn up() -> EvalOptions {
    EvalOptions {
        ipblock_matches_workloads: true,
    }
}

pub fn cilium() -> EvalOptions {
    EvalOptions {
        ipblock_matches_workloads: false,
    }
}
