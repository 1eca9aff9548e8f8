//! The smol shell of dockwire: [`Smol`], the service layer's [`Runtime`]
//! on smol. smol's sockets already speak the futures-io traits, so this is
//! spawning (on smol's global executor), listeners and dialers: an
//! in-memory duplex (two `piper` pipes), Unix and TCP sockets (one call per
//! connection), and QUIC (one call per stream, on quinn's smol runtime).
//!
//! Serving a small service and calling it, in memory:
//!
//! ```
//! use std::sync::Arc;
//! use dockwire_core::Limits;
//! use dockwire_service::{Router, Runtime};
//! use dockwire_smol::Smol;
//! use serde_json::json;
//!
//! smol::block_on(async {
//!     let service = Router::new().query("math/double", |_ctx, input| async move {
//!         Ok(json!(input["n"].as_i64().unwrap_or(0) * 2))
//!     });
//!     let client = Smol.duplex_client(Arc::new(service), Limits::default());
//!     assert_eq!(client.call("math/double", json!({"n": 21})).await?, json!(42));
//!     Ok::<_, dockwire_service::ClientError>(())
//! })?;
//! # Ok::<_, dockwire_service::ClientError>(())
//! ```
//!
//! Every other transport is the same [`Runtime`] call as on tokio (see
//! `dockwire-tokio`).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use dockwire_core::Limits;
use dockwire_service::{
    Accepted, BoxRead, BoxWrite, Client, Connect, Listen, Pipe, Runtime, Service, Spawn,
    in_process_client, quic, uid_peer,
};
use futures::future::{BoxFuture, LocalBoxFuture};
use futures::{FutureExt, TryFutureExt};
use smol::net::unix::{UnixListener, UnixStream};
use smol::net::{TcpListener, TcpStream};

/// smol: dockwire's [`Runtime`] on smol's global executor and reactor,
/// which run on threads of their own, so this works from any thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct Smol;

impl Spawn for Smol {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        smol::spawn(task).detach();
    }
}

impl Runtime for Smol {
    fn spawner(&self) -> Arc<dyn Spawn> {
        Arc::new(Smol)
    }

    fn block_on(&self, task: LocalBoxFuture<'_, ()>) {
        smol::block_on(task);
    }

    fn duplex(&self) -> Pipe {
        duplex()
    }

    fn duplex_client(&self, service: Arc<dyn Service>, limits: Limits) -> Client {
        in_process_client(duplex, service, self.spawner(), limits)
    }

    fn listen_unix(
        &self,
        listener: std::os::unix::net::UnixListener,
    ) -> io::Result<Box<dyn Listen>> {
        Ok(Box::new(UnixServer(UnixListener::try_from(listener)?)))
    }

    fn listen_tcp(&self, listener: std::net::TcpListener) -> io::Result<Box<dyn Listen>> {
        Ok(Box::new(TcpServer(TcpListener::try_from(listener)?)))
    }

    fn dial_unix(&self, path: PathBuf) -> Arc<dyn Connect> {
        Arc::new(move || UnixStream::connect(path.clone()).map_ok(halves))
    }

    fn dial_tcp(&self, addr: SocketAddr) -> Arc<dyn Connect> {
        Arc::new(move || {
            TcpStream::connect(addr).map(|stream| {
                let stream = stream?;
                stream.set_nodelay(true)?;
                Ok(halves(stream))
            })
        })
    }

    fn quic_endpoint(
        &self,
        addr: SocketAddr,
        server: Option<quic::quinn::ServerConfig>,
    ) -> io::Result<quic::quinn::Endpoint> {
        quic::endpoint(addr, server, Arc::new(quinn::SmolRuntime))
    }
}

/// Bytes each in-memory pipe holds before its writer waits.
const PIPE_BUFFER: usize = 256 * 1024;

/// Two ends of an in-memory stream (a pair of `piper` pipes), as the
/// service layer takes them.
fn duplex() -> Pipe {
    let (a_read, b_write) = piper::pipe(PIPE_BUFFER);
    let (b_read, a_write) = piper::pipe(PIPE_BUFFER);
    (
        (Box::pin(a_read), Box::pin(a_write)),
        (Box::pin(b_read), Box::pin(b_write)),
    )
}

/// smol's sockets are cloneable handles: one clone reads, one writes.
fn halves<S>(stream: S) -> (BoxRead, BoxWrite)
where
    S: futures::AsyncRead + futures::AsyncWrite + Clone + Send + 'static,
{
    (Box::pin(stream.clone()), Box::pin(stream))
}

/// A Unix-socket listener; each connection is one call, its peer named by
/// uid (`uid:1000`, through `SO_PEERCRED`).
struct UnixServer(UnixListener);

impl Listen for UnixServer {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Accepted>> {
        Box::pin(async move {
            let stream = self.0.accept().await?.0;
            let uid = rustix::net::sockopt::socket_peercred(&stream).map(|c| c.uid.as_raw());
            let (read, write) = halves(stream);
            let peer = uid_peer(uid.map_err(io::Error::from));
            Ok(Accepted { read, write, peer })
        })
    }
}

/// A TCP listener; each connection is one call, its peer named by address.
struct TcpServer(TcpListener);

impl Listen for TcpServer {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Accepted>> {
        Box::pin(async move {
            let (stream, addr) = self.0.accept().await?;
            stream.set_nodelay(true)?;
            let (read, write) = halves(stream);
            Ok(Accepted {
                read,
                write,
                peer: addr.to_string().into(),
            })
        })
    }
}
