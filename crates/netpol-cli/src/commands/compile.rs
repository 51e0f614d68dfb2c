//! `netpol compile`: one node's nftables ruleset.

use anyhow::Result;

use crate::cli::{CompileArgs, CompileFormat};
use crate::input;

pub fn run(args: &CompileArgs) -> Result<u8> {
    let input = input::load(&args.input)?;
    // Refuse rather than print a ruleset without the rejected objects: in
    // `netpol compile ... | nft -f -` the pipeline's status is nft's, so a partial ruleset
    // would be loaded silently.
    input.require_complete("no ruleset printed, a partial one would enforce something else")?;
    let node_options = args.node_table.node_options()?;
    let ruleset =
        netpol_nft::compile_for_node(&input.cluster, input.opts, &args.node, &node_options)?;
    if ruleset.summary.local_workloads.is_empty() {
        eprintln!(
            "netpol: warning: no workload of the input runs on node {:?}; the table enforces nothing",
            args.node
        );
    }
    match args.output {
        CompileFormat::Nft => print!("{}", ruleset.text),
        CompileFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "summary": ruleset.summary,
                "script": ruleset.text,
            }))?
        ),
    }
    Ok(0)
}
