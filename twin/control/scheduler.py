"""Carbon- and PUE-aware deferral and throttling of flexible jobs (GridPilot scheduler).

Seed 004 §3.3 (Algorithm 1, whose body is lost in our copy): hourly dispatch decisions
over a 24 h look-ahead of the composite signal ``s = CI x PUE`` [gCO2eq/kWh of IT
energy]; a flexible job is deferred while the current hour's signal exceeds the 66th
percentile of the look-ahead, and running jobs are capped to 80 % of their power in
those high-signal hours (EcoFreq's default, ref. [13]). Deferral is deadline-safe: a job
never starts later than ``latest_start = deadline - run time``; if no low-signal hour
comes first it starts at its latest start anyway.

The signal is an hourly series, ``values[k]`` covering ``[start_s + k h, start_s + (k+1) h)``
(seconds on the caller's clock, e.g. since the scenario start; ``start_s`` may be
negative to carry history). A forecast made at the start of hour ``k`` knows the hours
before ``k`` (complete hours), except the ``perfect`` forecast, which knows everything:

* ``perfect``: ``f[j] = values[k + j]``;
* ``persistence``: ``f[j] = values[k - 1]`` (last complete hour held);
* ``seasonal_naive``: ``f[j] = values[k + j - 24 m]``, ``m = floor(j / 24) + 1`` (the
  same hour of the last observed day).

A ``persistence`` look-ahead is flat, so no hour of it exceeds its own 66th percentile:
that scheduler never defers nor throttles (the no-information baseline). A ``perfect``
or ``seasonal_naive`` look-ahead of 24 distinct values marks exactly 8 hours high
(sorted positions 16-23; the percentile sits at position 0.66 x 23 = 15.18).

Pure functions (:func:`forecast_hourly`, :func:`deferral_threshold`,
:func:`high_signal_windows_s`, :func:`planned_start_s`, :func:`should_defer`,
:func:`throttle_cap_fraction`) and a thin :class:`CarbonScheduler` that keeps the last
hour's forecast. Nothing reads a clock. Constants: ``docs/parameters.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFER_PERCENTILE",
    "FORECAST_METHODS",
    "HOUR_S",
    "LOOKAHEAD_H",
    "THROTTLE_CAP_FRACTION",
    "CarbonScheduler",
    "DeferrableJob",
    "HourlySignal",
    "SchedulerParams",
    "deferral_threshold",
    "forecast_hourly",
    "high_signal_windows_s",
    "planned_start_s",
    "should_defer",
    "throttle_cap_fraction",
]

#: Forecast choices (future scenario values), in the order documented above.
FORECAST_METHODS = ("perfect", "persistence", "seasonal_naive")
HOUR_S = 3600.0
#: Look-ahead of the deferral percentile [h] (seed 004 §3.3: "24-hour look-ahead window").
LOOKAHEAD_H = 24
#: Percentile of the look-ahead above which an hour is "high" (seed 004 §3.3: 66th).
DEFER_PERCENTILE = 66.0
#: Power-cap factor in high-signal hours (seed 004 §3.3, EcoFreq's default [13]: 80 %).
THROTTLE_CAP_FRACTION = 0.8
_SEASON_H = 24


@dataclass(frozen=True)
class SchedulerParams:
    """Scheduler constants (sources in the module docstring and ``docs/parameters.md``)."""

    forecast: str = "perfect"
    lookahead_h: int = LOOKAHEAD_H
    percentile: float = DEFER_PERCENTILE
    cap_fraction: float = THROTTLE_CAP_FRACTION

    def __post_init__(self):
        if self.forecast not in FORECAST_METHODS:
            raise ValueError(f"forecast = {self.forecast!r}: expected one of {FORECAST_METHODS}")
        if isinstance(self.lookahead_h, bool) or not isinstance(self.lookahead_h, int) or not 1 <= self.lookahead_h <= 168:
            raise ValueError(f"lookahead_h = {self.lookahead_h!r}: expected an integer in [1, 168] h")
        if not 0.0 <= self.percentile <= 100.0:
            raise ValueError(f"percentile = {self.percentile!r}: expected in [0, 100]")
        if not 0.0 < self.cap_fraction <= 1.0:
            raise ValueError(f"cap_fraction = {self.cap_fraction!r}: expected in (0, 1]")


@dataclass(frozen=True)
class DeferrableJob:
    """What the scheduler needs of a job (times in the caller's seconds).

    ``deadline_s`` is when the job must have *finished*; ``latest_start_s = deadline_s
    - run_s``. A job that is not ``flexible`` is never deferred.
    """

    job_id: int | str
    submit_s: float
    run_s: float
    deadline_s: float
    flexible: bool = True

    def __post_init__(self):
        if not (math.isfinite(self.submit_s)):
            raise ValueError(f"job {self.job_id!r}: submit_s = {self.submit_s!r}: expected a finite time [s]")
        if not (math.isfinite(self.run_s) and self.run_s >= 0.0):
            raise ValueError(f"job {self.job_id!r}: run_s = {self.run_s!r}: expected a finite duration >= 0 s")
        if not (math.isfinite(self.deadline_s)):
            raise ValueError(f"job {self.job_id!r}: deadline_s = {self.deadline_s!r}: expected a finite time [s]")

    @property
    def latest_start_s(self) -> float:
        return self.deadline_s - self.run_s


@dataclass(frozen=True)
class HourlySignal:
    """An hourly series: ``values[k]`` holds for ``[start_s + k * 3600, start_s + (k+1) * 3600)``."""

    values: np.ndarray
    start_s: float = 0.0

    def __post_init__(self):
        v = np.asarray(self.values, dtype=float)
        if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
            raise ValueError(f"values: expected a non-empty 1-D series of finite numbers; got shape {v.shape}")
        if not math.isfinite(self.start_s):
            raise ValueError(f"start_s = {self.start_s!r}: expected a finite time [s]")
        object.__setattr__(self, "values", v)

    @property
    def end_s(self) -> float:
        return self.start_s + self.values.size * HOUR_S

    def hour_index(self, t_s: float) -> int:
        """Index of the hour containing ``t_s``; ValueError outside the covered range."""
        if not self.start_s <= t_s < self.end_s:
            raise ValueError(f"t_s = {t_s!r}: outside the signal's range [{self.start_s:g}, {self.end_s:g}) s")
        return math.floor((t_s - self.start_s) / HOUR_S)


def forecast_hourly(values, now_index: int, horizon_h: int = LOOKAHEAD_H, method: str = "perfect") -> np.ndarray:
    """Forecast of hours ``now_index .. now_index + horizon_h - 1`` made at the start of ``now_index``.

    Parameters
    ----------
    values : 1-D array
        The hourly series (truth), e.g. CI x PUE [gCO2eq/kWh].
    now_index : int
        Index of the current hour.
    horizon_h : int
        Number of hours forecast, >= 1.
    method : str
        One of :data:`FORECAST_METHODS` (definitions in the module docstring).

    Returns
    -------
    numpy.ndarray, shape (horizon_h,)

    Raises
    ------
    ValueError
        Unknown method, or the series does not cover what the method needs (``perfect``:
        up to ``now_index + horizon_h - 1``; ``persistence``: ``now_index - 1``;
        ``seasonal_naive``: from ``now_index - 24``), naming the indices.
    """
    v = np.asarray(values, dtype=float)
    if method not in FORECAST_METHODS:
        raise ValueError(f"method = {method!r}: expected one of {FORECAST_METHODS}")
    if isinstance(horizon_h, bool) or int(horizon_h) != horizon_h or horizon_h < 1:
        raise ValueError(f"horizon_h = {horizon_h!r}: expected an integer >= 1")
    k, n, h = int(now_index), v.size, int(horizon_h)
    if not 0 <= k < n:
        raise ValueError(f"now_index = {now_index!r}: expected in [0, {n - 1}] (series of {n} hours)")
    if method == "perfect":
        if k + h > n:
            raise ValueError(f"perfect forecast needs hours {k}..{k + h - 1}; the series ends at hour {n - 1}")
        return v[k:k + h].copy()
    if method == "persistence":
        if k < 1:
            raise ValueError("persistence forecast needs hour now_index - 1 = -1; the series starts at hour 0 "
                             "(give it at least one hour of history)")
        return np.full(h, v[k - 1])
    j = np.arange(h)
    src = k + j - _SEASON_H * (j // _SEASON_H + 1)
    if src.min() < 0:
        raise ValueError(f"seasonal_naive forecast needs hours from {src.min()} on; the series starts at hour 0 "
                         f"(give it at least {_SEASON_H} h of history)")
    return v[src]


def deferral_threshold(forecast, percentile: float = DEFER_PERCENTILE) -> float:
    """The ``percentile``-th percentile of the look-ahead forecast (numpy's linear rule)."""
    f = np.asarray(forecast, dtype=float)
    if f.ndim != 1 or f.size == 0 or not np.all(np.isfinite(f)):
        raise ValueError("forecast: expected a non-empty 1-D array of finite values")
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile = {percentile!r}: expected in [0, 100]")
    return float(np.percentile(f, percentile))


def high_signal_windows_s(forecast, threshold: float, forecast_start_s: float) -> np.ndarray:
    """``[start, end)`` [s] of the runs of consecutive hours whose forecast exceeds ``threshold``.

    Returns an (n, 2) array; hour ``j`` of the forecast covers
    ``[forecast_start_s + j h, forecast_start_s + (j+1) h)``.
    """
    high = np.asarray(forecast, dtype=float) > threshold
    edges = np.diff(np.r_[0, high.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return np.column_stack([forecast_start_s + starts * HOUR_S, forecast_start_s + ends * HOUR_S])


def planned_start_s(job: DeferrableJob, now_s: float, windows_s) -> float:
    """When the job should start, seen at ``now_s`` [s].

    The first instant ``>= max(now_s, submit_s)`` outside every high-signal window,
    but never later than ``max(latest_start_s, now_s)``: a job whose latest start has
    come starts now. A job that is not flexible starts at once.
    """
    t = max(float(now_s), job.submit_s)
    if not job.flexible or t >= job.latest_start_s:
        return t
    w = np.asarray(windows_s, dtype=float).reshape(-1, 2)
    for a, b in w[np.argsort(w[:, 0])]:
        if a <= t < b:
            t = b
    return min(t, job.latest_start_s)


def should_defer(job: DeferrableJob, now_s: float, windows_s) -> bool:
    """True if the job, pending at ``now_s``, should wait (its planned start is later)."""
    return planned_start_s(job, now_s, windows_s) > max(float(now_s), job.submit_s)


def throttle_cap_fraction(now_s, windows_s, cap_fraction: float = THROTTLE_CAP_FRACTION):
    """Cap factor for running jobs: ``cap_fraction`` inside a high-signal window, else 1 [-].

    ``now_s`` may be an array (vectorised); windows are ``[start, end)``.
    """
    if not 0.0 < cap_fraction <= 1.0:
        raise ValueError(f"cap_fraction = {cap_fraction!r}: expected in (0, 1]")
    t = np.asarray(now_s, dtype=float)
    w = np.asarray(windows_s, dtype=float).reshape(-1, 2)
    inside = np.any((t[..., None] >= w[:, 0]) & (t[..., None] < w[:, 1]), axis=-1)
    out = np.where(inside, cap_fraction, 1.0)
    return out if out.ndim else float(out)


class CarbonScheduler:
    """Hourly deferral decisions over one signal (CI x PUE), with the last forecast kept.

    Call :meth:`update` at each hour start; between updates :meth:`should_defer`,
    :meth:`planned_start_s` and :meth:`throttle_cap_fraction` answer from the windows
    of the last forecast. ``planned_start_s`` of a deferred job is the wake-up time the
    engine should schedule (re-planned at each hourly update).

    Parameters
    ----------
    signal : HourlySignal
        The truth series (CI x PUE, or CI alone for a CI-only scheduler).
    params : SchedulerParams
    """

    def __init__(self, signal: HourlySignal, params: SchedulerParams = SchedulerParams()):
        self.signal = signal
        self.params = params
        self.forecast: np.ndarray | None = None
        self.forecast_start_s = math.nan
        self.threshold = math.nan
        self.windows_s = np.zeros((0, 2))

    def update(self, now_s: float) -> np.ndarray:
        """Forecast the look-ahead from the hour containing ``now_s``; returns the high windows."""
        k = self.signal.hour_index(now_s)
        p = self.params
        self.forecast = forecast_hourly(self.signal.values, k, p.lookahead_h, p.forecast)
        self.forecast_start_s = self.signal.start_s + k * HOUR_S
        self.threshold = deferral_threshold(self.forecast, p.percentile)
        self.windows_s = high_signal_windows_s(self.forecast, self.threshold, self.forecast_start_s)
        return self.windows_s

    def _require(self):
        if self.forecast is None:
            raise ValueError("no forecast yet: call update(now_s) at the hour start first")

    def planned_start_s(self, job: DeferrableJob, now_s: float) -> float:
        self._require()
        return planned_start_s(job, now_s, self.windows_s)

    def should_defer(self, job: DeferrableJob, now_s: float) -> bool:
        self._require()
        return should_defer(job, now_s, self.windows_s)

    def throttle_cap_fraction(self, now_s):
        self._require()
        return throttle_cap_fraction(now_s, self.windows_s, self.params.cap_fraction)
