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
//! chain in_classify {                      # peer class into the conntrack mark
//!     ct mark set 0x00000000
//!     ct mark set ip saddr map @in_wl4 return
//!     ct mark set ip6 saddr map @in_wl6 return
//!     ct mark set ip saddr map @in_ext4
//!     ct mark set ip6 saddr map @in_ext6
//! }
//! chain in_<h> {                           # one per identity (h: 8 hex digits of a hash of its
//!                                          # content); rules for empty maps are left out
//!     counter name "pol_..." accept                                       # open identity only
//!     counter name meta l4proto . th dport map @in_<h>_any accept
//!     jump in_classify
//!     counter name ct mark map @in_<h>_all accept
//!     counter name ct mark . meta l4proto . th dport map @in_<h>_port accept
//!     limit name "denied_log" log prefix "netpol:ingress:in_<h>" group 28272   # NFLOG, rate-limited
//!     counter name "denied_ingress" drop
//! }
//! limit denied_log { rate 50/second burst 100 packets }   # one per table, shared by every chain
//! ```
//!
//! Egress identity chains are the same with `return` instead of `accept` (the destination's
//! ingress is checked next), `eg_classify` reading `daddr` and the prefix
//! `netpol:egress:eg_<h>`.
//!
//! The log rule is separate from the drop rule so that a packet over the rate limit (the `limit`
//! statement does not match) is still dropped and counted, just not logged. The limit is one named
//! object, so the whole node logs at most [`crate::DENIED_LOG_RATE_PER_SECOND`] denied packets a
//! second however many identities deny at once.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use netpol_core::{Direction, Protocol};

use crate::interval::{addr_key, render_range};
use crate::naming::{assign_unique, hash32};
use crate::{DirectionIr, Grant, Identity, RulesetIr};

/// The name of the table.
pub const TABLE: &str = "netpol";

/// Named counters crediting denials.
pub const DENIED_INGRESS: &str = "denied_ingress";
pub const DENIED_EGRESS: &str = "denied_egress";

/// The named `limit` object every identity chain's log rule shares.
pub const DENIED_LOG_LIMIT: &str = "denied_log";

/// One top-level object of the table, as the full script declares it and as an update adds,
/// changes or deletes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Object {
    /// `counter NAME { ... }`: `decl` is the whole line.
    Counter { name: String, decl: String },
    /// `limit NAME { ... }`: `decl` is the whole line.
    Limit { name: String, decl: String },
    /// A set or map: its header lines (`type ...`, `flags ...`) and its elements as (key, whole
    /// element text). Keys are what `delete element` takes.
    Map {
        name: String,
        header: Vec<String>,
        elements: Vec<(String, String)>,
    },
    /// A chain: its comment line (if any) and its rules, in order.
    Chain {
        name: String,
        comment: Option<String>,
        rules: Vec<String>,
    },
}

impl Object {
    pub(crate) fn name(&self) -> &str {
        match self {
            Object::Counter { name, .. }
            | Object::Limit { name, .. }
            | Object::Map { name, .. }
            | Object::Chain { name, .. } => name,
        }
    }

    /// The declaration as it appears inside `table inet netpol { ... }`, one tab deeper.
    pub(crate) fn write(&self, out: &mut String) {
        let line = |out: &mut String, indent: usize, text: &str| {
            for _ in 0..indent {
                out.push('\t');
            }
            out.push_str(text);
            out.push('\n');
        };
        match self {
            Object::Counter { decl, .. } | Object::Limit { decl, .. } => line(out, 1, decl),
            Object::Map {
                name,
                header,
                elements,
            } => {
                line(out, 1, &format!("map {name} {{"));
                for h in header {
                    line(out, 2, h);
                }
                if !elements.is_empty() {
                    line(out, 2, "elements = {");
                    let n = elements.len();
                    for (i, (_, e)) in elements.iter().enumerate() {
                        out.push_str("\t\t\t");
                        out.push_str(e);
                        if i + 1 < n {
                            out.push(',');
                        }
                        out.push('\n');
                    }
                    line(out, 2, "}");
                }
                line(out, 1, "}");
            }
            Object::Chain {
                name,
                comment,
                rules,
            } => {
                line(out, 1, &format!("chain {name} {{"));
                if let Some(c) = comment {
                    line(out, 2, &format!("comment {c};"));
                }
                for r in rules {
                    line(out, 2, r);
                }
                line(out, 1, "}");
            }
        }
    }
}

/// The table's objects in declaration order (every object is declared after what it refers to).
///
/// The identity objects are taken from `pre` (see [`identity_names`]) where present instead of
/// being rendered a second time.
fn objects(ir: &RulesetIr, pre: Prerendered) -> Vec<Object> {
    let mut r = Renderer {
        ir,
        objects: Vec::new(),
        pre,
    };
    r.table();
    r.objects
}

/// The objects of every identity as [`identity_names`] rendered them under [`PLACEHOLDER`], by
/// identity index, per direction.
#[derive(Default)]
pub(crate) struct Prerendered {
    pub(crate) ingress: Vec<Vec<Object>>,
    pub(crate) egress: Vec<Vec<Object>>,
}

/// The identity name used while the real name (a hash of the content) is not known yet. It
/// cannot occur in real names: they are made of `[A-Za-z0-9_.-]`.
const PLACEHOLDER: &str = "@@IDENTITY@@";

impl Object {
    /// The object as it renders for an identity named `chain` instead of [`PLACEHOLDER`]: the name
    /// appears in object names and in the chain's rules (map references), never in elements.
    fn renamed(self, chain: &str) -> Object {
        match self {
            Object::Map {
                name,
                header,
                elements,
            } => Object::Map {
                name: name.replace(PLACEHOLDER, chain),
                header,
                elements,
            },
            Object::Chain {
                name,
                comment,
                rules,
            } => Object::Chain {
                name: name.replace(PLACEHOLDER, chain),
                comment,
                rules: rules
                    .into_iter()
                    .map(|r| {
                        if r.contains(PLACEHOLDER) {
                            r.replace(PLACEHOLDER, chain)
                        } else {
                            r
                        }
                    })
                    .collect(),
            },
            Object::Counter { .. } | Object::Limit { .. } => self,
        }
    }
}

/// Renders the script and counts the elements of every set and map; also returns the objects.
pub(crate) fn render(
    ir: &RulesetIr,
    pre: Prerendered,
) -> (String, BTreeMap<String, usize>, Vec<Object>) {
    let objects = objects(ir, pre);
    let mut out = String::with_capacity(1 << 16);
    let _ = writeln!(
        out,
        "# netpol: NetworkPolicy enforcement for node {} (ipBlock matches workloads: {})",
        ir.node, ir.ipblock_matches_workloads
    );
    out.push_str("# Atomic replacement: create (no-op if present), delete, recreate.\n");
    let _ = writeln!(out, "table inet {TABLE} {{}}");
    let _ = writeln!(out, "delete table inet {TABLE}");
    let _ = writeln!(out, "table inet {TABLE} {{");
    let mut elements = BTreeMap::new();
    for o in &objects {
        if let Object::Map {
            name, elements: e, ..
        } = o
        {
            elements.insert(name.clone(), e.len());
        }
        o.write(&mut out);
    }
    out.push_str("}\n");
    (out, elements, objects)
}

/// The chain name of every identity of a direction, derived from what the identity's chain and
/// maps contain (not from its position), so that an identity whose rules and workloads do not
/// change keeps its name when other identities come and go: that is what lets an update touch
/// only the identities that changed. Names are `<prefix>_<8 hex digits>`; the rare hash
/// collision is resolved by probing in content order, which keeps the result deterministic.
///
/// Also returns the objects of every identity rendered under [`PLACEHOLDER`], for [`render`].
pub(crate) fn identity_names(ir: &RulesetIr, d: &DirectionIr) -> (Vec<String>, Vec<Vec<Object>>) {
    let p = prefix(d.direction);
    let mut objects = Vec::with_capacity(d.identities.len());
    let contents: Vec<String> = d
        .identities
        .iter()
        .map(|ident| {
            let mut r = Renderer {
                ir,
                objects: Vec::new(),
                pre: Prerendered::default(),
            };
            r.identity(d, ident, PLACEHOLDER);
            let mut text = String::new();
            for o in &r.objects {
                o.write(&mut text);
            }
            objects.push(r.objects);
            text
        })
        .collect();
    let hashes: Vec<u32> = contents.iter().map(|c| hash32(c.as_bytes())).collect();
    let names = assign_unique(&hashes, &contents, |_| true)
        .into_iter()
        .map(|h| format!("{p}_{h:08x}"))
        .collect();
    (names, objects)
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

fn push_ports(out: &mut String, first: u16, last: u16) {
    if first == last {
        let _ = write!(out, "{first}");
    } else {
        let _ = write!(out, "{first}-{last}");
    }
}

fn mark(class: u32) -> String {
    format!("0x{class:08x}")
}

/// Appends an address as `Display` renders it; IPv4 (most elements) without the formatting
/// machinery.
fn push_addr(out: &mut String, a: std::net::IpAddr) {
    match a {
        std::net::IpAddr::V4(v) => {
            for (i, octet) in v.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + (octet / 10) % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        std::net::IpAddr::V6(v) => {
            let _ = write!(out, "{v}");
        }
    }
}

fn push_mark(out: &mut String, class: u32) {
    let _ = write!(out, "0x{class:08x}");
}

/// An nft string literal: no double quotes, at most 128 bytes (nft's comment limit).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(128) + 2);
    push_quoted(&mut out, s);
    out
}

/// Appends [`quoted`]`(s)` to `out` without intermediate strings (this runs for every element).
fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    let start = out.len();
    if s.len() <= 128 && !s.chars().any(|c| c == '"' || c.is_control()) {
        // The common case: nothing to replace or cut.
        out.push_str(s);
    } else {
        out.extend(
            s.chars()
                .map(|c| if c == '"' || c.is_control() { '\'' } else { c }),
        );
        // Replacements are one byte, so the cleaned text may still be long.
        if out.len() - start > 128 {
            let mut cut = start + 125;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("...");
        }
    }
    out.push('"');
}

struct Renderer<'a> {
    ir: &'a RulesetIr,
    objects: Vec<Object>,
    pre: Prerendered,
}

/// An element whose key is its first `key_len` bytes (known while building it, so the text need
/// not be searched).
fn keyed(text: String, key_len: usize) -> (String, String) {
    match text.get(..key_len) {
        Some(k) => (k.to_string(), text),
        None => element(text),
    }
}

/// Splits a rendered element into its key (what precedes ` comment` or ` : `) and itself.
fn element(text: String) -> (String, String) {
    let key = match (text.find(" comment "), text.find(" : ")) {
        (Some(c), Some(v)) => &text[..c.min(v)],
        (Some(c), None) => &text[..c],
        (None, Some(v)) => &text[..v],
        (None, None) => &text[..],
    };
    (key.to_string(), text)
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
    fn map(&mut self, name: &str, header: &[&str], elements: Vec<(String, String)>) {
        self.objects.push(Object::Map {
            name: name.to_string(),
            header: header.iter().map(|h| h.to_string()).collect(),
            elements,
        });
    }

    fn chain(&mut self, name: &str, comment: Option<String>, rules: Vec<String>) {
        self.objects.push(Object::Chain {
            name: name.to_string(),
            comment,
            rules,
        });
    }

    fn table(&mut self) {
        let ir = self.ir;
        for p in &ir.policies {
            self.objects.push(Object::Counter {
                name: p.counter.clone(),
                decl: format!("counter {} {{ comment {}; }}", p.counter, quoted(&p.key)),
            });
        }
        for name in [DENIED_INGRESS, DENIED_EGRESS] {
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
        for d in [&ir.egress, &ir.ingress] {
            self.direction(d);
        }
        self.chain(
            "forward",
            None,
            [
                "type filter hook forward priority filter; policy accept;",
                "ct state established,related accept",
                "ip saddr vmap @eg_dispatch4",
                "ip6 saddr vmap @eg_dispatch6",
                "ip daddr vmap @in_dispatch4",
                "ip6 daddr vmap @in_dispatch6",
            ]
            .iter()
            .map(|r| r.to_string())
            .collect(),
        );
    }

    fn direction(&mut self, d: &DirectionIr) {
        let p = prefix(d.direction);
        let field = match d.direction {
            Direction::Ingress => "saddr",
            Direction::Egress => "daddr",
        };
        let peers_of: BTreeMap<u32, String> = d
            .classes
            .iter()
            .map(|c| (c.id, c.peers.join("; ")))
            .collect();
        for (v6, fam, ty) in [(false, "4", "ipv4_addr"), (true, "6", "ipv6_addr")] {
            let dispatch: Vec<(String, String)> = d
                .dispatch
                .iter()
                .filter(|(a, _)| a.is_ipv6() == v6)
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
            self.map(
                &format!("{p}_dispatch{fam}"),
                &[&format!("type {ty} : verdict")],
                dispatch,
            );
            let wl: Vec<(String, String)> = d
                .workload_classes
                .iter()
                .filter(|(a, _)| a.is_ipv6() == v6)
                .map(|(a, x)| {
                    let mut e = String::with_capacity(64);
                    push_addr(&mut e, *a);
                    let k = e.len();
                    e.push_str(" comment ");
                    push_quoted(&mut e, &x.workload);
                    e.push_str(" : ");
                    push_mark(&mut e, x.class);
                    keyed(e, k)
                })
                .collect();
            self.map(&format!("{p}_wl{fam}"), &[&format!("type {ty} : mark")], wl);
            let ext: Vec<(String, String)> = d
                .external
                .iter()
                .filter(|r| r.first.is_ipv6() == v6)
                .map(|r| {
                    let peers = peers_of.get(&r.class).map(String::as_str).unwrap_or("");
                    element(format!(
                        "{} comment {} : {}",
                        render_range(addr_key(r.first), addr_key(r.last), v6),
                        quoted(peers),
                        mark(r.class)
                    ))
                })
                .collect();
            self.map(
                &format!("{p}_ext{fam}"),
                &[&format!("type {ty} : mark"), "flags interval"],
                ext,
            );
        }
        self.chain(
            &format!("{p}_classify"),
            None,
            vec![
                "ct mark set 0x00000000".to_string(),
                format!("ct mark set ip {field} map @{p}_wl4 return"),
                format!("ct mark set ip6 {field} map @{p}_wl6 return"),
                format!("ct mark set ip {field} map @{p}_ext4"),
                format!("ct mark set ip6 {field} map @{p}_ext6"),
            ],
        );
        for (i, ident) in d.identities.iter().enumerate() {
            let pre = match d.direction {
                Direction::Ingress => &mut self.pre.ingress,
                Direction::Egress => &mut self.pre.egress,
            }
            .get_mut(i)
            .map(std::mem::take)
            .unwrap_or_default();
            if pre.is_empty() {
                self.identity(d, ident, &ident.chain);
            } else {
                self.objects
                    .extend(pre.into_iter().map(|o| o.renamed(&ident.chain)));
            }
        }
    }

    /// The maps and the chain of one identity, named `chain`.
    fn identity(&mut self, d: &DirectionIr, ident: &Identity, chain: &str) {
        let p = prefix(d.direction);
        let (allow, denied) = match d.direction {
            Direction::Ingress => ("accept", DENIED_INGRESS),
            Direction::Egress => ("return", DENIED_EGRESS),
        };
        let r = &ident.rules;
        // Few distinct grants serve many elements: render each tail once.
        let mut tails: HashMap<Grant, String> = HashMap::new();
        let any: Vec<(String, String)> = r
            .any_peer
            .iter()
            .map(|s| {
                let mut e = String::with_capacity(96);
                e.push_str(proto(s.protocol));
                e.push_str(" . ");
                push_ports(&mut e, s.first, s.last);
                let k = e.len();
                e.push_str(
                    tails
                        .entry(s.grant)
                        .or_insert_with(|| self.grant_tail(s.grant, d.direction)),
                );
                keyed(e, k)
            })
            .collect();
        let all: Vec<(String, String)> = r
            .class_all
            .iter()
            .map(|(c, g)| {
                let mut e = String::with_capacity(96);
                push_mark(&mut e, *c);
                let k = e.len();
                e.push_str(
                    tails
                        .entry(*g)
                        .or_insert_with(|| self.grant_tail(*g, d.direction)),
                );
                keyed(e, k)
            })
            .collect();
        let port: Vec<(String, String)> = r
            .class_ports
            .iter()
            .map(|s| {
                let mut e = String::with_capacity(112);
                push_mark(&mut e, s.class);
                e.push_str(" . ");
                e.push_str(proto(s.protocol));
                e.push_str(" . ");
                push_ports(&mut e, s.first, s.last);
                let k = e.len();
                e.push_str(
                    tails
                        .entry(s.grant)
                        .or_insert_with(|| self.grant_tail(s.grant, d.direction)),
                );
                keyed(e, k)
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
        let mut rules = Vec::new();
        if let Some(g) = r.open {
            rules.push(format!("counter name {} {allow}", self.grant_counter(g)));
        }
        if has_any {
            rules.push(format!(
                "counter name meta l4proto . th dport map @{chain}_any {allow}"
            ));
        }
        if has_all || has_port {
            rules.push(format!("jump {p}_classify"));
        }
        if has_all {
            rules.push(format!("counter name ct mark map @{chain}_all {allow}"));
        }
        if has_port {
            rules.push(format!(
                "counter name ct mark . meta l4proto . th dport map @{chain}_port {allow}"
            ));
        }
        // Logged before the drop in a rule of its own: over the limit, the packet falls through
        // to the drop unlogged. The chain name in the prefix is [`PLACEHOLDER`] while the name is
        // being derived, so it is part of the hashed content like every other rule.
        rules.push(format!(
            "limit name \"{DENIED_LOG_LIMIT}\" log prefix \"{}\" group {}",
            crate::denied_log_prefix(d.direction, chain),
            crate::DENIED_LOG_GROUP
        ));
        rules.push(format!("counter name \"{denied}\" drop"));
        self.chain(chain, Some(quoted(&ident.workloads.join(", "))), rules);
    }
}
