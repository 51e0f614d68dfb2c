//! `netpol report -o html`: one self-contained page (no network, no CDN, works from `file://`).
//!
//! The page is `page.html` with the report's data embedded as JSON in a
//! `<script type="application/json">` element; the page's own script draws everything from it.
//! The data is built here from the connectivity map, so the page shows exactly what `matrix`
//! prints: an edge per ordered pair of workloads with any allowed port, labelled with the ports
//! (labels are interned: most pairs share a handful of them).

use std::collections::HashMap;

use netpol_core::eval::{admin_policies_of, policy_selects};
use netpol_core::exposure::exposure;
use netpol_core::lint::lint;
use netpol_core::render::pair_ports;
use netpol_core::{Cluster, ConnectivityMap, Direction, EvalOptions, Protocol, Workload};
use serde::Serialize;

use super::exposure::{kind_word, sentences};

const PAGE: &str = include_str!("page.html");
/// Where the data goes in the page.
const DATA_MARK: &str = "/*NETPOL_REPORT_DATA*/";

/// Everything the page shows.
#[derive(Serialize)]
pub struct ReportData {
    /// The netpol version that wrote the report.
    pub version: &'static str,
    /// Counts shown at the top (and checked by the browser test).
    pub summary: Summary,
    /// Namespace names, sorted.
    pub namespaces: Vec<String>,
    /// Every workload, in the map's order.
    pub workloads: Vec<WorkloadEntry>,
    /// Distinct port labels (`TCP 80,443, UDP 53`, `all ports`).
    pub labels: Vec<String>,
    /// `[from, to, label]`: indices into `workloads` and `labels`, one per ordered pair of
    /// distinct workloads with any allowed port; empty when there are more than
    /// [`EDGE_LIMIT`] (`edges_omitted`), since the page would be too large to open.
    pub edges: Vec<[u32; 3]>,
    /// Whether `edges` was left empty because there are too many.
    pub edges_omitted: bool,
    /// `[namespace, namespace, pairs]` (lower index first): how many allowed ordered pairs of
    /// workloads there are between two namespaces, in either direction. Always complete.
    pub namespace_edges: Vec<[u32; 3]>,
    /// Per workload: how many workloads it may reach, and how many may reach it.
    pub reach_counts: Vec<[u32; 2]>,
    /// The findings of lint's checks on the model (those `netpol lint` finds in the decoder,
    /// unknown and duplicate fields, need its warn-mode loading and are not here).
    pub lint: Vec<LintRow>,
    /// What each workload exposes, one sentence a row, as `netpol exposure` words it.
    pub exposure: Vec<ExposureRow>,
}

/// One lint finding, flat for the page's table.
#[derive(Serialize)]
pub struct LintRow {
    /// `NP001`...
    pub id: &'static str,
    /// `error`, `warning`, `info`.
    pub severity: &'static str,
    /// `file:line`, when known.
    pub location: String,
    /// The object it is about.
    pub object: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// One exposure sentence.
#[derive(Serialize)]
pub struct ExposureRow {
    /// `VM test-project/vm-a`.
    pub workload: String,
    /// `accepts TCP/22 from everything ...`.
    pub exposure: String,
}

/// The counts at the top of the page.
#[derive(Serialize)]
pub struct Summary {
    /// Namespaces.
    pub namespaces: usize,
    /// Workloads (VMs and pods).
    pub workloads: usize,
    /// Of which VMs (Deckhouse VirtualMachines and KubeVirt VMIs).
    pub vms: usize,
    /// NetworkPolicies.
    pub policies: usize,
    /// ClusterNetworkPolicies, AdminNetworkPolicies and BaselineAdminNetworkPolicies.
    pub admin_policies: usize,
    /// Ordered pairs of distinct workloads with any allowed port.
    pub connections: usize,
    /// Workloads isolated for ingress.
    pub ingress_isolated: usize,
    /// Workloads isolated for egress.
    pub egress_isolated: usize,
}

/// One workload as the page shows it.
#[derive(Serialize)]
pub struct WorkloadEntry {
    /// `ns/name` (with the kind where ambiguous), as in every output.
    pub key: String,
    /// `vm`, `vmi`, `pod`.
    pub kind: &'static str,
    /// Index into `namespaces`.
    pub namespace: u32,
    /// Its name.
    pub name: String,
    /// Its node, if known.
    pub node: Option<String>,
    /// Its addresses.
    pub addresses: Vec<String>,
    /// The policies isolating it for ingress (`ns/name`); empty: open.
    pub ingress: Vec<String>,
    /// The policies isolating it for egress.
    pub egress: Vec<String>,
    /// The admin-tier policies selecting it, in the order they decide (`cnp/NAME (Admin 5)`).
    pub tiers: Vec<String>,
    /// For a workload with replicas: how many instances (`3`, `per node`) and what one of them
    /// may reach another on (`TCP 8080`, `all ports`, `nothing`); absent for a single instance,
    /// which always reaches its own address. Its own pair is not an edge of the graph.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<ReplicaEntry>,
}

/// The flow between two replicas of one workload, as the page's details show it.
#[derive(Serialize)]
pub struct ReplicaEntry {
    /// How many instances it runs.
    pub instances: String,
    /// The ports one replica may reach another on.
    pub ports: String,
}

impl ReportData {
    /// The report of a cluster, given its connectivity map.
    pub fn new(cluster: &Cluster, opts: EvalOptions, map: &ConnectivityMap) -> ReportData {
        let mut namespaces: Vec<String> = cluster
            .workloads
            .iter()
            .map(|w| w.namespace.clone())
            .chain(cluster.namespaces.iter().map(|n| n.name.clone()))
            .collect();
        namespaces.sort();
        namespaces.dedup();
        let ns_index: HashMap<&str, u32> = namespaces
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), index_u32(i)))
            .collect();
        let keys = map.keys();
        let workloads: Vec<WorkloadEntry> = cluster
            .workloads
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let mut entry =
                    WorkloadEntry::new(cluster, w, &keys[i], ns_index[w.namespace.as_str()]);
                if map.has_replicas(i) {
                    let ports = port_label(map, i, i);
                    entry.replicas = Some(ReplicaEntry {
                        instances: w.instances.to_string(),
                        ports: if ports.is_empty() {
                            "nothing".to_string()
                        } else {
                            ports
                        },
                    });
                }
                entry
            })
            .collect();
        let connections = Connections::of(map, &workloads);
        let summary = Summary {
            namespaces: namespaces.len(),
            workloads: workloads.len(),
            vms: cluster.workloads.iter().filter(|w| w.kind.is_vm()).count(),
            policies: cluster.policies.len(),
            admin_policies: cluster.admin_policies.len(),
            connections: connections.count,
            ingress_isolated: workloads.iter().filter(|w| !w.ingress.is_empty()).count(),
            egress_isolated: workloads.iter().filter(|w| !w.egress.is_empty()).count(),
        };
        ReportData {
            version: env!("CARGO_PKG_VERSION"),
            summary,
            namespaces,
            workloads,
            edges_omitted: connections.count > connections.edges.len(),
            labels: connections.labels,
            edges: connections.edges,
            namespace_edges: connections.namespace_edges,
            reach_counts: connections.reach,
            lint: lint_rows(cluster, opts),
            exposure: exposure_rows(cluster, opts),
        }
    }

    /// The page, with this data embedded.
    pub fn to_html(&self) -> Result<String, serde_json::Error> {
        let json = serde_json::to_string(self)?;
        Ok(PAGE.replacen(DATA_MARK, &script_safe(&json), 1))
    }
}

impl WorkloadEntry {
    fn new(cluster: &Cluster, w: &Workload, key: &str, namespace: u32) -> WorkloadEntry {
        let isolating = |direction: Direction| -> Vec<String> {
            cluster
                .policies
                .iter()
                .filter(|p| p.affects(direction) && policy_selects(p, w))
                .map(|p| p.key())
                .collect()
        };
        WorkloadEntry {
            key: key.to_string(),
            kind: w.kind.short_name(),
            namespace,
            name: w.name.clone(),
            node: w.node.clone(),
            addresses: w.addresses.iter().map(|a| a.to_string()).collect(),
            ingress: isolating(Direction::Ingress),
            egress: isolating(Direction::Egress),
            tiers: admin_policies_of(cluster, w)
                .into_iter()
                .map(|p| format!("{} ({} {})", p.key(), p.tier, p.priority))
                .collect(),
            replicas: None,
        }
    }
}

fn lint_rows(cluster: &Cluster, opts: EvalOptions) -> Vec<LintRow> {
    lint(cluster, opts)
        .findings
        .into_iter()
        .map(|f| LintRow {
            id: f.check.id(),
            severity: f.severity.as_str(),
            location: f
                .origin
                .map(|o| format!("{}:{}", o.file, o.line))
                .unwrap_or_default(),
            object: f.object,
            message: f.message,
            hint: f.hint,
        })
        .collect()
}

fn exposure_rows(cluster: &Cluster, opts: EvalOptions) -> Vec<ExposureRow> {
    exposure(cluster, opts)
        .workloads
        .iter()
        .flat_map(|w| {
            let subject = format!("{} {}", kind_word(w.kind), w.workload);
            sentences(w).into_iter().map(move |line| ExposureRow {
                workload: subject.clone(),
                exposure: line,
            })
        })
        .collect()
}

fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The most workload-level connections a page embeds (about 4 MB of data; a browser opens it in
/// well under a second). Above it the page shows namespaces and counts only.
pub const EDGE_LIMIT: usize = 250_000;

/// The allowed ordered pairs of distinct workloads, in one pass over the map: the counts the page
/// always shows, and the labelled pairs while there are at most [`EDGE_LIMIT`] of them.
struct Connections {
    count: usize,
    /// `[from, to, label]`; empty when `count` is over the limit.
    edges: Vec<[u32; 3]>,
    /// Distinct labels, indexed by the edges' third field.
    labels: Vec<String>,
    namespace_edges: Vec<[u32; 3]>,
    reach: Vec<[u32; 2]>,
}

impl Connections {
    fn of(map: &ConnectivityMap, workloads: &[WorkloadEntry]) -> Connections {
        let mut c = Connections {
            count: 0,
            edges: Vec::new(),
            labels: Vec::new(),
            namespace_edges: Vec::new(),
            reach: vec![[0u32; 2]; workloads.len()],
        };
        let mut label_of: HashMap<String, u32> = HashMap::new();
        let mut between: HashMap<(u32, u32), u32> = HashMap::new();
        for (f, from) in workloads.iter().enumerate() {
            for (t, to) in workloads.iter().enumerate() {
                if f == t || !map.any_allowed(f, t) {
                    continue;
                }
                c.count += 1;
                c.reach[f][0] += 1;
                c.reach[t][1] += 1;
                let (a, b) = (from.namespace, to.namespace);
                if a != b {
                    *between.entry((a.min(b), a.max(b))).or_default() += 1;
                }
                if c.count <= EDGE_LIMIT {
                    let id = *label_of
                        .entry(port_label(map, f, t))
                        .or_insert_with_key(|l| {
                            c.labels.push(l.clone());
                            index_u32(c.labels.len() - 1)
                        });
                    c.edges.push([index_u32(f), index_u32(t), id]);
                }
            }
        }
        if c.count > EDGE_LIMIT {
            c.edges = Vec::new();
            c.labels = Vec::new();
        }
        c.namespace_edges = between.into_iter().map(|((a, b), n)| [a, b, n]).collect();
        c.namespace_edges.sort_unstable();
        c
    }
}

/// `all ports`, or the pair's ports as the map's text writes them (`TCP 80,443, UDP 53`).
fn port_label(map: &ConnectivityMap, f: usize, t: usize) -> String {
    if Protocol::ALL
        .iter()
        .all(|&p| map.ports(f, t, p) == [(1, 65535)])
    {
        return "all ports".to_string();
    }
    pair_ports(map, f, t)
}

/// JSON that can stand inside a `<script>` element: `<` never appears raw, so no `</script>`
/// or `<!--` in a name can end or change the element.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_a_closing_script_tag_cannot_end_the_data_element() {
        let safe = script_safe(r#"{"name":"</script><script>alert(1)</script>"}"#);
        assert!(!safe.contains("</script"));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["name"], "</script><script>alert(1)</script>");
    }

    #[test]
    fn the_page_has_exactly_one_place_for_the_data() {
        assert_eq!(PAGE.matches(DATA_MARK).count(), 1);
    }
}
