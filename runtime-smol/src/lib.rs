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
    Accepted, BoxRead, BoxWrite, Client, Connect, Service, Spawn, quic, serve_call,
    serve_connections,
};
use futures::future::BoxFuture;
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
pub fn duplex() -> ((BoxRead, BoxWrite), (BoxRead, BoxWrite)) {
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
    let connect = move || {
        let (near, (read, write)) = duplex();
        smol::spawn(serve_call(
            service.clone(),
            "local".into(),
            read,
            write,
            limits,
        ))
        .detach();
        futures::future::ready(Ok(near))
    };
    client(connect, limits)
}

/// smol's sockets are cloneable handles: one clone reads, one writes.
fn halves<S>(stream: S) -> (BoxRead, BoxWrite)
where
    S: futures::AsyncRead + futures::AsyncWrite + Clone + Send + 'static,
{
    (Box::pin(stream.clone()), Box::pin(stream))
}

/// Serves every connection of `listener` as one call, naming the peer by
/// its uid (`uid:1000`). Returns the error that ends accepting.
pub async fn serve_unix(
    listener: UnixListener,
    service: Arc<dyn Service>,
    limits: Limits,
) -> io::Error {
    let accept = || async {
        let (stream, _) = listener.accept().await?;
        let peer: Arc<str> = match rustix::net::sockopt::socket_peercred(&stream) {
            Ok(cred) => format!("uid:{}", cred.uid.as_raw()).into(),
            Err(_) => "uid:unknown".into(),
        };
        let (read, write) = halves(stream);
        Ok(Accepted { read, write, peer })
    };
    serve_connections(accept, service, Arc::new(SmolSpawn), limits).await
}

/// Opens a new Unix-socket connection per call.
pub fn unix_connect(path: PathBuf) -> impl Connect {
    move || {
        let path = path.clone();
        async move { Ok(halves(UnixStream::connect(path).await?)) }
    }
}

/// Serves every connection of `listener` as one call, naming the peer by
/// its address. Returns the error that ends accepting.
pub async fn serve_tcp(
    listener: TcpListener,
    service: Arc<dyn Service>,
    limits: Limits,
) -> io::Error {
    let accept = || async {
        let (stream, addr) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let (read, write) = halves(stream);
        Ok(Accepted {
            read,
            write,
            peer: addr.to_string().into(),
        })
    };
    serve_connections(accept, service, Arc::new(SmolSpawn), limits).await
}

/// Opens a new TCP connection per call.
pub fn tcp_connect(addr: SocketAddr) -> impl Connect {
    move || async move {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(halves(stream))
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
