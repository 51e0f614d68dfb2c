//! The admin policy CRDs' OpenAPI and CEL rules on the spec, subjects, rules and peers, each
//! rejected and accepted (ports and protocols: `admin_ports.rs`).

mod common;

use common::admin::*;
use common::*;
use netpol_core::AdminPeer;
use netpol_k8s::Severity;

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

#[test]
fn the_baseline_admin_network_policy_must_be_named_default() {
    assert_valid(&banp("default", BANP_HEAD));
    assert_rejected(
        &banp("baseline", BANP_HEAD),
        "metadata.name: Invalid value: \"baseline\": Only one baseline admin network policy with metadata.name=\"default\" can be created in the cluster",
    );
}
