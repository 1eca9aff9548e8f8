//! Drives a raw session (`run`, `exec`, `attach`) from this process's
//! stdio: stdin in, stdout and stderr out byte for byte, the terminal's
//! size and signals as controls, and the exit code out.

use std::future::Future;
use std::io::{self, Write};
use std::time::Duration;

use dockwire_docker::catalog::StreamName;
use dockwire_docker::{DockerClient, SessionControl, resume_session};
use dockwire_service::{ClientError, Control, RawSession};
use futures::StreamExt;
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

/// The longest one dial may take.
const DIAL_FOR: Duration = Duration::from_secs(2);

/// Runs an interactive exec's or run's accepted `session` as one that survives a
/// lost connection (see [`resume_session`]): when its connection dies, it says so on
/// stderr, dials again with `redial` (0.2 s, 0.4 s, … up to 1 s apart,
/// each dial up to [`DIAL_FOR`], giving up once `reconnect_for` has
/// passed since the loss was noticed: `exec --reconnect-for`, 6 s by
/// default, long enough for a link back within seconds, short enough
/// that a crashed server ends the command soon, as it did before
/// sessions),
/// resumes at the
/// offsets it wrote out and goes on, each byte once; a `-it` terminal
/// stays raw throughout. INT, TERM or HUP abort the session (the server
/// kills its process at once) and end it with the terminal restored;
/// with `plan.sig_proxy` (`run -i` without a terminal) every handled
/// signal goes to the process instead, as docker's `--sig-proxy`.
pub async fn drive_resumable<R, F>(
    session: RawSession,
    docker: &DockerClient,
    redial: R,
    plan: Plan,
    reconnect_for: Duration,
) -> Result<i32, Broken>
where
    R: Fn() -> F + Clone,
    F: Future<Output = Result<DockerClient, ClientError>>,
{
    let raw = match plan.tty && plan.stdin && term::is_terminal(io::stdin()) {
        true => Some(term::RawMode::enter().map_err(Broken::Terminal)?),
        false => None,
    };
    let (tx, controls) = futures::channel::mpsc::channel(8);
    let mut tasks = Vec::new();
    if plan.tty {
        tasks.push(tokio::spawn(send_sizes(tx.clone())));
    }
    let stopped = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
    match plan.sig_proxy {
        // `run -i` without a terminal: as docker's `--sig-proxy`.
        true => tasks.push(tokio::spawn(forward_signals(tx))),
        false => tasks.push(tokio::spawn(stop_on_signal(tx, stopped.clone()))),
    }
    let first = docker.clone();
    let newline = if raw.is_some() { "\r\n" } else { "\n" };
    let mut since = std::time::Instant::now();
    let connect = |failures: u32| {
        let first = first.clone();
        if failures == 1 {
            since = std::time::Instant::now();
        }
        let since = since;
        let redial = redial.clone();
        async move {
            if failures == 0 {
                return Ok(first);
            }
            if failures == 1 {
                eprint!("dockwire: the connection was lost; reconnecting{newline}");
            }
            // Dials until one answers, or the time to reconnect is over
            // (an error here gives up).
            let mut pause = Duration::from_millis(100 << failures.min(4));
            loop {
                if since.elapsed() > reconnect_for {
                    return Err(ClientError::Connect(std::sync::Arc::new(io::Error::other(
                        "gave up reconnecting",
                    ))));
                }
                tokio::time::sleep(pause).await;
                if let Ok(Ok(client)) = tokio::time::timeout(DIAL_FOR, redial()).await {
                    return Ok(client);
                }
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    };
    let stdin = match plan.stdin {
        true => ReaderStream::with_capacity(tokio::io::stdin(), STDIN_READ).boxed(),
        false => futures::stream::pending().boxed(),
    };
    let (mut out, mut err) = (io::stdout(), io::stderr());
    let ended = resume_session(session, connect, stdin, controls, |stream, bytes| {
        // A reader gone: the rest is dropped, until the process ends.
        let _ = match stream {
            StreamName::Stdout => out.write_all(&bytes).and_then(|()| out.flush()),
            StreamName::Stderr => err.write_all(&bytes).and_then(|()| err.flush()),
        };
    })
    .await;
    for task in tasks {
        task.abort();
    }
    drop(raw);
    match ended {
        Ok(code) => Ok(i32::try_from(code).unwrap_or(i32::MAX)),
        Err(ClientError::Aborted) => match stopped.load(std::sync::atomic::Ordering::SeqCst) {
            0 => Err(Broken::Call(ClientError::Aborted)),
            signal => Err(Broken::Stopped(signal)),
        },
        Err(e) => Err(Broken::Call(e)),
    }
}

/// Sends the terminal's size now and at every change.
async fn send_sizes(mut tx: futures::channel::mpsc::Sender<SessionControl>) {
    use futures::SinkExt;
    let Ok(mut changes) = signal(SignalKind::window_change()) else {
        return;
    };
    loop {
        if let Some((cols, rows)) = term::size() {
            if tx
                .send(SessionControl::Resize { cols, rows })
                .await
                .is_err()
            {
                return;
            }
        }
        if changes.recv().await.is_none() {
            return;
        }
    }
}

/// Sends every handled signal this process gets to the session's
/// process, whichever connection the session is on by then.
async fn forward_signals(mut tx: futures::channel::mpsc::Sender<SessionControl>) {
    use futures::SinkExt;
    let mut streams = Vec::new();
    for (kind, name, _) in handled() {
        if let Ok(stream) = signal(kind) {
            streams.push((stream, name));
        }
    }
    if streams.is_empty() {
        return;
    }
    loop {
        let waits = streams.iter_mut().map(|(stream, name)| {
            let name = *name;
            Box::pin(async move { stream.recv().await.map(|_| name) })
        });
        let (received, _, _) = futures::future::select_all(waits).await;
        let Some(name) = received else { return };
        if tx.send(SessionControl::Signal(name.into())).await.is_err() {
            return;
        }
    }
}

/// At the first INT, TERM or HUP: notes its number and aborts the session.
async fn stop_on_signal(
    mut tx: futures::channel::mpsc::Sender<SessionControl>,
    stopped: std::sync::Arc<std::sync::atomic::AtomicI32>,
) {
    use futures::SinkExt;
    let mut streams = Vec::new();
    for (kind, name, number) in handled() {
        if !matches!(name, "INT" | "TERM" | "HUP") {
            continue;
        }
        if let Ok(stream) = signal(kind) {
            streams.push((stream, number));
        }
    }
    if streams.is_empty() {
        return;
    }
    let waits = streams.iter_mut().map(|(stream, number)| {
        let number = *number;
        Box::pin(async move {
            stream.recv().await;
            number
        })
    });
    let (number, _, _) = futures::future::select_all(waits).await;
    stopped.store(number, std::sync::atomic::Ordering::SeqCst);
    let _ = tx.send(SessionControl::Abort).await;
}
