//! Random small clusters for the property tests (two nodes, two namespaces, addresses in and
//! around the ipBlocks the policies use).

#![allow(dead_code)]

use netpol_core::*;
use proptest::prelude::*;

use crate::common::*;

pub const NODES: [&str; 2] = ["n1", "n2"];

pub fn selector() -> impl Strategy<Value = LabelSelector> {
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

pub fn ns_selector() -> impl Strategy<Value = Option<LabelSelector>> {
    prop_oneof![
        Just(None),
        Just(Some(LabelSelector::everything())),
        Just(Some(sel(&[("team", "x")]))),
        Just(Some(sel(&[(NAMESPACE_NAME_LABEL, "ns1")]))),
    ]
}

pub fn peer() -> impl Strategy<Value = Peer> {
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

pub fn policy_port() -> impl Strategy<Value = PolicyPort> {
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

pub fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::collection::vec(peer(), 0..3),
        prop::collection::vec(policy_port(), 0..3),
    )
        .prop_map(|(peers, ports)| Rule { peers, ports })
}

pub fn a_policy() -> impl Strategy<Value = Policy> {
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

pub fn a_workload() -> impl Strategy<Value = (&'static str, &'static str, usize, bool, u8)> {
    (
        prop_oneof![Just("ns0"), Just("ns1")],
        prop_oneof![Just("a"), Just("b"), Just("c")],
        0..2usize,
        prop::bool::weighted(0.25),
        0..4u8,
    )
}

pub fn a_cluster() -> impl Strategy<Value = (Cluster, bool)> {
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
