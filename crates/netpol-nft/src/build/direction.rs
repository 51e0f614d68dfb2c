//! One direction of a node's IR: classify the peers, compute each isolated local workload's
//! grants, and group workloads with identical grants into identities (one chain each).

use std::collections::{BTreeMap, BTreeSet};

use netpol_core::policy_set::peers::{PeerId, PeerKey};
use netpol_core::policy_set::rules::{AdminPolicyId, AdminRuleId, PolicyId, RulePeers};
use netpol_core::{AdminTier, Cluster, Direction, NamedPort, PolicySet, PortSpec, Protocol};

use super::classes::{ClassInput, Classes};
use super::tiers::TierMaps;
use super::Isolated;
use crate::{DirectionIr, Dispatch, Identity, IdentityRules};

/// What every direction of one compile shares.
pub(crate) struct Ctx<'a> {
    pub(crate) cluster: &'a Cluster,
    pub(crate) set: &'a PolicySet,
    /// Policy -> IR policy index (key order among the policies isolating local workloads).
    pub(crate) ir_index: &'a BTreeMap<PolicyId, usize>,
    /// Admin rule -> its index in the IR's admin rules.
    pub(crate) admin_index: &'a BTreeMap<AdminRuleId, usize>,
}

/// What an identity's rules are computed from (workloads with the same key share them).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RulesKey {
    policies: Vec<PolicyId>,
    admin: Vec<AdminPolicyId>,
    hairpin: bool,
    /// Ingress: the workload's named ports (resolved on it).
    named_ports: Vec<NamedPort>,
}

/// Identities being grouped: by their rules, with the workloads and policies of each.
#[derive(Default)]
struct Grouping {
    /// Rules computed once per key.
    cache: BTreeMap<RulesKey, IdentityRules>,
    index: BTreeMap<IdentityRules, usize>,
    identities: Vec<Identity>,
    policies: Vec<BTreeSet<String>>,
    dispatch: BTreeMap<std::net::IpAddr, Dispatch>,
    tiers: TierMaps,
}

impl Ctx<'_> {
    /// Builds one direction for the isolated local workloads.
    pub(crate) fn direction(&self, d: Direction, isolated: &[Isolated]) -> DirectionIr {
        let classes = self.classes(d, isolated);
        let mut g = Grouping::default();
        for iso in isolated {
            self.add_workload(d, iso, &classes, &mut g);
        }
        let mut identities = g.identities;
        for (ident, pols) in identities.iter_mut().zip(g.policies) {
            ident.policies = pols.into_iter().collect();
        }
        DirectionIr {
            direction: d,
            dispatch: g.dispatch,
            workload_classes: classes.workload_classes,
            external: classes.external,
            classes: classes.classes,
            identities,
            tiers: g.tiers.maps,
        }
    }

    /// The peer classes of the rules of every policy isolating a local workload.
    fn classes(&self, d: Direction, isolated: &[Isolated]) -> Classes {
        let relevant: BTreeSet<PolicyId> = isolated
            .iter()
            .flat_map(|i| i.policies.iter().copied())
            .collect();
        let admin: BTreeSet<AdminPolicyId> = isolated
            .iter()
            .flat_map(|i| i.admin.iter().copied())
            .collect();
        let mut atoms: BTreeSet<PeerId> = BTreeSet::new();
        let mut named: BTreeSet<(String, Protocol)> = BTreeSet::new();
        let np_rules = relevant.iter().flat_map(|&id| {
            self.set
                .policy(id)
                .rules(d)
                .iter()
                .map(|&r| self.set.rule(r))
                .map(|r| (&r.peers, r.ports))
        });
        let admin_rules = admin.iter().flat_map(|&id| {
            self.set
                .admin_policy(id)
                .rules(d)
                .iter()
                .map(|&r| self.set.admin_rule(r))
                .map(|r| (&r.peers, r.ports))
        });
        for (peers, ports) in np_rules.chain(admin_rules) {
            if let RulePeers::Listed(peers) = peers {
                // The kernel resolves no domain name: such a peer matches nothing here.
                atoms.extend(
                    peers
                        .iter()
                        .copied()
                        .filter(|&p| !matches!(self.set.peer(p), PeerKey::DomainNames(_))),
                );
            }
            for port in &self.set.port_set(ports).entries {
                if let Some(PortSpec::Named(n)) = &port.port {
                    named.insert((n.clone(), port.protocol));
                }
            }
        }
        // Atoms in peer-key order: the order classes list their peers in.
        let mut atoms: Vec<PeerId> = atoms.into_iter().collect();
        atoms.sort_by(|a, b| self.set.peer(*a).cmp(self.set.peer(*b)));
        ClassInput {
            cluster: self.cluster,
            set: self.set,
            atoms,
            named,
            egress: d == Direction::Egress,
        }
        .classify()
    }

    /// The NetworkPolicy grants of an isolated workload and the admin tiers' verdict maps of one
    /// an admin policy selects (added to `tiers` when new).
    fn tiered_rules(
        &self,
        d: Direction,
        iso: &Isolated,
        w: &netpol_core::Workload,
        classes: &Classes,
        tiers: &mut TierMaps,
    ) -> IdentityRules {
        let open = iso.policies.is_empty();
        let mut rules = if open {
            IdentityRules::default()
        } else {
            self.identity_rules(d, &iso.policies, w, classes)
        };
        // NetworkPolicy allows the hairpin traffic of the workloads it isolates; the set that
        // tells hairpin apart only holds workloads an admin policy selects (in either direction).
        rules.hairpin = iso.hairpin && !open;
        if iso.admin.is_empty() {
            return rules;
        }
        rules.admin = self.tier_map(d, AdminTier::Admin, &iso.admin, w, classes, tiers);
        rules.network_policy_open = open;
        if open {
            rules.baseline = self.tier_map(d, AdminTier::Baseline, &iso.admin, w, classes, tiers);
        }
        rules
    }

    fn add_workload(&self, d: Direction, iso: &Isolated, classes: &Classes, g: &mut Grouping) {
        let w = &self.cluster.workloads[iso.workload];
        let np = if d == Direction::Ingress {
            let mut v = w.named_ports.clone();
            v.sort();
            v
        } else {
            Vec::new()
        };
        let key = RulesKey {
            policies: iso.policies.clone(),
            admin: iso.admin.clone(),
            hairpin: iso.hairpin,
            named_ports: np,
        };
        let rules = g
            .cache
            .entry(key)
            .or_insert_with(|| self.tiered_rules(d, iso, w, classes, &mut g.tiers))
            .clone();
        let id = match g.index.get(&rules) {
            Some(id) => *id,
            None => {
                let id = g.identities.len();
                g.index.insert(rules.clone(), id);
                g.identities.push(Identity {
                    chain: String::new(),
                    workloads: Vec::new(),
                    policies: Vec::new(),
                    rules,
                });
                g.policies.push(BTreeSet::new());
                id
            }
        };
        let key = w.key();
        g.identities[id].workloads.push(key.clone());
        let admin_keys = iso
            .admin
            .iter()
            .map(|&p| self.set.admin_policy(p).key.clone());
        g.policies[id].extend(admin_keys);
        g.policies[id].extend(iso.policies.iter().map(|&p| self.set.policy(p).key.clone()));
        for a in &w.addresses {
            g.dispatch.insert(
                *a,
                Dispatch {
                    identity: id,
                    workload: key.clone(),
                },
            );
        }
    }
}
