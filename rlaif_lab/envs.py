"""The built-in LM as a Gymnasium environment: the application builds what ``bridge.env`` runs
over (a Torch backend, here or in a child process) and registers ``rlaif/TextGeneration-v0``.

``gymnasium.make("rlaif/TextGeneration-v0", checkpoint=...)`` after ``import rlaif_lab``; with no
checkpoint, the built-in one (a small LM trained once in about 50 s and cached). The default
reward is the corpus's gold score of prompt + completion.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from bridge.child import ChildBackend
from bridge.env import BatchedTextEnv, RewardFn, TextGenerationEnv
from lm_torch import server
from lm_torch.backend import LMBackend
from lm_torch.corpus import CorpusConfig, build_corpus
from lm_torch.pretrain import builtin_checkpoint
from lm_torch.tasks import gold_score
from lm_torch.tokenizer import load_tokenizer

ENV_ID = "rlaif/TextGeneration-v0"


def gold_reward(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    """The corpus's graded gold score of prompt + completion (the default reward)."""
    return np.array([gold_score(f"{p} {c}".strip()) for p, c in zip(prompts, completions)],
                    dtype=np.float32)


def default_prompts() -> list[str]:
    """The held-out prompts of the built-in corpus."""
    corpus = build_corpus(CorpusConfig(n_train=1, n_val=1, n_prompts=200))
    return [r.prompt for r in corpus.prompts]


def make_backend(checkpoint: str | os.PathLike | None = None, process: str = "inproc",
                 max_new_tokens: int = 32, **kwargs):
    """An LM backend for ``checkpoint`` (default: the built-in one), here (``"inproc"``) or in a
    child process (``"child"``; ``kwargs`` go to ``ChildBackend``: timeout, start_timeout)."""
    checkpoint = checkpoint if checkpoint is not None else builtin_checkpoint()
    if process == "inproc":
        return LMBackend.from_checkpoint(checkpoint, max_new_tokens=max_new_tokens)
    if process == "child":
        threads = kwargs.pop("threads", 0)
        return ChildBackend(server.command(checkpoint, max_new_tokens, threads), **kwargs)
    raise ValueError(f"process must be 'inproc' or 'child', not {process!r}")


def _parts(checkpoint, process, max_new_tokens, prompts, backend_kwargs):
    checkpoint = checkpoint if checkpoint is not None else builtin_checkpoint()
    backend = make_backend(checkpoint, process, max_new_tokens, **backend_kwargs)
    tok = load_tokenizer(os.path.join(checkpoint, "tokenizer.json"))
    return backend, tok, list(prompts) if prompts is not None else default_prompts()


def make_batched_env(checkpoint: str | os.PathLike | None = None, *, process: str = "inproc",
                     max_new_tokens: int = 32, prompts: Sequence[str] | None = None,
                     reward_fn: RewardFn | None = None, kl_coef: float = 0.0,
                     batch_size: int = 16, seed: int | None = None,
                     **backend_kwargs) -> BatchedTextEnv:
    """B sequences at once over the LM of ``checkpoint`` (default reward: the gold score)."""
    backend, tok, prompts = _parts(checkpoint, process, max_new_tokens, prompts, backend_kwargs)
    return BatchedTextEnv(backend, tok, prompts, reward_fn=reward_fn or gold_reward,
                          kl_coef=kl_coef, batch_size=batch_size, seed=seed)


def make_text_env(checkpoint: str | os.PathLike | None = None, *, process: str = "inproc",
                  max_new_tokens: int = 32, prompts: Sequence[str] | None = None,
                  reward_fn: RewardFn | None = None, kl_coef: float = 0.0,
                  render_mode: str | None = None, **backend_kwargs) -> TextGenerationEnv:
    """The single-sequence ``gymnasium.Env`` (the entry point of ``rlaif/TextGeneration-v0``)."""
    backend, tok, prompts = _parts(checkpoint, process, max_new_tokens, prompts, backend_kwargs)
    return TextGenerationEnv(backend, tok, prompts, reward_fn=reward_fn or gold_reward,
                             kl_coef=kl_coef, max_new_tokens=max_new_tokens,
                             render_mode=render_mode)
