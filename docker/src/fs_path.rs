//! The file API's paths and errors, shared by both ways it reaches a
//! container's files (`fs_direct`, `fs_archive`): a path a caller gives,
//! checked and cut into components, and the typed error an errno (or the
//! engine) becomes. A message names the container and the caller's own
//! path, never where the files are on the host.

use dockwire_core::CallError;
use rustix::io::Errno;

use crate::catalog::{
    ALREADY_EXISTS, DIRECTORY_NOT_EMPTY, DOCKER_ERROR, IS_A_DIRECTORY, NO_SPACE, NOT_A_DIRECTORY,
    NOT_SUPPORTED, PATH_NOT_FOUND, PERMISSION_DENIED, READ_ONLY_FILE_SYSTEM,
};
use crate::error::invalid_input;

/// The longest path the file API takes, as Linux's `PATH_MAX`.
const PATH_MAX: usize = 4096;

/// A caller's path in a container: absolute, its components without `.`
/// and empty ones (`..` is kept: the kernel resolves it inside the
/// container's root, where `/..` is `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FsPath {
    /// What the caller wrote, for messages.
    pub(crate) asked: String,
    /// The components below `/`.
    pub(crate) parts: Vec<String>,
}

impl FsPath {
    /// Checks `path`: absolute, no NUL, at most `PATH_MAX` bytes.
    pub(crate) fn parse(path: &str) -> Result<FsPath, CallError> {
        if !path.starts_with('/') {
            return Err(invalid_input(format!(
                "{path:?} is not an absolute path in the container"
            )));
        }
        if path.contains('\0') {
            return Err(invalid_input("a path has no NUL byte"));
        }
        if path.len() > PATH_MAX {
            return Err(invalid_input(format!("a path is at most {PATH_MAX} bytes")));
        }
        let parts = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .map(str::to_owned)
            .collect();
        Ok(FsPath {
            asked: path.to_owned(),
            parts,
        })
    }

    /// The path relative to the container's root (`.` for the root).
    pub(crate) fn relative(&self) -> String {
        match self.parts.is_empty() {
            true => ".".to_owned(),
            false => self.parts.join("/"),
        }
    }

    /// The parent's components and the last name, for operations on the
    /// last component itself (make, remove, rename, replace). The root,
    /// and a path ending in `..`, have none: `INVALID_INPUT`.
    pub(crate) fn split_last(&self) -> Result<(FsPath, String), CallError> {
        let Some((last, parent)) = self.parts.split_last() else {
            return Err(invalid_input(
                "the container's root itself cannot be made, removed, renamed or written",
            ));
        };
        if last == ".." {
            return Err(invalid_input(format!(
                "{} ends in \"..\": name what it means",
                self.asked
            )));
        }
        let parent = FsPath {
            asked: self.asked.clone(),
            parts: parent.to_vec(),
        };
        Ok((parent, last.clone()))
    }

    /// The path as the engine's archive API takes it: absolute, with
    /// `..` taken lexically (the engine resolves it the same way).
    pub(crate) fn for_engine(&self) -> String {
        let mut kept: Vec<&str> = Vec::new();
        for part in &self.parts {
            match part.as_str() {
                ".." => {
                    kept.pop();
                }
                name => kept.push(name),
            }
        }
        format!("/{}", kept.join("/"))
    }
}

/// The typed error of `errno` from an operation on `path` of `container`.
pub(crate) fn errno_error(errno: Errno, container: &str, path: &str) -> CallError {
    let at = format!("{container}:{path}");
    let (code, message) = match errno {
        Errno::NOENT => (PATH_NOT_FOUND, format!("No such container:path: {at}")),
        Errno::NOTDIR => (NOT_A_DIRECTORY, format!("not a directory: {at}")),
        Errno::ISDIR => (IS_A_DIRECTORY, format!("is a directory: {at}")),
        Errno::ACCESS | Errno::PERM => (PERMISSION_DENIED, format!("permission denied: {at}")),
        Errno::ROFS => (
            READ_ONLY_FILE_SYSTEM,
            format!("read-only file system: {at}"),
        ),
        Errno::NOSPC | Errno::DQUOT => (NO_SPACE, format!("no space left on device: {at}")),
        Errno::EXIST => (ALREADY_EXISTS, format!("file exists: {at}")),
        Errno::NOTEMPTY => (DIRECTORY_NOT_EMPTY, format!("directory not empty: {at}")),
        Errno::LOOP => (
            invalid_input_code(),
            format!("too many levels of symbolic links: {at}"),
        ),
        Errno::NAMETOOLONG => (invalid_input_code(), format!("file name too long: {at}")),
        Errno::XDEV => (
            NOT_SUPPORTED,
            format!("{at}: a rename across file systems (mounts) is not supported"),
        ),
        Errno::INVAL => (invalid_input_code(), format!("invalid argument: {at}")),
        other => (DOCKER_ERROR, format!("{at}: {other}")),
    };
    CallError::new(code, message)
}

fn invalid_input_code() -> dockwire_core::ErrorCode {
    dockwire_core::ErrorCode::INVALID_INPUT
}

/// `PATH_NOT_FOUND` for `path` of `container`.
pub(crate) fn not_found(container: &str, path: &str) -> CallError {
    errno_error(Errno::NOENT, container, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_must_be_absolute_without_nul_and_not_too_long() {
        for bad in ["", "etc/passwd", "./x", "/a\0b"] {
            let e = FsPath::parse(bad).unwrap_err();
            assert_eq!(e.code, dockwire_core::ErrorCode::INVALID_INPUT, "{bad:?}");
        }
        let long = format!("/{}", "a".repeat(PATH_MAX));
        assert!(FsPath::parse(&long).is_err());
        let p = FsPath::parse("//etc/./passwd/").unwrap();
        assert_eq!(p.parts, ["etc", "passwd"]);
        assert_eq!(p.relative(), "etc/passwd");
        assert_eq!(FsPath::parse("/").unwrap().relative(), ".");
    }

    #[test]
    fn the_root_and_a_trailing_dotdot_have_no_last_name() {
        assert!(FsPath::parse("/").unwrap().split_last().is_err());
        assert!(FsPath::parse("/a/..").unwrap().split_last().is_err());
        let (parent, name) = FsPath::parse("/a/b/c").unwrap().split_last().unwrap();
        assert_eq!(
            (parent.parts.as_slice(), name.as_str()),
            (&["a".to_owned(), "b".to_owned()][..], "c")
        );
    }

    #[test]
    fn dotdot_never_climbs_above_the_root_for_the_engine() {
        let p = FsPath::parse("/../../etc/../../passwd").unwrap();
        assert_eq!(p.for_engine(), "/passwd");
        assert_eq!(FsPath::parse("/").unwrap().for_engine(), "/");
    }

    #[test]
    fn errnos_become_typed_errors_naming_the_callers_path() {
        let e = errno_error(Errno::NOENT, "web", "/nope");
        assert_eq!(e.code, PATH_NOT_FOUND);
        assert_eq!(e.message, "No such container:path: web:/nope");
        assert_eq!(
            errno_error(Errno::ROFS, "w", "/x").code,
            READ_ONLY_FILE_SYSTEM
        );
        assert_eq!(errno_error(Errno::NOSPC, "w", "/x").code, NO_SPACE);
        assert_eq!(
            errno_error(Errno::ACCESS, "w", "/x").code,
            PERMISSION_DENIED
        );
        assert_eq!(errno_error(Errno::ISDIR, "w", "/x").code, IS_A_DIRECTORY);
        assert_eq!(errno_error(Errno::NOTDIR, "w", "/x").code, NOT_A_DIRECTORY);
        assert_eq!(errno_error(Errno::EXIST, "w", "/x").code, ALREADY_EXISTS);
        assert_eq!(
            errno_error(Errno::NOTEMPTY, "w", "/x").code,
            DIRECTORY_NOT_EMPTY
        );
    }
}
