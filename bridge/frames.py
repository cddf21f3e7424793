"""The length-prefixed frame codec of the child-process link (one copy, both ends use it).

A frame is ``<8-byte big-endian length n><1-byte op><n - 1 bytes payload>``. The ops and their
payloads are listed in ``lm_torch/server.py`` (the child) and ``bridge/child.py`` (the parent).
"""

from __future__ import annotations

import struct

HEADER = struct.Struct(">Q")
#: the largest frame either side accepts (a TokenState of B x T tokens plus B x V logits fits)
MAX_FRAME = (1 << 28) + 1  # op + bridge.npz.MAX_PAYLOAD: what the decoder would refuse is not read


class FrameError(ValueError):
    """A frame header that announces an impossible length."""


def encode_frame(op: bytes, payload: bytes = b"") -> bytes:
    """The bytes of one frame."""
    if len(op) != 1:
        raise ValueError(f"op must be one byte, got {op!r}")
    return HEADER.pack(len(payload) + 1) + op + payload


def frame_length(head: bytes) -> int:
    """The body length announced by an 8-byte header; FrameError if out of bounds."""
    (n,) = HEADER.unpack(head)
    if not 1 <= n <= MAX_FRAME:
        raise FrameError(f"frame length {n} is outside [1, {MAX_FRAME}]")
    return n


def split_body(body: bytes) -> tuple[bytes, bytes]:
    """(op, payload) of a frame body."""
    return bytes(body[:1]), bytes(body[1:])


def write_frame(stream, op: bytes, payload: bytes = b"") -> None:
    """Write one frame to a blocking binary stream and flush it."""
    stream.write(encode_frame(op, payload))
    stream.flush()


def read_frame(stream) -> tuple[bytes, bytes]:
    """Read one frame from a blocking binary stream; EOFError at the end or mid-frame."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        raise EOFError("the other side closed the pipe")
    n = frame_length(head)
    body = stream.read(n)
    if len(body) < n:
        raise EOFError("truncated frame")
    return split_body(body)
