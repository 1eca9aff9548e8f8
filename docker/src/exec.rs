//! `container/exec`, on both carriages: a command in a running container,
//! and the guard that kills its processes if its call ends first.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters as q;
use dockwire_core::CallError;
use dockwire_service::RawIo;
use futures::Stream;
use serde_json::json;

use crate::access::Caller;
use crate::catalog::{DOCKER_ERROR, ExecInput, ExecItem};
use crate::cleanup::spawn_cleanup;
use crate::config::{Config, ExecSignals};
use crate::engine::{Engine, ExecProcess, exec_exit, running_pid, visible_pid};
use crate::error::{self, invalid_input};
use crate::journal;
use crate::reply::one_then_many;
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
    stdio::bridge(exec.output, exec.stdin, input, &mut out, i.tty, &guard).await?;
    let code = exec_exit(&docker, &guard.exec_id).await?;
    guard.disarm();
    Ok(stdio::exit_code_i32(code))
}

struct Exec {
    id: String,
    output: Output,
    stdin: Stdin,
}

/// Creates and starts `i`'s exec, with its guard armed from the moment it
/// exists: a call dropped while the start is in flight still kills what
/// started. A TTY exec is started without a TTY on the wire: the process
/// still gets its terminal, but the output keeps Docker's 8-byte framing,
/// so that bollard never has to guess whether a chunk is framed (it
/// guesses wrong when a TTY chunk starts with 0x01 or 0x02).
async fn start(
    docker: &Docker,
    i: &ExecInput,
    stdin: bool,
    config: &Config,
) -> Result<(Exec, ExecGuard), CallError> {
    if i.cmd.is_empty() {
        return Err(invalid_input("`cmd` is empty"));
    }
    let options = CreateExecOptions {
        attach_stdin: Some(stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(i.tty),
        env: Some(i.env.clone()),
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
        journal::record(dir, &created.id, &i.id);
    }
    let guard = ExecGuard::new(docker, &created.id, config.exec_signals, journal);
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

/// Kills an exec's processes if its call ends before the exec does, and
/// delivers signals to it.
struct ExecGuard {
    docker: Docker,
    exec_id: String,
    signals: ExecSignals,
    /// The exec's process, once learnt from the engine: what the cleanup
    /// kills when the engine cannot tell it any more.
    process: Arc<OnceLock<HostProcess>>,
    /// Where the exec's record is, if the service keeps a journal.
    journal: Option<PathBuf>,
    armed: bool,
}

impl ExecGuard {
    fn new(docker: &Docker, exec_id: &str, signals: ExecSignals, journal: Option<PathBuf>) -> Self {
        ExecGuard {
            docker: docker.clone(),
            exec_id: exec_id.to_owned(),
            signals,
            process: Arc::default(),
            journal,
            armed: true,
        }
    }

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
    fn disarm(mut self) {
        if let Some(dir) = self.journal.take() {
            journal::forget(&dir, &self.exec_id);
        }
        self.armed = false;
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
        if self.signals != ExecSignals::HostPid {
            tracing::warn!(exec = %self.exec_id, signal = name, "exec signals need the engine's host; dropped");
            return;
        }
        match running_pid(&self.docker, &self.exec_id).await {
            Ok(Some(pid)) => signal::send(pid, sig),
            // Ended: nothing to signal.
            Ok(None) => {}
            Err(e) => tracing::warn!(exec = %self.exec_id, "cannot find the exec's pid: {e}"),
        }
    }
}

impl Drop for ExecGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let journal = self.journal.take();
        if self.signals != ExecSignals::HostPid {
            // Nothing a later sweep could do either.
            if let Some(dir) = journal {
                journal::forget(&dir, &self.exec_id);
            }
            return;
        }
        let docker = self.docker.clone();
        let exec_id = std::mem::take(&mut self.exec_id);
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
