//! `fs ls|stat|cat|write|mkdir|rm|mv`: a container's files one at a time
//! through the server's file API (`fs/*`), which needs nothing in the
//! image. Paths are `CONTAINER:PATH`, `PATH` absolute in the container.
//! Errors are the server's typed ones (`No such container:path: …`,
//! exit 1).

use std::io::{self, Read};

use clap::{Args, Subcommand};
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::{
    FileKind, FsEntry, FsList, FsMkdir, FsRead, FsRemove, FsRename, FsStat, FsWrite,
};
use futures::StreamExt;
use tokio_util::compat::FuturesAsyncWriteCompatExt;
use tokio_util::io::SyncIoBridge;

use super::out::{self, Verdict};
use crate::error::{Context, Failure};

/// A container's files, with nothing needed in its image
#[derive(Subcommand, Debug)]
pub enum Fs {
    /// List a directory
    Ls(Ls),
    /// Show what is at a path (a link itself), as JSON
    Stat(Target),
    /// Print a file
    Cat(Cat),
    /// Write a file from a local file or stdin, replacing it whole
    Write(Write),
    /// Make a directory
    Mkdir(Mkdir),
    /// Remove a file, link or directory
    Rm(Rm),
    /// Move a file or directory within a container
    Mv(Mv),
}

/// One path.
#[derive(Args, Debug)]
pub struct Target {
    /// CONTAINER:PATH
    #[arg(value_name = "CONTAINER:PATH")]
    pub(super) target: String,
}

/// List a directory
#[derive(Args, Debug)]
pub struct Ls {
    /// Mode, owner, size, time and link target too
    #[arg(short, long)]
    long: bool,
    /// How many levels down (1: the directory's own entries)
    #[arg(long, default_value_t = 1)]
    depth: u32,
    /// CONTAINER:PATH
    #[arg(value_name = "CONTAINER:PATH")]
    pub(super) target: String,
}

/// Print a file
#[derive(Args, Debug)]
pub struct Cat {
    /// Start at this byte
    #[arg(long)]
    offset: Option<u64>,
    /// At most this many bytes
    #[arg(long)]
    length: Option<u64>,
    /// CONTAINER:PATH
    #[arg(value_name = "CONTAINER:PATH")]
    pub(super) target: String,
}

/// Write a file
#[derive(Args, Debug)]
pub struct Write {
    /// Permission bits, in octal (a new file's default: 644)
    #[arg(short, long, value_parser = octal)]
    mode: Option<u32>,
    /// Owner, UID[:GID] (a new file's default: 0:0)
    #[arg(long, value_name = "UID[:GID]")]
    owner: Option<String>,
    /// Make missing parent directories
    #[arg(short, long)]
    parents: bool,
    /// CONTAINER:PATH
    #[arg(value_name = "CONTAINER:PATH")]
    pub(super) target: String,
    /// The local file to write, or - for stdin (the default)
    #[arg(value_name = "SRC", default_value = "-")]
    source: String,
}

/// Make a directory
#[derive(Args, Debug)]
pub struct Mkdir {
    /// Make parents as needed; an existing directory is no error
    #[arg(short, long)]
    parents: bool,
    /// Permission bits, in octal (default: 755)
    #[arg(short, long, value_parser = octal)]
    mode: Option<u32>,
    /// CONTAINER:PATH
    #[arg(value_name = "CONTAINER:PATH")]
    pub(super) target: String,
}

/// Remove
#[derive(Args, Debug)]
pub struct Rm {
    /// A directory and everything in it
    #[arg(short, long)]
    recursive: bool,
    /// CONTAINER:PATH
    #[arg(value_name = "CONTAINER:PATH")]
    pub(super) target: String,
}

/// Move within one container
#[derive(Args, Debug)]
pub struct Mv {
    /// CONTAINER:FROM
    #[arg(value_name = "CONTAINER:FROM")]
    pub(super) from: String,
    /// TO or CONTAINER:TO (the same container)
    #[arg(value_name = "TO")]
    pub(super) to: String,
}

/// The `CONTAINER:PATH` arguments of `verb`, to be read as
/// `HOST/CONTAINER:PATH`.
pub(super) fn references(verb: &mut Fs) -> Vec<&mut String> {
    match verb {
        Fs::Ls(a) => vec![&mut a.target],
        Fs::Stat(a) => vec![&mut a.target],
        Fs::Cat(a) => vec![&mut a.target],
        Fs::Write(a) => vec![&mut a.target],
        Fs::Mkdir(a) => vec![&mut a.target],
        Fs::Rm(a) => vec![&mut a.target],
        Fs::Mv(a) => [&mut a.from, &mut a.to]
            .into_iter()
            .filter(|side| side.contains(':'))
            .collect(),
    }
}

/// Runs one `fs` verb.
pub async fn fs(docker: &DockerClient, verb: Fs) -> Verdict {
    match verb {
        Fs::Ls(args) => ls(docker, args).await,
        Fs::Stat(args) => stat(docker, args).await,
        Fs::Cat(args) => cat(docker, args).await,
        Fs::Write(args) => write(docker, args).await,
        Fs::Mkdir(args) => mkdir(docker, args).await,
        Fs::Rm(args) => rm(docker, args).await,
        Fs::Mv(args) => mv(docker, args).await,
    }
}

async fn ls(docker: &DockerClient, args: Ls) -> Verdict {
    let what = || format!("fs ls {}", args.target);
    let (id, path) = split(&args.target, &what())?;
    let entries = docker
        .query(&FsList {
            id,
            path,
            depth: Some(args.depth),
        })
        .await
        .context(what)?;
    for entry in entries {
        match args.long {
            true => out::line(long_line(&entry))?,
            false => out::line(&entry.name)?,
        }
    }
    Ok(0)
}

async fn stat(docker: &DockerClient, args: Target) -> Verdict {
    let what = || format!("fs stat {}", args.target);
    let (id, path) = split(&args.target, &what())?;
    let entry = docker.query(&FsStat { id, path }).await.context(what)?;
    let json = serde_json::to_string_pretty(&entry)
        .map_err(|e| Failure::local(what(), format!("cannot print the answer: {e}")))?;
    out::line(json)?;
    Ok(0)
}

async fn cat(docker: &DockerClient, args: Cat) -> Verdict {
    let what = || format!("fs cat {}", args.target);
    let (id, path) = split(&args.target, &what())?;
    let input = FsRead {
        id,
        path,
        offset: args.offset,
        length: args.length,
    };
    let mut session = docker.open(&input).await.context(what)?;
    while let Some(bytes) = session.stdout.next().await {
        match bytes {
            Ok(bytes) => out::stdout(&bytes)?,
            // The call's own error comes with its exit, below.
            Err(_) => break,
        }
    }
    session.exit.await.context(what)?;
    Ok(0)
}

async fn write(docker: &DockerClient, args: Write) -> Verdict {
    let what = || format!("fs write {}", args.target);
    let (id, path) = split(&args.target, &what())?;
    let (uid, gid) = match &args.owner {
        Some(owner) => owner_of(owner).map_err(|e| Failure::local(what(), e))?,
        None => (None, None),
    };
    // The size, when known here: a local file's, or stdin's when it is
    // one (a redirect). A stopped container's write needs it.
    let (source, size): (Box<dyn Read + Send>, Option<u64>) = match args.source.as_str() {
        "-" => (Box::new(io::stdin()), regular_size(io::stdin())),
        local => {
            let file = std::fs::File::open(local).map_err(|e| Failure::local(what(), e))?;
            let size = regular_size(&file);
            (Box::new(file), size)
        }
    };
    let input = FsWrite {
        id,
        path,
        mode: args.mode,
        uid,
        gid,
        parents: args.parents,
        size,
    };
    let session = docker.open(&input).await.context(what)?;
    let mut sink = SyncIoBridge::new(session.stdin.compat_write());
    let mut source = source;
    let copied = tokio::task::spawn_blocking(move || {
        io::copy(&mut source, &mut sink)?;
        // Closing stdin ends the file: the server then puts it in place.
        sink.shutdown()
    })
    .await
    .unwrap_or_else(|e| Err(io::Error::other(format!("the write stopped: {e}"))));
    // The server's error, if it has one, says more than the copy's.
    session.exit.await.context(what)?;
    copied.map_err(|e| Failure::local(what(), e))?;
    Ok(0)
}

async fn mkdir(docker: &DockerClient, args: Mkdir) -> Verdict {
    let what = || format!("fs mkdir {}", args.target);
    let (id, path) = split(&args.target, &what())?;
    let input = FsMkdir {
        id,
        path,
        mode: args.mode,
        parents: args.parents,
    };
    docker.query(&input).await.context(what)?;
    Ok(0)
}

async fn rm(docker: &DockerClient, args: Rm) -> Verdict {
    let what = || format!("fs rm {}", args.target);
    let (id, path) = split(&args.target, &what())?;
    let input = FsRemove {
        id,
        path,
        recursive: args.recursive,
    };
    docker.query(&input).await.context(what)?;
    Ok(0)
}

async fn mv(docker: &DockerClient, args: Mv) -> Verdict {
    let what = || format!("fs mv {} {}", args.from, args.to);
    let (id, from) = split(&args.from, &what())?;
    let to = match args.to.split_once(':') {
        Some((other, to)) if other == id => to.to_owned(),
        Some((other, _)) if !other.contains('/') => {
            return Err(Failure::local(what(), "both paths must be in one container").into());
        }
        _ => args.to.clone(),
    };
    docker
        .query(&FsRename { id, from, to })
        .await
        .context(what)?;
    Ok(0)
}

/// `CONTAINER:PATH` cut in two.
fn split(target: &str, what: &str) -> Result<(String, String), Failure> {
    match target.split_once(':') {
        Some((container, path)) if !container.is_empty() && !path.is_empty() => {
            Ok((container.to_owned(), path.to_owned()))
        }
        _ => Err(Failure::local(
            what,
            format!("{target:?} is not CONTAINER:PATH"),
        )),
    }
}

/// A mode in octal.
fn octal(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{text:?} is not a mode in octal (0 to 7777)"))
}

/// `UID[:GID]`.
fn owner_of(text: &str) -> Result<(Option<u32>, Option<u32>), String> {
    let number = |n: &str| {
        n.parse::<u32>()
            .map_err(|_| format!("{text:?} is not UID[:GID] (numbers)"))
    };
    match text.split_once(':') {
        Some((uid, gid)) => Ok((Some(number(uid)?), Some(number(gid)?))),
        None => Ok((Some(number(text)?), None)),
    }
}

/// The size of `file` when it is a regular file.
fn regular_size(file: impl std::os::fd::AsFd) -> Option<u64> {
    let st = rustix::fs::fstat(file).ok()?;
    let regular =
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile;
    regular.then(|| u64::try_from(st.st_size).ok()).flatten()
}

/// `ls -l`'s line: kind and mode, owner, size, time, name, link target.
fn long_line(entry: &FsEntry) -> String {
    let kind = match entry.kind {
        FileKind::File => '-',
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::Other => '?',
    };
    let owner = |id: Option<u32>| id.map_or_else(|| "-".to_owned(), |id| id.to_string());
    let mut line = format!(
        "{kind}{:04o} {:>5} {:>5} {:>12} {} {}",
        entry.mode,
        owner(entry.uid),
        owner(entry.gid),
        entry.size,
        entry.mtime,
        entry.name
    );
    if let Some(target) = &entry.link_target {
        line.push_str(" -> ");
        line.push_str(target);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_modes_and_owners_parse_or_say_why_not() {
        assert_eq!(
            split("box:/etc/passwd", "x").unwrap(),
            ("box".to_owned(), "/etc/passwd".to_owned())
        );
        assert!(split("box", "x").is_err());
        assert!(split(":/x", "x").is_err());
        assert_eq!(octal("644"), Ok(0o644));
        assert!(octal("9").is_err());
        assert!(octal("17777").is_err());
        assert_eq!(owner_of("1:2"), Ok((Some(1), Some(2))));
        assert_eq!(owner_of("7"), Ok((Some(7), None)));
        assert!(owner_of("root").is_err());
    }
}
