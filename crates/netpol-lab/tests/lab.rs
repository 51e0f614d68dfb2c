//! A lab built from a hand-built cluster, on the real kernel: what the report says as data, and
//! that nothing of the lab is left once it is gone, also when a run stops early on an error.
//!
//! PRIVILEGED: needs root, `ip` and `nft`. Without root every test fails (it never skips).

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;
use std::sync::Mutex;

use netpol_core::{
    Cluster, EvalOptions, LabelSelector, Namespace, Policy, Protocol, Workload, WorkloadKind,
};
use netpol_lab::{ClusterLab, LabError, LabPlan, Mismatch, DEFAULT_NODE};

/// One lab at a time: parallel labs on a busy machine could push an allowed probe past its
/// timeout, and the cleanup checks look at every namespace of this process.
static LAB: Mutex<()> = Mutex::new(());

fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "netpol-lab tests need root (network namespaces and nftables): run `sudo -E cargo test -p netpol-lab`; they fail rather than skip"
    );
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pod(namespace: &str, name: &str, address: &str, node: Option<&str>) -> Workload {
    Workload {
        kind: WorkloadKind::Pod,
        namespace: namespace.into(),
        name: name.into(),
        labels: labels(&[("app", name)]),
        addresses: vec![address.parse::<IpAddr>().expect("test address")],
        node: node.map(str::to_string),
        phase: Some("Running".into()),
        named_ports: Vec::new(),
        origin: None,
        instances: Default::default(),
    }
}

/// `back/db` accepts nothing: selected for Ingress, no ingress rule.
fn deny_ingress_to_db() -> Policy {
    Policy {
        namespace: "back".into(),
        name: "db-deny-ingress".into(),
        pod_selector: LabelSelector {
            match_labels: labels(&[("app", "db")]),
            match_expressions: Vec::new(),
        },
        affects_ingress: true,
        affects_egress: false,
        ingress: Vec::new(),
        egress: Vec::new(),
        origin: None,
        rule_lines: Default::default(),
    }
}

/// Two namespaces, three pods on two nodes plus one without a node, one without an address.
fn cluster() -> Cluster {
    let mut unscheduled = pod("front", "pending", "10.77.1.9", Some("n1"));
    unscheduled.addresses.clear();
    Cluster {
        namespaces: vec![
            Namespace::new("front", labels(&[]), false),
            Namespace::new("back", labels(&[]), false),
        ],
        workloads: vec![
            pod("front", "web", "10.77.1.1", Some("n1")),
            pod("back", "db", "10.77.2.1", Some("n2")),
            pod("back", "cache", "10.77.2.2", None),
            unscheduled,
        ],
        policies: vec![deny_ingress_to_db()],
        ..Cluster::default()
    }
}

fn tcp_80() -> LabPlan {
    LabPlan {
        listen: vec![(Protocol::Tcp, 80)],
        externals: Vec::new(),
    }
}

/// The namespaces in /run/netns whose name starts with `prefix`.
fn namespaces_with(prefix: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(prefix))
        .collect()
}

/// Every lab namespace of this test process, whatever lab made it.
fn own_namespaces() -> Vec<String> {
    namespaces_with(&format!("nplab-{}-", std::process::id()))
}

/// Whether `table inet netpol` exists in a namespace (`None`: the host's own).
fn has_netpol_table(netns: Option<&str>) -> bool {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "nft"]);
            c
        }
        None => Command::new("nft"),
    };
    cmd.args(["list", "table", "inet", "netpol"])
        .output()
        .expect("nft runs")
        .status
        .success()
}

#[test]
fn a_denied_ingress_shows_in_the_observed_and_predicted_matrix_and_nothing_is_left() {
    require_root();
    let _lab = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let host_table_before = has_netpol_table(None);
    let cluster = cluster();
    let mut lab = ClusterLab::build(&cluster, EvalOptions::default(), &tcp_80()).unwrap();
    let prefix = lab.lab().prefix().to_string();
    assert_eq!(lab.skipped(), ["front/pending"]);
    assert_eq!(lab.nodes(), ["default-node", "n1", "n2"]);
    assert_eq!(
        lab.cluster().workloads[2].node.as_deref(),
        Some(DEFAULT_NODE)
    );
    lab.enforce(&cluster.policies, &cluster.admin_policies)
        .unwrap();
    let nodes: Vec<String> = lab
        .inventory()
        .nodes
        .iter()
        .map(|n| n.netns.clone().expect("every node has a namespace"))
        .collect();
    assert!(nodes.iter().all(|ns| has_netpol_table(Some(ns))));

    let report = lab.probe_matrix(Protocol::Tcp, 80).unwrap();
    assert_eq!(report.workloads, ["back/cache", "back/db", "front/web"]);
    // Written from the spec: nothing reaches db except db itself (its own traffic never leaves
    // its namespace); db and everyone else send freely.
    let expected = |from: &str, to: &str| to != "back/db" || from == "back/db";
    for from in &report.workloads {
        for to in &report.workloads {
            assert_eq!(
                report.observed(from, to),
                expected(from, to),
                "{from} -> {to}"
            );
            assert_eq!(
                report.predicted(from, to),
                expected(from, to),
                "{from} -> {to}"
            );
        }
    }
    assert_eq!(report.mismatches, Vec::<Mismatch>::new());
    // 9 pairs; each of the 3 nodes (one pod each) to its pod and back and to the 2 others;
    // every pod through its own Service.
    assert_eq!(report.probe_count(), 9 + 3 * (2 + 2) + 3);
    assert!(
        report.by_family.is_none(),
        "a single-stack lab has no per-family matrices"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["observed"]["front/web"]["back/db"], false);
    assert_eq!(json["predicted"]["back/db"]["front/web"], true);
    assert_eq!(json["protocol"], "TCP");

    drop(lab);
    assert_eq!(namespaces_with(&prefix), Vec::<String>::new());
    assert!(nodes.iter().all(|ns| !has_netpol_table(Some(ns))));
    assert_eq!(has_netpol_table(None), host_table_before);
}

#[test]
fn a_lab_enforcing_nothing_predicts_that_everything_is_open() {
    require_root();
    let _lab = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let lab = ClusterLab::build(&cluster(), EvalOptions::default(), &tcp_80()).unwrap();
    let report = lab.probe_matrix(Protocol::Tcp, 80).unwrap();
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    assert!(report.observed("front/web", "back/db"));
    assert!(report.predicted("front/web", "back/db"));
}

/// Builds a lab from `cluster`, enforces its policies and probes TCP 80, returning the lab's
/// prefix (once it exists) and the outcome; the lab is gone when this returns.
fn run_to_the_end(cluster: &Cluster) -> (Option<String>, Result<(), LabError>) {
    let mut lab = match ClusterLab::build(cluster, EvalOptions::default(), &tcp_80()) {
        Ok(lab) => lab,
        Err(e) => return (None, Err(e)),
    };
    let prefix = Some(lab.lab().prefix().to_string());
    let outcome = lab
        .enforce(&cluster.policies, &cluster.admin_policies)
        .and_then(|()| lab.probe_matrix(Protocol::Tcp, 80).map(|_| ()));
    (prefix, outcome)
}

#[test]
fn a_ruleset_that_cannot_compile_stops_the_run_and_leaves_nothing() {
    require_root();
    let _lab = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut cluster = cluster();
    // The dataplane accepts any node name; the compiler refuses an empty one.
    cluster.workloads[0].node = Some(String::new());
    let (prefix, outcome) = run_to_the_end(&cluster);
    let prefix = prefix.expect("the lab was built before the error");
    match outcome {
        Err(LabError::Compile { node, .. }) => assert_eq!(node, ""),
        other => panic!("expected a compile error, got {other:?}"),
    }
    assert_eq!(namespaces_with(&prefix), Vec::<String>::new());
}

#[test]
fn two_workloads_without_a_common_address_family_stop_the_probe_and_leave_nothing() {
    require_root();
    let _lab = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut cluster = cluster();
    cluster.workloads[1].addresses = vec!["fd00:77::1".parse().unwrap()];
    let (prefix, outcome) = run_to_the_end(&cluster);
    let prefix = prefix.expect("the lab was built before the error");
    let error = outcome.expect_err("the probe must refuse");
    assert_eq!(
        error.to_string(),
        "back/cache and back/db share no address family: they cannot talk"
    );
    assert_eq!(namespaces_with(&prefix), Vec::<String>::new());
}

#[test]
fn a_lab_that_cannot_be_built_leaves_nothing() {
    require_root();
    let _lab = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = own_namespaces();
    let mut cluster = cluster();
    // Inside the lab's own underlay: the dataplane refuses it.
    cluster.workloads[2].addresses = vec!["169.254.3.3".parse().unwrap()];
    let (prefix, outcome) = run_to_the_end(&cluster);
    assert_eq!(prefix, None);
    let error = outcome.expect_err("the build must fail");
    assert!(matches!(error, LabError::Build(_)), "{error:?}");
    assert_eq!(error.to_string(), "building the lab");
    assert_eq!(own_namespaces(), before);
}
