//! The agent following a manifest directory and enforcing in the node namespace of a real lab
//! (network namespaces, veths, real TCP probes). Nothing is faked here. Needs root.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{client_web, wait_until, write_atomic, Agent};
use netpol_dataplane::{nft, Lab, ProbeProtocol};

/// The addresses of this test's lab (see `common::client_web`).
const PREFIX: &str = "10.88.0";
const WEB: &str = "10.88.0.2";

fn lab() -> Lab {
    client_web::lab(PREFIX)
}

fn policy(port: &str) -> String {
    format!(
        r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: allow-client, namespace: a}}
spec:
  podSelector: {{matchLabels: {{app: web}}}}
  ingress:
  - from: [{{podSelector: {{matchLabels: {{app: client}}}}}}]
    ports: [{{port: {port}}}]
"#
    )
}

fn open(lab: &Lab, port: u16) -> bool {
    open_within(lab, port, Duration::from_millis(300))
}

fn open_within(lab: &Lab, port: u16, timeout: Duration) -> bool {
    let web: IpAddr = WEB.parse().unwrap();
    lab.probe("a/client", web, ProbeProtocol::Tcp, port, timeout)
        .unwrap()
}

fn exists(ns: &str) -> bool {
    nft::table_exists(Some(ns), "inet", "netpol").unwrap()
}

fn setup(dir: &Path) {
    std::fs::write(dir.join("workloads.yaml"), client_web::workloads(PREFIX)).unwrap();
    std::fs::create_dir(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/allow.yaml"), policy("80")).unwrap();
}

#[test]
fn edits_apply_broken_files_keep_their_last_good_content_and_fixes_apply_again() {
    let lab = lab();
    let ns = lab.node_netns("n1").unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("agent.log");
    let agent = Agent::start(
        &[
            "--node",
            "n1",
            "--dir",
            dir.path().to_str().unwrap(),
            "--netns",
            &ns,
            "--coalesce-ms",
            "50",
        ],
        &log,
    );
    assert!(
        agent.wait_ready(Duration::from_secs(20)),
        "agent never became ready"
    );
    assert!(open(&lab, 80), "the policy allows client -> web:80");
    assert!(!open(&lab, 8080), "web is isolated: 8080 is not allowed");
    let metrics = agent.get("/metrics").unwrap().1;
    assert_eq!(
        common::metric_value(&metrics, "netpol_workloads{scope=\"local\"}"),
        Some(2.0)
    );
    assert_eq!(
        common::metric_value(&metrics, "netpol_policies "),
        Some(1.0)
    );

    // Edit: the rules follow, measured from the write to the first packet that gets through.
    let file = dir.path().join("policies/allow.yaml");
    let before =
        nft::list_table_with(Some(&ns), "inet", "netpol", netpol_dataplane::Listing::Full).unwrap();
    let t0 = Instant::now();
    write_atomic(&file, &policy("8080"));
    let changed = wait_until(Duration::from_secs(10), || {
        nft::list_table_with(Some(&ns), "inet", "netpol", netpol_dataplane::Listing::Full)
            .ok()
            .flatten()
            != before
    });
    assert!(
        changed.is_some(),
        "the kernel's table never changed after the edit"
    );
    eprintln!(
        "MEASURED edit written -> kernel table changed: {:?} (debounce 50 ms + coalesce 50 ms)",
        t0.elapsed()
    );
    let took = wait_until(Duration::from_secs(10), || open(&lab, 8080));
    assert!(took.is_some(), "the edited policy was never enforced");
    assert!(!open(&lab, 80));

    // Bad YAML: reported, last good content (8080) stays.
    let errors_before = agent.metric("netpol_source_errors_total").unwrap_or(0.0);
    write_atomic(
        &file,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: [\n",
    );
    assert!(
        wait_until(Duration::from_secs(10), || agent
            .metric("netpol_source_failing{")
            == Some(1.0))
        .is_some(),
        "the broken file is not reported in metrics"
    );
    assert!(agent.metric("netpol_source_errors_total").unwrap() > errors_before);
    assert!(
        open(&lab, 8080) && !open(&lab, 80),
        "last good content must stay in force"
    );

    // Invalid CIDR (valid YAML, invalid object): same.
    let bad_cidr = policy("80").replace(
        "- from: [{podSelector: {matchLabels: {app: client}}}]",
        "- from: [{ipBlock: {cidr: 10.0.0.0/33}}]",
    );
    assert!(bad_cidr.contains("/33"));
    write_atomic(&file, &bad_cidr);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(agent.metric("netpol_source_failing{"), Some(1.0));
    assert!(
        open(&lab, 8080) && !open(&lab, 80),
        "last good content must stay in force"
    );
    assert_eq!(
        agent.get("/readyz").unwrap().0,
        200,
        "a bad file does not make the agent unready"
    );

    // Fix: applies.
    write_atomic(&file, &policy("80"));
    assert!(wait_until(Duration::from_secs(10), || open(&lab, 80)).is_some());
    assert!(!open(&lab, 8080));
    assert_eq!(agent.metric("netpol_source_failing{"), Some(0.0));

    // Delete the file: its policy goes, nothing isolates web any more.
    std::fs::remove_file(&file).unwrap();
    assert!(wait_until(Duration::from_secs(10), || open(&lab, 8080)).is_some());
    let (_, body) = agent.get("/metrics").unwrap();
    assert_eq!(common::metric_value(&body, "netpol_policies "), Some(0.0));
    let delay_count =
        common::metric_value(&body, "netpol_enforcement_delay_seconds_count").unwrap();
    assert!(
        delay_count >= 3.0,
        "every applied change observes the delay: {delay_count}"
    );
    drop(agent);
}

#[test]
fn drift_is_repaired_rules_survive_kill_9_and_a_new_agent_adopts_them_without_a_gap() {
    let lab = lab();
    let ns = lab.node_netns("n1").unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("agent.log");
    let args = [
        "--node",
        "n1",
        "--dir",
        dir.path().to_str().unwrap(),
        "--netns",
        &ns,
        "--drift-ms",
        "500",
    ];
    let mut agent = Agent::start(&args, &log);
    assert!(agent.wait_ready(Duration::from_secs(20)));
    assert!(!open(&lab, 8080));

    // Per-policy kernel counters: one allowed connection credits the policy's counter.
    assert!(open(&lab, 80));
    let packets = agent
        .metric("netpol_policy_packets_total{policy=\"a/allow-client\"")
        .expect("the policy counter is exported");
    assert!(packets >= 1.0, "{packets}");

    // Flush the table's rules behind the agent's back: everything opens until repaired.
    let t0 = Instant::now();
    nft::apply(Some(&ns), "flush table inet netpol\n").unwrap();
    let flushed_open = open(&lab, 8080);
    let repaired = wait_until(Duration::from_secs(5), || !open(&lab, 8080));
    assert!(flushed_open, "flushing the rules opened web:8080");
    assert!(repaired.is_some(), "the flushed table was not repaired");
    eprintln!(
        "MEASURED drift (rules flushed) -> repaired: {:?} (interval 500 ms)",
        t0.elapsed()
    );
    assert!(wait_until(Duration::from_secs(2), || agent
        .metric("netpol_drift_repairs_total")
        >= Some(1.0))
    .is_some());

    // Delete the whole table: repaired as well.
    let t0 = Instant::now();
    nft::delete_table(Some(&ns), "inet", "netpol").unwrap();
    assert!(!exists(&ns));
    let repaired = wait_until(Duration::from_secs(5), || exists(&ns));
    assert!(repaired.is_some(), "the deleted table was not repaired");
    eprintln!(
        "MEASURED drift (table deleted) -> repaired: {:?} (interval 500 ms)",
        t0.elapsed()
    );
    assert!(!open(&lab, 8080) && open(&lab, 80));
    assert!(wait_until(Duration::from_secs(2), || agent
        .metric("netpol_drift_repairs_total")
        >= Some(2.0))
    .is_some());

    // kill -9 during continuous probing, then a new agent: one thread probes a flow that must
    // stay denied (web:8080), one a flow that must stay allowed (web:80), another checks
    // that the table exists, from before the kill until the new agent is ready and settled.
    let mut cleanup_args = args.to_vec();
    cleanup_args.push("--cleanup");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let running =
        |stop: &std::sync::atomic::AtomicBool| !stop.load(std::sync::atomic::Ordering::Relaxed);
    let (probes, gaps, mut agent) = std::thread::scope(|scope| {
        // Separate threads: a denied probe waits out its timeout, an allowed one is quick.
        let denied_prober = scope.spawn(|| {
            let (mut probes, mut through) = (0u32, 0u32);
            while running(&stop) {
                probes += 1;
                if open_within(&lab, 8080, Duration::from_millis(100)) {
                    through += 1;
                }
            }
            (probes, through)
        });
        let allowed_prober = scope.spawn(|| {
            let (mut probes, mut failed) = (0u32, 0u32);
            while running(&stop) {
                probes += 1;
                if !open_within(&lab, 80, Duration::from_secs(1)) {
                    failed += 1;
                }
            }
            (probes, failed)
        });
        let watcher = scope.spawn(|| {
            let (mut checks, mut missing) = (0u32, 0u32);
            while running(&stop) {
                checks += 1;
                if !exists(&ns) {
                    missing += 1;
                }
            }
            (checks, missing)
        });
        std::thread::sleep(Duration::from_millis(300));
        agent.kill9();
        // No agent at all for a while: the kernel keeps enforcing on its own.
        std::thread::sleep(Duration::from_millis(700));
        let agent = Agent::start(&cleanup_args, &log);
        let ready = agent.wait_ready(Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(ready, "the new agent never became ready");
        let (d, t) = denied_prober.join().unwrap();
        let (a, f) = allowed_prober.join().unwrap();
        ((d, t, a, f), watcher.join().unwrap(), agent)
    });
    let (denied, denied_through, allowed, allowed_failed) = probes;
    let (checks, missing) = gaps;
    eprintln!(
        "MEASURED kill -9 + restart: {denied} probes of the denied flow ({denied_through} got through), \
         {allowed} of the allowed flow ({allowed_failed} failed); {checks} table checks, {missing} without the table"
    );
    assert!(
        denied >= 5 && allowed >= 5 && checks > 5,
        "too few probes to mean anything"
    );
    assert_eq!(
        denied_through, 0,
        "a denied probe got through around kill -9 / restart"
    );
    assert_eq!(
        allowed_failed, 0,
        "an allowed probe failed around kill -9 / restart"
    );
    assert_eq!(
        missing, 0,
        "the table disappeared while the new agent adopted it"
    );
    assert_eq!(
        agent.metric("netpol_apply_errors_total"),
        Some(0.0),
        "the new agent replaced the adopted table without errors"
    );

    // The new agent goes on: an edit is enforced.
    write_atomic(&dir.path().join("policies/allow.yaml"), &policy("8080"));
    assert!(
        wait_until(Duration::from_secs(10), || open(&lab, 8080)
            && !open(&lab, 80))
        .is_some(),
        "the restarted agent did not apply a later edit"
    );

    // SIGTERM with cleanup_on_exit removes the table; without it (first agent) it stayed.
    let status = agent.terminate();
    assert!(status.success(), "{status:?}");
    assert!(!exists(&ns));
    assert!(open(&lab, 8080) && open(&lab, 80));
}

#[test]
fn sigterm_leaves_the_rules_in_place_by_default() {
    let lab = lab();
    let ns = lab.node_netns("n1").unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("agent.log");
    let mut agent = Agent::start(
        &[
            "--node",
            "n1",
            "--dir",
            dir.path().to_str().unwrap(),
            "--netns",
            &ns,
            "--json",
        ],
        &log,
    );
    assert!(agent.wait_ready(Duration::from_secs(20)));
    let status = agent.terminate();
    assert!(status.success(), "{status:?}");
    assert!(exists(&ns));
    assert!(!open(&lab, 8080));
    // --json: every log line is a JSON object.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty());
    for l in lines {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
}
