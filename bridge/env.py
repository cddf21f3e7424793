"""The language model as a Gymnasium environment (book 1.3.1, 2.3.1, 3.1.2-3.1.3).

State s_t = the token prefix (seen through the LM's last hidden state and its next-token logits);
action a_t = the next token; the episode ends at ``<eos>`` (terminated) or at the length limit
(truncated). The reward is ``reward_fn(prompts, completions)`` when the episode ends, plus an
optional per-step term ``kl_coef * log pi_ref(a_t | s_t)``: the reference half of the KL penalty
-beta (log pi - log pi_ref). The other half, beta * log pi, is the policy's own entropy, which
only the policy knows; a trainer adds it as an entropy bonus with the same coefficient, and the
two make the exact KL penalty in expectation.

* :class:`BatchedTextEnv` steps B sequences per LM forward and speaks the protocol's messages.
* :class:`TextGenerationEnv` is the single-sequence ``gymnasium.Env``.

Both run over an abstract :class:`LMBackend` -- anything with ``meta``, ``reset(prompt_ids)`` and
``step(actions)`` returning :class:`TokenState` -- and a :class:`Tokenizer` (``encode``,
``decode``, ``bos_id``, ``eos_id``, ``pad_id``). ``lm_torch.backend.LMBackend`` is the Torch one,
``bridge.child.ChildBackend`` the same in a child process; the application builds them and
registers ``rlaif/TextGeneration-v0`` (``import rlaif_lab``). This module imports NumPy and
Gymnasium only.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import gymnasium as gym
import numpy as np

from .numerics import log_softmax
from .protocol import ActionBatch, Meta, TokenState

RewardFn = Callable[[Sequence[str], Sequence[str]], np.ndarray]


class LMBackend(Protocol):
    """What an environment needs of a language model (the bridge contract of DESIGN.md)."""

    meta: Meta

    def reset(self, prompts: Sequence[Sequence[int]]) -> TokenState: ...
    def step(self, actions: ActionBatch) -> TokenState: ...


class Tokenizer(Protocol):
    bos_id: int
    eos_id: int
    pad_id: int

    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids) -> str: ...


def zero_reward(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    """No terminal reward (the KL term alone, or a trainer that scores completions itself)."""
    return np.zeros(len(prompts), dtype=np.float32)


class BatchedTextEnv:
    """B sequences at once: ``reset() -> TokenState``; ``step(actions) -> (state, r, done, info)``.

    ``rewards[b]`` is the per-step KL term while row b runs, plus ``reward_fn`` in the step where
    it finishes; rows already finished get 0.
    """

    def __init__(self, backend: LMBackend, tokenizer: Tokenizer, prompts: Sequence[str], *,
                 reward_fn: RewardFn | None = None, kl_coef: float = 0.0,
                 batch_size: int = 16, seed: int | None = None):
        self.backend, self.tokenizer = backend, tokenizer
        self.prompt_texts = list(prompts)
        if not self.prompt_texts:
            raise ValueError("prompts must not be empty")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.reward_fn = reward_fn or zero_reward
        self.kl_coef, self.batch_size = float(kl_coef), int(batch_size)
        self.meta = self.backend.meta
        self.rng = np.random.default_rng(seed)
        self.state: TokenState | None = None

    def reset(self, seed: int | None = None, prompts: Sequence[str] | None = None) -> TokenState:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        if prompts is None:
            idx = self.rng.integers(0, len(self.prompt_texts), self.batch_size)
            prompts = [self.prompt_texts[i] for i in idx]
        self.prompts = list(prompts)
        ids = self.prompt_ids(self.prompts)
        self.prompt_lengths = np.array([len(p) for p in ids])
        self.state = self.backend.reset(ids)
        return self.state

    def prompt_ids(self, prompts: Sequence[str]) -> list[list[int]]:
        """The prompts as the LM sees them: ``<bos>`` and their tokens."""
        tok = self.tokenizer
        return [[tok.bos_id] + tok.encode(p) for p in prompts]

    def adopt(self, prompts: Sequence[str], state: TokenState) -> None:
        """Take a batch rolled out elsewhere -- in shards, or by workers holding copies of this
        environment (``bridge.shards``) -- as the current one, so :meth:`completions` decodes
        it. ValueError if ``state`` does not have one row per prompt."""
        if state.batch_size != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but a state of {state.batch_size} rows")
        self.prompts = list(prompts)
        self.prompt_lengths = np.array([len(p) for p in self.prompt_ids(self.prompts)])
        self.state = state

    def completions(self, state: TokenState | None = None) -> list[str]:
        s = state or self.state
        return [self.tokenizer.decode(s.tokens[b, self.prompt_lengths[b]: s.lengths[b]]).strip()
                for b in range(s.batch_size)]

    def step(self, actions) -> tuple[TokenState, np.ndarray, np.ndarray, dict]:
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        prev = self.state
        if not isinstance(actions, ActionBatch):
            actions = ActionBatch(np.asarray(actions, dtype=np.int32), self.meta)
        running = ~prev.done
        rewards = np.zeros(prev.batch_size, dtype=np.float32)
        if self.kl_coef:
            ref_logp = log_softmax(prev.logits)[np.arange(prev.batch_size), actions.actions]
            rewards += np.where(running, self.kl_coef * ref_logp, 0.0).astype(np.float32)
        state = self.backend.step(actions)
        finished = running & state.done
        info = {"finished": finished}
        if finished.any():
            idx = np.flatnonzero(finished)
            comps = self.completions(state)
            scores = np.asarray(self.reward_fn([self.prompts[i] for i in idx],
                                               [comps[i] for i in idx]), dtype=np.float32)
            rewards[idx] += scores
            info["scores"] = dict(zip(idx.tolist(), scores.tolist()))
        self.state = state
        return state, rewards, state.done.copy(), info

    def close(self) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()


class TextGenerationEnv(gym.Env):
    """One sequence at a time, as a standard ``gymnasium.Env`` (``rlaif/TextGeneration-v0``).

    Observation: Dict(hidden float32 (D,), logits float32 (V,), tokens int32 (L,) padded),
    L = longest prompt + ``max_new_tokens``. Action: Discrete(V).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, backend: LMBackend, tokenizer: Tokenizer, prompts: Sequence[str], *,
                 reward_fn: RewardFn | None = None, kl_coef: float = 0.0,
                 max_new_tokens: int = 32, render_mode: str | None = None):
        self.inner = BatchedTextEnv(backend, tokenizer, prompts, reward_fn=reward_fn,
                                    kl_coef=kl_coef, batch_size=1)
        tok = self.inner.tokenizer
        V, D = self.inner.meta.vocab_size, self.inner.meta.hidden_size
        longest = max(len(tok.encode(p)) + 1 for p in self.inner.prompt_texts)
        self.max_len = longest + max_new_tokens
        big = np.finfo(np.float32).max  # any finite float32: the protocol refuses NaN/inf
        self.observation_space = gym.spaces.Dict({
            "hidden": gym.spaces.Box(-big, big, (D,), np.float32),
            "logits": gym.spaces.Box(-big, big, (V,), np.float32),
            "tokens": gym.spaces.Box(0, V - 1, (self.max_len,), np.int32),
        })
        self.action_space = gym.spaces.Discrete(V)
        self.render_mode = render_mode
        self.eos_id, self.pad_id = tok.eos_id, tok.pad_id

    def _obs(self, s: TokenState) -> dict:
        tokens = np.full(self.max_len, self.pad_id, dtype=np.int32)
        n = min(int(s.lengths[0]), self.max_len)
        tokens[:n] = s.tokens[0, :n]
        return {"hidden": s.hidden[0].copy(), "logits": s.logits[0].copy(), "tokens": tokens}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        prompt = (options or {}).get("prompt")
        if prompt is None:
            prompt = self.inner.prompt_texts[int(self.np_random.integers(
                len(self.inner.prompt_texts)))]
        s = self.inner.reset(prompts=[prompt])
        return self._obs(s), {"prompt": prompt}

    def step(self, action):
        s, rewards, done, info = self.inner.step(np.array([int(action)], dtype=np.int32))
        terminated = bool(done[0]) and int(s.tokens[0, s.lengths[0] - 1]) == self.eos_id
        truncated = bool(done[0]) and not terminated
        out = {"completion": self.inner.completions(s)[0]} if done[0] else {}
        return self._obs(s), float(rewards[0]), terminated, truncated, out

    def render(self):
        if self.render_mode == "ansi" and self.inner.state is not None:
            return f"{self.inner.prompts[0]} | {self.inner.completions()[0]}"
        return None

    def close(self):
        self.inner.close()
