"""Stage ``judges``: the AI judge, trained on the corpus's labelled records of the run's tasks
(book 2.3.3, 3.2.1): listing 5.1.1's TransformerEncoder as a classifier (``judge.backbone
encoder``, written to ``OUT/judges/classifier``), or -- for the grounded tasks, whose judge must
check a text against its document -- the SFT language model fine-tuned further and calibrated
on good and bad records (``judge.backbone lm``, ``lm_torch.lm_scorer``, ``OUT/judges/lm``).
``done.json`` reports its accuracy on the validation records (and, for the LM judge, the AUC)."""

from __future__ import annotations

from lm_torch import judges as J
from lm_torch.lm_scorer import save_lm_scorer, train_lm_judge

from ..context import RunContext

INPUTS = ("seed", "lm.corpus", "judge")
AFTER = ("sft",)


def run(ctx: RunContext) -> dict:
    val = ctx.corpus.val
    if ctx.cfg.judge.backbone == "lm":
        sft = ctx.sft()
        out = ctx.out / "judges" / "lm"
        judge = train_lm_judge(sft.model, sft.tokenizer, ctx.corpus.train, ctx.cfg.judge, out,
                               progress=ctx.progress)
        save_lm_scorer(out, judge, with_model=False)
        return {"classifier_accuracy": judge.accuracy(val), "judge_auc": judge.auc(val)}
    judge = J.train_classifier_judge(ctx.corpus.train, ctx.sft().tokenizer, ctx.cfg.judge,
                                     device=ctx.device)
    J.save_encoder(ctx.out / "judges" / "classifier", judge.encoder)
    return {"classifier_accuracy": judge.accuracy(val)}
