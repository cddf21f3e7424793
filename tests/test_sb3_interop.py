"""Interop (book 7.2.2): Stable-Baselines3's PPO trains on the LM environment as on any other."""

import numpy as np
import pytest
from stable_baselines3 import PPO

from rlaif_lab.envs import make_text_env

pytestmark = pytest.mark.e2e


def test_sb3_ppo_runs_on_the_text_environment(builtin_ckpt):
    env = make_text_env(builtin_ckpt, max_new_tokens=8)
    model = PPO("MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=2, seed=0,
                device="cpu", verbose=0)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    changed = [not np.allclose(a, b.detach()) for a, b in zip(before, model.policy.parameters())]
    assert any(changed)  # it took gradient steps
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
