//! `netpol get vms|pods|workloads`: a `d8 k get vm`-style listing with isolation columns.

use anyhow::Result;
use netpol_core::eval::policy_selects;
use netpol_core::{Cluster, Direction, Workload, WorkloadKind};

use crate::cli::{GetArgs, GetWhat};
use crate::input;
use crate::output::{join_addresses, kubectl_table, render};

pub fn run(args: &GetArgs) -> Result<u8> {
    let input = input::load(&args.input);
    let cluster = &input.cluster;
    let mut rows: Vec<&Workload> = cluster
        .workloads
        .iter()
        .filter(|w| match args.what {
            GetWhat::Vms => w.kind != WorkloadKind::Pod,
            GetWhat::Pods => w.kind == WorkloadKind::Pod,
            GetWhat::Workloads => true,
        })
        .filter(|w| args.namespace.as_ref().is_none_or(|ns| &w.namespace == ns))
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name, a.kind).cmp(&(&b.namespace, &b.name, b.kind)));
    let show_namespace = args.namespace.is_none();
    let show_kind = args.what == GetWhat::Workloads;
    let mut header = Vec::new();
    if show_namespace {
        header.push("NAMESPACE");
    }
    if show_kind {
        header.push("KIND");
    }
    header.extend(["NAME", "PHASE", "NODE", "IPADDRESS", "INGRESS", "EGRESS"]);
    let mut table = kubectl_table(&header);
    for w in &rows {
        let mut row = Vec::new();
        if show_namespace {
            row.push(w.namespace.clone());
        }
        if show_kind {
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
    if rows.is_empty() {
        eprintln!("No resources found.");
    } else {
        print!("{}", render(&table));
    }
    input.answered_partially("list")?;
    Ok(0)
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
