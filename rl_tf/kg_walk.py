"""RL on the knowledge graph itself (book 6.3.2): a Keras policy walks from the question's entity
to the answer, as DeepPath (Xiong et al. 2017) and MINERVA (Das et al. 2018) do.

The MDP of one question (a small graph of (head, relation, tail) facts, the asked entity, the
kind of question):

* state s_t: the question's kind, the step t, the type of the entity the walk is at, and which
  relations leave it (a 0/1 mask) -- one flat vector, so the book's three-Dense PolicyNetwork
  (listing 5.2.1) reads it;
* action a_t: follow relation r (``RELATIONS[r]``, if it leaves the entity; else stay), or
  ``STOP`` -- the answer is the entity the walk is at. After ``max_hops`` moves it must stop;
* reward at the stop: 1 if the walk reached the answer, plus ``plausibility_weight`` times the
  language model's plausibility of that entity as the answer (AI feedback: the SFT LM's
  P(answer = e | facts, question), normalised over the graph's entities; the application
  computes it, since this side never sees torch).

It is trained with the project's REINFORCE (:func:`rl_tf.reinforce.train_reinforce`, reward-to-go
with a learned baseline) on ``rlaif/KGWalk-v0`` and evaluated greedily on held-out questions
(:func:`walk_success`). Relation and type names come from the caller (the corpus task
``lm_torch.tasks.kgqa``), so this module knows no task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import gymnasium as gym
import numpy as np

ENV_ID = "rlaif/KGWalk-v0"


@dataclass(frozen=True)
class WalkSpec:
    """The vocabulary of the walk: relation names, question kinds, entity types."""

    relations: tuple[str, ...]
    kinds: tuple[str, ...]
    types: dict = field(hash=False)  #: entity -> type name
    max_hops: int = 3

    @property
    def type_names(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.types.values())))

    @property
    def obs_dim(self) -> int:
        return (len(self.kinds) + self.max_hops + 1 + len(self.type_names)
                + len(self.relations))

    @property
    def stop(self) -> int:
        """The action that stops the walk (after the relations)."""
        return len(self.relations)


def observe(spec: WalkSpec, kind: str, step: int, node: str, triples) -> np.ndarray:
    """s_t as one flat float32 vector (see the module docstring)."""
    k, h, ty = len(spec.kinds), spec.max_hops + 1, spec.type_names
    x = np.zeros(spec.obs_dim, np.float32)
    x[spec.kinds.index(kind)] = 1.0
    x[k + min(step, spec.max_hops)] = 1.0
    x[k + h + ty.index(spec.types[node])] = 1.0
    out = {r for hd, r, _ in triples if hd == node}
    for i, r in enumerate(spec.relations):
        x[k + h + len(ty) + i] = float(r in out)
    return x


def move(triples, node: str, relation: str) -> str:
    """The entity ``relation`` leads to from ``node`` (``node`` itself if none leaves it)."""
    return next((t for h, r, t in triples if h == node and r == relation), node)


class KGWalkEnv(gym.Env):
    """One question per episode, drawn from ``examples`` (dicts with ``triples``, ``start``,
    ``kind``, ``answer``); ``plausibility[i]`` maps entities of example i to the LM's P."""

    metadata = {"render_modes": []}

    def __init__(self, vocab: WalkSpec, examples: Sequence[dict],
                 plausibility: Sequence[dict] | None = None, plausibility_weight: float = 0.0):
        if not examples:
            raise ValueError("KGWalkEnv needs at least one example")
        self.vocab, self.examples = vocab, list(examples)  # (gym's Env.spec is another thing)
        self.plausibility = list(plausibility) if plausibility is not None else None
        if self.plausibility is not None and len(self.plausibility) != len(self.examples):
            raise ValueError("plausibility needs one dict per example")
        self.weight = float(plausibility_weight)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (vocab.obs_dim,), np.float32)
        self.action_space = gym.spaces.Discrete(len(vocab.relations) + 1)
        self.index, self.node, self.t, self.path = 0, "", 0, []

    def _obs(self) -> np.ndarray:
        ex = self.examples[self.index]
        return observe(self.vocab, ex["kind"], self.t, self.node, ex["triples"])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        idx = (options or {}).get("index")
        self.index = int(self.np_random.integers(len(self.examples)) if idx is None else idx)
        ex = self.examples[self.index]
        self.node, self.t, self.path = ex["start"], 0, [ex["start"]]
        return self._obs(), {}

    def step(self, action):
        a, ex = int(action), self.examples[self.index]
        if a != self.vocab.stop and self.t < self.vocab.max_hops:
            self.node = move(ex["triples"], self.node, self.vocab.relations[a])
            self.t += 1
            self.path.append(self.node)
            return self._obs(), 0.0, False, False, {}
        success = self.node == ex["answer"]
        p = self.plausibility[self.index].get(self.node, 0.0) if self.plausibility else 0.0
        reward = float(success) + self.weight * float(p)
        return self._obs(), reward, True, False, {"success": success, "path": list(self.path)}


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="rl_tf.kg_walk:KGWalkEnv")


def walk(policy_logits, spec: WalkSpec, example: dict) -> list[str]:
    """The greedy walk (argmax action each step) of one question: the entities visited."""
    node, path = example["start"], [example["start"]]
    for t in range(spec.max_hops + 1):
        obs = observe(spec, example["kind"], t, node, example["triples"])[None]
        a = int(np.argmax(np.asarray(policy_logits(obs))[0]))
        if a == spec.stop or t == spec.max_hops:
            break
        node = move(example["triples"], node, spec.relations[a])
        path.append(node)
    return path


def walk_success(policy_logits, spec: WalkSpec, examples: Sequence[dict]) -> np.ndarray:
    """1.0 where the greedy walk of an example ends at its answer, else 0.0: float [N]."""
    return np.array([float(walk(policy_logits, spec, ex)[-1] == ex["answer"])
                     for ex in examples])


@dataclass(frozen=True)
class KGWalkConfig:
    """The graph walker of book 6.3.2 and its REINFORCE training."""

    steps: int = field(default=20000, metadata={"help": "environment steps of REINFORCE"})
    episodes_per_batch: int = field(default=32, metadata={"help": "walks per update"})
    hidden_dim: int = field(default=64, metadata={"help": "width of the policy's layers"})
    lr: float = field(default=3e-3, metadata={"help": "Adam learning rate"})
    ent_coef: float = field(default=0.01, metadata={"help": "entropy bonus"})
    plausibility_weight: float = field(default=0.5, metadata={
        "help": "weight of the LM's plausibility of the reached entity in the reward"})
    max_hops: int = field(default=3, metadata={"help": "moves before the walk must stop"})
    n_examples: int = field(default=2000, metadata={"help": "training questions"})
    eval_interval: int = field(default=2000, metadata={"help": "steps between evaluations"})

    def __post_init__(self):
        for name in ("steps", "episodes_per_batch", "hidden_dim", "max_hops", "n_examples",
                     "eval_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"KGWalkConfig.{name} must be >= 1")
        if not self.lr > 0 or self.plausibility_weight < 0 or self.ent_coef < 0:
            raise ValueError("KGWalkConfig.lr must be > 0, plausibility_weight and ent_coef "
                             ">= 0")
