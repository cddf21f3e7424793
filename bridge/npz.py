"""A strict, fast ``.npz`` codec for the bridge: no pickle, no trust, bounded work, few copies.

``write_npz`` writes an uncompressed zip of ``.npy`` entries -- exactly what ``np.savez`` makes,
and ``np.load(..., allow_pickle=False)`` reads it -- with the zip records packed by hand: the
per-entry cost of :mod:`zipfile` was most of the bridge's time at B = 64.

``read_npz`` reads such bytes back; they may come from another process, so every one of them
is hostile until checked (book 1.3.1 and 3.1.2; DESIGN.md: the bridge contract). Any input
decodes or raises :class:`NpzError` (a ``ValueError``) saying what was wrong -- never another
exception -- and the work done and memory taken before a refusal are bounded by ``max_bytes``:

* the zip: its end record must end the bytes and its entries must tile the bytes before the
  central directory -- no trailing or leading junk, gaps or overlaps, so a payload means one
  thing only; every CRC-32 is checked; at most :data:`MAX_ENTRIES` entries, each a ``.npy`` file
  named once (in at most :data:`MAX_NAME` bytes); only stored or deflated entries.
* sizes, checked *before* anything is allocated or inflated (a 3 MB deflate bomb inflates to
  3 GB): the payload, each entry's declared uncompressed size, their total, and each array's
  shape x itemsize are at most ``max_bytes`` (default :data:`MAX_PAYLOAD`, read at call time:
  set ``bridge.npz.MAX_PAYLOAD`` or pass ``max_bytes``). A deflated entry is inflated in
  steps that stop at its declared size, so a lie about it costs no more than the truth.
* each ``.npy`` header: version 1.0, 2.0 or 3.0, at most :data:`MAX_HEADER` bytes, parsed by a
  small grammar -- never ``ast.literal_eval``, which fails on deep or huge hostile text with
  ``RecursionError`` or ``OverflowError`` -- with exactly the keys ``descr``, ``fortran_order``
  and ``shape``; ``descr`` a bool, integer or float dtype (never objects: no pickle);
  ``shape`` a tuple of at most :data:`MAX_DIMS` non-negative integers (never bools); and the
  data that follows is exactly its size. Bool entries hold only bytes 0 and 1.

The fast path parses a plain stored zip (what ``write_npz`` makes) with ``struct`` and returns
read-only views into the payload; anything else (zip64 records, deflate, comments -- as
``np.savez`` may write) goes to a :mod:`zipfile`-based path with the same checks. Headers of at
most 256 bytes are cached (the same few come back every step); longer ones are not, so refused
payloads leave nothing behind.
"""

from __future__ import annotations

import functools
import io
import re
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .files import ArtefactError, atomic_write_bytes

MAX_PAYLOAD = 256 << 20  #: default cap, in bytes, on a payload, on each entry and on their sum
MAX_ENTRIES = 1024  #: at most this many entries in one ``.npz``
MAX_HEADER = 4096  #: longest ``.npy`` header read (a header is 64 or 128 bytes in practice)
MAX_DIMS = 32  #: most dimensions an array may have
MAX_NAME = 255  #: longest entry name, in bytes (names appear in error messages)

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # signature ... name length, extra length (30 bytes)
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes
_END = struct.Struct("<IHHHHIIH")  # 22 bytes
_SIG_LOCAL, _SIG_CENTRAL, _SIG_END = 0x04034B50, 0x02014B50, 0x06054B50
_DOS_DATE = 0x21  # 1980-01-01: fixed, so the same message always gives the same bytes
_CACHED_HEADER = 256  # only headers this short are cached, so the cache stays under 64 KiB

# what zipfile and struct raise on hostile bytes; each means "not a well-formed zip"
_CORRUPT = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, EOFError,
            OSError, ValueError, LookupError, NotImplementedError, RuntimeError, OverflowError,
            MemoryError)


class NpzError(ValueError):
    """Bytes that are not a well-formed, safe ``.npz``."""


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` version 1.0 header of a C-ordered array."""
    d = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    text = repr(d).encode("latin1")
    text += b" " * (64 - (10 + len(text) + 1) % 64) + b"\n"  # pad the whole header to 64
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


def write_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed ``.npz`` of ``arrays`` (C order), readable by ``np.load``."""
    parts, central, offset = [], [], 0
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if not arr.flags.c_contiguous:
            arr = arr.copy(order="C")
        head = npy_header(arr.dtype, arr.shape)
        body = memoryview(arr.reshape(-1)).cast("B") if arr.size else b""
        crc = zlib.crc32(body, zlib.crc32(head))
        size = len(head) + arr.nbytes
        fname = f"{name}.npy".encode()
        local = _LOCAL.pack(_SIG_LOCAL, 20, 0, 0, 0, _DOS_DATE, crc, size, size, len(fname), 0)
        parts += [local, fname, head, body]
        central.append(_CENTRAL.pack(_SIG_CENTRAL, 20, 20, 0, 0, 0, _DOS_DATE, crc, size, size,
                                     len(fname), 0, 0, 0, 0, 0, offset) + fname)
        offset += len(local) + len(fname) + size
    cd = b"".join(central)
    end = _END.pack(_SIG_END, 0, 0, len(central), len(central), len(cd), offset, 0)
    return b"".join([*parts, cd, end])


def _byte_view(data, limit: int) -> memoryview:
    """``data`` as a flat view of bytes: bytes-likes of any format or stride, nothing else."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise NpzError(f"expected bytes, bytearray or memoryview, got {type(data).__name__}")
    try:
        view = memoryview(data)
        size = view.nbytes
    except ValueError as e:  # a released memoryview
        raise NpzError(f"unreadable buffer: {e}") from None
    if size > limit:
        raise NpzError(f"payload of {size} bytes exceeds the limit of {limit}")
    try:
        return view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
    except (TypeError, ValueError, NotImplementedError) as e:  # an odd format
        raise NpzError(f"unreadable buffer: {e}") from None


def _entries_fast(data: memoryview, limit: int) -> dict[str, memoryview] | None:
    """Entries of a plain stored zip as views; None when the zip has features this path skips."""
    n = len(data)
    if n < _END.size:
        raise NpzError(f"{n} bytes is too short for a zip (at least {_END.size})")
    sig, disk, cd_disk, count, total, cd_size, cd_off, comment = _END.unpack_from(data, n - 22)
    if sig != _SIG_END or comment or disk or cd_disk or count != total:
        return None
    if count > MAX_ENTRIES:
        raise NpzError(f"zip declares {count} entries; at most {MAX_ENTRIES}")
    cd_end = n - 22
    if cd_off + cd_size != cd_end:
        raise NpzError("zip central directory does not end where the end record says")
    out: dict[str, memoryview] = {}
    pos, next_entry, used = cd_off, 0, 0
    for _ in range(count):
        if pos + _CENTRAL.size > cd_end:
            raise NpzError("zip central directory is truncated")
        (sig, _, _, flags, method, _, _, crc, csize, usize, nlen, xlen, clen, _, _, _,
         off) = _CENTRAL.unpack_from(data, pos)
        if sig != _SIG_CENTRAL:
            raise NpzError("bad zip central directory record")
        if flags or method or xlen or clen or csize != usize or 0xFFFFFFFF in (csize, off):
            return None  # encryption, compression, zip64 or extras: the zipfile path judges
        if pos + 46 + nlen > cd_end:
            raise NpzError("zip central directory is truncated (in a name)")
        if nlen > MAX_NAME:
            raise NpzError(f"zip entry name of {nlen} bytes; at most {MAX_NAME}")
        raw_name = bytes(data[pos + 46: pos + 46 + nlen])
        name = raw_name.decode("utf-8", "strict")
        pos += 46 + nlen
        if off != next_entry:  # np.savez and write_npz leave no gap, nothing before or over
            raise NpzError(f"zip entry {name!r} starts at byte {off}, not at {next_entry} where "
                           "the previous one ends (leading junk, a gap or an overlap)")
        if off + _LOCAL.size > cd_off:
            raise NpzError(f"zip entry {name!r} starts past the data")
        lsig, _, lflags, lmethod, _, _, lcrc, lcsize, lusize, lnlen, lxlen = \
            _LOCAL.unpack_from(data, off)
        start = off + 30 + lnlen + lxlen
        if lsig != _SIG_LOCAL or start + csize > cd_off:
            raise NpzError(f"zip entry {name!r} is truncated or misplaced")
        if ((lflags, lmethod, lcrc) != (0, 0, crc) or data[off + 30: off + 30 + lnlen] != raw_name
                or (lcsize, lusize) not in ((csize, usize), (0xFFFFFFFF,) * 2)):  # or zip64
            raise NpzError(f"zip entry {name!r}: local header disagrees with the directory")
        used += usize
        if used > limit:
            raise NpzError(f"zip entries hold more than the limit of {limit} bytes")
        body = data[start: start + csize]
        if zlib.crc32(body) != crc:
            raise NpzError(f"zip entry {name!r} fails its CRC-32 check (corrupt bytes)")
        if name in out:
            raise NpzError(f"zip entry {name!r} appears twice")
        out[name] = body
        next_entry = start + csize
    if pos != cd_end:
        raise NpzError(f"{cd_end - pos} stray bytes in the zip central directory")
    if next_entry != cd_off:
        raise NpzError(f"{cd_off - next_entry} stray bytes before the zip central directory")
    return out


def _check_zip_end(data: memoryview) -> int:
    """Where the end record is found as :mod:`zipfile` finds it; refuses bytes after it."""
    n = len(data)
    lo = max(0, n - _END.size - 0xFFFF)  # the end record and a comment of at most 64 KiB
    at = bytes(data[lo:]).rfind(b"PK\x05\x06")
    if at < 0 or lo + at + _END.size > n:
        raise NpzError("no zip end record (not a zip, or truncated)")
    at += lo
    *_, count, _, _, _, comment = _END.unpack_from(data, at)
    if at + _END.size + comment != n:
        raise NpzError(f"{n - at - _END.size - comment} bytes after the end of the zip "
                       "(trailing junk or a truncated comment)")
    if MAX_ENTRIES < count < 0xFFFF:
        raise NpzError(f"zip declares {count} entries; at most {MAX_ENTRIES}")
    return at


def _entries_zipfile(data: memoryview, limit: int) -> dict[str, memoryview]:
    """Entries of any zip of stored or deflated ``.npy`` files, read in bounded steps."""
    _check_zip_end(data)
    whole = data.obj if type(data.obj) is bytes and len(data.obj) == len(data) else data.tobytes()
    out: dict[str, memoryview] = {}
    with zipfile.ZipFile(io.BytesIO(whole)) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise NpzError(f"zip holds {len(infos)} entries; at most {MAX_ENTRIES}")
        for info in infos:  # every name, size and method before any byte is inflated
            if len(info.orig_filename) > MAX_NAME:
                raise NpzError(f"zip entry name of {len(info.orig_filename)} characters; "
                               f"at most {MAX_NAME}")
            if info.file_size > limit:
                raise NpzError(f"zip entry {info.filename!r} declares {info.file_size} bytes; "
                               f"the limit is {limit}")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise NpzError(f"zip entry {info.filename!r} uses compression method "
                               f"{info.compress_type} (only stored or deflate are read)")
        used = sum(info.file_size for info in infos)
        if used > limit:
            raise NpzError(f"zip entries declare {used} bytes in all; the limit is {limit}")
        next_entry = 0  # each entry starts at or after the end of the one before, the first at 0
        for i, info in enumerate(sorted(infos, key=lambda i: i.header_offset)):
            if info.header_offset < next_entry or (i == 0 and info.header_offset):
                raise NpzError(f"zip entry {info.filename!r} starts at byte "
                               f"{info.header_offset} (leading junk or an overlap)")
            next_entry = info.header_offset + 30 + len(info.orig_filename) + info.compress_size
        for info in infos:
            if info.filename in out:
                raise NpzError(f"zip entry {info.filename!r} appears twice")
            with zf.open(info) as f:  # never inflates past file_size; checks the CRC-32
                body = f.read(info.file_size)
            if len(body) != info.file_size:
                raise NpzError(f"zip entry {info.filename!r} holds {len(body)} bytes, not the "
                               f"{info.file_size} it declares")
            out[info.filename] = memoryview(body)
    return out


_ITEM = re.compile(r"""(['"])(\w{1,32})\1\s*:\s*('[^'\\]{0,32}'|"[^"\\]{0,32}"|True|False|"""
                   r"""\([0-9 ,]{0,800}\))""", re.ASCII)
_SPACE = re.compile(r"\s*", re.ASCII)
_DESCR = re.compile(r"[<>|=]?(?:b1|[iu][1248]|f[248])", re.ASCII)
_HEADER_KEYS = ("descr", "fortran_order", "shape")


def _parse_header(head: bytes) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of a whole ``.npy`` header, by a grammar of its dict."""
    text = head[10 if head[6] == 1 else 12:].decode("utf-8" if head[6] == 3 else "latin1")
    s = text.strip(" \t\r\n")
    if len(s) < 2 or s[0] != "{" or s[-1] != "}":
        raise NpzError(f"bad .npy header {s[:80]!r}: expected a dict")
    fields: dict[str, str] = {}
    pos, end = 1, len(s) - 1
    while (pos := _SPACE.match(s, pos, end).end()) < end:
        m = _ITEM.match(s, pos, end)
        if m is None:
            raise NpzError(f"bad .npy header at {s[pos: pos + 40]!r}: expected 'key': value with "
                           "a quoted dtype, True/False or a tuple of integers")
        key, value = m.group(2), m.group(3)
        if key not in _HEADER_KEYS or key in fields:
            raise NpzError(f".npy header key {key!r} is unexpected or repeated "
                           f"(expected each of {_HEADER_KEYS} once)")
        fields[key] = value
        pos = _SPACE.match(s, m.end(), end).end()
        if pos < end:
            if s[pos] != ",":
                raise NpzError(f"bad .npy header at {s[pos: pos + 40]!r}: expected a comma")
            pos += 1
    if len(fields) != 3:
        raise NpzError(f".npy header lacks {sorted(set(_HEADER_KEYS) - set(fields))}")
    descr, fortran, shape_text = fields["descr"], fields["fortran_order"], fields["shape"]
    if descr[0] not in "'\"" or not _DESCR.fullmatch(descr[1:-1]):
        raise NpzError(f"dtype {descr} is not allowed (numeric or bool only, never objects)")
    if fortran not in ("True", "False"):
        raise NpzError(f".npy header fortran_order: expected True or False, got {fortran}")
    if shape_text[0] != "(":
        raise NpzError(f".npy header shape: expected a tuple, got {shape_text}")
    dims = [d.strip() for d in shape_text[1:-1].split(",")]
    if dims == [""]:
        dims = []
    elif dims[-1] == "" and len(dims) > 1:
        dims.pop()  # a trailing comma, as in (3,)
    elif len(dims) == 1:
        raise NpzError(f".npy header shape {shape_text} is not a tuple (a 1-tuple needs a comma)")
    if len(dims) > MAX_DIMS or not all(d.isdigit() and len(d) <= 19 and (d == "0" or d[0] != "0")
                                       for d in dims):
        raise NpzError(f".npy header shape {shape_text[:80]}: expected a tuple of at most "
                       f"{MAX_DIMS} non-negative integers below 10**19")
    return tuple(map(int, dims)), fortran == "True", np.dtype(descr[1:-1])


_parse_header_cached = functools.lru_cache(maxsize=256)(_parse_header)


def parse_npy(raw: memoryview, max_bytes: int | None = None) -> np.ndarray:
    """One ``.npy`` entry as a read-only array viewing ``raw`` (no copy; a copy only for a
    byte order other than the machine's). Its header is checked against the data that follows,
    and its shape x itemsize against ``max_bytes``, before any array is made."""
    limit = MAX_PAYLOAD if max_bytes is None else max_bytes
    if len(raw) < 10 or raw[:6] != b"\x93NUMPY":
        raise NpzError("not a .npy entry (no magic string)")
    if raw[6] not in (1, 2, 3) or raw[7] != 0:
        raise NpzError(f"unsupported .npy version {raw[6]}.{raw[7]}")
    start = 10 if raw[6] == 1 else 12
    if len(raw) < start:
        raise NpzError(".npy entry is truncated in its header length")
    end = start + int.from_bytes(raw[start - (2 if start == 10 else 4): start], "little")
    if end - start > MAX_HEADER:
        raise NpzError(f".npy header of {end - start} bytes; at most {MAX_HEADER}")
    if end > len(raw):
        raise NpzError(".npy header runs past the entry")
    head = bytes(raw[:end])
    try:
        parse = _parse_header_cached if len(head) <= _CACHED_HEADER else _parse_header
        shape, fortran, dtype = parse(head)
    except UnicodeDecodeError as e:
        raise NpzError(f"bad .npy header ({e})") from None
    need = dtype.itemsize
    for d in shape:  # zero-sized dims count as 1: (0, 10**20) is no array numpy can make
        need *= max(d, 1)
        if need > limit:
            raise NpzError(f"shape {shape} of {dtype} needs more than the limit of {limit} bytes")
    size = 0 if 0 in shape else need
    if size != len(raw) - end:
        raise NpzError(f"header says {shape} of {dtype} ({size} bytes) "
                       f"but {len(raw) - end} bytes follow")
    arr = np.frombuffer(raw[end:], dtype=dtype)
    if dtype.kind == "b" and arr.size and arr.view(np.uint8).max() > 1:
        raise NpzError("bool data holds bytes other than 0 and 1")
    arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    if not dtype.isnative:
        return arr.astype(dtype.newbyteorder("="))
    arr.flags.writeable = False
    return arr


def read_npz(data: bytes | bytearray | memoryview,
             max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Every entry of ``data`` as ``{name without .npy: array}``; raises :class:`NpzError`.

    ``max_bytes`` (default :data:`MAX_PAYLOAD`) bounds the payload, each entry, all entries
    together and each array; see the module's docstring for every check."""
    limit = MAX_PAYLOAD if max_bytes is None else max_bytes
    view = _byte_view(data, limit)
    try:
        entries = _entries_fast(view, limit)
        if entries is None:
            entries = _entries_zipfile(view, limit)
    except NpzError:
        raise
    except _CORRUPT as e:
        raise NpzError(f"not a valid .npz (truncated or corrupt): {e!r}"[:300]) from None
    out = {}
    for name, raw in entries.items():
        if not name.endswith(".npy"):
            raise NpzError(f"zip entry {name!r} is not a .npy file")
        try:
            out[name[:-4]] = parse_npy(raw, limit)
        except NpzError as e:
            raise NpzError(f"entry {name!r}: {e}") from None
    return out


def save_arrays(path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to the ``.npz`` file ``path`` atomically (temp file, then rename)."""
    atomic_write_bytes(path, write_npz(arrays))


def load_arrays(path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file written by :func:`save_arrays` (copies, not views);
    ``ArtefactError`` if it is missing or not a well-formed ``.npz``."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"{path} does not exist")
    if path.stat().st_size > MAX_PAYLOAD:
        raise ArtefactError(f"{path} is {path.stat().st_size} bytes; at most {MAX_PAYLOAD}")
    try:
        return {k: np.array(v) for k, v in read_npz(path.read_bytes()).items()}
    except ValueError as e:
        raise ArtefactError(f"{path} is corrupt: {e}") from None
