//! Loading Node objects (`kubectl get nodes -o yaml`) and hostNetwork pods, whose addresses are
//! their node's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use netpol_k8s::{load_str, LoadOptions, Severity};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const NODES: &str = "apiVersion: v1
kind: NodeList
items:
- metadata:
    name: n1
    labels: {zone: a}
    uid: ignored
  spec: {podCIDR: 10.0.0.0/24}
  status:
    capacity: {cpu: '4'}
    addresses:
    - {type: Hostname, address: n1}
    - {type: InternalIP, address: 10.0.0.11}
    - {type: InternalIP, address: 'fd00::11'}
    - {type: ExternalIP, address: 192.0.2.11}
    - {type: InternalDNS, address: n1.example}
- metadata: {name: n0}
";

#[test]
fn nodes_load_with_their_internal_and_external_addresses_of_both_families_sorted_by_name() {
    let l = load_str("nodes.yaml", NODES, &LoadOptions::default());
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    let names: Vec<&str> = l.cluster.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["n0", "n1"]);
    let n1 = &l.cluster.nodes[1];
    assert_eq!(
        n1.addresses,
        vec![ip("10.0.0.11"), ip("fd00::11"), ip("192.0.2.11")],
        "Hostname and DNS entries are not addresses traffic comes from"
    );
    assert_eq!(n1.labels.get("zone").map(String::as_str), Some("a"));
    assert_eq!(n1.origin.as_ref().map(|o| o.line), Some(4));
    assert!(l.cluster.nodes[0].addresses.is_empty());
}

#[test]
fn a_bad_node_address_is_an_error_at_its_file_line_and_field() {
    let text = "apiVersion: v1
kind: Node
metadata: {name: n1}
status:
  addresses:
  - type: InternalIP
    address: 10.0.0.300
";
    let l = load_str("node.yaml", text, &LoadOptions::default());
    let d = l
        .diagnostics
        .iter()
        .find(|d| d.severity == Severity::Error)
        .expect("an error");
    assert_eq!(d.file, "node.yaml");
    assert_eq!(d.line, 7, "{d:?}");
    assert_eq!(d.field_path.as_deref(), Some("status.addresses[0].address"));
    assert!(d.message.contains("10.0.0.300"), "{}", d.message);
    assert!(l.cluster.nodes.is_empty(), "the bad node is rejected");
}

#[test]
fn a_node_of_the_wrong_shape_is_an_error_not_a_panic() {
    let text = "apiVersion: v1
kind: Node
metadata: {name: n1}
status:
  addresses: not-a-list
";
    let l = load_str("node.yaml", text, &LoadOptions::default());
    let d = l
        .diagnostics
        .iter()
        .find(|d| d.severity == Severity::Error)
        .expect("an error");
    assert_eq!(d.line, 5, "{d:?}");
    assert!(l.cluster.nodes.is_empty());
}

#[test]
fn a_host_network_pod_is_no_workload_and_its_addresses_are_its_nodes() {
    let text = format!(
        "{NODES}---
apiVersion: v1
kind: Pod
metadata: {{name: exporter, namespace: mon}}
spec:
  hostNetwork: true
  nodeName: n1
  containers: [{{name: c, image: x}}]
status:
  podIPs: [{{ip: 10.0.0.11}}, {{ip: 10.0.0.12}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: agent, namespace: mon}}
spec:
  hostNetwork: true
  nodeName: n9
  containers: [{{name: c, image: x}}]
status:
  podIP: 10.0.0.99
"
    );
    let l = load_str("all.yaml", &text, &LoadOptions::default());
    assert!(l.cluster.workloads.is_empty());
    let n1 = &l.cluster.nodes[1];
    assert_eq!(n1.host_network_pods, vec!["mon/exporter".to_string()]);
    assert!(n1.addresses.contains(&ip("10.0.0.12")), "{n1:?}");
    assert_eq!(n1.addresses.len(), 4, "no address twice: {n1:?}");
    // A node known only from a hostNetwork pod is implicit.
    let n9 = l.cluster.nodes.iter().find(|n| n.name == "n9").unwrap();
    assert!(n9.implicit);
    assert_eq!(n9.addresses, vec![ip("10.0.0.99")]);
}
