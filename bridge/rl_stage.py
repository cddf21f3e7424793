"""The RL stage of a run: the TF policy drives the Torch LM through the bridge (book 3.1, 4.3.2).

Each iteration: B training prompts -> rollout through ``BatchedTextEnv`` -> the feedback
sources score the completions -> fusion (``rl_tf.feedback``) -> returns with the KL penalty ->
one REINFORCE (or PPO) update -> the KL controller. Randomness per iteration is a function of
(seed, iteration); the state (policy, optimizer, KL coefficient, fusion statistics, history)
is saved every ``ckpt_interval`` iterations, so ``--resume`` continues exactly.
"""

from __future__ import annotations

import json

import numpy as np
from tqdm.auto import tqdm

from lm_torch import grammar
from lm_torch.io import atomic_write_json
from rl_tf.feedback import FeedbackFuser, query_sources
from rl_tf.logger import Logger
from rl_tf.rlaif import KLController, ResidualPolicy, Trainer, kl_estimates, returns_with_kl
from rl_tf.rlaif import rollout as run_rollout


def iteration_seed(seed: int, it: int) -> int:
    return (seed * 1_000_003 + it * 7919) % (2**31 - 1)


def _fuser_state(f: FeedbackFuser) -> dict[str, np.ndarray]:
    m = f.moments
    return {"fuser_n": np.array([m.n]), "fuser_mean": m.mean, "fuser_m2": m.m2,
            "fuser_weights": f.weights}


def _set_fuser_state(f: FeedbackFuser, st: dict) -> None:
    f.moments.n = float(st["fuser_n"][0])
    f.moments.mean, f.moments.m2 = st["fuser_mean"].copy(), st["fuser_m2"].copy()
    f.weights = st["fuser_weights"].copy()


def train_rl(run) -> dict:
    from .pipeline import load_arrays, save_arrays

    cfg, seed = run.rl_config(), run.cfg.seed
    out = run.out / "rl"
    out.mkdir(parents=True, exist_ok=True)
    env = run.env(cfg.batch_size)
    policy = ResidualPolicy(env.meta.vocab_size, env.meta.hidden_size, cfg, seed)
    trainer = Trainer(policy, cfg)
    kl = KLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon)
    sources, fuser = run.reward_sources(), run.fuser()
    names = tuple(sources)
    history: list[dict] = []
    start = 0
    if (out / "state.npz").is_file():  # resume
        st = load_arrays(out / "state.npz")
        policy.set_state({k: v for k, v in st.items() if k[0] in "gvo"})
        _set_fuser_state(fuser, st)
        kl.value = float(st["kl_coef"][0])
        start = int(st["iteration"][0])
        history = json.loads((out / "history.json").read_text())[:start]
        run.log(f"[rl] resuming at iteration {start}")
    logger = Logger(out / "tb")
    train_prompts = env.prompt_texts
    bar = tqdm(range(start, cfg.iterations), initial=start, total=cfg.iterations, desc="rl",
               disable=not run.progress, dynamic_ncols=True, mininterval=1.0)
    for it in bar:
        policy.reseed(iteration_seed(seed, it))
        rng = np.random.default_rng([seed, 2, it])
        prompts = [train_prompts[i] for i in rng.integers(0, len(train_prompts), cfg.batch_size)]
        ro, final = run_rollout(env, policy, prompts)
        completions = env.completions(final)
        scores, errors = query_sources(sources, prompts, completions)
        fused = fuser(scores, names)
        ro.mask &= fused.valid[None, :]  # dropped feedback: those sequences are not learnt from
        kls = kl_estimates(ro)
        returns = returns_with_kl(ro, fused.fused, kl.value, cfg.alpha)
        stats = trainer.update(ro, returns) if ro.mask.any() else {}
        beta = kl.value
        kl.update(kls["kl/exact"], cfg.batch_size)
        texts = [f"{p} {c}".strip() for p, c in zip(prompts, completions)]
        row = {**stats, **{k: v for k, v in kls.items() if not k.startswith("_")},
               "rl/kl_coef": beta, "rl/fused_feedback": float(fused.fused.mean()),
               "rl/length": float(np.mean([len(c.split()) for c in completions])),
               "rl/well_formed": float(np.mean([grammar.is_well_formed(t) for t in texts])),
               "rl/gold": float(np.mean([grammar.gold_score(t) for t in texts])),
               **fused.metrics, "feedback/errors": float(len(errors))}
        history.append({"iteration": it + 1, **row})
        logger.log(it + 1, row)
        bar.set_postfix(gold=f"{row['rl/gold']:.2f}", kl=f"{row['kl/exact']:.2f}",
                        wf=f"{row['rl/well_formed']:.2f}")
        if (it + 1) % cfg.ckpt_interval == 0 or it + 1 == cfg.iterations:
            save_arrays(out / "state.npz", {
                **policy.get_state(), **_fuser_state(fuser), "kl_coef": np.array([kl.value]),
                "iteration": np.array([it + 1])})
            atomic_write_json(out / "history.json", history)
    bar.close()
    logger.close()
    return {"iterations": cfg.iterations, "final": history[-1] if history else {}}
