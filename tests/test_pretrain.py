"""Learning test: a small LM pre-trained on the corpus writes the grammar's sentences."""

import json

import pytest

from lm_torch import grammar
from lm_torch.checkpoint import load_checkpoint
from lm_torch.pretrain import well_formed_rate

pytestmark = pytest.mark.learning


def test_pretraining_learns_the_language(pretrained):
    out, metrics = pretrained
    assert metrics["well_formed_rate"] >= 0.85, metrics
    assert metrics["val_perplexity"] < 0.1 * metrics["unigram_val_perplexity"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["well_formed_rate"] == metrics["well_formed_rate"]
    lines = (out / "samples.txt").read_text().splitlines()
    assert len(lines) == 200 and all(line[:3] in ("ok ", "BAD") for line in lines)


def test_samples_are_reproducible(pretrained):
    out, _ = pretrained
    ck = load_checkpoint(out / "checkpoint")
    a = well_formed_rate(ck.model, ck.tokenizer, 20, seed=5)
    b = well_formed_rate(ck.model, ck.tokenizer, 20, seed=5)
    assert a == b
    assert a[0] == sum(map(grammar.is_well_formed, a[1])) / 20
