"""E4, closed-loop demand following (seed 004 §5.1), in the twin.

The paper drives the cascade with a 30 s demand trajectory on the V100 testbed and
reports the tracking error per workload: inference 1.68 %, matmul 2.12 % (inside its
5 % acceptance band), bursty 11.08 % (outside; "a cascade-composition diagnostic").
Its trajectory is not published; ours, per seed:

* **Demand**: levels drawn from 150/180/210/240/270 W, each held 2-5 s (uniform), every
  step to a different level, over 30 s (:func:`demand_trajectory`).
* **Plant**: one V100-SXM2-32GB cohort of the twin (:class:`~twin.facility.gpu_fleet.GpuFleet`
  through :class:`~twin.facility.gpu_fleet.TwinGpuPlant`) at the 1530 MHz boost clock,
  the workload's calibrated power model ``mean_board_power_w(cap, 1530 MHz, class)``
  with the fitted lags (tau_down 15.6 ms, tau_up 249 ms), read through a 20 ms NVML
  sample-and-hold (:class:`~twin.control.fake.SampleHoldPlant`).
* **What "following" means physically**: Tier 1 moves the cap so that board power
  follows the demand; a cap can only take power *down* from what the workload draws
  uncapped, so a level above that (270 W > 248 W for matmul at 1530 MHz) or below the
  power at the 150 W minimum cap cannot be reached by any controller. Each workload's
  trajectory is therefore clipped to its reachable range ``[P(150 W), P(300 W)]``
  (:func:`reachable_range_w`); the clipped levels are what the error is measured
  against (so the error is the controller's, not the workload's).
* **Bursty**: the fit gives the mean of an alternation (duty d = 0.891 of a compute
  phase, the rest at p_low = 76.8 W), not the phases. The E2 telemetry shows the cycle:
  ~4.8 s per burst with ~0.48 s idle at a 280 W cap (d ≈ 0.90, consistent with the fit).
  We alternate the cohort between the compute phase (the bursty fit's uncapped power at
  1530 MHz, 241.9 W, limited by the cap) for ``d * 4.8 s`` and p_low for ``(1 - d) *
  4.8 s``, seeded phase. The low phase is out of the cap's reach, so the error it
  causes is the workload's; the row is report only, as in the paper.
* **Cascade**: with one cohort, Tier 2's rebalance within a host envelope is the
  identity (the envelope is the cohort's demand), so the loop under test is Tier 1.
* **Metric**: ``mean |measured - demand| / mean demand`` over the 30 s, with ``measured``
  the NVML reading logged at 100 Hz (the paper's log rate), after a 2 s pre-roll at the
  first level.

Rows: ``experiment, metric, unit, paper_value, twin_value, tolerance, pass, reference,
note`` (the paper table's keys) plus the aliases ``paper`` and ``twin``.
"""

from __future__ import annotations

import numpy as np
import simpy

from twin.control.fake import SampleHoldPlant
from twin.control.tier1_pid import PidParams, Tier1Controller
from twin.facility.gpu_fleet import GpuFleet, TwinGpuPlant
from twin.physics.gpu import GPU_PROFILES, WORKLOADS, load_gpu_fit, mean_board_power_w

__all__ = ["ACCEPTANCE_PCT", "LEVELS_W", "PAPER_ERROR_PCT", "demand_trajectory", "e4_rows", "reachable_range_w",
           "run_demand_following"]

PROFILE = GPU_PROFILES["V100-SXM2-32GB"]
SM_CLOCK_MHZ = 1530.0  # V100 boost clock: unlocked clocks, as in E2/E3
LEVELS_W = (150.0, 180.0, 210.0, 240.0, 270.0)
DWELL_S = (2.0, 5.0)
DURATION_S = 30.0
PREROLL_S = 2.0
LOG_PERIOD_S = 0.01  # 100 Hz, the paper's log rate
BURST_PERIOD_S = 4.8  # E2 telemetry: bursty cycle at a 280 W cap (docstring)
#: Paper §5.1 tracking error [%] by twin workload class, with the paper's name.
PAPER_ERROR_PCT = {"memory_bound": ("inference", 1.68), "compute_bound": ("matmul", 2.12),
                   "bursty": ("bursty", 11.08)}
ACCEPTANCE_PCT = 5.0


def demand_trajectory(seed: int, duration_s: float = DURATION_S, levels_w=LEVELS_W,
                      dwell_s: tuple[float, float] = DWELL_S) -> tuple[np.ndarray, np.ndarray]:
    """Seeded step trajectory: ``(start times [s], levels [W])``, first start 0.

    Each level is drawn uniformly from ``levels_w`` but differs from the one before;
    each is held a uniform ``dwell_s`` time, until ``duration_s``.
    """
    rng = np.random.default_rng(seed)
    levels = np.asarray(levels_w, dtype=float)
    t, starts, out = 0.0, [], []
    while t < duration_s:
        choices = levels if not out else levels[levels != out[-1]]
        out.append(float(rng.choice(choices)))
        starts.append(t)
        t += float(rng.uniform(*dwell_s))
    return np.array(starts), np.array(out)


def _bursty_phases_w() -> tuple[float, float, float]:
    """(compute-phase uncapped power [W], low-phase power [W], duty [-]) of the bursty fit."""
    fit = load_gpu_fit(PROFILE.power_fit)
    c = fit.workloads["bursty"]
    p_clock = c.p_static_w + c.p_dynamic_w * (SM_CLOCK_MHZ / fit.clock_ref_mhz) ** c.clock_exponent
    return p_clock, c.p_low_w, c.duty


def reachable_range_w(workload: str) -> tuple[float, float]:
    """Board power [W] the cap can hold the workload at: at the minimum and maximum limit.

    ``compute_bound`` / ``memory_bound``: the calibrated mean power at 150 and 300 W (1530
    MHz). ``bursty``: its compute phase, ``min(P_clock, cap)`` at the same caps.
    """
    if workload == "bursty":
        p_clock, _, _ = _bursty_phases_w()
        return min(p_clock, PROFILE.min_limit_w), min(p_clock, PROFILE.max_limit_w)
    lo, hi = mean_board_power_w(np.array([PROFILE.min_limit_w, PROFILE.max_limit_w]), SM_CLOCK_MHZ, workload,
                                profile=PROFILE)
    return float(lo), float(hi)


def run_demand_following(workload: str, seed: int = 0, params: PidParams | None = None,
                         duration_s: float = DURATION_S) -> dict:
    """Run Tier 1 on one twin cohort against the seeded trajectory; the traces and the error.

    Returns
    -------
    dict
        ``t_s``, ``demand_w``, ``measured_w`` (100 Hz log, from the end of the pre-roll),
        ``tracking_error_pct``, ``reachable_w`` (lo, hi), ``levels_w`` (clipped), and the
        controller's counters ``ticks``, ``writes``, ``windows``, ``watch_polls``.
    """
    if workload not in WORKLOADS:
        raise ValueError(f"workload {workload!r}: expected one of {WORKLOADS}")
    params = PidParams.for_profile(PROFILE) if params is None else params
    lo, hi = reachable_range_w(workload)
    starts, levels = demand_trajectory(seed, duration_s)
    levels = np.clip(levels, lo, hi)
    starts = starts + PREROLL_S
    starts[0] = 0.0  # the first level also covers the pre-roll

    env = simpy.Environment()
    clock = lambda: env.now  # the plant's clock is the simulation's
    fleet = GpuFleet(PROFILE, [1], [1], cap_w=PROFILE.max_limit_w, host_idle_w=0.0, host_busy_w=0.0,
                     sm_clock_mhz=SM_CLOCK_MHZ)
    plant = SampleHoldPlant(TwinGpuPlant(fleet, clock), clock)
    rng = np.random.default_rng([seed, WORKLOADS.index(workload)])
    if workload == "bursty":
        p_compute, p_low, duty = _bursty_phases_w()
        phase0 = float(rng.uniform(0.0, BURST_PERIOD_S))

        def bursts():
            t_in = phase0  # time into the cycle; compute first, then the low phase
            while True:
                in_compute = t_in < duty * BURST_PERIOD_S
                fleet.set_trace_power(env.now, [0], p_compute if in_compute else p_low, 0.0)
                nxt = duty * BURST_PERIOD_S if in_compute else BURST_PERIOD_S
                yield env.timeout(nxt - t_in)
                t_in = nxt % BURST_PERIOD_S

        env.process(bursts())
    else:
        fleet.set_load(0.0, [0], 1.0, 0.0, workload=WORKLOADS.index(workload))

    tier1 = Tier1Controller(env, plant, params)

    def demand():
        for t0, level in zip(starts, levels):
            yield env.timeout(t0 - env.now)
            tier1.wake(level)

    n_log = round(duration_s / LOG_PERIOD_S)
    t_log = PREROLL_S + LOG_PERIOD_S * np.arange(n_log)
    measured = np.empty(n_log)

    def logger():
        for i, t in enumerate(t_log):
            yield env.timeout(t - env.now)
            measured[i] = plant.read_power_w()[0]

    env.process(demand())
    env.process(logger())
    env.run(until=PREROLL_S + duration_s)
    demand_w = levels[np.searchsorted(starts, t_log, side="right") - 1]
    err = float(np.mean(np.abs(measured - demand_w)) / np.mean(demand_w) * 100.0)
    return {"t_s": t_log - PREROLL_S, "demand_w": demand_w, "measured_w": measured, "tracking_error_pct": err,
            "reachable_w": (lo, hi), "levels_w": levels, "ticks": tier1.ticks, "writes": tier1.writes,
            "windows": tier1.windows, "watch_polls": tier1.watch_polls}


def e4_rows(seed: int = 0) -> list[dict]:
    """E4 rows: tracking error per workload; inference and matmul must be below 5 %."""
    rows = []
    params = PidParams.for_profile(PROFILE)
    for workload in ("memory_bound", "compute_bound", "bursty"):
        name, paper = PAPER_ERROR_PCT[workload]
        run = run_demand_following(workload, seed, params)
        twin = round(run["tracking_error_pct"], 3)
        lo, hi = run["reachable_w"]
        clipped = sorted({float(v) for v in run["levels_w"]} - set(LEVELS_W))
        note = (f"twin: 1 V100 cohort, {workload} at {SM_CLOCK_MHZ:g} MHz, Tier-1 PID (kp {params.kp:g}, "
                f"ki {params.ki:g}/s, kd {params.kd:g} s) through 20 ms NVML hold; demand clipped to reachable {lo:.1f}-{hi:.1f} W"
                + (f" (clipped levels {', '.join(f'{v:.1f}' for v in clipped)} W)" if clipped else "")
                + f"; {run['ticks']} ticks, {run['writes']} cap writes, {run['windows']} windows in 32 s")
        report_only = workload == "bursty"
        if report_only:
            note += (f"; alternation {BURST_PERIOD_S:g} s cycle, low phase at p_low out of the cap's reach; "
                     "report only, as in the paper (outside its 5 % band)")
        rows.append({
            "experiment": "E4", "metric": f"tracking error, {name} ({workload})", "unit": "%",
            "paper_value": paper, "twin_value": twin, "paper": paper, "twin": twin,
            "tolerance": None if report_only else f"twin < {ACCEPTANCE_PCT:g} % (paper's acceptance band)",
            "pass": None if report_only else bool(twin < ACCEPTANCE_PCT),
            "reference": "paper §5.1", "note": note,
        })
    return rows
