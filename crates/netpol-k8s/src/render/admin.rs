//! ClusterNetworkPolicies, AdminNetworkPolicies and BaselineAdminNetworkPolicies as manifests of
//! their own API version. Two things of the model have no manifest of their own: every port of a
//! protocol (`AdminPort::Protocol` without ports; neither API can say it, `tcp: {}` is invalid) is
//! written as the range 1-65535, the same traffic; and a peer of unknown kind is written as a peer
//! of a field netpol does not know, which loads back as one.

use std::fmt::Write;

use netpol_core::{
    AdminAction, AdminApi, AdminPeer, AdminPolicy, AdminPort, AdminRule, AdminSubject,
    LabelSelector,
};

use super::{q, selector};

/// One admin policy, as the API it was read from.
pub(super) fn policy(out: &mut String, p: &AdminPolicy) {
    let api_version = match p.api {
        AdminApi::ClusterNetworkPolicy => "policy.networking.k8s.io/v1alpha2",
        _ => "policy.networking.k8s.io/v1alpha1",
    };
    let _ = writeln!(
        out,
        "---\napiVersion: {api_version}\nkind: {}\nmetadata:\n  name: {}\nspec:",
        p.api.kind(),
        q(&p.name)
    );
    if p.api == AdminApi::ClusterNetworkPolicy {
        let _ = writeln!(out, "  tier: {}", p.tier);
    }
    if p.api != AdminApi::BaselineAdminNetworkPolicy {
        let _ = writeln!(out, "  priority: {}", p.priority);
    }
    out.push_str("  subject:\n");
    match &p.subject {
        AdminSubject::Namespaces(s) => selector(out, "    ", "namespaces", s),
        AdminSubject::Pods {
            namespace_selector,
            pod_selector,
        } => pods(out, "    ", namespace_selector, pod_selector),
    }
    rules(out, p.api, "ingress", "from", &p.ingress);
    rules(out, p.api, "egress", "to", &p.egress);
}

fn pods(out: &mut String, indent: &str, ns: &LabelSelector, pods: &LabelSelector) {
    let _ = writeln!(out, "{indent}pods:");
    let inner = format!("{indent}  ");
    selector(out, &inner, "namespaceSelector", ns);
    selector(out, &inner, "podSelector", pods);
}

/// `block` (lines indented by at least 6 spaces) as an item of a list at 4 spaces.
fn item(out: &mut String, block: &str) {
    out.push_str("    - ");
    out.push_str(block.get(6..).unwrap_or(""));
}

fn rules(out: &mut String, api: AdminApi, field: &str, peers_field: &str, rules: &[AdminRule]) {
    if rules.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {field}:");
    for r in rules {
        let action = match (api, r.action) {
            (AdminApi::ClusterNetworkPolicy, a) => a.as_str(),
            (_, AdminAction::Accept) => "Allow",
            (_, a) => a.as_str(),
        };
        let _ = writeln!(out, "  - action: {action}");
        if let Some(name) = &r.name {
            let _ = writeln!(out, "    name: {}", q(name));
        }
        let _ = writeln!(out, "    {peers_field}:");
        for p in &r.peers {
            let mut block = String::new();
            peer(&mut block, p);
            item(out, &block);
        }
        if let Some(ports) = &r.ports {
            let field = if api == AdminApi::ClusterNetworkPolicy {
                "protocols"
            } else {
                "ports"
            };
            let _ = writeln!(out, "    {field}:");
            for port in ports {
                let mut block = String::new();
                if api == AdminApi::ClusterNetworkPolicy {
                    protocol(&mut block, port);
                } else {
                    v1alpha1_port(&mut block, port);
                }
                item(out, &block);
            }
        }
    }
}

/// A peer, indented by 6.
fn peer(out: &mut String, p: &AdminPeer) {
    const I: &str = "      ";
    match p {
        AdminPeer::Namespaces(s) => selector(out, I, "namespaces", s),
        AdminPeer::Pods {
            namespace_selector,
            pod_selector,
        } => pods(out, I, namespace_selector, pod_selector),
        AdminPeer::Nodes(s) => selector(out, I, "nodes", s),
        AdminPeer::Networks(nets) => {
            let _ = writeln!(out, "{I}networks:");
            for n in nets {
                let _ = writeln!(out, "{I}  - {}", q(&n.to_string()));
            }
        }
        AdminPeer::DomainNames(names) => {
            let _ = writeln!(out, "{I}domainNames:");
            for n in names {
                let _ = writeln!(out, "{I}  - {}", q(n));
            }
        }
        AdminPeer::Unknown => {
            let _ = writeln!(out, "{I}peerOfANewerVersion: {{}}");
        }
    }
}

/// The inclusive range of a port entry (every port: 1-65535).
fn range(ports: Option<(u16, u16)>) -> (u16, u16) {
    ports.unwrap_or((1, 65535))
}

/// A v1alpha2 `protocols` entry, indented by 6.
fn protocol(out: &mut String, p: &AdminPort) {
    const I: &str = "      ";
    match p {
        AdminPort::Named(name) => {
            let _ = writeln!(out, "{I}destinationNamedPort: {}", q(name));
        }
        AdminPort::Protocol { protocol, ports } => {
            let field = protocol.to_string().to_ascii_lowercase();
            let _ = writeln!(out, "{I}{field}:\n{I}  destinationPort:");
            match range(*ports) {
                (a, b) if a == b => {
                    let _ = writeln!(out, "{I}    number: {a}");
                }
                (a, b) => {
                    let _ = writeln!(out, "{I}    range:\n{I}      start: {a}\n{I}      end: {b}");
                }
            }
        }
    }
}

/// A v1alpha1 `ports` entry, indented by 6.
fn v1alpha1_port(out: &mut String, p: &AdminPort) {
    const I: &str = "      ";
    match p {
        AdminPort::Named(name) => {
            let _ = writeln!(out, "{I}namedPort: {}", q(name));
        }
        AdminPort::Protocol { protocol, ports } => match range(*ports) {
            (a, b) if a == b => {
                let _ = writeln!(
                    out,
                    "{I}portNumber:\n{I}  protocol: {protocol}\n{I}  port: {a}"
                );
            }
            (a, b) => {
                let _ = writeln!(
                    out,
                    "{I}portRange:\n{I}  protocol: {protocol}\n{I}  start: {a}\n{I}  end: {b}"
                );
            }
        },
    }
}
