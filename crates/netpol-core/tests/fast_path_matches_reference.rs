//! Property test: on random small clusters using every feature of the model, the analyzer's truth
//! tables and connectivity map agree with the reference evaluator on every pair of endpoints
//! (workloads, and nodes when the cluster has them), for the family a flow prefers and, where
//! both ends are dual-stack, for each family alone; with random admin tiers too, where hairpin
//! flows (a workload reaching itself through a Service) are held against the evaluator as well.

use netpol_core::analysis::Analyzer;
use netpol_core::eval::{evaluate_ends, evaluate_hairpin, FlowEnd};
use netpol_core::model::*;
use netpol_test_support::arb::{self, ClusterShape, TierShape};
use proptest::prelude::*;

/// Endpoint `i` of the analyzer's outputs: workloads, then nodes.
fn end(c: &Cluster, i: usize) -> FlowEnd {
    if i < c.workloads.len() {
        FlowEnd::Workload {
            index: i,
            address: None,
        }
    } else {
        FlowEnd::Node(i - c.workloads.len())
    }
}

/// Where the admin rules' port numbers and ranges start and end, with their neighbours
/// (`interesting_ports` knows NetworkPolicy's only).
fn admin_ports(c: &Cluster) -> Vec<u16> {
    let mut out = Vec::new();
    for p in &c.admin_policies {
        for rule in p.ingress.iter().chain(&p.egress) {
            for port in rule.ports.iter().flatten() {
                if let AdminPort::Protocol {
                    ports: Some((start, end)),
                    ..
                } = port
                {
                    for q in [*start, *end] {
                        out.extend([q.saturating_sub(1), q, q.saturating_add(1)]);
                    }
                }
            }
        }
    }
    out.retain(|&p| p >= 1);
    out
}

fn in_ranges(r: &[(u16, u16)], port: u16) -> bool {
    r.iter().any(|(lo, hi)| *lo <= port && port <= *hi)
}

fn check(c: &Cluster, opts: EvalOptions, extra: u16) -> Result<(), TestCaseError> {
    let analyzer = Analyzer::new(c, opts);
    let map = analyzer.connectivity_map();
    let n = c.workloads.len() + c.nodes.len();
    let mut extras = vec![extra];
    extras.extend(admin_ports(c));
    let ports = netpol_test_support::interesting_ports([c], &extras);
    for protocol in Protocol::ALL {
        for &port in &ports {
            let table = analyzer.truth_table(protocol, port);
            for w in 0..c.workloads.len() {
                let v = evaluate_hairpin(c, opts, w, protocol, port);
                let what = format!("hairpin {w} {protocol}/{port} ({opts:?})\n{}", v.explain());
                prop_assert_eq!(table.hairpin_allowed(w), v.allowed, "truth table {}", what);
                let in_map = in_ranges(map.hairpin_ports(w, protocol), port);
                prop_assert_eq!(in_map, v.allowed, "map {}", what);
            }
            for s in 0..n {
                for d in 0..n {
                    let both_nodes = s >= c.workloads.len() && d >= c.workloads.len();
                    if both_nodes {
                        // The evaluator answers no flow without a workload; nothing isolates a node.
                        prop_assert!(table.allowed(s, d));
                        continue;
                    }
                    let fv = evaluate_ends(c, opts, &end(c, s), &end(c, d), protocol, port);
                    let Some(v) = fv.first() else {
                        return Err(TestCaseError::fail("evaluate_ends gave no verdict"));
                    };
                    let what = |kind: &str| {
                        format!(
                            "{kind} {s} -> {d} {protocol}/{port} ({opts:?})\n{}",
                            fv.explain()
                        )
                    };
                    prop_assert_eq!(table.allowed(s, d), v.allowed, "{}", what("truth table"));
                    let in_map = in_ranges(map.ports(s, d, protocol), port);
                    prop_assert_eq!(in_map, v.allowed, "{}", what("map"));
                    if fv.verdicts.len() == 2 {
                        for (f, v) in &fv.verdicts {
                            let Some(f) = *f else {
                                return Err(TestCaseError::fail("two verdicts without families"));
                            };
                            prop_assert_eq!(
                                table.allowed_in(s, d, f),
                                v.allowed,
                                "{} {}",
                                what("truth table"),
                                f
                            );
                            let in_map = in_ranges(map.ports_in(s, d, protocol, f), port);
                            prop_assert_eq!(in_map, v.allowed, "{} {}", what("map"), f);
                        }
                        prop_assert_eq!(table.by_family(s, d).is_some(), fv.differs());
                    } else {
                        prop_assert!(table.by_family(s, d).is_none());
                    }
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

    #[test]
    fn the_fast_path_agrees_with_the_reference_evaluator_through_the_admin_tiers(
        c in arb::with_tiers(
            arb::cluster(&ClusterShape::for_the_analyzer_with_nodes()),
            &TierShape::for_the_analyzer(),
        ),
        extra in 1u16..=65535,
    ) {
        check(&c, EvalOptions { ipblock_matches_workloads: true }, extra)?;
        check(&c, EvalOptions { ipblock_matches_workloads: false }, extra)?;
    }

    #[test]
    fn the_fast_path_agrees_with_the_reference_evaluator_with_nodes_present(
        c in arb::cluster(&ClusterShape::for_the_analyzer_with_nodes()),
        extra in 1u16..=65535,
    ) {
        check(&c, EvalOptions { ipblock_matches_workloads: true }, extra)?;
        check(&c, EvalOptions { ipblock_matches_workloads: false }, extra)?;
    }
}
