//! Arbitrary bytes into `ChunkCodec::decode`, and every control chunk's
//! payload into `Control::decode`. See fuzz/README.md for the invariants.
#![no_main]

use bytes::BytesMut;
use dockwire_core::{
    CHUNK_HEADER_LEN, ChunkCodec, ChunkError, Control, ControlError, DEFAULT_MAX_CHUNK_RECV,
    StreamType,
};
use dockwire_fuzz::{control_eq_loose, control_has_float};
use libfuzzer_sys::fuzz_target;

/// The decode limit, from the first input byte: tiny (0–15), small
/// (64–127), 4 KiB, or the 16 MiB default.
fn limit(b: u8) -> u32 {
    match b {
        0..=15 => u32::from(b),
        16..=63 => 64,
        64..=127 => u32::from(b),
        128..=191 => 4096,
        _ => DEFAULT_MAX_CHUNK_RECV,
    }
}

fn check_control(payload: &[u8]) {
    match Control::decode(payload) {
        Ok(None) => {}
        Ok(Some(c)) => {
            let json = c.to_json();
            match Control::decode(&json) {
                Ok(Some(c2)) => {
                    if control_has_float(&c) {
                        assert!(control_eq_loose(&c, &c2), "{c:?} -> {c2:?}");
                    } else {
                        assert_eq!(c, c2, "Control::decode(c.to_json()) != c");
                        assert_eq!(json, c2.to_json(), "to_json is not stable");
                    }
                }
                Ok(None) => panic!("{c:?} re-reads as an unknown type"),
                Err(e) => panic!("{c:?} re-reads as an error: {e:?}"),
            }
        }
        Err(
            ControlError::Json(_)
            | ControlError::NotAnObject
            | ControlError::MissingType
            | ControlError::Invalid { .. },
        ) => {}
        Err(e) => panic!("unexpected control error {e:?}"),
    }
}

/// What one decode call gave, comparable across runs.
#[derive(Debug, PartialEq)]
enum Step {
    Chunk(StreamType, Vec<u8>),
    Error(ChunkError),
}

fn decode_all(codec: ChunkCodec, data: &[u8], cut: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut buf = BytesMut::from(&data[..cut]);
    for rest in [&data[cut..], &[][..]] {
        loop {
            let before = buf.len();
            match codec.decode(&mut buf) {
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) consumed bytes");
                    break;
                }
                Ok(Some(c)) => {
                    assert_eq!(buf.len(), before - CHUNK_HEADER_LEN - c.payload.len());
                    steps.push(Step::Chunk(c.stream, c.payload.to_vec()));
                }
                Err(e) => {
                    assert_eq!(buf.len(), before, "an error consumed bytes");
                    steps.push(Step::Error(e));
                    return steps;
                }
            }
        }
        buf.extend_from_slice(rest);
    }
    steps
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let codec = ChunkCodec::new(limit(first));
    let cut = rest
        .first()
        .map_or(0, |&b| usize::from(b) % (rest.len() + 1));

    let mut buf = BytesMut::from(rest);
    let mut offset = 0;
    loop {
        match codec.decode(&mut buf) {
            Ok(None) => break,
            Ok(Some(chunk)) => {
                let n = CHUNK_HEADER_LEN + chunk.payload.len();
                assert!(chunk.payload.len() <= codec.max_len() as usize);
                // The encoding is canonical: re-encoding gives the exact bytes read.
                let mut again = BytesMut::new();
                codec
                    .encode(chunk.stream, &chunk.payload, &mut again)
                    .expect("a decoded chunk fits its own codec");
                assert_eq!(
                    &again[..],
                    &rest[offset..offset + n],
                    "chunk re-encodes differently"
                );
                offset += n;
                if chunk.stream == StreamType::Control {
                    check_control(&chunk.payload);
                }
            }
            Err(ChunkError::UnknownType(b)) => {
                assert!(b > 3);
                assert_eq!(rest[offset], b);
                break;
            }
            Err(ChunkError::TooLarge { len, limit }) => {
                assert_eq!(limit, codec.max_len());
                assert!(len > u64::from(limit));
                break;
            }
            Err(e) => panic!("unexpected chunk error {e:?}"),
        }
    }

    // The same bytes in two pieces give the same chunks and the same error.
    let whole = decode_all(codec, rest, rest.len());
    let split = decode_all(codec, rest, cut);
    assert_eq!(whole, split, "decoding depends on how the input was split");

    // The whole input as one control payload, too: reaching Control::decode
    // through a well-formed chunk header is otherwise rare.
    check_control(rest);
});
