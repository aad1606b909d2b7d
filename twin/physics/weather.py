"""A simple diurnal ambient-temperature model (until the cooling issue brings weather files).

Dry-bulb and wet-bulb each follow a cosine over the day, peaking at the same UTC hour:

``T(h) = mean + (range / 2) * cos(2 pi (h - peak_hour) / 24)``

where ``range`` is the mean daily max - min (REFERENCE.md §8.2.2 lists these per site
and season). Pure and vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

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


# --- Climatology per site: monthly means + seasonal diurnal range -----------------------

@dataclass(frozen=True)
class SiteClimate:
    """Typical-year monthly climate of one site.

    Attributes
    ----------
    site : str
        Station name.
    dry_bulb_c, wet_bulb_c : tuple of 12 float
        Monthly mean dry-bulb and wet-bulb, January..December [°C].
    dtr_k : tuple of 12 float
        Mean daily dry-bulb range (max - min) per month [K].
    source : str
        Where the numbers come from.
    """

    site: str
    dry_bulb_c: tuple
    wet_bulb_c: tuple
    dtr_k: tuple
    source: str


def _seasonal(djf, mam, jja, son):
    """Expand four seasonal values to 12 months (Dec-Jan-Feb = DJF ...)."""
    return (djf, djf, mam, mam, mam, jja, jja, jja, son, son, son, djf)


# REFERENCE.md §8.2.1 (monthly DB / WB of typical-year EPW files, wet-bulb psychrometric
# via CoolProp) and §8.2.2 (seasonal mean daily range), both derived from primary datasets.
_REF_821 = "REFERENCE.md §8.2.1 monthly DB/WB and §8.2.2 seasonal DTR (typical-year EPW, derived)"
SITE_CLIMATES: dict[str, SiteClimate] = {
    "SE": SiteClimate(
        "Stockholm-Arlanda",
        (-3.6, -0.8, 0.3, 4.4, 11.7, 14.5, 17.0, 16.0, 11.3, 6.7, 1.6, -1.9),
        (-4.1, -2.0, -0.7, 1.7, 8.0, 10.9, 13.8, 12.8, 9.6, 5.6, 0.9, -2.5),
        _seasonal(4.9, 8.1, 7.9, 5.6), _REF_821),
    "CH": SiteClimate(
        "Zürich-Kloten",
        (0.6, 2.0, 5.6, 9.6, 14.6, 17.9, 19.0, 18.5, 14.0, 10.3, 4.7, 1.6),
        (-0.5, 0.5, 3.3, 6.7, 11.2, 14.3, 15.3, 15.2, 11.9, 8.7, 3.6, 0.6),
        _seasonal(6.4, 10.2, 10.5, 8.2), _REF_821),
    "FR": SiteClimate(
        "Paris-Orly",
        (3.9, 4.2, 7.0, 10.0, 14.3, 16.8, 19.4, 19.7, 15.7, 11.3, 6.4, 4.5),
        (3.3, 1.9, 5.0, 7.3, 10.7, 14.2, 15.0, 15.6, 13.2, 9.5, 5.6, 3.8),
        _seasonal(4.9, 8.3, 9.8, 7.2), _REF_821),
    "DE": SiteClimate(
        "Frankfurt am Main",
        (2.4, 1.7, 5.5, 9.2, 14.7, 16.4, 19.5, 18.6, 15.0, 10.7, 4.8, 1.7),
        (1.3, 0.3, 3.3, 6.4, 11.3, 13.0, 15.3, 14.7, 11.8, 9.1, 3.9, 0.8),
        _seasonal(4.7, 9.6, 10.0, 8.2), _REF_821),
    "PL": SiteClimate(
        "Warsaw-Okęcie",
        (-1.1, -1.8, 3.4, 8.3, 13.7, 16.9, 17.8, 17.7, 12.8, 8.8, 3.5, -0.2),
        (-1.8, -2.7, 1.9, 6.2, 10.4, 14.0, 14.5, 14.5, 10.8, 7.3, 2.7, -1.1),
        _seasonal(5.0, 9.8, 10.4, 7.7), _REF_821),
    # Bologna has no usable EPW (REFERENCE.md §8.2.5): dry-bulb and range from the rounded
    # monthly mean min/max of a secondary travel-site source quoted there (mean = (min+max)/2,
    # DTR = max-min); wet-bulb is unsourced: ASSUMED dry-bulb minus Frankfurt's monthly
    # wet-bulb depression (§8.2.1), a like-for-like continental climate.
    "IT": SiteClimate(
        "Bologna",
        (2.5, 5.0, 9.0, 12.5, 17.5, 21.5, 24.5, 24.0, 20.0, 14.5, 7.5, 3.5),
        (1.4, 3.6, 6.8, 9.7, 14.1, 18.1, 20.3, 20.1, 16.8, 12.9, 6.6, 2.6),
        (7.0, 8.0, 10.0, 11.0, 11.0, 11.0, 11.0, 12.0, 10.0, 9.0, 7.0, 7.0),
        "REFERENCE.md §8.2.5 (secondary, rounded) for dry-bulb and range; wet-bulb assumed "
        "(Frankfurt's monthly depression, §8.2.1)"),
}

# Mid-month positions as fractions of a 365-day year (day-of-year of the 15th/16th).
_MID_MONTH_DOY = np.array([15.5, 45.0, 74.5, 105.0, 135.5, 166.0, 196.5, 227.5, 258.0, 288.5, 319.0, 349.5])
DAYS_PER_YEAR = 365.0


def monthly_interp(day_of_year, monthly):
    """Periodic linear interpolation of 12 mid-month values to day of year [same unit].

    Parameters
    ----------
    day_of_year : float or array
        Days since 1 January 00:00 (0 <= x < 365; wraps) [d].
    monthly : sequence of 12 float
        Values for January..December, taken to hold at mid-month.
    """
    x = np.asarray(day_of_year, dtype=float) % DAYS_PER_YEAR
    xp = np.concatenate([_MID_MONTH_DOY - DAYS_PER_YEAR, _MID_MONTH_DOY, _MID_MONTH_DOY + DAYS_PER_YEAR])
    fp = np.tile(np.asarray(monthly, dtype=float), 3)
    out = np.interp(x, xp, fp)
    return out if out.ndim else float(out)


def climate_temperatures_c(day_of_year, utc_hour, climate: SiteClimate, peak_hour_utc=14.0,
                           depression_swing_fraction=0.8):
    """Dry-bulb and wet-bulb from a site's monthly climatology with a diurnal cycle [°C].

    ``T_db = DB_m(d) + DTR(d)/2 * cos(2 pi (h - peak)/24)``; the wet-bulb depression
    ``D = DB - WB`` swings around its monthly mean ``D_m`` in phase with the dry-bulb,
    ``D = D_m (1 + s cos(...))`` with ``s = depression_swing_fraction`` < 1, so the
    wet-bulb never exceeds the dry-bulb and the air is closest to saturation at dawn
    (an assumption that matches the usual diurnal humidity cycle). Daily means equal
    the monthly means (interpolated between mid-months).

    Parameters
    ----------
    day_of_year : float or array
        Days since 1 January 00:00 UTC [d].
    utc_hour : float or array
        Hour of day in UTC [h].
    climate : SiteClimate
        Monthly tables.
    peak_hour_utc : float
        Hour of the daily maximum [h] (assumption: 14 UTC ~ mid-afternoon in central Europe).
    depression_swing_fraction : float
        Relative diurnal swing of the wet-bulb depression [-], in [0, 1].

    Returns
    -------
    (dry_bulb_c, wet_bulb_c)
    """
    db_m = monthly_interp(day_of_year, climate.dry_bulb_c)
    dep_m = np.maximum(db_m - monthly_interp(day_of_year, climate.wet_bulb_c), 0.0)
    dtr = monthly_interp(day_of_year, climate.dtr_k)
    c = np.cos(2.0 * np.pi * (np.asarray(utc_hour, dtype=float) - peak_hour_utc) / HOURS_PER_DAY)
    db = db_m + 0.5 * dtr * c
    wb = db - dep_m * (1.0 + depression_swing_fraction * c)
    return db, wb
