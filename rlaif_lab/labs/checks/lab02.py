"""Hidden tests of lab 02 (book chapter 2: core concepts)."""

from __future__ import annotations

import numpy as np

from ..spec import ExerciseList, Fail, Mutation, close, exercise, need, number, open_question

EXERCISES = ExerciseList()
MUTATION = Mutation("bellman-backup", ".sum(-1).max(-1)", ".sum(-1).mean(-1)")


@exercise(EXERCISES, "sequence-logprob", "code", 2,
          "log P(text) by the chain rule, stable for large logits (book 2.1.1)",
          hint="torch.log_softmax(logits, -1), then gather the targets' entries and sum")
def _sequence_logprob(ns: dict) -> None:
    import torch

    fn = need(ns, "sequence_logprob")
    g = torch.Generator().manual_seed(0)
    for T, V in ((1, 3), (6, 11), (20, 50)):
        logits = torch.randn(T, V, generator=g)
        targets = torch.randint(0, V, (T,), generator=g)
        want = float(torch.log_softmax(logits.double(), -1)[torch.arange(T), targets].sum())
        close(float(fn(logits, targets)), want, 1e-4, f"log P of {T} tokens over {V}")
        big = logits * 1000
        got = float(fn(big, targets))
        want = float(torch.log_softmax(big.double(), -1)[torch.arange(T), targets].sum())
        if not np.isfinite(got):
            raise Fail("the log-probability is infinite for logits of size 1000: use "
                       "torch.log_softmax, not torch.log(torch.softmax(...))")
        close(got, want, 1e-3 * max(1.0, abs(want)), "log P with logits multiplied by 1000")


def _random_mdp(rng, S, A):
    from rl_tf.mdp import FiniteMDP

    P = rng.random((S, A, S)) ** 3
    P /= P.sum(-1, keepdims=True)
    return FiniteMDP(P, rng.normal(size=(S, A, S)), 0.8)


@exercise(EXERCISES, "bellman-backup", "code", 2,
          "one Bellman optimality backup; iterated, it gives V* (book 2.2.2, 4.2.2)",
          hint="Q[s, a] = sum over s' of P * (R + gamma * V[s']); then the max over a")
def _bellman(ns: dict) -> None:
    from rl_tf.mdp import value_iteration

    fn = need(ns, "bellman_backup")
    rng = np.random.default_rng(0)
    for S, A in ((1, 1), (4, 2), (7, 3)):
        mdp = _random_mdp(rng, S, A)
        V = rng.normal(size=S)
        close(fn(mdp.P, mdp.R, mdp.gamma, V), mdp.q_from_v(V).max(-1), 1e-9,
              f"one backup on a random MDP with {S} states and {A} actions")
    mdp = _random_mdp(rng, 6, 3)
    V = np.zeros(6)
    for _ in range(300):
        V = np.asarray(fn(mdp.P, mdp.R, mdp.gamma, V), np.float64)
    close(V, value_iteration(mdp)[0], 1e-6, "300 backups from zeros, against value iteration's V*")


@exercise(EXERCISES, "categorical-kl", "code", 2,
          "the exact KL between two next-token distributions, from logits (book 2.3.2)",
          hint="log p = logits - max - log(sum(exp(logits - max))); KL = sum p (log p - log q)")
def _categorical_kl(ns: dict) -> None:
    from bridge.numerics import log_softmax

    fn = need(ns, "categorical_kl")
    rng = np.random.default_rng(0)
    for shape in ((5,), (3, 5), (2, 4, 7)):
        a, b = rng.normal(size=shape) * 2, rng.normal(size=shape) * 2
        lp, lq = log_softmax(a.astype(np.float64)), log_softmax(b.astype(np.float64))
        want = (np.exp(lp) * (lp - lq)).sum(-1)
        close(fn(a, b), want, 1e-6, f"KL of random logits of shape {shape}")
    close(fn(a, a), np.zeros(a.shape[:-1]), 1e-9, "KL of a distribution with itself")
    a, b = rng.normal(size=(4, 6)) * 1000, rng.normal(size=(4, 6)) * 1000
    got = np.asarray(fn(a, b), np.float64)
    if not np.all(np.isfinite(got)):
        raise Fail("KL is not finite for logits of size 1000: subtract the row maximum "
                   "before exp (or use a log-softmax)")
    lp, lq = log_softmax(a), log_softmax(b)
    close(got, (np.exp(lp) * (lp - lq)).sum(-1), 1e-6 * np.abs(lq).max(), "KL of huge logits")


@exercise(EXERCISES, "predict-epsilon", "predict", 1,
          "predict how often epsilon-greedy takes its greedy action (book 2.2.3)",
          hint="1 - eps for the greedy choice, plus eps / |A| when the random choice lands on it")
def _predict_epsilon(ns: dict) -> None:
    from rl_tf.mdp import epsilon_greedy

    got = number(ns, "p_greedy")
    want = float(epsilon_greedy(np.array([[0.0, 1.0, 0.0, 0.0]]), 0.3)[0, 1])
    if abs(got - want) > 1e-9:
        raise Fail(f"p_greedy = {got:g} is not what rl_tf.mdp.epsilon_greedy gives")


open_question(EXERCISES, "why-kl", "why the KL optimum stays on the reference's support")
