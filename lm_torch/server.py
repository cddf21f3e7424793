"""Serve an :class:`LMBackend` over stdin/stdout: the LM side of a process boundary.

``python -m lm_torch.server CHECKPOINT --max-new-tokens N --threads K`` speaks the frames of
``bridge.frames`` (``<8-byte big-endian length><1-byte op><payload>``):

  parent -> child   ``R`` + JSON list of prompt token lists   (reset)
                    ``S`` + ActionBatch bytes                  (step)
                    ``Q``                                      (quit)
  child -> parent   ``H`` + JSON hello {meta, pad/bos/eos ids} (once, at start)
                    ``T`` + TokenState bytes
                    ``E`` + JSON {type, message}               (an error; the child goes on)

The data messages are the protocol's own bytes, so the parent validates exactly what it would
in-process. See ``bridge.child`` for the parent side, and :func:`command` for the command line
that starts this server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

import torch

from bridge.frames import FrameError, read_frame, write_frame
from bridge.protocol import ActionBatch, BridgeError

from .backend import LMBackend


def command(checkpoint: str | os.PathLike, max_new_tokens: int = 32,
            threads: int = 0) -> list[str]:
    """The command line of a child process serving ``checkpoint`` (for ``bridge.child``)."""
    return [sys.executable, "-m", "lm_torch.server", str(checkpoint),
            "--max-new-tokens", str(max_new_tokens), "--threads", str(threads)]


def serve(backend: LMBackend, inp, out) -> None:
    tok = backend.tokenizer
    hello = {"vocab_size": backend.meta.vocab_size, "hidden_size": backend.meta.hidden_size,
             "fingerprint": backend.meta.fingerprint, "pad_id": tok.pad_id,
             "bos_id": tok.bos_id, "eos_id": tok.eos_id}
    write_frame(out, b"H", json.dumps(hello).encode())
    while True:
        try:
            op, payload = read_frame(inp)
        except (EOFError, FrameError):
            return
        if op == b"Q":
            return
        try:
            if op == b"R":
                state = backend.reset(_prompts(payload))
            elif op == b"S":
                state = backend.step(ActionBatch.from_bytes(payload, expect=backend.meta))
            else:
                raise ValueError(f"unknown op {op!r}")
            write_frame(out, b"T", state.to_bytes())
        except (BridgeError, ValueError, RuntimeError, RecursionError) as e:
            write_frame(out, b"E", json.dumps({"type": type(e).__name__,
                                               "message": str(e)[:2000]}).encode())


def _prompts(payload: bytes) -> list[list[int]]:
    """The reset payload: a JSON list of lists of token ids (ValueError otherwise)."""
    data = json.loads(payload.decode())
    if not isinstance(data, list) or not all(
            isinstance(p, list) and all(isinstance(t, int) and not isinstance(t, bool)
                                        for t in p) for p in data):
        raise ValueError("reset expects a JSON list of lists of token ids")
    return data


def main(argv: Sequence[str] | None = None) -> None:
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
