"""Training batches: packed token streams (pre-training) and prompt/completion pairs (SFT).

Every batch is a pure function of (seed, step): a resumed run draws exactly the batches the
uninterrupted run would have drawn, which is what makes resume continue the same loss curve.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .tokenizer import Tokenizer


def encode_stream(tokenizer: Tokenizer, texts: Sequence[str]) -> np.ndarray:
    """All documents as one stream ``<bos> doc <eos> <bos> doc <eos> ...`` (int64)."""
    ids: list[int] = []
    for t in texts:
        ids.extend(tokenizer.encode(t, bos=True, eos=True))
    return np.asarray(ids, dtype=np.int64)


class PackedLMData:
    """Windows of ``block_size + 1`` tokens from a token stream (book 4.1.3).

    Each window starts at a document's ``<bos>``, as generation does: position 0 always holds
    ``<bos>`` and the model learns how documents begin (windows then run on into the next ones).
    """

    def __init__(self, stream: np.ndarray, block_size: int, batch_size: int, seed: int = 0,
                 bos_id: int = 1):
        if len(stream) <= block_size + 1:
            raise ValueError(f"token stream of {len(stream)} tokens is shorter than one "
                             f"block of {block_size + 1}")
        self.stream = torch.from_numpy(np.ascontiguousarray(stream, dtype=np.int64))
        self.block_size, self.batch_size, self.seed = block_size, batch_size, seed
        starts = np.flatnonzero(stream[: len(stream) - block_size - 1] == bos_id)
        self.starts = starts if len(starts) else np.arange(len(stream) - block_size - 1)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y), each (B, T): y is x shifted by one token."""
        rng = np.random.default_rng([self.seed, step])
        starts = self.starts[rng.integers(0, len(self.starts), self.batch_size)]
        idx = torch.from_numpy(starts)[:, None] + torch.arange(self.block_size + 1)
        w = self.stream[idx]  # (B, T+1)
        return w[:, :-1], w[:, 1:]

    def eval_batches(self, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``n`` fixed, non-overlapping batches from the start of the stream."""
        out, T, B = [], self.block_size, self.batch_size
        for i in range(n):
            s = i * B * T
            if s + B * T + 1 > len(self.stream):
                break
            w = self.stream[s: s + B * T + 1]
            out.append((w[:-1].view(B, T), w[1:].view(B, T)))
        return out or [self.batch(0)]


class SFTData:
    """Prompt -> completion pairs; the loss falls on the completion (and its EOS) only."""

    def __init__(self, tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]],
                 block_size: int, batch_size: int, seed: int = 0):
        self.rows: list[tuple[list[int], int]] = []
        for prompt, completion in pairs:
            p = tokenizer.encode(prompt, bos=True)
            c = tokenizer.encode(" " + completion, eos=True)
            ids = (p + c)[: block_size + 1]
            self.rows.append((ids, len(p)))
        if not self.rows:
            raise ValueError("SFT needs at least one (prompt, completion) pair")
        self.pad_id = tokenizer.pad_id
        self.batch_size, self.seed = batch_size, seed

    def _collate(self, rows) -> tuple[torch.Tensor, torch.Tensor]:
        T = max(len(ids) for ids, _ in rows) - 1
        x = torch.full((len(rows), T), self.pad_id, dtype=torch.long)
        y = torch.full((len(rows), T), -100, dtype=torch.long)
        for b, (ids, n_prompt) in enumerate(rows):
            t = torch.tensor(ids)
            x[b, : len(ids) - 1] = t[:-1]
            y[b, : len(ids) - 1] = t[1:]
            y[b, : n_prompt - 1] = -100  # no loss on predicting the prompt itself
        return x, y

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        pick = rng.integers(0, len(self.rows), self.batch_size)
        return self._collate([self.rows[i] for i in pick])

    def eval_batches(self, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        B = self.batch_size
        chunks = [self.rows[i: i + B] for i in range(0, min(len(self.rows), n * B), B)]
        return [self._collate(c) for c in chunks]


def unigram_perplexity(train: np.ndarray, val: np.ndarray, vocab_size: int) -> float:
    """Perplexity of an add-one unigram model fitted on ``train``, measured on ``val``.

    The baseline the Transformer must beat (book 1.1.1: the earliest language models).
    """
    counts = np.bincount(train, minlength=vocab_size).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    return float(np.exp(-logp[val].mean()))
