"""``rlaif-lab cartpole``: train PPO or REINFORCE on a Gymnasium control task and report.

Writes into the run directory: ``config.json`` (the exact config), ``tb/`` (TensorBoard),
``history.json`` (every logged metric), ``policy.keras`` (the trained network),
``learning_curve.png`` and ``summary.json`` (steps to solve, final evaluation, wall time).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import metrics as M
from .ppo import PPOConfig, TrainLog, train_ppo
from .reinforce import ReinforceConfig, train_reinforce


@dataclass(frozen=True)
class CartpoleConfig:
    """Which algorithm, and its settings."""

    algo: str = field(default="ppo", metadata={"help": "algorithm",
                                               "choices": ("ppo", "reinforce")})
    ppo: PPOConfig = field(default_factory=PPOConfig)
    reinforce: ReinforceConfig = field(default_factory=ReinforceConfig)

    def __post_init__(self):
        if self.algo not in ("ppo", "reinforce"):
            raise ValueError(f"algo must be 'ppo' or 'reinforce', not {self.algo!r}")


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def plot_learning_curve(log: TrainLog, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def run_cartpole(cfg: CartpoleConfig, out_dir: str | os.PathLike, progress: bool = True) -> dict:
    out = Path(out_dir)
    if (out / "summary.json").exists():
        raise FileExistsError(f"{out} already holds a finished run; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    sub = cfg.ppo if cfg.algo == "ppo" else cfg.reinforce
    _write(out / "config.json", json.dumps({"algo": cfg.algo, cfg.algo: asdict(sub)}, indent=2))
    train = train_ppo if cfg.algo == "ppo" else train_reinforce
    log = train(sub, log_dir=out / "tb", progress=progress)
    log.model.save(out / "policy.keras")
    _write(out / "history.json", json.dumps(log.logger.history))
    plot_learning_curve(log, out / "learning_curve.png", f"{cfg.algo} on {sub.env_id}")
    summary = {"algo": cfg.algo, "env_id": sub.env_id, "seed": sub.seed, "steps": log.steps,
               "steps_to_solve": log.steps_to_solve, "solve_return": sub.solve_return,
               "final_eval_return": log.final_eval, "wall_seconds": round(log.wall_seconds, 1)}
    _write(out / "summary.json", json.dumps(summary, indent=2))
    return summary
