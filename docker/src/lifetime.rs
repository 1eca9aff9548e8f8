//! Containers' lifetimes: a time to live (`ttl`, counted from the
//! container's first start) and an idle timeout (counted from the last
//! call that touched it), as E2B, Daytona and Modal sandboxes have; the
//! server removes a container (killing it first) once either has passed.
//!
//! - **Asked and decided at create** ([`Lifetime::decide`]): a
//!   container spec's `ttl` and `idleTimeout` are Go-like durations
//!   ([`parse_lifetime`]). A `user`'s get the operator's defaults when
//!   they ask for none, and a request above the operator's maximum is
//!   refused (`FORBIDDEN`, naming the limit) before anything is made.
//!   Admins get what they ask for.
//! - **Kept on the container**: `dockwire.ttl` and `dockwire.idle-timeout`,
//!   written on every container dockwire makes (empty when none, so that
//!   no image label can supply them) and covered by its seal
//!   ([`crate::ownership`]): a caller can neither forge nor change them.
//! - **Kept by the server** ([`crate::Config::with_lifetime_dir`]): each
//!   timed container's first start (so that a restart of the container
//!   does not restart its ttl) and last touch, one small file per
//!   container, so that deadlines hold across a restart of the server.
//! - **Touched** ([`Lifetimes::touch`]) by the start of every call that
//!   names the container: every reference resolved through
//!   `Engine::container` (exec, attach, logs, cp, inspect, start, stop,
//!   kill, wait, top, stats, network connect, …). Listing and events name
//!   no container and touch none. A call in progress holds the containers
//!   it named ([`Lifetimes::begin_call`], [`Lifetimes::end_call`]): they
//!   are not idle while it runs (a long `exec`, a followed log), and its
//!   end touches them again. Only the idle timeout: a ttl ends a container
//!   whatever runs in it.
//! - **Enforced** ([`Lifetimes::enforce`]): a task that wakes at the next
//!   deadline, when a container is made or started, and every few seconds
//!   anyway; it removes only containers whose seal verifies under this
//!   server's key, with their anonymous volumes.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters as q;
use chrono::{DateTime, SecondsFormat, Utc};
use dockwire_core::CallError;
use serde::{Deserialize, Serialize};

use crate::access::{Caller, forbidden};
use crate::catalog::*;
use crate::config::{Config, LifetimePolicy};
use crate::dialect;
use crate::error::{self, invalid_input};
use crate::ownership::{Kind, OwnerKey};

/// The longest lifetime a container may be given: a year.
pub const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// How often the enforcer looks at the engine even when nothing woke it
/// (a container started behind dockwire's back, an engine back up).
const RESCAN: Duration = Duration::from_secs(10);

/// The least time between two scans: a peer's calls (each create or
/// start wakes the enforcer) cannot make it scan the engine without pause.
const MIN_SCAN_GAP: Duration = Duration::from_millis(250);

/// Go's `time.ParseDuration` (docker's durations): an optional sign, then
/// one or more decimal numbers each with a unit (`ns`, `us`, `µs`, `ms`,
/// `s`, `m`, `h`), as in `90s`, `1h30m`, `1.5h`. Nanoseconds; `None` when
/// it is not a duration.
pub fn parse_go_duration(value: &str) -> Option<i128> {
    const NANOS: i128 = 1_000_000_000;
    let (negative, mut rest) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(after) => {
                let frac_len = after.bytes().take_while(u8::is_ascii_digit).count();
                after.split_at(frac_len)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS,
            "m" => 60 * NANOS,
            "h" => 3600 * NANOS,
            _ => return None,
        };
        let whole: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let mut part = whole.checked_mul(scale)?;
        if !frac.is_empty() {
            // Eighteen digits are enough below a nanosecond of any unit.
            let digits = &frac[..frac.len().min(18)];
            let numerator: i128 = digits.parse().ok()?;
            let denominator = 10i128.checked_pow(u32::try_from(digits.len()).ok()?)?;
            part = part.checked_add(numerator.checked_mul(scale)? / denominator)?;
        }
        total = total.checked_add(part)?;
        rest = after;
    }
    // Go limits durations to about 292 years.
    if total > i128::from(i64::MAX) {
        return None;
    }
    Some(if negative { -total } else { total })
}

/// A lifetime as a container spec or `serve` gives it: a Go-like duration
/// (`90s`, `5m`, `2h`, `1h30m`) from one millisecond to [`MAX_LIFETIME`],
/// counted in whole milliseconds. The error says why, for a message.
pub fn parse_lifetime(value: &str) -> Result<Duration, String> {
    let nanos = parse_go_duration(value.trim())
        .ok_or_else(|| format!("{value:?} is not a duration (90s, 5m, 2h, 1h30m)"))?;
    let millis = u64::try_from(nanos / 1_000_000).unwrap_or(0);
    if millis == 0 {
        return Err(format!("{value:?} is not a positive duration"));
    }
    let lifetime = Duration::from_millis(millis);
    if lifetime > MAX_LIFETIME {
        return Err(format!("{value:?} is longer than a year"));
    }
    Ok(lifetime)
}

/// `lifetime` as [`parse_lifetime`] reads it back: `1h30m`, `1m30s`,
/// `2s500ms`.
pub fn format_lifetime(lifetime: Duration) -> String {
    let millis = lifetime.as_millis();
    let parts = [
        (millis / 3_600_000, "h"),
        (millis / 60_000 % 60, "m"),
        (millis / 1000 % 60, "s"),
        (millis % 1000, "ms"),
    ];
    let text: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    match text.is_empty() {
        true => "0s".into(),
        false => text,
    }
}

/// A container's lifetimes, as decided at its create.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lifetime {
    /// Removed this long after its first start.
    pub ttl: Option<Duration>,
    /// Removed after this long with no call touching it.
    pub idle: Option<Duration>,
}

impl Lifetime {
    /// What `caller`'s container of `spec` gets under `config`: the spec's
    /// lifetimes, and for a user the operator's defaults when it asks for
    /// none; a user's request above a maximum is refused.
    pub(crate) fn decide(
        config: &Config,
        caller: &Caller,
        spec: &ContainerSpec,
    ) -> Result<Lifetime, CallError> {
        let asked = |field: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| parse_lifetime(v).map_err(|e| invalid_input(format!("`{field}`: {e}"))))
                .transpose()
        };
        let ttl = asked("ttl", &spec.ttl)?;
        let idle = asked("idleTimeout", &spec.idle_timeout)?;
        if caller.is_admin() {
            return Ok(Lifetime { ttl, idle });
        }
        Ok(Lifetime {
            ttl: within("ttl", "--user-ttl-max", ttl, config.user_ttl)?,
            idle: within(
                "idle timeout",
                "--user-idle-timeout-max",
                idle,
                config.user_idle_timeout,
            )?,
        })
    }

    /// The lifetimes `labels` carry (none for an empty or unreadable one).
    pub(crate) fn of_labels(labels: &HashMap<String, String>) -> Lifetime {
        let read = |key| {
            labels
                .get(key)
                .and_then(|v: &String| parse_lifetime(v).ok())
        };
        Lifetime {
            ttl: read(LABEL_TTL),
            idle: read(LABEL_IDLE_TIMEOUT),
        }
    }

    /// Writes these lifetimes in a new container's `labels` (before its
    /// seal): both always, empty when none.
    pub(crate) fn write_labels(&self, labels: &mut HashMap<String, String>) {
        let text = |d: Option<Duration>| d.map(format_lifetime).unwrap_or_default();
        labels.insert(LABEL_TTL.into(), text(self.ttl));
        labels.insert(LABEL_IDLE_TIMEOUT.into(), text(self.idle));
    }

    fn is_none(&self) -> bool {
        self.ttl.is_none() && self.idle.is_none()
    }
}

/// A user's `asked` lifetime under `policy`: the default when none is
/// asked (the maximum when there is no default), refused above the
/// maximum.
fn within(
    what: &str,
    flag: &str,
    asked: Option<Duration>,
    policy: LifetimePolicy,
) -> Result<Option<Duration>, CallError> {
    match (asked, policy.max) {
        (Some(asked), Some(max)) if asked > max => Err(forbidden(format!(
            "a {what} of {} is above this server's maximum for users, {} ({flag})",
            format_lifetime(asked),
            format_lifetime(max)
        ))),
        (Some(asked), _) => Ok(Some(asked)),
        (None, max) => Ok(policy.default.or(max)),
    }
}

/// What the server keeps of one timed container, in milliseconds since
/// the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    /// Its first start seen.
    #[serde(default)]
    started: Option<u64>,
    /// The last call that touched it.
    #[serde(default)]
    touched: Option<u64>,
}

/// Which deadline comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    Ttl,
    Idle,
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::Ttl => "ttl",
            Cause::Idle => "idle-timeout",
        }
    }
}

/// When a container with `lifetime` and `record`, created at `created`
/// (ms), expires, and why: its ttl from its first start (none before it
/// starts), its idle timeout from its last touch or its create.
fn deadline(lifetime: Lifetime, record: Record, created: u64) -> Option<(u64, Cause)> {
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let ttl = match (lifetime.ttl, record.started) {
        (Some(ttl), Some(started)) => Some((started.saturating_add(millis(ttl)), Cause::Ttl)),
        _ => None,
    };
    let idle = lifetime.idle.map(|idle| {
        let last = record.touched.unwrap_or(created).max(created);
        (last.saturating_add(millis(idle)), Cause::Idle)
    });
    match (ttl, idle) {
        (Some(t), Some(i)) => Some(if i.0 < t.0 { i } else { t }),
        (t, i) => t.or(i),
    }
}

/// A timed container the enforcer has seen.
#[derive(Clone, Debug)]
struct Tracked {
    /// Its names on the engine, without the leading `/`.
    names: Vec<String>,
    lifetime: Lifetime,
    record: Record,
}

#[derive(Default)]
struct State {
    /// Timed containers by id.
    tracked: HashMap<String, Tracked>,
    /// Touches of references no tracked container answered to yet (a
    /// container just made), by reference; matched at the next scan.
    touches: HashMap<String, u64>,
    /// The calls running, by number, with the references each named: the
    /// containers they hold.
    calls: HashMap<u64, Vec<String>>,
}

/// The lifetimes of one server's containers: the touches, the records
/// kept across restarts, and the enforcer.
pub(crate) struct Lifetimes {
    dir: Option<PathBuf>,
    key: OwnerKey,
    state: Mutex<State>,
    wake: tokio::sync::Notify,
}

impl Lifetimes {
    pub(crate) fn new(config: &Config) -> Self {
        Lifetimes {
            dir: config.lifetime_dir.clone(),
            key: config.owner_key.clone(),
            state: Mutex::new(State::default()),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Call `call` began: the containers it names are held until
    /// [`end_call`](Self::end_call).
    pub(crate) fn begin_call(&self, call: u64) {
        self.lock().calls.insert(call, Vec::new());
    }

    /// Call `call` ended (answered, failed or cancelled): the containers
    /// it held are touched, their idle time counting from now.
    pub(crate) fn end_call(&self, call: u64) {
        let held = self.lock().calls.remove(&call).unwrap_or_default();
        for reference in held {
            self.touch(0, &reference);
        }
    }

    /// Call `call` named container `reference` (an id, an id's prefix, or
    /// an engine name): pushes its idle deadline, and holds it while the
    /// call runs (a call that has not begun, or has ended, holds nothing).
    pub(crate) fn touch(&self, call: u64, reference: &str) {
        let now = now_ms();
        let reference = reference.strip_prefix('/').unwrap_or(reference);
        let mut state = self.lock();
        if let Some(held) = state.calls.get_mut(&call) {
            if !held.iter().any(|r| r == reference) {
                held.push(reference.to_owned());
            }
        }
        let found = state
            .tracked
            .iter_mut()
            .find(|(id, t)| answers(id, &t.names, reference));
        match found {
            Some((id, tracked)) => {
                tracked.record.touched = Some(now);
                if tracked.lifetime.idle.is_some() {
                    let (id, record) = (id.clone(), tracked.record);
                    drop(state);
                    self.save(&id, record);
                }
            }
            None => {
                state.touches.insert(reference.to_owned(), now);
            }
        }
    }

    /// A container was made or started: its deadlines may be sooner than
    /// the enforcer's next wake.
    pub(crate) fn changed(&self) {
        self.wake.notify_one();
    }

    /// When container `info` expires and why, as `caller` sees it: labels
    /// for `container/inspect` ([`LABEL_EXPIRES`], [`LABEL_EXPIRES_BY`]).
    /// A user's inspection is of its own sealed container; an admin's is
    /// checked against the seal, since only sealed containers are enforced.
    pub(crate) fn show(&self, caller: &Caller, info: &mut ContainerInspectResponse) {
        let Some(labels) = info.config.as_ref().and_then(|c| c.labels.as_ref()) else {
            return;
        };
        let lifetime = Lifetime::of_labels(labels);
        if lifetime.is_none() {
            return;
        }
        let name = info.name.as_deref().unwrap_or_default();
        if caller.is_admin() && self.key.owner(Kind::Container, name, labels).is_none() {
            return;
        }
        let id = info.id.clone().unwrap_or_default();
        let started = info
            .state
            .as_ref()
            .and_then(|s| s.started_at.as_deref())
            .and_then(time_ms);
        let created = info.created.as_deref().and_then(time_ms).unwrap_or(0);
        let mut record = self
            .lock()
            .tracked
            .get(&id)
            .map(|t| t.record)
            .or_else(|| self.load(&id))
            .unwrap_or_default();
        record.started = min_some(record.started, started);
        let Some((at, cause)) = deadline(lifetime, record, created) else {
            return;
        };
        let Some(at) = UNIX_EPOCH.checked_add(Duration::from_millis(at)) else {
            return;
        };
        let shown = DateTime::<Utc>::from(at).to_rfc3339_opts(SecondsFormat::Millis, true);
        if let Some(labels) = info.config.as_mut().and_then(|c| c.labels.as_mut()) {
            labels.insert(LABEL_EXPIRES.into(), shown);
            labels.insert(LABEL_EXPIRES_BY.into(), cause.as_str().into());
        }
    }

    /// Enforces the lifetimes of the containers `docker` reaches, until
    /// dropped: wakes at the next deadline, on [`changed`](Self::changed),
    /// and every [`RESCAN`].
    pub(crate) async fn enforce<F, Fut>(&self, docker: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Docker, CallError>>,
    {
        loop {
            let began = tokio::time::Instant::now();
            let pause = match docker().await {
                Ok(docker) => match self.scan(&docker).await {
                    Ok(Some(next)) => Duration::from_millis(next.saturating_sub(now_ms())),
                    Ok(None) => RESCAN,
                    Err(e) => {
                        tracing::warn!("cannot enforce containers' lifetimes: {e}");
                        Duration::from_secs(1)
                    }
                },
                Err(_) => Duration::from_secs(1),
            };
            let sleep = std::pin::pin!(tokio::time::sleep(pause.min(RESCAN)));
            let woken = std::pin::pin!(self.wake.notified());
            futures::future::select(sleep, woken).await;
            // However often calls wake it, it scans a few times a second
            // at most.
            tokio::time::sleep_until(began + MIN_SCAN_GAP).await;
        }
    }

    /// Looks at every timed container sealed by this server, removes the
    /// expired ones, and answers the next deadline (ms), if any.
    async fn scan(&self, docker: &Docker) -> Result<Option<u64>, CallError> {
        let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL_MANAGED}=true")])]);
        let options = q::ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let listed = dialect::list_containers(docker, Some(options))
            .await
            .map_err(error::container)?;
        let mut seen = Vec::new();
        let mut expired = Vec::new();
        let mut next: Option<u64> = None;
        for container in listed {
            let (Some(id), Some(labels)) = (container.id, container.labels) else {
                continue;
            };
            let lifetime = Lifetime::of_labels(&labels);
            let names: Vec<String> = container
                .names
                .unwrap_or_default()
                .iter()
                .map(|n| n.strip_prefix('/').unwrap_or(n).to_owned())
                .collect();
            let Some(name) = names.first() else {
                continue;
            };
            if lifetime.is_none() || self.key.owner(Kind::Container, name, &labels).is_none() {
                continue;
            }
            // Its first start: what the engine says now, or what the
            // server saw before (a restart of the container moves the
            // engine's).
            let info = match dialect::inspect_container(docker, &id).await {
                Ok(info) => info,
                // Gone in between.
                Err(_) => continue,
            };
            let started = info
                .state
                .as_ref()
                .and_then(|s| s.started_at.as_deref())
                .and_then(time_ms);
            let created = info.created.as_deref().and_then(time_ms).unwrap_or(0);
            seen.push(id.clone());
            let Some((at, cause)) = self.track(&id, names, lifetime, started, created) else {
                continue;
            };
            match at <= now_ms() {
                true => expired.push((id, cause)),
                false => next = Some(next.map_or(at, |n| n.min(at))),
            }
        }
        self.forget_others(&seen);
        // Removed at once, not one after another: each takes the engine
        // a moment (the kill, the layers).
        let removals = expired.into_iter().map(|(id, cause)| async move {
            let options = q::RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            let removed = docker.remove_container(&id, Some(options)).await;
            (id, cause, removed)
        });
        for (id, cause, removed) in futures::future::join_all(removals).await {
            match removed {
                Ok(()) => {
                    tracing::info!(container = %id, "removed: its {} has passed", cause.as_str());
                    self.forget(&id);
                }
                Err(e) => match error::container(e) {
                    e if e.code == CONTAINER_NOT_FOUND => self.forget(&id),
                    e => {
                        tracing::warn!(container = %id, "cannot remove an expired container: {e}");
                        next = Some(now_ms() + 1000);
                    }
                },
            }
        }
        Ok(next)
    }

    /// Updates what the server keeps of timed container `id` (its first
    /// start, touches not yet matched) and answers its deadline.
    fn track(
        &self,
        id: &str,
        names: Vec<String>,
        lifetime: Lifetime,
        started: Option<u64>,
        created: u64,
    ) -> Option<(u64, Cause)> {
        let mut state = self.lock();
        let known = state.tracked.get(id).map(|t| t.record);
        let before = match known {
            Some(record) => record,
            None => self.load(id).unwrap_or_default(),
        };
        let mut record = before;
        record.started = min_some(record.started, started);
        let touched = state
            .touches
            .iter()
            .filter(|(reference, _)| answers(id, &names, reference))
            .map(|(_, at)| *at)
            .max();
        record.touched = max_some(record.touched, touched);
        // Held by a running call: not idle.
        let held = state.calls.values().flatten();
        if held.clone().any(|reference| answers(id, &names, reference)) {
            record.touched = max_some(record.touched, Some(now_ms()));
        }
        state.tracked.insert(
            id.to_owned(),
            Tracked {
                names,
                lifetime,
                record,
            },
        );
        drop(state);
        if known != Some(record) {
            self.save(id, record);
        }
        deadline(lifetime, record, created)
    }

    /// Drops what is kept of containers not in `seen` (gone, or no longer
    /// timed), in memory and on disk, and the touches matched by now.
    fn forget_others(&self, seen: &[String]) {
        let gone: Vec<String> = {
            let mut state = self.lock();
            state.touches.clear();
            let gone = state
                .tracked
                .keys()
                .filter(|id| !seen.contains(id))
                .cloned()
                .collect();
            state.tracked.retain(|id, _| seen.contains(id));
            gone
        };
        for id in gone {
            self.forget(&id);
        }
        // Records left by a previous run for containers gone since.
        let Some(dir) = &self.dir else { return };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            // A `.tmp` is a write a crash cut short.
            let id = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json").or_else(|| n.strip_suffix(".tmp")));
            let Some(id) = id else {
                continue;
            };
            if valid_id(id) && !seen.iter().any(|s| s == id) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    fn forget(&self, id: &str) {
        self.lock().tracked.remove(id);
        if let Some(path) = self.path(id) {
            let _ = std::fs::remove_file(path);
        }
    }

    fn path(&self, id: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        valid_id(id).then(|| dir.join(format!("{id}.json")))
    }

    fn load(&self, id: &str) -> Option<Record> {
        let bytes = std::fs::read(self.path(id)?).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes `id`'s record (private to the server's user, replaced
    /// whole); a failure is logged: a restart then counts from less.
    fn save(&self, id: &str, record: Record) {
        let (Some(dir), Some(path)) = (&self.dir, self.path(id)) else {
            return;
        };
        if let Err(e) = write_record(dir, &path, record) {
            tracing::warn!(container = %id, "cannot keep a container's lifetime record: {e}");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn write_record(dir: &Path, path: &Path, record: Record) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    let bytes = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// Whether container `id` named `names` answers to `reference`: its id,
/// a prefix of it, or one of its names.
fn answers(id: &str, names: &[String], reference: &str) -> bool {
    !reference.is_empty() && (id.starts_with(reference) || names.iter().any(|n| n == reference))
}

/// The engine's ids are hex: nothing else becomes a file name.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An engine's RFC 3339 time in ms since the epoch; `None` for Docker's
/// zero time (`0001-01-01T00:00:00Z`: never started) or an unreadable one.
fn time_ms(text: &str) -> Option<u64> {
    let time = DateTime::parse_from_rfc3339(text).ok()?;
    u64::try_from(time.timestamp_millis())
        .ok()
        .filter(|t| *t > 0)
}

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

fn min_some(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_some(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_read_go_durations_and_refuse_the_rest() {
        let s = Duration::from_secs;
        assert_eq!(parse_lifetime("90s"), Ok(s(90)));
        assert_eq!(parse_lifetime("5m"), Ok(s(300)));
        assert_eq!(parse_lifetime("2h"), Ok(s(7200)));
        assert_eq!(parse_lifetime("1h30m"), Ok(s(5400)));
        assert_eq!(parse_lifetime("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in [
            "", "0", "0s", "-5s", "5", "5d", "1h30", "s", "abc", "500us", "9000h",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_formatted_lifetime_reads_back_the_same() {
        for ms in [1, 999, 1000, 1500, 90_000, 5_400_000, 7_200_000, 3_723_004] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_lifetime(&format_lifetime(d)), Ok(d), "{ms}");
        }
        assert_eq!(format_lifetime(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_lifetime(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn a_users_lifetime_gets_the_default_and_is_refused_above_the_maximum() {
        let s = |n| Some(Duration::from_secs(n));
        let none = LifetimePolicy::default();
        assert_eq!(within("ttl", "f", None, none), Ok(None));
        assert_eq!(within("ttl", "f", s(5), none), Ok(s(5)));
        let policy = LifetimePolicy::new(s(60), s(3600));
        assert_eq!(within("ttl", "f", None, policy), Ok(s(60)));
        assert_eq!(within("ttl", "f", s(3600), policy), Ok(s(3600)));
        let refused = within("ttl", "--user-ttl-max", s(3601), policy).unwrap_err();
        assert_eq!(refused.code, dockwire_core::ErrorCode::FORBIDDEN);
        assert!(refused.message.contains("1h0m1s") || refused.message.contains("1h1s"));
        assert!(
            refused.message.contains("--user-ttl-max"),
            "{}",
            refused.message
        );
        // A maximum alone is the default too: no user escapes it by
        // asking for nothing.
        assert_eq!(
            within("ttl", "f", None, LifetimePolicy::new(None, s(10))),
            Ok(s(10))
        );
    }

    #[test]
    fn the_first_deadline_wins_and_a_ttl_waits_for_the_start() {
        let s = |n| Some(Duration::from_secs(n));
        let both = Lifetime {
            ttl: s(10),
            idle: s(3),
        };
        let created = 1_000_000;
        // Not started, never touched: idle from the create.
        let record = Record::default();
        assert_eq!(
            deadline(both, record, created),
            Some((created + 3000, Cause::Idle))
        );
        // Touched late: the ttl from the start comes first.
        let record = Record {
            started: Some(created + 100),
            touched: Some(created + 9000),
        };
        assert_eq!(
            deadline(both, record, created),
            Some((created + 10_100, Cause::Ttl))
        );
        let ttl_only = Lifetime {
            ttl: s(10),
            idle: None,
        };
        assert_eq!(deadline(ttl_only, Record::default(), created), None);
    }

    #[test]
    fn a_reference_answers_by_id_prefix_or_name() {
        let names = vec!["dw-abc-web".to_owned()];
        assert!(answers("abcdef12", &names, "abcdef12"));
        assert!(answers("abcdef12", &names, "abc"));
        assert!(answers("abcdef12", &names, "dw-abc-web"));
        assert!(!answers("abcdef12", &names, "web"));
        assert!(!answers("abcdef12", &names, ""));
    }

    #[test]
    fn docker_zero_time_is_never_started() {
        assert_eq!(time_ms("0001-01-01T00:00:00Z"), None);
        assert_eq!(time_ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(time_ms("garbage"), None);
    }
}
