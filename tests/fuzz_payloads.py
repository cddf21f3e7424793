"""Payload builders and the case checker of ``test_fuzz_bridge.py`` (kept apart so each file
stays readable in one sitting)."""

from __future__ import annotations

import io
import json
import struct
import time
import tracemalloc
import zipfile
import zlib

import numpy as np
from hypothesis import HealthCheck, settings

from bridge import npz
from bridge.protocol import (
    ActionBatch,
    BridgeError,
    FeedbackBatch,
    Meta,
    TokenState,
)

MB = 1 << 20
SLOWEST_S = 0.5  # no case may take longer
PEAK_MB = 300  # no decode may allocate more (tracemalloc), no test grow RSS more (psutil)
FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

META = Meta(vocab_size=50, hidden_size=8, fingerprint="abc123")
_rng = np.random.default_rng(0)
STATE = TokenState(tokens=_rng.integers(0, 50, (3, 5), dtype=np.int32),
                   lengths=np.array([5, 3, 1], np.int32),
                   hidden=_rng.standard_normal((3, 8)).astype(np.float32),
                   logits=_rng.standard_normal((3, 50)).astype(np.float32),
                   done=np.array([True, False, True]), meta=META)
ACTIONS = ActionBatch(np.array([1, 2, 49], np.int32), META)
FEEDBACK = FeedbackBatch(np.array([[0.5, -1.0], [2.0, 0.0], [1.0, 1.0]], np.float32),
                         ("judge", "rule"), META)
MESSAGES = (STATE, ACTIONS, FEEDBACK)


_SAME = object()


class Cases:
    """Runs decodes, counts them, and keeps the slowest time and the largest memory peak.

    Each decode is timed with ``time.perf_counter`` and traced with ``tracemalloc`` (started
    for the decode and stopped after it, unless a test traces already): its peak is what the
    decoder itself allocated -- Python objects and NumPy buffers (NumPy reports those to
    tracemalloc); zlib's inflate window (32 KiB) is not traced. Tracing inflates the times
    roughly tenfold, so the 0.5 s bound holds with room to spare.
    """

    def __init__(self):
        self.n, self.slowest, self.peak, self.decoded = 0, 0.0, 0, 0

    def check(self, payload, original, cls=None, expect=_SAME, **kw):
        """Refused with a BridgeError, or decoded to exactly ``original``; anything else fails.
        Returns whether it decoded. ``expect`` is ``original.meta`` unless given."""
        cls = cls or type(original)
        expect = original.meta if expect is _SAME else expect
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        t = time.perf_counter()
        try:
            back = cls.from_bytes(payload, expect=expect, **kw)
        except BridgeError:
            back = None
        finally:  # any other exception propagates and fails the test
            self.slowest = max(self.slowest, time.perf_counter() - t)
            self.peak = max(self.peak, tracemalloc.get_traced_memory()[1] - base)
            if started:
                tracemalloc.stop()
            self.n += 1
        if back is not None:
            assert back.equals(original), f"decoded to another message: {bytes(payload[:60])!r}"
            self.decoded += 1
        return back is not None

    def refuse(self, payload, original, cls=None, **kw) -> None:
        assert not self.check(payload, original, cls, **kw), "a malformed payload decoded"


# --- payload builders --------------------------------------------------------------------------
def zip_payload(entries, *, method=0, prefix=b"", suffix=b"", comment=b"", count=None,
                offsets=None):
    """A zip packed by hand: ``entries`` is ``[(name, body)]`` or ``[(name, body, usize, crc)]``
    with ``body`` stored (method 0) or raw deflate (method 8) -- any lie the caller wants."""
    parts, central, off = [], [], len(prefix)
    for i, entry in enumerate(entries):
        name, body = entry[:2]
        usize, crc = entry[2:] if len(entry) > 2 else (len(body), zlib.crc32(body))
        fname = name.encode()
        at = off if offsets is None else offsets[i]
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 33, crc, len(body),
                            usize, len(fname), 0)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 33,
                                   crc, len(body), usize, len(fname), 0, 0, 0, 0, 0, at) + fname)
        parts += [local, fname, body]
        off += len(local) + len(fname) + len(body)
    cd = b"".join(central)
    n = len(central) if count is None else count
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(cd), off, len(comment))
    return prefix + b"".join(parts) + cd + end + comment + suffix


def raw_entries(msg) -> dict[str, bytes]:
    """The message's entries as raw ``.npy`` bytes, by name (without ``.npy``)."""
    with zipfile.ZipFile(io.BytesIO(msg.to_bytes())) as zf:
        return {n[:-4]: zf.read(n) for n in zf.namelist()}


def with_entry(msg, name: str, raw: bytes) -> bytes:
    """``msg`` as a stored zip with the entry ``name`` replaced by ``raw`` bytes."""
    entries = {**raw_entries(msg), name: raw}
    return zip_payload([(f"{k}.npy", v) for k, v in entries.items()])


def with_meta(msg, text: bytes | str) -> bytes:
    """``msg`` with its ``__meta__`` JSON replaced by ``text``."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    arrays = {k: getattr(msg, k) for k in msg.arrays}
    return npz.write_npz({"__meta__": np.frombuffer(raw, np.uint8), **arrays})


def meta_dict(msg) -> dict:
    return json.loads(npz.read_npz(msg.to_bytes())["__meta__"].tobytes())


def npy(text: str | bytes, body: bytes = b"", version: int = 1, hlen: int | None = None):
    """A ``.npy`` entry with any header text, any header-length field and any body."""
    t = text.encode("utf-8") if isinstance(text, str) else text
    n = len(t) if hlen is None else hlen
    size = n.to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + size + t + body


def encodings(msg) -> dict[str, bytes]:
    """The same message three ways: ours (the fast path), ``np.savez`` (zip64 records) and
    ``np.savez_compressed`` (deflate) -- the last two take the zipfile path."""
    arrays = npz.read_npz(msg.to_bytes())
    plain, packed = io.BytesIO(), io.BytesIO()
    np.savez(plain, **arrays)
    np.savez_compressed(packed, **arrays)
    return {"ours": msg.to_bytes(), "savez": plain.getvalue(), "compressed": packed.getvalue()}


def _deflate_zeros(mib: int) -> bytes:
    """Raw deflate of ``mib`` MiB of zeros, about 1 KB per MiB, built without inflating."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(MB)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)  # the same bytes for every MiB
    return first + block * (mib - 1) + c.flush()


GOOD_HEADER = "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 5), }"


def header_cases() -> list[bytes]:
    """Hostile ``.npy`` entries for the ``tokens`` slot (3 x 5 int32: 60 bytes of data)."""
    body = STATE.tokens.tobytes()
    good = GOOD_HEADER + " " * 3 + "\n"
    texts = [
        "", "{", "}", "{}", "[]", "()", "None", "'x'", "{'descr': '<i4'}", good[:-10],
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 5), 'extra': 1}",
        "{'descr': '<i4', 'descr': '<i4', 'fortran_order': False, 'shape': (3, 5)}",
        "{'descr': '<i4' 'fortran_order': False, 'shape': (3, 5)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 5),, }",
        "{'fortran_order': False, 'shape': (3, 5)}", "{'descr': '<i4', 'shape': (3, 5)}",
        "{descr: '<i4', 'fortran_order': False, 'shape': (3, 5)}",
        "{'descr': '<i4', 'fortran_order': 0, 'shape': (3, 5)}",
        "{'descr': '<i4', 'fortran_order': 'False', 'shape': (3, 5)}",
        "{'descr': '<i4', 'fortran_order': None, 'shape': (3, 5)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': [3, 5]}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': 15}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (15)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (,)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3,, 5)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': ((3,), 5)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (True, 18)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3, True)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (-3, -5)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3.0, 5)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (1e3, 5)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': ('3', 5)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (03, 5)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (0x3, 5)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3_0, 5)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (\u0663, 5)}",  # an Arabic 3
        "{'descr': '<i4', 'fortran_order': False, 'shape': (0, 100000000000000000000)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (0, 1000000000000000000)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (%s, 5)}" % ("9" * 200),
        "{'descr': '<i4', 'fortran_order': False, 'shape': (%s)}" % ("1, " * 33),
        "{'descr': '<i4', 'fortran_order': False, 'shape': (%s)}" % ("2, " * 32),
        "{'descr': '<i4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 6)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 4)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': " + "(" * 3000 + ")" * 3000 + "}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 5), 'x': " + "[" * 900 + "]" * 900
        + "}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (3, 5)}",
        "{'descr': '<c8', 'fortran_order': False, 'shape': (3, 5)}",
        "{'descr': '<U1', 'fortran_order': False, 'shape': (3, 5)}",
        "{'descr': 'V4', 'fortran_order': False, 'shape': (3, 5)}",
        "{'descr': '<M8[s]', 'fortran_order': False, 'shape': (3, 5)}",
        "{'descr': '<i3', 'fortran_order': False, 'shape': (3, 5)}",
        "{'descr': '<i16', 'fortran_order': False, 'shape': (3, 5)}",
        "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (3, 5)}",
        "{'descr': '<i4\\x00', 'fortran_order': False, 'shape': (3, 5)}",
        "{'descr': <i4, 'fortran_order': False, 'shape': (3, 5)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5)}",  # valid npy, wrong dtype
        "{'descr': '>i4', 'fortran_order': False, 'shape': (3, 5)}",  # valid npy, other values
        "{'descr': '<i4', 'fortran_order': True, 'shape': (5, 3)}",  # valid npy, transposed
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 5, 1)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (5, 3)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 5)} trailing",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 5)}}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 5)}\x00",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 5)\x00}",
        "\x00" * 64, "\xff" * 64, "{" * 4000, "[" * 4095 + "\n",
    ]
    out = [npy(t + "\n", body) for t in texts]
    out += [npy(good, body, hlen=n) for n in range(8)]  # the header-length field: 0..7
    out += [npy(good, body, version=2, hlen=n) for n in range(12)]
    out += [npy(good, body, hlen=n) for n in (64 - 10 + 1, 1000, 4097, 65535)]
    out += [npy(good, body, version=2, hlen=n) for n in (2**16, 2**31, 2**32 - 1)]
    out += [npy(good, body, version=v) for v in (0, 4, 255)]  # unknown versions
    out += [b"\x93NUMPY\x01\x01" + npy(good, body)[8:], b"\x93NUMPX" + npy(good, body)[6:]]
    out += [npy(good.encode("latin1") + b"\xff", body, version=3)]  # not UTF-8
    out += [npy(good, body[:-1]), npy(good, body + b"\0"), npy(good), b"", b"\x93NUMPY",
            b"\x93NUMPY\x01\x00", b"\x93NUMPY\x02\x00\x00", body]
    return out


def metadata_cases() -> list[bytes | str]:
    """Hostile ``__meta__`` JSON for a TokenState."""
    good = meta_dict(STATE)

    def j(**over):  # the good metadata with some values replaced by raw JSON text
        text = json.dumps({k: f"@{k}@" if k in over else v for k, v in good.items()})
        for k, v in over.items():
            text = text.replace(f'"@{k}@"', v)
        return text

    bad_int = ["Infinity", "-Infinity", "NaN", "50.9", "50.0", "5e1", '"50"', "true", "false",
               "null", "[50]", '{"v": 50}', "-1", "2147483648", "9" * 200, "1e400", "-0.0"]
    texts = [j(vocab_size=v) for v in bad_int] + [j(hidden_size=v) for v in bad_int]
    texts += [j(schema_version=v) for v in ('"1"', "1.5", "1.0", "true", "2", "0", "null",
                                               "[1]", "Infinity", "9" * 400)]
    texts += [j(fingerprint=v) for v in ("123", "null", '["abc123"]', "true", "NaN")]
    texts += [j(kind=v) for v in ('"ActionBatch"', '"tokenstate"', "5", "null", '["TokenState"]')]
    texts += [
        json.dumps({**good, "extra": 1}), json.dumps({**good, "sources": ["a"]}),
        json.dumps({k: v for k, v in good.items() if k != "fingerprint"}),
        json.dumps({k: v for k, v in good.items() if k != "schema_version"}),
        json.dumps(good)[:-1] + ', "vocab_size": 50}',  # a repeated key
        json.dumps(good)[:-1] + ', "vocab_size": 51}',
        json.dumps(good)[:-1], json.dumps(good) + "x", json.dumps(good) + "{}",
        "[" * 100_000 + "]" * 100_000, "[" * 30_000 + "]" * 30_000,
        '{"kind": ' + "[" * 20_000 + "]" * 20_000 + "}",
        j(fingerprint='{"a": ' * 10_000 + "1" + "}" * 10_000),
        j(fingerprint='"' + "x" * 70_000 + '"'),  # over MAX_META
        "[]", '"TokenState"', "1", "null", "true", "", " ", "\ufeff" + json.dumps(good),
        json.dumps(good).replace('"kind"', '"\\ud800"'), "{\"kind\": \"\\x\"}",
        b"\xff\xfe" + json.dumps(good).encode(), json.dumps(good).encode("utf-16"),
        json.dumps(good).encode()[:-2] + b"\xc3",
    ]
    return texts


def bomb_cases() -> list[tuple[str, bytes, dict]]:
    """(what, payload, from_bytes keywords): payloads that claim or hold far more than the cap."""
    entries = {k: v for k, v in raw_entries(STATE).items()}
    stored = [(f"{k}.npy", v) for k, v in entries.items() if k != "tokens"]
    bomb = _deflate_zeros(3000)  # 3 MB of deflate that inflates to 3000 MiB
    small = _deflate_zeros(1)
    crc_1mib = zlib.crc32(bytes(MB))
    honest = [*stored, ("tokens.npy", bomb, 3000 * MB, 0)]
    liar = [*stored, ("tokens.npy", bomb, 200_000, zlib.crc32(bytes(200_000)))]
    many = [*stored, *[(f"t{i}.npy", small, MB, crc_1mib) for i in range(300)]]
    same = [(f"e{i}.npy", small, MB, crc_1mib) for i in range(300)]
    header = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,)}\n")
    zeros = zlib.compressobj(9, zlib.DEFLATED, -15)
    claimed = zeros.compress(header) + zeros.flush()
    return [
        ("3 MB bomb, honest size", zip_payload(honest, method=8), {}),
        ("3 MB bomb, claims 200 kB", zip_payload(liar, method=8), {}),
        ("300 entries of 1 MiB each", zip_payload(many, method=8), {}),
        ("300 entries over one stream", zip_payload(same, method=8, offsets=[0] * 300), {}),
        ("entry claims 4 GiB",
         zip_payload([*stored, ("tokens.npy", claimed, 2**32 - 1, 0)], method=8), {}),
        ("npy claims 800 GB", with_entry(STATE, "tokens", header), {}),
        ("stored entry claims 4 GiB",
         zip_payload([*stored, ("tokens.npy", b"x" * 100, 2**32 - 1, 0)]), {}),
        ("65535 entries declared", zip_payload(stored, count=65535), {}),
        ("1025 entries", zip_payload([(f"x{i}.npy", entries["done"]) for i in range(1025)]), {}),
        ("bomb under a small cap",
         zip_payload([*stored, ("tokens.npy", small, MB, crc_1mib)], method=8),
         {"max_bytes": 64 * 1024}),
        ("payload over a small cap", STATE.to_bytes(), {"max_bytes": 1000}),
        ("npy shape over a small cap", with_entry(STATE, "tokens", npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1000,)}\n")), {"max_bytes": 4000}),
    ]
