//! `netpol diff` on manifests written to temporary directories, and in a temporary git
//! repository through the real `git` command. The expected changes follow from the manifests:
//! the comments say why.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

/// A namespace `shop` with three pods; `api` is isolated for ingress by `api-deny`.
const BASE: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: main, image: x}]}
status: {phase: Running, podIP: 10.10.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec: {containers: [{name: main, image: x}]}
status: {phase: Running, podIP: 10.10.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec: {containers: [{name: main, image: x}]}
status: {phase: Running, podIP: 10.10.0.3}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-deny, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress]
"#;

/// Opens TCP 8080 of `api` to `web` only.
const OPEN_8080: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: 8080}]
"#;

fn netpol(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("netpol").expect("the netpol binary is built for tests");
    cmd.current_dir(dir);
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Output {
    netpol(dir).args(args).output().expect("netpol runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("netpol exits with a code")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `old/` and `new/` with the given files.
fn versions(old: &[(&str, &str)], new: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (side, files) in [("old", old), ("new", new)] {
        std::fs::create_dir_all(dir.path().join(side)).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(side).join(name), text).unwrap();
        }
    }
    dir
}

#[test]
fn identical_manifests_exit_0_and_say_no_change() {
    let dir = versions(&[("base.yaml", BASE)], &[("base.yaml", BASE)]);
    let out = run(dir.path(), &["diff", "old", "new"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("no change in connectivity"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_policy_that_opens_a_port_is_a_gained_pair_with_that_port_and_the_policy_named() {
    let dir = versions(
        &[("base.yaml", BASE)],
        &[("base.yaml", BASE), ("open.yaml", OPEN_8080)],
    );
    let out = run(dir.path(), &["diff", "old", "new"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    // api was isolated with nothing allowed: web -> api had nothing; now exactly TCP 8080.
    let line = text
        .lines()
        .find(|l| l.contains("shop/web -> shop/api"))
        .unwrap_or_else(|| panic!("no web -> api line in\n{text}"));
    assert!(line.trim_start().starts_with('+'), "{line}");
    assert!(line.contains("gained TCP 8080"), "{line}");
    assert!(!line.contains("lost"), "{line}");
    assert!(
        line.contains("NetworkPolicy shop/api-from-web (added)"),
        "{line}"
    );
    // Only web -> api changed: db -> api stays denied, everything else stays open.
    assert!(text.contains("pairs (1 of 1)"), "{text}");
    assert!(
        text.contains("NetworkPolicy shop/api-from-web added"),
        "{text}"
    );
}

#[test]
fn a_policy_changed_from_one_port_to_another_lists_what_was_gained_and_lost() {
    let moved = OPEN_8080.replace("port: 8080", "port: 9090");
    let dir = versions(
        &[("base.yaml", BASE), ("open.yaml", OPEN_8080)],
        &[("base.yaml", BASE), ("open.yaml", &moved)],
    );
    let out = run(dir.path(), &["diff", "old", "new", "-o", "json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let pairs = doc["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 1, "{doc:#}");
    let p = &pairs[0];
    assert_eq!(p["from"], "shop/web");
    assert_eq!(p["to"], "shop/api");
    assert_eq!(p["change"], "changed");
    assert_eq!(p["gained"]["TCP"], serde_json::json!([[9090, 9090]]));
    assert_eq!(p["lost"]["TCP"], serde_json::json!([[8080, 8080]]));
    assert_eq!(p["before"]["TCP"], serde_json::json!([[8080, 8080]]));
    assert_eq!(p["after"]["UDP"], serde_json::json!([]));
    assert_eq!(p["because"][0], "NetworkPolicy shop/api-from-web (changed)");
    assert_eq!(doc["changed"], true);
    assert_eq!(doc["counts"]["changed"], 1);
    assert_eq!(doc["counts"]["gained"], 0);
    assert_eq!(doc["pairs_truncated"], false);
    let objects = doc["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["kind"], "NetworkPolicy");
    assert_eq!(objects[0]["presence"], "changed");
    assert_eq!(objects[0]["fields"][0], "spec.ingress[0]");
}

#[test]
fn a_removed_workload_is_one_line_with_its_connections_not_a_line_per_pair() {
    let without_db = BASE.replace(
        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: shop, labels: {app: db}}\nspec: {containers: [{name: main, image: x}]}\nstatus: {phase: Running, podIP: 10.10.0.3}\n",
        "",
    );
    assert_ne!(without_db, BASE);
    let dir = versions(&[("base.yaml", BASE)], &[("base.yaml", &without_db)]);
    let out = run(dir.path(), &["diff", "old", "new"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    // api admits nobody; web and db are not isolated. So db reached 1 endpoint (web) and was
    // reached from 2 (web, and api, whose egress nothing isolates).
    assert!(
        text.contains("- shop/db  reaches 1, reached from 2"),
        "{text}"
    );
    assert!(
        !text.contains("pairs ("),
        "no pair of common endpoints changed:\n{text}"
    );
    assert!(text.contains("Workload pod/shop/db removed"), "{text}");
    let json = run(dir.path(), &["diff", "old", "new", "-o", "json"]);
    let doc: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(doc["counts"]["endpoints_removed"], 1);
    assert_eq!(doc["endpoints_removed"][0]["endpoint"], "shop/db");
    assert_eq!(doc["endpoints_removed"][0]["outgoing"], 1);
}

#[test]
fn markdown_is_a_table_with_the_rest_collapsed_when_long() {
    // 30 client pods all gain TCP 8080 to api: 20 rows open, 10 in a details block.
    let mut clients = String::new();
    for i in 0..30 {
        clients.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: c{i:02}, namespace: shop, labels: {{app: web}}}}\nspec: {{containers: [{{name: main, image: x}}]}}\nstatus: {{phase: Running, podIP: 10.10.1.{}}}\n",
            i + 1
        ));
    }
    let dir = versions(
        &[("base.yaml", BASE), ("clients.yaml", &clients)],
        &[
            ("base.yaml", BASE),
            ("clients.yaml", &clients),
            ("open.yaml", OPEN_8080),
        ],
    );
    let out = run(
        dir.path(),
        &["diff", "old", "new", "-o", "md", "--limit", "25"],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let md = stdout(&out);
    assert!(
        md.contains(
            "| change | from | to | gained | lost | because |\n|---|---|---|---|---|---|\n"
        ),
        "{md}"
    );
    let rows = md.lines().filter(|l| l.starts_with("| gained |")).count();
    assert_eq!(rows, 25, "{md}");
    let (open, collapsed) = md
        .split_once("<details><summary>5 more pairs</summary>")
        .unwrap();
    assert_eq!(
        open.lines().filter(|l| l.starts_with("| gained |")).count(),
        20
    );
    assert!(collapsed.contains("</details>"));
    // 31 pairs gained (web and the 30 clients), 25 listed.
    assert!(
        md.contains("_... and 6 more (--limit 0 lists all)_"),
        "{md}"
    );
    assert!(md.contains("| gained | `shop/c00` | `shop/api` | TCP 8080 |  | NetworkPolicy shop/api-from-web (added) |"), "{md}");
}

#[test]
fn two_standard_inputs_and_a_wrong_number_of_paths_are_errors() {
    let dir = versions(&[], &[]);
    let out = run(dir.path(), &["diff", "-", "-"]);
    assert_eq!(code(&out), 2);
    let out = run(dir.path(), &["diff", "old"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("needs two paths"), "{}", stderr(&out));
}

#[test]
fn a_rejected_object_makes_the_diff_exit_2_after_printing_it() {
    let broken = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad, namespace: shop}\nspec: {podSelector: {}, bogus: 1}\n";
    let dir = versions(
        &[("base.yaml", BASE)],
        &[("base.yaml", BASE), ("bad.yaml", broken)],
    );
    let out = run(dir.path(), &["diff", "old", "new"]);
    assert_eq!(code(&out), 2);
    assert!(stdout(&out).starts_with("no change in connectivity"));
    assert!(stderr(&out).contains("bad.yaml"), "{}", stderr(&out));
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
}

#[test]
fn git_compares_a_directory_at_a_revision_with_the_working_tree() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    std::fs::create_dir_all(repo.join("manifests/policies")).unwrap();
    std::fs::write(repo.join("manifests/base.yaml"), BASE).unwrap();
    std::fs::write(repo.join("manifests/README.md"), "not a manifest: skipped").unwrap();
    git(repo, &["init", "-q"]);
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "base"]);
    std::fs::write(repo.join("manifests/policies/open.yaml"), OPEN_8080).unwrap();
    // The working tree opens TCP 8080; HEAD does not have the file at all.
    let out = run(repo, &["diff", "--git", "HEAD", "manifests"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("+ shop/web -> shop/api  gained TCP 8080"),
        "{text}"
    );
    // From a subdirectory, paths are relative to it, as git's are.
    let out = run(&repo.join("manifests"), &["diff", "--git", "HEAD"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stdout(&out).contains("gained TCP 8080"));
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "open"]);
    let out = run(repo, &["diff", "--git", "HEAD", "manifests"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("no change in connectivity"));
    // HEAD~1 vs the working tree (= HEAD): the policy file is new, so the pair is gained.
    let out = run(
        repo,
        &[
            "diff",
            "--git",
            "HEAD~1",
            "manifests/base.yaml",
            "manifests/policies",
        ],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("manifests/policies does not exist at"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn git_errors_are_clear_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    // Not a repository.
    let out = run(dir.path(), &["diff", "--git", "HEAD", "."]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("HEAD is not a git revision here"),
        "{}",
        stderr(&out)
    );
    git(dir.path(), &["init", "-q"]);
    std::fs::write(dir.path().join("a.yaml"), BASE).unwrap();
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "a"]);
    let out = run(dir.path(), &["diff", "--git", "no-such-branch"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no-such-branch is not a git revision here"),
        "{}",
        stderr(&out)
    );
}
