"""PyTorch twins of ``rl_tf.twins`` (d2l-style): the same names, only the framework calls change.

Used side by side in notebook 05 and held together by ``tests/test_twins.py`` (to 1e-5):
scaled dot-product attention (book 4.1.2), the REINFORCE loss (book 4.2.3) and GAE (4.2.2).
"""

from __future__ import annotations

import math

import torch


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True):
    """softmax(Q K^T / sqrt(d_k)) V; q, k, v (B, T, d)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])  # (B, T, T)
    if causal:
        T = q.shape[-2]
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def reinforce_loss(logits: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor):
    """-mean log pi(a|s) A, log pi from log_softmax of the logits (B, A)."""
    logp = torch.log_softmax(logits, -1).gather(-1, actions[:, None]).squeeze(-1)
    return -(logp * advantages.detach()).mean()


def gae(rewards, values, next_values, dones, gamma: float, lam: float):
    """A_t = delta_t + gamma lam (1 - d_t) A_{t+1}, delta_t = r_t + gamma (1-d_t) V' - V."""
    deltas = rewards + gamma * (1 - dones) * next_values - values
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(len(rewards) - 1, -1, -1):
        running = deltas[t] + gamma * lam * (1 - dones[t]) * running
        adv[t] = running
    return adv
