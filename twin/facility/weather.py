"""Ambient weather as a function of simulation time (thin class over physics.weather)."""

from __future__ import annotations

from datetime import datetime

from twin.physics.weather import SECONDS_PER_HOUR, diurnal_temperature_c


class DiurnalWeather:
    """Dry-bulb and wet-bulb on cosine diurnal cycles.

    Parameters
    ----------
    start : datetime
        Aware UTC time of simulation time 0.
    dry_bulb_mean_c, dry_bulb_range_k, wet_bulb_mean_c, wet_bulb_range_k, peak_hour_utc
        See :func:`twin.physics.weather.diurnal_temperature_c` [°C, K, h].
    """

    def __init__(self, start: datetime, *, dry_bulb_mean_c: float, dry_bulb_range_k: float,
                 wet_bulb_mean_c: float, wet_bulb_range_k: float, peak_hour_utc: float):
        self.start_hour_utc = start.hour + start.minute / 60.0 + (start.second + start.microsecond * 1e-6) / 3600.0
        self.db = (dry_bulb_mean_c, dry_bulb_range_k, peak_hour_utc)
        self.wb = (wet_bulb_mean_c, wet_bulb_range_k, peak_hour_utc)

    def temperatures_c(self, t_s):
        """(dry-bulb, wet-bulb) at simulation time ``t_s`` [s] (scalar or array) [°C]."""
        hour = self.start_hour_utc + t_s / SECONDS_PER_HOUR
        return diurnal_temperature_c(hour, *self.db), diurnal_temperature_c(hour, *self.wb)
