"""Hidden tests of lab 09 (book chapter 9: the FAQ)."""

from __future__ import annotations

import numpy as np

from ..spec import ExerciseList, Fail, Mutation, close, exercise, need, number, open_question

EXERCISES = ExerciseList()
MUTATION = Mutation("debias", "+ 1.0 - np.asarray(p_ba)", "+ np.asarray(p_ba)")


@exercise(EXERCISES, "debias", "code", 2, "cancel position bias by asking in both orders (9.3.2)",
          hint="0.5 * (p_ab + 1 - p_ba): the second query is about B being better")
def _debias(ns: dict) -> None:
    from lm_torch.labeler import AILabeler, LabelerConfig

    fn = need(ns, "debias")
    rng = np.random.default_rng(0)
    scores = {f"c{i}": float(s) for i, s in enumerate(rng.normal(size=40))}
    judge = lambda p, c: np.array([scores[x] for x in c])  # noqa: E731
    a, b = list(scores)[:20], list(scores)[20:]
    biased = AILabeler(judge, LabelerConfig(swap=False, position_bias=1.3))
    p_ab, p_ba = biased.prefer_first([""] * 20, a, b), biased.prefer_first([""] * 20, b, a)
    want = AILabeler(judge, LabelerConfig(swap=True, position_bias=1.3)).label([""] * 20, a, b)
    close(fn(p_ab, p_ba), want, 1e-6, "your average against AILabeler(swap=True)")
    unbiased = AILabeler(judge, LabelerConfig(swap=False)).label([""] * 20, a, b)
    close(fn(p_ab, p_ba), unbiased, 0.2, "the order-averaged label against an unbiased labeler's")


def _early_reference(losses, patience):
    best, best_i, waited = float("inf"), 0, 0
    for i, loss in enumerate(losses):
        if loss < best:
            best, best_i, waited = loss, i, 0
        else:
            waited += 1
            if waited >= patience:
                break
    return best_i


@exercise(EXERCISES, "early-stopping", "code", 2, "early stopping with patience (9.1.3)",
          hint="track the best loss and its index; count evaluations since the last new best; "
               "stop when the count reaches patience")
def _early_stopping(ns: dict) -> None:
    fn = need(ns, "early_stopping")
    cases = [([3.0, 2.0, 1.0, 1.5, 1.4, 0.5], 2), ([3.0, 2.0, 1.0, 1.5, 1.4, 0.5], 3),
             ([1.0], 1), ([1.0, 1.0, 1.0], 1), ([5.0, 4.0, 3.0, 2.0], 1)]
    rng = np.random.default_rng(0)
    cases += [(list(np.cumsum(rng.normal(-0.1, 1.0, 30))), p) for p in (1, 3, 5)]
    for losses, patience in cases:
        got = fn(list(losses), patience)
        want = _early_reference(losses, patience)
        if got != want:
            raise Fail(f"early_stopping({np.round(losses, 2).tolist()[:8]}..., patience="
                       f"{patience}) = {got}; expected {want}")


@exercise(EXERCISES, "warmup-cosine", "code", 2, "a warmup + cosine learning-rate schedule (9.1.2)",
          hint="step < warmup: lr * (step + 1) / warmup; then min_lr + 0.5 (1 + cos(pi p)) "
               "(lr - min_lr)")
def _warmup_cosine(ns: dict) -> None:
    from lm_torch.train import TrainConfig, lr_at

    fn = need(ns, "warmup_cosine")
    for lr, min_lr, warmup, total in ((3e-3, 3e-4, 40, 400), (1e-3, 0.0, 1, 10), (0.1, 0.01, 5, 5)):
        cfg = TrainConfig(max_steps=total, lr=lr, min_lr=min_lr, warmup_steps=warmup)
        for step in sorted({0, warmup - 1, warmup, total // 2, total - 1, total + 3}):
            if step < 0:
                continue
            close(float(fn(step, lr, min_lr, warmup, total)), lr_at(step, cfg), 1e-12,
                  f"the rate at step {step} (lr={lr}, warmup={warmup}, total={total})")


@exercise(EXERCISES, "predict-position", "predict", 1,
          "predict a biased labeler's verdict on a tie (9.3.2)",
          hint="equal scores: the logit is the bias alone; P = sigmoid(b)")
def _predict_position(ns: dict) -> None:
    from lm_torch.labeler import AILabeler, LabelerConfig

    got = number(ns, "p_first")
    lab = AILabeler(lambda p, c: np.zeros(len(c)), LabelerConfig(swap=False, position_bias=1.5))
    if abs(got - float(lab.label([""], ["a"], ["b"])[0])) > 1e-4:
        raise Fail(f"p_first = {got:g} is not what the labeler gives")


open_question(EXERCISES, "choose-alpha", "how to choose alpha between a trusted sparse reward "
              "and a dense AI judge")
