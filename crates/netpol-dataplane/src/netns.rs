//! Named network namespaces (`/run/netns/NAME`, the `ip netns` convention) owned by this process.
//!
//! Every namespace this crate creates is named `nplab-<pid>-<seq>-<tag>`, so that leftovers of a
//! crashed run can be recognised by their dead pid and removed ([`cleanup_stale`]), and a signal
//! handler can remove everything of the current process ([`cleanup_own`]).

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cmd;
use crate::error::DataplaneError;

/// The first part of every namespace name this crate creates.
pub const PREFIX: &str = "nplab";

const NETNS_DIR: &str = "/run/netns";

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// The name prefix of everything the current process creates: `nplab-<pid>-`.
pub fn own_prefix() -> String {
    format!("{PREFIX}-{}-", std::process::id())
}

/// A fresh namespace name for this process: `nplab-<pid>-<seq>-<tag>`.
pub(crate) fn fresh_name(tag: &str) -> String {
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!("{}{seq}-{tag}", own_prefix())
}

/// Rejects names that would escape /run/netns or confuse `ip`.
pub(crate) fn validate_name(name: &str) -> Result<(), DataplaneError> {
    let bad = |reason| DataplaneError::InvalidName {
        what: "network namespace name",
        value: name.to_owned(),
        reason,
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(bad("empty or a dot name"));
    }
    if name.len() > 200 {
        return Err(bad("longer than 200 bytes"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(bad(
            "only ASCII letters, digits, '-', '_' and '.' are allowed",
        ));
    }
    Ok(())
}

/// Opens the namespace file of a named netns, for setns(2).
pub(crate) fn open(name: &str) -> Result<File, DataplaneError> {
    validate_name(name)?;
    File::open(Path::new(NETNS_DIR).join(name)).map_err(|source| DataplaneError::Netns {
        name: name.to_owned(),
        source,
    })
}

/// Moves the calling thread into the named namespace.
///
/// Only ever called on threads this crate spawned for that purpose: a thread never comes back.
pub(crate) fn enter(name: &str) -> Result<(), DataplaneError> {
    use std::os::fd::AsRawFd;
    let file = open(name)?;
    // SAFETY: setns(2) on a valid open descriptor; it changes only this thread's namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(DataplaneError::Netns {
            name: name.to_owned(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Runs `work` on a short-lived thread inside the named namespace and returns its result.
pub(crate) fn run_in<T: Send>(
    name: &str,
    work: impl FnOnce() -> Result<T, DataplaneError> + Send,
) -> Result<T, DataplaneError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter(name)?;
                work()
            })
            .join()
            .unwrap_or_else(|_| Err(DataplaneError::Lab(format!("a worker in {name} panicked"))))
    })
}

/// Writes `/proc/sys/net/...` settings of the named namespace (`key` is relative to
/// /proc/sys/net, e.g. `ipv4/ip_forward`). Sysctls under /proc/sys/net follow the namespace of
/// the thread that opens them, so no `sysctl` binary or extra process is needed.
pub(crate) fn write_sysctls(name: &str, settings: &[(String, &str)]) -> Result<(), DataplaneError> {
    run_in(name, || {
        for (key, value) in settings {
            let path = format!("/proc/sys/net/{key}");
            std::fs::write(&path, value)
                .map_err(|e| DataplaneError::io(format!("writing {path} in {name}"), e))?;
        }
        Ok(())
    })
}

/// A network namespace that exists as long as this value does.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `nplab-<pid>-<seq>-<tag>` with its loopback up.
    pub fn create(tag: &str) -> Result<Netns, DataplaneError> {
        let name = fresh_name(tag);
        validate_name(&name)?;
        cmd::ip(None, &["netns", "add", &name])?;
        // From here on Drop removes it, also when the next step fails.
        let netns = Netns { name };
        cmd::ip(Some(&netns.name), &["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// Takes ownership of a name this crate is about to create (or has created): Drop removes
    /// the namespace if it exists.
    pub(crate) fn adopt(name: String) -> Netns {
        Netns { name }
    }

    /// The namespace's name, as `ip netns` and [`crate::nft`] take it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Nothing useful can be done with a failure here; cleanup_stale catches leftovers.
        let _ = delete(&self.name);
    }
}

fn delete(name: &str) -> Result<(), DataplaneError> {
    validate_name(name)?;
    if !Path::new(NETNS_DIR).join(name).exists() {
        return Ok(());
    }
    cmd::ip(None, &["netns", "del", name]).map(|_| ())
}

/// Names of the namespaces in /run/netns that this crate created (any process).
pub fn list_lab_namespaces() -> Result<Vec<String>, DataplaneError> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DataplaneError::io(format!("reading {NETNS_DIR}"), e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with(&format!("{PREFIX}-")))
        .collect();
    names.sort();
    Ok(names)
}

/// The pid encoded in a lab namespace name, if it has one.
fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?
        .strip_prefix('-')?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Removes lab namespaces left behind by processes that are no longer alive. Returns their names.
///
/// Namespaces of live processes (other concurrent runs, and this one) are left alone.
pub fn cleanup_stale() -> Result<Vec<String>, DataplaneError> {
    let mut removed = Vec::new();
    for name in list_lab_namespaces()? {
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        delete(&name)?;
        removed.push(name);
    }
    Ok(removed)
}

/// Removes every lab namespace of the current process. For signal handlers and emergencies:
/// a [`crate::Lab`] or [`Netns`] still alive afterwards just finds its namespaces gone.
pub fn cleanup_own() -> Result<Vec<String>, DataplaneError> {
    let prefix = own_prefix();
    let mut removed = Vec::new();
    for name in list_lab_namespaces()? {
        if name.starts_with(&prefix) {
            delete(&name)?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Installs a SIGINT/SIGTERM/SIGHUP handler that removes this process's lab namespaces and then
/// exits with status 130. Destructors do not run on a signal, so a CLI that builds a lab calls
/// this once at start-up. Fails if another handler was already installed through `ctrlc`.
pub fn install_interrupt_cleanup() -> Result<(), DataplaneError> {
    ctrlc::set_handler(|| {
        let _ = cleanup_own();
        std::process::exit(130);
    })
    .map_err(|e| DataplaneError::Lab(format!("installing the interrupt handler: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_is_read_from_lab_names_only() {
        assert_eq!(owner_pid("nplab-1234-0-node0"), Some(1234));
        assert_eq!(owner_pid("nplab-x-0"), None);
        assert_eq!(owner_pid("other-1234-0"), None);
        assert_eq!(owner_pid("nplabs-1234-0"), None);
    }

    #[test]
    fn names_that_could_escape_the_netns_directory_are_rejected() {
        assert!(validate_name("../etc").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("nplab-1-2-node0").is_ok());
    }

    #[test]
    fn fresh_names_carry_the_pid_and_differ() {
        let a = fresh_name("x");
        let b = fresh_name("x");
        assert_ne!(a, b);
        assert_eq!(owner_pid(&a), Some(std::process::id()));
    }
}
