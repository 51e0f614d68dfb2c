//! Tests of the store: assembly, readiness, batches, troubles.

use super::*;
use netpol_core::LabelSelector;
use netpol_core::{Labels, Namespace, Workload};
use netpol_test_support::{policy, workload, WorkloadExt};

#[test]
fn a_migrating_vm_is_one_workload_on_its_status_node() {
    let mut src = BTreeMap::new();
    let mut entries = BTreeMap::new();
    let one = |w: Workload| Cluster {
        workloads: vec![w],
        ..Cluster::default()
    };
    entries.insert(
        "vm".into(),
        one(workload(WorkloadKind::VirtualMachine, "a", "vm1", &[], &["10.0.0.5"]).on("n2")),
    );
    entries.insert(
        "p1".into(),
        one(workload(WorkloadKind::Pod, "a", "launcher-old", &[], &["10.0.0.5"]).on("n1")),
    );
    entries.insert(
        "p2".into(),
        one(workload(WorkloadKind::Pod, "a", "launcher-new", &[], &["10.0.0.5"]).on("n2")),
    );
    entries.insert(
        "p3".into(),
        one(workload(WorkloadKind::Pod, "a", "other", &[], &["10.0.0.6"]).on("n1")),
    );
    src.insert("s".into(), entries);
    let c = assemble(&src);
    let keys: Vec<_> = c.workloads.iter().map(|w| (w.kind, w.key())).collect();
    assert_eq!(
        keys,
        vec![
            (WorkloadKind::Pod, "a/other".to_string()),
            (WorkloadKind::VirtualMachine, "a/vm1".to_string())
        ]
    );
    assert_eq!(c.workloads[1].node.as_deref(), Some("n2"));
    assert!(c.namespace("a").is_some_and(|n| n.implicit));
}

#[test]
fn a_vm_its_instance_and_its_launcher_from_three_sources_are_one_workload() {
    let vm = workload(WorkloadKind::VirtualMachine, "a", "vm1", &[], &["10.0.0.5"]);
    let vmi = workload(
        WorkloadKind::VirtualMachineInstance,
        "a",
        "vm1",
        &[],
        &["10.0.0.5"],
    )
    .on("n2");
    let mut pod = workload(
        WorkloadKind::Pod,
        "a",
        "virt-launcher-vm1",
        &[],
        &["10.0.0.5"],
    )
    .on("n1");
    let label = netpol_k8s::fold::DECKHOUSE_VM_LABEL;
    pod.labels.insert(label.into(), "vm1".into());
    let src: Sources = [("kube:vms", vm), ("kube:vmis", vmi), ("kube:pods", pod)]
        .into_iter()
        .map(|(source, w)| {
            let objects = Cluster {
                workloads: vec![w],
                ..Cluster::default()
            };
            (source.into(), BTreeMap::from([("a/vm1".into(), objects)]))
        })
        .collect();
    let c = assemble(&src);
    let keys: Vec<_> = c.workloads.iter().map(|w| (w.kind, w.key())).collect();
    assert_eq!(keys, [(WorkloadKind::VirtualMachine, "a/vm1".to_string())]);
    // The VM reports no node: it takes its instance's, not its launcher's.
    assert_eq!(c.workloads[0].node.as_deref(), Some("n2"));
}

#[test]
fn a_defined_namespace_replaces_the_implicit_one_of_another_file() {
    let mut src = BTreeMap::new();
    let mut entries = BTreeMap::new();
    let mut l = Labels::new();
    l.insert("team".into(), "x".into());
    entries.insert(
        "a.yaml".into(),
        Cluster {
            namespaces: vec![Namespace::new("a", Labels::new(), true)],
            workloads: vec![workload(WorkloadKind::Pod, "a", "p", &[], &["10.0.0.1"]).on("n")],
            policies: vec![],
            ..Cluster::default()
        },
    );
    entries.insert(
        "b.yaml".into(),
        Cluster {
            namespaces: vec![Namespace::new("a", l, false)],
            ..Cluster::default()
        },
    );
    src.insert("s".into(), entries);
    let c = assemble(&src);
    assert_eq!(c.namespaces.len(), 1);
    assert!(!c.namespaces[0].implicit);
    assert_eq!(
        c.namespaces[0].labels.get("team").map(String::as_str),
        Some("x")
    );
}

#[test]
fn sources_are_ready_only_when_every_registered_one_finished_listing() {
    let s = Store::new();
    s.register_source("a");
    s.register_source("b");
    s.mark_ready("a");
    assert!(!s.all_ready());
    assert_eq!(s.not_ready(), vec!["b".to_string()]);
    s.mark_ready("b");
    assert!(s.all_ready());
}

#[test]
fn a_batch_is_one_change_and_an_unchanged_batch_is_none() {
    let s = Store::new();
    let mut rx = s.subscribe();
    let policy_file = |name: &str| Cluster {
        workloads: vec![workload(WorkloadKind::Pod, "a", name, &[], &["10.0.0.1"]).on("n")],
        ..Cluster::default()
    };
    s.upsert("d", "old.yaml", policy_file("p"));
    rx.borrow_and_update();
    // Moving the object from one key to another: one notification, never a view without it.
    s.apply_batch(
        "d",
        vec![("new.yaml".into(), policy_file("p"))],
        vec!["old.yaml".into()],
    );
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 2);
    assert_eq!(s.keys("d"), vec!["new.yaml".to_string()]);
    s.apply_batch("d", vec![("new.yaml".into(), policy_file("p"))], vec![]);
    assert!(!rx.has_changed().unwrap());
}

#[test]
fn an_incremental_snapshot_equals_assembling_every_source_again() {
    let s = Store::new();
    let check = |s: &Store| {
        let (snapshot, _) = s.snapshot();
        let full = assemble(&s.lock().sources);
        assert_eq!(*snapshot, full);
    };
    let mut labels = Labels::new();
    labels.insert("team".into(), "x".into());
    let policy = |ns: &str, name: &str| policy(ns, name, LabelSelector::everything(), true, false);
    let pods = Cluster {
        workloads: vec![
            workload(WorkloadKind::Pod, "a", "p1", &[], &["10.0.0.1"]).on("n"),
            workload(WorkloadKind::Pod, "a", "launcher", &[], &["10.0.0.9"]).on("n"),
        ],
        ..Cluster::default()
    };
    s.upsert("d", "pods.yaml", pods.clone());
    check(&s);
    // A policy in a namespace nothing else mentions: its implicit namespace appears.
    s.upsert(
        "d",
        "pol.yaml",
        Cluster {
            policies: vec![policy("b", "deny")],
            ..Cluster::default()
        },
    );
    check(&s);
    // The namespace gets defined elsewhere, with labels: it replaces the implicit one.
    s.upsert(
        "k",
        "ns/b",
        Cluster {
            namespaces: vec![Namespace::new("b", labels.clone(), false)],
            ..Cluster::default()
        },
    );
    check(&s);
    // A VM takes the launcher's address: the pod folds into it.
    s.upsert(
        "k",
        "vm/a/vm1",
        Cluster {
            workloads: vec![
                workload(WorkloadKind::VirtualMachine, "a", "vm1", &[], &["10.0.0.9"]).on("n"),
            ],
            ..Cluster::default()
        },
    );
    check(&s);
    // Only the policy changes.
    s.upsert(
        "d",
        "pol.yaml",
        Cluster {
            policies: vec![policy("b", "deny"), policy("a", "allow")],
            ..Cluster::default()
        },
    );
    check(&s);
    s.apply_batch("d", vec![], vec!["pol.yaml".into()]);
    check(&s);
    s.remove("k", "vm/a/vm1");
    check(&s);
    s.replace_source("k", BTreeMap::new());
    check(&s);
    // Nothing changed: the cached cluster comes back as it was.
    check(&s);
}

#[test]
fn a_time_is_written_in_utc() {
    let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_168_462);
    assert_eq!(utc(t), "2026-12-01T23:41:02Z");
    assert_eq!(utc(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
}

#[test]
fn a_source_in_trouble_keeps_the_time_its_trouble_started() {
    let s = Store::new();
    s.register_source("kube:pods");
    s.set_trouble("kube:pods", "list timed out".into());
    let first = s.lock().trouble["kube:pods"].since;
    s.set_trouble("kube:pods", "watch failed".into());
    assert_eq!(s.lock().trouble["kube:pods"].since, first);
    assert!(s.troubles()[0].starts_with("kube:pods: watch failed (since "));
    assert!(s.not_ready()[0].starts_with("kube:pods (watch failed (since "));
    assert!(s.clear_trouble("kube:pods").is_some());
    assert!(s.troubles().is_empty());
}

#[test]
fn a_waiting_source_says_why() {
    let s = Store::new();
    s.register_source("dir0");
    s.set_waiting_reason("dir0", Some("no manifest files yet".into()));
    assert_eq!(
        s.not_ready(),
        vec!["dir0 (no manifest files yet)".to_string()]
    );
    s.mark_ready("dir0");
    assert!(s.not_ready().is_empty());
}
