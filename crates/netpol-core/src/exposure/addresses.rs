//! The outside-the-cluster part of exposure: per protocol, the port ranges and the exact address
//! set a workload's ingress (or egress) side admits, grouped so that each port range appears with
//! the union of every address any rule admits on it.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::eval::{policy_selects, tier_policies};
use crate::lint::AddrSet;
use crate::model::{Cluster, Direction, Peer, PortSpec, Protocol, Rule, Workload};

/// Ports of one protocol open to a set of outside addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AddressGrant {
    /// The protocol.
    pub protocol: Protocol,
    /// Inclusive port ranges, sorted and merged.
    pub ports: Vec<(u16, u16)>,
    /// Exactly the addresses (outside the cluster) admitted on those ports, shared with every
    /// other grant of the report that has the same set (most are "every outside address",
    /// thousands of intervals on a large cluster: one copy, not one per grant).
    #[serde(skip)]
    pub addresses: Arc<AddrSet>,
    /// `addresses` for people: the fewest CIDRs that, minus the workloads' and nodes'
    /// addresses, are exactly `addresses` (so `192.0.2.0/24` even when a node holds 192.0.2.7).
    pub blocks: Vec<String>,
    /// Whether `addresses` is every address outside the cluster.
    pub anywhere: bool,
}

/// One rule's contribution: a protocol's port range and the addresses admitted on it.
struct Piece {
    protocol: Protocol,
    lo: u16,
    hi: u16,
    addresses: Arc<AddrSet>,
    /// `addresses` is every outside address (unions with it need no work).
    anywhere: bool,
}

/// What `(addresses, ports)` a rule admits to or from outside addresses, with named ports resolved
/// on `dst` (`None` when the destination is an address: a named port then matches nothing).
fn rule_pieces(
    rule: &Rule,
    key: Option<RuleKey>,
    universe: &Universe,
    dst: Option<&Workload>,
    out: &mut Vec<Piece>,
) {
    let anywhere = rule.peers.is_empty();
    let addresses = if anywhere {
        Arc::clone(&universe.outside)
    } else {
        universe.rule_addresses(rule, key)
    };
    if addresses.is_empty() {
        return;
    }
    if rule.ports.is_empty() {
        for protocol in Protocol::ALL {
            out.push(Piece {
                protocol,
                lo: 1,
                hi: 65535,
                addresses: Arc::clone(&addresses),
                anywhere,
            });
        }
        return;
    }
    for entry in &rule.ports {
        let (lo, hi) = match &entry.port {
            None => (1, 65535),
            Some(PortSpec::Number(n)) => (*n, *n),
            Some(PortSpec::Range { start, end }) => (*start, *end),
            Some(PortSpec::Named(name)) => {
                match dst.and_then(|d| d.resolve_named_port(name, entry.protocol)) {
                    Some(p) => (p, p),
                    None => continue,
                }
            }
        };
        out.push(Piece {
            protocol: entry.protocol,
            lo: lo.max(1),
            hi,
            addresses: Arc::clone(&addresses),
            anywhere,
        });
    }
}

/// Cuts the pieces at every boundary and unions the addresses per elementary range, then groups
/// them ([`group_ranges`]).
fn grants(pieces: &[Piece], universe: &Universe) -> Vec<AddressGrant> {
    let mut ranges: Vec<ElementaryRange> = Vec::new();
    for protocol in Protocol::ALL {
        let mine: Vec<&Piece> = pieces.iter().filter(|p| p.protocol == protocol).collect();
        let mut cuts: Vec<u32> = mine
            .iter()
            .flat_map(|p| [u32::from(p.lo), u32::from(p.hi) + 1])
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        for pair in cuts.windows(2) {
            let (lo, hi) = (pair[0], pair[1] - 1);
            let covering: Vec<&Piece> = mine
                .iter()
                .copied()
                .filter(|p| u32::from(p.lo) <= lo && hi <= u32::from(p.hi))
                .collect();
            let union = union_of(&covering, universe);
            ranges.push((protocol, clamp(lo), clamp(hi), union));
        }
    }
    group_ranges(ranges, universe)
}

/// The union of the pieces' addresses: shared, not copied, when one piece (or every outside
/// address) decides it; a computed union is interned.
fn union_of(covering: &[&Piece], universe: &Universe) -> Arc<AddrSet> {
    if covering.iter().any(|p| p.anywhere) {
        return Arc::clone(&universe.outside);
    }
    match covering {
        [] => universe.intern(AddrSet::empty()),
        [one] => Arc::clone(&one.addresses),
        [first, rest @ ..] => {
            let union = rest
                .iter()
                .fold((*first.addresses).clone(), |acc, p| acc.union(&p.addresses));
            universe.intern(union)
        }
    }
}

/// A protocol's elementary port range (`lo..=hi`, no rule boundary inside) and the outside
/// addresses admitted on it.
pub(super) type ElementaryRange = (Protocol, u16, u16, Arc<AddrSet>);

/// Elementary port ranges (in port order per protocol) with the outside addresses admitted on
/// each, as grants: empty ones left out, neighbouring ranges with the same addresses merged, one
/// grant per protocol and distinct address set with all its ranges.
pub(super) fn group_ranges(ranges: Vec<ElementaryRange>, universe: &Universe) -> Vec<AddressGrant> {
    let outside = &universe.outside;
    let mut out: Vec<AddressGrant> = Vec::new();
    for protocol in Protocol::ALL {
        let mut merged: Vec<(u16, u16, Arc<AddrSet>)> = Vec::new();
        for (_, lo, hi, addresses) in ranges.iter().filter(|r| r.0 == protocol) {
            if addresses.is_empty() {
                continue;
            }
            match merged.last_mut() {
                Some(last) if u32::from(last.1) + 1 == u32::from(*lo) && &last.2 == addresses => {
                    last.1 = *hi
                }
                _ => merged.push((*lo, *hi, Arc::clone(addresses))),
            }
        }
        let mut by_set: Vec<AddressGrant> = Vec::new();
        for (lo, hi, addresses) in merged {
            match by_set.iter_mut().find(|g| g.addresses == addresses) {
                Some(g) => g.ports.push((lo, hi)),
                None => by_set.push(AddressGrant {
                    protocol,
                    ports: vec![(lo, hi)],
                    anywhere: Arc::ptr_eq(&addresses, outside) || &addresses == outside,
                    blocks: display_blocks(&addresses, universe),
                    addresses,
                }),
            }
        }
        out.extend(by_set);
    }
    out
}

/// The CIDRs of `addresses` with the cluster's own addresses filled back in, keeping only those
/// that hold some of `addresses`.
fn display_blocks(addresses: &AddrSet, universe: &Universe) -> Vec<String> {
    if addresses == &*universe.outside {
        return vec!["0.0.0.0/0".into(), "::/0".into()];
    }
    addresses
        .union(&universe.inside)
        .keep_overlapping(addresses)
        .to_cidrs()
        .into_iter()
        .filter(|net| addresses.overlaps(net))
        .map(|net| net.to_string())
        .collect()
}

fn clamp(p: u32) -> u16 {
    u16::try_from(p).unwrap_or(u16::MAX)
}

/// The grants of one direction of workload `index`: everything when no policy isolates it.
fn side(cluster: &Cluster, index: usize, d: Direction, universe: &Universe) -> Vec<AddressGrant> {
    let w = &cluster.workloads[index];
    let tiers = tier_policies(cluster, w, d);
    if !tiers.is_empty() {
        return super::tiers::tiered_side(cluster, index, d, tiers, universe);
    }
    let isolating: Vec<(usize, &crate::model::Policy)> = cluster
        .policies
        .iter()
        .enumerate()
        .filter(|(_, p)| p.affects(d) && policy_selects(p, w))
        .collect();
    let mut pieces = Vec::new();
    if isolating.is_empty() {
        rule_pieces(&Rule::default(), None, universe, Some(w), &mut pieces);
    }
    let dst = match d {
        Direction::Ingress => Some(w),
        Direction::Egress => None,
    };
    for (pi, p) in isolating {
        for (ri, rule) in p.rules(d).iter().enumerate() {
            rule_pieces(rule, Some((pi, d, ri)), universe, dst, &mut pieces);
        }
    }
    grants(&pieces, universe)
}

/// What workload `index` accepts from addresses outside the cluster.
pub fn accepted_from_outside(
    cluster: &Cluster,
    index: usize,
    universe: &Universe,
) -> Vec<AddressGrant> {
    side(cluster, index, Direction::Ingress, universe)
}

/// Which addresses outside the cluster workload `index` may connect to, on which ports.
pub fn reach_outside(cluster: &Cluster, index: usize, universe: &Universe) -> Vec<AddressGrant> {
    side(cluster, index, Direction::Egress, universe)
}

/// A rule by policy index, direction and index in that direction's list.
type RuleKey = (usize, Direction, usize);

/// The cluster's own addresses (workloads' and nodes') and every other address; it remembers
/// the outside addresses of each rule of the cluster it was built from, which every workload the
/// rule's policy selects asks for again, and holds one copy of each distinct address set the
/// grants use (interned), so a report's memory is the distinct sets, not one set per grant.
#[derive(Clone, Debug)]
pub struct Universe {
    /// Every address that is neither a workload's nor a node's (the one copy every "anywhere"
    /// grant shares).
    pub outside: Arc<AddrSet>,
    /// The workloads' and nodes' addresses.
    pub inside: AddrSet,
    rules: RefCell<HashMap<RuleKey, Arc<AddrSet>>>,
    interned: RefCell<HashSet<Arc<AddrSet>>>,
    /// Raw (cluster addresses not taken out) sets of the tiers' walk and their outside part.
    outside_of_raw: RefCell<HashMap<AddrSet, Arc<AddrSet>>>,
}

impl Universe {
    /// The universe of `cluster`.
    pub fn of(cluster: &Cluster) -> Self {
        let inside = AddrSet::of_addresses(
            cluster
                .workloads
                .iter()
                .flat_map(|w| w.addresses.iter())
                .chain(cluster.nodes.iter().flat_map(|n| n.addresses.iter())),
        );
        let outside = Arc::new(AddrSet::everything().minus(&inside));
        Universe {
            outside,
            inside,
            rules: RefCell::new(HashMap::new()),
            interned: RefCell::new(HashSet::new()),
            outside_of_raw: RefCell::new(HashMap::new()),
        }
    }

    /// The one shared copy of `set` (every outside address is [`Universe::outside`]).
    pub(super) fn intern(&self, set: AddrSet) -> Arc<AddrSet> {
        if set == *self.outside {
            return Arc::clone(&self.outside);
        }
        let mut interned = self.interned.borrow_mut();
        if let Some(found) = interned.get(&set) {
            return Arc::clone(found);
        }
        let shared = Arc::new(set);
        interned.insert(Arc::clone(&shared));
        shared
    }

    /// The outside part of a raw address set (the cluster's own addresses taken out), computed
    /// once per distinct raw set of the whole report.
    pub(super) fn outside_of_raw(&self, raw: AddrSet) -> Arc<AddrSet> {
        if let Some(found) = self.outside_of_raw.borrow().get(&raw) {
            return Arc::clone(found);
        }
        let outside = self.intern(raw.minus(&self.inside));
        self.outside_of_raw
            .borrow_mut()
            .insert(raw, Arc::clone(&outside));
        outside
    }

    /// The outside addresses a rule's ipBlocks admit, once per rule of the cluster.
    fn rule_addresses(&self, rule: &Rule, key: Option<RuleKey>) -> Arc<AddrSet> {
        if let Some(found) = key.and_then(|k| self.rules.borrow().get(&k).cloned()) {
            return found;
        }
        let mut s = AddrSet::empty();
        for peer in &rule.peers {
            if let Peer::IpBlock(b) = peer {
                s = s.union(&AddrSet::of_block(b));
            }
        }
        let s = self.intern(s.minus(&self.inside));
        if let Some(k) = key {
            self.rules.borrow_mut().insert(k, Arc::clone(&s));
        }
        s
    }
}
