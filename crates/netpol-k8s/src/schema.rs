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
    /// kubevirt.io/v1 VirtualMachine (labels of its instance template; a workload of kind
    /// [`WorkloadKind::VirtualMachine`], like Deckhouse's).
    KubevirtVirtualMachine,
    /// A workload controller: its pod template (see [`CONTROLLERS`]).
    Controller(WorkloadKind),
    /// policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy (either admin tier).
    ClusterNetworkPolicy,
    /// policy.networking.k8s.io/v1alpha1 AdminNetworkPolicy (the Admin tier).
    AdminNetworkPolicy,
    /// policy.networking.k8s.io/v1alpha1 BaselineAdminNetworkPolicy (the Baseline tier, after
    /// every ClusterNetworkPolicy of it).
    BaselineAdminNetworkPolicy,
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

/// The admin tiers' ClusterNetworkPolicy (network-policy-api v0.2.0): the whole spec. Served by
/// a CRD that may be installed late or removed.
pub const CLUSTER_NETWORK_POLICY: KindSchema = KindSchema {
    id: KnownKind::ClusterNetworkPolicy,
    kind: "ClusterNetworkPolicy",
    group: "policy.networking.k8s.io",
    version: "v1alpha2",
    api_version: "policy.networking.k8s.io/v1alpha2",
    plural: "clusternetworkpolicies",
    namespaced: false,
    crd: true,
    fields: &["spec"],
};

/// The deprecated v1alpha1 AdminNetworkPolicy: the whole spec.
pub const ADMIN_NETWORK_POLICY: KindSchema = KindSchema {
    id: KnownKind::AdminNetworkPolicy,
    kind: "AdminNetworkPolicy",
    group: "policy.networking.k8s.io",
    version: "v1alpha1",
    api_version: "policy.networking.k8s.io/v1alpha1",
    plural: "adminnetworkpolicies",
    namespaced: false,
    crd: true,
    fields: &["spec"],
};

/// The deprecated v1alpha1 BaselineAdminNetworkPolicy (the singleton `default`): the whole spec.
pub const BASELINE_ADMIN_NETWORK_POLICY: KindSchema = KindSchema {
    id: KnownKind::BaselineAdminNetworkPolicy,
    kind: "BaselineAdminNetworkPolicy",
    group: "policy.networking.k8s.io",
    version: "v1alpha1",
    api_version: "policy.networking.k8s.io/v1alpha1",
    plural: "baselineadminnetworkpolicies",
    namespaced: false,
    crd: true,
    fields: &["spec"],
};

/// Where a controller's pod template is: `spec.template` (Deployment, StatefulSet, DaemonSet,
/// ReplicaSet, ReplicationController, Job) or `spec.jobTemplate.spec.template` (CronJob).
/// A DaemonSet reads only these (it runs one Pod per node, which no field counts).
const TEMPLATE_FIELDS: &[&str] = &[
    "spec.template.metadata.labels",
    "spec.template.spec.hostNetwork",
    "spec.template.spec.containers[].name",
    "spec.template.spec.containers[].ports",
    "spec.template.spec.initContainers[].name",
    "spec.template.spec.initContainers[].ports",
    "spec.template.spec.initContainers[].restartPolicy",
];

/// [`TEMPLATE_FIELDS`] and how many instances it runs (`spec.replicas`): Deployment,
/// StatefulSet, ReplicationController.
const REPLICATED_FIELDS: &[&str] = &[
    "spec.replicas",
    "spec.template.metadata.labels",
    "spec.template.spec.hostNetwork",
    "spec.template.spec.containers[].name",
    "spec.template.spec.containers[].ports",
    "spec.template.spec.initContainers[].name",
    "spec.template.spec.initContainers[].ports",
    "spec.template.spec.initContainers[].restartPolicy",
];

/// [`REPLICATED_FIELDS`] and the owner (the Deployment it folds into).
const REPLICA_SET_FIELDS: &[&str] = &[
    "metadata.ownerReferences",
    "spec.replicas",
    "spec.template.metadata.labels",
    "spec.template.spec.hostNetwork",
    "spec.template.spec.containers[].name",
    "spec.template.spec.containers[].ports",
    "spec.template.spec.initContainers[].name",
    "spec.template.spec.initContainers[].ports",
    "spec.template.spec.initContainers[].restartPolicy",
];

/// [`TEMPLATE_FIELDS`], how many Pods run at once (`spec.parallelism`) and the owner (the
/// CronJob it folds into).
const JOB_FIELDS: &[&str] = &[
    "metadata.ownerReferences",
    "spec.parallelism",
    "spec.template.metadata.labels",
    "spec.template.spec.hostNetwork",
    "spec.template.spec.containers[].name",
    "spec.template.spec.containers[].ports",
    "spec.template.spec.initContainers[].name",
    "spec.template.spec.initContainers[].ports",
    "spec.template.spec.initContainers[].restartPolicy",
];

/// A workload controller of `group/version`, `kind`, `plural`, reading `fields`.
const fn controller(
    kind: WorkloadKind,
    name: &'static str,
    group: &'static str,
    api_version: &'static str,
    plural: &'static str,
    fields: &'static [&'static str],
) -> KindSchema {
    KindSchema {
        id: KnownKind::Controller(kind),
        kind: name,
        group,
        version: "v1",
        api_version,
        plural,
        namespaced: true,
        crd: false,
        fields,
    }
}

/// apps/v1 Deployment.
pub const DEPLOYMENT: KindSchema = controller(
    WorkloadKind::Deployment,
    "Deployment",
    "apps",
    "apps/v1",
    "deployments",
    REPLICATED_FIELDS,
);
/// apps/v1 StatefulSet.
pub const STATEFUL_SET: KindSchema = controller(
    WorkloadKind::StatefulSet,
    "StatefulSet",
    "apps",
    "apps/v1",
    "statefulsets",
    REPLICATED_FIELDS,
);
/// apps/v1 DaemonSet.
pub const DAEMON_SET: KindSchema = controller(
    WorkloadKind::DaemonSet,
    "DaemonSet",
    "apps",
    "apps/v1",
    "daemonsets",
    TEMPLATE_FIELDS,
);
/// apps/v1 ReplicaSet (its owner: the Deployment it folds into).
pub const REPLICA_SET: KindSchema = controller(
    WorkloadKind::ReplicaSet,
    "ReplicaSet",
    "apps",
    "apps/v1",
    "replicasets",
    REPLICA_SET_FIELDS,
);
/// core/v1 ReplicationController.
pub const REPLICATION_CONTROLLER: KindSchema = controller(
    WorkloadKind::ReplicationController,
    "ReplicationController",
    "",
    "v1",
    "replicationcontrollers",
    REPLICATED_FIELDS,
);
/// batch/v1 Job (its owner: the CronJob it folds into).
pub const JOB: KindSchema = controller(
    WorkloadKind::Job,
    "Job",
    "batch",
    "batch/v1",
    "jobs",
    JOB_FIELDS,
);
/// batch/v1 CronJob: the pod template inside its job template.
pub const CRON_JOB: KindSchema = controller(
    WorkloadKind::CronJob,
    "CronJob",
    "batch",
    "batch/v1",
    "cronjobs",
    &[
        "spec.jobTemplate.spec.parallelism",
        "spec.jobTemplate.spec.template.metadata.labels",
        "spec.jobTemplate.spec.template.spec.hostNetwork",
        "spec.jobTemplate.spec.template.spec.containers[].name",
        "spec.jobTemplate.spec.template.spec.containers[].ports",
        "spec.jobTemplate.spec.template.spec.initContainers[].name",
        "spec.jobTemplate.spec.template.spec.initContainers[].ports",
        "spec.jobTemplate.spec.template.spec.initContainers[].restartPolicy",
    ],
);

/// KubeVirt's VirtualMachine: the labels its instances (and their virt-launcher pods) get.
pub const KUBEVIRT_VIRTUAL_MACHINE: KindSchema = KindSchema {
    id: KnownKind::KubevirtVirtualMachine,
    kind: "VirtualMachine",
    group: "kubevirt.io",
    version: "v1",
    api_version: "kubevirt.io/v1",
    plural: "virtualmachines",
    namespaced: true,
    crd: true,
    fields: &["spec.template.metadata.labels"],
};

/// The workload controllers the loader reads (from git or a dump; the agent does not watch them:
/// they carry no address, so enforcement does not need them).
pub static CONTROLLERS: [KindSchema; 7] = [
    DEPLOYMENT,
    STATEFUL_SET,
    DAEMON_SET,
    REPLICA_SET,
    REPLICATION_CONTROLLER,
    JOB,
    CRON_JOB,
];

/// Every kind a node's agent watches: what enforcement needs (nodes are not among them: the
/// agent's RBAC does not grant them, and a node's table does not need them). The admin policy
/// kinds are CRDs followed as they come and go, like the VM kinds.
pub static KINDS: [KindSchema; 8] = [
    NAMESPACE,
    POD,
    NETWORK_POLICY,
    VIRTUAL_MACHINE,
    VIRTUAL_MACHINE_INSTANCE,
    CLUSTER_NETWORK_POLICY,
    ADMIN_NETWORK_POLICY,
    BASELINE_ADMIN_NETWORK_POLICY,
];

/// Every kind the loader reads: the agent's [`KINDS`], [`NODE`], the [`CONTROLLERS`] and
/// KubeVirt's VirtualMachine (which has no address either).
pub static READ_KINDS: [KindSchema; 17] = [
    NAMESPACE,
    POD,
    NETWORK_POLICY,
    VIRTUAL_MACHINE,
    VIRTUAL_MACHINE_INSTANCE,
    CLUSTER_NETWORK_POLICY,
    ADMIN_NETWORK_POLICY,
    BASELINE_ADMIN_NETWORK_POLICY,
    NODE,
    KUBEVIRT_VIRTUAL_MACHINE,
    DEPLOYMENT,
    STATEFUL_SET,
    DAEMON_SET,
    REPLICA_SET,
    REPLICATION_CONTROLLER,
    JOB,
    CRON_JOB,
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
        WorkloadKind::Deployment => &DEPLOYMENT,
        WorkloadKind::StatefulSet => &STATEFUL_SET,
        WorkloadKind::DaemonSet => &DAEMON_SET,
        WorkloadKind::ReplicaSet => &REPLICA_SET,
        WorkloadKind::ReplicationController => &REPLICATION_CONTROLLER,
        WorkloadKind::Job => &JOB,
        WorkloadKind::CronJob => &CRON_JOB,
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
        for c in &CONTROLLERS {
            let KnownKind::Controller(w) = c.id else {
                panic!("{} is not a controller", c.kind);
            };
            assert_eq!(format!("{w:?}"), c.kind);
            assert_eq!(of_workload(w), c);
            assert!(w.is_controller());
            assert!(!KINDS.contains(c), "the agent does not watch {}", c.kind);
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
