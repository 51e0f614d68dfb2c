//! `netpol lint` and `netpol exposure` on the bundled examples and manifests written to temporary
//! directories: exit codes, the SARIF document's required fields, NP009 from the user's
//! indentation mistake with file:line, and the VM-first wording of exposure (other/vm-b is
//! isolated both ways without rules, so it exposes nothing and is not listed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

use common::{run, stdout};

/// A directory with one manifest file.
fn manifests(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("all.yaml"), text).unwrap();
    dir
}

const MISTAKE: &str = "examples/mistakes/egress-ports-under-peer.yaml";

#[test]
fn the_misplaced_ports_field_is_an_error_finding_at_its_line_and_fails_the_gate() {
    let o = run(&["lint", MISTAKE, "--fail-on", "error"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("{MISTAKE}:14: error[NP009]: NetworkPolicy test-project/allow-egress-from-vm-a-to-8-8-8-8: unknown field \"ports\"")),
        "{out}"
    );
    assert!(out.contains("move it to spec.egress[0].ports"), "{out}");
    // Not also printed as a loading warning.
    assert!(!String::from_utf8_lossy(&o.stderr).contains("unknown field"));
}

#[test]
fn fail_on_decides_the_exit_code_by_the_worst_finding() {
    // The user's page has warnings (egress without DNS) and no error.
    assert_eq!(
        run(&["lint", "examples/test-project"]).status.code(),
        Some(0)
    );
    assert_eq!(
        run(&["lint", "examples/test-project", "--fail-on", "error"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&["lint", "examples/test-project", "--fail-on", "warning"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn a_file_that_does_not_load_is_exit_2_after_the_findings() {
    let dir = manifests("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x, namespace: a}\nspec: {podSelector: 3}\n");
    let o = run(&["lint", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn the_sarif_log_has_the_fields_code_scanning_requires() {
    let o = run(&[
        "lint",
        MISTAKE,
        "examples/test-project/namespaces.yaml",
        "-o",
        "sarif",
    ]);
    let log: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run0 = &log["runs"][0];
    let driver = &run0["tool"]["driver"];
    assert_eq!(driver["name"], "netpol");
    let rules = driver["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "NP001", "NP002", "NP003", "NP004", "NP005", "NP006", "NP007", "NP008", "NP009",
            "NP010", "NP011", "NP012"
        ]
    );
    for r in rules {
        assert!(!r["help"]["text"].as_str().unwrap().is_empty());
        assert!(!r["shortDescription"]["text"].as_str().unwrap().is_empty());
    }
    let results = run0["results"].as_array().unwrap();
    let np009 = results
        .iter()
        .find(|r| r["ruleId"] == "NP009")
        .expect("an NP009 result");
    assert_eq!(np009["level"], "error");
    assert_eq!(
        rules[np009["ruleIndex"].as_u64().unwrap() as usize]["id"],
        "NP009"
    );
    let location = &np009["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], MISTAKE);
    assert_eq!(location["region"]["startLine"], 14);
    assert!(!np009["message"]["text"].as_str().unwrap().is_empty());
}

#[test]
fn the_json_findings_carry_id_severity_origin_object_message_and_hint() {
    let o = run(&["lint", "examples/test-project", "-o", "json"]);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = doc["findings"].as_array().unwrap();
    let dns = f
        .iter()
        .find(|f| f["id"] == "NP004")
        .expect("an NP004 finding");
    assert_eq!(dns["severity"], "warning");
    assert!(dns["origin"]["file"]
        .as_str()
        .unwrap()
        .starts_with("examples/test-project/policies/"));
    assert!(dns["origin"]["line"].as_u64().unwrap() > 0);
    assert!(dns["object"]
        .as_str()
        .unwrap()
        .starts_with("NetworkPolicy test-project/"));
    assert!(!dns["hint"].as_str().unwrap().is_empty());
}

const OPEN_SSH: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: test-project}
---
apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualMachine
metadata: {name: vm-a, namespace: test-project, labels: {vm: a}}
status: {phase: Running, nodeName: n1, ipAddress: 10.66.10.1}
---
apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualMachine
metadata: {name: vm-b, namespace: other, labels: {vm: b}}
status: {phase: Running, nodeName: n1, ipAddress: 10.66.10.2}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: closed, namespace: other}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ssh-from-anywhere, namespace: test-project}
spec:
  podSelector: {matchLabels: {vm: a}}
  policyTypes: [Ingress, Egress]
  ingress:
    - ports: [{port: 22}]
    - from: [{ipBlock: {cidr: 192.0.2.0/24}}]
      ports: [{port: 443}]
  egress:
    - to: [{ipBlock: {cidr: 198.51.100.0/24}}]
      ports: [{protocol: UDP, port: 53}]
"#;

#[test]
fn exposure_says_which_vm_accepts_what_from_where_in_words() {
    let dir = manifests(OPEN_SSH);
    let o = run(&["exposure", dir.path().to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = stdout(&o);
    let expected = [
        "VM test-project/vm-a accepts TCP/22 from everything (every workload and anywhere outside the cluster)",
        "VM test-project/vm-a accepts TCP/443 from 192.0.2.0/24",
        "VM test-project/vm-a may reach 198.51.100.0/24 (outside the cluster) on UDP/53",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");
}

#[test]
fn exposure_as_json_and_markdown() {
    let dir = manifests(OPEN_SSH);
    let o = run(&["exposure", dir.path().to_str().unwrap(), "-o", "json"]);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let w = &doc["workloads"][0];
    assert_eq!(w["workload"], "test-project/vm-a");
    assert_eq!(w["kind"], "VirtualMachine");
    assert_eq!(w["from_everything"]["TCP"], serde_json::json!([[22, 22]]));
    assert_eq!(
        w["to_outside"][0]["blocks"],
        serde_json::json!(["198.51.100.0/24"])
    );
    assert_eq!(w["to_outside"][0]["protocol"], "UDP");
    let o = run(&["exposure", dir.path().to_str().unwrap(), "-o", "md"]);
    let md = stdout(&o);
    assert!(md.starts_with("| workload |"), "{md}");
    assert!(md.contains("| VM test-project/vm-a | TCP/22 |"), "{md}");
}

#[test]
fn well_placed_fields_give_no_np009_and_a_field_given_twice_is_np010() {
    let out = stdout(&run(&["lint", "examples/test-project"]));
    assert!(!out.contains("NP009") && !out.contains("NP010"), "{out}");
    let dir = manifests(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: twice\n  namespace: a\nspec:\n  podSelector: {}\n  podSelector: {}\n",
    );
    let o = run(&["lint", dir.path().to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(
            "all.yaml:8: warning[NP010]: NetworkPolicy a/twice: duplicate field \"podSelector\""
        ),
        "{out}"
    );
}
