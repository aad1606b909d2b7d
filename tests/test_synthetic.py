"""Tests of traces.synthetic: seeded M100-like job stream and synthetic carbon intensity.

Tests marked ``needs_m100`` / ``needs_ci`` skip when ``../shared/data`` is absent; the others
check the generators against their committed statistics only. Tolerances of the
carbon-intensity statistics come from the seed-to-seed spread of the model itself
(100 synthetic years per country): one year's residual std varies by 4-7 % (1 sd),
lag-1 by 0.001-0.008, lag-24 by 0.04, and the RMS of the month-by-hour cell means
around the table by ~20 % of its expected value.
"""

import dataclasses
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from traces import calibrate_synthetic as cal
from traces import synthetic as syn

DAY_S = 86400.0
DATA = syn.shared_data_dir()
M100_FILE = DATA / "m100_jobs" / "m100_jobs_2022-01.parquet"
CI_DIR = DATA / "entsoe_ci_2025"
DOC = Path(__file__).resolve().parents[1] / "docs" / "traces.md"
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
needs_m100 = pytest.mark.skipif(not M100_FILE.exists(), reason=f"real data absent: {M100_FILE}")
needs_ci = pytest.mark.skipif(not CI_DIR.exists(), reason=f"real data absent: {CI_DIR}")

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
    # as all 813 GPU jobs of the M100 excerpt: every GPU of every node of the job
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
    assert w[counts.argmax()] >= 0.97 * w.max()  # hours 10 and 11 differ by 2 % only
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


def test_submit_profile_calibration_undoes_end_day_selection(tmp_path):
    # A stream with a known profile, observed like the M100 excerpt (only the jobs that
    # end on one UTC day), must give back that profile. ~16 000 jobs a day: the
    # per-hour count noise is ~3 %, the harmonic fit smooths it to ~1.5 %.
    params = syn.M100JobParams()
    real_like = syn.generate_m100_like_jobs(980, 4, 0.0, 2 * DAY_S, 2.0, seed=21, params=params)
    ends = real_like["submit_s"] + real_like["run_time_s"]
    seen = real_like[(ends >= DAY_S) & (ends < 2 * DAY_S)]
    day0 = pd.Timestamp("2022-01-31", tz="UTC")
    pd.DataFrame({
        "submit_time": day0 + pd.to_timedelta(np.round(seen["submit_s"]), unit="s"),
        "run_time": np.round(seen["run_time_s"]).astype(np.int64),
        "num_nodes_alloc": seen["num_nodes"], "num_gpus_alloc": seen["num_gpus"],
        "time_limit": np.ceil(seen["time_limit_s"] / 60.0).astype(np.int64),
    }).to_parquet(tmp_path / "jobs.parquet")
    got = np.asarray(syn.calibrate_m100_job_params(tmp_path / "jobs.parquet").hourly_submit_weights)
    np.testing.assert_allclose(got, params.hourly_submit_weights, rtol=0.06)


@needs_m100
def test_m100_excerpt_is_the_jobs_that_ended_on_one_utc_day():
    # The premise of the profile calibration and of the "end-day" KS comparison.
    df = pd.read_parquet(M100_FILE)
    end = pd.to_datetime(df["submit_time"], utc=True) + pd.to_timedelta(df["run_time"], unit="s")
    assert end.min() >= pd.Timestamp("2022-02-01", tz="UTC")
    assert end.max() < pd.Timestamp("2022-02-02", tz="UTC")
    assert (pd.to_datetime(df["submit_time"], utc=True) < pd.Timestamp("2022-02-01", tz="UTC")).sum() == 33


@needs_m100
def test_m100_gpu_jobs_hold_every_gpu_of_their_nodes():
    df = pd.read_parquet(M100_FILE, columns=["num_nodes_alloc", "num_gpus_alloc"])
    gpu = df["num_gpus_alloc"] > 0
    assert gpu.sum() == 813
    assert (df.loc[gpu, "num_gpus_alloc"] == 4 * df.loc[gpu, "num_nodes_alloc"]).all()


@pytest.fixture(scope="module")
def job_ks():
    return cal.job_ks_table(M100_FILE)


@needs_m100
@pytest.mark.parametrize("marginal", ["nodes per job", "GPUs per job", "run time", "inter-arrival time"])
def test_job_marginals_ks_at_most_0_1(job_ks, marginal):
    # End-day comparison: synthetic streams observed like the excerpt (20 seeds).
    assert job_ks.loc[("end-day", marginal), "max"] <= 0.1
    if marginal != "inter-arrival time":  # the 30.6 h window itself is thinned (see docs/traces.md)
        assert job_ks.loc[("window", marginal), "max"] <= 0.1


@needs_m100
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

YEAR_INDEX = pd.date_range(T0, periods=8760, freq="h")
CELL = (YEAR_INDEX.month.to_numpy() - 1) * 24 + YEAR_INDEX.hour.to_numpy()


def _corr(z, lag):
    d = z - z.mean()
    return float(d[: d.size - lag] @ d[lag:] / (d @ d))


@pytest.mark.parametrize("country", sorted(syn.CARBON_PARAMS))
def test_ci_year_mean_within_5_percent_and_nonnegative(country):
    s = syn.synthetic_carbon_intensity(country, T0, 8760, seed=1)
    assert (s >= 0).all()
    assert s.mean() == pytest.approx(syn.CARBON_PARAMS[country].mean_gco2_per_kwh, rel=0.05)


@pytest.mark.parametrize("country", sorted(syn.CARBON_PARAMS))
def test_ci_synthetic_years_reproduce_committed_statistics(country):
    # Ten synthetic 2025s (seeds 0..9), statistics averaged over the years. One year's
    # spread (module docstring) divided by sqrt(10): std 1.3-2.3 %, lag-1 <= 0.0025,
    # lag-24 0.013, RMS ratio ~0.07. Tolerances are ~3.5 of those plus the small
    # downward bias of one-year estimates (std -1.4 %, lag-24 -0.01).
    p = syn.CARBON_PARAMS[country]
    table = np.asarray(p.month_hour_mean_gco2_per_kwh).ravel()
    stats, cell_means = [], []
    for seed in range(10):
        x = syn.synthetic_carbon_intensity(country, T0, 8760, seed).to_numpy()
        r = x - table[CELL]
        stats.append((r.std(), _corr(r, 1), _corr(r, 24)))
        cell_means.append(np.bincount(CELL, weights=x, minlength=288) / np.bincount(CELL, minlength=288))
    std, lag1, lag24 = np.mean(stats, axis=0)
    assert std == pytest.approx(p.residual_std_gco2_per_kwh, rel=0.08)
    assert lag1 == pytest.approx(p.residual_lag1_autocorr, abs=0.01)
    assert lag24 == pytest.approx(p.residual_lag24_autocorr, abs=0.05)
    # Month-by-hour means: RMS over the 288 cells of (10-year cell mean - table) within
    # 1.5x its expected value: var of a cell mean of n days = s^2/n (1 + 2 sum_j (1 - j/n) rho(24 j)).
    phi1, phi2 = syn.ar2_from_autocorr(p.residual_lag1_autocorr, p.residual_lag24_autocorr)
    rho = [1.0, phi1 / (1.0 - phi2)]
    while len(rho) <= 24 * 31:
        rho.append(phi1 * rho[-1] + phi2 * rho[-2])
    rho = np.asarray(rho)[::24]
    days = np.bincount(YEAR_INDEX.month.to_numpy() - 1) // 24
    var = [p.residual_std_gco2_per_kwh**2 / n * (1 + 2 * np.sum((1 - np.arange(1, n) / n) * rho[1:n])) for n in days]
    expected_rms = math.sqrt(np.mean(var) / 10)
    rms = math.sqrt(np.mean((np.mean(cell_means, axis=0) - table) ** 2))
    assert rms <= 1.5 * expected_rms


@pytest.mark.parametrize("country", sorted(syn.CARBON_PARAMS))
def test_ar2_from_autocorr_reproduces_both_lags(country):
    p = syn.CARBON_PARAMS[country]
    phi1, phi2 = syn.ar2_from_autocorr(p.residual_lag1_autocorr, p.residual_lag24_autocorr)
    assert abs(phi2) < 1.0 and phi1 + phi2 < 1.0 and phi2 - phi1 < 1.0  # stationary
    rho = syn._ar2_autocorr(phi1, phi2, 24)
    assert rho[1] == pytest.approx(p.residual_lag1_autocorr, abs=1e-12)
    assert rho[24] == pytest.approx(p.residual_lag24_autocorr, abs=1e-10)


def test_ar2_from_autocorr_edge_cases():
    # rho24 = rho1**24 is the AR(1): phi2 = 0, phi1 = rho1.
    assert syn.ar2_from_autocorr(0.9, 0.9**24) == pytest.approx((0.9, 0.0), abs=1e-9)
    with pytest.raises(ValueError, match="rho1"):
        syn.ar2_from_autocorr(1.0, 0.5)
    with pytest.raises(ValueError, match="no stationary AR"):
        syn.ar2_from_autocorr(0.5, -0.9)  # weak at 1 h yet strongly negative at 24 h: out of reach


def test_carbon_params_validation_names_the_field():
    good = syn.CARBON_PARAMS["DE"]
    with pytest.raises(ValueError, match="month_hour_mean_gco2_per_kwh"):
        dataclasses.replace(good, month_hour_mean_gco2_per_kwh=good.month_hour_mean_gco2_per_kwh[:11])
    with pytest.raises(ValueError, match="residual_lag24_autocorr"):
        dataclasses.replace(good, residual_lag24_autocorr=1.0)
    with pytest.raises(ValueError, match="residual_std_gco2_per_kwh"):
        dataclasses.replace(good, residual_std_gco2_per_kwh=-1.0)


def _write_ci(path, ts, x):
    pd.DataFrame({"timestamp": ts, "carbon_intensity_gCO2eq_per_kWh": x}).to_parquet(path)


def test_ci_statistics_removes_noise_and_48h_oscillation(tmp_path):
    # DE-like synthetic years, clean in January, then the artefact of the real files:
    # white noise (std 89 g) and a 48 h sinusoid (42 g) from 2025-01-31 (hour 720).
    # ci_statistics of the noisy year must give back the clean year's own statistics.
    # Per year the noise leaves a scatter of ~4.5 % (std), 0.05 (lag-24) and 0.01
    # (lag-1, measured on 29 days); tolerances are ~3x that over the mean of 5 years.
    t = np.arange(8760.0)
    after = t >= 720
    diffs, noise_std, cell_rms = [], [], []
    for seed in range(5, 10):
        clean = syn.synthetic_carbon_intensity("DE", T0, 8760, seed=seed).to_numpy()
        rng = np.random.default_rng(seed + 1)
        x = clean + after * (rng.normal(0.0, 89.0, 8760) + 42.0 * np.cos(2 * np.pi * t / 48 + 1.0))
        _write_ci(tmp_path / "noisy.parquet", YEAR_INDEX, x)
        _write_ci(tmp_path / "clean.parquet", YEAR_INDEX, clean)
        truth, got = syn.ci_statistics(tmp_path / "clean.parquet"), syn.ci_statistics(tmp_path / "noisy.parquet")
        assert truth.white_noise_std < 5.0 and truth.lag1_window == "2025"
        assert got.lag1_window == "2025-01-01..2025-01-29"
        diffs.append((got.residual_std / truth.residual_std - 1.0, got.residual_lag24 - truth.residual_lag24,
                      got.residual_lag1 - truth.residual_lag1))
        noise_std.append(got.white_noise_std)
        cell_rms.append(np.sqrt(np.mean((got.month_hour_mean - truth.month_hour_mean) ** 2)))
    std_err, lag24_err, lag1_err = np.mean(diffs, axis=0)
    assert abs(std_err) < 0.06
    assert abs(lag24_err) < 0.07
    assert abs(lag1_err) < 0.015
    # noise in 8040 of the 8760 h: its variance over the year is 89^2 * 8040 / 8760 = 85.3^2
    assert np.mean(noise_std) == pytest.approx(89.0 * math.sqrt(8040 / 8760), rel=0.03)
    # the noise adds 85.3 / sqrt(30.4) = 15.5 g of scatter to each month-by-hour mean
    assert np.mean(cell_rms) == pytest.approx(15.5, rel=0.15)


def test_ci_statistics_rejects_incomplete_year(tmp_path):
    _write_ci(tmp_path / "short.parquet", YEAR_INDEX[:100], np.full(100, 50.0))
    with pytest.raises(ValueError, match="8760"):
        syn.ci_statistics(tmp_path / "short.parquet")


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


@needs_ci
@pytest.mark.parametrize("country", sorted(syn.CARBON_PARAMS))
def test_committed_ci_table_equals_calibration(country):
    got = syn.calibrate_ci_params(CI_DIR / f"{country}_hourly.parquet")
    ref = syn.CARBON_PARAMS[country]
    np.testing.assert_allclose(got.month_hour_mean_gco2_per_kwh, ref.month_hour_mean_gco2_per_kwh,
                               rtol=0, atol=0.05 + 1e-9)  # 1 dp
    assert got.residual_std_gco2_per_kwh == pytest.approx(ref.residual_std_gco2_per_kwh, abs=0.005 + 1e-9)
    assert got.residual_lag1_autocorr == pytest.approx(ref.residual_lag1_autocorr, abs=0.0005 + 1e-9)
    assert got.residual_lag24_autocorr == pytest.approx(ref.residual_lag24_autocorr, abs=0.0005 + 1e-9)


@needs_ci
@pytest.mark.parametrize("country", ["DE", "FR", "IT", "PL"])
def test_real_series_carry_the_documented_artefact(country):
    # docs/traces.md "Data quality": smooth in January 2025, then white noise that
    # carries most of the residual variance.
    st = syn.ci_statistics(CI_DIR / f"{country}_hourly.parquet")
    assert st.clean_window_series_lag1 > 0.94
    assert st.series_lag1 < 0.70
    assert st.white_noise_std > st.residual_std
    assert st.lag1_window == "2025-01-01..2025-01-29"


@needs_ci
@pytest.mark.parametrize("country", ["SE", "CH"])
def test_real_series_without_the_artefact_use_the_whole_year(country):
    st = syn.ci_statistics(CI_DIR / f"{country}_hourly.parquet")
    assert st.white_noise_std < 0.7 * st.residual_std
    assert st.oscillation_48h_amplitude < 0.5
    assert st.lag1_window == "2025"


@pytest.fixture(scope="module")
def ci_tables():
    return cal.ci_comparison_table(CI_DIR)


@needs_m100
@needs_ci
def test_docs_tables_are_current(job_ks, ci_tables):
    # The tables of docs/traces.md are the output of traces/calibrate_synthetic.py.
    tables = cal.docs_tables(DATA, ks=job_ks, ci=ci_tables)
    assert cal.stale_blocks(DOC.read_text(), tables) == []


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
