//! `netpol diff` as text, JSON and Markdown (for a pull-request comment).
//!
//! Summarisation: pairs of endpoints present on both sides are listed one per line with the ports
//! gained and lost, up to `--limit`; an endpoint present on one side only is one line with how
//! many endpoints it reaches and is reached from there (its connections are gained or lost as a
//! whole), also up to `--limit`. Counts are always complete, and a cut list says how much it left
//! out. Every changed object is listed.

use std::fmt::Write;

use netpol_core::analysis::diff::{
    Change, MapDiff, ObjectChange, ObjectKind, OneSided, PairChange, Ports, Presence,
};
use netpol_core::analysis::render_ranges;
use netpol_core::Protocol;
use serde_json::{json, Map, Value};

/// Markdown rows shown before the rest goes into a collapsed block.
const MD_OPEN_ROWS: usize = 20;

/// What the renderers show: the diff, the listed pairs with their explanations, the changes.
pub struct DiffView<'a> {
    diff: &'a MapDiff<'a>,
    changes: &'a [ObjectChange],
    pairs: Vec<(PairChange, Vec<&'a ObjectChange>)>,
    limit: Option<usize>,
}

impl<'a> DiffView<'a> {
    /// Lists up to `limit` pairs (0: all) and their explanations.
    pub fn new(diff: &'a MapDiff<'a>, changes: &'a [ObjectChange], limit: usize) -> Self {
        let limit = (limit > 0).then_some(limit);
        let pairs = diff
            .pairs()
            .take(limit.unwrap_or(usize::MAX))
            .map(|p| {
                let why = diff.explaining(changes, &p);
                (p, why)
            })
            .collect();
        DiffView {
            diff,
            changes,
            pairs,
            limit,
        }
    }

    fn sided(&self, list: &'a [OneSided]) -> &'a [OneSided] {
        &list[..list.len().min(self.limit.unwrap_or(usize::MAX))]
    }

    fn headline(&self) -> String {
        let c = self.diff.counts();
        let (added, removed) = (self.diff.added().len(), self.diff.removed().len());
        let state = if self.diff.is_unchanged() {
            "no change in connectivity"
        } else {
            "connectivity changed"
        };
        format!(
            "{state}: {} pairs gained connections, {} lost them, {} changed ports; endpoints: {added} added, {removed} removed",
            c.gained, c.lost, c.changed
        )
    }
}

fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Namespace => "Namespace",
        ObjectKind::Workload => "Workload",
        ObjectKind::NetworkPolicy => "NetworkPolicy",
        ObjectKind::AdminPolicy => "AdminPolicy",
        ObjectKind::Node => "Node",
    }
}

fn presence(p: Presence) -> &'static str {
    match p {
        Presence::Added => "added",
        Presence::Removed => "removed",
        Presence::Changed => "changed",
    }
}

/// `NetworkPolicy shop/allow-web changed (spec.ingress[0])`.
fn object_line(c: &ObjectChange) -> String {
    let mut s = format!("{} {} {}", kind_name(c.kind), c.name, presence(c.presence));
    if !c.fields.is_empty() {
        let _ = write!(s, ": {}", c.fields.join("; "));
    }
    s
}

/// `NetworkPolicy shop/allow-web (changed)`: a change named as a reason.
fn reason(c: &ObjectChange) -> String {
    format!(
        "{} {} ({})",
        kind_name(c.kind),
        c.name,
        presence(c.presence)
    )
}

/// `TCP 80-90, UDP 53` of one family's ports, `none` when empty.
fn port_set(set: &[Vec<(u16, u16)>; 3]) -> String {
    let parts: Vec<String> = Protocol::ALL
        .iter()
        .zip(set)
        .filter(|(_, r)| !r.is_empty())
        .map(|(p, r)| format!("{p} {}", render_ranges(r)))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// Ports as the connectivity map renders them: `TCP 80`, or `IPv4: TCP 80; IPv6: none`.
pub fn ports_text(ports: &Ports) -> String {
    match ports {
        Ports::One(set) => port_set(set),
        Ports::ByFamily([v4, v6]) => format!("IPv4: {}; IPv6: {}", port_set(v4), port_set(v6)),
    }
}

fn ports_json(ports: &Ports) -> Value {
    let one = |set: &[Vec<(u16, u16)>; 3]| {
        let mut m = Map::new();
        for (p, r) in Protocol::ALL.iter().zip(set) {
            let ranges: Vec<Value> = r.iter().map(|(lo, hi)| json!([lo, hi])).collect();
            m.insert(p.as_str().to_string(), Value::Array(ranges));
        }
        Value::Object(m)
    };
    match ports {
        Ports::One(set) => one(set),
        Ports::ByFamily([v4, v6]) => json!({"IPv4": one(v4), "IPv6": one(v6)}),
    }
}

/// `gained TCP 8080; lost TCP 80` (the parts that are not empty).
fn delta(pair: &PairChange) -> String {
    let mut parts = Vec::new();
    for (what, ports) in [("gained", pair.gained()), ("lost", pair.lost())] {
        if !ports.is_empty() {
            parts.push(format!("{what} {}", ports_text(&ports)));
        }
    }
    parts.join("; ")
}

fn mark(change: Change) -> char {
    match change {
        Change::Gained => '+',
        Change::Lost => '-',
        Change::Changed => '~',
    }
}

/// `... and 12 more (--limit 0 lists all)` when the list was cut.
fn more(shown: usize, total: usize) -> Option<String> {
    (shown < total).then(|| format!("... and {} more (--limit 0 lists all)", total - shown))
}

/// The text report: the headline, the changed pairs, the one-sided endpoints, the objects.
pub fn render_text(v: &DiffView<'_>) -> String {
    let mut out = format!("{}\n", v.headline());
    let total = v.diff.counts().total();
    if total > 0 {
        let _ = writeln!(out, "\npairs ({} of {total}):", v.pairs.len());
        for (p, why) in &v.pairs {
            let _ = write!(
                out,
                "  {} {} -> {}  {}",
                mark(p.change),
                p.from,
                p.to,
                delta(p)
            );
            if !why.is_empty() {
                let names: Vec<String> = why.iter().map(|c| reason(c)).collect();
                let _ = write!(out, "  [{}]", names.join(", "));
            }
            out.push('\n');
        }
        if let Some(m) = more(v.pairs.len(), total) {
            let _ = writeln!(out, "  {m}");
        }
    }
    for (title, sign, list) in [
        ("added", '+', v.diff.added()),
        ("removed", '-', v.diff.removed()),
    ] {
        if list.is_empty() {
            continue;
        }
        let verb = if sign == '+' { "gained" } else { "lost" };
        let _ = writeln!(
            out,
            "\nendpoints {title} ({}; their connections are {verb} as a whole, not listed per pair):",
            list.len()
        );
        for e in v.sided(list) {
            let _ = writeln!(
                out,
                "  {sign} {}  reaches {}, reached from {}",
                e.key, e.outgoing, e.incoming
            );
        }
        if let Some(m) = more(v.sided(list).len(), list.len()) {
            let _ = writeln!(out, "  {m}");
        }
    }
    if !v.changes.is_empty() {
        let _ = writeln!(out, "\nobjects ({}):", v.changes.len());
        for c in v.changes {
            let _ = writeln!(out, "  {}", object_line(c));
        }
    }
    out
}

/// The JSON document; see the README for its shape.
pub fn render_json(v: &DiffView<'_>) -> Value {
    let c = v.diff.counts();
    let pairs: Vec<Value> = v
        .pairs
        .iter()
        .map(|(p, why)| {
            json!({
                "from": p.from,
                "to": p.to,
                "change": p.change.as_str(),
                "gained": ports_json(&p.gained()),
                "lost": ports_json(&p.lost()),
                "before": ports_json(&p.before),
                "after": ports_json(&p.after),
                "because": why.iter().map(|c| reason(c)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let sided = |list: &[OneSided]| -> Vec<Value> {
        v.sided(list)
            .iter()
            .map(|e| json!({"endpoint": e.key, "outgoing": e.outgoing, "incoming": e.incoming}))
            .collect()
    };
    json!({
        "changed": !v.diff.is_unchanged(),
        "counts": {
            "gained": c.gained,
            "lost": c.lost,
            "changed": c.changed,
            "endpoints_added": v.diff.added().len(),
            "endpoints_removed": v.diff.removed().len(),
        },
        "pairs": pairs,
        "pairs_truncated": v.pairs.len() < c.total(),
        "endpoints_added": sided(v.diff.added()),
        "endpoints_removed": sided(v.diff.removed()),
        "objects": v.changes,
    })
}

/// A Markdown table cell: pipes escaped, no line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn md_row(out: &mut String, p: &PairChange, why: &[&ObjectChange]) {
    let show = |ports: Ports| {
        if ports.is_empty() {
            String::new()
        } else {
            cell(&ports_text(&ports))
        }
    };
    let names: Vec<String> = why.iter().map(|c| reason(c)).collect();
    let _ = writeln!(
        out,
        "| {} | `{}` | `{}` | {} | {} | {} |",
        p.change.as_str(),
        cell(&p.from),
        cell(&p.to),
        show(p.gained()),
        show(p.lost()),
        cell(&names.join(", "))
    );
}

const MD_HEADER: &str =
    "| change | from | to | gained | lost | because |\n|---|---|---|---|---|---|\n";

/// Markdown for a pull-request comment: the headline, a table of the first pairs (the rest up to
/// `--limit` collapsed), the one-sided endpoints and the objects (collapsed when long).
pub fn render_markdown(v: &DiffView<'_>) -> String {
    let mut out = format!("### netpol diff\n\n**{}**\n", v.headline());
    let total = v.diff.counts().total();
    if total > 0 {
        out.push('\n');
        out.push_str(MD_HEADER);
        for (p, why) in v.pairs.iter().take(MD_OPEN_ROWS) {
            md_row(&mut out, p, why);
        }
        if v.pairs.len() > MD_OPEN_ROWS {
            let _ = write!(
                out,
                "\n<details><summary>{} more pairs</summary>\n\n{MD_HEADER}",
                v.pairs.len() - MD_OPEN_ROWS
            );
            for (p, why) in &v.pairs[MD_OPEN_ROWS..] {
                md_row(&mut out, p, why);
            }
            out.push_str("\n</details>\n");
        }
        if let Some(m) = more(v.pairs.len(), total) {
            let _ = writeln!(out, "\n_{m}_");
        }
    }
    for (title, list) in [("added", v.diff.added()), ("removed", v.diff.removed())] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n**Endpoints {title}** ({}):\n", list.len());
        for e in v.sided(list) {
            let _ = writeln!(
                out,
                "- `{}`: reaches {}, reached from {}",
                cell(&e.key),
                e.outgoing,
                e.incoming
            );
        }
        if let Some(m) = more(v.sided(list).len(), list.len()) {
            let _ = writeln!(out, "- _{m}_");
        }
    }
    if !v.changes.is_empty() {
        let lines: String = v
            .changes
            .iter()
            .map(|c| format!("- {}\n", object_line(c)))
            .collect();
        let title = format!("Objects added, removed or changed ({})", v.changes.len());
        if v.changes.len() > MD_OPEN_ROWS {
            let _ = write!(
                out,
                "\n<details><summary>{title}</summary>\n\n{lines}\n</details>\n"
            );
        } else {
            let _ = write!(out, "\n**{title}**:\n\n{lines}");
        }
    }
    out
}
