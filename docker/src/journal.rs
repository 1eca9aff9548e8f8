//! The exec journal ([`crate::Config::with_exec_journal`]): one small file
//! per exec a call has started and not yet seen end, named by the exec's
//! id and holding its container as the call named it (the id, or for an
//! admin the name as given) on its first line and, with
//! [`ExecSignals::Engine`], the exec's marker on its second (a record
//! without one, as older servers wrote, is still read), so that a server restarted after a
//! crash can find the processes of execs whose calls died with it (the
//! engine cannot tell those from any `docker exec`).
//!
//! The exec's start (`exec.rs`) writes the record after the exec is created and before it
//! starts; the exec's guard deletes it when its call has the exit code,
//! or after its cancellation cleanup. [`sweep`] (run by
//! [`crate::DockerService::sweep`], when no call of the server's can be
//! alive) kills what the records still name. Failing to write or delete a
//! record never fails the exec: it is logged, and at worst a crash's
//! leftover is not found, or a stale record is dropped by the next sweep.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use bollard::Docker;
use bollard::errors::Error as EngineError;
use bollard::models::ExecInspectResponse;

use crate::config::ExecSignals;
use crate::engine::{running_exec, visible_pid};
use crate::error;
use crate::exec_signal::{self, Marker, Reach};
use crate::signal;

/// One exec's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) exec_id: String,
    /// The container as the call named it; empty if the record was cut
    /// short.
    pub(crate) container: String,
    /// The exec's marker, if it has one (see [`crate::exec_signal`]).
    pub(crate) marker: Option<Marker>,
}

/// Whether `exec_id` can be a record's file name: the engine's ids are
/// hex, and nothing else (no separator, no dot) may become a path.
fn valid(exec_id: &str) -> bool {
    !exec_id.is_empty() && exec_id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Writes the record of exec `exec_id` in `container` (with its marker, if
/// it has one), readable by the server's user only; logs a failure.
pub(crate) fn record(dir: &Path, exec_id: &str, container: &str, marker: Option<&Marker>) {
    if !valid(exec_id) {
        tracing::warn!(
            exec = exec_id,
            "an exec id that is not hex is not journalled"
        );
        return;
    }
    let write = || -> std::io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join(exec_id))?;
        writeln!(file, "{container}")?;
        match marker {
            Some(marker) => writeln!(file, "{}", marker.as_str()),
            None => Ok(()),
        }
    };
    if let Err(e) = write() {
        tracing::warn!(
            exec = exec_id,
            "cannot journal the exec in {}: {e}; a crash would leave its process running",
            dir.display()
        );
    }
}

/// Deletes exec `exec_id`'s record, if there is one; logs a failure.
pub(crate) fn forget(dir: &Path, exec_id: &str) {
    if !valid(exec_id) {
        return;
    }
    match fs::remove_file(dir.join(exec_id)) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(exec = exec_id, "cannot delete the exec's record: {e}"),
    }
}

/// The records in `dir`. Files that cannot be records are left alone; a
/// missing directory holds none.
pub(crate) fn records(dir: &Path) -> std::io::Result<Vec<Record>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Some(exec_id) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !valid(&exec_id) {
            continue;
        }
        // A record cut short by a crash names no container (or no
        // marker): the exec id is what counts.
        let text = fs::read_to_string(entry.path()).unwrap_or_default();
        let mut lines = text.lines().map(str::trim);
        let container = lines.next().unwrap_or_default().to_owned();
        let marker = lines.next().and_then(Marker::parse);
        found.push(Record {
            exec_id,
            container,
            marker,
        });
    }
    Ok(found)
}

/// Ends what the records in `dir` name, and drops them: an exec the
/// engine no longer knows, or that has ended, needs nothing; a running
/// one's processes are killed the way `signals` says (by host pid when
/// this server sees the engine's, through the engine by the record's
/// marker), and are only logged when neither can reach them. A record is
/// kept when the engine cannot be reached, for the next sweep. Returns the
/// execs whose processes were killed. Only when no call of this server can
/// be alive.
pub(crate) async fn sweep(
    docker: &Docker,
    dir: &Path,
    signals: ExecSignals,
) -> Result<Vec<String>, std::io::Error> {
    let mut killed = Vec::new();
    for record in records(dir)? {
        let Record {
            exec_id,
            container,
            marker,
        } = &record;
        let running = match running_exec(docker, exec_id).await {
            Ok(running) => running,
            // Forgotten by the engine (a restart): nothing left.
            Err(EngineError::DockerResponseServerError {
                status_code: 404, ..
            }) => None,
            Err(e) if error::is_unreachable(&e) => {
                tracing::warn!(
                    exec = %exec_id,
                    "cannot ask the engine about an exec left by a previous run; kept for \
                     the next start: {e}"
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(
                    exec = %exec_id,
                    "cannot inspect an exec left by a previous run; its record is dropped: {e}"
                );
                None
            }
        };
        // Ended: nothing left.
        if let Some((info, pid)) = running {
            // An exec with a marker was signalled through the engine (a
            // gVisor container's always are), whatever the configuration.
            let ended = match signals {
                ExecSignals::HostPid if marker.is_none() => {
                    match visible_pid(docker, &info, pid).await {
                        Some(pid) => {
                            signal::kill_tree(pid);
                            true
                        }
                        None => false,
                    }
                }
                _ => kill_through_engine(docker, &info, marker.as_ref()).await,
            };
            if ended {
                killed.push(exec_id.clone());
            } else {
                tracing::warn!(
                    exec = %exec_id,
                    container = %container,
                    pid,
                    "an exec whose call died with a previous run still runs, and cannot be \
                     killed from here"
                );
            }
        }
        forget(dir, exec_id);
    }
    Ok(killed)
}

/// Kills, through the engine, every process of the exec `info` that
/// carries `marker`; whether that ran.
async fn kill_through_engine(
    docker: &Docker,
    info: &ExecInspectResponse,
    marker: Option<&Marker>,
) -> bool {
    let (Some(marker), Some(container)) = (marker, info.container_id.as_deref()) else {
        // A record from before markers: nothing tells its processes.
        return false;
    };
    let user = info.process_config.as_ref().and_then(|p| p.user.as_deref());
    match exec_signal::send(docker, container, user, marker, Reach::KillAll).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(container, "cannot kill an exec through the engine: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fresh directory under the system's temporary directory.
    fn scratch(what: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("dockwire-journal-{what}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_record_is_private_and_read_back_until_forgotten() {
        let base = scratch("roundtrip");
        let dir = base.join("execs");
        record(&dir, "ab12", "c0ffee", None);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("ab12")), 0o600);
        // Not records: left alone.
        fs::write(dir.join("notes.txt"), "x").unwrap();
        fs::write(dir.join(".ab12.tmp"), "x").unwrap();
        assert_eq!(
            records(&dir).unwrap(),
            vec![Record {
                exec_id: "ab12".to_owned(),
                container: "c0ffee".to_owned(),
                marker: None,
            }]
        );
        forget(&dir, "ab12");
        forget(&dir, "ab12");
        assert_eq!(records(&dir).unwrap(), Vec::new());
        assert!(dir.join("notes.txt").exists());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn an_id_that_could_be_a_path_is_never_written() {
        let base = scratch("paths");
        let dir = base.join("execs");
        record(&dir, "../escape", "c", None);
        record(&dir, "", "c", None);
        assert!(!base.join("escape").exists());
        assert_eq!(records(&dir).unwrap(), Vec::new());
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn a_record_keeps_the_execs_marker() {
        let base = scratch("marker");
        let dir = base.join("execs");
        let marker = Marker::generate();
        record(&dir, "cd34", "web", Some(&marker));
        assert_eq!(
            fs::read_to_string(dir.join("cd34")).unwrap(),
            format!("web\n{}\n", marker.as_str())
        );
        assert_eq!(
            records(&dir).unwrap(),
            vec![Record {
                exec_id: "cd34".to_owned(),
                container: "web".to_owned(),
                marker: Some(marker),
            }]
        );
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_record_without_a_marker_or_with_a_broken_one_is_still_read() {
        let base = scratch("old");
        let dir = base.join("execs");
        fs::create_dir_all(&dir).unwrap();
        // As servers before markers wrote them, and cut short by a crash.
        fs::write(dir.join("ab01"), "c0ffee\n").unwrap();
        fs::write(dir.join("ab02"), "").unwrap();
        fs::write(dir.join("ab03"), "c0ffee\n$(reboot)\n").unwrap();
        let mut found = records(&dir).unwrap();
        found.sort_by(|a, b| a.exec_id.cmp(&b.exec_id));
        let container = |r: &Record| (r.exec_id.clone(), r.container.clone(), r.marker.clone());
        assert_eq!(
            found.iter().map(container).collect::<Vec<_>>(),
            vec![
                ("ab01".to_owned(), "c0ffee".to_owned(), None),
                ("ab02".to_owned(), String::new(), None),
                ("ab03".to_owned(), "c0ffee".to_owned(), None),
            ]
        );
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_missing_journal_holds_no_records() {
        let dir = scratch("missing");
        assert_eq!(records(&dir).unwrap(), Vec::new());
    }
}
