//! The results of the bulk analyses as values: [`TruthTable`] (one protocol and port) and
//! [`ConnectivityMap`] (every port of every protocol), each with its one JSON document (a
//! streaming `Serialize`), and the workload names and order every output uses.

use std::collections::HashMap;

use fixedbitset::FixedBitSet;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::model::{Cluster, IpFamily, Protocol};
use crate::policy_set::ports::proto_index;

/// The names outputs use for workloads, by index into `cluster.workloads`: `namespace/name`, or
/// `kind/namespace/name` (`vm/p/a`, `pod/p/a`) for the rare keys that a Pod and a VM share, so
/// that JSON object keys stay unique.
pub fn output_keys(cluster: &Cluster) -> Vec<String> {
    let mut count: HashMap<String, usize> = HashMap::new();
    for w in &cluster.workloads {
        *count.entry(w.key()).or_default() += 1;
    }
    cluster
        .workloads
        .iter()
        .map(|w| {
            let k = w.key();
            if count.get(&k).copied().unwrap_or(0) > 1 {
                format!("{}/{k}", w.kind.short_name())
            } else {
                k
            }
        })
        .collect()
}

/// Workload indices sorted by `namespace/name`, then kind: the order of every output.
pub fn workload_order(cluster: &Cluster) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cluster.workloads.len()).collect();
    order.sort_by_cached_key(|&i| {
        let w = &cluster.workloads[i];
        (w.namespace.clone(), w.name.clone(), w.kind)
    });
    order
}

/// Which ordered pairs of workloads may talk on one protocol and port.
#[derive(Clone, Debug)]
pub struct TruthTable {
    /// The protocol the table is for.
    pub protocol: Protocol,
    /// The destination port the table is for.
    pub port: u16,
    pub(crate) keys: Vec<String>,
    pub(crate) order: Vec<usize>,
    /// Row per source workload (index into `cluster.workloads`); bit = destination index.
    pub(crate) rows: Vec<FixedBitSet>,
    pub(crate) allowed_count: usize,
    /// Per endpoint: bit 0 it has IPv4, bit 1 IPv6.
    pub(crate) families: Vec<u8>,
    /// How many of the endpoints are nodes (the last ones).
    pub(crate) node_count: usize,
    /// The tables of IPv4 alone and IPv6 alone, when some pair's answer can depend on the family.
    pub(crate) by_family: Option<Box<[TruthTable; 2]>>,
    /// Per workload: whether it may reach itself through a Service address (hairpin).
    pub(crate) hairpin: FixedBitSet,
    /// The workloads with replicas: their diagonal cell is a flow between two of them.
    pub(crate) replicated: FixedBitSet,
}

/// Whether both endpoints have both families (so the pair talks over each); a workload's own
/// pair only when it is a flow between two of its replicas (an instance reaching its own address
/// never leaves it).
fn dual_pair(families: &[u8], replicated: &FixedBitSet, from: usize, to: usize) -> bool {
    (from != to || replicated.contains(from))
        && families.get(from) == Some(&3)
        && families.get(to) == Some(&3)
}

impl TruthTable {
    /// Whether `from` may send to `to` (endpoint indices: workloads by index into
    /// `cluster.workloads`, then nodes by index into `cluster.nodes` after them) over the family
    /// the flow prefers (the source's first family the destination has); false for bad indices.
    ///
    /// The diagonal: for a workload with replicas ([`TruthTable::has_replicas`]), a flow from
    /// one replica to another, as [`crate::eval::evaluate_replicas`] decides it; for any other,
    /// it reaching its own address, always allowed.
    pub fn allowed(&self, from: usize, to: usize) -> bool {
        self.rows.get(from).is_some_and(|r| r.contains(to))
    }

    /// Whether endpoint `w` is a workload with replicas (several instances at once), whose
    /// diagonal cell is the flow between two of them.
    pub fn has_replicas(&self, w: usize) -> bool {
        self.replicated.contains(w)
    }

    /// Whether the pair is a workload without replicas reaching its own address: always
    /// allowed, so the outputs that list pairs leave it out.
    pub fn is_own_address(&self, from: usize, to: usize) -> bool {
        from == to && !self.replicated.contains(from)
    }

    /// Whether `from` may send to `to` over `family` (meaningful when both have it).
    pub fn allowed_in(&self, from: usize, to: usize, family: IpFamily) -> bool {
        match &self.by_family {
            // The per-family tables hold only pairs of two dual-stack endpoints; any other pair
            // shares at most one family, which is the one the preferred answer uses.
            Some(tables) if dual_pair(&self.families, &self.replicated, from, to) => {
                tables[family.index()].allowed(from, to)
            }
            _ => self.allowed(from, to),
        }
    }

    /// Whether `workload` (index into `cluster.workloads`) may reach itself through a Service
    /// address that load-balances back to it (hairpin), over the family of its first address:
    /// unlike reaching its own address (always allowed, the diagonal of [`TruthTable::allowed`]),
    /// this is subject to the admin tiers, as [`crate::eval::evaluate_hairpin`] decides it.
    /// False for a bad index.
    pub fn hairpin_allowed(&self, workload: usize) -> bool {
        self.hairpin.contains(workload)
    }

    /// For a pair whose answer differs between the families, `[IPv4, IPv6]`; `None` when it
    /// does not (or the pair does not talk over both).
    pub fn by_family(&self, from: usize, to: usize) -> Option<[bool; 2]> {
        let tables = self.by_family.as_ref()?;
        if !dual_pair(&self.families, &self.replicated, from, to) {
            return None;
        }
        let v = [tables[0].allowed(from, to), tables[1].allowed(from, to)];
        (v[0] != v[1]).then_some(v)
    }

    /// Number of ordered pairs whose answer differs between the families.
    pub fn differing_count(&self) -> usize {
        if self.by_family.is_none() {
            return 0;
        }
        let n = self.rows.len();
        (0..n)
            .flat_map(|f| (0..n).map(move |t| (f, t)))
            .filter(|&(f, t)| self.by_family(f, t).is_some())
            .count()
    }

    /// The output names of the endpoints, by endpoint index.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// How many of the endpoints are nodes (they come after the workloads).
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// The destinations `from` may reach, as a bitset over workload indices.
    pub fn row(&self, from: usize) -> Option<&FixedBitSet> {
        self.rows.get(from)
    }

    /// Number of allowed ordered pairs (own pairs included: always for a single instance, when
    /// allowed between two replicas for a workload with replicas).
    pub fn allowed_count(&self) -> usize {
        self.allowed_count
    }

    /// Number of denied ordered pairs.
    pub fn denied_count(&self) -> usize {
        self.rows.len() * self.rows.len() - self.allowed_count
    }

    /// Endpoint indices in output order: workloads, then nodes.
    pub fn workload_order(&self) -> &[usize] {
        &self.order
    }

    /// The JSON document `{"port", "protocol", "workloads", "allowed": {from: {to: bool}}}`; a
    /// pair whose answer differs between the families has `{"IPv4": bool, "IPv6": bool}`.
    pub fn to_json(&self) -> serde_json::Value {
        // The streaming `Serialize` below is the one definition of the document; string keys and
        // plain values cannot fail to serialize.
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Serializes to the same document as [`TruthTable::to_json`], streaming (no intermediate tree).
impl Serialize for TruthTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(4))?;
        m.serialize_entry("port", &self.port)?;
        m.serialize_entry("protocol", self.protocol.as_str())?;
        m.serialize_entry("workloads", &KeyList(&self.keys, &self.order))?;
        m.serialize_entry(
            "allowed",
            &PairMatrix {
                keys: &self.keys,
                order: &self.order,
                cell: |from, to| match self.by_family(from, to) {
                    Some([v4, v6]) => Cell::ByFamily(v4, v6),
                    None => Cell::One(self.allowed(from, to)),
                },
            },
        )?;
        m.end()
    }
}

/// A truth table's cell: one answer, or one per family.
enum Cell {
    One(bool),
    ByFamily(bool, bool),
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::One(b) => s.serialize_bool(*b),
            Cell::ByFamily(v4, v6) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("IPv4", v4)?;
                m.serialize_entry("IPv6", v6)?;
                m.end()
            }
        }
    }
}

/// The workload keys in output order, as a JSON array.
struct KeyList<'a>(&'a [String], &'a [usize]);

impl Serialize for KeyList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.1.len()))?;
        for &i in self.1 {
            seq.serialize_element(&self.0[i])?;
        }
        seq.end()
    }
}

/// `{from: {to: cell(from, to)}}` over every ordered pair, in output order, streamed.
struct PairMatrix<'a, F> {
    keys: &'a [String],
    order: &'a [usize],
    cell: F,
}

impl<F, V> Serialize for PairMatrix<'_, F>
where
    F: Fn(usize, usize) -> V,
    V: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Row<'r, 'a, F>(&'r PairMatrix<'a, F>, usize);
        impl<F, V> Serialize for Row<'_, '_, F>
        where
            F: Fn(usize, usize) -> V,
            V: Serialize,
        {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let matrix = self.0;
                let mut m = s.serialize_map(Some(matrix.order.len()))?;
                for &to in matrix.order {
                    m.serialize_entry(&matrix.keys[to], &(matrix.cell)(self.1, to))?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(self.order.len()))?;
        for &from in self.order {
            m.serialize_entry(&self.keys[from], &Row(self, from))?;
        }
        m.end()
    }
}

const EVERYTHING: &[(u16, u16)] = &[(1, 65535)];

/// For every ordered pair of workloads, the allowed ports per protocol.
#[derive(Clone, Debug)]
pub struct ConnectivityMap {
    pub(crate) keys: Vec<String>,
    pub(crate) order: Vec<usize>,
    /// Workload -> source side / destination side (see `Analyzer`).
    pub(crate) src_of: Vec<usize>,
    pub(crate) dst_of: Vec<usize>,
    pub(crate) dst_count: usize,
    /// `[src side * dst_count + dst side]` -> index into `port_sets`.
    pub(crate) matrix: Vec<u32>,
    /// `[node * workloads + workload]` -> index into `port_sets`: from the node to the workload.
    pub(crate) node_rows: Vec<u32>,
    /// `[node * workloads + workload]` -> index into `port_sets`: from the workload to the node.
    pub(crate) node_columns: Vec<u32>,
    /// Distinct results: per protocol (in `Protocol::ALL` order) inclusive merged ranges.
    pub(crate) port_sets: Vec<[Vec<(u16, u16)>; 3]>,
    /// Per endpoint: bit 0 it has IPv4, bit 1 IPv6.
    pub(crate) families: Vec<u8>,
    /// How many of the endpoints are nodes (the last ones).
    pub(crate) node_count: usize,
    /// The maps of IPv4 alone and IPv6 alone, when some pair's answer can depend on the family.
    pub(crate) by_family: Option<Box<[ConnectivityMap; 2]>>,
    /// Per workload: index into `port_sets` of what it may reach itself on through a Service
    /// address (hairpin); empty when no admin policy applies (everything is allowed).
    pub(crate) hairpin: Vec<u32>,
    /// The workloads with replicas: their diagonal cell is a flow between two of them.
    pub(crate) replicated: FixedBitSet,
}

impl ConnectivityMap {
    /// The allowed ports of `protocol` from `from` to `to` (indices into `cluster.workloads`) as
    /// sorted, merged, inclusive ranges; empty for bad indices. The diagonal as in
    /// [`TruthTable::allowed`]: between two replicas of a workload that has them, else every
    /// port (an instance reaching its own address).
    pub fn ports(&self, from: usize, to: usize, protocol: Protocol) -> &[(u16, u16)] {
        let total = self.keys.len();
        if from >= total || to >= total {
            return &[];
        }
        let n = self.src_of.len();
        let id = match (from.checked_sub(n), to.checked_sub(n)) {
            // Nothing isolates a node, and an instance always reaches its own address.
            (Some(_), Some(_)) => return EVERYTHING,
            _ if self.is_own_address(from, to) => return EVERYTHING,
            (Some(k), None) => self.node_rows.get(k * n + to),
            (None, Some(k)) => self.node_columns.get(k * n + from),
            (None, None) => {
                let (s, d) = (self.src_of[from], self.dst_of[to]);
                self.matrix.get(s * self.dst_count + d)
            }
        };
        id.and_then(|&id| self.port_sets.get(id as usize))
            .map_or(&[], |sets| sets[proto_index(protocol)].as_slice())
    }

    /// The ports of `protocol` on which `workload` may reach itself through a Service address
    /// that load-balances back to it (hairpin), over the family of its first address, as
    /// [`crate::eval::evaluate_hairpin`] decides it; empty for a bad index.
    pub fn hairpin_ports(&self, workload: usize, protocol: Protocol) -> &[(u16, u16)] {
        if workload >= self.src_of.len() {
            return &[];
        }
        match self.hairpin.get(workload) {
            None => EVERYTHING,
            Some(&id) => self
                .port_sets
                .get(id as usize)
                .map_or(&[], |sets| sets[proto_index(protocol)].as_slice()),
        }
    }

    /// Whether endpoint `w` is a workload with replicas, as [`TruthTable::has_replicas`].
    pub fn has_replicas(&self, w: usize) -> bool {
        self.replicated.contains(w)
    }

    /// Whether the pair is a workload without replicas reaching its own address, as
    /// [`TruthTable::is_own_address`]: every port, left out of the outputs that list pairs.
    pub fn is_own_address(&self, from: usize, to: usize) -> bool {
        from == to && !self.replicated.contains(from)
    }

    /// The allowed ports over `family` alone (meaningful when both ends have it).
    pub fn ports_in(
        &self,
        from: usize,
        to: usize,
        protocol: Protocol,
        family: IpFamily,
    ) -> &[(u16, u16)] {
        match &self.by_family {
            // As in `TruthTable::allowed_in`: only dual-stack pairs have per-family answers.
            Some(maps) if dual_pair(&self.families, &self.replicated, from, to) => {
                maps[family.index()].ports(from, to, protocol)
            }
            _ => self.ports(from, to, protocol),
        }
    }

    /// Whether the pair's allowed ports differ between the families (it talks over both).
    pub fn differs(&self, from: usize, to: usize) -> bool {
        let Some(maps) = &self.by_family else {
            return false;
        };
        dual_pair(&self.families, &self.replicated, from, to)
            && Protocol::ALL
                .iter()
                .any(|&p| maps[0].ports(from, to, p) != maps[1].ports(from, to, p))
    }

    /// The output names of the endpoints, by endpoint index.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// How many of the endpoints are nodes (they come after the workloads).
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// Whether anything at all is allowed from `from` to `to`.
    pub fn any_allowed(&self, from: usize, to: usize) -> bool {
        Protocol::ALL
            .iter()
            .any(|p| !self.ports(from, to, *p).is_empty())
    }

    /// Workload indices in output order.
    pub fn workload_order(&self) -> &[usize] {
        &self.order
    }

    /// How many distinct per-pair results the map holds (a measure of its compression).
    pub fn distinct_port_sets(&self) -> usize {
        self.port_sets.len()
    }

    /// The JSON document
    /// `{"workloads": [...], "connections": {from: {to: {"TCP": [[lo, hi]], "UDP": [], "SCTP": []}}}}`.
    pub fn to_json(&self) -> serde_json::Value {
        // The streaming `Serialize` below is the one definition of the document.
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Serializes to the same document as [`ConnectivityMap::to_json`], streaming.
impl Serialize for ConnectivityMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// `{"TCP": [[lo, hi], ...], "UDP": [...], "SCTP": [...]}` of one ordered pair, or
        /// `{"IPv4": {...}, "IPv6": {...}}` when its ports differ between the families.
        struct Pair<'a>(&'a ConnectivityMap, usize, usize);
        impl Serialize for Pair<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if let (true, Some(maps)) = (self.0.differs(self.1, self.2), &self.0.by_family) {
                    let mut m = s.serialize_map(Some(2))?;
                    m.serialize_entry("IPv4", &Pair(&maps[0], self.1, self.2))?;
                    m.serialize_entry("IPv6", &Pair(&maps[1], self.1, self.2))?;
                    return m.end();
                }
                let mut m = s.serialize_map(Some(3))?;
                for p in Protocol::ALL {
                    let ranges: Vec<[u16; 2]> = self
                        .0
                        .ports(self.1, self.2, p)
                        .iter()
                        .map(|(lo, hi)| [*lo, *hi])
                        .collect();
                    m.serialize_entry(p.as_str(), &ranges)?;
                }
                m.end()
            }
        }
        let mut m = serializer.serialize_map(Some(2))?;
        m.serialize_entry("workloads", &KeyList(&self.keys, &self.order))?;
        m.serialize_entry(
            "connections",
            &PairMatrix {
                keys: &self.keys,
                order: &self.order,
                cell: |from, to| Pair(self, from, to),
            },
        )?;
        m.end()
    }
}
