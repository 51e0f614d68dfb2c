//! The one-shot snapshot the CLI reads a live cluster with. THE API SERVER IS FAKED
//! (netpol-test-support's fake_apiserver); the kube client, the pruning and the loader are real.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use netpol_agent::kube_source::snapshot::{snapshot, Namespaces, CLI_KINDS};
use netpol_agent::kube_source::{connect, ClusterAccess};
use netpol_test_support::fake_apiserver::FakeApi;
use serde_json::json;

fn pod(ns: &str, name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name},
            "managedFields": [{"manager": "kubelet"}]},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1"}})
}

async fn client_of(fake: &FakeApi, dir: &std::path::Path) -> kube::Client {
    let path = dir.join("kubeconfig");
    let config = json!({"apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": fake.url()}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {}}], "current-context": "c"});
    std::fs::write(&path, config.to_string()).unwrap();
    let access = ClusterAccess {
        kubeconfig: Some(path),
        context: Some("c".into()),
        request_timeout: Duration::from_secs(5),
        user_agent: "netpol-test".into(),
    };
    let connection = connect(&access).await.unwrap();
    assert_eq!(connection.default_namespace, "default");
    connection.client
}

#[tokio::test]
async fn a_snapshot_pages_through_every_list_scopes_namespaced_kinds_and_notes_missing_crds() {
    let fake = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pods: Vec<_> = (0..7)
        .map(|i| pod(if i % 2 == 0 { "a" } else { "b" }, &format!("p{i}")))
        .collect();
    fake.apply_all("pods", pods);
    fake.set_paging(2, Duration::ZERO);
    let client = client_of(&fake, dir.path()).await;

    let all = snapshot(&client, CLI_KINDS, &Namespaces::All, Duration::from_secs(5)).await;
    assert!(all.errors.is_empty(), "{:?}", all.errors);
    let names: Vec<&str> = all.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("Pod/")).count(),
        7,
        "{names:?}"
    );
    assert!(fake.lists_for("pods") >= 4, "7 pods, 2 a page");
    // Pruned as the watch prunes: managedFields never reach the loader.
    assert!(all
        .objects
        .iter()
        .all(|o| !o.text.contains("managedFields")));
    // No CRD is installed: each CRD kind is noted, none is an error.
    let crds = CLI_KINDS.iter().filter(|k| k.crd).count();
    assert_eq!(all.not_served.len(), crds);
    let loaded = all.load(&netpol_k8s::LoadOptions::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    assert_eq!(loaded.cluster.workloads.len(), 7);

    let in_a = snapshot(
        &client,
        CLI_KINDS,
        &Namespaces::One("a".into()),
        Duration::from_secs(5),
    )
    .await;
    let loaded = in_a.load(&netpol_k8s::LoadOptions::default());
    assert_eq!(loaded.cluster.workloads.len(), 4);
    assert!(loaded.cluster.workloads.iter().all(|w| w.namespace == "a"));
}

#[tokio::test]
async fn a_kind_rbac_forbids_is_an_error_naming_it_and_the_other_kinds_are_still_read() {
    let fake = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    fake.apply("pods", pod("a", "p"));
    fake.set_faults(|f| {
        f.forbidden
            .insert(("networkpolicies".into(), "list".into()));
    });
    let client = client_of(&fake, dir.path()).await;
    let read = snapshot(&client, CLI_KINDS, &Namespaces::All, Duration::from_secs(5)).await;
    assert_eq!(read.errors.len(), 1, "{:?}", read.errors);
    let text = read.errors[0].to_string();
    assert!(text.starts_with("cannot read networkpolicies"), "{text}");
    assert!(
        text.contains("kubectl auth can-i list networkpolicies.networking.k8s.io"),
        "{text}"
    );
    assert!(read.objects.iter().any(|o| o.name == "Pod/a/p"));
}

#[tokio::test]
async fn an_unknown_context_is_an_error_listing_the_contexts_there_are() {
    let fake = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    client_of(&fake, dir.path()).await;
    let access = ClusterAccess {
        kubeconfig: Some(dir.path().join("kubeconfig")),
        context: Some("prod".into()),
        request_timeout: Duration::from_secs(5),
        user_agent: "netpol-test".into(),
    };
    let error = connect(&access).await.err().unwrap().to_string();
    assert!(
        error.contains("no context \"prod\"; its contexts: c"),
        "{error}"
    );
}
