"""The built-in language: generator and recogniser agree, gold scores are graded."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_torch import grammar as G
from lm_torch.corpus import CorpusConfig, build_corpus, generate_record, split_prompt
from lm_torch.tasks import gold_score


def test_every_generated_document_is_well_formed(tiny_corpus):
    for r in tiny_corpus.train + tiny_corpus.val + tiny_corpus.prompts:
        assert G.is_well_formed(r.text), r.text
        assert G.is_well_formed(r.text, r.task)


def test_labels_are_balanced_and_match_gold_sign(tiny_corpus):
    for task in ("reviews", "dialogue"):
        recs = [r for r in tiny_corpus.train if r.task == task]
        share = sum(r.label for r in recs) / len(recs)
        assert 0.4 < share < 0.6
        assert all(r.label == int(gold_score(r.text) > 0) for r in recs)


@pytest.mark.parametrize("text", [
    "movie review : the plot was good",  # no full stop
    "movie review : the plot was good . the plot was good . the plot was good . i liked the cast .",
    "movie review : the battery was good .",  # product noun in a movie review
    "movie review : the plot was very very good .",
    "movie review :",
    "user : where is my order ? bot :",
    "product review : the screen was good .  ",
    "good good good good",
    "",
])
def test_rejects_texts_outside_the_grammar(text):
    assert not G.is_well_formed(text)


@given(st.integers(0, 10_000), st.data())
@settings(max_examples=200, deadline=None)
def test_a_mutated_document_is_rejected(seed, data):
    rng = random.Random(seed)
    text = generate_record(rng, rng.choice(["reviews", "dialogue", "summary", "kgqa"])).text
    words = text.split()
    i = data.draw(st.integers(0, len(words) - 1))
    extra = data.draw(st.sampled_from(["the", ".", "bot", "review", "xyzzy"]))
    mutated = " ".join(words[:i] + [extra, extra] + words[i:])  # a doubled word anywhere
    assert not G.is_well_formed(mutated)


def test_gold_score_is_graded():
    s = gold_score
    assert s("movie review : the plot was good .") == 1.0
    assert s("movie review : the plot was very good .") == 1.5
    assert s("movie review : the plot was extremely good .") == 2.0
    assert s("movie review : the plot was not good .") == -0.5
    assert s("movie review : the plot was excellent and great .") == 5.0
    assert s("movie review : i hated the plot .") < s("movie review : i disliked the plot .") < 0
    # a dialogue's gold score: the politeness of the bot's last reply, +2 if it does what was asked
    assert s("user : where is my order ? bot : thank you for your patience .") == 3.0
    assert s("user : where is my order ? bot : that is a stupid question .") == -3.0
    assert s("user : where is my order ? bot : your order is on the way .") == 2.0
    with pytest.raises(ValueError, match="unknown aspect"):
        G.lexicon_score("x", "humour")


def test_splits_are_deterministic_by_seed():
    a = build_corpus(CorpusConfig(seed=3, n_train=50, n_val=10, n_prompts=10))
    b = build_corpus(CorpusConfig(seed=3, n_train=50, n_val=10, n_prompts=10))
    c = build_corpus(CorpusConfig(seed=4, n_train=50, n_val=10, n_prompts=10))
    assert a == b
    assert a.texts() != c.texts()
    assert a.texts("train") != a.texts("val")


def test_default_corpus_is_two_to_four_megabytes():
    corpus = build_corpus(CorpusConfig())
    assert 2_000_000 <= corpus.n_bytes <= 4_000_000


def test_prompt_split_and_bad_config():
    p, c = split_prompt("user : where is my order ? bot : no .", "dialogue")
    assert (p, c) == ("user : where is my order ? bot :", "no .")
    p, c = split_prompt("user : where is my order ? bot : no . user : what about my refund ? "
                        "bot : whatever .", "dialogue")  # the completion is the last bot turn
    assert c == "whatever ." and p.endswith("what about my refund ? bot :")
    with pytest.raises(ValueError, match="unknown task"):
        build_corpus(CorpusConfig(tasks=("poetry",)))


def test_well_formedness_is_the_form_and_the_gold_score_the_meaning():
    corpus = build_corpus(CorpusConfig(n_train=300, n_val=10, n_prompts=10,
                                       tasks=("summary", "kgqa")))
    for r in corpus.train:
        assert G.is_well_formed(r.text) and gold_score(r.text) == (1.0 if r.label else -1.0)
        assert r.text.startswith(r.prompt) and r.completion
    ok = ("facts : alice likes tea . bob likes jazz . carol likes cats . "
          "question : what does bob like ? answer : jazz .")
    assert G.is_well_formed(ok, "kgqa") and gold_score(ok) == 1.0
    wrong = ok.replace("answer : jazz", "answer : tea")
    assert G.is_well_formed(wrong) and gold_score(wrong) == -1.0  # the form is right
    summary = ("document : the plot was very good . the music was dull . the cast was ok . "
               "summary : pro plot , con music . overall : positive .")
    assert G.is_well_formed(summary, "summary") and gold_score(summary) == 1.0
    unfaithful = summary.replace("pro plot", "con plot")
    assert G.is_well_formed(unfaithful) and gold_score(unfaithful) == -1.0
    assert not G.is_well_formed(summary.replace("pro plot", "pro battery"))  # wrong domain
