"""Stage ``report``: ``OUT/report/report.md`` and its plots -- the results table of book 5.3
(SFT, RLAIF, RLHF by the human stand-in and by the AI), a table per task of book 6 with its own
metrics (ROUGE, faithfulness, exact match, harmless rate, ...) and samples beside the
reference, the training curves of both RL arms and of the graph walker, several samples per
prompt side by side."""

from __future__ import annotations

import json
from pathlib import Path

from bridge import metrics as M
from bridge.files import atomic_write_text, read_json

from ..context import RunContext
from ..plots import new_figure, save_figure

INPUTS = ("seed", "task", "rl.algo", "rl.framework", "feedback.reward",
          "feedback.fusion.weights")
AFTER = ("evaluate", "labels", "judges", "rl", "rl_human")

PLOTS = {
    "reward.png": ("proxy reward (the reward model) and the human stand-in, RLAIF",
                   ["feedback/source/reward", "rl/human", "rl/fused_feedback"]),
    "arms.png": ("human stand-in's rating along training: RLAIF vs RLHF", None),
    "kl.png": ("KL to the reference (nats per sequence) and its coefficient",
               ["kl/exact", "kl/k1", "kl/k3", "rl/kl_coef"]),
    "entropy.png": ("policy entropy (nats per token)", ["losses/entropy"]),
    "feedback.png": ("feedback sources and fusion weights", "feedback/"),
    "quality.png": ("well-formedness, diversity and repetition",
                    ["rl/well_formed", "rl/distinct_2", "rl/repeated_sentence_rate"]),
}


def _plot(series: dict[str, list[dict]], keys: list[str], title: str, path: Path) -> None:
    """``series``: {label prefix: history}; one line per (history, key)."""
    fig, ax = new_figure()
    for label, history in series.items():
        for k in keys:
            xs = [h["iteration"] for h in history if k in h]
            if xs:
                ax.plot(xs, [h[k] for h in history if k in h], label=f"{label}{k}")
    ax.set_xlabel("RL iteration")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def _fmt(x) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def task_sections(s: dict, ev: dict, out: Path) -> list[str]:
    """One section per task of the run: win rates, the task's metrics per arm, samples."""
    lines = []
    for task, samples in ev.get("task_samples", {}).items():
        t = f"task/{task}"
        lines += [f"## Task `{task}` ({s[f'{t}/n_prompts']} held-out prompts)", "",
                  "| win rate by the human stand-in | |", "| --- | --- |"]
        for pair in ("rlaif_vs_sft", "rlhf_vs_sft", "rlaif_vs_rlhf"):
            w = f"{t}/win_rate/{pair}"
            lines.append(f"| {pair.replace('_vs_', ' vs ').upper()} | {s[w]:.3f} "
                         f"[{s[w + '_ci_low']:.3f}, {s[w + '_ci_high']:.3f}] |")
        lines += ["", "| metric | SFT | RLAIF | RLHF |", "| --- | --- | --- | --- |"]
        for k in (*M.TASK_STATS[task], *M.TASK_COMMON):
            lines.append(f"| {k} | " + " | ".join(_fmt(s[f"{t}/{a}/{k}"])
                                                for a in ("sft", "rl", "rlhf")) + " |")
        if task == "kgqa":
            lines += ["", f"Graph walker (book 6.3.2): greedy success "
                      f"{s[M.WALK_ONE]:.3f} on one-hop and {s[M.WALK_TWO]:.3f} on two-hop "
                      f"held-out questions; the SFT LM's most plausible entity alone: "
                      f"{s[M.WALK_LM]:.3f}.", "", "![graph walker](../kg_walk/curve.png)"]
        has_ref = any(x["reference"] for x in samples)
        lines += ["", "| prompt |" + (" reference |" if has_ref else "") + " SFT | RLAIF | RLHF |",
                  "| --- |" + (" --- |" if has_ref else "") + " --- | --- | --- |"]
        lines += [f"| {x['prompt']} |" + (f" {x['reference']} |" if has_ref else "")
                  + f" {x['sft']} | {x['rl']} | {x['rlhf']} |" for x in samples]
        lines.append("")
    return lines


def run(ctx: RunContext) -> dict:
    out = ctx.dir("report")
    rlaif = json.loads((ctx.out / "rl" / "history.json").read_text())
    rlhf = json.loads((ctx.out / "rl_human" / "history.json").read_text())
    ev = read_json(ctx.out / "evaluate" / "eval.json", "evaluation")
    s = read_json(ctx.out / "summary.json", "summary")
    for name, (title, keys) in PLOTS.items():
        if name == "arms.png":
            _plot({"RLAIF ": rlaif, "RLHF ": rlhf}, ["rl/human"], title, out / name)
            continue
        if isinstance(keys, str):
            keys = sorted({k for h in rlaif for k in h if k.startswith(keys)
                           and k.split("/")[1] in ("source", "weight")})
        _plot({"": rlaif}, keys, title, out / name)
    labels = read_json(ctx.out / "labels" / "done.json", "labels stage")
    judges = read_json(ctx.out / "judges" / "done.json", "judges stage")
    cfg = ctx.cfg

    def win(pair):
        return (f"{s[f'win_rate/{pair}']:.3f} [{s[f'win_rate/{pair}_ci_low']:.3f}, "
                f"{s[f'win_rate/{pair}_ci_high']:.3f}]")

    arms = (("SFT", "sft"), ("RLAIF", "rl"), ("RLHF", "rlhf"))
    rows = (("human stand-in rating", "human_score"), ("AI judge score", "judge_score"),
            ("gold score (the judge's target)", "gold_score"), ("well-formed", "well_formed"),
            ("distinct-1", "distinct_1"), ("distinct-2 across prompts", "distinct_2"),
            ("distinct-2 within a prompt", "distinct_2_within"),
            ("repeats a sentence", "repeated_sentence_rate"), ("length (words)", "length_words"))
    lines = [
        "# RLAIF run report", "",
        f"Run directory `{ctx.out}`, seed {cfg.seed}, RL algorithm `{cfg.rl.algo}` "
        f"({cfg.rl.framework}), reward `{cfg.feedback.reward}`, fusion "
        f"`{cfg.feedback.fusion.weights}`, {ev['n_prompts']} held-out prompts.", "",
        "## Results (book 5.3): win rates by the human stand-in", "",
        "Paired per prompt, ties half; 95 % bootstrap interval in brackets.", "",
        "| comparison | human stand-in | AI judge |", "| --- | --- | --- |",
        f"| RLAIF vs SFT | {win('rlaif_vs_sft')} | {s['win_rate/rlaif_vs_sft_judge']:.3f} |",
        f"| RLHF vs SFT | {win('rlhf_vs_sft')} | {s['win_rate/rlhf_vs_sft_judge']:.3f} |",
        f"| RLAIF vs RLHF | {win('rlaif_vs_rlhf')} | |", "",
        "| metric | SFT | RLAIF | RLHF |", "| --- | --- | --- | --- |",
        *[f"| {label} | " + " | ".join(_fmt(s[f'{a}/{k}']) for _, a in arms) + " |"
          for label, k in rows],
        f"| KL to SFT per sequence (nats, exact) | 0 | {s['kl/per_sequence']:.2f} | "
        f"{s['kl/per_sequence_rlhf']:.2f} |", "",
        *task_sections(s, ev, ctx.out), "## Feedback", "",
        f"- classifier judge accuracy on validation records: "
        f"{judges.get('classifier_accuracy', float('nan')):.3f}",
        f"- AI labels: agreement with the human stand-in's labels "
        f"{labels.get('ai_human_agreement', float('nan')):.3f}, with the gold scorer "
        f"{labels.get('gold_agreement', float('nan')):.3f}, first-position share "
        f"{labels.get('first_position_share', float('nan')):.3f} over "
        f"{labels.get('n_pairs', 0)} pairs", "",
        "## Training", "",
        *[f"![{t}]({n})" for n, (t, _) in PLOTS.items()], "",
        "## Samples side by side", "", "| prompt | SFT | RLAIF | RLHF |",
        "| --- | --- | --- | --- |",
        *[f"| {x['prompt']} | {x['sft']} | {x['rlaif']} | {x['rlhf']} |".replace("\n", " ")
          for x in ev["samples"]],
        "", "Several completions of one prompt:", "",
    ]
    for x in ev["several"]:
        lines += [f"**{x['prompt']}**", "", "| SFT | RLAIF | RLHF |", "| --- | --- | --- |",
                  *[f"| {a} | {b} | {c} |" for a, b, c in zip(x["sft"], x["rl"], x["rlhf"])],
                  ""]
    lines += ["`summary.json` holds the figures under stable names (see `bridge/metrics.py`):",
              "", "```json", json.dumps(s, indent=2), "```", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
    return {}
