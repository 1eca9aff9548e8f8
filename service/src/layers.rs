//! Services that wrap a service: [`PeerLimit`] bounds each peer's open
//! calls, [`CallLog`] logs one line per call. Both see a call from its
//! request to the end of its reply (or the reply's drop, when the client
//! went away), through [`watch`].

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use dockwire_core::{CallError, Carriage, ErrorCode, Request};
use futures::{FutureExt, Stream, StreamExt};
use serde_json::Value;

use crate::service::{CallContext, CallLink, Outputs, Reply, Service};

/// The code of a call refused because its peer has too many open
/// (retryable: it may pass once some of them end).
pub const TOO_MANY_CALLS: ErrorCode = ErrorCode::from_static("TOO_MANY_CALLS");

/// How a call ended, as a wrapper of its service saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ended {
    /// Refused before it started.
    Refused(ErrorCode),
    /// A json call's outputs ended (`call.completed`).
    Completed,
    /// A raw call's handler resolved to this exit code.
    Exit(i32),
    /// The handler ended the call with this error.
    Failed(ErrorCode),
    /// The reply was dropped before it ended: the client aborted, reset
    /// its stream or closed its connection.
    Cancelled,
    /// The reply was dropped before it ended because its connection was
    /// lost (its idle timeout passed: a dead link, or a client killed
    /// without a close; see [`CallLink`]).
    Lost,
}

/// Calls `on_end` once, when `reply` ends or is dropped; a dropped reply
/// of a call whose `link` was lost ends [`Ended::Lost`].
pub fn watch(link: &CallLink, reply: Reply, on_end: impl FnOnce(Ended) + Send + 'static) -> Reply {
    let mut end = OnEnd(Some(Box::new(on_end)), link.clone());
    match reply {
        Reply::Refuse(e) => {
            end.fire(Ended::Refused(e.code.clone()));
            Reply::Refuse(e)
        }
        Reply::Json(outputs) => Reply::Json(Watched { outputs, end }.boxed()),
        Reply::Raw(handler) => Reply::Raw(Box::new(move |io| {
            let mut end = end;
            async move {
                let result = handler(io).await;
                end.fire(match &result {
                    Ok(code) => Ended::Exit(*code),
                    Err(e) => Ended::Failed(e.code.clone()),
                });
                result
            }
            .boxed()
        })),
    }
}

/// Refuses a peer's call while it has `max` calls open, with
/// [`TOO_MANY_CALLS`] (retryable).
pub struct PeerLimit<S> {
    inner: S,
    max: usize,
    open: Arc<Mutex<HashMap<Arc<str>, usize>>>,
}

impl<S: Service> PeerLimit<S> {
    /// At most `max` open calls per peer (by its key).
    pub fn new(inner: S, max: usize) -> Self {
        PeerLimit {
            inner,
            max,
            open: Arc::default(),
        }
    }
}

impl<S: Service> Service for PeerLimit<S> {
    fn call(&self, ctx: CallContext, request: Request) -> Reply {
        // Counted by key: a name may pass from one key to another.
        let peer = ctx.key.clone();
        {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            let count = open.entry(peer.clone()).or_default();
            if *count >= self.max {
                return Reply::Refuse(
                    CallError::new(
                        TOO_MANY_CALLS,
                        format!("{} already has {} calls open", ctx.peer, self.max),
                    )
                    .with_retryable(true),
                );
            }
            *count += 1;
        }
        let open = self.open.clone();
        let link = ctx.link.clone();
        watch(&link, self.inner.call(ctx, request), move |_| {
            let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(count) = open.get_mut(&peer) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    open.remove(&peer);
                }
            }
        })
    }
}

/// Logs one `tracing` line per call when it ends (target
/// `dockwire::call`, level INFO; WARN when it failed): the peer's key and
/// name, its address (`-` when the transport has none), the operation, the
/// carriage, the call id, how it ended and how long it took.
pub struct CallLog<S> {
    inner: S,
}

impl<S: Service> CallLog<S> {
    /// Logs the calls of `inner`.
    pub fn new(inner: S) -> Self {
        CallLog { inner }
    }
}

impl<S: Service> Service for CallLog<S> {
    fn call(&self, ctx: CallContext, request: Request) -> Reply {
        let started = Instant::now();
        // Peer-chosen: escaped and cut, so that a line stays one short line.
        let operation = loggable(&request.operation);
        let carriage = match request.carriage {
            Carriage::Json => "json",
            Carriage::Raw => "raw",
        };
        let peer = loggable(&ctx.peer);
        let key = ctx.key.clone();
        let remote = ctx
            .remote
            .map(|a| a.to_string())
            .unwrap_or_else(|| "-".into());
        let call_id = loggable(&ctx.call_id);
        let link = ctx.link.clone();
        watch(&link, self.inner.call(ctx, request), move |ended| {
            let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            let outcome = match &ended {
                Ended::Refused(code) => format!("refused {code}"),
                Ended::Completed => "completed".to_owned(),
                Ended::Exit(code) => format!("exit {code}"),
                Ended::Failed(code) => format!("failed {code}"),
                Ended::Cancelled => "cancelled".to_owned(),
                Ended::Lost => "lost".to_owned(),
            };
            let failed = matches!(ended, Ended::Refused(_) | Ended::Failed(_));
            if failed {
                tracing::warn!(target: "dockwire::call", %key, %peer, %remote, %operation, %carriage, %call_id, %outcome, duration_ms, "call");
            } else {
                tracing::info!(target: "dockwire::call", %key, %peer, %remote, %operation, %carriage, %call_id, %outcome, duration_ms, "call");
            }
        })
    }
}

/// A peer's string for a log line: control characters escaped, at most
/// 128 characters kept.
fn loggable(text: &str) -> String {
    const MAX: usize = 128;
    let mut out: String = text
        .chars()
        .take(MAX)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

type EndFn = Box<dyn FnOnce(Ended) + Send>;

/// Fires once: when first told, or as `Cancelled` when dropped untold.
struct OnEnd(Option<EndFn>, CallLink);

impl OnEnd {
    fn fire(&mut self, ended: Ended) {
        if let Some(f) = self.0.take() {
            f(ended);
        }
    }
}

impl Drop for OnEnd {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(match self.1.is_lost() {
                true => Ended::Lost,
                false => Ended::Cancelled,
            });
        }
    }
}

/// A json reply's outputs, reporting how they ended.
struct Watched {
    outputs: Outputs,
    end: OnEnd,
}

impl Stream for Watched {
    type Item = Result<Value, CallError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = futures::ready!(self.outputs.poll_next_unpin(cx));
        let ended = match &item {
            None => Some(Ended::Completed),
            Some(Err(e)) => Some(Ended::Failed(e.code.clone())),
            Some(Ok(_)) => None,
        };
        if let Some(ended) = ended {
            self.end.fire(ended);
        }
        Poll::Ready(item)
    }
}
