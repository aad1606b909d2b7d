"""Reader of the PM100 job table (Marconi100 jobs with per-job power), a seeded writer
of PM100-like files for tests, and the whole-week rebasing of a trace onto a scenario.

PM100 [1]_ is one ``job_table.parquet`` (~231k jobs, 2020-05 to 2020-10, ~270 MB) whose
schema is summarised in ``../shared/reference/PM100.md``; it is never copied into this
repository. :func:`read_pm100` reads the jobs that overlap a time window into our column
names and units and returns ``(jobs, meta)``; it touches only the parquet row groups whose
``start_time``/``end_time`` statistics can overlap the window (the file is sorted by
``start_time``), drops malformed rows and counts every one under a reason
(:data:`DROP_REASONS`), and raises, naming the covered range, for a window the file does
not cover. :func:`write_pm100_like` writes a seeded file of the same schema (no real
data). :func:`rebase_offset` and :func:`rebased_window` map a scenario's time onto the
trace by a whole number of weeks, keeping weekday and time of day.

Timestamps. PM100's are timezone-aware UTC. A parquet timestamp column carries the flag
``isAdjustedToUTC``; pyarrow reads a flagged column as tz-aware (``tz="UTC"``) and an
unflagged one as naive. We accept exactly the columns whose schema says they are
instants (any tz-aware type, converted to UTC) and reject naive ones with a
``ValueError``: a naive time does not say which clock it is on, and guessing UTC for a
file from an Italian site would shift every job by 1-2 h without a trace of the error.

References
----------
.. [1] F. Antici, M. S. Ardebili, A. Bartolini, A. Borghesi, "PM100: a job power
   consumption dataset of a large-scale production HPC system", Proc. SC'23 Workshops,
   2023. Data: Zenodo record 10127767, doi:10.5281/zenodo.8129257.
.. [2] ExaDigiT RAPS, ``raps/dataloaders/marconi100.py`` (``load_data_from_df``),
   github.com/ExaDigiT/RAPS @ 0bdf99db: the published PM100 reader whose GPU-power
   rule :func:`derive_gpu_power_w` follows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from traces.synthetic import M100JobParams

__all__ = [
    "DROP_REASONS",
    "NICS_PER_NODE",
    "NIC_POWER_W",
    "NVME_POWER_W",
    "PM100_JOB_COLUMNS",
    "POWER_LENGTH_TOL_FRACTION",
    "POWER_LENGTH_TOL_SAMPLES",
    "SAMPLE_PERIOD_S",
    "derive_gpu_power_w",
    "read_pm100",
    "rebase_offset",
    "rebased_window",
    "write_pm100_like",
]

#: Columns of the frame returned by :func:`read_pm100`, in order. Times are UTC
#: timestamps; the three ``*_power_w`` cells are 1-D float64 arrays [W], one sample
#: every :data:`SAMPLE_PERIOD_S` from ``power_t0``, summed over the job's nodes.
PM100_JOB_COLUMNS = (
    "job_id",        # int64
    "submit_time",   # datetime64[ns, UTC]
    "start_time",    # datetime64[ns, UTC]
    "end_time",      # datetime64[ns, UTC]
    "run_time_s",    # float64 [s], end_time - start_time
    "time_limit_s",  # float64 [s], file's time_limit [min] x 60
    "num_nodes",     # int64
    "num_gpus",      # int64
    "power_t0",      # datetime64[ns, UTC], time of the first power sample (= start_time)
    "node_power_w",  # object: float64 arrays [W], node input power (sum of both PSUs)
    "gpu_power_w",   # object: float64 arrays [W], derive_gpu_power_w (None: old naming)
    "host_power_w",  # object: float64 arrays [W], node - gpu (None: old naming)
)

#: Reasons a row in the window is dropped, in the order they are tested: a row is
#: counted under the first that applies, so the counts add up to the rows dropped.
DROP_REASONS = (
    "missing_job_id",         # job_id is null
    "missing_times",          # submit_time, start_time or end_time is null
    "end_before_start",       # end_time < start_time
    "bad_allocation",         # nodes < 1, gpus < 0, null, or gpus > nodes x gpus_per_node
    "bad_time_limit",         # time_limit null or <= 0
    "empty_power_series",     # node power list null or of length 0
    "null_power_sample",      # a null inside a node/cpu/mem power list
    "power_columns_differ",   # cpu or mem list not as long as the node list (current naming)
    "power_length_mismatch",  # node list length vs run_time / 20 s beyond the tolerance
    "negative_power",         # a sample < 0 in a node/cpu/mem list
)

#: Period of the PM100 power samples [s] (PM100.md).
SAMPLE_PERIOD_S = 20.0
#: Marconi100 node constants of the GPU-power rule [2]_: two NICs of 21 W, one NVMe 45 W.
NICS_PER_NODE = 2
NIC_POWER_W = 21.0
NVME_POWER_W = 45.0
#: A power list of ``n`` samples is consistent with run time ``T`` [s] if
#: ``|n - T / 20 s| <= max(POWER_LENGTH_TOL_SAMPLES, POWER_LENGTH_TOL_FRACTION * T / 20 s)``.
#: Our choice (PM100 does not state one): a minute of samples lost or gained at the edges
#: of a job, or 2 % of a long one, is telemetry jitter; more means the list does not
#: describe this run and would misplace its energy in time.
POWER_LENGTH_TOL_SAMPLES = 3
POWER_LENGTH_TOL_FRACTION = 0.02

_TIME_COLUMNS = ("submit_time", "start_time", "end_time")
_COMMON_COLUMNS = ("job_id", *_TIME_COLUMNS, "time_limit", "num_nodes_alloc", "num_gpus_alloc")
_POWER_COLUMNS = {
    "current": ("node_power_consumption", "cpu_power_consumption", "mem_power_consumption"),
    "old": ("power_consumption",),
}
_ACCEPTED_TEXT = (
    f"required: {', '.join(_COMMON_COLUMNS)}; and power as either "
    "node_power_consumption + cpu_power_consumption + mem_power_consumption (current "
    "PM100 naming, with cores_* columns) or power_consumption (older revision, cpus_* "
    "columns: node power only, so gpu_power_w and host_power_w are then unavailable)"
)
_NS_PER_S = 1_000_000_000
_WEEK = pd.Timedelta(days=7)


# ----------------------------------------------------------------------------- physics


def derive_gpu_power_w(node_w, cpu_w, mem_w, num_nodes):
    """GPU power of a job from its PM100 node, CPU and memory power [W].

    ``gpu = max(0, node - cpu - mem - num_nodes * (2 * 21 W + 45 W))``: what is left of
    the node input power once the CPUs, memory, two NICs and one NVMe drive per node
    are taken off, clamped at 0. The rule and its constants are those of the published
    reader [2]_, which subtracts the same terms; it clamps the GPU *utilisation* derived
    from the result at 0 rather than the power, and truncates the three lists to the
    shortest and skips the table's last row, which we do not (PM100.md). The remainder
    also holds fans, PSU losses and board power, so this is an upper estimate of the
    GPUs' own power.

    Parameters
    ----------
    node_w, cpu_w, mem_w : array_like
        Node input power (both PSUs), CPU and memory power of the job, summed over its
        nodes [W]. Scalars or arrays of one shape.
    num_nodes : int or array_like
        Nodes of the job [-], broadcast against the powers.

    Returns
    -------
    numpy.ndarray
        GPU power [W], >= 0, float64.
    """
    node = np.asarray(node_w, dtype=np.float64)
    other = np.asarray(cpu_w, dtype=np.float64) + np.asarray(mem_w, dtype=np.float64)
    per_node_w = NICS_PER_NODE * NIC_POWER_W + NVME_POWER_W
    return np.maximum(node - other - np.asarray(num_nodes, dtype=np.float64) * per_node_w, 0.0)


# ----------------------------------------------------------------------------- checks


def _utc(name: str, value) -> pd.Timestamp:
    """``value`` as a UTC ``pandas.Timestamp`` or ValueError if it is not an aware datetime."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}={value!r} must be a timezone-aware datetime (UTC)")
    return pd.Timestamp(value).tz_convert("UTC")


def _check_int(name: str, value, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < lo:
        raise ValueError(f"{name}={value!r} must be an integer; allowed: {name} >= {lo}")
    return int(value)


def _naming(path, schema: pa.Schema) -> str:
    """Detect the column naming or raise ValueError naming the missing columns."""
    names = set(schema.names)
    has = {k: [c for c in cols if c in names] for k, cols in _POWER_COLUMNS.items()}
    if has["current"] and has["old"]:
        raise ValueError(
            f"{path}: has both power_consumption (older PM100 naming) and "
            f"{', '.join(has['current'])} (current naming); allowed: one naming"
        )
    naming = "old" if has["old"] else "current"
    missing = [c for c in (*_COMMON_COLUMNS, *_POWER_COLUMNS[naming]) if c not in names]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)} ({naming} naming detected); "
            + _ACCEPTED_TEXT
        )
    for c in _TIME_COLUMNS:
        t = schema.field(c).type
        if not pa.types.is_timestamp(t):
            raise ValueError(f"{path}: column {c} has type {t}; allowed: a parquet timestamp")
        if t.tz is None:
            raise ValueError(
                f"{path}: column {c} is a naive timestamp ({t}): the file does not say "
                "it is UTC (parquet isAdjustedToUTC=false); allowed: timezone-aware "
                "timestamps as in PM100. Rewrite the column as UTC if you know it is."
            )
    for c in ("job_id", "time_limit", "num_nodes_alloc", "num_gpus_alloc"):
        t = schema.field(c).type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
            raise ValueError(f"{path}: column {c} has type {t}; allowed: a number")
    for c in _POWER_COLUMNS[naming]:
        t = schema.field(c).type
        if not (pa.types.is_list(t) or pa.types.is_large_list(t)) or not (
            pa.types.is_integer(t.value_type) or pa.types.is_floating(t.value_type)
        ):
            raise ValueError(f"{path}: column {c} has type {t}; allowed: a list of numbers [W]")
    return naming


def _scalar(ts: pd.Timestamp, typ: pa.DataType, up: bool) -> pa.Scalar:
    """``ts`` in the column's unit, rounded up or down (exact comparisons on integers)."""
    per = {"s": _NS_PER_S, "ms": 1_000_000, "us": 1_000, "ns": 1}[typ.unit]
    v = ts.as_unit("ns").value
    return pa.scalar(-((-v) // per) if up else v // per, type=typ)


def _covered_range(path, fragments) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First start_time and last end_time of the file, from row-group statistics."""
    lo = hi = None
    for frag in fragments:
        md = frag.metadata
        i_s = md.schema.to_arrow_schema().get_field_index("start_time")
        i_e = md.schema.to_arrow_schema().get_field_index("end_time")
        for g in range(md.num_row_groups):
            rg = md.row_group(g)
            s, e = rg.column(i_s).statistics, rg.column(i_e).statistics
            if s is None or e is None or not (s.has_min_max and e.has_min_max):
                if s is not None and e is not None and s.null_count == e.null_count == rg.num_rows:
                    continue  # a row group of null times adds nothing to the range
                return _covered_range_by_reading(path)
            lo = s.min if lo is None else min(lo, s.min)
            hi = e.max if hi is None else max(hi, e.max)
    if lo is None:
        raise ValueError(f"{path}: no job has both start_time and end_time; nothing to read")
    return pd.Timestamp(lo).tz_convert("UTC"), pd.Timestamp(hi).tz_convert("UTC")


def _covered_range_by_reading(path) -> tuple[pd.Timestamp, pd.Timestamp]:
    t = pq.read_table(path, columns=["start_time", "end_time"])
    lo, hi = pc.min(t["start_time"]).as_py(), pc.max(t["end_time"]).as_py()
    if lo is None or hi is None:
        raise ValueError(f"{path}: no job has both start_time and end_time; nothing to read")
    return pd.Timestamp(lo).tz_convert("UTC"), pd.Timestamp(hi).tz_convert("UTC")


# ----------------------------------------------------------------------------- reader


def _list_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lengths, list_is_null, values float64 with nulls as 0, value_is_null) of a list array."""
    list_null = arr.is_null().to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(arr)  # null lists emit nothing
    value_null = flat.is_null().to_numpy(zero_copy_only=False)
    values = flat.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
    return lengths.astype(np.int64), list_null, values, value_null


def _per_row_any(flags: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    rows = np.repeat(np.arange(lengths.size), lengths)
    return np.bincount(rows, weights=flags.astype(np.float64), minlength=lengths.size) > 0


def _split(values: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    return np.split(values, np.cumsum(lengths)[:-1]) if lengths.size else []


def _empty_jobs() -> pd.DataFrame:
    t = pd.Series([], dtype="datetime64[ns, UTC]")
    cols = {
        "job_id": pd.Series([], dtype=np.int64),
        "submit_time": t, "start_time": t, "end_time": t,
        "run_time_s": pd.Series([], dtype=np.float64),
        "time_limit_s": pd.Series([], dtype=np.float64),
        "num_nodes": pd.Series([], dtype=np.int64),
        "num_gpus": pd.Series([], dtype=np.int64),
        "power_t0": t,
    }
    for c in ("node_power_w", "gpu_power_w", "host_power_w"):
        cols[c] = pd.Series([], dtype=object)
    return pd.DataFrame(cols)[list(PM100_JOB_COLUMNS)]


def read_pm100(
    path: str | os.PathLike,
    start: datetime,
    end: datetime,
    *,
    gpus_per_node: int = 4,
    check_power_length: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """Read the PM100 jobs that overlap ``[start, end)`` into our names and units.

    A job is in the window if it starts before the window ends and ends after it
    starts (``start_time < end and end_time > start``); it is returned whole, not
    clipped. Only the parquet row groups whose ``start_time``/``end_time`` statistics
    can hold such a job are read (PM100 is sorted by ``start_time``; pruning is done
    by ``pyarrow.dataset`` from the same filter), and only the columns used.

    A row with a null time cannot be placed: it is counted under ``missing_times`` in
    every window it could overlap (both times null: every window). A row with
    ``end_time < start_time`` is attributed to the window holding its start. Every other
    malformed row is dropped under the first reason of :data:`DROP_REASONS` that applies.

    Parameters
    ----------
    path : str or path-like
        A PM100 ``job_table.parquet`` (either naming, see the module docstring).
    start, end : datetime.datetime
        Window [start, end), timezone-aware, ``end > start``; must lie within the
        file's covered range (first ``start_time`` to last ``end_time``).
    gpus_per_node : int, keyword-only
        GPUs per node [-] (Marconi100: 4): a row with ``num_gpus_alloc`` above
        ``num_nodes_alloc * gpus_per_node`` is dropped as ``bad_allocation``.
    check_power_length : bool, keyword-only
        Drop rows whose node power list does not match ``run_time / 20 s`` within
        ``max(POWER_LENGTH_TOL_SAMPLES, POWER_LENGTH_TOL_FRACTION * run_time / 20 s)``
        (``power_length_mismatch``). Pass False only for files whose lists are
        deliberately short (``write_pm100_like(power_samples="short")``).

    Returns
    -------
    jobs : pandas.DataFrame
        Columns :data:`PM100_JOB_COLUMNS`, sorted by ``start_time`` then ``job_id``:
        ``job_id``; ``submit_time``, ``start_time``, ``end_time`` (UTC);
        ``run_time_s`` = end - start [s]; ``time_limit_s`` [s]; ``num_nodes``;
        ``num_gpus``; ``power_t0`` = ``start_time``; ``node_power_w`` (node input
        power summed over the job's nodes), ``gpu_power_w``
        (:func:`derive_gpu_power_w`) and ``host_power_w`` = node - gpu, each cell a
        float64 array [W] sampled every 20 s from ``power_t0``. With the older
        naming ``gpu_power_w`` and ``host_power_w`` hold None (see ``meta``).
    meta : dict
        ``source`` (str), ``window`` (start, end as UTC Timestamps), ``covered``
        (first start, last end of the file), ``naming`` ("current" or "old"),
        ``sample_period_s`` (20.0), ``row_groups_read``, ``row_groups_total``,
        ``rows_read`` (rows of those row groups), ``rows_in_window`` (before drops),
        ``n_jobs`` (returned), ``dropped`` (every reason of :data:`DROP_REASONS` ->
        count), ``unavailable`` (column -> why; empty with the current naming),
        ``gpus_per_node``, ``check_power_length``, ``gpu_power_rule`` (text).

    Raises
    ------
    ValueError
        Naive or reversed window; window outside the covered range (the message gives
        it); missing columns (the message names the file, them and the accepted
        alternatives); naive timestamp columns; columns of the wrong type.
    FileNotFoundError
        If ``path`` does not exist.
    """
    w0, w1 = _utc("start", start), _utc("end", end)
    if w1 <= w0:
        raise ValueError(f"window start={w0} .. end={w1} is empty; allowed: end > start")
    gpus_per_node = _check_int("gpus_per_node", gpus_per_node, 1)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such PM100 job table")
    dataset = ds.dataset(path, format="parquet")
    naming = _naming(path, dataset.schema)
    fragments = list(dataset.get_fragments())
    covered = _covered_range(path, fragments)
    # a window that only partly overlaps the trace is fine (no jobs there); one that misses it
    # entirely is almost certainly a wrong trace_start and is refused
    if w1 <= covered[0] or w0 >= covered[1]:
        raise ValueError(
            f"window {w0} .. {w1} is outside the trace {path}, which covers "
            f"{covered[0]} .. {covered[1]} (first start_time .. last end_time)"
        )

    # Filter with Kleene logic: a null time keeps the row (counted as missing_times).
    s, e = ds.field("start_time"), ds.field("end_time")
    st, et = dataset.schema.field("start_time").type, dataset.schema.field("end_time").type
    starts_before_end = (s < _scalar(w1, st, up=True)) | s.is_null()
    reaches_window = (e > _scalar(w0, et, up=False)) | (s >= _scalar(w0, st, up=True)) | e.is_null()
    expr = starts_before_end & reaches_window

    power_cols = _POWER_COLUMNS[naming]
    columns = [*_COMMON_COLUMNS, *power_cols]
    tables, rg_read, rg_total, rows_read = [], 0, 0, 0
    for frag in fragments:
        rg_total += frag.num_row_groups
        kept = frag.subset(filter=expr, schema=dataset.schema)
        rg_read += kept.num_row_groups
        if kept.num_row_groups:
            rows_read += sum(rg.num_rows for rg in kept.row_groups)
            tables.append(kept.to_table(schema=dataset.schema, columns=columns, filter=expr))
    if tables:
        table = pa.concat_tables(tables)
    else:
        table = dataset.schema.empty_table().select(columns)

    meta = {
        "source": str(path),
        "window": (w0, w1),
        "covered": covered,
        "naming": naming,
        "sample_period_s": SAMPLE_PERIOD_S,
        "row_groups_read": rg_read,
        "row_groups_total": rg_total,
        "rows_read": rows_read,
        "rows_in_window": table.num_rows,
        "n_jobs": 0,
        "dropped": dict.fromkeys(DROP_REASONS, 0),
        "unavailable": {},
        "gpus_per_node": gpus_per_node,
        "check_power_length": check_power_length,
        "gpu_power_rule": (
            "gpu = max(0, node - cpu - mem - nodes*(2*21 W NICs + 45 W NVMe)), "
            "ExaDigiT RAPS raps/dataloaders/marconi100.py; host = node - gpu"
        ),
    }
    if naming == "old":
        why = (
            "older PM100 naming: power_consumption (node power) only, no "
            "cpu_power_consumption/mem_power_consumption to split off the GPUs"
        )
        meta["unavailable"] = {"gpu_power_w": why, "host_power_w": why}

    window_ns = (w0.as_unit("ns").value, w1.as_unit("ns").value)
    jobs, dropped, in_window = _to_jobs(
        table, naming, gpus_per_node, check_power_length, *window_ns
    )
    meta["rows_in_window"] = in_window
    meta["dropped"].update(dropped)
    meta["n_jobs"] = len(jobs)
    return jobs, meta


def _to_jobs(
    table: pa.Table,
    naming: str,
    gpus_per_node: int,
    check_power_length: bool,
    w0_ns: int,
    w1_ns: int,
) -> tuple[pd.DataFrame, dict, int]:
    """Parse the window's rows; drop and count the malformed ones.

    Returns the jobs, the drop counts and the number of rows in the window.
    """
    n = table.num_rows
    if n == 0:
        return _empty_jobs(), {}, 0

    def ns(col):  # int64 ns since epoch, nulls -> mask
        a = table[col].combine_chunks()
        return (
            a.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).fill_null(0).to_numpy(),
            a.is_null().to_numpy(zero_copy_only=False),
        )

    def num(col):
        a = table[col].combine_chunks()
        return a.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)

    submit, submit_null = ns("submit_time")
    t_start, start_null = ns("start_time")
    t_end, end_null = ns("end_time")
    nodes, gpus, limit_min = num("num_nodes_alloc"), num("num_gpus_alloc"), num("time_limit")
    ids = table["job_id"].combine_chunks()
    job_id = ids.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    run_s = (t_end - t_start) / _NS_PER_S

    power = {c: table[c].combine_chunks() for c in _POWER_COLUMNS[naming]}
    node_col = _POWER_COLUMNS[naming][0]
    parts = {c: _list_parts(a) for c, a in power.items()}
    n_len, n_list_null, _, _ = parts[node_col]

    reason = {}
    reason["missing_job_id"] = ids.is_null().to_numpy(zero_copy_only=False)
    reason["missing_times"] = submit_null | start_null | end_null
    reason["end_before_start"] = t_end < t_start
    with np.errstate(invalid="ignore"):
        reason["bad_allocation"] = (
            ~np.isfinite(nodes) | ~np.isfinite(gpus) | (nodes < 1) | (gpus < 0)
            | (nodes != np.round(nodes)) | (gpus != np.round(gpus))
            | (gpus > nodes * gpus_per_node)
        )
        reason["bad_time_limit"] = ~np.isfinite(limit_min) | (limit_min <= 0)
    reason["empty_power_series"] = n_list_null | (n_len == 0)
    reason["null_power_sample"] = np.zeros(n, bool)
    reason["negative_power"] = np.zeros(n, bool)
    reason["power_columns_differ"] = np.zeros(n, bool)
    for c, (lengths, _, values, value_null) in parts.items():
        reason["null_power_sample"] |= _per_row_any(value_null, lengths)
        reason["negative_power"] |= _per_row_any(values < 0, lengths)
        if c != node_col:
            reason["power_columns_differ"] |= lengths != n_len
    expected = run_s / SAMPLE_PERIOD_S
    tol = np.maximum(POWER_LENGTH_TOL_SAMPLES, POWER_LENGTH_TOL_FRACTION * expected)
    reason["power_length_mismatch"] = (
        np.abs(n_len - expected) > tol if check_power_length else np.zeros(n, bool)
    )

    # The filter also passes rows that start in the window and end at or before its
    # start: malformed ones (end_before_start, counted here) and zero-length jobs at the
    # window start, which are outside [w0, w1) by definition: neither returned nor counted.
    placeable = ~(reason["missing_times"] | reason["end_before_start"])
    outside = placeable & ~((t_start < w1_ns) & (t_end > w0_ns))
    taken = outside.copy()
    dropped = {}
    for r in DROP_REASONS:
        hit = reason[r] & ~taken
        dropped[r] = int(hit.sum())
        taken |= hit
    keep = ~taken
    in_window = int(n - outside.sum())
    if not keep.any():
        return _empty_jobs(), dropped, in_window

    keep_arrow = pa.array(keep)
    lengths = n_len[keep]
    node_vals = _list_parts(power[node_col].filter(keep_arrow))[2]
    k_nodes = nodes[keep].astype(np.int64)
    if naming == "current":
        cpu_vals = _list_parts(power["cpu_power_consumption"].filter(keep_arrow))[2]
        mem_vals = _list_parts(power["mem_power_consumption"].filter(keep_arrow))[2]
        gpu_vals = derive_gpu_power_w(node_vals, cpu_vals, mem_vals, np.repeat(k_nodes, lengths))
        gpu_cells = _split(gpu_vals, lengths)
        host_cells = _split(node_vals - gpu_vals, lengths)
    else:
        gpu_cells = host_cells = [None] * int(keep.sum())

    def utc(v):
        return pd.Series(pd.to_datetime(v, unit="ns", utc=True)).dt.as_unit("ns")

    start_ts = utc(t_start[keep])
    jobs = pd.DataFrame(
        {
            "job_id": job_id[keep].astype(np.int64),
            "submit_time": utc(submit[keep]),
            "start_time": start_ts,
            "end_time": utc(t_end[keep]),
            "run_time_s": run_s[keep].astype(np.float64),
            "time_limit_s": limit_min[keep] * 60.0,
            "num_nodes": k_nodes,
            "num_gpus": gpus[keep].astype(np.int64),
            "power_t0": start_ts,
            "node_power_w": pd.Series(_split(node_vals, lengths), dtype=object),
            "gpu_power_w": pd.Series(gpu_cells, dtype=object),
            "host_power_w": pd.Series(host_cells, dtype=object),
        }
    )
    jobs = jobs.sort_values(["start_time", "job_id"], kind="stable").reset_index(drop=True)
    return jobs[list(PM100_JOB_COLUMNS)], dropped, in_window


# ----------------------------------------------------------------------------- writer

_JOB_STATES = np.array(["COMPLETED", "COMPLETED", "COMPLETED", "TIMEOUT", "FAILED", "CANCELLED"])


def write_pm100_like(
    path: str | os.PathLike,
    *,
    n_jobs: int,
    start: datetime,
    days: float,
    seed: int,
    rows_per_group: int = 1000,
    nodes: int = 980,
    power_samples: str = "full",
    bad_rows: Mapping[str, int] | None = None,
    naming: str = "current",
) -> dict:
    """Write a seeded PM100-schema job table (synthetic; no real data).

    Every column of PM100.md, sorted by ``start_time``, written in row groups of
    ``rows_per_group`` rows. Job shape follows :class:`traces.synthetic.M100JobParams`
    (node-count pmf, lognormal run time clipped to 60 s .. 24 h, time limit = run time x
    U(1.11, 2.93) in whole minutes, 59 % CPU-only jobs); start times are uniform over
    ``[start, start + days)`` at whole seconds, submit = start - Exp(mean 10 min). Each
    job runs on a contiguous block of node indices. Power per node (assumed, not
    fitted): CPU 2 x U(50, 190) W, memory U(20, 80) W, each used GPU U(60, 290) W and
    each idle GPU 40 W, plus 2 x 21 W NICs, 45 W NVMe and U(30, 80) W of the rest, with
    3 % sample noise; lists are int64 and summed over the job's nodes.

    Types: times ``timestamp[ns, tz=UTC]``; counts, ids, ``run_time`` [s],
    ``time_limit`` [min] and ``mem_*`` [MB] int64; ``nodes`` and ``req_nodes`` lists
    of int64; ``*_power_consumption`` lists of int64 [W]; ``cores_alloc_layout`` and
    ``cores_allocated`` (types not stated in PM100.md) JSON-like strings; the other
    labels strings.

    Parameters
    ----------
    path : str or path-like
        File written (overwritten).
    n_jobs : int
        Rows [-], >= 1 (bad rows included).
    start : datetime.datetime
        Earliest start time, timezone-aware.
    days : float
        Span of start times [d], > 0.
    seed : int
        Seed of the ``numpy.random.Generator``, >= 0.
    rows_per_group : int
        Parquet row-group size [rows], >= 1.
    nodes : int
        Nodes of the machine [-] (Marconi100: 980); node indices are 0 .. nodes-1.
    power_samples : {"full", "short"}
        "full": ``round(run_time / 20 s)`` samples (at least 1); "short": 1 to 3
        samples per job, to keep a 231k-job file small (read it with
        ``check_power_length=False``).
    bad_rows : mapping of str to int, optional
        Number of rows to spoil per kind, keys from :data:`DROP_REASONS`; distinct
        rows, each spoiled one way only, so :func:`read_pm100` over the whole file
        counts exactly these numbers (``power_columns_differ`` needs the current naming).
    naming : {"current", "old"}
        Current PM100 names, or the older revision's (``cpus_*`` instead of
        ``cores_*``, a single ``power_consumption`` = node power).

    Returns
    -------
    dict
        ``path``, ``n_rows``, ``row_groups``, ``first_start``, ``last_end`` (UTC
        Timestamps, over rows with valid times), ``bad_rows`` (kind -> count).
    """
    t0 = _utc("start", start)
    n_jobs = _check_int("n_jobs", n_jobs, 1)
    seed = _check_int("seed", seed, 0)
    rows_per_group = _check_int("rows_per_group", rows_per_group, 1)
    nodes = _check_int("nodes", nodes, 1)
    if isinstance(days, bool) or not isinstance(days, (int, float)) or not (
        math.isfinite(days) and days > 0
    ):
        raise ValueError(f"days={days!r} must be a finite number; allowed: days > 0")
    if power_samples not in ("full", "short"):
        raise ValueError(f"power_samples={power_samples!r}; allowed: 'full', 'short'")
    if naming not in ("current", "old"):
        raise ValueError(f"naming={naming!r}; allowed: 'current', 'old'")
    bad = {k: _check_int(f"bad_rows[{k!r}]", v, 0) for k, v in (bad_rows or {}).items()}
    unknown = sorted(set(bad) - set(DROP_REASONS))
    if unknown:
        raise ValueError(
            f"bad_rows has unknown kind(s) {unknown}; allowed: {', '.join(DROP_REASONS)}"
        )
    if naming == "old" and bad.get("power_columns_differ", 0):
        raise ValueError("bad_rows['power_columns_differ'] needs naming='current' (cpu/mem lists)")
    if sum(bad.values()) > n_jobs:
        raise ValueError(f"bad_rows total {sum(bad.values())} exceeds n_jobs={n_jobs}")

    rng = np.random.default_rng(seed)
    p = M100JobParams()
    vals = np.asarray(p.node_values, dtype=np.int64)
    w = np.asarray(p.node_weights, dtype=np.float64) * (vals <= nodes)
    if w.sum() <= 0:
        vals, w = np.array([1]), np.array([1.0])

    # --- scalar columns
    span_s = int(days * 86400)
    start_s = np.sort(rng.integers(0, max(span_s, 1), n_jobs))
    run_s = np.clip(
        np.round(np.exp(rng.normal(p.log_run_time_mean, p.log_run_time_std, n_jobs))),
        p.run_time_min_s, p.run_time_max_s,
    ).astype(np.int64)
    ratio = rng.uniform(p.time_limit_ratio_low, p.time_limit_ratio_high, n_jobs)
    limit_min = np.minimum(np.ceil(run_s * ratio / 60.0), 1440).astype(np.int64)
    limit_min = np.maximum(limit_min, np.ceil(run_s / 60.0).astype(np.int64))
    wait_s = np.round(rng.exponential(600.0, n_jobs)).astype(np.int64)
    n_nodes = rng.choice(vals, n_jobs, p=w / w.sum()).astype(np.int64)
    gpu_job = rng.random(n_jobs) >= p.cpu_only_fraction
    gpus_used = np.where(gpu_job, rng.choice([1, 2, 4], n_jobs, p=[0.2, 0.2, 0.6]), 0)
    n_gpus = (gpus_used * n_nodes).astype(np.int64)
    first_node = rng.integers(0, nodes, n_jobs)
    node_offsets = np.concatenate([[0], np.cumsum(n_nodes)])
    rank_in_job = np.arange(node_offsets[-1]) - np.repeat(node_offsets[:-1], n_nodes)
    node_ids = (np.repeat(first_node, n_nodes) + rank_in_job) % nodes  # contiguous block
    cores_per_node = rng.choice([32, 64, 128], n_jobs)
    threads = rng.choice([1, 2, 4], n_jobs)

    # --- power lists (per job levels, per sample 3 % noise)
    if power_samples == "full":
        n_samp = np.maximum(np.round(run_s / SAMPLE_PERIOD_S), 1).astype(np.int64)
    else:
        n_samp = rng.integers(1, 4, n_jobs)
    cpu_lvl = 2 * rng.uniform(50, 190, n_jobs)
    mem_lvl = rng.uniform(20, 80, n_jobs)
    gpu_lvl = gpus_used * rng.uniform(60, 290, n_jobs) + (4 - gpus_used) * 40.0
    rest_lvl = NICS_PER_NODE * NIC_POWER_W + NVME_POWER_W + rng.uniform(30, 80, n_jobs)
    total = int(n_samp.sum())
    rep = np.repeat(np.arange(n_jobs), n_samp)

    def series(level):
        x = np.repeat(level * n_nodes, n_samp) * (1.0 + 0.03 * rng.standard_normal(total))
        return np.maximum(np.round(x), 0).astype(np.int64)

    cpu_w, mem_w, gpu_w = series(cpu_lvl), series(mem_lvl), series(gpu_lvl)
    node_w = cpu_w + mem_w + gpu_w + np.round(rest_lvl * n_nodes)[rep].astype(np.int64)
    power_lists = {"node": (node_w, n_samp), "cpu": (cpu_w, n_samp), "mem": (mem_w, n_samp)}
    off = np.concatenate([[0], np.cumsum(n_samp)])

    # --- inject bad rows: distinct rows, one kind each
    id_null = np.zeros(n_jobs, bool)
    start_null = np.zeros(n_jobs, bool)
    end_null = np.zeros(n_jobs, bool)
    end_shift = np.zeros(n_jobs, np.int64)
    spoil_lists: dict[int, dict[str, list | None]] = {}
    order = rng.permutation(n_jobs)
    pos = 0
    for kind in DROP_REASONS:
        k = bad.get(kind, 0)
        rows = order[pos:pos + k]
        pos += k
        for j, r in enumerate(rows):
            r = int(r)
            lists = {c: power_lists[c][0][off[r]:off[r + 1]].tolist() for c in power_lists}
            if kind == "missing_job_id":
                id_null[r] = True
            elif kind == "missing_times":
                (end_null if j % 2 == 0 else start_null)[r] = True
            elif kind == "end_before_start":
                end_shift[r] = -(run_s[r] + 1 + int(rng.integers(0, 3600)))
            elif kind == "bad_allocation":
                n_nodes[r] = 0
            elif kind == "bad_time_limit":
                limit_min[r] = 0
            elif kind == "empty_power_series":
                lists = {c: [] for c in lists}
            elif kind == "null_power_sample":
                lists["node"][len(lists["node"]) // 2] = None
            elif kind == "power_columns_differ":
                lists["cpu"] = lists["cpu"] + [lists["cpu"][-1]]
            elif kind == "power_length_mismatch":
                m = 2 * len(lists["node"]) + 5
                lists = {c: (v * (m // len(v) + 1))[:m] for c, v in lists.items()}
            elif kind == "negative_power":
                lists["node"][0] = -abs(lists["node"][0]) - 1
            if kind in ("empty_power_series", "null_power_sample", "power_columns_differ",
                        "power_length_mismatch", "negative_power"):
                spoil_lists[r] = lists

    def list_array(name: str) -> pa.Array:
        values, lengths = power_lists[name]
        offs = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        good = pa.ListArray.from_arrays(pa.array(offs), pa.array(values, pa.int64()))
        pieces, at = [], 0  # splice the spoiled rows into the good array
        for r in sorted(spoil_lists):
            pieces += [good.slice(at, r - at), pa.array([spoil_lists[r][name]], good.type)]
            at = r + 1
        return pa.concat_arrays([*pieces, good.slice(at)]) if pieces else good

    ts_type = pa.timestamp("ns", tz="UTC")
    base_ns = t0.as_unit("ns").value

    def ts(sec, null=None):
        return pa.array(base_ns + sec.astype(np.int64) * _NS_PER_S, type=ts_type, mask=null)

    end_s = start_s + run_s + end_shift
    job_ids = 1_000_000 + np.sort(rng.choice(9_000_000, n_jobs, replace=False))
    layout = [f'{{"{a}": {c}}}' for a, c in zip(first_node.tolist(), cores_per_node.tolist())]
    ncores = (cores_per_node * n_nodes).astype(np.int64)
    node_list = pa.ListArray.from_arrays(
        pa.array(node_offsets.astype(np.int32)), pa.array(node_ids, pa.int64())
    )
    no_req_nodes = pa.ListArray.from_arrays(
        pa.array(np.zeros(n_jobs + 1, np.int32)), pa.array([], pa.int64())
    )
    ints = lambda x: pa.array(np.asarray(x, dtype=np.int64))
    cols = {
        "cores_alloc_layout": pa.array(layout, pa.string()),
        "cores_allocated": pa.array(layout, pa.string()),
        "cores_per_task": ints(np.maximum(cores_per_node // 4, 1)),
        "derived_ec": pa.array(["0:0"] * n_jobs, pa.string()),
        "eligible_time": ts(start_s - wait_s // 2),
        "end_time": ts(end_s, end_null),
        "group_id": ints(rng.integers(1, 60, n_jobs)),
        "job_id": pa.array(job_ids.astype(np.int64), mask=id_null),
        "job_state": pa.array(_JOB_STATES[rng.integers(0, len(_JOB_STATES), n_jobs)], pa.string()),
        "nodes": node_list,
        "num_cores_req": ints(ncores),
        "num_cores_alloc": ints(ncores),
        "num_gpus_req": ints(n_gpus),
        "num_gpus_alloc": ints(n_gpus),
        "num_nodes_req": ints(n_nodes),
        "num_nodes_alloc": ints(n_nodes),
        "mem_req": ints(n_nodes * 237_000),
        "mem_alloc": ints(n_nodes * 237_000),
        "num_tasks": ints(np.maximum(n_nodes * 4, 1)),
        "partition": pa.array(np.where(gpu_job, "1", "0"), pa.string()),
        "priority": ints(rng.integers(1_000, 100_000, n_jobs)),
        "qos": pa.array(["normal"] * n_jobs, pa.string()),
        "req_nodes": no_req_nodes,
        "run_time": ints(np.maximum(end_s - start_s, 0)),
        "shared": ints(np.zeros(n_jobs)),
        "start_time": ts(start_s, start_null),
        "state_reason": pa.array(["None"] * n_jobs, pa.string()),
        "submit_time": ts(start_s - wait_s),
        "threads_per_core": ints(threads),
        "time_limit": ints(limit_min),
        "user_id": ints(rng.integers(1, 900, n_jobs)),
    }
    if naming == "current":
        cols["node_power_consumption"] = list_array("node")
        cols["cpu_power_consumption"] = list_array("cpu")
        cols["mem_power_consumption"] = list_array("mem")
    else:
        cols = {k.replace("cores_", "cpus_"): v for k, v in cols.items()}
        cols["power_consumption"] = list_array("node")
    table = pa.table(cols)
    path = Path(path)
    pq.write_table(table, path, row_group_size=rows_per_group)

    valid = ~(start_null | end_null)
    return {
        "path": path,
        "n_rows": n_jobs,
        "row_groups": pq.ParquetFile(path).metadata.num_row_groups,
        "first_start": t0 + pd.Timedelta(seconds=int(start_s[valid].min())),
        "last_end": t0 + pd.Timedelta(seconds=int(end_s[valid].max())),
        "bad_rows": {k: v for k, v in bad.items() if v},
    }


# ----------------------------------------------------------------------------- rebasing


def rebase_offset(scenario_start: datetime, trace_start: datetime) -> pd.Timedelta:
    """Whole number of weeks closest to ``scenario_start - trace_start``.

    Shifting the trace by this offset keeps each job's UTC weekday and time of day,
    so a Monday-morning submission peak stays on Monday morning. Ties (exactly 3.5 days
    off a whole week) round towards the later week.

    Parameters
    ----------
    scenario_start, trace_start : datetime.datetime
        Timezone-aware.

    Returns
    -------
    pandas.Timedelta
        ``k * 7 days`` with integer ``k``; ``|offset - (scenario_start - trace_start)|
        <= 3.5 days``.
    """
    s, t = _utc("scenario_start", scenario_start), _utc("trace_start", trace_start)
    delta_ns = (s - t).value
    week_ns = _WEEK.value
    k = (2 * delta_ns + week_ns) // (2 * week_ns)  # round half up, exact on integers
    return k * _WEEK


def rebased_window(
    scenario_start: datetime, duration: timedelta, trace_start: datetime
) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timedelta]:
    """Trace window to read so that ``trace time + offset = scenario time``.

    The trace day actually used is not ``trace_start`` itself but the instant with the
    scenario start's UTC weekday and time of day nearest to it (at most 3.5 days away,
    before or after): ``window_start = scenario_start - offset`` with ``offset`` from
    :func:`rebase_offset`. Weekday and time of day are kept in UTC; the site's local
    clock may differ by the DST hour between trace and scenario seasons. If the window
    falls outside the trace, :func:`read_pm100` raises and names the covered range.

    Parameters
    ----------
    scenario_start : datetime.datetime
        Start of the simulated period, timezone-aware.
    duration : datetime.timedelta or pandas.Timedelta
        Length of the simulated period, > 0.
    trace_start : datetime.datetime
        Where in the trace to replay from (approximately), timezone-aware.

    Returns
    -------
    (window_start, window_end, offset) : (Timestamp, Timestamp, Timedelta)
        Trace window [window_start, window_end) in UTC and the offset to add to its
        times.
    """
    if not isinstance(duration, timedelta) or pd.Timedelta(duration) <= pd.Timedelta(0):
        raise ValueError(f"duration={duration!r} must be a timedelta; allowed: duration > 0")
    offset = rebase_offset(scenario_start, trace_start)
    w0 = _utc("scenario_start", scenario_start) - offset
    return w0, w0 + pd.Timedelta(duration), offset
