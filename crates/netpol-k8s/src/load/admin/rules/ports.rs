//! The ports of a rule: v1alpha2 `protocols` (exactly one of `tcp`/`udp`/`sctp` with a
//! `destinationPort`, or `destinationNamedPort`) and v1alpha1 `ports` (`portNumber`,
//! `portRange`, `namedPort`; protocol TCP by default), both into [`AdminPort`]; and the CEL rule
//! that named ports need workload peers.

use netpol_core::{AdminApi, AdminPort, Protocol};

use super::super::wire::{AnpPortWire, PeerWire, PortWire, ProtocolPortWire, ProtocolWire};
use super::values::{at_least_one_property, exactly_one_of, in_range, max_items, min_items};
use super::{ApiRules, PortsIn};
use crate::validate::{self, FPath, Problem, Val};

/// The rule's ports; `None` without `protocols` / `ports` (every port of every protocol).
pub(super) fn convert(
    api: &ApiRules,
    ports: &PortsIn,
    rule: &FPath,
    problems: &mut Vec<Problem>,
) -> Option<Vec<AdminPort>> {
    match ports {
        PortsIn::Protocols(None) | PortsIn::Ports(None) => None,
        PortsIn::Protocols(Some(list)) => {
            let path = rule.f("protocols");
            min_items(&path, list.len(), 1, problems);
            max_items(&path, list.len(), api.max_items, problems);
            let out = list
                .iter()
                .enumerate()
                .filter_map(|(i, p)| protocol(p, &path.i(i), problems))
                .collect();
            Some(out)
        }
        PortsIn::Ports(Some(list)) => {
            let path = rule.f("ports");
            min_items(&path, list.len(), 1, problems);
            max_items(&path, list.len(), api.max_items, problems);
            let out = list
                .iter()
                .enumerate()
                .filter_map(|(i, p)| v1alpha1_port(p, &path.i(i), problems))
                .collect();
            Some(out)
        }
    }
}

/// One `protocols` entry.
fn protocol(p: &ProtocolWire, path: &FPath, problems: &mut Vec<Problem>) -> Option<AdminPort> {
    let present = [
        ("tcp", p.tcp.is_some()),
        ("udp", p.udp.is_some()),
        ("sctp", p.sctp.is_some()),
        ("destinationNamedPort", p.destination_named_port.is_some()),
    ];
    exactly_one_of(path, &present, problems)?;
    let by_protocol = [
        ("tcp", Protocol::Tcp, &p.tcp),
        ("udp", Protocol::Udp, &p.udp),
        ("sctp", Protocol::Sctp, &p.sctp),
    ];
    for (field, protocol, ports) in by_protocol {
        if let Some(ports) = ports {
            let ports = destination_port(ports, &path.f(field), problems)?;
            return Some(AdminPort::Protocol {
                protocol,
                ports: Some(ports),
            });
        }
    }
    p.destination_named_port.clone().map(AdminPort::Named)
}

/// `tcp|udp|sctp: {destinationPort: {number} | {range: {start, end}}}`, MinProperties=1 at
/// both levels.
fn destination_port(
    p: &ProtocolPortWire,
    path: &FPath,
    problems: &mut Vec<Problem>,
) -> Option<(u16, u16)> {
    let Some(port) = &p.destination_port else {
        problems.push(at_least_one_property(path, "destinationPort"));
        return None;
    };
    let path = path.f("destinationPort");
    port_or_range(port, &path, problems)
}

fn port_or_range(p: &PortWire, path: &FPath, problems: &mut Vec<Problem>) -> Option<(u16, u16)> {
    let present = [("number", p.number.is_some()), ("range", p.range.is_some())];
    exactly_one_of(path, &present, problems)?;
    if let Some(n) = p.number {
        let n = port_number(n, &path.f("number"), problems)?;
        return Some((n, n));
    }
    let r = p.range.as_ref()?;
    let rp = path.f("range");
    let start = required_port(r.start, &rp.f("start"), problems);
    let end = required_port(r.end, &rp.f("end"), problems);
    let (start, end) = (start?, end?);
    if start >= end {
        problems.push(validate::invalid(
            rp,
            Val::S("object"),
            "Start port must be less than End port",
        ));
        return None;
    }
    Some((start, end))
}

fn required_port(n: Option<i64>, path: &FPath, problems: &mut Vec<Problem>) -> Option<u16> {
    match n {
        None => {
            problems.push(validate::required(path.clone(), ""));
            None
        }
        Some(n) => port_number(n, path, problems),
    }
}

/// 1-65535.
fn port_number(n: i64, path: &FPath, problems: &mut Vec<Problem>) -> Option<u16> {
    let before = problems.len();
    in_range(path, n, 1, 65535, problems);
    if problems.len() > before {
        return None;
    }
    u16::try_from(n).ok()
}

/// A v1alpha1 `protocol` (default TCP).
fn v1alpha1_protocol(
    p: Option<&str>,
    path: &FPath,
    problems: &mut Vec<Problem>,
) -> Option<Protocol> {
    match p {
        None | Some("TCP") => Some(Protocol::Tcp),
        Some("UDP") => Some(Protocol::Udp),
        Some("SCTP") => Some(Protocol::Sctp),
        Some(other) => {
            problems.push(validate::not_supported(
                path.f("protocol"),
                other,
                &["TCP", "UDP", "SCTP"],
            ));
            None
        }
    }
}

/// One v1alpha1 `ports` entry.
fn v1alpha1_port(p: &AnpPortWire, path: &FPath, problems: &mut Vec<Problem>) -> Option<AdminPort> {
    let present = [
        ("portNumber", p.port_number.is_some()),
        ("portRange", p.port_range.is_some()),
        ("namedPort", p.named_port.is_some()),
    ];
    exactly_one_of(path, &present, problems)?;
    if let Some(n) = &p.port_number {
        let np = path.f("portNumber");
        let protocol = v1alpha1_protocol(n.protocol.as_deref(), &np, problems);
        let port = required_port(n.port, &np.f("port"), problems)?;
        return Some(AdminPort::Protocol {
            protocol: protocol?,
            ports: Some((port, port)),
        });
    }
    if let Some(r) = &p.port_range {
        let rp = path.f("portRange");
        let protocol = v1alpha1_protocol(r.protocol.as_deref(), &rp, problems);
        let start = required_port(r.start, &rp.f("start"), problems);
        let end = required_port(r.end, &rp.f("end"), problems);
        let (start, end) = (start?, end?);
        // The type says "the Start value must be less than End"; the v1alpha1 CRD has no CEL
        // rule for it. An equal pair is one port; a reversed one would match nothing.
        if start > end {
            problems.push(validate::invalid(
                rp,
                Val::S("object"),
                "Start port must be less than End port",
            ));
            return None;
        }
        return Some(AdminPort::Protocol {
            protocol: protocol?,
            ports: Some((start, end)),
        });
    }
    p.named_port.clone().map(AdminPort::Named)
}

/// The egress CEL rule: no named port together with a `networks`, `nodes` or `domainNames`
/// peer (they have no container ports to name).
pub(super) fn named_ports_need_workload_peers(
    api: &ApiRules,
    egress: bool,
    peers: &[PeerWire],
    ports: &PortsIn,
    rule: &FPath,
    problems: &mut Vec<Problem>,
) {
    if !egress {
        return;
    }
    let address_peer = peers
        .iter()
        .any(|p| p.networks.is_some() || p.nodes.is_some() || p.domain_names.is_some());
    let named = match ports {
        PortsIn::Protocols(Some(l)) => l.iter().any(|p| p.destination_named_port.is_some()),
        PortsIn::Ports(Some(l)) => l.iter().any(|p| p.named_port.is_some()),
        _ => false,
    };
    if address_peer && named {
        let message = if api.api == AdminApi::BaselineAdminNetworkPolicy {
            "networks/nodes peer cannot be set with namedPorts since there are no namedPorts for networks/nodes"
        } else {
            "networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames"
        };
        problems.push(validate::invalid(rule.clone(), Val::S("object"), message));
    }
}
