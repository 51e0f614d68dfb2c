//! Resolving the `--from` / `--to` references of `netpol check`.

use std::net::IpAddr;

use netpol_core::{Cluster, Endpoint, WorkloadKind};

/// Resolves `namespace/name`, `vm/namespace/name`, `vmi/namespace/name`, `pod/namespace/name` or an
/// IP address. An address that belongs to a workload resolves to that workload, because that is
/// who sends and receives with it.
pub fn resolve(cluster: &Cluster, reference: &str) -> Result<Endpoint, String> {
    if let Ok(address) = reference.parse::<IpAddr>() {
        let owners: Vec<usize> = cluster
            .workloads
            .iter()
            .enumerate()
            .filter(|(_, w)| w.addresses.contains(&address))
            .map(|(i, _)| i)
            .collect();
        return match owners.as_slice() {
            [] => Ok(Endpoint::External(address)),
            [one] => Ok(Endpoint::Workload(*one)),
            many => Err(format!(
                "address {address} belongs to {} workloads ({}); name one of them instead",
                many.len(),
                many.iter()
                    .map(|i| describe(cluster, *i))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
    }
    let parts: Vec<&str> = reference.split('/').collect();
    let (kind, namespace, name) = match parts.as_slice() {
        [namespace, name] => (None, *namespace, *name),
        [kind, namespace, name] => (Some(parse_kind(kind)?), *namespace, *name),
        _ => {
            return Err(format!(
                "{reference:?} is not a workload reference: expected namespace/name, vm/namespace/name, pod/namespace/name or an IP address"
            ))
        }
    };
    let matches: Vec<usize> = cluster
        .workloads
        .iter()
        .enumerate()
        .filter(|(_, w)| w.namespace == namespace && w.name == name)
        .filter(|(_, w)| kind.is_none_or(|k| w.kind == k))
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [one] => Ok(Endpoint::Workload(*one)),
        [] => Err(not_found(cluster, namespace, name, kind)),
        many => Err(format!(
            "{namespace}/{name} is ambiguous: it names {}; use {}",
            many.iter()
                .map(|i| cluster.workloads[*i].kind.short_name())
                .collect::<Vec<_>>()
                .join(" and "),
            many.iter()
                .map(|i| describe(cluster, *i))
                .collect::<Vec<_>>()
                .join(" or ")
        )),
    }
}

fn parse_kind(kind: &str) -> Result<WorkloadKind, String> {
    match kind {
        "vm" | "virtualmachine" => Ok(WorkloadKind::VirtualMachine),
        "vmi" | "virtualmachineinstance" => Ok(WorkloadKind::VirtualMachineInstance),
        "pod" => Ok(WorkloadKind::Pod),
        other => Err(format!(
            "unknown workload kind {other:?} in reference: expected vm, vmi or pod"
        )),
    }
}

fn describe(cluster: &Cluster, index: usize) -> String {
    let w = &cluster.workloads[index];
    format!("{}/{}/{}", w.kind.short_name(), w.namespace, w.name)
}

fn not_found(cluster: &Cluster, namespace: &str, name: &str, kind: Option<WorkloadKind>) -> String {
    let what = kind.map_or("workload", |k| match k {
        WorkloadKind::Pod => "pod",
        WorkloadKind::VirtualMachine => "VM",
        WorkloadKind::VirtualMachineInstance => "VMI",
    });
    // Output keys carry the kind only where a Pod and a VM share a name, so no name repeats.
    let keys = netpol_core::analysis::output_keys(cluster);
    let in_namespace: Vec<String> = netpol_core::analysis::workload_order(cluster)
        .into_iter()
        .filter(|&i| cluster.workloads[i].namespace == namespace)
        .map(|i| keys[i].clone())
        .collect();
    if in_namespace.is_empty() {
        format!(
            "no {what} {namespace}/{name}: the input has no workloads in namespace {namespace:?}"
        )
    } else {
        format!(
            "no {what} {namespace}/{name}; namespace {namespace} has: {}",
            in_namespace.join(", ")
        )
    }
}
