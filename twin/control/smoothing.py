"""Grid-compatible load smoothing: a ramp-rate limit at the meter (DCPI §5.1.2, §6.2.1).

DCPI asks the infrastructure control layer to coordinate "battery discharge operations
for grid-compatible load smoothing" with sub-second response (§5.1.2) and to eliminate
grid-destabilising power events, "typically ... power changes exceeding 50 MW within
temporal intervals less than 1 s" (§3). Synchronous AI training swings the whole job's
power once per iteration (REFERENCE.md §1.3, §8.7; :mod:`traces.training`).

The controller, one pure step per tick (:func:`smooth_step`), uses three actuators in
priority order so the grid sees at most ``max_ramp_w_per_s``:

1. **battery** (fast, both directions) within the feasible range the caller passes
   (converter limits and SoC window, e.g. ``Battery.feasible_range`` or
   :func:`twin.physics.battery.power_limits_w`);
2. **GPU power floor** (down-side only): when the load falls faster than the grid may
   and the battery cannot absorb the difference, the GPUs burn power, held no lower than
   ``max(secondary floor, previous power - ramp-down rate * dt)``: the two knobs of
   NVML power smoothing (``NVML_POWER_SMOOTHING_PROFILE_PARAM_SECONDARY_POWER_FLOOR`` [W]
   and ``..._RAMP_DOWN_RATE`` [W/s]; NVML API "Power Smoothing Information",
   https://docs.nvidia.com/deploy/nvml-api/group__nvmlPowerSmoothing.html; REFERENCE.md
   §1.2; the NVIDIA GB300 NVL72 blog calls it a power floor / "GPU burn", §1.3);
3. **workload throttling** (up-side, last resort): IT power held below demand (a power
   cap), optionally also by the NVML ramp-up rate (``..._RAMP_UP_RATE`` [W/s]).

Grid target: a first-order low-pass of the load (time constant ``lowpass_s``; 0 = the
load itself) plus a state-of-charge restoring term ``(target_soc - soc) * C /
soc_restore_s``; then clipped to ``previous grid +- max_ramp_w_per_s * dt``. What the
actuators cannot cover appears at the meter (``state.excess_w``), and the metrics count
it.

Sign convention as in :mod:`twin.physics.battery`: battery power > 0 charges
(consumption), so ``grid_w = load_w + floor_w - throttle_w + battery_w``.

All functions are numpy-vectorised over sites (broadcast arrays); ticks are sequential.
No clock, no module state. Imports only :mod:`twin.physics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from twin.physics.battery import power_limits_w, soc_after_step

__all__ = [
    "DCPI_EVENT_DELTA_W",
    "DCPI_EVENT_WINDOW_S",
    "BatteryLimits",
    "GpuSmoothingProfile",
    "PreparationPlan",
    "PreparationStep",
    "SmoothingParams",
    "SmoothingRun",
    "SmoothingState",
    "StepResult",
    "count_destabilising_events",
    "energy_j",
    "max_ramp_w_per_s",
    "prepare_for_workload",
    "simulate_smoothing",
    "smooth_step",
    "window_average_w",
]

#: DCPI §3 "grid-destabilizing power event": > 50 MW within < 1 s.
DCPI_EVENT_DELTA_W = 50e6
DCPI_EVENT_WINDOW_S = 1.0


@dataclass(frozen=True)
class GpuSmoothingProfile:
    """NVML power-smoothing profile of one GPU, and how many GPUs share it.

    Field names follow the NVML profile parameters (``NVML_POWER_SMOOTHING_PROFILE_PARAM_*``,
    NVML API "Power Smoothing Information"; Blackwell or newer; REFERENCE.md §1.2).

    Attributes
    ----------
    n_gpus : int
        GPUs under the controller.
    secondary_power_floor_w : float
        ``SECONDARY_POWER_FLOOR`` per GPU [W] (default 0: no standing floor).
    ramp_down_rate_w_per_s : float
        ``RAMP_DOWN_RATE`` per GPU [W/s]; ``nan`` (default) lets :class:`SmoothingParams`
        set the fleet ramp-down to the grid limit.
    ramp_up_rate_w_per_s : float
        ``RAMP_UP_RATE`` per GPU [W/s] (default ``inf``: rises are not limited at the GPU).
    """

    n_gpus: int
    secondary_power_floor_w: float = 0.0
    ramp_down_rate_w_per_s: float = math.nan
    ramp_up_rate_w_per_s: float = math.inf

    def __post_init__(self):
        if not (isinstance(self.n_gpus, int) and self.n_gpus >= 0):
            raise ValueError(f"n_gpus = {self.n_gpus!r}: expected an integer >= 0")
        if not self.secondary_power_floor_w >= 0:
            raise ValueError(f"secondary_power_floor_w = {self.secondary_power_floor_w!r} W: expected >= 0 W")
        if not (math.isnan(self.ramp_down_rate_w_per_s) or self.ramp_down_rate_w_per_s > 0):
            raise ValueError(f"ramp_down_rate_w_per_s = {self.ramp_down_rate_w_per_s!r} W/s: expected > 0 or nan")
        if not self.ramp_up_rate_w_per_s > 0:
            raise ValueError(f"ramp_up_rate_w_per_s = {self.ramp_up_rate_w_per_s!r} W/s: expected > 0")


@dataclass(frozen=True)
class SmoothingParams:
    """Controller parameters (fleet level, W and W/s).

    Attributes
    ----------
    max_ramp_w_per_s : float
        Ramp limit at the meter [W/s], > 0. No sourced utility figure (REFERENCE.md §8.7
        says specs are written in MW/s); the DCPI event rule (> 50 MW in < 1 s) is met by
        any limit below 50 MW/s. Default 10 MW/s (assumption).
    lowpass_s : float
        Time constant of the grid target's low-pass of the load [s], >= 0 (0: target =
        load). Default 10 s (assumption: several iteration periods).
    target_soc : float
        SoC the restoring term returns to [-]. Default 0.5.
    soc_restore_s : float
        Time constant of the SoC restoring term [s], > 0; ``inf`` disables it. Default 600 s.
    floor_w : float
        Standing fleet power floor [W] (NVML secondary floor x GPUs). Default 0.
    gpu_ramp_down_w_per_s : float
        Fleet ramp-down rate of the GPU layer [W/s]; ``nan`` (default): equal to
        ``max_ramp_w_per_s``, so the floor can hold exactly the grid ramp.
    gpu_ramp_up_w_per_s : float
        Fleet ramp-up rate enforced at the GPUs [W/s] (default ``inf``: off).
    throttle : bool
        Allow workload throttling (default True).
    min_it_w : float
        Throttling never takes the load below this [W] (default 0).
    """

    max_ramp_w_per_s: float = 10e6
    lowpass_s: float = 10.0
    target_soc: float = 0.5
    soc_restore_s: float = 600.0
    floor_w: float = 0.0
    gpu_ramp_down_w_per_s: float = math.nan
    gpu_ramp_up_w_per_s: float = math.inf
    throttle: bool = True
    min_it_w: float = 0.0

    def __post_init__(self):
        if not (self.max_ramp_w_per_s > 0 and math.isfinite(self.max_ramp_w_per_s)):
            raise ValueError(f"max_ramp_w_per_s = {self.max_ramp_w_per_s!r} W/s: expected finite > 0 W/s")
        if not self.lowpass_s >= 0:
            raise ValueError(f"lowpass_s = {self.lowpass_s!r} s: expected >= 0 s")
        if not 0.0 <= self.target_soc <= 1.0:
            raise ValueError(f"target_soc = {self.target_soc!r}: expected in [0, 1]")
        if not self.soc_restore_s > 0:
            raise ValueError(f"soc_restore_s = {self.soc_restore_s!r} s: expected > 0 s (inf: off)")
        if not self.floor_w >= 0:
            raise ValueError(f"floor_w = {self.floor_w!r} W: expected >= 0 W")
        if not (math.isnan(self.gpu_ramp_down_w_per_s) or self.gpu_ramp_down_w_per_s > 0):
            raise ValueError(f"gpu_ramp_down_w_per_s = {self.gpu_ramp_down_w_per_s!r} W/s: expected > 0 or nan")
        if not self.gpu_ramp_up_w_per_s > 0:
            raise ValueError(f"gpu_ramp_up_w_per_s = {self.gpu_ramp_up_w_per_s!r} W/s: expected > 0")
        if not self.min_it_w >= 0:
            raise ValueError(f"min_it_w = {self.min_it_w!r} W: expected >= 0 W")

    @classmethod
    def with_gpu_profile(cls, profile: GpuSmoothingProfile, **kwargs) -> SmoothingParams:
        """Params whose GPU layer is ``profile`` scaled by its GPU count."""
        return cls(floor_w=profile.n_gpus * profile.secondary_power_floor_w,
                   gpu_ramp_down_w_per_s=profile.n_gpus * profile.ramp_down_rate_w_per_s,
                   gpu_ramp_up_w_per_s=profile.n_gpus * profile.ramp_up_rate_w_per_s, **kwargs)

    @property
    def ramp_down_w_per_s(self) -> float:
        """Effective GPU-layer ramp-down [W/s]."""
        return self.max_ramp_w_per_s if math.isnan(self.gpu_ramp_down_w_per_s) else self.gpu_ramp_down_w_per_s


@dataclass(frozen=True)
class SmoothingState:
    """What the controller carries from tick to tick (floats or arrays over sites).

    Attributes
    ----------
    grid_w : meter power over the last tick [W].
    target_w : low-passed load [W].
    it_w : power actually drawn by the load last tick (demand + floor - throttle) [W].
    excess_w : what the actuators could not cover last tick (> 0: meter above its ramp
        band, < 0: below) [W]; diagnostic only.
    """

    grid_w: object
    target_w: object
    it_w: object
    excess_w: object = 0.0

    @classmethod
    def steady(cls, load_w, battery_w=0.0) -> SmoothingState:
        """State of a site that has drawn ``load_w`` for a long time."""
        load = np.asarray(load_w, dtype=float)
        return cls(grid_w=load + battery_w, target_w=load, it_w=load, excess_w=np.zeros_like(load))


@dataclass(frozen=True)
class BatteryLimits:
    """The battery as the controller sees it this tick.

    ``min_power_w <= 0 <= max_power_w``: feasible bus power over the tick [W] (positive
    = charging), already reflecting converter limits and the SoC window.
    ``soc`` [-] and ``capacity_j`` [J] feed the SoC restoring term (nan: off).
    """

    min_power_w: object
    max_power_w: object
    soc: object = math.nan
    capacity_j: object = math.nan


class StepResult(NamedTuple):
    """Output of :func:`smooth_step` (all [W], averages over the tick)."""

    state: SmoothingState
    grid_w: object
    battery_w: object
    floor_w: object
    throttle_w: object


def smooth_step(state: SmoothingState, load_w, dt_s: float, params: SmoothingParams,
                battery: BatteryLimits) -> StepResult:
    """One tick of the ramp-rate limiter at the meter.

    Parameters
    ----------
    state : SmoothingState
        From the previous tick (or :meth:`SmoothingState.steady`).
    load_w : float or array
        Facility demand at the meter this tick without smoothing [W] (IT + cooling, the
        battery excluded; e.g. the tick mean of :meth:`traces.training.TrainingPowerTrace.energy_j`).
    dt_s : float
        Tick length [s], > 0 (0.1 s for sub-second studies).
    params : SmoothingParams
    battery : BatteryLimits

    Returns
    -------
    StepResult
        ``(state, grid_w, battery_w, floor_w, throttle_w)``: meter power, battery setpoint
        (> 0 charging), extra power burned by the GPU floor (>= 0) and load withheld by
        throttling (>= 0), with ``grid = load + floor - throttle + battery``.
    """
    if not dt_s > 0:
        raise ValueError(f"dt_s = {dt_s!r} s: expected > 0 s")
    load = np.asarray(load_w, dtype=float)
    b_lo = np.asarray(battery.min_power_w, dtype=float)
    b_hi = np.asarray(battery.max_power_w, dtype=float)
    if np.any(b_lo > 0) or np.any(b_hi < 0):
        raise ValueError(f"battery limits [{battery.min_power_w!r}, {battery.max_power_w!r}] W: "
                         "expected min_power_w <= 0 <= max_power_w")
    # 1. grid target: low-passed load (exact first-order step) + SoC restoring term
    a = 1.0 if params.lowpass_s == 0 else -math.expm1(-dt_s / params.lowpass_s)
    target = state.target_w + a * (load - state.target_w)
    soc = np.asarray(battery.soc, dtype=float)
    restore = (params.target_soc - soc) * np.asarray(battery.capacity_j, dtype=float) / params.soc_restore_s
    restore = np.where(np.isfinite(restore), restore, 0.0)
    band = params.max_ramp_w_per_s * dt_s
    grid = np.clip(target + restore, state.grid_w - band, state.grid_w + band)
    # 2. battery takes the difference within its feasible range
    want = grid - load
    bat = np.clip(want, b_lo, b_hi)
    surplus = np.maximum(want - b_hi, 0.0)      # grid must stay higher than load + max charge
    deficit = np.maximum(b_lo - want, 0.0)      # grid may not rise to load - max discharge
    # 3. GPU floor (burn) for a surplus, within max(floor, it_prev - ramp_down dt)
    hold_w = np.maximum(params.floor_w, state.it_w - params.ramp_down_w_per_s * dt_s)
    floor = np.minimum(surplus, np.maximum(hold_w - load, 0.0))
    # 4. throttling for a deficit, and for the GPU ramp-up rate if one is set
    if params.throttle:
        room = np.maximum(load - params.min_it_w, 0.0)
        throttle = np.minimum(deficit, room)
        if math.isfinite(params.gpu_ramp_up_w_per_s):
            ceiling = state.it_w + params.gpu_ramp_up_w_per_s * dt_s
            throttle = np.minimum(np.maximum(throttle, load - ceiling), room)
    else:
        throttle = np.zeros_like(deficit)
    # whatever the GPU ramp-up withheld beyond the deficit, the battery no longer needs to give
    freed = np.maximum(throttle - deficit, 0.0)
    bat = np.clip(bat + freed, b_lo, b_hi)
    it = load + floor - throttle
    grid_out = it + bat
    excess = grid_out - grid
    new = SmoothingState(grid_w=grid_out, target_w=target, it_w=it, excess_w=excess)
    return StepResult(new, grid_out, bat, floor, throttle)


# ------------------------------------------------------------------ a whole run


@dataclass(frozen=True)
class SmoothingRun:
    """Series from :func:`simulate_smoothing` (one value per tick)."""

    grid_w: np.ndarray
    battery_w: np.ndarray
    floor_w: np.ndarray
    throttle_w: np.ndarray
    soc: np.ndarray
    dt_s: float


def simulate_smoothing(load_w, dt_s: float, params: SmoothingParams, *, capacity_j: float,
                       max_charge_w: float, max_discharge_w: float, initial_soc: float = 0.5,
                       soc_min: float = 0.0, soc_max: float = 1.0, charge_efficiency: float = 1.0,
                       discharge_efficiency: float = 1.0, initial_state: SmoothingState | None = None
                       ) -> SmoothingRun:
    """Run :func:`smooth_step` over a load series with an ideal-SoC battery model.

    The battery's feasible range each tick comes from
    :func:`twin.physics.battery.power_limits_w` and its SoC from
    :func:`twin.physics.battery.soc_after_step` (no ageing). For studies and tests; the
    engine uses its own :class:`~twin.facility.battery.Battery` instead.

    Parameters
    ----------
    load_w : array, shape (n,)
        Tick-mean demand [W].
    dt_s : float
        Tick [s].
    capacity_j, max_charge_w, max_discharge_w, soc_min, soc_max, charge_efficiency,
    discharge_efficiency : float
        Battery [J], [W], [-] (see :func:`twin.physics.battery.power_limits_w`).
    initial_soc : float
    initial_state : SmoothingState, optional
        Default: steady at ``load_w[0]``.

    Returns
    -------
    SmoothingRun
        ``soc`` holds the SoC at the end of each tick.
    """
    load = np.asarray(load_w, dtype=float)
    n = load.size
    st = initial_state if initial_state is not None else SmoothingState.steady(load[0])
    out = {k: np.empty(n) for k in ("grid", "bat", "floor", "thr", "soc")}
    soc = float(initial_soc)
    for k in range(n):
        lo, hi = power_limits_w(soc, dt_s, capacity_j, soc_min, soc_max, max_charge_w, max_discharge_w,
                                charge_efficiency, discharge_efficiency)
        res = smooth_step(st, load[k], dt_s, params, BatteryLimits(lo, hi, soc, capacity_j))
        st = res.state
        soc = float(soc_after_step(soc, res.battery_w, dt_s, capacity_j, charge_efficiency, discharge_efficiency))
        out["grid"][k], out["bat"][k] = res.grid_w, res.battery_w
        out["floor"][k], out["thr"][k], out["soc"][k] = res.floor_w, res.throttle_w, soc
    return SmoothingRun(out["grid"], out["bat"], out["floor"], out["thr"], out["soc"], float(dt_s))


# ----------------------------------------------------------------------- metrics


def window_average_w(power_w, dt_s: float, window_s: float = 0.1):
    """Means of ``power_w`` over consecutive, non-overlapping windows [W].

    ``window_s`` must be a whole multiple of ``dt_s`` (to 1e-9 relative); a trailing
    partial window is dropped. DCPI §7.1.2 a asks for 100 ms power measurement.
    """
    m = window_s / dt_s
    k = round(m)
    if k < 1 or abs(m - k) > 1e-9 * m:
        raise ValueError(f"window_s = {window_s!r} s: expected a whole multiple of dt_s = {dt_s!r} s")
    p = np.asarray(power_w, dtype=float)
    n = p.size // k
    return p[: n * k].reshape(n, k).mean(axis=1)


def max_ramp_w_per_s(power_w, dt_s: float, window_s: float = 0.1) -> float:
    """Largest ``|P_(i+1) - P_i| / window_s`` of the ``window_s`` averages [W/s] (0 if < 2 windows)."""
    w = window_average_w(power_w, dt_s, window_s)
    return float(np.max(np.abs(np.diff(w))) / window_s) if w.size >= 2 else 0.0


def count_destabilising_events(power_w, dt_s: float, delta_w: float = DCPI_EVENT_DELTA_W,
                               within_s: float = DCPI_EVENT_WINDOW_S, window_s: float = 0.1) -> int:
    """Number of power changes exceeding ``delta_w`` within less than ``within_s`` [-].

    On the ``window_s`` averages ``P_i`` (spacing ``window_s``) the series is cut into
    monotone runs (rising or falling; a flat step continues the run it is in). A run is
    one event if two of its samples less than ``within_s`` apart differ by more than
    ``delta_w``. So an edge split over two averaging windows counts once, a swing up and
    back down counts twice, and a slow ramp counts never. Defaults: DCPI §3 (> 50 MW
    within < 1 s) on 100 ms averages (§7.1.2 a).
    """
    if not delta_w > 0:
        raise ValueError(f"delta_w = {delta_w!r} W: expected > 0 W")
    if not within_s > 0:
        raise ValueError(f"within_s = {within_s!r} s: expected > 0 s")
    w = window_average_w(power_w, dt_s, window_s)
    if w.size < 2:
        return 0
    sign = np.sign(np.diff(w))
    nz = np.flatnonzero(sign)
    if nz.size == 0:
        return 0
    # flats take the sign of the last non-zero step before them (the first non-zero if none)
    fill = np.maximum.accumulate(np.where(sign != 0, np.arange(sign.size), -1))
    sign = sign[np.where(fill >= 0, fill, nz[0])]
    label = np.concatenate(([0], np.cumsum(sign[1:] != sign[:-1])))   # run label of each step
    max_lag = math.ceil(within_s / window_s - 1e-9) - 1         # lags with lag * window < within
    events = set()
    for lag in range(1, min(max_lag, w.size - 1) + 1):
        same = label[: w.size - lag] == label[lag - 1:]
        hit = same & (np.abs(w[lag:] - w[:-lag]) > delta_w)
        events.update(label[: w.size - lag][hit].tolist())
    return len(events)


def energy_j(power_w, dt_s: float) -> float:
    """``sum(P) * dt`` of a tick-mean series [J] (e.g. floor energy, throttled energy)."""
    return float(np.sum(np.asarray(power_w, dtype=float)) * dt_s)


# ------------------------------------------------------- predictive preparation


@dataclass(frozen=True)
class PreparationStep:
    """One scheduled action: at ``t_s`` [s], ``system`` does ``action`` (``value`` in its unit)."""

    t_s: float
    system: str
    action: str
    value: float
    reason: str


@dataclass(frozen=True)
class PreparationPlan:
    """Result of :func:`prepare_for_workload`.

    Attributes
    ----------
    steps : tuple of PreparationStep
        Time-ordered actions for the engine to schedule.
    start_energy_j : float
        Battery energy (bus side) the start ramp needs, ``P^2 / (2 R)`` [J].
    stop_energy_j : float
        Energy the battery must absorb when the job stops, ``P^2 / (2 R)`` [J].
    soc_target : float
        SoC to reach before the start [-].
    battery_lead_s : float
        Charging time to reach ``soc_target`` [s].
    feasible : bool
        False if the SoC target is outside the window or the lead time does not fit
        between announcement and start; ``reason`` says why.
    reason : str
    """

    steps: tuple
    start_energy_j: float
    stop_energy_j: float
    soc_target: float
    battery_lead_s: float
    feasible: bool
    reason: str


def prepare_for_workload(announce_t_s: float, start_t_s: float, power_w: float, *,
                         max_ramp_w_per_s: float, soc: float, capacity_j: float, soc_min: float,
                         soc_max: float, max_charge_w: float, charge_efficiency: float = 1.0,
                         discharge_efficiency: float = 1.0, swing_energy_j: float = 0.0,
                         cooling_lead_s: float = 300.0, cooling_w: float = math.nan) -> PreparationPlan:
    """Pre-charge target and pre-staging times for an announced workload (DCPI §5.1.2, §6.1.3 b).

    A step of ``power_w`` at the start, with the grid allowed to rise at ``R``, leaves a
    triangular deficit the battery covers: ``E_start = P^2 / (2 R)`` at the bus, i.e.
    ``E_start / eta_d`` from the cells. The battery must start with that (plus a swing
    buffer ``swing_energy_j``) above ``soc_min``:
    ``soc_target = soc_min + (E_start / eta_d + swing_energy_j) / C``; and the job's end
    needs ``E_stop * eta_c`` of room below ``soc_max`` (checked). Charging from ``soc`` at
    ``max_charge_w`` takes ``(soc_target - soc) C / (eta_c P_c)``; it starts that long
    before ``start_t_s`` (never before the announcement). Cooling is pre-staged
    ``cooling_lead_s`` ahead (assumption: chiller/pump start and loop pre-cooling time;
    no sourced value).

    Parameters
    ----------
    announce_t_s, start_t_s : float
        Announcement time and announced start [s].
    power_w : float
        Announced peak power step [W], >= 0.
    max_ramp_w_per_s : float
        Meter ramp limit [W/s], > 0.
    soc, capacity_j, soc_min, soc_max, max_charge_w, charge_efficiency, discharge_efficiency
        Battery now [-], [J], [-], [-], [W], [-], [-].
    swing_energy_j : float
        Extra cell energy to hold for the job's swings [J] (e.g. the largest one-sided
        swing energy ``swing_w * phase_s / 2`` over a few periods).
    cooling_lead_s : float
        Cooling pre-staging lead [s] (assumed 300 s).
    cooling_w : float
        Heat to prepare for [W] (default ``power_w``).

    Returns
    -------
    PreparationPlan
    """
    for name, v in (("power_w", power_w), ("swing_energy_j", swing_energy_j), ("cooling_lead_s", cooling_lead_s),
                    ("max_charge_w", max_charge_w)):
        if not (v >= 0 and math.isfinite(v)):
            raise ValueError(f"{name} = {v!r}: expected finite >= 0")
    if not (max_ramp_w_per_s > 0 and capacity_j > 0):
        raise ValueError(f"max_ramp_w_per_s = {max_ramp_w_per_s!r} W/s, capacity_j = {capacity_j!r} J: "
                         "expected both > 0")
    if not start_t_s >= announce_t_s:
        raise ValueError(f"start_t_s = {start_t_s!r} s: expected >= announce_t_s = {announce_t_s!r} s")
    e_start = power_w**2 / (2.0 * max_ramp_w_per_s)
    e_stop = e_start
    soc_target = soc_min + (e_start / discharge_efficiency + swing_energy_j) / capacity_j
    room_needed = e_stop * charge_efficiency / capacity_j
    need = max(soc_target - soc, 0.0)
    lead = 0.0 if need == 0.0 else (math.inf if max_charge_w == 0 else
                                    need * capacity_j / (charge_efficiency * max_charge_w))
    reasons = []
    if soc_target > soc_max - room_needed:
        reasons.append(f"soc_target {soc_target:.4g} + stop room {room_needed:.4g} exceeds soc_max {soc_max:.4g}: "
                       "battery too small for an unthrottled start and stop; throttle the ramp")
    if start_t_s - lead < announce_t_s:
        reasons.append(f"charging needs {lead:.4g} s but only {start_t_s - announce_t_s:.4g} s remain "
                       "before the start: delay the start or ramp it (throttle)")
    charge_t = max(start_t_s - lead, announce_t_s)
    cool_t = max(start_t_s - cooling_lead_s, announce_t_s)
    cw = power_w if math.isnan(cooling_w) else cooling_w
    steps = []
    if need > 0.0:
        steps.append(PreparationStep(charge_t, "battery", "charge_to_soc", min(soc_target, soc_max),
                                     f"pre-charge for a {power_w:.4g} W start at {max_ramp_w_per_s:.4g} W/s: "
                                     f"{e_start:.4g} J at the bus"))
    steps.append(PreparationStep(cool_t, "cooling", "prestage_w", cw,
                                 f"bring cooling capacity for {cw:.4g} W online {cooling_lead_s:.4g} s ahead"))
    steps.append(PreparationStep(start_t_s, "battery", "reserve_discharge_j", e_start,
                                 "hold the start energy for ramp smoothing"))
    steps.sort(key=lambda s: s.t_s)
    return PreparationPlan(tuple(steps), e_start, e_stop, soc_target, lead, not reasons, "; ".join(reasons))
