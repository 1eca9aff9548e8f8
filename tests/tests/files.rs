//! The file API (`fs/*`, issue 17) against the real engine, over QUIC
//! with mutual TLS as `dockwire serve` runs it (the tenancy rig: users
//! alice and bob, admin root). The containers run
//! `dockwire/scratchbox` (`scripts/engine`): `FROM scratch`, one static
//! binary that is not a shell, a container `/etc/passwd` and symbolic
//! links to it (`/link-passwd`, `/climb` of `../` chains, `/rootlink` to
//! `/`). Everything a test makes carries its label or is owned by one of
//! its keys, and `Tenancy::finish` fails the test on leftovers.
//!
//! | what | test |
//! |---|---|
//! | round trips of empty, 1-byte and binary files, by SHA-256; stat, list, mkdir, rename, remove | `files_round_trip_byte_exact_in_a_scratch_image_with_no_shell` |
//! | a 1 GiB file each way, by SHA-256, the server's memory flat | `a_one_gib_file_goes_both_ways_with_flat_server_memory` |
//! | symbolic links and `..` stay in the container's root | `symbolic_links_and_dotdot_resolve_inside_the_containers_root` |
//! | a symbolic link swapped to `/` during writes | `a_link_swapped_to_the_root_during_writes_never_reaches_the_host` |
//! | a reader never sees half a file | `a_reader_sees_the_old_file_or_the_whole_new_one_never_part` |
//! | every error kind | `every_error_kind_is_typed_and_names_the_callers_path` |
//! | a device node or fifo (the host's device) | `a_device_node_or_fifo_is_never_opened` |
//! | a `--read-only` container | `a_read_only_container_gives_read_only_file_system` |
//! | a full file system | `a_full_file_system_gives_no_space_and_leaves_the_old_file` |
//! | stopped containers (the engine's archive API) | `a_stopped_containers_files_are_read_and_written_through_the_engine` |
//! | a gVisor container (the archive API; its own `/tmp` refused) | `a_gvisor_containers_files_go_through_the_engine_and_its_tmp_is_refused` |
//! | another peer's container | `a_user_cannot_touch_another_peers_files` |
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dockwire_core::ErrorCode;
use dockwire_docker::DockerClient;
use dockwire_docker::catalog::*;
use dockwire_service::ClientError;
use dockwire_tests::docker::{IMAGE, NO_RUNTIME_PER_CONTAINER, skipped_on_podman};
use dockwire_tests::tenancy::*;
use dockwire_tests::{Prng, Rt, resident_bytes};
use futures::io::AsyncReadExt;
use futures::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};

/// `scripts/engine`'s scratch image: no shell, no tool.
const SCRATCH: &str = "dockwire/scratchbox:latest";

/// The scratch image's `/etc/passwd`.
const CONTAINER_PASSWD: &[u8] = b"root:x:0:0:scratchbox:/:/idle\n";

/// A running container of `image` running `cmd`, made by `who`.
async fn started(t: &Tenancy, who: &DockerClient, spec: ContainerSpec) -> String {
    let mut spec = spec;
    spec.labels = t.labels();
    let created = who
        .query(&ContainerCreate(spec))
        .await
        .expect("the container is made");
    who.query(&ContainerStart(ContainerRef::new(&created.id)))
        .await
        .expect("the container starts");
    created.id
}

fn scratch() -> ContainerSpec {
    ContainerSpec::new(SCRATCH, ["/idle"])
}

/// Writes `data` to `path` of `id` as `who`, giving its size.
async fn write(who: &DockerClient, id: &str, path: &str, data: &[u8]) -> Result<(), ClientError> {
    write_with(
        who,
        FsWrite {
            id: id.into(),
            path: path.into(),
            size: Some(data.len() as u64),
            ..Default::default()
        },
        data,
    )
    .await
}

async fn write_with(who: &DockerClient, input: FsWrite, data: &[u8]) -> Result<(), ClientError> {
    let mut s = who.open(&input).await?;
    // A call that ends early (refused) says why in its exit.
    for chunk in data.chunks(256 * 1024) {
        if s.stdin.send(Bytes::copy_from_slice(chunk)).await.is_err() {
            break;
        }
    }
    let _ = SinkExt::close(&mut s.stdin).await;
    let code = s.exit.await?;
    assert_eq!(code, 0, "the write exits 0");
    Ok(())
}

/// The bytes of `path` of `id`, as `who` reads them.
async fn read(who: &DockerClient, id: &str, path: &str) -> Result<Vec<u8>, ClientError> {
    read_range(who, id, path, None, None).await
}

async fn read_range(
    who: &DockerClient,
    id: &str,
    path: &str,
    offset: Option<u64>,
    length: Option<u64>,
) -> Result<Vec<u8>, ClientError> {
    let mut s = who
        .open(&FsRead {
            id: id.into(),
            path: path.into(),
            offset,
            length,
        })
        .await?;
    let mut bytes = Vec::new();
    let read = s.stdout.read_to_end(&mut bytes).await;
    let code = s.exit.await?;
    read.unwrap();
    assert_eq!(code, 0, "the read exits 0");
    Ok(bytes)
}

async fn stat(who: &DockerClient, id: &str, path: &str) -> Result<FsEntry, ClientError> {
    who.query(&FsStat {
        id: id.into(),
        path: path.into(),
    })
    .await
}

async fn list(
    who: &DockerClient,
    id: &str,
    path: &str,
    depth: Option<u32>,
) -> Result<Vec<FsEntry>, ClientError> {
    who.query(&FsList {
        id: id.into(),
        path: path.into(),
        depth,
    })
    .await
}

fn sha(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// Asserts `result` is refused with `code`, and that the message names no
/// host path.
fn refused_with<T: std::fmt::Debug>(
    what: &str,
    code: ErrorCode,
    result: Result<T, ClientError>,
) -> String {
    let message = refused(what, code, result);
    for host in [
        "/var/lib/docker",
        "overlay2",
        "/merged",
        "/run/docker",
        "/run/containerd",
    ] {
        assert!(!message.contains(host), "{what}: {message} names the host");
    }
    message
}

#[test]
fn files_round_trip_byte_exact_in_a_scratch_image_with_no_shell() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let id = started(&t, &t.alice, scratch()).await;
        // No shell to run: an exec of one fails.
        let shell = exec(&t.alice, &id, &["sh", "-c", "true"]).await;
        assert!(!matches!(shell, Ok((_, 0))), "{shell:?}");
        let mut prng = Prng(17);
        let mut binary = (0..=255u8).collect::<Vec<u8>>();
        binary.extend_from_slice(&prng.bytes(300 * 1024 + 7));
        let cases: [(&str, &[u8]); 3] = [
            ("/data/empty", b""),
            ("/data/one", b"\0"),
            ("/data/binary", &binary),
        ];
        for (path, data) in cases {
            write(&t.alice, &id, path, data).await.unwrap();
            let back = read(&t.alice, &id, path).await.unwrap();
            assert_eq!(sha(&back), sha(data), "{path} comes back byte for byte");
            let entry = stat(&t.alice, &id, path).await.unwrap();
            assert_eq!(entry.kind, FileKind::File);
            assert_eq!(entry.size, data.len() as u64, "{path}");
            assert_eq!(
                (entry.mode, entry.uid, entry.gid),
                (0o644, Some(0), Some(0))
            );
        }
        // A range of it.
        let part = read_range(&t.alice, &id, "/data/binary", Some(100), Some(1000))
            .await
            .unwrap();
        assert_eq!(part, binary[100..1100]);
        let tail = read_range(
            &t.alice,
            &id,
            "/data/binary",
            Some(binary.len() as u64 - 3),
            None,
        )
        .await
        .unwrap();
        assert_eq!(tail, binary[binary.len() - 3..]);
        // Mode and owner as asked; parents made on request.
        write_with(
            &t.alice,
            FsWrite {
                id: id.clone(),
                path: "/made/deep/down/x".into(),
                mode: Some(0o4750),
                uid: Some(1234),
                gid: Some(5678),
                parents: true,
                ..Default::default()
            },
            b"x",
        )
        .await
        .unwrap();
        let x = stat(&t.alice, &id, "/made/deep/down/x").await.unwrap();
        assert_eq!((x.mode, x.uid, x.gid), (0o4750, Some(1234), Some(5678)));
        // A replaced file keeps its mode and owner.
        write(&t.alice, &id, "/made/deep/down/x", b"yy")
            .await
            .unwrap();
        let x = stat(&t.alice, &id, "/made/deep/down/x").await.unwrap();
        assert_eq!(
            (x.size, x.mode, x.uid, x.gid),
            (2, 0o4750, Some(1234), Some(5678))
        );
        // mkdir, list, rename, remove.
        t.alice
            .query(&FsMkdir {
                id: id.clone(),
                path: "/data/sub".into(),
                mode: Some(0o700),
                parents: false,
            })
            .await
            .unwrap();
        let sub = stat(&t.alice, &id, "/data/sub").await.unwrap();
        assert_eq!((sub.kind, sub.mode), (FileKind::Dir, 0o700));
        t.alice
            .query(&FsRename {
                id: id.clone(),
                from: "/data/one".into(),
                to: "/data/sub/renamed".into(),
            })
            .await
            .unwrap();
        let names = |entries: Vec<FsEntry>| -> Vec<String> {
            entries.into_iter().map(|e| e.name).collect()
        };
        assert_eq!(
            names(list(&t.alice, &id, "/data", None).await.unwrap()),
            ["binary", "empty", "hello", "sub"]
        );
        assert_eq!(
            names(list(&t.alice, &id, "/data", Some(2)).await.unwrap()),
            ["binary", "empty", "hello", "sub", "sub/renamed"]
        );
        let root = list(&t.alice, &id, "/", None).await.unwrap();
        let link = root.iter().find(|e| e.name == "link-passwd").unwrap();
        assert_eq!(link.kind, FileKind::Symlink);
        assert_eq!(link.link_target.as_deref(), Some("/etc/passwd"));
        t.alice
            .query(&FsRemove {
                id: id.clone(),
                path: "/made".into(),
                recursive: true,
            })
            .await
            .unwrap();
        refused_with(
            "the removed tree",
            PATH_NOT_FOUND,
            stat(&t.alice, &id, "/made").await,
        );
        // No temporary file is left next to what was written.
        let left: Vec<String> = names(list(&t.alice, &id, "/data", None).await.unwrap());
        assert!(left.iter().all(|n| !n.starts_with(".dockwire")), "{left:?}");
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn a_one_gib_file_goes_both_ways_with_flat_server_memory() {
    const TOTAL: u64 = 1 << 30;
    const CHUNK: usize = 1 << 20;
    // Far below the 1 GiB moved: the bounded queues, QUIC's windows and
    // the allocator's arenas of both ends.
    const LIMIT: u64 = 128 << 20;
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let id = started(&t, &t.alice, scratch()).await;
        // Warm: the first calls' allocations are not the transfer's.
        write(&t.alice, &id, "/warm", &[7; 4096]).await.unwrap();
        read(&t.alice, &id, "/warm").await.unwrap();
        let before = resident_bytes();
        let mut peak = before;
        let started_at = Instant::now();
        let mut s = t
            .alice
            .open(&FsWrite {
                id: id.clone(),
                path: "/big".into(),
                size: Some(TOTAL),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut prng = Prng(1);
        let mut sent = Sha256::new();
        let mut chunks = 0u64;
        while chunks * (CHUNK as u64) < TOTAL {
            let chunk = prng.bytes(CHUNK);
            sent.update(&chunk);
            s.stdin.send(chunk).await.unwrap();
            chunks += 1;
            if chunks % 16 == 0 {
                peak = peak.max(resident_bytes());
            }
        }
        SinkExt::close(&mut s.stdin).await.unwrap();
        assert_eq!(s.exit.await.unwrap(), 0);
        let wrote = started_at.elapsed();
        let entry = stat(&t.alice, &id, "/big").await.unwrap();
        assert_eq!(entry.size, TOTAL);
        let started_at = Instant::now();
        let mut s = t
            .alice
            .open(&FsRead {
                id: id.clone(),
                path: "/big".into(),
                offset: None,
                length: None,
            })
            .await
            .unwrap();
        let mut got = Sha256::new();
        let (mut n, mut reads) = (0u64, 0u64);
        while let Some(bytes) = s.stdout.next().await {
            let bytes = bytes.unwrap();
            n += bytes.len() as u64;
            got.update(&bytes);
            reads += 1;
            if reads % 64 == 0 {
                peak = peak.max(resident_bytes());
            }
        }
        assert_eq!(s.exit.await.unwrap(), 0);
        let read_took = started_at.elapsed();
        assert_eq!(n, TOTAL);
        assert_eq!(got.finalize(), sent.finalize(), "1 GiB comes back byte for byte");
        let growth = peak.saturating_sub(before);
        println!(
            "1 GiB: write {wrote:?}, read {read_took:?}; resident memory (client and server) grew by {} MiB",
            growth >> 20
        );
        assert!(growth < LIMIT, "resident memory grew by {growth} bytes");
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn symbolic_links_and_dotdot_resolve_inside_the_containers_root() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let host_passwd = std::fs::read("/etc/passwd").unwrap();
        let id = started(&t, &t.alice, scratch()).await;
        for path in [
            "/etc/passwd",
            "/link-passwd",
            "/climb",
            "/rootlink/etc/passwd",
            "/../../../../etc/passwd",
            "/rootlink/../rootlink/../../etc/passwd",
            "/data/../../../etc/passwd",
        ] {
            let got = read(&t.alice, &id, path).await.unwrap();
            assert_eq!(got, CONTAINER_PASSWD, "{path} is the container's file");
        }
        // A link read as itself.
        let climb = stat(&t.alice, &id, "/climb").await.unwrap();
        assert_eq!(climb.kind, FileKind::Symlink);
        assert_eq!(climb.link_target.as_deref(), Some("../../../../etc/passwd"));
        // The host's root is never reached through /proc (its magic links
        // and the kernel's own files are refused).
        // A process's root link in procfs, spelt from its parts.
        let through_root = |pid: &str| format!("/proc/{pid}/{}/etc/passwd", "root");
        for path in [
            through_root("self"),
            through_root("1"),
            "/proc/1/environ".to_owned(),
        ] {
            let path = path.as_str();
            let e = error(path, read(&t.alice, &id, path).await);
            assert!(
                [PATH_NOT_FOUND, NOT_SUPPORTED, ErrorCode::INVALID_INPUT].contains(&e.code),
                "{path}: {e:?}"
            );
        }
        // Written through links and `..`: into the container, never the host.
        let marker = t.label.clone();
        for path in [
            format!("/rootlink/etc/{marker}"),
            format!("/../../etc/{marker}-up"),
        ] {
            write(&t.alice, &id, &path, b"mine").await.unwrap();
        }
        assert_eq!(
            read(&t.alice, &id, &format!("/etc/{marker}"))
                .await
                .unwrap(),
            b"mine"
        );
        assert_eq!(
            read(&t.alice, &id, &format!("/etc/{marker}-up"))
                .await
                .unwrap(),
            b"mine"
        );
        assert!(!std::path::Path::new(&format!("/etc/{marker}")).exists());
        assert!(!std::path::Path::new(&format!("/etc/{marker}-up")).exists());
        // A write to a link replaces the link, not its target.
        write(&t.alice, &id, "/link-passwd", b"replaced")
            .await
            .unwrap();
        assert_eq!(
            read(&t.alice, &id, "/etc/passwd").await.unwrap(),
            CONTAINER_PASSWD
        );
        assert_eq!(
            stat(&t.alice, &id, "/link-passwd").await.unwrap().kind,
            FileKind::File
        );
        // Removing through a link to the root removes in the container.
        t.alice
            .query(&FsRemove {
                id: id.clone(),
                path: format!("/rootlink/etc/{marker}"),
                recursive: false,
            })
            .await
            .unwrap();
        refused_with(
            "the removed file",
            PATH_NOT_FOUND,
            stat(&t.alice, &id, &format!("/etc/{marker}")).await,
        );
        assert_eq!(std::fs::read("/etc/passwd").unwrap(), host_passwd);
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn a_link_swapped_to_the_root_during_writes_never_reaches_the_host() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        // A busybox container flips /sw between a directory of its own
        // and `/`, as fast as it can.
        let spec = ContainerSpec::new(
            IMAGE,
            [
                "sh",
                "-c",
                "mkdir -p /inner/etc; while true; do ln -sfn /inner /sw; ln -sfn / /sw; done",
            ],
        );
        let id = started(&t, &t.alice, spec).await;
        let name = format!("{}-swap", t.label);
        let (mut written, mut missed) = (0, 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match write(&t.alice, &id, &format!("/sw/etc/{name}"), b"swapped").await {
                Ok(()) => written += 1,
                Err(_) => missed += 1,
            }
            assert!(
                !std::path::Path::new(&format!("/etc/{name}")).exists(),
                "a write through a swapped link reached the host"
            );
        }
        assert!(written > 0, "no write went through ({missed} missed)");
        // Each landed in the container: in its /etc or its /inner/etc.
        let direct = read(&t.alice, &id, &format!("/etc/{name}")).await;
        let inner = read(&t.alice, &id, &format!("/inner/etc/{name}")).await;
        assert!(direct.is_ok() || inner.is_ok());
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn a_reader_sees_the_old_file_or_the_whole_new_one_never_part() {
    const SIZE: usize = 4 << 20;
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let id = started(&t, &t.alice, scratch()).await;
        write(&t.alice, &id, "/f", &vec![b'a'; SIZE]).await.unwrap();
        let writer = async {
            for round in 0..20u8 {
                let fill = if round % 2 == 0 { b'b' } else { b'a' };
                write(&t.alice, &id, "/f", &vec![fill; SIZE]).await.unwrap();
            }
        };
        let reader = async {
            let mut reads = 0;
            for _ in 0..40 {
                let got = read(&t.alice, &id, "/f").await.unwrap();
                assert_eq!(got.len(), SIZE, "a whole file");
                let first = got[0];
                assert!(got.iter().all(|b| *b == first), "one version, not a mix");
                reads += 1;
            }
            reads
        };
        let ((), reads) = futures::join!(writer, reader);
        assert_eq!(reads, 40);
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn every_error_kind_is_typed_and_names_the_callers_path() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let mut spec = scratch();
        spec.name = Some(format!("{}-errors", t.label));
        let name = spec.name.clone().unwrap();
        let id = started(&t, &t.alice, spec).await;
        let message = refused_with(
            "a missing file",
            PATH_NOT_FOUND,
            read(&t.alice, &name, "/nope").await,
        );
        assert_eq!(message, format!("No such container:path: {name}:/nope"));
        refused_with(
            "a file under a missing directory",
            PATH_NOT_FOUND,
            write(&t.alice, &name, "/no/such/dir/f", b"x").await,
        );
        refused_with(
            "a list of a file",
            NOT_A_DIRECTORY,
            list(&t.alice, &id, "/etc/passwd", None).await,
        );
        refused_with(
            "a write below a file",
            NOT_A_DIRECTORY,
            write(&t.alice, &id, "/etc/passwd/x", b"x").await,
        );
        refused_with(
            "a read of a directory",
            IS_A_DIRECTORY,
            read(&t.alice, &id, "/etc").await,
        );
        refused_with(
            "a write over a directory",
            IS_A_DIRECTORY,
            write(&t.alice, &id, "/data", b"x").await,
        );
        let mkdir = |path: &str, parents| FsMkdir {
            id: id.clone(),
            path: path.into(),
            mode: None,
            parents,
        };
        refused_with(
            "an existing directory",
            ALREADY_EXISTS,
            t.alice.query(&mkdir("/etc", false)).await,
        );
        t.alice.query(&mkdir("/etc", true)).await.unwrap();
        refused_with(
            "a directory with entries",
            DIRECTORY_NOT_EMPTY,
            t.alice
                .query(&FsRemove {
                    id: id.clone(),
                    path: "/data".into(),
                    recursive: false,
                })
                .await,
        );
        for bad in ["etc/passwd", "", "/a\0b"] {
            refused_with(
                bad,
                ErrorCode::INVALID_INPUT,
                stat(&t.alice, &id, bad).await,
            );
        }
        refused_with(
            "the root removed",
            ErrorCode::INVALID_INPUT,
            t.alice
                .query(&FsRemove {
                    id: id.clone(),
                    path: "/".into(),
                    recursive: true,
                })
                .await,
        );
        refused_with(
            "a depth of 0",
            ErrorCode::INVALID_INPUT,
            list(&t.alice, &id, "/", Some(0)).await,
        );
        refused_with(
            "a size that is not stdin's",
            ErrorCode::INVALID_INPUT,
            write_with(
                &t.alice,
                FsWrite {
                    id: id.clone(),
                    path: "/data/short".into(),
                    size: Some(10),
                    ..Default::default()
                },
                b"12345",
            )
            .await,
        );
        refused_with(
            "the short file is not left",
            PATH_NOT_FOUND,
            stat(&t.alice, &id, "/data/short").await,
        );
        refused_with(
            "the kernel's files",
            NOT_SUPPORTED,
            read(&t.alice, &id, "/proc/version").await,
        );
        // PERMISSION_DENIED: this server acts as root on the host, which
        // mode bits do not stop; the kind is mapped (EACCES, EPERM) and
        // unit-tested in fs_path.
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn a_device_node_or_fifo_is_never_opened() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        // Users' containers cannot mknod (MKNOD is dropped); an admin's
        // can, and the server must not open the host's device for it.
        let mut spec = ContainerSpec::new(
            IMAGE,
            [
                "sh",
                "-c",
                "mknod /null c 1 3 && mkfifo /fifo && exec sleep 3600",
            ],
        );
        // Docker gives MKNOD by default, Podman does not: asked for.
        spec.cap_add = vec!["MKNOD".into()];
        let id = started(&t, &t.root, spec).await;
        let mut made = false;
        for _ in 0..50 {
            if stat(&t.root, &id, "/fifo").await.is_ok() {
                made = true;
                break;
            }
            dockwire_tests::sleep_ms(100).await;
        }
        assert!(made, "the container made its nodes");
        for path in ["/null", "/fifo"] {
            assert_eq!(
                stat(&t.root, &id, path).await.unwrap().kind,
                FileKind::Other
            );
            refused_with(path, NOT_SUPPORTED, read(&t.root, &id, path).await);
        }
        t.remove(&t.root, &id).await;
        t.finish();
    });
}

#[test]
fn a_read_only_container_gives_read_only_file_system() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let mut spec = scratch();
        spec.read_only = true;
        let id = started(&t, &t.alice, spec).await;
        refused_with(
            "a write",
            READ_ONLY_FILE_SYSTEM,
            write(&t.alice, &id, "/data/new", b"x").await,
        );
        refused_with(
            "a mkdir",
            READ_ONLY_FILE_SYSTEM,
            t.alice
                .query(&FsMkdir {
                    id: id.clone(),
                    path: "/data/d".into(),
                    mode: None,
                    parents: false,
                })
                .await,
        );
        refused_with(
            "a remove",
            READ_ONLY_FILE_SYSTEM,
            t.alice
                .query(&FsRemove {
                    id: id.clone(),
                    path: "/data/hello".into(),
                    recursive: false,
                })
                .await,
        );
        // Reads still work.
        assert_eq!(
            read(&t.alice, &id, "/data/hello").await.unwrap(),
            b"hello from the scratchbox\n"
        );
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn a_full_file_system_gives_no_space_and_leaves_the_old_file() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let mut spec = scratch();
        spec.tmpfs = BTreeMap::from([("/small".to_owned(), "size=256k".to_owned())]);
        let id = started(&t, &t.alice, spec).await;
        write(&t.alice, &id, "/small/f", b"old").await.unwrap();
        refused_with(
            "a file larger than the tmpfs",
            NO_SPACE,
            write(&t.alice, &id, "/small/f", &vec![1; 1 << 20]).await,
        );
        assert_eq!(read(&t.alice, &id, "/small/f").await.unwrap(), b"old");
        let left = list(&t.alice, &id, "/small", None).await.unwrap();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

/// `chattr -i` of a file when dropped, so that its directory can go.
struct Immutable(std::path::PathBuf);

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// The server acts as the host's root, so a denial comes from what even
/// root may not do: change an immutable file (`chattr +i`, here in a
/// host directory bind-mounted by an admin).
#[test]
fn an_immutable_file_gives_permission_denied_and_stays_whole() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let host = HostDir::new();
        let locked = host.0.join("locked");
        std::fs::write(&locked, b"kept\n").unwrap();
        let made = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&locked)
            .status()
            .unwrap();
        assert!(
            made.success(),
            "chattr +i failed: the host's file system must support it"
        );
        let _unlock = Immutable(locked.clone());
        let mut spec = scratch();
        spec.mounts = vec![mount(host.0.to_str().unwrap(), "/host")];
        let id = started(&t, &t.root, spec).await;
        refused_with(
            "a write over an immutable file",
            PERMISSION_DENIED,
            write(&t.root, &id, "/host/locked", b"changed").await,
        );
        refused_with(
            "removing an immutable file",
            PERMISSION_DENIED,
            t.root
                .query(&FsRemove {
                    id: id.clone(),
                    path: "/host/locked".into(),
                    recursive: false,
                })
                .await,
        );
        assert_eq!(read(&t.root, &id, "/host/locked").await.unwrap(), b"kept\n");
        let left = list(&t.root, &id, "/host", None).await.unwrap();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
        t.remove(&t.root, &id).await;
        t.finish();
    });
}

#[test]
fn a_stopped_containers_files_are_read_and_written_through_the_engine() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let id = started(&t, &t.alice, scratch()).await;
        write(&t.alice, &id, "/data/before", b"written while running")
            .await
            .unwrap();
        t.alice
            .query(&ContainerKill {
                id: id.clone(),
                signal: None,
            })
            .await
            .unwrap();
        t.alice
            .query(&ContainerWait(ContainerRef::new(&id)))
            .await
            .unwrap();
        assert_eq!(
            read(&t.alice, &id, "/data/before").await.unwrap(),
            b"written while running"
        );
        assert_eq!(
            read(&t.alice, &id, "/link-passwd").await.unwrap(),
            CONTAINER_PASSWD
        );
        assert_eq!(
            read(&t.alice, &id, "/climb").await.unwrap(),
            CONTAINER_PASSWD
        );
        assert_eq!(
            read_range(&t.alice, &id, "/data/hello", Some(6), Some(4))
                .await
                .unwrap(),
            b"from"
        );
        let hello = stat(&t.alice, &id, "/data/hello").await.unwrap();
        assert_eq!(
            (hello.kind, hello.size, hello.uid),
            (FileKind::File, 26, None)
        );
        let mut binary = Prng(5).bytes(200 * 1024 + 3).to_vec();
        binary.extend_from_slice(b"");
        write(&t.alice, &id, "/data/stopped", &binary)
            .await
            .unwrap();
        assert_eq!(
            sha(&read(&t.alice, &id, "/data/stopped").await.unwrap()),
            sha(&binary)
        );
        write(&t.alice, &id, "/data/empty", b"").await.unwrap();
        assert_eq!(read(&t.alice, &id, "/data/empty").await.unwrap(), b"");
        write_with(
            &t.alice,
            FsWrite {
                id: id.clone(),
                path: "/new/dirs/f".into(),
                parents: true,
                mode: Some(0o600),
                size: Some(1),
                ..Default::default()
            },
            b"1",
        )
        .await
        .unwrap();
        t.alice
            .query(&FsMkdir {
                id: id.clone(),
                path: "/made".into(),
                mode: Some(0o711),
                parents: false,
            })
            .await
            .unwrap();
        let names: Vec<String> = list(&t.alice, &id, "/", Some(3))
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        for expected in ["data/stopped", "made", "new/dirs/f", "link-passwd"] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        refused_with(
            "a write with no size",
            ErrorCode::INVALID_INPUT,
            write_with(
                &t.alice,
                FsWrite {
                    id: id.clone(),
                    path: "/data/x".into(),
                    ..Default::default()
                },
                b"x",
            )
            .await,
        );
        refused_with(
            "a remove",
            NOT_SUPPORTED,
            t.alice
                .query(&FsRemove {
                    id: id.clone(),
                    path: "/data/stopped".into(),
                    recursive: false,
                })
                .await,
        );
        refused_with(
            "a missing file",
            PATH_NOT_FOUND,
            read(&t.alice, &id, "/nope").await,
        );
        refused_with(
            "a read of a directory",
            IS_A_DIRECTORY,
            read(&t.alice, &id, "/data").await,
        );
        // Started again: what was written stopped is there, directly.
        t.alice
            .query(&ContainerStart(ContainerRef::new(&id)))
            .await
            .unwrap();
        assert_eq!(
            sha(&read(&t.alice, &id, "/data/stopped").await.unwrap()),
            sha(&binary)
        );
        let f = stat(&t.alice, &id, "/new/dirs/f").await.unwrap();
        assert_eq!((f.mode, f.uid), (0o600, Some(0)));
        assert_eq!(stat(&t.alice, &id, "/made").await.unwrap().mode, 0o711);
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn a_gvisor_containers_files_go_through_the_engine_and_its_tmp_is_refused() {
    if skipped_on_podman(NO_RUNTIME_PER_CONTAINER) {
        return;
    }
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let mut spec = scratch();
        spec.runtime = Some("runsc".into());
        let id = started(&t, &t.alice, spec).await;
        assert_eq!(
            read(&t.alice, &id, "/link-passwd").await.unwrap(),
            CONTAINER_PASSWD
        );
        write(&t.alice, &id, "/data/g", b"in gvisor").await.unwrap();
        assert_eq!(read(&t.alice, &id, "/data/g").await.unwrap(), b"in gvisor");
        // The engine answers, so no owner.
        assert_eq!(stat(&t.alice, &id, "/data/g").await.unwrap().uid, None);
        let message = refused_with(
            "gVisor's own /tmp",
            NOT_SUPPORTED,
            write(&t.alice, &id, "/tmp/x", b"x").await,
        );
        assert!(message.contains("gVisor"), "{message}");
        refused_with(
            "a remove",
            NOT_SUPPORTED,
            t.alice
                .query(&FsRemove {
                    id: id.clone(),
                    path: "/data/g".into(),
                    recursive: false,
                })
                .await,
        );
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn a_user_cannot_touch_another_peers_files() {
    Rt::Tokio.block_on(async {
        let t = Tenancy::new();
        let bobs = started(&t, &t.bob, scratch()).await;
        write(&t.bob, &bobs, "/data/secret", b"bob's")
            .await
            .unwrap();
        let missing = "no-such-container";
        for reference in [bobs.as_str(), missing] {
            missing_container(
                "stat",
                reference,
                stat(&t.alice, reference, "/data/secret").await,
            );
            missing_container(
                "read",
                reference,
                read(&t.alice, reference, "/data/secret").await,
            );
            missing_container(
                "write",
                reference,
                write(&t.alice, reference, "/data/secret", b"alice's").await,
            );
            missing_container(
                "list",
                reference,
                list(&t.alice, reference, "/", None).await,
            );
            missing_container(
                "remove",
                reference,
                t.alice
                    .query(&FsRemove {
                        id: reference.into(),
                        path: "/data/secret".into(),
                        recursive: false,
                    })
                    .await,
            );
            missing_container(
                "rename",
                reference,
                t.alice
                    .query(&FsRename {
                        id: reference.into(),
                        from: "/data/secret".into(),
                        to: "/data/mine".into(),
                    })
                    .await,
            );
        }
        assert_eq!(read(&t.bob, &bobs, "/data/secret").await.unwrap(), b"bob's");
        t.remove(&t.bob, &bobs).await;
        t.finish();
    });
}

fn missing_container<T: std::fmt::Debug>(
    what: &str,
    reference: &str,
    result: Result<T, ClientError>,
) {
    missing(what, "container", reference, result);
}
