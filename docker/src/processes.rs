//! Detached processes (`process/*`): the registry of one server's, each
//! with its owner, its output buffer ([`crate::output_buffer`]), its end,
//! its stdin for the one attacher holding it, and the control that signals
//! and kills it. The handlers are in `process.rs`; this is what they
//! share, kept by the engine handle.
//!
//! A process belongs to the peer that started it, by the same owner as
//! its containers ([`Caller::owner`]): a `user` finds only its own, and
//! another's id answers exactly as an unknown one does; an admin finds
//! every peer's. The registry is bounded: a process keeps at most the
//! operator's buffer cap ([`Config::process_buffer_max`]), and a peer has
//! at most [`Config::max_processes`] processes remembered (running, or
//! ended and not yet removed), so that no peer can grow the server's
//! memory without bound.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use dockwire_core::{CallError, ErrorCode};
use futures::future::BoxFuture;

use crate::access::{Caller, forbidden};
use crate::catalog::{
    CONFLICT, DEFAULT_PROCESS_BUFFER, DOCKER_ERROR, ProcessInfo, ProcessState, StreamName,
    StreamOffsets,
};
use crate::config::Config;
use crate::error::invalid_input;
use crate::output_buffer::OutputBuffer;

/// A process's stdin, towards the engine.
pub(crate) type ProcessStdin = Pin<Box<dyn tokio::io::AsyncWrite + Send>>;

/// What reaches a running process: its signals, its terminal's size, and
/// its kill.
pub(crate) trait ProcessControl: Send + Sync {
    /// Delivers the signal `name` to its top process (an unknown or
    /// undeliverable one is logged and dropped).
    fn signal<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()>;
    /// Resizes its terminal.
    fn resize(&self, cols: u16, rows: u16) -> BoxFuture<'_, ()>;
    /// Kills it and everything it started, in the background.
    fn kill(&self);
    /// It has ended and its exit code is known: nothing to kill any more.
    fn ended(&self);
}

/// How a process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// With this exit code.
    Exited(i64),
    /// With no exit code to tell (its container removed, the engine lost
    /// it): the code a caller waiting for it gets (`UNAVAILABLE` when the
    /// engine could not be reached), and why.
    Lost(ErrorCode, String),
}

/// One detached process.
pub(crate) struct Process {
    pub(crate) id: String,
    /// Its starter's owner.
    pub(crate) owner: String,
    pub(crate) tag: Option<String>,
    /// Its container as the start named it.
    pub(crate) container_shown: String,
    pub(crate) cmd: Vec<String>,
    pub(crate) tty: bool,
    pub(crate) budget: u64,
    pub(crate) started: String,
    state: Mutex<State>,
    changed: tokio::sync::watch::Sender<u64>,
    stdin: Mutex<Option<ProcessStdin>>,
    control: Mutex<Option<Arc<dyn ProcessControl>>>,
    /// Stdin bytes the process was given (written to the engine), through
    /// every attacher: a resuming client resends from there.
    stdin_delivered: AtomicU64,
    /// Whether an attacher closed its stdin (not on a terminal).
    stdin_closed: AtomicBool,
    /// Set when the process is an interactive session's.
    pub(crate) session: Option<Session>,
}

/// What an interactive session's process has beyond a detached one's:
/// its output waits for its client (nothing is dropped that the client
/// may not have had), and a grace period passes on a lost link.
pub(crate) struct Session {
    /// How long a lost session waits for its client.
    pub(crate) grace: Duration,
    /// Per stream, the offset up to which an attacher has handed output
    /// on toward its client.
    sent: [AtomicU64; 2],
    /// Wakes the pump when output was handed on, or the process ended.
    moved: tokio::sync::Notify,
    /// How many attaches have held its stdin: a grace period started at a
    /// loss kills only if none came since.
    resumes: AtomicU64,
}

impl Session {
    /// The number of attaches that have held stdin so far.
    pub(crate) fn resumes(&self) -> u64 {
        self.resumes.load(Ordering::SeqCst)
    }
}

struct State {
    output: OutputBuffer,
    end: Option<End>,
}

/// What a process is started as, before it has an id.
pub(crate) struct NewProcess {
    pub(crate) tag: Option<String>,
    pub(crate) container_shown: String,
    pub(crate) cmd: Vec<String>,
    pub(crate) tty: bool,
    /// An interactive session's grace period, for a session's process.
    pub(crate) session_grace: Option<Duration>,
}

impl Process {
    /// Waits, for a session's process, while the output not yet handed
    /// on to its client is half its buffer: the rest of the buffer holds
    /// what is on its way (queues and the transport's window), so that a
    /// client resuming from the last byte it wrote finds it held. A
    /// detached process never waits; nor does one that has ended.
    pub(crate) async fn room(&self) {
        let Some(session) = &self.session else {
            return;
        };
        let half = self.budget / 2;
        loop {
            let moved = session.moved.notified();
            let ahead = {
                let state = self.lock();
                let mut ahead = 0u64;
                for (slot, stream) in [StreamName::Stdout, StreamName::Stderr]
                    .into_iter()
                    .enumerate()
                {
                    let written = state.output.offsets(stream).written;
                    let sent = session.sent[slot].load(Ordering::SeqCst);
                    ahead = ahead.saturating_add(written.saturating_sub(sent));
                }
                if state.end.is_some() {
                    return;
                }
                ahead
            };
            if ahead < half {
                return;
            }
            moved.await;
        }
    }

    /// An attacher has handed `stream`'s output up to `offset` on.
    pub(crate) fn note_sent(&self, stream: StreamName, offset: u64) {
        let Some(session) = &self.session else {
            return;
        };
        let slot = match stream {
            StreamName::Stdout => 0,
            StreamName::Stderr => 1,
        };
        session.sent[slot].fetch_max(offset, Ordering::SeqCst);
        session.moved.notify_one();
    }

    /// `n` more stdin bytes reached the process.
    pub(crate) fn note_delivered(&self, n: usize) {
        self.stdin_delivered.fetch_add(n as u64, Ordering::SeqCst);
    }

    /// The stdin bytes the process was given so far.
    pub(crate) fn stdin_delivered(&self) -> u64 {
        self.stdin_delivered.load(Ordering::SeqCst)
    }

    /// An attacher closed stdin.
    pub(crate) fn note_stdin_closed(&self) {
        self.stdin_closed.store(true, Ordering::SeqCst);
    }

    /// Whether an attacher closed stdin.
    pub(crate) fn stdin_closed(&self) -> bool {
        self.stdin_closed.load(Ordering::SeqCst)
    }

    /// A session's attacher takes stdin: a grace period running is over.
    pub(crate) fn note_resumed(&self) {
        if let Some(session) = &self.session {
            session.resumes.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Appends output and wakes its readers.
    pub(crate) fn push(&self, stream: StreamName, bytes: &[u8]) {
        self.lock().output.push(stream, bytes);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Records its end (the first one told), lets its control go, and
    /// wakes its readers. A process lost with no exit code (the engine
    /// went away, its container went) may still run: it is killed, as a
    /// cancelled exec's is; one that exited leaves nothing to kill.
    pub(crate) fn finish(&self, end: End) {
        let exited = matches!(end, End::Exited(_));
        {
            let mut state = self.lock();
            if state.end.is_none() {
                state.end = Some(end);
            }
        }
        let control = self.take_control();
        if let Some(control) = control {
            match exited {
                true => control.ended(),
                false => control.kill(),
            }
        }
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        if let Some(session) = &self.session {
            session.moved.notify_one();
        }
    }

    /// How it ended, once it has.
    pub(crate) fn end(&self) -> Option<End> {
        self.lock().end.clone()
    }

    /// Its held output of `stream` from `from` on (see
    /// [`OutputBuffer::read`]), and whether it has ended (read before the
    /// output: an ended process has nothing more after it).
    pub(crate) fn read(&self, stream: StreamName, from: u64) -> (u64, Vec<Bytes>, bool) {
        let state = self.lock();
        let (at, chunks) = state.output.read(stream, from);
        (at, chunks, state.end.is_some())
    }

    /// The offsets of `stream`.
    pub(crate) fn offsets(&self, stream: StreamName) -> StreamOffsets {
        self.lock().output.offsets(stream)
    }

    /// A watch that changes whenever output or the end arrives.
    pub(crate) fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Its stdin, for one attacher: refused while another holds it, and
    /// when the process has none (started without `stdin`, or ended).
    pub(crate) fn take_stdin(&self) -> Result<ProcessStdin, CallError> {
        self.stdin
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| {
                CallError::new(
                    CONFLICT,
                    format!(
                        "process {} has no stdin to give: another attacher holds it, or it was \
                         started without stdin, or it has ended",
                        self.id
                    ),
                )
            })
    }

    /// Gives stdin back after an attach, for the next one (unless the
    /// process has ended since).
    pub(crate) fn return_stdin(&self, stdin: ProcessStdin) {
        if self.end().is_none() {
            *self.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(stdin);
        }
    }

    /// Its control, while it runs.
    pub(crate) fn control(&self) -> Option<Arc<dyn ProcessControl>> {
        self.control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Gives it its stdin and control, once started.
    pub(crate) fn started(&self, stdin: Option<ProcessStdin>, control: Arc<dyn ProcessControl>) {
        *self.stdin.lock().unwrap_or_else(|p| p.into_inner()) = stdin;
        *self.control.lock().unwrap_or_else(|p| p.into_inner()) = Some(control);
    }

    /// Its control, taken: no one else acts on the process through it.
    fn take_control(&self) -> Option<Arc<dyn ProcessControl>> {
        self.control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Kills it if it runs, and forgets its control.
    pub(crate) fn kill(&self) {
        let control = self.take_control();
        if let Some(control) = control {
            control.kill();
        }
    }

    /// As `process/list` shows it.
    pub(crate) fn info(&self) -> ProcessInfo {
        let state = self.lock();
        let (state_name, exit_code, error) = match &state.end {
            None => (ProcessState::Running, None, None),
            Some(End::Exited(code)) => (ProcessState::Exited, Some(*code), None),
            Some(End::Lost(_, why)) => (ProcessState::Lost, None, Some(why.clone())),
        };
        ProcessInfo {
            id: self.id.clone(),
            tag: self.tag.clone(),
            container: self.container_shown.clone(),
            cmd: self.cmd.clone(),
            tty: self.tty,
            state: state_name,
            exit_code,
            error,
            stdout: state.output.offsets(StreamName::Stdout),
            stderr: state.output.offsets(StreamName::Stderr),
            buffer: self.budget,
            started: self.started.clone(),
            stdin_delivered: self.stdin_delivered(),
            session: self.session.is_some(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One server's detached processes.
pub(crate) struct Processes {
    buffer_max: u64,
    max_per_peer: usize,
    state: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    processes: HashMap<String, Arc<Process>>,
    /// Starts under way, per owner: counted against the cap.
    starting: HashMap<String, usize>,
}

/// A place for one process of an owner's, held while it starts.
pub(crate) struct Slot<'a> {
    processes: &'a Processes,
    owner: String,
    /// The buffer the process gets.
    pub(crate) budget: u64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut registry = self.processes.lock();
        if let Some(n) = registry.starting.get_mut(&self.owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                registry.starting.remove(&self.owner);
            }
        }
    }
}

impl Processes {
    pub(crate) fn new(config: &Config) -> Self {
        Processes {
            buffer_max: config.process_buffer_max,
            max_per_peer: config.max_processes,
            state: Mutex::new(Registry::default()),
        }
    }

    /// A place for one more of `caller`'s processes, with a buffer of
    /// `asked` bytes (or the default): refused above the operator's caps,
    /// before anything starts.
    pub(crate) fn reserve(
        &self,
        caller: &Caller,
        asked: Option<u64>,
    ) -> Result<Slot<'_>, CallError> {
        let budget = asked.unwrap_or(DEFAULT_PROCESS_BUFFER.min(self.buffer_max));
        if budget == 0 {
            return Err(invalid_input("`buffer` must be at least one byte"));
        }
        if budget > self.buffer_max {
            return Err(forbidden(format!(
                "a buffer of {budget} bytes is above this server's cap of {} \
                 (serve --process-buffer-max)",
                self.buffer_max
            )));
        }
        let mut registry = self.lock();
        let mut held = registry
            .processes
            .values()
            .filter(|p| p.owner == caller.owner)
            .count();
        let starting = registry.starting.get(&caller.owner).copied().unwrap_or(0);
        // Sessions that ended are kept only for a client whose link died
        // with their exit code: the oldest make room first.
        while held + starting >= self.max_per_peer {
            let oldest = registry
                .processes
                .values()
                .filter(|p| p.owner == caller.owner && p.session.is_some() && p.end().is_some())
                .min_by(|a, b| a.started.cmp(&b.started).then(a.id.cmp(&b.id)))
                .map(|p| p.id.clone());
            let Some(oldest) = oldest else { break };
            registry.processes.remove(&oldest);
            held -= 1;
        }
        if held + starting >= self.max_per_peer {
            return Err(forbidden(format!(
                "{} processes are the most a peer may have on this server (serve \
                 --max-processes); remove ended ones with process/remove",
                self.max_per_peer
            )));
        }
        *registry.starting.entry(caller.owner.clone()).or_default() += 1;
        Ok(Slot {
            processes: self,
            owner: caller.owner.clone(),
            budget,
        })
    }

    /// Registers a process made in `slot`, with a fresh id.
    pub(crate) fn register(
        &self,
        slot: Slot<'_>,
        new: NewProcess,
    ) -> Result<Arc<Process>, CallError> {
        let id = fresh_id()?;
        let process = Arc::new(Process {
            id: id.clone(),
            owner: slot.owner.clone(),
            tag: new.tag,
            container_shown: new.container_shown,
            cmd: new.cmd,
            tty: new.tty,
            budget: slot.budget,
            started: chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            state: Mutex::new(State {
                output: OutputBuffer::new(usize::try_from(slot.budget).unwrap_or(usize::MAX)),
                end: None,
            }),
            changed: tokio::sync::watch::channel(0).0,
            stdin: Mutex::new(None),
            control: Mutex::new(None),
            stdin_delivered: AtomicU64::new(0),
            stdin_closed: AtomicBool::new(false),
            session: new.session_grace.map(|grace| Session {
                grace,
                sent: [AtomicU64::new(0), AtomicU64::new(0)],
                moved: tokio::sync::Notify::new(),
                resumes: AtomicU64::new(0),
            }),
        });
        self.lock().processes.insert(id, process.clone());
        drop(slot);
        Ok(process)
    }

    /// The process `id`, if `caller` may see it: its own, or any for an
    /// admin. Another's answers as a missing one does.
    pub(crate) fn find(&self, caller: &Caller, id: &str) -> Result<Arc<Process>, CallError> {
        self.lock()
            .processes
            .get(id)
            .filter(|p| caller.is_admin() || p.owner == caller.owner)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    /// The processes `caller` may see, oldest first.
    pub(crate) fn list(&self, caller: &Caller) -> Vec<Arc<Process>> {
        let mut mine: Vec<Arc<Process>> = self
            .lock()
            .processes
            .values()
            .filter(|p| caller.is_admin() || p.owner == caller.owner)
            .cloned()
            .collect();
        mine.sort_by(|a, b| a.started.cmp(&b.started).then(a.id.cmp(&b.id)));
        mine
    }

    /// Forgets the process `id` (as [`find`](Self::find) finds it),
    /// killing it first if it runs.
    pub(crate) fn remove(&self, caller: &Caller, id: &str) -> Result<(), CallError> {
        let process = self.find(caller, id)?;
        self.forget(&process, "removed");
        Ok(())
    }

    /// Forgets `process`, killing it first if it runs (`why` is its end
    /// then).
    pub(crate) fn forget(&self, process: &Process, why: &str) {
        self.lock().processes.remove(&process.id);
        process.kill();
        process.finish(End::Lost(DOCKER_ERROR, why.into()));
    }

    /// Drops a process that never started.
    pub(crate) fn discard(&self, id: &str) {
        self.lock().processes.remove(id);
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What an unknown process, or another peer's, answers.
pub(crate) fn not_found(id: &str) -> CallError {
    CallError::new(ErrorCode::NOT_FOUND, format!("No such process: {id}"))
}

/// A new process id: `p-` and 128 random bits in hex.
fn fresh_id() -> Result<String, CallError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).map_err(|_| {
        CallError::new(
            ErrorCode::INTERNAL,
            "the system's random source failed: no process id",
        )
    })?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("p-{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processes(buffer_max: u64, max: usize) -> Processes {
        let config = Config::from_env()
            .with_process_buffer_max(buffer_max)
            .with_max_processes(max);
        Processes::new(&config)
    }

    fn new_process() -> NewProcess {
        NewProcess {
            tag: None,
            container_shown: "c".into(),
            cmd: vec!["true".into()],
            tty: false,
            session_grace: None,
        }
    }

    #[test]
    fn another_users_process_answers_as_a_missing_one() {
        let registry = processes(1 << 20, 4);
        let alice = Caller::test_user("alice");
        let bob = Caller::test_user("bob");
        let slot = registry.reserve(&alice, None).unwrap();
        let p = registry.register(slot, new_process()).unwrap();
        assert!(p.id.starts_with("p-") && p.id.len() == 34, "{}", p.id);
        assert!(registry.find(&alice, &p.id).is_ok());
        let Err(theirs) = registry.find(&bob, &p.id) else {
            panic!("found")
        };
        let Err(missing) = registry.find(&bob, "p-00000000000000000000000000000000") else {
            panic!("found")
        };
        assert_eq!(theirs.code, ErrorCode::NOT_FOUND);
        assert_eq!(
            theirs.message.replace(&p.id, "ID"),
            missing
                .message
                .replace("p-00000000000000000000000000000000", "ID")
        );
        assert!(registry.list(&bob).is_empty());
        assert!(registry.remove(&bob, &p.id).is_err());
        assert!(
            registry
                .find(&Caller::test_as(crate::Role::Admin), &p.id)
                .is_ok()
        );
    }

    #[test]
    fn ended_sessions_make_room_at_the_count_and_running_ones_do_not() {
        let registry = processes(1000, 2);
        let alice = Caller::test_user("alice");
        let session = || NewProcess {
            session_grace: Some(Duration::from_secs(30)),
            ..new_process()
        };
        let older = registry
            .register(registry.reserve(&alice, None).unwrap(), session())
            .unwrap();
        // Started times are to the millisecond.
        std::thread::sleep(Duration::from_millis(5));
        let newer = registry
            .register(registry.reserve(&alice, None).unwrap(), session())
            .unwrap();
        // Both running: the count holds.
        assert!(registry.reserve(&alice, None).is_err());
        older.finish(End::Exited(0));
        newer.finish(End::Exited(0));
        // Both ended: the oldest goes to make room, the other stays.
        let slot = registry.reserve(&alice, None).unwrap();
        assert!(registry.find(&alice, &older.id).is_err());
        assert!(registry.find(&alice, &newer.id).is_ok());
        drop(slot);
        // A detached process that ended is the peer's to remove: it stays.
        let detached = registry
            .register(registry.reserve(&alice, None).unwrap(), new_process())
            .unwrap();
        detached.finish(End::Exited(0));
        let _slot = registry.reserve(&alice, None).unwrap();
        assert!(registry.find(&alice, &newer.id).is_err());
        assert!(registry.reserve(&alice, None).is_err());
        assert!(registry.find(&alice, &detached.id).is_ok());
    }

    #[test]
    fn a_buffer_above_the_cap_and_a_process_above_the_count_are_refused() {
        let registry = processes(1000, 2);
        let alice = Caller::test_user("alice");
        let Err(refused) = registry.reserve(&alice, Some(1001)) else {
            panic!("above the cap")
        };
        assert_eq!(refused.code, ErrorCode::FORBIDDEN);
        assert!(refused.message.contains("--process-buffer-max"));
        assert_eq!(registry.reserve(&alice, None).unwrap().budget, 1000);
        let one = registry.reserve(&alice, Some(10)).unwrap();
        let _two = registry.reserve(&alice, Some(10)).unwrap();
        let Err(third) = registry.reserve(&alice, Some(10)) else {
            panic!("above the count")
        };
        assert!(
            third.message.contains("--max-processes"),
            "{}",
            third.message
        );
        // Another peer has its own count.
        assert!(registry.reserve(&Caller::test_user("bob"), None).is_ok());
        // A registered one still counts; a removed one no longer does.
        let p = registry.register(one, new_process()).unwrap();
        assert!(registry.reserve(&alice, None).is_err());
        registry.remove(&alice, &p.id).unwrap();
        assert!(registry.reserve(&alice, None).is_ok());
        // Forgotten: nothing of the registry's holds it (its buffer goes
        // with the last reader).
        assert_eq!(Arc::strong_count(&p), 1);
    }
}
