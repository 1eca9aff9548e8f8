//! Typed handlers made into the service layer's [`Reply`]: the input is
//! parsed (a bad one refuses the call with `INVALID_INPUT`), the output
//! checked against the operation's declared type and encoded, and every
//! future and stream polled and dropped inside a tokio runtime, which
//! bollard needs.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_compat::Compat;
use dockwire_core::{CallError, ErrorCode};
use dockwire_service::{RawIo, Reply};
use futures::future::{self, Either};
use futures::stream::{self, BoxStream};
use futures::{FutureExt, Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::catalog::{Query, RawOperation, Subscription};
use crate::error::invalid_input;

/// A json operation answering once, with `I::Output`.
pub(crate) fn query<I, F, Fut>(input: Value, handler: F) -> Reply
where
    I: Query + DeserializeOwned,
    I::Output: Serialize,
    F: FnOnce(I) -> Fut,
    Fut: Future<Output = Result<I::Output, CallError>> + Send + 'static,
{
    parsed(input, |input| {
        let answer = handler(input);
        let output = stream::once(async move { to_value(answer.await?) });
        Reply::Json(InRuntime::new(output).boxed())
    })
}

/// A json operation answering a stream of `I::Item`s.
pub(crate) fn subscription<I, F, S>(input: Value, handler: F) -> Reply
where
    I: Subscription + DeserializeOwned,
    I::Item: Serialize,
    F: FnOnce(I) -> S,
    S: Stream<Item = Result<I::Item, CallError>> + Send + 'static,
{
    parsed(input, |input| {
        let items = handler(input).map(|item| to_value(item?));
        Reply::Json(InRuntime::new(items).boxed())
    })
}

/// A raw-carriage operation, resolving to its exit code.
pub(crate) fn raw<I, F, Fut>(input: Value, handler: F) -> Reply
where
    I: RawOperation + DeserializeOwned + Send + 'static,
    F: FnOnce(I, RawIo) -> Fut + Send + 'static,
    Fut: Future<Output = Result<i32, CallError>> + Send + 'static,
{
    parsed(input, |input| {
        Reply::Raw(Box::new(move |io| Compat::new(handler(input, io)).boxed()))
    })
}

/// A stream that first sets up (one fallible step), then yields what the
/// setup made; a failed setup is the stream's one item.
pub(crate) fn one_then_many<S, T>(
    setup: impl Future<Output = Result<S, CallError>> + Send + 'static,
) -> impl Stream<Item = Result<T, CallError>> + Send + 'static
where
    S: Stream<Item = Result<T, CallError>> + Send + 'static,
    T: Send + 'static,
{
    stream::once(setup)
        .map(|made| match made {
            Ok(items) => Either::Left(items),
            Err(e) => Either::Right(stream::once(future::ready(Err(e)))),
        })
        .flatten()
}

/// The reply `reply` makes of the parsed input, or a refusal with
/// `INVALID_INPUT` when the input does not parse.
fn parsed<I: DeserializeOwned>(input: Value, reply: impl FnOnce(I) -> Reply) -> Reply {
    match serde_json::from_value(input) {
        Ok(input) => reply(input),
        Err(e) => Reply::Refuse(invalid_input(format!("invalid input: {e}"))),
    }
}

fn to_value(output: impl Serialize) -> Result<Value, CallError> {
    serde_json::to_value(output).map_err(|e| {
        CallError::new(
            ErrorCode::INTERNAL,
            format!("cannot encode the output: {e}"),
        )
    })
}

/// A stream polled and dropped inside a tokio runtime: the caller's when
/// there is one, async-compat's otherwise (async-compat's `Compat` does this
/// for futures, not streams).
struct InRuntime {
    runtime: tokio::runtime::Handle,
    items: Option<BoxStream<'static, Result<Value, CallError>>>,
}

impl InRuntime {
    fn new(items: impl Stream<Item = Result<Value, CallError>> + Send + 'static) -> Self {
        // Compat polls in the current runtime or its own: ask it which.
        let runtime = Compat::new(async { tokio::runtime::Handle::current() })
            .now_or_never()
            .expect("an async block without awaits is ready at once");
        InRuntime {
            runtime,
            items: Some(items.boxed()),
        }
    }
}

impl Stream for InRuntime {
    type Item = Result<Value, CallError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let _entered = self.runtime.enter();
        match self.items.as_mut() {
            Some(items) => items.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    }
}

impl Drop for InRuntime {
    fn drop(&mut self) {
        // Guards in the stream spawn their cleanups on the current runtime.
        let _entered = self.runtime.enter();
        self.items = None;
    }
}
