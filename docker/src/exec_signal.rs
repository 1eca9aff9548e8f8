//! Exec signals through the engine ([`ExecSignals::Engine`]), for a server
//! that does not share the engine host's pid namespace: Docker has no API
//! to signal an exec's process, so the server finds it from inside its
//! container instead.
//!
//! Every exec the server creates then carries one more environment entry,
//! `DOCKWIRE_EXEC=<marker>`, a fresh random 128-bit marker (last, so that
//! it wins; a caller may not set the name at all). To signal the exec, the
//! server runs a second exec in the same container, as the exec's own
//! user, with a fixed `sh` script taking the signal number and the marker
//! as arguments (nothing is ever written into the script's text): it walks
//! `/proc`, keeps the processes whose environment holds exactly that entry,
//! and signals the exec's top process (its parent is outside the
//! container's pid namespace: `PPid` 0) or, for a cancelled call's cleanup,
//! SIGKILLs every process carrying the marker (children inherit it).
//!
//! The signaller runs as the exec's user, not root: a container's root has
//! no `CAP_SYS_PTRACE` by default, and so cannot read another user's
//! `/proc/P/environ`; the same user can, and can signal it, with no
//! capability at all.
//!
//! Limits: the image needs `sh`, `tr`, `grep` and `kill` (busybox or
//! coreutils); a process that clears its environment, or changes its user,
//! escapes; the marker is visible in the exec's environment (to whoever
//! may read it there: the exec's own user and the container's root).
//!
//! [`ExecSignals::Engine`]: crate::ExecSignals::Engine

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as EngineError;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures::StreamExt;

/// The environment variable that marks the server's execs.
pub(crate) const MARKER_VAR: &str = "DOCKWIRE_EXEC";

/// One exec's marker: 32 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Marker(String);

/// Which of the processes carrying a marker get which signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// This signal number to the exec's top process only, as a signal on
    /// the exec's call means.
    Top(i32),
    /// SIGKILL to every process carrying the marker: a cancelled call's
    /// cleanup. Only a kill: the signaller stops each process it finds and
    /// lets them all go on after the signal, which would undo a STOP and
    /// hold any other signal back until then.
    KillAll,
}

/// Why a signal through the engine did not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ExecSignalError {
    /// The engine refused or failed the signaller exec (the container has
    /// stopped, the image has no `sh`, the engine is unreachable).
    #[error("the engine cannot run the signaller: {0}")]
    Engine(#[from] EngineError),
    /// The signaller ran and failed (a tool missing from the image).
    #[error("the signaller exited with {code:?}: {output}")]
    Script {
        /// Its exit code; `None` if the engine reported none.
        code: Option<i64>,
        /// The start of what it wrote.
        output: String,
    },
}

impl Marker {
    /// A fresh marker, for an exec about to be created.
    pub(crate) fn generate() -> Marker {
        let mut bytes = [0u8; 16];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
            // The system's random source failed: uniqueness is what the
            // marker needs, and the clock, the pid and a count give it.
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNT: AtomicU64 = AtomicU64::new(0);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            let seed = format!(
                "{now}:{}:{}",
                std::process::id(),
                COUNT.fetch_add(1, Ordering::Relaxed)
            );
            let digest = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
            bytes.copy_from_slice(&digest.as_ref()[..16]);
        }
        Marker(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// `text` as a marker, if it is one (a journal record's line).
    pub(crate) fn parse(text: &str) -> Option<Marker> {
        let valid = text.len() == 32
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| Marker(text.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The environment entry that carries it.
    pub(crate) fn env_entry(&self) -> String {
        format!("{MARKER_VAR}={}", self.0)
    }
}

/// Whether an exec's `env` (as a caller gives it: `NAME=value`, or `NAME`
/// to pass the container's value on) names the marker's variable.
pub(crate) fn names_marker(env: &[String]) -> bool {
    env.iter()
        .any(|entry| entry.split('=').next() == Some(MARKER_VAR))
}

/// Signals the processes in `container` carrying `marker` as `reach`
/// says, by a signaller exec run as `user` (the exec's own; `None`: the
/// container's default, as the exec had), and waits for it to end.
/// Whether any process carried the marker.
pub(crate) async fn send(
    docker: &Docker,
    container: &str,
    user: Option<&str>,
    marker: &Marker,
    reach: Reach,
) -> Result<bool, ExecSignalError> {
    let (number, reach) = match reach {
        Reach::Top(number) => (number, "top"),
        Reach::KillAll => (rustix::process::Signal::KILL.as_raw(), "all"),
    };
    let cmd = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        SCRIPT.to_owned(),
        "dockwire-signal".to_owned(),
        number.to_string(),
        marker.as_str().to_owned(),
        reach.to_owned(),
    ];
    let options = CreateExecOptions {
        attach_stdin: Some(false),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        cmd: Some(cmd),
        user: user.filter(|u| !u.is_empty()).map(str::to_owned),
        ..Default::default()
    };
    let created = docker.create_exec(container, options).await?;
    let start = StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: None,
    };
    let mut output = Vec::new();
    if let StartExecResults::Attached {
        output: mut out, ..
    } = docker.start_exec(&created.id, Some(start)).await?
    {
        while let Some(chunk) = out.next().await {
            let bytes = match chunk? {
                LogOutput::StdOut { message } | LogOutput::StdErr { message } => message,
                _ => continue,
            };
            if output.len() < OUTPUT_KEPT {
                output.extend_from_slice(&bytes);
            }
        }
    }
    let code = exit_code(docker, &created.id).await?;
    match code {
        Some(0) => Ok(true),
        Some(NONE_FOUND) => Ok(false),
        code => {
            output.truncate(OUTPUT_KEPT);
            Err(ExecSignalError::Script {
                code,
                output: String::from_utf8_lossy(&output).trim().to_owned(),
            })
        }
    }
}

/// The signaller: `$1` the signal number, `$2` the marker, `$3` `top` or
/// `all`. Exits 0 when it signalled a process, [`NONE_FOUND`] when none
/// carried the marker. `all` kills, whatever `$1` says: it walks twice,
/// for what forked during the first walk, stopping each process it finds,
/// then kills them all and lets them go on: killed one by one as found (in
/// the glob's order, where pid 100 comes before 99), a parent could see
/// its child die and exit 0 on its own before its turn came.
const SCRIPT: &str = r#"sig=$1 marker=$2 reach=$3 found= stopped=
for pass in 1 2; do
  for d in /proc/[0-9]*; do
    tr '\000' '\n' 2>/dev/null <"$d/environ" | grep -qxF "DOCKWIRE_EXEC=$marker" || continue
    pid=${d#/proc/}
    if [ "$reach" = all ]; then
      kill -STOP "$pid" 2>/dev/null && found=1 stopped="$stopped $pid"
      continue
    fi
    grep -qx 'PPid:[[:space:]]*0' "$d/status" 2>/dev/null || continue
    kill -"$sig" "$pid" 2>/dev/null && found=1
  done
  [ "$reach" = all ] || break
done
if [ -n "$stopped" ]; then
  kill -KILL $stopped 2>/dev/null
  kill -CONT $stopped 2>/dev/null
fi
[ -n "$found" ] || exit 3
"#;

/// The signaller's exit code when no process carried the marker.
const NONE_FOUND: i64 = 3;

/// How much of the signaller's output a failure keeps.
const OUTPUT_KEPT: usize = 512;

/// The ended signaller's exit code. The engine can report it as running
/// for a moment after its output ends.
async fn exit_code(docker: &Docker, exec_id: &str) -> Result<Option<i64>, EngineError> {
    for _ in 0..50 {
        let info = docker.inspect_exec(exec_id).await?;
        if info.running != Some(true) && info.exit_code.is_some() {
            return Ok(info.exit_code);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_fresh_128_bit_hex() {
        let a = Marker::generate();
        let b = Marker::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert_eq!(Marker::parse(a.as_str()), Some(a.clone()));
        assert_eq!(
            a.env_entry(),
            format!("DOCKWIRE_EXEC={}", a.as_str()),
            "the entry the signaller looks for"
        );
    }

    #[test]
    fn only_32_lowercase_hex_digits_parse_as_a_marker() {
        assert!(Marker::parse("0123456789abcdef0123456789abcdef").is_some());
        for bad in [
            "",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcde;",
            "$(reboot)0123456789abcdef0123456",
        ] {
            assert_eq!(Marker::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_env_naming_the_marker_variable_is_found_in_either_form() {
        let env = |e: &[&str]| e.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(names_marker(&env(&["A=1", "DOCKWIRE_EXEC=x"])));
        assert!(names_marker(&env(&["DOCKWIRE_EXEC="])));
        assert!(names_marker(&env(&["DOCKWIRE_EXEC"])));
        assert!(!names_marker(&env(&[
            "DOCKWIRE_EXECS=1",
            "X_DOCKWIRE_EXEC=1"
        ])));
        assert!(!names_marker(&env(&["A=DOCKWIRE_EXEC=1"])));
        assert!(!names_marker(&[]));
    }

    /// Runs the signaller here, on this machine's `/proc`: its exit code.
    fn signaller(number: i32, marker: &Marker, reach: &str) -> Option<i32> {
        std::process::Command::new("sh")
            .args(["-c", SCRIPT, "dockwire-signal"])
            .args([&number.to_string(), marker.as_str(), reach])
            .status()
            .expect("sh")
            .code()
    }

    #[test]
    fn the_signaller_kills_every_process_carrying_the_marker_and_no_other() {
        let marker = Marker::generate();
        let other = Marker::generate();
        let spawn = |marker: &Marker| {
            std::process::Command::new("sh")
                .args(["-c", "sleep 60 & sleep 61; true"])
                .env(MARKER_VAR, marker.as_str())
                .spawn()
                .expect("sh")
        };
        let mut marked = spawn(&marker);
        let mut bystander = spawn(&other);
        // Until the shell's children exist: they carry the marker too.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(signaller(9, &marker, "all"), Some(0));
        let status = marked.wait().expect("the marked shell");
        assert_eq!(status.code(), None, "killed by a signal: {status}");
        assert_eq!(
            signaller(9, &marker, "all"),
            Some(NONE_FOUND as i32),
            "none left"
        );
        assert_eq!(
            bystander.try_wait().expect("the bystander"),
            None,
            "untouched"
        );
        assert_eq!(signaller(9, &other, "all"), Some(0));
        bystander.wait().expect("the bystander");
    }

    /// `all` stops what it finds and lets it go on afterwards, so any
    /// signal but a kill would be undone or held back: it kills, whatever
    /// signal it is given.
    #[test]
    fn the_signaller_kills_all_even_when_asked_for_another_signal() {
        let marker = Marker::generate();
        let mut marked = std::process::Command::new("sh")
            .args(["-c", "exec sleep 60"])
            .env(MARKER_VAR, marker.as_str())
            .spawn()
            .expect("sh");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let stop = rustix::process::Signal::STOP.as_raw();
        assert_eq!(signaller(stop, &marker, "all"), Some(0));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let status = loop {
            match marked.try_wait().expect("the marked process") {
                Some(status) => break Some(status),
                None if std::time::Instant::now() > deadline => break None,
                None => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        };
        if status.is_none() {
            let _ = marked.kill();
            let _ = marked.wait();
        }
        let status = status.expect("the marked process was killed, not stopped and let go");
        assert_eq!(status.code(), None, "killed by a signal: {status}");
    }

    /// A marked watcher that exits 0 as soon as an earlier marked process
    /// (a lower pid, walked first) dies and its pipe ends: killed in one
    /// go once all are stopped, it never sees that, and dies of the
    /// signal too.
    #[test]
    fn the_signaller_kills_all_before_any_sees_another_die() {
        use std::process::{Command, Stdio};
        let marker = Marker::generate();
        let mut first = Command::new("sh")
            .args(["-c", "exec sleep 60"])
            .env(MARKER_VAR, marker.as_str())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh");
        let pipe = first.stdout.take().expect("its stdout");
        let mut watcher = Command::new("sh")
            .args(["-c", "read x; exit 0"])
            .env(MARKER_VAR, marker.as_str())
            .stdin(pipe)
            .spawn()
            .expect("sh");
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(signaller(9, &marker, "all"), Some(0));
        let first = first.wait().expect("the first");
        assert_eq!(first.code(), None, "killed by a signal: {first}");
        let watcher = watcher.wait().expect("the watcher");
        assert_eq!(watcher.code(), None, "killed by a signal: {watcher}");
    }
}
