"""The fleet's fast paths give the numbers of its reference (array) paths, bit for bit.

* :func:`twin.physics.gpu.class_power_throughput` (per-class constants built once by
  :func:`class_model`, no argument checks, one compute-phase power for both outputs)
  equals :func:`mean_board_power_w` and :func:`throughput_iter_per_s`.
* ``GpuFleet`` handles events and lag steps of at most ``loop_max`` cohorts as Python
  loops over floats: a fleet with ``loop_max = 0`` (arrays only, the reference) and one
  with a large ``loop_max`` (loops only) are driven through the same random events and
  must agree exactly in every state array and total.
* Once numba is loaded, a non-settled advance is one compiled kernel (``_advance_soa``)
  plus numpy's pairwise sums (Tier 2's ``_pairwise_sum``): a fleet on it is driven beside
  the numpy-only ones (``_adv_numba = False``) and must agree exactly too, both as built
  ahead of time (twin.aot) and by numba's JIT (``compiled_via``); its plain Python form
  (no numba) as well.
* The checked public functions keep their errors.

No timing here (issue 9's speed is measured by ``bench/``).
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from twin.control.plant import CapOutOfRangeError
from twin.facility import gpu_fleet
from twin.facility.gpu_fleet import GENERIC, GpuFleet
from twin.physics import _scalar
from twin.physics.gpu import (GPU_PROFILES, WORKLOADS, board_power_step, class_model, class_power_throughput,
                              junction_temp_step, load_gpu_fit, mean_board_power_w, throughput_iter_per_s)

RNG = np.random.default_rng(90)


@pytest.mark.parametrize("name", sorted(GPU_PROFILES))
@pytest.mark.parametrize("clock_frac", [1.0, 0.6, 0.2711])
def test_class_power_throughput_equals_the_checked_model(name, clock_frac):
    prof = GPU_PROFILES[name]
    fit = load_gpu_fit(prof.power_fit)
    clock = prof.max_sm_clock_mhz * clock_frac
    model = class_model(clock, fit, prof)
    cap = RNG.uniform(prof.min_limit_w, prof.max_limit_w, 3000)
    cap[:3] = [prof.min_limit_w, prof.max_limit_w, 0.5 * (prof.min_limit_w + prof.max_limit_w)]
    cap[3:6] = [1.0, 5000.0, 1e-3]  # far outside the fitted range
    wk = RNG.integers(0, len(WORKLOADS), cap.size)
    names = np.asarray(WORKLOADS)[wk]
    power, x = class_power_throughput(model, cap, wk)
    np.testing.assert_array_equal(power, mean_board_power_w(cap, clock, names, fit, prof))
    np.testing.assert_array_equal(x, throughput_iter_per_s(cap, clock, names, fit, prof))
    # elementwise: one at a time gives the same values as the batch
    for i in range(0, 60, 7):
        p1, x1 = class_power_throughput(model, cap[i:i + 1], wk[i:i + 1])
        assert (p1[0], x1[0]) == (power[i], x[i])


def test_class_power_throughput_with_a_zero_dynamic_power_class():
    fit = load_gpu_fit()
    from dataclasses import replace
    from types import MappingProxyType
    wl = dict(fit.workloads)
    wl["memory_bound"] = replace(wl["memory_bound"], p_dynamic_w=0.0)
    fit0 = replace(fit, workloads=MappingProxyType(wl))
    model = class_model(1200.0, fit0)
    assert model.quiet
    cap = np.array([150.0, 220.0, 300.0, 180.0])
    wk = np.array([0, 1, 2, 1])
    names = np.asarray(WORKLOADS)[wk]
    power, x = class_power_throughput(model, cap, wk)
    np.testing.assert_array_equal(power, mean_board_power_w(cap, 1200.0, names, fit0))
    np.testing.assert_array_equal(x, throughput_iter_per_s(cap, 1200.0, names, fit0))


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, np.array([1000.0, 1200.0])])
def test_class_model_rejects_bad_clocks(bad):
    with pytest.raises(ValueError, match="sm_clock_mhz"):
        class_model(bad)


def test_checked_functions_keep_their_errors():
    fit = load_gpu_fit()
    for bad in (0.0, -5.0, math.nan, np.float64(-1.0), np.array([200.0, 0.0]), [200.0, -1.0]):
        with pytest.raises(ValueError, match="cap_w"):
            mean_board_power_w(bad, 1000.0, "compute_bound", fit)
        with pytest.raises(ValueError, match="sm_clock_mhz"):
            throughput_iter_per_s(200.0, bad, "bursty", fit)
    with pytest.raises(ValueError, match=r"workload np.str_\('abc'\)"):
        mean_board_power_w(np.array([200.0, 210.0, 220.0]), 1000.0, np.array(["bursty", "xyz", "abc"]), fit)
    with pytest.raises(ValueError, match="workload 'nope'"):
        mean_board_power_w(200.0, 1000.0, "nope", fit)
    prof = GPU_PROFILES["V100-SXM2-32GB"]
    for dt in (-1.0, np.float64(-0.5), np.array([1.0, -1.0]), [0.5, -0.1]):
        with pytest.raises(ValueError, match="dt_s"):
            junction_temp_step(40.0, 200.0, 30.0, dt, 0.15, 20.0)
        with pytest.raises(ValueError, match="dt_s"):
            board_power_step(250.0, 150.0, dt, prof)
    for tau in (0.0, -1.0, math.nan, np.float64(0.0), np.array([1.0, 0.0])):
        with pytest.raises(ValueError, match="tau_s"):
            junction_temp_step(40.0, 200.0, 30.0, 1.0, 0.15, tau)
    # NaN intervals pass the check (np.any(nan < 0) is False) and give NaN, as before
    assert math.isnan(junction_temp_step(40.0, 200.0, 30.0, math.nan, 0.15, 20.0))
    # scalar and 0-d results keep numpy's scalar type
    assert isinstance(junction_temp_step(40.0, 200.0, 30.0, 1.0, 0.15, 20.0), np.float64)


def test_coefs_with_mixed_names_equal_per_name_values():
    fit = load_gpu_fit()
    names = np.array([["bursty", "compute_bound"], ["memory_bound", "bursty"]])
    cap = np.array([[160.0, 250.0], [300.0, 200.0]])
    out = mean_board_power_w(cap, 1100.0, names, fit)
    assert out.shape == (2, 2)
    for i in range(2):
        for j in range(2):
            assert out[i, j] == mean_board_power_w(cap[i, j], 1100.0, str(names[i, j]), fit)


@pytest.mark.parametrize("a", [0.0, -0.0, 1.5, -2.0, math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("b", [0.0, -0.0, 1.5, 3.0, -math.inf, math.nan])
def test_scalar_fmin_fmax_follow_numpy(a, b):
    for fast, ref in ((_scalar.fmax, np.maximum), (_scalar.fmin, np.minimum)):
        got, want = fast(a, b), float(ref(a, b))
        assert got == want or (math.isnan(got) and math.isnan(want))
        if got == 0.0 and a != b:
            assert math.copysign(1.0, got) == math.copysign(1.0, want)
    # equal values: the first argument, as max/min
    assert math.copysign(1.0, _scalar.fmax(-0.0, 0.0)) == -1.0
    assert math.copysign(1.0, _scalar.fmin(0.0, -0.0)) == 1.0


# --------------------------------------------------------------------------- fleet paths

STATE = ("power_w", "target_w", "temp_c", "cap_w", "class_power_w", "speed", "host_power_w", "_pending_w",
         "_pending_at_s", "_settled_cohort_w", "_is_moving", "_moving", "_temp_t_s", "_job_speed", "has_job")
TOTALS = ("gpu_energy_total_j", "host_energy_total_j", "work_node_s", "t_s", "host_power_total_w", "_work_rate",
          "_next_due_s", "_settled")


def _fleets(n, profile="V100-SXM2-16GB", hosts=None, gpus=None):
    """[arrays only (the reference), loops only, default split: all numpy; compiled advance]."""
    pytest.importorskip("numba")  # loaded: the last fleet takes the compiled advance
    prof = GPU_PROFILES[profile]
    out = []
    for loop_max, compiled in ((0, False), (10 ** 9, False), (GpuFleet.loop_max, False), (GpuFleet.loop_max, True)):
        f = GpuFleet(prof, gpu_count=np.full(n, 4) if gpus is None else gpus,
                     host_count=np.ones(n) if hosts is None else hosts,
                     cap_w=prof.max_limit_w * 0.9, host_idle_w=120.0, host_busy_w=410.0)
        f.loop_max = loop_max
        f._adv_numba = compiled
        out.append(f)
    return out


def _assert_same(fleets, state=STATE):
    """Every fleet's reads, ``state`` arrays and totals equal the first fleet's, bit for bit."""
    # the reads bring lazy state up to date: read every fleet before comparing
    reads = [(f.gpu_energy_j.copy(), f.host_energy_j.copy(), f.progress_s.copy(), f.junction_temp_c())
             for f in fleets]
    for r in reads[1:]:
        for a, b in zip(reads[0], r):
            np.testing.assert_array_equal(a, b)
    ref = fleets[0]
    for f in fleets[1:]:
        for k in state:
            a, b = getattr(ref, k), getattr(f, k)
            np.testing.assert_array_equal(a, b, err_msg=k)
        for k in TOTALS:
            a, b = getattr(ref, k), getattr(f, k)
            assert a == b or (math.isnan(a) and math.isnan(b)), k


def _drive(fleets, rng, steps=400):
    """The same random events (loads, caps, traces, advances, reads) on every fleet,
    comparing them as it goes."""
    n, prof = fleets[0].n_cohorts, fleets[0].profile
    t = 0.0
    for step in range(steps):
        kind = rng.random()
        t += float(rng.choice([0.0, 1e-3, 0.005, 0.05, 0.1101, 0.3, 1.0, 7.0]))
        size = min(int(rng.choice([1, 1, 2, 3, 5, 16, 17, 40, n])), n)
        cohorts = np.sort(rng.choice(n, size, replace=False))
        if kind < 0.35:
            util = float(rng.choice([0.0, 0.3, 0.75, 1.0]))
            host_util = float(rng.choice([0.0, 0.5, 1.0]))
            w = int(rng.integers(GENERIC, len(WORKLOADS)))
            for f in fleets:
                f.set_load(t, cohorts, util, host_util, w)
        elif kind < 0.7:
            caps = rng.uniform(prof.min_limit_w, prof.max_limit_w, size)
            if rng.random() < 0.3:
                caps = np.round(caps, -1).clip(prof.min_limit_w, prof.max_limit_w)  # repeated caps (cache)
            if rng.random() < 0.2:
                caps = float(caps[0])
            for f in fleets:
                f.set_cap(t, cohorts, caps)
        elif kind < 0.78:
            gpu_w = rng.uniform(0.0, prof.max_limit_w * 1.2, size)
            for f in fleets:
                f.set_trace_power(t, cohorts, gpu_w, 200.0)
        elif kind < 0.9:
            for f in fleets:
                f.advance_to(t)
        else:
            for f in fleets:
                _ = f.gpu_energy_j  # a read (flushes the lazy stretch)
                f.advance_to(t + 1e-4)
            t += 1e-4
        if step % 20 == 0 or kind > 0.9:
            _assert_same(fleets)
    for dt in (1e-3, 0.1, 1.0, 30.0):
        t += dt
        for f in fleets:
            f.advance_to(t)
    _assert_same(fleets)
    assert fleets[0]._settled
    assert fleets[-1]._adv_compiled is not None and all(f._adv_compiled is None for f in fleets[:-1])
    from twin import aot

    mod = aot.kernels()  # the AOT kernel where a build is in use (compiled_via), else numba's
    kernel = mod.fleet_advance if mod is not None else gpu_fleet._advance_kernels()[0]
    assert fleets[-1]._adv_compiled[0] is kernel


@pytest.mark.parametrize("seed", range(4))
def test_loop_and_array_paths_agree_on_random_events(seed, compiled_via):
    rng = np.random.default_rng(seed)
    n = 60
    hosts = rng.integers(1, 3, n).astype(float) if seed % 2 else None
    _drive(_fleets(n, profile=("V100-SXM2-16GB", "H100-SXM")[seed % 2], hosts=hosts), rng)


@pytest.mark.parametrize("seed", range(3))
def test_compiled_advance_agrees_with_odd_gpu_counts_and_large_fleets(seed, compiled_via):
    # GPU counts that are not powers of two ((target x dt) x n is not (target x n) x dt),
    # and fleets long enough for several pairwise-summation blocks (and one past numpy's
    # 8192-element buffer)
    rng = np.random.default_rng(100 + seed)
    n = (7, 1000, 9000)[seed]
    gpus = rng.choice([1.0, 3.0, 4.0, 6.0, 8.0, 0.5], n)
    hosts = rng.integers(1, 4, n).astype(float)
    _drive(_fleets(n, profile=("H100-SXM", "V100-SXM2-16GB", "V100-SXM2-16GB")[seed], hosts=hosts, gpus=gpus), rng,
           steps=(400, 200, 60)[seed])


def test_compiled_advance_python_form_and_numba_gate(monkeypatch):
    """The kernel's plain Python form gives the same numbers (it is the numba source), and
    the fleet stays on numpy while numba is not loaded."""
    pytest.importorskip("numba")
    from twin import aot
    from twin.control.tier2_ar import _pairwise_sum
    monkeypatch.setattr(aot, "kernels", lambda: None)  # no AOT build: the JIT's (here: plain) kernels
    monkeypatch.setattr(gpu_fleet, "_advance_kernels", lambda: (gpu_fleet._advance_soa, _pairwise_sum))
    rng = np.random.default_rng(7)
    fleets = _fleets(40, gpus=rng.choice([2.0, 3.0, 4.0], 40))
    _drive(fleets, rng, steps=120)
    assert fleets[-1]._adv_compiled[0] is gpu_fleet._advance_soa
    prof = GPU_PROFILES["V100-SXM2-16GB"]
    monkeypatch.delitem(sys.modules, "numba")
    f = GpuFleet(prof, gpu_count=np.full(5, 4), host_count=np.ones(5), cap_w=prof.max_limit_w, host_idle_w=120.0,
                 host_busy_w=410.0)
    f.set_load(0.0, [0, 1], 0.9, 0.5, 0)
    f.advance_to(0.5)
    assert f._adv_compiled is None  # numpy path (numba is not imported by the fleet)


def test_loop_path_ties_and_edge_values():
    fleets = _fleets(8)
    prof = fleets[0].profile
    for f in fleets:
        f.set_load(0.0, [0, 1, 2], 1.0, 1.0, 0)  # demand above the cap
        f.set_load(0.0, [3], 0.0, 0.0, 1)  # a class with util 0: target idle, no job
        f.set_cap(0.05, [0], prof.max_limit_w)  # at the limit
        f.set_cap(0.05, [1], prof.min_limit_w)
        f.set_cap(0.06, np.array([2, 2]), prof.min_limit_w)  # duplicate cohorts
        f.set_trace_power(0.07, [4], 0.0, 0.0)  # zero trace power
        f.set_load(0.08, [4], 0.5, 0.5, GENERIC)
    _assert_same(fleets)
    for t in (0.1, 0.1101, 0.2, 0.3, 5.0, 100.0):
        for f in fleets:
            f.advance_to(t)
        _assert_same(fleets)


def test_set_cap_errors_leave_the_fleet_unchanged():
    fleets = _fleets(5)
    prof = fleets[0].profile
    for f in fleets:
        f.set_load(0.0, [0, 1], 0.8, 0.5, 2)
        before = (f.t_s, f.cap_w.copy(), f.target_w.copy())
        for cohorts, caps in (([0], prof.max_limit_w + 1.0), ([0, 1], [200.0, prof.min_limit_w - 1.0]),
                              ([1], math.nan), (np.array([True, False, False, False, False]), 1.0)):
            with pytest.raises(CapOutOfRangeError):
                f.set_cap(1.0, cohorts, caps)
        assert f.t_s == before[0]
        np.testing.assert_array_equal(f.cap_w, before[1])
        np.testing.assert_array_equal(f.target_w, before[2])
        with pytest.raises(IndexError):
            f.set_cap(1.0, [7], 200.0)
        # a list and a scalar cohort still work (the plant protocol's general check)
        f.set_cap(1.0, [0, 2], 200.0)
        f.set_cap(1.0, 3, 210.0)
        np.testing.assert_array_equal(f.cap_w[[0, 2, 3]], [200.0, 200.0, 210.0])
    _assert_same(fleets)


def test_compiled_flush_of_many_lazy_intervals_equals_numpys(compiled_via):
    """A settled fleet advanced in many small steps (a block's lazy intervals) and then read:
    the compiled flush (_flush_soa, AOT or JIT) against numpy's loop, bit for bit, with
    intervals of odd lengths (0.1 s sub-ticks, event times) and several flush sizes."""
    prof = GPU_PROFILES["V100-SXM2-16GB"]
    rng = np.random.default_rng(12)
    n = 37
    fleets = []
    for compiled in (False, True):
        f = GpuFleet(prof, gpu_count=rng.choice([1.0, 3.0, 4.0], n) if not fleets else fleets[0].gpu_count,
                     host_count=np.ones(n), cap_w=prof.max_limit_w * 0.8, host_idle_w=120.0, host_busy_w=410.0)
        f._adv_numba = compiled
        f.set_load(0.0, np.arange(n), 0.7, 0.5, 1)
        fleets.append(f)
    t = 0.0
    for steps in (3, 9, 40, 1000, 8, 2500):
        for _ in range(steps):
            t += float(rng.choice([0.1, 0.1, 1.0, 0.0137, 7.0]))
            for f in fleets:
                f.advance_to(t)
        reads = [(f.gpu_energy_j.copy(), f.host_energy_j.copy(), f.progress_s.copy()) for f in fleets]
        for a, b in zip(*reads):
            np.testing.assert_array_equal(a, b)
    from twin import aot
    mod = aot.kernels()
    assert fleets[0]._flush_kernel is None
    assert fleets[1]._flush_kernel is (mod.fleet_flush if mod is not None else gpu_fleet._flush_kernel_jit())
