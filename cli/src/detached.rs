//! Detached processes: `dockwire exec -d` and `dockwire process ls |
//! attach | logs | wait | kill | rm` (the server's `process/*`). An
//! unknown id (or another peer's) fails with the server's `No such
//! process: ID` and exit 1; `attach` and `wait` exit with the process's
//! exit code.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use dockwire_docker::catalog::*;
use dockwire_docker::{DockerClient, follow_process};
use dockwire_service::ClientError;
use futures::StreamExt;

use crate::Global;
use crate::error::{Context, EXIT_ATTACH_LOST, Failure, Outcome};
use crate::host;
use crate::process::{check_tty, finish};
use crate::session::Plan;

/// `dockwire process …`.
#[derive(Subcommand, Debug)]
pub enum ProcessCommand {
    /// List detached processes
    #[command(visible_alias = "list")]
    Ls(Ls),
    /// Attach to a detached process: its kept output, then live
    Attach(Attach),
    /// Print a detached process's kept output
    Logs(Logs),
    /// Wait for a detached process to end; exit with its code
    Wait(One),
    /// Signal a detached process (SIGKILL by default)
    Kill(Kill),
    /// Forget detached processes, killing those still running
    #[command(visible_alias = "remove")]
    Rm(Many),
}

/// `process ls`.
#[derive(Args, Debug)]
pub struct Ls {
    /// Only display process ids
    #[arg(short, long)]
    quiet: bool,
}

/// `process attach`.
#[derive(Args, Debug)]
pub struct Attach {
    /// Replay from the first byte (says how many are gone if the buffer
    /// dropped some)
    #[arg(long, conflicts_with = "from")]
    from_start: bool,
    /// Replay from this offset of each stream
    #[arg(long, value_name = "OFFSET")]
    from: Option<u64>,
    /// Hold the process's stdin and send this one's (the process must
    /// have been started with `exec -d -i`)
    #[arg(short, long)]
    interactive: bool,
    /// The process's id
    id: String,
}

/// `process logs`.
#[derive(Args, Debug)]
pub struct Logs {
    /// Follow the output until the process ends
    #[arg(short, long)]
    follow: bool,
    /// The process's id
    id: String,
}

/// One process.
#[derive(Args, Debug)]
pub struct One {
    /// The process's id
    id: String,
}

/// `process kill`.
#[derive(Args, Debug)]
pub struct Kill {
    /// Signal to send (name or number)
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    /// The processes' ids
    #[arg(required = true, value_name = "ID")]
    ids: Vec<String>,
}

/// Processes.
#[derive(Args, Debug)]
pub struct Many {
    /// The processes' ids
    #[arg(required = true, value_name = "ID")]
    ids: Vec<String>,
}

/// `exec -d`: starts the command detached and prints its id.
pub async fn exec_detached(docker: &DockerClient, input: ProcessStart) -> Outcome {
    let what = format!("exec in {}", input.container);
    let started = docker.query(&input).await.context(|| what.clone())?;
    println!("{}", started.id);
    Ok(0)
}

/// Why `what` is refused without a server: this command would serve the
/// engine itself, and its detached processes would end with it.
pub fn needs_a_server(what: &str) -> Failure {
    Failure::local(
        what,
        "detached processes live in a `dockwire serve`: give --host (or a context); without \
         one this command serves the engine itself and its processes would end with it",
    )
}

/// Runs `dockwire process …`.
pub async fn run(global: &Global, docker: &DockerClient, command: ProcessCommand) -> Outcome {
    match command {
        ProcessCommand::Ls(args) => ls(docker, args).await,
        ProcessCommand::Attach(args) => attach(docker, args).await,
        ProcessCommand::Logs(args) if args.follow => follow(global, docker, args).await,
        ProcessCommand::Logs(args) => logs(docker, args).await,
        ProcessCommand::Wait(args) => {
            let what = format!("wait {}", args.id);
            let exited = docker
                .query(&ProcessWait { id: args.id })
                .await
                .context(|| what)?;
            println!("{}", exited.exit_code);
            Ok(i32::try_from(exited.exit_code).unwrap_or(255))
        }
        ProcessCommand::Kill(args) => {
            let mut exit = 0;
            for id in args.ids {
                let input = ProcessSignal {
                    id: id.clone(),
                    signal: args.signal.clone(),
                };
                match docker.query(&input).await.context(|| format!("kill {id}")) {
                    Ok(_) => println!("{id}"),
                    Err(failure) => {
                        eprintln!("{failure}");
                        exit = 1;
                    }
                }
            }
            Ok(exit)
        }
        ProcessCommand::Rm(args) => {
            let mut exit = 0;
            for id in args.ids {
                let input = ProcessRemove { id: id.clone() };
                match docker
                    .query(&input)
                    .await
                    .context(|| format!("remove {id}"))
                {
                    Ok(_) => println!("{id}"),
                    Err(failure) => {
                        eprintln!("{failure}");
                        exit = 1;
                    }
                }
            }
            Ok(exit)
        }
    }
}

async fn ls(docker: &DockerClient, args: Ls) -> Outcome {
    let all = docker
        .query(&ProcessList {})
        .await
        .context(|| "list processes".into())?;
    let mut out = String::new();
    if args.quiet {
        for p in &all {
            out.push_str(&p.id);
            out.push('\n');
        }
    } else {
        let rows: Vec<[String; 8]> = all.iter().map(row).collect();
        let header = [
            "PROCESS ID",
            "TAG",
            "CONTAINER",
            "COMMAND",
            "STATUS",
            "STDOUT",
            "STDERR",
            "STARTED",
        ]
        .map(String::from);
        let mut widths = header.clone().map(|h| h.len());
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for r in std::iter::once(&header).chain(&rows) {
            let cells: Vec<String> = r
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            out.push_str(cells.join("   ").trim_end());
            out.push('\n');
        }
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(0)
}

/// A process's row: its stream columns are `written` bytes, and how many
/// of them the buffer dropped, if any.
fn row(p: &ProcessInfo) -> [String; 8] {
    let stream = |s: &StreamOffsets| match s.dropped {
        0 => s.written.to_string(),
        dropped => format!("{} ({dropped} dropped)", s.written),
    };
    let status = match p.state {
        ProcessState::Running => "Running".to_owned(),
        ProcessState::Exited => format!("Exited ({})", p.exit_code.unwrap_or_default()),
        ProcessState::Lost => "Lost".to_owned(),
    };
    let mut command = format!("\"{}\"", p.cmd.join(" "));
    if command.chars().count() > 22 {
        command = format!("{}…\"", command.chars().take(20).collect::<String>());
    }
    [
        p.id.clone(),
        p.tag.clone().unwrap_or_default(),
        p.container.clone(),
        command,
        status,
        stream(&p.stdout),
        stream(&p.stderr),
        p.started.clone(),
    ]
}

async fn attach(docker: &DockerClient, args: Attach) -> Outcome {
    let what = format!("attach to {}", args.id);
    let from = match (args.from_start, args.from) {
        (true, _) => AttachFrom::Offset(0),
        (false, Some(offset)) => AttachFrom::Offset(offset),
        (false, None) => AttachFrom::default(),
    };
    let input = ProcessAttach {
        id: args.id.clone(),
        from,
        stdin: args.interactive,
    };
    let session = docker.open(&input).await.context(|| what.clone())?;
    let accepted: ProcessAttached = serde_json::from_value(session.accepted.clone())
        .map_err(|e| Failure::local(&what, format!("the server's acceptance: {e}")))?;
    for (name, start) in [("stdout", accepted.stdout), ("stderr", accepted.stderr)] {
        if start.missed > 0 {
            eprintln!(
                "dockwire: {what}: {} bytes of {name} are gone from the server's buffer; \
                 replaying from offset {}",
                start.missed, start.from
            );
        }
    }
    let plan = Plan {
        stdin: accepted.stdin,
        tty: accepted.tty,
        sig_proxy: false,
    };
    check_tty(&what, plan)?;
    finish(&what, session, plan, EXIT_ATTACH_LOST).await
}

/// Connection failures in a row after which `logs -f` gives up.
const MAX_FAILURES: u32 = 8;

/// `logs -f`: followed to the process's end across lost connections, each
/// byte once (see [`follow_process`]): dialing again after 0.2 s, 0.4 s,
/// … up to 5 s, and giving up after [`MAX_FAILURES`] failures in a row.
async fn follow(global: &Global, docker: &DockerClient, args: Logs) -> Outcome {
    let what = format!("logs of {}", args.id);
    let first = docker.clone();
    let connect = |failures: u32| {
        let first = first.clone();
        let what = what.clone();
        async move {
            if failures == 0 {
                return Ok(first);
            }
            if failures > MAX_FAILURES {
                return Err(ClientError::Connect(Arc::new(std::io::Error::other(
                    "gave up reconnecting",
                ))));
            }
            eprintln!("dockwire: {what}: the connection was lost; reconnecting");
            let pause = Duration::from_millis(100 << failures.min(6)).min(Duration::from_secs(5));
            tokio::time::sleep(pause).await;
            match host::connect(global).await {
                Ok(connected) => Ok(connected.docker),
                Err(failure) => Err(ClientError::Connect(Arc::new(std::io::Error::other(
                    failure.to_string(),
                )))),
            }
        }
    };
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    let each = |item: ProcessLogItem| {
        let ProcessLogItem::Output { stream, data, .. } = item else {
            return;
        };
        let bytes = data.to_bytes().unwrap_or_default();
        // A reader gone: the rest is dropped, until the process ends.
        let _ = match stream {
            StreamName::Stdout => stdout.write_all(&bytes).and_then(|()| stdout.flush()),
            StreamName::Stderr => stderr.write_all(&bytes),
        };
    };
    follow_process(connect, &args.id, each)
        .await
        .context(|| what.clone())?;
    Ok(0)
}

async fn logs(docker: &DockerClient, args: Logs) -> Outcome {
    let what = format!("logs of {}", args.id);
    let input = ProcessLogs {
        id: args.id.clone(),
        stdout_from: None,
        stderr_from: None,
        follow: args.follow,
    };
    let mut items = docker.subscribe(&input).await.context(|| what.clone())?;
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    while let Some(item) = items.next().await {
        let item = item.context(|| what.clone())?;
        let ProcessLogItem::Output { stream, data, .. } = item else {
            continue;
        };
        let bytes = data.to_bytes().unwrap_or_default();
        let written = match stream {
            StreamName::Stdout => stdout.write_all(&bytes).and_then(|()| stdout.flush()),
            StreamName::Stderr => stderr.write_all(&bytes),
        };
        if written.is_err() {
            // Whoever read it has gone.
            return Ok(0);
        }
    }
    Ok(0)
}
