//! From the IR to `nft -f` text.
//!
//! The table, for direction prefixes `eg` (egress of a local source, classify the destination) and
//! `in` (ingress of a local destination, classify the source):
//!
//! ```text
//! chain forward {
//!     type filter hook forward priority filter; policy accept;
//!     ct state established,related accept
//!     ip saddr vmap @eg_dispatch4          # local egress-isolated source -> jump eg_<n>
//!     ip6 saddr vmap @eg_dispatch6
//!     ip daddr vmap @in_dispatch4          # local ingress-isolated destination -> jump in_<n>
//!     ip6 daddr vmap @in_dispatch6
//! }
//! chain in_classify {                      # peer class into the mark
//!     meta mark set 0x00000000
//!     meta mark set ip saddr map @in_wl4 return
//!     meta mark set ip6 saddr map @in_wl6 return
//!     meta mark set ip saddr map @in_ext4
//!     meta mark set ip6 saddr map @in_ext6
//! }
//! chain in_<n> {                           # one per identity; rules for empty maps are left out
//!     counter name "pol_..." accept                                       # open identity only
//!     counter name meta l4proto . th dport map @in_<n>_any accept
//!     jump in_classify
//!     counter name meta mark map @in_<n>_all accept
//!     counter name meta mark . meta l4proto . th dport map @in_<n>_port accept
//!     counter name "denied_ingress" drop
//! }
//! ```
//!
//! Egress identity chains are the same with `return` instead of `accept` (the destination's
//! ingress is checked next) and `eg_classify` reading `daddr`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use netpol_core::{Direction, Protocol};

use crate::interval::{addr_key, render_range};
use crate::{DirectionIr, Grant, RulesetIr};

/// The name of the table.
pub const TABLE: &str = "netpol";

/// Named counters crediting denials.
pub const DENIED_INGRESS: &str = "denied_ingress";
pub const DENIED_EGRESS: &str = "denied_egress";

/// Renders the script and counts the elements of every set and map.
pub(crate) fn render(ir: &RulesetIr) -> (String, BTreeMap<String, usize>) {
    let mut r = Renderer {
        ir,
        out: String::new(),
        elements: BTreeMap::new(),
    };
    r.table();
    (r.out, r.elements)
}

fn prefix(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "in",
        Direction::Egress => "eg",
    }
}

fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

fn ports(first: u16, last: u16) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    }
}

fn mark(class: u32) -> String {
    format!("0x{class:08x}")
}

/// An nft string literal: no double quotes, at most 128 bytes (nft's comment limit).
fn quoted(s: &str) -> String {
    let mut clean: String = s
        .chars()
        .map(|c| if c == '"' || c.is_control() { '\'' } else { c })
        .collect();
    if clean.len() > 128 {
        let mut cut = 125;
        while !clean.is_char_boundary(cut) {
            cut -= 1;
        }
        clean.truncate(cut);
        clean.push_str("...");
    }
    format!("\"{clean}\"")
}

struct Renderer<'a> {
    ir: &'a RulesetIr,
    out: String,
    elements: BTreeMap<String, usize>,
}

impl Renderer<'_> {
    fn line(&mut self, indent: usize, text: &str) {
        for _ in 0..indent {
            self.out.push('\t');
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn grant_counter(&self, g: Grant) -> String {
        self.ir
            .policies
            .get(g.policy)
            .map(|p| quoted(&p.counter))
            .unwrap_or_else(|| quoted("invalid"))
    }

    fn grant_comment(&self, g: Grant, d: Direction) -> String {
        let key = self
            .ir
            .policies
            .get(g.policy)
            .map(|p| p.key.as_str())
            .unwrap_or("?");
        quoted(&format!("{key} {d}[{}]", g.rule))
    }

    /// A set or map declaration with one element per line.
    fn map(&mut self, name: &str, header: &[&str], elements: Vec<String>) {
        self.elements.insert(name.to_string(), elements.len());
        self.line(1, &format!("map {name} {{"));
        for h in header {
            self.line(2, h);
        }
        if !elements.is_empty() {
            self.line(2, "elements = {");
            let n = elements.len();
            for (i, e) in elements.into_iter().enumerate() {
                let sep = if i + 1 < n { "," } else { "" };
                self.line(3, &format!("{e}{sep}"));
            }
            self.line(2, "}");
        }
        self.line(1, "}");
    }

    fn table(&mut self) {
        let ir = self.ir;
        let _ = writeln!(
            self.out,
            "# netpol: NetworkPolicy enforcement for node {} (ipBlock matches workloads: {})",
            ir.node, ir.ipblock_matches_workloads
        );
        self.line(
            0,
            "# Atomic replacement: create (no-op if present), delete, recreate.",
        );
        self.line(0, &format!("table inet {TABLE} {{}}"));
        self.line(0, &format!("delete table inet {TABLE}"));
        self.line(0, &format!("table inet {TABLE} {{"));
        for p in &ir.policies {
            self.line(
                1,
                &format!("counter {} {{ comment {}; }}", p.counter, quoted(&p.key)),
            );
        }
        self.line(1, &format!("counter {DENIED_INGRESS} {{ }}"));
        self.line(1, &format!("counter {DENIED_EGRESS} {{ }}"));
        for d in [&ir.egress, &ir.ingress] {
            self.direction(d);
        }
        self.line(1, "chain forward {");
        self.line(
            2,
            "type filter hook forward priority filter; policy accept;",
        );
        self.line(2, "ct state established,related accept");
        self.line(2, "ip saddr vmap @eg_dispatch4");
        self.line(2, "ip6 saddr vmap @eg_dispatch6");
        self.line(2, "ip daddr vmap @in_dispatch4");
        self.line(2, "ip6 daddr vmap @in_dispatch6");
        self.line(1, "}");
        self.line(0, "}");
    }

    fn direction(&mut self, d: &DirectionIr) {
        let p = prefix(d.direction);
        let (field, allow, denied) = match d.direction {
            Direction::Ingress => ("saddr", "accept", DENIED_INGRESS),
            Direction::Egress => ("daddr", "return", DENIED_EGRESS),
        };
        for (v6, fam, ty) in [(false, "4", "ipv4_addr"), (true, "6", "ipv6_addr")] {
            let dispatch: Vec<String> = d
                .dispatch
                .iter()
                .filter(|(a, _)| a.is_ipv6() == v6)
                .map(|(a, x)| {
                    format!(
                        "{a} comment {} : jump {p}_{}",
                        quoted(&x.workload),
                        x.identity
                    )
                })
                .collect();
            self.map(
                &format!("{p}_dispatch{fam}"),
                &[&format!("type {ty} : verdict")],
                dispatch,
            );
            let wl: Vec<String> = d
                .workload_classes
                .iter()
                .filter(|(a, _)| a.is_ipv6() == v6)
                .map(|(a, x)| format!("{a} comment {} : {}", quoted(&x.workload), mark(x.class)))
                .collect();
            self.map(&format!("{p}_wl{fam}"), &[&format!("type {ty} : mark")], wl);
            let ext: Vec<String> = d
                .external
                .iter()
                .filter(|r| r.first.is_ipv6() == v6)
                .map(|r| {
                    let peers = d
                        .classes
                        .get(r.class as usize)
                        .map(|c| c.peers.join("; "))
                        .unwrap_or_default();
                    format!(
                        "{} comment {} : {}",
                        render_range(addr_key(r.first), addr_key(r.last), v6),
                        quoted(&peers),
                        mark(r.class)
                    )
                })
                .collect();
            self.map(
                &format!("{p}_ext{fam}"),
                &[&format!("type {ty} : mark"), "flags interval"],
                ext,
            );
        }
        self.line(1, &format!("chain {p}_classify {{"));
        self.line(2, "meta mark set 0x00000000");
        self.line(2, &format!("meta mark set ip {field} map @{p}_wl4 return"));
        self.line(2, &format!("meta mark set ip6 {field} map @{p}_wl6 return"));
        self.line(2, &format!("meta mark set ip {field} map @{p}_ext4"));
        self.line(2, &format!("meta mark set ip6 {field} map @{p}_ext6"));
        self.line(1, "}");

        for (n, ident) in d.identities.iter().enumerate() {
            let chain = format!("{p}_{n}");
            let r = &ident.rules;
            let any: Vec<String> = r
                .any_peer
                .iter()
                .map(|s| {
                    format!(
                        "{} . {} comment {} : {}",
                        proto(s.protocol),
                        ports(s.first, s.last),
                        self.grant_comment(s.grant, d.direction),
                        self.grant_counter(s.grant)
                    )
                })
                .collect();
            let all: Vec<String> = r
                .class_all
                .iter()
                .map(|(c, g)| {
                    format!(
                        "{} comment {} : {}",
                        mark(*c),
                        self.grant_comment(*g, d.direction),
                        self.grant_counter(*g)
                    )
                })
                .collect();
            let port: Vec<String> = r
                .class_ports
                .iter()
                .map(|s| {
                    format!(
                        "{} . {} . {} comment {} : {}",
                        mark(s.class),
                        proto(s.protocol),
                        ports(s.first, s.last),
                        self.grant_comment(s.grant, d.direction),
                        self.grant_counter(s.grant)
                    )
                })
                .collect();
            let (has_any, has_all, has_port) = (!any.is_empty(), !all.is_empty(), !port.is_empty());
            if has_any {
                self.map(
                    &format!("{chain}_any"),
                    &["type inet_proto . inet_service : counter", "flags interval"],
                    any,
                );
            }
            if has_all {
                self.map(&format!("{chain}_all"), &["type mark : counter"], all);
            }
            if has_port {
                self.map(
                    &format!("{chain}_port"),
                    &[
                        "type mark . inet_proto . inet_service : counter",
                        "flags interval",
                    ],
                    port,
                );
            }
            self.line(1, &format!("chain {chain} {{"));
            self.line(
                2,
                &format!("comment {};", quoted(&ident.workloads.join(", "))),
            );
            if let Some(g) = r.open {
                self.line(
                    2,
                    &format!("counter name {} {allow}", self.grant_counter(g)),
                );
            }
            if has_any {
                self.line(
                    2,
                    &format!("counter name meta l4proto . th dport map @{chain}_any {allow}"),
                );
            }
            if has_all || has_port {
                self.line(2, &format!("jump {p}_classify"));
            }
            if has_all {
                self.line(
                    2,
                    &format!("counter name meta mark map @{chain}_all {allow}"),
                );
            }
            if has_port {
                self.line(
                    2,
                    &format!(
                        "counter name meta mark . meta l4proto . th dport map @{chain}_port {allow}"
                    ),
                );
            }
            self.line(2, &format!("counter name \"{denied}\" drop"));
            self.line(1, "}");
        }
    }
}
