//! `netpol demo` end to end: the user's page on real packets.
//!
//! PRIVILEGED: needs root, `ip` and `nft`. Without root the test fails (it never skips).

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use netpol_test_support::require_root;

/// One demo at a time: two labs probing in parallel on a busy machine could push an allowed probe
/// past its timeout.
static LAB: Mutex<()> = Mutex::new(());

/// The names `ip netns list` prints (first word of each line).
fn netns_names() -> BTreeSet<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list runs");
    assert!(out.status.success(), "ip netns list failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

const STEPS: [&str; 10] = [
    "== Step 1: No policy ==",
    "== Step 2: Isolate all incoming traffic of vm-a ==",
    "== Step 3: Isolate incoming and outgoing traffic of vm-a ==",
    "== Step 4: Allow incoming traffic from vm-b to vm-a ==",
    "== Step 5: Allow outgoing traffic from vm-a to the DNS host on TCP 53 ==",
    "== Step 6: A port range with endPort ==",
    "== Step 7: Allow incoming traffic from the namespace another-project ==",
    "== Step 8: An administrator guarantees DNS to every VM (Admin tier) ==",
    "== Step 9: A baseline denies cross-project traffic (Baseline tier) ==",
    "== Step 10: the page's indentation mistake ==",
];

#[test]
fn the_demo_walks_all_ten_steps_matches_the_kernel_and_cleans_up() {
    require_root();
    let _lab = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = netns_names();
    // Spawned (not assert_cmd's output()) to learn the pid that names its namespaces.
    let child = Command::new(env!("CARGO_BIN_EXE_netpol"))
        .arg("demo")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netpol demo starts");
    let pid = child.id();
    let out = child.wait_with_output().expect("netpol demo finishes");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);

    let own_prefix = format!("nplab-{pid}-");
    let left: Vec<String> = netns_names()
        .into_iter()
        .filter(|n| n.starts_with(&own_prefix))
        .collect();
    assert!(
        left.is_empty(),
        "netpol demo (pid {pid}) left network namespaces behind: {left:?}"
    );
    // Other helpers' labs may come and go meanwhile; only entries of this pid are ours, but none
    // of the pre-existing ones may have been touched either way.
    assert!(
        before.iter().all(|n| !n.starts_with(&own_prefix)),
        "pid {pid} was reused from a leftover lab: {before:?}"
    );

    assert_eq!(
        out.status.code(),
        Some(0),
        "netpol demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for step in STEPS {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    let verdict = stdout
        .lines()
        .find(|l| l.starts_with("demo: "))
        .unwrap_or_else(|| panic!("no verdict line in:\n{stdout}"));
    assert!(verdict.starts_with("demo: OK"), "{verdict}");
    assert!(!stdout.contains("MISMATCH"), "{stdout}");
    // The page's external address never appears as a probed destination: the stand-in does.
    assert!(stdout.contains("192.0.2.53"), "{stdout}");
    assert!(
        !stdout.contains("-> 8.8.8.8"),
        "the demo must not probe the page's real DNS address:\n{stdout}"
    );
    // Step 8 shows the strict-mode rejection with the field path.
    assert!(stdout.contains("spec.egress[0].to[0].ports"), "{stdout}");
}

#[test]
fn the_quiet_demo_prints_only_the_verdict() {
    require_root();
    let _lab = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_netpol"))
        .args(["demo", "--quiet"])
        .stdin(Stdio::null())
        .output()
        .expect("netpol demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("demo: OK"), "{stdout}");
}
