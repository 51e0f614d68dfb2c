//! The admin tiers' subjects, peers and protocols, one test per point of issue #10's "Semantics"
//! list, each written from the API text it cites (line numbers as in `tiers_semantics.rs`:
//! kubernetes-sigs/network-policy-api at 0eec1b0).
//! v1alpha1, self traffic, hairpin, the own node and the explanation are in
//! `tiers_semantics_special.rs`.

mod tiers_common;

use netpol_core::eval::evaluate_at;
use netpol_core::evaluate;
use netpol_core::model::*;
use tiers_common::*;

// v1alpha2 L162-177: "Namespaces is used to select pods via namespace selectors"; "Pods is used
// to select pods via namespace AND pod selectors".
#[test]
fn a_namespaces_subject_takes_whole_namespaces_and_a_pods_subject_needs_both_selectors() {
    let rules = vec![deny(from_ns("c"))];
    let by_ns = cnp(
        AdminTier::Admin,
        1,
        "s",
        subject_namespaces(sel(&[("team", "a")])),
    );
    let c = with(vec![], vec![by_ns.with_egress(rules.clone())]);
    assert!(!oracle_allows(&c, "a/web", "c/other", Tcp, 80));
    assert!(!oracle_allows(&c, "a/db", "c/other", Tcp, 80));
    assert!(oracle_allows(&c, "b/web", "c/other", Tcp, 80));
    let web_in_a = subject_pods(sel(&[("team", "a")]), sel(&[("app", "web")]));
    let c = with(
        vec![],
        vec![cnp(AdminTier::Admin, 1, "s", web_in_a).with_egress(rules.clone())],
    );
    assert!(!oracle_allows(&c, "a/web", "c/other", Tcp, 80));
    assert!(oracle_allows(&c, "a/db", "c/other", Tcp, 80));
    assert!(oracle_allows(&c, "b/web", "c/other", Tcp, 80));
    // An empty namespace selector: the pod selector across every namespace.
    let web_anywhere = subject_pods(LabelSelector::everything(), sel(&[("app", "web")]));
    let c = with(
        vec![],
        vec![cnp(AdminTier::Admin, 1, "s", web_anywhere).with_egress(rules)],
    );
    assert!(!oracle_allows(&c, "a/web", "c/other", Tcp, 80));
    assert!(!oracle_allows(&c, "b/web", "c/other", Tcp, 80));
    assert!(oracle_allows(&c, "b/client", "c/other", Tcp, 80));
}

// v1alpha2 L304-411: a `namespaces` peer selects "all pods within a set of Namespaces", a `pods`
// peer "a set of pods in a set of namespaces".
#[test]
fn a_pods_peer_needs_both_selectors_and_a_namespaces_peer_takes_the_whole_namespace() {
    let guard = |peer| admin_over(1, "g", "c").with_egress(vec![deny(vec![peer])]);
    let c = with(
        vec![],
        vec![guard(peer_pods(
            sel(&[("team", "a")]),
            sel(&[("app", "db")]),
        ))],
    );
    assert!(!oracle_allows(&c, "c/other", "a/db", Tcp, 80));
    assert!(oracle_allows(&c, "c/other", "a/web", Tcp, 80));
    let c = with(
        vec![],
        vec![guard(peer_pods(
            LabelSelector::everything(),
            sel(&[("app", "web")]),
        ))],
    );
    assert!(!oracle_allows(&c, "c/other", "a/web", Tcp, 80));
    assert!(!oracle_allows(&c, "c/other", "b/web", Tcp, 80));
    assert!(oracle_allows(&c, "c/other", "a/db", Tcp, 80));
    let c = with(vec![], vec![guard(peer_namespaces(sel(&[("team", "b")])))]);
    assert!(!oracle_allows(&c, "c/other", "b/client", Tcp, 80));
    assert!(!oracle_allows(&c, "c/other", "b/web", Tcp, 80));
    assert!(oracle_allows(&c, "c/other", "a/web", Tcp, 80));
    // Ingress peers the same way.
    let c = with(
        vec![],
        vec![
            admin_over(1, "g", "c").with_ingress(vec![deny(vec![peer_pods(
                sel(&[("team", "a")]),
                sel(&[("app", "db")]),
            )])]),
        ],
    );
    assert!(!oracle_allows(&c, "a/db", "c/other", Tcp, 80));
    assert!(oracle_allows(&c, "a/web", "c/other", Tcp, 80));
}

// v1alpha2 L370-393: "cluster-internal traffic will be checked against the rule as well. So if
// you Accept or Deny traffic to "0.0.0.0/0", that will allow or deny all IPv4 pod-to-pod traffic
// as well."
#[test]
fn a_networks_peer_matches_workload_addresses_so_0_0_0_0_0_covers_pod_to_pod_traffic() {
    let c = with(
        vec![],
        vec![admin_over(1, "no-v4", "a")
            .with_egress(vec![deny(vec![peer_networks(&["0.0.0.0/0"])])])],
    );
    assert!(!oracle_allows(&c, "a/web", "b/client", Tcp, 80));
    assert!(!oracle_allows(&c, "a/web", "192.0.2.1", Tcp, 80));
    // Unlike an ipBlock under Cilium's choice, networks match workloads whatever the option.
    let cilium = EvalOptions {
        ipblock_matches_workloads: false,
    };
    let (a, b) = (end_named(&c, "a/web"), end_named(&c, "b/client"));
    assert!(!evaluate(&c, cilium, &a, &b, Tcp, 80).allowed);
    // A narrower CIDR takes only the workloads in it.
    let c = with(
        vec![],
        vec![admin_over(1, "no-b", "a")
            .with_egress(vec![deny(vec![peer_networks(&["10.0.1.0/24"])])])],
    );
    assert!(!oracle_allows(&c, "a/web", "b/client", Tcp, 80));
    assert!(oracle_allows(&c, "a/web", "c/other", Tcp, 80));
}

// v1alpha2 (Networks): ""0.0.0.0/0" will match both IPv4 and ICMP traffic, while "::/0" will
// match both IPv6 and ICMPv6 traffic."
#[test]
fn only_colon_colon_slash_0_covers_ipv6_traffic() {
    let ns = vec![namespace("v6", &[])];
    let ws = vec![
        pod("v6", "x", &[], &["fd00::1"], &[]),
        pod("v6", "y", &[], &["fd00::2"], &[]),
    ];
    let guard =
        |cidr: &str| admin_over(1, "g", "v6").with_egress(vec![deny(vec![peer_networks(&[cidr])])]);
    let mut c = cluster(ns, ws, vec![]);
    c.admin_policies = vec![guard("0.0.0.0/0")];
    assert!(oracle_allows(&c, "v6/x", "v6/y", Tcp, 80));
    assert!(oracle_allows(&c, "v6/x", "2001:db8::1", Tcp, 80));
    c.admin_policies = vec![guard("::/0")];
    assert!(!oracle_allows(&c, "v6/x", "v6/y", Tcp, 80));
    assert!(!oracle_allows(&c, "v6/x", "2001:db8::1", Tcp, 80));
    assert!(oracle_allows(&c, "v6/x", "192.0.2.1", Tcp, 80));
}

// The same line: a dual-stack pair talks over both families, and a networks peer of one family
// decides only the flows of that family (`evaluate_at` pins the addresses of one flow).
#[test]
fn a_dual_stack_pair_is_decided_per_family_by_a_networks_peer() {
    let ns = vec![namespace("ds", &[])];
    let ws = vec![
        pod("ds", "x", &[], &["10.1.0.1", "fd00::1"], &[]),
        pod("ds", "y", &[], &["10.1.0.2", "fd00::2"], &[]),
    ];
    let mut c = cluster(ns, ws, vec![]);
    c.admin_policies =
        vec![admin_over(1, "no-v6", "ds").with_egress(vec![deny(vec![peer_networks(&["::/0"])])])];
    let (x, y) = (end_named(&c, "ds/x"), end_named(&c, "ds/y"));
    let over = |a: &str, b: &str| {
        let v = evaluate_at(
            &c,
            EvalOptions::default(),
            (&x, Some(ip(a))),
            (&y, Some(ip(b))),
            Tcp,
            80,
        );
        v.allowed
    };
    assert!(over("10.1.0.1", "10.1.0.2"));
    assert!(!over("fd00::1", "fd00::2"));
}

/// `base()` with nodes n1 (role=worker, 198.51.100.1 and 2001:db8::1) and n2 (role=control,
/// 198.51.100.2, hosting the hostNetwork pod `kube-system/agent`); b/client runs on n1.
fn with_nodes(admin: Vec<AdminPolicy>) -> Cluster {
    let mut c = with(vec![], admin);
    let mut n2 = node("n2", &[("role", "control")], &["198.51.100.2"]);
    n2.host_network_pods = vec!["kube-system/agent".into()];
    c.nodes = vec![
        node(
            "n1",
            &[("role", "worker")],
            &["198.51.100.1", "2001:db8::1"],
        ),
        n2,
    ];
    let client = c.workloads.iter().position(|w| w.key() == "b/client");
    let client = client.unwrap_or_else(|| panic!("no b/client"));
    c.workloads[client].node = Some("n1".into());
    c
}

// v1alpha2 L357-368: Nodes "selects the nodeIPs as the peer type by matching on the IPs present
// in the node.Status.Addresses field of the node"; "if present but empty, it selects all Nodes".
#[test]
fn a_nodes_peer_matches_the_addresses_of_the_nodes_its_selector_matches() {
    let c = with_nodes(vec![admin_over(1, "no-workers", "a")
        .with_egress(vec![deny(vec![peer_nodes(sel(&[("role", "worker")]))])])]);
    assert!(!oracle_allows(&c, "a/web", "198.51.100.1", Tcp, 10250));
    assert!(!oracle_allows(&c, "a/web", "2001:db8::1", Tcp, 10250));
    assert!(oracle_allows(&c, "a/web", "198.51.100.2", Tcp, 10250));
    assert!(oracle_allows(&c, "a/web", "198.51.100.3", Tcp, 10250));
    // A pod running on the node is not the node.
    assert!(oracle_allows(&c, "a/web", "b/client", Tcp, 80));
    let c = with_nodes(vec![admin_over(1, "no-nodes", "a")
        .with_egress(vec![deny(vec![peer_nodes(LabelSelector::everything())])])]);
    assert!(!oracle_allows(&c, "a/web", "198.51.100.2", Tcp, 10250));
}

// v1alpha2 L164: "host-networked pods are not included in subject selection"; L304-411 for
// namespaces and pods peers: "host-networked pods are not included in this type of peer". The
// model folds them into their node: their traffic is the node's.
#[test]
fn host_network_pods_are_neither_subjects_nor_pods_of_namespaces_and_pods_peers() {
    let c = with_nodes(vec![
        admin_over(1, "no-pods", "a").with_egress(vec![deny(everyone())]),
        admin_over(2, "kube-system", "kube-system").with_egress(vec![deny(everyone())]),
    ]);
    // kube-system/agent's address is n2's: a namespaces peer does not take it.
    assert!(oracle_allows(&c, "a/web", "198.51.100.2", Tcp, 80));
    // And it is no subject: its traffic leaves as the node's.
    assert!(oracle_allows(&c, "198.51.100.2", "b/client", Tcp, 80));
    assert!(!oracle_allows(&c, "a/web", "b/client", Tcp, 80));
}

// v1alpha2 L395-410: "DomainNames is only supported for Accept rules ... should be used with a
// lower precedence egress deny"; DomainName: "'*' ... matches one or more entire labels";
// `*.kubernetes.io` matches "www.kubernetes.io" and "latest.blog.kubernetes.io", not
// "kubernetes.io". netpol matches them only through `Cluster::resolved_names` (issue #10).
#[test]
fn a_domain_names_peer_matches_only_resolved_addresses_with_wildcards_of_whole_labels() {
    let allowlist = admin_over(1, "allowlist", "a").with_egress(vec![
        accept(vec![peer_domains(&["*.example.com", "example.org"])]),
        deny(vec![peer_networks(&["0.0.0.0/0"])]),
    ]);
    let mut c = with(vec![], vec![allowlist]);
    assert!(!oracle_allows(&c, "a/web", "203.0.113.10", Tcp, 443));
    for (name, address) in [
        ("www.example.com", "203.0.113.10"),
        ("example.com", "203.0.113.11"),
        ("example.org", "203.0.113.12"),
        ("latest.www.example.com", "203.0.113.13"),
        ("my-example.com", "203.0.113.14"),
    ] {
        c.resolved_names.insert(name.into(), vec![ip(address)]);
    }
    assert!(oracle_allows(&c, "a/web", "203.0.113.10", Tcp, 443));
    assert!(!oracle_allows(&c, "a/web", "203.0.113.11", Tcp, 443));
    assert!(oracle_allows(&c, "a/web", "203.0.113.12", Tcp, 443));
    assert!(oracle_allows(&c, "a/web", "203.0.113.13", Tcp, 443));
    assert!(!oracle_allows(&c, "a/web", "203.0.113.14", Tcp, 443));
    assert!(!oracle_allows(&c, "a/web", "203.0.113.99", Tcp, 443));
}

// v1alpha2 L304-313: "If an implementation sees no fields are set ... it should fail closed.
// For "Accept" rules, "fail closed" means: "treat the rule as matching no traffic". For "Deny"
// and "Pass" rules, "fail closed" means: "treat the rule as a 'Deny all' rule"."
#[test]
fn a_peer_of_an_unknown_kind_fails_closed() {
    // Accept: the whole rule matches nothing, even through its known peer.
    let rules = vec![
        accept(vec![AdminPeer::Unknown, peer_namespaces(ns_name("b"))]),
        deny(everyone()),
    ];
    let c = with(
        vec![],
        vec![admin_over(1, "accept", "a").with_egress(rules)],
    );
    let v = oracle_verdict(&c, "a/web", "b/client", Tcp, 80);
    assert!(!v.allowed, "{}", v.explain());
    assert_eq!(decided_by(&v.egress).1, 1);
    // Deny: every flow, whatever its peer, protocol and port.
    let only_80 = deny(vec![AdminPeer::Unknown]).on(vec![proto_port(Tcp, 80)]);
    let c = with(
        vec![],
        vec![
            admin_over(1, "deny", "a").with_egress(vec![only_80]),
            admin_over(2, "accept", "a").with_egress(vec![accept(everyone())]),
        ],
    );
    assert!(!oracle_allows(&c, "a/web", "c/other", Udp, 53));
    assert!(!oracle_allows(&c, "a/web", "192.0.2.1", Tcp, 443));
    // Pass: denies rather than passing on to a Baseline Accept.
    let c = with(
        vec![],
        vec![
            admin_over(1, "pass", "a").with_egress(vec![pass(vec![AdminPeer::Unknown])]),
            baseline_over(1, "accept", "a").with_egress(vec![accept(everyone())]),
        ],
    );
    let v = oracle_verdict(&c, "a/web", "b/client", Tcp, 80);
    assert!(!v.allowed);
    let m = &matches(&v.egress)[0];
    assert!(m.fail_closed && m.action == AdminAction::Deny);
}

// v1alpha2 L430-503 and overview L144-146: exactly one of tcp/udp/sctp with a number or an
// inclusive range; "If `destinationPort` is omitted, all ports for the specified protocol
// match"; L219-228: without `protocols`, "protocol-specific attributes will not be used".
#[test]
fn protocols_match_by_protocol_and_number_or_inclusive_range_or_every_port_of_the_protocol() {
    let ports = vec![
        proto_port(Tcp, 80),
        proto_range(Udp, 5000, 5002),
        proto_any(Sctp),
    ];
    let c = with(
        vec![],
        vec![admin_over(1, "ports", "a")
            .with_egress(vec![deny(from_ns("b")).on(ports), deny(from_ns("c"))])],
    );
    let to_b = |p, port| oracle_allows(&c, "a/web", "b/client", p, port);
    assert!(!to_b(Tcp, 80));
    assert!(to_b(Tcp, 81));
    assert!(to_b(Tcp, 5000));
    assert!(to_b(Udp, 4999));
    assert!(!to_b(Udp, 5000));
    assert!(!to_b(Udp, 5001));
    assert!(!to_b(Udp, 5002));
    assert!(to_b(Udp, 5003));
    assert!(to_b(Udp, 80));
    assert!(!to_b(Sctp, 1));
    assert!(!to_b(Sctp, 65535));
    // No protocols: every port of every protocol.
    for p in Protocol::ALL {
        assert!(!oracle_allows(&c, "a/web", "c/other", p, 1));
        assert!(!oracle_allows(&c, "a/web", "c/other", p, 65535));
    }
}

// v1alpha2 L450-455: "DestinationNamedPort selects a destination port on a pod based on the
// ContainerPort name" — the destination's container ports, whichever side the policy is on.
#[test]
fn a_destination_named_port_resolves_on_the_destination_not_on_the_source() {
    // a/web names http TCP 8080, b/client names http TCP 9090.
    let out = admin_over(1, "out", "a").with_egress(vec![
        accept(from_ns("b")).on(vec![named_port("http")]),
        deny(from_ns("b")),
    ]);
    let c = with(vec![], vec![out]);
    assert!(oracle_allows(&c, "a/web", "b/client", Tcp, 9090));
    assert!(!oracle_allows(&c, "a/web", "b/client", Tcp, 8080));
    // The container port is TCP: the same number over UDP is not the named port.
    assert!(!oracle_allows(&c, "a/web", "b/client", Udp, 9090));
    // b/web names no port at all.
    assert!(!oracle_allows(&c, "a/web", "b/web", Tcp, 9090));
    // On an ingress rule, the destination is the subject itself.
    let inward = admin_over(1, "in", "b").with_ingress(vec![
        accept(from_ns("a")).on(vec![named_port("http")]),
        deny(from_ns("a")),
    ]);
    let c = with(vec![], vec![inward]);
    assert!(oracle_allows(&c, "a/web", "b/client", Tcp, 9090));
    assert!(!oracle_allows(&c, "a/web", "b/client", Tcp, 8080));
}
