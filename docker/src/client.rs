//! A typed client of the catalog over any dockwire [`Client`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use dockwire_core::CallError;
use dockwire_service::{Client, ClientError, Exit, OutputReader, RawSession, Stdin};
use futures::{AsyncRead, AsyncWrite, Stream};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::catalog::{
    PortForward, PortForwarded, ProcessAttach, ProcessAttached, Query, RawOperation, Subscription,
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
