//! Port forwarding into containers (issue 17), against the real engine,
//! over QUIC with mutual TLS (the tenancy rig: alice and bob are users,
//! root an admin). Each forward is a TCP connection the server makes
//! inside the container's own network namespace, to `127.0.0.1:PORT`:
//! no port is published, and nothing is added to the image (busybox's
//! `httpd` and `nc` are the test image's own).
//!
//! | what | test |
//! |---|---|
//! | HTTP to `httpd` in a `--network none` container | `http_through_a_forward_reaches_httpd_in_a_container_with_no_network` |
//! | 64 MiB each way, the port closing its side first | `sixty_four_mib_each_way_with_the_port_closing_its_side_first` |
//! | 64 MiB each way, the caller closing its side first | `sixty_four_mib_each_way_with_the_caller_closing_its_side_first` |
//! | 100 connections at once on one QUIC connection | `a_hundred_concurrent_forwards_on_one_connection_are_each_exact` |
//! | a closed port, a stopped container | `a_closed_port_or_a_stopped_container_is_refused_before_acceptance` |
//! | another peer's container | `a_user_cannot_forward_to_another_peers_container` |
//! | the host's own loopback | `a_forward_never_reaches_the_servers_own_loopback` |
//! | a user's isolated network | `a_forward_reaches_a_container_on_its_users_isolated_network` |
//! | gVisor (`runsc`) | `a_forward_reaches_a_container_under_gvisor` |
//! | the container stops | `a_forward_ends_with_conflict_when_its_container_stops` |
//!
//! Everything a test makes carries its label or is owned by its keys;
//! `Tenancy::finish` fails the test if any of it is left.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use dockwire_core::ErrorCode;
use dockwire_docker::catalog::*;
use dockwire_docker::{DockerClient, PortStream};
use dockwire_service::ClientError;
use dockwire_tests::docker::{NO_RUNTIME_PER_CONTAINER, skipped_on_podman};
use dockwire_tests::tenancy::*;
use dockwire_tests::{Prng, Rt, sleep_ms};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use sha2::{Digest, Sha256};

/// How long any one test may take before it fails rather than hangs.
const PATIENCE: Duration = Duration::from_secs(90);

/// 64 MiB.
const BIG: usize = 64 << 20;

/// Runs `test` on the tests' tokio runtime, failing it after [`PATIENCE`].
fn within<F: std::future::Future<Output = ()>>(test: F) {
    Rt::Tokio.block_on(async {
        tokio::time::timeout(PATIENCE, test)
            .await
            .expect("the test ends in time");
    });
}

/// Creates and starts a container of `spec` as `who`.
async fn started(who: &DockerClient, spec: ContainerSpec) -> String {
    let created = who.query(&ContainerCreate(spec)).await.unwrap();
    who.query(&ContainerStart(ContainerRef::new(&created.id)))
        .await
        .unwrap();
    created.id
}

/// A forward to `port` of `container`, once something listens there
/// (retried while the port is refused, for up to ten seconds).
async fn forward(who: &DockerClient, container: &str, port: u16) -> PortStream {
    let input = PortForward {
        container: container.into(),
        port,
    };
    for _ in 0..100 {
        match who.port_forward(&input).await {
            Ok(stream) => return stream,
            Err(ClientError::Remote(e)) if e.code == PORT_UNREACHABLE => sleep_ms(100).await,
            Err(e) => panic!("forward to {container}:{port}: {e}"),
        }
    }
    panic!("nothing listened on {container}:{port} in ten seconds");
}

/// A spec serving `body` (no single quote in it) as `/index.html` with
/// busybox's `httpd` on 8080.
fn httpd(t: &Tenancy, body: &str) -> ContainerSpec {
    let script = format!(
        "mkdir -p /www && printf '%s' '{body}' > /www/index.html && exec httpd -f -p 8080 -h /www"
    );
    t.spec(&["sh", "-c", &script])
}

/// An HTTP/1.0 GET of `/index.html` through a fresh forward to 8080: the
/// whole answer, read to the server's end of file after the request was
/// sent and the caller's side closed; the call ended cleanly.
async fn get(who: &DockerClient, container: &str) -> String {
    let mut stream = forward(who, container, 8080).await;
    assert_eq!(stream.forwarded().port, 8080);
    stream
        .write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    stream.close().await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    stream.finished().await.unwrap();
    String::from_utf8(answer).unwrap()
}

/// Asserts that `answer` is a 200 whose body is exactly `body`.
fn assert_served(answer: &str, body: &str) {
    // busybox answers an HTTP/1.0 request as HTTP/1.1, and closes.
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
    let (_, got) = answer.split_once("\r\n\r\n").expect("headers end");
    assert_eq!(got, body);
    assert!(
        answer.contains(&format!("Content-Length: {}\r\n", body.len())),
        "{answer:?}"
    );
}

/// The SHA-256 of a file in `container`, by its `sha256sum`.
async fn sha_in(who: &DockerClient, container: &str, path: &str) -> String {
    let (out, code) = exec(who, container, &["sha256sum", path]).await.unwrap();
    assert_eq!(code, 0, "{out}");
    out.split_whitespace().next().unwrap().to_owned()
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

// ------------------------------------------------------------------ tests

#[test]
fn http_through_a_forward_reaches_httpd_in_a_container_with_no_network() {
    within(async {
        let t = Tenancy::new();
        let mut spec = httpd(&t, "hello through the namespace");
        spec.network = Some("none".into());
        let id = started(&t.alice, spec).await;
        let answer = get(&t.alice, &id).await;
        assert_served(&answer, "hello through the namespace");
        // Nothing was published: the engine shows no port.
        let inspected = t
            .alice
            .query(&ContainerInspect(ContainerRef::new(&id)))
            .await
            .unwrap();
        let ports = inspected.network_settings.and_then(|n| n.ports);
        assert!(ports.unwrap_or_default().is_empty());
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

/// busybox's `nc` sends its stdin and then shuts its write side (the
/// caller sees the end of stdout) while it still takes the caller's
/// bytes: the caller reads all 64 MiB and their end before sending any of
/// its own 64 MiB, which arrive whole after the port's half-close.
#[test]
fn sixty_four_mib_each_way_with_the_port_closing_its_side_first() {
    within(async {
        let t = Tenancy::new();
        let script = format!(
            "head -c {BIG} /dev/urandom > /tmp/out && touch /tmp/ready && \
             nc -l -p 7000 < /tmp/out > /tmp/in; touch /tmp/done; exec sleep 3600"
        );
        let id = started(&t.alice, t.spec(&["sh", "-c", &script])).await;
        while exec(&t.alice, &id, &["test", "-e", "/tmp/ready"])
            .await
            .unwrap()
            .1
            != 0
        {
            sleep_ms(100).await;
        }
        let mut stream = forward(&t.alice, &id, 7000).await;

        let mut from_port = Vec::with_capacity(BIG);
        stream.read_to_end(&mut from_port).await.unwrap();
        assert_eq!(from_port.len(), BIG);
        assert_eq!(
            hex(&Sha256::digest(&from_port)),
            sha_in(&t.alice, &id, "/tmp/out").await
        );

        let to_port = Prng(17).bytes(BIG);
        stream.write_all(&to_port).await.unwrap();
        stream.close().await.unwrap();
        stream.finished().await.unwrap();
        // nc exits at the caller's end of file, with all of it written.
        while exec(&t.alice, &id, &["test", "-e", "/tmp/done"])
            .await
            .unwrap()
            .1
            != 0
        {
            sleep_ms(100).await;
        }
        assert_eq!(
            hex(&Sha256::digest(&to_port)),
            sha_in(&t.alice, &id, "/tmp/in").await
        );
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

/// The caller sends 64 MiB and shuts its side; the port reads to that
/// end of file, and only then answers with 64 MiB of its own and closes.
#[test]
fn sixty_four_mib_each_way_with_the_caller_closing_its_side_first() {
    within(async {
        let t = Tenancy::new();
        let script = format!(
            "head -c {BIG} /dev/urandom > /tmp/out && touch /tmp/ready && \
             nc -l -p 7000 -e sh -c 'cat > /tmp/in; cat /tmp/out'; exec sleep 3600"
        );
        let id = started(&t.alice, t.spec(&["sh", "-c", &script])).await;
        while exec(&t.alice, &id, &["test", "-e", "/tmp/ready"])
            .await
            .unwrap()
            .1
            != 0
        {
            sleep_ms(100).await;
        }
        let mut stream = forward(&t.alice, &id, 7000).await;

        let to_port = Prng(23).bytes(BIG);
        stream.write_all(&to_port).await.unwrap();
        stream.close().await.unwrap();
        let mut from_port = Vec::with_capacity(BIG);
        stream.read_to_end(&mut from_port).await.unwrap();
        stream.finished().await.unwrap();

        assert_eq!(from_port.len(), BIG);
        assert_eq!(
            hex(&Sha256::digest(&from_port)),
            sha_in(&t.alice, &id, "/tmp/out").await
        );
        assert_eq!(
            hex(&Sha256::digest(&to_port)),
            sha_in(&t.alice, &id, "/tmp/in").await
        );
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn a_hundred_concurrent_forwards_on_one_connection_are_each_exact() {
    within(async {
        let t = Tenancy::new();
        // An echo server: each connection its own `cat`, at once. busybox's
        // nc listens with a backlog of as many connections as it was given
        // `l`s (`-ll`: 2, which a hundred connects at once overflow on a
        // loaded machine: resets): 128 of them.
        let listen = format!("-{}", "l".repeat(128));
        let id = started(
            &t.alice,
            t.spec(&["nc", &listen, "-p", "7000", "-e", "cat"]),
        )
        .await;
        drop(forward(&t.alice, &id, 7000).await);
        let one = |n: u64| {
            let alice = t.alice.clone();
            let id = id.clone();
            async move {
                let sent = Prng(n).bytes(64 * 1024 + n as usize);
                let mut stream = forward(&alice, &id, 7000).await;
                stream.write_all(&sent).await.unwrap();
                stream.close().await.unwrap();
                let mut echoed = Vec::new();
                stream.read_to_end(&mut echoed).await.unwrap();
                stream.finished().await.unwrap();
                assert!(
                    echoed == sent,
                    "connection {n}: {} bytes back",
                    echoed.len()
                );
            }
        };
        futures::future::join_all((0..100).map(one)).await;
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn a_closed_port_or_a_stopped_container_is_refused_before_acceptance() {
    within(async {
        let t = Tenancy::new();
        let id = t.sleeper(&t.alice, t.spec(&[])).await;
        let input = PortForward {
            container: id.clone(),
            port: 7001,
        };
        let message = refused(
            "a port nothing listens on",
            PORT_UNREACHABLE,
            t.alice.port_forward(&input).await.map(|_| ()),
        );
        assert!(message.contains("port 7001"), "{message}");
        assert!(message.contains("refused"), "{message}");
        let zero = PortForward {
            container: id.clone(),
            port: 0,
        };
        refused(
            "port 0",
            ErrorCode::INVALID_INPUT,
            t.alice.port_forward(&zero).await.map(|_| ()),
        );
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
        let message = refused(
            "a stopped container",
            CONFLICT,
            t.alice.port_forward(&input).await.map(|_| ()),
        );
        assert!(message.contains("not running"), "{message}");
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn a_user_cannot_forward_to_another_peers_container() {
    within(async {
        let t = Tenancy::new();
        let id = started(&t.alice, httpd(&t, "alice owns this")).await;
        let root_id = started(&t.root, httpd(&t, "root owns this")).await;
        // alice's server answers her.
        assert_served(&get(&t.alice, &id).await, "alice owns this");
        for reference in [
            id.as_str(),
            &id[..12],
            root_id.as_str(),
            "no-such-container",
        ] {
            let input = PortForward {
                container: reference.into(),
                port: 8080,
            };
            missing(
                "bob forwards to a container not his",
                "container",
                reference,
                t.bob.port_forward(&input).await.map(|_| ()),
            );
        }
        t.remove(&t.alice, &id).await;
        t.remove(&t.root, &root_id).await;
        t.finish();
    });
}

/// A service on the host's 127.0.0.1 (the server's own namespace) is
/// not what a forward to that port reaches: the container has nothing
/// there, so the forward is refused, and the host's service saw nothing.
#[test]
fn a_forward_never_reaches_the_servers_own_loopback() {
    within(async {
        let t = Tenancy::new();
        let host = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).unwrap();
        host.set_nonblocking(true).unwrap();
        let port = host.local_addr().unwrap().port();
        let id = t.sleeper(&t.alice, t.spec(&[])).await;
        let input = PortForward {
            container: id.clone(),
            port,
        };
        let message = refused(
            "the host's port, through alice's container",
            PORT_UNREACHABLE,
            t.alice.port_forward(&input).await.map(|_| ()),
        );
        assert!(message.contains("refused"), "{message}");
        let accepted = host.accept().map(|_| ());
        assert_eq!(
            accepted.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WouldBlock),
            "the host's service was connected to"
        );
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn a_forward_reaches_a_container_on_its_users_isolated_network() {
    within(async {
        let t = Tenancy::new();
        // No network named: the user's own isolated network.
        let id = started(&t.alice, httpd(&t, "on my own network")).await;
        let inspected = t
            .root
            .query(&ContainerInspect(ContainerRef::new(&id)))
            .await
            .unwrap();
        let networks = inspected
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default();
        assert_eq!(networks.len(), 1, "{networks:?}");
        assert!(!networks.contains_key("bridge"), "{networks:?}");
        assert_served(&get(&t.alice, &id).await, "on my own network");
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn a_forward_reaches_a_container_under_gvisor() {
    if skipped_on_podman(NO_RUNTIME_PER_CONTAINER) {
        return;
    }
    within(async {
        let t = Tenancy::new();
        let mut spec = httpd(&t, "from inside gVisor");
        spec.runtime = Some("runsc".into());
        spec.network = Some("none".into());
        let id = started(&t.alice, spec).await;
        let inspected = t
            .alice
            .query(&ContainerInspect(ContainerRef::new(&id)))
            .await
            .unwrap();
        let runtime = inspected.host_config.and_then(|h| h.runtime);
        assert_eq!(runtime.as_deref(), Some("runsc"));
        // gVisor's own kernel answers: its dmesg is the sandbox's.
        let (dmesg, _) = exec(&t.alice, &id, &["dmesg"]).await.unwrap();
        assert!(dmesg.contains("gVisor"), "{dmesg}");
        // Once in a loaded run, gVisor's freshly started httpd ended the
        // first connection cleanly without an answer (why is not known; no
        // byte was lost or reordered in any run): an empty answer is asked
        // again, briefly. Every answer that comes is checked whole.
        let mut answer = String::new();
        for _ in 0..20 {
            answer = get(&t.alice, &id).await;
            if !answer.is_empty() {
                break;
            }
            sleep_ms(200).await;
        }
        assert_served(&answer, "from inside gVisor");
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}

#[test]
fn a_forward_ends_with_conflict_when_its_container_stops() {
    within(async {
        let t = Tenancy::new();
        let id = started(&t.alice, t.spec(&["nc", "-l", "-p", "7000"])).await;
        let mut stream = forward(&t.alice, &id, 7000).await;
        stream.write_all(b"still open").await.unwrap();
        t.alice
            .query(&ContainerKill {
                id: id.clone(),
                signal: None,
            })
            .await
            .unwrap();
        // The port's end arrives (or the call's error), and the call ends
        // with the stop while the caller's side is still open.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        let message = refused(
            "the forward of a stopped container",
            CONFLICT,
            stream.finished().await,
        );
        assert!(message.contains("has stopped"), "{message}");
        t.remove(&t.alice, &id).await;
        t.finish();
    });
}
