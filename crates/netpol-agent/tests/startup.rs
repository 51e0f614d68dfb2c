//! How the agent starts on a manifest directory that is missing, empty, or holds a file that does
//! not load: it must never apply a view that lacks objects (which could withdraw the rules an
//! earlier agent left in force). Real agent processes, real nftables in a scratch namespace.
//! Needs root.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{wait_until, write_atomic, Agent};
use netpol_dataplane::{nft, Netns};

const WORKLOADS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: a, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.86.0.2}
"#;

const POLICY: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: a}
spec: {podSelector: {}}
"#;

/// A table as an earlier agent would have left it, with a chain the agent never writes.
const ADOPTED: &str = "table inet netpol {\n  chain left_by_the_previous_agent {\n  }\n}\n";

fn marker_present(ns: &str) -> bool {
    nft::list_table_with(Some(ns), "inet", "netpol", netpol_dataplane::Listing::Full)
        .unwrap()
        .is_some_and(|t| t.contains("left_by_the_previous_agent"))
}

fn start(dir: &std::path::Path, ns: &str, log: &std::path::Path) -> Agent {
    Agent::start(
        &[
            "--node",
            "n1",
            "--dir",
            dir.to_str().unwrap(),
            "--netns",
            ns,
        ],
        log,
    )
}

#[test]
fn a_missing_directory_is_a_clear_error_at_start() {
    let netns = Netns::create("agentstart").unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("agent.log");
    let missing = logs.path().join("no-such-dir");
    let mut agent = start(&missing, netns.name(), &log);
    let exited = wait_until(Duration::from_secs(10), || {
        agent.child.try_wait().unwrap().is_some()
    });
    assert!(
        exited.is_some(),
        "the agent kept running without its directory"
    );
    let status = agent.child.wait().unwrap();
    assert!(!status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("cannot watch") && text.contains("no-such-dir"),
        "the error names the directory: {text}"
    );
    assert!(!nft::table_exists(Some(netns.name()), "inet", "netpol").unwrap());
}

#[test]
fn an_empty_directory_applies_nothing_and_keeps_adopted_rules_until_manifests_appear() {
    let netns = Netns::create("agentstart").unwrap();
    let ns = netns.name();
    nft::apply(Some(ns), ADOPTED).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let agent = start(dir.path(), ns, &logs.path().join("agent.log"));
    let waiting = wait_until(Duration::from_secs(10), || {
        agent
            .get("/readyz")
            .is_some_and(|(s, b)| s == 503 && b.contains("no manifest files yet"))
    });
    assert!(
        waiting.is_some(),
        "/readyz does not say what it waits for: {:?}",
        agent.get("/readyz")
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        marker_present(ns),
        "an empty directory replaced the rules left in force"
    );
    assert_eq!(agent.metric("netpol_syncs_total{result=\"applied\"}"), None);

    // The first manifest arrives: the agent applies and becomes ready.
    std::fs::write(dir.path().join("workloads.yaml"), WORKLOADS).unwrap();
    assert!(agent.wait_ready(Duration::from_secs(10)));
    assert!(
        !marker_present(ns),
        "the agent's own table replaced the adopted one"
    );
    assert!(nft::table_exists(Some(ns), "inet", "netpol").unwrap());
}

#[test]
fn a_file_that_never_loaded_holds_back_the_first_apply_until_it_is_fixed() {
    let netns = Netns::create("agentstart").unwrap();
    let ns = netns.name();
    nft::apply(Some(ns), ADOPTED).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("workloads.yaml"), WORKLOADS).unwrap();
    let policy = dir.path().join("policy.yaml");
    // Valid YAML, invalid object: the deny-all policy is not in the view.
    std::fs::write(&policy, POLICY.replace("podSelector: {}", "podSelector: 7")).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let agent = start(dir.path(), ns, &logs.path().join("agent.log"));
    let waiting = wait_until(Duration::from_secs(10), || {
        agent
            .get("/readyz")
            .is_some_and(|(s, b)| s == 503 && b.contains("policy.yaml does not load"))
    });
    assert!(
        waiting.is_some(),
        "/readyz does not name the failing file: {:?}",
        agent.get("/readyz")
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        marker_present(ns),
        "a view without the broken file's policy was applied"
    );
    assert!(agent.metric("netpol_source_failing{").unwrap() >= 1.0);

    write_atomic(&policy, POLICY);
    assert!(agent.wait_ready(Duration::from_secs(10)));
    assert!(!marker_present(ns));
    assert_eq!(agent.metric("netpol_policies "), Some(1.0));
    assert_eq!(agent.metric("netpol_source_failing{"), Some(0.0));
}
