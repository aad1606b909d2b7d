"""Ambient weather as a function of simulation time (thin class over physics.weather)."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from twin.physics.weather import (SECONDS_PER_HOUR, SiteClimate, climate_temperatures_c, diurnal_temperature_c,
                                  monthly_interp)


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

    def temperatures_each(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dry-bulb, wet-bulb) [°C] at each time of the 1-d array ``t_s`` [s]: the one-tick
        values of :meth:`temperatures_c`, time by time (block stepping's rows)."""
        pairs = [self.temperatures_c(t) for t in t_s.tolist()]
        return np.array([p[0] for p in pairs], dtype=float), np.array([p[1] for p in pairs], dtype=float)

    def daily_mean_dry_bulb_c(self, t_s) -> float:
        """Daily mean dry-bulb of the day ``t_s`` falls in [°C] (the same every day)."""
        return float(self.db[0])

    def annual_heating_degree_days_k_day(self, base_c: float) -> float:
        """Sum over a 365-day year of max(base - daily mean, 0) [K·d]."""
        return 365.0 * max(base_c - self.db[0], 0.0)


class ClimateWeather:
    """A site's typical-year climatology with a diurnal cycle, as hourly values.

    Hourly dry-bulb and wet-bulb are computed once for the run (vectorised,
    :func:`twin.physics.weather.climate_temperatures_c`) and interpolated linearly
    within the hour, as hourly weather files are used.

    Parameters
    ----------
    start : datetime
        Aware UTC time of simulation time 0.
    duration_s : float
        Length of the run [s]; values are prepared from the hour before ``start`` to
        the hour after the end.
    climate : SiteClimate
        Monthly tables of the site.
    peak_hour_utc, depression_swing_fraction : float
        See :func:`twin.physics.weather.climate_temperatures_c`.
    """

    def __init__(self, start: datetime, duration_s: float, climate: SiteClimate, *, peak_hour_utc: float = 14.0,
                 depression_swing_fraction: float = 0.8):
        self.climate = climate
        first = start.replace(minute=0, second=0, microsecond=0)
        self.offset_s = (start - first).total_seconds()
        hours = int(np.ceil((self.offset_s + duration_s) / SECONDS_PER_HOUR)) + 2
        h = np.arange(hours, dtype=float)
        year_start = first.replace(month=1, day=1, hour=0)
        doy0 = (first - year_start).total_seconds() / 86400.0
        doy = doy0 + h / 24.0
        utc_hour = first.hour + h
        self.hourly_db_c, self.hourly_wb_c = climate_temperatures_c(
            doy, utc_hour, climate, peak_hour_utc, depression_swing_fraction)
        self._span_s = (hours - 1) * SECONDS_PER_HOUR
        self._db_list, self._wb_list = self.hourly_db_c.tolist(), self.hourly_wb_c.tolist()
        # per-tick path: hour i's (dry-bulb, its rise to hour i + 1, wet-bulb, its rise) [°C, K]
        db, wb = self._db_list, self._wb_list
        self._hour_segments = [(db[i], db[i + 1] - db[i], wb[i], wb[i + 1] - wb[i]) for i in range(len(db) - 1)]
        self._last_segment = len(db) - 2
        self._segment_arrays = np.array(self._hour_segments, dtype=float).T  # (4, hours - 1): the same numbers
        self._doy0_s = (start - year_start.replace(hour=0)).total_seconds()  # start's offset in its year

    def temperatures_c(self, t_s):
        """(dry-bulb, wet-bulb) at simulation time ``t_s`` [s] (scalar or array) [°C]."""
        if t_s.__class__ is float or isinstance(t_s, (float, int)):  # one tick: plain floats, no numpy
            x = t_s + self.offset_s
            if x < 0 or x > self._span_s:
                raise ValueError(f"weather asked for t={t_s} s, outside the prepared range "
                                 f"[{-self.offset_s:g}, {self._span_s - self.offset_s:g}] s")
            xf = x / SECONDS_PER_HOUR
            i = int(xf)
            if i > self._last_segment:  # noqa: PLR1730 (a compare is cheaper than min())
                i = self._last_segment
            db0, db_rise, wb0, wb_rise = self._hour_segments[i]
            f = xf - i
            return (db0 + f * db_rise, wb0 + f * wb_rise)
        x = (np.asarray(t_s, dtype=float) + self.offset_s)
        if np.any(x < 0) or np.any(x > self._span_s):
            raise ValueError(f"weather asked for t={t_s} s, outside the prepared range "
                             f"[{-self.offset_s:g}, {self._span_s - self.offset_s:g}] s")
        if x.ndim == 0:
            xf = float(x) / SECONDS_PER_HOUR
            i = min(int(xf), self.hourly_db_c.size - 2)
            f = xf - i
            db, wb = self.hourly_db_c, self.hourly_wb_c
            return (db[i] + f * (db[i + 1] - db[i]), wb[i] + f * (wb[i + 1] - wb[i]))
        grid = np.arange(self.hourly_db_c.size) * SECONDS_PER_HOUR
        return np.interp(x, grid, self.hourly_db_c), np.interp(x, grid, self.hourly_wb_c)

    def temperatures_each(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dry-bulb, wet-bulb) [°C] at each time of the 1-d array ``t_s`` [s]: the one-tick
        path of :meth:`temperatures_c` on arrays (+, /, truncation, *, the same hour
        segments: the same numbers, bit for bit), for block stepping's rows."""
        x = t_s + self.offset_s
        if x.size and not (x.min() >= 0 and x.max() <= self._span_s):
            bad = float(t_s[np.flatnonzero(~((x >= 0) & (x <= self._span_s)))[0]])
            raise ValueError(f"weather asked for t={bad} s, outside the prepared range "
                             f"[{-self.offset_s:g}, {self._span_s - self.offset_s:g}] s")
        xf = x / SECONDS_PER_HOUR
        i = np.minimum(xf.astype(np.int64), self._last_segment)  # int() of x >= 0: truncation
        f = xf - i
        db0, db_rise, wb0, wb_rise = self._segment_arrays[:, i]
        return db0 + f * db_rise, wb0 + f * wb_rise

    def daily_mean_dry_bulb_c(self, t_s) -> float:
        """Daily mean dry-bulb at ``t_s`` [°C]: the monthly climatology interpolated to the day."""
        doy = (self._doy0_s + float(t_s)) / 86400.0
        return float(monthly_interp(doy, self.climate.dry_bulb_c))

    def annual_heating_degree_days_k_day(self, base_c: float) -> float:
        """Sum over the 365 days of the typical year of max(base - daily mean, 0) [K·d]."""
        days = np.arange(365) + 0.5
        return float(np.maximum(base_c - monthly_interp(days, self.climate.dry_bulb_c), 0.0).sum())
