//! The faults the FAKE API server can be told to have, and its connections: plain or https
//! (with the test certificates in `certs/`), every one of which can be reset on demand.
//!
//! The certificates were made once with `openssl` (P-256): `ca.pem` signs `server.pem`
//! (127.0.0.1 and localhost, valid 2020-2120), `wrong-host.pem` (other.example only) and
//! `expired.pem` (127.0.0.1, valid only in 2000); `other-ca.pem` signs nothing the fake serves.
//! Their keys are here because they only ever serve these tests.

use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// What the fake does wrong, on purpose. Everything off by default.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Discovery (`/apis/<group>/<version>`) answers this HTTP status instead of the truth.
    pub discovery_status: Option<u16>,
    /// Lists of these plurals are accepted and never answered.
    pub hung_lists: HashSet<String>,
    /// Watches of these plurals are answered (200) and then send nothing, not even bookmarks.
    pub silent_watches: HashSet<String>,
    /// The bearer token every request must carry; others get 401 Unauthorized.
    pub token: Option<String>,
    /// (plural, verb) pairs RBAC forbids: answered 403 Forbidden (verb `list` or `watch`).
    pub forbidden: HashSet<(String, String)>,
}

/// The path of a test certificate file.
pub fn cert_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/fake_apiserver/certs")
        .join(name)
}

/// A TLS acceptor serving `certs/<name>.pem` with `certs/<name>.key`.
pub fn tls_acceptor(name: &str) -> TlsAcceptor {
    let pem = std::fs::read(cert_path(&format!("{name}.pem"))).unwrap();
    let key = std::fs::read(cert_path(&format!("{name}.key"))).unwrap();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(&key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// The fake's listener: plain or TLS, every connection wrapped so that [`Resetting`] can cut it.
pub struct FaultyListener {
    pub tcp: TcpListener,
    pub tls: Option<TlsAcceptor>,
    pub resetting: Arc<AtomicBool>,
}

/// A connection of the fake (plain or TLS over a [`Cut`] TCP stream).
pub enum Conn {
    Plain(Cut),
    Tls(Box<tokio_rustls::server::TlsStream<Cut>>),
}

impl axum::serve::Listener for FaultyListener {
    type Io = Conn;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Conn, std::net::SocketAddr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            if self.resetting.load(Ordering::SeqCst) {
                drop(stream);
                continue;
            }
            let cut = Cut {
                stream,
                resetting: self.resetting.clone(),
            };
            match &self.tls {
                None => return (Conn::Plain(cut), addr),
                // A client that rejects the certificate ends the handshake: next connection.
                Some(tls) => match tls.accept(cut).await {
                    Ok(s) => return (Conn::Tls(Box::new(s)), addr),
                    Err(_) => continue,
                },
            }
        }
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.tcp.local_addr()
    }
}

/// A TCP stream that fails every read and write while the fake is resetting connections (so
/// pooled keep-alive connections and open watches are cut too, not only new ones).
pub struct Cut {
    stream: TcpStream,
    resetting: Arc<AtomicBool>,
}

impl Cut {
    fn check(&self) -> io::Result<()> {
        if self.resetting.load(Ordering::SeqCst) {
            Err(io::Error::new(io::ErrorKind::ConnectionReset, "fake reset"))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for Cut {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Cut {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Conn::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            Conn::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}
