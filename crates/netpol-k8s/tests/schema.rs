//! The schema of what netpol reads: pruning an object to it keeps everything the loader uses (the
//! pruned object loads to the same workload, policy or namespace) and drops the rest.

use netpol_core::Cluster;
use netpol_k8s::schema::{self, KindSchema, KnownKind};
use netpol_k8s::{load_str, LoadOptions, Loaded};
use serde_json::{json, Value};

/// Objects as the API serves them: every field netpol reads, and plenty it does not.
fn full_objects() -> Vec<(KindSchema, Value)> {
    let noise = json!({
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}"},
        "managedFields": [{"manager": "kubelet", "operation": "Update", "fieldsType": "FieldsV1"}],
        "uid": "7c4e2a10-1b3d-4f5e-8a6b-9c0d1e2f3a01", "resourceVersion": "5101",
        "creationTimestamp": "2026-11-20T09:20:11Z", "generation": 3,
        "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "u"}]
    });
    let meta = |name: &str, ns: Option<&str>| {
        let mut m = noise.clone();
        m["name"] = json!(name);
        m["labels"] = json!({"app": name, "team": "x"});
        if let Some(ns) = ns {
            m["namespace"] = json!(ns);
        }
        m
    };
    vec![
        (
            schema::NAMESPACE,
            json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": meta("a", None),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        ),
        (
            schema::POD,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta("web", Some("a")),
            "spec": {"nodeName": "n1", "serviceAccountName": "default",
                "volumes": [{"name": "v", "emptyDir": {}}],
                "containers": [{"name": "c", "image": "nginx", "env": [{"name": "E", "value": "1"}],
                    "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": "1"}}}],
                "initContainers": [
                    {"name": "side", "image": "envoy", "restartPolicy": "Always",
                        "ports": [{"name": "admin", "containerPort": 9901}]},
                    {"name": "init", "image": "busybox", "command": ["true"]}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "hostIP": "192.168.0.1",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0,
                    "image": "nginx", "imageID": "x"}]}}),
        ),
        (
            schema::NETWORK_POLICY,
            json!({"apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy", "metadata": meta("allow", Some("a")),
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {}}, {"ipBlock": {"cidr": "10.1.0.0/16"}}],
                    "ports": [{"port": "http"}, {"port": 53, "protocol": "UDP"}]}]}}),
        ),
        (
            schema::VIRTUAL_MACHINE,
            json!({"apiVersion": "virtualization.deckhouse.io/v1alpha2",
            "kind": "VirtualMachine", "metadata": meta("vm-a", Some("a")),
            "spec": {"runPolicy": "AlwaysOn", "cpu": {"cores": 1}},
            "status": {"phase": "Running", "ipAddress": "10.66.20.70", "nodeName": "n2",
                "conditions": [{"type": "Running", "status": "True"}], "guestOSInfo": {"id": "ubuntu"}}}),
        ),
        (
            schema::VIRTUAL_MACHINE_INSTANCE,
            json!({"apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachineInstance", "metadata": meta("vm-b", Some("a")),
            "spec": {"domain": {"devices": {}}},
            "status": {"phase": "Running", "nodeName": "n3", "migrationState": {"completed": true},
                "interfaces": [{"name": "default", "mac": "02:00:00:00:00:01",
                    "ipAddress": "10.0.0.7", "ipAddresses": ["10.0.0.7", "fe80::1"]}]}}),
        ),
        (
            schema::DEPLOYMENT,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("api", Some("a")),
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                "template": {"metadata": {"labels": {"app": "api"}, "annotations": {"x": "y"}},
                    "spec": {"serviceAccountName": "api",
                        "securityContext": {"runAsNonRoot": true},
                        "volumes": [{"name": "cfg", "configMap": {"name": "api"}}],
                        "containers": [{"name": "api", "image": "api:1",
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                            "resources": {"requests": {"cpu": "100m"}}}]}}},
            "status": {"replicas": 2, "readyReplicas": 2}}),
        ),
        (
            schema::CRON_JOB,
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("backup", Some("a")),
            "spec": {"schedule": "0 3 * * *", "concurrencyPolicy": "Forbid",
                "jobTemplate": {"spec": {"backoffLimit": 2, "template": {
                    "metadata": {"labels": {"app": "backup"}},
                    "spec": {"restartPolicy": "OnFailure",
                        "containers": [{"name": "b", "image": "b:1", "args": ["--all"],
                            "ports": [{"name": "metrics", "containerPort": 9100}]}]}}}}},
            "status": {"lastScheduleTime": "2026-11-20T03:00:00Z"}}),
        ),
        (
            schema::NODE,
            json!({"apiVersion": "v1", "kind": "Node", "metadata": meta("n1", None),
            "spec": {"podCIDR": "10.0.0.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "4"}, "nodeInfo": {"kubeletVersion": "v1.31.0"},
                "addresses": [{"type": "InternalIP", "address": "10.0.0.11"},
                    {"type": "InternalIP", "address": "fd00::11"},
                    {"type": "Hostname", "address": "n1"}]}}),
        ),
        (
            schema::CLUSTER_NETWORK_POLICY,
            json!({"apiVersion": "policy.networking.k8s.io/v1alpha2",
            "kind": "ClusterNetworkPolicy", "metadata": meta("dns", None),
            "spec": {"tier": "Admin", "priority": 10, "subject": {"namespaces": {}},
                "egress": [{"name": "dns", "action": "Accept",
                    "to": [{"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}}],
                    "protocols": [{"udp": {"destinationPort": {"number": 53}}}]}]},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Applied",
                "message": "", "lastTransitionTime": "2026-11-20T09:20:11Z"}]}}),
        ),
        (
            schema::ADMIN_NETWORK_POLICY,
            json!({"apiVersion": "policy.networking.k8s.io/v1alpha1",
            "kind": "AdminNetworkPolicy", "metadata": meta("deny", None),
            "spec": {"priority": 3, "subject": {"pods": {"namespaceSelector": {}, "podSelector": {}}},
                "ingress": [{"action": "Deny", "from": [{"namespaces": {}}],
                    "ports": [{"portRange": {"start": 1, "end": 1024}}]}]},
            "status": {"conditions": []}}),
        ),
        (
            schema::BASELINE_ADMIN_NETWORK_POLICY,
            json!({"apiVersion": "policy.networking.k8s.io/v1alpha1",
            "kind": "BaselineAdminNetworkPolicy", "metadata": meta("default", None),
            "spec": {"subject": {"namespaces": {}},
                "egress": [{"action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}]}]}}),
        ),
    ]
}

fn load(v: &Value) -> Loaded {
    load_str("o.json", &v.to_string(), &LoadOptions::default())
}

fn without_origins(mut c: Cluster) -> Cluster {
    c.workloads.iter_mut().for_each(|w| w.origin = None);
    c.policies.iter_mut().for_each(|p| p.origin = None);
    c.nodes.iter_mut().for_each(|n| n.origin = None);
    for p in &mut c.admin_policies {
        p.origin = None;
        for r in p.ingress.iter_mut().chain(p.egress.iter_mut()) {
            r.origin = None;
        }
    }
    c
}

/// Every leaf path of `v` (array elements as `[]`).
fn leaves(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(child, &p, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for i in items {
                leaves(i, &format!("{prefix}[]"), out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn a_pruned_object_loads_to_what_the_full_object_loads_to() {
    for (kind, full) in full_objects() {
        let whole = load(&full);
        assert!(
            !whole.has_errors(),
            "{}: {:?}",
            kind.kind,
            whole.diagnostics
        );
        let pruned = kind.prune(&full);
        let small = load(&pruned);
        assert!(
            !small.has_errors(),
            "{}: {:?}",
            kind.kind,
            small.diagnostics
        );
        let c = without_origins(whole.cluster);
        assert_eq!(c, without_origins(small.cluster), "{}", kind.kind);
        let objects = c.workloads.len()
            + c.policies.len()
            + c.namespaces.len()
            + c.nodes.len()
            + c.admin_policies.len();
        assert!(objects >= 1, "{}: something loaded", kind.kind);
        // The same from decoded metadata, as the agent's watches hold it.
        let meta = serde_json::from_value(full["metadata"].clone()).unwrap();
        let mut data = full.clone();
        data.as_object_mut().unwrap().remove("metadata");
        assert_eq!(kind.prune_parts(&meta, &data), pruned, "{}", kind.kind);
    }
}

#[test]
fn pruning_keeps_only_the_paths_the_schema_lists() {
    for (kind, full) in full_objects() {
        let pruned = kind.prune(&full);
        let mut kept = Vec::new();
        leaves(&pruned, "", &mut kept);
        for leaf in &kept {
            let listed = leaf == "apiVersion"
                || leaf == "kind"
                || kind.read_fields().any(|f| {
                    leaf == f
                        || leaf.starts_with(&format!("{f}."))
                        || leaf.starts_with(&format!("{f}[]"))
                });
            assert!(listed, "{}: {leaf} is not a field netpol reads", kind.kind);
        }
        for dropped in ["managedFields", "annotations", "uid", "ownerReferences"] {
            assert!(
                pruned["metadata"].get(dropped).is_none(),
                "{}: {dropped}",
                kind.kind
            );
        }
    }
    let pod = &full_objects()[1].1;
    assert_eq!(
        schema::POD.prune(pod),
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "a", "labels": {"app": "web", "team": "x"}},
            "spec": {"nodeName": "n1",
                "containers": [{"name": "c",
                    "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}]}],
                "initContainers": [
                    {"name": "side", "restartPolicy": "Always",
                        "ports": [{"name": "admin", "containerPort": 9901}]},
                    {"name": "init"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}})
    );
}

#[test]
fn the_loader_reads_exactly_the_kinds_of_the_schema() {
    for kind in &schema::READ_KINDS {
        let text = format!(
            "apiVersion: {}\nkind: {}\nmetadata: {{name: x, namespace: a}}\n",
            kind.api_version, kind.kind
        );
        let l = load_str("k.yaml", &text, &LoadOptions::default());
        let skipped = l.diagnostics.iter().any(|d| d.message.contains("skipped"));
        assert!(!skipped, "{}: {:?}", kind.kind, l.diagnostics);
        let expected = usize::from(matches!(
            kind.id,
            KnownKind::Pod
                | KnownKind::VirtualMachine
                | KnownKind::VirtualMachineInstance
                | KnownKind::KubevirtVirtualMachine
                | KnownKind::Controller(_)
        ));
        assert_eq!(l.cluster.workloads.len(), expected, "{}", kind.kind);
    }
    let l = load_str(
        "k.yaml",
        "apiVersion: apps/v1\nkind: ControllerRevision\nmetadata: {name: x}\n",
        &LoadOptions::default(),
    );
    assert!(l.diagnostics[0]
        .message
        .contains("netpol does not use this kind"));
}

#[test]
fn what_makes_the_loader_skip_a_pod_survives_pruning() {
    let mut pod = full_objects()[1].1.clone();
    pod["spec"]["hostNetwork"] = json!(true);
    assert!(load(&pod).cluster.workloads.is_empty());
    assert!(load(&schema::POD.prune(&pod)).cluster.workloads.is_empty());
    let mut pod = full_objects()[1].1.clone();
    pod["status"]["phase"] = json!("Succeeded");
    assert!(load(&pod).cluster.workloads.is_empty());
    assert!(load(&schema::POD.prune(&pod)).cluster.workloads.is_empty());
}
