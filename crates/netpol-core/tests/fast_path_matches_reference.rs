//! Property test: on random small clusters using every feature of the model, the analyzer's truth
//! tables and connectivity map agree with the reference evaluator on every pair.

use std::collections::BTreeSet;

use netpol_core::analysis::Analyzer;
use netpol_core::eval::{evaluate, Endpoint};
use netpol_core::model::*;
use netpol_test_support::arb::{self, ClusterShape};
use proptest::prelude::*;

/// Every port where a rule or named port starts or ends, with its neighbours.
fn interesting_ports(c: &Cluster, extra: u16) -> Vec<u16> {
    let mut s: BTreeSet<u32> = [1, 2, 65534, 65535, u32::from(extra)].into_iter().collect();
    let mut add = |p: u32| {
        for q in [p.saturating_sub(1), p, p + 1] {
            if (1..=65535).contains(&q) {
                s.insert(q);
            }
        }
    };
    for p in &c.policies {
        for r in p.ingress.iter().chain(&p.egress) {
            for port in &r.ports {
                match &port.port {
                    Some(PortSpec::Number(n)) => add(u32::from(*n)),
                    Some(PortSpec::Range { start, end }) => {
                        add(u32::from(*start));
                        add(u32::from(*end));
                    }
                    _ => {}
                }
            }
        }
    }
    for w in &c.workloads {
        for np in &w.named_ports {
            add(u32::from(np.port));
        }
    }
    s.into_iter()
        .filter_map(|p| u16::try_from(p).ok())
        .filter(|p| *p >= 1)
        .collect()
}

fn check(c: &Cluster, opts: EvalOptions, extra: u16) -> Result<(), TestCaseError> {
    let analyzer = Analyzer::new(c, opts);
    let map = analyzer.connectivity_map();
    let n = c.workloads.len();
    let ports = interesting_ports(c, extra);
    for protocol in Protocol::ALL {
        for &port in &ports {
            let table = analyzer.truth_table(protocol, port);
            for s in 0..n {
                for d in 0..n {
                    let v = evaluate(
                        c,
                        opts,
                        &Endpoint::Workload(s),
                        &Endpoint::Workload(d),
                        protocol,
                        port,
                    );
                    prop_assert_eq!(
                        table.allowed(s, d),
                        v.allowed,
                        "truth table {} -> {} {}/{} ({:?})\n{}",
                        s,
                        d,
                        protocol,
                        port,
                        opts,
                        v.explain()
                    );
                    let in_map = map
                        .ports(s, d, protocol)
                        .iter()
                        .any(|(lo, hi)| *lo <= port && port <= *hi);
                    prop_assert_eq!(
                        in_map,
                        v.allowed,
                        "map {} -> {} {}/{} ({:?}): {:?}\n{}",
                        s,
                        d,
                        protocol,
                        port,
                        opts,
                        map.ports(s, d, protocol),
                        v.explain()
                    );
                }
            }
        }
    }
    // The map's ranges are sorted, merged and within 1..=65535.
    for s in 0..n {
        for d in 0..n {
            for protocol in Protocol::ALL {
                let r = map.ports(s, d, protocol);
                for w in r.windows(2) {
                    prop_assert!(u32::from(w[0].1) + 1 < u32::from(w[1].0), "{:?}", r);
                }
                for (lo, hi) in r {
                    prop_assert!(1 <= *lo && lo <= hi);
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn the_fast_path_agrees_with_the_reference_evaluator(
        c in arb::cluster(&ClusterShape::for_the_analyzer()),
        extra in 1u16..=65535,
    ) {
        check(&c, EvalOptions { ipblock_matches_workloads: true }, extra)?;
        check(&c, EvalOptions { ipblock_matches_workloads: false }, extra)?;
    }
}
