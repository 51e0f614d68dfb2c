//! Exposure: one test per category, and a property test holding every category against the plain
//! evaluator on random clusters (workloads, nodes, ipBlocks with holes, named ports).

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use netpol_core::eval::{evaluate, Endpoint};
use netpol_core::exposure::{exposure, AddressGrant, Exposure, WorkloadExposure};
use netpol_core::model::*;
use netpol_test_support::arb::{self, ClusterShape};
use netpol_test_support::*;
use proptest::prelude::*;

fn of<'a>(e: &'a Exposure, key: &str) -> &'a WorkloadExposure {
    e.workloads
        .iter()
        .find(|w| w.workload == key)
        .unwrap_or_else(|| panic!("no exposure for {key}"))
}

fn grants_cover(grants: &[AddressGrant], a: IpAddr, p: Protocol, port: u16) -> bool {
    grants.iter().any(|g| {
        g.protocol == p
            && g.ports.iter().any(|&(lo, hi)| lo <= port && port <= hi)
            && g.addresses.contains(a)
    })
}

fn two_vms(policies: Vec<Policy>) -> Cluster {
    cluster(
        namespaces(&["test-project", "other"]),
        vec![
            vm("test-project", "vm-a", &[("vm", "a")], &["10.66.0.1"]),
            vm("other", "vm-c", &[("vm", "c")], &["10.66.0.3"]),
        ],
        policies,
    )
}

fn ingress_of_a(rules: Vec<Rule>) -> Policy {
    let mut p = policy("test-project", "p", sel(&[("vm", "a")]), true, false);
    p.ingress = rules;
    p
}

#[test]
fn a_vm_open_to_an_ip_block_accepts_exactly_that_block_from_outside() {
    let c = two_vms(vec![ingress_of_a(vec![rule(
        vec![block("192.0.2.0/24", &["192.0.2.128/25"])],
        vec![tcp(22)],
    )])]);
    let e = exposure(&c, EvalOptions::default());
    let a = of(&e, "test-project/vm-a");
    assert_eq!(a.from_outside.len(), 1, "{:?}", a.from_outside);
    let g = &a.from_outside[0];
    assert_eq!(
        (g.protocol, g.ports.clone(), g.anywhere),
        (Protocol::Tcp, vec![(22, 22)], false)
    );
    assert_eq!(g.blocks, vec!["192.0.2.0/25".to_string()]);
    assert!(a.from_every_namespace.is_empty());
    assert!(a.from_everything.is_empty());
}

#[test]
fn a_rule_without_peers_opens_its_ports_to_everything() {
    let c = two_vms(vec![ingress_of_a(vec![rule(vec![], vec![tcp(22)])])]);
    let e = exposure(&c, EvalOptions::default());
    let a = of(&e, "test-project/vm-a");
    assert_eq!(a.from_everything.tcp, vec![(22, 22)]);
    assert!(a.from_everything.udp.is_empty());
    assert!(a
        .from_outside
        .iter()
        .any(|g| g.anywhere && g.ports == [(22, 22)]));
}

#[test]
fn a_namespace_selector_for_everything_opens_to_every_namespace_but_not_outside() {
    let all_ns = Peer::Selector {
        pod_selector: None,
        namespace_selector: Some(LabelSelector::everything()),
    };
    let c = two_vms(vec![ingress_of_a(vec![rule(vec![all_ns], vec![tcp(80)])])]);
    let e = exposure(&c, EvalOptions::default());
    let a = of(&e, "test-project/vm-a");
    assert_eq!(a.from_every_namespace.tcp, vec![(80, 80)]);
    assert!(a.from_everything.is_empty());
    assert!(a.from_outside.is_empty());
}

#[test]
fn egress_to_an_ip_block_reaches_outside_without_the_workload_addresses_it_contains() {
    let mut p = policy("test-project", "out", sel(&[("vm", "a")]), false, true);
    p.egress = vec![rule(
        vec![block("10.66.0.0/30", &[])],
        vec![port(Protocol::Udp, Some(PortSpec::Number(53)))],
    )];
    let c = two_vms(vec![p]);
    let e = exposure(&c, EvalOptions::default());
    let a = of(&e, "test-project/vm-a");
    assert_eq!(a.to_outside.len(), 1);
    let g = &a.to_outside[0];
    assert!(g.addresses.contains(ip("10.66.0.2")));
    assert!(!g.addresses.contains(ip("10.66.0.1")) && !g.addresses.contains(ip("10.66.0.3")));
    // Shown as the block it was written as.
    assert_eq!(g.blocks, vec!["10.66.0.0/30".to_string()]);
    // vm-c is not isolated: it reaches everything outside on every port.
    let vm_c = of(&e, "other/vm-c");
    assert!(vm_c
        .to_outside
        .iter()
        .all(|g| g.anywhere && g.ports == [(1, 65535)]));
}

#[test]
fn a_vm_isolated_both_ways_without_rules_exposes_nothing() {
    let c = two_vms(vec![policy(
        "test-project",
        "deny",
        sel(&[("vm", "a")]),
        true,
        true,
    )]);
    let e = exposure(&c, EvalOptions::default());
    assert!(of(&e, "test-project/vm-a").is_closed());
    assert!(!of(&e, "other/vm-c").is_closed());
}

/// The first and last address of every CIDR and hole, their outer neighbours, and a few fixed
/// ones; only those outside the cluster (no workload's, no node's).
fn outside_probes(c: &Cluster) -> Vec<IpAddr> {
    let mut s: BTreeSet<IpAddr> = [
        "192.0.2.1",
        "198.51.100.7",
        "8.8.8.8",
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "2001:db8::1",
        "fd00::1",
        "10.0.0.1",
    ]
    .iter()
    .map(|a| ip(a))
    .collect();
    let mut add_net = |n: &IpNet| {
        for a in [n.network(), n.broadcast()] {
            s.insert(a);
            match a {
                IpAddr::V4(v) => {
                    let x = u32::from(v);
                    s.insert(IpAddr::V4(x.wrapping_sub(1).into()));
                    s.insert(IpAddr::V4(x.wrapping_add(1).into()));
                }
                IpAddr::V6(v) => {
                    let x = u128::from(v);
                    s.insert(IpAddr::V6(x.wrapping_sub(1).into()));
                    s.insert(IpAddr::V6(x.wrapping_add(1).into()));
                }
            }
        }
    };
    for p in &c.policies {
        for r in p.ingress.iter().chain(&p.egress) {
            for peer in &r.peers {
                if let Peer::IpBlock(b) = peer {
                    add_net(&b.cidr);
                    b.except.iter().for_each(&mut add_net);
                }
            }
        }
    }
    for r in c
        .admin_policies
        .iter()
        .flat_map(|p| p.ingress.iter().chain(&p.egress))
    {
        for peer in &r.peers {
            if let AdminPeer::Networks(nets) = peer {
                nets.iter().for_each(&mut add_net);
            }
        }
    }
    for addresses in c.resolved_names.values() {
        for a in addresses {
            add_net(&IpNet::from(*a));
        }
    }
    s.into_iter()
        .filter(|a| !c.workloads.iter().any(|w| w.addresses.contains(a)))
        .filter(|a| !c.nodes.iter().any(|n| n.addresses.contains(a)))
        .collect()
}

fn check(c: &Cluster, opts: EvalOptions) -> Result<(), TestCaseError> {
    let e = exposure(c, opts);
    let ports = netpol_test_support::interesting_ports([c], &[]);
    let probes = outside_probes(c);
    for we in &e.workloads {
        let w = we.index;
        for p in Protocol::ALL {
            for &port in &ports {
                let others: Vec<usize> = (0..c.workloads.len()).filter(|&v| v != w).collect();
                let every = !others.is_empty()
                    && others.iter().all(|&v| {
                        evaluate(
                            c,
                            opts,
                            &Endpoint::Workload(v),
                            &Endpoint::Workload(w),
                            p,
                            port,
                        )
                        .ingress
                        .allows()
                    });
                prop_assert_eq!(
                    we.from_every_namespace.contains(p, port),
                    every,
                    "every namespace {} {} {}",
                    we.workload,
                    p,
                    port
                );
                let mut all_outside = true;
                for &a in &probes {
                    let inbound = evaluate(
                        c,
                        opts,
                        &Endpoint::External(a),
                        &Endpoint::Workload(w),
                        p,
                        port,
                    )
                    .ingress
                    .allows();
                    prop_assert_eq!(
                        grants_cover(&we.from_outside, a, p, port),
                        inbound,
                        "from {} to {} {} {}",
                        a,
                        we.workload,
                        p,
                        port
                    );
                    all_outside &= inbound;
                    let outbound = evaluate(
                        c,
                        opts,
                        &Endpoint::Workload(w),
                        &Endpoint::External(a),
                        p,
                        port,
                    )
                    .egress
                    .allows();
                    prop_assert_eq!(
                        grants_cover(&we.to_outside, a, p, port),
                        outbound,
                        "from {} to {} {} {}",
                        we.workload,
                        a,
                        p,
                        port
                    );
                }
                if we.from_everything.contains(p, port) {
                    prop_assert!(
                        every && all_outside,
                        "everything {} {} {}",
                        we.workload,
                        p,
                        port
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn exposure_agrees_with_the_reference_evaluator(c in arb::cluster(&ClusterShape::for_the_analyzer_with_nodes())) {
        check(&c, EvalOptions { ipblock_matches_workloads: true })?;
        check(&c, EvalOptions { ipblock_matches_workloads: false })?;
    }

    #[test]
    fn exposure_under_the_admin_tiers_agrees_with_the_reference_evaluator(
        c in arb::with_tiers(
            arb::cluster(&ClusterShape::for_the_analyzer_with_nodes()),
            &arb::TierShape::for_the_analyzer(),
        )
    ) {
        check(&c, EvalOptions { ipblock_matches_workloads: true })?;
    }
}

/// A dual-stack cluster: vm-a isolated for ingress by `rules`, vm-c and vm-d open.
fn dual_stack(rules: Vec<Rule>) -> Cluster {
    cluster(
        namespaces(&["test-project", "other"]),
        vec![
            vm(
                "test-project",
                "vm-a",
                &[("vm", "a")],
                &["10.66.0.1", "fd00:66::1"],
            ),
            vm(
                "other",
                "vm-c",
                &[("vm", "c")],
                &["10.66.0.3", "fd00:66::3"],
            ),
            vm("other", "vm-d", &[("vm", "d")], &["fd00:66::4"]),
        ],
        vec![ingress_of_a(rules)],
    )
}

fn both_settings(c: &Cluster) {
    for ipblock_matches_workloads in [true, false] {
        let opts = EvalOptions {
            ipblock_matches_workloads,
        };
        if let Err(e) = check(c, opts) {
            panic!("{ipblock_matches_workloads}: {e}");
        }
    }
}

#[test]
fn an_empty_cluster_exposes_nothing_and_counts_every_address_as_outside() {
    let c = cluster(vec![], vec![], vec![]);
    let e = exposure(&c, EvalOptions::default());
    assert!(e.workloads.is_empty());
    assert!(e.outside.contains(ip("10.0.0.1")) && e.outside.contains(ip("::1")));
    both_settings(&c);
}

#[test]
fn every_address_with_holes_in_both_families_agrees_with_the_evaluator() {
    let c = dual_stack(vec![
        rule(vec![block("0.0.0.0/0", &["192.0.2.0/24"])], vec![tcp(80)]),
        rule(
            vec![block("::/0", &["2001:db8::/32"])],
            vec![tcp(80), tcp(443)],
        ),
    ]);
    both_settings(&c);
    let e = exposure(&c, EvalOptions::default());
    let a = of(&e, "test-project/vm-a");
    assert!(grants_cover(
        &a.from_outside,
        ip("198.51.100.1"),
        Protocol::Tcp,
        80
    ));
    assert!(!grants_cover(
        &a.from_outside,
        ip("192.0.2.1"),
        Protocol::Tcp,
        80
    ));
    assert!(grants_cover(
        &a.from_outside,
        ip("2001:db9::1"),
        Protocol::Tcp,
        443
    ));
    assert!(!grants_cover(
        &a.from_outside,
        ip("2001:db8::1"),
        Protocol::Tcp,
        443
    ));
}

#[test]
fn ip_blocks_of_every_address_of_both_families_are_the_same_as_no_peers() {
    let blocks = dual_stack(vec![rule(
        vec![block("0.0.0.0/0", &[]), block("::/0", &[])],
        vec![tcp(80)],
    )]);
    let no_peers = dual_stack(vec![rule(vec![], vec![tcp(80)])]);
    both_settings(&blocks);
    let (e, f) = (
        exposure(&blocks, EvalOptions::default()),
        exposure(&no_peers, EvalOptions::default()),
    );
    let (a, b) = (of(&e, "test-project/vm-a"), of(&f, "test-project/vm-a"));
    assert!(
        a.from_outside.iter().all(|g| g.anywhere),
        "{:?}",
        a.from_outside
    );
    assert_eq!(a.from_outside, b.from_outside);
}

#[test]
fn every_grant_open_to_all_outside_addresses_shares_one_address_set() {
    // vm-c and vm-d are not isolated: every grant of theirs is "anywhere", as is vm-a's
    // ingress rule without peers.
    let c = dual_stack(vec![rule(vec![], vec![tcp(80)])]);
    let e = exposure(&c, EvalOptions::default());
    let anywhere: Vec<&AddressGrant> = e
        .workloads
        .iter()
        .flat_map(|w| w.from_outside.iter().chain(&w.to_outside))
        .filter(|g| g.anywhere)
        .collect();
    assert!(anywhere.len() >= 3 * 4, "{anywhere:?}");
    for g in anywhere {
        assert!(std::sync::Arc::ptr_eq(&g.addresses, &e.outside));
    }
}
