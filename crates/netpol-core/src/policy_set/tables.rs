//! The rule tables of a policy set: every policy (subjects, isolation) and every rule (peers,
//! port set) compiled once, in evaluation order, with the distinct peers and port sets they use.

use std::collections::HashMap;

use ipnet::IpNet;

use crate::model::{Cluster, Direction, IpBlock, Peer, Policy};
use crate::policy_set::admin::{AdminTables, Shared};
use crate::policy_set::identities::Namespaces;
use crate::policy_set::peers::{BlockId, PeerId, PeerKey, Peers};
use crate::policy_set::ports::{Atoms, PortNames, PortSets};
use crate::policy_set::rules::{
    direction_index, Action, CompiledPolicy, CompiledRule, PolicyId, RuleId, RulePeers, Tier,
};

/// What the rule tables are compiled from.
pub(super) struct TableInputs<'a> {
    pub(super) cluster: &'a Cluster,
    pub(super) namespaces: &'a Namespaces,
    /// The ipBlocks that can match workloads: the NetworkPolicy ones (when they can) first,
    /// then every admin `networks` CIDR (empty when identities are not grouped by blocks).
    pub(super) blocks: &'a [IpBlock],
    /// How many of `blocks` are NetworkPolicy ipBlocks; the rest are admin networks.
    pub(super) policy_blocks: usize,
}

/// Policies, rules and what they reference.
pub(super) struct RuleTables {
    pub(super) atoms: Atoms,
    pub(super) peers: Peers,
    pub(super) port_sets: PortSets,
    pub(super) policies: Vec<CompiledPolicy>,
    /// Policy ids sorted by key (ties by index).
    pub(super) key_order: Vec<PolicyId>,
    pub(super) rules: Vec<CompiledRule>,
    /// Namespace index -> its policies in key order.
    pub(super) namespace_policies: HashMap<usize, Vec<PolicyId>>,
    /// The admin tiers.
    pub(super) admin: AdminTables,
}

/// A compile in progress.
struct Builder<'a> {
    inputs: &'a TableInputs<'a>,
    atoms: Atoms,
    port_names: PortNames,
    peers: Peers,
    port_sets: PortSets,
    policies: Vec<CompiledPolicy>,
    key_order: Vec<PolicyId>,
    rules: Vec<CompiledRule>,
    namespace_policies: HashMap<usize, Vec<PolicyId>>,
}

impl RuleTables {
    pub(super) fn compile(inputs: &TableInputs<'_>) -> Self {
        let cluster = inputs.cluster;
        let mut b = Builder {
            inputs,
            atoms: Atoms::of_cluster(cluster),
            port_names: PortNames::of_cluster(cluster),
            peers: Peers::new(),
            port_sets: PortSets::new(),
            policies: Vec::with_capacity(cluster.policies.len()),
            key_order: key_order(cluster),
            rules: Vec::new(),
            namespace_policies: HashMap::new(),
        };
        b.compile_policies(cluster);
        let networks: HashMap<IpNet, BlockId> = inputs
            .blocks
            .iter()
            .enumerate()
            .skip(inputs.policy_blocks)
            .map(|(i, b)| (b.cidr, BlockId(u32::try_from(i).unwrap_or(u32::MAX))))
            .collect();
        let admin = AdminTables::compile(
            cluster,
            &mut Shared {
                peers: &mut b.peers,
                port_sets: &mut b.port_sets,
                atoms: &b.atoms,
                port_names: &b.port_names,
                networks: &networks,
            },
        );
        RuleTables {
            admin,
            atoms: b.atoms,
            peers: b.peers,
            port_sets: b.port_sets,
            policies: b.policies,
            key_order: b.key_order,
            rules: b.rules,
            namespace_policies: b.namespace_policies,
        }
    }
}

impl Builder<'_> {
    fn compile_policies(&mut self, cluster: &Cluster) {
        let block_ids: HashMap<IpBlock, BlockId> = self
            .inputs
            .blocks
            .iter()
            .take(self.inputs.policy_blocks)
            .enumerate()
            .map(|(i, b)| (b.clone(), BlockId(u32::try_from(i).unwrap_or(u32::MAX))))
            .collect();
        for (i, p) in cluster.policies.iter().enumerate() {
            let id = PolicyId(u32::try_from(i).unwrap_or(u32::MAX));
            let subjects = self.peers.intern(PeerKey::subjects_of(p));
            self.policies.push(CompiledPolicy {
                id,
                key: p.key(),
                tier: Tier::NetworkPolicy,
                priority: 0,
                subjects,
                isolates: [p.affects_ingress, p.affects_egress],
                rules: [Vec::new(), Vec::new()],
            });
        }
        for rank in 0..self.key_order.len() {
            let id = self.key_order[rank];
            let p = &cluster.policies[id.index()];
            let ns = self.inputs.namespaces.get(&p.namespace);
            self.namespace_policies.entry(ns).or_default().push(id);
            for d in [Direction::Ingress, Direction::Egress] {
                if p.affects(d) {
                    self.compile_rules(p, id, d, &block_ids);
                }
            }
        }
    }

    /// Appends the rules of one direction of a policy (the caller goes in evaluation order).
    fn compile_rules(
        &mut self,
        p: &Policy,
        id: PolicyId,
        d: Direction,
        block_ids: &HashMap<IpBlock, BlockId>,
    ) {
        for (index, rule) in p.rules(d).iter().enumerate() {
            let peers = if rule.peers.is_empty() {
                RulePeers::Any
            } else {
                RulePeers::Listed(
                    rule.peers
                        .iter()
                        .map(|peer| self.intern_peer(p, peer, block_ids))
                        .collect(),
                )
            };
            let ports = self
                .port_sets
                .intern(&rule.ports, &self.atoms, &self.port_names);
            let rule_id = RuleId(u32::try_from(self.rules.len()).unwrap_or(u32::MAX));
            self.rules.push(CompiledRule {
                tier: Tier::NetworkPolicy,
                priority: 0,
                action: Action::Allow,
                direction: d,
                policy: id,
                index,
                peers,
                ports,
            });
            self.policies[id.index()].rules[direction_index(d)].push(rule_id);
        }
    }

    fn intern_peer(
        &mut self,
        p: &Policy,
        peer: &Peer,
        block_ids: &HashMap<IpBlock, BlockId>,
    ) -> PeerId {
        let key = PeerKey::of(p, peer);
        let block = key.block().and_then(|b| block_ids.get(b).copied());
        let id = self.peers.intern(key);
        if block.is_some() {
            self.peers.block_of[id.index()] = block;
        }
        id
    }
}

/// Policy ids sorted by key; the index breaks ties.
fn key_order(cluster: &Cluster) -> Vec<PolicyId> {
    let mut order: Vec<usize> = (0..cluster.policies.len()).collect();
    // Cached: the key is a fresh String, too costly to build on every comparison.
    order.sort_by_cached_key(|&i| (cluster.policies[i].key(), i));
    order
        .into_iter()
        .map(|i| PolicyId(u32::try_from(i).unwrap_or(u32::MAX)))
        .collect()
}
