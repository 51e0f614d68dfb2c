//! NetworkPolicy validation and defaulting as the API server does them.

mod common;

use common::*;
use netpol_core::{Peer, PortSpec, Protocol, SelectorOperator};
use netpol_k8s::Severity;

/// Loads a one-policy manifest and returns the messages of its errors.
fn error_messages(spec: &str) -> Vec<String> {
    let l = load(&policy(spec));
    let errs: Vec<String> = errors(&l).iter().map(|d| d.message.clone()).collect();
    // An object with an error must not load.
    assert_eq!(l.cluster.policies.is_empty(), !errs.is_empty(), "{errs:?}");
    errs
}

fn assert_rejected(spec: &str, expected: &str) {
    let errs = error_messages(spec);
    assert!(
        errs.iter().any(|e| e == expected),
        "expected {expected:?} among {errs:?}"
    );
}

fn assert_valid(spec: &str) {
    let errs = error_messages(spec);
    assert!(errs.is_empty(), "unexpected errors {errs:?}");
}

#[test]
fn port_numbers_must_be_between_1_and_65535() {
    assert_rejected(
        "  podSelector: {}\n  ingress:\n    - ports:\n        - port: 70000\n",
        "spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
    assert_rejected(
        "  podSelector: {}\n  ingress:\n    - ports:\n        - port: 0\n",
        "spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
    );
    assert_valid("  podSelector: {}\n  ingress:\n    - ports:\n        - port: 65535\n");
    assert_valid("  podSelector: {}\n  ingress:\n    - ports:\n        - port: 1\n");
}

#[test]
fn port_names_must_be_iana_service_names() {
    assert_valid("  podSelector: {}\n  ingress:\n    - ports:\n        - port: http-alt\n");
    assert_rejected(
        "  podSelector: {}\n  ingress:\n    - ports:\n        - port: HTTP\n",
        "spec.ingress[0].ports[0].port: Invalid value: \"HTTP\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
    );
    // A quoted number is a string, so a port name, and a name needs a letter.
    assert_rejected(
        "  podSelector: {}\n  ingress:\n    - ports:\n        - port: \"80\"\n",
        "spec.ingress[0].ports[0].port: Invalid value: \"80\": must contain at least one letter (a-z)",
    );
    assert_rejected(
        "  podSelector: {}\n  ingress:\n    - ports:\n        - port: a--b\n",
        "spec.ingress[0].ports[0].port: Invalid value: \"a--b\": must not contain consecutive hyphens",
    );
    assert_rejected(
        "  podSelector: {}\n  ingress:\n    - ports:\n        - port: very-long-port-name\n",
        "spec.ingress[0].ports[0].port: Invalid value: \"very-long-port-name\": must be no more than 15 characters",
    );
}

#[test]
fn end_port_needs_a_numeric_port_not_above_it() {
    assert_valid("  podSelector: {}\n  egress:\n    - ports:\n        - port: 1000\n          endPort: 2000\n");
    assert_valid("  podSelector: {}\n  egress:\n    - ports:\n        - port: 1000\n          endPort: 1000\n");
    assert_rejected(
        "  podSelector: {}\n  egress:\n    - ports:\n        - port: 2000\n          endPort: 1000\n",
        "spec.egress[0].ports[0].endPort: Invalid value: 2000: must be greater than or equal to `port`",
    );
    assert_rejected(
        "  podSelector: {}\n  egress:\n    - ports:\n        - port: http\n          endPort: 1000\n",
        "spec.egress[0].ports[0].endPort: Invalid value: 1000: may not be specified when `port` is non-numeric",
    );
    assert_rejected(
        "  podSelector: {}\n  egress:\n    - ports:\n        - endPort: 1000\n",
        "spec.egress[0].ports[0].endPort: Invalid value: 1000: may not be specified when `port` is not specified",
    );
    assert_rejected(
        "  podSelector: {}\n  egress:\n    - ports:\n        - port: 1000\n          endPort: 70000\n",
        "spec.egress[0].ports[0].endPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
}

#[test]
fn protocols_are_exactly_tcp_udp_or_sctp() {
    assert_valid("  podSelector: {}\n  ingress:\n    - ports:\n        - protocol: SCTP\n");
    assert_rejected(
        "  podSelector: {}\n  ingress:\n    - ports:\n        - protocol: tcp\n",
        "spec.ingress[0].ports[0].protocol: Unsupported value: \"tcp\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
    );
}

#[test]
fn a_peer_is_either_an_ip_block_alone_or_selectors() {
    assert_rejected(
        "  podSelector: {}\n  ingress:\n    - from:\n        - {}\n",
        "spec.ingress[0].from[0]: Required value: must specify a peer",
    );
    assert_rejected(
        "  podSelector: {}\n  ingress:\n    - from:\n        - ipBlock:\n            cidr: 192.0.2.0/24\n          podSelector: {}\n",
        "spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer",
    );
    assert_valid("  podSelector: {}\n  ingress:\n    - from:\n        - podSelector: {}\n          namespaceSelector: {}\n");
}

#[test]
fn ip_blocks_need_a_valid_cidr_and_excepts_strictly_inside() {
    assert_valid("  podSelector: {}\n  egress:\n    - to:\n        - ipBlock:\n            cidr: 10.0.0.0/8\n            except: [10.1.0.0/16, 10.2.3.4/32]\n");
    assert_valid("  podSelector: {}\n  egress:\n    - to:\n        - ipBlock:\n            cidr: 2001:db8::/32\n            except: [\"2001:db8:1::/48\"]\n");
    assert_rejected(
        "  podSelector: {}\n  egress:\n    - to:\n        - ipBlock:\n            cidr: 10.0.0.0/33\n",
        "spec.egress[0].to[0].ipBlock.cidr: Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
    );
    assert_rejected(
        "  podSelector: {}\n  egress:\n    - to:\n        - ipBlock:\n            cidr: \"\"\n",
        "spec.egress[0].to[0].ipBlock.cidr: Required value",
    );
    assert_rejected(
        "  podSelector: {}\n  egress:\n    - to:\n        - ipBlock:\n            cidr: 10.0.0.0/8\n            except: [192.0.2.0/24]\n",
        "spec.egress[0].to[0].ipBlock.except[0]: Invalid value: \"192.0.2.0/24\": must be a strict subset of `cidr`",
    );
    // Equal is not strictly inside.
    assert_rejected(
        "  podSelector: {}\n  egress:\n    - to:\n        - ipBlock:\n            cidr: 10.0.0.0/8\n            except: [10.0.0.0/8]\n",
        "spec.egress[0].to[0].ipBlock.except[0]: Invalid value: \"10.0.0.0/8\": must be a strict subset of `cidr`",
    );
    assert_rejected(
        "  podSelector: {}\n  egress:\n    - to:\n        - ipBlock:\n            cidr: 10.0.0.0/8\n            except: [\"::/64\"]\n",
        "spec.egress[0].to[0].ipBlock.except[0]: Invalid value: \"::/64\": must be a strict subset of `cidr`",
    );
}

#[test]
fn a_cidr_with_host_bits_is_accepted_as_its_network_with_a_warning() {
    let l = load(&policy(
        "  podSelector: {}\n  egress:\n    - to:\n        - ipBlock:\n            cidr: 10.0.0.1/24\n",
    ));
    assert!(errors(&l).is_empty());
    let p = &l.cluster.policies[0];
    let Peer::IpBlock(b) = &p.egress[0].peers[0] else {
        panic!("not an ipBlock")
    };
    assert_eq!(b.cidr.to_string(), "10.0.0.0/24");
    let w = with(&l, Severity::Warning);
    assert!(w.iter().any(
        |d| d.field_path.as_deref() == Some("spec.egress[0].to[0].ipBlock.cidr")
            && d.message.contains("\"10.0.0.0/24\"")
            && d.line == 11
    ));
}

#[test]
fn selector_expressions_follow_the_operator_rules() {
    assert_valid("  podSelector:\n    matchExpressions:\n      - {key: tier, operator: In, values: [db]}\n      - {key: legacy, operator: DoesNotExist}\n");
    assert_rejected(
        "  podSelector:\n    matchExpressions:\n      - {key: tier, operator: In}\n",
        "spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
    );
    assert_rejected(
        "  podSelector:\n    matchExpressions:\n      - {key: tier, operator: NotIn, values: []}\n",
        "spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
    );
    assert_rejected(
        "  podSelector:\n    matchExpressions:\n      - {key: tier, operator: Exists, values: [db]}\n",
        "spec.podSelector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
    );
    assert_rejected(
        "  podSelector:\n    matchExpressions:\n      - {key: tier, operator: Equals, values: [db]}\n",
        "spec.podSelector.matchExpressions[0].operator: Invalid value: \"Equals\": not a valid selector operator",
    );
}

#[test]
fn selector_keys_are_qualified_names_and_values_label_values() {
    assert_valid("  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: web\n");
    let errs = error_messages("  podSelector:\n    matchLabels:\n      -bad: web\n");
    assert!(
        errs.iter().any(|e| e.starts_with(
            "spec.podSelector.matchLabels: Invalid value: \"-bad\": name part must consist of"
        )),
        "{errs:?}"
    );
    let long = "v".repeat(64);
    let errs = error_messages(&format!(
        "  podSelector:\n    matchLabels:\n      app: {long}\n"
    ));
    assert!(
        errs.iter()
            .any(|e| e.ends_with("must be no more than 63 characters")),
        "{errs:?}"
    );
    let errs = error_messages("  ingress:\n    - from:\n        - namespaceSelector:\n            matchExpressions:\n              - {key: a/b/c, operator: Exists}\n");
    assert!(errs.iter().any(|e| e.starts_with("spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].key: Invalid value: \"a/b/c\": a qualified name must consist of")), "{errs:?}");
}

#[test]
fn policy_types_are_ingress_or_egress_at_most_two_without_repeats() {
    assert_rejected(
        "  podSelector: {}\n  policyTypes: [ingress]\n",
        "spec.policyTypes[0]: Unsupported value: \"ingress\": supported values: \"Ingress\", \"Egress\"",
    );
    assert_rejected(
        "  podSelector: {}\n  policyTypes: [Ingress, Egress, Ingress]\n",
        "spec.policyTypes: Invalid value: [\"Ingress\", \"Egress\", \"Ingress\"]: may not specify more than two policyTypes",
    );
    assert_rejected(
        "  podSelector: {}\n  policyTypes: [Egress, Egress]\n",
        "spec.policyTypes[1]: Duplicate value: \"Egress\"",
    );
    assert_valid("  podSelector: {}\n  policyTypes: [Egress, Ingress]\n");
}

#[test]
fn object_names_and_namespaces_are_checked() {
    let l = load("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: Bad_Name\n  namespace: Bad.NS\nspec: {}\n");
    let msgs: Vec<&str> = errors(&l).iter().map(|d| d.message.as_str()).collect();
    assert!(
        msgs.iter().any(|m| m.starts_with(
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        )),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.starts_with(
            "metadata.namespace: Invalid value: \"Bad.NS\": a lowercase RFC 1123 label"
        )),
        "{msgs:?}"
    );
    let l = load("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  namespace: ns\nspec: {}\n");
    assert!(errors(&l)
        .iter()
        .any(|d| d.message == "metadata.name: Required value: name or generateName is required"));
}

#[test]
fn every_problem_of_an_object_is_reported_at_its_own_position() {
    let text = policy("  podSelector: {}\n  ingress:\n    - ports:\n        - port: 70000\n          protocol: tcp\n      from:\n        - {}\n");
    let l = load(&text);
    let errs = errors(&l);
    assert_eq!(errs.len(), 3, "{errs:?}");
    let at = |path: &str| {
        errs.iter()
            .find(|d| d.field_path.as_deref() == Some(path))
            .map(|d| (d.line, d.column))
    };
    assert_eq!(at("spec.ingress[0].ports[0].port"), Some((10, 17)));
    assert_eq!(at("spec.ingress[0].ports[0].protocol"), Some((11, 21)));
    assert_eq!(at("spec.ingress[0].from[0]"), Some((13, 11)));
    let port = errs
        .iter()
        .find(|d| d.field_path.as_deref() == Some("spec.ingress[0].ports[0].port"))
        .unwrap();
    assert_eq!(
        port.to_string().lines().next(),
        Some("t.yaml:10:17: error: NetworkPolicy ns/p: spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive")
    );
}

#[test]
fn an_invalid_object_is_rejected_and_the_others_still_load() {
    let text = format!(
        "{}\n---\n{}",
        policy("  podSelector: {}\n  policyTypes: [Sideways]\n"),
        policy("  podSelector: {}\n").replace("name: p", "name: q")
    );
    let l = load(&text);
    assert_eq!(errors(&l).len(), 1);
    assert_eq!(l.cluster.policies.len(), 1);
    assert_eq!(l.cluster.policies[0].name, "q");
}

#[test]
fn policy_types_default_to_ingress_plus_egress_when_egress_rules_exist() {
    let l = load(&policy("  podSelector: {}\n  egress:\n    - {}\n"));
    let p = &l.cluster.policies[0];
    assert!(p.affects_ingress && p.affects_egress);
    assert_eq!(p.egress.len(), 1);
    let l = load(&policy("  podSelector: {}\n"));
    let p = &l.cluster.policies[0];
    assert!(p.affects_ingress && !p.affects_egress);
    // An empty spec is a valid deny-all-ingress policy for every pod.
    let l = load("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: ns}\n");
    assert!(errors(&l).is_empty());
    assert!(l.cluster.policies[0].pod_selector.is_empty() && l.cluster.policies[0].affects_ingress);
}

#[test]
fn egress_rules_are_ignored_with_a_warning_when_policy_types_omit_egress() {
    let l = load(&policy("  podSelector: {}\n  policyTypes: [Ingress]\n  egress:\n    - to:\n        - podSelector: {}\n"));
    assert!(errors(&l).is_empty());
    let p = &l.cluster.policies[0];
    assert!(p.affects_ingress && !p.affects_egress);
    assert!(p.egress.is_empty());
    assert!(with(&l, Severity::Warning)
        .iter()
        .any(|d| d.message.contains("egress rule(s) are ignored") && d.line == 9));
}

#[test]
fn ports_default_to_tcp_and_omitted_lists_mean_everything() {
    let l = load(&policy(
        "  podSelector: {matchLabels: {vm: a}}\n  ingress:\n    - ports:\n        - port: 53\n        - protocol: UDP\n          port: dns\n        - port: 1000\n          endPort: 1010\n    - {}\n",
    ));
    let p = &l.cluster.policies[0];
    let r = &p.ingress[0];
    assert!(r.peers.is_empty(), "no from means every peer");
    assert_eq!(r.ports[0].protocol, Protocol::Tcp);
    assert_eq!(r.ports[0].port, Some(PortSpec::Number(53)));
    assert_eq!(r.ports[1].protocol, Protocol::Udp);
    assert_eq!(r.ports[1].port, Some(PortSpec::Named("dns".into())));
    assert_eq!(
        r.ports[2].port,
        Some(PortSpec::Range {
            start: 1000,
            end: 1010
        })
    );
    assert!(p.ingress[1].ports.is_empty() && p.ingress[1].peers.is_empty());
    assert_eq!(
        p.pod_selector.match_labels.get("vm").map(String::as_str),
        Some("a")
    );
}

#[test]
fn selector_peers_keep_which_selectors_were_given() {
    let l = load(&policy(
        "  podSelector: {}\n  ingress:\n    - from:\n        - namespaceSelector: {matchLabels: {team: x}}\n        - podSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [db]}]}\n          namespaceSelector: {}\n",
    ));
    let peers = &l.cluster.policies[0].ingress[0].peers;
    match &peers[0] {
        Peer::Selector {
            pod_selector: None,
            namespace_selector: Some(ns),
        } => {
            assert_eq!(ns.match_labels.get("team").map(String::as_str), Some("x"))
        }
        other => panic!("{other:?}"),
    }
    match &peers[1] {
        Peer::Selector {
            pod_selector: Some(ps),
            namespace_selector: Some(ns),
        } => {
            assert!(ns.is_empty());
            assert_eq!(ps.match_expressions[0].operator, SelectorOperator::NotIn);
            assert_eq!(ps.match_expressions[0].values, vec!["db".to_string()]);
        }
        other => panic!("{other:?}"),
    }
}
