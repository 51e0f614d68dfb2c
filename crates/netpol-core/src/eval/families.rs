//! One flow per address family: a dual-stack pair talks over IPv4 and over IPv6, and an ipBlock
//! admits only addresses of its own family (`0.0.0.0/0` admits no IPv6 address), so the two
//! answers can differ. [`evaluate_ends`] answers for every family both ends can use, or for
//! exactly the addresses given.

use std::net::IpAddr;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::{evaluate_at, evaluate_replicas_at, Endpoint, Verdict};
use crate::model::{address_of_family, families_of, Cluster, EvalOptions, IpFamily, Protocol};

/// One end of a flow as a person names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowEnd {
    /// A workload (by index into [`Cluster::workloads`]), using exactly `address` when given,
    /// else its address of the flow's family.
    Workload {
        /// Index into [`Cluster::workloads`].
        index: usize,
        /// The exact address to use (an IP reference names the family too).
        address: Option<IpAddr>,
    },
    /// A node (by index into [`Cluster::nodes`]), using its first address of the flow's family.
    Node(usize),
    /// An address that is no workload's (a node's, or one outside the cluster).
    Address(IpAddr),
}

impl FlowEnd {
    /// The families this end can use, in its order of preference; `None` when any family would
    /// do (a workload or node without addresses).
    fn families(&self, cluster: &Cluster) -> Vec<IpFamily> {
        match self {
            FlowEnd::Workload {
                address: Some(a), ..
            }
            | FlowEnd::Address(a) => vec![IpFamily::of(a)],
            FlowEnd::Workload { index, .. } => cluster
                .workloads
                .get(*index)
                .map_or(Vec::new(), |w| families_of(&w.addresses)),
            FlowEnd::Node(n) => cluster
                .nodes
                .get(*n)
                .map_or(Vec::new(), |n| families_of(&n.addresses)),
        }
    }

    /// The evaluator's endpoint and pinned address for a flow of `family` (`None`: unpinned).
    fn resolve(&self, cluster: &Cluster, family: Option<IpFamily>) -> (Endpoint, Option<IpAddr>) {
        match *self {
            FlowEnd::Workload { index, address } => {
                let pinned = address.or_else(|| {
                    let w = cluster.workloads.get(index)?;
                    address_of_family(&w.addresses, family?)
                });
                (Endpoint::Workload(index), pinned)
            }
            FlowEnd::Address(a) => (Endpoint::External(a), None),
            FlowEnd::Node(n) => {
                let addresses = cluster.nodes.get(n).map_or(&[][..], |n| &n.addresses[..]);
                let a = family
                    .and_then(|f| address_of_family(addresses, f))
                    .or_else(|| addresses.first().copied());
                // A node without any address cannot be a peer of an evaluation by address; the
                // unspecified address stands for it (no ipBlock a policy can write contains only it).
                (
                    Endpoint::External(a.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))),
                    None,
                )
            }
        }
    }

    fn is_plain(&self) -> bool {
        matches!(
            self,
            FlowEnd::Workload { address: None, .. } | FlowEnd::Address(_)
        )
    }
}

/// The verdicts of one flow, one per address family it can use (one when both ends share a single
/// family, or when the addresses were given exactly).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyVerdicts {
    /// `(family, verdict)`, in the source's order of families; the family is `None` when the ends
    /// share no family (no address on one of them).
    pub verdicts: Vec<(Option<IpFamily>, Verdict)>,
}

impl FamilyVerdicts {
    /// Whether the flow is allowed over every family it can use.
    pub fn allowed(&self) -> bool {
        self.verdicts.iter().all(|(_, v)| v.allowed)
    }

    /// Whether the families disagree (allowed over one, denied over the other).
    pub fn differs(&self) -> bool {
        self.verdicts
            .windows(2)
            .any(|w| w[0].1.allowed != w[1].1.allowed)
    }

    /// The verdict that stands for all: the first family's when they agree.
    pub fn first(&self) -> Option<&Verdict> {
        self.verdicts.first().map(|(_, v)| v)
    }

    /// The verdicts as text: the one verdict's explanation when the families agree, else a
    /// headline saying which family allows and each family's explanation.
    pub fn explain(&self) -> String {
        match self.verdicts.as_slice() {
            [] => String::new(),
            [(_, v)] => v.explain(),
            [(_, first), ..] if !self.differs() => first.explain(),
            all @ [(_, first), ..] => {
                let parts: Vec<String> = all
                    .iter()
                    .map(|(f, v)| {
                        format!(
                            "{} over {}",
                            if v.allowed { "allowed" } else { "denied" },
                            f.map_or("-", IpFamily::as_str)
                        )
                    })
                    .collect();
                let mut out = format!(
                    "DIFFERS BY FAMILY  {} -> {}  {}/{}: {}\n",
                    first.src,
                    first.dst,
                    first.protocol,
                    first.port,
                    parts.join(", ")
                );
                for (f, v) in all {
                    out.push_str(&format!(
                        "{}: {}",
                        f.map_or("-", IpFamily::as_str),
                        v.explain()
                    ));
                }
                out
            }
        }
    }
}

/// Families that agree serialize as the first family's verdict (the single-stack document,
/// unchanged); families that differ as
/// `{"allowed": false, "families": {"IPv4": verdict, "IPv6": verdict}}`.
impl Serialize for FamilyVerdicts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct ByFamily<'a>(&'a [(Option<IpFamily>, Verdict)]);
        impl Serialize for ByFamily<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (f, v) in self.0 {
                    m.serialize_entry(f.map_or("-", IpFamily::as_str), v)?;
                }
                m.end()
            }
        }
        match self.verdicts.as_slice() {
            [(_, v), ..] if !self.differs() => v.serialize(s),
            all => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("allowed", &self.allowed())?;
                m.serialize_entry("families", &ByFamily(all))?;
                m.end()
            }
        }
    }
}

/// Evaluates a flow between two named ends over every address family both can use.
///
/// Ends given as exact addresses fix the family. Otherwise a pair of dual-stack ends gets one
/// verdict per family (source's order); a pair sharing one family gets one verdict, the same as
/// [`super::evaluate`] gives.
///
/// Both ends naming one workload that runs as several instances is a flow between two of its
/// replicas ([`super::evaluate_replicas`]), unless both name the same exact address (an instance
/// reaching its own address, always allowed, as for a single-instance workload).
pub fn evaluate_ends(
    cluster: &Cluster,
    opts: EvalOptions,
    src: &FlowEnd,
    dst: &FlowEnd,
    protocol: Protocol,
    port: u16,
) -> FamilyVerdicts {
    let dst_families = dst.families(cluster);
    let shared: Vec<IpFamily> = src
        .families(cluster)
        .into_iter()
        .filter(|f| dst_families.contains(f))
        .collect();
    let replicas = replica_pair(cluster, src, dst);
    let flow =
        |(s, sp): (Endpoint, Option<IpAddr>), (d, dp): (Endpoint, Option<IpAddr>)| match replicas {
            Some(w) => evaluate_replicas_at(cluster, opts, w, sp, dp, protocol, port),
            None => evaluate_at(cluster, opts, (&s, sp), (&d, dp), protocol, port),
        };
    if src.is_plain() && dst.is_plain() && shared.len() <= 1 {
        let (s, _) = src.resolve(cluster, None);
        let (d, _) = dst.resolve(cluster, None);
        let v = flow((s, None), (d, None));
        return FamilyVerdicts {
            verdicts: vec![(shared.first().copied(), v)],
        };
    }
    let families: Vec<Option<IpFamily>> = if shared.is_empty() {
        vec![None]
    } else {
        shared.into_iter().map(Some).collect()
    };
    let verdicts = families
        .into_iter()
        .map(|f| (f, flow(src.resolve(cluster, f), dst.resolve(cluster, f))))
        .collect();
    FamilyVerdicts { verdicts }
}

/// The workload both ends name when the flow is between two of its replicas: it runs as several
/// instances, and the ends are not pinned to one and the same address.
fn replica_pair(cluster: &Cluster, src: &FlowEnd, dst: &FlowEnd) -> Option<usize> {
    let (
        FlowEnd::Workload {
            index: a,
            address: sa,
        },
        FlowEnd::Workload {
            index: b,
            address: da,
        },
    ) = (src, dst)
    else {
        return None;
    };
    let own_address = sa.is_some() && sa == da;
    let replicated = cluster.workloads.get(*a).is_some_and(|w| w.has_replicas());
    (a == b && replicated && !own_address).then_some(*a)
}
