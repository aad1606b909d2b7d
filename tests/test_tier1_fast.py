"""Tier 1's per-call fast paths against the reference code they replaced, bit for bit.

The reference below is the Tier-1 law and controller as written before the per-call trims
(ufunc/ndarray methods instead of the fromnumeric wrappers, masks computed once per
setpoint, np.where skipped where a mask is all True or all False, the junction estimate's
T_ss kept from the last reading, no log where no threshold is crossed). Every comparison is
exact (tolerance 0: the same bits, NaN payloads and signed zeros included), on random and
edge-case inputs and on whole controller runs.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import simpy

from twin.control.fake import FakeGpuPlant, SampleHoldPlant
from twin.control.tier1_pid import (
    PidParams,
    PidState,
    Tier1Controller,
    lag_model_step,
    pid_step,
    thermal_max_w,
    time_to_temp_s,
)
from twin.physics.gpu import junction_temp_step

P = PidParams()


# ----------------------------------------------------------------------------- reference


def ref_lag_model_step(model_w, force_w, pending_w, pending_s, command_w, params):
    ts = params.tick_s
    v = np.asarray(command_w, dtype=float)
    force_w = np.where(v < force_w, v, force_w)
    rising = v > force_w + params.write_deadband_w
    pending_s = np.where(rising, np.where(pending_s > 0, pending_s, params.model_rise_delay_s), 0.0) - ts
    pending_w = np.where(rising, v, np.nan)
    due = rising & (pending_s <= 1e-9)
    force_w = np.where(due, v, force_w)
    pending_s = np.where(rising & ~due, pending_s, 0.0)
    tau = np.where(force_w < model_w, params.model_tau_down_s, params.model_tau_up_s)
    model_w = force_w + (model_w - force_w) * np.exp(-ts / tau)
    return model_w, force_w, pending_w, pending_s


def ref_model_at_rest(state, params):
    if state.model_w is None:
        return np.ones(np.shape(state.integral_w), dtype=bool)
    return (state.pending_s <= 0) & (np.abs(state.model_w - state.force_w) <= params.write_deadband_w)


def ref_pid_step(state, setpoint_w, measured_w, min_w, max_w, params):
    r = np.asarray(setpoint_w, dtype=float)
    y = np.asarray(measured_w, dtype=float)
    e = r - y
    ts, eta, band = params.tick_s, params.eta_ff, params.write_deadband_w
    first = np.isnan(state.prev_error_w)
    d = np.where(first, 0.0, params.kd * (e - state.prev_error_w) / ts)
    base = r / eta + np.where(e > 0, params.kp, params.kp_down) * e + d
    if state.model_w is None:
        model = (np.broadcast_to(y, r.shape).astype(float),) * 2 + (np.full(r.shape, np.nan), np.zeros(r.shape))
    else:
        force_w = np.where(first & (state.pending_s > 0), state.pending_w, state.force_w)
        model = (np.where(first, force_w, state.model_w), force_w, state.pending_w,
                 np.where(first, 0.0, state.pending_s))
    integral = state.integral_w
    if state.setpoint_w is not None:
        r_old = np.where(state.setpoint_w > 0, state.setpoint_w, np.nan)
        integral = np.where(np.isfinite(r_old), integral * r / r_old, integral)
        integral = np.where(r < r_old, np.minimum(integral, 0.0), integral)
    command_w = eta * (np.clip(base + integral, min_w, max_w) - integral)
    quiet = ref_model_at_rest(PidState(integral, e, *model), params) & (np.abs(command_w - model[1]) <= band)
    trial = integral + params.ki * ts * e
    trial = np.where(e > 0, np.minimum(trial, np.maximum(integral, max_w - base)),
                     np.maximum(trial, np.minimum(integral, min_w - base)))
    lim = params.integral_limit_w
    integral = np.clip(np.where(quiet, trial, integral), -lim, lim)
    cap = np.clip(base + integral, min_w, max_w)
    model = ref_lag_model_step(*model, eta * (cap - integral), params)
    return PidState(integral, e, *model, r), cap


def ref_time_to_temp_s(temp_c, power_w, threshold_c, params):
    t0 = np.asarray(temp_c, dtype=float)
    t_ss = params.ambient_c + params.r_th_k_per_w * np.asarray(power_w, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (t0 - t_ss) / (threshold_c - t_ss)
        t = params.tau_th_s * np.log(ratio)
    crosses = (t_ss - threshold_c) * (threshold_c - t0) >= 0
    return np.where(crosses & (t_ss != threshold_c), np.maximum(np.nan_to_num(t, nan=0.0), 0.0), np.inf)


class RefController(Tier1Controller):
    """:class:`Tier1Controller` with the reference process (the public interface is the same)."""

    def wake(self, setpoint_w) -> None:
        self.setpoint_w = np.broadcast_to(np.asarray(setpoint_w, dtype=float), self.setpoint_w.shape).copy()
        self._count[:] = 0
        self._ref_w[:] = np.nan
        self._ref_cap_w[:] = np.nan
        if not self.awake and not self._wake_event.triggered:
            self._wake_event.succeed()

    def _run(self):
        p = self.params
        while True:
            waits = [self._wake_event]
            watch_s = p.watch_period_s if np.any(~np.isnan(self.setpoint_w)) else math.inf
            timeout_s = min(watch_s, self._thermal_timer_s())
            if math.isfinite(timeout_s):
                waits.append(self.env.timeout(timeout_s))
            yield self.env.any_of(waits)
            if not self._wake_event.triggered and not self._watch():
                continue
            self._wake_event = self.env.event()
            self.awake = True
            self.windows += 1
            self._cap_w = np.asarray(self.plant.read_power_cap_w(), dtype=float)
            self._count[:] = 0
            self._ref_w[:] = np.nan
            self._ref_cap_w[:] = np.nan
            self.state = replace(self.state, prev_error_w=np.full(self.state.integral_w.shape, np.nan))
            while not self._tick():
                yield self.env.timeout(p.tick_s)
            self.awake = False

    def _measure(self):
        t, y = self.env.now, np.asarray(self.plant.read_power_w(), dtype=float)
        p = self.params
        if self._t_meas is None:
            if self.temp_c is None:
                self.temp_c = p.ambient_c + p.r_th_k_per_w * y
        elif t > self._t_meas:
            self.temp_c = junction_temp_step(self.temp_c, self._p_meas, p.ambient_c, t - self._t_meas,
                                             p.r_th_k_per_w, p.tau_th_s)
        self._t_meas, self._p_meas = t, y
        self.hot, self._hi_w = thermal_max_w(self.temp_c, self.hot, self.min_w, self.max_w, p)
        return y

    def _exhausted(self, e, cap_w):
        i, lim = self.state.integral_w, self.params.integral_limit_w
        pushing = (((cap_w >= self._hi_w) | (i >= lim)) & (e > 0)) | (((cap_w <= self.min_w) | (i <= -lim)) & (e < 0))
        waiting = np.zeros(e.shape, dtype=bool) if self.state.pending_s is None else self.state.pending_s > 0
        return pushing & ~waiting

    def _tick(self):
        p = self.params
        self.ticks += 1
        y = self._measure()
        ctrl = ~np.isnan(self.setpoint_w)
        r = np.where(ctrl, self.setpoint_w, y)
        state, cap = ref_pid_step(self.state, r, y, self.min_w, self._hi_w, p)
        self.state = replace(state, integral_w=np.where(ctrl, state.integral_w, self.state.integral_w),
                             prev_error_w=np.where(ctrl, state.prev_error_w, np.nan))
        cap = np.where(ctrl, cap, np.minimum(self._cap_w, self._hi_w))
        write = (np.abs(cap - self._cap_w) > p.write_deadband_w) | (self._cap_w > self._hi_w)
        if write.any():
            idx = np.flatnonzero(write)
            self.plant.set_power_cap_w(idx, cap[idx])
            self._cap_w[idx] = cap[idx]
            self.writes += 1
            self.cohort_writes += idx.size
        e = r - y
        band = p.settle_band_frac * np.abs(r)
        steady_sat = self._exhausted(e, self._cap_w) & (np.abs(y - self._ref_w) <= band)
        at_rest = (np.abs(cap - self._ref_cap_w) <= p.write_deadband_w) & ref_model_at_rest(self.state, p)
        ok = ~ctrl | (((np.abs(e) <= band) | steady_sat) & at_rest)
        self._ref_w = np.where(steady_sat, self._ref_w, y)
        self._ref_cap_w = np.where(ok, self._ref_cap_w, cap)
        self._count = np.where(ok, self._count + 1, 0)
        return bool(np.all(self._count >= p.settle_samples))

    def _watch(self):
        self.watch_polls += 1
        hot_before = self.hot
        y = self._measure()
        ctrl = ~np.isnan(self.setpoint_w)
        e = np.where(ctrl, self.setpoint_w - y, 0.0)
        out = ctrl & (np.abs(e) > self.params.settle_band_frac * np.abs(self.setpoint_w))
        return bool(np.any(out & ~self._exhausted(e, self._cap_w)) or np.any(self.hot != hot_before)
                    or np.any(self._cap_w > self._hi_w))

    def _thermal_timer_s(self):
        if self._t_meas is None:
            return math.inf
        p = self.params
        threshold = np.where(self.hot, p.temp_limit_c - p.temp_hysteresis_k, p.temp_limit_c)
        t = ref_time_to_temp_s(self.temp_c, self._p_meas, threshold, p) - (self.env.now - self._t_meas)
        return float(np.max([np.min(t), 0.0])) + 1e-3


# ----------------------------------------------------------------------------- helpers


def assert_same_bits(a, b):
    """Exact equality: shape, dtype and every bit (NaN payloads and signed zeros included)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    if a.dtype.kind == "f":
        np.testing.assert_array_equal(a.view(np.uint64), b.view(np.uint64))
    else:
        np.testing.assert_array_equal(a, b)


def assert_same_state(s, t):
    for name in ("integral_w", "prev_error_w", "model_w", "force_w", "pending_w", "pending_s", "setpoint_w"):
        x, y = getattr(s, name), getattr(t, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert_same_bits(x, y)


def random_state(rng, n, first_frac):
    """A PID state mid-window: model, pending raises, previous setpoints (some NaN, <= 0, inf)."""
    model = rng.uniform(100.0, 320.0, n)
    force = np.where(rng.random(n) < 0.5, model, model + rng.normal(0.0, 5.0, n))
    pending_s = np.where(rng.random(n) < 0.3, rng.uniform(0.0, 0.11, n), 0.0)
    pending_w = np.where(pending_s > 0, force + rng.uniform(0.0, 50.0, n), np.nan)
    prev_e = np.where(rng.random(n) < first_frac, np.nan, rng.normal(0.0, 20.0, n))
    sp_old = rng.uniform(150.0, 300.0, n)
    sp_old[rng.random(n) < 0.1] = np.nan
    sp_old[rng.random(n) < 0.05] = 0.0
    sp_old[rng.random(n) < 0.05] = -10.0
    sp_old[rng.random(n) < 0.03] = np.inf
    integral = rng.uniform(-30.0, 30.0, n)
    return PidState(integral, prev_e, model, force, pending_w, pending_s, sp_old)


PARAMS = [P, PidParams(eta_ff=1.0), PidParams(kd=0.002, kp_down=0.3), PidParams(integral_limit_w=0.0),
          PidParams(model_rise_delay_s=0.0)]


# ----------------------------------------------------------------------------- pure functions


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("first_frac", [0.0, 0.3, 1.0])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the inf previous setpoints, on both sides
def test_pid_step_equals_the_reference_on_random_states(params, first_frac):
    rng = np.random.default_rng(7)
    for n in (1, 5, 100, 980):
        for _ in range(20):
            state = random_state(rng, n, first_frac)
            sp = np.where(rng.random(n) < 0.5, state.setpoint_w, rng.uniform(150.0, 300.0, n))  # same or a step
            y = rng.uniform(100.0, 320.0, n)
            lo = np.full(n, 100.0)
            hi = np.where(rng.random(n) < 0.2, 200.0, 300.0)  # some cohorts at the thermal fallback
            s1, c1 = pid_step(state, sp, y, lo, hi, params)
            s2, c2 = ref_pid_step(state, sp, y, lo, hi, params)
            assert_same_state(s1, s2)
            assert_same_bits(c1, c2)
            # the next tick, from the state just computed (the controller's chain)
            y2 = y + rng.normal(0.0, 3.0, n)
            s3, c3 = pid_step(s1, sp, y2, lo, hi, params)
            s4, c4 = ref_pid_step(s2, sp, y2, lo, hi, params)
            assert_same_state(s3, s4)
            assert_same_bits(c3, c4)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN and inf inputs, on both sides
def test_pid_step_equals_the_reference_on_edge_cases():
    lo, hi = np.array([100.0, 100.0, 0.0, 100.0]), np.array([300.0, 300.0, 0.0, 300.0])
    cases = [
        (PidState.zeros(4), [200.0, 250.0, 0.0, np.inf], [200.0, 260.0, -0.0, 250.0]),  # no model yet
        (PidState.zeros(4), [np.nan, 250.0, -0.0, 200.0], [np.nan, np.inf, 0.0, -np.inf]),
        (PidState(np.array([0.0, -0.0, 25.0, -25.0]), np.array([0.0, -0.0, np.inf, np.nan]),
                  np.array([200.0, 200.0, 0.0, 300.0]), np.array([200.0, 201.0, 0.0, 300.0]),
                  np.array([np.nan, 250.0, np.nan, 310.0]), np.array([0.0, 0.05, 0.0, 1e-10]),
                  np.array([200.0, 0.0, -0.0, np.nan])),
         [200.0, 250.0, 0.0, 150.0], [200.0, 240.0, 0.0, 300.0]),
    ]
    for params in PARAMS:
        for state, sp, y in cases:
            s1, c1 = pid_step(state, sp, y, lo, hi, params)
            s2, c2 = ref_pid_step(state, sp, y, lo, hi, params)
            assert_same_state(s1, s2)
            assert_same_bits(c1, c2)
    # scalar setpoint and measurement on a two-cohort state (broadcast), every cohort first
    s1, c1 = pid_step(PidState.zeros(2), 200.0, 190.0, np.array([100.0, 100.0]), np.array([300.0, 300.0]), P)
    s2, c2 = ref_pid_step(PidState.zeros(2), 200.0, 190.0, np.array([100.0, 100.0]), np.array([300.0, 300.0]), P)
    assert_same_state(s1, s2)
    assert_same_bits(c1, c2)


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN and inf inputs, on both sides
def test_lag_model_step_equals_the_reference(params):
    rng = np.random.default_rng(11)
    for n in (1, 7, 100, 980):
        for rise_frac in (0.0, 0.1, 1.0):  # no raise at all (the skipped branch), some, every one
            model = rng.uniform(100.0, 320.0, n)
            force = model + rng.normal(0.0, 2.0, n)
            pending_s = np.where(rng.random(n) < 0.3, rng.uniform(0.0, 0.12, n), 0.0)
            pending_w = np.where(pending_s > 0, force + 20.0, np.nan)
            v = np.where(rng.random(n) < rise_frac, force + rng.uniform(1.5, 40.0, n), force - rng.uniform(0.0, 30.0, n))
            v[rng.random(n) < 0.05] = np.nan
            a = lag_model_step(model, force, pending_w, pending_s, v, params)
            b = ref_lag_model_step(model, force, pending_w, pending_s, v, params)
            for x, y in zip(a, b):
                assert_same_bits(x, y)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN and inf inputs, on both sides
def test_time_to_temp_equals_the_reference():
    rng = np.random.default_rng(3)
    hot_site = replace(P, ambient_c=50.0)
    for params in (P, hot_site):
        for n in (1, 100, 980):
            temp = rng.uniform(30.0, 95.0, n)
            power = rng.uniform(0.0, 350.0, n)
            for thr in (85.0, np.where(rng.random(n) < 0.5, 83.0, 85.0)):
                assert_same_bits(time_to_temp_s(temp, power, thr, params), ref_time_to_temp_s(temp, power, thr, params))
    # edges: T0 on the threshold, T_ss on it, NaN and infinite inputs, nothing crossing, scalars
    t_ss_85 = (85.0 - P.ambient_c) / P.r_th_k_per_w
    temp = np.array([85.0, 84.0, 86.0, np.nan, 84.0, np.inf, -np.inf, 80.0, 85.0])
    power = np.array([300.0, t_ss_85, t_ss_85, 300.0, np.nan, 300.0, 300.0, np.inf, 0.0])
    assert_same_bits(time_to_temp_s(temp, power, 85.0, hot_site), ref_time_to_temp_s(temp, power, 85.0, hot_site))
    assert_same_bits(time_to_temp_s(temp, power, 85.0, P), ref_time_to_temp_s(temp, power, 85.0, P))
    assert_same_bits(time_to_temp_s(40.0, 100.0, 85.0, P), ref_time_to_temp_s(40.0, 100.0, 85.0, P))  # inf
    assert_same_bits(time_to_temp_s(84.0, 280.0, 85.0, hot_site), ref_time_to_temp_s(84.0, 280.0, 85.0, hot_site))


# ----------------------------------------------------------------------------- the controller


class DriftPlant:
    """A cheap plant for equality runs: power follows min(demand, eta * cap) with a 40 ms lag,
    demand steps at given times; records every call (time, cohorts, caps)."""

    def __init__(self, env, demand_w, eta=0.98):
        self.env, self.eta = env, eta
        self.demand_w = np.asarray(demand_w, dtype=float).copy()
        n = self.demand_w.size
        self.cap_w, self.power_w, self.t_s = np.full(n, 300.0), np.minimum(self.demand_w, 300.0), 0.0
        self.calls = []

    n_cohorts = property(lambda self: self.demand_w.size)

    def power_limits_w(self):
        return np.full(self.n_cohorts, 100.0), np.full(self.n_cohorts, 300.0)

    def _advance(self):
        dt = self.env.now - self.t_s
        if dt > 0:
            target = np.minimum(self.demand_w, self.eta * self.cap_w)
            self.power_w = target + (self.power_w - target) * math.exp(-dt / 0.04)
            self.t_s = self.env.now

    def read_power_w(self):
        self._advance()
        return self.power_w.copy()

    def read_power_cap_w(self):
        return self.cap_w.copy()

    def set_power_cap_w(self, cohorts, cap_w):
        self._advance()
        self.calls.append((self.env.now, np.array(cohorts), np.array(cap_w, dtype=float)))
        self.cap_w[cohorts] = cap_w


def run_pair(n, seed, params, until_s, initial_temp_c=None, nan_frac=0.3, backend="auto"):
    """The same random scenario on the fast (``backend``) and the reference controller: both controllers."""
    out = []
    for cls in (Tier1Controller, RefController):
        rng = np.random.default_rng(seed)
        env = simpy.Environment()
        plant = DriftPlant(env, rng.uniform(150.0, 320.0, n))
        ctl = cls(env, plant, params, setpoint_w=rng.uniform(160.0, 290.0, n), initial_temp_c=initial_temp_c,
                  backend=backend)

        def driver(ctl=ctl, plant=plant, env=env, rng=rng):
            while True:
                yield env.timeout(rng.uniform(0.3, 3.0))
                k = rng.integers(0, 5)
                if k == 0:
                    ctl.wake(np.full(n, np.nan))  # released: thermal watch only
                elif k == 1:
                    plant._advance()
                    plant.demand_w = rng.uniform(120.0, 320.0, n)  # drift while asleep
                else:
                    sp = rng.uniform(160.0, 290.0, n)
                    if k == 2:
                        sp[rng.random(n) < nan_frac] = np.nan  # some cohorts uncontrolled
                    ctl.wake(sp)

        env.process(driver())
        env.run(until=until_s)
        out.append((ctl, plant))
    return out


def assert_same_run(a, b):
    (ca, pa), (cb, pb) = a, b
    assert (ca.ticks, ca.writes, ca.cohort_writes, ca.windows, ca.watch_polls, ca.awake) == (
        cb.ticks, cb.writes, cb.cohort_writes, cb.windows, cb.watch_polls, cb.awake)
    assert len(pa.calls) == len(pb.calls)
    for (t1, i1, c1), (t2, i2, c2) in zip(pa.calls, pb.calls):
        assert t1 == t2
        assert_same_bits(i1, i2)
        assert_same_bits(c1, c2)
    assert_same_bits(ca.temp_c, cb.temp_c)
    assert_same_bits(ca.hot, cb.hot)
    assert_same_bits(ca.setpoint_w, cb.setpoint_w)
    assert_same_state(ca.state, cb.state)


@pytest.mark.parametrize("n, seed", [(1, 0), (4, 1), (100, 2)])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_controller_equals_the_reference_on_random_runs(n, seed, backend):
    a, b = run_pair(n, seed, P, 30.0, backend=backend)
    assert a[0].backend == backend
    assert a[0].ticks > 100 and a[0].windows > 1
    assert a[0].watch_polls > 10 or n == 100  # asleep and watching too (100 cohorts rarely all settle)
    assert_same_run(a, b)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_controller_equals_the_reference_with_the_thermal_fallback(backend):
    """A hot site (ambient 50 °C): cohorts cross 85 °C, the fallback and its timer engage."""
    n = 20
    a, b = run_pair(n, 5, replace(P, ambient_c=50.0), 40.0, initial_temp_c=np.linspace(70.0, 90.0, n),
                    backend=backend)
    assert a[0].hot.any() or any(np.any(c == 200.0) for _, _, c in a[1].calls)  # the fallback was used
    assert_same_run(a, b)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_controller_equals_the_reference_on_the_fakes(backend):
    """The fake plant behind its 20 ms NVML hold, with the V100's rise delay."""

    def run(cls):
        env = simpy.Environment()
        fake = FakeGpuPlant([300.0, 260.0, 180.0], lambda: env.now, rise_delay_s=0.11)
        ctl = cls(env, SampleHoldPlant(fake, lambda: env.now), P, setpoint_w=[220.0, 230.0, np.nan], backend=backend)

        def steps():
            for t, sp in ((0.7, [170.0, 250.0, 200.0]), (1.9, [240.0, np.nan, 160.0]), (3.0, [np.nan] * 3)):
                yield env.timeout(t - env.now)
                ctl.wake(sp)

        env.process(steps())
        env.run(until=5.0)
        return ctl, [(c.method, c.t_s, tuple(np.atleast_1d(c.args[1]).tolist()) if c.args else ()) for c in fake.calls]

    (ca, calls_a), (cb, calls_b) = run(Tier1Controller), run(RefController)
    assert calls_a == calls_b and len(calls_a) > 100
    assert_same_state(ca.state, cb.state)


def test_setpoints_change_only_through_wake():
    env = simpy.Environment()
    ctl = Tier1Controller(env, DriftPlant(env, [250.0, 250.0]), P, setpoint_w=[200.0, np.nan])
    with pytest.raises(ValueError):
        ctl.setpoint_w[1] = 220.0  # read-only: a silent edit would bypass the cached masks
    ctl.wake([np.nan, 220.0])
    assert np.isnan(ctl.setpoint_w[0]) and ctl.setpoint_w[1] == 220.0 and not ctl.setpoint_w.flags.writeable


class LoggingPlant(DriftPlant):
    """:class:`DriftPlant` that also logs its reads, into a log shared with other processes."""

    def __init__(self, env, demand_w, log):
        super().__init__(env, demand_w)
        self.log = log

    def read_power_w(self):
        self.log.append(("read", self.env.now))
        return super().read_power_w()

    def set_power_cap_w(self, cohorts, cap_w):
        self.log.append(("write", self.env.now))
        super().set_power_cap_w(cohorts, cap_w)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sleep_keeps_the_event_order_at_equal_times(seed):
    """The sleep's bell (wake event or timeout, then the bell) against ``env.any_of``: other
    processes act at exactly the instants of watch polls and ticks (binary-exact periods), some
    created before and some after the controller's timeout; the interleaving must not change."""
    params = replace(P, tick_s=1.0 / 256.0, watch_period_s=0.125)
    n = 6

    def run(cls):
        log = []
        env = simpy.Environment()
        rng = np.random.default_rng(seed)
        plant = LoggingPlant(env, rng.uniform(150.0, 320.0, n), log)
        ctl = cls(env, plant, params, setpoint_w=rng.uniform(160.0, 290.0, n))

        def drift(period, tag):  # acts at poll and tick instants (and wakes there)
            while True:
                yield env.timeout(period)
                plant._advance()
                plant.demand_w = plant.demand_w + rng.normal(0.0, 0.5, n)
                log.append((tag, env.now, ctl.awake))
                if rng.random() < 0.05:
                    sp = rng.uniform(160.0, 290.0, n)
                    if rng.random() < 0.3:
                        sp[:] = np.nan
                    ctl.wake(sp)
                    log.append(("wake", env.now))

        def zero_delay():  # an event at the same instant, scheduled while the poll's timeout waits
            while True:
                yield env.timeout(0.125 * rng.integers(1, 8))
                yield env.timeout(0.0)
                log.append(("zero", env.now, ctl.awake))

        env.process(drift(0.125, "a"))
        env.process(drift(0.5, "b"))
        env.process(drift(params.tick_s * 16, "c"))
        env.process(zero_delay())
        env.run(until=20.0)
        return ctl, plant, log

    (ca, pa, la), (cb, pb, lb) = run(Tier1Controller), run(RefController)
    assert ca.watch_polls > 20 and ca.windows > 3
    assert la == lb
    assert_same_run((ca, pa), (cb, pb))


def test_lag_decays_are_numpys_exp_of_the_taus():
    for params in PARAMS:
        taus = np.array([params.model_tau_down_s, params.model_tau_up_s])
        assert_same_bits(np.array(params.lag_decays), np.exp(-params.tick_s / taus))
