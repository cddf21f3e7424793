"""Stage ``report``: ``OUT/report/report.md`` and its plots -- the headline figures, the
training curves, the samples side by side (book 5.3)."""

from __future__ import annotations

import json
from pathlib import Path

from bridge.files import atomic_write_text, read_json

from ..context import RunContext
from ..plots import new_figure, save_figure

INPUTS = ("seed", "rl.algo", "feedback.reward", "feedback.fusion.weights")
AFTER = ("evaluate", "labels", "judges")

PLOTS = {
    "reward.png": ("AI feedback and gold score", ["rl/fused_feedback", "feedback/source/reward",
                                                   "rl/gold"]),
    "kl.png": ("KL to the reference (nats per sequence) and its coefficient",
               ["kl/exact", "kl/k1", "kl/k3", "rl/kl_coef"]),
    "entropy.png": ("policy entropy (nats per token)", ["losses/entropy"]),
    "feedback.png": ("feedback sources and fusion weights", None),
    "quality.png": ("well-formedness and length", ["rl/well_formed", "rl/length"]),
}


def _plot(history: list[dict], keys: list[str], title: str, path: Path) -> None:
    fig, ax = new_figure()
    for k in keys:
        xs = [h["iteration"] for h in history if k in h]
        if xs:
            ax.plot(xs, [h[k] for h in history if k in h], label=k)
    ax.set_xlabel("RL iteration")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def run(ctx: RunContext) -> dict:
    out = ctx.dir("report")
    history = json.loads((ctx.out / "rl" / "history.json").read_text())
    ev = read_json(ctx.out / "evaluate" / "eval.json", "evaluation")
    summary = read_json(ctx.out / "summary.json", "summary")
    for name, (title, keys) in PLOTS.items():
        if keys is None:
            keys = sorted({k for h in history for k in h
                           if k.startswith(("feedback/source/", "feedback/weight/"))})
        _plot(history, keys, title, out / name)
    labels = read_json(ctx.out / "labels" / "done.json", "labels stage")
    judges = read_json(ctx.out / "judges" / "done.json", "judges stage")
    lines = [
        "# RLAIF run report", "",
        f"Run directory `{ctx.out}`, seed {ctx.cfg.seed}, RL algorithm `{ctx.cfg.rl.algo}`, "
        f"reward `{ctx.cfg.feedback.reward}`, fusion `{ctx.cfg.feedback.fusion.weights}`.", "",
        "## Headline (held-out prompts)", "",
        "| metric | RL policy | SFT policy |", "| --- | --- | --- |",
        f"| win rate vs SFT, AI judge | {ev['win_rate_judge']:.3f} | 0.5 |",
        f"| win rate vs SFT, gold scorer | {ev['win_rate_gold']:.3f} | 0.5 |",
        f"| KL to SFT per sequence (nats, exact) | {ev['kl_per_sequence']:.2f} | 0 |",
    ]
    for k, label in (("gold_score", "mean gold score"), ("judge_score", "mean AI judge score"),
                     ("well_formed", "well-formed"), ("distinct_2", "distinct-2"),
                     ("length_words", "length (words)")):
        lines.append(f"| {label} | {ev['rl'][k]:.3f} | {ev['sft'][k]:.3f} |")
    lines += [
        "", "## AI feedback", "",
        f"- classifier judge accuracy on validation records: "
        f"{judges.get('classifier_accuracy', float('nan')):.3f}",
        f"- AI labels: agreement with gold {labels.get('gold_agreement', float('nan')):.3f}, "
        f"first-position share {labels.get('first_position_share', float('nan')):.3f} "
        f"over {labels.get('n_pairs', 0)} pairs", "",
        "## Training", "",
        *[f"![{t}]({n})" for n, (t, _) in PLOTS.items()], "",
        "## Samples side by side", "", "| prompt | SFT | RL |", "| --- | --- | --- |",
        *[f"| {s['prompt']} | {s['sft']} | {s['rl']} |".replace("\n", " ")
          for s in ev["samples"]],
        "", "`summary.json` holds the headline figures under stable names:", "",
        "```json", json.dumps(summary, indent=2), "```", "",
    ]
    atomic_write_text(out / "report.md", "\n".join(lines))
    return {}
