//! Admin policies for the synthetic clusters: `n` policies of every API and tier, with rules of
//! every action over namespace selectors and networks, on ports the synthetic NetworkPolicies do
//! not use (so the flows those allow stay allowed, after walking the tiers). Shared by
//! netpol-nft's cost test, its per-packet and update benchmarks and the agent's benchmark.

use crate::build::sel;
use netpol_core::{
    AdminAction, AdminApi, AdminPeer, AdminPolicy, AdminPort, AdminRule, AdminSubject, AdminTier,
    LabelSelector, Protocol,
};

const TEAMS: [&str; 5] = ["alpha", "beta", "gamma", "delta", "platform"];
const ENVS: [&str; 3] = ["prod", "staging", "dev"];

fn tcp(n: usize) -> Option<Vec<AdminPort>> {
    Some(vec![AdminPort::Protocol {
        protocol: Protocol::Tcp,
        ports: Some((n as u16, n as u16)),
    }])
}

fn rule(action: AdminAction, peer: AdminPeer, ports: Option<Vec<AdminPort>>) -> AdminRule {
    AdminRule {
        name: None,
        action,
        peers: vec![peer],
        ports,
        origin: None,
    }
}

fn network(prefix: &str, i: usize) -> AdminPeer {
    let cidr = format!("{prefix}.{}/32", i % 256);
    AdminPeer::Networks(vec![cidr
        .parse()
        .unwrap_or_else(|e| panic!("test CIDR {cidr:?}: {e}"))])
}

/// `n` admin policies named `adm-<i>`, a quarter of each kind: Admin Deny, Admin Pass/Accept,
/// AdminNetworkPolicy Deny, Baseline Deny.
pub fn synthetic_admin_policies(n: usize) -> Vec<AdminPolicy> {
    let everyone = || AdminSubject::Namespaces(LabelSelector::default());
    (0..n)
        .map(|i| {
            let team = |k: usize| sel(&[("team", TEAMS[(i + k) % TEAMS.len()])]);
            let env = sel(&[("env", ENVS[i % ENVS.len()])]);
            let (api, tier, subject, ingress, egress) = match i % 4 {
                0 => (
                    AdminApi::ClusterNetworkPolicy,
                    AdminTier::Admin,
                    AdminSubject::Namespaces(team(0)),
                    vec![rule(
                        AdminAction::Deny,
                        AdminPeer::Namespaces(env),
                        tcp(20000 + i),
                    )],
                    vec![rule(AdminAction::Deny, network("203.0.113", i), None)],
                ),
                1 => (
                    AdminApi::ClusterNetworkPolicy,
                    AdminTier::Admin,
                    everyone(),
                    vec![rule(
                        AdminAction::Pass,
                        AdminPeer::Namespaces(team(1)),
                        tcp(21000 + i),
                    )],
                    vec![rule(
                        AdminAction::Accept,
                        network("198.51.100", i),
                        tcp(443),
                    )],
                ),
                2 => (
                    AdminApi::AdminNetworkPolicy,
                    AdminTier::Admin,
                    AdminSubject::Pods {
                        namespace_selector: env,
                        pod_selector: LabelSelector::default(),
                    },
                    Vec::new(),
                    vec![rule(
                        AdminAction::Deny,
                        AdminPeer::Namespaces(sel(&[("compliance", "pci")])),
                        tcp(22000 + i),
                    )],
                ),
                _ => (
                    AdminApi::ClusterNetworkPolicy,
                    AdminTier::Baseline,
                    everyone(),
                    vec![rule(
                        AdminAction::Deny,
                        AdminPeer::Namespaces(LabelSelector::default()),
                        tcp(23000 + i),
                    )],
                    vec![rule(AdminAction::Deny, network("192.0.2", i), None)],
                ),
            };
            AdminPolicy {
                api,
                name: format!("adm-{i}"),
                tier,
                priority: i as u32,
                subject,
                ingress,
                egress,
                origin: None,
            }
        })
        .collect()
}
