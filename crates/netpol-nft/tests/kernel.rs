//! The real kernel: load the users'-page table into a throwaway router namespace, send real
//! packets through it from leaf namespaces, and read which named counter each one credited.
//! Skipped (with a message) when not root or without `ip`/`nft`. Never touches the root namespace.

mod common;

use std::process::{Command, Output};

use common::*;
use netpol_core::EvalOptions;
use netpol_nft::compile;

fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn ok(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes the namespaces it created, also when the test fails.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}

/// A leaf namespace with one address, wired to the router by a veth.
fn leaf(nss: &mut Namespaces, router: &str, tag: &str, n: usize, addr: &str) -> String {
    let name = format!("{}-{tag}", nss.0[0]);
    ok(&["ip", "netns", "add", &name]);
    nss.0.push(name.clone());
    let (inner, outer) = (
        format!("np{}i{n}", std::process::id() % 10000),
        format!("np{}o{n}", std::process::id() % 10000),
    );
    ok(&[
        "ip", "-n", &name, "link", "add", &inner, "type", "veth", "peer", "name", &outer, "netns",
        router,
    ]);
    ok(&["ip", "-n", &name, "link", "set", "lo", "up"]);
    ok(&["ip", "-n", &name, "link", "set", &inner, "up"]);
    ok(&[
        "ip",
        "-n",
        &name,
        "addr",
        "add",
        &format!("{addr}/32"),
        "dev",
        &inner,
    ]);
    ok(&[
        "ip",
        "-n",
        &name,
        "route",
        "add",
        "169.254.1.1",
        "dev",
        &inner,
    ]);
    ok(&[
        "ip",
        "-n",
        &name,
        "route",
        "add",
        "default",
        "via",
        "169.254.1.1",
        "dev",
        &inner,
    ]);
    ok(&["ip", "-n", router, "link", "set", &outer, "up"]);
    ok(&[
        "ip",
        "-n",
        router,
        "addr",
        "add",
        "169.254.1.1/32",
        "dev",
        &outer,
    ]);
    ok(&[
        "ip",
        "-n",
        router,
        "route",
        "add",
        &format!("{addr}/32"),
        "dev",
        &outer,
    ]);
    // The router answers ARP for 169.254.1.1 on every leg.
    ok(&[
        "ip",
        "netns",
        "exec",
        router,
        "sysctl",
        "-qw",
        &format!("net.ipv4.conf.{outer}.proxy_arp=1"),
    ]);
    name
}

/// Sends one new-connection packet: a UDP datagram, or a TCP SYN (the connect may fail; the SYN
/// still crosses the router).
fn send(ns: &str, proto: &str, dst: &str, port: u16) {
    let script = format!("exec 3<>/dev/{proto}/{dst}/{port}; echo x >&3");
    let _ = run(&[
        "ip", "netns", "exec", ns, "timeout", "2", "bash", "-c", &script,
    ]);
}

#[test]
fn real_packets_through_the_users_page_table_credit_the_expected_counters() {
    // Privileged: without root, ip or nft this fails (CI runs as root), it never skips.
    require_root();
    assert!(
        nft_available() && Command::new("ip").arg("-V").output().is_ok(),
        "this test needs ip and nft (apt-get install -y nftables iproute2)"
    );
    let router = format!("npnft-{}", std::process::id());
    ok(&["ip", "netns", "add", &router]);
    let mut nss = Namespaces(vec![router.clone()]);
    ok(&[
        "ip",
        "netns",
        "exec",
        &router,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ]);
    let a = leaf(&mut nss, &router, "a", 0, "10.66.20.70");
    let b = leaf(&mut nss, &router, "b", 1, "10.66.20.71");
    let c = leaf(&mut nss, &router, "c", 2, "10.66.20.72");
    let x = leaf(&mut nss, &router, "x", 3, "192.0.2.53");

    let table = compile(&users_page(), EvalOptions::default(), "virtlab-2").unwrap();
    let path = std::env::temp_dir().join(format!("netpol-nft-kernel-{}.nft", std::process::id()));
    std::fs::write(&path, &table.text).unwrap();
    ok(&[
        "ip",
        "netns",
        "exec",
        &router,
        "nft",
        "-f",
        path.to_str().unwrap(),
    ]);
    // Loading twice must work too (the script replaces the table atomically).
    ok(&[
        "ip",
        "netns",
        "exec",
        &router,
        "nft",
        "-f",
        path.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&path);

    let from_b = "pol_test-project_allow-ingress-from-vm-b-to-vm-a";
    let from_ns = "pol_test-project_allow-ingress-from-namespace-another-project-to-vm-a";
    let dns = "pol_test-project_allow-egress-from-vm-a-to-dns";
    let range = "pol_test-project_allow-egress-from-vm-a-port-range";
    let steps: Vec<(&str, &str, &str, u16, &str)> = vec![
        (&b, "udp", "10.66.20.70", 1000, from_b),
        (&c, "udp", "10.66.20.70", 1001, from_ns),
        (&x, "udp", "10.66.20.70", 1002, "denied_ingress"),
        (&a, "tcp", "192.0.2.53", 53, dns),
        (&a, "tcp", "192.0.2.53", 32100, range),
        (&a, "udp", "192.0.2.53", 53, "denied_egress"),
        (&a, "udp", "10.66.20.71", 53, "denied_egress"),
    ];
    for (ns, proto, dst, port, expect) in steps {
        let before: Vec<u64> = [
            from_b,
            from_ns,
            dns,
            range,
            "denied_ingress",
            "denied_egress",
        ]
        .iter()
        .map(|n| counter_packets(&router, "netpol", n))
        .collect();
        send(ns, proto, dst, port);
        let after: Vec<u64> = [
            from_b,
            from_ns,
            dns,
            range,
            "denied_ingress",
            "denied_egress",
        ]
        .iter()
        .map(|n| counter_packets(&router, "netpol", n))
        .collect();
        let moved: Vec<&str> = [
            from_b,
            from_ns,
            dns,
            range,
            "denied_ingress",
            "denied_egress",
        ]
        .iter()
        .zip(before.iter().zip(&after))
        .filter(|(_, (b, a))| a > b)
        .map(|(n, _)| *n)
        .collect();
        assert_eq!(moved, vec![expect], "{ns} {proto} {dst}:{port}");
    }
    // Traffic not involving vm-a passes untouched: b -> c is neither isolated side.
    let before = counter_packets(&router, "netpol", "denied_ingress")
        + counter_packets(&router, "netpol", "denied_egress");
    send(&b, "udp", "10.66.20.72", 7);
    assert_eq!(
        counter_packets(&router, "netpol", "denied_ingress")
            + counter_packets(&router, "netpol", "denied_egress"),
        before
    );
}
