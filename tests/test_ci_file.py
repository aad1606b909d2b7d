"""Hourly carbon-intensity files (traces.ci_file): both layouts, checks, windows."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from traces.ci_file import hourly_window, read_ci_file, write_ci_parquet
from traces.entsoe import read_ci_cache
from traces.synthetic import shared_data_dir

CI_DIR = shared_data_dir() / "entsoe_ci_2025"
T0 = pd.Timestamp("2025-01-01T00:00Z")


def _times(n: int, start=T0) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="1h")


def _shared(path, ts, ci=None, cff_prod=None, cff_other=None):
    n = len(ts)
    pd.DataFrame({
        "timestamp": ts,
        "carbon_intensity_gCO2eq_per_kWh": np.arange(n, dtype=float) * 10.0 + 100.0 if ci is None else ci,
        "carbon_free_fraction_production": np.full(n, 0.5) if cff_prod is None else cff_prod,
        "carbon_free_fraction": np.full(n, 0.9) if cff_other is None else cff_other,
    }).to_parquet(path)
    return path


def test_tiny_shared_format_file_maps_names_and_ignores_the_inconsistent_cff(tmp_path):
    path = _shared(tmp_path / "DE_hourly.parquet", _times(6))
    data, meta = read_ci_file(path)
    assert list(data.columns) == ["timestamp", "carbon_intensity_g_per_kwh", "carbon_free_fraction"]
    assert str(data["timestamp"].dt.tz) == "UTC"
    np.testing.assert_array_equal(data["carbon_intensity_g_per_kwh"], [100, 110, 120, 130, 140, 150])
    np.testing.assert_array_equal(data["carbon_free_fraction"], 0.5)  # the production column, not 0.9
    assert meta["format"] == "entsoe_ci_2025" and meta["country"] == "DE"
    assert meta["cff_column"] == "carbon_free_fraction_production"
    assert meta["ignored_columns"] == ["carbon_free_fraction"]
    assert "inconsistent" in meta["note"] and "docs/models.md" in meta["note"]
    assert (meta["start"], meta["end"], meta["hours"]) == ("2025-01-01T00:00Z", "2025-01-01T06:00Z", 6)
    with pytest.raises(ValueError, match="entsoe_ci_2025 file, not a gridtwin ENTSO-E cache file"):
        read_ci_cache(path)


def test_tiny_gridtwin_format_file_round_trips_with_its_metadata(tmp_path):
    data = pd.DataFrame({"timestamp": _times(3), "carbon_intensity_g_per_kwh": [20.0, 30.0, 40.0],
                         "carbon_free_fraction": [1.0, 0.9, 0.8]})
    path = write_ci_parquet(tmp_path / "sub" / "CH_2025-01-01_2025-01-01T0300Z.parquet", data,
                            {"country": "CH", "zone": "CH", "fetched_at": "2026-01-01T00:00:00Z"})
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    got, meta = read_ci_cache(path)
    pd.testing.assert_frame_equal(got, data.assign(timestamp=data["timestamp"].astype("datetime64[ns, UTC]")),
                                  check_dtype=False)
    assert meta["format"] == "gridtwin_ci" and meta["country"] == "CH" and meta["zone"] == "CH"
    assert meta["hours"] == 3 and meta["ignored_columns"] == []
    # the same columns written by plain pandas (no metadata) are read too
    data.to_parquet(tmp_path / "plain.parquet")
    _, meta = read_ci_file(tmp_path / "plain.parquet")
    assert meta["format"] == "gridtwin_ci" and "country" not in meta


def test_gap_is_named(tmp_path):
    ts = _times(6).delete([3, 4])  # 03:00 and 04:00 missing
    with pytest.raises(ValueError, match=r"first gap after 2025-01-01T02:00Z, next row 2025-01-01T05:00Z "
                                         r"\(2 hours missing\)"):
        read_ci_file(_shared(tmp_path / "gap.parquet", ts))


@pytest.mark.parametrize(("kind", "message"), [
    ("naive", "has no time zone; expected UTC"),
    ("duplicate", r"not strictly increasing: row 2 \(2025-01-01T01:00Z\) follows 2025-01-01T01:00Z"),
    ("off_hour", "must be on the hour"),
    ("negative", r"carbon_intensity_g_per_kwh must be finite and >= 0; 1 rows are not, first at 2025-01-01T01:00Z"),
    ("nan", "carbon_intensity_g_per_kwh must be finite"),
    ("cff", r"carbon_free_fraction must be finite and \[0, 1\]"),
])
def test_bad_files_fail_loudly(tmp_path, kind, message):
    ts, ci, cff = _times(4), np.array([100.0, 110.0, 120.0, 130.0]), np.full(4, 0.5)
    if kind == "naive":
        ts = ts.tz_localize(None)
    elif kind == "duplicate":
        ts = pd.DatetimeIndex([ts[0], ts[1], ts[1], ts[2]])
    elif kind == "off_hour":
        ts = ts + pd.Timedelta(minutes=30)
    elif kind == "negative":
        ci[1] = -1.0
    elif kind == "nan":
        ci[2] = np.nan
    elif kind == "cff":
        cff[3] = 1.2
    with pytest.raises(ValueError, match=message):
        read_ci_file(_shared(tmp_path / f"{kind}.parquet", ts, ci=ci, cff_prod=cff))


def test_unknown_layout_and_missing_file(tmp_path):
    pd.DataFrame({"timestamp": _times(2), "ci": [1.0, 2.0]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(ValueError, match=r"not a carbon-intensity file: columns \['ci', 'timestamp'\]"):
        read_ci_file(tmp_path / "x.parquet")
    with pytest.raises(FileNotFoundError, match="carbon-intensity file not found"):
        read_ci_file(tmp_path / "absent.parquet")


def test_hourly_window_slices_and_refuses_outside_the_covered_range(tmp_path):
    data, _ = read_ci_file(_shared(tmp_path / "SE_hourly.parquet", _times(6),
                                   cff_prod=np.linspace(0.5, 1.0, 6)))
    ci, cff = hourly_window(data, datetime(2025, 1, 1, 2, tzinfo=timezone.utc), 3)
    np.testing.assert_array_equal(ci, [120.0, 130.0, 140.0])
    np.testing.assert_allclose(cff, [0.7, 0.8, 0.9])
    ci, _ = hourly_window(data, "2025-01-01T00:00Z", 6)  # exactly the whole file
    assert ci.shape == (6,)
    covered = r"covers 2025-01-01T00:00Z to 2025-01-01T06:00Z \(end exclusive\); asked for "
    with pytest.raises(ValueError, match=covered + r"2025-01-01T04:00Z to 2025-01-01T07:00Z \(3 hours\)"):
        hourly_window(data, "2025-01-01T04:00Z", 3)
    with pytest.raises(ValueError, match=covered + "2024-12-31T23:00Z"):
        hourly_window(data, "2024-12-31T23:00Z", 2)
    with pytest.raises(ValueError, match="has no time zone"):
        hourly_window(data, datetime(2025, 1, 1), 1)
    with pytest.raises(ValueError, match="not on the hour"):
        hourly_window(data, "2025-01-01T00:30Z", 1)
    with pytest.raises(ValueError, match="hours=0 must be an integer >= 1"):
        hourly_window(data, "2025-01-01T00:00Z", 0)


@pytest.mark.parametrize("country", ["SE", "CH", "FR", "IT", "DE", "PL"])
def test_reads_the_shared_entsoe_ci_2025_files(country):
    path = CI_DIR / f"{country}_hourly.parquet"
    if not path.exists():
        pytest.skip(f"shared data absent: {path}")
    data, meta = read_ci_file(path)
    raw = pd.read_parquet(path)
    assert meta["format"] == "entsoe_ci_2025" and meta["country"] == country
    # the data README: 8 760-10 800 hourly rows from 2025-01-01 UTC, no gaps
    assert meta["start"] == "2025-01-01T00:00Z" and 8760 <= meta["hours"] == len(raw) <= 10800
    np.testing.assert_array_equal(data["carbon_intensity_g_per_kwh"], raw["carbon_intensity_gCO2eq_per_kWh"])
    np.testing.assert_array_equal(data["carbon_free_fraction"], raw["carbon_free_fraction_production"])
    ci, cff = hourly_window(data, "2025-06-01T00:00Z", 24)
    assert ci.shape == cff.shape == (24,) and np.all(ci >= 0) and np.all((cff >= 0) & (cff <= 1))
