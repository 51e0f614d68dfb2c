//! The exact JSON and text documents of truth tables and connectivity maps.

mod common;

use common::*;
use netpol_core::analysis::Analyzer;
use netpol_core::model::*;
use serde_json::json;

/// vm-a accepts TCP 80-90 and UDP 53 from vm-b only; vm-b is open.
fn small() -> Cluster {
    let ws = vec![
        vm("p", "vm-b", &[("vm", "b")], &["10.0.0.2"]),
        vm("p", "vm-a", &[("vm", "a")], &["10.0.0.1"]),
    ];
    let mut pol = policy("p", "a-in", sel(&[("vm", "a")]), true, false);
    pol.ingress.push(Rule {
        peers: vec![pods_in_own_ns(&[("vm", "b")])],
        ports: vec![
            PolicyPort {
                protocol: Protocol::Tcp,
                port: Some(PortSpec::Range { start: 80, end: 90 }),
            },
            PolicyPort {
                protocol: Protocol::Udp,
                port: Some(PortSpec::Number(53)),
            },
        ],
    });
    cluster(vec![], ws, vec![pol])
}

#[test]
fn the_truth_table_json_lists_every_ordered_pair_in_key_order() {
    let c = small();
    let a = Analyzer::new(&c, up());
    // Sorted by key: p/vm-a (index 1) before p/vm-b (index 0).
    assert_eq!(a.workload_order(), vec![1, 0]);
    let t = a.truth_table(Protocol::Tcp, 22);
    let expected = json!({
        "port": 22,
        "protocol": "TCP",
        "workloads": ["p/vm-a", "p/vm-b"],
        "allowed": {
            "p/vm-a": {"p/vm-a": true, "p/vm-b": true},
            "p/vm-b": {"p/vm-a": false, "p/vm-b": true},
        }
    });
    assert_eq!(t.to_json(), expected);
    // The streaming serializer writes the same document, keys in the same order.
    assert_eq!(serde_json::to_string(&t).unwrap(), expected.to_string());
    assert_eq!(t.allowed_count(), 3);
    assert_eq!(t.denied_count(), 1);
}

#[test]
fn the_connectivity_map_json_gives_merged_ranges_per_protocol() {
    let c = small();
    let m = Analyzer::new(&c, up()).connectivity_map();
    let all = json!({"TCP": [[1, 65535]], "UDP": [[1, 65535]], "SCTP": [[1, 65535]]});
    let expected = json!({
        "workloads": ["p/vm-a", "p/vm-b"],
        "connections": {
            "p/vm-a": {"p/vm-a": all, "p/vm-b": all},
            "p/vm-b": {
                "p/vm-a": {"TCP": [[80, 90]], "UDP": [[53, 53]], "SCTP": []},
                "p/vm-b": all,
            },
        }
    });
    assert_eq!(m.to_json(), expected);
    assert_eq!(serde_json::to_string(&m).unwrap(), expected.to_string());
}

#[test]
fn the_connectivity_text_has_one_line_per_pair_with_anything_allowed() {
    let c = small();
    let m = Analyzer::new(&c, up()).connectivity_map();
    let text = m.to_text();
    assert_eq!(
        text,
        "p/vm-a -> p/vm-b  TCP 1-65535, UDP 1-65535, SCTP 1-65535\n\
         p/vm-b -> p/vm-a  TCP 80-90, UDP 53\n"
    );
}

#[test]
fn a_pod_and_a_vm_sharing_a_key_get_kind_prefixed_names() {
    let ws = vec![
        vm("p", "x", &[], &[]),
        pod("p", "x", &[], &[], &[]),
        vm("p", "y", &[], &[]),
    ];
    let c = cluster(vec![], ws, vec![]);
    let t = Analyzer::new(&c, up()).truth_table(Protocol::Tcp, 80);
    assert_eq!(
        t.to_json()["workloads"],
        json!(["pod/p/x", "vm/p/x", "p/y"])
    );
}

#[test]
fn workloads_no_policy_can_tell_apart_share_an_identity() {
    let ws = vec![
        vm("p", "a1", &[("app", "a")], &["10.0.0.1"]),
        vm("p", "a2", &[("app", "a")], &["10.0.0.2"]),
        vm("q", "a3", &[("app", "a")], &["10.0.0.3"]),
    ];
    let mut pol = policy("p", "in", sel(&[("app", "a")]), true, false);
    pol.ingress.push(Rule {
        peers: vec![block("10.0.0.2/32", &[])],
        ports: vec![],
    });
    let c = cluster(vec![], ws, vec![pol]);
    // Upstream mode: the ipBlock tells a1 and a2 apart; a3 differs by namespace.
    let a = Analyzer::new(&c, up());
    assert_eq!(a.identity_count(), 3);
    assert!(a.truth_table(Protocol::Tcp, 80).allowed(1, 0));
    assert!(!a.truth_table(Protocol::Tcp, 80).allowed(2, 0));
    // Cilium mode: ipBlocks never match workloads, so addresses do not matter.
    let a = Analyzer::new(&c, cilium());
    assert_eq!(a.identity_count(), 2);
    assert_eq!(a.identity_of(0), a.identity_of(1));
    // Two workloads of one identity still get their own self pair.
    let t = a.truth_table(Protocol::Tcp, 80);
    assert!(t.allowed(0, 0));
    assert!(!t.allowed(1, 0));
}
