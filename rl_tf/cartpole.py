"""``rlaif-lab cartpole``: train PPO or REINFORCE on a Gymnasium control task and report.

Writes into the run directory: ``config.json`` (the exact config), ``tb/`` (TensorBoard),
``history.json`` (every logged metric), ``policy.keras`` (the trained network),
``learning_curve.png`` and ``summary.json`` (steps to solve, final evaluation, wall time).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import gymnasium as gym

from bridge import metrics as M
from bridge.config import check_config
from bridge.files import atomic_write_figure, atomic_write_json, jsonable, open_run_dir

from .networks import check_spaces
from .ppo import PPOConfig, TrainLog, train_ppo
from .reinforce import ReinforceConfig, train_reinforce


@dataclass(frozen=True)
class CartpoleConfig:
    """Which algorithm, and its settings."""

    algo: Literal["ppo", "reinforce"] = field(default="ppo", metadata={"help": "algorithm"})
    ppo: PPOConfig = field(default_factory=PPOConfig)
    reinforce: ReinforceConfig = field(default_factory=ReinforceConfig)

    def __post_init__(self):
        check_config(self)


def plot_learning_curve(log: TrainLog, path: Path, title: str) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend switch

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for name, style in ((M.EPISODIC_RETURN, "-"), (M.EVAL_RETURN, "o-")):
        xs, ys = log.logger.series(name)
        if xs:
            ax.plot(xs, ys, style, label=name, alpha=0.8)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write_figure(fig, path, dpi=100)


def run_cartpole(cfg: CartpoleConfig, out_dir: str | os.PathLike, progress: bool = True) -> dict:
    """Train, evaluate and write the run directory (RunDirError if ``out_dir`` holds a run).

    The environment and its spaces are checked before anything is written, so a refused run
    leaves no file behind."""
    out = Path(out_dir)
    sub = cfg.ppo if cfg.algo == "ppo" else cfg.reinforce
    env = gym.make(sub.env_id)
    try:
        check_spaces(env.observation_space, env.action_space)
    finally:
        env.close()
    open_run_dir(out, {"algo": cfg.algo, cfg.algo: jsonable(sub)}, resume=False,
                 what="cartpole run")
    train = train_ppo if cfg.algo == "ppo" else train_reinforce
    log = train(sub, log_dir=out / "tb", progress=progress)
    log.model.save(out / "policy.keras")
    atomic_write_json(out / "history.json", log.logger.history)
    plot_learning_curve(log, out / "learning_curve.png", f"{cfg.algo} on {sub.env_id}")
    summary = {"algo": cfg.algo, "env_id": sub.env_id, "seed": sub.seed, "steps": log.steps,
               "steps_to_solve": log.steps_to_solve, "solve_return": sub.solve_return,
               "final_eval_return": log.final_eval, "wall_seconds": round(log.wall_seconds, 1)}
    atomic_write_json(out / "summary.json", summary)
    return summary
