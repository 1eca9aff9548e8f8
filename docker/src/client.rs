//! A typed client of the catalog over any dockwire [`Client`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use dockwire_core::CallError;
use dockwire_service::{Client, ClientError, Exit, OutputReader, RawSession, Stdin};
use futures::{AsyncRead, AsyncWrite, Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::future::Future;

use crate::catalog::{
    PortForward, PortForwarded, ProcessAttach, ProcessAttached, ProcessLogItem, ProcessLogs, Query,
    RawOperation, StreamName, Subscription,
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
