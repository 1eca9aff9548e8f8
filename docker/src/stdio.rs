//! A session's stdio between the engine and the call: the raw carriage's
//! two-way bridge (stdin, resize and signal in; stdout and stderr out) and
//! the json carriage's output items. Exec, attach and run share them; each
//! says where its resize and signal go ([`Controls`]).

use std::future::Future;
use std::pin::Pin;

use bollard::container::LogOutput;
use bollard::errors::Error as EngineError;
use bytes::Bytes;
use dockwire_core::{CallError, ServerEvent};
use dockwire_service::{RawInput, RawOutput};
use futures::future::{self, Either};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::catalog::{Data, ExecItem, StreamName};
use crate::error;

/// A session's stdin bytes until the caller closes it: the body of an
/// upload (an archive, a build's context). A session that ends without
/// closing stdin ends it there too, so the engine gets a cut body and
/// refuses it: nothing half-sent is taken as whole.
pub(crate) fn stdin_until_closed(input: RawInput) -> impl Stream<Item = Bytes> + Send {
    input
        .take_while(|item| future::ready(*item != ServerEvent::StdinClosed))
        .filter_map(|item| {
            future::ready(match item {
                ServerEvent::Stdin(bytes) => Some(bytes),
                _ => None,
            })
        })
}

/// A session's output, as the engine sends it.
pub(crate) type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, EngineError>> + Send>>;
/// A session's stdin, towards the engine.
pub(crate) type Stdin = Pin<Box<dyn AsyncWrite + Send>>;

/// Where a session's resize and signal controls go.
pub(crate) trait Controls {
    /// Resizes the session's terminal; a failure is logged.
    fn resize(&self, cols: u16, rows: u16) -> impl Future<Output = ()> + Send;
    /// Delivers the signal `name`; an unknown or undeliverable one is
    /// logged and dropped.
    fn signal(&self, name: &str) -> impl Future<Output = ()> + Send;
}

/// Moves a session's bytes both ways until the output ends: stdin,
/// resize and signal from the client to the engine, stdout and stderr
/// back. Closing stdin is an in-band `^D` on a terminal (a shutdown would
/// cut the whole stream there) and a shutdown of the write half otherwise.
pub(crate) async fn bridge(
    mut output: Output,
    mut stdin: Stdin,
    mut input: RawInput,
    out: &mut RawOutput,
    tty: bool,
    controls: &impl Controls,
) -> Result<(), CallError> {
    let forward_out = async {
        while let Some(item) = output.next().await {
            let (stream, bytes) = split_output(item.map_err(error::container)?);
            match stream {
                StreamName::Stdout => out.stdout(bytes).await?,
                StreamName::Stderr => out.stderr(bytes).await?,
            }
        }
        Ok::<(), CallError>(())
    };
    let forward_in = async {
        let mut open = true;
        while let Some(item) = input.next().await {
            match item {
                // Writes fail once the process has closed its stdin or
                // exited; the rest of the input has nowhere to go.
                ServerEvent::Stdin(bytes) if open => open = stdin.write_all(&bytes).await.is_ok(),
                ServerEvent::Stdin(_) => {}
                ServerEvent::StdinClosed if tty => {
                    let _ = stdin.write_all(b"\x04").await;
                }
                ServerEvent::StdinClosed => {
                    let _ = stdin.shutdown().await;
                    open = false;
                }
                ServerEvent::Resize { cols, rows } => controls.resize(cols, rows).await,
                ServerEvent::Signal(name) => controls.signal(&name).await,
                // The request, an abort or an error never reach a handler.
                _ => {}
            }
        }
        future::pending::<()>().await
    };
    futures::pin_mut!(forward_out, forward_in);
    match future::select(forward_out, forward_in).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => Ok(()),
    }
}

/// The json carriage's items of an exec or a run: its output, then what
/// `exit` resolves to. The engine connection's write half is kept, unused,
/// until the output ends, so the connection is only taken down with it.
pub(crate) fn items(
    output: Output,
    stdin: Stdin,
    exit: impl Future<Output = Result<ExecItem, CallError>> + Send + 'static,
) -> impl Stream<Item = Result<ExecItem, CallError>> + Send + 'static {
    output
        .map(move |item| {
            let _held = &stdin;
            item.map(output_item).map_err(error::container)
        })
        .chain(futures::stream::once(exit))
}

fn output_item(output: LogOutput) -> ExecItem {
    let (stream, bytes) = split_output(output);
    ExecItem::Output {
        stream,
        data: Data::from_bytes(&bytes),
    }
}

/// Which stream a piece of engine output belongs to (a TTY's output, and
/// stdin echoed back, count as stdout), and its bytes.
pub(crate) fn split_output(output: LogOutput) -> (StreamName, Bytes) {
    match output {
        LogOutput::StdErr { message } => (StreamName::Stderr, message),
        LogOutput::StdOut { message }
        | LogOutput::Console { message }
        | LogOutput::StdIn { message } => (StreamName::Stdout, message),
    }
}

/// An engine's exit code as a raw call's: one that does not fit is
/// `i32::MAX`.
pub(crate) fn exit_code_i32(code: i64) -> i32 {
    i32::try_from(code).unwrap_or(i32::MAX)
}
