//! `netpol check`: one flow, its verdict and why.

use anyhow::{anyhow, Result};
use netpol_core::{evaluate, Endpoint, Protocol};

use crate::cli::{CheckArgs, CheckFormat};
use crate::{input, refs};

pub fn run(args: &CheckArgs) -> Result<u8> {
    let protocol: Protocol = args.protocol.parse()?;
    let input = input::load(&args.input);
    let cluster = &input.cluster;
    let src = refs::resolve(cluster, &args.from).map_err(|e| anyhow!("--from: {e}"))?;
    let dst = refs::resolve(cluster, &args.to).map_err(|e| anyhow!("--to: {e}"))?;
    if let (Endpoint::External(a), Endpoint::External(b)) = (&src, &dst) {
        return Err(anyhow!(
            "neither {a} nor {b} is a workload of the input: no policy can apply to this flow"
        ));
    }
    let verdict = evaluate(cluster, input.opts, &src, &dst, protocol, args.port);
    match args.output {
        CheckFormat::Text => print!("{}", verdict.explain()),
        CheckFormat::Json => println!("{}", serde_json::to_string_pretty(&verdict)?),
    }
    input.answered_partially("verdict")?;
    Ok(if verdict.allowed { 0 } else { 1 })
}
