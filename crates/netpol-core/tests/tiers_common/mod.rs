//! The small cluster the admin-tier semantics tests share, and readers of a walk's steps.

// Each test file uses a part of it.
#![allow(dead_code, unused_imports)]

use netpol_core::eval::{AdminRuleMatch, DirectionVerdict, TierOutcome, TierStep};
use netpol_core::model::*;

pub use netpol_test_support::*;
pub use Protocol::{Sctp, Tcp, Udp};

/// Namespaces `a` (team=a), `b` (team=b), `c` (team=c); pods `a/web` (named port `http` TCP
/// 8080), `a/db`, `b/client` (named port `http` TCP 9090), `b/web`, `c/other`; IPv4 only; no
/// policies.
pub fn base() -> Cluster {
    let ns = vec![
        namespace("a", &[("team", "a")]),
        namespace("b", &[("team", "b")]),
        namespace("c", &[("team", "c")]),
    ];
    let ws = vec![
        pod(
            "a",
            "web",
            &[("app", "web")],
            &["10.0.0.1"],
            &[("http", Tcp, 8080)],
        ),
        pod("a", "db", &[("app", "db")], &["10.0.0.2"], &[]),
        pod(
            "b",
            "client",
            &[("app", "client")],
            &["10.0.1.1"],
            &[("http", Tcp, 9090)],
        ),
        pod("b", "web", &[("app", "web")], &["10.0.1.2"], &[]),
        pod("c", "other", &[("app", "other")], &["10.0.2.1"], &[]),
    ];
    cluster(ns, ws, vec![])
}

/// `base()` with these NetworkPolicies and admin policies.
pub fn with(policies: Vec<Policy>, admin: Vec<AdminPolicy>) -> Cluster {
    let mut c = base();
    c.policies = policies;
    c.admin_policies = admin;
    c
}

/// An Admin tier ClusterNetworkPolicy over the namespace called `ns`.
pub fn admin_over(priority: u32, name: &str, ns: &str) -> AdminPolicy {
    cnp(
        AdminTier::Admin,
        priority,
        name,
        subject_namespaces(ns_name(ns)),
    )
}

/// A Baseline tier ClusterNetworkPolicy over the namespace called `ns`.
pub fn baseline_over(priority: u32, name: &str, ns: &str) -> AdminPolicy {
    cnp(
        AdminTier::Baseline,
        priority,
        name,
        subject_namespaces(ns_name(ns)),
    )
}

/// The namespaces peer of the namespace called `ns`.
pub fn from_ns(ns: &str) -> Vec<AdminPeer> {
    vec![peer_namespaces(ns_name(ns))]
}

/// Every workload of every namespace.
pub fn everyone() -> Vec<AdminPeer> {
    vec![peer_namespaces(LabelSelector::everything())]
}

/// A NetworkPolicy rule admitting every workload of every namespace, on every port.
pub fn from_anywhere_in_cluster() -> Rule {
    rule(
        vec![Peer::Selector {
            pod_selector: None,
            namespace_selector: Some(LabelSelector::everything()),
        }],
        vec![],
    )
}

/// The steps of a side that walked the tiers; panics on a side that did not.
pub fn steps(side: &DirectionVerdict) -> &[TierStep] {
    match side {
        DirectionVerdict::Tiered { steps, .. } => steps,
        other => panic!("expected a walk through the tiers, got {other:?}"),
    }
}

/// The rule matches of a walk, in order (a Pass and then the deciding rule, for example).
pub fn matches(side: &DirectionVerdict) -> Vec<&AdminRuleMatch> {
    steps(side)
        .iter()
        .filter_map(|s| match s {
            TierStep::Admin {
                outcome: TierOutcome::Matched(m),
            }
            | TierStep::Baseline {
                outcome: TierOutcome::Matched(m),
            } => Some(m),
            _ => None,
        })
        .collect()
}

/// `(policy, rule index, action)` of the last rule that matched in a walk.
pub fn decided_by(side: &DirectionVerdict) -> (String, usize, AdminAction) {
    let m = matches(side)
        .pop()
        .unwrap_or_else(|| panic!("no admin rule matched in {side:?}"));
    (m.policy.clone(), m.rule, m.action)
}
