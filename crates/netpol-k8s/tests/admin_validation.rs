//! The admin policy CRDs' OpenAPI and CEL rules, each rejected and accepted, and the exact text
//! of three representative mistakes.

mod common;

use common::*;
use netpol_core::AdminPeer;
use netpol_k8s::{Severity, ValidationMode};

/// A ClusterNetworkPolicy named `p` with the given spec body (indented by two spaces).
fn cnp(spec: &str) -> String {
    format!("apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata:\n  name: p\nspec:\n{spec}")
}

/// An AdminNetworkPolicy named `p`.
fn anp(spec: &str) -> String {
    format!("apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata:\n  name: p\nspec:\n{spec}")
}

/// A BaselineAdminNetworkPolicy named `name`.
fn banp(name: &str, spec: &str) -> String {
    format!("apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

const HEAD: &str = "  tier: Admin\n  priority: 1\n  subject:\n    namespaces: {}\n";
const ANP_HEAD: &str = "  priority: 1\n  subject:\n    namespaces: {}\n";
const BANP_HEAD: &str = "  subject:\n    namespaces: {}\n";

/// The messages of the errors of a one-policy manifest; an object with errors must not load.
fn error_messages(text: &str) -> Vec<String> {
    let l = load(text);
    let errs: Vec<String> = errors(&l).iter().map(|d| d.message.clone()).collect();
    assert_eq!(
        l.cluster.admin_policies.is_empty(),
        !errs.is_empty(),
        "{errs:?}"
    );
    errs
}

fn assert_rejected(text: &str, expected: &str) {
    let errs = error_messages(text);
    assert!(
        errs.iter().any(|e| e == expected),
        "expected {expected:?} among {errs:#?}"
    );
}

fn assert_valid(text: &str) {
    let errs = error_messages(text);
    assert!(errs.is_empty(), "unexpected errors {errs:#?}");
}

/// An egress rule of `action` to the given peers (YAML flow list items) and extra rule lines.
fn egress(action: &str, peers: &[&str], extra: &str) -> String {
    let mut s = format!("  egress:\n  - action: {action}\n    to:\n");
    for p in peers {
        s.push_str(&format!("    - {p}\n"));
    }
    s.push_str(extra);
    s
}

fn ingress(action: &str, peers: &[&str], extra: &str) -> String {
    egress(action, peers, extra)
        .replace("  egress:", "  ingress:")
        .replace("    to:", "    from:")
}

#[test]
fn priority_is_required_and_between_0_and_1000() {
    assert_valid(&cnp(
        "  tier: Admin\n  priority: 0\n  subject: {namespaces: {}}\n",
    ));
    assert_valid(&cnp(
        "  tier: Admin\n  priority: 1000\n  subject: {namespaces: {}}\n",
    ));
    assert_rejected(
        &cnp("  tier: Admin\n  priority: 1001\n  subject: {namespaces: {}}\n"),
        "spec.priority: Invalid value: 1001: spec.priority in body should be less than or equal to 1000",
    );
    assert_rejected(
        &anp("  priority: -1\n  subject: {namespaces: {}}\n"),
        "spec.priority: Invalid value: -1: spec.priority in body should be greater than or equal to 0",
    );
    assert_rejected(
        &cnp("  tier: Admin\n  subject: {namespaces: {}}\n"),
        "spec.priority: Required value",
    );
    assert_rejected(
        &anp("  subject: {namespaces: {}}\n"),
        "spec.priority: Required value",
    );
    // A BANP has no priority field at all.
    let l = load(&banp(
        "default",
        "  priority: 3\n  subject: {namespaces: {}}\n",
    ));
    assert_eq!(errors(&l)[0].field_path.as_deref(), Some("spec.priority"));
}

#[test]
fn tier_is_required_and_admin_or_baseline() {
    assert_valid(&cnp(
        "  tier: Baseline\n  priority: 1\n  subject: {namespaces: {}}\n",
    ));
    assert_rejected(
        &cnp("  tier: Developer\n  priority: 1\n  subject: {namespaces: {}}\n"),
        "spec.tier: Unsupported value: \"Developer\": supported values: \"Admin\", \"Baseline\"",
    );
    assert_rejected(
        &cnp("  priority: 1\n  subject: {namespaces: {}}\n"),
        "spec.tier: Required value",
    );
}

#[test]
fn the_spec_is_required() {
    assert_rejected(
        "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: p}\n",
        "spec: Required value",
    );
}

#[test]
fn the_subject_is_exactly_one_of_namespaces_and_pods() {
    assert_valid(&cnp(
        "  tier: Admin\n  priority: 1\n  subject:\n    pods:\n      podSelector: {}\n",
    ));
    assert_rejected(
        &cnp("  tier: Admin\n  priority: 1\n  subject: {}\n"),
        "spec.subject: Invalid value: 0: spec.subject in body should have at least 1 properties (set exactly one of namespaces, pods)",
    );
    assert_rejected(
        &cnp("  tier: Admin\n  priority: 1\n  subject:\n    namespaces: {}\n    pods: {podSelector: {}}\n"),
        "spec.subject: Invalid value: 2: spec.subject in body should have at most 1 properties (set exactly one of namespaces, pods)",
    );
    assert_rejected(
        &cnp("  tier: Admin\n  priority: 1\n"),
        "spec.subject: Required value",
    );
}

#[test]
fn pods_need_a_pod_selector_and_default_to_every_namespace() {
    assert_rejected(
        &cnp("  tier: Admin\n  priority: 1\n  subject:\n    pods:\n      namespaceSelector: {}\n"),
        "spec.subject.pods.podSelector: Required value",
    );
    assert_rejected(
        &cnp(&format!(
            "{HEAD}{}",
            ingress("Deny", &["pods: {namespaceSelector: {}}"], "")
        )),
        "spec.ingress[0].from[0].pods.podSelector: Required value",
    );
    let l = load(&cnp(&format!(
        "{HEAD}{}",
        ingress("Deny", &["pods: {podSelector: {}}"], "")
    )));
    assert!(!l.has_errors(), "{:#?}", l.diagnostics);
}

#[test]
fn selectors_are_validated_like_a_network_policys() {
    assert_rejected(
        &cnp("  tier: Admin\n  priority: 1\n  subject:\n    namespaces:\n      matchExpressions:\n      - {key: a, operator: Has}\n"),
        "spec.subject.namespaces.matchExpressions[0].operator: Invalid value: \"Has\": not a valid selector operator",
    );
}

/// `n` copies of `item` as YAML list lines at `indent`.
fn items(indent: &str, item: &str, n: usize) -> String {
    (0..n).map(|_| format!("{indent}- {item}\n")).collect()
}

#[test]
fn v1alpha2_allows_25_rules_per_direction_25_peers_and_25_protocols() {
    let rule = "{action: Deny, from: [{namespaces: {}}]}";
    assert_valid(&cnp(&format!(
        "{HEAD}  ingress:\n{}",
        items("  ", rule, 25)
    )));
    assert_rejected(
        &cnp(&format!("{HEAD}  ingress:\n{}", items("  ", rule, 26))),
        "spec.ingress: Too many: 26: must have at most 25 items",
    );
    let eg = "{action: Deny, to: [{namespaces: {}}]}";
    assert_rejected(
        &cnp(&format!("{HEAD}  egress:\n{}", items("  ", eg, 26))),
        "spec.egress: Too many: 26: must have at most 25 items",
    );
    let peers = |n| {
        format!(
            "{HEAD}  ingress:\n  - action: Deny\n    from:\n{}",
            items("    ", "namespaces: {}", n)
        )
    };
    assert_valid(&cnp(&peers(25)));
    assert_rejected(
        &cnp(&peers(26)),
        "spec.ingress[0].from: Too many: 26: must have at most 25 items",
    );
    let protocols = |n| {
        format!(
            "{}    protocols:\n{}",
            egress("Deny", &["namespaces: {}"], ""),
            items("    ", "tcp: {destinationPort: {number: 80}}", n)
        )
    };
    assert_valid(&cnp(&format!("{HEAD}{}", protocols(25))));
    assert_rejected(
        &cnp(&format!("{HEAD}{}", protocols(26))),
        "spec.egress[0].protocols: Too many: 26: must have at most 25 items",
    );
}

fn networks(n: usize) -> String {
    let list: Vec<String> = (0..n).map(|i| format!("10.0.{i}.0/24")).collect();
    format!("networks: [{}]", list.join(", "))
}

fn domains(n: usize) -> String {
    let list: Vec<String> = (0..n).map(|i| format!("h{i}.example.com")).collect();
    format!("domainNames: [{}]", list.join(", "))
}

#[test]
fn networks_and_domain_names_hold_at_most_25_entries_in_both_versions() {
    assert_valid(&cnp(&format!(
        "{HEAD}{}",
        egress("Deny", &[&networks(25)], "")
    )));
    assert_rejected(
        &cnp(&format!("{HEAD}{}", egress("Deny", &[&networks(26)], ""))),
        "spec.egress[0].to[0].networks: Too many: 26: must have at most 25 items",
    );
    assert_rejected(
        &anp(&format!(
            "{ANP_HEAD}{}",
            egress("Deny", &[&networks(26)], "")
        )),
        "spec.egress[0].to[0].networks: Too many: 26: must have at most 25 items",
    );
    assert_valid(&cnp(&format!(
        "{HEAD}{}",
        egress("Accept", &[&domains(25)], "")
    )));
    assert_rejected(
        &cnp(&format!("{HEAD}{}", egress("Accept", &[&domains(26)], ""))),
        "spec.egress[0].to[0].domainNames: Too many: 26: must have at most 25 items",
    );
    assert_rejected(
        &cnp(&format!("{HEAD}{}", egress("Deny", &["networks: []"], ""))),
        "spec.egress[0].to[0].networks: Invalid value: 0: spec.egress[0].to[0].networks in body should have at least 1 items",
    );
}

#[test]
fn v1alpha1_allows_100_rules_100_peers_and_100_ports() {
    let rule = "{action: Deny, from: [{namespaces: {}}]}";
    assert_valid(&anp(&format!(
        "{ANP_HEAD}  ingress:\n{}",
        items("  ", rule, 100)
    )));
    assert_rejected(
        &anp(&format!("{ANP_HEAD}  ingress:\n{}", items("  ", rule, 101))),
        "spec.ingress: Too many: 101: must have at most 100 items",
    );
    let peers = |n| {
        format!(
            "{BANP_HEAD}  egress:\n  - action: Deny\n    to:\n{}",
            items("    ", "namespaces: {}", n)
        )
    };
    assert_valid(&banp("default", &peers(100)));
    assert_rejected(
        &banp("default", &peers(101)),
        "spec.egress[0].to: Too many: 101: must have at most 100 items",
    );
    let ports = |n| {
        format!(
            "{}    ports:\n{}",
            egress("Deny", &["namespaces: {}"], ""),
            items("    ", "portNumber: {port: 80}", n)
        )
    };
    assert_valid(&anp(&format!("{ANP_HEAD}{}", ports(100))));
    assert_rejected(
        &anp(&format!("{ANP_HEAD}{}", ports(101))),
        "spec.egress[0].ports: Too many: 101: must have at most 100 items",
    );
}

#[test]
fn a_rule_needs_at_least_one_peer() {
    assert_rejected(
        &cnp(&format!("{HEAD}  ingress:\n  - action: Deny\n")),
        "spec.ingress[0].from: Required value",
    );
    assert_rejected(
        &cnp(&format!("{HEAD}  egress:\n  - action: Deny\n    to: []\n")),
        "spec.egress[0].to: Invalid value: 0: spec.egress[0].to in body should have at least 1 items",
    );
}

#[test]
fn rule_names_have_at_most_100_characters() {
    let named = |n: usize| {
        format!(
            "{HEAD}  ingress:\n  - name: {}\n    action: Deny\n    from: [{{namespaces: {{}}}}]\n",
            "r".repeat(n)
        )
    };
    assert_valid(&cnp(&named(100)));
    assert_rejected(
        &cnp(&named(101)),
        "spec.ingress[0].name: Too long: may not be more than 100 bytes",
    );
}

#[test]
fn actions_are_each_apis_own_enum() {
    for a in ["Accept", "Deny", "Pass"] {
        assert_valid(&cnp(&format!(
            "{HEAD}{}",
            ingress(a, &["namespaces: {}"], "")
        )));
    }
    assert_rejected(
        &cnp(&format!("{HEAD}{}", ingress("Allow", &["namespaces: {}"], ""))),
        "spec.ingress[0].action: Unsupported value: \"Allow\": supported values: \"Accept\", \"Deny\", \"Pass\" (Allow is the v1alpha1 spelling; ClusterNetworkPolicy says Accept)",
    );
    for a in ["Allow", "Deny", "Pass"] {
        assert_valid(&anp(&format!(
            "{ANP_HEAD}{}",
            ingress(a, &["namespaces: {}"], "")
        )));
    }
    assert_rejected(
        &anp(&format!("{ANP_HEAD}{}", ingress("Accept", &["namespaces: {}"], ""))),
        "spec.ingress[0].action: Unsupported value: \"Accept\": supported values: \"Allow\", \"Deny\", \"Pass\" (Accept is the v1alpha2 ClusterNetworkPolicy spelling; v1alpha1 says Allow)",
    );
    for a in ["Allow", "Deny"] {
        assert_valid(&banp(
            "default",
            &format!("{BANP_HEAD}{}", ingress(a, &["namespaces: {}"], "")),
        ));
    }
    assert_rejected(
        &banp("default", &format!("{BANP_HEAD}{}", ingress("Pass", &["namespaces: {}"], ""))),
        "spec.ingress[0].action: Unsupported value: \"Pass\": supported values: \"Allow\", \"Deny\" (a BaselineAdminNetworkPolicy has no Pass; a v1alpha2 ClusterNetworkPolicy of tier Baseline has)",
    );
    assert_rejected(
        &cnp(&format!(
            "{HEAD}  ingress:\n  - from: [{{namespaces: {{}}}}]\n"
        )),
        "spec.ingress[0].action: Required value",
    );
}

#[test]
fn a_peer_sets_exactly_one_field() {
    assert_rejected(
        &cnp(&format!("{HEAD}{}", egress("Deny", &["{}"], ""))),
        "spec.egress[0].to[0]: Invalid value: 0: spec.egress[0].to[0] in body should have at least 1 properties (set exactly one of namespaces, pods, nodes, networks, domainNames)",
    );
    assert_rejected(
        &cnp(&format!("{HEAD}{}", egress("Deny", &["{namespaces: {}, nodes: {}}"], ""))),
        "spec.egress[0].to[0]: Invalid value: 2: spec.egress[0].to[0] in body should have at most 1 properties (set exactly one of namespaces, pods, nodes, networks, domainNames)",
    );
}

#[test]
fn ingress_peers_are_only_namespaces_and_pods_and_each_api_has_its_egress_peers() {
    for p in ["nodes: {}", "networks: [10.0.0.0/8]", "domainNames: [a.io]"] {
        let field = p.split(':').next().unwrap();
        assert_rejected(
            &cnp(&format!("{HEAD}{}", ingress("Accept", &[p], ""))),
            &format!("spec.ingress[0].from[0].{field}: Forbidden: {field} peers are only allowed in egress rules (ingress peers: namespaces, pods)"),
        );
        assert_valid(&cnp(&format!("{HEAD}{}", egress("Accept", &[p], ""))));
        assert_valid(&anp(&format!("{ANP_HEAD}{}", egress("Allow", &[p], ""))));
    }
    assert_valid(&banp(
        "default",
        &format!(
            "{BANP_HEAD}{}",
            egress("Allow", &["nodes: {}", "networks: [10.0.0.0/8]"], "")
        ),
    ));
    assert_rejected(
        &banp("default", &format!("{BANP_HEAD}{}", egress("Allow", &["domainNames: [a.io]"], ""))),
        "spec.egress[0].to[0].domainNames: Forbidden: BaselineAdminNetworkPolicy egress peers have no domainNames",
    );
}

#[test]
fn networks_are_cidrs_as_cel_is_cidr_reads_them_and_no_longer_than_43() {
    assert_valid(&cnp(&format!(
        "{HEAD}{}",
        egress("Deny", &["networks: [10.0.0.0/8, '2001:db8::/32']"], "")
    )));
    for bad in ["10.0.0.0", "10.0.0.0/33", "010.0.0.0/8", "example.com/8"] {
        assert_rejected(
            &cnp(&format!("{HEAD}{}", egress("Deny", &[&format!("networks: ['{bad}']")], ""))),
            &format!("spec.egress[0].to[0].networks[0]: Invalid value: \"{bad}\": Invalid CIDR format provided"),
        );
    }
    let long = format!("networks: ['{}/128']", "0000:".repeat(7) + "00000");
    assert_rejected(
        &cnp(&format!("{HEAD}{}", egress("Deny", &[&long], ""))),
        "spec.egress[0].to[0].networks[0]: Too long: may not be more than 43 bytes",
    );
    let l = load(&cnp(&format!(
        "{HEAD}{}",
        egress("Deny", &["networks: [10.1.2.3/8]"], "")
    )));
    assert!(!l.has_errors());
    let w = with(&l, Severity::Warning);
    assert_eq!(
        w[0].message,
        "\"10.1.2.3/8\" has bits set past its prefix length: it is read as 10.0.0.0/8"
    );
    assert_eq!(
        l.cluster.admin_policies[0].egress[0].peers,
        [AdminPeer::Networks(vec!["10.0.0.0/8".parse().unwrap()])]
    );
}

#[test]
fn networks_and_domain_names_are_sets() {
    assert_rejected(
        &cnp(&format!(
            "{HEAD}{}",
            egress("Deny", &["networks: [10.0.0.0/8, 10.0.0.0/8]"], "")
        )),
        "spec.egress[0].to[0].networks[1]: Duplicate value: \"10.0.0.0/8\"",
    );
    assert_rejected(
        &cnp(&format!(
            "{HEAD}{}",
            egress("Accept", &["domainNames: [a.io, a.io]"], "")
        )),
        "spec.egress[0].to[0].domainNames[1]: Duplicate value: \"a.io\"",
    );
}

#[test]
fn domain_names_match_the_crd_pattern() {
    assert_valid(&cnp(&format!(
        "{HEAD}{}",
        egress(
            "Accept",
            &["domainNames: ['*.kubernetes.io', blog.kubernetes.io.]"],
            ""
        )
    )));
    for bad in ["kubernetes", "www.*.io", "-a.io"] {
        let errs = error_messages(&cnp(&format!(
            "{HEAD}{}",
            egress("Accept", &[&format!("domainNames: ['{bad}']")], "")
        )));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with(&format!("spec.egress[0].to[0].domainNames[0]: Invalid value: \"{bad}\": spec.egress[0].to[0].domainNames[0] in body should match '^(\\*\\.)?")),
            "{}",
            errs[0]
        );
    }
}

#[test]
fn domain_names_are_only_in_accept_rules() {
    for a in ["Deny", "Pass"] {
        assert_rejected(
            &cnp(&format!("{HEAD}{}", egress(a, &["domainNames: [a.io]"], ""))),
            "spec.egress[0].to[0].domainNames: Forbidden: domainNames peers are only supported in Accept (v1alpha1: Allow) rules",
        );
    }
    assert_rejected(
        &anp(&format!("{ANP_HEAD}{}", egress("Deny", &["domainNames: [a.io]"], ""))),
        "spec.egress[0].to[0].domainNames: Forbidden: domainNames peers are only supported in Accept (v1alpha1: Allow) rules",
    );
}

fn with_protocols(entries: &[&str]) -> String {
    let mut s = format!(
        "{HEAD}{}",
        egress("Deny", &["namespaces: {}"], "    protocols:\n")
    );
    for e in entries {
        s.push_str(&format!("    - {e}\n"));
    }
    cnp(&s)
}

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
fn the_baseline_admin_network_policy_must_be_named_default() {
    assert_valid(&banp("default", BANP_HEAD));
    assert_rejected(
        &banp("baseline", BANP_HEAD),
        "metadata.name: Invalid value: \"baseline\": Only one baseline admin network policy with metadata.name=\"default\" can be created in the cluster",
    );
}

fn with_ports(entries: &[&str]) -> String {
    let mut s = format!(
        "{ANP_HEAD}{}",
        egress("Deny", &["namespaces: {}"], "    ports:\n")
    );
    for e in entries {
        s.push_str(&format!("    - {e}\n"));
    }
    anp(&s)
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
