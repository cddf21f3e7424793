"""This project against what a user would use instead, measured side by side in one process.

Every contender runs at the same size with the same threads, and the contenders of a section
are interleaved round by round (ours, peer, ours, peer, ...), so that a machine that slows down
for a while slows everyone down alike; each figure is the median over the rounds, with min-max.

* **matmul peak**: fp32 ``torch.mm`` of 1024 x 1024, the machine's practical limit in GFLOP/s.
* **LM training** (4 layers, 4 heads, width 128, vocabulary 512, batch 32 x 128 tokens, AdamW):
  ``lm_torch.model.GPT`` vs Hugging Face ``transformers`` GPT-2 and LitGPT's ``GPT`` (nanoGPT's
  packaged successor), with the achieved GFLOP/s (6 N + 12 L T d per token, Kaplan et al. 2020).
* **generation** at batch 64 (128 new tokens, 64 with ``--quick``), with and without the KV
  cache: ``lm_torch.sample.generate`` vs HF ``generate`` (sampling, the same lengths).
* **CartPole-v1 PPO**: steps to solve (greedy mean >= 475 over 10 episodes, checked every
  1 024 steps) for ``rl_tf.ppo`` vs Stable-Baselines3 PPO with its zoo hyperparameters, seeds
  0-4 (0-1 with ``--quick``), and wall seconds per 10 k steps.
  Cached at batch 1 too: the per-step cost of the calls, which bounds what removing Python
  overhead could win (``generate_vs_hf_cached_ceiling``).
* **the RL rollout**: B = 64 x 64 tokens, the RL stage's own rollout (``bridge.rollout
  .rollout`` with the Keras ``ResidualPolicy``) against LM-only sampling, beside the same
  environment driven by a free policy (its ceiling), and the parts of a step timed alone.
* **the RL stage vs TRL**: ``bench/rl_vs_trl.py`` -- the ``rl`` stage against ``trl``'s GRPO
  from the same SFT model (a smoke run on the review task), with the same fused feedback, the
  same completions and tokens: wall time, human and gold scores before -> after, well-formed
  share (25 iterations and two TRL learning rates with ``--quick``, 100 and four without).

A peer that is not installed is reported with the command that installs it (``make bench``
installs the ``bench`` extra), never silently left out. ``--json`` prints one JSON object on
stdout (progress goes to stderr). Run: ``python bench/peers.py [--quick] [--json]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import importlib.metadata as md
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lm_torch.model import GPT, GPTConfig  # noqa: E402
from lm_torch.sample import SampleConfig, generate  # noqa: E402
from lm_torch.train import TrainConfig, make_optimizer  # noqa: E402

SIZE = dict(n_layer=4, n_head=4, n_embd=128, vocab_size=512)
BATCH, BLOCK = 32, 128
PEERS = ("torch", "tensorflow-cpu", "tensorflow", "keras", "transformers", "litgpt",
         "stable-baselines3", "gymnasium")
INSTALL = "pip install -e '.[bench]' (or make bench)"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def versions() -> dict[str, str | None]:
    out = {}
    for p in PEERS:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            if p != "tensorflow":  # tensorflow-cpu is the same package under another name
                out[p] = None
    return out


def stats(values: list[float]) -> dict[str, float]:
    return {"median": float(statistics.median(values)), "min": float(min(values)),
            "max": float(max(values)), "rounds": len(values)}


def interleave(contenders: dict[str, Callable[[], float] | str], rounds: int) -> dict:
    """{name: stats of its figures} over ``rounds`` rounds, contenders taken in turn. A
    contender given as a string is unavailable (the string says why)."""
    figures: dict[str, list[float]] = {k: [] for k, v in contenders.items() if callable(v)}
    for r in range(rounds):
        for name, fn in contenders.items():
            if callable(fn):
                figures[name].append(fn())
        log(f"  round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.0f}"
                                                       for k, v in figures.items()))
    return {k: (stats(figures[k]) if callable(v) else {"unavailable": v})
            for k, v in contenders.items()}


def ratio(table: dict, a: str, b: str) -> float | None:
    if "median" not in table.get(a, {}) or "median" not in table.get(b, {}):
        return None
    return table[a]["median"] / table[b]["median"]


# --- the machine's limit ------------------------------------------------------------------

def matmul_gflops(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


# --- LM training --------------------------------------------------------------------------

def train_flops_per_token(n_params: int) -> float:
    """6 N + 12 L T d (Kaplan et al. 2020, eq. 2.1 with the attention term)."""
    return 6 * n_params + 12 * SIZE["n_layer"] * BLOCK * SIZE["n_embd"]


def trainer(model: torch.nn.Module, forward: Callable, steps: int,
            opt: torch.optim.Optimizer | None = None) -> Callable[[], float]:
    """A closure timing ``steps`` AdamW steps of ``model`` (tokens/s); built once, warm. The
    optimizer is the one its users get: plain AdamW unless ``opt`` is given."""
    opt = opt or torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    x = torch.randint(0, SIZE["vocab_size"], (BATCH, BLOCK + 1),
                      generator=torch.Generator().manual_seed(0))

    def step():
        logits = forward(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        return steps * BATCH * BLOCK / (time.perf_counter() - t0)
    return run


def train_contenders(steps: int) -> tuple[dict, dict[str, int]]:
    torch.manual_seed(0)
    ours = GPT(GPTConfig(block_size=BLOCK, dropout=0.0, **SIZE))
    out: dict = {"rlaif-lab": trainer(ours, lambda x: ours(x).logits, steps,
                                      make_optimizer(ours, TrainConfig()))}
    params = {"rlaif-lab": ours.num_params()}
    try:
        from transformers import GPT2Config, GPT2LMHeadModel

        hf = GPT2LMHeadModel(GPT2Config(n_positions=BLOCK, resid_pdrop=0.0, embd_pdrop=0.0,
                                        attn_pdrop=0.0, bos_token_id=1, eos_token_id=2,
                                        pad_token_id=0, **SIZE))
        out["hf-gpt2"] = trainer(hf, lambda x: hf(input_ids=x).logits, steps)
        params["hf-gpt2"] = sum(p.numel() for p in hf.parameters())
    except ImportError:
        out["hf-gpt2"] = f"transformers not installed: {INSTALL}"
    try:
        from litgpt.config import Config
        from litgpt.model import GPT as LitGPT

        lit = LitGPT(Config(block_size=BLOCK, vocab_size=SIZE["vocab_size"],
                            padded_vocab_size=SIZE["vocab_size"], n_layer=SIZE["n_layer"],
                            n_head=SIZE["n_head"], n_embd=SIZE["n_embd"], bias=True,
                            norm_class_name="LayerNorm", mlp_class_name="GptNeoxMLP",
                            intermediate_size=4 * SIZE["n_embd"], parallel_residual=False))
        out["litgpt"] = trainer(lit, lambda x: lit(x), steps)
        params["litgpt"] = sum(p.numel() for p in lit.parameters())
    except ImportError:
        out["litgpt"] = f"litgpt not installed: {INSTALL}"
    return out, params


# --- generation ---------------------------------------------------------------------------

def gen_contenders(batch: int, new: int) -> dict:
    """Cached and uncached generation at ``batch``, and cached at batch 1: there a step's
    arithmetic is almost nothing, so its time is the per-step cost of calls (Python, dispatch,
    kernel launches) that a larger batch pays too."""
    torch.manual_seed(0)
    ours = GPT(GPTConfig(block_size=2 * BLOCK, dropout=0.0, **SIZE)).eval()

    def ours_run(cache: bool, b: int = batch) -> Callable[[], float]:
        cfg = SampleConfig(max_new_tokens=new, use_cache=cache)
        generate(ours, [[1]] * b, SampleConfig(max_new_tokens=4, use_cache=cache), eos_id=-1,
                 seed=0)

        def run():
            t0 = time.perf_counter()
            outs = generate(ours, [[1]] * b, cfg, eos_id=-1, seed=0)  # eos -1: never stops
            return sum(map(len, outs)) / (time.perf_counter() - t0)
        return run

    out: dict = {"rlaif-lab cached": ours_run(True), "rlaif-lab uncached": ours_run(False),
                 "rlaif-lab cached, batch 1": ours_run(True, 1)}
    try:
        from transformers import GPT2Config, GPT2LMHeadModel

        hf = GPT2LMHeadModel(GPT2Config(n_positions=2 * BLOCK, resid_pdrop=0.0, embd_pdrop=0.0,
                                        attn_pdrop=0.0, bos_token_id=1, eos_token_id=2,
                                        pad_token_id=0, **SIZE)).eval()

        def hf_run(cache: bool, b: int = batch) -> Callable[[], float]:
            ids = torch.ones(b, 1, dtype=torch.long)
            kw = dict(do_sample=True, min_new_tokens=new, max_new_tokens=new, use_cache=cache,
                      attention_mask=torch.ones_like(ids))
            with torch.no_grad():
                hf.generate(ids, **{**kw, "min_new_tokens": 4, "max_new_tokens": 4})

            def run():
                with torch.no_grad():
                    t0 = time.perf_counter()
                    o = hf.generate(ids, **kw)
                return (o.shape[1] - 1) * b / (time.perf_counter() - t0)
            return run
        out["hf cached"], out["hf uncached"] = hf_run(True), hf_run(False)
        out["hf cached, batch 1"] = hf_run(True, 1)
    except ImportError:
        out["hf cached"] = out["hf uncached"] = f"transformers not installed: {INSTALL}"
    return out


def step_ms(table: dict, name: str, batch: int) -> float | None:
    """Milliseconds per decoding step of ``batch`` rows, from a tokens/s figure."""
    return 1e3 * batch / table[name]["median"] if "median" in table.get(name, {}) else None


# --- CartPole PPO -------------------------------------------------------------------------

def ours_ppo(seed: int) -> tuple[float, float]:
    from rl_tf.ppo import PPOConfig, train_ppo

    log_ = train_ppo(PPOConfig(seed=seed, total_steps=100_000, eval_interval=1024,
                               stop_when_solved=True), progress=False)
    return (float(log_.steps_to_solve or np.inf), log_.wall_seconds / log_.steps * 10_000)


def sb3_ppo(seed: int) -> tuple[float, float]:
    """SB3 PPO with the rl-baselines3-zoo CartPole-v1 hyperparameters, evaluated like ours."""
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    def linear(v):
        return lambda progress: progress * v

    class Solved(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next, self.solved_at = 1024, None

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next:
                return True
            self.next += 1024
            env, rets = gym.make("CartPole-v1"), []
            for ep in range(10):
                obs, _ = env.reset(seed=10_000 + ep)
                done, total = False, 0.0
                while not done:
                    a, _ = self.model.predict(obs, deterministic=True)
                    obs, r, term, trunc, _ = env.step(int(a))
                    total, done = total + r, term or trunc
                rets.append(total)
            if np.mean(rets) >= 475:
                self.solved_at = self.num_timesteps
                return False
            return True

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
                n_epochs=20, ent_coef=0.0, learning_rate=linear(0.001), clip_range=linear(0.2),
                seed=seed, verbose=0, device="cpu")
    cb = Solved()
    t0 = time.perf_counter()
    model.learn(100_000, callback=cb)
    wall = time.perf_counter() - t0
    return float(cb.solved_at or np.inf), wall / model.num_timesteps * 10_000


def cartpole(seeds) -> dict:
    rows: dict[str, list[tuple[float, float]]] = {"rlaif-lab": [], "sb3": []}
    try:
        import stable_baselines3  # noqa: F401
        have_sb3 = True
    except ImportError:
        have_sb3 = False
    for seed in seeds:  # interleaved: ours, SB3, ours, SB3, ...
        rows["rlaif-lab"].append(ours_ppo(seed))
        if have_sb3:
            rows["sb3"].append(sb3_ppo(seed))
        log(f"  seed {seed}: " + ", ".join(f"{k} {v[-1][0]:.0f} steps" for k, v in rows.items()
                                           if v))
    out = {}
    for k, v in rows.items():
        if v:
            out[k] = {"steps_to_solve": [s for s, _ in v],
                      "median_steps": float(statistics.median(s for s, _ in v)),
                      "seconds_per_10k": float(statistics.median(w for _, w in v))}
        else:
            out[k] = {"unavailable": f"stable-baselines3 not installed: {INSTALL}"}
    return out


# --- the RL rollout -----------------------------------------------------------------------

def rollout_contenders(root: Path) -> tuple[dict, Callable[[], dict]]:
    """The RL stage's own rollout (``bridge.rollout.rollout`` driving ``rl_tf.rlaif
    .ResidualPolicy``, what ``rlaif-lab run`` runs), LM-only sampling, and the same
    environment driven by a free policy (the argmax of the LM's logits, no framework): the
    ceiling of any policy's rollout through the environment. Plus a closure that times the
    parts of a rollout step one by one (milliseconds per step of B = 64)."""
    import bench_bridge as bb
    import tensorflow as tf

    from bridge.numerics import log_softmax
    from bridge.rollout import rollout
    from rl_tf.rl_config import RLConfig
    from rl_tf.rlaif import ResidualPolicy
    from rlaif_lab.envs import make_batched_env

    ck = bb.make_checkpoint(root)
    env = make_batched_env(ck, prompts=bb.PROMPTS, batch_size=bb.B, max_new_tokens=bb.NEW)
    V, D = env.meta.vocab_size, env.meta.hidden_size
    pol = ResidualPolicy(V, D, RLConfig(), seed=0)
    prompts = bb._prompts()

    def stage() -> float:
        t0 = time.perf_counter()
        ro, _ = rollout(env, pol, prompts, seed=0)
        return float(ro.mask.sum()) / (time.perf_counter() - t0)

    def free() -> float:
        s, n, t0 = env.reset(prompts=prompts), 0, time.perf_counter()
        while not s.done.all():
            n += int((~s.done).sum())
            s, _, _, _ = env.step(s.logits.argmax(-1).astype(np.int32))
        return n / (time.perf_counter() - t0)

    stage()
    free()
    s = env.reset(prompts=prompts)
    h, lg = s.hidden.copy(), s.logits.copy()
    sig = [tf.TensorSpec([None, D], tf.float32), tf.TensorSpec([None, V], tf.float32)]
    empty = tf.function(lambda a, b: b, input_signature=sig).get_concrete_function()
    rngs = [np.random.default_rng([0, b]) for b in range(bb.B)]

    def per_call(fn, n: int = 200) -> float:
        fn()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n * 1e3

    def parts() -> dict:
        return {"keras policy.act": per_call(lambda: pol.act(h, lg)),
                "an empty tf.function call, same inputs": per_call(
                    lambda: empty(tf.constant(h), tf.constant(lg)).numpy()),
                "gumbel noise, one generator per sequence": per_call(
                    lambda: np.stack([r.gumbel(size=V) for r in rngs])),
                "log-softmax of pi and pi_ref": per_call(
                    lambda: (log_softmax(lg), log_softmax(lg)))}
    return {"lm-only sampling": lambda: bb.bench_generate(ck), "env + free policy": free,
            "the rl stage's rollout (keras)": stage}, parts


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds and seeds (< 3 min)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds = 3 if args.quick else 5
    t_start = time.perf_counter()
    result: dict = {"versions": versions(), "threads": torch.get_num_threads(),
                    "quick": args.quick}
    log(f"matmul peak (fp32, 1024 x 1024), {torch.get_num_threads()} threads")
    result["matmul_peak_gflops"] = stats([matmul_gflops() for _ in range(rounds)])["median"]

    log("LM training, batch 32 x 128 tokens")
    contenders, params = train_contenders(steps=5 if args.quick else 15)
    train = interleave(contenders, rounds)
    result["train"] = {k: {**v, "params": params.get(k)} for k, v in train.items()}
    ours_tps = train["rlaif-lab"]["median"]
    result["train_tokens_per_s"] = ours_tps
    result["train_gflops"] = ours_tps * train_flops_per_token(params["rlaif-lab"]) / 1e9
    result["train_vs_hf"] = ratio(train, "rlaif-lab", "hf-gpt2")
    result["train_vs_litgpt"] = ratio(train, "rlaif-lab", "litgpt")

    new = 64 if args.quick else 128
    log(f"generation, batch 64 x {new} new tokens")
    gen = interleave(gen_contenders(64, new), rounds)
    result["generate"] = gen
    result["generate_tokens_per_s_cached"] = gen["rlaif-lab cached"]["median"]
    result["generate_gflops_cached"] = (gen["rlaif-lab cached"]["median"] * 2
                                        * params["rlaif-lab"] / 1e9)
    result["generate_vs_hf_cached"] = ratio(gen, "rlaif-lab cached", "hf cached")
    result["generate_vs_hf_uncached"] = ratio(gen, "rlaif-lab uncached", "hf uncached")
    ms = {"rlaif-lab": step_ms(gen, "rlaif-lab cached", 64),
          "rlaif-lab, batch 1": step_ms(gen, "rlaif-lab cached, batch 1", 1),
          "hf": step_ms(gen, "hf cached", 64),
          "hf, batch 1": step_ms(gen, "hf cached, batch 1", 1)}
    result["generate_step_ms"] = ms
    # what ours would reach against HF if its per-step calls (the batch-1 step) cost nothing
    # and only the batch-64 step's extra -- the arithmetic -- were left
    result["generate_vs_hf_cached_ceiling"] = (
        ms["hf"] / (ms["rlaif-lab"] - ms["rlaif-lab, batch 1"])
        if ms["hf"] and ms["rlaif-lab"] > ms["rlaif-lab, batch 1"] else None)

    log("the RL rollout, B = 64 x 64 tokens")
    with tempfile.TemporaryDirectory() as d:
        contenders, parts = rollout_contenders(Path(d))
        roll = interleave(contenders, rounds)
        steps = [parts() for _ in range(rounds)]
    result["rollout"] = roll
    result["rl_rollout_vs_lm_only"] = ratio(roll, "the rl stage's rollout (keras)",
                                            "lm-only sampling")
    # the ceiling: a policy that costs nothing, through the same environment
    result["rl_rollout_ceiling_vs_lm_only"] = ratio(roll, "env + free policy",
                                                    "lm-only sampling")
    per_step = {k: step_ms(roll, k, 64) for k in roll}  # ms per 64 tokens
    per_step.update({k: statistics.median(s[k] for s in steps) for k in steps[0]})
    result["rollout_step_ms"] = per_step
    # the bound of the design: a free policy through the environment, plus what every step of
    # the stage's rollout must add however small the network -- one TensorFlow call, the
    # per-sequence Gumbel noise (framework-free, bridge/rollout.py) and two log-softmaxes
    floor = sum(per_step[k] for k in ("env + free policy", "an empty tf.function call, same "
                                      "inputs", "gumbel noise, one generator per sequence",
                                      "log-softmax of pi and pi_ref"))
    result["rl_rollout_bound_vs_lm_only"] = per_step["lm-only sampling"] / floor

    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    log(f"CartPole-v1 PPO, seeds {seeds}")
    cp = cartpole(seeds)
    result["cartpole"] = cp
    result["cartpole_median_steps"] = cp["rlaif-lab"]["median_steps"]
    result["cartpole_steps_vs_sb3"] = (cp["rlaif-lab"]["median_steps"] / cp["sb3"]["median_steps"]
                                       if "median_steps" in cp["sb3"] else None)
    log("the RL stage vs TRL GRPO (smoke run, reviews)")
    import rl_vs_trl

    with tempfile.TemporaryDirectory() as d:
        trl = rl_vs_trl.compare(Path(d), args.quick,
                                (3e-4, 1e-3) if args.quick else (1e-4, 3e-4, 1e-3, 3e-3))
    result["rl_stage_vs_trl"] = trl
    result["rl_stage_vs_trl_wall"] = trl.get("wall_vs_trl")
    result["seconds"] = time.perf_counter() - t_start
    if args.json:
        print(json.dumps(result, indent=1, default=float))
    else:
        report(result)
    return result


def report(r: dict) -> None:
    def fmt(v):
        return f"{v:.2f}x" if isinstance(v, float) else "n/a"
    print(f"versions: {r['versions']}; {r['threads']} torch threads")
    print(f"matmul peak: {r['matmul_peak_gflops']:.0f} GFLOP/s")
    for section in ("train", "generate", "rollout"):
        print(f"{section} (tokens/s, median [min-max] over rounds):")
        for k, v in r[section].items():
            print(f"  {k:22s} " + (f"{v['median']:8.0f} [{v['min']:.0f}-{v['max']:.0f}]"
                                   if "median" in v else v["unavailable"]))
    print(f"training: {r['train_gflops']:.0f} GFLOP/s achieved; vs HF GPT-2 "
          f"{fmt(r['train_vs_hf'])}, vs LitGPT {fmt(r['train_vs_litgpt'])}")
    print(f"generation vs HF generate: cached {fmt(r['generate_vs_hf_cached'])}, uncached "
          f"{fmt(r['generate_vs_hf_uncached'])}; {r['generate_gflops_cached']:.0f} GFLOP/s")
    print("  ms per decoding step: " + ", ".join(
        f"{k} {v:.2f}" for k, v in r["generate_step_ms"].items() if v is not None)
        + f"; ceiling vs HF with no per-step overhead {fmt(r['generate_vs_hf_cached_ceiling'])}")
    print(f"RL rollout with the Keras policy vs LM-only sampling: "
          f"{fmt(r['rl_rollout_vs_lm_only'])} (a free policy through the same environment: "
          f"{fmt(r['rl_rollout_ceiling_vs_lm_only'])}; with one TF call, the noise and the "
          f"log-softmaxes it must add: {fmt(r['rl_rollout_bound_vs_lm_only'])})")
    print("  ms per step of 64 tokens: " + ", ".join(
        f"{k} {v:.2f}" for k, v in r["rollout_step_ms"].items()))
    for k, v in r["cartpole"].items():
        print(f"CartPole PPO {k}: " + (f"steps to solve {v['steps_to_solve']}, median "
                                       f"{v['median_steps']:.0f}, {v['seconds_per_10k']:.1f} s "
                                       "per 10 k steps" if "median_steps" in v
                                       else v["unavailable"]))
    import rl_vs_trl

    rl_vs_trl.report(r["rl_stage_vs_trl"])
    print(f"({r['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
