//! What the engine answers wrong for a container in gVisor (runtime
//! `runsc`), answered from inside the container or refused.
//!
//! - `top`: the engine lists the host's processes of the sandbox's cgroup
//!   (or the host's own), not the container's, which live in gVisor's own
//!   kernel. dockwire runs the image's `ps` with the same arguments in an
//!   exec instead, and leaves that `ps` out of the answer. The image needs
//!   `sh` and `ps`.
//! - `cp` to or from `/tmp`: gVisor mounts a memory filesystem of its own
//!   on `/tmp`, which the engine's archive API does not reach (a file
//!   copied in is invisible inside; one written inside is not found). A
//!   copy into `/tmp` (or below) is unpacked by the image's `tar` in an
//!   exec, as root, instead (the image needs `sh` and `tar`; a copy cut
//!   short may leave part of it); a copy out of it is refused with
//!   `INVALID_INPUT`, saying so. The rest of the file system is the
//!   engine's, and copies there work as under runc.
//! - exec signals: see [`crate::runtime::exec_signals`].

use std::pin::pin;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::ContainerTopResponse;
use dockwire_core::{CallError, ServerEvent};
use dockwire_service::RawIo;
use futures::StreamExt;
use futures::future::{Either, select};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::catalog::{CONTAINER_NOT_FOUND, DOCKER_ERROR};
use crate::engine::exec_exit;
use crate::error::{self, invalid_input};
use crate::runtime;

/// `top` of gVisor container `id`: `ps` with `ps_args` (split on
/// whitespace, each word one argument: no shell sees them) run inside it.
pub(crate) async fn top(
    docker: &Docker,
    id: &str,
    ps_args: &str,
) -> Result<ContainerTopResponse, CallError> {
    let mut cmd = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        PS_SCRIPT.to_owned(),
        "dockwire-top".to_owned(),
    ];
    cmd.extend(ps_args.split_whitespace().map(str::to_owned));
    let (code, stdout, stderr) = run(docker, id, cmd).await?;
    if code != 0 {
        return Err(CallError::new(
            DOCKER_ERROR,
            format!(
                "top of a gVisor container runs ps inside it, which failed (exit {code}): {}",
                String::from_utf8_lossy(&stderr).trim()
            ),
        ));
    }
    Ok(parse_ps(&String::from_utf8_lossy(&stdout)))
}

/// Whether `path` of container `id` is in a gVisor container's own
/// `/tmp`, out of the engine's archive API's reach.
pub(crate) async fn in_own_tmp(docker: &Docker, id: &str, path: &str) -> Result<bool, CallError> {
    Ok(in_tmp(path) && runtime::runs_gvisor(docker, id).await?)
}

/// Refuses a copy out of `path` of container `id` when it is in a gVisor
/// container's own `/tmp`.
pub(crate) async fn check_archive_get(
    docker: &Docker,
    id: &str,
    path: &str,
) -> Result<(), CallError> {
    if !in_own_tmp(docker, id, path).await? {
        return Ok(());
    }
    Err(invalid_input(format!(
        "{path} is in /tmp of a gVisor container: gVisor keeps /tmp in a memory filesystem \
         of its own, which the engine's copy does not reach; copy from another directory, or \
         through an exec (`exec CONTAINER tar -c -C /tmp NAME`)"
    )))
}

/// `archive-put` into `path`, in gVisor container `id`'s own `/tmp`: once
/// `path` is found to be a directory, accepted; stdin's tar is then fed
/// to the image's `tar -x` in an exec, as root, and unpacked as it comes.
pub(crate) async fn put(
    docker: &Docker,
    id: &str,
    path: &str,
    io: RawIo,
) -> Result<i32, CallError> {
    let asked = path;
    let absolute = absolute(asked);
    let path = absolute.as_str();
    let check = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        DIRECTORY_SCRIPT.to_owned(),
        "dockwire-cp".to_owned(),
        path.to_owned(),
    ];
    match run(docker, id, check).await?.0 {
        0 => {}
        NOT_A_DIRECTORY => return Err(invalid_input(format!("{asked} is not a directory"))),
        _ => {
            return Err(CallError::new(
                CONTAINER_NOT_FOUND,
                format!("Could not find the file {asked} in the container"),
            ));
        }
    }
    let (mut input, mut out) = io.split();
    out.accept(json!({})).await?;
    let cmd = ["tar", "-x", "-f", "-", "-C", path].map(str::to_owned);
    let options = CreateExecOptions {
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(cmd.to_vec()),
        user: Some("0".to_owned()),
        ..Default::default()
    };
    let created = docker
        .create_exec(id, options)
        .await
        .map_err(error::container)?;
    let start = StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: None,
    };
    let StartExecResults::Attached {
        mut output,
        input: mut stdin,
    } = docker
        .start_exec(&created.id, Some(start))
        .await
        .map_err(error::container)?
    else {
        return Err(CallError::new(
            DOCKER_ERROR,
            "the engine started the copy's tar detached",
        ));
    };
    // Whether stdin was closed (the tar is whole); a failed write means
    // tar has ended (its exit code says why).
    let feed = async {
        while let Some(item) = input.next().await {
            match item {
                ServerEvent::Stdin(bytes) if stdin.write_all(&bytes).await.is_err() => {
                    return true;
                }
                ServerEvent::StdinClosed => {
                    let _ = stdin.shutdown().await;
                    return true;
                }
                _ => {}
            }
        }
        false
    };
    let drain = async {
        let mut said = Vec::new();
        while let Some(Ok(chunk)) = output.next().await {
            if let LogOutput::StdErr { message } | LogOutput::StdOut { message } = chunk {
                let room = OUTPUT_KEPT.saturating_sub(said.len());
                said.extend_from_slice(&message[..message.len().min(room)]);
            }
        }
        said
    };
    let said = match select(pin!(feed), pin!(drain)).await {
        Either::Left((true, drain)) => drain.await,
        // The call ended without closing stdin: nothing more comes.
        Either::Left((false, _)) => {
            return Err(invalid_input("the tar ended before stdin was closed"));
        }
        Either::Right((said, _)) => said,
    };
    match exec_exit(docker, &created.id).await? {
        0 => Ok(0),
        code => Err(CallError::new(
            DOCKER_ERROR,
            format!(
                "tar in the gVisor container failed (exit {code}): {}",
                String::from_utf8_lossy(&said).trim()
            ),
        )),
    }
}

/// Prints its own pid (which `exec` keeps for `ps`), then runs `ps` with
/// the script's arguments.
const PS_SCRIPT: &str = r#"echo "$$"; exec ps "$@""#;

/// Exits 0 when `$1` is a directory, [`NOT_A_DIRECTORY`] when it is
/// something else, 4 when it is nothing.
const DIRECTORY_SCRIPT: &str = r#"[ -d "$1" ] && exit 0; [ -e "$1" ] && exit 3; exit 4"#;

/// [`DIRECTORY_SCRIPT`]'s exit code for a path that is not a directory.
const NOT_A_DIRECTORY: i64 = 3;

/// The most of `ps`'s output kept.
const OUTPUT_KEPT: usize = 4 << 20;

/// Whether `path`, as a container resolves it from `/`, is `/tmp` or
/// below it.
fn in_tmp(path: &str) -> bool {
    components(path).first() == Some(&"tmp")
}

/// `path` as the engine's archive API resolves it, from `/` (an exec
/// would start from the image's working directory): absolute, without
/// `.`, `..` or empty components.
fn absolute(path: &str) -> String {
    format!("/{}", components(path).join("/"))
}

fn components(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts
}

/// `ps`'s output as the engine's `top` answers: the first line is the
/// script's pid, then `ps`'s header (the titles) and one row per process,
/// split on whitespace with the last column taking the rest of the line.
/// The row of `ps` itself (its pid in the `PID` column) is left out.
fn parse_ps(output: &str) -> ContainerTopResponse {
    let mut lines = output.lines();
    let own = lines.next().map(str::trim).unwrap_or_default().to_owned();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let pid_column = titles.iter().position(|t| t == "PID");
    let processes = lines
        .filter(|line| !line.trim().is_empty())
        .map(|line| split_row(line, titles.len()))
        .filter(|row| pid_column.and_then(|at| row.get(at)) != Some(&own))
        .collect();
    ContainerTopResponse {
        titles: Some(titles),
        processes: Some(processes),
    }
}

/// `line` as `columns` fields: whitespace-separated, the last one taking
/// the rest of the line.
fn split_row(line: &str, columns: usize) -> Vec<String> {
    let mut row = Vec::with_capacity(columns);
    let mut rest = line.trim_start();
    while row.len() + 1 < columns && !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        row.push(rest[..end].to_owned());
        rest = rest[end..].trim_start();
    }
    if !rest.is_empty() || columns > 0 {
        row.push(rest.trim_end().to_owned());
    }
    row
}

/// Runs `cmd` in container `id` and waits for it: its exit code, stdout
/// and stderr (each up to [`OUTPUT_KEPT`]).
async fn run(
    docker: &Docker,
    id: &str,
    cmd: Vec<String>,
) -> Result<(i64, Vec<u8>, Vec<u8>), CallError> {
    let options = CreateExecOptions {
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(cmd),
        ..Default::default()
    };
    let created = docker
        .create_exec(id, options)
        .await
        .map_err(error::container)?;
    let start = StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: None,
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&created.id, Some(start))
        .await
        .map_err(error::container)?
    {
        while let Some(chunk) = output.next().await {
            let (into, bytes) = match chunk.map_err(error::container)? {
                LogOutput::StdOut { message } => (&mut stdout, message),
                LogOutput::StdErr { message } => (&mut stderr, message),
                _ => continue,
            };
            let room = OUTPUT_KEPT.saturating_sub(into.len());
            into.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }
    let code = exec_exit(docker, &created.id).await?;
    Ok((code, stdout, stderr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_and_below_are_tmp_however_spelt() {
        for path in [
            "/tmp",
            "/tmp/",
            "/tmp/a/b",
            "tmp/x",
            "//tmp",
            "/./tmp",
            "/x/../tmp/y",
        ] {
            assert!(in_tmp(path), "{path}");
        }
        for path in ["/", "", "/tmpx", "/var/tmp", "/root/tmp", "/tmp/../etc"] {
            assert!(!in_tmp(path), "{path}");
        }
        assert_eq!(absolute("tmp/./a//b/../c/"), "/tmp/a/c");
        assert_eq!(absolute("/../tmp"), "/tmp");
    }

    #[test]
    fn ps_output_becomes_titles_and_rows_without_ps_itself() {
        let output = "7\nPID   USER     TIME  COMMAND\n    1 root      0:00 sleep 60\n    \
                      5 root      0:00 sh -c echo hi\n    7 root      0:00 ps -ef\n\n";
        let top = parse_ps(output);
        assert_eq!(
            top.titles,
            Some(vec![
                "PID".into(),
                "USER".into(),
                "TIME".into(),
                "COMMAND".into()
            ])
        );
        let row = |r: [&str; 4]| r.map(str::to_owned).to_vec();
        assert_eq!(
            top.processes,
            Some(vec![
                row(["1", "root", "0:00", "sleep 60"]),
                row(["5", "root", "0:00", "sh -c echo hi"]),
            ])
        );
    }

    #[test]
    fn without_a_pid_column_every_row_is_kept() {
        let top = parse_ps("9\nCOMMAND\nsleep 60\nps -o comm\n");
        assert_eq!(
            top.processes,
            Some(vec![
                vec!["sleep 60".to_owned()],
                vec!["ps -o comm".to_owned()]
            ])
        );
    }

    #[test]
    fn empty_or_short_output_is_no_panic() {
        for output in ["", "\n", "3", "3\nPID", "3\nPID CMD\n1", "3\nA B C\n1  "] {
            let _ = parse_ps(output);
        }
        assert_eq!(split_row("  1   ", 3), vec!["1".to_owned(), String::new()]);
    }
}
