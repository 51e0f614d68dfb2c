//! The difference between the connectivity maps of two clusters (an old and a new version of the
//! same manifests): which ordered pairs of endpoints gained, lost or changed allowed ports, which
//! endpoints exist on one side only, and (in [`objects`]) which namespaces, workloads, policies and
//! nodes were added, removed or changed and so explain it.
//!
//! Endpoints are matched by identity: a workload by kind, namespace and name, a node by name.
//!
//! How, for 10,000 workloads (100M ordered pairs) without a pass per pair: a map answers a pair
//! of workloads from its source side and destination side (see [`super::Analyzer`]). Every
//! workload on both sides gets a *combined source signature* (its source sides in the old and
//! the new map, per family when a map answers per family, and its families) and a combined
//! destination signature; pairs with the same two signatures have the same old and new answers,
//! so each pair of signatures is compared once, and only the changed ones are kept (sparse).
//! Answers are compared as numbers: every distinct port set of both maps is interned once.
//! Pairs with a node are compared one by one (nodes are few). Pairs are listed lazily, in output
//! order, from that sparse table.

pub mod objects;
mod pairs;

use std::collections::HashMap;

use crate::hash::FxBuildHasher;
use crate::model::{Cluster, WorkloadKind};

use super::ConnectivityMap;

pub use objects::{object_changes, ObjectChange, ObjectKind, Presence};
pub use pairs::{Change, PairChange, Pairs, Ports};

/// One protocol's allowed ranges, per protocol in [`crate::model::Protocol::ALL`] order.
type PortSet = [Vec<(u16, u16)>; 3];

/// The answer of one map for one pair, as global port-set ids: 0 is the empty set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Val {
    /// The same ports over every family the pair uses.
    One(u32),
    /// IPv4 and IPv6 differ (a dual-stack pair).
    Fam(u32, u32),
}

impl Val {
    fn nonempty(self) -> bool {
        !matches!(self, Val::One(0))
    }
}

/// Which endpoint of a map a signature is about: its side in the map, in the IPv4 and IPv6
/// maps (`u32::MAX` when the map has none) and its families (0 when they cannot matter).
type Sig = [u32; 4];

/// One map with its port sets translated to global ids (preferred, IPv4, IPv6).
struct Side<'a> {
    cluster: &'a Cluster,
    map: &'a ConnectivityMap,
    gid: [Vec<u32>; 3],
}

impl Side<'_> {
    fn workloads(&self) -> usize {
        self.map.src_of.len()
    }

    fn src_sig(&self, w: usize) -> Sig {
        self.sig(w, |m| m.src_of[w])
    }

    fn dst_sig(&self, w: usize) -> Sig {
        self.sig(w, |m| m.dst_of[w])
    }

    /// Only a dual-stack endpoint's answers can differ by family ([`Side::val`] looks at the
    /// per-family sides only when both ends have both families): every other endpoint's
    /// signature is its preferred side alone, so that endpoints share signatures as often as
    /// they can.
    fn sig(&self, w: usize, side: impl Fn(&ConnectivityMap) -> usize) -> Sig {
        let own = as_u32(side(self.map));
        match &self.map.by_family {
            Some(f) if self.family_bits(w) == 3 => {
                [own, as_u32(side(&f[0])), as_u32(side(&f[1])), 3]
            }
            _ => [own, u32::MAX, u32::MAX, 0],
        }
    }

    fn family_bits(&self, endpoint: usize) -> u8 {
        self.map.families.get(endpoint).copied().unwrap_or(0)
    }

    /// The answer for a pair of workloads with these signatures.
    fn val(&self, s: Sig, d: Sig) -> Val {
        let at = |m: &ConnectivityMap, which: usize, si: u32, di: u32| -> u32 {
            let id = m.matrix[si as usize * m.dst_count + di as usize];
            self.gid[which][id as usize]
        };
        let pref = at(self.map, 0, s[0], d[0]);
        if let Some(f) = &self.map.by_family {
            if s[3] == 3 && d[3] == 3 {
                let v4 = at(&f[0], 1, s[1], d[1]);
                let v6 = at(&f[1], 2, s[2], d[2]);
                if v4 != v6 {
                    return Val::Fam(v4, v6);
                }
            }
        }
        Val::One(pref)
    }

    /// The answer from workload `w` to node `k` (`to_node`) or from node `k` to `w`.
    fn node_val(&self, k: usize, w: usize, to_node: bool) -> Val {
        let n = self.workloads();
        let at = |m: &ConnectivityMap, which: usize| -> u32 {
            let cells = if to_node {
                &m.node_columns
            } else {
                &m.node_rows
            };
            self.gid[which][cells[k * n + w] as usize]
        };
        let pref = at(self.map, 0);
        if let Some(f) = &self.map.by_family {
            if self.family_bits(w) == 3 && self.family_bits(n + k) == 3 {
                let (v4, v6) = (at(&f[0], 1), at(&f[1], 2));
                if v4 != v6 {
                    return Val::Fam(v4, v6);
                }
            }
        }
        Val::One(pref)
    }
}

fn as_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Every distinct port set of both maps numbered once, the empty set first.
#[derive(Default)]
struct Global<'a> {
    index: HashMap<&'a PortSet, u32, FxBuildHasher>,
}

impl<'a> Global<'a> {
    fn translate(&mut self, map: &'a ConnectivityMap) -> Vec<u32> {
        map.port_sets
            .iter()
            .map(|set| {
                if set.iter().all(Vec::is_empty) {
                    return 0;
                }
                let next = as_u32(self.index.len() + 1);
                *self.index.entry(set).or_insert(next)
            })
            .collect()
    }

    fn side(&mut self, cluster: &'a Cluster, map: &'a ConnectivityMap) -> Side<'a> {
        let own = self.translate(map);
        let (v4, v6) = match &map.by_family {
            Some(f) => (self.translate(&f[0]), self.translate(&f[1])),
            None => (Vec::new(), Vec::new()),
        };
        Side {
            cluster,
            map,
            gid: [own, v4, v6],
        }
    }
}

/// How an endpoint is matched between the two sides.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum EndpointId<'a> {
    Workload(WorkloadKind, &'a str, &'a str),
    Node(&'a str),
}

fn endpoint_ids(cluster: &Cluster) -> Vec<EndpointId<'_>> {
    let workloads = cluster
        .workloads
        .iter()
        .map(|w| EndpointId::Workload(w.kind, &w.namespace, &w.name));
    let nodes = cluster.nodes.iter().map(|n| EndpointId::Node(&n.name));
    workloads.chain(nodes).collect()
}

/// An endpoint only one of the two clusters has, with the connections it has there (its own pair
/// only for a workload with replicas, between two of them): they are gained (an added endpoint)
/// or lost (a removed one) as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneSided {
    /// Its index in its map's endpoints (workloads, then nodes).
    pub index: usize,
    /// Its output name in its map.
    pub key: String,
    /// How many endpoints it may send to (anything allowed).
    pub outgoing: usize,
    /// How many endpoints may send to it.
    pub incoming: usize,
}

impl OneSided {
    /// Whether it has any connection at all.
    pub fn connected(&self) -> bool {
        self.outgoing + self.incoming > 0
    }
}

/// How many pairs of endpoints present on both sides changed, by kind of change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiffCounts {
    /// Pairs that had nothing allowed and now have something.
    pub gained: usize,
    /// Pairs that had something allowed and now have nothing.
    pub lost: usize,
    /// Pairs allowed before and after, on different ports.
    pub changed: usize,
}

impl DiffCounts {
    /// Every changed pair.
    pub fn total(&self) -> usize {
        self.gained + self.lost + self.changed
    }

    fn add(&mut self, change: Change, n: usize) {
        match change {
            Change::Gained => self.gained += n,
            Change::Lost => self.lost += n,
            Change::Changed => self.changed += n,
        }
    }

    fn sub(&mut self, change: Change) {
        match change {
            Change::Gained => self.gained -= 1,
            Change::Lost => self.lost -= 1,
            Change::Changed => self.changed -= 1,
        }
    }
}

/// An endpoint on both sides: its index in the old and in the new map.
#[derive(Clone, Copy, Debug)]
struct Common {
    old: usize,
    new: usize,
}

/// The difference between two connectivity maps; see the module documentation.
pub struct MapDiff<'a> {
    old: Side<'a>,
    new: Side<'a>,
    /// Endpoints on both sides in the new map's output order: workloads first, then nodes.
    common: Vec<Common>,
    /// How many of `common` are workloads.
    common_workloads: usize,
    /// Per common workload: its combined source and destination signature.
    src_combo: Vec<u32>,
    dst_combo: Vec<u32>,
    /// How many destination combos there are.
    dst_combos: usize,
    /// Per source combo, the changed destination combos (sorted).
    changed: Vec<Vec<(u32, Change)>>,
    /// Per common workload: the change of its own pair (between two of its replicas where a
    /// side has them; an instance reaching its own address never changes).
    own_change: Vec<Option<Change>>,
    /// `[common node * common_workloads + common workload]`: the change from the workload to the
    /// node, and from the node to the workload.
    to_node: Vec<Option<Change>>,
    from_node: Vec<Option<Change>>,
    counts: DiffCounts,
    added: Vec<OneSided>,
    removed: Vec<OneSided>,
    /// Policy key -> index into the cluster's policies, for explanations.
    old_policies: HashMap<String, usize>,
    new_policies: HashMap<String, usize>,
}

/// Compares the map of `old` with the map of `new` (each the [`super::Analyzer`]'s
/// connectivity map of that cluster).
pub fn diff_maps<'a>(
    old: &'a Cluster,
    old_map: &'a ConnectivityMap,
    new: &'a Cluster,
    new_map: &'a ConnectivityMap,
) -> MapDiff<'a> {
    let mut global = Global::default();
    let old_side = global.side(old, old_map);
    let new_side = global.side(new, new_map);
    drop(global);
    let old_ids = endpoint_ids(old);
    let old_index: HashMap<&EndpointId<'_>, usize> =
        old_ids.iter().enumerate().map(|(i, id)| (id, i)).collect();
    let new_ids = endpoint_ids(new);
    let mut common = Vec::new();
    let mut in_new = vec![false; old_ids.len()];
    let mut added = Vec::new();
    for &i in new_map.workload_order() {
        match old_index.get(&new_ids[i]) {
            Some(&o) => {
                in_new[o] = true;
                common.push(Common { old: o, new: i });
            }
            None => added.push(i),
        }
    }
    let removed: Vec<usize> = old_map
        .workload_order()
        .iter()
        .copied()
        .filter(|&o| !in_new[o])
        .collect();
    let mut diff = MapDiff {
        common_workloads: common
            .iter()
            .filter(|c| c.new < new_side.workloads())
            .count(),
        added: one_sided(&new_side, &added),
        removed: one_sided(&old_side, &removed),
        old: old_side,
        new: new_side,
        common,
        src_combo: Vec::new(),
        dst_combo: Vec::new(),
        dst_combos: 0,
        changed: Vec::new(),
        own_change: Vec::new(),
        to_node: Vec::new(),
        from_node: Vec::new(),
        counts: DiffCounts::default(),
        old_policies: policy_index(old),
        new_policies: policy_index(new),
    };
    diff.compare_workloads();
    diff.compare_nodes();
    diff
}

fn policy_index(cluster: &Cluster) -> HashMap<String, usize> {
    cluster
        .policies
        .iter()
        .enumerate()
        .map(|(i, p)| (p.key(), i))
        .collect()
}

/// The change from `old` to `new`, if any.
fn change_of(old: Val, new: Val) -> Option<Change> {
    if old == new {
        None
    } else if !old.nonempty() {
        Some(Change::Gained)
    } else if !new.nonempty() {
        Some(Change::Lost)
    } else {
        Some(Change::Changed)
    }
}

/// Numbers distinct keys in first-seen order, counting each key's members.
#[derive(Default)]
struct Combos {
    index: HashMap<[u32; 8], u32, FxBuildHasher>,
    keys: Vec<[u32; 8]>,
    count: Vec<usize>,
}

impl Combos {
    fn id(&mut self, old: Sig, new: Sig) -> u32 {
        let key = [
            old[0], old[1], old[2], old[3], new[0], new[1], new[2], new[3],
        ];
        let next = as_u32(self.keys.len());
        let id = *self.index.entry(key).or_insert(next);
        if id == next {
            self.keys.push(key);
            self.count.push(0);
        }
        self.count[id as usize] += 1;
        id
    }
}

fn split(key: &[u32; 8]) -> (Sig, Sig) {
    (
        [key[0], key[1], key[2], key[3]],
        [key[4], key[5], key[6], key[7]],
    )
}

impl<'a> MapDiff<'a> {
    /// Pairs of common workloads, one comparison per pair of combined signatures.
    fn compare_workloads(&mut self) {
        let mut src = Combos::default();
        let mut dst = Combos::default();
        for c in &self.common[..self.common_workloads] {
            let s = src.id(self.old.src_sig(c.old), self.new.src_sig(c.new));
            let d = dst.id(self.old.dst_sig(c.old), self.new.dst_sig(c.new));
            self.src_combo.push(s);
            self.dst_combo.push(d);
        }
        self.changed = src
            .keys
            .iter()
            .map(|sk| {
                let (so, sn) = split(sk);
                dst.keys
                    .iter()
                    .enumerate()
                    .filter_map(|(d, dk)| {
                        let (dold, dnew) = split(dk);
                        change_of(self.old.val(so, dold), self.new.val(sn, dnew))
                            .map(|c| (as_u32(d), c))
                    })
                    .collect()
            })
            .collect();
        self.dst_combos = dst.keys.len();
        for (s, row) in self.changed.iter().enumerate() {
            for &(d, change) in row {
                self.counts
                    .add(change, src.count[s] * dst.count[d as usize]);
            }
        }
        // A workload's own pair is not its combos' answer: the map answers it as an instance
        // reaching its own address (every port) unless the workload has replicas.
        for w in 0..self.common_workloads {
            if let Some(change) = self.combo_change(self.src_combo[w], self.dst_combo[w]) {
                self.counts.sub(change);
            }
            let c = self.common[w];
            let change = self.own_pair_change(c);
            if let Some(change) = change {
                self.counts.add(change, 1);
            }
            self.own_change.push(change);
        }
    }

    /// The change of a common workload's own pair, from the maps' own answers (only a workload
    /// with replicas on either side can change).
    fn own_pair_change(&self, c: Common) -> Option<Change> {
        if !self.old.map.has_replicas(c.old) && !self.new.map.has_replicas(c.new) {
            return None;
        }
        let before = Ports::of(self.old.map, c.old, c.old);
        let after = Ports::of(self.new.map, c.new, c.new);
        if before == after {
            None
        } else if before.is_empty() {
            Some(Change::Gained)
        } else if after.is_empty() {
            Some(Change::Lost)
        } else {
            Some(Change::Changed)
        }
    }

    fn combo_change(&self, s: u32, d: u32) -> Option<Change> {
        let row = &self.changed[s as usize];
        row.binary_search_by_key(&d, |&(x, _)| x)
            .ok()
            .map(|i| row[i].1)
    }

    /// Pairs of a common node and a common workload, one by one.
    fn compare_nodes(&mut self) {
        let cw = self.common_workloads;
        let (on, nn) = (self.old.workloads(), self.new.workloads());
        for node in &self.common[cw..] {
            let (ko, kn) = (node.old - on, node.new - nn);
            for w in &self.common[..cw] {
                for to_node in [true, false] {
                    let change = change_of(
                        self.old.node_val(ko, w.old, to_node),
                        self.new.node_val(kn, w.new, to_node),
                    );
                    if let Some(c) = change {
                        self.counts.add(c, 1);
                    }
                    if to_node {
                        self.to_node.push(change);
                    } else {
                        self.from_node.push(change);
                    }
                }
            }
        }
    }

    /// How many groups of common workloads were compared as sources and as destinations (a
    /// measure of the diff's work: it compares every source group with every destination group).
    pub fn compared_groups(&self) -> (usize, usize) {
        (self.changed.len(), self.dst_combos)
    }

    /// The counts of changed pairs of endpoints present on both sides.
    pub fn counts(&self) -> DiffCounts {
        self.counts
    }

    /// Endpoints only the new cluster has, in its output order.
    pub fn added(&self) -> &[OneSided] {
        &self.added
    }

    /// Endpoints only the old cluster had, in its output order.
    pub fn removed(&self) -> &[OneSided] {
        &self.removed
    }

    /// Whether connectivity is the same: no pair changed, and no endpoint that exists on one
    /// side only has any connection there.
    pub fn is_unchanged(&self) -> bool {
        self.counts.total() == 0
            && !self.added.iter().any(OneSided::connected)
            && !self.removed.iter().any(OneSided::connected)
    }

    /// The old cluster.
    pub fn old_cluster(&self) -> &'a Cluster {
        self.old.cluster
    }

    /// The new cluster.
    pub fn new_cluster(&self) -> &'a Cluster {
        self.new.cluster
    }
}

/// Connection counts of endpoints only one map has, from its per-side answers.
fn one_sided(side: &Side<'_>, endpoints: &[usize]) -> Vec<OneSided> {
    let n = side.workloads();
    let m = side.map.node_count;
    // Every workload's destination (and source) signature, with how many workloads share it.
    let tally = |sig: &dyn Fn(usize) -> Sig| {
        let mut count: HashMap<Sig, usize, FxBuildHasher> = HashMap::default();
        for w in 0..n {
            *count.entry(sig(w)).or_default() += 1;
        }
        count.into_iter().collect::<Vec<_>>()
    };
    let (dsts, srcs) = if endpoints.iter().any(|&e| e < n) {
        (tally(&|w| side.dst_sig(w)), tally(&|w| side.src_sig(w)))
    } else {
        (Vec::new(), Vec::new())
    };
    // Workloads of one signature reach (and are reached from) the same workloads: counted once.
    let mut out_of: HashMap<Sig, usize, FxBuildHasher> = HashMap::default();
    let mut in_of: HashMap<Sig, usize, FxBuildHasher> = HashMap::default();
    endpoints
        .iter()
        .map(|&e| {
            let (outgoing, incoming) = if e < n {
                let (s, d) = (side.src_sig(e), side.dst_sig(e));
                // The count over every destination holds the combos' answer for its own pair:
                // the replicas' answer when it has them, else not a connection.
                let own = usize::from(!side.map.has_replicas(e) && side.val(s, d).nonempty());
                let out = *out_of.entry(s).or_insert_with(|| {
                    dsts.iter()
                        .filter(|(ds, _)| side.val(s, *ds).nonempty())
                        .map(|(_, c)| c)
                        .sum()
                });
                let inc = *in_of.entry(d).or_insert_with(|| {
                    srcs.iter()
                        .filter(|(ss, _)| side.val(*ss, d).nonempty())
                        .map(|(_, c)| c)
                        .sum()
                });
                let to_nodes = (0..m)
                    .filter(|&k| side.node_val(k, e, true).nonempty())
                    .count();
                let from_nodes = (0..m)
                    .filter(|&k| side.node_val(k, e, false).nonempty())
                    .count();
                (out - own + to_nodes, inc - own + from_nodes)
            } else {
                let k = e - n;
                // Nothing isolates a node: it reaches every other node.
                let out = (0..n).filter(|&w| side.node_val(k, w, false).nonempty());
                let inc = (0..n).filter(|&w| side.node_val(k, w, true).nonempty());
                (out.count() + m - 1, inc.count() + m - 1)
            };
            OneSided {
                index: e,
                key: side.map.keys[e].clone(),
                outgoing,
                incoming,
            }
        })
        .collect()
}
