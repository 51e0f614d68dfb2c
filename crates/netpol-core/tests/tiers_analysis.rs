//! The admin tiers in the bulk analyses, case by case: the trickiest combinations of the walk
//! (Deny over NetworkPolicy, Pass chains, Accept leaving the far end to decide, Baseline only
//! where NetworkPolicy does not isolate, networks per family, resolved domain names, nodes,
//! fail-closed rules, ties, hairpin). Each case asserts the answer written from the API text,
//! and that the truth tables and the map agree with the evaluator on every pair.

use netpol_core::analysis::Analyzer;
use netpol_core::eval::{evaluate_ends, evaluate_hairpin, FlowEnd};
use netpol_core::model::*;
use netpol_test_support::*;

const TCP: Protocol = Protocol::Tcp;

fn cnp(
    name: &str,
    tier: AdminTier,
    priority: u32,
    subject: AdminSubject,
    ingress: Vec<AdminRule>,
    egress: Vec<AdminRule>,
) -> AdminPolicy {
    AdminPolicy {
        api: AdminApi::ClusterNetworkPolicy,
        name: name.into(),
        tier,
        priority,
        subject,
        ingress,
        egress,
        origin: None,
    }
}

fn admin_rule(
    action: AdminAction,
    peers: Vec<AdminPeer>,
    ports: Option<Vec<AdminPort>>,
) -> AdminRule {
    AdminRule {
        name: None,
        action,
        peers,
        ports,
        origin: None,
    }
}

fn tcp_port(n: u16) -> Option<Vec<AdminPort>> {
    Some(vec![AdminPort::Protocol {
        protocol: TCP,
        ports: Some((n, n)),
    }])
}

fn namespace_subject(name: &str) -> AdminSubject {
    AdminSubject::Namespaces(sel(&[(NAMESPACE_NAME_LABEL, name)]))
}

fn namespace_peer(name: &str) -> AdminPeer {
    AdminPeer::Namespaces(sel(&[(NAMESPACE_NAME_LABEL, name)]))
}

fn networks(cidrs: &[&str]) -> AdminPeer {
    AdminPeer::Networks(
        cidrs
            .iter()
            .map(|c| c.parse().unwrap_or_else(|e| panic!("test CIDR {c:?}: {e}")))
            .collect(),
    )
}

fn everyone() -> AdminSubject {
    AdminSubject::Namespaces(LabelSelector::everything())
}

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

fn in_ranges(r: &[(u16, u16)], port: u16) -> bool {
    r.iter().any(|(lo, hi)| *lo <= port && port <= *hi)
}

/// The analyzer of `c`, after checking that its tables (at `ports`, TCP), its map and its
/// hairpin answers agree with the evaluator on every pair and family.
fn analyzer_agreeing_with_the_evaluator(c: &Cluster, ports: &[u16]) -> Analyzer {
    let opts = EvalOptions::default();
    let a = Analyzer::new(c, opts);
    let map = a.connectivity_map();
    let n = c.workloads.len() + c.nodes.len();
    for &port in ports {
        let table = a.truth_table(TCP, port);
        for s in 0..n {
            for d in 0..n {
                if s >= c.workloads.len() && d >= c.workloads.len() {
                    continue;
                }
                let fv = evaluate_ends(c, opts, &end(c, s), &end(c, d), TCP, port);
                for (f, v) in &fv.verdicts {
                    let (t, m) = match f {
                        Some(f) if fv.verdicts.len() == 2 => (
                            table.allowed_in(s, d, *f),
                            in_ranges(map.ports_in(s, d, TCP, *f), port),
                        ),
                        _ => (table.allowed(s, d), in_ranges(map.ports(s, d, TCP), port)),
                    };
                    assert_eq!(
                        t,
                        v.allowed,
                        "table {s} -> {d} {port} {f:?}\n{}",
                        v.explain()
                    );
                    assert_eq!(m, v.allowed, "map {s} -> {d} {port} {f:?}\n{}", v.explain());
                }
            }
        }
        for w in 0..c.workloads.len() {
            let v = evaluate_hairpin(c, opts, w, TCP, port);
            assert_eq!(
                table.hairpin_allowed(w),
                v.allowed,
                "hairpin {w}\n{}",
                v.explain()
            );
            let m = in_ranges(map.hairpin_ports(w, TCP), port);
            assert_eq!(m, v.allowed, "map hairpin {w}\n{}", v.explain());
        }
    }
    a
}

/// `a` and `b` in namespace `p`, `c` in namespace `q`, all IPv4.
fn three() -> Cluster {
    cluster(
        namespaces(&["p", "q"]),
        vec![
            vm("p", "a", &[("vm", "a")], &["10.0.0.1"]),
            vm("p", "b", &[("vm", "b")], &["10.0.0.2"]),
            pod(
                "q",
                "c",
                &[("vm", "c")],
                &["10.0.1.1"],
                &[("web", TCP, 8080)],
            ),
        ],
        vec![],
    )
}

#[test]
fn an_admin_deny_overrides_a_network_policy_that_allows() {
    let mut c = three();
    let mut np = policy("p", "b-from-a", sel(&[("vm", "b")]), true, false);
    np.ingress
        .push(rule(vec![pods_in_own_ns(&[("vm", "a")])], vec![tcp(80)]));
    c.policies.push(np);
    c.admin_policies.push(cnp(
        "no-a-to-b",
        AdminTier::Admin,
        10,
        AdminSubject::Pods {
            namespace_selector: LabelSelector::everything(),
            pod_selector: sel(&[("vm", "a")]),
        },
        vec![],
        vec![admin_rule(
            AdminAction::Deny,
            vec![AdminPeer::Pods {
                namespace_selector: LabelSelector::everything(),
                pod_selector: sel(&[("vm", "b")]),
            }],
            tcp_port(80),
        )],
    ));
    let a = analyzer_agreeing_with_the_evaluator(&c, &[79, 80, 81]);
    assert!(!a.truth_table(TCP, 80).allowed(0, 1));
    // The Deny names port 80 only: on 81 NetworkPolicy decides (and denies, b is isolated).
    assert!(!a.truth_table(TCP, 81).allowed(0, 1));
    assert!(a.truth_table(TCP, 80).allowed(0, 2));
    assert!(a.connectivity_map().ports(0, 1, TCP).is_empty());
}

#[test]
fn a_pass_skips_the_rest_of_the_admin_tier_including_later_policies() {
    let mut c = three();
    let pass = cnp(
        "first-pass",
        AdminTier::Admin,
        1,
        everyone(),
        vec![],
        vec![admin_rule(
            AdminAction::Pass,
            vec![namespace_peer("q")],
            tcp_port(8080),
        )],
    );
    let deny = cnp(
        "then-deny",
        AdminTier::Admin,
        2,
        everyone(),
        vec![],
        vec![admin_rule(
            AdminAction::Deny,
            vec![namespace_peer("q")],
            None,
        )],
    );
    let baseline = cnp(
        "baseline-deny",
        AdminTier::Baseline,
        1,
        namespace_subject("p"),
        vec![],
        vec![admin_rule(
            AdminAction::Deny,
            vec![namespace_peer("q")],
            None,
        )],
    );
    c.admin_policies = vec![deny, pass, baseline];
    let a = analyzer_agreeing_with_the_evaluator(&c, &[80, 8080]);
    // Passed on 8080: not isolated by NetworkPolicy, so the Baseline denies a (in p)...
    assert!(!a.truth_table(TCP, 8080).allowed(0, 2));
    // ...while on 80 the later Admin Deny decides.
    assert!(!a.truth_table(TCP, 80).allowed(0, 2));
    // c (in q) is no Baseline subject: the pass falls through to the default.
    assert!(a.truth_table(TCP, 8080).allowed(2, 2));

    // With a NetworkPolicy isolating a's egress and allowing q, the passed port is allowed.
    let mut np = policy("p", "a-to-q", sel(&[("vm", "a")]), false, true);
    np.egress.push(rule(vec![namespace_named("q")], vec![]));
    c.policies.push(np);
    let a = analyzer_agreeing_with_the_evaluator(&c, &[80, 8080]);
    assert!(a.truth_table(TCP, 8080).allowed(0, 2));
    assert!(!a.truth_table(TCP, 80).allowed(0, 2));
}

#[test]
fn an_egress_accept_still_leaves_the_destination_ingress_to_decide() {
    let mut c = three();
    c.admin_policies.push(cnp(
        "p-may-reach-q",
        AdminTier::Admin,
        5,
        namespace_subject("p"),
        vec![],
        vec![admin_rule(
            AdminAction::Accept,
            vec![namespace_peer("q")],
            None,
        )],
    ));
    c.policies.push(policy(
        "q",
        "deny-all-ingress",
        LabelSelector::everything(),
        true,
        false,
    ));
    let a = analyzer_agreeing_with_the_evaluator(&c, &[80]);
    assert!(!a.truth_table(TCP, 80).allowed(0, 2));
}

#[test]
fn the_baseline_decides_only_for_workloads_no_network_policy_isolates() {
    let mut c = three();
    c.admin_policies.push(cnp(
        "deny-from-q",
        AdminTier::Baseline,
        1,
        namespace_subject("p"),
        vec![admin_rule(
            AdminAction::Deny,
            vec![namespace_peer("q")],
            None,
        )],
        vec![],
    ));
    let mut np = policy("p", "b-from-q", sel(&[("vm", "b")]), true, false);
    np.ingress.push(rule(vec![namespace_named("q")], vec![]));
    c.policies.push(np);
    let a = analyzer_agreeing_with_the_evaluator(&c, &[80]);
    let t = a.truth_table(TCP, 80);
    assert!(!t.allowed(2, 0), "a is not isolated: the Baseline denies");
    assert!(t.allowed(2, 1), "b is isolated: its NetworkPolicy decides");
}

#[test]
fn networks_match_workload_addresses_in_their_own_family_only() {
    let mut c = cluster(
        namespaces(&["p"]),
        vec![
            vm("p", "a", &[("vm", "a")], &["10.0.0.1", "fd00::1"]),
            vm("p", "b", &[("vm", "b")], &["10.0.0.2", "fd00::2"]),
        ],
        vec![],
    );
    c.admin_policies.push(cnp(
        "no-ipv4",
        AdminTier::Admin,
        1,
        everyone(),
        vec![],
        vec![admin_rule(
            AdminAction::Deny,
            vec![networks(&["0.0.0.0/0"])],
            None,
        )],
    ));
    let a = analyzer_agreeing_with_the_evaluator(&c, &[80]);
    let t = a.truth_table(TCP, 80);
    assert_eq!(t.by_family(0, 1), Some([false, true]));
    assert!(
        t.allowed(0, 0),
        "a workload reaching its own address is exempt"
    );
    assert!(!t.hairpin_allowed(0), "through a Service it is not");
}

#[test]
fn a_resolved_domain_name_matches_the_workload_it_points_at_and_not_its_twin() {
    let mut c = cluster(
        namespaces(&["p", "q"]),
        vec![
            vm("p", "client", &[("vm", "client")], &["10.0.0.1"]),
            vm("q", "api-1", &[("app", "api")], &["10.0.1.1"]),
            vm("q", "api-2", &[("app", "api")], &["10.0.1.2"]),
        ],
        vec![],
    );
    c.resolved_names
        .insert("api.example.com".into(), vec![ip("10.0.1.2")]);
    c.admin_policies.push(cnp(
        "api-by-name",
        AdminTier::Admin,
        1,
        namespace_subject("p"),
        vec![],
        vec![
            admin_rule(
                AdminAction::Accept,
                vec![AdminPeer::DomainNames(vec!["*.example.com".into()])],
                None,
            ),
            admin_rule(AdminAction::Deny, vec![networks(&["10.0.0.0/8"])], None),
        ],
    ));
    let a = analyzer_agreeing_with_the_evaluator(&c, &[443]);
    let t = a.truth_table(TCP, 443);
    assert!(!t.allowed(0, 1));
    assert!(t.allowed(0, 2));
}

#[test]
fn a_nodes_peer_matches_the_selected_nodes_and_no_workload() {
    let mut c = three();
    c.workloads[0] = c.workloads[0].clone().on("n1");
    c.nodes = vec![
        Node {
            name: "n1".into(),
            labels: labels(&[("zone", "a")]),
            addresses: vec![ip("192.168.0.1")],
            ..Node::default()
        },
        Node {
            name: "n2".into(),
            labels: labels(&[("zone", "b")]),
            addresses: vec![ip("192.168.0.2")],
            ..Node::default()
        },
    ];
    c.admin_policies.push(cnp(
        "not-to-zone-a",
        AdminTier::Admin,
        1,
        everyone(),
        vec![],
        vec![admin_rule(
            AdminAction::Deny,
            vec![AdminPeer::Nodes(sel(&[("zone", "a")]))],
            None,
        )],
    ));
    let a = analyzer_agreeing_with_the_evaluator(&c, &[22]);
    let t = a.truth_table(TCP, 22);
    let (n1, n2) = (c.workloads.len(), c.workloads.len() + 1);
    assert!(!t.allowed(1, n1));
    assert!(t.allowed(1, n2));
    assert!(t.allowed(1, 0), "a runs on n1 but is no node address");
    assert!(t.allowed(n1, 0), "its own node reaches a");
}

#[test]
fn a_rule_with_a_peer_of_an_unknown_kind_fails_closed_but_not_for_its_own_node() {
    let mut c = three();
    c.workloads[1] = c.workloads[1].clone().on("n1");
    c.nodes = vec![
        Node {
            name: "n1".into(),
            addresses: vec![ip("192.168.0.1")],
            ..Node::default()
        },
        Node {
            name: "n2".into(),
            addresses: vec![ip("192.168.0.2")],
            ..Node::default()
        },
    ];
    c.admin_policies.push(cnp(
        "newer-crd",
        AdminTier::Admin,
        1,
        namespace_subject("p"),
        vec![admin_rule(
            AdminAction::Pass,
            vec![namespace_peer("q"), AdminPeer::Unknown],
            tcp_port(80),
        )],
        vec![admin_rule(
            AdminAction::Accept,
            vec![AdminPeer::Unknown],
            None,
        )],
    ));
    let a = analyzer_agreeing_with_the_evaluator(&c, &[80, 443]);
    let t = a.truth_table(TCP, 443);
    let (n1, n2) = (c.workloads.len(), c.workloads.len() + 1);
    assert!(
        !t.allowed(2, 1),
        "Pass with an unknown peer is Deny all, every port"
    );
    assert!(!t.allowed(n2, 1));
    assert!(t.allowed(n1, 1), "a workload's own node always reaches it");
    assert!(
        t.allowed(1, 2),
        "Accept with an unknown peer matches nothing"
    );
}

#[test]
fn equal_priorities_are_walked_by_api_then_name() {
    let mut c = three();
    let rule_to_q = |action| admin_rule(action, vec![namespace_peer("q")], None);
    c.admin_policies = vec![
        cnp(
            "b",
            AdminTier::Admin,
            3,
            everyone(),
            vec![],
            vec![rule_to_q(AdminAction::Accept)],
        ),
        cnp(
            "a",
            AdminTier::Admin,
            3,
            everyone(),
            vec![],
            vec![rule_to_q(AdminAction::Deny)],
        ),
    ];
    let a = analyzer_agreeing_with_the_evaluator(&c, &[80]);
    assert!(!a.truth_table(TCP, 80).allowed(0, 2), "cnp/a before cnp/b");
}

#[test]
fn a_hairpin_flow_is_allowed_by_network_policy_but_not_by_an_admin_deny() {
    let mut c = three();
    c.policies.push(policy(
        "q",
        "deny-all",
        LabelSelector::everything(),
        true,
        true,
    ));
    let a = analyzer_agreeing_with_the_evaluator(&c, &[8080]);
    assert!(a.truth_table(TCP, 8080).hairpin_allowed(2));
    c.admin_policies.push(cnp(
        "no-web",
        AdminTier::Admin,
        1,
        namespace_subject("q"),
        vec![admin_rule(
            AdminAction::Deny,
            vec![namespace_peer("q")],
            Some(vec![AdminPort::Named("web".into())]),
        )],
        vec![],
    ));
    let a = analyzer_agreeing_with_the_evaluator(&c, &[80, 8080]);
    let t = a.truth_table(TCP, 8080);
    assert!(!t.hairpin_allowed(2));
    assert!(t.allowed(2, 2), "its own address stays allowed");
    assert!(a.truth_table(TCP, 80).hairpin_allowed(2));
    assert_eq!(
        a.connectivity_map().hairpin_ports(2, TCP),
        &[(1, 8079), (8081, 65535)]
    );
}
