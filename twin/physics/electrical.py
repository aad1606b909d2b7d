"""Electrical distribution physics: server PSUs, transformers, UPS, power quality.

All functions are pure and vectorised: every numeric argument may be a scalar or a
numpy array (broadcast together). Units are SI and carried in the names; load
fractions are dimensionless (``[-]``, 1 = rated). Curves are given as tables of
(load fraction, value) points and interpolated linearly, held flat outside the
tabulated range (an assumption: the standards publish only these points).

Sources (REFERENCE.md; labels as there)
---------------------------------------
* PSU efficiency: 80 PLUS minimum efficiencies, 230 V internal redundant (data-centre)
  category, Titanium 90/94/96/91 % and Platinum 90/94/91 % at 10/20/50/100 % load
  (REFERENCE.md §8.3, secondary, two sources agree on every cell). Platinum has no
  10 % point; the Intel P4000IP TPS (Table 34, primary vendor) gives 82 % there.
* PSU power factor: ENERGY STAR Computer Servers floor, > 0.65 / 0.80 / 0.90 / 0.95 at
  10 / 20 / 50 / 100 % load (REFERENCE.md §8.3, Intel P4000S TPS §2.3.2.1).
* PSU input-current THD: **no sourced curve** (REFERENCE.md §8.3, §8.9). We derive an
  upper bound from the PF floor assuming unity displacement factor (active PFC):
  ``PF = 1 / sqrt(1 + THD^2)`` (IEEE 1459 distortion factor), so
  ``THD = sqrt(1 / PF^2 - 1)``: 1.17 at PF 0.65, 0.33 at PF 0.95.
* IEC 61000-3-2 class D 3rd-harmonic limit 3.4 mA/W capped at the class A 2.30 A
  (REFERENCE.md §8.3): :func:`iec_61000_3_2_class_d_h3_limit_a`.
* Transformers: ``P_loss = P0 + x^2 Pk`` (REFERENCE.md §8.4). The 2.5 MVA Tier 2 values
  Pk = 18 500 W, P0 = 1 575 W are **placeholders, unverified** (REFERENCE.md §8.4 says so;
  a search of the regulation text did not retrieve Annex I Table I.1).
* UPS input stage: PF > 0.99 above 25 % load, > 0.95 above 15 %; THDi < 3 % at 100 %
  (Schneider Galaxy VL, REFERENCE.md §8.3, primary vendor).
* UPS efficiency: MW-scale double conversion vs load is **unsourced** (REFERENCE.md §2.4,
  §8.5: 95 % placeholder). Eco-mode cuts the UPS's own loss by ~3x (Schneider
  eConversion, REFERENCE.md §8.5): ``eta_eco = 1 - (1 - eta_dc)/3``. The part-load shape
  of the double-conversion curve below is an assumption (``docs/power.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "PSU_EFFICIENCY_CURVES",
    "PSU_PF_ENERGY_STAR_FLOOR",
    "TRANSFORMER_2500KVA_TIER2_PLACEHOLDER",
    "UPS_DOUBLE_CONVERSION_EFFICIENCY_ASSUMED",
    "UPS_INPUT_THD",
    "Curve",
    "TransformerRating",
    "curve_value",
    "harmonic_terms",
    "iec_61000_3_2_class_d_h3_limit_a",
    "power_factor_from_thd",
    "power_quality",
    "psu_efficiency",
    "psu_input_power_w",
    "psu_loss_w",
    "psu_power_factor",
    "psu_thd",
    "thd_from_power_factor",
    "transformer_efficiency",
    "transformer_loss_w",
    "ups_efficiency",
    "ups_input_power_factor",
    "ups_input_power_w",
    "ups_loss_w",
]


@dataclass(frozen=True)
class Curve:
    """A tabulated curve of a quantity against load fraction.

    Attributes
    ----------
    load_fraction : tuple of float
        Load as a fraction of rated output [-], strictly increasing.
    value : tuple of float
        The quantity at those loads (efficiency, PF or THD, [-]).
    source : str
    """

    load_fraction: tuple
    value: tuple
    source: str

    def __post_init__(self):
        x = np.asarray(self.load_fraction, dtype=float)
        if x.size != len(self.value) or x.size < 1:
            raise ValueError(f"Curve: {x.size} load points but {len(self.value)} values: expected equal, >= 1")
        if np.any(np.diff(x) <= 0):
            raise ValueError(f"Curve: load_fraction = {self.load_fraction!r}: expected strictly increasing")


#: 80 PLUS 230 V internal redundant minimum efficiencies (REFERENCE.md §8.3).
PSU_EFFICIENCY_CURVES: dict[str, Curve] = {
    "80plus_titanium": Curve((0.1, 0.2, 0.5, 1.0), (0.90, 0.94, 0.96, 0.91),
                             "80 PLUS Titanium, 230 V internal redundant (REFERENCE.md §8.3)"),
    "80plus_platinum": Curve((0.1, 0.2, 0.5, 1.0), (0.82, 0.90, 0.94, 0.91),
                             "80 PLUS Platinum 230 V internal redundant 20/50/100 %; 10 %: Intel "
                             "P4000IP TPS Table 34 (REFERENCE.md §8.3)"),
}

#: ENERGY STAR server PSU power-factor floor (REFERENCE.md §8.3).
PSU_PF_ENERGY_STAR_FLOOR = Curve((0.1, 0.2, 0.5, 1.0), (0.65, 0.80, 0.90, 0.95),
                                 "ENERGY STAR Computer Servers PSU PF floor (REFERENCE.md §8.3)")

#: Assumed part-load efficiency of a MW-scale double-conversion UPS: 95 % at and above
#: 50 % load (REFERENCE.md §2.4 placeholder), falling to 93 % at 25 % and 88 % at 10 %
#: (shape assumed; no sourced curve, REFERENCE.md §8.5).
UPS_DOUBLE_CONVERSION_EFFICIENCY_ASSUMED = Curve(
    (0.1, 0.25, 0.5, 1.0), (0.88, 0.93, 0.95, 0.95),
    "95 % placeholder (REFERENCE.md §2.4); part-load shape assumed (docs/power.md)")

#: UPS input-current THD [-]: < 3 % at 100 % load (Schneider Galaxy VL, REFERENCE.md §8.3);
#: held at all loads (assumption).
UPS_INPUT_THD = 0.03


@dataclass(frozen=True)
class TransformerRating:
    """Rated power and the two loss figures of a distribution transformer.

    Attributes
    ----------
    rated_va : float
        Rated apparent power [VA].
    no_load_loss_w : float
        P0, core loss at rated voltage, independent of load [W].
    load_loss_w : float
        Pk, winding loss at rated current [W].
    source : str
    verified : bool
        False for placeholders.
    """

    rated_va: float
    no_load_loss_w: float
    load_loss_w: float
    source: str
    verified: bool = False


#: 2.5 MVA liquid-immersed, Um <= 24 kV / <= 1.1 kV, EU 548/2014 Tier 2 Ak / A0-10 %.
#: PLACEHOLDER, UNVERIFIED (REFERENCE.md §8.4: "from memory"; check Annex I Table I.1).
TRANSFORMER_2500KVA_TIER2_PLACEHOLDER = TransformerRating(
    2.5e6, 1575.0, 18500.0,
    "EU 548/2014 Tier 2 2.5 MVA liquid-immersed: placeholder, unverified (REFERENCE.md §8.4)",
    verified=False)


# ------------------------------------------------------------------ curves, PSUs


def curve_value(curve: Curve, load_fraction):
    """Linear interpolation of a curve at ``load_fraction`` [-], flat outside its range."""
    return np.interp(np.asarray(load_fraction, dtype=float), curve.load_fraction, curve.value)


def _psu_curve(curve) -> Curve:
    if isinstance(curve, Curve):
        return curve
    try:
        return PSU_EFFICIENCY_CURVES[curve]
    except KeyError:
        raise ValueError(f"psu curve = {curve!r}: expected one of {sorted(PSU_EFFICIENCY_CURVES)} "
                         "or a Curve") from None


def psu_efficiency(load_fraction, curve="80plus_titanium"):
    """PSU efficiency at an output load fraction [-].

    Parameters
    ----------
    load_fraction : float or array
        DC output power / rated output power [-], >= 0.
    curve : str or Curve
        ``"80plus_titanium"`` (default) or ``"80plus_platinum"`` (REFERENCE.md §8.3), or a Curve.

    Returns
    -------
    float or array
        eta [-]; e.g. 0.95 at 35 % load on Titanium (halfway between 0.94 and 0.96).
    """
    return curve_value(_psu_curve(curve), load_fraction)


def psu_input_power_w(output_power_w, rated_output_w, curve="80plus_titanium"):
    """AC input power of PSUs delivering ``output_power_w`` [W], ``P_out / eta(P_out / P_rated)``.

    Parameters
    ----------
    output_power_w : float or array
        DC power delivered to the IT equipment [W], >= 0.
    rated_output_w : float or array
        Rated output of the PSUs carrying it [W], > 0 (for a rack: PSU count x rating;
        with redundant PSUs sharing load, the rating of all of them).
    curve : str or Curve

    Returns
    -------
    float or array
        Input power [W].
    """
    p = np.asarray(output_power_w, dtype=float)
    return p / psu_efficiency(p / rated_output_w, curve)


def psu_loss_w(output_power_w, rated_output_w, curve="80plus_titanium"):
    """PSU conversion loss ``P_in - P_out`` [W] (see :func:`psu_input_power_w`)."""
    return psu_input_power_w(output_power_w, rated_output_w, curve) - output_power_w


def psu_power_factor(load_fraction, curve: Curve = PSU_PF_ENERGY_STAR_FLOOR):
    """PSU input power factor at a load fraction [-] (ENERGY STAR floor by default)."""
    return curve_value(curve, load_fraction)


def thd_from_power_factor(power_factor):
    """Current THD implied by a power factor at unity displacement [-].

    ``THD = sqrt(1/PF^2 - 1)`` (PF = distortion factor ``1/sqrt(1 + THD^2)`` when the
    fundamental is in phase; IEEE Std 1459). An upper bound on THD for a given PF floor.
    """
    pf = np.asarray(power_factor, dtype=float)
    return np.sqrt(np.maximum(1.0 / pf**2 - 1.0, 0.0))


def power_factor_from_thd(thd, displacement_factor=1.0):
    """True power factor ``cos(phi) / sqrt(1 + THD^2)`` [-] (IEEE Std 1459)."""
    return displacement_factor / np.sqrt(1.0 + np.asarray(thd, dtype=float) ** 2)


def psu_thd(load_fraction, pf_curve: Curve = PSU_PF_ENERGY_STAR_FLOOR):
    """PSU input-current THD [-], derived from the PF floor (:func:`thd_from_power_factor`).

    Assumption (no sourced THD curve, REFERENCE.md §8.9): PSUs sit exactly on the PF floor
    with unity displacement factor; 0.329 at full load, 1.169 at 10 %.
    """
    return thd_from_power_factor(psu_power_factor(load_fraction, pf_curve))


def iec_61000_3_2_class_d_h3_limit_a(input_power_w):
    """IEC 61000-3-2 class D limit on the 3rd-harmonic current [A].

    ``min(3.4 mA/W * P, 2.30 A)`` (class A cap), REFERENCE.md §8.3: 1.7 A at 500 W,
    2.30 A at 1 kW. Applies to equipment <= 16 A per phase.
    """
    return np.minimum(3.4e-3 * np.asarray(input_power_w, dtype=float), 2.30)


# --------------------------------------------------------------- transformers


def transformer_loss_w(load_va, rated_va, no_load_loss_w, load_loss_w):
    """Transformer loss ``P0 + (S/S_rated)^2 Pk`` [W] (REFERENCE.md §8.4).

    Parameters
    ----------
    load_va : float or array
        Apparent power through the transformer [VA] (``P / PF``), >= 0.
    rated_va : float or array
        Rated apparent power [VA], > 0.
    no_load_loss_w, load_loss_w : float or array
        P0 and Pk [W].

    Returns
    -------
    float or array
        Loss [W]; with the 2.5 MVA placeholder at 1.25 MVA: 1575 + 0.25 * 18500 = 6200 W.
        The no-load loss is drawn whenever the transformer is energised, even at zero load.
    """
    x = np.asarray(load_va, dtype=float) / rated_va
    return no_load_loss_w + x * x * load_loss_w


def transformer_efficiency(load_w, rated_va, no_load_loss_w, load_loss_w, power_factor=1.0):
    """Efficiency ``P / (P + loss(P / PF))`` [-] at an output real power ``load_w`` [W]."""
    p = np.asarray(load_w, dtype=float)
    loss = transformer_loss_w(p / power_factor, rated_va, no_load_loss_w, load_loss_w)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0.0, p / (p + loss), 0.0)


# ---------------------------------------------------------------------- UPS

_UPS_MODES = ("double_conversion", "eco")


def ups_efficiency(load_fraction, mode="double_conversion",
                   curve: Curve = UPS_DOUBLE_CONVERSION_EFFICIENCY_ASSUMED):
    """UPS efficiency at an output load fraction [-].

    Parameters
    ----------
    load_fraction : float or array
        Output real power / rated output [-].
    mode : {"double_conversion", "eco"}
        Eco-mode: ``1 - (1 - eta_dc) / 3`` (Schneider eConversion, REFERENCE.md §8.5):
        0.95 -> 0.98333.
    curve : Curve
        Double-conversion efficiency curve (default: the assumed 95 % curve).

    Returns
    -------
    float or array
        eta [-].
    """
    if mode not in _UPS_MODES:
        raise ValueError(f"mode = {mode!r}: expected one of {_UPS_MODES}")
    eta_dc = curve_value(curve, load_fraction)
    return eta_dc if mode == "double_conversion" else 1.0 - (1.0 - eta_dc) / 3.0


def ups_input_power_w(output_power_w, rated_w, mode="double_conversion",
                      curve: Curve = UPS_DOUBLE_CONVERSION_EFFICIENCY_ASSUMED):
    """UPS input power ``P_out / eta(P_out / P_rated)`` [W] (battery neither charging nor discharging)."""
    p = np.asarray(output_power_w, dtype=float)
    return p / ups_efficiency(p / rated_w, mode, curve)


def ups_loss_w(output_power_w, rated_w, mode="double_conversion",
               curve: Curve = UPS_DOUBLE_CONVERSION_EFFICIENCY_ASSUMED):
    """UPS loss ``P_in - P_out`` [W]."""
    return ups_input_power_w(output_power_w, rated_w, mode, curve) - output_power_w


def ups_input_power_factor(load_fraction):
    """UPS input power factor [-]: 0.99 at >= 25 % load, 0.95 below (REFERENCE.md §8.3).

    The source gives > 0.95 above 15 %; below 15 % it is unsourced and 0.95 is held
    (assumption).
    """
    x = np.asarray(load_fraction, dtype=float)
    return np.where(x >= 0.25, 0.99, 0.95)


def harmonic_terms(real_power_w, thd, displacement_factor=1.0):
    """Reactive power and harmonic volt-amperes of a load [var], [VA].

    ``Q = P tan(phi)`` with ``cos(phi)`` the displacement factor, and ``H = THD * S1``
    with ``S1 = |P + jQ|`` the fundamental apparent power (IEEE Std 1459 split of
    apparent power into fundamental and harmonic parts at an undistorted voltage).

    Parameters
    ----------
    real_power_w : float or array
        Real power [W], >= 0.
    thd : float or array
        Current THD [-].
    displacement_factor : float or array
        cos(phi) of the fundamental [-], in (0, 1].

    Returns
    -------
    reactive_var, harmonic_va : float or array
    """
    p = np.asarray(real_power_w, dtype=float)
    cos = np.clip(np.asarray(displacement_factor, dtype=float), 1e-12, 1.0)
    q = p * np.sqrt(1.0 - cos**2) / cos
    return q, np.asarray(thd, dtype=float) * np.hypot(p, q)


def power_quality(real_power_w, reactive_var, harmonic_va):
    """THD and true power factor of a bus from summed terms [-].

    Loads on one bus add their ``P``, ``Q`` and harmonic ``H`` (harmonic currents added
    in phase: the conservative bound for identical rectifier front ends). Then
    ``THD = H / |P + jQ|`` and ``PF = P / sqrt(P^2 + Q^2 + H^2)``.

    Returns
    -------
    thd, power_factor : float or array
        0 and 1 where no power flows.
    """
    p = np.asarray(real_power_w, dtype=float)
    s1 = np.hypot(p, reactive_var)
    with np.errstate(divide="ignore", invalid="ignore"):
        thd = np.where(s1 > 0.0, harmonic_va / s1, 0.0)
        pf = np.where(s1 > 0.0, p / np.hypot(s1, harmonic_va), 1.0)
    return thd, pf
