"""The book's listing 5.2.1 (per-step updates with the immediate reward) against REINFORCE with
reward-to-go and a baseline, on CartPole-v1 with the same budget of environment steps (figures,
never pass/fail). PPO's steps to solve, beside Stable-Baselines3's, are measured by
``bench/peers.py``.

Run: ``make bench`` or ``python bench/bench_cartpole.py [--book-budget 5000]``.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import keras
import numpy as np

from bridge import metrics as M
from rl_tf.book import train_policy
from rl_tf.envs import evaluate
from rl_tf.logger import seed_everything
from rl_tf.networks import PolicyNetwork
from rl_tf.reinforce import ReinforceConfig, train_reinforce


def book_vs_reward_to_go(budget: int, seed: int = 0) -> None:
    print(f"The book's per-step update vs REINFORCE with reward-to-go, {budget} env steps each:")
    seed_everything(seed)
    env = gym.make("CartPole-v1")
    env.reset(seed=seed)
    net = PolicyNetwork(2, 64)
    returns, t0 = [], time.time()
    while sum(returns) < budget:
        returns += train_policy(net, env, keras.optimizers.Adam(1e-3), 5, 32)
    book_s = time.time() - t0
    book_eval = evaluate(lambda obs: net(obs), "CartPole-v1", 10, seed=seed + 10_000)
    log = train_reinforce(ReinforceConfig(seed=seed, total_steps=budget, eval_interval=budget),
                          progress=False)
    _, rtg = log.logger.series(M.EPISODIC_RETURN)
    print(f"  book listing 5.2.1:      training return first 10 episodes "
          f"{np.mean(returns[:10]):5.1f}, last 10 {np.mean(returns[-10:]):5.1f}; greedy "
          f"evaluation {book_eval:5.1f}   ({book_s:.0f} s)")
    print(f"  reward-to-go + baseline: training return first batch {rtg[0]:5.1f}, last batch "
          f"{rtg[-1]:5.1f}; greedy evaluation {log.final_eval:5.1f}   ({log.wall_seconds:.0f} s)")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--book-budget", type=int, default=5000,
                   help="env steps for the book-vs-reward-to-go comparison")
    args = p.parse_args(argv)
    book_vs_reward_to_go(args.book_budget)


if __name__ == "__main__":
    main()
