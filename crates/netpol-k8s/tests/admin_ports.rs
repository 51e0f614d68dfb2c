//! The admin policy CRDs' rules on ports (v1alpha2 `protocols`, v1alpha1 `ports`), the removed
//! `sameLabels`, and the exact text of three representative mistakes.

mod common;

use common::admin::*;
use common::*;
use netpol_k8s::ValidationMode;

#[test]
fn a_protocols_entry_is_exactly_one_of_tcp_udp_sctp_and_destination_named_port() {
    assert_valid(&with_protocols(&[
        "udp: {destinationPort: {number: 53}}",
        "destinationNamedPort: dns",
    ]));
    assert_rejected(
        &with_protocols(&["{}"]),
        "spec.egress[0].protocols[0]: Invalid value: 0: spec.egress[0].protocols[0] in body should have at least 1 properties (set exactly one of tcp, udp, sctp, destinationNamedPort)",
    );
    assert_rejected(
        &with_protocols(&["{tcp: {destinationPort: {number: 1}}, udp: {destinationPort: {number: 1}}}"]),
        "spec.egress[0].protocols[0]: Invalid value: 2: spec.egress[0].protocols[0] in body should have at most 1 properties (set exactly one of tcp, udp, sctp, destinationNamedPort)",
    );
    assert_rejected(
        &cnp(&format!("{HEAD}{}", egress("Deny", &["namespaces: {}"], "    protocols: []\n"))),
        "spec.egress[0].protocols: Invalid value: 0: spec.egress[0].protocols in body should have at least 1 items",
    );
}

#[test]
fn tcp_udp_and_sctp_need_a_destination_port() {
    assert_rejected(
        &with_protocols(&["tcp: {}"]),
        "spec.egress[0].protocols[0].tcp: Invalid value: 0: spec.egress[0].protocols[0].tcp in body should have at least 1 properties (set exactly one of destinationPort)",
    );
}

#[test]
fn a_destination_port_is_a_number_or_a_range_of_valid_ports_with_start_below_end() {
    assert_valid(&with_protocols(&[
        "sctp: {destinationPort: {range: {start: 1, end: 65535}}}",
    ]));
    assert_rejected(
        &with_protocols(&["tcp: {destinationPort: {}}"]),
        "spec.egress[0].protocols[0].tcp.destinationPort: Invalid value: 0: spec.egress[0].protocols[0].tcp.destinationPort in body should have at least 1 properties (set exactly one of number, range)",
    );
    assert_rejected(
        &with_protocols(&["tcp: {destinationPort: {number: 80, range: {start: 1, end: 2}}}"]),
        "spec.egress[0].protocols[0].tcp.destinationPort: Invalid value: 2: spec.egress[0].protocols[0].tcp.destinationPort in body should have at most 1 properties (set exactly one of number, range)",
    );
    assert_rejected(
        &with_protocols(&["tcp: {destinationPort: {number: 0}}"]),
        "spec.egress[0].protocols[0].tcp.destinationPort.number: Invalid value: 0: spec.egress[0].protocols[0].tcp.destinationPort.number in body should be greater than or equal to 1",
    );
    assert_rejected(
        &with_protocols(&["udp: {destinationPort: {number: 65536}}"]),
        "spec.egress[0].protocols[0].udp.destinationPort.number: Invalid value: 65536: spec.egress[0].protocols[0].udp.destinationPort.number in body should be less than or equal to 65535",
    );
    assert_rejected(
        &with_protocols(&["tcp: {destinationPort: {range: {start: 80, end: 80}}}"]),
        "spec.egress[0].protocols[0].tcp.destinationPort.range: Invalid value: \"object\": Start port must be less than End port",
    );
    assert_rejected(
        &with_protocols(&["tcp: {destinationPort: {range: {start: 80}}}"]),
        "spec.egress[0].protocols[0].tcp.destinationPort.range.end: Required value",
    );
}

#[test]
fn named_ports_cannot_go_with_networks_nodes_or_domain_names_peers() {
    for p in ["networks: [10.0.0.0/8]", "nodes: {}", "domainNames: [a.io]"] {
        assert_rejected(
            &cnp(&format!("{HEAD}{}", egress("Accept", &["namespaces: {}", p], "    protocols:\n    - destinationNamedPort: http\n"))),
            "spec.egress[0]: Invalid value: \"object\": networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames",
        );
    }
    assert_valid(&cnp(&format!(
        "{HEAD}{}",
        egress(
            "Accept",
            &["namespaces: {}"],
            "    protocols:\n    - destinationNamedPort: http\n"
        )
    )));
    assert_rejected(
        &anp(&format!("{ANP_HEAD}{}", egress("Allow", &["nodes: {}"], "    ports:\n    - namedPort: http\n"))),
        "spec.egress[0]: Invalid value: \"object\": networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames",
    );
    assert_rejected(
        &banp("default", &format!("{BANP_HEAD}{}", egress("Allow", &["networks: [10.0.0.0/8]"], "    ports:\n    - namedPort: http\n"))),
        "spec.egress[0]: Invalid value: \"object\": networks/nodes peer cannot be set with namedPorts since there are no namedPorts for networks/nodes",
    );
}

#[test]
fn v1alpha1_ports_are_exactly_one_of_port_number_port_range_and_named_port() {
    assert_valid(&with_ports(&[
        "portNumber: {port: 80}",
        "portRange: {start: 1, end: 2}",
        "namedPort: web",
    ]));
    assert_rejected(
        &with_ports(&["{}"]),
        "spec.egress[0].ports[0]: Invalid value: 0: spec.egress[0].ports[0] in body should have at least 1 properties (set exactly one of portNumber, portRange, namedPort)",
    );
    assert_rejected(
        &with_ports(&["{portNumber: {port: 80}, namedPort: web}"]),
        "spec.egress[0].ports[0]: Invalid value: 2: spec.egress[0].ports[0] in body should have at most 1 properties (set exactly one of portNumber, portRange, namedPort)",
    );
    assert_rejected(
        &with_ports(&["portNumber: {protocol: ICMP, port: 80}"]),
        "spec.egress[0].ports[0].portNumber.protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
    );
    assert_rejected(
        &with_ports(&["portNumber: {protocol: UDP}"]),
        "spec.egress[0].ports[0].portNumber.port: Required value",
    );
    assert_rejected(
        &with_ports(&["portRange: {start: 90, end: 80}"]),
        "spec.egress[0].ports[0].portRange: Invalid value: \"object\": Start port must be less than End port",
    );
    assert_rejected(
        &with_ports(&["portRange: {start: 0, end: 80}"]),
        "spec.egress[0].ports[0].portRange.start: Invalid value: 0: spec.egress[0].ports[0].portRange.start in body should be greater than or equal to 1",
    );
}

const SAME_LABELS: &str = "apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata:
  name: old
spec:
  priority: 5
  subject:
    namespaces: {}
  ingress:
  - action: Allow
    from:
    - namespaces:
        sameLabels: [tenant]
";

#[test]
fn same_labels_and_not_same_labels_are_rejected_in_every_mode_as_removed_upstream() {
    for mode in [
        ValidationMode::Strict,
        ValidationMode::Warn,
        ValidationMode::Ignore,
    ] {
        for text in [
            SAME_LABELS.to_string(),
            SAME_LABELS.replace("sameLabels", "notSameLabels"),
        ] {
            let l = load_mode(&text, mode);
            assert!(l.cluster.admin_policies.is_empty(), "{mode:?}");
            let errs = errors(&l);
            assert_eq!(errs.len(), 1, "{errs:#?}");
            assert!(
                errs[0]
                    .message
                    .contains("was removed from the AdminNetworkPolicy API"),
                "{}",
                errs[0].message
            );
            assert_eq!(errs[0].line, 13);
        }
    }
}

#[test]
fn three_representative_mistakes_read_exactly_like_this() {
    // 1. The v1alpha1 spelling of Accept in a v1alpha2 policy.
    let l = load(&cnp(&format!(
        "{HEAD}{}",
        ingress("Allow", &["namespaces: {}"], "")
    )));
    assert_eq!(
        errors(&l)[0].to_string(),
        "t.yaml:11:13: error: ClusterNetworkPolicy p: spec.ingress[0].action: Unsupported value: \"Allow\": supported values: \"Accept\", \"Deny\", \"Pass\" (Allow is the v1alpha1 spelling; ClusterNetworkPolicy says Accept)"
    );
    // 2. An empty tcp entry, meant as "every TCP port".
    let l = load(&with_protocols(&["tcp: {}"]));
    assert_eq!(
        errors(&l)[0].to_string(),
        "t.yaml:15:12: error: ClusterNetworkPolicy p: spec.egress[0].protocols[0].tcp: Invalid value: 0: spec.egress[0].protocols[0].tcp in body should have at least 1 properties (set exactly one of destinationPort)"
    );
    // 3. sameLabels from an old v0.1.x manifest.
    let l = load(SAME_LABELS);
    assert_eq!(
        errors(&l)[0].to_string(),
        "t.yaml:13:9: error: AdminNetworkPolicy old: sameLabels was removed from the AdminNetworkPolicy API (network-policy-api commit 4d5dd78, March 2024; not in v0.1.5 or later, nor in ClusterNetworkPolicy): netpol does not read it, and dropping it would change what the peer selects at spec.ingress[0].from[0].namespaces.sameLabels\n  hint: select the namespaces with a label selector instead (namespaces: {matchLabels: ...}), one rule per group of namespaces that share the label"
    );
}
