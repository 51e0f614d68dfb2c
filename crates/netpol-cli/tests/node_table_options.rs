//! `netpol compile`'s node options on the bundled example: the source-address check can be
//! switched off or pointed at other interface names, and a name the kernel could never have is
//! refused with exit code 2 instead of a table that checks nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use assert_cmd::Command;

fn compile(extra: &[&str]) -> std::process::Output {
    let mut cmd = Command::cargo_bin("netpol").unwrap();
    cmd.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    cmd.args(["compile", "examples/test-project", "--node", "virtlab-2"]);
    cmd.args(extra);
    cmd.output().unwrap()
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_source_check_covers_the_common_workload_interfaces_unless_told_otherwise() {
    let default = compile(&[]);
    assert!(default.status.success());
    assert!(text(&default)
        .contains(r#"iifname { "lxc*", "cali*", "tap*", "vnet*", "veth*" } jump source_verify"#));
    let mine = compile(&["--workload-interfaces", "tap*,vm0"]);
    assert!(text(&mine).contains(r#"iifname { "tap*", "vm0" } jump source_verify"#));
    let off = compile(&["--source-check", "off"]);
    assert!(off.status.success());
    assert!(!text(&off).contains("source_verify"));
    // Everything else of the table is the same.
    assert!(text(&off).contains("chain input {"));
}

#[test]
fn an_interface_name_the_kernel_cannot_have_is_an_error() {
    for bad in ["lx c*", "averyveryverylongname", "a*b"] {
        let out = compile(&["--workload-interfaces", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not an interface name"), "{bad}: {err}");
    }
}
