"""Tier 1's compiled tick (``Tier1Controller(backend="numba")``, :func:`_tick_soa`) against the
numpy tick, its reference, bit for bit (tolerance 0: NaN payloads and signed zeros included),
as built ahead of time (twin.aot) and by numba's JIT (the ``compiled_via`` fixture).

Each case puts both controllers in the same inner state (PID state, caps in force, settle
references and counts, upper cap limit) and runs :meth:`Tier1Controller._tick` on the same
reading: random states, and states drawn from a pool of edge values (NaN, ±inf, ±0, values
on the clamps and the limits, ``integral_limit_w = 0``), so that the min/max/clip ties and NaN
propagation of numpy's ufuncs are exercised. Whole runs are compared in test_tier1_fast.py.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import replace

import numpy as np
import pytest
import simpy
from test_tier1_fast import random_state

from twin.control.tier1_pid import PidParams, PidState, Tier1Controller

pytest.importorskip("numba")

P = PidParams()
PARAMS = [P, PidParams(eta_ff=1.0), PidParams(kd=0.002, kp_down=0.3), PidParams(integral_limit_w=0.0),
          PidParams(model_rise_delay_s=0.0), PidParams(write_deadband_w=0.0, settle_samples=1)]
EDGE = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 25.0, -25.0, 100.0, 200.0, 300.0, 1e-10, 245.0, 250.0])


def bits(a):
    a = np.asarray(a)
    return a.view(np.uint64) if a.dtype == np.float64 else a


def assert_same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(bits(a), bits(b))


class StubPlant:
    """A plant whose reading is set by the test; records the cap writes."""

    def __init__(self, n):
        self.n_cohorts, self.y, self.calls = n, np.zeros(n), []

    def power_limits_w(self):
        return np.full(self.n_cohorts, 100.0), np.full(self.n_cohorts, 300.0)

    def read_power_w(self):
        return self.y.copy()

    def read_power_cap_w(self):
        return np.full(self.n_cohorts, 300.0)

    def set_power_cap_w(self, cohorts, cap_w):
        self.calls.append((np.array(cohorts), np.array(cap_w, dtype=float)))


def controller(n, params, backend):
    ctl = Tier1Controller(simpy.Environment(), StubPlant(n), params, backend=backend)
    assert ctl.backend == backend
    return ctl


def reading(ctl, y, hi_w):
    """A stand-in for ``ctl._measure``: the reading ``y``, the upper cap limit ``hi_w`` (no thermal model)."""

    def measure():
        ctl._hi_w = hi_w
        return np.array(y)

    return measure


def load(ctl, inner, y, hi_w):
    """Put ``inner`` (copies) into ``ctl``; its next reading is ``y``, its upper limit ``hi_w``."""
    sp, state, cap_w, ref_w, ref_cap_w, count, lo_w, same_sp, cap_ok = inner
    ctl.wake(sp)
    ctl.awake = True
    copy = [None if a is None else np.array(a) for a in (state.integral_w, state.prev_error_w, state.model_w,
                                                         state.force_w, state.pending_w, state.pending_s)]
    ctl.state = PidState(*copy, ctl.setpoint_w if same_sp else np.array(state.setpoint_w))
    ctl._cap_w, ctl._ref_w, ctl._ref_cap_w = np.array(cap_w), np.array(ref_w), np.array(ref_cap_w)
    ctl._count[:] = count
    ctl.min_w = np.array(lo_w)
    hi = np.array(hi_w)
    ctl._measure = reading(ctl, y, hi)
    ctl._cap_ok_hi = hi if cap_ok else None


def assert_same_tick(a, b, done_a, done_b):
    assert done_a == done_b
    for name in ("integral_w", "prev_error_w", "model_w", "force_w", "pending_w", "pending_s", "setpoint_w"):
        assert_same(getattr(a.state, name), getattr(b.state, name))
    for name in ("_cap_w", "_ref_w", "_ref_cap_w", "_count"):
        assert_same(getattr(a, name), getattr(b, name))
    assert (a._cap_ok_hi is a._hi_w) == (b._cap_ok_hi is b._hi_w)
    assert (a.writes, a.cohort_writes, a.ticks) == (b.writes, b.cohort_writes, b.ticks)
    assert len(a.plant.calls) == len(b.plant.calls)
    for (i1, c1), (i2, c2) in zip(a.plant.calls, b.plant.calls):
        assert_same(i1, i2)
        assert_same(c1, c2)


def run_ticks(params, inner, readings, his):
    """The same ticks on both backends, compared after each."""
    n = np.size(inner[0])
    a, b = controller(n, params, "numba"), controller(n, params, "numpy")
    load(a, inner, readings[0], his[0])
    load(b, inner, readings[0], his[0])
    for k, (y, hi) in enumerate(zip(readings, his)):
        if k:  # the next reading on the state just computed (the controller's chain)
            a._measure, b._measure = reading(a, y, hi), reading(b, y, hi)
        assert_same_tick(a, b, a._tick(), b._tick())
        assert a._kstate is a.state  # (the compiled tick ran)
    from twin import aot
    assert (a._aot is not None) == (aot.kernels() is not None)  # the AOT kernel where built (compiled_via)


def random_inner(rng, n, first_frac, nan_frac):
    state = random_state(rng, n, first_frac)   # (the same draws, in the same order, as before)
    model, sp_old = state.model_w, state.setpoint_w
    sp = np.where(rng.random(n) < 0.5, sp_old, rng.uniform(150.0, 300.0, n))
    sp[rng.random(n) < nan_frac] = np.nan
    cap_w = np.where(rng.random(n) < 0.5, rng.uniform(100.0, 310.0, n), 300.0)
    ref_w = np.where(rng.random(n) < 0.3, np.nan, model + rng.normal(0.0, 2.0, n))
    ref_cap_w = np.where(rng.random(n) < 0.3, np.nan, cap_w + rng.normal(0.0, 1.0, n))
    count = rng.integers(0, 12, n)
    same_sp = nan_frac == 0 and rng.random() < 0.5
    return (sp, state, cap_w, ref_w, ref_cap_w, count, np.full(n, 100.0), same_sp, rng.random() < 0.5)


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("first_frac", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("nan_frac", [0.0, 0.3])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the inf previous setpoints, on both sides
def test_compiled_tick_equals_numpy_on_random_states(params, first_frac, nan_frac, compiled_via):
    rng = np.random.default_rng(17)
    for n in (1, 5, 100, 980):
        for _ in range(4):
            inner = random_inner(rng, n, first_frac, nan_frac)
            if inner[7]:  # the setpoints unchanged (the same array): no step down
                inner = (inner[0], replace(inner[1], setpoint_w=inner[0])) + inner[2:]
            y0 = inner[1].model_w + rng.normal(0.0, 3.0, n)
            readings = [y0 + rng.normal(0.0, 2.0, n) * k for k in range(4)]
            his = [np.where(rng.random(n) < 0.2, 200.0, 300.0) for _ in range(4)]  # some at the fallback
            run_ticks(params, inner, readings, his)


@pytest.mark.parametrize("params", PARAMS + [PidParams(ki=0.0, kp=0.0, eta_ff=1.0)])  # (ki = 0: trial = I, ties)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN and inf inputs, on both sides
def test_compiled_tick_equals_numpy_on_edge_values(params, compiled_via):
    """Every input drawn from EDGE: NaN, ±inf, ±0, the clamp (±25), the limits (100, 200,
    300): ties at np.maximum/np.minimum/clip, NaN propagation, the kernel's every branch."""
    rng = np.random.default_rng(23)
    n = 64

    def pick():
        return rng.choice(EDGE, n)

    for _ in range(150):
        state = PidState(pick(), pick(), pick(), pick(), pick(), np.where(rng.random(n) < 0.5, 0.0, pick()), pick())
        sp = pick()
        lo = rng.choice(EDGE, n)
        inner = (sp, state, pick(), pick(), pick(), rng.integers(0, 12, n), lo, rng.random() < 0.3, rng.random() < 0.5)
        if inner[7] and np.isnan(sp).any():
            sp[np.isnan(sp)] = 250.0  # the same array: every cohort controlled
        run_ticks(params, inner, [pick() for _ in range(3)], [pick() for _ in range(3)])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_compiled_tick_signed_zeros_at_the_clamps(compiled_via):
    """integral_limit_w = 0 and zero limits: the clamp and the clips meet ±0 on both sides."""
    z = np.array([0.0, -0.0, 0.0, -0.0, 0.0, -0.0, 0.0, -0.0])
    state = PidState(np.array([0.0, -0.0, -0.0, 0.0, 0.0, -0.0, 0.0, -0.0]), z.copy(), z.copy(), z.copy(),
                     np.full(8, np.nan), np.zeros(8), np.array([0.0, -0.0, 1.0, 1.0, 0.0, -0.0, 1.0, 1.0]))
    sp = np.array([0.0, -0.0, 0.0, -0.0, 1e-300, -1e-300, 0.0, -0.0])
    limits = ((z, z), (-z, z), (z, -z), (np.zeros(8), np.zeros(8)))
    params_zero = (PidParams(integral_limit_w=0.0, kp=0.0, eta_ff=1.0),
                   PidParams(integral_limit_w=0.0, kp=0.0, ki=0.0, eta_ff=1.0))
    for (lo, hi), params in itertools.product(limits, params_zero):
        for same_sp in (False, True):
            inner = (sp, replace(state, setpoint_w=sp) if same_sp else state, z.copy(), z.copy(), -z, np.zeros(8, np.int64),
                     lo, same_sp, False)
            run_ticks(params, inner, [-z, z, -z], [hi, hi, hi])


def test_backends():
    env = simpy.Environment()
    with pytest.raises(ValueError):
        Tier1Controller(env, StubPlant(2), P, backend="cuda")
    assert Tier1Controller(env, StubPlant(2), P, backend="numpy").backend == "numpy"
    assert Tier1Controller(env, StubPlant(2), P, backend="numba").backend == "numba"
    import numba  # noqa: F401  ("auto": numba once the process has imported it)

    assert "numba" in sys.modules and Tier1Controller(env, StubPlant(2), P).backend == "numba"


def test_compiled_tick_falls_back_on_a_state_it_does_not_take(compiled_via):
    """A state without a lag model (the first tick ever) or of other shapes: the numpy tick."""
    a, b = controller(3, P, "numba"), controller(3, P, "numpy")
    for ctl in (a, b):
        ctl.wake([200.0, np.nan, 250.0])
        ctl._measure = reading(ctl, [190.0, 210.0, 260.0], ctl.max_w)
    assert_same_tick(a, b, a._tick(), b._tick())  # PidState.zeros: no model, numpy on both
    assert a._kstate is None
    assert_same_tick(a, b, a._tick(), b._tick())  # now compiled
    assert a._kstate is a.state
