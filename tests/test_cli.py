"""The CLI: pretrain then sample end to end; bad input exits 2 and overwrites nothing."""

import json
import os
import subprocess
import sys

import pytest
from cli_inprocess import run_main as cli_here

pytestmark = pytest.mark.e2e

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
SMALL = ["--quiet", "--corpus.n_train", "800", "--corpus.n_val", "100", "--n_eval_samples", "10",
         "--model.n_layer", "1", "--model.n_embd", "32", "--model.n_head", "2",
         "--model.block_size", "64", "--train.max_steps", "6", "--train.batch_size", "4",
         "--train.eval_interval", "3", "--train.eval_batches", "1", "--vocab_size", "300"]


def cli(*args):
    """The console command in a child process (its imports, its real exit)."""
    return subprocess.run([sys.executable, "-m", "rlaif_lab.cli", *args], capture_output=True,
                          text=True, env=ENV, timeout=300)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    r = cli("pretrain", "--out", str(out), *SMALL)
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout[: r.stdout.rindex("}") + 1])
    assert {"val_perplexity", "unigram_val_perplexity", "well_formed_rate"} <= set(metrics)
    assert "tensorflow" not in r.stderr.lower()
    return out


def test_sample_prints_marked_samples(run_dir):
    r = cli("sample", "--checkpoint", str(run_dir / "checkpoint"), "--prompt", "movie review :",
            "--num-samples", "3", "--max_new_tokens", "8")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3 and all(line[:3] in ("ok ", "BAD") for line in lines)
    assert all("movie review :" in line for line in lines)


@pytest.mark.parametrize("args, message", [
    (["pretrain", "--tokenizer", "wordpiece"], "invalid choice"),
    (["pretrain", "--train.lr", "fast"], "expected a number, got 'fast'"),
    (["pretrain", "--train.max_steps", "0"], "max_steps must be >= 1"),
    (["sample", "--checkpoint", "/does/not/exist"], "does not exist"),
    (["sample"], "--checkpoint"),
])
def test_bad_input_exits_2(args, message):
    r = cli_here(*args)
    assert r.returncode == 2
    assert message in r.stderr


def test_sample_errors_exit_2(run_dir, tmp_path):
    ck = str(run_dir / "checkpoint")
    r = cli_here("sample", "--checkpoint", ck, "--prompt", "the plot was good . " * 20)
    assert r.returncode == 2 and "no room in the context" in r.stderr
    from lm_torch.tokenizer import CharTokenizer

    CharTokenizer.train(["abc"]).save(tmp_path / "tok.json")
    r = cli_here("sample", "--checkpoint", ck, "--tokenizer", str(tmp_path / "tok.json"))
    assert r.returncode == 2 and "vocabulary mismatch" in r.stderr
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("not json")
    r = cli_here("sample", "--checkpoint", str(tmp_path / "broken"))
    assert r.returncode == 2 and "not valid JSON" in r.stderr


def test_pretrain_never_overwrites_an_existing_run(run_dir):
    before = (run_dir / "checkpoint" / "model.safetensors").read_bytes()
    r = cli_here("pretrain", "--out", str(run_dir), *SMALL)
    assert r.returncode == 2 and "--resume" in r.stderr
    r = cli_here("pretrain", "--out", str(run_dir), *SMALL, "--train.lr", "0.1")
    assert r.returncode == 2 and "another config (train.lr: 0.003 -> 0.1)" in r.stderr
    assert (run_dir / "checkpoint" / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize("command", ["pretrain", "sample", "cartpole", "run", "sweep", "lab"])
def test_every_command_has_help(command):
    """--help of every command prints its usage (a "%" in a help text once broke run's)."""
    r = cli_here(command, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: rlaif-lab {command}")


def test_help_explains_every_flag():
    r = cli_here("pretrain", "--help")
    assert r.returncode == 0
    for flag in ("--train.lr", "--model.n_layer", "--corpus.seed", "--resume", "--tokenizer"):
        line = next(ln for ln in r.stdout.splitlines() if flag in ln)
        assert len(line.split()) > 2 or flag == "--resume"  # the flag carries a help text


def test_cartpole_runs_and_writes_its_report(tmp_path):
    out = tmp_path / "cp"
    r = cli("cartpole", "--out", str(out), "--quiet", "--algo", "reinforce",
            "--reinforce.total_steps", "400", "--reinforce.eval_interval", "200",
            "--reinforce.eval_episodes", "2")
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "reinforce" and summary["steps"] >= 400
    for name in ("history.json", "policy.keras", "learning_curve.png", "config.json"):
        assert (out / name).is_file()
    assert list((out / "tb").iterdir())
    r = cli_here("cartpole", "--out", str(out), "--quiet")
    assert r.returncode == 2 and "another config (algo: 'reinforce' -> 'ppo'" in r.stderr
    r = cli_here("cartpole", "--out", str(out), "--quiet", "--algo", "reinforce",
                 "--reinforce.total_steps", "400", "--reinforce.eval_interval", "200",
                 "--reinforce.eval_episodes", "2")
    assert r.returncode == 2 and "already holds a cartpole run" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--algo", "dqn"], "invalid choice"),
    (["--ppo.env_id", "Pendulum-v1"], "action space Box"),
    (["--ppo.env_id", "NoSuchEnv-v0"], "doesn't exist"),
    (["--ppo.gamma", "2"], "gamma must be in"),
])
def test_cartpole_bad_input_exits_2(tmp_path, args, message):
    r = cli_here("cartpole", "--out", str(tmp_path / "x"), "--quiet", *args)
    assert r.returncode == 2
    assert message in r.stderr


def test_device_flag_resolves_or_exits_2_naming_the_fix(tmp_path):
    import torch

    from lm_torch.device import module_device, resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert module_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    r = cli_here("run", "--preset", "smoke", "--out", str(tmp_path / "x"), "--device", "tpu")
    assert r.returncode == 2 and "unknown device 'tpu'" in r.stderr
    assert not (tmp_path / "x").exists()
    if not torch.cuda.is_available():  # this machine has no GPU: asking for one is refused
        r = cli_here("pretrain", "--out", str(tmp_path / "y"), "--device", "cuda", *SMALL)
        assert r.returncode == 2 and "no CUDA device is visible" in r.stderr
        assert not (tmp_path / "y").exists()
