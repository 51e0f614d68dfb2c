//! `netpol check`, `matrix` and `get nodes` on the dual-stack example with nodes
//! (examples/dual-stack): nodes as REFs and endpoints, the own-node rule, hostNetwork pods, exact
//! IP REFs and per-family answers. Every expected verdict is derived from the NetworkPolicy API and
//! the manifests (the comments say why), not copied from the program's output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;

use serde_json::Value;

use common::{run, stdout};

const EXAMPLE: &str = "examples/dual-stack";
const VM_A: &str = "test-project/vm-a";
const VM_B: &str = "test-project/vm-b";

fn check(from: &str, to: &str, port: &str, extra: &[&str]) -> Output {
    let mut args = vec!["check", EXAMPLE, "--from", from, "--to", to, "--port", port];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn an_ipv6_ref_pair_uses_exactly_those_addresses_and_is_allowed() {
    // vm-b's egress admits fd00:66::/64; vm-a's ingress on 80 admits fd00:66::/64.
    let o = check("fd00:66::71", "fd00:66::70", "80", &[]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with("ALLOWED  test-project/vm-b -> test-project/vm-a"),
        "{text}"
    );
    assert!(
        text.contains("addresses: fd00:66::71 -> fd00:66::70"),
        "{text}"
    );
}

#[test]
fn an_ipv4_ref_pair_is_denied_because_the_ipv6_block_admits_no_ipv4_source() {
    let o = check("10.66.20.71", "10.66.20.70", "80", &[]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("addresses: 10.66.20.71 -> 10.66.20.70"),
        "{text}"
    );
    assert!(
        text.contains("ingress to test-project/vm-a: denied"),
        "{text}"
    );
}

#[test]
fn workload_refs_of_a_dual_stack_pair_say_that_the_families_differ() {
    let o = check(VM_B, VM_A, "80", &[]);
    let text = stdout(&o);
    // Denied over one family: the flow is not allowed everywhere, so the exit code says denied.
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with("DIFFERS BY FAMILY  test-project/vm-b -> test-project/vm-a  TCP/80: denied over IPv4, allowed over IPv6"),
        "{text}"
    );
    assert!(text.contains("IPv4: DENIED"), "{text}");
    assert!(text.contains("IPv6: ALLOWED"), "{text}");
    let o = check(VM_B, VM_A, "80", &["-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["families"]["IPv4"]["allowed"], false);
    assert_eq!(v["families"]["IPv6"]["allowed"], true);
    assert_eq!(v["families"]["IPv6"]["src_address"], "fd00:66::71");
}

#[test]
fn a_pair_whose_families_agree_prints_one_verdict() {
    // vm-b is not ingress-isolated and vm-a not egress-isolated: open over both families.
    let o = check(VM_A, VM_B, "80", &["-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(v["allowed"], true);
    assert!(v.get("families").is_none(), "{v}");
    assert_eq!(v["src"], VM_A);
}

#[test]
fn a_workload_always_accepts_its_own_node_even_when_isolated() {
    // vm-a is ingress-isolated and admits only fd00:66::/64 on port 80, yet its node's kubelet
    // reaches it on any port: the API's own-node rule.
    let o = check("node/virtlab-1", VM_A, "22", &[]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("allowed: from its own node"), "{text}");
    // Its node's address as a REF is the same node.
    let o = check("10.66.10.11", VM_A, "22", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).starts_with("ALLOWED  node/virtlab-1 -> test-project/vm-a"));
}

#[test]
fn another_node_is_an_ordinary_external_address() {
    // virtlab-2's addresses are in neither fd00:66::/64 nor any other block of vm-a's policy.
    let o = check("node/virtlab-2", VM_A, "80", &[]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(!text.contains("own node"), "{text}");
}

#[test]
fn a_host_network_pod_is_its_node() {
    let o = check("pod/kube-system/node-exporter-x7k2p", VM_A, "22", &[]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with("ALLOWED  node/virtlab-1 -> test-project/vm-a"),
        "{text}"
    );
}

#[test]
fn egress_to_a_node_is_decided_by_ip_blocks_per_family() {
    // vm-b may send to 0.0.0.0/0 (admits the node's IPv4 address) and fd00:66::/64 (not the
    // node's fd00:66:10::11): allowed over IPv4 only.
    let o = check(VM_B, "node/virtlab-1", "10250", &[]);
    let text = stdout(&o);
    assert!(
        text.contains("allowed over IPv4, denied over IPv6"),
        "{text}"
    );
    // A node is never isolated: the workload's egress alone decides.
    let o = check(VM_A, "node/virtlab-2", "10250", &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("node/virtlab-2 is a node; no policy applies to a node"));
}

#[test]
fn an_ip_ref_of_another_family_than_the_other_end_is_an_error() {
    let o = check("fd00:66::71", "10.66.20.70", "80", &[]);
    assert_eq!(o.status.code(), Some(2));
    let o = check("node/nowhere", VM_A, "80", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("virtlab-1, virtlab-2"));
}

#[test]
fn the_truth_table_marks_pairs_allowed_over_one_family_only() {
    let o = run(&["matrix", EXAMPLE, "--port", "80", "-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let allowed = &v["allowed"];
    assert_eq!(
        allowed[VM_B][VM_A],
        serde_json::json!({"IPv4": false, "IPv6": true})
    );
    assert_eq!(allowed[VM_A][VM_B], true);
    assert_eq!(allowed["node/virtlab-1"][VM_A], true);
    assert_eq!(allowed["node/virtlab-2"][VM_A], false);
    assert_eq!(
        allowed[VM_B]["node/virtlab-1"],
        serde_json::json!({"IPv4": true, "IPv6": false})
    );
    let grid = stdout(&run(&["matrix", EXAMPLE, "--port", "80"]));
    assert!(grid.contains("6 allowed over IPv6 only"), "{grid}");
    let summary = stdout(&run(&["matrix", EXAMPLE, "--port", "80", "-o", "summary"]));
    assert!(
        summary.starts_with("workloads: 2, nodes: 2, pairs: 16"),
        "{summary}"
    );
    assert!(summary.contains("differ by family: 3"), "{summary}");
}

#[test]
fn the_connectivity_map_lists_each_family_where_they_differ() {
    let text = stdout(&run(&["matrix", EXAMPLE]));
    assert!(
        text.contains("test-project/vm-b -> test-project/vm-a  IPv4: none; IPv6: TCP 80\n"),
        "{text}"
    );
    let o = run(&["matrix", EXAMPLE, "-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let pair = &v["connections"][VM_B][VM_A];
    assert_eq!(pair["IPv6"]["TCP"], serde_json::json!([[80, 80]]));
    assert_eq!(pair["IPv4"]["TCP"], serde_json::json!([]));
    // Agreeing pairs keep the single-stack form.
    assert!(v["connections"][VM_A][VM_B]["TCP"].is_array());
}

#[test]
fn get_nodes_lists_addresses_workloads_and_host_network_pods() {
    let text = stdout(&run(&["get", "nodes", EXAMPLE]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].starts_with("virtlab-1"), "{text}");
    assert!(lines[1].contains("10.66.10.11,fd00:66:10::11"), "{text}");
    assert!(lines[1].contains(VM_A), "{text}");
    assert!(
        lines[1].contains("kube-system/node-exporter-x7k2p"),
        "{text}"
    );
    assert!(lines[2].contains(VM_B), "{text}");
}
