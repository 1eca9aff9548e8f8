//! The contract an operation handler implements, and the router.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use dockwire_core::{CallError, Carriage, ErrorCode, Request, ServerEvent};
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, SinkExt, Stream, StreamExt};
use serde_json::Value;

/// Who is calling, as the transport identified them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallContext {
    /// The peer's display name: a certificate's name, a Unix uid, or what
    /// the server's configuration says for transports without one. For
    /// logs and messages only: it may change while a connection is open.
    pub peer: Arc<str>,
    /// The key the connection authenticated with, which decisions (roles,
    /// ownership) rest on: `sha256:<fingerprint>` for a QUIC client
    /// certificate, `uid:N` for a Unix peer, the peer's name for
    /// transports without keys (in-memory, TCP).
    pub key: Arc<str>,
    /// The peer's address, where the transport has one (QUIC).
    pub remote: Option<SocketAddr>,
    /// The call's id, as the client chose it.
    pub call_id: String,
    /// Whether the call's connection was lost (see [`CallLink`]).
    pub link: CallLink,
}

impl CallContext {
    /// The context of call `call_id` from `peer`.
    pub fn new(peer: &Peer, call_id: impl Into<String>) -> Self {
        CallContext {
            peer: peer.name.clone(),
            key: peer.key.clone(),
            remote: peer.remote,
            call_id: call_id.into(),
            link: CallLink::default(),
        }
    }
}

/// How a call's connection stands, as its server driver learnt it: set
/// to lost before the handler is dropped when the connection died (its
/// idle timeout passed: the link went silent, or the client was killed
/// without closing), and never set when the call was cancelled (the
/// client aborted it, reset its stream, or closed its connection). A
/// handler's cleanup reads it to tell a dropped link, which the client
/// may come back from, from a client that meant to end the call.
#[derive(Clone, Debug, Default)]
pub struct CallLink(Arc<AtomicBool>);

impl CallLink {
    /// Whether the connection was lost (rather than the call cancelled).
    pub fn is_lost(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Marks the connection lost: only its server driver does, before it
    /// drops the handler.
    pub(crate) fn mark_lost(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// One call's link equals only itself.
impl PartialEq for CallLink {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CallLink {}

/// A connection's peer, as its transport authenticated it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its display name (see [`CallContext::peer`]).
    pub name: Arc<str>,
    /// Its key (see [`CallContext::key`]).
    pub key: Arc<str>,
    /// Its address, if the transport has one.
    pub remote: Option<SocketAddr>,
}

impl Peer {
    /// A peer whose name is its key, with no address: what transports
    /// without keys (in-memory, TCP) and Unix sockets (`uid:N`) know.
    pub fn named(name: Arc<str>) -> Self {
        Peer {
            key: name.clone(),
            name,
            remote: None,
        }
    }
}

/// The outputs of a json-carriage call: each item is one `call.responded`;
/// an error ends the call with `call.error`; the end of the stream is
/// `call.completed`.
pub type Outputs = BoxStream<'static, Result<Value, CallError>>;

/// A raw-carriage handler, started with the session's input and output.
/// It resolves to the exit code (sent after every output) or an error.
pub type RawHandler = Box<dyn FnOnce(RawIo) -> BoxFuture<'static, Result<i32, CallError>> + Send>;

/// How a service answers a request.
pub enum Reply {
    /// Json carriage: a stream of outputs.
    Json(Outputs),
    /// Raw carriage: a session handler.
    Raw(RawHandler),
    /// Refused at once (unknown operation, wrong carriage, bad input).
    Refuse(CallError),
}

/// What serves calls. A server holds one and asks it to answer each
/// request; the driver drops the reply's future or stream when the client
/// cancels, so cleanup belongs in drop guards.
pub trait Service: Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, ctx: CallContext, request: Request) -> Reply;
}

impl<S: Service + ?Sized> Service for Arc<S> {
    fn call(&self, ctx: CallContext, request: Request) -> Reply {
        (**self).call(ctx, request)
    }
}

/// A [`Service`] made of named handlers.
///
/// ```
/// use dockwire_core::ServerEvent;
/// use dockwire_service::Router;
/// use futures::StreamExt;
/// use serde_json::json;
///
/// let router = Router::new()
///     .query("math/double", |_ctx, input| async move {
///         Ok(json!(input["n"].as_i64().unwrap_or(0) * 2))
///     })
///     .raw("test/cat", |_ctx, _input, io| async move {
///         let (mut input, mut output) = io.split();
///         output.accept(json!({})).await?;
///         while let Some(item) = input.next().await {
///             match item {
///                 ServerEvent::Stdin(bytes) => output.stdout(bytes).await?,
///                 ServerEvent::StdinClosed => break,
///                 _ => {}
///             }
///         }
///         Ok(0)
///     });
/// ```
#[derive(Clone, Default)]
pub struct Router {
    routes: HashMap<String, Route>,
}

type JsonRoute = Arc<dyn Fn(CallContext, Value) -> Outputs + Send + Sync>;
type RawRoute = Arc<
    dyn Fn(CallContext, Value, RawIo) -> BoxFuture<'static, Result<i32, CallError>> + Send + Sync,
>;

#[derive(Clone)]
enum Route {
    Json(JsonRoute),
    Raw(RawRoute),
}

impl Router {
    /// An empty router: every operation is `NOT_FOUND`.
    pub fn new() -> Self {
        Router::default()
    }

    /// Adds a json operation answering a stream of outputs (a subscription).
    pub fn subscription<F, S>(mut self, operation: &str, handler: F) -> Self
    where
        F: Fn(CallContext, Value) -> S + Send + Sync + 'static,
        S: Stream<Item = Result<Value, CallError>> + Send + 'static,
    {
        let route: JsonRoute = Arc::new(move |ctx, input| handler(ctx, input).boxed());
        self.routes.insert(operation.to_owned(), Route::Json(route));
        self
    }

    /// Adds a json operation answering exactly one output (a query or a
    /// mutation).
    pub fn query<F, Fut>(self, operation: &str, handler: F) -> Self
    where
        F: Fn(CallContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, CallError>> + Send + 'static,
    {
        self.subscription(operation, move |ctx, input| {
            futures::stream::once(handler(ctx, input))
        })
    }

    /// Adds a raw-carriage operation.
    pub fn raw<F, Fut>(mut self, operation: &str, handler: F) -> Self
    where
        F: Fn(CallContext, Value, RawIo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<i32, CallError>> + Send + 'static,
    {
        let route: RawRoute = Arc::new(move |ctx, input, io| handler(ctx, input, io).boxed());
        self.routes.insert(operation.to_owned(), Route::Raw(route));
        self
    }
}

impl Service for Router {
    fn call(&self, ctx: CallContext, request: Request) -> Reply {
        let Some(route) = self.routes.get(&request.operation) else {
            return Reply::Refuse(CallError::new(
                ErrorCode::NOT_FOUND,
                format!("unknown operation {:?}", request.operation),
            ));
        };
        match (route, request.carriage) {
            (Route::Json(h), Carriage::Json) => Reply::Json(h(ctx, request.input)),
            (Route::Raw(h), Carriage::Raw) => {
                let h = h.clone();
                let input = request.input;
                Reply::Raw(Box::new(move |io| h(ctx, input, io)))
            }
            (_, carriage) => Reply::Refuse(CallError::new(
                ErrorCode::INVALID_INPUT,
                format!(
                    "operation {:?} does not use the {carriage:?} carriage",
                    request.operation
                ),
            )),
        }
    }
}

pub(crate) enum Output {
    Accept(Value),
    Stdout(Bytes),
    Stderr(Bytes),
    Drained,
}

/// How many inputs and outputs may wait between a raw handler and the
/// driver. Each is at most one chunk (1 MiB by default), so this bounds the
/// memory a session holds; a full queue stops the producer.
pub(crate) const RAW_QUEUE: usize = 4;

/// A raw session's two halves, given to its handler.
pub struct RawIo {
    input: RawInput,
    output: RawOutput,
    link: CallLink,
}

impl RawIo {
    pub(crate) fn new(
        link: CallLink,
    ) -> (RawIo, mpsc::Sender<ServerEvent>, mpsc::Receiver<Output>) {
        let (in_tx, in_rx) = mpsc::channel(RAW_QUEUE);
        let (out_tx, out_rx) = mpsc::channel(RAW_QUEUE);
        let io = RawIo {
            input: RawInput { rx: in_rx },
            output: RawOutput { tx: out_tx },
            link,
        };
        (io, in_tx, out_rx)
    }

    /// The call's link: whether its connection was lost, once the handler
    /// is dropped.
    pub fn link(&self) -> CallLink {
        self.link.clone()
    }

    /// The input and output halves, to use from separate tasks.
    pub fn split(self) -> (RawInput, RawOutput) {
        (self.input, self.output)
    }
}

/// The client's stdin and controls, in order: the call machine's own
/// [`ServerEvent`]s, as it decoded them. Only [`ServerEvent::Stdin`],
/// [`StdinClosed`](ServerEvent::StdinClosed),
/// [`Resize`](ServerEvent::Resize) and [`Signal`](ServerEvent::Signal)
/// reach a handler (the request started it; an abort or a protocol error
/// drops it). Dropping it discards further input.
pub struct RawInput {
    rx: mpsc::Receiver<ServerEvent>,
}

impl Stream for RawInput {
    type Item = ServerEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ServerEvent>> {
        self.rx.poll_next_unpin(cx)
    }
}

/// Where a raw handler writes. Each call waits while the session's queue
/// toward the client is full.
#[derive(Clone)]
pub struct RawOutput {
    tx: mpsc::Sender<Output>,
}

/// The call is over (the client went away or aborted); the handler should
/// stop. Converts into an `INTERNAL` error for `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the call has ended")]
pub struct CallEnded;

impl From<CallEnded> for CallError {
    fn from(_: CallEnded) -> Self {
        CallError::new(ErrorCode::INTERNAL, "the call has ended")
    }
}

impl RawOutput {
    /// Accepts the session with a description of it. Must come before any
    /// output; a handler that returns without accepting is accepted with
    /// `null` first.
    pub async fn accept(&mut self, description: Value) -> Result<(), CallEnded> {
        self.send(Output::Accept(description)).await
    }

    /// Sends stdout bytes.
    pub async fn stdout(&mut self, bytes: Bytes) -> Result<(), CallEnded> {
        self.send(Output::Stdout(bytes)).await
    }

    /// Sends stderr bytes.
    pub async fn stderr(&mut self, bytes: Bytes) -> Result<(), CallEnded> {
        self.send(Output::Stderr(bytes)).await
    }

    /// Ends the output (the drained sentinel) while the call goes on: the
    /// client's stdin still arrives, and the exit code still ends the
    /// call. Later output is an error that ends the call. A stream that
    /// half-closes (a forwarded TCP port's end of file) uses it.
    pub async fn drained(&mut self) -> Result<(), CallEnded> {
        self.send(Output::Drained).await
    }

    async fn send(&mut self, output: Output) -> Result<(), CallEnded> {
        self.tx.send(output).await.map_err(|_| CallEnded)
    }
}
