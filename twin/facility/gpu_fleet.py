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

import functools
import math
import sys
from types import SimpleNamespace
from typing import Callable

import numpy as np

from twin.control.plant import check_caps_in_range
from twin.physics._scalar import fmin
from twin.physics.gpu import (WORKLOADS, GpuProfile, board_power_step, capped_power_w, class_model,
                              class_power_throughput, demand_power_w, junction_temp_step, load_gpu_fit)

GENERIC = -1  # workload index of the uncalibrated generic model (and of idle cohorts)


class GpuFleet:
    """GPUs and hosts of a facility, advanced lazily to the time asked.

    Events and lag steps touching at most ``loop_max`` cohorts run as Python loops over
    floats, larger ones on numpy arrays: the same IEEE operations in the same order, so
    the same numbers (``tests/test_gpu_fleet_fastpath.py``); numpy's ``exp``/``expm1``
    are used in both. When numba is already loaded in the process (Tier 2 loads it), an
    advance while cohorts move is one compiled call (``_advance_soa``, the numpy path's
    operations in order, numpy's pairwise sum reproduced); otherwise the numpy path runs,
    since importing numba for the fleet alone would cost more than it saves.

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

    loop_max = 16  # most cohorts an event or lag step handles in a Python loop
    # the non-settled advance runs as one compiled kernel (_advance_soa) once numba is loaded
    # (by Tier 2; the fleet does not import it: its first use costs ~0.3 s); False: numpy only
    _adv_numba = True
    _adv_compiled = None  # (kernel, pairwise sum, scratch [J], _lag_cache) once found (_compiled_advance)
    _flush_kernel = None  # the compiled _flush_soa once found (_compiled_flush)
    #: Flushes of more lazy intervals than this take the compiled kernel (fewer: numpy's loop)
    flush_loop_max = 8
    _lag_cache = None  # {dt: _lag_constants(dt)} of recent steps (dts recur: ticks, the rise delay)
    _lag_cache_max = 64

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
        # the calibrated model's per-class constants at this clock (checked once); the caps
        # it is evaluated at are range-checked by set_cap, so calls skip the checks
        self._model = class_model(self.sm_clock_mhz, self.fit, profile)
        self._class_cache: dict[tuple, tuple[float, float]] = {}
        self._base_throughput: dict[tuple, float] = {}  # X(base cap) per (class, base cap)
        self.gpu_util = np.zeros(n)
        self.workload = np.full(n, GENERIC, dtype=np.int64)
        # trace replay: cohorts whose power comes from a measured series (PM100), not a model
        self.is_trace = np.zeros(n, dtype=bool)
        self.trace_gpu_w = np.zeros(n)  # per GPU
        self.trace_host_w = np.zeros(n)  # per host
        self.class_power_w = np.full(n, profile.idle_w)  # P_class(cap, clock) per cohort (idle for generic)
        # rates of the lazily accumulated per-cohort quantities, one (3, n) array so that a
        # flush is one multiply-add per interval: GPU power of the settled cohorts [W] (0
        # for moving ones), host power [W], job speed [-]
        self._rates = np.zeros((3, n))
        # job progress: full-speed seconds of work done per second (1 uncapped; < 1 where the
        # cap slows the class's kernels) and its integral, exact between events
        self.speed = self._rates[2]
        self.speed[:] = 1.0
        self.has_job = np.zeros(n, dtype=bool)
        self._job_speed = np.zeros(n)  # speed * has_job, kept up to date per cohort
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
        self._acc = np.zeros((3, n))  # rows: the three below (rates: _rates)
        self._gpu_e_j = self._acc[0]  # cumulative per cohort (all its GPUs), up to _lazy_dts
        self._host_e_j = self._acc[1]  # cumulative per cohort (all its hosts), up to _lazy_dts
        self._progress_s = self._acc[2]
        self._acc_hp, self._rates_hp = self._acc[1:], self._rates[1:]  # host energy and progress
        self._lazy_dts: list[float] = []  # settled intervals not yet applied per cohort
        self._settled = False
        self._settled_cohort_w = self._rates[0]  # 0 for moving cohorts
        np.multiply(self.power_w, self.gpu_count, out=self._settled_cohort_w)
        self._settled_total_w = float(self._settled_cohort_w.sum())
        self._moving = np.empty(0, dtype=np.int64)  # indices of the cohorts off their targets
        self._is_moving = np.zeros(n, dtype=bool)
        self._temp_t_s = np.full(n, float(t0_s))  # temp_c holds at these times (power_w constant since)
        self.gpu_energy_total_j = 0.0
        self.host_energy_total_j = 0.0
        self.t_s = float(t0_s)
        self.host_power_w = self._rates[1]
        self._th_decay = (math.nan, 1.0)  # (dt, exp(-dt / tau_th)) of the last moving step
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
        additions, in the same order, as stepping every array at every advance). Many
        intervals (after a block) go through one compiled call (:func:`_flush_soa`, the
        same operations) where one is at hand (:meth:`_compiled_flush`)."""
        dts = self._lazy_dts
        if dts:
            acc, rates = self._acc, self._rates
            kern = (self._flush_kernel or self._compiled_flush()) if len(dts) > self.flush_loop_max else None
            if kern is not None:
                kern(acc, rates, np.array(dts, dtype=float))
            else:
                for d in dts:
                    acc += rates * d  # rows: GPU energy, host energy, progress
            dts.clear()

    def _compiled_flush(self):
        """The compiled :func:`_flush_soa` (AOT build, or numba's JIT once numba is loaded) if
        the fleet's accumulators fit it, else None (the numpy loop)."""
        if not self._adv_numba:
            return None
        from twin import aot

        mod = aot.kernels()
        if mod is None and "numba" not in sys.modules:   # (nothing to look at: as _compiled_advance)
            return None
        if mod is not None and aot.args_fit("fleet_flush", (self._acc, self._rates, np.zeros(1))):
            self._flush_kernel = mod.fleet_flush
        elif "numba" in sys.modules and self._acc.flags.c_contiguous and self._rates.flags.c_contiguous:
            self._flush_kernel = _flush_kernel_jit()
        return self._flush_kernel

    def _refresh_class_power(self, idx: np.ndarray) -> None:
        """Recompute P_class(cap, clock) and the job speed of cohorts ``idx`` (int indices;
        called when class or cap changes)."""
        self.speed[idx] = 1.0
        w = self.workload[idx]
        has = w != GENERIC
        if not has.any():
            return
        sel = idx[has]
        if sel.size > self.loop_max:
            self._class_values_array(sel, w[has])
            return
        # (P_class, rho) per distinct (class, cap, base cap): a handful of values in a run
        # except for continuous (Tier-1) caps; the model is elementwise, so a cached value
        # is the one a new evaluation would give
        keys = list(zip(w[has].tolist(), self.cap_w[sel].tolist(), self.base_cap_w[sel].tolist()))
        cache = self._class_cache
        missing = [k for k in dict.fromkeys(keys) if k not in cache]
        if missing:
            self._add_class_values(missing)
        vals = [cache[k] for k in keys]
        self.class_power_w[sel] = [v[0] for v in vals]
        # the rest of the time (e.g. I/O) is unaffected: speed = 1 / ((1 - util) + util / rho)
        # (Python floats: the same IEEE operations as on arrays)
        self.speed[sel] = [1.0 / ((1.0 - u) + u / v[1]) for u, v in zip(self.gpu_util[sel].tolist(), vals)]

    def _class_values_array(self, sel: np.ndarray, wk: np.ndarray) -> None:
        """P_class and speed of many classed cohorts ``sel`` (classes ``wk``) on arrays,
        without the per-key cache (the same numbers)."""
        cap = self.cap_w[sel]
        if not (cap > 0.0).all():  # the calibrated model's own check
            raise ValueError(f"cap_w = {cap!r}: expected numbers > 0")
        power_w, x_cap = class_power_throughput(self._model, cap, wk)
        self.class_power_w[sel] = np.maximum(power_w, self.profile.idle_w)
        base = self.base_cap_w[sel]
        x_base = self._base_throughput
        b0 = float(base[0])
        if (base == b0).all():  # one base cap (the usual case): X(base) per class
            keys = [(c, b0) for c in range(len(WORKLOADS))]
            self._add_base_throughput(keys)
            x_b = np.array([x_base[k] for k in keys])[wk]
        else:
            keys = list(zip(wk.tolist(), base.tolist()))
            self._add_base_throughput(keys)
            x_b = np.array([x_base[k] for k in keys])
        util = self.gpu_util[sel]
        self.speed[sel] = 1.0 / ((1.0 - util) + util / np.maximum(x_cap / x_b, 1e-9))

    def _add_base_throughput(self, keys: list[tuple[int, float]]) -> None:
        """X(base cap) of (class, base cap) ``keys`` not yet known into the cache."""
        x_base = self._base_throughput
        new_base = [k for k in dict.fromkeys(keys) if k not in x_base]
        if new_base:
            bw, bc = (np.array(x) for x in zip(*new_base))
            if not all(k[1] > 0.0 for k in new_base):
                raise ValueError(f"cap_w = {bc!r}: expected numbers > 0")
            x_base.update(zip(new_base, class_power_throughput(self._model, bc, bw)[1].tolist()))

    def _add_class_values(self, missing: list[tuple[int, float, float]]) -> None:
        """Evaluate (P_class, rho) for new (class, cap, base cap) keys into the cache."""
        wk = np.array([k[0] for k in missing])
        cap = np.array([k[1] for k in missing])
        if not all(k[1] > 0.0 for k in missing):  # the calibrated model's own check
            raise ValueError(f"cap_w = {cap!r}: expected numbers > 0")
        power_w, x_cap = class_power_throughput(self._model, cap, wk)
        p_class = np.maximum(power_w, self.profile.idle_w)
        # job run times are given at the facility's configured cap (base_cap_w): kernels
        # run at X(cap)/X(base cap) of that speed for the share util of the time. X(base
        # cap) is kept per (class, base cap), a few values in a run (the model is
        # elementwise: a value does not depend on the batch it is computed in)
        base_keys = [(k[0], k[2]) for k in missing]
        self._add_base_throughput(base_keys)
        rho = x_cap / np.array([self._base_throughput[k] for k in base_keys])
        self._class_cache.update(zip(missing, zip(p_class.tolist(), np.maximum(rho, 1e-9).tolist())))

    def _refresh_targets(self, idx: np.ndarray, initial: bool = False, host: bool = True) -> None:
        """Targets, pending rises and host power of cohorts ``idx`` (int indices) after their
        load, cap or trace changed; every other cohort's inputs are unchanged, so its target
        is what a whole-fleet refresh would give it. ``host=False``: the cohorts' host power
        inputs did not change (a cap write), so it is not recomputed. Call after
        :meth:`_flush`."""
        if idx.size <= self.loop_max and not initial:
            self._refresh_targets_loop(idx, host)
            return
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
        if host:
            modelled_host_w = self.host_idle_w + self.host_util[idx] * (self.host_busy_w - self.host_idle_w)
            self.host_power_w[idx] = self.host_count[idx] * np.where(is_trace, self.trace_host_w[idx],
                                                                      modelled_host_w)
            self.host_power_total_w = float(self.host_power_w.sum())
        self._job_speed[idx] = self.speed[idx] * self.has_job[idx]
        self._work_rate = float(self._job_speed @ self.host_count)

    def _refresh_targets_loop(self, idx: np.ndarray, host: bool) -> None:
        """:meth:`_refresh_targets` (not initial) for a few cohorts, on Python floats."""
        p = self.profile
        # demand_power_w and capped_power_w (twin.physics.gpu) on floats, the same operations
        idle_w, span_w = p.idle_w, p.max_limit_w - p.idle_w
        new_w = []
        for u, cap, cls, w, tr, tr_w in zip(self.gpu_util[idx].tolist(), self.cap_w[idx].tolist(),
                                            self.class_power_w[idx].tolist(), self.workload[idx].tolist(),
                                            self.is_trace[idx].tolist(), self.trace_gpu_w[idx].tolist()):
            if tr:
                m = tr_w
            elif w == GENERIC:
                m = fmin(idle_w + u * span_w, cap)
            else:
                m = idle_w + u * (cls - idle_w)
            new_w.append(fmin(m, cap))
        if self.rise_delay_s <= 0.0:
            target = new_w
        else:
            due_s = self.t_s + self.rise_delay_s
            at_s, pend_w, target = [], [], []
            for new, old, at in zip(new_w, self.target_w[idx].tolist(), self._pending_at_s[idx].tolist()):
                if new > old:  # a rise becomes the target after the delay (a pending one keeps its time)
                    at_s.append(at if math.isfinite(at) else due_s)
                    pend_w.append(new)
                    target.append(old)
                else:
                    at_s.append(math.inf)
                    pend_w.append(math.nan)
                    target.append(new)
            self._pending_at_s[idx] = at_s
            self._pending_w[idx] = pend_w
            self._next_due_s = float(self._pending_at_s.min())
        self.target_w[idx] = target
        self._update_moving_loop(idx, target)
        self._settled = False
        if host:
            hu = self.host_util[idx].tolist()
            h_idle, h_span = self.host_idle_w, self.host_busy_w - self.host_idle_w
            self.host_power_w[idx] = [n * (tw if tr else h_idle + u * h_span) for n, tr, tw, u in
                                      zip(self.host_count[idx].tolist(), self.is_trace[idx].tolist(),
                                          self.trace_host_w[idx].tolist(), hu)]
            self.host_power_total_w = float(self.host_power_w.sum())
        self._job_speed[idx] = [v * j for v, j in zip(self.speed[idx].tolist(), self.has_job[idx].tolist())]
        self._work_rate = float(self._job_speed @ self.host_count)

    def _update_moving_loop(self, idx: np.ndarray, target: list[float]) -> None:
        """:meth:`_update_moving` for a few cohorts whose new targets are ``target``."""
        go, settled, settled_w = [], [], []
        for i, p0, tg, n in zip(idx.tolist(), self.power_w[idx].tolist(), target, self.gpu_count[idx].tolist()):
            if p0 != tg:
                go.append(i)
            else:
                settled.append(i)
                settled_w.append(tg * n)
        if settled:
            self._settled_cohort_w[settled] = settled_w
            self._is_moving[settled] = False
        if go:
            go = np.array(go)
            self._sync_temp(go)
            self._settled_cohort_w[go] = 0.0
            self._is_moving[go] = True
        self._moving = np.flatnonzero(self._is_moving)

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
            # junction_temp_step (twin.physics.gpu), the same operations without its checks
            # (dt > 0 here; tau_th_s was checked at construction)
            temp_ss_c = self.ambient_c + p.r_th_k_per_w * self.power_w[i]
            self.temp_c[i] = temp_ss_c + (self.temp_c[i] - temp_ss_c) * np.exp(-dt[late] / p.tau_th_s)
        self._temp_t_s[idx] = self.t_s

    def advance_to(self, t_s: float) -> None:
        """Integrate the fleet from its current time to ``t_s``; targets change only where
        a delayed rise falls due (the interval is split there, so energy stays exact)."""
        if t_s == self.t_s and t_s < self._next_due_s:
            return  # already there (a read at the same instant)
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

    def can_block_until(self) -> float:
        """The time before which :meth:`advance_block` may advance the fleet: while every
        cohort sits on its target, up to (not including) the next delayed rise [s]; -inf
        while a cohort is still moving."""
        return self._next_due_s if self._settled else -math.inf

    def advance_block(self, times_s: list[float]) -> tuple[list[float], list[float]]:
        """Advance a settled fleet through the increasing ``times_s`` (all before
        :meth:`can_block_until`) with the additions :meth:`advance_to` at each time makes
        (block stepping); the per-cohort intervals stay lazy, as there.

        Returns ``(gpu_total_j, host_total_j)``: the cumulative totals at each time (lists
        of Python floats)."""
        if not times_s[-1] < self.can_block_until():
            raise ValueError(f"advance_block to t={times_s[-1]} s: the fleet is not settled until then")
        # Python floats: the same IEEE sums as advance_to's on numpy scalars
        g, h, work, t = (float(x) for x in (self.gpu_energy_total_j, self.host_energy_total_j, self.work_node_s,
                                            self.t_s))
        w_tot, h_tot, rate = float(self._settled_total_w), float(self.host_power_total_w), float(self._work_rate)
        dts, gs, hs = self._lazy_dts, [], []
        for t1 in times_s:
            d = t1 - t
            if not d > 0.0:
                raise ValueError(f"advance_block: times must increase (t={t1} s after t={t} s)")
            dts.append(d)
            g += w_tot * d
            h += h_tot * d
            work += rate * d
            gs.append(g)
            hs.append(h)
            t = t1
        self.gpu_energy_total_j, self.host_energy_total_j, self.work_node_s, self.t_s = g, h, work, t
        return gs, hs

    def lazy_energy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[float]]:
        """The per-cohort GPU and host energy as last applied [J] (copies), their rates while
        settled [W] (read-only views) and the intervals not yet applied [s]: applying
        ``energy += rate * d`` for each interval in order gives :attr:`gpu_energy_j` and
        :attr:`host_energy_j` exactly (what a read does). For block stepping, where Tier 2
        needs the energies after each interval without the fleet materialising them."""
        gpu_w, host_w = self._rates[0].view(), self._rates[1].view()
        gpu_w.flags.writeable = host_w.flags.writeable = False
        return self._gpu_e_j.copy(), self._host_e_j.copy(), gpu_w, host_w, list(self._lazy_dts)

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
            comp = self._adv_compiled or self._compiled_advance()
            if comp is not None:
                # one compiled pass (_advance_soa: the numpy path's operations below, in order)
                # and numpy's pairwise sums of the energies and, once settled, of the rates
                kern, psum, e_gpu, lag_cache = comp
                idx = self._moving
                consts = lag_cache.get(dt) if idx.size else e_gpu  # no lag step: not read
                if consts is None:
                    consts = self._lag_constants(dt)
                left = kern(self.target_w, self.power_w, self.gpu_count, self.temp_c, self._temp_t_s, self._acc,
                            self._rates, self._is_moving, idx, e_gpu, consts, float(dt), float(t_s))
                self.gpu_energy_total_j += psum(e_gpu)
                if left < idx.size:
                    self._moving = idx[:left]  # the kernel packed the still moving ones in front
                if not left:
                    self._settled = True
                    self._settled_total_w = psum(self._settled_cohort_w)
                self.host_energy_total_j += self.host_power_total_w * dt
                self.work_node_s += self._work_rate * dt
                self.t_s = t_s
                return
            e_gpu = self.target_w * dt
            idx = self._moving
            if 0 < idx.size <= self.loop_max:
                self._step_moving_loop(idx, dt, t_s, e_gpu)
            elif idx.size:
                target = self.target_w[idx]
                # board_power_step and junction_temp_step (twin.physics.gpu), the same operations
                # without their argument checks (dt > 0 here; the time constants were checked
                # once): -(dt / tau) is (-dt) / tau, and a + b * -c is a - b * c, exactly
                gap_w = self.power_w[idx] - target
                tau_s = np.where(gap_w > 0.0, self._dyn.tau_down_s, self._dyn.tau_up_s)
                neg_x = -dt / tau_s
                power = target + gap_w * np.exp(neg_x)
                e_mov = target * dt - gap_w * tau_s * np.expm1(neg_x)
                self.power_w[idx] = power
                e_gpu[idx] = e_mov
                temp_ss_c = self.ambient_c + self.profile.r_th_k_per_w * (e_mov / dt)
                temp = self.temp_c[idx]
                self.temp_c[idx] = temp_ss_c + (temp - temp_ss_c) * self._thermal_decay(dt)
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
            self._acc_hp += self._rates_hp * dt  # host energy and job progress
            if not self._moving.size:
                self._settled = True
                self._settled_total_w = float(self._settled_cohort_w.sum())
        self.host_energy_total_j += self.host_power_total_w * dt
        self.work_node_s += self._work_rate * dt
        self.t_s = t_s

    def _thermal_decay(self, dt: float) -> float:
        """``exp(-dt / tau_th)`` (numpy's exp), kept for the last ``dt`` (ticks repeat it)."""
        th_dt, th_decay = self._th_decay
        if dt != th_dt:
            th_decay = float(np.exp(-dt / self.profile.tau_th_s))
            self._th_decay = (dt, th_decay)
        return th_decay

    def _lag_constants(self, dt: float) -> np.ndarray:
        """The constants of a lag and thermal step over ``dt`` [s], kept for the last
        ``_lag_cache_max`` distinct ``dt``: ``[exp(-dt/tau_down), exp(-dt/tau_up),
        expm1(-dt/tau_down), expm1(-dt/tau_up), tau_down, tau_up, exp(-dt/tau_th), ambient_c,
        r_th]`` (numpy's exp/expm1 of the two possible exponents: elementwise, the values the
        array path gets)."""
        cache = self._lag_cache
        if cache is None:
            cache = self._lag_cache = {}
        consts = cache.get(dt)
        if consts is None:
            td, tu = self._dyn.tau_down_s, self._dyn.tau_up_s
            neg_x = np.array([-dt / td, -dt / tu])
            consts = np.array(np.exp(neg_x).tolist() + np.expm1(neg_x).tolist()
                              + [td, tu, self._thermal_decay(dt), self.ambient_c, self.profile.r_th_k_per_w])
            if len(cache) >= self._lag_cache_max:
                cache.clear()
            cache[dt] = consts
        return consts

    def _compiled_advance(self):
        """``(kernel, pairwise sum, scratch, _lag_cache)`` for the compiled non-settled
        advance, or None (numpy path) while ``_adv_numba`` is off, or while there is neither
        an AOT build (:mod:`twin.aot`) that this fleet's arrays fit nor numba loaded."""
        if not self._adv_numba:
            return None
        from twin import aot

        mod = aot.kernels()
        if mod is None and "numba" not in sys.modules:
            return None
        scratch = np.empty(self.n_cohorts)
        if self._lag_cache is None:
            self._lag_cache = {}
        # The AOT wrapper does not check types: the fleet's own arrays are checked here, once
        # (they are made in __init__ and only changed in place); the per-call ones are the
        # moving indices (np.flatnonzero / slices of it: int64, contiguous) and the lag
        # constants (_lag_constants: float64, contiguous), by construction.
        if mod is not None and aot.args_fit("fleet_advance", (
                self.target_w, self.power_w, self.gpu_count, self.temp_c, self._temp_t_s, self._acc, self._rates,
                self._is_moving, self._moving, scratch, scratch, 0.0, 0.0)):
            self._adv_compiled = (mod.fleet_advance, mod.pairwise_sum, scratch, self._lag_cache)
            return self._adv_compiled
        if "numba" not in sys.modules:   # (an AOT build these arrays do not fit)
            return None
        try:
            kern, psum = _advance_kernels()
        except ImportError:  # pragma: no cover - numba present but broken
            return None
        self._adv_compiled = (kern, psum, scratch, self._lag_cache)
        return self._adv_compiled

    def _step_moving_loop(self, idx: np.ndarray, dt: float, t_s: float, e_gpu: np.ndarray) -> None:
        """The lag and thermal step of a few moving cohorts ``idx`` over ``dt`` on Python
        floats: the operations of the array path, with numpy's exp/expm1 of the two
        possible exponents (one per direction; elementwise, the same values)."""
        ed, eu, md, mu, td, tu, th_decay, amb, r_th = self._lag_constants(dt).tolist()
        il = idx.tolist()
        power, e_mov, temp, fin, fin_w = [], [], [], [], []
        for i, t, p0, c0, n in zip(il, self.target_w[idx].tolist(), self.power_w[idx].tolist(),
                                   self.temp_c[idx].tolist(), self.gpu_count[idx].tolist()):
            gap = p0 - t
            if gap > 0.0:
                p = t + gap * ed
                e = t * dt - gap * td * md
            else:
                p = t + gap * eu
                e = t * dt - gap * tu * mu
            power.append(p)
            e_mov.append(e)
            ss = amb + r_th * (e / dt)
            temp.append(ss + (c0 - ss) * th_decay)
            if p == t:
                fin.append(i)
                fin_w.append(t * n)
        self.power_w[idx] = power
        e_gpu[idx] = e_mov
        self.temp_c[idx] = temp
        self._temp_t_s[idx] = t_s
        if fin:
            self._settled_cohort_w[fin] = fin_w
            self._is_moving[fin] = False
            self._moving = np.flatnonzero(self._is_moving)

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
        if (cohorts.__class__ is np.ndarray and cohorts.ndim == 1 and cohorts.dtype.kind in "iu"
                and cohorts.size <= self.loop_max and isinstance(gpu_util, float) and isinstance(host_util, float)):
            # a job's few nodes (the engine's case): Python floats, the same numbers
            self._set_load_loop(cohorts, float(gpu_util), float(host_util), int(workload))
            return
        self.gpu_util[cohorts] = gpu_util
        self.host_util[cohorts] = host_util
        self.workload[cohorts] = workload
        self.has_job[cohorts] = (np.asarray(gpu_util) > 0) | (np.asarray(host_util) > 0)
        self.is_trace[cohorts] = False
        idx = self._index(cohorts)
        self._refresh_class_power(idx)  # also the cohorts' speed
        self._refresh_targets(idx)

    def _set_load_loop(self, idx: np.ndarray, u: float, hu: float, w: int) -> None:
        """:meth:`set_load` after the advance for at most ``loop_max`` cohorts ``idx`` (int
        indices) at scalar utilisations, one cohort at a time on Python floats: the
        operations of :meth:`_refresh_class_power` and :meth:`_refresh_targets_loop` (no
        trace: ``is_trace`` is cleared) in the same order, so the same numbers. The earliest
        pending rise and the moving index array are taken from the cohorts' old and new
        entries where that settles the whole-array answer (a min is exact in any order),
        else recomputed over the fleet."""
        job = bool(u > 0.0 or hu > 0.0)
        self.gpu_util[idx] = u  # fancy first: a bad index raises before anything changes
        il = idx.tolist()
        host_util, workload, has_job, is_trace = self.host_util, self.workload, self.has_job, self.is_trace
        for i in il:
            host_util[i] = hu
            workload[i] = w
            has_job[i] = job
            is_trace[i] = False
        cap_w, speed, target_w, power_w = self.cap_w, self.speed, self.target_w, self.power_w
        idle_w = self.profile.idle_w
        generic = w == GENERIC
        if generic:  # demand_power_w and capped_power_w (twin.physics.gpu) on floats; speed 1
            m_w = idle_w + u * (self.profile.max_limit_w - idle_w)
        else:  # (P_class, rho) per (class, cap, base cap), as _refresh_class_power
            base_cap_w, class_power_w, cache = self.base_cap_w, self.class_power_w, self._class_cache
            keys = [(w, cap_w.item(i), base_cap_w.item(i)) for i in il]
            missing = [k for k in dict.fromkeys(keys) if k not in cache]
            if missing:
                self._add_class_values(missing)
        rise = self.rise_delay_s > 0.0
        due_s = self.t_s + self.rise_delay_s
        pend_at, pend_w, is_moving, gpu_count = self._pending_at_s, self._pending_w, self._is_moving, self.gpu_count
        host_count, host_power_w, job_speed = self.host_count, self.host_power_w, self._job_speed
        host_w = self.host_idle_w + hu * (self.host_busy_w - self.host_idle_w)
        old_lo_s = new_lo_s = math.inf  # earliest pending rise of the cohorts before and after
        go, settled, flips = [], [], False
        for k, i in enumerate(il):
            cap = cap_w.item(i)
            if generic:
                v = 1.0
                new = fmin(fmin(m_w, cap), cap)
            else:
                c_w, rho = cache[keys[k]]
                class_power_w[i] = c_w
                # the rest of the time (e.g. I/O) is unaffected
                v = 1.0 / ((1.0 - u) + u / rho)
                new = fmin(idle_w + u * (c_w - idle_w), cap)
            speed[i] = v
            if rise:
                old, at = target_w.item(i), pend_at.item(i)
                old_lo_s = min(old_lo_s, at)
                if new > old:  # a rise becomes the target after the delay (a pending one keeps its time)
                    if not math.isfinite(at):
                        at = due_s
                    pend_at[i] = at
                    pend_w[i] = new
                    tg = old
                    new_lo_s = min(new_lo_s, at)
                else:
                    pend_at[i] = math.inf
                    pend_w[i] = math.nan
                    tg = new
            else:
                tg = new
            target_w[i] = tg
            # _update_moving_loop's split (applied after the loop, as there)
            if power_w.item(i) != tg:
                go.append(i)
                flips = flips or not is_moving.item(i)
            else:
                settled.append((i, tg * gpu_count.item(i)))
                flips = flips or is_moving.item(i)
            host_power_w[i] = host_count.item(i) * host_w
            job_speed[i] = v * job
        if rise:
            # min(_pending_at_s): the new entries' min if no later than the old one, the old
            # one if none of these cohorts held it, else a whole-array min
            prev_s = self._next_due_s
            if new_lo_s <= prev_s:
                self._next_due_s = new_lo_s
            elif not old_lo_s > prev_s:
                self._next_due_s = float(pend_at.min())
        settled_cohort_w = self._settled_cohort_w
        for i, c_w in settled:
            settled_cohort_w[i] = c_w
            is_moving[i] = False
        if go:
            self._sync_temp(idx if len(go) == len(il) else np.array(go))
            for i in go:
                settled_cohort_w[i] = 0.0
                is_moving[i] = True
        if flips:
            self._moving = is_moving.nonzero()[0]  # np.flatnonzero of a 1-d array
        self._settled = False
        self.host_power_total_w = float(host_power_w.sum())
        self._work_rate = float(job_speed @ host_count)

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
        cap = np.asarray(cap_w, dtype=float)
        if not (cohorts.ndim == 1 and cohorts.dtype.kind in "iu" and cap.shape in ((), cohorts.shape)
                and ((cap >= self.min_limit_w[cohorts]) & (cap <= self.max_limit_w[cohorts])).all()):
            # the plant protocol's check (the same test; it raises with the message)
            check_caps_in_range(cohorts, cap_w, self.min_limit_w, self.max_limit_w)
        self.advance_to(t_s)
        self._flush()
        self.cap_w[cohorts] = cap_w
        idx = self._index(cohorts)
        self._refresh_class_power(idx)
        self._refresh_targets(idx, host=False)  # a cap leaves host power as it is

    def _index(self, cohorts) -> np.ndarray:
        """``cohorts`` (index, indices, slice or boolean mask) as an int index array."""
        return np.arange(self.n_cohorts)[cohorts].reshape(-1)

    def it_power_now_w(self) -> float:
        """Instantaneous IT power (GPUs + hosts) at the fleet's current time [W]."""
        return float(self.power_w @ self.gpu_count) + self.host_power_total_w


def _advance_soa(target_w, power_w, gpu_count, temp_c, temp_t_s, acc, rates, is_moving, moving, e_gpu, consts,
                 dt, t_s):
    """The non-settled :meth:`GpuFleet._advance` over ``dt`` [s] to ``t_s`` [s] in place, the
    operations of its numpy path in the same order (numba-compiled; plain Python otherwise).

    ``e_gpu`` := per-cohort GPU energy of the step [J] (``target * dt``, the closed form for
    the ``moving`` cohorts, times ``gpu_count``), added to ``acc[0]``; ``acc[1:] +=
    rates[1:] * dt``; the moving cohorts' power, junction temperature (at their mean power)
    and its time are stepped; those that reach their target are settled (``rates[0]`` :=
    target x gpu_count, ``is_moving`` cleared) and the others packed, in order, at the
    front of ``moving``. ``consts``: :meth:`GpuFleet._lag_constants`. Returns how many
    cohorts still move. The sums (numpy's pairwise ones) are left to the caller."""
    n = target_w.size
    for i in range(n):
        e_gpu[i] = target_w[i] * dt
    left = 0
    m = moving.size
    if m:  # consts is read only here (any array may stand in when nothing moves)
        ed, eu, md, mu = consts[0], consts[1], consts[2], consts[3]
        td, tu, th_decay, amb, r_th = consts[4], consts[5], consts[6], consts[7], consts[8]
    for j in range(m):
        i = moving[j]
        t = target_w[i]
        gap = power_w[i] - t
        if gap > 0.0:
            p = t + gap * ed
            e = t * dt - gap * td * md
        else:
            p = t + gap * eu
            e = t * dt - gap * tu * mu
        power_w[i] = p
        e_gpu[i] = e
        ss = amb + r_th * (e / dt)
        temp_c[i] = ss + (temp_c[i] - ss) * th_decay
        temp_t_s[i] = t_s
        if p == t:
            rates[0, i] = t * gpu_count[i]
            is_moving[i] = False
        else:
            moving[left] = i  # left <= j: entries not yet read stay intact
            left += 1
    for i in range(n):
        e = e_gpu[i] * gpu_count[i]
        e_gpu[i] = e
        acc[0, i] += e
        acc[1, i] += rates[1, i] * dt
        acc[2, i] += rates[2, i] * dt
    return left


def _flush_soa(acc, rates, dts):
    """``acc += rates * d`` for each ``d`` of ``dts`` in order (:meth:`GpuFleet._flush`):
    per element the same product and sum, rounded as numpy rounds them. Returns len(dts)."""
    m, n = acc.shape
    for k in range(dts.size):
        d = dts[k]
        for r in range(m):
            for i in range(n):
                acc[r, i] += rates[r, i] * d
    return dts.size


@functools.cache
def _flush_kernel_jit():
    """:func:`_flush_soa` compiled by numba's JIT (cached on disk); ImportError without numba."""
    import numba

    return numba.njit(cache=True, fastmath=False, error_model="numpy")(_flush_soa)


@functools.cache
def _advance_kernels():
    """(:func:`_advance_soa`, numpy's pairwise sum) compiled by numba, cached on disk;
    ImportError without numba. The sum is Tier 2's ``_pairwise_sum`` compiled on its own
    (not inlined: numba's disk cache of a kernel would not see a change in another file)."""
    import numba

    from twin.control.tier2_ar import _pairwise_sum

    jit = numba.njit(cache=True, fastmath=False, error_model="numpy")
    return jit(_advance_soa), jit(_pairwise_sum)


class TwinGpuPlant:
    """The fleet seen through the :class:`twin.control.plant.GpuPlant` protocol.

    ``clock`` returns the current simulation time [s] (``lambda: env.now``); every
    read or write first advances the fleet to it.
    """

    def __init__(self, fleet: GpuFleet, clock: Callable[[], float]):
        self._fleet = fleet
        self._clock = clock
        self._advance_to, self._set_cap = fleet.advance_to, fleet.set_cap  # (bound once: per-call cost)

    @property
    def n_cohorts(self) -> int:
        return self._fleet.n_cohorts

    def power_limits_w(self) -> tuple[np.ndarray, np.ndarray]:
        return self._fleet.min_limit_w.copy(), self._fleet.max_limit_w.copy()

    def read_power_w(self) -> np.ndarray:
        self._advance_to(self._clock())
        return self._fleet.power_w.copy()

    def read_power_cap_w(self) -> np.ndarray:
        return self._fleet.cap_w.copy()

    def set_power_cap_w(self, cohorts, cap_w) -> None:
        self._set_cap(self._clock(), cohorts, cap_w)
