"""The configuration of a whole RLAIF run, and its presets (``smoke``, ``default``, ``full``).

The config is the run: every value that changes a result is a field here, so it is written to
``OUT/config.json`` and a stage's ``done.json`` records a hash of the values it read. The stages'
own config dataclasses are reused as they are (``PretrainConfig`` for the LM, ``TrainConfig``
for SFT, ``EncoderConfig`` for the judge, ``LabelerConfig``, ``RewardModelConfig``,
``FusionConfig``, ``RLConfig``); only what belongs to no library class is defined here. The
nested ``seed`` fields follow the run's ``seed`` (one seed seeds everything). Presets differ
only in sizes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from bridge.config import check_config
from bridge.files import flatten
from lm_torch.corpus import CorpusConfig
from lm_torch.human import HumanConfig
from lm_torch.judges import EncoderConfig
from lm_torch.labeler import LabelerConfig
from lm_torch.model import GPTConfig
from lm_torch.pretrain import PretrainConfig
from lm_torch.reward_model import RewardModelConfig
from lm_torch.train import TrainConfig
from rl_tf.feedback import FusionConfig
from rl_tf.rl_config import RLConfig

from .flags import merge


@dataclass(frozen=True)
class LabelsConfig:
    """The AI-labelled preference data (book 3.2.1)."""

    n_pairs: int = field(default=4000, metadata={"help": "completion pairs the AI labels"})

    def __post_init__(self):
        check_config(self, positive=("n_pairs",))


@dataclass(frozen=True)
class FeedbackConfig:
    """The feedback sources of the RL stage and their fusion (book 3.2.2, 4.3.1)."""

    reward: Literal["rm", "direct"] = field(default="rm", metadata={
        "help": "rm (the distilled reward model) or direct (d-RLAIF: the judge itself)"})
    shaping: Literal["terminal", "per_step"] = field(default="terminal", metadata={
        "help": "pay the fused feedback once at the end (terminal) or at every token as the "
                "change of the prefix's fused score (per_step, potential-based; book 4.3.2)"})
    fusion: FusionConfig = field(default_factory=lambda: FusionConfig(
        weights="fixed", fixed_weights=(1.0, 3.0, 1.0, 10.0), normalize=False, clip=20.0))

    def __post_init__(self):
        check_config(self)


#: the feedback sources, in the order of ``FusionConfig.fixed_weights``
SOURCES = ("reward", "grammar", "repetition", "variety")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation on the corpus's held-out prompts (``lm.corpus.n_prompts`` of them)."""

    n_show: int = field(default=8, metadata={"help": "samples shown side by side"})

    def __post_init__(self):
        check_config(self, positive=("n_show",))


def _lm() -> PretrainConfig:
    return PretrainConfig(
        n_eval_samples=100, corpus=CorpusConfig(n_train=20000, n_val=500, n_prompts=200),
        model=GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=128),
        train=TrainConfig(max_steps=400, lr=3e-3, warmup_steps=20, eval_interval=100,
                          ckpt_interval=100))


@dataclass(frozen=True)
class RunConfig:
    """A whole run: pretrain -> SFT -> judges -> AI and human labels -> two reward models ->
    RLAIF and RLHF -> evaluation of SFT, RLAIF and RLHF by the human stand-in and the AI."""

    seed: int = field(default=0, metadata={
        "help": "seeds Python, NumPy, torch and TF, the corpus and every stage"})
    lm: PretrainConfig = field(default_factory=_lm)
    sft: TrainConfig = field(default_factory=lambda: TrainConfig(
        max_steps=150, lr=1e-3, warmup_steps=10, eval_interval=50, ckpt_interval=50,
        eval_batches=4))
    judge: EncoderConfig = field(default_factory=lambda: EncoderConfig(steps=400))
    labeler: LabelerConfig = field(default_factory=LabelerConfig)
    human: HumanConfig = field(default_factory=HumanConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    reward_model: RewardModelConfig = field(default_factory=lambda: RewardModelConfig(
        encoder=EncoderConfig(steps=400, batch_size=32, lr=2e-3), assumed_flip_rate=0.05))
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        s = self.seed
        if type(s) is not int or s < 0:
            raise ValueError(f"RunConfig.seed must be an integer >= 0, got {s!r}")
        for path in SEED_FIELDS:  # the nested seeds follow the run's
            _set(self, path, s)
        w = self.feedback.fusion.fixed_weights
        if w and len(w) != len(SOURCES):
            raise ValueError(f"feedback.fusion.fixed_weights needs {len(SOURCES)} values, one "
                             f"per source {SOURCES}, got {len(w)}")
        if self.rl.max_new_tokens >= self.lm.model.block_size:
            raise ValueError(f"rl.max_new_tokens ({self.rl.max_new_tokens}) must be below "
                             f"lm.model.block_size ({self.lm.model.block_size})")


#: nested seed fields, set from ``RunConfig.seed`` (no flags of their own)
SEED_FIELDS = ("lm.seed", "lm.corpus.seed", "judge.seed", "labeler.seed", "human.seed",
               "reward_model.encoder.seed")


def _set(obj, path: str, value) -> None:
    """Set a dotted field of the RunConfig being built. Nested configs may be shared with
    another RunConfig, so each one on the path is replaced by a copy, never changed."""
    head, _, rest = path.partition(".")
    if rest:
        value = _with(getattr(obj, head), rest, value)
    object.__setattr__(obj, head, value)


def _with(cfg, path: str, value):
    """A copy of frozen dataclass ``cfg`` with the dotted field ``path`` set to ``value``."""
    head, _, rest = path.partition(".")
    return dataclasses.replace(cfg, **{head: _with(getattr(cfg, head), rest, value)
                                       if rest else value})


PRESETS: dict[str, dict] = {
    "smoke": {"lm": {"corpus": {"n_train": 4000, "n_prompts": 64},
                     "model": {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64},
                     "train": {"max_steps": 250, "lr": 4e-3}},
              "sft": {"max_steps": 60, "lr": 4e-3 / 3},
              "judge": {"steps": 200}, "labels": {"n_pairs": 1500},
              "reward_model": {"encoder": {"steps": 150}},
              "rl": {"iterations": 25, "batch_size": 32, "max_new_tokens": 24, "hidden_dim": 64,
                     "lr": 3e-3, "ckpt_interval": 5},
              "eval": {"n_show": 4}},
    "default": {},
    "full": {"lm": {"corpus": {"n_prompts": 500}, "train": {"max_steps": 1000}},
             "sft": {"max_steps": 300}, "judge": {"steps": 800}, "labels": {"n_pairs": 8000},
             "reward_model": {"encoder": {"steps": 800}}, "rl": {"iterations": 300}},
}


def merge_run(cfg: RunConfig, values: dict) -> RunConfig:
    """:func:`merge` for a RunConfig: a nested seed may be given (a saved ``config.json`` has
    them) only with the run's own value, since it follows ``seed``."""
    new = merge(cfg, values)
    given = flatten(values)
    for path in SEED_FIELDS:
        if path in given and given[path] != new.seed:
            raise ValueError(f"config key {path!r} follows the run's seed ({new.seed}); set "
                             "'seed' instead")
    return new


def preset(name: str) -> RunConfig:
    """The RunConfig of a preset; ValueError naming the presets for an unknown one."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return merge_run(RunConfig(), PRESETS[name])
