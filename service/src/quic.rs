//! QUIC transport, written once for every runtime: one call per
//! bidirectional stream, many calls per connection.
//!
//! quinn's connections and streams work on any executor once their
//! endpoint exists; only the endpoint needs a runtime (and its UDP socket),
//! so the shells build endpoints (`Endpoint::new` with quinn's
//! `TokioRuntime` or `SmolRuntime`) and everything else is here.

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;

use dockwire_core::Limits;
use futures::future::BoxFuture;
use futures::{Future, FutureExt};
use quinn::{Connection, Endpoint, SendStream, TransportConfig, VarInt};

/// quinn, as this module uses it (endpoints, connections, configs).
pub use quinn;
/// The certificate and key types [`server_config`] and [`client_config`] take.
pub use quinn::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::pump::Transmit;
use crate::server::Serve;
use crate::{BoxRead, BoxWrite, Connect, Service, Spawn};

/// Concurrent calls (bidirectional streams) a peer may have open on one
/// connection.
pub const MAX_CONCURRENT_CALLS: u32 = 1024;

/// A server config presenting `cert_chain` and `key`, allowing
/// [`MAX_CONCURRENT_CALLS`] calls per connection.
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<quinn::ServerConfig, quinn::rustls::Error> {
    let mut config = quinn::ServerConfig::with_single_cert(cert_chain, key)?;
    config.transport_config(Arc::new(transport()));
    Ok(config)
}

/// A client config trusting exactly the given server certificates.
pub fn client_config(
    trusted: &[CertificateDer<'static>],
) -> Result<quinn::ClientConfig, Box<dyn std::error::Error + Send + Sync>> {
    let mut roots = quinn::rustls::RootCertStore::empty();
    for cert in trusted {
        roots.add(cert.clone())?;
    }
    let mut config = quinn::ClientConfig::with_root_certificates(Arc::new(roots))?;
    config.transport_config(Arc::new(transport()));
    Ok(config)
}

/// How often each side sends a keep-alive on an otherwise silent
/// connection: well inside quinn's default 30 s idle timeout, so that a
/// call that is quiet for long (a `sleep` exec, a followed log of an idle
/// container) keeps its connection, while a peer that is really gone is
/// still noticed within the idle timeout.
pub const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(10);

fn transport() -> TransportConfig {
    let mut t = TransportConfig::default();
    t.max_concurrent_bidi_streams(VarInt::from_u32(MAX_CONCURRENT_CALLS));
    t.keep_alive_interval(Some(KEEP_ALIVE));
    t
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
    Endpoint::new(quinn::EndpointConfig::default(), server, socket, runtime)
}

/// Accepts connections on `endpoint` until it is closed, and serves every
/// bidirectional stream of each as one call. `peer` names a connection's
/// peer (a certificate's name, once identities exist).
pub async fn serve_quic(
    endpoint: Endpoint,
    service: Arc<dyn Service>,
    spawn: Arc<dyn Spawn>,
    limits: Limits,
    peer: PeerName,
) {
    while let Some(incoming) = endpoint.accept().await {
        let service = service.clone();
        let inner_spawn = spawn.clone();
        let peer = peer.clone();
        spawn.spawn(
            async move {
                let Ok(connection) = incoming.await else {
                    return;
                };
                let name = peer(&connection);
                // Ends when the connection does; its calls see their
                // streams fail and cancel.
                while let Ok((send, recv)) = connection.accept_bi().await {
                    let out = QuicSend::new(send);
                    let call = Serve::new(service.clone(), name.clone(), recv, out, limits);
                    inner_spawn.spawn(call.map(drop).boxed());
                }
            }
            .boxed(),
        );
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

impl Connect for QuicConnect {
    fn open(&self) -> BoxFuture<'static, io::Result<(BoxRead, BoxWrite)>> {
        let connection = self.connection.clone();
        async move {
            let (send, recv) = connection.open_bi().await.map_err(io::Error::other)?;
            Ok((Box::pin(recv) as BoxRead, Box::pin(send) as BoxWrite))
        }
        .boxed()
    }
}

/// Pieces a server driver takes from its machine at most per write.
const PIECES: usize = 16;

/// A call stream's send side for the server driver: the machine's pieces
/// go to quinn as the `Bytes` they are (`write_chunks`), where its
/// `AsyncWrite` would copy every payload into its send buffer.
struct QuicSend {
    send: SendStream,
    /// Taken from the machine, not yet accepted by quinn; fully written
    /// ones are empty until removed.
    pieces: Vec<Bytes>,
    len: usize,
}

impl QuicSend {
    fn new(send: SendStream) -> Self {
        QuicSend {
            send,
            pieces: Vec::with_capacity(PIECES),
            len: 0,
        }
    }
}

impl Transmit for QuicSend {
    fn len(&self) -> usize {
        self.len
    }

    fn poll_transmit(
        &mut self,
        mut pull: impl FnMut() -> Option<Bytes>,
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
                Poll::Ready(result) => result?,
            };
            self.pieces.drain(..written.chunks);
            self.len -= written.bytes;
            *progress = true;
        }
    }

    fn poll_close(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.send.finish().map_err(io::Error::from))
    }
}
