"""The site: composes fleet, cooling plant, weather and grid, and closes each tick's energy.

One tick is the interval [t0, t1). IT energy over it is exact (the fleet's closed-form
counters); the cooling plant is stepped over the tick with the tick's mean IT heat at
the weather of the tick's midpoint; carbon is facility energy times the intensity of
the hour the midpoint falls in (a tick never spans an hour boundary: the base tick
divides an hour). Every tick also books its energy terms in the
:class:`~twin.facility.balance.EnergyLedger`, each from the component that owns it.
"""

from __future__ import annotations

from twin.facility.balance import EnergyLedger
from twin.facility.cooling_plant import CoolingModel
from twin.facility.gpu_fleet import GpuFleet
from twin.facility.grid import CarbonSignal

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
    """

    COLUMNS = (
        "it_power_w", "gpu_power_w", "host_power_w", "facility_power_w",
        "chiller_power_w", "pump_power_w", "fan_power_w", "misc_power_w",
        "pue", "free_cooling_fraction", "dry_bulb_c", "wet_bulb_c",
        "coolant_supply_c", "coolant_return_c", "heat_rejected_w",
        "carbon_intensity_g_per_kwh", "co2_g",
    )

    def __init__(self, fleet: GpuFleet, cooling: CoolingModel, weather, carbon: CarbonSignal,
                 ledger: EnergyLedger | None = None):
        self.fleet = fleet
        self.cooling = cooling
        self.weather = weather
        self.carbon = carbon
        self.ledger = EnergyLedger() if ledger is None else ledger
        self._t_s = fleet.t_s
        self._gpu_e_j = fleet.gpu_energy_total_j
        self._host_e_j = fleet.host_energy_total_j

    def open_at(self, t_s: float) -> None:
        """Start accounting at ``t_s`` (energy before it is not counted).

        A cooling plant with thermal state (``settle``) is first brought to steady
        state at the fleet's load and the weather of ``t_s``.
        """
        self.fleet.advance_to(t_s)
        self._t_s = t_s
        self._gpu_e_j = self.fleet.gpu_energy_total_j
        self._host_e_j = self.fleet.host_energy_total_j
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
        gpu_j = fleet.gpu_energy_total_j - self._gpu_e_j
        host_j = fleet.host_energy_total_j - self._host_e_j
        self._t_s, self._gpu_e_j, self._host_e_j = t1_s, fleet.gpu_energy_total_j, fleet.host_energy_total_j
        it_w = (gpu_j + host_j) / dt
        db, wb = self.weather.temperatures_c(t0_s + 0.5 * dt)
        c = self.cooling.step(dt, it_w, db, wb)
        cooling_w = c.chiller_power_w + c.pump_power_w + c.fan_power_w
        fac_w = it_w + cooling_w + c.misc_power_w
        led = self.ledger
        led.add_in("it_electricity", gpu_j + host_j)
        led.add_in("cooling_electricity", cooling_w * dt)
        led.add_in("misc_electricity", c.misc_power_w * dt)
        led.add_out("heat_rejected", c.heat_rejected_w * dt)
        led.add_out("coolant_stored", c.stored_energy_change_j)
        led.add_out("misc_losses", c.misc_power_w * dt)
        ci = self.carbon.at(t0_s + 0.5 * dt)
        return (
            it_w, gpu_j / dt, host_j / dt, fac_w,
            c.chiller_power_w, c.pump_power_w, c.fan_power_w, c.misc_power_w,
            fac_w / it_w if it_w > 0 else float("nan"),
            c.free_cooling_fraction, db, wb, c.supply_temp_c, c.return_temp_c, c.heat_rejected_w,
            ci, fac_w * dt / J_PER_KWH * ci,
        )
