//! Arbitrary bytes into `FrameCodec::decode`, plus the round trip of every
//! envelope it accepts. See fuzz/README.md for the invariants.
#![no_main]

use bytes::BytesMut;
use dockwire_core::{DEFAULT_MAX_FRAME_LEN, Envelope, FRAME_HEADER_LEN, FrameCodec, FrameError};
use dockwire_fuzz::{envelope_eq_loose, envelope_has_float};
use libfuzzer_sys::fuzz_target;

/// The decode limit, from the first input byte: tiny (0–15, where 0 refuses
/// every frame), small (64–127), 4 KiB, or the 16 MiB default.
fn limit(b: u8) -> u32 {
    match b {
        0..=15 => u32::from(b),
        16..=63 => 64,
        64..=127 => u32::from(b),
        128..=191 => 4096,
        _ => DEFAULT_MAX_FRAME_LEN,
    }
}

/// What one decode call gave, comparable across runs.
#[derive(Debug, PartialEq)]
enum Step {
    Frame(Vec<u8>),
    Error(String),
}

/// Decodes `data` with `codec`, fed in two pieces cut at `cut`; every
/// frame's raw body and the final error (if any) in order.
fn decode_all(codec: FrameCodec, data: &[u8], cut: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut buf = BytesMut::from(&data[..cut]);
    for rest in [&data[cut..], &[][..]] {
        loop {
            let before = buf.len();
            let mut peek = buf.clone();
            match codec.decode_body(&mut peek) {
                Ok(None) => {
                    assert_eq!(peek.len(), before, "Ok(None) consumed bytes");
                    break;
                }
                Ok(Some(body)) => {
                    assert!(!body.is_empty(), "an empty body was accepted");
                    assert!(
                        body.len() <= codec.max_len() as usize,
                        "over-limit body accepted"
                    );
                    assert_eq!(peek.len(), before - FRAME_HEADER_LEN - body.len());
                    steps.push(Step::Frame(body.to_vec()));
                    buf = peek;
                }
                Err(e) => {
                    steps.push(Step::Error(format!("{e:?}")));
                    return steps;
                }
            }
        }
        buf.extend_from_slice(rest);
    }
    steps
}

/// The round trip of one envelope the decoder accepted.
fn round_trip(codec: FrameCodec, env: &Envelope) {
    let mut next = Some(env.clone());
    while let Some(env) = next.take() {
        next = round_trip_once(codec, &env);
    }
}

/// One round trip; the envelope to go on with when the known issue below
/// made it drift.
fn round_trip_once(codec: FrameCodec, env: &Envelope) -> Option<Envelope> {
    // Re-encoding with the decoding limit may legitimately need more bytes
    // than the frame had (a left-out `input` is written as `null`, `1E0`
    // as `1.0`), so that encode may only fail with TooLarge, and for real.
    let mut limited = BytesMut::from(&b"keep"[..]);
    match codec.encode(env, &mut limited) {
        Ok(()) => {}
        Err(FrameError::TooLarge { len, limit }) => {
            assert_eq!(limit, codec.max_len());
            assert!(len > limit, "TooLarge with {len} <= {limit}");
            assert_eq!(&limited[..], b"keep", "a refused encode changed dst");
        }
        Err(e) => panic!("encode failed with {e:?}"),
    }

    let big = FrameCodec::new(u32::MAX);
    let mut x1 = BytesMut::new();
    big.encode(env, &mut x1).expect("encode without a limit");
    if codec.encode(env, &mut BytesMut::new()).is_ok() {
        assert_eq!(&limited[4..], &x1[..], "encode depends on the limit");
    }
    assert_eq!(
        u32::from_be_bytes(x1[..4].try_into().expect("4 bytes")) as usize,
        x1.len() - FRAME_HEADER_LEN
    );
    let x1_bytes = x1.clone();
    let e2 = big
        .decode(&mut x1)
        .expect("re-encoded envelope decodes")
        .expect("a whole frame");
    assert!(x1.is_empty(), "re-encoded frame left bytes behind");

    // fuzz/artifacts-found/frame_decode-double-slash-operation once broke
    // this ("//x" drifted one slash per round trip); the core now drops
    // every leading slash.
    if envelope_has_float(env) {
        assert!(
            envelope_eq_loose(env, &e2),
            "round trip changed the envelope (beyond float precision):\n{env:?}\n{e2:?}"
        );
    } else {
        assert_eq!(*env, e2, "decode(encode(e)) != e");
    }

    // The encoding of a decoded envelope is stable.
    let mut x2 = BytesMut::new();
    big.encode(&e2, &mut x2).expect("encode without a limit");
    if !envelope_has_float(&e2) {
        assert_eq!(x1_bytes, x2, "encode(decode(encode(e))) != encode(e)");
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let codec = FrameCodec::new(limit(first));
    let cut = rest
        .first()
        .map_or(0, |&b| usize::from(b) % (rest.len() + 1));

    // Whole-buffer decode, typed.
    let mut buf = BytesMut::from(rest);
    loop {
        match codec.decode(&mut buf) {
            Ok(None) => break,
            Ok(Some(env)) => round_trip(codec, &env),
            Err(FrameError::Envelope(_)) => {} // the frame was consumed; go on
            Err(_) => break,
        }
    }

    // The same bytes in two pieces give the same frames and the same error.
    let whole = decode_all(codec, rest, rest.len());
    let split = decode_all(codec, rest, cut);
    assert_eq!(whole, split, "decoding depends on how the input was split");
});
