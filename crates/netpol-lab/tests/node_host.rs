//! The node host, dual-stack pairs and hairpin in a lab, on the real kernel, with
//! `examples/node-host`: two Node objects with addresses of both families, two dual-stack VMs on
//! different nodes, an egress-isolated VM that may reach only its node's kubelet port, and an
//! ingress-isolated VM. Each probe run is compared with the analyzer, and two tests break the
//! kernel's table on purpose to show that the report catches it.
//!
//! PRIVILEGED: needs root, `ip` and `nft`. Without root every test fails (it never skips).

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

use netpol_core::{Cluster, EvalOptions, IpFamily, Protocol};
use netpol_k8s::LoadOptions;
use netpol_lab::placement::SYNTHETIC_NODE_V4;
use netpol_lab::{ClusterLab, LabPlan, Mismatch, NodeFlow, ProbeReport};
use netpol_test_support::require_root;

/// One lab at a time: parallel labs on a busy machine could push an allowed probe past its
/// timeout.
static LAB: Mutex<()> = Mutex::new(());

fn example() -> Cluster {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/node-host");
    let loaded = netpol_k8s::load_paths(&[dir], &LoadOptions::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.cluster
}

fn plan() -> LabPlan {
    LabPlan {
        listen: vec![(Protocol::Tcp, 80), (Protocol::Tcp, 10250)],
        externals: Vec::new(),
    }
}

fn enforced_lab(cluster: &Cluster) -> ClusterLab {
    let mut lab = ClusterLab::build(cluster, EvalOptions::default(), &plan()).unwrap();
    lab.enforce(&cluster.policies, &cluster.admin_policies)
        .unwrap();
    lab
}

/// What the node probe `from -> to` over `family` observed.
fn node_observed(report: &ProbeReport, from: &str, to: &str, family: IpFamily) -> bool {
    let probe = report
        .node
        .iter()
        .find(|p| p.from == from && p.to == to && p.family == family)
        .unwrap_or_else(|| panic!("no node probe {from} -> {to} over {family}"));
    assert_eq!(probe.observed, probe.predicted, "{probe:?}");
    probe.observed
}

fn mismatch(from: &str, to: &str, family: IpFamily, via: Option<IpAddr>) -> Mismatch {
    Mismatch {
        from: from.into(),
        to: to.into(),
        family: Some(family),
        via,
        observed: false,
        predicted: true,
    }
}

#[test]
fn a_probe_of_nodes_a_dual_stack_vm_and_isolated_vms_agrees_with_the_analyzer() {
    require_root();
    let _lab = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let cluster = example();
    let lab = enforced_lab(&cluster);
    // The Node objects' addresses are the node hosts' own.
    let inventory = lab.inventory();
    let node1 = &inventory.nodes[0];
    assert_eq!(node1.name, "node-1");
    assert!(!node1.synthetic);
    assert_eq!(
        node1.addresses,
        [
            "10.67.0.11".parse::<IpAddr>().unwrap(),
            "fd00:67:1::11".parse().unwrap()
        ]
    );

    let report = lab.probe_matrix(Protocol::Tcp, 80).unwrap();
    assert_eq!(report.mismatches, Vec::<Mismatch>::new());
    // The egress-isolated VM does not reach its node on a port its egress does not allow.
    assert!(!node_observed(
        &report,
        "lab/vm-egress",
        "node/node-1",
        IpFamily::V4
    ));
    // The ingress-isolated VM accepts its own node, not the other one; other VMs neither.
    assert!(node_observed(
        &report,
        "node/node-1",
        "lab/vm-ingress",
        IpFamily::V4
    ));
    assert!(!node_observed(
        &report,
        "node/node-2",
        "lab/vm-ingress",
        IpFamily::V4
    ));
    assert!(!report.observed("lab/vm-a", "lab/vm-ingress"));
    // A VM with no egress policy reaches its node over each family.
    assert!(node_observed(
        &report,
        "lab/vm-a",
        "node/node-1",
        IpFamily::V6
    ));
    let flows: Vec<NodeFlow> = report.node.iter().map(|p| p.flow).collect();
    assert!(flows.contains(&NodeFlow::NodeToRemoteWorkload));
    // vm-a accepts port 80 only from the IPv6 VM range: vm-b reaches it over IPv6 alone.
    let families = report.by_family.as_ref().expect("dual-stack pairs");
    assert!(report.is_dual("lab/vm-b", "lab/vm-a"));
    assert!(!report.is_dual("lab/vm-b", "lab/vm-egress"));
    assert!(!families.ipv4.observed.get("lab/vm-b", "lab/vm-a"));
    assert!(families.ipv6.observed.get("lab/vm-b", "lab/vm-a"));
    assert!(families.ipv6.predicted.get("lab/vm-b", "lab/vm-a"));
    // Every VM reaches itself through its own Service, each family it has: six in all.
    assert_eq!(report.hairpin.len(), 6);
    assert!(report.hairpin.iter().all(|p| p.observed && p.predicted));
    // 16 pairs, 2 more over the second family (vm-a <-> vm-b), 18 node probes, 6 hairpin.
    assert_eq!(report.probe_count(), 16 + 2 + 18 + 6);

    // The kubelet port is the one its egress allows.
    let kubelet = lab.probe_matrix(Protocol::Tcp, 10250).unwrap();
    assert_eq!(kubelet.mismatches, Vec::<Mismatch>::new());
    assert!(node_observed(
        &kubelet,
        "lab/vm-egress",
        "node/node-1",
        IpFamily::V4
    ));
}

#[test]
fn a_table_without_its_input_hook_shows_the_egress_isolated_vm_reaching_its_node() {
    require_root();
    let _lab = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let cluster = example();
    let lab = enforced_lab(&cluster);
    // The table as it was before the input hook: only forwarded packets are checked.
    lab.lab()
        .apply_ruleset("node-1", "delete chain inet netpol input\n")
        .unwrap();
    let report = lab.probe_matrix(Protocol::Tcp, 80).unwrap();
    assert_eq!(
        report.mismatches,
        [Mismatch {
            observed: true,
            predicted: false,
            ..mismatch("lab/vm-egress", "node/node-1", IpFamily::V4, None)
        }]
    );
}

#[test]
fn a_table_that_drops_hairpin_shows_every_isolated_vm_failing_to_reach_itself() {
    require_root();
    let _lab = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let cluster = example();
    let lab = enforced_lab(&cluster);
    // Without the self-traffic maps, a DNATed packet back to its sender meets the ordinary
    // chains: each isolated VM denies itself (vm-a only over IPv4: its ingress admits the IPv6
    // VM range, its own IPv6 address included).
    lab.lab()
        .apply_ruleset("node-1", "flush map inet netpol self4\n")
        .unwrap();
    let report = lab.probe_matrix(Protocol::Tcp, 80).unwrap();
    let service = |workload: &str| -> Option<IpAddr> {
        lab.services()
            .iter()
            .find(|(w, a)| w == workload && a.is_ipv4())
            .map(|(_, a)| *a)
    };
    let want: Vec<Mismatch> = ["lab/vm-a", "lab/vm-egress", "lab/vm-ingress"]
        .iter()
        .map(|w| mismatch(w, w, IpFamily::V4, service(w)))
        .collect();
    assert_eq!(report.mismatches, want);
}

#[test]
fn a_node_without_a_node_object_gets_a_synthetic_address_the_analyzer_knows() {
    require_root();
    let _lab = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut cluster = example();
    cluster.nodes.clear();
    let lab = enforced_lab(&cluster);
    let inventory = lab.inventory();
    let node1 = &inventory.nodes[0];
    assert!(node1.synthetic);
    let v4 = node1
        .addresses
        .iter()
        .find(|a| a.is_ipv4())
        .copied()
        .unwrap();
    let IpAddr::V4(raw) = v4 else { unreachable!() };
    assert_eq!(raw.octets()[..2], SYNTHETIC_NODE_V4.octets()[..2]);
    let placed = lab.cluster();
    assert_eq!(
        placed
            .node_of_address(v4)
            .map(|n| placed.nodes[n].name.as_str()),
        Some("node-1")
    );
    let report = lab.probe_matrix(Protocol::Tcp, 80).unwrap();
    assert_eq!(report.mismatches, Vec::<Mismatch>::new());
    assert!(!node_observed(
        &report,
        "lab/vm-egress",
        "node/node-1",
        IpFamily::V4
    ));
    assert!(node_observed(
        &report,
        "node/node-1",
        "lab/vm-ingress",
        IpFamily::V4
    ));
}
