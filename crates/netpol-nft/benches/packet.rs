//! Per-packet cost of the full table in the real kernel: TCP throughput (iperf3) and new TCP
//! connections per second between two lab workloads on the same node, with no ruleset, with a
//! conntrack-only ruleset (to separate the cost of connection tracking from the cost of the
//! lookups), and with the node's full table for the synthetic 10,000-workload / 2,000-policy
//! cluster (the busiest of its 100 nodes), also with the source-address check on the lab's
//! workload interfaces. The two workloads are local workloads the table
//! isolates in the checked directions and whose flow it allows, so every new connection goes
//! through the dispatch, classification and grant lookups.
//!
//! Run as root with iperf3 installed: `cargo bench -p netpol-nft --bench packet`.
//! Configurations are interleaved per round (order rotated) so machine noise hits them alike;
//! medians reported. `NETPOL_PACKET_ROUNDS` overrides the number of rounds (default 9). Besides
//! the raw rates it reports CPU cost (Gbit per CPU-second, CPU microseconds per connection),
//! which other processes competing for the CPUs disturb much less than the rates.
//!
//! `NETPOL_PACKET_COMPARE=FILE` adds one more configuration, interleaved with the others: the
//! script in FILE (e.g. the same node's table as another version of `netpol compile` prints it
//! for `netpol bench --write` output), to compare two versions of the table on one machine.
//! The configuration `full + 100 admin policies` is the same node's table with 100 admin
//! policies of every tier added to the cluster (`netpol_test_support::admin_set`): both workloads are
//! then subjects of the tiers, so the flow also meets the Admin tier's verdict map and the
//! hairpin lookup; the compile time and a one-admin-policy update of that table are printed too.
//! `NETPOL_PACKET_ATTRIBUTE=1` adds the full table without each part that issue 9 put on the path
//! of every packet or new connection (see `TableParts`).

// A benchmark aborts on a setup failure by design: without the setup there is nothing to measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netpol_core::synth::{generate, SynthParams};
use netpol_core::{EvalOptions, Protocol};
use netpol_dataplane::{Lab, LabHost, LabSpec};
use netpol_nft::{compile, compile_for_node, NodeOptions, SourceCheck};

const ROUNDS: usize = 9;
const IPERF_SECONDS: u32 = 2;
const CPS_SECONDS: f64 = 1.5;

fn enter(netns: &str) {
    let f = std::fs::File::open(format!("/run/netns/{netns}")).expect("netns file");
    // SAFETY: setns on a valid descriptor changes only this thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {netns}");
}

/// Throughput, and throughput per CPU-second (iperf3's own sender plus receiver CPU use, which
/// includes the forwarding node's softirq work done on their threads): the second figure is what
/// the table costs, and it barely moves when other processes compete for the CPUs.
fn iperf(src_ns: &str, dst_ns: &str, src: IpAddr, dst: IpAddr, port: u16) -> (f64, f64) {
    let port_s = port.to_string();
    let mut server = Command::new("ip")
        .args(["netns", "exec", dst_ns, "iperf3", "-s", "-1", "-B"])
        .arg(dst.to_string())
        .args(["-p", &port_s])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 server");
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new("ip")
        .args(["netns", "exec", src_ns, "iperf3", "-J", "-c"])
        .arg(dst.to_string())
        .args(["-B", &src.to_string(), "-p", &port_s, "-t"])
        .arg(IPERF_SECONDS.to_string())
        .output()
        .expect("iperf3 client");
    let _ = server.wait();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 JSON");
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("iperf3 failed: {}", String::from_utf8_lossy(&out.stdout)));
    let cpu = &v["end"]["cpu_utilization_percent"];
    let busy =
        cpu["host_total"].as_f64().unwrap_or(0.0) + cpu["remote_total"].as_f64().unwrap_or(0.0);
    (bps, bps / (busy / 100.0).max(1e-9))
}

/// CPU time (user + system, softirq work done on its behalf included) of the calling thread.
fn thread_cpu() -> Duration {
    // SAFETY: getrusage writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Connections per second (connect, then close with RST: no TIME_WAIT to exhaust ports), and the
/// CPU microseconds per connection of the client and server threads together (the node's
/// forwarding runs in softirq on those threads, veth being synchronous).
fn cps(src_ns: &str, dst_ns: &str, src: IpAddr, dst: IpAddr, port: u16) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = {
        let (dst_ns, stop) = (dst_ns.to_string(), stop.clone());
        std::thread::spawn(move || {
            enter(&dst_ns);
            let l = TcpListener::bind(SocketAddr::new(dst, port)).expect("bind");
            l.set_nonblocking(true).expect("nonblocking");
            let _ = ready_tx.send(());
            let cpu0 = thread_cpu();
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    // Accepted and closed at once: the backlog must never fill up.
                    Ok((s, _)) => drop(s),
                    Err(_) => std::thread::sleep(Duration::from_micros(20)),
                }
            }
            thread_cpu() - cpu0
        })
    };
    let _ = ready_rx.recv();
    let src_ns = src_ns.to_string();
    let count = std::thread::spawn(move || {
        enter(&src_ns);
        let started = Instant::now();
        let cpu0 = thread_cpu();
        let mut n = 0u64;
        let mut failed = 0u32;
        while started.elapsed().as_secs_f64() < CPS_SECONDS {
            let sock = socket2::Socket::new(
                socket2::Domain::for_address(SocketAddr::new(dst, port)),
                socket2::Type::STREAM,
                None,
            )
            .expect("socket");
            sock.bind(&SocketAddr::new(src, 0).into())
                .expect("bind src");
            if sock
                .connect_timeout(&SocketAddr::new(dst, port).into(), Duration::from_secs(3))
                .is_err()
            {
                failed += 1;
                assert!(failed < 10, "connections fail: is the flow allowed?");
                continue;
            }
            let _ = sock.set_linger(Some(Duration::ZERO));
            let s: TcpStream = sock.into();
            drop(s);
            n += 1;
        }
        (n, started.elapsed().as_secs_f64(), thread_cpu() - cpu0)
    })
    .join()
    .expect("client");
    stop.store(true, Ordering::Relaxed);
    let server_cpu = server.join().expect("server");
    let (n, secs, client_cpu) = count;
    let n = n.max(1) as f64;
    (n / secs, (client_cpu + server_cpu).as_secs_f64() * 1e6 / n)
}

/// The full table without each of the parts issue 9 added to every packet's or every new
/// connection's path, to attribute their cost (`NETPOL_PACKET_ATTRIBUTE=1`): the prerouting hook
/// of the source check (present whenever the check is on, even when no interface matches), the
/// `table_packets` counter, and the hairpin lookup.
struct TableParts {
    no_source_hook: String,
    no_counter: String,
    no_hairpin: String,
    none_of_them: String,
}

impl TableParts {
    fn of(cluster: &netpol_core::Cluster, node: &str, full: &str) -> TableParts {
        let no_source_hook = compile_for_node(
            cluster,
            EvalOptions::default(),
            node,
            &NodeOptions {
                source_check: SourceCheck::Off,
                ..NodeOptions::default()
            },
        )
        .expect("compile")
        .text;
        let without = |text: &str, drop: &[&str]| -> String {
            text.lines()
                .filter(|l| !drop.iter().any(|d| l.trim() == *d))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let counter = ["counter name \"table_packets\""];
        let hairpin = [
            "ip saddr . ip daddr vmap @self4",
            "ip6 saddr . ip6 daddr vmap @self6",
        ];
        let both: Vec<&str> = counter.iter().chain(&hairpin).copied().collect();
        TableParts {
            no_counter: without(full, &counter),
            no_hairpin: without(full, &hairpin),
            none_of_them: without(&no_source_hook, &both),
            no_source_hook,
        }
    }
}

/// The node's table with 100 admin policies added to the cluster, after checking that the flow
/// still walks the tiers and is still allowed; prints the compile and one-policy update times.
fn tiered_table(cluster: &netpol_core::Cluster, node: &str, flow: (IpAddr, IpAddr, u16)) -> String {
    let (sa, da, port) = flow;
    let mut c = cluster.clone();
    c.admin_policies = netpol_test_support::admin_set::synthetic_admin_policies(100);
    let start = Instant::now();
    let r = compile(&c, EvalOptions::default(), node).expect("compile");
    let compiled = start.elapsed();
    let walks = |d: &netpol_nft::DirectionIr, a: &IpAddr| {
        d.dispatch
            .get(a)
            .is_some_and(|x| d.identities[x.identity].rules.admin.is_some())
    };
    assert!(walks(&r.ir().egress, &sa) && walks(&r.ir().ingress, &da));
    assert!(r.verdict(sa, da, Protocol::Tcp, port));
    // One admin policy changed: its Deny moves to another port.
    let mut changed = c.clone();
    if let Some(rule) = changed.admin_policies[0].ingress.first_mut() {
        rule.ports = Some(vec![netpol_core::AdminPort::Protocol {
            protocol: Protocol::Tcp,
            ports: Some((29999, 29999)),
        }]);
    }
    let start = Instant::now();
    let next = compile(&changed, EvalOptions::default(), node).expect("compile");
    let script = netpol_nft::update_script(&r, &next).expect("incremental");
    let updated = start.elapsed();
    println!(
        "with 100 admin policies: table {} bytes, {} elements, {} admin rules; compile {:.0} ms; \
         one-policy change: compile + update script {:.0} ms, {} lines",
        r.text.len(),
        r.summary.total_elements,
        r.admin_rule_counters().len(),
        compiled.as_secs_f64() * 1e3,
        updated.as_secs_f64() * 1e3,
        script.lines().count()
    );
    r.text
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if Command::new("iperf3").arg("--version").output().is_err() {
        eprintln!("iperf3 is not installed (apt-get install -y iperf3)");
        std::process::exit(1);
    }
    let cluster = generate(&SynthParams {
        workloads: 10_000,
        namespaces: 200,
        policies: 2_000,
        nodes: 100,
        seed: 1,
    });
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for w in &cluster.workloads {
        if let Some(n) = w.node.as_deref() {
            *per_node.entry(n).or_default() += 1;
        }
    }
    let node = per_node
        .iter()
        .max_by_key(|(n, c)| (**c, std::cmp::Reverse(**n)))
        .map(|(n, _)| n.to_string())
        .expect("nodes");
    let r = compile(&cluster, EvalOptions::default(), &node).expect("compile");
    // Two local IPv4 workloads: the source egress-isolated, the destination ingress-isolated,
    // the flow allowed on some TCP port (by the table; the table agrees with the evaluator by
    // the crate's property test).
    let local: Vec<(String, IpAddr)> = cluster
        .workloads
        .iter()
        .filter(|w| w.node.as_deref() == Some(node.as_str()))
        .filter_map(|w| {
            w.addresses
                .iter()
                .find(|a| a.is_ipv4())
                .map(|a| (w.key(), *a))
        })
        .collect();
    let mut ports: Vec<u16> = vec![80, 443, 8080, 8443, 5432, 6379, 3306, 9090, 9100, 53, 5000];
    for ident in &r.ir().ingress.identities {
        for s in &ident.rules.any_peer {
            ports.push(s.first);
        }
        for s in &ident.rules.class_ports {
            ports.push(s.first);
        }
    }
    ports.retain(|p| *p != 0);
    let mut chosen = None;
    'search: for (sk, sa) in &local {
        if !r.ir().egress.dispatch.contains_key(sa) {
            continue;
        }
        for (dk, da) in &local {
            if sa == da || !r.ir().ingress.dispatch.contains_key(da) {
                continue;
            }
            for &p in &ports {
                if r.verdict(*sa, *da, Protocol::Tcp, p) {
                    chosen = Some((sk.clone(), *sa, dk.clone(), *da, p));
                    break 'search;
                }
            }
        }
    }
    let (sk, sa, dk, da, port) = chosen.expect("no allowed isolated pair on the node");
    println!(
        "node {node}: table {} bytes, {} elements; flow {sk} ({sa}) -> {dk} ({da}) tcp/{port}, \
         egress identity {} of {}, ingress identity {} of {}",
        r.text.len(),
        r.summary.total_elements,
        r.ir().egress.dispatch[&sa].identity,
        r.ir().egress.identities.len(),
        r.ir().ingress.dispatch[&da].identity,
        r.ir().ingress.identities.len()
    );
    println!(
        "load average before: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let host = |name: &str, a: IpAddr| LabHost {
        name: name.to_string(),
        node: Some(node.clone()),
        addresses: vec![a],
        ..LabHost::default()
    };
    let lab = Lab::build(&LabSpec {
        nodes: vec![node.clone()],
        hosts: vec![host(&sk, sa), host(&dk, da)],
    })
    .expect("lab (root needed)");
    let (src_ns, dst_ns) = (
        lab.host_netns(&sk).expect("src").to_string(),
        lab.host_netns(&dk).expect("dst").to_string(),
    );
    let ct_only = "table inet netpol {}\ndelete table inet netpol\ntable inet netpol {\n\
        chain forward {\n type filter hook forward priority filter; policy accept;\n\
        ct state established,related accept\n }\n}\n";
    let empty = "table inet netpol {}\ndelete table inet netpol\n";
    // The full table with the two workloads taken out of the dispatch maps: the same table in
    // memory, but this flow meets only the dispatch misses. Separates the cost of the lookups
    // from any cost of the table's mere size.
    let bypass = format!(
        "{}delete element inet netpol eg_dispatch4 {{ {sa} }}\ndelete element inet netpol in_dispatch4 {{ {da} }}\n",
        r.text
    );
    // The lab names the node side of a host's veth `h<n>`, which the default workload-interface
    // names do not match: the same table with the source-address check on those interfaces.
    let checked = compile_for_node(
        &cluster,
        EvalOptions::default(),
        &node,
        &NodeOptions {
            source_check: SourceCheck::Interfaces(vec!["h*".to_string()]),
            ..NodeOptions::default()
        },
    )
    .expect("compile");
    let tiered = tiered_table(&cluster, &node, (sa, da, port));
    let compare = std::env::var("NETPOL_PACKET_COMPARE")
        .ok()
        .map(|path| std::fs::read_to_string(&path).expect("NETPOL_PACKET_COMPARE file"));
    let mut configs: Vec<(&str, &str)> = vec![
        ("no ruleset", empty),
        ("conntrack-only ruleset", ct_only),
        ("full ruleset", &r.text),
        ("full, flow not isolated", &bypass),
        ("full, source check on", &checked.text),
        ("full + 100 admin policies", &tiered),
    ];
    if let Some(text) = &compare {
        configs.push(("full ruleset, compared", text));
    }
    let attribution = std::env::var_os("NETPOL_PACKET_ATTRIBUTE").is_some();
    let parts = attribution.then(|| TableParts::of(&cluster, &node, &r.text));
    if let Some(parts) = &parts {
        configs.push(("full, no source-check hook", &parts.no_source_hook));
        configs.push(("full, no table counter", &parts.no_counter));
        configs.push(("full, no hairpin lookup", &parts.no_hairpin));
        configs.push(("full, none of the three", &parts.none_of_them));
    }
    let mut tput: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut tput_eff: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut rate: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut conn_cpu: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let rounds: usize = std::env::var("NETPOL_PACKET_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS);
    for round in 0..rounds {
        // Rotate the order so no configuration always runs right after a table load or first.
        for k in 0..configs.len() {
            let (name, script) = configs[(k + round) % configs.len()];
            lab.apply_ruleset(&node, script).expect("ruleset");
            let (t, te) = iperf(&src_ns, &dst_ns, sa, da, port);
            let (c, cc) = cps(&src_ns, &dst_ns, sa, da, port);
            eprintln!(
                "round {round} {name:<24} {:>6.2} Gbit/s ({:>6.2} Gbit per CPU-s) {:>7.0} conn/s ({:>5.1} CPU us/conn)",
                t / 1e9,
                te / 1e9,
                c,
                cc
            );
            tput.entry(name).or_default().push(t);
            tput_eff.entry(name).or_default().push(te);
            rate.entry(name).or_default().push(c);
            conn_cpu.entry(name).or_default().push(cc);
        }
    }
    println!(
        "load average after: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let base_t = median(tput["no ruleset"].clone());
    let base_te = median(tput_eff["no ruleset"].clone());
    let base_c = median(rate["no ruleset"].clone());
    let base_cc = median(conn_cpu["no ruleset"].clone());
    println!("medians of {rounds} interleaved rounds (percent of the no-ruleset figure):");
    for &(name, _) in &configs {
        let t = median(tput[name].clone());
        let te = median(tput_eff[name].clone());
        let c = median(rate[name].clone());
        let cc = median(conn_cpu[name].clone());
        println!(
            "{name:<24} iperf3 {:>6.2} Gbit/s ({:>5.1}%), {:>6.2} Gbit per CPU-s ({:>5.1}%) | new TCP conns {:>6.0}/s ({:>5.1}%), {:>5.1} CPU us/conn (rate at equal CPU {:>5.1}%)",
            t / 1e9,
            100.0 * t / base_t,
            te / 1e9,
            100.0 * te / base_te,
            c,
            100.0 * c / base_c,
            cc,
            100.0 * base_cc / cc
        );
    }
}
