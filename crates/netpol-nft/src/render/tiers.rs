//! The admin tiers as table objects: one named counter and one small chain per admin rule, per
//! group of identities (see [`crate::TierMap`]) a lookup chain and the two verdict maps it looks
//! up, the `eg_accepted` chain, and the hairpin sets.
//!
//! ```text
//! counter adm_cnp_deny-db_in0 { comment "cnp/deny-db ingress[0]"; }
//! chain in_r_<h> {                         # a Deny rule (h: hashed from these rules)
//!     counter name "adm_cnp_deny-db_in0"
//!     limit name "denied_log" log prefix "netpol:ingress:cnp/deny-db[0]" group 28272
//!     counter name "denied_ingress" drop
//! }
//! chain in_r_<h> { counter name "adm_..." accept }     # an ingress Accept rule
//! chain eg_r_<h> { counter name "adm_..." goto eg_accepted }     # an egress Accept rule
//! chain in_r_<h> { counter name "adm_..." }            # a Pass rule: counts, then returns
//! map in_tx_<g> {                          # the group's single ports; g: 16 hex digits
//!                                          # hashed from the tier and the least workload
//!                                          # the group serves
//!     type mark . inet_proto . inet_service : verdict
//!     elements = { 0x00010000 . tcp . 5432 comment "cnp/deny-db ingress[0]" : goto in_r_<h> }
//! }
//! map in_t_<h> {                           # the group's other segments; h: 16 hex digits of
//!                                          # its elements
//!     type mark . inet_proto . inet_service : verdict
//!     flags interval
//!     elements = { 0x00020000 . 0-5 . 0-65535 ... : jump in_r_<h> }   # Pass: jump
//! }
//! chain in_tl_<g> {                        # the group's lookup chain (first matching rule
//!                                          # per segment, resolved at compile time; the two
//!                                          # maps' segments are disjoint)
//!     ct mark and MASK . meta l4proto . th dport vmap @in_tx_<g>
//!     ct mark and MASK . meta l4proto . th dport vmap @in_t_<h>
//! }
//! chain eg_accepted {                      # what forward does after the egress check
//!     ip daddr vmap @in_dispatch4
//!     ip6 daddr vmap @in_dispatch6
//!     accept
//! }
//! chain in_<h> {                           # an identity an admin policy selects
//!     jump in_classify
//!     jump in_tl_<g>                       # Admin
//!     ip saddr . ip daddr @hairpin4 accept # NetworkPolicy allows hairpin of what it isolates
//!     ...                                  # the NetworkPolicy grants, log and drop as before
//! }
//! chain in_<h> {                           # one no NetworkPolicy isolates in the direction
//!     jump in_classify
//!     jump in_tl_<g>                       # Admin
//!     jump in_tl_<g>                       # Baseline
//!     accept                               # the default (egress: return)
//! }
//! ```
//!
//! Accept and Deny `goto` their rule's chain, so its verdict is final for the direction: drop,
//! accept, or for an egress Accept the ingress check of a local destination (`eg_accepted`; a
//! `return` would only go back to the identity chain, one jump below the lookup chain). Pass
//! `jump`s to it, so after counting, the lookup chain and then the identity chain go on to the
//! next tier. Protocols without ports (ICMP, ...) are the protocol ranges around TCP, UDP and
//! SCTP with every "port", so a rule without `protocols` matches them too.
//!
//! Why lookup chains: on every transaction that adds a rule or a verdict element, the kernel
//! validates the whole table, walking every verdict map once per rule that looks it up, while a
//! chain reached again at no greater depth is not walked again (kernel 6.18: a 20,000-element
//! map looked up by 100 chains made a one-rule transaction take 80 ms, behind one shared chain
//! 10 ms). So a tier map is looked up only by the lookup chains of the groups sharing it, never
//! by each identity chain.

use netpol_core::{AdminAction, Direction};

use super::table::Renderer;
use super::{prefix, proto, push_addr, push_mark, push_ports, quoted, Object};
use super::{DENIED_EGRESS, DENIED_INGRESS, DENIED_LOG_LIMIT};

use std::collections::HashMap;

use crate::{AdminRuleRef, DirectionIr, RulesetIr, TierSegment};

/// The rules of an admin rule's chain (also what its name is hashed from).
pub(crate) fn admin_rule_chain_rules(r: &AdminRuleRef) -> Vec<String> {
    let counter = format!("counter name {}", quoted(&r.counter));
    match r.action {
        AdminAction::Accept => {
            // Reached from the tier's lookup chain, a `return` would go back to the identity
            // chain and its NetworkPolicy grants: egress goes on to the ingress check instead.
            let allow = match r.direction {
                Direction::Ingress => "accept".to_string(),
                Direction::Egress => format!("goto {EGRESS_ACCEPTED}"),
            };
            vec![format!("{counter} {allow}")]
        }
        AdminAction::Pass => vec![counter],
        AdminAction::Deny => {
            let denied = match r.direction {
                Direction::Ingress => DENIED_INGRESS,
                Direction::Egress => DENIED_EGRESS,
            };
            vec![
                counter,
                format!(
                    "limit name \"{DENIED_LOG_LIMIT}\" log prefix {} group {}",
                    quoted(&crate::denied_log_prefix(r.direction, &r.log)),
                    crate::DENIED_LOG_GROUP
                ),
                format!("counter name \"{denied}\" drop"),
            ]
        }
    }
}

impl Renderer<'_> {
    /// The counter of every admin rule.
    pub(super) fn admin_counters(&mut self) {
        for r in &self.ir.admin_rules {
            self.objects.push(Object::Counter {
                name: r.counter.clone(),
                decl: format!(
                    "counter {} {{ comment {}; }}",
                    r.counter,
                    quoted(&format!("{} {}", r.label(), r.tier))
                ),
            });
        }
    }

    /// `hairpin4` / `hairpin6`: the local addresses whose hairpin traffic walks the tiers, each
    /// paired with itself (only when there are some).
    pub(super) fn hairpin_sets(&mut self) {
        if self.ir.hairpin.is_empty() {
            return;
        }
        for (v6, name, ty) in [
            (false, "hairpin4", "ipv4_addr . ipv4_addr"),
            (true, "hairpin6", "ipv6_addr . ipv6_addr"),
        ] {
            let elements = self
                .ir
                .hairpin
                .iter()
                .filter(|a| a.is_ipv6() == v6)
                .map(|a| {
                    let mut e = String::new();
                    push_addr(&mut e, *a);
                    e.push_str(" . ");
                    push_addr(&mut e, *a);
                    (e.clone(), e)
                })
                .collect();
            self.map(name, &[&format!("type {ty}")], elements);
        }
    }

    /// The chains of the admin rules of direction `d`.
    pub(super) fn admin_rule_chains(&mut self, d: Direction) {
        let rules: Vec<(String, Vec<String>, String)> = self
            .ir
            .admin_rules
            .iter()
            .filter(|r| r.direction == d)
            .map(|r| (r.chain.clone(), admin_rule_chain_rules(r), r.label()))
            .collect();
        for (chain, body, label) in rules {
            self.chain(&chain, Some(quoted(&label)), body);
        }
    }

    /// The maps and the lookup chain of tier group `t`, each declared once however many groups
    /// share it (`declared` holds the names already declared).
    pub(super) fn tier_group(
        &mut self,
        t: &crate::TierMap,
        declared: &mut std::collections::HashSet<String>,
    ) {
        if !declared.insert(t.name.clone()) {
            return;
        }
        let class = format!("ct mark and 0x{:08x}", self.bits.mask());
        let mut lookups = Vec::new();
        let exact: Vec<TierSegment> = t.segments.iter().filter(|s| s.exact()).copied().collect();
        if !exact.is_empty() {
            let elements = tier_elements(self.ir, &exact, true);
            self.map(&t.exact_map, &EXACT_TIER_MAP_HEADER, elements);
            lookups.push(format!(
                "{class} . meta l4proto . th dport vmap @{}",
                t.exact_map
            ));
        }
        let ranges: Vec<TierSegment> = t.segments.iter().filter(|s| !s.exact()).copied().collect();
        if !ranges.is_empty() {
            if declared.insert(t.range_map.clone()) {
                let elements = tier_elements(self.ir, &ranges, false);
                self.map(&t.range_map, &TIER_MAP_HEADER, elements);
            }
            lookups.push(format!(
                "{class} . meta l4proto . th dport vmap @{}",
                t.range_map
            ));
        }
        self.chain(&t.name, None, lookups);
    }

    /// `eg_accepted`, where an egress Accept goes (only when some egress Accept rule exists, so a
    /// table without one is unchanged): what `forward` does after the egress check, the ingress
    /// check of a local destination, then accept. On `input` (the node's own addresses) the
    /// ingress dispatch matches nothing and the packet is accepted, as `input` itself would.
    pub(super) fn egress_accepted_chain(&mut self) {
        let needed = self
            .ir
            .admin_rules
            .iter()
            .any(|r| r.direction == Direction::Egress && r.action == AdminAction::Accept);
        if !needed {
            return;
        }
        let mut rules: Vec<String> = super::INGRESS_DISPATCH_RULES
            .iter()
            .map(|r| r.to_string())
            .collect();
        rules.push("accept".to_string());
        self.chain(EGRESS_ACCEPTED, None, rules);
    }

    /// The tier rules of an identity chain before the NetworkPolicy grants (`classified`: the
    /// classify chain has run) and, for identities NetworkPolicy leaves open, all of its rules.
    pub(super) fn tier_rules(
        &self,
        d: &DirectionIr,
        rules: &crate::IdentityRules,
        tier_maps: &[Option<String>; 2],
    ) -> TierRules {
        let p = prefix(d.direction);
        let lookup =
            |chain: &Option<String>| format!("jump {}", chain.as_deref().unwrap_or("invalid"));
        let allow = match d.direction {
            Direction::Ingress => "accept",
            Direction::Egress => "return",
        };
        let mut before = Vec::new();
        let classified = rules.admin.is_some() || rules.baseline.is_some();
        if classified {
            before.push(format!("jump {p}_classify"));
        }
        if rules.admin.is_some() {
            before.push(lookup(&tier_maps[0]));
        }
        if rules.hairpin && !rules.network_policy_open {
            before.push(format!("ip saddr . ip daddr @hairpin4 {allow}"));
            before.push(format!("ip6 saddr . ip6 daddr @hairpin6 {allow}"));
        }
        let mut open_rest = Vec::new();
        if rules.network_policy_open {
            if rules.baseline.is_some() {
                open_rest.push(lookup(&tier_maps[1]));
            }
            open_rest.push(allow.to_string());
        }
        TierRules {
            before,
            classified,
            open_rest,
        }
    }
}

/// An identity chain's tier rules (see [`Renderer::tier_rules`]).
pub(super) struct TierRules {
    /// Before the NetworkPolicy grants.
    pub(super) before: Vec<String>,
    /// Whether `before` runs the classify chain (the grants need not run it again).
    pub(super) classified: bool,
    /// For an identity NetworkPolicy leaves open: the Baseline tier and the default, which end
    /// the chain (there are no grants).
    pub(super) open_rest: Vec<String>,
}

/// The elements of one of a tier's verdict maps, as (key, element) pairs; `exact`: the
/// exact-port hash map (the segments are single ports).
///
/// In the range map a key names a single port as the range `P-P`: nft 1.0.6 cannot `delete
/// element` a key of single values from an interval map of this type (the kernel answers "No
/// such file or directory", apparently for the host-order `mark` at its head), while `P-P`
/// deletes the element `P` was added as. A class whose neighbouring protocols (in protocol
/// number order: 0-5, TCP, 7-16, UDP, ...) are decided for every port by the same rule gets one
/// element for the run (`0x00010000 . 0-255 . 0-65535` for a rule without ports), not one per
/// protocol.
fn tier_elements(ir: &RulesetIr, segments: &[TierSegment], exact: bool) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(segments.len());
    // Few rules serve many elements: render each tail once.
    let mut tails: HashMap<usize, String> = HashMap::new();
    let mut tail_of = |rule: usize| -> Option<String> {
        let r = ir.admin_rules.get(rule)?;
        let tail = tails.entry(rule).or_insert_with(|| {
            let verb = match r.action {
                AdminAction::Pass => "jump",
                AdminAction::Accept | AdminAction::Deny => "goto",
            };
            format!(" comment {} : {verb} {}", quoted(&r.label()), r.chain)
        });
        Some(tail.clone())
    };
    for class in segments.chunk_by(|a, b| a.class == b.class) {
        let mut head = String::with_capacity(24);
        push_mark(&mut head, class[0].class);
        head.push_str(" . ");
        let mut slots: [Option<usize>; PROTOCOL_SLOTS.len()] = [None; PROTOCOL_SLOTS.len()];
        for s in class {
            let whole = s.first == 0 && s.last == u16::MAX;
            match s.protocol {
                None => {
                    for (slot, (_, protocol)) in slots.iter_mut().zip(PROTOCOL_SLOTS) {
                        if protocol.is_none() {
                            *slot = Some(s.rule);
                        }
                    }
                }
                Some(p) if whole && !exact => {
                    if let Some(i) = PROTOCOL_SLOTS.iter().position(|(_, q)| *q == Some(p)) {
                        slots[i] = Some(s.rule);
                    }
                }
                Some(p) => {
                    let Some(tail) = tail_of(s.rule) else {
                        continue;
                    };
                    let mut text = head.clone();
                    text.push_str(proto(p));
                    text.push_str(" . ");
                    let key_start = text.len();
                    push_ports(&mut text, s.first, s.last);
                    let mut key = text.clone();
                    if s.first == s.last && !exact {
                        key.truncate(key_start);
                        push_ports(&mut key, s.first, s.first);
                        key.push('-');
                        push_ports(&mut key, s.last, s.last);
                    }
                    text.push_str(&tail);
                    out.push((key, text));
                }
            }
        }
        push_whole_protocol_runs(&mut out, &head, &slots, &mut tail_of);
    }
    out
}

/// The protocol numbers in order, as they are written in a range map key: the ranges of
/// protocols without ports (`None`) between TCP, UDP and SCTP.
const PROTOCOL_SLOTS: [((u8, u8), Option<netpol_core::Protocol>); 7] = [
    ((0, 5), None),
    ((6, 6), Some(netpol_core::Protocol::Tcp)),
    ((7, 16), None),
    ((17, 17), Some(netpol_core::Protocol::Udp)),
    ((18, 131), None),
    ((132, 132), Some(netpol_core::Protocol::Sctp)),
    ((133, 255), None),
];

/// One element per run of neighbouring protocol slots decided for every port by the same rule
/// (`slots`: the deciding rule per slot of [`PROTOCOL_SLOTS`]).
fn push_whole_protocol_runs(
    out: &mut Vec<(String, String)>,
    head: &str,
    slots: &[Option<usize>; PROTOCOL_SLOTS.len()],
    tail_of: &mut dyn FnMut(usize) -> Option<String>,
) {
    let mut i = 0;
    while i < slots.len() {
        let Some(rule) = slots[i] else {
            i += 1;
            continue;
        };
        let mut j = i;
        while j + 1 < slots.len() && slots[j + 1] == Some(rule) {
            j += 1;
        }
        if let Some(tail) = tail_of(rule) {
            let mut key = head.to_string();
            match (i == j, PROTOCOL_SLOTS[i]) {
                (true, (_, Some(p))) => key.push_str(proto(p)),
                _ => {
                    let (first, last) = (PROTOCOL_SLOTS[i].0 .0, PROTOCOL_SLOTS[j].0 .1);
                    key.push_str(&format!("{first}-{last}"));
                }
            }
            key.push_str(" . 0-65535");
            let text = format!("{key}{tail}");
            out.push((key, text));
        }
        i = j + 1;
    }
}

/// The chain an egress Accept of an admin rule goes to (see [`Renderer::egress_accepted_chain`]).
pub(super) const EGRESS_ACCEPTED: &str = "eg_accepted";

/// The header of a tier's exact-port map.
const EXACT_TIER_MAP_HEADER: [&str; 1] = ["type mark . inet_proto . inet_service : verdict"];

/// The header of a tier's range map.
const TIER_MAP_HEADER: [&str; 2] = [
    "type mark . inet_proto . inet_service : verdict",
    "flags interval",
];

/// The protocol number of a protocol with ports.
#[cfg(test)]
fn number(p: netpol_core::Protocol) -> u8 {
    use netpol_core::Protocol;
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netpol_core::Protocol;

    #[test]
    fn the_protocol_slots_cover_every_protocol_once_in_order_with_tcp_udp_and_sctp_at_their_numbers(
    ) {
        let mut next = 0u16;
        for ((first, last), protocol) in PROTOCOL_SLOTS {
            assert_eq!(u16::from(first), next, "slots are contiguous");
            assert!(first <= last);
            if let Some(p) = protocol {
                assert_eq!((first, last), (number(p), number(p)), "{p}");
            }
            next = u16::from(last) + 1;
        }
        assert_eq!(next, 256);
        for p in Protocol::ALL {
            assert!(PROTOCOL_SLOTS.iter().any(|(_, q)| *q == Some(p)), "{p}");
        }
    }
}
