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
from bridge.rows import Rows

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
        self.rows: Rows | None = None
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
        cfg, tok = self.model.config, self.tokenizer
        self.rows = Rows(prompts, cfg.vocab_size, cfg.block_size, self.max_new_tokens,
                         tok.eos_id, tok.pad_id)
        ids, mask, pos = left_pad(self.rows.ids, tok.pad_id, self.device)
        self._cache = KVCache(cfg, len(prompts), self.rows.cache_len, self.device)
        out = self.model(ids, key_mask=mask, positions=pos, cache=self._cache,
                         return_hidden=True, last_only=True)
        return self._state(out)

    @torch.inference_mode()
    def step(self, actions: ActionBatch | np.ndarray) -> TokenState:
        """Append one token to every running row; rows already done ignore theirs."""
        if self.rows is None:
            raise RuntimeError("call reset() before step()")
        a, running, lengths = self.rows.advance(actions)
        if self.rows.done.all() or self._cache.length >= self._cache.max_len:
            self.rows.done[:] = True
            return self._state(None)
        tok = torch.as_tensor(np.where(running, a, self.tokenizer.pad_id), dtype=torch.long,
                              device=self.device)[:, None]
        pos = torch.as_tensor(lengths - 1, dtype=torch.long, device=self.device)[:, None]
        out = self.model(tok, key_mask=torch.as_tensor(running, device=self.device)[:, None],
                         positions=pos, cache=self._cache, return_hidden=True, last_only=True)
        return self._state(out)

    def _state(self, out) -> TokenState:
        if out is not None:
            self._last = (to_numpy(out.hidden[:, -1]), to_numpy(out.logits[:, -1]))
        # everything finished: no forward was needed; the last (unused) values are repeated
        return self.rows.state(*self._last, self.meta)

    def texts(self, completions_only: bool = True) -> list[str]:
        """The current rows as text (the completions, by default)."""
        return self.rows.texts(self.tokenizer.decode, completions_only)
