"""Stage ``pretrain``: the built-in corpus, the BPE tokenizer and the GPT, pre-trained with
L(theta) = -sum_i log P(w_i | w_<i) (book 4.1.3). Writes ``OUT/pretrain/checkpoint``."""

from __future__ import annotations

from lm_torch.pretrain import run_pretrain

from ..context import RunContext

INPUTS = ("lm",)
AFTER: tuple[str, ...] = ()


def run(ctx: RunContext) -> dict:
    return run_pretrain(ctx.cfg.lm, ctx.out / "pretrain", resume=True, progress=ctx.progress,
                        device=ctx.device)
