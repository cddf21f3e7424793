"""PyTorch vs TensorFlow, side by side, whole components of the same GPT (figures only).

The reference model (4 layers, 4 heads, width 128, vocabulary 512, context 128) in
``lm_torch.model`` and in its Keras twin ``rl_tf.gpt``, on the same machine, with the same
number of threads. Each row is a pair of contenders, run in turns over several rounds (so a
slow spell of the machine hits both); the table gives the median and the min-max.

* training step: forward + backward + AdamW (train.py's settings, no clipping), batch 32 x 128
  tokens, in tokens/s;
* cached generation: batch 64, 64 new tokens each from ``<bos>``, in new tokens/s;
* the RL policy update: one REINFORCE-with-baseline step of the residual policy on a rollout
  of 64 x 40 tokens (``rl_tf.rlaif`` vs ``lm_torch.policy``), in tokens/s.

The Keras side runs in ``tf.function``, with and without XLA (``jit_compile``); the faster in
warm-up is measured, and the table says which. Threads: one per framework by default (a fair
default on a shared machine, where two thread pools fighting for cores measure the scheduler);
``--threads N`` sets both, ``--threads 0`` keeps each framework's own default. TensorFlow's
oneDNN kernels are off, as ``rl_tf`` sets them (``TF_ENABLE_ONEDNN_OPTS=1`` turns them on).

A row is one function returning a :class:`Row`; add it to ``ROWS``.
Run: ``python bench/bench_frameworks.py [--quick] [--json] [--threads N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # as rl_tf sets it: what the project runs

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from lm_torch.model import GPT, GPTConfig  # noqa: E402
from lm_torch.sample import SampleConfig, generate  # noqa: E402
from lm_torch.train import TrainConfig, make_optimizer  # noqa: E402
from rl_tf import gpt as kg
from rl_tf import gpt_io as kio  # noqa: E402

REF = dict(n_layer=4, n_head=4, n_embd=128, vocab_size=512, block_size=128)
TORCH, TF = "PyTorch", "TensorFlow"


@dataclass
class Row:
    """One line of the table: what is measured, and one contender per framework."""

    name: str  #: what one round does
    unit: str  #: what the contenders return
    contenders: dict[str, Callable[[], float]]  #: framework -> one round, returning its rate
    notes: list[str] = field(default_factory=list)  #: printed under the table


def pick_compiled(variants: dict[str, Callable[[], float]], tries: int) -> tuple[str, Callable]:
    """The faster of the TF variants in warm-up (after one call each, which traces/compiles)."""
    rates = {}
    for label, fn in variants.items():
        fn()
        rates[label] = statistics.median(fn() for _ in range(tries))
    best = max(rates, key=rates.get)
    return best, variants[best], rates


def compiled_note(what: str, label: str, rates: dict[str, float]) -> str:
    return (f"{what}, TensorFlow: tf.function {'with' if label == 'XLA' else 'without'} XLA "
            f"(jit_compile={label == 'XLA'}); warm-up: "
            + ", ".join(f"{k} {v:,.0f}" for k, v in rates.items()) + " tokens/s")


def row_train(args) -> Row:
    """Forward + backward + AdamW at batch 32 x 128 tokens."""
    B, T, steps = 32, 128, args.steps
    x = np.random.default_rng(0).integers(0, REF["vocab_size"], (B, T + 1))
    cfg = TrainConfig()
    torch.manual_seed(0)
    tm = GPT(GPTConfig(**REF))
    t_opt = make_optimizer(tm, cfg)
    tx, ty = torch.as_tensor(x[:, :-1]), torch.as_tensor(x[:, 1:])

    def torch_round() -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = tm(tx, ty).loss
            t_opt.zero_grad(set_to_none=True)
            loss.backward()
            t_opt.step()
        return steps * B * T / (time.perf_counter() - t0)

    keras.utils.set_random_seed(0)
    km = kg.GPT(kg.GPTConfig(**REF))
    k_opt = kg.make_adamw(km, cfg.lr, cfg.weight_decay)
    kx, ky = tf.constant(x[:, :-1], tf.int32), tf.constant(x[:, 1:], tf.int32)

    def keras_round(jit: bool) -> Callable[[], float]:
        step = tf.function(lambda a, b: kg.train_step(km, k_opt, a, b), jit_compile=jit)

        def run() -> float:
            t0 = time.perf_counter()
            for _ in range(steps):
                loss = step(kx, ky)
            float(loss)  # wait for the last step
            return steps * B * T / (time.perf_counter() - t0)
        return run

    label, fn, rates = pick_compiled({"XLA": keras_round(True), "no XLA": keras_round(False)},
                                     tries=1 if args.quick else 2)
    torch_round()  # warm-up
    return Row(f"training step, batch {B} x {T}", "tokens/s", {TORCH: torch_round, TF: fn},
               [compiled_note("training step", label, rates)])


def row_generate(args) -> Row:
    """Sampling with the KV cache: batch 64 from <bos>, 64 new tokens each (EOS never stops)."""
    B, new = 64, 64
    prompts = [[1]] * B
    torch.manual_seed(0)
    tm = GPT(GPTConfig(**REF)).eval()
    cfg = SampleConfig(max_new_tokens=new)

    def torch_round() -> float:
        t0 = time.perf_counter()
        n = sum(map(len, generate(tm, prompts, cfg, eos_id=-1, seed=0)))
        return n / (time.perf_counter() - t0)

    keras.utils.set_random_seed(0)
    km = kg.GPT(kg.GPTConfig(**REF))

    def keras_round(jit: bool) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            n = sum(map(len, kio.generate(km, prompts, new, eos_id=-1, seed=0, jit=jit)))
            return n / (time.perf_counter() - t0)
        return run

    label, fn, rates = pick_compiled({"XLA": keras_round(True), "no XLA": keras_round(False)},
                                     tries=1)
    torch_round()  # warm-up
    return Row(f"cached generation, batch {B} x {new} new", "tokens/s",
               {TORCH: torch_round, TF: fn},
               [compiled_note("generation (forward step and sampling)", label, rates)])


def row_policy_update(args) -> Row:
    """One RLAIF update of the residual policy (REINFORCE with baseline, book 4.3.2) on a
    synthetic rollout of the default size: 64 sequences x 40 tokens, V = 512, D = 128, g's
    width 128 -- ``rl_tf.rlaif.Trainer`` (tf.function) vs ``lm_torch.policy.Trainer``."""
    from bridge.rollout import TokenRollout
    from lm_torch import policy as pt
    from rl_tf import rlaif as tfp
    from rl_tf.rl_config import RLConfig

    T, B, V, D = 40, 64, 512, 128
    rng = np.random.default_rng(0)
    ro = TokenRollout(hidden=rng.normal(size=(T, B, D)).astype(np.float32),
                      ref_logits=rng.normal(size=(T, B, V)).astype(np.float32),
                      actions=rng.integers(0, V, (T, B)), logp=rng.normal(-6, 0.5, (T, B)),
                      ref_logp=rng.normal(-6, 0.5, (T, B)), kl_exact=np.zeros((T, B)),
                      mask=np.ones((T, B), bool))
    returns = rng.normal(size=(T, B)).astype(np.float32)
    cfg = RLConfig()
    trainers = {TORCH: pt.Trainer(pt.ResidualPolicy(V, D, cfg), cfg),
                TF: tfp.Trainer(tfp.ResidualPolicy(V, D, cfg), cfg)}

    def round_of(trainer) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            trainer.update(ro, returns)
            return T * B / (time.perf_counter() - t0)
        return run

    contenders = {k: round_of(t) for k, t in trainers.items()}
    for fn in contenders.values():
        fn()  # warm-up (TF traces its tf.function here)
    return Row(f"RL policy update, {B} x {T} tokens", "tokens/s", contenders,
               ["RL policy update: REINFORCE with baseline, Adam, clipping; TF in tf.function "
                "without XLA, torch eager"])


ROWS: tuple[Callable[[argparse.Namespace], Row], ...] = (row_train, row_generate,
                                                        row_policy_update)


def measure(row: Row, rounds: int) -> dict[str, list[float]]:
    """Every contender once per round, in turns."""
    out: dict[str, list[float]] = {name: [] for name in row.contenders}
    for _ in range(rounds):
        for name, fn in row.contenders.items():
            out[name].append(fn())
    return out


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "rounds": len(values)}


def set_threads(n: int) -> None:
    if n > 0:
        torch.set_num_threads(n)
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds and steps")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for each framework (0 = each framework's default)")
    p.add_argument("--rounds", type=int, default=0, help="rounds (default 3, or 7)")
    p.add_argument("--save", default=None,
                   help="also write the JSON to this file (notebook 10 reads "
                        "bench/results/frameworks.json)")
    args = p.parse_args(argv)
    set_threads(args.threads)  # before TensorFlow runs anything
    args.rounds = args.rounds or (3 if args.quick else 7)
    args.steps = 2 if args.quick else 5
    results = []
    for make in ROWS:
        row = make(args)
        results.append((row, {k: summary(v) for k, v in measure(row, args.rounds).items()}))
    machine = {"torch": torch.__version__, "tensorflow": tf.__version__,
               "keras": keras.__version__, "cpus": os.cpu_count(),
               "torch_threads": torch.get_num_threads(),
               "tf_threads": tf.config.threading.get_intra_op_parallelism_threads() or "default",
               "model": REF, "parameters": GPT(GPTConfig(**REF)).num_params(),
               "tf_onednn": os.environ["TF_ENABLE_ONEDNN_OPTS"] != "0", "rounds": args.rounds}
    report = {"machine": machine, "rows": [
        {"name": r.name, "unit": r.unit, **s, "notes": r.notes} for r, s in results]}
    if args.save:
        from bridge.files import atomic_write_json

        atomic_write_json(args.save, report)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"GPT {REF['n_layer']} layers, {REF['n_head']} heads, width {REF['n_embd']}, vocab "
          f"{REF['vocab_size']}, block {REF['block_size']} ({machine['parameters'] / 1e6:.2f} M "
          f"parameters); {machine['cpus']} CPUs; threads: torch {machine['torch_threads']}, TF "
          f"{machine['tf_threads']} (oneDNN {'on' if machine['tf_onednn'] else 'off'}); "
          f"{args.rounds} rounds, median (min-max)")
    head = [f"PyTorch {torch.__version__}", f"TensorFlow {tf.__version__} / Keras "
            f"{keras.__version__}"]
    width = max(len(f"{r.name} [{r.unit}]") for r, _ in results) + 2
    print(f"{'':{width}}{head[0]:30}{head[1]}")
    for row, s in results:
        cells = [f"{s[k]['median']:,.0f} ({s[k]['min']:,.0f}-{s[k]['max']:,.0f})"
                 for k in (TORCH, TF)]
        print(f"{row.name + ' [' + row.unit + ']':{width}}{cells[0]:30}{cells[1]}")
    for row, _ in results:
        for note in row.notes:
            print(f"  {note}")


if __name__ == "__main__":
    main()
