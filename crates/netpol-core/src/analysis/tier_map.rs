//! The admin tiers in the connectivity map, with the walks' answers cached.
//!
//! A cell of the map walks the source's egress and the destination's ingress. Subjects that the
//! same admin policies select, that NetworkPolicy isolates alike and that have the same families
//! (and named ports, for destinations) walk alike: they form a *group*. What a group's walk sees
//! of the far end is only its membership in the peers of the group's rules, its families and (for
//! egress) its named ports: far ends that agree on those form a *class*, and each (group, class)
//! is walked once for the whole map. Admin policies are few, so groups and classes are few.
//!
//! The map asks for millions of pairs, so the cost that counts is the lookup, not the walk. A row
//! of the map is one source: its egress group is fixed, so egress reads the far end's class and
//! the group's answer for it (two reads in small arrays); ingress groups vary along the row while
//! the far end (the source) is fixed, so ingress keeps a dense `[far end][group]` table of
//! answers, which a row reads within one stretch of memory. The answers themselves are words in
//! one array: a pair costs two or three reads and two word operations per direction.

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
    /// Index into `Groups::classes` (`NOT_YET` until first used).
    classes: u32,
    /// Class -> index into `TierCache::answers` (`NOT_YET` until walked).
    answers: Vec<u32>,
    /// The group's rules.
    rules: Vec<usize>,
}

/// The far ends' classes as one rule list sees them.
struct FarClasses {
    /// Far-end identity -> class.
    of: Vec<u32>,
    count: usize,
}

/// The groups of one direction.
struct Groups {
    /// The far ends' classes per distinct rule list (groups differing only in families or
    /// isolation share them).
    classes: Vec<FarClasses>,
    classes_index: HashMap<Vec<usize>, u32, FxBuildHasher>,
    list: Vec<Group>,
    /// Subject identity -> its group; `NOT_YET` when no admin policy selects it.
    of: Vec<u32>,
    /// Ingress only: `[far end][group]` -> index into `TierCache::answers`, `NOT_YET` until
    /// asked (empty for egress, whose rows read the classes).
    answer_of: Vec<u32>,
    direction: Direction,
}

impl Groups {
    /// The answer of group `g` for far end `far` if it has been walked.
    #[inline]
    fn known(&self, g: usize, far: usize) -> u32 {
        match self.direction {
            Direction::Ingress => self.answer_of[far * self.list.len() + g],
            Direction::Egress => {
                let group = &self.list[g];
                match self.classes.get(group.classes as usize) {
                    Some(classes) => group.answers[classes.of[far] as usize],
                    None => NOT_YET,
                }
            }
        }
    }

    /// Records the answer `id` of group `g` for far end `far` (the class's answer is recorded by
    /// the walk).
    fn remember(&mut self, g: usize, far: usize, id: u32) {
        if self.direction == Direction::Ingress {
            let groups = self.list.len();
            self.answer_of[far * groups + g] = id;
        }
    }
}

/// The walks' answers, each the words of `accepted` then of `rest` (see [`Answer`]).
struct AnswerWords {
    words: usize,
    data: Vec<u64>,
}

impl AnswerWords {
    fn push(&mut self, a: &Answer) -> u32 {
        let id = u32::try_from(self.data.len() / (2 * self.words).max(1)).unwrap_or(NOT_YET);
        self.data.extend_from_slice(a.accepted().words());
        self.data.extend_from_slice(a.rest().words());
        id
    }

    /// Turns NetworkPolicy's answer `out` into the tiers' answer `id`.
    #[inline]
    fn apply(&self, id: u32, out: &mut Bits) {
        let start = id as usize * 2 * self.words;
        let accepted = &self.data[start..start + self.words];
        let rest = &self.data[start + self.words..start + 2 * self.words];
        out.and_or_words(rest, accepted);
    }
}

/// The cached answers of one map (one family mode).
pub(super) struct TierCache {
    /// `[ingress, egress]`.
    groups: [Groups; 2],
    answers: AnswerWords,
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
            answers: AnswerWords {
                words: atoms.div_ceil(64),
                data: Vec::new(),
            },
            fold: Fold::new(atoms),
        })
    }

    fn tier_groups(&self, d: Direction) -> Groups {
        let identities = self.set.identities.list.len();
        let mut index: HashMap<GroupKey, u32, FxBuildHasher> = HashMap::default();
        let mut g = Groups {
            classes: Vec::new(),
            classes_index: HashMap::default(),
            list: Vec::new(),
            of: Vec::with_capacity(identities),
            answer_of: Vec::new(),
            direction: d,
        };
        for (x, ident) in self.set.identities.list.iter().enumerate() {
            if !self.tiers.selects(d, x) {
                g.of.push(NOT_YET);
                continue;
            }
            let (isolated, named_ports) = match d {
                Direction::Ingress => (self.ingress.isolated.get(x), ident.named_ports.clone()),
                Direction::Egress => (self.egress.isolated.get(x), Vec::new()),
            };
            let key = GroupKey {
                policies: self.tiers.of[direction_index(d)][x].clone(),
                class: ident.class,
                isolated,
                named_ports,
            };
            let next = u32::try_from(g.list.len()).unwrap_or(NOT_YET);
            let id = *index.entry(key).or_insert(next);
            if id == next {
                g.list.push(Group {
                    classes: NOT_YET,
                    answers: Vec::new(),
                    rules: self.tiers.rules_of(d, x),
                });
            }
            g.of.push(id);
        }
        if d == Direction::Ingress {
            g.answer_of = vec![NOT_YET; g.list.len() * identities];
        }
        g
    }

    /// Turns NetworkPolicy's atoms of a pair in direction `d` (`out`) into the tiers' answer.
    #[inline]
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
        let groups = &c.groups[direction_index(d)];
        let g = groups.of[subject];
        if g == NOT_YET {
            return;
        }
        let mut id = groups.known(g as usize, peer);
        if id == NOT_YET {
            id = self.class_answer(c, d, g as usize, p, isolated);
            c.groups[direction_index(d)].remember(g as usize, peer, id);
        }
        c.answers.apply(id, out);
    }

    /// The answer of group `g` for the far end of `p`, walked once per class of far ends.
    #[cold]
    fn class_answer(
        &self,
        c: &mut TierCache,
        d: Direction,
        g: usize,
        p: TierPair,
        isolated: bool,
    ) -> u32 {
        let peer = match d {
            Direction::Egress => p.dst,
            Direction::Ingress => p.src,
        };
        let groups = &mut c.groups[direction_index(d)];
        let group = &mut groups.list[g];
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
            group.answers = vec![NOT_YET; groups.classes[id as usize].count];
        }
        let k = groups.classes[group.classes as usize].of[peer] as usize;
        if group.answers[k] == NOT_YET {
            let answer = self.pair_answer(&mut c.fold, d, p, isolated);
            group.answers[k] = c.answers.push(&answer);
        }
        group.answers[k]
    }

    /// Per far-end identity, its class as the rules `rules` of direction `d` see it: the
    /// partition by family class (and, for egress, named ports) refined by each rule's peer
    /// sets, one bitset at a time.
    fn far_classes(&self, d: Direction, rules: &[usize]) -> FarClasses {
        let identities = &self.set.identities.list;
        let mut index: HashMap<(usize, &[NamedPortValue]), u32, FxBuildHasher> = HashMap::default();
        let mut of: Vec<u32> = identities
            .iter()
            .map(|ident| {
                let named: &[NamedPortValue] = match d {
                    // The destination's named ports resolve the egress rules' ports.
                    Direction::Egress => &ident.named_ports,
                    Direction::Ingress => &[],
                };
                let next = u32::try_from(index.len()).unwrap_or(NOT_YET - 1);
                *index.entry((ident.class, named)).or_insert(next)
            })
            .collect();
        let mut count = index.len();
        let mut split = Vec::new();
        for &ri in rules {
            let r = &self.tiers.rules[ri];
            let sets = [&r.selected, &r.addressed[0], &r.addressed[1]];
            let used = if r.has_addressed { 3 } else { 1 };
            for set in &sets[..used] {
                count = refine(&mut of, count, set, &mut split);
            }
        }
        FarClasses { of, count }
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

/// Splits every class of `of` (numbered below `count`) by membership in `set`; returns the new
/// class count. `split` is scratch: (class, member) -> new class.
fn refine(of: &mut [u32], count: usize, set: &Bits, split: &mut Vec<u32>) -> usize {
    split.clear();
    split.resize(2 * count, NOT_YET);
    let mut next = 0u32;
    for (y, class) in of.iter_mut().enumerate() {
        let k = 2 * *class as usize + usize::from(set.get(y));
        if split[k] == NOT_YET {
            split[k] = next;
            next += 1;
        }
        *class = split[k];
    }
    next as usize
}
