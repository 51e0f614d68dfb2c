//! The lab's outputs: the demo's stages as they happen, the probe report (grid, node and hairpin
//! probes, and the JSON document), the lab inventory.

use std::collections::BTreeMap;

use netpol_core::{IpFamily, Protocol};
use netpol_lab::demo::{DemoEvent, MistakeCheck, StepIntro, DNS_STAND_IN, PAGE_DNS};
use netpol_lab::{
    ExternalProbe, HairpinProbe, LabInventory, Mismatch, NodeFlow, NodeProbe, ProbeReport,
};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::{grid, join_addresses, kubectl_table, mark, render};

/// The text of one stage, printed as one `println!`.
pub fn render_event(event: DemoEvent<'_>) -> String {
    match event {
        DemoEvent::Started => format!(
            "netpol demo: the user's page on real packets. VMs are network namespaces with their real addresses;\n\
             each node enforces its own nftables ruleset. The page's external address {PAGE_DNS} is replaced by\n\
             {DNS_STAND_IN} (documentation range): the demo never sends traffic outside the lab.\n"
        ),
        DemoEvent::LabBuilt(inventory) => render_lab(inventory),
        DemoEvent::StepStarted(intro) => render_intro(intro),
        DemoEvent::MatrixProbed(report) => side_by_side(report),
        DemoEvent::ExternalProbed(probe) => format!(
            "  {}: observed {}, predicted {}{}",
            flow(probe),
            word(probe.observed),
            word(probe.predicted),
            if probe.matches() { "" } else { "  MISMATCH" }
        ),
        DemoEvent::StepFinished(step) => if step.matches() {
            "  match: the kernel did what the analyzer predicted\n"
        } else {
            "  MISMATCH: the kernel and the analyzer disagree (see above)\n"
        }
        .to_string(),
        DemoEvent::MistakeChecked(check) => render_mistake(check),
        DemoEvent::MistakeFinished(step) => format!("  {}\n", step.conclusion),
    }
}

fn render_lab(inventory: &LabInventory) -> String {
    let nodes: Vec<String> = inventory
        .nodes
        .iter()
        .map(|n| {
            format!(
                "{} {}{}",
                n.name,
                join_addresses(&n.addresses),
                if n.synthetic { " (synthetic)" } else { "" }
            )
        })
        .collect();
    let vms: Vec<String> = inventory
        .workloads
        .iter()
        .map(|w| {
            format!(
                "{} {} on {}",
                w.name,
                join_addresses(&w.addresses),
                w.node.as_deref().unwrap_or("?")
            )
        })
        .collect();
    format!(
        "lab: nodes {}; VMs {}; external DNS host {DNS_STAND_IN}\n",
        nodes.join(", "),
        vms.join("; ")
    )
}

fn render_intro(intro: &StepIntro) -> String {
    let mut out = format!("== Step {}: {} ==\n", intro.number, intro.title);
    if let Some(applied) = &intro.applied {
        out.push_str(&format!(
            "applying {}:\n{}\n",
            applied.file,
            indent(&strip_comments(&applied.manifest))
        ));
    }
    out.push_str(intro.explanation);
    out
}

fn render_mistake(check: &MistakeCheck) -> String {
    let mut lines = vec![format!("== Step {}: {} ==", check.number, check.title)];
    lines.extend(
        check
            .strict_diagnostics
            .iter()
            .map(|d| format!("netpol --validate=strict: {d}")),
    );
    lines.extend(
        check
            .warn_diagnostics
            .iter()
            .map(|d| format!("netpol --validate=warn: {d}")),
    );
    lines.push(check.explanation.to_string());
    lines.join("\n")
}

pub fn flow(probe: &ExternalProbe) -> String {
    format!(
        "{} -> {} {}/{}",
        probe.from, probe.to, probe.protocol, probe.port
    )
}

pub fn external_failure(probe: &ExternalProbe) -> String {
    format!(
        "{} observed {} predicted {}",
        flow(probe),
        word(probe.observed),
        word(probe.predicted)
    )
}

pub fn word(allowed: bool) -> &'static str {
    if allowed {
        "allowed"
    } else {
        "blocked"
    }
}

/// The observed and predicted grids next to each other.
fn side_by_side(report: &ProbeReport) -> String {
    let names = &report.workloads;
    let corner = format!("{}/{} FROM\\TO", report.protocol, report.port);
    let observed = grid(&corner, names, |r, c| mark(report.observed.at(r, c)));
    let predicted = grid(&corner, names, |r, c| mark(report.predicted.at(r, c)));
    let left: Vec<&str> = observed.lines().collect();
    let right: Vec<&str> = predicted.lines().collect();
    let width = left.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut out = format!(
        "  {:<width$}    {}\n",
        "observed (real packets)", "predicted (analyzer)"
    );
    for (l, r) in left.iter().zip(right.iter()) {
        out.push_str(&format!("  {l:<width$}    {r}\n"));
    }
    out.push_str("  (. reached/allowed, X blocked/denied)");
    let blocked = |observed: bool| usize::from(!observed);
    let node_blocked: usize = report.node.iter().map(|p| blocked(p.observed)).sum();
    out.push_str(&format!(
        "\n  the nodes to and from their VMs and to remote VMs: {} probes, {} blocked; every VM \
         through its own Service (hairpin): {} probes",
        report.node.len(),
        node_blocked,
        report.hairpin.len()
    ));
    for m in report
        .mismatches
        .iter()
        .filter(|m| m.via.is_some() || m.from.starts_with("node/") || m.to.starts_with("node/"))
    {
        out.push_str(&format!("\n  MISMATCH {}", mismatch_text(m)));
    }
    out
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `netpol probe -o json` prints: the matrix JSON schema (`port`, `protocol`, `workloads`,
/// `allowed`) with observed values (a pair that talks over both families and was observed to
/// differ between them has `{"IPv4": bool, "IPv6": bool}`, as in `netpol matrix -o json`), plus
/// `mismatches` against the prediction, the `node` probes and the `hairpin` probes.
#[derive(Serialize)]
pub struct ProbeDocument<'a> {
    port: u16,
    protocol: Protocol,
    workloads: &'a [String],
    allowed: ObservedCells<'a>,
    mismatches: &'a [Mismatch],
    node: &'a [NodeProbe],
    hairpin: &'a [HairpinProbe],
}

impl<'a> ProbeDocument<'a> {
    pub fn of(report: &'a ProbeReport) -> Self {
        ProbeDocument {
            port: report.port,
            protocol: report.protocol,
            workloads: &report.workloads,
            allowed: ObservedCells(report),
            mismatches: &report.mismatches,
            node: &report.node,
            hairpin: &report.hairpin,
        }
    }
}

/// The observed cell of a pair: one answer, or one per family where a dual-stack pair's
/// families were observed to differ.
enum Cell {
    One(bool),
    ByFamily([bool; 2]),
}

fn observed_cell(report: &ProbeReport, r: usize, c: usize) -> Cell {
    match &report.by_family {
        Some(f) if f.dual.at(r, c) => {
            let v = [f.ipv4.observed.at(r, c), f.ipv6.observed.at(r, c)];
            if v[0] == v[1] {
                Cell::One(v[0])
            } else {
                Cell::ByFamily(v)
            }
        }
        _ => Cell::One(report.observed.at(r, c)),
    }
}

/// Whether the analyzer disagrees with the kernel on a pair (on any family it talks over).
fn differs(report: &ProbeReport, r: usize, c: usize) -> bool {
    match &report.by_family {
        Some(f) if f.dual.at(r, c) => IpFamily::ALL.into_iter().any(|family| {
            let m = f.of(family);
            m.observed.at(r, c) != m.predicted.at(r, c)
        }),
        _ => report.observed.at(r, c) != report.predicted.at(r, c),
    }
}

/// `{from: {to: cell}}` in workload order.
struct ObservedCells<'a>(&'a ProbeReport);

impl Serialize for ObservedCells<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Row<'a>(&'a ProbeReport, usize);
        impl Serialize for Row<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let Row(report, r) = *self;
                let mut m = s.serialize_map(Some(report.workloads.len()))?;
                for (c, to) in report.workloads.iter().enumerate() {
                    match observed_cell(report, r, c) {
                        Cell::One(b) => m.serialize_entry(to, &b)?,
                        Cell::ByFamily([v4, v6]) => {
                            let cell = BTreeMap::from([("IPv4", v4), ("IPv6", v6)]);
                            m.serialize_entry(to, &cell)?;
                        }
                    }
                }
                m.end()
            }
        }
        let report = self.0;
        let mut m = s.serialize_map(Some(report.workloads.len()))?;
        for (r, from) in report.workloads.iter().enumerate() {
            m.serialize_entry(from, &Row(report, r))?;
        }
        m.end()
    }
}

/// The observed grid (`.` reached, `X` blocked, `4`/`6` reached over IPv4/IPv6 only; `!` marks
/// a cell that differs from the prediction), the node and hairpin probes, the method, and a
/// verdict line.
pub fn render_report(report: &ProbeReport) -> String {
    let names = &report.workloads;
    let corner = format!("{}/{} FROM\\TO", report.protocol, report.port);
    let mut by_family = false;
    let mut out = grid(&corner, names, |r, c| {
        let mut cell = match observed_cell(report, r, c) {
            Cell::One(seen) => mark(seen),
            Cell::ByFamily([true, _]) => "4".to_string(),
            Cell::ByFamily(_) => "6".to_string(),
        };
        if differs(report, r, c) {
            cell.push('!');
        }
        cell
    });
    if let Some(f) = &report.by_family {
        let n = names.len();
        by_family = (0..n * n).any(|i| {
            let (r, c) = (i / n, i % n);
            f.dual.at(r, c) && f.ipv4.observed.at(r, c) != f.ipv6.observed.at(r, c)
        });
    }
    out.push_str(if by_family {
        "(observed: . reached, X blocked, 4 reached over IPv4 only, 6 over IPv6 only, ! differs from the analyzer)\n"
    } else {
        "(observed: . reached, X blocked, ! differs from the analyzer)\n"
    });
    if report.by_family.is_some() {
        out.push_str("pairs with IPv4 and IPv6 addresses were probed over each family\n");
    }
    out.push_str(&render_node_probes(report));
    out.push_str(&render_hairpin_probes(report));
    out.push_str(&format!("method: {}\n", report.method));
    if report.mismatches.is_empty() {
        out.push_str(&format!(
            "OK: the kernel did what the analyzer predicted for all {} probes ({} pairs, {} node, {} hairpin)\n",
            report.probe_count(),
            names.len() * names.len(),
            report.node.len(),
            report.hairpin.len()
        ));
    } else {
        for m in &report.mismatches {
            out.push_str(&format!("MISMATCH {}\n", mismatch_text(m)));
        }
    }
    out
}

/// `FROM -> TO[ over FAMILY][ via SERVICE]: observed reached, predicted denied`.
pub fn mismatch_text(m: &Mismatch) -> String {
    format!(
        "{} -> {}{}{}: observed {}, predicted {}",
        m.from,
        m.to,
        m.family.map(|f| format!(" over {f}")).unwrap_or_default(),
        m.via.map(|a| format!(" via {a}")).unwrap_or_default(),
        if m.observed { "reached" } else { "blocked" },
        if m.predicted { "allowed" } else { "denied" }
    )
}

fn agreement(observed: bool, predicted: bool) -> String {
    let seen = if observed { "reached" } else { "blocked" };
    if observed == predicted {
        format!("{seen}, as predicted")
    } else {
        format!(
            "{seen}, MISMATCH: predicted {}",
            if predicted { "allowed" } else { "denied" }
        )
    }
}

/// One line per node probe: flow, family, addresses, what happened.
pub fn render_node_probes(report: &ProbeReport) -> String {
    if report.node.is_empty() {
        return String::new();
    }
    let mut table = kubectl_table(&["NODE PROBE", "FROM", "TO", "FAMILY", "ADDRESSES", "RESULT"]);
    for p in &report.node {
        table.add_row(vec![
            match p.flow {
                NodeFlow::NodeToOwnWorkload => "node to own workload",
                NodeFlow::WorkloadToOwnNode => "workload to own node",
                NodeFlow::NodeToRemoteWorkload => "node to remote workload",
            }
            .to_string(),
            p.from.clone(),
            p.to.clone(),
            p.family.to_string(),
            format!("{} -> {}", p.from_address, p.to_address),
            agreement(p.observed, p.predicted),
        ]);
    }
    render(&table)
}

/// One line per hairpin probe: the workload through its own Service address.
pub fn render_hairpin_probes(report: &ProbeReport) -> String {
    if report.hairpin.is_empty() {
        return String::new();
    }
    let mut table = kubectl_table(&["HAIRPIN", "NODE", "FAMILY", "SERVICE -> ADDRESS", "RESULT"]);
    for p in &report.hairpin {
        table.add_row(vec![
            p.workload.clone(),
            p.node.clone(),
            p.family.to_string(),
            format!("{} -> {}", p.service, p.address),
            agreement(p.observed, p.predicted),
        ]);
    }
    render(&table)
}

/// One row per node, workload and external host, with the namespace to enter.
pub fn render_inventory(inventory: &LabInventory) -> String {
    let netns = |n: &Option<String>| n.as_deref().unwrap_or("?").to_string();
    let mut table = kubectl_table(&["HOST", "NODE", "ADDRESSES", "NETNS"]);
    for node in &inventory.nodes {
        table.add_row(vec![
            format!("node {}", node.name),
            node.name.clone(),
            if node.synthetic {
                format!("{} (synthetic)", join_addresses(&node.addresses))
            } else {
                join_addresses(&node.addresses)
            },
            netns(&node.netns),
        ]);
    }
    for host in &inventory.workloads {
        table.add_row(vec![
            host.name.clone(),
            host.node.clone().unwrap_or_default(),
            join_addresses(&host.addresses),
            netns(&host.netns),
        ]);
    }
    for host in &inventory.externals {
        table.add_row(vec![
            host.name.clone(),
            "(outside)".to_string(),
            join_addresses(&host.addresses),
            netns(&host.netns),
        ]);
    }
    let mut out = render(&table);
    if !inventory.services.is_empty() {
        let mut services = kubectl_table(&[
            "SERVICE",
            "NODE",
            "LEADS TO (every port, hairpin masqueraded)",
        ]);
        for s in &inventory.services {
            services.add_row(vec![
                s.address.to_string(),
                s.node.clone(),
                s.workload.clone(),
            ]);
        }
        out.push_str(&render(&services));
    }
    out
}
