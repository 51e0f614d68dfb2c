//! Listing the changed pairs of a [`MapDiff`] lazily, in output order, with their ports before
//! and after and what was gained and lost.

use crate::model::{IpFamily, Protocol};

use super::super::ConnectivityMap;
use super::{Common, MapDiff};

/// How a pair's connectivity changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Change {
    /// Nothing was allowed before; something is now.
    Gained,
    /// Something was allowed before; nothing is now.
    Lost,
    /// Allowed before and after, on different ports.
    Changed,
}

impl Change {
    /// `gained`, `lost` or `changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Gained => "gained",
            Change::Lost => "lost",
            Change::Changed => "changed",
        }
    }
}

/// Allowed ports of one pair: per protocol (in [`Protocol::ALL`] order) merged inclusive ranges,
/// the same over every family, or per family where they differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ports {
    /// The same over every family the pair uses.
    One([Vec<(u16, u16)>; 3]),
    /// `[IPv4, IPv6]`, for a dual-stack pair whose families differ.
    ByFamily([[Vec<(u16, u16)>; 3]; 2]),
}

impl Ports {
    /// The ports from endpoint `from` to `to` in `map`, per family where they differ, as the
    /// map's outputs show them.
    pub fn of(map: &ConnectivityMap, from: usize, to: usize) -> Ports {
        let per = |f: Option<IpFamily>| {
            Protocol::ALL.map(|p| match f {
                None => map.ports(from, to, p).to_vec(),
                Some(f) => map.ports_in(from, to, p, f).to_vec(),
            })
        };
        if map.differs(from, to) {
            Ports::ByFamily([per(Some(IpFamily::V4)), per(Some(IpFamily::V6))])
        } else {
            Ports::One(per(None))
        }
    }

    /// Whether nothing at all is allowed.
    pub fn is_empty(&self) -> bool {
        let empty = |set: &[Vec<(u16, u16)>; 3]| set.iter().all(Vec::is_empty);
        match self {
            Ports::One(set) => empty(set),
            Ports::ByFamily(sets) => sets.iter().all(empty),
        }
    }

    /// The ports of one family (the same for both when not per family).
    pub fn family(&self, family: IpFamily) -> &[Vec<(u16, u16)>; 3] {
        match self {
            Ports::One(set) => set,
            Ports::ByFamily(sets) => &sets[family.index()],
        }
    }

    /// What `self` allows that `other` does not, per family where the two differ by family.
    pub fn minus(&self, other: &Ports) -> Ports {
        let per = |f: IpFamily| {
            let (a, b) = (self.family(f), other.family(f));
            [0, 1, 2].map(|p| subtract(&a[p], &b[p]))
        };
        let v4 = per(IpFamily::V4);
        if matches!((self, other), (Ports::One(_), Ports::One(_))) {
            return Ports::One(v4);
        }
        let v6 = per(IpFamily::V6);
        if v4 == v6 {
            Ports::One(v4)
        } else {
            Ports::ByFamily([v4, v6])
        }
    }
}

/// The ranges of `a` that `b` does not cover (both sorted and merged).
pub(crate) fn subtract(a: &[(u16, u16)], b: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for &(lo, hi) in a {
        let mut start = u32::from(lo);
        let end = u32::from(hi);
        for &(blo, bhi) in b {
            let (blo, bhi) = (u32::from(blo), u32::from(bhi));
            if bhi < start || blo > end {
                continue;
            }
            if blo > start {
                out.push((start, blo - 1));
            }
            start = bhi + 1;
            if start > end {
                break;
            }
        }
        if start <= end {
            out.push((start, end));
        }
    }
    out.into_iter()
        .filter_map(|(lo, hi)| Some((u16::try_from(lo).ok()?, u16::try_from(hi).ok()?)))
        .collect()
}

/// One changed ordered pair of endpoints present on both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairChange {
    /// The source's and destination's indices in the old map's endpoints.
    pub old: (usize, usize),
    /// The source's and destination's indices in the new map's endpoints.
    pub new: (usize, usize),
    /// The source's and destination's output names (the new map's).
    pub from: String,
    /// See `from`.
    pub to: String,
    /// How it changed.
    pub change: Change,
    /// The ports allowed before.
    pub before: Ports,
    /// The ports allowed after.
    pub after: Ports,
}

impl PairChange {
    /// What is allowed now and was not.
    pub fn gained(&self) -> Ports {
        self.after.minus(&self.before)
    }

    /// What was allowed and is not any more.
    pub fn lost(&self) -> Ports {
        self.before.minus(&self.after)
    }
}

/// The changed pairs of a [`MapDiff`], in output order (sources, then destinations, as the new
/// map orders them), built as they are asked for.
pub struct Pairs<'d, 'a> {
    diff: &'d MapDiff<'a>,
    from: usize,
    to: usize,
    /// The change per destination combo of the current source's combo.
    row: Vec<Option<Change>>,
}

impl<'a> MapDiff<'a> {
    /// The changed pairs of endpoints present on both sides, in output order.
    pub fn pairs(&self) -> Pairs<'_, 'a> {
        Pairs {
            diff: self,
            from: 0,
            to: 0,
            row: Vec::new(),
        }
    }

    /// The change of the pair of common endpoints `f` and `t` (positions in `common`).
    fn change_at(&self, f: usize, t: usize, row: &[Option<Change>]) -> Option<Change> {
        let cw = self.common_workloads;
        match (f < cw, t < cw) {
            (true, true) if f == t => self.own_change[f],
            _ if f == t => None,
            (true, true) => row[self.dst_combo[t] as usize],
            (true, false) => self.to_node[(t - cw) * cw + f],
            (false, true) => self.from_node[(f - cw) * cw + t],
            (false, false) => None,
        }
    }

    /// Whether source `f` (a position in `common`) has any changed pair.
    fn source_changes(&self, f: usize) -> bool {
        let cw = self.common_workloads;
        let nodes = self.common.len() - cw;
        if f < cw {
            !self.changed[self.src_combo[f] as usize].is_empty()
                || self.own_change[f].is_some()
                || (0..nodes).any(|k| self.to_node[k * cw + f].is_some())
        } else {
            self.from_node[(f - cw) * cw..(f - cw + 1) * cw]
                .iter()
                .any(Option::is_some)
        }
    }

    fn pair_change(&self, f: Common, t: Common, change: Change) -> PairChange {
        PairChange {
            old: (f.old, t.old),
            new: (f.new, t.new),
            from: self.new.map.keys[f.new].clone(),
            to: self.new.map.keys[t.new].clone(),
            change,
            before: Ports::of(self.old.map, f.old, t.old),
            after: Ports::of(self.new.map, f.new, t.new),
        }
    }
}

impl Iterator for Pairs<'_, '_> {
    type Item = PairChange;

    fn next(&mut self) -> Option<PairChange> {
        let d = self.diff;
        let total = d.common.len();
        while self.from < total {
            if self.to == 0 {
                if !d.source_changes(self.from) {
                    self.from += 1;
                    continue;
                }
                if self.from < d.common_workloads {
                    self.row.clear();
                    self.row.resize(d.dst_combos, None);
                    for &(c, change) in &d.changed[d.src_combo[self.from] as usize] {
                        self.row[c as usize] = Some(change);
                    }
                }
            }
            while self.to < total {
                let t = self.to;
                self.to += 1;
                if let Some(change) = d.change_at(self.from, t, &self.row) {
                    return Some(d.pair_change(d.common[self.from], d.common[t], change));
                }
            }
            self.from += 1;
            self.to = 0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtracting_ranges_keeps_what_the_other_does_not_cover() {
        assert_eq!(
            subtract(&[(1, 100), (200, 300)], &[(50, 60), (250, 400)]),
            vec![(1, 49), (61, 100), (200, 249)]
        );
        assert_eq!(subtract(&[(1, 65535)], &[(1, 65535)]), vec![]);
        assert_eq!(subtract(&[(80, 80)], &[]), vec![(80, 80)]);
        assert_eq!(
            subtract(&[(1, 65535)], &[(80, 80)]),
            vec![(1, 79), (81, 65535)]
        );
    }
}
