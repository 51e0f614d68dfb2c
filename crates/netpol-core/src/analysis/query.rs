//! The two bulk queries: the truth table of one protocol and port, and the connectivity map.

use std::collections::HashMap;

use fixedbitset::FixedBitSet;

use crate::bits::Bits;
use crate::hash::FxBuildHasher;
use crate::model::Protocol;
use crate::policy_set::identities::Family;

use super::nodes::Mode;
use super::tier_map::{TierCache, TierPair};
use super::tiers::Fold;
use super::{Analyzer, AnalyzerRule, ConnectivityMap, TruthTable};
use crate::model::Direction;
use crate::policy_set::identities::CLASS_FAMILIES;
use crate::policy_set::ports::PortSetId;

/// Which destinations a rule's ports admit on one protocol and port, ignoring peers.
pub(super) enum PortOk {
    /// Every destination (a numeric entry matches).
    All,
    None,
    /// Those whose named port resolves to the port.
    Some(Bits),
}

impl PortOk {
    /// The destinations admitted (`all` for every one), `None` for none.
    pub(super) fn bits<'a>(&'a self, all: &'a Bits) -> Option<&'a Bits> {
        match self {
            PortOk::None => None,
            PortOk::All => Some(all),
            PortOk::Some(b) => Some(b),
        }
    }

    /// Whether destination identity `d` is admitted.
    pub(super) fn admits(&self, d: usize) -> bool {
        match self {
            PortOk::All => true,
            PortOk::None => false,
            PortOk::Some(b) => b.get(d),
        }
    }
}

/// What the ports of every rule admit on one protocol and port: NetworkPolicy rules (by index
/// into `Analyzer::rules`) and admin rules (into the tiers' rules).
#[derive(Clone, Copy)]
pub(super) struct RulePorts<'a> {
    pub(super) np: &'a [PortOk],
    pub(super) admin: &'a [PortOk],
}

impl Analyzer {
    /// Identities `d` for which rule `r` admits traffic to/from d on (protocol, port), ignoring
    /// peers: everyone, when a numeric entry matches; else those whose named port resolves to it.
    fn port_ok(&self, ports: PortSetId, protocol: Protocol, port: u16) -> PortOk {
        let ports = self.set.port_set(ports);
        if ports.numeric_matches(protocol, port) {
            return PortOk::All;
        }
        let mut b = Bits::new(self.set.identity_count());
        let mut any = false;
        for named in ports.named.iter().filter(|n| n.protocol == protocol) {
            for (id, ident) in self.set.identities.list.iter().enumerate() {
                if ident.named_port(named.name, named.protocol) == Some(port) {
                    b.set(id);
                    any = true;
                }
            }
        }
        if any {
            PortOk::Some(b)
        } else {
            PortOk::None
        }
    }

    /// Whether each ordered pair of endpoints (workloads, then nodes) may talk on one protocol
    /// and port; with per-family answers where a pair's answer can depend on the family.
    pub fn truth_table(&self, protocol: Protocol, port: u16) -> TruthTable {
        let mut table = self.truth_table_in(protocol, port, Mode::Preferred);
        if self.nodes.per_family {
            table.by_family = Some(Box::new([
                self.truth_table_in(protocol, port, Mode::Only(Family::V4)),
                self.truth_table_in(protocol, port, Mode::Only(Family::V6)),
            ]));
        }
        table.families = self.nodes.families.clone();
        table
    }

    fn truth_table_in(&self, protocol: Protocol, port: u16, mode: Mode) -> TruthTable {
        let port_ok: Vec<PortOk> = self
            .rules
            .iter()
            .map(|r| self.port_ok(r.ports, protocol, port))
            .collect();
        let admin_ok: Vec<PortOk> = self
            .tiers
            .rules
            .iter()
            .map(|r| self.port_ok(r.ports, protocol, port))
            .collect();
        let ok = RulePorts {
            np: &port_ok,
            admin: &admin_ok,
        };
        let needed = self.needed_sides(&self.sides.src_side, self.sides.src_reps.len(), mode);
        let mut fold = Fold::new(self.set.identity_count());
        let mut side_rows: Vec<Bits> = Vec::with_capacity(needed.len());
        for (&s, &needed) in self.sides.src_reps.iter().zip(&needed) {
            side_rows.push(if needed {
                self.side_row(s, ok, mode, &mut fold)
            } else {
                Bits::new(0)
            });
        }
        let numeric: Vec<bool> = self
            .rules
            .iter()
            .map(|r| self.set.port_set(r.ports).numeric_matches(protocol, port))
            .collect();
        let mut table = self.expand_rows(protocol, port, &side_rows, mode, |w, k| {
            self.workload_to_node(w, k, mode, &numeric, &admin_ok)
        });
        if mode == Mode::Preferred {
            table.hairpin = self.hairpins(ok);
        }
        let n = self.workload_count;
        for k in 0..self.nodes.list.len() {
            if self.nodes.node_skipped(k, mode) {
                continue;
            }
            let row = &mut table.rows[n + k];
            for v in 0..n {
                if self.nodes.workload_skipped(v, mode) {
                    continue;
                }
                if self.node_to_workload(k, v, mode, ok) {
                    row.insert(v);
                }
            }
            // Nothing isolates a node, so nodes reach each other on every port.
            row.insert_range(n..n + self.nodes.list.len());
            table.allowed_count += row.count_ones(..);
        }
        table
    }

    /// The destination identities source identity `s` may reach: its egress, then their ingress.
    fn side_row(&self, s: usize, ok: RulePorts<'_>, mode: Mode, fold: &mut Fold) -> Bits {
        let ic = self.set.identity_count();
        let all = Bits::full(ic);
        let class = self.set.identities.list[s].class;
        let [d4, d6] = self.family_destinations(class, mode);
        let ok_of = |ri: usize| ok.np[ri].bits(&all);
        let admin_ok = |ri: usize| ok.admin[ri].bits(&all);
        // Egress of s: which destinations its egress rules admit.
        let mut egress = Bits::new(ic);
        if self.egress.isolated.get(s) {
            let mut peers = Bits::new(ic);
            for &ri in &self.egress.rules_of[s] {
                let Some(ok) = ok_of(ri) else { continue };
                let r = &self.rules[ri];
                peers.clear();
                peers.or_assign(&r.selected_peers);
                if r.has_ip_peers {
                    peers.or_and(&r.ip_peers[0], d4);
                    peers.or_and(&r.ip_peers[1], d6);
                }
                egress.or_and(&peers, ok);
            }
        } else {
            egress.clone_from(&all);
        }
        if self.tiers.any() {
            let isolated = self.egress.isolated.get(s);
            self.tiers
                .egress_row(fold, &mut egress, s, isolated, [d4, d6], admin_ok);
        }
        // Ingress: which destinations admit s (those no policy isolates admit everyone).
        let mut ingress = self.ingress.isolated.complement();
        for &ri in &self.ingress.rules {
            let Some(ok) = ok_of(ri) else { continue };
            let r = &self.rules[ri];
            if r.selected_peers.get(s) {
                ingress.or_and(&r.targets, ok);
            } else if r.has_ip_peers {
                if r.ip_peers[0].get(s) {
                    ingress.or_and3(&r.targets, ok, d4);
                }
                if r.ip_peers[1].get(s) {
                    ingress.or_and3(&r.targets, ok, d6);
                }
            }
        }
        if self.tiers.any() {
            let isolated = &self.ingress.isolated;
            self.tiers
                .ingress_row(fold, &mut ingress, s, isolated, [d4, d6], admin_ok);
        }
        egress.and_assign(&ingress);
        egress
    }

    /// Expands side rows over identities to workload rows, with `to_node(workload, node)` for the
    /// node columns and empty rows for the nodes; workloads `mode` skips get an empty row of no
    /// length. The diagonal: a workload with replicas keeps its identity's answer for itself (the
    /// flow between two of them is a pair like any other), any other always reaches its own
    /// address.
    fn expand_rows(
        &self,
        protocol: Protocol,
        port: u16,
        side_rows: &[Bits],
        mode: Mode,
        to_node: impl Fn(usize, usize) -> bool,
    ) -> TruthTable {
        let n = self.workload_count;
        let m = self.nodes.list.len();
        let total = n + m;
        let mut per_side: Vec<Option<FixedBitSet>> = vec![None; side_rows.len()];
        let mut rows: Vec<FixedBitSet> = Vec::with_capacity(total);
        let mut allowed = 0usize;
        for (w, &x) in self.identity_of.iter().enumerate() {
            if self.nodes.workload_skipped(w, mode) {
                rows.push(FixedBitSet::new());
                continue;
            }
            let side = self.sides.src_side[x];
            let base = per_side[side].get_or_insert_with(|| {
                let mut row = FixedBitSet::with_capacity(total);
                let ir = &side_rows[side];
                for (v, &d) in self.identity_of.iter().enumerate() {
                    if ir.get(d) {
                        row.insert(v);
                    }
                }
                row
            });
            let mut row = base.clone();
            if !self.replicated.contains(w) {
                row.insert(w);
            }
            for k in 0..m {
                if !self.nodes.node_skipped(k, mode) && to_node(w, k) {
                    row.insert(n + k);
                }
            }
            allowed += row.count_ones(..);
            rows.push(row);
        }
        rows.resize(total, FixedBitSet::with_capacity(total));
        TruthTable {
            protocol,
            port,
            keys: self.keys.clone(),
            order: self.order.clone(),
            rows,
            allowed_count: allowed,
            families: Vec::new(),
            node_count: self.nodes.list.len(),
            by_family: None,
            hairpin: FixedBitSet::new(),
            replicated: self.replicated.clone(),
        }
    }

    /// Writes the atoms of rule `r`'s ports for destination identity `d` into `out` (ORed).
    pub(super) fn or_rule_atoms(&self, out: &mut Bits, r: &AnalyzerRule, d: usize) {
        self.or_port_atoms(out, r.ports, d);
    }

    /// Writes the atoms of a port set for destination identity `d` into `out` (ORed).
    pub(super) fn or_port_atoms(&self, out: &mut Bits, ports: PortSetId, d: usize) {
        let ports = self.set.port_set(ports);
        out.or_assign(&ports.base_atoms);
        if ports.named.is_empty() {
            return;
        }
        let ident = &self.set.identities.list[d];
        for named in &ports.named {
            if let Some(port) = ident.named_port(named.name, named.protocol) {
                if port >= 1 {
                    out.set(self.set.atoms.index(named.protocol, port));
                }
            }
        }
    }

    /// The atoms allowed from source identity `s` (of family class `s_class`, egress-isolated
    /// or not) to destination identity `d` (`e` and `i` are scratch; the result is left in `e`).
    #[inline]
    fn pair_atoms(&self, src: Source, d: usize, scratch: &mut Scratch, all: &Bits) {
        let Scratch { e, i, tiers, .. } = scratch;
        let s = src.identity;
        let f = src.mode.pair(src.class, self.set.identities.list[d].class);
        if src.egress_isolated {
            e.clear();
            for &ri in &self.egress.rules_of[s] {
                let r = &self.rules[ri];
                if r.peer_contains(d, f) {
                    self.or_rule_atoms(e, r, d);
                }
            }
        } else {
            e.clone_from(all);
        }
        let pair = TierPair {
            src: s,
            dst: d,
            family: f,
        };
        if let Some(cache) = tiers.as_mut() {
            self.tier_apply(cache, Direction::Egress, pair, src.egress_isolated, e);
        }
        let d_isolated = self.ingress.isolated.get(d);
        let d_tiers = self.tiers.selects(Direction::Ingress, d);
        if (d_isolated || d_tiers) && !e.is_empty() {
            if d_isolated {
                i.clear();
                for &ri in &self.ingress.rules_of[d] {
                    let r = &self.rules[ri];
                    if r.peer_contains(s, f) {
                        self.or_rule_atoms(i, r, d);
                    }
                }
            } else {
                i.clone_from(all);
            }
            if let Some(cache) = tiers.as_mut() {
                self.tier_apply(cache, Direction::Ingress, pair, d_isolated, i);
            }
            e.and_assign(i);
        }
    }

    /// Per workload, whether it may reach itself through a Service address (hairpin) on one
    /// protocol and port: the admin tiers decide; NetworkPolicy allows it for the workloads it
    /// isolates (as [`crate::eval::evaluate_hairpin`]).
    fn hairpins(&self, ok: RulePorts<'_>) -> FixedBitSet {
        let n = self.workload_count;
        let mut out = FixedBitSet::with_capacity(n);
        if !self.tiers.any() {
            out.insert_range(..);
            return out;
        }
        for (w, &x) in self.identity_of.iter().enumerate() {
            let f = CLASS_FAMILIES[self.nodes.class_of[w]].first().copied();
            let allowed = [Direction::Egress, Direction::Ingress]
                .into_iter()
                .all(|d| {
                    let isolated = match d {
                        Direction::Ingress => self.ingress.isolated.get(x),
                        Direction::Egress => self.egress.isolated.get(x),
                    };
                    self.tiers.allows(
                        d,
                        x,
                        isolated,
                        || true,
                        |ri, r| ok.admin[ri].admits(x) && r.peer_contains(x, f),
                    )
                });
            out.set(w, allowed);
        }
        out
    }

    /// Per workload, the atoms it may reach itself on through a Service address (hairpin); empty
    /// when no admin policy applies (then everything is allowed).
    fn hairpin_atoms(
        &self,
        interned: &mut Interned,
        scratch: &mut Scratch,
        all: &Bits,
    ) -> Vec<u32> {
        if !self.tiers.any() {
            return Vec::new();
        }
        let Scratch { e, i, fold, .. } = scratch;
        let mut out = Vec::with_capacity(self.workload_count);
        for (w, &x) in self.identity_of.iter().enumerate() {
            let f = CLASS_FAMILIES[self.nodes.class_of[w]].first().copied();
            e.clone_from(all);
            i.clone_from(all);
            for (d, b) in [(Direction::Egress, &mut *e), (Direction::Ingress, &mut *i)] {
                let isolated = match d {
                    Direction::Ingress => self.ingress.isolated.get(x),
                    Direction::Egress => self.egress.isolated.get(x),
                };
                self.tiers
                    .walk_subject(fold, b, d, x, isolated, |_, r, out| {
                        if !r.peer_contains(x, f) {
                            return false;
                        }
                        out.clear();
                        self.or_port_atoms(out, r.ports, x);
                        true
                    });
            }
            e.and_assign(i);
            out.push(interned.id(e));
        }
        out
    }

    /// For every ordered pair of endpoints (workloads, then nodes), the ports allowed per
    /// protocol; with per-family answers where a pair's answer can depend on the family.
    pub fn connectivity_map(&self) -> ConnectivityMap {
        let mut map = self.connectivity_map_in(Mode::Preferred);
        if self.nodes.per_family {
            map.by_family = Some(Box::new([
                self.connectivity_map_in(Mode::Only(Family::V4)),
                self.connectivity_map_in(Mode::Only(Family::V6)),
            ]));
        }
        map.families = self.nodes.families.clone();
        map
    }

    fn connectivity_map_in(&self, mode: Mode) -> ConnectivityMap {
        let a = self.set.atoms.total;
        let all = Bits::full(a);
        let mut interned = Interned::default();
        let dst_count = self.sides.dst_reps.len();
        let mut matrix: Vec<u32> = Vec::with_capacity(self.sides.src_reps.len() * dst_count);
        let mut scratch = Scratch {
            e: Bits::new(a),
            i: Bits::new(a),
            fold: Fold::new(a),
            tiers: self.tier_cache(a),
        };
        let nothing = interned.id(&Bits::new(a));
        let needed_src = self.needed_sides(&self.sides.src_side, self.sides.src_reps.len(), mode);
        let needed_dst = self.needed_sides(&self.sides.dst_side, dst_count, mode);
        for (&s, &src_needed) in self.sides.src_reps.iter().zip(&needed_src) {
            let src = Source {
                identity: s,
                class: self.set.identities.list[s].class,
                egress_isolated: self.egress.isolated.get(s),
                mode,
            };
            for (&d, &dst_needed) in self.sides.dst_reps.iter().zip(&needed_dst) {
                if !(src_needed && dst_needed) {
                    matrix.push(nothing);
                    continue;
                }
                self.pair_atoms(src, d, &mut scratch, &all);
                matrix.push(interned.id(&scratch.e));
            }
        }
        let (node_rows, node_columns) = self.node_cells(mode, &mut interned, &mut scratch, &all);
        let hairpin = match mode {
            Mode::Preferred => self.hairpin_atoms(&mut interned, &mut scratch, &all),
            Mode::Only(_) => Vec::new(),
        };
        let port_sets: Vec<[Vec<(u16, u16)>; 3]> = interned
            .sets
            .iter()
            .map(|b| Protocol::ALL.map(|p| self.set.atoms.ranges(b, p)))
            .collect();
        let identity_of = &self.identity_of;
        ConnectivityMap {
            keys: self.keys.clone(),
            order: self.order.clone(),
            src_of: identity_of
                .iter()
                .map(|&x| self.sides.src_side[x])
                .collect(),
            dst_of: identity_of
                .iter()
                .map(|&x| self.sides.dst_side[x])
                .collect(),
            dst_count,
            matrix,
            node_rows,
            node_columns,
            port_sets,
            families: Vec::new(),
            node_count: self.nodes.list.len(),
            by_family: None,
            hairpin,
            replicated: self.replicated.clone(),
        }
    }
}

impl Analyzer {
    /// Per side (`side_of`: identity -> side), whether `mode` needs its answers: whether some
    /// workload of it has an answer of its own. By the workloads' own family classes: where
    /// families do not matter, one identity (and one side) may hold workloads of several.
    fn needed_sides(&self, side_of: &[usize], count: usize, mode: Mode) -> Vec<bool> {
        let mut needed = vec![false; count];
        for (w, &x) in self.identity_of.iter().enumerate() {
            if !self.nodes.workload_skipped(w, mode) {
                needed[side_of[x]] = true;
            }
        }
        needed
    }

    /// The map's cells from each node to each workload and back, node-major; pairs `mode` skips
    /// get the empty set.
    fn node_cells(
        &self,
        mode: Mode,
        interned: &mut Interned,
        scratch: &mut Scratch,
        all: &Bits,
    ) -> (Vec<u32>, Vec<u32>) {
        let Scratch { e, fold, .. } = scratch;
        let n = self.workload_count;
        let m = self.nodes.list.len();
        let nothing = interned.id(&Bits::new(self.set.atoms.total));
        let everything = interned.id(all);
        let mut node_rows = Vec::with_capacity(n * m);
        let mut node_columns = Vec::with_capacity(n * m);
        // A cell depends on the workload only through its identity and family class (which
        // picks the addresses of the flow), and on its own node for the node-to-workload cell.
        let memo_len = self.set.identities.list.len() * CLASS_FAMILIES.len();
        let mut rows_memo = vec![u32::MAX; memo_len];
        let mut columns_memo = vec![u32::MAX; memo_len];
        for k in 0..m {
            let node_skipped = self.nodes.node_skipped(k, mode);
            rows_memo.fill(u32::MAX);
            columns_memo.fill(u32::MAX);
            for v in 0..n {
                if node_skipped || self.nodes.workload_skipped(v, mode) {
                    node_rows.push(nothing);
                    node_columns.push(nothing);
                    continue;
                }
                let slot = self.identity_of[v] * CLASS_FAMILIES.len() + self.nodes.class_of[v];
                if self.nodes.node_of[v] == Some(k) {
                    node_rows.push(everything);
                } else {
                    if rows_memo[slot] == u32::MAX {
                        self.node_to_workload_atoms(k, v, mode, e, all, fold);
                        rows_memo[slot] = interned.id(e);
                    }
                    node_rows.push(rows_memo[slot]);
                }
                if columns_memo[slot] == u32::MAX {
                    self.workload_to_node_atoms(v, k, mode, e, all, fold);
                    columns_memo[slot] = interned.id(e);
                }
                node_columns.push(columns_memo[slot]);
            }
        }
        (node_rows, node_columns)
    }
}

/// The map's working sets: the egress and ingress atoms of a pair, and a fold for the tiers.
struct Scratch {
    e: Bits,
    i: Bits,
    fold: Fold,
    /// The tiers' answers, when admin policies apply.
    tiers: Option<TierCache>,
}

/// What the map's inner loop needs of a source identity, looked up once per row.
#[derive(Clone, Copy)]
struct Source {
    identity: usize,
    class: usize,
    egress_isolated: bool,
    mode: Mode,
}

/// Distinct atom sets, each numbered once.
#[derive(Default)]
struct Interned {
    index: HashMap<Vec<u64>, u32, FxBuildHasher>,
    sets: Vec<Bits>,
    /// Neighbouring pairs often share a result: the hash lookup is skipped then.
    last: Option<(Bits, u32)>,
}

impl Interned {
    #[inline]
    fn id(&mut self, e: &Bits) -> u32 {
        if let Some((prev, id)) = &self.last {
            // Word by word: the sets are a word or two, too short for a call to memcmp.
            if prev.words().iter().zip(e.words()).all(|(a, b)| a == b) {
                return *id;
            }
        }
        let id = match self.index.get(e.words()) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.sets.len()).unwrap_or(u32::MAX);
                self.index.insert(e.words().to_vec(), id);
                self.sets.push(e.clone());
                id
            }
        };
        match &mut self.last {
            Some((prev, last_id)) => {
                prev.clone_from(e);
                *last_id = id;
            }
            None => self.last = Some((e.clone(), id)),
        }
        id
    }
}
