//! The smol shell of dockwire: binds the runtime-neutral service layer to
//! smol. smol's sockets already speak the futures-io traits, so this is
//! spawning, listeners and connectors: an in-memory duplex (two `piper`
//! pipes), Unix and TCP sockets (one call per connection), and QUIC (one
//! call per stream, on an endpoint made by [`quic_endpoint`] with quinn's
//! smol runtime).
//!
//! Serving a small service and calling it, in memory:
//!
//! ```
//! use std::sync::Arc;
//! use dockwire_core::Limits;
//! use dockwire_service::Router;
//! use serde_json::json;
//!
//! smol::block_on(async {
//!     let service = Router::new().query("math/double", |_ctx, input| async move {
//!         Ok(json!(input["n"].as_i64().unwrap_or(0) * 2))
//!     });
//!     let client = dockwire_smol::duplex_client(Arc::new(service), Limits::default());
//!     assert_eq!(client.call("math/double", json!({"n": 21})).await?, json!(42));
//!     Ok::<_, dockwire_service::ClientError>(())
//! })?;
//! # Ok::<_, dockwire_service::ClientError>(())
//! ```

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
use futures::{FutureExt, TryFutureExt};
use smol::net::unix::{UnixListener, UnixStream};
use smol::net::{TcpListener, TcpStream};

/// Spawns onto smol's global executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct SmolSpawn;

impl Spawn for SmolSpawn {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        smol::spawn(task).detach();
    }
}

/// A client over `connect`, with its calls' tasks on smol.
pub fn client(connect: impl Connect, limits: Limits) -> Client {
    Client::new(Arc::new(connect), Arc::new(SmolSpawn), limits)
}

/// Bytes each in-memory pipe holds before its writer waits.
const PIPE_BUFFER: usize = 256 * 1024;

/// Two ends of an in-memory stream (a pair of `piper` pipes), as the
/// service layer takes them.
pub fn duplex() -> Pipe {
    let (a_read, b_write) = piper::pipe(PIPE_BUFFER);
    let (b_read, a_write) = piper::pipe(PIPE_BUFFER);
    (
        (Box::pin(a_read), Box::pin(a_write)),
        (Box::pin(b_read), Box::pin(b_write)),
    )
}

/// A client whose every call runs `service` in this process, over a fresh
/// pair of in-memory pipes served by its own task.
pub fn duplex_client(service: Arc<dyn Service>, limits: Limits) -> Client {
    in_process_client(duplex, service, Arc::new(SmolSpawn), limits)
}

/// smol's sockets are cloneable handles: one clone reads, one writes.
fn halves<S>(stream: S) -> (BoxRead, BoxWrite)
where
    S: futures::AsyncRead + futures::AsyncWrite + Clone + Send + 'static,
{
    (Box::pin(stream.clone()), Box::pin(stream))
}

/// Listeners of smol's sockets: each connection is one call. Unix peers are
/// named by uid (`uid:1000`, through `SO_PEERCRED`), TCP peers by address.
/// Serve one with [`serve`].
pub enum Server {
    /// A Unix-socket listener.
    Unix(UnixListener),
    /// A TCP listener.
    Tcp(TcpListener),
}

impl Listen for Server {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Accepted>> {
        Box::pin(async move {
            let ((read, write), peer) = match self {
                Server::Unix(l) => {
                    let stream = l.accept().await?.0;
                    let uid =
                        rustix::net::sockopt::socket_peercred(&stream).map(|c| c.uid.as_raw());
                    (halves(stream), uid_peer(uid.map_err(io::Error::from)))
                }
                Server::Tcp(l) => {
                    let (stream, addr) = l.accept().await?;
                    stream.set_nodelay(true)?;
                    (halves(stream), addr.to_string().into())
                }
            };
            Ok(Accepted { read, write, peer })
        })
    }
}

/// Serves `listener` on smol until accepting fails.
pub async fn serve(listener: impl Listen, service: Arc<dyn Service>, limits: Limits) -> io::Error {
    serve_listener(listener, service, Arc::new(SmolSpawn), limits).await
}

/// Opens a new connection per call: to a Unix-socket path, or a TCP
/// address.
pub enum Dial {
    /// A Unix socket.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(SocketAddr),
}

impl Connect for Dial {
    fn open(&self) -> BoxFuture<'static, io::Result<(BoxRead, BoxWrite)>> {
        match self {
            Dial::Unix(path) => UnixStream::connect(path.clone()).map_ok(halves).boxed(),
            Dial::Tcp(addr) => TcpStream::connect(*addr)
                .map(|s| {
                    let s = s?;
                    s.set_nodelay(true)?;
                    Ok(halves(s))
                })
                .boxed(),
        }
    }
}

/// A QUIC endpoint on quinn's smol runtime, bound to `addr`: a server when
/// given a server config. Serve it with
/// [`dockwire_service::quic::serve_quic`]; call over it with
/// [`dockwire_service::quic::QuicConnect`].
pub fn quic_endpoint(
    addr: SocketAddr,
    server: Option<quinn::ServerConfig>,
) -> io::Result<quinn::Endpoint> {
    quic::endpoint(addr, server, Arc::new(quinn::SmolRuntime))
}
