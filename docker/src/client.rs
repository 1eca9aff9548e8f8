//! A typed client of the catalog over any dockwire [`Client`].

use std::pin::Pin;
use std::task::{Context, Poll};

use dockwire_core::CallError;
use dockwire_service::{Client, ClientError, RawSession};
use futures::Stream;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::catalog::{Query, RawOperation, Subscription};

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
