//! Running `ip` and `nft`, optionally inside a named network namespace.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::error::DataplaneError;
use crate::netns;

/// What a finished command printed.
pub(crate) struct Finished {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args...` with `stdin` fed in, inside `netns` when given.
///
/// The child enters the namespace with `setns` between fork and exec rather than through
/// `ip netns exec`: one process instead of two, and no remount of /sys that nft does not need.
pub(crate) fn run(
    netns: Option<&str>,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<Finished, DataplaneError> {
    let command_line = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Opened before fork so the child only has to call setns, which is async-signal-safe.
    let ns_file: Option<File> = match netns {
        Some(name) => Some(netns::open(name)?),
        None => None,
    };
    if let Some(file) = &ns_file {
        let fd = file.as_raw_fd();
        // SAFETY: the closure only calls setns(2), an async-signal-safe system call, on a
        // descriptor that stays open in the child until exec (it is close-on-exec).
        unsafe {
            command.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().map_err(|source| DataplaneError::Spawn {
        command: command_line.clone(),
        source,
    })?;
    drop(ns_file);
    let output = std::thread::scope(|scope| {
        // Fed from a thread so a child that prints a lot before reading all input cannot
        // deadlock against us.
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            scope.spawn(move || {
                // A write error means the child exited early; its status and stderr say why.
                let _ = pipe.write_all(text.as_bytes());
            });
        }
        child.wait_with_output()
    })
    .map_err(|source| DataplaneError::Spawn {
        command: command_line,
        source,
    })?;
    Ok(Finished {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr)
            .trim_end()
            .to_owned(),
    })
}

/// Runs `ip [-n netns] args...` and fails with its stderr when it fails.
pub(crate) fn ip(netns: Option<&str>, args: &[&str]) -> Result<String, DataplaneError> {
    let mut full: Vec<&str> = Vec::with_capacity(args.len() + 2);
    if let Some(name) = netns {
        full.push("-n");
        full.push(name);
    }
    full.extend_from_slice(args);
    let finished = run(None, "ip", &full, None)?;
    if finished.success {
        Ok(finished.stdout)
    } else {
        Err(DataplaneError::Command {
            command: format!("ip {}", args.join(" ")),
            netns: netns.map(str::to_owned),
            stderr: finished.stderr,
        })
    }
}

/// Runs many `ip` commands in one process (`ip -batch -`), stopping at the first failure.
pub(crate) fn ip_batch(netns: Option<&str>, lines: &[String]) -> Result<(), DataplaneError> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut args: Vec<&str> = Vec::new();
    if let Some(name) = netns {
        args.push("-n");
        args.push(name);
    }
    args.extend_from_slice(&["-batch", "-"]);
    let script = lines.join("\n") + "\n";
    let finished = run(None, "ip", &args, Some(&script))?;
    if finished.success {
        Ok(())
    } else {
        Err(DataplaneError::Command {
            command: format!("ip -batch ({} commands)", lines.len()),
            netns: netns.map(str::to_owned),
            stderr: finished.stderr,
        })
    }
}
