//! Golden tests of the admin tiers: the full text for the user's page with a ClusterNetworkPolicy
//! of each tier and a BaselineAdminNetworkPolicy added, the decisions it encodes held against the
//! reference evaluator, and the denied-packet log prefix of an admin rule read back.

// Helpers outside #[test] functions panic too: in a test a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use netpol_core::*;
use netpol_nft::{compile, parse_denied_log_prefix, verdict_other_protocol};

const NODE_1_IP: &str = "10.66.0.11";

/// The user's page, plus: `deny-ssh-from-another-project` (Admin, 10) denies vm-a's SSH from
/// namespace another-project, which its NetworkPolicy allows; `egress` (Admin, 20) accepts every
/// workload's egress to 198.51.100.0/24 and passes TCP 10250 to nodes labelled `role=infra` on;
/// `banp/default` denies ingress on TCP 80 from every workload and, through a peer of a newer
/// API (fail closed), every other egress of workloads no NetworkPolicy isolates for egress.
fn tiered_users_page() -> Cluster {
    let mut c = users_page();
    let cnp = |name: &str, tier, priority, subject| AdminPolicy {
        api: AdminApi::ClusterNetworkPolicy,
        name: name.to_string(),
        tier,
        priority,
        subject,
        ingress: Vec::new(),
        egress: Vec::new(),
        origin: None,
    };
    let all = || AdminSubject::Namespaces(LabelSelector::default());
    let tcp = |n: u16| AdminPort::Protocol {
        protocol: Protocol::Tcp,
        ports: Some((n, n)),
    };
    let rule = |action, peers, ports| AdminRule {
        name: None,
        action,
        peers,
        ports,
        origin: None,
    };
    let mut ssh = cnp(
        "deny-ssh-from-another-project",
        AdminTier::Admin,
        10,
        AdminSubject::Pods {
            namespace_selector: LabelSelector::default(),
            pod_selector: sel(&[("vm", "a")]),
        },
    );
    ssh.ingress = vec![rule(
        AdminAction::Deny,
        vec![AdminPeer::Namespaces(sel(&[(
            NAMESPACE_NAME_LABEL,
            "another-project",
        )]))],
        Some(vec![tcp(22)]),
    )];
    let mut egress = cnp("egress", AdminTier::Admin, 20, all());
    egress.egress = vec![
        rule(
            AdminAction::Accept,
            vec![AdminPeer::Networks(vec!["198.51.100.0/24"
                .parse()
                .unwrap()])],
            None,
        ),
        rule(
            AdminAction::Pass,
            vec![AdminPeer::Nodes(sel(&[("role", "infra")]))],
            Some(vec![tcp(10250)]),
        ),
    ];
    let mut banp = cnp("default", AdminTier::Baseline, 0, all());
    banp.api = AdminApi::BaselineAdminNetworkPolicy;
    banp.ingress = vec![rule(
        AdminAction::Deny,
        vec![AdminPeer::Namespaces(LabelSelector::default())],
        Some(vec![tcp(80)]),
    )];
    banp.egress = vec![rule(AdminAction::Deny, vec![AdminPeer::Unknown], None)];
    c.admin_policies = vec![ssh, egress, banp];
    c.nodes = vec![Node {
        name: "virtlab-1".into(),
        labels: labels(&[("role", "infra")]),
        addresses: vec![ip(NODE_1_IP)],
        ..Node::default()
    }];
    c
}

#[test]
fn the_tiered_users_page_compiles_to_the_expected_tables() {
    let c = tiered_users_page();
    for node in ["virtlab-1", "virtlab-2"] {
        let r = compile(&c, EvalOptions::default(), node).unwrap();
        insta::assert_snapshot!(format!("tiered_users_page_{node}"), r.text);
        if nft_available() {
            nft_check(&r.text).unwrap();
        }
    }
}

#[test]
fn the_tiered_users_page_tables_decide_like_the_evaluator() {
    let c = tiered_users_page();
    let opts = EvalOptions::default();
    let tables: Vec<_> = ["virtlab-1", "virtlab-2"]
        .iter()
        .map(|n| compile(&c, opts, n).unwrap())
        .collect();
    let mut ends: Vec<(Endpoint, std::net::IpAddr)> = (0..c.workloads.len())
        .map(|i| (Endpoint::Workload(i), c.workloads[i].addresses[0]))
        .collect();
    for a in ["198.51.100.7", "192.0.2.53", "203.0.113.1", NODE_1_IP] {
        ends.push((Endpoint::External(ip(a)), ip(a)));
    }
    let mut denied = 0;
    for (s, sa) in &ends {
        for (d, da) in &ends {
            if sa == da || matches!((s, d), (Endpoint::External(_), Endpoint::External(_))) {
                continue;
            }
            for port in [22, 53, 80, 10250] {
                let expected = evaluate(&c, opts, s, d, Protocol::Tcp, port).allowed;
                let got = tables
                    .iter()
                    .all(|t| t.verdict(*sa, *da, Protocol::Tcp, port));
                assert_eq!(got, expected, "{sa} -> {da} TCP {port}");
                denied += usize::from(!got);
            }
        }
    }
    assert!(denied > 0);
    // Fail closed: vm-b's egress of any protocol, ICMP included, is denied...
    let (a, b) = (ip("10.66.20.70"), ip("10.66.20.71"));
    assert!(!verdict_other_protocol(
        tables[0].ir(),
        b,
        ip("203.0.113.1")
    ));
    // ...except to the network the Admin tier accepts first.
    assert!(verdict_other_protocol(
        tables[0].ir(),
        b,
        ip("198.51.100.7")
    ));
    // The Admin Deny overrides vm-a's NetworkPolicy, which allows another-project.
    assert!(!tables[1].verdict(ip("10.66.20.72"), a, Protocol::Tcp, 22));
    assert!(tables[1].verdict(ip("10.66.20.72"), a, Protocol::Tcp, 23));
}

#[test]
fn an_admin_rules_log_prefix_reads_back_as_the_rule_that_denied() {
    let c = tiered_users_page();
    let r = compile(&c, EvalOptions::default(), "virtlab-2").unwrap();
    let prefix = "netpol:ingress:cnp/deny-ssh-from-another-project[0]";
    assert!(
        r.text.contains(&format!("log prefix \"{prefix}\"")),
        "{}",
        r.text
    );
    let (direction, chain) = parse_denied_log_prefix(prefix).unwrap();
    let info = r
        .denied_chain(direction, chain)
        .expect("a chain of this ruleset");
    let rule = info.admin_rule.expect("an admin rule");
    assert_eq!(rule.policy, "cnp/deny-ssh-from-another-project");
    assert_eq!((rule.direction, rule.rule), (Direction::Ingress, 0));
    assert_eq!(info.policies, ["cnp/deny-ssh-from-another-project"]);
    // Every admin Deny rule of the ruleset reads back the same way.
    for rule in r.admin_rule_counters() {
        let p = netpol_nft::denied_log_prefix(rule.direction, &rule.log);
        assert!(p.len() <= 127, "{p}");
        let (d, chain) = parse_denied_log_prefix(&p).unwrap();
        let found = r.denied_chain(d, chain).map(|i| i.admin_rule.is_some());
        assert_eq!(
            found,
            Some(rule.action == AdminAction::Deny).filter(|x| *x),
            "{p}"
        );
    }
}

#[test]
fn a_log_tail_of_a_long_policy_name_fits_the_kernels_prefix_and_stays_distinct() {
    let long = format!("cnp/{}", "n".repeat(253));
    let other = format!("cnp/{}m", "n".repeat(252));
    let (a, b) = (
        netpol_nft::admin_log_tail(&long, 99),
        netpol_nft::admin_log_tail(&other, 99),
    );
    assert_ne!(a, b);
    for t in [&a, &b] {
        let p = netpol_nft::denied_log_prefix(Direction::Egress, t);
        assert!(p.len() <= 127, "{p} is {} bytes", p.len());
        assert_eq!(
            parse_denied_log_prefix(&p),
            Some((Direction::Egress, t.as_str()))
        );
    }
    assert_eq!(netpol_nft::admin_log_tail("cnp/x", 3), "cnp/x[3]");
}
