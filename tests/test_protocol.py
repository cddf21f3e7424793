"""The bridge protocol: valid messages round-trip; malformed payloads raise BridgeError, only."""

import io
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bridge.protocol import (
    ActionBatch,
    BridgeError,
    DecodeError,
    DTypeError,
    FeedbackBatch,
    Meta,
    MetadataError,
    NonFiniteError,
    RangeError,
    ShapeError,
    TokenState,
)

META = Meta(vocab_size=50, hidden_size=8, fingerprint="abc123")
finite = st.floats(-1e6, 1e6, width=32)


@st.composite
def token_states(draw):
    B, T = draw(st.integers(1, 6)), draw(st.integers(1, 10))
    tokens = draw(hnp.arrays(np.int32, (B, T), elements=st.integers(0, 49)))
    lengths = draw(hnp.arrays(np.int32, (B,), elements=st.integers(1, T)))
    hidden = draw(hnp.arrays(np.float32, (B, 8), elements=finite))
    logits = draw(hnp.arrays(np.float32, (B, 50), elements=finite))
    done = draw(hnp.arrays(np.bool_, (B,)))
    return TokenState(tokens, lengths, hidden, logits, done, META)


@st.composite
def feedback(draw):
    B, K = draw(st.integers(0, 6)), draw(st.integers(1, 4))
    names = tuple(draw(st.lists(st.text(min_size=1, max_size=8), min_size=K, max_size=K,
                                unique=True)))
    return FeedbackBatch(draw(hnp.arrays(np.float32, (B, K), elements=finite)), names, META)


@given(token_states())
@settings(max_examples=100, deadline=None)
def test_token_state_round_trips(msg):
    back = TokenState.from_bytes(msg.to_bytes(), expect=META)
    assert back.equals(msg) and back.meta == META
    for k in msg.arrays:
        assert getattr(back, k).dtype == getattr(msg, k).dtype


@given(hnp.arrays(np.int32, st.integers(0, 20), elements=st.integers(0, 49)), feedback())
@settings(max_examples=100, deadline=None)
def test_action_and_feedback_round_trip(actions, fb):
    a = ActionBatch(actions, META)
    assert ActionBatch.from_bytes(a.to_bytes(), expect=META).equals(a)
    assert FeedbackBatch.from_bytes(fb.to_bytes()).equals(fb)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _meta(kind="TokenState", **over):
    import json

    m = {"kind": kind, "schema_version": 1, "vocab_size": 50, "hidden_size": 8,
         "fingerprint": "abc123", **over}
    return np.frombuffer(json.dumps(m).encode(), np.uint8)


def _valid_parts(B=3, T=5):
    return dict(tokens=np.ones((B, T), np.int32), lengths=np.full(B, T, np.int32),
                hidden=np.zeros((B, 8), np.float32), logits=np.zeros((B, 50), np.float32),
                done=np.zeros(B, bool))


FIELD_MUTATIONS = {
    "dtype": lambda p, f, d: {**p, f: p[f].astype(np.float64 if p[f].dtype != np.float64
                                                   else np.int64)},
    "shape": lambda p, f, d: {**p, f: np.repeat(p[f][..., None], 2, axis=-1)},
    "rows": lambda p, f, d: {**p, f: p[f][:-1]},
    "nan": lambda p, f, d: {**p, f: np.full_like(p[f], np.nan)} if p[f].dtype.kind == "f"
    else {**p, f: np.full_like(p[f], 10**6) if p[f].dtype.kind == "i" else p[f][:1]},
    "object": lambda p, f, d: {**p, f: np.array([{"x": 1}] * len(p[f]), dtype=object)},
    "missing": lambda p, f, d: {k: v for k, v in p.items() if k != f},
    "extra": lambda p, f, d: {**p, "surprise": np.zeros(1)},
}


@given(st.sampled_from(sorted(FIELD_MUTATIONS)), st.sampled_from(list(TokenState.arrays)),
       st.data())
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_malformed_fields_raise_bridge_errors(mutation, field, data):
    parts = FIELD_MUTATIONS[mutation](_valid_parts(), field, data)
    try:
        payload = _npz(__meta__=_meta(), **parts)
    except ValueError:  # numpy itself refused to build it
        return
    with pytest.raises(BridgeError):
        TokenState.from_bytes(payload, expect=META)


@given(token_states(), st.data())
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_truncated_or_corrupted_bytes_raise_bridge_errors(msg, data):
    raw = bytearray(msg.to_bytes())
    how = data.draw(st.sampled_from(["truncate", "flip", "garbage"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= data.draw(st.integers(1, 255))
    else:
        raw = bytearray(data.draw(st.binary(max_size=300)))
    try:
        back = TokenState.from_bytes(bytes(raw), expect=META)
    except BridgeError:
        return
    # a flip that lands where it changes nothing (zip padding) must still decode to valid data
    back.validate()


@given(hnp.arrays(np.int32, st.integers(1, 10), elements=st.integers(-1000, 1000)))
@settings(max_examples=200, deadline=None)
def test_actions_out_of_range_are_refused(actions):
    payload = _npz(__meta__=_meta("ActionBatch"), actions=actions)
    if actions.min() >= 0 and actions.max() < 50:
        ActionBatch.from_bytes(payload)
    else:
        with pytest.raises(RangeError, match="actions"):
            ActionBatch.from_bytes(payload)


def test_specific_errors_name_the_field():
    p = _valid_parts()
    with pytest.raises(DTypeError, match="'tokens': expected int32, got int64"):
        TokenState.from_bytes(_npz(__meta__=_meta(), **{**p, "tokens": p["tokens"]
                                                        .astype(np.int64)}))
    with pytest.raises(ShapeError, match="'logits'.*V, the vocabulary size"):
        TokenState.from_bytes(_npz(__meta__=_meta(), **{**p, "logits": np.zeros((3, 49),
                                                                                  np.float32)}))
    with pytest.raises(NonFiniteError, match="'hidden'"):
        TokenState.from_bytes(_npz(__meta__=_meta(), **{**p, "hidden": np.full((3, 8), np.inf,
                                                                                 np.float32)}))
    with pytest.raises(MetadataError, match="fingerprint"):
        TokenState.from_bytes(_npz(__meta__=_meta(fingerprint="other"), **p), expect=META)
    with pytest.raises(MetadataError, match="vocab_size"):
        TokenState.from_bytes(_npz(__meta__=_meta(vocab_size=51), **p), expect=META)
    with pytest.raises(DecodeError, match="entries"):
        ActionBatch.from_bytes(_npz(__meta__=_meta(), **p))
    with pytest.raises(DecodeError):
        TokenState.from_bytes(pickle.dumps(p))
    with pytest.raises(DecodeError):
        TokenState.from_bytes("not bytes")  # type: ignore[arg-type]


def test_pickled_object_arrays_are_never_loaded():
    """An object-dtype entry (numpy would unpickle it) is refused before it is read."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, arr in {**_valid_parts(), "__meta__": _meta()}.items():
            b = io.BytesIO()
            np.save(b, arr)
            zf.writestr(f"{name}.npy", b.getvalue())
        from bridge.npz import npy_header

        pickled = npy_header(np.dtype(object), (1,)) + pickle.dumps(["not data: code"])
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("tokens.npy", pickled)  # a second tokens entry, of pickled objects
    with pytest.raises(BridgeError):
        TokenState.from_bytes(buf.getvalue())


def test_feedback_validation():
    with pytest.raises(ShapeError, match="one column per source"):
        FeedbackBatch(np.zeros((2, 3), np.float32), ("a", "b"), META)
    with pytest.raises(NonFiniteError, match="'scores'"):
        FeedbackBatch(np.array([[np.nan]], np.float32), ("judge",), META)
    with pytest.raises(BridgeError, match="unique"):
        FeedbackBatch(np.zeros((1, 2), np.float32), ("a", "a"), META)


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]),
                       hnp.arrays(st.sampled_from([np.int32, np.float32, np.bool_, np.uint8]),
                                  hnp.array_shapes(min_dims=0, max_dims=3, max_side=5)),
                       max_size=3))
@settings(max_examples=100, deadline=None)
def test_npz_codec_is_numpys_npz_both_ways(arrays):
    from bridge.npz import read_npz, write_npz

    ours = write_npz(arrays)
    with np.load(io.BytesIO(ours), allow_pickle=False) as theirs:  # numpy reads ours
        assert set(theirs.files) == set(arrays)
        for k, v in arrays.items():
            np.testing.assert_array_equal(theirs[k], v)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # and we read numpy's (zip64 records: the zipfile path)
    for payload in (ours, buf.getvalue()):
        back = read_npz(payload)
        assert set(back) == set(arrays)
        for k, v in arrays.items():
            assert back[k].dtype == v.dtype and back[k].shape == v.shape
            np.testing.assert_array_equal(back[k], v)


def test_a_lone_pickled_entry_is_refused_as_a_dtype():
    from bridge.npz import NpzError, npy_header, parse_npy

    raw = npy_header(np.dtype(object), (1,)) + pickle.dumps(["payload"])
    with pytest.raises(NpzError, match="never objects"):
        parse_npy(memoryview(raw))


@pytest.mark.parametrize("key, value", [
    ("vocab_size", "Infinity"), ("vocab_size", "NaN"), ("vocab_size", "50.9"),
    ("vocab_size", "50.0"), ("vocab_size", "9" * 200), ("vocab_size", "true"),
    ("hidden_size", '"8"'), ("schema_version", '"1"'), ("schema_version", "1.5"),
    ("schema_version", "true"), ("schema_version", "2"), ("fingerprint", "123"),
])
def test_metadata_types_are_strict(key, value):
    """JSON integers are integers (never bools, floats, NaN or Infinity), strings are strings,
    and the schema version is exactly the int: each refusal names the key."""
    import json

    text = json.dumps({**json.loads(_meta().tobytes()), key: "@@"}).replace('"@@"', value)
    payload = _npz(__meta__=np.frombuffer(text.encode(), np.uint8), **_valid_parts())
    with pytest.raises(MetadataError, match=f"'{key}'"):
        TokenState.from_bytes(payload, expect=META)


def test_hostile_envelopes_are_refused_with_what_was_wrong():
    good = TokenState(**_valid_parts(), meta=META).to_bytes()
    with pytest.raises(DecodeError, match="after the end of the zip"):
        TokenState.from_bytes(good + b"junk")
    with pytest.raises(DecodeError, match="exceeds the limit"):
        TokenState.from_bytes(good, max_bytes=len(good) - 1)
    with pytest.raises(DecodeError, match="nested too deeply"):
        TokenState.from_bytes(_npz(__meta__=np.frombuffer(b"[" * 5000 + b"]" * 5000, np.uint8),
                                   **_valid_parts()))
    from bridge.npz import NpzError, parse_npy

    for shape in ("(True, 18)", "(0, 100000000000000000000)", f"({'9' * 200}, 5)", "(-1,)"):
        text = f"{{'descr': '<i4', 'fortran_order': False, 'shape': {shape}}}\n".encode()
        with pytest.raises(NpzError, match="shape"):
            parse_npy(memoryview(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text))
    for n in range(1, 8):  # a header-length field too short for any header
        with pytest.raises(NpzError, match=".npy header"):
            parse_npy(memoryview(b"\x93NUMPY\x01\x00" + n.to_bytes(2, "little") + b"{" * 70))


def test_decoding_views_the_payload_without_copies():
    """The fast path (DESIGN.md: the bridge contract) returns read-only views of the bytes."""
    msg = TokenState(**_valid_parts(), meta=META)
    back = TokenState.from_bytes(bytearray(msg.to_bytes()), expect=META)
    assert back.equals(msg)
    for k in msg.arrays:
        arr = getattr(back, k)
        assert not arr.flags.owndata and not arr.flags.writeable, k
