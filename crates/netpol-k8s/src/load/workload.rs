//! Pods, Deckhouse VirtualMachines and KubeVirt VirtualMachineInstances: decoding, validation and
//! conversion to model workloads (before folding, see [`crate::fold`]). The wire types of the VM
//! kinds hold only the fields [`crate::schema`] lists for them.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use netpol_core::{NamedPort, Protocol, Workload, WorkloadKind};
use serde::Deserialize;

use super::{Loader, Obj};
use crate::de::decode;
use crate::validate::{self, FPath, NameRule, Problem, Val};
use crate::Severity;

impl Loader {
    pub(super) fn pod(&mut self, obj: &Obj<'_>) -> Option<Workload> {
        let (r, issues) = decode::<Pod>(obj.node, true);
        let pod = self.decoded(obj, r, issues)?;
        let mut problems = Vec::new();
        validate::object_meta(&pod.metadata, true, NameRule::Subdomain, &mut problems);
        let spec = pod.spec.unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        let named_ports = named_ports(&spec, &FPath::root().f("spec"), &mut problems);
        let addresses = pod_addresses(&status, &mut problems);
        if !self.valid(obj, problems) {
            return None;
        }
        if spec.host_network == Some(true) {
            let message = match spec.node_name.as_deref().filter(|n| !n.is_empty()) {
                Some(node) => format!("not a workload: a hostNetwork pod uses its node's network, so its traffic is node {node}'s (no policy selects it)"),
                None => "skipped: a hostNetwork pod uses its node's network, which NetworkPolicy does not cover".to_string(),
            };
            let d = obj.diag(Severity::Note, obj.node.pos, message);
            self.push(d.field("spec.hostNetwork"));
            if let Some(node) = spec.node_name.filter(|n| !n.is_empty()) {
                self.host_network.push(super::node::HostNetworkPod {
                    key: format!(
                        "{}/{}",
                        self.namespace_of(&pod.metadata),
                        pod.metadata.name.clone().unwrap_or_default()
                    ),
                    node,
                    addresses,
                });
            }
            return None;
        }
        if let Some(phase @ ("Succeeded" | "Failed")) = status.phase.as_deref() {
            let message = format!(
                "skipped: the pod has finished (phase {phase}) and no longer has an address"
            );
            let d = obj.diag(Severity::Note, obj.node.pos, message);
            self.push(d.field("status.phase"));
            return None;
        }
        Some(Workload {
            kind: WorkloadKind::Pod,
            namespace: self.namespace_of(&pod.metadata),
            name: pod.metadata.name.clone().unwrap_or_default(),
            labels: pod.metadata.labels.unwrap_or_default(),
            addresses,
            node: spec.node_name,
            phase: status.phase,
            named_ports,
            origin: Self::origin(obj),
            instances: Default::default(),
        })
    }

    pub(super) fn vm(&mut self, obj: &Obj<'_>) -> Option<Workload> {
        let (r, issues) = decode::<VmWire>(obj.node, false);
        let vm = self.decoded(obj, r, issues)?;
        let mut problems = Vec::new();
        validate::object_meta(&vm.metadata, true, NameRule::Subdomain, &mut problems);
        let status = vm.status.unwrap_or_default();
        let mut addresses = Vec::new();
        if let Some(ip) = status.ip_address.as_deref().filter(|s| !s.is_empty()) {
            push_address(
                &mut addresses,
                ip,
                FPath::root().f("status").f("ipAddress"),
                &mut problems,
            );
        }
        if !self.valid(obj, problems) {
            return None;
        }
        Some(Workload {
            kind: WorkloadKind::VirtualMachine,
            namespace: self.namespace_of(&vm.metadata),
            name: vm.metadata.name.clone().unwrap_or_default(),
            labels: vm.metadata.labels.unwrap_or_default(),
            addresses,
            node: status.node_name.filter(|s| !s.is_empty()),
            phase: status.phase.filter(|s| !s.is_empty()),
            named_ports: Vec::new(),
            origin: Self::origin(obj),
            instances: Default::default(),
        })
    }

    pub(super) fn vmi(&mut self, obj: &Obj<'_>) -> Option<Workload> {
        let (r, issues) = decode::<VmiWire>(obj.node, false);
        let vmi = self.decoded(obj, r, issues)?;
        let mut problems = Vec::new();
        validate::object_meta(&vmi.metadata, true, NameRule::Subdomain, &mut problems);
        let status = vmi.status.unwrap_or_default();
        let mut addresses = Vec::new();
        let ip = FPath::root().f("status").f("interfaces");
        for (i, iface) in status.interfaces.iter().flatten().enumerate() {
            let listed = iface.ip_addresses.as_deref().unwrap_or(&[]);
            for (j, a) in listed.iter().enumerate() {
                push_vmi_address(
                    &mut addresses,
                    a,
                    ip.i(i).f("ipAddresses").i(j),
                    &mut problems,
                );
            }
            if let Some(a) = iface.ip_address.as_deref().filter(|s| !s.is_empty()) {
                push_vmi_address(&mut addresses, a, ip.i(i).f("ipAddress"), &mut problems);
            }
        }
        if !self.valid(obj, problems) {
            return None;
        }
        Some(Workload {
            kind: WorkloadKind::VirtualMachineInstance,
            namespace: self.namespace_of(&vmi.metadata),
            name: vmi.metadata.name.clone().unwrap_or_default(),
            labels: vmi.metadata.labels.unwrap_or_default(),
            addresses,
            node: status.node_name.filter(|s| !s.is_empty()),
            phase: status.phase.filter(|s| !s.is_empty()),
            named_ports: Vec::new(),
            origin: Self::origin(obj),
            instances: Default::default(),
        })
    }
}

/// The named ports of the pod's containers and sidecars (init containers that keep running);
/// `base` is the path of the pod spec (`spec`, or a controller's `spec.template.spec`).
pub(super) fn named_ports(
    spec: &PodSpec,
    base: &FPath,
    problems: &mut Vec<Problem>,
) -> Vec<NamedPort> {
    let mut named_ports = Vec::new();
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| c.restart_policy.as_deref() == Some("Always"))
        .map(|(i, c)| (base.f("initContainers").i(i), c));
    let containers = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| (base.f("containers").i(i), c));
    for (cp, c) in containers.chain(sidecars) {
        container_ports(&cp, c, &mut named_ports, problems);
    }
    named_ports
}

/// Validates one container's ports and adds its named ones to `out`.
fn container_ports(
    cp: &FPath,
    c: &Container,
    out: &mut Vec<NamedPort>,
    problems: &mut Vec<Problem>,
) {
    for (j, port) in c.ports.iter().flatten().enumerate() {
        let pp = cp.f("ports").i(j);
        for m in validate::port_num(i64::from(port.container_port)) {
            problems.push(validate::invalid(
                pp.f("containerPort"),
                Val::N(i64::from(port.container_port)),
                &m,
            ));
        }
        let protocol = match port.protocol.as_deref() {
            None | Some("TCP") => Some(Protocol::Tcp),
            Some("UDP") => Some(Protocol::Udp),
            Some("SCTP") => Some(Protocol::Sctp),
            Some(other) => {
                problems.push(validate::not_supported(
                    pp.f("protocol"),
                    other,
                    &validate::PROTOCOLS,
                ));
                None
            }
        };
        let Some(name) = &port.name else {
            continue;
        };
        let errs = validate::port_name(name);
        for m in &errs {
            problems.push(validate::invalid(pp.f("name"), Val::S(name), m));
        }
        if let (true, Some(protocol), Ok(number)) = (
            errs.is_empty(),
            protocol,
            u16::try_from(port.container_port),
        ) {
            out.push(NamedPort {
                name: name.clone(),
                protocol,
                port: number,
            });
        }
    }
}

/// `status.podIPs`, or `status.podIP` when the list is empty.
fn pod_addresses(status: &PodStatus, problems: &mut Vec<Problem>) -> Vec<IpAddr> {
    let sp = FPath::root().f("status");
    let mut addresses = Vec::new();
    match status.pod_ips.as_deref() {
        Some(ips) if !ips.is_empty() => {
            for (i, ip) in ips.iter().enumerate() {
                push_address(
                    &mut addresses,
                    &ip.ip,
                    sp.f("podIPs").i(i).f("ip"),
                    problems,
                );
            }
        }
        _ => {
            if let Some(ip) = status.pod_ip.as_deref().filter(|s| !s.is_empty()) {
                push_address(&mut addresses, ip, sp.f("podIP"), problems);
            }
        }
    }
    addresses
}

fn push_address(out: &mut Vec<IpAddr>, text: &str, path: FPath, problems: &mut Vec<Problem>) {
    match text.parse::<IpAddr>() {
        Ok(ip) => {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        Err(_) => problems.push(validate::invalid(
            path,
            Val::S(text),
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        )),
    }
}

/// Like [`push_address`], but IPv6 link-local addresses, which a VMI lists next to its pod
/// network address, are not addresses policies can see.
fn push_vmi_address(out: &mut Vec<IpAddr>, text: &str, path: FPath, problems: &mut Vec<Problem>) {
    if let Ok(IpAddr::V6(v6)) = text.parse::<IpAddr>() {
        if (v6.segments()[0] & 0xffc0) == 0xfe80 {
            return;
        }
    }
    push_address(out, text, path, problems);
}

// ---- the fields netpol reads from VM kinds (everything else is ignored, not rejected) --------

#[derive(Deserialize, Default)]
struct VmWire {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    status: Option<VmStatusWire>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct VmStatusWire {
    #[serde(default)]
    ip_address: Option<String>,
    #[serde(default)]
    node_name: Option<String>,
    #[serde(default)]
    phase: Option<String>,
}

#[derive(Deserialize, Default)]
struct VmiWire {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    status: Option<VmiStatusWire>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct VmiStatusWire {
    #[serde(default)]
    interfaces: Option<Vec<VmiInterfaceWire>>,
    #[serde(default)]
    node_name: Option<String>,
    #[serde(default)]
    phase: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct VmiInterfaceWire {
    #[serde(default)]
    ip_address: Option<String>,
    #[serde(default)]
    ip_addresses: Option<Vec<String>>,
}
