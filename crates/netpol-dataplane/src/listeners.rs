//! The servers every lab host runs on its ports: TCP echo, UDP echo and a raw-socket SCTP INIT
//! recorder. Each runs on its own thread that first enters the host's namespace, so its sockets
//! live there.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::DataplaneError;
use crate::netns;
use crate::sctp;

/// How often blocked listener threads look at the stop flag. Bounds how long Drop waits.
const POLL: Duration = Duration::from_millis(100);

/// SCTP INITs seen by one host, for probes to wait on.
#[derive(Default)]
pub(crate) struct SctpLog {
    state: Mutex<SctpSeen>,
    arrived: Condvar,
}

#[derive(Default)]
struct SctpSeen {
    /// (source address, destination port) -> how many INITs arrived.
    counts: HashMap<(IpAddr, u16), u64>,
    /// (source address, destination port, initiate tag) of every INIT that arrived.
    tags: HashSet<(IpAddr, u16, u32)>,
}

impl SctpLog {
    fn record(&self, src: IpAddr, init: sctp::SctpInit) {
        let mut seen = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *seen.counts.entry((src, init.dst_port)).or_default() += 1;
        seen.tags.insert((src, init.dst_port, init.initiate_tag));
        self.arrived.notify_all();
    }

    /// Waits until an INIT with this source, port and tag has arrived, or `deadline` passes.
    pub(crate) fn wait_for(&self, src: IpAddr, port: u16, tag: u32, deadline: Instant) -> bool {
        self.wait_until(deadline, |seen| seen.tags.contains(&(src, port, tag)))
    }

    /// [`SctpLog::wait_for`] from any source: an INIT that came through a Service on the node
    /// (hairpin) arrives masqueraded, from an address of the node.
    pub(crate) fn wait_for_tag(&self, port: u16, tag: u32, deadline: Instant) -> bool {
        self.wait_until(deadline, |seen| {
            seen.tags.iter().any(|&(_, p, t)| p == port && t == tag)
        })
    }

    fn wait_until(&self, deadline: Instant, arrived: impl Fn(&SctpSeen) -> bool) -> bool {
        let mut seen = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if arrived(&seen) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            seen = self
                .arrived
                .wait_timeout(seen, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    pub(crate) fn count(&self, src: IpAddr, port: u16) -> u64 {
        let seen = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        seen.counts.get(&(src, port)).copied().unwrap_or(0)
    }
}

/// What a host listens on.
pub(crate) struct ListenSpec<'a> {
    pub netns: &'a str,
    pub ipv4: bool,
    pub ipv6: bool,
    pub tcp_ports: &'a [u16],
    pub udp_ports: &'a [u16],
    pub sctp_ports: &'a [u16],
}

/// The running listeners of one host; stopped and joined on Drop.
pub(crate) struct HostListeners {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    pub(crate) sctp: Arc<SctpLog>,
}

type Ready = mpsc::Sender<Result<(), DataplaneError>>;

/// Tells the thread that started a listener whether its socket is bound, and hands the socket on
/// when it is.
fn report_ready<T>(ready: &Ready, bound: Result<T, DataplaneError>) -> Option<T> {
    match bound {
        Ok(socket) => {
            let _ = ready.send(Ok(()));
            Some(socket)
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            None
        }
    }
}

impl HostListeners {
    pub(crate) fn start(spec: &ListenSpec<'_>) -> Result<HostListeners, DataplaneError> {
        let mut listeners = HostListeners {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            connections: Arc::new(Mutex::new(Vec::new())),
            sctp: Arc::new(SctpLog::default()),
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut expected = 0usize;
        let mut families: Vec<IpAddr> = Vec::new();
        if spec.ipv4 {
            families.push(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        }
        if spec.ipv6 {
            families.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        }
        for &any in &families {
            for &port in spec.tcp_ports {
                let (stop, conns, ready) = (
                    listeners.stop.clone(),
                    listeners.connections.clone(),
                    ready_tx.clone(),
                );
                let name = spec.netns.to_owned();
                listeners.threads.push(std::thread::spawn(move || {
                    tcp_server(&name, SocketAddr::new(any, port), stop, conns, ready)
                }));
                expected += 1;
            }
            for &port in spec.udp_ports {
                let (stop, ready) = (listeners.stop.clone(), ready_tx.clone());
                let name = spec.netns.to_owned();
                listeners.threads.push(std::thread::spawn(move || {
                    udp_server(&name, SocketAddr::new(any, port), stop, ready)
                }));
                expected += 1;
            }
            if !spec.sctp_ports.is_empty() {
                let (stop, log, ready) = (
                    listeners.stop.clone(),
                    listeners.sctp.clone(),
                    ready_tx.clone(),
                );
                let name = spec.netns.to_owned();
                let ports: HashSet<u16> = spec.sctp_ports.iter().copied().collect();
                listeners.threads.push(std::thread::spawn(move || {
                    sctp_recorder(&name, any.is_ipv6(), ports, log, stop, ready)
                }));
                expected += 1;
            }
        }
        drop(ready_tx);
        // Every listener reports once it is bound (or failed), so probes never race a bind.
        for _ in 0..expected {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(DataplaneError::Lab(format!(
                        "a listener thread in {} died before it was ready",
                        spec.netns
                    )))
                }
            }
        }
        Ok(listeners)
    }
}

impl HostListeners {
    /// Asks every thread to stop without waiting for it, so several hosts can stop in parallel.
    pub(crate) fn signal_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Drop for HostListeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let connections = std::mem::take(
            &mut *self
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for thread in connections {
            let _ = thread.join();
        }
    }
}

fn socket_for(addr: SocketAddr, ty: Type, protocol: Protocol) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    if addr.is_ipv6() {
        // The IPv4 twin listens separately; mapped addresses would hide which family arrived.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_read_timeout(Some(POLL))?;
    Ok(socket)
}

fn bind_tcp(netns: &str, addr: SocketAddr) -> Result<TcpListener, DataplaneError> {
    netns::enter(netns)?;
    let context = || format!("listening on TCP {addr} in {netns}");
    let socket = socket_for(addr, Type::STREAM, Protocol::TCP)
        .map_err(|e| DataplaneError::io(context(), e))?;
    socket
        .bind(&addr.into())
        .and_then(|()| socket.listen(1024))
        .map_err(|e| DataplaneError::io(context(), e))?;
    // SO_RCVTIMEO also bounds accept(2) on Linux, so the loop can notice the stop flag.
    Ok(socket.into())
}

fn tcp_server(
    netns: &str,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    ready: Ready,
) {
    let Some(listener) = report_ready(&ready, bind_tcp(netns, addr)) else {
        return;
    };
    while !stop.load(Ordering::SeqCst) {
        let Ok((stream, _)) = listener.accept() else {
            continue; // timeout (checked stop) or a transient accept error
        };
        let stop = stop.clone();
        let handle = std::thread::spawn(move || echo_connection(stream, &stop));
        let mut list = connections.lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|h| !h.is_finished());
        list.push(handle);
    }
}

/// Echoes everything back until the peer closes: a probe's ping gets its reply, and long-lived
/// test connections keep flowing.
fn echo_connection(mut stream: TcpStream, stop: &AtomicBool) {
    if stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}

fn bind_udp(netns: &str, addr: SocketAddr) -> Result<UdpSocket, DataplaneError> {
    netns::enter(netns)?;
    let context = || format!("listening on UDP {addr} in {netns}");
    let socket = socket_for(addr, Type::DGRAM, Protocol::UDP)
        .map_err(|e| DataplaneError::io(context(), e))?;
    socket
        .bind(&addr.into())
        .map_err(|e| DataplaneError::io(context(), e))?;
    Ok(socket.into())
}

fn udp_server(netns: &str, addr: SocketAddr, stop: Arc<AtomicBool>, ready: Ready) {
    let Some(socket) = report_ready(&ready, bind_udp(netns, addr)) else {
        return;
    };
    let mut buf = [0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        if let Ok((n, peer)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], peer);
        }
    }
}

fn bind_sctp_raw(netns: &str, ipv6: bool) -> Result<Socket, DataplaneError> {
    netns::enter(netns)?;
    let family = if ipv6 { "IPv6" } else { "IPv4" };
    let context = || format!("opening a raw {family} SCTP socket in {netns}");
    let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::RAW, Some(Protocol::from(sctp::IPPROTO_SCTP)))
        .map_err(|e| DataplaneError::io(context(), e))?;
    socket
        .set_read_timeout(Some(POLL))
        .map_err(|e| DataplaneError::io(context(), e))?;
    Ok(socket)
}

/// Receives into an initialized buffer through socket2's `MaybeUninit` interface.
pub(crate) fn recv_from(socket: &Socket, buf: &mut [u8]) -> std::io::Result<(usize, IpAddr)> {
    // SAFETY: an initialized `[u8]` is a valid `[MaybeUninit<u8>]` of the same length, and recv
    // only writes initialized bytes into it.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    let (n, from) = socket.recv_from(uninit)?;
    let ip = from
        .as_socket()
        .map(|s| s.ip())
        .ok_or_else(|| std::io::Error::other("raw packet from a non-IP address"))?;
    Ok((n, ip))
}

fn sctp_recorder(
    netns: &str,
    ipv6: bool,
    ports: HashSet<u16>,
    log: Arc<SctpLog>,
    stop: Arc<AtomicBool>,
    ready: Ready,
) {
    let Some(socket) = report_ready(&ready, bind_sctp_raw(netns, ipv6)) else {
        return;
    };
    let mut buf = [0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, src)) = recv_from(&socket, &mut buf) else {
            continue;
        };
        let packet = &buf[..n];
        // Raw IPv4 sockets deliver the IP header too; raw IPv6 sockets do not.
        let payload = if ipv6 {
            Some(packet)
        } else {
            sctp::strip_ipv4_header(packet)
        };
        if let Some(init) = payload.and_then(sctp::parse_init) {
            if ports.contains(&init.dst_port) {
                log.record(src, init);
            }
        }
    }
}
