//! Parsing what an NFLOG socket receives: netlink messages, their attributes, and the IP and
//! L4 headers of each logged packet. Pure, so the round trip is tested on built messages.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::NflogRecord;

// nfnetlink / nfnetlink_log constants (uapi headers; not in the libc crate).
pub(super) const NFNL_SUBSYS_ULOG: u16 = 4;
const NFULNL_MSG_PACKET: u16 = 0;
const NFULA_PAYLOAD: u16 = 9;
const NFULA_PREFIX: u16 = 10;
const NLA_TYPE_MASK: u16 = 0x3fff;
pub(super) const NLMSG_HDRLEN: usize = 16;
pub(super) const NFGENMSG_LEN: usize = 4;

pub(super) fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The netlink messages of a datagram as (type, sequence number, body after the header);
/// stops at the first malformed header.
pub(super) fn messages(data: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
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
pub(super) fn parse_datagram(data: &[u8]) -> (Vec<NflogRecord>, u64) {
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

/// Parses an IP packet (possibly cut at [`COPY_RANGE`](super::COPY_RANGE)): addresses always, the L4 fields when
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
