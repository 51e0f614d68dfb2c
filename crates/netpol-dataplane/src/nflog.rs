//! Receiving packets logged to an NFLOG group (nftables `log group N`), over a raw
//! `NETLINK_NETFILTER` socket, parsed down to what a denied-flow log needs: the rule's prefix,
//! addresses, L4 protocol, ports and ICMP type.
//!
//! The socket belongs to the network namespace it was created in, so [`NflogSocket::open`]
//! creates it on a short-lived thread inside the named namespace and hands it back; every later
//! receive sees that namespace's log messages, whatever thread calls it.
//!
//! Protocol (`linux/netfilter/nfnetlink_log.h`): the socket binds to a group with an
//! `NFULNL_MSG_CONFIG` command, asks for the first [`COPY_RANGE`] bytes of each packet and a
//! queue threshold of one (the kernel otherwise batches up to 100 packets for up to a second),
//! then receives `NFULNL_MSG_PACKET` messages whose `NFULA_PAYLOAD` starts at the IP header.
//! Only one socket per namespace can bind a group: a second is refused with `EPERM`.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::error::DataplaneError;
use crate::netns;

/// Bytes of each packet copied to user space: an IPv6 header (40) with a few extension headers
/// and any L4 header fit; payload beyond that is of no use here.
pub const COPY_RANGE: u32 = 256;

/// Receive buffer asked for, so that a burst of logged packets (the nft limit allows 100 at once)
/// waits in the kernel instead of being lost while the reader is busy.
const RECV_BUFFER: libc::c_int = 1 << 20;

// nfnetlink / nfnetlink_log constants (uapi headers; not in the libc crate).
const NFNL_SUBSYS_ULOG: u16 = 4;
const NFULNL_MSG_PACKET: u16 = 0;
const NFULNL_MSG_CONFIG: u16 = 1;
const NFULA_PAYLOAD: u16 = 9;
const NFULA_PREFIX: u16 = 10;
const NFULA_CFG_CMD: u16 = 1;
const NFULA_CFG_MODE: u16 = 2;
const NFULA_CFG_TIMEOUT: u16 = 4;
const NFULA_CFG_QTHRESH: u16 = 5;
const NFULNL_CFG_CMD_BIND: u8 = 1;
const NFULNL_COPY_PACKET: u8 = 2;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;

/// One logged packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NflogRecord {
    /// The log rule's prefix (empty if it had none).
    pub prefix: String,
    /// The packet's source address.
    pub src: IpAddr,
    /// The packet's destination address.
    pub dst: IpAddr,
    /// The L4 protocol number (6 TCP, 17 UDP, 132 SCTP, 1 ICMP, 58 ICMPv6, ...), after IPv6
    /// extension headers.
    pub protocol: u8,
    /// TCP, UDP and SCTP only, and only for the first fragment.
    pub src_port: Option<u16>,
    /// The destination port (with the same conditions as `src_port`).
    pub dst_port: Option<u16>,
    /// ICMP (protocol 1) and ICMPv6 (protocol 58) only.
    pub icmp_type: Option<u8>,
    /// The ICMP code (with the same conditions as `icmp_type`).
    pub icmp_code: Option<u8>,
}

/// What a receive can run into besides a record, counted by the socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NflogStats {
    /// Records received and parsed.
    pub records: u64,
    /// Messages that could not be parsed (truncated, not IP, no payload, unknown message types
    /// are not counted: they are simply not packets).
    pub unparsable: u64,
    /// Times the kernel reported lost messages (`ENOBUFS`: the receive buffer overflowed).
    pub overruns: u64,
}

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

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The netlink messages of a datagram as (type, sequence number, body after the header);
/// stops at the first malformed header.
fn messages(data: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let header = rest.get(..NLMSG_HDRLEN)?;
        let len = u32::from_ne_bytes(header[0..4].try_into().ok()?) as usize;
        let ty = u16::from_ne_bytes(header[4..6].try_into().ok()?);
        let seq = u32::from_ne_bytes(header[8..12].try_into().ok()?);
        if len < NLMSG_HDRLEN || len > rest.len() {
            rest = &[];
            return None;
        }
        let body = &rest[NLMSG_HDRLEN..len];
        rest = rest.get(align4(len)..).unwrap_or(&[]);
        Some((ty, seq, body))
    })
}

/// The netlink attributes of a body as (type without flag bits, value); stops at the first
/// malformed one.
fn attributes(data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let header = rest.get(..4)?;
        let len = u16::from_ne_bytes([header[0], header[1]]) as usize;
        let ty = u16::from_ne_bytes([header[2], header[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > rest.len() {
            rest = &[];
            return None;
        }
        let value = &rest[4..len];
        rest = rest.get(align4(len)..).unwrap_or(&[]);
        Some((ty, value))
    })
}

/// The packet records of one datagram and how many packet messages could not be parsed.
/// Acks and other message types are neither.
fn parse_datagram(data: &[u8]) -> (Vec<NflogRecord>, u64) {
    let mut records = Vec::new();
    let mut unparsable = 0;
    for (ty, _, body) in messages(data) {
        if ty != (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET {
            continue;
        }
        match parse_packet_message(body) {
            Some(r) => records.push(r),
            None => unparsable += 1,
        }
    }
    (records, unparsable)
}

/// One `NFULNL_MSG_PACKET` body (after the netlink header).
fn parse_packet_message(body: &[u8]) -> Option<NflogRecord> {
    let attrs = body.get(NFGENMSG_LEN..)?;
    let mut prefix = String::new();
    let mut payload = None;
    for (ty, value) in attributes(attrs) {
        match ty {
            NFULA_PREFIX => {
                // NUL-terminated; anything not UTF-8 is replaced rather than refused.
                let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
                prefix = String::from_utf8_lossy(&value[..end]).into_owned();
            }
            NFULA_PAYLOAD => payload = Some(value),
            _ => {}
        }
    }
    let mut record = parse_ip(payload?)?;
    record.prefix = prefix;
    Some(record)
}

/// Parses an IP packet (possibly cut at [`COPY_RANGE`]): addresses always, the L4 fields when
/// the copied bytes reach them.
pub fn parse_ip(packet: &[u8]) -> Option<NflogRecord> {
    let version = packet.first()? >> 4;
    let (src, dst, protocol, l4, first_fragment) = match version {
        4 => {
            let ihl = usize::from(packet.first()? & 0x0f) * 4;
            if ihl < 20 || packet.len() < 20 {
                return None;
            }
            let frag_offset = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff;
            let src = Ipv4Addr::from(<[u8; 4]>::try_from(&packet[12..16]).ok()?);
            let dst = Ipv4Addr::from(<[u8; 4]>::try_from(&packet[16..20]).ok()?);
            (
                IpAddr::V4(src),
                IpAddr::V4(dst),
                packet[9],
                packet.get(ihl..).unwrap_or(&[]),
                frag_offset == 0,
            )
        }
        6 => {
            if packet.len() < 40 {
                return None;
            }
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&packet[8..24]).ok()?);
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&packet[24..40]).ok()?);
            let (protocol, l4, first) = skip_ipv6_extensions(packet[6], &packet[40..]);
            (IpAddr::V6(src), IpAddr::V6(dst), protocol, l4, first)
        }
        _ => return None,
    };
    let mut record = NflogRecord {
        prefix: String::new(),
        src,
        dst,
        protocol,
        src_port: None,
        dst_port: None,
        icmp_type: None,
        icmp_code: None,
    };
    if !first_fragment {
        return Some(record);
    }
    match protocol {
        // TCP, UDP, SCTP, UDP-Lite, DCCP: ports are the first four bytes.
        6 | 17 | 132 | 136 | 33 => {
            if let Some(p) = l4.get(..4) {
                record.src_port = Some(u16::from_be_bytes([p[0], p[1]]));
                record.dst_port = Some(u16::from_be_bytes([p[2], p[3]]));
            }
        }
        1 | 58 => {
            record.icmp_type = l4.first().copied();
            record.icmp_code = l4.get(1).copied();
        }
        _ => {}
    }
    Some(record)
}

/// Walks IPv6 extension headers: the final next-header value, what follows it, and whether this
/// is the first fragment (or not a fragment). Stops (returning what it reached) when the copied
/// bytes run out.
fn skip_ipv6_extensions(mut next: u8, mut rest: &[u8]) -> (u8, &[u8], bool) {
    let mut first = true;
    // A bound on the chain, in case of a crafted loop of headers.
    for _ in 0..8 {
        let len = match next {
            // Hop-by-hop, routing, destination options: (hdr ext len + 1) * 8.
            0 | 43 | 60 => match rest.get(1) {
                Some(&l) => (usize::from(l) + 1) * 8,
                None => break,
            },
            // Fragment: fixed 8 bytes; offset in the upper 13 bits of bytes 2..4.
            44 => {
                let Some(f) = rest.get(2..4) else { break };
                if u16::from_be_bytes([f[0], f[1]]) >> 3 != 0 {
                    first = false;
                }
                8
            }
            // Authentication header: (payload len + 2) * 4.
            51 => match rest.get(1) {
                Some(&l) => (usize::from(l) + 2) * 4,
                None => break,
            },
            _ => break,
        };
        let Some(&n) = rest.first() else { break };
        let Some(r) = rest.get(len..) else { break };
        next = n;
        rest = r;
    }
    (next, rest, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0; 16]);
        p
    }

    fn packet_message(prefix: &str, payload: &[u8]) -> Vec<u8> {
        let mut attrs = Vec::new();
        for (ty, value) in [
            (NFULA_PREFIX, [prefix.as_bytes(), &[0]].concat()),
            (NFULA_PAYLOAD, payload.to_vec()),
        ] {
            attrs.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
            attrs.extend_from_slice(&ty.to_ne_bytes());
            attrs.extend_from_slice(&value);
            attrs.resize(align4(attrs.len()), 0);
        }
        let total = NLMSG_HDRLEN + NFGENMSG_LEN + attrs.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(total as u32).to_ne_bytes());
        m.extend_from_slice(&((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET).to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&[2, 0, 0x6e, 0x70]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn a_tcp_packet_message_yields_prefix_addresses_and_ports() {
        let p = ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 40000, 81);
        let mut data = packet_message("netpol:ingress:in_1", &p);
        data.extend(packet_message("x", &p[..12])); // cut inside the IP header
        let (records, unparsable) = parse_datagram(&data);
        assert_eq!(unparsable, 1);
        assert_eq!(
            records,
            vec![NflogRecord {
                prefix: "netpol:ingress:in_1".into(),
                src: "10.0.0.1".parse().unwrap(),
                dst: "10.0.0.2".parse().unwrap(),
                protocol: 6,
                src_port: Some(40000),
                dst_port: Some(81),
                icmp_type: None,
                icmp_code: None,
            }]
        );
    }

    #[test]
    fn ipv6_extension_headers_are_walked_to_the_udp_ports() {
        let mut p = vec![0x60, 0, 0, 0, 0, 16, 0, 64];
        p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        // Hop-by-hop (8 bytes) -> UDP.
        p.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        p.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
        let r = parse_ip(&p).unwrap();
        assert_eq!(r.protocol, 17);
        assert_eq!((r.src_port, r.dst_port), (Some(12345), Some(53)));
        assert_eq!(r.dst, "fd00::2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn later_fragments_and_icmp_carry_no_ports() {
        let mut p = ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        p[7] = 0x10; // fragment offset 16
        let r = parse_ip(&p).unwrap();
        assert_eq!((r.src_port, r.dst_port), (None, None));
        let mut icmp = ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 0, 0);
        icmp[9] = 1;
        icmp[20] = 8; // echo request
        let r = parse_ip(&icmp).unwrap();
        assert_eq!(
            (r.icmp_type, r.icmp_code, r.dst_port),
            (Some(8), Some(0), None)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678_u64;
        for len in 0..300 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = parse_datagram(&data);
            let _ = parse_ip(&data);
            let mut framed = packet_message("p", &data);
            let _ = parse_datagram(&framed);
            framed.truncate(framed.len() / 2);
            let _ = parse_datagram(&framed);
        }
    }
}
