//! The agent following the Kubernetes API. THE API SERVER IS FAKED (netpol-test-support's fake_apiserver): an
//! in-process axum server speaking list/watch with resourceVersions, pagination, bookmarks,
//! ending watches and 410 Gone. Everything else is real: kube-rs watchers, the netpol-k8s
//! loader, the netpol-nft compiler and the kernel (a scratch network namespace). Needs root.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod kube_agent;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube_agent::{eventually, last, start_agent, Recording};
use netpol_agent::real::{K8sLoader, KernelEnforcer, NftCompiler};
use netpol_agent::{AgentConfig, KubeConfig};
use netpol_core::{Cluster, WorkloadKind};
use netpol_test_support::fake_apiserver::FakeApi;
use serde_json::{json, Value};

fn pod(name: &str, ip: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "a", "labels": labels,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox", "ports": [{"name": "http", "containerPort": 80}]}]},
        "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}})
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"team": name}}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

fn policy(name: &str, app: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "a"},
        "spec": {"podSelector": {"matchLabels": {"app": app}}, "ingress": [{"ports": [{"port": 80}]}]}})
}

fn vm(name: &str, ip: &str, node: &str) -> Value {
    json!({"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": "a", "labels": {"vm": name}},
        "spec": {"cpu": {"cores": 1}, "runPolicy": "AlwaysOn"},
        "status": {"phase": "Running", "ipAddress": ip, "nodeName": node, "stats": {"x": 1}}})
}

fn pods(c: &Cluster) -> Vec<String> {
    c.workloads
        .iter()
        .filter(|w| w.kind == WorkloadKind::Pod)
        .map(|w| w.name.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_follows_every_watched_kind_and_never_applies_a_partial_relist() {
    netpol_agent::logging::init(netpol_agent::LogFormat::Text);
    let fake = FakeApi::start().await;
    // Deckhouse VMs are served; the KubeVirt VMI CRD is missing (logged, not fatal).
    fake.serve_group(
        "virtualization.deckhouse.io/v1alpha2",
        "virtualmachines",
        "VirtualMachine",
    );
    fake.apply_all("namespaces", vec![namespace("a")]);
    fake.apply_all(
        "pods",
        vec![
            pod("p1", "10.77.0.1", json!({"app": "web", "gen": "1"})),
            pod("p2", "10.77.0.2", json!({"app": "web", "gen": "1"})),
            pod("p3", "10.77.0.3", json!({"app": "db", "gen": "1"})),
            // A launcher pod holding the VM's address: the VM is the workload.
            pod(
                "virt-launcher-vm1",
                "10.77.0.10",
                json!({"kubevirt.internal.virtualization.deckhouse.io/name": "vm1"}),
            ),
        ],
    );
    fake.apply_all("networkpolicies", vec![policy("web", "web")]);
    fake.apply_all("virtualmachines", vec![vm("vm1", "10.77.0.10", "n1")]);

    let netns = netpol_dataplane::Netns::create("agentkube").unwrap();
    let mut config = AgentConfig::new("n1");
    config.kube = Some(KubeConfig {
        api_server: Some(fake.url()),
        ..KubeConfig::in_cluster()
    });
    config.netns = Some(netns.name().to_string());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.coalesce_window = Duration::from_millis(20);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let compiler = Arc::new(Recording {
        real: NftCompiler::new(config.eval_options),
        seen: seen.clone(),
    });
    let loader = Arc::new(K8sLoader::new());
    let enforcer = Arc::new(KernelEnforcer::new(config.netns.clone()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(netpol_agent::run_with(
        config, loader, compiler, enforcer, stop_rx,
    ));

    // Initial lists of every kind, then one consistent view.
    eventually(&seen, "initial state", |c| {
        pods(c) == ["p1", "p2", "p3"] && c.policies.len() == 1
    })
    .await;
    let c = last(&seen).unwrap();
    let the_vm = c
        .workloads
        .iter()
        .find(|w| w.kind == WorkloadKind::VirtualMachine)
        .expect("the VM is a workload");
    assert_eq!(
        (the_vm.name.as_str(), the_vm.node.as_deref()),
        ("vm1", Some("n1"))
    );
    assert_eq!(
        c.namespace("a")
            .unwrap()
            .labels
            .get("team")
            .map(String::as_str),
        Some("a")
    );
    assert!(!c.namespace("a").unwrap().implicit);
    // The compile is recorded just before the apply: wait for the kernel.
    let ns_name = netns.name().to_string();
    assert!(
        common::wait_until(Duration::from_secs(5), || {
            netpol_dataplane::nft::table_exists(Some(&ns_name), "inet", "netpol").unwrap()
        })
        .is_some(),
        "the ruleset is in the kernel"
    );

    // Creates, updates and deletes of every kind.
    fake.apply(
        "pods",
        pod("p4", "10.77.0.4", json!({"app": "web", "gen": "1"})),
    );
    eventually(&seen, "pod created", |c| {
        pods(c).contains(&"p4".to_string())
    })
    .await;
    fake.apply(
        "pods",
        pod("p1", "10.77.0.1", json!({"app": "db", "gen": "1"})),
    );
    eventually(&seen, "pod updated", |c| {
        c.workloads
            .iter()
            .any(|w| w.name == "p1" && w.labels.get("app").map(String::as_str) == Some("db"))
    })
    .await;
    fake.delete("pods", "a/p2");
    eventually(&seen, "pod deleted", |c| {
        !pods(c).contains(&"p2".to_string())
    })
    .await;
    fake.apply("networkpolicies", policy("db", "db"));
    eventually(&seen, "policy created", |c| c.policies.len() == 2).await;
    fake.delete("networkpolicies", "a/web");
    eventually(&seen, "policy deleted", |c| {
        c.policies
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            == ["db"]
    })
    .await;
    fake.apply("namespaces", namespace("b"));
    eventually(&seen, "namespace created", |c| {
        c.namespace("b").is_some_and(|n| !n.implicit)
    })
    .await;
    fake.delete("namespaces", "/b");
    eventually(&seen, "namespace deleted", |c| c.namespace("b").is_none()).await;
    // Live migration: the VM moves to n2 (two launcher pods would hold its address meanwhile).
    fake.apply(
        "pods",
        pod("virt-launcher-vm1-target", "10.77.0.10", json!({"x": "y"})),
    );
    fake.apply("virtualmachines", vm("vm1", "10.77.0.10", "n2"));
    eventually(&seen, "vm migrated", |c| {
        c.workloads
            .iter()
            .any(|w| w.name == "vm1" && w.node.as_deref() == Some("n2"))
    })
    .await;
    assert!(!pods(&last(&seen).unwrap())
        .iter()
        .any(|p| p.starts_with("virt-launcher")));
    // A bad object is skipped with a warning; the watch goes on.
    fake.apply("pods", pod("bad", "not-an-ip", json!({"app": "web"})));
    fake.apply(
        "pods",
        pod("p5", "10.77.0.5", json!({"app": "web", "gen": "1"})),
    );
    eventually(&seen, "watch goes on after a bad object", |c| {
        pods(c).contains(&"p5".to_string())
    })
    .await;
    assert!(!pods(&last(&seen).unwrap()).contains(&"bad".to_string()));
    fake.delete("pods", "a/bad");
    // Also wait across an ended watch (lifetime 800 ms): the client re-watches from its bookmark.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    fake.apply(
        "pods",
        pod("p6", "10.77.0.6", json!({"app": "web", "gen": "1"})),
    );
    eventually(&seen, "event after a re-watch", |c| {
        pods(c).contains(&"p6".to_string())
    })
    .await;

    // 410 Gone with changes only a relist can see; the relist is paged slowly (1 object per
    // 150 ms page) while the agent coalesces for only 20 ms: acting on InitApply would show.
    fake.set_paging(1, Duration::from_millis(150));
    let before = seen.lock().unwrap().len();
    fake.expire_and(&["pods"], |apply| {
        apply(
            "pods",
            vec![
                pod("p1", "10.77.0.1", json!({"app": "db", "gen": "2"})),
                pod("p3", "10.77.0.3", json!({"app": "db", "gen": "2"})),
                pod("p4", "10.77.0.4", json!({"app": "web", "gen": "2"})),
                pod("p5", "10.77.0.5", json!({"app": "web", "gen": "2"})),
                pod("p6", "10.77.0.6", json!({"app": "web", "gen": "2"})),
            ],
        );
    });
    // Keep other kinds busy so that syncs happen while the pod relist is in flight.
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        fake.apply("networkpolicies", policy(&format!("extra{i}"), "none"));
    }
    eventually(&seen, "relist applied", |c| {
        c.workloads
            .iter()
            .filter(|w| w.labels.get("gen").map(String::as_str) == Some("2"))
            .count()
            == 5
    })
    .await;
    let (lists, watches, gone) = fake.stats();
    assert!(gone >= 1, "the fake sent 410 Gone");
    let after: Vec<Cluster> = seen.lock().unwrap()[before..].to_vec();
    assert!(
        after.len() >= 3,
        "syncs happened during the relist: {}",
        after.len()
    );
    for c in &after {
        let gens: Vec<&str> = c
            .workloads
            .iter()
            .filter(|w| w.kind == WorkloadKind::Pod)
            .filter_map(|w| w.labels.get("gen").map(String::as_str))
            .collect();
        assert!(
            gens.iter().all(|g| *g == "1") || gens.iter().all(|g| *g == "2"),
            "a partial relist was compiled: {gens:?}"
        );
    }
    eprintln!("MEASURED fake API: {lists} list requests, {watches} watch requests, {gone} x 410; {} syncs during the relist", after.len());

    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // Default: the rules stay after shutdown.
    assert!(netpol_dataplane::nft::table_exists(Some(netns.name()), "inet", "netpol").unwrap());
}

fn vms(c: &Cluster) -> Vec<String> {
    c.workloads
        .iter()
        .filter(|w| w.kind == WorkloadKind::VirtualMachine)
        .map(|w| w.name.clone())
        .collect()
}

const VM_GROUP: &str = "virtualization.deckhouse.io/v1alpha2";

/// Pods p1 (app=web) and the launcher pod of vm1 (10.78.0.10), policy `web`, namespace `a`.
fn seed_pods_and_policy(fake: &FakeApi) {
    fake.apply_all("namespaces", vec![namespace("a")]);
    fake.apply_all(
        "pods",
        vec![
            pod("p1", "10.78.0.1", json!({"app": "web"})),
            pod(
                "virt-launcher-vm1",
                "10.78.0.10",
                json!({"kubevirt.internal.virtualization.deckhouse.io/name": "vm1"}),
            ),
        ],
    );
    fake.apply_all("networkpolicies", vec![policy("web", "web")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_crd_installed_after_start_is_followed_without_the_agent_ever_becoming_unready() {
    let fake = FakeApi::start().await;
    // Neither VM CRD is installed: discovery of both groups answers 404.
    seed_pods_and_policy(&fake);
    let agent = start_agent(&fake, "agentcrdlate", Duration::from_millis(200)).await;

    // Ready and enforcing without the CRD: the launcher pod is enforced as a pod.
    eventually(&agent.seen, "initial state without VMs", |c| {
        pods(c) == ["p1", "virt-launcher-vm1"] && c.policies.len() == 1 && vms(c).is_empty()
    })
    .await;
    agent.wait_ready().await;
    let ns_name = agent.netns.name().to_string();
    assert!(
        netpol_dataplane::nft::table_exists(Some(&ns_name), "inet", "netpol").unwrap(),
        "the ruleset is in the kernel"
    );
    assert_eq!(
        fake.requests_for("virtualmachines"),
        0,
        "nothing lists a kind that is not served"
    );
    let readiness = agent.watch_readiness();

    // Install the CRD with two VMs. Their list is paged slowly: 1 object per page, each page
    // answered after 250 ms, so the list is in flight for at least 500 ms.
    fake.set_paging(1, Duration::from_millis(250));
    let before = agent.seen.lock().unwrap().len();
    fake.apply_all(
        "virtualmachines",
        vec![vm("vm1", "10.78.0.10", "n1"), vm("vm2", "10.78.0.11", "n1")],
    );
    fake.serve_group(VM_GROUP, "virtualmachines", "VirtualMachine");
    // Within the recheck interval (200 ms) the agent asks discovery again and starts listing.
    let listing = tokio::task::spawn_blocking({
        let fake = fake.clone();
        move || {
            common::wait_until(Duration::from_secs(5), || {
                fake.requests_for("virtualmachines") >= 1
            })
        }
    })
    .await
    .unwrap();
    assert!(listing.is_some(), "the agent never listed the new kind");
    // While that list is in flight, other changes must still be enforced (a blocking source
    // would hold them back until the list ends), and no sync may see one VM without the other.
    fake.apply("networkpolicies", policy("during-list", "none"));
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        fake.apply("networkpolicies", policy(&format!("extra{i}"), "none"));
    }
    eventually(&agent.seen, "the late VMs are compiled", |c| {
        vms(c) == ["vm1", "vm2"] && c.policies.len() == 8
    })
    .await;
    // The VM took over its launcher pod's address.
    assert_eq!(pods(&last(&agent.seen).unwrap()), ["p1"]);
    assert!(
        fake.requests_for("virtualmachines") >= 2,
        "the VMs were listed in pages"
    );

    let after: Vec<Cluster> = agent.seen.lock().unwrap()[before..].to_vec();
    for c in &after {
        assert!(
            vms(c).is_empty() || vms(c).len() == 2,
            "a partial VM list was compiled: {:?}",
            vms(c)
        );
    }
    assert!(
        after
            .iter()
            .any(|c| vms(c).is_empty() && c.policies.iter().any(|p| p.name == "during-list")),
        "a change made while the new kind was listing waited for its list"
    );

    // Later changes of the new kind are followed one by one.
    fake.delete("virtualmachines", "a/vm2");
    eventually(&agent.seen, "a VM deleted", |c| vms(c) == ["vm1"]).await;

    readiness.assert_always_ready(20);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_vm_crd_ends_its_watch_and_its_vms_leave_until_it_is_reinstalled() {
    let fake = FakeApi::start().await;
    fake.serve_group(VM_GROUP, "virtualmachines", "VirtualMachine");
    seed_pods_and_policy(&fake);
    fake.apply("virtualmachines", vm("vm1", "10.78.0.10", "n1"));
    let agent = start_agent(&fake, "agentcrdgone", Duration::from_millis(200)).await;
    eventually(&agent.seen, "initial state with the VM", |c| {
        vms(c) == ["vm1"] && pods(c) == ["p1"]
    })
    .await;
    agent.wait_ready().await;
    let readiness = agent.watch_readiness();

    // The CRD goes and the client misses the DELETED events: only the 404s tell.
    fake.remove_group(VM_GROUP, "virtualmachines");
    eventually(
        &agent.seen,
        "the VM left and its launcher pod is a pod again",
        |c| vms(c).is_empty() && pods(c) == ["p1", "virt-launcher-vm1"],
    )
    .await;
    // The watch ended instead of retrying: no list or watch of the kind for 2 s, while
    // discovery is asked about every 200 ms for each missing CRD kind (not hot either): the VM
    // kinds and the admin policy kinds, none of which this fake serves now.
    let (requests, discovery) = (
        fake.requests_for("virtualmachines"),
        fake.discovery_requests(),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fake.requests_for("virtualmachines"), requests);
    let asked = fake.discovery_requests() - discovery;
    let missing_kinds = netpol_k8s::schema::KINDS.iter().filter(|k| k.crd).count() as u64;
    assert!(
        (3..=11 * missing_kinds).contains(&asked),
        "discovery asked {asked} times in 2 s for {missing_kinds} missing CRD kinds"
    );

    // Reinstalled: followed again.
    fake.apply("virtualmachines", vm("vm1", "10.78.0.10", "n1"));
    fake.serve_group(VM_GROUP, "virtualmachines", "VirtualMachine");
    eventually(&agent.seen, "the reinstalled VM", |c| {
        vms(c) == ["vm1"] && pods(c) == ["p1"]
    })
    .await;

    readiness.assert_always_ready(20);
    agent.stop().await;
}
