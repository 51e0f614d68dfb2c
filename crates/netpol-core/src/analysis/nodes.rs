//! Nodes and address families in the bulk analyses.
//!
//! Nodes are endpoints of the truth tables and the map after the workloads (`node/NAME`). The
//! rule for them, as the evaluator applies it: a workload always accepts traffic from its own
//! node; traffic from another node, and traffic from a workload to any node, is traffic of the
//! node's address, which only a rule's ipBlocks (or a rule without peers) admit; nothing isolates
//! a node. Node cells are computed per workload, not per side: a side may group workloads of
//! different families, which pick different node addresses.
//!
//! Families: where two endpoints both have IPv4 and IPv6 addresses, a pair talks over both, and
//! ipBlocks can admit one family and not the other. The analyzer then also answers for each family
//! alone ([`Mode::Only`]), besides the family a flow prefers ([`Mode::Preferred`], the source's
//! first family the destination has, as [`crate::eval::flow_addresses`] picks).

use std::net::{IpAddr, Ipv4Addr};

use crate::bits::Bits;
use crate::model::Cluster;
use crate::policy_set::identities::{address_class, class_has, pair_family, Family};
use crate::policy_set::PolicySet;

use super::query::{PortOk, RulePorts};
use super::tiers::Fold;
use super::{Analyzer, AnalyzerRule};
use crate::model::Direction;

/// Which family a pair's answer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// The family the flow prefers.
    Preferred,
    /// This family alone (pairs that do not both have it get a meaningless answer, never shown).
    Only(Family),
}

impl Mode {
    /// The family a pair of these classes uses in this mode.
    pub(super) fn pair(self, src_class: usize, dst_class: usize) -> Option<Family> {
        match self {
            Mode::Preferred => pair_family(src_class, dst_class),
            Mode::Only(f) => (class_has(src_class, f) && class_has(dst_class, f)).then_some(f),
        }
    }

    /// Whether an endpoint of `class` has no answer of its own in this mode: a per-family answer
    /// is only read for pairs of two dual-stack endpoints (any other pair shares at most one
    /// family, which the preferred answer already uses), so the per-family tables skip the rest.
    pub(super) fn skips(self, class: usize) -> bool {
        match self {
            Mode::Preferred => false,
            Mode::Only(_) => !(class_has(class, Family::V4) && class_has(class, Family::V6)),
        }
    }
}

/// One node as an endpoint.
pub(super) struct NodeEnd {
    addresses: Vec<IpAddr>,
    class: usize,
}

impl NodeEnd {
    /// The address a flow of `family` uses: the first of that family, else the first of all
    /// (what the evaluator uses when the ends share no family).
    fn address(&self, family: Option<Family>) -> Option<IpAddr> {
        family
            .and_then(|f| self.addresses.iter().copied().find(|a| Family::of(a) == f))
            .or_else(|| self.addresses.first().copied())
    }
}

/// The nodes of a cluster and the family facts of every endpoint.
pub(super) struct Nodes {
    pub(super) list: Vec<NodeEnd>,
    /// Workload -> the node it runs on (index into `list`).
    pub(super) node_of: Vec<Option<usize>>,
    /// Workload -> its family class.
    pub(super) class_of: Vec<usize>,
    /// Per family: the identities with an address of it.
    pub(super) family_has: [Bits; 2],
    /// No identity.
    pub(super) none: Bits,
    /// Per endpoint (workloads, then nodes): bit 0 IPv4, bit 1 IPv6.
    pub(super) families: Vec<u8>,
    /// Whether some pair can get different answers per family (then each is computed).
    pub(super) per_family: bool,
}

fn family_bits(addresses: &[IpAddr]) -> u8 {
    addresses
        .iter()
        .fold(0, |b, a| b | (1 << Family::of(a).index()))
}

impl Nodes {
    pub(super) fn new(cluster: &Cluster, set: &PolicySet) -> Self {
        let ic = set.identity_count();
        let mut family_has = [Bits::new(ic), Bits::new(ic)];
        for (id, ident) in set.identities.list.iter().enumerate() {
            for f in [Family::V4, Family::V6] {
                if class_has(ident.class, f) {
                    family_has[f.index()].set(id);
                }
            }
        }
        let mut families: Vec<u8> = cluster
            .workloads
            .iter()
            .map(|w| family_bits(&w.addresses))
            .collect();
        families.extend(cluster.nodes.iter().map(|n| family_bits(&n.addresses)));
        Nodes {
            list: cluster
                .nodes
                .iter()
                .map(|n| NodeEnd {
                    addresses: n.addresses.clone(),
                    class: address_class(&n.addresses),
                })
                .collect(),
            node_of: cluster
                .workloads
                .iter()
                .map(|w| w.node.as_deref().and_then(|n| cluster.node_index(n)))
                .collect(),
            class_of: cluster
                .workloads
                .iter()
                .map(|w| address_class(&w.addresses))
                .collect(),
            family_has,
            none: Bits::new(ic),
            families,
            per_family: false,
        }
    }

    /// Whether workload `w` has no answer of its own in `mode` (see [`Mode::skips`]).
    pub(super) fn workload_skipped(&self, w: usize, mode: Mode) -> bool {
        mode.skips(self.class_of[w])
    }

    /// Whether node `k` has no answer of its own in `mode` (see [`Mode::skips`]).
    pub(super) fn node_skipped(&self, k: usize, mode: Mode) -> bool {
        mode.skips(self.list[k].class)
    }

    /// Endpoint indices of the nodes, by name (the cluster keeps them sorted; ties by index).
    pub(super) fn order(&self, workloads: usize) -> impl Iterator<Item = usize> {
        workloads..workloads + self.list.len()
    }
}

impl AnalyzerRule {
    /// Whether the rule admits a node's address (`None`: a node without one, which only a rule
    /// without peers admits).
    fn admits_node(&self, address: Option<IpAddr>) -> bool {
        self.any_peer || address.is_some_and(|a| self.blocks.iter().any(|b| b.contains(a)))
    }
}

impl Analyzer {
    /// Whether two endpoints with both families exist and some rule has an ipBlock: only then can
    /// a pair's answer depend on the family.
    pub(super) fn families_can_differ(&self) -> bool {
        let dual = self.nodes.families.iter().filter(|&&f| f == 3).count();
        // A dual-stack workload with replicas is a dual-stack pair with itself.
        let dual_replicas = self
            .replicated
            .ones()
            .any(|w| self.nodes.families.get(w) == Some(&3));
        (dual >= 2 || dual_replicas)
            && (self.rules.iter().any(|r| !r.blocks.is_empty())
                || self.tiers.rules.iter().any(|r| r.has_addresses()))
    }

    /// The destinations of identity-level rows in `mode` for a source of `class`: per family,
    /// the identities a flow can reach in it.
    pub(super) fn family_destinations(&self, class: usize, mode: Mode) -> [&Bits; 2] {
        match mode {
            Mode::Preferred => {
                let [d4, d6] = &self.family_dsts[class];
                [d4, d6]
            }
            Mode::Only(f) if class_has(class, f) => match f {
                Family::V4 => [&self.nodes.family_has[0], &self.nodes.none],
                Family::V6 => [&self.nodes.none, &self.nodes.family_has[1]],
            },
            Mode::Only(_) => [&self.nodes.none, &self.nodes.none],
        }
    }

    /// Whether workload `w` may send to node `k` on a port its rules' numeric ports admit
    /// (`numeric[rule]`, and `admin[rule]` for admin rules): its egress only (nothing isolates a
    /// node).
    pub(super) fn workload_to_node(
        &self,
        w: usize,
        k: usize,
        mode: Mode,
        numeric: &[bool],
        admin: &[PortOk],
    ) -> bool {
        let x = self.identity_of[w];
        let isolated = self.egress.isolated.get(x);
        let node = &self.nodes.list[k];
        let address = node.address(mode.pair(self.nodes.class_of[w], node.class));
        let np = || {
            !isolated
                || self.egress.rules_of[x]
                    .iter()
                    .any(|&ri| numeric[ri] && self.rules[ri].admits_node(address))
        };
        let a = admin_address(address);
        // A node has no named container ports: only the numeric part of a rule can match.
        self.tiers
            .allows(Direction::Egress, x, isolated, np, |ri, r| {
                matches!(admin[ri], PortOk::All) && r.matches_address(a)
            })
    }

    /// Whether node `k` may send to workload `v` on one protocol and port (`ok`: what each
    /// rule's ports admit).
    pub(super) fn node_to_workload(
        &self,
        k: usize,
        v: usize,
        mode: Mode,
        ok: RulePorts<'_>,
    ) -> bool {
        let d = self.identity_of[v];
        if self.nodes.node_of[v] == Some(k) {
            return true;
        }
        let isolated = self.ingress.isolated.get(d);
        let node = &self.nodes.list[k];
        let address = node.address(mode.pair(node.class, self.nodes.class_of[v]));
        let np = || {
            !isolated
                || self.ingress.rules_of[d]
                    .iter()
                    .any(|&ri| ok.np[ri].admits(d) && self.rules[ri].admits_node(address))
        };
        let a = admin_address(address);
        self.tiers
            .allows(Direction::Ingress, d, isolated, np, |ri, r| {
                ok.admin[ri].admits(d) && r.matches_address(a)
            })
    }

    /// The atoms workload `w` may send to node `k` on (left in `e`).
    pub(super) fn workload_to_node_atoms(
        &self,
        w: usize,
        k: usize,
        mode: Mode,
        e: &mut Bits,
        all: &Bits,
        fold: &mut Fold,
    ) {
        let x = self.identity_of[w];
        let isolated = self.egress.isolated.get(x);
        let node = &self.nodes.list[k];
        let address = node.address(mode.pair(self.nodes.class_of[w], node.class));
        if isolated {
            e.clear();
            for &ri in &self.egress.rules_of[x] {
                let r = &self.rules[ri];
                if r.admits_node(address) {
                    // A node has no named container ports: only the numeric part can match.
                    e.or_assign(&self.set.port_set(r.ports).base_atoms);
                }
            }
        } else {
            e.clone_from(all);
        }
        let a = admin_address(address);
        self.tiers
            .walk_subject(fold, e, Direction::Egress, x, isolated, |_, r, out| {
                if !r.matches_address(a) {
                    return false;
                }
                out.clone_from(&self.set.port_set(r.ports).base_atoms);
                true
            });
    }

    /// The atoms node `k` may send to workload `v` on (left in `e`), for a node other than
    /// `v`'s own (which may always reach it: the map's node cells give it everything without
    /// asking).
    pub(super) fn node_to_workload_atoms(
        &self,
        k: usize,
        v: usize,
        mode: Mode,
        e: &mut Bits,
        all: &Bits,
        fold: &mut Fold,
    ) {
        let d = self.identity_of[v];
        let isolated = self.ingress.isolated.get(d);
        let node = &self.nodes.list[k];
        let address = node.address(mode.pair(node.class, self.nodes.class_of[v]));
        if isolated {
            e.clear();
            for &ri in &self.ingress.rules_of[d] {
                let r = &self.rules[ri];
                if r.admits_node(address) {
                    self.or_rule_atoms(e, r, d);
                }
            }
        } else {
            e.clone_from(all);
        }
        let a = admin_address(address);
        self.tiers
            .walk_subject(fold, e, Direction::Ingress, d, isolated, |_, r, out| {
                if !r.matches_address(a) {
                    return false;
                }
                out.clear();
                self.or_port_atoms(out, r.ports, d);
                true
            });
    }
}

/// The address an admin rule sees for a node: the evaluator stands the unspecified address in
/// for a node without one.
fn admin_address(address: Option<IpAddr>) -> IpAddr {
    address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}
