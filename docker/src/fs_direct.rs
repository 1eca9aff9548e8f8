//! The file API on a running runc container whose processes this server
//! sees: its root file system, reached through its init's
//! `/proc/<pid>/root`, with every path resolved by the kernel inside that
//! root (`openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`: `..`
//! stops at the container's `/`, an absolute symbolic link starts from
//! it, and `/proc/<pid>/root`-style links are refused), then `*at` calls
//! relative to the directory found, on one name that is never followed.
//! A symbolic link swapped in during an operation is met by the kernel's
//! resolution, never by a path this server builds.
//!
//! What this server does there, it does as root on the host: so it reads
//! only regular files (a device node a user made would be the host's
//! device), never through a kernel file system (`/proc`, `/sys`, cgroups:
//! their files speak for the host to the host's root), and never in a
//! container whose user namespace maps ids (their owners would be the
//! host's). Every call here blocks: the handlers run them apart from the
//! runtime's tasks.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use dockwire_core::CallError;
use rustix::fs::{
    AtFlags, Dir, FileType, Gid, Mode, OFlags, ResolveFlags, Stat, Uid, fchmod, fchown, fstat,
    fstatfs, mkdirat, openat, openat2, readlinkat, renameat, statat, unlinkat,
};
use rustix::io::Errno;

use crate::catalog::{FS_LIST_MAX_ENTRIES, FileKind, FsEntry, NOT_SUPPORTED};
use crate::error::invalid_input;
use crate::fs_path::{FsPath, errno_error};

/// How every path is resolved: inside the root, no magic links.
const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// How often a resolution the kernel asks to retry (`EAGAIN`: a rename
/// raced it) is tried again.
const RETRIES: usize = 16;

/// How deep a recursive remove goes.
const REMOVE_MAX_DEPTH: usize = 1024;

/// Kernel file systems, by `statfs` magic: never read, written or
/// listed through (their files are the host's, to the host's root).
const KERNEL_FILE_SYSTEMS: &[i128] = &[
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0x7363_6673, // securityfs
    0xcafe_4a11, // bpf
    0x6e73_6673, // nsfs
    0x1cd1,      // devpts
    0x6573_5543, // fusectl
    0x6265_6570, // configfs
    0x6165_676c, // pstore
    0xde5e_81e4, // efivarfs
    0xf97c_ff8c, // selinuxfs
    0x4249_4e4d, // binfmt_misc
];

/// A container's root directory, opened through its init's
/// `/proc/<pid>/root`, and the name the caller gave the container (for
/// messages).
pub(crate) struct Root {
    fd: OwnedFd,
    container: String,
}

/// A file being written: a temporary file next to its final name,
/// renamed over it by [`Writing::commit`], removed if dropped before.
pub(crate) struct Writing {
    parent: OwnedFd,
    temp: String,
    name: String,
    file: Option<OwnedFd>,
    mode: u32,
    uid: u32,
    gid: u32,
    written: u64,
    asked: String,
    container: String,
}

impl Root {
    /// Opens the root of the container whose init is host pid `pid`;
    /// `None` when its user namespace maps ids (the archive API then
    /// serves it).
    pub(crate) fn open(pid: i64, container: &str) -> std::io::Result<Option<Root>> {
        for map in ["uid_map", "gid_map"] {
            let ids = std::fs::read_to_string(format!("/proc/{pid}/{map}"))?;
            if !is_identity(&ids) {
                return Ok(None);
            }
        }
        let fd = rustix::fs::open(
            format!("/proc/{pid}/root"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Some(Root {
            fd,
            container: container.to_owned(),
        }))
    }

    /// What is at `path` (a symbolic link itself).
    pub(crate) fn stat(&self, path: &FsPath) -> Result<FsEntry, CallError> {
        let Ok((parent, name)) = path.split_last() else {
            let st = fstat(&self.fd).map_err(|e| self.error(e, path))?;
            return Ok(entry("/".to_owned(), &st, None));
        };
        let dir = self.dir(&parent)?;
        self.entry_at(&dir, &name, name.clone(), path)
    }

    /// The entries of directory `path`, `depth` levels down, by name.
    pub(crate) fn list(&self, path: &FsPath, depth: u32) -> Result<Vec<FsEntry>, CallError> {
        let dir = self.resolve(path, OFlags::RDONLY | OFlags::DIRECTORY)?;
        self.check_file_system(&dir, path)?;
        let mut entries = Vec::new();
        self.list_into(&dir, "", depth, path, &mut entries)?;
        Ok(entries)
    }

    /// File `path` (symbolic links followed inside the root) opened for
    /// reading, with its metadata.
    pub(crate) fn open_file(&self, path: &FsPath) -> Result<(OwnedFd, FsEntry), CallError> {
        let found = self.resolve(path, OFlags::PATH)?;
        let st = fstat(&found).map_err(|e| self.error(e, path))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {}
            FileType::Directory => return Err(self.error(Errno::ISDIR, path)),
            _ => {
                return Err(CallError::new(
                    NOT_SUPPORTED,
                    format!(
                        "{}:{} is not a regular file (a device, fifo or socket is not read)",
                        self.container, path.asked
                    ),
                ));
            }
        }
        self.check_file_system(&found, path)?;
        // Reopened through this process's own descriptor: the very inode
        // checked above, now readable.
        let file = rustix::fs::open(
            format!("/proc/self/fd/{}", found.as_raw_fd()),
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(|e| self.error(e, path))?;
        let name = path.parts.last().cloned().unwrap_or_else(|| "/".to_owned());
        Ok((file, entry(name, &st, None)))
    }

    /// Starts writing file `path`: its parent found (made, with
    /// `parents`), a temporary file made next to it. Mode and owner not
    /// given are the replaced file's, or 0o644 and root's.
    pub(crate) fn start_write(
        &self,
        path: &FsPath,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        parents: bool,
    ) -> Result<Writing, CallError> {
        let (parent_path, name) = path.split_last()?;
        let parent = match parents {
            true => self.make_dirs(&parent_path, path)?,
            false => self.dir(&parent_path)?,
        };
        let (mut old_mode, mut old_uid, mut old_gid) = (0o644, 0, 0);
        match statat(&parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                return Err(self.error(Errno::ISDIR, path));
            }
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
                (old_mode, old_uid, old_gid) = (st.st_mode & 0o7777, st.st_uid, st.st_gid);
            }
            Ok(_) | Err(Errno::NOENT) => {}
            Err(e) => return Err(self.error(e, path)),
        }
        let temp = format!(".dockwire-write-{:016x}", random());
        let file = openat(
            &parent,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| self.error(e, path))?;
        Ok(Writing {
            parent,
            temp,
            name,
            file: Some(file),
            mode: mode.unwrap_or(old_mode) & 0o7777,
            uid: uid.unwrap_or(old_uid),
            gid: gid.unwrap_or(old_gid),
            written: 0,
            asked: path.asked.clone(),
            container: self.container.clone(),
        })
    }

    /// Makes directory `path`; with `parents`, its missing parents too,
    /// and an existing directory is no error.
    pub(crate) fn mkdir(&self, path: &FsPath, mode: u32, parents: bool) -> Result<(), CallError> {
        let (parent_path, name) = path.split_last()?;
        let parent = match parents {
            true if self.resolve(path, OFlags::PATH | OFlags::DIRECTORY).is_ok() => return Ok(()),
            true => self.make_dirs(&parent_path, path)?,
            false => self.dir(&parent_path)?,
        };
        mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o700))
            .map_err(|e| self.error(e, path))?;
        // The mode exactly (mkdir's is cut by the umask), on the directory
        // just made, never through a name a swap could redirect.
        let made = openat(
            &parent,
            name.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.error(e, path))?;
        fchmod(&made, Mode::from_raw_mode(mode & 0o7777)).map_err(|e| self.error(e, path))
    }

    /// Removes `path` (a symbolic link itself); a directory with entries
    /// only when `recursive`.
    pub(crate) fn remove(&self, path: &FsPath, recursive: bool) -> Result<(), CallError> {
        let (parent_path, name) = path.split_last()?;
        let parent = self.dir(&parent_path)?;
        let st = statat(&parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.error(e, path))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return unlinkat(&parent, name.as_str(), AtFlags::empty())
                .map_err(|e| self.error(e, path));
        }
        if recursive {
            self.remove_tree(&parent, &name, path, 0)?;
        }
        unlinkat(&parent, name.as_str(), AtFlags::REMOVEDIR).map_err(|e| self.error(e, path))
    }

    /// Moves `from` to `to`.
    pub(crate) fn rename(&self, from: &FsPath, to: &FsPath) -> Result<(), CallError> {
        let (from_parent, from_name) = from.split_last()?;
        let (to_parent, to_name) = to.split_last()?;
        let from_dir = self.dir(&from_parent)?;
        let to_dir = self.dir(&to_parent)?;
        // Which side an error is about: the source unless it exists.
        renameat(&from_dir, from_name.as_str(), &to_dir, to_name.as_str()).map_err(
            |e| match statat(&from_dir, from_name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(_) => self.error(e, to),
                Err(_) => self.error(e, from),
            },
        )
    }

    /// `path` opened with `flags`, resolved inside the root.
    fn resolve(&self, path: &FsPath, flags: OFlags) -> Result<OwnedFd, CallError> {
        let relative = path.relative();
        let mut tries = 0;
        loop {
            match openat2(
                &self.fd,
                relative.as_str(),
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            ) {
                Err(Errno::AGAIN) if tries < RETRIES => tries += 1,
                other => return other.map_err(|e| self.error(e, path)),
            }
        }
    }

    /// Directory `path`, for `*at` calls, on a file system that is not
    /// the kernel's.
    fn dir(&self, path: &FsPath) -> Result<OwnedFd, CallError> {
        let dir = self.resolve(path, OFlags::PATH | OFlags::DIRECTORY)?;
        self.check_file_system(&dir, path)?;
        Ok(dir)
    }

    /// Directory `dirs` and its missing parents made (`mkdir -p`), each
    /// resolved from the root again.
    fn make_dirs(&self, dirs: &FsPath, asked: &FsPath) -> Result<OwnedFd, CallError> {
        for end in 1..=dirs.parts.len() {
            let prefix = FsPath {
                asked: asked.asked.clone(),
                parts: dirs.parts[..end].to_vec(),
            };
            match self.resolve(&prefix, OFlags::PATH | OFlags::DIRECTORY) {
                Ok(_) => continue,
                Err(_) if dirs.parts[end - 1] == ".." => continue,
                Err(_) => {}
            }
            let (parent, name) = prefix.split_last()?;
            let parent = self.dir(&parent)?;
            match mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(self.error(e, asked)),
            }
        }
        self.dir(dirs)
    }

    /// The metadata of `name` in `dir`, called `shown`.
    fn entry_at(
        &self,
        dir: &OwnedFd,
        name: &str,
        shown: String,
        path: &FsPath,
    ) -> Result<FsEntry, CallError> {
        let st = statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| self.error(e, path))?;
        let link = match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => readlinkat(dir, name, Vec::new())
                .ok()
                .map(|target| target.to_string_lossy().into_owned()),
            _ => None,
        };
        Ok(entry(shown, &st, link))
    }

    fn list_into(
        &self,
        dir: &OwnedFd,
        prefix: &str,
        depth: u32,
        path: &FsPath,
        entries: &mut Vec<FsEntry>,
    ) -> Result<(), CallError> {
        let mut names = Vec::new();
        let mut reader = Dir::read_from(dir).map_err(|e| self.error(e, path))?;
        while let Some(next) = reader.read() {
            let next = next.map_err(|e| self.error(e, path))?;
            let name = next.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            names.push(name_of(name));
        }
        names.sort();
        for name in names {
            if entries.len() >= FS_LIST_MAX_ENTRIES {
                return Err(invalid_input(format!(
                    "{}:{} has more than {FS_LIST_MAX_ENTRIES} entries at this depth",
                    self.container, path.asked
                )));
            }
            let shown = format!("{prefix}{name}");
            let found = match self.entry_at(dir, &name, shown.clone(), path) {
                Ok(found) => found,
                // Gone since the directory was read.
                Err(_) => continue,
            };
            let descend = depth > 1 && found.kind == FileKind::Dir;
            entries.push(found);
            if !descend {
                continue;
            }
            let Ok(child) = openat(
                dir,
                name.as_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            if is_kernel_file_system(&child) {
                continue;
            }
            self.list_into(&child, &format!("{shown}/"), depth - 1, path, entries)?;
        }
        Ok(())
    }

    /// Empties directory `name` of `parent`, recursively, without ever
    /// following a symbolic link.
    fn remove_tree(
        &self,
        parent: &OwnedFd,
        name: &str,
        path: &FsPath,
        depth: usize,
    ) -> Result<(), CallError> {
        if depth >= REMOVE_MAX_DEPTH {
            return Err(invalid_input(format!(
                "{}:{} is more than {REMOVE_MAX_DEPTH} directories deep",
                self.container, path.asked
            )));
        }
        let dir = openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.error(e, path))?;
        self.check_file_system(&dir, path)?;
        let mut names = Vec::new();
        let mut reader = Dir::read_from(&dir).map_err(|e| self.error(e, path))?;
        while let Some(next) = reader.read() {
            let next = next.map_err(|e| self.error(e, path))?;
            let child = next.file_name();
            if child != c"." && child != c".." {
                names.push(child.to_owned());
            }
        }
        for child in names {
            let st = statat(&dir, child.as_c_str(), AtFlags::SYMLINK_NOFOLLOW);
            let is_dir =
                st.is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
            if is_dir {
                let child_name = name_of(&child);
                self.remove_tree(&dir, &child_name, path, depth + 1)?;
                unlinkat(&dir, child.as_c_str(), AtFlags::REMOVEDIR)
            } else {
                unlinkat(&dir, child.as_c_str(), AtFlags::empty())
            }
            .or_else(|e| if e == Errno::NOENT { Ok(()) } else { Err(e) })
            .map_err(|e| self.error(e, path))?;
        }
        Ok(())
    }

    fn check_file_system(&self, fd: &OwnedFd, path: &FsPath) -> Result<(), CallError> {
        match is_kernel_file_system(fd) {
            false => Ok(()),
            true => Err(CallError::new(
                NOT_SUPPORTED,
                format!(
                    "{}:{} is on a kernel file system (/proc, /sys, cgroups), which the file API does not touch",
                    self.container, path.asked
                ),
            )),
        }
    }

    fn error(&self, errno: Errno, path: &FsPath) -> CallError {
        errno_error(errno, &self.container, &path.asked)
    }
}

impl Writing {
    /// Appends `bytes`.
    pub(crate) fn write(&mut self, mut bytes: &[u8]) -> Result<(), CallError> {
        let Some(file) = &self.file else {
            return Err(invalid_input("the file is already written"));
        };
        while !bytes.is_empty() {
            match rustix::io::write(file, bytes) {
                Ok(0) => return Err(self.error(Errno::NOSPC)),
                Ok(n) => {
                    bytes = bytes.get(n..).unwrap_or_default();
                    self.written = self.written.saturating_add(n as u64);
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(self.error(e)),
            }
        }
        Ok(())
    }

    /// How many bytes were written.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Gives the file its owner and mode, and renames it over its final
    /// name: readers see the old file or all of the new one.
    pub(crate) fn commit(mut self) -> Result<(), CallError> {
        let Some(file) = self.file.take() else {
            return Err(invalid_input("the file is already written"));
        };
        // Owner first: a chown clears setuid and setgid bits.
        fchown(
            &file,
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
        )
        .map_err(|e| self.error(e))?;
        fchmod(&file, Mode::from_raw_mode(self.mode)).map_err(|e| self.error(e))?;
        drop(file);
        renameat(
            &self.parent,
            self.temp.as_str(),
            &self.parent,
            self.name.as_str(),
        )
        .map_err(|e| self.error(e))?;
        // Renamed: nothing to remove.
        self.temp.clear();
        Ok(())
    }

    fn error(&self, errno: Errno) -> CallError {
        errno_error(errno, &self.container, &self.asked)
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if !self.temp.is_empty() {
            let _ = unlinkat(&self.parent, self.temp.as_str(), AtFlags::empty());
        }
    }
}

/// An id map that maps every id to itself (no user namespace).
fn is_identity(map: &str) -> bool {
    let fields: Vec<&str> = map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

fn is_kernel_file_system(fd: &impl AsFd) -> bool {
    match fstatfs(fd) {
        Ok(fs) => KERNEL_FILE_SYSTEMS.contains(&i128::from(fs.f_type)),
        // Unknown: not touched.
        Err(_) => true,
    }
}

fn name_of(name: &CStr) -> String {
    name.to_string_lossy().into_owned()
}

/// The catalog's entry of `st`, called `name`.
fn entry(name: String, st: &Stat, link_target: Option<String>) -> FsEntry {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => FileKind::File,
        FileType::Directory => FileKind::Dir,
        FileType::Symlink => FileKind::Symlink,
        _ => FileKind::Other,
    };
    FsEntry {
        name,
        kind,
        size: u64::try_from(st.st_size).unwrap_or_default(),
        mode: st.st_mode & 0o7777,
        uid: Some(st.st_uid),
        gid: Some(st.st_gid),
        mtime: rfc3339(
            st.st_mtime,
            u32::try_from(st.st_mtime_nsec).unwrap_or_default(),
        ),
        link_target,
    }
}

/// Seconds and nanoseconds since the epoch, in RFC 3339 (UTC).
pub(crate) fn rfc3339(secs: i64, nanos: u32) -> String {
    chrono::DateTime::from_timestamp(secs, nanos)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A name no one guesses: the time and a counter, mixed.
fn random() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u64::from_le_bytes(bytes) ^ (now as u64) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_an_identity_map_is_one() {
        assert!(super::is_identity("         0          0 4294967295\n"));
        assert!(!super::is_identity("0 100000 65536\n"));
        assert!(!super::is_identity("0 0 4294967295\n1 1 1\n"));
    }
}
