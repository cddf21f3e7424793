"""MDP tools: both policy evaluations agree; value iteration is optimal on the gridworld."""

import numpy as np
import pytest

from rl_tf.mdp import (
    FiniteMDP,
    epsilon_greedy,
    greedy_policy,
    gridworld,
    policy_evaluation_iterative,
    policy_evaluation_linear,
    policy_iteration,
    q_learning,
    softmax_policy,
    value_iteration,
)

# The default gridworld, states in row-major order:   0 1 2
#                                                     3 # 5
#                                                     6 7 G
# each step costs 1, gamma 0.9: a cell d steps from G is worth -(1 + 0.9 + ... + 0.9^(d-1)).
HAND = {8: 0.0, 5: -1.0, 7: -1.0, 2: -1.9, 6: -1.9, 1: -2.71, 3: -2.71, 0: -3.439}


def test_iterative_and_linear_policy_evaluation_agree():
    mdp = gridworld(slip=0.2)
    rng = np.random.default_rng(0)
    pi = rng.dirichlet(np.ones(4), size=mdp.n_states)
    np.testing.assert_allclose(policy_evaluation_iterative(mdp, pi),
                               policy_evaluation_linear(mdp, pi), atol=1e-8, rtol=0)


def test_value_iteration_matches_values_worked_out_by_hand():
    V, pi = value_iteration(gridworld())
    for s, v in HAND.items():
        assert V[s] == pytest.approx(v, abs=1e-9)
    # the greedy policy from the corner moves right or down, never into a wall or backwards
    assert pi[0].argmax() in (1, 2) and pi[5].argmax() == 2 and pi[7].argmax() == 1
    # and it is optimal: evaluating it gives V*
    np.testing.assert_allclose(policy_evaluation_linear(gridworld(), pi)[list(HAND)],
                               list(HAND.values()), atol=1e-9)


def test_policy_iteration_agrees_with_value_iteration():
    mdp = gridworld(("....", ".#..", "...G"), slip=0.1)
    V1, _ = value_iteration(mdp)
    V2, pi2 = policy_iteration(mdp)
    np.testing.assert_allclose(V1, V2, atol=1e-8)


def test_bellman_equation_holds_for_the_solution():
    mdp = gridworld(slip=0.3)
    pi = np.full((mdp.n_states, 4), 0.25)
    V = policy_evaluation_linear(mdp, pi)
    rhs = (pi * (mdp.P * (mdp.R + mdp.gamma * V)).sum(-1)).sum(-1)
    np.testing.assert_allclose(V, rhs, atol=1e-10)


def test_exploration_rules():
    Q = np.array([[1.0, 2.0, 0.0]])
    np.testing.assert_allclose(epsilon_greedy(Q, 0.3), [[0.1, 0.8, 0.1]])
    np.testing.assert_allclose(greedy_policy(Q), [[0, 1, 0]])
    hot, cold = softmax_policy(Q, 100.0), softmax_policy(Q, 0.01)
    assert np.allclose(hot, 1 / 3, atol=0.01) and cold[0, 1] > 0.99
    with pytest.raises(ValueError):
        softmax_policy(Q, 0.0)


def test_q_learning_with_epsilon_greedy_finds_the_optimal_policy():
    mdp = gridworld()
    Q = q_learning(mdp, lambda q: epsilon_greedy(q, 0.2), episodes=300, seed=0)
    V_star, _ = value_iteration(mdp)
    V_q = policy_evaluation_linear(mdp, greedy_policy(Q))
    np.testing.assert_allclose(V_q[list(HAND)], V_star[list(HAND)], atol=1e-9)


def test_bad_mdps_are_refused():
    with pytest.raises(ValueError, match="probability"):
        FiniteMDP(np.ones((2, 1, 2)), np.zeros((2, 1, 2)), 0.9)
    with pytest.raises(ValueError, match="gamma"):
        FiniteMDP(np.full((2, 1, 2), 0.5), np.zeros((2, 1, 2)), 1.0)
