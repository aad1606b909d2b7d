"""Power study (issue 8): AI-training swings through distribution, cooling, battery and smoothing.

A scenario with a ``[training]`` table runs here instead of the facility engine. At a
0.1 s (or finer) base tick:

* **IT demand**: constant critical and base loads plus synchronous training jobs
  (:class:`traces.training.TrainingPowerTrace`), each tick's exact mean power;
* **placement**: each job goes on the fewest circuits (racks) that carry its peak
  without overloading any element (:func:`place_workloads`; DCPI §6.1.3 b);
* **shedding** (DCPI §6.2.1 d): at every fault (``[[faults]]``), grid emergency signal
  (``[[grid_events]]``), job start and end, the plan is redone from scratch with
  :meth:`~twin.facility.distribution.Distribution.shed_scopes` and
  :func:`~twin.facility.distribution.plan_load_shedding` on the workloads' peak powers
  (critical never shed); every change is logged with its reason. These decisions depend
  only on the topology and the peaks, so they are made before the tick loop;
* **distribution**: losses, power factor and THD at the meter per tick
  (:meth:`~twin.facility.distribution.Distribution.compute`, vectorised per topology
  segment; recomputed for a tick whose IT the smoothing controller changed);
* **cooling**: the scenario's plant stepped every tick (:mod:`twin.facility.cooling_plant`)
  with the racks' input power as heat; its mechanical cooling staged in units with a start
  delay (:class:`CoolingStager`);
* **battery and smoothing** at the meter (:func:`twin.control.smoothing.smooth_step`,
  :class:`twin.facility.battery.Battery`);
* **preparation** (DCPI §5.1.2): an announced job gets cooling pre-staged and the battery
  pre-charged (:func:`twin.control.smoothing.prepare_for_workload`).

Every run simulates three variants on the same inputs: smoothing on (with preparation),
smoothing off (battery idle, cooling prepared) and smoothing on without preparation.

Energy balance per variant, every term from its own model:
``grid import = IT + distribution losses (PSU, PDU, UPS, transformer) + cooling
electricity + battery stored-energy change + battery losses``, to 1e-6 relative, or
:class:`PowerStudyBalanceError`.

Assumptions (also in ``summary.json`` and ``docs/power.md``): cooling and other mechanical
loads hang on the meter directly (not through the UPS tree) and their power quality is not
modelled; UPS and transformer losses are not cooled by the plant (electrical rooms);
GPU floors and throttling act on the running training jobs in proportion to their power.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from traces.training import TrainingPowerTrace
from twin.control.admission import FacilityState
from twin.control.smoothing import (
    DCPI_EVENT_DELTA_W,
    DCPI_EVENT_WINDOW_S,
    BatteryLimits,
    SmoothingParams,
    SmoothingState,
    count_destabilising_events,
    max_ramp_w_per_s,
    prepare_for_workload,
    smooth_step,
)
from twin.facility.balance import EnergyBalanceError, EnergyLedger
from twin.facility.battery import Battery
from twin.facility.cooling_plant import (
    AirChillerPlant,
    DlcWarmWaterPlant,
    make_cooling_model,
)
from twin.facility.distribution import Distribution, ShedWorkload, plan_load_shedding
from twin.sim.engine import make_weather

__all__ = [
    "BALANCE_RTOL",
    "CoolingStager",
    "PowerStudyBalanceError",
    "StudyWorkload",
    "circuit_it_headroom_w",
    "facility_state_for_admission",
    "place_workloads",
    "plan_shedding",
    "run_power_study",
    "tick_energy_j",
]

J_PER_MWH = 3.6e9
J_PER_KWH = 3.6e6
METER_WINDOW_S = 0.1          # DCPI §7.1.2 a: 100 ms power measurement
BALANCE_RTOL = 1e-6
#: NREL ATB 2024 moderate, 4 h utility Li-ion, 2025 capex, 2022$ (REFERENCE.md §8.6).
BESS_CAPEX_USD_PER_KWH = 388.0
#: ~1 cycle a day over the 15-year ReEDS life (REFERENCE.md §8.6, derived).
BESS_LIFE_FULL_CYCLES = 5500.0
#: End of life at 80 % of the nominal capacity (assumption, common warranty figure; unsourced).
END_OF_LIFE_CAPACITY_FRACTION = 0.8
#: Stage down only after the load has needed fewer units for this long (assumption).
STAGE_DOWN_AFTER_S = 900.0
#: Request one more unit while the supply is this far above its setpoint (assumption).
OVERSHOOT_TRIGGER_K = 0.5
#: The meter before a grid emergency and at its deadline: means over this long (two 1.5 s
#: iterations, so the default training swing averages out; assumption).
GRID_EVENT_WINDOW_S = 3.0
#: After an announced start, preparation holds (no stage-down, SoC target kept) this long.
PREPARATION_HOLD_S = 600.0

ASSUMPTIONS = (
    "cooling and mechanical loads are fed at the meter, not through the UPS tree; their PF/THD is not modelled",
    "UPS, PDU and transformer losses are not cooled by the modelled plant (electrical rooms); rack PSU losses are",
    "shedding plans use each workload's peak power (conservative); shed work resumes when every limit holds again",
    "GPU floors and throttling act on the running training jobs in proportion to their power",
    (f"battery capex {BESS_CAPEX_USD_PER_KWH:g} USD/kWh (ATB 2024 moderate 4 h, 2025, 2022$; REFERENCE.md §8.6); "
     f"ageing cost = capacity fade / {1 - END_OF_LIFE_CAPACITY_FRACTION:g} x capex (end of life at "
     f"{END_OF_LIFE_CAPACITY_FRACTION:.0%}, assumption); throughput cost = capex x EFC / "
     f"{BESS_LIFE_FULL_CYCLES:g} (REFERENCE.md §8.6 life cycles)"),
    ("BLAST-Lite fade starts from a fresh battery, whose power law front-loads fade: a short run overstates the "
     "long-run ageing rate"),
    ("mechanical cooling is staged in equal units with a start delay; pre-staging requests them cooling_lead_s "
     "before an announced start"),
    "PUE = (grid import - battery stored-energy change) / IT energy",
)


class PowerStudyBalanceError(EnergyBalanceError):
    """A power-study variant's energy did not balance to :data:`BALANCE_RTOL`."""


# ------------------------------------------------------------------ workloads


@dataclass(frozen=True)
class StudyWorkload:
    """A workload of the study: constant (critical, base) or a training job.

    ``peak_w`` [W] IT power at peak (the constant power for constant loads);
    ``[start_s, end_s)`` when it runs; ``announce_s`` its announcement (None: unannounced).
    """

    workload_id: str
    priority: str
    kind: str  # "critical" | "base" | "training"
    peak_w: float
    start_s: float = 0.0
    end_s: float = math.inf
    announce_s: float | None = None
    racks: tuple = ()
    trace: TrainingPowerTrace | None = None


def tick_energy_j(trace: TrainingPowerTrace, t0_s: float, dt_s: float, n: int) -> np.ndarray:
    """Exact energy of a training job in each of ``n`` ticks from ``t0_s`` [J].

    The power is piecewise linear between its knots (:meth:`TrainingPowerTrace.knots_s`),
    so the trapezoid rule over knots and tick boundaries is exact; vectorised.
    """
    edges = t0_s + dt_s * np.arange(n + 1)
    if trace.params.edge_ramp_s == 0.0:
        return trace.energy_j(edges[:-1], edges[1:])
    knots = trace.knots_s(edges[0], edges[-1])
    t = np.union1d(edges, knots)
    p = trace.power_w(t)
    cum = np.concatenate(([0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(t))))
    return np.diff(cum[np.searchsorted(t, edges)])


def _rack_loads(workloads, powers: dict) -> dict:
    """Rack IT loads [W] from each workload's power (spread equally over its racks)."""
    out: dict = {}
    for w in workloads:
        p = powers.get(w.workload_id, 0.0)
        for r in w.racks:
            out[r] = out.get(r, 0.0) + p / len(w.racks)
    return out


def place_workloads(dist: Distribution, fixed: list, jobs: list) -> dict:
    """Racks for each job: the fewest circuits, most headroom first, that carry it at peak.

    ``fixed`` workloads already have racks; each job in ``jobs`` (in order) goes on the
    ``k`` racks with the most :meth:`Distribution.circuit_headroom_w` for the smallest ``k``
    at which no element is overloaded with every placed workload at its peak (DCPI
    §6.1.3 b: placement respects circuit capacity). Raises ``ValueError`` if a job fits
    nowhere. Returns ``{workload_id: racks}``.
    """
    placed = list(fixed)
    out = {}
    for job in jobs:
        flows = dist.compute(_rack_loads(placed, {w.workload_id: w.peak_w for w in placed}))
        head = {r: float(dist.circuit_headroom_w(r, flows)) for r in dist.racks}
        order = sorted(dist.racks, key=lambda r: (-head[r], dist.racks.index(r)))
        for k in range(1, len(order) + 1):
            trial = dataclasses.replace(job, racks=tuple(sorted(order[:k], key=dist.racks.index)))
            loads = _rack_loads(placed + [trial], {w.workload_id: w.peak_w for w in placed + [trial]})
            if not dist.compute(loads).overloaded:
                placed.append(trial)
                out[job.workload_id] = trial.racks
                break
        else:
            raise ValueError(f"job {job.workload_id!r} ({job.peak_w / 1e6:.6g} MW peak) cannot be placed: every "
                             f"set of circuits overloads an element with the other workloads at their peaks")
    return out


def circuit_it_headroom_w(dist: Distribution, rack_it_w: dict, rack: str, rtol: float = 1e-9) -> float:
    """Extra IT (DC) power ``rack`` can take before any element is overloaded [W].

    Exact: bisection on :meth:`Distribution.compute` between 0 and the rack's AC-side
    :meth:`Distribution.circuit_headroom_w` (an upper bound: PSU and upstream losses only
    add to the increment). 0 for a dead or already overloaded rack.
    """
    loads = {r: float(v) for r, v in rack_it_w.items()}
    base = dist.compute(loads)
    if base.overloaded or rack not in base.alive:
        return 0.0
    hi = max(float(dist.circuit_headroom_w(rack, base)), 0.0)
    lo = 0.0

    def fits(x):
        trial = dict(loads)
        trial[rack] = trial.get(rack, 0.0) + x
        return not dist.compute(trial).overloaded

    if fits(hi):
        return hi
    while hi - lo > rtol * max(hi, 1.0):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def facility_state_for_admission(dist: Distribution, rack_it_w: dict, *, start_s: float, step_s: float,
                                 headroom_w, ci_forecast_g_per_kwh=None) -> FacilityState:
    """A :class:`twin.control.admission.FacilityState` whose circuit headroom comes from ``dist``.

    ``circuit_headroom_w[rack]`` is :func:`circuit_it_headroom_w` with the racks loaded
    at ``rack_it_w`` [W]: the IT power a workload announced on that circuit may draw
    (admission compares IT-side peaks with it), so an approval never overloads a circuit.
    """
    circuits = {r: circuit_it_headroom_w(dist, rack_it_w, r) for r in dist.racks}
    return FacilityState(start_s, step_s, np.asarray(headroom_w, dtype=float), circuits, ci_forecast_g_per_kwh)


# ------------------------------------------------------------------ shedding


@dataclass
class ShedPlan:
    """Result of :func:`plan_shedding`."""

    on: dict            # workload_id -> bool array (n,): served (running and not shed)
    segments: list      # (k0, k1, frozenset of failed elements)
    log: list           # dicts: t_s, workload_id, priority, power_w, action, scope, reason
    switch_events: list  # dicts: t_s, element, action, reason
    grid_limits: list   # dicts per grid event: t_s, limit_w, reduction_w, ...


def plan_shedding(make_dist, workloads: list, faults, grid_events, dt_s: float, n: int) -> ShedPlan:
    """Decide, at every event, which workloads are shed (DCPI §6.2.1 d), and the topology segments.

    ``make_dist()`` returns a fresh, fault-free :class:`Distribution`. Events: faults
    (fail/restore), grid emergency start and end, job start and end. At each, the plan is
    made from scratch for the running workloads at their peak power: every overloaded
    element, and the meter under an active grid emergency (limit = meter power of the work
    served just before the signal minus the reduction asked), becomes a shedding scope;
    :func:`plan_load_shedding` sheds lowest priority first, critical never. Only changes
    are logged (shed, insufficient, resume), each with its cause.
    """
    dist = make_dist()
    horizon = n * dt_s
    ev = []
    for i, f in enumerate(faults):
        ev.append((f.t_s, 0, i, "fault", f))
    for i, g in enumerate(grid_events):
        ev.append((g.t_s, 1, i, "grid_start", g))
        if g.t_s + g.duration_s < horizon:
            ev.append((g.t_s + g.duration_s, 1, i, "grid_end", g))
    for i, w in enumerate(workloads):
        if 0.0 < w.start_s < horizon:
            ev.append((w.start_s, 2, i, "start", w))
        if w.end_s < horizon:
            ev.append((w.end_s, 2, i, "end", w))
    ev.sort(key=lambda e: e[:3])
    by_id = {w.workload_id: w for w in workloads}
    peaks = {w.workload_id: w.peak_w for w in workloads}
    active_limits: dict = {}
    shed: set = set()
    log, switches, limits = [], [], []
    segments = []
    on = {w.workload_id: np.zeros(n, dtype=bool) for w in workloads}

    def k_of(t):
        return min(n, max(0, math.ceil(t / dt_s - 1e-9)))

    def running(t):
        return [w for w in workloads if w.start_s <= t < w.end_s]

    def replan(t, cause):
        nonlocal shed
        run = running(t)
        loads = _rack_loads(run, peaks)
        flows = dist.compute(loads)
        limit = min(active_limits.values()) if active_limits else None
        scopes = dist.shed_scopes(flows, loads, limit)
        decisions = plan_load_shedding([ShedWorkload(w.workload_id, w.priority, w.peak_w, w.racks) for w in run],
                                       scopes, t, cause)
        new = {d.workload_id for d in decisions if d.action == "shed"}
        for d in decisions:
            if d.action == "insufficient" or d.workload_id not in shed:
                log.append(dict(d.__dict__))
        run_ids = {w.workload_id for w in run}
        for wid in sorted((shed - new) & run_ids):
            w = by_id[wid]
            log.append({"t_s": float(t), "workload_id": wid, "priority": w.priority, "power_w": w.peak_w,
                        "action": "resume", "scope": "",
                        "reason": f"{cause}: every capacity limit holds with {wid} back at its peak "
                                  f"{w.peak_w:.6g} W; resumed"})
        shed = new & run_ids

    k_prev, t_prev = 0, 0.0
    replan(0.0, "study start")
    for t, _, i, kind, obj in ev + [(horizon, 9, 0, "horizon", None)]:
        k = k_of(t)
        served = [w for w in running(t_prev) if w.workload_id not in shed]
        for w in served:  # the state decided at t_prev holds until this event
            on[w.workload_id][k_prev:k] = True
        if k > k_prev:
            segments.append((k_prev, k, frozenset(dist.failed)))
        k_prev, t_prev = k, t
        if kind == "horizon":
            break
        if kind == "fault":
            why = obj.reason or f"{obj.element} {'failure' if obj.action == 'fail' else 'restored'}"
            (dist.fail if obj.action == "fail" else dist.restore)(obj.element, t, why)
            switches.append({"t_s": float(t), "element": obj.element, "action": obj.action, "reason": why})
            cause = f"{obj.element} {'failure' if obj.action == 'fail' else 'restoration'} ({why})"
        elif kind == "grid_start":
            loads = _rack_loads([w for w in running(t) if w.workload_id not in shed], peaks)
            meter_w = float(dist.compute(loads).meter_w)
            lim = max(meter_w - obj.reduction_mw * 1e6, 0.0)
            active_limits[i] = lim
            limits.append({"t_s": obj.t_s, "reduction_w": obj.reduction_mw * 1e6, "duration_s": obj.duration_s,
                           "deadline_s": obj.deadline_s, "planning_meter_w": meter_w, "limit_w": lim,
                           "reason": obj.reason})
            cause = (f"grid emergency signal: reduce import by {obj.reduction_mw:g} MW for {obj.duration_s:g} s"
                     + (f" ({obj.reason})" if obj.reason else ""))
        elif kind == "grid_end":
            active_limits.pop(i, None)
            cause = f"grid emergency signal of t = {obj.t_s:g} s ended"
        else:
            cause = f"job {obj.workload_id} {'starts' if kind == 'start' else 'ends'}"
        replan(t, cause)
    return ShedPlan(on, segments, log, switches, limits)


# ------------------------------------------------------------------ cooling staging


class CoolingStager:
    """Stages a plant's mechanical cooling in equal units with a start delay.

    ``air_chiller``: its chiller capacity; ``dlc_warm_water``: its trim chiller and its
    air-side plant's chillers; ``paper_eq4``: nothing to stage. Units needed for a heat
    ``Q``: ``ceil(units * Q (1 + margin) / Q_ref)`` with ``Q_ref`` the installed chiller
    reference capacity (air_chiller) or the design IT power (dlc_warm_water). A request
    comes online ``start_delay_s`` later; one more unit is requested while the supply runs
    > 0.5 K above its setpoint; units are released after 15 min of lower need, never during
    a preparation hold. All assumptions (docs/power.md).
    """

    def __init__(self, plant, units: int, start_delay_s: float, margin: float):
        self.units, self.delay, self.margin = int(units), float(start_delay_s), float(margin)
        self.targets = []
        if isinstance(plant, AirChillerPlant):
            self.targets.append((plant, "chiller_reference_capacity_w", plant.chiller_reference_capacity_w))
            self.q_ref_w = plant.chiller_reference_capacity_w
            self.setpoint_c = plant.params.chw_supply_c
        elif isinstance(plant, DlcWarmWaterPlant):
            self.targets.append((plant, "trim_capacity_w", plant.trim_capacity_w))
            if plant.air is not None:
                self.targets.append((plant.air, "chiller_reference_capacity_w",
                                     plant.air.chiller_reference_capacity_w))
            self.q_ref_w = plant.design_it_power_w
            self.setpoint_c = plant.params.supply_c
        else:
            self.q_ref_w = math.inf
            self.setpoint_c = math.nan
        self.on = self.units
        self.pending: list = []
        self.hold_until = -math.inf
        self.low_since: float | None = None

    def needed(self, heat_w: float) -> int:
        x = self.units * heat_w * (1.0 + self.margin) / self.q_ref_w
        return min(self.units, max(1, math.ceil(x - 1e-9)))

    def _apply(self):
        for obj, attr, installed in self.targets:
            setattr(obj, attr, installed * self.on / self.units)

    def start(self, heat_w: float) -> None:
        self.on = self.needed(heat_w)
        self._apply()

    def _committed(self) -> int:
        return max([self.on] + [n for _, n in self.pending])

    def request(self, t_s: float, n: int) -> None:
        n = min(n, self.units)
        if n > self._committed():
            self.pending.append((t_s + self.delay, n))

    def prestage(self, t_s: float, heat_w: float, hold_until_s: float) -> None:
        self.request(t_s, self.needed(heat_w))
        self.hold_until = max(self.hold_until, hold_until_s)

    def update(self, t_s: float, heat_w: float, supply_c: float) -> None:
        """Once per tick, before the plant steps."""
        if not self.targets:
            return
        ready = [p for p in self.pending if t_s >= p[0] - 1e-9]
        if ready:
            self.on = max([self.on] + [n for _, n in ready])
            self.pending = [p for p in self.pending if p not in ready]
            self._apply()
        need = self.needed(heat_w)
        if need > self._committed():
            self.request(t_s, need)
        elif supply_c - self.setpoint_c > OVERSHOOT_TRIGGER_K and not self.pending and self.on < self.units:
            self.request(t_s, self.on + 1)
        if need < self.on and t_s >= self.hold_until and not self.pending:
            self.low_since = t_s if self.low_since is None else self.low_since
            if t_s - self.low_since >= STAGE_DOWN_AFTER_S:
                self.on, self.low_since = need, None
                self._apply()
        else:
            self.low_since = None


# ------------------------------------------------------------------ inputs


@dataclass
class StudyInputs:
    """Everything the variants share (built once by :func:`build_inputs`)."""

    sc: object
    dt_s: float
    n: int
    t_s: np.ndarray
    workloads: list
    shed: ShedPlan
    dists: dict          # frozenset(failed) -> Distribution
    seg_of_tick: np.ndarray
    rack_it: dict        # rack -> (n,) served IT [W]
    rack_train: dict     # rack -> (n,) served training IT [W]
    train_it: np.ndarray
    train_room: np.ndarray  # training headroom to peak (floor can add up to this) [W]
    it_demand: np.ndarray   # IT demand of all running workloads (shedding ignored) [W]
    it: np.ndarray
    meter: np.ndarray
    loss: np.ndarray
    heat: np.ndarray
    pf: np.ndarray
    thd: np.ndarray
    unserved: np.ndarray
    loss_by_kind: dict
    db_c: np.ndarray
    wb_c: np.ndarray


def build_inputs(sc) -> StudyInputs:
    """Traces, placement, shedding plan and the distribution flows of the demand."""
    tr, dt, n = sc.training, sc.base_tick_s, sc.n_ticks
    proto = sc.distribution.build()
    everywhere = tuple(proto.racks)
    fixed = []
    if tr.critical_it_mw > 0:
        fixed.append(StudyWorkload("critical", "critical", "critical", tr.critical_it_mw * 1e6, racks=everywhere))
    if tr.base_it_mw > 0:
        fixed.append(StudyWorkload("base", tr.base_priority, "base", tr.base_it_mw * 1e6, racks=everywhere))
    jobs = []
    for j in tr.jobs:
        params = j.power_params(end_s=math.inf)
        end = params.end_s
        jobs.append(StudyWorkload(j.name, j.priority, "training", j.peak_mw * 1e6, j.start_s, end,
                                  (j.start_s - j.announce_lead_s) if j.announce_lead_s > 0 else None,
                                  trace=TrainingPowerTrace(params)))
    racks = place_workloads(proto, fixed, jobs)
    jobs = [dataclasses.replace(w, racks=racks[w.workload_id]) for w in jobs]
    workloads = fixed + jobs
    plan = plan_shedding(sc.distribution.build, workloads, sc.faults, sc.grid_events, dt, n)

    power = {}
    for w in workloads:
        if w.trace is None:
            p = np.where((np.arange(n) * dt >= w.start_s) & (np.arange(n) * dt < w.end_s), w.peak_w, 0.0)
        else:
            p = tick_energy_j(w.trace, 0.0, dt, n) / dt
        power[w.workload_id] = p
    it_demand = sum(power.values())
    rack_it = {r: np.zeros(n) for r in proto.racks}
    rack_train = {r: np.zeros(n) for r in proto.racks}
    train_it, train_room = np.zeros(n), np.zeros(n)
    for w in workloads:
        served = power[w.workload_id] * plan.on[w.workload_id]
        for r in w.racks:
            rack_it[r] += served / len(w.racks)
            if w.kind == "training":
                rack_train[r] += served / len(w.racks)
        if w.kind == "training":
            train_it += served
            train_room += np.where(plan.on[w.workload_id], w.peak_w - power[w.workload_id], 0.0)

    dists, seg_of_tick = {}, np.zeros(n, dtype=np.int64)
    arrays = {k: np.zeros(n) for k in ("it", "meter", "loss", "heat", "pf", "thd", "unserved")}
    loss_by_kind: dict = {}
    for si, (k0, k1, failed) in enumerate(plan.segments):
        if failed not in dists:
            d = sc.distribution.build()
            for e in sorted(failed):
                d.fail(e, k0 * dt, "segment")
            dists[failed] = d
        d = dists[failed]
        seg_of_tick[k0:k1] = si
        fl = d.compute({r: rack_it[r][k0:k1] for r in d.racks})
        arrays["it"][k0:k1] = fl.it_w
        arrays["meter"][k0:k1] = fl.meter_w
        arrays["loss"][k0:k1] = fl.total_loss_w
        arrays["heat"][k0:k1] = sum(fl.power_in_w[r] for r in d.racks)
        arrays["pf"][k0:k1] = fl.power_factor_meter
        arrays["thd"][k0:k1] = fl.thd_meter
        arrays["unserved"][k0:k1] = fl.unserved_it_w
        for name, v in fl.loss_w.items():
            kind = d.elements[name].kind
            loss_by_kind[kind] = loss_by_kind.get(kind, 0.0) + float(np.sum(v)) * dt
    weather = make_weather(sc)
    t_s = np.arange(n) * dt
    db, wb = weather.temperatures_c(t_s + 0.5 * dt)
    db, wb = np.asarray(db, dtype=float), np.minimum(np.asarray(wb, dtype=float), np.asarray(db, dtype=float))
    return StudyInputs(sc, dt, n, t_s, workloads, plan, dists, seg_of_tick, rack_it, rack_train, train_it,
                       train_room, it_demand, arrays["it"], arrays["meter"], arrays["loss"], arrays["heat"],
                       arrays["pf"], arrays["thd"], arrays["unserved"], loss_by_kind, db, wb)


# ------------------------------------------------------------------ one variant


def _smoothing_params(sm) -> SmoothingParams:
    return SmoothingParams(
        max_ramp_w_per_s=sm.max_ramp_mw_per_s * 1e6, lowpass_s=sm.lowpass_s, target_soc=sm.target_soc,
        soc_restore_s=sm.soc_restore_s, floor_w=sm.floor_mw * 1e6,
        gpu_ramp_down_w_per_s=math.nan if sm.gpu_ramp_down_mw_per_s is None else sm.gpu_ramp_down_mw_per_s * 1e6,
        throttle=sm.throttle, min_it_w=0.0)


def _make_battery(sc) -> Battery | None:
    b = sc.battery
    if b.model == "none":
        return None
    return Battery(b.capacity_kwh, b.max_charge_kw, b.max_discharge_kw, soc_min=b.soc_min, soc_max=b.soc_max,
                   initial_soc=b.initial_soc, round_trip_efficiency=b.round_trip_efficiency, temp_c=b.temp_c)


def simulate_variant(inp: StudyInputs, *, smoothing: bool, prepare: bool) -> dict:
    """Run the tick loop for one variant; returns its series, battery, plans and ledger."""
    sc, dt, n = inp.sc, inp.dt_s, inp.n
    tr = sc.training
    plant = make_cooling_model(sc.cooling.model, sc.cooling.params, sc.facility.design_it_power_w)
    stager = CoolingStager(plant, tr.chiller_units, tr.chiller_start_delay_s, tr.staging_margin)
    stager.start(inp.heat[0])
    if hasattr(plant, "settle"):
        plant.settle(float(inp.heat[0]), float(inp.db_c[0]), float(inp.wb_c[0]))
    cool_prev = copy.deepcopy(plant).step(dt, float(inp.heat[0]), float(inp.db_c[0]),
                                          float(inp.wb_c[0])).cooling_power_w
    bat = _make_battery(sc)
    base_params = _smoothing_params(sc.smoothing)
    params = base_params
    state = SmoothingState.steady(float(inp.meter[0]) + cool_prev)
    cap_j = bat.capacity_j if bat is not None else math.inf

    # preparation schedule: announcement ticks of announced jobs
    announce = {}
    for w in inp.workloads:
        if w.kind == "training" and w.announce_s is not None:
            announce.setdefault(min(n - 1, max(0, math.ceil(max(w.announce_s, 0.0) / dt - 1e-9))), []).append(w)
    actions: dict = {}   # tick -> list of callables
    soc_targets: list = []  # (t_from, t_until, soc)
    plans = []

    out = {k: np.zeros(n) for k in ("grid", "bat", "soc", "floor", "throttle", "it", "meter", "loss", "heat",
                                    "cool", "supply", "pf", "thd", "units", "excess")}
    stored_j = bat_loss_j = 0.0
    meter_dem, heat_dem = inp.meter, inp.heat
    supply_prev = stager.setpoint_c
    for k in range(n):
        t = k * dt
        if prepare and k in announce:
            for w in announce[k]:
                # the job's step at the meter and in rack heat: its peak added to the present loads
                d = inp.dists[inp.shed.segments[inp.seg_of_tick[k]][2]]
                now = {r: inp.rack_it[r][k] for r in d.racks}
                fl = d.compute({r: now[r] + (w.peak_w / len(w.racks) if r in w.racks else 0.0) for r in d.racks})
                p_meter = float(fl.meter_w) - meter_dem[k]
                heat_w = float(sum(fl.power_in_w[r] for r in d.racks)) - heat_dem[k]
                ratio = p_meter / w.peak_w
                tp = w.trace.params
                swing_j = tp.peak_power_w * tp.swing_fraction * tp.period_s * (1 - tp.compute_duty) * 0.5 * ratio
                if bat is not None:
                    plan = prepare_for_workload(
                        t, max(w.start_s, t), p_meter, max_ramp_w_per_s=base_params.max_ramp_w_per_s,
                        soc=bat.soc, capacity_j=bat.capacity_j, soc_min=bat.soc_min, soc_max=bat.soc_max,
                        max_charge_w=bat.max_charge_w, charge_efficiency=bat.charge_efficiency,
                        discharge_efficiency=bat.discharge_efficiency, swing_energy_j=swing_j,
                        cooling_lead_s=tr.cooling_lead_s, cooling_w=heat_w)
                    plans.append({"workload_id": w.workload_id, "announce_t_s": t, "start_t_s": w.start_s,
                                  "feasible": plan.feasible, "reason": plan.reason,
                                  "soc_target": plan.soc_target, "start_energy_mwh": plan.start_energy_j / J_PER_MWH,
                                  "steps": [dataclasses.asdict(s) for s in plan.steps]})
                    for s in plan.steps:
                        if s.action == "charge_to_soc":
                            soc_targets.append((s.t_s, w.start_s + PREPARATION_HOLD_S, s.value))
                cool_t = max(w.start_s - tr.cooling_lead_s, t)
                kc = min(n - 1, math.ceil(cool_t / dt - 1e-9))
                actions.setdefault(kc, []).append((heat_w, w.start_s + PREPARATION_HOLD_S))
        for heat_w, hold in actions.pop(k, ()):
            stager.prestage(t, heat_dem[k] + heat_w, hold)
        if soc_targets:
            want = max([base_params.target_soc] + [s for a, b, s in soc_targets if a <= t < b])
            if want != params.target_soc:
                params = dataclasses.replace(base_params, target_soc=want)
        m, heat, it, loss, pf, thd = meter_dem[k], heat_dem[k], inp.it[k], inp.loss[k], inp.pf[k], inp.thd[k]
        floor_it = throttle_it = 0.0
        lo = hi = 0.0
        if smoothing:
            if bat is not None:
                lo, hi = bat.feasible_range(dt)
            res = smooth_step(state, m + cool_prev, dt, params,
                              BatteryLimits(lo, hi, bat.soc if bat is not None else 0.5, cap_j))
            delta_m = float(res.floor_w) - float(res.throttle_w)
            if delta_m != 0.0 and inp.train_it[k] > 0.0:
                delta_it = min(max(delta_m * it / m, -inp.train_it[k]), inp.train_room[k])
                if delta_it != 0.0:
                    d = inp.dists[inp.shed.segments[inp.seg_of_tick[k]][2]]
                    f = delta_it / inp.train_it[k]
                    fl = d.compute({r: inp.rack_it[r][k] + f * inp.rack_train[r][k] for r in d.racks})
                    m, it, loss = float(fl.meter_w), float(fl.it_w), float(fl.total_loss_w)
                    heat = float(sum(fl.power_in_w[r] for r in d.racks))
                    pf, thd = float(fl.power_factor_meter), float(fl.thd_meter)
                    floor_it, throttle_it = max(delta_it, 0.0), max(-delta_it, 0.0)
        stager.update(t, heat, supply_prev)
        cf = plant.step(dt, heat, float(inp.db_c[k]), float(inp.wb_c[k]))
        cool = cf.cooling_power_w
        load = m + cool
        b = min(max(float(res.grid_w) - load, lo), hi) if smoothing else 0.0
        grid = load + b
        if smoothing:
            state = SmoothingState(grid_w=grid, target_w=res.state.target_w, it_w=load,
                                   excess_w=grid - float(res.grid_w))
        if bat is not None:
            bat.set_power(b, dt)
            bf = bat.step(dt)
            stored_j += bf.stored_change_j
            bat_loss_j += bf.loss_j
        cool_prev, supply_prev = cool, cf.supply_temp_c
        o = out
        o["grid"][k], o["bat"][k], o["floor"][k], o["throttle"][k] = grid, b, floor_it, throttle_it
        o["soc"][k] = bat.soc if bat is not None else math.nan
        o["it"][k], o["meter"][k], o["loss"][k], o["heat"][k] = it, m, loss, heat
        o["cool"][k], o["supply"][k], o["pf"][k], o["thd"][k] = cool, cf.supply_temp_c, pf, thd
        o["units"][k], o["excess"][k] = stager.on, (grid - float(res.grid_w)) if smoothing else 0.0
    if bat is not None:
        bf = bat.close_ageing_window()
        stored_j += bf.stored_change_j
        bat_loss_j += bf.loss_j
    ledger = EnergyLedger(tolerance=BALANCE_RTOL)
    ledger.add_in("grid import", float(np.sum(out["grid"])) * dt)
    ledger.add_out("IT", float(np.sum(out["it"])) * dt)
    ledger.add_out("distribution losses", float(np.sum(out["loss"])) * dt)
    ledger.add_out("cooling", float(np.sum(out["cool"])) * dt)
    ledger.add_out("battery stored change", stored_j)
    ledger.add_out("battery losses", bat_loss_j)
    return {"series": out, "battery": bat, "plans": plans, "ledger": ledger, "stager": stager,
            "battery_stored_change_j": stored_j, "battery_loss_j": bat_loss_j}


def check_balance(ledger: EnergyLedger, variant: str) -> float:
    """``ledger.check()``, raising :class:`PowerStudyBalanceError` naming the variant."""
    try:
        return ledger.check()
    except EnergyBalanceError as exc:
        raise PowerStudyBalanceError(f"power study, variant {variant!r}: {exc}") from None


# ------------------------------------------------------------------ metrics


def _variant_metrics(inp: StudyInputs, v: dict) -> dict:
    sc, dt = inp.sc, inp.dt_s
    s = v["series"]
    sm = sc.smoothing
    bat = v["battery"]
    grid = s["grid"]
    e = {k: float(np.sum(s[k])) * dt for k in ("grid", "it", "loss", "cool", "floor", "throttle")}
    pue = (e["grid"] - v["battery_stored_change_j"]) / e["it"] if e["it"] > 0 else None
    w = np.maximum(s["meter"], 1e-12)
    m = {
        "max_meter_ramp_mw_per_s": max_ramp_w_per_s(grid, dt, METER_WINDOW_S) / 1e6,
        "ramp_limit_mw_per_s": sm.max_ramp_mw_per_s,
        "destabilising_events_dcpi": count_destabilising_events(grid, dt, DCPI_EVENT_DELTA_W, DCPI_EVENT_WINDOW_S,
                                                                METER_WINDOW_S),
        "destabilising_events_configured": count_destabilising_events(grid, dt, sm.event_delta_mw * 1e6,
                                                                      sm.event_within_s, METER_WINDOW_S),
        "configured_rule": f"> {sm.event_delta_mw:g} MW within < {sm.event_within_s:g} s",
        "grid_energy_mwh": e["grid"] / J_PER_MWH,
        "it_energy_mwh": e["it"] / J_PER_MWH,
        "distribution_loss_mwh": e["loss"] / J_PER_MWH,
        "cooling_energy_mwh": e["cool"] / J_PER_MWH,
        "floor_energy_mwh": e["floor"] / J_PER_MWH,
        "throttled_energy_mwh": e["throttle"] / J_PER_MWH,
        "pue": pue,
        "peak_meter_mw": float(grid.max()) / 1e6,
        "power_factor_mean": float(np.sum(s["pf"] * w) / np.sum(w)),
        "power_factor_min": float(s["pf"].min()),
        "thd_mean": float(np.sum(s["thd"] * w) / np.sum(w)),
        "thd_max": float(s["thd"].max()),
        "supply_temp_max_c": float(np.nanmax(s["supply"])) if np.isfinite(s["supply"]).any() else None,
        "energy_balance_rel_error": v["ledger"].rel_error(),
        "energy_balance_mwh": {side: {k: x / 1e3 for k, x in terms.items()}
                               for side, terms in v["ledger"].summary_kwh().items()},
    }
    if bat is not None:
        st = bat.state()
        fade = st["calendar_loss"] + st["cycle_loss"]
        capex = BESS_CAPEX_USD_PER_KWH * bat.capacity_kwh
        m.update({
            "battery_throughput_mwh": st["throughput_total_j"] / J_PER_MWH,
            "battery_energy_in_mwh": st["energy_in_total_j"] / J_PER_MWH,
            "battery_energy_out_mwh": st["energy_out_total_j"] / J_PER_MWH,
            "battery_losses_mwh": v["battery_loss_j"] / J_PER_MWH,
            "battery_efc": st["efc"],
            "soc_min": float(np.min(s["soc"])), "soc_max": float(np.max(s["soc"])),
            "soc_window": [bat.soc_min, bat.soc_max],
            "soc_inside_window": bool(np.all((s["soc"] >= bat.soc_min - 1e-9) & (s["soc"] <= bat.soc_max + 1e-9))),
            "capacity_fade_calendar": st["calendar_loss"], "capacity_fade_cycle": st["cycle_loss"],
            "ageing_cost_usd_blast": fade / (1.0 - END_OF_LIFE_CAPACITY_FRACTION) * capex,
            "ageing_cost_usd_blast_cycle_only": st["cycle_loss"] / (1.0 - END_OF_LIFE_CAPACITY_FRACTION) * capex,
            "ageing_cost_usd_throughput": capex * st["efc"] / BESS_LIFE_FULL_CYCLES,
            "ageing_windows_outside_validity": st["ageing_windows_outside_validity"],
        })
    return m


def _overshoot(inp: StudyInputs, v: dict, setpoint_c: float) -> dict:
    s = v["series"]["supply"]
    if not np.isfinite(setpoint_c):
        return {"max_k": None, "per_job_k": {}}
    per_job = {}
    for w in inp.workloads:
        if w.kind == "training" and w.start_s > 0:
            k0 = math.ceil(w.start_s / inp.dt_s - 1e-9)
            k1 = min(inp.n, k0 + math.ceil(900.0 / inp.dt_s))
            if k0 < inp.n:
                per_job[w.workload_id] = max(float(np.max(s[k0:k1])) - setpoint_c, 0.0)
    return {"max_k": max(float(np.max(s)) - setpoint_c, 0.0), "per_job_k": per_job}


def _grid_event_outcomes(inp: StudyInputs, grid: np.ndarray) -> list:
    dt, out = inp.dt_s, []
    for g in inp.shed.grid_limits:
        k = math.ceil(g["t_s"] / dt - 1e-9)
        win = max(1, round(GRID_EVENT_WINDOW_S / dt))
        due = min(g["deadline_s"], g["duration_s"])  # measured while the reduction is still asked for
        kd = math.ceil((g["t_s"] + due) / dt - 1e-9)
        if k - win < 0 or kd > inp.n:
            out.append({"t_s": g["t_s"], "achieved_mw": None, "met": None})
            continue
        before = float(np.mean(grid[k - win:k]))
        after = float(np.mean(grid[kd - win:kd]))
        achieved = before - after
        out.append({"t_s": g["t_s"], "reduction_mw": g["reduction_w"] / 1e6, "deadline_s": g["deadline_s"],
                    "measured_at_s": g["t_s"] + due,
                    "meter_before_mw": before / 1e6, "meter_at_deadline_mw": after / 1e6,
                    "achieved_mw": achieved / 1e6, "met": bool(achieved >= g["reduction_w"] * (1 - 1e-9))})
    return out


# ------------------------------------------------------------------ the run


def _peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def run_power_study(sc, out_dir: Path | None = None, *, version: str = "") -> dict:
    """Run the study's three variants; write ``timeseries.parquet`` (if ``out_dir``) and return the summary.

    Raises :class:`PowerStudyBalanceError` if a variant's energy does not balance.
    """
    wall0 = time.perf_counter()
    inp = build_inputs(sc)
    variants = {"smoothing_on": simulate_variant(inp, smoothing=True, prepare=True),
                "smoothing_off": simulate_variant(inp, smoothing=False, prepare=True),
                "smoothing_on_unprepared": simulate_variant(inp, smoothing=True, prepare=False)}
    errors = {name: check_balance(v["ledger"], name) for name, v in variants.items()}
    on, off, unprep = (variants[k] for k in ("smoothing_on", "smoothing_off", "smoothing_on_unprepared"))
    setpoint = on["stager"].setpoint_c
    dt = inp.dt_s
    summary = {
        "power_study": True,
        "name": sc.name, "scenario": sc.source_path, "scenario_sha256": sc.sha256, "version": version,
        "start": sc.start.isoformat(), "duration_h": sc.duration_h, "base_tick_s": dt,
        "workloads": [{"workload_id": w.workload_id, "kind": w.kind, "priority": w.priority,
                       "peak_mw": w.peak_w / 1e6, "start_s": w.start_s,
                       "end_s": None if math.isinf(w.end_s) else w.end_s, "announce_s": w.announce_s,
                       "circuits": list(w.racks) if w.kind == "training" else "all"} for w in inp.workloads],
        "smoothing_on": _variant_metrics(inp, on),
        "smoothing_off": _variant_metrics(inp, off),
        "preparation": {
            "cooling_setpoint_c": setpoint if np.isfinite(setpoint) else None,
            "prepared": {"supply_overshoot": _overshoot(inp, on, setpoint),
                         "max_meter_ramp_mw_per_s": max_ramp_w_per_s(on["series"]["grid"], dt) / 1e6,
                         "soc_min": float(np.min(on["series"]["soc"])),
                         "throttled_energy_mwh": float(np.sum(on["series"]["throttle"])) * dt / J_PER_MWH},
            "unprepared": {"supply_overshoot": _overshoot(inp, unprep, setpoint),
                           "max_meter_ramp_mw_per_s": max_ramp_w_per_s(unprep["series"]["grid"], dt) / 1e6,
                           "soc_min": float(np.min(unprep["series"]["soc"])),
                           "throttled_energy_mwh": float(np.sum(unprep["series"]["throttle"])) * dt / J_PER_MWH},
            "plans": on["plans"],
        },
        "shedding": inp.shed.log,
        "switch_events": inp.shed.switch_events,
        "grid_events": {"smoothing_on": _grid_event_outcomes(inp, on["series"]["grid"]),
                        "smoothing_off": _grid_event_outcomes(inp, off["series"]["grid"])},
        "unserved_it_energy_mwh": float(np.sum(inp.unserved)) * dt / J_PER_MWH,
        "distribution_loss_mwh_by_kind_demand": {k: v / J_PER_MWH for k, v in inp.loss_by_kind.items()},
        "energy_balance_rel_error": max(errors.values()),
        "energy_balance_tolerance": BALANCE_RTOL,
        "assumptions": list(ASSUMPTIONS),
    }
    s_on = summary["smoothing_on"]
    summary.update({"it_energy_kwh": s_on["it_energy_mwh"] * 1e3, "facility_energy_kwh": s_on["grid_energy_mwh"] * 1e3,
                    "pue_mean": s_on["pue"]})
    outputs = []
    if out_dir is not None:
        _write_timeseries(Path(out_dir) / "timeseries.parquet", inp, on, off, unprep)
        outputs.append("timeseries.parquet")
    outputs.append("summary.json")
    wall = time.perf_counter() - wall0
    summary.update({"outputs": outputs, "wall_s": wall, "real_time_factor": sc.duration_s / wall if wall > 0 else None,
                    "peak_rss_mb": _peak_rss_mb()})
    return summary


def _write_timeseries(path: Path, inp: StudyInputs, on: dict, off: dict, unprep: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    s, so, su = on["series"], off["series"], unprep["series"]
    cols = {"t_s": inp.t_s, "it_demand_w": inp.it_demand, "meter_w": s["grid"], "meter_off_w": so["grid"],
            "meter_unprepared_w": su["grid"], "it_w": s["it"], "battery_w": s["bat"], "soc": s["soc"],
            "soc_unprepared": su["soc"], "floor_w": s["floor"], "throttle_w": s["throttle"],
            "distribution_loss_w": s["loss"], "cooling_w": s["cool"], "supply_temp_c": s["supply"],
            "supply_temp_unprepared_c": su["supply"], "chiller_units_on": s["units"],
            "chiller_units_on_unprepared": su["units"], "power_factor": s["pf"], "thd": s["thd"]}
    pq.write_table(pa.table({k: np.asarray(v, dtype=float) for k, v in cols.items()}), path)


def write_summary(path: Path, summary: dict) -> None:
    """``summary.json`` (NaN written as null)."""
    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, np.generic):
            return clean(x.item())
        return x
    Path(path).write_text(json.dumps(clean(summary), indent=2) + "\n")
