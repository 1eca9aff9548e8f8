//! A typed client of the catalog over any dockwire [`Client`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use dockwire_core::{CallError, ErrorCode};
use dockwire_service::{Client, ClientError, Exit, OutputReader, RawSession, Stdin};
use futures::{AsyncRead, AsyncWrite, Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::future::Future;

use crate::catalog::{
    AttachFrom, CONFLICT, ExecInput, PortForward, PortForwarded, ProcessAttach, ProcessAttached,
    ProcessList, ProcessLogItem, ProcessLogs, Query, RawOperation, StreamName, Subscription,
};

/// Calls the catalog's operations with their typed inputs and reads their
/// typed outputs; no hand-written JSON.
#[derive(Clone)]
pub struct DockerClient {
    client: Client,
}

impl DockerClient {
    /// Wraps a dockwire client (of any runtime and transport).
    pub fn new(client: Client) -> Self {
        DockerClient { client }
    }

    /// The untyped client underneath.
    pub fn inner(&self) -> &Client {
        &self.client
    }

    /// A query or mutation: its one output.
    pub async fn query<O: Query>(&self, input: &O) -> Result<O::Output, ClientError> {
        let output = self.client.call(O::NAME, encode(input)?).await?;
        decode(output)
    }

    /// A subscription: its items, ending with the call (or with one error).
    /// Dropping the stream aborts the call.
    pub async fn subscribe<O: Subscription>(
        &self,
        input: &O,
    ) -> Result<Items<O::Item>, ClientError> {
        let inner = self.client.subscribe(O::NAME, encode(input)?).await?;
        Ok(Items {
            inner,
            _item: std::marker::PhantomData,
        })
    }

    /// A session on the raw carriage, once the server accepted it.
    pub async fn open<O: RawOperation>(&self, input: &O) -> Result<RawSession, ClientError> {
        self.client.open_raw(O::NAME, encode(input)?).await
    }

    /// A TCP connection to `input.port` inside container `input.container`
    /// (`container/port-forward`), connected: a refused port is the error
    /// here, `PORT_UNREACHABLE`.
    pub async fn port_forward(&self, input: &PortForward) -> Result<PortStream, ClientError> {
        let session = self.open(input).await?;
        let forwarded = decode(session.accepted)?;
        Ok(PortStream {
            forwarded,
            stdin: session.stdin,
            stdout: session.stdout,
            exit: Some(session.exit),
        })
    }

    /// Attaches to a detached process (`process/attach`): where the replay
    /// starts in each stream (and how many bytes asked for are gone), and
    /// the session, whose output is the replay then live output and whose
    /// exit is the process's. The other `process/*` operations are typed
    /// queries and a subscription: `query(&ProcessStart::new(..))`,
    /// `query(&ProcessList {})`, `query(&ProcessWait { id })`,
    /// `subscribe(&ProcessLogs { .. })`.
    pub async fn attach_process(
        &self,
        input: &ProcessAttach,
    ) -> Result<(ProcessAttached, RawSession), ClientError> {
        let mut session = self.open(input).await?;
        let accepted = decode(std::mem::take(&mut session.accepted))?;
        Ok((accepted, session))
    }
}

/// Follows detached process `id`'s output (`process/logs` with `follow`)
/// to its end across lost connections, handing each item to `each` once:
/// when a connection fails in the middle (or cannot be opened), it asks
/// `connect` for a client again (with the count of failures in a row, so
/// that it can pause before dialing; its error gives up) and goes on from
/// the offset after the last byte it handed on, in each stream. Items
/// arrive with their offsets, so nothing is duplicated; a gap (an offset
/// past the last item's end) is what the server's buffer had dropped.
/// The exit code at the end; `None` when the process was lost.
pub async fn follow_process<C, F>(
    mut connect: C,
    id: &str,
    mut each: impl FnMut(ProcessLogItem),
) -> Result<Option<i64>, ClientError>
where
    C: FnMut(u32) -> F,
    F: Future<Output = Result<DockerClient, ClientError>>,
{
    let mut next: [Option<u64>; 2] = [None, None];
    let mut failures = 0u32;
    loop {
        let client = connect(failures).await?;
        let input = ProcessLogs {
            id: id.to_owned(),
            stdout_from: next[0],
            stderr_from: next[1],
            follow: true,
        };
        let followed = async {
            let mut items = client.subscribe(&input).await?;
            while let Some(item) = items.next().await {
                let item = item?;
                failures = 0;
                match &item {
                    ProcessLogItem::Output {
                        stream,
                        offset,
                        data,
                    } => {
                        let len = data.to_bytes().map_or(0, |b| b.len() as u64);
                        let slot = match stream {
                            StreamName::Stdout => 0,
                            StreamName::Stderr => 1,
                        };
                        next[slot] = Some(offset.saturating_add(len));
                    }
                    ProcessLogItem::End { exit_code, .. } => {
                        let code = *exit_code;
                        each(item);
                        return Ok(code);
                    }
                }
                each(item);
            }
            Ok(None)
        };
        match followed.await {
            Err(ClientError::Io(_) | ClientError::Connect(_)) => failures += 1,
            other => return other,
        }
    }
}

/// The error [`resumable_exec`] ends with when the server's buffer had
/// dropped output it had not handed on (never, while the server makes a
/// session's output wait for its client).
pub const OUTPUT_DROPPED: dockwire_core::ErrorCode =
    dockwire_core::ErrorCode::from_static("OUTPUT_DROPPED");

/// The most stdin bytes [`resumable_exec`] keeps that the server has not
/// said it delivered: past it, reading the local stdin waits for the
/// server's count (`process/list`'s `stdinDelivered`) to free a quarter
/// of it. It is above what a session holds on its way (QUIC's stream
/// window and the buffers of the server and the engine: 4 MiB filled
/// with it on loopback), so a stalled process blocks the send rather
/// than a full tail, and each ask frees megabytes rather than what the
/// engine took since the last.
pub const SESSION_STDIN_TAIL: usize = 16 * 1024 * 1024;

/// The first pause between two asks for the delivered count while the
/// stdin tail is full; it doubles while the count frees too little, up to
/// [`STDIN_ASK_MAX_PAUSE`]: a process that does not read its stdin costs
/// an ask every [`STDIN_ASK_MAX_PAUSE`], not one per round trip.
const STDIN_ASK_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// The longest pause between two asks for the delivered count.
const STDIN_ASK_MAX_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// Runs an interactive exec (`container/exec` with `stdin`, which `input`
/// must ask for) that survives lost connections, feeding it `stdin` and
/// handing each output byte to `each` exactly once, in order per stream;
/// the exit code at the end. When its connection fails (or cannot be
/// opened), it asks `connect` for a client again (with the count of
/// failures in a row, as [`follow_process`] does) and resumes the
/// session's process (`process/attach` with `stdin`) at the offsets after
/// the last bytes handed on; the acceptance's `stdinDelivered` says how
/// much of stdin the process was given, and the rest is sent again. It
/// keeps up to [`SESSION_STDIN_TAIL`] bytes of stdin not yet known
/// delivered (asking `process/list` for the count when full, paced). A
/// server that does not make the exec a session (no grace period, or the
/// peer's processes are at their cap) runs it plainly: a failed
/// connection is then its error.
///
/// `controls` reach the process of the session open at the time (a
/// terminal's size, signals; the terminal of a resumed process keeps its
/// size); [`SessionControl::Abort`] aborts the call (the server kills the
/// process at once) and ends this with [`ClientError::Aborted`]. When it
/// cannot resume (`connect` gives up, or the server no longer has the
/// session: its grace period passed, or it restarted), the error is the
/// one the connection was lost with.
pub async fn resumable_exec<C, F, S, K>(
    mut connect: C,
    input: &ExecInput,
    stdin: S,
    controls: K,
    each: impl FnMut(StreamName, bytes::Bytes),
) -> Result<i64, ClientError>
where
    C: FnMut(u32) -> F,
    F: Future<Output = Result<DockerClient, ClientError>>,
    S: Stream<Item = io::Result<bytes::Bytes>> + Unpin,
    K: Stream<Item = SessionControl> + Unpin,
{
    let client = connect(0).await?;
    let session = client.open(input).await?;
    resume_session(session, connect, stdin, controls, each).await
}

/// [`resumable_exec`] of a session already open (`container/exec` with
/// `stdin`, just accepted): a caller that tells a failed start from a
/// lost session opens it itself. `connect(0)` is asked first for the
/// client it was opened on.
pub async fn resume_session<C, F, S, K>(
    mut session: RawSession,
    mut connect: C,
    mut stdin: S,
    mut controls: K,
    mut each: impl FnMut(StreamName, bytes::Bytes),
) -> Result<i64, ClientError>
where
    C: FnMut(u32) -> F,
    F: Future<Output = Result<DockerClient, ClientError>>,
    S: Stream<Item = io::Result<bytes::Bytes>> + Unpin,
    K: Stream<Item = SessionControl> + Unpin,
{
    let mut controls_done = false;
    let mut next = [0u64; 2];
    let mut tail = StdinTail::default();
    let mut local_done = false;
    let accepted = std::mem::take(&mut session.accepted);
    let session_id = accepted["session"].as_str().map(str::to_owned);
    let mut opened = Some(session);
    let mut failures = 0u32;
    // The error the connection was lost with, while resuming.
    let mut lost: Option<ClientError> = None;
    loop {
        let client = match connect(failures).await {
            Ok(client) => client,
            Err(e) => return Err(lost.unwrap_or(e)),
        };
        let (session, delivered, closed) = match (opened.take(), &session_id) {
            (Some(session), _) => (session, 0, false),
            // Not a session: nothing to resume.
            (None, None) => return Err(lost.unwrap_or(ClientError::Aborted)),
            (None, Some(id)) => {
                let attach = ProcessAttach {
                    id: id.clone(),
                    from: AttachFrom::Streams {
                        stdout: next[0],
                        stderr: next[1],
                    },
                    stdin: true,
                };
                match client.attach_process(&attach).await {
                    Ok((accepted, session)) => {
                        let missed = accepted.stdout.missed + accepted.stderr.missed;
                        if missed > 0 {
                            return Err(ClientError::Remote(CallError::new(
                                OUTPUT_DROPPED,
                                format!("the server no longer holds {missed} bytes of output"),
                            )));
                        }
                        (session, accepted.stdin_delivered, accepted.stdin_closed)
                    }
                    // The server may not have seen the old connection
                    // die yet: its attach still holds stdin (`CONFLICT`).
                    Err(ClientError::Remote(e)) if e.code == CONFLICT => {
                        failures += 1;
                        continue;
                    }
                    Err(ClientError::Io(_) | ClientError::Connect(_)) => {
                        failures += 1;
                        continue;
                    }
                    Err(ClientError::Remote(e)) if e.code == ErrorCode::NOT_FOUND => {
                        return Err(lost.unwrap_or(ClientError::Remote(e)));
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        failures = 0;
        tail.delivered(delivered);
        let RawSession {
            stdin: mut to_server,
            stdout,
            stderr,
            exit,
            mut control,
            ..
        } = session;
        let output = async {
            let out = stdout.map(|b| (StreamName::Stdout, b));
            let err = stderr.map(|b| (StreamName::Stderr, b));
            let mut both = futures::stream::select(out, err);
            while let Some((stream, bytes)) = both.next().await {
                // An error: the exit tells why.
                let Ok(bytes) = bytes else { break };
                let slot = match stream {
                    StreamName::Stdout => 0,
                    StreamName::Stderr => 1,
                };
                next[slot] = next[slot].saturating_add(bytes.len() as u64);
                each(stream, bytes);
            }
            exit.await
        };
        let id = session_id.clone();
        let input_side = async {
            use futures::SinkExt;
            let sent = |e: io::Error| ClientError::Io(std::sync::Arc::new(e));
            for chunk in tail.unacknowledged() {
                to_server.send(chunk).await.map_err(sent)?;
            }
            if local_done && !closed {
                to_server.close().await.map_err(sent)?;
            }
            loop {
                if let (false, true, Some(id)) = (local_done, tail.len >= SESSION_STDIN_TAIL, &id) {
                    let mut pause = std::time::Duration::ZERO;
                    loop {
                        let listed = client.query(&ProcessList {}).await?;
                        if let Some(p) = listed.iter().find(|p| &p.id == id) {
                            tail.delivered(p.stdin_delivered);
                        }
                        if tail.len <= SESSION_STDIN_TAIL - SESSION_STDIN_TAIL / 4 {
                            break;
                        }
                        pause = (pause * 2).clamp(STDIN_ASK_PAUSE, STDIN_ASK_MAX_PAUSE);
                        // Any executor: async-compat gives tokio's timer one.
                        async_compat::Compat::new(tokio::time::sleep(pause)).await;
                    }
                }
                let next_in = async {
                    match local_done {
                        true => futures::future::pending().await,
                        false => stdin.next().await,
                    }
                };
                let next_control = async {
                    match controls_done {
                        true => futures::future::pending().await,
                        false => controls.next().await,
                    }
                };
                futures::pin_mut!(next_in, next_control);
                match futures::future::select(next_in, next_control).await {
                    futures::future::Either::Left((Some(Ok(bytes)), _)) => {
                        if id.is_some() {
                            tail.push(bytes.clone());
                        }
                        to_server.send(bytes).await.map_err(sent)?;
                    }
                    futures::future::Either::Left((Some(Err(_)) | None, _)) => {
                        local_done = true;
                        to_server.close().await.map_err(sent)?;
                    }
                    futures::future::Either::Right((None, _)) => controls_done = true,
                    futures::future::Either::Right((Some(c), _)) => match c {
                        SessionControl::Resize { cols, rows } => control.resize(cols, rows).await?,
                        SessionControl::Signal(name) => control.signal(&name).await?,
                        SessionControl::Abort => {
                            let _ = control.abort().await;
                            return Err::<(), _>(ClientError::Aborted);
                        }
                    },
                }
            }
        };
        futures::pin_mut!(output, input_side);
        let ended = match futures::future::select(output, input_side).await {
            futures::future::Either::Left((exit, _)) => exit.map(i64::from),
            futures::future::Either::Right((Err(ClientError::Aborted), _)) => {
                return Err(ClientError::Aborted);
            }
            // Only an error ends the input side; the exit tells the call's.
            futures::future::Either::Right((_, output)) => output.await.map(i64::from),
        };
        match ended {
            Err(e @ (ClientError::Io(_) | ClientError::Connect(_))) if session_id.is_some() => {
                failures += 1;
                lost = Some(e);
            }
            other => return other,
        }
    }
}

/// Stdin a resumable session sent and the server has not yet said it
/// delivered: from `start` (an offset in stdin) on.
#[derive(Default)]
struct StdinTail {
    chunks: std::collections::VecDeque<bytes::Bytes>,
    start: u64,
    len: usize,
}

impl StdinTail {
    fn push(&mut self, bytes: bytes::Bytes) {
        self.len += bytes.len();
        self.chunks.push_back(bytes);
    }

    /// The server delivered stdin up to `upto`: forget what is before.
    fn delivered(&mut self, upto: u64) {
        while upto > self.start {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            let skip = usize::try_from(upto - self.start)
                .unwrap_or(usize::MAX)
                .min(front.len());
            let _ = front.split_to(skip);
            self.start += skip as u64;
            self.len -= skip;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
    }

    fn unacknowledged(&self) -> Vec<bytes::Bytes> {
        self.chunks.iter().cloned().collect()
    }
}

/// A control for [`resumable_exec`]'s process.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionControl {
    /// Resize its terminal.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Send it this signal (a name or number).
    Signal(String),
    /// Abort the call: the server kills the process at once.
    Abort,
}

/// A forwarded TCP connection ([`DockerClient::port_forward`]): reading
/// gives the port's bytes and ends at its end of file; writing sends to
/// it, and closing shuts its write side (a half-close: reading goes on).
/// Dropping it ends the call.
pub struct PortStream {
    forwarded: PortForwarded,
    stdin: Stdin,
    stdout: OutputReader,
    exit: Option<Exit>,
}

impl PortStream {
    /// What the server connected to (the container's full id, the port).
    pub fn forwarded(&self) -> &PortForwarded {
        &self.forwarded
    }

    /// Waits for the call to end: once both directions have ended (close
    /// the writing side first), or the container stopped. `Ok` when it
    /// ended cleanly, the server's error otherwise (`CONFLICT` when the
    /// container stopped first).
    pub async fn finished(&mut self) -> Result<(), ClientError> {
        match self.exit.take() {
            Some(exit) => exit.await.map(|_| ()),
            None => Ok(()),
        }
    }
}

impl AsyncRead for PortStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for PortStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    /// Shuts the connection's write side; reading goes on.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_close(cx)
    }
}

/// The typed items of a subscription.
pub struct Items<T> {
    inner: dockwire_service::Subscription,
    _item: std::marker::PhantomData<fn() -> T>,
}

impl<T> Items<T> {
    /// Asks the server to cancel the call.
    pub async fn abort(&mut self) {
        self.inner.abort().await;
    }
}

impl<T: DeserializeOwned> Stream for Items<T> {
    type Item = Result<T, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|item| item.map(|r| r.and_then(decode)))
    }
}

fn encode(input: &impl serde::Serialize) -> Result<Value, ClientError> {
    serde_json::to_value(input).map_err(|e| {
        ClientError::Remote(CallError::new(
            dockwire_core::ErrorCode::INVALID_INPUT,
            format!("the input cannot be encoded: {e}"),
        ))
    })
}

/// An output that does not match the catalog is the server breaking the
/// protocol.
fn decode<T: DeserializeOwned>(output: Value) -> Result<T, ClientError> {
    serde_json::from_value(output).map_err(|e| {
        ClientError::Remote(CallError::protocol(format!(
            "the output does not match the catalog: {e}"
        )))
    })
}
