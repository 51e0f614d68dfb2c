//! The conntrack mark range ([`CtMarkBits`]) as the compiler applies it, without the kernel: the
//! classes live inside the range, every write keeps the bits outside it, every read masks them,
//! the verdicts do not depend on the range, and a node needing more classes than a range holds
//! is a clear error (the kernel side is in `packet_mark.rs`).

mod common;

use common::*;
use netpol_core::*;
use netpol_nft::{compile, compile_with_ct_mark, CompileError, CtMarkBits};

/// web (n1) admits each of `peers` pods on TCP 80 by a label of its own: `peers` + 1 classes.
fn one_class_per_pod(peers: usize) -> Cluster {
    let mut web_in = policy("shop", "web-in", sel(&[("app", "web")]), true, false);
    let mut pods = vec![pod("shop", "web", &[("app", "web")], &["10.90.0.1"], &[]).on("n1")];
    for i in 0..peers {
        let id = format!("c{i}");
        web_in.ingress.push(Rule {
            peers: vec![pods_in_own_ns(&[("id", &id)])],
            ports: vec![tcp(80)],
        });
        let addr = format!("10.91.{}.{}", i / 200, i % 200 + 1);
        pods.push(pod("shop", &id, &[("id", &id)], &[&addr], &[]).on("n2"));
    }
    cluster(namespaces(&["shop"]), pods, vec![web_in])
}

#[test]
fn classes_live_inside_the_range_and_writes_keep_the_bits_outside_it() {
    let state = one_class_per_pod(20);
    for text in ["16-31", "0x0ff00000", "0-7"] {
        let bits: CtMarkBits = text.parse().unwrap();
        let r = compile_with_ct_mark(&state, EvalOptions::default(), "n1", bits).unwrap();
        let classes = &r.ir().ingress.classes;
        assert_eq!(classes.len(), 21, "{bits}");
        for c in classes {
            assert_eq!(c.id & !bits.mask(), 0, "class {:#x} outside {bits}", c.id);
        }
        let keep = format!("ct mark set ct mark and 0x{:08x}", !bits.mask());
        let masked = format!("ct mark and 0x{:08x} . meta l4proto", bits.mask());
        for line in r.text.lines().filter(|l| l.contains("ct mark")) {
            let line = line.trim();
            assert!(
                line.starts_with(&keep) || line.contains(&masked),
                "{bits}: {line}"
            );
        }
        // The range changes names and marks, never a verdict.
        let default = compile(&state, EvalOptions::default(), "n1").unwrap();
        for i in 0..20 {
            let from = ip(&format!("10.91.0.{}", i + 1));
            for port in [80, 81] {
                assert_eq!(
                    r.verdict(from, ip("10.90.0.1"), Protocol::Tcp, port),
                    default.verdict(from, ip("10.90.0.1"), Protocol::Tcp, port)
                );
            }
        }
    }
}

#[test]
fn more_classes_than_the_range_holds_is_an_error_naming_the_range() {
    let state = one_class_per_pod(300);
    let narrow: CtMarkBits = "0-7".parse().unwrap();
    let err = compile_with_ct_mark(&state, EvalOptions::default(), "n1", narrow).unwrap_err();
    assert_eq!(
        err,
        CompileError::TooManyClasses {
            direction: Direction::Ingress,
            classes: 300,
            bits: narrow,
            capacity: 255,
        }
    );
    assert!(err.to_string().contains("0x000000ff"), "{err}");
    // The default range holds them, and the next compile on the thread is not affected.
    let r = compile(&state, EvalOptions::default(), "n1").unwrap();
    assert_eq!(r.ir().ingress.classes.len(), 301);
}
