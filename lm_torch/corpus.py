"""The built-in corpus: deterministic, seeded, labelled text from the grammar of :mod:`grammar`.

Book 2.1.3 (pre-training and fine-tuning) needs data; this module makes it on the spot, so
nothing is downloaded. Each document is drawn by expanding the grammar at random with a *mood*
that tilts the choice of polar words, so that labels are balanced and scores are graded:

* review   -- ``movie review : the plot was very good . i hated the ending .``
  label 1 when the gold sentiment (summed word polarity) is positive, else 0.
* dialogue -- ``user : where is my order ? bot : sure , i am glad to help with your order .``
  label 1 when the gold politeness is positive, else 0.

New tasks (documents with summaries, knowledge-graph facts and questions) are new start symbols
in ``grammar.GRAMMAR`` and new entries in ``grammar.TASKS``; the generator needs no change.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from . import grammar as G

#: How strongly the mood tilts polar word choice: weight of a word whose sign agrees with it.
MOOD_TILT = 4.0


@dataclass(frozen=True)
class Record:
    """One labelled document of the corpus."""

    task: str  #: "review" or "dialogue"
    text: str  #: the whole document, words separated by single spaces
    label: int  #: 1 positive / polite, 0 negative / rude (the sign of ``score``)
    score: float  #: the graded gold score (``grammar.gold_score``)

    @property
    def prompt(self) -> str:
        """The document up to and including its completion marker (``:`` / ``bot :``)."""
        return split_prompt(self.text, self.task)[0]

    @property
    def completion(self) -> str:
        return split_prompt(self.text, self.task)[1]


def split_prompt(text: str, task: str) -> tuple[str, str]:
    """Split a document into (prompt, completion) at its task's completion marker."""
    marker = G.COMPLETION_AFTER[task]
    i = text.find(marker)
    if i < 0:
        raise ValueError(f"no completion marker {marker!r} in {text!r}")
    j = i + len(marker)
    return text[:j], text[j:].strip()


def _choose_word(rng: random.Random, category: str, aspect: str, mood: int) -> str:
    words = G.WORDS[category]
    values = G.LEXICON.get(aspect, {})
    weights = []
    for w in words:
        v = values.get(w, 0.0)
        agrees = (v > 0 and mood > 0) or (v < 0 and mood < 0)
        weights.append(MOOD_TILT if agrees else 1.0)
    return rng.choices(words, weights=weights, k=1)[0]


def expand(rng: random.Random, symbol: str, aspect: str = "sentiment", mood: int = 0) -> str:
    """Expand ``symbol`` at random; ``mood`` (+1/-1/0) tilts polar choices (book 2.1.1)."""
    if symbol in G.WORDS:
        if symbol == "INT" and mood < 0:
            # Negation helps a negative mood only half the time; keep intensifiers unbiased.
            return rng.choice(G.WORDS[symbol])
        return _choose_word(rng, symbol, aspect, mood)
    if symbol in G.GRAMMAR:
        prods = G.GRAMMAR[symbol]
        if symbol in ("RS",) and mood:  # response sentences carry politeness as a whole
            weights = []
            for prod in prods:
                v = G.gold_score(" ".join(prod), "politeness")
                agrees = (v > 0 and mood > 0) or (v < 0 and mood < 0)
                weights.append(MOOD_TILT if agrees else 1.0)
            prod = rng.choices(prods, weights=weights, k=1)[0]
        else:
            prod = rng.choice(prods)
        return " ".join(expand(rng, s, aspect, mood) for s in prod)
    return symbol


def generate_record(rng: random.Random, task: str) -> Record:
    """Draw one document of ``task`` with a balanced label (rejection on a zero score)."""
    if task not in G.TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(G.TASKS)}")
    start, aspect = G.TASKS[task]
    if aspect in G.GROUNDED:  # summaries and QA: draw until the text is faithful / correct
        for _ in range(10_000):
            text = expand(rng, start, "sentiment", 0)
            if G.grounded(text):
                return Record(task, text, 1, 1.0)
        raise RuntimeError(f"could not draw a grounded {task} document")
    want = rng.choice((1, -1))
    while True:
        text = expand(rng, start, aspect, want)
        score = G.gold_score(text, aspect)
        if score != 0.0 and (score > 0) == (want > 0):
            return Record(task, text, int(score > 0), score)


@dataclass(frozen=True)
class CorpusConfig:
    """How much of the built-in corpus to make, and from which seed."""

    seed: int = field(default=0, metadata={"help": "seed of the corpus generator"})
    n_train: int = field(default=24000, metadata={"help": "training documents (~1.5 MB)"})
    n_val: int = field(default=1000, metadata={"help": "validation documents"})
    n_prompts: int = field(default=200, metadata={"help": "held-out evaluation prompts"})
    tasks: tuple[str, ...] = field(default=("review", "dialogue"),
                                   metadata={"help": "tasks mixed in equal shares"})


@dataclass(frozen=True)
class Corpus:
    """Train / validation documents and held-out prompts, all from one seed."""

    train: tuple[Record, ...]
    val: tuple[Record, ...]
    prompts: tuple[Record, ...]  #: held-out documents; use ``.prompt`` / ``.task``

    def texts(self, split: str = "train") -> list[str]:
        return [r.text for r in getattr(self, split)]

    @property
    def n_bytes(self) -> int:
        return sum(len(r.text) + 1 for r in self.train)


def _draw(seed: int, stream: int, n: int, tasks: tuple[str, ...]) -> tuple[Record, ...]:
    rng = random.Random(f"rlaif-lab/{seed}/{stream}")  # str seeds are stable across runs
    return tuple(generate_record(rng, tasks[i % len(tasks)]) for i in range(n))


def build_corpus(config: CorpusConfig = CorpusConfig()) -> Corpus:
    """The corpus for ``config``: the same seed always gives the same documents.

    The three splits come from three independent random streams of the seed.
    """
    for t in config.tasks:
        if t not in G.TASKS:
            raise ValueError(f"unknown task {t!r} in CorpusConfig.tasks; use {sorted(G.TASKS)}")
    if min(config.n_train, config.n_val, config.n_prompts) < 1:
        raise ValueError("CorpusConfig sizes must be >= 1")
    return Corpus(
        train=_draw(config.seed, 0, config.n_train, config.tasks),
        val=_draw(config.seed, 1, config.n_val, config.tasks),
        prompts=_draw(config.seed, 2, config.n_prompts, config.tasks),
    )
