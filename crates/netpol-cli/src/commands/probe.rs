//! `netpol probe`: real packets between every pair of workloads, compared with the analyzer.

use anyhow::Result;
use netpol_core::Protocol;

use crate::cli::{ProbeArgs, ProbeFormat};
use crate::input;
use crate::lab_run::{preflight, LabPlan, LabRun, ProbeReport};
use crate::output::grid;

pub fn run(args: &ProbeArgs) -> Result<u8> {
    let protocol: Protocol = args.protocol.parse()?;
    preflight()?;
    let input = input::load(&args.input);
    input.require_complete(
        "fix them before probing, a partial cluster would enforce something else",
    )?;
    netpol_dataplane::install_interrupt_cleanup()?;
    let run = LabRun::build(
        &input.cluster,
        input.opts,
        &LabPlan {
            listen: vec![(protocol, args.port)],
            externals: Vec::new(),
        },
    )?;
    for key in &run.skipped {
        eprintln!("netpol: warning: {key} has no address: left out of the lab");
    }
    run.enforce(&input.cluster.policies)?;
    let report = run.probe_matrix(&input.cluster.policies, protocol, args.port)?;
    match args.output {
        ProbeFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ProbeFormat::Table => print!("{}", render_report(&report)),
    }
    Ok(if report.mismatches.is_empty() { 0 } else { 1 })
}

/// The observed grid (`.` reached, `X` blocked; `!` marks a cell that differs from the
/// prediction), the method, and a verdict line.
pub fn render_report(report: &ProbeReport) -> String {
    let names = &report.workloads;
    let corner = format!("{}/{} FROM\\TO", report.protocol, report.port);
    let mut out = grid(&corner, names, |r, c| {
        let seen = report.observed(&names[r], &names[c]);
        let expected = report.predicted(&names[r], &names[c]);
        let mut cell = if seen { "." } else { "X" }.to_string();
        if seen != expected {
            cell.push('!');
        }
        cell
    });
    out.push_str("(observed: . reached, X blocked, ! differs from the analyzer)\n");
    out.push_str(&format!("method: {}\n", report.method));
    if report.mismatches.is_empty() {
        out.push_str(&format!(
            "OK: the kernel did what the analyzer predicted for all {} pairs\n",
            names.len() * names.len()
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
