//! Each lint check on a case that must be found and one that must not.

use netpol_core::lint::{lint, Check, Finding, LintSeverity};
use netpol_core::model::*;
use netpol_test_support::*;

fn found(c: &Cluster, check: Check) -> Vec<Finding> {
    found_with(c, check, EvalOptions::default())
}

fn found_with(c: &Cluster, check: Check, opts: EvalOptions) -> Vec<Finding> {
    lint(c, opts)
        .findings
        .into_iter()
        .filter(|f| f.check == check)
        .collect()
}

fn web_and_db() -> Vec<Workload> {
    vec![
        pod(
            "shop",
            "web",
            &[("app", "web")],
            &["10.0.0.5"],
            &[("http", Protocol::Tcp, 8080)],
        ),
        pod("shop", "db", &[("app", "db")], &["10.0.0.6"], &[]),
    ]
}

fn ingress_policy(name: &str, rules: Vec<Rule>) -> Policy {
    let mut p = policy("shop", name, sel(&[("app", "db")]), true, false);
    p.ingress = rules;
    p
}

fn named(n: &str) -> PolicyPort {
    port(Protocol::Tcp, Some(PortSpec::Named(n.into())))
}

#[test]
fn a_policy_selecting_no_workload_is_found_and_one_selecting_a_workload_is_not() {
    let ghost = policy("shop", "ghost", sel(&[("app", "ghost")]), true, false);
    let real = policy("shop", "real", sel(&[("app", "web")]), true, false);
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![ghost, real]);
    let f = found(&c, Check::SelectsNoWorkload);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].object, "NetworkPolicy shop/ghost");
    assert_eq!(f[0].check.id(), "NP001");
}

#[test]
fn without_workloads_the_selection_checks_are_skipped_not_reported() {
    let ghost = policy("shop", "ghost", sel(&[("app", "ghost")]), true, false);
    let c = cluster(namespaces(&["shop"]), vec![], vec![ghost]);
    let report = lint(&c, EvalOptions::default());
    assert!(report.skipped.contains(&Check::SelectsNoWorkload));
    assert!(report.skipped.contains(&Check::Redundant));
    assert!(report
        .findings
        .iter()
        .all(|f| f.check != Check::SelectsNoWorkload));
}

#[test]
fn a_peer_selecting_nothing_is_found_and_a_peer_selecting_a_workload_is_not() {
    let p = ingress_policy(
        "p",
        vec![
            rule(vec![pods_in_own_ns(&[("app", "nobody")])], vec![]),
            rule(vec![pods_in_own_ns(&[("app", "web")])], vec![]),
            rule(vec![namespace_named("nowhere")], vec![]),
        ],
    );
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![p]);
    let f = found(&c, Check::PeerSelectsNothing);
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(
        f[0].message.starts_with("ingress[0].from[0]"),
        "{}",
        f[0].message
    );
    assert!(
        f[1].message.contains("selects no namespace"),
        "{}",
        f[1].message
    );
}

#[test]
fn a_rule_inside_another_of_the_same_policy_is_redundant_and_the_wider_one_is_not() {
    let web = || vec![pods_in_own_ns(&[("app", "web")])];
    let range = port(Protocol::Tcp, Some(PortSpec::Range { start: 80, end: 81 }));
    let p = ingress_policy(
        "p",
        vec![rule(web(), vec![tcp(80)]), rule(web(), vec![range])],
    );
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![p]);
    let f = found(&c, Check::Redundant);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].message.starts_with("ingress[0] "), "{}", f[0].message);
}

#[test]
fn a_rule_covered_only_by_the_union_of_two_others_is_redundant() {
    let web = || vec![pods_in_own_ns(&[("app", "web")])];
    let range = port(Protocol::Tcp, Some(PortSpec::Range { start: 80, end: 81 }));
    let p = ingress_policy(
        "p",
        vec![
            rule(web(), vec![range]),
            rule(web(), vec![tcp(80)]),
            rule(web(), vec![tcp(81)]),
        ],
    );
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![p]);
    let f = found(&c, Check::Redundant);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].message.starts_with("ingress[0] "), "{}", f[0].message);
}

#[test]
fn rules_admitting_different_peers_or_ports_are_not_redundant() {
    let p = ingress_policy(
        "p",
        vec![
            rule(vec![pods_in_own_ns(&[("app", "web")])], vec![tcp(80)]),
            rule(vec![pods_in_own_ns(&[("app", "db")])], vec![tcp(80)]),
            rule(vec![pods_in_own_ns(&[("app", "web")])], vec![tcp(81)]),
        ],
    );
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![p]);
    assert!(found(&c, Check::Redundant).is_empty());
}

#[test]
fn a_policy_whose_rules_another_policy_covers_is_redundant_once_and_the_other_is_not() {
    let web = || vec![pods_in_own_ns(&[("app", "web")])];
    let range = port(Protocol::Tcp, Some(PortSpec::Range { start: 80, end: 81 }));
    let narrow = ingress_policy("narrow", vec![rule(web(), vec![tcp(80)])]);
    let wide = ingress_policy("wide", vec![rule(web(), vec![range])]);
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![narrow, wide]);
    let f = found(&c, Check::Redundant);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].object, "NetworkPolicy shop/narrow");
    assert!(
        f[0].message.contains("removing it changes nothing"),
        "{}",
        f[0].message
    );
}

#[test]
fn an_ip_block_inside_another_is_redundant_unless_a_hole_uncovers_it() {
    let small = || rule(vec![block("192.0.2.0/25", &[])], vec![tcp(80)]);
    let covered = ingress_policy(
        "p",
        vec![
            small(),
            rule(vec![block("192.0.2.0/24", &[])], vec![tcp(80)]),
        ],
    );
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![covered]);
    let f = found(&c, Check::Redundant);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].message.starts_with("ingress[0] "), "{}", f[0].message);

    let holed = rule(
        vec![block("192.0.2.0/24", &["192.0.2.0/26"])],
        vec![tcp(80)],
    );
    let uncovered = ingress_policy("p", vec![small(), holed]);
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![uncovered]);
    assert!(found(&c, Check::Redundant).is_empty());
}

#[test]
fn a_named_port_is_compared_by_what_it_resolves_to_on_the_destination() {
    let mut p = policy("shop", "p", sel(&[("app", "web")]), true, false);
    let from_db = || vec![pods_in_own_ns(&[("app", "db")])];
    p.ingress = vec![
        rule(from_db(), vec![named("http")]),
        rule(from_db(), vec![tcp(8080)]),
    ];
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![p.clone()]);
    assert_eq!(found(&c, Check::Redundant).len(), 1);
    p.ingress[1] = rule(from_db(), vec![tcp(8081)]);
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![p]);
    assert!(found(&c, Check::Redundant).is_empty());
}

#[test]
fn a_default_deny_policy_is_never_reported_redundant() {
    let deny = policy("shop", "deny", LabelSelector::everything(), true, false);
    let allow = ingress_policy(
        "allow",
        vec![rule(vec![pods_in_own_ns(&[("app", "web")])], vec![])],
    );
    let c = cluster(
        namespaces(&["shop"]),
        web_and_db(),
        vec![deny.clone(), deny_copy(&deny), allow],
    );
    assert!(found(&c, Check::Redundant).is_empty());
}

fn deny_copy(p: &Policy) -> Policy {
    let mut q = p.clone();
    q.name = "deny-too".into();
    q
}

fn egress_policy(rules: Vec<Rule>) -> Policy {
    let mut p = policy("shop", "egress", sel(&[("app", "web")]), false, true);
    p.egress = rules;
    p
}

fn to_dns() -> Vec<Peer> {
    vec![Peer::Selector {
        pod_selector: Some(sel(&[("k8s-app", "kube-dns")])),
        namespace_selector: Some(sel(&[(NAMESPACE_NAME_LABEL, "kube-system")])),
    }]
}

#[test]
fn egress_isolation_without_dns_is_found_and_with_dns_on_both_protocols_it_is_not() {
    let udp = port(Protocol::Udp, Some(PortSpec::Number(53)));
    let none = egress_policy(vec![rule(vec![block("192.0.2.0/24", &[])], vec![tcp(443)])]);
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![none]);
    let f = found(&c, Check::EgressWithoutDns);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].message.contains("UDP/53 and TCP/53"),
        "{}",
        f[0].message
    );

    let only_udp = egress_policy(vec![rule(to_dns(), vec![udp.clone()])]);
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![only_udp]);
    let f = found(&c, Check::EgressWithoutDns);
    assert_eq!(f.len(), 1);
    assert!(f[0].message.contains("on TCP/53:"), "{}", f[0].message);

    let both = egress_policy(vec![rule(to_dns(), vec![udp, tcp(53)])]);
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![both]);
    assert!(found(&c, Check::EgressWithoutDns).is_empty());

    let anywhere = egress_policy(vec![rule(vec![], vec![])]);
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![anywhere]);
    assert!(found(&c, Check::EgressWithoutDns).is_empty());
}

#[test]
fn dns_to_a_loaded_coredns_counts_through_its_real_labels_and_named_ports() {
    let coredns = pod(
        "kube-system",
        "coredns-1",
        &[("k8s-app", "kube-dns")],
        &["10.0.9.9"],
        &[("dns", Protocol::Udp, 53), ("dns-tcp", Protocol::Tcp, 53)],
    );
    let mut workloads = web_and_db();
    workloads.push(coredns);
    let ports = vec![
        port(Protocol::Udp, Some(PortSpec::Named("dns".into()))),
        named("dns-tcp"),
    ];
    let p = egress_policy(vec![rule(to_dns(), ports)]);
    let c = cluster(
        namespaces(&["shop", "kube-system"]),
        workloads.clone(),
        vec![p],
    );
    assert!(found(&c, Check::EgressWithoutDns).is_empty());
    // The same names that CoreDNS does not define resolve to nothing.
    let wrong = egress_policy(vec![rule(to_dns(), vec![named("domain")])]);
    let c = cluster(namespaces(&["shop", "kube-system"]), workloads, vec![wrong]);
    assert_eq!(found(&c, Check::EgressWithoutDns).len(), 1);
}

#[test]
fn an_ip_block_over_workload_addresses_is_found_and_one_outside_them_is_not() {
    let p = ingress_policy(
        "p",
        vec![rule(
            vec![block("10.0.0.0/8", &[]), block("192.0.2.0/24", &[])],
            vec![],
        )],
    );
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![p]);
    let f = found(&c, Check::IpBlockCoversWorkloads);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].message
            .contains("ingress[0].from[0] ipBlock 10.0.0.0/8"),
        "{}",
        f[0].message
    );
    assert!(f[0].message.contains("2 workload(s)"), "{}", f[0].message);
    let cilium = EvalOptions {
        ipblock_matches_workloads: false,
    };
    let f = found_with(&c, Check::IpBlockCoversWorkloads, cilium);
    assert!(
        f[0].message.contains("does not admit them"),
        "{}",
        f[0].message
    );
}

#[test]
fn a_named_port_no_destination_defines_is_found_and_a_defined_one_is_not() {
    let mut to_db = policy("shop", "p", sel(&[("app", "db")]), true, false);
    to_db.ingress = vec![rule(vec![], vec![named("http")])];
    let mut to_web = policy("shop", "q", sel(&[("app", "web")]), true, true);
    to_web.ingress = vec![rule(vec![], vec![named("http")])];
    to_web.egress = vec![
        rule(vec![pods_in_own_ns(&[("app", "web")])], vec![named("http")]),
        rule(vec![block("192.0.2.0/24", &[])], vec![named("http")]),
    ];
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![to_db, to_web]);
    let f = found(&c, Check::UnknownNamedPort);
    let where_: Vec<(String, String)> = f
        .iter()
        .map(|f| (f.object.clone(), f.message[..18].to_string()))
        .collect();
    assert_eq!(
        where_,
        vec![
            (
                "NetworkPolicy shop/p".to_string(),
                "ingress[0].ports[0".to_string()
            ),
            (
                "NetworkPolicy shop/q".to_string(),
                "egress[1].ports[0]".to_string()
            ),
        ]
    );
}

#[test]
fn egress_without_egress_rules_warns_next_to_ingress_rules_and_informs_on_a_plain_deny() {
    let mut copied = ingress_policy("copied", vec![rule(vec![], vec![tcp(80)])]);
    copied.affects_egress = true;
    let deny = policy("shop", "deny", LabelSelector::everything(), false, true);
    let fine = egress_policy(vec![rule(vec![], vec![])]);
    let c = cluster(
        namespaces(&["shop"]),
        web_and_db(),
        vec![copied, deny, fine],
    );
    let f = found(&c, Check::EgressWithoutRules);
    let got: Vec<(String, LintSeverity)> =
        f.iter().map(|f| (f.object.clone(), f.severity)).collect();
    assert_eq!(
        got,
        vec![
            (
                "NetworkPolicy shop/copied".to_string(),
                LintSeverity::Warning
            ),
            ("NetworkPolicy shop/deny".to_string(), LintSeverity::Info),
        ]
    );
}

fn split_peers() -> Vec<Peer> {
    vec![
        Peer::Selector {
            pod_selector: None,
            namespace_selector: Some(sel(&[("team", "mon")])),
        },
        pods_in_own_ns(&[("app", "prometheus")]),
    ]
}

#[test]
fn a_pod_selector_that_only_matches_in_the_namespaces_of_the_item_before_is_a_dash_mistake() {
    let prometheus = pod(
        "monitoring",
        "prometheus",
        &[("app", "prometheus")],
        &["10.0.1.1"],
        &[],
    );
    let mut workloads = web_and_db();
    workloads.push(prometheus);
    let ns = vec![
        namespace("shop", &[]),
        namespace("monitoring", &[("team", "mon")]),
    ];
    let p = ingress_policy("p", vec![rule(split_peers(), vec![tcp(9090)])]);
    let c = cluster(ns.clone(), workloads.clone(), vec![p]);
    let f = found(&c, Check::SplitPeer);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].message.contains("e.g. monitoring/prometheus"),
        "{}",
        f[0].message
    );

    // One item with both selectors (the AND) is what was meant: nothing to say.
    let and = Peer::Selector {
        pod_selector: Some(sel(&[("app", "prometheus")])),
        namespace_selector: Some(sel(&[("team", "mon")])),
    };
    let p = ingress_policy("p", vec![rule(vec![and], vec![tcp(9090)])]);
    let c = cluster(ns.clone(), workloads.clone(), vec![p]);
    assert!(found(&c, Check::SplitPeer).is_empty());

    // A prometheus of the policy's own namespace makes the two items plausible as written.
    workloads.push(pod(
        "shop",
        "prometheus",
        &[("app", "prometheus")],
        &["10.0.0.9"],
        &[],
    ));
    let p = ingress_policy("p", vec![rule(split_peers(), vec![tcp(9090)])]);
    let c = cluster(ns, workloads, vec![p]);
    assert!(found(&c, Check::SplitPeer).is_empty());
}

#[test]
fn findings_carry_the_policy_origin_and_are_sorted_by_file_and_line() {
    let mut a = policy("shop", "a", sel(&[("app", "ghost")]), true, false);
    a.origin = Some(Origin {
        file: "b.yaml".into(),
        line: 7,
    });
    let mut b = policy("shop", "b", sel(&[("app", "ghost2")]), true, false);
    b.origin = Some(Origin {
        file: "a.yaml".into(),
        line: 3,
    });
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![a, b]);
    let f = found(&c, Check::SelectsNoWorkload);
    let origins: Vec<String> = f
        .iter()
        .map(|f| f.origin.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(origins, vec!["a.yaml:3", "b.yaml:7"]);
}

#[test]
fn of_two_identical_policies_only_the_first_is_reported() {
    let web = || vec![pods_in_own_ns(&[("app", "web")])];
    let a = ingress_policy("a", vec![rule(web(), vec![tcp(80)])]);
    let b = ingress_policy("b", vec![rule(web(), vec![tcp(80)])]);
    let c = cluster(namespaces(&["shop"]), web_and_db(), vec![b, a]);
    let f = found(&c, Check::Redundant);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].object, "NetworkPolicy shop/a");
    assert!(
        f[0].message.contains("covered by shop/b"),
        "{}",
        f[0].message
    );
}
