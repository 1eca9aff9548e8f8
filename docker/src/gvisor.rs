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
//!   copy into `/tmp` (or below), or into `/` (whose tar may hold `tmp/…`
//!   entries), is unpacked by the image's `tar` in an
//!   exec, as root, instead (a copy cut short may leave part of it), and
//!   a copy out of it is the image's `stat` and `tar -c` in execs (the
//!   image needs `sh`, `stat`, `readlink` and `tar`). The rest of the file
//!   system is the engine's, and copies there work as under runc.
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

use crate::catalog::{CONTAINER_NOT_FOUND, DOCKER_ERROR, PathStat};
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

/// Whether a copy into `path` of container `id` is unpacked inside it: in
/// a gVisor container, into its own `/tmp`, or into `/`, where a tar's
/// `tmp/…` entries would otherwise land in the engine's `/tmp`, which the
/// container does not see.
pub(crate) async fn unpacks_inside(
    docker: &Docker,
    id: &str,
    path: &str,
) -> Result<bool, CallError> {
    let reaches_tmp = in_tmp(path) || components(path).is_empty();
    Ok(reaches_tmp && runtime::runs_gvisor(docker, id).await?)
}

/// `archive-get` of `path`, in gVisor container `id`'s own `/tmp`:
/// accepted with its stat (the image's `stat`), then a tar of it (the
/// image's `tar -c`, as root) as stdout, named by its base name as the
/// engine names it.
pub(crate) async fn get(
    docker: &Docker,
    id: &str,
    path: &str,
    io: RawIo,
) -> Result<i32, CallError> {
    let asked = path;
    let absolute = absolute(asked);
    let path = absolute.as_str();
    let cmd = ["sh", "-c", STAT_SCRIPT, "dockwire-cp", path].map(str::to_owned);
    let (code, said, _) = run(docker, id, cmd.to_vec()).await?;
    let stat = match code {
        0 => parse_stat(&String::from_utf8_lossy(&said), path),
        _ => None,
    };
    let Some(stat) = stat else {
        return Err(CallError::new(
            CONTAINER_NOT_FOUND,
            format!("Could not find the file {asked} in the container"),
        ));
    };
    let (_input, mut out) = io.split();
    out.accept(json!(stat)).await?;
    let (parent, name) = match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => ("/", path),
    };
    // `--`: a name may start with `-`; it is never an option.
    let cmd = ["tar", "-c", "-f", "-", "-C", parent, "--", name].map(str::to_owned);
    let (exec_id, mut output, _) =
        start_attached(docker, id, cmd.to_vec(), Some("0"), false).await?;
    let mut stderr = Vec::new();
    while let Some(chunk) = output.next().await {
        match chunk.map_err(error::container)? {
            LogOutput::StdOut { message } => out.stdout(message).await?,
            LogOutput::StdErr { message } => {
                let room = OUTPUT_KEPT.saturating_sub(stderr.len());
                stderr.extend_from_slice(&message[..message.len().min(room)]);
            }
            _ => {}
        }
    }
    match exec_exit(docker, &exec_id).await? {
        0 => Ok(0),
        code => Err(CallError::new(
            DOCKER_ERROR,
            format!(
                "tar in the gVisor container failed (exit {code}): {}",
                String::from_utf8_lossy(&stderr).trim()
            ),
        )),
    }
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
    let (exec_id, mut output, mut stdin) =
        start_attached(docker, id, cmd.to_vec(), Some("0"), true).await?;
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
    match exec_exit(docker, &exec_id).await? {
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

/// Prints `$1`'s size, mode (hex) and modification time (Unix seconds),
/// `|`-separated, then where it links to if it is a symbolic link.
const STAT_SCRIPT: &str = r#"stat -c '%s|%f|%Y' "$1" && { readlink "$1" || true; }"#;

/// [`STAT_SCRIPT`]'s output about `path` as the engine's stat: Go's
/// `os.FileMode` bits, an RFC 3339 time. `None` if it is not that.
fn parse_stat(said: &str, path: &str) -> Option<PathStat> {
    let mut lines = said.lines();
    let mut fields = lines.next()?.split('|');
    let size = fields.next()?.parse().ok()?;
    let unix_mode = u32::from_str_radix(fields.next()?, 16).ok()?;
    let mtime: i64 = fields.next()?.parse().ok()?;
    let name = path
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("/");
    Some(PathStat {
        name: name.to_owned(),
        size,
        mode: go_file_mode(unix_mode),
        mtime: rfc3339(mtime),
        link_target: lines.next().unwrap_or_default().to_owned(),
    })
}

/// A Unix `st_mode` as Go's `os.FileMode`, as the engine reports modes.
fn go_file_mode(unix: u32) -> u32 {
    let kind = match unix & 0o170_000 {
        0o040_000 => 1 << 31,
        0o120_000 => 1 << 27,
        0o010_000 => 1 << 25,
        0o140_000 => 1 << 24,
        0o020_000 => (1 << 26) | (1 << 21),
        0o060_000 => 1 << 26,
        _ => 0,
    };
    let special = [(0o4000, 1 << 23), (0o2000, 1 << 22), (0o1000, 1 << 20)]
        .iter()
        .filter(|(bit, _)| unix & bit != 0)
        .fold(0, |all, (_, go)| all | go);
    kind | special | (unix & 0o777)
}

/// Unix seconds as RFC 3339, in UTC (days to a civil date: Howard
/// Hinnant's algorithm).
fn rfc3339(seconds: i64) -> String {
    let (days, second) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second / 3600,
        second % 3600 / 60,
        second % 60
    )
}

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
    let (exec_id, mut output, _) = start_attached(docker, id, cmd, None, false).await?;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Some(chunk) = output.next().await {
        let (into, bytes) = match chunk.map_err(error::container)? {
            LogOutput::StdOut { message } => (&mut stdout, message),
            LogOutput::StdErr { message } => (&mut stderr, message),
            _ => continue,
        };
        let room = OUTPUT_KEPT.saturating_sub(into.len());
        into.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
    let code = exec_exit(docker, &exec_id).await?;
    Ok((code, stdout, stderr))
}

/// An attached exec's output and stdin, as bollard gives them.
type Attached = (
    String,
    std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
    std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
);

/// Creates and starts `cmd` in container `id`, attached (stdin too when
/// `stdin`), as `user` (`None`: the container's): the exec's id, its
/// output and its stdin.
async fn start_attached(
    docker: &Docker,
    id: &str,
    cmd: Vec<String>,
    user: Option<&str>,
    stdin: bool,
) -> Result<Attached, CallError> {
    let options = CreateExecOptions {
        attach_stdin: Some(stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(cmd),
        user: user.map(str::to_owned),
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
    match docker
        .start_exec(&created.id, Some(start))
        .await
        .map_err(error::container)?
    {
        StartExecResults::Attached { output, input } => Ok((created.id, output, input)),
        StartExecResults::Detached => Err(CallError::new(
            DOCKER_ERROR,
            "the engine started an exec detached",
        )),
    }
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
        for path in ["/", "", "/tmpx", "/var/tmp", "/etc/tmp", "/tmp/../etc"] {
            assert!(!in_tmp(path), "{path}");
        }
        assert_eq!(absolute("tmp/./a//b/../c/"), "/tmp/a/c");
        assert_eq!(absolute("/../tmp"), "/tmp");
    }

    #[test]
    fn stat_output_becomes_the_engines_stat() {
        let file = parse_stat("6|81a4|1796600758\n", "/tmp/e.txt").unwrap();
        assert_eq!(
            (
                file.name.as_str(),
                file.size,
                file.mode,
                file.mtime.as_str()
            ),
            ("e.txt", 6, 0o644, "2026-12-06T23:45:58Z")
        );
        let dir = parse_stat("4096|43ff|0\n", "/tmp").unwrap();
        assert_eq!(dir.mode, (1 << 31) | (1 << 20) | 0o777);
        assert_eq!(dir.mtime, "1970-01-01T00:00:00Z");
        let link = parse_stat("1|a1ff|951782400\nx\n", "/tmp/l").unwrap();
        assert_eq!(link.mode, (1 << 27) | 0o777);
        assert_eq!(link.link_target, "x");
        assert_eq!(link.mtime, "2000-02-29T00:00:00Z");
        for bad in ["", "x|y|z", "1|zz|0", "1|81a4"] {
            assert!(parse_stat(bad, "/tmp/x").is_none(), "{bad:?}");
        }
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
