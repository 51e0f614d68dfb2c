//! `netpol probe`: real packets between every pair of workloads, compared with the analyzer
//! (the lab itself is `netpol-lab`'s).

use anyhow::Result;
use netpol_core::Protocol;
use netpol_lab::{preflight, ClusterLab, LabPlan, Mismatch, PairMatrix, ProbeReport};
use serde::Serialize;

use crate::cli::{ProbeArgs, ProbeFormat};
use crate::input;
use crate::output::grid;

pub fn run(args: &ProbeArgs) -> Result<u8> {
    let protocol: Protocol = args.protocol.parse()?;
    preflight()?;
    let input = input::load(&args.input);
    input.require_complete(
        "fix them before probing, a partial cluster would enforce something else",
    )?;
    netpol_lab::install_interrupt_cleanup()?;
    let mut lab = ClusterLab::build(
        &input.cluster,
        input.opts,
        &LabPlan {
            listen: vec![(protocol, args.port)],
            externals: Vec::new(),
        },
    )?;
    warn_skipped(&lab);
    lab.enforce(&input.cluster.policies)?;
    let report = lab.probe_matrix(protocol, args.port)?;
    match args.output {
        ProbeFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&ProbeDocument::of(&report))?
        ),
        ProbeFormat::Table => print!("{}", render_report(&report)),
    }
    Ok(if report.mismatches.is_empty() { 0 } else { 1 })
}

/// Workloads without an address cannot be in a lab; say which were left out.
pub fn warn_skipped(lab: &ClusterLab) {
    for key in lab.skipped() {
        eprintln!("netpol: warning: {key} has no address: left out of the lab");
    }
}

/// What `netpol probe -o json` prints: the matrix JSON schema (`port`, `protocol`, `workloads`,
/// `allowed`) with observed values, plus `mismatches` against the prediction.
#[derive(Serialize)]
struct ProbeDocument<'a> {
    port: u16,
    protocol: Protocol,
    workloads: &'a [String],
    allowed: &'a PairMatrix,
    mismatches: &'a [Mismatch],
}

impl<'a> ProbeDocument<'a> {
    fn of(report: &'a ProbeReport) -> Self {
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
fn render_report(report: &ProbeReport) -> String {
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
