"""GPU fleet and hosts as numpy arrays over cohorts, integrated in closed form.

A cohort is a set of GPUs (and the hosts carrying them) that share host, job and
setpoint. The engine uses one cohort per node for now; the arrays carry
``gpu_count`` and ``host_count`` per cohort so that coarser cohorts (a GW site) need
no new code.

State changes only at events (a job starts or ends, a cap is written). Between
events each cohort's board power follows a first-order lag toward
``min(demand, cap)``, integrated exactly (:func:`twin.physics.gpu.lag_step`), so the
energy counters are exact whatever the tick. Host (non-GPU) power is piecewise
constant.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from twin.control.plant import check_caps_in_range
from twin.physics.gpu import GpuProfile, capped_power_w, demand_power_w, lag_step


class GpuFleet:
    """GPUs and hosts of a facility, advanced lazily to the time asked.

    Parameters
    ----------
    profile : GpuProfile
        GPU model (limits, idle power, lag time constant).
    gpu_count, host_count : array of int
        GPUs and hosts per cohort.
    cap_w : float
        Initial power cap of every GPU [W].
    host_idle_w, host_busy_w : float
        Non-GPU power of one host when idle and when fully busy [W].
    t0_s : float
        Time of the initial state [s]; all GPUs start idle at ``idle_w``.
    """

    def __init__(self, profile: GpuProfile, gpu_count, host_count, cap_w: float,
                 host_idle_w: float, host_busy_w: float, t0_s: float = 0.0):
        self.profile = profile
        self.gpu_count = np.asarray(gpu_count, dtype=float)
        self.host_count = np.asarray(host_count, dtype=float)
        n = self.gpu_count.size
        if self.host_count.shape != (n,):
            raise ValueError(f"host_count has shape {self.host_count.shape}, expected ({n},) like gpu_count")
        self.min_limit_w = np.full(n, profile.min_limit_w)
        self.max_limit_w = np.full(n, profile.max_limit_w)
        check_caps_in_range(np.arange(n), np.full(n, cap_w), self.min_limit_w, self.max_limit_w)
        self.cap_w = np.full(n, float(cap_w))
        self.gpu_util = np.zeros(n)
        self.host_util = np.zeros(n)
        self.host_idle_w = float(host_idle_w)
        self.host_busy_w = float(host_busy_w)
        self.power_w = np.full(n, profile.idle_w)  # per GPU, now
        self.gpu_energy_j = np.zeros(n)  # cumulative per cohort (all its GPUs)
        self.host_energy_j = np.zeros(n)  # cumulative per cohort (all its hosts)
        self.gpu_energy_total_j = 0.0
        self.host_energy_total_j = 0.0
        self.t_s = float(t0_s)
        self._refresh_targets()

    @property
    def n_cohorts(self) -> int:
        return self.gpu_count.size

    def _refresh_targets(self) -> None:
        demand = demand_power_w(self.gpu_util, self.profile.idle_w, self.profile.max_limit_w)
        self.target_w = capped_power_w(demand, self.cap_w)
        self.host_power_w = self.host_count * (self.host_idle_w + self.host_util * (self.host_busy_w - self.host_idle_w))
        self.host_power_total_w = float(self.host_power_w.sum())

    def advance_to(self, t_s: float) -> None:
        """Integrate the fleet from its current time to ``t_s`` (targets held constant)."""
        if not math.isfinite(t_s):
            raise ValueError(f"cannot advance the fleet to a non-finite time t={t_s} s")
        dt = t_s - self.t_s
        if dt <= 0.0:
            if dt < 0.0:
                raise ValueError(f"cannot advance the fleet backwards: from t={self.t_s} s to t={t_s} s")
            return
        self.power_w, e_gpu = lag_step(self.power_w, self.target_w, dt, self.profile.power_time_constant_s)
        e_gpu = e_gpu * self.gpu_count
        self.gpu_energy_j += e_gpu
        self.gpu_energy_total_j += float(e_gpu.sum())
        self.host_energy_j += self.host_power_w * dt
        self.host_energy_total_j += self.host_power_total_w * dt
        self.t_s = t_s

    def set_load(self, t_s: float, cohorts, gpu_util, host_util) -> None:
        """From ``t_s`` on, ``cohorts`` run at ``gpu_util`` / ``host_util`` (0 = idle) [-]."""
        self.advance_to(t_s)
        self.gpu_util[cohorts] = gpu_util
        self.host_util[cohorts] = host_util
        self._refresh_targets()

    def set_cap(self, t_s: float, cohorts, cap_w) -> None:
        """From ``t_s`` on, ``cohorts`` are capped at ``cap_w`` [W per GPU] (range-checked)."""
        cohorts = np.asarray(cohorts)
        check_caps_in_range(cohorts, cap_w, self.min_limit_w, self.max_limit_w)
        self.advance_to(t_s)
        self.cap_w[cohorts] = cap_w
        self._refresh_targets()

    def it_power_now_w(self) -> float:
        """Instantaneous IT power (GPUs + hosts) at the fleet's current time [W]."""
        return float(self.power_w @ self.gpu_count) + self.host_power_total_w


class TwinGpuPlant:
    """The fleet seen through the :class:`twin.control.plant.GpuPlant` protocol.

    ``clock`` returns the current simulation time [s] (``lambda: env.now``); every
    read or write first advances the fleet to it.
    """

    def __init__(self, fleet: GpuFleet, clock: Callable[[], float]):
        self._fleet = fleet
        self._clock = clock

    @property
    def n_cohorts(self) -> int:
        return self._fleet.n_cohorts

    def power_limits_w(self) -> tuple[np.ndarray, np.ndarray]:
        return self._fleet.min_limit_w.copy(), self._fleet.max_limit_w.copy()

    def read_power_w(self) -> np.ndarray:
        self._fleet.advance_to(self._clock())
        return self._fleet.power_w.copy()

    def read_power_cap_w(self) -> np.ndarray:
        return self._fleet.cap_w.copy()

    def set_power_cap_w(self, cohorts, cap_w) -> None:
        self._fleet.set_cap(self._clock(), cohorts, cap_w)
