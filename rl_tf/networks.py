"""Keras 3 networks: the book's PolicyNetwork (listing 5.2.1), a value network, an actor-critic.

Listing 5.2.1 is three Dense layers: Dense(hidden, relu) -> Dense(hidden, relu) -> Dense(A).
Here it takes the same form, can start its last layer at zero (so a residual policy starts as
its reference, DESIGN.md step 4), and saves to ``.keras``. Spaces the networks cannot handle
raise :class:`UnsupportedSpaceError` naming the space.
"""

from __future__ import annotations

import keras
import numpy as np
from gymnasium import spaces


class UnsupportedSpaceError(ValueError):
    """An observation or action space the policy networks cannot handle."""


def check_spaces(observation_space, action_space) -> tuple[int, int]:
    """(obs_dim, n_actions) for a flat Box observation and a Discrete action space."""
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise UnsupportedSpaceError(
            f"observation space {observation_space} is not supported: the networks need a "
            "1-D Box (flatten images or dicts with a gymnasium wrapper first)")
    if not isinstance(action_space, spaces.Discrete):
        raise UnsupportedSpaceError(
            f"action space {action_space} is not supported: the policies are categorical and "
            "need a Discrete action space")
    return int(observation_space.shape[0]), int(action_space.n)


def _mlp(hidden_dim: int, activation: str, name: str) -> list[keras.layers.Layer]:
    return [keras.layers.Dense(hidden_dim, activation=activation, name=f"{name}_fc1"),
            keras.layers.Dense(hidden_dim, activation=activation, name=f"{name}_fc2")]


def _build_chain(input_shape, *layers) -> None:
    """Build Dense layers applied one after another (so a loaded model has its weights)."""
    shape = tuple(input_shape)
    for layer in layers:
        layer.build(shape)
        shape = shape[:-1] + (layer.units,)


@keras.saving.register_keras_serializable(package="rl_tf")
class PolicyNetwork(keras.Model):
    """pi_theta(.|s) as logits: the book's listing 5.2.1 in Keras 3."""

    def __init__(self, action_dim: int, hidden_dim: int = 64, activation: str = "relu",
                 zero_init_last: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.action_dim, self.hidden_dim = action_dim, hidden_dim
        self.activation, self.zero_init_last = activation, zero_init_last
        self.fc1, self.fc2 = _mlp(hidden_dim, activation, "policy")
        init = "zeros" if zero_init_last else keras.initializers.Orthogonal(0.01)
        self.fc3 = keras.layers.Dense(action_dim, kernel_initializer=init, name="policy_logits")

    def build(self, input_shape):
        _build_chain(input_shape, self.fc1, self.fc2, self.fc3)

    def call(self, state):
        return self.fc3(self.fc2(self.fc1(state)))

    def get_config(self):
        return {**super().get_config(), "action_dim": self.action_dim,
                "hidden_dim": self.hidden_dim, "activation": self.activation,
                "zero_init_last": self.zero_init_last}


@keras.saving.register_keras_serializable(package="rl_tf")
class ValueNetwork(keras.Model):
    """V_phi(s): the same trunk with a scalar head (book 4.2.2)."""

    def __init__(self, hidden_dim: int = 64, activation: str = "relu", **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim, self.activation = hidden_dim, activation
        self.fc1, self.fc2 = _mlp(hidden_dim, activation, "value")
        self.out = keras.layers.Dense(1, kernel_initializer=keras.initializers.Orthogonal(1.0),
                                      name="value_out")

    def build(self, input_shape):
        _build_chain(input_shape, self.fc1, self.fc2, self.out)

    def call(self, state):
        return keras.ops.squeeze(self.out(self.fc2(self.fc1(state))), -1)

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim,
                "activation": self.activation}


@keras.saving.register_keras_serializable(package="rl_tf")
class ActorCritic(keras.Model):
    """Policy and value together: ``call(s) -> (logits, value)``.

    ``shared=True`` puts both heads on one trunk; otherwise two separate networks (the usual
    choice for PPO on small control tasks).
    """

    def __init__(self, action_dim: int, hidden_dim: int = 64, activation: str = "tanh",
                 shared: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.action_dim, self.hidden_dim = action_dim, hidden_dim
        self.activation, self.shared = activation, shared
        self.policy = PolicyNetwork(action_dim, hidden_dim, activation, name="pi")
        self.value = ValueNetwork(hidden_dim, activation, name="v")

    def build(self, input_shape):
        self.policy.build(input_shape)
        self.value.build(input_shape)

    def call(self, state):
        if self.shared:
            h = self.policy.fc2(self.policy.fc1(state))
            return self.policy.fc3(h), keras.ops.squeeze(self.value.out(h), -1)
        return self.policy(state), self.value(state)

    def get_config(self):
        return {**super().get_config(), "action_dim": self.action_dim,
                "hidden_dim": self.hidden_dim, "activation": self.activation,
                "shared": self.shared}


def build(model: keras.Model, obs_dim: int) -> keras.Model:
    """Create the weights by calling the model once on a zero observation."""
    model(np.zeros((1, obs_dim), np.float32))
    return model
