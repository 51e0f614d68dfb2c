//! The NFLOG netlink socket: created inside a namespace, bound to a group, configured for one
//! copy per packet, and read with an optional timeout.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::parse::{
    align4, messages, parse_datagram, NFGENMSG_LEN, NFNL_SUBSYS_ULOG, NLMSG_HDRLEN,
};
use super::{NflogRecord, NflogStats, COPY_RANGE};
use crate::error::DataplaneError;
use crate::netns;

/// Receive buffer asked for, so that a burst of logged packets (the nft limit allows 100 at once)
/// waits in the kernel instead of being lost while the reader is busy.
const RECV_BUFFER: libc::c_int = 1 << 20;

// nfnetlink_log configuration constants (uapi headers; not in the libc crate).
const NFULNL_MSG_CONFIG: u16 = 1;
const NFULA_CFG_CMD: u16 = 1;
const NFULA_CFG_MODE: u16 = 2;
const NFULA_CFG_TIMEOUT: u16 = 4;
const NFULA_CFG_QTHRESH: u16 = 5;
const NFULNL_CFG_CMD_BIND: u8 = 1;
const NFULNL_COPY_PACKET: u8 = 2;

/// A netlink socket bound to one NFLOG group in one network namespace. Dropping it closes the
/// socket, which unbinds the group.
#[derive(Debug)]
pub struct NflogSocket {
    fd: OwnedFd,
    group: u16,
    netns: Option<String>,
    buf: Vec<u8>,
    pending: VecDeque<NflogRecord>,
    stats: NflogStats,
}

fn io_error(context: impl Into<String>) -> DataplaneError {
    DataplaneError::io(context, io::Error::last_os_error())
}

impl NflogSocket {
    /// Opens a socket bound to `group` inside the named namespace (`None`: the caller's own) and
    /// asks for packet copies. Fails with `EPERM` (as [`DataplaneError::Io`]) when another socket
    /// in that namespace is bound to the group already, and without `CAP_NET_ADMIN`.
    pub fn open(netns: Option<&str>, group: u16) -> Result<NflogSocket, DataplaneError> {
        let fd = match netns {
            Some(name) => netns::run_in(name, || create(group))?,
            None => create(group)?,
        };
        let mut socket = NflogSocket {
            fd,
            group,
            netns: netns.map(str::to_owned),
            buf: vec![0u8; 1 << 16],
            pending: VecDeque::new(),
            stats: NflogStats::default(),
        };
        socket.configure()?;
        Ok(socket)
    }

    /// The group this socket is bound to.
    pub fn group(&self) -> u16 {
        self.group
    }

    /// What was received so far.
    pub fn stats(&self) -> NflogStats {
        self.stats
    }

    /// Blocks until a packet arrives and returns it. Messages that are not parsable packets
    /// are skipped (and counted in [`NflogSocket::stats`]), never returned as errors.
    pub fn recv(&mut self) -> Result<NflogRecord, DataplaneError> {
        loop {
            if let Some(r) = self.recv_timeout(None)? {
                return Ok(r);
            }
        }
    }

    /// Like [`NflogSocket::recv`] but gives up after `timeout` (`None`: wait forever) with
    /// `Ok(None)`, so a reader thread can check whether it should stop.
    pub fn recv_timeout(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<NflogRecord>, DataplaneError> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Ok(Some(r));
            }
            let wait_ms: libc::c_int = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    // Rounded up so a short timeout does not spin; at most ~24 days.
                    left.as_millis().saturating_add(1).min(i32::MAX as u128) as libc::c_int
                }
            };
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let rc = unsafe { libc::poll(&mut pfd, 1, wait_ms) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(DataplaneError::io(self.context("waiting for"), e));
            }
            if rc == 0 {
                continue; // the deadline check above ends the wait
            }
            let n = match self.read_datagram()? {
                Some(n) => n,
                None => continue,
            };
            let (records, unparsable) = parse_datagram(&self.buf[..n]);
            self.stats.records += records.len() as u64;
            self.stats.unparsable += unparsable;
            self.pending.extend(records);
        }
    }

    fn context(&self, what: &str) -> String {
        match &self.netns {
            Some(ns) => format!("{what} NFLOG group {} in netns {ns}", self.group),
            None => format!("{what} NFLOG group {}", self.group),
        }
    }

    /// One datagram into `buf`; `None` when there was nothing after all or messages were lost.
    fn read_datagram(&mut self) -> Result<Option<usize>, DataplaneError> {
        // SAFETY: the buffer is valid for writes of its length.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                self.buf.as_mut_ptr().cast(),
                self.buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                Some(libc::ENOBUFS) => {
                    self.stats.overruns += 1;
                    Ok(None)
                }
                _ => Err(DataplaneError::io(self.context("receiving from"), e)),
            };
        }
        Ok(Some(n as usize))
    }

    /// Binds the group, then sets copy mode, queue threshold and flush timeout; each request
    /// is acknowledged (or refused) by the kernel before the next.
    fn configure(&mut self) -> Result<(), DataplaneError> {
        let mut mode = Vec::with_capacity(8);
        mode.extend_from_slice(&COPY_RANGE.to_be_bytes());
        mode.push(NFULNL_COPY_PACKET);
        mode.push(0); // padding of struct nfulnl_msg_config_mode
        let steps: [(&str, u16, Vec<u8>); 4] = [
            (
                "binding (refused if another socket has it or without CAP_NET_ADMIN)",
                NFULA_CFG_CMD,
                vec![NFULNL_CFG_CMD_BIND],
            ),
            ("setting the copy mode of", NFULA_CFG_MODE, mode),
            (
                "setting the queue threshold of",
                NFULA_CFG_QTHRESH,
                1u32.to_be_bytes().to_vec(),
            ),
            (
                "setting the flush timeout of",
                NFULA_CFG_TIMEOUT,
                // Hundredths of a second; irrelevant with a threshold of one, kept short anyway.
                1u32.to_be_bytes().to_vec(),
            ),
        ];
        for (seq, (what, attr, value)) in steps.into_iter().enumerate() {
            let seq = seq as u32 + 1;
            let msg = config_message(self.group, seq, attr, &value);
            // SAFETY: the message buffer is valid for reads of its length.
            let n = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
            if n < 0 {
                return Err(io_error(self.context(what)));
            }
            self.await_ack(seq, what)?;
        }
        Ok(())
    }

    /// Reads until the acknowledgement of request `seq`; packets arriving meanwhile are kept.
    fn await_ack(&mut self, seq: u32, what: &str) -> Result<(), DataplaneError> {
        for _ in 0..64 {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let rc = unsafe { libc::poll(&mut pfd, 1, 2000) };
            if rc <= 0 {
                return Err(DataplaneError::io(
                    self.context(what),
                    io::Error::new(io::ErrorKind::TimedOut, "no answer from the kernel"),
                ));
            }
            let Some(n) = self.read_datagram()? else {
                continue;
            };
            let data = &self.buf[..n];
            for (ty, msg_seq, body) in messages(data) {
                if ty == libc::NLMSG_ERROR as u16 && msg_seq == seq {
                    let code = body
                        .get(..4)
                        .and_then(|b| b.try_into().ok())
                        .map(i32::from_ne_bytes)
                        .unwrap_or(-libc::EPROTO);
                    if code == 0 {
                        return Ok(());
                    }
                    return Err(DataplaneError::io(
                        self.context(what),
                        io::Error::from_raw_os_error(-code),
                    ));
                }
            }
            let (records, unparsable) = parse_datagram(&self.buf[..n]);
            self.stats.records += records.len() as u64;
            self.stats.unparsable += unparsable;
            self.pending.extend(records);
        }
        Err(DataplaneError::io(
            self.context(what),
            io::Error::new(io::ErrorKind::InvalidData, "no acknowledgement"),
        ))
    }
}

/// Creates and binds the netlink socket in the calling thread's namespace.
fn create(group: u16) -> Result<OwnedFd, DataplaneError> {
    let context = |what: &str| format!("{what} an NFLOG socket for group {group}");
    // SAFETY: plain socket(2) call.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        )
    };
    if raw < 0 {
        return Err(io_error(context("creating")));
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: an all-zero sockaddr_nl is valid; the kernel picks the port id.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `addr` is a valid sockaddr_nl of the given length.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io_error(context("binding")));
    }
    // A bigger buffer is a best effort: without CAP_NET_ADMIN the FORCE variant fails, and the
    // plain one is capped by net.core.rmem_max.
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: a valid c_int option value of the given length.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&RECV_BUFFER as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            break;
        }
    }
    Ok(fd)
}

/// An `NFULNL_MSG_CONFIG` request for `group` carrying one attribute, asking for an ack.
fn config_message(group: u16, seq: u32, attr: u16, value: &[u8]) -> Vec<u8> {
    let attr_len = 4 + value.len();
    let total = NLMSG_HDRLEN + NFGENMSG_LEN + align4(attr_len);
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG).to_ne_bytes());
    m.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // nfgenmsg: family AF_UNSPEC, version NFNETLINK_V0, res_id = group (big endian).
    m.push(libc::AF_UNSPEC as u8);
    m.push(0);
    m.extend_from_slice(&group.to_be_bytes());
    m.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    m.extend_from_slice(&attr.to_ne_bytes());
    m.extend_from_slice(value);
    m.resize(total, 0);
    m
}
