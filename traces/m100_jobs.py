"""Marconi100 job tables with submit times only (the format of ``shared/data/m100_jobs``).

``read_m100_jobs`` parses the table into our names and units and returns ``(jobs,
meta)`` (STYLE item 7). The table has no start or end times and no power: replay
queues the jobs from their submit times (``twin.sim.scheduling``) and the GPU and host
models give the power.

Columns read: ``job_id, submit_time`` (UTC), ``run_time`` [s], ``num_nodes_alloc``,
``num_gpus_alloc``, ``time_limit`` [min]. Source: CINECA M100 ExaData (Borghesi et al.,
Scientific Data 2023, doi 10.1038/s41597-023-02174-3), excerpt described in
``shared/data/README.md``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

REQUIRED = ("job_id", "submit_time", "run_time", "num_nodes_alloc", "num_gpus_alloc", "time_limit")


def read_m100_jobs(path, start: datetime | None = None, end: datetime | None = None) -> tuple[pd.DataFrame, dict]:
    """Jobs submitted in ``[start, end)`` (all when not given).

    Returns
    -------
    jobs : DataFrame
        ``job_id`` (int64), ``submit_time`` (UTC), ``run_time_s``, ``time_limit_s`` (float64),
        ``num_nodes``, ``num_gpus`` (int64), sorted by submit time.
    meta : dict
        ``source``, ``rows_read``, ``rows_kept``, ``dropped`` (reason -> count),
        ``submit_first``, ``submit_last`` (ISO UTC).

    Rows that cannot be replayed are dropped and counted by reason: ``missing_values``,
    ``non_positive_run_time``, ``non_positive_nodes``, ``negative_gpus``. A run time above
    the time limit is kept and the limit raised to it (``limit_raised`` counts them: Slurm
    lets jobs overrun by its grace time).
    """
    path = Path(path)
    try:
        schema = pq.read_schema(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read as parquet: {exc}") from None
    missing = [c for c in REQUIRED if c not in schema.names]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; a Marconi100 job table needs {list(REQUIRED)}")
    df = pd.read_parquet(path, columns=list(REQUIRED))
    rows_read = len(df)
    submit = pd.to_datetime(df["submit_time"], utc=True)
    if start is not None:
        keep = submit >= pd.Timestamp(start)
        if end is not None:
            keep &= submit < pd.Timestamp(end)
        df, submit = df[keep.to_numpy()], submit[keep.to_numpy()]
    dropped: dict[str, int] = {}

    def drop(mask: np.ndarray, reason: str) -> None:
        nonlocal df, submit
        n = int(mask.sum())
        if n:
            dropped[reason] = dropped.get(reason, 0) + n
            df, submit = df[~mask], submit[~mask]

    drop(df.isna().any(axis=1).to_numpy() | submit.isna().to_numpy(), "missing_values")
    drop((df["run_time"] <= 0).to_numpy(), "non_positive_run_time")
    drop((df["num_nodes_alloc"] <= 0).to_numpy(), "non_positive_nodes")
    drop((df["num_gpus_alloc"] < 0).to_numpy(), "negative_gpus")
    run_s = df["run_time"].to_numpy(dtype=float)
    limit_s = df["time_limit"].to_numpy(dtype=float) * 60.0
    raised = run_s > limit_s
    jobs = pd.DataFrame({
        "job_id": df["job_id"].to_numpy(dtype=np.int64),
        "submit_time": submit.to_numpy(),
        "run_time_s": run_s,
        "time_limit_s": np.where(raised, run_s, limit_s),
        "num_nodes": df["num_nodes_alloc"].to_numpy(dtype=np.int64),
        "num_gpus": df["num_gpus_alloc"].to_numpy(dtype=np.int64),
    }).sort_values("submit_time", kind="stable").reset_index(drop=True)
    jobs["submit_time"] = pd.to_datetime(jobs["submit_time"], utc=True)
    meta = {
        "source": str(path), "rows_read": rows_read, "rows_kept": len(jobs), "dropped": dropped,
        "limit_raised": int(raised.sum()),
        "submit_first": jobs["submit_time"].min().isoformat() if len(jobs) else None,
        "submit_last": jobs["submit_time"].max().isoformat() if len(jobs) else None,
    }
    return jobs, meta
