"""The GridPilot cascade on one plant: Tier 2 (1 Hz) sets the power targets Tier 1 tracks.

Seed 004 §2-§3.1: Tier 1, a PID per GPU at 200 Hz (:mod:`twin.control.tier1_pid`),
tracks per-GPU power targets by moving the NVML caps; Tier 2, at 1 Hz, predicts each
GPU cohort's next-second power with an AR(4) fitted by RLS and splits the host's power
envelope over its GPUs in proportion to the predictions
(:func:`twin.control.tier2_ar.rebalance_caps`). The split is Tier 1's setpoint (the
target board power); Tier 1 turns it into the actual cap, so the cap may sit above the
target to make up for cap tracking (eta = 0.98) or a slow rise.

A new envelope (a grid trigger, Tier 3's hourly choice) is split at once with the
latest prediction (the measured power before Tier 2 has one) and wakes Tier 1 in the
same instant; Tier 2 refines the split each second and wakes Tier 1 only when a
target moves by more than ``retarget_w``. Without a Tier 2, :meth:`Cascade.set_setpoints`
drives Tier 1 directly.

Cohorts are laid out host-major: ``hosts`` hosts with ``n_cohorts / hosts`` cohorts each
(one cohort per GPU is the paper's case). Time is ``env.now`` only: the same object runs
under ``simpy.Environment`` and ``simpy.rt.RealtimeEnvironment``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np
import simpy

from twin.control.plant import GpuPlant
from twin.control.tier1_pid import PidParams, Tier1Controller
from twin.control.tier2_ar import rebalance_caps


class Predictor(Protocol):
    """What the cascade needs of Tier 2 (:class:`twin.control.tier2_ar.RlsAr`)."""

    def update(self, y: np.ndarray) -> None: ...

    def predict(self) -> np.ndarray: ...


class Cascade:
    """Tier 2 over Tier 1 on one :class:`GpuPlant`.

    Parameters
    ----------
    env : simpy.Environment
    plant : GpuPlant
    params : PidParams, optional
        Tier-1 constants (default ``PidParams()``).
    tier2 : Predictor, optional
        One series per cohort (``RlsAr(plant.n_cohorts)``); None: Tier 1 alone.
    hosts : int
        Number of hosts; ``n_cohorts`` must be a multiple.
    period_s : float
        Tier-2 period [s] (paper: 1 s).
    retarget_w : float
        Tier 2 wakes Tier 1 only if a target moves more than this [W], >= 0.
    rebalance : callable
        ``(envelope_w (H,), predicted_w (H, G), min_w, max_w) -> targets_w (H, G)``.

    Attributes
    ----------
    tier1 : Tier1Controller
    tier2_ticks, retargets : int
        Tier-2 ticks run, and Tier-1 wakes they caused.
    """

    def __init__(self, env: simpy.Environment, plant: GpuPlant, params: PidParams | None = None,
                 tier2: Predictor | None = None, *, hosts: int = 1, period_s: float = 1.0,
                 retarget_w: float = 2.0, rebalance: Callable = rebalance_caps):
        n = plant.n_cohorts
        if not (isinstance(hosts, int) and hosts >= 1 and n % hosts == 0):
            raise ValueError(f"hosts = {hosts!r}: expected a positive integer dividing n_cohorts = {n}")
        if not (period_s > 0 and math.isfinite(period_s)):
            raise ValueError(f"period_s = {period_s!r}: expected a finite number > 0 s")
        if not retarget_w >= 0:
            raise ValueError(f"retarget_w = {retarget_w!r}: expected >= 0 W")
        self.env, self.plant, self.tier2 = env, plant, tier2
        self.shape = (hosts, n // hosts)
        self.period_s, self.retarget_w, self.rebalance = float(period_s), float(retarget_w), rebalance
        self.tier1 = Tier1Controller(env, plant, params)
        self.envelope_w: np.ndarray | None = None
        self.predicted_w: np.ndarray | None = None
        self.tier2_ticks = self.retargets = 0
        if tier2 is not None:
            self.process = env.process(self._run_tier2())

    def set_setpoints(self, setpoint_w) -> None:
        """Tier 1 alone: per-cohort power targets [W] (NaN: not controlled), now."""
        if self.tier2 is not None:
            raise ValueError("this cascade has a Tier 2: give it an envelope (set_envelope), not setpoints")
        self.tier1.wake(setpoint_w)

    def set_envelope(self, envelope_w) -> None:
        """Power envelope per host for its GPUs [W] (scalar or (hosts,)); split and applied now."""
        if self.tier2 is None:
            raise ValueError("this cascade has no Tier 2 to split an envelope: use set_setpoints")
        self.envelope_w = np.broadcast_to(np.asarray(envelope_w, dtype=float), self.shape[:1]).copy()
        weights = self.predicted_w
        if weights is None:
            weights = np.asarray(self.plant.read_power_w(), dtype=float)
        self.tier1.wake(self._split(weights))

    def _split(self, predicted_w: np.ndarray) -> np.ndarray:
        lo, hi = self.tier1.min_w.reshape(self.shape), self.tier1.max_w.reshape(self.shape)
        return np.asarray(self.rebalance(self.envelope_w, predicted_w.reshape(self.shape), lo, hi),
                          dtype=float).reshape(-1)

    def _run_tier2(self):
        while True:
            yield self.env.timeout(self.period_s)
            self.tier2_ticks += 1
            y = np.asarray(self.plant.read_power_w(), dtype=float)
            self.tier2.update(y)
            pred = np.asarray(self.tier2.predict(), dtype=float)
            self.predicted_w = np.where(np.isfinite(pred), pred, y)
            if self.envelope_w is None:
                continue
            target = self._split(self.predicted_w)
            current = self.tier1.setpoint_w
            if np.any(np.isnan(current)) or np.any(np.abs(target - current) > self.retarget_w):
                self.retargets += 1
                self.tier1.wake(target)
