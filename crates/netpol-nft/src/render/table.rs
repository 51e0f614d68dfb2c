//! The IR of a node as table objects: the counters, the limit, every direction's dispatch and
//! classification maps and chains, every identity's maps and chain, and the `forward` chain.

use std::collections::{BTreeMap, HashMap};

use netpol_core::Direction;

use super::{
    element, keyed, mark, node, prefix, proto, push_addr, push_mark, push_ports, push_quoted,
    quoted, Object, Prerendered, DENIED_EGRESS, DENIED_INGRESS, DENIED_LOG_LIMIT, DENIED_SPOOFED,
    TABLE_PACKETS,
};
use crate::interval::{addr_key, render_range};
use crate::{CtMarkBits, DirectionIr, Grant, Identity, RulesetIr};

pub(super) struct Renderer<'a> {
    pub(super) ir: &'a RulesetIr,
    pub(super) objects: Vec<Object>,
    pub(super) pre: Prerendered,
    /// The conntrack mark range the classes live in.
    pub(super) bits: CtMarkBits,
    /// Identities are rendered to be named: their chains look up [`super::TIER_PLACEHOLDER`]
    /// instead of their tier maps.
    pub(super) naming: bool,
}

impl Renderer<'_> {
    fn grant_counter(&self, g: Grant) -> String {
        let mut out = String::new();
        self.push_grant_counter(&mut out, g);
        out
    }

    fn push_grant_counter(&self, out: &mut String, g: Grant) {
        match self.ir.policies.get(g.policy) {
            Some(p) => push_quoted(out, &p.counter),
            None => push_quoted(out, "invalid"),
        }
    }

    /// ` comment <policy and rule> : <counter>`, the tail of every grant element.
    fn grant_tail(&self, g: Grant, d: Direction) -> String {
        let key = self
            .ir
            .policies
            .get(g.policy)
            .map(|p| p.key.as_str())
            .unwrap_or("?");
        let mut out = String::from(" comment ");
        push_quoted(&mut out, &format!("{key} {d}[{}]", g.rule));
        out.push_str(" : ");
        self.push_grant_counter(&mut out, g);
        out
    }

    /// A set or map declaration.
    pub(super) fn map(&mut self, name: &str, header: &[&str], elements: Vec<(String, String)>) {
        self.objects.push(Object::Map {
            name: name.to_string(),
            header: header.iter().map(|h| h.to_string()).collect(),
            elements,
        });
    }

    pub(super) fn chain(&mut self, name: &str, comment: Option<String>, rules: Vec<String>) {
        self.objects.push(Object::Chain {
            name: name.to_string(),
            comment,
            rules,
        });
    }

    pub(super) fn table(&mut self) {
        let ir = self.ir;
        for p in &ir.policies {
            self.objects.push(Object::Counter {
                name: p.counter.clone(),
                decl: format!("counter {} {{ comment {}; }}", p.counter, quoted(&p.key)),
            });
        }
        self.admin_counters();
        for name in [DENIED_INGRESS, DENIED_EGRESS, DENIED_SPOOFED, TABLE_PACKETS] {
            self.objects.push(Object::Counter {
                name: name.to_string(),
                decl: format!("counter {name} {{ }}"),
            });
        }
        // Always present (also on nodes with nothing isolated), so updates never add or remove it.
        self.objects.push(Object::Limit {
            name: DENIED_LOG_LIMIT.to_string(),
            decl: format!(
                "limit {DENIED_LOG_LIMIT} {{ rate {}/second burst {} packets }}",
                crate::DENIED_LOG_RATE_PER_SECOND,
                crate::DENIED_LOG_BURST
            ),
        });
        self.hairpin_sets();
        self.egress_accepted_chain();
        for d in [&ir.egress, &ir.ingress] {
            self.direction(d);
        }
        self.hairpin_maps();
        let mut forward = vec![
            "type filter hook forward priority filter; policy accept;",
            "counter name \"table_packets\"",
            "ct state established,related accept",
        ];
        forward.extend(node::hairpin_rules());
        forward.extend([
            "ip saddr vmap @eg_dispatch4",
            "ip6 saddr vmap @eg_dispatch6",
        ]);
        forward.extend(super::INGRESS_DISPATCH_RULES);
        self.chain(
            "forward",
            None,
            forward.iter().map(|r| r.to_string()).collect(),
        );
        self.chain("input", None, node::input_rules());
        self.source_check();
    }

    fn direction(&mut self, d: &DirectionIr) {
        let p = prefix(d.direction);
        for family in [Family::V4, Family::V6] {
            self.dispatch_map(d, p, family);
            self.workload_map(d, p, family);
            self.external_map(d, p, family);
        }
        let field = match d.direction {
            Direction::Ingress => "saddr",
            Direction::Egress => "daddr",
        };
        let keep = !self.bits.mask();
        for c in d.classes.iter().filter(|c| c.id != 0) {
            self.chain(
                &class_chain(p, c.id),
                None,
                vec![format!(
                    "ct mark set ct mark and 0x{keep:08x} or {}",
                    mark(c.id)
                )],
            );
        }
        self.chain(
            &format!("{p}_classify"),
            None,
            vec![
                format!("ct mark set ct mark and 0x{keep:08x}"),
                format!("ip {field} vmap @{p}_wl4"),
                format!("ip6 {field} vmap @{p}_wl6"),
                format!("ip {field} vmap @{p}_ext4"),
                format!("ip6 {field} vmap @{p}_ext6"),
            ],
        );
        self.admin_rule_chains(d.direction);
        let mut declared = std::collections::HashSet::new();
        for m in &d.tiers {
            self.tier_group(m, &mut declared);
        }
        for (i, ident) in d.identities.iter().enumerate() {
            let pre = match d.direction {
                Direction::Ingress => &mut self.pre.ingress,
                Direction::Egress => &mut self.pre.egress,
            }
            .get_mut(i)
            .map(std::mem::take)
            .unwrap_or_default();
            // Named with the group names of their tier maps: rendered again with the maps' own.
            let tiered = ident.rules.admin.is_some() || ident.rules.baseline.is_some();
            if pre.is_empty() || tiered {
                self.identity(d, ident, &ident.chain);
            } else {
                self.objects
                    .extend(pre.into_iter().map(|o| o.renamed(&ident.chain)));
            }
        }
    }

    /// `<p>_dispatch4/6`: local isolated address -> jump to its identity's chain.
    fn dispatch_map(&mut self, d: &DirectionIr, p: &str, family: Family) {
        let dispatch: Vec<(String, String)> = d
            .dispatch
            .iter()
            .filter(|(a, _)| a.is_ipv6() == family.v6())
            .map(|(a, x)| {
                let chain = d
                    .identities
                    .get(x.identity)
                    .map(|i| i.chain.as_str())
                    .unwrap_or("invalid");
                let mut e = String::with_capacity(64);
                push_addr(&mut e, *a);
                let k = e.len();
                e.push_str(" comment ");
                push_quoted(&mut e, &x.workload);
                e.push_str(" : jump ");
                e.push_str(chain);
                keyed(e, k)
            })
            .collect();
        let (fam, ty) = (family.suffix(), family.nft_type());
        self.map(
            &format!("{p}_dispatch{fam}"),
            &[&format!("type {ty} : verdict")],
            dispatch,
        );
    }

    /// `<p>_wl4/6`: workload address -> peer class.
    fn workload_map(&mut self, d: &DirectionIr, p: &str, family: Family) {
        let wl: Vec<(String, String)> = d
            .workload_classes
            .iter()
            .filter(|(a, _)| a.is_ipv6() == family.v6())
            .map(|(a, x)| {
                let mut e = String::with_capacity(64);
                push_addr(&mut e, *a);
                let k = e.len();
                e.push_str(" comment ");
                push_quoted(&mut e, &x.workload);
                e.push_str(" : ");
                push_class_verdict(&mut e, p, x.class);
                keyed(e, k)
            })
            .collect();
        let (fam, ty) = (family.suffix(), family.nft_type());
        self.map(
            &format!("{p}_wl{fam}"),
            &[&format!("type {ty} : verdict")],
            wl,
        );
    }

    /// `<p>_ext4/6`: disjoint address ranges -> peer class.
    fn external_map(&mut self, d: &DirectionIr, p: &str, family: Family) {
        let peers_of: BTreeMap<u32, String> = d
            .classes
            .iter()
            .map(|c| (c.id, c.peers.join("; ")))
            .collect();
        let v6 = family.v6();
        let ext: Vec<(String, String)> = d
            .external
            .iter()
            .filter(|r| r.first.is_ipv6() == v6)
            .map(|r| {
                let peers = peers_of.get(&r.class).map(String::as_str).unwrap_or("");
                let mut verdict = String::new();
                push_class_verdict(&mut verdict, p, r.class);
                element(format!(
                    "{} comment {} : {verdict}",
                    render_range(addr_key(r.first), addr_key(r.last), v6),
                    quoted(peers),
                ))
            })
            .collect();
        let (fam, ty) = (family.suffix(), family.nft_type());
        self.map(
            &format!("{p}_ext{fam}"),
            &[&format!("type {ty} : verdict"), "flags interval"],
            ext,
        );
    }

    /// The maps and the chain of one identity, named `chain`.
    pub(super) fn identity(&mut self, d: &DirectionIr, ident: &Identity, chain: &str) {
        let maps = self.identity_maps(d, ident);
        let tier_maps = [ident.rules.admin, ident.rules.baseline].map(|map| {
            map.and_then(|i| d.tiers.get(i)).map(|m| {
                if self.naming {
                    super::TIER_PLACEHOLDER.to_string()
                } else {
                    m.name.clone()
                }
            })
        });
        let present = PresentMaps {
            any: !maps.any.is_empty(),
            all: !maps.all.is_empty(),
            port: !maps.port.is_empty(),
        };
        if present.any {
            self.map(
                &format!("{chain}_any"),
                &["type inet_proto . inet_service : counter", "flags interval"],
                maps.any,
            );
        }
        if present.all {
            self.map(&format!("{chain}_all"), &["type mark : counter"], maps.all);
        }
        if present.port {
            self.map(
                &format!("{chain}_port"),
                &[
                    "type mark . inet_proto . inet_service : counter",
                    "flags interval",
                ],
                maps.port,
            );
        }
        let rules = self.identity_rules(d, ident, chain, present, &tier_maps);
        self.chain(chain, Some(quoted(&ident.workloads.join(", "))), rules);
    }

    /// The elements of an identity's three grant maps.
    fn identity_maps(&self, d: &DirectionIr, ident: &Identity) -> GrantMaps {
        let r = &ident.rules;
        // Few distinct grants serve many elements: render each tail once.
        let mut tails: HashMap<Grant, String> = HashMap::new();
        let mut element = |mut e: String, g: Grant| {
            let k = e.len();
            e.push_str(
                tails
                    .entry(g)
                    .or_insert_with(|| self.grant_tail(g, d.direction)),
            );
            keyed(e, k)
        };
        let mut maps = GrantMaps::default();
        for s in &r.any_peer {
            let mut e = String::with_capacity(96);
            e.push_str(proto(s.protocol));
            e.push_str(" . ");
            push_ports(&mut e, s.first, s.last);
            maps.any.push(element(e, s.grant));
        }
        for (c, g) in &r.class_all {
            let mut e = String::with_capacity(96);
            push_mark(&mut e, *c);
            maps.all.push(element(e, *g));
        }
        for s in &r.class_ports {
            let mut e = String::with_capacity(112);
            push_mark(&mut e, s.class);
            e.push_str(" . ");
            e.push_str(proto(s.protocol));
            e.push_str(" . ");
            push_ports(&mut e, s.first, s.last);
            maps.port.push(element(e, s.grant));
        }
        maps
    }

    /// The rules of an identity's chain: the grant lookups that exist, the log, the drop.
    fn identity_rules(
        &self,
        d: &DirectionIr,
        ident: &Identity,
        chain: &str,
        present: PresentMaps,
        tier_maps: &[Option<String>; 2],
    ) -> Vec<String> {
        let p = prefix(d.direction);
        let (allow, denied) = match d.direction {
            Direction::Ingress => ("accept", DENIED_INGRESS),
            Direction::Egress => ("return", DENIED_EGRESS),
        };
        let tiers = self.tier_rules(d, &ident.rules, tier_maps);
        let mut rules = tiers.before;
        if ident.rules.network_policy_open {
            rules.extend(tiers.open_rest);
            return rules;
        }
        if let Some(g) = ident.rules.open {
            rules.push(format!("counter name {} {allow}", self.grant_counter(g)));
        }
        if present.any {
            rules.push(format!(
                "counter name meta l4proto . th dport map @{chain}_any {allow}"
            ));
        }
        if (present.all || present.port) && !tiers.classified {
            rules.push(format!("jump {p}_classify"));
        }
        let class = format!("ct mark and 0x{:08x}", self.bits.mask());
        if present.all {
            rules.push(format!("counter name {class} map @{chain}_all {allow}"));
        }
        if present.port {
            rules.push(format!(
                "counter name {class} . meta l4proto . th dport map @{chain}_port {allow}"
            ));
        }
        // Logged before the drop in a rule of its own: over the limit, the packet falls through
        // to the drop unlogged. The chain name in the prefix is the placeholder while the name is
        // being derived, so it is part of the hashed content like every other rule.
        rules.push(format!(
            "limit name \"{DENIED_LOG_LIMIT}\" log prefix \"{}\" group {}",
            crate::denied_log_prefix(d.direction, chain),
            crate::DENIED_LOG_GROUP
        ));
        rules.push(format!("counter name \"{denied}\" drop"));
        rules
    }
}

/// The chain that puts class `class` (not 0) into the conntrack mark: `<p>_m_<mark>`.
fn class_chain(p: &str, class: u32) -> String {
    format!("{p}_m_{class:08x}")
}

/// What a classification element does for `class`: `goto` its chain, or for class 0 `return`
/// (the classify chain has already cleared the class bits).
fn push_class_verdict(out: &mut String, p: &str, class: u32) {
    if class == 0 {
        out.push_str("return");
    } else {
        // What `class_chain` gives, written in place: this runs for every workload address.
        out.push_str("goto ");
        out.push_str(p);
        out.push_str("_m_");
        push_hex8(out, class);
    }
}

/// `{v:08x}` without the formatting machinery.
fn push_hex8(out: &mut String, v: u32) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..8).rev() {
        out.push(char::from(DIGITS[((v >> (shift * 4)) & 0xf) as usize]));
    }
}

/// The elements of an identity's grant maps, as (key, element) pairs.
#[derive(Default)]
struct GrantMaps {
    any: Vec<(String, String)>,
    all: Vec<(String, String)>,
    port: Vec<(String, String)>,
}

/// Which of an identity's grant maps have elements (empty ones are left out with their rules).
#[derive(Clone, Copy)]
struct PresentMaps {
    any: bool,
    all: bool,
    port: bool,
}

/// An address family of the per-family maps.
#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn v6(self) -> bool {
        matches!(self, Family::V6)
    }

    fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "4",
            Family::V6 => "6",
        }
    }

    fn nft_type(self) -> &'static str {
        match self {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_verdict_names_the_chain_that_class_chain_names() {
        for class in [1, 0xabc, 0x0010_0000, 0xffff_0000, u32::MAX] {
            let mut verdict = String::new();
            push_class_verdict(&mut verdict, "in", class);
            assert_eq!(verdict, format!("goto {}", class_chain("in", class)));
        }
        let mut zero = String::new();
        push_class_verdict(&mut zero, "eg", 0);
        assert_eq!(zero, "return");
    }
}
