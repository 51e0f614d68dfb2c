//! The reference evaluator: decides one flow by reading every policy, the way the Kubernetes API
//! documentation describes NetworkPolicy, and records why (provenance). It is deliberately plain
//! and slow; the bulk analyses in [`crate::analysis`] are checked against it.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Serialize;

mod families;
mod matching;
mod replicas;
mod tiers;

pub use families::{evaluate_ends, FamilyVerdicts, FlowEnd};
pub use replicas::{evaluate_replicas, evaluate_replicas_at};
pub use tiers::{
    admin_policies_of, admin_policy_selects, admin_tier_first_match, tier_policies, AdminRuleMatch,
    TierOutcome, TierPolicies, TierStep, WorkloadFlow,
};

pub use crate::render::{explain, render_labels, render_peer, render_rule};
use matching::{port_reason, protocol_reason, rule_peer_matches, rule_port_matches, PortOutcome};

use crate::model::{
    address_of_family, Cluster, Direction, EvalOptions, IpFamily, Labels, Policy, Protocol, Rule,
    RuleItem, Workload, NAMESPACE_NAME_LABEL,
};

/// One end of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Endpoint {
    /// A workload, by index into [`Cluster::workloads`].
    Workload(usize),
    /// An address outside the cluster's workloads (or one given as a bare address); a node is
    /// the external end of its address.
    External(IpAddr),
}

impl Endpoint {
    /// `namespace/name` for a workload (`kind/namespace/name` when a Pod and a VM share it, as in
    /// every other output), `node/NAME` for a node's address, the address for another external
    /// end, `#<index>?` for a workload index that does not exist.
    pub fn describe(&self, cluster: &Cluster) -> String {
        match self {
            Endpoint::Workload(i) => match cluster.workloads.get(*i) {
                Some(w) => {
                    // Compared in place: this runs for both ends of every evaluation (lint's
                    // searches evaluate many), so no key is built for the other workloads.
                    let shared = cluster
                        .workloads
                        .iter()
                        .filter(|o| o.name == w.name && o.namespace == w.namespace)
                        .nth(1)
                        .is_some();
                    if shared {
                        format!("{}/{}", w.kind.short_name(), w.key())
                    } else {
                        w.key()
                    }
                }
                None => format!("#{i}?"),
            },
            Endpoint::External(a) => match cluster.node_of_address(*a) {
                Some(n) => cluster.nodes[n].key(),
                None => a.to_string(),
            },
        }
    }
}

/// The concrete addresses a workload-to-workload flow uses, which is what `ipBlock` peers are
/// matched against.
///
/// The source uses its first address whose family (IPv4 or IPv6) the destination also has; the
/// destination uses its first address of that family. `None` when either side has no address or
/// they share no family: then no `ipBlock` can match the pair (selectors still can).
pub fn flow_addresses(src: &Workload, dst: &Workload) -> Option<(IpAddr, IpAddr)> {
    let src_addr = src
        .addresses
        .iter()
        .find(|a| dst.addresses.iter().any(|d| d.is_ipv4() == a.is_ipv4()))?;
    let dst_addr = dst
        .addresses
        .iter()
        .find(|d| d.is_ipv4() == src_addr.is_ipv4())?;
    Some((*src_addr, *dst_addr))
}

/// The decision on one flow, with the reason on each side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// `namespace/name` of the source workload, `node/NAME` of a node, or the source address.
    pub src: String,
    /// `namespace/name` of the destination workload, `node/NAME` of a node, or the destination
    /// address.
    pub dst: String,
    /// The flow's L4 protocol.
    pub protocol: Protocol,
    /// The destination port.
    pub port: u16,
    /// True when both the source's egress and the destination's ingress allow the flow.
    pub allowed: bool,
    /// The source address `ipBlock`s were matched against, when there is one.
    pub src_address: Option<IpAddr>,
    /// The destination address `ipBlock`s were matched against, when there is one.
    pub dst_address: Option<IpAddr>,
    /// The source's egress side.
    pub egress: DirectionVerdict,
    /// The destination's ingress side.
    pub ingress: DirectionVerdict,
    /// For a flow from one replica of a workload to another (see [`evaluate_replicas`]), the
    /// workload as `kind/namespace/name` (`deployment/shop/api`); absent from the JSON otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas_of: Option<String>,
}

/// What one side (egress of the source, ingress of the destination) says about a flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DirectionVerdict {
    /// This end is an external address: no policy applies to it.
    NotApplicable,
    /// The flow goes from a workload to itself, which is always allowed.
    SelfTraffic,
    /// The flow comes from the node the destination runs on, which is always allowed (kubelet
    /// probes).
    OwnNode {
        /// The node's name.
        node: String,
    },
    /// This end is a node: no policy applies to a node.
    Node {
        /// The node's name.
        node: String,
    },
    /// No policy selects the workload for this direction, so everything is allowed.
    Open,
    /// The workload is isolated and at least one rule allows the flow.
    Allowed {
        /// Keys of every policy that selects the workload for this direction.
        isolated_by: Vec<String>,
        /// Every rule that allows the flow, in policy then rule order; the first is "the" reason.
        allowed_by: Vec<RuleMatch>,
    },
    /// The workload is isolated and no rule allows the flow.
    Denied {
        /// Keys of every policy that selects the workload for this direction.
        isolated_by: Vec<String>,
        /// For each isolating policy, why it does not allow the flow.
        denials: Vec<PolicyDenial>,
    },
    /// The workload index does not exist in the cluster; treated as denied.
    UnknownWorkload {
        /// The index that was asked for.
        index: usize,
    },
    /// An admin policy (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy)
    /// selects the workload for this direction: the walk through the tiers, each step in turn,
    /// the last one decided.
    Tiered {
        /// Whether the walk ends in an allow.
        allowed: bool,
        /// The tiers walked, in order.
        steps: Vec<TierStep>,
    },
}

impl DirectionVerdict {
    /// The Admin-tier rule that matched on this side (Accept, Deny or Pass), if a walk through
    /// the tiers found one.
    pub fn admin_tier_match(&self) -> Option<&AdminRuleMatch> {
        let DirectionVerdict::Tiered { steps, .. } = self else {
            return None;
        };
        steps.iter().find_map(|s| match s {
            TierStep::Admin {
                outcome: TierOutcome::Matched(m),
            } => Some(m),
            _ => None,
        })
    }

    /// Whether this side lets the flow through.
    pub fn allows(&self) -> bool {
        matches!(
            self,
            DirectionVerdict::NotApplicable
                | DirectionVerdict::SelfTraffic
                | DirectionVerdict::OwnNode { .. }
                | DirectionVerdict::Node { .. }
                | DirectionVerdict::Open
                | DirectionVerdict::Allowed { .. }
                | DirectionVerdict::Tiered { allowed: true, .. }
        )
    }
}

/// A rule that allows a flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleMatch {
    /// `namespace/name` of the policy.
    pub policy: String,
    /// `file:line` the rule was written at (the policy's, for a policy without rule lines),
    /// when known.
    pub origin: Option<String>,
    /// The direction of the rule.
    pub direction: Direction,
    /// Index of the rule in the policy's `ingress` or `egress` list.
    pub rule: usize,
    /// Index of the first matching `from`/`to` entry; `None` when the rule has none (every peer).
    pub peer: Option<usize>,
    /// Index of the first matching `ports` entry; `None` when the rule has none (every port).
    pub port: Option<usize>,
    /// The rule in words, e.g. `ingress[0] from podSelector vm=b, all ports`.
    pub rule_text: String,
}

/// What part of the nearest rule failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mismatch {
    /// The policy has no rules for the direction: it denies everything.
    NoRules,
    /// The peer did not match; the ports did.
    Peer,
    /// The peer and protocol matched; the port number did not.
    Port,
    /// The peer matched; no ports entry names the flow's protocol.
    Protocol,
    /// Neither the peer nor the ports matched.
    PeerAndPort,
}

/// Why one isolating policy does not allow a flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyDenial {
    /// `namespace/name` of the denying policy.
    pub policy: String,
    /// `file:line` of the nearest rule (of the policy, when it has no rules or no rule lines),
    /// when known.
    pub origin: Option<String>,
    /// The direction in which it isolates the workload.
    pub direction: Direction,
    /// The nearest rule (the first rule that fails on the fewest parts); `None` with
    /// [`Mismatch::NoRules`].
    pub rule: Option<usize>,
    /// The nearest rule in words.
    pub rule_text: Option<String>,
    /// Which part of the nearest rule did not match.
    pub mismatch: Mismatch,
    /// A human reason, e.g. `port: 80/TCP not in [TCP 53]`.
    pub reason: String,
}

/// Whether `policy` applies to `workload` at all (same namespace, `podSelector` matches), ignoring
/// `policyTypes`.
pub fn policy_selects(policy: &Policy, workload: &Workload) -> bool {
    policy.namespace == workload.namespace && policy.pod_selector.matches(&workload.labels)
}

/// The labels of a namespace; a namespace missing from the cluster (which the loader prevents)
/// gets only its name label rather than a panic.
pub(crate) fn namespace_labels<'a>(cluster: &'a Cluster, name: &str) -> Cow<'a, Labels> {
    // Borrowed when the namespace is known: selectors ask this for every flow they match.
    match cluster.namespace(name) {
        Some(ns) => Cow::Borrowed(&ns.labels),
        None => {
            let mut l = Labels::new();
            l.insert(NAMESPACE_NAME_LABEL.to_string(), name.to_string());
            Cow::Owned(l)
        }
    }
}

/// The other end of the flow as a rule sees it.
enum PeerView<'a> {
    Workload {
        workload: &'a Workload,
        /// The address of this workload in this flow (see [`flow_addresses`]).
        address: Option<IpAddr>,
    },
    External(IpAddr),
}

struct FlowCtx<'a> {
    cluster: &'a Cluster,
    opts: EvalOptions,
    protocol: Protocol,
    port: u16,
    /// The destination workload, against which named ports resolve.
    dst: Option<&'a Workload>,
    /// What kind of flow it is when both ends are one workload.
    flow: FlowKind,
}

/// How a flow whose two ends are one workload is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlowKind {
    /// Two ends as given: one workload on both is an instance reaching its own address,
    /// allowed by every tier.
    Plain,
    /// A workload reaching itself through a Service address (hairpin): subject to the admin
    /// tiers, while NetworkPolicy keeps allowing it.
    Hairpin,
    /// One replica of a workload reaching another: an ordinary pair of two workloads with the
    /// same labels, namespace and named ports.
    Replicas,
}

/// Evaluates one flow with the reference semantics and records the reasons.
///
/// An out-of-range workload index makes its side [`DirectionVerdict::UnknownWorkload`] (denied)
/// instead of panicking.
pub fn evaluate(
    cluster: &Cluster,
    opts: EvalOptions,
    src: &Endpoint,
    dst: &Endpoint,
    protocol: Protocol,
    port: u16,
) -> Verdict {
    evaluate_at(cluster, opts, (src, None), (dst, None), protocol, port)
}

/// Evaluates a workload reaching itself through a Service address that load-balances back to
/// it (hairpin). Unlike a workload reaching its own address (always allowed, [`evaluate`]), this
/// flow is subject to the admin tiers; NetworkPolicy allows it for the workloads it isolates.
pub fn evaluate_hairpin(
    cluster: &Cluster,
    opts: EvalOptions,
    workload: usize,
    protocol: Protocol,
    port: u16,
) -> Verdict {
    evaluate_hairpin_at(cluster, opts, workload, None, protocol, port)
}

/// Like [`evaluate_hairpin`], over the workload's address `address` (its family's: a
/// dual-stack workload reaches itself over each family); `None` is its first address.
pub fn evaluate_hairpin_at(
    cluster: &Cluster,
    opts: EvalOptions,
    workload: usize,
    address: Option<IpAddr>,
    protocol: Protocol,
    port: u16,
) -> Verdict {
    let end = Endpoint::Workload(workload);
    evaluate_flow(
        cluster,
        opts,
        (&end, address),
        (&end, address),
        (protocol, port),
        FlowKind::Hairpin,
    )
}

/// Like [`evaluate`], with the address a workload end uses given exactly (`Some`): the other
/// workload end then uses its first address of the same family. `None` leaves the choice to
/// [`flow_addresses`]. An address given for an external end is ignored (it is its own address).
pub fn evaluate_at(
    cluster: &Cluster,
    opts: EvalOptions,
    src: (&Endpoint, Option<IpAddr>),
    dst: (&Endpoint, Option<IpAddr>),
    protocol: Protocol,
    port: u16,
) -> Verdict {
    evaluate_flow(cluster, opts, src, dst, (protocol, port), FlowKind::Plain)
}

fn evaluate_flow(
    cluster: &Cluster,
    opts: EvalOptions,
    src: (&Endpoint, Option<IpAddr>),
    dst: (&Endpoint, Option<IpAddr>),
    (protocol, port): (Protocol, u16),
    flow: FlowKind,
) -> Verdict {
    let (src, src_pin) = src;
    let (dst, dst_pin) = dst;
    let src_side = Side::of(cluster, src);
    let dst_side = Side::of(cluster, dst);
    let (src_address, dst_address) = endpoint_addresses(&src_side, src_pin, &dst_side, dst_pin);
    let ctx = FlowCtx {
        cluster,
        opts,
        protocol,
        port,
        dst: dst_side.workload,
        flow,
    };
    // Two replicas are two pods: no self exemption, whatever the indices say.
    let self_traffic = flow != FlowKind::Replicas
        && matches!((src, dst), (Endpoint::Workload(a), Endpoint::Workload(b)) if a == b);
    let egress = side_verdict(
        &ctx,
        Direction::Egress,
        &src_side,
        &dst_side,
        dst_address,
        self_traffic,
    );
    let ingress = side_verdict(
        &ctx,
        Direction::Ingress,
        &dst_side,
        &src_side,
        src_address,
        self_traffic,
    );
    Verdict {
        src: src.describe(cluster),
        dst: dst.describe(cluster),
        protocol,
        port,
        allowed: egress.allows() && ingress.allows(),
        src_address,
        dst_address,
        egress,
        ingress,
        replicas_of: match (flow, src_side.workload) {
            (FlowKind::Replicas, Some(w)) => Some(w.kind_key()),
            _ => None,
        },
    }
}

/// One end of a flow: the endpoint and, for a workload index in range, the workload.
struct Side<'a> {
    endpoint: &'a Endpoint,
    workload: Option<&'a Workload>,
}

impl<'a> Side<'a> {
    fn of(cluster: &'a Cluster, endpoint: &'a Endpoint) -> Self {
        let workload = match endpoint {
            Endpoint::Workload(i) => cluster.workloads.get(*i),
            Endpoint::External(_) => None,
        };
        Side { endpoint, workload }
    }
}

/// The addresses the flow uses: external ones as given, workload ones as pinned, else by
/// [`flow_addresses`] (or, when only the other end is pinned, the first of its family).
fn endpoint_addresses(
    src: &Side<'_>,
    src_pin: Option<IpAddr>,
    dst: &Side<'_>,
    dst_pin: Option<IpAddr>,
) -> (Option<IpAddr>, Option<IpAddr>) {
    match (src.endpoint, dst.endpoint) {
        (Endpoint::External(a), Endpoint::External(b)) => (Some(*a), Some(*b)),
        (Endpoint::External(a), Endpoint::Workload(_)) => (Some(*a), dst_pin),
        (Endpoint::Workload(_), Endpoint::External(b)) => (src_pin, Some(*b)),
        (Endpoint::Workload(_), Endpoint::Workload(_)) => match (src.workload, dst.workload) {
            (Some(s), Some(d)) => match (src_pin, dst_pin) {
                (None, None) => match flow_addresses(s, d) {
                    Some((a, b)) => (Some(a), Some(b)),
                    None => (None, None),
                },
                (Some(a), None) => (Some(a), address_of_family(&d.addresses, IpFamily::of(&a))),
                (None, Some(b)) => (address_of_family(&s.addresses, IpFamily::of(&b)), Some(b)),
                (Some(a), Some(b)) => (Some(a), Some(b)),
            },
            _ => (None, None),
        },
    }
}

/// The verdict of `subject`'s side in `direction` (egress of the source, ingress of the
/// destination) against `other`, the far end, which uses `other_address` in this flow.
fn side_verdict(
    ctx: &FlowCtx<'_>,
    direction: Direction,
    subject: &Side<'_>,
    other: &Side<'_>,
    other_address: Option<IpAddr>,
    self_traffic: bool,
) -> DirectionVerdict {
    let s = match (subject.endpoint, subject.workload) {
        (Endpoint::External(a), _) => {
            return match ctx.cluster.node_of_address(*a) {
                Some(n) => DirectionVerdict::Node {
                    node: ctx.cluster.nodes[n].name.clone(),
                },
                None => DirectionVerdict::NotApplicable,
            }
        }
        (Endpoint::Workload(i), None) => return DirectionVerdict::UnknownWorkload { index: *i },
        (Endpoint::Workload(_), Some(_)) if self_traffic && ctx.flow != FlowKind::Hairpin => {
            return DirectionVerdict::SelfTraffic
        }
        (Endpoint::Workload(_), Some(s)) => s,
    };
    let peer = match (other.endpoint, other.workload) {
        // The API: an ingress-isolated pod still accepts connections from its own node.
        (Endpoint::External(a), _)
            if direction == Direction::Ingress && ctx.cluster.is_own_node_address(s, *a) =>
        {
            return DirectionVerdict::OwnNode {
                node: s.node.clone().unwrap_or_default(),
            }
        }
        (Endpoint::External(a), _) => PeerView::External(*a),
        (Endpoint::Workload(_), Some(w)) => PeerView::Workload {
            workload: w,
            address: other_address,
        },
        // The other end does not exist; its own side reports it.
        (Endpoint::Workload(_), None) => return DirectionVerdict::Open,
    };
    tiers::walk(ctx, direction, s, &peer, || {
        if self_traffic {
            hairpin_network_policy(ctx, direction, s)
        } else {
            evaluate_direction(ctx, direction, s, &peer)
        }
    })
}

/// NetworkPolicy on a hairpin flow: it allows self-traffic of the workloads it isolates (a final
/// decision), and leaves the others open (to the Baseline tier).
fn hairpin_network_policy(
    ctx: &FlowCtx<'_>,
    direction: Direction,
    subject: &Workload,
) -> DirectionVerdict {
    let isolated = ctx
        .cluster
        .policies
        .iter()
        .any(|p| p.affects(direction) && policy_selects(p, subject));
    if isolated {
        DirectionVerdict::SelfTraffic
    } else {
        DirectionVerdict::Open
    }
}

/// The nearest miss of a policy's rules: lower score = nearer.
struct NearestRule {
    score: u8,
    rule: usize,
    mismatch: Mismatch,
    reason: String,
}

/// What one isolating policy says about the flow.
struct PolicyOutcome {
    allowed_by: Vec<RuleMatch>,
    nearest: Option<NearestRule>,
}

fn evaluate_direction(
    ctx: &FlowCtx<'_>,
    direction: Direction,
    subject: &Workload,
    peer: &PeerView<'_>,
) -> DirectionVerdict {
    let isolating: Vec<&Policy> = ctx
        .cluster
        .policies
        .iter()
        .filter(|p| p.affects(direction) && policy_selects(p, subject))
        .collect();
    if isolating.is_empty() {
        return DirectionVerdict::Open;
    }
    let isolated_by: Vec<String> = isolating.iter().map(|p| p.key()).collect();
    let mut allowed_by = Vec::new();
    let mut denials = Vec::new();
    for policy in &isolating {
        let outcome = evaluate_policy(ctx, policy, direction, peer);
        if outcome.allowed_by.is_empty() {
            denials.push(denial(policy, direction, outcome.nearest));
        } else {
            allowed_by.extend(outcome.allowed_by);
        }
    }
    if allowed_by.is_empty() {
        DirectionVerdict::Denied {
            isolated_by,
            denials,
        }
    } else {
        DirectionVerdict::Allowed {
            isolated_by,
            allowed_by,
        }
    }
}

/// Every rule of `policy` for `direction` against the flow: the matches, else the nearest miss.
fn evaluate_policy(
    ctx: &FlowCtx<'_>,
    policy: &Policy,
    direction: Direction,
    peer: &PeerView<'_>,
) -> PolicyOutcome {
    let mut out = PolicyOutcome {
        allowed_by: Vec::new(),
        nearest: None,
    };
    for (ri, rule) in policy.rules(direction).iter().enumerate() {
        let peer_result = rule_peer_matches(ctx, policy, rule, direction, peer);
        let port_result = rule_port_matches(ctx, rule);
        if let (Ok(peer_idx), PortOutcome::Match(port_idx)) = (&peer_result, &port_result) {
            out.allowed_by.push(RuleMatch {
                policy: policy.key(),
                origin: rule_origin(policy, direction, Some(ri)),
                direction,
                rule: ri,
                peer: *peer_idx,
                port: *port_idx,
                rule_text: render_rule(policy, direction, ri, rule),
            });
            continue;
        }
        let miss = rule_miss(ctx, rule, ri, peer_result, port_result);
        if let Some(miss) = miss {
            if out.nearest.as_ref().is_none_or(|n| miss.score < n.score) {
                out.nearest = Some(miss);
            }
        }
    }
    out
}

/// Why a rule does not match (`None` when it does).
fn rule_miss(
    ctx: &FlowCtx<'_>,
    rule: &Rule,
    index: usize,
    peer_result: Result<Option<usize>, String>,
    port_result: PortOutcome,
) -> Option<NearestRule> {
    let (score, mismatch, reason) = match (peer_result, port_result) {
        (Ok(_), PortOutcome::WrongPort) => (1, Mismatch::Port, port_reason(ctx, rule)),
        (Ok(_), PortOutcome::WrongProtocol) => (1, Mismatch::Protocol, protocol_reason(ctx, rule)),
        (Err(peer_reason), PortOutcome::Match(_)) => (1, Mismatch::Peer, peer_reason),
        (Err(peer_reason), PortOutcome::WrongPort) => (
            2,
            Mismatch::PeerAndPort,
            format!("{peer_reason}; {}", port_reason(ctx, rule)),
        ),
        (Err(peer_reason), PortOutcome::WrongProtocol) => (
            2,
            Mismatch::PeerAndPort,
            format!("{peer_reason}; {}", protocol_reason(ctx, rule)),
        ),
        (Ok(_), PortOutcome::Match(_)) => return None,
    };
    Some(NearestRule {
        score,
        rule: index,
        mismatch,
        reason,
    })
}

/// `file:line` of rule `rule` of `policy` in `direction` (of the policy itself when `None` or
/// when the rule's line is unknown).
fn rule_origin(policy: &Policy, direction: Direction, rule: Option<usize>) -> Option<String> {
    match rule {
        Some(r) => policy.item_origin(direction, r, RuleItem::Rule),
        None => policy.origin.clone(),
    }
    .map(|o| o.to_string())
}

/// The denial of a policy none of whose rules matched, with its nearest rule.
fn denial(policy: &Policy, direction: Direction, nearest: Option<NearestRule>) -> PolicyDenial {
    let origin = rule_origin(policy, direction, nearest.as_ref().map(|n| n.rule));
    match nearest {
        None => PolicyDenial {
            policy: policy.key(),
            origin,
            direction,
            rule: None,
            rule_text: None,
            mismatch: Mismatch::NoRules,
            reason: format!("has no {direction} rules, so it denies all {direction}"),
        },
        Some(n) => PolicyDenial {
            policy: policy.key(),
            origin,
            direction,
            rule: Some(n.rule),
            rule_text: policy
                .rules(direction)
                .get(n.rule)
                .map(|r| render_rule(policy, direction, n.rule, r)),
            mismatch: n.mismatch,
            reason: n.reason,
        },
    }
}
