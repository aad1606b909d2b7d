"""Seeded synthetic traces: a Marconi100-like job stream and hourly grid carbon intensity.

Both generators are pure functions: every random draw comes from a
``numpy.random.Generator`` built from the integer ``seed`` passed in, so the same
arguments always give the same trace. Their default parameters were derived from
real data in ``../shared/data`` (see the data README there; the data files are not
part of this repository). The ``calibrate_*`` functions recompute those parameters
from the data files; ``tests/test_synthetic.py`` checks that the committed numbers
equal their output after rounding.

References
----------
.. [1] F. Antici, A. Borghesi et al., "PM100: a job power consumption dataset of a
   large-scale production HPC system", and A. Borghesi et al., "M100 ExaData",
   Scientific Data 10, 288 (2023). doi:10.1038/s41597-023-02174-3
.. [2] ENTSO-E Transparency Platform, actual generation per production type (A75),
   carbon intensity derived by the GridPilot v1.0 reproducibility kit (CC BY 4.0).
"""

import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from numbers import Integral, Real
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.signal import lfilter, lfiltic

__all__ = [
    "JOB_COLUMNS",
    "M100JobParams",
    "CarbonParams",
    "CARBON_PARAMS",
    "generate_m100_like_jobs",
    "calibrate_m100_job_params",
    "synthetic_carbon_intensity",
    "ar2_from_autocorr",
    "CiStatistics",
    "ci_statistics",
    "calibrate_ci_params",
    "CI_CLEAN_WINDOW",
    "CFF_FROM_CI",
    "carbon_free_fraction_from_ci",
    "calibrate_cff_from_ci",
    "shared_data_dir",
]

#: Columns of the frame returned by :func:`generate_m100_like_jobs`, in order.
JOB_COLUMNS = (
    "job_id",
    "submit_s",
    "run_time_s",
    "time_limit_s",
    "num_nodes",
    "num_gpus",
    "gpu_util",
    "host_util",
)

_SECONDS_PER_HOUR = 3600.0
_RUN_TIME_MIN_S = 60.0  # clip bounds of the run-time law (a choice, not fitted)
_RUN_TIME_MAX_S = 86400.0
# Floor of the smoothed hour-of-day submission profile, as a fraction of its mean,
# so that no hour has a zero arrival rate.
_PROFILE_FLOOR = 0.05


def shared_data_dir() -> Path:
    """Folder of the shared real data (never copied into this repository).

    Returns
    -------
    pathlib.Path
        ``$GRIDTWIN_SHARED_DATA`` if set, else ``<repo root>/../shared/data``.
        The folder may not exist (tests that need it skip).
    """
    env = os.environ.get("GRIDTWIN_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


# --------------------------------------------------------------------------- checks


def _check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    """Return ``value`` as int or raise ValueError naming it and the allowed range."""
    allowed = f"{lo} <= {name}" + (f" <= {hi}" if hi is not None else "")
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name}={value!r} must be an integer; allowed: {allowed}")
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{name}={value!r} is out of range; allowed: {allowed}")
    return int(value)


def _check_real(
    name: str,
    value,
    lo: float = -math.inf,
    hi: float = math.inf,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """Return ``value`` as a finite float or raise ValueError naming it and the range."""
    lo_txt = "" if lo == -math.inf else f"{lo} {'<' if lo_open else '<='} "
    hi_txt = "" if hi == math.inf else f" {'<' if hi_open else '<='} {hi}"
    allowed = f"{lo_txt}{name}{hi_txt} (finite)"
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite real number; allowed: {allowed}")
    v = float(value)
    if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        raise ValueError(f"{name}={value!r} is out of range; allowed: {allowed}")
    return v


# ------------------------------------------------------------------- M100 job stream


@dataclass(frozen=True)
class M100JobParams:
    """Parameters of the synthetic Marconi100-like job stream.

    Defaults were derived by :func:`calibrate_m100_job_params` from
    ``shared/data/m100_jobs/m100_jobs_2022-01.parquet`` (1 994 real jobs submitted
    2022-01-31 17:20 -> 2022-02-01 23:54 UTC, CINECA Marconi100 [1]_), except the
    run-time clip bounds and the utilisation Beta laws, which are assumptions.

    Attributes
    ----------
    cpu_only_fraction : float
        Probability that a job allocates no GPU [-]. Excerpt: 1 181 / 1 994 jobs
        have ``num_gpus_alloc == 0``. The other 813 all hold every GPU of their
        nodes (``num_gpus_alloc == 4 * num_nodes_alloc`` for 813 / 813; no job uses
        1-3 GPUs of a node), so a GPU job gets ``num_nodes * gpus_per_node``.
    node_values : tuple of int
        Node counts a job may request [nodes]: every distinct ``num_nodes_alloc``
        in the excerpt (an empirical pmf, no binning).
    node_weights : tuple of float
        Relative weights of ``node_values`` [-] (the job counts in the excerpt;
        normalised after truncation at the facility's node count). Node count is
        drawn independently of GPU use and run time: in the excerpt the two classes
        have near-equal node-count distributions and corr(log nodes, log run time)
        is 0.03.
    log_run_time_mean, log_run_time_std : float
        Mean and standard deviation (ddof 0) of ``ln(run_time [s])`` after clipping
        run time to ``[run_time_min_s, run_time_max_s]`` [ln s]. The lognormal
        matches the excerpt's 5/25/50/75/95 % quantiles within ~10 %.
    run_time_min_s, run_time_max_s : float
        Clip bounds of the sampled run time [s] (60 s, 24 h; the excerpt's range
        is 60 s to 20.8 h).
    time_limit_ratio_low, time_limit_ratio_high : float
        ``time_limit / run_time`` is drawn uniform on this interval [-], fitted by
        moments (mean -/+ sqrt(3) std) on the excerpt's ratio (mean 2.02, std 0.525;
        its 5/25/50/75/95 % quantiles 1.22/1.58/2.00/2.47/2.85 are those of a
        uniform law). Must be >= 1 so that ``run_time <= time_limit``.
    hourly_submit_weights : tuple of 24 float
        Relative submission rate for each UTC hour of day 0..23 [-] (normalised to
        mean 1 by the generator). The excerpt is not a plain 30.6 h window: it holds
        the jobs that *ended* on 2022-02-01 UTC (every ``submit_time + run_time``
        lies in that day), so the 33 jobs submitted on 2022-01-31 are only those
        that ran past midnight, and late submissions on 02-01 only short ones. For
        an arrival rate with a 24 h period this selection gives every UTC hour of
        day an exposure of exactly 1 h, so the count per UTC hour (both dates
        folded) estimates the daily profile (:func:`_hourly_submit_profile`); it is
        smoothed by a least-squares fit of a mean plus 24 h and 12 h harmonics,
        floored at 5 % of its mean and normalised to mean 1. Peak 11 UTC (1.65x
        mean), trough 03 UTC (0.29x). The expected daily count is the excerpt's
        1 994 jobs (offered load 0.249 on 980 nodes).
    gpu_util_beta_a, gpu_util_beta_b : float
        ASSUMPTION (no per-job utilisation in the excerpt): ``gpu_util`` of a GPU
        job ~ Beta(a, b) [-], default Beta(3, 2): mean 0.6, std 0.2.
    host_util_beta_a, host_util_beta_b : float
        ASSUMPTION: ``host_util`` ~ Beta(a, b) [-] for every job, default
        Beta(2, 2): mean 0.5, std 0.22.
    """

    # --- derived from shared/data/m100_jobs/m100_jobs_2022-01.parquet by
    # --- calibrate_m100_job_params() (rounded as noted; see the class docstring)
    cpu_only_fraction: float = 0.5923  # 1181/1994, 4 dp
    node_values: tuple[int, ...] = (
        1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 18, 20, 24, 25, 30, 32, 36, 70, 96, 256,
    )  # fmt: skip
    node_weights: tuple[float, ...] = (
        1351, 169, 57, 80, 2, 3, 2, 123, 44, 41, 7, 11, 39, 6, 3, 47, 1, 5, 2, 1,
    )  # fmt: skip  # job counts (exact); mean 4.14 nodes/job
    log_run_time_mean: float = 7.0214  # ln s, 4 dp (median e^7.02 = 1 121 s)
    log_run_time_std: float = 1.2889  # ln s, 4 dp
    run_time_min_s: float = _RUN_TIME_MIN_S
    run_time_max_s: float = _RUN_TIME_MAX_S
    time_limit_ratio_low: float = 1.1104  # 4 dp
    time_limit_ratio_high: float = 2.9300  # 4 dp
    hourly_submit_weights: tuple[float, ...] = (
        0.561, 0.412, 0.312, 0.291, 0.365, 0.531, 0.766, 1.032,
        1.287, 1.490, 1.613, 1.646, 1.598, 1.494, 1.365, 1.243,
        1.152, 1.098, 1.075, 1.063, 1.036, 0.975, 0.869, 0.724,
    )  # fmt: skip  # UTC hours 0..23, 3 dp
    # --- assumptions, not calibrated
    gpu_util_beta_a: float = 3.0
    gpu_util_beta_b: float = 2.0
    host_util_beta_a: float = 2.0
    host_util_beta_b: float = 2.0

    def __post_init__(self) -> None:
        _check_real("cpu_only_fraction", self.cpu_only_fraction, 0.0, 1.0)
        if len(self.node_values) == 0 or len(self.node_values) != len(self.node_weights):
            raise ValueError(
                f"node_values (len {len(self.node_values)}) and node_weights "
                f"(len {len(self.node_weights)}) must be non-empty and of equal length"
            )
        for v in self.node_values:
            _check_int("node_values[i]", v, 1)
        for w in self.node_weights:
            _check_real("node_weights[i]", w, 0.0)
        if sum(self.node_weights) <= 0:
            raise ValueError(f"node_weights={self.node_weights!r} must have a positive sum")
        _check_real("log_run_time_std", self.log_run_time_std, 0.0, lo_open=True)
        _check_real("log_run_time_mean", self.log_run_time_mean)
        _check_real("run_time_min_s", self.run_time_min_s, 0.0, lo_open=True)
        _check_real("run_time_max_s", self.run_time_max_s, self.run_time_min_s)
        _check_real("time_limit_ratio_low", self.time_limit_ratio_low, 1.0)
        _check_real("time_limit_ratio_high", self.time_limit_ratio_high, self.time_limit_ratio_low)
        if len(self.hourly_submit_weights) != 24:
            raise ValueError(
                f"hourly_submit_weights has {len(self.hourly_submit_weights)} entries; "
                "allowed: exactly 24 (UTC hours 0..23)"
            )
        for w in self.hourly_submit_weights:
            _check_real("hourly_submit_weights[h]", w, 0.0, lo_open=True)
        for name in ("gpu_util_beta_a", "gpu_util_beta_b", "host_util_beta_a", "host_util_beta_b"):
            _check_real(name, getattr(self, name), 0.0, lo_open=True)


def _truncated_node_pmf(params: M100JobParams, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Node counts <= ``n_nodes`` and their renormalised probabilities."""
    values = np.asarray(params.node_values, dtype=np.int64)
    weights = np.asarray(params.node_weights, dtype=np.float64)
    keep = (values <= n_nodes) & (weights > 0)
    if not keep.any():
        raise ValueError(
            f"n_nodes={n_nodes} is smaller than every node count with positive weight "
            f"in params.node_values (smallest {values[weights > 0].min()}); "
            "allowed: n_nodes >= that value"
        )
    return values[keep], weights[keep] / weights[keep].sum()


def _clipped_lognormal_mean(mu: float, sigma: float, lo: float, hi: float) -> float:
    """E[clip(X, lo, hi)] for ln X ~ N(mu, sigma^2) [same unit as lo, hi]."""

    def phi(z: float) -> float:
        return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))

    a = (math.log(lo) - mu) / sigma
    b = (math.log(hi) - mu) / sigma
    inner = math.exp(mu + 0.5 * sigma**2) * (phi(b - sigma) - phi(a - sigma))
    return lo * phi(a) + hi * (1.0 - phi(b)) + inner


def _arrival_rate_per_s(n_nodes: int, offered_load: float, params: M100JobParams) -> float:
    """Mean job arrival rate [1/s]: offered_load * n_nodes / E[num_nodes * run_time_s]."""
    values, pmf = _truncated_node_pmf(params, n_nodes)
    mean_nodes = float(values @ pmf)
    mean_run_s = _clipped_lognormal_mean(
        params.log_run_time_mean,
        params.log_run_time_std,
        params.run_time_min_s,
        params.run_time_max_s,
    )
    # num_nodes and run_time are drawn independently, so E[product] = product of means.
    return offered_load * n_nodes / (mean_nodes * mean_run_s)


def _diurnal_poisson_times(
    rng: np.random.Generator,
    rate_per_s: float,
    start_s: float,
    end_s: float,
    start_utc_hour: float,
    hourly_weights: tuple[float, ...],
) -> np.ndarray:
    """Sorted arrival times [s] of a Poisson process on [start_s, end_s).

    The intensity is ``rate_per_s * w[h]`` with ``w`` the hourly weights
    normalised to mean 1 and ``h`` the UTC hour of day (piecewise constant), so the
    process is drawn exactly: a Poisson count per hour segment, uniform times in it.
    """
    w = np.asarray(hourly_weights, dtype=np.float64)
    w = w / w.mean()
    u0 = start_utc_hour + start_s / _SECONDS_PER_HOUR  # hours since 00:00 UTC of day 0
    u1 = start_utc_hour + end_s / _SECONDS_PER_HOUR
    inner_h = np.arange(math.floor(u0) + 1, math.ceil(u1), dtype=np.float64)
    edges_s = np.concatenate(([start_s], (inner_h - start_utc_hour) * _SECONDS_PER_HOUR, [end_s]))
    seg_hour = np.floor(np.concatenate(([u0], inner_h))).astype(np.int64) % 24
    seg_len_s = np.diff(edges_s)
    counts = rng.poisson(rate_per_s * w[seg_hour] * seg_len_s)
    times = np.repeat(edges_s[:-1], counts) + rng.random(int(counts.sum())) * np.repeat(
        seg_len_s, counts
    )
    times.sort()
    # Rounding could land a time exactly on end_s; keep the interval half-open.
    return np.minimum(times, np.nextafter(end_s, -math.inf))


def generate_m100_like_jobs(
    n_nodes: int,
    gpus_per_node: int,
    start_s: float,
    end_s: float,
    offered_load: float,
    seed: int,
    params: M100JobParams | None = None,
    *,
    start_utc_hour: float = 0.0,
) -> pd.DataFrame:
    """Seeded synthetic Marconi100-like job stream.

    Arrivals are a Poisson process whose rate is modulated by an hour-of-day
    profile on UTC time (mean 1 over a day):
    ``lambda(t) = lambda * w[h(t)]`` with
    ``lambda = offered_load * n_nodes / E[num_nodes * run_time_s]``, so the
    expected requested node-seconds per second over whole days equal
    ``offered_load * n_nodes``. Over a window that is not a whole number of days
    the expected count follows the profile (e.g. fewer jobs at night).

    Each job independently draws: its node count from the empirical pmf truncated
    at ``n_nodes``; its run time from a lognormal clipped to
    ``[run_time_min_s, run_time_max_s]``; its time limit as ``run_time * r``,
    ``r ~ U(time_limit_ratio_low, time_limit_ratio_high)``, rounded up to a whole
    minute (Slurm limits are in minutes); whether it is CPU-only (Bernoulli
    ``cpu_only_fraction``); and its utilisations (assumed Beta laws, see
    :class:`M100JobParams`).

    Parameters
    ----------
    n_nodes : int
        Nodes of the facility [nodes], >= 1. Jobs request 1..n_nodes nodes.
    gpus_per_node : int
        GPUs per node [GPUs], >= 1 (Marconi100: 4). A GPU job holds all GPUs of
        its nodes (as every GPU job of the M100 excerpt does).
    start_s, end_s : float
        Submission window [s] relative to the scenario start, ``start_s < end_s``;
        ``start_s`` may be negative (warm-up). Submissions lie in
        ``[start_s, end_s)``.
    offered_load : float
        Expected fraction of the facility's node-seconds requested [-],
        ``0 < offered_load <= 2``.
    seed : int
        Seed of the ``numpy.random.Generator`` [-], >= 0.
    params : M100JobParams, optional
        Law parameters; default ``M100JobParams()`` (calibrated on the M100
        excerpt).
    start_utc_hour : float, keyword-only
        UTC hour of day at ``s = 0`` [h], ``0 <= start_utc_hour < 24``.

    Returns
    -------
    pandas.DataFrame
        One row per job sorted by ``submit_s``, columns :data:`JOB_COLUMNS`:

        - ``job_id`` (int64): 0..n-1 in submission order.
        - ``submit_s`` (float64) [s]: submission time relative to the scenario start.
        - ``run_time_s`` (float64) [s]: > 0 and <= ``time_limit_s``.
        - ``time_limit_s`` (float64) [s]: requested wall-time limit (whole minutes).
        - ``num_nodes`` (int64) [nodes]: 1..n_nodes.
        - ``num_gpus`` (int64) [GPUs]: total GPUs of the job, 0 for CPU-only jobs,
          else ``num_nodes * gpus_per_node``.
        - ``gpu_util`` (float64) [-]: mean fraction of each GPU's dynamic
          (idle->max) power range the job draws, in [0, 1]; exactly 0 for CPU-only
          jobs.
        - ``host_util`` (float64) [-]: fraction of the host's dynamic (idle->busy)
          power range, in (0, 1].

    Raises
    ------
    ValueError
        If an argument is outside its allowed range (the message names it).

    Notes
    -----
    Vectorised: 10 000 jobs take a few milliseconds.
    """
    n_nodes = _check_int("n_nodes", n_nodes, 1)
    gpus_per_node = _check_int("gpus_per_node", gpus_per_node, 1)
    start_s = _check_real("start_s", start_s)
    end_s = _check_real("end_s", end_s, start_s, lo_open=True)
    offered_load = _check_real("offered_load", offered_load, 0.0, 2.0, lo_open=True)
    seed = _check_int("seed", seed, 0)
    start_utc_hour = _check_real("start_utc_hour", start_utc_hour, 0.0, 24.0, hi_open=True)
    if params is None:
        params = M100JobParams()
    elif not isinstance(params, M100JobParams):
        raise ValueError(f"params={params!r} must be an M100JobParams or None")

    rng = np.random.default_rng(seed)
    rate_per_s = _arrival_rate_per_s(n_nodes, offered_load, params)
    submit_s = _diurnal_poisson_times(
        rng, rate_per_s, start_s, end_s, start_utc_hour, params.hourly_submit_weights
    )
    n = submit_s.size
    values, pmf = _truncated_node_pmf(params, n_nodes)
    num_nodes = values[rng.choice(values.size, size=n, p=pmf)]
    run_time_s = np.clip(
        np.exp(rng.normal(params.log_run_time_mean, params.log_run_time_std, n)),
        params.run_time_min_s,
        params.run_time_max_s,
    )
    ratio = rng.uniform(params.time_limit_ratio_low, params.time_limit_ratio_high, n)
    time_limit_s = np.ceil(run_time_s * ratio / 60.0) * 60.0
    cpu_only = rng.random(n) < params.cpu_only_fraction
    num_gpus = np.where(cpu_only, 0, num_nodes * gpus_per_node)
    gpu_util = np.where(cpu_only, 0.0, rng.beta(params.gpu_util_beta_a, params.gpu_util_beta_b, n))
    # Beta draws lie in (0, 1); the floor only guards against underflow to 0.
    host_util = np.maximum(
        rng.beta(params.host_util_beta_a, params.host_util_beta_b, n), np.finfo(np.float64).tiny
    )
    return pd.DataFrame(
        {
            "job_id": np.arange(n, dtype=np.int64),
            "submit_s": submit_s.astype(np.float64),
            "run_time_s": run_time_s.astype(np.float64),
            "time_limit_s": time_limit_s.astype(np.float64),
            "num_nodes": num_nodes.astype(np.int64),
            "num_gpus": num_gpus.astype(np.int64),
            "gpu_util": gpu_util.astype(np.float64),
            "host_util": host_util.astype(np.float64),
        },
        columns=list(JOB_COLUMNS),
    )


def _hourly_submit_profile(submit_time: pd.Series, run_time_s: np.ndarray) -> np.ndarray:
    """Smoothed relative submission rate per UTC hour of day (mean 1), see M100JobParams.

    The excerpt holds the jobs that *ended* in the whole UTC days ``[d0, d1)``
    spanned by ``submit + run_time`` (M100: every job in 2022-02-01; queue waits
    are unknown and taken as 0). A job submitted at ``t`` is then in the excerpt
    with probability ``p(t) = P(d0 - t <= R < d1 - t)``, ``R`` the run time (its
    empirical law in the excerpt), and the exposure of UTC hour ``h`` is the
    integral of ``p`` over every time of hour ``h`` [h]. For one day and run times
    under 24 h it is 1 h for every hour (the day before and the day itself add up to
    1), so the rate is the count per UTC hour with both dates folded together.
    """
    t = pd.to_datetime(submit_time, utc=True)
    run_s = np.asarray(run_time_s, dtype=np.float64)
    end = t + pd.to_timedelta(run_s, unit="s")
    d0 = end.min().floor("D")
    d1 = end.max().floor("D") + pd.Timedelta(days=1)
    window_s = (d1 - d0).total_seconds()
    step_s = 60.0
    # midpoints of 1-min bins from d0 - max(run) to d1, in s since d0
    mid_s = np.arange(-run_s.max(), window_s, step_s) + 0.5 * step_s
    r_sorted = np.sort(run_s)

    def below(x: np.ndarray) -> np.ndarray:  # P(R < x), empirical
        return np.searchsorted(r_sorted, x, side="left") / r_sorted.size

    p_seen = below(window_s - mid_s) - below(-mid_s)
    hour = np.floor(mid_s / _SECONDS_PER_HOUR).astype(np.int64) % 24  # d0 is 00:00 UTC
    exposure_h = np.bincount(hour, weights=p_seen * step_s / _SECONDS_PER_HOUR, minlength=24)
    counts = np.bincount(t.dt.hour.to_numpy(), minlength=24)
    rate = counts / exposure_h  # jobs per hour
    h = np.arange(24)
    design = np.column_stack(
        [np.ones(24)] + [f(2 * np.pi * k * h / 24) for k in (1, 2) for f in (np.cos, np.sin)]
    )
    sw = np.sqrt(exposure_h)
    coef, *_ = np.linalg.lstsq(design * sw[:, None], rate * sw, rcond=None)
    fit = design @ coef
    fit = np.maximum(fit, _PROFILE_FLOOR * fit.mean())
    return fit / fit.mean()


def calibrate_m100_job_params(path: str | os.PathLike) -> M100JobParams:
    """Recompute :class:`M100JobParams` from a Marconi100 job excerpt.

    Parameters
    ----------
    path : str or path-like
        Parquet file with columns ``submit_time`` (UTC), ``run_time`` [s],
        ``num_nodes_alloc``, ``num_gpus_alloc``, ``time_limit`` [min], e.g.
        ``shared/data/m100_jobs/m100_jobs_2022-01.parquet``.

    Returns
    -------
    M100JobParams
        Unrounded estimates (the committed defaults are these, rounded); the
        run-time clip bounds and utilisation Beta laws keep their defaults.

    Raises
    ------
    ValueError
        If a run time or time limit is not positive.
    """
    cols = ["submit_time", "run_time", "num_nodes_alloc", "num_gpus_alloc", "time_limit"]
    df = pd.read_parquet(path, columns=cols)
    run_s = df["run_time"].to_numpy(dtype=np.float64)
    limit_s = df["time_limit"].to_numpy(dtype=np.float64) * 60.0
    if (run_s <= 0).any() or (limit_s <= 0).any():
        raise ValueError(f"{path}: run_time and time_limit must be > 0 for every job")
    values, counts = np.unique(df["num_nodes_alloc"].to_numpy(dtype=np.int64), return_counts=True)
    log_run = np.log(np.clip(run_s, _RUN_TIME_MIN_S, _RUN_TIME_MAX_S))
    ratio = limit_s / run_s
    half_width = math.sqrt(3.0) * float(ratio.std())
    return M100JobParams(
        cpu_only_fraction=float((df["num_gpus_alloc"].to_numpy() == 0).mean()),
        node_values=tuple(int(v) for v in values),
        node_weights=tuple(float(c) for c in counts),
        log_run_time_mean=float(log_run.mean()),
        log_run_time_std=float(log_run.std()),
        time_limit_ratio_low=float(ratio.mean()) - half_width,
        time_limit_ratio_high=float(ratio.mean()) + half_width,
        hourly_submit_weights=tuple(float(w) for w in _hourly_submit_profile(df["submit_time"], run_s)),
    )


# ----------------------------------------------------------- grid carbon intensity

_CI_COLUMN = "carbon_intensity_gCO2eq_per_kWh"
#: Artefact-free window of the 2025 ENTSO-E files (UTC, half-open). From 2025-01-31
#: on, DE, FR, IT and PL carry white hour-to-hour noise and a 48 h oscillation that
#: no grid shows (docs/traces.md, "Data quality"); before it they are smooth.
CI_CLEAN_WINDOW = ("2025-01-01", "2025-01-30")
_CI_YEAR = 2025
_ARTEFACT_PERIOD_H = 48.0
_NUGGET_LAGS_H = (2, 3, 4, 5, 6)


@dataclass(frozen=True)
class CarbonParams:
    """Hourly carbon-intensity model of one bidding zone.

    ``ci(t) = max(0, m[month(t), hour(t)] + r(t))`` with ``m`` a month-by-UTC-hour
    table of means and ``r`` a stationary Gaussian AR(2) residual,
    ``r(t) = phi1 r(t-1) + phi2 r(t-2) + e(t)``, whose two coefficients are set so
    that its lag-1 and lag-24 autocorrelations equal the calibrated ones
    (:func:`ar2_from_autocorr`) and whose std is ``residual_std_gco2_per_kwh``.

    Attributes
    ----------
    month_hour_mean_gco2_per_kwh : tuple of 12 tuples of 24 float
        Mean carbon intensity per calendar month (January first) and UTC hour of
        day 0..23 [gCO2eq/kWh], >= 0.
    residual_std_gco2_per_kwh : float
        Standard deviation of ``r`` [gCO2eq/kWh], >= 0.
    residual_lag1_autocorr, residual_lag24_autocorr : float
        Autocorrelation of ``r`` at 1 h and 24 h [-], in (-1, 1); the pair must be
        reachable by an AR(2) (checked).
    """

    month_hour_mean_gco2_per_kwh: tuple[tuple[float, ...], ...]
    residual_std_gco2_per_kwh: float
    residual_lag1_autocorr: float
    residual_lag24_autocorr: float

    def __post_init__(self) -> None:
        table = np.asarray(self.month_hour_mean_gco2_per_kwh, dtype=np.float64)
        if table.shape != (12, 24):
            raise ValueError(
                f"month_hour_mean_gco2_per_kwh has shape {table.shape}; allowed: (12, 24) "
                "(calendar months x UTC hours)"
            )
        if not np.isfinite(table).all() or (table < 0).any():
            raise ValueError("month_hour_mean_gco2_per_kwh must be finite and >= 0 everywhere")
        _check_real("residual_std_gco2_per_kwh", self.residual_std_gco2_per_kwh, 0.0)
        for name in ("residual_lag1_autocorr", "residual_lag24_autocorr"):
            _check_real(name, getattr(self, name), -1.0, 1.0, lo_open=True, hi_open=True)
        ar2_from_autocorr(self.residual_lag1_autocorr, self.residual_lag24_autocorr)

    @property
    def mean_gco2_per_kwh(self) -> float:
        """Annual mean of the table, months weighted by their days in 2025 [gCO2eq/kWh]."""
        days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.float64)
        return float(days @ np.asarray(self.month_hour_mean_gco2_per_kwh).mean(axis=1) / days.sum())


def _ar2_autocorr(phi1, phi2, max_lag: int) -> np.ndarray:
    """Autocorrelations at lags 0..max_lag of a stationary AR(2) [-] (Yule-Walker recursion).

    ``phi1``, ``phi2`` may be arrays of one shape; lag is the first axis of the result.
    """
    phi1, phi2 = np.asarray(phi1, dtype=np.float64), np.asarray(phi2, dtype=np.float64)
    rho = np.empty((max_lag + 1, *np.broadcast(phi1, phi2).shape))
    rho[0] = 1.0
    rho[1] = phi1 / (1.0 - phi2)
    for k in range(2, max_lag + 1):
        rho[k] = phi1 * rho[k - 1] + phi2 * rho[k - 2]
    return rho


def ar2_from_autocorr(rho1: float, rho24: float) -> tuple[float, float]:
    """AR(2) coefficients ``(phi1, phi2)`` with lag-1 / lag-24 autocorrelations ``rho1, rho24``.

    With ``phi1 = rho1 (1 - phi2)`` every ``-1 < phi2 < 1`` gives a stationary
    process with lag-1 autocorrelation ``rho1``; ``phi2`` is then found by bracketing
    on ``rho24``. ``phi2 = 0`` is the AR(1), ``rho24 = rho1**24``; a larger ``rho24``
    needs ``phi2 > 0`` (a slow and a fast root), a smaller one ``phi2 < 0`` (a
    smooth process: real double root at the boundary, then complex roots). Of
    several solutions the one with ``phi2`` closest to 0 is returned.

    Raises
    ------
    ValueError
        If no ``-1 < phi2 < 1`` reaches ``rho24`` (the message gives both values).
    """
    rho1 = _check_real("rho1", rho1, -1.0, 1.0, lo_open=True, hi_open=True)
    rho24 = _check_real("rho24", rho24, -1.0, 1.0, lo_open=True, hi_open=True)

    def miss(phi2: float) -> float:
        return float(_ar2_autocorr(rho1 * (1.0 - phi2), phi2, 24)[24]) - rho24

    edge = 1.0 - 1e-9
    grid = np.linspace(0.0, edge if rho24 > rho1**24 else -edge, 4001)
    values = _ar2_autocorr(rho1 * (1.0 - grid), grid, 24)[24] - rho24
    if values[0] == 0.0:
        return rho1, 0.0
    crossing = np.flatnonzero(np.sign(values[1:]) != np.sign(values[0]))
    if crossing.size == 0:
        raise ValueError(
            f"rho1={rho1!r}, rho24={rho24!r}: no stationary AR(2) has these autocorrelations"
        )
    i = int(crossing[0])
    phi2 = float(brentq(miss, grid[i], grid[i + 1], xtol=1e-14, rtol=1e-14))
    return rho1 * (1.0 - phi2), phi2


def synthetic_carbon_intensity(
    country: str, start: datetime, hours: int, seed: int
) -> pd.Series:
    """Seeded synthetic hourly grid carbon intensity of one country.

    Model (parameters in :data:`CARBON_PARAMS`, see :class:`CarbonParams`): the
    month-by-UTC-hour mean of the 2025 data plus a stationary AR(2) residual with
    the calibrated std and lag-1 / lag-24 autocorrelations, started from its
    stationary law and clipped at 0 (every cell of every table is more than 4.7
    residual std above 0, so the clip practically never acts). The mean steps at month
    boundaries (at most the difference between two monthly tables).

    Parameters
    ----------
    country : str
        Bidding-zone code, one of ``CARBON_PARAMS`` (SE, CH, FR, IT, DE, PL).
    start : datetime.datetime
        First timestamp, timezone-aware with UTC offset 0, on a whole hour.
    hours : int
        Number of hourly values [h], >= 1.
    seed : int
        Seed of the ``numpy.random.Generator`` [-], >= 0.

    Returns
    -------
    pandas.Series
        Name ``carbon_intensity_gco2_per_kwh`` [gCO2eq/kWh], values >= 0, index an
        hourly UTC ``DatetimeIndex`` named ``timestamp`` starting at ``start``.

    Raises
    ------
    ValueError
        Unknown country (the message lists the known ones), naive or non-UTC or
        non-whole-hour ``start``, or ``hours``/``seed`` out of range.
    """
    if country not in CARBON_PARAMS:
        raise ValueError(
            f"country={country!r} is unknown; allowed: {', '.join(sorted(CARBON_PARAMS))}"
        )
    if not isinstance(start, datetime) or start.tzinfo is None or start.utcoffset() is None:
        raise ValueError(f"start={start!r} must be a timezone-aware datetime in UTC")
    if start.utcoffset() != timedelta(0):
        raise ValueError(f"start={start!r} has UTC offset {start.utcoffset()}; allowed: 0 (UTC)")
    if (start.minute, start.second, start.microsecond) != (0, 0, 0) or (
        isinstance(start, pd.Timestamp) and start.nanosecond != 0
    ):
        raise ValueError(f"start={start!r} must lie on a whole hour (minute = second = 0)")
    hours = _check_int("hours", hours, 1)
    seed = _check_int("seed", seed, 0)
    p = CARBON_PARAMS[country]

    index = pd.date_range(
        pd.Timestamp(start).tz_convert("UTC"), periods=hours, freq="h", name="timestamp"
    ).as_unit("ns")  # same resolution as the ENTSO-E files, whatever the pandas default
    table = np.asarray(p.month_hour_mean_gco2_per_kwh, dtype=np.float64)
    mean = table[index.month.to_numpy() - 1, index.hour.to_numpy()]
    phi1, phi2 = ar2_from_autocorr(p.residual_lag1_autocorr, p.residual_lag24_autocorr)
    rho1 = p.residual_lag1_autocorr
    rho2 = phi1 * rho1 + phi2
    std = p.residual_std_gco2_per_kwh
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(2)
    # (r(-2), r(-1)) from the stationary law: std^2 [[1, rho1], [rho1, 1]]
    r_m2 = std * z[0]
    r_m1 = std * (rho1 * z[0] + math.sqrt(1.0 - rho1**2) * z[1])
    innovations = rng.normal(0.0, std * math.sqrt(1.0 - phi1 * rho1 - phi2 * rho2), hours)
    den = [1.0, -phi1, -phi2]
    residual, _ = lfilter([1.0], den, innovations, zi=lfiltic([1.0], den, y=[r_m1, r_m2]))
    values = np.maximum(mean + residual, 0.0)
    return pd.Series(values, index=index, name="carbon_intensity_gco2_per_kwh")


def _read_ci_year(path: str | os.PathLike) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Timestamps and CI [gCO2eq/kWh] of calendar year 2025 (UTC), checked hourly, no NaN."""
    df = pd.read_parquet(path, columns=["timestamp", _CI_COLUMN])
    ts = pd.DatetimeIndex(pd.to_datetime(df["timestamp"], utc=True))
    order = np.argsort(ts.asi8, kind="stable")
    ts, x = ts[order], df[_CI_COLUMN].to_numpy(dtype=np.float64)[order]
    keep = ts.year == _CI_YEAR
    ts, x = ts[keep], x[keep]
    if x.size != 8760:
        raise ValueError(f"{path}: {x.size} rows in {_CI_YEAR}; allowed: 8760 (the whole year)")
    if (np.diff(ts.as_unit("s").asi8) != 3600).any():
        raise ValueError(f"{path}: {_CI_YEAR} timestamps are not hourly without gaps")
    if np.isnan(x).any():
        raise ValueError(f"{path}: {int(np.isnan(x).sum())} NaN values in {_CI_YEAR}")
    return ts, x


def _autocov(z: np.ndarray, lag: int) -> float:
    """Biased (divide by n) autocovariance of ``z`` about its mean at ``lag``."""
    d = z - z.mean()
    return float(d[: d.size - lag] @ d[lag:] / d.size)


def _nugget(z: np.ndarray) -> float:
    """Variance of a white (hour-to-hour uncorrelated) component of ``z`` [unit^2].

    The intercept at lag 0 of the least-squares line through the semivariogram
    ``V(k) = mean((z[t+k] - z[t])^2) / 2`` at ``k = 2..6`` h, clipped at 0 (the
    "nugget" of geostatistics). Lag 1 is left out: the noise in these series is
    slightly correlated over one hour.
    """
    lags = np.asarray(_NUGGET_LAGS_H, dtype=np.float64)
    v = np.array([np.mean((z[k:] - z[:-k]) ** 2) / 2.0 for k in _NUGGET_LAGS_H])
    _slope, intercept = np.polyfit(lags, v, 1)
    return max(float(intercept), 0.0)


@dataclass(frozen=True)
class CiStatistics:
    """What :func:`ci_statistics` measures on one 2025 series (units gCO2eq/kWh, [-]).

    ``series_*``: the raw hourly series. ``residual_raw_*``: ``x - m[month, hour]``.
    ``oscillation_48h_amplitude``: mean over months of the amplitude of a 48 h
    sinusoid fitted to the residual month by month (then removed).
    ``white_noise_std``: square root of the nugget of that residual.
    ``residual_std``, ``residual_lag1``, ``residual_lag24``: the de-noised residual,
    i.e. the calibration targets; ``lag1_window`` says where lag 1 was measured.
    ``clean_window_series_lag1``: lag-1 autocorrelation of the raw series in
    :data:`CI_CLEAN_WINDOW`.
    """

    month_hour_mean: np.ndarray
    series_mean: float
    series_std: float
    series_lag1: float
    series_lag24: float
    residual_raw_std: float
    residual_raw_lag1: float
    residual_raw_lag24: float
    oscillation_48h_amplitude: float
    white_noise_std: float
    residual_std: float
    residual_lag1: float
    residual_lag24: float
    lag1_window: str
    clean_window_series_lag1: float


def ci_statistics(path_to_parquet: str | os.PathLike) -> CiStatistics:
    """Measure one ENTSO-E CI series of 2025 and de-noise its residual statistics.

    Steps (calendar year 2025, UTC, 8 760 h):

    1. ``m``: mean per calendar month and UTC hour (12 x 24). Zero-mean artefacts
       average out of it (white noise over ~30 days; the 48 h oscillation flips sign
       from one day to the next).
    2. Residual ``r = x - m``; a 48 h sinusoid is fitted and removed month by month.
    3. White-noise variance ``n2`` from :func:`_nugget` of ``r``. Subtracting the
       cell means leaves ``n2 (1 - 1/d)`` of it in ``r`` and adds a covariance
       ``-n2/d`` at 24 h (``d`` = 365/12 days per cell), so the signal variance is
       ``var(r) - n2 (1 - 1/d)`` and its lag-24 autocorrelation
       ``(cov(r, 24) + n2/d) / signal variance``.
    4. Lag 1: if the noise carries less variance than the signal, ``cov(r, 1) /
       (var(r) - n2)``; otherwise the hour-to-hour persistence is not measurable
       under the noise and is measured the same way in :data:`CI_CLEAN_WINDOW`
       (with that window's own nugget).

    Parameters
    ----------
    path_to_parquet : str or path-like
        Parquet with ``timestamp`` (UTC) and ``carbon_intensity_gCO2eq_per_kWh``
        [gCO2eq/kWh], e.g. ``shared/data/entsoe_ci_2025/DE_hourly.parquet``.

    Returns
    -------
    CiStatistics

    Raises
    ------
    ValueError
        If 2025 is incomplete, not hourly, has NaN, or the de-noised statistics are
        not those of a stationary series (signal variance <= 0, autocorrelation
        outside (-1, 1)).
    """
    ts, x = _read_ci_year(path_to_parquet)
    month = ts.month.to_numpy() - 1
    hour = ts.hour.to_numpy()
    cell = month * 24 + hour
    table = (np.bincount(cell, weights=x, minlength=288) / np.bincount(cell, minlength=288)).reshape(12, 24)
    r_raw = x - table[month, hour]
    t_h = np.arange(x.size, dtype=np.float64)  # hours since 2025-01-01 00:00 UTC
    r = r_raw.copy()
    amplitudes = []
    for m in range(12):
        sel = month == m
        w = 2.0 * np.pi * t_h[sel] / _ARTEFACT_PERIOD_H
        design = np.column_stack([np.cos(w), np.sin(w)])
        coef, *_ = np.linalg.lstsq(design, r_raw[sel], rcond=None)
        r[sel] = r_raw[sel] - design @ coef
        amplitudes.append(math.hypot(*coef))
    # White noise of variance n2 in x leaves n2 (1 - 1/d) in r and a covariance of -n2/d
    # at lag 24 (both hours share their cell mean), d = days per month.
    d = 365.0 / 12.0
    noise_var = _nugget(r) * d / (d - 1.0)
    signal_var = _autocov(r, 0) - noise_var * (1.0 - 1.0 / d)
    if signal_var <= 0.0:
        raise ValueError(f"{path_to_parquet}: residual variance is all white noise; cannot calibrate")
    lag24 = (_autocov(r, 24) + noise_var / d) / signal_var
    if noise_var < signal_var:
        lag1, window = _autocov(r, 1) / signal_var, str(_CI_YEAR)
    else:
        lo, hi = (pd.Timestamp(s, tz="UTC") for s in CI_CLEAN_WINDOW)
        sel = (ts >= lo) & (ts < hi)
        rw = r[sel]
        lag1 = _autocov(rw, 1) / (_autocov(rw, 0) - _nugget(rw))
        window = f"{CI_CLEAN_WINDOW[0]}..{(hi - pd.Timedelta(days=1)).date()}"
    for name, v in (("lag-1", lag1), ("lag-24", lag24)):
        if not -1.0 < v < 1.0:
            raise ValueError(f"{path_to_parquet}: de-noised {name} autocorrelation {v:.3f} outside (-1, 1)")
    lo, hi = (pd.Timestamp(s, tz="UTC") for s in CI_CLEAN_WINDOW)
    xw = x[(ts >= lo) & (ts < hi)]

    def corr(z: np.ndarray, lag: int) -> float:
        return _autocov(z, lag) / _autocov(z, 0)

    return CiStatistics(
        month_hour_mean=table,
        series_mean=float(x.mean()),
        series_std=float(x.std()),
        series_lag1=corr(x, 1),
        series_lag24=corr(x, 24),
        residual_raw_std=float(r_raw.std()),
        residual_raw_lag1=corr(r_raw, 1),
        residual_raw_lag24=corr(r_raw, 24),
        oscillation_48h_amplitude=float(np.mean(amplitudes)),
        white_noise_std=math.sqrt(noise_var),
        residual_std=math.sqrt(signal_var),
        residual_lag1=float(lag1),
        residual_lag24=float(lag24),
        lag1_window=window,
        clean_window_series_lag1=corr(xw, 1),
    )


def calibrate_ci_params(path_to_parquet: str | os.PathLike) -> CarbonParams:
    """Recompute one row of :data:`CARBON_PARAMS` from an hourly ENTSO-E series.

    The month-by-hour table and the de-noised residual std, lag-1 and lag-24
    autocorrelations of :func:`ci_statistics` (unrounded).
    """
    st = ci_statistics(path_to_parquet)
    return CarbonParams(
        tuple(tuple(float(v) for v in row) for row in st.month_hour_mean),
        st.residual_std,
        st.residual_lag1,
        st.residual_lag24,
    )


# ------------------------------------------------------- carbon-free fraction from CI

#: ``cff = clip(intercept + slope * CI, 0, 1)`` per country: least-squares lines fitted by
#: :func:`calibrate_cff_from_ci` to the 2025 hourly ``carbon_free_fraction_production``
#: column against ``carbon_intensity_gCO2eq_per_kWh`` of ``shared/data/entsoe_ci_2025``
#: (the production column is the one consistent with the CI column; docs/models.md).
#: Pearson r and RMS residual: SE -0.79 / 0.012, FR -0.98 / 0.005, IT -0.99 / 0.026,
#: DE -0.98 / 0.037, PL -0.99 / 0.018. CH's column is exactly 1.0 in every hour (slope 0):
#: a CFE share for CH is 100 % by construction and says nothing.
CFF_FROM_CI: Mapping[str, tuple[float, float]] = MappingProxyType({
    "SE": (1.06308, -0.0047522),
    "CH": (1.0, 0.0),
    "FR": (1.03694, -0.0021414),
    "IT": (1.02094, -0.0022428),
    "DE": (0.99745, -0.0014131),
    "PL": (1.01166, -0.0012951),
})


def carbon_free_fraction_from_ci(country: str, ci_g_per_kwh) -> np.ndarray:
    """Hourly carbon-free share of generation implied by the carbon intensity [-].

    Parameters
    ----------
    country : str
        One of :data:`CFF_FROM_CI`.
    ci_g_per_kwh : array
        Carbon intensity [gCO2eq/kWh].

    Returns
    -------
    numpy.ndarray in [0, 1]
    """
    if country not in CFF_FROM_CI:
        raise ValueError(f"country={country!r} is unknown; known: {', '.join(sorted(CFF_FROM_CI))}")
    a, b = CFF_FROM_CI[country]
    return np.clip(a + b * np.asarray(ci_g_per_kwh, dtype=np.float64), 0.0, 1.0)


def calibrate_cff_from_ci(path_to_parquet: str | os.PathLike) -> tuple[float, float]:
    """Recompute one row of :data:`CFF_FROM_CI`: ``(intercept, slope)`` of the 2025 OLS line.

    A constant carbon-free column (CH) gives ``(its value, 0.0)``.
    """
    df = pd.read_parquet(path_to_parquet, columns=["timestamp", _CI_COLUMN, "carbon_free_fraction_production"])
    ts = pd.to_datetime(df["timestamp"], utc=True)
    df = df[(ts.dt.year == 2025).to_numpy()]
    x = df[_CI_COLUMN].to_numpy(dtype=np.float64)
    y = df["carbon_free_fraction_production"].to_numpy(dtype=np.float64)
    if y.std() == 0.0:
        return float(y.mean()), 0.0
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


# ------------------------------------------------ committed carbon-intensity statistics
#
# Derived by calibrate_ci_params() (traces/calibrate_synthetic.py prints them) from
# shared/data/entsoe_ci_2025/{CC}_hourly.parquet, calendar year 2025 UTC (8 760 h each),
# column carbon_intensity_gCO2eq_per_kWh (ENTSO-E A75 generation x lifecycle factors by
# the GridPilot v1.0 kit, CC BY 4.0). Rounding: gCO2eq/kWh to 1 dp (tables) and 2 dp
# (std), autocorrelations to 3 dp.
#
# Data quality (docs/traces.md): from 2025-01-31 to early 2026 the DE, FR, IT and PL
# series carry white hour-to-hour noise (std DE 90, PL 63, IT 43, FR 8.4 g) and a 48 h
# oscillation of fixed phase (PL 81, IT 52, DE 42 g) that no grid shows; together they
# are 74-83 % of the residual variance. In January 2025 the same series are smooth
# (lag-1 0.94-0.99).
# The tables are means of the raw series (the artefacts average out); std and lag-24
# are those of the residual with the noise variance (variogram nugget) and the 48 h
# sinusoid removed; lag-1 is measured in 2025-01-01..29 where the noise dominates
# (DE, FR, IT, PL), on the whole year otherwise (SE, CH).
#
# Annual means vs Ember 2025 (REFERENCE.md §5.3; SE: 2023): SE 21.70 vs 38.42,
# CH 21.54 vs 39.22, FR 37.09 vs 41.44, IT 243.99 vs 284.78, DE 352.32 vs 329.65,
# PL 515.14 vs 588.60. The noise is not the cause (it is near zero-mean); the levels are
# those of the kit's production-based method. Use them for relative studies; for
# absolute footprints scale the table (dataclasses.replace) and say so.
_CI_MONTH_HOUR_2025: dict[str, tuple[tuple[float, ...], ...]] = {
    "SE": (
        (20.1, 20.7, 20.3, 20.9, 20.9, 21.1, 21.3, 21.5, 21.3, 20.9, 21.7, 21.0,
         21.7, 22.2, 21.5, 21.7, 21.6, 22.2, 21.4, 21.7, 21.3, 20.9, 20.6, 20.0),  # Jan
        (21.0, 20.7, 21.0, 21.4, 21.4, 22.5, 22.8, 23.4, 23.0, 23.8, 23.4, 23.9,
         22.9, 24.6, 24.0, 23.2, 22.6, 23.0, 22.7, 21.9, 21.6, 22.1, 21.3, 21.4),  # Feb
        (19.9, 20.7, 20.2, 20.3, 20.6, 21.1, 21.5, 21.7, 22.2, 22.6, 23.4, 22.6,
         23.6, 23.0, 22.3, 21.2, 21.3, 21.4, 21.2, 21.1, 20.3, 20.5, 20.3, 19.5),  # Mar
        (20.4, 20.4, 20.5, 20.2, 21.1, 22.0, 22.6, 22.8, 23.7, 23.9, 23.6, 24.6,
         24.0, 23.5, 22.5, 21.6, 21.4, 21.1, 21.3, 20.7, 20.9, 21.2, 20.6, 20.2),  # Apr
        (19.3, 19.3, 19.4, 19.6, 20.7, 21.2, 21.8, 22.7, 23.5, 24.4, 24.0, 24.3,
         23.7, 23.3, 22.1, 21.1, 21.0, 20.6, 20.4, 20.2, 20.0, 19.8, 19.5, 19.3),  # May
        (18.3, 18.6, 19.1, 18.7, 19.6, 20.7, 21.1, 22.3, 23.0, 23.4, 23.7, 23.9,
         23.4, 23.0, 21.4, 21.2, 19.9, 20.2, 19.1, 19.1, 18.5, 18.9, 18.2, 18.3),  # Jun
        (19.8, 20.1, 20.0, 20.8, 21.1, 21.5, 22.7, 23.1, 23.6, 24.1, 24.6, 24.5,
         24.0, 23.4, 22.8, 22.3, 22.2, 21.0, 20.4, 20.1, 20.2, 20.5, 20.1, 19.8),  # Jul
        (18.9, 19.1, 18.9, 19.5, 19.9, 20.5, 21.5, 22.6, 23.1, 23.6, 23.9, 24.0,
         23.8, 23.1, 21.9, 21.4, 20.6, 20.3, 19.6, 19.8, 19.2, 19.2, 19.1, 18.9),  # Aug
        (19.3, 19.3, 19.5, 20.1, 19.7, 20.3, 20.9, 21.9, 22.7, 22.8, 22.7, 23.2,
         23.4, 22.1, 21.9, 21.2, 20.5, 20.4, 20.1, 19.5, 19.4, 18.9, 18.4, 18.9),  # Sep
        (19.8, 19.7, 19.8, 20.2, 20.1, 21.2, 21.5, 21.3, 22.1, 22.4, 22.4, 22.7,
         22.1, 22.0, 21.6, 21.8, 21.3, 21.0, 20.8, 20.6, 20.2, 20.3, 19.9, 19.9),  # Oct
        (21.5, 21.6, 21.7, 21.4, 21.5, 21.9, 21.8, 21.5, 22.5, 22.1, 22.9, 23.0,
         22.3, 23.0, 22.2, 22.4, 22.8, 22.5, 22.0, 21.9, 21.4, 21.7, 21.7, 21.4),  # Nov
        (24.8, 26.0, 25.8, 23.0, 25.2, 26.1, 25.8, 22.9, 25.6, 25.9, 25.7, 23.2,
         25.5, 25.8, 25.8, 23.8, 25.6, 25.8, 25.7, 23.3, 25.6, 26.4, 25.5, 23.6),  # Dec
    ),
    "CH": (
        (16.8, 16.8, 16.7, 17.0, 17.0, 17.9, 19.0, 19.5, 19.7, 20.1, 20.5, 20.8,
         20.6, 20.2, 19.7, 19.4, 19.7, 19.8, 19.8, 19.1, 18.5, 18.1, 17.6, 17.2),  # Jan
        (16.5, 16.6, 16.5, 16.3, 16.8, 18.1, 19.5, 19.9, 20.1, 21.3, 21.5, 21.5,
         21.6, 21.2, 20.4, 19.8, 19.9, 20.2, 20.3, 19.5, 18.3, 17.7, 17.1, 17.0),  # Feb
        (15.9, 15.8, 16.1, 15.8, 16.3, 17.6, 18.9, 20.0, 21.4, 23.0, 24.1, 24.6,
         24.5, 23.6, 22.1, 20.2, 19.1, 19.4, 19.4, 18.3, 17.2, 16.5, 16.2, 16.1),  # Mar
        (17.3, 17.5, 17.4, 17.8, 19.2, 20.0, 21.4, 23.2, 25.0, 26.4, 27.0, 27.3,
         27.1, 26.5, 25.2, 23.3, 21.3, 20.5, 20.1, 19.4, 18.7, 18.1, 17.9, 17.8),  # Apr
        (20.3, 20.6, 20.6, 20.8, 21.5, 22.8, 24.5, 26.3, 28.1, 28.9, 30.0, 29.3,
         29.2, 28.7, 27.4, 25.8, 23.9, 22.5, 22.0, 21.8, 21.5, 21.2, 21.0, 20.7),  # May
        (20.6, 20.6, 20.6, 20.8, 21.4, 22.8, 24.2, 26.2, 27.7, 28.7, 29.2, 29.2,
         28.9, 28.2, 27.1, 25.8, 24.1, 22.8, 22.0, 21.7, 21.6, 21.4, 21.1, 20.8),  # Jun
        (20.3, 20.3, 20.3, 20.7, 21.4, 22.6, 24.1, 26.0, 27.7, 28.9, 29.6, 29.7,
         29.5, 28.7, 27.7, 26.4, 24.4, 23.0, 22.1, 21.8, 21.7, 21.3, 20.9, 20.4),  # Jul
        (19.9, 19.9, 20.0, 20.4, 21.1, 21.9, 23.6, 25.7, 27.7, 29.0, 29.8, 30.0,
         29.9, 29.0, 27.5, 25.7, 23.8, 22.5, 22.0, 21.8, 21.5, 20.9, 20.4, 20.1),  # Aug
        (19.7, 19.6, 19.8, 20.2, 21.0, 21.4, 22.4, 24.0, 25.6, 27.0, 28.2, 28.2,
         27.9, 27.1, 25.5, 23.8, 22.6, 22.0, 21.8, 21.3, 20.7, 20.3, 20.0, 19.6),  # Sep
        (17.9, 18.0, 18.2, 18.4, 19.4, 20.2, 20.7, 21.6, 22.8, 24.5, 25.1, 25.4,
         25.1, 24.1, 22.6, 21.6, 21.1, 21.0, 20.7, 19.9, 19.1, 18.5, 18.2, 17.9),  # Oct
        (17.9, 17.7, 17.8, 17.7, 18.1, 19.3, 20.1, 20.8, 21.3, 22.2, 22.8, 22.9,
         22.6, 21.9, 21.3, 21.0, 21.1, 21.0, 20.7, 20.2, 19.2, 18.6, 18.3, 17.9),  # Nov
        (17.2, 17.1, 17.1, 16.9, 17.2, 18.2, 19.3, 19.8, 20.6, 21.6, 22.3, 22.6,
         22.5, 21.8, 20.8, 20.4, 20.4, 20.2, 20.1, 19.5, 18.7, 18.1, 17.6, 17.2),  # Dec
    ),
    "FR": (
        (39.3, 39.4, 39.5, 39.3, 39.4, 39.7, 39.6, 39.5, 39.5, 39.5, 39.5, 39.6,
         39.8, 39.9, 39.7, 39.9, 39.9, 39.7, 39.9, 39.8, 39.5, 39.8, 39.8, 39.7),  # Jan
        (55.0, 54.9, 52.4, 54.5, 53.3, 55.0, 55.4, 54.3, 53.0, 54.2, 53.1, 53.1,
         53.5, 54.9, 53.2, 52.2, 54.7, 55.4, 54.2, 52.9, 55.6, 54.4, 55.2, 54.3),  # Feb
        (48.8, 54.2, 53.2, 51.5, 56.1, 61.3, 54.5, 55.7, 52.2, 49.6, 51.4, 53.6,
         51.0, 49.1, 54.3, 48.6, 52.4, 49.2, 49.9, 52.8, 55.9, 54.4, 47.3, 48.7),  # Mar
        (37.5, 37.0, 42.5, 37.1, 38.1, 36.0, 38.9, 36.7, 37.4, 39.6, 41.0, 41.5,
         38.1, 39.8, 38.9, 40.8, 35.9, 38.3, 38.5, 40.6, 35.0, 37.2, 41.1, 39.3),  # Apr
        (33.8, 34.5, 35.6, 36.2, 33.7, 35.0, 34.2, 35.5, 32.5, 34.8, 35.0, 33.5,
         32.6, 33.6, 32.9, 34.2, 32.2, 35.9, 36.2, 32.8, 34.1, 35.4, 34.6, 33.6),  # May
        (29.0, 30.4, 32.9, 31.9, 31.5, 31.2, 32.7, 31.0, 30.1, 31.7, 31.5, 31.5,
         30.9, 30.6, 30.1, 29.6, 31.3, 32.7, 30.4, 31.1, 34.3, 30.2, 31.4, 32.0),  # Jun
        (32.5, 32.8, 33.5, 32.8, 31.1, 30.5, 30.9, 30.3, 32.4, 30.4, 34.7, 30.9,
         31.0, 34.6, 33.2, 30.9, 30.3, 31.1, 32.2, 30.7, 32.9, 33.2, 32.1, 34.0),  # Jul
        (30.1, 30.6, 30.0, 29.9, 31.4, 29.5, 31.3, 33.0, 31.2, 30.4, 30.7, 29.4,
         30.8, 29.3, 30.4, 30.3, 28.1, 29.8, 28.8, 29.1, 29.6, 29.3, 29.9, 30.0),  # Aug
        (33.4, 32.6, 33.8, 33.3, 29.9, 34.2, 32.7, 33.1, 34.1, 33.6, 31.4, 32.6,
         34.7, 31.0, 31.2, 33.7, 34.3, 34.1, 33.4, 33.8, 31.1, 31.4, 32.6, 33.7),  # Sep
        (30.2, 31.0, 29.6, 30.8, 31.6, 31.0, 29.0, 30.5, 30.6, 29.7, 30.1, 29.7,
         29.3, 29.5, 29.1, 27.8, 28.5, 29.6, 29.5, 30.1, 28.6, 29.7, 29.1, 30.1),  # Oct
        (36.5, 34.1, 36.3, 35.1, 33.8, 36.5, 32.9, 32.3, 32.9, 34.7, 34.9, 34.4,
         33.0, 35.5, 31.9, 32.3, 33.3, 33.5, 33.6, 36.2, 36.6, 32.8, 34.6, 38.1),  # Nov
        (37.6, 34.9, 36.3, 35.8, 36.7, 37.9, 37.8, 37.1, 34.8, 38.0, 37.6, 39.5,
         33.7, 37.1, 36.1, 36.5, 35.8, 38.9, 35.4, 38.0, 36.0, 35.3, 40.6, 38.8),  # Dec
    ),
    "IT": (
        (282.9, 281.9, 283.7, 285.3, 283.4, 282.2, 282.2, 284.8, 287.0, 289.0, 289.0, 288.0,
         291.7, 290.3, 288.5, 287.5, 281.5, 285.2, 285.7, 292.0, 283.2, 288.4, 282.9, 280.3),  # Jan
        (276.0, 291.5, 285.0, 277.2, 271.6, 289.3, 277.2, 273.9, 274.2, 270.9, 284.7, 282.0,
         281.1, 291.5, 285.4, 275.4, 285.2, 282.7, 284.0, 291.6, 284.8, 289.4, 281.8, 281.2),  # Feb
        (314.0, 321.7, 324.6, 304.9, 292.6, 309.4, 308.4, 306.1, 294.1, 295.4, 297.5, 304.3,
         323.3, 297.1, 313.8, 311.2, 301.5, 312.9, 309.1, 309.0, 329.6, 295.0, 317.1, 308.3),  # Mar
        (264.4, 271.3, 257.6, 259.7, 279.2, 271.0, 271.5, 268.7, 240.0, 265.6, 256.7, 266.7,
         256.7, 253.3, 277.6, 272.4, 253.7, 273.2, 275.2, 267.4, 270.9, 257.5, 258.7, 265.7),  # Apr
        (233.1, 212.8, 220.0, 243.9, 227.0, 222.9, 233.0, 230.3, 231.1, 224.6, 219.9, 226.7,
         232.0, 217.0, 221.0, 209.8, 243.9, 241.9, 231.7, 246.1, 240.4, 248.5, 254.4, 262.5),  # May
        (204.6, 201.4, 183.3, 203.8, 198.7, 183.7, 162.9, 176.3, 173.6, 161.8, 170.6, 178.2,
         160.6, 181.5, 184.2, 187.0, 184.5, 207.1, 205.3, 194.5, 202.1, 209.2, 189.7, 183.8),  # Jun
        (201.1, 200.2, 202.6, 178.6, 198.9, 194.8, 192.4, 182.7, 163.3, 177.4, 184.7, 162.7,
         182.9, 188.1, 196.6, 178.7, 209.9, 213.6, 203.0, 206.8, 201.9, 208.7, 186.8, 204.3),  # Jul
        (187.6, 182.7, 189.3, 187.9, 184.8, 191.3, 183.3, 174.1, 172.7, 163.8, 165.1, 166.1,
         187.1, 179.9, 198.3, 204.0, 200.7, 209.4, 197.6, 199.9, 185.1, 215.0, 203.8, 204.5),  # Aug
        (213.5, 227.2, 217.4, 234.5, 214.9, 209.7, 216.1, 208.5, 206.9, 209.2, 199.3, 200.9,
         211.7, 223.1, 224.0, 221.3, 243.8, 234.0, 244.5, 235.5, 244.3, 253.8, 238.4, 215.4),  # Sep
        (224.5, 232.0, 220.5, 209.4, 220.5, 204.3, 213.2, 200.9, 214.8, 210.1, 210.6, 218.7,
         211.8, 220.7, 220.9, 214.3, 221.4, 232.0, 227.0, 229.7, 236.2, 219.9, 236.1, 220.2),  # Oct
        (264.0, 247.6, 238.7, 248.1, 224.4, 228.6, 255.1, 246.4, 236.4, 253.2, 243.8, 217.8,
         244.0, 246.7, 254.9, 257.8, 250.8, 259.8, 260.8, 279.3, 267.3, 266.9, 247.6, 242.5),  # Nov
        (291.7, 287.5, 303.4, 290.1, 279.6, 299.9, 286.8, 278.4, 286.1, 288.6, 285.5, 312.7,
         308.9, 302.8, 299.9, 304.8, 308.7, 292.9, 307.2, 302.5, 306.0, 303.1, 295.8, 295.6),  # Dec
    ),
    "DE": (
        (295.3, 280.4, 280.5, 281.1, 281.7, 283.9, 284.1, 284.3, 285.3, 285.8, 286.6, 286.0,
         289.2, 288.7, 286.6, 286.3, 286.3, 285.8, 285.8, 284.5, 285.5, 286.7, 285.9, 285.7),  # Jan
        (461.4, 467.7, 460.7, 437.6, 460.9, 475.9, 473.3, 446.0, 454.0, 468.9, 456.1, 449.4,
         461.8, 489.1, 469.9, 461.4, 468.0, 456.8, 484.9, 467.5, 478.0, 440.5, 458.1, 471.1),  # Feb
        (454.6, 449.0, 427.2, 449.5, 447.6, 435.7, 448.0, 429.1, 419.3, 426.0, 425.4, 412.3,
         425.2, 434.2, 443.8, 453.0, 453.6, 447.8, 442.8, 427.3, 427.0, 463.3, 423.3, 433.8),  # Mar
        (387.8, 438.0, 395.7, 381.4, 401.3, 389.9, 400.2, 360.4, 363.5, 382.7, 366.5, 396.7,
         388.9, 385.5, 396.0, 378.8, 408.1, 415.2, 394.0, 438.9, 447.8, 411.2, 369.0, 398.4),  # Apr
        (368.9, 380.9, 369.3, 382.0, 357.7, 343.2, 344.3, 350.0, 349.2, 339.1, 356.7, 324.5,
         347.3, 384.3, 361.8, 403.8, 367.2, 381.1, 399.3, 369.9, 395.7, 395.9, 394.2, 395.1),  # May
        (339.1, 335.1, 334.7, 321.3, 327.7, 337.2, 342.0, 333.2, 334.3, 310.3, 324.1, 302.1,
         322.0, 330.8, 322.6, 338.8, 327.4, 327.9, 317.9, 329.7, 341.7, 348.9, 347.0, 371.0),  # Jun
        (299.4, 280.4, 331.6, 302.6, 298.6, 280.9, 307.5, 287.7, 275.4, 275.5, 274.5, 289.4,
         279.0, 286.4, 290.7, 268.2, 288.2, 310.4, 302.4, 292.5, 299.0, 315.9, 338.4, 306.9),  # Jul
        (319.8, 294.1, 279.4, 314.9, 306.1, 272.5, 276.2, 268.2, 276.9, 272.9, 271.8, 288.7,
         281.2, 272.8, 294.7, 267.4, 276.8, 310.2, 287.3, 264.2, 285.2, 290.5, 295.0, 299.8),  # Aug
        (315.3, 323.9, 329.6, 300.8, 310.4, 287.8, 308.7, 289.9, 291.5, 317.9, 316.6, 285.6,
         313.8, 291.1, 325.1, 318.7, 323.8, 325.2, 320.7, 326.3, 327.4, 340.9, 370.6, 328.6),  # Sep
        (356.9, 370.4, 334.7, 349.9, 356.6, 356.0, 368.1, 311.6, 303.5, 324.7, 271.9, 303.8,
         334.8, 333.4, 322.4, 332.7, 342.8, 312.1, 317.0, 351.7, 383.2, 338.5, 347.2, 338.9),  # Oct
        (299.2, 306.5, 312.7, 317.1, 329.0, 320.7, 319.1, 312.1, 307.2, 315.2, 318.5, 341.7,
         315.9, 299.5, 318.5, 300.0, 332.6, 321.6, 316.8, 317.9, 296.0, 339.1, 326.3, 337.3),  # Nov
        (407.3, 412.6, 401.6, 403.1, 389.5, 407.8, 405.4, 396.4, 402.8, 400.4, 392.2, 373.9,
         429.9, 424.0, 401.9, 400.9, 415.3, 393.7, 417.3, 398.5, 401.2, 396.8, 381.6, 418.1),  # Dec
    ),
    "PL": (
        (522.8, 522.1, 524.6, 524.7, 524.6, 527.0, 527.3, 527.0, 528.9, 530.0, 527.6, 523.8,
         518.4, 519.2, 520.1, 516.7, 513.8, 512.5, 513.0, 510.7, 514.9, 519.0, 523.4, 526.5),  # Jan
        (616.2, 623.3, 604.4, 617.0, 639.8, 598.1, 623.5, 626.8, 621.2, 602.0, 627.0, 637.4,
         630.3, 633.9, 634.6, 643.4, 614.7, 610.6, 614.1, 619.8, 615.1, 616.0, 623.0, 626.3),  # Feb
        (579.7, 596.2, 573.1, 570.9, 564.2, 557.2, 548.5, 558.1, 582.2, 562.9, 601.4, 598.3,
         585.9, 582.5, 570.2, 584.1, 583.3, 578.3, 573.3, 550.5, 565.9, 583.0, 577.3, 566.2),  # Mar
        (545.7, 554.5, 517.5, 530.4, 530.1, 535.3, 534.0, 525.5, 522.1, 558.0, 539.0, 542.7,
         538.1, 542.2, 553.0, 547.1, 541.4, 552.1, 563.3, 559.7, 562.3, 543.5, 535.4, 546.2),  # Apr
        (510.4, 507.0, 513.1, 480.8, 493.0, 477.0, 466.8, 478.7, 489.5, 480.6, 507.6, 478.4,
         500.1, 482.0, 498.0, 538.7, 508.7, 536.2, 540.1, 525.0, 526.3, 534.2, 503.5, 517.1),  # May
        (468.7, 483.6, 467.3, 464.0, 473.3, 470.0, 445.0, 449.7, 476.2, 451.1, 470.2, 474.7,
         483.5, 494.7, 500.0, 487.9, 477.6, 498.1, 485.5, 513.7, 510.8, 505.4, 509.0, 490.2),  # Jun
        (465.8, 448.3, 459.7, 424.2, 466.0, 434.7, 382.5, 409.7, 438.4, 433.2, 445.3, 449.5,
         438.1, 453.0, 438.2, 457.5, 465.7, 463.4, 457.3, 472.3, 454.0, 445.8, 478.1, 452.6),  # Jul
        (477.7, 471.1, 462.4, 476.6, 472.1, 457.0, 430.4, 435.7, 476.4, 429.0, 436.2, 471.5,
         472.5, 488.5, 517.2, 486.7, 471.0, 488.8, 495.1, 481.3, 492.3, 483.4, 492.7, 478.4),  # Aug
        (487.2, 487.6, 446.8, 465.6, 455.7, 419.6, 456.1, 431.7, 439.2, 411.3, 425.9, 486.1,
         459.6, 468.1, 463.1, 489.6, 484.4, 493.2, 482.4, 473.1, 494.2, 500.3, 500.7, 494.7),  # Sep
        (518.1, 525.8, 464.5, 506.9, 487.4, 460.8, 470.2, 465.9, 475.3, 476.0, 478.5, 478.2,
         489.0, 510.4, 485.8, 503.1, 517.5, 521.1, 527.4, 500.9, 514.7, 506.2, 520.2, 498.2),  # Oct
        (488.0, 505.0, 481.7, 474.1, 476.4, 489.0, 486.1, 472.3, 474.6, 484.0, 489.4, 492.0,
         485.1, 486.5, 506.7, 505.0, 506.6, 502.0, 512.1, 506.5, 490.0, 503.9, 509.1, 521.2),  # Nov
        (549.2, 561.3, 561.8, 574.2, 564.7, 562.8, 565.3, 557.9, 584.0, 556.1, 572.3, 556.0,
         570.5, 548.9, 573.8, 567.9, 588.0, 569.2, 583.0, 558.2, 567.8, 571.1, 576.8, 572.5),  # Dec
    ),
}
_CI_RESIDUAL_2025: dict[str, tuple[float, float, float]] = {  # (std, lag-1, lag-24)
    "SE": (2.28, 0.970, 0.508),
    "CH": (1.30, 0.912, 0.447),
    "FR": (4.36, 0.994, 0.658),
    "IT": (25.54, 0.966, 0.502),
    "DE": (55.38, 0.993, 0.853),
    "PL": (43.43, 0.994, 0.406),
}

CARBON_PARAMS: Mapping[str, CarbonParams] = MappingProxyType(
    {cc: CarbonParams(_CI_MONTH_HOUR_2025[cc], *_CI_RESIDUAL_2025[cc]) for cc in _CI_MONTH_HOUR_2025}
)
