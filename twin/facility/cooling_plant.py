"""Cooling-plant models behind one interface: :class:`CoolingModel`.

Each model is a thin stateful class over the pure functions of
:mod:`twin.physics.cooling`, :mod:`twin.physics.chiller` and
:mod:`twin.physics.coolant_loop`. One call, ``step(dt_s, it_heat_w, dry_bulb_c,
wet_bulb_c)``, advances the plant over a tick with its inputs held constant and returns
a :class:`CoolingFlows`: tick-mean electric powers and heat flows [W] and the exact
change of stored energy [J].

Energy: every heat term comes from its own component, never as "electricity minus
something": the coolant loop integrates its temperature exactly and reports the heat
each device removed and ``C * dT``; a chiller's condenser heat is its first law
``P + Q_evap``; a tower or dry cooler rejects its water-side heat plus its fan work;
fan and pump work ends as heat in the air or water they move. So, per tick,

``(it_heat + chiller + pumps + fans) * dt = heat_rejected * dt + stored_energy_change``

holds to rounding, as a check (:meth:`CoolingFlows.balance_residual_j`), and a leak in
any one component shows up. ``misc_power_w`` (only ``paper_eq4``) is not cooled by the
plant: the facility ledger books it as a loss.

Per tick the site calls ``step_values`` (:func:`values_step`): the same flows as a plain
tuple in :data:`FLOW_FIELDS` order, computed on a scalar path that inlines the
:mod:`twin.physics.cooling` functions (bit-identical to ``step``'s reference path, checked
in ``tests/test_fastpath.py``).

Models (equations, parameters, sources: ``docs/models.md``):

* ``paper_eq4``: seed 004 Eq. 4 (constant COP, affinity laws, paper free-cooling ramp),
  no thermal state; :func:`calibrate_paper_eq4` fits it to Marconi100's PUE 1.20.
* ``air_chiller``: CRAH fans, chilled-water loop with thermal mass, EIR chiller on a
  cooling tower, series water-side economiser.
* ``dlc_warm_water``: warm-water direct liquid cooling (Leonardo 37/47 °C) on
  (adiabatic) dry coolers, optional trim chiller, plus an ``air_chiller`` plant for the
  heat the cold plates do not capture.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from types import MappingProxyType
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from twin.physics.chiller import DOE2_CENTRIFUGAL_5_50_COP, capft, condenser_heat_w, eir_chiller
from twin.physics.coolant_loop import loop_equilibrium_c, loop_heat_capacity_j_per_k, loop_step
from twin.physics.cooling import (
    VAV_FAN_CURVE,
    VSD_PUMP_CURVE,
    adiabatic_air_temperature_c,
    affinity_power_w,
    chiller_power_w,
    cooling_tower_heat_rejected_w,
    cooling_tower_leaving_water_c,
    dry_cooler_heat_rejected_w,
    dry_cooler_leaving_fluid_c,
    economiser_fraction,
    fan_power_w,
    free_cooling_fraction,
    pump_power_w,
)

#: Chiller performance records selectable by name (``chiller_curves`` parameter), read-only.
CHILLER_CURVES = MappingProxyType({DOE2_CENTRIFUGAL_5_50_COP.name: DOE2_CENTRIFUGAL_5_50_COP})

LITRE_M3 = 1e-3
W_PER_KW = 1e3


@dataclass(frozen=True)
class CoolingFlows:
    """One tick of a cooling plant: tick means [W], exact energy [J], state at the end.

    Attributes
    ----------
    chiller_power_w : float
        Electricity of all chillers (compressors) [W].
    pump_power_w : float
        Electricity of all pumps [W].
    fan_power_w : float
        Electricity of air-side (CRAH/CRAC) and heat-rejection (tower, dry cooler) fans [W].
    heat_rejected_w : float
        Heat given to the outdoor air by towers, dry coolers and air-cooled condensers [W].
    stored_energy_change_j : float
        Change of the coolant loops' stored heat over the tick, ``C * dT`` [J].
    supply_temp_c, return_temp_c : float
        Coolant supply and (mixed) return temperature at the end of the tick [°C]
        (the liquid loop for ``dlc_warm_water``; NaN for ``paper_eq4``, which has none).
    free_cooling_fraction : float
        Share of the heat removed from the loop without a compressor over the tick [-].
    chiller_plr : float
        Chillers' evaporator heat / their available capacity [-] (0 when off).
    chiller_cop : float
        Chillers' evaporator heat / their electricity [-] (0 when off).
    misc_power_w : float
        Electricity not cooled by this plant (``paper_eq4``'s misc term: lighting, UPS
        and distribution losses) [W]; a loss in the facility ledger, not in
        ``heat_rejected_w``. 0 for the physical models.
    """

    chiller_power_w: float
    pump_power_w: float
    fan_power_w: float
    heat_rejected_w: float
    stored_energy_change_j: float
    supply_temp_c: float
    return_temp_c: float
    free_cooling_fraction: float
    chiller_plr: float
    chiller_cop: float
    misc_power_w: float = 0.0

    @property
    def cooling_power_w(self) -> float:
        """Electricity of the plant: chillers + pumps + fans [W]."""
        return self.chiller_power_w + self.pump_power_w + self.fan_power_w

    def balance_residual_j(self, dt_s: float, it_heat_w: float) -> float:
        """``(it_heat + cooling power) * dt - heat_rejected * dt - stored`` [J]; ~0."""
        return (it_heat_w + self.cooling_power_w - self.heat_rejected_w) * dt_s - self.stored_energy_change_j


@runtime_checkable
class CoolingModel(Protocol):
    """What the site needs from a cooling plant."""

    name: str

    def step(self, dt_s: float, it_heat_w: float, dry_bulb_c: float, wet_bulb_c: float) -> CoolingFlows:
        """Advance ``dt_s`` [s] with the IT heat [W] and ambient [°C] held; tick's flows."""
        ...


_INF = math.inf
_NAN = math.nan
#: CoolingFlows' field names, in order (the tuple layout of the plants' ``step_values``).
FLOW_FIELDS = tuple(f.name for f in fields(CoolingFlows))
_N_FLOWS = len(FLOW_FIELDS)


def _flows(values: tuple) -> CoolingFlows:
    """A :class:`CoolingFlows` from its field values in order; what ``CoolingFlows(*values)``
    gives, without the frozen dataclass's per-field ``object.__setattr__``."""
    flows = object.__new__(CoolingFlows)
    flows.__dict__.update(zip(FLOW_FIELDS, values))
    return flows


def _values(flows: CoolingFlows) -> tuple:
    """The field values of ``flows`` in order (the inverse of :func:`_flows`)."""
    return tuple(getattr(flows, name) for name in FLOW_FIELDS)


def _plain_floats(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c) -> tuple | None:
    """A plant step's inputs as Python floats when each is a float, one is a float subclass
    (numpy ``float64``, e.g. a fleet's energy total) and all are within the ranges
    :func:`_check_step` accepts: the same values, for the scalar paths. None otherwise
    (another type, plain floats already, or out of range: the reference path and its errors)."""
    if not (isinstance(dt_s, float) and isinstance(it_heat_w, float) and isinstance(dry_bulb_c, float)
            and isinstance(wet_bulb_c, float)):
        return None
    if (dt_s.__class__ is float and it_heat_w.__class__ is float and dry_bulb_c.__class__ is float
            and wet_bulb_c.__class__ is float):
        return None
    dt_s, it_heat_w, dry_bulb_c, wet_bulb_c = float(dt_s), float(it_heat_w), float(dry_bulb_c), float(wet_bulb_c)
    if (0.0 < dt_s < _INF and 0.0 <= it_heat_w < _INF and -80.0 <= dry_bulb_c <= 70.0
            and -_INF < wet_bulb_c <= dry_bulb_c + 1e-9):
        return dt_s, it_heat_w, dry_bulb_c, wet_bulb_c
    return None


# ----------------------------------------------------------------------------- parameters
#
# One row per parameter: (key, kind, unit, default, description, min, max, source).
# Plain data for the scenario schema; the dataclasses below carry the same defaults
# (a test checks) and validate against these bounds.

PAPER_EQ4_ROWS = (
    ("chiller_cop", "float", "-", 5.5, "Chiller coefficient of performance (constant).", 0.5, 20.0,
     "REFERENCE.md §2.2 (DOE-2 centrifugal reference COP)"),
    ("pump_design_fraction", "float", "-", 0.05, "Pump power at design flow / design IT power.", 0.0, 1.0,
     "calibrated: PUE 1.20 at the Marconi100 design point (calibrate_paper_eq4), ratio 2:3:3 "
     "(assumption)"),
    ("fan_design_fraction", "float", "-", 0.075,
     "Fan (air-side and heat-rejection) power at design speed / design IT power.", 0.0, 1.0,
     "calibrated, as pump_design_fraction"),
    ("misc_fraction", "float", "-", 0.075,
     "Constant misc load (lighting, UPS and distribution losses) / design IT power.", 0.0, 1.0,
     "calibrated, as pump_design_fraction"),
    ("pump_min_flow_fraction", "float", "-", 0.20, "Floor on pump flow (bypass flow).", 0.0, 1.0,
     "seed 004 §3.3"),
    ("fan_min_speed_fraction", "float", "-", 0.15, "Floor on fan speed (minimum controllability).", 0.0, 1.0,
     "seed 004 §3.3"),
    ("pump_exponent", "float", "-", 3.0, "Affinity exponent of pump power vs flow.", 1.0, 3.0,
     "REFERENCE.md §2.1 (ideal cube law)"),
    ("fan_exponent", "float", "-", 3.0, "Affinity exponent of fan power vs speed.", 1.0, 3.0,
     "REFERENCE.md §2.1 (ideal cube law)"),
    ("free_cooling_zero_at_dry_bulb_c", "float", "degC", 25.0, "Dry-bulb at and above which free cooling is 0.",
     -50.0, 60.0, "seed 004 §3.3"),
    ("free_cooling_full_at_wet_bulb_c", "float", "degC", 12.0, "Wet-bulb at and below which free cooling is 1.",
     -50.0, 60.0, "seed 004 §3.3"),
)

AIR_CHILLER_ROWS = (
    ("chw_supply_c", "float", "degC", 10.0, "Chilled-water supply setpoint (chiller leaving).", 2.0, 20.0,
     "assumption: warmer than the 6.67 °C office reference; the upper edge of the DOE-2 curves' 5-10 °C fit"),
    ("chw_delta_t_k", "float", "K", 6.0, "Chilled-water return - supply at design load.", 1.0, 20.0,
     "assumption (unsourced; common 10-12 °F design)"),
    ("chiller_curves", "str", "-", DOE2_CENTRIFUGAL_5_50_COP.name, "Chiller performance record (EIR curves).",
     None, None, "REFERENCE.md §2.2 (EnergyPlus I/O Reference example, primary)"),
    ("chiller_capacity_factor", "float", "-", 1.2, "Chiller reference capacity / design IT power.", 0.05, 5.0,
     "assumption: covers IT + fan and pump heat with ~15 % margin"),
    ("cond_entering_min_c", "float", "degC", 20.0,
     "Lowest condenser-water entering temperature (tower bypass / head-pressure control).", 5.0, 35.0,
     "assumption; bounds the curves' extrapolation to 4 K below their 24 °C fit"),
    ("tower_approach_k", "float", "K", 2.8, "Cooling-tower approach (leaving water - wet-bulb).", 0.5, 10.0,
     "REFERENCE.md §2.3 (5 °F common design; secondary)"),
    ("tower_water_min_c", "float", "degC", 5.0, "Lowest tower leaving-water temperature (freeze protection).",
     0.0, 25.0, "assumption"),
    ("hx_approach_k", "float", "K", 1.5, "Economiser plate heat-exchanger approach.", 0.0, 10.0,
     "assumption (unsourced)"),
    ("crah_fan_design_fraction", "float", "-", 0.03, "CRAH fan power at design air flow / design IT power.",
     0.0, 1.0, "assumption (the Eq. 4 scenarios' fan fraction; REFERENCE.md §2.4: no sourced breakdown)"),
    ("chw_pump_design_fraction", "float", "-", 0.015, "Chilled-water pump power at design flow / design IT power.",
     0.0, 1.0, "assumption (unsourced)"),
    ("cw_pump_design_fraction", "float", "-", 0.015,
     "Condenser-water pump power at design flow / design IT power.", 0.0, 1.0, "assumption (unsourced)"),
    ("tower_fan_design_fraction", "float", "-", 0.01, "Cooling-tower fan power at design / design IT power.",
     0.0, 1.0, "assumption (unsourced)"),
    ("fan_min_flow_fraction", "float", "-", 0.15, "Floor on fan speed.", 0.0, 1.0, "seed 004 §3.3"),
    ("pump_min_flow_fraction", "float", "-", 0.20, "Floor on pump flow.", 0.0, 1.0, "seed 004 §3.3"),
    ("loop_volume_l_per_kw", "float", "L/kW", 5.0, "Chilled-water volume per kW of design IT power.", 0.1, 1000.0,
     "assumption (rule-of-thumb minimum system volume 3-10 L/kW, unsourced); tau = C/W ~ 2 min at the defaults"),
)

DLC_WARM_WATER_ROWS = (
    ("supply_c", "float", "degC", 37.0, "Facility-water supply setpoint (rack inlet).", 15.0, 70.0,
     "REFERENCE.md §2.5 (CINECA Leonardo, primary)"),
    ("delta_t_k", "float", "K", 10.0, "Return - supply at design load.", 1.0, 30.0,
     "REFERENCE.md §2.5 (Leonardo 37 -> 47 °C, primary)"),
    ("liquid_fraction", "float", "-", 0.9, "Share of IT heat captured by the liquid (cold plates).", 0.0, 1.0,
     "assumption (unsourced): CPUs, GPUs, memory on cold plates; PSUs, NICs, disks stay air-cooled"),
    ("dry_cooler_approach_k", "float", "K", 5.0, "Dry-cooler approach at full fan speed.", 0.5, 20.0,
     "REFERENCE.md §8.2.4 working figure (not sourced there)"),
    ("adiabatic_effectiveness", "float", "-", 0.7, "Adiabatic pre-cooler saturation effectiveness (0: none).",
     0.0, 1.0, "assumption (unsourced); Leonardo's dry coolers are adiabatic (REFERENCE.md §2.5)"),
    ("pump_design_fraction", "float", "-", 0.02, "Facility-water and CDU pump power at design / design IT power.",
     0.0, 1.0, "assumption (unsourced)"),
    ("dry_cooler_fan_design_fraction", "float", "-", 0.02, "Dry-cooler fan power at full speed / design IT power.",
     0.0, 1.0, "assumption (unsourced)"),
    ("fan_min_flow_fraction", "float", "-", 0.15, "Floor on dry-cooler fan speed.", 0.0, 1.0, "seed 004 §3.3"),
    ("pump_min_flow_fraction", "float", "-", 0.20, "Floor on pump flow.", 0.0, 1.0, "seed 004 §3.3"),
    ("trim_capacity_fraction", "float", "-", 0.0, "Trim-chiller capacity / design liquid heat (0: none).",
     0.0, 2.0, "REFERENCE.md §2.5: Leonardo has no compressor cycle"),
    ("trim_chiller_cop", "float", "-", 4.0, "Trim-chiller COP incl. its condenser fans (constant).", 0.5, 20.0,
     "assumption (EIR curves are not fitted at 37 °C leaving water)"),
    ("loop_volume_l_per_kw", "float", "L/kW", 5.0, "Facility-water volume per kW of design IT power.", 0.1, 1000.0,
     "assumption (unsourced); tau = C/W ~ 3.8 min at the defaults"),
)

#: Parameter rows of every model, for the scenario schema: (model name, rows).
MODEL_PARAMETER_ROWS = (
    ("paper_eq4", PAPER_EQ4_ROWS),
    ("air_chiller", AIR_CHILLER_ROWS),
    ("dlc_warm_water", DLC_WARM_WATER_ROWS),
)


def _validate_rows(obj, model: str, rows) -> None:
    """Coerce numbers to float and check each field against its row; ValueError naming it."""
    for key, kind, unit, _default, _desc, lo, hi, _src in rows:
        value = getattr(obj, key)
        where = f"{model}.{key} = {value!r}"
        if kind == "str":
            if not isinstance(value, str):
                raise ValueError(f"{where}: expected a string")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{where}: expected a finite number in [{lo:g}, {hi:g}] [{unit}]")
        if not lo <= value <= hi:
            raise ValueError(f"{where}: expected a number in [{lo:g}, {hi:g}] [{unit}]")
        object.__setattr__(obj, key, float(value))


@dataclass(frozen=True)
class PaperEq4Params:
    """Seed 004 Eq. 4 coefficients (rows: :data:`PAPER_EQ4_ROWS`)."""

    chiller_cop: float = 5.5
    pump_design_fraction: float = 0.05
    fan_design_fraction: float = 0.075
    misc_fraction: float = 0.075
    pump_min_flow_fraction: float = 0.20
    fan_min_speed_fraction: float = 0.15
    pump_exponent: float = 3.0
    fan_exponent: float = 3.0
    free_cooling_zero_at_dry_bulb_c: float = 25.0
    free_cooling_full_at_wet_bulb_c: float = 12.0

    def __post_init__(self):
        _validate_rows(self, "paper_eq4", PAPER_EQ4_ROWS)
        if not self.free_cooling_full_at_wet_bulb_c < self.free_cooling_zero_at_dry_bulb_c:
            raise ValueError(f"paper_eq4.free_cooling_full_at_wet_bulb_c = {self.free_cooling_full_at_wet_bulb_c!r}: "
                             f"expected a number below free_cooling_zero_at_dry_bulb_c "
                             f"({self.free_cooling_zero_at_dry_bulb_c:g}) [degC]")


@dataclass(frozen=True)
class AirChillerParams:
    """Air-cooled white space on a chilled-water plant (rows: :data:`AIR_CHILLER_ROWS`)."""

    chw_supply_c: float = 10.0
    chw_delta_t_k: float = 6.0
    chiller_curves: str = DOE2_CENTRIFUGAL_5_50_COP.name
    chiller_capacity_factor: float = 1.2
    cond_entering_min_c: float = 20.0
    tower_approach_k: float = 2.8
    tower_water_min_c: float = 5.0
    hx_approach_k: float = 1.5
    crah_fan_design_fraction: float = 0.03
    chw_pump_design_fraction: float = 0.015
    cw_pump_design_fraction: float = 0.015
    tower_fan_design_fraction: float = 0.01
    fan_min_flow_fraction: float = 0.15
    pump_min_flow_fraction: float = 0.20
    loop_volume_l_per_kw: float = 5.0

    def __post_init__(self):
        _validate_rows(self, "air_chiller", AIR_CHILLER_ROWS)
        if self.chiller_curves not in CHILLER_CURVES:
            raise ValueError(f"air_chiller.chiller_curves = {self.chiller_curves!r}: expected one of "
                             f"{', '.join(repr(k) for k in CHILLER_CURVES)}")
        curves = CHILLER_CURVES[self.chiller_curves]
        if self.chw_supply_c < curves.chw_leaving_lower_limit_c:
            raise ValueError(f"air_chiller.chw_supply_c = {self.chw_supply_c!r}: expected >= the chiller's leaving "
                             f"chilled-water lower limit {curves.chw_leaving_lower_limit_c:g} [degC]")


@dataclass(frozen=True)
class DlcWarmWaterParams:
    """Warm-water direct liquid cooling (rows: :data:`DLC_WARM_WATER_ROWS`)."""

    supply_c: float = 37.0
    delta_t_k: float = 10.0
    liquid_fraction: float = 0.9
    dry_cooler_approach_k: float = 5.0
    adiabatic_effectiveness: float = 0.7
    pump_design_fraction: float = 0.02
    dry_cooler_fan_design_fraction: float = 0.02
    fan_min_flow_fraction: float = 0.15
    pump_min_flow_fraction: float = 0.20
    trim_capacity_fraction: float = 0.0
    trim_chiller_cop: float = 4.0
    loop_volume_l_per_kw: float = 5.0

    def __post_init__(self):
        _validate_rows(self, "dlc_warm_water", DLC_WARM_WATER_ROWS)


def _check_design(design_it_power_w: float) -> float:
    if isinstance(design_it_power_w, bool) or not (isinstance(design_it_power_w, (int, float))
                                                   and math.isfinite(design_it_power_w) and design_it_power_w > 0):
        raise ValueError(f"design_it_power_w = {design_it_power_w!r}: expected a finite number > 0 [W]")
    return float(design_it_power_w)


def _check_step(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c) -> None:
    if not (math.isfinite(dt_s) and dt_s > 0):
        raise ValueError(f"dt_s = {dt_s!r}: expected a finite number > 0 [s]")
    if not (math.isfinite(it_heat_w) and it_heat_w >= 0):
        raise ValueError(f"it_heat_w = {it_heat_w!r}: expected a finite number >= 0 [W]")
    if not (math.isfinite(dry_bulb_c) and -80.0 <= dry_bulb_c <= 70.0):
        raise ValueError(f"dry_bulb_c = {dry_bulb_c!r}: expected a number in [-80, 70] [degC]")
    if not (math.isfinite(wet_bulb_c) and wet_bulb_c <= dry_bulb_c + 1e-9):
        raise ValueError(f"wet_bulb_c = {wet_bulb_c!r}: expected a finite number <= dry_bulb_c "
                         f"({dry_bulb_c:g}) [degC]")


# ----------------------------------------------------------------------------- paper_eq4

#: Marconi100 design point (seed 004 §5.2: "design-point PUE of 1.20", at full IT load).
#: The ambient is our choice: PUE is an annual figure (REFERENCE.md §2.4), so the design
#: ambient is Bologna's annual mean, dry-bulb 13.5 °C = mean of the rounded monthly mean
#: minima and maxima (REFERENCE.md §8.2.5, secondary: (105 + 219) / 24); wet-bulb 11.0 °C
#: assumes the 2.3-2.5 K annual dry-minus-wet-bulb gap of Paris, Frankfurt and Zürich
#: (REFERENCE.md §8.2.1; Bologna's is unsourced).
M100_DESIGN_PUE = 1.20
M100_DESIGN_DRY_BULB_C = 13.5
M100_DESIGN_WET_BULB_C = 11.0


def calibrate_paper_eq4(target_pue: float = M100_DESIGN_PUE, dry_bulb_c: float = M100_DESIGN_DRY_BULB_C,
                        wet_bulb_c: float = M100_DESIGN_WET_BULB_C,
                        base: PaperEq4Params | None = None) -> PaperEq4Params:
    """Scale Eq. 4's pump, fan and misc fractions together to hit ``target_pue`` at full load.

    At full IT load (load fraction 1, above both floors, so each affinity term is its
    design power) Eq. 4 gives ``PUE = 1 + (1 - f)/COP + s * (p + v + m)``, with ``f``
    the free-cooling fraction at the design ambient and ``p, v, m`` the base pump, fan
    and misc fractions; the COP and the ratios ``p : v : m`` are kept and

    ``s = (PUE_target - 1 - (1 - f)/COP) / (p + v + m)``.

    Marconi100 (defaults): ``f = 1`` (wet-bulb 11.0 <= 12 °C: full free cooling), so the
    chiller term is 0 and, with the 2:3:3 ratio of the Eq. 4 scenarios (0.02 / 0.03 /
    0.03), ``s = 0.20 / 0.08 = 2.5``: pumps 0.05, fans 0.075, misc 0.075 of design IT.

    Raises ``ValueError`` when the target is below what the chiller alone needs.
    """
    base = PaperEq4Params() if base is None else base
    f = free_cooling_fraction(dry_bulb_c, wet_bulb_c, base.free_cooling_zero_at_dry_bulb_c,
                              base.free_cooling_full_at_wet_bulb_c)
    chiller = (1.0 - f) / base.chiller_cop
    total = base.pump_design_fraction + base.fan_design_fraction + base.misc_fraction
    if not total > 0:
        raise ValueError("base pump, fan and misc fractions are all 0: nothing to scale")
    s = (target_pue - 1.0 - chiller) / total
    if s < 0:
        raise ValueError(f"target_pue = {target_pue!r}: expected >= {1.0 + chiller:.6g} (the chiller alone at "
                         f"free-cooling fraction {f:.3g} and COP {base.chiller_cop:g})")
    return replace(base, pump_design_fraction=s * base.pump_design_fraction,
                   fan_design_fraction=s * base.fan_design_fraction, misc_fraction=s * base.misc_fraction)


class PaperEq4Plant:
    """Seed 004 Eq. 4 (no thermal state): the model the engine uses today, behind :class:`CoolingModel`.

    Heat: the chiller's condenser rejects ``P_ch + (1 - f) * Q_IT`` (its first law), the
    free-cooling path ``f * Q_IT``; pump and fan work ends as heat in the water and air
    and is rejected with it. Misc power is reported but not cooled (a ledger loss).
    The chiller PLR assumes a chiller sized to the design IT heat.
    """

    name = "paper_eq4"

    def __init__(self, params: PaperEq4Params, design_it_power_w: float):
        self.params = params
        self.design_it_power_w = _check_design(design_it_power_w)
        self._consts = self._per_tick_constants()

    def _per_tick_constants(self) -> tuple:
        """The constants of step_values, the same products the reference path forms; the
        params and design power they come from lead (step_values rebuilds them when either
        attribute is replaced)."""
        p, design = self.params, self.design_it_power_w
        return (p, design, p.free_cooling_zero_at_dry_bulb_c, p.free_cooling_full_at_wet_bulb_c, p.chiller_cop,
                p.pump_design_fraction * design, p.pump_min_flow_fraction, p.pump_exponent,
                p.fan_design_fraction * design, p.fan_min_speed_fraction, p.fan_exponent, p.misc_fraction * design)

    def step(self, dt_s: float, it_heat_w: float, dry_bulb_c: float, wet_bulb_c: float) -> CoolingFlows:
        return _flows(self.step_values(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c))

    def step_values(self, dt_s: float, it_heat_w: float, dry_bulb_c: float, wet_bulb_c: float) -> tuple:
        """:meth:`step` as a tuple in :class:`CoolingFlows` field order (the site's per-tick call).

        Python floats within the ranges :meth:`step` accepts take a scalar path: the
        operations of :meth:`_step_reference` in the same order, with the free-cooling,
        chiller and affinity functions inlined (no numpy, no type dispatch;
        ``tests/test_fastpath.py`` checks they agree bit for bit); numpy float64 inputs are
        converted to floats first (the same values); anything else goes through
        :meth:`_step_reference` (and its errors).
        """
        if (dt_s.__class__ is float and it_heat_w.__class__ is float and dry_bulb_c.__class__ is float
                and wet_bulb_c.__class__ is float and 0.0 < dt_s < _INF and 0.0 <= it_heat_w < _INF
                and -80.0 <= dry_bulb_c <= 70.0 and -_INF < wet_bulb_c <= dry_bulb_c + 1e-9):
            consts = self._consts
            if consts[0] is not self.params or consts[1] is not self.design_it_power_w:
                consts = self._consts = self._per_tick_constants()
            _p, design, zero_at, full_at, cop, pump_w, pump_min, pump_n, fan_w, fan_min, fan_n, misc_w = consts
            x = it_heat_w / design
            # free_cooling_fraction's scalar branch; its clip is the identity here (finite
            # inputs: f is 1, 0 or below / (above + below) in (0, 1])
            above_full_k = wet_bulb_c - full_at
            below_zero_k = zero_at - dry_bulb_c
            if above_full_k <= 0.0:
                f = 1.0
            elif below_zero_k <= 0.0:
                f = 0.0
            else:
                f = below_zero_k / (above_full_k + below_zero_k)
            g = 1.0 - f
            mech_heat_w = g * it_heat_w
            p_chiller = mech_heat_w / cop
            # affinity_power_w (x is not NaN: max is np.maximum)
            p_pump = pump_w * max(x, pump_min) ** pump_n
            p_fan = fan_w * max(x, fan_min) ** fan_n
            q_cond = condenser_heat_w(p_chiller, mech_heat_w)  # each heat term from its component's function
            return (p_chiller, p_pump, p_fan, q_cond + f * it_heat_w + p_pump + p_fan, 0.0, _NAN, _NAN, f,
                    g * x, cop if p_chiller > 0 else 0.0, misc_w)
        floats = _plain_floats(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c)
        if floats is not None:
            return self.step_values(*floats)
        return _values(self._step_reference(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c))

    def step_arrays(self, dt_s: np.ndarray, it_heat_w: np.ndarray, dry_bulb_c: np.ndarray, wet_bulb_c: np.ndarray):
        """:meth:`step_values` for consecutive ticks at once (the site's block stepping):
        ``(chiller_w, pump_w, fan_w, heat_rejected_w, free_cooling_fraction, misc_w)``, the
        first five per tick (pump and fan as lists). The scalar path's operations on float64
        arrays (+, -, *, / elementwise are the same IEEE operations) and Python's ``**`` for
        the affinity laws, as there: the same numbers. None when some tick is outside the
        scalar path's conditions (the caller steps tick by tick, and the checks raise)."""
        with np.errstate(invalid="ignore"):   # NaN fails every condition
            ok = ((dt_s > 0.0) & (dt_s < _INF) & (it_heat_w >= 0.0) & (it_heat_w < _INF) & (dry_bulb_c >= -80.0)
                  & (dry_bulb_c <= 70.0) & (wet_bulb_c > -_INF) & (wet_bulb_c <= dry_bulb_c + 1e-9))
        if not ok.all():
            return None
        consts = self._consts
        if consts[0] is not self.params or consts[1] is not self.design_it_power_w:
            consts = self._consts = self._per_tick_constants()
        _p, design, zero_at, full_at, cop, pump_w, pump_min, pump_n, fan_w, fan_min, fan_n, misc_w = consts
        x = it_heat_w / design
        above_full_k = wet_bulb_c - full_at
        below_zero_k = zero_at - dry_bulb_c
        f = np.where(above_full_k <= 0.0, 1.0, 0.0)
        np.divide(below_zero_k, above_full_k + below_zero_k, out=f, where=(above_full_k > 0.0) & (below_zero_k > 0.0))
        g = 1.0 - f
        mech_heat_w = g * it_heat_w
        p_chiller = mech_heat_w / cop
        pump = [pump_w * v ** pump_n for v in np.maximum(x, pump_min).tolist()]
        fan = [fan_w * v ** fan_n for v in np.maximum(x, fan_min).tolist()]
        q_cond = condenser_heat_w(p_chiller, mech_heat_w)
        return p_chiller, pump, fan, q_cond + f * it_heat_w + np.array(pump) + np.array(fan), f, misc_w

    def _step_reference(self, dt_s, it_heat_w, dry_bulb_c, wet_bulb_c) -> CoolingFlows:
        """The tick through the vectorised physics functions (any input types)."""
        _check_step(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c)
        p, design = self.params, self.design_it_power_w
        x = it_heat_w / design
        f = free_cooling_fraction(dry_bulb_c, wet_bulb_c, p.free_cooling_zero_at_dry_bulb_c,
                                  p.free_cooling_full_at_wet_bulb_c)
        p_chiller = float(chiller_power_w(it_heat_w, f, p.chiller_cop))
        p_pump = float(affinity_power_w(x, p.pump_design_fraction * design, p.pump_min_flow_fraction,
                                        p.pump_exponent))
        p_fan = float(affinity_power_w(x, p.fan_design_fraction * design, p.fan_min_speed_fraction, p.fan_exponent))
        q_cond = float(condenser_heat_w(p_chiller, (1.0 - f) * it_heat_w))
        q_free = f * it_heat_w
        return CoolingFlows(
            chiller_power_w=p_chiller, pump_power_w=p_pump, fan_power_w=p_fan,
            heat_rejected_w=q_cond + q_free + p_pump + p_fan, stored_energy_change_j=0.0,
            supply_temp_c=math.nan, return_temp_c=math.nan, free_cooling_fraction=f,
            chiller_plr=(1.0 - f) * x, chiller_cop=p.chiller_cop if p_chiller > 0 else 0.0,
            misc_power_w=p.misc_fraction * design,
        )

    def state(self) -> dict:
        return {}

    def config(self) -> dict:
        return {"model": self.name, "design_it_power_w": self.design_it_power_w, **asdict(self.params)}


def _air_constants(p: AirChillerParams) -> tuple:
    """:meth:`AirChillerPlant._tick_values`' constants from its parameters (``p`` leads: they are
    rebuilt when the plant's params are replaced)."""
    return (p, p.fan_min_flow_fraction, p.pump_min_flow_fraction, p.tower_approach_k, p.tower_water_min_c,
            p.cond_entering_min_c, p.chw_supply_c, p.hx_approach_k, p.chw_supply_c + p.chw_delta_t_k)


def _dlc_constants(p: DlcWarmWaterParams) -> tuple:
    """:meth:`DlcWarmWaterPlant.step_values`' constants from its parameters (``p`` leads)."""
    return (p, p.pump_min_flow_fraction, p.adiabatic_effectiveness, p.supply_c - p.dry_cooler_approach_k,
            p.dry_cooler_approach_k, p.liquid_fraction, p.supply_c, p.trim_chiller_cop,
            p.delta_t_k + p.dry_cooler_approach_k, p.fan_min_flow_fraction, 1.0 - p.liquid_fraction)


# ----------------------------------------------------------------------------- air_chiller


class _AirTick(NamedTuple):
    flows: CoolingFlows
    chiller_heat_w: float  # evaporator heat met [W]
    chiller_capacity_w: float  # available capacity [W]
    free_heat_w: float  # removed by the economiser [W]
    mechanical_heat_w: float  # removed by the chiller, as the loop asked [W]


class AirChillerPlant:
    """Air-cooled white space on a chilled-water plant with a water-side economiser.

    IT heat and CRAH fan work go into the air and through the CRAH coils into the
    chilled-water loop (:mod:`twin.physics.coolant_loop`, thermal mass ``C``), together
    with the chilled-water pumps' work. The loop's return water passes the economiser
    plate heat exchanger (fed by tower water at ``max(T_wb + approach, T_min)``) and
    then the EIR chiller, which holds the supply setpoint while it has capacity. The
    tower rejects the chiller's condenser heat, the economiser heat and the condenser-
    water pumps' work, and its fans' work leaves in its exhaust air.

    Flows: CRAH fans and chilled-water pumps follow the IT load fraction (VAV fan curve,
    VSD pump curve, floors 15 % / 20 %); condenser-water pumps and tower fans follow the
    tower's heat fraction (VSD pump curve; cube law for the tower fan, which has no
    static-pressure setpoint, REFERENCE.md §2.1). Chiller capacity and the condenser
    temperature are held over the tick; the chiller is evaluated at the tick's mean
    load. The loop starts at its design steady state (return = supply + design dT);
    :meth:`settle` moves it to the steady state of given conditions.
    """

    name = "air_chiller"

    def __init__(self, params: AirChillerParams, design_it_power_w: float):
        self.params = p = params
        self.design_it_power_w = design = _check_design(design_it_power_w)
        self.curves = CHILLER_CURVES[p.chiller_curves]
        self.crah_fan_design_w = p.crah_fan_design_fraction * design
        self.chw_pump_design_w = p.chw_pump_design_fraction * design
        self.cw_pump_design_w = p.cw_pump_design_fraction * design
        self.tower_fan_design_w = p.tower_fan_design_fraction * design
        # design loop heat: IT + CRAH fans + chilled-water pumps at full flow
        self.loop_design_heat_w = design + self.crah_fan_design_w + self.chw_pump_design_w
        self.capacity_rate_w_per_k = self.loop_design_heat_w / p.chw_delta_t_k
        self.heat_capacity_j_per_k = float(loop_heat_capacity_j_per_k(
            p.loop_volume_l_per_kw * design / W_PER_KW * LITRE_M3))
        self.chiller_reference_capacity_w = p.chiller_capacity_factor * design
        # tower design heat: the loop's design heat plus a chiller's compressor work at COP_ref
        self.tower_design_heat_w = self.loop_design_heat_w * (1.0 + 1.0 / self.curves.reference_cop)
        self.return_temp_c = p.chw_supply_c + p.chw_delta_t_k
        self._consts = _air_constants(p)

    @property
    def time_constant_s(self) -> float:
        """Loop time constant ``C / W`` [s]."""
        return self.heat_capacity_j_per_k / self.capacity_rate_w_per_k

    def _operating_point(self, it_heat_w, wet_bulb_c):
        p = self.params
        x = it_heat_w / self.design_it_power_w
        p_crah = float(fan_power_w(x, self.crah_fan_design_w, p.fan_min_flow_fraction))
        p_chwp = float(pump_power_w(x, self.chw_pump_design_w, p.pump_min_flow_fraction))
        t_tower = float(cooling_tower_leaving_water_c(wet_bulb_c, p.tower_approach_k, p.tower_water_min_c))
        t_cond = max(t_tower, p.cond_entering_min_c)
        chiller_max_w = (self.chiller_reference_capacity_w * float(capft(p.chw_supply_c, t_cond, self.curves))
                         * self.curves.max_plr)
        return p_crah, p_chwp, t_tower, t_cond, max(chiller_max_w, 0.0)

    def settle(self, it_heat_w: float, dry_bulb_c: float, wet_bulb_c: float) -> None:
        """Set the loop to its steady state for these conditions."""
        _check_step(1.0, it_heat_w, dry_bulb_c, wet_bulb_c)
        p_crah, p_chwp, t_tower, _t_cond, chiller_max_w = self._operating_point(it_heat_w, wet_bulb_c)
        self.return_temp_c = loop_equilibrium_c(it_heat_w + p_crah + p_chwp, self.capacity_rate_w_per_k,
                                                self.params.chw_supply_c, t_tower + self.params.hx_approach_k,
                                                chiller_max_w)

    def _tick_values(self, dt_s, it_heat_w, dry_bulb_c, wet_bulb_c) -> tuple:
        """:meth:`_step` flat: the flows in :data:`FLOW_FIELDS` order, then ``chiller_heat_w``,
        ``chiller_capacity_w``, ``free_heat_w``, ``mechanical_heat_w``.

        Python floats within the ranges :meth:`step` accepts take a scalar path: the
        operations of :meth:`_step` in the same order, with the fan, pump, tower and
        economiser functions of :mod:`twin.physics.cooling` inlined (``tests/test_fastpath.py``
        checks they agree bit for bit); anything else goes through :meth:`_step`.
        """
        if not (dt_s.__class__ is float and it_heat_w.__class__ is float and dry_bulb_c.__class__ is float
                and wet_bulb_c.__class__ is float and 0.0 < dt_s < _INF and 0.0 <= it_heat_w < _INF
                and -80.0 <= dry_bulb_c <= 70.0 and -_INF < wet_bulb_c <= dry_bulb_c + 1e-9):
            floats = _plain_floats(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c)
            if floats is not None:
                return self._tick_values(*floats)
            t = self._step(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c)
            return _values(t.flows) + (t.chiller_heat_w, t.chiller_capacity_w, t.free_heat_w, t.mechanical_heat_w)
        consts = self._consts
        if consts[0] is not self.params:
            consts = self._consts = _air_constants(self.params)
        _p, fan_min, pump_min, tower_approach_k, tower_min_c, cond_min_c, chw_supply_c, hx_approach_k, \
            chw_return_design_c = consts
        # the derived attributes are read per tick (a chiller-staging study rescales the capacity)
        design, ref_capacity_w, curves = self.design_it_power_w, self.chiller_reference_capacity_w, self.curves
        f0, f1, f2, f3 = VAV_FAN_CURVE
        p0, p1, p2, p3 = VSD_PUMP_CURVE
        # _operating_point (inputs finite: the floors' max is np.maximum)
        x = it_heat_w / design
        xf = max(x, fan_min)
        p_crah = self.crah_fan_design_w * (f0 + xf * (f1 + xf * (f2 + xf * f3)))
        xp = max(x, pump_min)
        p_chwp = self.chw_pump_design_w * (p0 + xp * (p1 + xp * (p2 + xp * p3)))
        t_tower = max(wet_bulb_c + tower_approach_k, tower_min_c)
        t_cond = max(t_tower, cond_min_c)
        chiller_max_w = max(ref_capacity_w * float(capft(chw_supply_c, t_cond, curves)) * curves.max_plr, 0.0)
        loop = loop_step(self.return_temp_c, it_heat_w + p_crah + p_chwp, dt_s, self.heat_capacity_j_per_k,
                         self.capacity_rate_w_per_k, chw_supply_c, t_tower + hx_approach_k, chiller_max_w)
        self.return_temp_c = return_c = loop["return_temp_c"]
        q_free = loop["free_heat_j"] / dt_s
        q_mech = loop["mechanical_heat_j"] / dt_s
        ch = eir_chiller(q_mech, ref_capacity_w, chw_supply_c, t_cond, curves,
                         motor_to_condenser_fraction=1.0, false_load_to_condenser=False)
        q_cond = ch["condenser_heat_w"]
        x_tower = (q_cond + q_free) / self.tower_design_heat_w
        xc = max(x_tower, pump_min)  # NaN stays NaN, as np.maximum (NaN first)
        p_cwp = self.cw_pump_design_w * (p0 + xc * (p1 + xc * (p2 + xc * p3)))
        p_tower_fan = self.tower_fan_design_w * max(x_tower, fan_min) ** 3.0
        removed = q_free + q_mech
        if removed > 0:
            free_frac = q_free / removed
        else:  # economiser_fraction's scalar branch (design return != supply)
            free_frac = min(max((chw_return_design_c - (t_tower + hx_approach_k))
                                / (chw_return_design_c - chw_supply_c), 0.0), 1.0)
        return (ch["power_w"], p_chwp + p_cwp, p_crah + p_tower_fan,
                cooling_tower_heat_rejected_w(q_cond, q_free, p_cwp, p_tower_fan),
                loop["stored_energy_change_j"], loop["supply_temp_c"], return_c, free_frac,
                ch["part_load_ratio"], ch["cop"], 0.0,
                ch["evaporator_heat_w"], ch["available_capacity_w"], q_free, q_mech)

    def _step(self, dt_s, it_heat_w, dry_bulb_c, wet_bulb_c) -> _AirTick:
        """The tick's flows and the heat terms a composite plant aggregates (any input types;
        the reference of :meth:`_tick_values`)."""
        _check_step(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c)
        p = self.params
        p_crah, p_chwp, t_tower, t_cond, chiller_max_w = self._operating_point(it_heat_w, wet_bulb_c)
        # CRAH fan and chilled-water pump work end as heat in the air and water
        heat_in_w = it_heat_w + p_crah + p_chwp
        loop = loop_step(self.return_temp_c, heat_in_w, dt_s, self.heat_capacity_j_per_k,
                         self.capacity_rate_w_per_k, p.chw_supply_c, t_tower + p.hx_approach_k, chiller_max_w)
        self.return_temp_c = loop["return_temp_c"]
        q_free = loop["free_heat_j"] / dt_s
        q_mech = loop["mechanical_heat_j"] / dt_s
        ch = eir_chiller(q_mech, self.chiller_reference_capacity_w, p.chw_supply_c, t_cond, self.curves,
                         motor_to_condenser_fraction=1.0, false_load_to_condenser=False)
        q_cond = ch["condenser_heat_w"]
        x_tower = (q_cond + q_free) / self.tower_design_heat_w
        p_cwp = float(pump_power_w(x_tower, self.cw_pump_design_w, p.pump_min_flow_fraction))
        p_tower_fan = float(affinity_power_w(x_tower, self.tower_fan_design_w, p.fan_min_flow_fraction, 3.0))
        removed = q_free + q_mech
        free_frac = q_free / removed if removed > 0 else economiser_fraction(
            t_tower, p.chw_supply_c, p.chw_supply_c + p.chw_delta_t_k, p.hx_approach_k)
        flows = CoolingFlows(
            chiller_power_w=ch["power_w"],
            pump_power_w=p_chwp + p_cwp,
            fan_power_w=p_crah + p_tower_fan,
            heat_rejected_w=float(cooling_tower_heat_rejected_w(q_cond, q_free, p_cwp, p_tower_fan)),
            stored_energy_change_j=loop["stored_energy_change_j"],
            supply_temp_c=loop["supply_temp_c"],
            return_temp_c=loop["return_temp_c"],
            free_cooling_fraction=float(free_frac),
            chiller_plr=ch["part_load_ratio"],
            chiller_cop=ch["cop"],
        )
        return _AirTick(flows, ch["evaporator_heat_w"], ch["available_capacity_w"], q_free, q_mech)

    def step(self, dt_s: float, it_heat_w: float, dry_bulb_c: float, wet_bulb_c: float) -> CoolingFlows:
        return _flows(self._tick_values(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c))  # zip stops at the flows

    def step_values(self, dt_s: float, it_heat_w: float, dry_bulb_c: float, wet_bulb_c: float) -> tuple:
        """:meth:`step` as a tuple in :class:`CoolingFlows` field order (the site's per-tick call)."""
        return self._tick_values(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c)[:_N_FLOWS]

    def state(self) -> dict:
        return {"return_temp_c": self.return_temp_c}

    def config(self) -> dict:
        return {"model": self.name, "design_it_power_w": self.design_it_power_w, **asdict(self.params),
                "time_constant_s": self.time_constant_s}


# ----------------------------------------------------------------------------- dlc_warm_water


class DlcWarmWaterPlant:
    """Warm-water direct liquid cooling on adiabatic dry coolers.

    ``liquid_fraction`` of the IT heat goes to the cold plates and, with the pumps'
    work, into the facility-water loop (thermal mass ``C``). Dry coolers cool the return
    water toward ``T_air + approach``, where ``T_air`` is the dry-bulb, lowered by a
    modulated adiabatic pre-cooler only as far as needed to hold the supply setpoint; an
    optional trim chiller (constant COP, air-cooled: its condenser rejects ``P + Q``
    to the air) takes what they cannot. When neither suffices the supply temperature
    rises above the setpoint (no IT derating is modelled).

    Dry-cooler fans run at the speed that moves the tick's heat with the available
    air-to-water temperature difference, relative to design
    (``x = (Q/Q_d) * (dT_loop + approach) / (T_return - T_air)``, clipped to
    [floor, 1]; cube-law fan power). The rest of the IT heat, ``1 - liquid_fraction``,
    goes to an :class:`AirChillerPlant` with default parameters, sized to it.
    """

    name = "dlc_warm_water"

    def __init__(self, params: DlcWarmWaterParams, design_it_power_w: float):
        self.params = p = params
        self.design_it_power_w = design = _check_design(design_it_power_w)
        self.pump_design_w = p.pump_design_fraction * design
        self.fan_design_w = p.dry_cooler_fan_design_fraction * design
        self.loop_design_heat_w = p.liquid_fraction * design + self.pump_design_w
        if not self.loop_design_heat_w > 0:
            raise ValueError(f"dlc_warm_water.liquid_fraction = {p.liquid_fraction!r} with "
                             f"pump_design_fraction = {p.pump_design_fraction!r}: the liquid loop carries no heat; "
                             f"use air_chiller")
        self.capacity_rate_w_per_k = self.loop_design_heat_w / p.delta_t_k
        self.heat_capacity_j_per_k = float(loop_heat_capacity_j_per_k(
            p.loop_volume_l_per_kw * design / W_PER_KW * LITRE_M3))
        self.trim_capacity_w = p.trim_capacity_fraction * p.liquid_fraction * design
        air_design_w = (1.0 - p.liquid_fraction) * design
        self.air = AirChillerPlant(AirChillerParams(), air_design_w) if air_design_w > 0 else None
        self.return_temp_c = p.supply_c + p.delta_t_k
        self._consts = _dlc_constants(p)

    @property
    def time_constant_s(self) -> float:
        """Liquid-loop time constant ``C / W`` [s]."""
        return self.heat_capacity_j_per_k / self.capacity_rate_w_per_k

    def _operating_point(self, it_heat_w, dry_bulb_c, wet_bulb_c):
        p = self.params
        x = it_heat_w / self.design_it_power_w
        p_pump = float(pump_power_w(x, self.pump_design_w, p.pump_min_flow_fraction))
        t_air = float(adiabatic_air_temperature_c(dry_bulb_c, wet_bulb_c, p.adiabatic_effectiveness,
                                                  p.supply_c - p.dry_cooler_approach_k))
        t_free = float(dry_cooler_leaving_fluid_c(t_air, p.dry_cooler_approach_k))
        return p_pump, t_air, t_free

    def settle(self, it_heat_w: float, dry_bulb_c: float, wet_bulb_c: float) -> None:
        """Set both loops to their steady state for these conditions."""
        _check_step(1.0, it_heat_w, dry_bulb_c, wet_bulb_c)
        p = self.params
        p_pump, _t_air, t_free = self._operating_point(it_heat_w, dry_bulb_c, wet_bulb_c)
        self.return_temp_c = loop_equilibrium_c(p.liquid_fraction * it_heat_w + p_pump, self.capacity_rate_w_per_k,
                                                p.supply_c, t_free, self.trim_capacity_w)
        if self.air is not None:
            self.air.settle((1.0 - p.liquid_fraction) * it_heat_w, dry_bulb_c, wet_bulb_c)

    def step(self, dt_s: float, it_heat_w: float, dry_bulb_c: float, wet_bulb_c: float,
             recovered_heat_w: float = 0.0) -> CoolingFlows:
        """One tick. ``recovered_heat_w`` is taken from the warm-water return by a heat
        pump's evaporator (district heating) before the dry coolers [W], in
        ``[0, liquid_fraction * it_heat_w]``; it leaves this plant's balance as recovered
        heat, not as heat rejected."""
        return _flows(self.step_values(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c, recovered_heat_w))

    def step_values(self, dt_s: float, it_heat_w: float, dry_bulb_c: float, wet_bulb_c: float,
                    recovered_heat_w: float = 0.0) -> tuple:
        """:meth:`step` as a tuple in :class:`CoolingFlows` field order (the site's per-tick call).

        Python floats within the ranges :meth:`step` accepts take a scalar path: the
        operations of :meth:`_step_reference` in the same order, with the pump, fan,
        adiabatic and dry-cooler functions of :mod:`twin.physics.cooling` inlined
        (``tests/test_fastpath.py`` checks they agree bit for bit); anything else goes
        through :meth:`_step_reference` (and its errors).
        """
        if not (dt_s.__class__ is float and it_heat_w.__class__ is float and dry_bulb_c.__class__ is float
                and wet_bulb_c.__class__ is float and 0.0 < dt_s < _INF and 0.0 <= it_heat_w < _INF
                and -80.0 <= dry_bulb_c <= 70.0 and -_INF < wet_bulb_c <= dry_bulb_c + 1e-9):
            floats = _plain_floats(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c)
            if floats is not None:
                return self.step_values(*floats, recovered_heat_w)
            return _values(self._step_reference(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c, recovered_heat_w))
        consts = self._consts
        if consts[0] is not self.params:
            consts = self._consts = _dlc_constants(self.params)
        _p, pump_min, eps, spray_target_c, approach_k, liquid, supply_c, trim_cop, design_dt_k, fan_min, \
            air_share = consts
        # the derived attributes are read per tick (a chiller-staging study rescales the trim capacity)
        trim_w = self.trim_capacity_w
        if not 0.0 <= recovered_heat_w <= liquid * it_heat_w * (1.0 + 1e-12):
            raise ValueError(f"recovered_heat_w = {recovered_heat_w!r}: expected in [0, liquid heat "
                             f"{liquid * it_heat_w:g}] W")
        # _operating_point (inputs finite: the floors' max is np.maximum)
        p0, p1, p2, p3 = VSD_PUMP_CURVE
        xp = max(it_heat_w / self.design_it_power_w, pump_min)
        p_pump = self.pump_design_w * (p0 + xp * (p1 + xp * (p2 + xp * p3)))
        t_air = min(dry_bulb_c, max(spray_target_c, dry_bulb_c - eps * (dry_bulb_c - wet_bulb_c)))
        t_free = t_air + approach_k
        loop = loop_step(self.return_temp_c, liquid * it_heat_w + p_pump - recovered_heat_w, dt_s,
                         self.heat_capacity_j_per_k, self.capacity_rate_w_per_k, supply_c, t_free, trim_w)
        self.return_temp_c = return_c = loop["return_temp_c"]
        q_dry = loop["free_heat_j"] / dt_s
        q_trim = loop["mechanical_heat_j"] / dt_s
        p_trim = q_trim / trim_cop
        air_dt_k = loop["return_temp_mean_c"] - t_air
        if q_dry > 0 and air_dt_k > 0:
            x_fan = (q_dry / self.loop_design_heat_w) * design_dt_k / air_dt_k
        else:
            x_fan = 0.0 if q_dry <= 0 else 1.0
        x_fan = min(max(x_fan, fan_min), 1.0)
        p_fan = self.fan_design_w * max(x_fan, fan_min) ** 3.0
        heat_rejected = dry_cooler_heat_rejected_w(q_dry, p_fan) + condenser_heat_w(p_trim, q_trim)
        chiller_power, chiller_heat, chiller_cap = p_trim, q_trim, trim_w
        pump, fan, stored = p_pump, p_fan, loop["stored_energy_change_j"]
        removed, removed_free = q_dry + q_trim, q_dry
        air = self.air
        if air is not None:
            a_chiller, a_pump, a_fan, a_rejected, a_stored, _s, _r, _f, _plr, _cop, _m, a_heat, a_cap, a_free, \
                a_mech = air._tick_values(dt_s, air_share * it_heat_w, dry_bulb_c, wet_bulb_c)
            chiller_power += a_chiller
            chiller_heat += a_heat
            chiller_cap += a_cap
            pump += a_pump
            fan += a_fan
            heat_rejected += a_rejected
            stored += a_stored
            removed += a_free + a_mech
            removed_free += a_free
        return (chiller_power, pump, fan, heat_rejected, stored, loop["supply_temp_c"], return_c,
                removed_free / removed if removed > 0 else (1.0 if t_free <= supply_c else 0.0),
                chiller_heat / chiller_cap if chiller_cap > 0 else 0.0,
                chiller_heat / chiller_power if chiller_power > 0 else 0.0, 0.0)

    def _step_reference(self, dt_s, it_heat_w, dry_bulb_c, wet_bulb_c, recovered_heat_w=0.0) -> CoolingFlows:
        """The tick through the vectorised physics functions (any input types)."""
        _check_step(dt_s, it_heat_w, dry_bulb_c, wet_bulb_c)
        p = self.params
        if not 0.0 <= recovered_heat_w <= p.liquid_fraction * it_heat_w * (1.0 + 1e-12):
            raise ValueError(f"recovered_heat_w = {recovered_heat_w!r}: expected in [0, liquid heat "
                             f"{p.liquid_fraction * it_heat_w:g}] W")
        p_pump, t_air, t_free = self._operating_point(it_heat_w, dry_bulb_c, wet_bulb_c)
        # pump work ends as heat in the water; the heat pump takes its share before the dry coolers
        heat_in_w = p.liquid_fraction * it_heat_w + p_pump - recovered_heat_w
        loop = loop_step(self.return_temp_c, heat_in_w, dt_s, self.heat_capacity_j_per_k,
                         self.capacity_rate_w_per_k, p.supply_c, t_free, self.trim_capacity_w)
        self.return_temp_c = loop["return_temp_c"]
        q_dry = loop["free_heat_j"] / dt_s
        q_trim = loop["mechanical_heat_j"] / dt_s
        p_trim = q_trim / p.trim_chiller_cop
        q_trim_cond = float(condenser_heat_w(p_trim, q_trim))
        air_dt_k = loop["return_temp_mean_c"] - t_air
        if q_dry > 0 and air_dt_k > 0:
            x_fan = (q_dry / self.loop_design_heat_w) * (p.delta_t_k + p.dry_cooler_approach_k) / air_dt_k
        else:
            x_fan = 0.0 if q_dry <= 0 else 1.0
        x_fan = min(max(x_fan, p.fan_min_flow_fraction), 1.0)
        p_fan = float(affinity_power_w(x_fan, self.fan_design_w, p.fan_min_flow_fraction, 3.0))
        heat_rejected = float(dry_cooler_heat_rejected_w(q_dry, p_fan)) + q_trim_cond
        chiller_power, chiller_heat, chiller_cap = p_trim, q_trim, self.trim_capacity_w
        pump, fan, stored = p_pump, p_fan, loop["stored_energy_change_j"]
        removed, removed_free = q_dry + q_trim, q_dry
        if self.air is not None:
            a = self.air._step(dt_s, (1.0 - p.liquid_fraction) * it_heat_w, dry_bulb_c, wet_bulb_c)
            chiller_power += a.flows.chiller_power_w
            chiller_heat += a.chiller_heat_w
            chiller_cap += a.chiller_capacity_w
            pump += a.flows.pump_power_w
            fan += a.flows.fan_power_w
            heat_rejected += a.flows.heat_rejected_w
            stored += a.flows.stored_energy_change_j
            removed += a.free_heat_w + a.mechanical_heat_w
            removed_free += a.free_heat_w
        free_frac = removed_free / removed if removed > 0 else (1.0 if t_free <= p.supply_c else 0.0)
        return CoolingFlows(
            chiller_power_w=chiller_power,
            pump_power_w=pump,
            fan_power_w=fan,
            heat_rejected_w=heat_rejected,
            stored_energy_change_j=stored,
            supply_temp_c=loop["supply_temp_c"],
            return_temp_c=loop["return_temp_c"],
            free_cooling_fraction=free_frac,
            chiller_plr=chiller_heat / chiller_cap if chiller_cap > 0 else 0.0,
            chiller_cop=chiller_heat / chiller_power if chiller_power > 0 else 0.0,
        )

    def state(self) -> dict:
        s = {"return_temp_c": self.return_temp_c}
        if self.air is not None:
            s["air_return_temp_c"] = self.air.return_temp_c
        return s

    def config(self) -> dict:
        return {"model": self.name, "design_it_power_w": self.design_it_power_w, **asdict(self.params),
                "time_constant_s": self.time_constant_s}


# ----------------------------------------------------------------------------- factory

_MODELS = MappingProxyType({
    "paper_eq4": (PaperEq4Params, PaperEq4Plant),
    "air_chiller": (AirChillerParams, AirChillerPlant),
    "dlc_warm_water": (DlcWarmWaterParams, DlcWarmWaterPlant),
})


def make_cooling_model(name: str, params: dict, design_it_power_w: float) -> CoolingModel:
    """Build a named cooling model from a flat parameter dict (missing keys take defaults).

    Raises ``ValueError`` for an unknown model or key, or a value out of range.
    """
    if name not in _MODELS:
        raise ValueError(f"cooling model {name!r}: expected one of {', '.join(repr(k) for k in _MODELS)}")
    params_cls, model_cls = _MODELS[name]
    known = {f.name for f in fields(params_cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"{name}.{unknown[0]}: unknown parameter; valid: {', '.join(sorted(known))}")
    return model_cls(params_cls(**params), design_it_power_w)


#: The plant classes with a ``step_values`` and their own ``step`` functions, as defined here.
_OWN_STEPS = MappingProxyType({cls: cls.step for cls in (PaperEq4Plant, AirChillerPlant, DlcWarmWaterPlant)})


def values_step(plant):
    """``plant.step_values`` (the flows as a tuple in :data:`FLOW_FIELDS` order), when a caller
    may use it in place of ``plant.step``: the plant is exactly one of this module's classes and
    its ``step`` is that class's own, replaced neither on the class nor on the instance (as a
    test injecting a leak does); None otherwise (use ``step``). Decided when called."""
    cls = type(plant)
    own = _OWN_STEPS.get(cls)
    if own is None or cls.step is not own or "step" in getattr(plant, "__dict__", ()):
        return None
    return plant.step_values
