//! Sides: identities that behave the same as a source (same egress rules, same membership in
//! every ingress rule's peers) share a source side; likewise for destinations (same ingress
//! rules, named ports, membership in every egress rule's peers). Rows are computed once per source
//! side, columns of the map once per destination side.

use std::collections::HashMap;

use crate::bits::Bits;
use crate::hash::FxBuildHasher;
use crate::model::Direction;
use crate::policy_set::identities::NamedPortValue;
use crate::policy_set::rules::direction_index;

use super::{Analyzer, AnalyzerRule, Isolation};

/// What identities of one side share.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SideKey {
    /// The family class, when ipBlocks make families matter (else 0).
    class: usize,
    isolated: bool,
    /// The rules deciding this direction for it.
    rules: Vec<usize>,
    /// Its named ports (destinations only).
    named_ports: Vec<NamedPortValue>,
    /// Its membership in the peers of every rule of the other direction.
    membership: Vec<u64>,
    /// The admin policies selecting it for this direction (indices, walk order).
    tiers: Vec<usize>,
    /// Its membership in the peers of every admin rule of the other direction.
    tier_membership: Vec<u64>,
}

/// Identity -> side, and each side's representative identity, for both roles.
#[derive(Default)]
pub(super) struct Sides {
    pub(super) src_side: Vec<usize>,
    pub(super) src_reps: Vec<usize>,
    pub(super) dst_side: Vec<usize>,
    pub(super) dst_reps: Vec<usize>,
}

/// Interns side keys, remembering each side's first identity.
#[derive(Default)]
struct SideIndex {
    index: HashMap<SideKey, usize, FxBuildHasher>,
    side: Vec<usize>,
    reps: Vec<usize>,
}

impl SideIndex {
    fn add(&mut self, identity: usize, key: SideKey) {
        let next = self.reps.len();
        let side = *self.index.entry(key).or_insert(next);
        if side == next {
            self.reps.push(identity);
        }
        self.side.push(side);
    }
}

impl Sides {
    pub(super) fn new(a: &Analyzer) -> Self {
        let any_ip = a.rules.iter().any(|r| r.has_ip_peers)
            || a.tiers.rules.iter().any(|r| r.has_addresses());
        let mut src = SideIndex::default();
        let mut dst = SideIndex::default();
        for (x, ident) in a.set.identities.list.iter().enumerate() {
            let class = if any_ip { ident.class } else { 0 };
            let src_key = side_key(a, x, class, &a.egress, &a.ingress, Vec::new());
            src.add(x, with_tiers(a, src_key, x, Direction::Egress));
            let named = ident.named_ports.clone();
            let dst_key = side_key(a, x, class, &a.ingress, &a.egress, named);
            dst.add(x, with_tiers(a, dst_key, x, Direction::Ingress));
        }
        Sides {
            src_side: src.side,
            src_reps: src.reps,
            dst_side: dst.side,
            dst_reps: dst.reps,
        }
    }
}

fn side_key(
    a: &Analyzer,
    x: usize,
    class: usize,
    own: &Isolation,
    other: &Isolation,
    named_ports: Vec<NamedPortValue>,
) -> SideKey {
    SideKey {
        class,
        isolated: own.isolated.get(x),
        rules: own.rules_of[x].clone(),
        named_ports,
        membership: membership(&a.rules, x, &other.rules),
        tiers: Vec::new(),
        tier_membership: Vec::new(),
    }
}

/// Adds what the admin tiers know of identity `x` as a subject of `own` (its policies) and as a
/// peer of the other direction's rules.
fn with_tiers(a: &Analyzer, mut key: SideKey, x: usize, own: Direction) -> SideKey {
    if a.tiers.any() {
        key.tiers = a.tiers.of[direction_index(own)][x].clone();
        let other = match own {
            Direction::Ingress => Direction::Egress,
            Direction::Egress => Direction::Ingress,
        };
        key.tier_membership = a.tiers.membership(x, other);
    }
    key
}

/// Identity `x`'s membership in the peers of each rule of `list`: selectors, IPv4 and IPv6 blocks.
fn membership(rules: &[AnalyzerRule], x: usize, list: &[usize]) -> Vec<u64> {
    let mut b = Bits::new(list.len() * 3);
    for (k, &ri) in list.iter().enumerate() {
        let r = &rules[ri];
        if r.selected_peers.get(x) {
            b.set(3 * k);
        }
        if r.has_ip_peers && r.ip_peers[0].get(x) {
            b.set(3 * k + 1);
        }
        if r.has_ip_peers && r.ip_peers[1].get(x) {
            b.set(3 * k + 2);
        }
    }
    b.words().to_vec()
}
