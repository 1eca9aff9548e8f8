//! `cp`: files and folders between a container and this machine, with
//! docker's rules for where a copy lands and what it is called.
//!
//! The engine speaks tar both ways. Out of a container, the archive of
//! the source is unpacked into the destination's directory, its top entry
//! renamed as it is unpacked when the copy takes the destination's name.
//! Into a container, an archive of the local source is built with the
//! right top name and unpacked by the engine in an existing directory.
//! Archives stream through: neither side is held in memory. The archive
//! work is blocking file IO, done on a blocking thread that reads and
//! writes the session's streams through tokio-util's `SyncIoBridge`.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use clap::Args;
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::{
    ArchiveGet, ArchivePut, CONTAINER_NOT_FOUND, ContainerInspect, ContainerRef, PathStat,
};
use dockwire_service::RawSession;
use tokio_util::compat::{FuturesAsyncReadCompatExt, FuturesAsyncWriteCompatExt};
use tokio_util::io::SyncIoBridge;

use super::format;
use super::out::{self, Verdict};
use crate::error::{Context, Failure};

/// Go's `os.ModeDir`, as the engine reports a path's mode.
const MODE_DIR: u32 = 1 << 31;
/// Go's `os.ModeSymlink`.
const MODE_SYMLINK: u32 = 1 << 27;
/// Go's `os.ModeDevice`.
const MODE_DEVICE: u32 = 1 << 26;
/// Go's `os.ModeIrregular`.
const MODE_IRREGULAR: u32 = 1 << 19;
/// Symbolic links followed at most, as docker does.
const MAX_SYMLINKS: usize = 10;

/// Copy files/folders between a container and the local filesystem
#[derive(Args, Debug)]
#[command(
    override_usage = "dockwire cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       dockwire cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    after_help = "Use '-' as the source to read a tar archive from stdin and extract it to a\n\
                  directory destination in a container. Use '-' as the destination to stream\n\
                  a tar archive of a container source to stdout."
)]
pub struct Cp {
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Suppress progress output during copy. Progress output is
    /// automatically suppressed if no terminal is attached
    #[arg(short, long)]
    quiet: bool,
    /// CONTAINER:SRC_PATH, SRC_PATH, or - for a tar archive on stdin
    #[arg(value_name = "SRC")]
    pub(super) source: String,
    /// DEST_PATH, CONTAINER:DEST_PATH, or - for a tar archive on stdout
    #[arg(value_name = "DEST")]
    pub(super) destination: String,
}

pub async fn cp(docker: &DockerClient, args: Cp) -> Verdict {
    let what = || format!("copy {} to {}", args.source, args.destination);
    let copy = match (location(&args.source), location(&args.destination)) {
        (Location::Container { .. }, Location::Container { .. }) => {
            return Err(
                Failure::local(what(), "copying between containers is not supported").into(),
            );
        }
        (Location::Local(_), Location::Local(_)) => {
            return Err(
                Failure::local(what(), "must specify at least one container source").into(),
            );
        }
        (Location::Container { path: "", .. }, _) | (_, Location::Container { path: "", .. }) => {
            return Err(Failure::local(what(), "a container path is empty").into());
        }
        (Location::Container { container, path }, Location::Local(local)) => Copy {
            container,
            path: container_path(path),
            local,
            out: true,
        },
        (Location::Local(local), Location::Container { container, path }) => Copy {
            container,
            path: container_path(path),
            local,
            out: false,
        },
    };
    let copied = if copy.out {
        copy_out(docker, &copy, args.follow_link).await?
    } else {
        copy_in(docker, &copy, args.follow_link).await?
    };
    if let Some(copied) = copied {
        if !args.quiet && out::stderr_is_terminal() {
            let line = format!(
                "Successfully copied {} to {}\n",
                format::human_size(copied.bytes as f64, 3),
                copied.to
            );
            out::stderr(line.as_bytes())?;
        }
    }
    Ok(0)
}

/// Whether `arg` names a container's path (`CONTAINER:PATH`).
pub(super) fn in_container(arg: &str) -> bool {
    matches!(location(arg), Location::Container { .. })
}

/// One side of a copy, as docker reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Location<'a> {
    /// A local path, or `-` for a tar archive on stdin or stdout.
    Local(&'a str),
    /// `CONTAINER:PATH`.
    Container { container: &'a str, path: &'a str },
}

/// `CONTAINER:PATH` or a local path. An absolute path, or one whose part
/// before the colon starts with `.` (`./file:name`), is local.
fn location(arg: &str) -> Location<'_> {
    if arg.starts_with('/') {
        return Location::Local(arg);
    }
    match arg.split_once(':') {
        Some((container, path)) if !container.starts_with('.') => {
            Location::Container { container, path }
        }
        _ => Location::Local(arg),
    }
}

/// What one copy is about.
struct Copy<'a> {
    container: &'a str,
    /// The path in the container, absolute.
    path: String,
    /// The local path, or `-`.
    local: &'a str,
    /// Out of the container (or into it).
    out: bool,
}

/// What was copied, for the closing line on a terminal.
struct Copied {
    /// Bytes of archive.
    bytes: u64,
    /// Where to.
    to: String,
}

// ---------------------------------------------------------- out of a container

async fn copy_out(
    docker: &DockerClient,
    copy: &Copy<'_>,
    follow: bool,
) -> Result<Option<Copied>, out::Stop> {
    let what = || format!("copy {}:{}", copy.container, copy.path);
    let mut src_path = copy.path.clone();
    // Under -L, a link is copied as what it points to, under its own name.
    let mut rebase_name = None;
    if follow {
        if let Some(stat) = stat_path(docker, copy.container, &src_path, &what()).await? {
            if stat.mode & MODE_SYMLINK != 0 {
                let target = link_target(&src_path, &stat.link_target);
                let (resolved, name) = rebase_name_for(&src_path, &target);
                src_path = resolved;
                rebase_name = name;
            }
        }
    }
    let input = ArchiveGet {
        id: copy.container.to_owned(),
        path: src_path.clone(),
    };
    let session = match docker.open(&input).await.context(what) {
        Ok(session) => session,
        Err(failure) => {
            return Err(missing_path(docker, copy.container, &src_path, failure)
                .await
                .into());
        }
    };
    let stat: PathStat = serde_json::from_value(session.accepted.clone())
        .map_err(|e| Failure::local(what(), format!("the server described the path oddly: {e}")))?;
    let RawSession { stdout, exit, .. } = session;
    if copy.local == "-" {
        let mut tar = SyncIoBridge::new(stdout.compat());
        let streamed = blocking(move || io::copy(&mut tar, &mut io::stdout().lock())).await;
        match streamed {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(out::Stop::Closed),
            Err(e) => return Err(Failure::local(what(), e).into()),
        }
        exit.await.context(what)?;
        return Ok(None);
    }
    let local = absolute_local(copy.local).map_err(|e| Failure::local(what(), e))?;
    let destination = local_destination(&local).map_err(|e| Failure::local(what(), e))?;
    let src_is_dir = stat.mode & MODE_DIR != 0;
    let dst_kind = destination.exists.then_some(destination.is_dir);
    let plan =
        plan(src_is_dir, &destination.path, dst_kind).map_err(|e| Failure::local(what(), e))?;
    // The engine names the archive's top entry after the path asked for.
    let (_, top) = split_dir_entry(&src_path);
    let (dir, name) = match plan {
        Plan::Into { dir } => (dir, rebase_name.unwrap_or_else(|| top.clone())),
        Plan::Renamed { dir, name } => (dir, name),
    };
    let rename = (name != top).then_some((top, name));
    let tar = SyncIoBridge::new(stdout.compat());
    let bytes = blocking(move || extract(tar, Path::new(&dir), rename))
        .await
        .map_err(|e| Failure::local(what(), e))?;
    exit.await.context(what)?;
    Ok(Some(Copied { bytes, to: local }))
}

/// Unpacks a tar into `dir`, its top entry renamed when asked. Bytes read.
fn extract(source: impl Read, dir: &Path, rename: Option<(String, String)>) -> io::Result<u64> {
    let mut counted = Counted::new(source);
    let name = |path: &Path| match &rename {
        Some((old, new)) => rename_entry(path, old, new),
        None => path.to_path_buf(),
    };
    unpack(&mut counted, dir, name)?;
    // The rest (the archive's end blocks) is read too: the copy is whole
    // and counted as docker counts it.
    io::copy(&mut counted, &mut io::sink())?;
    Ok(counted.count)
}

/// Unpacks as docker does for `cp`: modes and modification times kept
/// (of directories too), owners not, each entry under the name `name`
/// gives it (hard links follow their target's new name). As
/// `tar::Archive::unpack`, which leaves directories' times alone:
/// directories are made last, deepest first, so that a read-only one does
/// not keep its contents out.
fn unpack(source: impl Read, dir: &Path, name: impl Fn(&Path) -> PathBuf) -> io::Result<()> {
    let mut archive = tar::Archive::new(source);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(false);
    archive.set_overwrite(true);
    fs::create_dir_all(dir)?;
    let mut directories = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        // `./`, the destination itself, is left as it is, as docker does.
        let Some(dst) = destination(dir, &name(&entry.path()?)) else {
            continue;
        };
        if entry.header().entry_type() == tar::EntryType::Directory {
            directories.push((dst, entry));
        } else {
            unpack_entry(&mut entry, dir, &dst, &name)?;
        }
    }
    directories.sort_by(|a, b| b.0.cmp(&a.0));
    let mut times = Vec::new();
    for (dst, mut directory) in directories {
        unpack_entry(&mut directory, dir, &dst, &name)?;
        times.push((dst, directory.header().mtime().unwrap_or(0)));
    }
    for (path, mtime) in times {
        let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
        fs::File::open(&path)?.set_modified(mtime)?;
    }
    Ok(())
}

/// Where an entry called `name` lands in `dir`, as `tar::Entry::unpack_in`
/// places it: leading `/` and `.` parts are dropped; a name with `..` is
/// not unpacked, nor one that names `dir` itself (`None`).
fn destination(dir: &Path, name: &Path) -> Option<PathBuf> {
    let mut dst = dir.to_path_buf();
    for part in name.components() {
        match part {
            Component::Normal(part) => dst.push(part),
            Component::ParentDir => return None,
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
        }
    }
    (dst != dir).then_some(dst)
}

/// Unpacks `entry` at `dst` in `dir` with the checks of
/// `tar::Entry::unpack_in`, which only unpacks an entry under its own
/// name: the directories on the way are made only inside `dir`, and
/// nothing is written, or hard-linked to, outside `dir` through a
/// symbolic link an earlier entry made. A hard link's target is named by
/// `name` as the entries are.
fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    dir: &Path,
    dst: &Path,
    name: impl Fn(&Path) -> PathBuf,
) -> io::Result<()> {
    let parent = dst.parent().unwrap_or(dir);
    make_dirs_inside(dir, parent)?;
    let inside = canonical_inside(dir, parent)?;
    if entry.header().entry_type() != tar::EntryType::Link {
        return entry.unpack(dst).map(drop);
    }
    let target = match entry.link_name()? {
        Some(target) if target.components().next().is_some() => name(&target),
        _ => {
            return Err(io::Error::other(format!(
                "{}: a hard link to nothing",
                dst.display()
            )));
        }
    };
    let target = inside.join(target);
    canonical_inside(dir, &target)?;
    fs::hard_link(&target, dst).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "{e} when hard linking {} to {}",
                target.display(),
                dst.display()
            ),
        )
    })
}

/// Makes the missing directories of `path`, each only once its parent
/// has been found inside `dir` (`tar`'s `ensure_dir_created`).
fn make_dirs_inside(dir: &Path, path: &Path) -> io::Result<()> {
    let missing: Vec<&Path> = path
        .ancestors()
        .take_while(|ancestor| ancestor.symlink_metadata().is_err())
        .collect();
    for ancestor in missing.into_iter().rev() {
        if let Some(parent) = ancestor.parent() {
            canonical_inside(dir, parent)?;
        }
        fs::create_dir_all(ancestor)?;
    }
    Ok(())
}

/// `dir`, canonical, once `path` is found to resolve inside it, links
/// followed (`tar`'s `validate_inside_dst`).
fn canonical_inside(dir: &Path, path: &Path) -> io::Result<PathBuf> {
    let canonical = |p: &Path| {
        p.canonicalize().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{e} while canonicalizing {}", p.display()),
            )
        })
    };
    let resolved = canonical(path)?;
    let dir = canonical(dir)?;
    if !resolved.starts_with(&dir) {
        return Err(io::Error::other(format!(
            "{} is outside of the destination {}",
            path.display(),
            dir.display()
        )));
    }
    Ok(dir)
}

/// `old` → `new`, `old/x` → `new/x`; other paths are left alone.
fn rename_entry(path: &Path, old: &str, new: &str) -> PathBuf {
    match path.strip_prefix(old) {
        Ok(rest) if rest.as_os_str().is_empty() => Path::new(new).to_path_buf(),
        Ok(rest) => Path::new(new).join(rest),
        Err(_) => path.to_path_buf(),
    }
}

// ------------------------------------------------------------ into a container

async fn copy_in(
    docker: &DockerClient,
    copy: &Copy<'_>,
    follow: bool,
) -> Result<Option<Copied>, out::Stop> {
    let target = format!("{}:{}", copy.container, copy.path);
    let what = || format!("copy {} to {target}", copy.local);
    // Where the copy lands depends on what the destination is.
    let mut dst_path = copy.path.clone();
    let mut dst = stat_path(docker, copy.container, &dst_path, &what()).await?;
    if let Some(stat) = dst.as_ref().filter(|s| s.mode & MODE_SYMLINK != 0) {
        dst_path = link_target(&dst_path, &stat.link_target);
        dst = stat_path(docker, copy.container, &dst_path, &what()).await?;
    }
    if let Some(stat) = &dst {
        if stat.mode & (MODE_DEVICE | MODE_IRREGULAR) != 0 {
            return Err(Failure::local(
                what(),
                format!("destination \"{target}\" must be a directory or a regular file"),
            )
            .into());
        }
    }
    let dst_kind = dst.as_ref().map(|s| s.mode & MODE_DIR != 0);
    if copy.local == "-" {
        if dst_kind != Some(true) {
            return Err(Failure::local(
                what(),
                format!("destination \"{target}\" must be a directory"),
            )
            .into());
        }
        let RawSession { stdin, exit, .. } =
            put(docker, copy.container, &dst_path, &what()).await?;
        let mut tar = SyncIoBridge::new(stdin.compat_write());
        blocking(move || {
            io::copy(&mut io::stdin().lock(), &mut tar)?;
            // Closing the session's stdin ends the archive.
            tar.shutdown()
        })
        .await
        .map_err(|e| Failure::local(what(), e))?;
        exit.await.context(what)?;
        return Ok(None);
    }
    let local = absolute_local(copy.local).map_err(|e| Failure::local(what(), e))?;
    let source = local_source(&local, follow).map_err(|e| Failure::local(what(), e))?;
    let (_, base) = split_dir_entry(&source.path);
    let plan = plan(source.is_dir, &dst_path, dst_kind).map_err(|e| Failure::local(what(), e))?;
    let (dir, name) = match plan {
        Plan::Into { dir } => (dir, source.rebase_name.unwrap_or(base)),
        Plan::Renamed { dir, name } => (dir, name),
    };
    let RawSession { stdin, exit, .. } = put(docker, copy.container, &dir, &what()).await?;
    let path = source.path.clone();
    let is_dir = source.is_dir;
    let tar = SyncIoBridge::new(stdin.compat_write());
    let bytes = blocking(move || {
        let mut sink = Counted::new(tar);
        archive(&mut sink, Path::new(&path), is_dir, &name)?;
        // Closing the session's stdin ends the archive.
        sink.inner.shutdown()?;
        Ok(sink.count)
    })
    .await
    .map_err(|e| Failure::local(what(), e))?;
    exit.await.context(what)?;
    Ok(Some(Copied {
        bytes,
        to: format!("{}:{}", copy.container, dst_path),
    }))
}

/// An archive-put session into the directory `dir`.
async fn put(
    docker: &DockerClient,
    container: &str,
    dir: &str,
    what: &str,
) -> Result<RawSession, Failure> {
    let input = ArchivePut {
        id: container.to_owned(),
        path: dir.to_owned(),
    };
    match docker.open(&input).await.context(|| what.to_owned()) {
        Ok(session) => Ok(session),
        Err(failure) => Err(missing_path(docker, container, dir, failure).await),
    }
}

/// Writes a tar of `path` into `sink`, its top entry named `name` (`.`:
/// the directory's contents, unnamed). Symbolic links stay links; modes,
/// times and owners are kept.
fn archive(sink: impl Write, path: &Path, is_dir: bool, name: &str) -> io::Result<()> {
    let mut builder = tar::Builder::new(sink);
    builder.follow_symlinks(false);
    if is_dir {
        builder.append_dir_all(name, path)?;
    } else {
        builder.append_path_with_name(path, name)?;
    }
    builder.into_inner().map(drop)
}

// --------------------------------------------------------------- container paths

/// A container path made absolute: the engine takes relative ones from
/// the container's root.
fn container_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// The stat of a container path, `None` when the container has no such
/// path; a failure (of `what`) when the container itself is missing.
async fn stat_path(
    docker: &DockerClient,
    container: &str,
    path: &str,
    what: &str,
) -> Result<Option<PathStat>, Failure> {
    let input = ArchiveGet {
        id: container.to_owned(),
        path: path.to_owned(),
    };
    match docker.open(&input).await.context(|| what.to_owned()) {
        // Dropping the session ends the call before the archive comes.
        Ok(session) => serde_json::from_value(session.accepted)
            .map(Some)
            .map_err(|e| Failure::local(what, format!("the server described the path oddly: {e}"))),
        Err(failure) if failure.is(CONTAINER_NOT_FOUND.as_str()) => {
            container_exists(docker, container, &failure)
                .await
                .map(|()| None)
        }
        Err(failure) => Err(missing_path(docker, container, path, failure).await),
    }
}

/// A failure to read a container path, worded as docker words it: the
/// engine answers a missing path and a missing container alike (and some
/// refusals without a reason).
async fn missing_path(
    docker: &DockerClient,
    container: &str,
    path: &str,
    failure: Failure,
) -> Failure {
    if failure.is(CONTAINER_NOT_FOUND.as_str()) {
        return match container_exists(docker, container, &failure).await {
            Ok(()) => Failure {
                why: format!("Could not find the file {path} in container {container}"),
                code: None,
                ..failure
            },
            Err(missing) => missing,
        };
    }
    if failure.why.is_empty() {
        return Failure {
            why: format!(
                "the engine cannot read {path} in container {container} (a file where a directory is expected?)"
            ),
            ..failure
        };
    }
    failure
}

/// Whether the container is there; if not, why (the engine's own words).
async fn container_exists(
    docker: &DockerClient,
    container: &str,
    failure: &Failure,
) -> Result<(), Failure> {
    let input = ContainerInspect(ContainerRef::new(container));
    match docker.query(&input).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let missing = Failure::call(failure.what.clone(), e);
            if missing.is(CONTAINER_NOT_FOUND.as_str()) {
                Err(missing)
            } else {
                Err(Failure {
                    what: failure.what.clone(),
                    why: failure.why.clone(),
                    code: failure.code.clone(),
                    exit: failure.exit,
                })
            }
        }
    }
}

/// Where a link in a container points, as a path in it.
fn link_target(path: &str, target: &str) -> String {
    if target.starts_with('/') {
        return target.to_owned();
    }
    let (parent, _) = split_dir_entry(path);
    clean(&format!("{parent}/{target}"))
}

/// After following a link: the path to copy, and the name to give the
/// copy when it differs from the target's (docker's `GetRebaseName`).
fn rebase_name_for(path: &str, resolved: &str) -> (String, Option<String>) {
    let mut resolved = resolved.to_owned();
    if specifies_current_dir(path) && !specifies_current_dir(&resolved) {
        resolved.push_str("/.");
    }
    if has_trailing_separator(path) && !has_trailing_separator(&resolved) {
        resolved.push('/');
    }
    let name = (base(path) != base(&resolved)).then(|| base(path));
    (resolved, name)
}

// ------------------------------------------------------------------ the rules

/// Where an archive is unpacked, and under which name.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Into the existing directory `dir`, under the source's own name.
    Into { dir: String },
    /// Into `dir`, the top entry renamed to `name`.
    Renamed { dir: String, name: String },
}

/// docker's rules for a copy of a file or directory to `dst`, which is
/// an existing directory (`Some(true)`), an existing file (`Some(false)`)
/// or nothing yet (`None`, its parent must exist).
fn plan(src_is_dir: bool, dst: &str, dst_kind: Option<bool>) -> Result<Plan, String> {
    let (dir, name) = split_dir_entry(dst);
    match dst_kind {
        Some(true) => Ok(Plan::Into {
            dir: dst.to_owned(),
        }),
        Some(false) if src_is_dir => Err(format!("cannot copy a directory to a file: {dst}")),
        None if !src_is_dir && asserts_directory(dst) => {
            Err(format!("the destination directory must exist: {dst}"))
        }
        _ => Ok(Plan::Renamed { dir, name }),
    }
}

/// Go's `filepath.Clean`: the shortest equivalent path, lexically.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

/// Go's `filepath.Base`: the last element, trailing slashes ignored.
fn base(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_owned();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned()
}

/// Go's `filepath.Dir`: all but the last element, cleaned.
fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(at) => clean(&path[..=at]),
        None => ".".to_owned(),
    }
}

/// docker's `SplitPathDirEntry`: the directory and the entry a path
/// names; `dir/.` names the entry `.` in `dir` (its contents).
fn split_dir_entry(path: &str) -> (String, String) {
    let mut cleaned = clean(path);
    if specifies_current_dir(path) {
        cleaned.push_str("/.");
    }
    (dir(&cleaned), base(&cleaned))
}

fn specifies_current_dir(path: &str) -> bool {
    base(path) == "."
}

fn has_trailing_separator(path: &str) -> bool {
    path.len() > 1 && path.ends_with('/')
}

/// A path that can only name a directory: `dir/` or `dir/.`.
fn asserts_directory(path: &str) -> bool {
    has_trailing_separator(path) || specifies_current_dir(path)
}

/// `cleaned` with the trailing `/` or `/.` of `original` kept.
fn preserve_trailing(mut cleaned: String, original: &str) -> String {
    if !specifies_current_dir(&cleaned) && specifies_current_dir(original) {
        if !cleaned.ends_with('/') {
            cleaned.push('/');
        }
        cleaned.push('.');
    }
    if !has_trailing_separator(&cleaned) && has_trailing_separator(original) {
        cleaned.push('/');
    }
    cleaned
}

// ------------------------------------------------------------------ local paths

/// A local path made absolute and clean, its trailing `/` or `/.` kept.
fn absolute_local(path: &str) -> io::Result<String> {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        let cwd = std::env::current_dir()?;
        let cwd = cwd
            .to_str()
            .ok_or_else(|| io::Error::other("the current directory's name is not UTF-8"))?;
        format!("{cwd}/{path}")
    };
    Ok(preserve_trailing(clean(&joined), path))
}

/// A local destination: where it resolves to, and what is there.
struct Destination {
    path: String,
    exists: bool,
    is_dir: bool,
}

/// docker's `CopyInfoDestinationPath`: links at the end of the path are
/// followed; a path that does not exist needs an existing parent
/// directory.
fn local_destination(original: &str) -> io::Result<Destination> {
    let mut path = original.to_owned();
    for _ in 0..=MAX_SYMLINKS {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&path)?;
                let target = target.to_str().ok_or_else(|| {
                    io::Error::other(format!("{path} points to a name that is not UTF-8"))
                })?;
                path = if target.starts_with('/') {
                    target.to_owned()
                } else {
                    let (parent, _) = split_dir_entry(&path);
                    clean(&format!("{parent}/{target}"))
                };
            }
            Ok(meta) => {
                return Ok(Destination {
                    path,
                    exists: true,
                    is_dir: meta.is_dir(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (parent, _) = split_dir_entry(&path);
                let meta = fs::metadata(&parent)
                    .map_err(|e| io::Error::new(e.kind(), format!("{parent}: {e}")))?;
                if !meta.is_dir() {
                    return Err(io::Error::other(format!("{parent} is not a directory")));
                }
                return Ok(Destination {
                    path,
                    exists: false,
                    is_dir: false,
                });
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("{path}: {e}"))),
        }
    }
    Err(io::Error::other(format!(
        "too many symbolic links in {original}"
    )))
}

/// A local source: the path to archive, whether it is a directory, and
/// the name to give it when it differs from the path's.
struct Source {
    path: String,
    is_dir: bool,
    rebase_name: Option<String>,
}

/// docker's `CopyInfoSourcePath`: with `follow` (or a trailing `/`), the
/// path's last link is followed and the copy keeps the name asked for;
/// otherwise a link is copied as a link.
fn local_source(path: &str, follow: bool) -> io::Result<Source> {
    let (resolved, rebase_name) = if follow {
        let real = canonical(path)?;
        rebase_name_for(path, &real)
    } else {
        // Links in the parent directories are followed, the last is not.
        let (parent, entry) = match path.rfind('/') {
            Some(at) => (&path[..=at], &path[at + 1..]),
            None => ("./", path),
        };
        let parent = canonical(parent)?;
        let resolved = if parent == "/" {
            format!("/{entry}")
        } else {
            format!("{parent}/{entry}")
        };
        let rebase_name =
            (has_trailing_separator(path) && base(path) != base(&resolved)).then(|| base(path));
        (resolved, rebase_name)
    };
    let meta = fs::symlink_metadata(&resolved)
        .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    Ok(Source {
        path: resolved,
        is_dir: meta.is_dir(),
        rebase_name,
    })
}

fn canonical(path: &str) -> io::Result<String> {
    let real =
        fs::canonicalize(path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    real.to_str()
        .map(str::to_owned)
        .ok_or_else(|| io::Error::other(format!("{path} resolves to a name that is not UTF-8")))
}

// ------------------------------------------------------------------ plumbing

/// Runs blocking file work off the runtime's threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(format!("the copy stopped: {e}"))))
}

/// Counts the bytes that go through.
struct Counted<T> {
    inner: T,
    count: u64,
}

impl<T> Counted<T> {
    fn new(inner: T) -> Self {
        Counted { inner, count: 0 }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_name_a_container_only_before_a_colon() {
        let container = |container, path| Location::Container { container, path };
        assert_eq!(location("web:/etc/hosts"), container("web", "/etc/hosts"));
        assert_eq!(location("web:tmp/x"), container("web", "tmp/x"));
        assert_eq!(location("web:"), container("web", ""));
        assert_eq!(location("web:/a:b"), container("web", "/a:b"));
        assert_eq!(location("-"), Location::Local("-"));
        assert_eq!(location("notes.txt"), Location::Local("notes.txt"));
        assert_eq!(
            location("/abs/file:name"),
            Location::Local("/abs/file:name")
        );
        assert_eq!(location("./file:name"), Location::Local("./file:name"));
        assert_eq!(location("../file:name"), Location::Local("../file:name"));
    }

    #[test]
    fn container_paths_are_taken_from_the_root() {
        assert_eq!(container_path("tmp/x"), "/tmp/x");
        assert_eq!(container_path("/tmp/x/"), "/tmp/x/");
    }

    #[test]
    fn paths_clean_and_split_like_go() {
        assert_eq!(clean("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("../a/.."), "..");
        assert_eq!(clean(""), ".");
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/"), "/");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("b"), ".");
        assert_eq!(split_dir_entry("/d/a"), ("/d".into(), "a".into()));
        assert_eq!(split_dir_entry("/d/"), ("/".into(), "d".into()));
        assert_eq!(split_dir_entry("/d/."), ("/d".into(), ".".into()));
        assert_eq!(split_dir_entry("a"), (".".into(), "a".into()));
        assert!(asserts_directory("/d/"));
        assert!(asserts_directory("/d/."));
        assert!(!asserts_directory("/d"));
        assert!(!asserts_directory("/"));
    }

    #[test]
    fn local_paths_keep_a_trailing_slash_or_dot() {
        assert_eq!(
            absolute_local("/tmp//x/../y/").ok().as_deref(),
            Some("/tmp/y/")
        );
        assert_eq!(absolute_local("/tmp/y/.").ok().as_deref(), Some("/tmp/y/."));
        assert_eq!(absolute_local("/").ok().as_deref(), Some("/"));
        let relative = absolute_local("x").unwrap_or_default();
        assert!(
            relative.starts_with('/') && relative.ends_with("/x"),
            "{relative}"
        );
    }

    #[test]
    fn a_copy_goes_into_an_existing_directory() {
        assert_eq!(
            plan(false, "/tmp", Some(true)),
            Ok(Plan::Into { dir: "/tmp".into() })
        );
        assert_eq!(
            plan(true, "/tmp/", Some(true)),
            Ok(Plan::Into {
                dir: "/tmp/".into()
            })
        );
    }

    #[test]
    fn a_copy_to_a_new_or_file_path_takes_its_name() {
        let renamed = |dir: &str, name: &str| {
            Ok(Plan::Renamed {
                dir: dir.into(),
                name: name.into(),
            })
        };
        assert_eq!(plan(false, "/tmp/new", None), renamed("/tmp", "new"));
        assert_eq!(plan(true, "/tmp/new", None), renamed("/tmp", "new"));
        assert_eq!(plan(true, "/tmp/new/", None), renamed("/tmp", "new"));
        assert_eq!(plan(false, "/tmp/old", Some(false)), renamed("/tmp", "old"));
    }

    #[test]
    fn impossible_copies_are_refused() {
        assert!(plan(true, "/tmp/file", Some(false)).is_err());
        assert!(plan(false, "/tmp/missing/", None).is_err());
        assert!(plan(false, "/tmp/missing/.", None).is_err());
    }

    #[test]
    fn a_followed_link_keeps_the_name_asked_for() {
        assert_eq!(
            rebase_name_for("/dl", "/d"),
            ("/d".into(), Some("dl".into()))
        );
        assert_eq!(
            rebase_name_for("/dl/", "/d"),
            ("/d/".into(), Some("dl".into()))
        );
        assert_eq!(rebase_name_for("/dl/.", "/d"), ("/d/.".into(), None));
        assert_eq!(rebase_name_for("/d", "/d"), ("/d".into(), None));
        assert_eq!(link_target("/a/link", "b/c"), "/a/b/c");
        assert_eq!(link_target("/a/link", "/x"), "/x");
        assert_eq!(link_target("/a/link", "../x"), "/x");
    }

    #[test]
    fn entries_are_renamed_by_their_top_component_only() {
        let r = |p: &str, old, new| rename_entry(Path::new(p), old, new);
        assert_eq!(r("d", "d", "e"), Path::new("e"));
        assert_eq!(r("d/", "d", "e"), Path::new("e"));
        assert_eq!(r("d/a/d", "d", "e"), Path::new("e/a/d"));
        assert_eq!(r("dd/a", "d", "e"), Path::new("dd/a"));
        assert_eq!(r("./a", ".", "e"), Path::new("e/a"));
    }

    /// A tar of: `d/` (0750), `d/a` (0640, "hello"), `d/link` → `a`,
    /// `d/hard` ⇒ `d/a`, a long name under `d/`, and `other`.
    fn sample_archive() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let header = |kind: tar::EntryType, mode: u32, size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_mtime(1_600_000_000);
            h.set_size(size);
            h
        };
        let ok = |r: io::Result<()>| assert!(r.is_ok(), "{r:?}");
        ok(builder.append_data(
            &mut header(tar::EntryType::Directory, 0o750, 0),
            "d/",
            io::empty(),
        ));
        ok(builder.append_data(
            &mut header(tar::EntryType::Regular, 0o640, 5),
            "d/a",
            &b"hello"[..],
        ));
        ok(builder.append_link(
            &mut header(tar::EntryType::Symlink, 0o777, 0),
            "d/link",
            "a",
        ));
        ok(builder.append_link(&mut header(tar::EntryType::Link, 0o640, 0), "d/hard", "d/a"));
        let long = format!("d/{}", "n".repeat(150));
        ok(builder.append_data(
            &mut header(tar::EntryType::Regular, 0o600, 1),
            &long,
            &b"x"[..],
        ));
        ok(builder.append_data(
            &mut header(tar::EntryType::Regular, 0o644, 0),
            "other",
            io::empty(),
        ));
        builder.into_inner().unwrap_or_default()
    }

    /// Each entry: name, kind, mode, mtime, link target, contents.
    fn listing(tar: &[u8]) -> Vec<(String, tar::EntryType, u32, u64, String, Vec<u8>)> {
        let mut archive = tar::Archive::new(tar);
        let mut entries = Vec::new();
        for entry in archive.entries().into_iter().flatten().flatten() {
            let mut entry = entry;
            let name = entry
                .path()
                .map(|p| p.display().to_string().trim_end_matches('/').to_owned())
                .unwrap_or_default();
            let h = entry.header().clone();
            let link = entry
                .link_name()
                .ok()
                .flatten()
                .map(|l| l.display().to_string())
                .unwrap_or_default();
            let mut data = Vec::new();
            let _ = entry.read_to_end(&mut data);
            entries.push((
                name,
                h.entry_type(),
                h.mode().unwrap_or(0) & 0o7777,
                h.mtime().unwrap_or(0),
                link,
                data,
            ));
        }
        entries
    }

    /// A directory of its own under the system's temporary directory.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let path =
                std::env::temp_dir().join(format!("dockwire-cp-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            let made = fs::create_dir_all(&path);
            assert!(made.is_ok(), "{made:?}");
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn mtime(path: &Path) -> u64 {
        fs::symlink_metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs())
    }

    #[test]
    fn extracting_renamed_keeps_modes_times_and_links() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = Scratch::new("extract");
        let rename = Some(("d".to_owned(), "copy".to_owned()));
        let read = extract(&sample_archive()[..], &scratch.0, rename);
        assert!(read.is_ok(), "{read:?}");
        let copy = scratch.0.join("copy");
        let mode = |p: &Path| {
            fs::symlink_metadata(p)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0)
        };
        assert_eq!(
            fs::read(copy.join("a")).ok().as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(mode(&copy.join("a")), 0o640);
        assert_eq!(mode(&copy), 0o750);
        assert_eq!(mtime(&copy.join("a")), 1_600_000_000);
        assert_eq!(mtime(&copy), 1_600_000_000, "a directory keeps its time");
        assert_eq!(fs::read_link(copy.join("link")).ok(), Some("a".into()));
        assert_eq!(
            fs::read(copy.join("hard")).ok().as_deref(),
            Some(&b"hello"[..])
        );
        assert!(scratch.0.join("other").exists());
        assert!(!scratch.0.join("d").exists());
    }

    #[test]
    fn unpacking_renamed_renames_the_top_entry_and_keeps_everything_else() {
        use std::os::unix::fs::MetadataExt;
        let scratch = Scratch::new("renamed");
        let rename = Some(("d".to_owned(), "e".to_owned()));
        let read = extract(&sample_archive()[..], &scratch.0, rename);
        assert!(read.is_ok(), "{read:?}");
        let mut names = Vec::new();
        let mut stack = vec![scratch.0.clone()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path.clone());
                }
                let name = path.strip_prefix(&scratch.0).map(Path::to_path_buf);
                names.push(name.unwrap_or_default().display().to_string());
            }
        }
        names.sort();
        let long = format!("e/{}", "n".repeat(150));
        assert_eq!(
            names,
            ["e", "e/a", "e/hard", "e/link", long.as_str(), "other"]
        );
        let e = scratch.0.join("e");
        assert_eq!(
            fs::read(e.join(&long[2..])).ok().as_deref(),
            Some(&b"x"[..])
        );
        // A hard link follows the renamed entry: one file under two names.
        let inode = |p: &Path| fs::symlink_metadata(p).map(|m| m.ino()).unwrap_or(0);
        assert_eq!(inode(&e.join("hard")), inode(&e.join("a")));
        assert_ne!(inode(&e.join("a")), 0);
    }

    /// A tar of raw entries (name, kind, link target, contents), their
    /// names as given: a builder refuses the hostile ones.
    fn raw_archive(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_cksum();
            let appended = builder.append(&h, *data);
            assert!(appended.is_ok(), "{appended:?}");
        }
        builder.into_inner().unwrap_or_default()
    }

    /// A destination and a directory beside it that a copy must not reach.
    fn destination_and_outside(name: &str) -> (Scratch, std::path::PathBuf, std::path::PathBuf) {
        let scratch = Scratch::new(name);
        let (dest, outside) = (scratch.0.join("dest"), scratch.0.join("outside"));
        let made = fs::create_dir_all(&dest).and_then(|()| fs::create_dir_all(&outside));
        assert!(made.is_ok(), "{made:?}");
        (scratch, dest, outside)
    }

    fn renamed() -> Option<(String, String)> {
        Some(("d".to_owned(), "e".to_owned()))
    }

    #[test]
    fn a_renamed_entry_with_dot_dot_is_not_unpacked() {
        let (_scratch, dest, outside) = destination_and_outside("dotdot");
        let tar = raw_archive(&[
            ("d/", tar::EntryType::Directory, "", b""),
            ("d/../../outside/x", tar::EntryType::Regular, "", b"x"),
            ("d/y", tar::EntryType::Regular, "", b"y"),
        ]);
        let read = extract(&tar[..], &dest, renamed());
        assert!(read.is_ok(), "{read:?}");
        assert!(!outside.join("x").exists());
        assert_eq!(fs::read(dest.join("e/y")).ok().as_deref(), Some(&b"y"[..]));
    }

    #[test]
    fn nothing_is_unpacked_through_a_link_out_of_the_destination() {
        let (_scratch, dest, outside) = destination_and_outside("through-link");
        let target = outside.to_str().unwrap_or_default();
        let tar = raw_archive(&[
            ("d/out", tar::EntryType::Symlink, target, b""),
            ("d/out/x", tar::EntryType::Regular, "", b"x"),
            ("d/out/sub/y", tar::EntryType::Regular, "", b"y"),
        ]);
        assert!(extract(&tar[..], &dest, renamed()).is_err());
        let tar = raw_archive(&[
            ("d/out", tar::EntryType::Symlink, target, b""),
            ("d/out/sub/y", tar::EntryType::Regular, "", b"y"),
        ]);
        assert!(extract(&tar[..], &dest, renamed()).is_err());
        assert_eq!(fs::read_dir(&outside).map(Iterator::count).ok(), Some(0));
    }

    #[test]
    fn a_hard_link_out_of_the_destination_is_refused() {
        let (_scratch, dest, outside) = destination_and_outside("hard-link");
        let written = fs::write(outside.join("secret"), b"s");
        assert!(written.is_ok(), "{written:?}");
        let secret = outside.join("secret");
        for link in ["../outside/secret", secret.to_str().unwrap_or_default()] {
            let tar = raw_archive(&[("d/hard", tar::EntryType::Link, link, b"")]);
            assert!(extract(&tar[..], &dest, renamed()).is_err(), "{link}");
            assert!(!dest.join("e/hard").exists(), "{link}");
        }
    }

    #[test]
    fn an_archive_of_a_local_tree_takes_the_name_given() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = Scratch::new("archive");
        let src = scratch.0.join("src");
        let made = fs::create_dir_all(src.join("sub"))
            .and_then(|()| fs::write(src.join("sub/f"), b"data"))
            .and_then(|()| {
                fs::set_permissions(src.join("sub/f"), fs::Permissions::from_mode(0o604))
            })
            .and_then(|()| std::os::unix::fs::symlink("sub/f", src.join("link")));
        assert!(made.is_ok(), "{made:?}");
        let mut tar = Vec::new();
        let built = archive(&mut tar, &src, true, "renamed");
        assert!(built.is_ok(), "{built:?}");
        let mut entries = listing(&tar);
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            ["renamed", "renamed/link", "renamed/sub", "renamed/sub/f"]
        );
        assert_eq!(
            (entries[1].1, entries[1].4.as_str()),
            (tar::EntryType::Symlink, "sub/f")
        );
        assert_eq!(
            (entries[3].2, entries[3].5.as_slice()),
            (0o604, &b"data"[..])
        );
        // `dir/.`: the contents, under no name of their own.
        let mut tar = Vec::new();
        let built = archive(&mut tar, &src, true, ".");
        assert!(built.is_ok(), "{built:?}");
        let mut names: Vec<String> = listing(&tar).into_iter().map(|e| e.0).collect();
        names.sort();
        assert_eq!(names, [".", "link", "sub", "sub/f"]);
    }

    #[test]
    fn a_local_destination_needs_its_parent() {
        let scratch = Scratch::new("destination");
        let root = scratch.0.to_str().unwrap_or_default().to_owned();
        let missing = local_destination(&format!("{root}/new"));
        assert!(
            missing.as_ref().is_ok_and(|d| !d.exists),
            "a new name in a directory is fine"
        );
        assert!(local_destination(&format!("{root}/no/new")).is_err());
        let _ = std::os::unix::fs::symlink(&root, scratch.0.join("to-root"));
        let linked = local_destination(&format!("{root}/to-root"));
        assert!(
            linked
                .as_ref()
                .is_ok_and(|d| d.exists && d.is_dir && d.path == root)
        );
    }
}
