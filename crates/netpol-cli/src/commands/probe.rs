//! `netpol probe`: real packets between every pair of workloads, compared with the analyzer
//! (the lab itself is `netpol-lab`'s).

use anyhow::Result;
use netpol_core::Protocol;
use netpol_lab::{preflight, ClusterLab, LabPlan};

use crate::cli::{ProbeArgs, ProbeFormat};
use crate::input;
use crate::render::lab::{render_report, ProbeDocument};

pub fn run(args: &ProbeArgs) -> Result<u8> {
    let protocol: Protocol = args.protocol.parse()?;
    preflight()?;
    let input = input::load(&args.input)?;
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
    lab.enforce(&input.cluster.policies, &input.cluster.admin_policies)?;
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
