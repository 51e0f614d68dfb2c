//! One test per NetworkPolicy rule of the Kubernetes API documentation, on hand-built clusters.
//! Every workload-to-workload check runs the reference evaluator, the truth table and the
//! connectivity map (see `common::flow`).

mod common;

use common::*;
use netpol_core::eval::{flow_addresses, DirectionVerdict, Mismatch};
use netpol_core::model::*;
use Protocol::{Sctp, Tcp, Udp};

fn two_vms() -> Vec<Workload> {
    vec![
        vm("p", "a", &[("vm", "a")], &["10.0.0.1"]),
        vm("p", "b", &[("vm", "b")], &["10.0.0.2"]),
    ]
}

#[test]
fn a_workload_no_policy_isolates_is_open_both_ways() {
    let c = cluster(vec![], two_vms(), vec![]);
    assert!(allowed(&c, up(), "p/a", "p/b", Tcp, 80));
    assert!(allowed(&c, up(), "p/b", "p/a", Udp, 53));
    assert!(allowed(&c, up(), "p/a", "192.0.2.1", Sctp, 9));
    assert!(allowed(&c, up(), "192.0.2.1", "p/a", Tcp, 22));
    let v = flow(&c, up(), "p/a", "p/b", Tcp, 80);
    assert_eq!(v.egress, DirectionVerdict::Open);
    assert_eq!(v.ingress, DirectionVerdict::Open);
}

#[test]
fn a_policy_selects_only_workloads_of_its_own_namespace() {
    let ws = vec![
        vm("p", "a", &[("vm", "a")], &["10.0.0.1"]),
        vm("q", "a", &[("vm", "a")], &["10.0.0.2"]),
        vm("p", "c", &[("vm", "c")], &["10.0.0.3"]),
    ];
    let deny = policy("p", "deny", sel(&[("vm", "a")]), true, false);
    let c = cluster(vec![], ws, vec![deny]);
    assert!(!allowed(&c, up(), "p/c", "p/a", Tcp, 80));
    // Same labels, other namespace: not selected.
    assert!(allowed(&c, up(), "p/c", "q/a", Tcp, 80));
}

#[test]
fn an_empty_pod_selector_selects_every_workload_of_the_namespace() {
    let ws = vec![
        vm("p", "a", &[("vm", "a")], &[]),
        vm("p", "b", &[], &[]),
        vm("q", "c", &[], &[]),
    ];
    let deny = policy("p", "deny-all", LabelSelector::everything(), true, false);
    let c = cluster(vec![], ws, vec![deny]);
    assert!(!allowed(&c, up(), "q/c", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "q/c", "p/b", Tcp, 80));
    assert!(allowed(&c, up(), "p/a", "q/c", Tcp, 80));
}

#[test]
fn isolation_is_per_direction_and_follows_policy_types() {
    // Affects egress only, no egress rules: egress is denied, ingress stays open.
    let p = policy("p", "deny-egress", sel(&[("vm", "a")]), false, true);
    let c = cluster(vec![], two_vms(), vec![p]);
    assert!(!allowed(&c, up(), "p/a", "p/b", Tcp, 80));
    assert!(allowed(&c, up(), "p/b", "p/a", Tcp, 80));
    let v = flow(&c, up(), "p/b", "p/a", Tcp, 80);
    assert_eq!(v.ingress, DirectionVerdict::Open);
    // Ingress rules of a policy that does not affect ingress are ignored: it isolates nothing.
    let mut q = policy(
        "p",
        "ingress-rules-ignored",
        sel(&[("vm", "a")]),
        false,
        true,
    );
    q.ingress.push(Rule {
        peers: vec![pods_in_own_ns(&[("vm", "nobody")])],
        ports: vec![],
    });
    q.egress.push(Rule::default());
    let c = cluster(vec![], two_vms(), vec![q]);
    assert!(allowed(&c, up(), "p/b", "p/a", Tcp, 80));
    assert!(allowed(&c, up(), "p/a", "p/b", Tcp, 80));
}

#[test]
fn policies_are_additive_any_rule_of_any_policy_allows() {
    let ws = vec![
        vm("p", "a", &[("vm", "a")], &[]),
        vm("p", "b", &[("vm", "b")], &[]),
        vm("p", "c", &[("vm", "c")], &[]),
        vm("p", "d", &[("vm", "d")], &[]),
    ];
    let mut from_b = policy("p", "from-b", sel(&[("vm", "a")]), true, false);
    from_b.ingress.push(Rule {
        peers: vec![pods_in_own_ns(&[("vm", "b")])],
        ports: vec![],
    });
    let mut from_c = policy("p", "from-c", sel(&[("vm", "a")]), true, false);
    from_c.ingress.push(Rule {
        peers: vec![pods_in_own_ns(&[("vm", "c")])],
        ports: vec![tcp(80)],
    });
    // A deny-all policy cannot take away what another policy allows.
    let deny = policy("p", "deny", LabelSelector::everything(), true, false);
    let c = cluster(vec![], ws, vec![from_b, from_c, deny]);
    assert!(allowed(&c, up(), "p/b", "p/a", Tcp, 443));
    assert!(allowed(&c, up(), "p/c", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "p/c", "p/a", Tcp, 81));
    assert!(!allowed(&c, up(), "p/d", "p/a", Tcp, 80));
    match flow(&c, up(), "p/b", "p/a", Tcp, 443).ingress {
        DirectionVerdict::Allowed {
            isolated_by,
            allowed_by,
        } => {
            assert_eq!(isolated_by, vec!["p/from-b", "p/from-c", "p/deny"]);
            assert_eq!(allowed_by.len(), 1);
            assert_eq!(allowed_by[0].policy, "p/from-b");
            assert_eq!(allowed_by[0].rule, 0);
            assert_eq!(allowed_by[0].peer, Some(0));
            assert_eq!(allowed_by[0].port, None);
        }
        other => panic!("expected allowed, got {other:?}"),
    }
}

#[test]
fn a_flow_needs_both_the_sources_egress_and_the_destinations_ingress() {
    let mut allow_in = policy("p", "a-allows-b", sel(&[("vm", "a")]), true, false);
    allow_in.ingress.push(Rule {
        peers: vec![pods_in_own_ns(&[("vm", "b")])],
        ports: vec![],
    });
    let deny_out = policy("p", "b-no-egress", sel(&[("vm", "b")]), false, true);
    let c = cluster(vec![], two_vms(), vec![allow_in.clone(), deny_out]);
    let v = flow(&c, up(), "p/b", "p/a", Tcp, 80);
    assert!(!v.allowed);
    assert!(!v.egress.allows());
    assert!(v.ingress.allows());

    let mut allow_out = policy("p", "b-to-a", sel(&[("vm", "b")]), false, true);
    allow_out.egress.push(Rule {
        peers: vec![pods_in_own_ns(&[("vm", "a")])],
        ports: vec![],
    });
    let deny_in = policy("p", "a-no-ingress", sel(&[("vm", "a")]), true, false);
    let c = cluster(vec![], two_vms(), vec![allow_out.clone(), deny_in]);
    assert!(!allowed(&c, up(), "p/b", "p/a", Tcp, 80));
    let c = cluster(vec![], two_vms(), vec![allow_out, allow_in]);
    assert!(allowed(&c, up(), "p/b", "p/a", Tcp, 80));
}

#[test]
fn traffic_from_a_workload_to_itself_is_always_allowed() {
    let deny = policy(
        "p",
        "deny-everything",
        LabelSelector::everything(),
        true,
        true,
    );
    let c = cluster(vec![], two_vms(), vec![deny]);
    let v = flow(&c, up(), "p/a", "p/a", Udp, 53);
    assert!(v.allowed);
    assert_eq!(v.egress, DirectionVerdict::SelfTraffic);
    assert_eq!(v.ingress, DirectionVerdict::SelfTraffic);
    assert!(!allowed(&c, up(), "p/a", "p/b", Udp, 53));
}

#[test]
fn an_empty_peer_list_allows_every_peer_including_external_addresses() {
    let mut p = policy("p", "any-80", sel(&[("vm", "a")]), true, true);
    p.ingress.push(Rule {
        peers: vec![],
        ports: vec![tcp(80)],
    });
    p.egress.push(Rule {
        peers: vec![],
        ports: vec![tcp(80)],
    });
    let ws = vec![
        vm("p", "a", &[("vm", "a")], &["10.0.0.1"]),
        vm("q", "z", &[], &["10.0.9.9"]),
    ];
    let c = cluster(vec![], ws, vec![p]);
    assert!(allowed(&c, up(), "q/z", "p/a", Tcp, 80));
    assert!(allowed(&c, up(), "203.0.113.7", "p/a", Tcp, 80));
    assert!(allowed(&c, up(), "p/a", "198.51.100.1", Tcp, 80));
    assert!(allowed(&c, cilium(), "p/a", "q/z", Tcp, 80));
    assert!(!allowed(&c, up(), "q/z", "p/a", Tcp, 81));
}

#[test]
fn an_empty_port_list_allows_every_port_of_every_protocol() {
    let mut p = policy("p", "from-b", sel(&[("vm", "a")]), true, false);
    p.ingress.push(Rule {
        peers: vec![pods_in_own_ns(&[("vm", "b")])],
        ports: vec![],
    });
    let c = cluster(vec![], two_vms(), vec![p]);
    for (proto, port) in [(Tcp, 1), (Tcp, 65535), (Udp, 53), (Sctp, 9)] {
        assert!(
            allowed(&c, up(), "p/b", "p/a", proto, port),
            "{proto}/{port}"
        );
    }
    let a = netpol_core::analysis::Analyzer::new(&c, up());
    let m = a.connectivity_map();
    let (ia, ib) = (index(&c, "p/a"), index(&c, "p/b"));
    for proto in Protocol::ALL {
        assert_eq!(m.ports(ib, ia, proto), &[(1, 65535)]);
    }
}

#[test]
fn a_port_entry_without_a_port_allows_every_port_of_that_protocol_only() {
    let mut p = policy("p", "udp-only", sel(&[("vm", "a")]), true, false);
    p.ingress.push(Rule {
        peers: vec![],
        ports: vec![PolicyPort {
            protocol: Udp,
            port: None,
        }],
    });
    let c = cluster(vec![], two_vms(), vec![p]);
    assert!(allowed(&c, up(), "p/b", "p/a", Udp, 1));
    assert!(allowed(&c, up(), "p/b", "p/a", Udp, 65535));
    assert!(!allowed(&c, up(), "p/b", "p/a", Tcp, 53));
    assert!(!allowed(&c, up(), "p/b", "p/a", Sctp, 53));
}

#[test]
fn a_protocol_specific_rule_never_allows_another_protocol() {
    let mut p = policy("p", "dns", sel(&[("vm", "a")]), true, false);
    p.ingress.push(Rule {
        peers: vec![],
        ports: vec![PolicyPort {
            protocol: Udp,
            port: Some(PortSpec::Number(53)),
        }],
    });
    let c = cluster(vec![], two_vms(), vec![p]);
    assert!(allowed(&c, up(), "p/b", "p/a", Udp, 53));
    assert!(!allowed(&c, up(), "p/b", "p/a", Tcp, 53));
    let v = flow(&c, up(), "p/b", "p/a", Tcp, 53);
    match v.ingress {
        DirectionVerdict::Denied { denials, .. } => {
            assert_eq!(denials[0].mismatch, Mismatch::Protocol);
            assert_eq!(denials[0].reason, "protocol: TCP, the rule allows only UDP");
        }
        other => panic!("expected denied, got {other:?}"),
    }
}

#[test]
fn port_ranges_include_both_ends() {
    let mut p = policy("p", "range", sel(&[("vm", "a")]), true, false);
    p.ingress.push(Rule {
        peers: vec![],
        ports: vec![PolicyPort {
            protocol: Tcp,
            port: Some(PortSpec::Range {
                start: 8000,
                end: 8010,
            }),
        }],
    });
    let c = cluster(vec![], two_vms(), vec![p]);
    assert!(!allowed(&c, up(), "p/b", "p/a", Tcp, 7999));
    assert!(allowed(&c, up(), "p/b", "p/a", Tcp, 8000));
    assert!(allowed(&c, up(), "p/b", "p/a", Tcp, 8010));
    assert!(!allowed(&c, up(), "p/b", "p/a", Tcp, 8011));
    let a = netpol_core::analysis::Analyzer::new(&c, up());
    let m = a.connectivity_map();
    assert_eq!(
        m.ports(index(&c, "p/b"), index(&c, "p/a"), Tcp),
        &[(8000, 8010)]
    );
    assert!(m.ports(index(&c, "p/b"), index(&c, "p/a"), Udp).is_empty());
}

#[test]
fn named_ports_resolve_against_the_destination_in_ingress_rules() {
    let ws = vec![
        pod(
            "p",
            "web",
            &[("app", "web")],
            &[],
            &[("http", Tcp, 8080), ("dns", Udp, 53)],
        ),
        pod("p", "api", &[("app", "web")], &[], &[("http", Tcp, 9090)]),
        pod("p", "client", &[], &[], &[("http", Tcp, 7070)]),
    ];
    let mut p = policy("p", "http", sel(&[("app", "web")]), true, false);
    p.ingress.push(Rule {
        peers: vec![],
        ports: vec![PolicyPort {
            protocol: Tcp,
            port: Some(PortSpec::Named("http".into())),
        }],
    });
    let c = cluster(vec![], ws, vec![p]);
    assert!(allowed(&c, up(), "p/client", "p/web", Tcp, 8080));
    assert!(!allowed(&c, up(), "p/client", "p/web", Tcp, 9090));
    assert!(!allowed(&c, up(), "p/client", "p/web", Tcp, 7070));
    assert!(allowed(&c, up(), "p/client", "p/api", Tcp, 9090));
    assert!(!allowed(&c, up(), "p/client", "p/api", Tcp, 8080));
    // The name is looked up for the entry's protocol only.
    assert!(!allowed(&c, up(), "p/client", "p/web", Udp, 8080));
}

#[test]
fn named_ports_in_egress_rules_resolve_against_the_destination_peer() {
    let ws = vec![
        pod(
            "p",
            "client",
            &[("app", "client")],
            &[],
            &[("http", Tcp, 1111)],
        ),
        pod("p", "web", &[], &[], &[("http", Tcp, 8080)]),
        pod("p", "api", &[], &[], &[("http", Tcp, 9090)]),
        vm("p", "vm", &[], &["10.0.0.5"]),
    ];
    let mut p = policy("p", "out-http", sel(&[("app", "client")]), false, true);
    p.egress.push(Rule {
        peers: vec![],
        ports: vec![PolicyPort {
            protocol: Tcp,
            port: Some(PortSpec::Named("http".into())),
        }],
    });
    let c = cluster(vec![], ws, vec![p]);
    assert!(allowed(&c, up(), "p/client", "p/web", Tcp, 8080));
    assert!(!allowed(&c, up(), "p/client", "p/web", Tcp, 1111));
    assert!(allowed(&c, up(), "p/client", "p/api", Tcp, 9090));
    assert!(!allowed(&c, up(), "p/client", "p/api", Tcp, 8080));
    // No such named port on the destination, or an external destination: nothing matches.
    assert!(!allowed(&c, up(), "p/client", "p/vm", Tcp, 8080));
    assert!(!allowed(&c, up(), "p/client", "192.0.2.80", Tcp, 8080));
    assert!(!allowed(&c, up(), "p/client", "192.0.2.80", Tcp, 1111));
}

#[test]
fn a_peer_without_namespace_selector_means_the_policys_own_namespace() {
    let ws = vec![
        vm("p", "a", &[("vm", "a")], &[]),
        vm("p", "b", &[("vm", "b")], &[]),
        vm("q", "b", &[("vm", "b")], &[]),
    ];
    let mut p = policy("p", "from-b", sel(&[("vm", "a")]), true, false);
    p.ingress.push(Rule {
        peers: vec![pods_in_own_ns(&[("vm", "b")])],
        ports: vec![],
    });
    let c = cluster(vec![], ws, vec![p]);
    assert!(allowed(&c, up(), "p/b", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "q/b", "p/a", Tcp, 80));
    match flow(&c, up(), "q/b", "p/a", Tcp, 80).ingress {
        DirectionVerdict::Denied { denials, .. } => {
            assert_eq!(denials[0].mismatch, Mismatch::Peer);
            assert!(denials[0]
                .reason
                .contains("namespace \"q\" is not the policy's namespace \"p\""));
        }
        other => panic!("expected denied, got {other:?}"),
    }
}

#[test]
fn a_namespace_selector_matches_namespace_labels_and_the_empty_one_matches_all() {
    let nss = vec![
        Namespace::new("p", labels(&[]), false),
        Namespace::new("prod", labels(&[("env", "prod")]), false),
        Namespace::new("dev", labels(&[("env", "dev")]), false),
    ];
    let ws = vec![
        vm("p", "a", &[("vm", "a")], &[]),
        vm("prod", "x", &[], &[]),
        vm("dev", "y", &[], &[]),
    ];
    let mut p = policy("p", "from-prod", sel(&[("vm", "a")]), true, false);
    p.ingress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: None,
            namespace_selector: Some(sel(&[("env", "prod")])),
        }],
        ports: vec![],
    });
    let c = cluster(nss.clone(), ws.clone(), vec![p]);
    assert!(allowed(&c, up(), "prod/x", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "dev/y", "p/a", Tcp, 80));
    match flow(&c, up(), "dev/y", "p/a", Tcp, 80).ingress {
        DirectionVerdict::Denied { denials, .. } => assert_eq!(
            denials[0].reason,
            "peer: namespace \"dev\" does not match namespaceSelector env=prod"
        ),
        other => panic!("expected denied, got {other:?}"),
    }

    let mut all = policy("p", "from-all-namespaces", sel(&[("vm", "a")]), true, false);
    all.ingress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: None,
            namespace_selector: Some(LabelSelector::everything()),
        }],
        ports: vec![],
    });
    let c = cluster(nss, ws, vec![all]);
    assert!(allowed(&c, up(), "prod/x", "p/a", Tcp, 80));
    assert!(allowed(&c, up(), "dev/y", "p/a", Tcp, 80));
    // Still only workloads: an external address is not in any namespace.
    assert!(!allowed(&c, up(), "192.0.2.9", "p/a", Tcp, 80));
}

#[test]
fn pod_and_namespace_selectors_in_one_peer_are_anded() {
    let nss = vec![
        Namespace::new("p", labels(&[]), false),
        Namespace::new("prod", labels(&[("env", "prod")]), false),
        Namespace::new("dev", labels(&[("env", "dev")]), false),
    ];
    let ws = vec![
        vm("p", "a", &[("vm", "a")], &[]),
        vm("prod", "web", &[("app", "web")], &[]),
        vm("prod", "db", &[("app", "db")], &[]),
        vm("dev", "web", &[("app", "web")], &[]),
    ];
    let mut p = policy("p", "prod-web", sel(&[("vm", "a")]), true, false);
    p.ingress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: Some(sel(&[("app", "web")])),
            namespace_selector: Some(sel(&[("env", "prod")])),
        }],
        ports: vec![],
    });
    let c = cluster(nss, ws, vec![p]);
    assert!(allowed(&c, up(), "prod/web", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "prod/db", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "dev/web", "p/a", Tcp, 80));
}

#[test]
fn separate_peers_are_ored() {
    let nss = vec![
        Namespace::new("p", labels(&[]), false),
        Namespace::new("prod", labels(&[("env", "prod")]), false),
        Namespace::new("dev", labels(&[("env", "dev")]), false),
    ];
    let ws = vec![
        vm("p", "a", &[("vm", "a")], &[]),
        vm("prod", "web", &[("app", "web")], &[]),
        vm("prod", "db", &[("app", "db")], &[]),
        vm("dev", "web", &[("app", "web")], &[]),
        vm("dev", "db", &[("app", "db")], &[]),
    ];
    let mut p = policy("p", "prod-or-web", sel(&[("vm", "a")]), true, false);
    p.ingress.push(Rule {
        peers: vec![
            Peer::Selector {
                pod_selector: None,
                namespace_selector: Some(sel(&[("env", "prod")])),
            },
            Peer::Selector {
                pod_selector: Some(sel(&[("app", "web")])),
                namespace_selector: Some(LabelSelector::everything()),
            },
        ],
        ports: vec![],
    });
    let c = cluster(nss, ws, vec![p]);
    assert!(allowed(&c, up(), "prod/web", "p/a", Tcp, 80));
    assert!(allowed(&c, up(), "prod/db", "p/a", Tcp, 80));
    assert!(allowed(&c, up(), "dev/web", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "dev/db", "p/a", Tcp, 80));
    let v = flow(&c, up(), "dev/web", "p/a", Tcp, 80);
    match v.ingress {
        DirectionVerdict::Allowed { allowed_by, .. } => assert_eq!(allowed_by[0].peer, Some(1)),
        other => panic!("expected allowed, got {other:?}"),
    }
}

#[test]
fn selector_peers_never_match_external_addresses() {
    let mut p = policy("p", "all-workloads", sel(&[("vm", "a")]), true, true);
    let everyone = Peer::Selector {
        pod_selector: Some(LabelSelector::everything()),
        namespace_selector: Some(LabelSelector::everything()),
    };
    p.ingress.push(Rule {
        peers: vec![everyone.clone()],
        ports: vec![],
    });
    p.egress.push(Rule {
        peers: vec![everyone],
        ports: vec![],
    });
    let c = cluster(vec![], two_vms(), vec![p]);
    assert!(allowed(&c, up(), "p/b", "p/a", Tcp, 80));
    assert!(allowed(&c, up(), "p/a", "p/b", Tcp, 80));
    // 10.0.0.2 is p/b's address, but as an external endpoint it is just an address.
    assert!(!allowed(&c, up(), "10.0.0.2", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "p/a", "192.0.2.1", Tcp, 80));
}

#[test]
fn an_ip_block_matches_external_addresses_outside_its_except_holes() {
    let mut p = policy("p", "from-docs", sel(&[("vm", "a")]), true, false);
    p.ingress.push(Rule {
        peers: vec![block("192.0.2.0/24", &["192.0.2.128/25"])],
        ports: vec![],
    });
    let c = cluster(vec![], two_vms(), vec![p]);
    assert!(allowed(&c, up(), "192.0.2.1", "p/a", Tcp, 80));
    assert!(allowed(&c, up(), "192.0.2.127", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "192.0.2.128", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "198.51.100.1", "p/a", Tcp, 80));
    assert!(allowed(&c, cilium(), "192.0.2.1", "p/a", Tcp, 80));
    match flow(&c, up(), "192.0.2.200", "p/a", Tcp, 80).ingress {
        DirectionVerdict::Denied { denials, .. } => assert_eq!(
            denials[0].reason,
            "peer: address 192.0.2.200 is in the except 192.0.2.128/25 of ipBlock 192.0.2.0/24"
        ),
        other => panic!("expected denied, got {other:?}"),
    }
}

#[test]
fn an_ip_block_matches_a_workloads_flow_address_in_upstream_mode_only() {
    let ws = vec![
        vm("p", "a", &[("vm", "a")], &["10.0.0.1"]),
        vm("q", "b", &[], &["10.1.0.2"]),
        vm("q", "c", &[], &["10.2.0.3"]),
    ];
    let mut p = policy("p", "from-10-1", sel(&[("vm", "a")]), true, true);
    p.ingress.push(Rule {
        peers: vec![block("10.0.0.0/8", &["10.2.0.0/16"])],
        ports: vec![],
    });
    p.egress.push(Rule {
        peers: vec![block("10.1.0.0/16", &[])],
        ports: vec![],
    });
    let c = cluster(vec![], ws, vec![p]);
    assert!(allowed(&c, up(), "q/b", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "q/c", "p/a", Tcp, 80));
    assert!(allowed(&c, up(), "p/a", "q/b", Tcp, 80));
    assert!(!allowed(&c, up(), "p/a", "q/c", Tcp, 80));
    // Cilium: an ipBlock never matches a workload...
    assert!(!allowed(&c, cilium(), "q/b", "p/a", Tcp, 80));
    assert!(!allowed(&c, cilium(), "p/a", "q/b", Tcp, 80));
    // ...nor an address that belongs to a workload, even given as a bare address.
    assert!(!allowed(&c, cilium(), "10.1.0.2", "p/a", Tcp, 80));
    assert!(allowed(&c, cilium(), "10.1.0.99", "p/a", Tcp, 80));
    assert!(allowed(&c, up(), "10.1.0.2", "p/a", Tcp, 80));
}

#[test]
fn except_holes_can_be_refilled_by_another_peer_or_policy() {
    let mut p = policy("p", "docs-but-hole", sel(&[("vm", "a")]), true, false);
    p.ingress.push(Rule {
        peers: vec![block("192.0.2.0/24", &["192.0.2.0/28"])],
        ports: vec![],
    });
    let mut q = policy("p", "refill", sel(&[("vm", "a")]), true, false);
    q.ingress.push(Rule {
        peers: vec![block("192.0.2.8/29", &[])],
        ports: vec![tcp(22)],
    });
    let c = cluster(vec![], two_vms(), vec![p, q]);
    assert!(!allowed(&c, up(), "192.0.2.1", "p/a", Tcp, 22));
    assert!(allowed(&c, up(), "192.0.2.9", "p/a", Tcp, 22));
    assert!(!allowed(&c, up(), "192.0.2.9", "p/a", Tcp, 23));
    assert!(allowed(&c, up(), "192.0.2.200", "p/a", Tcp, 23));
}

#[test]
fn flow_addresses_use_the_first_family_the_destination_also_has() {
    let dual_v6_first = vm("p", "a", &[], &["fd00::1", "10.0.0.1", "fd00::9"]);
    let dual_v4_first = vm("p", "b", &[], &["10.0.0.2", "fd00::2"]);
    let v4 = vm("p", "c", &[], &["10.0.0.3"]);
    let v6 = vm("p", "d", &[], &["fd00::4"]);
    let none = vm("p", "e", &[], &[]);
    assert_eq!(
        flow_addresses(&dual_v6_first, &dual_v4_first),
        Some((ip("fd00::1"), ip("fd00::2")))
    );
    assert_eq!(
        flow_addresses(&dual_v4_first, &dual_v6_first),
        Some((ip("10.0.0.2"), ip("10.0.0.1")))
    );
    assert_eq!(
        flow_addresses(&dual_v6_first, &v4),
        Some((ip("10.0.0.1"), ip("10.0.0.3")))
    );
    assert_eq!(flow_addresses(&v4, &v6), None);
    assert_eq!(flow_addresses(&none, &v4), None);
    assert_eq!(flow_addresses(&v4, &none), None);
}

#[test]
fn an_ip_block_cannot_match_a_pair_without_a_common_family() {
    let ws = vec![
        vm("p", "a", &[("vm", "a")], &["10.0.0.1"]),
        vm("p", "v6", &[], &["fd00::2"]),
        vm("p", "dual", &[], &["fd00::3", "10.0.0.3"]),
        vm("p", "none", &[], &[]),
    ];
    let mut p = policy("p", "from-anything", sel(&[("vm", "a")]), true, false);
    p.ingress.push(Rule {
        peers: vec![block("0.0.0.0/0", &[]), block("::/0", &[])],
        ports: vec![],
    });
    let c = cluster(vec![], ws, vec![p]);
    assert!(!allowed(&c, up(), "p/v6", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "p/none", "p/a", Tcp, 80));
    // The dual-stack source talks IPv4 to an IPv4-only destination.
    assert!(allowed(&c, up(), "p/dual", "p/a", Tcp, 80));
    let v = flow(&c, up(), "p/dual", "p/a", Tcp, 80);
    assert_eq!(v.src_address, Some(ip("10.0.0.3")));
    assert_eq!(v.dst_address, Some(ip("10.0.0.1")));
}

#[test]
fn match_expressions_select_peers_with_all_four_operators() {
    let ws = vec![
        vm("p", "a", &[("vm", "a")], &[]),
        vm("p", "web", &[("tier", "web")], &[]),
        vm("p", "db", &[("tier", "db")], &[]),
        vm("p", "bare", &[], &[]),
        vm("p", "legacy", &[("tier", "web"), ("legacy", "yes")], &[]),
    ];
    let expr = |key: &str, op: SelectorOperator, values: &[&str]| LabelSelector {
        match_labels: Labels::new(),
        match_expressions: vec![SelectorRequirement {
            key: key.into(),
            operator: op,
            values: values.iter().map(|v| v.to_string()).collect(),
        }],
    };
    let from = |s: LabelSelector| {
        let mut p = policy("p", "x", sel(&[("vm", "a")]), true, false);
        p.ingress.push(Rule {
            peers: vec![Peer::Selector {
                pod_selector: Some(s),
                namespace_selector: None,
            }],
            ports: vec![],
        });
        cluster(vec![], ws.clone(), vec![p])
    };
    let c = from(expr("tier", SelectorOperator::In, &["web", "cache"]));
    assert!(allowed(&c, up(), "p/web", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "p/db", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "p/bare", "p/a", Tcp, 80));
    let c = from(expr("tier", SelectorOperator::NotIn, &["web"]));
    assert!(!allowed(&c, up(), "p/web", "p/a", Tcp, 80));
    assert!(allowed(&c, up(), "p/db", "p/a", Tcp, 80));
    assert!(allowed(&c, up(), "p/bare", "p/a", Tcp, 80));
    let c = from(expr("legacy", SelectorOperator::Exists, &[]));
    assert!(allowed(&c, up(), "p/legacy", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "p/web", "p/a", Tcp, 80));
    let c = from(expr("tier", SelectorOperator::DoesNotExist, &[]));
    assert!(allowed(&c, up(), "p/bare", "p/a", Tcp, 80));
    assert!(!allowed(&c, up(), "p/db", "p/a", Tcp, 80));
}
