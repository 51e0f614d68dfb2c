//! The checks about the admin tiers:
//! * NP011: two admin policies of one tier with the same priority that select a common workload
//!   for a common direction. Which of them decides first is undefined upstream ("the
//!   implementation can apply any of the matching policies"); netpol takes them in
//!   [`crate::model::admin_order`] (v1alpha2 before v1alpha1, then by name).
//! * NP012: a NetworkPolicy rule an Admin-tier Deny shadows: for a workload the policy selects,
//!   a peer the rule admits and a port it admits, an Admin-tier rule denies the direction before
//!   NetworkPolicy is consulted. Found by evaluating witnesses (up to [`WITNESSES`] subjects and
//!   peers per rule, each rule port's first port, or the admin rules' ports for a rule on every
//!   port), so a finding is always a real connection; shadowing only at ports no rule names can
//!   go unreported.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use crate::eval::{
    admin_policy_selects, admin_tier_first_match, tier_policies, AdminRuleMatch, WorkloadFlow,
};
use crate::model::{
    admin_order, AdminAction, AdminPolicy, AdminPort, AdminTier, Cluster, Direction, EvalOptions,
    Policy, PortSpec, Protocol, RuleItem,
};

use crate::policy_set::rules::direction_index;

use super::selection::Index;
use super::{Check, Finding};

/// How many subjects and how many peers each NP012 search tries per rule.
pub const WITNESSES: usize = 16;

/// `ClusterNetworkPolicy NAME` (or the v1alpha1 kind), how findings name an admin policy.
pub fn admin_object(policy: &AdminPolicy) -> String {
    format!("{} {}", policy.api.kind(), policy.name)
}

/// NP011: equal priorities in one tier that overlap on a workload and direction.
pub fn priority_ties(cluster: &Cluster) -> Vec<Finding> {
    let order = admin_order(&cluster.admin_policies);
    let mut out = Vec::new();
    for (n, &i) in order.iter().enumerate() {
        for &j in &order[n + 1..] {
            let (a, b) = (&cluster.admin_policies[i], &cluster.admin_policies[j]);
            if a.tier != b.tier || a.priority != b.priority {
                continue;
            }
            if let Some(finding) = tie(cluster, a, b) {
                out.push(finding);
            }
        }
    }
    out
}

fn tie(cluster: &Cluster, first: &AdminPolicy, second: &AdminPolicy) -> Option<Finding> {
    let direction = [Direction::Ingress, Direction::Egress]
        .into_iter()
        .find(|d| !first.rules(*d).is_empty() && !second.rules(*d).is_empty())?;
    let shared = cluster.workloads.iter().find(|w| {
        admin_policy_selects(cluster, first, w) && admin_policy_selects(cluster, second, w)
    })?;
    let check = Check::AdminPriorityTie;
    Some(Finding {
        check,
        severity: check.default_severity(),
        object: admin_object(second),
        origin: second.origin.clone(),
        message: format!(
            "{} and {} both have priority {} in the {} tier and both select {} for {direction}: \
             which decides first is undefined upstream; netpol takes {} first",
            second.key(),
            first.key(),
            first.priority,
            first.tier,
            shared.key(),
            first.key(),
        ),
        hint: check.help().to_string(),
    })
}

/// NP012: NetworkPolicy rules an Admin-tier Deny shadows (see the module documentation).
pub fn shadowed_by_admin_deny(
    cluster: &Cluster,
    opts: EvalOptions,
    index: &Index<'_>,
) -> Vec<Finding> {
    let denies = cluster.admin_policies.iter().any(|p| {
        p.tier == AdminTier::Admin
            && p.ingress
                .iter()
                .chain(&p.egress)
                .any(|r| r.action != AdminAction::Accept)
    });
    if !denies {
        return Vec::new();
    }
    let admin_ports = admin_ports(cluster);
    let denying = DenyingPolicies::new(cluster);
    let mut out = Vec::new();
    for policy in &cluster.policies {
        for direction in [Direction::Ingress, Direction::Egress] {
            if !policy.affects(direction) {
                continue;
            }
            for (rule, _) in policy.rules(direction).iter().enumerate() {
                let search = Search {
                    cluster,
                    opts,
                    index,
                    policy,
                    direction,
                    rule,
                    admin_ports: &admin_ports,
                    denying: &denying,
                };
                if let Some(f) = search.witness() {
                    out.push(f);
                }
            }
        }
    }
    out
}

/// The ports admin rules name, per protocol (where a rule on every port is tried).
fn admin_ports(cluster: &Cluster) -> BTreeSet<(Protocol, u16)> {
    let mut out = BTreeSet::new();
    for p in &cluster.admin_policies {
        for r in p.ingress.iter().chain(&p.egress) {
            for port in r.ports.iter().flatten() {
                if let AdminPort::Protocol {
                    protocol,
                    ports: Some((start, _)),
                } = port
                {
                    out.insert((*protocol, *start));
                }
            }
        }
    }
    for protocol in Protocol::ALL {
        out.insert((protocol, 80));
    }
    out
}

/// One NP012 search: a rule of a policy in a direction.
struct Search<'a> {
    cluster: &'a Cluster,
    opts: EvalOptions,
    index: &'a Index<'a>,
    policy: &'a Policy,
    direction: Direction,
    rule: usize,
    admin_ports: &'a BTreeSet<(Protocol, u16)>,
    denying: &'a DenyingPolicies<'a>,
}

/// Per workload and direction, the Admin-tier policies its walk reads when one of them has a
/// rule that can deny (Deny, or a Pass or Deny failing closed); none otherwise, since then no
/// flow of the workload in that direction can be shadowed. Asked for the same few subjects by
/// many rules, so kept.
struct DenyingPolicies<'a> {
    cluster: &'a Cluster,
    /// `[ingress, egress]`: workload -> its Admin-tier policies, empty when none can deny.
    of: [RefCell<HashMap<usize, Vec<&'a AdminPolicy>>>; 2],
}

impl<'a> DenyingPolicies<'a> {
    fn new(cluster: &'a Cluster) -> Self {
        DenyingPolicies {
            cluster,
            of: Default::default(),
        }
    }

    /// Whether some Admin-tier rule can deny `workload` in `direction`.
    fn can_deny(&self, workload: usize, direction: Direction) -> bool {
        self.with(workload, direction, |policies| !policies.is_empty())
    }

    /// Runs `f` with the Admin-tier policies of `workload` in `direction` (empty when none can
    /// deny).
    fn with<T>(
        &self,
        workload: usize,
        direction: Direction,
        f: impl FnOnce(&[&'a AdminPolicy]) -> T,
    ) -> T {
        let mut cache = self.of[direction_index(direction)].borrow_mut();
        let policies = cache.entry(workload).or_insert_with(|| {
            let w = &self.cluster.workloads[workload];
            let admin = tier_policies(self.cluster, w, direction).admin;
            let denies = admin.iter().any(|p| {
                p.rules(direction)
                    .iter()
                    .any(|r| r.action != AdminAction::Accept)
            });
            if denies {
                admin
            } else {
                Vec::new()
            }
        });
        f(policies)
    }
}

impl Search<'_> {
    fn witness(&self) -> Option<Finding> {
        let subjects: Vec<usize> = self
            .index
            .subjects(self.policy)
            .take(WITNESSES)
            .filter(|&s| self.denying.can_deny(s, self.direction))
            .collect();
        if subjects.is_empty() {
            return None;
        }
        let peers: Vec<usize> = (0..self.cluster.workloads.len())
            .filter(|&i| self.rule_admits_peer(i))
            .take(WITNESSES)
            .collect();
        for &s in &subjects {
            for &p in &peers {
                if let Some(f) = self.try_pair(s, p) {
                    return Some(f);
                }
            }
        }
        None
    }

    /// Whether the rule's peers admit workload `i` (by selector; ipBlock peers by the
    /// evaluator, through the ports tried below).
    fn rule_admits_peer(&self, i: usize) -> bool {
        let w = &self.cluster.workloads[i];
        let rule = &self.policy.rules(self.direction)[self.rule];
        rule.peers.is_empty()
            || rule.peers.iter().any(|peer| match peer {
                crate::model::Peer::Selector {
                    pod_selector,
                    namespace_selector,
                } => self.index.peer_selects(
                    self.policy,
                    pod_selector.as_ref(),
                    namespace_selector.as_ref(),
                    w,
                ),
                crate::model::Peer::IpBlock(b) => w.addresses.iter().any(|a| b.contains(*a)),
            })
    }

    /// The ports to try for the flow towards workload `dst`.
    fn ports(&self, dst: usize) -> Vec<(Protocol, u16)> {
        let rule = &self.policy.rules(self.direction)[self.rule];
        if rule.ports.is_empty() {
            return self.admin_ports.iter().copied().collect();
        }
        let dst = &self.cluster.workloads[dst];
        rule.ports
            .iter()
            .filter_map(|p| match &p.port {
                None => Some((p.protocol, 80)),
                Some(PortSpec::Number(n)) => Some((p.protocol, *n)),
                Some(PortSpec::Range { start, .. }) => Some((p.protocol, *start)),
                Some(PortSpec::Named(name)) => dst
                    .resolve_named_port(name, p.protocol)
                    .map(|n| (p.protocol, n)),
            })
            .collect()
    }

    fn try_pair(&self, subject: usize, peer: usize) -> Option<Finding> {
        if subject == peer {
            return None;
        }
        let (src, dst) = match self.direction {
            Direction::Egress => (subject, peer),
            Direction::Ingress => (peer, subject),
        };
        for (protocol, port) in self.ports(dst) {
            let flow = WorkloadFlow {
                src: &self.cluster.workloads[src],
                dst: &self.cluster.workloads[dst],
                protocol,
                port,
            };
            let first = self.denying.with(subject, self.direction, |admin| {
                admin_tier_first_match(self.cluster, self.opts, self.direction, admin, flow)
            });
            if let Some(by) = first.as_ref().and_then(admin_denial) {
                return Some(self.finding(&by, subject, peer, protocol, port));
            }
        }
        None
    }

    fn finding(
        &self,
        by: &str,
        subject: usize,
        peer: usize,
        protocol: Protocol,
        port: u16,
    ) -> Finding {
        let w = |i: usize| self.cluster.workloads[i].key();
        let check = Check::ShadowedByAdminDeny;
        let message = format!(
            "{}[{}] never decides for {} with {} on {protocol}/{port}: {by} denies it in the Admin tier first",
            self.direction,
            self.rule,
            w(subject),
            w(peer),
        );
        let at = (self.direction, self.rule, RuleItem::Rule);
        Finding::about_item(check, self.policy, at, message)
    }
}

/// The Admin-tier rule that denied a side, as `cnp/NAME egress[0]`.
fn admin_denial(m: &AdminRuleMatch) -> Option<String> {
    (m.action == AdminAction::Deny).then(|| format!("{} {}[{}]", m.policy, m.direction, m.rule))
}
