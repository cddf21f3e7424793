"""The application: the ``rlaif-lab`` command line, the run config and presets, one module per
pipeline stage, sweeps, the report and plots -- the only package that sees both frameworks.

Importing it selects Keras' TensorFlow backend, quiets TensorFlow's C++ logs, and registers the
Gymnasium environment ``rlaif/TextGeneration-v0`` (built by :mod:`rlaif_lab.envs`).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gymnasium as _gym  # noqa: E402

if "rlaif/TextGeneration-v0" not in _gym.registry:
    _gym.register(id="rlaif/TextGeneration-v0", entry_point="rlaif_lab.envs:make_text_env",
                  max_episode_steps=None)
