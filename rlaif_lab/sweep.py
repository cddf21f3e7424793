"""Ablations of book 5.3.3 (the effect of AI feedback): ``rlaif-lab sweep alpha|noise|fusion``.

* ``alpha``  -- the weight alpha of the AI feedback in Q + alpha f (book 4.3.2, 9.3.3), with
  the feedback paid at the end (terminal) or at every token (per_step, potential-based);
* ``noise``  -- label flip rate of the AI labeler, with the plain and the robust reward model
  (book 4.3.3; the robust loss assumes the true flip rate, at least 0.05);
* ``fusion`` -- fixed vs inverse-variance fusion weights, each with the distilled reward model
  and with d-RLAIF (the judge used directly as reward);
* ``kl``     -- the KL coefficient beta (fixed, no target): over-optimisation (Gao et al. 2022).
  Along training, the proxy reward (the reward model's score) and the human stand-in's rating,
  each relative to its start, are plotted against d = sqrt(KL) and fitted with
  R(d) = d (alpha - beta log d); the human curve's peak d* = exp(alpha / beta - 1) is marked
  (``OUT/overoptimisation.png``, the fits in ``OUT/sweep.json``).

Each point is a whole run in ``OUT/<point>/``. A stage is shared with an earlier point -- copied
instead of trained again -- exactly when its input hash is the same (``runner.stage_hash``):
the LM, SFT and judges always, AI labels and the reward model unless the point changes them.
The log says which. The table goes to ``OUT/sweep.md`` and ``OUT/sweep.json``, the plot to
``OUT/sweep.png``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from bridge import metrics as M
from bridge.files import atomic_write_json, atomic_write_text

from .config import RunConfig, merge_run
from .plots import new_figure, save_figure
from .runner import STAGES, open_run, run_all, share_stage

_IV = {"weights": "inverse_variance", "normalize": True, "fixed_weights": []}
_FIXED = {"weights": "fixed"}
SWEEPS: dict[str, list[tuple[str, dict]]] = {
    "alpha": [(f"alpha={a},{s}", {"rl": {"alpha": a}, "feedback": {"shaping": s}})
              for s in ("terminal", "per_step") for a in (0.0, 0.25, 0.5, 1.0, 2.0)],
    "noise": [(f"flip={f},robust={r}", {"labeler": {"flip_rate": f},
                                        "reward_model": {"robust": r,
                                                         "assumed_flip_rate": max(f, 0.05)}})
              for f in (0.0, 0.1, 0.2, 0.3) for r in (False, True)],
    "fusion": [(f"{w},{kind}", {"feedback": {"fusion": _IV if w == "inverse_variance"
                                             else _FIXED, "reward": kind}})
               for kind in ("rm", "direct") for w in ("fixed", "inverse_variance")],
    "kl": [(f"kl_coef={b}", {"rl": {"kl_coef": b, "kl_target": 0.0}})
           for b in (0.5, 0.2, 0.1, 0.05, 0.02, 0.005)],
}
COLUMNS = (M.WIN_JUDGE, M.WIN_GOLD, "win_rate/rlaif_vs_sft", M.KL_PER_SEQUENCE,
           "rl/well_formed", "rl/human_score", "rl/gold_score", "rl/distinct_2")


def point_dir(out: Path, name: str) -> Path:
    return out / name.replace("=", "_").replace(",", "__")


def run_sweep(kind: str, base: RunConfig, out: str | os.PathLike, progress: bool = True,
              log=print, device: str = "cpu") -> list[dict]:
    if kind not in SWEEPS:
        raise ValueError(f"unknown sweep {kind!r}; choose one of {sorted(SWEEPS)}")
    out = Path(out)
    points = [(name, merge_run(base, change)) for name, change in SWEEPS[kind]]
    out.mkdir(parents=True, exist_ok=True)
    rows, earlier = [], []
    for name, cfg in points:
        ctx = open_run(cfg, point_dir(out, name), progress=progress, log=log, device=device)
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
    extra = {}
    if kind == "kl":
        extra = overoptimisation([(name, json.loads((point_dir(out, name) / "rl" /
                                                     "history.json").read_text()))
                                  for name, _ in points], out / "overoptimisation.png")
    atomic_write_json(out / "sweep.json", {"rows": rows, **extra} if extra else rows)
    header = "| point | " + " | ".join(COLUMNS) + " |"
    lines = [f"# Sweep: {kind}", "", header, "|" + " --- |" * (len(COLUMNS) + 1)]
    lines += ["| " + r["point"] + " | " + " | ".join(f"{r[c]:.3f}" for c in COLUMNS) + " |"
              for r in rows]
    if extra:
        lines += ["", "Over-optimisation, R(d) = d (alpha - beta log d), d = sqrt(KL), fitted "
                  "along training:", "", "| curve | alpha | beta | peak d* | R at the largest "
                  "d | still rising there |", "| --- | --- | --- | --- | --- | --- |"]
        for c in ("proxy", "human"):
            f = extra["fits"][c]
            lines.append(f"| {c} | {f['alpha']:.3f} | {f['beta']:.3f} | {f['peak_d']:.2f} | "
                         f"{f['r_at_max_d']:.3f} | {f['rising_at_max_d']} |")
        lines += ["", "![over-optimisation](overoptimisation.png)"]
    atomic_write_text(out / "sweep.md", "\n".join(lines + ["", "![sweep](sweep.png)", ""]))
    _plot(rows, kind, out / "sweep.png")
    return rows


def fit_gao(d: np.ndarray, r: np.ndarray) -> dict:
    """Least squares of R(d) = d (alpha - beta log d) (Gao et al. 2022, the best-of-n/RL form);
    the peak d* = exp(alpha / beta - 1) when beta > 0, and the slope at the largest d."""
    d, r = np.asarray(d, float), np.asarray(r, float)
    keep = d > 1e-6
    X = np.stack([d[keep], -d[keep] * np.log(d[keep])], 1)
    (alpha, beta), *_ = np.linalg.lstsq(X, r[keep], rcond=None)
    peak = float(np.exp(alpha / beta - 1.0)) if beta > 0 else float("inf")
    top = float(d.max())
    slope = alpha - beta * (np.log(top) + 1.0)
    return {"alpha": float(alpha), "beta": float(beta), "peak_d": peak,
            "r_at_max_d": float(top * (alpha - beta * np.log(top))),
            "rising_at_max_d": bool(slope > 0), "max_d": top}


def overoptimisation(histories: list[tuple[str, list[dict]]], path: Path) -> dict:
    """Proxy and human ratings (relative to the first iteration) against sqrt(KL), from every
    point's RL (RLAIF) history; fits and a plot."""
    pts = {"d": [], "proxy": [], "human": [], "point": []}
    for name, h in histories:
        p0, h0 = h[0]["feedback/source/reward"], h[0]["rl/human"]
        for row in h:
            pts["d"].append(np.sqrt(max(row["kl/exact"], 0.0)))
            pts["proxy"].append(row["feedback/source/reward"] - p0)
            pts["human"].append(row["rl/human"] - h0)
            pts["point"].append(name)
    fits = {c: fit_gao(pts["d"], pts[c]) for c in ("proxy", "human")}
    fig, axes = new_figure((11, 4), ncols=2)
    grid = np.linspace(max(min(pts["d"]), 1e-3), max(pts["d"]), 200)
    for ax, c in zip(axes, ("proxy", "human")):
        for name, _ in histories:
            sel = [i for i, n in enumerate(pts["point"]) if n == name]
            ax.plot([pts["d"][i] for i in sel], [pts[c][i] for i in sel], ".", alpha=0.5,
                    label=name)
        f = fits[c]
        ax.plot(grid, grid * (f["alpha"] - f["beta"] * np.log(grid)), "k-",
                label=f"fit: d ({f['alpha']:.2f} - {f['beta']:.2f} log d)")
        if np.isfinite(f["peak_d"]) and f["peak_d"] <= grid[-1] * 1.5:
            ax.axvline(f["peak_d"], color="k", ls=":", label=f"peak d* = {f['peak_d']:.2f}")
        ax.set_xlabel("d = sqrt(KL to the reference), nats^0.5")
        ax.set_title(f"{c} reward, relative to its start")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("over-optimisation? the proxy and the human stand-in against sqrt(KL)")
    fig.tight_layout()
    save_figure(fig, path)
    return {"fits": fits, "points": len(pts["d"])}


def _plot(rows: list[dict], kind: str, path: Path) -> None:
    fig, axes = new_figure((12, 3.6), ncols=3)
    x = range(len(rows))
    labels = [r["point"] for r in rows]
    for ax, cols, title in ((axes[0], COLUMNS[:3], "RLAIF's win rate vs SFT"),
                            (axes[1], COLUMNS[3:4], "KL per sequence (nats)"),
                            (axes[2], COLUMNS[4:5], "well-formed share")):
        for c in cols:
            ax.plot(x, [r[c] for r in rows], "o-", label=c)
        ax.set_xticks(list(x), labels, rotation=45, ha="right", fontsize=7)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"sweep: {kind}")
    fig.tight_layout()
    save_figure(fig, path)
