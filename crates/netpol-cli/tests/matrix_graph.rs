//! `netpol matrix -o dot` and `-o mermaid` on the user's page (examples/test-project): the output
//! is well formed (balanced blocks, every edge's endpoints declared) and has exactly the edges the
//! policies allow.
//!
//! Expected edges, from the manifests: vm-a is isolated both ways (02); its ingress admits vm-b
//! (03) and the namespace another-project (06), its egress only addresses outside the cluster (04,
//! 05), so it reaches no workload. vm-b and vm-c are not isolated. Edges: vm-b -> vm-a,
//! vm-c -> vm-a, vm-b -> vm-c, vm-c -> vm-b, each on every port (no rule names a port).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use assert_cmd::Command;

const ALL: &str = "TCP 1-65535, UDP 1-65535, SCTP 1-65535";

fn matrix(format: &str) -> String {
    let out = Command::cargo_bin("netpol")
        .unwrap()
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args(["matrix", "examples/test-project", "-o", format])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8(out.stdout).unwrap()
}

fn expected() -> BTreeSet<(String, String, String)> {
    [
        ("another-project/vm-c", "test-project/vm-a"),
        ("another-project/vm-c", "test-project/vm-b"),
        ("test-project/vm-b", "another-project/vm-c"),
        ("test-project/vm-b", "test-project/vm-a"),
    ]
    .into_iter()
    .map(|(f, t)| (f.to_string(), t.to_string(), ALL.to_string()))
    .collect()
}

/// The double-quoted strings of a line, unescaped.
fn quoted(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => s.extend(chars.next()),
                '"' => break,
                c => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

#[test]
fn the_dot_graph_is_balanced_declares_every_endpoint_and_has_the_allowed_edges() {
    let dot = matrix("dot");
    assert!(dot.starts_with("digraph netpol {"), "{dot}");
    assert_eq!(dot.matches('{').count(), dot.matches('}').count(), "{dot}");
    let mut declared = BTreeSet::new();
    let mut edges = BTreeSet::new();
    let mut clusters = BTreeMap::new();
    let mut current = None;
    for line in dot.lines().map(str::trim) {
        let q = quoted(line);
        if line.starts_with("subgraph ") {
            current = Some(q[0].clone());
        } else if line == "}" {
            current = None;
        } else if line.contains(" -> ") {
            edges.insert((q[0].clone(), q[1].clone(), q[2].clone()));
        } else if line.contains("[label=") && !q.is_empty() {
            declared.insert(q[0].clone());
            if let Some(c) = &current {
                clusters.insert(q[0].clone(), c.clone());
            }
        }
    }
    assert_eq!(edges, expected(), "{dot}");
    for (f, t, _) in &edges {
        assert!(
            declared.contains(f) && declared.contains(t),
            "{f} -> {t} undeclared"
        );
    }
    // Namespaces are clusters of their workloads.
    assert_eq!(clusters["test-project/vm-a"], "cluster_test-project");
    assert_eq!(clusters["test-project/vm-b"], "cluster_test-project");
    assert_eq!(clusters["another-project/vm-c"], "cluster_another-project");
}

#[test]
fn the_mermaid_flowchart_is_balanced_declares_every_endpoint_and_has_the_allowed_edges() {
    let mm = matrix("mermaid");
    assert!(mm.starts_with("flowchart LR\n"), "{mm}");
    let lines: Vec<&str> = mm.lines().map(str::trim).collect();
    let opened = lines.iter().filter(|l| l.starts_with("subgraph ")).count();
    let closed = lines.iter().filter(|l| **l == "end").count();
    assert_eq!((opened, closed), (2, 2), "{mm}");
    // Node ids to their labels, and each id's namespace box.
    let mut label = BTreeMap::new();
    let mut namespace = BTreeMap::new();
    let mut current = String::new();
    let mut edges = BTreeSet::new();
    for line in &lines {
        if line.starts_with("subgraph ") {
            current = quoted(line)[0].clone();
        } else if let Some((from, rest)) = line.split_once(" -->|") {
            let (text, to) = rest.split_once("| ").unwrap();
            edges.insert((from.to_string(), to.to_string(), quoted(text)[0].clone()));
        } else if let Some((id, _)) = line.split_once('[') {
            label.insert(id.to_string(), quoted(line)[0].clone());
            namespace.insert(id.to_string(), current.clone());
        }
    }
    let named: BTreeSet<(String, String, String)> = edges
        .iter()
        .map(|(f, t, ports)| {
            let name = |id: &String| {
                let l = label
                    .get(id)
                    .unwrap_or_else(|| panic!("{id} undeclared in\n{mm}"));
                format!("{}/{l}", namespace[id])
            };
            (name(f), name(t), ports.clone())
        })
        .collect();
    assert_eq!(named, expected(), "{mm}");
}

#[test]
fn graph_formats_with_a_port_are_an_error_that_says_to_leave_it_out() {
    let out = Command::cargo_bin("netpol")
        .unwrap()
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args([
            "matrix",
            "examples/test-project",
            "--port",
            "80",
            "-o",
            "dot",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("leave out --port"));
}
