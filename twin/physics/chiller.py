"""Electric chiller: the EnergyPlus ``Chiller:Electric:EIR`` model.

The model (EnergyPlus Engineering Reference, "Electric Chiller Model Based on
Condenser Entering Temperature"; Input-Output Reference, ``Chiller:Electric:EIR``;
REFERENCE.md §2.2) scales a reference capacity and a reference COP by three curves:

* ``CAPFT(T_chw,l, T_cond,e)``: available capacity / reference capacity, a biquadratic;
* ``EIRFT(T_chw,l, T_cond,e)``: full-load electric input ratio / reference EIR, a biquadratic;
* ``EIRFPLR(PLR)``: part-load EIR / full-load EIR, a quadratic in the part-load ratio.

``T_chw,l`` is the leaving chilled-water temperature and ``T_cond,e`` the entering
condenser-fluid temperature [°C]. The curves are evaluated as given, without clamping
to their fitted range (EnergyPlus clamps to the curve object's limits; use
:func:`clip_to_curve_range` to do the same). Outside the fitted range the values are
extrapolations of a regression: the plant models bound the condenser temperature.

All functions are pure and vectorised: arguments may be scalars or numpy arrays and
broadcast together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from twin.physics._scalar import scalars as _scalars, fmax as _fmax


@dataclass(frozen=True)
class EirChillerCurves:
    """One ``Chiller:Electric:EIR`` performance record.

    Attributes
    ----------
    name : str
        Name of the record.
    reference_cop : float
        COP at the reference temperatures and full load [-] (not the AHRI rated COP).
    reference_chw_leaving_c, reference_cond_entering_c : float
        Reference leaving chilled-water and entering condenser temperatures [°C].
    min_plr, max_plr, optimum_plr : float
        Part-load ratio below which the chiller cycles, the maximum and the optimum [-].
    min_unloading_ratio : float
        Part-load ratio below which the chiller false-loads (hot-gas bypass) [-].
    chw_leaving_lower_limit_c : float
        Lowest allowed leaving chilled-water temperature [°C].
    capft, eirft : tuple of 6 floats
        Biquadratic coefficients ``a..f`` of
        ``a + b*x + c*x**2 + d*y + e*y**2 + f*x*y`` with ``x = T_chw,l``, ``y = T_cond,e`` [°C].
    eirfplr : tuple of 3 floats
        Quadratic coefficients ``a, b, c`` of ``a + b*PLR + c*PLR**2``.
    chw_leaving_range_c, cond_entering_range_c, plr_range : tuple of 2 floats
        Fitted ranges of the curves (validity) [°C, °C, -].
    source : str
        Where the numbers come from.
    """

    name: str
    reference_cop: float
    reference_chw_leaving_c: float
    reference_cond_entering_c: float
    min_plr: float
    max_plr: float
    optimum_plr: float
    min_unloading_ratio: float
    chw_leaving_lower_limit_c: float
    capft: tuple[float, float, float, float, float, float]
    eirft: tuple[float, float, float, float, float, float]
    eirfplr: tuple[float, float, float]
    chw_leaving_range_c: tuple[float, float]
    cond_entering_range_c: tuple[float, float]
    plr_range: tuple[float, float]
    source: str

    def __post_init__(self):
        if not (math.isfinite(self.reference_cop) and self.reference_cop > 0):
            raise ValueError(f"reference_cop = {self.reference_cop!r}: expected a finite number > 0")
        if not 0.0 <= self.min_plr <= self.max_plr:
            raise ValueError(f"min_plr = {self.min_plr!r}: expected 0 <= min_plr <= max_plr ({self.max_plr!r})")
        if not 0.0 < self.max_plr <= 2.0:
            raise ValueError(f"max_plr = {self.max_plr!r}: expected a number in (0, 2]")
        if not 0.0 <= self.min_unloading_ratio <= self.max_plr:
            raise ValueError(f"min_unloading_ratio = {self.min_unloading_ratio!r}: expected a number in "
                             f"[0, max_plr ({self.max_plr!r})]")
        for name, n in (("capft", 6), ("eirft", 6), ("eirfplr", 3)):
            coeffs = getattr(self, name)
            if len(coeffs) != n or not all(math.isfinite(c) for c in coeffs):
                raise ValueError(f"{name} = {coeffs!r}: expected {n} finite coefficients")


#: "DOE-2 Centrifugal/5.50 COP": the worked example of the EnergyPlus Input-Output
#: Reference for ``Chiller:Electric:EIR``; the same numbers are in the Modelica
#: Buildings library ``Buildings.Fluid.Chillers.Data.ElectricEIR`` (REFERENCE.md §2.2,
#: primary). Check values (REFERENCE.md §2.2, derived): CAPFT(6.67, 29.4) = 1.003,
#: EIRFT(6.67, 29.4) = 0.999; full-load COP 6.65 / 6.06 / 5.51 / 4.81 at 20 / 25 /
#: 29.4 / 35 °C condenser entering (tests/test_chiller.py).
DOE2_CENTRIFUGAL_5_50_COP = EirChillerCurves(
    name="DOE-2 Centrifugal/5.50 COP",
    reference_cop=5.5,
    reference_chw_leaving_c=6.67,
    reference_cond_entering_c=29.4,
    min_plr=0.1,
    max_plr=1.0,
    optimum_plr=1.0,
    min_unloading_ratio=0.2,
    chw_leaving_lower_limit_c=2.0,
    capft=(0.257896, 0.0389016, -0.00021708, 0.0468684, -0.00094284, -0.00034344),
    eirft=(0.933884, -0.058212, 0.00450036, 0.00243, 0.000486, -0.001215),
    eirfplr=(0.222903, 0.313387, 0.463710),
    chw_leaving_range_c=(5.0, 10.0),
    cond_entering_range_c=(24.0, 35.0),
    plr_range=(0.0, 1.0),
    source="EnergyPlus Input-Output Reference, Chiller:Electric:EIR example; REFERENCE.md §2.2 (primary)",
)


def biquadratic(x, y, coefficients):
    """``a + b*x + c*x**2 + d*y + e*y**2 + f*x*y`` (EnergyPlus ``Curve:Biquadratic``).

    Parameters
    ----------
    x, y : float or array
        Independent variables (here temperatures [°C]).
    coefficients : sequence of 6 floats
        ``a, b, c, d, e, f``.
    """
    a, b, c, d, e, f = coefficients
    return a + b * x + c * x * x + d * y + e * y * y + f * x * y


def capft(chw_leaving_c, cond_entering_c, curves=DOE2_CENTRIFUGAL_5_50_COP):
    """Capacity modifier: available capacity / reference capacity [-].

    Parameters
    ----------
    chw_leaving_c : float or array
        Leaving chilled-water temperature [°C].
    cond_entering_c : float or array
        Entering condenser-fluid temperature [°C].
    curves : EirChillerCurves
        Performance record (default: DOE-2 centrifugal, 5.50 COP).
    """
    return biquadratic(chw_leaving_c, cond_entering_c, curves.capft)


def eirft(chw_leaving_c, cond_entering_c, curves=DOE2_CENTRIFUGAL_5_50_COP):
    """Full-load EIR modifier: EIR / reference EIR at full load [-] (arguments as :func:`capft`)."""
    return biquadratic(chw_leaving_c, cond_entering_c, curves.eirft)


def eirfplr(part_load_ratio, curves=DOE2_CENTRIFUGAL_5_50_COP):
    """Part-load EIR modifier ``a + b*PLR + c*PLR**2`` [-].

    Parameters
    ----------
    part_load_ratio : float or array
        Evaporator load / available capacity [-].
    """
    a, b, c = curves.eirfplr
    return a + b * part_load_ratio + c * part_load_ratio * part_load_ratio


def full_load_cop(chw_leaving_c, cond_entering_c, curves=DOE2_CENTRIFUGAL_5_50_COP):
    """COP at full load: ``COP_ref / (EIRFT * EIRFPLR(1))`` [-].

    At ``PLR = 1`` the load equals the available capacity, so
    ``COP = Q_avail / P = COP_ref / (EIRFT * EIRFPLR(1))``; ``EIRFPLR(1) = 1`` for the
    DOE-2 record, giving REFERENCE.md §2.2's ``COP_ref / EIRFT``.
    """
    return curves.reference_cop / (eirft(chw_leaving_c, cond_entering_c, curves) * eirfplr(1.0, curves))


def clip_to_curve_range(chw_leaving_c, cond_entering_c, curves=DOE2_CENTRIFUGAL_5_50_COP):
    """Clamp both temperatures to the curves' fitted ranges, as EnergyPlus does [°C]."""
    lo_x, hi_x = curves.chw_leaving_range_c
    lo_y, hi_y = curves.cond_entering_range_c
    return np.clip(chw_leaving_c, lo_x, hi_x), np.clip(cond_entering_c, lo_y, hi_y)


def condenser_heat_w(power_w, evaporator_heat_w, false_load_w=0.0, motor_to_condenser_fraction=1.0):
    """Heat leaving through the condenser [W].

    ``Q_cond = P_elec * eta_motor + Q_evap + Q_falseload`` (EnergyPlus Engineering
    Reference). ``eta_motor`` is the fraction of the compressor's electric power that
    ends in the refrigerant, hence in the condenser: 1 for a hermetic (refrigerant-cooled)
    motor, the default here, i.e. all compressor power goes to the condenser; for an
    open motor the rest, ``(1 - eta_motor) * P``, heats the plant room.

    First law: the refrigerant circuit takes in ``eta_motor * P + Q_evap`` and rejects it
    at the condenser. Hot-gas bypass (false loading) recirculates refrigerant inside the
    circuit, so its heat is compressor work already counted in ``P``; EnergyPlus adds
    ``Q_falseload`` on top. Pass ``false_load_w=0`` (as the plant models do) for a
    first-law condenser that closes the facility energy balance.

    Parameters
    ----------
    power_w : float or array
        Compressor electric power [W].
    evaporator_heat_w : float or array
        Heat taken from the chilled water [W].
    false_load_w : float or array
        False load added by hot-gas bypass [W] (EnergyPlus convention; 0 = first law).
    motor_to_condenser_fraction : float
        ``eta_motor`` [-], in [0, 1].
    """
    return power_w * motor_to_condenser_fraction + evaporator_heat_w + false_load_w


def eir_chiller(
    cooling_load_w,
    reference_capacity_w,
    chw_leaving_c,
    cond_entering_c,
    curves=DOE2_CENTRIFUGAL_5_50_COP,
    motor_to_condenser_fraction=1.0,
    false_load_to_condenser=True,
):
    """Operate an EIR chiller on a cooling load (EnergyPlus ``Chiller:Electric:EIR``).

    ``Q_avail = Q_ref * CAPFT``; ``PLR = clip(Q_load / Q_avail, 0, PLR_max)``; the load
    met is ``Q_evap = PLR * Q_avail``. Below ``PLR_min`` the chiller cycles on for the
    fraction ``FRAC = PLR / PLR_min`` of the time; below the minimum unloading ratio it
    runs at ``PLR_op = max(PLR, min_unloading_ratio)`` and false-loads (hot-gas bypass)
    ``Q_false = Q_avail * PLR_op * FRAC - Q_evap``;
    ``P = (Q_avail / COP_ref) * EIRFT * EIRFPLR(PLR_op) * FRAC``;
    condenser heat by :func:`condenser_heat_w`.

    Parameters
    ----------
    cooling_load_w : float or array
        Heat the chilled water asks to have removed [W], >= 0.
    reference_capacity_w : float or array
        Capacity at the reference temperatures [W], > 0.
    chw_leaving_c, cond_entering_c : float or array
        Leaving chilled-water and entering condenser temperatures [°C].
    curves : EirChillerCurves
        Performance record (default: DOE-2 centrifugal, 5.50 COP, REFERENCE.md §2.2).
    motor_to_condenser_fraction : float
        Fraction of compressor power rejected at the condenser [-] (1: hermetic motor).
    false_load_to_condenser : bool
        True: EnergyPlus's condenser heat (adds ``Q_false``); False: first law (see
        :func:`condenser_heat_w`).

    Returns
    -------
    dict of str -> float or array
        ``available_capacity_w`` [W], ``evaporator_heat_w`` (load met) [W],
        ``unmet_load_w`` [W], ``part_load_ratio`` (load PLR) [-], ``cycling_ratio`` [-],
        ``operating_plr`` (PLR the EIR is evaluated at) [-], ``false_load_w`` [W],
        ``power_w`` [W], ``condenser_heat_w`` [W], ``cop`` (``Q_evap / P``, 0 when off) [-].
    """
    if _scalars(cooling_load_w, reference_capacity_w, chw_leaving_c, cond_entering_c, motor_to_condenser_fraction):
        return _eir_chiller_scalar(float(cooling_load_w), float(reference_capacity_w), float(chw_leaving_c),
                                   float(cond_entering_c), curves, motor_to_condenser_fraction,
                                   false_load_to_condenser)
    load_w = np.maximum(np.asarray(cooling_load_w, dtype=float), 0.0)
    avail_w = reference_capacity_w * capft(chw_leaving_c, cond_entering_c, curves)
    positive = avail_w > 0.0
    safe_avail_w = np.where(positive, avail_w, 1.0)
    plr = np.where(positive, np.clip(load_w / safe_avail_w, 0.0, curves.max_plr), 0.0)
    evap_w = plr * np.where(positive, avail_w, 0.0)
    if curves.min_plr > 0.0:
        frac = np.where(plr < curves.min_plr, np.minimum(1.0, plr / curves.min_plr), 1.0)
    else:
        frac = np.ones_like(plr)
    plr_op = np.where(positive, np.maximum(plr, curves.min_unloading_ratio), 0.0)
    false_w = np.maximum(np.where(positive, avail_w, 0.0) * plr_op * frac - evap_w, 0.0)
    power_w = (np.where(positive, avail_w, 0.0) / curves.reference_cop) * np.maximum(
        eirft(chw_leaving_c, cond_entering_c, curves), 0.0) * np.maximum(eirfplr(plr_op, curves), 0.0) * frac
    cond_w = condenser_heat_w(power_w, evap_w, false_w if false_load_to_condenser else 0.0,
                              motor_to_condenser_fraction)
    cop = np.where(power_w > 0.0, evap_w / np.where(power_w > 0.0, power_w, 1.0), 0.0)
    out = {
        "available_capacity_w": avail_w,
        "evaporator_heat_w": evap_w,
        "unmet_load_w": load_w - evap_w,
        "part_load_ratio": plr,
        "cycling_ratio": frac,
        "operating_plr": plr_op,
        "false_load_w": false_w,
        "power_w": power_w,
        "condenser_heat_w": cond_w,
        "cop": cop,
    }
    return {k: (v if np.ndim(v) else float(v)) for k, v in out.items()}


def _eir_chiller_scalar(load_w, reference_capacity_w, chw_leaving_c, cond_entering_c, curves,
                        motor_to_condenser_fraction, false_load_to_condenser) -> dict:
    """:func:`eir_chiller` for floats: the same operations in the same order, no numpy."""
    load_w = _fmax(load_w, 0.0)
    avail_w = reference_capacity_w * biquadratic(chw_leaving_c, cond_entering_c, curves.capft)
    positive = avail_w > 0.0
    avail_pos_w = avail_w if positive else 0.0
    plr = min(max(load_w / avail_w, 0.0), curves.max_plr) if positive else 0.0  # NaN stays NaN, as np.clip
    evap_w = plr * avail_pos_w
    frac = (min(1.0, plr / curves.min_plr) if plr < curves.min_plr else 1.0) if curves.min_plr > 0.0 else 1.0
    plr_op = _fmax(plr, curves.min_unloading_ratio) if positive else 0.0
    false_w = _fmax(avail_pos_w * plr_op * frac - evap_w, 0.0)
    power_w = (avail_pos_w / curves.reference_cop) * _fmax(
        biquadratic(chw_leaving_c, cond_entering_c, curves.eirft), 0.0) * _fmax(eirfplr(plr_op, curves), 0.0) * frac
    cond_w = condenser_heat_w(power_w, evap_w, false_w if false_load_to_condenser else 0.0,
                              motor_to_condenser_fraction)
    return {
        "available_capacity_w": avail_w,
        "evaporator_heat_w": evap_w,
        "unmet_load_w": load_w - evap_w,
        "part_load_ratio": plr,
        "cycling_ratio": frac,
        "operating_plr": plr_op,
        "false_load_w": false_w,
        "power_w": power_w,
        "condenser_heat_w": cond_w,
        "cop": evap_w / power_w if power_w > 0.0 else 0.0,
    }


def chiller_power_w(cooling_load_w, chw_leaving_c, cond_entering_c, reference_capacity_w,
                    curves=DOE2_CENTRIFUGAL_5_50_COP):
    """Electric power of an EIR chiller meeting ``cooling_load_w`` [W] (see :func:`eir_chiller`)."""
    return eir_chiller(cooling_load_w, reference_capacity_w, chw_leaving_c, cond_entering_c, curves)["power_w"]
