//! Property: on random small two-node clusters, the nodes' tables together decide every flow the
//! way netpol-core's reference evaluator does.

mod common;

use std::net::IpAddr;

use common::*;
use netpol_core::*;
use netpol_nft::{compile, Ruleset};
use proptest::prelude::*;

const NODES: [&str; 2] = ["n1", "n2"];
const PORTS: [u16; 6] = [53, 79, 80, 81, 8080, 9000];
const EXTERNAL: [&str; 4] = ["192.0.2.5", "192.0.2.200", "203.0.113.9", "2001:db8::5"];

fn selector() -> impl Strategy<Value = LabelSelector> {
    prop_oneof![
        Just(LabelSelector::everything()),
        prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(|v| sel(&[("app", v)])),
        Just(LabelSelector {
            match_labels: Labels::new(),
            match_expressions: vec![SelectorRequirement {
                key: "app".into(),
                operator: SelectorOperator::NotIn,
                values: vec!["a".into()],
            }],
        }),
    ]
}

fn ns_selector() -> impl Strategy<Value = Option<LabelSelector>> {
    prop_oneof![
        Just(None),
        Just(Some(LabelSelector::everything())),
        Just(Some(sel(&[("team", "x")]))),
        Just(Some(sel(&[(NAMESPACE_NAME_LABEL, "ns1")]))),
    ]
}

fn peer() -> impl Strategy<Value = Peer> {
    let blocks = prop_oneof![
        Just(block("10.0.0.0/30", &["10.0.0.2/32"])),
        Just(block("10.0.0.0/24", &[])),
        Just(block("192.0.2.0/25", &["192.0.2.0/30"])),
        Just(block("0.0.0.0/0", &["10.0.0.0/29"])),
        Just(block("fd00::/120", &[])),
        Just(block("::/0", &["fd00::/126"])),
        Just(block("203.0.113.0/24", &[])),
    ];
    prop_oneof![
        3 => (prop::option::of(selector()), ns_selector())
            .prop_filter("a selector peer sets one of its selectors", |(p, n)| p.is_some() || n.is_some())
            .prop_map(|(pod_selector, namespace_selector)| Peer::Selector { pod_selector, namespace_selector }),
        2 => blocks,
    ]
}

fn policy_port() -> impl Strategy<Value = PolicyPort> {
    let proto = prop_oneof![
        Just(Protocol::Tcp),
        Just(Protocol::Udp),
        Just(Protocol::Sctp)
    ];
    let spec = prop_oneof![
        Just(None),
        prop_oneof![Just(53u16), Just(80), Just(8080)].prop_map(|n| Some(PortSpec::Number(n))),
        Just(Some(PortSpec::Range { start: 79, end: 81 })),
        prop_oneof![Just("http"), Just("dns")].prop_map(|n| Some(PortSpec::Named(n.into()))),
    ];
    (proto, spec).prop_map(|(protocol, port)| PolicyPort { protocol, port })
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::collection::vec(peer(), 0..3),
        prop::collection::vec(policy_port(), 0..3),
    )
        .prop_map(|(peers, ports)| Rule { peers, ports })
}

fn a_policy() -> impl Strategy<Value = Policy> {
    (
        prop_oneof![Just("ns0"), Just("ns1")],
        selector(),
        (any::<bool>(), any::<bool>()),
        prop::collection::vec(rule(), 0..3),
        prop::collection::vec(rule(), 0..3),
    )
        .prop_map(|(ns, pod_selector, (i, e), ingress, egress)| Policy {
            namespace: ns.into(),
            name: "p".into(),
            pod_selector,
            affects_ingress: i || !e,
            affects_egress: e,
            ingress,
            egress,
            origin: None,
        })
}

fn a_workload() -> impl Strategy<Value = (&'static str, &'static str, usize, bool, u8)> {
    (
        prop_oneof![Just("ns0"), Just("ns1")],
        prop_oneof![Just("a"), Just("b"), Just("c")],
        0..2usize,
        prop::bool::weighted(0.25),
        0..4u8,
    )
}

fn a_cluster() -> impl Strategy<Value = (Cluster, bool)> {
    (
        prop::collection::vec(a_workload(), 2..6),
        prop::collection::vec(a_policy(), 0..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(ws, mut ps, team_x, opts)| {
            let workloads = ws
                .iter()
                .enumerate()
                .map(|(i, (ns, app, node, v6, ports))| {
                    // Addresses 10.0.0.0/29 and fd00::/125 fall inside and around the blocks.
                    let addr = if *v6 {
                        format!("fd00::{i}")
                    } else {
                        format!("10.0.0.{i}")
                    };
                    let mut named = vec![];
                    if ports & 1 == 1 {
                        named.push(("http", Protocol::Tcp, if i % 2 == 0 { 80 } else { 8080 }));
                    }
                    if ports & 2 == 2 {
                        named.push(("dns", Protocol::Udp, 53));
                    }
                    pod(
                        ns,
                        &format!("w{i}"),
                        &[("app", app)],
                        &[addr.as_str()],
                        NODES[*node],
                        &named,
                    )
                })
                .collect();
            for (i, p) in ps.iter_mut().enumerate() {
                p.name = format!("p{i}");
            }
            let mut c = cluster(&["ns0", "ns1"], workloads, ps);
            if team_x {
                if let Some(ns) = c.namespaces.iter_mut().find(|n| n.name == "ns1") {
                    ns.labels.insert("team".into(), "x".into());
                }
            }
            (c, opts)
        })
}

/// What the two nodes decide together: every node whose table sees the packet must pass it.
fn cluster_verdict(tables: &[Ruleset], src: IpAddr, dst: IpAddr, p: Protocol, port: u16) -> bool {
    tables.iter().all(|t| t.verdict(src, dst, p, port))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn node_tables_together_agree_with_the_reference_evaluator((c, ipblock) in a_cluster()) {
        let opts = EvalOptions { ipblock_matches_workloads: ipblock };
        let tables: Vec<Ruleset> = NODES.iter().map(|n| compile(&c, opts, n).unwrap()).collect();
        let mut ends: Vec<(Endpoint, IpAddr)> = c
            .workloads
            .iter()
            .enumerate()
            .map(|(i, w)| (Endpoint::Workload(i), w.addresses[0]))
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
                        let expected = evaluate(&c, opts, s, d, p, port).allowed;
                        let got = cluster_verdict(&tables, *sa, *da, p, port);
                        prop_assert_eq!(
                            got, expected,
                            "{} -> {} {} {}: tables {}, evaluator {}",
                            s.describe(&c), d.describe(&c), p, port, got, expected
                        );
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_tables_pass_nft_check((c, ipblock) in a_cluster()) {
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
