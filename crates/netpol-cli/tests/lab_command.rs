//! `netpol lab` keeps a lab up with every node enforcing, and removes it on Ctrl-C.
//!
//! PRIVILEGED: needs root, `ip` and `nft`. Without root the test fails (it never skips).

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netpol_test_support::require_root;

fn netns_list() -> String {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_lab_stays_up_enforcing_until_interrupted_and_then_disappears() {
    require_root();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut child = Command::new(env!("CARGO_BIN_EXE_netpol"))
        .current_dir(&root)
        .args([
            "lab",
            "examples/test-project",
            "--listen",
            "TCP/80",
            "--external",
            "192.0.2.53",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("netpol lab starts");
    let prefix = format!("nplab-{}-", child.id());
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("utf-8 output");
        let done = line.starts_with("the lab stays up");
        lines.push(line);
        if done || Instant::now() > deadline {
            break;
        }
    }
    let text = lines.join("\n");
    assert!(text.contains("the lab stays up"), "{text}");
    // vm-a lives on virtlab-2: that node's namespace holds the enforcing table.
    let node = lines
        .iter()
        .find(|l| l.starts_with("node virtlab-2"))
        .and_then(|l| l.split_whitespace().last())
        .expect("virtlab-2's namespace is listed")
        .to_string();
    assert!(node.starts_with(&prefix), "{node} carries the run's prefix");
    let table = Command::new("ip")
        .args([
            "netns", "exec", &node, "nft", "list", "table", "inet", "netpol",
        ])
        .output()
        .expect("nft runs");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("10.66.20.70"), "vm-a is enforced: {table}");
    assert!(text.contains("external/192.0.2.53"), "{text}");
    assert!(netns_list().contains(&prefix));

    // SAFETY: kill with a valid pid of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().expect("netpol lab exits");
    assert_eq!(status.code(), Some(130), "interrupted exit status");
    assert!(
        !netns_list().contains(&prefix),
        "every namespace of the run is removed: {}",
        netns_list()
    );
}
