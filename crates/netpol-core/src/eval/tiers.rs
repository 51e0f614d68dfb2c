//! The walk through the tiers for one direction of one workload, as the ClusterNetworkPolicy API
//! describes it: Admin policies (in [`admin_order`]), first matching rule decides (Accept, Deny,
//! or Pass to the next tier); then NetworkPolicy v1, final for the workloads it isolates in the
//! direction; then Baseline policies the same way as Admin; then the default, allow.
//!
//! A workload no admin policy selects for the direction gets exactly the NetworkPolicy verdict,
//! so clusters without admin policies are explained as before.

use std::net::IpAddr;

use serde::Serialize;

use super::{namespace_labels, DirectionVerdict, FlowCtx, PeerView};
use crate::model::{
    admin_order, AdminAction, AdminPeer, AdminPolicy, AdminRule, AdminSubject, AdminTier, Cluster,
    Direction, EvalOptions, LabelSelector, Protocol, Workload,
};
use crate::render::render_admin_rule;

/// The admin rule that decided a tier (or passed it on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AdminRuleMatch {
    /// `cnp/NAME`, `anp/NAME` or `banp/NAME`.
    pub policy: String,
    /// The policy's tier.
    pub tier: AdminTier,
    /// The policy's priority.
    pub priority: u32,
    /// What the rule did: its action, or Deny for a Deny or Pass rule that fails closed.
    pub action: AdminAction,
    /// The direction of the rule.
    pub direction: Direction,
    /// Index of the rule in the policy's `ingress` or `egress` list.
    pub rule: usize,
    /// The rule's `name`, when it has one.
    pub rule_name: Option<String>,
    /// `file:line` of the rule (else of the policy), when known.
    pub origin: Option<String>,
    /// Index of the first matching peer; `None` when a peer of an unknown kind made the rule
    /// match everything (fail closed).
    pub peer: Option<usize>,
    /// Index of the first matching `protocols` entry; `None` when the rule has none.
    pub port: Option<usize>,
    /// The rule in words.
    pub rule_text: String,
    /// True when the rule matched because a peer of an unknown kind fails closed.
    pub fail_closed: bool,
}

/// What one admin tier did for a direction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TierOutcome {
    /// A rule matched: Accept or Deny decided, Pass sent the flow on.
    Matched(AdminRuleMatch),
    /// The tier's policies select the workload, but none of their rules matches the flow.
    NoMatch {
        /// The policies of the tier that select the workload for this direction, in walk order.
        policies: Vec<String>,
    },
    /// No policy of the tier selects the workload for this direction.
    NoPolicy,
}

/// One step of the walk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "tier", rename_all = "snake_case")]
pub enum TierStep {
    /// The Admin tier.
    Admin {
        /// What it did.
        outcome: TierOutcome,
    },
    /// The NetworkPolicy tier: its own verdict; `Open` (not isolated) falls through.
    NetworkPolicy {
        /// What NetworkPolicy says on its own.
        verdict: Box<DirectionVerdict>,
    },
    /// The Baseline tier.
    Baseline {
        /// What it did.
        outcome: TierOutcome,
    },
    /// No tier decided: the default allows.
    Default,
}

/// The admin policies that select a workload and have rules for one direction, by tier, in walk
/// order: what that direction of the workload walks.
pub struct TierPolicies<'a> {
    /// The Admin tier's.
    pub admin: Vec<&'a AdminPolicy>,
    /// The Baseline tier's.
    pub baseline: Vec<&'a AdminPolicy>,
}

impl TierPolicies<'_> {
    /// Whether no admin policy concerns the direction (NetworkPolicy alone decides).
    pub fn is_empty(&self) -> bool {
        self.admin.is_empty() && self.baseline.is_empty()
    }
}

/// The admin policies `workload`'s `direction` walks.
pub fn tier_policies<'a>(
    cluster: &'a Cluster,
    workload: &Workload,
    direction: Direction,
) -> TierPolicies<'a> {
    let mut out = TierPolicies {
        admin: Vec::new(),
        baseline: Vec::new(),
    };
    for p in admin_policies_of(cluster, workload) {
        if p.rules(direction).is_empty() {
            continue;
        }
        match p.tier {
            AdminTier::Admin => out.admin.push(p),
            AdminTier::Baseline => out.baseline.push(p),
        }
    }
    out
}

/// The admin policies whose subject selects `workload`, in walk order (both tiers, whatever
/// their rules).
pub fn admin_policies_of<'a>(cluster: &'a Cluster, workload: &Workload) -> Vec<&'a AdminPolicy> {
    admin_order(&cluster.admin_policies)
        .into_iter()
        .map(|i| &cluster.admin_policies[i])
        .filter(|p| admin_policy_selects(cluster, p, workload))
        .collect()
}

/// Whether an admin policy's subject selects `workload` (whatever its rules).
pub fn admin_policy_selects(cluster: &Cluster, policy: &AdminPolicy, workload: &Workload) -> bool {
    subject_matches(cluster, &policy.subject, workload)
}

fn subject_matches(cluster: &Cluster, subject: &AdminSubject, w: &Workload) -> bool {
    match subject {
        AdminSubject::Namespaces(ns) => namespace_matches(cluster, ns, w),
        AdminSubject::Pods {
            namespace_selector,
            pod_selector,
        } => namespace_matches(cluster, namespace_selector, w) && pod_selector.matches(&w.labels),
    }
}

fn namespace_matches(cluster: &Cluster, selector: &LabelSelector, w: &Workload) -> bool {
    selector.matches(&namespace_labels(cluster, &w.namespace))
}

/// A flow between two workloads on one protocol and port, as [`admin_tier_first_match`] asks.
#[derive(Clone, Copy)]
pub struct WorkloadFlow<'a> {
    /// The source workload.
    pub src: &'a Workload,
    /// The destination workload (a different one), on which named ports resolve.
    pub dst: &'a Workload,
    /// The protocol.
    pub protocol: Protocol,
    /// The destination port.
    pub port: u16,
}

/// The first step of the walk alone: the rule of the Admin-tier policies `admin` (the subject's,
/// from [`tier_policies`]) that first matches `flow` in `direction` (the source's egress or the
/// destination's ingress), with the addresses [`super::flow_addresses`] picks. What
/// [`super::evaluate`]'s verdict reports as [`DirectionVerdict::admin_tier_match`] for a flow
/// between two different workloads, without NetworkPolicy, the Baseline tier or the
/// explanations: for callers that ask it of many flows (lint's searches).
pub fn admin_tier_first_match(
    cluster: &Cluster,
    opts: EvalOptions,
    direction: Direction,
    admin: &[&AdminPolicy],
    flow: WorkloadFlow<'_>,
) -> Option<AdminRuleMatch> {
    let ctx = FlowCtx {
        cluster,
        opts,
        protocol: flow.protocol,
        port: flow.port,
        dst: Some(flow.dst),
        flow: super::FlowKind::Plain,
    };
    let addresses = super::flow_addresses(flow.src, flow.dst);
    let peer = match direction {
        Direction::Egress => PeerView::Workload {
            workload: flow.dst,
            address: addresses.map(|(_, d)| d),
        },
        Direction::Ingress => PeerView::Workload {
            workload: flow.src,
            address: addresses.map(|(s, _)| s),
        },
    };
    match tier_outcome(&ctx, direction, admin, &peer) {
        TierOutcome::Matched(m) => Some(m),
        TierOutcome::NoMatch { .. } | TierOutcome::NoPolicy => None,
    }
}

/// Walks the tiers for `subject` in `direction` against `peer`; `network_policy` computes the
/// NetworkPolicy tier's verdict (only when the walk gets there).
pub(super) fn walk(
    ctx: &FlowCtx<'_>,
    direction: Direction,
    subject: &Workload,
    peer: &PeerView<'_>,
    network_policy: impl FnOnce() -> DirectionVerdict,
) -> DirectionVerdict {
    let sel = tier_policies(ctx.cluster, subject, direction);
    if sel.is_empty() {
        return network_policy();
    }
    let mut steps = Vec::new();
    let admin = tier_outcome(ctx, direction, &sel.admin, peer);
    let decided = final_action(&admin);
    steps.push(TierStep::Admin { outcome: admin });
    if let Some(allowed) = decided {
        return DirectionVerdict::Tiered { allowed, steps };
    }
    let np = network_policy();
    let np_open = np == DirectionVerdict::Open;
    let np_allows = np.allows();
    steps.push(TierStep::NetworkPolicy {
        verdict: Box::new(np),
    });
    if !np_open {
        return DirectionVerdict::Tiered {
            allowed: np_allows,
            steps,
        };
    }
    let baseline = tier_outcome(ctx, direction, &sel.baseline, peer);
    let decided = final_action(&baseline);
    steps.push(TierStep::Baseline { outcome: baseline });
    if let Some(allowed) = decided {
        return DirectionVerdict::Tiered { allowed, steps };
    }
    steps.push(TierStep::Default);
    DirectionVerdict::Tiered {
        allowed: true,
        steps,
    }
}

/// `Some(allowed)` when the tier decided (Accept or Deny), `None` when it passed or nothing
/// matched.
fn final_action(outcome: &TierOutcome) -> Option<bool> {
    match outcome {
        TierOutcome::Matched(m) => match m.action {
            AdminAction::Accept => Some(true),
            AdminAction::Deny => Some(false),
            AdminAction::Pass => None,
        },
        TierOutcome::NoMatch { .. } | TierOutcome::NoPolicy => None,
    }
}

/// The first rule of the tier's policies (in walk order, rules in written order) that matches.
fn tier_outcome(
    ctx: &FlowCtx<'_>,
    direction: Direction,
    policies: &[&AdminPolicy],
    peer: &PeerView<'_>,
) -> TierOutcome {
    if policies.is_empty() {
        return TierOutcome::NoPolicy;
    }
    for policy in policies {
        for (index, rule) in policy.rules(direction).iter().enumerate() {
            if let Some(m) = rule_match(ctx, policy, direction, index, rule, peer) {
                return TierOutcome::Matched(m);
            }
        }
    }
    TierOutcome::NoMatch {
        policies: policies.iter().map(|p| p.key()).collect(),
    }
}

/// How a rule's peers matched.
enum PeerHit {
    /// This peer (by index) matched.
    Peer(usize),
    /// A peer of an unknown kind: the whole rule is Deny all.
    FailClosed,
}

fn rule_match(
    ctx: &FlowCtx<'_>,
    policy: &AdminPolicy,
    direction: Direction,
    index: usize,
    rule: &AdminRule,
    peer: &PeerView<'_>,
) -> Option<AdminRuleMatch> {
    let hit = peer_hit(ctx, rule, peer)?;
    let (action, port, fail_closed) = match hit {
        PeerHit::FailClosed => (AdminAction::Deny, None, true),
        PeerHit::Peer(_) => (rule.action, port_hit(ctx, rule)?, false),
    };
    let origin = rule.origin.as_ref().or(policy.origin.as_ref());
    Some(AdminRuleMatch {
        policy: policy.key(),
        tier: policy.tier,
        priority: policy.priority,
        action,
        direction,
        rule: index,
        rule_name: rule.name.clone(),
        origin: origin.map(|o| o.to_string()),
        peer: match hit {
            PeerHit::Peer(i) => Some(i),
            PeerHit::FailClosed => None,
        },
        port,
        rule_text: render_admin_rule(direction, index, rule),
        fail_closed,
    })
}

/// The first peer of `rule` matching the far end; a peer of an unknown kind fails closed (the
/// whole Accept rule matches nothing, a Deny or Pass rule matches everything).
fn peer_hit(ctx: &FlowCtx<'_>, rule: &AdminRule, peer: &PeerView<'_>) -> Option<PeerHit> {
    // The API (v1alpha2 ClusterNetworkPolicyEgressPeer): 'For "Accept" rules, "fail closed"
    // means: "treat the rule as matching no traffic". For "Deny" and "Pass" rules, "fail closed"
    // means: "treat the rule as a 'Deny all' rule".' The rule, not only the unknown peer: an
    // Accept rule's known peers must not match either.
    if rule.peers.contains(&AdminPeer::Unknown) {
        return match rule.action {
            AdminAction::Accept => None,
            AdminAction::Deny | AdminAction::Pass => Some(PeerHit::FailClosed),
        };
    }
    rule.peers
        .iter()
        .position(|p| admin_peer_matches(ctx, p, peer))
        .map(PeerHit::Peer)
}

/// Whether one admin peer matches the far end of the flow.
fn admin_peer_matches(ctx: &FlowCtx<'_>, peer: &AdminPeer, far: &PeerView<'_>) -> bool {
    let address = match far {
        PeerView::Workload { address, .. } => *address,
        PeerView::External(a) => Some(*a),
    };
    match (peer, far) {
        (AdminPeer::Namespaces(ns), PeerView::Workload { workload, .. }) => {
            namespace_matches(ctx.cluster, ns, workload)
        }
        (
            AdminPeer::Pods {
                namespace_selector,
                pod_selector,
            },
            PeerView::Workload { workload, .. },
        ) => {
            namespace_matches(ctx.cluster, namespace_selector, workload)
                && pod_selector.matches(&workload.labels)
        }
        (AdminPeer::Namespaces(_) | AdminPeer::Pods { .. }, PeerView::External(_)) => false,
        (AdminPeer::Networks(nets), _) => {
            address.is_some_and(|a| nets.iter().any(|n| n.contains(&a)))
        }
        (AdminPeer::Nodes(selector), PeerView::External(a)) => node_matches(ctx, selector, *a),
        (AdminPeer::Nodes(_), PeerView::Workload { .. }) => false,
        (AdminPeer::DomainNames(names), _) => {
            address.is_some_and(|a| ctx.cluster.resolved_addresses(names).contains(&a))
        }
        (AdminPeer::Unknown, _) => false,
    }
}

/// Whether `address` belongs to a Node whose labels `selector` matches.
fn node_matches(ctx: &FlowCtx<'_>, selector: &LabelSelector, address: IpAddr) -> bool {
    ctx.cluster
        .nodes
        .iter()
        .any(|n| n.addresses.contains(&address) && selector.matches(&n.labels))
}

/// `Some(None)` when the rule has no protocols (every port), `Some(Some(i))` for the first
/// matching entry, `None` when no entry matches the flow's protocol and port.
fn port_hit(ctx: &FlowCtx<'_>, rule: &AdminRule) -> Option<Option<usize>> {
    let Some(ports) = &rule.ports else {
        return Some(None);
    };
    ports
        .iter()
        .position(|p| p.admits(ctx.protocol, ctx.port, ctx.dst))
        .map(Some)
}
