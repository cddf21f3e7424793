"""Sampling from the LM: temperature, top-k, top-p, seeded, batched with the KV cache (book 4.1.1).

Each step draws w_i ~ P(w_i | w_<i) / temperature, restricted to the top-k tokens and to the
smallest set whose probability reaches top-p. Prompts of different lengths are left-padded and
masked, so one forward pass serves the whole batch; a row stops at ``<eos>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from .model import GPT, KVCache


@dataclass(frozen=True)
class SampleConfig:
    """How to draw tokens."""

    max_new_tokens: int = field(default=64, metadata={"help": "tokens to generate at most"})
    temperature: float = field(default=1.0, metadata={"help": "softmax temperature (> 0)"})
    top_k: int = field(default=0, metadata={"help": "keep the k likeliest tokens (0 = all)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus mass in (0, 1] (1 = all)"})
    use_cache: bool = field(default=True, metadata={"help": "incremental decoding with KV cache"})

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, not {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, not {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], not {self.top_p}")


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set logits outside the top-k / top-p nucleus to -inf. logits (B, V)."""
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # mass before this token already enough
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def sample_next(logits: torch.Tensor, cfg: SampleConfig,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token per row from logits (B, V); returns (B,) int64."""
    logits = filter_logits(logits / cfg.temperature, cfg.top_k, cfg.top_p)
    cdf = F.softmax(logits, dim=-1).cumsum(-1)  # (B, V)
    # inverse-CDF sampling: one uniform per row (torch.multinomial draws V exponentials per row)
    u = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=cdf.shape[-1] - 1)


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, device="cpu"):
    """(ids (B, T), key_mask (B, T), positions (B, T)) for left-padded prompts."""
    T = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), T, dtype=torch.bool)
    for b, p in enumerate(prompts):
        if len(p):
            ids[b, T - len(p):] = torch.as_tensor(list(p), dtype=torch.long)
            mask[b, T - len(p):] = True
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


@torch.inference_mode()
def generate(model: GPT, prompts: Sequence[Sequence[int]], cfg: SampleConfig = SampleConfig(),
             eos_id: int = 2, pad_id: int = 0, seed: int | None = None) -> list[list[int]]:
    """Complete every prompt (a list of token ids, BOS included if wanted).

    Returns the new tokens of each row, up to and including its EOS (if one was drawn).
    Raises ValueError when a prompt is empty or does not leave room in the context.
    """
    if not len(prompts):
        return []
    lens = [len(p) for p in prompts]
    if min(lens) == 0:
        raise ValueError("every prompt needs at least one token (e.g. <bos>)")
    block = model.config.block_size
    if max(lens) >= block:
        raise ValueError(f"a prompt of {max(lens)} tokens leaves no room in the context of "
                         f"{block} tokens; shorten it")
    new = min(cfg.max_new_tokens, block - max(lens))
    device = next(model.parameters()).device
    gen = None
    if seed is not None:
        gen = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    ids, mask, pos = left_pad(prompts, pad_id, device)
    B, T0 = ids.shape
    done = torch.zeros(B, dtype=torch.bool, device=device)
    out = torch.full((B, new), pad_id, dtype=torch.long, device=device)
    lengths = mask.sum(-1)  # (B,) real tokens so far
    cache = KVCache(model.config, B, T0 + new, device) if cfg.use_cache else None
    logits = model(ids, key_mask=mask, positions=pos, cache=cache, last_only=True).logits
    for t in range(new):
        tok = sample_next(logits[:, -1], cfg, gen)
        tok = torch.where(done, torch.full_like(tok, pad_id), tok)
        out[:, t] = tok
        done |= tok == eos_id
        if bool(done.all()) or t == new - 1:
            break
        step_mask = ~done | (tok == eos_id)  # the EOS itself is a real token
        step_pos = lengths[:, None]
        lengths = lengths + 1
        if cache is not None:
            logits = model(tok[:, None], key_mask=step_mask[:, None], positions=step_pos,
                           cache=cache, last_only=True).logits
        else:
            ids = torch.cat([ids, tok[:, None]], 1)
            mask = torch.cat([mask, step_mask[:, None]], 1)
            pos = torch.cat([pos, step_pos], 1)
            logits = model(ids, key_mask=mask, positions=pos, last_only=True).logits
    model.train(was_training)
    result = []
    for row in out.tolist():
        result.append(row[: row.index(eos_id) + 1] if eos_id in row else row)
    return result
