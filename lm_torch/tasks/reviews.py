"""The review task (book 2.1, 5.3): movie and product reviews of one to three sentences.

``movie review : the plot was very good . i hated the ending .`` -- the prompt is the header
(``movie review :``), the completion the review. Gold score: the summed sentiment of the review
(``grammar.lexicon_score``); label 1 when it is positive. Each review is drawn with a mood that
tilts its polar words, and redrawn until its sign agrees, so labels are balanced and graded.
"""

from __future__ import annotations

import random

from .. import grammar as G
from .base import Record, expand, split_prompt

NAME = "reviews"


def generate(rng: random.Random, corrupt: bool = True) -> Record:
    """One review with a balanced label (``corrupt`` is meaningless here: nothing to corrupt)."""
    want = rng.choice((1, -1))
    while True:
        text = expand(rng, "REVIEW", "sentiment", want)
        score = gold(*split_prompt(text, NAME))
        if score != 0.0 and (score > 0) == (want > 0):
            return Record(NAME, text, int(score > 0), score, kind="gold")


def gold(prompt: str, completion: str) -> float:
    """The summed sentiment of the review (higher is better: every metric of the lab counts a
    more positive review as better)."""
    return G.lexicon_score(completion, "sentiment")


def facts(prompt: str, completion: str) -> dict[str, float]:
    """The task's own metrics of one completion: none beyond the shared ones."""
    return {}
