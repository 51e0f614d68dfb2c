//! The `netpol` binary on workload controllers: a Helm-like render (Deployment, StatefulSet,
//! CronJob, Services, a ConfigMap and NetworkPolicies) answers `check --from shop/api`, and a
//! controller's kind shows where a bare `namespace/name` is ambiguous.
//!
//! The verdicts follow from the fixture's policies: `default-deny-ingress` isolates every
//! workload of `shop`; `db-from-api-and-backup` lets `app.kubernetes.io/name=api` and
//! `tier=batch` reach the db's named port `postgres` (5432); `api-http-from-anywhere` opens the
//! api's named port `http` (8080) to everyone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;

use common::{code, run};

const RENDER: &str = "crates/netpol-k8s/tests/fixtures/helm-shop.yaml";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn check(from: &str, to: &str, port: &str) -> Output {
    run(&["check", RENDER, "--from", from, "--to", to, "--port", port])
}

#[test]
fn check_from_a_deployment_of_a_helm_render_follows_its_policies() {
    let cases = [
        // api's pod template carries app.kubernetes.io/name=api: allowed on postgres.
        ("shop/api", "shop/db", "5432", 0, "ALLOWED"),
        // The CronJob's pod template carries tier=batch: allowed too.
        ("shop/backup", "shop/db", "5432", 0, "ALLOWED"),
        // Only the named port postgres is open on the db.
        ("shop/api", "shop/db", "80", 1, "DENIED"),
        // From outside, the api's named port http (8080) is open, metrics (9090) is not.
        ("203.0.113.5", "shop/api", "8080", 0, "ALLOWED"),
        ("203.0.113.5", "shop/api", "9090", 1, "DENIED"),
        // The kind may be given, with kubectl's short names.
        ("deployment/shop/api", "sts/shop/db", "5432", 0, "ALLOWED"),
    ];
    for (from, to, port, expected, verdict) in cases {
        let out = check(from, to, port);
        let stdout = text(&out.stdout);
        assert_eq!(
            code(&out),
            expected,
            "{from} -> {to}:{port}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(
            stdout.starts_with(verdict),
            "{from} -> {to}:{port}: {stdout}"
        );
    }
    let out = check("shop/api", "shop/db", "5432");
    assert!(
        text(&out.stdout).contains("allowed by shop/db-from-api-and-backup"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !text(&out.stderr).contains("does not use this kind: Deployment"),
        "the Deployment is read"
    );
}

#[test]
fn a_controller_and_a_pod_of_one_name_are_told_apart_by_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pod = dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: api, namespace: shop, labels: {app: debug}}\nspec: {containers: [{name: c, image: x}]}\nstatus: {podIP: 10.0.0.9}\n",
    )
    .unwrap();
    let pod = pod.to_str().unwrap();
    let out = run(&[
        "check", RENDER, pod, "--from", "shop/api", "--to", "shop/db", "--port", "5432",
    ]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("use deployment/shop/api or pod/shop/api"),
        "{stderr}"
    );
    // The orphan Pod (app=debug) is not the Deployment: the db's policy does not admit it.
    let out = run(&[
        "check",
        RENDER,
        pod,
        "--from",
        "pod/shop/api",
        "--to",
        "shop/db",
        "--port",
        "5432",
    ]);
    assert_eq!(code(&out), 1, "{}", text(&out.stdout));
    let out = run(&["matrix", RENDER, pod, "--port", "5432"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("deployment/shop/api") && stdout.contains("pod/shop/api"),
        "{stdout}"
    );
}

#[test]
fn get_lists_controllers_as_workloads_but_not_as_vms() {
    let out = run(&["get", "workloads", RENDER]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for kind in ["deployment", "statefulset", "cronjob"] {
        assert!(stdout.contains(kind), "{kind}: {stdout}");
    }
    let out = run(&["get", "vms", RENDER]);
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
}
