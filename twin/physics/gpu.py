"""GPU board power: device profiles, the calibrated power model, dynamics, thermal.

All functions are pure and vectorised: every numeric argument may be a scalar or a numpy
array (broadcast together). Units are SI, clocks in MHz, carried in the names.

Two generations of model live here:

* issue #2, used by the engine today: :func:`demand_power_w` (``idle + util * (TDP -
  idle)``), :func:`capped_power_w` and the symmetric first-order lag :func:`lag_step`;
* issue #3: the mean board power of a workload class as a function of power cap and SM
  clock (:func:`mean_board_power_w`), its throughput and iterations per joule, fitted on
  the V100 E1 sweep; cap-step dynamics with separate step-down and step-up time
  constants (:func:`board_power_step`, fitted on E2); a one-node thermal RC model
  (:func:`junction_temp_step`). The fitted coefficients are package data
  (``twin/physics/data/gpu_v100_fit.json``) that :func:`load_gpu_fit` reads when called;
  ``gridtwin calibrate gpu --write`` regenerates them. Equations, fitted values and the
  validity range: ``docs/models.md``.

References
----------
.. [1] GridPilot v1.0 reproducibility kit, V100 campaign (D. Constantinescu et al., EPFL
   EcoCloud, April 2026), CC BY 4.0; seed 004 §4-§5.1 (E1 power-cap sweep, E2 step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from importlib import resources
from types import MappingProxyType
from typing import Mapping

import numpy as np

#: Workload classes of the calibrated model (E1 names: matmul_compute_bound,
#: inference_memory_bound, bursty_alternating).
WORKLOADS = ("compute_bound", "memory_bound", "bursty")


@dataclass(frozen=True)
class GpuProfile:
    """Static facts about one GPU model.

    Attributes
    ----------
    name : str
        Model key used in scenario files.
    min_limit_w, max_limit_w : float
        Configurable power-limit range [W]. ``max_limit_w`` is the default limit (TDP).
    idle_w : float
        Board power with no job [W].
    power_time_constant_s : float
        Time constant of the symmetric first-order lag of :func:`lag_step` [s] (issue #2;
        superseded by ``tau_down_s`` / ``tau_up_s`` with :func:`board_power_step`).
    calibrated : bool
        True only where the numbers were fitted to or read from measurements.
    source : str
        Where each number comes from.
    max_sm_clock_mhz : float
        Highest SM (graphics) clock [MHz]; with ``max_limit_w`` it scales the V100 power
        model to other devices.
    tau_down_s, tau_up_s : float
        Time constants of board power after a lower / a higher target [s]
        (:func:`board_power_step`).
    r_th_k_per_w : float
        Junction-to-ambient thermal resistance [K/W] (:func:`junction_temp_step`).
    tau_th_s : float
        Thermal time constant of the junction [s].
    power_fit : str
        Name of the packaged coefficient file of the power model (:func:`load_gpu_fit`).
    """

    name: str
    min_limit_w: float
    max_limit_w: float
    idle_w: float
    power_time_constant_s: float
    calibrated: bool
    source: str
    max_sm_clock_mhz: float = field(kw_only=True)
    tau_down_s: float = field(kw_only=True)
    tau_up_s: float = field(kw_only=True)
    r_th_k_per_w: float = field(kw_only=True)
    tau_th_s: float = field(kw_only=True)
    power_fit: str = field(default="gpu_v100_fit", kw_only=True)
    rise_delay_s: float = field(default=0.0, kw_only=True)
    tau_up_after_delay_s: float | None = field(default=None, kw_only=True)


# Lag time constant of issue #2: the GridPilot paper (seed 004, §5.1 E2) reports a median
# 18-29 ms settling to within 5 % of a new cap on the V100; a first-order lag settles to
# 5 % in 3 tau, so tau = 21 ms / 3 = 7 ms. Only lag_step uses it; the fleet uses the fitted
# asymmetric dynamics (tau_down, rise delay + tau_up_after_delay) below.
_TAU_E2_S = 0.007

# Fitted on the V100 campaign by `gridtwin calibrate gpu` (twin/physics/data/gpu_v100_fit.json;
# tests/test_gpu_model.py checks these literals equal the packaged fit): E2 cap steps
# 280->200->280 W (equal-area first-order lags from the aligned command time), E1
# junction temperature traces (one-node RC).
_V100_TAU_DOWN_S = 0.0156
_V100_TAU_UP_S = 0.2487
_V100_R_TH_K_PER_W = 0.1537
_V100_TAU_TH_S = 19.5
# The E2 step-up is a dead time then a lag, not a pure lag: `gridtwin calibrate gpu --json`
# step_response.steps[step-up].lsq_dead_time_lag fits a 110.1 ms delay and a 143.5 ms lag
# (rms 4.06 W vs 8.32 W for the pure lag). The fleet uses this form for rises; tau_up_s
# (equal-area pure lag, same transient energy to 2 %) stays for closed-form analyses.
_V100_RISE_DELAY_S = 0.1101
_V100_TAU_UP_AFTER_DELAY_S = 0.1435

_V100_FIT_NOTE = ("tau_down/tau_up: E2 cap steps; r_th/tau_th: E1 temperature traces "
                  "(gridtwin calibrate gpu; twin/physics/data/gpu_v100_fit.json)")
_SCALED_NOTE = ("power model: the V100 fit scaled by TDP (power and cap) and by max SM clock "
                "(clock), an assumption; tau_down/tau_up and tau_th: V100 values assumed; "
                "r_th: V100 value x 300 W / TDP (same junction rise at TDP), assumed")

GPU_PROFILES: dict[str, GpuProfile] = {
    p.name: p
    for p in (
        GpuProfile(
            "V100-SXM2-32GB", 150.0, 300.0, 56.58, _TAU_E2_S, True,
            "limits, idle, max clock 1530 MHz: REFERENCE.md §1.1 (nvidia-smi -q dump, "
            "NVIDIA/nvidia-docker#1076; idle is a single sample); power_time_constant: seed 004 "
            "§5.1 E2; " + _V100_FIT_NOTE,
            max_sm_clock_mhz=1530.0, tau_down_s=_V100_TAU_DOWN_S, tau_up_s=_V100_TAU_UP_S,
            r_th_k_per_w=_V100_R_TH_K_PER_W, tau_th_s=_V100_TAU_TH_S,
            rise_delay_s=_V100_RISE_DELAY_S, tau_up_after_delay_s=_V100_TAU_UP_AFTER_DELAY_S,
        ),
        GpuProfile(
            "V100-SXM2-16GB", 150.0, 300.0, 56.58, _TAU_E2_S, False,
            "assumed equal to the 32 GB part (REFERENCE.md §1.1), fitted values included; "
            "Marconi100's GPU (REFERENCE.md §7)",
            max_sm_clock_mhz=1530.0, tau_down_s=_V100_TAU_DOWN_S, tau_up_s=_V100_TAU_UP_S,
            r_th_k_per_w=_V100_R_TH_K_PER_W, tau_th_s=_V100_TAU_TH_S,
            rise_delay_s=_V100_RISE_DELAY_S, tau_up_after_delay_s=_V100_TAU_UP_AFTER_DELAY_S,
        ),
        GpuProfile(
            "A100-SXM4-40GB", 100.0, 400.0, 56.58, _TAU_E2_S, False,
            "limits, max clock 1410 MHz: REFERENCE.md §1.1 (NVIDIA/DCGM#152 dump); idle unsourced "
            "(REFERENCE.md known gaps): V100 value assumed; " + _SCALED_NOTE,
            max_sm_clock_mhz=1410.0, tau_down_s=_V100_TAU_DOWN_S, tau_up_s=_V100_TAU_UP_S,
            r_th_k_per_w=_V100_R_TH_K_PER_W * 300.0 / 400.0, tau_th_s=_V100_TAU_TH_S,
            rise_delay_s=_V100_RISE_DELAY_S, tau_up_after_delay_s=_V100_TAU_UP_AFTER_DELAY_S,
        ),
        GpuProfile(
            "H100-SXM", 200.0, 700.0, 78.8, _TAU_E2_S, False,
            "limits: REFERENCE.md §1.1 (stackhpc/ansible-slurm-appliance#975); idle 78.8 W: "
            "REFERENCE.md §8.7 (same dump, single reading); max clock 1770 MHz: REFERENCE.md §1.1 "
            "(secondary); " + _SCALED_NOTE,
            max_sm_clock_mhz=1770.0, tau_down_s=_V100_TAU_DOWN_S, tau_up_s=_V100_TAU_UP_S,
            r_th_k_per_w=_V100_R_TH_K_PER_W * 300.0 / 700.0, tau_th_s=_V100_TAU_TH_S,
            rise_delay_s=_V100_RISE_DELAY_S, tau_up_after_delay_s=_V100_TAU_UP_AFTER_DELAY_S,
        ),
        GpuProfile(
            "H200-SXM", 200.0, 700.0, 80.3, _TAU_E2_S, False,
            "TDP 700 W: REFERENCE.md §1.1 (secondary); idle 80.3 W: REFERENCE.md §8.7 "
            "(secondary); min limit and max clock unsourced: H100's 200 W and 1770 MHz assumed; "
            + _SCALED_NOTE,
            max_sm_clock_mhz=1770.0, tau_down_s=_V100_TAU_DOWN_S, tau_up_s=_V100_TAU_UP_S,
            r_th_k_per_w=_V100_R_TH_K_PER_W * 300.0 / 700.0, tau_th_s=_V100_TAU_TH_S,
            rise_delay_s=_V100_RISE_DELAY_S, tau_up_after_delay_s=_V100_TAU_UP_AFTER_DELAY_S,
        ),
    )
}


# --------------------------------------------------------------------------- issue #2


def demand_power_w(util, idle_w, max_limit_w):
    """Board power a job would draw with no cap [W].

    Parameters
    ----------
    util : float or array
        Fraction of the dynamic power range the job uses [-], 0 (idle) to 1.
    idle_w, max_limit_w : float or array
        Idle board power and maximum power limit (TDP) [W].

    Returns
    -------
    float or array
        ``idle_w + util * (max_limit_w - idle_w)`` [W].
    """
    return idle_w + util * (max_limit_w - idle_w)


def capped_power_w(demand_w, cap_w):
    """Board power target under a power cap: ``min(demand, cap)`` [W]."""
    return np.minimum(demand_w, cap_w)


def lag_step(power_w, target_w, dt_s, tau_s):
    """Advance a first-order lag toward a constant target, in closed form.

    ``dp/dt = (target - p) / tau`` integrated exactly over ``dt_s``.

    Parameters
    ----------
    power_w : float or array
        Power at the start of the interval [W].
    target_w : float or array
        Target, constant over the interval [W].
    dt_s : float
        Interval length [s], >= 0.
    tau_s : float or array
        Time constant [s], > 0.

    Returns
    -------
    power_end_w : float or array
        Power at the end of the interval [W].
    energy_j : float or array
        Exact energy drawn over the interval [J]:
        ``target*dt + (p0 - target) * tau * (1 - exp(-dt/tau))``.
    """
    decay = np.exp(-dt_s / tau_s)
    gap_w = power_w - target_w
    power_end_w = target_w + gap_w * decay
    energy_j = target_w * dt_s + gap_w * tau_s * (1.0 - decay)
    return power_end_w, energy_j


# --------------------------------------------------------------------------- fitted model


@dataclass(frozen=True)
class WorkloadFit:
    """Coefficients of one workload class (see :func:`mean_board_power_w`).

    Attributes
    ----------
    p_static_w : float
        Uncapped compute-phase power extrapolated to zero clock [W], >= 0.
    p_dynamic_w : float
        Uncapped compute-phase power above ``p_static_w`` at the reference clock [W], >= 0.
    clock_exponent : float
        Exponent of the clock in the dynamic power [-], > 0.
    duty : float
        Fraction of time in the compute phase [-], in (0, 1]; 1 for steady workloads.
    p_low_w : float
        Mean power of the low (idle) phase [W], >= 0; unused when ``duty`` is 1.
    x_max_iter_per_s : float
        Throughput at infinite clock [iterations/s], >= 0.
    f_half_mhz : float
        Clock of half the maximum throughput [MHz], > 0.
    hill_exponent : float
        Steepness of throughput vs clock [-], > 0.
    """

    p_static_w: float
    p_dynamic_w: float
    clock_exponent: float
    duty: float
    p_low_w: float
    x_max_iter_per_s: float
    f_half_mhz: float
    hill_exponent: float


@dataclass(frozen=True)
class GpuFit:
    """A fitted GPU model, as stored in ``twin/physics/data/<name>.json``.

    Attributes
    ----------
    device : str
        Profile name of the measured device.
    tdp_w, max_sm_clock_mhz : float
        The measured device's TDP [W] and highest SM clock [MHz] (scaling reference).
    clock_ref_mhz : float
        Reference clock of ``p_dynamic_w`` [MHz].
    cap_tracking : float
        Mean power the cap controller holds, as a fraction of the cap [-].
    smooth_min_order : float
        Order ``n`` of the smooth minimum between clock-limited and cap-limited power [-].
    workloads : Mapping[str, WorkloadFit]
        Coefficients per workload class.
    tau_down_s, tau_up_s : float
        Board-power time constants after a lower / a higher target [s].
    r_th_k_per_w, tau_th_s, ambient_c : float
        Thermal RC: resistance [K/W], time constant [s], fitted ambient [°C].
    cap_range_w, clock_range_mhz : tuple of float
        Range of caps [W] and SM clocks [MHz] the fit saw.
    source, fitted_on, command : str
        Data origin, what was fitted on what, and the command that regenerates the file.
    """

    device: str
    tdp_w: float
    max_sm_clock_mhz: float
    clock_ref_mhz: float
    cap_tracking: float
    smooth_min_order: float
    workloads: Mapping[str, WorkloadFit]
    tau_down_s: float
    tau_up_s: float
    r_th_k_per_w: float
    tau_th_s: float
    ambient_c: float
    cap_range_w: tuple[float, float]
    clock_range_mhz: tuple[float, float]
    source: str
    fitted_on: str
    command: str

    @classmethod
    def from_dict(cls, d: Mapping) -> "GpuFit":
        """Build from the JSON layout; ``ValueError`` names the first bad entry."""
        def num(section: Mapping, key: str, where: str, lo: float = -np.inf, lo_open: bool = False,
                hi: float = np.inf) -> float:
            try:
                v = float(section[key])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"GPU fit: {where}.{key} missing or not a number ({exc})") from exc
            if not (v > lo if lo_open else v >= lo) or v > hi or not np.isfinite(v):
                rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
                raise ValueError(f"GPU fit: {where}.{key} = {v:g}, expected a number in {rng}")
            return v

        try:
            ref, pw, th, dyn, thm, val = (d["reference"], d["power"], d["throughput"], d["dynamics"],
                                          d["thermal"], d["validity"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"GPU fit: missing section {exc}; expected reference, power, "
                             "throughput, dynamics, thermal, validity") from exc
        wl = {}
        for w in WORKLOADS:
            try:
                p, x = pw["workloads"][w], th["workloads"][w]
            except (KeyError, TypeError) as exc:
                raise ValueError(f"GPU fit: no coefficients for workload {w!r}") from exc
            wl[w] = WorkloadFit(
                p_static_w=num(p, "p_static_w", f"power.workloads.{w}", 0.0),
                p_dynamic_w=num(p, "p_dynamic_w", f"power.workloads.{w}", 0.0),
                clock_exponent=num(p, "clock_exponent", f"power.workloads.{w}", 0.0, True),
                duty=num(p, "duty", f"power.workloads.{w}", 0.0, True, 1.0),
                p_low_w=num(p, "p_low_w", f"power.workloads.{w}", 0.0),
                x_max_iter_per_s=num(x, "x_max_iter_per_s", f"throughput.workloads.{w}", 0.0),
                f_half_mhz=num(x, "f_half_mhz", f"throughput.workloads.{w}", 0.0, True),
                hill_exponent=num(x, "hill_exponent", f"throughput.workloads.{w}", 0.0, True),
            )
        return cls(
            device=str(d.get("device", "")),
            tdp_w=num(ref, "tdp_w", "reference", 0.0, True),
            max_sm_clock_mhz=num(ref, "max_sm_clock_mhz", "reference", 0.0, True),
            clock_ref_mhz=num(ref, "clock_ref_mhz", "reference", 0.0, True),
            cap_tracking=num(pw, "cap_tracking", "power", 0.0, True),
            smooth_min_order=num(pw, "smooth_min_order", "power", 0.0, True),
            workloads=MappingProxyType(wl),
            tau_down_s=num(dyn, "tau_down_s", "dynamics", 0.0, True),
            tau_up_s=num(dyn, "tau_up_s", "dynamics", 0.0, True),
            r_th_k_per_w=num(thm, "r_th_k_per_w", "thermal", 0.0),
            tau_th_s=num(thm, "tau_s", "thermal", 0.0, True),
            ambient_c=num(thm, "ambient_c", "thermal"),
            cap_range_w=(num(val, "cap_w_min", "validity"), num(val, "cap_w_max", "validity")),
            clock_range_mhz=(num(val, "sm_clock_mhz_min", "validity"), num(val, "sm_clock_mhz_max", "validity")),
            source=str(d.get("source", "")),
            fitted_on=str(d.get("fitted_on", "")),
            command=str(d.get("command", "")),
        )

    def to_dict(self) -> dict:
        """The JSON layout read by :meth:`from_dict`."""
        pw = ("p_static_w", "p_dynamic_w", "clock_exponent", "duty", "p_low_w")
        th = ("x_max_iter_per_s", "f_half_mhz", "hill_exponent")
        return {
            "device": self.device,
            "source": self.source,
            "fitted_on": self.fitted_on,
            "command": self.command,
            "reference": {"tdp_w": self.tdp_w, "max_sm_clock_mhz": self.max_sm_clock_mhz,
                          "clock_ref_mhz": self.clock_ref_mhz},
            "validity": {"cap_w_min": self.cap_range_w[0], "cap_w_max": self.cap_range_w[1],
                         "sm_clock_mhz_min": self.clock_range_mhz[0],
                         "sm_clock_mhz_max": self.clock_range_mhz[1]},
            "power": {"cap_tracking": self.cap_tracking, "smooth_min_order": self.smooth_min_order,
                      "workloads": {w: {k: getattr(c, k) for k in pw} for w, c in self.workloads.items()}},
            "throughput": {"workloads": {w: {k: getattr(c, k) for k in th} for w, c in self.workloads.items()}},
            "dynamics": {"tau_down_s": self.tau_down_s, "tau_up_s": self.tau_up_s},
            "thermal": {"r_th_k_per_w": self.r_th_k_per_w, "tau_s": self.tau_th_s, "ambient_c": self.ambient_c},
        }


def load_gpu_fit(name: str = "gpu_v100_fit") -> GpuFit:
    """Read a packaged coefficient file ``twin/physics/data/<name>.json`` (read on every call).

    Raises
    ------
    ValueError
        If no such file is packaged or its content is invalid.
    """
    path = resources.files("twin.physics").joinpath("data").joinpath(f"{name}.json")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ValueError(f"no packaged GPU fit {name!r} (expected twin/physics/data/{name}.json)") from exc
    return GpuFit.from_dict(json.loads(text))


def _coefs(fit: GpuFit, workload) -> dict:
    """Coefficients of ``workload`` (a name or an array of names) as floats or arrays."""
    names = [f.name for f in fields(WorkloadFit)]
    if isinstance(workload, str):
        if workload not in fit.workloads:
            raise ValueError(f"workload {workload!r}: expected one of {sorted(fit.workloads)}")
        c = fit.workloads[workload]
        return {k: getattr(c, k) for k in names}
    arr = np.asarray(workload, dtype=str)
    # distinct names in order of first use and each entry's row (a dict: np.unique sorts
    # strings, ~15 us; the rows hold the same numbers, in another order)
    rows: dict[str, int] = {}
    inv = [rows.setdefault(u, len(rows)) for u in arr.ravel().tolist()]
    bad = sorted(u for u in rows if u not in fit.workloads)
    if bad:
        raise ValueError(f"workload {np.str_(bad[0])!r}: expected one of {sorted(fit.workloads)}")
    table = np.array([[getattr(fit.workloads[u], k) for k in names] for u in rows])
    cols = table[np.array(inv, dtype=np.intp).reshape(arr.shape)]
    return {k: cols[..., i] for i, k in enumerate(names)}


def _scales(fit: GpuFit, profile: GpuProfile | None) -> tuple[float, float]:
    """(power scale, clock scale) from the fitted device to ``profile``."""
    if profile is None:
        return 1.0, 1.0
    return profile.max_limit_w / fit.tdp_w, profile.max_sm_clock_mhz / fit.max_sm_clock_mhz


def _resolve(fit: GpuFit | None, profile: GpuProfile | None) -> GpuFit:
    if fit is not None:
        return fit
    return load_gpu_fit(profile.power_fit if profile is not None else "gpu_v100_fit")


def _check_positive(name: str, value) -> None:
    if isinstance(value, float):  # the common case, without numpy (NaN fails, as below)
        if not value > 0.0:
            raise ValueError(f"{name} = {value!r}: expected numbers > 0")
        return
    if np.any(~(np.asarray(value, dtype=float) > 0.0)):
        raise ValueError(f"{name} = {value!r}: expected numbers > 0")


def _check_interval(dt_s) -> None:
    """``ValueError`` if any interval is negative (NaN passes, as in ``np.any(dt < 0)``)."""
    if isinstance(dt_s, float):
        if dt_s < 0.0:
            raise ValueError(f"dt_s = {dt_s!r}: expected >= 0 s")
        return
    if np.any(np.asarray(dt_s) < 0.0):
        raise ValueError(f"dt_s = {dt_s!r}: expected >= 0 s")


def smooth_min(a, b, order):
    """p-norm smooth minimum ``(a**-n + b**-n)**(-1/n)`` of positive ``a``, ``b`` [same unit].

    Below both arguments, tends to ``min(a, b)`` as ``order`` grows and is non-decreasing
    in each argument (its partial derivatives are positive), so a model built from it
    stays monotone. Computed as ``m * (1 + (m/M)**n)**(-1/n)`` with ``m = min``, ``M = max``.
    """
    lo = np.minimum(a, b)
    hi = np.maximum(a, b)
    return lo * (1.0 + (lo / hi) ** order) ** (-1.0 / order)


def _compute_phase(cap_w, sm_clock_mhz, c: dict, fit: GpuFit):
    """(clock-limited power, compute-phase power) of the fitted device [W]."""
    f_rel = np.asarray(sm_clock_mhz, dtype=float) / fit.clock_ref_mhz
    p_clock_w = c["p_static_w"] + c["p_dynamic_w"] * f_rel ** c["clock_exponent"]
    p_cap_w = fit.cap_tracking * np.asarray(cap_w, dtype=float)
    return p_clock_w, smooth_min(p_clock_w, p_cap_w, fit.smooth_min_order)


def mean_board_power_w(cap_w, sm_clock_mhz, workload, fit: GpuFit | None = None,
                       profile: GpuProfile | None = None):
    """Mean board power of a workload under a power cap and a locked SM clock [W].

    ``P = (1 - d) * p_low + d * smin(p_static + p_dyn * (f / f_ref)**alpha, eta * cap)``

    where ``smin`` is :func:`smooth_min` of order ``n``: the compute phase draws what the
    clock asks for unless the cap controller holds it at ``eta * cap``; a bursty workload
    spends ``1 - d`` of its time in a low phase the cap does not touch. With ``p_dyn,
    alpha, eta >= 0`` and ``0 < d <= 1`` (enforced when the fit is loaded), ``P`` is
    non-decreasing in ``cap_w`` and in ``sm_clock_mhz`` by construction.

    Parameters
    ----------
    cap_w : float or array
        Power cap (limit) [W], > 0. Fitted range (V100): 150-300 W.
    sm_clock_mhz : float or array
        SM clock the GPU is locked to [MHz], > 0; the cap may hold the actual clock lower
        (:func:`effective_sm_clock_mhz`). Fitted range (V100): 405-1380 MHz.
    workload : str or array of str
        ``"compute_bound"``, ``"memory_bound"`` or ``"bursty"`` (:data:`WORKLOADS`).
    fit : GpuFit, optional
        Coefficients; default: :func:`load_gpu_fit` of ``profile.power_fit`` (V100).
    profile : GpuProfile, optional
        Device to scale to. The V100 fit is scaled by ``k_p = TDP / 300 W`` on power and
        cap and ``k_f = max clock / 1530 MHz`` on clock: ``P = k_p * P_V100(cap / k_p,
        f / k_f)`` (an assumption for uncalibrated profiles). Default: the fitted device.

    Returns
    -------
    float or array
        Mean board power [W].
    """
    _check_positive("cap_w", cap_w)
    _check_positive("sm_clock_mhz", sm_clock_mhz)
    fit = _resolve(fit, profile)
    kp, kf = _scales(fit, profile)
    c = _coefs(fit, workload)
    cap = np.asarray(cap_w, dtype=float) / kp
    _, p_compute_w = _compute_phase(cap, np.asarray(sm_clock_mhz, dtype=float) / kf, c, fit)
    return kp * ((1.0 - c["duty"]) * c["p_low_w"] + c["duty"] * p_compute_w)


def effective_sm_clock_mhz(cap_w, sm_clock_mhz, workload, fit: GpuFit | None = None,
                           profile: GpuProfile | None = None):
    """SM clock in the compute phase under the cap [MHz], <= ``sm_clock_mhz``.

    The clock at which the uncapped compute-phase power equals the modelled compute-phase
    power: ``f_ref * ((p_compute - p_static) / p_dyn)**(1/alpha)``. Non-decreasing in cap
    and clock. Arguments as :func:`mean_board_power_w`.
    """
    _check_positive("cap_w", cap_w)
    _check_positive("sm_clock_mhz", sm_clock_mhz)
    fit = _resolve(fit, profile)
    kp, kf = _scales(fit, profile)
    c = _coefs(fit, workload)
    f = np.asarray(sm_clock_mhz, dtype=float) / kf
    _, p_compute_w = _compute_phase(np.asarray(cap_w, dtype=float) / kp, f, c, fit)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.maximum(p_compute_w - c["p_static_w"], 0.0) / c["p_dynamic_w"]
        f_eff = fit.clock_ref_mhz * ratio ** (1.0 / c["clock_exponent"])
    f_eff = np.where(np.asarray(c["p_dynamic_w"]) > 0.0, np.minimum(f_eff, f), f)
    return kf * f_eff


def throughput_iter_per_s(cap_w, sm_clock_mhz, workload, fit: GpuFit | None = None,
                          profile: GpuProfile | None = None):
    """Throughput [iterations/s] of the workload's benchmark kernel.

    ``X = x_max * g**h / (g**h + f_half**h)`` of the effective clock ``g`` of the fitted
    device (:func:`effective_sm_clock_mhz`); non-decreasing in cap and clock. For a scaled
    (uncalibrated) profile the iterations are V100 iterations at the same relative clock:
    compare them only within one profile. Arguments as :func:`mean_board_power_w`.
    """
    fit = _resolve(fit, profile)
    _, kf = _scales(fit, profile)
    c = _coefs(fit, workload)
    g = effective_sm_clock_mhz(cap_w, sm_clock_mhz, workload, fit, profile) / kf
    gh = g ** c["hill_exponent"]
    return c["x_max_iter_per_s"] * gh / (gh + c["f_half_mhz"] ** c["hill_exponent"])


def iterations_per_joule(cap_w, sm_clock_mhz, workload, fit: GpuFit | None = None,
                         profile: GpuProfile | None = None):
    """Energy efficiency [iterations/J]: throughput / mean board power."""
    fit = _resolve(fit, profile)
    return (throughput_iter_per_s(cap_w, sm_clock_mhz, workload, fit, profile)
            / mean_board_power_w(cap_w, sm_clock_mhz, workload, fit, profile))


@dataclass(frozen=True)
class ClassModel:
    """The calibrated model's constants for one device at one locked SM clock, per class.

    Built (and its arguments checked) once by :func:`class_model`; evaluated by
    :func:`class_power_throughput` without further checks. Everything that depends on the
    class and the clock only (the clock-limited compute power, the low-phase term, ...)
    is computed here, with the operations :func:`mean_board_power_w` and
    :func:`throughput_iter_per_s` apply to each element, so the per-call results are the
    same numbers.

    Attributes
    ----------
    kp, kf : float
        Power and clock scales from the fitted device to the profile [-].
    f_mhz : float
        The SM clock on the fitted device's scale, ``sm_clock_mhz / kf`` [MHz].
    cap_tracking, smooth_min_order, clock_ref_mhz : float
        As in :class:`GpuFit`.
    table : ndarray, shape (9, len(WORKLOADS))
        Rows: clock-limited compute power [W], ``(1 - duty) * p_low`` [W], ``duty`` [-],
        ``p_static`` [W], ``p_dynamic`` [W], ``1 / clock_exponent`` [-], ``x_max``
        [iterations/s], ``f_half**hill`` [MHz**hill], ``hill`` [-]; columns as
        :data:`WORKLOADS`.
    quiet : bool
        True where some ``p_dynamic`` is 0: the effective clock's 0/0 is silenced, as in
        :func:`effective_sm_clock_mhz`.
    """

    kp: float
    kf: float
    f_mhz: float
    cap_tracking: float
    smooth_min_order: float
    clock_ref_mhz: float
    table: np.ndarray
    quiet: bool


def class_model(sm_clock_mhz: float, fit: GpuFit | None = None, profile: GpuProfile | None = None) -> ClassModel:
    """The per-class constants of the calibrated model at ``sm_clock_mhz`` [MHz] (> 0).

    ``fit`` and ``profile`` as in :func:`mean_board_power_w`. Raises ``ValueError`` for a
    clock that is not a number > 0.
    """
    _check_positive("sm_clock_mhz", sm_clock_mhz)
    if np.ndim(sm_clock_mhz) != 0:
        raise ValueError(f"sm_clock_mhz = {sm_clock_mhz!r}: expected one number")
    fit = _resolve(fit, profile)
    kp, kf = _scales(fit, profile)
    c = _coefs(fit, np.asarray(WORKLOADS))
    f = np.asarray(sm_clock_mhz, dtype=float) / kf
    p_clock_w, _ = _compute_phase(1.0, f, c, fit)
    table = np.array([p_clock_w, (1.0 - c["duty"]) * c["p_low_w"], c["duty"], c["p_static_w"], c["p_dynamic_w"],
                      1.0 / c["clock_exponent"], c["x_max_iter_per_s"], c["f_half_mhz"] ** c["hill_exponent"],
                      c["hill_exponent"]])
    table.setflags(write=False)
    return ClassModel(kp=kp, kf=kf, f_mhz=f, cap_tracking=fit.cap_tracking, smooth_min_order=fit.smooth_min_order,
                      clock_ref_mhz=fit.clock_ref_mhz, table=table, quiet=bool(np.any(c["p_dynamic_w"] <= 0.0)))


def class_power_throughput(model: ClassModel, cap_w: np.ndarray, workload_index: np.ndarray):
    """Mean board power [W] and throughput [iterations/s] of classes under caps, unchecked.

    The same numbers as ``mean_board_power_w(cap_w, clock, names, fit, profile)`` and
    ``throughput_iter_per_s(...)`` with ``names = WORKLOADS[workload_index]`` and the
    clock, fit and profile ``model`` was built with; the compute-phase power is computed
    once for both. No argument checks: ``cap_w`` is a float array of numbers > 0 (e.g.
    caps already checked against the power-limit range), ``workload_index`` an int array
    of the same shape with values in ``range(len(WORKLOADS))``.
    """
    p_clock_w, low_w, duty, p_static_w, p_dynamic_w, inv_alpha, x_max, f_half_h, hill = model.table[:, workload_index]
    p_cap_w = model.cap_tracking * (cap_w / model.kp)
    p_compute_w = smooth_min(p_clock_w, p_cap_w, model.smooth_min_order)
    power_w = model.kp * (low_w + duty * p_compute_w)
    f = model.f_mhz
    if model.quiet:
        with np.errstate(divide="ignore", invalid="ignore"):
            f_eff = model.clock_ref_mhz * (np.maximum(p_compute_w - p_static_w, 0.0) / p_dynamic_w) ** inv_alpha
    else:
        f_eff = model.clock_ref_mhz * (np.maximum(p_compute_w - p_static_w, 0.0) / p_dynamic_w) ** inv_alpha
    f_eff = np.where(p_dynamic_w > 0.0, np.minimum(f_eff, f), f)
    gh = ((model.kf * f_eff) / model.kf) ** hill
    return power_w, x_max * gh / (gh + f_half_h)


# --------------------------------------------------------------------------- dynamics, thermal


def board_power_step(power_w, target_w, dt_s, dyn):
    """Advance board power toward a constant target with asymmetric first-order lags.

    ``dp/dt = (target - p) / tau`` with ``tau = tau_down`` when ``target < p`` and
    ``tau = tau_up`` otherwise. A first-order lag approaches its target without crossing
    it, so the direction, and with it ``tau``, is constant over the interval and the
    closed form below is exact: any split of ``dt_s`` gives the same end power and energy.

    Parameters
    ----------
    power_w : float or array
        Board power at the start of the interval [W] (one value per cohort).
    target_w : float or array
        Target power, constant over the interval [W].
    dt_s : float or array
        Interval length [s], >= 0.
    dyn : object
        Has ``tau_down_s`` and ``tau_up_s`` [s], > 0 (floats or arrays per cohort), e.g. a
        :class:`GpuProfile` or :class:`GpuFit`.

    Returns
    -------
    power_end_w : float or array
        ``target + (p0 - target) * exp(-dt / tau)`` [W].
    energy_j : float or array
        Exact energy over the interval: ``target * dt + (p0 - target) * tau * (1 -
        exp(-dt / tau))`` [J].
    """
    _check_interval(dt_s)
    _check_positive("dyn.tau_down_s", dyn.tau_down_s)
    _check_positive("dyn.tau_up_s", dyn.tau_up_s)
    power_w = np.asarray(power_w, dtype=float)
    gap_w = power_w - target_w
    tau_s = np.where(gap_w > 0.0, dyn.tau_down_s, dyn.tau_up_s)
    x = np.asarray(dt_s, dtype=float) / tau_s
    decay = np.exp(-x)
    power_end_w = target_w + gap_w * decay
    energy_j = target_w * dt_s + gap_w * tau_s * -np.expm1(-x)
    if power_end_w.ndim == 0:
        return float(power_end_w), float(energy_j)
    return power_end_w, energy_j


def junction_temp_step(temp_c, power_w, ambient_c, dt_s, r_th_k_per_w, tau_s):
    """Advance a one-node thermal RC model of the GPU junction, in closed form.

    ``tau * dT/dt = ambient + R * P - T`` with the power held constant over ``dt_s``:
    ``T_end = T_ss + (T - T_ss) * exp(-dt / tau)``, ``T_ss = ambient + R * P``.

    Parameters
    ----------
    temp_c : float or array
        Junction temperature at the start [°C].
    power_w : float or array
        Board power over the interval (e.g. its mean: energy / dt) [W].
    ambient_c : float or array
        Temperature the junction relaxes to at zero power [°C].
    dt_s : float or array
        Interval [s], >= 0.
    r_th_k_per_w : float or array
        Thermal resistance [K/W], >= 0.
    tau_s : float or array
        Thermal time constant [s], > 0.

    Returns
    -------
    float or array
        Junction temperature at the end of the interval [°C].
    """
    _check_interval(dt_s)
    _check_positive("tau_s", tau_s)
    temp_ss_c = ambient_c + r_th_k_per_w * np.asarray(power_w, dtype=float)
    return temp_ss_c + (temp_c - temp_ss_c) * np.exp(-np.asarray(dt_s, dtype=float) / tau_s)
