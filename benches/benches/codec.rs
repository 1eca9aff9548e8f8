//! Criterion benchmarks of dockwire-core's codecs, each next to a baseline
//! measured in the same run, so results can be read as ratios on a noisy,
//! shared machine:
//!
//! - `chunk/encode_decode/<size>`: one stdout chunk encoded into a reused
//!   `BytesMut` and decoded back out of it; baseline `memcpy/copy/<size>`,
//!   a plain copy of the same payload into a reused buffer.
//! - `frame/codec_roundtrip`: a ~1 KiB `call.responded` envelope (a
//!   container list) through `FrameCodec::encode` and `decode`; baseline
//!   `frame/serde_json_roundtrip`, the same output value serialized and
//!   parsed back into a `serde_json::Value`. `frame/*_encode` and
//!   `frame/*_decode` split both into their halves.
//!
//! `cargo run --release -p dockwire-benches --bin ratios` turns the results
//! into the ratio table.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dockwire_core::{CHUNK_HEADER_LEN, ChunkCodec, Envelope, FrameCodec, Payload, StreamType};
use serde_json::{Value, json};

/// Payload sizes of the chunk and memcpy groups (64 B, 4 KiB, 64 KiB, 1 MiB).
/// `ratios` expects exactly these.
const SIZES: [usize; 4] = [64, 4 << 10, 64 << 10, 1 << 20];

/// A payload that is not all one byte value.
fn payload(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8)
        .collect()
}

/// `chunk` and `memcpy`, size by size.
///
/// The two groups are interleaved (memcpy 64 B, chunk 64 B, memcpy 4 KiB, …)
/// rather than run one after the other, so that a change in the machine's
/// load hits a codec measurement and its baseline alike.
fn chunk_vs_memcpy(c: &mut Criterion) {
    let codec = ChunkCodec::default();
    for size in SIZES {
        let src = payload(size);
        let bytes = size as u64;

        let mut group = c.benchmark_group("memcpy");
        group.throughput(Throughput::Bytes(bytes));
        group.bench_with_input(BenchmarkId::new("copy", size), &src, |b, src| {
            let mut dst: Vec<u8> = Vec::with_capacity(size);
            b.iter(|| {
                dst.clear();
                dst.extend_from_slice(black_box(src));
                black_box(dst.as_slice());
            });
        });
        group.finish();

        let mut group = c.benchmark_group("chunk");
        group.throughput(Throughput::Bytes(bytes));
        group.bench_with_input(BenchmarkId::new("encode_decode", size), &src, |b, src| {
            // One buffer for the whole run, as a shell's read/write buffer.
            // The decoded payload is split out of it; once that payload is
            // dropped, the next encode's `reserve` reclaims the memory.
            let mut buf = BytesMut::with_capacity(CHUNK_HEADER_LEN + size);
            b.iter(|| {
                codec
                    .encode(StreamType::Stdout, black_box(src), &mut buf)
                    .expect("a payload under the chunk limit encodes");
                let chunk = codec
                    .decode(&mut buf)
                    .expect("an encoded chunk decodes")
                    .expect("the buffer holds the whole chunk");
                black_box(chunk.payload);
            });
        });
        group.finish();
    }
}

/// What a `containers/list` call might answer: four containers with ids,
/// images, states and labels; 966 bytes of JSON, a 1032-byte frame.
fn container_list() -> Value {
    let containers = [
        ("web", "nginx:1.27-alpine", "running", "Up 3 hours"),
        ("api", "ghcr.io/acme/api:2.14.1", "running", "Up 3 hours"),
        ("db", "postgres:16", "running", "Up 3 hours (healthy)"),
        ("cache", "redis:7.4", "exited", "Exited (0) 2 minutes ago"),
    ];
    let list: Vec<Value> = containers
        .iter()
        .enumerate()
        .map(|(i, (name, image, state, status))| {
            json!({
                "id": format!("{:016x}{:016x}", 0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 + 1), i),
                "names": [format!("/shop-{name}-1")],
                "image": image,
                "state": state,
                "status": status,
                "created": 1_763_900_000 + i as i64 * 3_600,
                "labels": {
                    "com.docker.compose.project": "shop",
                    "com.docker.compose.service": name,
                },
            })
        })
        .collect();
    Value::Array(list)
}

/// `frame`: the frame codec against plain serde_json on the same output.
fn frame_vs_json(c: &mut Criterion) {
    let codec = FrameCodec::default();
    let output = container_list();
    let envelope = Envelope::new("call-42", Payload::Responded(output.clone()));

    let mut wire = BytesMut::new();
    codec
        .encode(&envelope, &mut wire)
        .expect("the envelope is under the frame limit");
    let frame_len = wire.len();
    let json_text = serde_json::to_vec(&output).expect("a Value serializes");
    let json_len = json_text.len();

    let mut group = c.benchmark_group("frame");

    // Round trips: the numbers the ratio is taken from.
    group.throughput(Throughput::Bytes(json_len as u64));
    group.bench_function("serde_json_roundtrip", |b| {
        // to_vec's serializer, into a reused Vec: the codec writes into a
        // reused BytesMut, so neither side pays for a fresh allocation.
        let mut out = Vec::with_capacity(json_len);
        b.iter(|| {
            out.clear();
            serde_json::to_writer(&mut out, black_box(&output)).expect("a Value serializes");
            let back: Value = serde_json::from_slice(&out).expect("its own output parses");
            black_box(back)
        });
    });
    group.throughput(Throughput::Bytes(frame_len as u64));
    group.bench_function("codec_roundtrip", |b| {
        let mut buf = BytesMut::with_capacity(frame_len);
        b.iter(|| {
            codec
                .encode(black_box(&envelope), &mut buf)
                .expect("the envelope is under the frame limit");
            let back = codec
                .decode(&mut buf)
                .expect("an encoded frame decodes")
                .expect("the buffer holds the whole frame");
            black_box(back)
        });
    });

    // The halves, to tell where the codec's overhead is.
    group.throughput(Throughput::Bytes(json_len as u64));
    group.bench_function("serde_json_encode", |b| {
        let mut out = Vec::with_capacity(json_len);
        b.iter(|| {
            out.clear();
            serde_json::to_writer(&mut out, black_box(&output)).expect("a Value serializes");
            black_box(out.as_slice());
        });
    });
    group.throughput(Throughput::Bytes(frame_len as u64));
    group.bench_function("codec_encode", |b| {
        let mut buf = BytesMut::with_capacity(frame_len);
        b.iter(|| {
            buf.clear();
            codec
                .encode(black_box(&envelope), &mut buf)
                .expect("the envelope is under the frame limit");
            black_box(&buf[..]);
        });
    });
    group.throughput(Throughput::Bytes(json_len as u64));
    group.bench_function("serde_json_decode", |b| {
        b.iter(|| {
            let back: Value =
                serde_json::from_slice(black_box(&json_text)).expect("valid JSON parses");
            black_box(back);
        });
    });
    group.throughput(Throughput::Bytes(frame_len as u64));
    group.bench_function("codec_decode", |b| {
        // Each decode consumes its buffer: hand it a fresh copy of the frame
        // (the copy is made outside the timed part). The envelope is dropped
        // inside the timed part, as the serde_json Value is above.
        b.iter_batched_ref(
            || wire.clone(),
            |buf| {
                let back = codec
                    .decode(buf)
                    .expect("an encoded frame decodes")
                    .expect("the buffer holds the whole frame");
                black_box(back);
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs and no plots (the numbers are read by `ratios`, and plotting
    // takes as long as measuring on a small machine): about a minute and a
    // half for the whole bench.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .without_plots();
    targets = chunk_vs_memcpy, frame_vs_json
}
criterion_main!(benches);
