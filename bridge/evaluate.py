"""Evaluation of a run on held-out prompts (book 5.3: the experiment's figures).

The RL policy and the SFT policy (the same policy with g_theta = 0) each complete every held-out
prompt once. Reported, per policy: the mean AI-judge score and gold score, well-formedness,
distinct-1/2, mean length; and for the pair: the win rate of RL against SFT (paired per prompt,
ties count half) by the AI judge and by the corpus's gold scorer (the stand-in for human
raters), and the exact KL(pi_RL || pi_SFT) per sequence. Written to ``OUT/evaluate/eval.json``
and, under stable names, ``OUT/summary.json``.
"""

from __future__ import annotations

import numpy as np

from lm_torch import grammar
from lm_torch.io import atomic_write_json
from lm_torch.judges import join
from rl_tf.rlaif import ResidualPolicy, kl_estimates
from rl_tf.rlaif import rollout as run_rollout

from .rl_stage import iteration_seed


def win_rate(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pairs where a beats b; ties count half."""
    return float(np.mean((a > b) + 0.5 * (a == b)))


def distinct_n(texts, n: int) -> float:
    grams = [tuple(w[i: i + n]) for t in texts for w in [t.split()]
             for i in range(len(w) - n + 1)]
    return len(set(grams)) / max(len(grams), 1)


def _complete(run, policy, prompts, seed):
    env = run.env(len(prompts))
    policy.reseed(seed)
    ro, final = run_rollout(env, policy, prompts)
    return env.completions(final), kl_estimates(ro)["_per_sequence"]


def _policy_stats(prompts, completions, judge_scores) -> dict:
    texts = [join(p, c) for p, c in zip(prompts, completions)]
    gold = np.array([grammar.gold_score(t) for t in texts])
    return {"judge_score": float(np.mean(judge_scores)), "gold_score": float(gold.mean()),
            "well_formed": float(np.mean([grammar.is_well_formed(t) for t in texts])),
            "distinct_1": distinct_n(completions, 1), "distinct_2": distinct_n(completions, 2),
            "length_words": float(np.mean([len(c.split()) for c in completions]))}, gold


def evaluate_run(run) -> dict:
    from .pipeline import load_arrays

    cfg = run.rl_config()
    prompts = [r.prompt for r in run.corpus.prompts]
    sft_env = run.env(1)
    V, D = sft_env.meta.vocab_size, sft_env.meta.hidden_size
    rl_policy = ResidualPolicy(V, D, cfg, run.cfg.seed)
    st = load_arrays(run.out / "rl" / "state.npz")
    rl_policy.set_state({k: v for k, v in st.items() if k[0] in "gvo"})
    sft_policy = ResidualPolicy(V, D, cfg, run.cfg.seed)  # g = 0: the SFT (reference) policy
    seed = iteration_seed(run.cfg.seed, 10**6)
    rl_c, rl_kl = _complete(run, rl_policy, prompts, seed)
    sft_c, _ = _complete(run, sft_policy, prompts, seed + 1)
    judge = run.judge()
    rl_j, sft_j = judge.score(prompts, rl_c), judge.score(prompts, sft_c)
    rl_stats, rl_gold = _policy_stats(prompts, rl_c, rl_j)
    sft_stats, sft_gold = _policy_stats(prompts, sft_c, sft_j)
    result = {
        "win_rate_judge": win_rate(rl_j, sft_j), "win_rate_gold": win_rate(rl_gold, sft_gold),
        "kl_per_sequence": float(np.mean(rl_kl)), "n_prompts": len(prompts),
        "rl": rl_stats, "sft": sft_stats,
        "samples": [{"prompt": p, "sft": s, "rl": r} for p, s, r in
                    list(zip(prompts, sft_c, rl_c))[: run.cfg.eval.n_show]],
    }
    atomic_write_json(run.out / "evaluate" / "eval.json", result)
    summary = {
        "win_rate_vs_sft/judge": result["win_rate_judge"],
        "win_rate_vs_sft/gold": result["win_rate_gold"],
        "kl/per_sequence": result["kl_per_sequence"],
        "rl/well_formed": rl_stats["well_formed"], "sft/well_formed": sft_stats["well_formed"],
        "rl/gold_score": rl_stats["gold_score"], "sft/gold_score": sft_stats["gold_score"],
        "rl/judge_score": rl_stats["judge_score"], "sft/judge_score": sft_stats["judge_score"],
        "rl/distinct_2": rl_stats["distinct_2"], "sft/distinct_2": sft_stats["distinct_2"],
        "rl/length_words": rl_stats["length_words"],
        "sft/length_words": sft_stats["length_words"],
        "seed": run.cfg.seed,
    }
    atomic_write_json(run.out / "summary.json", summary)
    return {"win_rate_judge": result["win_rate_judge"], "win_rate_gold": result["win_rate_gold"]}
