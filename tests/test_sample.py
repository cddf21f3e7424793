"""Sampling: seeded, filters that do what they say, cache and no cache agree, clear errors."""

import pytest
import torch

from lm_torch.model import GPT, GPTConfig
from lm_torch.sample import SampleConfig, filter_logits, generate


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=40, block_size=32, n_layer=2, n_head=2, n_embd=32)).eval()


PROMPTS = [[1, 5, 6], [1], [1, 9, 9, 9, 9]]


def test_same_seed_same_samples_and_cache_agrees(model):
    cfg = SampleConfig(max_new_tokens=12)
    a = generate(model, PROMPTS, cfg, seed=7)
    assert a == generate(model, PROMPTS, cfg, seed=7)
    assert a != generate(model, PROMPTS, cfg, seed=8)
    nocache = generate(model, PROMPTS, SampleConfig(max_new_tokens=12, use_cache=False), seed=7)
    assert a == nocache


def test_top_k_one_is_greedy(model):
    out = generate(model, [[1, 5, 6]], SampleConfig(max_new_tokens=5, top_k=1), eos_id=-1, seed=0)
    ids = [1, 5, 6]
    for _ in range(5):
        ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    assert out[0] == ids[3:]


def test_filters():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    # probabilities 0.64, 0.24, 0.09, 0.03: top-p 0.8 keeps the first two
    kept = ~torch.isinf(filter_logits(logits, top_p=0.8))
    assert kept.tolist() == [[True, True, False, False]]
    assert (~torch.isinf(filter_logits(logits, top_p=0.5))).sum() == 1


def test_rows_stop_at_eos(model):
    eos = int(model(torch.tensor([[1]])).logits[0, -1].argmax())
    out = generate(model, [[1]], SampleConfig(max_new_tokens=10, top_k=1), eos_id=eos, seed=0)
    assert out[0] == [eos]


def test_bad_inputs(model):
    with pytest.raises(ValueError, match="no room in the context"):
        generate(model, [[1] * 32], SampleConfig())
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, [[]], SampleConfig())
    with pytest.raises(ValueError, match="temperature"):
        SampleConfig(temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        SampleConfig(top_p=1.5)
