//! The node rule and per-family answers, from the NetworkPolicy API: a workload always accepts
//! traffic from its own node; another node is an external address (ipBlocks decide); a node is
//! never isolated; an ipBlock admits only addresses of its own family. The evaluator and the
//! analyzer (its node endpoints and per-family tables) are both asked.

mod common;

use common::*;
use netpol_core::analysis::Analyzer;
use netpol_core::eval::{evaluate_ends, DirectionVerdict, FlowEnd};
use netpol_core::model::*;
use Protocol::Tcp;

/// vm `p/a` (dual-stack) on n1 isolated for ingress with one rule from `from`, `p/b` (dual-stack)
/// on n2 egress-isolated to `to`; nodes n1, n2 with both families.
fn cluster_with(from: Vec<Peer>, to: Vec<Peer>) -> Cluster {
    let mut a = vm("p", "a", &[("vm", "a")], &["10.0.0.1", "fd00::1"]);
    a.node = Some("n1".into());
    let mut b = vm("p", "b", &[("vm", "b")], &["10.0.0.2", "fd00::2"]);
    b.node = Some("n2".into());
    let policies = vec![
        Policy {
            ingress: vec![rule(from, vec![tcp(80)])],
            ..policy("p", "a-in", sel(&[("vm", "a")]), true, false)
        },
        Policy {
            egress: vec![rule(to, vec![])],
            ..policy("p", "b-out", sel(&[("vm", "b")]), false, true)
        },
    ];
    let mut c = cluster(vec![], vec![a, b], policies);
    c.nodes = ["n1", "n2"]
        .iter()
        .enumerate()
        .map(|(i, n)| Node {
            name: n.to_string(),
            addresses: vec![
                ip(&format!("192.0.2.{}", 11 + i)),
                ip(&format!("2001:db8::{}", 11 + i)),
            ],
            ..Node::default()
        })
        .collect();
    c
}

fn w(index: usize) -> FlowEnd {
    FlowEnd::Workload {
        index,
        address: None,
    }
}

#[test]
fn the_own_node_reaches_an_ingress_isolated_workload_on_any_port() {
    let c = cluster_with(vec![pods_in_own_ns(&[("vm", "b")])], vec![]);
    let v = evaluate_ends(&c, up(), &FlowEnd::Node(0), &w(0), Tcp, 22);
    assert!(v.allowed(), "{}", v.explain());
    let first = v.first().unwrap();
    assert_eq!(
        first.ingress,
        DirectionVerdict::OwnNode { node: "n1".into() }
    );
    assert!(matches!(first.egress, DirectionVerdict::Node { .. }));
    let t = Analyzer::new(&c, up()).truth_table(Tcp, 22);
    assert!(t.allowed(2, 0), "node n1 (endpoint 2) -> p/a");
    assert!(!t.allowed(3, 0), "node n2 (endpoint 3) is not p/a's node");
}

#[test]
fn another_node_is_admitted_only_by_an_ip_block_of_its_family() {
    let c = cluster_with(vec![block("192.0.2.0/24", &[])], vec![]);
    let v = evaluate_ends(&c, up(), &FlowEnd::Node(1), &w(0), Tcp, 80);
    assert!(v.differs(), "{}", v.explain());
    assert_eq!(v.verdicts[0].0, Some(IpFamily::V4));
    assert!(v.verdicts[0].1.allowed);
    assert!(!v.verdicts[1].1.allowed);
    let t = Analyzer::new(&c, up()).truth_table(Tcp, 80);
    assert_eq!(t.by_family(3, 0), Some([true, false]));
    // The ipBlock decides for a node even where ipBlocks never match workloads.
    let cilium = EvalOptions {
        ipblock_matches_workloads: false,
    };
    let v = evaluate_ends(&c, cilium, &FlowEnd::Node(1), &w(0), Tcp, 80);
    assert!(v.verdicts[0].1.allowed, "{}", v.explain());
}

#[test]
fn egress_to_a_node_is_egress_to_its_address_and_nothing_isolates_the_node() {
    let c = cluster_with(vec![], vec![block("0.0.0.0/0", &[])]);
    let v = evaluate_ends(&c, up(), &w(1), &FlowEnd::Node(0), Tcp, 10250);
    assert!(
        v.differs(),
        "0.0.0.0/0 admits no IPv6 address: {}",
        v.explain()
    );
    let m = Analyzer::new(&c, up()).connectivity_map();
    assert!(m.differs(1, 2));
    assert_eq!(m.ports_in(1, 2, Tcp, IpFamily::V4), &[(1, 65535)]);
    assert!(m.ports_in(1, 2, Tcp, IpFamily::V6).is_empty());
    // p/a is not egress-isolated: it reaches every node, which no policy isolates.
    let v = evaluate_ends(&c, up(), &w(0), &FlowEnd::Node(1), Tcp, 1);
    assert!(v.allowed() && !v.differs(), "{}", v.explain());
}

#[test]
fn an_exact_address_fixes_the_family_of_a_dual_stack_pair() {
    let c = cluster_with(vec![block("fd00::/64", &[])], vec![]);
    let at = |index: usize, a: &str| FlowEnd::Workload {
        index,
        address: Some(ip(a)),
    };
    let v6 = evaluate_ends(&c, up(), &at(1, "fd00::2"), &w(0), Tcp, 80);
    assert_eq!(v6.verdicts.len(), 1);
    let v = &v6.verdicts[0].1;
    assert!(v.allowed, "{}", v.explain());
    assert_eq!(
        (v.src_address, v.dst_address),
        (Some(ip("fd00::2")), Some(ip("fd00::1")))
    );
    let v4 = evaluate_ends(&c, up(), &at(1, "10.0.0.2"), &w(0), Tcp, 80);
    assert!(!v4.allowed(), "fd00::/64 does not admit 10.0.0.2");
    // Named by workload, the pair gets both answers, and the analyzer agrees on each.
    let both = evaluate_ends(&c, up(), &w(1), &w(0), Tcp, 80);
    assert!(both.differs());
    let t = Analyzer::new(&c, up()).truth_table(Tcp, 80);
    assert_eq!(t.by_family(1, 0), Some([false, true]));
}
