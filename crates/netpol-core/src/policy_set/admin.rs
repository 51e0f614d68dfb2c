//! The admin tiers in the policy set: every ClusterNetworkPolicy, AdminNetworkPolicy and
//! BaselineAdminNetworkPolicy compiled against the same distinct peers, port sets and atoms as
//! NetworkPolicy, and the order the tiers walk them ([`crate::model::admin_order`]).
//!
//! An admin rule's peers become distinct peers of their own kinds: `namespaces`/`pods` are
//! selector peers (a namespace selector, with or without a pod selector), each `networks` CIDR a
//! [`PeerKey::Network`] (which always matches workload addresses, unlike an ipBlock under
//! Cilium's semantics), `nodes` a [`PeerKey::Nodes`], `domainNames` a [`PeerKey::DomainNames`].
//! Its `protocols` become an ordinary port set: a `destinationNamedPort` is the named port under
//! each protocol (the destination's container port of that name decides the protocol), no
//! `protocols` is every port.

use std::collections::HashMap;

use ipnet::IpNet;

use crate::model::{
    admin_order, AdminAction, AdminPort, AdminRule, AdminTier, Cluster, Direction, PolicyPort,
    PortSpec, Protocol,
};
use crate::policy_set::peers::{BlockId, PeerKey, Peers};
use crate::policy_set::ports::{Atoms, PortNames, PortSets};
use crate::policy_set::rules::{
    direction_index, Action, AdminPolicyId, AdminRuleId, CompiledAdminPolicy, CompiledAdminRule,
    RulePeers, Tier,
};

/// The compiled admin policies and rules, and the walk order.
#[derive(Default)]
pub(super) struct AdminTables {
    pub(super) policies: Vec<CompiledAdminPolicy>,
    pub(super) rules: Vec<CompiledAdminRule>,
    /// Policy ids in walk order: the Admin tier's, then the Baseline tier's.
    pub(super) walk: Vec<AdminPolicyId>,
}

/// What compiling the admin tables shares with the NetworkPolicy tables.
pub(super) struct Shared<'a> {
    pub(super) peers: &'a mut Peers,
    pub(super) port_sets: &'a mut PortSets,
    pub(super) atoms: &'a Atoms,
    pub(super) port_names: &'a PortNames,
    /// The block standing for each `networks` CIDR, when workloads are grouped by them.
    pub(super) networks: &'a HashMap<IpNet, BlockId>,
}

impl AdminTables {
    pub(super) fn compile(cluster: &Cluster, shared: &mut Shared<'_>) -> Self {
        let mut tables = AdminTables::default();
        for (i, p) in cluster.admin_policies.iter().enumerate() {
            let id = AdminPolicyId(u32::try_from(i).unwrap_or(u32::MAX));
            let subjects = shared.peers.intern(PeerKey::subjects_of_admin(&p.subject));
            tables.policies.push(CompiledAdminPolicy {
                id,
                key: p.key(),
                tier: tier_of(p.tier),
                priority: p.priority,
                subjects,
                rules: [Vec::new(), Vec::new()],
            });
            for d in [Direction::Ingress, Direction::Egress] {
                for (index, rule) in p.rules(d).iter().enumerate() {
                    tables.push_rule(shared, id, d, index, rule);
                }
            }
        }
        tables.walk = admin_order(&cluster.admin_policies)
            .into_iter()
            .map(|i| AdminPolicyId(u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        tables
    }

    fn push_rule(
        &mut self,
        shared: &mut Shared<'_>,
        policy: AdminPolicyId,
        direction: Direction,
        index: usize,
        rule: &AdminRule,
    ) {
        let fail_closed = fails_closed(rule);
        let (action, peers, entries) = if fail_closed {
            (Action::Deny, RulePeers::Any, Vec::new())
        } else if has_unknown_peer(rule) {
            // An Accept rule with a peer of an unknown kind matches no traffic at all.
            (Action::Allow, RulePeers::Listed(Vec::new()), Vec::new())
        } else {
            let peers = rule
                .peers
                .iter()
                .flat_map(PeerKey::of_admin)
                .map(|key| intern_admin_peer(shared, key))
                .collect();
            (
                action_of(rule.action),
                RulePeers::Listed(peers),
                port_entries(rule.ports.as_deref()),
            )
        };
        let ports = shared
            .port_sets
            .intern(&entries, shared.atoms, shared.port_names);
        let id = AdminRuleId(u32::try_from(self.rules.len()).unwrap_or(u32::MAX));
        self.rules.push(CompiledAdminRule {
            action,
            direction,
            policy,
            index,
            peers,
            ports,
            fail_closed,
        });
        self.policies[policy.index()].rules[direction_index(direction)].push(id);
    }
}

/// A Deny or Pass rule with a peer of an unknown kind is Deny all (the API's "fail closed"); an
/// Accept rule with one matches no traffic at all (see [`has_unknown_peer`]).
pub(crate) fn fails_closed(rule: &AdminRule) -> bool {
    rule.action != AdminAction::Accept && has_unknown_peer(rule)
}

/// Whether a rule has a peer of an unknown kind (a newer CRD's).
pub(crate) fn has_unknown_peer(rule: &AdminRule) -> bool {
    rule.peers.contains(&crate::model::AdminPeer::Unknown)
}

fn intern_admin_peer(shared: &mut Shared<'_>, key: PeerKey) -> crate::policy_set::PeerId {
    let block = key.network().and_then(|n| shared.networks.get(n).copied());
    let id = shared.peers.intern(key);
    if block.is_some() {
        shared.peers.block_of[id.index()] = block;
    }
    id
}

fn tier_of(tier: AdminTier) -> Tier {
    match tier {
        AdminTier::Admin => Tier::Admin,
        AdminTier::Baseline => Tier::Baseline,
    }
}

fn action_of(action: AdminAction) -> Action {
    match action {
        AdminAction::Accept => Action::Allow,
        AdminAction::Deny => Action::Deny,
        AdminAction::Pass => Action::Pass,
    }
}

/// An admin rule's `protocols` as NetworkPolicy port entries (empty: every port).
pub(crate) fn port_entries(ports: Option<&[AdminPort]>) -> Vec<PolicyPort> {
    let Some(ports) = ports else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(ports.len());
    for port in ports {
        match port {
            AdminPort::Protocol { protocol, ports } => out.push(PolicyPort {
                protocol: *protocol,
                port: ports.map(|(start, end)| {
                    if start == end {
                        PortSpec::Number(start)
                    } else {
                        PortSpec::Range { start, end }
                    }
                }),
            }),
            AdminPort::Named(name) => out.extend(Protocol::ALL.map(|protocol| PolicyPort {
                protocol,
                port: Some(PortSpec::Named(name.clone())),
            })),
        }
    }
    out
}

/// Every `networks` CIDR of the admin policies, in order of first appearance, then a host
/// network for every address a `domainNames` peer matches (`Cluster::resolved_names`): those
/// group identities too, so that the analyzer can tell the workloads a resolved name points at
/// from their look-alikes.
pub(super) fn distinct_networks(cluster: &Cluster) -> Vec<IpNet> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<IpNet> = Vec::new();
    let mut hosts: Vec<IpNet> = Vec::new();
    for p in &cluster.admin_policies {
        for rule in p.ingress.iter().chain(&p.egress) {
            for peer in &rule.peers {
                match peer {
                    crate::model::AdminPeer::Networks(nets) => {
                        out.extend(nets.iter().copied().filter(|n| seen.insert(*n)));
                    }
                    crate::model::AdminPeer::DomainNames(names) => {
                        hosts.extend(
                            cluster
                                .resolved_addresses(names)
                                .into_iter()
                                .map(IpNet::from),
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    out.extend(hosts.into_iter().filter(|n| seen.insert(*n)));
    out
}
