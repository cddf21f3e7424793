"""Shared fixtures: a small LM pre-trained once per test session, and quiet frameworks."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

TINY = dict(n_layer=2, n_head=2, n_embd=64, block_size=64)


@pytest.fixture(scope="session")
def tiny_corpus():
    from lm_torch.corpus import CorpusConfig, build_corpus

    return build_corpus(CorpusConfig(seed=0, n_train=3000, n_val=200, n_prompts=50))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_corpus):
    from lm_torch.tokenizer import train_tokenizer

    return train_tokenizer("bpe", tiny_corpus.texts(), 512)


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory):
    """A small LM trained for a few hundred steps (about 20 s): checkpoint dir and metrics."""
    from lm_torch.corpus import CorpusConfig
    from lm_torch.model import GPTConfig
    from lm_torch.pretrain import PretrainConfig, run_pretrain
    from lm_torch.train import TrainConfig

    out = tmp_path_factory.mktemp("pretrained")
    cfg = PretrainConfig(seed=0, vocab_size=512, n_eval_samples=200,
                         corpus=CorpusConfig(n_train=6000, n_val=200, n_prompts=50),
                         model=GPTConfig(**TINY),
                         train=TrainConfig(max_steps=450, batch_size=32, lr=4e-3, warmup_steps=20,
                                           eval_interval=50, ckpt_interval=50))
    metrics = run_pretrain(cfg, out, progress=False)
    return out, metrics
