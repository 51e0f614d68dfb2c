//! `netpol lint` points a finding about a NetworkPolicy rule, peer or port at that item's line,
//! in the text, JSON and SARIF outputs. The manifest has several rules per policy and marks the
//! offending item of each check with a `# NPxxx` comment on its line; the expected line is where
//! the marker is, found in the text, never a number written here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

use common::{run, stdout};

/// Two namespaces, three pods (one defines the named port `http`), an Admin-tier Deny, and
/// policies with several rules each where one item per check is wrong.
const MANIFEST: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {team: shop}
---
apiVersion: v1
kind: Namespace
metadata:
  name: data
  labels: {team: data}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  containers:
  - name: web
    ports:
    - {name: http, containerPort: 8080, protocol: TCP}
status: {podIPs: [{ip: 10.1.0.1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec: {containers: [{name: api}]}
status: {podIPs: [{ip: 10.1.0.2}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: data, labels: {app: db}}
spec: {containers: [{name: db}]}
status: {podIPs: [{ip: 10.2.0.1}]}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata:
  name: no-api-to-web
spec:
  tier: Admin
  priority: 10
  subject:
    pods:
      namespaceSelector: {matchLabels: {team: shop}}
      podSelector: {matchLabels: {app: web}}
  ingress:
  - name: deny-api
    action: Deny
    from:
    - pods:
        namespaceSelector: {matchLabels: {team: shop}}
        podSelector: {matchLabels: {app: api}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-in
  namespace: shop
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: web}}
    ports:
    - port: 8081
  - from:
    - podSelector: {matchLabels: {app: web}}
    - podSelector: {matchLabels: {app: nothing}} # NP002
    ports:
    - port: 8080
    - port: 9090
  - from: # NP012
    - podSelector: {matchLabels: {app: api}}
    ports:
    - port: 8080
  - ports: # NP012 (every peer, so api too)
    - port: 7070
    - port: metrics # NP006
  - from: # NP003
    - podSelector: {matchLabels: {app: web}}
    ports:
    - port: 443
  - from:
    - podSelector: {matchLabels: {app: web}}
    ports:
    - port: 443
    - port: 8443
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-out
  namespace: shop
spec:
  podSelector:
    matchLabels: {app: web}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {cidr: 192.0.2.0/24}
    ports:
    - port: 443
  - to:
    - ipBlock: {cidr: 198.51.100.0/24}
    - ipBlock: {cidr: 10.2.0.0/16} # NP005
  - to:
    - podSelector: {matchLabels: {app: api}}
    - namespaceSelector: {matchLabels: {team: data}}
    - podSelector: {matchLabels: {app: db}} # NP008 NP002
"#;

/// The 1-based lines whose `# ...` marker comment names `id`, in file order.
fn marker_lines(id: &str) -> Vec<u64> {
    let hits: Vec<u64> = MANIFEST
        .lines()
        .zip(1..)
        .filter(|(l, _)| {
            l.split_once(" # ")
                .is_some_and(|(_, marks)| marks.split_whitespace().any(|m| m == id))
        })
        .map(|(_, n)| n)
        .collect();
    assert!(!hits.is_empty(), "no marker for {id}");
    hits
}

/// The line of the first policy document's `kind: NetworkPolicy` object named `name`.
fn policy_line(name: &str) -> usize {
    let lines: Vec<&str> = MANIFEST.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == format!("  name: {name}"))
        .unwrap();
    // The object starts at its `apiVersion:` line, two or three lines up.
    (0..at)
        .rev()
        .find(|&i| lines[i].starts_with("apiVersion:"))
        .unwrap()
        + 1
}

/// The checks about a rule, a peer or a port, each marked in the manifest (NP002 twice: the
/// peer selecting nothing, and NP008's lone podSelector, which looks in its own namespace; NP012
/// twice: the rule from api and the rule from every peer).
const ITEM_CHECKS: [&str; 6] = ["NP002", "NP003", "NP005", "NP006", "NP008", "NP012"];

fn lint_json(dir: &tempfile::TempDir) -> Vec<Value> {
    let o = run(&["lint", dir.path().to_str().unwrap(), "-o", "json"]);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    report["findings"].as_array().unwrap().clone()
}

fn manifest_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("all.yaml"), MANIFEST).unwrap();
    dir
}

#[test]
fn every_finding_about_a_rule_peer_or_port_is_at_that_items_line_in_json() {
    let dir = manifest_dir();
    let findings = lint_json(&dir);
    for id in ITEM_CHECKS {
        let mut lines: Vec<u64> = findings
            .iter()
            .filter(|f| f["id"] == id)
            .map(|f| f["origin"]["line"].as_u64().unwrap())
            .collect();
        lines.sort_unstable();
        assert_eq!(lines, marker_lines(id), "{id}: {findings:#?}");
    }
}

#[test]
fn findings_about_a_whole_policy_stay_at_the_policys_first_line() {
    let dir = manifest_dir();
    let findings = lint_json(&dir);
    // NP004: web-out isolates egress without allowing DNS to the cluster's DNS (none here).
    let dns: Vec<&Value> = findings.iter().filter(|f| f["id"] == "NP004").collect();
    assert!(!dns.is_empty(), "{findings:#?}");
    for f in dns {
        assert_eq!(f["object"], "NetworkPolicy shop/web-out");
        assert_eq!(f["origin"]["line"], policy_line("web-out") as u64);
    }
}

#[test]
fn the_text_output_prints_the_items_file_and_line() {
    let dir = manifest_dir();
    let o = run(&["lint", dir.path().to_str().unwrap()]);
    let out = stdout(&o);
    let file = dir.path().join("all.yaml");
    for id in ITEM_CHECKS {
        for line in marker_lines(id) {
            let at = format!("{}:{line}: warning[{id}]", file.display());
            assert!(out.contains(&at), "{at} not in\n{out}");
        }
    }
}

#[test]
fn the_sarif_results_start_at_the_items_line() {
    let dir = manifest_dir();
    let o = run(&["lint", dir.path().to_str().unwrap(), "-o", "sarif"]);
    let log: Value = serde_json::from_slice(&o.stdout).unwrap();
    let results = log["runs"][0]["results"].as_array().unwrap();
    for id in ITEM_CHECKS {
        let mut lines: Vec<u64> = results
            .iter()
            .filter(|r| r["ruleId"] == id)
            .map(|r| {
                r["locations"][0]["physicalLocation"]["region"]["startLine"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        lines.sort_unstable();
        assert_eq!(lines, marker_lines(id), "{id}: {results:#?}");
    }
}
