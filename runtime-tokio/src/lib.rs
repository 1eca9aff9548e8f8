//! The tokio shell of dockwire: [`Tokio`], the service layer's
//! [`Runtime`] on a tokio runtime. It spawns tasks, adapts tokio's IO
//! traits, and offers every transport: an in-memory duplex (tokio's),
//! Unix and TCP sockets (one call per connection), and QUIC (one call per
//! stream, on quinn's tokio runtime).
//!
//! Serving a small service and calling it, in memory:
//!
//! ```
//! use std::sync::Arc;
//! use dockwire_core::Limits;
//! use dockwire_service::{Router, Runtime};
//! use dockwire_tokio::Tokio;
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), dockwire_service::ClientError> {
//! let service = Router::new().query("math/double", |_ctx, input| async move {
//!     Ok(json!(input["n"].as_i64().unwrap_or(0) * 2))
//! });
//! let client = Tokio::current().duplex_client(Arc::new(service), Limits::default());
//! assert_eq!(client.call("math/double", json!({"n": 21})).await?, json!(42));
//! # Ok(())
//! # }
//! ```
//!
//! Every other transport is the same [`Runtime`] call on any runtime: over
//! a Unix socket the server is `runtime.serve(runtime.listen_unix(listener)?,
//! …)` and the client `runtime.client(runtime.dial_unix(path), limits)`;
//! over QUIC the server is [`dockwire_service::quic::serve_quic`] on
//! `runtime.quic_endpoint(addr, Some(config))?`, the client
//! `runtime.client` over a [`dockwire_service::quic::QuicConnect`].

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
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::runtime::Handle;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// A tokio runtime, by its handle: dockwire's [`Runtime`] on tokio. Its
/// sockets and endpoints are registered with this runtime whichever thread
/// makes them. [`block_on`](Runtime::block_on) needs a multi-thread
/// runtime (a current-thread one drives its IO only in its own
/// `block_on`).
#[derive(Clone, Debug)]
pub struct Tokio(pub Handle);

impl Tokio {
    /// The runtime this is called from.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn current() -> Self {
        Tokio(Handle::current())
    }
}

impl Spawn for Tokio {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.0.spawn(task);
    }
}

impl Runtime for Tokio {
    fn spawner(&self) -> Arc<dyn Spawn> {
        Arc::new(self.clone())
    }

    fn block_on(&self, task: LocalBoxFuture<'_, ()>) {
        self.0.block_on(task);
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
        listener.set_nonblocking(true)?;
        let _runtime = self.0.enter();
        Ok(Box::new(UnixServer(UnixListener::from_std(listener)?)))
    }

    fn listen_tcp(&self, listener: std::net::TcpListener) -> io::Result<Box<dyn Listen>> {
        listener.set_nonblocking(true)?;
        let _runtime = self.0.enter();
        Ok(Box::new(TcpServer(TcpListener::from_std(listener)?)))
    }

    fn dial_unix(&self, path: PathBuf) -> Arc<dyn Connect> {
        Arc::new(move || {
            let path = path.clone();
            async move { Ok(boxed(UnixStream::connect(path).await?.into_split())) }
        })
    }

    fn dial_tcp(&self, addr: SocketAddr) -> Arc<dyn Connect> {
        Arc::new(move || async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(boxed(stream.into_split()))
        })
    }

    fn quic_endpoint(
        &self,
        addr: SocketAddr,
        server: Option<quic::quinn::ServerConfig>,
    ) -> io::Result<quic::quinn::Endpoint> {
        let _runtime = self.0.enter();
        quic::endpoint(addr, server, Arc::new(quinn::TokioRuntime))
    }
}

/// Bytes an in-memory duplex holds in each direction before the writer waits.
const DUPLEX_BUFFER: usize = 256 * 1024;

/// Two ends of an in-memory stream (tokio's duplex), as the service layer
/// takes them.
fn duplex() -> Pipe {
    let (near, far) = tokio::io::duplex(DUPLEX_BUFFER);
    (boxed(tokio::io::split(near)), boxed(tokio::io::split(far)))
}

/// A stream's two tokio halves as the futures-io halves the service layer
/// takes.
fn boxed<R, W>((read, write): (R, W)) -> (BoxRead, BoxWrite)
where
    R: AsyncRead + Send + 'static,
    W: AsyncWrite + Send + 'static,
{
    (Box::pin(read.compat()), Box::pin(write.compat_write()))
}

/// A Unix-socket listener; each connection is one call, its peer named by
/// uid (`uid:1000`).
struct UnixServer(UnixListener);

impl Listen for UnixServer {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Accepted>> {
        Box::pin(async move {
            let (stream, _) = self.0.accept().await?;
            let peer = uid_peer(stream.peer_cred().map(|cred| cred.uid()));
            let (read, write) = boxed(stream.into_split());
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
            let (read, write) = boxed(stream.into_split());
            Ok(Accepted {
                read,
                write,
                peer: addr.to_string().into(),
            })
        })
    }
}
