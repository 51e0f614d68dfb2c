//! One module per subcommand. Each returns the process exit code (0, 1) or an error (exit 2).

pub mod agent;
pub mod bench;
pub mod check;
pub mod compile;
pub mod completions;
pub mod demo;
pub mod diff;
pub mod exposure;
pub mod get;
pub mod lab;
pub mod lint;
pub mod matrix;
pub mod probe;
pub mod report;
