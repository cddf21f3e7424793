"""The whole RLAIF run: the smoke preset learns, resumes exactly, and refuses bad input."""

import json
import os
import subprocess
import sys

import pytest

from bridge.pipeline import STAGES, Run, RunError
from bridge.presets import merge, preset

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke") / "run"
    summary = Run(preset("smoke"), out, progress=False, log=lambda m: None).run_all()
    return out, summary


def test_smoke_run_learns_from_ai_feedback(smoke):
    out, s = smoke
    assert s["rl/gold_score"] > s["sft/gold_score"]  # the learning signal, by the gold scorer
    assert s["win_rate_vs_sft/gold"] > 0.6 and s["win_rate_vs_sft/judge"] > 0.6
    assert s["kl/per_sequence"] > 0
    for stage in STAGES:
        assert (out / stage / "done.json").is_file()
    report = (out / "report" / "report.md").read_text()
    assert "win rate vs SFT, gold scorer" in report and "Samples side by side" in report
    for png in ("reward.png", "kl.png", "entropy.png", "feedback.png"):
        assert (out / "report" / png).stat().st_size > 1000
    history = json.loads((out / "rl" / "history.json").read_text())
    for key in ("kl/exact", "kl/k1", "kl/k3", "rl/kl_coef", "losses/entropy",
                "feedback/weight/reward", "feedback/source/grammar"):
        assert key in history[-1]


def test_a_killed_run_resumes_to_the_same_summary(smoke, tmp_path, monkeypatch):
    _, expected = smoke
    out = tmp_path / "run"
    cfg = preset("smoke")
    run = Run(cfg, out, progress=False, log=lambda m: None)
    for stage in STAGES[:STAGES.index("rl")]:
        run.stage(stage)
    import rl_tf.logger

    real_log, calls = rl_tf.logger.Logger.log, {"n": 0}

    def dying_log(self, step, values):
        calls["n"] += 1
        if calls["n"] == 13:  # killed during iteration 13; the last checkpoint is at 10
            raise KeyboardInterrupt
        real_log(self, step, values)

    monkeypatch.setattr(rl_tf.logger.Logger, "log", dying_log)
    with pytest.raises(KeyboardInterrupt):
        run.stage("rl")
    assert not run.done("rl")
    monkeypatch.setattr(rl_tf.logger.Logger, "log", real_log)
    summary = Run(cfg, out, progress=False, log=lambda m: None).run_all()
    assert summary == expected  # exactly: no tolerance needed


def test_same_seed_same_summary(smoke, tmp_path):
    _, expected = smoke
    again = Run(preset("smoke"), tmp_path / "again", progress=False, log=lambda m: None)
    assert again.run_all() == expected


def test_an_existing_run_with_another_config_is_refused(smoke):
    out, _ = smoke
    before = (out / "summary.json").read_text()
    with pytest.raises(RunError, match="another config"):
        Run(merge(preset("smoke"), {"seed": 1}), out)
    assert (out / "summary.json").read_text() == before


def cli(*args):
    return subprocess.run([sys.executable, "-m", "bridge.cli", "run", *args],
                          capture_output=True, text=True, env=ENV, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--rl.iterations", "many"], "invalid int value"),
    (["--rl.algo", "dqn"], "invalid choice"),
    (["--rl.iterations", "0"], "iterations must be >= 1"),
])
def test_bad_input_exits_2(tmp_path, args, message):
    r = cli("--out", str(tmp_path / "x"), *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert not (tmp_path / "x").exists()


def test_bad_config_files_exit_2(tmp_path, smoke):
    bad_key = tmp_path / "bad_key.json"
    bad_key.write_text(json.dumps({"rl": {"itterations": 5}}))
    r = cli("--out", str(tmp_path / "y"), "--config", str(bad_key))
    assert r.returncode == 2 and "unknown config key 'itterations'" in r.stderr
    bad_type = tmp_path / "bad_type.json"
    bad_type.write_text(json.dumps({"rl": {"iterations": "ten"}}))
    r = cli("--out", str(tmp_path / "y"), "--config", str(bad_type))
    assert r.returncode == 2 and "iterations" in r.stderr
    out, _ = smoke
    before = (out / "config.json").read_text()
    r = cli("--out", str(out), "--preset", "smoke")  # an existing run, no --resume
    assert r.returncode == 2 and "--resume" in r.stderr
    r = cli("--out", str(out), "--preset", "default", "--resume")  # another run's artefacts
    assert r.returncode == 2 and "another config" in r.stderr
    assert (out / "config.json").read_text() == before


def _reuse(src, dst, stages=("pretrain", "sft", "judges", "labels", "reward_model")):
    import shutil

    for stage in stages:
        shutil.copytree(src / stage, dst / stage)


def test_ppo_with_d_rlaif_reward_also_learns(smoke, tmp_path):
    out = tmp_path / "ppo"
    _reuse(smoke[0], out)
    cfg = merge(preset("smoke"), {"rl": {"algo": "ppo"},
                                  "feedback": {"reward": "direct", "fusion": "inverse_variance"}})
    s = Run(cfg, out, progress=False, log=lambda m: None).run_all()
    assert s["rl/gold_score"] > s["sft/gold_score"]
    history = json.loads((out / "rl" / "history.json").read_text())
    assert any(h["policy/clipfrac"] > 0 for h in history)  # the PPO clip was active


def test_alpha_sweep_writes_a_table_and_a_plot(smoke, tmp_path):
    from bridge.sweep import run_sweep

    out = tmp_path / "sweep"
    _reuse(smoke[0], out / "alpha_0.0")
    rows = run_sweep("alpha", merge(preset("smoke"), {"rl": {"iterations": 6}}), out,
                     progress=False, log=lambda m: None)
    assert [r["point"] for r in rows] == ["alpha=0.0", "alpha=0.25", "alpha=0.5", "alpha=1.0",
                                          "alpha=2.0"]
    # with alpha = 0 only the KL penalty acts: the policy stays at the SFT policy
    assert rows[0]["kl/per_sequence"] < rows[-1]["kl/per_sequence"]
    assert "| alpha=2.0 |" in (out / "sweep.md").read_text()
    assert (out / "sweep.png").stat().st_size > 1000
