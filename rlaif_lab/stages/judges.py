"""Stage ``judges``: the classifier judge, listing 5.1.1's TransformerEncoder trained on the
corpus's labelled records (book 2.3.3, 3.2.1). Writes ``OUT/judges/classifier``."""

from __future__ import annotations

from lm_torch import judges as J

from ..context import RunContext

INPUTS = ("lm.corpus", "judge")
AFTER = ("sft",)


def run(ctx: RunContext) -> dict:
    judge = J.train_classifier_judge(ctx.corpus.train, ctx.sft().tokenizer, ctx.cfg.judge)
    J.save_encoder(ctx.out / "judges" / "classifier", judge.encoder)
    return {"classifier_accuracy": judge.accuracy(ctx.corpus.val)}
