"""Stage ``labels``: completion pairs sampled from the SFT model, labelled twice (book 3.2.1,
5.3) -- by the AI labeler (the judge asked in both orders; injected flips, position bias and
noise, book 4.3.3) for RLAIF, and by the human stand-in (``lm_torch.human``: a Bradley-Terry
rater over a rating the judge only partly sees) for RLHF. Writes ``OUT/labels/pairs.json``;
``done.json`` reports the AI labels' agreement with the gold scorer and with the human labels."""

from __future__ import annotations

import numpy as np

from lm_torch.human import HumanRater, agreement, human_preferences
from lm_torch.io import atomic_write_json
from lm_torch.judges import join
from lm_torch.labeler import AILabeler, sample_pairs
from lm_torch.tasks import gold_score

from ..context import RunContext

INPUTS = ("seed", "lm.corpus", "labels", "labeler", "human", "rl.max_new_tokens")
AFTER = ("sft", "judges")


def run(ctx: RunContext) -> dict:
    cfg, sft, train = ctx.cfg, ctx.sft(), ctx.corpus.train
    rng = np.random.default_rng([cfg.seed, 1])
    prompts = [train[i].prompt for i in rng.integers(0, len(train), cfg.labels.n_pairs)]
    P, A, B = sample_pairs(sft.model, sft.tokenizer, prompts, seed=cfg.seed,
                           max_new_tokens=cfg.rl.max_new_tokens)
    labels = AILabeler(ctx.judge().score, cfg.labeler).label(P, A, B)
    human = human_preferences(HumanRater(cfg.human), P, A, B,
                              rng=np.random.default_rng([cfg.seed, 3]))
    ga = np.array([gold_score(join(p, c)) for p, c in zip(P, A)])
    gb = np.array([gold_score(join(p, c)) for p, c in zip(P, B)])
    atomic_write_json(ctx.out / "labels" / "pairs.json",
                      {"prompts": P, "a": A, "b": B, "labels": labels.tolist(),
                       "human_labels": human.tolist()})
    return {**AILabeler.report(labels, ga, gb), "ai_human_agreement": agreement(labels, human)}
