"""The Keras 3 twin of ``lm_torch/model.py``: the same GPT, read from the same checkpoint
(book 2.1.2, 4.1.1-4.1.2).

P(w_i | w_1..w_{i-1}) of book 4.1.1 for every position at once: token and position embeddings,
``n_layer`` pre-LayerNorm blocks of causal multi-head self-attention (book 4.1.2,
Attention(Q, K, V) = softmax(QK^T / sqrt(d_k)) V) and an MLP, a final LayerNorm and a head tied
to the token embedding. Layer and attribute names are those of the Torch file (``wte``, ``wpe``,
``blocks[i].ln_1 / attn.c_attn / attn.c_proj / ln_2 / mlp.c_fc / mlp.c_proj``, ``ln_f``), and so
are the shape letters: B (batch), T (new tokens), S (all keys), C, nh, hs, V. The differences are
the framework's: ``Dense.kernel`` is the transpose of ``Linear.weight`` (:data:`WEIGHT_MAP`), and
TF tensors are values, so the :class:`KVCache` is passed in and the updated one returned
(``GPTOutput.cache``) instead of being written in place. The cache keeps its full length and
masks the unused slots, so every decoding step has the same shapes (one ``tf.function`` trace,
XLA-friendly). ``tests/test_parity_gpt.py`` holds the twins together to 1e-5.

Also here: :func:`make_adamw` (Keras AdamW set up to take the same step as
``lm_torch.train``'s torch AdamW) and :func:`train_step`. Loading a Torch checkpoint, sampling
and the bridge backend are in ``rl_tf/gpt_io.py``.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Literal, NamedTuple

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from bridge.config import check_config

LN_EPS = 1e-5  #: torch.nn.LayerNorm's epsilon (Keras' default is 1e-3)
FORMAT_VERSION = 1  #: the checkpoint format of lm_torch.checkpoint


@dataclass(frozen=True)
class GPTConfig:
    """Shape of the model: the fields of ``lm_torch.model.GPTConfig``, with the same defaults."""

    vocab_size: int = field(default=512, metadata={"help": "tokens in the vocabulary (V)"})
    block_size: int = field(default=128, metadata={"help": "longest context in tokens"})
    n_layer: int = field(default=4, metadata={"help": "Transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads per block"})
    n_embd: int = field(default=128, metadata={"help": "width of the residual stream (C)"})
    dropout: float = field(default=0.0, metadata={"help": "dropout probability in training"})
    bias: bool = field(default=True, metadata={"help": "biases in Dense and LayerNorm"})
    attn_impl: Literal["sdpa", "math"] = field(
        default="sdpa", metadata={"help": "attention path: keras.ops.dot_product_attention or "
                                  "the explicit formula"})

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        check_config(self, positive=("vocab_size", "block_size", "n_layer", "n_head", "n_embd"))
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("GPTConfig.dropout must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, section: Any) -> "GPTConfig":
        """From a checkpoint's config.json "model" section; ValueError naming a bad field."""
        if not isinstance(section, dict):
            raise ValueError(f"the model config must be a JSON object, not {section!r}")
        kinds = {f.name: type(f.default) for f in fields(cls) if f.default is not MISSING}
        for key, value in section.items():
            if key not in kinds:
                raise ValueError(f"unknown model config field {key!r} (known: {', '.join(kinds)})")
            kind = (int, float) if kinds[key] is float else kinds[key]
            if isinstance(value, bool) != (kinds[key] is bool) or not isinstance(value, kind):
                raise ValueError(f"model config {key} must be a {kinds[key].__name__}, "
                                 f"not {value!r}")
        return cls(**section)


class GPTOutput(NamedTuple):
    logits: tf.Tensor  #: (B, T, V) next-token logits
    loss: tf.Tensor | None  #: mean cross-entropy over targets != -100, if targets given
    hidden: tf.Tensor | None  #: (B, T, C) final hidden states (after ln_f), if asked
    cache: "KVCache | None"  #: the cache with this call's keys and values written


class KVCache(NamedTuple):
    """Keys and values of every layer for B sequences, ``max_len`` slots each (a value).

    All rows share one write position ``length`` (prompts are left-padded); ``key_mask`` marks
    which slots hold real tokens, so padding and unused slots are never attended to.
    """

    k: tuple  #: n_layer tensors (B, nh, max_len, hs)
    v: tuple  #: n_layer tensors (B, nh, max_len, hs)
    key_mask: tf.Tensor  #: (B, max_len) bool
    length: tf.Tensor  #: int32 scalar: slots written so far

    @classmethod
    def empty(cls, config: GPTConfig, batch_size: int, max_len: int) -> "KVCache":
        if max_len > config.block_size:
            raise ValueError(f"cache length {max_len} exceeds block_size {config.block_size}")
        hs = config.n_embd // config.n_head
        zeros = tf.zeros((batch_size, config.n_head, max_len, hs))
        return cls((zeros,) * config.n_layer, (zeros,) * config.n_layer,
                   tf.zeros((batch_size, max_len), tf.bool), tf.constant(0, tf.int32))

    @property
    def max_len(self) -> int:
        return int(self.key_mask.shape[1])

    def select(self, rows) -> "KVCache":
        """Only the given batch rows (drop finished sequences)."""
        take = lambda t: tf.gather(t, rows)  # noqa: E731
        return KVCache(tuple(map(take, self.k)), tuple(map(take, self.v)), take(self.key_mask),
                       self.length)


def attention_mask(keys, start, T: int):
    """Boolean mask (B, 1, T, S): query t (at slot start + t) sees real keys up to itself.

    keys (B, S) marks real tokens. A query always sees its own key, so a padding row never
    attends to nothing (its output is ignored anyway) -- the rule of lm_torch's attention_mask.
    """
    S = ops.shape(keys)[1]
    q = start + ops.arange(T, dtype="int32")[:, None]  # (T, 1): the slot of each query
    s = ops.arange(S, dtype="int32")[None, :]  # (1, S)
    allowed = ops.logical_and((s <= q)[None], ops.cast(keys, "bool")[:, None, :])  # (B, T, S)
    return ops.logical_or(allowed, (s == q)[None])[:, None]  # (B, 1, T, S)


def attention_math(q, k, v, mask=None, dropout=None, training=False):
    """Book 4.1.2 written out: softmax(Q K^T / sqrt(d_k)) V, with a boolean mask.

    q (B, nh, T, hs), k and v (B, nh, S, hs); mask (B, 1, T, S), True = may attend, or None for
    the plain causal mask (T == S).
    """
    T, S = ops.shape(q)[-2], ops.shape(k)[-2]
    att = ops.matmul(q, ops.swapaxes(k, -2, -1)) * (1.0 / math.sqrt(k.shape[-1]))  # (B,nh,T,S)
    if mask is None:
        mask = ops.tril(ops.ones((T, S), "bool"), S - T)
    att = ops.where(mask, att, float("-inf"))
    att = ops.softmax(att, axis=-1)
    if dropout is not None:
        att = dropout(att, training=training)
    return ops.matmul(att, v)  # (B, nh, T, hs)


def _normal(std: float):
    return keras.initializers.RandomNormal(mean=0.0, stddev=std)


class CausalSelfAttention(layers.Layer):
    def __init__(self, config: GPTConfig, **kwargs):
        super().__init__(**kwargs)
        self.n_head, self.n_embd = config.n_head, config.n_embd
        proj_std = 0.02 / math.sqrt(2 * config.n_layer)  # GPT-2's scaled residual init
        self.c_attn = layers.Dense(3 * config.n_embd, use_bias=config.bias,
                                   kernel_initializer=_normal(0.02), name="c_attn")
        self.c_proj = layers.Dense(config.n_embd, use_bias=config.bias,
                                   kernel_initializer=_normal(proj_std), name="c_proj")
        self.attn_dropout = layers.Dropout(config.dropout)
        self.resid_dropout = layers.Dropout(config.dropout)
        self.dropout, self.attn_impl = config.dropout, config.attn_impl

    def build(self, input_shape):
        self.c_attn.build(input_shape)
        self.c_proj.build(input_shape)

    def call(self, x, attn_mask=None, layer_cache=None, start=0, training=False):
        """x (B, T, C); attn_mask (B, 1, T, S) bool, True = may attend, None = plain causal;
        layer_cache (k, v) of this layer or None. Returns y (B, T, C) and the new (k, v)."""
        B, T, C = ops.shape(x)
        nh, hs = self.n_head, self.n_embd // self.n_head
        q, k, v = ops.split(self.c_attn(x), 3, axis=2)  # each (B, T, C)
        q = ops.transpose(ops.reshape(q, (B, T, nh, hs)), (0, 2, 1, 3))  # (B, nh, T, hs)
        k = ops.transpose(ops.reshape(k, (B, T, nh, hs)), (0, 2, 1, 3))  # (B, nh, T, hs)
        v = ops.transpose(ops.reshape(v, (B, T, nh, hs)), (0, 2, 1, 3))  # (B, nh, T, hs)
        if layer_cache is not None:
            k = ops.slice_update(layer_cache[0], (0, 0, start, 0), k)  # (B, nh, S, hs)
            v = ops.slice_update(layer_cache[1], (0, 0, start, 0), v)  # (B, nh, S, hs)
        if self.attn_impl == "sdpa" and not (training and self.dropout):
            y = ops.dot_product_attention(  # Keras' layout is (B, T, nh, hs)
                ops.transpose(q, (0, 2, 1, 3)), ops.transpose(k, (0, 2, 1, 3)),
                ops.transpose(v, (0, 2, 1, 3)), mask=attn_mask, is_causal=attn_mask is None)
        else:
            y = attention_math(q, k, v, attn_mask, self.attn_dropout, training)
            y = ops.transpose(y, (0, 2, 1, 3))  # (B, T, nh, hs)
        y = ops.reshape(y, (B, T, C))  # (B, T, C): heads side by side
        return self.resid_dropout(self.c_proj(y), training=training), (k, v)


class MLP(layers.Layer):
    def __init__(self, config: GPTConfig, **kwargs):
        super().__init__(**kwargs)
        self.c_fc = layers.Dense(4 * config.n_embd, use_bias=config.bias,
                                 kernel_initializer=_normal(0.02), name="c_fc")
        self.c_proj = layers.Dense(config.n_embd, use_bias=config.bias, name="c_proj",
                                   kernel_initializer=_normal(0.02 / math.sqrt(2 * config.n_layer)))
        self.dropout = layers.Dropout(config.dropout)

    def build(self, input_shape):
        self.c_fc.build(input_shape)
        self.c_proj.build(tuple(input_shape[:-1]) + (self.c_fc.units,))

    def call(self, x, training=False):
        # torch's F.gelu is the exact erf form; keras.ops.gelu defaults to the tanh approximation
        h = ops.gelu(self.c_fc(x), approximate=False)
        return self.dropout(self.c_proj(h), training=training)


class Block(layers.Layer):
    """Pre-LayerNorm Transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig, **kwargs):
        super().__init__(**kwargs)
        self.ln_1 = layers.LayerNormalization(epsilon=LN_EPS, center=config.bias, name="ln_1")
        self.attn = CausalSelfAttention(config, name="attn")
        self.ln_2 = layers.LayerNormalization(epsilon=LN_EPS, center=config.bias, name="ln_2")
        self.mlp = MLP(config, name="mlp")

    def build(self, input_shape):
        for sub in (self.ln_1, self.attn, self.ln_2, self.mlp):
            sub.build(input_shape)

    def call(self, x, attn_mask=None, layer_cache=None, start=0, training=False):
        a, kv = self.attn(self.ln_1(x), attn_mask=attn_mask, layer_cache=layer_cache, start=start,
                          training=training)
        x = x + a
        return x + self.mlp(self.ln_2(x), training=training), kv


class GPT(keras.Model):
    """The causal language model P(w_i | w_<i; theta) of book 4.1.1 (twin of lm_torch's GPT)."""

    def __init__(self, config: GPTConfig, **kwargs):
        super().__init__(name=kwargs.pop("name", "gpt"), **kwargs)
        self.config = config
        self.wte = layers.Embedding(config.vocab_size, config.n_embd, name="wte",
                                    embeddings_initializer=_normal(0.02))
        self.wpe = layers.Embedding(config.block_size, config.n_embd, name="wpe",
                                    embeddings_initializer=_normal(0.02))
        self.drop = layers.Dropout(config.dropout)
        self.blocks = [Block(config, name=f"blocks_{i}") for i in range(config.n_layer)]
        self.ln_f = layers.LayerNormalization(epsilon=LN_EPS, center=config.bias, name="ln_f")
        self.build((None, None))  # weights exist from the start, as in torch

    def build(self, input_shape):
        self.wte.build(input_shape)
        self.wpe.build(input_shape)
        width = tuple(input_shape) + (self.config.n_embd,)
        for sub in (*self.blocks, self.ln_f):
            sub.build(width)
        self.built = True

    def num_params(self) -> int:
        """Parameters, leaving out position embeddings (the head is the tied embedding)."""
        sizes = [int(np.prod(v.shape)) for v in self.weights]
        return sum(sizes) - int(np.prod(self.wpe.embeddings.shape))

    def call(self, idx, targets=None, key_mask=None, positions=None, cache=None,
             return_hidden=False, last_only=False, training=False) -> GPTOutput:
        """Logits for every position of ``idx`` (B, T); the arguments of lm_torch's forward.

        targets   (B, T) next-token ids, -100 where no loss is wanted (book 4.1.3).
        key_mask  (B, T) True for real tokens, False for padding (padding is never attended).
        positions (B, T) position ids; default: consecutive from the cache length (or 0).
        cache     a :class:`KVCache`; the returned ``GPTOutput.cache`` holds the new keys.
        last_only compute logits for the last position only (generation).
        """
        B, T = ops.shape(idx)
        start = cache.length if cache is not None else 0
        if positions is None:
            positions = ops.broadcast_to(start + ops.arange(T, dtype="int32"), (B, T))
        if tf.executing_eagerly():  # a compiled step cannot raise; its caller checks instead
            if int(ops.max(positions)) >= self.config.block_size:
                raise ValueError(f"sequence of {int(ops.max(positions)) + 1} tokens exceeds the "
                                 f"context of {self.config.block_size} (block_size)")
            if cache is not None and int(start) + T > cache.max_len:
                raise ValueError(f"KV cache full: {int(start) + T} positions > max_len "
                                 f"{cache.max_len}")
        mask = None
        if cache is not None or key_mask is not None:
            key_mask = ops.ones((B, T), "bool") if key_mask is None else ops.cast(key_mask, "bool")
            keys = key_mask
            if cache is not None:
                keys = ops.slice_update(cache.key_mask, (0, start), key_mask)  # (B, S)
            mask = attention_mask(keys, start, T)
        x = self.drop(self.wte(idx) + self.wpe(positions), training=training)  # (B, T, C)
        new_k, new_v = [], []
        for i, block in enumerate(self.blocks):
            kv = None if cache is None else (cache.k[i], cache.v[i])
            x, (k, v) = block(x, attn_mask=mask, layer_cache=kv, start=start, training=training)
            new_k.append(k)
            new_v.append(v)
        h = self.ln_f(x)  # (B, T, C)
        if last_only:
            h = h[:, -1:]
        logits = ops.matmul(h, ops.transpose(self.wte.embeddings))  # (B, T, V): tied head
        loss = None
        if targets is not None:
            valid = targets != -100
            ce = ops.sparse_categorical_crossentropy(ops.where(valid, targets, 0), logits,
                                                     from_logits=True)  # (B, T)
            loss = ops.sum(ops.where(valid, ce, 0.0)) / ops.sum(ops.cast(valid, ce.dtype))
        if cache is not None:
            cache = KVCache(tuple(new_k), tuple(new_v), keys, start + T)
        return GPTOutput(logits, loss, h if return_hidden else None, cache)


# --- training (lm_torch/train.py) ----------------------------------------------------------------
def make_adamw(model: GPT, lr: float = 3e-3, weight_decay: float = 0.1,
               betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8):
    """Keras AdamW taking torch.optim.AdamW's first step (``lm_torch.train.make_optimizer``).

    * betas: torch (0.9, 0.999) by default, train.py (0.9, 0.95); Keras' default beta_2 is also
      0.999, so both are set explicitly.
    * epsilon: torch divides by sqrt(v_hat) + eps (bias-corrected v); Keras by sqrt(v) + eps_hat
      with the correction folded into the step size, i.e. eps_hat = eps * sqrt(1 - beta2^t).
      Keras takes one constant, so eps_hat = eps * sqrt(1 - beta2) matches step 1 exactly; later
      steps differ in the denominator by less than eps (Keras' default 1e-7 vs torch's 1e-8).
    * weight decay: both decoupled, w <- w - lr * wd * w before the Adam update (torch default
      wd 0.01, Keras 0.004). train.py decays matrices only (p.dim() >= 2: embeddings and Dense
      kernels), so biases and LayerNorm gamma/beta are excluded here.
    """
    opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=weight_decay, beta_1=betas[0],
                                 beta_2=betas[1], epsilon=eps * math.sqrt(1.0 - betas[1]))
    opt.exclude_from_weight_decay(var_list=[v for v in model.trainable_variables
                                            if len(v.shape) < 2])
    return opt


def train_step(model: GPT, optimizer, idx, targets):
    """One step of book 4.1.3's L(theta) = -sum log P(w_i | w_<i): loss, gradients, AdamW.

    The gradient of ``wpe`` comes back as ``tf.IndexedSlices`` (a gather's gradient, one slice
    per use, positions repeated across the batch); Keras' Adam would square the slices one by one
    instead of their sum, so every gradient is made dense first, as torch's always is.
    """
    with tf.GradientTape() as tape:
        loss = model(idx, targets=targets, training=True).loss
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(map(tf.convert_to_tensor, grads), model.trainable_variables))
    return loss
