//! The lab: nodes, VMs/pods and external hosts as network namespaces exchanging real packets.
//!
//! Topology (Calico style, so no per-node pod subnets are needed):
//!
//! ```text
//!  workload ns (eth0: its own /32 and /128)        external ns (eth0: its own addresses
//!     | default via 169.254.1.1 (proxy ARP)             + underlay 169.254.128.x/16, fd00:6e70::1:x/64)
//!     | ::/0 via fe80::1                                  |
//!  node ns: hJ (proxy_arp, fe80::1) ... up0 ---- fabric ns: bridge br0 ---- xE
//!           underlay 169.254.0.(i+2)/16, fd00:6e70::(i+2)/64     |
//!                                                  other nodes' up0 ...
//! ```
//!
//! Every node forwards (v4 and v6) and has a host route to each local workload via its veth,
//! a route to each remote workload via that workload's node underlay address, and a route to
//! each external host via its underlay address. External hosts route each workload address via
//! its node, other external hosts directly, and everything else via the first node. Policy
//! rulesets go into node namespaces (forward hook) through [`Lab::apply_ruleset`].
//!
//! After the build, a node can become a host of its own ([`Lab::add_node_host`]: its addresses
//! on the node namespace's loopback, routed by every other node and external host, and
//! listeners there), and a workload can get a kube-proxy-like Service address on its node
//! ([`Lab::add_hairpin_services`]: DNAT of the address to the workload, masquerade of the
//! workload's traffic to itself), so that it can reach itself through its node (hairpin).
//!
//! The module is split by job: `addressing` numbers the underlay and checks a spec's addresses,
//! `wiring` creates the namespaces, links, addresses and routes, `node_host` adds node hosts and
//! Service addresses, and `probing` sends probes between hosts; this file holds the types, the
//! build sequence and the teardown.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cmd;
use crate::error::DataplaneError;
use crate::listeners::HostListeners;
use crate::netns::{self, Netns};
use crate::nft;

mod addressing;
mod node_host;
mod probing;
mod wiring;

pub use node_host::{HairpinService, SERVICES_TABLE};

/// What to build: node names and hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSpec {
    /// Node names; each becomes a router namespace.
    pub nodes: Vec<String>,
    /// The VMs, pods and external hosts, each in its own namespace.
    pub hosts: Vec<LabHost>,
}

/// One VM, pod or external host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabHost {
    /// Unique key, e.g. `test-project/vm-a`.
    pub name: String,
    /// The node it runs on; `None` for a host outside the cluster, attached to the fabric.
    pub node: Option<String>,
    /// Its addresses (at least one); the first of each family is the source of its probes.
    pub addresses: Vec<IpAddr>,
    /// TCP ports its listener accepts and echoes on.
    pub tcp_ports: Vec<u16>,
    /// UDP ports its listener echoes on.
    pub udp_ports: Vec<u16>,
    /// SCTP ports whose INITs its listener records.
    pub sctp_ports: Vec<u16>,
}

/// The L4 protocol of a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ProbeProtocol {
    /// A TCP handshake plus an echoed ping.
    Tcp,
    /// An echoed UDP datagram.
    Udp,
    /// A raw SCTP INIT seen by the destination's listener.
    Sctp,
}

/// One probe of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRequest {
    /// The host the probe is sent from.
    pub from_host: String,
    /// The address probed.
    pub to_addr: IpAddr,
    /// The L4 protocol of the probe.
    pub protocol: ProbeProtocol,
    /// The destination port.
    pub port: u16,
    /// How long to wait for an answer before counting it as blocked.
    pub timeout: Duration,
}

struct HostState {
    spec: LabHost,
    netns: String,
    listeners: Option<HostListeners>,
    /// A node host: it lives in its node's router namespace instead of a namespace of its own.
    router: bool,
}

/// A running lab. Dropping it stops the listeners and removes every namespace it created.
pub struct Lab {
    prefix: String,
    fabric: String,
    /// (node name, netns name), in spec order.
    nodes: Vec<(String, String)>,
    hosts: Vec<HostState>,
    host_index: HashMap<String, usize>,
    address_owner: HashMap<IpAddr, usize>,
    /// Service address -> the host it leads to (through DNAT on that host's node).
    service_owner: HashMap<IpAddr, usize>,
    /// Every Service of [`Lab::add_hairpin_services`]: (host, Service address, target address).
    services: Vec<(usize, IpAddr, IpAddr)>,
    /// Declared last: removed after the listeners have stopped.
    namespaces: Vec<Netns>,
}

fn lab_error(message: impl Into<String>) -> DataplaneError {
    DataplaneError::Lab(message.into())
}

impl Lab {
    /// Builds the namespaces, links, addresses, routes and listeners described by `spec`.
    /// Leftovers of dead runs are removed first. On failure everything created is removed.
    pub fn build(spec: &LabSpec) -> Result<Lab, DataplaneError> {
        addressing::validate(spec)?;
        // A failure to clean somebody else's leftovers must not stop this run.
        let _ = netns::cleanup_stale();

        let prefix = netns::fresh_name("");
        let fabric = format!("{prefix}fabric");
        let nodes: Vec<(String, String)> = spec
            .nodes
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), format!("{prefix}node{i}")))
            .collect();
        let mut lab = Lab {
            prefix,
            fabric,
            nodes,
            hosts: spec
                .hosts
                .iter()
                .map(|host| HostState {
                    spec: host.clone(),
                    netns: String::new(),
                    listeners: None,
                    router: false,
                })
                .collect(),
            host_index: HashMap::new(),
            address_owner: HashMap::new(),
            service_owner: HashMap::new(),
            services: Vec::new(),
            namespaces: Vec::new(),
        };
        for (j, host) in lab.hosts.iter_mut().enumerate() {
            host.netns = format!("{}host{j}", lab.prefix);
        }
        for (j, host) in spec.hosts.iter().enumerate() {
            lab.host_index.insert(host.name.clone(), j);
            for &addr in &host.addresses {
                lab.address_owner.insert(addr, j);
            }
        }
        lab.create_namespaces()?;
        lab.wire()?;
        lab.wait_for_links()?;
        lab.start_listeners()?;
        Ok(lab)
    }

    fn all_netns_names(&self) -> Vec<String> {
        std::iter::once(self.fabric.clone())
            .chain(self.nodes.iter().map(|(_, ns)| ns.clone()))
            .chain(
                self.hosts
                    .iter()
                    .filter(|h| !h.router)
                    .map(|h| h.netns.clone()),
            )
            .collect()
    }

    /// The `nplab-<pid>-<seq>-` prefix of every namespace of this lab.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every namespace of this lab (fabric, nodes, hosts).
    pub fn netns_names(&self) -> Vec<String> {
        self.all_netns_names()
    }

    /// The namespace acting as a node's router, where its ruleset goes.
    pub fn node_netns(&self, node: &str) -> Option<&str> {
        self.nodes
            .iter()
            .find(|(name, _)| name == node)
            .map(|(_, ns)| ns.as_str())
    }

    /// The namespace of a host.
    pub fn host_netns(&self, host: &str) -> Option<&str> {
        self.host(host).ok().map(|h| h.netns.as_str())
    }

    fn host(&self, name: &str) -> Result<&HostState, DataplaneError> {
        self.host_index
            .get(name)
            .map(|&j| &self.hosts[j])
            .ok_or_else(|| lab_error(format!("no host named {name:?} in this lab")))
    }

    /// Applies an nft script inside a node's namespace (one transaction).
    pub fn apply_ruleset(&self, node: &str, script: &str) -> Result<(), DataplaneError> {
        let ns = self
            .node_netns(node)
            .ok_or_else(|| lab_error(format!("no node named {node:?} in this lab")))?;
        nft::apply(Some(ns), script)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Signal every listener first so their ~100 ms poll intervals overlap, then join.
        for host in &self.hosts {
            if let Some(listeners) = &host.listeners {
                listeners.signal_stop();
            }
        }
        for host in &mut self.hosts {
            host.listeners = None;
        }
        // One process removes them all; the guards then find nothing left to do.
        let names: Vec<String> = self
            .all_netns_names()
            .into_iter()
            .filter(|n| std::path::Path::new("/run/netns").join(n).exists())
            .map(|n| format!("netns del {n}"))
            .collect();
        let _ = cmd::ip_batch(None, &names);
    }
}
