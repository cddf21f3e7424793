"""The GPT twins agree, whole: ``lm_torch.model.GPT`` and ``rl_tf.gpt.GPT`` on one checkpoint.

Logits (left padding, KV cache), the loss gradient of every weight, one AdamW step, the bridge
backends, to 1e-5; a wrong rename table is caught; both generate well-formed text from the
built-in checkpoint. Max differences are printed (``pytest -s``).
"""

import dataclasses
import json
import math
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
from safetensors.numpy import load_file, save_file

from lm_torch import grammar
from lm_torch.backend import LMBackend
from lm_torch.checkpoint import load_checkpoint, save_checkpoint
from lm_torch.model import GPT, GPTConfig, KVCache
from lm_torch.pretrain import well_formed_rate
from lm_torch.sample import SampleConfig, generate, left_pad
from lm_torch.tokenizer import CharTokenizer, load_tokenizer
from lm_torch.train import TrainConfig, make_optimizer
from rl_tf import gpt as kg
from rl_tf import gpt_io as kio

pytestmark = pytest.mark.parity

ATOL = 1e-5
CHARS = "abcdefghijklmnopqrstuvwxyz .,:?!"
#: (bias, attn_impl) of the small random checkpoints: both code paths of each framework
VARIANTS = [(True, "sdpa"), (False, "math")]


def max_diff(a, b, what: str, show: bool = True) -> float:
    """Max |a - b| (printed if ``show``); AssertionError naming ``what`` above ATOL."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = float(np.abs(a - b).max())
    if show:
        print(f"max |torch - keras| {what}: {d:.2e}")
    assert a.shape == b.shape and d <= ATOL, f"{what}: max |diff| {d:.2e} > {ATOL}"
    return d


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: f"bias={v[0]}-{v[1]}")
def small(request, tmp_path_factory):
    """(checkpoint dir, torch GPT, keras GPT) of a small random GPT saved by lm_torch."""
    bias, impl = request.param
    torch.manual_seed(0)
    tok = CharTokenizer.train([CHARS])
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=32,
                    bias=bias, attn_impl=impl)
    model = GPT(cfg)
    with torch.no_grad():  # away from the init (weights * 5, random gains and biases), so that
        for p in model.parameters():  # GELU's form, LayerNorm's epsilon, biases all matter
            if p.dim() >= 2:
                p.mul_(5.0)
            else:
                p.add_(0.1 * torch.randn_like(p))
    path = save_checkpoint(tmp_path_factory.mktemp("gpt") / "ck", model, tok)
    return path, load_checkpoint(path).model.eval(), kio.load_torch_checkpoint(path)


def batch(V: int, B: int = 4, T: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, V, (B, T + 1))
    y = x[:, 1:].copy()
    y[0, :3] = -100  # positions without a loss (book 4.1.3's mask)
    return x[:, :-1], y


def test_logits_left_padding_and_kv_cache(small):
    _, tm, km = small
    V = tm.config.vocab_size
    prompts = [[1, 5, 6, 7], [1, 8], [1, 9, 10, 11, 12, 13, 14]]
    ids, mask, pos = left_pad(prompts, 0)
    for a, b in zip((ids, mask, pos), kio.left_pad(prompts, 0)):
        np.testing.assert_array_equal(a.numpy(), b)
    with torch.no_grad():
        t = tm(ids, key_mask=mask, positions=pos, return_hidden=True)
    k = km(ids.numpy(), key_mask=mask.numpy(), positions=pos.numpy(), return_hidden=True)
    max_diff(t.logits, k.logits, "logits, left-padded")
    max_diff(t.hidden, k.hidden, "hidden, left-padded")
    # decoding with the cache, 5 tokens one at a time, equals the full forward in each framework
    steps = np.random.default_rng(1).integers(3, V, (5, len(prompts)))
    T0, new = ids.shape[1], steps.shape[0]
    tc = KVCache(tm.config, len(prompts), T0 + new)
    kc = kg.KVCache.empty(km.config, len(prompts), T0 + new)
    with torch.no_grad():
        tl = tm(ids, key_mask=mask, positions=pos, cache=tc, last_only=True).logits[:, -1]
    out = km(ids.numpy(), key_mask=mask.numpy(), positions=pos.numpy(), cache=kc, last_only=True)
    kl, kc = out.logits[:, -1], out.cache
    seq, m, p = ids, mask, pos
    for s in steps:
        tok, step_pos = torch.as_tensor(s)[:, None], p[:, -1:] + 1
        seq, p = torch.cat([seq, tok], 1), torch.cat([p, step_pos], 1)
        m = torch.cat([m, torch.ones_like(tok, dtype=torch.bool)], 1)
        with torch.no_grad():
            tl = tm(tok, positions=step_pos, cache=tc).logits[:, -1]
            full = tm(seq, key_mask=m, positions=p).logits[:, -1]
        out = km(tok.numpy(), positions=step_pos.numpy(), cache=kc)
        kl, kc = out.logits[:, -1], out.cache
        kfull = km(seq.numpy(), key_mask=m.numpy(), positions=p.numpy()).logits[:, -1]
        np.testing.assert_allclose(tl, full, atol=ATOL)  # torch: cached == full
        np.testing.assert_allclose(kl, kfull, atol=ATOL)  # keras: cached == full
        max_diff(tl, kl, "logits, KV-cached step")


def test_greedy_generation_is_the_same_sequence(small):
    _, tm, km = small
    prompts = [[1, 5, 6], [1], [1, 7, 8, 9, 10]]
    want = generate(tm, prompts, SampleConfig(max_new_tokens=12, top_k=1), eos_id=4, seed=0)
    for jit in (None, False, True):  # eager, tf.function, XLA
        assert kio.generate(km, prompts, 12, top_k=1, eos_id=4, seed=0, jit=jit) == want, jit


def loss_and_grads(tm, km, x, y):
    """(torch loss, keras loss, {torch name: (torch grad, keras grad in torch layout)})."""
    tm.zero_grad()
    lt = tm(torch.as_tensor(x), torch.as_tensor(y)).loss
    lt.backward()
    named = kio.torch_variables(km)
    with tf.GradientTape() as tape:
        lk = km(x, targets=y, training=True).loss
    grads = tape.gradient(lk, [v for v, _ in named.values()])
    grads = [tf.convert_to_tensor(g).numpy() for g in grads]  # wpe's is IndexedSlices
    kgrads = {n: (g.T if t else g) for (n, (_, t)), g in zip(named.items(), grads)}
    return lt, lk, {n: (p.grad.numpy(), kgrads[n]) for n, p in tm.named_parameters()}


def test_loss_gradient_of_every_weight(small):
    _, tm, km = small
    x, y = batch(tm.config.vocab_size)
    lt, lk, grads = loss_and_grads(tm, km, x, y)
    max_diff(lt.item(), float(lk), "loss")
    assert set(grads) == {n for n, _ in tm.named_parameters()}  # the tied head is wte.weight
    worst = max(max_diff(a, b, f"gradient of {n}", False) for n, (a, b) in grads.items())
    print(f"max |torch - keras| gradient over {len(grads)} tensors: {worst:.2e}")


def test_one_adamw_step(small):
    """torch AdamW as lm_torch.train builds it, and the Keras AdamW of rl_tf.gpt.make_adamw.

    Where the defaults differ, and how they are matched here:
    * epsilon: torch 1e-8 added to sqrt(v_hat); Keras 1e-7 added to sqrt(v) (its bias
      correction is folded into the step size), so Keras gets eps * sqrt(1 - beta2): equal at
      step 1;
    * beta_2: torch 0.999, Keras 0.999, train.py 0.95: set in both;
    * weight decay: both decoupled (w -= lr * wd * w before the Adam step); torch 0.01 and
      Keras 0.004 by default, train.py 0.1 on matrices only: Keras excludes the < 2-D variables.

    Step 1 moves each weight by lr * g / (|g| + eps): where |g| is near eps, float noise in g
    decides the step (it is amplified lr / eps = 3e5 times). The key biases are such weights:
    their exact gradient is 0 (a softmax ignores a constant added to a row of scores). So the
    optimizers are compared on the same gradients (torch's) everywhere, and the whole step, each
    framework on its own gradients, where |g| >= 1e-6 or g = 0.
    """
    path, _, _ = small
    tm = load_checkpoint(path).model  # fresh copies: this test changes the weights
    cfg = TrainConfig(lr=3e-3, weight_decay=0.1)
    t_opt = make_optimizer(tm, cfg)
    assert t_opt.defaults["eps"] == 1e-8 and keras.optimizers.AdamW().epsilon == 1e-7
    assert keras.optimizers.AdamW().weight_decay == 0.004 and torch.optim.AdamW(
        [torch.zeros(1)]).defaults["weight_decay"] == 0.01
    assert [g["betas"] for g in t_opt.param_groups] == [(0.9, 0.95)] * 2
    x, y = batch(tm.config.vocab_size, seed=1)
    tm(torch.as_tensor(x), torch.as_tensor(y)).loss.backward()
    grad = {n: p.grad.numpy().copy() for n, p in tm.named_parameters()}
    grad["lm_head.weight"] = grad["wte.weight"]
    gain0 = tm.ln_f.weight.detach().numpy().copy()
    t_opt.step()
    want = {n: p.numpy() for n, p in tm.state_dict().items()}

    def keras_step(make_opt, own_gradients: bool) -> dict:
        km = kio.load_torch_checkpoint(path)
        opt = make_opt(km)
        if own_gradients:
            kg.train_step(km, opt, x, y)
        else:
            opt.apply_gradients([(grad[n].T if t else grad[n], v)
                                 for n, (v, t) in kio.torch_variables(km).items()])
        return kio.torch_state_dict(km)

    def matched(km):
        opt = kg.make_adamw(km, cfg.lr, cfg.weight_decay)
        assert math.isclose(opt.epsilon, 1e-8 * math.sqrt(1 - 0.95))
        decayed = {n for n, p in tm.named_parameters() if p.dim() >= 2}  # train.py's groups
        assert {n for n, (v, _) in kio.torch_variables(km).items()
                if opt._use_weight_decay(v)} == decayed
        return opt

    same = keras_step(matched, own_gradients=False)
    worst = max(max_diff(want[n], same[n], f"AdamW step on the same gradients, {n}", False)
                for n in want)
    own = keras_step(matched, own_gradients=True)
    ok = {n: (np.abs(grad[n]) >= 1e-6) | (grad[n] == 0) for n in want}  # 0: unused positions
    worst_own = max(max_diff(want[n][ok[n]], own[n][ok[n]], f"AdamW step, own gradients, {n}",
                             False) for n in want)
    tiny = sum(int((~m).sum()) for m in ok.values())
    print(f"one AdamW step, max |torch - keras|: {worst:.2e} on the same gradients, "
          f"{worst_own:.2e} on their own ({tiny} weights with 0 < |g| < 1e-6 left out)")
    # the exclusion matters: decaying the LayerNorm gains too moves them by lr * wd * gain
    decay_all = keras_step(lambda km: keras.optimizers.AdamW(
        cfg.lr, cfg.weight_decay, 0.9, 0.95, 1e-8 * math.sqrt(1 - 0.95)), own_gradients=False)
    gain = np.abs(want["ln_f.weight"] - decay_all["ln_f.weight"])
    np.testing.assert_allclose(gain, cfg.lr * cfg.weight_decay * np.abs(gain0), rtol=1e-2)


def test_a_broken_rename_table_fails(small):
    path, tm, km = small
    x, _ = batch(tm.config.vocab_size)
    with torch.no_grad():
        want = tm(torch.as_tensor(x)).logits.numpy()
    max_diff(want, km(x).logits, "logits, the right table")
    # drop the transpose of a square weight: it still loads, and the logits comparison fails
    broken = tuple((t, k, False if t == "blocks.{i}.attn.c_proj.weight" else tr)
                   for t, k, tr in kio.WEIGHT_MAP)
    assert broken != kio.WEIGHT_MAP
    bad = kio.load_torch_checkpoint(path, table=broken)
    with pytest.raises(AssertionError, match="logits"):
        max_diff(want, bad(x).logits, "logits, a transpose dropped")
    # a non-square one cannot even load, and the error names it
    broken = tuple((t, k, False if t == "blocks.{i}.mlp.c_fc.weight" else tr)
                   for t, k, tr in kio.WEIGHT_MAP)
    with pytest.raises(kio.CheckpointMismatch, match=r"blocks\.0\.mlp\.c_fc\.weight"):
        kio.load_torch_checkpoint(path, table=broken)


@pytest.mark.parametrize("edit, named", [
    ("missing", "blocks.1.ln_2.weight"), ("unexpected", "blocks.1.extra"),
    ("misshaped", "wpe.weight")])
def test_checkpoint_mismatch_names_the_tensor(small, tmp_path, edit, named):
    path = shutil.copytree(small[0], tmp_path / "ck")
    tensors = load_file(path / "model.safetensors")
    if edit == "missing":
        del tensors[named]
    elif edit == "unexpected":
        tensors[named] = np.zeros(3, np.float32)
    else:
        tensors[named] = tensors[named][:-1]
    save_file(tensors, path / "model.safetensors")
    data = json.loads((path / "config.json").read_text())
    del data["sha256"]  # as a checkpoint saved before hashes: the tensor checks must catch it
    (path / "config.json").write_text(json.dumps(data))
    with pytest.raises(kio.CheckpointMismatch, match=named.replace(".", r"\.")):
        kio.load_torch_checkpoint(path)
    data["sha256"] = {"model.safetensors": "0" * 64}
    (path / "config.json").write_text(json.dumps(data))
    with pytest.raises(kio.CheckpointError, match="hash"):
        kio.load_torch_checkpoint(path)


def test_config_twin_has_the_same_fields():
    assert [(f.name, f.default) for f in dataclasses.fields(kg.GPTConfig)] == \
        [(f.name, f.default) for f in dataclasses.fields(GPTConfig)]
    with pytest.raises(ValueError, match="unknown"):
        kg.GPTConfig.from_dict({"n_layers": 2})


def test_builtin_checkpoint_generates_well_formed_text(builtin_ckpt):
    tok = load_tokenizer(builtin_ckpt / "tokenizer.json")
    km = kio.load_torch_checkpoint(builtin_ckpt, tokenizer=tok)
    tm = load_checkpoint(builtin_ckpt).model
    n, texts = 200, []
    for i in range(0, n, 100):  # the batches and seeds of lm_torch.pretrain.well_formed_rate
        outs = kio.generate(km, [[tok.bos_id]] * 100, km.config.block_size - 1, temperature=1.0,
                           eos_id=tok.eos_id, pad_id=tok.pad_id, seed=i)
        texts += [tok.decode(o) for o in outs]
    keras_rate = sum(map(grammar.is_well_formed, texts)) / n
    torch_rate, _ = well_formed_rate(tm, tok, n, seed=0, temperature=1.0)
    print(f"well-formed from <bos> at T=1.0, {n} samples: keras {keras_rate:.3f}, "
          f"torch {torch_rate:.3f}")
    assert keras_rate >= 0.85 and torch_rate >= 0.85


def test_backends_give_the_same_token_states(builtin_ckpt):
    tok = load_tokenizer(builtin_ckpt / "tokenizer.json")
    ck = load_checkpoint(builtin_ckpt)
    tb = LMBackend(ck.model, ck.tokenizer, max_new_tokens=4)
    kb = kio.KerasLMBackend.from_checkpoint(builtin_ckpt, tok, max_new_tokens=4)
    assert kb.meta == tb.meta  # the same fingerprint, V and D
    prompts = tb.encode_prompts(["movie review :", "user : where is my order ? bot :", "the"])
    actions = np.array([[10, 11, 12], [13, tok.eos_id, 14], [15, 16, 17], [18, 19, 20]],
                       dtype=np.int32)
    t, k = tb.reset(prompts), kb.reset(prompts)
    for step in range(len(actions) + 1):
        for f in ("tokens", "lengths", "done"):
            np.testing.assert_array_equal(getattr(t, f), getattr(k, f), err_msg=f)
        max_diff(t.logits, k.logits, f"backend logits, step {step}")
        max_diff(t.hidden, k.hidden, f"backend hidden, step {step}")
        if step < len(actions):
            t, k = tb.step(actions[step]), kb.step(actions[step])
    assert k.done.all() and kb.texts() == tb.texts()
