"""Learning tests on Gymnasium CartPole-v1: PPO solves it, REINFORCE with a baseline gets far.

Fixed seeds, small budgets; each run stops once its bar is passed.
"""

import numpy as np
import pytest

from bridge import metrics as M
from rl_tf.ppo import PPOConfig, train_ppo
from rl_tf.reinforce import ReinforceConfig, train_reinforce

pytestmark = pytest.mark.learning


def test_ppo_solves_cartpole_within_100k_steps():
    log = train_ppo(PPOConfig(seed=0, total_steps=100_000, stop_when_solved=True),
                    progress=False)
    assert log.steps_to_solve is not None and log.steps_to_solve <= 100_000
    assert log.final_eval >= 475
    for name in (M.LOSS_POLICY, M.LOSS_VALUE, M.LOSS_ENTROPY, M.APPROX_KL_K1, M.APPROX_KL_K3,
                 M.CLIPFRAC, M.EXPLAINED_VARIANCE, M.EPISODIC_RETURN, M.EVAL_RETURN):
        assert log.logger.series(name)[0], f"{name} was never logged"


def test_reinforce_with_baseline_reaches_195():
    cfg = ReinforceConfig(seed=0, total_steps=100_000, solve_return=195.0, stop_when_solved=True,
                          eval_interval=2500)
    log = train_reinforce(cfg, progress=False)
    assert log.steps_to_solve is not None
    assert log.final_eval >= 195
    _, returns = log.logger.series(M.EPISODIC_RETURN)
    assert np.mean(returns[-3:]) > 1.5 * np.mean(returns[:3])  # training returns rose too


def test_same_seed_same_metrics():
    cfg = PPOConfig(seed=3, total_steps=512, eval_interval=512, eval_episodes=2)
    a, b = train_ppo(cfg, progress=False), train_ppo(cfg, progress=False)
    assert a.logger.history[-1].keys() == b.logger.history[-1].keys()
    for ra, rb in zip(a.logger.history, b.logger.history):
        for k in ra:
            if k != M.SPS:  # wall-clock speed
                assert ra[k] == rb[k], k
    c = train_reinforce(ReinforceConfig(seed=3, total_steps=300, eval_interval=10**6),
                        progress=False)
    d = train_reinforce(ReinforceConfig(seed=3, total_steps=300, eval_interval=10**6),
                        progress=False)
    assert [r[M.LOSS_POLICY] for r in c.logger.history] == \
        [r[M.LOSS_POLICY] for r in d.logger.history]
