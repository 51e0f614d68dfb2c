//! Refactoring guard: the outputs of `check`, `matrix` (every format), `get` and `compile` on the
//! bundled examples and on a synthetic cluster (the bench's generator, rendered to YAML) are
//! byte-identical to the ones recorded in `tests/outputs/` before the structure changed.
//!
//! The examples' outputs are stored whole (`tests/outputs/examples/<case>.txt`: exit code, stdout,
//! stderr), so a difference shows as a readable diff; the synthetic cluster's outputs are large and
//! stored as one FNV-1a 64-bit digest per case (`tests/outputs/synthetic.txt`).
//!
//! A deliberate change of an output re-records with `NETPOL_RECORD_OUTPUTS=1 cargo test -p
//! netpol-cli --test outputs_unchanged`; the diff of `tests/outputs/` then shows what changed and
//! belongs in the same commit as the change.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn outputs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/outputs")
}

fn recording() -> bool {
    std::env::var_os("NETPOL_RECORD_OUTPUTS").is_some()
}

/// Exit code, stdout and stderr of one run, as one text.
fn run(args: &[&str]) -> String {
    let out = Command::cargo_bin("netpol")
        .expect("the netpol binary is built for tests")
        .current_dir(root())
        .args(args)
        .output()
        .expect("netpol runs");
    format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const EXAMPLE: &str = "examples/test-project";

/// (case name, arguments) on the bundled examples.
fn example_cases() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut cases = vec![
        (
            "check-b-to-a-80",
            vec![
                "check",
                EXAMPLE,
                "--from",
                "test-project/vm-b",
                "--to",
                "test-project/vm-a",
                "--port",
                "80",
            ],
        ),
        (
            "check-a-to-b-80",
            vec![
                "check",
                EXAMPLE,
                "--from",
                "test-project/vm-a",
                "--to",
                "test-project/vm-b",
                "--port",
                "80",
            ],
        ),
        (
            "check-a-to-b-80-json",
            vec![
                "check",
                EXAMPLE,
                "--from",
                "test-project/vm-a",
                "--to",
                "test-project/vm-b",
                "--port",
                "80",
                "-o",
                "json",
            ],
        ),
        (
            "check-a-to-external-dns",
            vec![
                "check",
                EXAMPLE,
                "--from",
                "test-project/vm-a",
                "--to",
                "8.8.8.8",
                "--port",
                "53",
            ],
        ),
        (
            "check-a-to-external-udp-json",
            vec![
                "check",
                EXAMPLE,
                "--from",
                "test-project/vm-a",
                "--to",
                "8.8.8.8",
                "--port",
                "53",
                "--protocol",
                "UDP",
                "-o",
                "json",
            ],
        ),
        (
            "check-c-to-a-port-range",
            vec![
                "check",
                EXAMPLE,
                "--from",
                "another-project/vm-c",
                "--to",
                "test-project/vm-a",
                "--port",
                "32100",
            ],
        ),
        ("get-vms", vec!["get", "vms", "-A", EXAMPLE]),
        ("get-pods", vec!["get", "pods", EXAMPLE]),
        (
            "get-workloads-ns",
            vec!["get", "workloads", "-n", "test-project", EXAMPLE],
        ),
        ("map-text", vec!["matrix", EXAMPLE]),
        ("map-json", vec!["matrix", EXAMPLE, "-o", "json"]),
        (
            "map-cilium",
            vec!["matrix", EXAMPLE, "--ipblock-matches-workloads=false"],
        ),
        (
            "compile-virtlab-1",
            vec!["compile", EXAMPLE, "--node", "virtlab-1"],
        ),
        (
            "compile-virtlab-2",
            vec!["compile", EXAMPLE, "--node", "virtlab-2"],
        ),
        (
            "compile-virtlab-2-json",
            vec!["compile", EXAMPLE, "--node", "virtlab-2", "-o", "json"],
        ),
        (
            "mistake-matrix",
            vec![
                "matrix",
                "examples/mistakes/egress-ports-under-peer.yaml",
                "--port",
                "53",
            ],
        ),
        (
            "mistake-warn-compile",
            vec![
                "compile",
                "--validate=warn",
                "examples/mistakes/egress-ports-under-peer.yaml",
                "--node",
                "virtlab-2",
            ],
        ),
    ];
    for (name, format) in [
        ("matrix-80-table", "table"),
        ("matrix-80-json", "json"),
        ("matrix-80-csv", "csv"),
        ("matrix-80-md", "md"),
        ("matrix-80-summary", "summary"),
    ] {
        cases.push((name, vec!["matrix", EXAMPLE, "--port", "80", "-o", format]));
    }
    cases.push((
        "matrix-udp-53-json",
        vec![
            "matrix",
            EXAMPLE,
            "--port",
            "53",
            "--protocol",
            "UDP",
            "-o",
            "json",
        ],
    ));
    cases
}

/// Compares `actual` with the file, or records it.
fn compare_file(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if recording() {
        std::fs::create_dir_all(path.parent().expect("case files live in a directory"))
            .expect("the outputs directory can be created");
        std::fs::write(path, actual).expect("the recorded output can be written");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        failures.push(format!(
            "{} differs:\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        ));
    }
}

#[test]
fn the_outputs_on_the_examples_are_the_recorded_ones() {
    let mut failures = Vec::new();
    for (name, args) in example_cases() {
        let path = outputs_dir().join("examples").join(format!("{name}.txt"));
        compare_file(&path, &run(&args), &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// FNV-1a 64: stable across platforms and Rust versions.
fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Writes the bench's synthetic cluster (small enough for a test, every feature in it) as YAML.
fn synthetic_manifests(dir: &Path) -> PathBuf {
    let path = dir.join("synthetic.yaml");
    let out = Command::cargo_bin("netpol")
        .expect("the netpol binary is built for tests")
        .args([
            "bench",
            "--workloads",
            "400",
            "--namespaces",
            "12",
            "--policies",
            "80",
        ])
        .args(["--nodes", "4", "--seed", "7", "--write"])
        .arg(&path)
        .output()
        .expect("netpol bench runs");
    assert!(out.status.success(), "netpol bench failed: {out:?}");
    path
}

fn synthetic_cases(file: &str) -> Vec<(String, Vec<String>)> {
    let mut cases: Vec<(String, Vec<&str>)> = vec![
        ("map-json".into(), vec!["matrix", file, "-o", "json"]),
        ("map-text".into(), vec!["matrix", file]),
        (
            "map-json-cilium".into(),
            vec![
                "matrix",
                file,
                "-o",
                "json",
                "--ipblock-matches-workloads=false",
            ],
        ),
        ("get-workloads".into(), vec!["get", "workloads", file]),
        ("get-vms".into(), vec!["get", "vms", "-A", file]),
    ];
    for (port, proto) in [("80", "TCP"), ("53", "UDP"), ("8080", "TCP"), ("9", "SCTP")] {
        for format in ["table", "json", "csv", "md", "summary"] {
            cases.push((
                format!("matrix-{proto}-{port}-{format}"),
                vec![
                    "matrix",
                    file,
                    "--port",
                    port,
                    "--protocol",
                    proto,
                    "-o",
                    format,
                ],
            ));
        }
    }
    for node in ["node-00", "node-01", "node-02", "node-03"] {
        cases.push((
            format!("compile-{node}"),
            vec!["compile", file, "--node", node],
        ));
        cases.push((
            format!("compile-{node}-json-cilium"),
            vec![
                "compile",
                file,
                "--node",
                node,
                "-o",
                "json",
                "--ipblock-matches-workloads=false",
            ],
        ));
    }
    cases
        .into_iter()
        .map(|(n, a)| (n, a.into_iter().map(String::from).collect()))
        .collect()
}

/// `check` between a spread of synthetic workloads, both verdicts and explanations.
fn synthetic_check_cases(file: &str, keys: &[String]) -> Vec<(String, Vec<String>)> {
    let step = (keys.len() / 7).max(1);
    let picks: Vec<&String> = keys.iter().step_by(step).collect();
    let mut cases = Vec::new();
    for (i, from) in picks.iter().enumerate() {
        for to in picks.iter().skip(i % 3).step_by(2) {
            for (port, proto) in [("80", "TCP"), ("53", "UDP")] {
                cases.push((
                    format!("check-{from}-{to}-{proto}-{port}").replace('/', "_"),
                    [
                        "check",
                        file,
                        "--from",
                        from,
                        "--to",
                        to,
                        "--port",
                        port,
                        "--protocol",
                        proto,
                    ]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                ));
            }
        }
    }
    cases.push((
        "check-to-documentation-address".into(),
        [
            "check",
            file,
            "--from",
            picks[0],
            "--to",
            "198.51.100.7",
            "--port",
            "443",
            "-o",
            "json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    ));
    cases
}

fn workload_keys(file: &str) -> Vec<String> {
    let out = Command::cargo_bin("netpol")
        .expect("the netpol binary is built for tests")
        .args(["matrix", file, "--port", "80", "-o", "json"])
        .output()
        .expect("netpol runs");
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("matrix -o json prints JSON");
    doc["workloads"]
        .as_array()
        .expect("the document lists its workloads")
        .iter()
        .filter_map(|k| k.as_str().map(String::from))
        .collect()
}

#[test]
fn the_outputs_on_the_synthetic_cluster_are_the_recorded_ones() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = synthetic_manifests(dir.path());
    let file = path.to_str().expect("temporary paths are UTF-8");
    let keys = workload_keys(file);
    assert!(keys.len() > 100, "the synthetic cluster has workloads");
    let mut digests = String::new();
    let cases = synthetic_cases(file)
        .into_iter()
        .chain(synthetic_check_cases(file, &keys));
    for (name, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // The temporary path appears in diagnostics; it is not part of what is compared.
        let text = run(&args).replace(file, "SYNTHETIC");
        let _ = writeln!(
            digests,
            "{name} {:016x} {}",
            fnv64(text.as_bytes()),
            text.len()
        );
    }
    let mut failures = Vec::new();
    compare_file(
        &outputs_dir().join("synthetic.txt"),
        &digests,
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
