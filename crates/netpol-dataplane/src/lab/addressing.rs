//! The lab's address plan: the underlay numbering of nodes and external hosts, the workload
//! gateway, and the checks every address of a spec must pass before anything is created.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{lab_error, LabSpec};
use crate::error::DataplaneError;

/// The largest node count the underlay numbering supports.
pub(super) const MAX_NODES: usize = 250;
/// The largest external host count the underlay numbering supports.
pub(super) const MAX_EXTERNALS: usize = 30_000;
/// The gateway workloads use; answered by proxy ARP on the node side.
pub(super) const WORKLOAD_GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The link-local address every node-side workload veth carries.
pub(super) const WORKLOAD_GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
pub(super) const UNDERLAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 0, 0);
pub(super) const UNDERLAY_V4_LEN: u8 = 16;
pub(super) const UNDERLAY_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x6e70, 0, 0, 0, 0, 0, 0);
pub(super) const UNDERLAY_V6_LEN: u8 = 64;

pub(super) fn node_underlay(index: usize) -> (Ipv4Addr, Ipv6Addr) {
    let offset = index as u32 + 2; // .0.0 is the network, .0.1 is left unused
    (
        Ipv4Addr::from(u32::from(UNDERLAY_V4) + offset),
        Ipv6Addr::from(u128::from(UNDERLAY_V6) + u128::from(offset)),
    )
}

pub(super) fn external_underlay(index: usize) -> (Ipv4Addr, Ipv6Addr) {
    let offset = index as u32 + 1;
    (
        Ipv4Addr::from(u32::from(Ipv4Addr::new(169, 254, 128, 0)) + offset),
        Ipv6Addr::from(u128::from(UNDERLAY_V6) + (1u128 << 16) + u128::from(offset)),
    )
}

pub(super) fn in_underlay(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => u32::from(a) >> (32 - UNDERLAY_V4_LEN) == u32::from(UNDERLAY_V4) >> 16,
        IpAddr::V6(a) => u128::from(a) >> 64 == u128::from(UNDERLAY_V6) >> 64,
    }
}

pub(super) fn host_prefix(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

pub(super) fn first_of_family(addresses: &[IpAddr], v6: bool) -> Option<IpAddr> {
    addresses.iter().copied().find(|a| a.is_ipv6() == v6)
}

pub(super) fn validate(spec: &LabSpec) -> Result<(), DataplaneError> {
    let mut node_names = HashSet::new();
    for node in &spec.nodes {
        if !node_names.insert(node.as_str()) {
            return Err(lab_error(format!("node {node:?} is listed twice")));
        }
    }
    if spec.nodes.len() > MAX_NODES {
        return Err(lab_error(format!(
            "at most {MAX_NODES} nodes are supported"
        )));
    }
    let externals = spec.hosts.iter().filter(|h| h.node.is_none()).count();
    if externals > MAX_EXTERNALS {
        return Err(lab_error(format!(
            "at most {MAX_EXTERNALS} external hosts are supported"
        )));
    }
    let mut host_names = HashSet::new();
    let mut owners: HashMap<IpAddr, &str> = HashMap::new();
    for host in &spec.hosts {
        if !host_names.insert(host.name.as_str()) {
            return Err(lab_error(format!("host {:?} is listed twice", host.name)));
        }
        if let Some(node) = &host.node {
            if !node_names.contains(node.as_str()) {
                return Err(lab_error(format!(
                    "host {:?} runs on unknown node {node:?}",
                    host.name
                )));
            }
        }
        if host.addresses.is_empty() {
            return Err(lab_error(format!("host {:?} has no addresses", host.name)));
        }
        for &addr in &host.addresses {
            check_host_address(&host.name, addr)?;
            if let Some(other) = owners.insert(addr, &host.name) {
                return Err(lab_error(format!(
                    "{addr} belongs to both {other:?} and {:?}",
                    host.name
                )));
            }
        }
    }
    Ok(())
}

/// Whether `addr` can be an address of the host `name`: a unicast address outside the underlay.
pub(super) fn check_host_address(name: &str, addr: IpAddr) -> Result<(), DataplaneError> {
    let usable = match addr {
        IpAddr::V4(a) => {
            !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast())
        }
        IpAddr::V6(a) => {
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || a.is_unicast_link_local())
        }
    };
    if !usable {
        return Err(lab_error(format!(
            "host {name:?}: {addr} cannot be a host address"
        )));
    }
    if in_underlay(addr) {
        return Err(lab_error(format!(
            "host {name:?}: {addr} collides with the lab underlay \
             ({UNDERLAY_V4}/{UNDERLAY_V4_LEN}, {UNDERLAY_V6}/{UNDERLAY_V6_LEN})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::LabHost;

    fn host(name: &str, node: Option<&str>, addrs: &[&str]) -> LabHost {
        LabHost {
            name: name.into(),
            node: node.map(Into::into),
            addresses: addrs.iter().filter_map(|a| a.parse().ok()).collect(),
            ..LabHost::default()
        }
    }

    #[test]
    fn underlay_addresses_never_include_the_workload_gateway() {
        for i in 0..MAX_NODES {
            assert_ne!(node_underlay(i).0, WORKLOAD_GATEWAY_V4);
        }
        for e in 0..MAX_EXTERNALS {
            assert_ne!(external_underlay(e).0, WORKLOAD_GATEWAY_V4);
        }
        assert!(in_underlay(IpAddr::V4(node_underlay(MAX_NODES - 1).0)));
        assert!(in_underlay(IpAddr::V6(
            external_underlay(MAX_EXTERNALS - 1).1
        )));
        assert_ne!(node_underlay(MAX_NODES - 1).0, external_underlay(0).0);
    }

    #[test]
    fn a_spec_with_duplicate_addresses_is_rejected() {
        let spec = LabSpec {
            nodes: vec!["n".into()],
            hosts: vec![
                host("a", Some("n"), &["10.0.0.1"]),
                host("b", Some("n"), &["10.0.0.1"]),
            ],
        };
        assert!(validate(&spec).is_err());
    }

    #[test]
    fn a_host_on_an_unknown_node_is_rejected() {
        let spec = LabSpec {
            nodes: vec!["n".into()],
            hosts: vec![host("a", Some("m"), &["10.0.0.1"])],
        };
        assert!(validate(&spec).is_err());
    }

    #[test]
    fn addresses_inside_the_underlay_are_rejected() {
        let spec = LabSpec {
            nodes: vec![],
            hosts: vec![host("a", None, &["169.254.3.3"])],
        };
        assert!(validate(&spec).is_err());
        let ok = LabSpec {
            nodes: vec!["n".into()],
            hosts: vec![host("a", Some("n"), &["10.66.20.70", "2001:db8::70"])],
        };
        assert!(validate(&ok).is_ok());
    }
}
