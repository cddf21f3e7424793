"""The human stand-in: a rater built from the corpus's own truth that the AI judge only partly sees.

RLAIF is defined by the gap between AI and human preferences (Lee et al. 2023: the AI labeler
agrees with human raters on 78 % of pairs). The corpus's gold scorer (``tasks.gold_score``) is
the very signal the classifier judge is trained to predict, so it cannot play the human: a policy
that writes ``the ending is amazing and amazing .`` raises it without end. :class:`HumanRater`
is the preference the experiment of book 5.3.3 measures against. Like book 4.3.1's fused signal
f = sum_i w_i f_i it is a weighted sum of features; for a prompt x of task t (aspect a) and a
completion y of n words w_1 .. w_n:

    score(x, y) = A + R + H - penalties

    A  (the task's attribute, with diminishing returns)
       reviews, dialogue: A = attr_weight * tanh(P / attr_scale),
         P = sum_j m_j v_a(w_j) repeat_decay^(c_j)
         v_a: the lexicon value of word w_j, m_j: the product of the modifiers right before it
         (as ``grammar.lexicon_score``), c_j: how often w_j was already used in y. Repeating a
         polar word pays geometrically less, and tanh caps the total at +-attr_weight. Only y
         is rated (the bot's politeness, not the user's ``please``).
       summary: A = attr_weight * clip(coverage - errors, -1, 1) (``tasks.summary``: the share
         of main aspects named, and the number of false claims: one costs all the coverage);
       kgqa: A = +-attr_weight for a correct / wrong answer.
    R  (dialogue only: topical relevance) = +on_topic when y names the asked topic,
       -off_topic when it names other topics only, 0 when it names none.
    H  (dialogue only) = +helpful when y does what the user asked (``tasks.dialogue``).
    penalties (what people also want and the judge is not trained on):
         repeated_word     * (occurrences of content words past their first)
       + repeated_sentence * (sentences equal to an earlier sentence of y)
       + short * max(0, min_words - n) / min_words     (reviews and dialogue only)
       + long  * max(0, n - max_words)
       + cut_off    * [y does not end with "."]
       + ill_formed * [x y is not a sentence of the grammar]

The penalties stack (a repeated sentence also repeats its words). A clean completion (well-formed,
ended, nothing repeated, not off topic) pays nothing, so the rater keeps the sign of the gold
score on most corpus records (93 % of 2000; the rest repeat themselves or answer off topic).

Decisions taken from the grammar (``grammar.GRAMMAR``):

* Direction. Review prompts (``movie review :``, ``product review :``) ask for no direction,
  and every metric of the lab counts a higher gold score as better, so a review is rated
  towards positive sentiment and a dialogue towards politeness.
* Topic. Every dialogue request ends in ``my DNOUN`` (order, account, package, refund,
  password, ticket, booking): the DNOUN of the last user turn is the asked topic. Five response
  sentences name a DNOUN (the four helpful ones of ``tasks.dialogue.HELPFUL`` and ``stop asking
  me about your DNOUN .``); the others are generic. The corpus, like real SFT data, often
  answers a question about an order with ``your refund is on the way .``: the human stand-in
  penalises that, and rewards the reply that does what was asked (``helpful``).
* Content words: the words of the lexical categories (``grammar.WORDS``: nouns, adjectives,
  opinions, intensifiers, topics, ...) and the polar words of ``grammar.LEXICON``; function words
  (``the``, ``i``, ``your``, ``.``) may repeat freely.

:func:`human_preferences` turns ratings into preference labels P(a > b) with a Bradley-Terry
rater, in the format of :meth:`lm_torch.labeler.AILabeler.label`, so that the same reward-model
code trains on human labels (RLHF) or AI labels (RLAIF); :func:`agreement` compares two labelers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import grammar as G
from .tasks import dialogue as dialogue_task
from .tasks import summary as summary_task
from .tasks import task_facts

#: Words whose repetition a reader notices: the lexical categories and the polar words.
CONTENT_WORDS: frozenset[str] = frozenset(
    [w for ws in G.WORDS.values() for w in ws]
    + [w for values in G.LEXICON.values() for w in values])
#: The topics a dialogue user can ask about (the grammar's ``DNOUN``).
TOPICS: frozenset[str] = frozenset(G.WORDS["DNOUN"])


@dataclass(frozen=True)
class HumanConfig:
    """The human stand-in's weights (see the module docstring) and its label noise."""

    attr_weight: float = field(default=2.0, metadata={
        "help": "cap of the task attribute: A = attr_weight * tanh(P / attr_scale)"})
    attr_scale: float = field(default=3.0, metadata={
        "help": "summed polarity at which the attribute reaches tanh(1) = 76 % of its cap"})
    repeat_decay: float = field(default=0.5, metadata={
        "help": "weight of each further use of a polar word, relative to the use before"})
    repeated_word: float = field(default=0.3, metadata={
        "help": "penalty per use of a content word past its first"})
    repeated_sentence: float = field(default=2.0, metadata={
        "help": "penalty per sentence that repeats an earlier one"})
    min_words: int = field(default=4, metadata={
        "help": "fewer words than this are too short (review, dialogue)"})
    short: float = field(default=1.0, metadata={
        "help": "penalty of an empty completion, linear in the missing words"})
    max_words: int = field(default=30, metadata={"help": "more words than this ramble"})
    long: float = field(default=0.1, metadata={"help": "penalty per word past max_words"})
    cut_off: float = field(default=1.0, metadata={
        "help": "penalty when the completion does not end with '.'"})
    ill_formed: float = field(default=5.0, metadata={
        "help": "penalty when prompt + completion is not a sentence of the grammar"})
    helpful: float = field(default=1.0, metadata={
        "help": "bonus when a dialogue answer does what the user asked"})
    on_topic: float = field(default=0.5, metadata={
        "help": "bonus when a dialogue answer names the topic the user asked about"})
    off_topic: float = field(default=1.5, metadata={
        "help": "penalty when a dialogue answer names other topics only"})
    temperature: float = field(default=1.0, metadata={
        "help": "Bradley-Terry temperature: P(a > b) = sigma((s_a - s_b) / T)"})
    flip_rate: float = field(default=0.0, metadata={
        "help": "default share of preference labels flipped (annotator slips)"})
    seed: int = field(default=0, metadata={"help": "default seed of the label sampling"})

    def __post_init__(self):
        if not self.attr_scale > 0 or not self.temperature > 0:
            raise ValueError("HumanConfig.attr_scale and temperature must be > 0")
        if not 0.0 <= self.repeat_decay <= 1.0:
            raise ValueError("HumanConfig.repeat_decay must be in [0, 1]")
        if self.min_words < 1 or self.max_words < self.min_words:
            raise ValueError("HumanConfig needs 1 <= min_words <= max_words")
        if not 0.0 <= self.flip_rate <= 1.0:
            raise ValueError("HumanConfig.flip_rate must be in [0, 1]")


def sentences(words: Sequence[str]) -> list[tuple[str, ...]]:
    """The sentences of a word list: runs ending in '.' or '?' (a cut-off tail is one too)."""
    out, cur = [], []
    for w in words:
        cur.append(w)
        if w in (".", "?"):
            out.append(tuple(cur))
            cur = []
    if cur:
        out.append(tuple(cur))
    return out


def asked_topic(prompt: str) -> str | None:
    """The topic of a dialogue request: the last DNOUN of the prompt (``... my order ?``)."""
    topics = [w for w in prompt.split() if w in TOPICS]
    return topics[-1] if topics else None


class HumanRater:
    """The human stand-in's graded rating of completions (higher is better)."""

    name = "human"
    range = (-math.inf, math.inf)

    def __init__(self, cfg: HumanConfig = HumanConfig()):
        self.cfg = cfg

    def polarity(self, completion: str, aspect: str) -> float:
        """P: the summed lexicon value with each further use of a word decayed."""
        values, seen = G.LEXICON[aspect], {}
        total, scale = 0.0, 1.0
        for w in completion.split():
            if w in G.MODIFIERS:
                scale *= G.MODIFIERS[w]
                continue
            if w in values:
                total += scale * values[w] * self.cfg.repeat_decay ** seen.get(w, 0)
                seen[w] = seen.get(w, 0) + 1
            scale = 1.0
        return total

    def components(self, prompt: str, completion: str) -> dict[str, float]:
        """The terms of the rating, signed as they enter it (their sum is the score)."""
        c, words = self.cfg, completion.split()
        text = f"{prompt} {completion}".strip()
        task = G.task_of(prompt)
        aspect = G.TASKS[task][1] if task else "sentiment"
        if task == "summary":
            t = summary_task.judge_summary(prompt, completion)
            quality = t["coverage"] - t["errors"]  # a false claim costs all the coverage
            attribute = c.attr_weight * min(1.0, max(-1.0, quality))
        elif task == "kgqa":
            attribute = c.attr_weight * (2.0 * task_facts(task, prompt, completion)
                                         ["exact_match"] - 1.0)
        else:
            attribute = c.attr_weight * math.tanh(self.polarity(completion, aspect) / c.attr_scale)
        relevance = helpful = 0.0
        if task == "dialogue":
            req = dialogue_task.request(prompt)
            named = {w for w in words if w in TOPICS}
            if req is not None and req.topic in named:
                relevance = c.on_topic
            elif named:
                relevance = -c.off_topic
            helpful = c.helpful * dialogue_task.is_helpful(prompt, completion)
        content = [w for w in words if w in CONTENT_WORDS]
        sents = sentences(words)
        short = 0.0
        if aspect not in G.GROUNDED:
            short = c.short * max(0, c.min_words - len(words)) / c.min_words
        return {
            "attribute": attribute,
            "relevance": relevance,
            "helpful": helpful,
            "repeated_word": -c.repeated_word * (len(content) - len(set(content))),
            "repeated_sentence": -c.repeated_sentence * (len(sents) - len(set(sents))),
            "short": -short,
            "long": -c.long * max(0, len(words) - c.max_words),
            "cut_off": -c.cut_off * (not words or words[-1] != "."),
            "ill_formed": -c.ill_formed * (not G.is_well_formed(text, task)),
        }

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """The ratings of ``completions`` given ``prompts``: float64 [B]."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        return np.array([sum(self.components(p, y).values())
                         for p, y in zip(prompts, completions)], dtype=np.float64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def human_preferences(rater: HumanRater, prompts: Sequence[str], a: Sequence[str],
                      b: Sequence[str], noise: float | None = None,
                      rng: np.random.Generator | None = None, hard: bool = True) -> np.ndarray:
    """Human preference labels P(a > b), float32 [N], from a Bradley-Terry rater (RLHF's data).

    p = sigma((s_a - s_b) / T) with the rater's scores s and ``rater.cfg.temperature`` T. With
    ``hard`` each label is one human choice, 1.0 (a) or 0.0 (b), drawn with probability p; else
    the label is p itself. Then each label is flipped (y -> 1 - y) with probability ``noise``
    (default ``rater.cfg.flip_rate``), as the AI labeler's ``flip_rate`` does.

    The format is :meth:`lm_torch.labeler.AILabeler.label`'s: y in [0, 1] is the probability
    that ``a`` is better, so ``reward_model.train_reward_model(tokenizer, prompts, a, b, y)``
    fits r(a) - r(b) to it with the same Bradley-Terry loss whether y came from the AI (RLAIF)
    or from here (RLHF); with ``noise`` > 0 its robust loss's ``assumed_flip_rate`` is the
    matching correction. ``rng`` (default: seeded by ``rater.cfg.seed``) draws choices and flips.
    """
    if not (len(prompts) == len(a) == len(b)):
        raise ValueError("prompts, a and b must have the same length")
    noise = rater.cfg.flip_rate if noise is None else noise
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise (a flip rate) must be in [0, 1], not {noise}")
    rng = np.random.default_rng(rater.cfg.seed) if rng is None else rng
    gap = rater.score(prompts, a) - rater.score(prompts, b)
    y = _sigmoid(gap / rater.cfg.temperature)
    if hard:
        y = (rng.random(len(y)) < y).astype(np.float64)
    flip = rng.random(len(y)) < noise
    return np.where(flip, 1.0 - y, y).astype(np.float32)


def agreement(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """Share of pairs on which two labelers prefer the same side (labels P(a > b)).

    A side is a (label > 0.5), b (< 0.5) or a tie (= 0.5). A pair counts 1 when both pick the
    same side (two ties included), 0 when they pick opposite sides, 1/2 when one of them ties.
    """
    sa = np.sign(np.asarray(labels_a, dtype=np.float64) - 0.5)
    sb = np.sign(np.asarray(labels_b, dtype=np.float64) - 0.5)
    if sa.shape != sb.shape or sa.ndim != 1 or not len(sa):
        raise ValueError(f"need two non-empty label vectors of one length, not shapes "
                         f"{sa.shape} and {sb.shape}")
    return float(np.mean(1.0 - np.abs(sa - sb) / 2.0))
