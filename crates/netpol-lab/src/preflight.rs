//! Checks, before anything is created, that the process can build a lab at all.

use std::path::Path;

use crate::error::LabError;

/// Checks the privileges and tools the lab needs, naming exactly what is missing.
pub fn preflight() -> Result<(), LabError> {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        missing.push(
            "root privileges (network namespaces and nftables need CAP_NET_ADMIN and CAP_SYS_ADMIN): run with sudo"
                .to_string(),
        );
    }
    for (tool, package) in [("nft", "nftables"), ("ip", "iproute2")] {
        if !on_path(tool) {
            missing.push(format!(
                "the `{tool}` command (Debian/Ubuntu: apt-get install -y {package})"
            ));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LabError::Missing(missing))
    }
}

/// Whether `tool` is on PATH or in the sbin directories, which a plain user's PATH often lacks
/// although sudo finds them there.
fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file())
            || ["/usr/sbin", "/sbin"]
                .iter()
                .any(|d| Path::new(d).join(tool).is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_list_reads_as_one_bulleted_message() {
        let error = LabError::Missing(vec!["root".into(), "the `nft` command".into()]);
        assert_eq!(
            error.to_string(),
            "the lab needs:\n  - root\n  - the `nft` command"
        );
    }

    #[test]
    fn a_tool_that_exists_nowhere_is_not_on_the_path() {
        assert!(!on_path("netpol-no-such-tool-anywhere"));
        assert!(on_path("sh"));
    }
}
