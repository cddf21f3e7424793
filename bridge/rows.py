"""The bookkeeping of a batched LM backend, framework-free (book 1.3.1: the LM as environment).

Both backends -- ``lm_torch.backend.LMBackend`` and its Keras twin ``rl_tf.gpt_io.KerasLMBackend``
-- keep B rows of token ids, stop a row at ``<eos>`` or at its length limit, and answer with a
:class:`TokenState`; only the forward pass is theirs. :class:`Rows` is that shared part.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .protocol import ActionBatch, Meta, TokenState


class Rows:
    """B sequences being extended: prompts checked, ids, per-row limits, done flags."""

    def __init__(self, prompts: Sequence[Sequence[int]], vocab_size: int, block_size: int,
                 max_new_tokens: int, eos_id: int, pad_id: int):
        if not len(prompts) or min(len(p) for p in prompts) == 0:
            raise ValueError("reset needs at least one prompt, each of at least one token")
        self.longest = max(len(p) for p in prompts)
        if self.longest >= block_size:
            raise ValueError(f"a prompt of {self.longest} tokens leaves no room in the context "
                             f"of {block_size} tokens")
        if any(t < 0 or t >= vocab_size for p in prompts for t in p):
            raise ValueError(f"prompt token ids must be in [0, {vocab_size})")
        self.ids = [list(map(int, p)) for p in prompts]
        self.prompt_lengths = np.array([len(p) for p in prompts])
        self.limit = np.minimum(self.prompt_lengths + max_new_tokens, block_size)
        self.cache_len = min(self.longest + max_new_tokens, block_size)  #: KV slots needed
        self.done = np.zeros(len(prompts), dtype=bool)
        self.eos_id, self.pad_id = eos_id, pad_id

    def advance(self, actions: ActionBatch | np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
        """Append one token to every running row (rows already done ignore theirs); returns
        (the actions, which rows were running, the new lengths)."""
        a = actions.actions if isinstance(actions, ActionBatch) else np.asarray(actions)
        if a.shape != (len(self.ids),):
            raise ValueError(f"expected {len(self.ids)} actions, got shape {a.shape}")
        if self.done.all():
            raise RuntimeError("every sequence is done; call reset()")
        running = ~self.done
        for b in np.flatnonzero(running):
            self.ids[b].append(int(a[b]))
        lengths = np.array([len(r) for r in self.ids])
        self.done = self.done | (running & ((a == self.eos_id) | (lengths >= self.limit)))
        return a, running, lengths

    def state(self, hidden: np.ndarray, logits: np.ndarray, meta: Meta) -> TokenState:
        """The rows, right-padded, with the last hidden state and logits of each."""
        B, T = len(self.ids), max(len(r) for r in self.ids)
        tokens = np.full((B, T), self.pad_id, dtype=np.int32)
        for b, r in enumerate(self.ids):
            tokens[b, : len(r)] = r
        return TokenState(tokens, np.array([len(r) for r in self.ids], dtype=np.int32),
                          np.ascontiguousarray(hidden, dtype=np.float32),
                          np.ascontiguousarray(logits, dtype=np.float32), self.done.copy(), meta)

    def texts(self, decode, completions_only: bool = True) -> list[str]:
        """The rows as text (the completions, by default)."""
        return [decode(r[self.prompt_lengths[b]:] if completions_only else r)
                for b, r in enumerate(self.ids)]
