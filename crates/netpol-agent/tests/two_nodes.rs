//! Two lab nodes, each with its own agent process enforcing in its node namespace, both following
//! ONE manifest directory. After every edit the whole probe matrix (real TCP through the lab) must
//! equal the analyzer's truth table computed from the same files, and the delay from the write to
//! enforcement on both nodes is measured. Needs root.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{wait_until, write_atomic, Agent};
use netpol_core::{Analyzer, EvalOptions, Protocol};
use netpol_dataplane::{Lab, LabHost, LabSpec, ProbeProtocol, ProbeRequest};

/// (lab host = workload key, node, address, app label)
const HOSTS: [(&str, &str, &str, &str); 4] = [
    ("a/c1", "n1", "10.89.0.1", "c1"),
    ("a/w1", "n1", "10.89.0.2", "w1"),
    ("b/c2", "n2", "10.89.0.3", "c2"),
    ("b/w2", "n2", "10.89.0.4", "w2"),
];
const PORTS: [u16; 2] = [80, 8080];

fn lab() -> Lab {
    Lab::build(&LabSpec {
        nodes: vec!["n1".into(), "n2".into()],
        hosts: HOSTS
            .iter()
            .map(|(name, node, ip, _)| LabHost {
                name: (*name).into(),
                node: Some((*node).into()),
                addresses: vec![ip.parse().unwrap()],
                tcp_ports: PORTS.to_vec(),
                ..LabHost::default()
            })
            .collect(),
    })
    .unwrap()
}

fn workloads() -> String {
    let mut out = String::from(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n",
    );
    for (key, node, ip, app) in HOSTS {
        let (ns, name) = key.split_once('/').unwrap();
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\n\
             metadata: {{name: {name}, namespace: {ns}, labels: {{app: {app}}}}}\n\
             spec: {{nodeName: {node}, containers: [{{name: c, image: i}}]}}\n\
             status: {{phase: Running, podIP: {ip}}}\n"
        ));
    }
    out
}

fn ingress(ns: &str, name: &str, app: &str, from: &[(&str, &[u16])]) -> String {
    let mut rules = String::new();
    for (peer, ports) in from {
        let ports: Vec<String> = ports.iter().map(|p| format!("{{port: {p}}}")).collect();
        rules.push_str(&format!(
            "  - from: [{peer}]\n    ports: [{}]\n",
            ports.join(", ")
        ));
    }
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  podSelector: {{matchLabels: {{app: {app}}}}}\n  ingress:\n{rules}"
    )
}

fn egress_to_namespace(ns: &str, name: &str, app: &str, to_ns: &str, port: u16) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  podSelector: {{matchLabels: {{app: {app}}}}}\n  policyTypes: [Egress]\n\
         \x20 egress:\n  - to: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {to_ns}}}}}}}]\n\
         \x20   ports: [{{port: {port}}}]\n"
    )
}

const FROM_NS_A: &str = "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: a}}}";
const FROM_C1: &str = "{podSelector: {matchLabels: {app: c1}}}";
const FROM_C2: &str = "{podSelector: {matchLabels: {app: c2}}}";

/// The edits, in order: each one is the whole `policies.yaml` (`None`: the file is deleted).
fn steps() -> Vec<(&'static str, Option<String>)> {
    vec![
        (
            "isolate w1 (n1) and w2 (n2) for ingress",
            Some(
                ingress("b", "in-w2", "w2", &[(FROM_NS_A, &[80])])
                    + &ingress("a", "in-w1", "w1", &[(FROM_C1, &[8080])]),
            ),
        ),
        (
            "egress policy for c1 on n1; w1 and w2 rules edited",
            Some(
                ingress(
                    "b",
                    "in-w2",
                    "w2",
                    &[(FROM_NS_A, &[80]), (FROM_C2, &[8080])],
                ) + &ingress("a", "in-w1", "w1", &[(FROM_C1, &[80])])
                    + &egress_to_namespace("a", "eg-c1", "c1", "b", 80),
            ),
        ),
        (
            "c1's egress moves to 8080, w2 admits ns a on 80 and 8080",
            Some(
                ingress("b", "in-w2", "w2", &[(FROM_NS_A, &[80, 8080])])
                    + &ingress("a", "in-w1", "w1", &[(FROM_C1, &[80])])
                    + &egress_to_namespace("a", "eg-c1", "c1", "b", 8080),
            ),
        ),
        ("policies.yaml deleted", None),
    ]
}

/// One probed flow: (from host, to host, port).
type Flow = (&'static str, &'static str, u16);

fn all_flows() -> Vec<Flow> {
    let mut flows = Vec::new();
    for (from, ..) in HOSTS {
        for (to, ..) in HOSTS {
            if from != to {
                for port in PORTS {
                    flows.push((from, to, port));
                }
            }
        }
    }
    flows
}

fn address(host: &str) -> IpAddr {
    HOSTS
        .iter()
        .find(|h| h.0 == host)
        .map(|h| h.2.parse().unwrap())
        .unwrap()
}

fn probe(lab: &Lab, flows: &[Flow], timeout: Duration) -> BTreeMap<Flow, bool> {
    let requests: Vec<ProbeRequest> = flows
        .iter()
        .map(|&(from, to, port)| ProbeRequest {
            from_host: from.into(),
            to_addr: address(to),
            protocol: ProbeProtocol::Tcp,
            port,
            timeout,
        })
        .collect();
    let results = lab.probe_many(&requests);
    flows
        .iter()
        .zip(results)
        .map(|(f, r)| (*f, r.unwrap()))
        .collect()
}

/// The analyzer's verdict for every flow, from the manifests as `netpol check` loads them.
fn predict(dir: &Path) -> BTreeMap<Flow, bool> {
    let loaded = netpol_k8s::load_paths(&[dir], &netpol_k8s::LoadOptions::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let cluster = loaded.cluster;
    assert_eq!(cluster.workloads.len(), HOSTS.len());
    let index = |key: &str| {
        cluster
            .workloads
            .iter()
            .position(|w| w.key() == key)
            .unwrap()
    };
    let analyzer = Analyzer::new(&cluster, EvalOptions::default());
    let tables: BTreeMap<u16, _> = PORTS
        .iter()
        .map(|&p| (p, analyzer.truth_table(Protocol::Tcp, p)))
        .collect();
    all_flows()
        .into_iter()
        .map(|f| (f, tables[&f.2].allowed(index(f.0), index(f.1))))
        .collect()
}

fn mismatches(observed: &BTreeMap<Flow, bool>, expected: &BTreeMap<Flow, bool>) -> Vec<String> {
    observed
        .iter()
        .filter(|(f, v)| expected.get(*f) != Some(*v))
        .map(|((from, to, port), v)| {
            format!(
                "{from} -> {to}:{port} observed {}",
                if *v { "open" } else { "closed" }
            )
        })
        .collect()
}

#[test]
fn two_agents_on_one_directory_enforce_every_edit_on_both_nodes_as_the_analyzer_predicts() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("workloads.yaml"), workloads()).unwrap();
    std::fs::write(staging.path().join("workloads.yaml"), workloads()).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let agents: Vec<Agent> = ["n1", "n2"]
        .iter()
        .map(|node| {
            Agent::start(
                &[
                    "--node",
                    node,
                    "--dir",
                    dir.path().to_str().unwrap(),
                    "--netns",
                    lab.node_netns(node).unwrap(),
                ],
                &logs.path().join(format!("{node}.log")),
            )
        })
        .collect();
    for a in &agents {
        assert!(
            a.wait_ready(Duration::from_secs(20)),
            "an agent never became ready"
        );
    }
    for a in &agents {
        assert_eq!(
            a.metric("netpol_workloads{scope=\"local\"}"),
            Some(2.0),
            "each node hosts two of the four workloads"
        );
    }

    // No policy yet: everything is open, as predicted.
    let flows = all_flows();
    let mut current = predict(staging.path());
    assert!(current.values().all(|v| *v));
    let observed = probe(&lab, &flows, Duration::from_millis(500));
    assert!(
        mismatches(&observed, &current).is_empty(),
        "{:?}",
        mismatches(&observed, &current)
    );

    let target = dir.path().join("policies.yaml");
    let mut delays = Vec::new();
    for (i, (what, content)) in steps().into_iter().enumerate() {
        // The prediction comes from an identical copy, loaded before the timed write.
        let staged = staging.path().join("policies.yaml");
        match &content {
            Some(text) => std::fs::write(&staged, text).unwrap(),
            None => std::fs::remove_file(&staged).unwrap(),
        }
        let expected = predict(staging.path());
        let changed: Vec<Flow> = flows
            .iter()
            .copied()
            .filter(|f| expected[f] != current[f])
            .collect();
        assert!(!changed.is_empty(), "step {i} ({what}) changes no flow");
        let nodes_involved: std::collections::BTreeSet<&str> = changed
            .iter()
            .flat_map(|(from, to, _)| [*from, *to])
            .map(|h| HOSTS.iter().find(|x| x.0 == h).unwrap().1)
            .collect();

        let t0 = Instant::now();
        match &content {
            Some(text) => write_atomic(&target, text),
            None => std::fs::remove_file(&target).unwrap(),
        }
        // Poll only the flows that change (a closed flow costs the probe timeout); done when
        // all of them show the new verdict at once.
        let enforced = wait_until(Duration::from_secs(10), || {
            let seen = probe(&lab, &changed, Duration::from_millis(100));
            changed.iter().all(|f| seen[f] == expected[f])
        });
        let delay = t0.elapsed();
        assert!(
            enforced.is_some(),
            "step {i} ({what}): not enforced within 10 s"
        );
        eprintln!(
            "MEASURED step {i} ({what}): write -> {} changed flows enforced (nodes {nodes_involved:?}): {delay:?}",
            changed.len()
        );
        delays.push(delay);

        // Then the whole matrix, with a generous timeout, against the analyzer.
        let observed = probe(&lab, &flows, Duration::from_millis(500));
        let wrong = mismatches(&observed, &expected);
        assert!(wrong.is_empty(), "step {i} ({what}): {wrong:#?}");

        // Flows whose verdict needs a specific node's rules (reasoned from the policies, not
        // read off the analyzer): a cross-node connection passes the source node's egress rules
        // and the destination node's ingress rules.
        match i {
            1 => {
                // c2 is not isolated at all; only n1's egress rules for c1 refuse 8080.
                assert!(!observed[&("a/c1", "b/c2", 8080)]);
                assert!(observed[&("a/c1", "b/c2", 80)]);
                // w1 has no egress policy; only n2's ingress rules for w2 refuse w1 on 8080...
                assert!(!observed[&("a/w1", "b/w2", 8080)]);
                // ...while c2 (same node as w2) is admitted on 8080 and not on 80.
                assert!(observed[&("b/c2", "b/w2", 8080)]);
                assert!(!observed[&("b/c2", "b/w2", 80)]);
                // Both nodes allow c1 -> w2:80.
                assert!(observed[&("a/c1", "b/w2", 80)]);
            }
            2 => {
                // n2 admits namespace a on 80 (w1 gets through), but n1 stops c1's 80 on egress.
                assert!(observed[&("a/w1", "b/w2", 80)]);
                assert!(!observed[&("a/c1", "b/w2", 80)]);
                assert!(observed[&("a/c1", "b/w2", 8080)]);
            }
            _ => {}
        }
        current = expected;
    }
    let max = delays.iter().max().unwrap();
    eprintln!("MEASURED two nodes, one directory: write -> enforced on both nodes: max {max:?} over {} edits (target < 1 s)", delays.len());
    assert!(
        *max < Duration::from_secs(3),
        "enforcement took {max:?}, far beyond the 1 s target"
    );
    for a in &agents {
        assert_eq!(a.metric("netpol_apply_errors_total"), Some(0.0));
    }
    // The edits went through the incremental path (the first apply is always a full replace),
    // so the matrices above checked incremental updates against the analyzer.
    for node in ["n1", "n2"] {
        let text = std::fs::read_to_string(logs.path().join(format!("{node}.log"))).unwrap();
        assert!(
            text.contains("incremental=false"),
            "{node}: the first apply replaces the table"
        );
        assert!(
            text.contains("incremental=true"),
            "{node}: no edit was applied incrementally"
        );
        assert!(
            !text.contains("incremental update refused"),
            "{node}: the kernel refused an incremental update"
        );
    }
}
