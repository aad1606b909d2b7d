"""The ahead-of-time built kernels (twin.aot): used only when fresh, never fed arguments of
types they were not compiled for, and giving the JIT's results bit for bit.

Kernel-level equality with the numpy references runs in the kernels' own tests on both
ways to the compiled code (the ``compiled_via`` fixture and ``backend`` in
test_tier2_ar.py); here: the freshness rules, the argument checks, the fall-back to numba's
dispatcher for arguments that do not fit, and a whole engine run both ways.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, aot_or_skip

from twin import aot
from twin.control.tier2_ar import HostPowerPredictor, RlsAr
from twin.scenario import parse_scenario
from twin.sim.engine import Engine
from twin.sim.metrics import summarise

# ------------------------------------------------------------------ freshness


def _fake_build(where, **override):
    info = dict(aot.source_key(), numba="0", built_s=0.0, module="_aot_kernels.fake.so")
    info.update(override)
    (where / aot.STAMP).write_text(json.dumps(info))
    return info


def test_no_stamp_means_not_built(tmp_path):
    mod, why = aot.load_from(tmp_path, "twin._aot_test_none")
    assert mod is None and "not built" in why and str(tmp_path) in why and "make kernels" in why


def test_an_unreadable_stamp_is_named(tmp_path):
    (tmp_path / aot.STAMP).write_text("{not json")
    mod, why = aot.load_from(tmp_path, "twin._aot_test_bad")
    assert mod is None and "unreadable stamp" in why and aot.STAMP in why


@pytest.mark.parametrize("key", ["sources_sha256", "python", "numpy", "cpu"])
def test_a_stale_build_is_not_used_and_says_what_changed(tmp_path, key):
    _fake_build(tmp_path, **{key: "something else"})
    mod, why = aot.load_from(tmp_path, "twin._aot_test_stale")
    assert mod is None and why.startswith("stale build") and key in why
    assert "twin._aot_test_stale" not in sys.modules


def test_a_fresh_stamp_without_a_module_does_not_import(tmp_path):
    _fake_build(tmp_path)   # names a file that is not there
    mod, why = aot.load_from(tmp_path, "twin._aot_test_missing")
    assert mod is None and "does not import" in why


def test_source_key_follows_the_kernel_sources(tmp_path):
    for rel in aot.SOURCES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes((aot._package_dir() / rel).read_bytes())
    assert aot.source_key(tmp_path) == aot.source_key()
    with open(tmp_path / "control/tier2_ar.py", "a") as f:
        f.write("\n# a change\n")
    assert aot.source_key(tmp_path)["sources_sha256"] != aot.source_key()["sources_sha256"]


def test_status_says_which_path_runs():
    s = aot.status()
    assert s.startswith(("aot: ", "jit: "))
    assert s.startswith("aot: ") == (aot.kernels() is not None)


# ------------------------------------------------------------------ argument checks


def _tier2_args(n=6):
    f, i = np.zeros((5, n)), np.zeros(n, dtype=np.int64)
    ro = np.ones(n)
    ro.flags.writeable = False
    return [f, np.zeros((15, n)), np.zeros((4, n)), i, 0, 0.98, 1.0, np.zeros(5), True,
            np.zeros((5, 5), dtype=np.int64), np.zeros(15), np.zeros(n), np.zeros(n), np.zeros(n), 1.0, ro, ro, ro,
            np.zeros(n, dtype=bool), np.zeros(n), np.zeros(n), True, np.zeros(3)]


def test_args_fit_takes_exactly_the_compiled_types():
    args = _tier2_args()
    assert aot.args_fit("power_tick", args)
    bad = {
        "float32 array": (11, np.zeros(6, dtype=np.float32)),
        "strided array for a contiguous one": (11, np.zeros(12)[::2]),
        "read-only array for a written one": (19, args[15]),
        "2-d array for a 1-d one": (11, np.zeros((6, 1))),
        "int64 for bool": (18, np.zeros(6, dtype=np.int64)),
        "list for an array": (11, [0.0] * 6),
        "array for a scalar": (4, np.int64(0) * np.ones(1, dtype=np.int64)),
        "float for an int": (4, 0.5),
        "int for a bool": (8, 1),
        "byte-swapped float64": (11, np.zeros(6, dtype=">f8")),
        "a subclass": (11, np.ma.zeros(6)),
    }
    for what, (i, v) in bad.items():
        a = list(args)
        a[i] = v
        assert not aot.args_fit("power_tick", a), what
    assert not aot.args_fit("power_tick", args[:-1])  # a missing argument
    # read-only inputs may be given writable arrays; "A" (any-stride) parameters take strides
    a = list(args)
    a[15] = np.ones(6)
    assert aot.args_fit("power_tick", a)
    ro = np.zeros(20)[::2]
    ro.flags.writeable = False
    t1 = [ro, np.zeros(10, dtype=bool), True] + [ro] * 10 + [False, np.zeros(10), True, np.zeros(10), np.zeros(10),
                                                               np.zeros(10, dtype=np.int64), 3, np.zeros(10, bool),
                                                               ro, np.zeros((8, 10))]
    assert aot.args_fit("tier1_tick", t1)


def test_a_period_whose_arrays_do_not_fit_takes_numbas_dispatcher(monkeypatch):
    """Strided energy arrays (the AOT kernel is compiled for contiguous ones): numba's
    dispatcher runs the period, with the same results as contiguous arrays on the AOT path."""
    mod = aot_or_skip()
    rng = np.random.default_rng(4)
    n = 23
    a, b = (HostPowerPredictor(RlsAr(n, backend="numba"), np.ones(n), 500.0, 2000.0, 1.0) for _ in range(2))
    e = rng.uniform(0.0, 1e4, n)
    a.start(e)
    b.start(e)
    ra, rb = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    big_g, big_h = np.zeros(2 * n), np.zeros(2 * n)
    for k in range(40):
        g = e + rng.uniform(800.0, 1800.0, n) * (k + 1)
        big_g[::2], big_h[::2] = g, 0.0
        sa = a.step(g.copy(), np.zeros(n), ra, k > 1)
        sb = b.step(big_g[::2], big_h[::2], rb, k > 1)
        assert sa == sb
        np.testing.assert_array_equal(a.pred_w, b.pred_w)
    assert a._call is mod.power_tick
    assert b._call is not mod.power_tick and b._call is not None   # numba's compiled overload


# ------------------------------------------------------------------ whole runs

RUN = {
    "name": "aot", "start": "2025-07-15T00:00:00Z", "duration_h": 1.0, "base_tick_s": 1.0, "seed": 3,
    "facility": {"nodes": 16, "gpus_per_node": 4, "gpu_model": "V100-SXM2-16GB", "host_idle_w": 300.0,
                 "host_busy_w": 650.0},
    "cooling": {"model": "paper_eq4"}, "weather": {"model": "climate", "site": "IT"},
    "workload": {"source": "synthetic", "offered_load": 0.8, "warmup_h": 1.0},
    "grid": {"country": "IT", "carbon_source": "synthetic"},
    "frequency": {"source": "synthetic", "ffr_dips": 2},
    "control": {"tier2": "rls_ar", "ffr_gpu": "island", "tier1": "pid"},
    "outputs": {"overview_png": False},
}


def _run(folder):
    folder.mkdir()
    eng = Engine(parse_scenario(json.loads(json.dumps(RUN)), "aot.toml"), folder)
    eng.run()
    summary = summarise(eng, wall_s=1.0, peak_rss_mb=0.0, version="test")
    frames = {f: pd.read_parquet(folder / f) for f in ("timeseries.parquet", "ffr_windows.parquet")}
    return eng, summary, frames


def test_a_run_on_the_aot_kernels_equals_one_on_numbas_jit(tmp_path, monkeypatch):
    """Tier 2 every second with blocks, the island and Tier 1 in two FFR windows: every
    series and summary number identical (tolerance 0) with the AOT kernels and with the JIT."""
    aot_or_skip()
    eng_a, sum_a, fr_a = _run(tmp_path / "aot")
    assert eng_a.control.tier1.ticks > 0 and eng_a.blocks > 0
    monkeypatch.setattr(aot, "kernels", lambda: None)
    pytest.importorskip("numba")
    _, sum_j, fr_j = _run(tmp_path / "jit")
    assert json.dumps(sum_a, sort_keys=True, default=str) == json.dumps(sum_j, sort_keys=True, default=str)
    for f in fr_a:
        pd.testing.assert_frame_equal(fr_a[f], fr_j[f], check_exact=True)


def test_a_run_on_the_aot_kernels_does_not_import_numba(tmp_path):
    """What the build is for: a controlled run without numba's start-up (a fresh process)."""
    aot_or_skip()
    code = ("import json, sys; from pathlib import Path; from twin.scenario import parse_scenario; "
            "from twin.sim.engine import Engine; "
            f"e = Engine(parse_scenario(json.loads({json.dumps(json.dumps(RUN))}), 'aot.toml'), Path({str(tmp_path)!r})); "
            "e.run(); print(e.control.tier1.ticks, e.control.tier2.backend, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    ticks, backend, numba_loaded = out.stdout.split()
    assert int(ticks) > 0 and backend == "numba" and numba_loaded == "False"


@pytest.mark.slow
def test_build_into_a_folder_and_load_it(tmp_path):
    """``python -m twin.aot build --out DIR`` compiles the kernels and writes a fresh stamp
    (~10-20 s); the module loads from there and its pairwise sum is numpy's."""
    pytest.importorskip("numba")
    out = subprocess.run([sys.executable, "-m", "twin.aot", "build", "--out", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "built" in out.stdout
    mod, why = aot.load_from(tmp_path, "gt_test_build._aot_kernels")  # (PyInit__aot_kernels)
    assert mod is not None, why
    x = np.random.default_rng(1).normal(size=1031)
    assert mod.pairwise_sum(x) == np.add.reduce(x)


def test_cli_help_and_status():
    out = subprocess.run([sys.executable, "-m", "twin.aot", "--help"], cwd=REPO, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0 and "build" in out.stdout and "status" in out.stdout
    out = subprocess.run([sys.executable, "-m", "twin.aot", "status"], cwd=REPO, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0 and out.stdout.startswith(("aot: ", "jit: "))
    out = subprocess.run([sys.executable, "-m", "twin.aot", "nope"], cwd=REPO, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_gridtwin_run_says_when_the_jit_ran_instead(tmp_path):
    """GRIDTWIN_AOT=0 hides the build: a controlled run then compiles with numba's JIT and
    `gridtwin run` says so, and why, under its summary (same results either way)."""
    pytest.importorskip("numba")
    sc = tmp_path / "aot.toml"
    raw = dict(RUN, duration_h=0.25, workload=dict(RUN["workload"], warmup_h=0.25),
               frequency={"source": "synthetic", "ffr_dips": 1})
    lines = []   # the scenario as TOML: top-level keys, then one table per section
    for k, v in raw.items():
        if not isinstance(v, dict):
            lines.append(f"{k} = {json.dumps(v)}")
    for k, v in raw.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{kk} = {json.dumps(vv)}" for kk, vv in v.items()]
    sc.write_text("\n".join(lines) + "\n")
    cmd = [sys.executable, "-m", "twin.cli", "run", str(sc), "--out", str(tmp_path / "res"), "--no-progress"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
                         env=dict(os.environ, GRIDTWIN_AOT="0"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "compiled kernels: numba's JIT" in out.stdout and "disabled by GRIDTWIN_AOT=0" in out.stdout
    if aot.kernels() is not None:   # with the build: no such line
        out = subprocess.run(cmd + ["--force"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
        assert out.returncode == 0 and "compiled kernels" not in out.stdout
