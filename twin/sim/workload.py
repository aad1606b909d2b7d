"""The job table of a run, from the scenario's workload source.

Every source yields the same columns (:data:`traces.synthetic.JOB_COLUMNS`, times in
seconds since the scenario's start) plus:

* ``flexible`` (bool) and ``deadline_s``: traces carry no deadlines or flexibility, so
  the scenario assigns them (seeded, generator ``(seed, 3)``): a share
  ``flexible_fraction`` of jobs is flexible and must finish by ``submit + run time x
  (1 + slack)`` with ``slack ~ U(deadline_slack_min, deadline_slack_max)``; the others
  have ``deadline_s = submit + run time`` (start at once). Assumption: docs/traces.md.
* ``start_s`` (PM100 only): the recorded start time; such jobs bypass the queue.
* ``power`` (PM100 only, in :class:`Workload`): per-job GPU and host power series.

``trace_meta`` goes to ``summary.json`` (source, window, offset, rows dropped by reason).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

from traces.m100_jobs import read_m100_jobs
from traces.pm100 import read_pm100, rebase_offset, rebased_window
from traces.synthetic import JOB_COLUMNS, M100JobParams, generate_m100_like_jobs
from twin.scenario import Scenario


class WorkloadError(ValueError):
    """A trace named by the scenario cannot be replayed (the message says why)."""


@dataclass
class Workload:
    jobs: pd.DataFrame
    trace_meta: dict | None = None
    gpu_power_w: list | None = None  # PM100: per job, W for the whole job, one sample per period
    host_power_w: list | None = None
    sample_period_s: float = 20.0
    recorded_starts: bool = False
    dropped: dict = field(default_factory=dict)


def _start_hour(sc: Scenario) -> float:
    return sc.start.hour + sc.start.minute / 60.0 + sc.start.second / 3600.0


def assign_flexibility(jobs: pd.DataFrame, sc: Scenario) -> pd.DataFrame:
    """Add ``flexible`` and ``deadline_s`` (see module docstring)."""
    w = sc.workload
    rng = np.random.default_rng([sc.seed, 3])
    n = len(jobs)
    flexible = rng.random(n) < w.flexible_fraction
    slack = rng.uniform(w.deadline_slack_min, w.deadline_slack_max, n)
    run = jobs["run_time_s"].to_numpy()
    jobs = jobs.copy()
    jobs["flexible"] = flexible
    jobs["deadline_s"] = jobs["submit_s"].to_numpy() + run * (1.0 + np.where(flexible, slack, 0.0))
    return jobs


def _utilisation(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """GPU and host utilisation for trace jobs without power, from the synthetic stream's
    Beta laws (assumptions stated in :class:`traces.synthetic.M100JobParams`)."""
    p = M100JobParams()
    rng = np.random.default_rng([seed, 4])
    return (rng.beta(p.gpu_util_beta_a, p.gpu_util_beta_b, n), rng.beta(p.host_util_beta_a, p.host_util_beta_b, n))


def _drop(jobs: pd.DataFrame, bad: np.ndarray, reason: str, dropped: dict) -> pd.DataFrame:
    """Remove the rows flagged ``bad`` and count them under ``reason``."""
    if bad.any():
        dropped[reason] = dropped.get(reason, 0) + int(bad.sum())
        jobs = jobs[~bad].reset_index(drop=True)
    return jobs


def _offset(sc: Scenario) -> pd.Timedelta:
    w = sc.workload
    start = pd.Timestamp(sc.start)
    return rebase_offset(start, pd.Timestamp(w.trace_start)) if w.rebase else start - pd.Timestamp(w.trace_start)


def _m100_jobs(sc: Scenario) -> Workload:
    w, fac = sc.workload, sc.facility
    warmup = timedelta(hours=w.warmup_h)
    offset = _offset(sc)
    start = pd.Timestamp(sc.start)
    try:
        jobs, meta = read_m100_jobs(w.path, start - offset - warmup, start - offset + timedelta(seconds=sc.duration_s))
    except ValueError as exc:
        raise WorkloadError(f"workload.path = {w.path!r}: {exc}") from None
    dropped = dict(meta["dropped"])
    jobs = _drop(jobs, jobs["num_nodes"].to_numpy() > fac.nodes, "more_nodes_than_facility", dropped)
    jobs = _drop(jobs, jobs["num_gpus"].to_numpy() > jobs["num_nodes"].to_numpy() * fac.gpus_per_node,
                 "more_gpus_than_nodes_hold", dropped)
    submit_s = ((jobs["submit_time"] + offset) - start).dt.total_seconds().to_numpy()
    gpu_util, host_util = _utilisation(len(jobs), sc.seed)
    table = pd.DataFrame({
        "job_id": np.arange(len(jobs), dtype=np.int64),
        "submit_s": submit_s,
        "run_time_s": jobs["run_time_s"].to_numpy(),
        "time_limit_s": jobs["time_limit_s"].to_numpy(),
        "num_nodes": jobs["num_nodes"].to_numpy(dtype=np.int64),
        "num_gpus": jobs["num_gpus"].to_numpy(dtype=np.int64),
        "gpu_util": np.where(jobs["num_gpus"].to_numpy() > 0, gpu_util, 0.0),
        "host_util": host_util,
    })[list(JOB_COLUMNS)]
    trace = {"source": "m100_jobs", "path": w.path, "offset_s": offset.total_seconds(),
             "window_start_utc": (start - offset - warmup).isoformat(), "jobs": len(table), "dropped": dropped,
             "limit_raised": meta["limit_raised"], "rows_read": meta["rows_read"]}
    return Workload(table, trace, dropped=dropped)


def _pm100(sc: Scenario) -> Workload:
    w, fac = sc.workload, sc.facility
    start = pd.Timestamp(sc.start)
    duration = timedelta(seconds=sc.duration_s)
    if w.rebase:
        window_start, window_end, offset = rebased_window(start, duration, pd.Timestamp(w.trace_start))
    else:
        window_start, offset = pd.Timestamp(w.trace_start), _offset(sc)
        window_end = window_start + duration
    try:
        jobs, meta = read_pm100(w.path, window_start, window_end, gpus_per_node=fac.gpus_per_node)
    except ValueError as exc:
        raise WorkloadError(f"workload.path = {w.path!r}: {exc}") from None
    dropped = dict(meta["dropped"])
    jobs = _drop(jobs, jobs["num_nodes"].to_numpy() > fac.nodes, "more_nodes_than_facility", dropped)
    t_start = ((jobs["start_time"] + offset) - start).dt.total_seconds().to_numpy()
    submit = ((jobs["submit_time"] + offset) - start).dt.total_seconds().to_numpy()
    table = pd.DataFrame({
        "job_id": np.arange(len(jobs), dtype=np.int64),
        "submit_s": np.minimum(submit, t_start),
        "run_time_s": jobs["run_time_s"].to_numpy(dtype=float),
        "time_limit_s": np.maximum(jobs["time_limit_s"].to_numpy(dtype=float), jobs["run_time_s"].to_numpy()),
        "num_nodes": jobs["num_nodes"].to_numpy(dtype=np.int64),
        "num_gpus": jobs["num_gpus"].to_numpy(dtype=np.int64),
        "gpu_util": np.where(jobs["num_gpus"].to_numpy() > 0, 1.0, 0.0),  # unused: power comes from the trace
        "host_util": np.ones(len(jobs)),
    })[list(JOB_COLUMNS)]
    table["start_s"] = t_start
    gpu = list(jobs["gpu_power_w"]) if "gpu_power_w" in jobs else [None] * len(jobs)
    host = list(jobs["host_power_w"]) if "host_power_w" in jobs else [None] * len(jobs)
    node = list(jobs["node_power_w"])
    # old PM100 naming has node power only: split it with the host model (busy hosts first)
    for i in range(len(jobs)):
        if gpu[i] is None or host[i] is None:
            per_node = np.asarray(node[i], dtype=float) / table["num_nodes"].iat[i]
            host_w = np.minimum(per_node, fac.host_busy_w)
            gpu[i] = (per_node - host_w) * table["num_nodes"].iat[i]
            host[i] = host_w * table["num_nodes"].iat[i]
    order = np.argsort(t_start, kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    table["job_id"] = np.arange(len(table), dtype=np.int64)
    trace = {"source": "pm100", "path": w.path, "offset_s": offset.total_seconds(),
             "window_start_utc": window_start.isoformat(), "window_end_utc": window_end.isoformat(),
             "jobs": len(table), "dropped": dropped, "row_groups_read": meta.get("row_groups_read"),
             "row_groups_total": meta.get("row_groups_total"), "unavailable": meta.get("unavailable")}
    return Workload(table, trace, [np.asarray(gpu[k], dtype=float) for k in order],
                    [np.asarray(host[k], dtype=float) for k in order], float(meta.get("sample_period_s", 20.0)),
                    recorded_starts=True, dropped=dropped)


def build_workload(sc: Scenario) -> Workload:
    """The run's jobs from ``[workload] source``, with flexibility assigned."""
    w, fac = sc.workload, sc.facility
    if w.source == "synthetic":
        jobs = generate_m100_like_jobs(fac.nodes, fac.gpus_per_node, -w.warmup_h * 3600.0, sc.duration_s,
                                       w.offered_load, sc.seed, start_utc_hour=_start_hour(sc))
        wl = Workload(jobs)
    elif w.source == "m100_jobs":
        wl = _m100_jobs(sc)
    else:
        wl = _pm100(sc)
    wl.jobs = assign_flexibility(wl.jobs, sc)
    return wl
