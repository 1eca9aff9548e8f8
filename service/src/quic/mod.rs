//! QUIC transport, written once for every runtime: one call per
//! bidirectional stream, many calls per connection.
//!
//! quinn's connections and streams work on any executor once their
//! endpoint exists; only the endpoint needs a runtime (and its UDP socket),
//! so the shells build endpoints (`Endpoint::new` with quinn's
//! `TokioRuntime` or `SmolRuntime`) and everything else is here.
//!
//! # Identities
//!
//! A peer is an [`Identity`]: a self-signed certificate and its key, known
//! to others by the certificate's [`Fingerprint`] (the SHA-256 of its DER),
//! the way SSH knows hosts and users by their keys. No certificate
//! authority, name or validity date is checked: trust is a list of
//! fingerprints that the caller keeps and that is asked, through a closure,
//! at every handshake.
//!
//! - The server presents its identity, requires one from every client and
//!   asks `authorize` about the client's fingerprint
//!   ([`mtls_server_config`]); [`peer_by_fingerprint`] names the calls of
//!   each connection after it.
//! - The client presents its identity and asks `pin` about the server's
//!   fingerprint ([`pinned_client_config`]); the server name given to
//!   `connect` is not checked.
//!
//! Both closures are shown only fingerprints of certificates whose key
//! signed the handshake, and sessions are never resumed, so every new
//! connection asks them again. A client the server refused finds
//! [`refused_by_peer`] true of its connection's close reason.
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//!
//! use dockwire_core::Limits;
//! use dockwire_service::quic::{
//!     Fingerprint, Identity, QuicConnect, QuicOptions, endpoint, mtls_server_config,
//!     peer_by_fingerprint, pinned_client_config, serve_quic,
//! };
//! use dockwire_service::{Client, Router, Spawn};
//!
//! # async fn example(
//! #     runtime: Arc<dyn dockwire_service::quic::quinn::Runtime>,
//! #     spawn: Arc<dyn Spawn>,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! let options = QuicOptions::default();
//! let server = Identity::generate("dockwire")?;
//! let client = Identity::generate("dockwire")?;
//!
//! // The server lets in the clients whose fingerprints it trusts, and
//! // names their calls' peers after them.
//! let alice: Fingerprint = client.fingerprint().to_string().parse()?;
//! let authorize = Arc::new(move |fp: &Fingerprint| *fp == alice);
//! let names = Arc::new(move |fp: &Fingerprint| -> Option<Arc<str>> {
//!     (*fp == alice).then(|| "alice".into())
//! });
//! let config = mtls_server_config(&server, authorize, &options)?;
//! let addr: SocketAddr = "127.0.0.1:4433".parse()?;
//! let listening = endpoint(addr, Some(config), runtime.clone())?;
//! let service = Arc::new(Router::new());
//! let limits = Limits::default();
//! let serve = serve_quic(listening, service, spawn.clone(), limits, peer_by_fingerprint(names));
//! spawn.spawn(Box::pin(serve));
//!
//! // The client accepts the server whose fingerprint it pinned.
//! let expected = server.fingerprint();
//! let pin = Arc::new(move |fp: &Fingerprint| *fp == expected);
//! let mut dialing = endpoint("127.0.0.1:0".parse()?, None, runtime)?;
//! dialing.set_default_client_config(pinned_client_config(&client, pin, &options)?);
//! let connection = QuicConnect::connect(&dialing, addr, "dockwire").await?;
//! let calls = Client::new(Arc::new(connection), spawn, limits);
//! # drop(calls);
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;

use dockwire_core::Limits;
use futures::future::BoxFuture;
use futures::{AsyncRead, AsyncWrite};
use futures::{Future, FutureExt};
use quinn::{
    Connection, ConnectionError, Endpoint, ReadError, RecvStream, SendStream, TransportConfig,
    VarInt, WriteError,
};

/// quinn, as this module uses it (endpoints, connections, configs).
pub use quinn;
/// The certificate and key types [`server_config`], [`client_config`] and
/// [`Identity`] hold.
pub use quinn::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::server::Serve;
use crate::transmit::Transmit;
use crate::{BoxRead, BoxWrite, Connect, Peer, SendHalf, Service, Spawn};

mod identity;
mod mtls;
mod watch;

pub use identity::{Fingerprint, Identity, IdentityError};
pub use mtls::{
    NameLookup, TrustCheck, mtls_server_config, peer_by_fingerprint, peer_fingerprint,
    pinned_client_config, refused_by_peer,
};
pub use watch::{Standing, TRUST_CHANGED, TRUST_CHANGED_REASON, TrustWatch};

use watch::Revoked;

/// Concurrent calls (bidirectional streams) a peer may have open on one
/// connection, by default.
pub const MAX_CONCURRENT_CALLS: u32 = 1024;

/// How often each side sends a keep-alive on an otherwise silent
/// connection, by default: well inside [`IDLE_TIMEOUT`], so that a call
/// that is quiet for long (a `sleep` exec, a followed log of an idle
/// container) keeps its connection, while a peer that is really gone is
/// still noticed within the idle timeout.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// How long a connection may hear nothing from its peer (keep-alives
/// included) before it is closed, by default (quinn's own default).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A server config presenting `cert_chain` and `key`, with the default
/// [`QuicOptions`]. Clients are not asked for a certificate; see
/// [`mtls_server_config`] for that.
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<quinn::ServerConfig, quinn::rustls::Error> {
    let mut config = quinn::ServerConfig::with_single_cert(cert_chain, key)?;
    config.transport_config(Arc::new(QuicOptions::default().transport_config()));
    Ok(config)
}

/// A client config trusting exactly the given server certificates (as
/// roots, for the server name given to `connect`), presenting none of its
/// own, with the default [`QuicOptions`]; see [`pinned_client_config`] for
/// identities.
pub fn client_config(
    trusted: &[CertificateDer<'static>],
) -> Result<quinn::ClientConfig, Box<dyn std::error::Error + Send + Sync>> {
    let mut roots = quinn::rustls::RootCertStore::empty();
    for cert in trusted {
        roots.add(cert.clone())?;
    }
    let mut config = quinn::ClientConfig::with_root_certificates(Arc::new(roots))?;
    config.transport_config(Arc::new(QuicOptions::default().transport_config()));
    Ok(config)
}

/// A connection's transport settings, for [`mtls_server_config`] and
/// [`pinned_client_config`].
///
/// ```
/// use std::time::Duration;
/// use dockwire_service::quic::QuicOptions;
///
/// let options = QuicOptions::default().with_idle_timeout(Duration::from_secs(3));
/// // The default 10 s keep-alive is not below 3 s: a third of it is used.
/// assert_eq!(options.effective_keep_alive(), Some(Duration::from_secs(1)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuicOptions {
    /// Concurrent calls (bidirectional streams) the peer may have open on
    /// one connection. Default [`MAX_CONCURRENT_CALLS`].
    pub max_calls_per_connection: u32,
    /// A connection that hears nothing from its peer this long is closed.
    /// Default [`IDLE_TIMEOUT`]; zero means never. QUIC uses the smaller of
    /// the two ends' timeouts.
    pub idle_timeout: Duration,
    /// How often a silent connection sends a keep-alive. Default
    /// [`KEEP_ALIVE`]; zero means never. One that is not below a non-zero
    /// idle timeout would let a quiet but live connection die, so a third
    /// of the idle timeout is used instead
    /// ([`effective_keep_alive`](Self::effective_keep_alive)).
    pub keep_alive: Duration,
    /// How this end paces what it sends. Default [`Congestion::Cubic`].
    /// Each end chooses its own: a server's choice paces what it sends
    /// (an exec's output), a client's what it sends (its stdin).
    pub congestion: Congestion,
}

impl Default for QuicOptions {
    fn default() -> Self {
        QuicOptions {
            max_calls_per_connection: MAX_CONCURRENT_CALLS,
            idle_timeout: IDLE_TIMEOUT,
            keep_alive: KEEP_ALIVE,
            congestion: Congestion::default(),
        }
    }
}

/// The congestion controller of a connection's sending side: how fast it
/// sends, and how it answers loss and a growing round trip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Congestion {
    /// CUBIC (RFC 9438), quinn's default and TCP's on Linux: it backs off
    /// on every loss, so random loss on a long round trip keeps it slow.
    #[default]
    Cubic,
    /// BBR (version 1), which paces by the bandwidth and round trip it
    /// measures and does not take loss for congestion: much faster on a
    /// lossy or jittery link. quinn marks its BBR experimental.
    Bbr,
    /// NewReno (RFC 9002's), the plainest: halves on every loss.
    NewReno,
}

impl Congestion {
    /// quinn's factory for this controller, with its default settings.
    pub fn factory(self) -> Arc<dyn quinn::congestion::ControllerFactory + Send + Sync> {
        use quinn::congestion::{BbrConfig, CubicConfig, NewRenoConfig};
        match self {
            Congestion::Cubic => Arc::new(CubicConfig::default()),
            Congestion::Bbr => Arc::new(BbrConfig::default()),
            Congestion::NewReno => Arc::new(NewRenoConfig::default()),
        }
    }
}

impl QuicOptions {
    /// With `n` concurrent calls per connection.
    #[must_use]
    pub fn with_max_calls_per_connection(mut self, n: u32) -> Self {
        self.max_calls_per_connection = n;
        self
    }

    /// With this idle timeout (zero: none).
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// With this keep-alive interval (zero: none).
    #[must_use]
    pub fn with_keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval;
        self
    }

    /// With this congestion controller for what this end sends.
    #[must_use]
    pub fn with_congestion(mut self, congestion: Congestion) -> Self {
        self.congestion = congestion;
        self
    }

    /// The keep-alive interval the transport uses: `keep_alive`, or a third
    /// of a non-zero idle timeout that is not above it; `None` for none.
    pub fn effective_keep_alive(&self) -> Option<Duration> {
        let idle = self.idle_timeout;
        let interval = if idle.is_zero() || self.keep_alive < idle {
            self.keep_alive
        } else {
            idle / 3
        };
        (!interval.is_zero()).then_some(interval)
    }

    /// quinn's transport config for these options.
    pub fn transport_config(&self) -> TransportConfig {
        let mut t = TransportConfig::default();
        t.max_concurrent_bidi_streams(VarInt::from_u32(self.max_calls_per_connection));
        // quinn's "none" is `None`; a timeout beyond QUIC's range (2^62 ms)
        // is as good as none.
        let idle = match self.idle_timeout.is_zero() {
            true => None,
            false => quinn::IdleTimeout::try_from(self.idle_timeout).ok(),
        };
        t.max_idle_timeout(idle);
        t.keep_alive_interval(self.effective_keep_alive());
        t.congestion_controller_factory(self.congestion.factory());
        t
    }
}

/// Names a connection's peer (its certificate's name, its address…).
pub type PeerName = Arc<dyn Fn(&Connection) -> Arc<str> + Send + Sync>;

/// Names a peer by its address, for servers without client identities.
pub fn peer_by_address() -> PeerName {
    Arc::new(|c: &Connection| -> Arc<str> { c.remote_address().to_string().into() })
}

/// A QUIC endpoint bound to `addr` on quinn's `runtime`: a server when
/// given a server config, else a client only.
pub fn endpoint(
    addr: SocketAddr,
    server: Option<quinn::ServerConfig>,
    runtime: Arc<dyn quinn::Runtime>,
) -> io::Result<Endpoint> {
    let socket = std::net::UdpSocket::bind(addr)?;
    grow_receive_buffer(&socket);
    Endpoint::new(quinn::EndpointConfig::default(), server, socket, runtime)
}

/// The receive buffer asked for an endpoint's socket.
pub const RECEIVE_BUFFER: usize = 4 * 1024 * 1024;

/// Asks for a [`RECEIVE_BUFFER`] on `socket`. The default (about 208 KiB
/// on Linux) holds a fraction of a connection's flow-control window: a
/// peer that sends a window's worth while this process is busy for a
/// moment overflows it, the kernel drops datagrams, and the sender takes
/// the drops for congestion and slows down (on loopback, hundreds of drops
/// per 256 MiB of stdin). The kernel caps the size at `net.core.rmem_max`;
/// a smaller buffer is logged, not refused.
fn grow_receive_buffer(socket: &std::net::UdpSocket) {
    let grown = quinn::udp::UdpSocketState::new(socket.into()).and_then(|state| {
        state.set_recv_buffer_size(socket.into(), RECEIVE_BUFFER)?;
        state.recv_buffer_size(socket.into())
    });
    match grown {
        Ok(size) if size < RECEIVE_BUFFER => tracing::debug!(
            "the UDP receive buffer is {size} bytes, below the {RECEIVE_BUFFER} asked \
             (raise net.core.rmem_max)"
        ),
        Ok(_) => {}
        Err(e) => tracing::debug!("cannot size the UDP receive buffer: {e}"),
    }
}

/// Accepts connections on `endpoint` until it is closed, and serves every
/// bidirectional stream of each as one call. `peer` names a connection's
/// peer (a certificate's name, once identities exist); its calls' key is
/// `sha256:<fingerprint>` of its certificate (the name, without one) and
/// their remote address the connection's.
pub async fn serve_quic(
    endpoint: Endpoint,
    service: Arc<dyn Service>,
    spawn: Arc<dyn Spawn>,
    limits: Limits,
    peer: PeerName,
) {
    serve(endpoint, service, spawn, limits, peer, None).await
}

/// [`serve_quic`], with every connection watched by `watch`: a call on a
/// connection whose key no longer has the standing it had at the
/// handshake is refused `FORBIDDEN`, and [`TrustWatch::recheck`] (which
/// the server calls periodically, say every second) closes the connection
/// ([`TRUST_CHANGED`]).
pub async fn serve_quic_watched(
    endpoint: Endpoint,
    service: Arc<dyn Service>,
    spawn: Arc<dyn Spawn>,
    limits: Limits,
    peer: PeerName,
    watch: Arc<TrustWatch>,
) {
    serve(endpoint, service, spawn, limits, peer, Some(watch)).await
}

async fn serve(
    endpoint: Endpoint,
    service: Arc<dyn Service>,
    spawn: Arc<dyn Spawn>,
    limits: Limits,
    peer: PeerName,
    watch: Option<Arc<TrustWatch>>,
) {
    while let Some(incoming) = endpoint.accept().await {
        let service = service.clone();
        let inner_spawn = spawn.clone();
        let peer = peer.clone();
        let watch = watch.clone();
        spawn.spawn(
            async move {
                let Ok(connection) = incoming.await else {
                    return;
                };
                let who = connection_peer(&connection, &peer);
                if let Some(watch) = &watch {
                    watch.admit(&connection);
                }
                // Ends when the connection does; its calls see their
                // streams fail and cancel.
                while let Ok((send, recv)) = connection.accept_bi().await {
                    // A connection lost to its idle timeout reads and
                    // writes as timed out: the call's link is then lost,
                    // not cancelled (see `CallLink`).
                    let out = QuicSend::new(send, timed_out);
                    let recv = Lost(recv);
                    let stands = watch.as_ref().is_none_or(|w| w.still_stands(&connection));
                    // Refused at once, on a connection whose trust changed:
                    // the next recheck closes it (closing it here could
                    // drop the refusal before it reaches the client).
                    let service = match stands {
                        true => service.clone(),
                        false => Arc::new(Revoked),
                    };
                    let call = Serve::new(service, who.clone(), recv, out, limits);
                    inner_spawn.spawn(call.map(drop).boxed());
                }
                if let Some(watch) = &watch {
                    watch.forget(&connection);
                }
            }
            .boxed(),
        );
    }
}

/// The peer of `connection`'s calls: named by `name`, keyed by its
/// certificate's fingerprint.
fn connection_peer(connection: &Connection, name: &PeerName) -> Peer {
    let name = name(connection);
    let key = match peer_fingerprint(connection) {
        Some(fingerprint) => format!("sha256:{fingerprint}").into(),
        None => name.clone(),
    };
    Peer {
        name,
        key,
        remote: Some(connection.remote_address()),
    }
}

/// Opens one bidirectional stream per call on an established connection.
#[derive(Clone, Debug)]
pub struct QuicConnect {
    connection: Connection,
}

impl QuicConnect {
    /// Calls over `connection`.
    pub fn new(connection: Connection) -> Self {
        QuicConnect { connection }
    }

    /// Connects `endpoint` to `addr`, expecting the certificate to be for
    /// `server_name`.
    pub async fn connect(
        endpoint: &Endpoint,
        addr: SocketAddr,
        server_name: &str,
    ) -> io::Result<Self> {
        let connecting = endpoint
            .connect(addr, server_name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let connection = connecting.await.map_err(io::Error::other)?;
        Ok(QuicConnect { connection })
    }

    /// The connection calls go over.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }
}

/// A new stream of a call on `connection`; a connection lost to its idle
/// timeout reads as timed out.
async fn open_bi(connection: Connection) -> io::Result<(SendStream, RecvStream)> {
    connection
        .open_bi()
        .await
        .map_err(|e| timed_out(io::Error::other(e)))
}

impl Connect for QuicConnect {
    fn open(&self) -> BoxFuture<'static, io::Result<(BoxRead, BoxWrite)>> {
        let connection = self.connection.clone();
        async move {
            let (send, recv) = open_bi(connection).await?;
            Ok((
                Box::pin(Lost(recv)) as BoxRead,
                Box::pin(Lost(send)) as BoxWrite,
            ))
        }
        .boxed()
    }

    /// As [`open`](Connect::open), with the send side taking the machine's
    /// pieces as the `Bytes` they are, as the server's does.
    fn open_call(&self) -> BoxFuture<'static, io::Result<(BoxRead, SendHalf)>> {
        let connection = self.connection.clone();
        async move {
            let (send, recv) = open_bi(connection).await?;
            let send = SendHalf::new(QuicSend::new(send, timed_out));
            Ok((Box::pin(Lost(recv)) as BoxRead, send))
        }
        .boxed()
    }
}

/// A call stream (a client's, and a server's): quinn's, with a connection lost to its idle
/// timeout reported as [`io::ErrorKind::TimedOut`] (quinn says
/// `NotConnected` for every lost connection), so that a caller can tell a
/// silent peer from a closed or reset one without knowing quinn's types.
struct Lost<S>(S);

impl AsyncRead for Lost<RecvStream> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf).map_err(timed_out)
    }
}

impl AsyncWrite for Lost<SendStream> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf).map_err(timed_out)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.0), cx).map_err(timed_out)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_close(Pin::new(&mut self.0), cx).map_err(timed_out)
    }
}

/// `e` with the kind [`io::ErrorKind::TimedOut`] when its cause is a
/// connection lost to the idle timeout; the cause is kept either way.
fn timed_out(e: io::Error) -> io::Error {
    let lost = |c: &ConnectionError| *c == ConnectionError::TimedOut;
    let is_timeout = e.get_ref().is_some_and(|inner| {
        inner.downcast_ref::<ConnectionError>().is_some_and(lost)
            || matches!(inner.downcast_ref::<ReadError>(), Some(ReadError::ConnectionLost(c)) if lost(c))
            || matches!(inner.downcast_ref::<WriteError>(), Some(WriteError::ConnectionLost(c)) if lost(c))
    });
    if !is_timeout || e.kind() == io::ErrorKind::TimedOut {
        return e;
    }
    match e.into_inner() {
        Some(cause) => io::Error::new(io::ErrorKind::TimedOut, cause),
        None => io::Error::from(io::ErrorKind::TimedOut),
    }
}

/// Pieces a driver takes from its machine at most per write.
const PIECES: usize = 16;

/// A call stream's send side for either driver: the machine's pieces go
/// to quinn as the `Bytes` they are (`write_chunks`), where its
/// `AsyncWrite` would copy every payload into its send buffer.
struct QuicSend {
    send: SendStream,
    /// Taken from the machine, not yet accepted by quinn; fully written
    /// ones are empty until removed.
    pieces: Vec<Bytes>,
    len: usize,
    /// How an error is reported: a client's as [`Lost`] reports it.
    error: fn(io::Error) -> io::Error,
}

impl QuicSend {
    fn new(send: SendStream, error: fn(io::Error) -> io::Error) -> Self {
        QuicSend {
            send,
            pieces: Vec::with_capacity(PIECES),
            len: 0,
            error,
        }
    }
}

impl Transmit for QuicSend {
    fn len(&self) -> usize {
        self.len
    }

    fn poll_transmit(
        &mut self,
        pull: &mut dyn FnMut() -> Option<Bytes>,
        cx: &mut Context<'_>,
        progress: &mut bool,
    ) -> io::Result<()> {
        loop {
            while self.pieces.len() < PIECES {
                let Some(piece) = pull() else { break };
                self.len += piece.len();
                self.pieces.push(piece);
            }
            if self.pieces.is_empty() {
                return Ok(());
            }
            // Cancel-safe: a write that does not resolve wrote nothing, and
            // leaves the task registered for the stream's credit.
            let written = match pin!(self.send.write_chunks(&mut self.pieces)).poll(cx) {
                Poll::Pending => return Ok(()),
                Poll::Ready(result) => result.map_err(|e| (self.error)(e.into()))?,
            };
            self.pieces.drain(..written.chunks);
            self.len -= written.bytes;
            *progress = true;
        }
    }

    fn poll_close(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.send.finish().map_err(|e| (self.error)(e.into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_connection_lost_to_the_idle_timeout_reads_as_timed_out() {
        let read = io::Error::from(ReadError::ConnectionLost(ConnectionError::TimedOut));
        assert_eq!(read.kind(), io::ErrorKind::NotConnected, "quinn's own kind");
        let read = timed_out(read);
        assert_eq!(read.kind(), io::ErrorKind::TimedOut);
        let cause = read.get_ref().and_then(|c| c.downcast_ref::<ReadError>());
        assert_eq!(
            cause,
            Some(&ReadError::ConnectionLost(ConnectionError::TimedOut)),
            "the cause is kept"
        );
        let write = timed_out(io::Error::from(WriteError::ConnectionLost(
            ConnectionError::TimedOut,
        )));
        assert_eq!(write.kind(), io::ErrorKind::TimedOut);
        let open = timed_out(io::Error::other(ConnectionError::TimedOut));
        assert_eq!(open.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn other_lost_connections_keep_their_kind() {
        for e in [
            io::Error::from(ReadError::ConnectionLost(ConnectionError::LocallyClosed)),
            io::Error::from(ReadError::ConnectionLost(ConnectionError::Reset)),
            io::Error::from(WriteError::ClosedStream),
            io::Error::other(ConnectionError::VersionMismatch),
            io::Error::from(io::ErrorKind::BrokenPipe),
        ] {
            let kind = e.kind();
            assert_eq!(timed_out(e).kind(), kind);
        }
    }

    #[test]
    fn default_options_are_the_transport_constants() {
        let options = QuicOptions::default();
        assert_eq!(options.max_calls_per_connection, MAX_CONCURRENT_CALLS);
        assert_eq!(options.idle_timeout, IDLE_TIMEOUT);
        assert_eq!(options.effective_keep_alive(), Some(KEEP_ALIVE));
    }

    #[test]
    fn keep_alive_stays_below_the_idle_timeout() {
        let at = |idle, keep_alive| {
            QuicOptions::default()
                .with_idle_timeout(secs(idle))
                .with_keep_alive(secs(keep_alive))
                .effective_keep_alive()
        };
        assert_eq!(at(30, 29), Some(secs(29)));
        assert_eq!(at(30, 30), Some(secs(10)));
        assert_eq!(at(3, 10), Some(secs(1)));
        // No idle timeout: nothing to stay below.
        assert_eq!(at(0, 10), Some(secs(10)));
        assert_eq!(at(30, 0), None);
        assert_eq!(at(0, 0), None);
    }

    #[test]
    fn options_reach_the_transport_config() {
        // quinn's TransportConfig has no getters; its Debug shows the fields.
        let options = QuicOptions::default()
            .with_max_calls_per_connection(7)
            .with_idle_timeout(Duration::from_millis(1500))
            .with_keep_alive(secs(5));
        let debug = format!("{:?}", options.transport_config());
        assert!(debug.contains("max_concurrent_bidi_streams: 7,"), "{debug}");
        assert!(debug.contains("max_idle_timeout: Some(1500)"), "{debug}");
        assert!(
            debug.contains("keep_alive_interval: Some(500ms)"),
            "{debug}"
        );

        let never = QuicOptions::default()
            .with_idle_timeout(Duration::ZERO)
            .with_keep_alive(Duration::ZERO);
        let debug = format!("{:?}", never.transport_config());
        assert!(debug.contains("max_idle_timeout: None"), "{debug}");
        assert!(debug.contains("keep_alive_interval: None"), "{debug}");
    }

    #[test]
    fn each_congestion_choice_builds_its_own_controller() {
        use quinn::congestion::{Bbr, Cubic, NewReno};
        use std::any::Any;
        let built = |c: Congestion| -> Box<dyn Any> {
            c.factory()
                .build(std::time::Instant::now(), 1200)
                .into_any()
        };
        assert_eq!(QuicOptions::default().congestion, Congestion::Cubic);
        assert!(built(Congestion::Cubic).is::<Cubic>());
        assert!(built(Congestion::Bbr).is::<Bbr>());
        assert!(built(Congestion::NewReno).is::<NewReno>());
        let bbr = QuicOptions::default().with_congestion(Congestion::Bbr);
        assert_eq!(bbr.congestion, Congestion::Bbr);
    }
}
