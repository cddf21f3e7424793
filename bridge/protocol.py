"""The NumPy wire between the Torch LM and the TF policy (book 1.3.1, 3.1.2-3.1.3; DESIGN.md).

Three messages, each a frozen dataclass over NumPy arrays plus :class:`Meta`:

=============  =========  ================  ==================================================
message        field      dtype, shape      meaning
=============  =========  ================  ==================================================
TokenState     tokens     int32 [B, T]      prompt + generated tokens, right-padded
               lengths    int32 [B]         valid length of each row (1 <= length <= T)
               hidden     float32 [B, D]    LM final hidden state at the last valid position
               logits     float32 [B, V]    reference next-token logits there
               done       bool [B]          finished (EOS or length limit)
ActionBatch    actions    int32 [B]         next token ids in [0, V)
FeedbackBatch  scores     float32 [B, K]    one column per feedback source
               sources    K names           which source each column is (in ``Meta``)
=============  =========  ================  ==================================================

``to_bytes`` writes an uncompressed ``.npz``; ``from_bytes`` reads it *without* pickle and
without trusting it: every entry's header is checked against its size before any array is made,
then every field's dtype, shape and values. Anything wrong raises a :class:`BridgeError`
subclass naming the field, what was expected and what came -- never another exception.
This module imports NumPy only.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .npz import MAX_PAYLOAD, NpzError, read_npz, write_npz

SCHEMA_VERSION = 1


class BridgeError(Exception):
    """Base of every error the bridge raises for a bad message."""


class DecodeError(BridgeError):
    """Bytes that are not a well-formed message: truncated, corrupt, pickled, unknown kind."""


class FieldError(BridgeError):
    """A field with the wrong dtype, shape or values."""

    def __init__(self, field_name: str, expected: str, got: str):
        self.field, self.expected, self.got = field_name, expected, got
        super().__init__(f"field {field_name!r}: expected {expected}, got {got}")


class DTypeError(FieldError):
    pass


class ShapeError(FieldError):
    pass


class NonFiniteError(FieldError):
    pass


class RangeError(FieldError):
    pass


class MetadataError(BridgeError):
    """Metadata that does not match: schema version, V, D, fingerprint, source names."""


@dataclass(frozen=True)
class Meta:
    """What both sides must agree on."""

    vocab_size: int  #: V
    hidden_size: int  #: D
    fingerprint: str  #: hash of the LM weights' config and the tokenizer
    schema_version: int = SCHEMA_VERSION

    def check_against(self, expected: "Meta | None") -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise MetadataError(f"schema version: expected {SCHEMA_VERSION}, "
                                f"got {self.schema_version}")
        if expected is None:
            return
        for name in ("vocab_size", "hidden_size", "fingerprint"):
            want, got = getattr(expected, name), getattr(self, name)
            if want != got:
                raise MetadataError(f"metadata {name}: expected {want!r}, got {got!r} "
                                    "(the message comes from another LM or tokenizer)")


def _check_array(name: str, x, dtype, ndim: int) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise DTypeError(name, f"numpy array of {np.dtype(dtype)}", type(x).__name__)
    if x.dtype != np.dtype(dtype):
        raise DTypeError(name, str(np.dtype(dtype)), str(x.dtype))
    if x.ndim != ndim:
        raise ShapeError(name, f"{ndim}-D array", f"shape {x.shape}")
    return x


def _check_dim(name: str, x: np.ndarray, axis: int, size: int, what: str) -> None:
    if x.shape[axis] != size:
        raise ShapeError(name, f"axis {axis} of size {size} ({what})", f"shape {x.shape}")


def _check_finite(name: str, x: np.ndarray) -> None:
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise NonFiniteError(name, "finite values", f"{bad} NaN/inf")


class _Message:
    kind: ClassVar[str]
    arrays: ClassVar[tuple[str, ...]]

    def __post_init__(self):
        if not isinstance(self.meta, Meta):
            raise MetadataError(f"meta: expected a Meta, got {type(self.meta).__name__}")
        self.validate()

    def validate(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _meta_dict(self) -> dict:
        m = self.meta
        return {"kind": self.kind, "schema_version": m.schema_version,
                "vocab_size": m.vocab_size, "hidden_size": m.hidden_size,
                "fingerprint": m.fingerprint}

    def to_bytes(self) -> bytes:
        """The message as ``.npz`` bytes (validated when built: a bad message is never sent)."""
        header = _encode_meta(json.dumps(self._meta_dict(), sort_keys=True))
        return write_npz({"__meta__": header, **{k: getattr(self, k) for k in self.arrays}})

    @classmethod
    def from_bytes(cls, data: bytes, expect: Meta | None = None):
        """Decode and validate; ``expect`` also checks V, D and the fingerprint."""
        entries = _read_npz(data, cls.arrays)
        meta_raw = entries.pop("__meta__")
        try:
            info = _decode_meta(meta_raw.tobytes())
            if info.get("kind") != cls.kind:
                raise DecodeError(f"message kind: expected {cls.kind!r}, got "
                                  f"{info.get('kind')!r}")
            meta = Meta(int(info["vocab_size"]), int(info["hidden_size"]),
                        str(info["fingerprint"]), int(info["schema_version"]))
            extra = {k: info[k] for k in getattr(cls, "meta_fields", ())}
        except BridgeError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
            raise DecodeError(f"metadata is not valid: {e!r}") from None
        meta.check_against(expect)
        return cls._from_parts(entries, meta, extra)  # validated in __post_init__

    @classmethod
    def _from_parts(cls, arrays: dict, meta: Meta, extra: dict):
        return cls(**arrays, meta=meta)


@functools.lru_cache(maxsize=64)
def _encode_meta(text: str) -> np.ndarray:
    """The ``__meta__`` entry: JSON as uint8 (cached: a run sends the same few every step)."""
    arr = np.frombuffer(text.encode(), dtype=np.uint8)
    arr.flags.writeable = False
    return arr


@functools.lru_cache(maxsize=64)
def _decode_meta(raw: bytes) -> dict:
    info = json.loads(raw.decode())
    if not isinstance(info, dict):
        raise TypeError("metadata must be a JSON object")
    return info


def _read_npz(data: bytes, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Exactly ``names`` + ``__meta__`` from npz bytes, never unpickling, never trusting."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    try:
        entries = read_npz(data)
    except NpzError as e:
        raise DecodeError(f"not a valid message: {e}") from None
    wanted = {*names, "__meta__"}
    if set(entries) != wanted:
        raise DecodeError(f"entries: expected {sorted(wanted)}, got {sorted(entries)}")
    return entries


@dataclass(frozen=True, eq=False)
class TokenState(_Message):
    """What the LM side sends each step (DESIGN.md's bridge contract)."""

    kind: ClassVar[str] = "TokenState"
    arrays: ClassVar[tuple[str, ...]] = ("tokens", "lengths", "hidden", "logits", "done")

    tokens: np.ndarray
    lengths: np.ndarray
    hidden: np.ndarray
    logits: np.ndarray
    done: np.ndarray
    meta: Meta

    @property
    def batch_size(self) -> int:
        return int(self.tokens.shape[0])

    def validate(self) -> None:
        tokens = _check_array("tokens", self.tokens, np.int32, 2)
        B, T = tokens.shape
        lengths = _check_array("lengths", self.lengths, np.int32, 1)
        _check_dim("lengths", lengths, 0, B, "B, rows of tokens")
        hidden = _check_array("hidden", self.hidden, np.float32, 2)
        _check_dim("hidden", hidden, 0, B, "B")
        _check_dim("hidden", hidden, 1, self.meta.hidden_size, "D, the LM's hidden size")
        logits = _check_array("logits", self.logits, np.float32, 2)
        _check_dim("logits", logits, 0, B, "B")
        _check_dim("logits", logits, 1, self.meta.vocab_size, "V, the vocabulary size")
        done = _check_array("done", self.done, np.bool_, 1)
        _check_dim("done", done, 0, B, "B")
        if B and (lengths.min() < 1 or lengths.max() > T):
            raise RangeError("lengths", f"values in [1, {T}]",
                             f"[{lengths.min()}, {lengths.max()}]")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.meta.vocab_size):
            raise RangeError("tokens", f"ids in [0, {self.meta.vocab_size})",
                             f"[{tokens.min()}, {tokens.max()}]")
        _check_finite("hidden", hidden)
        _check_finite("logits", logits)

    def equals(self, other: "TokenState") -> bool:
        return self.meta == other.meta and all(
            np.array_equal(getattr(self, k), getattr(other, k)) for k in self.arrays)


@dataclass(frozen=True, eq=False)
class ActionBatch(_Message):
    """What the policy side sends back: one next token per row."""

    kind: ClassVar[str] = "ActionBatch"
    arrays: ClassVar[tuple[str, ...]] = ("actions",)

    actions: np.ndarray
    meta: Meta

    def validate(self) -> None:
        a = _check_array("actions", self.actions, np.int32, 1)
        if a.size and (a.min() < 0 or a.max() >= self.meta.vocab_size):
            raise RangeError("actions", f"token ids in [0, {self.meta.vocab_size})",
                             f"[{a.min()}, {a.max()}]")

    def equals(self, other: "ActionBatch") -> bool:
        return self.meta == other.meta and np.array_equal(self.actions, other.actions)


@dataclass(frozen=True, eq=False)
class FeedbackBatch(_Message):
    """Scores of finished sequences, one column per feedback source (book 4.3.1's f_{i,t})."""

    kind: ClassVar[str] = "FeedbackBatch"
    arrays: ClassVar[tuple[str, ...]] = ("scores",)
    meta_fields: ClassVar[tuple[str, ...]] = ("sources",)

    scores: np.ndarray
    sources: tuple[str, ...]
    meta: Meta = field(default_factory=lambda: Meta(0, 0, ""))

    def validate(self) -> None:
        s = _check_array("scores", self.scores, np.float32, 2)
        if not isinstance(self.sources, tuple) or not all(
                isinstance(n, str) and n for n in self.sources):
            raise FieldError("sources", "a tuple of non-empty names", repr(self.sources))
        if len(set(self.sources)) != len(self.sources):
            raise FieldError("sources", "unique names", repr(self.sources))
        _check_dim("scores", s, 1, len(self.sources), "K, one column per source")
        _check_finite("scores", s)

    def _meta_dict(self) -> dict:
        return {**super()._meta_dict(), "sources": list(self.sources)}

    @classmethod
    def _from_parts(cls, arrays, meta, extra):
        sources = extra.get("sources")
        if not isinstance(sources, list):
            raise DecodeError("metadata 'sources' must be a list of names")
        return cls(arrays["scores"], tuple(sources), meta)

    def equals(self, other: "FeedbackBatch") -> bool:
        return (self.meta == other.meta and self.sources == other.sources
                and np.array_equal(self.scores, other.scores))


MESSAGES = {cls.kind: cls for cls in (TokenState, ActionBatch, FeedbackBatch)}

__all__ = ["SCHEMA_VERSION", "Meta", "TokenState", "ActionBatch", "FeedbackBatch", "BridgeError",
           "DecodeError", "FieldError", "DTypeError", "ShapeError", "NonFiniteError",
           "RangeError", "MetadataError", "MESSAGES", "MAX_PAYLOAD"]
