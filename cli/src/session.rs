//! Drives a raw session (`run`, `exec`, `attach`) from this process's
//! stdio: stdin in, stdout and stderr out byte for byte, the terminal's
//! size and signals as controls, and the exit code out.

use std::io;

use dockwire_service::{ClientError, Control, RawSession};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::io::ReaderStream;

use crate::{term, writer};

/// How the session meets the local terminal.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Send this process's stdin (`-i`).
    pub stdin: bool,
    /// The remote has a terminal (`-t`): put ours in raw mode (with
    /// `-i`), and send its size and every change of it.
    pub tty: bool,
    /// Forward the signals this process gets to the remote process
    /// (`run` and `attach` without a terminal, as docker's `--sig-proxy`).
    pub sig_proxy: bool,
}

/// Why a session did not give an exit code.
#[derive(Debug)]
pub enum Broken {
    /// The terminal could not be set up.
    Terminal(io::Error),
    /// The call failed.
    Call(ClientError),
    /// This process was told to stop by `signal` (a number), with the
    /// terminal restored and the session aborted.
    Stopped(i32),
}

/// Read size of this process's stdin: a file or a full pipe gives this
/// much per read, each read one hand-off to a blocking thread and back.
const STDIN_READ: usize = 256 * 1024;

/// Runs `session` to its end: its exit code.
pub async fn drive(session: RawSession, plan: Plan) -> Result<i32, Broken> {
    let RawSession {
        stdin,
        stdout,
        stderr,
        control,
        exit,
        ..
    } = session;
    let raw = match plan.tty && plan.stdin && term::is_terminal(io::stdin()) {
        true => Some(term::RawMode::enter().map_err(Broken::Terminal)?),
        false => None,
    };
    let mut tasks = Vec::new();
    if plan.tty {
        tasks.push(tokio::spawn(follow_size(control.clone())));
    }
    if plan.stdin {
        // The call's driver reads it, each read's bytes sent as they are,
        // and closes the session's stdin at its end (or a failed read).
        // A read still blocked when the session ends is left behind, not
        // waited for.
        stdin.feed_from(ReaderStream::with_capacity(tokio::io::stdin(), STDIN_READ));
    } else {
        drop(stdin);
    }
    let outputs = async {
        let (out, err) = tokio::join!(
            writer::write_out(stdout, io::stdout()),
            writer::write_out(stderr, io::stderr())
        );
        out.and(err)
    };
    let ended = tokio::select! {
        ended = async {
            outputs.await.map_err(|e| Broken::Call(call_error(e)))?;
            exit.await.map_err(Broken::Call)
        } => ended,
        signal = signals(control.clone(), plan.sig_proxy, raw.is_some()) => {
            let mut control = control;
            let _ = control.abort().await;
            Err(Broken::Stopped(signal))
        }
    };
    for task in tasks {
        task.abort();
    }
    drop(raw);
    ended
}

/// The call's own error, when a failed read of its output carries one
/// (not wrapped again: the person would read "the connection failed"
/// twice); an error of this side's stdout otherwise.
fn call_error(e: io::Error) -> ClientError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ClientError>())
    {
        Some(call) => call.clone(),
        None => ClientError::Io(e.into()),
    }
}

/// Sends the terminal's size now and at every change.
async fn follow_size(mut control: Control) {
    let Ok(mut changes) = signal(SignalKind::window_change()) else {
        return;
    };
    loop {
        if let Some((cols, rows)) = term::size() {
            if control.resize(cols, rows).await.is_err() {
                return;
            }
        }
        if changes.recv().await.is_none() {
            return;
        }
    }
}

/// The signals this process handles during a session, as (kind, name,
/// number).
fn handled() -> [(SignalKind, &'static str, i32); 6] {
    [
        (SignalKind::interrupt(), "INT", 2),
        (SignalKind::terminate(), "TERM", 15),
        (SignalKind::hangup(), "HUP", 1),
        (SignalKind::quit(), "QUIT", 3),
        (SignalKind::user_defined1(), "USR1", 10),
        (SignalKind::user_defined2(), "USR2", 12),
    ]
}

/// With `forward`, every handled signal this process gets is sent to the
/// remote process, and this never resolves (as docker's `--sig-proxy`).
/// With `stop`, the first INT, TERM or HUP resolves to its number, so that
/// the session ends with the terminal restored (a raw terminal does not
/// raise INT from Ctrl-C: that is a byte for the remote). With neither,
/// nothing is installed and the defaults apply.
async fn signals(mut control: Control, forward: bool, stop: bool) -> i32 {
    if !forward && !stop {
        return std::future::pending().await;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    for (kind, name, number) in handled() {
        if !forward && !matches!(name, "INT" | "TERM" | "HUP") {
            continue;
        }
        let Ok(mut stream) = signal(kind) else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if tx.send((name, number)).await.is_err() {
                    return;
                }
            }
        });
    }
    while let Some((name, number)) = rx.recv().await {
        if !forward {
            return number;
        }
        if control.signal(name).await.is_err() {
            break;
        }
    }
    std::future::pending().await
}
