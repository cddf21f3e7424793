"""Shared fixtures: a small LM pre-trained once per test session, and quiet frameworks.

Test tiers are pytest markers (setup.cfg): ``unit``, ``parity``, ``learning``, ``e2e``,
``notebook``. A module declares its tier with ``pytestmark``; a test without one is ``unit``.
``make test-fast`` runs the unit and parity tiers, ``make test`` everything.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def tiny_corpus():
    from lm_torch.corpus import CorpusConfig, build_corpus

    return build_corpus(CorpusConfig(seed=0, n_train=3000, n_val=200, n_prompts=50))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_corpus):
    from lm_torch.tokenizer import train_tokenizer

    return train_tokenizer("bpe", tiny_corpus.texts(), 512)


@pytest.fixture(scope="session")
def builtin_ckpt(tmp_path_factory):
    """The built-in checkpoint (a small LM, about 50 s to train), in a per-session cache."""
    from lm_torch.pretrain import builtin_checkpoint

    cache = tmp_path_factory.mktemp("rlaif-cache")
    os.environ["RLAIF_LAB_CACHE"] = str(cache)  # child processes and gym.make find it too
    return builtin_checkpoint(cache)


@pytest.fixture(scope="session")
def pretrained(builtin_ckpt):
    """The built-in checkpoint's run directory and its metrics."""
    import json

    out = builtin_ckpt.parent
    return out, json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """A whole ``--preset smoke`` run (about 50 s): its directory and summary. Tests copy its
    stages (``run_helpers.reuse``) and never change it."""
    from rlaif_lab.config import preset
    from rlaif_lab.runner import open_run, run_all

    out = tmp_path_factory.mktemp("smoke") / "run"
    summary = run_all(open_run(preset("smoke"), out, progress=False, log=lambda m: None))
    return out, summary


TIERS = ("unit", "parity", "learning", "e2e", "notebook")


def pytest_collection_modifyitems(items):
    for item in items:
        if not any(item.get_closest_marker(t) for t in TIERS):
            item.add_marker(pytest.mark.unit)
