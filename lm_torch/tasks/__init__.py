"""The tasks of the built-in corpus, one module each, with their own truth (book 2.1, 5.3, 6).

| task | prompt -> completion | truth (gold score) | its own metrics |
| --- | --- | --- | --- |
| reviews | header -> a review | summed sentiment | -- |
| dialogue | 2-3 user turns -> last bot turn | polite, helpful, on topic | + harmless |
| summary | a document -> pro/con aspects, verdict | faithful (+-1) | + coverage, ROUGE |
| kgqa | facts + question -> the answer | correct (+-1) | exact match (1-, 2-hop) |

Each module has ``NAME``, ``generate(rng, corrupt) -> Record``, ``gold(prompt, completion)``
and ``facts(prompt, completion) -> dict`` (the task's per-completion metrics). This package is
the front door: :func:`generate_record`, :func:`gold_score`, :func:`task_facts`.
"""

from __future__ import annotations

import random

from .. import grammar as G
from . import dialogue, kgqa, reviews, summary
from .base import Record, split_prompt

__all__ = ["Record", "split_prompt", "TASKS", "generate_record", "gold_score", "gold",
           "task_facts", "FACTS"]

TASKS = {m.NAME: m for m in (reviews, dialogue, summary, kgqa)}
assert tuple(TASKS) == tuple(G.TASKS)

#: the per-completion metrics of each task (the keys of ``task_facts``); summaries also get
#: ROUGE over a set (``summary.rouge``) and KG answers the exact match split by hops
FACTS: dict[str, tuple[str, ...]] = {
    "reviews": (), "dialogue": ("polite", "helpful", "on_topic", "harmless"),
    "summary": ("faithful", "faithfulness", "coverage"), "kgqa": ("exact_match",)}


def _module(task: str):
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    return TASKS[task]


def generate_record(rng: random.Random, task: str, corrupt: bool = True) -> Record:
    """Draw one labelled document of ``task``; ``corrupt=False`` draws only good completions
    of the grounded tasks (the held-out prompts, whose completion is the reference)."""
    return _module(task).generate(rng, corrupt)


def gold(task: str, prompt: str, completion: str) -> float:
    """The gold score of a completion of ``task`` (higher is better)."""
    return float(_module(task).gold(prompt, completion))


def gold_score(text: str) -> float:
    """The gold score of a whole document, its task read from its header (book 4.3.1's true
    signal f). Text of no task scores by its sentiment, as a review would. Works on any text,
    well-formed or not; evaluation reports well-formedness beside it, because a summed score can
    be raised by text that never stops (a known reward hack)."""
    task = G.task_of(text)
    if task is None:
        return G.lexicon_score(text, "sentiment")
    try:
        prompt, completion = split_prompt(text, task)
    except ValueError:  # a header without its completion marker: nothing was completed
        return gold(task, text, "")
    return gold(task, prompt, completion)


def task_facts(task: str, prompt: str, completion: str) -> dict[str, float]:
    """The task's own metrics of one completion (``FACTS[task]``), each a float."""
    return _module(task).facts(prompt, completion)
