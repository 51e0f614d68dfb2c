//! ClusterNetworkPolicy, AdminNetworkPolicy and BaselineAdminNetworkPolicy: conversion into the
//! model of each kind, lists, the domainNames warning, and the tiers example (decoding details:
//! admin_decoding.rs).

mod common;

use std::path::PathBuf;

use common::*;
use netpol_core::{
    AdminAction, AdminApi, AdminPeer, AdminPort, AdminSubject, AdminTier, LabelSelector, Protocol,
};
use netpol_k8s::{load_paths, LoadOptions, Severity};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A selector of `key: value`.
fn labels(key: &str, value: &str) -> LabelSelector {
    LabelSelector {
        match_labels: [(key.to_string(), value.to_string())].into(),
        match_expressions: vec![],
    }
}

/// An upstream-style v1alpha2 Admin policy (after the conformance suite's gryffindor/slytherin
/// houses): every peer kind, both port forms, all three actions.
const CNP_ADMIN: &str = "apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata:
  name: houses
spec:
  tier: Admin
  priority: 75
  subject:
    pods:
      namespaceSelector:
        matchLabels:
          conformance-house: gryffindor
      podSelector:
        matchLabels:
          conformance-house: gryffindor
  ingress:
  - name: deny-slytherin
    action: Deny
    from:
    - namespaces:
        matchLabels:
          conformance-house: slytherin
    protocols:
    - tcp:
        destinationPort:
          number: 80
    - udp:
        destinationPort:
          range:
            start: 5353
            end: 5355
    - destinationNamedPort: web
  egress:
  - name: accept-nodes
    action: Accept
    to:
    - nodes:
        matchLabels:
          kubernetes.io/os: linux
    protocols:
    - sctp:
        destinationPort:
          number: 9003
  - name: pass-internet
    action: Pass
    to:
    - networks:
      - 0.0.0.0/0
      - ::/0
";

#[test]
fn a_cluster_network_policy_converts_every_peer_and_port_kind_in_written_order() {
    let l = load(CNP_ADMIN);
    assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
    let [p] = l.cluster.admin_policies.as_slice() else {
        panic!("one policy expected");
    };
    assert_eq!(
        (p.api, p.tier, p.priority),
        (AdminApi::ClusterNetworkPolicy, AdminTier::Admin, 75)
    );
    assert_eq!(p.key(), "cnp/houses");
    assert_eq!(p.origin.as_ref().map(|o| o.line), Some(1));
    assert_eq!(
        p.subject,
        AdminSubject::Pods {
            namespace_selector: labels("conformance-house", "gryffindor"),
            pod_selector: labels("conformance-house", "gryffindor"),
        }
    );
    let [deny] = p.ingress.as_slice() else {
        panic!("one ingress rule");
    };
    assert_eq!(deny.name.as_deref(), Some("deny-slytherin"));
    assert_eq!(deny.action, AdminAction::Deny);
    assert_eq!(
        deny.origin.as_ref().map(|o| o.line),
        Some(17),
        "the rule's own line"
    );
    assert_eq!(
        deny.peers,
        [AdminPeer::Namespaces(labels(
            "conformance-house",
            "slytherin"
        ))]
    );
    assert_eq!(
        deny.ports,
        Some(vec![
            AdminPort::Protocol {
                protocol: Protocol::Tcp,
                ports: Some((80, 80))
            },
            AdminPort::Protocol {
                protocol: Protocol::Udp,
                ports: Some((5353, 5355))
            },
            AdminPort::Named("web".into()),
        ])
    );
    let actions: Vec<AdminAction> = p.egress.iter().map(|r| r.action).collect();
    assert_eq!(actions, [AdminAction::Accept, AdminAction::Pass]);
    assert_eq!(
        p.egress[0].peers,
        [AdminPeer::Nodes(labels("kubernetes.io/os", "linux"))]
    );
    assert_eq!(
        p.egress[0].ports,
        Some(vec![AdminPort::Protocol {
            protocol: Protocol::Sctp,
            ports: Some((9003, 9003))
        }])
    );
    assert_eq!(
        p.egress[1].peers,
        [AdminPeer::Networks(vec![
            "0.0.0.0/0".parse().unwrap(),
            "::/0".parse().unwrap()
        ])]
    );
    assert_eq!(
        p.egress[1].ports, None,
        "no protocols: every port of every protocol"
    );
}

const ANP: &str = "apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata:
  name: cluster-wide-deny-example
spec:
  priority: 10
  subject:
    namespaces:
      matchLabels:
        kubernetes.io/metadata.name: sensitive-ns
  ingress:
  - action: Deny
    from:
    - namespaces: {}
  egress:
  - name: allow-dns
    action: Allow
    to:
    - pods:
        namespaceSelector:
          matchLabels:
            kubernetes.io/metadata.name: kube-system
        podSelector:
          matchLabels:
            app: dns
    ports:
    - portNumber:
        port: 53
    - portNumber:
        protocol: UDP
        port: 53
    - portRange:
        start: 8000
        end: 8080
    - portRange:
        protocol: SCTP
        start: 9000
        end: 9000
    - namedPort: dns-tcp
  - action: Allow
    to:
    - domainNames:
      - '*.kubernetes.io'
";

#[test]
fn an_admin_network_policy_is_the_admin_tier_with_allow_as_accept_and_tcp_by_default() {
    let l = load(ANP);
    assert!(!l.has_errors(), "{:#?}", l.diagnostics);
    let [p] = l.cluster.admin_policies.as_slice() else {
        panic!("one policy expected");
    };
    assert_eq!(
        (p.api, p.tier, p.priority),
        (AdminApi::AdminNetworkPolicy, AdminTier::Admin, 10)
    );
    assert_eq!(p.key(), "anp/cluster-wide-deny-example");
    assert_eq!(p.ingress[0].name, None);
    assert_eq!(
        p.ingress[0].peers,
        [AdminPeer::Namespaces(LabelSelector::everything())]
    );
    assert_eq!(
        p.egress[0].action,
        AdminAction::Accept,
        "Allow means Accept"
    );
    assert_eq!(
        p.egress[0].ports,
        Some(vec![
            AdminPort::Protocol {
                protocol: Protocol::Tcp,
                ports: Some((53, 53))
            },
            AdminPort::Protocol {
                protocol: Protocol::Udp,
                ports: Some((53, 53))
            },
            AdminPort::Protocol {
                protocol: Protocol::Tcp,
                ports: Some((8000, 8080))
            },
            AdminPort::Protocol {
                protocol: Protocol::Sctp,
                ports: Some((9000, 9000))
            },
            AdminPort::Named("dns-tcp".into()),
        ])
    );
    assert_eq!(
        p.egress[1].peers,
        [AdminPeer::DomainNames(vec!["*.kubernetes.io".into()])]
    );
}

const BANP: &str = "apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata:
  name: default
spec:
  subject:
    namespaces: {}
  ingress:
  - name: default-deny
    action: Deny
    from:
    - namespaces: {}
  egress:
  - action: Allow
    to:
    - networks: [192.0.2.0/24]
    ports:
    - portRange:
        protocol: UDP
        start: 1000
        end: 2000
";

#[test]
fn the_baseline_admin_network_policy_is_the_baseline_tier_after_every_baseline_cnp() {
    let l = load(BANP);
    assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
    let [p] = l.cluster.admin_policies.as_slice() else {
        panic!("one policy expected");
    };
    assert_eq!(
        (p.api, p.tier, p.priority),
        (AdminApi::BaselineAdminNetworkPolicy, AdminTier::Baseline, 0)
    );
    assert_eq!(p.key(), "banp/default");
    assert_eq!(p.egress[0].action, AdminAction::Accept);
    assert_eq!(
        p.egress[0].ports,
        Some(vec![AdminPort::Protocol {
            protocol: Protocol::Udp,
            ports: Some((1000, 2000))
        }])
    );
    let both = load(&format!(
        "{BANP}---\n{}",
        CNP_ADMIN
            .replace("tier: Admin", "tier: Baseline")
            .replace("priority: 75", "priority: 1000")
    ));
    let order: Vec<String> = netpol_core::admin_order(&both.cluster.admin_policies)
        .into_iter()
        .map(|i| both.cluster.admin_policies[i].key())
        .collect();
    assert_eq!(
        order,
        ["cnp/houses", "banp/default"],
        "the BANP comes after priority 1000"
    );
}

#[test]
fn typed_lists_and_v1_lists_of_admin_policies_load_every_item() {
    let typed = "apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicyList
items:
- metadata: {name: a}
  spec: {tier: Admin, priority: 1, subject: {namespaces: {}}}
- metadata: {name: b}
  spec: {tier: Baseline, priority: 2, subject: {namespaces: {}}}
";
    let l = load(typed);
    assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
    assert_eq!(l.cluster.admin_policies.len(), 2);
    let v1 = "apiVersion: v1
kind: List
items:
- apiVersion: policy.networking.k8s.io/v1alpha1
  kind: AdminNetworkPolicy
  metadata: {name: a}
  spec: {priority: 1, subject: {namespaces: {}}}
- apiVersion: policy.networking.k8s.io/v1alpha1
  kind: BaselineAdminNetworkPolicy
  metadata: {name: default}
  spec: {subject: {namespaces: {}}}
";
    let l = load(v1);
    assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
    let keys: Vec<String> = l.cluster.admin_policies.iter().map(|p| p.key()).collect();
    assert_eq!(keys, ["anp/a", "banp/default"]);
}

#[test]
fn a_domain_names_rule_loads_with_the_warning_that_the_kernel_does_not_enforce_it() {
    let l = load(
        "apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: p}
spec:
  tier: Baseline
  priority: 5
  subject: {namespaces: {}}
  egress:
  - action: Accept
    to:
    - domainNames: [kubernetes.io, '*.kubernetes.io']
",
    );
    assert!(!l.has_errors(), "{:#?}", l.diagnostics);
    let w = with(&l, Severity::Warning);
    assert_eq!(w.len(), 1);
    assert_eq!(
        w[0].to_string(),
        "t.yaml:11:20: warning: ClusterNetworkPolicy p: domainNames are not enforced by the kernel (netpol matches them only with --resolve); traffic falls to later rules and tiers at spec.egress[0].to[0].domainNames"
    );
}

#[test]
fn the_tiers_example_loads_without_errors_or_warnings() {
    let l = load_paths(&[examples().join("tiers")], &LoadOptions::default());
    let noisy: Vec<String> = l
        .diagnostics
        .iter()
        .filter(|d| d.severity != Severity::Note)
        .map(|d| d.to_string())
        .collect();
    assert!(noisy.is_empty(), "{noisy:#?}");
    let mut keys: Vec<String> = l.cluster.admin_policies.iter().map(|p| p.key()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "anp/no-smtp",
            "banp/default",
            "cnp/deny-cross-project",
            "cnp/dns-host-for-every-vm",
            "cnp/vms-reach-dns"
        ]
    );
    let dns = l
        .cluster
        .admin_policies
        .iter()
        .find(|p| p.name == "vms-reach-dns")
        .unwrap();
    assert_eq!(dns.tier, AdminTier::Admin);
    assert_eq!(dns.egress[0].action, AdminAction::Accept);
    let baseline = l
        .cluster
        .admin_policies
        .iter()
        .find(|p| p.name == "deny-cross-project")
        .unwrap();
    assert_eq!(baseline.tier, AdminTier::Baseline);
    assert!(
        l.cluster.workloads.iter().any(|w| w.name == "vm-a"),
        "the user's page objects too"
    );
    assert_eq!(l.cluster.policies.len(), 6, "the page's NetworkPolicies");
}
