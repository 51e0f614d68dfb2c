//! `netpol get`: the workloads table with isolation columns, and the nodes table.

use netpol_core::eval::{admin_policies_of, admin_policy_selects, policy_selects};
use netpol_core::{admin_order, AdminPolicy, AdminTier, Cluster, Direction, Policy, Workload};

use super::{join_addresses, kubectl_table, render};

/// Which optional columns the table has.
#[derive(Clone, Copy)]
pub struct Columns {
    /// NAMESPACE (every namespace is listed).
    pub namespace: bool,
    /// KIND (VMs and pods are listed together).
    pub kind: bool,
    /// ADMIN POLICIES (the cluster has admin-tier policies).
    pub admin: bool,
    /// REPLICAS (controllers are listed): how many instances each controller runs.
    pub replicas: bool,
}

/// One row per workload: namespace, kind, name, replicas (of controllers), phase, node,
/// addresses, ingress, egress.
pub fn workloads(cluster: &Cluster, rows: &[&Workload], columns: Columns) -> String {
    let mut header = Vec::new();
    if columns.namespace {
        header.push("NAMESPACE");
    }
    if columns.kind {
        header.push("KIND");
    }
    header.push("NAME");
    if columns.replicas {
        header.push("REPLICAS");
    }
    header.extend(["PHASE", "NODE", "IPADDRESS", "INGRESS", "EGRESS"]);
    if columns.admin {
        header.push("ADMIN POLICIES");
    }
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
        if columns.replicas {
            // A Pod or a VM is one instance: the column is about controllers.
            row.push(if w.kind.is_controller() {
                w.instances.to_string()
            } else {
                String::new()
            });
        }
        row.push(w.phase.clone().unwrap_or_default());
        row.push(w.node.clone().unwrap_or_default());
        row.push(join_addresses(&w.addresses));
        row.push(isolation(cluster, w, Direction::Ingress));
        row.push(isolation(cluster, w, Direction::Egress));
        if columns.admin {
            row.push(admin_policy_column(cluster, w));
        }
        table.add_row(row);
    }
    render(&table)
}

/// The admin-tier policies selecting `workload`, in the order they decide (`<none>` if none).
fn admin_policy_column(cluster: &Cluster, workload: &Workload) -> String {
    let keys: Vec<String> = admin_policies_of(cluster, workload)
        .into_iter()
        .map(|p| p.key())
        .collect();
    if keys.is_empty() {
        "<none>".to_string()
    } else {
        keys.join(",")
    }
}

/// Every policy of every tier in the order they decide: the Admin tier by priority, then
/// NetworkPolicies by `namespace/name`, then the Baseline tier; with `namespace`, only that
/// namespace's NetworkPolicies, and subjects counted in it.
pub fn policies(cluster: &Cluster, namespace: Option<&str>) -> String {
    let in_scope = |w: &&Workload| namespace.is_none_or(|ns| w.namespace == ns);
    let mut table = kubectl_table(&[
        "TIER", "PRIORITY", "POLICY", "SUBJECTS", "INGRESS", "EGRESS",
    ]);
    let order = admin_order(&cluster.admin_policies);
    let admin_row = |table: &mut comfy_table::Table, p: &AdminPolicy| {
        let subjects = cluster
            .workloads
            .iter()
            .filter(in_scope)
            .filter(|w| admin_policy_selects(cluster, p, w))
            .count();
        table.add_row(vec![
            p.tier.to_string(),
            p.priority.to_string(),
            p.key(),
            subjects.to_string(),
            admin_rule_count(p.ingress.len()),
            admin_rule_count(p.egress.len()),
        ]);
    };
    for p in order.iter().map(|&i| &cluster.admin_policies[i]) {
        if p.tier == AdminTier::Admin {
            admin_row(&mut table, p);
        }
    }
    let mut nps: Vec<&Policy> = cluster
        .policies
        .iter()
        .filter(|p| namespace.is_none_or(|ns| p.namespace == ns))
        .collect();
    nps.sort_by_key(|p| p.key());
    for p in nps {
        let subjects = cluster
            .workloads
            .iter()
            .filter(|w| policy_selects(p, w))
            .count();
        table.add_row(vec![
            "NetworkPolicy".to_string(),
            String::new(),
            p.key(),
            subjects.to_string(),
            np_rule_count(p, Direction::Ingress),
            np_rule_count(p, Direction::Egress),
        ]);
    }
    for p in order.iter().map(|&i| &cluster.admin_policies[i]) {
        if p.tier == AdminTier::Baseline {
            admin_row(&mut table, p);
        }
    }
    if table.row_count() == 0 {
        return String::new();
    }
    render(&table)
}

/// `N rules`, or `-` for a direction an admin policy does not touch (no implicit isolation).
fn admin_rule_count(n: usize) -> String {
    match n {
        0 => "-".to_string(),
        1 => "1 rule".to_string(),
        n => format!("{n} rules"),
    }
}

/// `N rules`, `deny all` for an isolating policy without rules, `-` when it does not isolate.
fn np_rule_count(p: &Policy, d: Direction) -> String {
    match (p.affects(d), p.rules(d).len()) {
        (false, _) => "-".to_string(),
        (true, 0) => "deny all".to_string(),
        (true, n) => admin_rule_count(n),
    }
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

/// One row per node (every Node object, and every node a workload names without one): name,
/// addresses, the workloads it hosts (only those of `namespace` when given) and its hostNetwork
/// pods, whose traffic is the node's. Empty when there is no node.
pub fn nodes(cluster: &Cluster, namespace: Option<&str>) -> String {
    let keys = netpol_core::analysis::output_keys(cluster);
    let order = netpol_core::analysis::workload_order(cluster);
    let mut names: Vec<&str> = cluster.nodes.iter().map(|n| n.name.as_str()).collect();
    for w in &cluster.workloads {
        if let Some(n) = w.node.as_deref() {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names.sort_unstable();
    if names.is_empty() {
        return String::new();
    }
    let mut table = kubectl_table(&["NAME", "IPADDRESS", "WORKLOADS", "HOSTNETWORK PODS"]);
    for name in names {
        let node = cluster.node_index(name).map(|i| &cluster.nodes[i]);
        let hosted: Vec<&str> = order
            .iter()
            .filter(|&&i| {
                let w = &cluster.workloads[i];
                w.node.as_deref() == Some(name) && namespace.is_none_or(|ns| w.namespace == ns)
            })
            .map(|&i| keys[i].as_str())
            .collect();
        let addresses = match node {
            Some(n) if n.implicit => format!("{} (no Node object)", join_addresses(&n.addresses)),
            Some(n) => join_addresses(&n.addresses),
            None => "<no Node object>".to_string(),
        };
        let host_network = node.map_or(String::new(), |n| n.host_network_pods.join(","));
        table.add_row(vec![
            name.to_string(),
            addresses,
            none_if_empty(hosted.join(",")),
            none_if_empty(host_network),
        ]);
    }
    render(&table)
}

fn none_if_empty(s: String) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s
    }
}
