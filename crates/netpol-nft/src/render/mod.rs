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
//! chain in_classify {                      # peer class into the conntrack mark's class bits
//!     ct mark set ct mark and ~MASK        # class 0; the bits outside MASK are kept
//!     ip saddr vmap @in_wl4                # workload address -> goto in_m_<class> (or return)
//!     ip6 saddr vmap @in_wl6
//!     ip saddr vmap @in_ext4               # ipBlock ranges -> goto in_m_<class>
//!     ip6 saddr vmap @in_ext6
//! }
//! chain in_m_<class> {                     # one per peer class other than 0
//!     ct mark set ct mark and ~MASK or <class>
//! }
//! chain in_<h> {                           # one per identity (h: 8 hex digits of a hash of its
//!                                          # content); rules for empty maps are left out
//!     counter name "pol_..." accept                                       # open identity only
//!     counter name meta l4proto . th dport map @in_<h>_any accept
//!     jump in_classify
//!     counter name ct mark and MASK map @in_<h>_all accept
//!     counter name ct mark and MASK . meta l4proto . th dport map @in_<h>_port accept
//!     limit name "denied_log" log prefix "netpol:ingress:in_<h>" group 28272   # NFLOG, rate-limited
//!     counter name "denied_ingress" drop
//! }
//! limit denied_log { rate 50/second burst 100 packets }   # one per table, shared by every chain
//! ```
//!
//! `MASK` is the conntrack mark range of the compile ([`crate::CtMarkBits`], `0xffff0000` by
//! default). nft 1.0.6 cannot `or` a map lookup's result into a register, so a class is set by a
//! `goto` to its chain, which sets it with constants: still one lookup per classified address.
//!
//! Identities an admin policy selects add jumps to the tiers' lookup chains around these rules, and every
//! admin rule a counter and a chain: see the `tiers` module.
//!
//! Egress identity chains are the same with `return` instead of `accept` (the destination's
//! ingress is checked next), `eg_classify` reading `daddr` and the prefix
//! `netpol:egress:eg_<h>`.
//!
//! The log rule is separate from the drop rule so that a packet over the rate limit (the `limit`
//! statement does not match) is still dropped and counted, just not logged. The limit is one named
//! object, so the whole node logs at most [`crate::DENIED_LOG_RATE_PER_SECOND`] denied packets a
//! second however many identities deny at once.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use netpol_core::{Direction, Protocol};

mod node;
mod table;
mod tiers;

pub(crate) use tiers::admin_rule_chain_rules;

use crate::naming::{assign_unique, hash32};
use crate::CtMarkBits;
use crate::FAMILY;
use crate::{DirectionIr, RulesetIr};
use table::Renderer;

/// The name of the table.
pub const TABLE: &str = "netpol";

/// The named counter crediting packets dropped on ingress.
pub const DENIED_INGRESS: &str = "denied_ingress";
/// The named counter crediting packets dropped on egress.
pub const DENIED_EGRESS: &str = "denied_egress";

/// The named counter crediting every packet that crosses the table's `forward` and `input`
/// hooks: zero while traffic flows means the datapath bypasses netfilter.
pub const TABLE_PACKETS: &str = "table_packets";

/// The named counter crediting packets dropped by the source-address check.
pub const DENIED_SPOOFED: &str = "denied_spoofed";

/// The ingress check of a local destination, the last rules of `forward` (and of `eg_accepted`,
/// see the `tiers` module).
const INGRESS_DISPATCH_RULES: [&str; 2] = [
    "ip daddr vmap @in_dispatch4",
    "ip6 daddr vmap @in_dispatch6",
];

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

    /// `set` for a map whose type maps to nothing (`type ipv4_addr . ipv4_addr`, the hairpin
    /// sets), `map` for every other map; `None` for other objects.
    pub(crate) fn set_kind(&self) -> Option<&'static str> {
        match self {
            Object::Map { header, .. } if header.first().is_some_and(|h| !h.contains(" : ")) => {
                Some("set")
            }
            Object::Map { .. } => Some("map"),
            _ => None,
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
                let kind = self.set_kind().unwrap_or("map");
                line(out, 1, &format!("{kind} {name} {{"));
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
        bits: ir.node_options.ct_mark_bits,
        naming: false,
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

/// What an identity chain looks up instead of its tier maps while it is rendered to be named:
/// an identity an admin policy selects is named from its NetworkPolicy rules and its workloads,
/// not from its tier maps, so that an edited, added or deleted admin policy (new tier maps)
/// leaves the names of the identity chains alone and an update rewrites their rules in place.
pub(crate) const TIER_PLACEHOLDER: &str = "@@TIER@@";

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
    let mut elements = BTreeMap::new();
    for o in &objects {
        if let Object::Map {
            name, elements: e, ..
        } = o
        {
            elements.insert(name.clone(), e.len());
        }
    }
    let out = script(ir, &objects, &BTreeMap::new());
    (out, elements, objects)
}

/// The full script of `objects`, the named counters found in `carry` declared with those values.
pub(crate) fn script(
    ir: &RulesetIr,
    objects: &[Object],
    carry: &BTreeMap<&str, &crate::CounterReading>,
) -> String {
    let mut out = String::with_capacity(1 << 16);
    let _ = writeln!(
        out,
        "# netpol: NetworkPolicy enforcement for node {} (ipBlock matches workloads: {})",
        ir.node, ir.ipblock_matches_workloads
    );
    out.push_str("# Atomic replacement: create (no-op if present), delete, recreate.\n");
    let _ = writeln!(out, "table {FAMILY} {TABLE} {{}}");
    let _ = writeln!(out, "delete table {FAMILY} {TABLE}");
    let _ = writeln!(out, "table {FAMILY} {TABLE} {{");
    for o in objects {
        match (o, carry.is_empty()) {
            (Object::Counter { name, decl }, false) => match carry.get(name.as_str()) {
                Some(r) => {
                    // `counter NAME { ...`: the values go first inside the braces.
                    let head = format!("counter {name} {{");
                    let rest = decl.strip_prefix(&head).unwrap_or("");
                    let _ = writeln!(
                        out,
                        "\t{head} packets {} bytes {}{rest}",
                        r.packets, r.bytes
                    );
                }
                None => o.write(&mut out),
            },
            _ => o.write(&mut out),
        }
    }
    out.push_str("}\n");
    out
}

/// The chain name of every identity of a direction, derived from what the identity's chain and
/// maps contain (not from its position), so that an identity whose rules and workloads do not
/// change keeps its name when other identities come and go: that is what lets an update touch
/// only the identities that changed. Names are `<prefix>_<8 hex digits>`; the rare hash
/// collision is resolved by probing in content order, which keeps the result deterministic.
///
/// Also returns the objects of every identity rendered under [`PLACEHOLDER`], for [`render`].
pub(crate) fn identity_names(
    ir: &RulesetIr,
    d: &DirectionIr,
    bits: CtMarkBits,
) -> (Vec<String>, Vec<Vec<Object>>) {
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
                bits,
                naming: true,
            };
            r.identity(d, ident, PLACEHOLDER);
            let mut text = String::new();
            for o in &r.objects {
                o.write(&mut text);
            }
            if ident.rules.admin.is_some() || ident.rules.baseline.is_some() {
                // The tier maps are left out (see TIER_PLACEHOLDER): the whole list of workloads
                // (the comment may be cut) keeps apart identities that differ only in them.
                text.push_str(&ident.workloads.join("\n"));
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
