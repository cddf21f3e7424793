"""The whole RLAIF run: the smoke preset learns, resumes exactly, and refuses bad input."""

import json

import numpy as np
import pytest
from cli_inprocess import run_main
from run_helpers import reuse as _reuse

from bridge.files import RunDirError
from rlaif_lab.config import merge_run as merge
from rlaif_lab.config import preset
from rlaif_lab.runner import STAGES, applies, open_run, run_all, run_stage

pytestmark = pytest.mark.e2e


def test_smoke_run_learns_from_ai_feedback(smoke):
    out, s = smoke
    assert s["rl/gold_score"] > s["sft/gold_score"]  # the learning signal, by the gold scorer
    assert s["win_rate_vs_sft/gold"] > 0.6 and s["win_rate_vs_sft/judge"] > 0.6
    # by the human stand-in the AI only partly sees, both RL arms improve on SFT ...
    assert s["win_rate/rlaif_vs_sft"] > 0.6
    assert s["rl/human_score"] > s["sft/human_score"] + 0.5
    assert s["rlhf/human_score"] > s["sft/human_score"] + 0.5
    for pair in ("rlaif_vs_sft", "rlhf_vs_sft", "rlaif_vs_rlhf"):
        low, high = s[f"win_rate/{pair}_ci_low"], s[f"win_rate/{pair}_ci_high"]
        assert low <= s[f"win_rate/{pair}"] <= high
    # ... without collapsing into repetition
    assert s["rl/repeated_sentence_rate"] <= s["sft/repeated_sentence_rate"] + 0.05
    assert 0.5 < s["labels/ai_human_agreement"] < 0.95  # the AI only partly sees the human view
    assert s["kl/per_sequence"] > 0 and s["kl/per_sequence_rlhf"] > 0
    for stage in STAGES:  # every stage of the review task ran; the graph walker is kgqa's
        assert (out / stage / "done.json").is_file() == applies(preset("smoke"), stage)
    assert not applies(preset("smoke"), "kg_walk")
    report = (out / "report" / "report.md").read_text()
    assert "Results (book 5.3)" in report and "Samples side by side" in report
    for png in ("reward.png", "arms.png", "kl.png", "entropy.png", "feedback.png", "quality.png"):
        assert (out / "report" / png).stat().st_size > 1000
    history = json.loads((out / "rl" / "history.json").read_text())
    for key in ("kl/exact", "kl/k1", "kl/k3", "rl/kl_coef", "losses/entropy", "rl/human",
                "feedback/weight/reward", "feedback/source/grammar", "feedback/source/variety"):
        assert key in history[-1]


def test_same_seed_and_a_killed_run_resume_to_the_same_summary(smoke, tmp_path, monkeypatch):
    """A second run from scratch with the same seed, killed in the RL stage and resumed, ends
    with the first run's summary exactly: every stage reproduces, and the resume loses
    nothing."""
    _, expected = smoke
    out = tmp_path / "run"
    cfg = preset("smoke")
    ctx = open_run(cfg, out, progress=False, log=lambda m: None)
    for stage in list(STAGES)[:list(STAGES).index("rl")]:
        run_stage(ctx, stage)  # the RL stage (RLAIF) is killed, then RLHF and the rest run
    import rl_tf.logger

    real_log, calls = rl_tf.logger.Logger.log, {"n": 0}

    def dying_log(self, step, values):
        calls["n"] += 1
        if calls["n"] == 13:  # killed during iteration 13; the last checkpoint is at 10
            raise KeyboardInterrupt
        real_log(self, step, values)

    monkeypatch.setattr(rl_tf.logger.Logger, "log", dying_log)
    with pytest.raises(KeyboardInterrupt):
        run_stage(ctx, "rl")
    assert not (out / "rl" / "done.json").exists()
    monkeypatch.setattr(rl_tf.logger.Logger, "log", real_log)
    summary = run_all(open_run(cfg, out, progress=False, log=lambda m: None))
    assert summary == expected  # exactly: no tolerance needed
    assert _tensorboard_steps(out / "rl" / "tb") == list(range(1, cfg.rl.iterations + 1))


def _tensorboard_steps(log_dir) -> list[int]:
    """The steps of ``rl/gold`` in every event file of ``log_dir``, in file order."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    steps = []
    for f in sorted(log_dir.glob("events.out.tfevents.*"), key=lambda f: f.name.split(".it")[-1]):
        for ev in EventFileLoader(str(f)).Load():
            steps += [ev.step for v in ev.summary.value if v.tag == "rl/gold"]
    return steps


@pytest.mark.parametrize("victim", ["atomic_write_json", "write_tensorboard_segment"])
def test_killed_between_the_rl_stage_writes_resumes_to_the_same_summary(smoke, tmp_path,
                                                                           monkeypatch, victim):
    """Killed at the second checkpoint after state.npz (before history.json), or after
    history.json (before the TensorBoard segment): nothing lost, no step logged twice."""
    _, expected = smoke
    out, cfg = tmp_path / "run", preset("smoke")
    _reuse(smoke[0], out)
    import rlaif_lab.stages.rl as rl_stage

    real, calls = getattr(rl_stage, victim), {"n": 0}

    def dying(*args, **kw):
        if victim == "write_tensorboard_segment" and not args[1]:
            return real(*args, **kw)  # the resume's (empty) replay segment
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint: state.npz is written
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(rl_stage, victim, dying)
    ctx = open_run(cfg, out, progress=False, log=lambda m: None)
    with pytest.raises(KeyboardInterrupt):
        run_stage(ctx, "rl")
    monkeypatch.setattr(rl_stage, victim, real)
    assert run_all(open_run(cfg, out, progress=False, log=lambda m: None)) == expected
    assert _tensorboard_steps(out / "rl" / "tb") == list(range(1, cfg.rl.iterations + 1))


def test_an_existing_run_with_another_config_is_refused(smoke):
    out, _ = smoke
    before = (out / "summary.json").read_text()
    with pytest.raises(RunDirError, match=r"another config \(rl.lr: 0.003 -> 0.002"):
        open_run(merge(preset("smoke"), {"rl": {"lr": 2e-3}}), out)
    assert (out / "summary.json").read_text() == before


def test_a_stage_made_from_other_inputs_is_refused(smoke, tmp_path):
    out = tmp_path / "run"
    _reuse(smoke[0], out, ("pretrain", "sft", "judges"))
    cfg = merge(preset("smoke"), {"judge": {"steps": 7}})  # the copied judge has 200 steps
    with pytest.raises(RunDirError, match="judges was made from other inputs"):
        open_run(cfg, out)
    assert not (out / "config.json").exists()


def cli(*args):
    """``rlaif-lab run ARGS``, in this process."""
    return run_main("run", *args)


@pytest.mark.parametrize("args, message", [
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--rl.iterations", "many"], "invalid int value"),
    (["--rl.algo", "dqn"], "invalid choice"),
    (["--rl.iterations", "0"], "iterations must be > 0"),
    (["--lm.model.n_embd", "65"], "n_embd (65) must be divisible by n_head (4)"),
    (["--rl.lr", "-1"], "RLConfig.lr must be > 0"),
    (["--lm.train.lr", "nan"], "expected a finite number"),
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
    r = cli("--out", str(out), "--preset", "smoke", "--resume", "--rl.iterations", "30")
    assert r.returncode == 2 and "rl.iterations: 25 -> 30" in r.stderr
    assert (out / "config.json").read_text() == before


def test_ppo_with_d_rlaif_reward_also_learns(smoke, tmp_path):
    """PPO on the judge's own score (d-RLAIF), inverse-variance fusion: 50 iterations (at 25
    the gold score was above SFT's with two threads and below it with one: seed luck)."""
    out = tmp_path / "ppo"
    _reuse(smoke[0], out)
    cfg = merge(preset("smoke"), {"rl": {"algo": "ppo", "iterations": 50}, "feedback": {
        "reward": "direct", "fusion": {"weights": "inverse_variance", "normalize": True,
                                       "fixed_weights": []}}})
    s = run_all(open_run(cfg, out, progress=False, log=lambda m: None))
    assert s["rl/gold_score"] > s["sft/gold_score"]
    history = json.loads((out / "rl" / "history.json").read_text())
    assert any(h["policy/clipfrac"] > 0 for h in history)  # the PPO clip was active


def test_alpha_sweep_shares_stages_and_writes_a_table_and_a_plot(smoke, tmp_path):
    """The alpha sweep, terminal and per-step feedback: stages shared by input hash only."""
    from rlaif_lab.sweep import run_sweep

    out = tmp_path / "sweep"
    _reuse(smoke[0], out / "alpha_0.0__terminal")
    logs = []
    rows = run_sweep("alpha", merge(preset("smoke"), {"rl": {"iterations": 3}}), out,
                     progress=False, log=logs.append)
    shared = [m for m in logs if m.startswith("[sweep]")]
    # every later point takes the six stages before RL from the first one, and no other
    assert len(shared) == 9 * 6
    assert all(m.endswith("shared with alpha=0.0,terminal") for m in shared)
    assert not any(f"stage {s} shared" in m for m in shared for s in ("rl", "rl_human"))
    points = [r["point"] for r in rows]
    assert points[:5] == [f"alpha={a},terminal" for a in ("0.0", "0.25", "0.5", "1.0", "2.0")]
    assert points[5:] == [p.replace("terminal", "per_step") for p in points[:5]]
    # with alpha = 0 only the KL penalty acts: the policy stays nearer the SFT policy
    assert rows[0]["kl/per_sequence"] < rows[4]["kl/per_sequence"]
    assert rows[5]["kl/per_sequence"] < rows[9]["kl/per_sequence"]
    assert "| alpha=2.0,per_step |" in (out / "sweep.md").read_text()
    assert (out / "sweep.png").stat().st_size > 1000


def test_every_logged_name_is_registered(smoke):
    from bridge import metrics as M

    out, summary = smoke
    history = json.loads((out / "rl" / "history.json").read_text())
    M.check({k for row in history for k in row if k != "iteration"})
    M.check(summary)
    assert {M.APPROX_KL_K1, M.APPROX_KL_K3, M.EXPLAINED_VARIANCE} <= set(history[-1])


def test_resume_of_a_finished_run_changes_nothing(smoke):
    out, expected = smoke
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    r = cli("--out", str(out), "--preset", "smoke", "--resume", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "[rl] done already (kept)" in r.stdout
    assert json.loads(r.stdout[r.stdout.index("{\n"): r.stdout.rindex("}") + 1]) == expected
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


def test_a_stage_runs_alone_on_a_tiny_context(smoke, tmp_path):
    """A stage is a function of a context: here the judges stage, on a copy of the smoke
    run's SFT model with a 5-step judge."""
    from rlaif_lab.context import RunContext
    from rlaif_lab.stages import judges

    out = tmp_path / "run"
    _reuse(smoke[0], out, ("pretrain", "sft"))
    ctx = RunContext(merge(preset("smoke"), {"judge": {"steps": 5}}), out, log=lambda m: None,
                     progress=False)
    info = judges.run(ctx)
    assert 0.0 <= info["classifier_accuracy"] <= 1.0
    assert (out / "judges" / "classifier" / "encoder.safetensors").is_file()
    assert ctx.judge().score(["movie review :"], ["the plot was good ."]).shape == (1,)


def test_the_torch_policy_twin_takes_the_same_first_update_and_ends_alike(smoke, tmp_path):
    """--rl.framework torch vs tf (the default) from one seed: the first RL iteration's update
    agrees to 1e-5, and the whole smoke runs end with the same figures within noise."""
    from bridge.npz import load_arrays

    first = {}
    for fw in ("tf", "torch"):
        out = tmp_path / f"first-{fw}"
        _reuse(smoke[0], out)
        cfg = merge(preset("smoke"), {"rl": {"framework": fw, "iterations": 1}})
        ctx = open_run(cfg, out, progress=False, log=lambda m: None)
        run_stage(ctx, "rl")
        first[fw] = load_arrays(out / "rl" / "state.npz")
    weights = [k for k in first["tf"] if k.startswith("policy/") and "adam_step" not in k]
    assert len(weights) == 36  # 12 weights, 12 first and 12 second Adam moments
    for k in weights:
        np.testing.assert_allclose(first["torch"][k], first["tf"][k], atol=1e-5, rtol=0,
                                   err_msg=k)
    out = tmp_path / "torch"
    _reuse(smoke[0], out)
    s = run_all(open_run(merge(preset("smoke"), {"rl": {"framework": "torch"}}), out,
                         progress=False, log=lambda m: None))
    expected = smoke[1]
    assert abs(s["rl/gold_score"] - expected["rl/gold_score"]) < 0.25
    assert abs(s["win_rate_vs_sft/gold"] - expected["win_rate_vs_sft/gold"]) < 0.05
    assert s["rl/gold_score"] > s["sft/gold_score"]


def test_kl_sweep_measures_over_optimisation(smoke, tmp_path):
    from rlaif_lab.sweep import SWEEPS, fit_gao, run_sweep

    # the fit recovers a known curve: R(d) = d (2 - 1 log d) peaks at d* = e
    d = np.linspace(0.1, 8, 50)
    f = fit_gao(d, d * (2 - np.log(d)))
    assert f["alpha"] == pytest.approx(2) and f["beta"] == pytest.approx(1)
    assert f["peak_d"] == pytest.approx(np.e) and not f["rising_at_max_d"]
    out = tmp_path / "kl"
    first = SWEEPS["kl"][0][0].replace("=", "_")
    _reuse(smoke[0], out / first)
    run_sweep("kl", merge(preset("smoke"), {"rl": {"iterations": 4}}), out, progress=False,
              log=lambda m: None)
    result = json.loads((out / "sweep.json").read_text())
    assert len(result["rows"]) == len(SWEEPS["kl"])
    assert set(result["fits"]) == {"proxy", "human"} and result["points"] == 4 * len(SWEEPS["kl"])
    assert (out / "overoptimisation.png").stat().st_size > 5000
    assert "R(d) = d (alpha - beta log d)" in (out / "sweep.md").read_text()
