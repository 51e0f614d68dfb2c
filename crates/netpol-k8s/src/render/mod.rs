//! Renders a cluster as the manifests that load back into it (Namespaces, Deckhouse
//! VirtualMachines, KubeVirt VirtualMachineInstances, Pods, workload controllers,
//! NetworkPolicies, and the admin policies as the API each came from, see [`admin`]), for tests
//! and the load benchmark.

mod admin;

use std::fmt::Write;

use netpol_core::{
    Cluster, LabelSelector, Labels, Peer, Policy, PortSpec, Rule, Workload, WorkloadKind,
    NAMESPACE_NAME_LABEL,
};

use crate::yaml::{resolve_plain, Scalar};

/// Multi-document YAML such that `load_str(render_manifests(c))` gives `c` back, up to origins
/// and the order of implicit namespaces. Implicit namespaces are not written (loading recreates
/// them, with a warning). A Deckhouse VirtualMachine reports one address, so a VirtualMachine's
/// further addresses are lost (a comment in the output says so); a controller is written as its
/// pod template, without the addresses and node its Pods would give it.
pub fn render_manifests(cluster: &Cluster) -> String {
    let mut out = String::with_capacity(
        256 * (cluster.workloads.len() + cluster.namespaces.len() + cluster.policies.len()),
    );
    for ns in cluster.namespaces.iter().filter(|n| !n.implicit) {
        out.push_str("---\napiVersion: v1\nkind: Namespace\nmetadata:\n");
        let _ = writeln!(out, "  name: {}", q(&ns.name));
        let labels: Labels = ns
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != NAMESPACE_NAME_LABEL)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels_block(&mut out, "  ", "labels", &labels);
    }
    for w in &cluster.workloads {
        workload(&mut out, w);
    }
    for p in &cluster.policies {
        policy(&mut out, p);
    }
    for p in &cluster.admin_policies {
        admin::policy(&mut out, p);
    }
    out
}

/// A scalar as YAML: plain when it reads back as the same string, double-quoted otherwise.
fn q(s: &str) -> String {
    let plain_chars = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'-'))
        && s.as_bytes()[0].is_ascii_alphanumeric();
    if plain_chars && matches!(resolve_plain(s.to_string()), Scalar::Str(_)) {
        s.to_string()
    } else {
        // A JSON string is a valid YAML double-quoted scalar.
        serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
    }
}

fn labels_block(out: &mut String, indent: &str, field: &str, labels: &Labels) {
    if labels.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}{field}:");
    for (k, v) in labels {
        let _ = writeln!(out, "{indent}  {}: {}", q(k), q(v));
    }
}

fn metadata(out: &mut String, namespace: &str, name: &str, labels: &Labels) {
    out.push_str("metadata:\n");
    let _ = writeln!(out, "  name: {}", q(name));
    let _ = writeln!(out, "  namespace: {}", q(namespace));
    labels_block(out, "  ", "labels", labels);
}

fn workload(out: &mut String, w: &Workload) {
    match w.kind {
        WorkloadKind::VirtualMachine => {
            out.push_str(
                "---\napiVersion: virtualization.deckhouse.io/v1alpha2\nkind: VirtualMachine\n",
            );
            metadata(out, &w.namespace, &w.name, &w.labels);
            out.push_str(
                "spec:\n  runPolicy: AlwaysOn\n  cpu:\n    cores: 1\n  memory:\n    size: 1Gi\n",
            );
            out.push_str("status:\n");
            if let Some(a) = w.addresses.first() {
                let _ = writeln!(out, "  ipAddress: {}", q(&a.to_string()));
            }
            if w.addresses.len() > 1 {
                out.push_str(
                    "  # further addresses are not representable in a Deckhouse VirtualMachine\n",
                );
            }
            status_common(out, w);
        }
        WorkloadKind::VirtualMachineInstance => {
            out.push_str("---\napiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\n");
            metadata(out, &w.namespace, &w.name, &w.labels);
            out.push_str("status:\n");
            if !w.addresses.is_empty() {
                out.push_str("  interfaces:\n");
                let _ = writeln!(
                    out,
                    "    - name: default\n      ipAddress: {}",
                    q(&w.addresses[0].to_string())
                );
                out.push_str("      ipAddresses:\n");
                for a in &w.addresses {
                    let _ = writeln!(out, "        - {}", q(&a.to_string()));
                }
            }
            status_common(out, w);
        }
        k if k.is_controller() => controller(out, w),
        WorkloadKind::Pod => {
            out.push_str("---\napiVersion: v1\nkind: Pod\n");
            metadata(out, &w.namespace, &w.name, &w.labels);
            out.push_str("spec:\n");
            if let Some(n) = &w.node {
                let _ = writeln!(out, "  nodeName: {}", q(n));
            }
            containers(out, "  ", w);
            out.push_str("status:\n");
            if let Some(p) = &w.phase {
                let _ = writeln!(out, "  phase: {}", q(p));
            }
            if let Some(a) = w.addresses.first() {
                let _ = writeln!(out, "  podIP: {}", q(&a.to_string()));
                out.push_str("  podIPs:\n");
                for a in &w.addresses {
                    let _ = writeln!(out, "    - ip: {}", q(&a.to_string()));
                }
            }
        }
        _ => {}
    }
}

/// A controller: its pod template carries the labels and named ports; the address, node and
/// phase are its Pods' and are not written.
fn controller(out: &mut String, w: &Workload) {
    let k = crate::schema::of_workload(w.kind);
    let _ = writeln!(out, "---\napiVersion: {}\nkind: {}", k.api_version, k.kind);
    metadata(out, &w.namespace, &w.name, &Labels::new());
    let indent = if w.kind == WorkloadKind::CronJob {
        out.push_str(
            "spec:\n  schedule: \"0 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n",
        );
        "        "
    } else {
        out.push_str("spec:\n  template:\n");
        "    "
    };
    let _ = writeln!(out, "{indent}metadata:");
    labels_block(out, &format!("{indent}  "), "labels", &w.labels);
    let _ = writeln!(out, "{indent}spec:");
    containers(out, &format!("{indent}  "), w);
}

/// One container with the workload's named ports, at `indent` (the pod spec's fields').
fn containers(out: &mut String, indent: &str, w: &Workload) {
    let _ = writeln!(
        out,
        "{indent}containers:\n{indent}  - name: main\n{indent}    image: registry.example/app:1"
    );
    if !w.named_ports.is_empty() {
        let _ = writeln!(out, "{indent}    ports:");
        for p in &w.named_ports {
            let _ = writeln!(
                out,
                "{indent}      - name: {}\n{indent}        containerPort: {}\n{indent}        protocol: {}",
                q(&p.name),
                p.port,
                p.protocol
            );
        }
    }
}

fn status_common(out: &mut String, w: &Workload) {
    if let Some(n) = &w.node {
        let _ = writeln!(out, "  nodeName: {}", q(n));
    }
    if let Some(p) = &w.phase {
        let _ = writeln!(out, "  phase: {}", q(p));
    }
}

fn selector(out: &mut String, indent: &str, field: &str, s: &LabelSelector) {
    if s.is_empty() {
        let _ = writeln!(out, "{indent}{field}: {{}}");
        return;
    }
    let _ = writeln!(out, "{indent}{field}:");
    labels_block(out, &format!("{indent}  "), "matchLabels", &s.match_labels);
    if !s.match_expressions.is_empty() {
        let _ = writeln!(out, "{indent}  matchExpressions:");
        for r in &s.match_expressions {
            let _ = writeln!(
                out,
                "{indent}    - key: {}\n{indent}      operator: {}",
                q(&r.key),
                r.operator
            );
            if !r.values.is_empty() {
                let _ = writeln!(out, "{indent}      values:");
                for v in &r.values {
                    let _ = writeln!(out, "{indent}        - {}", q(v));
                }
            }
        }
    }
}

fn rules(out: &mut String, field: &str, peers_field: &str, rules: &[Rule]) {
    if rules.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {field}:");
    for r in rules {
        // An empty rule is `{}`: it allows everything.
        if r.peers.is_empty() && r.ports.is_empty() {
            out.push_str("    - {}\n");
            continue;
        }
        let mut first = true;
        let mut item = |out: &mut String, line: &str| {
            let _ = writeln!(out, "    {}{line}", if first { "- " } else { "  " });
            first = false;
        };
        if !r.peers.is_empty() {
            item(out, &format!("{peers_field}:"));
            for p in &r.peers {
                match p {
                    Peer::IpBlock(b) => {
                        let _ = writeln!(
                            out,
                            "        - ipBlock:\n            cidr: {}",
                            q(&b.cidr.to_string())
                        );
                        if !b.except.is_empty() {
                            out.push_str("            except:\n");
                            for e in &b.except {
                                let _ = writeln!(out, "              - {}", q(&e.to_string()));
                            }
                        }
                    }
                    Peer::Selector {
                        pod_selector,
                        namespace_selector,
                    } => {
                        let mut lead = "        - ";
                        for (name, sel) in [
                            ("podSelector", pod_selector),
                            ("namespaceSelector", namespace_selector),
                        ] {
                            if let Some(s) = sel {
                                let mut buf = String::new();
                                selector(&mut buf, "          ", name, s);
                                out.push_str(lead);
                                out.push_str(&buf[10..]);
                                lead = "          ";
                            }
                        }
                    }
                }
            }
        }
        if !r.ports.is_empty() {
            item(out, "ports:");
            for p in &r.ports {
                let _ = writeln!(out, "        - protocol: {}", p.protocol);
                match &p.port {
                    None => {}
                    Some(PortSpec::Number(n)) => {
                        let _ = writeln!(out, "          port: {n}");
                    }
                    Some(PortSpec::Range { start, end }) => {
                        let _ = writeln!(out, "          port: {start}\n          endPort: {end}");
                    }
                    Some(PortSpec::Named(name)) => {
                        let _ = writeln!(out, "          port: {}", q(name));
                    }
                }
            }
        }
    }
}

fn policy(out: &mut String, p: &Policy) {
    out.push_str("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n");
    let _ = writeln!(
        out,
        "  name: {}\n  namespace: {}",
        q(&p.name),
        q(&p.namespace)
    );
    out.push_str("spec:\n");
    selector(out, "  ", "podSelector", &p.pod_selector);
    out.push_str("  policyTypes:\n");
    if p.affects_ingress {
        out.push_str("    - Ingress\n");
    }
    if p.affects_egress {
        out.push_str("    - Egress\n");
    }
    rules(out, "ingress", "from", &p.ingress);
    rules(out, "egress", "to", &p.egress);
}
