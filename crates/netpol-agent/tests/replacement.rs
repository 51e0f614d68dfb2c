//! The table replaced or emptied behind the agent's back, in the node namespace of a real lab:
//! a flush followed by a stream of policy changes (each an incremental update that applies
//! cleanly to the emptied chains) must still be repaired in full within the drift interval, and
//! the per-policy counters the agent exports must never go down when the table is replaced.
//! Nothing is faked here. Needs root.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{client_web, wait_until, write_atomic, Agent};
use netpol_dataplane::{nft, Lab, ProbeProtocol};

/// The addresses of this test's lab (see `common::client_web`).
const PREFIX: &str = "10.89.0";
const WEB: &str = "10.89.0.2";
const COUNTER: &str = "netpol_policy_packets_total{policy=\"a/allow-client\"";

fn lab() -> Lab {
    client_web::lab(PREFIX)
}

/// Policy `name` admitting the client to web on `port`.
fn policy(name: &str, port: u16) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {{name: {name}, namespace: a}}\n\
         spec:\n  podSelector: {{matchLabels: {{app: web}}}}\n  ingress:\n\
         \x20 - from: [{{podSelector: {{matchLabels: {{app: client}}}}}}]\n    ports: [{{port: {port}}}]\n"
    )
}

fn open(lab: &Lab, port: u16) -> bool {
    let web: IpAddr = WEB.parse().unwrap();
    lab.probe(
        "a/client",
        web,
        ProbeProtocol::Tcp,
        port,
        Duration::from_millis(300),
    )
    .unwrap()
}

/// An agent enforcing `allow-client` (web:80 from the client) in the lab's node, drift checks
/// every `drift_ms`.
fn start(lab: &Lab, dir: &Path, log: &Path, drift_ms: &str) -> Agent {
    std::fs::write(dir.join("workloads.yaml"), client_web::workloads(PREFIX)).unwrap();
    std::fs::write(dir.join("allow.yaml"), policy("allow-client", 80)).unwrap();
    let ns = lab.node_netns("n1").unwrap();
    let agent = Agent::start(
        &[
            "--node",
            "n1",
            "--dir",
            dir.to_str().unwrap(),
            "--netns",
            ns,
            "--drift-ms",
            drift_ms,
            "--coalesce-ms",
            "50",
        ],
        log,
    );
    assert!(agent.wait_ready(Duration::from_secs(20)), "never ready");
    assert!(open(lab, 80) && !open(lab, 8080));
    agent
}

/// The forward chain as the kernel lists it: empty after a flush.
fn forward_rules(ns: &str) -> usize {
    let listing = nft::list_table(Some(ns), "inet", "netpol")
        .unwrap()
        .unwrap();
    listing
        .lines()
        .skip_while(|l| l.trim() != "chain forward {")
        .skip(1)
        .take_while(|l| l.trim() != "}")
        .count()
}

#[test]
fn a_table_flushed_while_changes_keep_coming_is_replaced_in_full_within_the_drift_interval() {
    let lab = lab();
    let ns = lab.node_netns("n1").unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let drift = Duration::from_millis(1000);
    let agent = start(&lab, dir.path(), &logs.path().join("agent.log"), "1000");
    let rules = forward_rules(&ns);
    assert!(rules > 1, "{rules}");
    let repairs_before = agent.metric("netpol_drift_repairs_total").unwrap_or(0.0);
    let applies = || {
        agent
            .metric("netpol_syncs_total{result=\"applied\"}")
            .unwrap_or(0.0)
    };

    // A second policy on web toggling between two ports every 100 ms: every change is an
    // incremental update (web's identity chain changes), and none opens web:8080.
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let file = dir.path().join("other.yaml");
            let mut n = 0u16;
            while !stop.load(Ordering::SeqCst) {
                write_atomic(&file, &policy("other", 9000 + n % 2));
                n += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            n
        });
        std::thread::sleep(Duration::from_millis(500));
        let applied_before_flush = applies();
        let t0 = Instant::now();
        nft::apply(Some(&ns), "flush table inet netpol\n").unwrap();
        assert!(open(&lab, 8080), "the flush opened web:8080");
        let repaired = wait_until(drift * 3, || {
            forward_rules(&ns) == rules && !open(&lab, 8080) && open(&lab, 80)
        });
        let repaired_after = t0.elapsed();
        // Changes were still being applied around the repair.
        std::thread::sleep(Duration::from_millis(500));
        let applied_after = applies();
        stop.store(true, Ordering::SeqCst);
        let writes = writer.join().unwrap();
        assert!(
            repaired.is_some(),
            "the flushed table was not repaired while changes kept coming ({writes} writes)"
        );
        eprintln!(
            "MEASURED flush under {writes} policy writes -> whole table back: {repaired_after:?} (drift interval {drift:?})"
        );
        assert!(
            repaired_after <= drift + Duration::from_millis(500),
            "repaired after {repaired_after:?}, drift interval {drift:?}"
        );
        assert!(
            applied_after > applied_before_flush,
            "changes kept being applied"
        );
    });
    assert!(
        agent.metric("netpol_drift_repairs_total").unwrap_or(0.0) > repairs_before,
        "the repair is counted"
    );
    assert_eq!(agent.get("/readyz").unwrap().0, 200);
    assert!(open(&lab, 80) && !open(&lab, 8080));
}

#[test]
fn policy_counters_never_go_down_when_the_table_is_replaced() {
    let lab = lab();
    let ns = lab.node_netns("n1").unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let agent = start(&lab, dir.path(), &logs.path().join("agent.log"), "300");
    for _ in 0..3 {
        assert!(open(&lab, 80));
    }
    let exported = || {
        agent
            .metric(COUNTER)
            .expect("the policy counter is exported")
    };
    let before = exported();
    assert!(before >= 4.0, "{before}");
    let repairs = || agent.metric("netpol_drift_repairs_total").unwrap_or(0.0);

    // A flush: the table is replaced in full, and the kernel's counter carries on.
    nft::apply(Some(&ns), "flush table inet netpol\n").unwrap();
    assert!(wait_until(Duration::from_secs(5), || repairs() >= 1.0).is_some());
    assert!(wait_until(Duration::from_secs(5), || !open(&lab, 8080)).is_some());
    let kernel = common_counter(&ns);
    assert!(
        kernel >= before,
        "the replacement restarted the kernel's counter: {kernel} < {before}"
    );
    assert!(exported() >= before);

    // The table deleted: its counters are gone with it; the exported value still does not drop.
    let before = exported();
    nft::delete_table(Some(&ns), "inet", "netpol").unwrap();
    assert!(wait_until(Duration::from_secs(5), || repairs() >= 2.0).is_some());
    assert!(wait_until(Duration::from_secs(5), || open(&lab, 80)).is_some());
    assert!(
        common_counter(&ns) < before,
        "the kernel's counter did restart"
    );
    let after = exported();
    assert!(after >= before, "exported {after} after {before}");
    assert!(open(&lab, 80));
    assert!(exported() > after, "and it keeps counting");
}

/// The kernel's packet count of the policy's counter.
fn common_counter(ns: &str) -> f64 {
    let json = nft::counters_json_text(Some(ns), "inet", "netpol")
        .unwrap()
        .unwrap();
    let readings = netpol_nft::CounterReading::parse_listing(&json).unwrap();
    readings
        .iter()
        .find(|r| r.name == "pol_a_allow-client")
        .map(|r| r.packets as f64)
        .expect("the policy's counter is in the table")
}
