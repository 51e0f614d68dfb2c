//! Random admin policies (ClusterNetworkPolicy of both tiers, AdminNetworkPolicy,
//! BaselineAdminNetworkPolicy) over a cluster from [`super::cluster`], for the property tests
//! that hold the fast paths' tiers against the evaluator's walk.
//!
//! Small vocabularies again: priorities 0, 1 and 5 (so ties between policies happen), every
//! action, subjects and peers from the same selectors as NetworkPolicy, `networks` from the same
//! CIDRs, `nodes` selecting by labels the nodes get here, `domainNames` that (in shapes that say
//! so) resolve to documentation addresses and to a workload's address, and the rare peer of an
//! unknown kind that fails closed.

use std::collections::BTreeMap;
use std::net::IpAddr;

use netpol_core::{
    AdminAction, AdminApi, AdminPeer, AdminPolicy, AdminPort, AdminRule, AdminSubject, AdminTier,
    Cluster,
};
use proptest::prelude::*;

use super::{labels, parse, protocol, selector, CIDRS, NUMBERS, PORT_NAMES};

/// What the admin policies of a cluster look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierShape {
    /// How many admin policies.
    pub policies: std::ops::Range<usize>,
    /// Whether `domainNames` peers appear, with names resolved (`Cluster::resolved_names`) to
    /// addresses the cluster uses. The kernel does not enforce them, so compiler tests leave
    /// them out.
    pub domain_names: bool,
}

impl TierShape {
    /// For the analyzer: up to four admin policies, domain names resolved.
    pub fn for_the_analyzer() -> Self {
        TierShape {
            policies: 0..5,
            domain_names: true,
        }
    }

    /// For the node compiler: up to three admin policies, no domain names.
    pub fn for_the_compiler() -> Self {
        TierShape {
            policies: 0..4,
            domain_names: false,
        }
    }
}

/// The names `domainNames` peers draw from, and what [`with_tiers`] resolves them to.
const DOMAINS: [&str; 3] = ["*.example.com", "api.example.com", "db.example.org"];
const RESOLVED: [(&str, &str); 3] = [
    ("api.example.com", "192.0.2.5"),
    ("www.example.com", "10.0.0.1"),
    ("db.example.org", "203.0.113.9"),
];

/// `base`'s clusters with random admin policies named `a0, a1, ...` added (and, for `nodes`
/// peers, random labels on their nodes).
pub fn with_tiers(
    base: impl Strategy<Value = Cluster>,
    shape: &TierShape,
) -> impl Strategy<Value = Cluster> {
    let shape = shape.clone();
    base.prop_flat_map(move |c| {
        let node_labels = prop::collection::vec(labels(), c.nodes.len());
        (
            Just(c),
            node_labels,
            prop::collection::vec(admin_policy(shape.domain_names), shape.policies.clone()),
        )
    })
    .prop_map(move |(mut c, node_labels, mut admin)| {
        for (node, l) in c.nodes.iter_mut().zip(node_labels) {
            node.labels = l;
        }
        for (i, p) in admin.iter_mut().enumerate() {
            p.name = format!("a{i}");
        }
        c.admin_policies = admin;
        if shape.domain_names {
            c.resolved_names = resolved();
        }
        c
    })
}

fn resolved() -> BTreeMap<String, Vec<IpAddr>> {
    RESOLVED
        .iter()
        .map(|(name, a)| (name.to_string(), vec![parse(a)]))
        .collect()
}

/// One admin policy of any API, named `a` (renamed by [`with_tiers`]).
pub fn admin_policy(domain_names: bool) -> impl Strategy<Value = AdminPolicy> {
    (
        prop_oneof![
            Just((AdminApi::ClusterNetworkPolicy, AdminTier::Admin)),
            Just((AdminApi::ClusterNetworkPolicy, AdminTier::Baseline)),
            Just((AdminApi::AdminNetworkPolicy, AdminTier::Admin)),
            Just((AdminApi::BaselineAdminNetworkPolicy, AdminTier::Baseline)),
        ],
        prop::sample::select(vec![0u32, 1, 5]),
        subject(),
        prop::collection::vec(admin_rule(false, domain_names), 0..3),
        prop::collection::vec(admin_rule(true, domain_names), 0..3),
    )
        .prop_map(
            |((api, tier), priority, subject, ingress, egress)| AdminPolicy {
                api,
                name: "a".to_string(),
                tier,
                priority,
                subject,
                ingress,
                egress,
                origin: None,
            },
        )
}

fn subject() -> impl Strategy<Value = AdminSubject> {
    prop_oneof![
        selector().prop_map(AdminSubject::Namespaces),
        (selector(), selector()).prop_map(|(namespace_selector, pod_selector)| {
            AdminSubject::Pods {
                namespace_selector,
                pod_selector,
            }
        }),
    ]
}

fn admin_rule(egress: bool, domain_names: bool) -> impl Strategy<Value = AdminRule> {
    (
        prop::sample::select(vec![
            AdminAction::Accept,
            AdminAction::Deny,
            AdminAction::Pass,
        ]),
        prop::collection::vec(admin_peer(egress, domain_names), 1..3),
        prop::option::of(prop::collection::vec(admin_port(), 1..3)),
    )
        .prop_map(|(action, peers, ports)| AdminRule {
            name: None,
            action,
            peers,
            ports,
            origin: None,
        })
}

fn admin_peer(egress: bool, domain_names: bool) -> BoxedStrategy<AdminPeer> {
    let selectors = prop_oneof![
        selector().prop_map(AdminPeer::Namespaces),
        (selector(), selector()).prop_map(|(namespace_selector, pod_selector)| {
            AdminPeer::Pods {
                namespace_selector,
                pod_selector,
            }
        }),
    ];
    if !egress {
        return prop_oneof![12 => selectors, 1 => Just(AdminPeer::Unknown)].boxed();
    }
    let networks = prop::collection::vec(0..CIDRS.len(), 1..3)
        .prop_map(|cs| AdminPeer::Networks(cs.into_iter().map(|c| parse(CIDRS[c])).collect()));
    let domains = prop::sample::subsequence(DOMAINS.to_vec(), 1..=2)
        .prop_map(|d| AdminPeer::DomainNames(d.into_iter().map(String::from).collect()));
    let domain_weight = if domain_names { 2 } else { 0 };
    prop_oneof![
        6 => selectors,
        4 => networks,
        2 => selector().prop_map(AdminPeer::Nodes),
        domain_weight => domains,
        1 => Just(AdminPeer::Unknown),
    ]
    .boxed()
}

fn admin_port() -> impl Strategy<Value = AdminPort> {
    prop_oneof![
        1 => protocol().prop_map(|protocol| AdminPort::Protocol { protocol, ports: None }),
        3 => (protocol(), 0..NUMBERS.len()).prop_map(|(protocol, i)| AdminPort::Protocol {
            protocol,
            ports: Some((NUMBERS[i], NUMBERS[i])),
        }),
        2 => (protocol(), 0..NUMBERS.len(), 1u16..3).prop_map(|(protocol, i, len)| {
            let start = NUMBERS[i].min(65534);
            AdminPort::Protocol { protocol, ports: Some((start, start.saturating_add(len))) }
        }),
        2 => (0..PORT_NAMES.len()).prop_map(|i| AdminPort::Named(PORT_NAMES[i].into())),
    ]
}
