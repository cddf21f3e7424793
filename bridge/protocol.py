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
without trusting it (DESIGN.md: the bridge contract; book 1.3.1, 3.1.2): the bytes come from
another process, so any bytes-like input -- or anything else -- either decodes or raises a
:class:`BridgeError` subclass naming the entry or field, what was expected and what came; never
another exception, and never unbounded work or memory first. In order:

1. the ``.npz`` (:func:`bridge.npz.read_npz`): zip structure, CRC-32s, ``.npy`` headers, and
   sizes capped at ``max_bytes`` (default ``bridge.npz.MAX_PAYLOAD``) before any allocation;
2. exactly the message's entries plus ``__meta__``;
3. the metadata: UTF-8 JSON of at most :data:`MAX_META` bytes (nesting too deep for the
   parser is a ``DecodeError``, never a ``RecursionError``; no key twice), an object with
   exactly the expected keys, each of its JSON type -- integers are JSON integers (never
   ``true``, ``1.5``, ``"1"``, NaN or Infinity), strings are strings -- and ``schema_version``
   exactly :data:`SCHEMA_VERSION`: a lax reading would let a message from another schema or a
   corrupt sender through with its numbers silently changed (``50.9`` read as 50);
4. every field's dtype, shape and values (``validate``).

Decoded metadata is cached only for small ``__meta__`` entries, so refused payloads leave
nothing behind. This module imports NumPy only.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .npz import MAX_PAYLOAD, NpzError, read_npz, write_npz

SCHEMA_VERSION = 1
MAX_META = 1 << 16  #: the ``__meta__`` JSON is at most 64 KiB (a few hundred bytes in practice)
_MAX_SIZE = 2**31 - 1  # V and D: token ids are int32
_CACHED_META = 1024  # only metadata this short is cached (64 entries: at most 64 KiB held)


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
    meta_fields: ClassVar[tuple[str, ...]] = ()  #: extra metadata keys, each a list of names

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
        text = json.dumps(self._meta_dict(), sort_keys=True)
        if len(text) > MAX_META:  # the receiver would refuse it
            raise MetadataError(f"metadata of {len(text)} bytes; at most {MAX_META}")
        header = _encode_meta(text) if len(text) <= _CACHED_META else _meta_array(text)
        return write_npz({"__meta__": header, **{k: getattr(self, k) for k in self.arrays}})

    @classmethod
    def from_bytes(cls, data: bytes, expect: Meta | None = None, *,
                   max_bytes: int | None = None):
        """Decode and validate any input (module docstring: what is checked, in order);
        ``expect`` also checks V, D and the fingerprint; ``max_bytes`` caps the payload and
        its decoded size (default ``bridge.npz.MAX_PAYLOAD``). Raises only BridgeErrors."""
        entries = _read_npz(data, cls.arrays, max_bytes)
        meta, extra = _decode_meta(entries.pop("__meta__"), cls)
        meta.check_against(expect)
        return cls._from_parts(entries, meta, dict(extra))  # validated in __post_init__

    @classmethod
    def _from_parts(cls, arrays: dict, meta: Meta, extra: dict):
        return cls(**arrays, meta=meta)


def _meta_array(text: str) -> np.ndarray:
    """The ``__meta__`` entry: JSON as read-only uint8."""
    arr = np.frombuffer(text.encode(), dtype=np.uint8)
    arr.flags.writeable = False
    return arr


_encode_meta = functools.lru_cache(maxsize=64)(_meta_array)  # a run sends the same few


class _JSONOddity:
    """What the metadata parser puts for NaN, Infinity and huge integers: a value of no
    expected type, so the type check names the field ("'vocab_size' ... got Infinity")."""

    def __init__(self, text: str):
        self.text = text


def _json_pairs(pairs: list) -> dict:
    """A JSON object, refusing a repeated key (``json`` would keep the last one silently)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"the key {_describe(twice)} appears twice in a JSON object")
    return out


def _describe(value) -> str:
    """A short description of a decoded JSON value for an error message (never deep reprs)."""
    if isinstance(value, _JSONOddity):
        return value.text
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    return f"a JSON {'array' if isinstance(value, list) else 'object'} of {len(value)} items"


def _parse_meta(raw: bytes, kind: str, extra_keys: tuple[str, ...]):
    """(Meta, ((key, names), ...)) from ``__meta__`` JSON, every key and type checked."""
    try:
        info = json.loads(raw.decode("utf-8"), object_pairs_hook=_json_pairs,
                          parse_constant=_JSONOddity,
                          parse_int=lambda s: int(s) if len(s) <= 20 else
                          _JSONOddity(f"an integer of {len(s)} digits"))
    except RecursionError:
        raise DecodeError("metadata JSON is nested too deeply") from None
    except ValueError as e:  # bad UTF-8, bad JSON, a repeated key
        raise DecodeError(f"metadata is not valid UTF-8 JSON: {e}") from None
    if not isinstance(info, dict):
        raise DecodeError(f"metadata: expected a JSON object, got {_describe(info)}")
    if info.get("kind") != kind:
        raise DecodeError(f"message kind: expected {kind!r}, got {_describe(info.get('kind'))}")
    version = info.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise MetadataError(f"metadata 'schema_version': expected the JSON integer "
                            f"{SCHEMA_VERSION}, got {_describe(version)}")
    keys = {"kind", "schema_version", "vocab_size", "hidden_size", "fingerprint", *extra_keys}
    if set(info) != keys:
        odd = [_describe(k) for k in sorted(set(info) ^ keys)[:5]]
        raise MetadataError(f"metadata keys: expected {sorted(keys)}, missing or unexpected: "
                            + ", ".join(odd))
    for name in ("vocab_size", "hidden_size"):
        if type(info[name]) is not int or not 0 <= info[name] <= _MAX_SIZE:
            raise MetadataError(f"metadata {name!r}: expected a JSON integer in [0, {_MAX_SIZE}]"
                                f", got {_describe(info[name])}")
    if type(info["fingerprint"]) is not str:
        raise MetadataError(f"metadata 'fingerprint': expected a JSON string, got "
                            f"{_describe(info['fingerprint'])}")
    for name in extra_keys:
        if type(info[name]) is not list or not all(type(s) is str for s in info[name]):
            raise MetadataError(f"metadata {name!r}: expected a JSON array of strings, got "
                                f"{_describe(info[name])}")
    meta = Meta(info["vocab_size"], info["hidden_size"], info["fingerprint"], version)
    return meta, tuple((name, tuple(info[name])) for name in extra_keys)


_parse_meta_cached = functools.lru_cache(maxsize=64)(_parse_meta)  # the same few every step


def _decode_meta(entry: np.ndarray, cls) -> tuple[Meta, tuple]:
    if entry.dtype != np.uint8 or entry.ndim != 1:
        raise DecodeError(f"entry '__meta__': expected 1-D uint8 (JSON text), got {entry.dtype} "
                          f"of shape {entry.shape}")
    if entry.nbytes > MAX_META:
        raise DecodeError(f"entry '__meta__' of {entry.nbytes} bytes; at most {MAX_META}")
    raw = entry.tobytes()
    parse = _parse_meta_cached if len(raw) <= _CACHED_META else _parse_meta
    return parse(raw, cls.kind, cls.meta_fields)


def _read_npz(data: bytes, names: tuple[str, ...],
              max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Exactly ``names`` + ``__meta__`` from npz bytes, never unpickling, never trusting."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, bytearray or memoryview, got {type(data).__name__}")
    try:
        entries = read_npz(data, max_bytes)
    except NpzError as e:
        raise DecodeError(f"not a valid message: {e}") from None
    wanted = {*names, "__meta__"}
    if set(entries) != wanted:
        got = sorted(entries)
        raise DecodeError(f"entries: expected {sorted(wanted)}, got {got[:10]}"
                          + (f" and {len(got) - 10} more" if len(got) > 10 else ""))
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
        return cls(arrays["scores"], extra["sources"], meta)  # a tuple of str, as decoded

    def equals(self, other: "FeedbackBatch") -> bool:
        return (self.meta == other.meta and self.sources == other.sources
                and np.array_equal(self.scores, other.scores))


MESSAGES = {cls.kind: cls for cls in (TokenState, ActionBatch, FeedbackBatch)}

__all__ = ["SCHEMA_VERSION", "Meta", "TokenState", "ActionBatch", "FeedbackBatch", "BridgeError",
           "DecodeError", "FieldError", "DTypeError", "ShapeError", "NonFiniteError",
           "RangeError", "MetadataError", "MESSAGES", "MAX_PAYLOAD", "MAX_META"]
