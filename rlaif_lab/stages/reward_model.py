"""Stage ``reward_model``: a Transformer with a scalar head trained on the AI labels with the
Bradley-Terry loss (book 3.2; the noise-robust variant of 4.3.3 with ``reward_model.robust``).
Writes ``OUT/reward_model``."""

from __future__ import annotations

import numpy as np

from lm_torch import judges as J
from lm_torch.reward_model import train_reward_model

from ..context import RunContext

INPUTS = ("reward_model",)
AFTER = ("labels",)


def run(ctx: RunContext) -> dict:
    d = ctx.labels()
    rm = train_reward_model(ctx.sft().tokenizer, d["prompts"], d["a"], d["b"],
                            np.array(d["labels"], np.float32), ctx.cfg.reward_model)
    J.save_encoder(ctx.out / "reward_model", rm.encoder)
    return {}
