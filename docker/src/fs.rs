//! `fs/*`: a container's files, one at a time, with nothing needed in
//! its image. Each call takes the container through `Engine::container`
//! (a user's own only), then goes one of two ways, decided per call:
//!
//! - a running runc container whose processes this server sees (it shares
//!   the engine host's pid namespace, and exec signals go by host pid):
//!   its root through `/proc/<pid>/root`, every path resolved by the
//!   kernel inside it ([`crate::fs_direct`]); writes are atomic (a
//!   temporary file renamed over the old one);
//! - anything else (stopped, gVisor, a remote engine): the engine's
//!   archive API ([`crate::fs_archive`]), where a write needs its `size`,
//!   is not atomic, and remove and rename are `NOT_SUPPORTED`.
//!
//! Blocking file system calls run on tokio's blocking threads, a chunk at
//! a time: a file of any size goes through in bounded memory.

use std::sync::Arc;

use bollard::Docker;
use bytes::Bytes;
use dockwire_core::{CallError, ErrorCode, ServerEvent};
use dockwire_service::RawIo;
use futures::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;

use crate::access::Caller;
use crate::catalog::{
    Done, FS_LIST_MAX_DEPTH, FileKind, FsEntry, FsList, FsMkdir, FsRead, FsRemove, FsRename,
    FsStat, FsWrite, IS_A_DIRECTORY, NOT_SUPPORTED,
};
use crate::config::ExecSignals;
use crate::dialect;
use crate::engine::Engine;
use crate::error::{self, invalid_input};
use crate::fs_archive::{Archive, Made, NewFile};
use crate::fs_direct::Root;
use crate::fs_path::FsPath;
use crate::{runtime, signal};

/// How many bytes a direct read reads at once.
const CHUNK: u64 = 256 * 1024;

/// How many of stdin's chunks (each at most the peer's chunk size) wait
/// for a direct write's thread.
const WRITE_QUEUE: usize = 4;

/// `fs/stat`.
pub(crate) async fn stat(
    engine: Arc<Engine>,
    caller: Caller,
    i: FsStat,
) -> Result<FsEntry, CallError> {
    let path = FsPath::parse(&i.path)?;
    let at = At::find(&engine, &caller, &i.id, &path).await?;
    match &at.way {
        Way::Direct(root) => {
            let root = root.clone();
            blocking(move || root.stat(&path)).await
        }
        Way::Archive => at.archive().stat(&path).await,
    }
}

/// `fs/list`.
pub(crate) async fn list(
    engine: Arc<Engine>,
    caller: Caller,
    i: FsList,
) -> Result<Vec<FsEntry>, CallError> {
    let path = FsPath::parse(&i.path)?;
    let depth = i.depth.unwrap_or(1);
    if !(1..=FS_LIST_MAX_DEPTH).contains(&depth) {
        return Err(invalid_input(format!(
            "depth is 1 to {FS_LIST_MAX_DEPTH}, not {depth}"
        )));
    }
    let at = At::find(&engine, &caller, &i.id, &path).await?;
    match &at.way {
        Way::Direct(root) => {
            let root = root.clone();
            blocking(move || root.list(&path, depth)).await
        }
        Way::Archive => at.archive().list(&path, depth).await,
    }
}

/// `fs/read`: accepted with the file's entry, then its bytes as stdout.
pub(crate) async fn read(
    engine: Arc<Engine>,
    caller: Caller,
    i: FsRead,
    io: RawIo,
) -> Result<i32, CallError> {
    let path = FsPath::parse(&i.path)?;
    let offset = i.offset.unwrap_or(0);
    let at = At::find(&engine, &caller, &i.id, &path).await?;
    let (_input, mut out) = io.split();
    match &at.way {
        Way::Direct(root) => {
            let root = root.clone();
            let (file, entry) = blocking(move || root.open_file(&path)).await?;
            out.accept(json!(entry)).await?;
            let file = Arc::new(file);
            let end = i.length.map_or(u64::MAX, |l| offset.saturating_add(l));
            let mut position = offset;
            while position < end {
                let want = (end - position).min(CHUNK);
                let from = file.clone();
                let chunk = blocking(move || {
                    let mut buf = vec![0; usize::try_from(want).unwrap_or(0)];
                    let n = rustix::io::pread(&*from, &mut buf[..], position)
                        .map_err(|e| CallError::new(ErrorCode::INTERNAL, format!("read: {e}")))?;
                    buf.truncate(n);
                    Ok(buf)
                })
                .await?;
                if chunk.is_empty() {
                    break;
                }
                position = position.saturating_add(chunk.len() as u64);
                out.stdout(Bytes::from(chunk)).await?;
            }
        }
        Way::Archive => {
            let archive = at.archive();
            let (found, entry) = archive.follow(&path).await?;
            match entry.kind {
                FileKind::File => {}
                FileKind::Dir => {
                    return Err(CallError::new(
                        IS_A_DIRECTORY,
                        format!("is a directory: {}:{}", i.id, i.path),
                    ));
                }
                _ => return Err(not_regular(&i.id, &i.path)),
            }
            out.accept(json!(entry)).await?;
            archive.read(&found, offset, i.length, &mut out).await?;
        }
    }
    Ok(0)
}

/// `fs/write`: accepted once the parent is found (or made) and the
/// temporary file made; stdin then becomes the file, which replaces the
/// old one when stdin closes. A session that ends without closing stdin
/// leaves the old file as it was.
pub(crate) async fn write(
    engine: Arc<Engine>,
    caller: Caller,
    i: FsWrite,
    io: RawIo,
) -> Result<i32, CallError> {
    let path = FsPath::parse(&i.path)?;
    let at = At::find(&engine, &caller, &i.id, &path).await?;
    let (mut input, mut out) = io.split();
    match &at.way {
        Way::Direct(root) => {
            let root = root.clone();
            let (mode, uid, gid, parents) = (i.mode, i.uid, i.gid, i.parents);
            let writing =
                blocking(move || root.start_write(&path, mode, uid, gid, parents)).await?;
            out.accept(json!({})).await?;
            // A thread of its own writes while the next chunks arrive,
            // through a bounded queue.
            let (tx, mut rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
            let writer = tokio::task::spawn_blocking(move || {
                let mut writing = writing;
                while let Some(bytes) = rx.blocking_recv() {
                    writing.write(&bytes)?;
                }
                Ok::<_, CallError>(writing)
            });
            loop {
                match input.next().await {
                    Some(ServerEvent::Stdin(bytes)) => {
                        // Refused: the writer failed, and says why below.
                        if tx.send(bytes).await.is_err() {
                            break;
                        }
                    }
                    Some(ServerEvent::StdinClosed) => break,
                    Some(_) => {}
                    // The call ended first: the writer's file is dropped
                    // with its result, and the temporary file goes.
                    None => return Err(CallError::new(ErrorCode::INTERNAL, "the call has ended")),
                }
            }
            drop(tx);
            let writing = writer.await.map_err(|e| {
                CallError::new(
                    ErrorCode::INTERNAL,
                    format!("a file system call failed: {e}"),
                )
            })??;
            if let Some(size) = i.size.filter(|s| *s != writing.written()) {
                return Err(invalid_input(format!(
                    "{}:{}: stdin brought {} bytes, not the size given, {size}",
                    i.id,
                    i.path,
                    writing.written()
                )));
            }
            blocking(move || writing.commit()).await?;
        }
        Way::Archive => {
            let Some(size) = i.size else {
                return Err(invalid_input(format!(
                    "a write into {} goes through the engine's archive API (the container is not running under runc on this server's host), which needs the file's size first: give size",
                    i.id
                )));
            };
            let file = NewFile {
                size,
                mode: i.mode,
                uid: i.uid,
                gid: i.gid,
            };
            let archive = at.archive();
            let plan = archive
                .plan_write(&path, Made::File(file), i.parents)
                .await?;
            out.accept(json!({})).await?;
            archive.write(plan, input).await?;
        }
    }
    Ok(0)
}

/// `fs/mkdir`.
pub(crate) async fn mkdir(
    engine: Arc<Engine>,
    caller: Caller,
    i: FsMkdir,
) -> Result<Done, CallError> {
    let path = FsPath::parse(&i.path)?;
    let mode = i.mode.unwrap_or(0o755);
    let at = At::find(&engine, &caller, &i.id, &path).await?;
    match &at.way {
        Way::Direct(root) => {
            let root = root.clone();
            blocking(move || root.mkdir(&path, mode, i.parents)).await?
        }
        Way::Archive => at.archive().mkdir(&path, mode, i.parents).await?,
    }
    Ok(Done {})
}

/// `fs/remove`.
pub(crate) async fn remove(
    engine: Arc<Engine>,
    caller: Caller,
    i: FsRemove,
) -> Result<Done, CallError> {
    let path = FsPath::parse(&i.path)?;
    let at = At::find(&engine, &caller, &i.id, &path).await?;
    match &at.way {
        Way::Direct(root) => {
            let root = root.clone();
            blocking(move || root.remove(&path, i.recursive)).await?
        }
        Way::Archive => return Err(at.archive().unsupported("remove")),
    }
    Ok(Done {})
}

/// `fs/rename`.
pub(crate) async fn rename(
    engine: Arc<Engine>,
    caller: Caller,
    i: FsRename,
) -> Result<Done, CallError> {
    let from = FsPath::parse(&i.from)?;
    let to = FsPath::parse(&i.to)?;
    let at = At::find(&engine, &caller, &i.id, &from).await?;
    match &at.way {
        Way::Direct(root) => {
            let root = root.clone();
            blocking(move || root.rename(&from, &to)).await?
        }
        Way::Archive => return Err(at.archive().unsupported("rename")),
    }
    Ok(Done {})
}

/// A caller's container, and the way to its files.
struct At {
    docker: Docker,
    id: String,
    /// The caller's name for it.
    asked: String,
    way: Way,
}

enum Way {
    Direct(Arc<Root>),
    Archive,
}

impl At {
    /// `caller`'s container `reference`, and how to reach `path` in it.
    async fn find(
        engine: &Engine,
        caller: &Caller,
        reference: &str,
        path: &FsPath,
    ) -> Result<At, CallError> {
        let (docker, id) = engine.container(caller, reference).await?;
        let way = way(&docker, &id, reference, engine.config.exec_signals).await?;
        if matches!(way, Way::Archive) && in_gvisor_tmp(&docker, &id, path).await? {
            return Err(CallError::new(
                NOT_SUPPORTED,
                format!(
                    "{reference}:{}: gVisor's own /tmp is out of the engine's reach, and the file API runs nothing in the container",
                    path.asked
                ),
            ));
        }
        Ok(At {
            docker,
            id,
            asked: reference.to_owned(),
            way,
        })
    }

    fn archive(&self) -> Archive<'_> {
        Archive {
            docker: &self.docker,
            id: &self.id,
            container: &self.asked,
        }
    }
}

/// The way to container `id`'s files: its root directly when it runs
/// under runc, its init is a process this server sees, and its ids are
/// not mapped; the archive API otherwise. The init is looked up again
/// after its root is opened: a root opened through a pid reused by
/// another process (the container stopped in between) is not used.
async fn way(
    docker: &Docker,
    id: &str,
    asked: &str,
    signals: ExecSignals,
) -> Result<Way, CallError> {
    if signals == ExecSignals::Engine {
        return Ok(Way::Archive);
    }
    let Some((pid, started)) = running_init(docker, id).await? else {
        return Ok(Way::Archive);
    };
    if !signal::in_one_container(pid, pid) {
        return Ok(Way::Archive);
    }
    let asked = asked.to_owned();
    let root = tokio::task::spawn_blocking(move || Root::open(pid, &asked)).await;
    let Ok(Ok(Some(root))) = root else {
        return Ok(Way::Archive);
    };
    match running_init(docker, id).await? {
        Some(again) if again == (pid, started) => Ok(Way::Direct(Arc::new(root))),
        _ => Ok(Way::Archive),
    }
}

/// The init pid and start time of container `id` when it runs under
/// runc.
async fn running_init(docker: &Docker, id: &str) -> Result<Option<(i64, String)>, CallError> {
    let info = dialect::inspect_container(docker, id)
        .await
        .map_err(error::container)?;
    let runtime = info.host_config.and_then(|h| h.runtime);
    if runtime::is_gvisor(docker, runtime.as_deref()).await {
        return Ok(None);
    }
    let Some(state) = info.state else {
        return Ok(None);
    };
    let pid = state.pid.filter(|p| *p > 0);
    Ok(match (state.running, pid) {
        (Some(true), Some(pid)) => Some((pid, state.started_at.unwrap_or_default())),
        _ => None,
    })
}

/// Whether `path` is in gVisor container `id`'s own `/tmp`.
async fn in_gvisor_tmp(docker: &Docker, id: &str, path: &FsPath) -> Result<bool, CallError> {
    let in_tmp = FsPath::parse(&path.for_engine())?
        .parts
        .first()
        .map(String::as_str)
        == Some("tmp");
    Ok(in_tmp && runtime::runs_gvisor(docker, id).await?)
}

fn not_regular(container: &str, path: &str) -> CallError {
    CallError::new(
        NOT_SUPPORTED,
        format!("{container}:{path} is not a regular file (a device, fifo or socket is not read)"),
    )
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CallError> + Send + 'static,
) -> Result<T, CallError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        CallError::new(
            ErrorCode::INTERNAL,
            format!("a file system call failed: {e}"),
        )
    })?
}
