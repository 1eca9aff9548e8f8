//! The service wrappers: a per-peer call limit, and one log line per call.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use dockwire_core::ErrorCode;
use dockwire_service::{CallLog, ClientError, PeerLimit, TOO_MANY_CALLS};
use dockwire_tests::{Probe, Rt, client_as, sleep_ms, test_service};
use futures::StreamExt;
use serde_json::json;

#[test]
fn a_peer_over_its_limit_is_refused_until_one_of_its_calls_ends() {
    Rt::Tokio.block_on(async {
        let service = Arc::new(PeerLimit::new(test_service(Probe::default()), 2));
        let alice = client_as("alice", &service);
        let bob = client_as("bob", &service);
        let mut first = alice.open_raw("test/hang", json!({})).await.unwrap();
        let _second = alice.open_raw("test/hang", json!({})).await.unwrap();

        let Err(ClientError::Remote(e)) = alice.call("math/double", json!({"n": 1})).await else {
            panic!("a third call was not refused");
        };
        assert_eq!(e.code, TOO_MANY_CALLS);
        assert!(e.retryable);
        assert!(e.message.contains("alice"), "{}", e.message);
        // Another peer is not held back by alice's calls.
        assert_eq!(
            bob.call("math/double", json!({"n": 2})).await.unwrap(),
            json!(4)
        );

        // Ending one of alice's calls frees its place.
        first.control.abort().await.unwrap();
        let _ = first.exit.await;
        let mut passed = false;
        for _ in 0..100 {
            match alice.call("math/double", json!({"n": 3})).await {
                Ok(v) => {
                    assert_eq!(v, json!(6));
                    passed = true;
                    break;
                }
                Err(ClientError::Remote(e)) if e.code == TOO_MANY_CALLS => sleep_ms(20).await,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(passed, "the aborted call's place was never freed");
    });
}

#[test]
fn finished_and_failed_calls_free_their_places() {
    Rt::Tokio.block_on(async {
        let service = Arc::new(PeerLimit::new(test_service(Probe::default()), 1));
        let alice = client_as("alice", &service);
        for n in 0..20 {
            assert_eq!(
                alice.call("math/double", json!({"n": n})).await.unwrap(),
                json!(2 * n)
            );
            let mut items = alice
                .subscribe("test/fail-at", json!({"at": 1}))
                .await
                .unwrap();
            assert!(items.next().await.unwrap().is_ok());
            assert!(items.next().await.unwrap().is_err());
            assert!(alice.open_raw("test/refuse", json!({})).await.is_err());
            let session = alice
                .open_raw("test/split", json!({"code": 3}))
                .await
                .unwrap();
            assert_eq!(session.exit.await.unwrap(), 3);
        }
    });
}

/// Where the test's log lines go.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_call_log_has_one_line_per_call_with_peer_operation_outcome_and_duration() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    Rt::Tokio.block_on(async {
        let service = Arc::new(CallLog::new(test_service(Probe::default())));
        let carol = client_as("carol", &service);
        carol.call("math/double", json!({"n": 1})).await.unwrap();
        let session = carol
            .open_raw("test/split", json!({"code": 7}))
            .await
            .unwrap();
        assert_eq!(session.exit.await.unwrap(), 7);
        let Err(ClientError::Remote(e)) = carol.call("no/such", json!({})).await else {
            panic!("an unknown operation passed");
        };
        assert_eq!(e.code, ErrorCode::NOT_FOUND);
        let mut items = carol
            .subscribe("test/fail-at", json!({"at": 0}))
            .await
            .unwrap();
        assert!(items.next().await.unwrap().is_err());
        let mut hang = carol.open_raw("test/hang", json!({})).await.unwrap();
        hang.control.abort().await.unwrap();
        let _ = hang.exit.await;

        let expected = [
            ("math/double", "outcome=completed"),
            ("test/split", "outcome=exit 7"),
            ("no/such", "outcome=refused NOT_FOUND"),
            ("test/fail-at", "outcome=failed UNAVAILABLE"),
            ("test/hang", "outcome=cancelled"),
        ];
        let mut text = String::new();
        for _ in 0..100 {
            text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
            if text.contains("test/hang") {
                break;
            }
            sleep_ms(20).await;
        }
        let calls: Vec<&str> = text.lines().filter(|l| l.contains("peer=carol")).collect();
        assert_eq!(calls.len(), expected.len(), "{text}");
        for (operation, outcome) in expected {
            let line = calls
                .iter()
                .find(|l| l.contains(&format!("operation={operation} ")))
                .unwrap_or_else(|| panic!("no line for {operation}: {text}"));
            assert!(line.contains(outcome), "{line}");
            assert!(line.contains("duration_ms="), "{line}");
            assert!(line.contains("call_id="), "{line}");
            let failed = outcome.contains("refused") || outcome.contains("failed");
            assert_eq!(line.contains("WARN"), failed, "{line}");
        }
    });
}
