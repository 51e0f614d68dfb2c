//! Wall-clock timings of the lab: build and teardown of a 9-host lab, and 81 concurrent TCP probes
//! (every ordered pair, self included) with about half of them dropped by nft rules.
//!
//! Run as root: `cargo bench -p netpol-dataplane --bench lab`.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use netpol_dataplane::{Lab, LabHost, LabSpec, ProbeProtocol, ProbeRequest};

const PORT: u16 = 8080;
const ITERATIONS: usize = 5;

fn spec() -> LabSpec {
    let mut hosts = Vec::new();
    for k in 0..7u8 {
        hosts.push(LabHost {
            name: format!("ns/vm-{k}"),
            node: Some(format!("node-{}", k % 3)),
            addresses: vec![IpAddr::from([10, 66, 20, 10 + k])],
            tcp_ports: vec![PORT],
            udp_ports: vec![PORT],
            sctp_ports: vec![PORT],
        });
    }
    for k in 0..2u8 {
        hosts.push(LabHost {
            name: format!("external-{k}"),
            node: None,
            addresses: vec![IpAddr::from([192, 0, 2, 10 + k])],
            tcp_ports: vec![PORT],
            udp_ports: vec![PORT],
            sctp_ports: vec![PORT],
        });
    }
    LabSpec {
        nodes: (0..3).map(|i| format!("node-{i}")).collect(),
        hosts,
    }
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the lab bench needs root (network namespaces)");
        std::process::exit(1);
    }
    let spec = spec();
    // Blocked pairs: (i + j) odd, except between two external hosts (no node in their path).
    let mut blocked = HashSet::new();
    for (i, a) in spec.hosts.iter().enumerate() {
        for (j, b) in spec.hosts.iter().enumerate() {
            if (i + j) % 2 == 1 && (a.node.is_some() || b.node.is_some()) {
                blocked.insert((a.addresses[0], b.addresses[0]));
            }
        }
    }
    let elements: Vec<String> = blocked.iter().map(|(s, d)| format!("{s} . {d}")).collect();
    let ruleset = format!(
        "table inet netpol {{
            set blocked {{ type ipv4_addr . ipv4_addr; elements = {{ {} }} }}
            chain forward {{
                type filter hook forward priority filter; policy accept;
                ip saddr . ip daddr @blocked drop
            }}
        }}",
        elements.join(", ")
    );
    let requests: Vec<ProbeRequest> = spec
        .hosts
        .iter()
        .flat_map(|from| {
            spec.hosts.iter().map(move |to| ProbeRequest {
                from_host: from.name.clone(),
                to_addr: to.addresses[0],
                protocol: ProbeProtocol::Tcp,
                port: PORT,
                timeout: Duration::from_millis(500),
            })
        })
        .collect();

    let mut builds = Vec::new();
    let mut open_probes = Vec::new();
    let mut filtered_probes = Vec::new();
    let mut teardowns = Vec::new();
    for _ in 0..ITERATIONS {
        let started = Instant::now();
        let lab = Lab::build(&spec).unwrap_or_else(|e| panic!("build: {e}"));
        builds.push(started.elapsed());

        let started = Instant::now();
        let open = lab.probe_many(&requests);
        open_probes.push(started.elapsed());
        assert!(
            open.iter().all(|r| matches!(r, Ok(true))),
            "all pass without rules"
        );

        for node in &spec.nodes {
            lab.apply_ruleset(node, &ruleset)
                .unwrap_or_else(|e| panic!("ruleset: {e}"));
        }
        let started = Instant::now();
        let results = lab.probe_many(&requests);
        filtered_probes.push(started.elapsed());
        let mut dropped = 0;
        for (request, result) in requests.iter().zip(&results) {
            let from = spec
                .hosts
                .iter()
                .find(|h| h.name == request.from_host)
                .map(|h| h.addresses[0]);
            let expect_blocked = from.is_some_and(|f| blocked.contains(&(f, request.to_addr)));
            dropped += usize::from(expect_blocked);
            assert_eq!(result.as_ref().ok(), Some(&!expect_blocked), "{request:?}");
        }
        if teardowns.is_empty() {
            println!("{} probes, {dropped} dropped by rules", requests.len());
        }

        let started = Instant::now();
        drop(lab);
        teardowns.push(started.elapsed());
    }
    let report = |what: &str, times: &mut Vec<Duration>| {
        times.sort();
        println!(
            "{what:<44} min {:>8.1?}  median {:>8.1?}  max {:>8.1?}  (n={})",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1],
            times.len()
        );
    };
    report("lab build, 3 nodes + 9 hosts", &mut builds);
    report("81 TCP probes, no rules", &mut open_probes);
    report(
        "81 TCP probes, ~half dropped (500 ms timeout)",
        &mut filtered_probes,
    );
    report("lab teardown (Drop)", &mut teardowns);
}
