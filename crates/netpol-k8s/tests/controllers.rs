//! Workload controllers: each kind loads from its pod template (only the fields netpol reads are
//! checked), a real chart's output loads, and live Pods fold into their controller.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::*;
use netpol_core::{Instances, NamedPort, Protocol, Workload, WorkloadKind};
use netpol_k8s::schema::{self, KnownKind};
use netpol_k8s::{load_paths, DiagnosticKind, LoadOptions, Severity};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A controller of `kind` whose pod template is `pod_spec` (indented for `spec.template.spec`
/// or, for a CronJob, `spec.jobTemplate.spec.template.spec`), labelled `app: web`.
fn controller(api_version: &str, kind: &str, pod_spec: &str) -> String {
    let template = |indent: &str| {
        let spec: String = pod_spec
            .lines()
            .map(|l| format!("{indent}    {l}\n"))
            .collect();
        format!("{indent}template:\n{indent}  metadata:\n{indent}    labels: {{app: web}}\n{indent}  spec:\n{spec}")
    };
    let spec = if kind == "CronJob" {
        format!(
            "  schedule: \"* * * * *\"\n  jobTemplate:\n    spec:\n{}",
            template("      ")
        )
    } else {
        template("  ")
    };
    format!("apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: web\n  namespace: shop\nspec:\n{spec}")
}

const CONTAINER: &str =
    "containers:\n  - name: c\n    image: x\n    ports:\n      - {name: http, containerPort: 8080}";

#[test]
fn every_controller_kind_is_a_workload_with_its_templates_labels_and_named_ports() {
    for k in &schema::CONTROLLERS {
        let KnownKind::Controller(kind) = k.id else {
            unreachable!()
        };
        let l = load(&controller(k.api_version, k.kind, CONTAINER));
        assert!(!l.has_errors(), "{}: {:?}", k.kind, l.diagnostics);
        let [w] = l.cluster.workloads.as_slice() else {
            panic!("{}: one workload, got {:?}", k.kind, l.cluster.workloads);
        };
        assert_eq!((w.kind, w.key().as_str()), (kind, "shop/web"), "{}", k.kind);
        assert_eq!(w.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(
            w.named_ports,
            [NamedPort {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port: 8080
            }],
            "{}",
            k.kind
        );
        assert!(w.addresses.is_empty() && w.node.is_none(), "{}", k.kind);
    }
}

#[test]
fn a_controller_without_a_namespace_is_in_the_default_namespace() {
    let l = load("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  template:\n    metadata: {labels: {app: agent}}\n");
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(l.cluster.workloads[0].key(), "default/agent");
}

#[test]
fn a_kubevirt_vm_has_the_labels_of_its_instance_template_and_a_deckhouse_vm_from_git_loads() {
    let text = "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: vm1, namespace: a, labels: {owner: me}}\nspec:\n  runStrategy: Always\n  template:\n    metadata: {labels: {kubevirt.io/domain: vm1, app: db}}\n    spec: {domain: {devices: {disks: []}, resources: {requests: {memory: 1Gi}}}}\n---\napiVersion: virtualization.deckhouse.io/v1alpha2\nkind: VirtualMachine\nmetadata: {name: vm2, namespace: a, labels: {app: web}}\nspec: {runPolicy: AlwaysOn, cpu: {cores: 1}, memory: {size: 1Gi}, blockDeviceRefs: [{kind: VirtualDisk, name: root}]}\n";
    let l = load(text);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    let got: Vec<(WorkloadKind, String, Option<&str>)> = l
        .cluster
        .workloads
        .iter()
        .map(|w| (w.kind, w.key(), w.labels.get("app").map(String::as_str)))
        .collect();
    assert_eq!(
        got,
        [
            (WorkloadKind::VirtualMachine, "a/vm1".into(), Some("db")),
            (WorkloadKind::VirtualMachine, "a/vm2".into(), Some("web")),
        ]
    );
    assert!(l.cluster.workloads.iter().all(|w| w.addresses.is_empty()));
    assert!(!l.cluster.workloads[0].labels.contains_key("owner"));
}

#[test]
fn a_bad_field_netpol_reads_is_an_error_with_its_line_and_path() {
    let bad_port =
        "containers:\n  - name: c\n    ports:\n      - {name: http, containerPort: \"8080x\"}";
    for k in &schema::CONTROLLERS {
        let l = load(&controller(k.api_version, k.kind, bad_port));
        let errs = errors(&l);
        assert_eq!(errs.len(), 1, "{}: {:?}", k.kind, l.diagnostics);
        let prefix = if k.kind == "CronJob" {
            "spec.jobTemplate.spec.template"
        } else {
            "spec.template"
        };
        let line = if k.kind == "CronJob" { 17 } else { 14 };
        assert_eq!(
            (errs[0].line, errs[0].field_path.as_deref()),
            (
                line,
                Some(format!("{prefix}.spec.containers[0].ports[0].containerPort").as_str())
            ),
            "{}: {}",
            k.kind,
            errs[0]
        );
        assert!(l.cluster.workloads.is_empty(), "{}", k.kind);
    }
    // A port name the API server refuses, and a label value that is not a string.
    let l = load(&controller(
        "apps/v1",
        "Deployment",
        "containers:\n  - name: c\n    ports: [{name: Not_A_Name, containerPort: 80}]",
    ));
    let errs = errors(&l);
    assert_eq!(
        errs[0].field_path.as_deref(),
        Some("spec.template.spec.containers[0].ports[0].name"),
        "{errs:?}"
    );
    let l = load("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s, namespace: a}\nspec:\n  template:\n    metadata:\n      labels: {version: 2}\n");
    let errs = errors(&l);
    assert_eq!(errs.len(), 1, "{:?}", l.diagnostics);
    assert_eq!(errs[0].line, 7);
    assert_eq!(
        errs[0].field_path.as_deref(),
        Some("spec.template.metadata.labels[version]")
    );
}

#[test]
fn fields_netpol_does_not_read_are_not_checked_whatever_their_type() {
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: a}\nspec:\n  minReadySeconds: many\n  strategy: 5\n  madeUp: {x: 1}\n  template:\n    metadata: {labels: {app: d}, annotations: 7}\n    spec:\n      volumes: nope\n      containers:\n        - name: c\n          resources: \"lots\"\n          futureField: [1]\n          ports: [{containerPort: 80, name: http, appProtocol: 3}]\n";
    let l = load(text);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(l.cluster.workloads[0].named_ports[0].port, 80);
}

#[test]
fn each_controller_counts_its_instances_from_the_field_its_kind_has() {
    let spec = |kind: &str, api: &str, count: &str| {
        let template = "template:\n    metadata: {labels: {app: w}}";
        let body = match kind {
            "CronJob" => format!(
                "  schedule: \"* * * * *\"\n  jobTemplate:\n    spec:\n      {count}\n      {}",
                template.replace("\n    ", "\n          ")
            ),
            _ => format!("  {count}\n  {template}"),
        };
        format!(
            "apiVersion: {api}\nkind: {kind}\nmetadata: {{name: w, namespace: a}}\nspec:\n{body}\n"
        )
    };
    let cases = [
        ("Deployment", "apps/v1", "replicas: 3", Instances::Count(3)),
        (
            "Deployment",
            "apps/v1",
            "paused: false",
            Instances::Count(1),
        ),
        ("Deployment", "apps/v1", "replicas: 0", Instances::Count(0)),
        ("StatefulSet", "apps/v1", "replicas: 2", Instances::Count(2)),
        ("ReplicaSet", "apps/v1", "replicas: 5", Instances::Count(5)),
        (
            "ReplicationController",
            "v1",
            "replicas: 1",
            Instances::Count(1),
        ),
        ("Job", "batch/v1", "parallelism: 4", Instances::Count(4)),
        ("Job", "batch/v1", "completions: 9", Instances::Count(1)),
        ("CronJob", "batch/v1", "parallelism: 2", Instances::Count(2)),
        // A DaemonSet has no count: one Pod per node, taken as several. A `replicas` it does not
        // have is not read, whatever its type.
        ("DaemonSet", "apps/v1", "replicas: many", Instances::PerNode),
    ];
    for (kind, api, count, expected) in cases {
        let l = load(&spec(kind, api, count));
        assert!(!l.has_errors(), "{kind} {count}: {:?}", l.diagnostics);
        let w = &l.cluster.workloads[0];
        assert_eq!(w.instances, expected, "{kind} {count}");
        assert_eq!(w.has_replicas(), expected.several(), "{kind} {count}");
    }
}

#[test]
fn a_count_of_the_wrong_type_or_below_zero_is_an_error_with_its_line_and_path() {
    let cases = [
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: a}\nspec:\n  replicas: many\n", 5, "spec.replicas", "expected integer"),
        ("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: d, namespace: a}\nspec:\n  replicas: -1\n", 5, "spec.replicas", "Invalid value: -1: must be greater than or equal to 0"),
        ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: d, namespace: a}\nspec:\n  parallelism: [2]\n", 5, "spec.parallelism", "expected integer"),
        ("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: d, namespace: a}\nspec:\n  schedule: x\n  jobTemplate:\n    spec:\n      parallelism: -3\n", 8, "spec.jobTemplate.spec.parallelism", "must be greater than or equal to 0"),
    ];
    for (text, line, path, message) in cases {
        let l = load(text);
        let errs = errors(&l);
        assert_eq!(errs.len(), 1, "{text}: {:?}", l.diagnostics);
        assert_eq!(errs[0].line, line, "{text}: {:?}", errs[0]);
        assert_eq!(errs[0].field_path.as_deref(), Some(path), "{text}");
        assert!(
            errs[0].message.contains(message),
            "{text}: {}",
            errs[0].message
        );
        assert!(l.cluster.workloads.is_empty(), "{text}");
    }
}

#[test]
fn a_helm_render_loads_in_strict_mode_with_its_controllers_as_workloads() {
    let l = load_paths(&[fixture("helm-shop.yaml")], &LoadOptions::default());
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert!(
        with(&l, Severity::Warning).is_empty(),
        "{:?}",
        l.diagnostics
    );
    let got: Vec<(WorkloadKind, String, Vec<&str>)> = l
        .cluster
        .workloads
        .iter()
        .map(|w| {
            let ports = w.named_ports.iter().map(|p| p.name.as_str()).collect();
            (w.kind, w.key(), ports)
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                WorkloadKind::Deployment,
                "shop/api".into(),
                vec!["http", "metrics", "envoy-admin"]
            ),
            (
                WorkloadKind::StatefulSet,
                "shop/db".into(),
                vec!["postgres"]
            ),
            (WorkloadKind::CronJob, "shop/backup".into(), vec!["metrics"]),
        ]
    );
    assert_eq!(l.cluster.policies.len(), 3);
    let skipped: Vec<&str> = with(&l, Severity::Note)
        .iter()
        .filter(|d| d.message.contains("netpol does not use this kind"))
        .filter_map(|d| d.message.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        skipped,
        ["ServiceAccount", "ConfigMap", "Service", "Service"]
    );
}

// ---- folding live Pods into their controllers ------------------------------------------------

/// A live Pod named `name` owned by `owner` (`Kind/name`, or none), with `labels` (flow map body),
/// on `node` with address `ip`.
fn pod(name: &str, owner: Option<&str>, labels: &str, node: &str, ip: &str) -> String {
    let owner = owner.map_or(String::new(), |o| {
        let (kind, oname) = o.split_once('/').unwrap();
        let api = if kind == "Job" { "batch/v1" } else { "apps/v1" };
        format!("  ownerReferences:\n    - {{apiVersion: {api}, kind: {kind}, name: {oname}, uid: u-{oname}, controller: true, blockOwnerDeletion: true}}\n")
    });
    format!("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: shop\n  labels: {{{labels}}}\n{owner}spec:\n  nodeName: {node}\n  containers: [{{name: c, image: x, ports: [{{name: http, containerPort: 8080}}]}}]\nstatus: {{phase: Running, podIP: {ip}}}\n")
}

const DEPLOYMENT: &str = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\nspec:\n  template:\n    metadata: {labels: {app: api, from: template}}\n";

fn workloads(text: &str) -> (Vec<Workload>, netpol_k8s::Loaded) {
    let l = load(text);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    (l.cluster.workloads.clone(), l)
}

#[test]
fn pods_of_a_replicaset_fold_into_its_deployment_with_their_addresses_and_labels() {
    let rs = "---\napiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: api-5d8f\n  namespace: shop\n  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: api, uid: u, controller: true}]\nspec:\n  template:\n    metadata: {labels: {app: api, pod-template-hash: 5d8f}}\n";
    let labels = "app: api, pod-template-hash: 5d8f";
    let text = format!(
        "{DEPLOYMENT}{rs}{}{}",
        pod(
            "api-5d8f-a",
            Some("ReplicaSet/api-5d8f"),
            labels,
            "n1",
            "10.0.0.1"
        ),
        pod(
            "api-5d8f-b",
            Some("ReplicaSet/api-5d8f"),
            labels,
            "n1",
            "10.0.0.2"
        ),
    );
    let (ws, l) = workloads(&text);
    let [w] = ws.as_slice() else {
        panic!("one workload: {ws:?}");
    };
    assert_eq!(
        (w.kind, w.key().as_str()),
        (WorkloadKind::Deployment, "shop/api")
    );
    let addresses: Vec<String> = w.addresses.iter().map(ToString::to_string).collect();
    assert_eq!(addresses, ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(w.node.as_deref(), Some("n1"));
    // The Pods are what runs: their labels, not the template's.
    assert_eq!(
        w.labels.get("pod-template-hash").map(String::as_str),
        Some("5d8f")
    );
    assert!(!w.labels.contains_key("from"));
    assert_eq!(w.named_ports[0].name, "http");
    let folded: Vec<&str> = l
        .diagnostics
        .iter()
        .filter(|d| d.kind == DiagnosticKind::Folded)
        .filter_map(|d| d.object.as_deref())
        .collect();
    assert_eq!(
        folded,
        [
            "ReplicaSet shop/api-5d8f",
            "Pod shop/api-5d8f-a",
            "Pod shop/api-5d8f-b"
        ]
    );
}

#[test]
fn without_its_replicaset_a_pod_reaches_the_deployment_by_the_pod_template_hash() {
    let text = format!(
        "{DEPLOYMENT}{}",
        pod(
            "api-5d8f-a",
            Some("ReplicaSet/api-5d8f"),
            "app: api, pod-template-hash: 5d8f",
            "n1",
            "10.0.0.1"
        )
    );
    let (ws, _) = workloads(&text);
    assert_eq!(ws.len(), 1, "{ws:?}");
    assert_eq!(ws[0].kind, WorkloadKind::Deployment);
    assert_eq!(ws[0].addresses[0].to_string(), "10.0.0.1");
}

#[test]
fn job_pods_fold_into_their_cronjob_through_the_job_or_its_name() {
    let cronjob = "---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: backup, namespace: shop}\nspec:\n  schedule: \"@daily\"\n  jobTemplate:\n    spec:\n      template:\n        metadata: {labels: {app: backup}}\n";
    let job = "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: backup-29001\n  namespace: shop\n  ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: backup, uid: u, controller: true}]\nspec:\n  template:\n    metadata: {labels: {app: backup}}\n";
    let text = format!(
        "{cronjob}{job}{}{}",
        pod(
            "backup-29001-x",
            Some("Job/backup-29001"),
            "app: backup",
            "n1",
            "10.0.0.5"
        ),
        // A Job of the day before, no longer listed: its name says whose it is.
        pod(
            "backup-29000-y",
            Some("Job/backup-29000"),
            "app: backup",
            "n2",
            "10.0.0.6"
        ),
    );
    let (ws, l) = workloads(&text);
    let [w] = ws.as_slice() else {
        panic!("one workload: {ws:?}");
    };
    assert_eq!(
        (w.kind, w.key().as_str()),
        (WorkloadKind::CronJob, "shop/backup")
    );
    assert_eq!(w.addresses.len(), 2);
    assert_eq!(w.node, None, "its Pods run on two nodes");
    assert!(l
        .diagnostics
        .iter()
        .any(|d| d.message.contains("run on nodes n1, n2")
            && d.object.as_deref() == Some("CronJob shop/backup")));
}

#[test]
fn a_pod_not_scheduled_yet_leaves_its_controller_on_the_node_of_the_others() {
    let sts = "---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db, namespace: shop}\nspec:\n  template:\n    metadata: {labels: {app: db}}\n";
    let pending = "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: db-1\n  namespace: shop\n  labels: {app: db}\n  ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: db, uid: u, controller: true}]\nspec: {containers: [{name: c, image: x}]}\nstatus: {phase: Pending}\n";
    let text = format!(
        "{sts}{}{pending}",
        pod("db-0", Some("StatefulSet/db"), "app: db", "n1", "10.0.1.1")
    );
    let (ws, l) = workloads(&text);
    assert_eq!(ws.len(), 1, "{ws:?}");
    assert_eq!(ws[0].node.as_deref(), Some("n1"));
    assert_eq!(ws[0].phase, None, "Running and Pending");
    assert!(!l
        .diagnostics
        .iter()
        .any(|d| d.message.contains("run on nodes")));
}

#[test]
fn statefulset_pods_fold_keeping_only_the_labels_they_share() {
    let sts = "---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db, namespace: shop}\nspec:\n  template:\n    metadata: {labels: {app: db}}\n";
    let text = format!(
        "{sts}{}{}",
        pod(
            "db-0",
            Some("StatefulSet/db"),
            "app: db, statefulset.kubernetes.io/pod-name: db-0",
            "n1",
            "10.0.1.1"
        ),
        pod(
            "db-1",
            Some("StatefulSet/db"),
            "app: db, statefulset.kubernetes.io/pod-name: db-1",
            "n1",
            "10.0.1.2"
        ),
    );
    let (ws, _) = workloads(&text);
    assert_eq!(ws.len(), 1, "{ws:?}");
    let labels: Vec<(&str, &str)> = ws[0]
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(labels, [("app", "db")]);
}

#[test]
fn a_pod_without_a_loaded_controller_stays_a_pod() {
    let text = format!(
        "{DEPLOYMENT}{}{}{}",
        pod("orphan", None, "app: api", "n1", "10.0.0.1"),
        pod(
            "other-rs-a",
            Some("ReplicaSet/other-7f"),
            "app: api, pod-template-hash: 7f",
            "n1",
            "10.0.0.2"
        ),
        pod(
            "ds-pod",
            Some("DaemonSet/agent"),
            "app: agent",
            "n1",
            "10.0.0.3"
        ),
    );
    let (ws, _) = workloads(&text);
    let got: Vec<(WorkloadKind, String, usize)> = ws
        .iter()
        .map(|w| (w.kind, w.key(), w.addresses.len()))
        .collect();
    assert_eq!(
        got,
        [
            (WorkloadKind::Deployment, "shop/api".into(), 0),
            (WorkloadKind::Pod, "shop/orphan".into(), 1),
            (WorkloadKind::Pod, "shop/other-rs-a".into(), 1),
            (WorkloadKind::Pod, "shop/ds-pod".into(), 1),
        ]
    );
    assert_eq!(
        ws[0].labels.get("from").map(String::as_str),
        Some("template"),
        "without Pods, the template's labels"
    );
}

#[test]
fn a_kubevirt_vm_takes_its_instances_address_and_launcher_pod_as_before() {
    let text = "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: vm1, namespace: shop}\nspec:\n  template:\n    metadata: {labels: {app: db}}\n---\napiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: vm1, namespace: shop, labels: {app: db}}\nstatus: {nodeName: n3, interfaces: [{ipAddress: 10.0.2.1}]}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: virt-launcher-vm1-abcde\n  namespace: shop\n  labels: {kubevirt.io: virt-launcher, vm.kubevirt.io/name: vm1, app: db}\n  ownerReferences: [{apiVersion: kubevirt.io/v1, kind: VirtualMachineInstance, name: vm1, uid: u, controller: true}]\nspec: {nodeName: n3, containers: [{name: compute, image: x}]}\nstatus: {phase: Running, podIP: 10.0.2.1}\n";
    let (ws, _) = workloads(text);
    let [w] = ws.as_slice() else {
        panic!("one workload: {ws:?}");
    };
    assert_eq!(
        (w.kind, w.key().as_str()),
        (WorkloadKind::VirtualMachine, "shop/vm1")
    );
    assert_eq!(w.addresses[0].to_string(), "10.0.2.1");
    assert_eq!(w.node.as_deref(), Some("n3"));
}

#[test]
fn folded_pods_count_as_instances_when_more_of_them_run_than_the_spec_says() {
    let one = DEPLOYMENT.replace("spec:\n", "spec:\n  replicas: 1\n");
    let pods = |n: usize| -> String {
        (0..n)
            .map(|i| {
                pod(
                    &format!("api-5d8f-{i}"),
                    Some("ReplicaSet/api-5d8f"),
                    "app: api, pod-template-hash: 5d8f",
                    "n1",
                    &format!("10.0.0.{}", i + 1),
                )
            })
            .collect()
    };
    // Two Pods of a Deployment of one replica (a rollout): two instances.
    let (ws, _) = workloads(&format!("{one}{}", pods(2)));
    assert_eq!(ws[0].instances, Instances::Count(2));
    assert!(ws[0].has_replicas());
    // One Pod of a Deployment of one replica: one instance.
    let (ws, _) = workloads(&format!("{one}{}", pods(1)));
    assert_eq!(ws[0].instances, Instances::Count(1));
    assert!(!ws[0].has_replicas());
    // A dump missing Pods does not lower the spec's count.
    let three = DEPLOYMENT.replace("spec:\n", "spec:\n  replicas: 3\n");
    let (ws, _) = workloads(&format!("{three}{}", pods(1)));
    assert_eq!(ws[0].instances, Instances::Count(3));
}
