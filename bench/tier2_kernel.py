"""Time one Tier-2 tick (``RlsAr.update``) on the numpy and numba backends.

    .venv/bin/python bench/tier2_kernel.py [--n 100 980 10000] [--ticks 200] [--repeats 15]

Prints JSON: per series count the median over ``repeats`` of the mean wall time of one
``update`` (and one ``predict``) over ``ticks`` ticks of AR(4) data at watt scale, every
series past its warm-up; a warm-up of ``ticks`` ticks is run and not timed. JIT compile
time is reported apart: ``jit_compile_s`` compiles the kernels afresh (no disk cache),
``first_call_s`` is what the first numba model in this process paid (cache load or compile).
Timings are wall clock on a shared machine: compare them within one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np

from twin.control import tier2_ar
from twin.control.tier2_ar import RlsAr


def _series(n_series: int, n_ticks: int, seed: int) -> np.ndarray:
    """(n_ticks, n_series) AR(4) around 250-700 W, σ 20 W."""
    rng = np.random.default_rng(seed)
    phi = np.array([0.5, -0.3, 0.2, -0.1])
    mean_w = rng.uniform(250.0, 700.0, n_series)
    x = np.zeros((n_ticks + 4, n_series))
    for k in range(4, n_ticks + 4):
        x[k] = phi @ x[k - 4:k][::-1] + rng.normal(0.0, 20.0, n_series)
    return mean_w + x[4:]


def _us_per_call(fn, rows, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for row in rows:
            fn(row)
        times.append((time.perf_counter() - t0) / len(rows) * 1e6)
    return statistics.median(times)


def bench(n_series: int, ticks: int, repeats: int, backends=("numpy", "numba")) -> dict:
    y = _series(n_series, 2 * ticks, seed=n_series)
    out = {"n_series": n_series}
    for backend in backends:
        model = RlsAr(n_series, backend=backend)
        for row in y[:ticks]:                                 # warm-up (and JIT), not timed
            model.update(row)
        out[backend] = {
            "update": _us_per_call(model.update, y[ticks:], repeats),
            "predict": _us_per_call(lambda _row: model.predict(), y[ticks:], repeats)}
    res = {"n_series": n_series,
           "numpy_us_per_update": round(out["numpy"]["update"], 2),
           "kernel_us_per_update": round(out["numba"]["update"], 2),
           "speedup": round(out["numpy"]["update"] / out["numba"]["update"], 1),
           "numpy_us_per_predict": round(out["numpy"]["predict"], 2),
           "kernel_us_per_predict": round(out["numba"]["predict"], 2)}
    return res


def compile_times() -> dict:
    import numba

    t0 = time.perf_counter()
    RlsAr(4, backend="numba").update(np.ones(4))              # first use in this process
    first = time.perf_counter() - t0
    jit = numba.njit(cache=False, fastmath=False, error_model="numpy")
    tick, pred = jit(tier2_ar._tick_soa), jit(tier2_ar._predict_soa)
    m = RlsAr(4, backend="numba")
    t0 = time.perf_counter()
    tick(m._theta, m._p, m._lags, m._count, np.ones(4), 0, m.forgetting, 1.0 / m._prior_w,
         1.0, True, m._tri)
    pred(m._theta, m._lags, m._count, True)
    return {"jit_compile_s": round(time.perf_counter() - t0, 2), "first_call_s": round(first, 3),
            "numba": numba.__version__}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[100, 980, 10_000])
    ap.add_argument("--ticks", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    report = compile_times()
    report.update(numpy=np.__version__, python=platform.python_version(),
                  machine=platform.processor() or platform.machine(),
                  results=[bench(n, args.ticks, args.repeats) for n in args.n])
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
