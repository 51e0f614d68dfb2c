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
//!
//! `parse` turns received datagrams into [`NflogRecord`]s (pure, tested on built messages);
//! `socket` owns the netlink socket: binding, configuration, waiting and receiving.

use std::net::IpAddr;

mod parse;
mod socket;

pub use parse::parse_ip;
pub use socket::NflogSocket;

/// Bytes of each packet copied to user space: an IPv6 header (40) with a few extension headers
/// and any L4 header fit; payload beyond that is of no use here.
pub const COPY_RANGE: u32 = 256;

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
