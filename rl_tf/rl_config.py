"""The RL stage's configuration (book 3.1, 4.3.2), importable without TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bridge.config import check_config


@dataclass(frozen=True)
class RLConfig:
    """The RL stage."""

    algo: Literal["reinforce", "ppo"] = field(default="reinforce",
                                              metadata={"help": "reinforce or ppo"})
    framework: Literal["tf", "torch"] = field(default="tf", metadata={
        "help": "the policy's framework: tf (Keras, as the book has it) or torch (its twin)"})
    iterations: int = field(default=120, metadata={"help": "rollout + update rounds"})
    batch_size: int = field(default=64, metadata={"help": "sequences per rollout"})
    shards: int = field(default=1, metadata={
        "help": "rollout shards per iteration, the unit of work of a Ray worker (the numbers "
                "depend on it, never on the worker count)"})
    max_new_tokens: int = field(default=40, metadata={"help": "length limit of a completion"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    hidden_dim: int = field(default=128, metadata={"help": "width of g_theta's layers"})
    temperature: float = field(default=1.0, metadata={"help": "tau on the reference logits"})
    alpha: float = field(default=1.0, metadata={"help": "weight of the AI feedback (book 4.3.2)"})
    kl_coef: float = field(default=0.15, metadata={"help": "initial KL coefficient beta"})
    kl_target: float = field(default=4.0, metadata={
        "help": "target KL per sequence for the adaptive controller (0 = fixed beta)"})
    kl_horizon: int = field(default=1000, metadata={
        "help": "adaptive controller horizon, in sequences"})
    ent_coef: float = field(default=0.0, metadata={"help": "entropy bonus"})
    ppo_epochs: int = field(default=4, metadata={"help": "PPO passes over a rollout"})
    ppo_clip: float = field(default=0.2, metadata={"help": "PPO clip range"})
    ckpt_interval: int = field(default=10, metadata={"help": "iterations between checkpoints"})

    def __post_init__(self):
        check_config(self, positive=("iterations", "batch_size", "shards", "max_new_tokens",
                                     "hidden_dim", "ckpt_interval", "ppo_epochs", "lr",
                                     "temperature", "kl_horizon", "ppo_clip"))
        if isinstance(self.shards, int) and self.shards > self.batch_size:
            raise ValueError(f"RLConfig.shards ({self.shards}) must be at most batch_size "
                             f"({self.batch_size}): a shard holds at least one sequence")
        if not (self.kl_coef >= 0 and self.kl_target >= 0 and self.ent_coef >= 0):
            raise ValueError("RLConfig.kl_coef, kl_target and ent_coef must be >= 0")
