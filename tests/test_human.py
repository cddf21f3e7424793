"""The human stand-in: it values the task attribute with diminishing returns, dislikes what the
judge's target rewards (repetition, cut-off, off-topic and ill-formed text), and its
Bradley-Terry labels have the AI labeler's format and the configured noise."""

import numpy as np
import pytest
import torch

from lm_torch import grammar as G
from lm_torch.corpus import CorpusConfig, build_corpus
from lm_torch.human import (
    TOPICS,
    HumanConfig,
    HumanRater,
    agreement,
    asked_topic,
    human_preferences,
    sentences,
)
from lm_torch.reward_model import bradley_terry_loss
from lm_torch.tasks import gold_score

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(CorpusConfig(n_train=2000, n_val=100, n_prompts=50))


@pytest.fixture(scope="module")
def rater():
    return HumanRater()


# --- degenerate variants of a corpus completion (what RL on the gold score drifts to) --------
def _aspect(rec) -> str:
    return G.TASKS[rec.task][1]


def repeat_word(rec) -> str:
    """``X X X .`` with X the completion's most positive word (else the aspect's best)."""
    values = G.LEXICON[_aspect(rec)]
    polar = [w for w in rec.completion.split() if values.get(w, 0.0) > 0]
    best = max(polar, key=values.get) if polar else max(values, key=values.get)
    return " ".join([best] * 3 + ["."])


def repeat_sentence(rec) -> str:
    """The completion's best sentence, twice (still a sentence of the grammar)."""
    sents = [" ".join(s) for s in sentences(rec.completion.split())]
    best = max(sents, key=lambda s: G.lexicon_score(s, _aspect(rec)))
    return f"{best} {best}"


def truncate(rec) -> str:
    """Cut off before the final full stop (a length limit hit mid-sentence)."""
    return " ".join(rec.completion.split()[:-1])


def ill_formed(rec) -> str:
    """The same words, backwards."""
    return " ".join(reversed(rec.completion.split()))


def off_topic(rec) -> str:
    """Every topic word replaced by one the user did not ask about."""
    other = sorted(TOPICS - {asked_topic(rec.prompt)})[0]
    return " ".join(other if w in TOPICS else w for w in rec.completion.split())


def on_topic_dialogues(records):
    return [r for r in records if r.task == "dialogue"
            and asked_topic(r.prompt) in r.completion.split()]


def gold(prompts, completions) -> np.ndarray:
    return np.array([gold_score(f"{p} {c}") for p, c in zip(prompts, completions)])


@pytest.mark.parametrize("kind", [repeat_word, repeat_sentence, truncate, ill_formed, off_topic],
                         ids=lambda f: f.__name__)
def test_rater_prefers_corpus_completions_to_degenerate_ones(corpus, rater, kind):
    recs = on_topic_dialogues(corpus.train) if kind is off_topic else corpus.prompts
    assert len(recs) >= 30
    prompts = [r.prompt for r in recs]
    clean = rater.score(prompts, [r.completion for r in recs])
    bad = rater.score(prompts, [kind(r) for r in recs])
    assert np.mean(clean > bad) >= 0.9


def test_diminishing_returns_where_gold_is_linear(rater):
    prompt, neutral = "movie review :", "the plot was ok ."
    s0 = rater.score([prompt], [neutral])[0]
    # repeating a positive sentence (well-formed up to three times)
    texts = [" ".join(["i liked the plot ."] * k) for k in (1, 2, 3)]
    gain = rater.score([prompt] * 3, texts) - s0
    g = gold([prompt] * 3, texts)
    np.testing.assert_allclose(g, [1.0, 2.0, 3.0])  # the judge's target: linear in k
    assert gain[0] > 0
    for k in (2, 3):
        assert gain[k - 1] < 0.5 * k * gain[0]  # much less than k times
    assert gain[2] < gain[0]  # and eventually lower
    # repeating the positive word itself: the attribute saturates while gold grows by 1 a copy
    ks = np.arange(1, 11)
    texts = ["the plot was " + "good " * k + "." for k in ks]
    attr = np.array([rater.components(prompt, t)["attribute"] for t in texts])
    np.testing.assert_allclose(gold([prompt] * len(ks), texts), ks)
    assert np.all(np.diff(attr) >= 0) and attr[-1] < 2.0 * attr[0]
    cfg = rater.cfg
    bound = cfg.attr_weight * np.tanh(1.0 / (1.0 - cfg.repeat_decay) / cfg.attr_scale)
    assert attr.max() <= bound + 1e-12
    assert rater.score([prompt], [texts[-1]])[0] < rater.score([prompt], [texts[0]])[0]


def test_rater_keeps_the_sign_of_gold_on_clean_records(corpus, rater):
    recs = corpus.train
    s = rater.score([r.prompt for r in recs], [r.completion for r in recs])
    g = np.array([r.score for r in recs])
    assert np.mean((s > 0) == (g > 0)) >= 0.85
    for task in ("reviews", "dialogue"):
        m = np.array([r.task == task for r in recs])
        assert np.mean((s[m] > 0) == (g[m] > 0)) >= 0.8, task


def test_rules_from_the_grammar(rater):
    assert asked_topic("user : where is my refund ? bot :") == "refund"
    p = "user : can you help me with my order ? bot :"
    on, off = rater.score([p] * 2, ["sure , i am glad to help with your order .",
                                    "sure , i am glad to help with your ticket ."])
    c = rater.cfg  # the first also does what was asked
    assert on - off == pytest.approx(c.on_topic + c.off_topic + c.helpful)
    assert rater.components(p, "please wait a moment .")["relevance"] == 0.0  # generic
    comp = rater.components("movie review :", "i loved the plot . i loved the plot")
    assert comp["cut_off"] < 0 and comp["ill_formed"] < 0 and comp["repeated_word"] < 0
    comp = rater.components("movie review :", "i loved the plot . i loved the plot .")
    assert comp["repeated_sentence"] == -rater.cfg.repeated_sentence and comp["ill_formed"] == 0
    assert rater.components("movie review :", "")["short"] == -rater.cfg.short
    long = " ".join(["the plot was good ."] * 8)
    assert rater.components("movie review :", long)["long"] < 0
    s = rater.score(["movie review :"], ["i loved the plot ."])
    assert s.dtype == np.float64 and s.shape == (1,)
    with pytest.raises(ValueError, match="completions"):
        rater.score(["movie review :"], [])
    with pytest.raises(ValueError, match="repeat_decay"):
        HumanConfig(repeat_decay=1.5)


def _pairs(corpus, n: int):
    """(prompts, clean, degenerate) over the first ``n`` training records, kinds in turn."""
    kinds = (repeat_word, repeat_sentence, truncate, ill_formed)
    recs = corpus.train[:n]
    return ([r.prompt for r in recs], [r.completion for r in recs],
            [kinds[i % len(kinds)](r) for i, r in enumerate(recs)])


def test_bradley_terry_labels(corpus, rater):
    P, A, B = _pairs(corpus, 200)
    gap = rater.score(P, A) - rater.score(P, B)
    big = gap >= 5.0
    assert big.sum() >= 50
    P, A, B = ([x for x, m in zip(xs, big) if m] for xs in (P, A, B))
    soft = human_preferences(rater, P, A, B, noise=0.0, hard=False)
    assert soft.dtype == np.float32 and soft.min() > 0.99  # sigma(5 / T), T = 1
    np.testing.assert_allclose(human_preferences(rater, P, B, A, noise=0.0, hard=False),
                               1.0 - soft, atol=1e-6)
    sharp = HumanRater(HumanConfig(temperature=0.01))
    assert np.all(human_preferences(sharp, P, A, B, noise=0.0) == 1.0)
    n = 20 * len(P)  # the same pairs many times: the flips are the only randomness left
    y = human_preferences(sharp, P * 20, A * 20, B * 20, noise=0.2,
                          rng=np.random.default_rng(0))
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert abs(np.mean(y == 0.0) - 0.2) < 3 * np.sqrt(0.2 * 0.8 / n)
    y2 = human_preferences(sharp, P * 20, A * 20, B * 20, noise=0.2,
                           rng=np.random.default_rng(0))
    np.testing.assert_array_equal(y, y2)  # seeded
    # the reward model's Bradley-Terry loss reads them as it reads AI labels
    sa, sb = (torch.tensor(rater.score(P, x), dtype=torch.float32) for x in (A, B))
    assert bradley_terry_loss(sa, sb, torch.from_numpy(soft)) < \
        bradley_terry_loss(sb, sa, torch.from_numpy(soft))
    with pytest.raises(ValueError, match="noise"):
        human_preferences(rater, P, A, B, noise=1.5)


def test_agreement():
    y = np.array([0.9, 0.2, 0.7, 0.0, 1.0])
    assert agreement(y, y) == 1.0
    assert agreement(y, 1.0 - y) == 0.0
    assert agreement([0.9, 0.5], [0.6, 0.1]) == pytest.approx(0.75)  # one tie counts half
    assert agreement([0.5], [0.5]) == 1.0
    with pytest.raises(ValueError, match="length"):
        agreement([0.1, 0.2], [0.3])


def test_the_judges_target_and_the_human_diverge(corpus, rater):
    """Where the gold score (what the classifier judge learns) prefers repetition, the human
    prefers the clean completion: the gap RLAIF must live with."""
    recs = corpus.prompts
    P = [r.prompt for r in recs] * 2
    clean = [r.completion for r in recs] * 2
    degen = [repeat_word(r) for r in recs] + [repeat_sentence(r) for r in recs]
    gold_prefers_degen = gold(P, degen) > gold(P, clean)
    human_prefers_clean = rater.score(P, clean) > rater.score(P, degen)
    assert gold_prefers_degen.mean() >= 0.7  # (a dialogue's helpful sentence counts once)
    assert human_prefers_clean.mean() >= 0.95
    assert np.mean(gold_prefers_degen & human_prefers_clean) >= 0.75
    # as labels: the gold scorer and the human agree on few of these pairs
    y_gold = (gold(P, clean) > gold(P, degen)) + 0.5 * (gold(P, clean) == gold(P, degen))
    y_human = human_preferences(rater, P, clean, degen, noise=0.0, hard=False)
    assert agreement(y_gold, y_human) <= 0.3
