//! A malformed first frame gets a typed error where a reply is still
//! possible, closes only its own stream, and leaves the connection and the
//! other calls alive. Raw bytes are written to a live server over Unix
//! sockets and QUIC, on both server runtimes.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use dockwire_core::{ErrorCode, FrameCodec, Payload};
use dockwire_tests::{Harness, Rt, Transport, harness};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use serde_json::json;

/// The bad first frames, and the id the reply must carry.
fn cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let body = |s: &str| {
        let mut b = (s.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(s.as_bytes());
        b
    };
    vec![
        ("zero length", vec![0, 0, 0, 0], ""),
        (
            "oversized length",
            ((16u32 << 20) + 1).to_be_bytes().to_vec(),
            "",
        ),
        ("invalid json", body("{\"type\":"), ""),
        (
            "unknown carriage",
            body(
                r#"{"type":"call.requested","id":"r7","payload":{"operationId":"math/double","carriage":"pigeon"}}"#,
            ),
            "r7",
        ),
    ]
}

/// Sends `bytes` on a fresh stream (not closing our side: that would be a
/// cancellation) and returns everything the server sends before closing.
async fn exchange(h: &Harness, bytes: &[u8]) -> Vec<u8> {
    let mut reply = Vec::new();
    match h.transport {
        Transport::Quic => {
            let (mut send, mut recv) = h.quic.as_ref().unwrap().open_bi().await.unwrap();
            send.write_all(bytes).await.unwrap();
            reply = recv.read_to_end(1 << 20).await.unwrap();
        }
        Transport::Unix => {
            let path = h.socket.clone().unwrap();
            let mut stream = smol::net::unix::UnixStream::connect(path).await.unwrap();
            stream.write_all(bytes).await.unwrap();
            stream.read_to_end(&mut reply).await.unwrap();
        }
        Transport::Duplex | Transport::Tcp => unreachable!("these cases run on Unix and QUIC"),
    }
    reply
}

async fn malformed_first_frames(h: Harness) {
    // A call in progress on the same connection, before and after.
    let mut sub = h
        .client
        .subscribe("test/forever", json!(null))
        .await
        .unwrap();
    assert_eq!(sub.next().await.unwrap().unwrap(), json!(0));
    for (what, bytes, id) in cases() {
        let reply = exchange(&h, &bytes).await;
        let mut buf = BytesMut::from(&reply[..]);
        let env = FrameCodec::default()
            .decode(&mut buf)
            .unwrap_or_else(|e| panic!("{what}: unreadable reply: {e}"))
            .unwrap_or_else(|| panic!("{what}: no reply before the stream closed"));
        assert!(buf.is_empty(), "{what}: one frame, then the stream closes");
        assert_eq!(env.id, id, "{what}");
        match env.payload {
            Payload::Error(e) => assert!(
                e.code == ErrorCode::PROTOCOL || e.code == ErrorCode::INVALID_INPUT,
                "{what}: {e}"
            ),
            other => panic!("{what}: {other:?}"),
        }
    }
    // The other call is still running, and new calls work.
    assert!(sub.next().await.unwrap().is_ok());
    let out = h.client.call("math/double", json!({"n": 4})).await.unwrap();
    assert_eq!(out, json!(8));
}

#[test]
fn malformed_first_frames_are_answered_and_close_only_their_stream() {
    for server in [Rt::Tokio, Rt::Smol] {
        for transport in [Transport::Unix, Transport::Quic] {
            Rt::Smol.block_on(async {
                malformed_first_frames(harness(Rt::Smol, server, transport).await).await;
            });
        }
    }
}
