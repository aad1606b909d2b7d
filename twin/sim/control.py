"""The controller tiers on the simulated facility: Tier 2, the safety island, Tier 1.

This module is the glue between the engine's fleet and the controllers in
``twin/control/`` (which see the plant only through :class:`twin.control.plant.GpuPlant`):

* **Tier 2** (``[control] tier2 = "rls_ar"``): every ``tier2_period_s`` the mean power of
  each host over the period (exact, from the fleet's energy counters) is fed to a
  batched :class:`twin.control.tier2_ar.RlsAr`, whose one-step-ahead prediction is
  scored against the next period's value (and persistence beside it, for scale). It
  starts ``min(warm-up, 10 memories)`` before the recorded window, so the models have
  converged when recording starts.
* **The island table** (``ffr_gpu = "island"``): every ``table_refresh_s`` a table with
  one trigger row (the FFR level) and one release row is encoded in the binary island
  format, and the island reads the table those bytes decode to (built from what the
  encoder packed: :func:`~twin.control.island_table.encode_decode_table`, equal to
  ``decode_table`` of the bytes, tested): trigger caps shed ``reserve_band`` of
  each cohort's predicted GPU power (Tier 2's prediction where it runs, the last
  period's mean otherwise), clipped to the power-limit range; the release row restores
  the scenario's cap. The committed reserve of a table is what its caps take off the
  predicted power, ``sum(n_gpu * max(P_pred - cap, 0))``.
* **The island** answers each FFR activation: :class:`twin.facility.island.SafetyIsland`
  draws the latency components (receive, lookup, serial cap writes per host) and each
  cohort's cap is written at its time, rounded *up* to ``WRITE_BIN_S`` so that writes
  batch into a few fleet updates without ever being earlier than modelled. At the end
  of the support period the release row is applied the same way.
* **Tier 1** (``tier1 = "pid"``): after the last trigger write the PID wakes with the
  shed power targets of the shedding cohorts and holds them (200 Hz inside its event
  windows, asleep otherwise) until the release, when its setpoints are cleared.

* **Tier 3** (``tier3 = "pue_aware" | "ci_only"``), at every hour from t = 0: the
  cluster's flexible power ``P_flex`` (busy cohorts: the TDP where the cap binds, the
  measured power where it does not) and fixed power ``P_fix`` (hosts, idle GPUs) are
  estimated from the fleet; :class:`twin.control.tier3_selector.Tier3Selector` picks
  ``(u, r)`` with the paper's Eq. 4 as the facility model ``x -> F(P_fix + x)`` at the
  hour's weather (PUE-aware) or ``x -> x`` (CI-only); every GPU is capped at ``u x TDP``
  and the island table's trigger row at ``(u - r) x`` each cohort's flexible power. The
  reserve committed at the meter is ``ffr_commitment_kw``.
* **The carbon-aware scheduler** (``scheduler = "carbon_aware"``), from t = 0: at each
  hour the signal (CI x the Eq. 4 PUE at the current IT load and each hour's weather,
  or CI) over the past and next 24 h feeds :class:`twin.control.scheduler.CarbonScheduler`;
  a flexible job submitted in a high hour is held and submitted at its planned start
  (re-planned hourly, never after its latest start), and in high hours every cap is
  multiplied by 0.8.

Nothing here reads a clock but ``env.now``.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import timedelta

import numpy as np

from twin.control.island_table import encode_decode_table
from twin.control.scheduler import CarbonScheduler, DeferrableJob, HourlySignal, SchedulerParams, forecast_hourly
from twin.control.tier3_selector import Tier3Params, Tier3Selector, meter_reserve_w, score_grid
from twin.control.tier1_pid import PidParams, Tier1Controller
from twin.control.tier2_ar import HostPowerPredictor, RlsAr
from twin.facility.gpu_fleet import TwinGpuPlant
from twin.facility.cooling_plant import PaperEq4Params
from twin.facility.island import NVIDIA_SMI_E7, NVML_ISLAND, SafetyIsland
from twin.physics.cooling import facility_power_w

#: Island cap writes are applied on this grid, rounded up [s] (chosen: 1 ms is 6 % of the
#: 15.6 ms falling lag; docs/parameters.md).
WRITE_BIN_S = 1e-3
#: Level of the table's release row [Hz] (chosen: FFR support ends by time in the
#: engine; the row carries the caps to restore, and 49.9 Hz is the edge of the Nordic
#: normal band, REFERENCE.md §6.2).
RELEASE_LEVEL_HZ = 49.9
LATENCY_MODELS = {"nvml": NVML_ISLAND, "nvidia_smi_e7": NVIDIA_SMI_E7}
#: A held job's release is re-checked this often [s] (chosen: 5 min is short against job
#: run times of hours and long against the queue's event rate; docs/parameters.md).
RELEASE_CHECK_S = 300.0


class FacilityControl:
    """Tier 2, the island and Tier 1 on an engine's fleet (built by the engine when
    ``[control]`` asks for any of them).

    Parameters
    ----------
    engine : twin.sim.engine.Engine
        Provides ``env``, ``fleet``, ``scenario`` and ``activations``.
    """

    def __init__(self, engine):
        sc, fleet, env = engine.scenario, engine.fleet, engine.env
        c = sc.control
        self.env, self.fleet, self.scenario, self.cfg = env, fleet, sc, c
        self.plant = TwinGpuPlant(fleet, lambda: env.now)
        self.normal_cap_w = fleet.cap_w.copy()
        n = fleet.n_cohorts
        # Tier 2
        self.tier2: RlsAr | None = None
        self.tier2_ticks = 0
        # block stepping (Engine.try_block): the time of the last Tier-2 period closed, and
        # the end of the last block (its periods closed by the engine)
        self.tier2_done_s = -math.inf
        self.tier2_block_end_s = -math.inf
        self._abs_err = self._abs_err_persist = 0.0
        self._scored = 0
        self._sum_y = 0.0
        self._mean_w = None            # last period's mean host power per cohort [W]
        self._pred_w = None            # prediction of the next period's [W]
        if c.tier2 == "rls_ar":
            self.tier2 = RlsAr(n, order=4, forgetting=1.0 - c.tier2_period_s / c.tier2_memory_s)
            self._t2: HostPowerPredictor | None = None   # built when Tier 2's process starts
            self._changed = np.zeros(n, dtype=bool)
            # a host draws between all-idle and all-at-the-top-limit: predictions are held there,
            # and the model is fed per unit of the top, so that the prior (delta = 1e3 around
            # persistence) weighs the same whatever the host's size (in watts it is ~1e6 times
            # weaker and near-constant hosts fit large opposite-sign lag coefficients)
            per_host_gpus = fleet.gpu_count / fleet.host_count
            self._host_lo_w = fleet.host_idle_w + per_host_gpus * min(fleet.profile.idle_w, fleet.min_limit_w.min())
            self._host_hi_w = fleet.host_busy_w + per_host_gpus * fleet.max_limit_w
            warmup_s = sc.workload.warmup_h * 3600.0
            self._tier2_start_s = -min(warmup_s, 10.0 * c.tier2_memory_s)
            env.process(self._run_tier2())
        # island and Tier 1
        self.island: SafetyIsland | None = None
        self.tier1: Tier1Controller | None = None
        self.table = None
        self.table_writes = 0
        self._shedding = False
        self.events: list[dict] = []
        # Tier 3 and the scheduler (hourly, from t = 0)
        self.base_cap_w = fleet.cap_w.copy()
        self.u, self.r, self.throttle = 1.0, 0.0, 1.0
        self.fixed_band: float | None = None
        self.commit_w = 0.0
        self.tier3: Tier3Selector | None = None
        self.sched_params: SchedulerParams | None = None
        self.scheduler: CarbonScheduler | None = None
        self.hourly: list[tuple] = []
        self.jobs_deferred = self.deadline_misses = 0
        self.deferral_s: list[float] = []
        self._held_latest: dict[int, float] = {}
        self.flexible_late = self.released_late = 0
        self._hour_k: int | None = None
        self._caps_pending = False
        self.engine = engine
        self.hourly_on = c.tier3 != "none" or c.scheduler != "none"
        if self.hourly_on:
            self._eq4 = PaperEq4Params(**(sc.cooling.params if sc.cooling.model == "paper_eq4" else {}))
            self._eq4_kw = asdict(self._eq4)  # the (frozen) coefficients as keywords, once
            self.design_it_w = sc.facility.design_it_power_w
            if c.tier3 != "none":
                # ffr_commitment_kw = 0 with the island: the band is fixed at reserve_band (r
                # grid = {0, band}) and each hour commits what Tier 3 plans the meter to see
                self.fixed_band = (c.reserve_band if c.ffr_gpu == "island" and not c.ffr_commitment_kw else None)
                grid = {} if self.fixed_band is None else {"r_max": self.fixed_band, "r_step": self.fixed_band}
                self.tier3 = Tier3Selector(Tier3Params(trigger_levels_hz=(sc.frequency.ffr_level_hz or 49.7,), **grid),
                                           self._facility_fn if c.tier3 == "pue_aware" else None)
            if c.scheduler != "none":
                self.sched_params = SchedulerParams(forecast=c.scheduler_forecast)
            env.process(self._run_hourly())
        if c.ffr_gpu == "island":
            self.level_hz = sc.frequency.ffr_level_hz
            self._refresh_table(engine.env.now)
            self.island = SafetyIsland(self.table, gpus_per_host=np.round(fleet.gpu_count / fleet.host_count),
                                       model=LATENCY_MODELS[c.island_latency], seed=(sc.seed * 1009 + 3))
            if c.tier1 == "pid":
                self.tier1 = Tier1Controller(env, self.plant,
                                             PidParams.for_profile(fleet.profile, ambient_c=fleet.ambient_c))
            env.process(self._run_table())
            env.process(self._run_island(engine.activations))

    # ------------------------------------------------------------------ Tier 2
    def _host_energy_j(self) -> np.ndarray:
        self.fleet.advance_to(self.env.now)
        return self.fleet.gpu_energy_j + self.fleet.host_energy_j

    def _run_tier2(self):
        env, fleet = self.env, self.fleet
        if env.now < self._tier2_start_s:
            yield env.timeout(self._tier2_start_s - env.now)
        # one period per call: energy differences, scores, the RLS tick and the clipped
        # prediction (one compiled call with the numba backend)
        self._t2 = HostPowerPredictor(self.tier2, fleet.host_count, self._host_lo_w, self._host_hi_w,
                                      self.cfg.tier2_period_s)
        self._t2.start(self._host_energy_j())
        per, period = self.cfg.tier2_period_s, self.tier2_period
        own = env.own_timeout   # not a foreign event for block stepping
        blocks = self.engine.try_block
        delay = per
        while True:
            yield own(delay)
            now = env.now
            if now <= self.tier2_block_end_s:   # this stretch was closed by a block
                delay = self.tier2_block_end_s + per - now
                continue
            period(now)
            end = blocks()
            delay = per if end is None else end + per - now

    def tier2_period(self, now_s: float) -> None:
        """Close the Tier-2 period ending at ``now_s`` (the fleet advanced to it): the RLS
        tick on the cohorts' mean power and the prediction scores. Tier 2's process calls it
        every period, the engine's block stepping for the periods inside a block."""
        fleet = self.fleet
        fleet.advance_to(now_s)
        self._score(self._t2.step(fleet.gpu_energy_j, fleet.host_energy_j, self._changed, now_s > 0.0))
        self._mean_w, self._pred_w = self._t2.mean_w, self._t2.pred_w
        self.tier2_ticks += 1
        self.tier2_done_s = now_s

    def _score(self, sums: tuple[float, float, float] | None) -> None:
        """Add one period's prediction scores (None: the period was not scored)."""
        if sums is not None:
            self._abs_err += sums[0]
            self._abs_err_persist += sums[1]
            self._sum_y += sums[2]
            self._scored += self.fleet.n_cohorts

    def tier2_block(self, times_s: list[float], ends: list[bool] | None = None) -> None:
        """Tier 2's periods ending at ``times_s`` (block stepping; the fleet settled and
        advanced through the block with its intervals still lazy): :meth:`tier2_period` at
        each time, the RLS ticks in one compiled call. ``ends``: one flag per interval of
        the block (its last ones among the fleet's lazy intervals), true where a period ends
        (default: one interval per period, a block of base ticks)."""
        fleet = self.fleet
        gpu_j, host_j, gpu_w, host_w, dts = fleet.lazy_energy()
        if ends is None:
            ends = [True] * len(times_s)
        elif sum(ends) != len(times_s):
            raise ValueError(f"Tier 2 block: {sum(ends)} period ends for {len(times_s)} periods")
        extra = len(dts) - len(ends)      # intervals before the block's (none when Tier 2 read last)
        if extra < 0:
            raise RuntimeError(f"Tier 2 block: {len(dts)} lazy intervals for a block of {len(ends)}")
        for d in dts[:extra]:             # applied as a read would
            gpu_j += gpu_w * d
            host_j += host_w * d
        dts = dts[extra:]
        for sums in self._t2.step_block(gpu_j, host_j, gpu_w, host_w, dts, self._changed,
                                        [t > 0.0 for t in times_s], ends):
            self._score(sums)   # accumulated period by period, as tier2_period does
        self._mean_w, self._pred_w = self._t2.mean_w, self._t2.pred_w
        self.tier2_ticks += len(times_s)
        self.tier2_done_s = times_s[-1]

    def load_changed(self, cohorts) -> None:
        """A job started or ended on ``cohorts`` (the engine calls this): their AR models are
        reset at the next Tier-2 tick, before the sample that spans the change is fed."""
        if self.tier2 is not None:
            self._changed[cohorts] = True

    # ------------------------------------------------------------------ island table
    def _predicted_gpu_w(self) -> np.ndarray:
        """Predicted board power per GPU of each cohort [W] for the next period."""
        f = self.fleet
        if self._pred_w is None:
            f.advance_to(self.env.now)
            return f.power_w.copy()
        non_gpu = f.host_power_w / f.host_count
        per_host_gpus = f.gpu_count / f.host_count
        return np.maximum(self._pred_w - non_gpu, 0.0) / per_host_gpus

    def _refresh_table(self, now_s: float) -> None:
        if self.tier3 is not None:
            self._write_tier3_table(now_s)
            return
        f, r = self.fleet, self.cfg.reserve_band
        normal = self.normal_cap_w
        pred = self._predicted_gpu_w()
        shed = (1.0 - r) * pred
        # clip(shed, min limit, normal cap) as np.clip computes it (limits and caps > 0)
        trigger = np.minimum(np.maximum(shed, f.min_limit_w), normal)
        caps = self._write_table(now_s, trigger, normal, {"reserve_band": r})
        # Tier 1's targets and the committed reserve, worked out when an activation reads
        # them, from arrays of this write that nothing else holds (row 0 of the table is
        # the trigger row, float32 caps as stored)
        self._targets_src = (caps[0], shed, caps[1])
        self._committed, self._committed_src = None, (pred, self.table.caps_w[0])

    @property
    def committed_w(self) -> float:
        """IT power the current island table commits [W]: Tier 3's commitment at the meter,
        or what the trigger caps take off the predicted power,
        ``sum(n_gpu * max(P_pred - cap, 0))`` (summed at the first read after the write)."""
        if self._committed is None:
            pred, caps = self._committed_src
            off = pred - caps
            np.maximum(off, 0.0, out=off)
            self._committed = float((self.fleet.gpu_count * off).sum())
        return self._committed

    @committed_w.setter
    def committed_w(self, value: float) -> None:
        self._committed = value

    def _shed_targets_w(self) -> np.ndarray:
        """Tier 1's targets for the current table [W per GPU]: the shed power where the
        trigger cap is below the normal cap, NaN (not controlled) elsewhere."""
        trigger, value, normal = self._targets_src
        return np.where(trigger < normal, value, np.nan)

    def _flex_state(self) -> float:
        """Split the fleet's power into flexible (busy GPUs) and fixed parts, now.

        A busy GPU (power above idle + 10 W) whose cap binds (power >= 0.9 cap) could draw
        its TDP; one whose cap does not bind draws what it draws. Sets ``_flex_gpu_w``
        (per GPU of each cohort, at u = 1 and the current throttle) and ``_p_fix_w``
        (hosts + idle GPUs) and returns ``P_flex`` [W].
        """
        f = self.fleet
        f.advance_to(self.env.now)
        busy = f.power_w > f.profile.idle_w + 10.0
        cap_bound = f.power_w >= 0.9 * f.cap_w
        top = np.where(busy, np.where(cap_bound, f.max_limit_w * self.throttle, f.power_w), f.min_limit_w)
        # only the power above the device's minimum cap can be shed
        self._flex_gpu_w = np.maximum(top - f.min_limit_w, 0.0)
        p_flex = float((f.gpu_count * self._flex_gpu_w).sum())
        # hosts, and every GPU's power up to its minimum cap
        self._p_fix_w = f.host_power_total_w + float((f.gpu_count * np.minimum(f.power_w, f.min_limit_w)).sum())
        return p_flex

    def _write_tier3_table(self, now_s: float, resize: bool = False) -> None:
        """The island table of the current operating point. With ``resize`` (the periodic
        refresh inside the hour) the band is re-sized on the current fleet state so that
        the model still sees the hour's commitment at the meter: the smallest r >= the
        decided one (steps of 0.01, up to 0.9) with D(u, r) >= R."""
        f = self.fleet
        r = self.r
        if resize and self.commit_w > 0.0:
            p_flex = self._flex_state()
            if p_flex > 0.0:
                cand = self._band_candidates()
                d = meter_reserve_w(p_flex, self.u, cand, self.tier3.facility_power_fn, elementwise=True)
                ok = np.flatnonzero(d >= self.commit_w)
                r = float(cand[ok[0]] if ok.size else cand[-1])
        flex = getattr(self, "_flex_gpu_w", None)
        if flex is None:
            flex = np.asarray(f.max_limit_w - f.min_limit_w, dtype=float)
        lo, normal = f.min_limit_w, self.normal_cap_w
        # clip(lo + (u - r) flex, lo, normal cap) as np.clip computes it (limits and caps > 0)
        trigger = np.minimum(np.maximum(lo + (self.u - r) * flex, lo), normal)
        caps = self._write_table(now_s, trigger, normal,
                                 {"writer_tier": "tier3", "u": self.u, "r": r, "variant": self.cfg.tier3})
        self._targets_src = (caps[0], caps[0], caps[1])
        self.committed_w = self.commit_w  # at the meter
        self.r_effective = r

    def _band_candidates(self) -> np.ndarray:
        """The bands the in-hour resize tries: r, r + 0.01, ... up to 0.9 and at most u
        (computed once per hour's (u, r): kept while both are the same float objects)."""
        key = getattr(self, "_band_key", None)
        if key is None or key[0] is not self.r or key[1] is not self.u:
            cand = np.round(np.arange(self.r, 0.9 + 1e-9, 0.01), 6)
            self._band_cand = cand[cand <= self.u]
            self._band_key = (self.r, self.u)
        return self._band_cand

    def _write_table(self, now_s: float, trigger_w: np.ndarray, normal_w: np.ndarray, meta: dict) -> np.ndarray:
        """Write the table (trigger row, release row); returns the caps written, float64
        (a copy of ``trigger_w`` and ``normal_w``)."""
        caps = np.empty((2, trigger_w.size))
        caps[0], caps[1] = trigger_w, normal_w
        # the bytes and the table the island reads back from them (decode_table's result,
        # without re-running the checks that freshly encoded bytes pass by construction)
        data, self.table = encode_decode_table(
            (self.level_hz, RELEASE_LEVEL_HZ), caps, created_s=self.scenario.start.timestamp() + now_s,
            meta={"writer": "gridtwin", "sim_time_s": now_s, **meta}, kinds=("trigger", "release"))
        self.table_bytes = len(data)
        self.table_writes += 1
        if self.island is not None:
            self.island.table = self.table
        return caps

    def _run_table(self):
        env, per = self.env, self.cfg.table_refresh_s
        k = math.floor(env.now / per) + 1
        while True:
            yield env.timeout(k * per - env.now)
            k += 1
            if self._shedding:
                continue
            if self.tier3 is None:
                self._refresh_table(env.now)
            elif env.now >= 0.0 and self._hour_k is not None:
                self._write_tier3_table(env.now, resize=True)

    # ------------------------------------------------------------------ island
    def _apply(self, written_s: np.ndarray, caps_w: np.ndarray):
        """Write each cohort's cap at its time (rounded up to WRITE_BIN_S)."""
        env = self.env
        t_bin = np.ceil(written_s / WRITE_BIN_S - 1e-9) * WRITE_BIN_S
        order = np.argsort(t_bin, kind="stable")
        t_sorted = t_bin[order]
        starts = np.flatnonzero(np.r_[True, t_sorted[1:] != t_sorted[:-1]])
        for a, b in zip(starts, np.r_[starts[1:], order.size]):
            t = float(t_sorted[a])
            if t > env.now:
                yield env.timeout(t - env.now)
            idx = order[a:b]
            self.plant.set_power_cap_w(idx, caps_w[idx])
            self.load_changed(idx)  # an operating point set from outside: refit from persistence

    def _run_island(self, activations):
        env, f = self.env, self.fleet
        for a in activations:
            if a.trigger_s > env.now:
                yield env.timeout(a.trigger_s - env.now)
            self._shedding = True
            f.advance_to(env.now)
            power_w = f.power_w.copy()
            caps = self.table.row(self.level_hz, "trigger").astype(float)
            act = self.island.activate(env.now, self.level_hz, power_w=power_w,
                                       target_w=np.minimum(power_w, caps), dyn=f._dyn)
            ev = {"trigger_s": a.trigger_s, "table_version_crc32": self.table.payload_crc32,
                  "committed_it_kw": self.committed_w / 1e3,
                  "caps_written_s": act.caps_written_latency_s, "settled_bound_s": act.latency_s,
                  "rx_lookup_max_s": float(np.max(act.components_s["trigger_rx_s"] + act.components_s["lookup_s"]))}
            targets = self._shed_targets_w()
            yield from self._apply(act.cap_written_s, act.caps_w.astype(float))
            if self.tier1 is not None:
                self.tier1.wake(targets)
            if a.support_end_s > env.now:
                yield env.timeout(a.support_end_s - env.now)
            if self.tier1 is not None:
                self.tier1.wake(np.full(f.n_cohorts, np.nan))
            rel = self.island.activate(env.now, RELEASE_LEVEL_HZ, kind="release")
            ev["release_written_s"] = rel.caps_written_latency_s
            yield from self._apply(rel.cap_written_s, rel.caps_w.astype(float))
            self.engine.queue.reschedule()  # the shed slowed jobs down, the release speeds them up
            self._shedding = False
            if self._caps_pending:
                self._set_normal_caps()
            self.events.append(ev)

    # ------------------------------------------------------------------ Tier 3 and the scheduler
    def _temps_c(self, t_s):
        return self.engine.forecast_weather_c(t_s)

    def _facility_fn(self, it_w):
        """Eq. 4 facility power for IT power ``P_fix + it_w`` at the decision hour's weather [W]."""
        db, wb = self._wx
        return facility_power_w(self._p_fix_w + np.asarray(it_w, dtype=float), self.design_it_w, db, wb,
                                **self._eq4_kw)["facility_power_w"]

    def _pue(self, it_w: float, t_s) -> np.ndarray:
        db, wb = self._temps_c(t_s)
        it_w = max(it_w, 1.0)
        return facility_power_w(it_w, self.design_it_w, db, wb, **self._eq4_kw)["facility_power_w"] / it_w

    def _set_normal_caps(self) -> None:
        f = self.fleet
        if self.tier3 is not None:  # u: fraction of the controllable range above the minimum cap
            top = f.min_limit_w + self.u * (f.max_limit_w * self.throttle - f.min_limit_w)
        else:
            top = self.base_cap_w * self.throttle
        self.normal_cap_w = np.clip(top, f.min_limit_w, f.max_limit_w)
        if self._shedding:
            self._caps_pending = True  # applied when the release row has been written
            return
        self._caps_pending = False
        moved = np.flatnonzero(self.normal_cap_w != f.cap_w)
        if moved.size:
            self.plant.set_power_cap_w(moved, self.normal_cap_w[moved])
            self.engine.queue.reschedule()  # running jobs speed up or slow down

    def _ensure_hour(self, now_s: float) -> None:
        """Run the hourly decisions once per hour (at the first call in the hour)."""
        k = math.floor(now_s / 3600.0 + 1e-12)
        if k == self._hour_k:
            return
        self._hour_k = k
        env, f = self.env, self.fleet
        t_h = k * 3600.0
        f.advance_to(now_s)
        it_now = f.it_power_now_w()
        ci_w, cff_w = self.engine.hourly_carbon(t_h, 24, 25)  # hours -24 .. +24; index 24 is this one
        ci, cff = float(ci_w[24]), float(cff_w[24])
        pue_fc = float(self._pue(it_now, t_h + 1800.0))
        if self.sched_params is not None:
            t_mid = t_h + np.arange(-24, 25) * 3600.0 + 1800.0
            values = ci_w * (self._pue(it_now, t_mid) if self.cfg.scheduler_signal == "ci_x_pue" else 1.0)
            self.scheduler = CarbonScheduler(HourlySignal(values, start_s=t_h - 24 * 3600.0), self.sched_params)
            self.scheduler.update(t_h)
            self.throttle = float(self.scheduler.throttle_cap_fraction(t_h + 1e-6))
        objective = math.nan
        if self.tier3 is not None:
            p_flex = self._flex_state()
            self._wx = self._temps_c(t_h + 1800.0)
            if p_flex > 0.0:
                # what Tier 3 knows: the hour and the next 24 h by the chosen forecast, made
                # from the series of the last 24 h and (perfect) the next 24 h
                method = self.cfg.tier3_forecast
                ci_look = forecast_hourly(ci_w[:48], 24, 24, method)
                cff_look = forecast_hourly(np.nan_to_num(cff_w[:48], nan=0.0), 24, 24, method)
                ci_fc, cff0 = float(ci_look[0]), float(cff_look[0])
                ci_ref = max(float(ci_look.mean()), 1e-9)
                if self.fixed_band is None:
                    d = self.tier3.decide(now_s, p_flex, ci_fc, cff0, ci_ref, self.cfg.ffr_commitment_kw * 1e3)
                    self.u, self.r, objective = d.u, d.r, d.objective
                    self.commit_w = self.cfg.ffr_commitment_kw * 1e3
                else:
                    # band fixed: the best u with r = band; commit what the model says the meter sees
                    t = score_grid(p_flex, ci_fc, cff0, ci_ref, 0.0, self.tier3.facility_power_fn, self.tier3.params)
                    j = int(np.argmin(np.abs(t.r_grid - self.fixed_band)))
                    col = np.where(t.feasible[:, j], t.objective[:, j], -np.inf)
                    i = int(np.flatnonzero(col >= col.max() - 1e-12 * max(1.0, abs(col.max())))[-1])
                    self.u, self.r, objective = float(t.u_grid[i]), float(t.r_grid[j]), float(col[i])
                    self.commit_w = float(t.meter_reserve_w[i, j])
                if self.commit_w < self.cfg.ffr_min_commitment_kw * 1e3:
                    self.commit_w = 0.0  # below the minimum bid: no commitment this hour
            else:
                self.u, self.r, self.commit_w = 1.0, 0.0, 0.0
        else:
            p_flex = math.nan
        self._set_normal_caps()
        if self.tier3 is not None and self.island is not None and not self._shedding:
            self._write_tier3_table(now_s)
        if now_s >= 0.0:
            self.hourly.append((t_h, self.u, self.r if self.tier3 is not None else math.nan, self.throttle, ci, cff,
                                pue_fc, p_flex, objective, it_now, self.commit_w / 1e3))

    def _run_hourly(self):
        env = self.env
        if env.now < 0.0:
            yield env.timeout(-env.now)
        while True:
            self._ensure_hour(env.now)
            yield env.timeout((math.floor(env.now / 3600.0 + 1e-12) + 1) * 3600.0 - env.now)

    def on_submit(self, i: int, submit_s: float, run_s: float, deadline_s: float, flexible: bool) -> bool:
        """True: submit job ``i`` now; False: the scheduler holds it (and submits it later)."""
        if self.sched_params is None or self.env.now < 0.0 or not flexible:
            return True
        self._ensure_hour(self.env.now)
        job = DeferrableJob(i, submit_s, run_s, deadline_s, True)
        q = self.engine.queue
        if (not self.scheduler.should_defer(job, self.env.now)
                or q.start_bound_s(int(q.num_nodes[i])) + RELEASE_CHECK_S >= job.latest_start_s):
            return True  # not a high hour, or no slack left to hold it safely
        self.jobs_deferred += 1
        self._held_latest[i] = job.latest_start_s
        self.env.process(self._held(i, job))
        return False

    def job_started(self, i: int, now_s: float) -> None:
        """Count flexible jobs (held ones apart) that started after their latest start."""
        if now_s < 0.0 or not self.engine._flexible[i]:
            return
        latest = self.engine._deadline_s[i] - self.engine.queue.run_time_s[i]
        late = int(now_s > latest + 1e-6)
        if self._held_latest.pop(i, None) is not None:
            self.deadline_misses += late
        else:
            self.flexible_late += late

    def _held(self, i: int, job: DeferrableJob):
        """Hold job ``i`` until its planned start; release it early enough that, at the head
        of the queue, it starts by its latest start even if every running job uses its
        whole time limit (checked every RELEASE_CHECK_S)."""
        env, q = self.env, self.engine.queue
        n = int(q.num_nodes[i])
        while True:
            now = env.now
            next_hour = (math.floor(now / 3600.0 + 1e-12) + 1) * 3600.0
            wake = min(self.scheduler.planned_start_s(job, now), next_hour, job.latest_start_s,
                       now + RELEASE_CHECK_S)
            if wake > now:
                yield env.timeout(wake - now)
            self._ensure_hour(env.now)
            tight = q.start_bound_s(n) + RELEASE_CHECK_S >= job.latest_start_s
            if (env.now >= job.latest_start_s - 1e-9 or wake <= now or tight
                    or not self.scheduler.should_defer(job, env.now)):
                self.deferral_s.append(env.now - job.submit_s)
                self.released_late += int(env.now > job.latest_start_s + 1e-6)
                self.engine.queue.submit(i, front=True)
                return

    def write_hourly(self, folder) -> None:
        """control_hourly.parquet: one row per hour of the decisions (if any)."""
        if not self.hourly:
            return
        import pandas as pd
        a = np.array(self.hourly, dtype=float)
        start = self.scenario.start
        pd.DataFrame({
            "timestamp": [start + timedelta(seconds=float(t)) for t in a[:, 0]],
            "operating_fraction": a[:, 1], "reserve_band": a[:, 2], "throttle": a[:, 3],
            "carbon_intensity_g_per_kwh": a[:, 4], "carbon_free_fraction": a[:, 5], "pue_forecast": a[:, 6],
            "flexible_power_w": a[:, 7], "tier3_objective": a[:, 8], "it_power_w": a[:, 9],
            "committed_meter_kw": a[:, 10],
        }).to_parquet(folder / "control_hourly.parquet", index=False)

    def hourly_summary(self) -> dict | None:
        if not self.hourly:
            return None
        a = np.array(self.hourly, dtype=float)
        hour = np.array([(self.scenario.start + timedelta(seconds=float(t))).hour for t in a[:, 0]])
        day = (hour >= 8) & (hour < 20)
        ci = a[:, 4]
        green_day = day & (ci <= np.median(ci))
        night = (hour >= 22) | (hour < 6)
        mean = (lambda m, col: float(a[m, col].mean()) if m.any() else None)  # noqa: E731
        return {
            "hours": int(a.shape[0]),
            "tier3": self.cfg.tier3, "scheduler": self.cfg.scheduler,
            "operating_fraction_mean": mean(np.ones(len(a), bool), 1),
            "operating_fraction_green_day_mean": mean(green_day, 1),
            "operating_fraction_night_mean": mean(night, 1),
            "reserve_band_mean": mean(np.ones(len(a), bool), 2) if self.tier3 is not None else None,
            "throttled_hours": int((a[:, 3] < 1.0).sum()),
            "jobs_deferred": self.jobs_deferred,
            "deferred_released_after_latest_start": self.released_late,
            "deferred_started_after_latest_start": self.deadline_misses,
            "other_flexible_started_after_latest_start": self.flexible_late,
            "deferral_mean_h": float(np.mean(self.deferral_s) / 3600.0) if self.deferral_s else 0.0,
            "deferral_max_h": float(np.max(self.deferral_s) / 3600.0) if self.deferral_s else 0.0,
            "signal": self.cfg.scheduler_signal, "signal_forecast": self.cfg.scheduler_forecast,
            "ffr_commitment_kw": self.cfg.ffr_commitment_kw,
            "fixed_reserve_band": self.fixed_band,
            "committed_meter_kw_mean": mean(np.ones(len(a), bool), 10),
        }

    # ------------------------------------------------------------------ summary
    def summary(self) -> dict:
        out: dict = {"tier2": self.cfg.tier2, "ffr_gpu": self.cfg.ffr_gpu, "hourly": self.hourly_summary()}
        if self.tier2 is not None:
            n = max(self._scored, 1)
            mean_y = self._sum_y / n
            out["tier2_detail"] = {
                "period_s": self.cfg.tier2_period_s, "forgetting": self.tier2.forgetting, "ticks": self.tier2_ticks,
                "scored_predictions": self._scored,
                "host_power_mae_w": self._abs_err / n if self._scored else None,
                "persistence_mae_w": self._abs_err_persist / n if self._scored else None,
                "host_power_mean_w": mean_y if self._scored else None,
            }
        if self.island is not None:
            d = {"latency_model": self.island.model.name, "reserve_band": self.cfg.reserve_band,
                 "table_writes": self.table_writes, "table_bytes": self.table_bytes,
                 "activations": self.events}
            if self.tier1 is not None:
                t1 = self.tier1
                d["tier1"] = {"windows": t1.windows, "ticks": t1.ticks, "cap_writes": t1.cohort_writes,
                              "watch_polls": t1.watch_polls}
            out["island"] = d
        return out
