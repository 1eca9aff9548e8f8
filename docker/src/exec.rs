//! `container/exec`, on both carriages: a command in a running container,
//! and the guard that kills its processes if its call ends first.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters as q;
use dockwire_core::{CallError, ErrorCode};
use dockwire_service::RawIo;
use futures::Stream;
use futures::future::BoxFuture;
use serde_json::json;

use crate::access::Caller;
use crate::catalog::{DOCKER_ERROR, ExecInput, ExecItem};
use crate::cleanup::spawn_cleanup;
use crate::config::{Config, ExecSignals};
use crate::engine::{Engine, ExecProcess, exec_exit, running_exec, running_pid, visible_pid};
use crate::error::{self, invalid_input};
use crate::exec_signal::{self, MARKER_VAR, Marker, Reach};
use crate::journal;
use crate::processes::ProcessControl;
use crate::reply::one_then_many;
use crate::runtime;
use crate::signal::{self, HostProcess};
use crate::stdio::{self, Controls, Output, Stdin};

/// The read buffer of an exec's output: one read takes up to this much
/// (bollard's default is 8 KiB, which costs throughput).
const OUTPUT_CAPACITY: usize = 256 * 1024;

/// The pauses before each time a started exec's pid is asked for, in the
/// background, by every exec: gently. The engine reports it some tens of
/// milliseconds after the start.
const LEARN_PAUSES_MS: [u64; 7] = [25, 25, 50, 100, 200, 400, 800];

/// `container/exec` on the json carriage: output items, then the exit code.
pub(crate) fn items(
    engine: Arc<Engine>,
    caller: Caller,
    mut i: ExecInput,
) -> impl Stream<Item = Result<ExecItem, CallError>> + Send + 'static {
    let setup = async move {
        if i.stdin {
            return Err(invalid_input("stdin needs the raw carriage"));
        }
        let (docker, id) = engine.container(&caller, &i.id).await?;
        i.id = id;
        let (exec, guard) = start(&docker, &i, false, &engine.config).await?;
        let exit = async move {
            let exit_code = exec_exit(&docker, &guard.exec_id).await?;
            guard.disarm();
            Ok(ExecItem::Exit {
                exit_code,
                terminal: true,
            })
        };
        Ok(stdio::items(exec.output, exec.stdin, exit))
    };
    one_then_many(setup)
}

/// `container/exec` on the raw carriage.
pub(crate) async fn session(
    engine: Arc<Engine>,
    caller: Caller,
    mut i: ExecInput,
    io: RawIo,
) -> Result<i32, CallError> {
    let (docker, id) = engine.container(&caller, &i.id).await?;
    i.id = id;
    let (exec, guard) = start(&docker, &i, i.stdin, &engine.config).await?;
    let (input, mut out) = io.split();
    out.accept(json!({"execId": exec.id, "tty": i.tty})).await?;
    let bridged = stdio::bridge(exec.output, exec.stdin, input, &mut out, i.tty, &guard).await;
    if let Err(e) = bridged {
        // Podman resets an exec's connection when stdin is written after
        // its process ended: the exec's own end, its code the engine's.
        if e.code != ErrorCode::UNAVAILABLE || !exec_ended(&docker, &guard.exec_id).await {
            return Err(e);
        }
    }
    let code = exec_exit(&docker, &guard.exec_id).await?;
    guard.disarm();
    Ok(stdio::exit_code_i32(code))
}

/// Whether the engine reports exec `exec_id` ended, with an exit code,
/// within a few seconds (the reset can come before the engine's state).
async fn exec_ended(docker: &Docker, exec_id: &str) -> bool {
    for _ in 0..100 {
        match docker.inspect_exec(exec_id).await {
            Ok(info) if info.running == Some(false) && info.exit_code.is_some() => return true,
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => return false,
        }
    }
    false
}

pub(crate) struct Exec {
    pub(crate) id: String,
    pub(crate) output: Output,
    pub(crate) stdin: Stdin,
}

/// Creates and starts `i`'s exec, with its guard armed from the moment it
/// exists: a call dropped while the start is in flight still kills what
/// started. A TTY exec is started without a TTY on the wire: the process
/// still gets its terminal, but the output keeps Docker's 8-byte framing,
/// so that bollard never has to guess whether a chunk is framed (it
/// guesses wrong when a TTY chunk starts with 0x01 or 0x02).
pub(crate) async fn start(
    docker: &Docker,
    i: &ExecInput,
    stdin: bool,
    config: &Config,
) -> Result<(Exec, ExecGuard), CallError> {
    if i.cmd.is_empty() {
        return Err(invalid_input("`cmd` is empty"));
    }
    // A gVisor container's execs are signalled through the engine.
    let signals = runtime::exec_signals(docker, &i.id, config.exec_signals).await;
    let (env, marker) = marked_env(&i.env, signals)?;
    let options = CreateExecOptions {
        attach_stdin: Some(stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(i.tty),
        env: Some(env),
        cmd: Some(i.cmd.clone()),
        user: i.user.clone(),
        working_dir: i.workdir.clone(),
        ..Default::default()
    };
    let created = docker
        .create_exec(&i.id, options)
        .await
        .map_err(error::container)?;
    // Before the start: a crash from here on may leave its process.
    let journal = config.exec_journal.clone();
    if let Some(dir) = &journal {
        journal::record(dir, &created.id, &i.id, marker.as_ref());
    }
    let guard = ExecGuard {
        docker: docker.clone(),
        exec_id: created.id.clone(),
        container: i.id.clone(),
        user: i.user.clone(),
        signals,
        marker,
        process: Arc::default(),
        journal,
        armed: AtomicBool::new(true),
    };
    let start = StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: Some(OUTPUT_CAPACITY),
    };
    match docker
        .start_exec(&created.id, Some(start))
        .await
        .map_err(error::container)?
    {
        StartExecResults::Attached { output, input } => {
            guard.learn_process();
            Ok((
                Exec {
                    id: created.id,
                    output,
                    stdin: input,
                },
                guard,
            ))
        }
        StartExecResults::Detached => Err(CallError::new(
            DOCKER_ERROR,
            "the engine started the exec detached",
        )),
    }
}

/// The exec's environment as the engine gets it: the caller's `env`, and
/// with [`ExecSignals::Engine`] a fresh marker's entry last (see
/// [`crate::exec_signal`]). A caller's `env` may not name the marker's
/// variable, in any mode: it is the server's.
fn marked_env(
    env: &[String],
    signals: ExecSignals,
) -> Result<(Vec<String>, Option<Marker>), CallError> {
    if exec_signal::names_marker(env) {
        return Err(invalid_input(format!(
            "`env` may not set {MARKER_VAR}: the server marks its execs with it"
        )));
    }
    let mut env = env.to_vec();
    let marker = (signals == ExecSignals::Engine).then(Marker::generate);
    if let Some(marker) = &marker {
        env.push(marker.env_entry());
    }
    Ok((env, marker))
}

/// Kills an exec's processes if its call ends before the exec does, and
/// delivers signals to it.
pub(crate) struct ExecGuard {
    docker: Docker,
    pub(crate) exec_id: String,
    /// The exec's container (its id) and user, as the exec was created:
    /// where and as whom signals through the engine run.
    container: String,
    user: Option<String>,
    signals: ExecSignals,
    /// The exec's marker, with [`ExecSignals::Engine`].
    marker: Option<Marker>,
    /// The exec's process, once learnt from the engine: what the cleanup
    /// kills when the engine cannot tell it any more.
    process: Arc<OnceLock<HostProcess>>,
    /// Where the exec's record is, if the service keeps a journal.
    journal: Option<PathBuf>,
    armed: AtomicBool,
}

impl ExecGuard {
    /// Learns the started exec's host process in the background, while
    /// the engine answers. An engine that goes away mid-call may leave the
    /// process running (a crash, or a restart with live restore) and, once
    /// back, no longer knows the exec: the cleanup then has only this.
    fn learn_process(&self) {
        if self.signals != ExecSignals::HostPid {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let docker = self.docker.clone();
        let exec_id = self.exec_id.clone();
        let process = self.process.clone();
        drop(runtime.spawn(async move {
            for pause in LEARN_PAUSES_MS {
                tokio::time::sleep(Duration::from_millis(pause)).await;
                let Ok(info) = docker.inspect_exec(&exec_id).await else {
                    return;
                };
                match ExecProcess::of(&info) {
                    ExecProcess::Starting => {}
                    ExecProcess::Running(pid) => {
                        let Some(pid) = visible_pid(&docker, &info, pid).await else {
                            return;
                        };
                        if let Some(found) = HostProcess::of(pid) {
                            let _ = process.set(found);
                        }
                        return;
                    }
                    ExecProcess::Ended => return,
                }
            }
        }));
    }

    /// The exec has ended and its call has its code: nothing to clean up.
    pub(crate) fn disarm(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            if let Some(dir) = &self.journal {
                journal::forget(dir, &self.exec_id);
            }
        }
    }
}

impl Controls for ExecGuard {
    async fn resize(&self, cols: u16, rows: u16) {
        let size = q::ResizeExecOptions {
            w: i32::from(cols),
            h: i32::from(rows),
        };
        if let Err(e) = self.docker.resize_exec(&self.exec_id, size).await {
            tracing::warn!("resize to {cols}x{rows} failed: {e}");
        }
    }

    async fn signal(&self, name: &str) {
        let Some(sig) = signal::parse(name) else {
            tracing::warn!(exec = %self.exec_id, signal = name, "unknown signal, dropped");
            return;
        };
        if let Some(marker) = &self.marker {
            self.signal_through_engine(marker, sig.as_raw()).await;
            return;
        }
        match running_pid(&self.docker, &self.exec_id).await {
            Ok(Some(pid)) => signal::send(pid, sig),
            // Ended (or not visible here, logged): nothing to signal.
            Ok(None) => {}
            Err(e) => tracing::warn!(exec = %self.exec_id, "cannot find the exec's pid: {e}"),
        }
    }
}

impl ExecGuard {
    /// Signals the exec's top process through the engine, once it runs.
    async fn signal_through_engine(&self, marker: &Marker, number: i32) {
        match running_exec(&self.docker, &self.exec_id).await {
            Ok(Some(_)) => {}
            // Ended: nothing to signal.
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(exec = %self.exec_id, "cannot inspect the exec to signal it: {e}");
                return;
            }
        }
        let user = self.user.as_deref();
        match exec_signal::send(
            &self.docker,
            &self.container,
            user,
            marker,
            Reach::Top(number),
        )
        .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(exec = %self.exec_id, "no process to signal: it has ended")
            }
            Err(e) => tracing::warn!(
                exec = %self.exec_id,
                signal = number,
                "cannot signal the exec through the engine: {e}"
            ),
        }
    }
}

impl Drop for ExecGuard {
    fn drop(&mut self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.kill_all();
        }
    }
}

impl ExecGuard {
    /// Kills the exec's processes (all it started) in the background, and
    /// forgets its record once done.
    fn kill_all(&self) {
        let journal = self.journal.clone();
        let docker = self.docker.clone();
        let exec_id = self.exec_id.clone();
        if let Some(marker) = self.marker.clone() {
            let container = self.container.clone();
            let user = self.user.clone();
            spawn_cleanup(async move {
                // Every process carrying the marker, the exec's top one
                // ended or not: what it started lives on otherwise.
                let sent = exec_signal::send(
                    &docker,
                    &container,
                    user.as_deref(),
                    &marker,
                    Reach::KillAll,
                )
                .await;
                if let Err(e) = sent {
                    tracing::warn!(
                        exec = %exec_id,
                        "cannot kill a cancelled exec's processes through the engine: {e}"
                    );
                }
                if let Some(dir) = journal {
                    journal::forget(&dir, &exec_id);
                }
            });
            return;
        }
        if self.signals != ExecSignals::HostPid {
            // No marker to find its processes by.
            if let Some(dir) = journal {
                journal::forget(&dir, &exec_id);
            }
            return;
        }
        let process = self.process.clone();
        spawn_cleanup(async move {
            match running_pid(&docker, &exec_id).await {
                Ok(Some(pid)) => signal::kill_tree(pid),
                Ok(None) => {}
                // The engine is unreachable, or forgot the exec in a
                // restart: the process learnt at the start, if it still
                // runs (not a later one with its pid).
                Err(_) => {
                    if let Some(known) = process.get().filter(|p| p.runs()) {
                        signal::kill_tree(known.pid);
                    }
                }
            }
            if let Some(dir) = journal {
                journal::forget(&dir, &exec_id);
            }
        });
    }
}

/// A detached process's exec, as `process/*` reaches it.
impl ProcessControl for ExecGuard {
    fn signal<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(Controls::signal(self, name))
    }

    fn resize(&self, cols: u16, rows: u16) -> BoxFuture<'_, ()> {
        Box::pin(Controls::resize(self, cols, rows))
    }

    fn kill(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.kill_all();
        }
    }

    fn ended(&self) {
        self.disarm();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|e| (*e).to_owned()).collect()
    }

    #[test]
    fn through_the_engine_an_exec_gets_a_fresh_marker_last() {
        let caller = env(&["A=1", "B=2"]);
        let (first, marker) = marked_env(&caller, ExecSignals::Engine).unwrap();
        let marker = marker.expect("a marker");
        assert_eq!(first, env(&["A=1", "B=2", &marker.env_entry()]));
        let (_, other) = marked_env(&caller, ExecSignals::Engine).unwrap();
        assert_ne!(other, Some(marker), "one marker per exec");
    }

    #[test]
    fn by_host_pid_an_exec_gets_the_callers_env_alone() {
        let caller = env(&["A=1"]);
        assert_eq!(
            marked_env(&caller, ExecSignals::HostPid).unwrap(),
            (caller, None)
        );
    }

    #[test]
    fn a_callers_env_naming_the_marker_is_refused_in_either_mode() {
        for signals in [ExecSignals::Engine, ExecSignals::HostPid] {
            for entry in [
                "DOCKWIRE_EXEC=0123456789abcdef0123456789abcdef",
                "DOCKWIRE_EXEC",
            ] {
                let refused = marked_env(&env(&["A=1", entry]), signals).unwrap_err();
                assert_eq!(refused.code, dockwire_core::ErrorCode::INVALID_INPUT);
                assert!(
                    refused.message.contains("DOCKWIRE_EXEC"),
                    "{}",
                    refused.message
                );
            }
        }
    }
}
