//! The IR: everything a compiled table encodes, in a form an interpreter can walk, and the
//! interpreter itself ([`verdict`]), which the property tests hold against the reference
//! evaluator.

use std::collections::BTreeMap;
use std::net::IpAddr;

use netpol_core::{Direction, Protocol};
use serde::Serialize;

use crate::{interval, AdminRuleRef, NodeOptions, PolicyCounter, TierSegment};

/// Everything the text encodes, in a form an interpreter can walk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RulesetIr {
    /// The node the ruleset was compiled for.
    pub node: String,
    /// The option it was compiled with: whether ipBlock peers also match cluster workloads.
    pub ipblock_matches_workloads: bool,
    /// Indexed by [`Grant::policy`]; sorted by key.
    pub policies: Vec<PolicyCounter>,
    /// The ingress half: traffic to local workloads.
    pub ingress: DirectionIr,
    /// The egress half: traffic from local workloads.
    pub egress: DirectionIr,
    /// The node's settings the table was compiled with.
    pub node_options: NodeOptions,
    /// Indexed by [`TierSegment::rule`]: the admin rules some identity of the node can reach, in
    /// walk order (tier, priority, then direction and rule order).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub admin_rules: Vec<AdminRuleRef>,
    /// Local addresses of workloads an admin policy selects: their hairpin traffic walks the
    /// tiers (the `hairpin4`/`hairpin6` sets) instead of being accepted by `self4`/`self6`.
    #[serde(skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub hairpin: std::collections::BTreeSet<IpAddr>,
}

/// The maps and identities of one direction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DirectionIr {
    /// Which direction these maps are for.
    pub direction: Direction,
    /// Local isolated workload address -> identity (the `*_dispatch4/6` verdict maps).
    pub dispatch: BTreeMap<IpAddr, Dispatch>,
    /// Workload address -> peer class (the `*_wl4/6` hash maps). Only addresses whose class
    /// differs from what [`DirectionIr::external`] would give are listed.
    pub workload_classes: BTreeMap<IpAddr, WorkloadClass>,
    /// Disjoint address ranges -> peer class (the `*_ext4/6` interval maps); addresses in no
    /// range are class 0.
    pub external: Vec<ExternalRange>,
    /// Sorted by class id; class 0 (first) matches no peer. Class ids are the mark values; other
    /// than 0 they are derived from the class's content (see [`PeerClass::id`]).
    pub classes: Vec<PeerClass>,
    /// Indexed by identity id.
    pub identities: Vec<Identity>,
    /// The tiers' verdict maps, indexed by [`IdentityRules::admin`] and
    /// [`IdentityRules::baseline`]: one per group of identities the same admin policies of a
    /// tier select.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<TierMap>,
}

/// The verdict maps of a tier for one group of identities: those of the direction that the same
/// admin policies of the tier select (and, for ingress, whose named ports those policies use
/// resolve alike).
///
/// Identity chains jump to the group's lookup chain, which looks the packet up in two maps of
/// disjoint segments: the single ports in a hash map, everything else in an interval map. Why
/// two: the kernel changes elements of a loaded hash map in about 0.2 ms each but those of a
/// loaded interval map of concatenations in about 3.4 ms each (kernel 6.18, a 3,000-element
/// map), while nft 1.0.6 spends about 12 us of parsing per element a transaction carries. So
/// the exact map and the chain are named from the tier and the least workload the group serves
/// (stable across rule and NetworkPolicy edits), and an edited rule changes the exact map's
/// elements in place; the range map is named from its elements and replaced whole (a
/// fresh map loads at parsing speed), the lookup chain then rewritten. The identity chains are
/// named without any of it (from their NetworkPolicy rules and workloads), so they keep their
/// names, grant maps and rules. Groups whose segments are equal share one chain and its maps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TierMap {
    /// `in_tl_<h>` / `eg_tl_<h>`: the lookup chain identity chains jump to; `h`, 16 hex digits,
    /// hashed from the tier and the least workload key the group serves (of all the groups with
    /// the same segments, which share the chain and its maps).
    pub name: String,
    /// `in_tx_<h>` / `eg_tx_<h>` (the chain's `h`): the hash map of the single-port segments,
    /// changed element by element by an update.
    pub exact_map: String,
    /// `in_t_<h>` / `eg_t_<h>`, `h` hashed from its elements: the interval map of the other
    /// segments (port ranges, protocols without ports), replaced whole when they change.
    pub range_map: String,
    /// The tier whose rules the map holds.
    pub tier: netpol_core::AdminTier,
    /// The keys (`cnp/NAME`, ...) of the tier's admin policies selecting the identities, in walk
    /// order.
    pub policies: Vec<String>,
    /// Ingress only: `name/PROTO=port` (or `=none`) for every named port the policies' rules use,
    /// as it resolves on the identities' workloads.
    pub named_ports: Vec<String>,
    /// The first matching rule per `class . protocol . ports` segment, sorted.
    pub segments: Vec<TierSegment>,
}

/// A dispatch map entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dispatch {
    /// The identity (index into [`DirectionIr::identities`]) the address dispatches to.
    pub identity: usize,
    /// The key of the local workload owning the address.
    pub workload: String,
}

/// A workload classification map entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkloadClass {
    /// The peer class the address belongs to.
    pub class: u32,
    /// The key of the workload owning the address.
    pub workload: String,
}

/// An interval classification map entry (inclusive bounds, same family).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExternalRange {
    /// The first address of the range.
    pub first: IpAddr,
    /// The last address of the range (inclusive).
    pub last: IpAddr,
    /// The peer class every address of the range belongs to.
    pub class: u32,
}

/// What a peer class stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerClass {
    /// The mark value: a hash of `peers` and `named_ports` (never 0 except for the class that
    /// matches nothing), so a class keeps its mark when other classes come and go.
    pub id: u32,
    /// The peers matching addresses of this class, rendered.
    pub peers: Vec<String>,
    /// Egress only: `name/PROTO=port` for the relevant named ports of the workload.
    pub named_ports: Vec<String>,
}

/// Which policy rule an element comes from (the first, in policy-key then rule order, when several
/// grant it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Grant {
    /// Index into [`RulesetIr::policies`].
    pub policy: usize,
    /// Index of the rule in the policy's rules of the direction.
    pub rule: usize,
}

/// The rules of one identity (a group of local workloads that behave identically).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The identity's chain (its maps are named after it): `in_`/`eg_` and 8 hex digits derived
    /// from the chain's and maps' content, so it stays the same while they do.
    pub chain: String,
    /// Keys of the local workloads dispatched here.
    pub workloads: Vec<String>,
    /// Keys of the policies isolating them in this direction.
    pub policies: Vec<String>,
    /// What the identity's chain and maps allow.
    #[serde(flatten)]
    pub rules: IdentityRules,
}

/// What an identity allows: the Admin tier's segments, then (unless `network_policy_open`) the
/// three NetworkPolicy maps in order, the first hit deciding, else the Baseline tier's segments
/// and the default. Identities no admin policy selects have only the three maps.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct IdentityRules {
    /// Some rule allows every peer and every protocol: the chain is a single accept.
    pub open: Option<Grant>,
    /// Ports open to every peer (`<chain>_any`).
    pub any_peer: Vec<PortSegment>,
    /// Classes allowed every protocol and port (`<chain>_all`).
    pub class_all: BTreeMap<u32, Grant>,
    /// `class . protocol . ports` (`<chain>_port`).
    pub class_ports: Vec<ClassPortSegment>,
    /// The Admin tier's verdict map (an index into [`DirectionIr::tiers`]), checked first; `None`
    /// when no admin policy of the Admin tier selects these workloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<usize>,
    /// No NetworkPolicy isolates these workloads in the direction: the grant maps are empty and
    /// the Baseline tier then the default (allow) decide what the Admin tier leaves.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub network_policy_open: bool,
    /// The Baseline tier's verdict map (an index into [`DirectionIr::tiers`]), for identities
    /// NetworkPolicy leaves open that some Baseline policy selects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<usize>,
    /// The workloads are subject to the admin tiers on hairpin traffic (so not in `self4`/`self6`)
    /// and isolated by NetworkPolicy, which allows their hairpin traffic after the Admin tier.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hairpin: bool,
}

/// An inclusive port range of one protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PortSegment {
    /// The protocol the range is of.
    pub protocol: Protocol,
    /// The first port of the range.
    pub first: u16,
    /// The last port of the range (inclusive).
    pub last: u16,
    /// The policy rule that opens it.
    pub grant: Grant,
}

/// An inclusive port range of one protocol for one peer class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ClassPortSegment {
    /// The peer class the range is open to.
    pub class: u32,
    /// The protocol the range is of.
    pub protocol: Protocol,
    /// The first port of the range.
    pub first: u16,
    /// The last port of the range (inclusive).
    pub last: u16,
    /// The policy rule that opens it.
    pub grant: Grant,
}

/// A packet as the grant maps see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Packet {
    Port(Protocol, u16),
    /// ICMP and every protocol without ports.
    Other,
}

/// What the node's table decides for the first packet of a new TCP/UDP/SCTP connection from `src`
/// to `dst` crossing this node's `forward` hook, computed from the IR rather than the kernel.
///
/// A packet whose source is a local egress-isolated workload must be allowed by its egress
/// identity, and one whose destination is a local ingress-isolated workload by its ingress
/// identity; anything else passes (the chain policy is accept). A packet from an address to itself
/// (hairpin through a Service) is allowed by the `self4`/`self6` lookup, unless an admin policy
/// selects the workload: then it walks the tiers like any other. The same answer holds for a
/// packet to one of the node's own addresses (`input`): its egress identity decides, the node has
/// no ingress identity.
pub fn verdict(ir: &RulesetIr, src: IpAddr, dst: IpAddr, protocol: Protocol, port: u16) -> bool {
    decide(ir, src, dst, Packet::Port(protocol, port))
}

/// Like [`verdict`] for the first packet of a flow of a protocol without ports (ICMP echo, GRE,
/// ...): only identities open to every protocol for the peer's class let it through.
pub fn verdict_other_protocol(ir: &RulesetIr, src: IpAddr, dst: IpAddr) -> bool {
    decide(ir, src, dst, Packet::Other)
}

fn decide(ir: &RulesetIr, src: IpAddr, dst: IpAddr, packet: Packet) -> bool {
    let hairpin = src == dst;
    if hairpin && !ir.hairpin_tiered(src) {
        return true;
    }
    let rules = &ir.admin_rules;
    if let Some(d) = ir.egress.dispatch.get(&src) {
        let class = ir.egress.classify(dst);
        if !ir
            .egress
            .allows_tiered(rules, d.identity, class, packet, hairpin)
        {
            return false;
        }
    }
    if let Some(d) = ir.ingress.dispatch.get(&dst) {
        let class = ir.ingress.classify(src);
        if !ir
            .ingress
            .allows_tiered(rules, d.identity, class, packet, hairpin)
        {
            return false;
        }
    }
    true
}

impl RulesetIr {
    /// Whether hairpin traffic of the local address `a` walks the tiers (an admin policy selects
    /// its workload) instead of being accepted by `self4`/`self6`.
    pub fn hairpin_tiered(&self, a: IpAddr) -> bool {
        self.hairpin.contains(&a)
    }
}

impl DirectionIr {
    /// The class the classify chain puts in the mark for `address`.
    pub fn classify(&self, address: IpAddr) -> u32 {
        if let Some(w) = self.workload_classes.get(&address) {
            return w.class;
        }
        let key = interval::addr_key(address);
        // Ranges are disjoint and sorted by first address, families apart.
        let idx = self.external.partition_point(|r| {
            (r.first.is_ipv6(), interval::addr_key(r.first)) <= (address.is_ipv6(), key)
        });
        match idx.checked_sub(1).and_then(|i| self.external.get(i)) {
            Some(r)
                if r.first.is_ipv6() == address.is_ipv6() && interval::addr_key(r.last) >= key =>
            {
                r.class
            }
            _ => 0,
        }
    }

    pub(crate) fn allows(&self, identity: usize, class: u32, packet: Packet) -> bool {
        let Some(id) = self.identities.get(identity) else {
            return false;
        };
        let r = &id.rules;
        if r.open.is_some() || r.class_all.contains_key(&class) {
            return true;
        }
        let Packet::Port(protocol, port) = packet else {
            return false;
        };
        r.any_peer
            .iter()
            .any(|s| s.protocol == protocol && s.first <= port && port <= s.last)
            || r.class_ports.iter().any(|s| {
                s.class == class && s.protocol == protocol && s.first <= port && port <= s.last
            })
    }
}
