//! `netpol exposure PATH...`: which workloads accept connections from outside the cluster, from
//! every namespace or from everything, and which may reach outside.

use anyhow::Result;
use netpol_core::exposure::exposure;

use crate::cli::{ExposureArgs, ExposureFormat};
use crate::input;

pub fn run(args: &ExposureArgs) -> Result<u8> {
    let input = input::load(&args.input)?;
    let mut report = exposure(&input.cluster, input.opts);
    if !args.all {
        report.workloads.retain(|w| !w.is_closed());
    }
    let text = match args.output {
        ExposureFormat::Text => crate::render::exposure::text(&report),
        ExposureFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ExposureFormat::Md => crate::render::exposure::markdown(&report),
    };
    print!("{text}");
    input.answered_partially("exposure")?;
    Ok(0)
}
