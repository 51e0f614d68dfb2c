//! The results of the bulk analyses as values: [`TruthTable`] (one protocol and port) and
//! [`ConnectivityMap`] (every port of every protocol), each with its one JSON document (a
//! streaming `Serialize`), and the workload names and order every output uses.

use std::collections::HashMap;

use fixedbitset::FixedBitSet;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::model::{Cluster, Protocol};
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
}

impl TruthTable {
    /// Whether `from` may send to `to` (indices into `cluster.workloads`); false for bad indices.
    pub fn allowed(&self, from: usize, to: usize) -> bool {
        self.rows.get(from).is_some_and(|r| r.contains(to))
    }

    /// The destinations `from` may reach, as a bitset over workload indices.
    pub fn row(&self, from: usize) -> Option<&FixedBitSet> {
        self.rows.get(from)
    }

    /// Number of allowed ordered pairs (self pairs included).
    pub fn allowed_count(&self) -> usize {
        self.allowed_count
    }

    /// Number of denied ordered pairs.
    pub fn denied_count(&self) -> usize {
        self.rows.len() * self.rows.len() - self.allowed_count
    }

    /// Workload indices in output order.
    pub fn workload_order(&self) -> &[usize] {
        &self.order
    }

    /// The JSON document `{"port", "protocol", "workloads", "allowed": {from: {to: bool}}}`.
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
                cell: |from, to| self.allowed(from, to),
            },
        )?;
        m.end()
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
    /// Distinct results: per protocol (in `Protocol::ALL` order) inclusive merged ranges.
    pub(crate) port_sets: Vec<[Vec<(u16, u16)>; 3]>,
}

impl ConnectivityMap {
    /// The allowed ports of `protocol` from `from` to `to` (indices into `cluster.workloads`) as
    /// sorted, merged, inclusive ranges; a workload reaches itself on every port; empty for bad
    /// indices.
    pub fn ports(&self, from: usize, to: usize, protocol: Protocol) -> &[(u16, u16)] {
        if from == to && from < self.src_of.len() {
            return EVERYTHING;
        }
        let (Some(&s), Some(&d)) = (self.src_of.get(from), self.dst_of.get(to)) else {
            return &[];
        };
        self.matrix
            .get(s * self.dst_count + d)
            .and_then(|&id| self.port_sets.get(id as usize))
            .map_or(&[], |sets| sets[proto_index(protocol)].as_slice())
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
        /// `{"TCP": [[lo, hi], ...], "UDP": [...], "SCTP": [...]}` of one ordered pair.
        struct Pair<'a>(&'a ConnectivityMap, usize, usize);
        impl Serialize for Pair<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
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
