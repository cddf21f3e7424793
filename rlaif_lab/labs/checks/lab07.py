"""Hidden tests of lab 07 (book chapter 7: tools and benchmarks)."""

from __future__ import annotations

import functools
from collections import Counter

import numpy as np

from ..spec import ExerciseList, Fail, Mutation, close, exercise, need, number, open_question

EXERCISES = ExerciseList()
MUTATION = Mutation("token-f1", "return 2 * precision * recall", "return precision * recall")


@exercise(EXERCISES, "step-cost", "code", 2, "a Gymnasium wrapper: a cost per step",
          hint="in step(): obs, r, terminated, truncated, info = self.env.step(action); "
               "return them with r - self.cost")
def _step_cost(ns: dict) -> None:
    import gymnasium as gym

    cls = need(ns, "StepCost", "class")
    wrapped = cls(gym.make("CartPole-v1"), 0.25)
    plain = gym.make("CartPole-v1")
    if not isinstance(wrapped, gym.Wrapper):
        raise Fail("StepCost should be a gymnasium.Wrapper")
    o1, _ = wrapped.reset(seed=3)
    o2, _ = plain.reset(seed=3)
    rng, total, n = np.random.default_rng(0), 0.0, 0
    while True:
        a = int(rng.integers(0, 2))
        s1, s2 = wrapped.step(a), plain.step(a)
        if len(s1) != 5:
            raise Fail(f"step() should return 5 values (obs, reward, terminated, truncated, "
                       f"info); got {len(s1)}")
        close(s1[0], s2[0], 0.0, "the observation after a step")
        if (bool(s1[2]), bool(s1[3])) != (bool(s2[2]), bool(s2[3])):
            raise Fail("terminated / truncated differ from the wrapped environment's")
        total, n = total + float(s1[1]), n + 1
        if s1[2] or s1[3]:
            break
    close(total, n * 0.75, 1e-9, f"the return of a {n}-step episode with cost 0.25")
    if wrapped.observation_space != plain.observation_space or \
            wrapped.action_space != plain.action_space:
        raise Fail("the wrapper changed the observation or action space")


def _f1_reference(p: str, r: str) -> float:
    p, r = p.lower().split(), r.lower().split()
    if not p and not r:
        return 1.0
    overlap = sum((Counter(p) & Counter(r)).values())
    if overlap == 0:
        return 0.0
    prec, rec = overlap / len(p), overlap / len(r)
    return 2 * prec * rec / (prec + rec)


CASES = [("the plot was good .", "the plot was good ."), ("the plot was good", "The plot"),
         ("good good good", "good"), ("", ""), ("jazz", "tea"), ("a b c d", "c d e f g"),
         ("the the cat", "the cat the dog the")]


@exercise(EXERCISES, "token-f1", "code", 2, "SQuAD's token F1 (book 7.3.2)",
          hint="Counter(p) & Counter(r) gives the shared tokens with multiplicity; "
               "F1 = 2 P R / (P + R)")
def _token_f1(ns: dict) -> None:
    fn = need(ns, "token_f1")
    for p, r in CASES:
        close(float(fn(p, r)), _f1_reference(p, r), 1e-9, f"token_f1({p!r}, {r!r})")


def _rouge_reference(c: str, r: str, n: int) -> float:
    def grams(text):
        w = text.split()
        return Counter(tuple(w[i:i + n]) for i in range(len(w) - n + 1))
    gc, gr = grams(c), grams(r)
    overlap = sum((gc & gr).values())
    if not gc or not gr or overlap == 0:
        return 0.0
    prec, rec = overlap / sum(gc.values()), overlap / sum(gr.values())
    return 2 * prec * rec / (prec + rec)


@exercise(EXERCISES, "rouge-n", "code", 2, "ROUGE-n, the CNN/Daily Mail metric (book 7.3.3)",
          hint="n-grams: Counter(tuple(w[i:i + n]) for i in range(len(w) - n + 1)); clipped "
               "overlap with &; then F1")
def _rouge(ns: dict) -> None:
    fn = need(ns, "rouge_n")
    for n in (1, 2, 3):
        for c, r in CASES + [("the plot was good . the plot was bad .", "the plot was bad .")]:
            close(float(fn(c, r, n)), _rouge_reference(c, r, n), 1e-9,
                  f"rouge_n({c!r}, {r!r}, {n})")


@functools.lru_cache(maxsize=1)
def _sb3_timesteps() -> int:
    """What SB3 itself counts for n_steps=64, learn(100) (computed once per kernel)."""
    import gymnasium as gym
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", gym.make("CartPole-v1"), n_steps=64, batch_size=32, n_epochs=1,
                seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=100)
    return int(model.num_timesteps)


@exercise(EXERCISES, "predict-sb3", "predict", 1,
          "predict how many steps SB3's PPO collects (book 7.2.2)",
          hint="rollouts of 64 steps each, until the count reaches 100 or more")
def _predict_sb3(ns: dict) -> None:
    got = number(ns, "sb3_timesteps")
    if got != _sb3_timesteps():
        raise Fail(f"sb3_timesteps = {got:g}, but SB3 reports a different num_timesteps")


open_question(EXERCISES, "when-rllib", "when to move the RL stage to Ray / RLlib workers")
