//! The TCP listener and connector of both shells, on every runtime pairing.
#![allow(clippy::unwrap_used)]

use dockwire_core::ErrorCode;
use dockwire_service::ClientError;
use dockwire_tests::{Prng, Rt, Transport, run};
use futures::{AsyncReadExt, AsyncWriteExt};
use serde_json::json;

fn over_tcp(client: Rt, server: Rt) {
    run(client, server, Transport::Tcp, |h| async move {
        let out = h.client.call("math/double", json!({"n": 5})).await.unwrap();
        assert_eq!(out, json!(10));
        match h.client.call("no/such", json!(null)).await {
            Err(ClientError::Remote(e)) => assert_eq!(e.code, ErrorCode::NOT_FOUND),
            other => panic!("{other:?}"),
        }
        let data = Prng(11).bytes(8 << 20);
        let mut s = h.client.open_raw("test/cat", json!(null)).await.unwrap();
        let sent = data.clone();
        let mut stdin = s.stdin;
        let write = async move {
            stdin.write_all(&sent).await.unwrap();
            stdin.close().await.unwrap();
        };
        let mut got = Vec::new();
        let (_, read) = futures::join!(write, s.stdout.read_to_end(&mut got));
        read.unwrap();
        assert!(got == data[..], "stdout differs from stdin");
        assert_eq!(s.exit.await.unwrap(), 0);
    });
}

#[test]
fn tcp_tokio_tokio() {
    over_tcp(Rt::Tokio, Rt::Tokio);
}

#[test]
fn tcp_smol_smol() {
    over_tcp(Rt::Smol, Rt::Smol);
}

#[test]
fn tcp_tokio_smol() {
    over_tcp(Rt::Tokio, Rt::Smol);
}

#[test]
fn tcp_smol_tokio() {
    over_tcp(Rt::Smol, Rt::Tokio);
}
