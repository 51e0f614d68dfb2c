//! Builders of the admin tiers' model (ClusterNetworkPolicy, AdminNetworkPolicy,
//! BaselineAdminNetworkPolicy), of Nodes for `nodes` peers, and a short way to ask the oracle
//! about a flow between named ends, so a tier test states its policies and probes in a few lines.
//!
//! Policies come out without rules, as validation would leave them: tests add the rules they are
//! about with [`AdminPolicyExt`]. Rules come out without `protocols` (every port of every
//! protocol) and without a name; [`AdminRuleExt`] adds them.

use std::net::IpAddr;

use netpol_core::{
    evaluate, AdminAction, AdminApi, AdminPeer, AdminPolicy, AdminPort, AdminRule, AdminSubject,
    AdminTier, Cluster, EvalOptions, LabelSelector, Node, Protocol, Verdict, NAMESPACE_NAME_LABEL,
};

use crate::build::{ip, labels, sel};
use netpol_core::Endpoint;

/// A v1alpha2 ClusterNetworkPolicy in `tier` with no rules.
pub fn cnp(tier: AdminTier, priority: u32, name: &str, subject: AdminSubject) -> AdminPolicy {
    AdminPolicy {
        api: AdminApi::ClusterNetworkPolicy,
        name: name.into(),
        tier,
        priority,
        subject,
        ingress: vec![],
        egress: vec![],
        origin: None,
    }
}

/// A v1alpha1 AdminNetworkPolicy (the Admin tier) with no rules.
pub fn anp(priority: u32, name: &str, subject: AdminSubject) -> AdminPolicy {
    AdminPolicy {
        api: AdminApi::AdminNetworkPolicy,
        ..cnp(AdminTier::Admin, priority, name, subject)
    }
}

/// The v1alpha1 BaselineAdminNetworkPolicy (always named `default`, no priority of its own) with
/// no rules.
pub fn banp(subject: AdminSubject) -> AdminPolicy {
    AdminPolicy {
        api: AdminApi::BaselineAdminNetworkPolicy,
        ..cnp(AdminTier::Baseline, 0, "default", subject)
    }
}

/// `subject: {namespaces: <selector>}`.
pub fn subject_namespaces(selector: LabelSelector) -> AdminSubject {
    AdminSubject::Namespaces(selector)
}

/// `subject: {pods: {namespaceSelector, podSelector}}`.
pub fn subject_pods(namespaces: LabelSelector, pods: LabelSelector) -> AdminSubject {
    AdminSubject::Pods {
        namespace_selector: namespaces,
        pod_selector: pods,
    }
}

/// A selector of the namespace called `name` by its `kubernetes.io/metadata.name` label.
pub fn ns_name(name: &str) -> LabelSelector {
    sel(&[(NAMESPACE_NAME_LABEL, name)])
}

/// A `namespaces` peer.
pub fn peer_namespaces(selector: LabelSelector) -> AdminPeer {
    AdminPeer::Namespaces(selector)
}

/// A `pods` peer: namespace selector AND pod selector.
pub fn peer_pods(namespaces: LabelSelector, pods: LabelSelector) -> AdminPeer {
    AdminPeer::Pods {
        namespace_selector: namespaces,
        pod_selector: pods,
    }
}

/// A `networks` peer from CIDR literals.
pub fn peer_networks(cidrs: &[&str]) -> AdminPeer {
    AdminPeer::Networks(
        cidrs
            .iter()
            .map(|c| c.parse().unwrap_or_else(|e| panic!("test CIDR {c:?}: {e}")))
            .collect(),
    )
}

/// A `nodes` peer.
pub fn peer_nodes(selector: LabelSelector) -> AdminPeer {
    AdminPeer::Nodes(selector)
}

/// A `domainNames` peer.
pub fn peer_domains(names: &[&str]) -> AdminPeer {
    AdminPeer::DomainNames(names.iter().map(|n| n.to_string()).collect())
}

/// A rule of `action` to or from `peers`, unnamed, on every port of every protocol.
pub fn admin_rule(action: AdminAction, peers: Vec<AdminPeer>) -> AdminRule {
    AdminRule {
        name: None,
        action,
        peers,
        ports: None,
        origin: None,
    }
}

/// `Accept` to or from `peers`.
pub fn accept(peers: Vec<AdminPeer>) -> AdminRule {
    admin_rule(AdminAction::Accept, peers)
}

/// `Deny` to or from `peers`.
pub fn deny(peers: Vec<AdminPeer>) -> AdminRule {
    admin_rule(AdminAction::Deny, peers)
}

/// `Pass` to or from `peers`.
pub fn pass(peers: Vec<AdminPeer>) -> AdminRule {
    admin_rule(AdminAction::Pass, peers)
}

/// `tcp|udp|sctp: {destinationPort: {number: n}}`.
pub fn proto_port(protocol: Protocol, n: u16) -> AdminPort {
    AdminPort::Protocol {
        protocol,
        ports: Some((n, n)),
    }
}

/// `tcp|udp|sctp: {destinationPort: {range: {start, end}}}` (inclusive).
pub fn proto_range(protocol: Protocol, start: u16, end: u16) -> AdminPort {
    AdminPort::Protocol {
        protocol,
        ports: Some((start, end)),
    }
}

/// `tcp|udp|sctp: {}` without `destinationPort`: every port of the protocol.
pub fn proto_any(protocol: Protocol) -> AdminPort {
    AdminPort::Protocol {
        protocol,
        ports: None,
    }
}

/// `destinationNamedPort: name`.
pub fn named_port(name: &str) -> AdminPort {
    AdminPort::Named(name.into())
}

/// What a built admin rule can still be told.
pub trait AdminRuleExt {
    /// The same rule with a `name`.
    fn named(self, name: &str) -> AdminRule;
    /// The same rule with these `protocols` entries.
    fn on(self, ports: Vec<AdminPort>) -> AdminRule;
}

impl AdminRuleExt for AdminRule {
    fn named(mut self, name: &str) -> AdminRule {
        self.name = Some(name.into());
        self
    }

    fn on(mut self, ports: Vec<AdminPort>) -> AdminRule {
        self.ports = Some(ports);
        self
    }
}

/// What a built admin policy can still be told.
pub trait AdminPolicyExt {
    /// The same policy with these ingress rules (in written order).
    fn with_ingress(self, rules: Vec<AdminRule>) -> AdminPolicy;
    /// The same policy with these egress rules (in written order).
    fn with_egress(self, rules: Vec<AdminRule>) -> AdminPolicy;
}

impl AdminPolicyExt for AdminPolicy {
    fn with_ingress(mut self, rules: Vec<AdminRule>) -> AdminPolicy {
        self.ingress = rules;
        self
    }

    fn with_egress(mut self, rules: Vec<AdminRule>) -> AdminPolicy {
        self.egress = rules;
        self
    }
}

/// A Node object with these labels and addresses.
pub fn node(name: &str, l: &[(&str, &str)], addrs: &[&str]) -> Node {
    Node {
        name: name.into(),
        labels: labels(l),
        addresses: addrs.iter().map(|a| ip(a)).collect(),
        ..Node::default()
    }
}

/// The end of a flow called `key`: an address literal is an external end, anything else the
/// workload whose `namespace/name` it is.
pub fn end_named(c: &Cluster, key: &str) -> Endpoint {
    match key.parse::<IpAddr>() {
        Ok(a) => Endpoint::External(a),
        Err(_) => Endpoint::Workload(
            c.workloads
                .iter()
                .position(|w| w.key() == key)
                .unwrap_or_else(|| panic!("no workload {key}")),
        ),
    }
}

/// The oracle's verdict on `src -> dst` (each a `namespace/name` or an address) with the default
/// options.
pub fn oracle_verdict(c: &Cluster, src: &str, dst: &str, protocol: Protocol, port: u16) -> Verdict {
    evaluate(
        c,
        EvalOptions::default(),
        &end_named(c, src),
        &end_named(c, dst),
        protocol,
        port,
    )
}

/// Whether the oracle allows `src -> dst`, see [`oracle_verdict`].
pub fn oracle_allows(c: &Cluster, src: &str, dst: &str, protocol: Protocol, port: u16) -> bool {
    oracle_verdict(c, src, dst, protocol, port).allowed
}
