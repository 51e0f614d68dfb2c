//! netpol: the command-line front end. Thin: it parses arguments, calls the library crates and
//! prints. Exit codes follow ripgrep: 0 success (allowed, no mismatch), 1 a negative answer
//! (denied, mismatch), 2 an error.

mod cli;
mod commands;
mod input;
mod refs;
mod render;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(args) => commands::check::run(args),
        Command::Matrix(args) => commands::matrix::run(args),
        Command::Get(args) => commands::get::run(args),
        Command::Compile(args) => commands::compile::run(args),
        Command::Probe(args) => commands::probe::run(args),
        Command::Lab(args) => commands::lab::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Agent(args) => commands::agent::run(args),
        Command::Bench(args) => commands::bench::run(args),
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
