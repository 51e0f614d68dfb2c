//! `netpol demo`: the user's page on real packets. The walk (lab, steps, probes, predictions) is
//! `netpol_lab::demo`'s; this module prints each stage as it happens and the final verdict.

use anyhow::{Context, Result};
use netpol_lab::demo::{DemoReport, DemoStep};
use netpol_lab::preflight;

use crate::cli::DemoArgs;
use crate::render::lab::{external_failure, mismatch_text, render_event};

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
            "step {n}: {}/{} {}",
            matrix.protocol,
            matrix.port,
            mismatch_text(m)
        )
    });
    let external = step
        .external
        .iter()
        .filter(|p| !p.matches())
        .map(|p| format!("step {n}: {}", external_failure(p)));
    in_matrix.chain(external).collect()
}
