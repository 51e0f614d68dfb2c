//! A failed apply, for real: the agent runs in-process (`run_with`) with the real loader, compiler
//! and `KernelEnforcer` in a lab node's namespace, except that while the test says so, the script
//! handed to the kernel ends with `create table inet netpol`, which the kernel refuses (EEXIST:
//! the table exists, having just been re-created by the same transaction). So the whole
//! transaction - including its `delete table` - is rolled back by the kernel itself. The last good
//! rules must keep being enforced (probed), the failure must show in `/readyz` and `/metrics`,
//! retries must back off, and once the cause is gone a retry must succeed. Needs root.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{http_get, metric_value, wait_until, write_atomic};
use netpol_agent::real::{K8sLoader, KernelEnforcer, NftCompiler};
use netpol_agent::reconcile::StepError;
use netpol_agent::{AgentConfig, Compiled, Enforcer};
use netpol_dataplane::{Lab, LabHost, LabSpec, ProbeProtocol};

const WORKLOADS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: a, labels: {app: client}}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.87.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: a, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.87.0.2}
"#;

fn policy(port: u16) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {{name: allow-client, namespace: a}}\n\
         spec:\n  podSelector: {{matchLabels: {{app: web}}}}\n  ingress:\n\
         \x20 - from: [{{podSelector: {{matchLabels: {{app: client}}}}}}]\n    ports: [{{port: {port}}}]\n"
    )
}

/// The real kernel enforcer; while `broken`, every script it is given is made unacceptable to
/// the kernel. Records when each apply was attempted.
struct Sabotaged {
    inner: KernelEnforcer,
    broken: Arc<AtomicBool>,
    attempts: Arc<Mutex<Vec<(Instant, bool)>>>,
}

impl Enforcer for Sabotaged {
    fn apply(&self, compiled: &Compiled) -> Result<(), StepError> {
        let broken = self.broken.load(Ordering::SeqCst);
        self.attempts.lock().unwrap().push((Instant::now(), broken));
        if broken {
            let mut bad = compiled.clone();
            bad.text.push_str("\ncreate table inet netpol\n");
            // Without the ruleset the enforcer cannot take the incremental path: the bad text
            // is what reaches the kernel.
            bad.ruleset = None;
            return self.inner.apply(&bad);
        }
        self.inner.apply(compiled)
    }
    fn check_drift(&self) -> Result<Option<String>, StepError> {
        self.inner.check_drift()
    }
    fn counters(&self) -> Result<Vec<netpol_nft::CounterReading>, StepError> {
        self.inner.counters()
    }
    fn remove(&self) -> Result<(), StepError> {
        self.inner.remove()
    }
}

#[test]
fn a_failed_apply_keeps_the_last_good_rules_is_reported_and_retried_with_backoff_until_it_succeeds()
{
    let lab = Lab::build(&LabSpec {
        nodes: vec!["n1".into()],
        hosts: vec![
            LabHost {
                name: "a/client".into(),
                node: Some("n1".into()),
                addresses: vec!["10.87.0.1".parse().unwrap()],
                ..LabHost::default()
            },
            LabHost {
                name: "a/web".into(),
                node: Some("n1".into()),
                addresses: vec!["10.87.0.2".parse().unwrap()],
                tcp_ports: vec![80, 8080],
                ..LabHost::default()
            },
        ],
    })
    .unwrap();
    let ns = lab.node_netns("n1").unwrap().to_string();
    let web: IpAddr = "10.87.0.2".parse().unwrap();
    let open = |port: u16| {
        lab.probe(
            "a/client",
            web,
            ProbeProtocol::Tcp,
            port,
            Duration::from_millis(300),
        )
        .unwrap()
    };

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("workloads.yaml"), WORKLOADS).unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, policy(80)).unwrap();

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut config = AgentConfig::new("n1");
    config.manifest_dirs = vec![dir.path().to_path_buf()];
    config.netns = Some(ns.clone());
    config.listen = addr;
    config.retry_initial = Duration::from_millis(100);
    config.retry_max = Duration::from_millis(800);
    config.coalesce_window = Duration::from_millis(50);

    let broken = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let enforcer = Arc::new(Sabotaged {
        inner: KernelEnforcer::new(Some(ns.clone())),
        broken: broken.clone(),
        attempts: attempts.clone(),
    });
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let agent = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(netpol_agent::run_with(
            config,
            Arc::new(K8sLoader::new()),
            Arc::new(NftCompiler::new(Default::default())),
            enforcer,
            shutdown,
        ))
    });
    let readyz = || http_get(addr, "/readyz");
    let metric = |name: &str| http_get(addr, "/metrics").and_then(|(_, b)| metric_value(&b, name));

    assert!(
        wait_until(Duration::from_secs(20), || readyz()
            .is_some_and(|(s, _)| s == 200))
        .is_some(),
        "never ready"
    );
    assert!(open(80) && !open(8080), "the good rules are enforced");
    assert_eq!(metric("netpol_apply_errors_total"), Some(0.0));

    // Break the kernel side, then edit: the new rules (8080) cannot be applied.
    broken.store(true, Ordering::SeqCst);
    let broken_at = Instant::now();
    write_atomic(&file, &policy(8080));
    let unready = wait_until(Duration::from_secs(10), || {
        readyz().is_some_and(|(s, _)| s == 503)
    });
    assert!(unready.is_some(), "/readyz did not report the failed apply");
    let (_, body) = readyz().unwrap();
    assert!(
        body.contains("last sync failed") && body.contains("File exists"),
        "/readyz gives the kernel's reason: {body}"
    );
    // Keep it failing for a while: the retries must back off, the old rules must hold.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        open(80) && !open(8080),
        "the last good rules stay enforced while applies fail"
    );
    let errors = metric("netpol_apply_errors_total").unwrap();
    assert!(errors >= 3.0, "every failed attempt is counted: {errors}");
    assert!(
        metric("netpol_syncs_total{result=\"apply_failed\"}").unwrap() >= 3.0,
        "failed syncs are counted by result"
    );
    assert_eq!(metric("netpol_ready "), Some(0.0));

    // The failed attempts so far: spaced by a delay that doubles from 100 ms up to 800 ms.
    let failed: Vec<Instant> = attempts
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, b)| *b && *t >= broken_at)
        .map(|(t, _)| *t)
        .collect();
    let gaps: Vec<Duration> = failed.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!(
        "MEASURED {} failed applies in 2.5 s, gaps between attempts: {gaps:?}",
        failed.len()
    );
    assert!(
        (4..=8).contains(&failed.len()),
        "backoff 100 ms doubling to 800 ms gives about 6 attempts in 2.5 s, got {}",
        failed.len()
    );
    for (i, g) in gaps.iter().enumerate() {
        let nominal = Duration::from_millis(100 << i.min(3));
        assert!(
            *g >= nominal && *g < nominal + Duration::from_millis(400),
            "gap {i} is {g:?}, expected about {nominal:?}"
        );
    }

    // Remove the cause: the next retry applies the new rules and the agent is ready again.
    broken.store(false, Ordering::SeqCst);
    let fixed_at = Instant::now();
    let recovered = wait_until(Duration::from_secs(5), || {
        readyz().is_some_and(|(s, _)| s == 200)
    });
    assert!(recovered.is_some(), "a retry never succeeded");
    eprintln!(
        "MEASURED cause removed -> ready again: {:?} (retry delay capped at 800 ms)",
        fixed_at.elapsed()
    );
    assert!(
        open(8080) && !open(80),
        "the retried apply enforces the edit"
    );
    assert_eq!(metric("netpol_ready "), Some(1.0));
    let errors_after = metric("netpol_apply_errors_total").unwrap();
    // No further failures once fixed (at most one attempt was in flight when the flag flipped).
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(metric("netpol_apply_errors_total"), Some(errors_after));

    stop.send(true).unwrap();
    agent.join().unwrap().unwrap();
}
