"""Tests of traces.synthetic: seeded M100-like job stream and synthetic carbon intensity."""

import dataclasses
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from traces import synthetic as syn

DAY_S = 86400.0
M100_FILE = syn.shared_data_dir() / "m100_jobs" / "m100_jobs_2022-01.parquet"
CI_DIR = syn.shared_data_dir() / "entsoe_ci_2025"
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)

EXPECTED_DTYPES = {
    "job_id": np.int64,
    "submit_s": np.float64,
    "run_time_s": np.float64,
    "time_limit_s": np.float64,
    "num_nodes": np.int64,
    "num_gpus": np.int64,
    "gpu_util": np.float64,
    "host_util": np.float64,
}


def _jobs(seed=7, n_nodes=980, gpus_per_node=4, start_s=-DAY_S, end_s=2 * DAY_S, load=0.8, **kw):
    return syn.generate_m100_like_jobs(n_nodes, gpus_per_node, start_s, end_s, load, seed, **kw)


# ------------------------------------------------------------------------ job stream


def test_same_seed_gives_identical_frame_and_other_seed_differs():
    a, b, c = _jobs(seed=11), _jobs(seed=11), _jobs(seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_columns_and_dtypes_exact():
    df = _jobs()
    assert tuple(df.columns) == syn.JOB_COLUMNS == tuple(EXPECTED_DTYPES)
    for col, dtype in EXPECTED_DTYPES.items():
        assert df[col].dtype == dtype, col


def test_empty_window_keeps_columns_and_dtypes():
    # 1 s at 1 node: expected ~1e-4 jobs, so seed 0 gives none.
    df = _jobs(seed=0, n_nodes=1, start_s=0.0, end_s=1.0, load=0.01)
    assert len(df) == 0
    assert {c: df[c].dtype for c in df} == {c: np.dtype(t) for c, t in EXPECTED_DTYPES.items()}


def test_invariants():
    gpus_per_node = 4
    df = _jobs(seed=3, gpus_per_node=gpus_per_node)
    assert len(df) > 5000
    assert (df["job_id"].to_numpy() == np.arange(len(df))).all()
    assert df["submit_s"].is_monotonic_increasing
    assert df["submit_s"].min() >= -DAY_S and df["submit_s"].max() < 2 * DAY_S
    assert (df["run_time_s"] > 0).all()
    assert (df["run_time_s"] <= df["time_limit_s"]).all()
    assert df["num_nodes"].between(1, 980).all()
    cpu = df["num_gpus"] == 0
    assert (df.loc[cpu, "gpu_util"] == 0.0).all()
    assert (df.loc[~cpu, "num_gpus"] == df.loc[~cpu, "num_nodes"] * gpus_per_node).all()
    assert df.loc[~cpu, "gpu_util"].between(0.0, 1.0).all()
    assert ((df["host_util"] > 0.0) & (df["host_util"] <= 1.0)).all()


def test_node_count_truncated_at_small_facility():
    df = _jobs(seed=5, n_nodes=3, end_s=10 * DAY_S)
    assert df["num_nodes"].max() <= 3
    assert set(df["num_nodes"].unique()) == {1, 2, 3}


def test_realised_offered_load_within_10_percent():
    # 20 days, 980 nodes: ~130 000 jobs; seed-to-seed std of the ratio is ~1.5 %.
    n_nodes, window_s, load = 980, 20 * DAY_S, 0.8
    df = _jobs(seed=2024, n_nodes=n_nodes, start_s=0.0, end_s=window_s, load=load)
    realised = (df["num_nodes"] * df["run_time_s"]).sum() / (n_nodes * window_s)
    assert realised == pytest.approx(load, rel=0.10)


def test_cpu_only_fraction_matches_calibration():
    df = _jobs(seed=99)
    assert len(df) >= 5000
    cpu_only = (df["num_gpus"] == 0).mean()
    assert abs(cpu_only - syn.M100JobParams().cpu_only_fraction) <= 0.03


def test_utilisation_means_match_stated_assumptions():
    df = _jobs(seed=8)
    gpu = df["num_gpus"] > 0
    assert df.loc[gpu, "gpu_util"].mean() == pytest.approx(0.6, abs=0.02)  # Beta(3, 2)
    assert df["host_util"].mean() == pytest.approx(0.5, abs=0.02)  # Beta(2, 2)


def test_diurnal_profile_follows_utc_hour():
    # Start at 07:30 UTC: the busiest UTC hour must still be the profile's peak.
    start_utc_hour = 7.5
    df = _jobs(seed=1, start_s=0.0, end_s=30 * DAY_S, start_utc_hour=start_utc_hour)
    utc_hour = np.floor(start_utc_hour + df["submit_s"].to_numpy() / 3600.0).astype(int) % 24
    counts = np.bincount(utc_hour, minlength=24)
    w = np.asarray(syn.M100JobParams().hourly_submit_weights)
    assert counts.argmax() == w.argmax()
    np.testing.assert_allclose(counts / counts.mean(), w / w.mean(), rtol=0.10)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_nodes": 0}, "n_nodes"),
        ({"n_nodes": 2.5}, "n_nodes"),
        ({"gpus_per_node": 0}, "gpus_per_node"),
        ({"start_s": float("nan")}, "start_s"),
        ({"start_s": 10.0, "end_s": 10.0}, "end_s"),
        ({"load": 0.0}, "offered_load"),
        ({"load": 2.5}, "offered_load"),
        ({"seed": -1}, "seed"),
        ({"start_utc_hour": 24.0}, "start_utc_hour"),
        ({"params": "m100"}, "params"),
    ],
)
def test_bad_job_arguments_raise_value_error_naming_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _jobs(**kwargs)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cpu_only_fraction", 1.5),
        ("time_limit_ratio_low", 0.9),
        ("log_run_time_std", 0.0),
        ("hourly_submit_weights", (1.0,) * 23),
        ("gpu_util_beta_a", -1.0),
    ],
)
def test_bad_params_raise_value_error_naming_field(field, value):
    with pytest.raises(ValueError, match=field):
        syn.M100JobParams(**{field: value})


@pytest.mark.skipif(not M100_FILE.exists(), reason=f"real data absent: {M100_FILE}")
def test_committed_m100_defaults_equal_calibration():
    got = syn.calibrate_m100_job_params(M100_FILE)
    ref = syn.M100JobParams()
    decimals = {
        "cpu_only_fraction": 4,
        "log_run_time_mean": 4,
        "log_run_time_std": 4,
        "time_limit_ratio_low": 4,
        "time_limit_ratio_high": 4,
        "hourly_submit_weights": 3,
    }
    for f in dataclasses.fields(ref):
        tol = 0.5 * 10.0 ** -decimals.get(f.name, 9) + 1e-12  # exact fields: 1e-9
        np.testing.assert_allclose(getattr(got, f.name), getattr(ref, f.name), rtol=0, atol=tol,
                                   err_msg=f.name)


# ----------------------------------------------------------------- carbon intensity


@pytest.mark.parametrize("country", sorted(syn.CARBON_PARAMS))
def test_ci_year_mean_within_5_percent_and_nonnegative(country):
    s = syn.synthetic_carbon_intensity(country, T0, 8760, seed=1)
    assert (s >= 0).all()
    assert s.mean() == pytest.approx(syn.CARBON_PARAMS[country].mean_gco2_per_kwh, rel=0.05)


@pytest.mark.parametrize("country", sorted(syn.CARBON_PARAMS))
def test_ci_lag1_autocorrelation_reproduces_calibration_series(country):
    x = syn.synthetic_carbon_intensity(country, T0, 8760, seed=2).to_numpy()
    lag1 = np.corrcoef(x[:-1], x[1:])[0, 1]
    assert lag1 == pytest.approx(syn.CARBON_PARAMS[country].observed_lag1_autocorr, abs=0.05)


def test_ci_index_length_name_and_timezone():
    start = datetime(2025, 3, 30, 0, tzinfo=timezone.utc)  # EU DST change: UTC is unaffected
    s = syn.synthetic_carbon_intensity("DE", start, 48, seed=0)
    assert len(s) == 48
    assert s.name == "carbon_intensity_gco2_per_kwh"
    assert s.dtype == np.float64
    assert isinstance(s.index, pd.DatetimeIndex)
    assert s.index.name == "timestamp"
    assert str(s.index.tz) == "UTC"
    assert s.index[0] == pd.Timestamp(start)
    assert (s.index[1:] - s.index[:-1] == pd.Timedelta(hours=1)).all()


def test_ci_deterministic_per_seed():
    a = syn.synthetic_carbon_intensity("PL", T0, 100, seed=4)
    pd.testing.assert_series_equal(a, syn.synthetic_carbon_intensity("PL", T0, 100, seed=4))
    assert not a.equals(syn.synthetic_carbon_intensity("PL", T0, 100, seed=5))


def test_ci_unknown_country_lists_known_ones():
    with pytest.raises(ValueError, match=r"country='XX'.*CH, DE, FR, IT, PL, SE"):
        syn.synthetic_carbon_intensity("XX", T0, 24, seed=0)


@pytest.mark.parametrize(
    ("start", "hours", "seed", "name"),
    [
        (datetime(2025, 1, 1), 24, 0, "start"),  # naive
        (datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=1))), 24, 0, "start"),
        (datetime(2025, 1, 1, 0, 30, tzinfo=timezone.utc), 24, 0, "start"),
        (T0, 0, 0, "hours"),
        (T0, 24, -3, "seed"),
    ],
)
def test_ci_bad_arguments_raise_value_error_naming_parameter(start, hours, seed, name):
    with pytest.raises(ValueError, match=name):
        syn.synthetic_carbon_intensity("FR", start, hours, seed)


@pytest.mark.parametrize("country", sorted(syn.CARBON_PARAMS))
def test_committed_ci_table_equals_calibration(country):
    path = CI_DIR / f"{country}_hourly.parquet"
    if not path.exists():
        pytest.skip(f"real data absent: {path}")
    got = syn.calibrate_ci_params(path)
    ref = syn.CARBON_PARAMS[country]
    decimals = {"ar1_phi": 3, "observed_lag1_autocorr": 3}  # others gCO2eq/kWh, 2 dp
    for f in dataclasses.fields(ref):
        tol = 0.5 * 10.0 ** -decimals.get(f.name, 2) + 1e-9
        assert getattr(got, f.name) == pytest.approx(getattr(ref, f.name), abs=tol), f.name


@pytest.mark.parametrize("country", sorted(syn.CFF_FROM_CI))
def test_committed_cff_lines_equal_calibration(country):
    path = CI_DIR / f"{country}_hourly.parquet"
    if not path.exists():
        pytest.skip(f"real data absent: {path}")
    intercept, slope = syn.calibrate_cff_from_ci(path)
    ref_a, ref_b = syn.CFF_FROM_CI[country]
    assert intercept == pytest.approx(ref_a, abs=5e-6)  # committed to 5 decimals
    assert slope == pytest.approx(ref_b, abs=5e-8)  # committed to 7 decimals


def test_cff_from_ci_is_clipped_and_decreasing():
    # DE: 0.99745 - 0.0014131 * CI; CI 0 -> 0.99745, CI 352.32 (2025 mean) -> 0.4996, CI 1000 -> 0 (clipped)
    got = syn.carbon_free_fraction_from_ci("DE", [0.0, 352.32, 1000.0])
    np.testing.assert_allclose(got, [0.99745, 0.99745 - 0.0014131 * 352.32, 0.0], atol=1e-12)
    assert syn.carbon_free_fraction_from_ci("CH", [10.0, 500.0]).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="country='XX' is unknown"):
        syn.carbon_free_fraction_from_ci("XX", [1.0])
