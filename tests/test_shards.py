"""A rollout in shards (``bridge.shards``): rows split and merged back in order, a shard's
result round-trips as bytes, and bytes that do not decode to a consistent rollout are refused
with a BridgeError naming the field."""

import numpy as np
import pytest

from bridge.npz import read_npz, write_npz
from bridge.protocol import BridgeError, Meta, TokenState
from bridge.rollout import TokenRollout
from bridge.shards import FIELDS, ShardError, merge, shard_from_bytes, shard_rows, shard_to_bytes

META = Meta(11, 4, "abc123")


def fake_shard(rows: list[int], T: int, seed: int = 0) -> tuple[TokenRollout, TokenState]:
    """A rollout of len(rows) sequences of T steps, the last row finishing a step early."""
    rng = np.random.default_rng(seed)
    B = len(rows)
    mask = np.ones((T, B), bool)
    mask[-1, -1] = False
    ro = TokenRollout(hidden=rng.normal(size=(T, B, 4)).astype(np.float32),
                      ref_logits=rng.normal(size=(T, B, 11)).astype(np.float32),
                      actions=rng.integers(0, 11, (T, B)).astype(np.int32),
                      logp=-rng.random((T, B)).astype(np.float32),
                      ref_logp=-rng.random((T, B)).astype(np.float32),
                      kl_exact=rng.random((T, B)).astype(np.float32), mask=mask)
    lengths = np.full(B, 2 + T, np.int32)
    lengths[-1] -= 1
    tokens = rng.integers(3, 11, (B, 2 + T)).astype(np.int32)
    final = TokenState(tokens, lengths, rng.normal(size=(B, 4)).astype(np.float32),
                       rng.normal(size=(B, 11)).astype(np.float32), np.ones(B, bool), META)
    return ro, final


def test_rows_are_split_in_contiguous_near_equal_shards():
    assert [r.tolist() for r in shard_rows(7, 3)] == [[0, 1, 2], [3, 4], [5, 6]]
    assert [r.tolist() for r in shard_rows(4, 1)] == [[0, 1, 2, 3]]
    for bad in (0, 5):
        with pytest.raises(ValueError, match="shards must be in"):
            shard_rows(4, bad)


def test_merge_puts_shards_back_in_row_order_and_pads_time():
    a, b = fake_shard([0, 1], T=5, seed=1), fake_shard([2], T=3, seed=2)
    ro, final = merge([a, b], pad_id=0)
    assert ro.mask.shape == (5, 3) and ro.hidden.shape == (5, 3, 4)
    np.testing.assert_array_equal(ro.actions[:, :2], a[0].actions)
    np.testing.assert_array_equal(ro.actions[:3, 2], b[0].actions[:, 0])
    assert not ro.mask[3:, 2].any()  # the short shard's missing steps are not running steps
    assert final.tokens.shape == (3, 7) and (final.tokens[2, 5:] == 0).all()
    np.testing.assert_array_equal(final.lengths, np.r_[a[1].lengths, b[1].lengths])


def test_a_shard_round_trips_as_bytes():
    ro, final = fake_shard([0, 1, 2], T=4)
    back, back_final = shard_from_bytes(shard_to_bytes(ro, final), META)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(back, name), getattr(ro, name))
    assert back_final.equals(final)


def tampered(change) -> bytes:
    ro, final = fake_shard([0, 1], T=3)
    entries = {k: np.array(v) for k, v in read_npz(shard_to_bytes(ro, final)).items()}
    change(entries)
    return write_npz(entries)


@pytest.mark.parametrize("change, message", [
    (lambda e: e.pop("logp"), "entries"),
    (lambda e: e.update(logp=e["logp"].astype(np.float64)), "logp must be float32"),
    (lambda e: e.update(mask=e["mask"][:, :1]), "mask must be bool"),
    (lambda e: e.update(hidden=e["hidden"][..., :3]), "hidden must be float32"),
    (lambda e: e.update(kl_exact=np.full_like(e["kl_exact"], np.nan)), "NaN"),
    (lambda e: e.update(actions=np.full_like(e["actions"], 11)), "actions must be token ids"),
    (lambda e: e.update(final=e["final"][:-7]), ""),  # the TokenState's own DecodeError
])
def test_inconsistent_bytes_are_refused(change, message):
    with pytest.raises(BridgeError) as info:
        shard_from_bytes(tampered(change), META)
    assert message in str(info.value)


def test_another_lm_or_junk_is_refused():
    ro, final = fake_shard([0], T=2)
    with pytest.raises(BridgeError, match="fingerprint"):
        shard_from_bytes(shard_to_bytes(ro, final), Meta(11, 4, "other"))
    with pytest.raises(ShardError):
        shard_from_bytes(b"not a zip", META)
