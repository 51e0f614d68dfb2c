//! The client side of probes. Every function here runs on a thread already inside the source
//! host's namespace, so the sockets it opens belong to the source.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::DataplaneError;
use crate::sctp;

/// A payload unlikely to be confused with another probe's: pid, a counter and the time.
pub(crate) fn nonce() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // splitmix64 finalizer: spreads the bits so tags and ports look random.
    let mut z =
        nanos ^ (u64::from(std::process::id()) << 32) ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

fn bound_socket(
    src: IpAddr,
    dst: SocketAddr,
    ty: Type,
    proto: Protocol,
) -> Result<Socket, DataplaneError> {
    let context = || format!("opening a probe socket from {src} to {dst}");
    let socket = Socket::new(Domain::for_address(dst), ty, Some(proto))
        .map_err(|e| DataplaneError::io(context(), e))?;
    // A bind failure means the lab is broken (the source address is not there): an error, not
    // a "blocked" answer.
    socket
        .bind(&SocketAddr::new(src, 0).into())
        .map_err(|e| DataplaneError::io(context(), e))?;
    Ok(socket)
}

/// Opens a TCP connection from `src` (socket created in the calling thread's namespace).
/// `Ok(None)` when the connection could not be established within the timeout.
pub(crate) fn tcp_connect(
    src: IpAddr,
    dst: SocketAddr,
    timeout: Duration,
) -> Result<Option<TcpStream>, DataplaneError> {
    let socket = bound_socket(src, dst, Type::STREAM, Protocol::TCP)?;
    match socket.connect_timeout(&SockAddr::from(dst), timeout) {
        Ok(()) => Ok(Some(socket.into())),
        // Refused, unreachable, timed out, administratively prohibited: all mean "no".
        Err(_) => Ok(None),
    }
}

/// True iff a TCP handshake completes and the echo of a ping comes back in time.
pub(crate) fn tcp(src: IpAddr, dst: SocketAddr, timeout: Duration) -> Result<bool, DataplaneError> {
    let deadline = Instant::now() + timeout;
    let Some(mut stream) = tcp_connect(src, dst, timeout)? else {
        return Ok(false);
    };
    let ping = format!("netpol-probe {:016x}\n", nonce());
    if stream.write_all(ping.as_bytes()).is_err() {
        return Ok(false);
    }
    let mut reply = vec![0u8; ping.len()];
    let mut got = 0;
    while got < reply.len() {
        let Some(left) = remaining(deadline) else {
            return Ok(false);
        };
        if stream.set_read_timeout(Some(left)).is_err() {
            return Ok(false);
        }
        match stream.read(&mut reply[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Ok(false),
        }
    }
    Ok(reply == ping.as_bytes())
}

/// True iff the UDP echo of a ping comes back from `dst` in time.
pub(crate) fn udp(src: IpAddr, dst: SocketAddr, timeout: Duration) -> Result<bool, DataplaneError> {
    let deadline = Instant::now() + timeout;
    let socket: UdpSocket = bound_socket(src, dst, Type::DGRAM, Protocol::UDP)?.into();
    // Connected, so replies from anyone else are filtered out by the kernel.
    if socket.connect(dst).is_err() {
        return Ok(false);
    }
    let ping = format!("netpol-probe {:016x}\n", nonce());
    if socket.send(ping.as_bytes()).is_err() {
        return Ok(false);
    }
    let mut buf = [0u8; 128];
    loop {
        let Some(left) = remaining(deadline) else {
            return Ok(false);
        };
        if socket.set_read_timeout(Some(left)).is_err() {
            return Ok(false);
        }
        match socket.recv(&mut buf) {
            Ok(n) if &buf[..n] == ping.as_bytes() => return Ok(true),
            Ok(_) => {} // a late echo of an older probe: keep waiting
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Timeout, or ECONNREFUSED from an ICMP port unreachable / reject.
            Err(_) => return Ok(false),
        }
    }
}

/// Sends one SCTP INIT from `src` to `dst` through a raw socket; returns the initiate tag the
/// receiver will see, or `None` when the kernel refused to send it (no route, or an output
/// rule rejected it): then it cannot arrive.
pub(crate) fn sctp_send(src: IpAddr, dst: SocketAddr) -> Result<Option<u32>, DataplaneError> {
    let context = || format!("sending an SCTP INIT from {src} to {dst}");
    let socket = Socket::new(
        Domain::for_address(dst),
        Type::RAW,
        Some(Protocol::from(sctp::IPPROTO_SCTP)),
    )
    .map_err(|e| DataplaneError::io(context(), e))?;
    socket
        .bind(&SocketAddr::new(src, 0).into())
        .map_err(|e| DataplaneError::io(context(), e))?;
    let n = nonce();
    // Ephemeral range, different per probe so conntrack sees each probe as a new association.
    let src_port = 49_152 + (n % 16_000) as u16;
    let tag = ((n >> 16) as u32).max(1);
    let packet = sctp::init_packet(src_port, dst.port(), tag);
    // Raw sockets take the port field as the protocol; 0 is accepted and ignored.
    let target = SocketAddr::new(dst.ip(), 0);
    match socket.send_to(&packet, &target.into()) {
        Ok(_) => Ok(Some(tag)),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EACCES | libc::EPERM)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(DataplaneError::io(context(), e)),
    }
}
