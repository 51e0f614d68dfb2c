//! The lab of a cluster: every node with an addressed workload becomes a router namespace, every
//! addressed workload a namespace with its real addresses on that node, every external address
//! of the plan a host on the fabric (see `netpol_dataplane::lab` for the topology). Each node is
//! also a host of its own (`node/NAME`, with the addresses [`crate::placement`] chooses, and
//! listeners), and each workload has a kube-proxy-like Service address per family on its node
//! for hairpin probes. The lab remembers which policies it enforces, so every prediction is made
//! for exactly what the kernel was given.

mod probing;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use netpol_core::analysis::output_keys;
use netpol_core::{AdminPolicy, Cluster, Endpoint, EvalOptions, Policy, Protocol};
use netpol_dataplane::{HairpinService, Lab, LabHost, LabSpec, ProbeProtocol};
use serde::Serialize;

use crate::error::LabError;
use crate::placement::{address_nodes, service_addresses, NodeAddressing};
use crate::preflight::preflight;
use crate::report::ExternalProbe;

/// The node of every workload that names none.
pub const DEFAULT_NODE: &str = "default-node";

/// How long a probe waits before it counts as denied. Dropped packets are never answered, so
/// this bounds the time of every denied probe; the lab's links answer in well under a millisecond.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(700);

/// What a lab needs besides the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabPlan {
    /// (protocol, port) pairs every host listens on.
    pub listen: Vec<(Protocol, u16)>,
    /// Addresses outside the cluster that get an external host of their own.
    pub externals: Vec<IpAddr>,
}

/// A lab built from a cluster. Dropping it removes every namespace it created, and with them
/// every ruleset it loaded.
pub struct ClusterLab {
    lab: Lab,
    /// The cluster as placed: workloads without a node moved to [`DEFAULT_NODE`], no policies.
    placed: Cluster,
    /// `placed` with the policies in force (none until [`ClusterLab::enforce`]).
    enforced: Cluster,
    opts: EvalOptions,
    /// Output keys, by index into `placed.workloads`.
    keys: Vec<String>,
    nodes: Vec<String>,
    /// Indices of the workloads in the lab (those with at least one address), in cluster order.
    members: Vec<usize>,
    skipped: Vec<String>,
    /// The plan's external addresses as given.
    externals: Vec<IpAddr>,
    /// Every lab node's addresses (as `placed.nodes` has them), in `nodes` order.
    node_addresses: Vec<NodeAddressing>,
    /// `(workload index, Service address)` of every hairpin Service, in `members` order.
    services: Vec<(usize, IpAddr)>,
}

/// The name of a node's own host in the lab: `node/NAME`, as every output names a node.
pub fn node_host_name(node: &str) -> String {
    format!("node/{node}")
}

/// The name of the external host of an address.
pub fn external_host_name(address: IpAddr) -> String {
    format!("external/{address}")
}

/// What a lab consists of, for printing or for reaching it by hand (`ip netns exec NETNS ...`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LabInventory {
    /// Every node, sorted by name.
    pub nodes: Vec<NodeEntry>,
    /// Every workload in the lab, in cluster order.
    pub workloads: Vec<HostEntry>,
    /// One entry per external address of the plan, in the plan's order (as given, repeats too).
    pub externals: Vec<HostEntry>,
    /// Every workload's Service addresses (hairpin), in cluster order.
    pub services: Vec<ServiceEntry>,
}

/// A kube-proxy-like Service address of a workload, on the workload's node.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The workload's key.
    pub workload: String,
    /// The node holding the Service.
    pub node: String,
    /// The Service address (DNATed to the workload's address of its family, every port).
    pub address: IpAddr,
}

/// A node of a lab: the router namespace that holds its ruleset.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NodeEntry {
    /// The node's name.
    pub name: String,
    /// Its addresses: its Node object's, or synthetic ones the lab gave it.
    pub addresses: Vec<IpAddr>,
    /// Whether the lab made the addresses up (no Node object with addresses).
    pub synthetic: bool,
    /// Its network namespace.
    pub netns: Option<String>,
}

/// A workload or external host of a lab.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HostEntry {
    /// The workload key (`namespace/name`) or `external/ADDRESS`.
    pub name: String,
    /// The node it runs on; `None` outside the cluster.
    pub node: Option<String>,
    /// Its addresses.
    pub addresses: Vec<IpAddr>,
    /// Its network namespace.
    pub netns: Option<String>,
}

fn probe_protocol(protocol: Protocol) -> ProbeProtocol {
    match protocol {
        Protocol::Tcp => ProbeProtocol::Tcp,
        Protocol::Udp => ProbeProtocol::Udp,
        Protocol::Sctp => ProbeProtocol::Sctp,
    }
}

/// Places every workload on a node and drops the policies: the lab starts enforcing nothing.
fn place(cluster: &Cluster) -> Cluster {
    let mut placed = cluster.clone();
    for w in &mut placed.workloads {
        if w.node.is_none() {
            w.node = Some(DEFAULT_NODE.to_string());
        }
    }
    placed.policies.clear();
    placed
}

/// The hosts of a plan's listeners: every host listens on every port of the plan.
struct Listeners {
    tcp: Vec<u16>,
    udp: Vec<u16>,
    sctp: Vec<u16>,
}

impl Listeners {
    fn of(plan: &LabPlan) -> Listeners {
        let ports = |protocol: Protocol| -> Vec<u16> {
            plan.listen
                .iter()
                .filter(|(p, _)| *p == protocol)
                .map(|(_, port)| *port)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        Listeners {
            tcp: ports(Protocol::Tcp),
            udp: ports(Protocol::Udp),
            sctp: ports(Protocol::Sctp),
        }
    }

    fn host(&self, name: String, node: Option<String>, addresses: Vec<IpAddr>) -> LabHost {
        LabHost {
            name,
            node,
            addresses,
            tcp_ports: self.tcp.clone(),
            udp_ports: self.udp.clone(),
            sctp_ports: self.sctp.clone(),
        }
    }
}

impl ClusterLab {
    /// Checks the prerequisites ([`preflight`]) and builds the topology; no ruleset is loaded
    /// yet. Workloads without an address cannot exist in a lab: they are left out and listed by
    /// [`ClusterLab::skipped`]. On error nothing is left behind.
    pub fn build(
        cluster: &Cluster,
        opts: EvalOptions,
        plan: &LabPlan,
    ) -> Result<ClusterLab, LabError> {
        preflight()?;
        let mut placed = place(cluster);
        let keys = output_keys(&placed);
        let (members, skipped): (Vec<usize>, Vec<usize>) =
            (0..placed.workloads.len()).partition(|&i| !placed.workloads[i].addresses.is_empty());
        let nodes: Vec<String> = members
            .iter()
            .filter_map(|&i| placed.workloads[i].node.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let node_addresses = address_nodes(&mut placed, &nodes, &members, &plan.externals);
        let services = service_addresses(&placed, &members, &plan.externals);
        let listeners = Listeners::of(plan);
        let mut hosts: Vec<LabHost> = members
            .iter()
            .map(|&i| {
                let w = &placed.workloads[i];
                listeners.host(keys[i].clone(), w.node.clone(), w.addresses.clone())
            })
            .collect();
        for &address in plan.externals.iter().collect::<BTreeSet<_>>() {
            hosts.push(listeners.host(external_host_name(address), None, vec![address]));
        }
        let mut lab = Lab::build(&LabSpec {
            nodes: nodes.clone(),
            hosts,
        })
        .map_err(|e| LabError::Build(Box::new(e)))?;
        for node in &node_addresses {
            lab.add_node_host(listeners.host(
                node_host_name(&node.name),
                Some(node.name.clone()),
                node.addresses.clone(),
            ))
            .map_err(|e| LabError::Build(Box::new(e)))?;
        }
        let hairpin: Vec<HairpinService> = services
            .iter()
            .map(|&(i, address)| HairpinService {
                host: keys[i].clone(),
                address,
            })
            .collect();
        lab.add_hairpin_services(&hairpin)
            .map_err(|e| LabError::Build(Box::new(e)))?;
        Ok(ClusterLab {
            lab,
            enforced: placed.clone(),
            placed,
            opts,
            skipped: skipped.iter().map(|&i| keys[i].clone()).collect(),
            keys,
            nodes,
            members,
            externals: plan.externals.clone(),
            node_addresses,
            services,
        })
    }

    /// Compiles the cluster with `policies` and `admin_policies` (replacing the cluster's own) for
    /// every node and loads
    /// each ruleset into its node, one atomic transaction per node. Every node is compiled before
    /// any is loaded, so a compile error changes nothing in the kernel.
    pub fn enforce(
        &mut self,
        policies: &[Policy],
        admin_policies: &[AdminPolicy],
    ) -> Result<(), LabError> {
        let mut cluster = self.placed.clone();
        cluster.policies = policies.to_vec();
        cluster.admin_policies = admin_policies.to_vec();
        cluster.add_missing_namespaces();
        let mut rulesets = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let ruleset = netpol_nft::compile(&cluster, self.opts, node).map_err(|source| {
                LabError::Compile {
                    node: node.clone(),
                    source,
                }
            })?;
            rulesets.push(ruleset);
        }
        // From the first load on, the kernel holds (part of) these policies.
        self.enforced = cluster;
        for (node, ruleset) in self.nodes.iter().zip(&rulesets) {
            self.lab
                .apply_ruleset(node, &ruleset.text)
                .map_err(|source| LabError::Load {
                    node: node.clone(),
                    source: Box::new(source),
                })?;
        }
        Ok(())
    }

    /// Probes one flow from a lab workload (by key) to an external host of this lab, and
    /// evaluates it for the policies in force.
    pub fn probe_external(
        &self,
        from: &str,
        to: IpAddr,
        protocol: Protocol,
        port: u16,
    ) -> Result<ExternalProbe, LabError> {
        let observed = self
            .lab
            .probe(from, to, probe_protocol(protocol), port, PROBE_TIMEOUT)
            .map_err(|source| LabError::Probe {
                from: from.to_string(),
                to: to.to_string(),
                protocol,
                port,
                source: Box::new(source),
            })?;
        let src = self
            .keys
            .iter()
            .position(|k| k == from)
            .ok_or_else(|| LabError::UnknownWorkload(from.to_string()))?;
        let predicted = netpol_core::evaluate(
            &self.enforced,
            self.opts,
            &Endpoint::Workload(src),
            &Endpoint::External(to),
            protocol,
            port,
        )
        .allowed;
        Ok(ExternalProbe {
            from: from.to_string(),
            to,
            protocol,
            port,
            observed,
            predicted,
        })
    }

    /// The nodes, workloads and external hosts, with their namespaces.
    pub fn inventory(&self) -> LabInventory {
        let nodes = self
            .node_addresses
            .iter()
            .map(|node| NodeEntry {
                name: node.name.clone(),
                addresses: node.addresses.clone(),
                synthetic: node.synthetic,
                netns: self.lab.node_netns(&node.name).map(str::to_string),
            })
            .collect();
        let workloads = self
            .members
            .iter()
            .map(|&i| {
                let w = &self.placed.workloads[i];
                self.host_entry(self.keys[i].clone(), w.node.clone(), w.addresses.clone())
            })
            .collect();
        let externals = self
            .externals
            .iter()
            .map(|&a| self.host_entry(external_host_name(a), None, vec![a]))
            .collect();
        let services = self
            .services
            .iter()
            .map(|&(i, address)| ServiceEntry {
                workload: self.keys[i].clone(),
                node: self.placed.workloads[i].node.clone().unwrap_or_default(),
                address,
            })
            .collect();
        LabInventory {
            nodes,
            workloads,
            externals,
            services,
        }
    }

    fn host_entry(&self, name: String, node: Option<String>, addresses: Vec<IpAddr>) -> HostEntry {
        HostEntry {
            netns: self.lab.host_netns(&name).map(str::to_string),
            name,
            node,
            addresses,
        }
    }

    /// The keys of the workloads left out because they have no address, in cluster order.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// The node names, sorted.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The cluster as enforced: every workload on a node, every lab node with its addresses
    /// (synthetic ones included, see [`crate::placement`]), the policies last given to
    /// [`ClusterLab::enforce`] (none before).
    pub fn cluster(&self) -> &Cluster {
        &self.enforced
    }

    /// Every hairpin Service: the workload's key and its Service address, in cluster order.
    pub fn services(&self) -> Vec<(String, IpAddr)> {
        self.services
            .iter()
            .map(|&(i, a)| (self.keys[i].clone(), a))
            .collect()
    }

    /// The kernel side, for probes and connections beyond the matrix.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }
}
