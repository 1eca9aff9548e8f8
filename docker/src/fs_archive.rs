//! The file API through the engine's archive API, where this server
//! cannot reach a container's root itself: a stopped container, one in
//! gVisor (whose processes' root is gVisor's, not the host's), a remote
//! engine, or a server that does not see the container's processes. The
//! engine resolves every path inside the container's root.
//!
//! - stat: `HEAD …/archive` (`X-Docker-Container-Path-Stat`); the engine
//!   does not say a file's owner.
//! - read and list: `GET …/archive`, its tar read as it streams (on a
//!   blocking thread, through a bounded queue: flat memory).
//! - write and mkdir: `PUT …/archive` of a tar made here, the file's
//!   bytes streamed from stdin into it; the tar's header needs the size
//!   first, so a write here needs `size`. The engine unpacks in place:
//!   not atomic, and a write cut short may leave part of the file.
//! - remove and rename: the archive API has neither: `NOT_SUPPORTED`.

use std::io::Read;
use std::sync::{Arc, Mutex};

use bollard::Docker;
use bollard::query_parameters as q;
use bytes::Bytes;
use dockwire_core::{CallError, ServerEvent};
use dockwire_service::{RawInput, RawOutput};
use futures::{StreamExt, future};
use tokio::sync::mpsc;

use crate::catalog::{
    CONTAINER_NOT_FOUND, DOCKER_ERROR, FS_LIST_MAX_ENTRIES, FileKind, FsEntry, IS_A_DIRECTORY,
    NOT_A_DIRECTORY, NOT_SUPPORTED,
};
use crate::error::{self, invalid_input, without_host_paths};
use crate::fs_path::{FsPath, errno_error, not_found};

/// Go's `os.FileMode` bits, as the engine reports a path's mode.
const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHAR_DEVICE: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

/// How many symbolic links a read follows, as Linux's `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

/// How many bytes a read hands on at once.
const CHUNK: usize = 256 * 1024;

/// One container, as the archive API reaches it.
pub(crate) struct Archive<'a> {
    pub(crate) docker: &'a Docker,
    /// The engine's id.
    pub(crate) id: &'a str,
    /// The name the caller gave, for messages.
    pub(crate) container: &'a str,
}

impl Archive<'_> {
    /// What is at `path` (a symbolic link itself).
    pub(crate) async fn stat(&self, path: &FsPath) -> Result<FsEntry, CallError> {
        let options = q::ContainerArchiveInfoOptions {
            path: path.for_engine(),
        };
        let stat = self
            .docker
            .get_container_archive_info(self.id, Some(options))
            .await
            .map_err(|e| self.error(e, path))?;
        let link = (stat.file_mode & GO_SYMLINK != 0).then_some(stat.link_target);
        Ok(FsEntry {
            name: stat.name,
            kind: kind_of(stat.file_mode),
            size: u64::try_from(stat.size).unwrap_or_default(),
            mode: permissions_of(stat.file_mode),
            uid: None,
            gid: None,
            mtime: stat.modification_time.unwrap_or_default(),
            link_target: link,
        })
    }

    /// `path` with its symbolic links followed (each hop resolved by the
    /// engine in the container's root), and what is there.
    pub(crate) async fn follow(&self, path: &FsPath) -> Result<(FsPath, FsEntry), CallError> {
        let mut at = path.clone();
        for _ in 0..MAX_LINKS {
            let found = self.stat(&at).await?;
            let Some(target) = found
                .link_target
                .clone()
                .filter(|_| found.kind == FileKind::Symlink)
            else {
                return Ok((at, found));
            };
            let mut next = match target.starts_with('/') {
                true => FsPath::parse(&target)?,
                false => {
                    let mut parts = at.parts.clone();
                    parts.pop();
                    parts.extend(FsPath::parse(&format!("/{target}"))?.parts);
                    FsPath {
                        asked: String::new(),
                        parts,
                    }
                }
            };
            next.asked = path.asked.clone();
            at = next;
        }
        Err(errno_error(
            rustix::io::Errno::LOOP,
            self.container,
            &path.asked,
        ))
    }

    /// Sends file `path` (found by [`Archive::follow`]) from `offset`,
    /// at most `length` bytes, as `out`'s stdout.
    pub(crate) async fn read(
        &self,
        path: &FsPath,
        offset: u64,
        length: Option<u64>,
        out: &mut RawOutput,
    ) -> Result<(), CallError> {
        let (tx, mut rx) = mpsc::channel::<Bytes>(4);
        let parse = self.parse_tar(path, move |mut archive| {
            let mut entries = archive.entries().map_err(tar_error)?;
            let Some(entry) = entries.next() else {
                return Ok(());
            };
            let mut entry = entry.map_err(tar_error)?;
            std::io::copy(&mut (&mut entry).take(offset), &mut std::io::sink())
                .map_err(tar_error)?;
            let mut left = length.unwrap_or(u64::MAX);
            while left > 0 {
                let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
                let mut buf = vec![0; want];
                let n = entry.read(&mut buf).map_err(tar_error)?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                left = left.saturating_sub(n as u64);
                if tx.blocking_send(Bytes::from(buf)).is_err() {
                    break;
                }
            }
            Ok(())
        });
        let forward = async {
            while let Some(bytes) = rx.recv().await {
                out.stdout(bytes).await?;
            }
            Ok::<(), CallError>(())
        };
        let (parsed, forwarded) = futures::join!(parse, forward);
        forwarded?;
        parsed
    }

    /// The entries of directory `path`, `depth` levels down, by name.
    pub(crate) async fn list(&self, path: &FsPath, depth: u32) -> Result<Vec<FsEntry>, CallError> {
        let found = self.stat(path).await?;
        if found.kind != FileKind::Dir {
            return Err(errno_error(
                rustix::io::Errno::NOTDIR,
                self.container,
                &path.asked,
            ));
        }
        let container = self.container.to_owned();
        let asked = path.asked.clone();
        let mut entries = self
            .parse_tar(path, move |mut archive| {
                let mut entries = Vec::new();
                for entry in archive.entries().map_err(tar_error)? {
                    let entry = entry.map_err(tar_error)?;
                    let name = entry.path().map_err(tar_error)?.to_string_lossy().into_owned();
                    // The directory itself is the tar's first entry, named
                    // by its base name; its entries are below it.
                    let Some((_, below)) = name.trim_end_matches('/').split_once('/') else {
                        continue;
                    };
                    if below.split('/').count() > depth as usize {
                        continue;
                    }
                    if entries.len() >= FS_LIST_MAX_ENTRIES {
                        return Err(invalid_input(format!(
                            "{container}:{asked} has more than {FS_LIST_MAX_ENTRIES} entries at this depth"
                        )));
                    }
                    entries.push(tar_entry(below, &entry));
                }
                Ok(entries)
            })
            .await?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Writes the file `plan` describes from `input`, until stdin closes:
    /// exactly its size, or the upload is cut off and the error says why.
    /// Called once the session is accepted.
    pub(crate) async fn write(&self, plan: WritePlan, input: RawInput) -> Result<u64, CallError> {
        let fault: Arc<Mutex<Option<CallError>>> = Arc::default();
        let size = plan.size;
        let tail = Bytes::from(vec![0u8; padding(size) + 1024]);
        let header = Bytes::from(plan.header);
        let container = self.container.to_owned();
        let asked = plan.asked.clone();
        let seen = fault.clone();
        let body = futures::stream::once(future::ready(Ok(header)))
            .chain(
                input
                    .take_while(|item| future::ready(*item != ServerEvent::StdinClosed))
                    .filter_map(|item| {
                        future::ready(match item {
                            ServerEvent::Stdin(bytes) => Some(bytes),
                            _ => None,
                        })
                    })
                    .map(Some)
                    .chain(futures::stream::once(future::ready(None)))
                    .scan(0u64, move |count, bytes| {
                        let next = match bytes {
                            Some(bytes) => {
                                *count = count.saturating_add(bytes.len() as u64);
                                match *count <= size {
                                    true => Ok(bytes),
                                    false => Err(()),
                                }
                            }
                            None if *count == size => Ok(tail.clone()),
                            None => Err(()),
                        };
                        let next = next.map_err(|()| {
                            let e = invalid_input(format!(
                                "{container}:{asked}: stdin brought {} bytes, not the size given, {size}",
                                if *count > size { format!("more than {size}") } else { count.to_string() }
                            ));
                            *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            std::io::Error::other("the size given is not stdin's")
                        });
                        future::ready(Some(next))
                    }),
            );
        let options = q::UploadToContainerOptions {
            path: plan.into.for_engine(),
            ..Default::default()
        };
        let uploaded = self
            .docker
            .upload_to_container(self.id, Some(options), bollard::body_try_stream(body))
            .await;
        if let Some(e) = fault.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        uploaded.map_err(|e| self.error(e, &plan.path))?;
        Ok(size)
    }

    /// Plans a write of `path`: where the tar goes (the parent, or its
    /// deepest existing ancestor with `parents`) and its headers. Checked
    /// before the session is accepted.
    pub(crate) async fn plan_write(
        &self,
        path: &FsPath,
        made: Made,
        parents: bool,
    ) -> Result<WritePlan, CallError> {
        let (parent, name) = path.split_last()?;
        let (into, missing) = self.existing_ancestor(&parent, parents, path).await?;
        let mut builder = tar::Builder::new(Vec::new());
        let mut below = String::new();
        for dir in &missing {
            below.push_str(dir);
            below.push('/');
            append_header(
                &mut builder,
                tar::EntryType::Directory,
                &below,
                0o755,
                0,
                0,
                0,
            )?;
        }
        below.push_str(&name);
        let (size, mode, uid, gid, kind) = match &made {
            Made::File(f) => {
                let (mut mode, mut uid, mut gid) = (0o644, 0, 0);
                match self.stat(path).await {
                    Ok(old) if old.kind == FileKind::Dir => {
                        return Err(CallError::new(
                            IS_A_DIRECTORY,
                            format!("is a directory: {}:{}", self.container, path.asked),
                        ));
                    }
                    Ok(old) if old.kind == FileKind::File => mode = old.mode,
                    Ok(_) => {}
                    Err(e) if e.code == crate::catalog::PATH_NOT_FOUND => {}
                    Err(e) => return Err(e),
                }
                mode = f.mode.unwrap_or(mode);
                uid = f.uid.unwrap_or(uid);
                gid = f.gid.unwrap_or(gid);
                (f.size, mode, uid, gid, tar::EntryType::Regular)
            }
            Made::Dir(mode) => (0, *mode, 0, 0, tar::EntryType::Directory),
        };
        let mut header = builder.get_ref().clone();
        let mut last = tar::Builder::new(Vec::new());
        append_header(&mut last, kind, &below, mode, uid, gid, size)?;
        header.extend_from_slice(last.get_ref());
        if matches!(made, Made::Dir(_)) {
            header.extend_from_slice(&[0; 1024]);
        }
        Ok(WritePlan {
            path: path.clone(),
            asked: path.asked.clone(),
            into,
            header,
            size,
        })
    }

    /// Makes directory `path` (and its missing parents with `parents`;
    /// an existing directory is then no error) with `mode`.
    pub(crate) async fn mkdir(
        &self,
        path: &FsPath,
        mode: u32,
        parents: bool,
    ) -> Result<(), CallError> {
        match self.stat(path).await {
            Ok(found) if parents && found.kind == FileKind::Dir => return Ok(()),
            Ok(_) => {
                return Err(errno_error(
                    rustix::io::Errno::EXIST,
                    self.container,
                    &path.asked,
                ));
            }
            Err(e) if e.code == crate::catalog::PATH_NOT_FOUND => {}
            Err(e) => return Err(e),
        }
        let mut plan = self.plan_write(path, Made::Dir(mode), parents).await?;
        let options = q::UploadToContainerOptions {
            path: plan.into.for_engine(),
            ..Default::default()
        };
        let body = bollard::body_full(Bytes::from(std::mem::take(&mut plan.header)));
        self.docker
            .upload_to_container(self.id, Some(options), body)
            .await
            .map_err(|e| self.error(e, path))
    }

    /// What the archive API cannot do: remove, rename.
    pub(crate) fn unsupported(&self, what: &str) -> CallError {
        CallError::new(
            NOT_SUPPORTED,
            format!(
                "{what} in {} needs it running (under runc, on this server's host): the engine's archive API, which serves it as it is, has no {what}",
                self.container
            ),
        )
    }

    /// Directory `dir` if it exists, else (with `parents`) its deepest
    /// existing ancestor and the names to make below it.
    async fn existing_ancestor(
        &self,
        dir: &FsPath,
        parents: bool,
        asked: &FsPath,
    ) -> Result<(FsPath, Vec<String>), CallError> {
        let mut at = FsPath::parse(&dir.for_engine())?;
        let mut missing = Vec::new();
        loop {
            match self.stat(&at).await {
                Ok(found) if found.kind == FileKind::Dir => {
                    missing.reverse();
                    return Ok((at, missing));
                }
                Ok(_) => {
                    return Err(CallError::new(
                        NOT_A_DIRECTORY,
                        format!("not a directory: {}:{}", self.container, asked.asked),
                    ));
                }
                Err(e) if e.code == crate::catalog::PATH_NOT_FOUND && parents => {
                    let Some(name) = at.parts.pop() else {
                        return Err(not_found(self.container, &asked.asked));
                    };
                    missing.push(name);
                }
                Err(e) if e.code == crate::catalog::PATH_NOT_FOUND => {
                    return Err(not_found(self.container, &asked.asked));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the tar of `path` on a blocking thread with `parse`, fed
    /// from the engine through a bounded queue.
    async fn parse_tar<T: Send + 'static>(
        &self,
        path: &FsPath,
        parse: impl FnOnce(tar::Archive<QueueRead>) -> Result<T, CallError> + Send + 'static,
    ) -> Result<T, CallError> {
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        let options = q::DownloadFromContainerOptions {
            path: path.for_engine(),
        };
        let mut tar = self.docker.download_from_container(self.id, Some(options));
        let feed = async move {
            while let Some(chunk) = tar.next().await {
                if tx.send(chunk?).await.is_err() {
                    break;
                }
            }
            Ok::<(), bollard::errors::Error>(())
        };
        let reader = QueueRead {
            rx,
            current: Bytes::new(),
        };
        let parsed = tokio::task::spawn_blocking(move || parse(tar::Archive::new(reader)));
        let (fed, parsed) = futures::join!(feed, parsed);
        fed.map_err(|e| self.error(e, path))?;
        parsed
            .map_err(|e| CallError::new(DOCKER_ERROR, format!("reading the engine's tar: {e}")))?
    }

    /// The typed error of an engine failure on `path`.
    fn error(&self, e: bollard::errors::Error, path: &FsPath) -> CallError {
        let at = &path.asked;
        if let bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } = &e
        {
            let lower = message.to_ascii_lowercase();
            if *status_code == 404 && lower.contains("no such container") {
                return CallError::new(
                    CONTAINER_NOT_FOUND,
                    format!("No such container: {}", self.container),
                );
            }
            if lower.contains("not a directory") {
                return errno_error(rustix::io::Errno::NOTDIR, self.container, at);
            }
            if *status_code == 404 || lower.contains("no such file") {
                return not_found(self.container, at);
            }
            if lower.contains("read-only file system") {
                return errno_error(rustix::io::Errno::ROFS, self.container, at);
            }
            if lower.contains("no space left") {
                return errno_error(rustix::io::Errno::NOSPC, self.container, at);
            }
            if lower.contains("permission denied") {
                return errno_error(rustix::io::Errno::ACCESS, self.container, at);
            }
        }
        without_host_paths(error::container(e))
    }
}

/// What a write makes.
pub(crate) enum Made {
    /// A file.
    File(NewFile),
    /// A directory of this mode.
    Dir(u32),
}

/// A file a write makes: its size, and mode and owner when given.
pub(crate) struct NewFile {
    pub(crate) size: u64,
    pub(crate) mode: Option<u32>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
}

/// A checked write, ready for its bytes.
pub(crate) struct WritePlan {
    path: FsPath,
    asked: String,
    /// The existing directory the tar is unpacked into.
    into: FsPath,
    /// The tar's headers up to the file's bytes.
    header: Vec<u8>,
    size: u64,
}

/// A blocking reader of a bounded queue's bytes: the engine's tar, for
/// the `tar` crate on a blocking thread.
pub(crate) struct QueueRead {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for QueueRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(bytes) => self.current = bytes,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        let taken = self.current.split_to(n);
        if let Some(into) = buf.get_mut(..n) {
            into.copy_from_slice(&taken);
        }
        Ok(n)
    }
}

fn append_header(
    builder: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    path: &str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
) -> Result<(), CallError> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode & 0o7777);
    header.set_uid(u64::from(uid));
    header.set_gid(u64::from(gid));
    header.set_size(size);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    header.set_mtime(now);
    // The header only: the file's bytes follow from stdin.
    builder
        .append_data(&mut header, path, std::io::empty())
        .map_err(|e| invalid_input(format!("{path:?} cannot be written in a tar: {e}")))
}

/// Zeros after `size` bytes to fill the tar's last block.
fn padding(size: u64) -> usize {
    usize::try_from((512 - size % 512) % 512).unwrap_or_default()
}

fn tar_error(e: std::io::Error) -> CallError {
    CallError::new(DOCKER_ERROR, format!("reading the engine's tar: {e}"))
}

fn tar_entry(name: &str, entry: &tar::Entry<'_, QueueRead>) -> FsEntry {
    let header = entry.header();
    let kind = match header.entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => FileKind::File,
        tar::EntryType::Directory => FileKind::Dir,
        tar::EntryType::Symlink => FileKind::Symlink,
        _ => FileKind::Other,
    };
    let mtime = header.mtime().unwrap_or_default();
    FsEntry {
        name: name.to_owned(),
        kind,
        size: match kind {
            FileKind::File => entry.size(),
            _ => 0,
        },
        mode: header.mode().unwrap_or_default() & 0o7777,
        uid: header.uid().ok().and_then(|u| u32::try_from(u).ok()),
        gid: header.gid().ok().and_then(|g| u32::try_from(g).ok()),
        mtime: crate::fs_direct::rfc3339(i64::try_from(mtime).unwrap_or_default(), 0),
        link_target: entry
            .link_name()
            .ok()
            .flatten()
            .filter(|_| kind == FileKind::Symlink)
            .map(|l| l.to_string_lossy().into_owned()),
    }
}

fn kind_of(mode: u32) -> FileKind {
    if mode & GO_DIR != 0 {
        FileKind::Dir
    } else if mode & GO_SYMLINK != 0 {
        FileKind::Symlink
    } else if mode & (GO_DEVICE | GO_PIPE | GO_SOCKET | GO_CHAR_DEVICE) != 0 {
        FileKind::Other
    } else {
        FileKind::File
    }
}

fn permissions_of(mode: u32) -> u32 {
    let mut bits = mode & 0o777;
    for (go, unix) in [
        (GO_SETUID, 0o4000),
        (GO_SETGID, 0o2000),
        (GO_STICKY, 0o1000),
    ] {
        if mode & go != 0 {
            bits |= unix;
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_modes_become_kinds_and_unix_permission_bits() {
        assert_eq!(kind_of(GO_DIR | 0o755), FileKind::Dir);
        assert_eq!(kind_of(GO_SYMLINK | 0o777), FileKind::Symlink);
        assert_eq!(kind_of(GO_DEVICE | GO_CHAR_DEVICE | 0o666), FileKind::Other);
        assert_eq!(kind_of(0o644), FileKind::File);
        assert_eq!(permissions_of(GO_SETUID | GO_STICKY | 0o755), 0o5755);
    }

    #[test]
    fn a_tar_body_ends_on_a_block_and_two_empty_ones() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
        assert_eq!(padding(513), 511);
    }
}
