"""Scale-out on Ray (DESIGN.md "Scale-out"; ``rlaif_lab.ray_rollout``): rollout workers as Ray
actors give the local run's numbers exactly, on any number of workers, when a worker is killed
or hangs, and on a simulated two-node cluster joined with ``--ray-address``.

One local cluster (``ray.init(num_cpus=2)``) serves the module; the two-node cluster runs in a
child interpreter (a process joins one cluster at a time)."""

import ast
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import ray
from run_helpers import reuse

from bridge.npz import load_arrays
from rlaif_lab import ray_rollout
from rlaif_lab.config import merge_run, preset
from rlaif_lab.context import ScaleOut
from rlaif_lab.runner import open_run, run_all, run_stage

pytestmark = pytest.mark.e2e

#: the smoke preset in four rollout shards: what every run of this module computes
CFG = merge_run(preset("smoke"), {"rl": {"shards": 4}})


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local(smoke, tmp_path_factory):
    """The reference: the RL stages and what follows, computed here (``--backend local``)."""
    out = tmp_path_factory.mktemp("local") / "run"
    reuse(smoke[0], out)
    return out, run_all(open_run(CFG, out, progress=False, log=lambda m: None))


def test_two_workers_give_the_local_summary_through_a_kill_and_a_hang(cluster, local, smoke,
                                                                     tmp_path, monkeypatch):
    """``--backend ray --workers 2`` gives the local run's summary.json exactly, although
    during the RL stage one worker is killed by its pid (SIGKILL) while its shards are in
    flight and later the other stops answering (SIGSTOP) past the timeout: both are replaced
    by new workers and their shards run again."""
    out = tmp_path / "run"
    reuse(smoke[0], out)
    logs = []
    ctx = open_run(CFG, out, progress=False, log=logs.append,
                   scale=ScaleOut("ray", 2, timeout_s=10.0))
    real_wait, calls = ray.wait, {"n": 0}

    def wait(*args, **kwargs):  # called once an iteration's shards are submitted
        calls["n"] += 1
        engine = ctx._services["ray"]
        if calls["n"] == 12:  # iteration 3
            os.kill(engine.pids[0], signal.SIGKILL)
        if calls["n"] == 60:  # about iteration 14
            os.kill(engine.pids[1], signal.SIGSTOP)
        return real_wait(*args, **kwargs)

    monkeypatch.setattr(ray_rollout.ray, "wait", wait)
    run_stage(ctx, "rl")
    monkeypatch.setattr(ray_rollout.ray, "wait", real_wait)
    engine = ctx._services["ray"]
    assert engine.replaced >= 2 and calls["n"] > 60
    assert any("worker lost" in m for m in logs), logs
    assert any("no answer in 10 s" in m for m in logs), logs
    got, want = load_arrays(out / "rl" / "state.npz"), load_arrays(local[0] / "rl" / "state.npz")
    assert set(got) == set(want) and all(np.array_equal(got[k], want[k]) for k in want)
    summary = run_all(ctx)  # RLHF on the same workers (two of them new), then the evaluation
    assert summary == local[1]  # exactly: every shard is computed as it is locally
    assert any("2 rollout workers ready" in m for m in logs)
    assert ray.is_initialized()  # a cluster the run did not start is left running ...
    assert not ctx._services  # ... but the run's workers are stopped, their files gone
    assert not list(Path(tempfile.gettempdir()).glob(f"rlaif-worker-{engine.tag}-*"))


TWO_NODES = textwrap.dedent("""
    import sys
    from ray.cluster_utils import Cluster
    from rlaif_lab.config import merge_run, preset
    from rlaif_lab.context import ScaleOut
    from rlaif_lab.runner import open_run, run_stage
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        cfg = merge_run(preset("smoke"), {"rl": {"shards": 4}})
        ctx = open_run(cfg, sys.argv[1], progress=False, scale=ScaleOut(
            "ray", 2, address=cluster.address, feedback_actors=True))
        try:
            run_stage(ctx, "rl")
        finally:
            ctx.close()
    finally:
        cluster.shutdown()
""")


def test_a_two_node_cluster_runs_the_same_rl(cluster, local, smoke, tmp_path):
    """``ray.cluster_utils.Cluster``: a head and a second node of one CPU each, joined by its
    address; one rollout worker per node, the reward model in a feedback actor. The RL stage
    ends with the local run's numbers."""
    out = tmp_path / "run"
    reuse(smoke[0], out)
    r = subprocess.run([sys.executable, "-c", TWO_NODES, str(out)], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 rollout workers ready in" in r.stdout and "on 2 node(s)" in r.stdout, r.stdout
    assert (out / "rl" / "history.json").read_text() == \
        (local[0] / "rl" / "history.json").read_text()
    got, want = load_arrays(out / "rl" / "state.npz"), load_arrays(local[0] / "rl" / "state.npz")
    assert all(np.array_equal(got[k], want[k]) for k in want)


def test_scale_flags_are_checked_before_anything_is_written(tmp_path):
    from cli_inprocess import run_main

    for args, message in [(["--workers", "2"], "need --backend ray"),
                          (["--backend", "ray", "--workers", "3"], "set --rl.shards 3"),
                          (["--backend", "ray", "--workers", "0", "--rl.shards", "2"],
                           "workers must be an integer >= 1"),
                          (["--backend", "ray", "--worker-timeout", "0"], "timeout must be > 0"),
                          (["--backend", "spark"], "invalid choice")]:
        r = run_main("run", "--preset", "smoke", "--out", str(tmp_path / "x"), *args)
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
        assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="must be at most batch_size"):
        merge_run(preset("smoke"), {"rl": {"shards": 33}})


def test_ray_is_imported_only_when_asked_for():
    """No module of the application but ``ray_rollout`` imports Ray, and none imports
    ``ray_rollout`` at its top level: ``import rlaif_lab`` and a local run never load Ray."""
    root = Path(__file__).parent.parent
    for f in (root / "rlaif_lab").rglob("*.py"):
        if f.name == "ray_rollout.py":
            continue
        for node in ast.parse(f.read_text()).body:  # top-level statements only
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [f"{node.module}"] if isinstance(node, ast.ImportFrom) and node.module else []
            assert not any(n == "ray" or n.startswith("ray.") or n.endswith("ray_rollout")
                           for n in names), f"{f}:{node.lineno} imports {names}"
    for f in ("lm_torch", "rl_tf", "bridge"):  # and the layers below never do (layers.py)
        assert "import ray" not in "".join(p.read_text() for p in (root / f).rglob("*.py"))
