//! The admin tiers in the connectivity map, with the walks' answers cached.
//!
//! A cell of the map walks the source's egress and the destination's ingress. Subjects that the
//! same admin policies select, that NetworkPolicy isolates alike and that have the same families
//! (and named ports, for destinations) walk alike: they form a *group*. What a group's walk sees
//! of the far end is only its membership in the peers of the group's rules, its families and (for
//! egress) its named ports: far ends that agree on those form a *class*, and each (group, class)
//! is walked once for the whole map. Admin policies are few, so groups and classes are few.

use std::collections::HashMap;

use crate::bits::Bits;
use crate::hash::FxBuildHasher;
use crate::model::Direction;
use crate::policy_set::identities::Family;

use super::tiers::{Answer, Fold};
use super::Analyzer;
use crate::policy_set::identities::NamedPortValue;
use crate::policy_set::rules::direction_index;

const NOT_YET: u32 = u32::MAX;

/// Subjects whose walk is the same function of the far end: the same admin policies select
/// them for the direction, they are isolated by NetworkPolicy alike and have the same families
/// (and, for a destination subject, the same named ports, which resolve the rules' ports).
#[derive(Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    policies: Vec<usize>,
    class: usize,
    isolated: bool,
    named_ports: Vec<NamedPortValue>,
}

/// One group of subjects: the far ends' classes (what the group's rules can see of them) and
/// the answer per class.
struct Group {
    /// Far-end identity -> its class: index into `Groups::classes` (`NOT_YET` until first used).
    classes: u32,
    /// Class -> index into `TierCache::answers`.
    answers: Vec<u32>,
    /// The group's rules.
    rules: Vec<usize>,
}

/// The groups of one direction.
#[derive(Default)]
struct Groups {
    /// The far ends' classes per distinct rule list (groups differing only in families or
    /// isolation share them): far-end identity -> class, and the class count.
    classes: Vec<(Vec<u32>, usize)>,
    classes_index: HashMap<Vec<usize>, u32, FxBuildHasher>,
    index: HashMap<GroupKey, u32, FxBuildHasher>,
    list: Vec<Group>,
    /// Subject identity -> its group.
    of: Vec<u32>,
}

/// The cached answers of one map (one family mode).
pub(super) struct TierCache {
    /// `[ingress, egress]`.
    groups: [Groups; 2],
    answers: Vec<Answer>,
    fold: Fold,
}

/// A pair of identities and the family their flow uses.
#[derive(Clone, Copy)]
pub(super) struct TierPair {
    pub(super) src: usize,
    pub(super) dst: usize,
    pub(super) family: Option<Family>,
}

impl Analyzer {
    /// The cache for a map of `atoms` atoms; `None` when no admin policy applies to anyone.
    pub(super) fn tier_cache(&self, atoms: usize) -> Option<TierCache> {
        if !self.tiers.any() {
            return None;
        }
        let groups = [Direction::Ingress, Direction::Egress].map(|d| self.tier_groups(d));
        Some(TierCache {
            groups,
            answers: Vec::new(),
            fold: Fold::new(atoms),
        })
    }

    fn tier_groups(&self, d: Direction) -> Groups {
        let di = direction_index(d);
        let mut g = Groups::default();
        for (x, ident) in self.set.identities.list.iter().enumerate() {
            let policies = self.tiers.of[di][x].clone();
            let (isolated, named_ports) = match d {
                Direction::Ingress => (self.ingress.isolated.get(x), ident.named_ports.clone()),
                Direction::Egress => (self.egress.isolated.get(x), Vec::new()),
            };
            let key = GroupKey {
                policies,
                class: ident.class,
                isolated,
                named_ports,
            };
            let next = u32::try_from(g.list.len()).unwrap_or(NOT_YET);
            let id = *g.index.entry(key).or_insert(next);
            if id == next {
                let rules = self.tiers.rules_of(d, x);
                g.list.push(Group {
                    classes: NOT_YET,
                    answers: Vec::new(),
                    rules,
                });
            }
            g.of.push(id);
        }
        g
    }

    /// Turns NetworkPolicy's atoms of a pair in direction `d` (`out`) into the tiers' answer.
    pub(super) fn tier_apply(
        &self,
        c: &mut TierCache,
        d: Direction,
        p: TierPair,
        isolated: bool,
        out: &mut Bits,
    ) {
        let (subject, peer) = match d {
            Direction::Egress => (p.src, p.dst),
            Direction::Ingress => (p.dst, p.src),
        };
        if !self.tiers.selects(d, subject) {
            return;
        }
        let groups = &mut c.groups[direction_index(d)];
        let group = &mut groups.list[groups.of[subject] as usize];
        if group.classes == NOT_YET {
            let next = u32::try_from(groups.classes.len()).unwrap_or(NOT_YET);
            let id = *groups
                .classes_index
                .entry(group.rules.clone())
                .or_insert(next);
            if id == next {
                groups.classes.push(self.far_classes(d, &group.rules));
            }
            group.classes = id;
            group.answers = vec![NOT_YET; groups.classes[id as usize].1];
        }
        let k = groups.classes[group.classes as usize].0[peer] as usize;
        if group.answers[k] == NOT_YET {
            let answer = self.pair_answer(&mut c.fold, d, p, isolated);
            group.answers[k] = u32::try_from(c.answers.len()).unwrap_or(NOT_YET);
            c.answers.push(answer);
        }
        c.answers[group.answers[k] as usize].apply(out);
    }

    /// Per far-end identity, its class as the rules `rules` of direction `d` see it.
    fn far_classes(&self, d: Direction, rules: &[usize]) -> (Vec<u32>, usize) {
        let mut index: HashMap<(Vec<u64>, usize, Vec<NamedPortValue>), u32, FxBuildHasher> =
            HashMap::default();
        let of = self
            .set
            .identities
            .list
            .iter()
            .enumerate()
            .map(|(y, ident)| {
                let named = match d {
                    // The destination's named ports resolve the egress rules' ports.
                    Direction::Egress => ident.named_ports.clone(),
                    Direction::Ingress => Vec::new(),
                };
                let key = (self.tiers.membership_in(y, rules), ident.class, named);
                let next = u32::try_from(index.len()).unwrap_or(NOT_YET - 1);
                *index.entry(key).or_insert(next)
            })
            .collect();
        (of, index.len())
    }

    /// The walk of the pair's source (egress) or destination (ingress).
    fn pair_answer(&self, fold: &mut Fold, d: Direction, p: TierPair, isolated: bool) -> Answer {
        let (subject, peer) = match d {
            Direction::Egress => (p.src, p.dst),
            Direction::Ingress => (p.dst, p.src),
        };
        self.tiers.answer(fold, d, subject, isolated, |_, r, out| {
            if !r.peer_contains(peer, p.family) {
                return false;
            }
            out.clear();
            self.or_port_atoms(out, r.ports, p.dst);
            true
        })
    }
}
