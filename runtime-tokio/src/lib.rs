//! The tokio shell of dockwire: binds the runtime-neutral service layer to
//! tokio. It spawns tasks, adapts tokio's IO traits, and offers every
//! transport: an in-memory duplex, Unix and TCP sockets (one call per
//! connection), and QUIC (one call per stream, built by
//! [`quic_endpoint`] on quinn's tokio runtime).
//!
//! Serving a small service and calling it, in memory:
//!
//! ```
//! use std::sync::Arc;
//! use dockwire_core::Limits;
//! use dockwire_service::Router;
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), dockwire_service::ClientError> {
//! let service = Router::new().query("math/double", |_ctx, input| async move {
//!     Ok(json!(input["n"].as_i64().unwrap_or(0) * 2))
//! });
//! let client = dockwire_tokio::duplex_client(Arc::new(service), Limits::default());
//! assert_eq!(client.call("math/double", json!({"n": 21})).await?, json!(42));
//! # Ok(())
//! # }
//! ```
//!
//! Over a Unix socket the server is [`serve`]`(`[`UnixServer`]`(listener), …)`
//! and the client [`client`]`(`[`unix_connect`]`(path), limits)`; over QUIC the server is
//! [`dockwire_service::quic::serve_quic`] on an endpoint made by
//! [`quic_endpoint`], the client [`client`] over a
//! [`dockwire_service::quic::QuicConnect`].

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use dockwire_core::Limits;
use dockwire_service::{
    Accepted, BoxRead, BoxWrite, Client, Connect, Listen, Pipe, Service, Spawn, in_process_client,
    quic, serve_listener, uid_peer,
};
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::runtime::Handle;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// Spawns onto a tokio runtime.
#[derive(Clone, Debug)]
pub struct TokioSpawn(pub Handle);

impl TokioSpawn {
    /// Spawns onto the runtime this is called from.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn current() -> Self {
        TokioSpawn(Handle::current())
    }
}

impl Spawn for TokioSpawn {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.0.spawn(task);
    }
}

/// A client over `connect`, with its calls' tasks on the current runtime.
///
/// # Panics
/// Outside a tokio runtime.
pub fn client(connect: impl Connect, limits: Limits) -> Client {
    Client::new(Arc::new(connect), Arc::new(TokioSpawn::current()), limits)
}

fn boxed<R, W>(read: R, write: W) -> (BoxRead, BoxWrite)
where
    R: AsyncRead + Send + 'static,
    W: AsyncWrite + Send + 'static,
{
    (Box::pin(read.compat()), Box::pin(write.compat_write()))
}

/// Bytes an in-memory duplex holds in each direction before the writer waits.
const DUPLEX_BUFFER: usize = 256 * 1024;

/// Two ends of an in-memory stream (tokio's duplex), as the service layer
/// takes them.
pub fn duplex() -> Pipe {
    let (near, far) = tokio::io::duplex(DUPLEX_BUFFER);
    let (near_read, near_write) = tokio::io::split(near);
    let (far_read, far_write) = tokio::io::split(far);
    (boxed(near_read, near_write), boxed(far_read, far_write))
}

/// A client whose every call runs `service` in this process, over a fresh
/// in-memory duplex served by its own task.
///
/// # Panics
/// Outside a tokio runtime.
pub fn duplex_client(service: Arc<dyn Service>, limits: Limits) -> Client {
    in_process_client(duplex, service, Arc::new(TokioSpawn::current()), limits)
}

/// A Unix-socket listener; each connection is one call, its peer named by
/// uid (`uid:1000`). Serve it with [`serve`].
pub struct UnixServer(pub UnixListener);

impl Listen for UnixServer {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Accepted>> {
        Box::pin(async move {
            let (stream, _) = self.0.accept().await?;
            let peer = uid_peer(stream.peer_cred().map(|cred| cred.uid()));
            let (read, write) = stream.into_split();
            let (read, write) = boxed(read, write);
            Ok(Accepted { read, write, peer })
        })
    }
}

/// A TCP listener; each connection is one call, its peer named by address.
/// Serve it with [`serve`].
pub struct TcpServer(pub TcpListener);

impl Listen for TcpServer {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Accepted>> {
        Box::pin(async move {
            let (stream, addr) = self.0.accept().await?;
            stream.set_nodelay(true)?;
            let (read, write) = boxed_split(stream.into_split());
            Ok(Accepted {
                read,
                write,
                peer: addr.to_string().into(),
            })
        })
    }
}

fn boxed_split<R, W>((read, write): (R, W)) -> (BoxRead, BoxWrite)
where
    R: AsyncRead + Send + 'static,
    W: AsyncWrite + Send + 'static,
{
    boxed(read, write)
}

/// Serves `listener` on the current runtime until accepting fails.
///
/// # Panics
/// Outside a tokio runtime.
pub async fn serve(listener: impl Listen, service: Arc<dyn Service>, limits: Limits) -> io::Error {
    serve_listener(listener, service, Arc::new(TokioSpawn::current()), limits).await
}

/// Opens a new Unix-socket connection per call.
pub fn unix_connect(path: PathBuf) -> impl Connect {
    move || {
        let path = path.clone();
        async move { Ok(boxed_split(UnixStream::connect(path).await?.into_split())) }
    }
}

/// Opens a new TCP connection per call.
pub fn tcp_connect(addr: SocketAddr) -> impl Connect {
    move || async move {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(boxed_split(stream.into_split()))
    }
}

/// A QUIC endpoint on quinn's tokio runtime, bound to `addr`: a server when
/// given a server config. Serve it with
/// [`dockwire_service::quic::serve_quic`]; call over it with
/// [`dockwire_service::quic::QuicConnect`].
///
/// # Panics
/// Outside a tokio runtime.
pub fn quic_endpoint(
    addr: SocketAddr,
    server: Option<quinn::ServerConfig>,
) -> io::Result<quinn::Endpoint> {
    quic::endpoint(addr, server, Arc::new(quinn::TokioRuntime))
}
