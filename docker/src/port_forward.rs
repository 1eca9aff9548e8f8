//! `container/port-forward`, on the raw carriage: one TCP connection to a
//! port inside a running container, made in the container's own network
//! namespace (see [`crate::netns`]), carried both ways with half-closes.

use std::sync::Arc;

use bollard::Docker;
use bytes::BytesMut;
use dockwire_core::{CallError, ServerEvent};
use dockwire_service::{RawInput, RawIo, RawOutput};
use futures::StreamExt;
use futures::future::{self, Either};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::access::Caller;
use crate::catalog::{CONFLICT, PortForward, PortForwarded};
use crate::dialect;
use crate::engine::{Engine, wait_exit};
use crate::error::{self, invalid_input};
use crate::netns::ContainerProcess;
use crate::runtime;

/// One read from the port takes up to this much.
const READ_CAPACITY: usize = 256 * 1024;

/// `container/port-forward`: connects before accepting (a refused port is
/// the call's error), then carries bytes until both directions have ended
/// or the container stops. The exit code is 0.
pub(crate) async fn session(
    engine: Arc<Engine>,
    caller: Caller,
    i: PortForward,
    io: RawIo,
) -> Result<i32, CallError> {
    if i.port == 0 {
        return Err(invalid_input("`port` must be 1 to 65535"));
    }
    let (docker, id) = engine.container(&caller, &i.container).await?;
    let stream = connect(&docker, &id, i.port).await?;
    let (input, mut out) = io.split();
    let accepted = PortForwarded {
        container: id.clone(),
        port: i.port,
    };
    out.accept(serde_json::to_value(accepted).expect("a struct of a string and a number"))
        .await?;
    let carried = carry(stream, input, &mut out);
    let stopped = wait_exit(&docker, &id);
    futures::pin_mut!(carried, stopped);
    match future::select(carried, stopped).await {
        Either::Left((result, _)) => result.map(|()| 0),
        // The engine could not be asked: the connection carries on alone.
        Either::Right((Err(e), carried)) => {
            tracing::debug!(container = %id, "cannot watch the container for its stop: {e}");
            carried.await.map(|()| 0)
        }
        Either::Right((Ok(_), _)) => Err(CallError::new(
            CONFLICT,
            format!("container {id} has stopped: the forwarded connection is closed"),
        )),
    }
}

/// A connection to `127.0.0.1:port` in running container `id`'s network
/// namespace.
async fn connect(docker: &Docker, id: &str, port: u16) -> Result<TcpStream, CallError> {
    let (pid, gvisor) = running_process(docker, id).await?;
    let netns = ContainerProcess::visible(pid, gvisor)?.open_network()?;
    // The namespace is held open: if the pid is still the container's
    // now, it was when it was opened.
    if running_process(docker, id).await?.0 != pid {
        return Err(CallError::new(
            CONFLICT,
            format!("container {id} restarted while its network was being entered"),
        ));
    }
    let stream = netns.connect_loopback(port).await?;
    TcpStream::from_std(stream).map_err(|e| {
        CallError::new(
            dockwire_core::ErrorCode::INTERNAL,
            format!("cannot register the forwarded connection: {e}"),
        )
    })
}

/// The host pid of running container `id`'s process, and whether it runs
/// in gVisor. Stopped or paused: `CONFLICT`.
async fn running_process(docker: &Docker, id: &str) -> Result<(i64, bool), CallError> {
    let info = dialect::inspect_container(docker, id)
        .await
        .map_err(error::container)?;
    let gvisor =
        runtime::is_gvisor(docker, info.host_config.and_then(|h| h.runtime).as_deref()).await;
    let state = info.state.unwrap_or_default();
    if state.paused == Some(true) {
        return Err(CallError::new(
            CONFLICT,
            format!("container {id} is paused: unpause it to forward a port"),
        ));
    }
    match state.pid.filter(|p| *p > 0) {
        Some(pid) if state.running == Some(true) => Ok((pid, gvisor)),
        _ => Err(CallError::new(
            CONFLICT,
            format!("container {id} is not running"),
        )),
    }
}

/// Carries the connection until both directions have ended: the port's
/// bytes to stdout, then the drained sentinel at its end of file; stdin to
/// the port, then a shutdown of the write side when stdin closes. A reset
/// connection is the call's error.
async fn carry(stream: TcpStream, input: RawInput, out: &mut RawOutput) -> Result<(), CallError> {
    let (from_port, to_port) = stream.into_split();
    future::try_join(
        port_to_stdout(from_port, out),
        stdin_to_port(input, to_port),
    )
    .await
    .map(|_| ())
}

async fn port_to_stdout(mut port: OwnedReadHalf, out: &mut RawOutput) -> Result<(), CallError> {
    let mut buf = BytesMut::with_capacity(READ_CAPACITY);
    loop {
        buf.reserve(READ_CAPACITY);
        let n = port.read_buf(&mut buf).await.map_err(connection_lost)?;
        if n == 0 {
            out.drained().await?;
            return Ok(());
        }
        out.stdout(buf.split().freeze()).await?;
    }
}

async fn stdin_to_port(mut input: RawInput, mut port: OwnedWriteHalf) -> Result<(), CallError> {
    while let Some(event) = input.next().await {
        match event {
            ServerEvent::Stdin(bytes) => port.write_all(&bytes).await.map_err(connection_lost)?,
            ServerEvent::StdinClosed => {
                // The port may have closed already: nothing to shut then.
                let _ = port.shutdown().await;
                return Ok(());
            }
            // A forwarded connection has no terminal and no process.
            _ => {}
        }
    }
    // The call is ending: its driver dropped the input.
    Ok(())
}

fn connection_lost(e: std::io::Error) -> CallError {
    CallError::new(
        dockwire_core::ErrorCode::UNAVAILABLE,
        format!("the forwarded connection was lost: {e}"),
    )
}
