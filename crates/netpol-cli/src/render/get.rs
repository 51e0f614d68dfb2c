//! `netpol get`: the workloads table with isolation columns.

use netpol_core::eval::policy_selects;
use netpol_core::{Cluster, Direction, Workload};

use super::{join_addresses, kubectl_table, render};

/// Which optional columns the table has.
#[derive(Clone, Copy)]
pub struct Columns {
    /// NAMESPACE (every namespace is listed).
    pub namespace: bool,
    /// KIND (VMs and pods are listed together).
    pub kind: bool,
}

/// One row per workload: namespace, kind, name, phase, node, addresses, ingress, egress.
pub fn workloads(cluster: &Cluster, rows: &[&Workload], columns: Columns) -> String {
    let mut header = Vec::new();
    if columns.namespace {
        header.push("NAMESPACE");
    }
    if columns.kind {
        header.push("KIND");
    }
    header.extend(["NAME", "PHASE", "NODE", "IPADDRESS", "INGRESS", "EGRESS"]);
    let mut table = kubectl_table(&header);
    for w in rows {
        let mut row = Vec::new();
        if columns.namespace {
            row.push(w.namespace.clone());
        }
        if columns.kind {
            row.push(w.kind.short_name().to_string());
        }
        row.push(w.name.clone());
        row.push(w.phase.clone().unwrap_or_default());
        row.push(w.node.clone().unwrap_or_default());
        row.push(join_addresses(&w.addresses));
        row.push(isolation(cluster, w, Direction::Ingress));
        row.push(isolation(cluster, w, Direction::Egress));
        table.add_row(row);
    }
    render(&table)
}

/// `open`, or `isolated (N policies)`.
fn isolation(cluster: &Cluster, workload: &Workload, direction: Direction) -> String {
    let n = cluster
        .policies
        .iter()
        .filter(|p| p.affects(direction) && policy_selects(p, workload))
        .count();
    match n {
        0 => "open".to_string(),
        1 => "isolated (1 policy)".to_string(),
        n => format!("isolated ({n} policies)"),
    }
}
