//! SIGINT/SIGTERM must not leave namespaces behind when the CLI installed the cleanup handler.
//! The test re-runs this test binary as a child that builds a lab and waits to be killed.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{host, netns_exists, require_root};
use netpol_dataplane::{install_interrupt_cleanup, Lab, LabSpec};

const CHILD_ENV: &str = "NETPOL_DATAPLANE_INTERRUPT_CHILD";

/// The child's body: only meaningful when started by the test below.
#[test]
#[ignore = "started as a child process by an_interrupted_run_removes_its_namespaces"]
fn interrupt_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    install_interrupt_cleanup().expect("handler");
    let spec = LabSpec {
        nodes: vec!["n".into()],
        hosts: vec![host("vm", Some("n"), &["10.66.20.70"], &[80], &[], &[])],
    };
    let lab = Lab::build(&spec).expect("lab");
    for name in lab.netns_names() {
        println!("NETNS {name}");
    }
    println!("READY");
    std::thread::sleep(Duration::from_secs(30));
    // Never reached when the parent signals; if it is, Drop still cleans up.
    drop(lab);
}

#[test]
fn an_interrupted_run_removes_its_namespaces() {
    require_root();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let exe = std::env::current_exe().expect("test binary");
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
            .expect("spawn child");
        let mut child = KillOnDrop(child);
        let stdout = child.0.stdout.take().expect("stdout");
        let mut names = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            // The harness prints "test interrupt_child ... " without a newline before it.
            if let Some((_, name)) = line.split_once("NETNS ") {
                names.push(name.trim().to_owned());
            }
            if line.contains("READY") {
                break;
            }
        }
        assert_eq!(
            names.len(),
            3,
            "fabric, node and host namespaces: {names:?}"
        );
        assert!(names.iter().all(|n| netns_exists(n)));
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(child.0.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0);
        let status = child.0.wait().expect("wait");
        assert_eq!(
            status.code(),
            Some(130),
            "signal {signal}: the handler exits with 130"
        );
        let left: Vec<_> = names.iter().filter(|n| netns_exists(n)).collect();
        assert!(left.is_empty(), "signal {signal} left {left:?}");
    }
}

/// Kills the child if the test fails before signalling it, so it does not linger (its own Drop
/// is then skipped, and the next run's stale cleanup removes its namespaces).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
