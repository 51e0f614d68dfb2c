//! The compiled policy set: one cluster's policies, built once, in the form both fast paths (the
//! bitset [`crate::Analyzer`] and the nftables compiler) consume. Neither fast path matches peers
//! on its own; the plain per-pair evaluator ([`crate::evaluate`]) stays independent of all this,
//! as the oracle the property tests hold both against.
//!
//! What it holds:
//! * **identities** ([`identities`]): workloads no selector, named port or ipBlock can tell apart;
//! * **distinct peers** ([`peers`]): every selector peer and ipBlock once, evaluated once into the
//!   identities it matches (selectors) or the addresses it contains (blocks); a policy's subjects
//!   are a selector evaluated the same way;
//! * **port sets and atoms** ([`ports`]): every distinct `ports` list once, compiled against the
//!   atoms of the port space;
//! * **an ordered list of rules** ([`rules`]): each with tier, priority, action, subjects (its
//!   policy's), peers, ports and provenance, sorted in the order a direction walks them: tier,
//!   then priority, then policy key, then written order. Today every rule is tier NetworkPolicy,
//!   action Allow, priority 0; the admin tiers add rules, not structure.
//!
//! Selector peers are evaluated lazily and kept: the analyzer asks for every peer, a node's
//! compiler only for those of the policies isolating its workloads, so compiling one node does not
//! pay for the whole cluster's selectors.
//!
//! Everything is keyed by content (identities by what they are, peers by [`PeerKey`], port sets by
//! their entries), so a change of one policy or one workload maps onto a bounded part of the set:
//! see ARCHITECTURE.md ("Incremental compile") for how an update will use that.

mod admin;
pub(crate) use admin::{
    fails_closed as admin_fails_closed, has_unknown_peer as admin_has_unknown_peer,
};
pub mod identities;
pub mod peers;
pub mod ports;
pub mod rules;
mod tables;

use std::collections::HashMap;

use crate::bits::Bits;
use crate::model::{Cluster, Direction, EvalOptions, IpBlock, Peer, Workload};
use admin::AdminTables;
use identities::{Grouping, Identities, IdentityId, Namespaces};
use peers::{Blocks, MatchContext, PeerId, PeerKey, Peers};
use ports::{Atoms, PortNames, PortSet, PortSetId, PortSets};
use rules::{
    AdminPolicyId, AdminRuleId, CompiledAdminPolicy, CompiledAdminRule, CompiledPolicy,
    CompiledRule, PolicyId, Provenance, RuleId,
};
use tables::{RuleTables, TableInputs};

/// One cluster's policies compiled for the fast paths (see the module documentation).
pub struct PolicySet {
    opts: EvalOptions,
    grouping: Grouping,
    pub(crate) namespaces: Namespaces,
    pub(crate) identities: Identities,
    pub(crate) peers: Peers,
    pub(crate) blocks: Blocks,
    pub(crate) atoms: Atoms,
    port_sets: PortSets,
    policies: Vec<CompiledPolicy>,
    /// Policy ids sorted by key (ties by index).
    key_order: Vec<PolicyId>,
    rules: Vec<CompiledRule>,
    /// Namespace index -> its policies in key order (policies only select their own namespace).
    namespace_policies: HashMap<usize, Vec<PolicyId>>,
    admin: AdminTables,
}

impl PolicySet {
    /// Compiles the policies of `cluster` under `opts`.
    ///
    /// The identities (one pass over every workload) and the rule tables (one pass over every
    /// policy) do not depend on each other and are built on two threads.
    pub fn new(cluster: &Cluster, opts: EvalOptions) -> Self {
        PolicySet::with_grouping(cluster, opts, Grouping::Full)
    }

    /// A policy set whose identities only tell selectors apart ([`Grouping::Selectors`]): cheaper
    /// to build, enough for a node's compiler, not for the bitset analyzer (which rebuilds a full
    /// one when given this).
    pub fn for_selectors(cluster: &Cluster, opts: EvalOptions) -> Self {
        PolicySet::with_grouping(cluster, opts, Grouping::Selectors)
    }

    fn with_grouping(cluster: &Cluster, opts: EvalOptions, grouping: Grouping) -> Self {
        let namespaces = Namespaces::new(cluster);
        let full = grouping == Grouping::Full;
        let mut list = if full && opts.ipblock_matches_workloads {
            distinct_blocks(cluster)
        } else {
            Vec::new()
        };
        let policy_blocks = list.len();
        if full {
            // Admin networks always match workload addresses, whatever the option says of
            // ipBlocks.
            list.extend(
                admin::distinct_networks(cluster)
                    .into_iter()
                    .map(|cidr| IpBlock {
                        cidr,
                        except: Vec::new(),
                    }),
            );
        }
        let mut blocks = Blocks::new(list);
        let inputs = TableInputs {
            cluster,
            namespaces: &namespaces,
            blocks: &blocks.list,
            policy_blocks,
        };
        let (identities, tables) = std::thread::scope(|scope| {
            let tables = scope.spawn(|| RuleTables::compile(&inputs));
            // Port names are numbered the same way on both threads (one deterministic pass), so
            // identities and port sets agree on them without waiting for each other.
            let port_names = match grouping {
                Grouping::Full => PortNames::of_cluster(cluster),
                Grouping::Selectors => PortNames::default(),
            };
            let identities =
                Identities::new(cluster, &namespaces, &blocks.list, &port_names, grouping);
            let tables = tables
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (identities, tables)
        });
        blocks.index_members(&identities);
        PolicySet {
            opts,
            grouping,
            atoms: tables.atoms,
            namespaces,
            identities,
            peers: tables.peers,
            blocks,
            port_sets: tables.port_sets,
            policies: tables.policies,
            key_order: tables.key_order,
            rules: tables.rules,
            namespace_policies: tables.namespace_policies,
            admin: tables.admin,
        }
    }

    /// How finely the set's identities group workloads.
    pub fn grouping(&self) -> Grouping {
        self.grouping
    }

    /// The options the set was compiled under.
    pub fn options(&self) -> EvalOptions {
        self.opts
    }

    /// Number of identities.
    pub fn identity_count(&self) -> usize {
        self.identities.len()
    }

    /// The identity of a workload (by index into `Cluster::workloads`).
    pub fn identity_of(&self, workload: usize) -> Option<IdentityId> {
        self.identities.of_workload.get(workload).copied()
    }

    /// Every rule, in evaluation order.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// One rule.
    pub fn rule(&self, id: RuleId) -> &CompiledRule {
        &self.rules[id.index()]
    }

    /// One policy.
    pub fn policy(&self, id: PolicyId) -> &CompiledPolicy {
        &self.policies[id.index()]
    }

    /// Every policy id, sorted by `namespace/name`.
    pub fn policies_by_key(&self) -> &[PolicyId] {
        &self.key_order
    }

    /// One distinct peer.
    pub fn peer(&self, id: PeerId) -> &PeerKey {
        &self.peers.keys[id.index()]
    }

    /// One distinct port set.
    pub fn port_set(&self, id: PortSetId) -> &PortSet {
        self.port_sets.get(id)
    }

    /// Every admin rule (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy),
    /// grouped by policy in `Cluster::admin_policies` order; [`PolicySet::admin_walk`] gives the
    /// order the tiers walk them.
    pub fn admin_rules(&self) -> &[CompiledAdminRule] {
        &self.admin.rules
    }

    /// One admin rule.
    pub fn admin_rule(&self, id: AdminRuleId) -> &CompiledAdminRule {
        &self.admin.rules[id.index()]
    }

    /// One admin policy.
    pub fn admin_policy(&self, id: AdminPolicyId) -> &CompiledAdminPolicy {
        &self.admin.policies[id.index()]
    }

    /// Every admin policy in the order the tiers walk them: the Admin tier's policies by
    /// priority, then the Baseline tier's (see [`crate::model::admin_order`]). Within a policy,
    /// its rules of a direction are walked in written order; the first match decides.
    pub fn admin_walk(&self) -> &[AdminPolicyId] {
        &self.admin.walk
    }

    /// Whether any admin policy exists (when none does, NetworkPolicy alone decides).
    pub fn has_admin_policies(&self) -> bool {
        !self.admin.policies.is_empty()
    }

    /// The identities an admin policy applies to.
    pub(crate) fn admin_subjects(&self, id: AdminPolicyId) -> &Bits {
        self.peer_members(self.admin_policy(id).subjects)
    }

    /// Whether an admin policy applies to an identity.
    pub fn admin_selects(&self, id: AdminPolicyId, identity: IdentityId) -> bool {
        self.admin_subjects(id).get(identity.index())
    }

    /// The admin policies that apply to `identity` and have rules for `direction`, in walk
    /// order.
    pub fn admin_policies_of(
        &self,
        identity: IdentityId,
        direction: Direction,
    ) -> Vec<AdminPolicyId> {
        self.admin
            .walk
            .iter()
            .copied()
            .filter(|&id| {
                !self.admin_policy(id).rules(direction).is_empty()
                    && self.admin_selects(id, identity)
            })
            .collect()
    }

    /// The block standing for a `networks` peer (or an ipBlock that can match workloads), by
    /// which identities' flow addresses are grouped; `None` when identities are not grouped by
    /// blocks ([`Grouping::Selectors`]).
    pub fn peer_block(&self, id: PeerId) -> Option<usize> {
        self.peers.block_of[id.index()].map(|b| b.0 as usize)
    }

    /// Where a rule was written.
    pub fn provenance(&self, id: RuleId, cluster: &Cluster) -> Provenance {
        let rule = self.rule(id);
        let policy = &cluster.policies[rule.policy.index()];
        Provenance {
            policy: policy.key(),
            direction: rule.direction,
            rule: rule.index,
            origin: policy.origin.clone(),
        }
    }

    pub(crate) fn match_context(&self) -> MatchContext<'_> {
        MatchContext {
            namespaces: &self.namespaces,
            identities: &self.identities,
        }
    }

    /// The identities a selector peer matches (empty for an ipBlock peer).
    pub(crate) fn peer_members(&self, id: PeerId) -> &Bits {
        self.peers.members(id, &self.match_context())
    }

    /// The identities a policy applies to.
    pub(crate) fn subjects(&self, id: PolicyId) -> &Bits {
        self.peer_members(self.policy(id).subjects)
    }

    /// Whether a selector peer matches an identity (never for an ipBlock peer: use the block).
    pub fn peer_matches(&self, peer: PeerId, identity: IdentityId) -> bool {
        self.peer_members(peer).get(identity.index())
    }

    /// The policies isolating `workload` (index into `Cluster::workloads`) in `direction`, in key
    /// order. Only the policies of its namespace are tried, and only against its identity.
    pub fn isolating(&self, workload: &Workload, index: usize, d: Direction) -> Vec<PolicyId> {
        let Some(identity) = self.identity_of(index) else {
            return Vec::new();
        };
        let ns = self.namespaces.get(&workload.namespace);
        let Some(candidates) = self.namespace_policies.get(&ns) else {
            return Vec::new();
        };
        let labels = &self.identities.list[identity.index()].labels;
        candidates
            .iter()
            .copied()
            .filter(|&id| {
                let p = self.policy(id);
                p.isolates(d) && self.selects(p, labels, identity)
            })
            .collect()
    }

    /// Whether policy `p` selects an identity with `labels`: its subject bitset when already
    /// evaluated, else its pod selector directly (a node's compiler asks about a few workloads).
    fn selects(&self, p: &CompiledPolicy, labels: &crate::Labels, identity: IdentityId) -> bool {
        match self.peers.evaluated(p.subjects) {
            Some(bits) => bits.get(identity.index()),
            // Subjects are always the pod selector in the policy's own namespace (the caller
            // looked the policy up by namespace); any other key is evaluated in full.
            None => match self.peer(p.subjects) {
                PeerKey::Selector {
                    pods: Some(pods), ..
                } => pods.matches(labels),
                _ => self.peer_members(p.subjects).get(identity.index()),
            },
        }
    }
}

/// Every distinct ipBlock of the cluster, in order of first appearance.
fn distinct_blocks(cluster: &Cluster) -> Vec<IpBlock> {
    let mut seen: HashMap<&IpBlock, ()> = HashMap::new();
    let mut out = Vec::new();
    for p in &cluster.policies {
        for r in p.ingress.iter().chain(&p.egress) {
            for peer in &r.peers {
                if let Peer::IpBlock(b) = peer {
                    if seen.insert(b, ()).is_none() {
                        out.push(b.clone());
                    }
                }
            }
        }
    }
    out
}
