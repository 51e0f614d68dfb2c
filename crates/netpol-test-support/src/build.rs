//! Builders of the `netpol-core` model from literals, so a test states a cluster in a few lines.
//!
//! Workloads come out as the loader would leave them for a running object without a node
//! (`phase: Running`, `node: None`); [`WorkloadExt::on`] places one on a node. Policies come out
//! without rules: tests push the rules they are about.

use std::net::IpAddr;

use netpol_core::{
    Cluster, IpBlock, LabelSelector, Labels, NamedPort, Namespace, Peer, Policy, PolicyPort,
    PortSpec, Protocol, Rule, Workload, WorkloadKind, NAMESPACE_NAME_LABEL,
};

/// Labels from `(key, value)` pairs.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A selector matching exactly these labels (no expressions).
pub fn sel(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        match_expressions: vec![],
    }
}

/// An address literal.
pub fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|e| panic!("test address {text:?}: {e}"))
}

/// A declared namespace with these labels (the name label is added as the API server does).
pub fn namespace(name: &str, l: &[(&str, &str)]) -> Namespace {
    Namespace::new(name, labels(l), false)
}

/// Declared namespaces with no labels but their name label.
pub fn namespaces(names: &[&str]) -> Vec<Namespace> {
    names.iter().map(|n| namespace(n, &[])).collect()
}

/// A running workload of any kind, on no node, without named ports.
pub fn workload(
    kind: WorkloadKind,
    ns: &str,
    name: &str,
    l: &[(&str, &str)],
    addrs: &[&str],
) -> Workload {
    Workload {
        kind,
        namespace: ns.into(),
        name: name.into(),
        labels: labels(l),
        addresses: addrs.iter().map(|a| ip(a)).collect(),
        node: None,
        phase: Some("Running".into()),
        named_ports: vec![],
        origin: None,
        instances: Default::default(),
    }
}

/// A running Deckhouse VirtualMachine on no node.
pub fn vm(ns: &str, name: &str, l: &[(&str, &str)], addrs: &[&str]) -> Workload {
    workload(WorkloadKind::VirtualMachine, ns, name, l, addrs)
}

/// A running Pod on no node, with named container ports `(name, protocol, port)`.
pub fn pod(
    ns: &str,
    name: &str,
    l: &[(&str, &str)],
    addrs: &[&str],
    named: &[(&str, Protocol, u16)],
) -> Workload {
    let mut w = workload(WorkloadKind::Pod, ns, name, l, addrs);
    w.named_ports = named
        .iter()
        .map(|(n, protocol, port)| NamedPort {
            name: n.to_string(),
            protocol: *protocol,
            port: *port,
        })
        .collect();
    w
}

/// What a built workload can still be told.
pub trait WorkloadExt {
    /// The same workload, running on `node`.
    fn on(self, node: &str) -> Workload;
}

impl WorkloadExt for Workload {
    fn on(mut self, node: &str) -> Workload {
        self.node = Some(node.into());
        self
    }
}

/// A policy with no rules that affects the given directions.
pub fn policy(
    ns: &str,
    name: &str,
    selector: LabelSelector,
    ingress: bool,
    egress: bool,
) -> Policy {
    Policy {
        namespace: ns.into(),
        name: name.into(),
        pod_selector: selector,
        affects_ingress: ingress,
        affects_egress: egress,
        ingress: vec![],
        egress: vec![],
        origin: None,
        rule_lines: Default::default(),
    }
}

/// A rule from its peers and ports.
pub fn rule(peers: Vec<Peer>, ports: Vec<PolicyPort>) -> Rule {
    Rule { peers, ports }
}

/// A peer of the workloads with these labels in the policy's own namespace.
pub fn pods_in_own_ns(s: &[(&str, &str)]) -> Peer {
    Peer::Selector {
        pod_selector: Some(sel(s)),
        namespace_selector: None,
    }
}

/// A peer of every workload of the namespace called `name` (selected by its name label).
pub fn namespace_named(name: &str) -> Peer {
    Peer::Selector {
        pod_selector: None,
        namespace_selector: Some(sel(&[(NAMESPACE_NAME_LABEL, name)])),
    }
}

/// An ipBlock peer: `cidr` minus the `except` CIDRs.
pub fn block(cidr: &str, except: &[&str]) -> Peer {
    let net = |text: &str| {
        text.parse()
            .unwrap_or_else(|e| panic!("test CIDR {text:?}: {e}"))
    };
    Peer::IpBlock(IpBlock {
        cidr: net(cidr),
        except: except.iter().map(|e| net(e)).collect(),
    })
}

/// A policy port: a protocol and an optional number, range or name.
pub fn port(protocol: Protocol, spec: Option<PortSpec>) -> PolicyPort {
    PolicyPort {
        protocol,
        port: spec,
    }
}

/// One TCP port by number.
pub fn tcp(n: u16) -> PolicyPort {
    port(Protocol::Tcp, Some(PortSpec::Number(n)))
}

/// A cluster from its parts, with the namespaces the workloads and policies name but `namespaces`
/// leaves out added as implicit ones (as loading does).
pub fn cluster(
    namespaces: Vec<Namespace>,
    workloads: Vec<Workload>,
    policies: Vec<Policy>,
) -> Cluster {
    let mut c = Cluster {
        namespaces,
        workloads,
        policies,
        ..Cluster::default()
    };
    c.add_missing_namespaces();
    c
}
