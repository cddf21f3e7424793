"""Stage ``rl_human`` (RLHF): the RL loop of ``rl``, rewarded by the reward model trained on
the human stand-in's labels instead of the AI's (book 5.3: RLAIF vs RLHF). Writes
``OUT/rl_human``."""

from __future__ import annotations

from ..context import RunContext
from .rl import train

INPUTS = ("seed", "lm.corpus", "rl", "feedback", "human")
AFTER = ("sft", "judges", "reward_model_human")


def run(ctx: RunContext) -> dict:
    return train(ctx, "rl_human", "rlhf")
