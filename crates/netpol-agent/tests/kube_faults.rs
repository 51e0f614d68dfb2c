//! The agent on the API server's bad days. THE API SERVER IS THE ONE FAKED PART
//! (netpol-test-support's fake_apiserver, told to fail on purpose: discovery answering 500, connections reset,
//! lists never answered, watches gone silent, a wrong token, RBAC refusals, certificates that
//! must not be trusted). Everything else is real: the kube-rs client, the netpol-k8s loader, the
//! netpol-nft compiler and the kernel (a scratch network namespace). Needs root.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netpol_agent::real::{K8sLoader, KernelEnforcer, NftCompiler};
use netpol_agent::reconcile::StepError;
use netpol_agent::{AgentConfig, Compiled, Compiler, KubeConfig};
use netpol_core::{Cluster, WorkloadKind};
use netpol_dataplane::{Listing, Netns};
use netpol_test_support::fake_apiserver::{cert_path, FakeApi};
use serde_json::{json, Value};

/// Delegates to the real compiler and keeps every cluster it was asked to compile.
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

fn pod(name: &str, ip: &str, app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "a", "labels": {"app": app}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
        "status": {"phase": "Running", "podIP": ip}})
}

fn policy(name: &str, app: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "a"},
        "spec": {"podSelector": {"matchLabels": {"app": app}}, "ingress": [{"ports": [{"port": 80}]}]}})
}

fn vm(name: &str, ip: &str) -> Value {
    json!({"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": "a", "labels": {"vm": name}},
        "status": {"phase": "Running", "ipAddress": ip, "nodeName": "n1"}})
}

const VM_GROUP: &str = "virtualization.deckhouse.io/v1alpha2";

/// Namespace `a`, pod p1 (app=web), policy `web`, and VM vm1 with its CRD installed.
fn seed(fake: &FakeApi) {
    fake.serve_group(VM_GROUP, "virtualmachines", "VirtualMachine");
    fake.apply(
        "namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}),
    );
    fake.apply("pods", pod("p1", "10.79.0.1", "web"));
    fake.apply("networkpolicies", policy("web", "web"));
    fake.apply("virtualmachines", vm("vm1", "10.79.0.10"));
}

fn vms(c: &Cluster) -> Vec<String> {
    names(c, WorkloadKind::VirtualMachine)
}

fn names(c: &Cluster, kind: WorkloadKind) -> Vec<String> {
    c.workloads
        .iter()
        .filter(|w| w.kind == kind)
        .map(|w| w.name.clone())
        .collect()
}

fn policies(c: &Cluster) -> Vec<String> {
    c.policies.iter().map(|p| p.name.clone()).collect()
}

/// Short timeouts so that the faults show within a test's patience.
fn fast(fake: &FakeApi) -> KubeConfig {
    KubeConfig {
        api_server: Some(fake.url()),
        request_timeout: Duration::from_millis(500),
        watch_idle_timeout: Duration::from_secs(1),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        crd_recheck_interval: Duration::from_millis(200),
        ..KubeConfig::in_cluster()
    }
}

struct Running {
    seen: Arc<Mutex<Vec<Cluster>>>,
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), netpol_agent::AgentError>>,
}

impl Running {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    async fn get(&self, path: &'static str) -> (u16, String) {
        let addr = self.addr;
        tokio::task::spawn_blocking(move || common::http_get(addr, path))
            .await
            .unwrap()
            .unwrap_or((0, "no answer".into()))
    }

    /// Polls `/readyz` until `f` holds for its answer; returns that answer.
    async fn readyz_until(&self, what: &str, f: impl Fn(u16, &str) -> bool) -> String {
        let mut last = (0, String::new());
        for _ in 0..500 {
            last = self.get("/readyz").await;
            if f(last.0, &last.1) {
                return last.1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("/readyz never {what}: last answer {last:?}");
    }

    fn last(&self) -> Option<Cluster> {
        self.seen.lock().unwrap().last().cloned()
    }

    fn compiles(&self) -> Vec<Cluster> {
        self.seen.lock().unwrap().clone()
    }

    async fn eventually(&self, what: &str, f: impl Fn(&Cluster) -> bool) {
        for _ in 0..500 {
            if self.last().is_some_and(|c| f(&c)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "never compiled: {what}; last = {:?}",
            self.last().map(|c| (vms(&c), policies(&c)))
        );
    }
}

fn start(kube: KubeConfig, netns: &Netns) -> Running {
    netpol_agent::logging::init(netpol_agent::LogFormat::Text);
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = AgentConfig::new("n1");
    config.kube = Some(kube);
    config.netns = Some(netns.name().to_string());
    config.listen = addr;
    config.coalesce_window = Duration::from_millis(20);
    config.denied_flow_log = false;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let compiler = Arc::new(Recording {
        real: NftCompiler::new(config.eval_options),
        seen: seen.clone(),
    });
    let enforcer = Arc::new(KernelEnforcer::new(config.netns.clone()));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(netpol_agent::run_with(
        config,
        Arc::new(K8sLoader::new()),
        compiler,
        enforcer,
        stop_rx,
    ));
    Running {
        seen,
        addr,
        stop,
        task,
    }
}

fn table(netns: &Netns) -> Option<String> {
    netpol_dataplane::nft::list_table_with(Some(netns.name()), "inet", "netpol", Listing::Full)
        .unwrap()
}

/// Runs an agent until it enforced vm1, then stops it: its rules stay in the kernel.
async fn enforce_once(fake: &FakeApi, netns: &Netns) -> String {
    let first = start(fast(fake), netns);
    first
        .eventually("vm1 enforced", |c| vms(c) == ["vm1"])
        .await;
    first.readyz_until("ready", |s, _| s == 200).await;
    first.stop().await;
    table(netns).expect("the rules stay after a stop")
}

/// A restart while discovery cannot be read (`fault` on, then `fix`ed): the VM kind is
/// "unknown", not "missing": nothing is applied (the previous rules stay, VMs included) until
/// discovery answers, `/readyz` says it waits for the VM kind and why, and the first ruleset
/// applied has the VM.
async fn restart_during(
    tag: &str,
    fault: impl Fn(&FakeApi),
    fix: impl Fn(&FakeApi),
    says: &[&str],
) {
    let fake = FakeApi::start().await;
    seed(&fake);
    let netns = Netns::create(tag).unwrap();
    let before = enforce_once(&fake, &netns).await;
    fault(&fake);
    let agent = start(fast(&fake), &netns);
    let body = agent
        .readyz_until("names the VM kind", |s, b| {
            s == 503 && b.contains("kube:virtualmachines") && says.iter().all(|w| b.contains(w))
        })
        .await;
    // Give a wrong "not installed" decision every chance to show.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        agent.compiles().is_empty(),
        "applied during the outage ({body})"
    );
    assert_eq!(
        table(&netns).as_deref(),
        Some(before.as_str()),
        "the rules in force changed"
    );
    fix(&fake);
    agent
        .eventually("vm1 enforced", |c| vms(c) == ["vm1"])
        .await;
    agent.readyz_until("ready", |s, _| s == 200).await;
    for c in agent.compiles() {
        assert_eq!(vms(&c), ["vm1"], "a ruleset without the VM was compiled");
    }
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_discovery_answers_500_keeps_the_rules_in_force_until_it_answers() {
    restart_during(
        "kfdisc500",
        |f| f.set_faults(|x| x.discovery_status = Some(500)),
        |f| f.set_faults(|x| x.discovery_status = None),
        &["discovery failed", "500"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_every_connection_is_reset_keeps_the_rules_in_force() {
    restart_during(
        "kfreset",
        |f| f.reset_connections(true),
        |f| f.reset_connections(false),
        &["discovery failed"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_keeps_the_vm_kind_among_what_readiness_waits_for() {
    restart_during(
        "kftoken",
        |f| f.set_faults(|x| x.token = Some("the-right-one".into())),
        |f| f.set_faults(|x| x.token = None),
        &["401 Unauthorized", "credentials"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_that_is_never_answered_is_reported_on_readyz_and_retried() {
    let fake = FakeApi::start().await;
    seed(&fake);
    fake.apply("networkpolicies", policy("doomed", "db"));
    let netns = Netns::create("kfhung").unwrap();
    let agent = start(fast(&fake), &netns);
    agent
        .eventually("both policies", |c| policies(c) == ["doomed", "web"])
        .await;
    agent.readyz_until("ready", |s, _| s == 200).await;

    // The next list of policies hangs; a 410 forces one, and the deletion only a list can see.
    fake.set_faults(|f| {
        f.hung_lists.insert("networkpolicies".into());
    });
    let lists = fake.lists_for("networkpolicies");
    fake.expire_and(&["networkpolicies"], |_| {});
    fake.delete("networkpolicies", "a/doomed");
    let body = agent
        .readyz_until("names the stuck kind", |s, b| {
            s == 503 && b.contains("kube:networkpolicies: list not answered within 0.5 s")
        })
        .await;
    assert!(body.contains(" s ago)"), "{body}");
    // Retried while stuck, not abandoned.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        fake.lists_for("networkpolicies") >= lists + 2,
        "the hung list was not retried"
    );

    fake.set_faults(|f| f.hung_lists.clear());
    agent
        .eventually("the deletion enforced", |c| policies(c) == ["web"])
        .await;
    agent.readyz_until("ready again", |s, _| s == 200).await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_watch_is_restarted_from_its_resource_version_after_the_idle_timeout() {
    let fake = FakeApi::start().await;
    seed(&fake);
    let netns = Netns::create("kfsilent").unwrap();
    let agent = start(fast(&fake), &netns);
    agent
        .eventually("initial state", |c| vms(c) == ["vm1"])
        .await;
    agent.readyz_until("ready", |s, _| s == 200).await;
    let queries = fake.watch_queries("pods");
    assert!(!queries.is_empty());
    assert!(
        queries
            .iter()
            .all(|q| q.get("allowWatchBookmarks").map(String::as_str) == Some("true")),
        "watches must ask for bookmarks: {queries:?}"
    );

    // The pods watch goes silent on a live connection; a pod created meanwhile is not sent.
    fake.set_faults(|f| {
        f.silent_watches.insert("pods".into());
    });
    fake.end_watches();
    tokio::time::sleep(Duration::from_millis(200)).await;
    fake.apply("pods", pod("p2", "10.79.0.2", "web"));
    let body = agent
        .readyz_until("names the silent kind", |s, b| {
            s == 503 && b.contains("kube:pods: watch sent nothing")
        })
        .await;
    assert!(body.contains("since "), "{body}");

    let lists = fake.lists_for("pods");
    fake.set_faults(|f| f.silent_watches.clear());
    agent
        .eventually("the pod created during the silence", |c| {
            names(c, WorkloadKind::Pod) == ["p1", "p2"]
        })
        .await;
    agent.readyz_until("ready again", |s, _| s == 200).await;
    assert_eq!(
        fake.lists_for("pods"),
        lists,
        "restarted from its resourceVersion, without a relist"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_long_outage_every_kind_is_followed_again_within_the_backoff_cap() {
    let fake = FakeApi::start().await;
    seed(&fake);
    let netns = Netns::create("kfoutage").unwrap();
    // The default backoff (250 ms doubling to its 4 s cap), as deployed.
    let kube = KubeConfig {
        backoff_initial: KubeConfig::in_cluster().backoff_initial,
        backoff_max: KubeConfig::in_cluster().backoff_max,
        ..fast(&fake)
    };
    let cap = kube.backoff_max;
    let agent = start(kube, &netns);
    agent
        .eventually("initial state", |c| vms(c) == ["vm1"])
        .await;
    agent.readyz_until("ready", |s, _| s == 200).await;

    // 13 s without an API: long enough for an uncapped doubling backoff to reach 12.8 s.
    fake.reset_connections(true);
    agent
        .readyz_until("reports the outage", |s, b| {
            s == 503 && b.contains("kube:pods")
        })
        .await;
    tokio::time::sleep(Duration::from_secs(13)).await;
    fake.reset_connections(false);
    let back = Instant::now();
    fake.apply("networkpolicies", policy("after-outage", "db"));
    agent
        .eventually("a change made once the API is back", |c| {
            policies(c).contains(&"after-outage".to_string())
        })
        .await;
    let took = back.elapsed();
    // The cap, plus a generous allowance for the requests and the sync themselves.
    assert!(took <= cap + Duration::from_secs(2), "back after {took:?}");
    agent.readyz_until("ready again", |s, _| s == 200).await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_invalid_at_restart_is_enforced_as_its_last_good_version_from_the_state_file() {
    let fake = FakeApi::start().await;
    seed(&fake);
    let state = tempfile::tempdir().unwrap();
    let kube = KubeConfig {
        state_dir: Some(state.path().to_path_buf()),
        ..fast(&fake)
    };
    let netns = Netns::create("kflastgood").unwrap();
    let ip_of = |c: &Cluster| {
        c.workloads
            .iter()
            .find(|w| w.name == "vm1")
            .map(|w| format!("{:?}", w.addresses))
    };
    let first = start(kube.clone(), &netns);
    first.eventually("vm1", |c| vms(c) == ["vm1"]).await;
    let good = ip_of(&first.last().unwrap());
    // vm1's status turns invalid: the running agent keeps its last good version.
    fake.apply("virtualmachines", vm("vm1", "not-an-ip"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(vms(&first.last().unwrap()), ["vm1"]);
    // Saved within a second of the change (a kill -9 loses at most that).
    let file = state.path().join(netpol_agent::store::last_good::FILE_NAME);
    let saved = tokio::task::spawn_blocking(move || {
        common::wait_until(Duration::from_secs(3), || {
            std::fs::read_to_string(&file).is_ok_and(|t| t.contains("10.79.0.10"))
        })
    });
    assert!(
        saved.await.unwrap().is_some(),
        "the state file was not written"
    );
    first.stop().await;

    // A restart while it is still invalid: the state file has its last good version.
    let second = start(kube, &netns);
    second
        .eventually("vm1 from the state file", |c| vms(c) == ["vm1"])
        .await;
    assert_eq!(ip_of(&second.last().unwrap()), good);
    for c in second.compiles() {
        assert_eq!(vms(&c), ["vm1"], "vm1 was dropped at the restart");
    }
    let metric = "netpol_source_last_good_objects{source=\"kube:virtualmachines\"}";
    let (_, metrics) = second.get("/metrics").await;
    assert_eq!(
        common::metric_value(&metrics, metric),
        Some(1.0),
        "{metrics}"
    );

    // A valid version arrives: it is enforced, and nothing is held any more.
    fake.apply("virtualmachines", vm("vm1", "10.79.0.11"));
    second
        .eventually("the new valid version", |c| {
            ip_of(c).is_some_and(|ip| ip.contains("10.79.0.11"))
        })
        .await;
    let (_, metrics) = second.get("/metrics").await;
    assert_eq!(common::metric_value(&metrics, metric), Some(0.0));
    second.stop().await;
}

/// A kubeconfig for `fake` trusting `ca` (a file of `certs/`).
fn kubeconfig(dir: &std::path::Path, fake: &FakeApi, ca: &str) -> PathBuf {
    let path = dir.join(format!("kubeconfig-{ca}"));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n",
        fake.url(),
        cert_path(ca).display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_that_cannot_be_trusted_are_named_for_what_is_wrong_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let netns = Netns::create("kftls").unwrap();
    let cases = [
        (
            "server",
            "other-ca.pem",
            "not trusted by the CA of the kubeconfig",
        ),
        ("expired", "ca.pem", "certificate has expired"),
        ("wrong-host", "ca.pem", "not valid for the host name"),
    ];
    for (cert, ca, says) in cases {
        let fake = FakeApi::start_tls(cert).await;
        seed(&fake);
        let kube = KubeConfig {
            api_server: None,
            kubeconfig: Some(kubeconfig(dir.path(), &fake, ca)),
            ..fast(&fake)
        };
        let agent = start(kube, &netns);
        agent
            .readyz_until(&format!("says {says:?}"), |s, b| {
                s == 503 && b.contains(says)
            })
            .await;
        agent.stop().await;
    }
    // The same kubeconfig with the right CA and certificate works.
    let fake = FakeApi::start_tls("server").await;
    seed(&fake);
    let kube = KubeConfig {
        api_server: None,
        kubeconfig: Some(kubeconfig(dir.path(), &fake, "ca.pem")),
        ..fast(&fake)
    };
    let agent = start(kube, &netns);
    agent
        .eventually("enforced over https", |c| vms(c) == ["vm1"])
        .await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rbac_refusal_names_the_verb_and_the_resource_and_requests_name_the_node() {
    let fake = FakeApi::start().await;
    seed(&fake);
    fake.set_faults(|f| {
        f.forbidden.insert(("pods".into(), "list".into()));
    });
    let netns = Netns::create("kfrbac").unwrap();
    let agent = start(fast(&fake), &netns);
    let body = agent
        .readyz_until("names the refusal", |s, b| {
            s == 503 && b.contains("403 Forbidden: RBAC does not allow `list` on `pods`")
        })
        .await;
    assert!(
        body.contains("cannot list resource"),
        "the API's own words: {body}"
    );
    let agents = fake.user_agents();
    let expected = format!("netpol-agent/{} (node n1)", env!("CARGO_PKG_VERSION"));
    assert!(
        !agents.is_empty() && agents.iter().all(|a| *a == expected),
        "{agents:?}"
    );
    fake.set_faults(|f| f.forbidden.clear());
    agent
        .readyz_until("ready once allowed", |s, _| s == 200)
        .await;
    agent.stop().await;
}
