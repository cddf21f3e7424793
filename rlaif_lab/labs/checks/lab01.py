"""Hidden tests of lab 01 (book chapter 1: background, the LM as an environment)."""

from __future__ import annotations

import numpy as np

from ..spec import ExerciseList, Fail, Mutation, close, exercise, need, number, open_question

EXERCISES = ExerciseList()
MUTATION = Mutation("discounted-return", "gamma ** t * r", "gamma ** (t + 1) * r")


def _bigram_reference(train, val, V):
    counts = np.ones((V, V))
    np.add.at(counts, (train[:-1], train[1:]), 1.0)
    logp = np.log(counts / counts.sum(1, keepdims=True))
    return float(np.exp(-logp[val[:-1], val[1:]].mean()))


def _markov_stream(rng, n, V):
    """A stream with strong bigram structure: each token has two likely successors."""
    succ = rng.integers(0, V, (V, 2))
    out = [0]
    for _ in range(n - 1):
        nxt = succ[out[-1], rng.integers(0, 2)] if rng.random() < 0.9 else rng.integers(0, V)
        out.append(int(nxt))
    return np.array(out)


@exercise(EXERCISES, "bigram-perplexity", "code", 2,
          "an add-one bigram language model and its perplexity (book 1.1.1)",
          hint="counts = ones((V, V)); add 1 at (train[:-1], train[1:]); normalise each row; "
               "perplexity = exp(-mean log P(val[i] | val[i-1]))")
def _bigram(ns: dict) -> None:
    from lm_torch.data import unigram_perplexity

    fn = need(ns, "bigram_perplexity")
    rng = np.random.default_rng(0)
    for V, n in ((5, 40), (9, 300)):
        train, val = rng.integers(0, V, n), rng.integers(0, V, n // 3)
        close(float(fn(train, val, V)), _bigram_reference(train, val, V), 1e-6 * V,
              f"the perplexity of random streams over {V} tokens")
    V = 12
    stream = _markov_stream(rng, 3600, V)
    train, val = stream[:3000], stream[3000:]
    got = float(fn(train, val, V))
    close(got, _bigram_reference(train, val, V), 1e-6 * got, "the perplexity of a Markov stream")
    if not got < unigram_perplexity(train, val, V):
        raise Fail("on a stream with bigram structure your model should beat the unigram model")


@exercise(EXERCISES, "discounted-return", "code", 2, "the discounted return G = sum_t gamma^t r_t",
          hint="the first reward counts fully (gamma^0 = 1), the next gamma, then gamma^2, ...")
def _discounted_return(ns: dict) -> None:
    fn = need(ns, "discounted_return")
    rng = np.random.default_rng(0)
    for T, gamma in ((1, 0.9), (4, 0.5), (25, 0.99), (10, 1.0), (6, 0.0)):
        r = rng.normal(size=T)
        want = float(np.sum(gamma ** np.arange(T) * r))
        close(float(fn(list(r), gamma)), want, 1e-9, f"the return of {T} rewards, gamma={gamma}")
    close(float(fn([], 0.9)), 0.0, 0.0, "the return of an empty episode")


@exercise(EXERCISES, "predict-gold", "predict", 1, "predict a text's gold score from the rules",
          hint="sentence by sentence: not good = -0.5, very excellent = 1.5 * 3, disliked = -1")
def _predict_gold(ns: dict) -> None:
    from lm_torch.tasks import gold_score

    got = number(ns, "predicted_gold")
    text = ("movie review : the acting was not good . the music was very excellent . "
            "i disliked the plot .")
    if abs(got - gold_score(text)) > 1e-9:
        raise Fail(f"predicted_gold = {got:g} is not the gold score of the text")


@exercise(EXERCISES, "grammar-reward", "code", 2,
          "a reward function of your own: +1 for well-formed text, -1 otherwise",
          hint="is_well_formed(prompt + ' ' + completion); return np.array([...], "
               "dtype=np.float32)")
def _grammar_reward(ns: dict) -> None:
    from lm_torch.corpus import CorpusConfig, build_corpus

    fn = need(ns, "grammar_reward")
    recs = build_corpus(CorpusConfig(n_train=40, n_val=1, n_prompts=1)).train
    prompts, comps = [r.prompt for r in recs], [r.completion for r in recs]
    got = np.asarray(fn(prompts, comps))
    if got.shape != (len(recs),):
        raise Fail(f"expected one reward per completion, shape ({len(recs)},); got {got.shape}")
    if got.dtype != np.float32:
        raise Fail(f"the environment wants float32 rewards; got {got.dtype}")
    close(got, np.ones(len(recs)), 0.0, "the rewards of 40 well-formed corpus documents")
    rng = np.random.default_rng(0)
    broken = [" ".join(rng.permutation(c.split())[::-1]) + " extra" for c in comps]
    close(fn(prompts, broken), -np.ones(len(recs)), 0.0, "the rewards of 40 broken completions")


open_question(EXERCISES, "sparse-reward", "why a terminal reward is hard, and per-token rewards")
