"""The GPT: attention paths agree, causality holds, the KV cache reproduces the full forward."""

import pytest
import torch
import torch.nn as nn

from lm_torch.model import GPT, GPTConfig, KVCache, attention_math
from lm_torch.sample import left_pad

CFG = GPTConfig(vocab_size=50, block_size=32, n_layer=2, n_head=4, n_embd=32)


def _model(**kw):
    torch.manual_seed(0)
    return GPT(GPTConfig(**{**CFG.to_dict(), **kw})).eval()


def test_sdpa_and_explicit_math_give_the_same_logits():
    a, b = _model(attn_impl="sdpa"), _model(attn_impl="math")
    b.load_state_dict(a.state_dict())
    x = torch.randint(0, 50, (3, 20))
    torch.testing.assert_close(a(x).logits, b(x).logits, atol=1e-5, rtol=1e-5)
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[0, :5] = False
    torch.testing.assert_close(a(x, key_mask=mask).logits, b(x, key_mask=mask).logits,
                               atol=1e-5, rtol=1e-5)


def test_attention_formula_against_a_hand_computation():
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, 1, 3, 4) for _ in range(3))
    out = attention_math(q, k, v)
    # position 0 may only attend to key 0, so its output is v[0] exactly
    torch.testing.assert_close(out[0, 0, 0], v[0, 0, 0])
    w = torch.softmax((q[0, 0, 2] @ k[0, 0].T) / 2.0, -1)  # sqrt(d_k) = 2
    torch.testing.assert_close(out[0, 0, 2], w @ v[0, 0])


def test_causal_a_later_token_does_not_change_earlier_outputs():
    m = _model()
    x = torch.randint(0, 50, (1, 16))
    y = x.clone()
    y[0, 10] = (y[0, 10] + 1) % 50
    la, lb = m(x).logits, m(y).logits
    torch.testing.assert_close(la[:, :10], lb[:, :10])
    assert not torch.allclose(la[:, 10:], lb[:, 10:])


class BookListing511(nn.Module):
    """Behaves like the book's listing 5.1.1: TransformerEncoderLayers stacked, no mask."""

    def __init__(self, d_model, nhead, num_layers):
        super().__init__()
        self.layers = nn.ModuleList(nn.TransformerEncoderLayer(d_model, nhead, dropout=0.0,
                                                               batch_first=True)
                                    for _ in range(num_layers))

    def forward(self, x, mask=None):
        for layer in self.layers:
            x = layer(x, src_mask=mask, is_causal=mask is not None)
        return x


def test_book_listing_511_without_a_causal_mask_leaks_the_future():
    torch.manual_seed(0)
    enc = BookListing511(16, 2, 2).eval()
    x = torch.randn(1, 8, 16)
    y = x.clone()
    y[0, 6] += 1.0  # change a later position
    with torch.no_grad():
        assert not torch.allclose(enc(x)[0, :6], enc(y)[0, :6])  # earlier outputs move
        causal = nn.Transformer.generate_square_subsequent_mask(8)
        torch.testing.assert_close(enc(x, causal)[0, :6], enc(y, causal)[0, :6])


@pytest.mark.parametrize("attn_impl", ["sdpa", "math"])
def test_kv_cache_decoding_matches_the_full_forward(attn_impl):
    m = _model(attn_impl=attn_impl)
    prompts = [[1, 5, 7, 9], [1, 3], [1, 4, 4, 4, 4, 8]]
    ids, mask, pos = left_pad(prompts, 0)
    cont = torch.randint(3, 50, (3, 10))
    full_ids = torch.cat([ids, cont], 1)
    full_mask = torch.cat([mask, torch.ones_like(cont, dtype=torch.bool)], 1)
    full_pos = torch.cat([pos, pos[:, -1:] + 1 + torch.arange(10)], 1)
    with torch.no_grad():
        full = m(full_ids, key_mask=full_mask, positions=full_pos, return_hidden=True)
        cache = KVCache(m.config, 3, full_ids.shape[1])
        out = m(ids, key_mask=mask, positions=pos, cache=cache, return_hidden=True)
        steps, hiddens = [out.logits[:, -1]], [out.hidden[:, -1]]
        for t in range(10):
            o = m(cont[:, t:t + 1], positions=full_pos[:, ids.shape[1] + t:][:, :1], cache=cache,
                  return_hidden=True)
            steps.append(o.logits[:, -1])
            hiddens.append(o.hidden[:, -1])
    T0 = ids.shape[1]
    torch.testing.assert_close(torch.stack(steps, 1), full.logits[:, T0 - 1:], atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.stack(hiddens, 1), full.hidden[:, T0 - 1:], atol=1e-5,
                               rtol=0)


def test_left_padding_does_not_change_a_row():
    m = _model()
    alone = m(torch.tensor([[1, 5, 7]])).logits[0, -1]
    ids, mask, pos = left_pad([[1, 5, 7], [1, 2, 3, 4, 5, 6]], 0)
    batched = m(ids, key_mask=mask, positions=pos).logits[0, -1]
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=0)


def test_weight_tying_hidden_states_and_limits():
    m = _model()
    assert m.lm_head.weight is m.wte.weight
    out = m(torch.randint(0, 50, (2, 5)), return_hidden=True)
    assert out.logits.shape == (2, 5, 50) and out.hidden.shape == (2, 5, 32)
    torch.testing.assert_close(out.hidden @ m.wte.weight.T, out.logits)
    with pytest.raises(ValueError, match="exceeds the context"):
        m(torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="exceeds block_size"):
        KVCache(m.config, 1, 64)


def test_loss_is_the_book_pretraining_objective():
    """Book 4.1.3: L = -mean_i log P(w_i | w_<i), from log_softmax of the logits."""
    m = _model()
    x = torch.randint(0, 50, (2, 12))
    out = m(x[:, :-1], x[:, 1:])
    logp = torch.log_softmax(out.logits, -1).gather(-1, x[:, 1:, None]).squeeze(-1)
    torch.testing.assert_close(out.loss, -logp.mean())
