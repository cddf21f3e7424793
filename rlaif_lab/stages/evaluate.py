"""Stage ``evaluate``: the experiment's figures on held-out prompts (book 5.3).

The RL policy and the SFT policy (the same policy with g_theta = 0) each complete every held-out
prompt once. Reported, per policy: the mean AI-judge score and gold score, well-formedness,
distinct-1/2, mean length; and for the pair: the win rate of RL against SFT (paired per prompt,
ties count half) by the AI judge and by the corpus's gold scorer (the stand-in for human
raters), and the exact KL(pi_RL || pi_SFT) per sequence. Written to ``OUT/evaluate/eval.json``
and, under the names of ``bridge.metrics``, ``OUT/summary.json``.
"""

from __future__ import annotations

import numpy as np

from bridge import metrics as M
from bridge.files import atomic_write_json
from bridge.numerics import iteration_seed
from bridge.rollout import kl_estimates
from bridge.rollout import rollout as run_rollout
from lm_torch import grammar
from lm_torch.judges import join

from ..context import RunContext

INPUTS = ("seed", "lm.corpus", "rl", "eval")
AFTER = ("rl", "judges")


def win_rate(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pairs where a beats b; ties count half."""
    return float(np.mean((a > b) + 0.5 * (a == b)))


def distinct_n(texts, n: int) -> float:
    """Distinct n-grams over all n-grams of ``texts`` (word level)."""
    grams = [tuple(w[i: i + n]) for t in texts for w in [t.split()]
             for i in range(len(w) - n + 1)]
    return len(set(grams)) / max(len(grams), 1)


def _complete(ctx: RunContext, policy, prompts, seed):
    env = ctx.env(len(prompts))
    ro, final = run_rollout(env, policy, prompts, seed)
    return env.completions(final), kl_estimates(ro)["_per_sequence"]


def policy_stats(prompts, completions, judge_scores) -> tuple[dict, np.ndarray]:
    texts = [join(p, c) for p, c in zip(prompts, completions)]
    gold = np.array([grammar.gold_score(t) for t in texts])
    return {"judge_score": float(np.mean(judge_scores)), "gold_score": float(gold.mean()),
            "well_formed": float(np.mean([grammar.is_well_formed(t) for t in texts])),
            "distinct_1": distinct_n(completions, 1), "distinct_2": distinct_n(completions, 2),
            "length_words": float(np.mean([len(c.split()) for c in completions]))}, gold


def run(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    prompts = [r.prompt for r in ctx.corpus.prompts]
    sft_env = ctx.env(1)
    V, D = sft_env.meta.vocab_size, sft_env.meta.hidden_size
    rl_policy = ctx.policy(V, D)
    rl_policy.set_state(ctx.rl_state())
    sft_policy = ctx.policy(V, D)  # g = 0: the SFT (reference) policy
    seed = iteration_seed(cfg.seed, 10**6)
    rl_c, rl_kl = _complete(ctx, rl_policy, prompts, seed)
    sft_c, _ = _complete(ctx, sft_policy, prompts, seed + 1)
    judge = ctx.judge()
    rl_j, sft_j = judge.score(prompts, rl_c), judge.score(prompts, sft_c)
    rl_stats, rl_gold = policy_stats(prompts, rl_c, rl_j)
    sft_stats, sft_gold = policy_stats(prompts, sft_c, sft_j)
    result = {
        "win_rate_judge": win_rate(rl_j, sft_j), "win_rate_gold": win_rate(rl_gold, sft_gold),
        "kl_per_sequence": float(np.mean(rl_kl)), "n_prompts": len(prompts),
        "rl": rl_stats, "sft": sft_stats,
        "samples": [{"prompt": p, "sft": s, "rl": r} for p, s, r in
                    list(zip(prompts, sft_c, rl_c))[: cfg.eval.n_show]],
    }
    atomic_write_json(ctx.out / "evaluate" / "eval.json", result)
    summary = {M.WIN_JUDGE: result["win_rate_judge"], M.WIN_GOLD: result["win_rate_gold"],
               M.KL_PER_SEQUENCE: result["kl_per_sequence"], M.SEED: cfg.seed}
    for arm, stats in (("rl", rl_stats), ("sft", sft_stats)):
        for k in ("well_formed", "gold_score", "judge_score", "distinct_2", "length_words"):
            summary[f"{arm}/{k}"] = stats[k]
    M.check(summary)
    atomic_write_json(ctx.out / "summary.json", summary)
    return {"win_rate_judge": result["win_rate_judge"], "win_rate_gold": result["win_rate_gold"]}
