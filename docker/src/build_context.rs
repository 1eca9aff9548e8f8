//! A `user` peer's build context on its way to the engine: its first
//! entry, which must be the Dockerfile (`dockwire build` sends it first),
//! read and replaced by the checked one (see [`crate::dockerfile`]), and
//! the rest passed on as it comes, counted against the operator's cap:
//! past it the context stops (it is never held whole) and the build is
//! refused.

use bytes::{Bytes, BytesMut};
use dockwire_core::CallError;
use futures::{Stream, StreamExt, future, stream};
use tokio::sync::oneshot;

use crate::access::forbidden;
use crate::error::invalid_input;

/// The largest Dockerfile a user's context may start with.
pub(crate) const MAX_DOCKERFILE: u64 = 1 << 20;

/// A tar block.
const BLOCK: usize = 512;

/// A context's first entry, and what came after it.
pub(crate) struct FirstEntry {
    /// Its header, as sent.
    pub header: tar::Header,
    /// Its content.
    pub content: Vec<u8>,
    /// Bytes read past the entry (the start of the next).
    pub after: Bytes,
}

/// Reads the first entry of the tar `context` streams: it must be the
/// regular file `dockerfile` of at most [`MAX_DOCKERFILE`] bytes.
pub(crate) async fn first_entry(
    context: &mut (impl Stream<Item = Bytes> + Unpin),
    dockerfile: &str,
) -> Result<FirstEntry, CallError> {
    let not_first = || {
        invalid_input(format!(
            "a user's build context must start with its Dockerfile ({dockerfile:?}), as \
             `dockwire build` sends it: not a compressed tar, nor one with the Dockerfile elsewhere"
        ))
    };
    let mut buffer = BytesMut::new();
    fill(context, &mut buffer, BLOCK)
        .await
        .map_err(|_| not_first())?;
    let header = tar::Header::from_byte_slice(&buffer[..BLOCK]).clone();
    let path = header.path().map_err(|_| not_first())?;
    let name = path.to_string_lossy();
    let name = name.strip_prefix("./").unwrap_or(&name);
    if !header.entry_type().is_file() || name != dockerfile {
        return Err(not_first());
    }
    let size = header.entry_size().map_err(|_| not_first())?;
    if size > MAX_DOCKERFILE {
        return Err(invalid_input(format!(
            "a user's Dockerfile may have at most {MAX_DOCKERFILE} bytes"
        )));
    }
    let size = size as usize;
    let padded = size.div_ceil(BLOCK) * BLOCK;
    fill(context, &mut buffer, BLOCK + padded)
        .await
        .map_err(|_| invalid_input("the build context ends inside its Dockerfile"))?;
    let content = buffer[BLOCK..BLOCK + size].to_vec();
    let after = buffer.split_off(BLOCK + padded).freeze();
    Ok(FirstEntry {
        header,
        content,
        after,
    })
}

/// The tar entry of `first` with `content` in place of its own.
pub(crate) fn replaced(first: &FirstEntry, content: &[u8]) -> Bytes {
    let mut header = first.header.clone();
    header.set_size(content.len() as u64);
    header.set_cksum();
    let padded = content.len().div_ceil(BLOCK) * BLOCK;
    let mut entry = BytesMut::with_capacity(BLOCK + padded);
    entry.extend_from_slice(header.as_bytes());
    entry.extend_from_slice(content);
    entry.resize(BLOCK + padded, 0);
    entry.freeze()
}

/// `context` passed on while it stays within `max` bytes; past it the
/// stream sends on `over` and stops, never ending (an ended body would be
/// a cut tar the engine might build from): the caller drops the build.
pub(crate) fn capped(
    context: impl Stream<Item = Bytes> + Send + Unpin + 'static,
    max: u64,
    over: oneshot::Sender<()>,
) -> impl Stream<Item = Bytes> + Send + 'static {
    stream::unfold(
        (context, 0u64, Some(over)),
        move |(mut context, sent, mut over)| async move {
            let chunk = context.next().await?;
            let sent = sent + chunk.len() as u64;
            if sent > max {
                if let Some(over) = over.take() {
                    let _ = over.send(());
                }
                future::pending::<()>().await;
            }
            Some((chunk, (context, sent, over)))
        },
    )
}

/// The refusal of a context past `max` bytes.
pub(crate) fn too_large(max: u64) -> CallError {
    forbidden(format!(
        "the build context is larger than this server allows a user ({max} bytes, \
         serve --user-build-context-max)"
    ))
}

/// Reads from `context` into `buffer` until it holds `len` bytes; `Err`
/// when the context ends first.
async fn fill(
    context: &mut (impl Stream<Item = Bytes> + Unpin),
    buffer: &mut BytesMut,
    len: usize,
) -> Result<(), ()> {
    while buffer.len() < len {
        match context.next().await {
            Some(chunk) => buffer.extend_from_slice(&chunk),
            None => return Err(()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, *data).unwrap();
        }
        tar.into_inner().unwrap()
    }

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// `bytes` in chunks of 100, as a session's stdin could come.
    fn chunks(bytes: &[u8]) -> impl Stream<Item = Bytes> + Unpin {
        let chunks: Vec<Bytes> = bytes.chunks(100).map(Bytes::copy_from_slice).collect();
        stream::iter(chunks)
    }

    #[test]
    fn the_dockerfile_is_replaced_and_the_rest_passes_exactly() {
        block_on(async {
            let tar = tar_of(&[("Dockerfile", b"FROM app\n"), ("a.txt", b"hello")]);
            let mut context = chunks(&tar);
            let first = first_entry(&mut context, "Dockerfile").await.unwrap();
            assert_eq!(first.content, b"FROM app\n");
            let mut out = replaced(&first, b"FROM sha256:0123\n").to_vec();
            out.extend_from_slice(&first.after);
            while let Some(chunk) = context.next().await {
                out.extend_from_slice(&chunk);
            }
            let mut archive = tar::Archive::new(out.as_slice());
            let mut read = Vec::new();
            for entry in archive.entries().unwrap() {
                let mut entry = entry.unwrap();
                let mut data = String::new();
                std::io::Read::read_to_string(&mut entry, &mut data).unwrap();
                read.push((entry.path().unwrap().display().to_string(), data));
            }
            assert_eq!(
                read,
                [
                    ("Dockerfile".to_owned(), "FROM sha256:0123\n".to_owned()),
                    ("a.txt".to_owned(), "hello".to_owned())
                ]
            );
        })
    }

    #[test]
    fn a_context_not_starting_with_its_dockerfile_is_refused() {
        block_on(async {
            let tar = tar_of(&[("a.txt", b"x"), ("Dockerfile", b"FROM app\n")]);
            assert!(first_entry(&mut chunks(&tar), "Dockerfile").await.is_err());
            let tar = tar_of(&[("Dockerfile", b"FROM app\n")]);
            assert!(
                first_entry(&mut chunks(&tar), "other/Dockerfile")
                    .await
                    .is_err()
            );
            assert!(
                first_entry(&mut chunks(&[0x1f, 0x8b, 0, 0]), "Dockerfile")
                    .await
                    .is_err()
            );
        })
    }

    #[test]
    fn a_context_past_the_cap_signals_and_stops() {
        block_on(async {
            let (tx, mut rx) = oneshot::channel();
            let mut context = Box::pin(capped(chunks(&[7u8; 1000]), 450, tx));
            let mut passed = 0;
            for _ in 0..4 {
                passed += context.next().await.unwrap().len();
            }
            assert_eq!(passed, 400);
            let next = futures::poll!(context.next());
            assert!(next.is_pending());
            assert_eq!(rx.try_recv(), Ok(()));
        })
    }
}
