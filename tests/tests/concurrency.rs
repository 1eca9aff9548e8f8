//! Many calls at once on one QUIC connection.
#![allow(clippy::unwrap_used)]

use dockwire_tests::{Rt, Transport, run};
use serde_json::json;

fn thousand_concurrent_calls(client: Rt, server: Rt) {
    run(client, server, Transport::Quic, |h| async move {
        let calls = (0..1000).map(|n| h.client.call("math/double", json!({ "n": n })));
        let results = futures::future::join_all(calls).await;
        for (n, r) in results.into_iter().enumerate() {
            assert_eq!(r.unwrap(), json!(2 * n), "call {n}");
        }
    });
}

#[test]
fn thousand_concurrent_calls_on_one_quic_connection_tokio_tokio() {
    thousand_concurrent_calls(Rt::Tokio, Rt::Tokio);
}

#[test]
fn thousand_concurrent_calls_on_one_quic_connection_smol_smol() {
    thousand_concurrent_calls(Rt::Smol, Rt::Smol);
}

#[test]
fn thousand_concurrent_calls_on_one_quic_connection_tokio_smol() {
    thousand_concurrent_calls(Rt::Tokio, Rt::Smol);
}

#[test]
fn thousand_concurrent_calls_on_one_quic_connection_smol_tokio() {
    thousand_concurrent_calls(Rt::Smol, Rt::Tokio);
}
