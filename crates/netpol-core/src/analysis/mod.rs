//! Bulk analyses over every ordered pair of workloads: truth tables for one protocol/port and the
//! full connectivity map, computed without evaluating pairs one by one.
//!
//! How: the [`PolicySet`] groups workloads into *identities* and evaluates every distinct peer
//! once into a bitset over identities; here a rule becomes the bitset of identities its peers
//! match, and truth-table rows are ORs of those bitsets. The connectivity map uses the policy
//! set's port *atoms*, so a port set is a small bitset over atoms, and identical results are
//! shared between pairs. Identities that behave the same as a source (or as a destination) share
//! a *side*: rows and columns are computed once per side.
//!
//! The reference for all of this is [`crate::eval::evaluate`]; the property tests compare the two.

pub mod diff;
mod nodes;
mod outputs;
mod query;
mod sides;
mod tier_map;
mod tiers;

use fixedbitset::FixedBitSet;

use crate::bits::Bits;
use crate::model::{Cluster, Direction, EvalOptions, IpBlock};
use crate::policy_set::identities::{pair_family, Family, Grouping, CLASS_FAMILIES};
use crate::policy_set::ports::PortSetId;
use crate::policy_set::rules::{PolicyId, RulePeers};
use crate::policy_set::PolicySet;

pub use crate::render::render_ranges;
pub use outputs::{output_keys, workload_order, ConnectivityMap, TruthTable};

/// A rule of an isolating policy, against identities.
struct AnalyzerRule {
    /// Identities the owning policy selects (the workloads this rule can open up).
    targets: Bits,
    /// Identities the rule's selector peers match (everyone when the rule has no peers).
    selected_peers: Bits,
    /// Identities whose IPv4 / IPv6 flow address one of the rule's ipBlocks contains.
    ip_peers: [Bits; 2],
    has_ip_peers: bool,
    /// The rule has no peers (every peer, nodes and external addresses included).
    any_peer: bool,
    /// The rule's ipBlocks, which decide for node addresses whatever the options say of
    /// workload addresses.
    blocks: Vec<IpBlock>,
    ports: PortSetId,
}

impl AnalyzerRule {
    /// Whether identity `x` is among the peers when the flow uses family `f`.
    fn peer_contains(&self, x: usize, f: Option<Family>) -> bool {
        self.selected_peers.get(x)
            || (self.has_ip_peers
                && match f {
                    Some(Family::V4) => self.ip_peers[0].get(x),
                    Some(Family::V6) => self.ip_peers[1].get(x),
                    None => false,
                })
    }
}

/// Per identity, the rules that decide one direction for it.
struct Isolation {
    /// Identities some policy isolates.
    isolated: Bits,
    /// Identity -> rules (indices into `Analyzer::rules`) of the policies isolating it.
    rules_of: Vec<Vec<usize>>,
    /// Every rule of this direction.
    rules: Vec<usize>,
}

impl Isolation {
    fn new(identities: usize) -> Self {
        Isolation {
            isolated: Bits::new(identities),
            rules_of: vec![Vec::new(); identities],
            rules: Vec::new(),
        }
    }
}

/// Precomputed indexes for the bulk analyses of one cluster and one set of options.
pub struct Analyzer {
    set: PolicySet,
    workload_count: usize,
    keys: Vec<String>,
    order: Vec<usize>,
    /// Workload index -> identity index.
    identity_of: Vec<usize>,
    rules: Vec<AnalyzerRule>,
    ingress: Isolation,
    egress: Isolation,
    /// `[class][family]`: identities d such that a flow from an identity of `class` to d uses
    /// `family` (0 = IPv4, 1 = IPv6).
    family_dsts: Vec<[Bits; 2]>,
    sides: sides::Sides,
    /// The admin tiers' policies and rules, against identities.
    tiers: tiers::Tiers,
    /// The nodes, which are endpoints of the outputs after the workloads.
    nodes: nodes::Nodes,
    /// The workloads with replicas (by workload index): their diagonal is a pair like any other.
    replicated: FixedBitSet,
}

impl Analyzer {
    /// Compiles the cluster's policy set and indexes it for the bulk analyses.
    pub fn new(cluster: &Cluster, opts: EvalOptions) -> Self {
        Analyzer::from_policy_set(cluster, PolicySet::new(cluster, opts))
    }

    /// Indexes an already compiled policy set of `cluster`; a set built with
    /// [`PolicySet::for_selectors`] is rebuilt with full identities first.
    pub fn from_policy_set(cluster: &Cluster, set: PolicySet) -> Self {
        let set = match set.grouping() {
            Grouping::Full => set,
            Grouping::Selectors => PolicySet::new(cluster, set.options()),
        };
        let ic = set.identity_count();
        let nodes = nodes::Nodes::new(cluster, &set);
        let tiers = tiers::Tiers::new(cluster, &set);
        let mut keys = output_keys(cluster);
        keys.extend(cluster.nodes.iter().map(|n| n.key()));
        let mut order = workload_order(cluster);
        order.extend(nodes.order(cluster.workloads.len()));
        let mut analyzer = Analyzer {
            workload_count: cluster.workloads.len(),
            keys,
            order,
            identity_of: set
                .identities
                .of_workload
                .iter()
                .map(|i| i.index())
                .collect(),
            rules: Vec::new(),
            ingress: Isolation::new(ic),
            egress: Isolation::new(ic),
            family_dsts: family_destinations(&set),
            sides: sides::Sides::default(),
            tiers,
            nodes,
            replicated: cluster
                .workloads
                .iter()
                .enumerate()
                .filter(|(_, w)| w.has_replicas())
                .map(|(i, _)| i)
                .collect(),
            set,
        };
        let policies: Vec<PolicyId> = analyzer.set.policies_by_key().to_vec();
        for id in policies {
            analyzer.add_policy(id);
        }
        analyzer.sides = sides::Sides::new(&analyzer);
        analyzer.nodes.per_family = analyzer.families_can_differ();
        analyzer
    }

    /// Compiles the rules of one policy that selects someone.
    fn add_policy(&mut self, id: PolicyId) {
        let targets = self.set.subjects(id).clone();
        if targets.is_empty() {
            return;
        }
        let policy = self.set.policy(id).clone();
        for d in [Direction::Ingress, Direction::Egress] {
            if !policy.isolates(d) {
                continue;
            }
            let iso = match d {
                Direction::Ingress => &mut self.ingress,
                Direction::Egress => &mut self.egress,
            };
            iso.isolated.or_assign(&targets);
            for &rule_id in policy.rules(d) {
                let ri = self.rules.len();
                iso.rules.push(ri);
                for id in targets.ones() {
                    iso.rules_of[id].push(ri);
                }
                let rule = compile_rule(&self.set, rule_id, &targets);
                self.rules.push(rule);
            }
        }
    }

    /// The compiled policy set the analyzer indexes.
    pub fn policy_set(&self) -> &PolicySet {
        &self.set
    }

    /// Endpoint indices in the order of every output: workloads sorted by `namespace/name`, then
    /// kind; then nodes (index `workloads + i` for `cluster.nodes[i]`), by name.
    pub fn workload_order(&self) -> Vec<usize> {
        self.order.clone()
    }

    /// How many identities (classes of workloads no policy can tell apart) the cluster has.
    pub fn identity_count(&self) -> usize {
        self.set.identity_count()
    }

    /// The identity index of each workload, by workload index.
    pub fn identity_of(&self, workload: usize) -> Option<usize> {
        self.identity_of.get(workload).copied()
    }

    /// Number of distinct source and destination behaviours (rows and columns actually computed).
    pub fn side_counts(&self) -> (usize, usize) {
        (self.sides.src_reps.len(), self.sides.dst_reps.len())
    }

    /// Number of port atoms over all protocols (how finely rules cut the port space).
    pub fn atom_count(&self) -> usize {
        self.set.atoms.total
    }
}

/// One rule against identities: its peers' bitsets ORed, its ipBlocks' members per family.
fn compile_rule(
    set: &PolicySet,
    id: crate::policy_set::rules::RuleId,
    targets: &Bits,
) -> AnalyzerRule {
    let ic = set.identity_count();
    let rule = set.rule(id);
    let mut out = AnalyzerRule {
        targets: targets.clone(),
        selected_peers: Bits::new(ic),
        ip_peers: [Bits::new(ic), Bits::new(ic)],
        has_ip_peers: false,
        any_peer: false,
        blocks: Vec::new(),
        ports: rule.ports,
    };
    let peers = match &rule.peers {
        RulePeers::Any => {
            out.selected_peers = Bits::full(ic);
            out.any_peer = true;
            return out;
        }
        RulePeers::Listed(peers) => peers,
    };
    for &peer in peers {
        if let Some(block) = set.peer(peer).block() {
            out.blocks.push(block.clone());
        }
        if set.peer(peer).block().is_none() {
            out.selected_peers.or_assign(set.peer_members(peer));
        } else if let Some(block) = set.peers.block_of[peer.index()] {
            out.has_ip_peers = true;
            let members = &set.blocks.members[block.0 as usize];
            out.ip_peers[0].or_assign(&members[0]);
            out.ip_peers[1].or_assign(&members[1]);
        }
    }
    out
}

/// `[class][family]`: the destination identities a source of each family class reaches in that
/// family.
fn family_destinations(set: &PolicySet) -> Vec<[Bits; 2]> {
    let ic = set.identity_count();
    (0..CLASS_FAMILIES.len())
        .map(|class| {
            let mut per_family = [Bits::new(ic), Bits::new(ic)];
            for (id, ident) in set.identities.list.iter().enumerate() {
                if let Some(f) = pair_family(class, ident.class) {
                    per_family[f.index()].set(id);
                }
            }
            per_family
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{generate, SynthParams};
    use crate::Protocol;

    #[test]
    fn an_analyzer_handed_a_selectors_only_set_answers_like_one_built_from_scratch() {
        let cluster = generate(&SynthParams {
            workloads: 300,
            namespaces: 8,
            policies: 60,
            nodes: 3,
            seed: 3,
        });
        let opts = EvalOptions::default();
        let selectors = PolicySet::for_selectors(&cluster, opts);
        assert_eq!(selectors.grouping(), Grouping::Selectors);
        let from_set = Analyzer::from_policy_set(&cluster, selectors);
        let fresh = Analyzer::new(&cluster, opts);
        assert_eq!(from_set.policy_set().grouping(), Grouping::Full);
        for (protocol, port) in [
            (Protocol::Tcp, 80),
            (Protocol::Udp, 53),
            (Protocol::Tcp, 9090),
        ] {
            assert_eq!(
                from_set.truth_table(protocol, port).to_json(),
                fresh.truth_table(protocol, port).to_json()
            );
        }
        assert_eq!(
            from_set.connectivity_map().to_json(),
            fresh.connectivity_map().to_json()
        );
    }
}
