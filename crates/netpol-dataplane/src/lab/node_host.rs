//! A node as a host of its own, and kube-proxy-like Service addresses for hairpin.
//!
//! * **Node hosts** ([`Lab::add_node_host`]): the node's addresses go on the loopback of its
//!   router namespace (an address of the node whatever interface a packet arrives on, as an
//!   InternalIP is), every other node routes them via the node's underlay address, every external
//!   host too (from its own address of that family), and workloads reach them through their
//!   default route. They become the source of everything the node sends (every route of the
//!   node gets `src`), as an InternalIP on a node's uplink is. Listeners run in the router
//!   namespace, so packets to the node are delivered locally (the table's `input` hook) and
//!   packets from it leave through `output`.
//! * **Services** ([`Lab::add_hairpin_services`]): in the node of each host, one table of its own
//!   ([`SERVICES_TABLE`], `inet`, never the policy table) DNATs the Service address to the host
//!   (every port, as a Service whose port equals its target port) in `prerouting` and masquerades
//!   packets whose source and destination are that host in `postrouting`, as kube-proxy does for
//!   hairpin traffic. The addresses are the caller's (a private range): they never leave the
//!   lab's namespaces.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use super::addressing::{check_host_address, first_of_family, host_prefix, node_underlay};
use super::{lab_error, HostState, Lab, LabHost};
use crate::cmd;
use crate::error::DataplaneError;
use crate::listeners::{HostListeners, ListenSpec};

/// The `inet` table holding a node's Services (DNAT and hairpin masquerade).
pub const SERVICES_TABLE: &str = "netpol_lab_services";

/// A kube-proxy-like Service address leading to one host, on that host's node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HairpinService {
    /// The host (a workload of the lab) the Service leads to.
    pub host: String,
    /// The Service address: DNATed to the host's first address of the same family.
    pub address: IpAddr,
}

impl Lab {
    /// Makes node `host.node` a host named `host.name`: its addresses on the node namespace's
    /// loopback, routes to them from every other node and external host, and listeners on its
    /// ports in the node namespace. Probes from and to it then work as for any host.
    pub fn add_node_host(&mut self, host: LabHost) -> Result<(), DataplaneError> {
        let node = host
            .node
            .clone()
            .ok_or_else(|| lab_error(format!("node host {:?} names no node", host.name)))?;
        let i = self
            .node_position(&node)
            .ok_or_else(|| lab_error(format!("no node named {node:?} in this lab")))?;
        self.check_new_addresses(&host.name, &host.addresses)?;
        if host.addresses.is_empty() {
            return Err(lab_error(format!("host {:?} has no addresses", host.name)));
        }
        let node_ns = self.nodes[i].1.clone();
        let own: Vec<String> = host
            .addresses
            .iter()
            .map(|&a| {
                let nodad = if a.is_ipv6() { " nodad" } else { "" };
                format!("addr add {} dev lo{nodad}", host_prefix(a))
            })
            .collect();
        cmd::ip_batch(Some(&node_ns), &own)?;
        self.route_to_node_host(i, &host.addresses)?;
        self.prefer_node_sources(i, &host.addresses)?;
        let listeners = HostListeners::start(&ListenSpec {
            netns: &node_ns,
            ipv4: host.addresses.iter().any(IpAddr::is_ipv4),
            ipv6: host.addresses.iter().any(IpAddr::is_ipv6),
            tcp_ports: &host.tcp_ports,
            udp_ports: &host.udp_ports,
            sctp_ports: &host.sctp_ports,
        })?;
        let j = self.hosts.len();
        self.host_index.insert(host.name.clone(), j);
        for &a in &host.addresses {
            self.address_owner.insert(a, j);
        }
        self.hosts.push(HostState {
            spec: host,
            netns: node_ns,
            listeners: Some(listeners),
            router: true,
        });
        Ok(())
    }

    /// A new host's name must be free and its addresses usable and nobody's yet.
    fn check_new_addresses(&self, name: &str, addresses: &[IpAddr]) -> Result<(), DataplaneError> {
        if self.host_index.contains_key(name) {
            return Err(lab_error(format!("host {name:?} is listed twice")));
        }
        for (k, &a) in addresses.iter().enumerate() {
            check_host_address(name, a)?;
            if addresses[..k].contains(&a) {
                return Err(lab_error(format!("host {name:?}: {a} is given twice")));
            }
            let owner = self
                .address_owner
                .get(&a)
                .or_else(|| self.service_owner.get(&a));
            if let Some(&j) = owner {
                return Err(lab_error(format!(
                    "{a} belongs to both {:?} and {name:?}",
                    self.hosts[j].spec.name
                )));
            }
        }
        Ok(())
    }

    /// Routes to node `i`'s new addresses in every other node (via its underlay address, from
    /// that node's own address when it has a node host) and every external host (from the
    /// external's own address of that family).
    fn route_to_node_host(&self, i: usize, addresses: &[IpAddr]) -> Result<(), DataplaneError> {
        let (via4, via6) = node_underlay(i);
        let via = |a: &IpAddr| -> String {
            if a.is_ipv6() {
                via6.to_string()
            } else {
                via4.to_string()
            }
        };
        for (k, (name, ns)) in self.nodes.iter().enumerate() {
            if k == i {
                continue;
            }
            let own = self.node_host_addresses(name);
            let lines: Vec<String> = addresses
                .iter()
                .map(|a| {
                    let src = first_of_family(&own, a.is_ipv6())
                        .map(|s| format!(" src {s}"))
                        .unwrap_or_default();
                    format!("route add {} via {} dev up0{src}", host_prefix(*a), via(a))
                })
                .collect();
            cmd::ip_batch(Some(ns), &lines)?;
        }
        for host in self
            .hosts
            .iter()
            .filter(|h| h.spec.node.is_none() && !h.router)
        {
            let lines: Vec<String> = addresses
                .iter()
                .filter_map(|a| {
                    let src = first_of_family(&host.spec.addresses, a.is_ipv6())?;
                    Some(format!(
                        "route add {} via {} dev eth0 src {src}",
                        host_prefix(*a),
                        via(a)
                    ))
                })
                .collect();
            cmd::ip_batch(Some(&host.netns), &lines)?;
        }
        Ok(())
    }

    /// The addresses of node `node`'s own host, if it has one.
    fn node_host_addresses(&self, node: &str) -> Vec<IpAddr> {
        self.hosts
            .iter()
            .filter(|h| h.router && h.spec.node.as_deref() == Some(node))
            .flat_map(|h| h.spec.addresses.iter().copied())
            .collect()
    }

    /// Makes node `i`'s own addresses the source of everything it sends (as a node's InternalIP
    /// is the primary address of its uplink), so that a server on a wildcard socket in the node
    /// (the UDP echo) answers from the address it was asked on: every route of the node to a
    /// host, local or remote, is replaced by the same route with `src`.
    fn prefer_node_sources(&self, i: usize, addresses: &[IpAddr]) -> Result<(), DataplaneError> {
        let externals = self.external_indices();
        let mut lines = Vec::new();
        for (j, host) in self.hosts.iter().enumerate() {
            let local = host
                .spec
                .node
                .as_deref()
                .and_then(|n| self.node_position(n))
                == Some(i);
            let (via4, via6) = self.next_hop_of(host, &externals, j);
            for &a in &host.spec.addresses {
                let Some(src) = first_of_family(addresses, a.is_ipv6()) else {
                    continue;
                };
                let prefix = host_prefix(a);
                lines.push(match (local, host.router, a.is_ipv6()) {
                    (true, true, _) => continue,
                    (true, false, _) => format!("route replace {prefix} dev h{j} src {src}"),
                    (false, _, true) => {
                        format!("route replace {prefix} via {via6} dev up0 src {src}")
                    }
                    (false, _, false) => {
                        format!("route replace {prefix} via {via4} dev up0 src {src}")
                    }
                });
            }
        }
        cmd::ip_batch(Some(&self.nodes[i].1), &lines)
    }

    /// Adds Services: each leads to its host through DNAT on the host's node, with hairpin
    /// masquerade. Each node's [`SERVICES_TABLE`] is replaced in one transaction holding every
    /// Service added so far. Service addresses must be usable, outside the underlay
    /// ({UNDERLAY_V4}/16, {UNDERLAY_V6}/64) and nobody's address.
    pub fn add_hairpin_services(
        &mut self,
        services: &[HairpinService],
    ) -> Result<(), DataplaneError> {
        let mut added = Vec::with_capacity(services.len());
        for service in services {
            let j = *self
                .host_index
                .get(&service.host)
                .ok_or_else(|| lab_error(format!("no host named {:?}", service.host)))?;
            let host = &self.hosts[j];
            if host.router || host.spec.node.is_none() {
                return Err(lab_error(format!(
                    "a Service leads to a workload on a node, not to {:?}",
                    service.host
                )));
            }
            let label = format!("Service address of {}", service.host);
            self.check_new_addresses(&label, &[service.address])?;
            if added.iter().any(|&(_, a, _)| a == service.address) {
                return Err(lab_error(format!(
                    "Service address {} is given twice",
                    service.address
                )));
            }
            let target = first_of_family(&host.spec.addresses, service.address.is_ipv6())
                .ok_or_else(|| {
                    lab_error(format!(
                        "{:?} has no address of the family of Service address {}",
                        service.host, service.address
                    ))
                })?;
            added.push((j, service.address, target));
        }
        let mut by_node: BTreeMap<&str, Vec<(usize, IpAddr, IpAddr)>> = BTreeMap::new();
        for &entry in self.services.iter().chain(&added) {
            if let Some(node) = self.hosts[entry.0].spec.node.as_deref() {
                by_node.entry(node).or_default().push(entry);
            }
        }
        let touched: Vec<&str> = added
            .iter()
            .filter_map(|&(j, _, _)| self.hosts[j].spec.node.as_deref())
            .collect();
        for (node, entries) in &by_node {
            if touched.contains(node) {
                self.apply_ruleset(node, &services_script(entries))?;
            }
        }
        for &(j, address, _) in &added {
            self.service_owner.insert(address, j);
        }
        self.services.extend(added);
        Ok(())
    }
}

/// The whole [`SERVICES_TABLE`] of one node, replacing the previous one.
fn services_script(entries: &[(usize, IpAddr, IpAddr)]) -> String {
    let mut out = format!(
        "table inet {SERVICES_TABLE} {{}}\ndelete table inet {SERVICES_TABLE}\n\
         table inet {SERVICES_TABLE} {{\n\
         \tchain prerouting {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
    );
    for &(_, service, target) in entries {
        let family = if service.is_ipv6() { "ip6" } else { "ip" };
        let _ = writeln!(
            out,
            "\t\t{family} daddr {service} dnat {family} to {target}"
        );
    }
    out.push_str(
        "\t}\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    );
    let mut targets: Vec<IpAddr> = entries.iter().map(|&(_, _, t)| t).collect();
    targets.sort();
    targets.dedup();
    for target in targets {
        let family = if target.is_ipv6() { "ip6" } else { "ip" };
        let _ = writeln!(
            out,
            "\t\t{family} saddr {target} {family} daddr {target} masquerade"
        );
    }
    out.push_str("\t}\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_services_script_dnats_each_address_and_masquerades_each_target_to_itself_once() {
        let a: IpAddr = "10.66.20.70".parse().unwrap();
        let a6: IpAddr = "fd00:66::70".parse().unwrap();
        let script = services_script(&[
            (0, "10.96.0.1".parse().unwrap(), a),
            (0, "fd00:96::1".parse().unwrap(), a6),
            (0, "10.96.0.2".parse().unwrap(), a),
        ]);
        assert!(script.starts_with("table inet netpol_lab_services {}\ndelete table"));
        assert!(script.contains("ip daddr 10.96.0.1 dnat ip to 10.66.20.70\n"));
        assert!(script.contains("ip6 daddr fd00:96::1 dnat ip6 to fd00:66::70\n"));
        assert_eq!(
            script
                .matches("ip saddr 10.66.20.70 ip daddr 10.66.20.70 masquerade")
                .count(),
            1
        );
        assert!(script.contains("ip6 saddr fd00:66::70 ip6 daddr fd00:66::70 masquerade"));
    }
}
