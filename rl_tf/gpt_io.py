"""The Keras GPT at work: its weights read from a ``lm_torch`` checkpoint, sampling, and the
bridge backend over it -- the twins of ``lm_torch/checkpoint.py``, ``lm_torch/sample.py`` and
``lm_torch/backend.py`` (book 4.1.1; DESIGN.md: the bridge contract).

:data:`WEIGHT_MAP` is the explicit table of renames and transposes from the Torch names
(``nn.Linear.weight`` is (out, in), ``keras.layers.Dense.kernel`` is (in, out));
:func:`load_torch_checkpoint` reads ``model.safetensors`` through safetensors' NumPy API (never
torch) and refuses a missing, unexpected or mis-shaped tensor by name; :func:`generate` has the
semantics of ``lm_torch.sample.generate``; :class:`KerasLMBackend` steps B sequences with the KV
cache and speaks the bridge's messages, with the same fingerprint as the Torch backend.
"""

from __future__ import annotations

import hashlib
import weakref
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tensorflow as tf
from safetensors import safe_open
from safetensors.numpy import load_file

from bridge.files import read_json
from bridge.protocol import ActionBatch, Meta, TokenState
from bridge.rows import Rows

from .gpt import FORMAT_VERSION, GPT, GPTConfig, KVCache

# --- checkpoints: the weights of lm_torch, renamed ---------------------------------------------
#: Torch state_dict name -> (Keras attribute path, transpose?). ``{i}`` is the block index.
#: Torch's Linear.weight is (out, in) and computes x W^T; Keras' Dense.kernel is (in, out) and
#: computes x K; so K = W^T. Embeddings and LayerNorm vectors are copied as they are.
WEIGHT_MAP: tuple[tuple[str, str, bool], ...] = (
    ("wte.weight", "wte.embeddings", False),  # (V, C); also the LM head (tied)
    ("wpe.weight", "wpe.embeddings", False),  # (block_size, C)
    ("blocks.{i}.ln_1.weight", "blocks.{i}.ln_1.gamma", False),  # (C,)
    ("blocks.{i}.ln_1.bias", "blocks.{i}.ln_1.beta", False),  # (C,)
    ("blocks.{i}.attn.c_attn.weight", "blocks.{i}.attn.c_attn.kernel", True),  # (3C, C) -> (C, 3C)
    ("blocks.{i}.attn.c_attn.bias", "blocks.{i}.attn.c_attn.bias", False),  # (3C,)
    ("blocks.{i}.attn.c_proj.weight", "blocks.{i}.attn.c_proj.kernel", True),  # (C, C)
    ("blocks.{i}.attn.c_proj.bias", "blocks.{i}.attn.c_proj.bias", False),  # (C,)
    ("blocks.{i}.ln_2.weight", "blocks.{i}.ln_2.gamma", False),
    ("blocks.{i}.ln_2.bias", "blocks.{i}.ln_2.beta", False),
    ("blocks.{i}.mlp.c_fc.weight", "blocks.{i}.mlp.c_fc.kernel", True),  # (4C, C) -> (C, 4C)
    ("blocks.{i}.mlp.c_fc.bias", "blocks.{i}.mlp.c_fc.bias", False),  # (4C,)
    ("blocks.{i}.mlp.c_proj.weight", "blocks.{i}.mlp.c_proj.kernel", True),  # (C, 4C) -> (4C, C)
    ("blocks.{i}.mlp.c_proj.bias", "blocks.{i}.mlp.c_proj.bias", False),  # (C,)
    ("ln_f.weight", "ln_f.gamma", False),
    ("ln_f.bias", "ln_f.beta", False),
)
#: The head shares the token embedding; torch's file holds it once, under either name.
TIED = ("wte.weight", "lm_head.weight")


class CheckpointError(ValueError):
    """A checkpoint directory that is missing, corrupt, or not one of lm_torch's."""


class CheckpointMismatch(CheckpointError):
    """Weights that do not fit the Keras GPT: a tensor missing, unexpected or mis-shaped."""


def torch_variables(model: GPT, table=WEIGHT_MAP) -> dict[str, tuple[Any, bool]]:
    """Torch name -> (the Keras variable, transpose?) for every weight of ``model``."""
    out = {}
    for i in range(model.config.n_layer):
        for torch_name, path, transpose in table:
            once = "{i}" not in torch_name  # embeddings and ln_f: listed once, at i = 0
            if (once and i) or (torch_name.endswith(".bias") and not model.config.bias):
                continue
            obj: Any = model
            for part in path.format(i=i).split("."):
                obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
            out[torch_name.format(i=i)] = (obj, transpose)
    return out


def torch_state_dict(model: GPT, table=WEIGHT_MAP) -> dict[str, np.ndarray]:
    """The weights under torch's names and layouts (the tied head listed twice, as torch does)."""
    sd = {n: (np.asarray(v).T if t else np.asarray(v)) for n, (v, t) in
          torch_variables(model, table).items()}
    sd[TIED[1]] = sd[TIED[0]]
    return sd


def load_torch_checkpoint(path, table=WEIGHT_MAP, tokenizer=None) -> GPT:
    """The Keras GPT holding the weights of an ``lm_torch.checkpoint`` directory.

    Reads config.json and model.safetensors as NumPy (never torch); every tensor is renamed and
    transposed by ``table``. Raises :class:`CheckpointMismatch` naming a missing, unexpected or
    mis-shaped tensor, :class:`CheckpointError` for anything else wrong with the directory.
    ``tokenizer``, if given, must be the one the model was trained with.
    """
    path = Path(path)
    where = f"{path}/config.json"
    data = read_json(path / "config.json", "checkpoint config", error=CheckpointError)
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{where} is not an lm_torch checkpoint of format {FORMAT_VERSION}")
    try:
        config = GPTConfig.from_dict(data.get("model"))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where} 'model' section is invalid: {e}") from None
    if tokenizer is not None and (tokenizer.vocab_size != config.vocab_size or data.get(
            "tokenizer_fingerprint") not in (None, tokenizer.fingerprint())):
        raise CheckpointError(f"the tokenizer given is not the one {path} was trained with")
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing")
    record = data.get("sha256")  # absent in checkpoints saved before hashes were recorded
    if record is not None:
        want = record.get(weights.name) if isinstance(record, dict) else None
        if not isinstance(want, str) or \
                hashlib.sha256(weights.read_bytes()).hexdigest() != want.lower():
            raise CheckpointError(f"{weights} does not match the hash recorded in {where}: "
                                  "the file is corrupt or was edited; restore it or retrain")
    try:
        with safe_open(str(weights), framework="numpy") as f:  # shapes first, from the header
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # missing file, corrupt header: safetensors' own error types
        raise CheckpointError(f"weights {weights} cannot be read: {e}") from None
    if TIED[1] in shapes and TIED[0] not in shapes:
        shapes[TIED[0]] = shapes.pop(TIED[1])
    # the config's sizes against the file before any model is built (no edited n_embd can ask
    # for gigabytes): the layer count and both embeddings
    found = len({k.split(".")[1] for k in shapes if k.startswith("blocks.")})
    if found != config.n_layer:
        raise CheckpointMismatch(f"{where} says {config.n_layer} layers but {weights} holds "
                                 f"{found}: the config belongs to other weights")
    C = config.n_embd
    for name, need in ((TIED[0], (config.vocab_size, C)), ("wpe.weight", (config.block_size, C))):
        if shapes.get(name) != need:
            raise CheckpointMismatch(f"tensor {name} is {shapes.get(name, 'missing')} in "
                                     f"{weights}, but {where} needs {need}")
    model = GPT(config)
    variables = torch_variables(model, table)
    missing, extra = sorted(variables.keys() - shapes.keys()), sorted(shapes.keys() - variables)
    if missing or extra:
        raise CheckpointMismatch(f"{weights} does not hold the tensors of the model in {where}: "
                                 f"missing {missing}, unexpected {extra}")
    for name, (var, t) in variables.items():
        need = tuple(var.shape[::-1] if t else var.shape)
        if shapes[name] != need:
            raise CheckpointMismatch(f"tensor {name} is {shapes[name]} in {weights}, but Keras' "
                                     f"{var.path} {'transposed ' if t else ''}needs {need}")
    tensors = load_file(str(weights))
    if TIED[1] in tensors:
        head = tensors.pop(TIED[1])
        if TIED[0] in tensors and not np.array_equal(head, tensors[TIED[0]]):
            raise CheckpointMismatch(f"{TIED[0]} and {TIED[1]} differ in {weights}; they are tied")
        tensors[TIED[0]] = head
    for name, (var, t) in variables.items():
        a = tensors[name]
        if not np.isfinite(a).all():
            raise CheckpointError(f"{weights} holds NaN or inf in tensor {name}")
        var.assign(a.T if t else a)
    return model


# --- sampling (lm_torch/sample.py) ---------------------------------------------------------------
def left_pad(prompts: Sequence[Sequence[int]], pad_id: int):
    """(ids int32 (B, T), key_mask bool (B, T), positions int32 (B, T)) for left-padded prompts."""
    T = max(len(p) for p in prompts)
    ids = np.full((len(prompts), T), pad_id, dtype=np.int32)
    mask = np.zeros((len(prompts), T), dtype=bool)
    for b, p in enumerate(prompts):
        if len(p):
            ids[b, T - len(p):] = p
            mask[b, T - len(p):] = True
    positions = np.maximum(mask.cumsum(-1) - 1, 0).astype(np.int32)
    return ids, mask, positions


def filter_logits(logits, top_k: int = 0, top_p: float = 1.0):
    """Set logits outside the top-k / top-p nucleus to -inf. logits (B, V)."""
    if top_k and top_k < logits.shape[-1]:
        kth = tf.math.top_k(logits, top_k).values[:, -1:]  # (B, 1)
        logits = tf.where(logits < kth, float("-inf"), logits)
    if top_p < 1.0:
        order = tf.argsort(logits, axis=-1, direction="DESCENDING", stable=True)  # (B, V)
        sorted_logits = tf.gather(logits, order, batch_dims=1)
        p = tf.nn.softmax(sorted_logits, -1)
        drop = tf.cumsum(p, -1) - p >= top_p  # mass before this token already enough
        sorted_logits = tf.where(drop, float("-inf"), sorted_logits)
        logits = tf.gather(sorted_logits, tf.argsort(order, axis=-1), batch_dims=1)
    return logits


def sample_next(logits, u, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
    """Draw one token per row from logits (B, V) by inverse-CDF sampling with the uniforms
    u (B, 1) in [0, 1); returns (B,) int32."""
    logits = filter_logits(logits / temperature, top_k, top_p)
    cdf = tf.cumsum(tf.nn.softmax(logits, -1), -1)  # (B, V)
    tok = tf.searchsorted(cdf, u * cdf[:, -1:], side="right", out_type=tf.int32)[:, 0]
    return tf.minimum(tok, cdf.shape[-1] - 1)


_FORWARDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SAMPLERS: dict = {}


def forward_fn(model: GPT, jit: bool | None = None):
    """(idx, key_mask, positions, cache) -> (last logits (B, V), last hidden (B, C), cache).

    Eager (``jit=None``), a ``tf.function`` (False) or one compiled by XLA (True); one per model.
    """
    fns = _FORWARDS.setdefault(model, {})
    if jit not in fns:
        def forward(idx, key_mask, positions, cache):
            out = model(idx, key_mask=key_mask, positions=positions, cache=cache,
                        return_hidden=True, last_only=True)
            return out.logits[:, -1], out.hidden[:, -1], out.cache
        fns[jit] = forward if jit is None else tf.function(forward, jit_compile=jit)
    return fns[jit]


def sampler(jit: bool | None, temperature: float, top_k: int, top_p: float):
    """(logits (B, V), u (B, 1)) -> tokens (B,): :func:`sample_next`, compiled like the forward."""
    key = (jit, float(temperature), int(top_k), float(top_p))
    if key not in _SAMPLERS:
        def sample(logits, u):
            return sample_next(logits, u, temperature, top_k, top_p)
        _SAMPLERS[key] = sample if jit is None else tf.function(sample, jit_compile=jit)
    return _SAMPLERS[key]


def generate(model: GPT, prompts_ids: Sequence[Sequence[int]], max_new_tokens: int = 64,
             temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, eos_id: int = 2,
             pad_id: int = 0, seed: int | None = None, jit: bool | None = None) -> list[list[int]]:
    """Complete every prompt with the KV cache, as ``lm_torch.sample.generate`` does.

    Returns the new tokens of each row, up to and including its EOS (if one was drawn).
    Raises ValueError when a prompt is empty or does not leave room in the context. ``jit``:
    run eagerly (None), in ``tf.function`` (False) or compiled by XLA (True).
    """
    if not len(prompts_ids):
        return []
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, not {temperature}")
    lens = [len(p) for p in prompts_ids]
    if min(lens) == 0:
        raise ValueError("every prompt needs at least one token (e.g. <bos>)")
    block = model.config.block_size
    if max(lens) >= block:
        raise ValueError(f"a prompt of {max(lens)} tokens leaves no room in the context of "
                         f"{block} tokens; shorten it")
    new = min(max_new_tokens, block - max(lens))
    gen = (tf.random.Generator.from_seed(seed) if seed is not None
           else tf.random.Generator.from_non_deterministic_state())
    forward, sample = forward_fn(model, jit), sampler(jit, temperature, top_k, top_p)
    ids, mask, pos = left_pad(prompts_ids, pad_id)
    B, T0 = ids.shape
    u = gen.uniform((new, B, 1))  # one uniform per row and step, drawn at once
    done = np.zeros(B, dtype=bool)
    out = np.full((B, new), pad_id, dtype=np.int32)
    lengths = mask.sum(-1).astype(np.int32)  # (B,) real tokens so far
    logits, _, cache = forward(ids, mask, pos, KVCache.empty(model.config, B, T0 + new))
    for t in range(new):
        tok = sample(logits, u[t]).numpy()
        tok = np.where(done, pad_id, tok).astype(np.int32)
        out[:, t] = tok
        done |= tok == eos_id
        if done.all() or t == new - 1:
            break
        step_mask = ~done | (tok == eos_id)  # the EOS itself is a real token
        logits, _, cache = forward(tok[:, None], step_mask[:, None], lengths[:, None], cache)
        lengths = lengths + 1
    return [row[: row.index(eos_id) + 1] if eos_id in row else row for row in out.tolist()]


# --- the bridge backend (lm_torch/backend.py) ----------------------------------------------------
def fingerprint(model: GPT, tokenizer) -> str:
    """lm_torch.backend.fingerprint's recipe on the torch-named weights: the same checkpoint
    gives the same fingerprint in both frameworks."""
    h = hashlib.sha256(repr(sorted(model.config.to_dict().items())).encode())
    h.update(tokenizer.fingerprint().encode())
    for name, a in sorted(torch_state_dict(model).items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


class KerasLMBackend:
    """A frozen Keras LM as a batched environment core: reset / step over NumPy messages
    (book 1.3.1; the semantics of ``lm_torch.backend.LMBackend``)."""

    def __init__(self, model: GPT, tokenizer, max_new_tokens: int = 32, jit: bool | None = None):
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens
        model.trainable = False
        self.meta = Meta(model.config.vocab_size, model.config.n_embd,
                         fingerprint(model, tokenizer))
        self.forward = forward_fn(model, jit)
        self.rows: Rows | None = None
        self._cache: KVCache | None = None

    @classmethod
    def from_checkpoint(cls, path, tokenizer, **kwargs) -> "KerasLMBackend":
        return cls(load_torch_checkpoint(path, tokenizer=tokenizer), tokenizer, **kwargs)

    def encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        return [[self.tokenizer.bos_id] + self.tokenizer.encode(p) for p in prompts]

    def reset(self, prompts: Sequence[Sequence[int]]) -> TokenState:
        """Start B sequences from prompts given as token ids (``<bos>`` included if wanted)."""
        cfg, tok = self.model.config, self.tokenizer
        self.rows = Rows(prompts, cfg.vocab_size, cfg.block_size, self.max_new_tokens,
                         tok.eos_id, tok.pad_id)
        ids, mask, pos = left_pad(self.rows.ids, tok.pad_id)
        self._cache = KVCache.empty(cfg, len(prompts), self.rows.cache_len)
        self._used = ids.shape[1]
        return self._state(self._forward(ids, mask, pos))

    def step(self, actions: ActionBatch | np.ndarray) -> TokenState:
        """Append one token to every running row; rows already done ignore theirs."""
        if self.rows is None:
            raise RuntimeError("call reset() before step()")
        a, running, lengths = self.rows.advance(actions)
        if self.rows.done.all() or self._used >= self._cache.max_len:
            self.rows.done[:] = True
            return self._state(None)
        tok = np.where(running, a, self.tokenizer.pad_id).astype(np.int32)[:, None]
        self._used += 1
        return self._state(self._forward(tok, running[:, None], (lengths - 1)[:, None]
                                         .astype(np.int32)))

    def _forward(self, ids, mask, pos):
        logits, hidden, self._cache = self.forward(ids, mask, pos, self._cache)
        return hidden, logits

    def _state(self, out) -> TokenState:
        if out is not None:
            self._last = tuple(np.asarray(t, dtype=np.float32) for t in out)
        # everything finished: no forward was needed; the last (unused) values are repeated
        return self.rows.state(*self._last, self.meta)

    def texts(self, completions_only: bool = True) -> list[str]:
        """The current rows as text (the completions, by default)."""
        return self.rows.texts(self.tokenizer.decode, completions_only)


