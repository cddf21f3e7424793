"""Ablations of book 5.3.3 (the effect of AI feedback): ``rlaif-lab sweep alpha|noise|fusion``.

* ``alpha``  -- the weight alpha of the AI feedback in Q + alpha f (book 4.3.2, 9.3.3);
* ``noise``  -- label flip rate of the AI labeler, with the plain and the robust reward model
  (book 4.3.3);
* ``fusion`` -- fixed vs inverse-variance fusion weights, each with the distilled reward model
  and with d-RLAIF (the judge used directly as reward).

Each point is a whole run in ``OUT/<point>/``; the stages a point shares with the first one
(the LM, SFT and judges always; AI labels and the reward model unless the point changes them)
are copied from it instead of being trained again. The table goes to ``OUT/sweep.md`` and
``OUT/sweep.json``, the plot to ``OUT/sweep.png``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lm_torch.io import atomic_write_json, atomic_write_text

from .pipeline import Run
from .plots import pyplot, save_figure
from .presets import RunConfig, merge

SWEEPS: dict[str, list[tuple[str, dict]]] = {
    "alpha": [(f"alpha={a}", {"rl": {"alpha": a}}) for a in (0.0, 0.25, 0.5, 1.0, 2.0)],
    "noise": [(f"flip={f},robust={r}", {"feedback": {"flip_rate": f, "robust_rm": r}})
              for f in (0.0, 0.1, 0.2, 0.3) for r in (False, True)],
    "fusion": [(f"{w},{kind}", {"feedback": {"fusion": w, "reward": kind}})
               for kind in ("rm", "direct") for w in ("fixed", "inverse_variance")],
}
#: stages every point of a sweep may share, and those shared unless the feedback changes
ALWAYS_SHARED = ("pretrain", "sft", "judges")
LABEL_STAGES = ("labels", "reward_model")
COLUMNS = ("win_rate_vs_sft/judge", "win_rate_vs_sft/gold", "kl/per_sequence",
           "rl/well_formed", "rl/gold_score", "rl/distinct_2")


def _shares_labels(base: RunConfig, cfg: RunConfig) -> bool:
    a, b = base.feedback, cfg.feedback
    return (a.flip_rate, a.position_bias, a.noise_sigma, a.swap, a.robust_rm, a.n_pairs,
            a.rm_steps) == (b.flip_rate, b.position_bias, b.noise_sigma, b.swap, b.robust_rm,
                            b.n_pairs, b.rm_steps)


def run_sweep(kind: str, base: RunConfig, out: str | os.PathLike, progress: bool = True,
              log=print) -> list[dict]:
    if kind not in SWEEPS:
        raise ValueError(f"unknown sweep {kind!r}; choose one of {sorted(SWEEPS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, first = [], None
    for name, change in SWEEPS[kind]:
        cfg = merge(base, change)
        point = out / name.replace("=", "_").replace(",", "__")
        if first is not None:
            shared = ALWAYS_SHARED + (LABEL_STAGES if _shares_labels(first[1], cfg) else ())
            for stage in shared:
                if not (point / stage).exists():
                    shutil.copytree(first[0] / stage, point / stage)
        log(f"== {kind} sweep: {name}")
        summary = Run(cfg, point, progress=progress, log=log).run_all()
        if first is None:
            first = (point, cfg)
        rows.append({"point": name, **{c: summary[c] for c in COLUMNS}})
    atomic_write_json(out / "sweep.json", rows)
    header = "| point | " + " | ".join(COLUMNS) + " |"
    lines = [f"# Sweep: {kind}", "", header, "|" + " --- |" * (len(COLUMNS) + 1)]
    lines += ["| " + r["point"] + " | " + " | ".join(f"{r[c]:.3f}" for c in COLUMNS) + " |"
              for r in rows]
    atomic_write_text(out / "sweep.md", "\n".join(lines + ["", "![sweep](sweep.png)", ""]))
    _plot(rows, kind, out / "sweep.png")
    return rows


def _plot(rows: list[dict], kind: str, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    x = range(len(rows))
    labels = [r["point"] for r in rows]
    for ax, cols, title in ((axes[0], COLUMNS[:2], "win rate vs SFT"),
                            (axes[1], COLUMNS[2:3], "KL per sequence (nats)"),
                            (axes[2], COLUMNS[3:4], "well-formed share")):
        for c in cols:
            ax.plot(x, [r[c] for r in rows], "o-", label=c)
        ax.set_xticks(list(x), labels, rotation=45, ha="right", fontsize=7)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"sweep: {kind}")
    fig.tight_layout()
    save_figure(fig, path)
