//! What netpol reads from Kubernetes, in one table: the kinds (API group, version, plural, scope,
//! whether a CRD serves them) and, per kind, the field paths the loader reads.
//!
//! The loader recognises kinds through [`lookup`]; the agent's API source builds its watch list
//! from [`KINDS`] and shrinks every watched object to what the loader reads with
//! [`KindSchema::prune`] (or [`KindSchema::prune_parts`]), so that a pruned object loads to
//! exactly what the full one loads to while managedFields, annotations and the rest of spec and
//! status never stay in memory.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use netpol_core::WorkloadKind;
use serde_json::{Map, Value};

/// The kinds netpol reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KnownKind {
    /// core/v1 Namespace.
    Namespace,
    /// core/v1 Pod.
    Pod,
    /// networking.k8s.io/v1 NetworkPolicy.
    NetworkPolicy,
    /// virtualization.deckhouse.io/v1alpha2 VirtualMachine.
    VirtualMachine,
    /// kubevirt.io/v1 VirtualMachineInstance.
    VirtualMachineInstance,
    /// core/v1 Node.
    Node,
}

/// One kind netpol reads, and which of its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindSchema {
    /// Which kind, for matching without strings.
    pub id: KnownKind,
    /// `kind` of its objects.
    pub kind: &'static str,
    /// `""` for the core group.
    pub group: &'static str,
    /// The one version netpol reads.
    pub version: &'static str,
    /// `group/version`, or `version` for the core group (`apiVersion` of its objects).
    pub api_version: &'static str,
    /// The resource name in API paths (`/api/v1/pods`).
    pub plural: &'static str,
    /// Namespaced (rather than cluster-scoped).
    pub namespaced: bool,
    /// Served by a CustomResourceDefinition that may be missing (and come and go).
    pub crd: bool,
    /// The paths the loader reads besides [`METADATA_FIELDS`], dot-separated from the object's
    /// root; `name[]` is every element of the array `name`. A path names a whole subtree.
    pub fields: &'static [&'static str],
}

/// The metadata every kind's loading reads (`generateName` only to say that it is not enough).
pub const METADATA_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.generateName",
    "metadata.namespace",
    "metadata.labels",
];

/// Namespaces: only their name and labels matter (namespaceSelectors).
pub const NAMESPACE: KindSchema = KindSchema {
    id: KnownKind::Namespace,
    kind: "Namespace",
    group: "",
    version: "v1",
    api_version: "v1",
    plural: "namespaces",
    namespaced: false,
    crd: false,
    fields: &[],
};

/// Pods: labels, addresses, node, phase, named container ports, hostNetwork.
pub const POD: KindSchema = KindSchema {
    id: KnownKind::Pod,
    kind: "Pod",
    group: "",
    version: "v1",
    api_version: "v1",
    plural: "pods",
    namespaced: true,
    crd: false,
    fields: &[
        "spec.nodeName",
        "spec.hostNetwork",
        "spec.containers[].name",
        "spec.containers[].ports",
        "spec.containers[].restartPolicy",
        "spec.initContainers[].name",
        "spec.initContainers[].ports",
        "spec.initContainers[].restartPolicy",
        "status.phase",
        "status.podIP",
        "status.podIPs",
    ],
};

/// NetworkPolicies: the whole spec.
pub const NETWORK_POLICY: KindSchema = KindSchema {
    id: KnownKind::NetworkPolicy,
    kind: "NetworkPolicy",
    group: "networking.k8s.io",
    version: "v1",
    api_version: "networking.k8s.io/v1",
    plural: "networkpolicies",
    namespaced: true,
    crd: false,
    fields: &["spec"],
};

/// Deckhouse virtualization's VirtualMachine (its status reports the address and node).
pub const VIRTUAL_MACHINE: KindSchema = KindSchema {
    id: KnownKind::VirtualMachine,
    kind: "VirtualMachine",
    group: "virtualization.deckhouse.io",
    version: "v1alpha2",
    api_version: "virtualization.deckhouse.io/v1alpha2",
    plural: "virtualmachines",
    namespaced: true,
    crd: true,
    fields: &["status.ipAddress", "status.nodeName", "status.phase"],
};

/// KubeVirt's VirtualMachineInstance (a KubeVirt VirtualMachine has no address; its instance
/// does).
pub const VIRTUAL_MACHINE_INSTANCE: KindSchema = KindSchema {
    id: KnownKind::VirtualMachineInstance,
    kind: "VirtualMachineInstance",
    group: "kubevirt.io",
    version: "v1",
    api_version: "kubevirt.io/v1",
    plural: "virtualmachineinstances",
    namespaced: true,
    crd: true,
    fields: &[
        "status.interfaces[].ipAddress",
        "status.interfaces[].ipAddresses",
        "status.nodeName",
        "status.phase",
    ],
};

/// Nodes: their name, labels and addresses (`InternalIP` and `ExternalIP`, both families), for
/// the rule that a workload always accepts its own node's traffic.
pub const NODE: KindSchema = KindSchema {
    id: KnownKind::Node,
    kind: "Node",
    group: "",
    version: "v1",
    api_version: "v1",
    plural: "nodes",
    namespaced: false,
    crd: false,
    fields: &["status.addresses[].type", "status.addresses[].address"],
};

/// Every kind a node's agent watches: what enforcement needs (nodes are not among them: the
/// agent's RBAC does not grant them, and a node's table does not need them).
pub static KINDS: [KindSchema; 5] = [
    NAMESPACE,
    POD,
    NETWORK_POLICY,
    VIRTUAL_MACHINE,
    VIRTUAL_MACHINE_INSTANCE,
];

/// Every kind the loader reads: the agent's [`KINDS`] and [`NODE`].
pub static READ_KINDS: [KindSchema; 6] = [
    NAMESPACE,
    POD,
    NETWORK_POLICY,
    VIRTUAL_MACHINE,
    VIRTUAL_MACHINE_INSTANCE,
    NODE,
];

/// The kind an object of `api_version` and `kind` is, if netpol reads it.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static KindSchema> {
    READ_KINDS
        .iter()
        .find(|k| k.kind == kind && k.api_version == api_version)
}

/// The kind netpol reads under the name `kind`, whatever the version.
pub fn by_kind(kind: &str) -> Option<&'static KindSchema> {
    READ_KINDS.iter().find(|k| k.kind == kind)
}

/// The kind a model workload was loaded from.
pub fn of_workload(kind: WorkloadKind) -> &'static KindSchema {
    match kind {
        WorkloadKind::Pod => &POD,
        WorkloadKind::VirtualMachine => &VIRTUAL_MACHINE,
        WorkloadKind::VirtualMachineInstance => &VIRTUAL_MACHINE_INSTANCE,
    }
}

impl KindSchema {
    /// Every path the loader reads, metadata first.
    pub fn read_fields(&self) -> impl Iterator<Item = &'static str> {
        METADATA_FIELDS.iter().chain(self.fields).copied()
    }

    /// `object` (a whole API object) reduced to the fields netpol reads, with this kind's
    /// `apiVersion` and `kind` (items of a list often lack them).
    ///
    /// A value of an unexpected type (a string where an object belongs) is kept as it is, so
    /// that the loader rejects the pruned object exactly when it rejects the full one.
    pub fn prune(&self, object: &Value) -> Value {
        let paths: Vec<&str> = self.read_fields().collect();
        let mut out = match prune_value(object, &paths) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        self.type_meta(&mut out);
        Value::Object(out)
    }

    /// Like [`prune`](Self::prune) for an object whose metadata is already decoded (kube's
    /// `DynamicObject`: `metadata` plus the rest as `data`); only the kept metadata is copied,
    /// never managedFields or annotations.
    pub fn prune_parts(&self, metadata: &ObjectMeta, data: &Value) -> Value {
        let paths: Vec<&str> = self.fields.to_vec();
        let mut out = match prune_value(data, &paths) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        out.insert("metadata".into(), kept_metadata(metadata));
        self.type_meta(&mut out);
        Value::Object(out)
    }

    fn type_meta(&self, out: &mut Map<String, Value>) {
        out.insert("apiVersion".into(), Value::String(self.api_version.into()));
        out.insert("kind".into(), Value::String(self.kind.into()));
    }
}

/// The [`METADATA_FIELDS`] of `meta`, as JSON (see the test that holds the two together).
fn kept_metadata(meta: &ObjectMeta) -> Value {
    let kept = ObjectMeta {
        name: meta.name.clone(),
        generate_name: meta.generate_name.clone(),
        namespace: meta.namespace.clone(),
        labels: meta.labels.clone(),
        ..ObjectMeta::default()
    };
    serde_json::to_value(kept).unwrap_or(Value::Null)
}

/// `value` reduced to `paths` (relative to it; an empty path keeps all of it).
fn prune_value(value: &Value, paths: &[&str]) -> Value {
    if paths.iter().any(|p| p.is_empty()) {
        return value.clone();
    }
    let Some(map) = value.as_object() else {
        return value.clone();
    };
    let mut out = Map::new();
    let mut heads: Vec<&str> = Vec::new();
    for p in paths {
        let head = p.split_once('.').map_or(*p, |(h, _)| h);
        if !heads.contains(&head) {
            heads.push(head);
        }
    }
    for head in heads {
        let rest: Vec<&str> = paths
            .iter()
            .filter_map(|p| match p.split_once('.') {
                Some((h, r)) if h == head => Some(r),
                None if *p == head => Some(""),
                _ => None,
            })
            .collect();
        let (name, each) = match head.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (head, false),
        };
        let Some(child) = map.get(name) else {
            continue;
        };
        let pruned = match child {
            Value::Array(items) if each => {
                Value::Array(items.iter().map(|i| prune_value(i, &rest)).collect())
            }
            _ if each => child.clone(),
            _ => prune_value(child, &rest),
        };
        out.insert(name.to_string(), pruned);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_api_version_is_its_group_and_version() {
        for k in &READ_KINDS {
            let expected = if k.group.is_empty() {
                k.version.to_string()
            } else {
                format!("{}/{}", k.group, k.version)
            };
            assert_eq!(k.api_version, expected, "{}", k.kind);
            assert_eq!(lookup(k.api_version, k.kind), Some(k));
        }
        for w in [
            WorkloadKind::Pod,
            WorkloadKind::VirtualMachine,
            WorkloadKind::VirtualMachineInstance,
        ] {
            assert_eq!(format!("{w:?}"), of_workload(w).kind);
        }
    }

    #[test]
    fn decoded_metadata_is_pruned_like_metadata_in_json() {
        let object = json!({"metadata": {"name": "n", "generateName": "g-", "namespace": "a",
            "labels": {"x": "y"}, "annotations": {"a": "b"}, "uid": "u",
            "managedFields": [{"manager": "m"}], "resourceVersion": "5"}});
        let meta: ObjectMeta = serde_json::from_value(object["metadata"].clone()).unwrap();
        assert_eq!(
            POD.prune_parts(&meta, &json!({})),
            POD.prune(&object),
            "kept_metadata copies exactly METADATA_FIELDS"
        );
    }

    #[test]
    fn a_value_of_an_unexpected_type_is_kept_for_the_loader_to_reject() {
        let object = json!({"status": {"interfaces": "eth0", "phase": "Running", "x": 1}});
        assert_eq!(
            VIRTUAL_MACHINE_INSTANCE.prune(&object)["status"],
            json!({"interfaces": "eth0", "phase": "Running"})
        );
    }
}
