"""The built-in corpus: deterministic, seeded, labelled text of the tasks of :mod:`lm_torch.tasks`.

Book 2.1.3 (pre-training and fine-tuning) needs data; this module makes it on the spot, so
nothing is downloaded. Each task module draws its own documents (reviews with a mood that tilts
their polar words, multi-turn dialogues, documents with summaries, knowledge-graph questions)
with a balanced label:

* reviews  -- ``movie review : the plot was very good . i hated the ending .``
* dialogue -- ``user : where is my order ? bot : your order is on the way . user : ...``
* summary  -- ``document : ... summary : pros : plot . cons : music . overall : positive .``
* kgqa     -- ``facts : alice lives in oslo . ... question : where does alice live ? answer :
  oslo .``

The training and validation splits hold corrupted summaries and wrong answers too (label 0), to
train the judges; the held-out prompts of the grounded tasks carry their reference completion.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .tasks import TASKS, Record, generate_record, split_prompt

__all__ = ["CorpusConfig", "Corpus", "Record", "build_corpus", "generate_record",
           "split_prompt"]


@dataclass(frozen=True)
class CorpusConfig:
    """How much of the built-in corpus to make, and from which seed."""

    seed: int = field(default=0, metadata={"help": "seed of the corpus generator"})
    n_train: int = field(default=24000, metadata={"help": "training documents (~3 MB)"})
    n_val: int = field(default=1000, metadata={"help": "validation documents"})
    n_prompts: int = field(default=200, metadata={"help": "held-out evaluation prompts"})
    tasks: tuple[str, ...] = field(default=("reviews", "dialogue"),
                                   metadata={"help": "tasks mixed in equal shares"})


@dataclass(frozen=True)
class Corpus:
    """Train / validation documents and held-out prompts, all from one seed."""

    train: tuple[Record, ...]
    val: tuple[Record, ...]
    prompts: tuple[Record, ...]  #: held-out documents; use ``.prompt`` / ``.task``

    def texts(self, split: str = "train", demonstrations: bool = False) -> list[str]:
        """The documents of ``split``; with ``demonstrations`` only those written to be learnt
        from (``Record.for_sft``: not the corrupted summaries and wrong answers, which exist
        to teach the judges what is wrong)."""
        return [r.text for r in getattr(self, split) if r.for_sft or not demonstrations]

    @property
    def n_bytes(self) -> int:
        return sum(len(r.text) + 1 for r in self.train)


def _draw(seed: int, stream: int, n: int, tasks: tuple[str, ...],
          corrupt: bool = True) -> tuple[Record, ...]:
    rng = random.Random(f"rlaif-lab/{seed}/{stream}")  # str seeds are stable across runs
    return tuple(generate_record(rng, tasks[i % len(tasks)], corrupt) for i in range(n))


def build_corpus(config: CorpusConfig = CorpusConfig()) -> Corpus:
    """The corpus for ``config``: the same seed always gives the same documents.

    The three splits come from three independent random streams of the seed; the held-out
    prompts are drawn without corruption (their completion is the reference).
    """
    for t in config.tasks:
        if t not in TASKS:
            raise ValueError(f"unknown task {t!r} in CorpusConfig.tasks; use {sorted(TASKS)}")
    if min(config.n_train, config.n_val, config.n_prompts) < 1:
        raise ValueError("CorpusConfig sizes must be >= 1")
    return Corpus(
        train=_draw(config.seed, 0, config.n_train, config.tasks),
        val=_draw(config.seed, 1, config.n_val, config.tasks),
        prompts=_draw(config.seed, 2, config.n_prompts, config.tasks, corrupt=False),
    )
