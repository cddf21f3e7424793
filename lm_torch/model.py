"""A GPT-style causal Transformer language model with a KV cache (book 2.1.2, 4.1.1-4.1.2).

The model computes P(w_i | w_1..w_{i-1}) of book 4.1.1 for every position at once: token and
position embeddings, ``n_layer`` pre-LayerNorm blocks of causal multi-head self-attention
(book 4.1.2, Attention(Q, K, V) = softmax(QK^T / sqrt(d_k)) V) and an MLP, a final LayerNorm and
a linear head tied to the token embedding. Shapes use B (batch), T (new tokens), S (all keys,
cached + new), C (n_embd), nh (heads), hs (head size), V (vocabulary).

Two attention paths give the same outputs: ``sdpa`` (PyTorch's fused
``scaled_dot_product_attention``) and ``math`` (the formula written out, for teaching).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from bridge.config import check_config


@dataclass(frozen=True)
class GPTConfig:
    """Shape of the model. The defaults are the reference size of the benchmarks."""

    vocab_size: int = field(default=512, metadata={"help": "tokens in the vocabulary (V); pretrain "
                                              "takes it from the tokenizer"})
    block_size: int = field(default=128, metadata={"help": "longest context in tokens"})
    n_layer: int = field(default=4, metadata={"help": "Transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads per block"})
    n_embd: int = field(default=128, metadata={"help": "width of the residual stream (C)"})
    dropout: float = field(default=0.0, metadata={"help": "dropout probability in training"})
    bias: bool = field(default=True, metadata={"help": "biases in Linear and LayerNorm"})
    attn_impl: Literal["sdpa", "math"] = field(
        default="sdpa", metadata={"help": "attention path: fused or explicit formula"})

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        check_config(self, positive=("vocab_size", "block_size", "n_layer", "n_head", "n_embd"))
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("GPTConfig.dropout must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)


class GPTOutput(NamedTuple):
    logits: torch.Tensor  #: (B, T, V) next-token logits
    loss: torch.Tensor | None  #: mean cross-entropy over targets != -100, if targets given
    hidden: torch.Tensor | None  #: (B, T, C) final hidden states (after ln_f), if asked


class KVCache:
    """Keys and values of every layer for B sequences, preallocated up to ``max_len``.

    All rows share one write position ``length`` (prompts are left-padded); ``key_mask`` marks
    which cached positions are real tokens, so padding is never attended to.
    """

    def __init__(self, config: GPTConfig, batch_size: int, max_len: int,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        if max_len > config.block_size:
            raise ValueError(f"cache length {max_len} exceeds block_size {config.block_size}")
        hs = config.n_embd // config.n_head
        shape = (config.n_layer, batch_size, config.n_head, max_len, hs)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.key_mask = torch.zeros(batch_size, max_len, dtype=torch.bool, device=device)
        self.length = 0
        self.max_len = max_len

    def append(self, key_mask: torch.Tensor) -> tuple[int, int]:
        """Reserve T new positions; returns (start, end) of the slice written this step."""
        start, end = self.length, self.length + key_mask.shape[1]
        if end > self.max_len:
            raise ValueError(f"KV cache full: {end} positions > max_len {self.max_len}")
        self.key_mask[:, start:end] = key_mask
        self.length = end
        return start, end

    def select(self, rows: torch.Tensor) -> None:
        """Keep only the given batch rows (drop finished sequences)."""
        self.k, self.v = self.k[:, rows], self.v[:, rows]
        self.key_mask = self.key_mask[rows]


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.n_embd = config.n_head, config.n_embd
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)
        self.attn_impl = config.attn_impl

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                cache: KVCache | None = None, layer: int = 0,
                span: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """x (B, T, C); mask (B, 1, T, S) bool, True = may attend; None = plain causal."""
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        if cache is not None:
            start, end = span
            cache.k[layer, :, :, start:end] = k
            cache.v[layer, :, :, start:end] = v
            k, v = cache.k[layer, :, :, :end], cache.v[layer, :, :, :end]  # (B, nh, S, hs)
        p = self.dropout if self.training else 0.0
        if self.attn_impl == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p,
                                               is_causal=mask is None)
        else:
            y = attention_math(q, k, v, mask, p, self.training)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side
        return self.resid_dropout(self.c_proj(y))


def attention_math(q, k, v, mask=None, dropout_p: float = 0.0, training: bool = False):
    """Book 4.1.2 written out: softmax(Q K^T / sqrt(d_k)) V, with a boolean mask.

    q (B, nh, T, hs), k and v (B, nh, S, hs); mask (B, 1, T, S), True = may attend, or None for
    the plain causal mask (query i sees keys 0..i when T == S).
    """
    T, S = q.size(-2), k.size(-2)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))  # (B, nh, T, S)
    if mask is None:
        mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(diagonal=S - T)
    att = att.masked_fill(~mask, float("-inf"))
    att = F.softmax(att, dim=-1)
    att = F.dropout(att, p=dropout_p, training=training)
    return att @ v  # (B, nh, T, hs)


def attention_mask(keys: torch.Tensor, T: int) -> torch.Tensor:
    """Boolean mask (B, 1, T, S) for the last T of S positions: causal, padding excluded.

    keys (B, S) marks real tokens. A query always sees its own key, so a padding row never
    attends to nothing (its output is ignored anyway).
    """
    S = keys.shape[1]
    if T == 1:  # decoding one token: it may see every real key, and itself
        keys = keys.clone()
        keys[:, -1] = True
        return keys[:, None, None, :]
    causal = torch.ones(T, S, dtype=torch.bool, device=keys.device).tril(diagonal=S - T)
    diag = torch.zeros(T, S, dtype=torch.bool, device=keys.device)
    diag[torch.arange(T), torch.arange(S - T, S)] = True
    return ((causal & keys[:, None, :]) | diag)[:, None]


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, mask, cache=None, layer=0, span=(0, 0)):
        x = x + self.attn(self.ln_1(x), mask, cache, layer, span)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """The causal language model P(w_i | w_<i; theta) of book 4.1.1."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Parameters, counting the tied embedding once and leaving out position embeddings."""
        return sum(p.numel() for p in self.parameters()) - self.wpe.weight.numel()

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                key_mask: torch.Tensor | None = None, positions: torch.Tensor | None = None,
                cache: KVCache | None = None, return_hidden: bool = False,
                last_only: bool = False) -> GPTOutput:
        """Logits for every position of ``idx`` (B, T).

        targets   (B, T) next-token ids, -100 where no loss is wanted (book 4.1.3).
        key_mask  (B, T) True for real tokens, False for padding (padding is never attended).
        positions (B, T) position ids; default: consecutive from the cache length (or 0).
        cache     a :class:`KVCache`; the new keys and values are appended to it.
        last_only compute logits for the last position only (generation).
        """
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if positions is None:
            positions = torch.arange(start, start + T, device=idx.device).expand(B, T)
        if int(positions.max()) >= self.config.block_size:
            raise ValueError(f"sequence of {int(positions.max()) + 1} tokens exceeds the "
                             f"context of {self.config.block_size} (block_size)")
        mask, span = None, (0, 0)
        if cache is not None or key_mask is not None:
            if key_mask is None:
                key_mask = torch.ones(B, T, dtype=torch.bool, device=idx.device)
            keys = key_mask
            if cache is not None:
                span = cache.append(key_mask)
                keys = cache.key_mask[:, : span[1]]  # (B, S): cached + new keys
            mask = attention_mask(keys, T)
        x = self.drop(self.wte(idx) + self.wpe(positions))  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, cache, i, span)
        h = self.ln_f(x)  # (B, T, C)
        if last_only:
            h = h[:, -1:]
        logits = self.lm_head(h)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1),
                                   ignore_index=-100)
        return GPTOutput(logits, loss, h if return_hidden else None)
