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
    carbon_free_fraction : array, optional
        Carbon-free share of generation for the same hours [-] (for the CFE share);
        default: unknown (NaN).

    Asking outside the covered hours raises ``ValueError`` with the covered range
    (never a silent extrapolation).
    """

    def __init__(self, start: datetime, first_hour: datetime, values_g_per_kwh, carbon_free_fraction=None):
        self.values = np.asarray(values_g_per_kwh, dtype=float)
        cff = np.full(self.values.shape, np.nan) if carbon_free_fraction is None else \
            np.asarray(carbon_free_fraction, dtype=float)
        if cff.shape != self.values.shape:
            raise ValueError(f"carbon_free_fraction has {cff.size} hours, the intensity {self.values.size}")
        if np.any((cff < 0) | (cff > 1)):
            raise ValueError("carbon_free_fraction values must lie in [0, 1]")
        self.cff = cff
        if self.values.ndim != 1 or self.values.size == 0:
            raise ValueError("carbon intensity needs a non-empty 1-D series of hourly values")
        if np.any(~np.isfinite(self.values)) or np.any(self.values < 0):
            raise ValueError("carbon intensity values must be finite and >= 0 gCO2eq/kWh")
        self.first_hour = first_hour
        self.offset_s = (start - first_hour).total_seconds()
        self._values_list, self._cff_list = self.values.tolist(), self.cff.tolist()  # per-tick lookups
        if self.offset_s < 0:
            raise ValueError(f"carbon series starts at {first_hour.isoformat()}, after the run start {start.isoformat()}")

    def covered(self) -> tuple[datetime, datetime]:
        return self.first_hour, self.first_hour + timedelta(hours=int(self.values.size))

    def _hour(self, t_s: float) -> int:
        i = math.floor((self.offset_s + t_s) / 3600.0)
        if not 0 <= i < self.values.size:
            lo, hi = self.covered()
            raise ValueError(f"carbon intensity asked for t={t_s:g} s, outside the covered range "
                             f"{lo.isoformat()} to {hi.isoformat()}")
        return i

    def at(self, t_s: float) -> float:
        """Carbon intensity at simulation time ``t_s`` [gCO2eq/kWh]."""
        return self._values_list[self._hour(t_s)]

    def both_each(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`both_at` at each time of the 1-d array ``t_s`` [s] (the same hour index,
        ``floor((offset + t) / 3600)``, on arrays), for block stepping's rows."""
        i = np.floor((self.offset_s + t_s) / 3600.0).astype(np.int64)
        if i.size and not (i.min() >= 0 and i.max() < self.values.size):
            self._hour(float(t_s[np.flatnonzero((i < 0) | (i >= self.values.size))[0]]))  # raises, naming it
        return self.values[i], self.cff[i]

    def both_at(self, t_s: float) -> tuple[float, float]:
        """(carbon intensity [gCO2eq/kWh], carbon-free fraction [-]) at ``t_s``."""
        i = self._hour(t_s)
        return self._values_list[i], self._cff_list[i]
