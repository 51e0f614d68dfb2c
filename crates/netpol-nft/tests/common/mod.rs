//! The clusters and the `nft` binary checks shared by the tests; the model builders come from
//! netpol-test-support.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

pub mod admin_edits;
pub mod lab;
pub mod update;

use std::io::Write as _;
use std::process::{Command, Stdio};

use netpol_core::*;

pub use netpol_test_support::*;

/// The cluster of the user's page: vm-a (virtlab-2) isolated for ingress except from vm-b and
/// from namespace another-project, and for egress except to 192.0.2.53 TCP 53 and TCP
/// 32000-32768; vm-b (virtlab-1) and vm-c (another-project, virtlab-1) open.
pub fn users_page() -> Cluster {
    let mut deny = policy(
        "test-project",
        "vm-a-deny-ingress",
        sel(&[("vm", "a")]),
        true,
        false,
    );
    deny.ingress = vec![];
    let mut from_b = policy(
        "test-project",
        "allow-ingress-from-vm-b-to-vm-a",
        sel(&[("vm", "a")]),
        true,
        false,
    );
    from_b.ingress = vec![Rule {
        peers: vec![pods_in_own_ns(&[("vm", "b")])],
        ports: vec![],
    }];
    let mut dns = policy(
        "test-project",
        "allow-egress-from-vm-a-to-dns",
        sel(&[("vm", "a")]),
        false,
        true,
    );
    dns.egress = vec![Rule {
        peers: vec![block("192.0.2.53/32", &[])],
        ports: vec![tcp(53)],
    }];
    let mut range = policy(
        "test-project",
        "allow-egress-from-vm-a-port-range",
        sel(&[("vm", "a")]),
        false,
        true,
    );
    range.egress = vec![Rule {
        peers: vec![block("192.0.2.53/32", &[])],
        ports: vec![port(
            Protocol::Tcp,
            Some(PortSpec::Range {
                start: 32000,
                end: 32768,
            }),
        )],
    }];
    let mut from_ns = policy(
        "test-project",
        "allow-ingress-from-namespace-another-project-to-vm-a",
        sel(&[("vm", "a")]),
        true,
        false,
    );
    from_ns.ingress = vec![Rule {
        peers: vec![namespace_named("another-project")],
        ports: vec![],
    }];
    cluster(
        namespaces(&["test-project", "another-project"]),
        vec![
            vm("test-project", "vm-a", &[("vm", "a")], &["10.66.20.70"]).on("virtlab-2"),
            vm("test-project", "vm-b", &[("vm", "b")], &["10.66.20.71"]).on("virtlab-1"),
            vm("another-project", "vm-c", &[("vm", "c")], &["10.66.20.72"]).on("virtlab-1"),
        ],
        vec![deny, from_b, dns, range, from_ns],
    )
}

/// The packet count of the named counter `name` of table `inet TABLE` in network namespace `netns`.
pub fn counter_packets(netns: &str, table: &str, name: &str) -> u64 {
    let out = Command::new("ip")
        .args([
            "netns", "exec", netns, "nft", "list", "counter", "inet", table, name,
        ])
        .output()
        .expect("nft runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter {name} in inet {table}: {text}"))
}

/// Whether `nft -c` can be used here (binary present, allowed to talk netlink).
pub fn nft_available() -> bool {
    Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs `nft -c -f -` (check only: nothing is applied) on `text`; `Err` holds nft's complaint.
pub fn nft_check(text: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A synthetic cluster: `workloads` pods over `workloads / 500 + 1` namespaces and `nodes` nodes,
/// `policies` policies mixing pod, namespace and ipBlock peers, numeric, ranged and named ports.
/// Deterministic.
pub fn synthetic(workloads: usize, policies: usize, nodes: usize) -> Cluster {
    let nns = workloads / 500 + 1;
    let namespaces: Vec<Namespace> = (0..nns)
        .map(|i| namespace(&format!("ns{i}"), &[("team", &format!("t{}", i % 5))]))
        .collect();
    let ws: Vec<Workload> = (0..workloads)
        .map(|i| {
            let addr = format!("10.{}.{}.{}", 64 + (i >> 16), (i >> 8) & 255, i & 255);
            let named: Vec<(&str, Protocol, u16)> = if i % 2 == 0 {
                vec![("http", Protocol::Tcp, 8080)]
            } else {
                vec![("http", Protocol::Tcp, 8000 + (i % 7) as u16)]
            };
            pod(
                // Replicas: ten consecutive workloads share a namespace and labels.
                &format!("ns{}", (i / 50) % nns),
                &format!("w{i}"),
                &[
                    ("app", &format!("a{}", (i / 10) % 100)),
                    ("tier", &format!("t{}", (i / 10) % 3)),
                ],
                &[addr.as_str()],
                &named,
            )
            .on(&format!("node{}", i % nodes))
        })
        .collect();
    let ps: Vec<Policy> = (0..policies)
        .map(|j| {
            let mut p = policy(
                &format!("ns{}", j % nns),
                &format!("p{j}"),
                sel(&[("app", &format!("a{}", j % 100))]),
                true,
                j % 2 == 0,
            );
            p.ingress = vec![
                Rule {
                    peers: vec![pods_in_own_ns(&[("app", &format!("a{}", (j * 7) % 100))])],
                    ports: vec![
                        tcp(80),
                        port(Protocol::Tcp, Some(PortSpec::Named("http".into()))),
                    ],
                },
                Rule {
                    peers: vec![Peer::Selector {
                        pod_selector: None,
                        namespace_selector: Some(sel(&[("team", &format!("t{}", j % 5))])),
                    }],
                    ports: vec![port(
                        Protocol::Tcp,
                        Some(PortSpec::Range {
                            start: 443,
                            end: 450,
                        }),
                    )],
                },
            ];
            if j % 10 == 0 {
                p.ingress.push(Rule {
                    peers: vec![block(
                        "198.51.100.0/24",
                        &[&format!("198.51.100.{}/32", j % 50)],
                    )],
                    ports: vec![],
                });
            }
            if j % 2 == 0 {
                p.egress = vec![
                    Rule {
                        peers: vec![pods_in_own_ns(&[("app", &format!("a{}", (j * 3) % 100))])],
                        ports: vec![
                            tcp(5432),
                            port(Protocol::Tcp, Some(PortSpec::Named("http".into()))),
                        ],
                    },
                    Rule {
                        peers: vec![block("203.0.113.0/24", &[])],
                        ports: vec![port(Protocol::Udp, Some(PortSpec::Number(53)))],
                    },
                ];
            }
            p
        })
        .collect();
    Cluster {
        namespaces,
        workloads: ws,
        policies: ps,
        ..Cluster::default()
    }
}

/// Rules per chain of a rendered table (declarations such as `type` and `comment` left out).
pub fn chain_rules(text: &str) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("chain ") {
            let name = rest.trim_end_matches('{').trim().to_string();
            out.insert(name.clone(), 0);
            current = Some(name);
        } else if t == "}" {
            current = None;
        } else if let Some(c) = &current {
            if !t.starts_with("type ") && !t.starts_with("comment ") && !t.is_empty() {
                *out.get_mut(c).unwrap() += 1;
            }
        }
    }
    out
}
