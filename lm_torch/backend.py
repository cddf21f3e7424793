"""The LM side of the bridge: a frozen LM stepping B sequences with a KV cache (book 1.3.1).

The language model is the environment of book 1.3.1 / 3.1.2: the state is the token prefix, an
action is the next token. :class:`LMBackend` holds the frozen LM, its tokenizer and a batched
KV cache; ``reset(prompts)`` and ``step(actions)`` return a :class:`bridge.protocol.TokenState`
(tokens, lengths, the last hidden state, the reference next-token logits, done). A row is done
after ``<eos>`` or at its length limit; later actions for it are ignored. One Torch forward per
step serves the whole batch. Only NumPy leaves this module (``bridge.protocol`` is NumPy-only).
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import torch

from bridge.protocol import ActionBatch, Meta, TokenState

from .checkpoint import load_checkpoint
from .model import GPT, KVCache
from .sample import left_pad
from .tokenizer import Tokenizer


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A CPU tensor's NumPy view: no copy (they share memory); other devices are copied."""
    return t.detach().cpu().numpy()


def from_numpy(a: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``a``'s memory (no copy)."""
    return torch.from_numpy(a)


def fingerprint(model: GPT, tokenizer: Tokenizer) -> str:
    """A short hash of the LM's config and weights and of the tokenizer."""
    h = hashlib.sha256(repr(sorted(model.config.to_dict().items())).encode())
    h.update(tokenizer.fingerprint().encode())
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(to_numpy(p.float().contiguous()).tobytes())
    return h.hexdigest()[:16]


class LMBackend:
    """A frozen LM as a batched environment core: reset / step over NumPy messages."""

    def __init__(self, model: GPT, tokenizer: Tokenizer, max_new_tokens: int = 32,
                 device: str | torch.device = "cpu"):
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        self.model = model.to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.tokenizer, self.device = tokenizer, torch.device(device)
        self.max_new_tokens = max_new_tokens
        self.meta = Meta(model.config.vocab_size, model.config.n_embd,
                         fingerprint(model, tokenizer))
        self.rows: list[list[int]] = []
        self._cache: KVCache | None = None

    @classmethod
    def from_checkpoint(cls, path, **kwargs) -> "LMBackend":
        ck = load_checkpoint(path)
        return cls(ck.model, ck.tokenizer, **kwargs)

    # --- the environment core ---------------------------------------------------------------
    def encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        return [[self.tokenizer.bos_id] + self.tokenizer.encode(p) for p in prompts]

    @torch.inference_mode()
    def reset(self, prompts: Sequence[Sequence[int]]) -> TokenState:
        """Start B sequences from prompts given as token ids (``<bos>`` included if wanted)."""
        if not len(prompts) or min(len(p) for p in prompts) == 0:
            raise ValueError("reset needs at least one prompt, each of at least one token")
        V, block = self.model.config.vocab_size, self.model.config.block_size
        longest = max(len(p) for p in prompts)
        if longest >= block:
            raise ValueError(f"a prompt of {longest} tokens leaves no room in the context of "
                             f"{block} tokens")
        if any(t < 0 or t >= V for p in prompts for t in p):
            raise ValueError(f"prompt token ids must be in [0, {V})")
        self.rows = [list(map(int, p)) for p in prompts]
        self.prompt_lengths = np.array([len(p) for p in prompts])
        self.limit = np.minimum(self.prompt_lengths + self.max_new_tokens, block)
        self.done = np.zeros(len(prompts), dtype=bool)
        ids, mask, pos = left_pad(self.rows, self.tokenizer.pad_id, self.device)
        self._cache = KVCache(self.model.config, len(prompts),
                              min(longest + self.max_new_tokens, block), self.device)
        out = self.model(ids, key_mask=mask, positions=pos, cache=self._cache,
                         return_hidden=True, last_only=True)
        return self._state(out)

    @torch.inference_mode()
    def step(self, actions: ActionBatch | np.ndarray) -> TokenState:
        """Append one token to every running row; rows already done ignore theirs."""
        if self._cache is None:
            raise RuntimeError("call reset() before step()")
        a = actions.actions if isinstance(actions, ActionBatch) else np.asarray(actions)
        if a.shape != (len(self.rows),):
            raise ValueError(f"expected {len(self.rows)} actions, got shape {a.shape}")
        if self.done.all():
            raise RuntimeError("every sequence is done; call reset()")
        running = ~self.done
        for b in np.flatnonzero(running):
            self.rows[b].append(int(a[b]))
        lengths = np.array([len(r) for r in self.rows])
        self.done = self.done | (running & ((a == self.tokenizer.eos_id) | (lengths >= self.limit)))
        if self.done.all() or self._cache.length >= self._cache.max_len:
            self.done[:] = True
            return self._state(None)
        tok = torch.as_tensor(np.where(running, a, self.tokenizer.pad_id), dtype=torch.long,
                              device=self.device)[:, None]
        pos = torch.as_tensor(lengths - 1, dtype=torch.long, device=self.device)[:, None]
        out = self.model(tok, key_mask=torch.as_tensor(running, device=self.device)[:, None],
                         positions=pos, cache=self._cache, return_hidden=True, last_only=True)
        return self._state(out)

    def _state(self, out) -> TokenState:
        B = len(self.rows)
        T = max(len(r) for r in self.rows)
        tokens = np.full((B, T), self.tokenizer.pad_id, dtype=np.int32)
        for b, r in enumerate(self.rows):
            tokens[b, : len(r)] = r
        if out is not None:
            hidden = to_numpy(out.hidden[:, -1])
            logits = to_numpy(out.logits[:, -1])
            self._last = (hidden, logits)
        else:  # everything finished: no forward needed; repeat the last (unused) values
            hidden, logits = self._last
        return TokenState(tokens, np.array([len(r) for r in self.rows], dtype=np.int32),
                          np.ascontiguousarray(hidden, dtype=np.float32),
                          np.ascontiguousarray(logits, dtype=np.float32), self.done.copy(),
                          self.meta)

    def texts(self, completions_only: bool = True) -> list[str]:
        """The current rows as text (the completions, by default)."""
        out = []
        for b, r in enumerate(self.rows):
            ids = r[self.prompt_lengths[b]:] if completions_only else r
            out.append(self.tokenizer.decode(ids))
        return out
