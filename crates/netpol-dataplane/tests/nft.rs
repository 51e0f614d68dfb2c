//! The nft layer against the real kernel, inside throwaway namespaces.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::require_root;
use netpol_dataplane::nft::{self, Drift, Listing};
use netpol_dataplane::{DataplaneError, Netns};

const TABLE: &str = "table inet netpol {
    set allowed {
        type ipv4_addr
        elements = { 10.0.0.2, 10.0.0.1 }
    }
    chain forward {
        type filter hook forward priority filter; policy accept;
        ct state established,related accept
        ip saddr @allowed counter accept
        tcp dport 9090 drop
    }
}
";

fn replace(body: &str) -> String {
    // The usual atomic replace idiom: declare (no-op if present), delete, define anew.
    format!("table inet netpol\ndelete table inet netpol\n{body}")
}

#[test]
fn a_table_can_be_applied_listed_verified_and_deleted() {
    require_root();
    let ns = Netns::create("nfttest").expect("netns");
    let ns = Some(ns.name());
    assert_eq!(nft::list_table(ns, "inet", "netpol").expect("list"), None);

    let print = nft::apply_and_fingerprint(ns, &replace(TABLE), "inet", "netpol", Listing::Full)
        .expect("apply");
    // The kernel's own rendering: elements sorted, rules as written.
    assert!(
        print.text().contains("elements = { 10.0.0.1, 10.0.0.2 }"),
        "{}",
        print.text()
    );
    assert!(print.text().contains("tcp dport 9090 drop"));
    assert_eq!(nft::verify(ns, &print).expect("verify"), Drift::InSync);

    let terse = nft::list_table(ns, "inet", "netpol")
        .expect("list")
        .expect("present");
    assert!(terse.contains("chain forward"));
    assert!(
        !terse.contains("10.0.0.1"),
        "terse listings omit set elements:\n{terse}"
    );

    nft::delete_table(ns, "inet", "netpol").expect("delete");
    assert_eq!(nft::list_table(ns, "inet", "netpol").expect("list"), None);
    assert_eq!(nft::verify(ns, &print).expect("verify"), Drift::Missing);
}

#[test]
fn a_failing_script_applies_nothing_and_the_previous_table_stays() {
    require_root();
    let ns = Netns::create("nfttest").expect("netns");
    let ns = Some(ns.name());
    let print = nft::apply_and_fingerprint(ns, &replace(TABLE), "inet", "netpol", Listing::Full)
        .expect("apply");
    // The first half is valid (and would wipe the table), the last line is not.
    let broken = format!(
        "{}\nadd rule inet netpol forward tcp dport 22 frobnicate\n",
        replace("table inet netpol {\n chain forward { type filter hook forward priority 0; }\n}")
    );
    // Without its last line the script is valid: the failure below is that line's alone.
    let valid_part = broken
        .lines()
        .take(broken.lines().count() - 1)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(nft::check(ns, &valid_part).is_ok(), "{valid_part}");
    let error = nft::apply(ns, &broken).expect_err("must fail");
    match &error {
        DataplaneError::Nft { stderr, .. } => assert!(stderr.contains("frobnicate"), "{stderr}"),
        other => panic!("expected an nft error, got {other:?}"),
    }
    assert_eq!(nft::verify(ns, &print).expect("verify"), Drift::InSync);
    // check() rejects it too, without changing anything.
    assert!(nft::check(ns, &broken).is_err());
    assert!(nft::check(ns, &replace(TABLE)).is_ok());
    assert_eq!(nft::verify(ns, &print).expect("verify"), Drift::InSync);
}

#[test]
fn deleting_a_missing_table_twice_is_fine_and_other_tables_survive() {
    require_root();
    let ns = Netns::create("nfttest").expect("netns");
    let ns = Some(ns.name());
    nft::apply(
        ns,
        "table ip other {\n chain c { type filter hook input priority 0; }\n}\n",
    )
    .expect("apply other");
    nft::delete_table(ns, "inet", "netpol").expect("delete absent");
    nft::apply(ns, &replace(TABLE)).expect("apply");
    nft::delete_table(ns, "inet", "netpol").expect("delete");
    nft::delete_table(ns, "inet", "netpol").expect("delete again");
    assert!(nft::table_exists(ns, "ip", "other").expect("exists"));
    assert!(!nft::table_exists(ns, "inet", "netpol").expect("exists"));
}

#[test]
fn flushing_the_table_behind_our_back_is_detected_as_drift() {
    require_root();
    let ns = Netns::create("nfttest").expect("netns");
    let ns = Some(ns.name());
    let full = nft::apply_and_fingerprint(ns, &replace(TABLE), "inet", "netpol", Listing::Full)
        .expect("apply");
    let terse = nft::fingerprint(ns, "inet", "netpol", Listing::Terse)
        .expect("fingerprint")
        .expect("present");
    nft::apply(ns, "flush table inet netpol").expect("flush");
    for print in [&full, &terse] {
        match nft::verify(ns, print).expect("verify") {
            Drift::Changed { only_expected, .. } => {
                assert!(
                    only_expected.iter().any(|l| l == "tcp dport 9090 drop"),
                    "{only_expected:?}"
                );
            }
            other => panic!("expected drift, got {other:?}"),
        }
    }
}

#[test]
fn counters_do_not_count_as_drift_but_set_elements_do_in_full_listings() {
    require_root();
    let guard = Netns::create("nfttest").expect("netns");
    let netns_name = guard.name();
    let ns = Some(netns_name);
    let script = replace(
        "table inet netpol {
            set s { type ipv4_addr; elements = { 192.0.2.1 } }
            chain output { type filter hook output priority 0; ip daddr 127.0.0.1 counter accept; }
        }",
    );
    let full =
        nft::apply_and_fingerprint(ns, &script, "inet", "netpol", Listing::Full).expect("apply");
    let terse = nft::fingerprint(ns, "inet", "netpol", Listing::Terse)
        .expect("fingerprint")
        .expect("present");
    // Make the counter move: one UDP datagram to loopback inside the namespace.
    std::thread::scope(|s| {
        s.spawn(|| {
            enter_for_test(netns_name);
            let lo = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            lo.send_to(b"x", "127.0.0.1:9").expect("send");
        })
        .join()
        .expect("thread");
    });
    let json = nft::table_json(ns, "inet", "netpol")
        .expect("json")
        .expect("present");
    let packets: u64 = json["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.get("rule"))
        .flat_map(|rule| rule["expr"].as_array().cloned().unwrap_or_default())
        .filter_map(|expr| expr.get("counter").and_then(|c| c["packets"].as_u64()))
        .sum();
    assert!(packets >= 1, "the counter should have moved: {json}");
    assert_eq!(nft::verify(ns, &full).expect("verify"), Drift::InSync);

    nft::apply(ns, "add element inet netpol s { 192.0.2.99 }").expect("add element");
    match nft::verify(ns, &full).expect("verify") {
        Drift::Changed { only_actual, .. } => {
            assert!(
                only_actual.iter().any(|l| l.contains("192.0.2.99")),
                "{only_actual:?}"
            )
        }
        other => panic!("expected drift, got {other:?}"),
    }
    // Documented blind spot of terse fingerprints: element changes are invisible.
    assert_eq!(nft::verify(ns, &terse).expect("verify"), Drift::InSync);
}

#[test]
fn a_script_fingerprinted_in_a_scratch_namespace_matches_the_applied_table() {
    require_root();
    let ns = Netns::create("nfttest").expect("netns");
    let ns = Some(ns.name());
    let expected = nft::fingerprint_of_script(&replace(TABLE), "inet", "netpol", Listing::Full)
        .expect("scratch fingerprint");
    assert_eq!(nft::verify(ns, &expected).expect("verify"), Drift::Missing);
    // The same content written differently (other element order, other spacing) is in sync.
    let respelled = TABLE.replace("10.0.0.2, 10.0.0.1", "10.0.0.1,10.0.0.2");
    nft::apply(ns, &replace(&respelled)).expect("apply");
    assert_eq!(nft::verify(ns, &expected).expect("verify"), Drift::InSync);
}

/// Moves this test thread into a namespace (the thread is thrown away afterwards).
fn enter_for_test(name: &str) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(format!("/run/netns/{name}")).expect("netns file");
    // SAFETY: setns on a valid descriptor; affects only this thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns failed");
}
