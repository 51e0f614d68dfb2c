//! Names at the Kubernetes API's maximum lengths (namespace 63 bytes, policy and pod names 253,
//! label values 63) through the compiler, the real kernel and the denied-packet log: every nft name
//! derived from them must load, stay distinct, credit the right policy's counter and name the
//! right chain in the log. Needs root (fails otherwise).

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use netpol_core::*;
use netpol_dataplane::{Lab, LabHost, LabSpec, NflogSocket, ProbeProtocol};
use netpol_nft::{compile, parse_denied_log_prefix, DENIED_LOG_GROUP, MAX_COUNTER_NAME};

const WEB: &str = "10.84.0.2";
const DB: &str = "10.84.0.1";

/// A DNS label of 63 bytes starting with `c`.
fn label63(c: char) -> String {
    format!("{c}{}", "x".repeat(62))
}

/// Two policies whose 253-byte names differ only in their last byte, in a 63-byte namespace:
/// the first admits db on TCP 80, the second on TCP 81, both selecting by 63-byte label values.
fn state() -> (Cluster, [String; 2]) {
    let ns = label63('n');
    let stem = "p".repeat(252);
    let names = [format!("{stem}a"), format!("{stem}b")];
    let (web_label, db_label) = (label63('w'), label63('d'));
    let policies = names
        .iter()
        .zip([80, 81])
        .map(|(name, port)| {
            let mut p = policy(&ns, name, sel(&[("app", &web_label)]), true, false);
            p.ingress.push(Rule {
                peers: vec![pods_in_own_ns(&[("app", &db_label)])],
                ports: vec![tcp(port)],
            });
            p
        })
        .collect();
    let web_name = format!("web{}", "w".repeat(250));
    let db_name = format!("db{}", "d".repeat(251));
    let state = cluster(
        namespaces(&[&ns]),
        vec![
            pod(&ns, &web_name, &[("app", &web_label)], &[WEB], &[]).on("n1"),
            pod(&ns, &db_name, &[("app", &db_label)], &[DB], &[]).on("n1"),
        ],
        policies,
    );
    let keys = names.map(|n| format!("{ns}/{n}"));
    (state, keys)
}

#[test]
fn policies_with_names_at_the_api_maximum_load_count_and_log_as_themselves() {
    require_root();
    let (state, keys) = state();
    let r = compile(&state, EvalOptions::default(), "n1").expect("compiles");
    let counter_of = |key: &str| {
        r.policy_counters()
            .iter()
            .find(|c| c.key == key)
            .unwrap_or_else(|| panic!("no counter for {key}"))
            .counter
            .clone()
    };
    let counters = [counter_of(&keys[0]), counter_of(&keys[1])];
    assert_ne!(counters[0], counters[1]);
    for c in &counters {
        assert!(c.len() <= MAX_COUNTER_NAME, "{c}");
        // Declared and referenced under the same name.
        assert!(r.text.contains(&format!("counter {c} {{")), "{c} declared");
        assert!(r.text.contains(&format!(": \"{c}\"")), "{c} referenced");
    }

    let host = |name: &str, addr: &str| LabHost {
        name: name.into(),
        node: Some("n1".into()),
        addresses: vec![ip(addr)],
        tcp_ports: vec![80, 81, 82],
        ..LabHost::default()
    };
    let lab = Lab::build(&LabSpec {
        nodes: vec!["n1".into()],
        hosts: vec![host("web", WEB), host("db", DB)],
    })
    .expect("lab");
    let node = lab.node_netns("n1").expect("node").to_owned();
    lab.apply_ruleset("n1", &r.text).expect("the table loads");
    let mut socket = NflogSocket::open(Some(&node), DENIED_LOG_GROUP).expect("listener");
    let probe = |port| {
        lab.probe(
            "db",
            ip(WEB),
            ProbeProtocol::Tcp,
            port,
            Duration::from_millis(300),
        )
        .expect("probe")
    };
    assert!(probe(80), "the first policy admits TCP 80");
    assert_eq!(counter_packets(&node, "netpol", &counters[0]), 1);
    assert_eq!(counter_packets(&node, "netpol", &counters[1]), 0);
    assert!(probe(81), "the second policy admits TCP 81");
    assert_eq!(counter_packets(&node, "netpol", &counters[1]), 1);
    assert!(!probe(82), "nothing admits TCP 82");

    let record = socket
        .recv_timeout(Some(Duration::from_millis(500)))
        .expect("receive")
        .expect("the denied packet is logged");
    assert!(record.prefix.len() <= 127, "{}", record.prefix);
    let (direction, chain) = parse_denied_log_prefix(&record.prefix).expect("our prefix");
    let info = r
        .denied_chain(direction, chain)
        .expect("the prefix names a chain of the ruleset");
    assert_eq!(direction, Direction::Ingress);
    assert_eq!(info.policies, keys.as_slice());
    assert_eq!(info.workloads.len(), 1);
    assert!(info.workloads[0].contains("/web"), "{:?}", info.workloads);
}
