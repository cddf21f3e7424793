"""Stage ``evaluate``: the experiment of book 5.3 -- SFT, RLAIF and RLHF on held-out prompts --
and each task's own metrics (book 6).

Each arm's policy completes every held-out prompt once (SFT: the residual policy with g = 0,
i.e. the reference). The human stand-in (``lm_torch.human``), which the AI judge only partly
sees, and the AI judge rate every completion. Reported:

* win rates, paired per prompt, ties half: RLAIF vs SFT, RLHF vs SFT and RLAIF vs RLHF by the
  human stand-in, each with a 95 % interval from 1000 paired bootstrap resamples of the prompts;
  RLAIF and RLHF vs SFT by the AI judge; RLAIF vs SFT by the gold scorer (the judge's target);
* per arm: human, judge and gold scores, well-formedness, length, distinct-1/2 across prompts,
  distinct-2 within a prompt (several completions of the first prompts) and the share of
  completions that repeat a sentence; the exact KL(pi || pi_SFT) per sequence of both RL arms;
* per task of the run (``task/<task>/...``): the same win rates and statistics on that task's
  prompts, and its own metrics -- dialogue: polite, helpful, on topic, harmless; summary:
  ROUGE-1/2/L against the reference, faithful, coverage; kgqa: exact match (one- and two-hop)
  and the graph walker's success (stage ``kg_walk``);
* the AI labels' agreement with the human labels (from the ``labels`` stage).

Written to ``OUT/evaluate/eval.json`` and, under the names of ``bridge.metrics``,
``OUT/summary.json``.
"""

from __future__ import annotations

import numpy as np

from bridge import metrics as M
from bridge.files import atomic_write_json, read_json
from bridge.numerics import iteration_seed
from bridge.rollout import kl_estimates
from bridge.rollout import rollout as run_rollout
from lm_torch import grammar
from lm_torch.judges import join
from lm_torch.tasks import gold_score, summary, task_facts

from ..context import RunContext
from ..diversity import distinct_n, distinct_within, repeated_sentence_rate

INPUTS = ("seed", "task", "lm.corpus", "rl", "eval", "human")
AFTER = ("rl", "rl_human", "judges", "labels", "kg_walk")
ARMS = {"rl": "rl", "rlhf": "rl_human", "sft": None}  #: summary prefix -> RL stage (None: SFT)
PAIRS = {"rlaif_vs_sft": ("rl", "sft"), "rlhf_vs_sft": ("rlhf", "sft"),
         "rlaif_vs_rlhf": ("rl", "rlhf")}
N_WITHIN, K_WITHIN = 32, 4  #: prompts, and completions per prompt, for distinct-2 within


def win_rate(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pairs where a beats b; ties count half."""
    return float(np.mean((a > b) + 0.5 * (a == b)))


def bootstrap_ci(a: np.ndarray, b: np.ndarray, seed: int, n: int = 1000) -> tuple[float, float]:
    """The 95 % interval of ``win_rate(a, b)`` over ``n`` paired resamples of the prompts."""
    wins = (a > b) + 0.5 * (a == b)
    idx = np.random.default_rng([seed, 5]).integers(0, len(wins), (n, len(wins)))
    lo, hi = np.percentile(wins[idx].mean(1), [2.5, 97.5])
    return float(lo), float(hi)


def win_rates(h: dict[str, np.ndarray], seed: int, prefix: str = "win_rate/") -> dict:
    """The three human win rates with their bootstrap intervals, under ``prefix``."""
    out = {}
    for pair, (a, b) in PAIRS.items():
        lo, hi = bootstrap_ci(h[a], h[b], seed)
        out.update({f"{prefix}{pair}": win_rate(h[a], h[b]), f"{prefix}{pair}_ci_low": lo,
                    f"{prefix}{pair}_ci_high": hi})
    return out


def complete(ctx: RunContext, policy, prompts, seed):
    """One completion per prompt, and the exact KL to the reference per sequence."""
    env = ctx.env(len(prompts))
    ro, final = run_rollout(env, policy, prompts, seed)
    return env.completions(final), kl_estimates(ro)["_per_sequence"]


def arm_stats(prompts, completions, scores: dict[str, np.ndarray]) -> dict:
    texts = [join(p, c) for p, c in zip(prompts, completions)]
    return {"human_score": float(np.mean(scores["human"])),
            "judge_score": float(np.mean(scores["judge"])),
            "gold_score": float(np.mean(scores["gold"])),
            "well_formed": float(np.mean([grammar.is_well_formed(t) for t in texts])),
            "distinct_1": distinct_n(completions, 1), "distinct_2": distinct_n(completions, 2),
            "repeated_sentence_rate": repeated_sentence_rate(completions),
            "length_words": float(np.mean([len(c.split()) for c in completions]))}


def task_stats(task: str, records, completions) -> dict[str, float]:
    """The task's own metrics (``bridge.metrics.TASK_STATS``) of one arm on its prompts."""
    facts = [task_facts(task, r.prompt, c) for r, c in zip(records, completions)]
    out = {k: float(np.mean([f[k] for f in facts])) for k in M.TASK_STATS[task]
           if k in facts[0]}
    if task == "summary":
        out.update(summary.rouge([r.reference for r in records], completions))
    if task == "kgqa":
        for hops, name in ((1.0, "exact_match_one_hop"), (2.0, "exact_match_two_hop")):
            sel = [f["exact_match"] for f in facts if f["hops"] == hops]
            out[name] = float(np.mean(sel)) if sel else 0.0
    return out


def run(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    records = list(ctx.corpus.prompts)
    prompts = [r.prompt for r in records]
    meta = ctx.env(1).meta
    V, D = meta.vocab_size, meta.hidden_size
    judge, human = ctx.judge(), ctx.human()
    seed = iteration_seed(cfg.seed, 10**6)
    within_prompts = [p for p in prompts[:N_WITHIN] for _ in range(K_WITHIN)]
    comp, scores, stats, kls, within = {}, {}, {}, {}, {}
    for i, (arm, stage) in enumerate(ARMS.items()):
        policy = ctx.policy(V, D)  # g = 0: the SFT (reference) policy unless trained below
        if stage is not None:
            policy.set_state(ctx.rl_state(stage))
        comp[arm], kl = complete(ctx, policy, prompts, seed + i)
        kls[arm] = float(np.mean(kl))
        texts = [join(p, c) for p, c in zip(prompts, comp[arm])]
        scores[arm] = {"human": human.score(prompts, comp[arm]),
                       "judge": judge.score(prompts, comp[arm]),
                       "gold": np.array([gold_score(t) for t in texts])}
        stats[arm] = arm_stats(prompts, comp[arm], scores[arm])
        several, _ = complete(ctx, policy, within_prompts, seed + 10 + i)
        within[arm] = [several[j: j + K_WITHIN] for j in range(0, len(several), K_WITHIN)]
        stats[arm]["distinct_2_within"] = distinct_within(within[arm], 2)
    per_task, samples = {}, {}
    for task in cfg.tasks:
        rows = [j for j, r in enumerate(records) if r.task == task]
        recs = [records[j] for j in rows]
        p = [prompts[j] for j in rows]
        per_task[f"task/{task}/n_prompts"] = len(rows)
        per_task.update(win_rates({a: scores[a]["human"][rows] for a in ARMS}, cfg.seed,
                                  f"task/{task}/win_rate/"))
        for arm in ARMS:
            c = [comp[arm][j] for j in rows]
            st = arm_stats(p, c, {k: v[rows] for k, v in scores[arm].items()})
            st.update(task_stats(task, recs, c))
            per_task.update({f"task/{task}/{arm}/{k}": v for k, v in st.items()
                             if k in M.TASK_COMMON or k in M.TASK_STATS[task]})
        samples[task] = [{"prompt": prompts[j], "reference": records[j].reference,
                          **{arm: comp[arm][j] for arm in ARMS}} for j in rows[: cfg.eval.n_show]]
    if "kgqa" in cfg.tasks:
        walk = read_json(ctx.out / "kg_walk" / "done.json", "kg_walk stage")
        per_task.update({k: walk[k] for k in (M.WALK_ONE, M.WALK_TWO, M.WALK_LM)})
    labels = read_json(ctx.out / "labels" / "done.json", "labels stage")
    summary_json = {
        **win_rates({a: scores[a]["human"] for a in ARMS}, cfg.seed),
        M.WIN_RLAIF_JUDGE: win_rate(scores["rl"]["judge"], scores["sft"]["judge"]),
        M.WIN_RLHF_JUDGE: win_rate(scores["rlhf"]["judge"], scores["sft"]["judge"]),
        M.WIN_JUDGE: win_rate(scores["rl"]["judge"], scores["sft"]["judge"]),
        M.WIN_GOLD: win_rate(scores["rl"]["gold"], scores["sft"]["gold"]),
        M.KL_PER_SEQUENCE: kls["rl"], M.KL_PER_SEQUENCE_RLHF: kls["rlhf"],
        M.AI_HUMAN_AGREEMENT: labels["ai_human_agreement"], M.SEED: cfg.seed,
        **{f"{arm}/{k}": v for arm, st in stats.items() for k, v in st.items()},
        **per_task,
    }
    M.check(summary_json)
    result = {
        "summary": summary_json, "n_prompts": len(prompts), "arms": stats,
        "samples": [{"prompt": p, "sft": s, "rlaif": r, "rlhf": q} for p, s, r, q in
                    list(zip(prompts, comp["sft"], comp["rl"], comp["rlhf"]))[: cfg.eval.n_show]],
        "task_samples": samples,
        "several": [{"prompt": within_prompts[j * K_WITHIN],
                     **{arm: within[arm][j] for arm in ARMS}} for j in range(2)],
    }
    atomic_write_json(ctx.out / "evaluate" / "eval.json", result)
    atomic_write_json(ctx.out / "summary.json", summary_json)
    return {k: summary_json[k] for k in ("win_rate/rlaif_vs_sft", "win_rate/rlhf_vs_sft",
                                         "win_rate/rlaif_vs_rlhf")}
