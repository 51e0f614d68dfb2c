//! The connectivity map as a graph: a Graphviz digraph (`matrix -o dot`) and a Mermaid flowchart
//! (`matrix -o mermaid`). Namespaces are clusters (subgraphs) of their workloads, nodes stand
//! outside them, and every ordered pair with anything allowed is an edge labelled with its ports
//! as the map's text writes them. A workload with replicas has a loop for the flow between two of
//! them. Left out: the own pair of any other workload (an instance always reaches its own
//! address) and node-to-node pairs (nothing isolates a node, so they are always open).

use std::collections::BTreeMap;
use std::fmt::Write;

use netpol_core::analysis::diff::Ports;
use netpol_core::{Cluster, ConnectivityMap};

use super::diff::ports_text;

/// One endpoint of the graph.
struct Vertex {
    /// Endpoint index in the map.
    index: usize,
    /// Its label inside its namespace box (or the node's `node/NAME`).
    label: String,
}

/// Workloads grouped by namespace (sorted), then the nodes, in output order.
fn vertices(
    cluster: &Cluster,
    map: &ConnectivityMap,
) -> (BTreeMap<String, Vec<Vertex>>, Vec<Vertex>) {
    let n = cluster.workloads.len();
    let keys = map.keys();
    let mut namespaces: BTreeMap<String, Vec<Vertex>> = BTreeMap::new();
    let mut nodes = Vec::new();
    for &i in map.workload_order() {
        match cluster.workloads.get(i) {
            Some(w) => {
                let prefix = format!("{}/", w.namespace);
                let label = keys[i].replacen(&prefix, "", 1);
                namespaces
                    .entry(w.namespace.clone())
                    .or_default()
                    .push(Vertex { index: i, label });
            }
            None if i >= n => nodes.push(Vertex {
                index: i,
                label: keys[i].clone(),
            }),
            None => {}
        }
    }
    (namespaces, nodes)
}

/// Every edge: (from, to, label), in output order.
fn edges(cluster: &Cluster, map: &ConnectivityMap) -> Vec<(usize, usize, String)> {
    let n = cluster.workloads.len();
    let order = map.workload_order();
    let mut out = Vec::new();
    for &f in order {
        for &t in order {
            if map.is_own_address(f, t) || (f >= n && t >= n) {
                continue;
            }
            let ports = Ports::of(map, f, t);
            if !ports.is_empty() {
                out.push((f, t, ports_text(&ports)));
            }
        }
    }
    out
}

/// A double-quoted Graphviz ID.
fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The Graphviz digraph: `dot -Tsvg` draws it.
pub fn render_dot(cluster: &Cluster, map: &ConnectivityMap) -> String {
    let keys = map.keys();
    let (namespaces, nodes) = vertices(cluster, map);
    let mut out = String::from(
        "digraph netpol {\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n  edge [fontname=\"sans-serif\", fontsize=10];\n",
    );
    for (ns, members) in &namespaces {
        let _ = writeln!(out, "  subgraph {} {{", dot_id(&format!("cluster_{ns}")));
        let _ = writeln!(out, "    label={};", dot_id(ns));
        for v in members {
            let _ = writeln!(
                out,
                "    {} [label={}];",
                dot_id(&keys[v.index]),
                dot_id(&v.label)
            );
        }
        out.push_str("  }\n");
    }
    for v in &nodes {
        let _ = writeln!(
            out,
            "  {} [label={}, shape=ellipse];",
            dot_id(&keys[v.index]),
            dot_id(&v.label)
        );
    }
    for (f, t, label) in edges(cluster, map) {
        let _ = writeln!(
            out,
            "  {} -> {} [label={}];",
            dot_id(&keys[f]),
            dot_id(&keys[t]),
            dot_id(&label)
        );
    }
    out.push_str("}\n");
    out
}

/// A Mermaid label: double-quoted, quotes as `#quot;`.
fn mermaid_text(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "#quot;"))
}

/// The Mermaid flowchart (`flowchart LR`): endpoints are `e<index>`, namespaces `ns<i>`.
pub fn render_mermaid(cluster: &Cluster, map: &ConnectivityMap) -> String {
    let (namespaces, nodes) = vertices(cluster, map);
    let mut out = String::from("flowchart LR\n");
    for (i, (ns, members)) in namespaces.iter().enumerate() {
        let _ = writeln!(out, "  subgraph ns{i}[{}]", mermaid_text(ns));
        for v in members {
            let _ = writeln!(out, "    e{}[{}]", v.index, mermaid_text(&v.label));
        }
        out.push_str("  end\n");
    }
    for v in &nodes {
        let _ = writeln!(out, "  e{}([{}])", v.index, mermaid_text(&v.label));
    }
    for (f, t, label) in edges(cluster, map) {
        let _ = writeln!(out, "  e{f} -->|{}| e{t}", mermaid_text(&label));
    }
    out
}
