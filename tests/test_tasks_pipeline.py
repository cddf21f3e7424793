"""Book 6 for real: ``rlaif-lab run --task summary|kgqa|dialogue`` learns each task from AI
feedback, measured by the task's own metrics beside the win rates; the graph walker learns."""

import json

import pytest

from bridge import metrics as M
from rlaif_lab.config import merge_run, preset
from rlaif_lab.runner import open_run, run_all, use_pretrained

pytestmark = pytest.mark.learning


def run(tmp_path_factory, task: str, changes: dict | None = None, pretrained=None):
    """``rlaif-lab run --preset smoke --task TASK``; with ``pretrained`` (a checkpoint) that LM
    is taken as the pretrain stage instead of training one."""
    out = tmp_path_factory.mktemp(task) / "run"
    cfg = merge_run(preset("smoke", task), changes or {})
    ctx = open_run(cfg, out, progress=False, log=lambda m: None)
    if pretrained is not None:
        use_pretrained(ctx, pretrained.parent)
    return out, run_all(ctx)


@pytest.fixture(scope="module")
def summary_run(tmp_path_factory):
    return run(tmp_path_factory, "summary")


@pytest.fixture(scope="module")
def kgqa_run(tmp_path_factory):
    return run(tmp_path_factory, "kgqa")


def test_rlaif_makes_summaries_more_faithful_and_closer_to_the_reference(summary_run):
    """Book 6.2: at smoke size RL on AI feedback raises ROUGE-L and faithfulness (the corpus's
    truth) of the policy's summaries of held-out documents above the SFT model's, and the AI
    judge's score with them."""
    out, s = summary_run
    t = "task/summary"
    assert s[f"{t}/rl/judge_score"] > s[f"{t}/sft/judge_score"] + 0.25
    # measured, one thread as here: faithfulness 0.935 -> 0.957, ROUGE-L 0.974 -> 0.982 (two
    # threads, as `rlaif-lab run` has it: the SFT model less far along, 0.67 -> 0.84, 0.85 -> 0.92)
    for k in ("rougeL", "faithfulness"):
        assert s[f"{t}/rl/{k}"] > s[f"{t}/sft/{k}"], k
    assert s[f"{t}/sft/rougeL"] > 0.75  # the SFT model copies aspects (an induction circuit)
    for arm in ("sft", "rl", "rlhf"):
        for k in ("rouge1", "rouge2", "rougeL", "faithful", "faithfulness", "coverage"):
            assert 0.0 <= s[f"{t}/{arm}/{k}"] <= 1.0
        assert s[f"{t}/{arm}/rouge1"] >= s[f"{t}/{arm}/rougeL"] >= s[f"{t}/{arm}/rouge2"] > 0
    M.check(s)
    report = (out / "report" / "report.md").read_text()
    assert "## Task `summary`" in report and "| rougeL |" in report
    judges = json.loads((out / "judges" / "done.json").read_text())
    assert judges["judge_auc"] > 0.75  # the LM judge tells faithful from corrupted summaries


def test_rlaif_answers_more_kg_questions_and_the_walker_learns(kgqa_run):
    out, s = kgqa_run
    t = "task/kgqa"
    assert s[f"{t}/rl/exact_match"] > s[f"{t}/sft/exact_match"]
    assert s[M.WALK_ONE] >= 0.9  # book 6.3.2: the REINFORCE walker on one-hop questions
    assert s[M.WALK_TWO] >= 0.5  # and on two-hop ones (the README states the figure)
    history = json.loads((out / "kg_walk" / "history.json").read_text())
    evals = [h[M.EVAL_RETURN] for h in history if M.EVAL_RETURN in h]
    assert evals[-1] > evals[0] + 0.3  # the learning curve rises
    assert (out / "kg_walk" / "curve.png").stat().st_size > 5000


def test_rlaif_makes_the_dialogue_bot_harmless_and_preferred(tmp_path_factory, builtin_ckpt):
    """Book 6.1: the human stand-in prefers the RLAIF bot to the SFT bot at least 7 times in
    10, and the harm critic flags fewer of its replies. The built-in LM (pretrained on reviews
    and dialogues, shared by the suite) stands in for the pretrain stage, as in notebook 06
    (measured: win rate 0.81; `rlaif-lab run --preset smoke --task dialogue`: 0.78)."""
    out, s = run(tmp_path_factory, "dialogue", pretrained=builtin_ckpt)
    t = "task/dialogue"
    assert s[f"{t}/rl/harmless"] > s[f"{t}/sft/harmless"]
    assert s[f"{t}/win_rate/rlaif_vs_sft"] >= 0.7
    assert "feedback/weight/harm" in json.loads((out / "rl" / "history.json").read_text())[-1]


def test_one_policy_on_the_mix_reports_every_task(tmp_path_factory):
    tiny = {"lm": {"train": {"max_steps": 40}, "corpus": {"n_train": 800, "n_prompts": 16}},
            "sft": {"max_steps": 20}, "judge": {"steps": 10}, "labels": {"n_pairs": 64},
            "reward_model": {"encoder": {"steps": 5}}, "rl": {"iterations": 2},
            "kg_walk": {"steps": 500, "n_examples": 50, "eval_interval": 250}}
    out, s = run(tmp_path_factory, "all", tiny)
    for task in M.TASKS:
        assert s[f"task/{task}/n_prompts"] == 4
        assert 0.0 <= s[f"task/{task}/win_rate/rlaif_vs_sft"] <= 1.0
    assert {"task/summary/rl/rougeL", "task/kgqa/rl/exact_match", "task/dialogue/rl/harmless",
            M.WALK_ONE} <= set(s)
    history = json.loads((out / "rl" / "history.json").read_text())
    assert {f"feedback/source/{n}" for n in ("variety", "harm", "grounding")} <= set(history[0])
