//! One probe run of a cluster lab on one protocol and port, in a single concurrent batch:
//! * every ordered pair of workloads over the family the pair prefers, and a pair that talks over
//!   both families over the other one too;
//! * every node to each workload it runs, each of those workloads to the node, and the node to
//!   every workload on another node, over each family both ends have;
//! * every workload to its own Service address (hairpin), over each family.
//!
//! Every answer is compared with the analyzer's truth table for the policies in force: pairs and
//! node flows per family (`TruthTable::allowed_in`; nodes are endpoints after the workloads),
//! hairpin by the truth table's own answer for it (`TruthTable::hairpin_allowed`: subject to the
//! admin tiers, unlike a workload reaching its own address), over the family of the workload's
//! first address; over its other family (a dual-stack workload has two Service addresses) by
//! the evaluator (`evaluate_hairpin_at`), which the analyzer's property tests hold it to.

use std::collections::HashMap;
use std::net::IpAddr;

use netpol_core::{
    address_of_family, evaluate_hairpin_at, families_of, flow_addresses, Analyzer, IpFamily,
    Protocol, TruthTable, Workload,
};
use netpol_dataplane::ProbeRequest;

use super::{node_host_name, probe_protocol, ClusterLab, PROBE_TIMEOUT};
use crate::error::LabError;
use crate::report::{
    FamilyMatrices, FamilyPair, HairpinProbe, NodeFlow, NodeProbe, PairMatrix, PairResults,
    ProbeReport,
};

/// What one probe of the batch stands for.
enum Slot {
    /// Pair (row, column) of the output order, over the family it prefers.
    Pair,
    /// A dual-stack pair (row, column) over the family it does not prefer.
    OtherFamily(usize, usize, IpFamily),
    /// A node probe (its `observed` is filled in from the result).
    Node(NodeProbe),
    /// A hairpin probe (likewise).
    Hairpin(HairpinProbe),
}

/// The probes of one run and what each stands for.
struct Batch {
    protocol: Protocol,
    port: u16,
    requests: Vec<ProbeRequest>,
    /// (source, destination) as an error names them.
    names: Vec<(String, String)>,
    slots: Vec<Slot>,
}

impl Batch {
    fn push(&mut self, from: &str, to_name: String, to: IpAddr, slot: Slot) {
        self.requests.push(ProbeRequest {
            from_host: from.to_string(),
            to_addr: to,
            protocol: probe_protocol(self.protocol),
            port: self.port,
            timeout: PROBE_TIMEOUT,
        });
        self.names.push((from.to_string(), to_name));
        self.slots.push(slot);
    }
}

/// Both families, when both ends have both (a workload to itself never leaves it: one probe).
fn dual(a: &Workload, b: &Workload, same: bool) -> bool {
    !same && families_of(&a.addresses).len() == 2 && families_of(&b.addresses).len() == 2
}

/// The families both address lists have, IPv4 first.
fn shared_families(a: &[IpAddr], b: &[IpAddr]) -> Vec<IpFamily> {
    IpFamily::ALL
        .into_iter()
        .filter(|&f| address_of_family(a, f).is_some() && address_of_family(b, f).is_some())
        .collect()
}

/// What the pair probes of a run found, by position in the output order.
struct PairAnswers<'a> {
    order: &'a [usize],
    truth: &'a TruthTable,
    /// The preferred family's results, row-major.
    seen: &'a [bool],
    /// Each pair's preferred family, row-major.
    preferred: &'a [Option<IpFamily>],
    /// The other family's results of the dual-stack pairs.
    other: &'a HashMap<(usize, usize, IpFamily), bool>,
}

impl PairAnswers<'_> {
    fn results(&self, workloads: Vec<String>) -> PairResults {
        let (order, truth, n) = (self.order, self.truth, self.order.len());
        let family = |f: IpFamily| FamilyPair {
            observed: PairMatrix::from_fn(workloads.clone(), |r, c| {
                match self.other.get(&(r, c, f)) {
                    Some(&o) => o,
                    None => self.preferred[r * n + c] == Some(f) && self.seen[r * n + c],
                }
            }),
            // A lab runs one instance of each workload: its own pair is it reaching its own
            // address (always allowed), not the truth table's flow between two replicas.
            predicted: PairMatrix::from_fn(workloads.clone(), |r, c| {
                r == c || truth.allowed_in(order[r], order[c], f)
            }),
        };
        let by_family = (!self.other.is_empty()).then(|| FamilyMatrices {
            dual: PairMatrix::from_fn(workloads.clone(), |r, c| {
                IpFamily::ALL
                    .into_iter()
                    .any(|f| self.other.contains_key(&(r, c, f)))
            }),
            ipv4: family(IpFamily::V4),
            ipv6: family(IpFamily::V6),
        });
        PairResults {
            observed: PairMatrix::from_fn(workloads.clone(), |r, c| self.seen[r * n + c]),
            predicted: PairMatrix::from_fn(workloads, |r, c| {
                r == c || truth.allowed(order[r], order[c])
            }),
            by_family,
        }
    }
}

impl ClusterLab {
    /// Probes every ordered pair of lab workloads on one port (over each family a dual-stack
    /// pair has), the nodes to and from their workloads and every workload's hairpin, all
    /// concurrently, and compares each answer with the analyzer's truth table for the policies
    /// in force.
    pub fn probe_matrix(&self, protocol: Protocol, port: u16) -> Result<ProbeReport, LabError> {
        let cluster = &self.enforced;
        let truth = Analyzer::new(cluster, self.opts).truth_table(protocol, port);
        let mut order = self.members.clone();
        order.sort_by_key(|&i| {
            let w = &cluster.workloads[i];
            (w.namespace.clone(), w.name.clone(), w.kind)
        });
        let mut batch = Batch {
            protocol,
            port,
            requests: Vec::new(),
            names: Vec::new(),
            slots: Vec::new(),
        };
        let preferred = self.plan_pairs(&order, &mut batch)?;
        self.plan_node_probes(&order, &truth, &mut batch);
        self.plan_hairpin(&truth, (protocol, port), &mut batch);

        let mut seen = Vec::with_capacity(batch.requests.len());
        for (i, result) in self.lab.probe_many(&batch.requests).into_iter().enumerate() {
            let (from, to) = &batch.names[i];
            seen.push(result.map_err(|source| LabError::Probe {
                from: from.clone(),
                to: to.clone(),
                protocol,
                port,
                source: Box::new(source),
            })?);
        }
        let n = order.len();
        let mut other: HashMap<(usize, usize, IpFamily), bool> = HashMap::new();
        let (mut node, mut hairpin) = (Vec::new(), Vec::new());
        for (slot, &observed) in batch.slots.into_iter().zip(&seen).skip(n * n) {
            match slot {
                Slot::Pair => {}
                Slot::OtherFamily(r, c, f) => {
                    other.insert((r, c, f), observed);
                }
                Slot::Node(p) => node.push(NodeProbe { observed, ..p }),
                Slot::Hairpin(p) => hairpin.push(HairpinProbe { observed, ..p }),
            }
        }
        let workloads: Vec<String> = order.iter().map(|&i| self.keys[i].clone()).collect();
        let pairs = PairAnswers {
            order: &order,
            truth: &truth,
            seen: &seen[..n * n],
            preferred: &preferred,
            other: &other,
        }
        .results(workloads);
        Ok(ProbeReport::assemble(protocol, port, pairs, node, hairpin))
    }

    /// Every ordered pair over its preferred family (these come first in the batch, row-major),
    /// then the other family of each dual-stack pair. Returns each pair's preferred family.
    fn plan_pairs(
        &self,
        order: &[usize],
        batch: &mut Batch,
    ) -> Result<Vec<Option<IpFamily>>, LabError> {
        let cluster = &self.enforced;
        let mut preferred = Vec::with_capacity(order.len() * order.len());
        let mut others = Vec::new();
        for (r, &from) in order.iter().enumerate() {
            for (c, &to) in order.iter().enumerate() {
                let (a, b) = (&cluster.workloads[from], &cluster.workloads[to]);
                let (_, dst) = flow_addresses(a, b).ok_or_else(|| LabError::NoCommonFamily {
                    from: self.keys[from].clone(),
                    to: self.keys[to].clone(),
                })?;
                let family = IpFamily::of(&dst);
                preferred.push(Some(family));
                batch.push(&self.keys[from], self.keys[to].clone(), dst, Slot::Pair);
                if dual(a, b, from == to) {
                    let f = match family {
                        IpFamily::V4 => IpFamily::V6,
                        IpFamily::V6 => IpFamily::V4,
                    };
                    if let Some(d) = address_of_family(&b.addresses, f) {
                        others.push((r, c, from, to, f, d));
                    }
                }
            }
        }
        for (r, c, from, to, f, d) in others {
            let slot = Slot::OtherFamily(r, c, f);
            batch.push(&self.keys[from], self.keys[to].clone(), d, slot);
        }
        Ok(preferred)
    }

    /// Each node to every workload (its own and the others') and each of its own workloads to
    /// it, over every family both have.
    fn plan_node_probes(&self, order: &[usize], truth: &TruthTable, batch: &mut Batch) {
        let cluster = &self.enforced;
        for node in &self.node_addresses {
            let Some(n) = cluster.node_index(&node.name) else {
                continue;
            };
            let node_end = cluster.workloads.len() + n;
            let host = node_host_name(&node.name);
            for &w in order {
                let workload = &cluster.workloads[w];
                let own = workload.node.as_deref() == Some(node.name.as_str());
                for f in shared_families(&node.addresses, &workload.addresses) {
                    let (Some(na), Some(wa)) = (
                        address_of_family(&node.addresses, f),
                        address_of_family(&workload.addresses, f),
                    ) else {
                        continue;
                    };
                    let key = &self.keys[w];
                    let mut probe = |flow, from: &str, to: &str, addrs: (IpAddr, IpAddr), ends| {
                        let (src, dst): (usize, usize) = ends;
                        let p = NodeProbe {
                            flow,
                            from: from.to_string(),
                            to: to.to_string(),
                            family: f,
                            from_address: addrs.0,
                            to_address: addrs.1,
                            observed: false,
                            predicted: truth.allowed_in(src, dst, f),
                        };
                        batch.push(from, to.to_string(), addrs.1, Slot::Node(p));
                    };
                    if own {
                        let to_own = NodeFlow::NodeToOwnWorkload;
                        probe(to_own, &host, key, (na, wa), (node_end, w));
                        let from_own = NodeFlow::WorkloadToOwnNode;
                        probe(from_own, key, &host, (wa, na), (w, node_end));
                    } else {
                        let remote = NodeFlow::NodeToRemoteWorkload;
                        probe(remote, &host, key, (na, wa), (node_end, w));
                    }
                }
            }
        }
    }

    /// Every workload to its own Service addresses.
    fn plan_hairpin(
        &self,
        truth: &TruthTable,
        (protocol, port): (Protocol, u16),
        batch: &mut Batch,
    ) {
        let cluster = &self.enforced;
        for &(w, service) in &self.services {
            let workload = &cluster.workloads[w];
            let family = IpFamily::of(&service);
            let Some(address) = address_of_family(&workload.addresses, family) else {
                continue;
            };
            let p = HairpinProbe {
                workload: self.keys[w].clone(),
                node: workload.node.clone().unwrap_or_default(),
                family,
                service,
                address,
                observed: false,
                predicted: if workload.addresses.first() == Some(&address) {
                    truth.hairpin_allowed(w)
                } else {
                    evaluate_hairpin_at(cluster, self.opts, w, Some(address), protocol, port)
                        .allowed
                },
            };
            batch.push(
                &self.keys[w],
                service.to_string(),
                service,
                Slot::Hairpin(p),
            );
        }
    }
}
