//! The lab's outputs: the demo's stages as they happen, the probe report (grid and JSON
//! document), the lab inventory.

use netpol_core::Protocol;
use netpol_lab::demo::{DemoEvent, MistakeCheck, StepIntro, DNS_STAND_IN, PAGE_DNS};
use netpol_lab::{ExternalProbe, LabInventory, Mismatch, PairMatrix, ProbeReport};
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
    let nodes: Vec<&str> = inventory.nodes.iter().map(|n| n.name.as_str()).collect();
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
/// `allowed`) with observed values, plus `mismatches` against the prediction.
#[derive(Serialize)]
pub struct ProbeDocument<'a> {
    port: u16,
    protocol: Protocol,
    workloads: &'a [String],
    allowed: &'a PairMatrix,
    mismatches: &'a [Mismatch],
}

impl<'a> ProbeDocument<'a> {
    pub fn of(report: &'a ProbeReport) -> Self {
        ProbeDocument {
            port: report.port,
            protocol: report.protocol,
            workloads: &report.workloads,
            allowed: &report.observed,
            mismatches: &report.mismatches,
        }
    }
}

/// The observed grid (`.` reached, `X` blocked; `!` marks a cell that differs from the
/// prediction), the method, and a verdict line.
pub fn render_report(report: &ProbeReport) -> String {
    let names = &report.workloads;
    let corner = format!("{}/{} FROM\\TO", report.protocol, report.port);
    let mut out = grid(&corner, names, |r, c| {
        let seen = report.observed.at(r, c);
        let mut cell = if seen { "." } else { "X" }.to_string();
        if seen != report.predicted.at(r, c) {
            cell.push('!');
        }
        cell
    });
    out.push_str("(observed: . reached, X blocked, ! differs from the analyzer)\n");
    out.push_str(&format!("method: {}\n", report.method));
    if report.mismatches.is_empty() {
        out.push_str(&format!(
            "OK: the kernel did what the analyzer predicted for all {} pairs\n",
            report.probe_count()
        ));
    } else {
        for m in &report.mismatches {
            out.push_str(&format!(
                "MISMATCH {} -> {}: observed {}, predicted {}\n",
                m.from,
                m.to,
                if m.observed { "reached" } else { "blocked" },
                if m.predicted { "allowed" } else { "denied" }
            ));
        }
    }
    out
}

/// One row per node, workload and external host, with the namespace to enter.
pub fn render_inventory(inventory: &LabInventory) -> String {
    let netns = |n: &Option<String>| n.as_deref().unwrap_or("?").to_string();
    let mut table = kubectl_table(&["HOST", "NODE", "ADDRESSES", "NETNS"]);
    for node in &inventory.nodes {
        table.add_row(vec![
            format!("node {}", node.name),
            node.name.clone(),
            String::new(),
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
    render(&table)
}
