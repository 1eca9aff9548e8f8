//! Flow control: a reader that sleeps between reads of a 256 MiB stream
//! holds the server back; the process's resident memory (client and server
//! both live in it) grows by less than 64 MiB. One test in its own binary,
//! so that no other test's memory is counted.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use dockwire_tests::{TRIPLES, harness, resident_bytes};
use futures::AsyncReadExt;
use serde_json::json;

const TOTAL: u64 = 256 << 20;
const LIMIT: u64 = 64 << 20;

#[test]
fn slow_reader_of_256_mib_keeps_memory_flat_on_every_pairing() {
    let mut report = Vec::new();
    for (client, server, transport) in TRIPLES {
        client.block_on(async {
            let h = harness(client, server, transport).await;
            let s = h
                .client
                .open_raw("test/stream", json!({ "bytes": TOTAL, "seed": 3 }))
                .await
                .unwrap();
            let before = resident_bytes();
            let mut peak = before;
            let mut stdout = s.stdout;
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0u64;
            let mut reads = 0u64;
            loop {
                let n = stdout.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got += n as u64;
                reads += 1;
                // Early on, stop reading for a while: whatever buffers
                // between producer and reader fills now, and must stop it.
                if reads == 16 {
                    std::thread::sleep(Duration::from_secs(2));
                }
                // Then stay slower than the producer.
                if reads % 4 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                    peak = peak.max(resident_bytes());
                }
            }
            assert_eq!(got, TOTAL);
            assert_eq!(s.exit.await.unwrap(), 0);
            let growth = peak.saturating_sub(before);
            report.push(format!(
                "{client:?}->{server:?} {transport:?}: +{} KiB",
                growth / 1024
            ));
            assert!(
                growth < LIMIT,
                "{client:?}->{server:?} over {transport:?}: resident memory grew by {growth} bytes"
            );
        });
    }
    println!(
        "resident memory growth during a 256 MiB slow read:\n{}",
        report.join("\n")
    );
}
