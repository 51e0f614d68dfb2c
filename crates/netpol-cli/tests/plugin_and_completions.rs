//! The binary as a kubectl plugin (installed as `kubectl-netpol`, which `kubectl netpol ...`
//! runs) and its shell completions (bash's run for real: the script is sourced and asked).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::root;

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .current_dir(root())
        .args(args)
        .output()
        .expect("the program runs")
}

const CHECK: [&str; 8] = [
    "check",
    "examples/test-project",
    "--from",
    "test-project/vm-b",
    "--to",
    "test-project/vm-a",
    "--port",
    "80",
];

#[test]
fn installed_as_kubectl_netpol_it_answers_like_netpol_and_its_help_says_kubectl_netpol() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("kubectl-netpol");
    std::fs::copy(env!("CARGO_BIN_EXE_netpol"), &plugin).unwrap();
    let netpol = Path::new(env!("CARGO_BIN_EXE_netpol"));
    let (a, b) = (run(netpol, &CHECK), run(&plugin, &CHECK));
    assert_eq!(a.status.code(), b.status.code());
    assert_eq!(a.stdout, b.stdout);
    assert!(!a.stdout.is_empty());
    let help = String::from_utf8(run(&plugin, &["check", "--help"]).stdout).unwrap();
    assert!(help.contains("Usage: kubectl netpol check"), "{help}");
    let help = String::from_utf8(run(netpol, &["check", "--help"]).stdout).unwrap();
    assert!(help.contains("Usage: netpol check"), "{help}");
}

/// What bash's completion offers for the words typed so far.
fn bash_completes(script: &str, words: &str) -> Vec<String> {
    let program = format!(
        "{script}\nCOMP_WORDS=({words})\nCOMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
         COMP_LINE=\"{words}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
         _netpol netpol \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &program])
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_offers_the_commands_and_a_commands_flags() {
    let out = run(
        Path::new(env!("CARGO_BIN_EXE_netpol")),
        &["completions", "bash"],
    );
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    let commands = bash_completes(&script, "netpol re");
    assert_eq!(commands, vec!["report".to_string()]);
    let flags = bash_completes(&script, "netpol matrix --po");
    assert!(flags.contains(&"--port".to_string()), "{flags:?}");
}

#[test]
fn zsh_and_fish_scripts_name_every_command() {
    for shell in ["zsh", "fish"] {
        let out = run(
            Path::new(env!("CARGO_BIN_EXE_netpol")),
            &["completions", shell],
        );
        assert!(out.status.success());
        let script = String::from_utf8(out.stdout).unwrap();
        for command in [
            "check", "matrix", "get", "report", "compile", "probe", "agent",
        ] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
    }
}
