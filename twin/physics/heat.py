"""District-heat physics: heat-pump COP, network heat demand, a mixed storage tank, heat meters.

All functions are pure and vectorised: every argument may be a scalar or a numpy array
(broadcast together); a scalar in gives a float out. The ones the heat loop calls every
tick take a scalar fast path when every argument is a float or an int: the same
operations in the same order, without numpy's per-call overhead (checked against the
array path in bench/test_fastpath.py). Units are SI and carried in the
names (temperatures in °C at the interface, kelvin inside the Carnot formula).

Sources (full working in ``docs/models.md``):

* Heat-pump COP 45 °C -> 60 / 70 / 80 °C = 5.5 / 4.3 / 3.5: Zangeneh & Øi (simulation),
  REFERENCE.md §3.1. The Carnot fraction is **fitted** to those three points; REFERENCE.md
  lists the usual "0.45-0.6 of Carnot" as unsourced.
* Heat-meter maximum permissible errors: MID Annex VI (MI-004) / EN 1434, REFERENCE.md §3.4.
* Demand-profile shape and the degree-day base are **assumptions** (no source in REFERENCE.md).
* Water properties at 70 °C (IAPWS-95 values, not in REFERENCE.md).
"""

from __future__ import annotations

import math

import numpy as np
from twin.physics._scalar import scalars as _scalars

KELVIN_OFFSET = 273.15
SECONDS_PER_DAY = 86_400.0
HOURS_PER_DAY = 24.0

# Liquid water at 70 °C, 1 bar (IAPWS-95; standard property values, not in REFERENCE.md).
WATER_DENSITY_KG_PER_M3 = 977.8
WATER_CP_J_PER_KG_K = 4190.0

# Heat-exchanger approaches [K]: the 5 K per exchanger of REFERENCE.md §3.1's derived check.
EVAPORATOR_APPROACH_K = 5.0
CONDENSER_APPROACH_K = 5.0
# Carnot fraction [-], FITTED (minimax relative error) to the three Zangeneh & Øi points
# (REFERENCE.md §3.1) with the 5 K approaches above; recomputed by fit_carnot_efficiency
# in tests/test_heat.py. Errors: +3.9 % / -2.3 % / -3.9 % at 60 / 70 / 80 °C.
CARNOT_EFFICIENCY = 0.4225

# The sourced COP points (REFERENCE.md §3.1): source 45 °C, supply 60 / 70 / 80 °C.
ZANGENEH_OI_SOURCE_C = 45.0
ZANGENEH_OI_SUPPLY_C = (60.0, 70.0, 80.0)
ZANGENEH_OI_COP = (5.5, 4.3, 3.5)


def _out(x):
    x = np.asarray(x, dtype=float)
    return x if x.ndim else float(x)


# ------------------------------------------------------------------ heat pump


def carnot_cop_heating(source_c, supply_c, evaporator_approach_k=EVAPORATOR_APPROACH_K,
                       condenser_approach_k=CONDENSER_APPROACH_K):
    """Carnot heating COP between the refrigerant temperatures [-].

    ``COP_carnot = T_cond / (T_cond - T_evap)`` with ``T_cond = supply + condenser_approach``
    and ``T_evap = source - evaporator_approach`` in kelvin (REFERENCE.md §3.1).

    Parameters
    ----------
    source_c : float or array
        Temperature of the heat source entering the evaporator (liquid-cooling return) [°C].
    supply_c : float or array
        Water temperature leaving the condenser (network supply) [°C].
    evaporator_approach_k, condenser_approach_k : float or array
        Temperature differences across the evaporator and the condenser [K], >= 0.

    Raises
    ------
    ValueError
        If any ``T_cond <= T_evap`` (no lift: the formula diverges), or an approach < 0.
    """
    scalar = _scalars(source_c, supply_c, evaporator_approach_k, condenser_approach_k)
    if scalar:
        if evaporator_approach_k < 0 or condenser_approach_k < 0:
            raise ValueError(f"approaches {evaporator_approach_k!r}, {condenser_approach_k!r} K: expected >= 0")
        t_cond_k = float(supply_c) + condenser_approach_k + KELVIN_OFFSET
        t_evap_k = float(source_c) - evaporator_approach_k + KELVIN_OFFSET
        lift_k = t_cond_k - t_evap_k
        if not lift_k <= 0:
            return t_cond_k / lift_k  # NaN in, NaN out
    elif np.any(np.asarray(evaporator_approach_k) < 0) or np.any(np.asarray(condenser_approach_k) < 0):
        raise ValueError(f"approaches {evaporator_approach_k!r}, {condenser_approach_k!r} K: expected >= 0")
    else:
        t_cond_k = np.asarray(supply_c, dtype=float) + condenser_approach_k + KELVIN_OFFSET
        t_evap_k = np.asarray(source_c, dtype=float) - evaporator_approach_k + KELVIN_OFFSET
        lift_k = t_cond_k - t_evap_k
    if np.any(lift_k <= 0):
        raise ValueError(
            f"source {source_c!r} °C, supply {supply_c!r} °C: condensing temperature must exceed "
            f"evaporating temperature (lift after approaches = {lift_k!r} K, expected > 0)")
    return _out(t_cond_k / lift_k)


def heat_pump_cop(source_c, supply_c, carnot_efficiency=CARNOT_EFFICIENCY,
                  evaporator_approach_k=EVAPORATOR_APPROACH_K, condenser_approach_k=CONDENSER_APPROACH_K):
    """Heating COP as a fixed fraction of the Carnot COP [-].

    ``COP_h = eta * T_cond / (T_cond - T_evap)``, ``T_cond = supply + dT_cond``,
    ``T_evap = source - dT_evap`` [K]. With the defaults (eta 0.4225, 5 K / 5 K) this gives
    5.71 / 4.20 / 3.36 at 45 °C -> 60 / 70 / 80 °C against 5.5 / 4.3 / 3.5 simulated by
    Zangeneh & Øi (REFERENCE.md §3.1): within 4 %. Fitted on that one source temperature;
    other sources (25-60 °C) and supplies up to 90 °C are extrapolation.

    Parameters
    ----------
    source_c, supply_c : float or array
        Heat-source and supply temperatures [°C] (see :func:`carnot_cop_heating`).
    carnot_efficiency : float or array
        Fraction of the Carnot COP achieved [-], in (0, 1].
    evaporator_approach_k, condenser_approach_k : float or array
        Heat-exchanger approaches [K].

    Raises
    ------
    ValueError
        If ``carnot_efficiency`` is outside (0, 1], there is no lift, or COP <= 1.
    """
    if _scalars(source_c, supply_c, carnot_efficiency, evaporator_approach_k, condenser_approach_k):
        if carnot_efficiency <= 0 or carnot_efficiency > 1:
            raise ValueError(f"carnot_efficiency = {carnot_efficiency!r}: expected in (0, 1]")
        cop = float(carnot_efficiency) * carnot_cop_heating(source_c, supply_c, evaporator_approach_k,
                                                            condenser_approach_k)
        if cop <= 1.0:
            raise ValueError(f"heating COP {cop!r} <= 1 (lift too large for source {source_c!r} °C, "
                             f"supply {supply_c!r} °C): expected > 1")
        return cop
    if np.any(np.asarray(carnot_efficiency) <= 0) or np.any(np.asarray(carnot_efficiency) > 1):
        raise ValueError(f"carnot_efficiency = {carnot_efficiency!r}: expected in (0, 1]")
    cop = np.asarray(carnot_efficiency, dtype=float) * carnot_cop_heating(
        source_c, supply_c, evaporator_approach_k, condenser_approach_k)
    if np.any(cop <= 1.0):
        raise ValueError(f"heating COP {cop!r} <= 1 (lift too large for source {source_c!r} °C, "
                         f"supply {supply_c!r} °C): expected > 1")
    return _out(cop)


def fit_carnot_efficiency(source_c, supply_c, cop_h, evaporator_approach_k=EVAPORATOR_APPROACH_K,
                          condenser_approach_k=CONDENSER_APPROACH_K):
    """The single Carnot fraction that minimises the largest relative COP error [-].

    With ``r_i = COP_i / COP_carnot,i`` the relative error of ``eta`` at point i is
    ``eta / r_i - 1``; the largest magnitudes sit at ``min r`` and ``max r`` and are equal
    and opposite for ``eta = 2 / (1/r_min + 1/r_max)`` (minimax / Chebyshev fit).

    Parameters
    ----------
    source_c, supply_c : array
        Operating points [°C].
    cop_h : array
        Heating COP at those points [-].
    evaporator_approach_k, condenser_approach_k : float
        Approaches assumed [K].

    Returns
    -------
    float
        ``eta`` [-].
    """
    ratio = np.asarray(cop_h, dtype=float) / carnot_cop_heating(
        source_c, supply_c, evaporator_approach_k, condenser_approach_k)
    return float(2.0 / (1.0 / ratio.min() + 1.0 / ratio.max()))


def heat_pump_power_w(heat_output_w, cop):
    """Compressor electricity for a heat output [W]: ``W = Q_out / COP``.

    Parameters
    ----------
    heat_output_w : float or array
        Heat delivered by the condenser [W], >= 0.
    cop : float or array
        Heating COP [-], > 1.
    """
    if _scalars(heat_output_w, cop):
        return float(heat_output_w) / cop
    return _out(np.asarray(heat_output_w, dtype=float) / cop)


def heat_pump_source_heat_w(heat_output_w, cop):
    """Heat drawn from the source by the evaporator for a heat output [W].

    ``Q_source = Q_out * (COP - 1) / COP`` (first law: ``Q_out = Q_source + W``).

    Parameters
    ----------
    heat_output_w : float or array
        Heat delivered by the condenser [W], >= 0.
    cop : float or array
        Heating COP [-], > 1.
    """
    if _scalars(heat_output_w, cop):
        return float(heat_output_w) * (cop - 1.0) / cop
    cop = np.asarray(cop, dtype=float)
    return _out(np.asarray(heat_output_w, dtype=float) * (cop - 1.0) / cop)


def heat_pump_output_from_source_w(heat_source_w, cop):
    """Condenser heat output when the evaporator takes ``heat_source_w`` [W].

    ``Q_out = Q_source * COP / (COP - 1)`` (``= Q_source + W`` with ``W = Q_source / (COP - 1)``).

    Parameters
    ----------
    heat_source_w : float or array
        Heat taken from the source [W], >= 0.
    cop : float or array
        Heating COP [-], > 1.
    """
    if _scalars(heat_source_w, cop):
        return float(heat_source_w) * cop / (cop - 1.0)
    cop = np.asarray(cop, dtype=float)
    return _out(np.asarray(heat_source_w, dtype=float) * cop / (cop - 1.0))


def heat_pump_output_w(heat_source_w, power_w):
    """First law for the heat pump: heat out = heat from the source + electricity [W]."""
    return _out(np.asarray(heat_source_w, dtype=float) + power_w)


# ------------------------------------------------------------------ network demand


def heating_degree_days_k_day(daily_mean_ambient_c, base_c=15.5):
    """Heating degree days of one day [K·d]: ``max(base - T_mean, 0)``.

    Parameters
    ----------
    daily_mean_ambient_c : float or array
        Daily mean outdoor dry-bulb [°C].
    base_c : float
        Base temperature [°C]. 15.5 °C is an assumption (a common convention; no source
        in REFERENCE.md).
    """
    return _out(np.maximum(base_c - np.asarray(daily_mean_ambient_c, dtype=float), 0.0))


def diurnal_demand_shape(utc_hour, morning_peak_utc_h=6.0, evening_peak_utc_h=17.0, morning_weight=0.15,
                         evening_weight=0.10, concentration=2.0):
    """Relative heat demand over the day, with mean exactly 1 over any 24 h [-].

    ``s(h) = (1 - a_m - a_e) + a_m * v(h; h_m) + a_e * v(h; h_e)`` with the periodic
    (von Mises) bump ``v(h; h0) = exp(k cos(2 pi (h - h0)/24)) / I0(k)``, whose mean over a
    day is exactly 1. All parameters are **assumptions** (no source in REFERENCE.md): peaks
    at 07:00 and 18:00 CET, a morning peak stronger than the evening one; with the defaults
    the shape runs from about 0.83 (around midnight UTC) to about 1.24 (the morning peak).

    Parameters
    ----------
    utc_hour : float or array
        Hour of day in UTC (any real number, wraps every 24 h) [h].
    morning_peak_utc_h, evening_peak_utc_h : float
        Centres of the two peaks [h, UTC].
    morning_weight, evening_weight : float
        Share of the daily energy in each bump [-], >= 0 with sum <= 1 (keeps ``s >= 0``).
    concentration : float
        von Mises concentration ``k`` [-], >= 0; a bump's width is about 24 / (2 pi sqrt(k)) h.

    Raises
    ------
    ValueError
        If a weight is negative, the weights sum above 1, or ``concentration < 0``.
    """
    if morning_weight < 0 or evening_weight < 0 or morning_weight + evening_weight > 1:
        raise ValueError(f"weights {morning_weight!r}, {evening_weight!r}: expected >= 0 with sum <= 1")
    if concentration < 0:
        raise ValueError(f"concentration = {concentration!r}: expected >= 0")
    h = np.asarray(utc_hour, dtype=float)
    w = 2.0 * np.pi / HOURS_PER_DAY
    # exp(k (cos - 1)) / (exp(-k) I0(k)) avoids overflow for large k; np.i0 is exact enough here.
    norm = np.exp(-concentration) * np.i0(concentration)
    bump_m = np.exp(concentration * (np.cos(w * (h - morning_peak_utc_h)) - 1.0)) / norm
    bump_e = np.exp(concentration * (np.cos(w * (h - evening_peak_utc_h)) - 1.0)) / norm
    return _out((1.0 - morning_weight - evening_weight) + morning_weight * bump_m + evening_weight * bump_e)


def district_heat_demand_w(utc_hour, daily_mean_ambient_c, base_load_w, heat_loss_coefficient_w_per_k,
                           base_c=15.5, **shape):
    """Municipal heat demand of a network [W]: degree-day seasonality times a diurnal shape.

    ``Q(h) = (Q_base + H * HDD(T_mean)) * s(h)``: the daily mean power (daily energy / 86 400 s)
    is ``Q_base + H * max(base - T_mean, 0)``, exactly, because ``s`` has mean 1.

    Parameters
    ----------
    utc_hour : float or array
        Hour of day in UTC [h].
    daily_mean_ambient_c : float or array
        Daily mean outdoor dry-bulb [°C].
    base_load_w : float
        Weather-independent mean load (hot water, network losses) [W], >= 0.
    heat_loss_coefficient_w_per_k : float
        Space-heating mean power per kelvin of degree days [W/K], >= 0.
    base_c : float
        Degree-day base temperature [°C] (assumption, see :func:`heating_degree_days_k_day`).
    **shape
        Keyword parameters of :func:`diurnal_demand_shape`.

    Raises
    ------
    ValueError
        If ``base_load_w`` or ``heat_loss_coefficient_w_per_k`` is negative.
    """
    if base_load_w < 0 or heat_loss_coefficient_w_per_k < 0:
        raise ValueError(f"base_load_w = {base_load_w!r}, heat_loss_coefficient_w_per_k = "
                         f"{heat_loss_coefficient_w_per_k!r}: expected >= 0")
    daily_mean_w = base_load_w + heat_loss_coefficient_w_per_k * heating_degree_days_k_day(daily_mean_ambient_c,
                                                                                          base_c)
    return _out(daily_mean_w * diurnal_demand_shape(utc_hour, **shape))


def annual_heat_demand_coefficients(annual_energy_j, base_load_fraction, annual_degree_days_k_day,
                                    days_per_year=365.0):
    """``(base_load_w, heat_loss_coefficient_w_per_k)`` that give an annual heat energy [W, W/K].

    ``Q_base = f * E / (365 d)`` and ``H = (1 - f) * E / (HDD_year * 86 400 s)`` so that
    ``sum over days of (Q_base + H * HDD_day) * 86 400 s = E``. Example (REFERENCE.md §3.3):
    Meta Odense's 100 000 MWh/yr = 3.6e14 J, 11.4 MW on average.

    Parameters
    ----------
    annual_energy_j : float
        Heat sold to the network in a year [J].
    base_load_fraction : float
        Share of it that does not depend on weather [-], in [0, 1] (assumption per network).
    annual_degree_days_k_day : float
        Sum of daily degree days over the year at the chosen base [K·d], > 0.
    days_per_year : float
        [d].
    """
    if not 0.0 <= base_load_fraction <= 1.0:
        raise ValueError(f"base_load_fraction = {base_load_fraction!r}: expected in [0, 1]")
    if not annual_degree_days_k_day > 0:
        raise ValueError(f"annual_degree_days_k_day = {annual_degree_days_k_day!r}: expected > 0")
    base_w = base_load_fraction * annual_energy_j / (days_per_year * SECONDS_PER_DAY)
    h_w_per_k = (1.0 - base_load_fraction) * annual_energy_j / (annual_degree_days_k_day * SECONDS_PER_DAY)
    return float(base_w), float(h_w_per_k)


def outdoor_reset_supply_c(daily_mean_ambient_c, supply_warm_c=70.0, supply_cold_c=90.0, warm_ambient_c=15.0,
                           cold_ambient_c=-15.0):
    """Supply setpoint that rises linearly as the weather cools, clipped to its two ends [°C].

    DCPI (seed 000) §6.3.2 b asks for 70-90 °C "with automated adjustment for seasonal
    demand variations"; the straight line and its corner points are an **assumption**.

    Parameters
    ----------
    daily_mean_ambient_c : float or array
        Daily mean outdoor dry-bulb [°C].
    supply_warm_c, supply_cold_c : float
        Setpoint at and above ``warm_ambient_c`` / at and below ``cold_ambient_c`` [°C].
    warm_ambient_c, cold_ambient_c : float
        Corner temperatures [°C], ``warm > cold``.
    """
    if not warm_ambient_c > cold_ambient_c:
        raise ValueError(f"warm_ambient_c = {warm_ambient_c!r} must exceed cold_ambient_c = {cold_ambient_c!r}")
    x = (warm_ambient_c - np.asarray(daily_mean_ambient_c, dtype=float)) / (warm_ambient_c - cold_ambient_c)
    return _out(supply_warm_c + np.clip(x, 0.0, 1.0) * (supply_cold_c - supply_warm_c))


# ------------------------------------------------------------------ storage tank (fully mixed)


def _phi(x):
    """(1 - exp(-x)) / x, with phi(0) = 1 [-]."""
    if isinstance(x, (float, int)):
        return -math.expm1(-x) / x if x > 0 else 1.0
    x = np.asarray(x, dtype=float)
    safe = np.where(x > 0, x, 1.0)
    return np.where(x > 0, -np.expm1(-safe) / safe, 1.0)


def _check_tank(dt_s, heat_capacity_j_per_k, ua_w_per_k):
    if _scalars(dt_s, heat_capacity_j_per_k, ua_w_per_k) and dt_s > 0 and heat_capacity_j_per_k > 0 \
            and ua_w_per_k >= 0:
        return
    if np.any(np.asarray(dt_s) <= 0):
        raise ValueError(f"dt_s = {dt_s!r}: expected > 0 s")
    if np.any(np.asarray(heat_capacity_j_per_k) <= 0):
        raise ValueError(f"heat_capacity_j_per_k = {heat_capacity_j_per_k!r}: expected > 0 J/K")
    if np.any(np.asarray(ua_w_per_k) < 0):
        raise ValueError(f"ua_w_per_k = {ua_w_per_k!r}: expected >= 0 W/K")


def mixed_tank_step(temp_c, net_heat_in_w, ambient_c, dt_s, heat_capacity_j_per_k, ua_w_per_k):
    """Exact step of a fully mixed tank with standing loss to ambient, constant inputs.

    ``C dT/dt = P - UA (T - T_amb)`` with ``P`` (net heat in) and ``T_amb`` constant over
    the step has ``T(t) = T_eq + (T0 - T_eq) exp(-t/tau)``, ``tau = C/UA``,
    ``T_eq = T_amb + P/UA``. With ``x = dt/tau``, ``phi = (1 - exp(-x))/x`` and the initial
    loss rate ``L0 = UA (T0 - T_amb)``:

    * stored change ``dE = C (T1 - T0) = (P - L0) dt phi``
    * standing loss ``E_loss = int UA (T - T_amb) dt = (L0 phi + P (1 - phi)) dt``

    so ``dE + E_loss = P dt`` to rounding, for any step length (UA = 0 gives phi = 1).

    Parameters
    ----------
    temp_c : float or array
        Tank temperature at the start of the step [°C].
    net_heat_in_w : float or array
        Charging minus discharging heat flow, constant over the step [W].
    ambient_c : float or array
        Temperature around the tank [°C].
    dt_s : float or array
        Step length [s], > 0.
    heat_capacity_j_per_k : float or array
        ``rho V cp`` of the water [J/K], > 0.
    ua_w_per_k : float or array
        Loss coefficient to ambient [W/K], >= 0.

    Returns
    -------
    (temp_end_c, stored_change_j, loss_j)
        End temperature [°C], change in stored heat [J], standing loss over the step [J].
    """
    _check_tank(dt_s, heat_capacity_j_per_k, ua_w_per_k)
    if _scalars(temp_c, net_heat_in_w, ambient_c, dt_s, heat_capacity_j_per_k, ua_w_per_k):
        t0, p = float(temp_c), float(net_heat_in_w)
        loss0_w = ua_w_per_k * (t0 - ambient_c)
        phi = _phi(float(dt_s) * ua_w_per_k / heat_capacity_j_per_k)
        stored_j = (p - loss0_w) * dt_s * phi
        loss_j = (loss0_w * phi + p * (1.0 - phi)) * dt_s
        return t0 + stored_j / heat_capacity_j_per_k, stored_j, loss_j
    t0 = np.asarray(temp_c, dtype=float)
    p = np.asarray(net_heat_in_w, dtype=float)
    loss0_w = ua_w_per_k * (t0 - ambient_c)
    phi = _phi(np.asarray(dt_s, dtype=float) * ua_w_per_k / heat_capacity_j_per_k)
    stored_j = (p - loss0_w) * dt_s * phi
    loss_j = (loss0_w * phi + p * (1.0 - phi)) * dt_s
    temp_end = t0 + stored_j / heat_capacity_j_per_k
    return _out(temp_end), _out(stored_j), _out(loss_j)


def mixed_tank_power_to_reach_w(temp_c, target_c, ambient_c, dt_s, heat_capacity_j_per_k, ua_w_per_k):
    """Constant net heat flow that takes the tank from ``temp_c`` to ``target_c`` in ``dt_s`` [W].

    Inverse of :func:`mixed_tank_step`: ``P = L0 + C (T1 - T0) / (dt phi)``. Negative means
    the tank can give that much heat while ending at ``target_c``.

    Parameters
    ----------
    temp_c, target_c, ambient_c : float or array
        Start, end and ambient temperatures [°C].
    dt_s, heat_capacity_j_per_k, ua_w_per_k : float or array
        As in :func:`mixed_tank_step` [s, J/K, W/K].
    """
    _check_tank(dt_s, heat_capacity_j_per_k, ua_w_per_k)
    if _scalars(temp_c, target_c, ambient_c, dt_s, heat_capacity_j_per_k, ua_w_per_k):
        t0 = float(temp_c)
        phi = _phi(float(dt_s) * ua_w_per_k / heat_capacity_j_per_k)
        return ua_w_per_k * (t0 - ambient_c) + heat_capacity_j_per_k * (target_c - t0) / (dt_s * phi)
    t0 = np.asarray(temp_c, dtype=float)
    phi = _phi(np.asarray(dt_s, dtype=float) * ua_w_per_k / heat_capacity_j_per_k)
    return _out(ua_w_per_k * (t0 - ambient_c) + heat_capacity_j_per_k * (target_c - t0) / (dt_s * phi))


def water_heat_capacity_j_per_k(volume_m3):
    """``rho V cp`` of water at 70 °C [J/K] (about 4.10 MJ/K per m³)."""
    return _out(WATER_DENSITY_KG_PER_M3 * WATER_CP_J_PER_KG_K * np.asarray(volume_m3, dtype=float))


# ------------------------------------------------------------------ heat meter (EN 1434 / MID MI-004)

# Flow-sensor MPE per class: (a, b, cap) in E_f = min(a + b * q_p / q, cap) [%]. REFERENCE.md §3.4.
# The class-1 cap of 3.5 % is marked "from memory, unverified" there.
FLOW_SENSOR_MPE_COEFFICIENTS = {1: (1.0, 0.01, 3.5), 2: (2.0, 0.02, 5.0), 3: (3.0, 0.05, 5.0)}


def flow_sensor_mpe_pct(flow, permanent_flow, accuracy_class=2):
    """Flow-sensor maximum permissible error ``E_f`` [%] (MID Annex VI MI-004, REFERENCE.md §3.4).

    Class 1: ``1 + 0.01 q_p/q`` (max 3.5, unverified); class 2: ``2 + 0.02 q_p/q`` (max 5);
    class 3: ``3 + 0.05 q_p/q`` (max 5).

    Parameters
    ----------
    flow : float or array
        Actual flow ``q`` [any volume-flow unit, e.g. m³/h], > 0.
    permanent_flow : float or array
        The meter's permanent flow ``q_p``, same unit [m³/h], > 0.
    accuracy_class : {1, 2, 3}

    Raises
    ------
    ValueError
        Unknown class, or a non-positive flow.
    """
    if accuracy_class not in FLOW_SENSOR_MPE_COEFFICIENTS:
        raise ValueError(f"accuracy_class = {accuracy_class!r}: expected 1, 2 or 3")
    if _scalars(flow, permanent_flow) and flow > 0 and permanent_flow > 0:
        a, b, cap = FLOW_SENSOR_MPE_COEFFICIENTS[accuracy_class]
        e = a + b * permanent_flow / flow
        return float(min(e, cap))
    q = np.asarray(flow, dtype=float)
    if np.any(q <= 0) or np.any(np.asarray(permanent_flow) <= 0):
        raise ValueError(f"flow = {flow!r}, permanent_flow = {permanent_flow!r}: expected > 0")
    a, b, cap = FLOW_SENSOR_MPE_COEFFICIENTS[accuracy_class]
    return _out(np.minimum(a + b * permanent_flow / q, cap))


def _check_dt(delta_t_k, delta_t_min_k):
    if _scalars(delta_t_k, delta_t_min_k) and delta_t_min_k > 0 and delta_t_k >= delta_t_min_k:
        return
    if np.any(np.asarray(delta_t_min_k) <= 0):
        raise ValueError(f"delta_t_min_k = {delta_t_min_k!r}: expected > 0 K (MID options 3, 5, 10 K)")
    if np.any(np.asarray(delta_t_k) < delta_t_min_k):
        raise ValueError(f"delta_t_k = {delta_t_k!r}: expected >= delta_t_min_k = {delta_t_min_k!r} K "
                         "(outside the meter's rated range)")


def temperature_pair_mpe_pct(delta_t_k, delta_t_min_k=3.0):
    """Temperature-sensor-pair MPE ``E_t = 0.5 + 3 dθ_min/dθ`` [%] (REFERENCE.md §3.4).

    Parameters
    ----------
    delta_t_k : float or array
        Supply minus return temperature ``dθ`` [K], >= ``delta_t_min_k``.
    delta_t_min_k : float
        The meter's lower limit ``dθ_min`` [K] (MID options 3, 5, 10 K).
    """
    _check_dt(delta_t_k, delta_t_min_k)
    if _scalars(delta_t_k, delta_t_min_k):
        return 0.5 + 3.0 * delta_t_min_k / float(delta_t_k)
    return _out(0.5 + 3.0 * delta_t_min_k / np.asarray(delta_t_k, dtype=float))


def calculator_mpe_pct(delta_t_k, delta_t_min_k=3.0):
    """Calculator MPE ``E_c = 0.5 + dθ_min/dθ`` [%] (REFERENCE.md §3.4)."""
    _check_dt(delta_t_k, delta_t_min_k)
    if _scalars(delta_t_k, delta_t_min_k):
        return 0.5 + delta_t_min_k / float(delta_t_k)
    return _out(0.5 + delta_t_min_k / np.asarray(delta_t_k, dtype=float))


def heat_meter_mpe_pct(flow, permanent_flow, delta_t_k, delta_t_min_k=3.0, accuracy_class=2):
    """Total maximum permissible error of a complete heat meter ``E = E_f + E_t + E_c`` [%].

    MID Annex VI (Directive 2014/32/EU) MI-004 / EN 1434, REFERENCE.md §3.4. Example, class 2,
    ``q = q_p``, ``dθ = 30 K``, ``dθ_min = 3 K``: 2.02 + 0.8 + 0.6 = 3.42 %. The smallest
    possible value of any class is above 2 % (class 1: ``E > 1 + 0.5 + 0.5``), so an MPE
    never shows the ±2 % of DCPI §6.3.2 d / §9.2.1 c; only a measured error can.

    Parameters
    ----------
    flow, permanent_flow : float or array
        Actual and permanent flow, same unit [m³/h], > 0.
    delta_t_k : float or array
        Supply minus return temperature [K], >= ``delta_t_min_k``.
    delta_t_min_k : float
        [K].
    accuracy_class : {1, 2, 3}
    """
    if _scalars(flow, permanent_flow, delta_t_k, delta_t_min_k):
        return (flow_sensor_mpe_pct(flow, permanent_flow, accuracy_class)
                + temperature_pair_mpe_pct(delta_t_k, delta_t_min_k)
                + calculator_mpe_pct(delta_t_k, delta_t_min_k))
    return _out(flow_sensor_mpe_pct(flow, permanent_flow, accuracy_class)
                + temperature_pair_mpe_pct(delta_t_k, delta_t_min_k)
                + calculator_mpe_pct(delta_t_k, delta_t_min_k))
