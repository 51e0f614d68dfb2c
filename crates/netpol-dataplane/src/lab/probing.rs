//! Probes between lab hosts: each runs on its own thread inside the source host's namespace.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::addressing::first_of_family;
use super::{lab_error, HostState, Lab, ProbeProtocol, ProbeRequest};
use crate::error::DataplaneError;
use crate::netns;
use crate::probe;

/// Most probes running at once in [`Lab::probe_many`]; each holds a thread.
const MAX_CONCURRENT_PROBES: usize = 256;

impl Lab {
    /// The address `from` sends from towards `to`: its first address of the same family.
    fn source_address(&self, from: &HostState, to: IpAddr) -> Result<IpAddr, DataplaneError> {
        first_of_family(&from.spec.addresses, to.is_ipv6()).ok_or_else(|| {
            lab_error(format!(
                "host {:?} has no {} address to reach {to}",
                from.spec.name,
                if to.is_ipv6() { "IPv6" } else { "IPv4" }
            ))
        })
    }

    /// Probes once: TCP = handshake plus echoed ping; UDP = echoed datagram; SCTP = a raw INIT
    /// seen by the destination's listener. `Ok(false)` means blocked or nobody listening;
    /// `Err` means the request itself is wrong (unknown host, no address of that family).
    pub fn probe(
        &self,
        from_host: &str,
        to_addr: IpAddr,
        protocol: ProbeProtocol,
        port: u16,
        timeout: Duration,
    ) -> Result<bool, DataplaneError> {
        let request = ProbeRequest {
            from_host: from_host.to_owned(),
            to_addr,
            protocol,
            port,
            timeout,
        };
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.run_probe(&request))
                .join()
                .unwrap_or_else(|_| Err(lab_error("a probe thread panicked")))
        })
    }

    /// Runs all probes concurrently (up to 256 at a time); results are in request order.
    pub fn probe_many(&self, requests: &[ProbeRequest]) -> Vec<Result<bool, DataplaneError>> {
        let mut results = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(MAX_CONCURRENT_PROBES) {
            std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|request| scope.spawn(move || self.run_probe(request)))
                    .collect();
                for handle in handles {
                    results.push(
                        handle
                            .join()
                            .unwrap_or_else(|_| Err(lab_error("a probe thread panicked"))),
                    );
                }
            });
        }
        results
    }

    /// Runs on a dedicated thread: it enters the source namespace and never leaves it.
    fn run_probe(&self, request: &ProbeRequest) -> Result<bool, DataplaneError> {
        let from = self.host(&request.from_host)?;
        let src = self.source_address(from, request.to_addr)?;
        netns::enter(&from.netns)?;
        let dst = SocketAddr::new(request.to_addr, request.port);
        match request.protocol {
            ProbeProtocol::Tcp => probe::tcp(src, dst, request.timeout),
            ProbeProtocol::Udp => probe::udp(src, dst, request.timeout),
            ProbeProtocol::Sctp => {
                let deadline = Instant::now() + request.timeout;
                let Some(tag) = probe::sctp_send(src, dst)? else {
                    return Ok(false);
                };
                if let Some(log) = self
                    .service_owner
                    .get(&request.to_addr)
                    .and_then(|&j| self.hosts[j].listeners.as_ref())
                    .map(|l| &l.sctp)
                {
                    return Ok(log.wait_for_tag(request.port, tag, deadline));
                }
                let Some(log) = self
                    .address_owner
                    .get(&request.to_addr)
                    .and_then(|&j| self.hosts[j].listeners.as_ref())
                    .map(|l| &l.sctp)
                else {
                    // Not a lab address: nobody could see it arrive.
                    return Ok(false);
                };
                Ok(log.wait_for(src, request.port, tag, deadline))
            }
        }
    }

    /// How many SCTP INITs from `src` to `port` the host's listener has seen so far.
    pub fn sctp_arrivals(&self, host: &str, src: IpAddr, port: u16) -> Result<u64, DataplaneError> {
        let state = self.host(host)?;
        Ok(state
            .listeners
            .as_ref()
            .map(|l| l.sctp.count(src, port))
            .unwrap_or(0))
    }

    /// Opens a TCP connection from a host (the socket lives in that host's namespace and can be
    /// used from any thread afterwards). `Ok(None)` when it cannot be established in time.
    /// The peer's listener echoes whatever is sent.
    pub fn connect_tcp(
        &self,
        from_host: &str,
        to: SocketAddr,
        timeout: Duration,
    ) -> Result<Option<TcpStream>, DataplaneError> {
        let from = self.host(from_host)?;
        let src = self.source_address(from, to.ip())?;
        netns::run_in(&from.netns, || probe::tcp_connect(src, to, timeout))
    }
}
