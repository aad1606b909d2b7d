"""GPU fleet and hosts as numpy arrays over cohorts, integrated in closed form.

A cohort is a set of GPUs (and the hosts carrying them) that share host, job and
setpoint. The engine uses one cohort per node for now; the arrays carry
``gpu_count`` and ``host_count`` per cohort so that coarser cohorts (a GW site) need
no new code.

State changes only at events (a job starts or ends, a cap is written). A cohort
running a workload class (compute_bound / memory_bound / bursty) demands
``idle + util * (P_class(cap, clock) - idle)`` per GPU, with ``P_class`` the calibrated
mean board power (:func:`twin.physics.gpu.mean_board_power_w`; ``util`` is the share
of time the GPUs run the class's kernels); a cohort with no class uses the generic
``idle + util * (max_limit - idle)`` clipped at the cap. Between events board power
follows the asymmetric cap-step lags fitted on E2
(:func:`twin.physics.gpu.board_power_step`), integrated exactly, so the energy
counters are exact whatever the tick; the junction temperature follows the fitted
RC model at each advance's mean power. Host (non-GPU) power is piecewise constant.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Callable

import numpy as np

from twin.control.plant import check_caps_in_range
from twin.physics.gpu import (WORKLOADS, GpuProfile, board_power_step, capped_power_w, demand_power_w,
                              junction_temp_step, load_gpu_fit, mean_board_power_w, throughput_iter_per_s)

GENERIC = -1  # workload index of the uncalibrated generic model (and of idle cohorts)


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
    sm_clock_mhz : float, optional
        SM clock the calibrated model assumes [MHz]; default the profile's maximum boost.
    """

    def __init__(self, profile: GpuProfile, gpu_count, host_count, cap_w: float,
                 host_idle_w: float, host_busy_w: float, t0_s: float = 0.0, sm_clock_mhz: float | None = None):
        self.profile = profile
        self.fit = load_gpu_fit(profile.power_fit)
        self.sm_clock_mhz = float(profile.max_sm_clock_mhz if sm_clock_mhz is None else sm_clock_mhz)
        if not self.sm_clock_mhz > 0:
            raise ValueError(f"sm_clock_mhz = {sm_clock_mhz!r}: expected > 0 MHz")
        self.gpu_count = np.asarray(gpu_count, dtype=float)
        self.host_count = np.asarray(host_count, dtype=float)
        n = self.gpu_count.size
        if self.host_count.shape != (n,):
            raise ValueError(f"host_count has shape {self.host_count.shape}, expected ({n},) like gpu_count")
        self.min_limit_w = np.full(n, profile.min_limit_w)
        self.max_limit_w = np.full(n, profile.max_limit_w)
        check_caps_in_range(np.arange(n), np.full(n, cap_w), self.min_limit_w, self.max_limit_w)
        self.cap_w = np.full(n, float(cap_w))
        self.base_cap_w = self.cap_w.copy()  # the cap job run times refer to
        self._class_cache: dict[tuple, tuple[float, float]] = {}
        self._base_throughput: dict[tuple, float] = {}  # X(base cap) per (class, base cap)
        self.gpu_util = np.zeros(n)
        self.workload = np.full(n, GENERIC, dtype=np.int64)
        # trace replay: cohorts whose power comes from a measured series (PM100), not a model
        self.is_trace = np.zeros(n, dtype=bool)
        self.trace_gpu_w = np.zeros(n)  # per GPU
        self.trace_host_w = np.zeros(n)  # per host
        self.class_power_w = np.full(n, profile.idle_w)  # P_class(cap, clock) per cohort (idle for generic)
        # job progress: full-speed seconds of work done per second (1 uncapped; < 1 where the
        # cap slows the class's kernels) and its integral, exact between events
        self.speed = np.ones(n)
        self.has_job = np.zeros(n, dtype=bool)
        self.work_node_s = 0.0  # job work done [node-seconds at the configured cap's speed]
        self.host_util = np.zeros(n)
        self.ambient_c = self.fit.ambient_c  # fitted junction "ambient" of the V100 testbed
        self.temp_c = np.full(n, self.ambient_c + profile.r_th_k_per_w * profile.idle_w)
        # rises wait out the profile's rise delay (E2: ~110 ms before power follows a raised
        # target), then follow tau_up_after_delay; falls start at once with tau_down
        self.rise_delay_s = float(profile.rise_delay_s)
        tau_up = profile.tau_up_after_delay_s if self.rise_delay_s > 0 else profile.tau_up_s
        self._dyn = SimpleNamespace(tau_down_s=profile.tau_down_s, tau_up_s=tau_up)
        board_power_step(profile.idle_w, profile.idle_w, 1.0, self._dyn)  # checks the time constants
        junction_temp_step(self.temp_c[:1], profile.idle_w, self.ambient_c, 1.0, profile.r_th_k_per_w,
                           profile.tau_th_s)  # checks tau_th_s
        self._pending_w = np.full(n, np.nan)
        self._pending_at_s = np.full(n, np.inf)
        self._next_due_s = math.inf  # min(_pending_at_s), kept up to date
        self.host_idle_w = float(host_idle_w)
        self.host_busy_w = float(host_busy_w)
        self.power_w = np.full(n, profile.idle_w)  # per GPU, now
        self.target_w = self.power_w.copy()
        # Lazy accounting (docs/performance.md): while every cohort sits on its target
        # (_settled) power is constant, so an advance only adds to the scalar totals and
        # notes its interval; the per-cohort energies and job progress are brought up to
        # date (_flush) when read or before a rate changes. Only the cohorts still moving
        # toward their targets (_moving) go through the lag model.
        self._gpu_e_j = np.zeros(n)  # cumulative per cohort (all its GPUs), up to _lazy_dts
        self._host_e_j = np.zeros(n)  # cumulative per cohort (all its hosts), up to _lazy_dts
        self._progress_s = np.zeros(n)
        self._lazy_dts: list[float] = []  # settled intervals not yet applied per cohort
        self._settled = False
        self._settled_cohort_w = self.power_w * self.gpu_count  # 0 for moving cohorts
        self._settled_total_w = float(self._settled_cohort_w.sum())
        self._moving = np.empty(0, dtype=np.int64)  # indices of the cohorts off their targets
        self._is_moving = np.zeros(n, dtype=bool)
        self._temp_t_s = np.full(n, float(t0_s))  # temp_c holds at these times (power_w constant since)
        self.gpu_energy_total_j = 0.0
        self.host_energy_total_j = 0.0
        self.t_s = float(t0_s)
        self.host_power_w = np.zeros(n)
        self._refresh_targets(np.arange(n), initial=True)

    @property
    def n_cohorts(self) -> int:
        return self.gpu_count.size

    # energy and progress per cohort: the lazy stretch applied first
    @property
    def gpu_energy_j(self) -> np.ndarray:
        """Cumulative GPU energy per cohort (all its GPUs) [J]."""
        self._flush()
        return self._gpu_e_j

    @property
    def host_energy_j(self) -> np.ndarray:
        """Cumulative host (non-GPU) energy per cohort (all its hosts) [J]."""
        self._flush()
        return self._host_e_j

    @property
    def progress_s(self) -> np.ndarray:
        """Full-speed seconds of job work done per cohort since the start [s]."""
        self._flush()
        return self._progress_s

    def progress_of(self, cohort: int) -> float:
        """``progress_s[cohort]`` without flushing the whole fleet (the same arithmetic)."""
        x, v = float(self._progress_s[cohort]), float(self.speed[cohort])
        for d in self._lazy_dts:
            x += v * d
        return x

    def _flush(self) -> None:
        """Apply the settled stretches since the last flush, one interval at a time (the same
        additions, in the same order, as stepping every array at every advance)."""
        dts = self._lazy_dts
        if dts:
            w, h, v = self._settled_cohort_w, self.host_power_w, self.speed
            for d in dts:
                self._gpu_e_j += w * d
                self._host_e_j += h * d
                self._progress_s += v * d
            dts.clear()

    def _refresh_class_power(self, cohorts) -> None:
        """Recompute P_class(cap, clock) for ``cohorts`` (called when class or cap changes)."""
        idx = np.atleast_1d(np.asarray(cohorts))
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        w = self.workload[idx]
        has = w != GENERIC
        self.speed[idx] = 1.0
        if has.any():
            sel = idx[has]
            # (P_class, rho) per distinct (class, cap, base cap): a handful of values in a run,
            # while the calibrated model costs ~0.1 ms a call
            keys = list(zip(w[has].tolist(), self.cap_w[sel].tolist(), self.base_cap_w[sel].tolist()))
            cache = self._class_cache
            missing = [k for k in dict.fromkeys(keys) if k not in cache]
            if missing:
                wk, cap, base = (np.array(x) for x in zip(*missing))
                names = np.asarray(WORKLOADS)[wk]
                p_class = np.maximum(mean_board_power_w(cap, self.sm_clock_mhz, names, self.fit, self.profile),
                                     self.profile.idle_w)
                # job run times are given at the facility's configured cap (base_cap_w): kernels
                # run at X(cap)/X(base cap) of that speed for the share util of the time. X(base
                # cap) is kept per (class, base cap), a few values in a run (the model is
                # elementwise: a value does not depend on the batch it is computed in)
                x_base = self._base_throughput
                base_keys = list(zip(wk.tolist(), base.tolist()))
                new_base = [k for k in dict.fromkeys(base_keys) if k not in x_base]
                if new_base:
                    bw, bc = (np.array(x) for x in zip(*new_base))
                    x_new = throughput_iter_per_s(bc, self.sm_clock_mhz, np.asarray(WORKLOADS)[bw], self.fit,
                                                  self.profile)
                    x_base.update(zip(new_base, x_new.tolist()))
                rho = (throughput_iter_per_s(cap, self.sm_clock_mhz, names, self.fit, self.profile)
                       / np.array([x_base[k] for k in base_keys]))
                cache.update(zip(missing, zip(p_class.tolist(), np.maximum(rho, 1e-9).tolist())))
            vals = np.array([cache[k] for k in keys])
            self.class_power_w[sel] = vals[:, 0]
            # the rest of the time (e.g. I/O) is unaffected: speed = 1 / ((1 - util) + util / rho)
            util = self.gpu_util[sel]
            self.speed[sel] = 1.0 / ((1.0 - util) + util / vals[:, 1])

    def _refresh_targets(self, idx: np.ndarray, initial: bool = False) -> None:
        """Targets, pending rises and host power of cohorts ``idx`` (int indices) after their
        load, cap or trace changed; every other cohort's inputs are unchanged, so its target
        is what a whole-fleet refresh would give it. Call after :meth:`_flush`."""
        p = self.profile
        util, cap = self.gpu_util[idx], self.cap_w[idx]
        generic = capped_power_w(demand_power_w(util, p.idle_w, p.max_limit_w), cap)
        classed = demand_power_w(util, p.idle_w, self.class_power_w[idx])
        modelled = np.where(self.workload[idx] == GENERIC, generic, classed)
        is_trace = self.is_trace[idx]
        new_w = np.minimum(np.where(is_trace, self.trace_gpu_w[idx], modelled), cap)
        if initial or self.rise_delay_s <= 0.0:
            self.target_w[idx] = new_w
        else:
            old_w = self.target_w[idx]
            rising = new_w > old_w
            # a rise becomes the target after the delay (a rise already pending keeps its time)
            at = self._pending_at_s[idx]
            at = np.where(rising, np.where(np.isfinite(at), at, self.t_s + self.rise_delay_s), np.inf)
            self._pending_at_s[idx] = at
            self._pending_w[idx] = np.where(rising, new_w, np.nan)
            self.target_w[idx] = np.where(rising, old_w, new_w)
            self._next_due_s = float(self._pending_at_s.min())
        self._update_moving(idx)
        self._settled = False
        modelled_host_w = self.host_idle_w + self.host_util[idx] * (self.host_busy_w - self.host_idle_w)
        self.host_power_w[idx] = self.host_count[idx] * np.where(is_trace, self.trace_host_w[idx], modelled_host_w)
        self.host_power_total_w = float(self.host_power_w.sum())
        self._work_rate = float((self.speed * self.has_job) @ self.host_count)

    def _update_moving(self, idx: np.ndarray) -> None:
        """Cohorts ``idx`` whose target may have changed: those off their target move (their
        junction temperature is brought up to now first); the rest are settled."""
        moving = self.power_w[idx] != self.target_w[idx]
        settled = idx[~moving]
        self._settled_cohort_w[settled] = self.target_w[settled] * self.gpu_count[settled]
        self._is_moving[settled] = False
        go = idx[moving]
        if go.size:
            self._sync_temp(go)
            self._settled_cohort_w[go] = 0.0
            self._is_moving[go] = True
        self._moving = np.flatnonzero(self._is_moving)

    def _sync_temp(self, idx: np.ndarray) -> None:
        """Bring the junction temperature of cohorts ``idx`` to the fleet's time (their power
        has been constant since ``_temp_t_s``)."""
        dt = self.t_s - self._temp_t_s[idx]
        late = dt > 0.0
        if late.any():
            i = idx[late]
            p = self.profile
            self.temp_c[i] = junction_temp_step(self.temp_c[i], self.power_w[i], self.ambient_c, dt[late],
                                                p.r_th_k_per_w, p.tau_th_s)
        self._temp_t_s[idx] = self.t_s

    def advance_to(self, t_s: float) -> None:
        """Integrate the fleet from its current time to ``t_s``; targets change only where
        a delayed rise falls due (the interval is split there, so energy stays exact)."""
        if not math.isfinite(t_s):
            raise ValueError(f"cannot advance the fleet to a non-finite time t={t_s} s")
        while self._next_due_s <= t_s:
            due_s = self._next_due_s
            self._advance(due_s)
            self._flush()
            hit = np.flatnonzero(self._pending_at_s <= due_s)
            self.target_w[hit] = self._pending_w[hit]
            self._pending_at_s[hit] = np.inf
            self._next_due_s = float(self._pending_at_s.min())
            self._update_moving(hit)
            self._settled = False
        self._advance(t_s)

    def _advance(self, t_s: float) -> None:
        """Integrate to ``t_s`` with the targets held constant."""
        dt = t_s - self.t_s
        if dt <= 0.0:
            if dt < 0.0:
                raise ValueError(f"cannot advance the fleet backwards: from t={self.t_s} s to t={t_s} s")
            return
        if self._settled:
            # every cohort sits exactly on its target: power is constant, so the per-cohort
            # energy and progress are rate x dt, applied when next read (_flush); totals now
            self._lazy_dts.append(dt)
            self.gpu_energy_total_j += self._settled_total_w * dt
        else:
            # only the moving cohorts are stepped; a settled one's energy is target x dt, what
            # the closed form gives for a zero gap
            self._flush()
            e_gpu = self.target_w * dt
            idx = self._moving
            if idx.size:
                p = self.profile
                target = self.target_w[idx]
                # board_power_step and junction_temp_step (twin.physics.gpu), the same operations
                # without their argument checks (dt > 0 here; the time constants were checked once)
                gap_w = self.power_w[idx] - target
                tau_s = np.where(gap_w > 0.0, self._dyn.tau_down_s, self._dyn.tau_up_s)
                x = dt / tau_s
                power = target + gap_w * np.exp(-x)
                e_mov = target * dt + gap_w * tau_s * -np.expm1(-x)
                self.power_w[idx] = power
                e_gpu[idx] = e_mov
                temp_ss_c = self.ambient_c + p.r_th_k_per_w * (e_mov / dt)
                temp = self.temp_c[idx]
                self.temp_c[idx] = temp_ss_c + (temp - temp_ss_c) * np.exp(-dt / p.tau_th_s)
                self._temp_t_s[idx] = t_s
                done = power == target
                if done.any():
                    fin = idx[done]
                    self._settled_cohort_w[fin] = target[done] * self.gpu_count[fin]
                    self._is_moving[fin] = False
                    self._moving = idx[~done]
            e_gpu *= self.gpu_count
            self._gpu_e_j += e_gpu
            self.gpu_energy_total_j += float(e_gpu.sum())
            self._host_e_j += self.host_power_w * dt
            self._progress_s += self.speed * dt
            if not self._moving.size:
                self._settled = True
                self._settled_total_w = float(self._settled_cohort_w.sum())
        self.host_energy_total_j += self.host_power_total_w * dt
        self.work_node_s += self._work_rate * dt
        self.t_s = t_s

    def _update_temp(self) -> None:
        """Apply the deferred junction-temperature update of the settled cohorts."""
        self._sync_temp(np.arange(self.n_cohorts))

    def junction_temp_c(self) -> np.ndarray:
        """Junction temperature per cohort at the fleet's current time [°C]."""
        self._update_temp()
        return self.temp_c.copy()

    def set_load(self, t_s: float, cohorts, gpu_util, host_util, workload: int = GENERIC) -> None:
        """From ``t_s`` on, ``cohorts`` run at ``gpu_util`` / ``host_util`` (0 = idle) [-].

        ``workload`` is an index into :data:`twin.physics.gpu.WORKLOADS` (calibrated class
        model) or ``GENERIC``.
        """
        if not GENERIC <= workload < len(WORKLOADS):
            raise ValueError(f"workload = {workload!r}: expected -1 (generic) or an index into {WORKLOADS}")
        self.advance_to(t_s)
        self._flush()
        self.gpu_util[cohorts] = gpu_util
        self.host_util[cohorts] = host_util
        self.workload[cohorts] = workload
        self.has_job[cohorts] = (np.asarray(gpu_util) > 0) | (np.asarray(host_util) > 0)
        self.is_trace[cohorts] = False
        self._refresh_class_power(cohorts)  # also the cohorts' speed
        self._refresh_targets(self._index(cohorts))

    def set_trace_power(self, t_s: float, cohorts, gpu_w, host_w) -> None:
        """From ``t_s`` on, ``cohorts`` draw measured power: ``gpu_w`` per GPU (still limited
        by its cap) and ``host_w`` per host [W], until the next :meth:`set_load`."""
        if not (np.all(np.asarray(gpu_w) >= 0) and np.all(np.asarray(host_w) >= 0)):
            raise ValueError(f"trace power must be >= 0 W (gpu_w = {gpu_w!r}, host_w = {host_w!r})")
        self.advance_to(t_s)
        self._flush()
        self.speed[cohorts] = 1.0  # measured power: its job's progress is the trace's own
        self.has_job[cohorts] = True
        self.is_trace[cohorts] = True
        self.trace_gpu_w[cohorts] = gpu_w
        self.trace_host_w[cohorts] = host_w
        self._refresh_targets(self._index(cohorts))

    def set_cap(self, t_s: float, cohorts, cap_w) -> None:
        """From ``t_s`` on, ``cohorts`` are capped at ``cap_w`` [W per GPU] (range-checked)."""
        cohorts = np.asarray(cohorts)
        check_caps_in_range(cohorts, cap_w, self.min_limit_w, self.max_limit_w)
        self.advance_to(t_s)
        self._flush()
        self.cap_w[cohorts] = cap_w
        self._refresh_class_power(cohorts)
        self._refresh_targets(self._index(cohorts))

    def _index(self, cohorts) -> np.ndarray:
        """``cohorts`` (index, indices, slice or boolean mask) as an int index array."""
        return np.arange(self.n_cohorts)[cohorts].reshape(-1)

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
