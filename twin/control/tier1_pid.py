"""Tier 1: a discrete PID per GPU cohort, 200 Hz inside event windows (seed 004 §3.1).

The controlled variable is board power ``y`` [W per GPU], the actuator the power cap
``u`` [W]. Per cohort, vectorised over cohorts (position form, tick ``Ts``):

    e[k] = r[k] - y[k]                                     r: power setpoint [W]
    P[k] = kp * e[k] if e[k] > 0 else kp_down * e[k]       gain by the sign of the error
    D[k] = kd * (e[k] - e[k-1]) / Ts                       0 on a window's first tick
    I    = I[k-1] * r[k] / r[k-1]                          the offset scales with a new setpoint,
                                                           and a step down keeps min(I, 0)
    I[k] = clip(I + ki * Ts * e[k], -I_max, I_max)         only while the lag model is at rest,
                                                           and never past an output limit
    u[k] = clip(r[k] / eta_ff + P[k] + I[k] + D[k], u_min, u_max)

**Feedforward.** Where the cap binds, board power settles at ``eta * cap`` (eta = 0.98,
docs/models.md §1), so ``u = r / eta_ff`` lands on the setpoint; the integral (kept in
watts, ``ki`` inside, so the clamp is a power) removes what is left: a plant whose
ratio differs (the fakes' ``min(demand, cap)``: I < 0, rescaled with the setpoint), or the
larger offset near a workload's uncapped power (I > 0; a step down leaves that region, so
it is dropped: landing a cut too low would cost the dead time below).

**The plant is asymmetric** (fitted V100, docs/models.md §2): a cut acts at once and power
falls with tau_down = 15.6 ms, faster than the 20 ms NVML refresh; a raise waits a 110 ms
dead time and then rises with 143.5 ms. Hence: (1) no proportional kick on a cut
(``kp_down = 0``): a cap driven below its final value can only come back through the dead
time; (2) ``kp`` pushes the cap above the target while power is below the setpoint, and
takes that overdrive back by cuts as power rises, so the approach is not delayed; (3) the
integral integrates only errors the plant's known dynamics do not explain: it is held
while :func:`lag_model_step` (a model of the fitted cap-step response, driven by the caps
written) predicts the plant is still answering a command, so nothing winds up during a
fall or a dead time. ``[u_min, u_max]`` is the plant's power-limit range, lowered to the
fallback cap (200 W) while the thermal model's junction estimate is above 85 °C.

Constants and their origins: :class:`PidParams` and docs/parameters.md (Tier 1), where
the step responses before and after this law are tabled. :func:`loop_spectral_radius` is
the linear stability check used there.

:class:`Tier1Controller` is the SimPy process: it sleeps until :meth:`~Tier1Controller.wake`
(a setpoint step, a trigger), ticks every ``tick_s`` reading ``plant.read_power_w()`` and
writing only the caps that moved more than a deadband, and goes back to sleep once every
cohort has settled; asleep, a 10 Hz watch read reopens a window if a cohort drifts out
of its band, and a closed-form timer if the junction estimate crosses a thermal
threshold. Nothing here reads a clock other than ``env.now``.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import simpy

from twin.control.plant import GpuPlant
from twin.physics.gpu import GPU_PROFILES, GpuProfile

_V100 = GPU_PROFILES["V100-SXM2-32GB"]


@dataclass(frozen=True)
class PidParams:
    """Tier-1 constants (values and origins: docs/parameters.md).

    Attributes
    ----------
    eta_ff : float
        Feedforward ``u = r / eta_ff`` [-], > 0: the fitted V100 cap-to-power ratio where the
        cap binds (0.98, docs/models.md §1).
    kp : float
        Proportional gain while power is below the setpoint [W of cap per W of error], >= 0
        (chosen: 1.0, docs/parameters.md).
    kp_down : float
        Proportional gain while power is above the setpoint [W/W], >= 0 (chosen: 0, no
        kick below the target on a cut).
    ki : float
        Integral gain [1/s], >= 0.
    kd : float
        Derivative gain [s], >= 0.
    tick_s : float
        Control period [s], > 0 (paper: 5 ms, 200 Hz).
    model_tau_down_s, model_tau_up_s : float
        Lag model of :func:`lag_model_step`: fall and (after the dead time) rise time
        constants [s], > 0. Fitted V100: tau_down 15.6 ms, tau_up_after_delay 143.5 ms
        (:meth:`for_profile` takes them from a profile).
    model_rise_delay_s : float
        Dead time of a raise in the model [s], >= 0 (fitted V100: 110.1 ms).
    integral_limit_w : float
        Anti-windup clamp on the integral term [W], >= 0.
    write_deadband_w : float
        A cohort's cap is written only if it moves more than this [W], >= 0. Also the lag
        model's rest band: a command change no larger is not written, so no transient.
    settle_band_frac : float
        Settled band: ``|e| <= settle_band_frac * |r|`` [-], > 0.
    settle_samples : int
        Consecutive settled ticks per cohort before the controller sleeps, >= 1.
    watch_period_s : float
        While asleep, read power every this [s] and reopen a window if a cohort left its
        band (``inf``: sleep until woken).
    fallback_cap_w : float
        Cap while the junction estimate is hot [W] (paper: 200 W on the V100).
    temp_limit_c : float
        Junction temperature above which the fallback engages [°C] (paper: 85 °C).
    temp_hysteresis_k : float
        The fallback releases below ``temp_limit_c - temp_hysteresis_k`` [K], >= 0.
    r_th_k_per_w, tau_th_s, ambient_c : float
        Thermal RC model of the junction [K/W, s, °C] (fitted V100 values).
    """

    eta_ff: float = 0.98
    kp: float = 1.0
    kp_down: float = 0.0
    ki: float = 10.0
    kd: float = 0.0
    tick_s: float = 0.005
    model_tau_down_s: float = _V100.tau_down_s
    model_tau_up_s: float = _V100.tau_up_after_delay_s
    model_rise_delay_s: float = _V100.rise_delay_s
    integral_limit_w: float = 25.0
    write_deadband_w: float = 1.0
    settle_band_frac: float = 0.02
    settle_samples: int = 10
    watch_period_s: float = 0.1
    fallback_cap_w: float = 200.0
    temp_limit_c: float = 85.0
    temp_hysteresis_k: float = 2.0
    r_th_k_per_w: float = _V100.r_th_k_per_w
    tau_th_s: float = _V100.tau_th_s
    ambient_c: float = 33.9  # the V100 fit's junction ambient (gpu_v100_fit.json; a test checks)

    def __post_init__(self):
        for name in ("kp", "kp_down", "ki", "kd", "model_rise_delay_s", "integral_limit_w", "write_deadband_w", "temp_hysteresis_k", "r_th_k_per_w"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name} = {v!r}: expected a finite number >= 0")
        for name in ("eta_ff", "tick_s", "model_tau_down_s", "model_tau_up_s", "settle_band_frac", "fallback_cap_w", "tau_th_s"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} = {v!r}: expected a finite number > 0")
        if not self.watch_period_s > 0:
            raise ValueError(f"watch_period_s = {self.watch_period_s!r}: expected > 0 s (inf: no watch)")
        if not (isinstance(self.settle_samples, int) and self.settle_samples >= 1):
            raise ValueError(f"settle_samples = {self.settle_samples!r}: expected an integer >= 1")
        if not (math.isfinite(self.temp_limit_c) and math.isfinite(self.ambient_c)):
            raise ValueError(f"temp_limit_c = {self.temp_limit_c!r}, ambient_c = {self.ambient_c!r}: expected finite °C")

    @cached_property
    def lag_decays(self) -> tuple[float, float]:
        """``exp(-tick_s / model_tau_down_s), exp(-tick_s / model_tau_up_s)`` [-]: the lag
        model's decay over one tick (numpy's exp, as on an array of taus)."""
        a = np.exp(np.array([-self.tick_s / self.model_tau_down_s, -self.tick_s / self.model_tau_up_s]))
        return float(a[0]), float(a[1])

    @classmethod
    def for_profile(cls, profile: GpuProfile, **overrides) -> PidParams:
        """Defaults with the thermal RC and the cap-step dynamics of ``profile`` (``overrides`` win)."""
        delayed = profile.rise_delay_s > 0 and profile.tau_up_after_delay_s is not None  # as GpuFleet
        fitted = {"r_th_k_per_w": profile.r_th_k_per_w, "tau_th_s": profile.tau_th_s,
                  "model_tau_down_s": profile.tau_down_s,
                  "model_tau_up_s": profile.tau_up_after_delay_s if delayed else profile.tau_up_s,
                  "model_rise_delay_s": profile.rise_delay_s}
        return replace(cls(), **{**fitted, **overrides})


@dataclass(frozen=True)
class PidState:
    """Per-cohort PID memory (arrays over cohorts).

    ``integral_w``: the integral term [W]; ``prev_error_w``: the previous error [W] (NaN:
    none, a window's first tick); ``setpoint_w``: the previous setpoint [W]. The lag model
    of :func:`lag_model_step`: ``model_w``, the board power it predicts [W]; ``force_w``,
    the command in force in it [W]; ``pending_w`` and ``pending_s``, a raise waiting out
    the dead time [W] and the time it has left [s] (0: none). ``None`` (the default for
    all five): no history, the model at rest on the first reading.
    """

    integral_w: np.ndarray
    prev_error_w: np.ndarray
    model_w: np.ndarray | None = None
    force_w: np.ndarray | None = None
    pending_w: np.ndarray | None = None
    pending_s: np.ndarray | None = None
    setpoint_w: np.ndarray | None = None

    @classmethod
    def zeros(cls, n: int) -> PidState:
        return cls(np.zeros(n), np.full(n, np.nan))


def lag_model_step(model_w, force_w, pending_w, pending_s, command_w, params: PidParams):
    """Advance the controller's model of the plant by one tick; pure, vectorised.

    The fitted cap-step response (docs/models.md §2), driven by the command ``eta_ff * (u -
    I)`` [W]: the board power the cap asks for, the integral's static offset left out. A
    cut acts at once and voids a pending raise; a raise of more than ``write_deadband_w``
    waits ``model_rise_delay_s`` (a raise already pending keeps its time and takes the
    latest value, as :class:`~twin.facility.gpu_fleet.GpuFleet` does); the predicted power
    follows the command in force through ``model_tau_down_s`` (falling) or
    ``model_tau_up_s`` (rising), exactly over one tick.

    Parameters
    ----------
    model_w, force_w : array
        Predicted power and command in force [W].
    pending_w, pending_s : array
        Raise waiting [W] (NaN: none) and its time left [s] (0: none).
    command_w : array
        This tick's command [W].
    params : PidParams

    Returns
    -------
    tuple of array
        ``(model_w, force_w, pending_w, pending_s)`` one tick later.
    """
    ts = params.tick_s
    v = np.asarray(command_w, dtype=float)
    force_w = np.where(v < force_w, v, force_w)
    rising = v > force_w + params.write_deadband_w
    if np.count_nonzero(rising):
        pending_s = np.where(rising, np.where(pending_s > 0, pending_s, params.model_rise_delay_s), 0.0) - ts
        pending_w = np.where(rising, v, np.nan)
        due = rising & (pending_s <= 1e-9)
        force_w = np.where(due, v, force_w)
        pending_s = np.where(rising & ~due, pending_s, 0.0)
    else:  # no raise (the common tick): nothing pending, the same values as above
        pending_s, pending_w = np.zeros(rising.shape), np.empty(rising.shape)
        pending_w.fill(np.nan)
    # exp(-ts / tau), tau = tau_down where the command in force is below the model, else
    # tau_up: numpy's exp of the two exponents, picked per cohort (elementwise: the same values)
    model_w = force_w + (model_w - force_w) * np.where(force_w < model_w, *params.lag_decays)
    return model_w, force_w, pending_w, pending_s


def model_at_rest(state: PidState, params: PidParams) -> np.ndarray:
    """Cohorts whose lag model has answered its last command: no raise pending and the
    predicted power within ``write_deadband_w`` of the command in force; pure (no model: True)."""
    if state.model_w is None:
        return np.ones(np.shape(state.integral_w), dtype=bool)
    return (state.pending_s <= 0) & (np.abs(state.model_w - state.force_w) <= params.write_deadband_w)


def pid_step(state: PidState, setpoint_w, measured_w, min_w, max_w, params: PidParams) -> tuple[PidState, np.ndarray]:
    """One PID tick for every cohort: ``(new state, cap [W])``; pure.

    The law of the module docstring. The integral is held where the lag model has not
    answered its last command, or this tick's command (I held) would start a new
    transient; it integrates the output up to a limit in the direction ``e`` pushes, not
    past it (so a cohort pushing in vain ends with its cap at the limit).

    Parameters
    ----------
    state : PidState
    setpoint_w, measured_w : array
        Board-power setpoint and measurement per cohort [W].
    min_w, max_w : array
        Output saturation per cohort [W] (power-limit range, or the thermal fallback).
    params : PidParams
    """
    return _pid_step(state, setpoint_w, measured_w, min_w, max_w, params)


def _setpoint_terms(setpoint_w: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(r_old, finite)`` of :func:`pid_step`'s rescaling for a previous setpoint array:
    ``r_old`` NaN where the setpoint is not > 0, ``finite`` its finite mask (None: all finite)."""
    r_old = np.where(setpoint_w > 0, setpoint_w, np.nan)
    finite = np.isfinite(r_old)
    return r_old, None if np.count_nonzero(finite) == finite.size else finite


def _pid_step(state: PidState, setpoint_w, measured_w, min_w, max_w, params: PidParams,
              ff_w=None, old_terms=None, rest=None) -> tuple[PidState, np.ndarray]:
    """:func:`pid_step`, optionally given terms a caller keeps per array (the same values):
    ``ff_w``, ``r / eta_ff`` of this ``setpoint_w``; ``old_terms``, :func:`_setpoint_terms`
    of ``state.setpoint_w``; ``rest``, :func:`model_at_rest` of ``state``."""
    # (per-call cost: ufunc and ndarray methods, not the fromnumeric wrappers; the masks
    # where no cohort or every cohort starts a window skip their np.where: same values)
    r = np.asarray(setpoint_w, dtype=float)
    y = np.asarray(measured_w, dtype=float)
    e = r - y
    ts, eta, band = params.tick_s, params.eta_ff, params.write_deadband_w
    first = np.isnan(state.prev_error_w)
    n_first = np.count_nonzero(first)  # (count_nonzero: a fraction of .any()'s per-call cost)
    any_first, all_first = n_first > 0, n_first == first.size
    d = 0.0 if all_first else params.kd * (e - state.prev_error_w) / ts
    if any_first and not all_first:
        d = np.where(first, 0.0, d)
    pushing_up = e > 0
    base = (r / eta if ff_w is None else ff_w) + np.where(pushing_up, params.kp, params.kp_down) * e + d
    # the lag model starts a window at rest on its last command (the plant settled, or
    # pushed in vain, while the controller slept); with no model yet, at rest on y
    if state.model_w is None:
        model = (np.broadcast_to(y, r.shape).astype(float),) * 2 + (np.full(r.shape, np.nan), np.zeros(r.shape))
    elif not any_first:
        model = (state.model_w, state.force_w, state.pending_w, state.pending_s)
    else:
        force_w = np.where(first & (state.pending_s > 0), state.pending_w, state.force_w)
        model = (np.where(first, force_w, state.model_w), force_w, state.pending_w,
                 np.where(first, 0.0, state.pending_s))
    integral = state.integral_w
    if state.setpoint_w is not None:
        # a new setpoint: the offset scales with the level; a step down sheds the part above
        # the feedforward (near a workload's uncapped power, where the lower level is not)
        r_old, finite = _setpoint_terms(state.setpoint_w) if old_terms is None else old_terms
        scaled = integral * r / r_old
        integral = scaled if finite is None else np.where(finite, scaled, integral)
        if state.setpoint_w is not r:  # (the same array: no step down)
            down = r < r_old
            if np.count_nonzero(down):
                integral = np.where(down, np.minimum(integral, 0.0), integral)
    # integrate only errors the model does not explain: it has answered the last command
    # and this tick's command (I held) starts no new transient (model_at_rest, inline)
    command_w = eta * ((base + integral).clip(min_w, max_w) - integral)
    if rest is None or any_first or state.model_w is None:  # (rest: the state's model, unchanged)
        rest = (model[3] <= 0) & (np.abs(model[0] - model[1]) <= band)
    quiet = rest & (np.abs(command_w - model[1]) <= band)
    trial = integral + params.ki * ts * e
    # anti-windup: integrate the output up to a limit in the direction e pushes, not past it
    trial = np.where(pushing_up, np.minimum(trial, np.maximum(integral, max_w - base)),
                     np.maximum(trial, np.minimum(integral, min_w - base)))
    lim = params.integral_limit_w
    integral = np.where(quiet, trial, integral).clip(-lim, lim)
    cap = (base + integral).clip(min_w, max_w)
    model = lag_model_step(*model, eta * (cap - integral), params)
    return PidState(integral, e, *model, r), cap


def thermal_max_w(temp_c, hot, min_w, max_w, params: PidParams) -> tuple[np.ndarray, np.ndarray]:
    """``(hot, upper cap limit [W])`` from the junction estimate; pure.

    A cohort turns hot above ``temp_limit_c`` and cools below ``temp_limit_c -
    temp_hysteresis_k``; while hot its cap may not exceed ``fallback_cap_w`` (kept
    inside the power-limit range).
    """
    temp_c = np.asarray(temp_c, dtype=float)
    hot = (temp_c > params.temp_limit_c) | (np.asarray(hot, dtype=bool)
                                            & (temp_c > params.temp_limit_c - params.temp_hysteresis_k))
    fallback = np.clip(params.fallback_cap_w, min_w, max_w)
    return hot, np.where(hot, np.minimum(max_w, fallback), max_w)


def time_to_temp_s(temp_c, power_w, threshold_c, params: PidParams):
    """Time until the junction estimate crosses ``threshold_c`` at constant power [s]; pure.

    ``T(t) = T_ss + (T0 - T_ss) exp(-t / tau)``, ``T_ss = ambient + R P``; ``inf`` where
    it never crosses (the threshold is not between ``T0`` and ``T_ss``), 0 where ``T0``
    is on it.
    """
    t0 = np.asarray(temp_c, dtype=float)
    t_ss = params.ambient_c + params.r_th_k_per_w * np.asarray(power_w, dtype=float)
    return _time_to_temp_ss_s(t0, t_ss, threshold_c, _crosses(t0, t_ss, threshold_c), params.tau_th_s)


def _crosses(t0, t_ss, threshold_c) -> np.ndarray:
    """Where ``threshold_c`` lies between ``t0`` and ``t_ss`` (and is not ``t_ss``) [°C]."""
    return ((t_ss - threshold_c) * (threshold_c - t0) >= 0) & (t_ss != threshold_c)


def _time_to_temp_ss_s(t0, t_ss, threshold_c, crosses, tau_th_s) -> np.ndarray:
    """:func:`time_to_temp_s` from ``T_ss`` [°C] and :func:`_crosses`; none crossing: no log."""
    if not np.count_nonzero(crosses):
        return np.full(crosses.shape, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (t0 - t_ss) / (threshold_c - t_ss)
        t = tau_th_s * np.log(ratio)
    return np.where(crosses, np.maximum(np.nan_to_num(t, nan=0.0), 0.0), np.inf)


def loop_spectral_radius(params: PidParams, tau_s: float, gain: float = 1.0, hold_ticks: int = 4,
                         delay_ticks: int = 0, falling: bool = False) -> float:
    """Per-tick spectral radius of the linearised closed loop (< 1: stable).

    Plant: ``p[k+1] = a p[k] + (1 - a) gain u[k - delay_ticks]``, ``a = exp(-Ts / tau_s)``
    (one branch of the asymmetric lag); measurement held for ``hold_ticks`` ticks
    (NVML sample-and-hold); the PID of :func:`pid_step` without saturation, with the
    proportional gain of one side: ``kp`` (power below the setpoint) or, if ``falling``,
    ``kp_down`` (above it), and the integral always on (the lag model's hold left out).
    The loop is periodic in ``hold_ticks``, so the radius is that of the product of one
    period's tick maps, to the power ``1 / hold_ticks``.

    The branches of :func:`pid_step` on the fitted plant: power above the setpoint falls
    (``tau_down``, ``falling=True``, no delay); power below it rises toward a cap that
    ``kp`` then takes back by cuts, which act at once (``tau_up_after_delay``, no delay);
    ``delay_ticks`` puts the rise delay on every move, a conservative bound.
    """
    ts, n = params.tick_s, 4 + delay_ticks
    a = math.exp(-ts / tau_s)
    eye = np.eye(n)  # state: p, I, held y, previous e, then the queued caps
    period = eye
    for k in range(hold_ticks):
        held = eye[0] if k == 0 else eye[2]
        e = -held
        integ = eye[1] + params.ki * ts * e
        u = (params.kp_down if falling else params.kp) * e + integ + params.kd * (e - eye[3]) / ts
        applied = u if delay_ticks == 0 else eye[n - 1]
        m = np.zeros((n, n))
        m[0] = a * eye[0] + (1 - a) * gain * applied
        m[1], m[2], m[3] = integ, held, e
        if delay_ticks:
            m[4] = u
            m[5:] = eye[4:n - 1]
        period = m @ period
    return float(np.max(np.abs(np.linalg.eigvals(period))) ** (1.0 / hold_ticks))


# ---------------------------------------------------------------- compiled backend
#
# One tick of Tier1Controller._tick (pid_step with lag_model_step, the write mask, the settle
# bookkeeping) as one loop over cohorts, compiled by numba in _tier1_kernel() (fastmath off:
# IEEE arithmetic, the same operations in the same order as the numpy path, which stays the
# reference; tests/test_tier1_kernel.py compares them bit for bit). numpy's min/max
# semantics are spelled out: np.maximum(a, b) and the lower bound of x.clip(lo_array, ...)
# are ``a if (math.isnan(a) or a > b) else b`` (NaN in a: a; a tie at ±0: b), np.minimum and the
# upper bound likewise with ``<``; x.clip(lo, hi) with scalar bounds keeps x on a tie
# (``x if (math.isnan(x) or x >= lo) else lo``). exp is not called: the lag model's decays come in.


def _tick_soa(sp, ctrl, all_ctrl, y, lo_w, hi_w, integral_w, prev_error_w, model_w, force_w, pending_w,
              pending_s, r_old_w, same_sp, cap_w, check_over, ref_w, ref_cap_w, count, settle_samples,
              write, prm, out):
    """One Tier-1 tick for every cohort; in place on ``cap_w, ref_w, ref_cap_w, count, write``.

    ``sp``: setpoints [W] (``ctrl``: not NaN, ``all_ctrl``: every one); ``y``: power read [W];
    ``lo_w, hi_w``: output range [W]; the state before the tick (``r_old_w``: its setpoints,
    ``same_sp``: the same array as ``sp``); ``cap_w``: the caps in force [W] (``check_over``:
    a cap above ``hi_w`` is written too); ``prm``: ``(eta_ff, kp, kp_down, kd, tick_s, ki *
    tick_s, write_deadband_w, integral_limit_w, model_rise_delay_s, lag decay down, lag decay
    up, settle_band_frac)``. Writes rows 0-7 of ``out``: integral, previous error, model,
    force, pending [W], pending [s], cap [W], setpoint [W]. Returns ``(cohorts to write,
    caps above hi_w, cohorts not settled)``.
    """
    eta, kp, kp_down, kd, ts, ki_ts = prm[0], prm[1], prm[2], prm[3], prm[4], prm[5]
    band_w, lim, delay_s, decay_down, decay_up, band_frac = prm[6], prm[7], prm[8], prm[9], prm[10], prm[11]
    nan = np.nan
    n_write = n_over = n_open = 0
    for i in range(sp.shape[0]):
        # ---- pid_step (r: the setpoint, y where not controlled)
        yi = y[i]
        c = all_ctrl or ctrl[i]
        r = sp[i] if c else yi
        e = r - yi
        pe = prev_error_w[i]
        first = math.isnan(pe)
        d = 0.0 if first else kd * (e - pe) / ts
        up = e > 0
        base = r / eta + (kp if up else kp_down) * e + d
        if first:  # the lag model at rest on its last command
            pw, ps = pending_w[i], 0.0
            fw = pw if pending_s[i] > 0 else force_w[i]
            mw = fw
        else:
            mw, fw, pw, ps = model_w[i], force_w[i], pending_w[i], pending_s[i]
        i0 = integral_w[i]
        integ = i0
        r_old = r_old_w[i]
        if not r_old > 0:
            r_old = nan
        if math.isfinite(r_old):
            integ = integ * r / r_old
        if not same_sp and r < r_old:
            integ = integ if (math.isnan(integ) or integ < 0.0) else 0.0  # np.minimum(integ, 0.0)
        lo, hi = lo_w[i], hi_w[i]
        x = base + integ
        x = x if (math.isnan(x) or x > lo) else lo
        x = x if (math.isnan(x) or x < hi) else hi
        command = eta * (x - integ)
        quiet = ps <= 0 and abs(mw - fw) <= band_w and abs(command - fw) <= band_w
        trial = integ + ki_ts * e
        if up:  # np.minimum(trial, np.maximum(integ, hi - base))
            b = hi - base
            b = integ if (math.isnan(integ) or integ > b) else b
            trial = trial if (math.isnan(trial) or trial < b) else b
        else:  # np.maximum(trial, np.minimum(integ, lo - base))
            b = lo - base
            b = integ if (math.isnan(integ) or integ < b) else b
            trial = trial if (math.isnan(trial) or trial > b) else b
        integ = trial if quiet else integ
        integ = integ if (math.isnan(integ) or integ >= -lim) else -lim
        integ = integ if (math.isnan(integ) or integ <= lim) else lim
        cap = base + integ
        cap = cap if (math.isnan(cap) or cap > lo) else lo
        cap = cap if (math.isnan(cap) or cap < hi) else hi
        # ---- lag_model_step
        v = eta * (cap - integ)
        if v < fw:  # np.where(v < fw, v, fw) (spelled out: not min's NaN rules)  # noqa: PLR1730
            fw = v
        if v > fw + band_w:
            ps = (ps if ps > 0 else delay_s) - ts
            pw = v
            if ps <= 1e-9:
                fw, ps = v, 0.0
        else:
            pw, ps = nan, 0.0
        mw = fw + (mw - fw) * (decay_down if fw < mw else decay_up)
        # ---- Tier1Controller._tick: uncontrolled cohorts keep their integral, thermal cap only
        if not c:
            integ, e = i0, nan
            cw = cap_w[i]
            cap = cw if (math.isnan(cw) or cw < hi) else hi
        out[0, i], out[1, i], out[2, i], out[3, i] = integ, e, mw, fw
        out[4, i], out[5, i], out[6, i], out[7, i] = pw, ps, cap, r
        cw = cap_w[i]
        w = abs(cap - cw) > band_w
        if check_over and cw > hi:
            n_over += 1
            w = True
        write[i] = w
        if w:
            cap_w[i] = cw = cap
            n_write += 1
        # settled: in band (or exhausted, power steady), the cap and the lag model at rest
        band = band_frac * abs(r)
        steady = abs(yi - ref_w[i]) <= band
        exhausted = ((((cw >= hi) or (integ >= lim)) and e > 0) or (((cw <= lo) or (integ <= -lim)) and e < 0)) \
            and not ps > 0
        steady_sat = exhausted and steady
        at_rest = abs(cap - ref_cap_w[i]) <= band_w and ps <= 0 and abs(mw - fw) <= band_w
        ok = ((abs(e) <= band) or steady_sat) and at_rest
        if not c:
            ok = True
        if not steady_sat:
            ref_w[i] = yi
        if not ok:
            ref_cap_w[i] = cap
        k = count[i] + 1 if ok else 0
        count[i] = k
        if k < settle_samples:
            n_open += 1
    return n_write, n_over, n_open


@functools.cache
def _tier1_kernel():
    """:func:`_tick_soa` compiled by numba for its one signature (read-only inputs of any
    layout, so every float64 array converts), cached on disk; ImportError without numba."""
    import numba
    from numba import types

    f8, b1, i8 = types.float64, types.boolean, types.int64
    ro = types.Array(f8, 1, "A", readonly=True)
    sig = types.UniTuple(i8, 3)(ro, types.Array(b1, 1, "A", readonly=True), b1, ro, ro, ro, ro, ro, ro, ro, ro,
                                ro, ro, b1, types.Array(f8, 1, "A"), b1, types.Array(f8, 1, "A"),
                                types.Array(f8, 1, "A"), types.Array(i8, 1, "A"), i8, types.Array(b1, 1, "A"),
                                ro, types.Array(f8, 2, "C"))
    return numba.njit(sig, cache=True, fastmath=False, error_model="numpy")(_tick_soa)


def _aot_fits(args) -> bool:
    """Whether the arguments fit the AOT-built :func:`_tick_soa` (:func:`twin.aot.args_fit`)."""
    from twin.aot import args_fit

    return args_fit("tier1_tick", args)


_BACKENDS = ("auto", "numba", "numpy")


def _resolve_backend(backend: str) -> str:
    """``"numba"`` or ``"numpy"`` for a :class:`Tier1Controller` ``backend`` argument: "auto"
    is numba where the kernels are built ahead of time (:mod:`twin.aot`) or the process has
    imported numba already (numba's own start-up, ~0.3 s, is then paid or shared: loading
    this kernel from its cache adds a few ms), else numpy."""
    if backend not in _BACKENDS:
        raise ValueError(f"backend={backend!r}: expected one of {_BACKENDS}")
    if backend == "auto":
        from twin import aot

        return "numba" if aot.kernels() is not None or "numba" in sys.modules else "numpy"
    if backend == "numba":
        try:
            import numba  # noqa: F401
        except ImportError as exc:
            raise ImportError("Tier1Controller(backend='numba') needs numba: pip install numba "
                              "(a core dependency of gridtwin), or use backend='numpy'") from exc
    return backend


class Tier1Controller:
    """The Tier-1 SimPy process over a :class:`GpuPlant`, vectorised over its cohorts.

    Parameters
    ----------
    env : simpy.Environment
        Simulated or :class:`simpy.rt.RealtimeEnvironment`; ``env.now`` is the only clock.
    plant : GpuPlant
    params : PidParams, optional
        Default :class:`PidParams` ``()`` (V100).
    setpoint_w : float or array, optional
        Initial board-power setpoint per cohort [W]; NaN (default): cohort not controlled.
    initial_temp_c : float or array, optional
        Junction estimate at the first reading [°C]; default steady state at that power.
    backend : {"auto", "numba", "numpy"}
        The arithmetic of a control tick: ``"numpy"``, :func:`pid_step` and the numpy
        bookkeeping (the reference); ``"numba"``, the same operations compiled as one call
        (:func:`_tick_soa`; the same results, bit for bit), ImportError without numba;
        ``"auto"``: numba if the process has imported it (as Tier 2 does), else numpy. The
        plant calls are the same. The backend in use is ``self.backend``.

    Attributes
    ----------
    ticks, writes, cohort_writes, windows, watch_polls : int
        Control ticks run, ``set_power_cap_w`` calls, caps written, event windows opened,
        reads made while asleep.
    temp_c, hot : array
        Junction estimate [°C] and thermal-fallback flag per cohort.
    setpoint_w : array
        Current setpoints [W] (NaN: not controlled); read-only, set through :meth:`wake`.
    """

    def __init__(self, env: simpy.Environment, plant: GpuPlant, params: PidParams | None = None,
                 setpoint_w=None, initial_temp_c=None, backend: str = "auto"):
        self.env, self.plant, self.params = env, plant, PidParams() if params is None else params
        n = plant.n_cohorts
        self.min_w, self.max_w = (np.asarray(a, dtype=float) for a in plant.power_limits_w())
        self.backend = _resolve_backend(backend)
        # the compiled tick: 1-d power limits of n cohorts; its parameter vector per params object
        self._compiled = self.backend == "numba" and self.min_w.shape == (n,) and self.max_w.shape == (n,)
        self._kernel = self._aot = None  # (loaded at the first compiled tick; _aot: twin.aot's module or None)
        self._kparams_of = self._kparams = self._kstate = None  # _kstate: a state known to fit the kernel
        self._write = np.zeros(n, dtype=bool)
        self.setpoint_w = np.full(n, np.nan)
        if setpoint_w is not None:
            self.setpoint_w[:] = setpoint_w
        self.setpoint_w.flags.writeable = False  # new setpoints go through wake()
        self.state = PidState.zeros(n)
        self.temp_c = None if initial_temp_c is None else np.broadcast_to(
            np.asarray(initial_temp_c, dtype=float), (n,)).copy()
        self.hot = self._cold = np.zeros(n, dtype=bool)  # _cold: self.hot while known all False
        self._cap_ok_hi = None  # an upper cap limit no cap in _cap_w exceeds (None: not known)
        self.ticks = self.writes = self.cohort_writes = self.windows = self.watch_polls = 0
        self.awake = False
        self._cap_w = np.full(n, np.nan)  # last cap read or written
        self._cap_fits = True  # _cap_w is n writable float64 (the compiled tick writes it in place)
        self._count = np.zeros(n, dtype=np.int64)
        self._ref_w = np.full(n, np.nan)
        self._ref_cap_w = np.full(n, np.nan)
        self._t_meas = self._p_meas = self._temp_ss_c = None
        self._masks_of = self._masks = self._sp_terms = None
        self._rest_of = self._rest = None  # model_at_rest of a state
        self._decay_dt_s, self._decay = math.nan, 1.0  # exp(-dt / tau_th) of the last reading's dt
        self._bell = self._timer = None  # the sleeping process's event, and its timeout
        self._wake_event = self._new_wake_event()
        if setpoint_w is not None:
            self._wake_event.succeed()
        self.process = env.process(self._run())

    # ------------------------------------------------------------------ public

    def wake(self, setpoint_w) -> None:
        """New setpoints [W] (NaN: cohort not controlled); opens a window now if asleep."""
        self.setpoint_w = np.broadcast_to(np.asarray(setpoint_w, dtype=float), self.setpoint_w.shape).copy()
        self.setpoint_w.flags.writeable = False
        self._count[:] = 0
        self._ref_w[:] = np.nan
        self._ref_cap_w[:] = np.nan
        if not self.awake and not self._wake_event.triggered:
            self._wake_event.succeed()

    # ------------------------------------------------------------------ process

    def _setpoint_masks(self) -> tuple[np.ndarray, bool, bool, np.ndarray]:
        """``(controlled, all controlled, any controlled, settle band [W])`` of the current
        setpoints, computed once per setpoint array (they change only through :meth:`wake`)."""
        if self._masks_of is not self.setpoint_w:
            sp = self.setpoint_w
            ctrl = ~np.isnan(sp)
            n_ctrl = np.count_nonzero(ctrl)
            self._masks = (ctrl, n_ctrl == ctrl.size, n_ctrl > 0, self.params.settle_band_frac * np.abs(sp))
            self._masks_of = sp
            self._sp_terms = None  # (r / eta_ff, _setpoint_terms) of sp, made at its first tick
        return self._masks

    def _new_wake_event(self) -> simpy.Event:
        """A wake event: when processed, it rings the sleeping process's bell."""
        event = self.env.event()
        event.callbacks.append(self._ring)
        return event

    def _ring(self, event: simpy.Event) -> None:
        """Callback of the wake event and of the sleep's timeout: the first of the current
        two to be processed triggers the bell (scheduled now, as ``env.any_of`` schedules
        its condition), a stale one (an earlier sleep's timeout, a replaced wake event) nothing."""
        bell = self._bell
        if bell is not None and not bell.triggered and (event is self._timer or event is self._wake_event):
            bell.succeed()

    def _sleep(self, timeout_s: float) -> simpy.Event:
        """The event the process sleeps on: ``env.any_of([wake event, env.timeout(timeout_s)])``
        (no timeout if ``timeout_s`` is inf) without the condition's bookkeeping. The same
        events are scheduled at the same moments (the timeout now, the bell when the first
        of the two is processed), so the event order at equal times is the same."""
        env = self.env
        self._bell = bell = simpy.Event(env)
        if math.isfinite(timeout_s):
            self._timer = timer = simpy.Timeout(env, timeout_s)
            timer.callbacks.append(self._ring)
        else:
            self._timer = None
        return bell

    def _run(self):
        p = self.params
        while True:
            watch_s = p.watch_period_s if self._setpoint_masks()[2] else math.inf
            yield self._sleep(min(watch_s, self._thermal_timer_s()))
            if not self._wake_event.triggered and not self._watch():
                continue
            self._wake_event = self._new_wake_event()
            self.awake = True
            self.windows += 1
            self._cap_w = np.asarray(self.plant.read_power_cap_w(), dtype=float)
            self._cap_ok_hi = None
            self._cap_fits = self._cap_w.shape == self._write.shape and self._cap_w.flags.writeable
            self._count[:] = 0
            self._ref_w[:] = np.nan
            self._ref_cap_w[:] = np.nan
            self.state = replace(self.state, prev_error_w=np.full(self.state.integral_w.shape, np.nan))
            while not self._tick():
                yield self.env.timeout(p.tick_s)
            self.awake = False

    def _measure(self) -> np.ndarray:
        """Read power and advance the junction estimate (power held since the last reading)."""
        t, y = self.env.now, np.asarray(self.plant.read_power_w(), dtype=float)
        p = self.params
        if self._t_meas is None:  # first reading: the given estimate, else steady state at this power
            if self.temp_c is None:
                self.temp_c = p.ambient_c + p.r_th_k_per_w * y
        elif t > self._t_meas:
            # junction_temp_step (twin.physics.gpu) inline, its T_ss kept from the last reading;
            # the decay kept for the last dt (the ticks of a window repeat it)
            dt = t - self._t_meas
            if dt != self._decay_dt_s:
                self._decay_dt_s, self._decay = dt, float(np.exp(-dt / p.tau_th_s))
            t_ss = self._temp_ss_c
            self.temp_c = t_ss + (self.temp_c - t_ss) * self._decay
        self._t_meas, self._p_meas = t, y
        self._temp_ss_c = p.ambient_c + p.r_th_k_per_w * y
        # thermal_max_w inline; nothing hot (the common case): the limit is max_w, and with
        # nothing hot before, hot is temp > limit alone (the hysteresis term is all False)
        temp_c = self.temp_c
        if self.hot is self._cold:
            hot = temp_c > p.temp_limit_c
        else:
            hot = (temp_c > p.temp_limit_c) | (self.hot & (temp_c > p.temp_limit_c - p.temp_hysteresis_k))
        if np.count_nonzero(hot):
            self._hi_w = np.where(hot, np.minimum(self.max_w, np.clip(p.fallback_cap_w, self.min_w, self.max_w)), self.max_w)
        else:
            self._hi_w = self.max_w
            self._cold = hot
        self.hot = hot
        return y

    def _exhausted(self, e: np.ndarray, cap_w: np.ndarray) -> np.ndarray:
        """Cohorts the PID can push no further toward their setpoint: the cap saturated, or
        the integral at its clamp, in the direction of the error (e.g. demand below setpoint),
        and no raise waiting out its dead time in the lag model (not answered yet)."""
        i, lim = self.state.integral_w, self.params.integral_limit_w
        pushing = (((cap_w >= self._hi_w) | (i >= lim)) & (e > 0)) | (((cap_w <= self.min_w) | (i <= -lim)) & (e < 0))
        if self.state.pending_s is None:
            return pushing
        return pushing & ~(self.state.pending_s > 0)  # not while a raise waits out its dead time

    def _tick(self) -> bool:
        """One control tick; True once every cohort has settled."""
        p = self.params
        self.ticks += 1
        y = self._measure()
        ctrl, all_ctrl, _, sp_band = self._setpoint_masks()
        before = self.state
        if self._compiled and self._cap_fits and y.shape == self._write.shape and (
                before is self._kstate or self._state_fits(before)):
            return self._tick_compiled(y, ctrl, all_ctrl, before)
        if all_ctrl:  # the setpoint terms and the model's rest mask kept per array
            r = self.setpoint_w
            if self._sp_terms is None:
                self._sp_terms = (r / p.eta_ff, _setpoint_terms(r))
            ff_w, terms = self._sp_terms
            state, cap = _pid_step(before, r, y, self.min_w, self._hi_w, p, ff_w,
                                   terms if before.setpoint_w is r else None,
                                   self._rest if self._rest_of is before else None)
        else:
            r = np.where(ctrl, self.setpoint_w, y)
            state, cap = pid_step(before, r, y, self.min_w, self._hi_w, p)
        e = state.prev_error_w  # r - y
        if all_ctrl:
            self.state = state
        else:  # uncontrolled cohorts keep their integral; their model follows the measured power
            self.state = PidState(np.where(ctrl, state.integral_w, before.integral_w), np.where(ctrl, e, np.nan),
                                  state.model_w, state.force_w, state.pending_w, state.pending_s, state.setpoint_w)
            cap = np.where(ctrl, cap, np.minimum(self._cap_w, self._hi_w))  # uncontrolled: thermal only
        cap_w = self._cap_w
        write = np.abs(cap - cap_w) > p.write_deadband_w
        if self._cap_ok_hi is not self._hi_w:  # a cap above the limit is written too
            over = cap_w > self._hi_w
            if np.count_nonzero(over):
                write |= over
            else:  # none: known until the limit changes (the caps written are clipped to it)
                self._cap_ok_hi = self._hi_w
        if np.count_nonzero(write):
            idx = write.nonzero()[0]  # (write is 1-d: np.flatnonzero without its wrappers)
            cap_idx = cap[idx]
            self.plant.set_power_cap_w(idx, cap_idx)
            cap_w[idx] = cap_idx
            self.writes += 1
            self.cohort_writes += idx.size
        # settled: in band (or pushing in vain: exhausted, power steady), the cap and the lag
        # model at rest (the plant has answered the last cap written)
        band = sp_band if all_ctrl else p.settle_band_frac * np.abs(r)
        steady = np.abs(y - self._ref_w) <= band
        steady_sat = self._exhausted(e, cap_w) & steady if np.count_nonzero(steady) else steady
        self._rest_of, self._rest = self.state, model_at_rest(self.state, p)  # (for the next tick's pid_step)
        at_rest = (np.abs(cap - self._ref_cap_w) <= p.write_deadband_w) & self._rest
        ok = ((np.abs(e) <= band) | steady_sat) & at_rest
        if not all_ctrl:
            ok |= ~ctrl
        # (in place, as np.where(steady_sat, ref, y), np.where(ok, ref_cap, cap), np.where(ok, count + 1, 0))
        np.copyto(self._ref_w, y, where=~steady_sat)
        np.copyto(self._ref_cap_w, cap, where=~ok)
        self._count += 1
        self._count *= ok
        return np.count_nonzero(self._count < p.settle_samples) == 0

    def _state_fits(self, state: PidState) -> bool:
        """Whether the compiled tick takes ``state``: every array there, float64, 1-d, n cohorts."""
        shape = self._write.shape
        return all(isinstance(a, np.ndarray) and a.dtype == np.float64 and a.shape == shape for a in (
            state.integral_w, state.prev_error_w, state.model_w, state.force_w, state.pending_w, state.pending_s,
            state.setpoint_w))

    def _tick_compiled(self, y: np.ndarray, ctrl: np.ndarray, all_ctrl: bool, before: PidState) -> bool:
        """:meth:`_tick` after the reading, its arithmetic in one compiled call (the same values)."""
        p = self.params
        if self._kparams_of is not p:
            self._kparams = np.array([p.eta_ff, p.kp, p.kp_down, p.kd, p.tick_s, p.ki * p.tick_s, p.write_deadband_w,
                                      p.integral_limit_w, p.model_rise_delay_s, *p.lag_decays, p.settle_band_frac])
            self._kparams_of = p
        sp, hi_w, write = self.setpoint_w, self._hi_w, self._write
        check_over = self._cap_ok_hi is not hi_w
        out = np.empty((8, write.size))
        args = (sp, ctrl, all_ctrl, y, self.min_w, hi_w, before.integral_w, before.prev_error_w, before.model_w,
                before.force_w, before.pending_w, before.pending_s, before.setpoint_w,
                all_ctrl and before.setpoint_w is sp, self._cap_w, check_over, self._ref_w, self._ref_cap_w,
                self._count, p.settle_samples, write, self._kparams, out)
        if self._kernel is None:
            from twin import aot

            self._aot = aot.kernels()
            self._kernel = self._aot.tier1_tick if self._aot is not None else _tier1_kernel()
        if self._aot is not None and not _aot_fits(args):
            # (the AOT wrapper does not check types; these arguments take numba's dispatcher)
            n_write, n_over, n_open = _tier1_kernel()(*args)
        else:
            n_write, n_over, n_open = self._kernel(*args)
        if check_over and not n_over:  # none above the limit: known until the limit changes
            self._cap_ok_hi = hi_w
        integral, e, model, force, pending_w, pending_s, cap, r = out
        self.state = self._kstate = PidState(integral, e, model, force, pending_w, pending_s, sp if all_ctrl else r)
        self._rest_of = None
        if n_write:  # (the kernel has put them in self._cap_w)
            idx = write.nonzero()[0]
            self.plant.set_power_cap_w(idx, cap[idx])
            self.writes += 1
            self.cohort_writes += idx.size
        return n_open == 0

    def _watch(self) -> bool:
        """A read while asleep: True if a controlled cohort left its band or the fallback changed."""
        self.watch_polls += 1
        hot_before, was_cold = self.hot, self.hot is self._cold
        y = self._measure()
        ctrl, all_ctrl, any_ctrl, band = self._setpoint_masks()
        if any_ctrl:
            e = self.setpoint_w - y
            if not all_ctrl:
                e = np.where(ctrl, e, 0.0)
            out = np.abs(e) > band  # False where not controlled (band NaN)
            if np.count_nonzero(out) and np.count_nonzero(out & ~self._exhausted(e, self._cap_w)):
                return True
        if not (was_cold and self.hot is self._cold) and np.count_nonzero(self.hot != hot_before):
            return True  # (all False before and after: no change)
        # a cap above the limit; none is known while neither the caps nor the limit changed
        if self._cap_ok_hi is self._hi_w:
            return False
        if np.count_nonzero(self._cap_w > self._hi_w):
            return True
        self._cap_ok_hi = self._hi_w
        return False

    def _thermal_timer_s(self) -> float:
        """Time until the junction estimate crosses its next threshold at the last power [s]."""
        if self._t_meas is None:
            return math.inf
        p = self.params
        threshold = p.temp_limit_c
        if self.hot is not self._cold and np.count_nonzero(self.hot):
            threshold = np.where(self.hot, p.temp_limit_c - p.temp_hysteresis_k, p.temp_limit_c)
        # time_to_temp_s with the T_ss of the last reading; nothing crosses (the common case): inf
        crosses = _crosses(self.temp_c, self._temp_ss_c, threshold)
        if not np.count_nonzero(crosses):
            return math.inf
        t = _time_to_temp_ss_s(self.temp_c, self._temp_ss_c, threshold, crosses, p.tau_th_s)
        # + 1 ms so the crossing has happened when the timer fires
        return max(float(t.min()) - (self.env.now - self._t_meas), 0.0) + 1e-3
