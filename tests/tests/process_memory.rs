//! Memory of detached processes (issue 15): 1,000 processes on one server,
//! each having written exactly its 1 MiB buffer full (`head -c 1048576
//! /dev/zero`) and ended, in 4 containers; the process's resident memory
//! (server and client both live in it) grows by what the buffers need
//! plus at most [`OVERHEAD`] per process, and gives it back when they are
//! removed. One test in its own binary, so that no other test's memory
//! is counted. The figures are printed (`--nocapture`).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bollard::Docker;
use dockwire_docker::catalog::*;
use dockwire_docker::{Config, DockerService};
use dockwire_tests::docker::{IMAGE, OWNER, engine, rig_for};
use dockwire_tests::{Rt, resident_bytes};
use futures::StreamExt;

const PROCESSES: usize = 1000;
const BUFFER: u64 = 1 << 20;
/// What a process may cost beyond its buffer: its record, its chunks'
/// headers, the allocator's rounding.
const OVERHEAD: u64 = 64 << 10;
/// Starts in flight at once.
const AT_ONCE: usize = 16;

#[test]
fn a_thousand_full_1_mib_buffers_cost_their_bytes_plus_a_small_overhead_each() {
    let _ = engine();
    Rt::Tokio.block_on(async {
        let config = Config::from_env()
            .with_owner(OWNER)
            .with_max_processes(PROCESSES)
            .with_process_buffer_max(BUFFER);
        let docker = Docker::connect_with_local_defaults().unwrap();
        let rig = rig_for(Rt::Tokio, DockerService::new(docker, config)).await;
        let mut boxes = Vec::new();
        for _ in 0..4 {
            boxes.push(
                rig.container(ContainerSpec::new(IMAGE, ["sleep", "3600"]))
                    .await,
            );
        }
        // Warm: one process started, waited for and removed, so that the
        // connection, the engine client and their buffers are counted in
        // the baseline.
        let warm = rig
            .docker
            .query(&ProcessStart::new(&boxes[0], ["true"]))
            .await
            .unwrap()
            .id;
        rig.docker
            .query(&ProcessWait { id: warm.clone() })
            .await
            .unwrap();
        rig.docker.query(&ProcessRemove { id: warm }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = resident_bytes();

        let began = Instant::now();
        let ids: Vec<String> = futures::stream::iter(0..PROCESSES)
            .map(|n| {
                let docker = rig.docker.clone();
                let container = boxes[n % boxes.len()].clone();
                async move {
                    let cmd = ["head", "-c", "1048576", "/dev/zero"];
                    let mut start = ProcessStart::new(&container, cmd);
                    start.buffer = Some(BUFFER);
                    let id = docker.query(&start).await.unwrap().id;
                    let exit = docker.query(&ProcessWait { id: id.clone() }).await;
                    assert_eq!(exit.unwrap().exit_code, 0);
                    id
                }
            })
            .buffer_unordered(AT_ONCE)
            .collect()
            .await;
        let took = began.elapsed();
        let listed = rig.docker.query(&ProcessList {}).await.unwrap();
        assert_eq!(listed.len(), PROCESSES);
        for p in &listed {
            assert_eq!(p.stdout.written, BUFFER, "{p:?}");
            assert_eq!(p.stdout.dropped, 0, "{p:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let full = resident_bytes();
        let growth = full.saturating_sub(before);
        let buffers = PROCESSES as u64 * BUFFER;
        let per_process = growth.saturating_sub(buffers) / PROCESSES as u64;
        eprintln!(
            "{PROCESSES} processes of {} KiB in {took:?}: resident +{} MiB for {} MiB of \
             buffers: {} bytes over per process",
            BUFFER >> 10,
            growth >> 20,
            buffers >> 20,
            per_process,
        );
        assert!(
            growth <= buffers + PROCESSES as u64 * OVERHEAD,
            "resident memory grew by {growth} bytes for {buffers} of buffers \
             ({per_process} over per process)"
        );

        for id in ids {
            rig.docker.query(&ProcessRemove { id }).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = resident_bytes();
        eprintln!(
            "after removing them: +{} MiB",
            after.saturating_sub(before) >> 20
        );
    });
}
