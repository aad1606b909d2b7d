"""The engine: builds the SimPy environment, the facility and the workload from a Scenario.

Processes:

* ``_arrivals`` submits each job at its submit time to the batch queue
  (:mod:`twin.sim.scheduling`: FCFS with EASY backfilling by default); a job starts (a
  SimPy event) when the scheduler places it and ends ``run_time_s`` later (a Timeout
  whose callback frees the nodes). No polling: load changes only at these events.
* ``_ticks`` closes one base tick at a time from t = 0: the site integrates the fleet
  exactly to the tick's end and the recorder stores the row.

Time is ``env.now`` seconds since the scenario's start; the environment starts at
``-warmup_h`` so the recorded window opens on a loaded facility.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from traces.synthetic import JOB_COLUMNS, carbon_free_fraction_from_ci, synthetic_carbon_intensity
from traces.ci_file import hourly_window, read_ci_file
from twin.control.battery_dispatch import BatteryDispatcher, DispatchConfig
from twin.facility.battery import Battery
from twin.facility.frequency import (FFR_REARM_S, FrequencyDip, fcr_d_up_fraction, ffr_log_windows,
                                     synthetic_frequency_trace)
from twin.facility.heat_loop import HeatLoop, HeatLoopConfig
from twin.physics.heat import annual_heat_demand_coefficients, district_heat_demand_w
from twin.facility.cooling_plant import make_cooling_model
from twin.facility.distribution import EvenSpreadLossCurve
from twin.facility.gpu_fleet import GENERIC, GpuFleet
from twin.physics.gpu import WORKLOADS
from twin.facility.grid import CarbonSignal
from twin.facility.site import Site
from twin.facility.weather import ClimateWeather, DiurnalWeather
from twin.physics.weather import SITE_CLIMATES
from twin.scenario import Scenario
from twin.sim.clock import BlockEnvironment
from twin.sim.control import FacilityControl
from twin.sim.recorder import HostSeriesRecorder, Recorder
from twin.sim.scheduling import BatchQueue
from twin.sim.workload import Workload, WorkloadError, assign_flexibility, build_workload

WORKLOAD_COLUMNS = ("busy_nodes", "running_jobs", "queued_jobs")
COLUMNS = Site.COLUMNS + ("frequency_hz", "ffr_active") + WORKLOAD_COLUMNS
#: Columns of ffr_windows.parquet besides timestamp and window (the 100 ms activation log).
WINDOW_COLUMNS = ("grid_power_w", "facility_power_w", "it_power_w", "gpu_power_w", "battery_power_w",
                  "battery_soc", "frequency_hz", "ffr_active")


class InputDataError(ValueError):
    """A trace or data file named by the scenario cannot be used (the message says why)."""


@contextmanager
def input_data(key: str, path: str):
    """Turn a reader's ValueError into an InputDataError naming the scenario key and file."""
    try:
        yield
    except (ValueError, OSError) as exc:
        raise InputDataError(f"{key} = {path!r}: {exc}") from None


@dataclass
class JobCounts:
    submitted: int = 0
    started: int = 0
    completed: int = 0


def make_weather(sc: Scenario) -> DiurnalWeather | ClimateWeather:
    """The scenario's ambient model (``[weather] model``)."""
    w = sc.weather
    if w.model == "climate":
        return ClimateWeather(sc.start, sc.duration_s, SITE_CLIMATES[w.site], peak_hour_utc=w.peak_hour_utc,
                              depression_swing_fraction=w.depression_swing_fraction)
    return DiurnalWeather(sc.start, dry_bulb_mean_c=w.dry_bulb_mean_c, dry_bulb_range_k=w.dry_bulb_range_k,
                          wet_bulb_mean_c=w.wet_bulb_mean_c, wet_bulb_range_k=w.wet_bulb_range_k,
                          peak_hour_utc=w.peak_hour_utc)


def _aggregate_rows(rows: list[tuple]) -> tuple:
    """One base-tick row from equal-length sub-tick rows: means, except sums for co2_g and
    a PUE recomputed from the mean powers."""
    a = np.asarray(rows, dtype=float)
    with warnings.catch_warnings():  # all-NaN columns (no coolant loop, no battery) stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.nanmean(a, axis=0)
    cols = Site.COLUMNS
    out[cols.index("co2_g")] = a[:, cols.index("co2_g")].sum()
    it = out[cols.index("it_power_w")]
    out[cols.index("pue")] = out[cols.index("facility_power_w")] / it if it > 0 else math.nan
    return tuple(out.tolist())


def _aggregate_blocks(a3: np.ndarray) -> list[tuple]:
    """:func:`_aggregate_rows` of each ``a3[g]`` (groups x sub-ticks x columns), the same
    numbers: numpy's nanmean over axis 1 adds each group's sub-tick rows in order as it does
    over axis 0 of one group; co2_g is summed per group by the same expression; PUE by the
    same division. (C order: the rows' sum must not become numpy's inner, pairwise, loop.)"""
    a3 = np.ascontiguousarray(a3, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.nanmean(a3, axis=1)
    cols = Site.COLUMNS
    i_co2, i_it, i_fac, i_pue = (cols.index(c) for c in ("co2_g", "it_power_w", "facility_power_w", "pue"))
    for g, a in enumerate(a3):
        out[g, i_co2] = a[:, i_co2].sum()
    it = out[:, i_it]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, i_pue] = np.where(it > 0, out[:, i_fac] / it, math.nan)
    return [tuple(r) for r in out.tolist()]


def make_frequency(sc: Scenario):
    """(FrequencySignal or None, FFR activations) from ``[frequency]``.

    Dips are placed one per slot of ``duration / ffr_dips`` at a seeded random offset
    (generator ``(seed, 2)``) leaving at least the 15 min re-arm time between crossings.
    """
    f = sc.frequency
    if f.source == "none":
        return None, []
    rng = np.random.default_rng([sc.seed, 2])
    slot = sc.duration_s / f.ffr_dips if f.ffr_dips else sc.duration_s
    margin = 120.0  # keep dips off the run's edges (fall 3 s, recovery 60 s, noise taper 10 s)
    crossings = [i * slot + margin + rng.uniform(0.0, max(slot - FFR_REARM_S - margin, 0.0))
                 for i in range(f.ffr_dips)]
    dips = [FrequencyDip(t, nadir_hz=f.dip_nadir_hz, cross_hz=f.ffr_level_hz) for t in crossings]
    signal = synthetic_frequency_trace(sc.duration_s, seed=sc.seed, dt_s=f.log_tick_s, dips=dips)
    return signal, signal.ffr_activations(level_hz=f.ffr_level_hz, support_s=f.ffr_support_s)


def make_battery(sc: Scenario, ffr_windows_s):
    """(Battery, BatteryDispatcher) from ``[battery]``, or (None, None)."""
    b = sc.battery
    if b.model == "none":
        return None, None
    battery = Battery(b.capacity_kwh, b.max_charge_kw, b.max_discharge_kw, soc_min=b.soc_min, soc_max=b.soc_max,
                      initial_soc=b.initial_soc, round_trip_efficiency=b.round_trip_efficiency, temp_c=b.temp_c)
    cfg = DispatchConfig(
        import_limit_w=math.inf if b.peak_shaving_import_kw is None else b.peak_shaving_import_kw * 1e3,
        max_ramp_w_per_s=math.nan if b.max_ramp_kw_per_s is None else b.max_ramp_kw_per_s * 1e3,
        ffr_reserve_w=b.ffr_reserve_kw * 1e3, fcr_d_reserve_w=b.fcr_d_reserve_kw * 1e3,
        recharge_w=b.recharge_kw * 1e3, target_soc=b.initial_soc)
    return battery, BatteryDispatcher(cfg, ffr_windows_s)


def make_heat(sc: Scenario, weather):
    """(HeatLoop, demand function t_s -> W) from ``[heat]``, or (None, None).

    Demand: degree-day seasonality from the weather's daily mean dry-bulb times a diurnal
    shape, scaled so a typical year sums to ``annual_demand_mwh``
    (:func:`twin.physics.heat.annual_heat_demand_coefficients`).
    """
    h = sc.heat
    if h.model == "none":
        return None, None
    hdd = weather.annual_heating_degree_days_k_day(h.degree_day_base_c)
    if hdd <= 0.0 and h.base_load_fraction < 1.0:
        raise ValueError(f"heat: the weather has no heating degree days below {h.degree_day_base_c:g} degC, so "
                         f"only a weather-independent demand is possible; set heat.base_load_fraction = 1")
    base_w, ua_w_per_k = annual_heat_demand_coefficients(h.annual_demand_mwh * 3.6e9, h.base_load_fraction,
                                                         max(hdd, 1.0))
    start_hour = sc.start.hour + sc.start.minute / 60.0 + sc.start.second / 3600.0
    # the demand is smooth on the scale of minutes: evaluate it (vectorised) once per minute
    # of the run and interpolate linearly in between
    grid_t = np.arange(-1, int(math.ceil(sc.duration_s / 60.0)) + 2) * 60.0
    daily = np.array([weather.daily_mean_dry_bulb_c(t) for t in grid_t[::1440]]) if len(grid_t) > 1440 else None
    daily_c = (np.repeat(daily, 1440)[:len(grid_t)] if daily is not None
               else np.array([weather.daily_mean_dry_bulb_c(t) for t in grid_t]))
    values = np.asarray(district_heat_demand_w(start_hour + grid_t / 3600.0, daily_c, base_w, ua_w_per_k,
                                               h.degree_day_base_c), dtype=float)

    def demand_w(t_s: float) -> float:
        x = (t_s + 60.0) / 60.0
        i = int(x)
        return float(values[i] + (x - i) * (values[i + 1] - values[i]))

    loop = HeatLoop(HeatLoopConfig(
        heat_pump_capacity_w=h.heat_pump_capacity_kw * 1e3, tank_volume_m3=h.tank_volume_m3,
        tank_ua_w_per_k=h.tank_ua_w_per_k, meter_permanent_flow_m3_per_h=h.meter_permanent_flow_m3_per_h,
        supply_setpoint_c=h.supply_setpoint_c, return_temp_c=h.return_temp_c, meter_class=h.meter_class))
    return loop, demand_w


def workload_indices(jobs: pd.DataFrame, shares, seed: int) -> np.ndarray:
    """Index into :data:`twin.physics.gpu.WORKLOADS` per job; GENERIC (-1) for CPU-only jobs.

    A ``workload`` column (class names) is used as given; otherwise classes are drawn with
    ``shares`` from a generator seeded with ``(seed, 1)``, independent of the job stream's.
    """
    gpu_job = jobs["num_gpus"].to_numpy() > 0
    if "workload" in jobs.columns:
        names = jobs["workload"].to_numpy()
        bad = ~np.isin(names[gpu_job], WORKLOADS)
        if bad.any():
            raise ValueError(f"job table: workload = {names[gpu_job][bad][0]!r}, expected one of {WORKLOADS}")
        idx = np.array([WORKLOADS.index(n) if g else GENERIC for n, g in zip(names, gpu_job)], dtype=np.int64)
    else:
        rng = np.random.default_rng([seed, 1])
        idx = rng.choice(len(WORKLOADS), size=len(jobs), p=np.asarray(shares, dtype=float))
    return np.where(gpu_job, idx, GENERIC)


def _checked_jobs(jobs: pd.DataFrame, n_nodes: int, t0_s: float) -> pd.DataFrame:
    """Validate an injected job table; raise ValueError naming the column and the problem."""
    missing = [c for c in JOB_COLUMNS if c not in jobs.columns]
    if missing:
        raise ValueError(f"job table lacks column(s) {missing}; expected {list(JOB_COLUMNS)}")
    checks = (
        ("submit_s", jobs["submit_s"] >= t0_s, f">= {t0_s:g} (the warm-up start)"),
        ("run_time_s", jobs["run_time_s"] > 0, "> 0"),
        ("num_nodes", (jobs["num_nodes"] >= 1) & (jobs["num_nodes"] <= n_nodes), f"in 1..{n_nodes}"),
        ("gpu_util", jobs["gpu_util"].between(0.0, 1.0), "in [0, 1]"),
        ("host_util", jobs["host_util"].between(0.0, 1.0), "in [0, 1]"),
    )
    for col, ok, expected in checks:
        if not ok.all():
            row = int(np.flatnonzero(~ok.to_numpy())[0])
            raise ValueError(f"job table row {row}: {col} = {jobs[col].iloc[row].item()!r}, expected {expected}")
    return jobs.sort_values("submit_s", kind="stable").reset_index(drop=True)


#: Most base ticks closed in one vectorised stretch of a block (bounds the stretch's
#: (ticks x Site.COLUMNS) row array and Tier 2's per-period scores).
BLOCK_MAX_TICKS = 256
#: Fewest base ticks (or log sub-ticks, in a fine block) a settled stretch needs to be closed
#: vectorised; shorter ones go tick by tick. The vectorised calls' fixed cost (~150 us) is
#: that of several single ticks: 2 -> 8 took m100_day from ~4.1 to ~4.0 s (medians of 3,
#: docs/performance.md); results are the same either way.
BLOCK_MIN_TICKS = 8
#: Most 100 ms log sub-ticks closed in one fine block (an FFR log window's settled stretch).
FINE_BLOCK_MAX_SUBTICKS = 2560


def _last_index_before(b: float, dt: float, strict: bool) -> int:
    """The largest integer m with ``m * dt < b`` (``<= b`` unless ``strict``) for a whole
    ``dt`` > 0 [s] and a finite ``b`` [s]."""
    m = math.floor(b / dt)
    # the quotient may round across an integer: settle on the exact products (whole numbers)
    while (m * dt >= b) if strict else (m * dt > b):
        m -= 1
    while ((m + 1) * dt < b) if strict else ((m + 1) * dt <= b):
        m += 1
    return m


def _block_times(k: int, t_s: float, n: int, dt: float, win_s: float, limit_s: float, until_s: float,
                 max_ticks: int) -> list[float] | None:
    """The ends of the base ticks k + 1, k + 2, .. of a settled stretch from tick k's end
    ``t_s`` [s]: ``i * dt`` for tick i while i < n, at most ``max_ticks`` of them, each <=
    ``win_s`` (the next log window's start), < ``limit_s`` (the next foreign event) and <
    ``until_s`` (the fleet's settled horizon). None (the caller then goes tick by tick)
    unless ``t_s == k * dt`` for a whole ``dt`` > 0 with every time below 2**53 (then the
    per-tick path's ``t + max(0, t1 - t)`` is exactly ``t1``)."""
    if not (dt > 0 and float(dt).is_integer() and t_s == k * dt and (k + max_ticks + 1) * dt < 2.0**53):
        return None
    t1 = (k + 1) * dt
    if k >= n - 1 or win_s < t1 or not (t1 < limit_s and t1 < until_s):  # not even one tick (often)
        return []
    m = min(n - 1, k + max_ticks)
    if win_s < m * dt:
        m = min(m, _last_index_before(win_s, dt, False))
    if not m * dt < limit_s:
        m = min(m, _last_index_before(limit_s, dt, True))
    if not m * dt < until_s:
        m = min(m, _last_index_before(until_s, dt, True))
    return [i * dt for i in range(k + 1, m + 1)]


class Engine:
    """One simulation run of a scenario, writing its series to ``folder``."""

    def __init__(self, scenario: Scenario, folder: Path, progress: bool = False, jobs: pd.DataFrame | None = None):
        """``jobs`` replaces the scenario's workload source (columns of
        :data:`traces.synthetic.JOB_COLUMNS`, times in s since start); for tests and
        trace replays."""
        sc = scenario
        self.scenario = sc
        self.folder = Path(folder)
        self.progress = progress
        fac = sc.facility
        warmup_s = sc.workload.warmup_h * 3600.0
        self.env = BlockEnvironment(initial_time=-warmup_s)
        if jobs is None:
            try:
                self.workload = build_workload(sc)
            except WorkloadError as exc:
                raise InputDataError(str(exc)) from None
        else:
            self.workload = Workload(assign_flexibility(_checked_jobs(jobs, fac.nodes, -warmup_s), sc))
        self.jobs = jobs = self.workload.jobs
        self.dropped_at_replay: dict[str, int] = {}
        self._trace_running: set[int] = set()
        k = fac.hosts_per_node  # each node slot is one cohort of k identical hosts
        self.fleet = GpuFleet(fac.gpu, gpu_count=np.full(fac.nodes, fac.gpus_per_node * k),
                              host_count=np.full(fac.nodes, float(k)), cap_w=fac.gpu_power_cap_w,
                              host_idle_w=fac.host_idle_w, host_busy_w=fac.host_busy_w, t0_s=-warmup_s,
                              sm_clock_mhz=fac.gpu_sm_clock_mhz)
        first_hour = sc.start.replace(minute=0, second=0, microsecond=0)
        hours = math.ceil(((sc.start - first_hour).total_seconds() + sc.duration_s) / 3600.0) + 1
        # hourly controllers look 24 h back (seasonal-naive) and 24 h ahead (+1 h for the last hour)
        hourly_on = sc.control.tier3 != "none" or sc.control.scheduler != "none"
        self._ci_pre_h = pre = 24 if hourly_on else 0
        total = hours + pre + (26 if hourly_on else 0)
        t_first = first_hour - timedelta(hours=pre)
        if sc.grid.carbon_source == "constant":
            ci = np.full(total, sc.grid.constant_intensity_g_per_kwh)
            cff = np.full(total, sc.grid.constant_carbon_free_fraction)
        elif sc.grid.carbon_source == "file":
            with input_data("grid.carbon_file", sc.grid.carbon_file):
                data, _ = read_ci_file(sc.grid.carbon_file)
                ci, cff = hourly_window(data, t_first, total)
        else:
            ci = synthetic_carbon_intensity(sc.grid.country, t_first, total, sc.seed).to_numpy()
            cff = carbon_free_fraction_from_ci(sc.grid.country, ci)
        self._ci_all, self._cff_all = ci, cff
        self._ci_offset_s = (sc.start - first_hour).total_seconds()
        carbon = CarbonSignal(sc.start, first_hour, ci[pre:pre + hours], cff[pre:pre + hours])
        self.weather = weather = make_weather(sc)
        self._forecast_weather = None
        if hourly_on and sc.weather.model == "climate":
            w = sc.weather
            self._forecast_weather = ClimateWeather(sc.start - timedelta(days=1), sc.duration_s + 3 * 86400.0,
                                                    SITE_CLIMATES[w.site], peak_hour_utc=w.peak_hour_utc,
                                                    depression_swing_fraction=w.depression_swing_fraction)
        cooling = make_cooling_model(sc.cooling.model, sc.cooling.params, fac.design_it_power_w)
        self.frequency, self.activations = make_frequency(sc)
        windows = np.array([(a.trigger_s, a.support_end_s) for a in self.activations]).reshape(-1, 2)
        battery, dispatcher = make_battery(sc, windows)
        heat, demand = make_heat(sc, weather)
        fcr_d = None
        if self.frequency is not None and battery is not None and sc.battery.fcr_d_reserve_kw > 0:
            signal = self.frequency
            fcr_d = lambda t_s: float(fcr_d_up_fraction(signal.at(t_s)))  # noqa: E731
        # [distribution] in a facility run: loss / PF / THD vs total IT power, the IT spread
        # evenly over the circuits (no rack placement here), tabulated once (docs/power.md)
        self.distribution = EvenSpreadLossCurve(sc.distribution.build()) if sc.distribution is not None else None
        self.site = Site(self.fleet, cooling, weather, carbon, heat=heat, heat_demand_w=demand,
                         recoverable_fraction=sc.cooling.params.get("liquid_fraction", 1.0),
                         battery=battery, dispatcher=dispatcher, fcr_d_fraction=fcr_d,
                         distribution=self.distribution)
        self.ffr_support_s = windows
        self.log_windows = np.empty((0, 2))
        if self.activations:
            f = sc.frequency
            self.log_windows = ffr_log_windows([a.trigger_s for a in self.activations], level_hz=f.ffr_level_hz,
                                               support_s=f.ffr_support_s, pre_s=f.log_pre_s, settle_s=f.log_post_s,
                                               post_s=0.0)
        self.counts = JobCounts()
        j = self.jobs
        # a job using fewer GPUs than its nodes hold loads the cohort's GPUs proportionally
        gpu_share = np.minimum(j["num_gpus"].to_numpy() / (j["num_nodes"].to_numpy() * fac.gpus_per_node), 1.0)
        self._gpu_util = j["gpu_util"].to_numpy() * gpu_share
        self._workload = workload_indices(j, sc.workload.class_shares, sc.seed)
        self._host_util = j["host_util"].to_numpy()
        self.queue = BatchQueue(self.env, fac.nodes, j["num_nodes"].to_numpy(), j["run_time_s"].to_numpy(),
                                j["time_limit_s"].to_numpy(), self._job_started, self._job_ended,
                                backfill=sc.workload.scheduler == "easy_backfill", progress=self._progress)
        self._flexible = j["flexible"].to_numpy() if "flexible" in j.columns else np.zeros(len(j), dtype=bool)
        self._deadline_s = (j["deadline_s"].to_numpy() if "deadline_s" in j.columns
                            else j["submit_s"].to_numpy() + j["run_time_s"].to_numpy())
        self.control = (FacilityControl(self) if sc.control.tier2 != "none" or sc.control.ffr_gpu != "none"
                        or hourly_on else None)
        self.co2_it_g = self.co2_facility_g = 0.0
        self.recorder: Recorder | None = None
        self.hosts: HostSeriesRecorder | None = None
        self.window_rows: list[tuple] = []
        #: Block stepping between events (:meth:`try_block`); False forces one SimPy event per
        #: base tick (the equality tests compare the two).
        self.block_stepping = True
        self.blocks = self.block_ticks = 0  # blocks taken, base ticks closed in them
        self.fine_blocks = self.fine_block_subticks = 0  # the same in FFR log windows (100 ms sub-ticks)
        self._block_fn = None

    def _progress(self, node: int) -> tuple[float, float]:
        """(work done on ``node``'s cohort so far [full-speed s], its speed now [-])."""
        f = self.fleet
        f.advance_to(self.env.now)
        return f.progress_of(node), f.speed.item(node)

    # -- workload events -------------------------------------------------------------
    def _job_started(self, i: int, nodes: np.ndarray) -> None:
        self.fleet.set_load(self.env.now, nodes, self._gpu_util[i], self._host_util[i], int(self._workload[i]))
        if self.control is not None:
            self.control.load_changed(nodes)
            self.control.job_started(i, self.env.now)
        if self.env.now >= 0.0:
            self.counts.started += 1

    def _job_ended(self, i: int, nodes: np.ndarray) -> None:
        self._trace_running.discard(i)
        self.fleet.set_load(self.env.now, nodes, 0.0, 0.0)
        if self.control is not None:
            self.control.load_changed(nodes)
        self.counts.completed += 1 if self.env.now >= 0.0 else 0

    def _replay(self):
        """Trace jobs with recorded start times (PM100): start each at its time on the
        lowest free nodes and drive its nodes' power from the trace every sample period."""
        env, wl, q = self.env, self.workload, self.queue
        starts = self.jobs["start_s"].to_numpy()
        for i, t in enumerate(starts):
            if t > env.now:
                yield env.timeout(t - env.now)
            skip_s = env.now - t  # > 0 for jobs that started before the simulated period
            remaining = q.run_time_s[i] - skip_s
            if remaining <= 0:
                continue
            n = q.num_nodes[i]
            if n > q.n_free:
                self.dropped_at_replay["no_free_nodes"] = self.dropped_at_replay.get("no_free_nodes", 0) + 1
                continue
            q.run_time_s[i] = remaining
            if env.now >= 0.0:
                self.counts.submitted += 1
            q.start_now(i, np.flatnonzero(q.free)[:n])
            env.process(self._trace_power(i, q.running_nodes(i), skip_s, wl.sample_period_s))

    def _trace_power(self, i: int, nodes: np.ndarray, skip_s: float, period_s: float):
        env, fleet = self.env, self.fleet
        gpu, host = self.workload.gpu_power_w[i], self.workload.host_power_w[i]
        per_gpu = 1.0 / (nodes.size * self.scenario.facility.gpus_per_node)
        self._trace_running.add(i)
        k = int(skip_s // period_s)
        wait = (k + 1) * period_s - skip_s
        while k < len(gpu) and i in self._trace_running:
            fleet.set_trace_power(env.now, nodes, gpu[k] * per_gpu, host[k] / nodes.size)
            k += 1
            yield env.timeout(wait)
            wait = period_s

    def _arrivals(self):
        env, ctl, q, counts = self.env, self.control, self.queue, self.counts
        # Python floats: the same times, and env.now stays a float (numpy scalars cost more)
        for i, t in enumerate(self.jobs["submit_s"].to_numpy().tolist()):
            if t > env.now:
                yield env.timeout(t - env.now)
            if env.now >= 0.0:
                counts.submitted += 1
            if ctl is None or ctl.on_submit(i, float(t), float(q.run_time_s[i]), float(self._deadline_s[i]),
                                            bool(self._flexible[i])):
                q.submit(i)

    def forecast_weather_c(self, t_s):
        """(dry-bulb, wet-bulb) [°C] the hourly controllers assume at ``t_s`` (the site's
        climatology, prepared a day either side of the run)."""
        if self._forecast_weather is None:
            return self.weather.temperatures_c(t_s)
        return self._forecast_weather.temperatures_c(np.asarray(t_s, dtype=float) + 86400.0)

    def hourly_carbon(self, t_s: float, before_h: int = 0, after_h: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(carbon intensity [g/kWh], carbon-free fraction [-]) of the hours from ``before_h``
        before the one holding ``t_s`` to ``after_h - 1`` after it, as arrays; the prepared
        hours run from 24 h before the run to 24 h after it."""
        i = self._ci_pre_h + math.floor((self._ci_offset_s + t_s) / 3600.0)
        if not (0 <= i - before_h and i + after_h <= self._ci_all.size):
            raise ValueError(f"carbon intensity asked for t={t_s:g} s -{before_h}/+{after_h} h, outside the "
                             "prepared hours")
        return self._ci_all[i - before_h:i + after_h], self._cff_all[i - before_h:i + after_h]

    # -- the base tick ---------------------------------------------------------------
    def _ticks(self, bar):
        env, sc, site, fleet, queue = self.env, self.scenario, self.site, self.fleet, self.queue
        rec, hosts = self.recorder, self.hosts
        dt = sc.base_tick_s
        n = sc.n_ticks
        if env.now < 0.0:
            yield env.timeout(-env.now)  # the warm-up: jobs only, nothing recorded
        site.open_at(0.0)
        self.work0_node_s = fleet.work_node_s
        prev_e = fleet.gpu_energy_j + fleet.host_energy_j if hosts else None
        step = max(1, n // 200)
        wins, w = self.log_windows.tolist(), 0  # [(start, end)] as floats: no numpy per tick
        fine_dt = sc.frequency.log_tick_s if len(wins) else dt
        n_fine = int(round(dt / fine_dt))
        i_ci, i_it, i_fac = (Site.COLUMNS.index(c) for c in ("carbon_intensity_g_per_kwh", "it_power_w",
                                                              "facility_power_w"))
        grid = self._tick_grid_states(n, dt)  # block rows take slices; single ticks, the lists' floats
        grid_f, grid_a = (grid[:, 0].tolist(), grid[:, 1].tolist()) if grid is not None else (None, None)
        n_slots = fleet.n_cohorts
        no_grid = (math.nan, 0.0)

        def book(row, k):
            ci_h = row[i_ci] * dt / 3.6e6
            self.co2_it_g += row[i_it] * ci_h
            self.co2_facility_g += row[i_fac] * ci_h
            rec.append(row + ((grid_f[k - 1], grid_a[k - 1]) if grid is not None else no_grid)
                       + (n_slots - queue.n_free, queue.running, len(queue.waiting)))
            if k % step == 0:
                bar.update(step)

        def book_block(rows, k0):
            """:func:`book` for the rows of ticks ``k0 + 1 ..`` (a ticks x Site.COLUMNS array):
            the same products, the CO2 sums added tick by tick in order, the recorder's rows
            copied as one block (the grid state by a slice, the queue as it stands: nothing
            changes it inside a block), the progress bar by the steps passed."""
            m, n_site = rows.shape
            ci_h = rows[:, i_ci] * dt / 3.6e6
            acc = self.co2_it_g
            for x in (rows[:, i_it] * ci_h).tolist():
                acc += x
            self.co2_it_g = acc
            acc = self.co2_facility_g
            for x in (rows[:, i_fac] * ci_h).tolist():
                acc += x
            self.co2_facility_g = acc
            block = np.empty((m, len(rec.columns)))
            block[:, :n_site] = rows
            if grid is not None:
                block[:, n_site:n_site + 2] = grid[k0:k0 + m]
            else:
                block[:, n_site:n_site + 2] = no_grid
            block[:, n_site + 2:] = (n_slots - queue.n_free, queue.running, len(queue.waiting))
            rec.append_rows(block)
            passed = (k0 + m) // step - k0 // step
            if passed:
                bar.update(step * passed)

        ctl = self.control
        t2 = ctl is not None and ctl.tier2 is not None
        per = ctl.cfg.tier2_period_s if t2 else 0.0
        blocks = self.block_stepping and hosts is None and float(dt).is_integer()
        own = env.own_timeout
        state = {"k": 0, "tick_s": -math.inf, "end_s": -math.inf}

        def try_block():
            """Close the base ticks (and Tier-2 periods) ahead up to the next foreign event in
            a plain loop, without SimPy events: the same calls at the same times as the
            per-tick path. Called by the tick and Tier 2 after their work at ``now``; runs
            when both are done at ``now``. Returns the block's last time, or None."""
            now = env.now
            if state["tick_s"] != now or (t2 and ctl.tier2_done_s != now) or not float(now).is_integer():
                return None
            limit = env.next_foreign_s()
            if not limit > now + dt:
                return None
            i = w_next[0]
            while i < len(wins) and wins[i][1] <= now:
                i += 1
            w_next[0] = i
            win_s = wins[i][0] if i < len(wins) else math.inf
            k0 = k = state["k"]
            t = now
            per = ctl.cfg.tier2_period_s if t2 else 0.0
            while k < n - 1:
                # the times of the ticks ahead, as the per-tick path computes them, up to the
                # first one that would reach the next foreign event, a log window or the end
                # (None off the whole-number grid: the ticks then go one at a time below)
                times = (_block_times(k, t, n, dt, win_s, limit, fleet.can_block_until(), BLOCK_MAX_TICKS)
                         if not t2 or per == dt else None) or []
                if len(times) >= BLOCK_MIN_TICKS:      # a settled stretch: vectorised
                    gs, hs = fleet.advance_block(times)
                    rows = site.close_block(times, gs, hs)
                    if t2:
                        ctl.tier2_block(times)
                    book_block(rows, k)
                    k += len(times)
                    t = times[-1]
                    continue
                # one tick at a time (the fleet moving, or a rise due): the per-tick calls
                t1 = (k + 1) * dt
                if win_s < t1:
                    break
                tn = t + max(0.0, t1 - t)
                if not tn < limit or (t2 and tn != t + per):
                    break
                row = site.close_tick(tn)
                if t2:
                    ctl.tier2_period(tn)
                k += 1
                book(row, k)
                t = tn
            if k == k0:
                return None
            state["k"], state["tick_s"], state["end_s"] = k, t, t
            if t2:
                ctl.tier2_block_end_s = t
            self.blocks += 1
            self.block_ticks += k - k0
            return t

        def fine_block(k, j, w, sub):
            """Block stepping inside FFR log window ``w``: close the 100 ms sub-ticks from
            sub-tick ``j`` of base tick ``k`` on, up to the next foreign event, in one go while
            the fleet is settled, with the per-sub-tick path's times and numbers: each row
            logged, each completed base tick aggregated and booked, Tier 2's periods at the
            base ticks' ends in one compiled call (``tier2_block`` with the sub-intervals).
            ``sub``: the rows of base tick ``k`` closed before. Returns ``(k, j, sub, t_end)``
            of the next sub-tick to close (``j == 1`` and no rows: base tick ``k - 1`` ended the
            block, booked), or None (nothing closed). The tick process then waits to
            ``t_end``; nothing else can run before it."""
            now = env.now
            if k >= n or (t2 and (per != dt or ctl.tier2_done_s != (k - 1) * dt)):  # Tier 2 closed the last period
                return None
            limit = min(env.next_foreign_s(), fleet.can_block_until())
            win_end = wins[w][1]
            times, period_ends, kk, jj, tp = [], [], k, j, now
            while len(times) < FINE_BLOCK_MAX_SUBTICKS:
                if jj > n_fine:   # the next base tick: in this window and not the run's last
                    kk, jj = kk + 1, 1
                    if kk >= n or not win_end > (kk - 1) * dt:
                        break
                # the per-sub-tick path's time: now + max(0, target - now), as SimPy adds it
                tn = tp + max(0.0, (kk - 1) * dt + jj * fine_dt - tp)
                if not tn < limit:
                    break
                last = jj == n_fine   # a base tick's end (booked below), and Tier 2's period's on its time
                times.append(tn)
                period_ends.append(last and tn == kk * dt)
                tp, jj = tn, jj + 1
                if last and not period_ends[-1]:
                    # the last sub-tick off the base tick's time (a log tick that divides the base
                    # tick only to 1e-6): Tier 2's period falls between two sub-ticks; stop here
                    break
            while times and now + (times[-1] - now) != times[-1]:   # the wait to the end must land on it
                times.pop()
                period_ends.pop()
            if len(times) < BLOCK_MIN_TICKS:
                return None
            gs, hs = fleet.advance_block(times)
            rows = site.close_block(times, gs, hs)
            if t2 and any(period_ends):
                periods = [t for t, e in zip(times, period_ends) if e]
                ctl.tier2_block(periods, period_ends)
                ctl.tier2_block_end_s = periods[-1]
            rl = [tuple(r) for r in rows.tolist()]
            for t, r in zip(times, rl):
                self.window_rows.append((t - fine_dt, w, r, t - 0.5 * fine_dt))
            # the base ticks the block completes: the first with the rows closed before it
            # (sub), the whole ones aggregated at once, the rest carried over (sub)
            kk = k
            first = min(n_fine - j + 1, len(times))
            sub = sub + rl[:first]
            if len(sub) == n_fine:
                book(_aggregate_rows(sub), kk)
                state["k"], sub, kk = kk, [], kk + 1
                whole = (len(times) - first) // n_fine
                if whole:
                    for row in _aggregate_blocks(rows[first:first + whole * n_fine].reshape(whole, n_fine, -1)):
                        book(row, kk)
                        state["k"], kk = kk, kk + 1
                sub = rl[first + whole * n_fine:]
            jj = len(sub) + 1
            self.fine_blocks += 1
            self.fine_block_subticks += len(times)
            return kk, jj, sub, times[-1]

        w_next = [0]
        if blocks:
            self._block_fn = try_block
        k = 1
        while k <= n:
            t0, t1 = (k - 1) * dt, k * dt
            while w < len(wins) and wins[w][1] <= t0:
                w += 1
            booked = False
            if w < len(wins) and wins[w][0] < t1:
                # inside an FFR log window: n_fine sub-ticks, each logged, aggregated to the base
                # row; settled stretches between events as fine blocks
                sub = []
                j = 1
                while j <= n_fine:
                    fb = fine_block(k, j, w, sub) if blocks and n_fine > 1 else None
                    if fb is not None:
                        k, j, sub, t_end = fb
                        yield own(t_end - env.now)
                        if j == 1 and not sub:   # the block ended with base tick k - 1 (booked)
                            k, booked = k - 1, True
                            break
                        t0 = (k - 1) * dt
                        continue
                    yield own(max(0.0, t0 + j * fine_dt - env.now))
                    r = site.close_tick(env.now)
                    sub.append(r)
                    # grid state (frequency, FFR flag) at t_q filled in by _window_grid_states
                    self.window_rows.append((env.now - fine_dt, w, r, env.now - 0.5 * fine_dt))
                    j += 1
                if not booked:
                    row = _aggregate_rows(sub)
            else:
                yield own(max(0.0, t1 - env.now))
                if env.now <= state["end_s"]:   # this stretch was closed by a block Tier 2 ran
                    k = state["k"] + 1
                    continue
                row = site.close_tick(env.now)
            if not booked:
                book(row, k)
            if hosts is not None:
                e = fleet.gpu_energy_j + fleet.host_energy_j
                hosts.append((e - prev_e) / dt)
                prev_e = e
            state["k"], state["tick_s"] = k, env.now
            if blocks and try_block() is not None:
                k = state["k"]
            k += 1
        self._block_fn = None
        bar.update(n - bar.n)
        site.close_run()

    def try_block(self) -> float | None:
        """Block stepping (docs/performance.md): close the base ticks and Tier-2 periods up
        to the next foreign event now, if the tick and Tier 2 are both done at this instant;
        the block's last time, or None. Tier 2's process calls it after each period."""
        return self._block_fn() if self._block_fn is not None else None

    def _grid_states_at(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(frequency [Hz], 1.0 while an FFR support period is in force else 0.0) at the times
        ``q`` [s], vectorised with the arithmetic of ``FrequencySignal.at``'s scalar path
        (bit-identical to it); raises ValueError, naming the range, outside the trace."""
        t, f = self.frequency.times_s, self.frequency.freq_hz
        lo, hi = self.frequency.covered()
        if q.size and not (q.min() >= lo and q.max() <= hi):
            self.frequency.at(q)  # raises, naming the first time outside the range
        if t.size > 1:
            i = np.clip(np.searchsorted(t, q, side="right") - 1, 0, t.size - 2)
            w = (q - t[i]) / (t[i + 1] - t[i])
            freq = f[i] + w * (f[i + 1] - f[i])
        else:
            freq = np.full(q.size, float(f[0]))
        sup = self.ffr_support_s
        if len(sup):
            j = np.searchsorted(sup[:, 0], q, side="right") - 1
            active = np.where((j >= 0) & (q < sup[np.maximum(j, 0), 1]), 1.0, 0.0)
        else:
            active = np.zeros(q.size)
        return freq, active

    def _tick_grid_states(self, n: int, dt: float) -> np.ndarray | None:
        """The grid state at every base tick's midpoint ``(k - 1) dt + dt / 2``, k = 1..n: an
        (n, 2) array of (frequency [Hz], FFR flag) rows (None without a frequency trace)."""
        if self.frequency is None:
            return None
        freq, active = self._grid_states_at(np.arange(n, dtype=float) * dt + 0.5 * dt)
        return np.stack([freq, active], axis=1)

    def _window_grid_states(self) -> tuple[np.ndarray, np.ndarray]:
        """The grid state at each 100 ms log row's midpoint (the rows' fourth field)."""
        return self._grid_states_at(np.array([r[3] for r in self.window_rows], dtype=float))

    def write_windows(self) -> Path | None:
        """Write the FFR activation log (ffr_windows.parquet) if there was any."""
        if not len(self.log_windows):
            return None
        idx = [Site.COLUMNS.index(c) for c in WINDOW_COLUMNS[:6]]
        t = np.array([r[0] for r in self.window_rows])
        ts = pd.to_datetime(self.scenario.start) + pd.to_timedelta(np.round(t * 1e9).astype(np.int64), unit="ns")
        data = {"timestamp": ts, "window": np.array([r[1] for r in self.window_rows], dtype=np.int64)}
        for c, i in zip(WINDOW_COLUMNS[:6], idx):
            data[c] = np.array([r[2][i] for r in self.window_rows])
        data["frequency_hz"], data["ffr_active"] = self._window_grid_states()
        path = self.folder / "ffr_windows.parquet"
        pd.DataFrame(data).to_parquet(path, index=False)
        return path

    def run(self) -> None:
        """Simulate the whole scenario; writes timeseries.parquet (and hosts.parquet)."""
        sc = self.scenario
        self.recorder = Recorder(self.folder / "timeseries.parquet", COLUMNS, set(WORKLOAD_COLUMNS),
                                 sc.start, sc.base_tick_s, sc.n_ticks)
        if sc.outputs.per_host_series:
            self.hosts = HostSeriesRecorder(self.folder / "hosts.parquet", sc.facility.nodes, sc.start, sc.base_tick_s)
        ok = False
        try:
            with tqdm(total=sc.n_ticks, desc=f"gridtwin {sc.name}", unit="tick", unit_scale=True,
                      disable=not self.progress, mininterval=0.5, leave=False) as bar:
                self.env.process(self._replay() if self.workload.recorded_starts else self._arrivals())
                ticks = self.env.process(self._ticks(bar))
                self.env.run(until=ticks)
            self.write_windows()
            if self.control is not None:
                self.control.write_hourly(self.folder)
            ok = True
        finally:
            for r in (self.recorder, self.hosts):
                if r is not None:
                    r.close() if ok else r.abort()

    @property
    def end(self):
        return self.scenario.start + timedelta(seconds=self.scenario.duration_s)
