//! The root check of the privileged tests (network namespaces, veths, nftables, nflog).
//!
//! Those tests must fail, never skip, without root: a skipped kernel test looks like a passing
//! one, and CI runs them as root.

use std::panic::Location;

/// Panics unless the process runs with effective user id 0, naming the calling test file and the
/// command that runs it as root.
#[track_caller]
pub fn require_root() {
    let caller = Location::caller().file();
    let euid = effective_uid();
    if euid != Some(0) {
        let who = euid.map_or("an unknown user".to_string(), |id| format!("uid {id}"));
        panic!(
            "{caller} needs root (network namespaces, veths, nftables) but runs as {who}: run it \
             as root, e.g. `{}`; this test fails rather than skip",
            rerun_command(caller)
        );
    }
}

/// The effective user id, from `/proc/self/status` (`Uid: real effective saved fs`), so the check
/// needs no `unsafe` and no libc.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `sudo -E cargo test -p PACKAGE [--test TARGET]` for a caller path such as
/// `crates/netpol-cli/tests/demo.rs`.
fn rerun_command(caller: &str) -> String {
    let parts: Vec<&str> = caller.split(['/', '\\']).collect();
    let package = parts
        .iter()
        .position(|p| *p == "crates")
        .and_then(|i| parts.get(i + 1));
    let Some(package) = package else {
        return "sudo -E cargo test".to_string();
    };
    let target = match parts.as_slice() {
        [.., "tests", file] => file.strip_suffix(".rs"),
        _ => None,
    };
    match target {
        Some(t) => format!("sudo -E cargo test -p {package} --test {t}"),
        None => format!("sudo -E cargo test -p {package}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integration_test_is_told_its_package_and_target() {
        assert_eq!(
            rerun_command("crates/netpol-cli/tests/demo.rs"),
            "sudo -E cargo test -p netpol-cli --test demo"
        );
    }

    #[test]
    fn a_shared_test_module_names_only_its_package() {
        assert_eq!(
            rerun_command("crates/netpol-dataplane/tests/common/mod.rs"),
            "sudo -E cargo test -p netpol-dataplane"
        );
        assert_eq!(
            rerun_command("crates/netpol-agent/src/store.rs"),
            "sudo -E cargo test -p netpol-agent"
        );
    }

    #[test]
    fn the_effective_uid_is_the_one_id_reports() {
        let out = std::process::Command::new("id")
            .arg("-u")
            .output()
            .expect("id runs");
        let id: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert_eq!(effective_uid(), Some(id));
    }
}
