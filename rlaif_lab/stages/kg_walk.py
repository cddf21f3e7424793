"""Stage ``kg_walk`` (runs when the task includes kgqa): RL on the knowledge graph itself
(book 6.3.2). A Keras policy (``rl_tf.kg_walk``) walks from the question's entity along the
facts of the prompt, rewarded for reaching the answer and by the SFT language model's
plausibility of the entity it stops at -- the LM's P(answer = e | facts, question), from its
log-likelihood of ``e .`` after the prompt, normalised over the graph's entities (AI feedback
for the walk). Trained with the project's REINFORCE; evaluated by greedy walks on the held-out
questions, one- and two-hop, beside the LM alone (its most plausible entity).

Writes ``OUT/kg_walk/history.json`` (the learning curve), ``curve.png``, the policy's weights
(``walker.npz``); ``done.json`` holds the success rates that ``evaluate`` reports.
"""

from __future__ import annotations

import numpy as np

from bridge import metrics as M
from bridge.files import atomic_write_json
from bridge.npz import save_arrays
from lm_torch.judges import FluencyJudge
from lm_torch.tasks import kgqa
from rl_tf.kg_walk import ENV_ID, WalkSpec, walk_success
from rl_tf.reinforce import ReinforceConfig, train_reinforce

from ..context import RunContext
from ..plots import new_figure, save_figure

INPUTS = ("seed", "lm.corpus", "kg_walk")
AFTER = ("sft",)


def applies(cfg) -> bool:
    return "kgqa" in cfg.tasks


def questions(records, n: int | None = None) -> tuple[list[str], list[dict]]:
    """(prompts, graphs) of the kgqa records that can be walked, at most ``n``."""
    prompts, graphs = [], []
    for r in records:
        g = kgqa.graph(r.prompt) if r.task == "kgqa" else None
        if g is not None:
            prompts.append(r.prompt)
            graphs.append(g)
        if n is not None and len(graphs) >= n:
            break
    return prompts, graphs


def plausibility(judge: FluencyJudge, prompts, graphs) -> list[dict[str, float]]:
    """The LM's P(answer = e) over each graph's entities e: softmax of its mean
    log-likelihood of ``e .`` after the prompt."""
    P, C, owner = [], [], []
    for i, (p, g) in enumerate(zip(prompts, graphs)):
        for e in sorted({x for h, _, t in g["triples"] for x in (h, t)} | {g["start"]}):
            P.append(p)
            C.append(f"{e} .")
            owner.append((i, e))
    logp = judge.score(P, C)
    out: list[dict[str, float]] = [{} for _ in graphs]
    for (i, e), lp in zip(owner, logp):
        out[i][e] = float(lp)
    for d in out:
        z = np.array(list(d.values()))
        p = np.exp(z - z.max())
        p /= p.sum()
        d.update(zip(d, p.tolist()))
    return out


def run(ctx: RunContext) -> dict:
    cfg, seed = ctx.cfg.kg_walk, ctx.cfg.seed
    out = ctx.dir("kg_walk")
    sft = ctx.sft()
    judge = FluencyJudge(sft.model, sft.tokenizer)
    train_p, train_g = questions(ctx.corpus.train, cfg.n_examples)
    held_p, held_g = questions(ctx.corpus.prompts)
    spec = WalkSpec(kgqa.RELATIONS, tuple(kgqa.QUESTIONS), dict(kgqa.TYPES), cfg.max_hops)
    train_plaus = plausibility(judge, train_p, train_g)
    held_plaus = plausibility(judge, held_p, held_g)
    rcfg = ReinforceConfig(env_id=ENV_ID, seed=seed, total_steps=cfg.steps,
                           episodes_per_batch=cfg.episodes_per_batch, lr=cfg.lr,
                           value_lr=cfg.lr, gamma=1.0, ent_coef=cfg.ent_coef,
                           hidden_dim=cfg.hidden_dim, eval_interval=cfg.eval_interval,
                           eval_episodes=min(64, len(held_g)), solve_return=1.0)
    log = train_reinforce(rcfg, progress=ctx.progress, env_kwargs={
        "vocab": spec, "examples": train_g, "plausibility": train_plaus,
        "plausibility_weight": cfg.plausibility_weight},
        eval_kwargs={"vocab": spec, "examples": held_g})
    success = walk_success(log.model, spec, held_g)
    hops = np.array([len(g["path"]) for g in held_g])
    lm_best = np.array([max(d, key=d.get) == g["answer"] for d, g in zip(held_plaus, held_g)])
    history = [{"step": r["step"], **{k: r[k] for k in (M.EPISODIC_RETURN, M.EVAL_RETURN)
                                      if k in r}} for r in log.logger.history]
    atomic_write_json(out / "history.json", history)
    save_arrays(out / "walker.npz", {f"policy/w{i}": w for i, w in
                                     enumerate(log.model.get_weights())})
    _plot(history, out / "curve.png")
    return {M.WALK_ONE: float(success[hops == 1].mean()) if (hops == 1).any() else 0.0,
            M.WALK_TWO: float(success[hops == 2].mean()) if (hops == 2).any() else 0.0,
            M.WALK_LM: float(lm_best.mean()), "n_train": len(train_g), "n_held_out": len(held_g),
            "steps": log.steps}


def _plot(history: list[dict], path) -> None:
    fig, ax = new_figure()
    rows = [h for h in history if M.EVAL_RETURN in h]
    ax.plot([h["step"] for h in history], [h[M.EPISODIC_RETURN] for h in history], alpha=0.5,
            label="training return (reach + LM plausibility)")
    ax.plot([h["step"] for h in rows], [h[M.EVAL_RETURN] for h in rows], "o-",
            label="greedy success on held-out questions")
    ax.set_xlabel("environment steps")
    ax.set_title("the graph walker learns (REINFORCE, book 6.3.2)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
