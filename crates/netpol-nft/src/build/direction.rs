//! One direction of a node's IR: classify the peers, compute each isolated local workload's
//! grants, and group workloads with identical grants into identities (one chain each).

use std::collections::{BTreeMap, BTreeSet};

use netpol_core::policy_set::peers::PeerId;
use netpol_core::policy_set::rules::{PolicyId, RulePeers};
use netpol_core::{Cluster, Direction, NamedPort, PolicySet, PortSpec, Protocol};

use super::classes::{ClassInput, Classes};
use super::Isolated;
use crate::{DirectionIr, Dispatch, Identity, IdentityRules};

/// What every direction of one compile shares.
pub(crate) struct Ctx<'a> {
    pub(crate) cluster: &'a Cluster,
    pub(crate) set: &'a PolicySet,
    /// Policy -> IR policy index (key order among the policies isolating local workloads).
    pub(crate) ir_index: &'a BTreeMap<PolicyId, usize>,
}

/// Identities being grouped: by their rules, with the workloads and policies of each.
#[derive(Default)]
struct Grouping {
    /// Grants computed once per (policies, named ports of the workload).
    cache: BTreeMap<(Vec<PolicyId>, Vec<NamedPort>), IdentityRules>,
    index: BTreeMap<IdentityRules, usize>,
    identities: Vec<Identity>,
    policies: Vec<BTreeSet<String>>,
    dispatch: BTreeMap<std::net::IpAddr, Dispatch>,
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
        }
    }

    /// The peer classes of the rules of every policy isolating a local workload.
    fn classes(&self, d: Direction, isolated: &[Isolated]) -> Classes {
        let relevant: BTreeSet<PolicyId> = isolated
            .iter()
            .flat_map(|i| i.policies.iter().copied())
            .collect();
        let mut atoms: BTreeSet<PeerId> = BTreeSet::new();
        let mut named: BTreeSet<(String, Protocol)> = BTreeSet::new();
        for &id in &relevant {
            for &rule_id in self.set.policy(id).rules(d) {
                let rule = self.set.rule(rule_id);
                if let RulePeers::Listed(peers) = &rule.peers {
                    atoms.extend(peers.iter().copied());
                }
                for port in &self.set.port_set(rule.ports).entries {
                    if let Some(PortSpec::Named(n)) = &port.port {
                        named.insert((n.clone(), port.protocol));
                    }
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

    fn add_workload(&self, d: Direction, iso: &Isolated, classes: &Classes, g: &mut Grouping) {
        let w = &self.cluster.workloads[iso.workload];
        let np = if d == Direction::Ingress {
            let mut v = w.named_ports.clone();
            v.sort();
            v
        } else {
            Vec::new()
        };
        let rules = g
            .cache
            .entry((iso.policies.clone(), np))
            .or_insert_with(|| self.identity_rules(d, &iso.policies, w, classes))
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
