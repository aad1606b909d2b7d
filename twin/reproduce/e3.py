"""Reproduce E3 (paper §5.1): one-step-ahead MAE of the Tier-2 AR(4) predictor on V100 power.

The paper's kit ran each workload for ~60 s on one V100, sampled NVML at ~100 Hz,
fed its AR(4) one sample per second and wrote ``<workload>_predictions.csv``
(t, observed, predicted, error) and ``<workload>_metrics.json``. Paper: MAE 4.69 /
7.00 / 19.66 W (inference / matmul / bursty). Here we rebuild the 1 Hz series from the
telemetry, run :class:`twin.control.tier2_ar.RlsAr` on it and score it at the time
stamps of the predictions file, next to persistence (ŷ[k] = y[k-1]) and the paper's
own errors recomputed from the file.

What the data show (see ``e3_details``):

* **GPU.** The ``observed`` column equals, at every in-run time stamp, the power of
  GPU 0 in the telemetry file; the meta files name GPU 2 / 2 / 1. We pick the GPU
  whose telemetry matches, and report it.
* **Resampling.** Every prediction time stamp is a telemetry sample time, ~1.007 s
  apart (100 samples at ~99.3 Hz): the kit keeps the first sample at least 1.0 s after
  the previous kept one, the instantaneous value, no averaging. Our series takes the
  file's time stamps, extended backwards at their median spacing to the GPU's first
  sample, and the GPU's last sample at or before each tick.
* **Out-of-run rows.** A predictions row lies outside the telemetry's time span (the
  bursty file's t = 5299 s in a ~69 s run); it is excluded from every MAE here,
  the paper's recomputed one included, and reported.

The paper's 0.036 utilisation MAE comes from the 24 h, 100-host simulation (§5.1,
Fig. 4), not from these runs: its row is reported as skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from traces.v100_telemetry import read_v100_telemetry
from twin.control.tier2_ar import RlsAr

__all__ = ["WORKLOADS", "PAPER_MAE_W", "one_hz_series", "match_gpu", "evaluate_workload",
           "e3_details", "e3_rows"]

WORKLOADS = ("inference_memory_bound", "matmul_compute_bound", "bursty_alternating")
#: Paper §5.1 (E3), one-step-ahead MAE [W].
PAPER_MAE_W = {"inference_memory_bound": 4.69, "matmul_compute_bound": 7.00,
               "bursty_alternating": 19.66}
#: Paper §5.1 (Fig. 4): utilisation MAE of the 24 h, 100-host simulation [-].
PAPER_UTIL_MAE = 0.036
#: ``observed`` is the telemetry value printed with 2 decimals: equal within half a unit.
MATCH_ATOL_W = 0.005
#: Fraction of in-run rows that must match for a GPU to count as the one observed.
MATCH_MIN_FRACTION = 0.95

_SHORT = {"inference_memory_bound": "inference", "matmul_compute_bound": "matmul",
          "bursty_alternating": "bursty"}


def _zoh(t_s: np.ndarray, power_w: np.ndarray, t_query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Last sample at or before each query time: (value, age of that sample [s])."""
    idx = np.searchsorted(t_s, t_query, side="right") - 1
    if np.any(idx < 0):
        raise ValueError(f"query time {t_query[idx < 0][0]:g} s precedes the first sample ({t_s[0]:g} s)")
    return power_w[idx], t_query - t_s[idx]


def one_hz_series(t_s: np.ndarray, power_w: np.ndarray, t_pred: np.ndarray) -> dict:
    """The 1 Hz series the predictor sees, on the predictions file's own ticks.

    Parameters
    ----------
    t_s, power_w : arrays
        One GPU's telemetry (strictly increasing time [s], power [W]).
    t_pred : array
        Time stamps of the predictions rows inside the telemetry's span [s], increasing.

    Returns
    -------
    dict
        ``t_s`` ticks [s], ``power_w`` values [W], ``eval`` indices of the ticks that are
        ``t_pred``, ``period_s`` median tick spacing, ``max_age_s`` oldest sample used.
    """
    period = float(np.median(np.diff(t_pred)))
    n_back = int(np.floor((t_pred[0] - t_s[0]) / period + 1e-9))
    ticks = np.concatenate([t_pred[0] - period * np.arange(n_back, 0, -1), t_pred])
    y, age = _zoh(t_s, power_w, ticks)
    return {"t_s": ticks, "power_w": y, "eval": np.arange(n_back, len(ticks)),
            "period_s": period, "max_age_s": float(age.max())}


def match_gpu(path: str | os.PathLike, t_pred: np.ndarray, observed_w: np.ndarray) -> dict:
    """Find the GPU whose telemetry in ``path`` equals ``observed_w`` at ``t_pred``.

    Returns
    -------
    dict
        ``gpu`` (the match), ``fraction`` per GPU index (of rows inside that GPU's time
        span that match within :data:`MATCH_ATOL_W`), ``report`` (the reader's report
        for the matched GPU), ``data`` (its telemetry).

    Raises
    ------
    ValueError
        If no GPU matches at least :data:`MATCH_MIN_FRACTION` of the rows.
    """
    data, report = read_v100_telemetry(path, 0)
    gpus = sorted({0, *report.other_gpus})
    fraction, found = {}, {}
    for g in gpus:
        df, rep = (data, report) if g == 0 else read_v100_telemetry(path, g)
        t, p = df["t_s"].to_numpy(), df["power_w"].to_numpy()
        inside = (t_pred >= t[0]) & (t_pred <= t[-1]) if len(t) else np.zeros(len(t_pred), bool)
        if inside.sum() < 0.5 * len(t_pred):
            fraction[g] = 0.0
            continue
        fraction[g] = float(np.mean(np.abs(_zoh(t, p, t_pred[inside])[0] - observed_w[inside]) <= MATCH_ATOL_W))
        found[g] = (df, rep)
    best = max(fraction, key=fraction.get)
    if fraction[best] < MATCH_MIN_FRACTION:
        raise ValueError(f"{path}: no GPU's telemetry matches the predictions' observed column "
                         f"(match fraction per GPU {fraction}; need >= {MATCH_MIN_FRACTION})")
    return {"gpu": best, "fraction": fraction, "data": found[best][0], "report": found[best][1]}


def evaluate_workload(e3_dir: str | os.PathLike, workload: str, **rls_kwargs) -> dict:
    """Score our RLS AR(4), persistence and the paper's predictions for one workload.

    ``rls_kwargs`` go to :class:`RlsAr` (defaults: the Tier-2 constants).
    Returns a dict of numbers and provenance (see :func:`e3_details`).
    """
    e3_dir = Path(e3_dir)
    pred = pd.read_csv(e3_dir / f"{workload}_predictions.csv")
    metrics = json.loads((e3_dir / f"{workload}_metrics.json").read_text())
    meta = json.loads((e3_dir / f"{workload}_telemetry.meta.json").read_text())
    t_pred, observed = pred["t"].to_numpy(float), pred["observed"].to_numpy(float)
    m = match_gpu(e3_dir / f"{workload}_telemetry.csv", t_pred, observed)
    t, p = m["data"]["t_s"].to_numpy(), m["data"]["power_w"].to_numpy()
    inrun = (t_pred >= t[0]) & (t_pred <= t[-1])
    s = one_hz_series(t, p, t_pred[inrun])
    y, ev = s["power_w"], s["eval"]
    if not np.allclose(y[ev], observed[inrun], rtol=0, atol=MATCH_ATOL_W):
        raise ValueError(f"{workload}: the rebuilt 1 Hz series differs from the observed column")

    rls = RlsAr(1, **rls_kwargs)
    ours = np.empty(len(y))
    for k, yk in enumerate(y):
        ours[k] = rls.predict()[0]
        rls.update(np.array([yk]))
    return {
        "workload": workload,
        "gpu_matched": m["gpu"],
        "gpu_meta": [g["index"] for g in meta.get("gpus", [])],
        "match_fraction": m["fraction"],
        "reader": m["report"].to_dict(),
        "run_span_s": (float(t[0]), float(t[-1])),
        "rows_total": int(len(pred)),
        "rows_excluded": [{"t": float(a), "observed": float(b)} for a, b in
                          zip(t_pred[~inrun], observed[~inrun])],
        "n_eval": int(len(ev)),
        "n_warmup_ticks": int(ev[0]),
        "tick_period_s": s["period_s"],
        "max_sample_age_s": s["max_age_s"],
        "paper_mae_w": PAPER_MAE_W[workload],
        "kit_metrics_mae_w": float(metrics["mae_w"]),
        "paper_recomputed_mae_w": float(np.mean(np.abs(pred["error"].to_numpy(float)[inrun]))),
        "persistence_mae_w": float(np.mean(np.abs(y[ev] - y[ev - 1]))),
        "rls_mae_w": float(np.mean(np.abs(y[ev] - ours[ev]))),
        "rls_coef_final": rls.coef[0].tolist(),
    }


def e3_details(data_dir: str | os.PathLike, **rls_kwargs) -> dict:
    """Per-workload numbers and provenance, ``data_dir`` = the ``v100_telemetry`` folder."""
    e3_dir = Path(data_dir) / "E3_outer_loop"
    return {w: evaluate_workload(e3_dir, w, **rls_kwargs) for w in WORKLOADS}


def _row(metric, paper, twin, tolerance, ok, unit="W", reference="paper §5.1", note=""):
    return {"experiment": "E3", "metric": metric, "paper": paper, "twin": twin,
            "tolerance": tolerance, "pass": ok, "unit": unit, "reference": reference, "note": note}


def e3_rows(data_dir: str | os.PathLike) -> list[dict]:
    """E3 rows; ``pass`` None = report only.

    Keys: experiment, metric, paper, twin, tolerance, pass (and unit, reference, note
    for the table). Pass rule: our MAE <= the paper's and <= persistence's (inference,
    matmul); <= the paper's recomputed on the in-run rows (bursty, whose published
    value includes an out-of-run row).
    """
    rows = []
    for w, d in e3_details(data_dir).items():
        n, name = d["n_eval"], _SHORT[w]
        excl = "; ".join(f"t = {r['t']:g} s ({r['observed']:g} W)" for r in d["rows_excluded"])
        span = f"run {d['run_span_s'][0]:.1f}-{d['run_span_s'][1]:.1f} s"
        rows.append(_row(f"{name}: GPU whose telemetry equals 'observed'", d["gpu_meta"][0] if d["gpu_meta"] else None,
                         d["gpu_matched"], "report", None, unit="", reference="meta.json's GPU index",
                         note=f"match fraction per GPU {d['match_fraction']}; reader skipped "
                              f"{sum(d['reader']['skipped'].values())} lines for this GPU"))
        rows.append(_row(f"{name}: MAE in the kit's metrics.json ({d['rows_total']} rows)", d["paper_mae_w"],
                         round(d["kit_metrics_mae_w"], 3), "report", None, reference="paper §5.1 vs kit file"))
        rows.append(_row(f"{name}: paper's MAE recomputed on its {n} in-run rows", d["paper_mae_w"],
                         round(d["paper_recomputed_mae_w"], 3), "report", None,
                         note=f"excluded (outside the {span}): {excl}" if excl else span))
        rows.append(_row(f"{name}: persistence MAE at the same {n} time stamps", None,
                         round(d["persistence_mae_w"], 3), "report", None, reference="",
                         note="y_hat[k] = y[k-1] on the 1 Hz series"))
        if w == "bursty_alternating":
            limit, tol = d["paper_recomputed_mae_w"], f"<= paper recomputed ({d['paper_recomputed_mae_w']:.2f} W)"
        else:
            limit = min(d["paper_mae_w"], d["persistence_mae_w"])
            tol = f"<= paper ({d['paper_mae_w']:.2f} W) and <= persistence ({d['persistence_mae_w']:.2f} W)"
        rows.append(_row(f"{name}: Tier-2 RLS AR(4) one-step MAE at the same {n} time stamps",
                         d["paper_mae_w"], round(d["rls_mae_w"], 3), tol, bool(d["rls_mae_w"] <= limit),
                         note=f"GPU {d['gpu_matched']} telemetry, ticks every {d['tick_period_s']:.4f} s, "
                              f"{d['n_warmup_ticks']} warm-up ticks before the first scored one"))
    rows.append(_row("utilisation one-step MAE", PAPER_UTIL_MAE, None,
                     "skipped: not an E3 number", None, unit="-", reference="paper §5.1, Fig. 4",
                     note="from the 24 h 100-host simulation; the V100 E3 runs predict board power"))
    return rows
