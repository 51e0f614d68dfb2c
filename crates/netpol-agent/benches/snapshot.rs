//! The CLI's one-shot read of a live cluster at scale: the synthetic 10,000-workload /
//! 200-namespace / 2,000-policy cluster served by THE FAKE API SERVER (netpol-test-support's
//! fake_apiserver, on loopback; no real one can run here), read with one paged list per kind
//! (500 objects a page) by the real kube client, pruned, and loaded by the netpol-k8s loader.
//!
//! Prints, over 5 rounds: the snapshot (every list, every page) and the load of its texts.
//!
//! `cargo bench -p netpol-agent --bench snapshot`. Not run by `cargo test`.
//! `SNAPSHOT_BENCH_WORKLOADS=2000` etc. scale it down.

// A benchmark aborts on a setup failure by design: without the setup there is nothing to measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use netpol_agent::kube_source::snapshot::{snapshot, Namespaces, CLI_KINDS};
use netpol_agent::kube_source::{connect, ClusterAccess};
use netpol_core::synth::{generate, SynthParams};
use netpol_test_support::fake_apiserver::FakeApi;
use serde_json::Value;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The synthetic cluster's manifests as API objects, by plural.
fn objects(params: &SynthParams) -> Vec<(&'static str, Value)> {
    let yaml = netpol_k8s::render_manifests(&generate(params));
    // One document at a time: the parser caps documents per input.
    yaml.split("\n---\n")
        .map(|doc| doc.trim_start_matches("---\n"))
        .map(|doc| serde_saphyr::from_str::<Value>(doc).unwrap())
        .filter(|d| d.is_object())
        .map(|d| {
            let kind = netpol_k8s::schema::lookup(
                d["apiVersion"].as_str().unwrap(),
                d["kind"].as_str().unwrap(),
            )
            .unwrap();
            (kind.plural, d)
        })
        .collect()
}

fn main() {
    let params = SynthParams {
        workloads: env_usize("SNAPSHOT_BENCH_WORKLOADS", 10_000),
        namespaces: env_usize("SNAPSHOT_BENCH_NAMESPACES", 200),
        policies: env_usize("SNAPSHOT_BENCH_POLICIES", 2_000),
        nodes: 100,
        seed: 1,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let fake = FakeApi::start().await;
        fake.serve_group(
            "virtualization.deckhouse.io/v1alpha2",
            "virtualmachines",
            "VirtualMachine",
        );
        fake.serve_group("kubevirt.io/v1", "virtualmachineinstances", "VirtualMachineInstance");
        let objects = objects(&params);
        let count = objects.len();
        for (plural, obj) in objects {
            fake.apply(plural, obj);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        let config = serde_json::json!({"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": fake.url()}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "users": [{"name": "u", "user": {}}], "current-context": "c"});
        std::fs::write(&path, config.to_string()).unwrap();
        let access = ClusterAccess {
            kubeconfig: Some(path),
            context: None,
            request_timeout: Duration::from_secs(60),
            user_agent: "netpol-bench".into(),
        };
        let client = connect(&access).await.unwrap().client;
        let (mut read_ms, mut load_ms) = (Vec::new(), Vec::new());
        let mut workloads = 0;
        for _ in 0..5 {
            let started = Instant::now();
            let read = snapshot(&client, CLI_KINDS, &Namespaces::All, Duration::from_secs(60)).await;
            read_ms.push(started.elapsed().as_secs_f64() * 1e3);
            assert!(read.errors.is_empty(), "{:?}", read.errors);
            assert_eq!(read.objects.len(), count);
            let started = Instant::now();
            let loaded = read.load(&netpol_k8s::LoadOptions::default());
            load_ms.push(started.elapsed().as_secs_f64() * 1e3);
            workloads = loaded.cluster.workloads.len();
        }
        read_ms.sort_by(f64::total_cmp);
        load_ms.sort_by(f64::total_cmp);
        println!(
            "snapshot of {count} objects ({workloads} workloads, {} policies): list {:.0} ms (p50; min {:.0}, max {:.0}), load {:.0} ms (p50; min {:.0}, max {:.0}), {} pod list pages in all",
            params.policies,
            read_ms[2], read_ms[0], read_ms[4], load_ms[2], load_ms[0], load_ms[4],
            fake.lists_for("pods"),
        );
    });
}
