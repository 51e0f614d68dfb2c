//! The agent run in-process against the fake API server (netpol-test-support's fake_apiserver), with a
//! compiler that records every cluster it was asked to compile, and `/readyz` polling.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netpol_agent::real::{K8sLoader, KernelEnforcer, NftCompiler};
use netpol_agent::reconcile::StepError;
use netpol_agent::{AgentConfig, Compiled, Compiler, KubeConfig};
use netpol_core::Cluster;

use crate::common;
use netpol_test_support::fake_apiserver::FakeApi;

/// Delegates to the real compiler and keeps every cluster it was asked to compile, so the test
/// sees exactly what each sync would have enforced.
pub struct Recording {
    pub real: NftCompiler,
    pub seen: Arc<Mutex<Vec<Cluster>>>,
}

impl Compiler for Recording {
    fn compile(&self, cluster: &Cluster, node: &str) -> Result<Compiled, StepError> {
        self.seen.lock().unwrap().push(cluster.clone());
        self.real.compile(cluster, node)
    }
}

/// The last cluster compiled.
pub fn last(seen: &Arc<Mutex<Vec<Cluster>>>) -> Option<Cluster> {
    seen.lock().unwrap().last().cloned()
}

/// Waits (up to 5 s) until the last compiled cluster satisfies `f`.
pub async fn eventually(seen: &Arc<Mutex<Vec<Cluster>>>, what: &str, f: impl Fn(&Cluster) -> bool) {
    for _ in 0..500 {
        if last(seen).is_some_and(|c| f(&c)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "never reached: {what}; last = {:#?}",
        last(seen).map(|c| (
            c.workloads.len(),
            c.policies.len(),
            c.admin_policies.len(),
            c.namespaces.len()
        ))
    );
}

/// An agent following the fake API, with what its compiler saw and its `/readyz` address.
pub struct Running {
    pub seen: Arc<Mutex<Vec<Cluster>>>,
    pub addr: SocketAddr,
    pub stop: tokio::sync::watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<Result<(), netpol_agent::AgentError>>,
    pub netns: netpol_dataplane::Netns,
}

impl Running {
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        drop(self.netns);
    }

    pub async fn readyz(&self) -> Option<(u16, String)> {
        let addr = self.addr;
        tokio::task::spawn_blocking(move || common::http_get(addr, "/readyz"))
            .await
            .unwrap()
    }

    pub async fn wait_ready(&self) {
        for _ in 0..500 {
            if self.readyz().await.is_some_and(|(s, _)| s == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never ready: {:?}", self.readyz().await);
    }

    /// Polls `/readyz` from a thread of its own until the returned guard is finished.
    pub fn watch_readiness(&self) -> ReadinessWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicU64::new(0));
        let bad = Arc::new(Mutex::new(Vec::new()));
        let addr = self.addr;
        let (s, p, b) = (stop.clone(), polls.clone(), bad.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match common::http_get(addr, "/readyz") {
                    Some((200, _)) => {}
                    other => b.lock().unwrap().push(other),
                }
                p.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        ReadinessWatch {
            stop,
            polls,
            bad,
            thread,
        }
    }
}

/// `/readyz` answers other than 200 (`None`: no answer at all).
type BadAnswers = Arc<Mutex<Vec<Option<(u16, String)>>>>;

pub struct ReadinessWatch {
    stop: Arc<AtomicBool>,
    polls: Arc<AtomicU64>,
    bad: BadAnswers,
    thread: std::thread::JoinHandle<()>,
}

impl ReadinessWatch {
    /// Stops polling; asserts that every poll answered 200 and that there were at least `min`.
    pub fn assert_always_ready(self, min: u64) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
        let bad = self.bad.lock().unwrap();
        assert!(bad.is_empty(), "/readyz was not 200: {bad:?}");
        let polls = self.polls.load(Ordering::SeqCst);
        assert!(polls >= min, "/readyz polled only {polls} times");
    }
}

/// Starts the agent against `fake` in a scratch network namespace, rechecking missing CRDs
/// every `recheck`.
pub async fn start_agent(fake: &FakeApi, tag: &str, recheck: Duration) -> Running {
    netpol_agent::logging::init(netpol_agent::LogFormat::Text);
    let netns = netpol_dataplane::Netns::create(tag).unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = AgentConfig::new("n1");
    config.kube = Some(KubeConfig {
        api_server: Some(fake.url()),
        crd_recheck_interval: recheck,
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
    let loader = Arc::new(K8sLoader::new());
    let enforcer = Arc::new(KernelEnforcer::new(config.netns.clone()));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(netpol_agent::run_with(
        config, loader, compiler, enforcer, stop_rx,
    ));
    Running {
        seen,
        addr,
        stop,
        task,
        netns,
    }
}
