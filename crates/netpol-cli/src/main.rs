//! netpol: the command-line front end. Thin: it parses arguments, calls the library crates and
//! prints. Exit codes follow ripgrep: 0 success (allowed, no mismatch), 1 a negative answer
//! (denied, mismatch), 2 an error.

mod cli;
mod commands;
mod input;
mod live;
mod refs;
mod render;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use cli::{Cli, Command};

/// The name kubectl runs a plugin by: `kubectl netpol ...` executes `kubectl-netpol ...`.
const KUBECTL_PLUGIN: &str = "kubectl-netpol";

/// How the program was invoked: `kubectl netpol` when run as the kubectl plugin (so usage and
/// help read as the user typed them), else `netpol`.
fn invoked_as() -> &'static str {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0).file_stem().unwrap_or_default();
    if name == KUBECTL_PLUGIN {
        "kubectl netpol"
    } else {
        "netpol"
    }
}

fn parse() -> Cli {
    let matches = Cli::command().bin_name(invoked_as()).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    let cli = parse();
    let result = match &cli.command {
        Command::Check(args) => commands::check::run(args),
        Command::Matrix(args) => commands::matrix::run(args),
        Command::Diff(args) => commands::diff::run(args),
        Command::Get(args) => commands::get::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Compile(args) => commands::compile::run(args),
        Command::Probe(args) => commands::probe::run(args),
        Command::Lab(args) => commands::lab::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Agent(args) => commands::agent::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Completions(args) => commands::completions::run(args, Cli::command()),
        Command::Lint(args) => commands::lint::run(args),
        Command::Exposure(args) => commands::exposure::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("netpol: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
