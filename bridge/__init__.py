"""The bridge between the Torch LM and the TF policy: the NumPy protocol, the LM as a Gymnasium
environment, and the wiring of whole runs (CLI). Importing it loads neither framework."""

import gymnasium as _gym

if "rlaif/TextGeneration-v0" not in _gym.registry:
    _gym.register(id="rlaif/TextGeneration-v0", entry_point="bridge.env:TextGenerationEnv",
                  max_episode_steps=None)
