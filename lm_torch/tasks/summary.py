"""The summarisation task (book 6.2): documents of 3 to 6 opinions, one aspect each, and their
summary -- each main aspect in document order, marked ``pro`` or ``con``, then the verdict.

    document : the battery was very good . i hated the screen . the price was ok .
               the design was nice and great . summary :
    pro battery , con screen , pro design . overall : positive .

An aspect is *main* when its sentence has a polarity (``the price was ok`` has none); the
reference summary names every main aspect in document order, ``pro`` or ``con`` by the sign of
its sentence, and the verdict is the sign of the whole document's sentiment. A summary is
**faithful** when all it says is true: every aspect it names is in the document with that sign,
no aspect twice, and the verdict right. Coverage is the share of main aspects it names;
ROUGE-1/2/L against the reference are computed by Google's ``rouge-score`` package.

To train a faithfulness judge the corpus also holds corrupted summaries (label 0), each with one
defect: ``flip`` (an aspect on the wrong side, or the verdict flipped), ``swap`` (a named aspect
replaced by one the document does not mention) or ``invent`` (an aspect the document does not
mention added). Faithful summaries have label 1; SFT learns from those only.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass

from rouge_score import rouge_scorer

from .. import grammar as G
from .base import Record, expand, split_prompt

NAME = "summary"
CORRUPTIONS = ("flip", "swap", "invent")
_SUMMARY = re.compile(r"(.+) \. overall : (positive|negative) \.")
#: the probability that an aspect's sentence is neutral (no polarity: not a main aspect)
NEUTRAL = 0.15


@dataclass(frozen=True)
class Document:
    """The aspects of a document in order, each with its sentence's sentiment."""

    aspects: tuple[str, ...]
    polarity: tuple[float, ...]

    @property
    def verdict(self) -> str:
        return "positive" if sum(self.polarity) > 0 else "negative"

    @property
    def pros(self) -> list[str]:
        return [a for a, p in zip(self.aspects, self.polarity) if p > 0]

    @property
    def cons(self) -> list[str]:
        return [a for a, p in zip(self.aspects, self.polarity) if p < 0]

    @property
    def main(self) -> list[str]:
        return [a for a, p in zip(self.aspects, self.polarity) if p != 0]

    def reference(self) -> str:
        return summary_text([(a, p > 0) for a, p in zip(self.aspects, self.polarity) if p],
                            self.verdict)


def summary_text(items, verdict: str) -> str:
    """``pro a , con b . overall : positive .`` from [(aspect, is_pro), ...]."""
    body = " , ".join(f"{'pro' if pro else 'con'} {a}" for a, pro in items)
    return f"{body} . overall : {verdict} ."


def _sentences(body: str) -> list[str]:
    return [s.strip() + " ." for s in body.split(" .") if s.strip()]


@functools.lru_cache(maxsize=4096)
def parse_document(prompt: str) -> Document | None:
    """The document of a summary prompt (``document : ... summary :``), or None."""
    if not (prompt.startswith("document : ") and prompt.endswith(" summary :")):
        return None
    aspects, polarity = [], []
    for s in _sentences(prompt[len("document : "): -len(" summary :")]):
        nouns = [w for w in s.split() if w in G.WORDS["MNOUN"] or w in G.WORDS["PNOUN"]]
        if len(nouns) != 1:
            return None
        aspects.append(nouns[0])
        polarity.append(G.lexicon_score(s, "sentiment"))
    return Document(tuple(aspects), tuple(polarity))


def parse_summary(completion: str) -> tuple[list[tuple[str, bool]], str] | None:
    """([(aspect, is_pro), ...], verdict) of a summary completion, or None if it has not that
    form."""
    m = _SUMMARY.fullmatch(completion)
    if not m:
        return None
    items = []
    for item in m.group(1).split(" , "):
        words = item.split()
        if len(words) != 2 or words[0] not in ("pro", "con"):
            return None
        items.append((words[1], words[0] == "pro"))
    return items, m.group(2)


def judge_summary(prompt: str, completion: str) -> dict[str, float]:
    """The truth of one summary: ``faithful`` (0/1), ``faithfulness`` (the share of its claims
    that are true), ``coverage`` (share of main aspects named), ``errors`` (false claims: an
    aspect on the wrong side or not in the document, a repeated aspect, a wrong verdict) and
    ``claims`` (aspects named + the verdict)."""
    doc, parsed = parse_document(prompt), parse_summary(completion)
    if doc is None or parsed is None:
        return {"faithful": 0.0, "faithfulness": 0.0, "coverage": 0.0, "errors": 1.0,
                "claims": 1.0}
    items, verdict = parsed
    sign = dict(zip(doc.aspects, doc.polarity))
    named = [a for a, _ in items]
    errors = sum(not (sign.get(a, 0.0) > 0 if pro else sign.get(a, 0.0) < 0)
                 for a, pro in items)
    errors += len(named) - len(set(named)) + (verdict != doc.verdict)
    claims = len(items) + 1
    coverage = len(set(named) & set(doc.main)) / max(len(doc.main), 1)
    return {"faithful": float(errors == 0), "faithfulness": 1.0 - min(errors, claims) / claims,
            "coverage": coverage, "errors": float(errors), "claims": float(claims)}


def facts(prompt: str, completion: str) -> dict[str, float]:
    """The task's metrics of one summary: faithful, faithfulness and coverage (ROUGE over a
    set: :func:`rouge`)."""
    t = judge_summary(prompt, completion)
    return {k: t[k] for k in ("faithful", "faithfulness", "coverage")}


def gold(prompt: str, completion: str) -> float:
    """+1 for a faithful summary, -1 for one with a false claim (the judge's target)."""
    return 1.0 if judge_summary(prompt, completion)["faithful"] else -1.0


@functools.lru_cache(maxsize=1)
def _scorer():
    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)


def rouge(references, predictions) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measures (Lin 2004) of ``predictions`` against ``references``,
    with the ``rouge-score`` package (the implementation the summarisation papers use)."""
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for ref, pred in zip(references, predictions):
        for k, s in _scorer().score(ref, pred).items():
            totals[k] += s.fmeasure
    return {k: v / max(len(references), 1) for k, v in totals.items()}


def _sentence(rng: random.Random, movie: bool, aspect: str, mood: int) -> str:
    """A sentence about ``aspect`` whose every polar word leans the way of ``mood`` (mood 0:
    a neutral one, ``the X BE ok .``)."""
    if mood == 0:
        return f"the {aspect} {rng.choice(G.WORDS['BE'])} ok ."
    while True:
        s = expand(rng, "MS" if movie else "PS", "sentiment", mood,
                   fixed={"MNOUN": aspect, "PNOUN": aspect})
        parts = [G.lexicon_score(" ".join(w), "sentiment") for w in _polar_words(s)]
        if parts and all(p * mood > 0 for p in parts):
            return s


def _polar_words(sentence: str) -> list[list[str]]:
    """The polar words of a sentence, each with the modifiers right before it."""
    out, mods = [], []
    for w in sentence.split():
        if w in G.MODIFIERS:
            mods.append(w)
        elif w in G.LEXICON["sentiment"]:
            out.append(mods + [w])
            mods = []
        else:
            mods = []
    return out


def _document(rng: random.Random) -> tuple[str, Document]:
    movie = rng.random() < 0.5
    nouns = G.WORDS["MNOUN" if movie else "PNOUN"]
    aspects = rng.sample(nouns, rng.randint(3, 6))
    moods = [0 if rng.random() < NEUTRAL else rng.choice((1, -1)) for _ in aspects]
    sentences = [_sentence(rng, movie, a, m) for a, m in zip(aspects, moods)]
    polarity = tuple(G.lexicon_score(s, "sentiment") for s in sentences)
    return "document : " + " ".join(sentences) + " summary :", Document(tuple(aspects), polarity)


def corrupt_summary(rng: random.Random, doc: Document, kind: str) -> str:
    """A summary of ``doc`` with one defect of ``kind`` (see the module docstring)."""
    items = [(a, p > 0) for a, p in zip(doc.aspects, doc.polarity) if p]
    verdict = doc.verdict
    movie = doc.aspects[0] in G.WORDS["MNOUN"]
    absent = [a for a in G.WORDS["MNOUN" if movie else "PNOUN"] if a not in doc.aspects]
    i = rng.randrange(len(items)) if items else 0
    if kind == "flip":
        if items and rng.random() < 0.7:
            items[i] = (items[i][0], not items[i][1])
        else:
            verdict = "negative" if verdict == "positive" else "positive"
    elif kind == "swap" and items:
        items[i] = (rng.choice(absent), items[i][1])
    else:  # invent (and swap of a summary that names nothing): at a random place
        items.insert(rng.randint(0, len(items)), (rng.choice(absent), rng.random() < 0.5))
    return summary_text(items, verdict)


def generate(rng: random.Random, corrupt: bool = True) -> Record:
    """A document and its reference summary (label 1), or -- half the time, when ``corrupt`` --
    a corrupted summary (label 0). A document whose sentiment sums to 0 is drawn again."""
    while True:
        prompt, doc = _document(rng)
        if sum(doc.polarity) != 0 and doc.main:
            break
    ref = doc.reference()
    if corrupt and rng.random() < 0.5:
        kind = rng.choice(CORRUPTIONS)
        completion = corrupt_summary(rng, doc, kind)
    else:
        kind, completion = "gold", ref
    text = f"{prompt} {completion}"
    score = gold(*split_prompt(text, NAME))
    return Record(NAME, text, int(score > 0), score, reference=ref, kind=kind)
