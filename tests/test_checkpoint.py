"""Checkpoints: exact round trip, specific errors for bad files, nothing half-written."""

import json
import shutil

import pytest
import torch

from lm_torch.checkpoint import load_checkpoint, save_checkpoint
from lm_torch.io import CheckpointError
from lm_torch.model import GPT, GPTConfig
from lm_torch.tokenizer import CharTokenizer


@pytest.fixture
def saved(tmp_path, tiny_tokenizer):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tiny_tokenizer.vocab_size, block_size=16, n_layer=1,
                          n_head=2, n_embd=16))
    path = save_checkpoint(tmp_path / "ck", model, tiny_tokenizer, meta={"step": 3})
    return path, model


def test_round_trip(saved):
    path, model = saved
    ck = load_checkpoint(path)
    x = torch.randint(0, 100, (2, 8))
    torch.testing.assert_close(ck.model(x).logits, model(x).logits, rtol=0, atol=0)
    assert ck.meta["step"] == 3
    assert ck.model.lm_head.weight is ck.model.wte.weight  # tying survives


def test_missing_and_corrupt(saved, tmp_path):
    path, _ = saved
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    (bad / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
    (bad / "config.json").write_text("{")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(bad)


def test_tokenizer_that_does_not_match_the_model(saved, tmp_path):
    path, _ = saved
    other = tmp_path / "other"
    shutil.copytree(path, other)
    CharTokenizer.train(["abc"]).save(other / "tokenizer.json")
    with pytest.raises(CheckpointError, match="tokenizer .* has 6 tokens but the model expects"):
        load_checkpoint(other)


def test_a_failed_save_keeps_the_old_checkpoint(saved, tiny_tokenizer, monkeypatch):
    path, model = saved
    before = (path / "model.safetensors").read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(type(tiny_tokenizer), "save", boom)
    with torch.no_grad():
        model.wte.weight += 1
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, tiny_tokenizer, meta={"step": 4})
    assert (path / "model.safetensors").read_bytes() == before
    assert json.loads((path / "config.json").read_text())["step"] == 3
    assert [p.name for p in path.parent.iterdir()] == ["ck"]  # no temp directory left
