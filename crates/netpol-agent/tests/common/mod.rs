//! Helpers shared by the agent's integration tests: the agent as a real process, a minimal HTTP
//! client for its endpoints, and polling.
#![allow(dead_code)]
// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod client_web;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Agent {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Agent {
    /// Starts `netpol-agent-test` with `args` plus a free loopback port.
    pub fn start(args: &[&str], log: &Path) -> Agent {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_netpol-agent-test"))
            .args(args)
            .args(["--listen", &addr.to_string()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Agent { child, addr }
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.addr, path)
    }

    pub fn metric(&self, line_prefix: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        metric_value(&body, line_prefix)
    }

    pub fn wait_ready(&self, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.get("/readyz").is_some_and(|(s, _)| s == 200)
        })
        .is_some()
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the first metric line starting with `prefix` (name plus labels).
pub fn metric_value(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    // Chunked bodies: the chunk size lines do not matter for line-based matching.
    Some((status, body.to_string()))
}

/// Polls `f` every 10 ms; returns how long it took to become true.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Writes a file atomically (temp file + rename), as editors and ConfigMap updates do.
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
