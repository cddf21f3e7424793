"""Stage ``reward_model``: a scorer trained on the AI labels with the Bradley-Terry loss --
RLAIF's reward (book 3.2; the noise-robust variant of 4.3.3 with ``reward_model.robust``): a
Transformer encoder with a scalar head, or (``reward_model.encoder.backbone lm``) the SFT
language model's calibrated log-likelihood, as InstructGPT initialises its reward model from
the SFT model. Writes ``OUT/reward_model``. Its twin ``reward_model_human`` trains the same
model on the human stand-in's labels of the same pairs (RLHF)."""

from __future__ import annotations

import numpy as np

from lm_torch import judges as J
from lm_torch.lm_scorer import save_lm_scorer, train_lm_reward_model
from lm_torch.reward_model import train_reward_model

from ..context import RunContext

INPUTS = ("reward_model",)
AFTER = ("labels",)


def train_on(ctx: RunContext, labels_key: str, out_name: str) -> dict:
    d, cfg, sft = ctx.labels(), ctx.cfg.reward_model, ctx.sft()
    labels = np.array(d[labels_key], np.float32)
    if cfg.encoder.backbone == "lm":
        rm = train_lm_reward_model(sft.model, sft.tokenizer, d["prompts"], d["a"], d["b"],
                                   labels, cfg)
        save_lm_scorer(ctx.out / out_name, rm)
        return {}
    rm = train_reward_model(sft.tokenizer, d["prompts"], d["a"], d["b"], labels, cfg,
                            device=ctx.device)
    J.save_encoder(ctx.out / out_name, rm.encoder)
    return {}


def run(ctx: RunContext) -> dict:
    return train_on(ctx, "labels", "reward_model")
