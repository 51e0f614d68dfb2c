//! The admin tiers (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy) in the
//! bulk analyses, as [`crate::eval`]'s walk decides them: per direction, the Admin tier (first
//! matching rule in walk order: Accept and Deny final, Pass skips the rest of the tier), then
//! NetworkPolicy (final for the identities it isolates in the direction), then Baseline, then
//! the default allow.
//!
//! How: the admin rules are compiled against identities like NetworkPolicy rules (selector peers
//! to a bitset; `networks` and the addresses of `domainNames` to the identities whose flow
//! address of each family they contain, through the policy set's blocks; `nodes`, `networks` and
//! `domainNames` to addresses for node endpoints). A walk is then a *fold*: starting from every
//! element undecided (destination identities for a truth-table row, port atoms for a cell of the
//! map), each rule in walk order takes the undecided elements it matches into accepted, denied
//! or passed. The fold is the same whatever the elements are, so one function serves rows and
//! cells. Admin policies are few and subjects many: rows are computed per side, and for a row
//! the ingress walk of every destination runs at once (rule masks are ANDed with the rule's
//! policy's subjects).

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::bits::Bits;
use crate::model::{Cluster, Direction};
use crate::policy_set::identities::Family;
use crate::policy_set::peers::PeerKey;
use crate::policy_set::ports::PortSetId;
use crate::policy_set::rules::{direction_index, Action, CompiledAdminRule, RulePeers, Tier};
use crate::policy_set::PolicySet;

/// One admin rule against identities and addresses.
pub(super) struct TierRule {
    /// Allow (Accept), Deny (also a rule that fails closed) or Pass.
    pub(super) action: Action,
    /// A Deny or Pass rule with a peer of an unknown kind: every peer, every port.
    any_peer: bool,
    /// Identities its `namespaces`/`pods` peers match.
    pub(super) selected: Bits,
    /// Per family: identities whose flow address of that family a `networks` CIDR or a resolved
    /// `domainNames` address covers.
    pub(super) addressed: [Bits; 2],
    pub(super) has_addressed: bool,
    /// Its `networks` CIDRs, for node endpoints.
    networks: Vec<IpNet>,
    /// The addresses of the Nodes its `nodes` peers select and of its resolved `domainNames`,
    /// for node endpoints.
    addresses: Vec<IpAddr>,
    /// Its protocols.
    pub(super) ports: PortSetId,
}

impl TierRule {
    /// Whether workload identity `x`, using family `f` in the flow, is among the peers.
    pub(super) fn peer_contains(&self, x: usize, f: Option<Family>) -> bool {
        self.any_peer
            || self.selected.get(x)
            || (self.has_addressed && f.is_some_and(|f| self.addressed[f.index()].get(x)))
    }

    /// Whether a node's address (the far end of the flow) is among the peers.
    pub(super) fn matches_address(&self, a: IpAddr) -> bool {
        self.any_peer || self.networks.iter().any(|n| n.contains(&a)) || self.addresses.contains(&a)
    }

    /// Into `out`: the destination identities among the peers, for a source whose flows reach
    /// `d[family]` in each family.
    fn peer_mask(&self, out: &mut Bits, all: &Bits, d: [&Bits; 2]) {
        if self.any_peer {
            out.clone_from(all);
            return;
        }
        out.clone_from(&self.selected);
        if self.has_addressed {
            out.or_and(&self.addressed[0], d[0]);
            out.or_and(&self.addressed[1], d[1]);
        }
    }

    /// Whether the rule can tell workload identities apart by their addresses.
    pub(super) fn has_addresses(&self) -> bool {
        self.has_addressed || !self.networks.is_empty() || !self.addresses.is_empty()
    }
}

/// One admin policy that selects someone.
pub(super) struct TierPolicy {
    tier: Tier,
    /// The identities it applies to.
    subjects: Bits,
    /// `[ingress, egress]`: its rules (indices into `Tiers::rules`) in written order.
    rules: [Vec<usize>; 2],
}

/// The admin policies of a cluster, against identities.
pub(super) struct Tiers {
    pub(super) rules: Vec<TierRule>,
    /// In walk order.
    policies: Vec<TierPolicy>,
    /// `[direction][identity]`: the policies (indices into `policies`, in walk order) that
    /// select the identity and have rules for the direction.
    pub(super) of: [Vec<Vec<usize>>; 2],
    /// `[direction]`: the policies with rules for the direction, in walk order.
    with_rules: [Vec<usize>; 2],
    /// `[direction]`: every rule of the direction.
    pub(super) rules_of_direction: [Vec<usize>; 2],
}

/// What a walk over a set of elements (identities or atoms) has decided so far.
pub(super) struct Fold {
    accepted: Bits,
    denied: Bits,
    undecided: Bits,
    /// What the Admin tier left to the next tiers.
    rest: Bits,
    hit: Bits,
    /// Every element.
    all: Bits,
    len: usize,
}

impl Fold {
    pub(super) fn new(len: usize) -> Self {
        Fold {
            accepted: Bits::new(len),
            denied: Bits::new(len),
            undecided: Bits::new(len),
            rest: Bits::new(len),
            hit: Bits::new(len),
            all: Bits::full(len),
            len,
        }
    }
}

/// What a walk decided for one subject and one far end, whatever NetworkPolicy says: the tiers
/// allow `accepted ∪ (rest ∩ NetworkPolicy's answer)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Answer {
    accepted: Bits,
    rest: Bits,
}

impl Answer {
    /// What the tiers accept whatever NetworkPolicy says.
    pub(super) fn accepted(&self) -> &Bits {
        &self.accepted
    }

    /// What the tiers leave to NetworkPolicy.
    pub(super) fn rest(&self) -> &Bits {
        &self.rest
    }
}

/// Which elements NetworkPolicy decides for (it isolates them in the direction).
#[derive(Clone, Copy)]
pub(super) enum NpIsolated<'a> {
    /// All of them (one subject, isolated).
    All,
    /// None of them (one subject, not isolated).
    None,
    /// Destination identities, for the ingress walk of a whole row.
    Some(&'a Bits),
}

impl NpIsolated<'_> {
    pub(super) fn of(isolated: bool) -> Self {
        if isolated {
            NpIsolated::All
        } else {
            NpIsolated::None
        }
    }
}

impl Tiers {
    pub(super) fn new(cluster: &Cluster, set: &PolicySet) -> Self {
        let ic = set.identity_count();
        let mut t = Tiers {
            rules: Vec::new(),
            policies: Vec::new(),
            of: [vec![Vec::new(); ic], vec![Vec::new(); ic]],
            with_rules: [Vec::new(), Vec::new()],
            rules_of_direction: [Vec::new(), Vec::new()],
        };
        if !set.has_admin_policies() {
            return t;
        }
        let hosts = host_blocks(set);
        for &pid in set.admin_walk() {
            let p = set.admin_policy(pid);
            let subjects = set.admin_subjects(pid).clone();
            if subjects.is_empty() {
                continue;
            }
            let pi = t.policies.len();
            let mut rules = [Vec::new(), Vec::new()];
            for d in [Direction::Ingress, Direction::Egress] {
                let di = direction_index(d);
                for &rid in p.rules(d) {
                    rules[di].push(t.rules.len());
                    t.rules_of_direction[di].push(t.rules.len());
                    let rule = compile_rule(cluster, set, &hosts, set.admin_rule(rid));
                    t.rules.push(rule);
                }
                if !rules[di].is_empty() {
                    t.with_rules[di].push(pi);
                    for x in subjects.ones() {
                        t.of[di][x].push(pi);
                    }
                }
            }
            t.policies.push(TierPolicy {
                tier: p.tier,
                subjects,
                rules,
            });
        }
        t
    }

    /// Whether some admin policy applies to someone.
    pub(super) fn any(&self) -> bool {
        !self.policies.is_empty()
    }

    /// Whether admin policies select identity `x` for direction `d`.
    pub(super) fn selects(&self, d: Direction, x: usize) -> bool {
        !self.of[direction_index(d)][x].is_empty()
    }

    /// The action of the first rule `matches` of subject `x`'s policies of `tier` (`Pass` when
    /// it passes), `None` when no rule matches.
    fn decide(
        &self,
        d: Direction,
        x: usize,
        tier: Tier,
        matches: &impl Fn(usize, &TierRule) -> bool,
    ) -> Option<Action> {
        let di = direction_index(d);
        for &pi in &self.of[di][x] {
            let p = &self.policies[pi];
            if p.tier != tier {
                continue;
            }
            if let Some(&ri) = p.rules[di].iter().find(|&&ri| matches(ri, &self.rules[ri])) {
                return Some(self.rules[ri].action);
            }
        }
        None
    }

    /// The walk of one flow: subject `x`'s direction `d`, the far end matching the rules
    /// `matches` says (peer and port), NetworkPolicy isolating `x` or not and allowing or not.
    pub(super) fn allows(
        &self,
        d: Direction,
        x: usize,
        np_isolated: bool,
        np_allows: impl FnOnce() -> bool,
        matches: impl Fn(usize, &TierRule) -> bool,
    ) -> bool {
        if !self.selects(d, x) {
            return np_allows();
        }
        match self.decide(d, x, Tier::Admin, &matches) {
            Some(Action::Allow) => return true,
            Some(Action::Deny) => return false,
            Some(Action::Pass) | None => {}
        }
        if np_isolated {
            return np_allows();
        }
        self.decide(d, x, Tier::Baseline, &matches) != Some(Action::Deny)
    }

    /// Folds the rules of `policies` of `tier` in order: `mask(policy, rule, out)` writes the
    /// elements the rule matches into `out` (returning false when it matches none).
    fn fold(
        &self,
        f: &mut Fold,
        di: usize,
        policies: &[usize],
        tier: Tier,
        mask: &mut impl FnMut(&Bits, usize, &TierRule, &mut Bits) -> bool,
    ) {
        for &pi in policies {
            let p = &self.policies[pi];
            if p.tier != tier {
                continue;
            }
            for &ri in &p.rules[di] {
                if f.undecided.is_empty() {
                    return;
                }
                let r = &self.rules[ri];
                if !mask(&p.subjects, ri, r, &mut f.hit) {
                    continue;
                }
                f.hit.and_assign(&f.undecided);
                match r.action {
                    Action::Allow => f.accepted.or_assign(&f.hit),
                    Action::Deny => f.denied.or_assign(&f.hit),
                    Action::Pass => {}
                }
                f.undecided.and_not_assign(&f.hit);
            }
        }
    }

    /// The walk over a set of elements: `out` comes in as NetworkPolicy's answer (meaningful
    /// where `np` isolates) and leaves as the tiers' answer.
    fn walk(
        &self,
        f: &mut Fold,
        out: &mut Bits,
        di: usize,
        policies: &[usize],
        np: NpIsolated<'_>,
        mut mask: impl FnMut(&Bits, usize, &TierRule, &mut Bits) -> bool,
    ) {
        f.accepted.clear();
        f.denied.clear();
        f.undecided.clone_from(&f.all);
        self.fold(f, di, policies, Tier::Admin, &mut mask);
        f.rest.assign_and_not(&f.all, &f.accepted);
        f.rest.and_not_assign(&f.denied);
        let isolated = match np {
            NpIsolated::All => {
                out.and_assign(&f.rest);
                out.or_assign(&f.accepted);
                return;
            }
            NpIsolated::None => {
                f.denied.clear();
                f.undecided.clone_from(&f.rest);
                self.fold(f, di, policies, Tier::Baseline, &mut mask);
                out.assign_and_not(&f.rest, &f.denied);
                out.or_assign(&f.accepted);
                return;
            }
            NpIsolated::Some(b) => b,
        };
        out.and_assign(isolated);
        f.denied.clear();
        f.undecided.assign_and_not(&f.rest, isolated);
        self.fold(f, di, policies, Tier::Baseline, &mut mask);
        f.hit.assign_and_not(&f.rest, isolated);
        f.hit.and_not_assign(&f.denied);
        out.or_assign(&f.hit);
        out.and_assign(&f.rest);
        out.or_assign(&f.accepted);
    }

    /// The walk of subject `x`'s direction `d` over elements (atoms of one pair, or identities):
    /// `out` holds NetworkPolicy's answer and gets the tiers'; `mask(rule index, rule, out)` writes
    /// what the rule matches. Nothing changes for a subject no admin policy selects.
    pub(super) fn walk_subject(
        &self,
        f: &mut Fold,
        out: &mut Bits,
        d: Direction,
        x: usize,
        np_isolated: bool,
        mut mask: impl FnMut(usize, &TierRule, &mut Bits) -> bool,
    ) {
        let di = direction_index(d);
        if self.of[di][x].is_empty() {
            return;
        }
        let np = NpIsolated::of(np_isolated);
        self.walk(f, out, di, &self.of[di][x], np, |_, ri, r, out| {
            mask(ri, r, out)
        });
    }

    /// What the walk of subject `x`'s direction `d` decides over elements, whatever
    /// NetworkPolicy says: see [`Answer`]. `mask` as for [`Tiers::walk_subject`].
    pub(super) fn answer(
        &self,
        f: &mut Fold,
        d: Direction,
        x: usize,
        np_isolated: bool,
        mut mask: impl FnMut(usize, &TierRule, &mut Bits) -> bool,
    ) -> Answer {
        let di = direction_index(d);
        let policies = &self.of[di][x];
        let mut mask = |_: &Bits, ri, r: &TierRule, out: &mut Bits| mask(ri, r, out);
        f.accepted.clear();
        f.denied.clear();
        f.undecided.clone_from(&f.all);
        self.fold(f, di, policies, Tier::Admin, &mut mask);
        f.rest.assign_and_not(&f.all, &f.accepted);
        f.rest.and_not_assign(&f.denied);
        if np_isolated {
            return Answer {
                accepted: f.accepted.clone(),
                rest: f.rest.clone(),
            };
        }
        f.denied.clear();
        f.undecided.clone_from(&f.rest);
        self.fold(f, di, policies, Tier::Baseline, &mut mask);
        let mut accepted = f.rest.clone();
        accepted.and_not_assign(&f.denied);
        accepted.or_assign(&f.accepted);
        Answer {
            accepted,
            rest: Bits::new(f.len),
        }
    }

    /// The egress walk of source identity `s` over destination identities: `out` holds
    /// NetworkPolicy's row; `d` the destinations of each family, `ok(rule)` the destinations
    /// its ports admit (`None`: none).
    pub(super) fn egress_row<'b>(
        &self,
        f: &mut Fold,
        out: &mut Bits,
        s: usize,
        np_isolated: bool,
        d: [&Bits; 2],
        ok: impl Fn(usize) -> Option<&'b Bits>,
    ) {
        let di = direction_index(Direction::Egress);
        if self.of[di][s].is_empty() {
            return;
        }
        let np = NpIsolated::of(np_isolated);
        let all = f.all.clone();
        self.walk(f, out, di, &self.of[di][s], np, |_, ri, r, out| {
            let Some(ok) = ok(ri) else {
                return false;
            };
            r.peer_mask(out, &all, d);
            out.and_assign(ok);
            true
        });
    }

    /// The ingress walk of every destination identity against source identity `s` at once:
    /// `out` holds NetworkPolicy's answers, `isolated` the destinations it isolates.
    pub(super) fn ingress_row<'b>(
        &self,
        f: &mut Fold,
        out: &mut Bits,
        s: usize,
        isolated: &Bits,
        d: [&Bits; 2],
        ok: impl Fn(usize) -> Option<&'b Bits>,
    ) {
        let di = direction_index(Direction::Ingress);
        if self.with_rules[di].is_empty() {
            return;
        }
        let all = f.all.clone();
        let np = NpIsolated::Some(isolated);
        self.walk(
            f,
            out,
            di,
            &self.with_rules[di],
            np,
            |subjects, ri, r, out| {
                let any = r.any_peer || r.selected.get(s);
                let v4 = r.has_addressed && r.addressed[0].get(s);
                let v6 = r.has_addressed && r.addressed[1].get(s);
                if !(any || v4 || v6) {
                    return false;
                }
                let Some(ok) = ok(ri) else {
                    return false;
                };
                if any {
                    out.clone_from(&all);
                } else {
                    out.clear();
                    if v4 {
                        out.or_assign(d[0]);
                    }
                    if v6 {
                        out.or_assign(d[1]);
                    }
                }
                out.and_assign(subjects);
                out.and_assign(ok);
                true
            },
        );
    }

    /// Identity `x`'s membership in the peers of every rule of direction `d`: selectors, IPv4
    /// and IPv6 addresses (what makes a side, with the policies selecting it).
    pub(super) fn membership(&self, x: usize, d: Direction) -> Vec<u64> {
        self.membership_in(x, &self.rules_of_direction[direction_index(d)])
    }

    /// The rules of the policies selecting identity `x` for direction `d`, in walk order.
    pub(super) fn rules_of(&self, d: Direction, x: usize) -> Vec<usize> {
        let di = direction_index(d);
        self.of[di][x]
            .iter()
            .flat_map(|&pi| self.policies[pi].rules[di].iter().copied())
            .collect()
    }

    /// Identity `x`'s membership in the peers of the rules `list`: selectors, IPv4 and IPv6
    /// addresses.
    pub(super) fn membership_in(&self, x: usize, list: &[usize]) -> Vec<u64> {
        let mut b = Bits::new(list.len() * 3);
        for (k, &ri) in list.iter().enumerate() {
            let r = &self.rules[ri];
            if r.selected.get(x) {
                b.set(3 * k);
            }
            if r.has_addressed && r.addressed[0].get(x) {
                b.set(3 * k + 1);
            }
            if r.has_addressed && r.addressed[1].get(x) {
                b.set(3 * k + 2);
            }
        }
        b.words().to_vec()
    }
}

/// The policy set's blocks that are one host address (for resolved `domainNames`), by network.
fn host_blocks(set: &PolicySet) -> HashMap<IpNet, usize> {
    let mut out = HashMap::new();
    for (i, b) in set.blocks.list.iter().enumerate() {
        let host = b.cidr.prefix_len() == b.cidr.max_prefix_len();
        if host && b.except.is_empty() {
            out.entry(b.cidr).or_insert(i);
        }
    }
    out
}

fn compile_rule(
    cluster: &Cluster,
    set: &PolicySet,
    hosts: &HashMap<IpNet, usize>,
    rule: &CompiledAdminRule,
) -> TierRule {
    let ic = set.identity_count();
    let mut out = TierRule {
        action: rule.action,
        any_peer: false,
        selected: Bits::new(ic),
        addressed: [Bits::new(ic), Bits::new(ic)],
        has_addressed: false,
        networks: Vec::new(),
        addresses: Vec::new(),
        ports: rule.ports,
    };
    let peers = match &rule.peers {
        RulePeers::Any => {
            out.any_peer = true;
            return out;
        }
        RulePeers::Listed(peers) => peers,
    };
    let add_block = |out: &mut TierRule, b: usize| {
        if let Some(members) = set.blocks.members.get(b) {
            out.has_addressed = true;
            out.addressed[0].or_assign(&members[0]);
            out.addressed[1].or_assign(&members[1]);
        }
    };
    for &peer in peers {
        match set.peer(peer) {
            PeerKey::Selector { .. } => out.selected.or_assign(set.peer_members(peer)),
            PeerKey::Network(n) => {
                out.networks.push(*n);
                if let Some(b) = set.peer_block(peer) {
                    add_block(&mut out, b);
                }
            }
            PeerKey::Nodes(selector) => {
                for n in cluster.nodes.iter().filter(|n| selector.matches(&n.labels)) {
                    out.addresses.extend(n.addresses.iter().copied());
                }
            }
            PeerKey::DomainNames(names) => {
                for a in cluster.resolved_addresses(names) {
                    if let Some(&b) = hosts.get(&IpNet::from(a)) {
                        add_block(&mut out, b);
                    }
                    out.addresses.push(a);
                }
            }
            // NetworkPolicy ipBlocks are no admin peers.
            PeerKey::Block(_) => {}
        }
    }
    out
}
