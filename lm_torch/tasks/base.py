"""What every task of the built-in corpus shares: the labelled record, the prompt split, and the
seeded expansion of the grammar with a *mood* that tilts the choice of polar words (book 2.1.1:
a language to model; 2.1.3: labelled data to fine-tune and to judge with)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .. import grammar as G

#: How strongly the mood tilts polar word choice: weight of a word whose sign agrees with it.
MOOD_TILT = 4.0


@dataclass(frozen=True)
class Record:
    """One labelled document of the corpus."""

    task: str  #: "reviews", "dialogue", "summary" or "kgqa"
    text: str  #: the whole document, words separated by single spaces
    label: int  #: 1 good (positive / helpful and polite / faithful / correct), else 0
    score: float  #: the graded gold score (``tasks.gold_score``); its sign is the label
    reference: str = ""  #: the gold completion of this prompt (summary, kgqa); else ""
    kind: str = ""  #: how it was made: "gold", a corruption ("flip", ...), "two_hop", ...

    @property
    def prompt(self) -> str:
        """The document up to and including its completion marker (``:``, ``bot :``, ...)."""
        return split_prompt(self.text, self.task)[0]

    @property
    def completion(self) -> str:
        return split_prompt(self.text, self.task)[1]

    @property
    def for_sft(self) -> bool:
        """Is it a demonstration to fine-tune on? Reviews and dialogues: all of them (the
        rude and negative ones too: SFT data is what people wrote); summaries and answers:
        only the faithful / correct ones (the corrupted ones exist to train the judges)."""
        return G.TASKS[self.task][1] not in G.GROUNDED or self.label == 1


def split_prompt(text: str, task: str) -> tuple[str, str]:
    """Split a document into (prompt, completion) after the last completion marker."""
    marker = G.COMPLETION_AFTER[task]
    i = text.rfind(marker)
    if i < 0:
        raise ValueError(f"no completion marker {marker!r} in {text!r}")
    j = i + len(marker)
    return text[:j], text[j:].strip()


def choose_word(rng: random.Random, category: str, aspect: str, mood: int) -> str:
    """A word of ``category``; words whose polarity agrees with ``mood`` are MOOD_TILT times
    likelier."""
    words = G.WORDS[category]
    values = G.LEXICON.get(aspect, {})
    weights = [MOOD_TILT if (values.get(w, 0.0) * mood) > 0 else 1.0 for w in words]
    return rng.choices(words, weights=weights, k=1)[0]


def expand(rng: random.Random, symbol: str, aspect: str = "sentiment", mood: int = 0,
           fixed: dict[str, str] | None = None) -> str:
    """Expand ``symbol`` at random; ``mood`` (+1/-1/0) tilts polar choices (book 2.1.1);
    ``fixed`` maps a category to the word it must take (e.g. ``{"MNOUN": "plot"}``)."""
    if fixed and symbol in fixed:
        return fixed[symbol]
    if symbol in G.WORDS:
        if symbol == "INT" and mood < 0:
            # Negation helps a negative mood only half the time; keep intensifiers unbiased.
            return rng.choice(G.WORDS[symbol])
        return choose_word(rng, symbol, aspect, mood)
    if symbol in G.GRAMMAR:
        prod = rng.choice(G.GRAMMAR[symbol])
        return " ".join(expand(rng, s, aspect, mood, fixed) for s in prod)
    return symbol
