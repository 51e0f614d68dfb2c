//! What a probe run found, as data: the observed and the predicted matrix over the same
//! workloads, and every pair where they disagree.

use std::net::IpAddr;

use netpol_core::Protocol;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// A verdict for every ordered pair of a list of workloads (row = source, column = destination).
///
/// Serializes as `{from: {to: bool}}` in workload order, the `allowed` object of
/// `netpol matrix -o json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairMatrix {
    workloads: Vec<String>,
    /// Row-major, `workloads.len()` squared cells.
    cells: Vec<bool>,
}

impl PairMatrix {
    /// A matrix over `workloads` with `cell(row, column)` (positions in `workloads`).
    pub fn from_fn(workloads: Vec<String>, cell: impl Fn(usize, usize) -> bool) -> PairMatrix {
        let n = workloads.len();
        let cells = (0..n * n).map(|i| cell(i / n, i % n)).collect();
        PairMatrix { workloads, cells }
    }

    /// The workload keys, in row (and column) order.
    pub fn workloads(&self) -> &[String] {
        &self.workloads
    }

    /// The verdict at a position; false outside the matrix.
    pub fn at(&self, row: usize, column: usize) -> bool {
        let n = self.workloads.len();
        row < n && column < n && self.cells[row * n + column]
    }

    /// The verdict for two workload keys; false for keys not in the matrix.
    pub fn get(&self, from: &str, to: &str) -> bool {
        match (self.position(from), self.position(to)) {
            (Some(row), Some(column)) => self.at(row, column),
            _ => false,
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.workloads.iter().position(|w| w == key)
    }
}

impl Serialize for PairMatrix {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Row<'a>(&'a PairMatrix, usize);
        impl Serialize for Row<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let Row(matrix, row) = *self;
                let mut map = serializer.serialize_map(Some(matrix.workloads.len()))?;
                for (column, to) in matrix.workloads.iter().enumerate() {
                    map.serialize_entry(to, &matrix.at(row, column))?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(self.workloads.len()))?;
        for (row, from) in self.workloads.iter().enumerate() {
            map.serialize_entry(from, &Row(self, row))?;
        }
        map.end()
    }
}

/// A disagreement between the kernel and the analyzer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Mismatch {
    /// The source workload's key.
    pub from: String,
    /// The destination workload's key.
    pub to: String,
    /// What the packets did: true = reached.
    pub observed: bool,
    /// What the analyzer said: true = allowed.
    pub predicted: bool,
}

/// Every ordered pair of a lab's workloads probed on one protocol and port, beside the analyzer's
/// prediction for the policies in force.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The probed protocol.
    pub protocol: Protocol,
    /// The probed port.
    pub port: u16,
    /// The probed workloads' keys in output order (namespace, name, kind).
    pub workloads: Vec<String>,
    /// What real packets did.
    pub observed: PairMatrix,
    /// What the analyzer's truth table says.
    pub predicted: PairMatrix,
    /// The pairs where the two differ, in row-major order.
    pub mismatches: Vec<Mismatch>,
    /// How the protocol was probed ([`method_note`]).
    pub method: &'static str,
}

impl ProbeReport {
    /// Compares two matrices over the same workloads.
    pub(crate) fn compare(
        protocol: Protocol,
        port: u16,
        observed: PairMatrix,
        predicted: PairMatrix,
    ) -> ProbeReport {
        let workloads = observed.workloads().to_vec();
        let n = workloads.len();
        let mismatches = (0..n * n)
            .map(|i| (i / n, i % n))
            .filter(|&(r, c)| observed.at(r, c) != predicted.at(r, c))
            .map(|(r, c)| Mismatch {
                from: workloads[r].clone(),
                to: workloads[c].clone(),
                observed: observed.at(r, c),
                predicted: predicted.at(r, c),
            })
            .collect();
        ProbeReport {
            protocol,
            port,
            workloads,
            observed,
            predicted,
            mismatches,
            method: method_note(protocol),
        }
    }

    /// Whether packets from `from` reached `to` (workload keys).
    pub fn observed(&self, from: &str, to: &str) -> bool {
        self.observed.get(from, to)
    }

    /// Whether the analyzer allows `from` to `to` (workload keys).
    pub fn predicted(&self, from: &str, to: &str) -> bool {
        self.predicted.get(from, to)
    }

    /// How many probes the report holds: one per ordered pair.
    pub fn probe_count(&self) -> usize {
        self.workloads.len() * self.workloads.len()
    }
}

/// One flow from a lab workload to an address outside the cluster (an external host).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExternalProbe {
    /// The source workload's key.
    pub from: String,
    /// The external address.
    pub to: IpAddr,
    /// The probed protocol.
    pub protocol: Protocol,
    /// The probed port.
    pub port: u16,
    /// What the packets did: true = reached.
    pub observed: bool,
    /// What the evaluator said: true = allowed.
    pub predicted: bool,
}

impl ExternalProbe {
    /// Whether the kernel and the evaluator agree.
    pub fn matches(&self) -> bool {
        self.observed == self.predicted
    }
}

/// How a protocol is probed, said in every output.
pub fn method_note(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "TCP: a full handshake and an echoed message",
        Protocol::Udp => "UDP: a datagram echoed back by the destination",
        Protocol::Sctp => "SCTP: this kernel has no SCTP sockets, so the probe sends a raw SCTP INIT and watches for its arrival at the destination",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<String> {
        vec!["x/b".into(), "x/a".into()]
    }

    #[test]
    fn a_matrix_serializes_as_nested_objects_in_workload_order() {
        let m = PairMatrix::from_fn(keys(), |r, c| r == c);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"x/b":{"x/b":true,"x/a":false},"x/a":{"x/b":false,"x/a":true}}"#
        );
    }

    #[test]
    fn unknown_keys_and_positions_read_as_not_allowed() {
        let m = PairMatrix::from_fn(keys(), |_, _| true);
        assert!(m.get("x/a", "x/b"));
        assert!(!m.get("x/a", "y/z"));
        assert!(!m.at(0, 2));
    }

    #[test]
    fn comparing_lists_exactly_the_differing_cells_row_by_row() {
        let observed = PairMatrix::from_fn(keys(), |_, _| true);
        let predicted = PairMatrix::from_fn(keys(), |r, c| !(r == 0 && c == 1));
        let report = ProbeReport::compare(Protocol::Udp, 53, observed, predicted);
        assert_eq!(
            report.mismatches,
            vec![Mismatch {
                from: "x/b".into(),
                to: "x/a".into(),
                observed: true,
                predicted: false
            }]
        );
        assert_eq!(report.method, method_note(Protocol::Udp));
        assert_eq!(report.probe_count(), 4);
    }
}
