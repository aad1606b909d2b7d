"""Synthetic power signature of one synchronous AI-training job.

A synchronous data-parallel job runs its GPUs in lock-step: every iteration has a
compute-heavy phase (all GPUs near their power limit) followed by a
communication-heavy phase (collectives, GPUs mostly waiting), so the whole job's power
swings by a large fraction of its peak once per iteration (Choukse et al., arXiv
2508.14318; NVIDIA GB300 NVL72 power-smoothing blog; REFERENCE.md §1.3, §8.7). Every
few hundred iterations the job pauses to load data, and every few data loads it writes
a checkpoint; both are low-power phases.

The model has two layers:

* a piecewise-constant *target* signal ``s(t)``: a superperiod (the "hyperperiod")
  made of ``n_ck`` data-load cycles, each of ``n_dl`` iterations (compute at
  ``peak_power_w`` for ``compute_duty * period_s``, communication at
  ``peak_power_w * (1 - swing_fraction)`` for the rest) followed by a data-load pause,
  then one checkpoint; the hyperperiod repeats from ``start_s`` to ``end_s`` and
  ``s = 0`` outside;
* finite edges: the job power is the moving average of ``s`` over the last
  ``edge_ramp_s``, ``P(t) = (S(t) - S(t - r)) / r`` with ``S`` the exact integral of
  ``s``. Every step of ``s`` becomes a linear ramp of duration ``r``, so ``P`` is
  piecewise linear with knots at each edge time ``e`` and at ``e + r``; where two
  edges are closer than ``r`` the ramps overlap and the knots stay the same.

Hence the energy over any interval is the trapezoid rule over the knots inside it,
which is exact (:meth:`TrainingPowerTrace.energy_j`), and the knots are the event
times an event-driven engine needs (:meth:`TrainingPowerTrace.edges_s`).

Intervals are whole numbers of iterations: ``n_dl = max(1, round(data_load_interval_s
/ period_s))`` and ``n_ck = max(1, round(checkpoint_interval_s / cycle_s))`` with
``cycle_s = n_dl * period_s + data_load_duration_s`` (a synchronous job checkpoints and
loads data between steps, not in the middle of one).

All defaults except the swing depth and period are assumptions (``docs/power.md``).
Units are SI, carried in the names. No randomness, no clock.

References
----------
.. [1] E. Choukse et al., "Power stabilization for AI training datacenters",
   arXiv:2508.14318 (2025). REFERENCE.md §1.3 and §8.7 (spectrum mostly 0.2-3 Hz).
.. [2] NVIDIA developer blog, "How new GB300 NVL72 features provide steady power for
   AI" (2025): lock-step idle/high-power transitions. REFERENCE.md §1.3.
.. [3] DCPI (seed 000), Introduction: "power fluctuations exceeding 200 MW within
   temporal intervals of 40 ms"; §6.1.2 b: phase-specific power characteristics (data
   loading, computation, checkpointing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "TrainingPowerParams",
    "TrainingPowerTrace",
    "training_edges_s",
    "training_energy_j",
    "training_power_w",
]

#: Allowed iteration period [s]: the swing spectrum is mostly 0.2-3 Hz (REFERENCE.md §8.7).
PERIOD_RANGE_S = (1.0 / 3.0, 5.0)


def _check(name: str, value, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False,
           unit: str = "") -> float:
    v = float(value)
    ok = (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)
    if not (ok and not math.isnan(v)):
        raise ValueError(f"{name} = {value!r}{unit}: expected in {'(' if lo_open else '['}{lo:g}, "
                         f"{hi:g}{')' if hi_open else ']'}{unit}")
    return v


@dataclass(frozen=True)
class TrainingPowerParams:
    """Parameters of the training-job power signature (validated on construction).

    Attributes
    ----------
    peak_power_w : float
        Job power in the compute phase [W], > 0.
    swing_fraction : float
        Depth of the compute/communication swing as a fraction of ``peak_power_w`` [-],
        in [0, 1]. Default 0.5: a 300 MW job swings ~150 MW (assumption; the paper's MW
        figures are unsourced, REFERENCE.md §1.3, §8.7 say "tens to hundreds of MW").
    period_s : float
        Iteration period [s], in [1/3, 5] (0.2-3 Hz, REFERENCE.md §8.7). Default 1.5 s
        ("every second or two", Uptime Institute, REFERENCE.md §1.3).
    compute_duty : float
        Fraction of each iteration spent in the compute phase [-], in (0, 1).
        Default 0.7 (assumption).
    edge_ramp_s : float
        Duration of every power edge [s], >= 0 and below both phases of an iteration.
        Default 0.04 s: DCPI Introduction quotes swings "within 40 ms".
    checkpoint_interval_s, checkpoint_duration_s : float
        Checkpoint spacing (rounded to whole data-load cycles) and length [s].
        Defaults 1800 s and 60 s (assumptions); duration 0 disables checkpoints.
    checkpoint_power_fraction : float
        Job power while checkpointing as a fraction of peak [-], in [0, 1].
        Default 0.3 (assumption).
    data_load_interval_s, data_load_duration_s : float
        Data-load spacing (rounded to whole iterations) and length [s]. Defaults 600 s
        and 10 s (assumptions); duration 0 disables data-load pauses.
    data_load_power_fraction : float
        Job power while loading data, fraction of peak [-]. Default 0.4 (assumption).
    start_s, end_s : float
        The job runs on ``[start_s, end_s)`` [s]; power is 0 outside (before the ramp).
        ``end_s`` defaults to ``inf``.
    """

    peak_power_w: float
    swing_fraction: float = 0.5
    period_s: float = 1.5
    compute_duty: float = 0.7
    edge_ramp_s: float = 0.04
    checkpoint_interval_s: float = 1800.0
    checkpoint_duration_s: float = 60.0
    checkpoint_power_fraction: float = 0.3
    data_load_interval_s: float = 600.0
    data_load_duration_s: float = 10.0
    data_load_power_fraction: float = 0.4
    start_s: float = 0.0
    end_s: float = math.inf

    def __post_init__(self):
        _check("peak_power_w", self.peak_power_w, 0.0, math.inf, lo_open=True, hi_open=True, unit=" W")
        _check("swing_fraction", self.swing_fraction, 0.0, 1.0)
        _check("period_s", self.period_s, *PERIOD_RANGE_S, unit=" s")
        _check("compute_duty", self.compute_duty, 0.0, 1.0, lo_open=True, hi_open=True)
        phase_min_s = min(self.compute_duty, 1.0 - self.compute_duty) * self.period_s
        _check("edge_ramp_s", self.edge_ramp_s, 0.0, phase_min_s, unit=" s (the shorter phase of an iteration)")
        _check("checkpoint_interval_s", self.checkpoint_interval_s, 0.0, math.inf, lo_open=True, hi_open=True,
               unit=" s")
        _check("checkpoint_duration_s", self.checkpoint_duration_s, 0.0, math.inf, hi_open=True, unit=" s")
        _check("checkpoint_power_fraction", self.checkpoint_power_fraction, 0.0, 1.0)
        _check("data_load_interval_s", self.data_load_interval_s, 0.0, math.inf, lo_open=True, hi_open=True,
               unit=" s")
        _check("data_load_duration_s", self.data_load_duration_s, 0.0, math.inf, hi_open=True, unit=" s")
        _check("data_load_power_fraction", self.data_load_power_fraction, 0.0, 1.0)
        if not math.isfinite(self.start_s):
            raise ValueError(f"start_s = {self.start_s!r} s: expected a finite time")
        if not (self.end_s > self.start_s):
            raise ValueError(f"end_s = {self.end_s!r} s: expected > start_s = {self.start_s!r} s")

    @property
    def low_power_w(self) -> float:
        """Communication-phase power ``peak * (1 - swing_fraction)`` [W]."""
        return self.peak_power_w * (1.0 - self.swing_fraction)

    @property
    def iterations_per_data_load(self) -> int:
        """``n_dl = max(1, round(data_load_interval_s / period_s))`` [-]."""
        return max(1, round(self.data_load_interval_s / self.period_s))

    @property
    def cycle_s(self) -> float:
        """One data-load cycle, ``n_dl * period_s + data_load_duration_s`` [s]."""
        return self.iterations_per_data_load * self.period_s + self.data_load_duration_s

    @property
    def cycles_per_checkpoint(self) -> int:
        """``n_ck = max(1, round(checkpoint_interval_s / cycle_s))`` [-]."""
        return max(1, round(self.checkpoint_interval_s / self.cycle_s))

    @property
    def hyperperiod_s(self) -> float:
        """Length of the repeating pattern, ``n_ck * cycle_s + checkpoint_duration_s`` [s]."""
        return self.cycles_per_checkpoint * self.cycle_s + self.checkpoint_duration_s


class TrainingPowerTrace:
    """Job power, its exact energy integral and its edge times, for one parameter set.

    Builds the hyperperiod's target-signal table once (about ``2 n_ck n_dl`` rows) and
    answers vectorised queries from it. Immutable after construction.

    Parameters
    ----------
    params : TrainingPowerParams
    """

    def __init__(self, params: TrainingPowerParams):
        self.params = params
        p = params
        hi, lo = p.peak_power_w, p.low_power_w
        t_hi, t_lo = p.compute_duty * p.period_s, (1.0 - p.compute_duty) * p.period_s
        n_dl, n_ck = p.iterations_per_data_load, p.cycles_per_checkpoint
        levels, durations = [], []
        for _ in range(n_ck):
            levels += [hi, lo] * n_dl
            durations += [t_hi, t_lo] * n_dl
            if p.data_load_duration_s > 0.0:
                levels.append(p.data_load_power_fraction * hi)
                durations.append(p.data_load_duration_s)
        if p.checkpoint_duration_s > 0.0:
            levels.append(p.checkpoint_power_fraction * hi)
            durations.append(p.checkpoint_duration_s)
        self._levels_w = np.asarray(levels, dtype=float)
        dur = np.asarray(durations, dtype=float)
        # segment k of the hyperperiod is [starts[k], starts[k+1]) at levels[k]
        self._starts_s = np.concatenate(([0.0], np.cumsum(dur)))
        self._hyper_s = float(self._starts_s[-1])
        self._cum_j = np.concatenate(([0.0], np.cumsum(self._levels_w * dur)))
        self._hyper_j = float(self._cum_j[-1])
        # edges inside one hyperperiod: segment starts whose level differs from the
        # previous segment's, the hyperperiod start counting against the last segment
        prev = np.roll(self._levels_w, 1)
        self._edge_offsets_s = self._starts_s[:-1][self._levels_w != prev]

    # ----------------------------------------------------------------- target signal

    def _cumulative_j(self, t_s):
        """``S(t) = integral of s from start_s to t`` [J] (0 before the start)."""
        p = self.params
        t = np.asarray(t_s, dtype=float)
        tau = np.clip(t, p.start_s, p.end_s) - p.start_s
        k = np.floor(tau / self._hyper_s)
        rem = tau - k * self._hyper_s
        return k * self._hyper_j + np.interp(rem, self._starts_s, self._cum_j)

    def target_power_w(self, t_s):
        """The piecewise-constant target ``s(t)`` (edges without ramps) [W]."""
        p = self.params
        t = np.asarray(t_s, dtype=float)
        tau = t - p.start_s
        rem = tau - np.floor(tau / self._hyper_s) * self._hyper_s
        idx = np.clip(np.searchsorted(self._starts_s, rem, side="right") - 1, 0, self._levels_w.size - 1)
        return np.where((t >= p.start_s) & (t < p.end_s), self._levels_w[idx], 0.0)

    # --------------------------------------------------------------------- queries

    def power_w(self, t_s):
        """Job power at the times ``t_s`` [W], ``(S(t) - S(t - r)) / r``.

        Parameters
        ----------
        t_s : float or array
            Times [s] (any shape; any order).

        Returns
        -------
        float or array
            Power [W], same shape as ``t_s``; the target ``s(t)`` when ``edge_ramp_s = 0``.
        """
        r = self.params.edge_ramp_s
        if r == 0.0:
            return self.target_power_w(t_s)
        t = np.asarray(t_s, dtype=float)
        return (self._cumulative_j(t) - self._cumulative_j(t - r)) / r

    def edges_s(self, t0_s: float, t1_s: float):
        """Times in ``[t0_s, t1_s)`` at which a power edge (ramp of ``edge_ramp_s``) begins [s].

        Includes the job start and end. Sorted ascending.
        """
        p = self.params
        if not t1_s >= t0_s:
            raise ValueError(f"t1_s = {t1_s!r} s: expected >= t0_s = {t0_s!r} s")
        lo, hi = max(t0_s, p.start_s), min(t1_s, p.end_s)
        out = []
        if lo < hi:
            k0 = math.floor((lo - p.start_s) / self._hyper_s)
            k1 = math.floor((hi - p.start_s) / self._hyper_s)
            ks = np.arange(k0, k1 + 1, dtype=float)
            times = (p.start_s + ks[:, None] * self._hyper_s + self._edge_offsets_s[None, :]).ravel()
            out.append(times[(times >= lo) & (times < hi)])
        if t0_s <= p.start_s < t1_s:
            out.append(np.array([p.start_s]))
        if math.isfinite(p.end_s) and t0_s <= p.end_s < t1_s:
            out.append(np.array([p.end_s]))
        if not out:
            return np.empty(0)
        return np.unique(np.concatenate(out))

    def knots_s(self, t0_s: float, t1_s: float):
        """Times in ``(t0_s, t1_s)`` where the piecewise-linear power changes slope [s].

        The edge times ``e`` and ramp ends ``e + edge_ramp_s``.
        """
        r = self.params.edge_ramp_s
        e = self.edges_s(t0_s - r, t1_s)
        k = np.concatenate((e, e + r))
        return np.unique(k[(k > t0_s) & (k < t1_s)])

    def energy_j(self, t0_s, t1_s):
        """Exact energy of the job over ``[t0_s, t1_s]`` [J].

        Trapezoid rule over ``t0``, the knots inside and ``t1``: exact because the power
        is linear between knots (with ``edge_ramp_s = 0``: ``S(t1) - S(t0)``). Cost grows
        with the number of edges in the interval.

        Parameters
        ----------
        t0_s, t1_s : float or array
            Interval bounds [s], ``t1_s >= t0_s`` (broadcast together).

        Returns
        -------
        float or array
            Energy [J].
        """
        t0, t1 = np.broadcast_arrays(np.asarray(t0_s, dtype=float), np.asarray(t1_s, dtype=float))
        if np.any(t1 < t0):
            raise ValueError("t1_s: expected t1_s >= t0_s everywhere")
        if self.params.edge_ramp_s == 0.0:      # square wave: S(t1) - S(t0)
            return self._cumulative_j(t1) - self._cumulative_j(t0)
        out = np.empty(t0.shape)
        for i in np.ndindex(t0.shape):
            a, b = float(t0[i]), float(t1[i])
            t = np.concatenate(([a], self.knots_s(a, b), [b]))
            out[i] = np.trapezoid(self.power_w(t), t) if b > a else 0.0
        return out[()] if out.ndim == 0 else out

    def mean_iteration_power_w(self) -> float:
        """Mean power of one iteration, ``peak * (d + (1 - d)(1 - swing))`` [W].

        Ramps leave it unchanged (each ramp trades the same area on both levels).
        """
        p = self.params
        return p.compute_duty * p.peak_power_w + (1.0 - p.compute_duty) * p.low_power_w

    def mean_power_w(self) -> float:
        """Mean power over a whole hyperperiod while the job runs [W]."""
        return self._hyper_j / self._hyper_s


def training_power_w(t_s, params: TrainingPowerParams):
    """Job power at ``t_s`` [W]; see :meth:`TrainingPowerTrace.power_w`."""
    return TrainingPowerTrace(params).power_w(t_s)


def training_energy_j(t0_s, t1_s, params: TrainingPowerParams):
    """Exact job energy over ``[t0_s, t1_s]`` [J]; see :meth:`TrainingPowerTrace.energy_j`."""
    return TrainingPowerTrace(params).energy_j(t0_s, t1_s)


def training_edges_s(t0_s: float, t1_s: float, params: TrainingPowerParams):
    """Edge start times in ``[t0_s, t1_s)`` [s]; see :meth:`TrainingPowerTrace.edges_s`."""
    return TrainingPowerTrace(params).edges_s(t0_s, t1_s)
