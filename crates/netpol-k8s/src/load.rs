//! From parsed documents to the model: kind dispatch, Lists, strict decoding, validation,
//! defaulting, conversion, and the cross-object steps (duplicates, virt-launcher pods, VMI/VM
//! pairs, implicit namespaces).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector as K8sSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use netpol_core::{
    Cluster, IpBlock, LabelSelector, NamedPort, Namespace, Origin, Peer, Policy, PolicyPort,
    PortSpec, Protocol, Rule, SelectorOperator, SelectorRequirement, Workload, WorkloadKind,
};
use serde::Deserialize;

use crate::de::{decode, DeError, FieldIssue, IssueKind};
use crate::validate::{self, FPath, NameRule, Problem, Val};
use crate::yaml::{Kind, Node, Pos};
use crate::{Diagnostic, LoadOptions, Severity, ValidationMode};

/// Label Deckhouse puts on the virt-launcher pod of a VirtualMachine.
const DECKHOUSE_VM_LABEL: &str = "vm.kubevirt.internal.virtualization.deckhouse.io/name";
/// Label KubeVirt puts on the virt-launcher pod of a VM.
const KUBEVIRT_VM_LABEL: &str = "vm.kubevirt.io/name";

/// A workload as loaded, before cross-object folding.
struct Entry {
    workload: Workload,
    /// Where the object is, for diagnostics about it.
    file: String,
    pos: Pos,
}

/// Accumulates objects and diagnostics across files.
pub(crate) struct Loader {
    opts: LoadOptions,
    pub diagnostics: Vec<Diagnostic>,
    namespaces: Vec<Namespace>,
    workloads: Vec<Entry>,
    policies: Vec<Policy>,
    /// (kind, namespace, name) -> where first defined.
    seen: HashMap<(String, String, String), (String, usize)>,
}

/// How an object is named in messages, read leniently before decoding.
struct ObjRef {
    kind: String,
    namespace: Option<String>,
    name: Option<String>,
}

impl ObjRef {
    fn read(node: &Node, kind: &str) -> ObjRef {
        let meta = node.get("metadata");
        ObjRef {
            kind: kind.to_string(),
            namespace: meta
                .and_then(|m| m.get_str("namespace"))
                .map(str::to_string),
            name: meta.and_then(|m| m.get_str("name")).map(str::to_string),
        }
    }

    fn describe(&self, namespaced: bool) -> String {
        let name = self.name.as_deref().unwrap_or("<no name>");
        if namespaced {
            let ns = self
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or("default");
            format!("{} {ns}/{name}", self.kind)
        } else {
            match &self.namespace {
                Some(ns) if !ns.is_empty() => format!("{} {ns}/{name}", self.kind),
                _ => format!("{} {name}", self.kind),
            }
        }
    }
}

/// Context of the object being loaded, for diagnostics.
struct Obj<'a> {
    file: &'a str,
    node: &'a Node,
    label: String,
}

impl Loader {
    pub fn new(opts: LoadOptions) -> Loader {
        Loader {
            opts,
            diagnostics: Vec::new(),
            namespaces: Vec::new(),
            workloads: Vec::new(),
            policies: Vec::new(),
            seen: HashMap::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        severity: Severity,
        file: &str,
        pos: Pos,
        object: Option<String>,
        field_path: Option<String>,
        message: String,
        hint: Option<String>,
    ) {
        self.diagnostics.push(Diagnostic {
            severity,
            file: file.to_string(),
            line: pos.line,
            column: pos.col,
            object,
            field_path,
            message,
            hint,
        });
    }

    pub fn file_error(&mut self, file: &str, pos: Pos, message: String) {
        self.push(Severity::Error, file, pos, None, None, message, None);
    }

    /// One parsed document of `file`.
    pub fn document(&mut self, file: &str, root: &Node) {
        if root.is_null() {
            return;
        }
        if root.as_map().is_none() {
            self.file_error(
                file,
                root.pos,
                format!(
                    "a manifest must be an object with apiVersion and kind, got {}",
                    root.describe()
                ),
            );
            return;
        }
        let Some((api_version, kind)) = self.type_meta(file, root, None) else {
            return;
        };
        let is_list = kind == "List"
            || (kind.ends_with("List")
                && matches!(root.get("items").map(|n| &n.kind), Some(Kind::Seq(_))));
        if !is_list {
            self.object(file, root, &api_version, &kind);
            return;
        }
        let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
        match root.get("items").map(|n| &n.kind) {
            Some(Kind::Seq(items)) => {
                for item in items {
                    if item.as_map().is_none() {
                        self.file_error(
                            file,
                            item.pos,
                            format!("a List item must be an object, got {}", item.describe()),
                        );
                        continue;
                    }
                    // Items of a typed list (`PodList` from the raw API) may omit their kind.
                    let defaults = item_kind.map(|k| (api_version.as_str(), k));
                    if let Some((av, k)) = self.type_meta(file, item, defaults) {
                        self.object(file, item, &av, &k);
                    }
                }
            }
            None => {}
            Some(_) => {
                let pos = root.get("items").map_or(root.pos, |n| n.pos);
                self.file_error(file, pos, format!("{kind}: items must be a list"));
            }
        }
    }

    /// apiVersion and kind of an object, or an error diagnostic.
    fn type_meta(
        &mut self,
        file: &str,
        node: &Node,
        defaults: Option<(&str, &str)>,
    ) -> Option<(String, String)> {
        let mut problems = Vec::new();
        let mut get = |field: &str, default: Option<&str>| -> Option<String> {
            match node.get(field) {
                Some(n) => match n.as_str() {
                    Some(s) if !s.is_empty() => Some(s.to_string()),
                    _ if n.is_null() => default.map(str::to_string).or_else(|| {
                        problems.push((n.pos, format!("{field} not set")));
                        None
                    }),
                    _ => {
                        problems.push((
                            n.pos,
                            format!("{field} must be a string, got {}", n.describe()),
                        ));
                        None
                    }
                },
                None => default.map(str::to_string).or_else(|| {
                    problems.push((node.pos, format!("{field} not set")));
                    None
                }),
            }
        };
        let api_version = get("apiVersion", defaults.map(|d| d.0));
        let kind = get("kind", defaults.map(|d| d.1));
        for (pos, message) in problems {
            let name = node
                .get("metadata")
                .and_then(|m| m.get_str("name"))
                .map(|n| format!("object {n:?}"));
            self.push(
                Severity::Error,
                file,
                pos,
                name,
                None,
                format!("error validating data: {message}"),
                Some("every manifest needs apiVersion and kind (e.g. apiVersion: networking.k8s.io/v1, kind: NetworkPolicy)".to_string()),
            );
        }
        Some((api_version?, kind?))
    }

    fn object(&mut self, file: &str, node: &Node, api_version: &str, kind: &str) {
        let r = ObjRef::read(node, kind);
        match (kind, api_version) {
            ("NetworkPolicy", "networking.k8s.io/v1") => {
                let obj = Obj {
                    file,
                    node,
                    label: r.describe(true),
                };
                if let Some(p) = self.network_policy(&obj) {
                    if self.first_definition(&obj, "NetworkPolicy", &p.namespace, &p.name) {
                        self.policies.push(p);
                    }
                }
            }
            ("Namespace", "v1") => {
                let obj = Obj {
                    file,
                    node,
                    label: r.describe(false),
                };
                if let Some(ns) = self.namespace(&obj) {
                    if self.first_definition(&obj, "Namespace", "", &ns.name) {
                        self.namespaces.push(ns);
                    }
                }
            }
            ("Pod", "v1")
            | ("VirtualMachine", "virtualization.deckhouse.io/v1alpha2")
            | ("VirtualMachineInstance", "kubevirt.io/v1") => {
                let obj = Obj {
                    file,
                    node,
                    label: r.describe(true),
                };
                let workload = match kind {
                    "Pod" => self.pod(&obj),
                    "VirtualMachine" => self.vm(&obj),
                    _ => self.vmi(&obj),
                };
                if let Some(w) = workload {
                    self.add_workload(&obj, w);
                }
            }
            ("NetworkPolicy" | "Namespace" | "Pod", _) => {
                let want = if kind == "NetworkPolicy" {
                    "networking.k8s.io/v1"
                } else {
                    "v1"
                };
                let pos = node.get("apiVersion").map_or(node.pos, |n| n.pos);
                self.push(
                    Severity::Error,
                    file,
                    pos,
                    Some(r.describe(kind != "Namespace")),
                    Some("apiVersion".to_string()),
                    format!("no matches for kind {kind:?} in version {api_version:?}"),
                    Some(format!("use apiVersion: {want}")),
                );
            }
            ("VirtualMachine", "kubevirt.io/v1") => {
                self.push(
                    Severity::Note,
                    file,
                    node.pos,
                    None,
                    None,
                    format!(
                        "skipped {}: a KubeVirt VirtualMachine has no address; netpol reads its VirtualMachineInstance",
                        r.describe(true)
                    ),
                    None,
                );
            }
            ("VirtualMachine" | "VirtualMachineInstance", _)
                if api_version.starts_with("virtualization.deckhouse.io/")
                    || api_version.starts_with("kubevirt.io/") =>
            {
                self.push(
                    Severity::Warning,
                    file,
                    node.pos,
                    Some(r.describe(true)),
                    Some("apiVersion".to_string()),
                    format!("skipped: netpol does not read {kind} of version {api_version:?}"),
                    Some("netpol reads virtualization.deckhouse.io/v1alpha2 VirtualMachine and kubevirt.io/v1 VirtualMachineInstance".to_string()),
                );
            }
            _ => {
                self.push(
                    Severity::Note,
                    file,
                    node.pos,
                    None,
                    None,
                    format!(
                        "skipped {}: netpol does not use this kind",
                        r.describe(false)
                    ),
                    None,
                );
            }
        }
    }

    /// Records an object's identity; false (with an error) when it was already loaded.
    fn first_definition(&mut self, obj: &Obj<'_>, kind: &str, ns: &str, name: &str) -> bool {
        let key = (kind.to_string(), ns.to_string(), name.to_string());
        if let Some((file, line)) = self.seen.get(&key) {
            let message = format!(
                "duplicate object: already defined at {file}:{line}; the first definition is kept"
            );
            self.push(
                Severity::Error,
                obj.file,
                obj.node.pos,
                Some(obj.label.clone()),
                None,
                message,
                None,
            );
            return false;
        }
        self.seen
            .insert(key, (obj.file.to_string(), obj.node.pos.line));
        true
    }

    fn add_workload(&mut self, obj: &Obj<'_>, w: Workload) {
        let kind = format!("{:?}", w.kind);
        if self.first_definition(obj, &kind, &w.namespace, &w.name) {
            self.workloads.push(Entry {
                workload: w,
                file: obj.file.to_string(),
                pos: obj.node.pos,
            });
        }
    }

    /// Reports decoding problems; returns false when the object must be rejected.
    fn decoded<T>(
        &mut self,
        obj: &Obj<'_>,
        result: Result<T, DeError>,
        issues: Vec<FieldIssue>,
    ) -> Option<T> {
        let mut reject = false;
        for issue in issues {
            let what = match issue.kind {
                IssueKind::Unknown => "unknown field",
                IssueKind::Duplicate => "duplicate field",
            };
            match self.opts.validation {
                ValidationMode::Ignore => {}
                ValidationMode::Strict => {
                    reject = true;
                    self.push(
                        Severity::Error,
                        obj.file,
                        issue.pos,
                        Some(obj.label.clone()),
                        Some(issue.path),
                        format!("{what} {:?}", issue.name),
                        issue.hint,
                    );
                }
                ValidationMode::Warn => {
                    let message = match issue.kind {
                        IssueKind::Unknown => {
                            let mut m = format!(
                                "unknown field {:?} at {} was dropped",
                                issue.name, issue.path
                            );
                            if let Some(c) = &issue.consequence {
                                m.push_str(": ");
                                m.push_str(c);
                            }
                            m
                        }
                        IssueKind::Duplicate => format!(
                            "duplicate field {:?} at {}: the later value is used",
                            issue.name, issue.path
                        ),
                    };
                    self.push(
                        Severity::Warning,
                        obj.file,
                        issue.pos,
                        Some(obj.label.clone()),
                        Some(issue.path),
                        message,
                        issue.hint,
                    );
                }
            }
        }
        match result {
            Ok(v) if !reject => Some(v),
            Ok(_) => None,
            Err(e) => {
                let (path, pos) = e.at.unwrap_or_else(|| (String::new(), obj.node.pos));
                let field_path = if path.is_empty() { None } else { Some(path) };
                self.push(
                    Severity::Error,
                    obj.file,
                    pos,
                    Some(obj.label.clone()),
                    field_path,
                    e.message,
                    e.hint,
                );
                None
            }
        }
    }

    /// Reports validation problems; false when there were any.
    fn valid(&mut self, obj: &Obj<'_>, problems: Vec<Problem>) -> bool {
        let ok = problems.is_empty();
        for p in problems {
            let path = p.path.render();
            self.push(
                Severity::Error,
                obj.file,
                p.pos(obj.node),
                Some(obj.label.clone()),
                if path.is_empty() { None } else { Some(path) },
                p.message(),
                None,
            );
        }
        ok
    }

    fn origin(obj: &Obj<'_>) -> Option<Origin> {
        Some(Origin {
            file: obj.file.to_string(),
            line: obj.node.pos.line,
        })
    }

    fn namespace(&mut self, obj: &Obj<'_>) -> Option<Namespace> {
        let (r, issues) = decode::<k8s_openapi::api::core::v1::Namespace>(obj.node, true);
        let ns = self.decoded(obj, r, issues)?;
        let mut problems = Vec::new();
        validate::object_meta(&ns.metadata, false, NameRule::Label, &mut problems);
        if !self.valid(obj, problems) {
            return None;
        }
        let name = ns.metadata.name.unwrap_or_default();
        Some(Namespace::new(
            name,
            ns.metadata.labels.unwrap_or_default(),
            false,
        ))
    }

    fn network_policy(&mut self, obj: &Obj<'_>) -> Option<Policy> {
        let (r, issues) = decode::<NetworkPolicy>(obj.node, true);
        let np = self.decoded(obj, r, issues)?;
        if !self.valid(obj, validate::network_policy(&np)) {
            return None;
        }
        let namespace = namespace_of(&np.metadata);
        let name = np.metadata.name.clone().unwrap_or_default();
        let spec = np.spec.unwrap_or_default();
        let sp = FPath::root().f("spec");
        let mut warnings: Vec<(FPath, String)> = Vec::new();
        let mut key_warnings: Vec<(FPath, String)> = Vec::new();

        let ingress_rules = spec.ingress.unwrap_or_default();
        let egress_rules = spec.egress.unwrap_or_default();
        // SetDefaults_NetworkPolicy: no policyTypes means Ingress, plus Egress when egress rules
        // exist.
        let types = match spec.policy_types {
            Some(t) if !t.is_empty() => t,
            _ => {
                let mut t = vec!["Ingress".to_string()];
                if !egress_rules.is_empty() {
                    t.push("Egress".to_string());
                }
                t
            }
        };
        let affects_ingress = types.iter().any(|t| t == "Ingress");
        let affects_egress = types.iter().any(|t| t == "Egress");

        let mut ingress = Vec::new();
        for (i, rule) in ingress_rules.into_iter().enumerate() {
            let rp = sp.f("ingress").i(i);
            ingress.push(convert_rule(
                rule.from,
                rule.ports,
                &rp,
                "from",
                &mut warnings,
            ));
        }
        let mut egress = Vec::new();
        for (i, rule) in egress_rules.into_iter().enumerate() {
            let rp = sp.f("egress").i(i);
            egress.push(convert_rule(rule.to, rule.ports, &rp, "to", &mut warnings));
        }
        // The API server stores such rules, but no implementation enforces them: a policy only
        // acts on the directions its policyTypes name.
        for (dir, rules, affects) in [
            ("ingress", &mut ingress, affects_ingress),
            ("egress", &mut egress, affects_egress),
        ] {
            if !affects && !rules.is_empty() {
                let cap = if dir == "ingress" {
                    "Ingress"
                } else {
                    "Egress"
                };
                let path = if dir == "ingress" {
                    sp.f("ingress")
                } else {
                    sp.f("egress")
                };
                key_warnings.push((
                    path,
                    format!(
                        "{} {dir} rule(s) are ignored because spec.policyTypes does not include {cap}",
                        rules.len()
                    ),
                ));
                rules.clear();
            }
        }
        let located = warnings
            .into_iter()
            .map(|w| (w, false))
            .chain(key_warnings.into_iter().map(|w| (w, true)));
        for ((path, message), at_key) in located {
            let pos = path.locate(obj.node, at_key);
            self.push(
                Severity::Warning,
                obj.file,
                pos,
                Some(obj.label.clone()),
                Some(path.render()),
                message,
                None,
            );
        }
        Some(Policy {
            namespace,
            name,
            pod_selector: convert_selector(spec.pod_selector.as_ref()),
            affects_ingress,
            affects_egress,
            ingress,
            egress,
            origin: Self::origin(obj),
        })
    }

    fn pod(&mut self, obj: &Obj<'_>) -> Option<Workload> {
        let (r, issues) = decode::<Pod>(obj.node, true);
        let pod = self.decoded(obj, r, issues)?;
        let mut problems = Vec::new();
        validate::object_meta(&pod.metadata, true, NameRule::Subdomain, &mut problems);
        let spec = pod.spec.unwrap_or_default();
        let status = pod.status.unwrap_or_default();

        let mut named_ports = Vec::new();
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, c)| c.restart_policy.as_deref() == Some("Always"))
            .map(|(i, c)| (FPath::root().f("spec").f("initContainers").i(i), c));
        let containers = spec
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| (FPath::root().f("spec").f("containers").i(i), c));
        for (cp, c) in containers.chain(sidecars) {
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
                if let Some(name) = &port.name {
                    let errs = validate::port_name(name);
                    for m in &errs {
                        problems.push(validate::invalid(pp.f("name"), Val::S(name), m));
                    }
                    if let (true, Some(protocol), Ok(number)) = (
                        errs.is_empty(),
                        protocol,
                        u16::try_from(port.container_port),
                    ) {
                        named_ports.push(NamedPort {
                            name: name.clone(),
                            protocol,
                            port: number,
                        });
                    }
                }
            }
        }

        let sp = FPath::root().f("status");
        let mut addresses = Vec::new();
        match status.pod_ips.as_deref() {
            Some(ips) if !ips.is_empty() => {
                for (i, ip) in ips.iter().enumerate() {
                    push_address(
                        &mut addresses,
                        &ip.ip,
                        sp.f("podIPs").i(i).f("ip"),
                        &mut problems,
                    );
                }
            }
            _ => {
                if let Some(ip) = status.pod_ip.as_deref().filter(|s| !s.is_empty()) {
                    push_address(&mut addresses, ip, sp.f("podIP"), &mut problems);
                }
            }
        }
        if !self.valid(obj, problems) {
            return None;
        }
        if spec.host_network == Some(true) {
            self.push(
                Severity::Note,
                obj.file,
                obj.node.pos,
                Some(obj.label.clone()),
                Some("spec.hostNetwork".to_string()),
                "skipped: a hostNetwork pod uses its node's network, which NetworkPolicy does not cover".to_string(),
                None,
            );
            return None;
        }
        if let Some(phase @ ("Succeeded" | "Failed")) = status.phase.as_deref() {
            self.push(
                Severity::Note,
                obj.file,
                obj.node.pos,
                Some(obj.label.clone()),
                Some("status.phase".to_string()),
                format!(
                    "skipped: the pod has finished (phase {phase}) and no longer has an address"
                ),
                None,
            );
            return None;
        }
        Some(Workload {
            kind: WorkloadKind::Pod,
            namespace: namespace_of(&pod.metadata),
            name: pod.metadata.name.clone().unwrap_or_default(),
            labels: pod.metadata.labels.unwrap_or_default(),
            addresses,
            node: spec.node_name,
            phase: status.phase,
            named_ports,
            origin: Self::origin(obj),
        })
    }

    fn vm(&mut self, obj: &Obj<'_>) -> Option<Workload> {
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
            namespace: namespace_of(&vm.metadata),
            name: vm.metadata.name.clone().unwrap_or_default(),
            labels: vm.metadata.labels.unwrap_or_default(),
            addresses,
            node: status.node_name.filter(|s| !s.is_empty()),
            phase: status.phase.filter(|s| !s.is_empty()),
            named_ports: Vec::new(),
            origin: Self::origin(obj),
        })
    }

    fn vmi(&mut self, obj: &Obj<'_>) -> Option<Workload> {
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
            namespace: namespace_of(&vmi.metadata),
            name: vmi.metadata.name.clone().unwrap_or_default(),
            labels: vmi.metadata.labels.unwrap_or_default(),
            addresses,
            node: status.node_name.filter(|s| !s.is_empty()),
            phase: status.phase.filter(|s| !s.is_empty()),
            named_ports: Vec::new(),
            origin: Self::origin(obj),
        })
    }

    /// Cross-object steps, then the cluster.
    pub fn finish(mut self) -> (Cluster, Vec<Diagnostic>) {
        let entries = std::mem::take(&mut self.workloads);
        // Deckhouse VMs by (namespace, name), and every VM-ish workload for launcher matching.
        let dvm: HashMap<(String, String), usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.workload.kind == WorkloadKind::VirtualMachine)
            .map(|(i, e)| ((e.workload.namespace.clone(), e.workload.name.clone()), i))
            .collect();
        let mut keep = vec![true; entries.len()];
        let mut fills: Vec<(usize, usize)> = Vec::new();
        let mut notes = Vec::new();

        // A KubeVirt VMI with the name of a Deckhouse VM is that VM's running instance.
        for (i, e) in entries.iter().enumerate() {
            if e.workload.kind != WorkloadKind::VirtualMachineInstance {
                continue;
            }
            if let Some(&vm) = dvm.get(&(e.workload.namespace.clone(), e.workload.name.clone())) {
                keep[i] = false;
                fills.push((vm, i));
                notes.push((
                    i,
                    format!(
                        "the instance of VirtualMachine {}: counted once, as the VirtualMachine",
                        e.workload.key()
                    ),
                ));
            }
        }
        // VM-ish workloads by (namespace, name) and by address, for virt-launcher pods.
        let mut vms_by_name: HashMap<(String, String), usize> = HashMap::new();
        let mut vms_by_addr: HashMap<(String, IpAddr), usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if e.workload.kind == WorkloadKind::Pod || !keep[i] {
                continue;
            }
            vms_by_name
                .entry((e.workload.namespace.clone(), e.workload.name.clone()))
                .or_insert(i);
            for a in &e.workload.addresses {
                vms_by_addr
                    .entry((e.workload.namespace.clone(), *a))
                    .or_insert(i);
            }
        }
        for (i, e) in entries.iter().enumerate() {
            let w = &e.workload;
            if w.kind != WorkloadKind::Pod {
                continue;
            }
            let by_label = [DECKHOUSE_VM_LABEL, KUBEVIRT_VM_LABEL]
                .iter()
                .filter_map(|l| w.labels.get(*l))
                .find_map(|vm| vms_by_name.get(&(w.namespace.clone(), vm.clone())));
            let by_addr = || {
                if w.labels.get("kubevirt.io").map(String::as_str) != Some("virt-launcher") {
                    return None;
                }
                w.addresses
                    .iter()
                    .find_map(|a| vms_by_addr.get(&(w.namespace.clone(), *a)))
            };
            if let Some(&vm) = by_label.or_else(by_addr) {
                keep[i] = false;
                fills.push((vm, i));
                let v = &entries[vm].workload;
                let kind = if v.kind == WorkloadKind::VirtualMachine {
                    "VirtualMachine"
                } else {
                    "VirtualMachineInstance"
                };
                notes.push((
                    i,
                    format!(
                        "the virt-launcher pod of {kind} {}: not a separate workload",
                        v.key()
                    ),
                ));
            }
        }
        let mut entries = entries;
        // The VM wins, but takes what it does not report itself from its instance or launcher.
        for (vm, from) in fills {
            let donor = entries[from].workload.clone();
            let target = &mut entries[vm].workload;
            if target.addresses.is_empty() {
                target.addresses = donor.addresses;
            }
            if target.node.is_none() {
                target.node = donor.node;
            }
        }
        for (i, message) in notes {
            let e = &entries[i];
            let kind = match e.workload.kind {
                WorkloadKind::Pod => "Pod",
                WorkloadKind::VirtualMachine => "VirtualMachine",
                WorkloadKind::VirtualMachineInstance => "VirtualMachineInstance",
            };
            let label = format!("{kind} {}", e.workload.key());
            let (file, pos) = (e.file.clone(), e.pos);
            self.push(Severity::Note, &file, pos, Some(label), None, message, None);
        }
        let workloads: Vec<Workload> = entries
            .into_iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(e, _)| e.workload)
            .collect();

        let mut cluster = Cluster {
            namespaces: self.namespaces,
            workloads,
            policies: self.policies,
        };
        let added = cluster.add_missing_namespaces();
        let added_set: HashSet<&String> = added.iter().collect();
        let mut first_use: BTreeMap<&str, &Origin> = BTreeMap::new();
        let origins = cluster
            .workloads
            .iter()
            .map(|w| (w.namespace.as_str(), w.origin.as_ref()))
            .chain(
                cluster
                    .policies
                    .iter()
                    .map(|p| (p.namespace.as_str(), p.origin.as_ref())),
            );
        for (ns, origin) in origins {
            if let Some(o) = origin {
                if added_set.contains(&ns.to_string()) {
                    first_use.entry(ns).or_insert(o);
                }
            }
        }
        let mut warnings = Vec::new();
        for ns in &added {
            let (file, line) = first_use
                .get(ns.as_str())
                .map_or((String::new(), 0), |o| (o.file.clone(), o.line));
            warnings.push(Diagnostic {
                severity: Severity::Warning,
                file,
                line,
                column: if line == 0 { 0 } else { 1 },
                object: Some(format!("Namespace {ns}")),
                field_path: None,
                message: format!(
                    "namespace {ns:?} is used but not defined: assuming it exists with only the label {}={ns}",
                    netpol_core::NAMESPACE_NAME_LABEL
                ),
                hint: Some("add its Namespace manifest (kubectl get ns NAME -o yaml) so that namespaceSelectors see its real labels".to_string()),
            });
        }
        self.diagnostics.extend(warnings);
        (cluster, self.diagnostics)
    }
}

fn namespace_of(meta: &ObjectMeta) -> String {
    meta.namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_string())
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

fn convert_selector(sel: Option<&K8sSelector>) -> LabelSelector {
    let Some(sel) = sel else {
        return LabelSelector::everything();
    };
    LabelSelector {
        match_labels: sel.match_labels.clone().unwrap_or_default(),
        match_expressions: sel
            .match_expressions
            .iter()
            .flatten()
            .filter_map(|r| {
                let operator = match r.operator.as_str() {
                    "In" => SelectorOperator::In,
                    "NotIn" => SelectorOperator::NotIn,
                    "Exists" => SelectorOperator::Exists,
                    "DoesNotExist" => SelectorOperator::DoesNotExist,
                    // Unreachable after validation.
                    _ => return None,
                };
                Some(SelectorRequirement {
                    key: r.key.clone(),
                    operator,
                    values: r.values.clone().unwrap_or_default(),
                })
            })
            .collect(),
    }
}

fn convert_rule(
    peers: Option<Vec<NetworkPolicyPeer>>,
    ports: Option<Vec<NetworkPolicyPort>>,
    rp: &FPath,
    peers_field: &'static str,
    warnings: &mut Vec<(FPath, String)>,
) -> Rule {
    let mut rule = Rule::default();
    for (j, p) in peers.unwrap_or_default().into_iter().enumerate() {
        if let Some(b) = p.ip_block {
            let bp = rp.f(peers_field).i(j).f("ipBlock");
            let Some(cidr) = validate::parse_cidr(&b.cidr) else {
                continue;
            };
            if let Some(w) = cidr.warning {
                warnings.push((bp.f("cidr"), w));
            }
            let mut except = Vec::new();
            for (k, e) in b.except.unwrap_or_default().iter().enumerate() {
                if let Some(x) = validate::parse_cidr(e) {
                    if let Some(w) = x.warning {
                        warnings.push((bp.f("except").i(k), w));
                    }
                    except.push(x.net);
                }
            }
            rule.peers.push(Peer::IpBlock(IpBlock {
                cidr: cidr.net,
                except,
            }));
        } else {
            rule.peers.push(Peer::Selector {
                pod_selector: p.pod_selector.as_ref().map(|s| convert_selector(Some(s))),
                namespace_selector: p
                    .namespace_selector
                    .as_ref()
                    .map(|s| convert_selector(Some(s))),
            });
        }
    }
    for p in ports.unwrap_or_default() {
        let protocol = match p.protocol.as_deref() {
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            // Defaulting: TCP (other values were rejected by validation).
            _ => Protocol::Tcp,
        };
        let port = match p.port {
            None => None,
            Some(IntOrString::Int(n)) => {
                let start = u16::try_from(n).unwrap_or(0);
                match p.end_port {
                    Some(end) => Some(PortSpec::Range {
                        start,
                        end: u16::try_from(end).unwrap_or(start),
                    }),
                    None => Some(PortSpec::Number(start)),
                }
            }
            Some(IntOrString::String(name)) => Some(PortSpec::Named(name)),
        };
        rule.ports.push(PolicyPort { protocol, port });
    }
    rule
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
