"""Hidden tests of lab 08 (book chapter 8: the outlook)."""

from __future__ import annotations

import numpy as np

from ..spec import ExerciseList, Fail, Mutation, close, exercise, need, number, open_question

EXERCISES = ExerciseList()
MUTATION = Mutation("fit-gao", "-d[keep] * np.log(d[keep])", "d[keep] * np.log(d[keep])")


@exercise(EXERCISES, "distinct-n", "code", 2, "distinct-n, the diversity metric (book 8.2.2)",
          hint="grams = all tuple(words[i:i + n]) of every text; len(set(grams)) / len(grams)")
def _distinct_n(ns: dict) -> None:
    from rlaif_lab.diversity import distinct_n as reference

    fn = need(ns, "distinct_n")
    cases = [["the plot was good . the plot was good ."], ["a b", "a b"], ["a"], [],
             ["the cast was bad .", "i loved the music .", "the cast was bad ."]]
    for texts in cases:
        for n in (1, 2, 3):
            close(float(fn(texts, n)), reference(texts, n), 1e-12, f"distinct_n({texts}, {n})")


@exercise(EXERCISES, "robust-reward", "code", 3, "a reward that repetition cannot game (8.2.2)",
          hint="e.g. -5 for ill-formed text or a repeated sentence, else tanh(gold / 3): "
               "diminishing returns")
def _robust_reward(ns: dict) -> None:
    from lm_torch.corpus import CorpusConfig, build_corpus

    fn = need(ns, "robust_reward")
    reviews = [r for r in build_corpus(CorpusConfig(n_train=400, n_val=1, n_prompts=1)).train
               if r.task == "reviews"][:200]
    agree = np.mean([(float(fn(r.prompt, r.completion)) > 0) == (r.label == 1) for r in reviews])
    if agree < 0.9:
        raise Fail(f"the sign of your reward matches the gold sentiment on {agree:.0%} of 200 "
                   "corpus reviews; it should on at least 90 %")
    honest = float(fn("movie review :", "the plot was great ."))
    hacks = {"excellent x20": "excellent " * 20,
             "one sentence three times": "the plot was excellent . " * 3,
             "a product sentence three times": "the price is amazing . " * 3}
    for name, completion in hacks.items():
        prompt = "product review :" if "product" in name else "movie review :"
        if not float(fn(prompt, completion.strip())) < honest:
            raise Fail(f"the hack '{name}' scores at least as high as the honest "
                       "'the plot was great .'")


@exercise(EXERCISES, "fit-gao", "code", 2, "fit Gao et al.'s over-optimisation curve (8.2.2)",
          hint="X = stack([d, -d * log d], 1) on the points with d > 1e-6; "
               "np.linalg.lstsq(X, r)")
def _fit_gao(ns: dict) -> None:
    from rlaif_lab.sweep import fit_gao as reference

    fn = need(ns, "fit_gao")
    rng = np.random.default_rng(0)
    for alpha, beta in ((2.0, 0.5), (1.2, 0.0), (0.8, 1.1)):
        d = np.concatenate([[0.0], rng.uniform(0.05, 4.0, 30)])
        r = d * (alpha - beta * np.log(np.maximum(d, 1e-12))) + rng.normal(0, 0.05, d.shape)
        got = fn(d, r)
        try:
            a, b = (float(x) for x in got)
        except (TypeError, ValueError):
            raise Fail(f"fit_gao should return (alpha, beta); got {got!r}") from None
        want = reference(d, r)
        close([a, b], [want["alpha"], want["beta"]], 1e-6,
              f"(alpha, beta) against rlaif_lab.sweep.fit_gao, true ({alpha}, {beta})")


@exercise(EXERCISES, "predict-distinct", "predict", 1, "predict a text's distinct-2 by counting",
          hint="10 words make 9 bigrams; how many are different?")
def _predict_distinct(ns: dict) -> None:
    from rlaif_lab.diversity import distinct_n

    got = number(ns, "predicted_distinct_2")
    if abs(got - distinct_n(["the plot was good . the plot was good ."], 2)) > 1e-3:
        raise Fail(f"predicted_distinct_2 = {got:g} is not the text's distinct-2")


open_question(EXERCISES, "best-of-n", "why the human rating of best-of-n falls, and the fix")
