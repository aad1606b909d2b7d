"""Calibrate the GPU model (``twin.physics.gpu``) on the GridPilot V100 campaign.

``DIR`` is ``../shared/data/v100_telemetry`` (measured data this project did not produce;
never copied into the repository). What is fitted on what:

* mean board power vs cap, SM clock and workload: E1 ``parsed_results.csv`` (36 cells),
  with leave-one-out cross-validation of the whole fit;
* throughput vs effective SM clock: the same 36 cells;
* cap-step dynamics: E2 (cap 280 -> 200 -> 280 W), telemetry aligned to the step log on
  the step-down's first SM-clock response, board power taken at NVML refresh events
  (the sampler repeats each ~20 ms value; see :func:`refresh_events`);
* junction thermal RC: the 36 E1 telemetry traces; checked on E2 and E3.

Entry point: :func:`calibrate_gpu` (``gridtwin calibrate gpu --data DIR [--json] [--write]``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
from scipy.optimize import brentq, least_squares

from traces.v100_telemetry import (
    SKIP_REASONS,
    TelemetryReport,
    read_e1_parsed_results,
    read_e2_step_plan,
    read_v100_telemetry,
)
from twin.calibrate import CalibrationDataError
from twin.physics.gpu import (
    WORKLOADS,
    GpuFit,
    WorkloadFit,
    effective_sm_clock_mhz,
    iterations_per_joule,
    mean_board_power_w,
    throughput_iter_per_s,
)

__all__ = [
    "E1_WORKLOADS",
    "DataPaths",
    "locate_data",
    "load_e1_cells",
    "cap_bound_mask",
    "fit_power",
    "loo_power_w",
    "fit_throughput",
    "refresh_events",
    "fit_step_dynamics",
    "simulate_junction_temp_c",
    "fit_thermal",
    "best_efficiency",
    "calibrate_gpu",
    "write_fit",
]

#: E1 workload names -> model workload classes.
E1_WORKLOADS = MappingProxyType({
    "matmul_compute_bound": "compute_bound",
    "inference_memory_bound": "memory_bound",
    "bursty_alternating": "bursty",
})
#: GPU that ran the workloads. E1/E2 files hold only GPU 0. In E3 the meta.json files
#: name GPU 2, 2 and 1, but the rows at workload power (240-255 W mean) are GPU 0's.
WORKLOAD_GPU = 0
#: Range of the E1 sweep (the fit's validity range).
CAP_RANGE_W = (150.0, 300.0)
CLOCK_RANGE_MHZ = (405.0, 1380.0)
#: V100-SXM2-32GB reference values (REFERENCE.md §1.1): TDP, max boost clock.
V100_TDP_W = 300.0
V100_MAX_SM_CLOCK_MHZ = 1530.0
CLOCK_REF_MHZ = 1000.0
#: A cell is cap-bound when the cap visibly limits it (see cap_bound_mask).
CAP_BOUND_POWER_FRACTION = 0.9
CAP_BOUND_CLOCK_FRACTION = 0.97
#: E2 step windows: end 0.1 s before the next idle phase of the bursty workload (first
#: power reading below 60 % of the lower level), at most 1.5 s after the command.
IDLE_FRACTION = 0.6
IDLE_MARGIN_S = 0.1
MAX_WINDOW_S = 1.5
FIT_NAME = "gpu_v100_fit"
COMMAND = "gridtwin calibrate gpu --data ../shared/data/v100_telemetry --write"
SOURCE = ("GridPilot v1.0 reproducibility kit, V100 campaign (3x Tesla V100-SXM2-32GB, NVML "
          "~100-200 Hz; D. Constantinescu et al., EPFL EcoCloud, April 2026), CC BY 4.0; "
          "files in ../shared/data/v100_telemetry, not in this repository")
FITTED_ON = ("power and throughput: E1_power_cap_sweep/parsed_results.csv (36 cells: 3 workloads x "
             "caps 150/200/250/300 W x SM clocks 405/945/1380 MHz); dynamics: E2_inner_loop "
             "(telemetry.csv + step_plan.json, cap 280->200->280 W, bursty workload); thermal: "
             "E1 telemetry traces (36 x 33-54 s)")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DataPaths:
    """Files of the V100 campaign that the calibration reads."""

    root: Path
    e1_results: Path
    e2_telemetry: Path
    e2_plan: Path
    e3_dir: Path | None


def locate_data(data_dir: str | os.PathLike) -> DataPaths:
    """Check ``data_dir`` holds the E1 and E2 files; ``CalibrationDataError`` names what is missing."""
    root = Path(data_dir)
    if not root.is_dir():
        raise CalibrationDataError(
            f"{root}: not a directory; expected the V100 telemetry folder (e.g. "
            "../shared/data/v100_telemetry) holding E1_power_cap_sweep/ and E2_inner_loop/")
    need = {
        "e1_results": root / "E1_power_cap_sweep" / "parsed_results.csv",
        "e2_telemetry": root / "E2_inner_loop" / "telemetry.csv",
        "e2_plan": root / "E2_inner_loop" / "step_plan.json",
    }
    missing = [str(p) for p in need.values() if not p.is_file()]
    if missing:
        raise CalibrationDataError(
            f"{root}: missing {', '.join(missing)}; expected the V100 telemetry folder with "
            "E1_power_cap_sweep/parsed_results.csv (+ one CSV per cell) and "
            "E2_inner_loop/telemetry.csv + step_plan.json")
    e3 = root / "E3_outer_loop"
    return DataPaths(root, e3_dir=e3 if e3.is_dir() else None, **need)


def load_e1_cells(paths: DataPaths) -> pd.DataFrame:
    """E1 cells with the model's workload names (column ``workload_class``)."""
    try:
        cells = read_e1_parsed_results(paths.e1_results)
    except ValueError as exc:
        raise CalibrationDataError(str(exc)) from exc
    unknown = sorted(set(cells["workload"]) - set(E1_WORKLOADS))
    if unknown:
        raise CalibrationDataError(f"{paths.e1_results}: unknown workloads {unknown}; "
                                   f"expected {sorted(E1_WORKLOADS)}")
    cells["workload_class"] = cells["workload"].map(E1_WORKLOADS)
    return cells.reset_index(drop=True)


def cap_bound_mask(cells: pd.DataFrame) -> np.ndarray:
    """Cells where the cap binds: mean power >= 0.9 x cap, or mean SM clock < 0.97 x target."""
    return ((cells["power_mean_w"] >= CAP_BOUND_POWER_FRACTION * cells["pcap_w"])
            | (cells["sm_mean_mhz"] < CAP_BOUND_CLOCK_FRACTION * cells["sm_target_mhz"])).to_numpy()


# --------------------------------------------------------------------------- power


def _base_fit() -> GpuFit:
    """A GpuFit with placeholder coefficients; the fits below replace them."""
    w = WorkloadFit(40.0, 80.0, 2.0, 1.0, 0.0, 100.0, 900.0, 3.0)
    return GpuFit(
        device="V100-SXM2-32GB", tdp_w=V100_TDP_W, max_sm_clock_mhz=V100_MAX_SM_CLOCK_MHZ,
        clock_ref_mhz=CLOCK_REF_MHZ, cap_tracking=0.98, smooth_min_order=30.0,
        workloads=MappingProxyType({k: w for k in WORKLOADS}), tau_down_s=0.02, tau_up_s=0.2,
        r_th_k_per_w=0.15, tau_th_s=20.0, ambient_c=30.0, cap_range_w=CAP_RANGE_W,
        clock_range_mhz=CLOCK_RANGE_MHZ, source=SOURCE, fitted_on=FITTED_ON, command=COMMAND)


# Power parameter vector: per workload (p_static_w, p_dynamic_w, clock_exponent) in
# WORKLOADS order, then cap_tracking, smooth_min_order, bursty duty, bursty p_low_w.
_P0 = np.array([40, 40, 40, 80, 100, 80, 2, 2, 2, 0.98, 30, 0.9, 80], dtype=float)
_P_LO = np.array([0, 0, 0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5, 2, 0.3, 0], dtype=float)
_P_HI = np.array([200, 200, 200, 1000, 1000, 1000, 5, 5, 5, 1.2, 200, 1.0, 300], dtype=float)


def _with_power(fit: GpuFit, theta: np.ndarray) -> GpuFit:
    wl = {}
    for i, w in enumerate(WORKLOADS):
        bursty = w == "bursty"
        wl[w] = dataclasses.replace(
            fit.workloads[w], p_static_w=float(theta[i]), p_dynamic_w=float(theta[3 + i]),
            clock_exponent=float(theta[6 + i]), duty=float(theta[11]) if bursty else 1.0,
            p_low_w=float(theta[12]) if bursty else 0.0)
    return dataclasses.replace(fit, workloads=MappingProxyType(wl), cap_tracking=float(theta[9]),
                               smooth_min_order=float(theta[10]))


def _power_theta(cells: pd.DataFrame, base: GpuFit) -> np.ndarray:
    cap = cells["pcap_w"].to_numpy()
    f = cells["sm_target_mhz"].to_numpy()
    w = cells["workload_class"].to_numpy()
    y = cells["power_mean_w"].to_numpy()

    def rel_residual(theta):
        return mean_board_power_w(cap, f, w, _with_power(base, theta)) / y - 1.0

    # soft-L1 on relative error (~L1 beyond 1 %): the target metric is an absolute
    # error, and a few 945 MHz cells sit ~7 % apart for no cap- or clock-related reason.
    res = least_squares(rel_residual, _P0, bounds=(_P_LO, _P_HI), loss="soft_l1", f_scale=0.01)
    return res.x


def fit_power(cells: pd.DataFrame, base: GpuFit | None = None) -> GpuFit:
    """Fit the mean-power coefficients (13 numbers) on E1 cells; returns ``base`` updated."""
    base = base or _base_fit()
    return _with_power(base, _power_theta(cells, base))


def loo_power_w(cells: pd.DataFrame, base: GpuFit | None = None) -> np.ndarray:
    """Leave-one-out predictions of each cell's mean power [W] (36 refits of the whole fit)."""
    base = base or _base_fit()
    out = np.empty(len(cells))
    for i in range(len(cells)):
        train = cells.drop(index=cells.index[i])
        fit = fit_power(train, base)
        row = cells.iloc[i]
        out[i] = mean_board_power_w(row["pcap_w"], row["sm_target_mhz"], row["workload_class"], fit)
    return out


def fit_throughput(cells: pd.DataFrame, fit: GpuFit) -> GpuFit:
    """Fit ``x_max``, ``f_half``, Hill exponent per workload on the cells' iterations/s."""
    wl = dict(fit.workloads)
    for w in WORKLOADS:
        sel = cells[cells["workload_class"] == w]
        cap, f, y = sel["pcap_w"].to_numpy(), sel["sm_target_mhz"].to_numpy(), sel["iters_per_s"].to_numpy()

        def rel_residual(theta, w=w, cap=cap, f=f, y=y):
            trial = dataclasses.replace(fit, workloads=MappingProxyType(
                {**wl, w: dataclasses.replace(wl[w], x_max_iter_per_s=theta[0], f_half_mhz=theta[1],
                                              hill_exponent=theta[2])}))
            return throughput_iter_per_s(cap, f, w, trial) / y - 1.0

        res = least_squares(rel_residual, [1.5 * y.max(), 900.0, 3.0],
                            bounds=([0.0, 50.0, 0.3], [1e5, 5000.0, 20.0]))
        wl[w] = dataclasses.replace(wl[w], x_max_iter_per_s=float(res.x[0]), f_half_mhz=float(res.x[1]),
                                    hill_exponent=float(res.x[2]))
    return dataclasses.replace(fit, workloads=MappingProxyType(wl))


# --------------------------------------------------------------------------- dynamics


def refresh_events(t_s: np.ndarray, power_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Board-power readings at the NVML refresh events of a sample-and-hold series.

    NVML refreshes board power about every 20 ms; a faster sampler reads each value
    several times. A refresh is a sample whose value differs from the previous one; it
    happened between the two samples, so its time is their midpoint (±half a sample
    period). The reading is taken as instantaneous at that time (V100 NVML power is
    instantaneous, REFERENCE.md §1.2). The first sample is not an event.
    """
    t_s = np.asarray(t_s, dtype=float)
    power_w = np.asarray(power_w, dtype=float)
    i = np.nonzero(np.diff(power_w) != 0.0)[0] + 1
    return 0.5 * (t_s[i] + t_s[i - 1]), power_w[i]


def _align_offset(tel: pd.DataFrame, plan: pd.DataFrame) -> dict:
    """Offset [s] with telemetry time = step-log time + offset, from the first step-down.

    The two logs have separate clocks and no common wall-clock stamp. The first sample
    after the step-down command where the SM clock falls more than 2 % below its median
    over the preceding 0.5 s is the first visible response; the offset puts the command at
    the midpoint between that sample and the one before (assumed: zero step-down
    latency; the E2 plan spaces its steps by 10 s, the search window is ±1 s).
    """
    caps = plan["pcap_w"].to_numpy()
    downs = np.nonzero(np.diff(caps) < 0)[0] + 1
    if downs.size == 0:
        raise CalibrationDataError("E2 step plan has no step-down to align the clocks on")
    k = int(downs[0])
    t_cmd = float(plan["t_actual_s"].iloc[k])
    t = tel["t_s"].to_numpy()
    sm = tel["sm_clock_mhz"].to_numpy()
    lo, hi = np.searchsorted(t, [t_cmd - 1.0, t_cmd + 1.0])
    for j in range(max(lo, 1), hi):
        base = np.median(sm[np.searchsorted(t, t[j] - 0.5):j])
        if sm[j] < 0.98 * base:
            t_resp = 0.5 * (t[j] + t[j - 1])
            return {"offset_s": t_resp - t_cmd, "anchor_step": str(plan["label"].iloc[k]),
                    "anchor_t_telemetry_s": t_resp, "anchor_t_step_log_s": t_cmd,
                    "method": ("telemetry = step log + offset; the step-down command is placed at the "
                               "first SM-clock drop > 2 % (midpoint of the bracketing samples); "
                               "assumes zero step-down latency")}
    raise CalibrationDataError("E2: no SM-clock response within 1 s of the step-down command")


def _r(x, digits: int = 4) -> float:
    return round(float(x), digits)


def _tau_equal_area(area_ws: float, step_w: float, window_s: float) -> float:
    """tau with tau * step * (1 - exp(-window/tau)) = area (a lag's area over a finite window)."""
    ratio = area_ws / step_w
    if not 0.0 < ratio < window_s:
        raise CalibrationDataError(f"E2: transient area {area_ws:.3g} W s does not fit a first-order lag "
                                   f"over {window_s:.3g} s")
    return brentq(lambda tau: tau * -math.expm1(-window_s / tau) - ratio, 1e-6, 1e3, xtol=1e-9)


def fit_step_dynamics(tel: pd.DataFrame, plan: pd.DataFrame) -> dict:
    """Step-down and step-up time constants from E2 (see module docstring).

    For each cap step after the initial one: ``t_c`` = command time on the telemetry
    clock; before = mean power sample over the 0.5 s before ``t_c``; the window ends
    0.1 s before the workload's next idle phase (first reading below 60 % of the lower
    power level; NVML utilisation lags by ~0.15 s, so power marks it) or at 1.5 s;
    after = mean power sample over the window's last 40 % (means of held samples: the
    hold does not bias a level; for a pure lag whose tail still moves this biases
    ``tau`` low, by ~6 % for tau = 0.25 s in a 1.5 s window; the real E2 tails are
    flat). ``tau`` (the model's) makes a first-order lag from ``t_c`` hold the measured
    transient energy: its area ``tau * step * (1 - exp(-W/tau))`` equals the measured
    ``integral(after - p) dt`` up to the last reading ``W`` (readings at refresh events,
    linear in between). Least-squares fits (a plain lag; a
    lag after a dead time) are reported beside it, with the 95 % times: first crossing
    of 95 % of the step, and settling inside ±5 % of the step for the rest of the window.
    """
    align = _align_offset(tel, plan)
    t = tel["t_s"].to_numpy()
    sm = tel["sm_clock_mhz"].to_numpy()
    p_raw = tel["power_w"].to_numpy()
    tr, pr = refresh_events(t, p_raw)
    steps = []
    for k in range(1, len(plan)):
        t_c = float(plan["t_actual_s"].iloc[k]) + align["offset_s"]
        before = p_raw[(t > t_c - 0.5) & (t <= t_c)]
        if before.size < 20:
            raise CalibrationDataError(f"E2: too few power samples before the step at t={t_c:.3f} s")
        p0 = float(before.mean())
        # the bursty workload's next idle phase: first reading below 60 % of the lower level
        low = np.nonzero((tr > t_c) & (pr < IDLE_FRACTION * min(p0, float(plan["pcap_w"].iloc[k]))))[0]
        t_end = min(t_c + MAX_WINDOW_S, (tr[low[0]] if low.size else np.inf) - IDLE_MARGIN_S)
        win = (tr > t_c) & (tr <= t_end)
        if win.sum() < 10:
            raise CalibrationDataError(f"E2: too few power readings after the step at t={t_c:.3f} s")
        tt, yy = tr[win], pr[win]
        window = t_end - t_c
        p1 = float(p_raw[(t >= t_end - 0.4 * window) & (t <= t_end)].mean())
        step = p1 - p0
        # measured transient area up to the last reading: (t_c, p0) then the refresh
        # readings, linear in between
        xs = np.r_[t_c, tt]
        gs = p1 - np.r_[p0, yy]
        area = float(np.sum(0.5 * (gs[1:] + gs[:-1]) * np.diff(xs)))
        tau = _tau_equal_area(area, step, float(xs[-1] - t_c))

        def lag(x, tau_s, dead_s=0.0):
            return p1 - step * np.exp(-np.clip(x - t_c - dead_s, 0.0, None) / tau_s)

        r1 = least_squares(lambda th: lag(tt, th[0]) - yy, [tau], bounds=([1e-4], [5.0]))
        r2 = least_squares(lambda th: lag(tt, th[0], th[1]) - yy, [tau / 2, 0.01],
                           bounds=([1e-4, 0.0], [5.0, 0.5]))
        s = np.sign(step)
        crossed = s * (yy - (p0 + 0.95 * step)) >= 0.0
        outside = np.abs(yy - p1) > 0.05 * abs(step)
        last_out = np.nonzero(outside)[0]
        settled = (tt[last_out[-1] + 1] - t_c) if (last_out.size and last_out[-1] + 1 < tt.size) else (
            0.0 if not last_out.size else None)
        j = np.nonzero((t > t_c - 0.5) & (t <= t_c))[0]
        sm0 = float(np.median(sm[j]))
        moved = np.nonzero((t > t_c) & (np.abs(sm - sm0) > 0.02 * sm0))[0]
        steps.append({
            "label": str(plan["label"].iloc[k]),
            "cap_w": [float(plan["pcap_w"].iloc[k - 1]), float(plan["pcap_w"].iloc[k])],
            "t_command_telemetry_s": round(t_c, 4),
            "power_before_w": round(p0, 2), "power_after_w": round(p1, 2),
            "window_s": round(window, 3),
            "tau_equal_area_s": round(tau, 4),
            "t95_model_s": round(tau * math.log(20.0), 4),
            "t95_first_crossing_measured_s": _r(tt[np.argmax(crossed)] - t_c) if crossed.any() else None,
            "t95_settled_measured_s": None if settled is None else _r(settled),
            "first_sm_clock_response_s": _r(t[moved[0]] - t_c) if moved.size else None,
            "lsq_lag": {"tau_s": _r(r1.x[0]), "rms_w": _r(np.sqrt(np.mean(r1.fun ** 2)), 2)},
            "lsq_dead_time_lag": {"dead_time_s": _r(r2.x[1]), "tau_s": _r(r2.x[0]),
                                  "rms_w": _r(np.sqrt(np.mean(r2.fun ** 2)), 2)},
        })
    down = [s for s in steps if s["power_after_w"] < s["power_before_w"]]
    up = [s for s in steps if s["power_after_w"] > s["power_before_w"]]
    if not down or not up:
        raise CalibrationDataError("E2: need one step down and one step up in power")
    return {
        "model": "asymmetric first-order lags (board_power_step)",
        "tau_down_s": float(np.mean([s["tau_equal_area_s"] for s in down])),
        "tau_up_s": float(np.mean([s["tau_equal_area_s"] for s in up])),
        "tau_method": "equal transient energy (area) from the aligned command time",
        "nvml_refresh_period_s": round(float(np.median(np.diff(tr))), 4),
        "sample_period_s": round(float(np.median(np.diff(t))), 4),
        "clock_alignment": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in align.items()},
        "steps": steps,
    }


# --------------------------------------------------------------------------- thermal


def simulate_junction_temp_c(t_s, power_w, temp0_c, r_th_k_per_w, tau_s, ambient_c) -> np.ndarray:
    """Junction temperature at the sample times, power held over each sample interval [°C].

    The same recursion as repeated :func:`twin.physics.gpu.junction_temp_step`, vectorised:
    with ``E_i = exp((t_i - t_0)/tau)`` and ``S_i = ambient + R * P_i``,
    ``T_n = (T_0 + sum_{i<n} (E_{i+1} - E_i) S_i) / E_n``. Split where ``(t - t_0)/tau``
    would exceed 200 to stay far from overflow.
    """
    t = np.asarray(t_s, dtype=float)
    src = ambient_c + r_th_k_per_w * np.asarray(power_w, dtype=float)
    out = np.empty_like(t)
    out[0] = temp0_c
    s = 0
    while s < t.size - 1:
        stop = min(max(int(np.searchsorted(t, t[s] + 200.0 * tau_s, side="right")), s + 2), t.size)
        e = np.exp(np.minimum((t[s:stop] - t[s]) / tau_s, 700.0))  # a single gap > 700 tau: relaxed
        out[s + 1:stop] = (out[s] + np.cumsum(np.diff(e) * src[s:stop - 1])) / e[1:]
        s = stop - 1
    return out


def fit_thermal(traces: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """Fit R [K/W], tau [s] and the ambient [°C] of the one-node RC on (t, power, temperature) traces.

    Each trace starts at its first measured temperature; residuals are weighted so that
    every trace counts equally.
    """
    def residual(theta):
        r, tau, amb = theta
        return np.concatenate([(simulate_junction_temp_c(t, p, temp[0], r, tau, amb) - temp) / np.sqrt(t.size)
                               for t, p, temp in traces])

    res = least_squares(residual, [0.15, 20.0, 30.0], bounds=([0.0, 0.5, -20.0], [2.0, 1000.0, 80.0]))
    r, tau, amb = (float(x) for x in res.x)
    return {"r_th_k_per_w": r, "tau_s": tau, "ambient_c": amb,
            "rms_k": _thermal_rms(traces, r, tau, amb)}


def _thermal_rms(traces, r, tau, amb) -> dict:
    errs = [simulate_junction_temp_c(t, p, temp[0], r, tau, amb) - temp for t, p, temp in traces]
    rms = [float(np.sqrt(np.mean(e ** 2))) for e in errs]
    return {"mean_over_traces": round(float(np.mean(rms)), 2), "max": round(float(np.max(rms)), 2),
            "bias_k": round(float(np.mean(np.concatenate(errs))), 2)}


# --------------------------------------------------------------------------- efficiency


def best_efficiency(fit: GpuFit, workload: str, cap_range_w=CAP_RANGE_W, clock_range_mhz=CLOCK_RANGE_MHZ,
                    cap_step_w: float = 0.5, clock_step_mhz: float = 1.0) -> dict:
    """The iterations-per-joule optimum on a dense cap x clock grid.

    Efficiency depends on (cap, clock) only through the effective clock, so the optimum
    is a ridge; points within 0.01 % of the maximum count as ties, broken toward the
    lowest cap, then the lowest clock.
    """
    caps = np.arange(cap_range_w[0], cap_range_w[1] + 1e-9, cap_step_w)
    clocks = np.arange(clock_range_mhz[0], clock_range_mhz[1] + 1e-9, clock_step_mhz)
    cc, ff = np.meshgrid(caps, clocks, indexing="ij")
    eff = iterations_per_joule(cc, ff, workload, fit)
    best = float(eff.max())
    i, j = np.argwhere(eff >= best * (1.0 - 1e-4))[0]  # row-major: lowest cap, then lowest clock
    return {"cap_w": float(caps[i]), "sm_clock_mhz": float(clocks[j]),
            "effective_sm_clock_mhz": round(float(effective_sm_clock_mhz(caps[i], clocks[j], workload, fit)), 1),
            "iterations_per_joule": round(float(eff[i, j]), 4), "max_iterations_per_joule": round(best, 4)}


# --------------------------------------------------------------------------- driver


def _mae_pct(pred, obs) -> float:
    return float(np.mean(np.abs(np.asarray(pred) / np.asarray(obs) - 1.0)) * 100.0)


def _skip_summary(reports: list[TelemetryReport]) -> dict:
    total = dict.fromkeys(SKIP_REASONS, 0)
    by_file = {}
    for r in reports:
        for k, v in r.skipped.items():
            total[k] += v
        if r.skipped_total:
            by_file[f"{Path(r.path).parent.name}/{Path(r.path).name}"] = {k: v for k, v in r.skipped.items() if v}
    return {"files_read": len(reports), "lines_read": int(sum(r.lines_total for r in reports)),
            "total": total, "by_file": by_file,
            "note": f"rows of GPU {WORKLOAD_GPU} kept; 'other_gpu' counts rows of the other GPUs"}


def calibrate_gpu(data_dir: str | os.PathLike) -> tuple[GpuFit, dict]:
    """Fit every GPU coefficient on the V100 campaign in ``data_dir``.

    Returns
    -------
    fit : GpuFit
        The coefficients (:func:`write_fit` stores them).
    report : dict
        Leave-one-out errors, best-efficiency points, step response, thermal fit and the
        reader's skipped-line counts (the ``--json`` output).
    """
    paths = locate_data(data_dir)
    cells = load_e1_cells(paths)
    reports: list[TelemetryReport] = []

    # power: fit, leave-one-out
    fit = fit_power(cells)
    y = cells["power_mean_w"].to_numpy()
    pred = mean_board_power_w(cells["pcap_w"].to_numpy(), cells["sm_target_mhz"].to_numpy(),
                              cells["workload_class"].to_numpy(), fit)
    loo = loo_power_w(cells)
    loo_err = np.abs(loo / y - 1.0) * 100.0
    bound = cap_bound_mask(cells)

    # throughput and efficiency
    fit = fit_throughput(cells, fit)
    x_pred = throughput_iter_per_s(cells["pcap_w"].to_numpy(), cells["sm_target_mhz"].to_numpy(),
                                   cells["workload_class"].to_numpy(), fit)
    cells["ipj"] = cells["iters_per_s"] / cells["power_mean_w"]
    best = {}
    for e1_name, w in E1_WORKLOADS.items():
        sel = cells[cells["workload_class"] == w]
        row = sel.loc[sel["ipj"].idxmax()]
        model_at = float(iterations_per_joule(row["pcap_w"], row["sm_target_mhz"], w, fit))
        best[w] = {"model": best_efficiency(fit, w),
                   "data_best_cell": {"cap_w": float(row["pcap_w"]), "sm_clock_mhz": float(row["sm_target_mhz"]),
                                      "iterations_per_joule": round(float(row["ipj"]), 4)},
                   "model_at_data_best_cell": round(model_at, 4)}

    # dynamics (E2)
    try:
        tel, rep = read_v100_telemetry(paths.e2_telemetry, WORKLOAD_GPU)
        plan = read_e2_step_plan(paths.e2_plan)
    except ValueError as exc:
        raise CalibrationDataError(str(exc)) from exc
    reports.append(rep)
    dyn = fit_step_dynamics(tel, plan)
    fit = dataclasses.replace(fit, tau_down_s=round(dyn["tau_down_s"], 4), tau_up_s=round(dyn["tau_up_s"], 4))

    # thermal: fit on E1 traces, check on E2 and E3
    traces = []
    for run in cells["run"]:
        f = paths.e1_results.parent / f"{run}.csv"
        if not f.is_file():
            raise CalibrationDataError(f"{f}: missing; expected one telemetry CSV per E1 cell")
        d, rep = read_v100_telemetry(f, WORKLOAD_GPU)
        reports.append(rep)
        traces.append((d["t_s"].to_numpy(), d["power_w"].to_numpy(), d["temperature_c"].to_numpy()))
    thermal = fit_thermal(traces)
    fit = dataclasses.replace(fit, r_th_k_per_w=round(thermal["r_th_k_per_w"], 4),
                              tau_th_s=round(thermal["tau_s"], 1), ambient_c=round(thermal["ambient_c"], 1))
    checks = {"E2": _thermal_rms([(tel["t_s"].to_numpy(), tel["power_w"].to_numpy(),
                                   tel["temperature_c"].to_numpy())],
                                 fit.r_th_k_per_w, fit.tau_th_s, fit.ambient_c)}
    if paths.e3_dir is not None:
        for e1_name, w in E1_WORKLOADS.items():
            f = paths.e3_dir / f"{e1_name}_telemetry.csv"
            if f.is_file():
                d, rep = read_v100_telemetry(f, WORKLOAD_GPU)
                reports.append(rep)
                checks[f"E3 {e1_name}"] = _thermal_rms(
                    [(d["t_s"].to_numpy(), d["power_w"].to_numpy(), d["temperature_c"].to_numpy())],
                    fit.r_th_k_per_w, fit.tau_th_s, fit.ambient_c)

    report = {
        "data_dir": str(paths.root),
        "cells": int(len(cells)),
        "loo_mae_pct": round(float(loo_err.mean()), 3),
        "loo_mae_pct_by_workload": {w: round(float(loo_err[cells["workload_class"] == w].mean()), 3)
                                    for w in WORKLOADS},
        "loo_mae_pct_cap_bound": round(float(loo_err[bound].mean()), 3),
        "cap_bound_cells": int(bound.sum()),
        "cap_bound_definition": (f"power_mean_w >= {CAP_BOUND_POWER_FRACTION} x cap or sm_mean_mhz < "
                                 f"{CAP_BOUND_CLOCK_FRACTION} x sm_target_mhz"),
        "loo_max_abs_pct": round(float(loo_err.max()), 3),
        "fit_mae_pct": round(_mae_pct(pred, y), 3),
        "throughput_fit_mae_pct": {w: round(_mae_pct(x_pred[m], cells["iters_per_s"].to_numpy()[m]), 3)
                                   for w in WORKLOADS for m in [cells["workload_class"].to_numpy() == w]},
        "best_efficiency": best,
        "step_response": dyn,
        "thermal": {"r_th_k_per_w": fit.r_th_k_per_w, "tau_s": fit.tau_th_s, "ambient_c": fit.ambient_c,
                    "fit_rms_k_E1": thermal["rms_k"], "check_rms_k": checks},
        "skipped_lines": _skip_summary(reports),
    }
    return fit, report


def _round_sig(x: float, sig: int = 6) -> float:
    return float(f"{x:.{sig}g}")


def write_fit(fit: GpuFit, report: dict, path: str | os.PathLike | None = None) -> Path:
    """Write the coefficients (rounded to 6 significant digits) and a diagnostics summary."""
    if path is None:
        path = Path(__file__).resolve().parents[1] / "physics" / "data" / f"{FIT_NAME}.json"
    path = Path(path)
    wl = {w: dataclasses.replace(c, **{k.name: _round_sig(getattr(c, k.name))
                                      for k in dataclasses.fields(WorkloadFit)})
          for w, c in fit.workloads.items()}
    fit = dataclasses.replace(fit, workloads=MappingProxyType(wl), cap_tracking=_round_sig(fit.cap_tracking),
                              smooth_min_order=_round_sig(fit.smooth_min_order))
    doc = {"schema_version": 1, **fit.to_dict(), "diagnostics": {
        k: report[k] for k in ("loo_mae_pct", "loo_mae_pct_by_workload", "loo_mae_pct_cap_bound", "fit_mae_pct",
                               "throughput_fit_mae_pct")}}
    doc["diagnostics"]["thermal_fit_rms_k_E1"] = report["thermal"]["fit_rms_k_E1"]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
