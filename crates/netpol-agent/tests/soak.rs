//! A bounded soak: the agent follows a manifest directory and enforces in a real lab's node
//! namespace while a prober sends real TCP connections the whole time, one allowed flow
//! (client -> web:80) and one denied flow (client -> web:8080). Meanwhile the policy files are
//! rewritten over and over (each rewrite changes the table, so incremental updates and, after
//! restarts and repairs, full replacements are applied), the agent is killed with SIGKILL and
//! stopped with SIGTERM and started again, and the table is flushed behind the agent's back.
//!
//! What must hold: no denied connection ever gets through and no allowed connection is ever
//! dropped, except inside the deliberate flush windows; and every flush is repaired within the
//! drift interval (plus the time of one check and apply). Nothing is faked. Needs root.
//!
//! `NETPOL_SOAK_ROUNDS` sets the number of policy rewrites (CI runs the default, 200; a longer soak
//! is e.g. `NETPOL_SOAK_ROUNDS=2000`). Every 25th round is a disruption: a kill -9, a SIGTERM or a
//! flush, in turn.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{client_web, wait_until, write_atomic, Agent};
use netpol_dataplane::{Lab, ProbeProtocol};

/// The addresses of this test's lab (see `common::client_web`).
const PREFIX: &str = "10.88.1";
const WEB: &str = "10.88.1.2";
const DRIFT: Duration = Duration::from_millis(500);
/// A repair is a drift check plus a full apply: allowed on top of the drift interval.
const REPAIR_SLACK: Duration = Duration::from_millis(1500);

/// The policy of round `n`: always client -> web:80 and never 8080, plus an unprobed port that
/// changes every round so every rewrite changes the table.
fn policy(n: usize) -> String {
    format!(
        r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: allow-client, namespace: a}}
spec:
  podSelector: {{matchLabels: {{app: web}}}}
  ingress:
  - from: [{{podSelector: {{matchLabels: {{app: client}}}}}}]
    ports: [{{port: 80}}, {{port: {}}}]
"#,
        20000 + n
    )
}

/// One probe of both flows.
struct Sample {
    at: Instant,
    allowed_ok: bool,
    denied_ok: bool,
}

fn lab() -> Lab {
    client_web::lab(PREFIX)
}

fn open(lab: &Lab, port: u16) -> bool {
    let web: IpAddr = WEB.parse().unwrap();
    lab.probe(
        "a/client",
        web,
        ProbeProtocol::Tcp,
        port,
        Duration::from_millis(250),
    )
    .unwrap()
}

fn start(dir: &Path, ns: &str, log: &Path) -> Agent {
    let drift = DRIFT.as_millis().to_string();
    let args = [
        "--node",
        "n1",
        "--dir",
        dir.to_str().unwrap(),
        "--netns",
        ns,
        "--coalesce-ms",
        "20",
        "--drift-ms",
        &drift,
    ];
    let agent = Agent::start(&args, log);
    assert!(agent.wait_ready(Duration::from_secs(20)), "agent not ready");
    agent
}

fn flush(ns: &str) {
    let out = Command::new("ip")
        .args([
            "netns", "exec", ns, "nft", "flush", "table", "inet", "netpol",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rounds() -> usize {
    std::env::var("NETPOL_SOAK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// Flush windows: from the flush to the moment the denied flow was denied again.
type Windows = Mutex<Vec<(Instant, Instant)>>;

#[test]
fn under_rewrites_restarts_and_flushes_no_denied_flow_passes_and_no_allowed_flow_drops() {
    let lab = lab();
    let ns = lab.node_netns("n1").unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("workloads.yaml"),
        client_web::workloads(PREFIX),
    )
    .unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, policy(0)).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("agent.log");
    let mut agent = start(dir.path(), &ns, &log);
    assert!(open(&lab, 80) && !open(&lab, 8080));

    let samples: Mutex<Vec<Sample>> = Mutex::new(Vec::new());
    let windows: Windows = Mutex::new(Vec::new());
    let done = AtomicBool::new(false);
    let mut disruptions = [0usize; 3];
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let allowed_ok = open(&lab, 80);
                let denied_ok = !open(&lab, 8080);
                let at = Instant::now();
                samples.lock().unwrap().push(Sample {
                    at,
                    allowed_ok,
                    denied_ok,
                });
            }
        });
        for n in 1..=rounds() {
            write_atomic(&file, &policy(n));
            std::thread::sleep(Duration::from_millis(40));
            if n % 25 != 0 {
                continue;
            }
            let kind = (n / 25 - 1) % 3;
            disruptions[kind] += 1;
            match kind {
                0 => {
                    agent.kill9();
                    agent = start(dir.path(), &ns, &log);
                }
                1 => {
                    assert!(agent.terminate().success());
                    agent = start(dir.path(), &ns, &log);
                }
                _ => {
                    let at = Instant::now();
                    flush(&ns);
                    let repaired = wait_until(DRIFT + REPAIR_SLACK, || !open(&lab, 8080));
                    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
                    assert!(repaired.is_some(), "flush not repaired in time\n{log_text}");
                    windows.lock().unwrap().push((at, Instant::now()));
                }
            }
        }
        done.store(true, Ordering::Relaxed);
    });

    let samples = samples.into_inner().unwrap();
    let windows = windows.into_inner().unwrap();
    // A sample finished inside a window (or one probe's time after it) may have seen the
    // flushed table.
    let probe_time = Duration::from_millis(600);
    let in_window = |at: Instant| {
        windows
            .iter()
            .any(|(start, end)| at >= *start && at <= *end + probe_time)
    };
    let outside: Vec<&Sample> = samples.iter().filter(|s| !in_window(s.at)).collect();
    let dropped = outside.iter().filter(|s| !s.allowed_ok).count();
    let passed = outside.iter().filter(|s| !s.denied_ok).count();
    eprintln!(
        "soak: {} rounds, disruptions (kill -9, SIGTERM, flush) {disruptions:?}, {} samples \
         ({} outside flush windows)",
        rounds(),
        samples.len(),
        outside.len()
    );
    assert!(outside.len() >= 20, "too few probes to mean anything");
    assert_eq!(
        dropped, 0,
        "allowed connections dropped outside flush windows"
    );
    assert_eq!(
        passed, 0,
        "denied connections got through outside flush windows"
    );
    assert!(disruptions.iter().all(|&d| d >= 1), "{disruptions:?}");
    agent.terminate();
}
