"""Hourly grid carbon intensity from ENTSO-E actual generation per type (A75).

Two halves (as pvlib ``iotools``): :func:`fetch_generation` and
:func:`get_carbon_intensity` touch the network; :func:`ci_from_generation` and
:func:`read_ci_cache` do not. The carbon intensity and carbon-free fraction come from
:func:`twin.physics.grid.carbon_intensity_from_mix` and
:func:`~twin.physics.grid.carbon_free_fraction_from_mix` (IPCC AR5 lifecycle
factors, storage and consumption excluded; docs/models.md §1): nothing here
restates a factor.

Countries and the ENTSO-E area each one is queried for (:data:`COUNTRY_ZONES`):

====  =========  =================  ============================================
code  area       EIC                why
====  =========  =================  ============================================
SE    ``SE``     10YSE-1--------K   Sweden as a whole (SvK control area), not a
                                    bidding zone SE1-SE4: see below.
CH    ``CH``     10YCH-SWISSGRIDZ   bidding zone = control area = country.
FR    ``FR``     10YFR-RTE------C   bidding zone = control area = country.
IT    ``IT``     10YIT-GRTN-----B   Italy control area (all bidding zones): see below.
DE    ``DE_LU``  10Y1001A1001A82H   the DE-LU bidding zone (since 2018-10-01), for
                                    which A75 is published; Luxembourg's own
                                    generation is small next to Germany's.
PL    ``PL``     10YPL-AREA-----S   bidding zone = control area = country.
====  =========  =================  ============================================

Why the whole of Sweden and Italy rather than one bidding zone (e.g. SE3, where a
Stockholm site would sit): the intensity here is production-based (imports and flows
between zones are not traced). Swedish zones are far from self-contained: all nuclear
is in SE3 and SE1/SE2 generate almost only hydro, exported south
(electricitymaps-contrib issue #1397), so a production-only SE3 value would describe
neither what SE3 generates for its own load nor what it consumes; the same holds for
the Italian zones. The country value is also what the shared ``entsoe_ci_2025`` files
and the Ember per-country figures of REFERENCE.md §5.3 describe, so the three can be
compared. Caveat for IT: in 2016-17 ENTSO-E published some Italian types (coal) only
per bidding zone (electricitymaps-contrib issue #72); the columns received are listed
in the metadata (``generation_columns``) so a missing fuel shows.

Sub-hourly MTUs (PT15M, PT30M; most zones report generation at 15 min) are averaged to
the hour per generation type (mean of the samples reported in that hour [MW]), before
the mix is formed: the hourly intensity is then generation-weighted, as
``carbon_intensity_from_mix`` asks.

The API token (:func:`resolve_token`): the ``token`` argument, else the environment
variable ``ENTSOE_API_TOKEN``, else the first line of the file
``$GRIDTWIN_CONFIG_DIR/entsoe_token`` (default ``~/.config/gridtwin/entsoe_token``).

The cache (:func:`get_carbon_intensity`): one parquet file per request,
``<cache_dir>/<country>_<start>_<end>.parquet`` (``2025-01-01`` at midnight UTC,
``2025-01-01T0600Z`` otherwise; end exclusive), default cache dir
``~/.cache/gridtwin/entsoe``; layout and provenance metadata as in
:mod:`traces.ci_file`. A cached file is returned as it is (``meta["from_cache"]``
says so, with ``fetched_at``); ENTSO-E revises recent data, so pass ``refresh=True``
(CLI ``--refresh``) to fetch again.

Endpoint, retries, time-out: entsoe-py sends ``GET`` to its module constant ``URL``,
read once at import from ``ENTSOE_ENDPOINT_URL`` (default
``https://web-api.tp.entsoe.eu/api``); the tests point it at a local server. It
retries only connection errors (``requests.ConnectionError``, DNS failure, remote
disconnect), ``retry_count`` attempts in all with ``retry_delay`` seconds between;
HTTP errors (401 bad token, 5xx) fail at once. entsoe-py sets no time-out by default;
we pass :data:`TIMEOUT_S`.

References
----------
.. [1] ENTSO-E Transparency Platform RESTful API guide, "Actual Generation per
   Production Type" (documentType A75, processType A16, in_Domain).
.. [2] EnergieID/entsoe-py 0.8: ``EntsoePandasClient.query_generation`` (monthly
   blocks, ``parse_generation``), ``decorators.retry``.
.. [3] electricitymaps/electricitymaps-contrib issues #1397 (Swedish zones) and #72
   (Italian types published per zone).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from traces.ci_file import read_ci_file, write_ci_parquet
from twin.physics.grid import carbon_free_fraction_from_mix, carbon_intensity_from_mix, fuel_of

__all__ = [
    "COUNTRY_ZONES",
    "TOKEN_ENV",
    "CONFIG_DIR_ENV",
    "RETRY_COUNT",
    "RETRY_DELAY_S",
    "TIMEOUT_S",
    "EntsoeError",
    "MissingTokenError",
    "EntsoeFetchError",
    "token_file",
    "resolve_token",
    "default_cache_dir",
    "cache_path",
    "fetch_generation",
    "ci_from_generation",
    "get_carbon_intensity",
    "read_ci_cache",
]

#: Country code -> entsoe-py ``Area`` name queried (see the module docstring).
COUNTRY_ZONES = MappingProxyType({
    "SE": "SE",
    "CH": "CH",
    "FR": "FR",
    "IT": "IT",
    "DE": "DE_LU",
    "PL": "PL",
})

TOKEN_ENV = "ENTSOE_API_TOKEN"
CONFIG_DIR_ENV = "GRIDTWIN_CONFIG_DIR"
TOKEN_FILE_NAME = "entsoe_token"
#: Attempts in all on a connection error, and seconds between them (entsoe-py's defaults).
RETRY_COUNT = 3
RETRY_DELAY_S = 10
#: Seconds to wait for the server per request (entsoe-py's default is no limit).
TIMEOUT_S = 60

_HOUR = pd.Timedelta(hours=1)


class EntsoeError(Exception):
    """Base of the errors of this module."""


class MissingTokenError(EntsoeError):
    """No ENTSO-E API token was given or configured."""


class EntsoeFetchError(EntsoeError):
    """The ENTSO-E request failed, or its answer cannot be used (message says which)."""


# ------------------------------------------------------------------ configuration


def token_file() -> Path:
    """``$GRIDTWIN_CONFIG_DIR/entsoe_token``, default ``~/.config/gridtwin/entsoe_token``."""
    base = os.environ.get(CONFIG_DIR_ENV)
    return (Path(base) if base else Path.home() / ".config" / "gridtwin") / TOKEN_FILE_NAME


def _how_to_get_token(path: Path) -> str:
    return (
        "To get one: register (free) on the ENTSO-E Transparency Platform, "
        "https://transparency.entsoe.eu/; then email transparency@entsoe.eu with 'Restful API "
        "access' in the subject and your account's e-mail address in the body; once granted, "
        "generate the token under 'My Account Settings' -> 'Web API Security Token'. Then set "
        f"the environment variable {TOKEN_ENV}=<token> or write the token to {path} "
        f"(directory overridable with {CONFIG_DIR_ENV}).")


def resolve_token(token: str | None = None) -> str:
    """The ENTSO-E API token: ``token``, else ``$ENTSOE_API_TOKEN``, else :func:`token_file`.

    Raises
    ------
    MissingTokenError
        None of the three holds a token; the message says how to get one.
    """
    if token is not None and token.strip():
        return token.strip()
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env
    path = token_file()
    if path.is_file():
        lines = path.read_text(encoding="utf-8").strip().splitlines()
        if lines and lines[0].strip():
            return lines[0].strip()
        raise MissingTokenError(f"no ENTSO-E API token: {path} is empty. {_how_to_get_token(path)}")
    raise MissingTokenError(f"no ENTSO-E API token: {TOKEN_ENV} is not set and {path} does not exist. "
                            f"{_how_to_get_token(path)}")


def default_cache_dir() -> Path:
    """``~/.cache/gridtwin/entsoe``."""
    return Path.home() / ".cache" / "gridtwin" / "entsoe"


def _zone_of(country: str) -> tuple[str, str]:
    """(normalised country code, entsoe-py area name) or ValueError naming the allowed codes."""
    code = country.strip().upper() if isinstance(country, str) else country
    if code not in COUNTRY_ZONES:
        raise ValueError(f"country={country!r} is not supported; allowed: {', '.join(COUNTRY_ZONES)} "
                         "(ENTSO-E areas: " + ", ".join(f"{c}->{z}" for c, z in COUNTRY_ZONES.items()) + ")")
    return code, COUNTRY_ZONES[code]


def _utc_hour(value, name: str) -> pd.Timestamp:
    """``value`` as a UTC Timestamp on the hour; naive times and dates are UTC."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}={value!r} is not a date or time (expected e.g. 2025-01-01 or "
                         f"2025-01-01T06:00Z; naive times are UTC): {exc}") from None
    if ts is pd.NaT:
        raise ValueError(f"{name}={value!r} is not a date or time")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if ts != ts.floor("h"):
        raise ValueError(f"{name}={ts.isoformat()} is not on the hour (the series is hourly)")
    return ts


def _range(start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    t0, t1 = _utc_hour(start, "start"), _utc_hour(end, "end")
    if t1 <= t0:
        raise ValueError(f"end {t1.isoformat()} is not after start {t0.isoformat()}")
    return t0, t1


def _stamp(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d") if ts == ts.floor("D") else ts.strftime("%Y-%m-%dT%H%MZ")


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%MZ")


def cache_path(country: str, start, end, cache_dir=None) -> Path:
    """``<cache_dir>/<country>_<start>_<end>.parquet`` (see the module docstring)."""
    code, _ = _zone_of(country)
    t0, t1 = _range(start, end)
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return base / f"{code}_{_stamp(t0)}_{_stamp(t1)}.parquet"


# ------------------------------------------------------------------ network half


def _redact(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


def fetch_generation(country: str, start, end, *, token: str, retry_count: int = RETRY_COUNT,
                     retry_delay_s: float = RETRY_DELAY_S, timeout_s: float = TIMEOUT_S) -> pd.DataFrame:
    """Actual generation per production type (A75) from the ENTSO-E API [MW].

    Parameters
    ----------
    country : str
        One of :data:`COUNTRY_ZONES` (case-insensitive); queried for its area.
    start, end : date, datetime, Timestamp or ISO string
        Period [start, end), on the hour; naive values are UTC.
    token : str
        ENTSO-E API security token (see :func:`resolve_token`).
    retry_count, retry_delay_s
        Attempts in all on a connection error (>= 1), and seconds between them.
    timeout_s : float
        Seconds to wait for each response.

    Returns
    -------
    DataFrame
        As ``EntsoePandasClient.query_generation(..., nett=False)``: a UTC
        DatetimeIndex at the reported MTU (15 or 60 min), rows in [start, end),
        one column per type (``"Fossil Gas"``) or per ``(type, "Actual Aggregated" |
        "Actual Consumption")`` when consumption is reported.

    Raises
    ------
    ValueError
        Bad country, times or retry settings (nothing is sent).
    EntsoeFetchError
        HTTP error (401: token refused), connection failure after the retries, no data,
        or an answer without generation time series. The token never appears in it.
    """
    code, zone = _zone_of(country)
    t0, t1 = _range(start, end)
    if isinstance(retry_count, bool) or not isinstance(retry_count, (int, np.integer)) or retry_count < 1:
        raise ValueError(f"retry_count={retry_count!r} must be an integer >= 1 (attempts in all)")
    if not retry_delay_s >= 0:
        raise ValueError(f"retry_delay_s={retry_delay_s!r} must be >= 0 s")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s={timeout_s!r} must be > 0 s")
    if not token:
        raise MissingTokenError("fetch_generation needs a token; see resolve_token()")
    try:
        import requests
        from entsoe import EntsoePandasClient
        from entsoe import exceptions as ee
    except ImportError as exc:  # pragma: no cover - entsoe-py is a core dependency
        raise ImportError("fetching ENTSO-E data needs entsoe-py: pip install 'entsoe-py>=0.6'") from exc

    what = f"ENTSO-E A75 generation for {code} ({zone}) {_iso(t0)} to {_iso(t1)}"
    client = EntsoePandasClient(api_key=token, retry_count=int(retry_count), retry_delay=retry_delay_s,
                                timeout=timeout_s)
    try:
        df = client.query_generation(zone, start=t0, end=t1, nett=False)
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        hint = " (the token was refused: check it)" if status in (401, 403) else ""
        raise EntsoeFetchError(f"{what}: HTTP error{hint}: {_redact(str(exc), token)}") from None
    except requests.RequestException as exc:
        raise EntsoeFetchError(f"{what}: request failed after {retry_count} attempt(s): "
                               f"{_redact(str(exc), token)}") from None
    except ee.NoMatchingDataError:
        raise EntsoeFetchError(f"{what}: ENTSO-E has no matching data for this period") from None
    except (ee.PaginationError, ee.InvalidBusinessParameterError, ee.InvalidPSRTypeError) as exc:
        raise EntsoeFetchError(f"{what}: request refused: {type(exc).__name__} {_redact(str(exc), token)}") from None
    except (AttributeError, KeyError, NotImplementedError, ValueError) as exc:
        raise EntsoeFetchError(f"{what}: could not parse the answer: {type(exc).__name__}: "
                               f"{_redact(str(exc), token)}") from None
    if isinstance(df, pd.Series):
        df = df.to_frame()
    if not isinstance(df, pd.DataFrame) or df.empty or not isinstance(df.index, pd.DatetimeIndex):
        raise EntsoeFetchError(f"{what}: the answer holds no generation time series")
    df = df.tz_convert("UTC")
    # query_generation truncates inclusively and concatenates monthly blocks: drop the
    # sample at `end` and the duplicated block boundaries.
    df = df[~df.index.duplicated(keep="first")].sort_index()
    df = df[(df.index >= t0) & (df.index < t1)]
    if df.empty:
        raise EntsoeFetchError(f"{what}: no generation reported inside the period")
    return df


# ------------------------------------------------------------------ parsing half


def _hourly_mw(generation) -> pd.DataFrame:
    if isinstance(generation, pd.Series):
        generation = generation.to_frame()
    if not isinstance(generation, pd.DataFrame) or generation.columns.empty:
        raise ValueError("generation must be a non-empty DataFrame of MW by type (as query_generation returns)")
    idx = generation.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None:
        raise ValueError("generation must have a time-zone-aware DatetimeIndex (query_generation returns one)")
    if len(idx) == 0:
        raise ValueError("generation has no rows")
    gen = generation.tz_convert("UTC").sort_index()
    hourly = gen.resample("1h").mean()  # per column, mean of the samples reported in the hour
    empty = hourly.isna().all(axis=1).to_numpy()
    if empty.any():
        first = hourly.index[int(np.argmax(empty))]
        raise ValueError(f"no generation reported in {int(empty.sum())} hours inside the period, first at "
                         f"{_iso(first)}: the series has a gap")
    return hourly


def _missing_hours(hourly: pd.DataFrame) -> int:
    counted = [c for c in hourly.columns if fuel_of(c) is not None]
    return int(hourly[counted].isna().any(axis=1).sum()) if counted else 0


def ci_from_generation(generation, missing: str = "raise") -> pd.DataFrame:
    """Hourly carbon intensity and carbon-free fraction of a generation frame.

    Parameters
    ----------
    generation : DataFrame
        MW by production type with an aware DatetimeIndex, as returned by
        :func:`fetch_generation` or ``entsoe.parsers.parse_generation``; MTUs of 15,
        30 or 60 min, mixed across columns.
    missing : {"raise", "zero"}
        An hour in which a type reports nothing while others do: raise, or count that
        type as 0 MW (passed to ``twin.physics.grid``).

    Returns
    -------
    DataFrame
        ``timestamp`` (UTC hour start), ``carbon_intensity_g_per_kwh`` [gCO2eq/kWh],
        ``carbon_free_fraction`` [-], from each type's hourly mean MW.

    Raises
    ------
    ValueError
        Naive index; an hour with no generation at all (a gap, named); NaN with
        ``missing="raise"``; unknown type; negative generation.
    """
    hourly = _hourly_mw(generation)
    return pd.DataFrame({
        "timestamp": hourly.index,
        "carbon_intensity_g_per_kwh": np.asarray(carbon_intensity_from_mix(hourly, missing), dtype=float),
        "carbon_free_fraction": np.asarray(carbon_free_fraction_from_mix(hourly, missing), dtype=float),
    })


def read_ci_cache(path) -> tuple[pd.DataFrame, dict]:
    """Read a cache file written by :func:`get_carbon_intensity`: ``(data, meta)``.

    ``data`` as :func:`traces.ci_file.read_ci_file`; ``meta`` the provenance stored in
    the file (country, zone, eic, start, end, source, factors, missing, fetched_at,
    generation_columns, ...) plus ``path`` and ``hours``.

    Raises
    ------
    ValueError
        The file is not in the gridtwin cache layout, or fails the checks of
        ``read_ci_file``.
    """
    data, meta = read_ci_file(path)
    if meta["format"] != "gridtwin_ci":
        raise ValueError(f"{path} is a {meta['format']} file, not a gridtwin ENTSO-E cache file; "
                         "read it with traces.ci_file.read_ci_file")
    return data, meta


# ------------------------------------------------------------------ both halves


def get_carbon_intensity(country: str, start, end, *, token: str | None = None, cache_dir=None,
                         refresh: bool = False, missing: str = "raise", retry_count: int = RETRY_COUNT,
                         retry_delay_s: float = RETRY_DELAY_S,
                         timeout_s: float = TIMEOUT_S) -> tuple[pd.DataFrame, dict]:
    """Hourly carbon intensity of ``country`` for [start, end), cached as parquet.

    Reads ``cache_path(country, start, end, cache_dir)`` if it exists (no token or
    network needed) unless ``refresh``; otherwise fetches A75 generation
    (:func:`fetch_generation`), converts it (:func:`ci_from_generation`), checks that
    every hour of [start, end) is present, writes the cache file and returns what
    :func:`read_ci_cache` reads back from it.

    Parameters
    ----------
    country, start, end
        As :func:`fetch_generation` (naive times are UTC).
    token : str, optional
        Default: :func:`resolve_token`.
    cache_dir : path, optional
        Default :func:`default_cache_dir` (``~/.cache/gridtwin/entsoe``).
    refresh : bool
        Fetch even if the cache file exists, and replace it.
    missing : {"raise", "zero"}
        See :func:`ci_from_generation`; recorded in the metadata.
    retry_count, retry_delay_s, timeout_s
        See :func:`fetch_generation`.

    Returns
    -------
    (data, meta)
        As :func:`read_ci_cache`, plus ``meta["from_cache"]`` and ``meta["cache_path"]``.

    Raises
    ------
    ValueError
        Bad country, times or ``missing``; a cache file for another request.
    MissingTokenError
        Nothing cached and no token.
    EntsoeFetchError
        The request failed, or its data leave hours of the period uncovered or
        cannot be converted (the first bad hour is named).
    """
    code, zone = _zone_of(country)
    t0, t1 = _range(start, end)
    if missing not in ("raise", "zero"):
        raise ValueError(f"missing={missing!r}; allowed: 'raise', 'zero'")
    path = cache_path(code, t0, t1, cache_dir)
    if path.exists() and not refresh:
        data, meta = read_ci_cache(path)
        if (meta.get("country"), meta.get("start"), meta.get("end")) != (code, _iso(t0), _iso(t1)):
            raise ValueError(f"cache file {path} holds {meta.get('country')} {meta.get('start')} to "
                             f"{meta.get('end')}, not {code} {_iso(t0)} to {_iso(t1)}: delete it or refresh")
        return data, {**meta, "from_cache": True, "cache_path": str(path)}

    token = resolve_token(token)
    generation = fetch_generation(code, t0, t1, token=token, retry_count=retry_count,
                                  retry_delay_s=retry_delay_s, timeout_s=timeout_s)
    what = f"ENTSO-E A75 generation for {code} ({zone}) {_iso(t0)} to {_iso(t1)}"
    try:
        hourly = _hourly_mw(generation)
        ci = ci_from_generation(generation, missing)
    except ValueError as exc:
        raise EntsoeFetchError(f"{what}: {exc}" + (" (CLI: --missing zero)" if "missing='zero'" in str(exc)
                                                   else "")) from None
    expected = pd.date_range(t0, t1, freq="1h", inclusive="left")
    got = pd.DatetimeIndex(ci["timestamp"])
    absent = expected.difference(got)
    if len(absent):
        raise EntsoeFetchError(f"{what}: {len(absent)} of {len(expected)} hours have no data, first "
                               f"{_iso(absent[0])} (data cover {_iso(got[0])} to {_iso(got[-1] + _HOUR)}); "
                               "ENTSO-E publishes with a delay: ask for an earlier end")
    from entsoe import Area, __version__ as entsoe_version

    meta = {
        "country": code,
        "zone": zone,
        "eic": Area[zone].code,
        "start": _iso(t0),
        "end": _iso(t1),
        "source": f"ENTSO-E Transparency Platform, A75 actual generation per production type "
                  f"(processType A16), via entsoe-py {entsoe_version}",
        "method": "hourly mean MW per type; CI and cff from twin.physics.grid (IPCC AR5 lifecycle "
                  "factors, storage and consumption excluded, carbon-free <= 50 g/kWh)",
        "missing": missing,
        "hours_with_missing_types": _missing_hours(hourly),
        "generation_columns": [str(c) for c in generation.columns],
        "fetched_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    write_ci_parquet(path, ci, meta)
    data, meta = read_ci_cache(path)
    return data, {**meta, "from_cache": False, "cache_path": str(path)}
