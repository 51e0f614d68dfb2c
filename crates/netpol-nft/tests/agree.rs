//! Property: on random small two-node clusters, the nodes' tables together decide every flow the
//! way netpol-core's reference evaluator does, with and without admin tiers (hairpin flows
//! through a Service included).

mod common;

use std::net::IpAddr;

use common::*;
use netpol_core::*;
use netpol_nft::{compile, Ruleset};
use netpol_test_support::arb::{self, ClusterShape, TierShape, NODES};
use proptest::prelude::*;

const PORTS: [u16; 6] = [53, 79, 80, 81, 8080, 9000];
const EXTERNAL: [&str; 4] = ["192.0.2.5", "192.0.2.200", "203.0.113.9", "2001:db8::5"];

/// What the two nodes decide together: every node whose table sees the packet must pass it.
fn cluster_verdict(tables: &[Ruleset], src: IpAddr, dst: IpAddr, p: Protocol, port: u16) -> bool {
    tables.iter().all(|t| t.verdict(src, dst, p, port))
}

/// Every pair of ends, port and protocol: the tables' answer against the evaluator's; and every
/// workload's hairpin flow against [`evaluate_hairpin`].
fn assert_agreement(c: &Cluster, opts: EvalOptions) -> Result<(), TestCaseError> {
    let tables = NODES
        .iter()
        .map(|n| compile(c, opts, n))
        .collect::<Result<Vec<Ruleset>, _>>()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (i, w) in c.workloads.iter().enumerate() {
        for a in &w.addresses {
            for p in Protocol::ALL {
                for port in PORTS {
                    let expected = evaluate_hairpin(c, opts, i, p, port).allowed;
                    let got = cluster_verdict(&tables, *a, *a, p, port);
                    prop_assert_eq!(
                        got,
                        expected,
                        "hairpin {} ({}) {} {}: tables {}, evaluator {}",
                        w.key(),
                        a,
                        p,
                        port,
                        got,
                        expected
                    );
                }
            }
        }
    }
    let mut ends: Vec<(Endpoint, IpAddr)> = c
        .workloads
        .iter()
        .enumerate()
        // Controllers (address-less pod templates) send and receive nothing of their own;
        // they are in the cluster so that they may change identities and peers.
        .filter_map(|(i, w)| Some((Endpoint::Workload(i), *w.addresses.first()?)))
        .collect();
    ends.extend(EXTERNAL.iter().map(|a| (Endpoint::External(ip(a)), ip(a))));
    for (s, sa) in &ends {
        for (d, da) in &ends {
            if sa == da || sa.is_ipv6() != da.is_ipv6() {
                continue;
            }
            if matches!((s, d), (Endpoint::External(_), Endpoint::External(_))) {
                continue;
            }
            for p in Protocol::ALL {
                for port in PORTS {
                    let expected = evaluate(c, opts, s, d, p, port).allowed;
                    let got = cluster_verdict(&tables, *sa, *da, p, port);
                    prop_assert_eq!(
                        got,
                        expected,
                        "{} -> {} {} {}: tables {}, evaluator {}",
                        s.describe(c),
                        d.describe(c),
                        p,
                        port,
                        got,
                        expected
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn node_tables_together_agree_with_the_reference_evaluator(
        c in arb::cluster(&ClusterShape::on_two_nodes()),
        ipblock in any::<bool>(),
    ) {
        assert_agreement(&c, EvalOptions { ipblock_matches_workloads: ipblock })?;
    }

    #[test]
    fn node_tables_with_admin_tiers_agree_with_the_reference_evaluator(
        c in arb::with_tiers(arb::cluster(&ClusterShape::on_two_nodes()), &TierShape::for_the_compiler()),
        ipblock in any::<bool>(),
    ) {
        assert_agreement(&c, EvalOptions { ipblock_matches_workloads: ipblock })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// With Node objects, admin `nodes` peers match their addresses: every workload's flow to
    /// every node address (a packet from a node to its own workloads never crosses the table, so
    /// node addresses are only destinations here).
    #[test]
    fn egress_to_node_addresses_agrees_with_the_reference_evaluator(
        c in arb::with_tiers(
            arb::cluster(&ClusterShape { node_objects: true, ..ClusterShape::on_two_nodes() }),
            &TierShape::for_the_compiler(),
        ),
    ) {
        let opts = EvalOptions::default();
        let tables = NODES
            .iter()
            .map(|n| compile(&c, opts, n))
            .collect::<Result<Vec<Ruleset>, _>>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (i, w) in c.workloads.iter().enumerate() {
            let Some(sa) = w.addresses.first() else { continue };
            for da in c.nodes.iter().flat_map(|n| &n.addresses) {
                if sa.is_ipv6() != da.is_ipv6() {
                    continue;
                }
                for p in Protocol::ALL {
                    for port in PORTS {
                        let d = Endpoint::External(*da);
                        let expected = evaluate(&c, opts, &Endpoint::Workload(i), &d, p, port).allowed;
                        let got = cluster_verdict(&tables, *sa, *da, p, port);
                        prop_assert_eq!(got, expected, "{} -> node {} {} {}", w.key(), da, p, port);
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_tables_pass_nft_check(
        c in arb::with_tiers(arb::cluster(&ClusterShape::on_two_nodes()), &TierShape::for_the_compiler()),
        ipblock in any::<bool>(),
    ) {
        if !nft_available() {
            return Ok(());
        }
        let opts = EvalOptions { ipblock_matches_workloads: ipblock };
        for n in NODES {
            let r = compile(&c, opts, n).unwrap();
            if let Err(e) = nft_check(&r.text) {
                prop_assert!(false, "nft rejected:\n{}\n{}", e, r.text);
            }
        }
    }
}
