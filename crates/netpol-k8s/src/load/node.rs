//! Nodes (`kubectl get nodes -o yaml`): name, labels and the `InternalIP` / `ExternalIP` addresses
//! of `status.addresses`, both families; and hostNetwork pods, whose addresses are their node's.
//! The wire type holds only the fields [`crate::schema::NODE`] lists (everything else of a node is
//! ignored, not rejected, as for the VM kinds).

use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use netpol_core::Node;
use serde::Deserialize;

use super::{Loader, Obj};
use crate::de::decode;
use crate::validate::{self, FPath, NameRule, Val};

/// A hostNetwork pod as the loader keeps it: not a workload, but addresses of its node.
pub(super) struct HostNetworkPod {
    /// `namespace/name`.
    pub(super) key: String,
    pub(super) node: String,
    pub(super) addresses: Vec<IpAddr>,
}

/// The address types that carry traffic a node sends (`Hostname` and the DNS types do not).
const ADDRESS_TYPES: [&str; 2] = ["InternalIP", "ExternalIP"];

impl Loader {
    pub(super) fn node(&mut self, obj: &Obj<'_>) -> Option<Node> {
        let (r, issues) = decode::<NodeWire>(obj.node, false);
        let node = self.decoded(obj, r, issues)?;
        let mut problems = Vec::new();
        validate::object_meta(&node.metadata, false, NameRule::Subdomain, &mut problems);
        let mut addresses = Vec::new();
        let path = FPath::root().f("status").f("addresses");
        let listed = node.status.and_then(|s| s.addresses).unwrap_or_default();
        for (i, a) in listed.iter().enumerate() {
            let kind = a.type_.as_deref().unwrap_or("");
            if !ADDRESS_TYPES.contains(&kind) {
                continue;
            }
            let text = a.address.as_deref().unwrap_or("");
            match text.parse::<IpAddr>() {
                Ok(ip) if !addresses.contains(&ip) => addresses.push(ip),
                Ok(_) => {}
                Err(_) => problems.push(validate::invalid(
                    path.i(i).f("address"),
                    Val::S(text),
                    &format!(
                        "an {kind} must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                    ),
                )),
            }
        }
        if !self.valid(obj, problems) {
            return None;
        }
        Some(Node {
            name: node.metadata.name.unwrap_or_default(),
            labels: node.metadata.labels.unwrap_or_default(),
            addresses,
            origin: Self::origin(obj),
            ..Node::default()
        })
    }
}

/// The nodes sorted by name, with each hostNetwork pod's addresses added to its node (an implicit
/// node when no Node object defines it).
pub(super) fn with_host_network(mut nodes: Vec<Node>, pods: &[HostNetworkPod]) -> Vec<Node> {
    for pod in pods {
        let i = match nodes.iter().position(|n| n.name == pod.node) {
            Some(i) => i,
            None => {
                nodes.push(Node {
                    name: pod.node.clone(),
                    implicit: true,
                    ..Node::default()
                });
                nodes.len() - 1
            }
        };
        let node = &mut nodes[i];
        for a in &pod.addresses {
            if !node.addresses.contains(a) {
                node.addresses.push(*a);
            }
        }
        node.host_network_pods.push(pod.key.clone());
    }
    for n in &mut nodes {
        n.host_network_pods.sort();
    }
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    nodes
}

#[derive(Deserialize, Default)]
struct NodeWire {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    status: Option<NodeStatusWire>,
}

#[derive(Deserialize, Default)]
struct NodeStatusWire {
    #[serde(default)]
    addresses: Option<Vec<NodeAddressWire>>,
}

#[derive(Deserialize, Default)]
struct NodeAddressWire {
    #[serde(default, rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    address: Option<String>,
}
