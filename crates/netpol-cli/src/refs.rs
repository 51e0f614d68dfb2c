//! Resolving the `--from` / `--to` references of `netpol check`.

use std::net::IpAddr;

use netpol_core::eval::FlowEnd;
use netpol_core::{Cluster, WorkloadKind};

/// Resolves `namespace/name`, `KIND/namespace/name` (`vm`, `vmi`, `pod`, `deployment`, ...: see
/// [`parse_kind`]), `node/NAME` or an IP address. An address that belongs to a workload resolves to that workload
/// over exactly that address (and so that family), because that is who sends and receives with it;
/// a node's address, or any other, stays an address. A hostNetwork pod is its node.
pub fn resolve(cluster: &Cluster, reference: &str) -> Result<FlowEnd, String> {
    if let Ok(address) = reference.parse::<IpAddr>() {
        let owners: Vec<usize> = cluster
            .workloads
            .iter()
            .enumerate()
            .filter(|(_, w)| w.addresses.contains(&address))
            .map(|(i, _)| i)
            .collect();
        return match owners.as_slice() {
            [] => Ok(FlowEnd::Address(address)),
            [one] => Ok(FlowEnd::Workload {
                index: *one,
                address: Some(address),
            }),
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
    if let Some(name) = reference.strip_prefix("node/") {
        return node(cluster, name);
    }
    let parts: Vec<&str> = reference.split('/').collect();
    let (kind, namespace, name) = match parts.as_slice() {
        [namespace, name] => (None, *namespace, *name),
        [kind, namespace, name] => (Some(parse_kind(kind)?), *namespace, *name),
        _ => {
            return Err(format!(
                "{reference:?} is not a workload reference: expected namespace/name, KIND/namespace/name (vm, pod, deployment, ...), node/NAME or an IP address"
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
        [one] => Ok(FlowEnd::Workload {
            index: *one,
            address: None,
        }),
        [] => match host_network_node(cluster, namespace, name, kind) {
            Some(n) => Ok(FlowEnd::Node(n)),
            None => Err(not_found(cluster, namespace, name, kind)),
        },
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

/// `node/NAME`: a node with at least one address.
fn node(cluster: &Cluster, name: &str) -> Result<FlowEnd, String> {
    let Some(n) = cluster.node_index(name) else {
        let known: Vec<&str> = cluster.nodes.iter().map(|n| n.name.as_str()).collect();
        return Err(if known.is_empty() {
            format!("no node {name}: the input has no Node objects (kubectl get nodes -o yaml)")
        } else {
            format!("no node {name}; the input has: {}", known.join(", "))
        });
    };
    if cluster.nodes[n].addresses.is_empty() {
        return Err(format!(
            "node {name} has no InternalIP or ExternalIP address in the input, so no flow can name it"
        ));
    }
    Ok(FlowEnd::Node(n))
}

/// The node of a hostNetwork pod `namespace/name` (its traffic is its node's).
fn host_network_node(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    kind: Option<WorkloadKind>,
) -> Option<usize> {
    if kind.is_some_and(|k| k != WorkloadKind::Pod) {
        return None;
    }
    let key = format!("{namespace}/{name}");
    cluster
        .nodes
        .iter()
        .position(|n| n.host_network_pods.contains(&key) && !n.addresses.is_empty())
}

/// A reference's kind, with kubectl's short names and plurals (`deploy`, `sts`, `pods`).
fn parse_kind(kind: &str) -> Result<WorkloadKind, String> {
    Ok(match kind.to_ascii_lowercase().as_str() {
        "vm" | "vms" | "virtualmachine" | "virtualmachines" => WorkloadKind::VirtualMachine,
        "vmi" | "vmis" | "virtualmachineinstance" | "virtualmachineinstances" => {
            WorkloadKind::VirtualMachineInstance
        }
        "pod" | "pods" | "po" => WorkloadKind::Pod,
        "deployment" | "deployments" | "deploy" => WorkloadKind::Deployment,
        "statefulset" | "statefulsets" | "sts" => WorkloadKind::StatefulSet,
        "daemonset" | "daemonsets" | "ds" => WorkloadKind::DaemonSet,
        "replicaset" | "replicasets" | "rs" => WorkloadKind::ReplicaSet,
        "replicationcontroller" | "replicationcontrollers" | "rc" => {
            WorkloadKind::ReplicationController
        }
        "job" | "jobs" => WorkloadKind::Job,
        "cronjob" | "cronjobs" | "cj" => WorkloadKind::CronJob,
        other => {
            return Err(format!(
                "unknown workload kind {other:?} in reference: expected vm, vmi, pod, deployment, statefulset, daemonset, replicaset, replicationcontroller, job or cronjob"
            ))
        }
    })
}

fn describe(cluster: &Cluster, index: usize) -> String {
    let w = &cluster.workloads[index];
    format!("{}/{}/{}", w.kind.short_name(), w.namespace, w.name)
}

fn not_found(cluster: &Cluster, namespace: &str, name: &str, kind: Option<WorkloadKind>) -> String {
    let what = kind.map_or("workload", |k| match k {
        WorkloadKind::VirtualMachine => "VM",
        WorkloadKind::VirtualMachineInstance => "VMI",
        other => other.short_name(),
    });
    // Output keys carry the kind only where two kinds share a name, so no name repeats.
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
