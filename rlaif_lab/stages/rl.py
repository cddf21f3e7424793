"""Stage ``rl`` (RLAIF): the policy (Keras, or its PyTorch twin with ``--rl.framework torch``)
drives the Torch LM through the bridge, rewarded by AI feedback (book 3.1, 4.3.2). The stage
``rl_human`` (RLHF) runs the same loop with the reward model of the human labels.

Each iteration: B training prompts -> rollout through ``BatchedTextEnv`` in ``rl.shards``
shards, here or on Ray workers (:func:`rollout_engine`) -> the feedback
sources score the completions -> fusion (``rl_tf.feedback``) -> returns with the KL penalty ->
one REINFORCE (or PPO) update -> the KL controller. Randomness per iteration is a function of
(seed, iteration) (``bridge.numerics.iteration_seed``). Every ``rl.ckpt_interval`` iterations
the whole state -- policy and optimizer, fusion statistics, KL coefficient and the history of
every iteration so far -- is written as one atomic ``state.npz``; ``history.json`` and the
TensorBoard segment are derived from it afterwards, so a run killed between any two writes
resumes to the same numbers and TensorBoard never holds a step twice.
"""

from __future__ import annotations

import functools
import json

import numpy as np
from tqdm.auto import tqdm

from bridge import metrics as M
from bridge.files import atomic_write_json
from bridge.npz import save_arrays
from bridge.numerics import iteration_seed
from bridge.rollout import KLController, kl_estimates, returns_with_kl, shaped_feedback
from bridge.shards import rollout_in_shards
from lm_torch import grammar
from lm_torch.device import cpu_threads
from lm_torch.tasks import gold_score
from rl_tf.feedback import FeedbackFuser, query_sources
from rl_tf.logger import Logger, tensorboard_resume, write_tensorboard_segment

from ..context import RunContext, shard_threads
from ..diversity import distinct_n, repeated_sentence_rate

INPUTS = ("seed", "lm.corpus", "rl", "feedback", "human")
AFTER = ("sft", "judges", "reward_model")


def fuser_state(f: FeedbackFuser) -> dict[str, np.ndarray]:
    m = f.moments
    return {"fuser/n": np.array([m.n]), "fuser/mean": m.mean, "fuser/m2": m.m2,
            "fuser/weights": f.weights}


def set_fuser_state(f: FeedbackFuser, st: dict) -> None:
    f.moments.n = float(st["fuser/n"][0])
    f.moments.mean, f.moments.m2 = st["fuser/mean"].copy(), st["fuser/m2"].copy()
    f.weights = st["fuser/weights"].copy()


def _history_array(history: list[dict]) -> np.ndarray:
    return np.frombuffer(json.dumps(history).encode(), dtype=np.uint8)


def run(ctx: RunContext) -> dict:
    return train(ctx, "rl", "rlaif")


def prefix_potentials(env, final, prompts, sources, fuser, names) -> np.ndarray:
    """Phi(s_t) for t = 0..T: the fused feedback of each sequence's first t generated tokens
    (t = 0: the prompt alone), scored batch by batch without updating the fuser: (T + 1, B)."""
    plen = env.prompt_lengths
    n = final.lengths - plen
    phi = []
    for t in range(int(n.max()) + 1):
        texts = [env.tokenizer.decode(final.tokens[b, plen[b]: plen[b] + min(t, n[b])]).strip()
                 for b in range(len(prompts))]
        scores, _ = query_sources(sources, prompts, texts)
        phi.append(fuser(scores, names, update=False).fused)
    return np.stack(phi)


def rollout_engine(ctx: RunContext):
    """How the run's rollouts are computed: ``rollout(env, policy, prompts, seed)`` in
    ``rl.shards`` shards, in this process or on the run's Ray workers (``ctx.scale``) -- the
    same numbers either way (``bridge.shards``)."""
    if ctx.scale.backend == "local":
        return functools.partial(local_rollout, shards=ctx.cfg.rl.shards)
    return ray_workers(ctx).rollout


def local_rollout(env, policy, prompts, seed, shards: int):
    """The shards one after another in this process, each computed as a worker would
    (``shard_threads``)."""
    with cpu_threads(shard_threads(shards)):
        return rollout_in_shards(env, policy, prompts, seed, shards)


def ray_workers(ctx: RunContext):
    """The run's Ray workers (``rlaif_lab.ray_rollout``), started on first use and shared by
    the RLAIF and RLHF stages."""
    from ..ray_rollout import RayRollouts  # Ray is an extra: imported only when asked for

    return ctx.service("ray", lambda: RayRollouts(ctx))


def feedback_sources(ctx: RunContext, arm: str) -> dict:
    """``ctx.reward_sources(arm)``; with ``--feedback-actors`` the learned one (the reward
    model, or the judge) is computed by a Ray actor of its own."""
    sources = ctx.reward_sources(arm)
    if ctx.scale.feedback_actors:
        sources["reward"] = ray_workers(ctx).remote_reward(arm)
    return sources


def train(ctx: RunContext, stage: str, arm: str) -> dict:
    """The RL loop of ``arm`` (``rlaif`` or ``rlhf``), writing into ``OUT/<stage>``."""
    cfg, seed = ctx.cfg.rl, ctx.cfg.seed
    out = ctx.dir(stage)
    env = ctx.env(cfg.batch_size)
    policy = ctx.policy(env.meta.vocab_size, env.meta.hidden_size)
    trainer = ctx.trainer(policy)
    kl = KLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon)
    sources, fuser = feedback_sources(ctx, arm), ctx.fuser()
    rollout = rollout_engine(ctx)
    human = ctx.human()
    names = tuple(sources)
    history: list[dict] = []
    start = 0
    if (out / "state.npz").is_file():  # resume: one file holds everything
        st = ctx.rl_state(stage)
        policy.set_state(st)
        set_fuser_state(fuser, st)
        kl.value = float(st["kl_coef"][0])
        start = int(st["iteration"][0])
        history = json.loads(st["history"].tobytes().decode())
        ctx.log(f"[{stage}] resuming at iteration {start}")
    tb_done = tensorboard_resume(out / "tb", start)
    write_tensorboard_segment(out / "tb", [h for h in history if h["iteration"] > tb_done],
                              "iteration", tb_done + 1, start)
    logger = Logger()  # in memory; it checks every name against bridge.metrics
    train_prompts = env.prompt_texts
    bar = tqdm(range(start, cfg.iterations), initial=start, total=cfg.iterations, desc=stage,
               disable=not ctx.progress, dynamic_ncols=True, mininterval=1.0)
    last_ckpt = start
    for it in bar:
        rng = np.random.default_rng([seed, 2, it])
        prompts = [train_prompts[i] for i in rng.integers(0, len(train_prompts), cfg.batch_size)]
        ro, final = rollout(env, policy, prompts, iteration_seed(seed, it))
        completions = env.completions(final)
        scores, errors = query_sources(sources, prompts, completions)
        fused = fuser(scores, names)
        ro.mask &= fused.valid[None, :]  # dropped feedback: those sequences are not learnt from
        kls = kl_estimates(ro)
        feedback = fused.fused
        if ctx.cfg.feedback.shaping == "per_step":  # book 4.3.2: alpha f_t at every step
            phi = prefix_potentials(env, final, prompts, sources, fuser, names)
            feedback = shaped_feedback(phi[: ro.mask.shape[0] + 1], ro.mask)
        returns = returns_with_kl(ro, feedback, kl.value, cfg.alpha)
        stats = trainer.update(ro, returns) if ro.mask.any() else {}
        beta = kl.value
        kl.update(kls[M.KL_EXACT], cfg.batch_size)
        texts = [f"{p} {c}".strip() for p, c in zip(prompts, completions)]
        row = {**stats, **{k: v for k, v in kls.items() if not k.startswith("_")},
               M.RL_KL_COEF: beta, M.RL_FUSED: float(fused.fused.mean()),
               M.RL_LENGTH: float(np.mean([len(c.split()) for c in completions])),
               M.RL_WELL_FORMED: float(np.mean([grammar.is_well_formed(t) for t in texts])),
               M.RL_GOLD: float(np.mean([gold_score(t) for t in texts])),
               M.RL_HUMAN: float(human.score(prompts, completions).mean()),
               M.RL_DISTINCT_2: distinct_n(completions, 2),
               M.RL_REPEATED: repeated_sentence_rate(completions),
               **fused.metrics, M.FB_ERRORS: float(len(errors))}
        logger.log(it + 1, row)
        history.append({"iteration": it + 1, **row})
        bar.set_postfix(human=f"{row[M.RL_HUMAN]:.2f}", kl=f"{row[M.KL_EXACT]:.2f}",
                        wf=f"{row[M.RL_WELL_FORMED]:.2f}")
        if (it + 1) % cfg.ckpt_interval == 0 or it + 1 == cfg.iterations:
            save_arrays(out / "state.npz", {
                **policy.get_state(), **fuser_state(fuser), "kl_coef": np.array([kl.value]),
                "iteration": np.array([it + 1]), "history": _history_array(history)})
            atomic_write_json(out / "history.json", history)  # a view of state.npz
            write_tensorboard_segment(out / "tb", history[last_ckpt:], "iteration",
                                      last_ckpt + 1, it + 1)
            last_ckpt = it + 1
    bar.close()
    return {"iterations": cfg.iterations, "final": history[-1] if history else {}}
