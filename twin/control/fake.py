"""First-class fakes of the control protocols: a deterministic GPU plant that records every call.

:class:`FakeGpuPlant` satisfies :class:`twin.control.plant.GpuPlant` with the twin's own
cohort dynamics (board power follows ``min(demand, cap)`` through the fitted asymmetric
lags of :func:`twin.physics.gpu.board_power_step`), a clock the caller injects (``lambda:
env.now``; never the wall clock) and a record of every call: method, time, arguments and
result. Tests of controllers assert on that record (cadence, writes, sleeps) instead of
patching anything; ``tests/test_fake_plant.py`` runs one contract suite against this fake
and the twin's :class:`~twin.facility.gpu_fleet.TwinGpuPlant`.

:class:`SampleHoldPlant` wraps any plant and models NVML's power refresh: V100 board
power is refreshed about every 20 ms (median 20.3 ms in the E2 telemetry, docs/models.md
§2) and a faster poller sees the same value repeated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.control.plant import GpuPlant, check_caps_in_range
from twin.physics.gpu import GPU_PROFILES, GpuProfile, board_power_step


@dataclass(frozen=True)
class PlantCall:
    """One recorded call: ``method`` at plant time ``t_s`` [s] with ``args``; ``result``
    is a copy of what a read returned (``None`` for writes and failed calls)."""

    method: str
    t_s: float
    args: tuple[Any, ...]
    result: Any = None


def _copy(x):
    return x.copy() if isinstance(x, np.ndarray) else x


class FakeGpuPlant:
    """Deterministic first-order GPU cohorts behind the :class:`GpuPlant` protocol.

    Per cohort, board power follows ``target = min(demand_w, cap_w)`` with the profile's
    ``tau_down_s`` / ``tau_up_s`` (:func:`board_power_step`), integrated exactly from one
    call to the next. Every method call is appended to :attr:`calls` (a
    :class:`PlantCall`), in call order.

    Parameters
    ----------
    demand_w : array of float
        Uncapped board power per cohort [W per GPU]; one entry per cohort.
    clock : callable
        Returns the current time [s] (``lambda: env.now``); must not go backwards.
    profile : GpuProfile
        Power-limit range and lag time constants; default the V100-SXM2-32GB.
    cap_w : float or array, optional
        Initial cap [W]; default the maximum limit. Range-checked.
    power_w : float or array, optional
        Initial board power [W]; default settled at ``min(demand, cap)``.
    rise_delay_s : float
        Dead time of a cap *increase* [s], >= 0 (default 0). E2 shows ~110 ms between a
        step-up command and the first power response, and none on a step-down
        (docs/models.md §2): a raise takes effect ``rise_delay_s`` after it is written, a
        cut at once (and cancels raises still pending). :meth:`read_power_cap_w` reports
        the cap written, as NVML does.
    """

    def __init__(self, demand_w, clock: Callable[[], float],
                 profile: GpuProfile = GPU_PROFILES["V100-SXM2-32GB"], cap_w=None, power_w=None,
                 rise_delay_s: float = 0.0):
        demand_w = np.atleast_1d(np.asarray(demand_w, dtype=float))
        if demand_w.ndim != 1 or np.any(~(demand_w >= 0)):
            raise ValueError(f"demand_w = {demand_w!r}: expected a 1-D array of numbers >= 0 W")
        n = demand_w.size
        self._clock = clock
        self.profile = profile
        self._min_w = np.full(n, float(profile.min_limit_w))
        self._max_w = np.full(n, float(profile.max_limit_w))
        cap = np.broadcast_to(np.asarray(self._max_w if cap_w is None else cap_w, dtype=float), (n,)).copy()
        check_caps_in_range(np.arange(n), cap, self._min_w, self._max_w)
        self._demand_w = demand_w.copy()
        self._cap_w = cap
        self._power_w = (np.minimum(demand_w, cap) if power_w is None
                         else np.broadcast_to(np.asarray(power_w, dtype=float), (n,)).copy())
        self._t_s = float(clock())
        if not (rise_delay_s >= 0 and math.isfinite(rise_delay_s)):
            raise ValueError(f"rise_delay_s = {rise_delay_s!r}: expected a finite number >= 0 s")
        self.rise_delay_s = float(rise_delay_s)
        self._cap_in_force_w = cap.copy()  # what the dynamics see (lags the written cap on a raise)
        self._pending: list[tuple[float, int, float]] = []  # (time in force [s], cohort, cap [W])
        self.calls: list[PlantCall] = []

    # ------------------------------------------------------------------ internals

    def _advance(self) -> float:
        t = float(self._clock())
        if not math.isfinite(t) or t < self._t_s:
            raise ValueError(f"fake plant clock went from t={self._t_s} s to t={t} s: expected finite, non-decreasing")
        while self._pending and self._pending[0][0] <= t:
            t_on, i, cap = self._pending.pop(0)
            self._integrate(t_on)
            self._cap_in_force_w[i] = cap
        self._integrate(t)
        return t

    def _integrate(self, t: float) -> None:
        if t > self._t_s:
            target = np.minimum(self._demand_w, self._cap_in_force_w)
            self._power_w, _ = board_power_step(self._power_w, target, t - self._t_s, self.profile)
            self._t_s = t

    def _record(self, method: str, t: float, args: tuple, result=None) -> None:
        self.calls.append(PlantCall(method, t, tuple(_copy(a) for a in args), _copy(result)))

    # ------------------------------------------------------------------ GpuPlant

    @property
    def n_cohorts(self) -> int:
        return self._demand_w.size

    def power_limits_w(self) -> tuple[np.ndarray, np.ndarray]:
        out = (self._min_w.copy(), self._max_w.copy())
        self._record("power_limits_w", self._advance(), (), out)
        return out

    def read_power_w(self) -> np.ndarray:
        t = self._advance()
        out = self._power_w.copy()
        self._record("read_power_w", t, (), out)
        return out

    def read_power_cap_w(self) -> np.ndarray:
        t = self._advance()
        out = self._cap_w.copy()
        self._record("read_power_cap_w", t, (), out)
        return out

    def set_power_cap_w(self, cohorts, cap_w) -> None:
        t = self._advance()
        cohorts = np.atleast_1d(np.asarray(cohorts))
        cap = np.broadcast_to(np.asarray(cap_w, dtype=float), cohorts.shape).copy()
        self._record("set_power_cap_w", t, (cohorts, cap))
        check_caps_in_range(cohorts, cap, self._min_w, self._max_w)
        self._cap_w[cohorts] = cap
        for i, c in zip(cohorts.tolist(), cap.tolist()):
            # pending raises above the new cap are void; a raise waits, a cut acts now
            self._pending = [x for x in self._pending if x[1] != i or x[2] <= c]
            if self.rise_delay_s > 0 and c > self._cap_in_force_w[i]:
                self._pending.append((t + self.rise_delay_s, i, c))
            else:
                self._cap_in_force_w[i] = c

    # ------------------------------------------------------------------ the harness's side

    def set_demand_w(self, cohorts, demand_w) -> None:
        """From now on ``cohorts`` demand ``demand_w`` [W per GPU] (a job phase change)."""
        t = self._advance()
        cohorts = np.atleast_1d(np.asarray(cohorts))
        demand = np.broadcast_to(np.asarray(demand_w, dtype=float), cohorts.shape).copy()
        if np.any(~(demand >= 0)):
            raise ValueError(f"demand_w = {demand_w!r}: expected numbers >= 0 W")
        self._record("set_demand_w", t, (cohorts, demand))
        self._demand_w[cohorts] = demand

    def calls_of(self, method: str) -> list[PlantCall]:
        """The recorded calls of one method, in order."""
        return [c for c in self.calls if c.method == method]


class SampleHoldPlant:
    """A :class:`GpuPlant` whose power reading refreshes only every ``refresh_s``.

    The first :meth:`read_power_w` at or after each refresh instant ``phase_s + k *
    refresh_s`` takes a fresh reading from ``plant``; later reads before the next instant
    return that value again (NVML's sample-and-hold). With a poller whose period divides
    ``refresh_s`` and shares its phase (5 ms ticks, 20 ms refresh), every fresh reading is
    taken exactly at a refresh instant. Caps and limits pass straight through.

    Parameters
    ----------
    plant : GpuPlant
        The plant measured.
    clock : callable
        Current time [s], the same clock as the plant's.
    refresh_s : float
        Refresh period [s], > 0. Default 20 ms (E2: median 20.3 ms, rounded so that the
        5 ms Tier-1 tick hits every refresh instant).
    phase_s : float
        Time of one refresh instant [s].
    """

    def __init__(self, plant: GpuPlant, clock: Callable[[], float], refresh_s: float = 0.020,
                 phase_s: float = 0.0):
        if not (refresh_s > 0 and math.isfinite(refresh_s)):
            raise ValueError(f"refresh_s = {refresh_s!r}: expected a finite number > 0 s")
        self._plant = plant
        self._clock = clock
        self.refresh_s = float(refresh_s)
        self.phase_s = float(phase_s)
        self._slot = -math.inf
        self._held_w: np.ndarray | None = None

    @property
    def n_cohorts(self) -> int:
        return self._plant.n_cohorts

    def power_limits_w(self) -> tuple[np.ndarray, np.ndarray]:
        return self._plant.power_limits_w()

    def read_power_w(self) -> np.ndarray:
        # the 1e-9 guards slot boundaries against float drift of summed 5 ms timeouts
        slot = math.floor((self._clock() - self.phase_s) / self.refresh_s + 1e-9)
        if slot > self._slot or self._held_w is None:
            self._held_w = self._plant.read_power_w()
            self._slot = slot
        return self._held_w.copy()

    def read_power_cap_w(self) -> np.ndarray:
        return self._plant.read_power_cap_w()

    def set_power_cap_w(self, cohorts, cap_w) -> None:
        self._plant.set_power_cap_w(cohorts, cap_w)
