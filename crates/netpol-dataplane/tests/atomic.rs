//! Re-applying a stateful ruleset many times, written differently each time, must never open a
//! window: established connections survive, the allowed port always answers, the denied port
//! never does.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{host, ip, require_root};
use netpol_dataplane::{Lab, LabSpec, ProbeProtocol, ProbeRequest};

const ALLOWED: u16 = 8080;
const DENIED: u16 = 9090;
const REAPPLIES: usize = 60;

/// The ruleset for node-b, in one of several equivalent spellings. Every variant allows
/// `ALLOWED` and denies `DENIED` towards vm-b; they differ in set element order, unrelated
/// elements, named versus anonymous sets and chain layout.
fn ruleset(variant: usize) -> String {
    let unrelated = 20_000 + (variant % 7) as u16;
    let to_vm_b = match variant % 4 {
        0 => format!(
            "set allowed_tcp {{ type inet_service; elements = {{ {ALLOWED}, {unrelated} }} }}
             chain to_vm_b {{ tcp dport @allowed_tcp accept; drop; }}"
        ),
        1 => format!(
            "set allowed_tcp {{ type inet_service; elements = {{ {unrelated}, 7, {ALLOWED}, 443 }} }}
             chain to_vm_b {{ tcp dport @allowed_tcp accept; counter drop; }}"
        ),
        2 => format!("chain to_vm_b {{ tcp dport {{ {unrelated}, {ALLOWED} }} accept; drop; }}"),
        _ => format!(
            "chain to_vm_b {{ tcp dport {DENIED} drop; tcp dport {ALLOWED} accept; tcp dport {unrelated} accept; reject; }}"
        ),
    };
    let header = if variant.is_multiple_of(2) {
        "table inet netpol\ndelete table inet netpol\n"
    } else {
        "add table inet netpol\ndelete table inet netpol\n"
    };
    format!(
        "{header}table inet netpol {{
            {to_vm_b}
            chain forward {{
                type filter hook forward priority filter; policy accept;
                ct state established,related accept
                ct state invalid drop
                ip daddr 10.66.21.80 jump to_vm_b
                ip6 daddr 2001:db8:66::80 jump to_vm_b
            }}
        }}
"
    )
}

/// Sends numbered chunks and checks each echo until `stop`; returns bytes round-tripped, or the
/// first failure.
fn keep_talking(mut stream: TcpStream, stop: &AtomicBool, id: usize) -> Result<u64, String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut total = 0u64;
    let mut seq = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let chunk = format!("conn {id} chunk {seq:08}\n").repeat(8);
        stream
            .write_all(chunk.as_bytes())
            .map_err(|e| format!("write #{seq}: {e}"))?;
        let mut back = vec![0u8; chunk.len()];
        stream
            .read_exact(&mut back)
            .map_err(|e| format!("echo #{seq}: {e}"))?;
        if back != chunk.as_bytes() {
            return Err(format!("echo #{seq} came back corrupted"));
        }
        total += chunk.len() as u64;
        seq += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(total)
}

#[test]
fn reapplying_a_stateful_ruleset_sixty_times_never_breaks_connections_or_opens_a_window() {
    require_root();
    let ports = [ALLOWED, DENIED];
    let spec = LabSpec {
        nodes: vec!["node-a".into(), "node-b".into()],
        hosts: vec![
            host(
                "vm-a",
                Some("node-a"),
                &["10.66.20.70", "2001:db8:66::70"],
                &ports,
                &[],
                &[],
            ),
            host(
                "vm-b",
                Some("node-b"),
                &["10.66.21.80", "2001:db8:66::80"],
                &ports,
                &[],
                &[],
            ),
            host("external", None, &["192.0.2.10"], &ports, &[], &[]),
        ],
    };
    let lab = Lab::build(&spec).expect("lab");
    lab.apply_ruleset("node-b", &ruleset(0))
        .expect("first ruleset");

    let targets = [
        ("vm-a", SocketAddr::new(ip("10.66.21.80"), ALLOWED)),
        ("vm-a", SocketAddr::new(ip("2001:db8:66::80"), ALLOWED)),
        ("external", SocketAddr::new(ip("10.66.21.80"), ALLOWED)),
        ("vm-a", SocketAddr::new(ip("10.66.21.80"), ALLOWED)),
    ];
    let streams: Vec<TcpStream> = targets
        .iter()
        .map(|(from, to)| {
            lab.connect_tcp(from, *to, Duration::from_secs(2))
                .expect("connect")
                .unwrap_or_else(|| panic!("{from} -> {to} should connect under the ruleset"))
        })
        .collect();
    // The denied port must really be denied before the churn starts, or the test proves nothing.
    assert!(!lab
        .probe(
            "vm-a",
            ip("10.66.21.80"),
            ProbeProtocol::Tcp,
            DENIED,
            Duration::from_millis(300)
        )
        .expect("probe"));

    let stop = Arc::new(AtomicBool::new(false));
    let allowed_rounds = AtomicU64::new(0);
    let denied_rounds = AtomicU64::new(0);
    let mut apply_times = Vec::new();
    let requests_for = |port: u16, timeout: Duration| -> Vec<ProbeRequest> {
        [
            ("vm-a", "10.66.21.80"),
            ("vm-a", "2001:db8:66::80"),
            ("external", "10.66.21.80"),
        ]
        .iter()
        .map(|(from, to)| ProbeRequest {
            from_host: (*from).into(),
            to_addr: ip(to),
            protocol: ProbeProtocol::Tcp,
            port,
            timeout,
        })
        .collect()
    };
    // A probe that wrongly passes or fails, with the protocol of what happened.
    let probe_loop = |requests: Vec<ProbeRequest>, expect: bool, rounds: &AtomicU64| {
        let mut wrong = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            for (request, result) in requests.iter().zip(lab.probe_many(&requests)) {
                if result.expect("probe request") != expect {
                    wrong.push(request.clone());
                }
            }
            rounds.fetch_add(1, Ordering::SeqCst);
        }
        wrong
    };

    let (talk_results, allowed_failures, denied_successes) = std::thread::scope(|scope| {
        let talkers: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(id, stream)| {
                let stop = stop.clone();
                scope.spawn(move || keep_talking(stream, &stop, id))
            })
            .collect();
        // Allowed probes answer in about a millisecond: one tight loop. Denied ones wait out
        // their timeout, so several loops run staggered to sample the churn densely.
        let allowed = scope.spawn(|| {
            probe_loop(
                requests_for(ALLOWED, Duration::from_secs(2)),
                true,
                &allowed_rounds,
            )
        });
        let denied: Vec<_> = (0..3)
            .map(|k| {
                let (probe_loop, requests_for, denied_rounds) =
                    (&probe_loop, &requests_for, &denied_rounds);
                scope.spawn(move || {
                    std::thread::sleep(Duration::from_millis(100 * k));
                    probe_loop(
                        requests_for(DENIED, Duration::from_millis(300)),
                        false,
                        denied_rounds,
                    )
                })
            })
            .collect();

        for variant in 1..=REAPPLIES {
            let started = Instant::now();
            lab.apply_ruleset("node-b", &ruleset(variant))
                .expect("re-apply");
            apply_times.push(started.elapsed());
            std::thread::sleep(Duration::from_millis(15));
        }
        // Let the last ruleset see some denied probes too.
        let rounds_at_end = denied_rounds.load(Ordering::SeqCst);
        while denied_rounds.load(Ordering::SeqCst) < rounds_at_end + 3 {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::SeqCst);
        let allowed_failures = allowed.join().expect("allowed prober");
        let denied_successes: Vec<ProbeRequest> = denied
            .into_iter()
            .flat_map(|d| d.join().expect("denied prober"))
            .collect();
        let talk: Vec<Result<u64, String>> = talkers
            .into_iter()
            .map(|t| t.join().expect("talker"))
            .collect();
        (talk, allowed_failures, denied_successes)
    });

    for (i, result) in talk_results.iter().enumerate() {
        match result {
            Ok(bytes) => assert!(
                *bytes > 10_000,
                "connection {i} barely moved: {bytes} bytes"
            ),
            Err(e) => panic!("established connection {i} ({:?}) broke: {e}", targets[i]),
        }
    }
    assert!(
        allowed_failures.is_empty(),
        "allowed probes failed: {allowed_failures:#?}"
    );
    assert!(
        denied_successes.is_empty(),
        "denied probes got through: {denied_successes:#?}"
    );
    let (allowed, denied) = (
        allowed_rounds.load(Ordering::SeqCst),
        denied_rounds.load(Ordering::SeqCst),
    );
    assert!(
        allowed >= 50,
        "only {allowed} allowed-probe rounds ran during the re-applies"
    );
    assert!(
        denied >= 15,
        "only {denied} denied-probe rounds ran during the re-applies"
    );
    assert_eq!(apply_times.len(), REAPPLIES);
    let slowest = apply_times.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{REAPPLIES} re-applies; probe rounds of 3: {allowed} to the allowed port, {denied} to the denied port; slowest apply {slowest:?}"
    );
}

#[test]
fn every_ruleset_variant_is_valid_and_denies_the_denied_port() {
    require_root();
    // Static check of the variants themselves, so the churn test cannot pass on broken text.
    let ns = netpol_dataplane::Netns::create("variants").expect("netns");
    for variant in 0..8 {
        let text = ruleset(variant);
        netpol_dataplane::nft::apply(Some(ns.name()), &text)
            .unwrap_or_else(|e| panic!("variant {variant}: {e}\n{text}"));
        let listing = netpol_dataplane::nft::list_table_with(
            Some(ns.name()),
            "inet",
            "netpol",
            netpol_dataplane::Listing::Full,
        )
        .expect("list")
        .expect("present");
        assert!(listing.contains(&ALLOWED.to_string()), "variant {variant}");
        let denied_mentions = listing.matches(&DENIED.to_string()).count();
        // Only the explicit-drop variant names the denied port, and then in a drop rule.
        if denied_mentions > 0 {
            assert!(
                listing.contains(&format!("tcp dport {DENIED} drop")),
                "variant {variant}"
            );
        }
    }
}
