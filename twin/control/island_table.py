"""The safety-island table: trigger level -> per-cohort power caps, one binary format.

Tier 3 writes it; the C safety island (``rt_island/``) and the twin's island model
(:mod:`twin.facility.island`) read it. The byte layout, which a small C program parses
with fixed offsets, is documented field by field in ``docs/island_table.md``; in short
(all little-endian):

* a 56-byte header: magic ``b"GTISLAND"``, ``uint32`` version (1), header size (48),
  ``n_levels``, ``n_cohorts``, ``float64`` ``created_s`` and ``expires_s``, ``uint32``
  ``meta_len``, ``payload_len``, payload CRC-32, header CRC-32;
* the payload: ``uint32 level_millihz[n_levels]``, ``uint32 level_kind[n_levels]``
  (0 trigger, 1 release), ``uint32 cohort_id[n_cohorts]``, ``float32
  caps_w[n_levels][n_cohorts]`` (level-major), then ``meta_len`` bytes of UTF-8 JSON.

Reading checks, in this order, and names the first that fails (:attr:`IslandTableError.check`):
``truncated`` (shorter than the header), ``magic``, ``version``, ``header_size``,
``header_crc``, ``counts``, ``length`` (payload length inconsistent with the counts),
``truncated`` / ``trailing`` (file size vs header), ``payload_crc``, ``content`` (levels,
kinds, caps or meta out of their rules). A table that fails any check is refused whole.

The codec (:func:`encode_table`, :func:`decode_table`) is pure; :func:`write_table`
and :func:`read_table` are thin file wrappers (the write is atomic). Nothing here reads
a clock: ``created_s`` and ``expires_s`` are given by the caller and
:meth:`IslandTable.check_fresh` takes ``now_s``.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType

import numpy as np

__all__ = [
    "MAGIC",
    "VERSION",
    "HEADER_SIZE",
    "KIND_TRIGGER",
    "KIND_RELEASE",
    "MAX_LEVELS",
    "MAX_COHORTS",
    "IslandTableError",
    "IslandTable",
    "encode_table",
    "decode_table",
    "encode_decode_table",
    "write_table",
    "read_table",
]

MAGIC = b"GTISLAND"
VERSION = 1
#: '<8sIIIIddIIII': magic, version, header_size, n_levels, n_cohorts, created_s,
#: expires_s, meta_len, payload_len, payload_crc32, header_crc32 (over bytes 0-51).
_HEADER = struct.Struct("<8sIIIIddIIII")
HEADER_SIZE = _HEADER.size  # 56
#: The header without its CRC (the bytes the header CRC-32 covers) and the CRC itself.
_HEAD_BODY, _U32 = struct.Struct("<8sIIIIddIII"), struct.Struct("<I")
KIND_TRIGGER, KIND_RELEASE = 0, 1
_KIND_NAMES = {KIND_TRIGGER: "trigger", KIND_RELEASE: "release"}
_KIND_CODES = {v: k for k, v in _KIND_NAMES.items()}
#: Limits a C reader can rely on (fixed-size buffers).
MAX_LEVELS = 16
MAX_COHORTS = 1 << 20
MAX_META_BYTES = 1 << 16
#: Levels must lie in this open range [Hz] (50 Hz and 60 Hz grids).
LEVEL_RANGE_HZ = (40.0, 70.0)
#: The meta encoder (a constant: what ``json.dumps`` with these options builds per call).
_META_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)


class IslandTableError(ValueError):
    """An island table that cannot be written or read; ``check`` names the failed check."""

    def __init__(self, check: str, message: str):
        super().__init__(f"island table: {check}: {message}")
        self.check = check
        self.detail = message


@dataclass(frozen=True)
class IslandTable:
    """A decoded island table.

    Attributes
    ----------
    version : int
        Format version (1).
    levels_hz : numpy.ndarray
        Level of each row [Hz] (float64, exactly ``level_millihz / 1000``).
    kinds : tuple of str
        ``"trigger"`` (apply when frequency <= level) or ``"release"`` (restore when
        frequency >= level) per row. Triggers come first, strictly decreasing in level.
    cohort_ids : numpy.ndarray
        Identifier of each cohort column (uint32; its meaning, e.g. the GPU index on
        the island's host, is agreed between Tier 3 and the island's configuration).
    caps_w : numpy.ndarray
        Power cap per GPU [W], shape ``(n_levels, n_cohorts)``, float32 as stored.
    created_s, expires_s : float
        Creation time and end of validity [s since 1970-01-01 UTC]; ``expires_s`` may be inf.
    meta : Mapping
        Free JSON object (who wrote it, the Tier-3 operating point, ...).
    payload_crc32 : int
        CRC-32 of the payload, a short identity of the table's content.
    """

    version: int
    levels_hz: np.ndarray
    kinds: tuple[str, ...]
    cohort_ids: np.ndarray
    caps_w: np.ndarray
    created_s: float
    expires_s: float
    meta: Mapping = field(default_factory=dict)
    payload_crc32: int = 0

    @property
    def n_levels(self) -> int:
        return int(self.levels_hz.size)

    @property
    def n_cohorts(self) -> int:
        return int(self.cohort_ids.size)

    def row(self, level_hz: float, kind: str = "trigger") -> np.ndarray:
        """Caps [W per GPU] of the row with exactly this level and kind (compared in mHz)."""
        key = _to_millihz(level_hz, "level_hz")
        for i, (lv, k) in enumerate(zip(self.levels_hz, self.kinds)):
            if k == kind and round(lv * 1000.0) == key:
                return self.caps_w[i]
        have = ", ".join(f"{lv:g} Hz {k}" for lv, k in zip(self.levels_hz, self.kinds))
        raise KeyError(f"no {kind} row at {level_hz:g} Hz in the island table (rows: {have})")

    def trigger_row_index(self, frequency_hz: float) -> int | None:
        """Index of the deepest trigger row whose level the frequency is at or below, or None."""
        hit = None
        for i, (lv, k) in enumerate(zip(self.levels_hz, self.kinds)):
            if k == "trigger" and frequency_hz <= lv:
                hit = i  # triggers are strictly decreasing: the last hit is the deepest
        return hit

    def check_fresh(self, now_s: float) -> None:
        """Raise :class:`IslandTableError` (check ``stale``) if ``now_s`` is past ``expires_s``."""
        if now_s > self.expires_s:
            raise IslandTableError("stale", f"expired at {self.expires_s:.3f} s, now {now_s:.3f} s "
                                            f"(created {self.created_s:.3f} s); Tier 3 must write a new table")


def _to_millihz(level_hz: float, name: str, index: int | None = None) -> int:
    """``level_hz`` in whole mHz; ``name`` (``name[index]`` with an index) names it in the error."""
    x = float(level_hz) * 1000.0
    k = round(x)
    if not math.isfinite(x) or abs(x - k) > 1e-6:
        name = name if index is None else f"{name}[{index}]"
        raise IslandTableError("content", f"{name} = {level_hz!r}: expected a whole number of mHz")
    return int(k)


def _validate(millihz: np.ndarray, kinds: np.ndarray, caps_w: np.ndarray) -> None:
    """Content rules shared by writer and reader (raise check ``content``).

    The level and kind rules run on Python lists (a table has at most 16 rows), the cap
    rules as two whole-array reductions; the offending entry is looked up only on failure.
    ``caps_w`` may be float32 (as stored) or float64: the verdict and the message are the
    same for the same values (comparisons and the sign of a difference are exact in both).
    """
    lo, hi = LEVEL_RANGE_HZ
    mhz, kd = millihz.tolist(), kinds.tolist()
    for m in mhz:
        if not lo * 1000 < m < hi * 1000:
            raise IslandTableError("content", f"level {m / 1000:g} Hz outside ({lo:g}, {hi:g}) Hz")
    bad = [k for k in kd if k not in _KIND_NAMES]
    if bad:
        raise IslandTableError("content", f"level kind {bad[0]}: expected 0 (trigger) or 1 (release)")
    trig = [i for i, k in enumerate(kd) if k == KIND_TRIGGER]
    rel = [i for i, k in enumerate(kd) if k == KIND_RELEASE]
    if not trig:
        raise IslandTableError("content", "no trigger row; expected at least one")
    if len(rel) > 1 or (rel and rel[0] != len(kd) - 1) or trig != list(range(len(trig))):
        raise IslandTableError("content", "rows must be the trigger rows first, then at most one release row")
    if any(mhz[a] <= mhz[b] for a, b in pairwise(trig)):
        raise IslandTableError("content", "trigger levels must strictly decrease (e.g. 49.7, 49.6, 49.5 Hz)")
    if rel and mhz[rel[0]] <= mhz[trig[0]]:
        raise IslandTableError("content", f"release level {mhz[rel[0]] / 1000:g} Hz must lie above the "
                                          f"highest trigger level {mhz[trig[0]] / 1000:g} Hz")
    # every cap finite and > 0: min > 0 and max < inf (a NaN makes the min NaN, which fails)
    if not (caps_w.min() > 0.0 and caps_w.max() < math.inf):
        i, j = np.argwhere(~(np.isfinite(caps_w) & (caps_w > 0.0)))[0]
        raise IslandTableError("content", f"cap[{i}][{j}] = {float(caps_w[i, j])!r} W: expected a finite number > 0")
    if len(trig) > 1:
        tc = caps_w[trig]
        if np.any(np.diff(tc, axis=0) > 0.0):
            i, j = np.argwhere(np.diff(tc, axis=0) > 0.0)[0]
            raise IslandTableError("content", f"cohort {j}: cap rises from {tc[i, j]:g} W at "
                                              f"{mhz[i] / 1000:g} Hz to {tc[i + 1, j]:g} W at the deeper "
                                              f"{mhz[i + 1] / 1000:g} Hz; a deeper level must not raise a cap")


def encode_table(levels_hz: Sequence[float], caps_w, created_s: float, meta: Mapping | None = None, *,
                 kinds: Sequence[str] | None = None, cohort_ids: Sequence[int] | None = None,
                 expires_s: float = math.inf, _version: int = VERSION) -> bytes:
    """The bytes of an island table (layout: ``docs/island_table.md``).

    Parameters
    ----------
    levels_hz : sequence of float
        Level of each row [Hz], a whole number of mHz, e.g. ``(49.7, 49.6, 49.5)``.
    caps_w : array-like, shape (n_levels, n_cohorts)
        Power cap per GPU [W], finite and > 0; stored as float32 (read back bit-exact as
        float32). Trigger rows must not raise a cohort's cap as the level deepens.
    created_s : float
        Creation time [s since 1970-01-01 UTC], given by the caller (no clock is read).
    meta : mapping, optional
        JSON-serialisable object stored with the table (at most 64 KiB encoded).
    kinds : sequence of str, optional
        ``"trigger"`` or ``"release"`` per row; default all ``"trigger"``.
    cohort_ids : sequence of int, optional
        uint32 identifier per cohort column; default ``0 .. n_cohorts - 1``.
    expires_s : float, optional
        End of validity [s since 1970-01-01 UTC], >= ``created_s``; default inf (never).

    Raises
    ------
    IslandTableError
        With ``check == "content"`` or ``"counts"`` naming the offending value.
    """
    return _encode(levels_hz, caps_w, created_s, meta, kinds, cohort_ids, expires_s, _version)[0]


def _encode(levels_hz, caps_w, created_s, meta, kinds, cohort_ids, expires_s, version) -> tuple[bytes, tuple]:
    """:func:`encode_table`'s bytes and what they hold: ``(millihz, kind codes, cohort ids,
    float32 caps, meta bytes, payload CRC-32, created_s, expires_s)``."""
    caps = np.asarray(caps_w, dtype=np.float64)
    if caps.ndim != 2:
        raise IslandTableError("counts", f"caps_w has shape {caps.shape}; expected (n_levels, n_cohorts)")
    n_levels, n_cohorts = caps.shape
    if len(levels_hz) != n_levels:
        raise IslandTableError("counts", f"{len(levels_hz)} levels but caps_w has {n_levels} rows")
    if not 1 <= n_levels <= MAX_LEVELS or not 1 <= n_cohorts <= MAX_COHORTS:
        raise IslandTableError("counts", f"n_levels = {n_levels}, n_cohorts = {n_cohorts}; expected "
                                         f"1..{MAX_LEVELS} and 1..{MAX_COHORTS}")
    millihz = np.array([_to_millihz(v, "levels_hz", i) for i, v in enumerate(levels_hz)], dtype="<u4")
    kinds = ["trigger"] * n_levels if kinds is None else list(kinds)
    if len(kinds) != n_levels or any(k not in _KIND_CODES for k in kinds):
        raise IslandTableError("content", f"kinds = {kinds!r}: expected {n_levels} of 'trigger'/'release'")
    codes = [_KIND_CODES[k] for k in kinds]
    kind_arr = np.array(codes, dtype="<u4")
    if cohort_ids is None:  # 0 .. n_cohorts - 1: in range by the count check
        ids = np.arange(n_cohorts, dtype="<u4")
    else:
        ids = np.asarray(cohort_ids)
        if (ids.shape != (n_cohorts,) or np.any(ids < 0) or np.any(ids > 0xFFFFFFFF)
                or np.any(ids != np.round(ids))):
            raise IslandTableError("content", f"cohort_ids: expected {n_cohorts} integers in 0..2**32-1")
        ids = ids.astype("<u4")
    caps32 = caps.astype("<f4")  # storage precision: float32 (~1e-5 W at 300 W)
    _validate(millihz, kind_arr, caps32)
    created_s, expires_s = float(created_s), float(expires_s)
    if not math.isfinite(created_s) or math.isnan(expires_s) or expires_s < created_s:
        raise IslandTableError("content", f"created_s = {created_s!r}, expires_s = {expires_s!r}: expected "
                                          "finite created_s <= expires_s")
    try:
        meta_bytes = _META_JSON.encode(dict(meta or {})).encode("utf-8")  # = json.dumps(..., same options)
    except (TypeError, ValueError) as exc:
        raise IslandTableError("content", f"meta is not a JSON object: {exc}") from exc
    if len(meta_bytes) > MAX_META_BYTES:
        raise IslandTableError("content", f"meta is {len(meta_bytes)} bytes encoded; at most {MAX_META_BYTES}")
    payload = b"".join((millihz.tobytes(), kind_arr.tobytes(), ids.tobytes(), caps32.tobytes(), meta_bytes))
    payload_crc = zlib.crc32(payload)
    head = _HEAD_BODY.pack(MAGIC, version, HEADER_SIZE, n_levels, n_cohorts, created_s, expires_s,
                           len(meta_bytes), len(payload), payload_crc)
    return (b"".join((head, _U32.pack(zlib.crc32(head)), payload)),
            (millihz, codes, ids, caps32, meta_bytes, payload_crc, created_s, expires_s))


def decode_table(data: bytes) -> IslandTable:
    """Parse and check the bytes of an island table (checks in the module docstring's order).

    Raises
    ------
    IslandTableError
        Naming the first check that failed (``err.check``) and the values involved.
    """
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise IslandTableError("truncated", f"{len(data)} bytes; the header alone is {HEADER_SIZE}")
    (magic, version, header_size, n_levels, n_cohorts, created_s, expires_s, meta_len, payload_len,
     payload_crc, header_crc) = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise IslandTableError("magic", f"starts with {magic!r}; expected {MAGIC!r} (not an island table)")
    if version != VERSION:
        raise IslandTableError("version", f"version {version}; this reader reads version {VERSION}")
    if header_size != HEADER_SIZE:
        raise IslandTableError("header_size", f"header size {header_size}; version {VERSION} has {HEADER_SIZE}")
    crc = zlib.crc32(memoryview(data)[:HEADER_SIZE - 4])
    if crc != header_crc:
        raise IslandTableError("header_crc", f"header CRC-32 is {crc:#010x}, stored {header_crc:#010x} "
                                             "(header corrupted)")
    if not 1 <= n_levels <= MAX_LEVELS or not 1 <= n_cohorts <= MAX_COHORTS or meta_len > MAX_META_BYTES:
        raise IslandTableError("counts", f"n_levels = {n_levels}, n_cohorts = {n_cohorts}, meta_len = {meta_len}; "
                                         f"expected 1..{MAX_LEVELS}, 1..{MAX_COHORTS}, <= {MAX_META_BYTES}")
    expected = 4 * (2 * n_levels + n_cohorts + n_levels * n_cohorts) + meta_len
    if payload_len != expected:
        raise IslandTableError("length", f"payload length {payload_len}; {n_levels} levels x {n_cohorts} "
                                         f"cohorts + {meta_len} meta bytes need {expected}")
    have = len(data) - HEADER_SIZE
    if have < payload_len:
        raise IslandTableError("truncated", f"payload has {have} of {payload_len} bytes "
                                            f"(file {len(data)} of {HEADER_SIZE + payload_len} bytes)")
    if have > payload_len:
        raise IslandTableError("trailing", f"{have - payload_len} bytes after the payload")
    crc = zlib.crc32(memoryview(data)[HEADER_SIZE:])
    if crc != payload_crc:
        raise IslandTableError("payload_crc", f"payload CRC-32 is {crc:#010x}, stored {payload_crc:#010x} "
                                              "(payload corrupted)")
    return _read_payload(data, version, n_levels, n_cohorts, created_s, expires_s, payload_crc)


def _read_payload(data: bytes, version: int, n_levels: int, n_cohorts: int, created_s: float, expires_s: float,
                  payload_crc: int) -> IslandTable:
    """The table in the payload of ``data`` (whose header fields are given and checked):
    :func:`decode_table`'s last checks (content rules, times, meta) and its result."""
    n_words = 2 * n_levels + n_cohorts
    words = np.frombuffer(data, dtype="<u4", count=n_words, offset=HEADER_SIZE)
    millihz, kinds, ids = words[:n_levels], words[n_levels:2 * n_levels], words[2 * n_levels:]
    off = HEADER_SIZE + 4 * n_words
    caps = np.frombuffer(data, dtype="<f4", count=n_levels * n_cohorts, offset=off).reshape(n_levels, n_cohorts)
    off += 4 * caps.size
    _validate(millihz, kinds, caps)
    if math.isnan(created_s) or math.isnan(expires_s) or expires_s < created_s:
        raise IslandTableError("content", f"created_s = {created_s!r}, expires_s = {expires_s!r}")
    meta = _read_meta(data[off:])
    return IslandTable(
        version=version, levels_hz=millihz.astype(np.float64) / 1000.0,
        kinds=tuple([_KIND_NAMES[k] for k in kinds.tolist()]), cohort_ids=ids.astype(np.uint32),
        caps_w=caps.astype(np.float32), created_s=created_s, expires_s=expires_s,
        meta=MappingProxyType(meta), payload_crc32=payload_crc)


def _read_meta(meta_bytes: bytes) -> dict:
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IslandTableError("content", f"meta is not UTF-8 JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise IslandTableError("content", f"meta is a {type(meta).__name__}; expected a JSON object")
    return meta


def encode_decode_table(levels_hz: Sequence[float], caps_w, created_s: float, meta: Mapping | None = None, *,
                        kinds: Sequence[str] | None = None, cohort_ids: Sequence[int] | None = None,
                        expires_s: float = math.inf, _version: int = VERSION) -> tuple[bytes, IslandTable]:
    """``(data, table)``: the bytes :func:`encode_table` writes (same arguments, same errors)
    and the table :func:`decode_table` reads back from them, equal field for field.

    The table is built from what the encoder packed (the float32 caps, levels, kinds and
    ids it wrote, the meta parsed back from its JSON bytes) instead of being parsed from
    ``data`` again: bytes just written by :func:`encode_table` pass every read check by
    construction (header fields, both CRC-32s, lengths, and the content rules and times,
    which the encoder checked on the same values). ``tests/test_island_table.py`` compares
    the two paths on random tables.
    """
    data, (millihz, codes, ids, caps32, meta_bytes, payload_crc, created, expires) = _encode(
        levels_hz, caps_w, created_s, meta, kinds, cohort_ids, expires_s, _version)
    if _version != VERSION:  # written for a test with another version: refused as decode_table refuses it
        return data, decode_table(data)
    # decode_table's arrays are fresh C-ordered float32 / uint32 copies: these are too
    caps = (caps32 if caps32.dtype == np.float32 and caps32.flags.c_contiguous
            else np.ascontiguousarray(caps32, dtype=np.float32))
    return data, IslandTable(
        version=VERSION, levels_hz=millihz.astype(np.float64) / 1000.0,
        kinds=tuple([_KIND_NAMES[k] for k in codes]), cohort_ids=ids.astype(np.uint32, copy=False),
        caps_w=caps, created_s=created, expires_s=expires,
        meta=MappingProxyType(_read_meta(meta_bytes)), payload_crc32=payload_crc)


def write_table(path: str | os.PathLike, levels_hz: Sequence[float], caps_w, created_s: float,
                meta: Mapping | None = None, **kwargs) -> Path:
    """Encode (:func:`encode_table`, same arguments) and write atomically: a temporary file
    in the same folder, flushed and fsynced, then renamed over ``path``. Returns ``path``."""
    path = Path(path)
    data = encode_table(levels_hz, caps_w, created_s, meta, **kwargs)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def read_table(path: str | os.PathLike) -> IslandTable:
    """Read and check an island table file (:func:`decode_table`); the error names the file."""
    path = Path(path)
    try:
        return decode_table(path.read_bytes())
    except IslandTableError as exc:
        raise IslandTableError(exc.check, f"{path}: {exc.detail}") from None
