"""Rollout throughput through the bridge, B = 64 sequences x 64 new tokens (figures only).

(a) LM sampling alone (``lm_torch.sample.generate`` with the KV cache);
(b) the environment (``bridge.env.BatchedTextEnv`` over ``lm_torch``'s backend) driven by a
    trivial NumPy policy;
(c) the environment driven by a Keras policy over (hidden, logits), with every message sent as
    protocol bytes both ways, and the bridge's own share of (c)'s wall time (serialisation,
    validation, NumPy <-> TF conversion) -- target <= 5 %;
(d) (b) with the LM in a child process, beside in-process.

The LM is the reference size (n_layer=4, n_head=4, n_embd=128, block 128), freshly initialised:
throughput does not depend on what it has learned. Run: ``python bench/bench_bridge.py``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bridge.env import BatchedTextEnv
from bridge.protocol import ActionBatch, TokenState
from lm_torch.checkpoint import save_checkpoint
from lm_torch.corpus import CorpusConfig, build_corpus
from lm_torch.model import GPT, GPTConfig
from lm_torch.sample import SampleConfig, generate
from lm_torch.tokenizer import train_tokenizer
from rlaif_lab.envs import make_batched_env

B, NEW = 64, 64
REPEATS = 5
PROMPTS = ["movie review :", "product review :", "user : where is my order ? bot :"]


def make_checkpoint(root: Path) -> Path:
    corpus = build_corpus(CorpusConfig(n_train=2000, n_val=10, n_prompts=10))
    tok = train_tokenizer("bpe", corpus.texts(), 512)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=128))
    return save_checkpoint(root / "ck", model, tok)


def bench_generate(ck: Path) -> float:
    from lm_torch.checkpoint import load_checkpoint

    c = load_checkpoint(ck)
    prompts = [[1] + c.tokenizer.encode(PROMPTS[i % 3]) for i in range(B)]
    generate(c.model, prompts, SampleConfig(max_new_tokens=4), eos_id=-1, seed=0)
    t0 = time.perf_counter()
    outs = generate(c.model, prompts, SampleConfig(max_new_tokens=NEW), eos_id=-1, seed=0)
    return sum(map(len, outs)) / (time.perf_counter() - t0)


def _prompts():
    return [PROMPTS[i % 3] for i in range(B)]


def rollout(env: BatchedTextEnv, policy, wire: bool = False) -> tuple[float, float]:
    """Tokens/s of one batch of B rollouts, and the share of wall time spent in the bridge.

    The bridge's time: validating each TokenState and ActionBatch, converting NumPy <-> TF and,
    with ``wire``, serialising both messages to bytes and back.
    """
    s = env.reset(prompts=_prompts())
    bridge_s, n, t0 = 0.0, 0, time.perf_counter()
    while not s.done.all():
        t = time.perf_counter()
        if wire:
            s = TokenState.from_bytes(s.to_bytes(), expect=env.meta)  # validates too
        else:
            s.validate()  # what the backend's TokenState(...) did when it built s
        bridge_s += time.perf_counter() - t
        actions, conv_s = policy(s)
        bridge_s += conv_s
        t = time.perf_counter()
        batch = ActionBatch(actions, env.meta)  # validates
        if wire:
            batch = ActionBatch.from_bytes(batch.to_bytes(), expect=env.meta)
        bridge_s += time.perf_counter() - t
        n += int((~s.done).sum())
        s, _, _, _ = env.step(batch)
    wall = time.perf_counter() - t0
    return n / wall, bridge_s / wall


def isolated_cost(env: BatchedTextEnv, policy, wire: bool, n: int = 200) -> float:
    """Seconds per step of the bridge's own work, timed in a tight loop on a real state."""
    s = env.reset(prompts=_prompts())
    actions, _ = policy(s)
    conv = sum(policy(s)[1] for _ in range(n))  # NumPy <-> TF conversion inside the policy
    t0 = time.perf_counter()
    for _ in range(n):
        if wire:
            TokenState.from_bytes(s.to_bytes(), expect=env.meta)
            ActionBatch.from_bytes(ActionBatch(actions, env.meta).to_bytes(), expect=env.meta)
        else:
            s.validate()
            ActionBatch(actions, env.meta)
    return (time.perf_counter() - t0 + conv) / n


def numpy_policy(rng):
    def act(s):
        z = s.logits + rng.gumbel(size=s.logits.shape).astype(np.float32)
        return z.argmax(-1).astype(np.int32), 0.0
    return act


def keras_policy(V: int, D: int):
    import tensorflow as tf

    from rl_tf.convert import to_numpy, to_tensor
    from rl_tf.envs import sample_actions
    from rl_tf.networks import PolicyNetwork, build

    tf.config.threading.set_intra_op_parallelism_threads(1)  # the LM has the cores
    tf.config.threading.set_inter_op_parallelism_threads(1)
    net = build(PolicyNetwork(V, 64, zero_init_last=True), D)
    rng = tf.random.Generator.from_seed(0)

    @tf.function
    def act(hidden, logits):
        return sample_actions(logits + net(hidden), rng)

    def policy(s):
        t = time.perf_counter()
        h, lg = to_tensor(s.hidden), to_tensor(s.logits)
        conv = time.perf_counter() - t
        a = act(h, lg)
        t = time.perf_counter()
        out = to_numpy(a)
        return out, conv + time.perf_counter() - t
    policy(type("S", (), {"hidden": np.zeros((B, D), np.float32),
                          "logits": np.zeros((B, V), np.float32)})())  # trace once
    return policy


def main(argv=None) -> None:
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        ck = make_checkpoint(Path(d))
        print(f"rollouts of B={B} sequences x {NEW} new tokens, reference-size LM, "
              f"{torch.get_num_threads()} torch threads")
        print(f"  (a) LM sampling alone (KV cache):          {bench_generate(ck):8.0f} tokens/s")
        env = make_batched_env(ck, prompts=PROMPTS, batch_size=B, max_new_tokens=NEW)
        rollout(env, numpy_policy(np.random.default_rng(0)))  # warm up
        tps_b, _ = rollout(env, numpy_policy(np.random.default_rng(0)))
        print(f"  (b) environment + NumPy policy:            {tps_b:8.0f} tokens/s")
        pol = keras_policy(env.meta.vocab_size, env.meta.hidden_size)
        for wire, label in ((False, "(c) environment + Keras policy:           "),
                            (True, "    the same, every message as bytes:     ")):
            rollout(env, pol, wire)
            runs = sorted(rollout(env, pol, wire) for _ in range(REPEATS))
            tps, share = runs[REPEATS // 2][0], statistics.median(r[1] for r in runs)
            alone = isolated_cost(env, pol, wire) * tps / B  # share of a step, measured alone
            what = "serialise + validate + convert" if wire else "validate + convert"
            print(f"  {label}{tps:8.0f} tokens/s; bridge share ({what}): {100 * share:.1f} % "
                  f"timed in the loop, {100 * alone:.1f} % timed alone (target <= 5 %)")
        child = make_batched_env(ck, prompts=PROMPTS, batch_size=B, max_new_tokens=NEW,
                                 process="child")
        try:
            rollout(child, numpy_policy(np.random.default_rng(0)))
            tps_d, _ = rollout(child, numpy_policy(np.random.default_rng(0)))
        finally:
            child.close()
        print(f"  (d) environment + NumPy policy, LM in a child process: {tps_d:8.0f} tokens/s "
              f"(in-process {tps_b:.0f})")


if __name__ == "__main__":
    main()
