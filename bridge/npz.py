"""A strict, fast ``.npz`` codec for the bridge: no pickle, no trust, few copies.

``write_npz`` writes an uncompressed zip of ``.npy`` entries -- exactly what ``np.savez`` makes,
and ``np.load(..., allow_pickle=False)`` reads it -- with the zip records packed by hand: the
per-entry cost of :mod:`zipfile` was most of the bridge's time at B = 64.

``read_npz`` reads such bytes back. Its fast path parses the zip's central directory with
``struct``, checks every bound and every CRC-32, and returns views into the payload; anything
it does not expect (zip64 records, compression, comments -- as ``np.savez`` may write) goes to a
:mod:`zipfile`-based path with the same checks. Either way each ``.npy`` header is parsed
(cached: the same few come back every step) and checked against the size of the data that
follows before an array is made; object dtypes are refused. Errors are ``ValueError``
subclasses that :mod:`bridge.protocol` turns into ``DecodeError``.
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib

import numpy as np

MAX_PAYLOAD = 1 << 30  #: refuse payloads (and entries) larger than 1 GiB

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # signature ... name length, extra length (30 bytes)
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes
_END = struct.Struct("<IHHHHIIH")  # 22 bytes
_SIG_LOCAL, _SIG_CENTRAL, _SIG_END = 0x04034B50, 0x02014B50, 0x06054B50
_DOS_DATE = 0x21  # 1980-01-01: fixed, so the same message always gives the same bytes


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


def _entries_fast(data: memoryview) -> dict[str, memoryview] | None:
    """Entries of a plain stored zip as views; None when the zip has features this path skips."""
    n = len(data)
    if n < _END.size:
        raise NpzError(f"{n} bytes is too short for a zip")
    sig, disk, cd_disk, count, total, cd_size, cd_off, comment = _END.unpack_from(data, n - 22)
    if sig != _SIG_END or comment or disk or cd_disk or count != total:
        return None
    if cd_off + cd_size != n - 22:
        raise NpzError("zip central directory does not end where the end record says")
    out: dict[str, memoryview] = {}
    pos = cd_off
    for _ in range(count):
        if pos + _CENTRAL.size > cd_off + cd_size:
            raise NpzError("zip central directory is truncated")
        (sig, _, _, flags, method, _, _, crc, csize, usize, nlen, xlen, clen, _, _, _,
         off) = _CENTRAL.unpack_from(data, pos)
        if sig != _SIG_CENTRAL:
            raise NpzError("bad zip central directory record")
        if flags or method or xlen or clen or csize != usize or csize == 0xFFFFFFFF:
            return None  # encryption, compression, zip64 or extras: let zipfile judge
        name = bytes(data[pos + 46: pos + 46 + nlen]).decode("utf-8", "strict")
        pos += 46 + nlen
        if off + _LOCAL.size > cd_off:
            raise NpzError(f"zip entry {name} starts past the data")
        lsig, *_, lnlen, lxlen = _LOCAL.unpack_from(data, off)
        start = off + 30 + lnlen + lxlen
        if lsig != _SIG_LOCAL or start + csize > cd_off:
            raise NpzError(f"zip entry {name} is truncated or misplaced")
        body = data[start: start + csize]
        if zlib.crc32(body) != crc:
            raise NpzError(f"zip entry {name} fails its CRC-32 check (corrupt bytes)")
        if name in out:
            raise NpzError(f"zip entry {name} appears twice")
        out[name] = body
    return out


def _entries_zipfile(data: bytes) -> dict[str, memoryview]:
    out: dict[str, memoryview] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.file_size > MAX_PAYLOAD:
                raise NpzError(f"zip entry {info.filename} declares {info.file_size} bytes")
            if info.filename in out:
                raise NpzError(f"zip entry {info.filename} appears twice")
            out[info.filename] = memoryview(zf.read(info))
    return out


@functools.lru_cache(maxsize=512)
def _parse_header(head: bytes) -> tuple[tuple, bool, np.dtype]:
    f = io.BytesIO(head)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version in ((2, 0), (3, 0)):
        return np.lib.format.read_array_header_2_0(f)
    raise NpzError(f"unsupported .npy version {version}")


def parse_npy(raw: memoryview) -> np.ndarray:
    """One ``.npy`` entry as a read-only array viewing ``raw`` (no copy)."""
    if len(raw) < 10 or bytes(raw[:6]) != b"\x93NUMPY":
        raise NpzError("not a .npy entry")
    if raw[6] == 1:
        end = 10 + int.from_bytes(raw[8:10], "little")
    else:
        end = 12 + int.from_bytes(raw[8:12], "little")
    if end > len(raw):
        raise NpzError(".npy header runs past the entry")
    try:
        shape, fortran, dtype = _parse_header(bytes(raw[:end]))
    except NpzError:
        raise
    except (ValueError, SyntaxError, TypeError, EOFError, MemoryError) as e:
        raise NpzError(f"bad .npy header ({e})") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise NpzError(f"dtype {dtype} is not allowed (numeric or bool only, never objects)")
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise NpzError(f"shape {shape} is not a tuple of non-negative integers")
    count = int(np.prod(shape, dtype=np.float64)) if shape else 1
    if count * dtype.itemsize != len(raw) - end:
        raise NpzError(f"header says {shape} of {dtype} ({count * dtype.itemsize} bytes) "
                       f"but {len(raw) - end} bytes follow")
    arr = np.frombuffer(raw[end:], dtype=dtype)
    arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    return arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))


def read_npz(data: bytes | bytearray | memoryview) -> dict[str, np.ndarray]:
    """Every entry of ``data`` as ``{name without .npy: array}``; raises :class:`NpzError`."""
    if len(data) > MAX_PAYLOAD:
        raise NpzError(f"payload of {len(data)} bytes exceeds {MAX_PAYLOAD}")
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    try:
        entries = _entries_fast(view)
        if entries is None:
            entries = _entries_zipfile(bytes(view))
    except NpzError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError,
            NotImplementedError, RuntimeError, OverflowError, MemoryError, struct.error,
            UnicodeDecodeError, ValueError) as e:
        raise NpzError(f"not a valid .npz (truncated or corrupt): {e!r}") from None
    out = {}
    for name, raw in entries.items():
        if not name.endswith(".npy"):
            raise NpzError(f"zip entry {name} is not a .npy file")
        try:
            out[name[:-4]] = parse_npy(raw)
        except NpzError as e:
            raise NpzError(f"entry {name}: {e}") from None
    return out
