"""Hostile input, bounded: the bridge's decoders under fuzzing (DESIGN.md: the bridge contract).

Every malformed payload -- truncated at every offset, single bits flipped, hostile ``.npy``
headers, hostile metadata, size bombs, trailing or leading junk, odd buffers and non-bytes -- is
refused with a :class:`BridgeError` subclass. The only payloads allowed to decode are those a
flipped bit (or a rewritten but equivalent header) leaves meaning the same message, and then they
must decode to exactly the original: :meth:`Cases.check` asserts it.

Every case is timed with ``time.perf_counter`` (the slowest must take < 0.5 s). Memory is
measured two ways, each < 300 MB: per case with ``tracemalloc`` -- the peak of traced
allocations (Python objects and NumPy buffers) while it decodes; the size bombs' < 64 MB -- and
per test with ``psutil`` -- the growth of the process's resident set (RSS) from the test's start
to its end, which also catches memory held after a refusal. More than 5 000 malformed payloads
in all: each test asserts its share, and the truncations and bit flips alone are ~45 000. The
file runs in ~20 s on one core.
"""

from __future__ import annotations

import gc
import json
import struct
import tracemalloc

import numpy as np
import psutil
import pytest
from fuzz_payloads import (
    ACTIONS,
    FEEDBACK,
    FUZZ,
    MB,
    MESSAGES,
    PEAK_MB,
    SLOWEST_S,
    STATE,
    Cases,
    bomb_cases,
    encodings,
    header_cases,
    meta_dict,
    metadata_cases,
    npy,
    raw_entries,
    with_entry,
    with_meta,
    zip_payload,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import npz
from bridge.protocol import (
    DecodeError,
    NonFiniteError,
    TokenState,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def cases():
    """A :class:`Cases`; asserts the slowest time, the largest traced peak and the growth of
    RSS when the test ends."""
    process = psutil.Process()
    rss = process.memory_info().rss
    c = Cases()
    yield c
    grew = (process.memory_info().rss - rss) / MB
    print(f"\n{c.n} cases ({c.decoded} decoded to the original), slowest "
          f"{c.slowest * 1e3:.1f} ms, largest traced peak {c.peak / MB:.1f} MB, "
          f"RSS grew {grew:.1f} MB")
    assert c.slowest < SLOWEST_S, f"a case took {c.slowest:.2f} s"
    assert c.peak < PEAK_MB * MB, f"a case's traced peak was {c.peak / MB:.0f} MB"
    assert grew < PEAK_MB, f"RSS grew {grew:.0f} MB"


# --- the tests ---------------------------------------------------------------------------------
def test_truncation_at_every_offset_is_refused(cases):
    for msg in MESSAGES:
        for payload in encodings(msg).values():
            for n in range(len(payload)):
                cases.refuse(payload[:n], msg)
            assert cases.check(payload, msg)  # the whole decodes
    assert cases.n > 10_000


def test_single_bit_flips_are_refused_or_change_nothing(cases):
    """Every bit of our encodings, every 7th of numpy's: a flip is refused (CRC-32, bounds,
    grammar) unless it lands on a byte nothing reads (a zip date), leaving the same message."""
    for msg in MESSAGES:
        for how, payload in encodings(msg).items():
            raw = bytearray(payload)
            for bit in range(0, 8 * len(raw), 1 if how == "ours" else 7):
                raw[bit // 8] ^= 1 << bit % 8
                cases.check(bytes(raw), msg)
                raw[bit // 8] ^= 1 << bit % 8
    assert cases.n > 30_000
    assert cases.decoded < cases.n // 5  # most flips are caught; the rest hit dates, versions


def test_hostile_npy_headers_are_refused(cases):
    headers = header_cases()
    for raw in headers:
        cases.refuse(with_entry(STATE, "tokens", raw), STATE)
        cases.refuse(with_entry(STATE, "__meta__", raw), STATE)
        cases.refuse(with_entry(ACTIONS, "actions", raw), ACTIONS)
    equivalent = ["{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (3, 5)}",
                  "{'shape': (3, 5), 'fortran_order': False, 'descr': '<i4'}",
                  "{ 'descr' : '<i4' ,'fortran_order':False,'shape':( 3 ,5 , ) }",
                  "{'descr': '=i4', 'fortran_order': False, 'shape': (3, 5)}"]
    for text in equivalent:  # the same array, written another way: decodes, and only to it
        assert cases.check(with_entry(STATE, "tokens", npy(text + "\n",
                                                              STATE.tokens.tobytes())), STATE)
    assert cases.n >= 3 * 100


def test_random_npy_headers_are_refused(cases):
    body = STATE.tokens.tobytes()
    literal = st.recursive(
        st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4).map(tuple) | st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["descr", "fortran_order", "shape", "x"]), inner,
                          max_size=4),
        max_leaves=12)
    header = st.one_of(
        st.fixed_dictionaries({"descr": literal | st.sampled_from(["<i4", "|O", "<f4", "i4"]),
                               "fortran_order": literal, "shape": literal}).map(repr),
        literal.map(repr), st.text(max_size=200), st.binary(max_size=200).map(bytes.hex))

    @settings(FUZZ, max_examples=1500)
    @given(header, st.sampled_from([1, 2, 3]), st.booleans())
    def run(text, version, pad):
        raw = npy(text.encode("utf-8", "surrogatepass") + (b" " * 40 + b"\n" if pad else b""),
                   body, version=version)
        cases.check(with_entry(STATE, "tokens", raw), STATE)

    run()
    assert cases.n >= 1000


def test_hostile_metadata_is_refused(cases):
    for text in metadata_cases():
        cases.refuse(with_meta(STATE, text), STATE)
    good = meta_dict(FEEDBACK)
    for sources in ("judge", ["judge"], ["judge", 1], ["judge", ["rule"]], ["judge", "judge"],
                    ["", "rule"], None, {"judge": 1}, ["judge", "rule", "extra"]):
        cases.refuse(with_meta(FEEDBACK, json.dumps({**good, "sources": sources})), FEEDBACK)
    cases.refuse(with_meta(FEEDBACK, json.dumps({k: v for k, v in good.items()
                                                  if k != "sources"})), FEEDBACK)
    arrays = {k: getattr(STATE, k) for k in STATE.arrays}
    meta = np.frombuffer(json.dumps(meta_dict(STATE)).encode(), np.uint8)
    for entry in (meta.astype(np.float64), meta.reshape(1, -1), meta[:1].reshape(()),
                  meta.astype(np.int8), meta.astype(bool)):
        cases.refuse(npz.write_npz({"__meta__": entry, **arrays}), STATE)
    assert cases.n >= 90


def test_random_metadata_is_refused(cases):
    """Any JSON value in place of one metadata key, or as the whole of it: refused unless it
    is the value that was there."""
    good = meta_dict(STATE)
    value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats()
                         | st.text(max_size=10),
                         lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                         max_leaves=8)

    @settings(FUZZ, max_examples=1200)
    @given(st.sampled_from([*good, "whole"]), value)
    def run(key, v):
        text = json.dumps(v if key == "whole" else {**good, key: v}, allow_nan=True)
        cases.check(with_meta(STATE, text), STATE)

    run()
    assert cases.n >= 1000


@pytest.mark.parametrize("what, payload, kw", bomb_cases(), ids=lambda x: x
                         if isinstance(x, str) else "")
def test_size_bombs_are_refused_fast_and_small(cases, what, payload, kw):
    """Refused before inflating: the declared sizes are checked against the cap first; a
    liar is inflated only as far as it claims. Well under 0.5 s and far from its claim."""
    assert len(payload) < 4 * MB
    cases.refuse(payload, STATE, **kw)
    assert cases.slowest < 0.25
    assert cases.peak < 64 * MB  # nowhere near the 3 GB it holds


def test_trailing_and_leading_junk_is_refused(cases):
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0, 0, 0, 0, 0)
    junk = [b"\0", b"x", b"junk", b"\0" * 21, b"\0" * 22, end, end + b"x", b"PK\x05\x06",
            b"\0" * 1000, b"x" * 70_000]
    for msg in MESSAGES:
        for payload in encodings(msg).values():
            for j in junk:
                cases.refuse(payload + j, msg)
                cases.refuse(j + payload, msg)
    stored = [(f"{k}.npy", v) for k, v in raw_entries(STATE).items()]
    assert cases.check(zip_payload(stored, comment=b"a comment"), STATE)  # a comment is in the zip
    cases.refuse(zip_payload(stored, comment=b"a comment", suffix=b"!"), STATE)
    cases.refuse(zip_payload(stored, comment=b"PK\x05\x06" + bytes(18)), STATE)
    cases.refuse(zip_payload(stored, prefix=b"junk"), STATE)  # offsets that count it: still refused
    cases.refuse(zip_payload(stored, method=8), STATE)  # stored bytes that claim to be deflate
    payload = STATE.to_bytes()

    @settings(FUZZ, max_examples=300)
    @given(st.binary(min_size=1, max_size=300), st.booleans())
    def run(j, before):
        cases.refuse(j + payload if before else payload + j, STATE)

    run()
    assert cases.n >= 300


def test_non_bytes_and_odd_buffers(cases):
    payload = STATE.to_bytes()
    for thing in (None, "", payload.decode("latin1"), 0, 3.5, [1, 2], {"a": 1}, object(),
                  np.frombuffer(payload, np.uint8), bytes, ..., b"", bytearray(), memoryview(b""),
                  memoryview(np.zeros((4, 4), np.float64)),
                  memoryview(np.zeros((4, 4), np.uint8, order="F")),
                  memoryview(np.zeros(6, [("a", "<i4"), ("b", "<f8")]))[::2],
                  memoryview(np.array(1.5)), memoryview(payload)[::3], memoryview(payload)[1:]):
        cases.refuse(thing, STATE)
    released = memoryview(payload)
    released.release()
    cases.refuse(released, STATE)
    # the same bytes in any bytes-like form decode to the same message
    doubled = bytes(b for pair in zip(payload, payload) for b in pair)
    pad = payload + b"\0" * (-len(payload) % 8)
    for form in (bytearray(payload), memoryview(payload), memoryview(doubled)[::2],
                 memoryview(doubled)[1::2], memoryview(bytearray(payload))):
        assert cases.check(form, STATE)
    as_doubles = memoryview(np.frombuffer(pad, np.float64))  # format 'd'; zeros pad it
    assert cases.check(as_doubles, STATE) == (len(pad) == len(payload))
    assert cases.check(memoryview(pad).cast("d")[:].cast("B")[: len(payload)], STATE)

    @settings(FUZZ, max_examples=600)
    @given(st.binary(max_size=400) | st.binary(max_size=300).map(
        lambda b: b"PK\x03\x04" + b + payload[-22:]))
    def run(junk):
        cases.refuse(junk, STATE)

    run()
    assert cases.n >= 600


def test_refused_big_payloads_leave_no_memory_behind(cases):
    """Twelve refused ~40 MB messages: nothing stays cached (the metadata cache keys only small
    entries), measured as traced memory still held after they are gone (traced throughout)."""
    arrays = {k: getattr(STATE, k) for k in STATE.arrays}
    good = json.dumps(meta_dict(STATE))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        _refuse_big_payloads(cases, arrays, good)
        gc.collect()
        held = (tracemalloc.get_traced_memory()[0] - before) / MB
    finally:
        tracemalloc.stop()
    assert held < 2, f"{held:.1f} MB still held after refusing the payloads"


def _refuse_big_payloads(cases, arrays, good):
    for i in range(12):
        if i % 2:  # 40 MB of metadata, each different: over MAX_META
            meta = good[:-1].encode() + b', "pad": "' + bytes([48 + i]) * (40 * MB) + b'"}'
            payload = npz.write_npz({"__meta__": np.frombuffer(meta, np.uint8), **arrays})
            del meta
        else:  # 40 MB of logits with one NaN: refused after the metadata is read
            logits = np.zeros((3, 40 * MB // 12), np.float32)
            logits[0, i] = np.nan
            meta = json.dumps({**meta_dict(STATE), "vocab_size": logits.shape[1]}).encode()
            payload = npz.write_npz({"__meta__": np.frombuffer(meta, np.uint8),
                                     **{**arrays, "logits": logits}})
            del logits
        with pytest.raises(DecodeError if i % 2 else NonFiniteError):
            TokenState.from_bytes(payload)  # the error itself, then timed and traced:
        cases.refuse(payload, STATE, expect=None)
        del payload

