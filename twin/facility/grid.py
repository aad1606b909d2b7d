"""Grid connection: the carbon-intensity signal the facility draws against."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np


class CarbonSignal:
    """Hourly carbon intensity, piecewise constant within each hour.

    Parameters
    ----------
    start : datetime
        Aware UTC time of simulation time 0.
    first_hour : datetime
        Aware UTC time of the first value (on the hour, at or before ``start``).
    values_g_per_kwh : array
        One value per hour from ``first_hour`` [gCO2eq/kWh].

    Asking outside the covered hours raises ``ValueError`` with the covered range
    (never a silent extrapolation).
    """

    def __init__(self, start: datetime, first_hour: datetime, values_g_per_kwh):
        self.values = np.asarray(values_g_per_kwh, dtype=float)
        if self.values.ndim != 1 or self.values.size == 0:
            raise ValueError("carbon intensity needs a non-empty 1-D series of hourly values")
        if np.any(~np.isfinite(self.values)) or np.any(self.values < 0):
            raise ValueError("carbon intensity values must be finite and >= 0 gCO2eq/kWh")
        self.first_hour = first_hour
        self.offset_s = (start - first_hour).total_seconds()
        if self.offset_s < 0:
            raise ValueError(f"carbon series starts at {first_hour.isoformat()}, after the run start {start.isoformat()}")

    def covered(self) -> tuple[datetime, datetime]:
        return self.first_hour, self.first_hour + timedelta(hours=int(self.values.size))

    def at(self, t_s: float) -> float:
        """Carbon intensity at simulation time ``t_s`` [gCO2eq/kWh]."""
        i = math.floor((self.offset_s + t_s) / 3600.0)
        if not 0 <= i < self.values.size:
            lo, hi = self.covered()
            raise ValueError(f"carbon intensity asked for t={t_s:g} s, outside the covered range "
                             f"{lo.isoformat()} to {hi.isoformat()}")
        return float(self.values[i])
