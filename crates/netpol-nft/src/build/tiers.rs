//! The admin tiers as verdict segments, once per tier map: the admin policies of a tier selecting
//! a group of identities ([`TierGroup`]), walked in the tiers' order (priority, then rules in
//! written order), resolved at compile time into disjoint `class . protocol . ports` segments,
//! each decided by the first rule matching it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use netpol_core::policy_set::rules::{Action, AdminPolicyId, AdminRuleId, RulePeers, Tier};
use netpol_core::{AdminAction, AdminTier, Direction, PolicySet, PortSpec, Protocol, Workload};

use super::classes::Classes;
use super::direction::Ctx;
use super::grants::{numeric_range, segments};
use super::Isolated;
use crate::{AdminRuleRef, TierMap, TierSegment};

/// What one tier's verdict map is shared by (and named from): the tier, its admin policies
/// selecting a workload (walk order) and, for ingress, how the named ports their rules use
/// resolve on the workload. Workloads with the same group have the same segments.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct TierGroup {
    tier: AdminTier,
    policies: Vec<AdminPolicyId>,
    /// `(name, protocol, resolved port)` for every named port of the rules (ingress only).
    named_ports: Vec<(String, Protocol, Option<u16>)>,
}

/// The tier maps of one direction being built, each computed once per group.
#[derive(Default)]
pub(super) struct TierMaps {
    index: BTreeMap<TierGroup, usize>,
    pub(super) maps: Vec<TierMap>,
}

/// The admin rules the node's identities can reach, in walk order (the IR's list), and the
/// index of each in it.
pub(super) fn admin_rules(
    set: &PolicySet,
    ingress: &[Isolated],
    egress: &[Isolated],
) -> (Vec<AdminRuleRef>, BTreeMap<AdminRuleId, usize>) {
    let used = |list: &[Isolated]| -> BTreeSet<AdminPolicyId> {
        list.iter().flat_map(|i| i.admin.iter().copied()).collect()
    };
    let used = [
        (Direction::Ingress, used(ingress)),
        (Direction::Egress, used(egress)),
    ];
    let mut out = Vec::new();
    let mut index = BTreeMap::new();
    for &p in set.admin_walk() {
        for (d, policies) in &used {
            if !policies.contains(&p) {
                continue;
            }
            let policy = set.admin_policy(p);
            for &id in policy.rules(*d) {
                let rule = set.admin_rule(id);
                index.insert(id, out.len());
                out.push(AdminRuleRef {
                    policy: policy.key.clone(),
                    tier: admin_tier(policy.tier),
                    direction: *d,
                    rule: rule.index,
                    action: match rule.action {
                        Action::Allow => AdminAction::Accept,
                        Action::Deny => AdminAction::Deny,
                        Action::Pass => AdminAction::Pass,
                    },
                    fail_closed: rule.fail_closed,
                    counter: String::new(),
                    chain: String::new(),
                    log: String::new(),
                });
            }
        }
    }
    (out, index)
}

/// The admin tier of a policy set tier (an admin policy is never of the NetworkPolicy tier).
fn admin_tier(tier: Tier) -> AdminTier {
    match tier {
        Tier::Baseline => AdminTier::Baseline,
        _ => AdminTier::Admin,
    }
}

/// Which protocol a segment is of: `None` stands for every protocol without ports.
type Bucket = Option<Protocol>;

/// The buckets in the order of [`Walked`]'s cells.
const BUCKETS: [Bucket; 4] = [
    Some(Protocol::Tcp),
    Some(Protocol::Udp),
    Some(Protocol::Sctp),
    None,
];

fn bucket_index(b: Bucket) -> usize {
    match b {
        Some(Protocol::Tcp) => 0,
        Some(Protocol::Udp) => 1,
        Some(Protocol::Sctp) => 2,
        None => 3,
    }
}

/// Port intervals per class (dense, by class index) and protocol, tagged with the rule's
/// position in the walk. Indexed rather than a map: a rule matching every class pushes into
/// every cell, hundreds of thousands of pushes per tier with many classes.
struct Walked {
    cells: Vec<[Cell; 4]>,
}

/// An inclusive port interval and the walk position of the rule matching it.
type Tagged = (u16, u16, usize);

/// One class and protocol: the intervals of the rules matching it, in walk order.
#[derive(Default)]
struct Cell {
    intervals: Vec<Tagged>,
    /// Some rule already matches every port: later rules cannot decide anything here.
    decided: bool,
}

impl Walked {
    fn new(classes: usize) -> Self {
        Walked {
            cells: (0..classes).map(|_| Default::default()).collect(),
        }
    }

    fn push(&mut self, class: u32, bucket: Bucket, lo: u16, hi: u16, seq: usize) {
        let Some(cell) = self
            .cells
            .get_mut(class as usize)
            .and_then(|c| c.get_mut(bucket_index(bucket)))
        else {
            return;
        };
        if cell.decided {
            return;
        }
        cell.intervals.push((lo, hi, seq));
        cell.decided = lo == 0 && hi == u16::MAX;
    }
}

impl Ctx<'_> {
    /// The index in `maps` of tier `tier`'s verdict map for the local workload `w` selected by
    /// `admin` (walk order), added when its group is new; `None` when no policy of the tier
    /// selects `w`.
    pub(super) fn tier_map(
        &self,
        d: Direction,
        tier: AdminTier,
        admin: &[AdminPolicyId],
        w: &Workload,
        classes: &Classes,
        maps: &mut TierMaps,
    ) -> Option<usize> {
        let group = self.tier_group(d, tier, admin, w)?;
        if let Some(&i) = maps.index.get(&group) {
            return Some(i);
        }
        let segments = self.tier_segments(d, &group.policies, w, classes);
        let i = maps.maps.len();
        maps.maps.push(TierMap {
            name: String::new(),
            exact_map: String::new(),
            range_map: String::new(),
            tier,
            policies: group
                .policies
                .iter()
                .map(|&p| self.set.admin_policy(p).key.clone())
                .collect(),
            named_ports: group
                .named_ports
                .iter()
                .map(|(name, protocol, port)| match port {
                    Some(port) => format!("{name}/{protocol}={port}"),
                    None => format!("{name}/{protocol}=none"),
                })
                .collect(),
            segments,
        });
        maps.index.insert(group, i);
        Some(i)
    }

    /// The group of tier `tier` for the local workload `w` selected by `admin`.
    fn tier_group(
        &self,
        d: Direction,
        tier: AdminTier,
        admin: &[AdminPolicyId],
        w: &Workload,
    ) -> Option<TierGroup> {
        let policies: Vec<AdminPolicyId> = admin
            .iter()
            .copied()
            .filter(|&p| admin_tier(self.set.admin_policy(p).tier) == tier)
            .collect();
        if policies.is_empty() {
            return None;
        }
        let mut named_ports = BTreeSet::new();
        if d == Direction::Ingress {
            for &p in &policies {
                for &id in self.set.admin_policy(p).rules(d) {
                    let ports = &self.set.port_set(self.set.admin_rule(id).ports).entries;
                    for port in ports {
                        if let Some(PortSpec::Named(name)) = &port.port {
                            let resolved = w.resolve_named_port(name, port.protocol);
                            named_ports.insert((name.clone(), port.protocol, resolved));
                        }
                    }
                }
            }
        }
        Some(TierGroup {
            tier,
            policies,
            named_ports: named_ports.into_iter().collect(),
        })
    }

    /// The segments of the admin policies `policies` (one tier, walk order) for the local
    /// workload `w`.
    fn tier_segments(
        &self,
        d: Direction,
        policies: &[AdminPolicyId],
        w: &Workload,
        classes: &Classes,
    ) -> Vec<TierSegment> {
        let mut walked = Walked::new(classes.keys.len());
        // The IR index of the rule at each walk position.
        let mut rule_at: Vec<usize> = Vec::new();
        for &p in policies {
            let policy = self.set.admin_policy(p);
            for &id in policy.rules(d) {
                let Some(&ir) = self.admin_index.get(&id) else {
                    continue;
                };
                let seq = rule_at.len();
                rule_at.push(ir);
                self.walk_rule(d, id, seq, w, classes, &mut walked);
            }
        }
        let mut out = Vec::new();
        // Many classes are matched by the same rules on the same ports: split each distinct list
        // of intervals once.
        let mut split: HashMap<&[Tagged], Vec<Tagged>> = HashMap::new();
        for (class, cells) in walked.cells.iter().enumerate() {
            let class = u32::try_from(class).unwrap_or(u32::MAX);
            for (protocol, cell) in BUCKETS.iter().zip(cells) {
                if cell.intervals.is_empty() {
                    continue;
                }
                let segs = split
                    .entry(&cell.intervals)
                    .or_insert_with(|| segments(&cell.intervals, &[]));
                out.extend(segs.iter().map(|&(first, last, seq)| TierSegment {
                    class,
                    protocol: *protocol,
                    first,
                    last,
                    rule: rule_at[seq],
                }));
            }
        }
        out
    }

    /// Adds the intervals one rule matches, at walk position `seq`.
    fn walk_rule(
        &self,
        d: Direction,
        id: AdminRuleId,
        seq: usize,
        w: &Workload,
        classes: &Classes,
        walked: &mut Walked,
    ) {
        let rule = self.set.admin_rule(id);
        let matched: Vec<u32> = match &rule.peers {
            // Fail closed: every peer.
            RulePeers::Any => (0..classes.keys.len())
                .map(|c| u32::try_from(c).unwrap_or(u32::MAX))
                .collect(),
            RulePeers::Listed(peers) => {
                let mut out = BTreeSet::new();
                for peer in peers {
                    if let Some(cs) = classes
                        .atom_of
                        .get(peer)
                        .and_then(|&a| classes.atom_classes.get(a))
                    {
                        out.extend(cs.iter().copied());
                    }
                }
                out.into_iter().collect()
            }
        };
        let ports = &self.set.port_set(rule.ports).entries;
        for class in matched {
            let mut push =
                |bucket: Bucket, lo: u16, hi: u16| walked.push(class, bucket, lo, hi, seq);
            if ports.is_empty() {
                for p in Protocol::ALL {
                    push(Some(p), 0, u16::MAX);
                }
                push(None, 0, u16::MAX);
                continue;
            }
            for port in ports {
                let (lo, hi) = match &port.port {
                    // Resolved on the destination: the local workload for ingress, the peer's
                    // class (its workload's named ports) for egress.
                    Some(PortSpec::Named(name)) => {
                        let resolved = match d {
                            Direction::Ingress => w.resolve_named_port(name, port.protocol),
                            Direction::Egress => classes
                                .keys
                                .get(class as usize)
                                .and_then(|k| k.named_port(name, port.protocol)),
                        };
                        match resolved {
                            Some(v) => (v, v),
                            None => continue,
                        }
                    }
                    other => numeric_range(other),
                };
                push(Some(port.protocol), lo, hi);
            }
        }
    }
}
