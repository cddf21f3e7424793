"""Training: the same seed gives the same losses; a resumed run continues the same curve."""

import math

import pytest
import torch

from lm_torch.data import PackedLMData, SFTData, encode_stream, unigram_perplexity
from lm_torch.model import GPT, GPTConfig
from lm_torch.train import TrainConfig, lr_at, train

CFG = TrainConfig(max_steps=20, batch_size=8, lr=3e-3, warmup_steps=4, eval_interval=10,
                  eval_batches=2, ckpt_interval=10)


def _setup(tok, corpus, seed=0, dropout=0.1):
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=2,
                          n_embd=32, dropout=dropout))
    stream = encode_stream(tok, corpus.texts()[:500])
    return model, PackedLMData(stream, 32, 8, seed)


def _run(tok, corpus):
    model, data = _setup(tok, corpus)
    return train(model, tok, data, CFG, progress=False)


def test_same_seed_same_losses(tiny_tokenizer, tiny_corpus):
    a, b = _run(tiny_tokenizer, tiny_corpus), _run(tiny_tokenizer, tiny_corpus)
    assert a.losses == b.losses
    assert a.losses[-1] < a.losses[0] - 1.0  # it learns


def test_resume_continues_the_same_curve(tiny_tokenizer, tiny_corpus, tmp_path):
    model, data = _setup(tiny_tokenizer, tiny_corpus)
    full = train(model, tiny_tokenizer, data, CFG, val=data, out_dir=tmp_path / "full",
                 progress=False)
    model, data = _setup(tiny_tokenizer, tiny_corpus)
    first = train(model, tiny_tokenizer, data, CFG, val=data, out_dir=tmp_path / "cut",
                  progress=False, stop_after=13)  # "crash" at step 13; last checkpoint: 10
    assert first.steps_run == 13
    model, data = _setup(tiny_tokenizer, tiny_corpus, seed=0)
    torch.manual_seed(123)  # a different process state must not matter
    rest = train(model, tiny_tokenizer, data, CFG, val=data, out_dir=tmp_path / "cut",
                 progress=False, resume=True)
    assert rest.steps_run == 10
    assert rest.losses == full.losses  # bit-identical on the same machine
    assert rest.evals == full.evals


def test_lr_schedule_warms_up_then_decays():
    cfg = TrainConfig(max_steps=100, lr=1e-3, min_lr=1e-4, warmup_steps=10)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(55, cfg) == pytest.approx(5.5e-4)
    assert lr_at(100, cfg) == pytest.approx(1e-4)


def test_sft_puts_the_loss_on_the_completion_only(tiny_tokenizer):
    tok = tiny_tokenizer
    data = SFTData(tok, [("user : where is my order ? bot :", "no .")], 64, 1)
    x, y = data.batch(0)
    prompt_len = len(tok.encode("user : where is my order ? bot :", bos=True))
    targets = [t for t in y[0].tolist() if t != -100]
    assert targets == tok.encode(" no .", eos=True)
    assert (y[0, : prompt_len - 1] == -100).all()


def test_sft_through_the_same_loop_learns_the_completions(tiny_tokenizer, tiny_corpus):
    model, _ = _setup(tiny_tokenizer, tiny_corpus, dropout=0.0)
    reviews = [r for r in tiny_corpus.train if r.task == "reviews"]  # they fit a 32-token context
    pairs = [(r.prompt, r.completion) for r in reviews[:300]]
    data = SFTData(tiny_tokenizer, pairs, 32, 16)
    res = train(model, tiny_tokenizer, data, TrainConfig(max_steps=60, batch_size=16, lr=3e-3,
                                                         warmup_steps=5), progress=False)
    assert sum(res.losses[-5:]) / 5 < 0.6 * sum(res.losses[:5]) / 5


def test_unigram_perplexity_of_a_uniform_stream():
    import numpy as np

    s = np.arange(10).repeat(100)
    assert unigram_perplexity(s, s, 10) == pytest.approx(10.0)
    assert math.isfinite(unigram_perplexity(s, np.array([3, 3]), 20))
