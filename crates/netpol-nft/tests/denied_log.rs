//! The denied-packet log rules against the real kernel: a compiled table in a lab node, an NFLOG
//! listener on `DENIED_LOG_GROUP` in that node, real packets. Each denied packet must be dropped
//! and counted whether or not it is logged; logged ones carry the prefix of the chain that denied
//! them; a flood is logged only up to the node-wide limit. Needs root (fails otherwise).

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use netpol_core::*;
use netpol_dataplane::{
    Lab, LabHost, LabSpec, NflogRecord, NflogSocket, ProbeProtocol, ProbeRequest,
};
use netpol_nft::{
    compile, denied_log_prefix, DirectionIr, DENIED_LOG_BURST, DENIED_LOG_GROUP,
    DENIED_LOG_RATE_PER_SECOND,
};

const WEB: &str = "10.82.0.2";
const DB: &str = "10.82.0.1";
const EXT: &str = "192.0.2.10";

/// web admits db on TCP 80; db may send only to web on TCP 80.
fn state() -> Cluster {
    let mut web_in = policy("shop", "web-in", sel(&[("app", "web")]), true, false);
    web_in.ingress.push(Rule {
        peers: vec![pods_in_own_ns(&[("app", "db")])],
        ports: vec![tcp(80)],
    });
    let mut db_out = policy("shop", "db-out", sel(&[("app", "db")]), false, true);
    db_out.egress.push(Rule {
        peers: vec![pods_in_own_ns(&[("app", "web")])],
        ports: vec![tcp(80)],
    });
    cluster(
        namespaces(&["shop"]),
        vec![
            pod("shop", "web", &[("app", "web")], &[WEB], &[]).on("n1"),
            pod("shop", "db", &[("app", "db")], &[DB], &[]).on("n1"),
        ],
        vec![web_in, db_out],
    )
}

fn lab() -> Lab {
    let host = |name: &str, node: Option<&str>, addr: &str| LabHost {
        name: name.into(),
        node: node.map(Into::into),
        addresses: vec![ip(addr)],
        tcp_ports: vec![80, 81],
        udp_ports: vec![9],
        ..LabHost::default()
    };
    Lab::build(&LabSpec {
        nodes: vec!["n1".into()],
        hosts: vec![
            host("web", Some("n1"), WEB),
            host("db", Some("n1"), DB),
            host("ext", None, EXT),
        ],
    })
    .expect("lab")
}

/// Everything that arrives within `quiet` of the previous record.
fn drain(socket: &mut NflogSocket, quiet: Duration) -> Vec<NflogRecord> {
    let mut out = Vec::new();
    while let Some(r) = socket.recv_timeout(Some(quiet)).expect("receive") {
        out.push(r);
    }
    out
}

#[test]
fn denied_packets_are_logged_with_their_chain_up_to_the_node_wide_limit_and_always_dropped() {
    require_root();
    let lab = lab();
    let node = lab.node_netns("n1").expect("node").to_owned();
    let r = compile(&state(), EvalOptions::default(), "n1").expect("compiles");
    lab.apply_ruleset("n1", &r.text).expect("the table loads");
    let mut socket = NflogSocket::open(Some(&node), DENIED_LOG_GROUP).expect("listener");
    let chain_of = |d: &DirectionIr, addr: &str| {
        let i = d.dispatch.get(&ip(addr)).expect("dispatched").identity;
        d.identities[i].chain.clone()
    };
    let web_in = denied_log_prefix(Direction::Ingress, &chain_of(&r.ir().ingress, WEB));
    let db_out = denied_log_prefix(Direction::Egress, &chain_of(&r.ir().egress, DB));

    // db -> web:81 is denied by db's egress before web's ingress is looked at.
    let probe = |from: &str, to: &str, port| {
        lab.probe(
            from,
            ip(to),
            ProbeProtocol::Tcp,
            port,
            Duration::from_millis(300),
        )
        .expect("probe")
    };
    assert!(probe("db", WEB, 80), "db -> web:80 is allowed both ways");
    assert!(!probe("db", WEB, 81));
    let got = drain(&mut socket, Duration::from_millis(500));
    assert!(!got.is_empty(), "nothing logged for db -> web:81");
    for rec in &got {
        assert_eq!(rec.prefix, db_out, "{rec:?}");
        assert_eq!(
            (rec.src, rec.dst, rec.dst_port),
            (ip(DB), ip(WEB), Some(81))
        );
    }
    // ext -> web:81: web's ingress.
    assert!(!probe("ext", WEB, 81));
    let got = drain(&mut socket, Duration::from_millis(500));
    assert!(!got.is_empty(), "nothing logged for ext -> web:81");
    assert!(
        got.iter()
            .all(|rec| rec.prefix == web_in && rec.src == ip(EXT)),
        "{got:?}"
    );

    // A flood of new UDP flows from ext: every packet is dropped and counted, only up to the
    // burst plus the rate over the elapsed time are logged.
    let sent = 600;
    let before = counter_packets(&node, "netpol", "denied_ingress");
    let start = Instant::now();
    let requests: Vec<ProbeRequest> = (0..sent)
        .map(|_| ProbeRequest {
            from_host: "ext".into(),
            to_addr: ip(WEB),
            protocol: ProbeProtocol::Udp,
            port: 9,
            timeout: Duration::from_millis(20),
        })
        .collect();
    let answered = lab
        .probe_many(&requests)
        .into_iter()
        .filter(|r| matches!(r, Ok(true)))
        .count();
    let logged = drain(&mut socket, Duration::from_millis(300));
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "flood: {sent} sent, {} logged in {elapsed:.2}s",
        logged.len()
    );
    assert_eq!(answered, 0, "the flood is denied");
    let dropped = counter_packets(&node, "netpol", "denied_ingress") - before;
    assert_eq!(dropped, sent as u64, "every packet is dropped and counted");
    // A second of slack: some kernels size the bucket as rate + burst rather than burst.
    let bound =
        f64::from(DENIED_LOG_BURST) + f64::from(DENIED_LOG_RATE_PER_SECOND) * (elapsed + 1.0);
    assert!(
        (logged.len() as f64) <= bound && logged.len() < sent,
        "{} of {sent} logged in {elapsed:.2}s (bound {bound:.0})",
        logged.len()
    );
    assert!(
        logged.len() >= DENIED_LOG_RATE_PER_SECOND as usize,
        "the limit lets at least one second's rate through: {}",
        logged.len()
    );
    assert!(logged
        .iter()
        .all(|rec| rec.prefix == web_in && rec.dst_port == Some(9)));
    assert_eq!(socket.stats().overruns, 0);
}
