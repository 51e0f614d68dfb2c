//! The outside-the-cluster exposure of a workload that admin policies select: the walk through
//! the tiers, done on address sets per elementary port range instead of one address at a time.
//!
//! Per protocol, the port space is cut at every boundary of the admin rules and of the
//! NetworkPolicy rules that apply; on each elementary range, the outside addresses go through the
//! tiers as the evaluator sends one address: Admin rules in walk order (a rule takes the addresses
//! it matches out of the undecided ones: Accept allows them, Deny drops them, Pass sends them to
//! NetworkPolicy), then NetworkPolicy (for a workload it isolates, it allows what its rules admit
//! and drops the rest), then Baseline rules the same way (Pass: to the default), then the default
//! allows what is left.
//!
//! Address sets are kept "raw" (without taking the cluster's own addresses out) during the walk,
//! where they are a few intervals each; the cluster's addresses are taken out once per distinct
//! result, which is where the sets get large.

use crate::eval::{policy_selects, TierPolicies};
use crate::lint::AddrSet;
use crate::model::{
    AdminAction, AdminPeer, AdminPolicy, AdminPort, AdminRule, Cluster, Direction, Peer, Policy,
    PortSpec, Protocol, Rule, Workload,
};

use super::addresses::{group_ranges, Universe};
use super::AddressGrant;

/// One rule of the walk on one elementary range, as raw addresses and action.
struct Step {
    addresses: AddrSet,
    action: AdminAction,
}

/// The rules that apply to one side, prepared once.
struct Walk<'a> {
    cluster: &'a Cluster,
    workload: &'a Workload,
    direction: Direction,
    tiers: TierPolicies<'a>,
    /// NetworkPolicy rules of the policies isolating the workload (`None`: not isolated).
    network_policy: Option<Vec<&'a Rule>>,
}

/// The grants of one direction of workload `index` under the tiers, given the admin policies
/// that direction walks (not none: then NetworkPolicy alone decides).
pub(super) fn tiered_side<'a>(
    cluster: &'a Cluster,
    index: usize,
    d: Direction,
    tiers: TierPolicies<'a>,
    universe: &Universe,
) -> Vec<AddressGrant> {
    let w = &cluster.workloads[index];
    let isolating: Vec<&Policy> = cluster
        .policies
        .iter()
        .filter(|p| p.affects(d) && policy_selects(p, w))
        .collect();
    let walk = Walk {
        cluster,
        workload: w,
        direction: d,
        tiers,
        network_policy: (!isolating.is_empty())
            .then(|| isolating.iter().flat_map(|p| p.rules(d)).collect()),
    };
    let mut ranges = Vec::new();
    for protocol in Protocol::ALL {
        let cuts = walk.cuts(protocol);
        for pair in cuts.windows(2) {
            let (lo, hi) = (pair[0], pair[1] - 1);
            let outside = universe.outside_of_raw(walk.allowed(protocol, lo, hi));
            ranges.push((protocol, clamp(lo), clamp(hi), outside));
        }
    }
    group_ranges(ranges, universe)
}

impl Walk<'_> {
    /// Every boundary of the port ranges the rules name for `protocol`, with 1 and 65536.
    fn cuts(&self, protocol: Protocol) -> Vec<u32> {
        let mut cuts = vec![1u32, 65536];
        let mut cut = |lo: u16, hi: u16| {
            cuts.push(u32::from(lo));
            cuts.push(u32::from(hi) + 1);
        };
        for p in self.tiers.admin.iter().chain(&self.tiers.baseline) {
            for r in p.rules(self.direction) {
                for port in r.ports.iter().flatten() {
                    match port {
                        AdminPort::Protocol {
                            protocol: q,
                            ports: Some((lo, hi)),
                        } if *q == protocol => cut(*lo, *hi),
                        AdminPort::Named(name) => {
                            if let Some(n) = self.named(name, protocol) {
                                cut(n, n)
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        for r in self.network_policy.iter().flatten() {
            for port in &r.ports {
                match &port.port {
                    Some(PortSpec::Number(n)) if port.protocol == protocol => cut(*n, *n),
                    Some(PortSpec::Range { start, end }) if port.protocol == protocol => {
                        cut(*start, *end)
                    }
                    Some(PortSpec::Named(name)) if port.protocol == protocol => {
                        if let Some(n) = self.named(name, protocol) {
                            cut(n, n)
                        }
                    }
                    _ => {}
                }
            }
        }
        cuts.retain(|&c| (1..=65536).contains(&c));
        cuts.sort_unstable();
        cuts.dedup();
        cuts
    }

    /// A named port resolved on the destination: the workload itself for ingress; an outside
    /// address (egress) has no named ports.
    fn named(&self, name: &str, protocol: Protocol) -> Option<u16> {
        match self.direction {
            Direction::Ingress => self.workload.resolve_named_port(name, protocol),
            Direction::Egress => None,
        }
    }

    /// The raw outside addresses allowed on `lo..=hi` of `protocol` (the whole range behaves
    /// the same: no rule boundary is inside it).
    fn allowed(&self, protocol: Protocol, lo: u32, hi: u32) -> AddrSet {
        let port = clamp(lo);
        debug_assert!(lo <= hi);
        let mut allowed = AddrSet::empty();
        let mut undecided = AddrSet::everything();
        let mut passed = AddrSet::empty();
        for step in self.steps(&self.tiers.admin, protocol, port) {
            let m = intersect(&undecided, &step.addresses);
            undecided = undecided.minus(&m);
            match step.action {
                AdminAction::Accept => allowed = allowed.union(&m),
                AdminAction::Deny => {}
                AdminAction::Pass => passed = passed.union(&m),
            }
        }
        let mut rest = undecided.union(&passed);
        if let Some(rules) = &self.network_policy {
            let admitted = np_addresses(rules, protocol, port, self);
            return allowed.union(&intersect(&rest, &admitted));
        }
        for step in self.steps(&self.tiers.baseline, protocol, port) {
            let m = intersect(&rest, &step.addresses);
            rest = rest.minus(&m);
            match step.action {
                AdminAction::Accept | AdminAction::Pass => allowed = allowed.union(&m),
                AdminAction::Deny => {}
            }
        }
        allowed.union(&rest)
    }

    /// The tier's rules that match `protocol`/`port`, in walk order, with the raw addresses
    /// their peers match (a rule that fails closed: every address, as Deny).
    fn steps(&self, policies: &[&AdminPolicy], protocol: Protocol, port: u16) -> Vec<Step> {
        let mut out = Vec::new();
        for p in policies {
            for r in p.rules(self.direction) {
                if crate::policy_set::admin_fails_closed(r) {
                    out.push(Step {
                        addresses: AddrSet::everything(),
                        action: AdminAction::Deny,
                    });
                    continue;
                }
                if crate::policy_set::admin_has_unknown_peer(r)
                    || !self.rule_port_matches(r, protocol, port)
                {
                    // An Accept rule with a peer of an unknown kind matches nothing.
                    continue;
                }
                out.push(Step {
                    addresses: self.peer_addresses(r),
                    action: r.action,
                });
            }
        }
        out
    }

    fn rule_port_matches(&self, r: &AdminRule, protocol: Protocol, port: u16) -> bool {
        let destination = match self.direction {
            Direction::Ingress => Some(self.workload),
            Direction::Egress => None,
        };
        r.ports
            .as_ref()
            .is_none_or(|ports| ports.iter().any(|p| p.admits(protocol, port, destination)))
    }

    /// The outside addresses (raw) an admin rule's peers match: networks and resolved domain
    /// names; selector and node peers match only cluster addresses.
    fn peer_addresses(&self, r: &AdminRule) -> AddrSet {
        let mut s = AddrSet::empty();
        for peer in &r.peers {
            match peer {
                AdminPeer::Networks(nets) => {
                    for n in nets {
                        s = s.union(&AddrSet::of_net(n));
                    }
                }
                AdminPeer::DomainNames(patterns) => {
                    let resolved = self.cluster.resolved_addresses(patterns);
                    s = s.union(&AddrSet::of_addresses(&resolved));
                }
                AdminPeer::Namespaces(_)
                | AdminPeer::Pods { .. }
                | AdminPeer::Nodes(_)
                | AdminPeer::Unknown => {}
            }
        }
        s
    }
}

/// The raw addresses the NetworkPolicy rules admit on `protocol`/`port`.
fn np_addresses(rules: &[&Rule], protocol: Protocol, port: u16, walk: &Walk<'_>) -> AddrSet {
    let mut s = AddrSet::empty();
    for r in rules {
        let port_ok = r.ports.is_empty()
            || r.ports.iter().any(|p| {
                p.protocol == protocol
                    && match &p.port {
                        None => true,
                        Some(PortSpec::Number(n)) => *n == port,
                        Some(PortSpec::Range { start, end }) => *start <= port && port <= *end,
                        Some(PortSpec::Named(name)) => walk.named(name, protocol) == Some(port),
                    }
            });
        if !port_ok {
            continue;
        }
        if r.peers.is_empty() {
            return AddrSet::everything();
        }
        for peer in &r.peers {
            if let Peer::IpBlock(b) = peer {
                s = s.union(&AddrSet::of_block(b));
            }
        }
    }
    s
}

fn intersect(a: &AddrSet, b: &AddrSet) -> AddrSet {
    a.minus(&a.minus(b))
}

fn clamp(p: u32) -> u16 {
    u16::try_from(p).unwrap_or(u16::MAX)
}
