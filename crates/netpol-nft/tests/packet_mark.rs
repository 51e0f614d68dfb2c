//! The table must not disturb the packet mark other components set and read around it: kube-proxy
//! sets its masquerade bit (0x4000) in `prerouting` and reads it in `postrouting`, with the
//! `forward` hook (this table) in between. A second table in the lab node does exactly that for
//! a flow this table checks through the peer classification, and counts in `postrouting` the
//! packets whose mark survived. Needs root (fails otherwise).

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use netpol_core::*;
use netpol_dataplane::{Lab, LabHost, LabSpec, ProbeProtocol};
use netpol_nft::compile;

const WEB: &str = "10.83.0.2";
const DB: &str = "10.83.0.1";

fn nft(netns: &str, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, "nft"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("nft runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
    }
    let out = child.wait_with_output().expect("nft finishes");
    assert!(out.status.success(), "nft {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_packet_mark_set_before_the_table_survives_it_for_checked_connections() {
    require_root();
    // web admits db on TCP 80 by a pod selector: the first packet goes through the peer
    // classification and a class grant, the path that needs a register.
    let mut web_in = policy("shop", "web-in", sel(&[("app", "web")]), true, false);
    web_in.ingress.push(Rule {
        peers: vec![pods_in_own_ns(&[("app", "db")])],
        ports: vec![tcp(80)],
    });
    let state = cluster(
        namespaces(&["shop"]),
        vec![
            pod("shop", "web", &[("app", "web")], &[WEB], &[]).on("n1"),
            pod("shop", "db", &[("app", "db")], &[DB], &[]).on("n1"),
        ],
        vec![web_in],
    );
    let r = compile(&state, EvalOptions::default(), "n1").expect("compiles");
    assert!(
        r.text.contains("ct mark . meta l4proto . th dport map"),
        "the flow is decided by a class grant"
    );
    let host = |name: &str, addr: &str| LabHost {
        name: name.into(),
        node: Some("n1".into()),
        addresses: vec![ip(addr)],
        tcp_ports: vec![80, 81],
        ..LabHost::default()
    };
    let lab = Lab::build(&LabSpec {
        nodes: vec!["n1".into()],
        hosts: vec![host("web", WEB), host("db", DB)],
    })
    .expect("lab");
    let node = lab.node_netns("n1").expect("node").to_owned();
    lab.apply_ruleset("n1", &r.text).expect("the table loads");
    // kube-proxy's part, in a table of its own (removed with the lab's namespaces).
    nft(
        &node,
        &["-f", "-"],
        Some(&format!(
            "table inet kubeproxy {{\n\
             counter to_web {{}}\n counter kept {{}}\n\
             chain pre {{ type filter hook prerouting priority mangle; policy accept;\n\
               ip daddr {WEB} tcp dport 80 meta mark set meta mark or 0x4000\n }}\n\
             chain post {{ type filter hook postrouting priority srcnat; policy accept;\n\
               ip daddr {WEB} tcp dport 80 counter name to_web\n\
               ip daddr {WEB} tcp dport 80 meta mark and 0x4000 == 0x4000 counter name kept\n }}\n}}\n"
        )),
    );
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
    assert!(probe(80), "db -> web:80 is allowed");
    assert!(!probe(81), "db -> web:81 is denied");
    assert!(probe(80), "and allowed again");
    let (to_web, kept) = (
        counter_packets(&node, "kubeproxy", "to_web"),
        counter_packets(&node, "kubeproxy", "kept"),
    );
    // At least the two SYNs, each checked through the classification.
    assert!(to_web >= 2, "{to_web} packets seen leaving for web:80");
    assert_eq!(
        kept, to_web,
        "packets that lost the 0x4000 bit in the table"
    );
}
