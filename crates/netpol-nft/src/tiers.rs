//! The admin tiers in the IR: the admin rules a node's table counts and logs, and per identity
//! the verdict segments of the Admin and Baseline tiers (priorities and rule order resolved at
//! compile time, so a tier costs one lookup per packet whatever the number of policies).
//!
//! An identity chain of a workload some admin policy selects walks, in one pass:
//! the Admin tier's verdict map (`class . l4proto . dport` -> the first matching rule's chain:
//! Accept and Deny decide, Pass counts and falls through), then the NetworkPolicy grants (final
//! when a NetworkPolicy isolates the identity in the direction), then the Baseline tier's verdict
//! map the same way, then the default: allow.

use netpol_core::{AdminAction, AdminTier, Direction, Protocol};
use serde::Serialize;

use crate::{DirectionIr, Packet};

/// One admin rule the table counts: every rule some identity of the node can reach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AdminRuleRef {
    /// `cnp/NAME`, `anp/NAME` or `banp/NAME`.
    pub policy: String,
    /// The policy's tier.
    pub tier: AdminTier,
    /// The direction the rule decides.
    pub direction: Direction,
    /// The rule's index in the policy's list for the direction.
    pub rule: usize,
    /// What a match does (Deny for a rule that fails closed).
    pub action: AdminAction,
    /// True when a peer of an unknown kind made a Deny or Pass rule Deny all.
    pub fail_closed: bool,
    /// The named counter crediting the rule's matches (`adm_...`).
    pub counter: String,
    /// The chain its verdict map elements go to (`in_r_<h>` / `eg_r_<h>`).
    pub chain: String,
    /// What a denied packet's log prefix names after the direction ([`admin_log_tail`]): a
    /// Deny rule's drops are logged as `netpol:ingress:<log>` (see [`crate::denied_log_prefix`]).
    pub log: String,
}

impl AdminRuleRef {
    /// `cnp/NAME ingress[2]`: the rule as comments and log prefixes name it.
    pub fn label(&self) -> String {
        format!("{} {}[{}]", self.policy, self.direction, self.rule)
    }
}

/// The most bytes of a policy key a log tail keeps (`netpol:ingress:` and `[NNN]` around it stay
/// under the kernel's 127 bytes of prefix).
const MAX_LOG_KEY: usize = 100;

/// How a denied-packet log prefix names admin rule `rule` of policy `policy` (`cnp/NAME`):
/// `cnp/NAME[3]`, the key cut and followed by `~` and 8 hex digits hashed from it when longer
/// than 100 bytes. The direction is the prefix's own (`netpol:egress:cnp/NAME[3]`).
pub fn admin_log_tail(policy: &str, rule: usize) -> String {
    if policy.len() <= MAX_LOG_KEY {
        return format!("{policy}[{rule}]");
    }
    let mut cut = MAX_LOG_KEY - 9;
    while !policy.is_char_boundary(cut) {
        cut -= 1;
    }
    let hash = crate::naming::hash32(policy.as_bytes());
    format!("{}~{hash:08x}[{rule}]", &policy[..cut])
}

/// An inclusive port range of one protocol (or of every protocol without ports) for one peer
/// class, decided by one admin rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TierSegment {
    /// The peer class.
    pub class: u32,
    /// The protocol; `None` for every protocol other than TCP, UDP and SCTP (ports `0-65535`).
    pub protocol: Option<Protocol>,
    /// The first port of the range.
    pub first: u16,
    /// The last port of the range (inclusive).
    pub last: u16,
    /// The rule deciding it: an index into [`crate::RulesetIr::admin_rules`].
    pub rule: usize,
}

impl TierSegment {
    /// A single port of TCP, UDP or SCTP: an element of the tier's exact-port hash map.
    pub fn exact(&self) -> bool {
        self.protocol.is_some() && self.first == self.last
    }
}

/// What a tier does to a packet.
enum TierVerdict {
    Accept,
    Deny,
    /// Pass, or no rule matched: the next tier decides.
    Next,
}

impl DirectionIr {
    /// The tiers' answer for identity `identity` against a peer of class `class`; `hairpin`:
    /// the packet goes from a workload to itself through a Service.
    pub(crate) fn allows_tiered(
        &self,
        rules: &[AdminRuleRef],
        identity: usize,
        class: u32,
        packet: Packet,
        hairpin: bool,
    ) -> bool {
        let Some(id) = self.identities.get(identity) else {
            return false;
        };
        let r = &id.rules;
        match tier(rules, self.tier_segments(r.admin), class, packet) {
            TierVerdict::Accept => return true,
            TierVerdict::Deny => return false,
            TierVerdict::Next => {}
        }
        if !r.network_policy_open {
            return (hairpin && r.hairpin) || self.allows(identity, class, packet);
        }
        !matches!(
            tier(rules, self.tier_segments(r.baseline), class, packet),
            TierVerdict::Deny
        )
    }

    /// The segments of tier map `map` (none for `None`).
    fn tier_segments(&self, map: Option<usize>) -> &[TierSegment] {
        map.and_then(|i| self.tiers.get(i))
            .map(|m| m.segments.as_slice())
            .unwrap_or(&[])
    }
}

fn tier(
    rules: &[AdminRuleRef],
    segments: &[TierSegment],
    class: u32,
    packet: Packet,
) -> TierVerdict {
    let (protocol, port) = match packet {
        Packet::Port(p, port) => (Some(p), port),
        Packet::Other => (None, 0),
    };
    let hit = segments
        .iter()
        .find(|s| s.class == class && s.protocol == protocol && s.first <= port && port <= s.last);
    match hit.and_then(|s| rules.get(s.rule)).map(|r| r.action) {
        Some(AdminAction::Accept) => TierVerdict::Accept,
        Some(AdminAction::Deny) => TierVerdict::Deny,
        Some(AdminAction::Pass) | None => TierVerdict::Next,
    }
}
