"""Helpers for tests that start from another run's stages."""

import shutil

#: the stages before RL: what a test of the RL stage (or of what follows it) copies
BEFORE_RL = ("pretrain", "sft", "judges", "labels", "reward_model", "reward_model_human")


def reuse(src, dst, stages=BEFORE_RL) -> None:
    """Copy ``stages`` of the run directory ``src`` into ``dst`` (their done.json included)."""
    for stage in stages:
        shutil.copytree(src / stage, dst / stage)
