//! The agent on a node whose workload sits on a Linux bridge that does not hand IP packets to
//! netfilter: it must not claim to enforce (`/readyz` 503 naming the address and the bridge, a
//! metric), and it must say ready again once the workload is routed through the IP stack. Real
//! namespace, bridge, veth and table; nothing faked. Needs root.
//!
//! `br_netfilter` is the host kernel's and global; the test never loads or unloads it. Where it
//! is loaded, the test turns this namespace's `bridge-nf-call-*` sysctls off; where it is not,
//! bridged packets bypass netfilter anyway.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{wait_until, write_atomic, Agent};
use netpol_dataplane::Netns;
use netpol_test_support::{ip_in, require_root, sysctl_in};

const WORKLOAD: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: a}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: a, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.89.0.5}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: a}
spec: {podSelector: {}, policyTypes: [Ingress]}
"#;

fn readyz(agent: &Agent) -> (u16, String) {
    agent.get("/readyz").unwrap_or((0, String::new()))
}

#[test]
fn a_workload_on_a_bridge_without_netfilter_makes_the_agent_say_it_does_not_enforce_for_it() {
    require_root();
    let node = Netns::create("brnode").unwrap();
    let n = node.name().to_string();
    ip_in(&n, "link add br0 type bridge");
    ip_in(&n, "link set br0 up");
    ip_in(&n, "addr add 10.89.0.1/24 dev br0");
    if std::path::Path::new("/proc/sys/net/bridge").is_dir() {
        for key in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
            sysctl_in(&n, &format!("net.bridge.{key}=0"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    write_atomic(&dir.path().join("all.yaml"), WORKLOAD);
    let log = dir.path().join("agent.log");
    let dir_arg = dir.path().to_str().unwrap().to_string();
    let args = [
        "--node",
        "n1",
        "--dir",
        &dir_arg,
        "--netns",
        &n,
        "--drift-ms",
        "200",
    ];
    let mut agent = Agent::start(&args, &log);

    let bypass_reported = wait_until(Duration::from_secs(20), || {
        let (code, body) = readyz(&agent);
        code == 503 && body.contains("10.89.0.5 (on bridge br0")
    });
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        bypass_reported.is_some(),
        "{:?}\n{}",
        readyz(&agent),
        log_text()
    );
    assert_eq!(
        agent.metric("netpol_datapath_bypassed_addresses "),
        Some(1.0)
    );
    assert_eq!(agent.metric("netpol_ready "), Some(0.0));
    // The table is loaded all the same (it still enforces for everything routed).
    assert!(agent.metric("netpol_table_packets_total").is_some());

    // The workload routed through a veth instead: its packets cross the hooks.
    ip_in(&n, "addr del 10.89.0.1/24 dev br0");
    ip_in(&n, "link add lxc0 type veth peer name lxc0p");
    ip_in(&n, "link set lxc0 up");
    ip_in(&n, "route add 10.89.0.5/32 dev lxc0");
    assert!(
        agent.wait_ready(Duration::from_secs(20)),
        "{:?}",
        readyz(&agent)
    );
    assert_eq!(
        agent.metric("netpol_datapath_bypassed_addresses "),
        Some(0.0)
    );
    agent.terminate();
}
