//! Signals by name, and delivering them to host pids (exec'd processes,
//! which Docker has no API to signal).

use std::collections::HashMap;

use rustix::process::{Pid, Signal, kill_process};

/// `TERM`, `SIGTERM`, `term` or `15` → SIGTERM. `None` for anything else.
pub(crate) fn parse(name: &str) -> Option<Signal> {
    if let Ok(number) = name.parse::<i32>() {
        return Signal::from_named_raw(number);
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    Some(match bare {
        "HUP" => Signal::HUP,
        "INT" => Signal::INT,
        "QUIT" => Signal::QUIT,
        "ILL" => Signal::ILL,
        "TRAP" => Signal::TRAP,
        "ABRT" | "IOT" => Signal::ABORT,
        "BUS" => Signal::BUS,
        "FPE" => Signal::FPE,
        "KILL" => Signal::KILL,
        "USR1" => Signal::USR1,
        "SEGV" => Signal::SEGV,
        "USR2" => Signal::USR2,
        "PIPE" => Signal::PIPE,
        "ALRM" => Signal::ALARM,
        "TERM" => Signal::TERM,
        "CHLD" => Signal::CHILD,
        "CONT" => Signal::CONT,
        "STOP" => Signal::STOP,
        "TSTP" => Signal::TSTP,
        "TTIN" => Signal::TTIN,
        "TTOU" => Signal::TTOU,
        "URG" => Signal::URG,
        "XCPU" => Signal::XCPU,
        "XFSZ" => Signal::XFSZ,
        "VTALRM" => Signal::VTALARM,
        "PROF" => Signal::PROF,
        "WINCH" => Signal::WINCH,
        "IO" | "POLL" => Signal::IO,
        "SYS" => Signal::SYS,
        _ => return None,
    })
}

/// Sends `sig` to host pid `pid`; a process that is already gone is not
/// an error.
pub(crate) fn send(pid: i64, sig: Signal) {
    // Only a real process: 0 and negative pids would mean process groups
    // or every process.
    let Some(pid) = i32::try_from(pid)
        .ok()
        .filter(|&pid| pid > 0)
        .and_then(Pid::from_raw)
    else {
        return;
    };
    if let Err(e) = kill_process(pid, sig) {
        if e != rustix::io::Errno::SRCH {
            tracing::warn!(pid = pid.as_raw_nonzero().get(), "cannot signal: {e}");
        }
    }
}

/// SIGKILLs `pid` and every process descending from it, found through
/// `/proc`: killing only a shell would leave what it started running in
/// the container.
pub(crate) fn kill_tree(pid: i64) {
    let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i64>().ok())
            else {
                continue;
            };
            if let Some(parent) = parent_of(child) {
                children.entry(parent).or_default().push(child);
            }
        }
    }
    let mut tree = vec![pid];
    let mut next = 0;
    while next < tree.len() {
        if let Some(kids) = children.get(&tree[next]) {
            tree.extend(kids);
        }
        next += 1;
    }
    for pid in tree {
        send(pid, Signal::KILL);
    }
}

/// Whether `pid` and `init`, as the engine numbers them, are here two
/// processes of one pid namespace that is not this process's own: true
/// when this server shares the engine's pid namespace and both are in one
/// container. A server in a pid namespace of its own sees other processes
/// (or none) under those numbers: not in one container's namespace. (A
/// container that shares the host's pid namespace is refused too: its
/// processes cannot be told from this server's own neighbours.)
pub(crate) fn in_one_container(pid: i64, init: i64) -> bool {
    let namespace = |who: &str| std::fs::read_link(format!("/proc/{who}/ns/pid")).ok();
    let (Some(of_pid), Some(of_init), Some(own)) = (
        namespace(&pid.to_string()),
        namespace(&init.to_string()),
        namespace("self"),
    ) else {
        return false;
    };
    of_pid == of_init && of_pid != own
}

/// A host process, told apart from a later one that reuses its pid by
/// its start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HostProcess {
    pub(crate) pid: i64,
    started: u64,
}

impl HostProcess {
    /// The process that has pid `pid` now; `None` if none has.
    pub(crate) fn of(pid: i64) -> Option<HostProcess> {
        Some(HostProcess {
            pid,
            started: stat_field(pid, START_TIME)?,
        })
    }

    /// Whether this very process still exists.
    pub(crate) fn runs(&self) -> bool {
        stat_field(self.pid, START_TIME) == Some(self.started)
    }
}

/// `/proc/PID/stat`'s fields, numbered from 1 as in proc(5).
const PARENT: usize = 4;
/// In clock ticks since boot.
const START_TIME: usize = 22;

/// The parent pid of `pid`.
fn parent_of(pid: i64) -> Option<i64> {
    stat_field(pid, PARENT)
}

/// Field `n` of `/proc/PID/stat`, counted after the parenthesized command
/// name (field 2), which may itself contain spaces and parentheses.
fn stat_field<T: std::str::FromStr>(pid: i64, n: usize) -> Option<T> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(n - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_with_or_without_sig_and_by_number() {
        assert_eq!(parse("TERM"), Some(Signal::TERM));
        assert_eq!(parse("SIGterm"), Some(Signal::TERM));
        assert_eq!(parse("9"), Some(Signal::KILL));
        assert_eq!(parse("WINCH"), Some(Signal::WINCH));
        assert_eq!(parse("NOPE"), None);
        assert_eq!(parse("0"), None);
        assert_eq!(parse("-3"), None);
    }

    #[test]
    fn a_host_process_is_known_by_its_pid_and_start_time() {
        let me = HostProcess::of(i64::from(std::process::id())).expect("own stat");
        assert!(me.runs());
        let reused = HostProcess {
            started: me.started + 1,
            ..me
        };
        assert!(!reused.runs(), "another process with the same pid");
        // Above the kernel's pid_max: no process.
        assert_eq!(HostProcess::of(i64::from(i32::MAX)), None);
    }

    #[test]
    fn processes_of_this_servers_own_pid_namespace_are_no_containers() {
        let me = i64::from(std::process::id());
        let parent = i64::from(std::os::unix::process::parent_id());
        assert!(!in_one_container(me, parent));
        assert!(!in_one_container(me, i64::from(i32::MAX)));
    }

    #[test]
    fn the_parent_of_this_process_is_read_from_proc() {
        let me = i64::from(std::process::id());
        let parent = parent_of(me).expect("own stat");
        assert_eq!(parent, i64::from(std::os::unix::process::parent_id()));
    }
}
