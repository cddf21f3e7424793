"""The language model as a Gymnasium environment (book 1.3.1, 2.3.1, 3.1.2-3.1.3).

State s_t = the token prefix (seen through the LM's last hidden state and its next-token logits);
action a_t = the next token; the episode ends at ``<eos>`` (terminated) or at the length limit
(truncated). The reward is ``reward_fn(prompt, completion)`` when the episode ends, plus an
optional per-step term ``kl_coef * log pi_ref(a_t | s_t)``: the reference half of the KL penalty
-beta (log pi - log pi_ref). The other half, beta * log pi, is the policy's own entropy, which
only the policy knows; a trainer adds it as an entropy bonus with the same coefficient, and the
two make the exact KL penalty in expectation.

* :class:`BatchedTextEnv` steps B sequences per Torch forward and speaks the protocol's messages.
* :class:`TextGenerationEnv` is the single-sequence ``gymnasium.Env``, registered as
  ``rlaif/TextGeneration-v0`` (``gymnasium.make("rlaif/TextGeneration-v0", checkpoint=...)``).

The LM runs in this process (``process="inproc"``) or in a child process (``"child"``). This
module imports NumPy and Gymnasium only; the Torch side is imported when a backend is built.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import gymnasium as gym
import numpy as np

from .protocol import ActionBatch, TokenState

RewardFn = Callable[[Sequence[str], Sequence[str]], np.ndarray]


def gold_reward(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    """The corpus's graded gold score of prompt + completion (the default reward)."""
    from lm_torch.grammar import gold_score  # pure Python: no torch

    return np.array([gold_score(f"{p} {c}".strip()) for p, c in zip(prompts, completions)],
                    dtype=np.float32)


def default_prompts() -> list[str]:
    """The held-out prompts of the built-in corpus (pure Python: no torch)."""
    from lm_torch.corpus import CorpusConfig, build_corpus

    corpus = build_corpus(CorpusConfig(n_train=1, n_val=1, n_prompts=200))
    return [r.prompt for r in corpus.prompts]


def make_backend(checkpoint: str | os.PathLike | None = None, process: str = "inproc",
                 max_new_tokens: int = 32, **kwargs):
    """An LM backend for ``checkpoint`` (default: the built-in one), here or in a child."""
    if checkpoint is None:
        from lm_torch.pretrain import builtin_checkpoint

        checkpoint = builtin_checkpoint()
    if process == "inproc":
        from lm_torch.backend import LMBackend

        return LMBackend.from_checkpoint(checkpoint, max_new_tokens=max_new_tokens)
    if process == "child":
        from .child import ChildBackend

        return ChildBackend(checkpoint, max_new_tokens=max_new_tokens, **kwargs)
    raise ValueError(f"process must be 'inproc' or 'child', not {process!r}")


def _tokenizer_for(backend, checkpoint):
    tok = getattr(backend, "tokenizer", None)
    if tok is not None:
        return tok
    from lm_torch.pretrain import builtin_checkpoint
    from lm_torch.tokenizer import load_tokenizer  # HF tokenizers: no torch

    ck = checkpoint if checkpoint is not None else builtin_checkpoint()
    return load_tokenizer(os.path.join(ck, "tokenizer.json"))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


class BatchedTextEnv:
    """B sequences at once: ``reset() -> TokenState``; ``step(actions) -> (state, r, done, info)``.

    ``rewards[b]`` is the per-step KL term while row b runs, plus ``reward_fn`` in the step where
    it finishes; rows already finished get 0.
    """

    def __init__(self, backend=None, *, checkpoint=None, tokenizer=None,
                 prompts: Sequence[str] | None = None, reward_fn: RewardFn | None = None,
                 kl_coef: float = 0.0, batch_size: int = 16, process: str = "inproc",
                 max_new_tokens: int = 32, seed: int | None = None):
        self.backend = backend if backend is not None else make_backend(
            checkpoint, process, max_new_tokens)
        self.tokenizer = tokenizer or _tokenizer_for(self.backend, checkpoint)
        self.prompt_texts = list(prompts) if prompts is not None else default_prompts()
        if not self.prompt_texts:
            raise ValueError("prompts must not be empty")
        self.reward_fn = reward_fn or gold_reward
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
        tok = self.tokenizer
        ids = [[tok.bos_id] + tok.encode(p) for p in self.prompts]
        self.prompt_lengths = np.array([len(p) for p in ids])
        self.state = self.backend.reset(ids)
        return self.state

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

    def __init__(self, checkpoint: str | os.PathLike | None = None, backend=None,
                 prompts: Sequence[str] | None = None, reward_fn: RewardFn | None = None,
                 kl_coef: float = 0.0, max_new_tokens: int = 32, process: str = "inproc",
                 render_mode: str | None = None):
        self.inner = BatchedTextEnv(backend, checkpoint=checkpoint, prompts=prompts,
                                    reward_fn=reward_fn, kl_coef=kl_coef, batch_size=1,
                                    process=process, max_new_tokens=max_new_tokens)
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
