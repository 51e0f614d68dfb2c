//! The human and JSON renderings of a verdict.

mod common;

use common::*;
use netpol_core::eval::{evaluate, explain, Endpoint};
use netpol_core::model::*;

fn project() -> Cluster {
    let ws = vec![
        vm("test-project", "vm-a", &[("vm", "a")], &["10.0.0.1"]),
        vm("test-project", "vm-b", &[("vm", "b")], &["10.0.0.2"]),
        vm("another-project", "vm-c", &[("vm", "c")], &["10.0.0.3"]),
    ];
    let mut deny = policy(
        "test-project",
        "vm-a-deny-ingress",
        sel(&[("vm", "a")]),
        true,
        false,
    );
    deny.origin = Some(Origin {
        file: "examples/deny.yaml".into(),
        line: 1,
    });
    cluster(vec![], ws, vec![deny])
}

#[test]
fn a_policy_without_ingress_rules_is_explained_as_denying_all_ingress() {
    let c = project();
    let v = flow(
        &c,
        up(),
        "test-project/vm-b",
        "test-project/vm-a",
        Protocol::Tcp,
        80,
    );
    assert_eq!(
        explain(&v),
        "DENIED  test-project/vm-b -> test-project/vm-a  TCP/80\n\
         \x20 addresses: 10.0.0.2 -> 10.0.0.1\n\
         \x20 egress from test-project/vm-b: open (no policy selects it for egress)\n\
         \x20 ingress to test-project/vm-a: denied\n\
         \x20   isolated by 1 policy: test-project/vm-a-deny-ingress\n\
         \x20   test-project/vm-a-deny-ingress (examples/deny.yaml:1): has no ingress rules, so it denies all ingress\n"
    );
}

#[test]
fn an_allowed_flow_names_the_policy_and_rule_that_allowed_it() {
    let mut c = project();
    let mut allow = policy("test-project", "allow-b", sel(&[("vm", "a")]), true, false);
    allow.ingress.push(Rule {
        peers: vec![pods_in_own_ns(&[("vm", "b")])],
        ports: vec![],
    });
    allow.origin = Some(Origin {
        file: "allow.yaml".into(),
        line: 7,
    });
    c.policies.push(allow);
    let v = flow(
        &c,
        up(),
        "test-project/vm-b",
        "test-project/vm-a",
        Protocol::Tcp,
        80,
    );
    assert!(v.allowed);
    let text = explain(&v);
    assert!(text.starts_with("ALLOWED  test-project/vm-b -> test-project/vm-a  TCP/80\n"));
    assert!(text.contains(
        "    allowed by test-project/allow-b (allow.yaml:7): ingress[0] from podSelector vm=b (namespace test-project), all ports\n"
    ), "{text}");
    assert!(text
        .contains("isolated by 2 policies: test-project/vm-a-deny-ingress, test-project/allow-b"));
}

#[test]
fn a_denial_points_at_the_nearest_rule_and_what_did_not_match() {
    let mut c = project();
    let mut dns = policy(
        "test-project",
        "dns-from-x",
        sel(&[("vm", "a")]),
        true,
        false,
    );
    // Rule 0 fails on both peer and port; rule 1 only on the port, so rule 1 is nearest.
    dns.ingress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: None,
            namespace_selector: Some(sel(&[(NAMESPACE_NAME_LABEL, "x")])),
        }],
        ports: vec![tcp(53)],
    });
    dns.ingress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: None,
            namespace_selector: Some(LabelSelector::everything()),
        }],
        ports: vec![tcp(53)],
    });
    c.policies = vec![dns];
    let v = flow(
        &c,
        up(),
        "another-project/vm-c",
        "test-project/vm-a",
        Protocol::Tcp,
        80,
    );
    let text = explain(&v);
    assert!(
        text.contains("nearest rule ingress[1] from namespaceSelector <all>, ports TCP 53"),
        "{text}"
    );
    assert!(
        text.contains("does not match: port: 80/TCP not in [TCP 53]"),
        "{text}"
    );

    let v = flow(
        &c,
        up(),
        "another-project/vm-c",
        "test-project/vm-a",
        Protocol::Tcp,
        53,
    );
    assert!(v.allowed);
    c.policies[0].ingress.truncate(1);
    let v = flow(
        &c,
        up(),
        "another-project/vm-c",
        "test-project/vm-a",
        Protocol::Tcp,
        53,
    );
    let text = explain(&v);
    assert!(text.contains(
        "does not match: peer: namespace \"another-project\" does not match namespaceSelector kubernetes.io/metadata.name=x"
    ), "{text}");
}

#[test]
fn the_verdict_serializes_with_policy_keys_and_rule_indexes() {
    let mut c = project();
    let mut allow = policy("test-project", "allow-b", sel(&[("vm", "a")]), true, false);
    allow.ingress.push(Rule {
        peers: vec![
            pods_in_own_ns(&[("vm", "x")]),
            pods_in_own_ns(&[("vm", "b")]),
        ],
        ports: vec![tcp(22), tcp(80)],
    });
    c.policies.push(allow);
    let v = evaluate(
        &c,
        up(),
        &Endpoint::Workload(index(&c, "test-project/vm-b")),
        &Endpoint::Workload(index(&c, "test-project/vm-a")),
        Protocol::Tcp,
        80,
    );
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["allowed"], true);
    assert_eq!(json["protocol"], "TCP");
    assert_eq!(json["egress"]["status"], "open");
    assert_eq!(json["ingress"]["status"], "allowed");
    let m = &json["ingress"]["allowed_by"][0];
    assert_eq!(m["policy"], "test-project/allow-b");
    assert_eq!(m["rule"], 0);
    assert_eq!(m["peer"], 1);
    assert_eq!(m["port"], 1);
    assert_eq!(
        json["ingress"]["isolated_by"],
        serde_json::json!(["test-project/vm-a-deny-ingress", "test-project/allow-b"])
    );
}

#[test]
fn an_external_endpoint_is_not_subject_to_policy() {
    let c = project();
    let v = flow(
        &c,
        up(),
        "test-project/vm-a",
        "192.0.2.10",
        Protocol::Udp,
        53,
    );
    assert!(v.allowed);
    assert!(explain(&v).contains("ingress to 192.0.2.10: not applicable"));
}
