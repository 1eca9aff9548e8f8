//! The conformance suite: every scenario, written once, on every pairing of
//! client and server runtime (tokio, smol) over every transport (in-memory
//! duplex, Unix socket, QUIC on 127.0.0.1).
#![allow(clippy::unwrap_used)]

use dockwire_core::ErrorCode;
use dockwire_service::{ClientError, RawSession};
use dockwire_tests::{Harness, Prng, Rt, Transport, run};
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt};
use serde_json::json;
use sha2::{Digest, Sha256};

async fn json_query(h: Harness) {
    let out = h
        .client
        .call("math/double", json!({"n": 21}))
        .await
        .unwrap();
    assert_eq!(out, json!(42));
}

async fn subscription_of_100_000_items_in_order(h: Harness) {
    let mut sub = h
        .client
        .subscribe("test/count", json!({"n": 100_000}))
        .await
        .unwrap();
    let mut next = 0u64;
    while let Some(item) = sub.next().await {
        assert_eq!(item.unwrap(), json!(next));
        next += 1;
    }
    assert_eq!(next, 100_000);
}

async fn error_mid_subscription_without_completion(h: Harness) {
    let mut sub = h
        .client
        .subscribe("test/fail-at", json!({"at": 5}))
        .await
        .unwrap();
    for i in 0..5 {
        assert_eq!(sub.next().await.unwrap().unwrap(), json!(i));
    }
    match sub.next().await {
        Some(Err(ClientError::Remote(e))) => {
            assert_eq!(e.code, ErrorCode::UNAVAILABLE);
            assert!(e.retryable);
            assert_eq!(e.details, Some(json!(5)));
        }
        other => panic!("{other:?}"),
    }
    assert!(sub.next().await.is_none(), "nothing after the error");
}

async fn unknown_operation_is_not_found(h: Harness) {
    match h.client.call("no/such/op", json!(null)).await {
        Err(ClientError::Remote(e)) => assert_eq!(e.code, ErrorCode::NOT_FOUND),
        other => panic!("{other:?}"),
    }
}

async fn wrong_carriage_is_invalid_input(h: Harness) {
    match h.client.call("test/cat", json!(null)).await {
        Err(ClientError::Remote(e)) => assert_eq!(e.code, ErrorCode::INVALID_INPUT),
        other => panic!("{other:?}"),
    }
    match h.client.open_raw("math/double", json!(null)).await {
        Err(ClientError::Remote(e)) => assert_eq!(e.code, ErrorCode::INVALID_INPUT),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a json operation was accepted as raw"),
    }
}

async fn raw_refusal_carries_the_handlers_error(h: Harness) {
    match h.client.open_raw("test/refuse", json!(null)).await {
        Err(ClientError::Remote(e)) => {
            assert_eq!(e.code.as_str(), "CONTAINER_NOT_FOUND");
            assert_eq!(e.message, "no such container");
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("accepted"),
    }
}

async fn dropping_a_subscription_drops_the_handler(h: Harness) {
    let mut sub = h
        .client
        .subscribe("test/forever", json!(null))
        .await
        .unwrap();
    assert_eq!(sub.next().await.unwrap().unwrap(), json!(0));
    drop(sub);
    h.probe.wait_dropped(1).await;
}

async fn raw_abort_drops_the_handler_and_ends_the_session_aborted(h: Harness) {
    let mut s = h.client.open_raw("test/hang", json!(null)).await.unwrap();
    s.control.abort().await.unwrap();
    assert!(matches!(s.exit.await, Err(ClientError::Aborted)));
    h.probe.wait_dropped(1).await;
}

async fn client_abort_mid_subscription_drops_the_handler(h: Harness) {
    let mut sub = h
        .client
        .subscribe("test/forever", json!(null))
        .await
        .unwrap();
    for i in 0..10 {
        assert_eq!(sub.next().await.unwrap().unwrap(), json!(i));
    }
    sub.abort().await;
    loop {
        match sub.next().await {
            Some(Ok(_)) => continue,
            Some(Err(ClientError::Aborted)) => break,
            other => panic!("{other:?}"),
        }
    }
    h.probe.wait_dropped(1).await;
}

async fn client_connection_dropped_mid_call_drops_the_handler(h: Harness) {
    let session = h.client.open_raw("test/hang", json!(null)).await.unwrap();
    match &h.quic {
        // The whole connection goes.
        Some(connection) => connection.close(0u32.into(), b"client gone"),
        // One call per stream: dropping the session drops the stream.
        None => drop(session),
    }
    h.probe.wait_dropped(1).await;
}

/// QUIC and duplex only: a Unix server goes away with its process, which is
/// the crash tests' matter.
async fn server_connection_dropped_mid_call_is_an_error_not_a_hang(h: Harness) {
    assert_ne!(h.transport, Transport::Unix);
    let session = h.client.open_raw("test/hang", json!(null)).await.unwrap();
    h.close_server();
    match session.exit.await {
        Err(ClientError::Io(_)) | Err(ClientError::Remote(_)) => {}
        other => panic!("{other:?}"),
    }
}

async fn raw_cat_echoes_256_mib_exactly_and_exit_comes_last(h: Harness) {
    const TOTAL: usize = 256 << 20;
    let RawSession {
        accepted,
        mut stdin,
        mut stdout,
        stderr,
        exit,
        ..
    } = h.client.open_raw("test/cat", json!(null)).await.unwrap();
    assert_eq!(accepted, json!({"cat": true}));
    let writer = async move {
        let mut rng = Prng(7);
        let mut hash = Sha256::new();
        let mut sent = 0;
        while sent < TOTAL {
            let chunk = rng.bytes((TOTAL - sent).min(1 << 20));
            hash.update(&chunk);
            stdin.write_all(&chunk).await.unwrap();
            sent += chunk.len();
        }
        stdin.close().await.unwrap();
        hash.finalize()
    };
    let reader = async move {
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0;
        loop {
            let n = stdout.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            got += n;
        }
        (got, hash.finalize())
    };
    let (sent_hash, (got, got_hash)) = futures::join!(writer, reader);
    assert_eq!(got, TOTAL);
    assert_eq!(
        sent_hash, got_hash,
        "SHA-256 of stdout differs from stdin's"
    );
    let mut err = Vec::new();
    let mut stderr = stderr;
    stderr.read_to_end(&mut err).await.unwrap();
    assert!(err.is_empty());
    assert_eq!(exit.await.unwrap(), 0);
}

async fn stderr_is_kept_apart_from_stdout(h: Harness) {
    let s = h
        .client
        .open_raw("test/split", json!({"code": 7}))
        .await
        .unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (mut so, mut se) = (s.stdout, s.stderr);
    let (a, b) = futures::join!(so.read_to_end(&mut out), se.read_to_end(&mut err));
    a.unwrap();
    b.unwrap();
    assert_eq!(out, b"output");
    assert_eq!(err, b"err");
    assert_eq!(s.exit.await.unwrap(), 7);
}

async fn resize_and_signal_reach_the_handler(h: Harness) {
    let mut s = h.client.open_raw("test/cat", json!(null)).await.unwrap();
    s.control.resize(132, 43).await.unwrap();
    s.control.signal("INT").await.unwrap();
    s.control.resize(80, 24).await.unwrap();
    // No pause: a control is never overtaken by stdin sent after it.
    s.stdin.close().await.unwrap();
    assert_eq!(s.exit.await.unwrap(), 0);
    assert_eq!(
        h.probe.controls(),
        ["resize 132x43", "signal INT", "resize 80x24"]
    );
}

/// A control sent while the client's driver already holds the stdin
/// item after it (here: sent from inside the stdin source's poll, just
/// before that source ends) still reaches the handler before stdin's
/// close, which ends the handler's loop.
async fn a_control_sent_just_before_stdin_ends_is_not_overtaken_by_the_close(h: Harness) {
    let s = h.client.open_raw("test/cat", json!(null)).await.unwrap();
    let mut control = s.control.clone();
    let mut sent = false;
    s.stdin.feed_from(futures::stream::poll_fn(move |_| {
        if !std::mem::replace(&mut sent, true) {
            let resized = control.resize(7, 9).now_or_never();
            assert!(matches!(resized, Some(Ok(()))), "{resized:?}");
        }
        std::task::Poll::Ready(None)
    }));
    assert_eq!(s.exit.await.unwrap(), 0);
    assert_eq!(h.probe.controls(), ["resize 7x9"]);
}

/// A handler's output ends (the drained sentinel) while its call goes on:
/// the client reads stdout to its end before sending anything, and the
/// stdin it sends after still arrives.
async fn output_ends_before_stdin_which_still_arrives(h: Harness) {
    let mut s = h
        .client
        .open_raw("test/drained-then-count", json!(null))
        .await
        .unwrap();
    let mut out = Vec::new();
    s.stdout.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, b"bye");
    let mut err = Vec::new();
    s.stderr.read_to_end(&mut err).await.unwrap();
    assert!(err.is_empty());
    s.stdin.write_all(b"after the end").await.unwrap();
    s.stdin.close().await.unwrap();
    assert_eq!(s.exit.await.unwrap(), 13);
}

macro_rules! pairing {
    ($name:ident, $client:expr, $server:expr, $transport:expr) => {
        mod $name {
            use super::*;

            fn go<F: std::future::Future<Output = ()>>(scenario: fn(Harness) -> F) {
                run($client, $server, $transport, scenario);
            }

            #[test]
            fn json_query() {
                go(super::json_query);
            }
            #[test]
            fn subscription_of_100_000_items_in_order() {
                go(super::subscription_of_100_000_items_in_order);
            }
            #[test]
            fn error_mid_subscription_without_completion() {
                go(super::error_mid_subscription_without_completion);
            }
            #[test]
            fn unknown_operation_is_not_found() {
                go(super::unknown_operation_is_not_found);
            }
            #[test]
            fn wrong_carriage_is_invalid_input() {
                go(super::wrong_carriage_is_invalid_input);
            }
            #[test]
            fn raw_refusal_carries_the_handlers_error() {
                go(super::raw_refusal_carries_the_handlers_error);
            }
            #[test]
            fn output_ends_before_stdin_which_still_arrives() {
                go(super::output_ends_before_stdin_which_still_arrives);
            }
            #[test]
            fn dropping_a_subscription_drops_the_handler() {
                go(super::dropping_a_subscription_drops_the_handler);
            }
            #[test]
            fn raw_abort_drops_the_handler_and_ends_the_session_aborted() {
                go(super::raw_abort_drops_the_handler_and_ends_the_session_aborted);
            }
            #[test]
            fn client_abort_mid_subscription_drops_the_handler() {
                go(super::client_abort_mid_subscription_drops_the_handler);
            }
            #[test]
            fn client_connection_dropped_mid_call_drops_the_handler() {
                go(super::client_connection_dropped_mid_call_drops_the_handler);
            }
            #[test]
            fn raw_cat_echoes_256_mib_exactly_and_exit_comes_last() {
                go(super::raw_cat_echoes_256_mib_exactly_and_exit_comes_last);
            }
            #[test]
            fn stderr_is_kept_apart_from_stdout() {
                go(super::stderr_is_kept_apart_from_stdout);
            }
            #[test]
            fn resize_and_signal_reach_the_handler() {
                go(super::resize_and_signal_reach_the_handler);
            }
            #[test]
            fn a_control_sent_just_before_stdin_ends_is_not_overtaken_by_the_close() {
                go(super::a_control_sent_just_before_stdin_ends_is_not_overtaken_by_the_close);
            }
        }
    };
}

macro_rules! server_drop {
    ($name:ident, $client:expr, $server:expr, $transport:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn server_connection_dropped_mid_call_is_an_error_not_a_hang() {
                run(
                    $client,
                    $server,
                    $transport,
                    super::server_connection_dropped_mid_call_is_an_error_not_a_hang,
                );
            }
        }
    };
}

server_drop!(
    tokio_tokio_quic_server,
    Rt::Tokio,
    Rt::Tokio,
    Transport::Quic
);
server_drop!(smol_smol_quic_server, Rt::Smol, Rt::Smol, Transport::Quic);
server_drop!(tokio_smol_quic_server, Rt::Tokio, Rt::Smol, Transport::Quic);
server_drop!(smol_tokio_quic_server, Rt::Smol, Rt::Tokio, Transport::Quic);
server_drop!(
    tokio_tokio_duplex_server,
    Rt::Tokio,
    Rt::Tokio,
    Transport::Duplex
);
server_drop!(
    smol_smol_duplex_server,
    Rt::Smol,
    Rt::Smol,
    Transport::Duplex
);
server_drop!(
    tokio_smol_duplex_server,
    Rt::Tokio,
    Rt::Smol,
    Transport::Duplex
);
server_drop!(
    smol_tokio_duplex_server,
    Rt::Smol,
    Rt::Tokio,
    Transport::Duplex
);

pairing!(tokio_tokio_duplex, Rt::Tokio, Rt::Tokio, Transport::Duplex);
pairing!(tokio_tokio_unix, Rt::Tokio, Rt::Tokio, Transport::Unix);
pairing!(tokio_tokio_quic, Rt::Tokio, Rt::Tokio, Transport::Quic);
pairing!(smol_smol_duplex, Rt::Smol, Rt::Smol, Transport::Duplex);
pairing!(smol_smol_unix, Rt::Smol, Rt::Smol, Transport::Unix);
pairing!(smol_smol_quic, Rt::Smol, Rt::Smol, Transport::Quic);
pairing!(tokio_smol_duplex, Rt::Tokio, Rt::Smol, Transport::Duplex);
pairing!(tokio_smol_unix, Rt::Tokio, Rt::Smol, Transport::Unix);
pairing!(tokio_smol_quic, Rt::Tokio, Rt::Smol, Transport::Quic);
pairing!(smol_tokio_duplex, Rt::Smol, Rt::Tokio, Transport::Duplex);
pairing!(smol_tokio_unix, Rt::Smol, Rt::Tokio, Transport::Unix);
pairing!(smol_tokio_quic, Rt::Smol, Rt::Tokio, Transport::Quic);
