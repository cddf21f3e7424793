"""Finite MDPs <S, A, P, R, gamma> and dynamic programming (book 2.2.1-2.2.2, 4.2.1-4.2.2).

Bellman expectation equation (book 4.2.2):
    V^pi(s) = sum_a pi(a|s) sum_s' P(s'|s,a) [R(s,a,s') + gamma V^pi(s')]
solved two ways -- by iterating it to a fixed point, and exactly as the linear system
(I - gamma P_pi) V = r_pi -- plus value iteration and policy iteration for the optimal policy,
a small gridworld, and the exploration rules of the tabular lab (epsilon-greedy, softmax).

Arrays: P (S, A, S') transition probabilities, R (S, A, S') rewards, pi (S, A) a stochastic policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FiniteMDP:
    """<S, A, P, R, gamma> with S states and A actions (book 4.2.1)."""

    P: np.ndarray  #: (S, A, S) transition probabilities; each P[s, a] sums to 1
    R: np.ndarray  #: (S, A, S) reward of the transition s -a-> s'
    gamma: float  #: discount in [0, 1)

    def __post_init__(self):
        if self.P.ndim != 3 or self.P.shape[0] != self.P.shape[2]:
            raise ValueError(f"P must have shape (S, A, S), got {self.P.shape}")
        if self.R.shape != self.P.shape:
            raise ValueError(f"R must have P's shape {self.P.shape}, got {self.R.shape}")
        if not np.allclose(self.P.sum(-1), 1.0) or (self.P < 0).any():
            raise ValueError("each P[s, a] must be a probability distribution over s'")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma}")

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]

    def expected_reward(self) -> np.ndarray:
        """r(s, a) = sum_s' P(s'|s,a) R(s,a,s'): (S, A)."""
        return (self.P * self.R).sum(-1)

    def q_from_v(self, V: np.ndarray) -> np.ndarray:
        """Q(s, a) = sum_s' P(s'|s,a) [R(s,a,s') + gamma V(s')]: (S, A)."""
        return (self.P * (self.R + self.gamma * V[None, None, :])).sum(-1)


def _check_policy(mdp: FiniteMDP, pi: np.ndarray) -> np.ndarray:
    pi = np.asarray(pi, dtype=np.float64)
    if pi.shape != (mdp.n_states, mdp.n_actions) or not np.allclose(pi.sum(-1), 1.0):
        raise ValueError(f"pi must be (S, A) = {(mdp.n_states, mdp.n_actions)} with rows "
                         "summing to 1")
    return pi


def policy_evaluation_iterative(mdp: FiniteMDP, pi: np.ndarray, tol: float = 1e-12,
                                max_iter: int = 100_000) -> np.ndarray:
    """V^pi by sweeping the Bellman expectation equation until it changes by < tol."""
    pi = _check_policy(mdp, pi)
    V = np.zeros(mdp.n_states)
    for _ in range(max_iter):
        V_new = (pi * mdp.q_from_v(V)).sum(-1)
        if np.max(np.abs(V_new - V)) < tol:
            return V_new
        V = V_new
    raise RuntimeError(f"policy evaluation did not converge in {max_iter} sweeps")


def policy_evaluation_linear(mdp: FiniteMDP, pi: np.ndarray) -> np.ndarray:
    """V^pi exactly: solve (I - gamma P_pi) V = r_pi."""
    pi = _check_policy(mdp, pi)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    r_pi = (pi * mdp.expected_reward()).sum(-1)
    return np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P_pi, r_pi)


def greedy_policy(Q: np.ndarray) -> np.ndarray:
    """Deterministic policy (S, A) putting probability 1 on argmax_a Q(s, a) (first on ties)."""
    pi = np.zeros_like(Q, dtype=np.float64)
    pi[np.arange(len(Q)), Q.argmax(-1)] = 1.0
    return pi


def value_iteration(mdp: FiniteMDP, tol: float = 1e-12, max_iter: int = 100_000):
    """V*(s) = max_a Q*(s, a) by iteration: returns (V*, greedy policy)."""
    V = np.zeros(mdp.n_states)
    for _ in range(max_iter):
        V_new = mdp.q_from_v(V).max(-1)
        if np.max(np.abs(V_new - V)) < tol:
            return V_new, greedy_policy(mdp.q_from_v(V_new))
        V = V_new
    raise RuntimeError(f"value iteration did not converge in {max_iter} sweeps")


def policy_iteration(mdp: FiniteMDP, max_iter: int = 1000):
    """Evaluate (linear solve), improve greedily, until the policy is stable: (V*, pi*)."""
    pi = np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)
    for _ in range(max_iter):
        V = policy_evaluation_linear(mdp, pi)
        new = greedy_policy(mdp.q_from_v(V))
        if np.array_equal(new, pi):
            return V, pi
        pi = new
    raise RuntimeError(f"policy iteration did not converge in {max_iter} iterations")


# --- a small gridworld --------------------------------------------------------------------------
MOVES = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}  #: up, right, down, left
ACTION_NAMES = ("up", "right", "down", "left")


def gridworld(layout: tuple[str, ...] = ("...", ".#.", "..G"), step_reward: float = -1.0,
              gamma: float = 0.9, slip: float = 0.0) -> FiniteMDP:
    """A grid: ``.`` free, ``#`` wall, ``G`` goal (absorbing, reward 0 from then on).

    Each move costs ``step_reward``; bumping into a wall or the edge stays in place. With
    ``slip`` > 0 the agent moves in a random other direction with that probability.
    States are the cells in row-major order (walls included, unreachable).
    """
    rows, cols = len(layout), len(layout[0])
    S, A = rows * cols, 4
    P = np.zeros((S, A, S))
    R = np.zeros((S, A, S))
    for r in range(rows):
        for c in range(cols):
            s = r * cols + c
            for a in range(A):
                if layout[r][c] in "G#":
                    P[s, a, s] = 1.0
                    continue
                for b in range(A):
                    p = 1.0 - slip if b == a else slip / (A - 1)
                    if p == 0.0:
                        continue
                    dr, dc = MOVES[b]
                    nr, nc = r + dr, c + dc
                    if not (0 <= nr < rows and 0 <= nc < cols) or layout[nr][nc] == "#":
                        nr, nc = r, c
                    P[s, a, nr * cols + nc] += p
                    R[s, a, nr * cols + nc] = step_reward
    return FiniteMDP(P, R, gamma)


# --- exploration for the tabular lab (book 2.2.3) -----------------------------------------------
def epsilon_greedy(Q: np.ndarray, epsilon: float) -> np.ndarray:
    """pi(a|s) = 1 - eps + eps/A for the greedy action, eps/A otherwise: (S, A)."""
    A = Q.shape[-1]
    return (1.0 - epsilon) * greedy_policy(Q) + epsilon / A


def softmax_policy(Q: np.ndarray, temperature: float) -> np.ndarray:
    """Boltzmann exploration pi(a|s) proportional to exp(Q(s, a) / temperature): (S, A)."""
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    z = Q / temperature
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def q_learning(mdp: FiniteMDP, explore, episodes: int = 500, alpha: float = 0.5,
               max_steps: int = 100, start: int = 0, seed: int = 0) -> np.ndarray:
    """Tabular Q-learning with an exploration rule ``explore(Q) -> pi (S, A)``: returns Q."""
    rng = np.random.default_rng(seed)
    Q = np.zeros((mdp.n_states, mdp.n_actions))
    absorbing = np.array([np.allclose(mdp.P[s, :, s], 1.0) for s in range(mdp.n_states)])
    for _ in range(episodes):
        s = start
        for _ in range(max_steps):
            if absorbing[s]:
                break
            a = rng.choice(mdp.n_actions, p=explore(Q)[s])
            s2 = rng.choice(mdp.n_states, p=mdp.P[s, a])
            target = mdp.R[s, a, s2] + mdp.gamma * Q[s2].max() * (not absorbing[s2])
            Q[s, a] += alpha * (target - Q[s, a])
            s = s2
    return Q
