//! SIGINT/SIGTERM remove an enforcing cluster lab when the program installed the cleanup
//! handler. The test re-runs this test binary as a child that builds a lab, loads its rulesets
//! and waits to be killed.
//!
//! PRIVILEGED: needs root, `ip` and `nft`. Without root the test fails (it never skips).

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use netpol_core::{Cluster, EvalOptions, Namespace, Protocol, Workload, WorkloadKind};
use netpol_lab::{install_interrupt_cleanup, ClusterLab, LabPlan};

const CHILD_ENV: &str = "NETPOL_LAB_INTERRUPT_CHILD";

fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "netpol-lab tests need root (network namespaces and nftables); they fail rather than skip"
    );
}

fn one_pod() -> Cluster {
    Cluster {
        namespaces: vec![Namespace::new("x", Default::default(), false)],
        workloads: vec![Workload {
            kind: WorkloadKind::Pod,
            namespace: "x".into(),
            name: "a".into(),
            labels: Default::default(),
            addresses: vec!["10.78.0.1".parse::<IpAddr>().unwrap()],
            node: Some("n".into()),
            phase: None,
            named_ports: Vec::new(),
            origin: None,
            instances: Default::default(),
        }],
        policies: Vec::new(),
        ..Cluster::default()
    }
}

/// The child's body: only meaningful when started by the test below.
#[test]
#[ignore = "started as a child process by an_interrupted_lab_removes_its_namespaces"]
fn interrupt_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    install_interrupt_cleanup().unwrap();
    let plan = LabPlan {
        listen: vec![(Protocol::Tcp, 80)],
        externals: vec!["192.0.2.7".parse().unwrap()],
    };
    let mut lab = ClusterLab::build(&one_pod(), EvalOptions::default(), &plan).unwrap();
    lab.enforce(&[], &[]).unwrap();
    println!("PREFIX {}", lab.lab().prefix());
    println!("READY");
    std::thread::sleep(Duration::from_secs(30));
    // Never reached when the parent signals; if it is, Drop still cleans up.
    drop(lab);
}

fn namespaces_with(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_interrupted_lab_removes_its_namespaces() {
    require_root();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let exe = std::env::current_exe().unwrap();
        let child = Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                "interrupt_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        let stdout = child.0.stdout.take().unwrap();
        let mut prefix = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            // The harness prints "test interrupt_child ... " without a newline before it.
            if let Some((_, p)) = line.split_once("PREFIX ") {
                prefix = Some(p.trim().to_owned());
            }
            if line.contains("READY") {
                break;
            }
        }
        let prefix = prefix.expect("the child printed its lab prefix");
        // Fabric, node, pod and external host.
        assert_eq!(namespaces_with(&prefix).len(), 4);
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(child.0.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0);
        let status = child.0.wait().unwrap();
        assert_eq!(status.code(), Some(130), "signal {signal}: exits with 130");
        assert_eq!(namespaces_with(&prefix), Vec::<String>::new());
    }
}

/// Kills the child if the test fails before signalling it, so it does not linger.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
