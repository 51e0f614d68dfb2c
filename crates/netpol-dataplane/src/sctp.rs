//! Just enough SCTP to probe reachability without kernel SCTP support: an INIT packet (common
//! header + INIT chunk, RFC 9260 §3) with its CRC32c, built for raw sockets of protocol 132, and a
//! parser for the listener side.

/// IANA protocol number of SCTP.
pub const IPPROTO_SCTP: i32 = 132;

const CHUNK_INIT: u8 = 1;
const COMMON_HEADER_LEN: usize = 12;
const INIT_CHUNK_LEN: usize = 20;

/// Length of the packets [`init_packet`] builds.
pub const INIT_PACKET_LEN: usize = COMMON_HEADER_LEN + INIT_CHUNK_LEN;

/// CRC32c (Castagnoli, reflected polynomial 0x82F63B78), as SCTP uses it.
pub fn crc32c(data: &[u8]) -> u32 {
    const fn table() -> [u32; 256] {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = i as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    }
    static TABLE: [u32; 256] = table();
    let mut crc = !0u32;
    for &byte in data {
        crc = TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// The interesting fields of a received INIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SctpInit {
    /// The sender's port.
    pub src_port: u16,
    /// The port the INIT is addressed to.
    pub dst_port: u16,
    /// The sender's verification tag, which tells one probe's INIT from another's.
    pub initiate_tag: u32,
}

/// Builds an SCTP packet holding one INIT chunk, checksum filled in.
///
/// The verification tag of an INIT is 0 (RFC 9260 §8.5.1); the initiate tag must be non-zero, so
/// 0 is replaced by 1.
pub fn init_packet(src_port: u16, dst_port: u16, initiate_tag: u32) -> [u8; INIT_PACKET_LEN] {
    let tag = if initiate_tag == 0 { 1 } else { initiate_tag };
    let mut p = [0u8; INIT_PACKET_LEN];
    p[0..2].copy_from_slice(&src_port.to_be_bytes());
    p[2..4].copy_from_slice(&dst_port.to_be_bytes());
    // p[4..8]: verification tag 0; p[8..12]: checksum, computed last over zeros.
    p[12] = CHUNK_INIT;
    p[13] = 0; // flags
    p[14..16].copy_from_slice(&(INIT_CHUNK_LEN as u16).to_be_bytes());
    p[16..20].copy_from_slice(&tag.to_be_bytes());
    p[20..24].copy_from_slice(&65_535u32.to_be_bytes()); // advertised receiver window
    p[24..26].copy_from_slice(&1u16.to_be_bytes()); // outbound streams
    p[26..28].copy_from_slice(&1u16.to_be_bytes()); // inbound streams
    p[28..32].copy_from_slice(&tag.to_be_bytes()); // initial TSN
    let crc = crc32c(&p);
    // SCTP transmits the CRC32c least significant byte first (RFC 9260 Appendix A; Linux
    // stores cpu_to_le32 of the same value).
    p[8..12].copy_from_slice(&crc.to_le_bytes());
    p
}

/// Parses an SCTP packet (starting at the common header) whose first chunk is an INIT with a
/// valid checksum.
pub fn parse_init(packet: &[u8]) -> Option<SctpInit> {
    if packet.len() < INIT_PACKET_LEN || packet[12] != CHUNK_INIT {
        return None;
    }
    let stored = u32::from_le_bytes([packet[8], packet[9], packet[10], packet[11]]);
    let mut zeroed = packet.to_vec();
    zeroed[8..12].fill(0);
    if crc32c(&zeroed) != stored {
        return None;
    }
    Some(SctpInit {
        src_port: u16::from_be_bytes([packet[0], packet[1]]),
        dst_port: u16::from_be_bytes([packet[2], packet[3]]),
        initiate_tag: u32::from_be_bytes([packet[16], packet[17], packet[18], packet[19]]),
    })
}

/// Skips the IPv4 header that raw IPv4 sockets deliver in front of the payload.
pub(crate) fn strip_ipv4_header(packet: &[u8]) -> Option<&[u8]> {
    let first = *packet.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let header_len = usize::from(first & 0x0f) * 4;
    packet.get(header_len..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_published_check_value() {
        // The standard CRC-32C check value for the ASCII string "123456789".
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    }

    #[test]
    fn an_init_packet_round_trips_through_the_parser() {
        let packet = init_packet(40_000, 5000, 0xdead_beef);
        assert_eq!(
            parse_init(&packet),
            Some(SctpInit {
                src_port: 40_000,
                dst_port: 5000,
                initiate_tag: 0xdead_beef
            })
        );
    }

    #[test]
    fn a_corrupted_init_is_rejected() {
        let mut packet = init_packet(1, 2, 3);
        packet[20] ^= 0x40;
        assert_eq!(parse_init(&packet), None);
    }

    #[test]
    fn the_ipv4_header_length_is_honoured() {
        let mut datagram = vec![0x46u8; 24]; // version 4, IHL 6 (24 bytes, with options)
        datagram.extend_from_slice(&init_packet(7, 8, 9));
        let inner = strip_ipv4_header(&datagram).map(parse_init);
        assert_eq!(inner.flatten().map(|i| i.dst_port), Some(8));
    }
}
