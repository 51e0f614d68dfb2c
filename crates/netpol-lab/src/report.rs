//! What a probe run found, as data: the observed and the predicted matrix over the same
//! workloads (and, for pairs that talk over both families, one pair of matrices per family), the
//! node host's probes, the hairpin probes, and every probe where the kernel and the analyzer
//! disagree.

use std::net::IpAddr;

use netpol_core::{IpFamily, Protocol};
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
    /// The source: a workload's key or `node/NAME`.
    pub from: String,
    /// The destination: a workload's key or `node/NAME`.
    pub to: String,
    /// The family of the probe: set for node and hairpin probes and for pairs that talk over
    /// both families (absent, so single-stack reports keep their shape, otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<IpFamily>,
    /// The Service address a hairpin probe went to (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
    /// What the packets did: true = reached.
    pub observed: bool,
    /// What the analyzer said: true = allowed.
    pub predicted: bool,
}

/// Every ordered pair of a lab's workloads probed on one protocol and port, beside the analyzer's
/// prediction for the policies in force; with the node host's probes and the hairpin probes.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The probed protocol.
    pub protocol: Protocol,
    /// The probed port.
    pub port: u16,
    /// The probed workloads' keys in output order (namespace, name, kind).
    pub workloads: Vec<String>,
    /// What real packets did, over the family each pair prefers (the source's first family the
    /// destination has).
    pub observed: PairMatrix,
    /// What the analyzer's truth table says for that family.
    pub predicted: PairMatrix,
    /// For pairs that talk over both families, each family probed and predicted; absent when no
    /// pair does (single-stack clusters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_family: Option<FamilyMatrices>,
    /// Probes between the nodes and the workloads, in node order.
    pub node: Vec<NodeProbe>,
    /// Each workload reaching itself through its Service address.
    pub hairpin: Vec<HairpinProbe>,
    /// Every probe where the two differ: pairs in row-major order, then node, then hairpin
    /// probes.
    pub mismatches: Vec<Mismatch>,
    /// How the protocol was probed ([`method_note`]).
    pub method: &'static str,
}

/// The workload pairs of a report: the preferred family's matrices and, when some pair talks
/// over both families, each family's.
#[derive(Debug, Clone)]
pub(crate) struct PairResults {
    pub(crate) observed: PairMatrix,
    pub(crate) predicted: PairMatrix,
    pub(crate) by_family: Option<FamilyMatrices>,
}

/// The pairs that talk over both families (both ends have IPv4 and IPv6), probed over each.
#[derive(Debug, Clone, Serialize)]
pub struct FamilyMatrices {
    /// Which pairs talk over both families; the other cells of the matrices below mean nothing.
    pub dual: PairMatrix,
    /// IPv4 alone.
    #[serde(rename = "IPv4")]
    pub ipv4: FamilyPair,
    /// IPv6 alone.
    #[serde(rename = "IPv6")]
    pub ipv6: FamilyPair,
}

impl FamilyMatrices {
    /// The matrices of one family.
    pub fn of(&self, family: IpFamily) -> &FamilyPair {
        match family {
            IpFamily::V4 => &self.ipv4,
            IpFamily::V6 => &self.ipv6,
        }
    }
}

/// What one family did and what the analyzer says for it (`TruthTable::allowed_in`).
#[derive(Debug, Clone, Serialize)]
pub struct FamilyPair {
    /// What real packets of this family did.
    pub observed: PairMatrix,
    /// What the analyzer says for this family.
    pub predicted: PairMatrix,
}

/// Which flow between a node and a workload a [`NodeProbe`] is.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum NodeFlow {
    /// The node to a workload it runs (allowed even to an ingress-isolated one: kubelet probes).
    NodeToOwnWorkload,
    /// A workload to its own node (limited by the workload's egress rules).
    WorkloadToOwnNode,
    /// A node to a workload on another node (an ordinary external address there).
    NodeToRemoteWorkload,
}

/// One probe between a node and a workload, over one family.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NodeProbe {
    /// Which of the node flows it is.
    pub flow: NodeFlow,
    /// The source: `node/NAME` or a workload's key.
    pub from: String,
    /// The destination: `node/NAME` or a workload's key.
    pub to: String,
    /// The family probed.
    pub family: IpFamily,
    /// The source address.
    pub from_address: IpAddr,
    /// The destination address.
    pub to_address: IpAddr,
    /// What the packets did: true = reached.
    pub observed: bool,
    /// What the analyzer said: true = allowed.
    pub predicted: bool,
}

/// A workload reaching itself through a kube-proxy-like Service address on its node (DNAT back
/// to itself plus masquerade).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HairpinProbe {
    /// The workload's key.
    pub workload: String,
    /// The node holding the Service.
    pub node: String,
    /// The family probed.
    pub family: IpFamily,
    /// The Service address probed.
    pub service: IpAddr,
    /// The workload's address the Service leads to.
    pub address: IpAddr,
    /// What the packets did: true = reached.
    pub observed: bool,
    /// What the analyzer said (self-traffic): true = allowed.
    pub predicted: bool,
}

impl ProbeReport {
    /// Compares two matrices over the same workloads (no node, hairpin or per-family probes).
    #[cfg(test)]
    pub(crate) fn compare(
        protocol: Protocol,
        port: u16,
        observed: PairMatrix,
        predicted: PairMatrix,
    ) -> ProbeReport {
        let pairs = PairResults {
            observed,
            predicted,
            by_family: None,
        };
        ProbeReport::assemble(protocol, port, pairs, Vec::new(), Vec::new())
    }

    /// The report of everything probed, with its mismatches.
    pub(crate) fn assemble(
        protocol: Protocol,
        port: u16,
        pairs: PairResults,
        node: Vec<NodeProbe>,
        hairpin: Vec<HairpinProbe>,
    ) -> ProbeReport {
        let mut mismatches = pair_mismatches(&pairs);
        mismatches.extend(
            node.iter()
                .filter(|p| p.observed != p.predicted)
                .map(|p| Mismatch {
                    from: p.from.clone(),
                    to: p.to.clone(),
                    family: Some(p.family),
                    via: None,
                    observed: p.observed,
                    predicted: p.predicted,
                }),
        );
        mismatches.extend(
            hairpin
                .iter()
                .filter(|p| p.observed != p.predicted)
                .map(|p| Mismatch {
                    from: p.workload.clone(),
                    to: p.workload.clone(),
                    family: Some(p.family),
                    via: Some(p.service),
                    observed: p.observed,
                    predicted: p.predicted,
                }),
        );
        ProbeReport {
            protocol,
            port,
            workloads: pairs.observed.workloads().to_vec(),
            observed: pairs.observed,
            predicted: pairs.predicted,
            by_family: pairs.by_family,
            node,
            hairpin,
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

    /// Whether `from` and `to` (workload keys) talk over both families.
    pub fn is_dual(&self, from: &str, to: &str) -> bool {
        self.by_family
            .as_ref()
            .is_some_and(|f| f.dual.get(from, to))
    }

    /// How many probes the report holds: one per ordered pair, one more per pair that talks over
    /// both families, and every node and hairpin probe.
    pub fn probe_count(&self) -> usize {
        let n = self.workloads.len();
        let extra = self.by_family.as_ref().map_or(0, |f| {
            (0..n * n).filter(|&i| f.dual.at(i / n, i % n)).count()
        });
        n * n + extra + self.node.len() + self.hairpin.len()
    }
}

/// The pairs where the kernel and the analyzer differ, row by row; a pair that talks over both
/// families is compared family by family.
fn pair_mismatches(pairs: &PairResults) -> Vec<Mismatch> {
    let workloads = pairs.observed.workloads();
    let n = workloads.len();
    let mut out = Vec::new();
    for (r, c) in (0..n * n).map(|i| (i / n, i % n)) {
        let mismatch = |family: Option<IpFamily>, observed: bool, predicted: bool| Mismatch {
            from: workloads[r].clone(),
            to: workloads[c].clone(),
            family,
            via: None,
            observed,
            predicted,
        };
        match &pairs.by_family {
            Some(f) if f.dual.at(r, c) => {
                for family in IpFamily::ALL {
                    let m = f.of(family);
                    let (o, p) = (m.observed.at(r, c), m.predicted.at(r, c));
                    if o != p {
                        out.push(mismatch(Some(family), o, p));
                    }
                }
            }
            _ => {
                let (o, p) = (pairs.observed.at(r, c), pairs.predicted.at(r, c));
                if o != p {
                    out.push(mismatch(None, o, p));
                }
            }
        }
    }
    out
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
                family: None,
                via: None,
                observed: true,
                predicted: false
            }]
        );
        assert_eq!(report.method, method_note(Protocol::Udp));
        assert_eq!(report.probe_count(), 4);
    }

    #[test]
    fn a_dual_stack_pair_is_compared_per_family_and_node_and_hairpin_probes_join_the_mismatches() {
        let m = |cell: fn(usize, usize) -> bool| PairMatrix::from_fn(keys(), cell);
        // x/b -> x/a talks over both families; the kernel reached it over IPv6 only, the
        // analyzer allows both.
        let pairs = PairResults {
            observed: m(|_, _| false),
            predicted: m(|_, _| true),
            by_family: Some(FamilyMatrices {
                dual: m(|r, c| r == 0 && c == 1),
                ipv4: FamilyPair {
                    observed: m(|r, c| r == c),
                    predicted: m(|_, _| true),
                },
                ipv6: FamilyPair {
                    observed: m(|_, _| true),
                    predicted: m(|_, _| true),
                },
            }),
        };
        let node = NodeProbe {
            flow: NodeFlow::WorkloadToOwnNode,
            from: "x/a".into(),
            to: "node/n".into(),
            family: IpFamily::V4,
            from_address: "10.0.0.1".parse().unwrap(),
            to_address: "10.0.0.254".parse().unwrap(),
            observed: true,
            predicted: false,
        };
        let hairpin = HairpinProbe {
            workload: "x/a".into(),
            node: "n".into(),
            family: IpFamily::V4,
            service: "10.96.0.1".parse().unwrap(),
            address: "10.0.0.1".parse().unwrap(),
            observed: false,
            predicted: true,
        };
        let report = ProbeReport::assemble(Protocol::Tcp, 80, pairs, vec![node], vec![hairpin]);
        let got: Vec<(String, String, Option<IpFamily>, Option<IpAddr>)> = report
            .mismatches
            .iter()
            .map(|m| (m.from.clone(), m.to.clone(), m.family, m.via))
            .collect();
        let s = |k: &str| k.to_string();
        assert_eq!(
            got,
            vec![
                // Row x/b: its self pair (not dual) and its IPv4 flow to x/a (IPv6 agrees).
                (s("x/b"), s("x/b"), None, None),
                (s("x/b"), s("x/a"), Some(IpFamily::V4), None),
                (s("x/a"), s("x/b"), None, None),
                (s("x/a"), s("x/a"), None, None),
                (s("x/a"), s("node/n"), Some(IpFamily::V4), None),
                (
                    s("x/a"),
                    s("x/a"),
                    Some(IpFamily::V4),
                    "10.96.0.1".parse().ok()
                ),
            ]
        );
        assert!(report.is_dual("x/b", "x/a"));
        assert_eq!(report.probe_count(), 4 + 1 + 1 + 1);
        assert_eq!(report.mismatches.len(), 6);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["mismatches"][1]["family"], "IPv4");
        assert!(json["mismatches"][0].get("family").is_none());
        assert_eq!(json["by_family"]["IPv6"]["observed"]["x/b"]["x/a"], true);
    }
}
