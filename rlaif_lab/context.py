"""The typed context every stage of a run receives: the config, the run directory, the logger,
and accessors for what earlier stages left there (book 3.1.1's algorithm flow).

A stage is a plain function ``run(ctx) -> dict`` of this context, so it can be tested alone on a
tiny context whose directory holds the artefacts of the stages before it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch

from bridge.env import BatchedTextEnv, zero_reward
from bridge.files import read_json
from bridge.npz import load_arrays
from lm_torch import judges as J
from lm_torch.backend import LMBackend
from lm_torch.checkpoint import Checkpoint, load_checkpoint
from lm_torch.corpus import Corpus, build_corpus
from lm_torch.human import HumanRater
from lm_torch.io import CheckpointError
from lm_torch.lm_scorer import load_lm_scorer
from lm_torch.policy import ResidualPolicy as TorchPolicy
from lm_torch.policy import Trainer as TorchTrainer
from lm_torch.reward_model import RewardModel, make_reward_fn
from rl_tf.feedback import FeedbackFuser
from rl_tf.rlaif import ResidualPolicy as KerasPolicy
from rl_tf.rlaif import Trainer as KerasTrainer

from .config import RunConfig


def shard_threads(shards: int) -> int:
    """The torch threads that compute a rollout shard: the process's own for a single shard
    (the plain rollout), else one. A shard's numbers depend on its thread count (a CPU kernel
    splits its sums by thread), so every process -- this one or a Ray worker -- computes a
    shard alike; parallelism comes from shards side by side, one CPU each, as Ray runs them."""
    return torch.get_num_threads() if shards == 1 else 1


class WorkerError(RuntimeError):
    """A rollout shard that could not be run: its Ray worker died or hung too often."""


@dataclass(frozen=True)
class ScaleOut:
    """Where the RL stage's rollouts run (``--backend``, ``--workers``, ``--ray-address``,
    ``--worker-timeout``, ``--feedback-actors``). Not part of the config: the numbers do not
    depend on it (``bridge.shards``), so a run may be resumed on another backend."""

    backend: Literal["local", "ray"] = "local"  #: local: in this process; ray: Ray actors
    workers: int = 1  #: rollout workers (Ray actors), each holding the LM and a policy copy
    address: str | None = None  #: an existing Ray cluster to join (None: start a local one)
    timeout_s: float = 300.0  #: a shard not back in this time: its worker is replaced
    feedback_actors: bool = False  #: the learned reward source runs in a Ray actor of its own

    def __post_init__(self):
        if self.backend not in ("local", "ray"):
            raise ValueError(f"backend must be 'local' or 'ray', not {self.backend!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or \
                self.workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {self.workers!r}")
        if not self.timeout_s > 0:
            raise ValueError(f"the worker timeout must be > 0 seconds, got {self.timeout_s!r}")
        if self.backend == "local" and (self.workers != 1 or self.address or
                                        self.feedback_actors):
            raise ValueError("--workers, --ray-address and --feedback-actors need --backend ray")

    def check(self, shards: int) -> None:
        """ValueError if ``workers`` would leave a worker without a shard to run."""
        if self.backend == "ray" and self.workers > shards:
            raise ValueError(f"{self.workers} workers but rl.shards = {shards}: each worker "
                             f"runs whole shards, so {self.workers - shards} would idle; set "
                             f"--rl.shards {self.workers} (or a multiple of it)")


@dataclass
class RunContext:
    """One run: ``cfg`` (the whole config), ``out`` (its directory), ``log``, ``progress``,
    ``device`` and ``scale`` (where it computes; neither changes a result)."""

    cfg: RunConfig
    out: Path
    log: Callable[[str], None] = print
    progress: bool = True
    #: where the PyTorch side computes (``--device``, resolved): the LM, judges, reward models
    device: str = "cpu"
    scale: ScaleOut = field(default_factory=ScaleOut)
    _services: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.out = Path(self.out)

    def dir(self, stage: str) -> Path:
        """``OUT/<stage>``, created."""
        d = self.out / stage
        d.mkdir(parents=True, exist_ok=True)
        return d

    @functools.cached_property
    def corpus(self) -> Corpus:
        """The run's corpus (a pure function of ``cfg.lm.corpus``)."""
        return build_corpus(self.cfg.lm.corpus)

    # --- artefacts of earlier stages (each loaded fresh: loading builds modules, and so draws
    # from torch's generator exactly as the stage that follows expects) -------------------------
    def sft(self) -> Checkpoint:
        """The fine-tuned LM of the ``sft`` stage: the environment and the reference policy."""
        return load_checkpoint(self.out / "sft" / "checkpoint", map_location=self.device)

    def judge(self):
        """The AI judge of the ``judges`` stage: the classifier, or the LM judge."""
        if self.cfg.judge.backbone == "lm":
            return self._placed(load_lm_scorer(self.out / "judges" / "lm"))
        return J.ClassifierJudge(J.load_encoder(self.out / "judges" / "classifier")
                                 .to(self.device), self.sft().tokenizer)

    def labels(self) -> dict:
        """The AI-labelled pairs of the ``labels`` stage: prompts, a, b, labels."""
        return read_json(self.out / "labels" / "pairs.json", "AI labels", error=CheckpointError)

    def reward_model(self, stage: str = "reward_model"):
        """The Bradley-Terry reward model of ``stage`` (``reward_model``: on AI labels;
        ``reward_model_human``: on the human stand-in's): an encoder or an LM scorer."""
        if self.cfg.reward_model.encoder.backbone == "lm":
            return self._placed(load_lm_scorer(self.out / stage))
        return RewardModel(J.load_encoder(self.out / stage).to(self.device), self.sft().tokenizer)

    def _placed(self, scorer):
        """An LM scorer with its model moved to the run's device."""
        scorer.model.to(self.device)
        return scorer

    def rl_state(self, stage: str = "rl") -> dict[str, np.ndarray]:
        """An RL stage's last checkpoint (policy, fusion statistics, KL coefficient, history):
        ``rl`` (RLAIF) or ``rl_human`` (RLHF)."""
        return load_arrays(self.out / stage / "state.npz")

    def human(self) -> HumanRater:
        """The human stand-in (``cfg.human``): the rater RLHF's labels and the evaluation use."""
        return HumanRater(self.cfg.human)

    # --- what the RL stage and the evaluation are built from ---------------------------------
    def reward_sources(self, arm: str = "rlaif") -> dict[str, Callable]:
        """The feedback sources of an RL stage, in the order of ``cfg.sources``: the reward
        -- for ``rlaif`` the reward model on AI labels (or the judge itself for d-RLAIF), for
        ``rlhf`` the reward model on human labels -- and the rule critics of the run's tasks
        (grammar and repetition; variety for reviews; the harm constitution for dialogue)."""
        if arm == "rlhf":
            reward = self.reward_model("reward_model_human").score
        else:
            kind = self.cfg.feedback.reward
            rm = self.reward_model() if kind == "rm" else None
            reward = make_reward_fn(kind, self.judge(), rm)
        critics = {"grammar": J.GrammarCritic(), "repetition": J.RepetitionCritic(),
                   "variety": J.VarietyCritic(), "harm": J.HarmCritic(),
                   "grounding": J.GroundingCritic()}
        return {name: reward if name == "reward" else critics[name].score
                for name in self.cfg.sources}

    def fuser(self) -> FeedbackFuser:
        """The fusion of the sources (book 4.3.1), configured by ``cfg.fusion()``."""
        return FeedbackFuser(self.cfg.sources, self.cfg.fusion())

    def policy(self, vocab_size: int, hidden_size: int):
        """A fresh residual policy in ``cfg.rl.framework`` (Keras or its PyTorch twin), with
        the same initial weights either way."""
        cls = KerasPolicy if self.cfg.rl.framework == "tf" else TorchPolicy
        return cls(vocab_size, hidden_size, self.cfg.rl, self.cfg.seed)

    def trainer(self, policy):
        """The trainer of ``policy``'s framework."""
        cls = KerasTrainer if self.cfg.rl.framework == "tf" else TorchTrainer
        return cls(policy, self.cfg.rl)

    def env(self, batch_size: int, prompts: list[str] | None = None) -> BatchedTextEnv:
        """The frozen SFT model as a batched environment over ``prompts`` (default: the
        corpus's training prompts)."""
        sft = self.sft()
        backend = LMBackend(sft.model, sft.tokenizer, max_new_tokens=self.cfg.rl.max_new_tokens,
                            device=self.device)
        prompts = prompts or [r.prompt for r in self.corpus.train]
        return BatchedTextEnv(backend, sft.tokenizer, prompts, batch_size=batch_size,
                              reward_fn=zero_reward)

    def service(self, name: str, make: Callable[[], object]):
        """An object made once per run by ``make()`` -- e.g. the Ray workers of the RL stages,
        shared by RLAIF and RLHF -- and closed by :meth:`close`."""
        if name not in self._services:
            self._services[name] = make()
        return self._services[name]

    def close(self) -> None:
        """Close what the run started (its Ray workers, and Ray itself if it started it)."""
        while self._services:
            _, obj = self._services.popitem()
            close = getattr(obj, "close", None)
            if close is not None:
                close()
