"""Stage ``sft``: supervised fine-tuning on prompt -> completion pairs (book 2.1.3), the loss on
the completion only: every review and dialogue of the corpus (the rude and negative ones too),
and the faithful summaries and correct answers (``Record.for_sft``). The result is frozen: the
environment and the reference policy of RL."""

from __future__ import annotations

from lm_torch.checkpoint import load_checkpoint
from lm_torch.data import SFTData
from lm_torch.train import train

from ..context import RunContext

INPUTS = ("seed", "lm.corpus", "sft")
AFTER = ("pretrain",)


def run(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    ck = load_checkpoint(ctx.out / "pretrain" / "checkpoint", map_location=ctx.device)
    block = ck.model.config.block_size

    def data(records):
        return SFTData(ck.tokenizer, [(r.prompt, r.completion) for r in records if r.for_sft],
                       block, cfg.sft.batch_size, cfg.seed)

    res = train(ck.model, ck.tokenizer, data(ctx.corpus.train), cfg.sft,
                val=data(ctx.corpus.val), out_dir=ctx.out / "sft", seed=cfg.seed, resume=True,
                progress=ctx.progress, log_prefix="sft", meta={"stage": "sft"})
    return {"val": res.evals[-1] if res.evals else None}
