//! Address families and nodes: what the model knows of the hosts workloads run on, and of the two
//! families a dual-stack workload talks over.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Labels, Origin};

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IpFamily {
    /// IPv4.
    #[serde(rename = "IPv4")]
    V4,
    /// IPv6.
    #[serde(rename = "IPv6")]
    V6,
}

impl IpFamily {
    /// Both families, in the order outputs list them.
    pub const ALL: [IpFamily; 2] = [IpFamily::V4, IpFamily::V6];

    /// The family of an address.
    pub fn of(a: &IpAddr) -> IpFamily {
        if a.is_ipv4() {
            IpFamily::V4
        } else {
            IpFamily::V6
        }
    }

    /// 0 for IPv4, 1 for IPv6: the index of per-family arrays.
    pub fn index(self) -> usize {
        usize::from(self == IpFamily::V6)
    }

    /// `IPv4` or `IPv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        }
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first address of `family` among `addresses`.
pub fn address_of_family(addresses: &[IpAddr], family: IpFamily) -> Option<IpAddr> {
    addresses
        .iter()
        .copied()
        .find(|a| IpFamily::of(a) == family)
}

/// The families of `addresses`, in order of first appearance.
pub fn families_of(addresses: &[IpAddr]) -> Vec<IpFamily> {
    let mut out = Vec::with_capacity(2);
    for a in addresses {
        let f = IpFamily::of(a);
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// A Kubernetes Node: the host workloads run on.
///
/// NetworkPolicy never isolates a node, and a workload always accepts traffic from its own node
/// (kubelet probes); traffic from another node, or from a workload to any node, is traffic of an
/// external address, which only ipBlocks match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The node's name, what workloads' `node` refers to.
    pub name: String,
    /// Its labels (for display: no NetworkPolicy selector selects nodes).
    pub labels: Labels,
    /// Its `InternalIP` and `ExternalIP` addresses (both families), in the order listed, then the
    /// addresses of hostNetwork pods on it that the node object did not list.
    pub addresses: Vec<IpAddr>,
    /// `namespace/name` of the hostNetwork pods on it: not workloads of their own, their traffic
    /// is the node's.
    pub host_network_pods: Vec<String>,
    /// True when no Node object was loaded and netpol knows the node only from a hostNetwork pod.
    pub implicit: bool,
    /// The file and line it was loaded from; `None` for objects from the API server or implicit
    /// nodes.
    pub origin: Option<Origin>,
}

impl Node {
    /// `node/NAME`, how outputs name a node.
    pub fn key(&self) -> String {
        let mut key = String::with_capacity(5 + self.name.len());
        key.push_str("node/");
        key.push_str(&self.name);
        key
    }
}
