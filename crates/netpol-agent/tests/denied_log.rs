//! The denied-flow log end to end: one lab node with two workloads, a policy that isolates the
//! destination and admits only port 80, and the agent process (JSON logs) enforcing in the node's
//! namespace. A real TCP connection attempt to port 81 must produce one `denied flow` event naming
//! the policy, both workloads and the port; a connection to port 80 must produce none, and nothing
//! may be reported as a disagreement. Needs root.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{wait_until, Agent};
use netpol_dataplane::{Lab, LabHost, LabSpec, ProbeProtocol};
use serde_json::Value;

const CLIENT: &str = "10.81.0.1";
const WEB: &str = "10.81.0.2";

fn lab() -> Lab {
    let host = |name: &str, addr: &str| LabHost {
        name: name.into(),
        node: Some("n1".into()),
        addresses: vec![addr.parse().unwrap()],
        tcp_ports: vec![80, 81],
        ..LabHost::default()
    };
    Lab::build(&LabSpec {
        nodes: vec!["n1".into()],
        hosts: vec![host("shop/client", CLIENT), host("shop/web", WEB)],
    })
    .unwrap()
}

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.81.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.81.0.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-only-80, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: 80}]
"#;

/// The JSON log lines of the agent so far (lines that are not JSON are skipped).
fn events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn denied_events(log: &Path) -> Vec<Value> {
    events(log)
        .into_iter()
        .filter(|e| e["target"] == "netpol_agent::denied")
        .collect()
}

/// An agent process (JSON logs) enforcing MANIFESTS in the lab's node, with `extra` flags; the
/// temporary manifest and log directories live as long as the first value.
fn start_agent(
    lab: &Lab,
    extra: &[&str],
) -> (
    (tempfile::TempDir, tempfile::TempDir),
    std::path::PathBuf,
    Agent,
) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.yaml"), MANIFESTS).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("agent.log");
    let mut args = vec![
        "--node",
        "n1",
        "--dir",
        dir.path().to_str().unwrap(),
        "--netns",
        lab.node_netns("n1").unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let agent = Agent::start(&args, &log);
    ((dir, logs), log, agent)
}

#[test]
fn a_denied_connection_is_logged_once_with_its_policy_workloads_and_port_and_an_allowed_one_is_not()
{
    let lab = lab();
    let (_dirs, log, agent) = start_agent(&lab, &[]);
    assert!(
        agent.wait_ready(Duration::from_secs(20)),
        "the agent never became ready:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        events(&log)
            .iter()
            .any(|e| e["fields"]["message"] == "denied-flow log listening"),
        "the denied-flow log did not start:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let probe = |port| {
        lab.probe(
            "shop/client",
            WEB.parse().unwrap(),
            ProbeProtocol::Tcp,
            port,
            Duration::from_millis(1500),
        )
        .unwrap()
    };
    // The allowed port first: it must pass and leave no denied-flow event.
    assert!(probe(80), "port 80 is admitted by web-only-80");
    // The denied port: the SYN (and its retransmission within the probe's 1.5 s) is dropped.
    assert!(!probe(81), "port 81 is not admitted");
    let found = wait_until(Duration::from_secs(5), || {
        denied_events(&log)
            .iter()
            .any(|e| e["fields"]["dst_port"] == 81)
    });
    let all = denied_events(&log);
    assert!(
        found.is_some(),
        "no denied-flow event for port 81: {all:#?}"
    );
    let denied: Vec<&Value> = all
        .iter()
        .filter(|e| e["fields"]["message"] == "denied flow")
        .collect();
    assert_eq!(
        denied.len(),
        1,
        "exactly one event for the one flow (retransmissions are suppressed repeats): {all:#?}"
    );
    // Shown with --nocapture: what an operator sees.
    println!("{}", denied[0]);
    let f = &denied[0]["fields"];
    assert_eq!(denied[0]["level"], "INFO");
    assert_eq!(f["direction"], "ingress");
    assert_eq!(f["protocol"], "TCP");
    assert_eq!(f["src"], CLIENT);
    assert_eq!(f["dst"], WEB);
    assert_eq!(f["dst_port"], 81);
    assert!(f["src_port"].as_u64().is_some_and(|p| p >= 1024), "{f}");
    assert_eq!(f["src_workload"], "shop/client");
    assert_eq!(f["dst_workload"], "shop/web");
    assert_eq!(f["policies"], "shop/web-only-80");
    assert_eq!(f["evaluator"], "denied");
    let reason = f["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("shop/web-only-80") && reason.contains("81"),
        "the reason says which policy and what it does not admit: {reason}"
    );
    // Nothing about port 80, and no disagreement of any kind.
    assert!(
        all.iter().all(|e| e["fields"]["dst_port"] != 80),
        "an allowed flow was logged as denied: {all:#?}"
    );
    assert!(
        all.iter().all(|e| e["level"] == "INFO"),
        "a warning or error from the denied-flow log: {all:#?}"
    );
    assert_eq!(
        agent.metric("netpol_denied_flows_logged_total{direction=\"ingress\"}"),
        Some(1.0)
    );
    assert_eq!(
        agent.metric("netpol_denied_flow_disagreements_total"),
        None,
        "no disagreement series at all"
    );
}

#[test]
fn with_the_log_disabled_no_listener_is_started_and_denials_are_still_enforced() {
    let lab = lab();
    let (_dirs, log, agent) = start_agent(&lab, &["--no-denied-flow-log"]);
    assert!(agent.wait_ready(Duration::from_secs(20)));
    let denied = lab
        .probe(
            "shop/client",
            WEB.parse().unwrap(),
            ProbeProtocol::Tcp,
            81,
            Duration::from_millis(500),
        )
        .unwrap();
    assert!(!denied, "port 81 is still dropped");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        events(&log)
            .iter()
            .all(|e| e["fields"]["message"] != "denied-flow log listening"),
        "the listener started although disabled"
    );
    assert!(denied_events(&log).is_empty());
}
