//! Setting up a test's own network namespaces with `ip` and `sysctl`, failing the test with the
//! tool's complaint when a step fails.

use std::process::Command;

/// Runs `ip -n NS ARGS...` (`args` split at spaces), panicking with its stderr on failure.
#[track_caller]
pub fn ip_in(ns: &str, args: &str) {
    let mut all = vec!["-n", ns];
    all.extend(args.split_whitespace());
    run("ip", &all);
}

/// Sets one sysctl (`key=value`) inside the named namespace.
#[track_caller]
pub fn sysctl_in(ns: &str, setting: &str) {
    run("ip", &["netns", "exec", ns, "sysctl", "-qw", setting]);
}

#[track_caller]
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
