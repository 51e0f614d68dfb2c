//! The lint checks about the admin tiers (NP011, NP012) and NP004 under an Admin-tier DNS
//! guarantee, each on a case that must be found and one that must not.

use netpol_core::lint::{lint, Check, Finding};
use netpol_core::model::*;
use netpol_test_support::*;

fn found(c: &Cluster, check: Check) -> Vec<Finding> {
    lint(c, EvalOptions::default())
        .findings
        .into_iter()
        .filter(|f| f.check == check)
        .collect()
}

fn admin(name: &str, tier: AdminTier, priority: u32, subject: AdminSubject) -> AdminPolicy {
    cnp(tier, priority, name, subject)
}

fn every_namespace() -> AdminSubject {
    subject_namespaces(LabelSelector::everything())
}

fn namespace_of(name: &str) -> AdminSubject {
    subject_namespaces(ns_name(name))
}

fn to_namespace(action: AdminAction, name: &str, ports: Option<Vec<AdminPort>>) -> AdminRule {
    AdminRule {
        ports,
        ..admin_rule(action, vec![peer_namespaces(ns_name(name))])
    }
}

fn shop() -> Cluster {
    cluster(
        namespaces(&["shop", "bank"]),
        vec![
            vm("shop", "web", &[("app", "web")], &["10.0.0.5"]),
            vm("bank", "ledger", &[("app", "ledger")], &["10.0.1.5"]),
            pod(
                "kube-system",
                "coredns",
                &[("k8s-app", "kube-dns")],
                &["10.0.9.53"],
                &[],
            ),
        ],
        vec![],
    )
}

#[test]
fn two_admin_policies_of_one_tier_with_equal_priority_selecting_one_workload_are_a_tie() {
    let mut c = shop();
    let mut a = admin("a", AdminTier::Admin, 5, every_namespace());
    a.egress = vec![to_namespace(AdminAction::Deny, "bank", None)];
    let mut b = admin("b", AdminTier::Admin, 5, namespace_of("shop"));
    b.egress = vec![to_namespace(AdminAction::Accept, "bank", None)];
    c.admin_policies = vec![b.clone(), a.clone()];
    let ties = found(&c, Check::AdminPriorityTie);
    assert_eq!(ties.len(), 1, "{ties:?}");
    assert!(
        ties[0].message.contains("netpol takes cnp/a first"),
        "{}",
        ties[0].message
    );

    // Distinct priorities, or another tier, or no common direction: no tie.
    b.priority = 6;
    c.admin_policies = vec![a.clone(), b.clone()];
    assert!(found(&c, Check::AdminPriorityTie).is_empty());
    b.priority = 5;
    b.tier = AdminTier::Baseline;
    c.admin_policies = vec![a.clone(), b.clone()];
    assert!(found(&c, Check::AdminPriorityTie).is_empty());
    b.tier = AdminTier::Admin;
    b.ingress = std::mem::take(&mut b.egress);
    c.admin_policies = vec![a, b];
    assert!(found(&c, Check::AdminPriorityTie).is_empty());
}

#[test]
fn a_network_policy_rule_that_an_admin_deny_overrides_is_shadowed() {
    let mut c = shop();
    let mut allow = policy("shop", "to-bank", sel(&[("app", "web")]), false, true);
    allow.egress = vec![rule(vec![namespace_named("bank")], vec![tcp(443)])];
    c.policies = vec![allow];
    let mut deny = admin("no-bank", AdminTier::Admin, 1, every_namespace());
    deny.egress = vec![to_namespace(
        AdminAction::Deny,
        "bank",
        Some(vec![AdminPort::Protocol {
            protocol: Protocol::Tcp,
            ports: Some((400, 500)),
        }]),
    )];
    c.admin_policies = vec![deny.clone()];
    let shadowed = found(&c, Check::ShadowedByAdminDeny);
    assert_eq!(shadowed.len(), 1, "{shadowed:?}");
    assert!(
        shadowed[0].message.contains("cnp/no-bank egress[0]"),
        "{}",
        shadowed[0].message
    );

    // The Deny on other ports, or a Pass, leaves the NetworkPolicy rule in charge.
    deny.egress[0].ports = Some(vec![AdminPort::Protocol {
        protocol: Protocol::Tcp,
        ports: Some((80, 80)),
    }]);
    c.admin_policies = vec![deny.clone()];
    assert!(found(&c, Check::ShadowedByAdminDeny).is_empty());
    deny.egress[0].ports = None;
    deny.egress[0].action = AdminAction::Pass;
    c.admin_policies = vec![deny];
    assert!(found(&c, Check::ShadowedByAdminDeny).is_empty());
}

#[test]
fn egress_isolation_without_dns_is_fine_when_the_admin_tier_accepts_dns() {
    let mut c = shop();
    let mut isolate = policy("shop", "egress", sel(&[]), false, true);
    isolate.egress = vec![rule(vec![namespace_named("bank")], vec![])];
    c.policies = vec![isolate];
    assert_eq!(found(&c, Check::EgressWithoutDns).len(), 1);

    let dns_port = |protocol| AdminPort::Protocol {
        protocol,
        ports: Some((53, 53)),
    };
    let mut dns = admin("dns", AdminTier::Admin, 0, every_namespace());
    dns.egress = vec![to_namespace(
        AdminAction::Accept,
        "kube-system",
        Some(vec![dns_port(Protocol::Udp)]),
    )];
    c.admin_policies = vec![dns.clone()];
    let only_udp = found(&c, Check::EgressWithoutDns);
    assert_eq!(only_udp.len(), 1, "TCP/53 is still missing");
    assert!(
        only_udp[0].message.contains("TCP/53"),
        "{}",
        only_udp[0].message
    );

    dns.egress[0].ports = Some(vec![dns_port(Protocol::Udp), dns_port(Protocol::Tcp)]);
    c.admin_policies = vec![dns];
    assert!(found(&c, Check::EgressWithoutDns).is_empty());
}
