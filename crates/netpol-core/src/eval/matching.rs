//! How one rule compares with one flow: its peers (selectors and ipBlocks, with the reason a
//! peer does not match) and its ports (numbers, ranges and named ports resolved on the
//! destination, with the reason they do not match).

use std::net::IpAddr;

use crate::model::{Direction, Peer, Policy, PolicyPort, PortSpec, Protocol, Rule, Workload};
use crate::render::render_labels;

use super::{namespace_labels, FlowCtx, PeerView};

/// How a rule's ports compare with the flow.
pub(super) enum PortOutcome {
    /// Matched; the index of the matching entry, `None` when the rule lists no ports.
    Match(Option<usize>),
    WrongProtocol,
    WrongPort,
}

/// `Ok(first matching peer index)` or `Err(reason)`.
pub(super) fn rule_peer_matches(
    ctx: &FlowCtx<'_>,
    policy: &Policy,
    rule: &Rule,
    direction: Direction,
    peer: &PeerView<'_>,
) -> Result<Option<usize>, String> {
    if rule.peers.is_empty() {
        return Ok(None);
    }
    let mut reasons = Vec::new();
    for (pi, p) in rule.peers.iter().enumerate() {
        match peer_matches(ctx, policy, p, peer) {
            Ok(()) => return Ok(Some(pi)),
            Err(r) => reasons.push(r),
        }
    }
    let field = match direction {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    };
    if reasons.len() == 1 {
        Err(format!("peer: {}", reasons.concat()))
    } else {
        let parts: Vec<String> = reasons
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{field}[{i}]: {r}"))
            .collect();
        Err(format!(
            "peer: no {field} entry matches ({})",
            parts.join("; ")
        ))
    }
}

fn peer_matches(
    ctx: &FlowCtx<'_>,
    policy: &Policy,
    peer: &Peer,
    view: &PeerView<'_>,
) -> Result<(), String> {
    match (peer, view) {
        (Peer::Selector { .. }, PeerView::External(a)) => Err(format!(
            "address {a} is not a workload, and podSelector/namespaceSelector peers match only workloads"
        )),
        (
            Peer::Selector {
                pod_selector,
                namespace_selector,
            },
            PeerView::Workload { workload, .. },
        ) => {
            match namespace_selector {
                None => {
                    if workload.namespace != policy.namespace {
                        return Err(format!(
                            "namespace {:?} is not the policy's namespace {:?} (the peer has no namespaceSelector)",
                            workload.namespace, policy.namespace
                        ));
                    }
                }
                Some(sel) => {
                    let labels = namespace_labels(ctx.cluster, &workload.namespace);
                    if !sel.matches(&labels) {
                        return Err(format!(
                            "namespace {:?} does not match namespaceSelector {sel}",
                            workload.namespace
                        ));
                    }
                }
            }
            if let Some(sel) = pod_selector {
                if !sel.matches(&workload.labels) {
                    return Err(format!(
                        "workload {} (labels {}) does not match podSelector {sel}",
                        workload.key(),
                        render_labels(&workload.labels)
                    ));
                }
            }
            Ok(())
        }
        (Peer::IpBlock(block), PeerView::Workload { workload, address }) => {
            if !ctx.opts.ipblock_matches_workloads {
                return Err(format!(
                    "ipBlock {block} never matches a workload such as {} (ipBlocks match only non-workload addresses in this mode)",
                    workload.key()
                ));
            }
            match address {
                None => Err(format!(
                    "workload {} has no address of a family the other end has, so ipBlock {block} cannot match it",
                    workload.key()
                )),
                Some(a) => ip_block_reason(block, *a),
            }
        }
        (Peer::IpBlock(block), PeerView::External(a)) => {
            ip_block_reason(block, *a)?;
            if !ctx.opts.ipblock_matches_workloads {
                if let Some(owner) = ctx
                    .cluster
                    .workloads
                    .iter()
                    .find(|w| w.addresses.contains(a))
                {
                    return Err(format!(
                        "address {a} belongs to workload {}, and ipBlocks never match workload addresses in this mode",
                        owner.key()
                    ));
                }
            }
            Ok(())
        }
    }
}

fn ip_block_reason(block: &crate::model::IpBlock, a: IpAddr) -> Result<(), String> {
    if !block.cidr.contains(&a) {
        return Err(format!("address {a} is not in ipBlock {}", block.cidr));
    }
    if let Some(hole) = block.except.iter().find(|e| e.contains(&a)) {
        return Err(format!(
            "address {a} is in the except {hole} of ipBlock {}",
            block.cidr
        ));
    }
    Ok(())
}

fn port_entry_matches(ctx: &FlowCtx<'_>, entry: &PolicyPort) -> bool {
    if entry.protocol != ctx.protocol {
        return false;
    }
    match &entry.port {
        None => true,
        Some(PortSpec::Number(n)) => *n == ctx.port,
        Some(PortSpec::Range { start, end }) => *start <= ctx.port && ctx.port <= *end,
        Some(PortSpec::Named(name)) => {
            ctx.dst
                .and_then(|d| d.resolve_named_port(name, entry.protocol))
                == Some(ctx.port)
        }
    }
}

pub(super) fn rule_port_matches(ctx: &FlowCtx<'_>, rule: &Rule) -> PortOutcome {
    if rule.ports.is_empty() {
        return PortOutcome::Match(None);
    }
    if let Some(i) = rule.ports.iter().position(|e| port_entry_matches(ctx, e)) {
        return PortOutcome::Match(Some(i));
    }
    if rule.ports.iter().any(|e| e.protocol == ctx.protocol) {
        PortOutcome::WrongPort
    } else {
        PortOutcome::WrongProtocol
    }
}

pub(super) fn port_reason(ctx: &FlowCtx<'_>, rule: &Rule) -> String {
    let entries: Vec<String> = rule
        .ports
        .iter()
        .map(|e| render_port_entry_for(e, ctx.dst))
        .collect();
    format!(
        "port: {}/{} not in [{}]",
        ctx.port,
        ctx.protocol,
        entries.join(", ")
    )
}

pub(super) fn protocol_reason(ctx: &FlowCtx<'_>, rule: &Rule) -> String {
    let mut protocols: Vec<Protocol> = rule.ports.iter().map(|e| e.protocol).collect();
    protocols.sort();
    protocols.dedup();
    let names: Vec<&str> = protocols.iter().map(|p| p.as_str()).collect();
    format!(
        "protocol: {}, the rule allows only {}",
        ctx.protocol,
        names.join(" and ")
    )
}

/// A ports entry, with a named port shown next to what it resolves to on the destination.
fn render_port_entry_for(entry: &PolicyPort, dst: Option<&Workload>) -> String {
    match (&entry.port, dst) {
        (Some(PortSpec::Named(name)), Some(d)) => {
            match d.resolve_named_port(name, entry.protocol) {
                Some(p) => format!("{} {name:?} (= {p} on {})", entry.protocol, d.key()),
                None => format!("{} {name:?} (not defined on {})", entry.protocol, d.key()),
            }
        }
        (Some(PortSpec::Named(name)), None) => format!(
            "{} {name:?} (matches nothing: the destination is external)",
            entry.protocol
        ),
        _ => entry.to_string(),
    }
}
