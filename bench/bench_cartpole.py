"""CartPole-v1 benchmarks of the TensorFlow trainers (figures, never pass/fail).

1. Steps to solve (greedy evaluation mean >= 475 over 10 episodes, checked every 1 024 steps)
   for PPO, seeds 0-4, with the median, and wall time per 10 k environment steps. Anchor:
   Stable-Baselines3 PPO with its zoo hyperparameters solves in 10-20 k steps (seeds 0-2).
2. The book's listing 5.2.1 (per-step updates with the immediate reward) against REINFORCE with
   reward-to-go and a baseline, on the same budget of environment steps.

Run: ``make bench`` or ``python bench/bench_cartpole.py [--seeds 0 1 2 3 4]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import keras
import numpy as np

from bridge import metrics as M
from rl_tf.book import train_policy
from rl_tf.envs import evaluate
from rl_tf.logger import seed_everything
from rl_tf.networks import PolicyNetwork
from rl_tf.ppo import PPOConfig, train_ppo
from rl_tf.reinforce import ReinforceConfig, train_reinforce


def ppo_steps_to_solve(seeds) -> None:
    print("PPO on CartPole-v1 (SB3 zoo hyperparameters), evaluation every 1024 steps:")
    solved, rates = [], []
    for seed in seeds:
        cfg = PPOConfig(seed=seed, total_steps=100_000, eval_interval=1024,
                        stop_when_solved=True)
        log = train_ppo(cfg, progress=False)
        per_10k = log.wall_seconds / log.steps * 10_000
        rates.append(per_10k)
        solved.append(log.steps_to_solve if log.steps_to_solve else float("inf"))
        print(f"  seed {seed}: steps to solve {log.steps_to_solve or 'not solved'}"
              f"   ({per_10k:.1f} s per 10 k steps)")
    print(f"  median steps to solve: {statistics.median(solved):.0f}   (SB3 zoo: 10-20 k; "
          f"target <= 20 k); median wall time per 10 k steps {statistics.median(rates):.1f} s")


def book_vs_reward_to_go(budget: int, seed: int = 0) -> None:
    print(f"\nThe book's per-step update vs REINFORCE with reward-to-go, {budget} env steps each:")
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
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--book-budget", type=int, default=5000,
                   help="env steps for the book-vs-reward-to-go comparison")
    args = p.parse_args(argv)
    ppo_steps_to_solve(args.seeds)
    book_vs_reward_to_go(args.book_budget)


if __name__ == "__main__":
    main()
