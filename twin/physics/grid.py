"""Grid carbon intensity, carbon-free fraction and facility CFE share from a generation mix.

The intensity of a mix is the generation-weighted mean of lifecycle emission factors:

``CI = sum_j P_j F_j / sum_j P_j``                                   [gCO2eq/kWh]

``cff = sum_{j carbon-free} P_j / sum_j P_j``                          [-]

and a facility's Carbon-Free Energy share over hours ``h`` (hourly matching):

``CFE = sum_h E_h cff_h / sum_h E_h``                                  [-]

The factor table, the ENTSO-E PsrType mapping, the carbon-free rule and the handling
of storage and consumption columns are stated below and in ``docs/models.md``.
All functions are pure; arrays broadcast together. Only numpy is imported: a pandas
DataFrame (as entsoe-py's ``query_generation`` returns) is read through its
``columns`` and ``to_numpy()``.

References
----------
.. [1] S. Schlömer et al., "Annex III: Technology-specific cost and performance
   parameters", in IPCC AR5 WGIII (2014), Table A.III.2 (lifecycle medians).
   https://www.ipcc.ch/site/assets/uploads/2018/02/ipcc_wg3_ar5_annex-iii.pdf
.. [2] electricitymaps/electricitymaps-contrib ``config/defaults.yaml`` (lifecycle
   factors: oil 650 from UK POST, unknown 700) and ``parsers/ENTSOE.py``
   (``ENTSOE_PARAMETER_GROUPS``: B17 -> biomass, B08 -> coal, B13/B15/B20 -> unknown).
.. [3] EnergieID/entsoe-py ``entsoe/mappings.py`` (``PSRTYPE_MAPPINGS``) and
   ``entsoe/parsers.py`` (columns ``(type name, 'Actual Aggregated'|'Actual Consumption')``).
.. [4] Google, "Moving toward 24x7 Carbon-Free Energy at Google Data Centers:
   Progress and Insights" (2018): the hourly-matched CFE score.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping, NamedTuple

import numpy as np

__all__ = [
    "LIFECYCLE_G_PER_KWH",
    "FACTOR_SOURCES",
    "CARBON_FREE_MAX_G_PER_KWH",
    "CARBON_FREE_FUELS",
    "PSR_TYPE_NAMES",
    "PSR_TYPE_FUEL",
    "STORAGE_PSR_TYPES",
    "NETWORK_PSR_TYPES",
    "fuel_of",
    "generation_by_fuel_mw",
    "carbon_intensity_from_mix",
    "carbon_free_fraction_from_mix",
    "cfe_share",
    "MixConsistency",
    "ci_cff_consistency",
]

#: Lifecycle emission factor per fuel [gCO2eq/kWh]; IPCC AR5 medians [1] except oil
#: and unknown (Electricity Maps defaults [2]). Sources per fuel: FACTOR_SOURCES.
LIFECYCLE_G_PER_KWH: Mapping[str, float] = MappingProxyType({
    "coal": 820.0,           # AR5 coal, pulverised
    "gas": 490.0,            # AR5 gas, combined cycle
    "oil": 650.0,            # not in AR5: UK POST via Electricity Maps
    "biomass": 230.0,        # AR5 biomass, dedicated
    "geothermal": 38.0,      # AR5
    "hydro": 24.0,           # AR5 hydropower (range 1-2200)
    "nuclear": 12.0,         # AR5
    "solar": 48.0,           # AR5 solar PV, utility (rooftop 41)
    "wind_onshore": 11.0,    # AR5
    "wind_offshore": 12.0,   # AR5
    "unknown": 700.0,        # not in AR5: Electricity Maps "assume conventional"
})

FACTOR_SOURCES: Mapping[str, str] = MappingProxyType({
    "coal": "IPCC AR5 WGIII Annex III Table A.III.2, coal PC median",
    "gas": "IPCC AR5 WGIII Annex III Table A.III.2, gas CC median",
    "oil": "not in AR5; UK POST 2014 via electricitymaps-contrib config/defaults.yaml",
    "biomass": "IPCC AR5 WGIII Annex III Table A.III.2, biomass dedicated median",
    "geothermal": "IPCC AR5 WGIII Annex III Table A.III.2, median",
    "hydro": "IPCC AR5 WGIII Annex III Table A.III.2, hydropower median",
    "nuclear": "IPCC AR5 WGIII Annex III Table A.III.2, median",
    "solar": "IPCC AR5 WGIII Annex III Table A.III.2, PV utility median",
    "wind_onshore": "IPCC AR5 WGIII Annex III Table A.III.2, median",
    "wind_offshore": "IPCC AR5 WGIII Annex III Table A.III.2, median",
    "unknown": "not in AR5; electricitymaps-contrib config/defaults.yaml 'unknown'",
})

#: A fuel is carbon-free when its lifecycle median is at most this [gCO2eq/kWh].
#: With the table above: nuclear, hydro, wind, solar, geothermal (11-48 g); not
#: biomass (230), which emits CO2 at the stack (24/7 CFE accounting [4] counts
#: "no direct CO2"; Electricity Maps' "low-carbon" would include biomass).
CARBON_FREE_MAX_G_PER_KWH = 50.0
CARBON_FREE_FUELS = frozenset(f for f, v in LIFECYCLE_G_PER_KWH.items() if v <= CARBON_FREE_MAX_G_PER_KWH)

#: ENTSO-E PsrType code -> name as entsoe-py labels columns [3].
PSR_TYPE_NAMES: Mapping[str, str] = MappingProxyType({
    "B01": "Biomass",
    "B02": "Fossil Brown coal/Lignite",
    "B03": "Fossil Coal-derived gas",
    "B04": "Fossil Gas",
    "B05": "Fossil Hard coal",
    "B06": "Fossil Oil",
    "B07": "Fossil Oil shale",
    "B08": "Fossil Peat",
    "B09": "Geothermal",
    "B10": "Hydro Pumped Storage",
    "B11": "Hydro Run-of-river and pondage",
    "B12": "Hydro Water Reservoir",
    "B13": "Marine",
    "B14": "Nuclear",
    "B15": "Other renewable",
    "B16": "Solar",
    "B17": "Waste",
    "B18": "Wind Offshore",
    "B19": "Wind Onshore",
    "B20": "Other",
    "B21": "AC Link",
    "B22": "DC Link",
    "B23": "Substation",
    "B24": "Transformer",
    "B25": "Energy storage",
})

#: Storage: excluded from the mix in both directions (REFERENCE.md §5.2: its CI
#: follows the charging energy; it is not primary generation).
STORAGE_PSR_TYPES = frozenset({"B10", "B25"})
#: Network assets, not generation: naming one is an error.
NETWORK_PSR_TYPES = frozenset({"B21", "B22", "B23", "B24"})

#: PsrType -> fuel of LIFECYCLE_G_PER_KWH (None: storage, excluded). REFERENCE.md
#: §5.2 where it names a value; Electricity Maps' grouping [2] where §5.2 has none.
PSR_TYPE_FUEL: Mapping[str, str | None] = MappingProxyType({
    "B01": "biomass",
    "B02": "coal",           # AR5 has no lignite value: likely an underestimate
    "B03": "coal",           # §5.2 assumption (Electricity Maps groups it with gas)
    "B04": "gas",
    "B05": "coal",
    "B06": "oil",
    "B07": "oil",            # §5.2 "use oil 650" (Electricity Maps: coal)
    "B08": "coal",           # unsourced in §5.2; Electricity Maps: coal
    "B09": "geothermal",
    "B10": None,
    "B11": "hydro",
    "B12": "hydro",
    "B13": "unknown",        # no AR5 value extracted; Electricity Maps: unknown
    "B14": "nuclear",
    "B15": "unknown",        # unsourced in §5.2; Electricity Maps: unknown
    "B16": "solar",
    "B17": "biomass",        # unsourced in §5.2; Electricity Maps: biomass
    "B18": "wind_offshore",
    "B19": "wind_onshore",
    "B20": "unknown",
    "B25": None,
})

_AGGREGATED = "Actual Aggregated"
_CONSUMPTION = "Actual Consumption"
# entsoe-py before 0.6.x spelled B11 "poundage".
_NAME_TO_CODE = {name: code for code, name in PSR_TYPE_NAMES.items()}
_NAME_TO_CODE["Hydro Run-of-river and poundage"] = "B11"


def fuel_of(key) -> str | None:
    """Fuel a generation column counts as, or ``None`` if it is left out of the mix.

    Parameters
    ----------
    key : str or tuple
        A PsrType code (``"B04"``), an entsoe-py type name (``"Fossil Gas"``), a fuel
        of :data:`LIFECYCLE_G_PER_KWH` (``"gas"``), or an entsoe-py MultiIndex column
        ``(type, "Actual Aggregated" | "Actual Consumption")``.

    Returns
    -------
    str or None
        ``None`` for storage (B10, B25: both directions) and for every
        ``"Actual Consumption"`` column (pumping, charging, plant own use): the mix
        is gross generation by type, consumption is excluded, never netted.

    Raises
    ------
    ValueError
        For an unknown key (named in the message), a network asset (B21-B24) or an
        unknown second-level label.
    """
    if isinstance(key, tuple):
        if len(key) != 2 or key[1] not in (_AGGREGATED, _CONSUMPTION):
            raise ValueError(f"generation column {key!r}: expected (PsrType, {_AGGREGATED!r} or {_CONSUMPTION!r})")
        fuel = fuel_of(key[0])  # validates the type even when the column is dropped
        return None if key[1] == _CONSUMPTION else fuel
    if not isinstance(key, str):
        raise ValueError(f"generation column {key!r}: expected a PsrType code, an ENTSO-E type name or a fuel")
    if key in LIFECYCLE_G_PER_KWH:
        return key
    code = _NAME_TO_CODE.get(key, key)
    if code in NETWORK_PSR_TYPES:
        raise ValueError(f"PsrType {key!r} ({PSR_TYPE_NAMES[code]}) is a network asset, not generation")
    if code not in PSR_TYPE_FUEL:
        raise ValueError(f"unknown PsrType {key!r}; allowed: codes B01-B20, B25, their ENTSO-E names, "
                         f"or fuels {sorted(LIFECYCLE_G_PER_KWH)}")
    return PSR_TYPE_FUEL[code]


def _columns(generation_mw):
    """(keys, 2-D float array [rows, columns]) from a mapping or a DataFrame."""
    if hasattr(generation_mw, "columns") and hasattr(generation_mw, "to_numpy"):
        keys = list(generation_mw.columns)
        if not keys:
            raise ValueError("generation_mw DataFrame has no columns")
        values = np.asarray(generation_mw.to_numpy(dtype=float), dtype=float)
        return keys, values.reshape(-1, len(keys))
    if not isinstance(generation_mw, Mapping) or not generation_mw:
        raise ValueError("generation_mw must be a non-empty mapping {PsrType or fuel: MW} or a DataFrame")
    keys = list(generation_mw)
    arrays = np.broadcast_arrays(*(np.asarray(generation_mw[k], dtype=float) for k in keys))
    return keys, np.stack(arrays, axis=-1)


def generation_by_fuel_mw(generation_mw, missing: str = "raise") -> dict[str, np.ndarray]:
    """Sum generation columns into fuels, dropping storage and consumption [MW].

    Parameters
    ----------
    generation_mw : mapping or DataFrame
        ``{key: MW}`` with keys as accepted by :func:`fuel_of` (values scalars or
        arrays that broadcast together), or a DataFrame with such columns, e.g.
        ``EntsoePandasClient.query_generation(...)`` (``nett=False``; with
        ``nett=True`` its columns are plain names and the values already netted).
    missing : {"raise", "zero"}
        NaN in a counted column: raise, or count it as 0 MW (a type not reported).

    Returns
    -------
    dict
        ``{fuel: array [MW]}`` for every fuel that has a counted column.

    Raises
    ------
    ValueError
        Unknown key; NaN with ``missing="raise"``; negative generation.
    """
    if missing not in ("raise", "zero"):
        raise ValueError(f"missing={missing!r}; allowed: 'raise', 'zero'")
    keys, values = _columns(generation_mw)
    out: dict[str, np.ndarray] = {}
    for j, key in enumerate(keys):
        fuel = fuel_of(key)
        if fuel is None:
            continue
        col = values[..., j]
        nan = np.isnan(col)
        if nan.any():
            if missing == "raise":
                raise ValueError(f"generation column {key!r} has {int(nan.sum())} NaN values; "
                                 "fill them or pass missing='zero'")
            col = np.where(nan, 0.0, col)
        if np.any(col < 0.0) or np.any(np.isinf(col)):
            raise ValueError(f"generation column {key!r} has negative or infinite values (min {np.min(col):g} MW)")
        out[fuel] = out[fuel] + col if fuel in out else col.copy()
    if not out:
        raise ValueError(f"no generation column left after dropping storage and consumption: {keys!r}")
    return out


def _weighted(by_fuel: dict[str, np.ndarray], weight: Mapping[str, float]):
    total = sum(by_fuel.values())
    if np.any(total <= 0.0):
        raise ValueError(f"total counted generation is 0 MW in {int(np.sum(total <= 0.0))} rows: "
                         "the mix is undefined there")
    weighted = sum(p * weight[f] for f, p in by_fuel.items())
    result = weighted / total
    return result if np.ndim(result) else float(result)


def carbon_intensity_from_mix(generation_mw, missing: str = "raise"):
    """Lifecycle carbon intensity of a generation mix [gCO2eq/kWh].

    ``CI = sum_j P_j F_j / sum_j P_j`` with ``F`` from :data:`LIFECYCLE_G_PER_KWH`
    through :data:`PSR_TYPE_FUEL`. Production-based: imports and exports are not
    traced; storage (B10, B25) and ``"Actual Consumption"`` columns are excluded.
    For sub-hourly data, average to the hour weighting by total generation.

    Parameters
    ----------
    generation_mw, missing
        See :func:`generation_by_fuel_mw`.

    Returns
    -------
    float or array
        One value per row (numpy array; for a DataFrame, in its row order).
    """
    return _weighted(generation_by_fuel_mw(generation_mw, missing), LIFECYCLE_G_PER_KWH)


def carbon_free_fraction_from_mix(generation_mw, missing: str = "raise"):
    """Share of counted generation from carbon-free fuels [-].

    Carbon-free: lifecycle median <= :data:`CARBON_FREE_MAX_G_PER_KWH` (50 g),
    i.e. :data:`CARBON_FREE_FUELS` = nuclear, hydro (B11, B12), wind (B18, B19),
    solar (B16), geothermal (B09). Not carbon-free: biomass and waste (B01, B17),
    fossil types and the unknown group (B13 marine, B15 other renewable, B20 other).
    Same exclusions as :func:`carbon_intensity_from_mix`.
    """
    weight = {f: (1.0 if f in CARBON_FREE_FUELS else 0.0) for f in LIFECYCLE_G_PER_KWH}
    return _weighted(generation_by_fuel_mw(generation_mw, missing), weight)


def cfe_share(facility_energy_j, carbon_free_fraction) -> float:
    """Carbon-Free Energy share of a facility's consumption, hourly matched [-].

    ``CFE = sum_h E_h cff_h / sum_h E_h``: each hour's grid energy counts as
    carbon-free in the proportion of that hour's grid mix, as the hourly (24/7)
    CFE score does [4] for grid supply without contracted clean energy. This is our
    precise reading of seed 004 §3.1's "fraction of energy aligned with low-CI
    windows"; the paper gives no formula.

    Parameters
    ----------
    facility_energy_j : array
        Facility energy drawn in each hour [J], >= 0, not all zero.
    carbon_free_fraction : array
        Carbon-free fraction of the grid in the same hours [-], in [0, 1].

    Returns
    -------
    float in [0, 1]
    """
    e = np.asarray(facility_energy_j, dtype=float)
    f = np.asarray(carbon_free_fraction, dtype=float)
    if e.shape != f.shape or e.ndim != 1:
        raise ValueError(f"facility_energy_j {e.shape} and carbon_free_fraction {f.shape} must be 1-D of equal length")
    if not np.all(np.isfinite(e)) or np.any(e < 0.0):
        raise ValueError("facility_energy_j must be finite and >= 0 J in every hour")
    if not np.all(np.isfinite(f)) or np.any((f < 0.0) | (f > 1.0)):
        raise ValueError(f"carbon_free_fraction must lie in [0, 1]; got min {np.nanmin(f):g}, max {np.nanmax(f):g}")
    total = e.sum()
    if total <= 0.0:
        raise ValueError("facility_energy_j sums to 0 J: the CFE share is undefined")
    return float(e @ f / total)


class MixConsistency(NamedTuple):
    """How well a carbon-free-fraction series explains a carbon-intensity series."""

    pearson_r: float                       # corr(CI, cff); NaN if either is constant
    implied_carbon_free_g_per_kwh: float   # a in CI ~ a cff + b (1 - cff); NaN if cff constant
    implied_emitting_g_per_kwh: float      # b, ditto
    rms_residual_g_per_kwh: float          # of that fit; NaN if cff constant
    fraction_outside_bounds: float         # hours where CI is impossible for that cff


def ci_cff_consistency(ci_g_per_kwh, carbon_free_fraction) -> MixConsistency:
    """Check whether a CI series and a carbon-free-fraction series describe one mix.

    If both come from the same mix and factor table, each hour obeys
    ``cff Fcf_min + (1 - cff) Fem_min <= CI <= cff Fcf_max + (1 - cff) Fem_max``
    where ``Fcf`` are the carbon-free factors (11-48 g) and ``Fem`` the emitting ones
    (230-820 g) of :data:`LIFECYCLE_G_PER_KWH`; and the least-squares fit
    ``CI ~ a cff + b (1 - cff)`` gives ``a`` near the carbon-free factors and ``b``
    among the emitting ones, with ``corr(CI, cff)`` strongly negative.

    Parameters
    ----------
    ci_g_per_kwh : array
        Carbon intensity [gCO2eq/kWh].
    carbon_free_fraction : array
        Carbon-free fraction, same length [-].
    """
    ci = np.asarray(ci_g_per_kwh, dtype=float)
    f = np.asarray(carbon_free_fraction, dtype=float)
    if ci.shape != f.shape or ci.ndim != 1 or ci.size < 3:
        raise ValueError(f"need two 1-D series of equal length >= 3; got {ci.shape} and {f.shape}")
    if not (np.all(np.isfinite(ci)) and np.all(np.isfinite(f))):
        raise ValueError("CI and carbon-free fraction must be finite")
    cf = [v for k, v in LIFECYCLE_G_PER_KWH.items() if k in CARBON_FREE_FUELS]
    em = [v for k, v in LIFECYCLE_G_PER_KWH.items() if k not in CARBON_FREE_FUELS]
    lo = f * min(cf) + (1.0 - f) * min(em)
    hi = f * max(cf) + (1.0 - f) * max(em)
    outside = float(np.mean((ci < lo) | (ci > hi)))
    if np.ptp(f) == 0.0:
        nan = float("nan")
        return MixConsistency(nan, nan, nan, nan, outside)
    design = np.column_stack([f, 1.0 - f])
    coef, *_ = np.linalg.lstsq(design, ci, rcond=None)
    resid = ci - design @ coef
    r = float(np.corrcoef(ci, f)[0, 1]) if np.ptp(ci) > 0.0 else float("nan")
    return MixConsistency(r, float(coef[0]), float(coef[1]), float(np.sqrt(np.mean(resid**2))), outside)
