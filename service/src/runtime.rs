//! [`Runtime`]: what a shell gives the service layer, one value per async
//! runtime (`dockwire_tokio::Tokio`, `dockwire_smol::Smol`), so that a
//! server or a client is written once and handed the runtime to run on.

use std::io;
use std::net::SocketAddr;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;

use dockwire_core::Limits;
use futures::FutureExt;
use futures::future::{BoxFuture, LocalBoxFuture};

use crate::{Client, Connect, Listen, Pipe, Service, Spawn, serve_listener};

/// An async runtime, as the service layer uses it: spawning, blocking on a
/// future, the in-memory duplex, Unix and TCP listeners and dialers, and
/// QUIC endpoints. Object-safe: code that must run on either runtime takes
/// a `&dyn Runtime` (or an `Arc<dyn Runtime>`).
///
/// The same calls on any runtime:
///
/// ```
/// use std::sync::Arc;
/// use dockwire_core::Limits;
/// use dockwire_service::{Client, Runtime, Service};
///
/// /// Serves `service` on a Unix socket at `path` and returns a client of it.
/// fn unix_pair(
///     runtime: &dyn Runtime,
///     service: Arc<dyn Service>,
///     path: std::path::PathBuf,
/// ) -> std::io::Result<Client> {
///     let listener = runtime.listen_unix(std::os::unix::net::UnixListener::bind(&path)?)?;
///     let serve = runtime.serve(listener, service, Limits::default());
///     runtime.spawn(Box::pin(async move {
///         let _stopped: std::io::Error = serve.await;
///     }));
///     Ok(runtime.client(runtime.dial_unix(path), Limits::default()))
/// }
/// ```
///
/// QUIC is served with [`crate::quic::serve_quic`] on an endpoint from
/// [`quic_endpoint`](Runtime::quic_endpoint), and called with
/// [`client`](Runtime::client) over a [`crate::quic::QuicConnect`].
pub trait Runtime: Spawn {
    /// This runtime as the spawner that clients and servers keep.
    fn spawner(&self) -> Arc<dyn Spawn>;

    /// Runs `task` to completion on this runtime, blocking the calling
    /// thread (which must not be one of this runtime's tasks).
    fn block_on(&self, task: LocalBoxFuture<'_, ()>);

    /// Both ends of an in-memory stream of this runtime.
    fn duplex(&self) -> Pipe;

    /// A client whose every call runs `service` in this process, over a
    /// fresh [`duplex`](Runtime::duplex) whose far end is served on a task
    /// of this runtime (see [`crate::in_process_client`]).
    fn duplex_client(&self, service: Arc<dyn Service>, limits: Limits) -> Client;

    /// A bound Unix-socket listener, taken onto this runtime: each
    /// connection is one call, its peer named by uid (`uid:1000`, see
    /// [`crate::uid_peer`]). Serve it with [`serve`](Runtime::serve).
    fn listen_unix(&self, listener: UnixListener) -> io::Result<Box<dyn Listen>>;

    /// A bound TCP listener, taken onto this runtime: each connection (no
    /// Nagle delay) is one call, its peer named by address. Serve it with
    /// [`serve`](Runtime::serve).
    fn listen_tcp(&self, listener: std::net::TcpListener) -> io::Result<Box<dyn Listen>>;

    /// Opens a new connection to the Unix socket at `path` per call.
    fn dial_unix(&self, path: PathBuf) -> Arc<dyn Connect>;

    /// Opens a new TCP connection (no Nagle delay) to `addr` per call.
    fn dial_tcp(&self, addr: SocketAddr) -> Arc<dyn Connect>;

    /// A QUIC endpoint on quinn's runtime of the same kind, bound to
    /// `addr`: a server when given a server config (serve it with
    /// [`crate::quic::serve_quic`]), a client only otherwise (dial with
    /// [`crate::quic::QuicConnect`]).
    #[cfg(feature = "quic")]
    fn quic_endpoint(
        &self,
        addr: SocketAddr,
        server: Option<quinn::ServerConfig>,
    ) -> io::Result<quinn::Endpoint>;

    /// A client over `connect`, its calls' tasks on this runtime.
    fn client(&self, connect: Arc<dyn Connect>, limits: Limits) -> Client {
        Client::new(connect, self.spawner(), limits)
    }

    /// Serves every connection of `listener` as one call on a task of this
    /// runtime, until accepting fails (see [`serve_listener`]).
    fn serve(
        &self,
        listener: Box<dyn Listen>,
        service: Arc<dyn Service>,
        limits: Limits,
    ) -> BoxFuture<'static, io::Error> {
        serve_listener(listener, service, self.spawner(), limits).boxed()
    }
}

impl Listen for Box<dyn Listen> {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<crate::Accepted>> {
        (**self).accept()
    }
}
