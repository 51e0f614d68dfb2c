//! Exposure: which workloads accept connections from outside the cluster, from every workload of
//! every namespace, or from everything, on which ports; and which may reach addresses outside the
//! cluster. Exact: address sets come from the ipBlocks as intervals (see [`AddrSet`]), never from
//! a sampled address, and "every workload" comes from the bitset analyzer.
//!
//! Definitions (what the property tests hold against the plain evaluator):
//! * **outside the cluster**: every address that is neither a workload's nor a node's;
//! * **accepts from outside** (`from_outside`): the `(address, protocol, port)` with the address
//!   outside the cluster that the workload's ingress side admits (its own policies; the sender has
//!   none);
//! * **reaches outside** (`to_outside`): the same for the workload's egress side;
//! * **accepts from every namespace** (`from_every_namespace`): the ports on which the ingress side
//!   admits every other workload of the cluster, over the address family the evaluator picks for
//!   the pair (the sender's own egress policies are not the receiver's exposure); empty when the
//!   cluster has no other workload;
//! * **accepts from everything** (`from_everything`): the ports in both of the above with every
//!   outside address.

mod addresses;
mod tiers;

use std::sync::Arc;

use serde::Serialize;

use crate::analysis::workload_order;
use crate::model::{Cluster, EvalOptions, Protocol, WorkloadKind};

pub use crate::lint::AddrSet;
pub use addresses::{accepted_from_outside, reach_outside, AddressGrant, Universe};

/// Inclusive port ranges per protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortRanges {
    /// TCP ranges.
    #[serde(rename = "TCP")]
    pub tcp: Vec<(u16, u16)>,
    /// UDP ranges.
    #[serde(rename = "UDP")]
    pub udp: Vec<(u16, u16)>,
    /// SCTP ranges.
    #[serde(rename = "SCTP")]
    pub sctp: Vec<(u16, u16)>,
}

impl PortRanges {
    /// The ranges of one protocol.
    pub fn get(&self, p: Protocol) -> &[(u16, u16)] {
        match p {
            Protocol::Tcp => &self.tcp,
            Protocol::Udp => &self.udp,
            Protocol::Sctp => &self.sctp,
        }
    }

    fn get_mut(&mut self, p: Protocol) -> &mut Vec<(u16, u16)> {
        match p {
            Protocol::Tcp => &mut self.tcp,
            Protocol::Udp => &mut self.udp,
            Protocol::Sctp => &mut self.sctp,
        }
    }

    /// Whether no port of any protocol is in it.
    pub fn is_empty(&self) -> bool {
        Protocol::ALL.iter().all(|p| self.get(*p).is_empty())
    }

    /// Whether `port` of `protocol` is in it.
    pub fn contains(&self, protocol: Protocol, port: u16) -> bool {
        self.get(protocol)
            .iter()
            .any(|&(lo, hi)| lo <= port && port <= hi)
    }
}

/// What one workload exposes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkloadExposure {
    /// Index into `Cluster::workloads`.
    #[serde(skip)]
    pub index: usize,
    /// Its kind.
    pub kind: WorkloadKind,
    /// `namespace/name`.
    pub workload: String,
    /// Ports open to every workload and every address outside the cluster.
    pub from_everything: PortRanges,
    /// Ports open to every other workload of the cluster (including `from_everything`).
    pub from_every_namespace: PortRanges,
    /// Outside addresses and the ports they may connect to.
    pub from_outside: Vec<AddressGrant>,
    /// Outside addresses and the ports the workload may connect to.
    pub to_outside: Vec<AddressGrant>,
}

impl WorkloadExposure {
    /// Whether the workload exposes nothing of the four kinds.
    pub fn is_closed(&self) -> bool {
        self.from_every_namespace.is_empty()
            && self.from_outside.is_empty()
            && self.to_outside.is_empty()
    }
}

/// The exposure of every workload, in output order (`namespace/name`, then kind).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Exposure {
    /// Every workload, closed ones included.
    pub workloads: Vec<WorkloadExposure>,
    /// The addresses counted as outside the cluster: everything but the workloads' and nodes'.
    #[serde(skip)]
    pub outside: Arc<AddrSet>,
}

/// Computes the exposure of every workload.
pub fn exposure(cluster: &Cluster, opts: EvalOptions) -> Exposure {
    let universe = Universe::of(cluster);
    let every = every_workload::from_every_workload(cluster, opts);
    let workloads = workload_order(cluster)
        .into_iter()
        .map(|i| {
            let w = &cluster.workloads[i];
            let from_outside = accepted_from_outside(cluster, i, &universe);
            let to_outside = reach_outside(cluster, i, &universe);
            let from_every_namespace = every[i].clone();
            let from_everything = everything(&from_every_namespace, &from_outside);
            WorkloadExposure {
                index: i,
                kind: w.kind,
                workload: w.key(),
                from_everything,
                from_every_namespace,
                from_outside,
                to_outside,
            }
        })
        .collect();
    Exposure {
        workloads,
        outside: universe.outside,
    }
}

/// The ports of `every_namespace` that the grants also open to every outside address.
fn everything(every_namespace: &PortRanges, grants: &[AddressGrant]) -> PortRanges {
    let mut out = PortRanges::default();
    for p in Protocol::ALL {
        let open: Vec<(u16, u16)> = grants
            .iter()
            .filter(|g| g.protocol == p && g.anywhere)
            .flat_map(|g| g.ports.iter().copied())
            .collect();
        *out.get_mut(p) = intersect(every_namespace.get(p), &merge(open));
    }
    out
}

/// Sorted, merged ranges.
pub(crate) fn merge(mut ranges: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    ranges.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// The intersection of two sorted merged range lists.
pub(crate) fn intersect(a: &[(u16, u16)], b: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if lo <= hi {
            out.push((lo, hi));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

mod every_workload {
    //! "From every workload of every namespace", from the analyzer's map of a copy of the
    //! cluster without egress isolation (so only the receiver's ingress side decides).

    use super::{intersect, PortRanges};
    use crate::analysis::Analyzer;
    use crate::model::{Cluster, EvalOptions, Protocol};

    pub(super) fn from_every_workload(cluster: &Cluster, opts: EvalOptions) -> Vec<PortRanges> {
        let n = cluster.workloads.len();
        if n < 2 {
            return vec![PortRanges::default(); n];
        }
        let mut ingress_only = cluster.clone();
        for p in &mut ingress_only.policies {
            p.affects_egress = false;
            p.egress.clear();
        }
        for p in &mut ingress_only.admin_policies {
            p.egress.clear();
        }
        let map = Analyzer::new(&ingress_only, opts).connectivity_map();
        // Sources that behave the same give the same row: intersect over one per source side,
        // except that a workload alone in its side must not count itself.
        let mut side_members: Vec<Vec<usize>> = Vec::new();
        for w in 0..n {
            let s = map.src_of[w];
            if side_members.len() <= s {
                side_members.resize(s + 1, Vec::new());
            }
            side_members[s].push(w);
        }
        (0..n)
            .map(|dst| {
                let mut out = PortRanges::default();
                for p in Protocol::ALL {
                    let mut acc = vec![(1u16, 65535u16)];
                    for members in &side_members {
                        let Some(&src) = members.iter().find(|&&m| m != dst) else {
                            continue;
                        };
                        acc = intersect(&acc, map.ports(src, dst, p));
                        if acc.is_empty() {
                            break;
                        }
                    }
                    match p {
                        Protocol::Tcp => out.tcp = acc,
                        Protocol::Udp => out.udp = acc,
                        Protocol::Sctp => out.sctp = acc,
                    }
                }
                out
            })
            .collect()
    }
}
