//! `netpol completions SHELL`: the shell completion script, from the same argument definitions
//! the parser uses (clap_complete), so it never lags behind a new command or flag.

use std::io::Write;

use anyhow::Result;

use crate::cli::CompletionsArgs;

pub fn run(args: &CompletionsArgs, mut command: clap::Command) -> Result<u8> {
    // Into a buffer first: clap_complete panics when its writer fails (`| head`), and a closed
    // pipe must be an error, not a panic.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "netpol", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(0)
}
