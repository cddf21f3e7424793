"""Ablations of book 5.3.3 (the effect of AI feedback): ``rlaif-lab sweep alpha|noise|fusion``.

* ``alpha``  -- the weight alpha of the AI feedback in Q + alpha f (book 4.3.2, 9.3.3);
* ``noise``  -- label flip rate of the AI labeler, with the plain and the robust reward model
  (book 4.3.3; the robust loss assumes the true flip rate, at least 0.05);
* ``fusion`` -- fixed vs inverse-variance fusion weights, each with the distilled reward model
  and with d-RLAIF (the judge used directly as reward).

Each point is a whole run in ``OUT/<point>/``. A stage is shared with an earlier point -- copied
instead of trained again -- exactly when its input hash is the same (``runner.stage_hash``):
the LM, SFT and judges always, AI labels and the reward model unless the point changes them.
The log says which. The table goes to ``OUT/sweep.md`` and ``OUT/sweep.json``, the plot to
``OUT/sweep.png``.
"""

from __future__ import annotations

import os
from pathlib import Path

from bridge import metrics as M
from bridge.files import atomic_write_json, atomic_write_text

from .config import RunConfig, merge_run
from .plots import new_figure, save_figure
from .runner import STAGES, open_run, run_all, share_stage

_IV = {"weights": "inverse_variance", "normalize": True, "fixed_weights": []}
_FIXED = {"weights": "fixed"}
SWEEPS: dict[str, list[tuple[str, dict]]] = {
    "alpha": [(f"alpha={a}", {"rl": {"alpha": a}}) for a in (0.0, 0.25, 0.5, 1.0, 2.0)],
    "noise": [(f"flip={f},robust={r}", {"labeler": {"flip_rate": f},
                                        "reward_model": {"robust": r,
                                                         "assumed_flip_rate": max(f, 0.05)}})
              for f in (0.0, 0.1, 0.2, 0.3) for r in (False, True)],
    "fusion": [(f"{w},{kind}", {"feedback": {"fusion": _IV if w == "inverse_variance"
                                             else _FIXED, "reward": kind}})
               for kind in ("rm", "direct") for w in ("fixed", "inverse_variance")],
}
COLUMNS = (M.WIN_JUDGE, M.WIN_GOLD, M.KL_PER_SEQUENCE, "rl/well_formed", "rl/gold_score",
           "rl/distinct_2")


def point_dir(out: Path, name: str) -> Path:
    return out / name.replace("=", "_").replace(",", "__")


def run_sweep(kind: str, base: RunConfig, out: str | os.PathLike, progress: bool = True,
              log=print) -> list[dict]:
    if kind not in SWEEPS:
        raise ValueError(f"unknown sweep {kind!r}; choose one of {sorted(SWEEPS)}")
    out = Path(out)
    points = [(name, merge_run(base, change)) for name, change in SWEEPS[kind]]
    out.mkdir(parents=True, exist_ok=True)
    rows, earlier = [], []
    for name, cfg in points:
        ctx = open_run(cfg, point_dir(out, name), progress=progress, log=log)
        log(f"== {kind} sweep: {name}")
        for stage in STAGES:
            if (ctx.out / stage / "done.json").is_file():
                continue
            for other_name, other in earlier:
                if share_stage(ctx, stage, other):
                    log(f"[sweep] {name}: stage {stage} shared with {other_name}")
                    break
        summary = run_all(ctx)
        earlier.append((name, ctx.out))
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
    fig, axes = new_figure((12, 3.6), ncols=3)
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
