"""One RLAIF run, stage by stage (book 3.1.1's algorithm flow; DESIGN.md "One RLAIF run").

pretrain -> sft -> judges -> labels -> reward_model(_human) -> rl(_human) -> kg_walk ->
evaluate -> report. Each stage is a module of ``rlaif_lab.stages`` with a function
``run(ctx) -> dict`` (and, if it does not apply to every task, ``applies(cfg) -> bool``: a
stage that does not apply is neither run nor checked); it writes its artefacts
under ``OUT/<stage>/`` and the runner writes ``done.json`` last, with the stage's *input hash*:
a hash of the config values the stage reads (its ``INPUTS``) and of the input hashes of the
stages it reads from (its ``AFTER``). A stage whose ``done.json`` holds the current hash is
kept; one with another hash is refused (its inputs changed). Sweeps share a stage between two
runs exactly when the hashes match. Every stage starts from the run's seed, and the RL stage's
randomness is a function of (seed, iteration), so a resumed run ends with the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Callable

from bridge.files import RunDirError, atomic_write_json, jsonable, open_run_dir, read_json
from lm_torch.device import resolve_device
from lm_torch.train import seed_everything as seed_torch
from rl_tf.logger import seed_everything as seed_tf

from .config import RunConfig
from .context import RunContext, ScaleOut
from .stages import (
    evaluate,
    judges,
    kg_walk,
    labels,
    pretrain,
    report,
    reward_model,
    reward_model_human,
    rl,
    rl_human,
    sft,
)

#: the stages in order, by name
STAGES = {"pretrain": pretrain, "sft": sft, "judges": judges, "labels": labels,
          "reward_model": reward_model, "reward_model_human": reward_model_human, "rl": rl,
          "rl_human": rl_human, "kg_walk": kg_walk, "evaluate": evaluate, "report": report}


def applies(cfg: RunConfig, name: str) -> bool:
    """Does stage ``name`` run for ``cfg``'s task? (e.g. ``kg_walk`` only with kgqa)"""
    fn = getattr(STAGES[name], "applies", None)
    return fn is None or bool(fn(cfg))


def config_value(cfg: RunConfig, path: str):
    """The JSON value of a dotted config path (``"rl.lr"``, or a whole section ``"rl"``)."""
    value = cfg
    for part in path.split("."):
        value = getattr(value, part)
    return jsonable(value)


def stage_hash(cfg: RunConfig, name: str) -> str:
    """The input hash of stage ``name`` under ``cfg`` (see the module docstring)."""
    mod = STAGES[name]
    blob = json.dumps({"stage": name, "inputs": {p: config_value(cfg, p) for p in mod.INPUTS},
                       "after": {a: stage_hash(cfg, a) for a in mod.AFTER}}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def open_run(cfg: RunConfig, out: str | Path, resume: bool = True, progress: bool = True,
             log: Callable[[str], None] = print, device: str = "cpu",
             scale: ScaleOut = ScaleOut()) -> RunContext:
    """The context of a run of ``cfg`` in ``out``: a new directory, or the same run continued
    (``resume``). RunDirError -- and nothing changed -- for another config or a stage made from
    other inputs. ``device`` (``auto``, ``cpu``, ``cuda``; ValueError if CUDA is asked for and
    none is visible) is where the PyTorch side computes; it is not part of the config, so a run
    may be resumed on another device (its numbers then differ in the last digits). ``scale``
    is where the RL stage's rollouts run (ValueError if its workers outnumber ``rl.shards``);
    not part of the config either: the numbers do not depend on it."""
    device = str(resolve_device(device))
    scale.check(cfg.rl.shards)
    existing = (Path(out) / "config.json").exists()
    if existing:  # another config is named value by value, before anything else
        open_run_dir(out, jsonable(cfg), resume=resume)
    ctx = RunContext(cfg, Path(out), log, progress, device, scale)
    for name in STAGES:
        if applies(cfg, name):
            _check_done(ctx, name)
    if not existing:
        open_run_dir(out, jsonable(cfg), resume=resume)
    return ctx


def _check_done(ctx: RunContext, name: str) -> dict | None:
    path = ctx.out / name / "done.json"
    if not path.is_file():
        return None
    done = read_json(path, f"stage {name}", error=RunDirError)
    want = stage_hash(ctx.cfg, name)
    got = done.get("inputs_hash") if isinstance(done, dict) else None
    if got != want:
        raise RunDirError(f"{ctx.out / name} was made from other inputs than this config's "
                          f"(input hash {got}, expected {want}); delete that directory to redo "
                          "the stage")
    return done


def run_stage(ctx: RunContext, name: str) -> dict:
    """Run stage ``name`` unless it is done (or does not apply: then ``{}``); returns its
    ``done.json``."""
    if not applies(ctx.cfg, name):
        return {}
    done = _check_done(ctx, name)
    if done is not None:
        ctx.log(f"[{name}] done already (kept)")
        return done
    t0 = time.time()
    ctx.log(f"[{name}] ...")
    seed_torch(ctx.cfg.seed)
    seed_tf(ctx.cfg.seed)
    info = STAGES[name].run(ctx) or {}
    done = {"seconds": round(time.time() - t0, 1), "inputs_hash": stage_hash(ctx.cfg, name),
            **info}
    atomic_write_json(ctx.out / name / "done.json", done)
    ctx.log(f"[{name}] finished in {time.time() - t0:.0f} s")
    return done


def run_all(ctx: RunContext) -> dict:
    """Every stage in order; returns ``summary.json``. What the run started (Ray workers) is
    stopped at the end, also when a stage fails."""
    try:
        for name in STAGES:
            run_stage(ctx, name)
    finally:
        ctx.close()
    return read_json(ctx.out / "summary.json", "summary", error=RunDirError)


def share_stage(ctx: RunContext, name: str, src: str | Path) -> bool:
    """Copy stage ``name`` from the run directory ``src`` if it is done there with the same
    input hash (nothing else is ever shared); True if it was copied or is already here."""
    src = Path(src)
    if (ctx.out / name / "done.json").is_file():
        return True
    done = src / name / "done.json"
    if not done.is_file():
        return False
    if read_json(done, f"stage {name}", error=RunDirError).get("inputs_hash") != stage_hash(
            ctx.cfg, name):
        return False
    shutil.rmtree(ctx.out / name, ignore_errors=True)
    shutil.copytree(src / name, ctx.out / name)
    return True


def use_pretrained(ctx: RunContext, run_dir: str | Path) -> None:
    """Take the pretrain stage from a ``rlaif-lab pretrain`` directory (e.g. the built-in
    LM's) instead of training it: its checkpoint becomes ``OUT/pretrain``, marked done for
    this config. The caller vouches that it fits ``cfg.lm``; the copy is recorded."""
    src = Path(run_dir)
    if not (src / "checkpoint").is_dir():
        raise RunDirError(f"{src} has no checkpoint/ to take as the pretrained LM")
    if (ctx.out / "pretrain" / "done.json").is_file():
        return
    shutil.copytree(src, ctx.out / "pretrain", dirs_exist_ok=True)
    atomic_write_json(ctx.out / "pretrain" / "done.json",
                      {"taken_from": str(src), "inputs_hash": stage_hash(ctx.cfg, "pretrain")})
