//! The addresses a lab adds to a cluster so that every probe uses an address the analyzer knows:
//! the nodes' own addresses, and one Service address per workload and family for hairpin.
//!
//! * **Node addresses.** A lab node whose Node object has addresses (its `status.addresses`,
//!   plus the addresses of hostNetwork pods on it, as the loader reads them) uses exactly those:
//!   they go on the node's router namespace and are the sources and destinations of its probes.
//!   A node without them (no Node object, or one without addresses) gets a **synthetic** address
//!   of each family its lab workloads have, from the benchmarking ranges [`SYNTHETIC_NODE_V4`]
//!   (198.18.0.0/15, RFC 2544) and [`SYNTHETIC_NODE_V6`] (2001:2::/48, RFC 5180), and the placed
//!   cluster gets them as that node's addresses (an implicit Node when there was none), so the
//!   analyzer predicts for the node the lab actually has. A Node object that lists only one
//!   family keeps it: the other family has no node probes then.
//! * **Service addresses.** Every lab workload gets a Service address of each family it has,
//!   from [`SERVICE_V4`] (10.96.0.0/16) and [`SERVICE_V6`] (fd00:96::/112), private ranges the
//!   lab's namespaces never route out. No policy can tell them apart (a hairpin packet is
//!   self-traffic once DNATed), so they stay out of the placed cluster.
//!
//! Candidates the cluster or the plan already uses are skipped, so a lab never has an address
//! twice; a range that runs out leaves the rest without (nodes: an error at build, Services: no
//! hairpin probe for the rest).

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netpol_core::{families_of, Cluster, IpFamily, Node};

/// The first address of the range synthetic node addresses come from (198.18.0.0/15).
pub const SYNTHETIC_NODE_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
/// The first address of the range synthetic IPv6 node addresses come from (2001:2::/48).
pub const SYNTHETIC_NODE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0);
/// The first address of the IPv4 Service range (10.96.0.0/16).
pub const SERVICE_V4: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 0);
/// The first address of the IPv6 Service range (fd00:96::/112).
pub const SERVICE_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x96, 0, 0, 0, 0, 0, 0);

/// How many addresses each range holds (the IPv4 ones; the IPv6 ranges are at least as large).
const SYNTHETIC_NODE_SIZE: u128 = 1 << 17;
const SERVICE_SIZE: u128 = 1 << 16;

/// A lab node's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeAddressing {
    /// The node's name.
    pub(crate) name: String,
    /// Its addresses, as the placed cluster now lists them.
    pub(crate) addresses: Vec<IpAddr>,
    /// Whether the lab made them up.
    pub(crate) synthetic: bool,
}

/// Hands out the free addresses of one range in order.
struct Range {
    base: u128,
    size: u128,
    next: u128,
    v6: bool,
}

impl Range {
    fn new(base: IpAddr, size: u128) -> Range {
        let (base, v6) = match base {
            IpAddr::V4(a) => (u128::from(u32::from(a)), false),
            IpAddr::V6(a) => (u128::from(a), true),
        };
        // Offset 0 is the range's network address.
        Range {
            base,
            size,
            next: 1,
            v6,
        }
    }

    fn take(&mut self, taken: &mut HashSet<IpAddr>) -> Option<IpAddr> {
        while self.next < self.size - 1 {
            let raw = self.base + self.next;
            self.next += 1;
            let a = if self.v6 {
                IpAddr::V6(Ipv6Addr::from(raw))
            } else {
                IpAddr::V4(Ipv4Addr::from(u32::try_from(raw).ok()?))
            };
            if taken.insert(a) {
                return Some(a);
            }
        }
        None
    }
}

/// Every address the cluster and the plan use.
fn used_addresses(cluster: &Cluster, externals: &[IpAddr]) -> HashSet<IpAddr> {
    cluster
        .workloads
        .iter()
        .flat_map(|w| w.addresses.iter())
        .chain(cluster.nodes.iter().flat_map(|n| n.addresses.iter()))
        .chain(externals)
        .copied()
        .collect()
}

/// Gives every lab node its addresses (see the module documentation), updating `placed.nodes`
/// (kept sorted by name). `members` are the lab's workloads (indices into `placed.workloads`).
pub(crate) fn address_nodes(
    placed: &mut Cluster,
    nodes: &[String],
    members: &[usize],
    externals: &[IpAddr],
) -> Vec<NodeAddressing> {
    let mut taken = used_addresses(placed, externals);
    let mut v4 = Range::new(IpAddr::V4(SYNTHETIC_NODE_V4), SYNTHETIC_NODE_SIZE);
    let mut v6 = Range::new(IpAddr::V6(SYNTHETIC_NODE_V6), SYNTHETIC_NODE_SIZE);
    let mut out = Vec::with_capacity(nodes.len());
    for name in nodes {
        if let Some(node) = placed.nodes.iter().find(|n| &n.name == name) {
            if !node.addresses.is_empty() {
                // An address listed twice (an InternalIP that is also the ExternalIP) is one.
                let mut addresses: Vec<IpAddr> = Vec::with_capacity(node.addresses.len());
                for &a in &node.addresses {
                    if !addresses.contains(&a) {
                        addresses.push(a);
                    }
                }
                out.push(NodeAddressing {
                    name: name.clone(),
                    addresses,
                    synthetic: false,
                });
                continue;
            }
        }
        let local: Vec<IpAddr> = members
            .iter()
            .map(|&i| &placed.workloads[i])
            .filter(|w| w.node.as_deref() == Some(name.as_str()))
            .flat_map(|w| w.addresses.iter().copied())
            .collect();
        let mut families = families_of(&local);
        families.sort();
        let addresses: Vec<IpAddr> = families
            .into_iter()
            .filter_map(|f| match f {
                IpFamily::V4 => v4.take(&mut taken),
                IpFamily::V6 => v6.take(&mut taken),
            })
            .collect();
        match placed.nodes.iter_mut().find(|n| &n.name == name) {
            Some(node) => node.addresses = addresses.clone(),
            None => placed.nodes.push(Node {
                name: name.clone(),
                addresses: addresses.clone(),
                implicit: true,
                ..Node::default()
            }),
        }
        out.push(NodeAddressing {
            name: name.clone(),
            addresses,
            synthetic: true,
        });
    }
    placed.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One Service address per lab workload and family it has, in `members` order:
/// `(workload index, address)`.
pub(crate) fn service_addresses(
    placed: &Cluster,
    members: &[usize],
    externals: &[IpAddr],
) -> Vec<(usize, IpAddr)> {
    let mut taken = used_addresses(placed, externals);
    let mut v4 = Range::new(IpAddr::V4(SERVICE_V4), SERVICE_SIZE);
    let mut v6 = Range::new(IpAddr::V6(SERVICE_V6), SERVICE_SIZE);
    let mut out = Vec::new();
    for &i in members {
        let families: BTreeSet<IpFamily> = families_of(&placed.workloads[i].addresses)
            .into_iter()
            .collect();
        for f in families {
            let address = match f {
                IpFamily::V4 => v4.take(&mut taken),
                IpFamily::V6 => v6.take(&mut taken),
            };
            if let Some(a) = address {
                out.push((i, a));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use netpol_core::{Workload, WorkloadKind};

    fn workload(name: &str, node: &str, addresses: &[&str]) -> Workload {
        Workload {
            kind: WorkloadKind::VirtualMachine,
            namespace: "p".into(),
            name: name.into(),
            labels: Default::default(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            node: Some(node.into()),
            phase: None,
            named_ports: Vec::new(),
            origin: None,
            instances: Default::default(),
        }
    }

    fn cluster() -> Cluster {
        Cluster {
            workloads: vec![
                workload("a", "n1", &["10.66.20.70", "fd00:66::70"]),
                // Takes the first synthetic IPv4 address: the lab must skip it.
                workload("b", "n2", &["198.18.0.1"]),
            ],
            nodes: vec![Node {
                name: "n2".into(),
                // Its InternalIP listed again as its ExternalIP.
                addresses: vec!["10.66.0.2".parse().unwrap(), "10.66.0.2".parse().unwrap()],
                ..Node::default()
            }],
            ..Cluster::default()
        }
    }

    #[test]
    fn a_node_object_keeps_its_addresses_and_a_node_without_one_gets_free_synthetic_ones() {
        let mut placed = cluster();
        let nodes = ["n1".to_string(), "n2".to_string()];
        let got = address_nodes(&mut placed, &nodes, &[0, 1], &[]);
        assert_eq!(
            got[0].addresses,
            [
                "198.18.0.2".parse::<IpAddr>().unwrap(),
                "2001:2::1".parse().unwrap()
            ]
        );
        assert!(got[0].synthetic);
        assert_eq!(got[1].addresses, ["10.66.0.2".parse::<IpAddr>().unwrap()]);
        assert!(!got[1].synthetic);
        // The analyzer now knows the synthetic addresses as n1's.
        let n1 = placed.node_index("n1").unwrap();
        assert_eq!(placed.nodes[n1].addresses, got[0].addresses);
        assert!(placed.nodes[n1].implicit);
        assert_eq!(
            placed.node_of_address("198.18.0.2".parse().unwrap()),
            Some(n1)
        );
        let names: Vec<&str> = placed.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["n1", "n2"]);
    }

    #[test]
    fn every_workload_gets_a_service_address_per_family_outside_every_used_address() {
        let mut placed = cluster();
        placed.workloads[1].addresses = vec!["10.96.0.1".parse().unwrap()];
        let got = service_addresses(&placed, &[0, 1], &["10.96.0.2".parse().unwrap()]);
        let want: Vec<(usize, IpAddr)> = vec![
            (0, "10.96.0.3".parse().unwrap()),
            (0, "fd00:96::1".parse().unwrap()),
            (1, "10.96.0.4".parse().unwrap()),
        ];
        assert_eq!(got, want);
    }
}
