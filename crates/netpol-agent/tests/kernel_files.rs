//! The agent following a manifest directory and enforcing in the node namespace of a real lab
//! (network namespaces, veths, real TCP probes). Nothing is faked here. Needs root.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{wait_until, write_atomic, Agent};
use netpol_dataplane::{nft, Lab, LabHost, LabSpec, ProbeProtocol};

const CLIENT: &str = "10.88.0.1";
const WEB: &str = "10.88.0.2";

fn lab() -> Lab {
    let host = |name: &str, ip: &str, ports: Vec<u16>| LabHost {
        name: name.into(),
        node: Some("n1".into()),
        addresses: vec![ip.parse().unwrap()],
        tcp_ports: ports,
        ..LabHost::default()
    };
    Lab::build(&LabSpec {
        nodes: vec!["n1".into()],
        hosts: vec![
            host("a/client", CLIENT, vec![]),
            host("a/web", WEB, vec![80, 8080]),
        ],
    })
    .unwrap()
}

const WORKLOADS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: a}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: a, labels: {app: client}}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.88.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: a, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.88.0.2}
"#;

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

fn exists(ns: &str) -> bool {
    nft::table_exists(Some(ns), "inet", "netpol").unwrap()
}

fn setup(dir: &Path) {
    std::fs::write(dir.join("workloads.yaml"), WORKLOADS).unwrap();
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

    // kill -9: the rules stay in force.
    agent.kill9();
    assert!(exists(&ns));
    assert!(!open(&lab, 8080) && open(&lab, 80));

    // A new agent adopts the table: it is never absent while the agent starts and applies.
    let watcher_ns = ns.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let gaps = std::thread::spawn(move || {
        let mut checks = 0u32;
        let mut missing = 0u32;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            checks += 1;
            if !exists(&watcher_ns) {
                missing += 1;
            }
        }
        (checks, missing)
    });
    let mut cleanup_args = args.to_vec();
    cleanup_args.push("--cleanup");
    let mut agent = Agent::start(&cleanup_args, &log);
    assert!(agent.wait_ready(Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (checks, missing) = gaps.join().unwrap();
    eprintln!(
        "MEASURED adoption: {checks} table checks during restart, {missing} without the table"
    );
    assert!(checks > 5);
    assert_eq!(
        missing, 0,
        "the table disappeared while the new agent adopted it"
    );
    assert!(!open(&lab, 8080) && open(&lab, 80));

    // SIGTERM with cleanup_on_exit removes the table; without it (first agent) it stayed.
    let status = agent.terminate();
    assert!(status.success(), "{status:?}");
    assert!(!exists(&ns));
    assert!(open(&lab, 8080));
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
