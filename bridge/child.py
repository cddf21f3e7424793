"""The parent side of a process boundary: the LM backend in a child process.

:class:`ChildBackend` starts ``python -m lm_torch.server`` and offers the same ``reset`` /
``step`` / ``meta`` as the in-process ``lm_torch.backend.LMBackend``; what crosses the pipe is the
protocol's bytes, validated on arrival. A child that dies or does not answer within ``timeout``
seconds raises :class:`ChildCrashedError` / :class:`ChildTimeoutError` (with the tail of its
stderr) in the parent -- never a hang. This module imports NumPy only.
"""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import sys
import tempfile
import time
from typing import Sequence

import numpy as np

from .protocol import ActionBatch, BridgeError, Meta, TokenState


class ChildError(BridgeError):
    """The child answered with an error (its type and message are in the text)."""


class ChildCrashedError(BridgeError):
    """The child process exited."""


class ChildTimeoutError(BridgeError):
    """The child did not answer in time; it has been killed."""


class ChildBackend:
    """An LM backend running in a child process, spoken to in protocol bytes."""

    def __init__(self, checkpoint: str | os.PathLike, max_new_tokens: int = 32,
                 threads: int = 0, timeout: float = 30.0, start_timeout: float = 120.0,
                 command: Sequence[str] | None = None):
        self.timeout = timeout
        self._stderr = tempfile.TemporaryFile()
        cmd = list(command) if command else [
            sys.executable, "-m", "lm_torch.server", str(checkpoint),
            "--max-new-tokens", str(max_new_tokens), "--threads", str(threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr)
        op, payload = self._read(start_timeout)
        if op != b"H":
            self.close()
            raise ChildError(f"expected a hello frame, got {op!r}")
        hello = json.loads(payload.decode())
        self.meta = Meta(hello["vocab_size"], hello["hidden_size"], hello["fingerprint"])
        self.pad_id, self.bos_id, self.eos_id = hello["pad_id"], hello["bos_id"], hello["eos_id"]

    # --- framing ----------------------------------------------------------------------------
    def _stderr_tail(self, n: int = 2000) -> str:
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - n))
        return self._stderr.read().decode(errors="replace")

    def _crashed(self) -> ChildCrashedError:
        code = self.proc.poll()
        return ChildCrashedError(f"the LM child process exited (code {code}); its stderr "
                                 f"ends with:\n{self._stderr_tail()}")

    def _read_exact(self, n: int, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                self.proc.kill()
                self.proc.wait()
                raise ChildTimeoutError(f"the LM child process did not answer within "
                                        f"{self.timeout:.0f} s; it was killed")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                if self.proc.poll() is not None:
                    raise self._crashed()
                continue
            chunk = os.read(fd, n - got)
            if not chunk:
                self.proc.wait()
                raise self._crashed()
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _read(self, timeout: float) -> tuple[bytes, bytes]:
        deadline = time.monotonic() + timeout
        (n,) = struct.unpack(">Q", self._read_exact(8, deadline))
        body = self._read_exact(n, deadline)
        return body[:1], body[1:]

    def _call(self, op: bytes, payload: bytes) -> TokenState:
        if self.proc.poll() is not None:
            raise self._crashed()
        try:
            self.proc.stdin.write(struct.pack(">Q", len(payload) + 1) + op + payload)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.proc.wait()
            raise self._crashed() from None
        rop, body = self._read(self.timeout)
        if rop == b"E":
            err = json.loads(body.decode())
            raise ChildError(f"{err['type']} in the LM child: {err['message']}")
        if rop != b"T":
            raise ChildError(f"unexpected frame {rop!r} from the LM child")
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
                self.proc.stdin.write(struct.pack(">Q", 1) + b"Q")
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if self.proc.poll() is None:
                self.proc.kill()
        except Exception:
            pass
