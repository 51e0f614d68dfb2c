//! Helpers the CLI's integration tests share: the `netpol` binary run from the workspace root
//! (so paths print as a user types them) and its output as text.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs netpol from the workspace root with `args`, whatever the exit code.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netpol"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("netpol runs")
}

/// The exit code.
pub fn code(out: &Output) -> i32 {
    out.status.code().expect("netpol exits with a code")
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
