"""Battery energy storage: efficiency, state of charge, LFP ageing and dispatch laws.

All functions are pure and vectorised: every argument may be a scalar or a numpy
array (broadcast together). Units are SI and carried in the names, except where the
published ageing model fixes other units: BLAST-Lite takes temperature in kelvin
(``temp_k``) and calendar time in days (``time_days``), and counts cycling in
equivalent full cycles (``efc``, [-]) (REFERENCE.md §8.1).

Sign convention: battery power on the site bus is **positive when charging** (the
battery consumes from the bus, like any load) and negative when discharging. So
``grid_import_w = site_load_w + battery_power_w``.

Sources
-------
* Round-trip efficiency 85 %: NREL Annual Technology Baseline (Cole & Frazier 2020;
  ATB 2024 ReEDS input ``battery_ATB_2024_moderate.csv``, RTE 0.85 in every year),
  REFERENCE.md §4 and §8.6. ATB gives only the round trip; the split into equal charge
  and discharge efficiencies (``sqrt(0.85)`` each) is our assumption.
* Ageing: NREL BLAST-Lite, ``blast/models/lfp_gr_250AhPrismatic_2019.py`` (LFP/graphite
  250 Ah prismatic cell; data in Gasper et al., J. Energy Storage 2023,
  doi:10.1016/j.est.2023.109042) and ``blast/models/degradation_model.py`` (anode
  potential, stressors, power-law state update), REFERENCE.md §4.1 and §8.1.
* Anode potential: Safari & Delacourt, J. Electrochem. Soc. 158(5) A562 (2011),
  doi:10.1149/1.3567007, stoichiometry window after Schimpe et al. (2018),
  doi:10.1149/2.1181714jes, as coded in BLAST-Lite (REFERENCE.md §8.1).
* FFR: Nordic Fast Frequency Reserve, support duration 5 s or 30 s (REFERENCE.md §6.1);
  Statnett pilot 30 s (§4.2).

The functions the battery and its dispatcher call every tick take a scalar fast path
when every argument is a float or an int: the same operations in the same order without
numpy's per-call overhead (``bench/test_fastpath.py`` checks both paths agree;
``exp``/``tanh`` come from :mod:`math` there, which may differ from numpy's in the last bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from twin.physics._scalar import scalars as _scalars, fmax as _fmax, fmin as _fmin

SECONDS_PER_DAY = 86_400.0
SECONDS_PER_HOUR = 3_600.0
KELVIN_AT_0_C = 273.15

#: Round-trip efficiency of a utility Li-ion BESS [-] (NREL ATB; REFERENCE.md §4, §8.6).
ROUND_TRIP_EFFICIENCY_ATB = 0.85


# --------------------------------------------------------------------- efficiency


def split_round_trip_efficiency(round_trip_efficiency):
    """Equal charge and discharge efficiencies giving a round trip [-].

    ``eta_charge = eta_discharge = sqrt(round_trip_efficiency)``. The ATB source
    (REFERENCE.md §4) gives only the round trip; the symmetric split is an assumption.

    Parameters
    ----------
    round_trip_efficiency : float or array
        Bus-to-bus round-trip efficiency [-], in (0, 1].

    Returns
    -------
    charge_efficiency, discharge_efficiency : float or array
        [-], each ``sqrt(round_trip_efficiency)`` (0.921954... for 0.85).
    """
    eta = np.sqrt(round_trip_efficiency)
    return eta, eta


def stored_power_w(bus_power_w, charge_efficiency, discharge_efficiency):
    """Rate of change of stored energy for a power on the site bus [W].

    Charging (``bus_power_w >= 0``): ``eta_c * P``. Discharging (``P < 0``):
    ``P / eta_d`` (the cells give up more than the bus receives).

    Parameters
    ----------
    bus_power_w : float or array
        Battery power at the bus [W], positive = charging.
    charge_efficiency, discharge_efficiency : float or array
        One-way efficiencies [-], in (0, 1].

    Returns
    -------
    float or array
        dE/dt of the stored energy [W] (negative while discharging).
    """
    if _scalars(bus_power_w, charge_efficiency, discharge_efficiency):
        return charge_efficiency * bus_power_w if bus_power_w >= 0.0 else bus_power_w / discharge_efficiency
    p = np.asarray(bus_power_w, dtype=float)
    return np.where(p >= 0.0, charge_efficiency * p, p / discharge_efficiency)


def conversion_loss_power_w(bus_power_w, charge_efficiency, discharge_efficiency):
    """Power lost in conversion, from the efficiency model itself [W], >= 0.

    Charging: ``(1 - eta_c) * P``; discharging: ``(1/eta_d - 1) * |P|``. With
    :func:`stored_power_w` it satisfies ``P = stored + loss`` when charging and
    ``|P| = -stored - loss`` when discharging (to rounding).

    Parameters
    ----------
    bus_power_w : float or array
        Battery power at the bus [W], positive = charging.
    charge_efficiency, discharge_efficiency : float or array
        One-way efficiencies [-].

    Returns
    -------
    float or array
        Loss power [W].
    """
    if _scalars(bus_power_w, charge_efficiency, discharge_efficiency):
        p = float(bus_power_w)
        return (1.0 - charge_efficiency) * p if p >= 0.0 else (1.0 / discharge_efficiency - 1.0) * -p
    p = np.asarray(bus_power_w, dtype=float)
    return np.where(p >= 0.0, (1.0 - charge_efficiency) * p,
                    (1.0 / discharge_efficiency - 1.0) * -p)


def soc_after_step(soc, bus_power_w, dt_s, capacity_j, charge_efficiency, discharge_efficiency):
    """State of charge after holding a constant bus power for ``dt_s`` [-].

    ``soc + stored_power_w(P) * dt / capacity``: exact for constant power, since the
    model has no self-discharge (unsourced for grid BESS, REFERENCE.md §4) and
    constant efficiencies, so SoC is linear in time over the step.

    Parameters
    ----------
    soc : float or array
        State of charge at the start [-], fraction of the current capacity.
    bus_power_w : float or array
        Constant bus power over the step [W], positive = charging.
    dt_s : float or array
        Step length [s], >= 0.
    capacity_j : float or array
        Current (aged) energy capacity [J], > 0.
    charge_efficiency, discharge_efficiency : float or array
        One-way efficiencies [-].

    Returns
    -------
    float or array
        State of charge at the end of the step [-] (not clipped: use
        :func:`power_limits_w` to stay in the window).
    """
    return soc + stored_power_w(bus_power_w, charge_efficiency, discharge_efficiency) * dt_s / capacity_j


def power_limits_w(soc, dt_s, capacity_j, soc_min, soc_max, max_charge_w, max_discharge_w,
                   charge_efficiency, discharge_efficiency):
    """Feasible bus power range for a step: rate limits and the SoC window [W].

    ``max = min(max_charge_w, (soc_max - soc) * C / (eta_c * dt))`` and
    ``min = -min(max_discharge_w, (soc - soc_min) * C * eta_d / dt)``; a side with
    no headroom left (``soc`` at or beyond its bound) is 0. ``dt_s = 0`` gives the
    instantaneous (rate-only) limits.

    Parameters
    ----------
    soc : float or array
        State of charge now [-].
    dt_s : float or array
        Step over which the power is held [s], >= 0.
    capacity_j : float or array
        Current energy capacity [J].
    soc_min, soc_max : float or array
        SoC window [-].
    max_charge_w, max_discharge_w : float or array
        Converter / C-rate limits [W], both >= 0 (discharge given as a magnitude).
    charge_efficiency, discharge_efficiency : float or array
        One-way efficiencies [-].

    Returns
    -------
    min_power_w, max_power_w : float or array
        Feasible range [W]: ``min_power_w <= 0 <= max_power_w``.
    """
    if _scalars(soc, dt_s, capacity_j, soc_min, soc_max, max_charge_w, max_discharge_w, charge_efficiency,
                discharge_efficiency):
        head_up_j = _fmax((soc_max - soc) * capacity_j, 0.0)
        head_down_j = _fmax((soc - soc_min) * capacity_j, 0.0)
        den_up = charge_efficiency * dt_s
        energy_up_w = (head_up_j / den_up if den_up else math.copysign(math.inf, den_up)) if head_up_j > 0.0 else 0.0
        energy_down_w = ((head_down_j * discharge_efficiency / dt_s if dt_s else math.copysign(math.inf, dt_s))
                         if head_down_j > 0.0 else 0.0)
        return -_fmin(max_discharge_w, energy_down_w), _fmin(max_charge_w, energy_up_w)
    dt = np.asarray(dt_s, dtype=float)
    head_up_j = np.maximum((soc_max - soc) * capacity_j, 0.0)
    head_down_j = np.maximum((soc - soc_min) * capacity_j, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        energy_up_w = np.where(head_up_j > 0.0, head_up_j / (charge_efficiency * dt), 0.0)
        energy_down_w = np.where(head_down_j > 0.0, head_down_j * discharge_efficiency / dt, 0.0)
    max_power_w = np.minimum(max_charge_w, energy_up_w)
    min_power_w = -np.minimum(max_discharge_w, energy_down_w)
    return min_power_w, max_power_w


# ------------------------------------------------------------------------ ageing


@dataclass(frozen=True)
class BlastLfpParams:
    """Capacity-fade parameters of a BLAST-Lite LFP/graphite model.

    ``k_cal = |p1| exp(p2/T) exp(p3 Ua/T)`` [day^-pcal] and
    ``k_cyc = (p4 + p5 DOD + p6 Crate)(exp(p7/T) + exp(-p8/T))`` [EFC^-pcyc], with T in
    K and Ua in V. Units of p1..p8 follow (p2, p7, p8 in K; p3 in K/V).
    """

    p1: float
    p2: float
    p3: float
    pcal: float
    p4: float
    p5: float
    p6: float
    p7: float
    p8: float
    pcyc: float
    source: str


#: BLAST-Lite ``Lfp_Gr_250AhPrismatic`` (REFERENCE.md §4.1).
LFP_GR_250AH_PRISMATIC_2019 = BlastLfpParams(
    p1=8.37e4, p2=-5.21e3, p3=-3.56e3, pcal=0.526,
    p4=4.38e-8, p5=1.55e-8, p6=1.68e-7, p7=2.19e3, p8=1.55e5, pcyc=0.828,
    source="NREL/BLAST-Lite blast/models/lfp_gr_250AhPrismatic_2019.py (REFERENCE.md §4.1); "
           "data doi:10.1016/j.est.2023.109042",
)

#: Range of the ageing tests behind that model (BLAST-Lite ``experimental_range``,
#: REFERENCE.md §4.1): cycling temperature [°C], depth of discharge [-], charge and
#: discharge C-rate [1/h]. Outside it the model extrapolates (cycling fade badly so).
LFP_GR_250AH_PRISMATIC_2019_VALIDITY = {
    "cycling_temp_c": (10.0, 45.0),
    "dod": (0.8, 1.0),
    "soc": (0.0, 1.0),
    "max_charge_c_rate_per_h": 0.65,
    "max_discharge_c_rate_per_h": 1.0,
}


def anode_potential_v(soc):
    """Graphite anode potential versus Li/Li+ at a state of charge [V].

    BLAST-Lite ``BatteryDegradationModel._get_Ua`` (REFERENCE.md §8.1), used by every
    BLAST-Lite chemistry: lithiation ``Xa = 0.0085 + soc (0.78 - 0.0085)``, then the
    Safari & Delacourt (2011) fit
    ``0.6379 + 0.5416 exp(-305.5309 Xa) + 0.044 tanh(-(Xa - 0.1958)/0.1088)
    - 0.1978 tanh((Xa - 1.0571)/0.0854) - 0.6875 tanh((Xa + 0.0117)/0.0529)
    - 0.0175 tanh((Xa - 0.5692)/0.0875)``.
    The source calls it "not precise": it places the plateaus of the curve.

    Parameters
    ----------
    soc : float or array
        State of charge [-], 0 to 1.

    Returns
    -------
    float or array
        Ua [V] (0.6844 at SoC 0, 0.1233 at 0.5, 0.0864 at 1).
    """
    if isinstance(soc, (float, int)):
        xa = 0.0085 + float(soc) * (0.78 - 0.0085)
        return (0.6379
                + 0.5416 * math.exp(-305.5309 * xa)
                + 0.044 * math.tanh(-(xa - 0.1958) / 0.1088)
                - 0.1978 * math.tanh((xa - 1.0571) / 0.0854)
                - 0.6875 * math.tanh((xa + 0.0117) / 0.0529)
                - 0.0175 * math.tanh((xa - 0.5692) / 0.0875))
    xa = 0.0085 + np.asarray(soc, dtype=float) * (0.78 - 0.0085)
    return (0.6379
            + 0.5416 * np.exp(-305.5309 * xa)
            + 0.044 * np.tanh(-(xa - 0.1958) / 0.1088)
            - 0.1978 * np.tanh((xa - 1.0571) / 0.0854)
            - 0.6875 * np.tanh((xa + 0.0117) / 0.0529)
            - 0.0175 * np.tanh((xa - 0.5692) / 0.0875))


def lfp_calendar_rate(temp_k, anode_potential_v, params: BlastLfpParams = LFP_GR_250AH_PRISMATIC_2019):
    """Calendar-fade coefficient ``k_cal = |p1| exp(p2/T) exp(p3 Ua/T)`` [day^-pcal].

    Parameters
    ----------
    temp_k : float or array
        Cell temperature [K].
    anode_potential_v : float or array
        Ua from :func:`anode_potential_v` [V].
    params : BlastLfpParams

    Returns
    -------
    float or array
        k_cal such that ``qLoss_t = k_cal * time_days**pcal`` (4.95e-4 at 298.15 K,
        SoC 0.5; REFERENCE.md §8.1).
    """
    if _scalars(temp_k, anode_potential_v):
        return abs(params.p1) * math.exp(params.p2 / temp_k) * math.exp(params.p3 * anode_potential_v / temp_k)
    temp_k = np.asarray(temp_k, dtype=float)
    return abs(params.p1) * np.exp(params.p2 / temp_k) * np.exp(params.p3 * np.asarray(anode_potential_v) / temp_k)


def lfp_cycle_temperature_factor(temp_k, params: BlastLfpParams = LFP_GR_250AH_PRISMATIC_2019):
    """Temperature factor of the cycling coefficient ``exp(p7/T) + exp(-p8/T)`` [-].

    Decreases with T over the tested 10-45 °C (the inverse-T fit REFERENCE.md §8.1
    warns about). ``temp_k`` in K.
    """
    if isinstance(temp_k, (float, int)):
        return math.exp(params.p7 / temp_k) + math.exp(-params.p8 / temp_k)
    temp_k = np.asarray(temp_k, dtype=float)
    return np.exp(params.p7 / temp_k) + np.exp(-params.p8 / temp_k)


def lfp_cycle_rate(temp_k, dod, c_rate_per_h, params: BlastLfpParams = LFP_GR_250AH_PRISMATIC_2019):
    """Cycle-fade coefficient ``k_cyc = (p4 + p5 DOD + p6 Crate)(exp(p7/T) + exp(-p8/T))``.

    Parameters
    ----------
    temp_k : float or array
        Cell temperature [K].
    dod : float or array
        Depth of discharge over the window, ``max(SoC) - min(SoC)`` [-].
    c_rate_per_h : float or array
        Mean absolute C-rate over the window [1/h] (nominal-capacity basis).
    params : BlastLfpParams

    Returns
    -------
    float or array
        k_cyc [EFC^-pcyc] such that ``qLoss_EFC = k_cyc * efc**pcyc`` (2.22e-4 at
        298.15 K, DOD 1, 0.5 C; REFERENCE.md §8.1).
    """
    dod = np.asarray(dod, dtype=float)
    c_rate = np.asarray(c_rate_per_h, dtype=float)
    return (params.p4 + params.p5 * dod + params.p6 * c_rate) * lfp_cycle_temperature_factor(temp_k, params)


def lfp_calendar_loss(time_days, temp_k, soc, params: BlastLfpParams = LFP_GR_250AH_PRISMATIC_2019):
    """Closed-form calendar capacity loss at constant T and SoC [-].

    ``qLoss_t = k_cal(T, Ua(soc)) * time_days**pcal``.

    Parameters
    ----------
    time_days : float or array
        Storage time [day] (BLAST-Lite: ``t_secs / 86400``).
    temp_k : float or array
        Cell temperature [K].
    soc : float or array
        State of charge [-].
    params : BlastLfpParams

    Returns
    -------
    float or array
        Fraction of nominal capacity lost [-] (0.0110 after 365 d at 25 °C, SoC 0.5).
    """
    time_days = np.asarray(time_days, dtype=float)
    return lfp_calendar_rate(temp_k, anode_potential_v(soc), params) * np.power(time_days, params.pcal)


def lfp_cycle_loss(efc, temp_k, dod, c_rate_per_h, params: BlastLfpParams = LFP_GR_250AH_PRISMATIC_2019):
    """Closed-form cycling capacity loss at constant stressors [-].

    ``qLoss_EFC = k_cyc(T, DOD, Crate) * efc**pcyc``; ``efc`` in equivalent full cycles
    [-], ``temp_k`` in K, ``c_rate_per_h`` in 1/h. 0.068 after 1000 EFC at 25 °C,
    DOD 1, 0.5 C (REFERENCE.md §8.1).
    """
    return lfp_cycle_rate(temp_k, dod, c_rate_per_h, params) * np.power(np.asarray(efc, dtype=float), params.pcyc)


def lfp_relative_capacity(time_days, efc, temp_k, soc, dod, c_rate_per_h,
                          params: BlastLfpParams = LFP_GR_250AH_PRISMATIC_2019):
    """Relative capacity ``q = 1 - qLoss_t - qLoss_EFC`` at constant stressors [-].

    The published trajectory form of BLAST-Lite's LFP 250 Ah model; see
    :func:`power_law_state_step` for the form that can be stepped under varying
    stressors. Units as in :func:`lfp_calendar_loss` and :func:`lfp_cycle_loss`.
    """
    return (1.0 - lfp_calendar_loss(time_days, temp_k, soc, params)
            - lfp_cycle_loss(efc, temp_k, dod, c_rate_per_h, params))


def power_law_state_step(loss, dx, k, p):
    """Advance a power-law loss state ``y = k x**p`` by ``dx`` with the rate ``k`` now.

    State-based ("equivalent time") form: the state is mapped back to the ``x`` that
    would have produced it at the current ``k``, ``x_eq = (y/k)**(1/p)``, and
    ``y_new = k (x_eq + dx)**p``. This is the exact integral over the step, at
    constant ``k``, of BLAST-Lite's state equation ``dy/dx = k p (y/k)**((p-1)/p)``
    (``update_power_state``, REFERENCE.md §4.1, §8.1); BLAST-Lite applies that
    derivative as one explicit (Euler) step, which agrees as ``dx -> 0`` and exactly on
    the first step (``y = 0 -> k dx**p``). At constant stressors any stepping gives the
    closed form ``k x**p``.

    Parameters
    ----------
    loss : float or array
        Current loss state y [-], >= 0.
    dx : float or array
        Increment of the independent variable (days or EFC) [day] or [-], >= 0.
    k : float or array
        Rate coefficient over the step, >= 0 (units [x^-p]).
    p : float or array
        Exponent [-], in (0, 1].

    Returns
    -------
    float or array
        Loss state after the step [-]; unchanged where ``k == 0`` or ``dx == 0``.
    """
    y = np.asarray(loss, dtype=float)
    k = np.asarray(k, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_eq = np.where(k > 0.0, np.power(np.where(k > 0.0, y / k, 0.0), 1.0 / p), 0.0)
        y_new = k * np.power(x_eq + dx, p)
    return np.where((k > 0.0) & (np.asarray(dx) > 0.0), y_new, y)


# ---------------------------------------------------------------- dispatch laws
#
# Pure functions of site state returning a battery setpoint [W] (positive = charging).
# They ignore feasibility; :func:`combine_setpoints_w` applies the priority order and
# the battery's feasible range. (Control laws; they live here because they need only
# numpy and may be imported by both twin.control and twin.facility.)


def peak_shaving_power_w(site_load_w, import_limit_w, recharge_power_w=0.0):
    """Setpoint keeping grid import at or below a threshold [W].

    ``min(recharge_power_w, import_limit_w - site_load_w)``: discharge by the excess
    when the load is above the limit; below it, charge at up to ``recharge_power_w``
    but never so much that import exceeds the limit.

    Parameters
    ----------
    site_load_w : float or array
        Site power drawn from the bus, battery excluded [W].
    import_limit_w : float or array
        Grid-import threshold [W].
    recharge_power_w : float or array
        Charging power wanted when there is headroom [W], >= 0 (0: no recharge).

    Returns
    -------
    float or array
        Battery setpoint [W].
    """
    return np.minimum(recharge_power_w, np.asarray(import_limit_w, dtype=float) - site_load_w)


def ramp_smoothing_power_w(site_load_w, prev_grid_import_w, dt_s, max_ramp_w_per_s, preferred_power_w=0.0):
    """Setpoint limiting the grid-import ramp to ``max_ramp_w_per_s`` [W].

    The import the site would like, ``site_load_w + preferred_power_w``, is clipped to
    ``prev_grid_import_w +- max_ramp_w_per_s * dt_s``; the battery takes the rest:
    ``setpoint = clipped_import - site_load_w``. Sequential in time (it needs the
    import actually achieved last step); vectorised across sites.

    Parameters
    ----------
    site_load_w : float or array
        Site load this step, battery excluded [W].
    prev_grid_import_w : float or array
        Grid import achieved over the previous step [W].
    dt_s : float or array
        Step length [s].
    max_ramp_w_per_s : float or array
        Allowed |d import / dt| [W/s], >= 0.
    preferred_power_w : float or array
        What the battery would do with no ramp limit, e.g. a recharge [W].

    Returns
    -------
    float or array
        Battery setpoint [W].
    """
    if _scalars(site_load_w, prev_grid_import_w, dt_s, max_ramp_w_per_s, preferred_power_w):
        step_w = max_ramp_w_per_s * dt_s
        wanted_w = site_load_w + preferred_power_w
        return _fmin(_fmax(wanted_w, prev_grid_import_w - step_w), prev_grid_import_w + step_w) - site_load_w
    step_w = np.asarray(max_ramp_w_per_s, dtype=float) * dt_s
    wanted_w = np.asarray(site_load_w, dtype=float) + preferred_power_w
    target_w = np.clip(wanted_w, prev_grid_import_w - step_w, prev_grid_import_w + step_w)
    return target_w - site_load_w


def ffr_power_w(t_s, activation_t_s, support_duration_s, reserve_w, baseline_power_w=0.0):
    """Setpoint delivering a committed FFR reserve while it is active [W], NaN otherwise.

    Active on ``activation_t_s <= t_s < activation_t_s + support_duration_s``; then the
    battery runs at ``baseline_power_w - reserve_w``, i.e. it lowers grid import by
    ``reserve_w`` relative to its setpoint before the activation. The response is a
    step (the battery is modelled without a ramp; Nordic FFR asks for full activation
    within 0.7-1.3 s and support for 5 s or 30 s, REFERENCE.md §6.1).

    Parameters
    ----------
    t_s : float or array
        Start of the step [s].
    activation_t_s : float
        Time the frequency trigger fired [s] (``nan`` for no activation).
    support_duration_s : float
        Support duration [s] (5 or 30 for Nordic FFR).
    reserve_w : float or array
        Committed reserve power [W], >= 0.
    baseline_power_w : float or array
        Battery setpoint just before the activation [W].

    Returns
    -------
    float or array
        Battery setpoint [W], NaN where FFR is not active.
    """
    t = np.asarray(t_s, dtype=float)
    active = (t >= activation_t_s) & (t < activation_t_s + support_duration_s)
    return np.where(active, np.asarray(baseline_power_w, dtype=float) - reserve_w, np.nan)


def combine_setpoints_w(min_power_w, max_power_w, site_load_w, *, import_limit_w=np.inf,
                        ramp_smoothing_w=np.nan, recharge_power_w=0.0, ffr_w=np.nan, ffr_reserve_w=0.0):
    """One battery setpoint from the services, by priority FFR > peak shaving > ramp smoothing [W].

    1. FFR active (``ffr_w`` finite): ``clip(ffr_w, min_power_w, max_power_w)``; nothing
       else counts.
    2. Otherwise the preference is ``ramp_smoothing_w`` where finite, else
       ``recharge_power_w``.
    3. Peak shaving caps it: ``min(preference, import_limit_w - site_load_w)``, so
       grid import stays at or below the limit whatever ramp smoothing asks.
    4. The committed FFR reserve is kept free: discharge for the lower priorities is
       limited to ``min(min_power_w + ffr_reserve_w, 0)``; the charging side to
       ``max_power_w``.

    Parameters
    ----------
    min_power_w, max_power_w : float or array
        The battery's feasible range this step [W] (``Battery.feasible_range``).
    site_load_w : float or array
        Site load, battery excluded [W].
    import_limit_w : float or array
        Peak-shaving threshold on grid import [W] (``inf``: no peak shaving).
    ramp_smoothing_w : float or array
        Output of :func:`ramp_smoothing_power_w` [W] (NaN: no ramp smoothing).
    recharge_power_w : float or array
        Preferred charging power when nothing else asks [W].
    ffr_w : float or array
        Output of :func:`ffr_power_w` [W] (NaN: not active).
    ffr_reserve_w : float or array
        Committed FFR reserve to keep available [W], >= 0.

    Returns
    -------
    float or array
        Battery setpoint within ``[min_power_w, max_power_w]`` [W].
    """
    if _scalars(min_power_w, max_power_w, site_load_w, import_limit_w, ramp_smoothing_w, recharge_power_w, ffr_w,
                ffr_reserve_w):
        if math.isfinite(ffr_w):
            return _fmin(_fmax(ffr_w, min_power_w), max_power_w)
        preference_w = ramp_smoothing_w if math.isfinite(ramp_smoothing_w) else recharge_power_w
        capped_w = _fmin(preference_w, import_limit_w - site_load_w)
        lo_w = _fmin(min_power_w + ffr_reserve_w, 0.0)
        return _fmin(_fmax(capped_w, lo_w), max_power_w)
    ffr = np.asarray(ffr_w, dtype=float)
    ramp = np.asarray(ramp_smoothing_w, dtype=float)
    preference_w = np.where(np.isfinite(ramp), ramp, recharge_power_w)
    capped_w = np.minimum(preference_w, np.asarray(import_limit_w, dtype=float) - site_load_w)
    lo_w = np.minimum(np.asarray(min_power_w, dtype=float) + ffr_reserve_w, 0.0)
    services_w = np.clip(capped_w, lo_w, max_power_w)
    ffr_active = np.isfinite(ffr)
    ffr_clipped_w = np.clip(np.where(ffr_active, ffr, 0.0), min_power_w, max_power_w)
    return np.where(ffr_active, ffr_clipped_w, services_w)
