//! The per-call server driver: moves one stream's two halves through a
//! [`ServerCall`] and runs the service's handler.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use dockwire_core::{CallError, CommandError, ErrorCode, Limits, ServerCall, ServerEvent};
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::io::{AsyncRead, AsyncWrite};
use futures::{FutureExt, StreamExt};

use crate::service::{CallContext, CallLink, Output, Outputs, Peer, RawIo, Reply, Service};
use crate::transmit::{Plain, Transmit};

/// How a served call ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// The stream closed before carrying a request: no call.
    NoCall,
    /// The handler finished: `call.completed`, or `exit` with this code.
    Completed {
        /// The exit code, for raw calls.
        exit: Option<i32>,
    },
    /// The handler (or the service) ended the call with this error.
    Failed(CallError),
    /// The client aborted, or its side of the stream ended or failed
    /// first; the handler was dropped.
    Cancelled,
    /// The client broke the protocol; it was told where possible.
    Protocol(CallError),
    /// Writing to the client failed; the handler was dropped.
    Io(io::Error),
}

/// Bytes queued toward the client above which the driver stops taking
/// outputs from the handler until the transport has taken them.
const HIGH_WATER: usize = 256 * 1024;
/// Loop turns before the driver yields to its executor, so that a busy
/// stream cannot starve other tasks.
const BUDGET: usize = 64;

/// Serves one call on one stream: reads the request, asks `service` for a
/// reply, and drives it to its end. Resolves when the call is over and its
/// last bytes are written and the write half closed.
///
/// Dropping the future drops the handler; the stream is then left to its
/// owner to close or reset.
pub fn serve_call<R, W>(
    service: Arc<dyn Service>,
    peer: Arc<str>,
    reader: R,
    writer: W,
    limits: Limits,
) -> ServeCall<R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    ServeCall {
        inner: Serve::new(
            service,
            Peer::named(peer),
            reader,
            Plain::new(writer),
            limits,
        ),
    }
}

/// The future [`serve_call`] returns.
pub struct ServeCall<R, W> {
    inner: Serve<R, Plain<W>>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Future for ServeCall<R, W> {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

enum Handler {
    Waiting,
    Json(Outputs),
    Raw {
        run: Option<BoxFuture<'static, Result<i32, CallError>>>,
        result: Option<Result<i32, CallError>>,
        inputs: mpsc::Sender<ServerEvent>,
        outputs: mpsc::Receiver<Output>,
    },
    Done,
}

/// [`serve_call`] over any [`Transmit`]: a plain `AsyncWrite`, or a
/// transport that takes the machine's pieces as they are.
pub(crate) struct Serve<R, T> {
    service: Arc<dyn Service>,
    peer: Peer,
    machine: ServerCall,
    reader: R,
    out: T,
    reading: bool,
    handler: Handler,
    /// An input event the handler's queue had no room for yet; the
    /// machine's later events wait in the machine behind it.
    pending: Option<ServerEvent>,
    outcome: Option<Outcome>,
    /// Marked lost when the transport reports its connection timed out.
    link: CallLink,
}

impl<R, T> Serve<R, T> {
    pub(crate) fn new(
        service: Arc<dyn Service>,
        peer: Peer,
        reader: R,
        out: T,
        limits: Limits,
    ) -> Self {
        Serve {
            service,
            peer,
            machine: ServerCall::new(limits),
            reader,
            out,
            reading: true,
            handler: Handler::Waiting,
            pending: None,
            outcome: None,
            link: CallLink::default(),
        }
    }
}

impl<R: AsyncRead + Unpin, T: Transmit + Unpin> Future for Serve<R, T> {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.get_mut();
        for _ in 0..BUDGET {
            let mut progress = false;
            let machine = &mut this.machine;
            let mut pulled = || machine.poll_transmit_bytes();
            if let Err(e) = this.out.poll_transmit(&mut pulled, cx, &mut progress) {
                this.note_lost(&e);
                this.handler = Handler::Done;
                return Poll::Ready(Outcome::Io(e));
            }
            this.poll_read(cx, &mut progress);
            this.handle_events(cx, &mut progress);
            this.poll_handler(cx, &mut progress);

            if this.machine.is_finished() && this.out.len() == 0 && this.machine.transmit_len() == 0
            {
                // Best effort: a peer that is gone cannot be told more.
                return match this.out.poll_close(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(_) => Poll::Ready(this.outcome.take().unwrap_or(Outcome::NoCall)),
                };
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<R: AsyncRead + Unpin, T: Transmit> Serve<R, T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, progress: &mut bool) {
        // Stop reading while a raw handler has not taken its input: the
        // transport's flow control then holds the client back.
        if !self.reading || self.machine.is_finished() || self.pending.is_some() {
            return;
        }
        let read = Pin::new(&mut self.reader).poll_read(cx, self.machine.input_buffer());
        match read {
            Poll::Pending => {}
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                // End of stream or a reset: the machine decides whether it
                // cancels the call. A lost connection is noted first, so
                // that the handler's cleanup, when it is dropped, knows.
                if let Poll::Ready(Err(e)) = &read {
                    self.note_lost(e);
                }
                self.reading = false;
                self.machine.handle_eof();
                *progress = true;
            }
            Poll::Ready(Ok(n)) => {
                self.machine.handle_read(n);
                *progress = true;
            }
        }
    }

    /// Acts on the machine's events, handing input to a raw handler as the
    /// events themselves, until its queue is full.
    fn handle_events(&mut self, cx: &mut Context<'_>, progress: &mut bool) {
        loop {
            let parked = self.pending.is_some();
            let Some(event) = self.pending.take().or_else(|| self.machine.poll_event()) else {
                break;
            };
            match event {
                ServerEvent::Requested(request) => self.start(request),
                ServerEvent::Aborted => self.end(Outcome::Cancelled),
                ServerEvent::Error(e) => self.end(Outcome::Protocol(e)),
                input => {
                    let Some(input) = self.offer(input, cx) else {
                        *progress = true;
                        continue;
                    };
                    // A machine that has finished holds the call's end
                    // behind this input: the handler is dropped at that
                    // end, so its input goes with it.
                    if self.machine.is_finished() {
                        *progress = true;
                        continue;
                    }
                    self.pending = Some(input);
                    *progress |= !parked;
                    break;
                }
            }
            *progress = true;
        }
        if self.machine.state() == dockwire_core::ServerState::Finished && self.outcome.is_none() {
            self.end(Outcome::NoCall);
        }
    }

    /// Gives `input` to the raw handler: `None` once it is taken (or
    /// nobody will take it), `Some(input)` back while the handler's queue
    /// is full.
    fn offer(&mut self, input: ServerEvent, cx: &mut Context<'_>) -> Option<ServerEvent> {
        // No raw handler (any more): nobody will take input.
        let Handler::Raw { inputs, .. } = &mut self.handler else {
            return None;
        };
        match inputs.poll_ready(cx) {
            Poll::Pending => Some(input),
            // The handler dropped its input: it wants none.
            Poll::Ready(Err(_)) => None,
            Poll::Ready(Ok(())) => {
                let _ = inputs.start_send(input);
                None
            }
        }
    }

    fn start(&mut self, request: dockwire_core::Request) {
        let mut ctx = CallContext::new(&self.peer, self.machine.id().unwrap_or_default());
        ctx.link = self.link.clone();
        match self.service.call(ctx, request) {
            Reply::Json(outputs) => self.handler = Handler::Json(outputs),
            Reply::Raw(handler) => {
                let (io, inputs, outputs) = RawIo::new(self.link.clone());
                self.handler = Handler::Raw {
                    run: Some(handler(io)),
                    result: None,
                    inputs,
                    outputs,
                };
            }
            Reply::Refuse(e) => self.fail(e),
        }
    }

    fn poll_handler(&mut self, cx: &mut Context<'_>, progress: &mut bool) {
        // Bytes handed to the writer but not yet taken by it.
        let in_flight = self.out.len();
        let machine = &mut self.machine;
        let ending = match &mut self.handler {
            Handler::Waiting | Handler::Done => None,
            Handler::Json(outputs) => poll_json(machine, outputs, in_flight, cx, progress),
            Handler::Raw {
                run,
                result,
                outputs,
                ..
            } => {
                if let Some(fut) = run {
                    if let Poll::Ready(r) = fut.poll_unpin(cx) {
                        // Dropping the handler's future drops its output
                        // sender, so the queue ends after its last item.
                        *run = None;
                        *result = Some(r);
                        *progress = true;
                    }
                }
                poll_raw(machine, outputs, result, in_flight, cx, progress)
            }
        };
        match ending {
            None => {}
            Some(Ok(exit)) => self.end(Outcome::Completed { exit }),
            Some(Err(e)) => self.fail(e),
        }
    }

    /// Marks the call's link lost when the transport's error says its
    /// connection timed out ([`io::ErrorKind::TimedOut`]: a QUIC
    /// connection's idle timeout, see `quic`); other errors (a reset, a
    /// closed connection) leave it a cancellation.
    fn note_lost(&self, e: &io::Error) {
        if e.kind() == io::ErrorKind::TimedOut {
            self.link.mark_lost();
        }
    }

    fn fail(&mut self, e: CallError) {
        let _ = self.machine.fail(e.clone());
        self.end(Outcome::Failed(e));
    }

    /// Drops the handler (running its cleanup) and records the outcome.
    fn end(&mut self, outcome: Outcome) {
        self.handler = Handler::Done;
        self.pending = None;
        if self.outcome.is_none() {
            self.outcome = Some(outcome);
        }
    }
}

/// How a handler's turn ended the call: `Ok(exit)` completed it (exit code
/// for raw), `Err` failed it. The machine has already been told of a
/// completion; a failure is sent by [`Serve::fail`].
type Ending = Result<Option<i32>, CallError>;

fn poll_json(
    machine: &mut ServerCall,
    outputs: &mut Outputs,
    in_flight: usize,
    cx: &mut Context<'_>,
    progress: &mut bool,
) -> Option<Ending> {
    while in_flight + machine.transmit_len() < HIGH_WATER {
        let item = match outputs.poll_next_unpin(cx) {
            Poll::Pending => return None,
            Poll::Ready(item) => item,
        };
        *progress = true;
        match item {
            Some(Ok(value)) => {
                if let Err(e) = machine.respond(value) {
                    return Some(Err(unsendable(e)));
                }
            }
            Some(Err(e)) => return Some(Err(e)),
            None => {
                let _ = machine.complete();
                return Some(Ok(None));
            }
        }
    }
    None
}

fn poll_raw(
    machine: &mut ServerCall,
    outputs: &mut mpsc::Receiver<Output>,
    result: &mut Option<Result<i32, CallError>>,
    in_flight: usize,
    cx: &mut Context<'_>,
    progress: &mut bool,
) -> Option<Ending> {
    while in_flight + machine.transmit_len() < HIGH_WATER {
        let output = match outputs.poll_next_unpin(cx) {
            Poll::Pending => return None,
            Poll::Ready(output) => output,
        };
        *progress = true;
        let Some(output) = output else {
            // The queue has ended; once the handler has too, so does the call.
            return match result.take()? {
                Ok(code) => {
                    if !machine.is_accepted() {
                        let _ = machine.accept(serde_json::Value::Null);
                    }
                    let _ = machine.exit(code);
                    Some(Ok(Some(code)))
                }
                Err(e) => Some(Err(e)),
            };
        };
        let sent = match output {
            Output::Accept(description) => machine.accept(description),
            Output::Stdout(bytes) => machine.send_stdout(bytes),
            Output::Stderr(bytes) => machine.send_stderr(bytes),
            Output::Drained => machine.drained(),
        };
        if let Err(e) = sent {
            return Some(Err(unsendable(e)));
        }
    }
    None
}

fn unsendable(e: CommandError) -> CallError {
    CallError::new(
        ErrorCode::INTERNAL,
        format!("the handler's output could not be sent: {e}"),
    )
}
