"""The configuration of a whole RLAIF run, and its presets (``smoke``, ``default``, ``full``).

One frozen dataclass per stage; ``RunConfig`` holds them all and is written, resolved, to
``OUT/config.json``. Presets differ only in sizes. Imports no framework.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from rl_tf.rl_config import RLConfig  # no TensorFlow: rl_tf/__init__ only sets env vars

from .cli_config import merge


def _positive_ints(obj) -> None:
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, int) and not isinstance(v, bool) and v < 1:
            raise ValueError(f"{type(obj).__name__}.{f.name} must be >= 1, got {v}")


@dataclass(frozen=True)
class LMStage:
    """Pre-training and SFT of the LM (book 2.1.3, 4.1.3)."""

    n_train: int = field(default=20000, metadata={"help": "corpus training documents"})
    n_layer: int = field(default=4, metadata={"help": "Transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads"})
    n_embd: int = field(default=128, metadata={"help": "model width"})
    block_size: int = field(default=128, metadata={"help": "context length"})
    pretrain_steps: int = field(default=400, metadata={"help": "pre-training steps"})
    sft_steps: int = field(default=150, metadata={"help": "SFT steps (prompt -> completion)"})
    lr: float = field(default=3e-3, metadata={"help": "peak learning rate"})

    def __post_init__(self):
        _positive_ints(self)


@dataclass(frozen=True)
class FeedbackStage:
    """Judges, AI labels and the reward model (book 3.2, 4.3)."""

    judge_steps: int = field(default=400, metadata={"help": "classifier judge training steps"})
    n_pairs: int = field(default=4000, metadata={"help": "completion pairs the AI labels"})
    flip_rate: float = field(default=0.0, metadata={"help": "injected label flip rate"})
    position_bias: float = field(default=0.0, metadata={"help": "injected position bias"})
    noise_sigma: float = field(default=0.0, metadata={"help": "injected judge score noise"})
    swap: bool = field(default=True, metadata={"help": "ask the labeler in both orders"})
    rm_steps: int = field(default=400, metadata={"help": "reward model training steps"})
    robust_rm: bool = field(default=False, metadata={"help": "noise-robust Bradley-Terry"})
    reward: str = field(default="rm", metadata={"help": "rm (distilled) or direct (d-RLAIF)",
                                                 "choices": ("rm", "direct")})
    fusion: str = field(default="fixed", metadata={"help": "fixed or inverse_variance weights",
                                                    "choices": ("fixed", "inverse_variance")})
    grammar_weight: float = field(default=3.0, metadata={
        "help": "weight of the grammar critic in the fused feedback"})
    repetition_weight: float = field(default=1.0, metadata={
        "help": "weight of the repetition critic in the fused feedback"})

    def __post_init__(self):
        _positive_ints(self)
        if not 0.0 <= self.flip_rate <= 0.5:
            raise ValueError("FeedbackStage.flip_rate must be in [0, 0.5]")
        if self.reward not in ("rm", "direct") or self.fusion not in ("fixed",
                                                                      "inverse_variance"):
            raise ValueError("FeedbackStage.reward must be rm|direct and fusion "
                             "fixed|inverse_variance")


@dataclass(frozen=True)
class EvalStage:
    """Evaluation on held-out prompts."""

    n_prompts: int = field(default=200, metadata={"help": "held-out prompts"})
    n_show: int = field(default=8, metadata={"help": "samples shown side by side"})

    def __post_init__(self):
        _positive_ints(self)


@dataclass(frozen=True)
class RunConfig:
    """A whole run: pretrain -> SFT -> judges -> AI labels -> RM -> RL -> evaluation."""

    seed: int = field(default=0, metadata={"help": "seeds Python, NumPy, torch and TF"})
    lm: LMStage = field(default_factory=LMStage)
    feedback: FeedbackStage = field(default_factory=FeedbackStage)
    rl: RLConfig = field(default_factory=RLConfig)
    eval: EvalStage = field(default_factory=EvalStage)


PRESETS: dict[str, dict] = {
    "smoke": {"lm": {"n_train": 4000, "n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64,
                     "pretrain_steps": 250, "sft_steps": 60, "lr": 4e-3},
              "feedback": {"judge_steps": 200, "n_pairs": 1500, "rm_steps": 150},
              "rl": {"iterations": 25, "batch_size": 32, "max_new_tokens": 24, "hidden_dim": 64,
                     "lr": 3e-3, "ckpt_interval": 5},
              "eval": {"n_prompts": 64, "n_show": 4}},
    "default": {},
    "full": {"lm": {"pretrain_steps": 1000, "sft_steps": 300},
             "feedback": {"judge_steps": 800, "n_pairs": 8000, "rm_steps": 800},
             "rl": {"iterations": 300}, "eval": {"n_prompts": 500}},
}


def preset(name: str) -> RunConfig:
    """The RunConfig of a preset; ValueError naming the presets for an unknown one."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return merge(RunConfig(), PRESETS[name])
