"""A simple diurnal ambient-temperature model (until the cooling issue brings weather files).

Dry-bulb and wet-bulb each follow a cosine over the day, peaking at the same UTC hour:

``T(h) = mean + (range / 2) * cos(2 pi (h - peak_hour) / 24)``

where ``range`` is the mean daily max - min (REFERENCE.md §8.2.2 lists these per site
and season). Pure and vectorised.
"""

from __future__ import annotations

import numpy as np

SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24.0


def diurnal_temperature_c(utc_hour, mean_c, range_k, peak_hour_utc):
    """Temperature on a cosine diurnal cycle [°C].

    Parameters
    ----------
    utc_hour : float or array
        Hour of the day in UTC, any real number (wraps every 24 h) [h].
    mean_c : float
        Daily mean [°C].
    range_k : float
        Daily max minus min [K], >= 0.
    peak_hour_utc : float
        UTC hour of the daily maximum [h].
    """
    phase = 2.0 * np.pi * (np.asarray(utc_hour, dtype=float) - peak_hour_utc) / HOURS_PER_DAY
    temp = mean_c + 0.5 * range_k * np.cos(phase)
    return temp if temp.ndim else float(temp)


def wet_bulb_never_exceeds_dry_bulb(db_mean_c, db_range_k, wb_mean_c, wb_range_k):
    """True when the wet-bulb cosine stays at or below the dry-bulb one all day.

    Both curves share the phase, so the gap ``db - wb`` is a cosine with mean
    ``db_mean - wb_mean`` and half-amplitude ``|db_range - wb_range| / 2``.
    """
    return (db_mean_c - wb_mean_c) >= 0.5 * abs(db_range_k - wb_range_k)
