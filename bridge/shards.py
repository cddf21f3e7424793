"""One iteration's rollout in shards, and a shard's result on the wire (book 3.1; DESIGN.md
"Scale-out").

The B sequences of an iteration are split into ``shards`` contiguous groups of rows, a fixed
function of (B, shards) (:func:`shard_rows`). A shard is the unit of work: it is rolled out
alone -- here, one after another (:func:`rollout_in_shards`), or by Ray workers side by side
(``rlaif_lab.ray_rollout``) -- and the pieces are put back in row order (:func:`merge`).
Sequence b draws its Gumbel noise from ``(seed, b)`` whichever shard or worker runs it, and a
shard's numbers do not depend on the process that computes them, so the merged rollout is the
same on 1 worker or N. They do depend on the shard sizes -- a BLAS kernel's rounding changes
with the number of rows it multiplies, by about 1e-6 -- which is why ``rl.shards`` is part of
the run's config and the worker count is not.

A shard's result crosses a process boundary as bytes (:func:`shard_to_bytes`): the final
:class:`TokenState` as the protocol encodes it, beside the :class:`TokenRollout`'s arrays, in
one strict ``.npz``. :func:`shard_from_bytes` trusts nothing: it checks every entry's dtype and
shape against the others and against the LM's metadata, and raises :class:`ShardError` (a
:class:`BridgeError`) naming the field. This module imports NumPy only.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .npz import NpzError, read_npz, write_npz
from .protocol import BridgeError, Meta, TokenState
from .rollout import TokenPolicy, TokenRollout, rollout

#: the TokenRollout's fields on the wire: dtype and rank ((T, B) or (T, B, D|V))
FIELDS = {"hidden": (np.float32, 3), "ref_logits": (np.float32, 3), "actions": (np.int32, 2),
          "logp": (np.float32, 2), "ref_logp": (np.float32, 2), "kl_exact": (np.float32, 2),
          "mask": (np.bool_, 2)}


class ShardError(BridgeError):
    """A shard's result that does not decode to a consistent rollout."""


def shard_rows(batch_size: int, shards: int) -> list[np.ndarray]:
    """The row indices of each shard: ``shards`` contiguous groups, sizes differing by at most
    one (``np.array_split``). ValueError unless 1 <= shards <= batch_size."""
    if not 1 <= shards <= batch_size:
        raise ValueError(f"shards must be in [1, {batch_size}] (the batch size), got {shards}")
    return np.array_split(np.arange(batch_size), shards)


def rollout_in_shards(env, policy: TokenPolicy, prompts: Sequence[str], seed: int,
                      shards: int = 1) -> tuple[TokenRollout, TokenState]:
    """:func:`bridge.rollout.rollout` of ``prompts``, shard by shard in this process, merged;
    ``env`` then holds the whole batch (:meth:`BatchedTextEnv.adopt`). One shard is exactly
    the plain rollout."""
    if shards == 1:
        return rollout(env, policy, prompts, seed)
    parts = [rollout(env, policy, [prompts[i] for i in rows], seed, row_ids=rows)
             for rows in shard_rows(len(prompts), shards)]
    ro, final = merge(parts, env.tokenizer.pad_id)
    env.adopt(prompts, final)
    return ro, final


def merge(parts: Sequence[tuple[TokenRollout, TokenState]],
          pad_id: int) -> tuple[TokenRollout, TokenState]:
    """The shards' (rollout, final state) pairs, in row order, as one batch: time padded to
    the longest shard (mask False there), tokens right-padded with ``pad_id``."""
    T = max(ro.mask.shape[0] for ro, _ in parts)
    cols = {}
    for name in FIELDS:
        pieces = []
        for ro, _ in parts:
            a = getattr(ro, name)
            pad = [(0, T - a.shape[0])] + [(0, 0)] * (a.ndim - 1)
            pieces.append(np.pad(a, pad))  # zeros; False for the mask
        cols[name] = np.concatenate(pieces, axis=1)
    L = max(f.tokens.shape[1] for _, f in parts)
    tokens = np.concatenate([np.pad(f.tokens, [(0, 0), (0, L - f.tokens.shape[1])],
                                    constant_values=pad_id) for _, f in parts])
    finals = [f for _, f in parts]
    final = TokenState(tokens, *(np.concatenate([getattr(f, k) for f in finals])
                                 for k in ("lengths", "hidden", "logits", "done")),
                       finals[0].meta)
    return TokenRollout(**cols), final


def shard_to_bytes(ro: TokenRollout, final: TokenState) -> bytes:
    """One shard's result as ``.npz`` bytes: the rollout's arrays and ``final`` (its own
    protocol bytes, as uint8)."""
    arrays = {name: np.ascontiguousarray(getattr(ro, name), dtype) for name, (dtype, _)
              in FIELDS.items()}
    return write_npz({**arrays, "final": np.frombuffer(final.to_bytes(), np.uint8)})


def shard_from_bytes(data: bytes, expect: Meta) -> tuple[TokenRollout, TokenState]:
    """Decode :func:`shard_to_bytes`' bytes for the LM of ``expect``; ShardError (or another
    BridgeError, from the final state) for anything else."""
    try:
        entries = read_npz(data)
    except NpzError as e:
        raise ShardError(f"shard result: {e}") from None
    want = set(FIELDS) | {"final"}
    if set(entries) != want:
        raise ShardError(f"shard result: entries {sorted(entries)}, expected {sorted(want)}")
    raw = entries.pop("final")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ShardError(f"shard result: final must be uint8 [n], got {raw.dtype} {raw.shape}")
    final = TokenState.from_bytes(raw.tobytes(), expect)
    T = entries["mask"].shape[0] if entries["mask"].ndim == 2 else -1
    width = {"hidden": expect.hidden_size, "ref_logits": expect.vocab_size}
    for name, (dtype, ndim) in FIELDS.items():
        a = entries[name]
        shape = (T, final.batch_size) + ((width[name],) if ndim == 3 else ())
        if a.dtype != dtype or a.shape != shape:
            raise ShardError(f"shard result: {name} must be {np.dtype(dtype)} {shape}, got "
                             f"{a.dtype} {a.shape}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ShardError(f"shard result: {name} holds NaN or inf")
    if (entries["actions"] < 0).any() or (entries["actions"] >= expect.vocab_size).any():
        raise ShardError(f"shard result: actions must be token ids in [0, {expect.vocab_size})")
    return TokenRollout(**{k: np.array(v) for k, v in entries.items()}), final
