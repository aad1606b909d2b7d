"""Tier 1: the pure PID law, its thermal fallback, and the SimPy controller on fake and twin plants."""

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
    loop_spectral_radius,
    pid_step,
    thermal_max_w,
    time_to_temp_s,
)
from twin.facility.gpu_fleet import GpuFleet, TwinGpuPlant
from twin.physics.gpu import GPU_PROFILES, WORKLOADS, junction_temp_step, load_gpu_fit

V100 = GPU_PROFILES["V100-SXM2-32GB"]
P = PidParams()
LO, HI = np.array([150.0]), np.array([300.0])


# ----------------------------------------------------------------------------- parameters


def test_defaults_are_the_documented_ones():
    assert (P.kp, P.ki, P.kd, P.tick_s) == (0.5, 10.0, 0.0, 0.005)
    assert (P.fallback_cap_w, P.temp_limit_c) == (200.0, 85.0)  # paper §3.1
    fit = load_gpu_fit()
    assert (P.r_th_k_per_w, P.tau_th_s, P.ambient_c) == (fit.r_th_k_per_w, fit.tau_th_s, fit.ambient_c)
    h100 = PidParams.for_profile(GPU_PROFILES["H100-SXM"], kp=0.3)
    assert (h100.kp, h100.r_th_k_per_w) == (0.3, GPU_PROFILES["H100-SXM"].r_th_k_per_w)


@pytest.mark.parametrize("kw, match", [
    ({"kp": -1.0}, "kp"), ({"ki": math.nan}, "ki"), ({"tick_s": 0.0}, "tick_s"),
    ({"integral_limit_w": -5.0}, "integral_limit_w"), ({"settle_samples": 0}, "settle_samples"),
    ({"settle_samples": 2.5}, "settle_samples"), ({"settle_band_frac": 0.0}, "settle_band_frac"),
    ({"watch_period_s": 0.0}, "watch_period_s"), ({"tau_th_s": -1.0}, "tau_th_s"),
    ({"temp_limit_c": math.inf}, "temp_limit_c"),
])
def test_bad_params_are_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        PidParams(**kw)


# ----------------------------------------------------------------------------- pid_step


def test_zero_error_gives_the_setpoint_as_cap():
    _, cap = pid_step(PidState.zeros(2), [200.0, 250.0], [200.0, 250.0], LO, HI, P)
    np.testing.assert_array_equal(cap, [200.0, 250.0])


def test_one_tick_by_hand():
    # e = 20 W: P = 0.5 * 20 = 10 W, I = 3 + 10 /s * 0.005 s * 20 W = 4 W, D = 0.002 s * (20 - 10) W / 0.005 s = 4 W
    p = PidParams(kd=0.002)
    state, cap = pid_step(PidState(np.array([3.0]), np.array([10.0])), [200.0], [180.0], LO, HI, p)
    assert cap[0] == pytest.approx(200.0 + 10.0 + 4.0 + 4.0)
    assert state.integral_w[0] == pytest.approx(4.0)
    assert state.prev_error_w[0] == 20.0


def test_integrator_stays_within_the_clamp_under_sustained_saturation():
    """Power held far below the setpoint (a demand-limited GPU) for 10 s of ticks."""
    for hi in (HI, np.array([1e6])):  # output saturated / never saturated: the clamp alone binds
        state = PidState.zeros(1)
        seen = []
        for _ in range(2000):
            state, cap = pid_step(state, [250.0], [100.0], LO, hi, P)
            seen.append(state.integral_w[0])
            assert LO[0] <= cap[0] <= hi[0]
        assert max(np.abs(seen)) <= P.integral_limit_w
        if hi[0] == HI[0]:
            assert max(seen) == 0.0  # conditional integration: nothing accumulates while saturated
        else:
            assert seen[-1] == P.integral_limit_w
    # the same downward: measured far above a setpoint at the minimum cap
    state = PidState(np.array([-P.integral_limit_w]), np.array([np.nan]))
    for _ in range(2000):
        state, cap = pid_step(state, [150.0], [290.0], LO, HI, P)
        assert state.integral_w[0] >= -P.integral_limit_w and cap[0] == 150.0


def test_leaves_saturation_on_the_first_tick_the_error_reverses():
    state = PidState(np.array([P.integral_limit_w]), np.array([150.0]))
    _, cap = pid_step(state, [250.0], [100.0], LO, HI, P)
    assert cap[0] == 300.0
    _, cap = pid_step(state, [250.0], [260.0], LO, HI, P)  # now 10 W above: no wound-up integral to unwind
    assert cap[0] < 300.0


def test_vectorised_over_cohorts_equals_one_by_one():
    rng = np.random.default_rng(3)
    sp, y = rng.uniform(150, 300, 5), rng.uniform(100, 300, 5)
    state = PidState(rng.uniform(-20, 20, 5), rng.uniform(-30, 30, 5))
    p = PidParams(kd=0.001)
    s_all, c_all = pid_step(state, sp, y, np.full(5, 150.0), np.full(5, 300.0), p)
    for i in range(5):
        s_i, c_i = pid_step(PidState(state.integral_w[i:i + 1], state.prev_error_w[i:i + 1]), sp[i:i + 1],
                            y[i:i + 1], LO, HI, p)
        assert c_i[0] == c_all[i] and s_i.integral_w[0] == s_all.integral_w[i]


# ----------------------------------------------------------------------------- thermal


def test_thermal_fallback_engages_above_85_c_with_hysteresis():
    lo, hi = np.full(4, 150.0), np.full(4, 300.0)
    hot, cap_max = thermal_max_w([84.9, 85.1, 84.0, 82.9], [False, False, True, True], lo, hi, P)
    np.testing.assert_array_equal(hot, [False, True, True, False])
    np.testing.assert_array_equal(cap_max, [300.0, 200.0, 200.0, 300.0])
    # the fallback stays inside the power-limit range (a part whose minimum is 250 W)
    _, cap_max = thermal_max_w([90.0], [False], [250.0], [400.0], P)
    assert cap_max[0] == 250.0


def test_time_to_temp_matches_the_rc_model():
    t = time_to_temp_s(70.0, 300.0, 80.0, P)  # T_ss = 33.9 + 0.1537 * 300 = 80.01 °C
    assert np.isfinite(t) and t > 0
    assert junction_temp_step(70.0, 300.0, P.ambient_c, t, P.r_th_k_per_w, P.tau_th_s) == pytest.approx(80.0)
    assert time_to_temp_s(70.0, 100.0, 85.0, P) == math.inf  # T_ss 49 °C never reaches 85 °C
    assert time_to_temp_s(85.0, 300.0, 85.0, P) == 0.0  # on the threshold: now
    assert time_to_temp_s(80.0, 300.0, 85.0, P) == math.inf  # T_ss 80.01 °C is below 85 °C
    t_down = time_to_temp_s(90.0, 100.0, 83.0, P)
    assert junction_temp_step(90.0, 100.0, P.ambient_c, t_down, P.r_th_k_per_w, P.tau_th_s) == pytest.approx(83.0)


# ----------------------------------------------------------------------------- stability


def test_tuned_gains_give_a_stable_loop_on_every_branch_of_the_fitted_plant():
    """Linearised loop with the 20 ms NVML hold: both fitted lags with a gain margin of 2
    (6 dB) and at a half-gain corner; the E2 rising dead time (110 ms + 144 ms lag, taken
    on both directions: conservative) with 30 % gain headroom (docs/parameters.md)."""
    for tau_s in (V100.tau_down_s, V100.tau_up_s):
        for gain in (2.0, 1.0, 0.5):
            assert loop_spectral_radius(P, tau_s, gain) < 0.99
    assert loop_spectral_radius(P, 0.144, gain=1.3, delay_ticks=22) < 1.0
    # the check has teeth: aggressive gains go unstable on the fast branch
    assert loop_spectral_radius(PidParams(kp=3.0, ki=80.0), V100.tau_down_s) > 1.0


# ----------------------------------------------------------------------------- the controller


def run_step(plant_kind: str, sp0: float, sp1: float, t_step: float = 2.0, t_end: float = 4.0):
    """Settle at sp0, step to sp1 at t_step; log true board power every 1 ms.

    "twin" is the fitted V100 as the gains were tuned: pure lags (tau_up 249 ms, no rise
    delay); "twin_delayed" is the fleet's default V100 with the 110 ms rise delay."""
    env = simpy.Environment()
    clock = lambda: env.now
    if plant_kind in ("twin", "twin_delayed"):  # the fitted V100 model: compute_bound at 1530 MHz
        profile = V100 if plant_kind == "twin_delayed" else replace(V100, rise_delay_s=0.0)
        fleet = GpuFleet(profile, [1], [1], 300.0, 0.0, 0.0, sm_clock_mhz=1530.0)
        fleet.set_load(0.0, [0], 1.0, 0.0, workload=WORKLOADS.index("compute_bound"))
        raw = TwinGpuPlant(fleet, clock)
    else:
        raw = FakeGpuPlant([300.0], clock)
    ctl = Tier1Controller(env, SampleHoldPlant(raw, clock), P, setpoint_w=sp0)
    t, p = [], []

    def log():
        yield env.timeout(t_step)
        ctl.wake(sp1)
        while True:
            t.append(env.now - t_step)
            p.append(raw.read_power_w()[0])
            yield env.timeout(0.001)

    env.process(log())
    env.run(until=t_end)
    return np.array(t), np.array(p), ctl


def settling_s(t, p, sp, band):
    bad = np.flatnonzero(np.abs(p - sp) > band * sp)
    return 0.0 if bad.size == 0 else t[bad[-1] + 1]


# stated settling times on the fitted plant (5 % band, E2's criterion): a step down is the
# fast lag plus one NVML refresh; a step up is limited by tau_up = 249 ms (the cap alone,
# without the PID, would need 3 tau_up = 0.75 s)
@pytest.mark.parametrize("sp0, sp1, within_s", [
    (240.0, 200.0, 0.05), (240.0, 150.0, 0.05), (210.0, 180.0, 0.05),
    (200.0, 240.0, 0.45), (150.0, 240.0, 0.45), (180.0, 210.0, 0.45),
])
def test_step_responses_settle_within_the_stated_time(sp0, sp1, within_s):
    for kind in ("twin", "fake"):
        t, p, ctl = run_step(kind, sp0, sp1)
        assert settling_s(t, p, sp1, 0.05) <= within_s, kind
        assert abs(p[-1] - sp1) <= P.settle_band_frac * sp1 + 0.5, kind  # ends inside the settle band
        assert np.max(np.abs(p[t > 0.1] - sp1)) <= 0.05 * sp1 or sp1 > sp0, kind  # no undershoot after a drop
        assert not ctl.awake, kind  # and the controller is asleep again


# With the fitted 110 ms rise delay the tuned PI is slower: after a step down it drives the
# cap below the setpoint and the cap's way back up waits out the delay. Measured (5 % band):
# 240->200 W 0.165 s, 210->180 W 0.363 s, 240->150 W 0.035 s; steps up 0.23-0.35 s. Stated
# bound 0.40 s for all; retuning for the delayed plant is open work (docs/parameters.md).
@pytest.mark.parametrize("sp0, sp1", [(240.0, 200.0), (240.0, 150.0), (210.0, 180.0),
                                      (200.0, 240.0), (150.0, 240.0), (180.0, 210.0)])
def test_step_responses_on_the_plant_with_the_rise_delay(sp0, sp1):
    t, p, ctl = run_step("twin_delayed", sp0, sp1)
    assert settling_s(t, p, sp1, 0.05) <= 0.40
    assert abs(p[-1] - sp1) <= P.settle_band_frac * sp1 + 0.5
    assert not ctl.awake


def test_sleeps_after_settling_and_wakes_on_a_new_setpoint():
    env = simpy.Environment()
    plant = FakeGpuPlant([300.0, 300.0], lambda: env.now, cap_w=[250.0, 250.0])
    ctl = Tier1Controller(env, plant, P, setpoint_w=[250.0, 240.0])
    env.run(until=1.0)
    assert ctl.windows == 1 and not ctl.awake
    ticks = ctl.ticks
    reads = [c.t_s for c in plant.calls_of("read_power_w")]
    window = np.array(reads[:ticks])
    np.testing.assert_allclose(np.diff(window), P.tick_s, rtol=1e-9)  # 200 Hz inside the window
    assert ticks < 0.2 / P.tick_s  # settled well within 0.2 s
    watch = np.diff(reads[ticks - 1:])
    np.testing.assert_allclose(watch, P.watch_period_s, rtol=1e-6)  # asleep: reads at 10 Hz only
    env.run(until=2.0)
    assert ctl.ticks == ticks  # nothing moved, nothing ticked

    def step():
        yield env.timeout(0.2345)
        ctl.wake([200.0, 240.0])

    env.process(step())
    env.run(until=3.0)
    assert ctl.windows == 2 and not ctl.awake and ctl.ticks > ticks
    reads = [c.t_s for c in plant.calls_of("read_power_w")]
    assert 2.2345 in reads  # the first tick of the new window is at the wake instant
    writes = plant.calls_of("set_power_cap_w")
    assert writes and all(0 in c.args[0] for c in writes if c.t_s > 2.0)  # only the cohort that moved ...
    assert all(1 not in c.args[0] for c in writes if c.t_s > 2.0)  # ... is written
    assert plant.read_power_w()[0] == pytest.approx(200.0, rel=0.02)


def test_writes_only_caps_that_move_beyond_the_deadband():
    env = simpy.Environment()
    plant = FakeGpuPlant([300.0, 300.0, 300.0], lambda: env.now)
    ctl = Tier1Controller(env, SampleHoldPlant(plant, lambda: env.now), P, setpoint_w=[180.0, 220.0, np.nan])
    env.run(until=1.0)
    last = {0: 300.0, 1: 300.0, 2: 300.0}
    n = 0
    for call in plant.calls_of("set_power_cap_w"):
        for i, c in zip(call.args[0], call.args[1]):
            assert abs(c - last[int(i)]) > P.write_deadband_w
            last[int(i)] = c
            n += 1
    assert n == ctl.cohort_writes and ctl.writes == len(plant.calls_of("set_power_cap_w"))
    assert ctl.writes < ctl.ticks  # the 20 ms NVML hold and the deadband spare most ticks
    assert 2 not in last or last[2] == 300.0  # NaN setpoint: cohort 2 is never written


def test_a_demand_limited_cohort_does_not_keep_the_controller_awake():
    env = simpy.Environment()
    plant = FakeGpuPlant([300.0, 120.0], lambda: env.now)  # cohort 1 cannot reach 200 W
    ctl = Tier1Controller(env, plant, P, setpoint_w=[200.0, 200.0])
    env.run(until=1.0)
    assert not ctl.awake and ctl.ticks < 100
    assert ctl.state.integral_w[1] == P.integral_limit_w  # pushed in vain, up to its clamp


def test_thermal_fallback_engages_and_releases_in_the_controller():
    """A hot site (ambient 50 °C): at 280 W the junction settles at 93 °C, so the estimate
    crosses 85 °C; the controller, asleep by then, wakes on its thermal timer, caps 200 W,
    and restores the setpoint once the estimate is back below 83 °C."""
    p = PidParams(ambient_c=50.0)
    env = simpy.Environment()
    plant = FakeGpuPlant([300.0], lambda: env.now)
    ctl = Tier1Controller(env, plant, p, setpoint_w=280.0, initial_temp_c=84.0)
    t_hot = float(time_to_temp_s(84.0, 280.0, 85.0, p))  # 19.5 s * ln(9.04 / 8.04) = 2.3 s
    env.run(until=t_hot - 0.05)
    assert not ctl.hot[0] and not ctl.awake and plant.read_power_cap_w()[0] > 250.0
    env.run(until=t_hot + 0.1)
    assert ctl.hot[0]
    assert plant.read_power_cap_w()[0] == 200.0
    first_200 = next(c.t_s for c in plant.calls_of("set_power_cap_w") if c.args[1][0] == 200.0)
    # the estimate runs on measured power, which settles within the 2 % band of 280 W
    assert abs(first_200 - t_hot) <= 0.1
    # at 200 W the junction heads for 50 + 0.1537 * 200 = 80.7 °C: released below 83 °C, after
    # 19.5 s * ln(4.3 / 2.3) = 12 s; back at 280 W it heats up again (a slow limit cycle
    # between 83 and 85 °C: the physics of this site, bounded by the fallback)
    t_cool = float(time_to_temp_s(85.0, 200.0, 83.0, p))
    env.run(until=first_200 + t_cool - 0.3)
    assert ctl.hot[0] and plant.read_power_cap_w()[0] == 200.0
    env.run(until=first_200 + t_cool + 0.3)
    assert not ctl.hot[0] and plant.read_power_cap_w()[0] > 250.0
    env.run(until=60.0)
    assert np.all(ctl.temp_c <= p.temp_limit_c + 0.1)


def track(plant, ctl, env, seed=0):
    """Drive ``ctl`` with the E4 trajectory of ``seed`` after a 2 s pre-roll; error [%] of the 100 Hz log."""
    from twin.reproduce.e4 import demand_trajectory

    starts, levels = demand_trajectory(seed)
    t_log = 2.0 + 0.01 * np.arange(3000)
    log = np.empty(t_log.size)

    def demand():
        ctl.wake(levels[0])
        for t0, level in zip(starts[1:] + 2.0, levels[1:]):
            yield env.timeout(t0 - env.now)
            ctl.wake(level)

    def logger():
        for i, t in enumerate(t_log):
            yield env.timeout(t - env.now)
            log[i] = plant.read_power_w()[0]

    env.process(demand())
    env.process(logger())
    env.run(until=32.0)
    d = levels[np.searchsorted(starts + 2.0, t_log, side="right") - 1]
    return float(np.mean(np.abs(log - d)) / np.mean(d) * 100.0)


def test_tracks_within_5_percent_with_the_e2_rising_dead_time():
    """The real V100 answers a raise ~110 ms late (E2); the fitted lag has no dead time.
    The tuned loop still tracks the E4 trajectory inside the paper's 5 % band, without a
    limit cycle (it sleeps between steps: few windows, far fewer ticks than 200 Hz)."""
    env = simpy.Environment()
    clock = lambda: env.now
    plant = SampleHoldPlant(FakeGpuPlant([300.0], clock, rise_delay_s=0.11), clock)
    ctl = Tier1Controller(env, plant, P)
    err = track(plant, ctl, env)
    assert err < 5.0
    assert ctl.windows < 30 and ctl.ticks < 0.25 * 32.0 / P.tick_s


def test_an_idle_controller_schedules_nothing():
    env = simpy.Environment()
    plant = FakeGpuPlant([300.0], lambda: env.now)
    ctl = Tier1Controller(env, plant, P)
    env.run()  # returns: no setpoint, no watch, no timer
    assert ctl.ticks == 0 and [c.method for c in plant.calls] == ["power_limits_w"]


def test_runs_are_deterministic():
    def run():
        env = simpy.Environment()
        plant = FakeGpuPlant([300.0, 260.0], lambda: env.now)
        ctl = Tier1Controller(env, SampleHoldPlant(plant, lambda: env.now), P, setpoint_w=[220.0, 230.0])

        def steps():
            for t, sp in ((0.7, [170.0, 250.0]), (1.9, [240.0, 160.0])):
                yield env.timeout(t - env.now)
                ctl.wake(sp)

        env.process(steps())
        env.run(until=3.0)
        return [(c.method, c.t_s, tuple(np.atleast_1d(c.args[1]) if c.args else ())) for c in plant.calls]

    assert run() == run()


# ----------------------------------------------------------------------------- E4


def test_e4_rows():
    from twin.reproduce.e4 import demand_trajectory, e4_rows, reachable_range_w

    starts, levels = demand_trajectory(0)
    assert starts[0] == 0.0 and starts[-1] < 30.0
    assert np.all(np.diff(starts) >= 2.0) and np.all(np.diff(starts) <= 5.0)
    assert set(levels) <= {150.0, 180.0, 210.0, 240.0, 270.0} and np.all(np.diff(levels) != 0)
    lo, hi = reachable_range_w("compute_bound")
    assert lo == pytest.approx(147.3, abs=0.1) and hi == pytest.approx(248.0, abs=0.1)  # 270 W is out of reach

    rows = e4_rows(0)
    assert rows == e4_rows(0)  # seeded: identical
    by = {r["metric"].split(",")[1].split("(")[0].strip(): r for r in rows}
    assert set(by) == {"inference", "matmul", "bursty"}
    for name in ("inference", "matmul"):
        r = by[name]
        assert r["pass"] is True and r["twin_value"] < 5.0 and r["twin"] == r["twin_value"]
    assert by["inference"]["paper_value"] == 1.68 and by["matmul"]["paper"] == 2.12
    bursty = by["bursty"]
    assert bursty["pass"] is None and bursty["tolerance"] is None and bursty["paper_value"] == 11.08
    assert bursty["twin_value"] > 5.0  # the low phase is out of the cap's reach, as in the paper
    for r in rows:
        assert {"experiment", "metric", "paper", "twin", "tolerance", "pass"} <= set(r)
