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
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from numbers import Integral, Real
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np
import pandas as pd
from scipy.signal import lfilter

__all__ = [
    "JOB_COLUMNS",
    "M100JobParams",
    "CarbonParams",
    "CARBON_PARAMS",
    "generate_m100_like_jobs",
    "calibrate_m100_job_params",
    "synthetic_carbon_intensity",
    "calibrate_ci_params",
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
        have ``num_gpus_alloc == 0``.
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
        mean 1 by the generator). The excerpt covers only ~30.6 h, so hours 17-23
        are seen twice and hours 0-16 once: the raw count of each hour is divided
        by its exposure (hours of that hour-of-day inside [first, last]
        submission), then smoothed by an exposure-weighted least-squares fit of a
        mean plus 24 h and 12 h harmonics, floored at 5 % of its mean and
        normalised to mean 1. Peak 11-12 UTC (~2x mean), trough 02 UTC (~0.4x).
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
        0.469, 0.424, 0.396, 0.409, 0.489, 0.645, 0.874, 1.152,
        1.444, 1.704, 1.891, 1.975, 1.944, 1.808, 1.593, 1.339,
        1.087, 0.872, 0.713, 0.616, 0.567, 0.548, 0.533, 0.508,
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
        its nodes.
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


def _hourly_submit_profile(submit_time: pd.Series) -> np.ndarray:
    """Smoothed relative submission rate per UTC hour of day (mean 1), see M100JobParams."""
    t = pd.to_datetime(submit_time, utc=True)
    t0, t1 = t.min(), t.max()
    hour_starts = pd.date_range(t0.floor("h"), t1.ceil("h"), freq="h", inclusive="left")
    lo = np.maximum(hour_starts, t0)
    hi = np.minimum(hour_starts + pd.Timedelta(hours=1), t1)
    dur_h = np.clip((hi - lo).total_seconds().to_numpy() / _SECONDS_PER_HOUR, 0.0, None)
    exposure_h = np.bincount(hour_starts.hour, weights=dur_h, minlength=24)
    if (exposure_h <= 0).any():
        raise ValueError(
            f"submit_time spans {t0} -> {t1}; allowed: at least 24 h so that every "
            "UTC hour of day is observed"
        )
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
        If a run time or time limit is not positive, or the excerpt spans < 24 h.
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
        hourly_submit_weights=tuple(float(w) for w in _hourly_submit_profile(df["submit_time"])),
    )


# ----------------------------------------------------------- grid carbon intensity


@dataclass(frozen=True)
class CarbonParams:
    """Hourly carbon-intensity model of one bidding zone.

    ``ci(t) = max(0, mean + c24 cos(2 pi h/24) + s24 sin(2 pi h/24)
    + c12 cos(2 pi h/12) + s12 sin(2 pi h/12) + r(t))`` with ``h`` the UTC hour of
    day and ``r(t) = ar1_phi r(t-1) + e(t)``, ``e ~ N(0, ar1_sigma^2)``.

    Attributes
    ----------
    mean_gco2_per_kwh : float
        Annual mean [gCO2eq/kWh].
    cos24_gco2_per_kwh, sin24_gco2_per_kwh : float
        24 h harmonic amplitudes on UTC hour [gCO2eq/kWh].
    cos12_gco2_per_kwh, sin12_gco2_per_kwh : float
        12 h harmonic amplitudes on UTC hour [gCO2eq/kWh].
    ar1_phi : float
        Lag-1 coefficient of the hourly residual [-], ``-1 < phi < 1``.
    ar1_sigma_gco2_per_kwh : float
        Innovation standard deviation [gCO2eq/kWh], >= 0; the stationary residual
        std is ``sigma / sqrt(1 - phi^2)``.
    observed_lag1_autocorr : float
        Lag-1 autocorrelation of the raw calibration series [-] (documentation
        only: not used by the generator).
    """

    mean_gco2_per_kwh: float
    cos24_gco2_per_kwh: float
    sin24_gco2_per_kwh: float
    cos12_gco2_per_kwh: float
    sin12_gco2_per_kwh: float
    ar1_phi: float
    ar1_sigma_gco2_per_kwh: float
    observed_lag1_autocorr: float

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_real(f.name, getattr(self, f.name))
        _check_real("mean_gco2_per_kwh", self.mean_gco2_per_kwh, 0.0)
        _check_real("ar1_phi", self.ar1_phi, -1.0, 1.0, lo_open=True, hi_open=True)
        _check_real("ar1_sigma_gco2_per_kwh", self.ar1_sigma_gco2_per_kwh, 0.0)


# Derived by calibrate_ci_params() from shared/data/entsoe_ci_2025/{CC}_hourly.parquet,
# calendar year 2025 UTC only (8 760 h each), column carbon_intensity_gCO2eq_per_kWh:
# OLS fit of mean + 24 h + 12 h harmonics on UTC hour; AR(1) by Yule-Walker on the
# residual, sigma = std(residual) * sqrt(1 - phi^2) so the synthetic series keeps the
# data's hour-to-hour variance. Rounding: gCO2eq/kWh to 2 dp, phi and lag-1 to 3 dp.
#
# Lag-1 autocorrelation of the raw 2025 series (observed_lag1_autocorr): SE 0.779,
# CH 0.948, FR 0.576, IT 0.694, DE 0.519, PL 0.674 (the data README quotes SE 0.77,
# CH 0.95, FR 0.61, IT 0.74, DE 0.56, PL 0.72 for the full files, which run into
# 2026). Real grid intensity is far smoother hour to hour (typically > 0.95), so
# except for CH these series carry a large hour-to-hour noise; the AR(1) reproduces
# it faithfully (residual phi 0.52-0.75, CH 0.94) rather than hiding it. The noise is closer
# to "slow component + white noise" than to AR(1): lag-2/lag-1 autocorrelation is
# ~0.9-0.95 in the data versus phi in the model, so the model decorrelates faster
# beyond one hour. The diurnal harmonics are weak (peak-to-peak of the hourly mean
# profile: DE 28, IT 23, PL 35 g, i.e. < 10 % of the mean), smaller than on real
# grids with much solar (DE, IT).
#
# Cross-check of the annual means against Ember 2025 yearly means (gCO2/kWh):
#   SE 21.70 vs 38.42 (Ember 2023)  -43.5 %
#   CH 21.54 vs 39.22               -45.1 %
#   FR 37.09 vs 41.44               -10.5 %
#   IT 243.99 vs 284.78             -14.3 %
#   DE 352.32 vs 329.65              +6.9 %
#   PL 515.14 vs 588.60             -12.5 %
# The ENTSO-E-derived series are production-based from A75 generation with the kit's
# lifecycle factors; the low-carbon grids (SE, CH) come out ~45 % below Ember and
# IT/PL/FR 10-15 % below, DE 7 % above. Use the table for relative studies; for
# absolute footprints scale the mean (e.g. with dataclasses.replace) and say so.
CARBON_PARAMS: Mapping[str, CarbonParams] = MappingProxyType(
    {
        "SE": CarbonParams(21.70, -1.50, 0.43, 0.11, -0.27, 0.753, 1.98, 0.779),
        "CH": CarbonParams(21.54, -3.62, 0.46, 0.49, -0.73, 0.935, 0.95, 0.948),
        "FR": CarbonParams(37.09, 0.26, 0.27, -0.05, -0.09, 0.576, 10.07, 0.576),
        "IT": CarbonParams(243.99, 4.61, -8.02, -1.51, 0.97, 0.691, 54.17, 0.694),
        "DE": CarbonParams(352.32, 8.24, -6.34, 0.28, 2.02, 0.518, 106.25, 0.519),
        "PL": CarbonParams(515.14, 2.75, -13.56, 3.41, 0.70, 0.671, 81.11, 0.674),
    }
)

_CI_COLUMN = "carbon_intensity_gCO2eq_per_kWh"


def _harmonic_design(hour: np.ndarray) -> np.ndarray:
    """Columns [1, cos24, sin24, cos12, sin12] for UTC hour of day ``hour`` [h]."""
    w = 2.0 * np.pi * np.asarray(hour, dtype=np.float64) / 24.0
    return np.column_stack([np.ones_like(w), np.cos(w), np.sin(w), np.cos(2 * w), np.sin(2 * w)])


def synthetic_carbon_intensity(
    country: str, start: datetime, hours: int, seed: int
) -> pd.Series:
    """Seeded synthetic hourly grid carbon intensity of one country.

    Model (parameters in :data:`CARBON_PARAMS`, see :class:`CarbonParams`):
    annual mean + 24 h and 12 h harmonics on the UTC hour of day + an AR(1)
    residual started from its stationary law, then clipped at 0. The clip only
    matters where the mean is within ~3 residual std of 0 (FR: mean 37, std 12
    -> well under 0.5 % of hours clipped), and biases the mean up by a negligible
    amount there.

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
    coef = np.array(
        [
            p.mean_gco2_per_kwh,
            p.cos24_gco2_per_kwh,
            p.sin24_gco2_per_kwh,
            p.cos12_gco2_per_kwh,
            p.sin12_gco2_per_kwh,
        ]
    )
    deterministic = _harmonic_design(index.hour.to_numpy()) @ coef
    rng = np.random.default_rng(seed)
    innovations = rng.normal(0.0, p.ar1_sigma_gco2_per_kwh, hours)
    innovations[0] /= math.sqrt(1.0 - p.ar1_phi**2)  # r(0) from the stationary law
    residual = lfilter([1.0], [1.0, -p.ar1_phi], innovations)
    values = np.maximum(deterministic + residual, 0.0)
    return pd.Series(values, index=index, name="carbon_intensity_gco2_per_kwh")


def calibrate_ci_params(path_to_parquet: str | os.PathLike) -> CarbonParams:
    """Recompute one row of :data:`CARBON_PARAMS` from an hourly ENTSO-E series.

    Uses calendar year 2025 (UTC) only. OLS fit of mean + 24 h + 12 h harmonics on
    the UTC hour; Yule-Walker AR(1) on the residual, with
    ``sigma = std(residual) * sqrt(1 - phi^2)``.

    Parameters
    ----------
    path_to_parquet : str or path-like
        Parquet with columns ``timestamp`` (UTC) and
        ``carbon_intensity_gCO2eq_per_kWh`` [gCO2eq/kWh], e.g.
        ``shared/data/entsoe_ci_2025/DE_hourly.parquet``.

    Returns
    -------
    CarbonParams
        Unrounded estimates.

    Raises
    ------
    ValueError
        If the 2025 rows are fewer than 48, not strictly hourly without gaps, or
        contain NaN.
    """
    df = pd.read_parquet(path_to_parquet, columns=["timestamp", _CI_COLUMN])
    ts = pd.to_datetime(df["timestamp"], utc=True)
    in_2025 = (ts.dt.year == 2025).to_numpy()
    ts = ts[in_2025].sort_values()
    x = df.loc[ts.index, _CI_COLUMN].to_numpy(dtype=np.float64)
    if x.size < 48:
        raise ValueError(f"{path_to_parquet}: {x.size} rows in 2025; allowed: >= 48")
    steps = np.diff(ts.to_numpy()).astype("timedelta64[s]").astype(np.int64)
    if (steps != 3600).any():
        raise ValueError(f"{path_to_parquet}: 2025 timestamps are not hourly without gaps")
    if np.isnan(x).any():
        raise ValueError(f"{path_to_parquet}: {int(np.isnan(x).sum())} NaN values in 2025")
    design = _harmonic_design(ts.dt.hour.to_numpy())
    coef, *_ = np.linalg.lstsq(design, x, rcond=None)
    resid = x - design @ coef
    resid = resid - resid.mean()
    phi = float(resid[1:] @ resid[:-1] / (resid @ resid))
    sigma = float(resid.std() * math.sqrt(1.0 - phi**2))
    lag1 = float(np.corrcoef(x[:-1], x[1:])[0, 1])
    return CarbonParams(*(float(c) for c in coef), phi, sigma, lag1)


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
