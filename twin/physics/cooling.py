"""Facility power from IT power: the GridPilot paper's four-component model (Eq. 4).

Seed 004 §3.3 models facility power as IT power plus chiller, pump, air-side (fan)
and miscellaneous overhead, with pump and fan affinity laws floored at 20 % and 15 %
(bypass flow, minimum controllability) and a free-cooling fraction that ramps from
zero at 25 °C ambient to one at 12 °C wet-bulb. The published text lost the body of
Eq. 4; the form written here is the one its prose describes, and every coefficient
is a scenario parameter (defaults and their sources: ``docs/scenario.md``).

All functions are pure and vectorised (scalars or numpy arrays, broadcast together).
"""

from __future__ import annotations

import numpy as np


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
