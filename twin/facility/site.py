"""The site: composes fleet, cooling, weather and grid, and closes each tick's energy.

One tick is the interval [t0, t1). IT energy over it is exact (the fleet's closed-form
counters); the cooling plant answers for the tick's mean IT power at the weather of
the tick's midpoint; carbon is facility energy times the intensity of the hour the
midpoint falls in (a tick never spans an hour boundary: the base tick divides an hour).
"""

from __future__ import annotations

from twin.facility.cooling import CoolingPlant
from twin.facility.gpu_fleet import GpuFleet
from twin.facility.grid import CarbonSignal
from twin.facility.weather import DiurnalWeather

J_PER_KWH = 3.6e6


class Site:
    """Facility-level energy per tick. Columns of :meth:`close_tick` rows: :data:`COLUMNS`."""

    COLUMNS = (
        "it_power_w", "gpu_power_w", "host_power_w", "facility_power_w",
        "chiller_power_w", "pump_power_w", "fan_power_w", "misc_power_w",
        "pue", "free_cooling_fraction", "dry_bulb_c", "wet_bulb_c",
        "carbon_intensity_g_per_kwh", "co2_g",
    )

    def __init__(self, fleet: GpuFleet, cooling: CoolingPlant, weather: DiurnalWeather, carbon: CarbonSignal):
        self.fleet = fleet
        self.cooling = cooling
        self.weather = weather
        self.carbon = carbon
        self._t_s = fleet.t_s
        self._gpu_e_j = fleet.gpu_energy_total_j
        self._host_e_j = fleet.host_energy_total_j

    def open_at(self, t_s: float) -> None:
        """Start accounting at ``t_s`` (energy before it is not counted)."""
        self.fleet.advance_to(t_s)
        self._t_s = t_s
        self._gpu_e_j = self.fleet.gpu_energy_total_j
        self._host_e_j = self.fleet.host_energy_total_j

    def close_tick(self, t1_s: float) -> tuple[float, ...]:
        """Advance to ``t1_s`` and return the row for [previous close, t1_s) (see COLUMNS)."""
        t0_s = self._t_s
        dt = t1_s - t0_s
        if not dt > 0:
            raise ValueError(f"tick must have positive length: from {t0_s} s to {t1_s} s")
        fleet = self.fleet
        fleet.advance_to(t1_s)
        gpu_w = (fleet.gpu_energy_total_j - self._gpu_e_j) / dt
        host_w = (fleet.host_energy_total_j - self._host_e_j) / dt
        self._t_s, self._gpu_e_j, self._host_e_j = t1_s, fleet.gpu_energy_total_j, fleet.host_energy_total_j
        it_w = gpu_w + host_w
        t_mid = t0_s + 0.5 * dt
        db, wb = self.weather.temperatures_c(t_mid)
        c = self.cooling.power(it_w, db, wb)
        fac_w = float(c["facility_power_w"])
        ci = self.carbon.at(t_mid)
        co2_g = fac_w * dt / J_PER_KWH * ci
        return (
            it_w, gpu_w, host_w, fac_w,
            float(c["chiller_power_w"]), float(c["pump_power_w"]), float(c["fan_power_w"]),
            float(c["misc_power_w"]), fac_w / it_w if it_w > 0 else float("nan"),
            float(c["free_cooling_fraction"]), db, wb, ci, co2_g,
        )
