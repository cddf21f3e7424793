"""Serve an :class:`LMBackend` over stdin/stdout: the LM side of a process boundary.

``python -m lm_torch.server CHECKPOINT --max-new-tokens N --threads K`` speaks frames of
``<8-byte big-endian length><1-byte op><payload>``:

  parent -> child   ``R`` + JSON list of prompt token lists   (reset)
                    ``S`` + ActionBatch bytes                  (step)
                    ``Q``                                      (quit)
  child -> parent   ``H`` + JSON hello {meta, pad/bos/eos ids} (once, at start)
                    ``T`` + TokenState bytes
                    ``E`` + JSON {type, message}               (an error; the child goes on)

The data messages are the protocol's own bytes, so the parent validates exactly what it would
in-process. See ``bridge.child`` for the parent side.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys

import torch

from bridge.protocol import ActionBatch, BridgeError

from .backend import LMBackend


def write_frame(stream, op: bytes, payload: bytes = b"") -> None:
    stream.write(struct.pack(">Q", len(payload) + 1) + op + payload)
    stream.flush()


def read_frame(stream) -> tuple[bytes, bytes]:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("parent closed the pipe")
    (n,) = struct.unpack(">Q", head)
    body = stream.read(n)
    if len(body) < n:
        raise EOFError("truncated frame")
    return body[:1], body[1:]


def serve(backend: LMBackend, inp, out) -> None:
    tok = backend.tokenizer
    hello = {"vocab_size": backend.meta.vocab_size, "hidden_size": backend.meta.hidden_size,
             "fingerprint": backend.meta.fingerprint, "pad_id": tok.pad_id,
             "bos_id": tok.bos_id, "eos_id": tok.eos_id}
    write_frame(out, b"H", json.dumps(hello).encode())
    while True:
        try:
            op, payload = read_frame(inp)
        except EOFError:
            return
        if op == b"Q":
            return
        try:
            if op == b"R":
                state = backend.reset(json.loads(payload.decode()))
            elif op == b"S":
                state = backend.step(ActionBatch.from_bytes(payload, expect=backend.meta))
            else:
                raise ValueError(f"unknown op {op!r}")
            write_frame(out, b"T", state.to_bytes())
        except (BridgeError, ValueError, RuntimeError) as e:
            write_frame(out, b"E", json.dumps({"type": type(e).__name__,
                                               "message": str(e)}).encode())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    frames = os.fdopen(os.dup(1), "wb")  # frames go to the real stdout ...
    os.dup2(2, 1)  # ... and anything a library prints goes to stderr
    backend = LMBackend.from_checkpoint(args.checkpoint, max_new_tokens=args.max_new_tokens)
    serve(backend, sys.stdin.buffer, frames)


if __name__ == "__main__":
    main()
