"""AI feedback: the classifier judge, the labeler's bias controls, the reward model.

The mechanics are tested on the review task (book 5.1), whose texts are short; the dialogue,
summary and KG judges are tested in ``test_tasks.py`` and ``test_tasks_pipeline.py``.
"""

import numpy as np
import pytest
import torch

from lm_torch.checkpoint import load_checkpoint
from lm_torch.judges import (
    BannedWordsCritic,
    EncoderConfig,
    FluencyJudge,
    GrammarCritic,
    LengthCritic,
    RepetitionCritic,
    join,
    train_classifier_judge,
)
from lm_torch.labeler import AILabeler, LabelerConfig, sample_pairs
from lm_torch.reward_model import (
    RewardModelConfig,
    bradley_terry_loss,
    make_reward_fn,
    preference_accuracy,
    train_reward_model,
)
from lm_torch.tasks import gold_score

pytestmark = pytest.mark.learning


@pytest.fixture(scope="module")
def lm(builtin_ckpt):
    return load_checkpoint(builtin_ckpt)


@pytest.fixture(scope="module")
def corpus():
    from lm_torch.corpus import CorpusConfig, build_corpus

    return build_corpus(CorpusConfig(n_train=4000, n_val=500, n_prompts=300, tasks=("reviews",)))


@pytest.fixture(scope="module")
def judge(corpus, lm):
    return train_classifier_judge(corpus.train, lm.tokenizer, EncoderConfig(steps=300))


def gold(P, C) -> np.ndarray:
    """The gold scores of completions ``C`` of prompts ``P``."""
    return np.array([gold_score(join(p, c)) for p, c in zip(P, C)])


@pytest.fixture(scope="module")
def pairs(corpus, lm):
    rng = np.random.default_rng(0)
    prompts = [corpus.train[i].prompt for i in rng.integers(0, len(corpus.train), 3000)]
    train = sample_pairs(lm.model, lm.tokenizer, prompts, seed=1, max_new_tokens=40)
    held = sample_pairs(lm.model, lm.tokenizer, [r.prompt for r in corpus.prompts], seed=2,
                        max_new_tokens=40)
    return train, held, (gold(train[0], train[1]), gold(train[0], train[2])), \
        (gold(held[0], held[1]), gold(held[0], held[2]))


def test_classifier_judge_is_at_least_95_percent_accurate(judge, corpus):
    assert judge.accuracy(corpus.val) >= 0.95


def test_fluency_judge_prefers_the_language(lm):
    fj = FluencyJudge(lm.model, lm.tokenizer)
    s = fj.score(["movie review :"] * 2, ["the plot was good .", "plot good the . was"])
    assert s[0] > s[1] and (s <= 0).all()


def test_one_batch_api_over_strings_or_token_arrays(lm):
    from lm_torch.judges import score_batch

    tok = lm.tokenizer
    p, c = ["movie review :"], ["i hated the plot . the plot was bad ."]
    ids_p = np.array([tok.encode(p[0])])
    ids_c, _ = tok.encode_batch(c, eos=True)  # padded, with EOS: decoding stops there
    for critic in (RepetitionCritic(), GrammarCritic(), FluencyJudge(lm.model, tok)):
        np.testing.assert_allclose(score_batch(critic, ids_p, ids_c, tok),
                                   critic.score(p, c), rtol=1e-6)
    with pytest.raises(TypeError, match="tokenizer"):
        score_batch(GrammarCritic(), ids_p, ids_c)


def test_rule_critics_by_hand():
    p = ["user : where is my order ? bot : please wait a moment . user : what about my refund ? "
         "bot :"] * 3
    c = ["no . no . no .", "thank you for your patience .", "you are annoying . whatever ."]
    np.testing.assert_allclose(RepetitionCritic().score(p, c), [-0.6, 0.0, 0.0])
    np.testing.assert_allclose(LengthCritic(6).score(p, c), [0.0, 0.0, 0.0])  # 6 words each
    np.testing.assert_allclose(LengthCritic(4).score(p, ["no .", "a b c d e f g h i"]),
                               [-0.5, -1.0])
    np.testing.assert_allclose(BannedWordsCritic().score(p, c), [0, 0, -2])
    np.testing.assert_allclose(GrammarCritic().score(p, c), [-1, 0, 0])  # 3 sentences: too many


def test_variety_critic_by_hand():
    """Say something new: to yourself (words, sentences) and to the batch (bigrams)."""
    from lm_torch.judges import VarietyCritic

    p = ["movie review :"] * 3
    c = ["the ending is amazing and amazing .", "the plot was good .", "the plot was good ."]
    s = VarietyCritic().score(p, c)
    # content words "ending is amazing amazing": 1 of 4 repeated; its bigrams are its own
    np.testing.assert_allclose(s[0], -1 / 4, rtol=1e-6)
    np.testing.assert_allclose(s[1:], [-0.5, -0.5])  # said twice in the batch: novelty 1/2
    twice = VarietyCritic().score(["movie review :"], ["the plot was good . the plot was good ."])
    assert twice[0] < -1.0  # a repeated sentence costs 1 more
    # by default it grades reviews only: a dialogue's polite formula is no defect
    assert VarietyCritic().score(["user : hi ? bot :"], ["thank you . thank you ."])[0] == 0.0


def test_swap_averaging_removes_an_injected_position_bias(judge, pairs):
    (P, A, B), _, _, _ = pairs
    P, A, B = P[:1500], A[:1500], B[:1500]

    def share(**kw):
        labels = AILabeler(judge.score, LabelerConfig(**kw)).label(P, A, B)
        return AILabeler.report(labels, np.zeros(len(P)), np.ones(len(P)))[
            "first_position_share"]

    unbiased = share(swap=False)
    biased = share(swap=False, position_bias=2.0)
    debiased = share(swap=True, position_bias=2.0)
    assert biased > unbiased + 0.15  # the injected bias shows
    assert abs(debiased - unbiased) <= 0.05


def test_labeler_reports_agreement_and_its_defects_cost_agreement(judge, pairs):
    (P, A, B), _, (ga, gb), _ = pairs
    clean = AILabeler.report(AILabeler(judge.score).label(P, A, B), ga, gb)
    noisy = AILabeler.report(AILabeler(judge.score, LabelerConfig(
        noise_sigma=3.0, verbosity_bias=0.5)).label(P, A, B), ga, gb)
    assert clean["gold_agreement"] >= 0.8  # the judge sees the label, the gold scorer its degree
    assert noisy["gold_agreement"] < clean["gold_agreement"] - 0.05


def test_reward_model_on_clean_ai_labels_reaches_90_percent(judge, pairs, lm):
    (P, A, B), (Pv, Av, Bv), _, (gva, gvb) = pairs
    labels = AILabeler(judge.score).label(P, A, B)
    cfg = RewardModelConfig(encoder=EncoderConfig(steps=300, batch_size=32, lr=2e-3))
    rm = train_reward_model(lm.tokenizer, P, A, B, labels, cfg)
    held = AILabeler(judge.score).label(Pv, Av, Bv)  # the labeler's verdicts on unseen pairs
    assert np.mean((rm.score(Pv, Av) > rm.score(Pv, Bv)) == (held > 0.5)) >= 0.90
    assert preference_accuracy(rm, Pv, Av, Bv, gva, gvb) >= 0.80  # and so the gold's
    assert make_reward_fn("rm", judge, rm) == rm.score
    assert make_reward_fn("direct", judge, rm) == judge.score


def test_bradley_terry_loss_by_hand_and_its_robust_variant():
    ra, rb = torch.tensor([2.0]), torch.tensor([0.0])
    y = torch.tensor([1.0])
    assert float(bradley_terry_loss(ra, rb, y)) == pytest.approx(-np.log(1 / (1 + np.exp(-2))))
    p = 0.2 + 0.6 / (1 + np.exp(-2))
    assert float(bradley_terry_loss(ra, rb, y, 0.2)) == pytest.approx(-np.log(p), rel=1e-6)
    # a confidently contradicted (flipped) label costs at most -log(eps) under the robust loss
    far = bradley_terry_loss(torch.tensor([-30.0]), rb, y, 0.2)
    assert float(far) == pytest.approx(-np.log(0.2), rel=1e-4)


@pytest.fixture(scope="module")
def wide_held_out(lm):
    """1 000 fresh held-out pairs with their gold scores: a difference of a few points of
    preference accuracy is within the noise of 300."""
    rng = np.random.default_rng(3)
    headers = ["movie review :", "product review :"]
    P, A, B = sample_pairs(lm.model, lm.tokenizer, [headers[i] for i in rng.integers(0, 2, 1000)],
                           seed=3, max_new_tokens=40)
    return P, A, B, gold(P, A), gold(P, B)


def test_robust_loss_beats_plain_bradley_terry_at_30_percent_flips(judge, pairs, lm,
                                                                  wide_held_out):
    """600 pairs seen 32 times: the regime where flipped labels get memorised."""
    (P, A, B), _, _, _ = pairs
    P, A, B = P[:600], A[:600], B[:600]
    labels = AILabeler(judge.score, LabelerConfig(flip_rate=0.3, seed=1)).label(P, A, B)
    flipped = labels != AILabeler(judge.score).label(P, A, B)
    enc = EncoderConfig(steps=600, batch_size=32, lr=2e-3)
    acc, fits = {}, {}
    for robust in (False, True):
        cfg = RewardModelConfig(encoder=enc, robust=robust, assumed_flip_rate=0.3)
        rm = train_reward_model(lm.tokenizer, P, A, B, labels, cfg)
        acc[robust] = preference_accuracy(rm, *wide_held_out)
        prefers_a = rm.score(P, A) > rm.score(P, B)
        fits[robust] = float(np.mean(prefers_a[flipped] == (labels[flipped] > 0.5)))
    # plain BT learns the flipped labels by heart; the flip-corrected loss (book 4.3.3: a
    # floor of eps on each label's likelihood) gives up on most of them, and generalises better
    assert fits[True] < fits[False] - 0.25, fits
    assert acc[True] > acc[False], acc
