//! The generic client: calls, subscriptions and raw sessions over any
//! transport that can open a stream.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use dockwire_core::{CallError, Carriage, ClientCall, ClientEvent, CommandError, Limits, Request};
use futures::channel::{mpsc, oneshot};
use futures::io::{AsyncRead, AsyncWrite};
use futures::stream::BoxStream;
use futures::{Sink, Stream, StreamExt};
use serde_json::Value;

use crate::transmit::{SendHalf, Transmit};
use crate::{BoxRead, Connect, Spawn};

/// Why a call did not give what was asked.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server ended the call with this error (or broke the protocol:
    /// code `PROTOCOL`).
    #[error("{0}")]
    Remote(CallError),
    /// The call was aborted, by this client or by the server.
    #[error("the call was aborted")]
    Aborted,
    /// No stream could be opened to the server.
    #[error("cannot reach the server: {0}")]
    Connect(Arc<io::Error>),
    /// The stream failed in the middle of the call. Over QUIC, a connection
    /// lost to its idle timeout (a silent peer) has the kind
    /// [`io::ErrorKind::TimedOut`]; the cause is quinn's error.
    #[error("the connection failed during the call: {0}")]
    Io(Arc<io::Error>),
    /// The request could not be sent (it is over the frame limit).
    #[error("the request cannot be sent: {0}")]
    Request(CommandError),
    /// [`Client::call`] got no output, or more than one.
    #[error("expected exactly one output, got {0}")]
    OutputCount(usize),
}

/// Stdin bytes taken per write; larger writes are taken in several.
const STDIN_WRITE: usize = 256 * 1024;
/// Queued items between the driver and each of the caller's handles.
const QUEUE: usize = 8;
const HIGH_WATER: usize = 256 * 1024;
const BUDGET: usize = 64;

/// A client of a dockwire server: each call opens a stream through its
/// [`Connect`] and is driven by a task started through its [`Spawn`].
#[derive(Clone)]
pub struct Client {
    connect: Arc<dyn Connect>,
    spawn: Arc<dyn Spawn>,
    limits: Limits,
    next_id: Arc<AtomicU64>,
}

impl Client {
    /// A client that opens streams with `connect` and runs its per-call
    /// drivers with `spawn`.
    pub fn new(connect: Arc<dyn Connect>, spawn: Arc<dyn Spawn>, limits: Limits) -> Self {
        Client {
            connect,
            spawn,
            limits,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// A query or mutation: exactly one output, then completion.
    pub async fn call(&self, operation: &str, input: Value) -> Result<Value, ClientError> {
        let mut sub = self.subscribe(operation, input).await?;
        let mut outputs = Vec::with_capacity(1);
        while let Some(item) = sub.next().await {
            outputs.push(item?);
            if outputs.len() > 1 {
                return Err(ClientError::OutputCount(outputs.len()));
            }
        }
        match outputs.pop() {
            Some(v) if outputs.is_empty() => Ok(v),
            _ => Err(ClientError::OutputCount(0)),
        }
    }

    /// A subscription: a stream of outputs that ends when the call
    /// completes, or yields one error and ends. Dropping it aborts the call.
    pub async fn subscribe(
        &self,
        operation: &str,
        input: Value,
    ) -> Result<Subscription, ClientError> {
        let (outputs_tx, outputs) = mpsc::channel(QUEUE);
        let (control, control_rx) = mpsc::channel(QUEUE);
        let fault = Fault::default();
        let sinks = Sinks::Json {
            outputs: Some(outputs_tx),
            fault: fault.clone(),
        };
        self.start(operation, input, Carriage::Json, sinks, control_rx, None)
            .await?;
        Ok(Subscription {
            outputs,
            fault,
            done: false,
            control,
        })
    }

    /// An interactive session on the raw carriage. Resolves once the server
    /// accepted it (or refused: the error).
    pub async fn open_raw(&self, operation: &str, input: Value) -> Result<RawSession, ClientError> {
        let (accepted_tx, accepted) = oneshot::channel();
        let (stdout_tx, stdout_rx) = mpsc::channel(QUEUE);
        let (stderr_tx, stderr_rx) = mpsc::channel(QUEUE);
        let (exit_tx, exit_rx) = oneshot::channel();
        let (stdin_tx, stdin_rx) = mpsc::channel(QUEUE);
        let (source_tx, source_rx) = oneshot::channel();
        let (control, control_rx) = mpsc::channel(QUEUE);
        let fault = Fault::default();
        let sinks = Sinks::Raw {
            accepted: Some(accepted_tx),
            stdout: Some(stdout_tx),
            stderr: Some(stderr_tx),
            exit: Some(exit_tx),
            fault: fault.clone(),
        };
        self.start(
            operation,
            input,
            Carriage::Raw,
            sinks,
            control_rx,
            Some(StdinFeed {
                queue: stdin_rx,
                source: Source::Offered(source_rx),
            }),
        )
        .await?;
        let description = match accepted.await {
            Ok(result) => result?,
            Err(_) => return Err(ClientError::Aborted),
        };
        Ok(RawSession {
            accepted: description,
            stdout: OutputReader::new(stdout_rx, fault.clone(), control.clone()),
            stderr: OutputReader::new(stderr_rx, fault, control.clone()),
            exit: Exit {
                rx: exit_rx,
                _control: control.clone(),
            },
            stdin: Stdin {
                _control: control.clone(),
                tx: Some(stdin_tx),
                source: Some(source_tx),
            },
            control: Control { tx: control },
        })
    }

    async fn start(
        &self,
        operation: &str,
        input: Value,
        carriage: Carriage,
        sinks: Sinks,
        control: mpsc::Receiver<Command>,
        stdin: Option<StdinFeed>,
    ) -> Result<(), ClientError> {
        let id = format!("c{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let machine = ClientCall::new(id, Request::new(operation, input, carriage), self.limits)
            .map_err(ClientError::Request)?;
        let (reader, out) = self
            .connect
            .open_call()
            .await
            .map_err(|e| ClientError::Connect(Arc::new(e)))?;
        self.spawn.spawn(Box::pin(Driver {
            machine,
            reader,
            out,
            reading: true,
            stdin,
            control: Some(control),
            sinks,
            pending: None,
            writable: true,
            write_error: None,
        }));
        Ok(())
    }
}

/// The error a call's queues ended with, if they did not end naturally.
/// Errors travel here rather than through the bounded queues so that a
/// full queue can never turn a failure into a clean end.
#[derive(Clone, Default)]
struct Fault(Arc<Mutex<Option<ClientError>>>);

impl Fault {
    fn set(&self, e: &ClientError) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert_with(|| e.clone());
    }

    fn get(&self) -> Option<ClientError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The outputs of [`Client::subscribe`].
pub struct Subscription {
    outputs: mpsc::Receiver<Value>,
    fault: Fault,
    done: bool,
    control: mpsc::Sender<Command>,
}

impl Subscription {
    /// Asks the server to cancel; the stream then ends with
    /// [`ClientError::Aborted`] (or the end that crossed the abort).
    pub async fn abort(&mut self) {
        let _ = futures::SinkExt::send(&mut self.control, Command::Abort).await;
    }
}

impl Stream for Subscription {
    type Item = Result<Value, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(v) = ready!(self.outputs.poll_next_unpin(cx)) {
            return Poll::Ready(Some(Ok(v)));
        }
        self.done = true;
        Poll::Ready(self.fault.get().map(Err))
    }
}

/// An accepted raw session, in parts that can go to different tasks. The
/// call is aborted once every part has been dropped before it ended.
///
/// Dropped whole, the session is aborted without closing stdin first:
/// `stdin` is its last field (fields drop in order), so that the driver
/// never sees stdin end while the other parts still stand. A closed stdin
/// is an in-band ^D on a terminal, which would end a shell another
/// attacher goes on with.
pub struct RawSession {
    /// The server's description of the session (its `call.responded`).
    pub accepted: Value,
    /// The process's stdout; ends at the drained sentinel.
    pub stdout: OutputReader,
    /// The process's stderr; ends at the drained sentinel.
    pub stderr: OutputReader,
    /// Resize, signal, abort.
    pub control: Control,
    /// The exit code, after all output.
    pub exit: Exit,
    /// The process's stdin; closing it (or dropping it alone) closes
    /// stdin.
    pub stdin: Stdin,
}

/// The session's stdin: a [`Sink`] of [`Bytes`], handed on without a
/// copy, or an [`AsyncWrite`] (which copies what it is given). Closing it
/// (or dropping it) closes stdin, after what was sent.
///
/// [`feed_from`](Self::feed_from) hands a stream of bytes (the local
/// stdin, say) to the call's driver, which then reads it itself.
///
/// With both `SinkExt` and `AsyncWriteExt` in scope, `close` and `flush`
/// need their trait named: `SinkExt::close(&mut stdin)`.
pub struct Stdin {
    /// First, so that it drops first: the last part of a session dropped
    /// whole aborts the call before its stdin queue ends.
    _control: mpsc::Sender<Command>,
    tx: Option<mpsc::Sender<Bytes>>,
    source: Option<oneshot::Sender<StdinSource>>,
}

/// What [`Stdin::feed_from`] hands to the driver.
type StdinSource = BoxStream<'static, io::Result<Bytes>>;

impl Stdin {
    /// Sends what `source` yields as stdin, then closes stdin when it ends
    /// (or fails: its error ends the input like an end of file). The
    /// call's driver reads `source` itself, after whatever was sent
    /// before, as fast as the transport takes it: no task of the caller's
    /// is needed. It stops reading when the call ends.
    pub fn feed_from(mut self, source: impl Stream<Item = io::Result<Bytes>> + Send + 'static) {
        if let Some(tx) = self.source.take() {
            let _ = tx.send(source.boxed());
        }
    }

    fn poll_ready_bytes(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(tx) = &mut self.tx else {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "stdin is closed",
            )));
        };
        if ready!(tx.poll_ready(cx)).is_err() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the call has ended",
            )));
        }
        Poll::Ready(Ok(()))
    }

    fn send_bytes(&mut self, bytes: Bytes) -> io::Result<()> {
        let sent = self.tx.as_mut().map(|tx| tx.start_send(bytes));
        match sent {
            Some(Ok(())) => Ok(()),
            Some(Err(_)) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the call has ended",
            )),
            None => Err(io::Error::new(io::ErrorKind::BrokenPipe, "stdin is closed")),
        }
    }

    fn close(&mut self) {
        // The driver closes stdin when this queue ends, after what it
        // holds, and no source is on its way.
        self.tx = None;
        self.source = None;
    }
}

impl Sink<Bytes> for Stdin {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_ready_bytes(cx)
    }

    /// Takes `bytes` as they are; empty ones send nothing.
    fn start_send(self: Pin<&mut Self>, bytes: Bytes) -> io::Result<()> {
        self.get_mut().send_bytes(bytes)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().close();
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Stdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_ready_bytes(cx))?;
        let n = buf.len().min(STDIN_WRITE);
        this.send_bytes(Bytes::copy_from_slice(&buf[..n]))?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().close();
        Poll::Ready(Ok(()))
    }
}

/// The session's stdout or stderr: a [`Stream`] of the [`Bytes`] as they
/// arrived, or an [`AsyncRead`] (which copies them into the caller's
/// buffer). Ends at the drained sentinel; a call that failed first ends
/// it with one error.
pub struct OutputReader {
    rx: mpsc::Receiver<Bytes>,
    /// What a read took only part of.
    current: Bytes,
    fault: Fault,
    done: bool,
    _control: mpsc::Sender<Command>,
}

impl OutputReader {
    fn new(rx: mpsc::Receiver<Bytes>, fault: Fault, control: mpsc::Sender<Command>) -> Self {
        OutputReader {
            rx,
            current: Bytes::new(),
            fault,
            done: false,
            _control: control,
        }
    }

    /// The next non-empty bytes; `Ok(None)` at the clean end.
    fn poll_bytes(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        if !self.current.is_empty() {
            return Poll::Ready(Ok(Some(std::mem::take(&mut self.current))));
        }
        loop {
            match ready!(self.rx.poll_next_unpin(cx)) {
                Some(bytes) if bytes.is_empty() => {}
                Some(bytes) => return Poll::Ready(Ok(Some(bytes))),
                // The end: clean at the drained sentinel, an error otherwise.
                None => {
                    return Poll::Ready(match self.fault.get() {
                        None => Ok(None),
                        Some(e) => Err(io::Error::other(e)),
                    });
                }
            }
        }
    }
}

impl Stream for OutputReader {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let next = ready!(self.poll_bytes(cx)).transpose();
        // One error at most, then the end.
        self.done = !matches!(next, Some(Ok(_)));
        Poll::Ready(next)
    }
}

impl AsyncRead for OutputReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let Some(mut bytes) = ready!(self.poll_bytes(cx))? else {
            return Poll::Ready(Ok(0));
        };
        let n = buf.len().min(bytes.len());
        buf[..n].copy_from_slice(&bytes.split_to(n));
        self.current = bytes;
        Poll::Ready(Ok(n))
    }
}

/// Sends controls to the session. A control is never overtaken by stdin
/// written (or a close) after it; it may overtake stdin written before it.
#[derive(Clone)]
pub struct Control {
    tx: mpsc::Sender<Command>,
}

impl Control {
    /// The terminal's new size.
    pub async fn resize(&mut self, cols: u16, rows: u16) -> Result<(), ClientError> {
        self.send(Command::Resize(cols, rows)).await
    }

    /// Asks the server to deliver a signal (`"INT"`, `"TERM"`…).
    pub async fn signal(&mut self, name: &str) -> Result<(), ClientError> {
        self.send(Command::Signal(name.to_owned())).await
    }

    /// Cancels the session.
    pub async fn abort(&mut self) -> Result<(), ClientError> {
        self.send(Command::Abort).await
    }

    async fn send(&mut self, command: Command) -> Result<(), ClientError> {
        futures::SinkExt::send(&mut self.tx, command)
            .await
            .map_err(|_| ClientError::Aborted)
    }
}

/// Resolves to the session's exit code, after all of its output.
pub struct Exit {
    rx: oneshot::Receiver<Result<i32, ClientError>>,
    _control: mpsc::Sender<Command>,
}

impl Future for Exit {
    type Output = Result<i32, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match ready!(Pin::new(&mut self.rx).poll(cx)) {
            Ok(result) => Poll::Ready(result),
            Err(_) => Poll::Ready(Err(ClientError::Aborted)),
        }
    }
}

enum Command {
    Resize(u16, u16),
    Signal(String),
    Abort,
}

/// Where the driver delivers what the machine reports.
enum Sinks {
    Json {
        outputs: Option<mpsc::Sender<Value>>,
        fault: Fault,
    },
    Raw {
        accepted: Option<oneshot::Sender<Result<Value, ClientError>>>,
        stdout: Option<mpsc::Sender<Bytes>>,
        stderr: Option<mpsc::Sender<Bytes>>,
        exit: Option<oneshot::Sender<Result<i32, ClientError>>>,
        /// Set when output ends early; the readers report it.
        fault: Fault,
    },
}

/// Where a raw call's driver takes stdin from: what was sent through
/// [`Stdin`], then the source [`Stdin::feed_from`] gave, if any.
struct StdinFeed {
    queue: mpsc::Receiver<Bytes>,
    source: Source,
}

enum Source {
    /// The queue has not ended, or its end has not told whether a source
    /// follows.
    Offered(oneshot::Receiver<StdinSource>),
    /// Read until it ends.
    Reading(StdinSource),
}

impl StdinFeed {
    /// The next stdin bytes; `None` once stdin is to be closed.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            match &mut self.source {
                Source::Offered(offered) => {
                    // The queue ends when `Stdin` is closed, dropped or
                    // gives a source: what it sent comes first.
                    if let Some(bytes) = ready!(self.queue.poll_next_unpin(cx)) {
                        return Poll::Ready(Some(bytes));
                    }
                    match ready!(Pin::new(offered).poll(cx)) {
                        Ok(source) => self.source = Source::Reading(source),
                        Err(_) => return Poll::Ready(None),
                    }
                }
                Source::Reading(source) => {
                    return match ready!(source.poll_next_unpin(cx)) {
                        Some(Ok(bytes)) => Poll::Ready(Some(bytes)),
                        // A source that fails ends stdin as its end would.
                        Some(Err(_)) | None => Poll::Ready(None),
                    };
                }
            }
        }
    }
}

/// One call's client task.
struct Driver {
    machine: ClientCall,
    reader: BoxRead,
    out: SendHalf,
    reading: bool,
    stdin: Option<StdinFeed>,
    control: Option<mpsc::Receiver<Command>>,
    sinks: Sinks,
    /// An event the caller's queue had no room for yet.
    pending: Option<ClientEvent>,
    /// False once writing failed: the server stopped reading (a process
    /// that left its stdin unread has ended, say), which does not end what
    /// it still has to say.
    writable: bool,
    /// Why writing failed, for a stream that then ends early.
    write_error: Option<Arc<io::Error>>,
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..BUDGET {
            let mut progress = false;
            let machine = &mut this.machine;
            if this.writable {
                let mut pulled = || machine.poll_transmit_bytes();
                if let Err(e) = this.out.poll_transmit(&mut pulled, cx, &mut progress) {
                    this.stop_writing(e);
                    progress = true;
                }
            } else {
                // Nobody takes our bytes any more: what the machine queues
                // goes nowhere.
                while machine.poll_transmit_bytes().is_some() {}
            }
            this.poll_read(cx, &mut progress);
            // After the read, so that every event it produced is handed on
            // (or parked in `pending`) before the finish check below.
            this.deliver(cx, &mut progress);
            this.poll_commands(cx, &mut progress);
            if this.machine.is_finished()
                && this.pending.is_none()
                && (this.out.len() == 0 || !this.writable)
                && this.machine.transmit_len() == 0
            {
                // The call is over; closing our half tells the server so.
                let _ = ready!(this.out.poll_close(cx));
                return Poll::Ready(());
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Driver {
    /// Writing failed: stdin is closed for the caller (its writes fail),
    /// and the call goes on reading the server's answer, the exit code
    /// included. If the stream ends without one, the caller learns of the
    /// write's failure.
    fn stop_writing(&mut self, e: io::Error) {
        self.writable = false;
        self.stdin = None;
        self.write_error = Some(Arc::new(e));
    }

    /// Hands the machine's events to the caller's queues, stopping at the
    /// first queue that is full.
    fn deliver(&mut self, cx: &mut Context<'_>, progress: &mut bool) {
        loop {
            let Some(event) = self.pending.take().or_else(|| self.machine.poll_event()) else {
                return;
            };
            if let Some(event) = self.sinks.offer(event, cx) {
                self.pending = Some(event);
                return;
            }
            *progress = true;
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, progress: &mut bool) {
        // Read only when everything read so far has been taken: the
        // caller's pace is the transport's.
        if !self.reading || self.pending.is_some() || self.machine.is_finished() {
            return;
        }
        match Pin::new(&mut self.reader).poll_read(cx, self.machine.input_buffer()) {
            Poll::Pending => {}
            Poll::Ready(Ok(0)) => {
                self.reading = false;
                // Ended early after our writes failed: that failure is the
                // cause the caller should hear of.
                if let Some(e) = self.write_error.clone() {
                    self.sinks.fail(&ClientError::Io(e));
                }
                self.machine.handle_eof();
                *progress = true;
            }
            Poll::Ready(Ok(n)) => {
                self.machine.handle_read(n);
                *progress = true;
            }
            Poll::Ready(Err(e)) => {
                self.reading = false;
                // The machine cannot know why; the caller should.
                self.sinks.fail(&ClientError::Io(Arc::new(e)));
                let _ = self.machine.abort();
                self.machine.handle_eof();
                while self.machine.poll_event().is_some() {}
                *progress = true;
            }
        }
    }

    fn poll_commands(&mut self, cx: &mut Context<'_>, progress: &mut bool) {
        if self.machine.is_finished() {
            return;
        }
        loop {
            if !self.take_controls(cx, progress) {
                return;
            }
            if self.machine.transmit_len() + self.out.len() >= HIGH_WATER {
                return;
            }
            let Some(stdin) = &mut self.stdin else { return };
            let item = match stdin.poll_next(cx) {
                Poll::Pending => return,
                Poll::Ready(item) => item,
            };
            // Controls again, once the item is in hand: one sent before
            // that stdin write or close, after the controls were last
            // looked at, is visible by now, and goes first. The controls
            // before the item alone would let it overtake them.
            if !self.take_controls(cx, progress) {
                return;
            }
            match item {
                Some(bytes) => {
                    let _ = self.machine.send_stdin(bytes);
                }
                None => {
                    let _ = self.machine.close_stdin();
                    self.stdin = None;
                }
            }
            *progress = true;
        }
    }

    /// Hands every queued control to the machine, so that no stdin sent
    /// after a control overtakes it (a control may overtake stdin queued
    /// before it, as a signal does). False once the call is aborted:
    /// whatever stdin still holds then goes nowhere, and its end is no
    /// close for the server to act on.
    fn take_controls(&mut self, cx: &mut Context<'_>, progress: &mut bool) -> bool {
        self.poll_controls(cx, progress);
        if self.control.is_none() {
            self.stdin = None;
            return false;
        }
        true
    }

    fn poll_controls(&mut self, cx: &mut Context<'_>, progress: &mut bool) {
        while let Some(control) = &mut self.control {
            match control.poll_next_unpin(cx) {
                Poll::Pending => return,
                Poll::Ready(Some(Command::Resize(cols, rows))) => {
                    let _ = self.machine.resize(cols, rows);
                }
                Poll::Ready(Some(Command::Signal(name))) => {
                    let _ = self.machine.signal(name);
                }
                Poll::Ready(Some(Command::Abort)) | Poll::Ready(None) => {
                    // An explicit abort, or every handle dropped.
                    let _ = self.machine.abort();
                    self.control = None;
                }
            }
            *progress = true;
        }
    }
}

impl Sinks {
    /// Delivers `event`, or gives it back when its queue is full (having
    /// registered for a wake-up).
    fn offer(&mut self, event: ClientEvent, cx: &mut Context<'_>) -> Option<ClientEvent> {
        match (self, event) {
            (Sinks::Json { outputs, .. }, ClientEvent::Responded(v)) => {
                send(outputs, v, cx).map(ClientEvent::Responded)
            }
            (Sinks::Json { outputs, .. }, ClientEvent::Completed) => {
                *outputs = None;
                None
            }
            (Sinks::Raw { accepted, .. }, ClientEvent::Accepted(v)) => {
                if let Some(tx) = accepted.take() {
                    let _ = tx.send(Ok(v));
                }
                None
            }
            (Sinks::Raw { stdout, .. }, ClientEvent::Stdout(b)) => {
                send(stdout, b, cx).map(ClientEvent::Stdout)
            }
            (Sinks::Raw { stderr, .. }, ClientEvent::Stderr(b)) => {
                send(stderr, b, cx).map(ClientEvent::Stderr)
            }
            (Sinks::Raw { stdout, stderr, .. }, ClientEvent::Drained) => {
                *stdout = None;
                *stderr = None;
                None
            }
            (Sinks::Raw { exit, .. }, ClientEvent::Exit(code)) => {
                if let Some(tx) = exit.take() {
                    let _ = tx.send(Ok(code));
                }
                None
            }
            (sinks, ClientEvent::Aborted) => {
                sinks.fail(&ClientError::Aborted);
                None
            }
            (sinks, ClientEvent::Error(e)) => {
                sinks.fail(&ClientError::Remote(e));
                None
            }
            // The machine gives each carriage only its own events.
            (_, _) => None,
        }
    }

    /// Ends every queue that is still open with `error`.
    fn fail(&mut self, error: &ClientError) {
        match self {
            Sinks::Json { outputs, fault } => {
                // The fault first: the reader checks it once the queue closes.
                if let Some(tx) = outputs.take() {
                    fault.set(error);
                    drop(tx);
                }
            }
            Sinks::Raw {
                accepted,
                stdout,
                stderr,
                exit,
                fault,
            } => {
                if let Some(tx) = accepted.take() {
                    let _ = tx.send(Err(error.clone()));
                }
                if stdout.is_some() || stderr.is_some() {
                    fault.set(error);
                }
                *stdout = None;
                *stderr = None;
                if let Some(tx) = exit.take() {
                    let _ = tx.send(Err(error.clone()));
                }
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // A task dropped before its call ended (its runtime shut down) must
        // not look like a clean end to the caller.
        self.sinks.fail(&ClientError::Aborted);
    }
}

/// Sends into a bounded queue: `None` when sent (or the receiver is gone,
/// so the item is dropped), `Some(item)` back when the queue is full.
fn send<T>(tx: &mut Option<mpsc::Sender<T>>, item: T, cx: &mut Context<'_>) -> Option<T> {
    let Some(sender) = tx else { return None };
    match sender.poll_ready(cx) {
        Poll::Pending => Some(item),
        Poll::Ready(Err(_)) => {
            *tx = None;
            None
        }
        Poll::Ready(Ok(())) => {
            let _ = sender.start_send(item);
            None
        }
    }
}
