"""Hostile command lines: each is refused with exit code 2 and a message that names the problem,
without a traceback, and no file is created or changed (hashes and mtimes compared)."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlaif_lab.cli import main

pytestmark = pytest.mark.e2e
ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}


def snapshot(root: Path) -> dict:
    """Every file and folder under ``root``: (sha256, mtime) of files, the set of folders."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        else:
            out[str(p)] = "dir"
    return out


@pytest.fixture
def area(tmp_path):
    (tmp_path / "a_file").write_text("not a directory\n")
    (tmp_path / "a_dir").mkdir()
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "deep.json").write_text('{"rl": ' + deep + "}")
    (tmp_path / "list.json").write_text("[1, 2]")
    return tmp_path


def refused(argv, area, capsys, message):
    before = snapshot(area)
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert message in err, err
    assert "Traceback" not in err
    assert snapshot(area) == before


@pytest.mark.parametrize("argv, message", [
    (["run", "--config", "{a}/deep.json", "--out", "{a}/x"], "nested too deeply"),
    (["run", "--config", "{a}/a_dir", "--out", "{a}/x"], "is a directory"),
    (["run", "--config", "{a}/list.json", "--out", "{a}/x"], "expected a JSON object"),
    (["run", "--out", "{a}/a_file"], "a_file is a file, not a directory"),
    (["run", "--out", "{a}/a_file/sub/run"], "a_file is a file, not a directory"),
    (["run", "--out", "{a}/x", "--lm.model.n_embd", "65"],
     "n_embd (65) must be divisible by n_head (4)"),
    (["run", "--out", "{a}/x", "--lm.train.lr", "-1"], "TrainConfig.lr must be > 0"),
    (["run", "--out", "{a}/x", "--rl.max_new_tokens", "128"], "must be below"),
    (["sweep", "alpha", "--out", "{a}/a_file"], "is a file"),
    (["pretrain", "--out", "{a}/a_file"], "is a file"),
    (["pretrain", "--out", "{a}/x", "--config", "{a}/deep.json"], "nested too deeply"),
    (["cartpole", "--out", "{a}/a_file/x"], "is a file"),
    (["cartpole", "--out", "{a}/x", "--ppo.env_id", "Pendulum-v1"],
     "action space Box(-2.0, 2.0, (1,), float32) is not supported"),
    (["cartpole", "--out", "{a}/x", "--ppo.env_id", "NoSuchEnv-v0"], "NoSuchEnv"),
])
def test_refused_with_exit_2_and_nothing_written(argv, message, area, capsys):
    refused([a.format(a=area) for a in argv], area, capsys, message)


def test_a_read_only_out_is_refused(area, capsys):
    ro = area / "ro"
    ro.mkdir()
    if os.geteuid() == 0:  # root writes through permissions: make the folder immutable
        subprocess.run(["chattr", "+i", str(ro)], check=True)
    else:
        ro.chmod(0o555)
    try:
        refused(["run", "--out", str(ro / "run")], area, capsys, "is not writable")
        refused(["cartpole", "--out", str(ro / "run")], area, capsys, "is not writable")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(ro)], check=True)
        ro.chmod(0o755)


def test_the_command_line_itself_prints_no_traceback(area):
    before = snapshot(area)
    r = subprocess.run([sys.executable, "-m", "rlaif_lab.cli", "run", "--config",
                        str(area / "deep.json"), "--out", str(area / "x")],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 2 and "nested too deeply" in r.stderr
    assert "Traceback" not in r.stderr
    assert snapshot(area) == before
    assert json.loads((area / "list.json").read_text()) == [1, 2]
