//! From parsed documents to the model: kind dispatch (by [`crate::schema`]), Lists, strict
//! decoding, validation, defaulting, conversion ([`policy`], [`workload`], and [`admin`] for the
//! admin tiers' ClusterNetworkPolicy, AdminNetworkPolicy and BaselineAdminNetworkPolicy), and
//! the cross-object steps (duplicates, VM folding by [`crate::fold`], implicit namespaces).

mod admin;
mod controller;
mod folding;
mod node;
mod policy;
mod workload;

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use netpol_core::{AdminApi, AdminPolicy, Cluster, Namespace, Origin, Policy, Workload};

use node::HostNetworkPod;

use crate::de::{DeError, FieldIssue, IssueKind};
use crate::fold::Owner;
use crate::schema::{self, KindSchema, KnownKind};
use crate::validate::Problem;
use crate::yaml::{Kind, Node, Pos};
use crate::{Diagnostic, DiagnosticKind, LoadOptions, Severity, ValidationMode};

/// A workload as loaded, before cross-object folding.
struct Entry {
    workload: Workload,
    /// Where the object is, for diagnostics about it.
    file: String,
    pos: Pos,
    /// Its controller, for folding Pods into their Deployment and the like.
    owner: Option<Owner>,
}

/// Where an object was first defined, for the error about a second definition.
struct FirstDefinition {
    file: String,
    line: usize,
}

/// Accumulates objects and diagnostics across files.
pub(crate) struct Loader {
    opts: LoadOptions,
    /// The namespace of a namespaced object without `metadata.namespace`: `default`, or the
    /// one `kubectl apply` would use (see [`Loader::in_namespace`]).
    default_namespace: String,
    pub diagnostics: Vec<Diagnostic>,
    namespaces: Vec<Namespace>,
    workloads: Vec<Entry>,
    policies: Vec<Policy>,
    /// ClusterNetworkPolicies, AdminNetworkPolicies and BaselineAdminNetworkPolicies.
    admin_policies: Vec<AdminPolicy>,
    nodes: Vec<netpol_core::Node>,
    /// hostNetwork pods: not workloads, their addresses are their node's.
    host_network: Vec<HostNetworkPod>,
    /// (kind, namespace, name) -> where first defined.
    seen: HashMap<(String, String, String), FirstDefinition>,
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

    fn describe(&self, namespaced: bool, default_namespace: &str) -> String {
        let name = self.name.as_deref().unwrap_or("<no name>");
        if namespaced {
            let ns = self
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(default_namespace);
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

impl Obj<'_> {
    /// A diagnostic about this object at `pos`.
    fn diag(&self, severity: Severity, pos: Pos, message: String) -> Diagnostic {
        Diagnostic::at(severity, self.file, pos, message).object(self.label.clone())
    }
}

impl Loader {
    pub fn new(opts: LoadOptions) -> Loader {
        Loader {
            opts,
            default_namespace: "default".to_string(),
            diagnostics: Vec::new(),
            namespaces: Vec::new(),
            workloads: Vec::new(),
            policies: Vec::new(),
            admin_policies: Vec::new(),
            nodes: Vec::new(),
            host_network: Vec::new(),
            seen: HashMap::new(),
        }
    }

    fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    pub fn file_error(&mut self, file: &str, pos: Pos, message: String) {
        self.push(Diagnostic::at(Severity::Error, file, pos, message));
    }

    /// A tab after a mapping colon, read as a space (see `yaml::go_yaml_tabs`).
    pub fn tab_warning(&mut self, file: &str, pos: Pos) {
        let d = Diagnostic::at(
            Severity::Warning,
            file,
            pos,
            "a tab after ':' is read as a space, as kubectl reads it; other YAML tools may refuse it".to_string(),
        )
        .hint("indent and separate with spaces only");
        self.push(d);
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
        self.list(file, root, &api_version, &kind);
    }

    /// The items of a `List` (or a typed list such as `PodList`).
    fn list(&mut self, file: &str, root: &Node, api_version: &str, kind: &str) {
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
                    let defaults = item_kind.map(|k| (api_version, k));
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
        let api_version = type_meta_field(node, "apiVersion", defaults.map(|d| d.0), &mut problems);
        let kind = type_meta_field(node, "kind", defaults.map(|d| d.1), &mut problems);
        for (pos, message) in problems {
            let mut d = Diagnostic::at(
                Severity::Error,
                file,
                pos,
                format!("error validating data: {message}"),
            )
            .hint("every manifest needs apiVersion and kind (e.g. apiVersion: networking.k8s.io/v1, kind: NetworkPolicy)");
            d.object = node
                .get("metadata")
                .and_then(|m| m.get_str("name"))
                .map(|n| format!("object {n:?}"));
            self.push(d);
        }
        Some((api_version?, kind?))
    }

    fn object(&mut self, file: &str, node: &Node, api_version: &str, kind: &str) {
        let r = ObjRef::read(node, kind);
        if let Some(k) = schema::lookup(api_version, kind) {
            let obj = Obj {
                file,
                node,
                label: r.describe(k.namespaced, &self.default_namespace),
            };
            self.known(&obj, k);
            return;
        }
        let d = match schema::by_kind(kind) {
            Some(k) if !k.crd => {
                let pos = node.get("apiVersion").map_or(node.pos, |n| n.pos);
                Diagnostic::at(
                    Severity::Error,
                    file,
                    pos,
                    format!("no matches for kind {kind:?} in version {api_version:?}"),
                )
                .object(r.describe(k.namespaced, &self.default_namespace))
                .field("apiVersion")
                .hint(format!("use apiVersion: {}", k.api_version))
            }
            // A policy of a version netpol cannot read is an error, not a skip: without it the
            // analysis (and an agent) would leave open what the policy denies.
            Some(k) if is_crd_group(api_version) && k.group == ADMIN_POLICY_GROUP => {
                Diagnostic::at(
                    Severity::Error,
                    file,
                    node.pos,
                    format!(
                        "netpol does not read {kind} of version {api_version:?}: what it decides cannot be analysed or enforced"
                    ),
                )
                .object(r.describe(k.namespaced, &self.default_namespace))
                .field("apiVersion")
                .hint(format!("netpol reads {}", crd_kinds_of(kind)))
            }
            Some(k) if is_crd_group(api_version) => Diagnostic::at(
                Severity::Warning,
                file,
                node.pos,
                format!("skipped: netpol does not read {kind} of version {api_version:?}"),
            )
            .object(r.describe(k.namespaced, &self.default_namespace))
            .field("apiVersion")
            .hint(format!("netpol reads {}", crd_kinds_of(kind))),
            _ => Diagnostic::at(
                Severity::Note,
                file,
                node.pos,
                format!(
                    "skipped {}: netpol does not use this kind",
                    r.describe(false, &self.default_namespace)
                ),
            ),
        };
        self.push(d);
    }

    /// An object of a kind netpol reads.
    fn known(&mut self, obj: &Obj<'_>, k: &KindSchema) {
        match k.id {
            KnownKind::NetworkPolicy => {
                if let Some(p) = self.network_policy(obj) {
                    if self.first_definition(obj, k, &p.namespace, &p.name) {
                        self.policies.push(p);
                    }
                }
            }
            KnownKind::ClusterNetworkPolicy
            | KnownKind::AdminNetworkPolicy
            | KnownKind::BaselineAdminNetworkPolicy => {
                let api = match k.id {
                    KnownKind::ClusterNetworkPolicy => AdminApi::ClusterNetworkPolicy,
                    KnownKind::AdminNetworkPolicy => AdminApi::AdminNetworkPolicy,
                    _ => AdminApi::BaselineAdminNetworkPolicy,
                };
                if let Some(p) = self.admin_policy(obj, api) {
                    if self.first_definition(obj, k, "", &p.name) {
                        self.admin_policies.push(p);
                    }
                }
            }
            KnownKind::Node => {
                if let Some(n) = self.node(obj) {
                    if self.first_definition(obj, k, "", &n.name) {
                        self.nodes.push(n);
                    }
                }
            }
            KnownKind::Namespace => {
                if let Some(ns) = self.namespace(obj) {
                    if self.first_definition(obj, k, "", &ns.name) {
                        self.namespaces.push(ns);
                    }
                }
            }
            KnownKind::Pod
            | KnownKind::VirtualMachine
            | KnownKind::VirtualMachineInstance
            | KnownKind::KubevirtVirtualMachine
            | KnownKind::Controller(_) => {
                let workload = match k.id {
                    KnownKind::Pod => self.pod(obj),
                    KnownKind::VirtualMachine => self.vm(obj),
                    KnownKind::KubevirtVirtualMachine => self.kubevirt_vm(obj),
                    KnownKind::Controller(kind) => self.controller(obj, kind),
                    _ => self.vmi(obj),
                };
                if let Some(w) = workload {
                    if self.first_definition(obj, k, &w.namespace, &w.name) {
                        self.workloads.push(Entry {
                            workload: w,
                            file: obj.file.to_string(),
                            pos: obj.node.pos,
                            owner: controller::owner_of(obj.node),
                        });
                    }
                }
            }
        }
    }

    /// Records an object's identity; false (with an error) when it was already loaded.
    fn first_definition(&mut self, obj: &Obj<'_>, k: &KindSchema, ns: &str, name: &str) -> bool {
        let key = (k.kind.to_string(), ns.to_string(), name.to_string());
        if let Some(first) = self.seen.get(&key) {
            let message = format!(
                "duplicate object: already defined at {}:{}; the first definition is kept",
                first.file, first.line
            );
            self.push(obj.diag(Severity::Error, obj.node.pos, message));
            return false;
        }
        let first = FirstDefinition {
            file: obj.file.to_string(),
            line: obj.node.pos.line,
        };
        self.seen.insert(key, first);
        true
    }

    /// Reports decoding problems; returns the value unless the object must be rejected.
    fn decoded<T>(
        &mut self,
        obj: &Obj<'_>,
        result: Result<T, DeError>,
        issues: Vec<FieldIssue>,
    ) -> Option<T> {
        let mut reject = false;
        for issue in issues {
            let kind = match issue.kind {
                IssueKind::Unknown => DiagnosticKind::UnknownField,
                IssueKind::Duplicate => DiagnosticKind::DuplicateField,
            };
            match self.opts.validation {
                ValidationMode::Ignore => {}
                ValidationMode::Strict => {
                    reject = true;
                    let what = match issue.kind {
                        IssueKind::Unknown => "unknown field",
                        IssueKind::Duplicate => "duplicate field",
                    };
                    let message = format!("{what} {:?}", issue.name);
                    let d = obj.diag(Severity::Error, issue.pos, message).kind(kind);
                    self.push(d.field(issue.path).hint_opt(issue.hint));
                }
                ValidationMode::Warn => {
                    let message = dropped_field_warning(&issue);
                    let d = obj.diag(Severity::Warning, issue.pos, message).kind(kind);
                    self.push(d.field(issue.path).hint_opt(issue.hint));
                }
            }
        }
        match result {
            Ok(v) if !reject => Some(v),
            Ok(_) => None,
            Err(e) => {
                let (path, pos) = e.at.unwrap_or_else(|| (String::new(), obj.node.pos));
                let d = obj.diag(Severity::Error, pos, e.message);
                self.push(d.field_unless_root(path).hint_opt(e.hint));
                None
            }
        }
    }

    /// Reports validation problems; false when there were any.
    fn valid(&mut self, obj: &Obj<'_>, problems: Vec<Problem>) -> bool {
        let ok = problems.is_empty();
        for p in problems {
            let d = obj.diag(Severity::Error, p.pos(obj.node), p.message());
            self.push(d.field_unless_root(p.path.render()));
        }
        ok
    }

    fn origin(obj: &Obj<'_>) -> Option<Origin> {
        Some(Origin {
            file: obj.file.to_string(),
            line: obj.node.pos.line,
        })
    }

    /// The objects as loaded, without the cross-object steps (see `load_fragment`).
    pub fn objects(self) -> (Cluster, Vec<Diagnostic>) {
        let nodes = node::with_host_network(self.nodes, &self.host_network);
        let cluster = Cluster {
            namespaces: self.namespaces,
            workloads: self.workloads.into_iter().map(|e| e.workload).collect(),
            policies: self.policies,
            admin_policies: self.admin_policies,
            nodes,
            ..Default::default()
        };
        (cluster, self.diagnostics)
    }

    /// Cross-object steps, then the cluster.
    pub fn finish(mut self) -> (Cluster, Vec<Diagnostic>) {
        let entries = std::mem::take(&mut self.workloads);
        let workloads = self.fold(entries);
        let nodes = node::with_host_network(std::mem::take(&mut self.nodes), &self.host_network);
        let mut cluster = Cluster {
            namespaces: std::mem::take(&mut self.namespaces),
            workloads,
            policies: std::mem::take(&mut self.policies),
            admin_policies: std::mem::take(&mut self.admin_policies),
            nodes,
            ..Default::default()
        };
        let added = cluster.add_missing_namespaces();
        let warnings = undefined_namespace_warnings(&cluster, &added);
        self.diagnostics.extend(warnings);
        (cluster, self.diagnostics)
    }
}

/// One of `apiVersion` and `kind`, or a problem (position, message).
fn type_meta_field(
    node: &Node,
    field: &str,
    default: Option<&str>,
    problems: &mut Vec<(Pos, String)>,
) -> Option<String> {
    let n = match node.get(field) {
        Some(n) if !n.is_null() => n,
        found => {
            let pos = found.map_or(node.pos, |n| n.pos);
            return default.map(str::to_string).or_else(|| {
                problems.push((pos, format!("{field} not set")));
                None
            });
        }
    };
    match n.as_str() {
        Some(s) if !s.is_empty() => Some(s.to_string()),
        _ => {
            problems.push((
                n.pos,
                format!("{field} must be a string, got {}", n.describe()),
            ));
            None
        }
    }
}

/// The API group of the admin tiers' policies.
const ADMIN_POLICY_GROUP: &str = "policy.networking.k8s.io";

/// Whether `api_version` is of a group of the VM CRDs netpol reads (in another version).
fn is_crd_group(api_version: &str) -> bool {
    schema::READ_KINDS
        .iter()
        .filter(|k| k.crd)
        .any(|k| api_version.starts_with(&format!("{}/", k.group)))
}

/// The versions netpol reads of the CRD kind `kind`: `virtualization.deckhouse.io/v1alpha2
/// VirtualMachine and kubevirt.io/v1 VirtualMachine`.
fn crd_kinds_of(kind: &str) -> String {
    let kinds: Vec<String> = schema::READ_KINDS
        .iter()
        .filter(|k| k.crd && k.kind == kind)
        .map(|k| format!("{} {}", k.api_version, k.kind))
        .collect();
    kinds.join(" and ")
}

/// The warning for a field `ValidationMode::Warn` drops (unknown) or overrides (duplicate).
fn dropped_field_warning(issue: &FieldIssue) -> String {
    match issue.kind {
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
    }
}

/// A warning per namespace in `added` (used but not defined), at its first use.
fn undefined_namespace_warnings(cluster: &Cluster, added: &[String]) -> Vec<Diagnostic> {
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
    added
        .iter()
        .map(|ns| {
            let (file, line) = first_use
                .get(ns.as_str())
                .map_or((String::new(), 0), |o| (o.file.clone(), o.line));
            let pos = Pos {
                line,
                col: if line == 0 { 0 } else { 1 },
            };
            Diagnostic::at(
                Severity::Warning,
                &file,
                pos,
                format!(
                    "namespace {ns:?} is used but not defined: assuming it exists with only the label {}={ns}",
                    netpol_core::NAMESPACE_NAME_LABEL
                ),
            )
            .object(format!("Namespace {ns}"))
            .hint("add its Namespace manifest (kubectl get ns NAME -o yaml) so that namespaceSelectors see its real labels")
            .kind(DiagnosticKind::UndefinedNamespace)
        })
        .collect()
}

impl Loader {
    /// Namespaced objects without `metadata.namespace` go to `namespace` instead of `default`,
    /// as `kubectl apply -n NS` (or the context's namespace) puts them.
    pub fn in_namespace(mut self, namespace: &str) -> Loader {
        self.default_namespace = namespace.to_string();
        self
    }

    /// The namespace of a namespaced object.
    fn namespace_of(&self, meta: &ObjectMeta) -> String {
        meta.namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.default_namespace.clone())
    }
}
