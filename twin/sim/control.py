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
  format and decoded again (the C island's path): trigger caps shed ``reserve_band`` of
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

Nothing here reads a clock but ``env.now``.
"""

from __future__ import annotations

import math

import numpy as np

from twin.control.island_table import decode_table, encode_table
from twin.control.tier1_pid import PidParams, Tier1Controller
from twin.control.tier2_ar import RlsAr
from twin.facility.gpu_fleet import TwinGpuPlant
from twin.facility.island import NVIDIA_SMI_E7, NVML_ISLAND, SafetyIsland

#: Island cap writes are applied on this grid, rounded up [s] (chosen: 1 ms is 6 % of the
#: 15.6 ms falling lag; docs/parameters.md).
WRITE_BIN_S = 1e-3
#: Level of the table's release row [Hz] (chosen: FFR support ends by time in the
#: engine; the row carries the caps to restore, and 49.9 Hz is the edge of the Nordic
#: normal band, REFERENCE.md §6.2).
RELEASE_LEVEL_HZ = 49.9
LATENCY_MODELS = {"nvml": NVML_ISLAND, "nvidia_smi_e7": NVIDIA_SMI_E7}


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
        self._abs_err = self._abs_err_persist = 0.0
        self._scored = 0
        self._sum_y = 0.0
        self._mean_w = None            # last period's mean host power per cohort [W]
        self._pred_w = None            # prediction of the next period's [W]
        if c.tier2 == "rls_ar":
            self.tier2 = RlsAr(n, order=4, forgetting=1.0 - c.tier2_period_s / c.tier2_memory_s)
            self._changed = np.zeros(n, dtype=bool)
            # a host draws between all-idle and all-at-the-top-limit: predictions are held there
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
        env, per = self.env, self.cfg.tier2_period_s
        if env.now < self._tier2_start_s:
            yield env.timeout(self._tier2_start_s - env.now)
        prev = self._host_energy_j()
        n_hosts = self.fleet.host_count
        while True:
            yield env.timeout(per)
            e = self._host_energy_j()
            y = (e - prev) / per / n_hosts  # mean power of one host of each cohort [W]
            prev = e
            if self._pred_w is not None and env.now > 0.0:
                self._abs_err += float(np.abs(self._pred_w - y).sum())
                self._abs_err_persist += float(np.abs(self._mean_w - y).sum())
                self._sum_y += float(y.sum())
                self._scored += y.size
            if self._changed.any():
                self.tier2.reset(self._changed)  # a new job on the host: a new process to fit
                self._changed[:] = False
            self.tier2.update(y)
            self._mean_w = y
            self._pred_w = np.clip(self.tier2.predict(), self._host_lo_w, self._host_hi_w)
            self.tier2_ticks += 1

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
        f, r = self.fleet, self.cfg.reserve_band
        pred = self._predicted_gpu_w()
        trigger = np.clip((1.0 - r) * pred, f.min_limit_w, self.normal_cap_w)
        data = encode_table((self.level_hz, RELEASE_LEVEL_HZ), np.vstack([trigger, self.normal_cap_w]),
                            created_s=self.scenario.start.timestamp() + now_s,
                            meta={"writer": "gridtwin", "reserve_band": r, "sim_time_s": now_s},
                            kinds=("trigger", "release"))
        self.table = decode_table(data)  # the reader's path: every check the C island makes
        self.table_bytes = len(data)
        self._targets_w = np.where(trigger < self.normal_cap_w, (1.0 - r) * pred, np.nan)
        # what the caps take off the predicted power (float32 caps as stored)
        caps = self.table.row(self.level_hz, "trigger").astype(float)
        self.committed_w = float((f.gpu_count * np.maximum(pred - caps, 0.0)).sum())
        self.table_writes += 1
        if self.island is not None:
            self.island.table = self.table

    def _run_table(self):
        env, per = self.env, self.cfg.table_refresh_s
        k = math.floor(env.now / per) + 1
        while True:
            yield env.timeout(k * per - env.now)
            k += 1
            if not self._shedding:
                self._refresh_table(env.now)

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
            targets = self._targets_w.copy()
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
            self._shedding = False
            self.events.append(ev)

    # ------------------------------------------------------------------ summary
    def summary(self) -> dict:
        out: dict = {"tier2": self.cfg.tier2, "ffr_gpu": self.cfg.ffr_gpu}
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
