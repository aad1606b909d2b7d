"""Facility power from IT power: the GridPilot paper's four-component model (Eq. 4).

Seed 004 §3.3 models facility power as IT power plus chiller, pump, air-side (fan)
and miscellaneous overhead, with pump and fan affinity laws floored at 20 % and 15 %
(bypass flow, minimum controllability) and a free-cooling fraction that ramps from
zero at 25 °C ambient to one at 12 °C wet-bulb. The published text lost the body of
Eq. 4; the form written here is the one its prose describes, and every coefficient
is a scenario parameter (defaults and their sources: ``docs/scenario.md``).

The second half of the module holds the pieces of the physical plant models
(``twin/facility/cooling_plant.py``): the REFERENCE.md §2.1 part-load curves of VAV fans
and variable-speed pumps with minimum-flow floors, cooling-tower and dry-cooler
leaving temperatures, adiabatic pre-cooling, the series water-side economiser, and
the heat a tower or dry cooler rejects.

All functions are pure and vectorised (scalars or numpy arrays, broadcast together).
Those the plants call every tick take a scalar fast path when every argument is a
Python float or int: the same operations in the same order on the same IEEE doubles,
without numpy's per-call overhead (bench/test_fastpath.py checks both paths
agree exactly).
"""

from __future__ import annotations

import math

import numpy as np
from twin.physics._scalar import scalars as _scalars, fmax as _fmax, fmin as _fmin


def free_cooling_fraction(dry_bulb_c, wet_bulb_c, zero_at_dry_bulb_c=25.0, full_at_wet_bulb_c=12.0):
    """Fraction of the heat load rejected without the chiller [-].

    Seed 004 §3.3: zero at 25 °C ambient (dry-bulb), one at 12 °C wet-bulb, linear
    between. With two temperatures the "position between the limits" is

    ``f = (zero_at - T_db) / ((zero_at - T_db) + (T_wb - full_at))``

    which is exactly the linear ramp ``(25 - T) / 13`` when both temperatures are
    equal. A wet-bulb at or below ``full_at`` gives 1 (a cooling tower is governed by
    wet-bulb, REFERENCE.md §2.3) even when the dry-bulb is hot; otherwise a dry-bulb
    at or above ``zero_at`` gives 0.

    Parameters
    ----------
    dry_bulb_c, wet_bulb_c : float or array
        Ambient dry-bulb and wet-bulb temperature [°C].
    zero_at_dry_bulb_c : float
        Dry-bulb at and above which there is no free cooling [°C].
    full_at_wet_bulb_c : float
        Wet-bulb at and below which all heat is rejected freely [°C].

    Returns
    -------
    float or array in [0, 1]
    """
    if _scalars(dry_bulb_c, wet_bulb_c, zero_at_dry_bulb_c, full_at_wet_bulb_c):
        above_full_k = float(wet_bulb_c) - full_at_wet_bulb_c
        below_zero_k = zero_at_dry_bulb_c - float(dry_bulb_c)
        span_k = above_full_k + below_zero_k
        frac = 1.0 if above_full_k <= 0.0 else 0.0 if below_zero_k <= 0.0 else \
            below_zero_k / span_k if span_k > 0.0 else 0.0
        return float(min(max(frac, 0.0), 1.0))  # NaN stays NaN, as np.clip
    above_full_k = np.asarray(wet_bulb_c, dtype=float) - full_at_wet_bulb_c
    below_zero_k = zero_at_dry_bulb_c - np.asarray(dry_bulb_c, dtype=float)
    span_k = above_full_k + below_zero_k
    with np.errstate(divide="ignore", invalid="ignore"):
        ramp = np.where(span_k > 0.0, below_zero_k / np.where(span_k > 0.0, span_k, 1.0), 0.0)
    frac = np.where(above_full_k <= 0.0, 1.0, np.where(below_zero_k <= 0.0, 0.0, ramp))
    frac = np.clip(frac, 0.0, 1.0)
    return frac if frac.ndim else float(frac)


def affinity_power_w(load_fraction, design_power_w, min_fraction, exponent=3.0):
    """Pump or fan power by the affinity law with a minimum-speed floor [W].

    Flow follows the heat load, ``x = max(load_fraction, min_fraction)``, and power
    follows ``design_power_w * x**exponent`` (P ∝ N³ for an ideal closed loop,
    REFERENCE.md §2.1; real pumps sit nearer 2.4 and VAV fans nearer 1.7).

    Parameters
    ----------
    load_fraction : float or array
        Heat load as a fraction of the design load [-], >= 0.
    design_power_w : float or array
        Power at design flow [W].
    min_fraction : float
        Floor on the speed/flow fraction [-] (seed 004 §3.3: 0.20 pumps, 0.15 fans).
    exponent : float
        Affinity exponent [-].
    """
    if _scalars(load_fraction, design_power_w, min_fraction, exponent):
        return design_power_w * _fmax(load_fraction, min_fraction) ** exponent
    x = np.maximum(load_fraction, min_fraction)
    return design_power_w * x**exponent


def chiller_power_w(heat_load_w, free_fraction, cop):
    """Electric power of the chiller for the mechanically removed part of the load [W].

    ``(1 - f_free) * Q / COP`` with a constant COP (REFERENCE.md §2.2 reference COP 5.5);
    the EnergyPlus EIR curves replace the constant COP in the cooling issue.
    """
    return (1.0 - free_fraction) * heat_load_w / cop


def facility_power_w(
    it_power_w,
    design_it_power_w,
    dry_bulb_c,
    wet_bulb_c,
    *,
    chiller_cop,
    pump_design_fraction,
    fan_design_fraction,
    misc_fraction,
    pump_min_flow_fraction=0.20,
    fan_min_speed_fraction=0.15,
    pump_exponent=3.0,
    fan_exponent=3.0,
    free_cooling_zero_at_dry_bulb_c=25.0,
    free_cooling_full_at_wet_bulb_c=12.0,
):
    """Seed 004 Eq. 4: facility power and its components [W].

    ``P_fac = P_IT + P_chiller + P_pump + P_fan + P_misc`` where all IT power is heat
    to remove, pump and fan design powers and the constant miscellaneous load are
    fractions of the design IT power.

    Parameters
    ----------
    it_power_w : float or array
        IT power (GPUs + hosts) [W].
    design_it_power_w : float
        IT power at design (full) load [W], > 0.
    dry_bulb_c, wet_bulb_c : float or array
        Ambient temperatures [°C].
    chiller_cop : float
        Chiller coefficient of performance [-].
    pump_design_fraction, fan_design_fraction, misc_fraction : float
        Pump and fan power at design flow, and miscellaneous constant load, as
        fractions of ``design_it_power_w`` [-].

    Returns
    -------
    dict of str -> float or array
        ``facility_power_w, chiller_power_w, pump_power_w, fan_power_w,
        misc_power_w, free_cooling_fraction``.
    """
    load_fraction = np.asarray(it_power_w, dtype=float) / design_it_power_w
    free = free_cooling_fraction(dry_bulb_c, wet_bulb_c, free_cooling_zero_at_dry_bulb_c,
                                 free_cooling_full_at_wet_bulb_c)
    chiller = chiller_power_w(it_power_w, free, chiller_cop)
    pump = affinity_power_w(load_fraction, pump_design_fraction * design_it_power_w,
                            pump_min_flow_fraction, pump_exponent)
    fan = affinity_power_w(load_fraction, fan_design_fraction * design_it_power_w,
                           fan_min_speed_fraction, fan_exponent)
    misc = misc_fraction * design_it_power_w + 0.0 * load_fraction
    total = it_power_w + chiller + pump + fan + misc
    return {
        "facility_power_w": total,
        "chiller_power_w": chiller,
        "pump_power_w": pump,
        "fan_power_w": fan,
        "misc_power_w": misc,
        "free_cooling_fraction": free,
    }


# ---------------------------------------------------------------------------
# Part-load curves, heat-rejection temperatures and economisers (issue #3, cooling plant)
# ---------------------------------------------------------------------------

#: ASHRAE 90.1 Appendix G, Table G3.1.3.15, VAV fan part-load curve (coefficients of
#: 1, x, x², x³), as coded in PNNL's ruleset-checking-tool (REFERENCE.md §2.1, primary
#: code restatement of the standard). Effective exponents 1.71 / 1.74 / 1.76 at
#: x = 0.3 / 0.5 / 0.9 (derived).
VAV_FAN_CURVE = (0.0013, 0.1470, 0.9506, -0.0998)

#: Variable-speed pump part-load curve, Appendix G style as in openstudio-standards
#: (REFERENCE.md §2.1, primary code). Effective exponents 2.36 / 2.44 / 2.48 at
#: x = 0.3 / 0.5 / 0.9 (derived).
VSD_PUMP_CURVE = (0.0, 0.0205, 0.4101, 0.5753)

#: Cooling-tower approach (leaving water - ambient wet-bulb): 5 °F = 2.8 K "common
#: design", typical 1.7-3.9 K. Aquatrol Services technical note, REFERENCE.md §2.3
#: (secondary source).
TOWER_APPROACH_K = 2.8


def part_load_power_fraction(flow_fraction, coefficients):
    """Power / design power of a fan or pump from a cubic part-load curve [-].

    ``P/P_d = c0 + c1*x + c2*x**2 + c3*x**3`` with ``x`` the flow (speed) fraction.

    Parameters
    ----------
    flow_fraction : float or array
        Flow as a fraction of design flow [-]; values above 1 extrapolate the curve.
    coefficients : sequence of 4 floats
        ``c0..c3`` (e.g. :data:`VAV_FAN_CURVE`, :data:`VSD_PUMP_CURVE`).
    """
    c0, c1, c2, c3 = coefficients
    x = flow_fraction
    return c0 + x * (c1 + x * (c2 + x * c3))


def effective_exponent(flow_fraction, power_fraction):
    """Affinity exponent that gives the same power: ``n = ln(P/P_d) / ln(x)`` [-].

    REFERENCE.md §2.1 uses it to compare real curves with the cube law.
    """
    return np.log(power_fraction) / np.log(flow_fraction)


def fan_power_w(load_fraction, design_power_w, min_flow_fraction=0.15, curve=VAV_FAN_CURVE):
    """Fan power on a part-load curve with a minimum-speed floor [W].

    ``P = P_d * curve(max(x, x_min))`` with the ASHRAE 90.1 G3.1.3.15 VAV curve by
    default (REFERENCE.md §2.1). The floor is seed 004 §3.3's 15 % (minimum
    controllability).

    Parameters
    ----------
    load_fraction : float or array
        Required air flow as a fraction of design [-], >= 0 (the heat load fraction
        when air flow follows the load at constant temperature rise).
    design_power_w : float or array
        Fan power at design flow [W].
    min_flow_fraction : float
        Floor on the flow fraction [-].
    curve : sequence of 4 floats
        Part-load coefficients (:func:`part_load_power_fraction`).
    """
    if _scalars(load_fraction, design_power_w, min_flow_fraction):
        return design_power_w * part_load_power_fraction(_fmax(load_fraction, min_flow_fraction), curve)
    return design_power_w * part_load_power_fraction(np.maximum(load_fraction, min_flow_fraction), curve)


def pump_power_w(load_fraction, design_power_w, min_flow_fraction=0.20, curve=VSD_PUMP_CURVE):
    """Variable-speed pump power with a minimum-flow floor [W].

    ``P = P_d * curve(max(x, x_min))`` with the openstudio-standards VSD pump curve
    (REFERENCE.md §2.1). The floor is seed 004 §3.3's 20 % (bypass flow).

    Parameters
    ----------
    load_fraction : float or array
        Required flow as a fraction of design flow [-], >= 0.
    design_power_w : float or array
        Pump power at design flow [W].
    min_flow_fraction : float
        Floor on the flow fraction [-].
    curve : sequence of 4 floats
        Part-load coefficients.
    """
    if _scalars(load_fraction, design_power_w, min_flow_fraction):
        return design_power_w * part_load_power_fraction(_fmax(load_fraction, min_flow_fraction), curve)
    return design_power_w * part_load_power_fraction(np.maximum(load_fraction, min_flow_fraction), curve)


def cooling_tower_leaving_water_c(wet_bulb_c, approach_k=TOWER_APPROACH_K, min_leaving_c=-np.inf):
    """Water temperature leaving a cooling tower [°C].

    ``T = max(T_wb + approach, T_min)``: a constant approach to the ambient wet-bulb
    (REFERENCE.md §2.3, 2.8 K default, secondary source) and a floor that the tower's
    fan and bypass control holds (e.g. freeze protection).

    Parameters
    ----------
    wet_bulb_c : float or array
        Ambient wet-bulb temperature [°C].
    approach_k : float
        Approach [K], >= 0.
    min_leaving_c : float
        Lowest leaving temperature the tower control allows [°C].
    """
    if _scalars(wet_bulb_c, approach_k, min_leaving_c):
        return _fmax(float(wet_bulb_c) + approach_k, min_leaving_c)
    return np.maximum(np.asarray(wet_bulb_c, dtype=float) + approach_k, min_leaving_c)


def dry_cooler_leaving_fluid_c(dry_bulb_c, approach_k=5.0):
    """Fluid temperature leaving a dry cooler at full fan speed: ``T_air + approach`` [°C].

    A dry (closed-circuit, sensible) cooler is governed by the dry-bulb (REFERENCE.md
    §2.3). The 5 K default is REFERENCE.md §8.2.4's working figure (stated there, not
    sourced); pass the air temperature after adiabatic pre-cooling for an adiabatic cooler.

    Parameters
    ----------
    dry_bulb_c : float or array
        Temperature of the air entering the coil [°C].
    approach_k : float
        Approach [K], >= 0.
    """
    if _scalars(dry_bulb_c, approach_k):
        return float(dry_bulb_c) + approach_k
    return np.asarray(dry_bulb_c, dtype=float) + approach_k


def adiabatic_air_temperature_c(dry_bulb_c, wet_bulb_c, effectiveness, target_c=-np.inf):
    """Air temperature after a modulated adiabatic (evaporative) pre-cooler [°C].

    Evaporation cools the air toward its wet-bulb: at most ``T_db - eps*(T_db - T_wb)``.
    The spray modulates so the air is cooled no further than ``target_c`` (the
    temperature that lets the coil hold its setpoint) and not at all when the dry air
    already suffices: ``T = min(T_db, max(target, T_db - eps*(T_db - T_wb)))``.

    Parameters
    ----------
    dry_bulb_c, wet_bulb_c : float or array
        Ambient temperatures [°C].
    effectiveness : float
        Saturation effectiveness ``eps`` [-], in [0, 1] (0 disables).
    target_c : float or array
        Air temperature at and below which no spray is needed [°C].
    """
    if _scalars(dry_bulb_c, wet_bulb_c, effectiveness, target_c):
        db = float(dry_bulb_c)
        return _fmin(db, _fmax(target_c, db - effectiveness * (db - float(wet_bulb_c))))
    db = np.asarray(dry_bulb_c, dtype=float)
    return np.minimum(db, np.maximum(target_c, db - effectiveness * (db - np.asarray(wet_bulb_c, dtype=float))))


def economiser_fraction(sink_leaving_c, supply_setpoint_c, return_c, hx_approach_k=0.0):
    """Fraction of the loop's heat removed by a series (integrated) economiser [-].

    The return water first passes a free-cooling heat exchanger fed by the heat sink
    (tower or dry-cooler water at ``sink_leaving_c``), which can cool it to
    ``T_free = T_sink + approach_HX``; a chiller trims the rest down to the supply
    setpoint. The free share of the loop's ``T_return - T_supply`` is

    ``f = clip((T_return - T_free) / (T_return - T_supply), 0, 1)``

    i.e. 1 (full economiser) for ``T_free <= T_supply`` and 0 for ``T_free >= T_return``,
    linear between: the partial-economiser band is the loop's temperature difference.

    Parameters
    ----------
    sink_leaving_c : float or array
        Temperature of the water the heat sink supplies [°C].
    supply_setpoint_c : float or array
        Loop supply setpoint [°C].
    return_c : float or array
        Loop return temperature [°C], > ``supply_setpoint_c``.
    hx_approach_k : float
        Heat-exchanger approach [K], >= 0.
    """
    if _scalars(sink_leaving_c, supply_setpoint_c, return_c, hx_approach_k) and return_c != supply_setpoint_c:
        free_c = float(sink_leaving_c) + hx_approach_k
        return min(max((return_c - free_c) / (return_c - supply_setpoint_c), 0.0), 1.0)  # NaN stays NaN
    free_c = np.asarray(sink_leaving_c, dtype=float) + hx_approach_k
    f = np.clip((return_c - free_c) / (return_c - supply_setpoint_c), 0.0, 1.0)
    return f if np.ndim(f) else float(f)


def waterside_economiser_fraction(wet_bulb_c, chw_supply_c, chw_return_c, hx_approach_k=1.5,
                                  tower_approach_k=TOWER_APPROACH_K):
    """Free-cooling fraction of a water-side economiser on a cooling tower [-].

    Full free cooling while ``T_wb <= T_chw,s - approach_HX - approach_tower``
    (REFERENCE.md §2.3's method for counting free-cooling hours), none once
    ``T_wb >= T_chw,r - approach_HX - approach_tower``, linear between (the band is the
    chilled-water ``T_r - T_s``). See :func:`economiser_fraction`.

    Parameters
    ----------
    wet_bulb_c : float or array
        Ambient wet-bulb [°C].
    chw_supply_c, chw_return_c : float or array
        Chilled-water supply setpoint and return temperature [°C].
    hx_approach_k : float
        Plate heat-exchanger approach [K] (1.5 K: assumption, unsourced).
    tower_approach_k : float
        Cooling-tower approach [K] (REFERENCE.md §2.3, 2.8 K, secondary).
    """
    return economiser_fraction(cooling_tower_leaving_water_c(wet_bulb_c, tower_approach_k),
                               chw_supply_c, chw_return_c, hx_approach_k)


def cooling_tower_heat_rejected_w(condenser_heat_w, economiser_heat_w, pump_power_w, fan_power_w):
    """Heat a cooling tower gives to the outdoor air [W].

    Water side: chiller condenser heat + free-cooling heat-exchanger heat + the work the
    condenser-water pumps put into the water; air side: the fan's electric power, which
    ends as heat in the exhaust air.
    """
    return condenser_heat_w + economiser_heat_w + pump_power_w + fan_power_w


def dry_cooler_heat_rejected_w(fluid_heat_w, fan_power_w):
    """Heat a dry cooler gives to the outdoor air: fluid-side heat + fan power [W]."""
    return fluid_heat_w + fan_power_w
