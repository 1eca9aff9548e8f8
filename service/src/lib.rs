//! The runtime-neutral async layer of dockwire.
//!
//! `dockwire-core` is the protocol with no IO; this crate runs it over
//! `futures::io::{AsyncRead, AsyncWrite}` streams without naming an async
//! runtime. It has four pieces:
//!
//! - the [`Service`] contract: a handler answers a request with a stream of
//!   outputs ([`Reply::Json`]) or a raw session ([`Reply::Raw`], with a
//!   [`RawIo`] of stdin/controls in, as the call machine's own
//!   `ServerEvent`s, and stdout/stderr out as `Bytes`, resolving to the
//!   exit code); [`Router`] maps operation names to handlers;
//! - [`serve_call`], the per-call server driver: give it a stream's two
//!   halves and it reads the request, runs the handler and writes the
//!   answer, with bounded buffers in both directions;
//! - [`Client`]: [`call`](Client::call), [`subscribe`](Client::subscribe)
//!   and [`open_raw`](Client::open_raw) over any transport that can open a
//!   stream ([`Connect`]), with per-call tasks started through [`Spawn`].
//!   A raw session's [`Stdin`] is a sink of `Bytes` and its stdout and
//!   stderr ([`OutputReader`]) streams of `Bytes`, handed through without
//!   a copy (both also `AsyncWrite`/`AsyncRead`, which copy);
//!   [`Stdin::feed_from`] gives the call's driver a stream to read stdin
//!   from itself;
//! - [`Runtime`], the one shape of a runtime shell: spawning (it is a
//!   [`Spawn`]), the in-memory duplex, Unix and TCP listeners and dialers
//!   (the [`Listen`]s and [`Connect`]s), and QUIC endpoints.
//!
//! The shells (`dockwire-tokio`, `dockwire-smol`) are one [`Runtime`] value
//! each (`Tokio`, `Smol`); code that runs on either takes a
//! `&dyn Runtime`. The protocol logic lives in the core and the driving
//! logic here.
//!
//! # Flow control
//!
//! Every queue is bounded. A server driver stops reading a raw call's
//! stream while its handler has not taken the input it has, and stops
//! taking outputs while 256 KiB wait to be written. A client driver stops
//! reading while the caller has not taken what was read, and stops taking
//! stdin (from [`Stdin`] or its source) while 256 KiB wait to be written.
//! The transport's own flow control then holds the other side back: memory
//! stays flat and no byte is dropped.
//!
//! # Cancellation
//!
//! A client that aborts, drops every handle of a call, or loses its stream
//! makes the server driver drop the handler's future or stream, so cleanup
//! belongs in the handler's drop guards. One caveat: input is in-band, so an
//! abort sent after stdin that a raw handler never reads (while still
//! holding its input) waits behind it; a handler that wants no input drops
//! its [`RawInput`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use dockwire_core::Limits;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::io::{AsyncRead, AsyncWrite};

mod client;
mod layers;
#[cfg(feature = "quic")]
pub mod quic;
mod runtime;
mod server;
mod service;
mod transmit;

pub use client::{
    Client, ClientError, Control, Exit, OutputReader, RawSession, Stdin, Subscription,
};
pub use layers::{CallLog, Ended, PeerLimit, TOO_MANY_CALLS, watch};
pub use runtime::Runtime;
pub use server::{Outcome, ServeCall, serve_call};
pub use service::{
    CallContext, CallEnded, CallLink, Outputs, Peer, RawHandler, RawInput, RawIo, RawOutput, Reply,
    Router, Service,
};
pub use transmit::SendHalf;

/// The read half of a stream, boxed.
pub type BoxRead = Pin<Box<dyn AsyncRead + Send>>;
/// The write half of a stream, boxed.
pub type BoxWrite = Pin<Box<dyn AsyncWrite + Send>>;

/// Opens a new bidirectional stream to the server, one per call: a QUIC
/// stream on an open connection, or a new Unix or TCP connection.
///
/// Any `Fn() -> impl Future<Output = io::Result<(BoxRead, BoxWrite)>>` is a
/// `Connect`.
pub trait Connect: Send + Sync + 'static {
    /// Opens one stream.
    fn open(&self) -> BoxFuture<'static, io::Result<(BoxRead, BoxWrite)>>;

    /// Opens one stream for a [`Client`]'s driver. The default writes
    /// [`open`](Self::open)'s write half a piece at a time; a transport
    /// whose send side takes `Bytes` as they are (QUIC's `QuicConnect`)
    /// gives its own, so that stdin reaches it without a copy. A `Connect`
    /// that wraps another should pass this on too.
    fn open_call(&self) -> BoxFuture<'static, io::Result<(BoxRead, SendHalf)>> {
        self.open()
            .map(|opened| opened.map(|(read, write)| (read, SendHalf::from(write))))
            .boxed()
    }
}

impl<F, Fut> Connect for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<(BoxRead, BoxWrite)>> + Send + 'static,
{
    fn open(&self) -> BoxFuture<'static, io::Result<(BoxRead, BoxWrite)>> {
        self().boxed()
    }
}

/// One accepted connection of a one-call-per-connection transport.
pub struct Accepted {
    /// Its read half.
    pub read: BoxRead,
    /// Its write half.
    pub write: BoxWrite,
    /// Who is on the other side.
    pub peer: Arc<str>,
}

/// Where one-call-per-connection transports (Unix, TCP) get connections.
pub trait Listen: Send + 'static {
    /// Waits for the next connection.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Accepted>>;
}

/// Serves every connection of `listener` as one call on a task of its
/// own; returns the error that ends accepting.
pub async fn serve_listener(
    mut listener: impl Listen,
    service: Arc<dyn Service>,
    spawn: Arc<dyn Spawn>,
    limits: Limits,
) -> io::Error {
    loop {
        let conn = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => return e,
        };
        let call = serve_call(service.clone(), conn.peer, conn.read, conn.write, limits);
        spawn.spawn(call.map(drop).boxed());
    }
}

/// Both ends of an in-memory stream.
pub type Pipe = ((BoxRead, BoxWrite), (BoxRead, BoxWrite));

/// A client whose every call runs `service` in this process: each call
/// gets a fresh `pipe()`, whose far end is served on a task of `spawn`.
pub fn in_process_client(
    pipe: fn() -> Pipe,
    service: Arc<dyn Service>,
    spawn: Arc<dyn Spawn>,
    limits: Limits,
) -> Client {
    let server = spawn.clone();
    let connect = move || {
        let (near, (read, write)) = pipe();
        let call = serve_call(service.clone(), "local".into(), read, write, limits);
        server.spawn(call.map(drop).boxed());
        futures::future::ready(Ok(near))
    };
    Client::new(Arc::new(connect), spawn, limits)
}

/// A Unix peer's name: `uid:N`, or `uid:unknown` when the kernel would not say.
pub fn uid_peer(uid: io::Result<u32>) -> Arc<str> {
    match uid {
        Ok(uid) => format!("uid:{uid}").into(),
        Err(_) => "uid:unknown".into(),
    }
}

/// Starts a task on the shell's runtime.
pub trait Spawn: Send + Sync + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: BoxFuture<'static, ()>);
}
