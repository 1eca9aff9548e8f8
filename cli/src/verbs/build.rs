//! `build`: an image from a context directory (or a tar, or a lone
//! Dockerfile, on stdin), as `docker build` makes one with the classic
//! builder. The context is walked and streamed as a tar while it is read
//! (never held whole), without what `.dockerignore` excludes; the build's
//! output is printed as it comes; `-q` prints only the image's id; a
//! failed step exits 1 with the engine's message.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::ImageBuild;
use dockwire_service::RawSession;
use globset::GlobMatcher;
use tokio::io::AsyncReadExt;
use tokio_util::compat::{FuturesAsyncReadCompatExt, FuturesAsyncWriteCompatExt};
use tokio_util::io::SyncIoBridge;

use super::format;
use super::out::{self, Verdict};
use crate::error::{Context, Failure};

/// Build an image from a Dockerfile
#[derive(Args, Debug)]
pub struct Build {
    /// Name and optionally a tag (name:tag)
    #[arg(short, long = "tag", value_name = "NAME[:TAG]")]
    tags: Vec<String>,
    /// Name of the Dockerfile (default: PATH/Dockerfile)
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Set build-time variables (K=V, or K to take this shell's value)
    #[arg(long = "build-arg", value_name = "K=V")]
    build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    quiet: bool,
    /// Set metadata for an image (K=V)
    #[arg(long = "label", value_name = "K=V")]
    labels: Vec<String>,
    /// The context: a directory, or - for a tar (or a Dockerfile) on stdin
    #[arg(value_name = "PATH|-")]
    path: String,
}

/// The name a Dockerfile from outside the context is sent under.
const OUTSIDE_DOCKERFILE: &str = ".dockwire-dockerfile";

pub async fn build(docker: &DockerClient, args: Build) -> Verdict {
    let what = || "build".to_owned();
    let mut input = ImageBuild {
        tags: args.tags.clone(),
        target: args.target.clone(),
        no_cache: args.no_cache,
        pull: args.pull,
        quiet: args.quiet,
        labels: format::labels(&args.labels)?,
        ..ImageBuild::default()
    };
    for arg in &args.build_args {
        match arg.split_once('=') {
            Some((k, v)) => input.build_args.insert(k.to_owned(), v.to_owned()),
            // As docker: `K` takes this shell's value, and is left out
            // when the shell has none.
            None => match std::env::var(arg) {
                Ok(v) => input.build_args.insert(arg.clone(), v),
                Err(_) => None,
            },
        };
    }
    let context = match args.path.as_str() {
        "-" => None,
        dir => Some(PathBuf::from(dir)),
    };
    let mut extra = None;
    if let (Some(file), Some(dir)) = (&args.file, &context) {
        let inside = file.strip_prefix(dir).ok().map(Path::to_owned);
        match inside.or_else(|| relative_inside(file, dir)) {
            Some(inside) => input.dockerfile = Some(slashed(&inside)),
            None => {
                // A Dockerfile from outside the context is sent in it.
                let text = std::fs::read(file).map_err(|e| Failure::local(what(), e))?;
                input.dockerfile = Some(OUTSIDE_DOCKERFILE.to_owned());
                extra = Some(text);
            }
        }
    }
    if let Some(dir) = &context {
        if !dir.is_dir() {
            let why = format!(
                "unable to prepare context: path {:?} not found",
                dir.display().to_string()
            );
            return Err(Failure::local(what(), why).into());
        }
    }
    let session = docker.open(&input).await.context(what)?;
    let RawSession {
        stdin,
        stdout,
        exit,
        ..
    } = session;
    let sink = SyncIoBridge::new(stdin.compat_write());
    let dockerfile = input
        .dockerfile
        .clone()
        .unwrap_or_else(|| "Dockerfile".to_owned());
    let send = tokio::task::spawn_blocking(move || -> io::Result<()> {
        let mut sink = sink;
        match context {
            Some(dir) => send_directory(&mut sink, &dir, &dockerfile, extra.as_deref())?,
            None => send_stdin(&mut sink)?,
        }
        // Closing the session's stdin ends the context.
        sink.shutdown()
    });
    let mut stdout = stdout.compat();
    let mut buffer = vec![0; 64 * 1024];
    // A failed build ends the output with its error; the exit says it.
    let mut unread = None;
    loop {
        match stdout.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => out::stdout(&buffer[..n])?,
            Err(e) => {
                unread = Some(e);
                break;
            }
        }
    }
    let sent = send.await.map_err(|e| Failure::local(what(), e))?;
    exit.await.context(what)?;
    if let Some(e) = unread {
        return Err(Failure::local(what(), e).into());
    }
    sent.map_err(|e| Failure::local(what(), format!("cannot send the context: {e}")))?;
    Ok(0)
}

/// `file` relative to `dir` when both are the same place spelt
/// differently (one absolute).
fn relative_inside(file: &Path, dir: &Path) -> Option<PathBuf> {
    let file = std::fs::canonicalize(file).ok()?;
    let dir = std::fs::canonicalize(dir).ok()?;
    file.strip_prefix(dir).ok().map(Path::to_owned)
}

fn slashed(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Streams `dir` as a tar into `sink`: its Dockerfile (`dockerfile`, or
/// `extra`, the outside one) first, as a server reads a `user` peer's
/// build; then the rest in name order, leaving out what its
/// `.dockerignore` excludes (never the Dockerfile nor `.dockerignore`
/// itself).
fn send_directory(
    sink: &mut impl Write,
    dir: &Path,
    dockerfile: &str,
    extra: Option<&[u8]>,
) -> io::Result<()> {
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => Ignore::parse(&text)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ignore::default(),
        Err(e) => return Err(e),
    };
    let mut tar = tar::Builder::new(sink);
    tar.follow_symlinks(false);
    match extra {
        Some(text) => {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, OUTSIDE_DOCKERFILE, text)?;
        }
        None => {
            let path = dir.join(dockerfile);
            if path.is_file() {
                tar.append_path_with_name(&path, dockerfile)?;
            }
        }
    }
    let walk = walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name();
    for entry in walk {
        let entry = entry.map_err(io::Error::other)?;
        let relative = entry.path().strip_prefix(dir).map_err(io::Error::other)?;
        let name = slashed(relative);
        if extra.is_none() && name == dockerfile && entry.file_type().is_file() {
            continue;
        }
        let always = name == "Dockerfile" || name == ".dockerignore";
        if !always && ignore.excludes(&name) {
            continue;
        }
        tar.append_path_with_name(entry.path(), &name)?;
    }
    tar.into_inner().map(drop)
}

/// Streams stdin into `sink`: a tar (or a compressed one) as it is; any
/// other text is a Dockerfile, sent alone.
fn send_stdin(sink: &mut impl Write) -> io::Result<()> {
    let mut stdin = io::stdin().lock();
    let mut head = Vec::with_capacity(512);
    (&mut stdin).take(512).read_to_end(&mut head)?;
    let tar_magic = head.get(257..262) == Some(b"ustar".as_slice());
    let compressed = head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']);
    if tar_magic || compressed {
        sink.write_all(&head)?;
        io::copy(&mut stdin, sink)?;
        return Ok(());
    }
    let mut text = head;
    stdin.read_to_end(&mut text)?;
    let mut tar = tar::Builder::new(sink);
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "Dockerfile", text.as_slice())?;
    tar.into_inner().map(drop)
}

/// `.dockerignore`'s patterns, as docker reads them: one per line, `#`
/// comments, `!` re-includes, leading `/` and `./` dropped; a path is
/// excluded by the last pattern that matches it or one of its parent
/// directories.
#[derive(Default)]
struct Ignore {
    patterns: Vec<(GlobMatcher, bool)>,
}

impl Ignore {
    fn parse(text: &str) -> io::Result<Ignore> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (pattern, include) = match line.strip_prefix('!') {
                Some(rest) => (rest.trim(), true),
                None => (line, false),
            };
            let pattern = clean(pattern);
            if pattern.is_empty() {
                continue;
            }
            let glob = globset::GlobBuilder::new(&pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!(".dockerignore: {e}"))
                })?;
            patterns.push((glob.compile_matcher(), include));
        }
        Ok(Ignore { patterns })
    }

    /// Whether `path` (relative, `/`-separated) is left out.
    fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for (glob, include) in &self.patterns {
            let mut here = Some(path);
            let mut matched = false;
            while let Some(p) = here {
                if glob.is_match(p) {
                    matched = true;
                    break;
                }
                here = p.rsplit_once('/').map(|(parent, _)| parent);
            }
            if matched {
                excluded = !include;
            }
        }
        excluded
    }
}

/// A pattern as docker cleans it: no leading `/` or `./`, no `.` or empty
/// components, `..` resolved.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_patterns_exclude_as_dockers_do() {
        let ignore = Ignore::parse(
            "# comment\n*.log\n/secret\nbuild/**\n!build/keep.txt\ndocs\n**/tmp\n./cache/*\n",
        )
        .unwrap();
        for (path, excluded) in [
            ("app.log", true),
            ("sub/app.log", false),
            ("secret", true),
            ("secret/key", true),
            ("build/out.o", true),
            ("build/keep.txt", false),
            ("docs", true),
            ("docs/a/b.md", true),
            ("src/tmp", true),
            ("src/tmp/x", true),
            ("tmp", true),
            ("cache/x", true),
            ("cache", false),
            ("src/main.rs", false),
        ] {
            assert_eq!(ignore.excludes(path), excluded, "{path}");
        }
        assert_eq!(clean("/a/./b/../c/"), "a/c");
    }
}
