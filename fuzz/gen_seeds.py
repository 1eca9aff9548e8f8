#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into fuzz/corpus/<target>/.

Run from anywhere: python3 fuzz/gen_seeds.py. Seeds are named seed-*, so
they are told apart from what libFuzzer adds (named by SHA-1). Running it
again rewrites the same files.

frame_decode and chunk_decode read raw bytes: the first byte picks the
decode limit (>= 192: the 16 MiB default; 64-127: that many bytes), the
rest is the stream. server_call and client_call read `arbitrary`-encoded
operation lists, so their seeds are deterministic pseudo-random bytes.
"""

import json
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = b"\xff"  # first byte: the 16 MiB default limit
SMALL = b"\x40"  # first byte: a 64-byte limit


def frame(obj):
    body = obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack(">I", len(body)) + body


def chunk(stream, payload):
    if not isinstance(payload, bytes):
        payload = json.dumps(payload, separators=(",", ":")).encode()
    return struct.pack(">BI", stream, len(payload)) + payload


STDIN, STDOUT, STDERR, CONTROL = 0, 1, 2, 3

ALKNET = (
    b'{"type":"call.requested","id":"req-1","payload":'
    b'{"operationId":"/fs/readFile","input":{"path":"/etc/hosts"}}}'
)


def frame_seeds():
    raw_request = {
        "type": "call.requested",
        "id": "sess-1",
        "payload": {"operationId": "container/attach", "input": {"id": "abc", "tty": True}, "carriage": "raw"},
    }
    return {
        "alknet-request": DEFAULT + frame(ALKNET),
        "alknet-request-over-64-byte-limit": SMALL + frame(ALKNET),
        "raw-request": DEFAULT + frame(raw_request),
        "responded-then-completed": DEFAULT
        + frame({"type": "call.responded", "id": "q", "payload": {"output": {"n": 42, "xs": [1, "two", None]}}})
        + frame({"type": "call.completed", "id": "q", "payload": {}}),
        "error-with-details": DEFAULT
        + frame(
            {
                "type": "call.error",
                "id": "e",
                "payload": {"code": "NOT_FOUND", "message": "no such container", "retryable": False, "details": {"id": "abc"}},
            }
        ),
        "error-details-null": DEFAULT
        + frame({"type": "call.error", "id": "e", "payload": {"code": "X", "message": "m", "retryable": True, "details": None}}),
        "aborted": DEFAULT + frame({"type": "call.aborted", "id": "a", "payload": {}}),
        "floats": b"\x80"
        + frame({"type": "call.responded", "id": "f", "payload": {"output": [0.1, -2.5e-300, 1e308, 3.0]}}),
        "zero-length": DEFAULT + b"\x00\x00\x00\x00",
        "partial": DEFAULT + frame(ALKNET)[:30],
        "bad-json-then-good": DEFAULT + frame(b"{not json") + frame({"type": "call.completed", "id": "n", "payload": {}}),
        "unknown-type": DEFAULT + frame({"type": "call.maybe", "id": "r", "payload": {}}),
        "request-no-input": DEFAULT + frame({"type": "call.requested", "id": "r", "payload": {"operationId": "x"}}),
    }


def chunk_seeds():
    return {
        "client-session": DEFAULT
        + chunk(STDIN, b"ls -l\n")
        + chunk(CONTROL, {"type": "resize", "cols": 80, "rows": 24})
        + chunk(CONTROL, {"type": "signal", "name": "INT"})
        + chunk(STDIN, b""),
        "server-session": DEFAULT
        + chunk(STDOUT, b"total 0\n")
        + chunk(STDERR, b"warning\n")
        + chunk(STDOUT, b"")
        + chunk(CONTROL, {"type": "exit", "code": 0}),
        "control-error": DEFAULT
        + chunk(CONTROL, {"type": "error", "code": "INTERNAL", "message": "boom", "retryable": False, "details": {"pid": 7}}),
        "control-error-minimal": DEFAULT + chunk(CONTROL, {"type": "error", "code": "X", "message": "m"}),
        "controls": DEFAULT
        + chunk(CONTROL, {"type": "eof"})
        + chunk(CONTROL, {"type": "abort"})
        + chunk(CONTROL, {"type": "dance", "moves": 3})
        + chunk(CONTROL, {"type": "resize", "cols": -1, "rows": 24}),
        "over-limit": b"\x05" + chunk(STDOUT, b"0123456789"),
        "unknown-type": DEFAULT + b"\x07\x00\x00\x00\x01x",
        "partial": DEFAULT + chunk(STDOUT, b"cut in the middle")[:9],
        "exit-negative": DEFAULT + chunk(CONTROL, {"type": "exit", "code": -1}),
    }


def random_seeds(name):
    rng = random.Random(name)
    return {f"random-{i:02}": bytes(rng.randrange(256) for _ in range(rng.randrange(16, 200))) for i in range(8)}


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("frame_decode", frame_seeds())
    write("chunk_decode", chunk_seeds())
    write("server_call", random_seeds("server_call"))
    write("client_call", random_seeds("client_call"))
