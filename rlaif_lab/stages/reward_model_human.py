"""Stage ``reward_model_human``: the reward model of RLHF -- the same model, loss and number of
pairs as ``reward_model``, trained on the human stand-in's labels (book 5.3: RLAIF vs RLHF).
Writes ``OUT/reward_model_human``."""

from __future__ import annotations

from ..context import RunContext
from .reward_model import train_on

INPUTS = ("reward_model",)
AFTER = ("labels",)


def run(ctx: RunContext) -> dict:
    return train_on(ctx, "human_labels", "reward_model_human")
