"""Stage ``reward_model``: a Transformer with a scalar head trained on the AI labels with the
Bradley-Terry loss -- RLAIF's reward (book 3.2; the noise-robust variant of 4.3.3 with
``reward_model.robust``). Writes ``OUT/reward_model``. Its twin ``reward_model_human`` trains
the same model on the human stand-in's labels of the same pairs (RLHF)."""

from __future__ import annotations

import numpy as np

from lm_torch import judges as J
from lm_torch.reward_model import train_reward_model

from ..context import RunContext

INPUTS = ("reward_model",)
AFTER = ("labels",)


def train_on(ctx: RunContext, labels_key: str, out_name: str) -> dict:
    d = ctx.labels()
    rm = train_reward_model(ctx.sft().tokenizer, d["prompts"], d["a"], d["b"],
                            np.array(d[labels_key], np.float32), ctx.cfg.reward_model)
    J.save_encoder(ctx.out / out_name, rm.encoder)
    return {}


def run(ctx: RunContext) -> dict:
    return train_on(ctx, "labels", "reward_model")
