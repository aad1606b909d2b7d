"""The site: composes fleet, cooling, heat recovery, battery, weather and grid, and
closes each tick's energy.

One tick is the interval [t0, t1). IT energy over it is exact (the fleet's closed-form
counters). In order, each tick:

1. the heat loop (if any) takes heat from the warm-water return at the temperature the
   coolant had at the end of the previous tick, to meet the district demand;
2. the cooling plant is stepped with the tick's mean IT heat (less what was recovered)
   at the weather of the tick's midpoint;
3. the battery (if any) gets its setpoint from the dispatcher for the site load of
   this tick and is stepped; grid import = site load + battery power;
4. carbon is grid import times the intensity of the hour the midpoint falls in (a tick
   never spans an hour boundary: the base tick divides an hour).

With an electrical distribution (``distribution``), its loss at the tick-mean IT power
(PSUs, PDUs, UPS, transformers; interpolated in a precomputed table) is drawn at the
meter (facility power, grid import, PUE and CO2 include it) and leaves as heat in the
electrical rooms, outside the modelled cooling plant (booked as a loss, like misc).

Every tick books its energy terms in the :class:`~twin.facility.balance.EnergyLedger`,
each from the component that owns it.
"""

from __future__ import annotations

import math
from itertools import repeat
from typing import Callable

import numpy as np

from twin.control.battery_dispatch import BatteryDispatcher
from twin.facility.balance import EnergyLedger
from twin.facility.battery import Battery
from twin.facility.cooling_plant import CoolingModel, PaperEq4Plant, values_step
from twin.facility.distribution import EvenSpreadLossCurve
from twin.facility.gpu_fleet import GpuFleet
from twin.facility.grid import CarbonSignal
from twin.facility.heat_loop import HeatLoop

J_PER_KWH = 3.6e6


class Site:
    """Facility-level energy per tick. Columns of :meth:`close_tick` rows: :data:`COLUMNS`.

    Parameters
    ----------
    fleet : GpuFleet
        GPUs and hosts (IT load; all IT electricity becomes heat in the cooling plant).
    cooling : CoolingModel
        The cooling plant (``twin.facility.cooling_plant``).
    weather : object with ``temperatures_c(t_s) -> (dry_bulb_c, wet_bulb_c)``
    carbon : CarbonSignal
    ledger : EnergyLedger, optional
        Where energy terms are booked (a fresh one by default).
    heat : HeatLoop, optional
        District-heat recovery; needs ``heat_demand_w`` and a cooling plant whose step
        takes ``recovered_heat_w`` and which has ``return_temp_c`` (dlc_warm_water).
    heat_demand_w : callable t_s -> W, optional
        Network heat demand at simulation time ``t_s``.
    recoverable_fraction : float
        Share of IT heat the heat pump can draw on (the liquid-cooled share) [-].
    battery : Battery, optional
    dispatcher : BatteryDispatcher, optional
        Required with ``battery``.
    fcr_d_fraction : callable t_s -> [0, 1], optional
        FCR-D upwards activation from the grid frequency (passed to the dispatcher).
    distribution : EvenSpreadLossCurve, optional
        Distribution loss, PF and THD vs total IT power; without it ``distribution_loss_w``
        is NaN and nothing else changes.
    """

    COLUMNS = (
        "it_power_w", "gpu_power_w", "host_power_w", "facility_power_w", "grid_power_w",
        "chiller_power_w", "pump_power_w", "fan_power_w", "misc_power_w", "heat_pump_power_w",
        "distribution_loss_w", "battery_power_w", "battery_soc",
        "pue", "free_cooling_fraction", "dry_bulb_c", "wet_bulb_c",
        "coolant_supply_c", "coolant_return_c", "heat_rejected_w",
        "heat_demand_w", "heat_delivered_w", "dh_supply_c", "heat_meter_mpe_pct",
        "carbon_intensity_g_per_kwh", "carbon_free_fraction", "co2_g",
    )

    def __init__(self, fleet: GpuFleet, cooling: CoolingModel, weather, carbon: CarbonSignal,
                 ledger: EnergyLedger | None = None, *, heat: HeatLoop | None = None,
                 heat_demand_w: Callable[[float], float] | None = None, recoverable_fraction: float = 1.0,
                 battery: Battery | None = None, dispatcher: BatteryDispatcher | None = None,
                 fcr_d_fraction: Callable[[float], float] | None = None,
                 distribution: EvenSpreadLossCurve | None = None):
        self.fleet = fleet
        self.cooling = cooling
        self.weather = weather
        self.carbon = carbon
        self.ledger = EnergyLedger() if ledger is None else ledger
        if heat is not None and (heat_demand_w is None or not hasattr(cooling, "return_temp_c")):
            raise ValueError("a heat loop needs heat_demand_w and a cooling plant with a warm-water return "
                             "(cooling.model = 'dlc_warm_water')")
        if not 0.0 <= recoverable_fraction <= 1.0:
            raise ValueError(f"recoverable_fraction = {recoverable_fraction!r}: expected in [0, 1]")
        if (battery is None) != (dispatcher is None):
            raise ValueError("battery and dispatcher go together")
        self.heat, self.heat_demand_w, self.recoverable_fraction = heat, heat_demand_w, recoverable_fraction
        self.battery, self.dispatcher, self.fcr_d_fraction = battery, dispatcher, fcr_d_fraction
        self.distribution = distribution
        # run totals that need more than column sums
        self.grid_carbon_free_j = 0.0  # sum over ticks of grid energy x carbon-free fraction
        self.heat_recoverable_j = 0.0
        self.heat_mpe_weighted_j = 0.0  # sum of MPE [%] x delivered energy, for the energy-weighted mean
        self.heat_metered_j = 0.0
        self.dh_supply_dev_max_k = 0.0
        self.heat_unmet_j = 0.0
        self.battery_throughput_j = 0.0
        self.battery_loss_j = 0.0
        self.dist_loss_j = 0.0  # distribution losses (PSUs included)
        self.dist_psu_loss_j = 0.0
        self.dist_meter_j = 0.0  # energy through the distribution's meter (IT + losses), the PF/THD weight
        self.dist_pf_weighted_j = 0.0
        self.dist_thd_weighted_j = 0.0
        self.dist_pf_min = math.inf
        self._t_s = fleet.t_s
        # the fleet's energy totals at the tick's start, as Python floats (see close_tick)
        self._gpu_e_j = float(fleet.gpu_energy_total_j)
        self._host_e_j = float(fleet.host_energy_total_j)
        # the plants of this package give their flows as a plain tuple (no CoolingFlows per tick);
        # decided here: the plant's step is not replaced after the site is built
        self._cooling_values = values_step(cooling)
        # block rows vectorised (_eq4_rows): the paper_eq4 plant's scalar path, no heat loop
        # or battery (their state steps tick by tick)
        self._eq4_block = (type(cooling) is PaperEq4Plant and self._cooling_values is not None
                           and heat is None and battery is None)

    def open_at(self, t_s: float) -> None:
        """Start accounting at ``t_s`` (energy before it is not counted).

        A cooling plant with thermal state (``settle``) is first brought to steady
        state at the fleet's load and the weather of ``t_s``.
        """
        self.fleet.advance_to(t_s)
        self._t_s = t_s
        self._gpu_e_j = float(self.fleet.gpu_energy_total_j)
        self._host_e_j = float(self.fleet.host_energy_total_j)
        settle = getattr(self.cooling, "settle", None)
        if settle is not None:
            db, wb = self.weather.temperatures_c(t_s)
            settle(self.fleet.it_power_now_w(), db, wb)

    def close_tick(self, t1_s: float) -> tuple[float, ...]:
        """Advance to ``t1_s`` and return the row for [previous close, t1_s) (see COLUMNS)."""
        t0_s = self._t_s
        dt = t1_s - t0_s
        if not dt > 0:
            raise ValueError(f"tick must have positive length: from {t0_s} s to {t1_s} s")
        fleet = self.fleet
        fleet.advance_to(t1_s)
        # the tick's arithmetic on Python floats: the clock (SimPy's now after a job event)
        # and the fleet's totals can be numpy float64 scalars, the same IEEE doubles with a
        # slower arithmetic; every value below is the same either way
        return self._close(t0_s, t1_s, float(dt), float(fleet.gpu_energy_total_j), float(fleet.host_energy_total_j))

    def close_block(self, times_s: list[float], gpu_total_j: list[float], host_total_j: list[float]) -> np.ndarray:
        """The rows :meth:`close_tick` returns for ticks ending at each of ``times_s``
        (increasing), given the fleet's cumulative GPU and host energy totals at those times
        (:meth:`GpuFleet.advance_block`, which has advanced the fleet already), as one float
        array: ticks x :data:`COLUMNS` (row i holds the numbers of ``close_tick``'s tuple)."""
        if self._eq4_block and len(times_s) > 1:
            rows = self._eq4_rows(times_s, gpu_total_j, host_total_j)
            if rows is not None:
                return rows
        rows = []
        for t1_s, g, h in zip(times_s, gpu_total_j, host_total_j):
            t0_s = self._t_s
            dt = t1_s - t0_s
            if not dt > 0:
                raise ValueError(f"tick must have positive length: from {t0_s} s to {t1_s} s")
            rows.append(self._close(t0_s, t1_s, float(dt), g, h))
        return np.array(rows, dtype=float).reshape(len(rows), len(self.COLUMNS))

    def _eq4_rows(self, times_s, gpu_total_j, host_total_j) -> np.ndarray | None:
        """:meth:`close_block`'s rows for the ``paper_eq4`` plant's scalar path without heat
        loop or battery, over the whole block at once: :meth:`_close`'s and
        ``PaperEq4Plant.step_values``' arithmetic on numpy arrays (+, -, *, / are the same
        IEEE operations elementwise), the affinity laws' powers, weather, carbon and the
        distribution curve per tick in Python as there, the ledger terms added tick by tick
        in order: the same numbers (``tests/test_block_stepping.py``), as a ticks x
        :data:`COLUMNS` array built from its columns. None (nothing
        changed) when a tick is outside the plant's scalar path; the caller then goes tick
        by tick (and the plant raises where it must)."""
        t = np.array([self._t_s, *times_s], dtype=float)
        g = np.array([self._gpu_e_j, *gpu_total_j], dtype=float)
        h = np.array([self._host_e_j, *host_total_j], dtype=float)
        t0 = t[:-1]
        dt, gpu_j, host_j = t[1:] - t0, g[1:] - g[:-1], h[1:] - h[:-1]
        it_w = (gpu_j + host_j) / dt
        t_mid = t0 + 0.5 * dt
        db, wb = self.weather.temperatures_each(t_mid)
        flows = self.cooling.step_arrays(dt, it_w, db, wb)
        if flows is None:
            return None
        p_chiller, pump, fan, rejected_w, f, misc_w = flows
        p_pump, p_fan = np.array(pump), np.array(fan)
        cooling_w = p_chiller + p_pump + p_fan
        site_w = it_w + cooling_w + misc_w + 0.0
        k = dt.size
        led = self.ledger
        dist = None
        if self.distribution is not None:
            dist = np.array([self._distribution_tick(w, d) for w, d in zip(it_w.tolist(), dt.tolist())])
            site_w = site_w + dist
        grid_w = site_w + 0.0
        misc_j = misc_w * dt
        led.add_in_each("it_electricity", (gpu_j + host_j).tolist())
        led.add_in_each("cooling_electricity", (cooling_w * dt).tolist())
        led.add_in_each("misc_electricity", misc_j.tolist())
        led.add_out_each("heat_rejected", (rejected_w * dt).tolist())
        led.add_out_each("coolant_stored", repeat(0.0, k))
        led.add_out_each("misc_losses", misc_j.tolist())
        ci, cff = self.carbon.both_each(t_mid)
        grid_j = grid_w * dt
        acc = self.grid_carbon_free_j
        for e in (grid_j * cff).tolist():
            acc += e
        self.grid_carbon_free_j = acc
        with np.errstate(divide="ignore", invalid="ignore"):
            pue = np.where(it_w > 0, site_w / it_w, math.nan)
        nan_k, zero_k = np.full(k, math.nan), np.zeros(k)
        rows = np.array((  # one column per entry, in COLUMNS' order; transposed to ticks x columns
            it_w, gpu_j / dt, host_j / dt, site_w, grid_w, p_chiller, p_pump, p_fan, np.full(k, misc_w), zero_k,
            nan_k if dist is None else dist, zero_k, nan_k,
            pue, f, db, wb, nan_k, nan_k, rejected_w,
            zero_k, zero_k, nan_k, nan_k,
            ci, cff, grid_j / J_PER_KWH * ci)).T
        self._t_s, self._gpu_e_j, self._host_e_j = times_s[-1], float(g[-1]), float(h[-1])
        return rows

    def _distribution_tick(self, it_w: float, dt: float) -> float:
        """Book one tick's distribution loss at IT power ``it_w`` [W] over ``dt`` [s] (ledger,
        loss, meter, PF and THD totals); returns the loss [W]."""
        dist_w, psu_w, pf, thd = self.distribution.at(it_w)
        self.ledger.add_in("distribution_electricity", dist_w * dt)
        self.ledger.add_out("distribution_losses", dist_w * dt)
        meter_j = (it_w + dist_w) * dt
        self.dist_loss_j += dist_w * dt
        self.dist_psu_loss_j += psu_w * dt
        self.dist_meter_j += meter_j
        self.dist_pf_weighted_j += pf * meter_j
        self.dist_thd_weighted_j += thd * meter_j
        self.dist_pf_min = min(self.dist_pf_min, pf)
        return dist_w

    def _close(self, t0_s, t1_s, dt: float, gpu_e_j: float, host_e_j: float) -> tuple[float, ...]:
        """The row of the tick [t0_s, t1_s) of length ``dt`` [s] given the fleet's cumulative
        GPU and host energy totals at ``t1_s`` [J] (Python floats)."""
        led = self.ledger
        gpu_j = gpu_e_j - self._gpu_e_j
        host_j = host_e_j - self._host_e_j
        self._t_s, self._gpu_e_j, self._host_e_j = t1_s, gpu_e_j, host_e_j
        it_w = (gpu_j + host_j) / dt
        t_mid = float(t0_s) + 0.5 * dt
        db, wb = self.weather.temperatures_c(t_mid)

        heat = self.heat
        if heat is None:
            hp_w = demand_w = delivered_w = 0.0
            dh_supply_c = mpe = math.nan
            values = self._cooling_values
            if values is not None:
                chiller_w, pump_w, fan_w, rejected_w, stored_j, supply_c, return_c, free_frac, _plr, _cop, \
                    misc_w = values(dt, it_w, db, wb)
            else:
                c = self.cooling.step(dt, it_w, db, wb)
                chiller_w, pump_w, fan_w, rejected_w, stored_j, supply_c, return_c, free_frac, misc_w = \
                    c.chiller_power_w, c.pump_power_w, c.fan_power_w, c.heat_rejected_w, c.stored_energy_change_j, \
                    c.supply_temp_c, c.return_temp_c, c.free_cooling_fraction, c.misc_power_w
        else:
            recoverable_w = self.recoverable_fraction * it_w
            demand_w = self.heat_demand_w(t_mid)
            h = heat.step(dt, recoverable_heat_w=recoverable_w, source_temp_c=self.cooling.return_temp_c,
                          demand_w=demand_w, ambient_c=db)
            values = self._cooling_values
            if values is not None:
                chiller_w, pump_w, fan_w, rejected_w, stored_j, supply_c, return_c, free_frac, _plr, _cop, \
                    misc_w = values(dt, it_w, db, wb, recovered_heat_w=h.heat_recovered_w)
            else:
                c = self.cooling.step(dt, it_w, db, wb, recovered_heat_w=h.heat_recovered_w)
                chiller_w, pump_w, fan_w, rejected_w, stored_j, supply_c, return_c, free_frac, misc_w = \
                    c.chiller_power_w, c.pump_power_w, c.fan_power_w, c.heat_rejected_w, c.stored_energy_change_j, \
                    c.supply_temp_c, c.return_temp_c, c.free_cooling_fraction, c.misc_power_w
            hp_w, delivered_w, dh_supply_c, mpe = h.heat_pump_power_w, h.heat_delivered_w, h.supply_temp_c, \
                h.meter_mpe_pct
            led.add_in("heat_pump_electricity", hp_w * dt)
            led.add_out("heat_delivered", delivered_w * dt)
            led.add_out("heat_tank_stored", h.tank_stored_change_j)
            led.add_out("heat_tank_losses", h.tank_loss_w * dt)
            self.heat_recoverable_j += recoverable_w * dt
            self.heat_unmet_j += h.unmet_demand_w * dt
            if delivered_w > 0 and math.isfinite(mpe):
                self.heat_mpe_weighted_j += mpe * delivered_w * dt
                self.heat_metered_j += delivered_w * dt
            if demand_w > 0:
                self.dh_supply_dev_max_k = max(self.dh_supply_dev_max_k, abs(h.supply_temp_c - h.supply_setpoint_c))
        cooling_w = chiller_w + pump_w + fan_w
        site_w = it_w + cooling_w + misc_w + hp_w
        dist_w = math.nan
        if self.distribution is not None:
            dist_w = self._distribution_tick(it_w, dt)
            site_w += dist_w

        battery_w, soc = 0.0, math.nan
        if self.battery is not None:
            bat = self.battery
            lo, hi = bat.feasible_range(dt)
            fcr = self.fcr_d_fraction(t_mid) if self.fcr_d_fraction is not None else 0.0
            bat.set_power(self.dispatcher.setpoint_w(t0_s, dt, site_w, bat.soc, lo, hi, fcr), dt)
            b = bat.step(dt)
            battery_w = (b.energy_in_j - b.energy_out_j) / dt
            self.dispatcher.achieved(site_w + battery_w)
            led.add_in("battery_net_charge", b.energy_in_j - b.energy_out_j)
            led.add_out("battery_stored", b.stored_change_j)
            led.add_out("battery_losses", b.loss_j)
            self.battery_throughput_j += b.energy_in_j + b.energy_out_j
            self.battery_loss_j += b.loss_j
            soc = b.soc
        grid_w = site_w + battery_w

        misc_j = misc_w * dt
        led.add_in("it_electricity", gpu_j + host_j)
        led.add_in("cooling_electricity", cooling_w * dt)
        led.add_in("misc_electricity", misc_j)
        led.add_out("heat_rejected", rejected_w * dt)
        led.add_out("coolant_stored", stored_j)
        led.add_out("misc_losses", misc_j)
        ci, cff = self.carbon.both_at(t_mid)
        grid_j = grid_w * dt
        self.grid_carbon_free_j += grid_j * cff
        return (
            it_w, gpu_j / dt, host_j / dt, site_w, grid_w,
            chiller_w, pump_w, fan_w, misc_w, hp_w,
            dist_w, battery_w, soc,
            site_w / it_w if it_w > 0 else math.nan,
            free_frac, db, wb, supply_c, return_c, rejected_w,
            demand_w, delivered_w, dh_supply_c, mpe,
            ci, cff, grid_j / J_PER_KWH * ci,
        )

    def close_run(self) -> None:
        """Book what the components still hold at the end (the battery's open ageing window)."""
        if self.battery is not None:
            b = self.battery.close_ageing_window()
            self.ledger.add_in("battery_net_charge", b.energy_in_j - b.energy_out_j)
            self.ledger.add_out("battery_stored", b.stored_change_j)
            self.ledger.add_out("battery_losses", b.loss_j)
            self.battery_loss_j += b.loss_j
