"""District-heat loop: heat pump + fully mixed storage tank between the site and a heat network.

A thin stateful class over :mod:`twin.physics.heat` (equations and sources:
``docs/models.md``). Each :meth:`HeatLoop.step` takes one tick's inputs, held constant
over the tick, and returns a :class:`HeatFlows` whose terms close the loop's energy balance

``heat_recovered + heat_pump_power = heat_delivered + tank_stored_change / dt + tank_loss``

with every term computed by its own model (heat pump, network, tank), so the balance is a
check, not a definition (:meth:`HeatFlows.check_balance`).

Arrangement: the liquid-cooling return (``source_temp_c``) feeds the heat-pump evaporator;
the condenser heats network water to the supply setpoint (DCPI §6.3.2 b: 70-90 °C); surplus
lift charges the tank at ``setpoint + tank_charge_band_k``; the tank discharges through a
mixing valve at the setpoint when the heat pump alone cannot meet the demand (§6.3.2 c).
Heat the loop does not take stays with the site's cooling plant.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from twin.physics.heat import (
    CARNOT_EFFICIENCY,
    CONDENSER_APPROACH_K,
    EVAPORATOR_APPROACH_K,
    FLOW_SENSOR_MPE_COEFFICIENTS,
    WATER_CP_J_PER_KG_K,
    WATER_DENSITY_KG_PER_M3,
    heat_meter_mpe_pct,
    heat_pump_cop,
    heat_pump_output_from_source_w,
    heat_pump_power_w,
    heat_pump_source_heat_w,
    mixed_tank_power_to_reach_w,
    mixed_tank_step,
    water_heat_capacity_j_per_k,
)

SECONDS_PER_HOUR = 3600.0
# DCPI (seed 000) §6.3.2 a / b / d and §9.2.1 c.
DCPI_SUPPLY_RANGE_C = (70.0, 90.0)
DCPI_SUPPLY_TOLERANCE_K = 2.0
DCPI_METER_ACCURACY_PCT = 2.0
# DCPI §9.2.2: "minimum 60 % thermal energy recovery efficiency" (a "should").
DCPI_MIN_RECOVERY_EFFICIENCY = 0.60


class HeatBalanceError(ValueError):
    """The terms of a :class:`HeatFlows` do not close the loop's energy balance."""


@dataclass(frozen=True)
class HeatFlows:
    """One tick of the heat loop: tick means [W] and exact energies [J].

    Attributes
    ----------
    dt_s : float
        Tick length [s].
    demand_w : float
        Network heat demand at the supply setpoint [W].
    heat_recoverable_w : float
        Heat offered by the liquid-cooling return [W].
    heat_recovered_w : float
        Heat taken from the cooling loop by the evaporator [W] (<= recoverable).
    heat_pump_power_w : float
        Compressor electricity [W]; counts in facility power and PUE.
    heat_delivered_w : float
        Heat into the network, metered [W] (= demand - unmet).
    tank_stored_change_j : float
        Change of heat stored in the tank over the tick [J].
    tank_loss_w : float
        Mean standing loss of the tank to ambient [W].
    tank_temp_c : float
        Tank temperature at the end of the tick [°C].
    supply_setpoint_c : float
        Network supply setpoint [°C].
    supply_temp_c : float
        Mean supply temperature [°C]: the setpoint when demand is met; lower in
        proportion to the unmet share otherwise (flow fixed by the demand).
    cop : float
        Heat out of the condenser / compressor electricity over the tick [-]; NaN when off.
    meter_mpe_pct : float
        EN 1434 / MID maximum permissible error of the delivery meter at the operating point [%];
        NaN with no flow, or with supply - return below the meter's ``dθ_min`` (out of range).
    meter_requirement_pct : float
        DCPI §6.3.2 d / §9.2.1 c accuracy requirement [%].
    unmet_demand_w : float
        Demand not delivered [W].
    """

    dt_s: float
    demand_w: float
    heat_recoverable_w: float
    heat_recovered_w: float
    heat_pump_power_w: float
    heat_delivered_w: float
    tank_stored_change_j: float
    tank_loss_w: float
    tank_temp_c: float
    supply_setpoint_c: float
    supply_temp_c: float
    cop: float
    meter_mpe_pct: float
    meter_requirement_pct: float
    unmet_demand_w: float

    @property
    def energy_residual_w(self) -> float:
        """In minus out of the balance [W]; zero to rounding when the models agree."""
        return (self.heat_recovered_w + self.heat_pump_power_w
                - self.heat_delivered_w - self.tank_stored_change_j / self.dt_s - self.tank_loss_w)

    def check_balance(self, rtol: float = 1e-9) -> None:
        """Raise :class:`HeatBalanceError` if ``|residual| > rtol * largest term``."""
        scale = max(abs(self.heat_recovered_w), abs(self.heat_pump_power_w), abs(self.heat_delivered_w),
                    abs(self.tank_stored_change_j / self.dt_s), abs(self.tank_loss_w))
        if abs(self.energy_residual_w) > rtol * scale:
            raise HeatBalanceError(
                f"heat balance off by {self.energy_residual_w:.6g} W (tolerance {rtol * scale:.3g} W): "
                f"recovered {self.heat_recovered_w:.6g} + pump {self.heat_pump_power_w:.6g} != delivered "
                f"{self.heat_delivered_w:.6g} + stored {self.tank_stored_change_j / self.dt_s:.6g} "
                f"+ loss {self.tank_loss_w:.6g} W")

    @property
    def recovery_efficiency(self) -> float:
        """Heat delivered / heat recoverable over this tick [-]; NaN with nothing recoverable.

        Over a period use :func:`recovery_efficiency` on summed energies, not a mean of ticks.
        """
        return recovery_efficiency(self.heat_delivered_w, self.heat_recoverable_w)

    @property
    def meter_meets_requirement(self) -> bool:
        """Whether the meter's MPE is within the DCPI requirement (never, for any MID class)."""
        return bool(self.meter_mpe_pct <= self.meter_requirement_pct)


def recovery_efficiency(heat_delivered_j: float, heat_recoverable_j: float) -> float:
    """Heat delivered to the network / heat offered by the cooling loop, same period [-].

    Both are energies over the same period (or mean powers). The numerator includes the
    compressor's electricity, so the ratio can exceed 1 (at most ``COP / (COP - 1)``).
    DCPI §9.2.2 asks for >= 0.60 without defining the ratio; this is the definition used here.
    """
    return heat_delivered_j / heat_recoverable_j if heat_recoverable_j > 0 else math.nan


@dataclass(frozen=True)
class HeatLoopConfig:
    """Parameters of the heat loop (sources and assumptions: ``docs/models.md``).

    Attributes
    ----------
    heat_pump_capacity_w : float
        Largest condenser heat output [W], > 0.
    tank_volume_m3 : float
        Water volume of the storage tank [m³], > 0.
    tank_ua_w_per_k : float
        Tank loss coefficient to ambient [W/K], >= 0.
    meter_permanent_flow_m3_per_h : float
        Permanent flow ``q_p`` of the delivery heat meter [m³/h], > 0.
    supply_setpoint_c : float
        Network supply setpoint [°C], in 70-90 (DCPI §6.3.2 b); default 75 °C as Meta Odense
        (REFERENCE.md §3.3).
    return_temp_c : float
        Network return temperature [°C], below the setpoint; default 40 °C (3G return 40-60 °C,
        REFERENCE.md §3.2; Odense 35-40 °C, §3.3).
    tank_charge_band_k : float
        The tank stores heat between the setpoint and ``setpoint + band`` [K], > 0 (assumption).
    initial_tank_temp_c : float or None
        Tank temperature at the start [°C]; None: the setpoint (usable store empty).
    carnot_efficiency, evaporator_approach_k, condenser_approach_k : float
        Heat-pump COP model (:func:`twin.physics.heat.heat_pump_cop`).
    meter_class : {1, 2, 3}
        EN 1434 / MID accuracy class of the delivery meter; default 2.
    meter_delta_t_min_k : float
        The meter's ``dθ_min`` [K] (MID options 3, 5, 10 K).
    """

    heat_pump_capacity_w: float
    tank_volume_m3: float
    tank_ua_w_per_k: float
    meter_permanent_flow_m3_per_h: float
    supply_setpoint_c: float = 75.0
    return_temp_c: float = 40.0
    tank_charge_band_k: float = 10.0
    initial_tank_temp_c: float | None = None
    carnot_efficiency: float = CARNOT_EFFICIENCY
    evaporator_approach_k: float = EVAPORATOR_APPROACH_K
    condenser_approach_k: float = CONDENSER_APPROACH_K
    meter_class: int = 2
    meter_delta_t_min_k: float = 3.0

    def __post_init__(self):
        for name in ("heat_pump_capacity_w", "tank_volume_m3", "meter_permanent_flow_m3_per_h",
                     "tank_charge_band_k", "meter_delta_t_min_k"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} = {getattr(self, name)!r}: expected > 0")
        if not self.tank_ua_w_per_k >= 0:
            raise ValueError(f"tank_ua_w_per_k = {self.tank_ua_w_per_k!r}: expected >= 0 W/K")
        check_supply_setpoint_c(self.supply_setpoint_c)
        if not self.return_temp_c + self.meter_delta_t_min_k <= self.supply_setpoint_c:
            raise ValueError(f"return_temp_c = {self.return_temp_c!r}: expected <= supply_setpoint_c - "
                             f"meter_delta_t_min_k = {self.supply_setpoint_c - self.meter_delta_t_min_k!r} °C")
        if self.meter_class not in FLOW_SENSOR_MPE_COEFFICIENTS:
            raise ValueError(f"meter_class = {self.meter_class!r}: expected 1, 2 or 3")


def check_supply_setpoint_c(supply_setpoint_c: float) -> float:
    """Return the setpoint, or raise ``ValueError`` outside DCPI §6.3.2 b's 70-90 °C."""
    lo, hi = DCPI_SUPPLY_RANGE_C
    if not lo <= supply_setpoint_c <= hi:
        raise ValueError(f"supply_setpoint_c = {supply_setpoint_c!r}: expected {lo:g}-{hi:g} °C (DCPI §6.3.2 b)")
    return float(supply_setpoint_c)


class HeatLoop:
    """Heat pump lifting liquid-cooling heat to a district-heat network, with a mixed tank.

    Control per tick (greedy, no forecast): the heat pump first serves the network at the
    setpoint, limited by its capacity and by the recoverable heat; any shortfall comes from
    the tank down to the setpoint temperature; any spare capacity and source heat charges
    the tank towards ``setpoint + band`` (the charging share is lifted to that temperature, at
    its lower COP). What still cannot be met is ``unmet_demand_w`` and lowers the supply
    temperature (the network flow is the demand's flow at the setpoint).
    """

    def __init__(self, config: HeatLoopConfig):
        self._cfg = config
        self._tank_c_j_per_k = float(water_heat_capacity_j_per_k(config.tank_volume_m3))
        self.tank_temp_c = float(config.supply_setpoint_c if config.initial_tank_temp_c is None
                                 else config.initial_tank_temp_c)

    def config(self) -> dict:
        """The parameters as a plain dict."""
        return asdict(self._cfg)

    def state(self) -> dict:
        """``tank_temp_c`` [°C] and ``tank_heat_capacity_j_per_k`` [J/K]."""
        return {"tank_temp_c": self.tank_temp_c, "tank_heat_capacity_j_per_k": self._tank_c_j_per_k}

    def step(self, dt_s: float, *, recoverable_heat_w: float, source_temp_c: float, demand_w: float,
             ambient_c: float, supply_setpoint_c: float | None = None) -> HeatFlows:
        """Advance the loop by one tick with inputs held constant over it.

        Parameters
        ----------
        dt_s : float
            Tick length [s], > 0.
        recoverable_heat_w : float
            Heat the site's liquid-cooling return offers [W], >= 0.
        source_temp_c : float
            Temperature of that return water at the evaporator [°C].
        demand_w : float
            Network heat demand at the supply setpoint [W], >= 0 (for example from
            :func:`twin.physics.heat.district_heat_demand_w`).
        ambient_c : float
            Temperature around the tank [°C].
        supply_setpoint_c : float, optional
            This tick's setpoint [°C], 70-90 (for example from
            :func:`twin.physics.heat.outdoor_reset_supply_c`); default: the configured one.
        """
        cfg = self._cfg
        if not dt_s > 0:
            raise ValueError(f"dt_s = {dt_s!r}: expected > 0 s")
        if not recoverable_heat_w >= 0:
            raise ValueError(f"recoverable_heat_w = {recoverable_heat_w!r}: expected >= 0 W")
        if not demand_w >= 0:
            raise ValueError(f"demand_w = {demand_w!r}: expected >= 0 W")
        t_set = check_supply_setpoint_c(cfg.supply_setpoint_c if supply_setpoint_c is None else supply_setpoint_c)
        if not cfg.return_temp_c + cfg.meter_delta_t_min_k <= t_set:
            raise ValueError(f"supply_setpoint_c = {t_set!r}: expected >= return_temp_c + meter_delta_t_min_k")
        t_full = t_set + cfg.tank_charge_band_k
        hp = dict(carnot_efficiency=cfg.carnot_efficiency, evaporator_approach_k=cfg.evaporator_approach_k,
                  condenser_approach_k=cfg.condenser_approach_k)
        cop_set = heat_pump_cop(source_temp_c, t_set, **hp)
        cop_full = heat_pump_cop(source_temp_c, t_full, **hp)
        tank = (ambient_c, dt_s, self._tank_c_j_per_k, cfg.tank_ua_w_per_k)

        # 1. Heat pump to the network at the setpoint.
        out_net_w = min(demand_w, cfg.heat_pump_capacity_w, heat_pump_output_from_source_w(recoverable_heat_w, cop_set))
        source_net_w = heat_pump_source_heat_w(out_net_w, cop_set)
        shortfall_w = demand_w - out_net_w
        # 2. Tank: discharge down to the setpoint, or charge up to setpoint + band.
        discharge_w = 0.0
        out_charge_w = 0.0
        if shortfall_w > 0:
            discharge_max_w = max(0.0, -mixed_tank_power_to_reach_w(self.tank_temp_c, t_set, *tank))
            discharge_w = min(shortfall_w, discharge_max_w)
        else:
            charge_max_w = max(0.0, mixed_tank_power_to_reach_w(self.tank_temp_c, t_full, *tank))
            source_left_w = max(0.0, recoverable_heat_w - source_net_w)
            out_charge_w = min(charge_max_w, cfg.heat_pump_capacity_w - out_net_w,
                               heat_pump_output_from_source_w(source_left_w, cop_full))
        temp_end_c, stored_j, loss_j = mixed_tank_step(self.tank_temp_c, out_charge_w - discharge_w, *tank)
        self.tank_temp_c = temp_end_c

        # 3. Each term of the balance from its own model.
        power_w = heat_pump_power_w(out_net_w, cop_set) + heat_pump_power_w(out_charge_w, cop_full)
        recovered_w = source_net_w + heat_pump_source_heat_w(out_charge_w, cop_full)
        delivered_w = out_net_w + discharge_w
        unmet_w = max(0.0, demand_w - delivered_w)
        design_dt_k = t_set - cfg.return_temp_c
        if demand_w > 0:
            supply_c = cfg.return_temp_c + design_dt_k * delivered_w / demand_w
            flow_m3_per_h = demand_w / (WATER_DENSITY_KG_PER_M3 * WATER_CP_J_PER_KG_K * design_dt_k) * SECONDS_PER_HOUR
            meter_dt_k = supply_c - cfg.return_temp_c
            mpe = (heat_meter_mpe_pct(flow_m3_per_h, cfg.meter_permanent_flow_m3_per_h, meter_dt_k,
                                      cfg.meter_delta_t_min_k, cfg.meter_class)
                   if meter_dt_k >= cfg.meter_delta_t_min_k else math.nan)
        else:
            supply_c, mpe = t_set, math.nan
        return HeatFlows(
            dt_s=float(dt_s), demand_w=float(demand_w), heat_recoverable_w=float(recoverable_heat_w),
            heat_recovered_w=float(recovered_w), heat_pump_power_w=float(power_w),
            heat_delivered_w=float(delivered_w), tank_stored_change_j=float(stored_j),
            tank_loss_w=float(loss_j / dt_s), tank_temp_c=float(temp_end_c), supply_setpoint_c=t_set,
            supply_temp_c=float(supply_c),
            cop=float((out_net_w + out_charge_w) / power_w) if power_w > 0 else math.nan,
            meter_mpe_pct=float(mpe), meter_requirement_pct=DCPI_METER_ACCURACY_PCT, unmet_demand_w=float(unmet_w),
        )
