//! A Deckhouse VirtualMachine, the KubeVirt VirtualMachineInstance of the same name and address,
//! and its virt-launcher Pod are ONE workload for the agent, whichever source brings them and
//! however they are split across files or watches (the one folding rule of `netpol_k8s::fold`).
//!
//! The directory test is all real: a real agent process, real files, a real lab (network
//! namespaces, veths, TCP probes through the enforced node). The API test fakes ONLY the
//! Kubernetes API server (netpol-test-support's fake_apiserver); the watchers, loader, compiler and kernel (a
//! throwaway network namespace) are real. Both need root.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{wait_until, Agent};
use netpol_agent::real::{K8sLoader, KernelEnforcer, NftCompiler};
use netpol_agent::reconcile::StepError;
use netpol_agent::{AgentConfig, Compiled, Compiler, KubeConfig};
use netpol_core::{Cluster, WorkloadKind};
use netpol_dataplane::{nft, Lab, LabHost, LabSpec, Listing, ProbeProtocol};
use netpol_test_support::fake_apiserver::FakeApi;
use serde_json::{json, Value};

const NODE: &str = "virtlab-2";
const VM_IP: &str = "10.66.20.70";
const CLIENT_IP: &str = "10.66.20.10";

fn namespace() -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test-project"}})
}

fn vm() -> Value {
    json!({"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachine",
        "metadata": {"name": "vm-a", "namespace": "test-project", "labels": {"vm": "a"}},
        "spec": {"runPolicy": "AlwaysOn", "virtualMachineClassName": "generic"},
        "status": {"phase": "Running", "ipAddress": VM_IP, "nodeName": NODE}})
}

fn vmi() -> Value {
    json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
        "metadata": {"name": "vm-a", "namespace": "test-project",
            "labels": {"kubevirt.internal.virtualization.deckhouse.io/name": "vm-a"}},
        "spec": {"domain": {"devices": {}}},
        "status": {"phase": "Running", "nodeName": NODE,
            "interfaces": [{"name": "default", "ipAddress": VM_IP, "ipAddresses": [VM_IP]}]}})
}

fn launcher() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "virt-launcher-vm-a-7xk2p", "namespace": "test-project",
            "labels": {"kubevirt.io": "virt-launcher",
                "vm.kubevirt.internal.virtualization.deckhouse.io/name": "vm-a"}},
        "spec": {"nodeName": NODE, "containers": [{"name": "compute", "image": "virt-launcher"}]},
        "status": {"phase": "Running", "podIP": VM_IP}})
}

fn client() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "client", "namespace": "test-project", "labels": {"app": "client"}},
        "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Running", "podIP": CLIENT_IP}})
}

/// Only the client may reach the VM, and only on port 80.
fn policy() -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "vm-a-from-client", "namespace": "test-project"},
        "spec": {"podSelector": {"matchLabels": {"vm": "a"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                "ports": [{"port": 80}]}]}})
}

fn lab() -> Lab {
    let host = |name: &str, ip: &str, ports: Vec<u16>| LabHost {
        name: name.into(),
        node: Some(NODE.into()),
        addresses: vec![ip.parse().unwrap()],
        tcp_ports: ports,
        ..LabHost::default()
    };
    Lab::build(&LabSpec {
        nodes: vec![NODE.into()],
        hosts: vec![
            host("test-project/client", CLIENT_IP, vec![]),
            host("test-project/vm-a", VM_IP, vec![80, 8080]),
        ],
    })
    .unwrap()
}

fn open(lab: &Lab, port: u16) -> bool {
    let vm: IpAddr = VM_IP.parse().unwrap();
    lab.probe(
        "test-project/client",
        vm,
        ProbeProtocol::Tcp,
        port,
        Duration::from_millis(300),
    )
    .unwrap()
}

#[test]
fn a_vm_its_instance_and_its_launcher_in_separate_files_are_enforced_as_one_workload() {
    let lab = lab();
    let ns = lab.node_netns(NODE).unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    // One object per file (JSON is YAML), as `kubectl get -o yaml` per object would leave them.
    for (file, object) in [
        ("namespace.yaml", namespace()),
        ("vm.yaml", vm()),
        ("vmi.yaml", vmi()),
        ("launcher.yaml", launcher()),
        ("client.yaml", client()),
        ("policy.yaml", policy()),
    ] {
        std::fs::write(dir.path().join(file), object.to_string()).unwrap();
    }
    // The same directory loads as one VM in `netpol get/check/compile`.
    let loaded = netpol_k8s::load_paths(&[dir.path()], &netpol_k8s::LoadOptions::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let kinds: Vec<WorkloadKind> = loaded.cluster.workloads.iter().map(|w| w.kind).collect();
    assert_eq!(kinds, [WorkloadKind::Pod, WorkloadKind::VirtualMachine]);

    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("agent.log");
    let agent = Agent::start(
        &[
            "--node",
            NODE,
            "--dir",
            dir.path().to_str().unwrap(),
            "--netns",
            &ns,
            "--coalesce-ms",
            "20",
        ],
        &log,
    );
    let ready = agent.wait_ready(Duration::from_secs(20));
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        ready,
        "the agent never enforced (readyz: {:?}); log:\n{log_text}",
        agent.get("/readyz")
    );
    let metrics = agent.get("/metrics").unwrap().1;
    assert_eq!(
        common::metric_value(&metrics, "netpol_workloads{scope=\"total\"}"),
        Some(2.0),
        "the VM (instance and launcher folded in) and the client"
    );
    assert_eq!(
        common::metric_value(&metrics, "netpol_workloads{scope=\"local\"}"),
        Some(2.0)
    );
    // Enforced in the node's kernel: the client reaches the VM on 80, nothing else is open.
    assert!(open(&lab, 80), "the policy allows client -> vm-a:80");
    assert!(!open(&lab, 8080), "vm-a is isolated: 8080 is not allowed");
    drop(agent);
}

/// Delegates to the real compiler and keeps every cluster it compiled.
struct Recording {
    real: NftCompiler,
    seen: Arc<Mutex<Vec<Cluster>>>,
}

impl Compiler for Recording {
    fn compile(&self, cluster: &Cluster, node: &str) -> Result<Compiled, StepError> {
        self.seen.lock().unwrap().push(cluster.clone());
        self.real.compile(cluster, node)
    }
}

/// `object` as the API serves it, with the metadata noise the API adds.
fn api_object(mut object: Value) -> Value {
    object["metadata"]["managedFields"] = json!([{"manager": "virtualization-controller"}]);
    object["metadata"]["annotations"] = json!({"kubevirt.io/latest-observed-api-version": "v1"});
    object
}

/// An agent following `fake`, enforcing in a throwaway network namespace.
struct ApiAgent {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Cluster>>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), netpol_agent::AgentError>>,
    netns: netpol_dataplane::Netns,
}

impl ApiAgent {
    fn start(fake: &FakeApi) -> ApiAgent {
        netpol_agent::logging::init(netpol_agent::LogFormat::Text);
        let netns = netpol_dataplane::Netns::create("agentfold").unwrap();
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut config = AgentConfig::new(NODE);
        config.kube = Some(KubeConfig {
            api_server: Some(fake.url()),
            ..KubeConfig::in_cluster()
        });
        config.netns = Some(netns.name().to_string());
        config.listen = addr;
        config.coalesce_window = Duration::from_millis(20);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let compiler = Arc::new(Recording {
            real: NftCompiler::new(config.eval_options),
            seen: seen.clone(),
        });
        let enforcer = Arc::new(KernelEnforcer::new(config.netns.clone()));
        let loader = Arc::new(K8sLoader::new());
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(netpol_agent::run_with(
            config, loader, compiler, enforcer, stop_rx,
        ));
        ApiAgent {
            addr,
            seen,
            stop,
            task,
            netns,
        }
    }

    /// Waits until `/readyz` says the first ruleset was compiled AND applied; its last answer.
    async fn wait_enforcing(&self) -> (bool, Option<(u16, String)>) {
        let addr = self.addr;
        tokio::task::spawn_blocking(move || {
            let ok = wait_until(Duration::from_secs(20), || {
                common::http_get(addr, "/readyz").is_some_and(|(s, _)| s == 200)
            });
            (ok.is_some(), common::http_get(addr, "/readyz"))
        })
        .await
        .unwrap()
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        drop(self.netns);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_its_instance_and_its_launcher_from_three_watches_are_enforced_as_one_workload() {
    // THE API SERVER IS A FAKE (netpol-test-support's fake_apiserver); both VM CRDs are installed.
    let fake = FakeApi::start().await;
    fake.serve_group(
        "virtualization.deckhouse.io/v1alpha2",
        "virtualmachines",
        "VirtualMachine",
    );
    fake.serve_group(
        "kubevirt.io/v1",
        "virtualmachineinstances",
        "VirtualMachineInstance",
    );
    fake.apply("namespaces", api_object(namespace()));
    fake.apply_all("pods", vec![api_object(launcher()), api_object(client())]);
    fake.apply("networkpolicies", api_object(policy()));
    fake.apply("virtualmachines", api_object(vm()));
    fake.apply("virtualmachineinstances", api_object(vmi()));
    let agent = ApiAgent::start(&fake);

    let (ready, readyz) = agent.wait_enforcing().await;
    assert!(ready, "the agent never enforced: {readyz:?}");
    let last = agent.seen.lock().unwrap().last().cloned().unwrap();
    let workloads: Vec<(WorkloadKind, String, Option<&str>)> = last
        .workloads
        .iter()
        .map(|w| (w.kind, w.key(), w.node.as_deref()))
        .collect();
    assert_eq!(
        workloads,
        [
            (WorkloadKind::Pod, "test-project/client".into(), Some(NODE)),
            (
                WorkloadKind::VirtualMachine,
                "test-project/vm-a".into(),
                Some(NODE)
            ),
        ]
    );
    // The node's kernel holds the VM's address in the enforced table.
    let ns = agent.netns.name();
    let listing = nft::list_table_with(Some(ns), "inet", "netpol", Listing::Full)
        .unwrap()
        .expect("the table is in the kernel");
    assert!(listing.contains(VM_IP), "{listing}");
    agent.stop().await;
}
