//! Identities: workloads that no selector, named port or ipBlock can tell apart, grouped once.
//!
//! Two workloads share an identity when they have the same namespace, labels and named ports and
//! (only when ipBlocks can match workloads) the same ipBlock membership of the address each family
//! of flow would use. Everything the policy set evaluates (peers, subjects) is a bitset over
//! identities, so the cost of a selector is paid once per identity, not once per workload.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::bits::Bits;
use crate::eval::namespace_labels;
use crate::hash::FxBuildHasher;
use crate::model::{Cluster, IpBlock, Labels, Protocol, Workload};
use crate::policy_set::ports::PortNames;

/// The index of an identity in [`crate::PolicySet::identity_count`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityId(pub u32);

impl IdentityId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// An address family, for choosing which address of a workload a flow uses.
pub(crate) use crate::model::IpFamily as Family;

/// The families of a workload's addresses in order of first appearance, as an index into
/// [`CLASS_FAMILIES`]; this is all [`crate::eval::flow_addresses`] needs to pick a pair's family.
pub(crate) fn family_class(w: &Workload) -> usize {
    address_class(&w.addresses)
}

/// The family class (see [`family_class`]) of a list of addresses.
pub(crate) fn address_class(addresses: &[IpAddr]) -> usize {
    let Some(first) = addresses.first().map(Family::of) else {
        return 0;
    };
    let both = addresses.iter().any(|a| Family::of(a) != first);
    match (first, both) {
        (Family::V4, false) => 1,
        (Family::V6, false) => 2,
        (Family::V4, true) => 3,
        (Family::V6, true) => 4,
    }
}

/// The families of each family class, in order of preference.
pub(crate) const CLASS_FAMILIES: [&[Family]; 5] = [
    &[],
    &[Family::V4],
    &[Family::V6],
    &[Family::V4, Family::V6],
    &[Family::V6, Family::V4],
];

/// The family a flow between workloads of these classes uses (see `flow_addresses`).
pub(crate) fn pair_family(src_class: usize, dst_class: usize) -> Option<Family> {
    let src = CLASS_FAMILIES.get(src_class)?;
    let dst = CLASS_FAMILIES.get(dst_class)?;
    src.iter().copied().find(|f| dst.contains(f))
}

/// Whether a family class has `family`.
pub(crate) fn class_has(class: usize, family: Family) -> bool {
    CLASS_FAMILIES
        .get(class)
        .is_some_and(|f| f.contains(&family))
}

/// A named port of an identity: the first port of each (name, protocol), as
/// [`Workload::resolve_named_port`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NamedPortValue {
    pub(crate) name: u32,
    pub(crate) protocol: Protocol,
    pub(crate) port: u16,
}

/// What one identity stands for.
pub(crate) struct Identity {
    pub(crate) namespace: usize,
    pub(crate) labels: Labels,
    /// Family class (see [`family_class`]).
    pub(crate) class: usize,
    pub(crate) named_ports: Vec<NamedPortValue>,
}

impl Identity {
    pub(crate) fn named_port(&self, name: u32, protocol: Protocol) -> Option<u16> {
        self.named_ports
            .iter()
            .find(|n| n.name == name && n.protocol == protocol)
            .map(|n| n.port)
    }
}

/// Namespaces by index: the cluster's own, then any a workload or policy names that no object
/// defined (with only their name label), so every lookup has an answer.
pub(crate) struct Namespaces {
    index: HashMap<String, usize, FxBuildHasher>,
    pub(crate) labels: Vec<Labels>,
}

impl Namespaces {
    pub(crate) fn new(cluster: &Cluster) -> Self {
        let mut ns = Namespaces {
            index: HashMap::default(),
            labels: Vec::new(),
        };
        for n in &cluster.namespaces {
            ns.add(&n.name, || n.labels.clone());
        }
        let named = cluster
            .workloads
            .iter()
            .map(|w| w.namespace.as_str())
            .chain(cluster.policies.iter().map(|p| p.namespace.as_str()));
        for name in named {
            ns.add(name, || namespace_labels(cluster, name).into_owned());
        }
        ns
    }

    fn add(&mut self, name: &str, labels: impl FnOnce() -> Labels) {
        if !self.index.contains_key(name) {
            self.index.insert(name.to_string(), self.labels.len());
            self.labels.push(labels());
        }
    }

    pub(crate) fn get(&self, name: &str) -> usize {
        self.index.get(name).copied().unwrap_or(0)
    }

    pub(crate) fn len(&self) -> usize {
        self.labels.len()
    }
}

/// How finely workloads are grouped into identities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// By namespace, labels, named ports and (when ipBlocks match workloads) the ipBlock
    /// membership of their flow addresses: what the bitset analyzer needs to answer per identity.
    Full,
    /// By namespace and labels only: all that selector matching needs (a node's compiler resolves
    /// named ports and ipBlocks per workload and address itself).
    Selectors,
}

/// Which blocks contain the flow address of one family.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FamilyBlocks {
    v4: bool,
    members: Vec<bool>,
}

/// What two workloads must share to share an identity; borrowed from the cluster, so grouping
/// 10,000 workloads clones only what the identities keep.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct IdentityKey<'a> {
    namespace: usize,
    labels: &'a Labels,
    named_ports: Vec<FirstNamedPort<'a>>,
    blocks: Vec<FamilyBlocks>,
}

/// The first port of a (name, protocol) among a workload's named ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct FirstNamedPort<'a> {
    name: &'a str,
    protocol: Protocol,
    port: u16,
}

/// Every identity of a cluster and the identity of each workload.
pub(crate) struct Identities {
    pub(crate) of_workload: Vec<IdentityId>,
    pub(crate) list: Vec<Identity>,
    /// Per identity, per family: which blocks (by [`crate::policy_set::peers::BlockId`] index)
    /// contain its flow address of that family.
    pub(crate) blocks: Vec<[Vec<bool>; 2]>,
    /// Identities per namespace index.
    pub(crate) by_namespace: Vec<Bits>,
}

impl Identities {
    /// Groups the workloads; `blocks` are the ipBlocks that can match workloads (empty when
    /// they cannot).
    pub(crate) fn new(
        cluster: &Cluster,
        namespaces: &Namespaces,
        blocks: &[IpBlock],
        port_names: &PortNames,
        grouping: Grouping,
    ) -> Self {
        let mut ids = Identities {
            of_workload: Vec::with_capacity(cluster.workloads.len()),
            list: Vec::new(),
            blocks: Vec::new(),
            by_namespace: Vec::new(),
        };
        let mut index: HashMap<IdentityKey<'_>, IdentityId, FxBuildHasher> = HashMap::default();
        for w in &cluster.workloads {
            let namespace = namespaces.get(&w.namespace);
            let named = match grouping {
                Grouping::Full => first_named_ports(w),
                Grouping::Selectors => Vec::new(),
            };
            let per_family = block_membership(w, blocks);
            let class = family_class(w);
            let key = IdentityKey {
                namespace,
                labels: &w.labels,
                named_ports: named,
                blocks: key_blocks(class, &per_family, blocks.is_empty()),
            };
            let next = IdentityId(u32::try_from(ids.list.len()).unwrap_or(u32::MAX));
            let id = match index.get(&key) {
                Some(&id) => id,
                None => {
                    ids.push(
                        w,
                        namespace,
                        class,
                        &key.named_ports,
                        per_family,
                        port_names,
                    );
                    index.insert(key, next);
                    next
                }
            };
            ids.of_workload.push(id);
        }
        ids.by_namespace = vec![Bits::new(ids.list.len()); namespaces.len()];
        for (id, ident) in ids.list.iter().enumerate() {
            if let Some(b) = ids.by_namespace.get_mut(ident.namespace) {
                b.set(id);
            }
        }
        ids
    }

    fn push(
        &mut self,
        w: &Workload,
        namespace: usize,
        class: usize,
        named: &[FirstNamedPort<'_>],
        per_family: [Vec<bool>; 2],
        port_names: &PortNames,
    ) {
        let named_ports = named
            .iter()
            .map(|n| NamedPortValue {
                // Every name a workload defines is in `port_names`.
                name: port_names.get(n.name).unwrap_or(u32::MAX),
                protocol: n.protocol,
                port: n.port,
            })
            .collect();
        self.list.push(Identity {
            namespace,
            labels: w.labels.clone(),
            class,
            named_ports,
        });
        self.blocks.push(per_family);
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }
}

/// The first port of each (name, protocol), as `resolve_named_port` finds it, sorted.
fn first_named_ports(w: &Workload) -> Vec<FirstNamedPort<'_>> {
    let mut named: Vec<FirstNamedPort<'_>> = Vec::with_capacity(w.named_ports.len());
    for np in &w.named_ports {
        let seen = named
            .iter()
            .any(|n| n.name == np.name && n.protocol == np.protocol);
        if !seen {
            named.push(FirstNamedPort {
                name: &np.name,
                protocol: np.protocol,
                port: np.port,
            });
        }
    }
    named.sort_unstable();
    named
}

/// Per family: which blocks contain the workload's first address of that family.
fn block_membership(w: &Workload, blocks: &[IpBlock]) -> [Vec<bool>; 2] {
    let mut per_family: [Vec<bool>; 2] = [Vec::new(), Vec::new()];
    if blocks.is_empty() {
        return per_family;
    }
    for fam in [Family::V4, Family::V6] {
        if let Some(a) = w.addresses.iter().find(|a| Family::of(a) == fam) {
            per_family[fam.index()] = blocks.iter().map(|b| b.contains(*a)).collect();
        }
    }
    per_family
}

/// The block part of the identity key: membership per family, in the class's family order.
fn key_blocks(class: usize, per_family: &[Vec<bool>; 2], no_blocks: bool) -> Vec<FamilyBlocks> {
    if no_blocks {
        return Vec::new();
    }
    CLASS_FAMILIES[class]
        .iter()
        .map(|fam| FamilyBlocks {
            v4: *fam == Family::V4,
            members: per_family[fam.index()].clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_uses_the_first_source_family_the_destination_has() {
        assert_eq!(pair_family(4, 3), Some(Family::V6));
        assert_eq!(pair_family(3, 4), Some(Family::V4));
        assert_eq!(pair_family(1, 2), None);
        assert_eq!(pair_family(0, 3), None);
        assert_eq!(pair_family(4, 1), Some(Family::V4));
    }
}
