//! The agent at scale, as a real process enforcing into a throwaway network namespace (never the
//! host's): a synthetic 10,000-workload / 200-namespace / 2,000-policy cluster (100 nodes, so the
//! busiest node hosts ~100 workloads) rendered into a manifest directory of several files.
//!
//! Prints: time to the first applied ruleset, the agent's RSS after it (VmRSS, VmHWM), the delay
//! from one policy-file edit to the rules being in the kernel (10 edits), and the agent's CPU time
//! while a file of 100 pods is rewritten 100 times a second for 10 seconds.
//!
//! `cargo bench -p netpol-agent --bench agent_scale` (needs root, `nft`, `ip`). Not run by
//! `cargo test`. `AGENT_BENCH_WORKLOADS=2000` etc. scale it down; `AGENT_BENCH_ADMIN_POLICIES=100`
//! adds the per-packet bench's admin policies and ten edits of one admin rule's port.

// A benchmark aborts on a setup failure by design: without the setup there is nothing to measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netpol_core::synth::{generate, SynthParams};
use netpol_core::{Cluster, Workload, WorkloadKind};
use netpol_dataplane::Netns;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    Some((status, out.split_once("\r\n\r\n")?.1.to_string()))
}

fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// `(VmRSS, VmHWM)` in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

/// utime + stime of the process, in seconds; with `children`, plus the waited-for children's
/// (the `nft` and `ip netns` processes the agent runs).
fn cpu_seconds_of(pid: u32, ticks: f64, children: bool) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f[11].parse().unwrap();
    let stime: f64 = f[12].parse().unwrap();
    let kids: f64 = if children {
        f[13].parse::<f64>().unwrap() + f[14].parse::<f64>().unwrap()
    } else {
        0.0
    };
    (utime + stime + kids) / ticks
}

fn cpu_seconds(pid: u32, ticks: f64) -> f64 {
    cpu_seconds_of(pid, ticks, false)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Whether a complete line appended to `log` since `offset` contains `needle`; advances `offset`
/// past the complete lines read.
fn appended_line_contains(log: &Path, offset: &mut u64, needle: &str) -> bool {
    use std::io::Seek;
    let Ok(mut f) = std::fs::File::open(log) else {
        return false;
    };
    let mut fresh = String::new();
    if f.seek(std::io::SeekFrom::Start(*offset)).is_err() || f.read_to_string(&mut fresh).is_err() {
        return false;
    }
    let complete = fresh.rfind('\n').map_or(0, |i| i + 1);
    *offset += complete as u64;
    fresh[..complete].lines().any(|l| l.contains(needle))
}

fn count_lines(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .map(|t| t.lines().filter(|l| l.contains(needle)).count())
        .unwrap_or(0)
}

fn last_line(log: &Path, needle: &str) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| l.contains(needle))
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// Seconds since midnight UTC, now.
fn time_of_day_now() -> f64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (d.as_secs() % 86_400) as f64 + f64::from(d.subsec_nanos()) / 1e9
}

/// Seconds since midnight UTC of a log line (`2026-01-01T08:34:12.064505Z ...`).
fn time_of_day_of(line: &str) -> Option<f64> {
    let t = line.trim_start().split_once('T')?.1.split('Z').next()?;
    let mut parts = t.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

fn pods_only(workloads: &[Workload]) -> Cluster {
    Cluster {
        namespaces: Vec::new(),
        workloads: workloads.to_vec(),
        policies: Vec::new(),
        ..Cluster::default()
    }
}

/// A policy isolating exactly `w` (all its labels), admitting 192.0.2.0/24 on `port`.
fn edit_policy(w: &Workload, port: u16) -> String {
    let labels: Vec<String> = w
        .labels
        .iter()
        .map(|(k, v)| format!("{k:?}: {v:?}"))
        .collect();
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {{name: bench-edit, namespace: {ns}}}\n\
         spec:\n  podSelector: {{matchLabels: {{{labels}}}}}\n  ingress:\n\
         \x20 - from: [{{ipBlock: {{cidr: 192.0.2.0/24}}}}]\n    ports: [{{port: {port}}}]\n",
        ns = w.namespace,
        labels = labels.join(", ")
    )
}

/// Ten edits of `edited_file`, the `i`th writing `edit(i)`: for each, the delay from the write
/// to the agent's "ruleset applied" (from its log), then the median and max.
fn measure_edits(what: &str, log: &Path, edited_file: &Path, edit: impl Fn(u16) -> String) {
    let mut delays = Vec::new();
    let mut enforced = Vec::new();
    for i in 0..10u16 {
        // Only the log's new bytes are read while waiting: re-reading the whole log every few
        // milliseconds would compete with the agent for the two CPUs and slow what is measured.
        let mut offset = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
        let text = edit(i);
        let written_at = time_of_day_now();
        let t0 = Instant::now();
        write_atomic(edited_file, &text);
        while !appended_line_contains(log, &mut offset, "ruleset applied") {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "edit {i} never applied"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let delay = t0.elapsed();
        delays.push(delay);
        // The rules are in force when the nft transaction returns, which the agent logs as
        // "ruleset applied" before it reads the table back for its drift fingerprint.
        let applied_line = last_line(log, "ruleset applied");
        // The file source's part: debounce, rescan, parsing the edited file.
        let loaded = time_of_day_of(&last_line(log, "file loaded"))
            .map(|t| Duration::from_secs_f64((t - written_at).max(0.0)));
        let in_force = time_of_day_of(&applied_line)
            .map(|t| Duration::from_secs_f64((t - written_at).max(0.0)));
        if let Some(d) = in_force {
            enforced.push(d);
        }
        if std::env::var_os("AGENT_BENCH_TRACE").is_some() {
            for l in std::fs::read_to_string(log).unwrap_or_default().lines() {
                if time_of_day_of(l).is_some_and(|t| t >= written_at) {
                    println!("    | {l}");
                }
            }
        }
        println!(
            "{what} {i}: write -> in the kernel {in_force:.2?} (file loaded after {loaded:.2?}); -> seen in the log by the bench {delay:.2?}\n  {}\n  {}\n  {}",
            last_line(log, "compile_took").trim_end(),
            last_line(log, "nft transaction").trim_end(),
            applied_line.trim_end(),
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    delays.sort();
    enforced.sort();
    println!(
        "{what} -> in the kernel: median {:.2?}, max {:.2?}; -> seen in the log by the bench: median {:.2?}, max {:.2?} \
         over {} edits (target < 200 ms; includes the file debounce)",
        enforced.get(enforced.len() / 2).copied().unwrap_or_default(),
        enforced.last().copied().unwrap_or_default(),
        delays[delays.len() / 2],
        delays[delays.len() - 1],
        delays.len()
    );
}

struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let params = SynthParams {
        workloads: env_usize("AGENT_BENCH_WORKLOADS", 10_000),
        namespaces: env_usize("AGENT_BENCH_NAMESPACES", 200),
        policies: env_usize("AGENT_BENCH_POLICIES", 2_000),
        nodes: env_usize("AGENT_BENCH_NODES", 100),
        seed: 1,
    };
    let churn_seconds = env_usize("AGENT_BENCH_CHURN_SECONDS", 10);
    let cluster = generate(&params);
    let mut per_node: std::collections::BTreeMap<&str, usize> = Default::default();
    for w in &cluster.workloads {
        if let Some(n) = &w.node {
            *per_node.entry(n).or_default() += 1;
        }
    }
    let (node, local) = per_node
        .iter()
        .max_by_key(|(_, c)| **c)
        .map(|(n, c)| (n.to_string(), *c))
        .unwrap();
    println!(
        "cluster: {} workloads, {} namespaces, {} policies, {} nodes; enforcing node {node} ({local} workloads)",
        cluster.workloads.len(),
        cluster.namespaces.len(),
        cluster.policies.len(),
        per_node.len()
    );

    // The manifest directory: namespaces, workloads in 10 files, policies in 20, churn pods.
    let dir = tempfile::tempdir().unwrap();
    let root: PathBuf = dir.path().to_path_buf();
    let ns_only = Cluster {
        namespaces: cluster.namespaces.clone(),
        ..Cluster::default()
    };
    std::fs::write(
        root.join("namespaces.yaml"),
        netpol_k8s::render_manifests(&ns_only),
    )
    .unwrap();
    // 100 pods of other nodes are the churn set; they live in their own file.
    let churn: Vec<Workload> = cluster
        .workloads
        .iter()
        .filter(|w| w.kind == WorkloadKind::Pod && w.node.as_deref() != Some(node.as_str()))
        .take(100)
        .cloned()
        .collect();
    let churn_keys: std::collections::HashSet<String> = churn.iter().map(|w| w.key()).collect();
    let rest: Vec<Workload> = cluster
        .workloads
        .iter()
        .filter(|w| !(w.kind == WorkloadKind::Pod && churn_keys.contains(&w.key())))
        .cloned()
        .collect();
    let mut bytes = 0;
    for (i, chunk) in rest.chunks(rest.len().div_ceil(10)).enumerate() {
        let text = netpol_k8s::render_manifests(&pods_only(chunk));
        bytes += text.len();
        std::fs::write(root.join(format!("workloads-{i:02}.yaml")), text).unwrap();
    }
    let policy_chunks: Vec<String> = cluster
        .policies
        .chunks(cluster.policies.len().div_ceil(20).max(1))
        .map(|chunk| {
            netpol_k8s::render_manifests(&Cluster {
                policies: chunk.to_vec(),
                ..Cluster::default()
            })
        })
        .collect();
    for (i, text) in policy_chunks.iter().enumerate() {
        bytes += text.len();
        std::fs::write(root.join(format!("policies-{i:02}.yaml")), text).unwrap();
    }
    // `AGENT_BENCH_ADMIN_POLICIES=100`: the per-packet bench's admin policies, in a file of
    // their own, and ten edits of one of them after the NetworkPolicy edits.
    let admin_count = env_usize("AGENT_BENCH_ADMIN_POLICIES", 0);
    let admin_set = (admin_count > 0).then(|| {
        let admin = netpol_test_support::admin_set::synthetic_admin_policies(admin_count);
        let file = root.join("admin-policies.yaml");
        let text = netpol_k8s::render_manifests(&Cluster {
            admin_policies: admin.clone(),
            ..Cluster::default()
        });
        bytes += text.len();
        std::fs::write(&file, text).unwrap();
        (file, admin)
    });
    let churn_file = root.join("churn-pods.yaml");
    std::fs::write(
        &churn_file,
        netpol_k8s::render_manifests(&pods_only(&churn)),
    )
    .unwrap();
    println!(
        "manifests: {} files, {:.1} MB",
        std::fs::read_dir(&root).unwrap().count(),
        bytes as f64 / 1e6
    );

    let netns = Netns::create("agentbench").unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("agent.log");
    let started = Instant::now();
    let agent = Running {
        child: Command::new(env!("CARGO_BIN_EXE_netpol-agent-test"))
            .args(["--node", &node, "--dir", root.to_str().unwrap()])
            .args(["--netns", netns.name(), "--listen", &addr.to_string()])
            // No drift check during the measurements (at this size it lists the table).
            .args(["--drift-ms", "3600000"])
            .env("RUST_LOG", "info,netpol_agent=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    };
    let pid = agent.child.id();
    let ticks = clock_ticks();
    while http_get(addr, "/readyz").is_none_or(|(s, _)| s != 200) {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "not ready after 300 s; log {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (rss, hwm) = memory(pid);
    println!(
        "initial sync: ready after {:.2?} (process start to /readyz 200); agent CPU {:.2} s",
        started.elapsed(),
        cpu_seconds(pid, ticks)
    );
    println!("  {}", last_line(&log, "ruleset applied"));
    println!("  {}", last_line(&log, "nft transaction"));
    println!("RSS after initial sync: VmRSS {rss:.1} MiB, VmHWM {hwm:.1} MiB (target < 200 MB)");

    // One policy-file edit at a time: a policy isolating one local workload is appended to one
    // of the 20 policy files, with a different port each time.
    let target = cluster
        .workloads
        .iter()
        .find(|w| w.node.as_deref() == Some(node.as_str()) && !w.labels.is_empty())
        .unwrap()
        .clone();
    let edited_file = root.join("policies-00.yaml");
    // Like between edits: a change arriving within the coalescing window after a sync (here the
    // initial one) waits for the window's end by design, which is not what is measured here.
    std::thread::sleep(Duration::from_millis(300));
    measure_edits("policy edit", &log, &edited_file, |i| {
        format!("{}{}", policy_chunks[0], edit_policy(&target, 20_000 + i))
    });
    if let Some((admin_file, admin)) = &admin_set {
        // One admin rule's port at a time (the Admin Deny of `adm-0`, whose subjects include
        // local workloads of every node): the tiers' update path, end to end.
        measure_edits("admin policy edit", &log, admin_file, |i| {
            let mut edited = admin.clone();
            if let Some(rule) = edited.first_mut().and_then(|p| p.ingress.first_mut()) {
                rule.ports = Some(vec![netpol_core::AdminPort::Protocol {
                    protocol: netpol_core::Protocol::Tcp,
                    ports: Some((30_000 + i, 30_000 + i)),
                }]);
            }
            netpol_k8s::render_manifests(&Cluster {
                admin_policies: edited,
                ..Cluster::default()
            })
        });
    }

    // Pod churn: 100 rewrites of the churn file per second, each moving one pod to a new address.
    let applied_before = count_lines(&log, "ruleset applied");
    let cpu_before = cpu_seconds(pid, ticks);
    let cpu_with_nft_before = cpu_seconds_of(pid, ticks, true);
    let t0 = Instant::now();
    let events = churn_seconds * 100;
    let mut pods = churn.clone();
    for k in 0..events {
        let due = t0 + Duration::from_millis(10 * k as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let j = k % pods.len();
        let n = 10_000 + k as u32;
        pods[j].addresses = vec![std::net::IpAddr::V4(std::net::Ipv4Addr::new(
            10,
            254,
            (n >> 8) as u8,
            n as u8,
        ))];
        write_atomic(
            &churn_file,
            &netpol_k8s::render_manifests(&pods_only(&pods)),
        );
    }
    let wall = t0.elapsed();
    let cpu_during = cpu_seconds(pid, ticks) - cpu_before;
    // Let the last change settle and count its cost too.
    std::thread::sleep(Duration::from_millis(1500));
    let cpu_total = cpu_seconds(pid, ticks) - cpu_before;
    let cpu_with_nft = cpu_seconds_of(pid, ticks, true) - cpu_with_nft_before;
    let applied = count_lines(&log, "ruleset applied") - applied_before;
    let (rss, hwm) = memory(pid);
    println!(
        "pod churn: {events} events in {wall:.2?} ({:.0}/s): agent CPU {cpu_during:.2} s during \
         ({:.0}% of one core), {cpu_total:.2} s including 1.5 s settle; {applied} rulesets applied",
        events as f64 / wall.as_secs_f64(),
        100.0 * cpu_during / wall.as_secs_f64()
    );
    println!(
        "  with the nft/ip child processes: {cpu_with_nft:.2} s including the settle ({:.0}% of one core over the churn)",
        100.0 * cpu_with_nft / wall.as_secs_f64()
    );
    println!("RSS after churn: VmRSS {rss:.1} MiB, VmHWM {hwm:.1} MiB");
    if let Some((_, body)) = http_get(addr, "/metrics") {
        for l in body.lines().filter(|l| {
            l.starts_with("netpol_sync_duration_seconds_sum")
                || l.starts_with("netpol_sync_duration_seconds_count")
                || l.starts_with("netpol_syncs_total")
                || l.starts_with("netpol_source_rescans_total")
                || l.starts_with("netpol_ruleset_elements")
                || l.starts_with("netpol_workloads")
                || l.starts_with("netpol_local_policies")
        }) {
            println!("  {l}");
        }
    }
    drop(agent);
    drop(netns);
}
