"""The RL stage on Ray: rollout workers as Ray actors, the learner central (book 7.2.3, which
names RLlib; DESIGN.md "Scale-out"; the layout of OpenRLHF and verl).

``rlaif-lab run --backend ray --workers N`` keeps the learner -- the TF trainer, the KL
controller, the fusion -- in the driver. Each of N :class:`RolloutWorker` actors holds the frozen
LM (the Torch backend of ``bridge.env``) and a copy of the policy head; after every update the
driver puts the policy's weights in Ray's object store once (``ray.put``) and sends each worker
whole shards of the iteration's prompts (``bridge.shards``); a worker answers with a shard's
rollout as the bridge's bytes. Sequence b's randomness is ``(seed, iteration, b)`` and a shard's
numbers do not depend on the process computing them, so the merged rollout -- and the run's
``summary.json`` -- are the same on 1 worker, on N, and with ``--backend local``.

Faults: a worker that dies (killed, out of memory, its node lost) is replaced by a new actor
and its shards are run again; a shard not back within ``--worker-timeout`` seconds has its
worker killed and replaced the same way. A shard is a pure function of (weights, prompts, seed),
so a re-run gives the same bytes: the run ends as an undisturbed one would. ``--resume`` is the RL
stage's own (its checkpoint is written by the driver).

With ``--feedback-actors`` the learned feedback source (the reward model, or the AI judge for
d-RLAIF) runs in a :class:`FeedbackWorker` actor of its own and answers with a
``FeedbackBatch``: in real RLAIF the AI labeler is the expensive part. Workers receive the run's
artefacts as bytes through the object store, so they need no shared filesystem.

Without ``--ray-address`` a local cluster is started (``ray.init``) and shut down with the run;
with it the run joins an existing cluster (``ray start --head`` on one machine, ``ray start
--address HEAD:6379`` on the others). A cluster already initialised in this process is used as
it is and left running.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError

from bridge.npz import read_npz, write_npz
from bridge.protocol import FeedbackBatch
from bridge.rollout import rollout
from bridge.shards import merge, shard_from_bytes, shard_rows, shard_to_bytes

from .config import RunConfig
from .context import RunContext, WorkerError, shard_threads

#: a shard that fails this many times ends the run (with the last error)
MAX_ATTEMPTS = 3
#: environment of every worker: the same Keras backend and quiet TF as the driver
WORKER_ENV = ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL", "PYTHONHASHSEED")
#: what a rollout worker needs of a run (everything else stays with the driver)
ROLLOUT_STAGES = ("sft",)
#: what a feedback worker needs: the judges and reward models, and the SFT model they read
FEEDBACK_STAGES = ("sft", "judges", "reward_model", "reward_model_human")


def pack_stages(out: Path, stages: tuple[str, ...]) -> dict[str, bytes]:
    """The files of ``OUT/<stage>`` for each stage that exists, by relative path, without the
    TensorBoard logs: a run's artefacts as bytes, for workers on any node."""
    files = {}
    for stage in stages:
        for f in sorted((out / stage).rglob("*")):
            rel = f.relative_to(out)
            if f.is_file() and "tb" not in rel.parts:
                files[rel.as_posix()] = f.read_bytes()
    return files


class _Artefacts:
    """A worker's private copy of a run's artefacts (a temporary run directory)."""

    def __init__(self, cfg: RunConfig, files: dict[str, bytes], device: str, threads: int,
                 tag: str):
        torch.set_num_threads(threads)  # as the driver computes a shard: the same rounding
        self.dir = Path(tempfile.mkdtemp(prefix=f"rlaif-worker-{tag}-"))
        for rel, data in files.items():
            path = (self.dir / rel).resolve()
            if not path.is_relative_to(self.dir.resolve()):
                raise ValueError(f"artefact path {rel!r} leaves the worker's directory")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        self.ctx = RunContext(cfg, self.dir, log=lambda m: None, progress=False, device=device)

    def where(self) -> tuple[int, str]:
        """(process id, Ray node id) of this worker (the fault tests kill it by pid)."""
        return os.getpid(), ray.get_runtime_context().get_node_id()

    def cleanup(self) -> None:
        """Delete this worker's copy of the artefacts (before it is stopped)."""
        shutil.rmtree(self.dir, ignore_errors=True)


class _RolloutWorker(_Artefacts):
    """The frozen LM as an environment, and a copy of the policy head."""

    def __init__(self, cfg: RunConfig, files: dict[str, bytes], device: str, threads: int,
                 tag: str):
        super().__init__(cfg, files, device, threads, tag)
        self.env = self.ctx.env(cfg.rl.batch_size, prompts=["."])  # prompts come per shard
        self.policy = self.ctx.policy(self.env.meta.vocab_size, self.env.meta.hidden_size)

    def rollout(self, weights: bytes, prompts: list[str], seed: int, rows: list[int]) -> bytes:
        """One shard: the policy set to ``weights`` (``policy/g0`` ... as .npz bytes) rolls
        out ``prompts`` (rows ``rows`` of the batch); the result as ``bridge.shards`` bytes."""
        self.policy.set_weights(read_npz(weights))
        return shard_to_bytes(*rollout(self.env, self.policy, prompts, seed, row_ids=rows))


class _FeedbackWorker(_Artefacts):
    """The learned feedback source of an arm (``ctx.reward_sources(arm)["reward"]``)."""

    def __init__(self, cfg: RunConfig, files: dict[str, bytes], device: str, threads: int,
                 tag: str, arm: str):
        super().__init__(cfg, files, device, threads, tag)
        self.score_fn = self.ctx.reward_sources(arm)["reward"]

    def score(self, prompts: list[str], completions: list[str]) -> bytes:
        scores = np.asarray(self.score_fn(prompts, completions), np.float32)[:, None]
        return FeedbackBatch(scores, ("reward",)).to_bytes()


RolloutWorker = ray.remote(_RolloutWorker)
FeedbackWorker = ray.remote(_FeedbackWorker)


def connect(address: str | None) -> bool:
    """Ray for this process: the cluster already initialised here, the one at ``address``, or
    a new local one. True if this call started it (so the caller shuts it down)."""
    if ray.is_initialized():
        return False
    env = {k: os.environ[k] for k in WORKER_ENV if k in os.environ}
    ray.init(address=address, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", runtime_env={"env_vars": env})
    return True


class RayRollouts:
    """The driver's side: N rollout workers, shards sent out and merged back in row order."""

    def __init__(self, ctx: RunContext):
        scale, cfg = ctx.scale, ctx.cfg  # scale was checked against cfg by open_run
        self.ctx, self.scale, self.shards, self.log = ctx, scale, cfg.rl.shards, ctx.log
        self.started = connect(scale.address)
        self.threads = shard_threads(cfg.rl.shards)
        # one CPU each, or a share of the cluster's when the workers outnumber its CPUs
        self.cpus = min(1.0, ray.cluster_resources().get("CPU", 1.0) / scale.workers)
        self.files = {"rollout": ray.put(pack_stages(ctx.out, ROLLOUT_STAGES))}
        self.feedback: dict[str, object] = {}
        self.replaced = 0  #: workers replaced after they died or hung
        self.tag = uuid.uuid4().hex[:12]  #: names the workers' directories (close removes them)
        t0 = time.time()
        self.workers = [self._start() for _ in range(scale.workers)]
        where = self._wait_ready(self.workers)
        self.pids, self.nodes = [w[0] for w in where], [w[1] for w in where]
        self.log(f"[ray] {scale.workers} rollout workers ready in {time.time() - t0:.0f} s on "
                 f"{len(set(self.nodes))} node(s) (pids {self.pids})")

    def _start(self):
        return RolloutWorker.options(num_cpus=self.cpus).remote(
            self.ctx.cfg, self.files["rollout"], self.ctx.device, self.threads, self.tag)

    def _wait_ready(self, actors) -> list[tuple[int, str]]:
        """Where each actor runs, once every one is up (building one imports torch and TF:
        about 20 s on 2 cores)."""
        try:
            return ray.get([a.where.remote() for a in actors],
                           timeout=max(self.scale.timeout_s, 600.0))
        except (RayActorError, GetTimeoutError) as e:
            raise WorkerError(f"Ray workers did not start: {e}") from None

    def _replace(self, w: int) -> None:
        """A new worker ``w`` in place of one that died or hung (that one is killed); waiting
        for it to be up, so its start-up is not counted against a shard's timeout."""
        ray.kill(self.workers[w], no_restart=True)
        self.workers[w] = self._start()
        self.pids[w], self.nodes[w] = self._wait_ready([self.workers[w]])[0]
        self.replaced += 1

    # --- rollouts --------------------------------------------------------------------------
    def rollout(self, env, policy, prompts: list[str], seed: int):
        """:func:`bridge.shards.rollout_in_shards`, computed by the workers. Shard k goes to
        worker k mod N; a shard whose worker is lost or silent for ``timeout_s`` runs again on
        a new worker (at most :data:`MAX_ATTEMPTS` times)."""
        weights = ray.put(write_npz(policy.get_weights()))  # once per update, for every worker
        rows = shard_rows(len(prompts), self.shards)
        parts: dict[int, tuple] = {}
        pending: dict = {}  # ObjectRef -> (shard, attempt, the worker it was sent to)

        def submit(k: int, attempt: int) -> None:
            worker = self.workers[k % len(self.workers)]
            ref = worker.rollout.remote(weights, [prompts[i] for i in rows[k]], seed,
                                        rows[k].tolist())
            pending[ref] = (k, attempt, worker)

        def retry(ref, why: str) -> None:
            k, attempt, worker = pending.pop(ref)
            if attempt + 1 >= MAX_ATTEMPTS:
                raise WorkerError(f"shard {k} failed {MAX_ATTEMPTS} times; last: {why}")
            w = k % len(self.workers)
            self.log(f"[ray] shard {k}: {why}; running it again (attempt {attempt + 2})")
            if self.workers[w] is worker:  # not replaced yet (by another of its shards)
                self._replace(w)
            submit(k, attempt + 1)

        for k in range(len(rows)):
            submit(k, 0)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.scale.timeout_s)
            if not ready:  # silent past the timeout: every late shard's worker is replaced
                for ref in list(pending):
                    retry(ref, f"no answer in {self.scale.timeout_s:g} s")
                continue
            try:
                data = ray.get(ready[0])
            except RayActorError as e:  # died, or unavailable (its node lost)
                retry(ready[0], f"worker lost ({type(e).__name__})")
                continue
            k, _, _ = pending.pop(ready[0])
            parts[k] = shard_from_bytes(data, env.meta)
        ro, final = merge([parts[k] for k in range(len(rows))], env.tokenizer.pad_id)
        env.adopt(prompts, final)
        return ro, final

    # --- feedback --------------------------------------------------------------------------
    def remote_reward(self, arm: str):
        """The learned feedback source of ``arm`` as a function, computed by its actor (a new
        one if it is lost or silent for ``timeout_s``)."""
        if "feedback" not in self.files:
            self.files["feedback"] = ray.put(pack_stages(self.ctx.out, FEEDBACK_STAGES))

        def start() -> None:
            self.feedback[arm] = FeedbackWorker.options(num_cpus=0).remote(
                self.ctx.cfg, self.files["feedback"], self.ctx.device,
                torch.get_num_threads(), self.tag, arm)  # the driver's threads: it scores
            self._wait_ready([self.feedback[arm]])

        if arm not in self.feedback:  # one actor per arm, however often this is asked
            start()

        def reward(prompts, completions) -> np.ndarray:
            why = ""
            for _ in range(MAX_ATTEMPTS):
                try:
                    data = ray.get(self.feedback[arm].score.remote(list(prompts),
                                                                   list(completions)),
                                   timeout=self.scale.timeout_s)
                    return FeedbackBatch.from_bytes(data).scores[:, 0]
                except GetTimeoutError:
                    why = f"no answer in {self.scale.timeout_s:g} s"
                except RayActorError as e:
                    why = f"actor lost ({type(e).__name__})"
                self.log(f"[ray] feedback of {arm}: {why}; asking a new actor")
                ray.kill(self.feedback[arm], no_restart=True)
                start()
            raise WorkerError(f"the feedback actor of {arm} failed {MAX_ATTEMPTS} times; "
                              f"last: {why}")

        return reward

    def close(self) -> None:
        """Stop the workers (their copies of the artefacts deleted first), and Ray if this run
        started it."""
        actors = [*self.workers, *self.feedback.values()]
        try:
            ray.get([a.cleanup.remote() for a in actors], timeout=30)
        except (RayActorError, GetTimeoutError):
            pass  # a worker that cannot answer is killed all the same
        for actor in actors:
            ray.kill(actor, no_restart=True)
        self.workers, self.feedback = [], {}
        # a worker killed by a fault could not delete its directory; on this machine, they go
        for d in Path(tempfile.gettempdir()).glob(f"rlaif-worker-{self.tag}-*"):
            shutil.rmtree(d, ignore_errors=True)
        if self.started:
            ray.shutdown()
