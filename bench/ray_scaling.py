"""The RL stage on Ray against the number of workers (DESIGN.md "Scale-out"; book 7.2.3).

For each setting -- ``--backend local`` (the same shards; and the plain rollout, one shard on
all threads, for scale), then N Ray rollout workers on a local cluster, then a
simulated multi-node cluster (``ray.cluster_utils.Cluster``, several nodes of one CPU each in
this machine) -- the RL stage (RLAIF) of one run is trained from the same earlier stages, and
this prints: the workers' start-up time, the stage's wall time, the rollout throughput (tokens
generated per second of rollout), the resident memory of each worker, and whether the stage's
numbers (``rl/history.json`` and the policy's state) equal the local run's. Figures only.

Run: ``python bench/ray_scaling.py`` (a smoke run's stages; about 6 minutes on 2 cores), or
``--preset default`` (``make run``'s sizes); ``--json FILE`` and ``--plot FILE`` save them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import psutil  # noqa: E402
import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from bridge.files import atomic_write_json  # noqa: E402
from rlaif_lab.config import merge_run, preset  # noqa: E402
from rlaif_lab.context import ScaleOut  # noqa: E402
from rlaif_lab.runner import open_run, run_stage  # noqa: E402
from rlaif_lab.stages import rl as rl_stage  # noqa: E402
from rlaif_lab.stages.rl import ray_workers, rollout_engine  # noqa: E402

BEFORE_RL = ("pretrain", "sft", "judges", "labels", "reward_model", "reward_model_human")


def base_run(cfg, where: Path) -> Path:
    """A run directory holding every stage before RL (trained once, then reused)."""
    out = where / "base"
    if not (out / "reward_model_human" / "done.json").is_file():
        ctx = open_run(cfg, out, progress=True)
        for stage in BEFORE_RL:
            run_stage(ctx, stage)
    return out


def measure(cfg, base: Path, where: Path, name: str, scale: ScaleOut) -> dict:
    """Train the RL stage from ``base``'s stages with ``scale``; its figures."""
    out = where / name
    shutil.rmtree(out, ignore_errors=True)
    for stage in BEFORE_RL:
        shutil.copytree(base / stage, out / stage)
    logs: list[str] = []
    ctx = open_run(cfg, out, progress=False, log=logs.append, scale=scale)
    spent, tokens = {"rollout": 0.0}, {"n": 0}

    def timed_engine(ctx):
        real = rollout_engine(ctx)

        def timed(env, policy, prompts, seed):
            t = time.perf_counter()
            ro, final = real(env, policy, prompts, seed)
            spent["rollout"] += time.perf_counter() - t
            tokens["n"] += int(ro.mask.sum())
            return ro, final

        return timed

    rl_stage.rollout_engine = timed_engine
    t0 = time.perf_counter()
    startup, rss = 0.0, []
    if scale.backend == "ray":
        engine = ray_workers(ctx)  # the workers start here
        startup = time.perf_counter() - t0
        rss = [psutil.Process(p).memory_info().rss / 2**20 for p in engine.pids
               if psutil.pid_exists(p)]  # pids on this machine (every node here is)
    t1 = time.perf_counter()
    try:
        run_stage(ctx, "rl")
    finally:
        ctx.close()
        rl_stage.rollout_engine = rollout_engine
    return {"setting": name, "workers": scale.workers if scale.backend == "ray" else 0,
            "startup_s": round(startup, 1), "stage_s": round(time.perf_counter() - t1, 1),
            "rollout_s": round(spent["rollout"], 2),
            "rollout_tokens_per_s": round(tokens["n"] / spent["rollout"]),
            "worker_rss_mb": round(sum(rss) / len(rss)) if rss else None,
            "history": (out / "rl" / "history.json").read_text()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="smoke", help="the run's sizes (default: smoke)")
    p.add_argument("--shards", type=int, default=4, help="rl.shards (default: 4)")
    p.add_argument("--workers", default="1,2,4", help="worker counts on the local cluster")
    p.add_argument("--nodes", type=int, default=2, help="nodes of the simulated cluster")
    p.add_argument("--dir", default=None, help="where the runs go (default: a temporary dir)")
    p.add_argument("--json", default=None, help="write the figures to this JSON file")
    p.add_argument("--plot", default=None, help="write a PNG of the figures")
    args = p.parse_args(argv)
    cfg = merge_run(preset(args.preset), {"rl": {"shards": args.shards}})
    where = Path(args.dir or tempfile.mkdtemp(prefix="ray-scaling-"))
    base = base_run(cfg, where)
    rows = [measure(cfg, base, where, "local", ScaleOut())]
    plain = merge_run(cfg, {"rl": {"shards": 1}})  # the default rollout: one batch, all threads
    rows.append({**measure(plain, base, where, "local, 1 shard", ScaleOut()), "history": None})
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    for n in map(int, args.workers.split(",")):
        rows.append(measure(cfg, base, where, f"ray x{n}", ScaleOut("ray", n)))
    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(args.nodes - 1):
        cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        rows.append(measure(cfg, base, where, f"{args.nodes} nodes x1",
                            ScaleOut("ray", args.nodes)))
        ray.shutdown()
    finally:
        cluster.shutdown()
    local_history = rows[0]["history"]
    print(f"RL stage of --preset {args.preset} ({cfg.rl.iterations} iterations x "
          f"{cfg.rl.batch_size} sequences, {cfg.rl.shards} shards), {os.cpu_count()} cores, "
          f"one torch thread per shard")
    print(f"{'setting':>12} {'start-up s':>10} {'stage s':>8} {'rollout s':>9} "
          f"{'tokens/s':>9} {'RSS MB/worker':>13} {'same numbers':>12}")
    for r in rows:
        history = r.pop("history")
        r["same_as_local"] = None if history is None else history == local_history
        print(f"{r['setting']:>12} {r['startup_s']:>10} {r['stage_s']:>8} {r['rollout_s']:>9} "
              f"{r['rollout_tokens_per_s']:>9} {str(r['worker_rss_mb'] or '-'):>13} "
              f"{ {True: 'yes', False: 'NO', None: '(other shards)'}[r['same_as_local']]:>12}")
    report = {"preset": args.preset, "cores": os.cpu_count(), "shards": cfg.rl.shards,
              "ray": ray.__version__, "rows": rows}
    if args.json:
        atomic_write_json(Path(args.json), report)
    if args.plot:
        plot(rows, args.plot)
    if not args.dir:
        shutil.rmtree(where, ignore_errors=True)
    return 0 if all(r["same_as_local"] is not False for r in rows) else 1


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["setting"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].bar(names, [r["rollout_tokens_per_s"] for r in rows], color="tab:blue")
    ax[0].set_ylabel("rollout tokens / s")
    ax[1].bar(names, [r["stage_s"] for r in rows], color="tab:orange", label="RL stage")
    ax[1].bar(names, [r["startup_s"] for r in rows], bottom=[r["stage_s"] for r in rows],
              color="tab:gray", label="worker start-up")
    ax[1].set_ylabel("seconds")
    ax[1].legend(loc="lower left", framealpha=0.9)
    for a in ax:
        a.tick_params(axis="x", rotation=30)
    fig.suptitle(f"RL stage against Ray workers ({os.cpu_count()} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
