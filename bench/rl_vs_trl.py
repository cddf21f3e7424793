"""The RL stage against TRL's GRPO, from the same SFT model, with the same feedback and budget.

Both sides start from one SFT language model of a ``--preset smoke`` run on the review task
(pretrain, sft, judges, AI labels and the reward model are trained once, here):

* **rlaif-lab**: the ``rl`` stage as ``rlaif-lab run`` runs it -- the Keras residual policy over
  the frozen Torch LM, REINFORCE on the fused AI feedback with the adaptive KL penalty;
* **TRL**: ``trl.GRPOTrainer`` fine-tuning a Hugging Face ``GPT2LMHeadModel`` that holds the SFT
  model's weights exactly (our GPT is GPT-2's architecture; the conversion is checked: the
  largest logit difference is reported), with the same reward -- the same sources fused by a
  fresh ``FeedbackFuser`` of the run's config -- the same number of completions (``iterations x
  batch_size``) of at most the same ``max_new_tokens`` tokens, KL coefficient ``beta`` = the
  run's initial ``rl.kl_coef``, and groups of 8 completions per prompt.

Afterwards each side completes the run's held-out prompts once with the same sampler (the
environment of the evaluate stage: for TRL, its fine-tuned weights converted back into the LM
under a zero residual policy), and the human stand-in, the gold scorer and the grammar rate
them: before -> after for both, the share of well-formed completions, and each side's wall
time for its RL training alone. TRL's learning rate is not its default (1e-6, for billion-
parameter models: nothing moves in this budget); ``--trl-lr`` sets it (default 1e-4).

Run: ``python bench/rl_vs_trl.py [--quick] [--json]`` (``bench/peers.py`` runs it as its last
section).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import contextlib
import dataclasses
import importlib.metadata as md
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from bridge.numerics import iteration_seed
from lm_torch import grammar
from lm_torch.judges import join
from lm_torch.model import GPT
from lm_torch.tasks import gold_score

INSTALL = "pip install -e '.[bench]' (or make bench)"
GROUP = 8  #: GRPO completions per prompt
STAGES = ("pretrain", "sft", "judges", "labels", "reward_model")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- our GPT <-> Hugging Face GPT-2 ---------------------------------------------------------

def to_hf(model: GPT):
    """A ``GPT2LMHeadModel`` with ``model``'s weights (GPT-2's Conv1D holds them transposed)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    c = model.config
    hf = GPT2LMHeadModel(GPT2Config(
        vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer,
        n_head=c.n_head, activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, layer_norm_epsilon=1e-5, bos_token_id=1, eos_token_id=2,
        pad_token_id=0, tie_word_embeddings=True))
    with torch.no_grad():
        for name, t in hf.state_dict().items():
            t.copy_(_ours(model, name, t))
    return hf.eval()


def from_hf(hf, model: GPT) -> GPT:
    """``model`` with the weights of the GPT-2 ``hf`` (the inverse of :func:`to_hf`)."""
    hs = hf.state_dict()
    with torch.no_grad():
        for name, p in model.state_dict().items():
            p.copy_(_theirs(hs, name, p))
    return model


_NAMES = {"wte.weight": "transformer.wte.weight", "wpe.weight": "transformer.wpe.weight",
          "ln_f.weight": "transformer.ln_f.weight", "ln_f.bias": "transformer.ln_f.bias",
          "lm_head.weight": "lm_head.weight"}
_CONV = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")


def _hf_name(ours: str) -> str:
    if ours in _NAMES:
        return _NAMES[ours]
    return "transformer." + ours.replace("blocks.", "h.")


def _ours(model: GPT, hf_name: str, like: torch.Tensor) -> torch.Tensor:
    by_hf = {_hf_name(n): (n, t) for n, t in model.state_dict().items()}
    if hf_name not in by_hf:  # GPT-2's attention-mask buffers and the like
        return like
    _, t = by_hf[hf_name]
    return t.T if hf_name.endswith(_CONV) else t


def _theirs(hs: dict, ours: str, like: torch.Tensor) -> torch.Tensor:
    name = _hf_name(ours)
    if name not in hs:
        return like
    return hs[name].T if name.endswith(_CONV) else hs[name]


def hf_tokenizer(tokenizer):
    """Our BPE tokenizer as the ``PreTrainedTokenizerFast`` TRL wants (same ids)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tokenizer.hf, pad_token="<pad>",
                                   bos_token="<bos>", eos_token="<eos>", padding_side="left")


def conversion_error(model: GPT, hf) -> float:
    ids = torch.randint(3, model.config.vocab_size, (4, 24), generator=torch.Generator()
                        .manual_seed(0))
    with torch.no_grad():
        return float((model(ids).logits - hf(ids).logits).abs().max())


# --- the comparison -------------------------------------------------------------------------

def evaluate(ctx, model: GPT | None, policy_state: dict | None, prompts, seed: int) -> dict:
    """One completion per held-out prompt through the evaluate stage's sampler -- the SFT LM
    with a residual policy (``policy_state``; None: g = 0), or another LM ``model`` under g = 0
    -- rated by the human stand-in, the gold scorer and the grammar."""
    from bridge.env import BatchedTextEnv, zero_reward
    from bridge.rollout import rollout
    from lm_torch.backend import LMBackend

    sft = ctx.sft()
    lm = model if model is not None else sft.model
    backend = LMBackend(lm, sft.tokenizer, max_new_tokens=ctx.cfg.rl.max_new_tokens)
    env = BatchedTextEnv(backend, sft.tokenizer, prompts, batch_size=len(prompts),
                         reward_fn=zero_reward)
    policy = ctx.policy(env.meta.vocab_size, env.meta.hidden_size)
    if policy_state is not None:
        policy.set_state(policy_state)
    _, final = rollout(env, policy, prompts, seed)
    comp = env.completions(final)
    texts = [join(p, c) for p, c in zip(prompts, comp)]
    return {"human": float(ctx.human().score(prompts, comp).mean()),
            "gold": float(np.mean([gold_score(t) for t in texts])),
            "well_formed": float(np.mean([grammar.is_well_formed(t) for t in texts])),
            "length_words": float(np.mean([len(c.split()) for c in comp])),
            "samples": comp[:3]}


def reward_function(ctx):
    """TRL's reward: the run's RLAIF feedback sources, fused by a fresh ``FeedbackFuser`` of the
    run's config, exactly as the ``rl`` stage fuses them."""
    from rl_tf.feedback import query_sources

    sources, fuser = ctx.reward_sources("rlaif"), ctx.fuser()
    names = tuple(sources)

    def fused_feedback(prompts, completions, **_):
        prompts = [p.removeprefix("<bos>") for p in prompts]
        completions = [c.strip() for c in completions]
        scores, _ = query_sources(sources, prompts, completions)
        return [float(x) for x in fuser(scores, names).fused]
    return fused_feedback


def train_trl(ctx, root: Path, lr: float, seed: int) -> tuple[GPT, dict]:
    """GRPO from the SFT model with the RL stage's budget: the trained model, and the wall
    seconds from the SFT checkpoint to the trained model (conversion, set-up and training, as
    the rl stage's wall holds its set-up), the mean reward of its last logged steps and the
    conversion's largest logit difference."""
    import transformers
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    transformers.logging.set_verbosity_error()

    t0 = time.perf_counter()  # like the rl stage's wall: set-up included
    cfg = ctx.cfg.rl
    sft = ctx.sft()
    hf = to_hf(sft.model)
    err = conversion_error(sft.model, hf)
    tok = hf_tokenizer(sft.tokenizer)
    hf.generation_config.pad_token_id, hf.generation_config.eos_token_id = 0, 2
    hf.generation_config.bos_token_id = 1
    train_prompts = [r.prompt for r in ctx.corpus.train]
    rng = np.random.default_rng([seed, 7])
    n_prompts = cfg.iterations * cfg.batch_size // GROUP
    data = Dataset.from_dict({"prompt": ["<bos>" + train_prompts[i] for i in
                                         rng.integers(0, len(train_prompts), n_prompts)]})
    args = GRPOConfig(
        output_dir=str(root / "trl"), learning_rate=lr, per_device_train_batch_size=cfg.batch_size,
        num_generations=GROUP, max_completion_length=cfg.max_new_tokens, beta=cfg.kl_coef,
        temperature=cfg.temperature, max_steps=cfg.iterations, num_train_epochs=1,
        logging_steps=max(cfg.iterations // 5, 1), save_strategy="no", report_to=[],
        use_cpu=True, seed=seed, disable_tqdm=True, shuffle_dataset=False,
        dataloader_num_workers=0, bf16=False, fp16=False)
    # TRL builds its reference model from the model's path: the SFT model as a saved GPT-2
    hf.save_pretrained(root / "sft_gpt2")
    trainer = GRPOTrainer(model=str(root / "sft_gpt2"), reward_funcs=reward_function(ctx),
                          args=args, train_dataset=data, processing_class=tok)
    trainer.remove_callback(PrinterCallback)  # its log lines would go to stdout
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")  # the deprecation notes of TRL's dependencies
        trainer.train()
    wall = time.perf_counter() - t0
    rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    return from_hf(trainer.model, ctx.sft().model).eval(), {
        "wall_s": wall, "train_reward_last": float(rewards[-1]), "conversion_error": err}


def compare(root: Path, quick: bool, trl_lrs=(1e-4, 3e-4, 1e-3, 3e-3), seed: int = 0) -> dict:
    """The comparison (see the module docstring) in run directory ``root / "run"``."""
    try:
        versions = {k: md.version(k) for k in ("trl", "transformers", "datasets", "accelerate")}
    except md.PackageNotFoundError as e:
        return {"unavailable": f"{e.name} not installed: {INSTALL}"}
    from rlaif_lab.config import merge_run, preset
    from rlaif_lab.runner import open_run, run_stage

    cfg = preset("smoke")
    if not quick:
        cfg = merge_run(cfg, {"rl": {"iterations": 100}})
    cfg = dataclasses.replace(cfg, seed=seed)
    ctx = open_run(cfg, root / "run", progress=False, log=lambda m: None)
    log("  training the SFT model, judges and reward model (smoke preset, reviews)")
    for name in STAGES:
        run_stage(ctx, name)
    prompts = [r.prompt for r in ctx.corpus.prompts]
    eval_seed = iteration_seed(seed, 10**6)
    out = {"versions": versions, "completions": cfg.rl.iterations * cfg.rl.batch_size,
           "max_new_tokens": cfg.rl.max_new_tokens, "group": GROUP,
           "held_out_prompts": len(prompts),
           "sft": evaluate(ctx, None, None, prompts, eval_seed)}
    log(f"  rlaif-lab rl stage, {out['completions']} completions")
    t0 = time.perf_counter()
    run_stage(ctx, "rl")
    out["rlaif-lab"] = {"wall_s": time.perf_counter() - t0,
                        **evaluate(ctx, None, ctx.rl_state("rl"), prompts, eval_seed)}
    runs = {}
    for lr in trl_lrs:
        log(f"  TRL GRPO, {out['completions']} completions, learning rate {lr:g}")
        model, info = train_trl(ctx, root, lr, seed)
        runs[f"{lr:g}"] = {"lr": lr, **info, **evaluate(ctx, model, None, prompts, eval_seed)}
    out["trl_by_lr"] = runs
    # TRL's headline run: the learning rate its own training reward favours (not the held-out
    # scores, which would pick on the test set)
    out["trl"] = max(runs.values(), key=lambda v: v["train_reward_last"])
    out["conversion_max_logit_diff"] = max(v["conversion_error"] for v in runs.values())
    out["wall_vs_trl"] = out["rlaif-lab"]["wall_s"] / out["trl"]["wall_s"]
    return out


def report(r: dict) -> None:
    if "unavailable" in r:
        print(f"RL stage vs TRL: {r['unavailable']}")
        return
    print(f"RL stage vs TRL GRPO: {r['completions']} completions of <= {r['max_new_tokens']} "
          f"tokens, {r['held_out_prompts']} held-out prompts (TRL: groups of {r['group']}, the "
          f"learning rate of the highest final training reward, {r['trl']['lr']:g}; "
          f"conversion error {r['conversion_max_logit_diff']:.1e})")
    print(f"  {'':14s} {'wall s':>7s} {'human':>6s} {'gold':>6s} {'well-formed':>11s} "
          f"{'words':>6s}")
    rows = {"sft": r["sft"], "rlaif-lab": r["rlaif-lab"],
            **{f"trl {k}": v for k, v in r["trl_by_lr"].items()}}
    for k, v in rows.items():
        wall = f"{v['wall_s']:7.1f}" if "wall_s" in v else " " * 7
        print(f"  {k:14s} {wall} {v['human']:6.2f} {v['gold']:6.2f} {v['well_formed']:11.2f} "
              f"{v['length_words']:6.1f}")
    for k in ("rlaif-lab", "trl"):
        print(f"  {k} sample: {r[k]['samples'][0]!r}")
    print(f"  wall time, ours / TRL's: {r['wall_vs_trl']:.2f}")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the smoke preset's 25 iterations "
                   "(default: 100)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--trl-lr", default="1e-4,3e-4,1e-3,3e-3",
                   help="TRL's learning rates, comma-separated (each is run)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        r = compare(Path(d), args.quick, [float(x) for x in args.trl_lr.split(",")], args.seed)
    if args.json:
        print(json.dumps(r, indent=1, default=float))
    else:
        report(r)
    return r


if __name__ == "__main__":
    main()
