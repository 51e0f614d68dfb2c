//! The agent following the admin policy CRDs (ClusterNetworkPolicy v1alpha2, AdminNetworkPolicy
//! and BaselineAdminNetworkPolicy v1alpha1) as they come and go, like the VM CRDs. THE API SERVER
//! IS FAKED (netpol-test-support's fake_apiserver); the loader, compiler and kernel are real. Needs root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod kube_agent;

use std::time::Duration;

use kube_agent::{eventually, start_agent};
use netpol_core::{AdminTier, Cluster};
use netpol_test_support::fake_apiserver::FakeApi;
use serde_json::{json, Value};

const GROUP_V2: &str = "policy.networking.k8s.io/v1alpha2";
const GROUP_V1: &str = "policy.networking.k8s.io/v1alpha1";

fn cnp(name: &str, tier: &str, priority: u32) -> Value {
    json!({"apiVersion": GROUP_V2, "kind": "ClusterNetworkPolicy",
        "metadata": {"name": name, "managedFields": [{"manager": "kubectl"}]},
        "spec": {"tier": tier, "priority": priority, "subject": {"namespaces": {}},
            "ingress": [{"name": "deny-b", "action": "Deny",
                "from": [{"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "b"}}}]}]},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Applied",
            "message": "", "lastTransitionTime": "2026-11-20T09:20:11Z"}]}})
}

fn anp(name: &str) -> Value {
    json!({"apiVersion": GROUP_V1, "kind": "AdminNetworkPolicy",
        "metadata": {"name": name},
        "spec": {"priority": 5, "subject": {"namespaces": {}},
            "egress": [{"action": "Allow", "to": [{"networks": ["192.0.2.0/24"]}],
                "ports": [{"portNumber": {"port": 443}}]}]}})
}

fn banp() -> Value {
    json!({"apiVersion": GROUP_V1, "kind": "BaselineAdminNetworkPolicy",
        "metadata": {"name": "default"},
        "spec": {"subject": {"namespaces": {}},
            "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}})
}

fn admin_keys(c: &Cluster) -> Vec<String> {
    let mut keys: Vec<String> = c.admin_policies.iter().map(|p| p.key()).collect();
    keys.sort();
    keys
}

fn seed(fake: &FakeApi) {
    fake.apply_all(
        "namespaces",
        vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})],
    );
    fake.apply_all(
        "pods",
        vec![json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p1", "namespace": "a", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIP": "10.79.0.1"}})],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_policy_crds_installed_late_are_followed_and_their_policies_leave_when_removed() {
    let fake = FakeApi::start().await;
    seed(&fake);
    // No policy CRD at start: discovery of the group answers 404.
    let agent = start_agent(&fake, "agentadmin", Duration::from_millis(200)).await;
    eventually(&agent.seen, "the pod without admin policies", |c| {
        c.workloads.len() == 1 && c.admin_policies.is_empty()
    })
    .await;
    agent.wait_ready().await;
    assert_eq!(fake.requests_for("clusternetworkpolicies"), 0);
    let readiness = agent.watch_readiness();

    // The v1alpha2 CRD is installed with two policies; then the v1alpha1 ones.
    fake.apply_all(
        "clusternetworkpolicies",
        vec![
            cnp("admin-one", "Admin", 10),
            cnp("base-one", "Baseline", 20),
        ],
    );
    fake.serve_group(GROUP_V2, "clusternetworkpolicies", "ClusterNetworkPolicy");
    eventually(&agent.seen, "the ClusterNetworkPolicies", |c| {
        admin_keys(c) == ["cnp/admin-one", "cnp/base-one"]
    })
    .await;
    let c = kube_agent::last(&agent.seen).unwrap();
    let base = c
        .admin_policies
        .iter()
        .find(|p| p.name == "base-one")
        .unwrap();
    assert_eq!((base.tier, base.priority), (AdminTier::Baseline, 20));
    assert_eq!(base.ingress[0].name.as_deref(), Some("deny-b"));

    fake.apply("adminnetworkpolicies", anp("egress-443"));
    fake.apply("baselineadminnetworkpolicies", banp());
    fake.serve_group(GROUP_V1, "adminnetworkpolicies", "AdminNetworkPolicy");
    fake.serve_group(
        GROUP_V1,
        "baselineadminnetworkpolicies",
        "BaselineAdminNetworkPolicy",
    );
    eventually(&agent.seen, "every admin kind", |c| {
        admin_keys(c)
            == [
                "anp/egress-443",
                "banp/default",
                "cnp/admin-one",
                "cnp/base-one",
            ]
    })
    .await;

    // Changes are followed one by one.
    fake.delete("clusternetworkpolicies", "/base-one");
    eventually(&agent.seen, "a CNP deleted", |c| {
        admin_keys(c) == ["anp/egress-443", "banp/default", "cnp/admin-one"]
    })
    .await;

    // The v1alpha2 CRD goes (the client misses the DELETED events): its policies leave, the
    // v1alpha1 ones stay.
    fake.remove_group(GROUP_V2, "clusternetworkpolicies");
    eventually(&agent.seen, "the v1alpha2 policies left", |c| {
        admin_keys(c) == ["anp/egress-443", "banp/default"]
    })
    .await;
    // Reinstalled: followed again.
    fake.apply("clusternetworkpolicies", cnp("admin-two", "Admin", 1));
    fake.serve_group(GROUP_V2, "clusternetworkpolicies", "ClusterNetworkPolicy");
    eventually(&agent.seen, "the reinstalled CRD's policy", |c| {
        admin_keys(c) == ["anp/egress-443", "banp/default", "cnp/admin-two"]
    })
    .await;

    readiness.assert_always_ready(20);
    agent.stop().await;
}
