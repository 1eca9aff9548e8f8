//! The exec journal ([`crate::Config::with_exec_journal`]): one small file
//! per exec a call has started and not yet seen end, named by the exec's
//! id and holding its container as the call named it (the id, or for an
//! admin the name as given), so that a server restarted after a
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

use crate::config::ExecSignals;
use crate::engine::running_pid;
use crate::error;
use crate::signal;

/// Whether `exec_id` can be a record's file name: the engine's ids are
/// hex, and nothing else (no separator, no dot) may become a path.
fn valid(exec_id: &str) -> bool {
    !exec_id.is_empty() && exec_id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Writes the record of exec `exec_id` in `container`, readable by the
/// server's user only; logs a failure.
pub(crate) fn record(dir: &Path, exec_id: &str, container: &str) {
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
        writeln!(file, "{container}")
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

/// The records in `dir`: (exec id, container id) each. Files that cannot
/// be records are left alone; a missing directory holds none.
pub(crate) fn records(dir: &Path) -> std::io::Result<Vec<(String, String)>> {
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
        // A record cut short by a crash names no container: the exec id
        // is what counts.
        let container = fs::read_to_string(entry.path()).unwrap_or_default();
        found.push((exec_id, container.trim().to_owned()));
    }
    Ok(found)
}

/// Ends what the records in `dir` name, and drops them: an exec the
/// engine no longer knows, or that has ended, needs nothing; a running
/// one's process tree is killed when the server shares the engine's host
/// (`signals`), and is only logged otherwise. A record is kept when the
/// engine cannot be reached, for the next sweep. Returns the execs whose
/// processes were killed. Only when no call of this server can be alive.
pub(crate) async fn sweep(
    docker: &Docker,
    dir: &Path,
    signals: ExecSignals,
) -> Result<Vec<String>, std::io::Error> {
    let mut killed = Vec::new();
    for (exec_id, container) in records(dir)? {
        match running_pid(docker, &exec_id).await {
            Ok(Some(pid)) if signals == ExecSignals::HostPid => {
                signal::kill_tree(pid);
                killed.push(exec_id.clone());
            }
            Ok(Some(pid)) => tracing::warn!(
                exec = %exec_id,
                container = %container,
                pid,
                "an exec whose call died with a previous run still runs; the engine is \
                 remote, so it cannot be killed from here"
            ),
            // Ended, or forgotten by the engine (a restart): nothing left.
            Ok(None)
            | Err(EngineError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) if error::is_unreachable(&e) => {
                tracing::warn!(
                    exec = %exec_id,
                    "cannot ask the engine about an exec left by a previous run; kept for \
                     the next start: {e}"
                );
                continue;
            }
            Err(e) => tracing::warn!(
                exec = %exec_id,
                "cannot inspect an exec left by a previous run; its record is dropped: {e}"
            ),
        }
        forget(dir, &exec_id);
    }
    Ok(killed)
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
        record(&dir, "ab12", "c0ffee");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("ab12")), 0o600);
        // Not records: left alone.
        fs::write(dir.join("notes.txt"), "x").unwrap();
        fs::write(dir.join(".ab12.tmp"), "x").unwrap();
        assert_eq!(
            records(&dir).unwrap(),
            vec![("ab12".to_owned(), "c0ffee".to_owned())]
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
        record(&dir, "../escape", "c");
        record(&dir, "", "c");
        assert!(!base.join("escape").exists());
        assert_eq!(records(&dir).unwrap(), Vec::new());
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn a_missing_journal_holds_no_records() {
        let dir = scratch("missing");
        assert_eq!(records(&dir).unwrap(), Vec::new());
    }
}
