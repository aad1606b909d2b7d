"""Reader (and writer) for hourly grid carbon-intensity files.

Two parquet layouts are read into one set of our names and units:

=====================================  ==============================  =================
file column                            our column                      unit
=====================================  ==============================  =================
``timestamp``                          ``timestamp``                   UTC, hour start
``carbon_intensity_gCO2eq_per_kWh``    ``carbon_intensity_g_per_kwh``  gCO2eq/kWh
``carbon_free_fraction_production``    ``carbon_free_fraction``        [-] in [0, 1]
=====================================  ==============================  =================

* ``entsoe_ci_2025``: the shared GridPilot files ``../shared/data/entsoe_ci_2025/
  {CC}_hourly.parquet`` (table above). Their third column, ``carbon_free_fraction``,
  is **not** read: it is inconsistent with the CI column (impossible in 7.5 % of DE
  hours, 15.1 % of PL, 37.1 % of SE, positively correlated with the CI in CH), while
  ``carbon_free_fraction_production`` is consistent with it; see docs/models.md,
  "Finding: the cff columns of shared/data/entsoe_ci_2025". Caveat from the data
  README: most of these series change far more from hour to hour than real grid
  intensity does.
* ``gridtwin_ci``: our own cache files (written by :func:`write_ci_parquet`, e.g. by
  :func:`traces.entsoe.get_carbon_intensity`), already in our names, with their
  provenance as JSON in the parquet schema metadata under the key ``gridtwin``.

:func:`read_ci_file` returns ``(data, meta)`` and refuses, naming the first offending
row, a file that is not hourly without gaps, not UTC, or has negative or non-finite
values. :func:`hourly_window` cuts ``hours`` values from ``start`` for the engine's
``CarbonSignal`` and raises with the covered range when the file does not cover it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

__all__ = [
    "COLUMNS",
    "SHARED_VARIABLE_MAP",
    "read_ci_file",
    "write_ci_parquet",
    "hourly_window",
]

#: Our columns, in order.
COLUMNS = ("timestamp", "carbon_intensity_g_per_kwh", "carbon_free_fraction")
#: Shared ``entsoe_ci_2025`` column -> our column.
SHARED_VARIABLE_MAP = MappingProxyType({
    "timestamp": "timestamp",
    "carbon_intensity_gCO2eq_per_kWh": "carbon_intensity_g_per_kwh",
    "carbon_free_fraction_production": "carbon_free_fraction",
})
_SHARED_IGNORED = "carbon_free_fraction"
_META_KEY = b"gridtwin"
_HOUR = pd.Timedelta(hours=1)

_SHARED_NOTE = (
    "carbon_free_fraction is carbon_free_fraction_production of the file; its column "
    "'carbon_free_fraction' was not read: it is inconsistent with the CI column (impossible "
    "hours in DE, PL, SE; positively correlated with the CI in CH), see docs/models.md "
    "'Finding: the cff columns of shared/data/entsoe_ci_2025'")
_SHARED_SOURCE = (
    "GridPilot v1.0 reproducibility kit (D. Constantinescu et al., EPFL EcoCloud, CC BY 4.0): "
    "ENTSO-E Transparency Platform A75 generation per type x lifecycle factors")


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%MZ")


def _detect_format(columns: list[str], path: Path) -> str:
    cols = set(columns)
    if set(COLUMNS) <= cols:
        return "gridtwin_ci"
    if set(SHARED_VARIABLE_MAP) <= cols:
        return "entsoe_ci_2025"
    raise ValueError(
        f"{path}: not a carbon-intensity file: columns {sorted(columns)}; expected "
        f"{list(COLUMNS)} (gridtwin cache) or {list(SHARED_VARIABLE_MAP)} (shared entsoe_ci_2025)")


def _check_timestamps(ts: pd.Series, path: Path) -> pd.DatetimeIndex:
    """The timestamps as a UTC DatetimeIndex, hourly, on the hour, without gaps."""
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_dtype(ts.dtype):
            raise ValueError(f"{path}: column 'timestamp' has no time zone; expected UTC times "
                             "(naive times are ambiguous, convert them explicitly)")
        raise ValueError(f"{path}: column 'timestamp' holds {ts.dtype}, not times")
    idx = pd.DatetimeIndex(ts).tz_convert("UTC")
    if len(idx) == 0:
        raise ValueError(f"{path}: no rows")
    if idx.hasnans:
        raise ValueError(f"{path}: column 'timestamp' has {int(idx.isna().sum())} missing values")
    off = idx != idx.floor("h")
    if off.any():
        raise ValueError(f"{path}: timestamps must be on the hour; first off-hour row "
                         f"{int(np.argmax(off))} at {idx[off][0].isoformat()}")
    step = idx[1:] - idx[:-1]
    bad = step != _HOUR
    if bad.any():
        i = int(np.argmax(bad))
        a, b = idx[i], idx[i + 1]
        if b > a:
            n = int((b - a) / _HOUR) - 1
            what = f"{n} hour{'s' if n != 1 else ''} missing" if n >= 1 else f"step {b - a}"
            raise ValueError(f"{path}: not hourly without gaps: first gap after {_iso(a)}, next row "
                             f"{_iso(b)} ({what})")
        raise ValueError(f"{path}: timestamps not strictly increasing: row {i + 1} ({_iso(b)}) "
                         f"follows {_iso(a)}")
    return idx


def _check_values(name: str, values: np.ndarray, idx: pd.DatetimeIndex, path: Path,
                  upper: float | None = None) -> None:
    bad = ~np.isfinite(values) | (values < 0.0)
    if upper is not None:
        bad |= values > upper
    if bad.any():
        i = int(np.argmax(bad))
        allowed = f"[0, {upper:g}]" if upper is not None else ">= 0"
        raise ValueError(f"{path}: {name} must be finite and {allowed}; {int(bad.sum())} rows are not, "
                         f"first at {_iso(idx[i])}: {values[i]!r}")


def read_ci_file(path) -> tuple[pd.DataFrame, dict]:
    """Read an hourly carbon-intensity parquet file into our names and units.

    Parameters
    ----------
    path : str or Path
        A shared ``entsoe_ci_2025/{CC}_hourly.parquet`` file or a gridtwin cache file
        (see the module docstring for both layouts).

    Returns
    -------
    data : DataFrame
        Columns ``timestamp`` (UTC hour start), ``carbon_intensity_g_per_kwh``
        [gCO2eq/kWh], ``carbon_free_fraction`` [-]; one row per hour, no gaps.
    meta : dict
        ``format`` ("entsoe_ci_2025" or "gridtwin_ci"), ``path``, ``start`` and ``end``
        (ISO UTC, end exclusive), ``hours``, ``ignored_columns``; for the shared format
        also ``country`` (from the file name), ``source``, ``cff_column`` and a ``note``
        on the ignored, inconsistent ``carbon_free_fraction`` column; for our format
        whatever provenance the file carries (country, zone, fetch time, ...).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Unknown columns; times without a time zone, off the hour, out of order or with
        a gap (the first one is named); negative or non-finite intensity; a carbon-free
        fraction outside [0, 1].
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"carbon-intensity file not found: {path}")
    table = pq.read_table(path)
    fmt = _detect_format(table.column_names, path)
    raw = table.to_pandas()
    stored = {}
    if table.schema.metadata and _META_KEY in table.schema.metadata:
        stored = json.loads(table.schema.metadata[_META_KEY])
    if fmt == "entsoe_ci_2025":
        data = raw[list(SHARED_VARIABLE_MAP)].rename(columns=dict(SHARED_VARIABLE_MAP))
        used = set(SHARED_VARIABLE_MAP)
        m = re.fullmatch(r"([A-Z]{2})_hourly", path.stem)
        meta = {"format": fmt, "country": m.group(1) if m else None, "source": _SHARED_SOURCE,
                "cff_column": "carbon_free_fraction_production", "note": _SHARED_NOTE}
    else:
        data = raw[list(COLUMNS)].copy()
        used = set(COLUMNS)
        meta = {**stored, "format": fmt}
    idx = _check_timestamps(data["timestamp"], path)
    data["timestamp"] = idx
    for col, upper in (("carbon_intensity_g_per_kwh", None), ("carbon_free_fraction", 1.0)):
        data[col] = data[col].astype(float)
        _check_values(col, data[col].to_numpy(), idx, path, upper)
    data = data.reset_index(drop=True)
    meta.update({"path": str(path), "start": _iso(idx[0]), "end": _iso(idx[-1] + _HOUR),
                 "hours": int(len(idx)),
                 "ignored_columns": sorted(c for c in table.column_names if c not in used)})
    return data, meta


def write_ci_parquet(path, data: pd.DataFrame, meta: dict) -> Path:
    """Write ``data`` (our columns) with ``meta`` as JSON schema metadata, atomically.

    The file is written under a temporary name in the same folder and renamed, so a
    reader never sees half a file. ``meta`` must be JSON-serialisable.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    missing = [c for c in COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"cannot write {path}: data lacks columns {missing}")
    table = pa.Table.from_pandas(data[list(COLUMNS)], preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           _META_KEY: json.dumps(meta, sort_keys=True).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _aware_utc(value, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}={value!r} is not a time: {exc}") from None
    if ts.tzinfo is None:
        raise ValueError(f"{name}={value!r} has no time zone; pass an aware UTC time "
                         f"(e.g. datetime(..., tzinfo=timezone.utc))")
    return ts.tz_convert("UTC")


def hourly_window(data: pd.DataFrame, start, hours: int) -> tuple[np.ndarray, np.ndarray]:
    """Carbon intensity and carbon-free fraction for ``hours`` hours from ``start``.

    Parameters
    ----------
    data : DataFrame
        As returned by :func:`read_ci_file` (hourly, no gaps).
    start : datetime, pandas Timestamp or ISO string
        First hour, time-zone aware, on the hour.
    hours : int
        Number of hours, >= 1.

    Returns
    -------
    (ci, cff) : two float arrays of length ``hours``
        [gCO2eq/kWh] and [-] for the hours [start, start + hours).

    Raises
    ------
    ValueError
        ``start`` naive or off the hour, ``hours`` < 1, or [start, start + hours) not
        inside the covered range (the message gives both ranges).
    """
    t0 = _aware_utc(start, "start")
    if t0 != t0.floor("h"):
        raise ValueError(f"start={_iso(t0)} is not on the hour")
    if isinstance(hours, bool) or not isinstance(hours, (int, np.integer)) or hours < 1:
        raise ValueError(f"hours={hours!r} must be an integer >= 1")
    ts = pd.DatetimeIndex(data["timestamp"])
    if len(ts) == 0:
        raise ValueError("carbon-intensity data has no rows")
    first, end = ts[0], ts[-1] + _HOUR
    t1 = t0 + int(hours) * _HOUR
    if t0 < first or t1 > end:
        raise ValueError(f"carbon-intensity data covers {_iso(first)} to {_iso(end)} (end exclusive); "
                         f"asked for {_iso(t0)} to {_iso(t1)} ({int(hours)} hours)")
    i = int((t0 - first) / _HOUR)
    sl = slice(i, i + int(hours))
    if ts[sl.start] != t0 or ts[sl.stop - 1] != t1 - _HOUR:
        raise ValueError("carbon-intensity data is not hourly without gaps; read it with read_ci_file")
    return (data["carbon_intensity_g_per_kwh"].to_numpy(dtype=float)[sl].copy(),
            data["carbon_free_fraction"].to_numpy(dtype=float)[sl].copy())
