//! NP003, redundancy, decided exactly over the cluster's workloads and every address outside them.
//!
//! Definitions. For a workload `s` and a direction, what a rule admits is a set of
//! `(peer, protocol, port)`: peers are the cluster's workloads (with the address family their flow
//! with `s` uses, as the evaluator picks it) and every address that is not a workload's (nodes
//! and everything outside); named ports resolve on the destination (`s` for ingress, the peer for
//! egress; never on an address).
//! Reported greedily, in policy key order and then written order, each against what is not yet
//! reported: so everything reported can be removed together (of two identical rules, the first
//! is reported, not both).
//! * A **rule** R of policy P is redundant when, for every workload P selects, what R admits is a
//!   subset of the union of what the other rules admit, over every policy isolating that workload
//!   in R's direction (other rules of P included).
//! * A **policy** P (with at least one rule) is redundant when removing it changes nothing: every
//!   workload it selects is isolated by another policy in each direction P affects, and each of
//!   P's rules is covered, in the sense above, by the rules of the other policies alone. A
//!   redundant policy is reported once, not rule by rule. Policies without rules (default denies)
//!   are never reported: they are kept on purpose, as a safety net.
//!
//! How: over the policy set's identities (workloads no selector can tell apart), a rule's peers
//! are bitsets; ports are bitsets over the port atoms; addresses are exact interval sets. A rule
//! with no subject is left to NP001.

use crate::bits::Bits;
use crate::model::{Cluster, Direction, EvalOptions, IpFamily, RuleItem};
use crate::policy_set::identities::pair_family;
use crate::policy_set::ports::NamedPortRef;
use crate::policy_set::rules::{PolicyId, RuleId, RulePeers};
use crate::policy_set::PolicySet;
use crate::render::render_rule;

use super::addrs::AddrSet;
use super::{Check, Finding};

/// One rule against identities, atoms and addresses.
struct RuleView {
    id: RuleId,
    policy: PolicyId,
    any: bool,
    /// Identities its selector peers match.
    selected: Bits,
    /// Identities whose IPv4 / IPv6 flow address its ipBlocks contain (empty unless ipBlocks
    /// match workloads).
    ip: [Bits; 2],
    /// Addresses outside the workloads it admits.
    external: AddrSet,
    /// Atoms of its numeric ports.
    base: Bits,
    named: Vec<NamedPortRef>,
}

struct Ctx<'a> {
    set: &'a PolicySet,
    rules: Vec<RuleView>,
    /// `[direction][identity]`: indices into `rules` of the policies isolating it.
    rules_of: [Vec<Vec<usize>>; 2],
    /// `[direction][identity]`: the policies isolating it.
    isolators: [Vec<Vec<PolicyId>>; 2],
}

fn dir_index(d: Direction) -> usize {
    match d {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

impl<'a> Ctx<'a> {
    fn new(cluster: &Cluster, set: &'a PolicySet) -> Self {
        let ic = set.identity_count();
        let workload_addresses =
            AddrSet::of_addresses(cluster.workloads.iter().flat_map(|w| w.addresses.iter()));
        let mut ctx = Ctx {
            set,
            rules: Vec::new(),
            rules_of: [vec![Vec::new(); ic], vec![Vec::new(); ic]],
            isolators: [vec![Vec::new(); ic], vec![Vec::new(); ic]],
        };
        for &pid in set.policies_by_key() {
            let subjects = set.subjects(pid).clone();
            let policy = set.policy(pid);
            for d in [Direction::Ingress, Direction::Egress] {
                if !policy.isolates(d) {
                    continue;
                }
                let di = dir_index(d);
                for s in subjects.ones() {
                    ctx.isolators[di][s].push(pid);
                }
                for &rid in policy.rules(d) {
                    let ri = ctx.rules.len();
                    ctx.rules.push(view(set, rid, &workload_addresses));
                    for s in subjects.ones() {
                        ctx.rules_of[di][s].push(ri);
                    }
                }
            }
        }
        ctx
    }

    /// The atoms rule `r` admits towards destination identity `dst` (`None`: an address).
    fn atoms(&self, r: &RuleView, dst: Option<usize>) -> Bits {
        let mut bits = r.base.clone();
        if let Some(d) = dst {
            let ident = &self.set.identities.list[d];
            for n in &r.named {
                if let Some(port) = ident.named_port(n.name, n.protocol) {
                    bits.set(self.set.atoms.index(n.protocol, port));
                }
            }
        }
        bits
    }

    fn class(&self, identity: usize) -> usize {
        self.set.identities.list[identity].class
    }
}

fn view(set: &PolicySet, id: RuleId, workload_addresses: &AddrSet) -> RuleView {
    let ic = set.identity_count();
    let rule = set.rule(id);
    let ports = set.port_set(rule.ports);
    let mut v = RuleView {
        id,
        policy: rule.policy,
        any: false,
        selected: Bits::new(ic),
        ip: [Bits::new(ic), Bits::new(ic)],
        external: AddrSet::empty(),
        base: ports.base_atoms.clone(),
        named: ports.named.clone(),
    };
    match &rule.peers {
        RulePeers::Any => {
            v.any = true;
            v.selected = Bits::full(ic);
            v.external = AddrSet::everything();
        }
        RulePeers::Listed(peers) => {
            for &peer in peers {
                match set.peer(peer).block() {
                    None => v.selected.or_assign(set.peer_members(peer)),
                    Some(block) => {
                        v.external = v.external.union(&AddrSet::of_block(block));
                        if let Some(b) = set.peers.block_of[peer.index()] {
                            let members = &set.blocks.members[b.0 as usize];
                            v.ip[0].or_assign(&members[0]);
                            v.ip[1].or_assign(&members[1]);
                        }
                    }
                }
            }
        }
    }
    v.external = v.external.minus(workload_addresses);
    v
}

fn contains(r: &RuleView, e: usize, family: Option<IpFamily>) -> bool {
    r.selected.get(e)
        || match family {
            Some(IpFamily::V4) => r.ip[0].get(e),
            Some(IpFamily::V6) => r.ip[1].get(e),
            None => false,
        }
}

fn subset(need: &Bits, have: &Bits) -> bool {
    need.words()
        .iter()
        .zip(have.words())
        .all(|(a, b)| a & !b == 0)
}

/// Whether everything rule `ri` admits for subject `s` is admitted by the rules `others`.
fn covered(ctx: &Ctx<'_>, d: Direction, ri: usize, s: usize, others: &[usize]) -> bool {
    let r = &ctx.rules[ri];
    let ic = ctx.set.identity_count();
    let mut candidates = r.selected.clone();
    candidates.or_assign(&r.ip[0]);
    candidates.or_assign(&r.ip[1]);
    for e in candidates.ones().take_while(|&e| e < ic) {
        let family = match d {
            Direction::Ingress => pair_family(ctx.class(e), ctx.class(s)),
            Direction::Egress => pair_family(ctx.class(s), ctx.class(e)),
        };
        if !contains(r, e, family) {
            continue;
        }
        let dst = match d {
            Direction::Ingress => s,
            Direction::Egress => e,
        };
        let need = ctx.atoms(r, Some(dst));
        if need.is_empty() {
            continue;
        }
        let mut have = Bits::new(ctx.set.atoms.total);
        for &q in others {
            let qv = &ctx.rules[q];
            if contains(qv, e, family) {
                have.or_assign(&ctx.atoms(qv, Some(dst)));
            }
        }
        if !subset(&need, &have) {
            return false;
        }
    }
    external_covered(ctx, d, r, s, others)
}

/// The part of [`covered`] about addresses outside the workloads.
fn external_covered(ctx: &Ctx<'_>, d: Direction, r: &RuleView, s: usize, others: &[usize]) -> bool {
    if r.external.is_empty() {
        return true;
    }
    // Named ports resolve on the destination: `s` for ingress, nothing for an address.
    let dst = match d {
        Direction::Ingress => Some(s),
        Direction::Egress => None,
    };
    let need = ctx.atoms(r, dst);
    let relevant: Vec<(Bits, &AddrSet)> = others
        .iter()
        .map(|&q| &ctx.rules[q])
        .filter(|q| !q.external.is_empty())
        .map(|q| (ctx.atoms(q, dst), &q.external))
        .collect();
    let mut seen: std::collections::HashSet<Vec<bool>> = std::collections::HashSet::new();
    for a in need.ones().take_while(|&a| a < ctx.set.atoms.total) {
        let signature: Vec<bool> = relevant.iter().map(|(atoms, _)| atoms.get(a)).collect();
        if !seen.insert(signature.clone()) {
            continue;
        }
        let mut union = AddrSet::empty();
        for ((_, addrs), on) in relevant.iter().zip(&signature) {
            if *on {
                union = union.union(addrs);
            }
        }
        if !r.external.is_subset(&union) {
            return false;
        }
    }
    true
}

/// What NP003 reports: a whole policy, or one of its rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redundancy {
    /// Index into `Cluster::policies`.
    pub policy: usize,
    /// The rule (direction and index in that direction's list), `None` for the whole policy.
    pub rule: Option<(Direction, usize)>,
    /// The finding that reports it.
    pub finding: Finding,
}

/// NP003 findings.
pub fn redundant(cluster: &Cluster, opts: EvalOptions) -> Vec<Finding> {
    redundancies(cluster, opts)
        .into_iter()
        .map(|r| r.finding)
        .collect()
}

/// Every redundant policy and rule; removing all of them together changes no verdict.
pub fn redundancies(cluster: &Cluster, opts: EvalOptions) -> Vec<Redundancy> {
    let set = PolicySet::new(cluster, opts);
    let ctx = Ctx::new(cluster, &set);
    let plan = own_rules(&ctx);
    let mut removed = vec![false; ctx.rules.len()];
    let mut removed_policy = vec![false; cluster.policies.len()];
    let mut out = Vec::new();
    // Greedy, in key order: what is reported can be removed together.
    for p in &plan {
        if p.subjects.is_empty() || p.rules.is_empty() {
            continue;
        }
        if policy_redundant(&ctx, p, &removed, &removed_policy) {
            removed_policy[p.id.index()] = true;
            for &(_, ri) in &p.rules {
                removed[ri] = true;
            }
            let model = &cluster.policies[p.id.index()];
            let others = other_policies(cluster, &ctx, p.id, &p.subjects, &removed_policy);
            let message = format!(
                "the policy allows nothing that other policies do not already allow to the {} workload(s) it selects, and they isolate them too (removing it changes nothing): {others}",
                subjects_count(cluster, &set, p.id)
            );
            out.push(Redundancy {
                policy: p.id.index(),
                rule: None,
                finding: Finding::about(Check::Redundant, model, message),
            });
        }
    }
    for p in &plan {
        if p.subjects.is_empty() || removed_policy[p.id.index()] {
            continue;
        }
        let model = &cluster.policies[p.id.index()];
        for &(d, ri) in &p.rules {
            let di = dir_index(d);
            let all = p.subjects.iter().all(|&s| {
                let others: Vec<usize> = ctx.rules_of[di][s]
                    .iter()
                    .copied()
                    .filter(|&q| q != ri && !removed[q])
                    .collect();
                covered(&ctx, d, ri, s, &others)
            });
            if all {
                removed[ri] = true;
                let index = set.rule(ctx.rules[ri].id).index;
                let text = render_rule(model, d, index, &model.rules(d)[index]);
                let message = format!(
                    "{text}: allows nothing that the other rules of the policies isolating the workloads it applies to do not already allow"
                );
                out.push(Redundancy {
                    policy: p.id.index(),
                    rule: Some((d, index)),
                    finding: Finding::about_item(
                        Check::Redundant,
                        model,
                        (d, index, RuleItem::Rule),
                        message,
                    ),
                });
            }
        }
    }
    out
}

/// A policy's subjects and its rule views, in key order.
struct PolicyPlan {
    id: PolicyId,
    subjects: Vec<usize>,
    rules: Vec<(Direction, usize)>,
}

/// Rule views were pushed in policy key order, direction, written order: walk them the same way.
fn own_rules(ctx: &Ctx<'_>) -> Vec<PolicyPlan> {
    let mut next = 0usize;
    let mut out = Vec::new();
    for &pid in ctx.set.policies_by_key() {
        let policy = ctx.set.policy(pid);
        let mut rules = Vec::new();
        for d in [Direction::Ingress, Direction::Egress] {
            if policy.isolates(d) {
                for _ in policy.rules(d) {
                    rules.push((d, next));
                    next += 1;
                }
            }
        }
        out.push(PolicyPlan {
            id: pid,
            subjects: ctx.set.subjects(pid).ones().collect(),
            rules,
        });
    }
    out
}

fn policy_redundant(
    ctx: &Ctx<'_>,
    p: &PolicyPlan,
    removed: &[bool],
    removed_policy: &[bool],
) -> bool {
    let policy = ctx.set.policy(p.id);
    for d in [Direction::Ingress, Direction::Egress] {
        if !policy.isolates(d) {
            continue;
        }
        let di = dir_index(d);
        let alone = p.subjects.iter().any(|&s| {
            ctx.isolators[di][s]
                .iter()
                .all(|&q| q == p.id || removed_policy[q.index()])
        });
        if alone {
            return false;
        }
    }
    p.rules.iter().all(|&(d, ri)| {
        let di = dir_index(d);
        p.subjects.iter().all(|&s| {
            let others: Vec<usize> = ctx.rules_of[di][s]
                .iter()
                .copied()
                .filter(|&q| ctx.rules[q].policy != p.id && !removed[q])
                .collect();
            covered(ctx, d, ri, s, &others)
        })
    })
}

/// How many workloads (not identities) a policy selects.
fn subjects_count(cluster: &Cluster, set: &PolicySet, pid: PolicyId) -> usize {
    let subjects = set.subjects(pid);
    (0..cluster.workloads.len())
        .filter(|&w| set.identity_of(w).is_some_and(|i| subjects.get(i.index())))
        .count()
}

/// `covered by a, b and 2 more`: the other policies isolating the subjects.
fn other_policies(
    cluster: &Cluster,
    ctx: &Ctx<'_>,
    pid: PolicyId,
    subjects: &[usize],
    removed_policy: &[bool],
) -> String {
    let mut names: Vec<String> = subjects
        .iter()
        .flat_map(|&s| ctx.isolators[0][s].iter().chain(&ctx.isolators[1][s]))
        .filter(|&&q| q != pid && !removed_policy[q.index()])
        .map(|q| cluster.policies[q.index()].key())
        .collect();
    names.sort();
    names.dedup();
    let shown: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
    let more = names.len().saturating_sub(3);
    if more > 0 {
        format!("covered by {} and {more} more", shown.join(", "))
    } else {
        format!("covered by {}", shown.join(", "))
    }
}
