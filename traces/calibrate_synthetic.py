"""Recompute the committed statistics of :mod:`traces.synthetic` and the tables of docs/traces.md.

Usage (the data stay in ``../shared/data``; nothing is copied into the repository)::

    python -m traces.calibrate_synthetic params   # Python literals committed in synthetic.py
    python -m traces.calibrate_synthetic docs     # the generated tables of docs/traces.md
    python -m traces.calibrate_synthetic check    # exit 1 if docs/traces.md is out of date

``--data DIR`` replaces :func:`traces.synthetic.shared_data_dir`.

Job comparison. The M100 excerpt holds the jobs that *ended* on 2022-02-01 UTC (every
``submit_time + run_time`` lies in that day), so its submissions run from 2022-01-31
17:20 to 02-01 23:54 but are thinned at both ends: on 01-31 only jobs that ran past
midnight, late on 02-01 only short ones. :func:`job_ks_table` compares the real
marginals with synthetic streams in two ways, each over several seeds:

- ``end-day``: the same observation as the excerpt. Jobs are generated from
  2022-01-31 00:00 to 02-02 00:00 UTC at the offered load whose expected count of
  jobs ending on 02-01 equals the excerpt's, and only those ending on 02-01 are kept.
- ``window``: jobs generated over the excerpt's own submission window (first to last
  submission, ~30.6 h) at the offered load that reproduces its count, no selection.
  Its inter-arrival times cannot match: the generator's 30.6 h are all "full" hours,
  while the excerpt's first 6 h hold 33 jobs.

References: REFERENCE.md §5.3 (Ember annual means).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from traces import synthetic as syn

__all__ = [
    "CI_SEEDS",
    "EMBER_GCO2_PER_KWH",
    "JOB_SEEDS",
    "ci_comparison_table",
    "docs_tables",
    "end_day_jobs",
    "job_ks_table",
    "main",
    "params_source",
    "stale_blocks",
    "window_jobs",
]

#: Seeds of the synthetic job streams and carbon-intensity years in the tables.
JOB_SEEDS = tuple(range(20))
CI_SEEDS = tuple(range(10))
#: Facility of the job comparison: Marconi100, 980 nodes x 4 V100.
M100_NODES, M100_GPUS_PER_NODE = 980, 4
#: Ember lifecycle CI (gCO2eq/kWh), REFERENCE.md §5.3 (owid-energy-data @e7897aed):
#: 2025 values; SE has none extracted for 2025, so its 2023 value (marked) is used.
EMBER_GCO2_PER_KWH = {
    "SE": (38.42, 2023), "CH": (39.22, 2025), "FR": (41.44, 2025),
    "IT": (284.78, 2025), "DE": (329.65, 2025), "PL": (588.60, 2025),
}  # fmt: skip
COUNTRIES = ("SE", "CH", "FR", "IT", "DE", "PL")
_DAY_S = 86400.0


# ------------------------------------------------------------------------------- jobs


def _read_jobs(path: Path) -> pd.DataFrame:
    df = pd.read_parquet(path, columns=["submit_time", "run_time", "num_nodes_alloc", "num_gpus_alloc"])
    df["submit_time"] = pd.to_datetime(df["submit_time"], utc=True)
    return df.sort_values("submit_time", kind="stable").reset_index(drop=True)


def _expected_jobs_per_unit_load(start_s: float, end_s: float, start_utc_hour: float,
                                 params: syn.M100JobParams) -> float:
    """Expected submissions in ``[start_s, end_s)`` at offered load 1 [jobs]."""
    rate = syn._arrival_rate_per_s(M100_NODES, 1.0, params)
    w = np.asarray(params.hourly_submit_weights, dtype=np.float64)
    w = w / w.mean()
    t = np.arange(start_s, end_s, 1.0) + 0.5  # 1 s midpoints
    hour = np.floor(start_utc_hour + t / 3600.0).astype(np.int64) % 24
    return rate * float(w[hour].sum())


def end_day_jobs(real: pd.DataFrame, seed: int, params: syn.M100JobParams | None = None) -> pd.DataFrame:
    """Synthetic jobs observed like the excerpt: those ending on the excerpt's UTC day.

    Submissions are generated over the day before and the day itself (run times are
    clipped at 24 h, so no earlier job can end in the day); the offered load makes the
    expected count of kept jobs equal ``len(real)`` (for a 24 h periodic rate that is
    the expected count of one day's submissions). ``submit_s`` is in s since the day
    before 00:00 UTC.
    """
    params = params or syn.M100JobParams()
    end = real["submit_time"] + pd.to_timedelta(real["run_time"], unit="s")
    d0 = end.min().floor("D")
    days = int(((end.max().floor("D") + pd.Timedelta(days=1)) - d0) / pd.Timedelta(days=1))
    load = len(real) / (days * _expected_jobs_per_unit_load(0.0, _DAY_S, 0.0, params))
    jobs = syn.generate_m100_like_jobs(M100_NODES, M100_GPUS_PER_NODE, 0.0, (1 + days) * _DAY_S, load, seed,
                                       params)
    job_end = jobs["submit_s"] + jobs["run_time_s"]
    return jobs[(job_end >= _DAY_S) & (job_end < (1 + days) * _DAY_S)].reset_index(drop=True)


def window_jobs(real: pd.DataFrame, seed: int, params: syn.M100JobParams | None = None) -> pd.DataFrame:
    """Synthetic jobs over the excerpt's own submission window, no selection.

    ``submit_s`` is in s since the first real submission; the offered load makes the
    expected count equal ``len(real)``.
    """
    params = params or syn.M100JobParams()
    t0 = real["submit_time"].iloc[0]
    span_s = (real["submit_time"].iloc[-1] - t0).total_seconds()
    h0 = t0.hour + t0.minute / 60.0 + t0.second / 3600.0
    load = len(real) / _expected_jobs_per_unit_load(0.0, span_s, h0, params)
    return syn.generate_m100_like_jobs(M100_NODES, M100_GPUS_PER_NODE, 0.0, span_s, load, seed, params,
                                       start_utc_hour=h0)


def job_ks_table(path: Path, seeds=JOB_SEEDS) -> pd.DataFrame:
    """Two-sample KS statistics, real excerpt vs synthetic, per comparison and marginal.

    Returns a frame indexed by (comparison, marginal) with columns ``median``, ``max``
    (over ``seeds``) and ``jobs`` (median synthetic job count).
    """
    real = _read_jobs(path)
    real_gap_s = np.diff((real["submit_time"] - real["submit_time"].iloc[0]).dt.total_seconds().to_numpy())
    rows = []
    for comparison, make in (("end-day", end_day_jobs), ("window", window_jobs)):
        stats = {k: [] for k in ("nodes per job", "GPUs per job", "run time", "inter-arrival time")}
        counts = []
        for seed in seeds:
            j = make(real, seed)
            counts.append(len(j))
            pairs = {
                "nodes per job": (j["num_nodes"], real["num_nodes_alloc"]),
                "GPUs per job": (j["num_gpus"], real["num_gpus_alloc"]),
                "run time": (j["run_time_s"], real["run_time"]),
                "inter-arrival time": (np.diff(np.sort(j["submit_s"].to_numpy())), real_gap_s),
            }
            for k, (a, b) in pairs.items():
                stats[k].append(ks_2samp(np.asarray(a, float), np.asarray(b, float), method="asymp").statistic)
        for k, v in stats.items():
            rows.append((comparison, k, float(np.median(v)), float(np.max(v)), float(np.median(counts))))
    return pd.DataFrame(rows, columns=["comparison", "marginal", "median", "max", "jobs"]).set_index(
        ["comparison", "marginal"])


# -------------------------------------------------------------------- carbon intensity


def _corr(z: np.ndarray, lag: int) -> float:
    d = z - z.mean()
    return float(d[: d.size - lag] @ d[lag:] / (d @ d))


def _model_series_stats(p: syn.CarbonParams, index: pd.DatetimeIndex) -> tuple[float, float, float, float]:
    """Mean, std, lag-1, lag-24 of the model's series over ``index`` (exact, no sampling)."""
    m = np.asarray(p.month_hour_mean_gco2_per_kwh)[index.month.to_numpy() - 1, index.hour.to_numpy()]
    phi1, phi2 = syn.ar2_from_autocorr(p.residual_lag1_autocorr, p.residual_lag24_autocorr)
    rho = syn._ar2_autocorr(phi1, phi2, 24)
    s2 = p.residual_std_gco2_per_kwh**2
    d = m - m.mean()
    gm = [float(d[: d.size - k] @ d[k:] / d.size) for k in (0, 1, 24)]
    var = gm[0] + s2
    return float(m.mean()), math.sqrt(var), (gm[1] + s2 * rho[1]) / var, (gm[2] + s2 * rho[24]) / var


def _cell_mean_se_rms(p: syn.CarbonParams, index: pd.DatetimeIndex) -> float:
    """RMS over the 288 cells of the sampling std of one year's cell mean [gCO2eq/kWh]."""
    phi1, phi2 = syn.ar2_from_autocorr(p.residual_lag1_autocorr, p.residual_lag24_autocorr)
    days = np.bincount(index.month.to_numpy() - 1) // 24
    rho = syn._ar2_autocorr(phi1, phi2, 24 * int(days.max()))[::24]
    var = []
    for n in days:
        j = np.arange(1, n)
        var.append(p.residual_std_gco2_per_kwh**2 / n * (1.0 + 2.0 * np.sum((1.0 - j / n) * rho[1:n])))
    return float(np.sqrt(np.mean(var)))


def ci_comparison_table(ci_dir: Path, seeds=CI_SEEDS) -> dict[str, pd.DataFrame]:
    """Real vs synthetic carbon intensity per country (2025 calendar year, UTC).

    Returns frames keyed ``series``, ``residual``, ``month_hour``, ``quality``, ``ember``,
    one row per country; synthetic values are medians over ``seeds``.
    """
    index = pd.date_range(datetime(2025, 1, 1, tzinfo=UTC), periods=8760, freq="h")
    series, residual, month_hour, quality, ember = [], [], [], [], []
    for cc in COUNTRIES:
        st = syn.ci_statistics(ci_dir / f"{cc}_hourly.parquet")
        p = syn.CARBON_PARAMS[cc]
        table = np.asarray(p.month_hour_mean_gco2_per_kwh)
        cell = (index.month.to_numpy() - 1) * 24 + index.hour.to_numpy()
        ss, rs, mh = [], [], []
        for seed in seeds:
            x = syn.synthetic_carbon_intensity(cc, index[0].to_pydatetime(), 8760, seed).to_numpy()
            r = x - table.ravel()[cell]
            ss.append((x.mean(), x.std(), _corr(x, 1), _corr(x, 24)))
            rs.append((r.std(), _corr(r, 1), _corr(r, 24)))
            diff = np.bincount(cell, weights=x, minlength=288) / np.bincount(cell, minlength=288) - table.ravel()
            mh.append((np.abs(diff).max(), np.sqrt(np.mean(diff**2))))
        ss, rs, mh = (np.median(np.asarray(a), axis=0) for a in (ss, rs, mh))
        target = _model_series_stats(p, index)
        real_cell = st.month_hour_mean.ravel()
        series.append((cc, st.series_mean, target[0], ss[0], st.series_std, target[1], ss[1],
                       st.series_lag1, target[2], ss[2], st.series_lag24, target[3], ss[3]))
        residual.append((cc, st.residual_raw_std, p.residual_std_gco2_per_kwh, rs[0],
                         st.residual_raw_lag1, p.residual_lag1_autocorr, rs[1],
                         st.residual_raw_lag24, p.residual_lag24_autocorr, rs[2]))
        month_hour.append((cc, float(real_cell.min()), float(real_cell.max()),
                           float(np.abs(table.ravel() - real_cell).max()), mh[0], mh[1], _cell_mean_se_rms(p, index)))
        quality.append((cc, st.series_lag1, st.clean_window_series_lag1, st.white_noise_std,
                        st.oscillation_48h_amplitude, 1.0 - (st.residual_std / st.residual_raw_std) ** 2,
                        st.lag1_window))
        ref, year = EMBER_GCO2_PER_KWH[cc]
        ember.append((cc, st.series_mean, ref, year, 100.0 * (st.series_mean / ref - 1.0)))
    cols = {
        "series": ["country", "mean real", "mean target", "mean synth", "std real", "std target", "std synth",
                   "lag1 real", "lag1 target", "lag1 synth", "lag24 real", "lag24 target", "lag24 synth"],
        "residual": ["country", "std raw", "std target", "std synth", "lag1 raw", "lag1 target", "lag1 synth",
                     "lag24 raw", "lag24 target", "lag24 synth"],
        "month_hour": ["country", "cell min", "cell max", "max abs(committed - real)", "max abs(synth - table)",
                       "rms(synth - table)", "expected rms"],
        "quality": ["country", "lag1 2025", "lag1 clean window", "white noise std", "48 h amplitude",
                    "artefact share of residual var", "lag1 measured on"],
        "ember": ["country", "2025 mean", "Ember", "Ember year", "difference %"],
    }
    rows = {"series": series, "residual": residual, "month_hour": month_hour, "quality": quality, "ember": ember}
    return {k: pd.DataFrame(v, columns=cols[k]).set_index("country") for k, v in rows.items()}


# ------------------------------------------------------------------------ text output


def params_source(data_dir: Path) -> str:
    """Python source of the committed statistics, rounded as committed in synthetic.py."""
    jobs = syn.calibrate_m100_job_params(data_dir / "m100_jobs" / "m100_jobs_2022-01.parquet")
    w = jobs.hourly_submit_weights
    out = ["# M100JobParams (4 dp; hourly_submit_weights 3 dp)"]
    for f in ("cpu_only_fraction", "log_run_time_mean", "log_run_time_std", "time_limit_ratio_low",
              "time_limit_ratio_high"):
        out.append(f"{f} = {getattr(jobs, f):.4f}")
    out.append("hourly_submit_weights = (")
    out += ["    " + ", ".join(f"{v:.3f}" for v in w[i:i + 8]) + "," for i in range(0, 24, 8)]
    out.append(")")
    out.append("# carbon intensity: month-by-hour tables 1 dp, std 2 dp, autocorrelations 3 dp")
    out.append("_CI_MONTH_HOUR_2025 = {")
    scalars = []
    for cc in COUNTRIES:
        p = syn.calibrate_ci_params(data_dir / "entsoe_ci_2025" / f"{cc}_hourly.parquet")
        out.append(f'    "{cc}": (')
        for m, row in enumerate(p.month_hour_mean_gco2_per_kwh):
            a = ", ".join(f"{v:.1f}" for v in row[:12])
            b = ", ".join(f"{v:.1f}" for v in row[12:])
            out.append(f"        ({a},")
            out.append(f"         {b}),  # {pd.Timestamp(2025, m + 1, 1):%b}")
        out.append("    ),")
        scalars.append(f'    "{cc}": ({p.residual_std_gco2_per_kwh:.2f}, {p.residual_lag1_autocorr:.3f}, '
                       f"{p.residual_lag24_autocorr:.3f}),")
    out.append("}")
    out.append("_CI_RESIDUAL_2025 = {  # country: (std, lag-1, lag-24)")
    out += scalars
    out.append("}")
    return "\n".join(out)


def _markdown(df: pd.DataFrame, fmt: dict[str, str]) -> str:
    cols = [df.index.name] + list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for idx, row in df.iterrows():
        idx = idx if isinstance(idx, tuple) else (idx,)
        cells = [str(i) for i in idx] + [format(v, fmt.get(c, "")) if not isinstance(v, str) else v
                                         for c, v in row.items()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def docs_tables(data_dir: Path, ks: pd.DataFrame | None = None,
                ci: dict[str, pd.DataFrame] | None = None) -> dict[str, str]:
    """Markdown of every generated table of docs/traces.md, keyed by block name.

    ``ks`` and ``ci`` are the outputs of :func:`job_ks_table` and
    :func:`ci_comparison_table` when already computed (else they are computed here).
    """
    if ks is None:
        ks = job_ks_table(data_dir / "m100_jobs" / "m100_jobs_2022-01.parquet")
    ks = ks.reset_index().set_index("comparison")
    out = {"jobs-ks": _markdown(ks, {"median": ".3f", "max": ".3f", "jobs": ".0f"})}
    if ci is None:
        ci = ci_comparison_table(data_dir / "entsoe_ci_2025")

    def f(cols, spec):
        return {c: spec for c in cols}

    s = ci["series"]
    out["ci-series"] = _markdown(s, {**f([c for c in s if c.startswith(("mean", "std"))], ".1f"),
                                     **f([c for c in s if c.startswith("lag")], ".3f")})
    r = ci["residual"]
    out["ci-residual"] = _markdown(r, {**f([c for c in r if c.startswith("std")], ".2f"),
                                       **f([c for c in r if c.startswith("lag")], ".3f")})
    out["ci-month-hour"] = _markdown(ci["month_hour"], f(ci["month_hour"].columns, ".1f"))
    q = ci["quality"]
    out["ci-quality"] = _markdown(q, {"lag1 2025": ".3f", "lag1 clean window": ".3f", "white noise std": ".2f",
                                      "48 h amplitude": ".1f", "artefact share of residual var": ".2f"})
    out["ci-ember"] = _markdown(ci["ember"], {"2025 mean": ".2f", "Ember": ".2f", "Ember year": ".0f",
                                              "difference %": "+.1f"})
    return out


def _blocks_in(text: str) -> dict[str, str]:
    """Generated blocks of a markdown file: lines ``<!-- BEGIN name -->`` ... ``<!-- END name -->``."""
    pattern = re.compile(r"^<!-- BEGIN (\S+) -->\n(.*?)\n<!-- END \1 -->$", re.MULTILINE | re.DOTALL)
    return {m.group(1): m.group(2) for m in pattern.finditer(text)}


def stale_blocks(doc_text: str, tables: dict[str, str]) -> list[str]:
    """Names of the generated tables whose block in ``doc_text`` is missing or differs."""
    have = _blocks_in(doc_text)
    return [n for n, md in tables.items() if have.get(n) != md]


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring."""
    ap = argparse.ArgumentParser(prog="python -m traces.calibrate_synthetic", description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("params", "docs", "check"))
    ap.add_argument("--data", type=Path, default=syn.shared_data_dir(), help="shared data folder")
    ap.add_argument("--doc", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "traces.md")
    a = ap.parse_args(argv)
    if a.what == "params":
        print(params_source(a.data))
        return 0
    tables = docs_tables(a.data)
    if a.what == "docs":
        for name, md in tables.items():
            print(f"<!-- BEGIN {name} -->\n{md}\n<!-- END {name} -->\n")
        return 0
    stale = stale_blocks(a.doc.read_text(), tables)
    for n in stale:
        print(f"{a.doc}: block {n} differs from the data; rerun 'python -m traces.calibrate_synthetic docs'")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
