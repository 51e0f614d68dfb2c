//! `netpol demo`: the user's page on real packets. The walk (lab, steps, probes, predictions) is
//! `netpol_lab::demo`'s; this module prints each stage as it happens and the final verdict.

use anyhow::{Context, Result};
use netpol_lab::demo::{
    DemoEvent, DemoReport, DemoStep, MistakeCheck, StepIntro, DNS_STAND_IN, PAGE_DNS,
};
use netpol_lab::{preflight, ExternalProbe, LabInventory, ProbeReport};

use crate::cli::DemoArgs;
use crate::output::{grid, join_addresses, mark};

pub fn run(args: &DemoArgs) -> Result<u8> {
    preflight().context("netpol demo runs the page on real packets")?;
    netpol_lab::install_interrupt_cleanup()?;
    let report = netpol_lab::demo::run(|event| {
        if !args.quiet {
            println!("{}", render_event(event));
        }
    })?;
    let failures = failures(&report);
    if failures.is_empty() {
        println!(
            "demo: OK: {} steps, {} real probes, the kernel did exactly what the analyzer predicted, and the page's mistake was caught",
            report.step_count(),
            report.probe_count()
        );
        Ok(0)
    } else {
        for f in &failures {
            println!("MISMATCH {f}");
        }
        println!(
            "demo: FAILED: {} mismatches in {} probes",
            failures.len(),
            report.probe_count()
        );
        Ok(1)
    }
}

/// The text of one stage, printed as one `println!`.
fn render_event(event: DemoEvent<'_>) -> String {
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

/// Every disagreement of the walk, one line each, in the order they happened.
fn failures(report: &DemoReport) -> Vec<String> {
    let mut failures = Vec::new();
    for step in &report.steps {
        failures.extend(step_failures(step));
    }
    let mistake = &report.mistake;
    if !mistake.check.caught {
        failures.push("the page's indentation mistake was not rejected in strict mode".into());
    }
    failures.extend(
        mistake
            .external
            .iter()
            .filter(|p| !p.matches())
            .map(|p| format!("step {}: {}", mistake.check.number, external_failure(p))),
    );
    failures
}

fn step_failures(step: &DemoStep) -> Vec<String> {
    let matrix = &step.matrix;
    let n = step.intro.number;
    let in_matrix = matrix.mismatches.iter().map(|m| {
        format!(
            "step {n}: {} -> {} {}/{} observed {} predicted {}",
            m.from,
            m.to,
            matrix.protocol,
            matrix.port,
            word(m.observed),
            word(m.predicted)
        )
    });
    let external = step
        .external
        .iter()
        .filter(|p| !p.matches())
        .map(|p| format!("step {n}: {}", external_failure(p)));
    in_matrix.chain(external).collect()
}

fn flow(probe: &ExternalProbe) -> String {
    format!(
        "{} -> {} {}/{}",
        probe.from, probe.to, probe.protocol, probe.port
    )
}

fn external_failure(probe: &ExternalProbe) -> String {
    format!(
        "{} observed {} predicted {}",
        flow(probe),
        word(probe.observed),
        word(probe.predicted)
    )
}

fn word(allowed: bool) -> &'static str {
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
