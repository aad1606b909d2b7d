"""Carbon intensity, carbon-free fraction and CFE share from a generation mix
(twin/physics/grid.py), and the consistency of the shared ENTSO-E CI data.

Factors: IPCC AR5 WGIII Annex III medians (REFERENCE.md §5.1): coal 820, gas 490,
biomass 230, hydro 24, nuclear 12, solar 48, wind onshore 11, offshore 12 gCO2eq/kWh;
unknown 700 (Electricity Maps). Hand arithmetic beside each expected value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from traces.synthetic import shared_data_dir
from twin.physics.grid import (
    CARBON_FREE_FUELS,
    LIFECYCLE_G_PER_KWH,
    NETWORK_PSR_TYPES,
    PSR_TYPE_FUEL,
    PSR_TYPE_NAMES,
    carbon_free_fraction_from_mix,
    carbon_intensity_from_mix,
    cfe_share,
    ci_cff_consistency,
    fuel_of,
    generation_by_fuel_mw,
)

TOL = 1e-12

# ------------------------------------------------------------------ carbon intensity


def test_ci_half_coal_half_wind():
    # 0.5 * 820 + 0.5 * 11 = 410 + 5.5 = 415.5 gCO2eq/kWh
    assert carbon_intensity_from_mix({"B05": 100.0, "B19": 100.0}) == pytest.approx(415.5, abs=TOL)


def test_ci_vectorised_three_fuels():
    # row 0: (200*12 + 100*24 + 100*490) / 400 = (2400 + 2400 + 49000) / 400 = 134.5
    # row 1: (0*12 + 300*24 + 100*490) / 400 = (7200 + 49000) / 400 = 140.5
    mix = {"B14": np.array([200.0, 0.0]), "B12": np.array([100.0, 300.0]), "B04": np.array([100.0, 100.0])}
    np.testing.assert_allclose(carbon_intensity_from_mix(mix), [134.5, 140.5], rtol=0, atol=TOL)


def test_codes_names_and_fuels_are_equivalent():
    # 1/4 * 230 + 3/4 * 12 = 57.5 + 9 = 66.5
    for mix in ({"B01": 1.0, "B18": 3.0}, {"Biomass": 1.0, "Wind Offshore": 3.0}, {"biomass": 1.0, "wind_offshore": 3.0}):
        assert carbon_intensity_from_mix(mix) == pytest.approx(66.5, abs=TOL)


def test_same_fuel_columns_add():
    # B02 lignite and B05 hard coal are both coal: (1 + 1) * 820 + 2 * 12 over 4 = (1640 + 24) / 4 = 416
    assert carbon_intensity_from_mix({"B02": 1.0, "B05": 1.0, "B14": 2.0}) == pytest.approx(416.0, abs=TOL)


def test_unknown_psr_type_raises_naming_it():
    with pytest.raises(ValueError, match="B99"):
        carbon_intensity_from_mix({"B04": 1.0, "B99": 1.0})
    with pytest.raises(ValueError, match="Fossil Unicorn"):
        fuel_of("Fossil Unicorn")


@pytest.mark.parametrize("code", sorted(NETWORK_PSR_TYPES))
def test_network_assets_raise(code):
    with pytest.raises(ValueError, match=f"{code}.*network asset"):
        carbon_intensity_from_mix({"B04": 1.0, code: 1.0})


def test_entsoe_multiindex_frame_excludes_storage_and_consumption():
    # entsoe-py query_generation(nett=False) columns: (type name, metric).
    # Counted: hard coal 300 and wind onshore 100 (Actual Aggregated only).
    # Excluded: pumped storage generation 50 and consumption 80; wind own use 7.
    # row 0: (300*820 + 100*11) / 400 = (246000 + 1100) / 400 = 617.75
    # row 1: (100*820 + 300*11) / 400 = (82000 + 3300) / 400 = 213.25
    cols = pd.MultiIndex.from_tuples([
        ("Fossil Hard coal", "Actual Aggregated"),
        ("Wind Onshore", "Actual Aggregated"),
        ("Wind Onshore", "Actual Consumption"),
        ("Hydro Pumped Storage", "Actual Aggregated"),
        ("Hydro Pumped Storage", "Actual Consumption"),
    ])
    idx = pd.date_range("2025-01-01", periods=2, freq="h", tz="UTC")
    df = pd.DataFrame([[300.0, 100.0, 7.0, 50.0, 80.0], [100.0, 300.0, 7.0, 0.0, 0.0]], index=idx, columns=cols)
    np.testing.assert_allclose(carbon_intensity_from_mix(df), [617.75, 213.25], rtol=0, atol=TOL)
    # cff: wind is carbon-free, coal is not: 100/400 = 0.25, 300/400 = 0.75
    np.testing.assert_allclose(carbon_free_fraction_from_mix(df), [0.25, 0.75], rtol=0, atol=TOL)


def test_entsoe_frame_unknown_type_and_bad_metric_raise():
    bad = pd.DataFrame([[1.0, 1.0]], columns=pd.MultiIndex.from_tuples(
        [("Fossil Gas", "Actual Aggregated"), ("Moon Tidal", "Actual Aggregated")]))
    with pytest.raises(ValueError, match="Moon Tidal"):
        carbon_intensity_from_mix(bad)
    bad_metric = pd.DataFrame([[1.0]], columns=pd.MultiIndex.from_tuples([("Fossil Gas", "Forecast")]))
    with pytest.raises(ValueError, match="Forecast"):
        carbon_intensity_from_mix(bad_metric)


def test_entsoe_single_level_frame_and_old_spelling():
    # entsoe-py drops the metric level when only one is present; "poundage" is the
    # pre-0.6 spelling of B11. (1*24 + 1*490) / 2 = 257
    df = pd.DataFrame({"Hydro Run-of-river and poundage": [1.0], "Fossil Gas": [1.0]})
    assert carbon_intensity_from_mix(df) == pytest.approx([257.0], abs=TOL)


def test_nan_negative_and_empty_mix():
    with pytest.raises(ValueError, match="NaN"):
        carbon_intensity_from_mix({"B04": [1.0, np.nan], "B14": [1.0, 1.0]})
    # missing="zero": row 1 is all nuclear -> 12
    np.testing.assert_allclose(carbon_intensity_from_mix({"B04": [1.0, np.nan], "B14": [1.0, 1.0]}, missing="zero"),
                               [(490 + 12) / 2, 12.0], rtol=0, atol=TOL)
    with pytest.raises(ValueError, match="negative"):
        carbon_intensity_from_mix({"B04": -1.0, "B14": 2.0})
    with pytest.raises(ValueError, match="0 MW in 1 rows"):
        carbon_intensity_from_mix({"B04": [1.0, 0.0]})
    with pytest.raises(ValueError, match="no generation column left"):
        carbon_intensity_from_mix({"B10": 5.0})
    with pytest.raises(ValueError, match="missing"):
        carbon_intensity_from_mix({"B04": 1.0}, missing="drop")


def test_mapping_covers_b01_to_b20_and_matches_entsoe_py_names():
    codes = {f"B{i:02d}" for i in range(1, 26)}
    assert set(PSR_TYPE_FUEL) | NETWORK_PSR_TYPES == codes
    assert all(f is None or f in LIFECYCLE_G_PER_KWH for f in PSR_TYPE_FUEL.values())
    assert [c for c, f in PSR_TYPE_FUEL.items() if f is None] == ["B10", "B25"]
    mappings = pytest.importorskip("entsoe.mappings")
    for code, name in PSR_TYPE_NAMES.items():
        assert mappings.PSRTYPE_MAPPINGS.get(code, name) == name


def test_generation_by_fuel_sums_and_drops():
    out = generation_by_fuel_mw({"B11": 2.0, "B12": 3.0, "B10": 9.0, "gas": 1.0})
    assert out == {"hydro": 5.0, "gas": 1.0}


# ------------------------------------------------------------------ carbon-free fraction


def test_carbon_free_fuels_are_the_ar5_low_medians():
    # median <= 50 g: nuclear 12, hydro 24, wind 11/12, solar 48, geothermal 38
    assert CARBON_FREE_FUELS == {"nuclear", "hydro", "wind_onshore", "wind_offshore", "solar", "geothermal"}


def test_cff_hand_case():
    # 30 nuclear + 20 hydro carbon-free, 10 biomass + 40 gas not: 50 / 100 = 0.5
    mix = {"B14": 30.0, "B11": 20.0, "B01": 10.0, "B04": 40.0}
    assert carbon_free_fraction_from_mix(mix) == pytest.approx(0.5, abs=TOL)
    # waste (B17) and other renewable (B15) are not carbon-free; solar is: 1 / 3
    assert carbon_free_fraction_from_mix({"B17": 1.0, "B15": 1.0, "B16": 1.0}) == pytest.approx(1 / 3, abs=TOL)


# ------------------------------------------------------------------ CFE share


def test_cfe_share_hand_case():
    # (2 * 1.0 + 6 * 0.5) / (2 + 6) = 5 / 8 = 0.625
    assert cfe_share([2.0, 6.0], [1.0, 0.5]) == pytest.approx(0.625, abs=TOL)
    # constant cff: CFE equals it whatever the load shape
    assert cfe_share([3.6e9, 1.0e9, 7.2e9], [0.4, 0.4, 0.4]) == pytest.approx(0.4, abs=TOL)
    # shifting energy into the cleaner hour raises it: (0 + 8 * 1.0) / 8 = 1
    assert cfe_share([8.0, 0.0], [1.0, 0.5]) == pytest.approx(1.0, abs=TOL)


@pytest.mark.parametrize(("energy", "cff", "match"), [
    ([1.0, 2.0], [0.5], "equal length"),
    ([1.0, -2.0], [0.5, 0.5], ">= 0"),
    ([1.0, 2.0], [0.5, 1.2], r"\[0, 1\]"),
    ([0.0, 0.0], [0.5, 0.5], "undefined"),
])
def test_cfe_share_rejects(energy, cff, match):
    with pytest.raises(ValueError, match=match):
        cfe_share(energy, cff)


# ------------------------------------------------------------------ consistency check


def test_consistency_recovers_factors_of_a_two_fuel_mix():
    # CI = 12 f + 820 (1 - f) exactly when the mix is nuclear + coal
    f = np.linspace(0.05, 0.95, 50)
    ci = carbon_intensity_from_mix({"B14": f, "B05": 1.0 - f})
    m = ci_cff_consistency(ci, carbon_free_fraction_from_mix({"B14": f, "B05": 1.0 - f}))
    assert m.implied_carbon_free_g_per_kwh == pytest.approx(12.0, abs=1e-9)
    assert m.implied_emitting_g_per_kwh == pytest.approx(820.0, abs=1e-9)
    assert m.pearson_r == pytest.approx(-1.0, abs=1e-12)
    assert m.fraction_outside_bounds == 0.0


def test_consistency_flags_impossible_hours():
    # cff = 0 with CI = 20 g: no emitting fuel is below 230 g, so outside bounds
    m = ci_cff_consistency([20.0, 20.0, 20.0, 20.0], [0.0, 1.0, 1.0, 1.0])
    assert m.fraction_outside_bounds == pytest.approx(0.25)
    const = ci_cff_consistency([20.0, 21.0, 22.0], [1.0, 1.0, 1.0])
    assert np.isnan(const.pearson_r) and const.fraction_outside_bounds == 0.0


# ------------------------------------------------------------------ shared ENTSO-E data

CI_DIR = shared_data_dir() / "entsoe_ci_2025"
CI_COL = "carbon_intensity_gCO2eq_per_kWh"
# 2025 rows, ci_cff_consistency(CI, column): r, implied a, implied b, fraction outside
# bounds, as written in docs/models.md (rounded there to 3 / 1 / 1 / 3 decimals).
EXPECTED = {
    ("SE", "carbon_free_fraction_production"): (-0.791, 16.4, 148.2, 0.237),
    ("SE", "carbon_free_fraction"): (-0.761, 16.9, 123.6, 0.371),
    ("CH", "carbon_free_fraction_production"): (np.nan, np.nan, np.nan, 0.000),
    ("CH", "carbon_free_fraction"): (0.243, 22.8, 9.4, 0.665),
    ("FR", "carbon_free_fraction_production"): (-0.980, 18.0, 466.9, 0.000),
    ("FR", "carbon_free_fraction"): (-0.958, 15.1, 458.8, 0.000),
    ("IT", "carbon_free_fraction_production"): (-0.989, 14.6, 450.4, 0.000),
    ("IT", "carbon_free_fraction"): (-0.986, 13.1, 526.6, 0.000),
    ("DE", "carbon_free_fraction_production"): (-0.978, 13.5, 690.6, 0.000),
    ("DE", "carbon_free_fraction"): (-0.969, -16.1, 793.2, 0.075),
    ("PL", "carbon_free_fraction_production"): (-0.992, 17.1, 776.8, 0.000),
    ("PL", "carbon_free_fraction"): (-0.989, -3.9, 823.3, 0.151),
}


def _read_2025(country: str) -> pd.DataFrame:
    path = CI_DIR / f"{country}_hourly.parquet"
    if not path.exists():
        pytest.skip(f"shared data absent: {path}")
    df = pd.read_parquet(path)
    return df[pd.to_datetime(df["timestamp"], utc=True).dt.year == 2025]


@pytest.mark.parametrize(("country", "column"), sorted(EXPECTED))
def test_shared_ci_data_consistency_matches_docs(country, column):
    df = _read_2025(country)
    got = ci_cff_consistency(df[CI_COL].to_numpy(), df[column].to_numpy())
    r, a, b, outside = EXPECTED[(country, column)]
    # tolerances: half a unit of the last decimal written in the docs
    np.testing.assert_allclose(got.pearson_r, r, rtol=0, atol=5e-4 + 1e-12, equal_nan=True)
    np.testing.assert_allclose(got.implied_carbon_free_g_per_kwh, a, rtol=0, atol=0.05 + 1e-9, equal_nan=True)
    np.testing.assert_allclose(got.implied_emitting_g_per_kwh, b, rtol=0, atol=0.05 + 1e-9, equal_nan=True)
    assert got.fraction_outside_bounds == pytest.approx(outside, abs=5e-4 + 1e-12)


@pytest.mark.parametrize("country", ["SE", "FR", "IT", "DE", "PL"])
def test_production_column_explains_ci_better(country):
    df = _read_2025(country)
    prod = ci_cff_consistency(df[CI_COL].to_numpy(), df["carbon_free_fraction_production"].to_numpy())
    other = ci_cff_consistency(df[CI_COL].to_numpy(), df["carbon_free_fraction"].to_numpy())
    assert prod.pearson_r < other.pearson_r < 0.0
    assert prod.rms_residual_g_per_kwh < other.rms_residual_g_per_kwh


def test_ch_columns_finding():
    df = _read_2025("CH")
    # production column: 1.0 in every hour; CI then must lie within the carbon-free
    # factors 11..48 g, and it does (13.1..37.5 g): consistent but uninformative
    assert (df["carbon_free_fraction_production"] == 1.0).all()
    assert df[CI_COL].between(11.0, 48.0).all()
    # the other column has exact zeros in 3 hours whose CI is 17.5-20.9 g
    zeros = df.loc[df["carbon_free_fraction"] == 0.0, "timestamp"]
    assert [t.strftime("%Y-%m-%d %H:%M") for t in pd.to_datetime(zeros, utc=True)] == [
        "2025-06-30 22:00", "2025-06-30 23:00", "2025-07-07 23:00"]
