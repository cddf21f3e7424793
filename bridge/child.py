"""The parent side of a process boundary: an LM backend in a child process.

:class:`ChildBackend` starts a command that serves the backend over stdin/stdout in the frames
of :mod:`bridge.frames` (``lm_torch.server.command(checkpoint)`` gives the Torch one) and offers
the same ``reset`` / ``step`` / ``meta`` as the in-process backend; what crosses the pipe is the
protocol's bytes, validated on arrival. Every read *and write* honours the timeout (the pipes
are driven with ``select``), so a child that dies, stops reading or does not answer raises
:class:`ChildCrashedError` / :class:`ChildTimeoutError` (with the tail of its stderr) in the
parent -- never a hang -- and the child is killed and reaped. This module imports NumPy only.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import time
from typing import Sequence

import numpy as np

from .frames import HEADER, FrameError, encode_frame, frame_length, split_body
from .protocol import ActionBatch, BridgeError, Meta, TokenState


class ChildError(BridgeError):
    """The child answered with an error (its type and message are in the text)."""


class ChildCrashedError(BridgeError):
    """The child process exited."""


class ChildTimeoutError(BridgeError):
    """The child did not read or answer in time; it has been killed."""


class ChildProtocolError(BridgeError):
    """The child spoke something that is not the protocol (a bad frame or greeting)."""


_HELLO_INTS = ("vocab_size", "hidden_size", "pad_id", "bos_id", "eos_id")


class ChildBackend:
    """An LM backend running in a child process (``command``), spoken to in protocol bytes."""

    def __init__(self, command: Sequence[str], timeout: float = 30.0,
                 start_timeout: float = 120.0):
        if isinstance(command, (str, bytes)) or not command:
            raise ValueError("command must be a non-empty list of arguments, e.g. "
                             "lm_torch.server.command(checkpoint)")
        self.timeout = float(timeout)
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(list(command), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr)
        os.set_blocking(self.proc.stdin.fileno(), False)
        try:
            op, payload = self._read(start_timeout)
            if op != b"H":
                raise ChildProtocolError(f"expected a hello frame from the child, got op {op!r}")
            self._hello(payload)
        except BaseException:
            self._kill()
            self._stderr.close()
            raise

    def _hello(self, payload: bytes) -> None:
        try:
            hello = json.loads(payload.decode())
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise ChildProtocolError(f"the child's hello is not JSON ({type(e).__name__})") \
                from None
        if not isinstance(hello, dict) or not isinstance(hello.get("fingerprint"), str) or any(
                type(hello.get(k)) is not int or hello[k] < 0 for k in _HELLO_INTS):
            raise ChildProtocolError("the child's hello must be a JSON object with integer "
                                     f"{', '.join(_HELLO_INTS)} and a string fingerprint")
        self.meta = Meta(hello["vocab_size"], hello["hidden_size"], hello["fingerprint"])
        self.pad_id, self.bos_id, self.eos_id = hello["pad_id"], hello["bos_id"], hello["eos_id"]

    # --- the pipes, each with a deadline --------------------------------------------------------
    def _stderr_tail(self, n: int = 2000) -> str:
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - n))
        return self._stderr.read().decode(errors="replace")

    def _kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def _crashed(self) -> ChildCrashedError:
        self._kill()
        return ChildCrashedError(f"the LM child process exited (code {self.proc.returncode}); "
                                 f"its stderr ends with:\n{self._stderr_tail()}")

    def _timed_out(self, what: str) -> ChildTimeoutError:
        self._kill()
        return ChildTimeoutError(f"the LM child process did not {what} within "
                                 f"{self.timeout:.0f} s; it was killed")

    def _write_all(self, data: bytes, deadline: float) -> None:
        fd, view, sent = self.proc.stdin.fileno(), memoryview(data), 0
        while sent < len(view):
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._timed_out("read its input")
            _, ready, _ = select.select([], [fd], [], min(left, 1.0))
            if not ready:
                if self.proc.poll() is not None:
                    raise self._crashed()
                continue
            try:
                sent += os.write(fd, view[sent:])
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                raise self._crashed() from None

    def _read_exact(self, n: int, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._timed_out("answer")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                if self.proc.poll() is not None:
                    raise self._crashed()
                continue
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                raise self._crashed()
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _read(self, timeout: float) -> tuple[bytes, bytes]:
        deadline = time.monotonic() + timeout
        try:
            n = frame_length(self._read_exact(HEADER.size, deadline))
        except FrameError as e:
            self._kill()
            raise ChildProtocolError(f"bad frame from the child: {e}") from None
        return split_body(self._read_exact(n, deadline))

    def _call(self, op: bytes, payload: bytes) -> TokenState:
        if self.proc.poll() is not None:
            raise self._crashed()
        deadline = time.monotonic() + self.timeout
        self._write_all(encode_frame(op, payload), deadline)
        rop, body = self._read(max(deadline - time.monotonic(), 0.0))
        if rop == b"E":
            try:
                err = json.loads(body.decode())
                raise ChildError(f"{err['type']} in the LM child: {err['message']}")
            except (ValueError, UnicodeDecodeError, KeyError, TypeError, RecursionError):
                raise ChildProtocolError("the child's error frame is not the protocol's JSON") \
                    from None
        if rop != b"T":
            raise ChildProtocolError(f"unexpected frame {rop!r} from the LM child")
        return TokenState.from_bytes(body, expect=self.meta)

    # --- the backend interface ----------------------------------------------------------------
    def reset(self, prompts: Sequence[Sequence[int]]) -> TokenState:
        return self._call(b"R", json.dumps([[int(t) for t in p] for p in prompts]).encode())

    def step(self, actions: ActionBatch | np.ndarray) -> TokenState:
        if not isinstance(actions, ActionBatch):
            actions = ActionBatch(np.asarray(actions, dtype=np.int32), self.meta)
        return self._call(b"S", actions.to_bytes())

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._write_all(encode_frame(b"Q"), time.monotonic() + 5)
                self.proc.wait(timeout=5)
            except (BridgeError, subprocess.TimeoutExpired):
                pass
        self._kill()
        if not self._stderr.closed:
            self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self._kill()
        except Exception:
            pass
