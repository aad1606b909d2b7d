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
    lag_model_step,
    loop_spectral_radius,
    pid_step,
    thermal_max_w,
    time_to_temp_s,
)
from twin.facility.gpu_fleet import GpuFleet, TwinGpuPlant
from twin.physics.gpu import GPU_PROFILES, WORKLOADS, junction_temp_step, load_gpu_fit

V100 = GPU_PROFILES["V100-SXM2-32GB"]
P = PidParams()
# the fakes' power is min(demand, cap): eta = 1 where the cap binds, not the V100's 0.98; tests
# that need the fake's exact landing (which cohort is written, when a threshold is crossed) use it
P_ETA1 = PidParams(eta_ff=1.0)
LO, HI = np.array([150.0]), np.array([300.0])


# ----------------------------------------------------------------------------- parameters


def test_defaults_are_the_documented_ones():
    assert (P.eta_ff, P.kp, P.kp_down, P.ki, P.kd, P.tick_s) == (0.98, 1.0, 0.0, 10.0, 0.0, 0.005)
    # the lag model is the fitted V100 cap-step response (110.1 ms dead time, then 143.5 ms)
    assert (P.model_tau_down_s, P.model_tau_up_s, P.model_rise_delay_s) == (
        V100.tau_down_s, V100.tau_up_after_delay_s, V100.rise_delay_s)
    assert PidParams.for_profile(V100) == P
    no_delay = PidParams.for_profile(replace(V100, rise_delay_s=0.0))
    assert (no_delay.model_rise_delay_s, no_delay.model_tau_up_s) == (0.0, V100.tau_up_s)
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
    ({"temp_limit_c": math.inf}, "temp_limit_c"), ({"kp_down": -0.1}, "kp_down"), ({"eta_ff": 0.0}, "eta_ff"),
    ({"model_tau_up_s": 0.0}, "model_tau_up_s"), ({"model_rise_delay_s": -0.1}, "model_rise_delay_s"),
])
def test_bad_params_are_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        PidParams(**kw)


# ----------------------------------------------------------------------------- pid_step


def test_zero_error_gives_the_feedforward_as_cap():
    _, cap = pid_step(PidState.zeros(2), [200.0, 250.0], [200.0, 250.0], LO, HI, P)
    np.testing.assert_allclose(cap, [200.0 / 0.98, 250.0 / 0.98])  # power settles at 0.98 * cap


def at_rest(i_w, prev_e_w, power_w, r_w):
    """State with the lag model at rest at ``power_w`` and the previous setpoint ``r_w``."""
    a = lambda x: np.array([float(x)])
    return PidState(a(i_w), a(prev_e_w), a(power_w), a(power_w), a(np.nan), a(0.0), a(r_w))


def test_one_tick_by_hand():
    # below the setpoint, e = 20 W: P = 1.0 * 20 = 20 W, D = 0.002 s * (20 - 10) W / 0.005 s = 4 W;
    # the command 0.98 * (200 / 0.98 + 24) = 223.5 W is a raise of 23.5 W on the model at rest
    # at 200 W: a new transient, so I is held at 3 W
    p = PidParams(kd=0.002)
    state, cap = pid_step(at_rest(3.0, 10.0, 200.0, 200.0), [200.0], [180.0], LO, HI, p)
    assert cap[0] == pytest.approx(200.0 / 0.98 + 20.0 + 4.0 + 3.0)
    assert state.integral_w[0] == 3.0 and state.prev_error_w[0] == 20.0
    assert state.pending_s[0] > 0 and state.force_w[0] == 200.0  # the raise waits out the dead time
    # e = 0.5 W with the model at rest at the command (0.98 * (204.08 + 0.5) = 200.49 W, within the
    # 1 W deadband): I = 3 + 10 /s * 0.005 s * 0.5 W = 3.025 W
    state, cap = pid_step(at_rest(3.0, 0.5, 200.0, 200.0), [200.0], [199.5], LO, HI, P)
    assert state.integral_w[0] == pytest.approx(3.025)
    assert cap[0] == pytest.approx(200.0 / 0.98 + 0.5 + 3.025)
    # above the setpoint (e = -30 W, a step down in progress): no proportional kick, I held
    state, cap = pid_step(at_rest(3.0, -30.0, 230.0, 200.0), [200.0], [230.0], LO, HI, P)
    assert cap[0] == pytest.approx(200.0 / 0.98 + 3.0) and state.integral_w[0] == 3.0


def test_a_new_setpoint_rescales_the_integral():
    # -4 W of offset at 240 W (a plant with eta = 1) is -2.5 W at 150 W, and 2.5 W at 150 W is
    # 4 W at 240 W; a step down drops a positive offset (held after: the step starts a transient)
    for i_w, r0, r1, i1 in ((-4.0, 240.0, 150.0, -2.5), (2.5, 150.0, 240.0, 4.0), (4.0, 240.0, 150.0, 0.0)):
        state, cap = pid_step(at_rest(i_w, 0.0, r0, r0), [r1], [r0], LO, HI, P)
        assert state.integral_w[0] == pytest.approx(i1)
        assert cap[0] == pytest.approx(min(r1 / 0.98 + max(r1 - r0, 0.0) * P.kp + i1, HI[0]))


def test_lag_model_by_hand():
    """A cut acts at once; a raise waits the 110.1 ms dead time (23 ticks), then the lag."""
    p, a = P, lambda x: np.array([float(x)])
    m, f, pw, ps = a(200.0), a(200.0), a(np.nan), a(0.0)
    m, f, pw, ps = lag_model_step(m, f, pw, ps, a(150.0), p)  # cut: 200 -> 150 W at once
    assert f[0] == 150.0 and ps[0] == 0.0
    assert m[0] == pytest.approx(150.0 + 50.0 * math.exp(-0.005 / V100.tau_down_s))
    m, f, pw, ps = a(150.0), a(150.0), a(np.nan), a(0.0)
    for k in range(23):
        assert f[0] == 150.0 and m[0] == 150.0  # nothing moves during the dead time
        m, f, pw, ps = lag_model_step(m, f, pw, ps, a(200.0 + k), p)  # a pending raise takes the latest
    assert f[0] == 222.0 and ps[0] == 0.0
    assert m[0] == pytest.approx(222.0 - 72.0 * math.exp(-0.005 / V100.tau_up_after_delay_s))
    m, f, pw, ps = lag_model_step(a(150.0), a(150.0), a(np.nan), a(0.0), a(200.0), p)
    m, f, pw, ps = lag_model_step(m, f, pw, ps, a(149.0), p)  # a cut voids the pending raise
    assert f[0] == 149.0 and ps[0] == 0.0 and np.isnan(pw[0])
    m, f, pw, ps = lag_model_step(a(150.0), a(150.0), a(np.nan), a(0.0), a(150.9), p)
    assert f[0] == 150.0 and ps[0] == 0.0  # within the 1 W deadband: not written, no transient


def test_the_integral_is_held_while_a_raise_waits_out_its_dead_time():
    """Anti-windup on the delayed plant: 110 ms of a large error do not wind the integral."""
    state = at_rest(2.0, 0.0, 180.0, 180.0)
    seen = []
    for _ in range(22):  # 110 ms at 200 Hz: the power has not moved yet
        state, cap = pid_step(state, [210.0], [180.0], LO, HI, P)
        seen.append(state.integral_w[0])
    assert seen == [pytest.approx(2.0 * 210.0 / 180.0)] * 22  # rescaled once, then held
    assert cap[0] == pytest.approx(210.0 / 0.98 + 30.0 + seen[-1])  # kp = 1 overdrive


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
    """Linearised loop with the 20 ms NVML hold, each side of the law on the branch it
    drives, with a gain margin of 2 (6 dB) and at a half-gain corner: power above the
    setpoint falls (kp_down = 0, tau_down); power below it rises toward a cap that kp takes
    back by cuts, which act at once (tau_up after the dead time, and the equal-energy pure
    lag tau_up). Conservative bound: the 110 ms dead time (22 ticks) on every move, with
    30 % gain headroom, as in the original tuning (docs/parameters.md)."""
    for gain in (2.0, 1.0, 0.5):
        assert loop_spectral_radius(P, V100.tau_down_s, gain, falling=True) < 0.99  # 0.88 / 0.93 / 0.97
        for tau_s in (V100.tau_up_after_delay_s, V100.tau_up_s):
            assert loop_spectral_radius(P, tau_s, gain) < 0.99  # 0.94-0.99
    assert loop_spectral_radius(P, V100.tau_up_after_delay_s, gain=1.3, delay_ticks=22) < 1.0  # 0.9968
    # the check has teeth: aggressive gains go unstable on the fast branch, and kp = 2 loses
    # the headroom on the conservative dead-time bound
    assert loop_spectral_radius(PidParams(kp_down=3.0, ki=80.0), V100.tau_down_s, falling=True) > 1.0
    assert loop_spectral_radius(PidParams(kp=2.0), V100.tau_up_after_delay_s, gain=1.3, delay_ticks=22) > 1.0


# ----------------------------------------------------------------------------- the controller


def run_step(plant_kind: str, sp0: float, sp1: float, t_step: float = 2.0, t_end: float = 4.0, params=None):
    """Settle at sp0, step to sp1 at t_step; log true board power every 1 ms.

    "twin" is the fitted V100 seen as pure lags (tau_up 249 ms, no rise delay), the plant
    the first gains were tuned on; "twin_delayed" is the fleet's default V100 with the
    110 ms rise delay (then 143.5 ms); "fake" is ``min(300 W, cap)`` through the lags."""
    env = simpy.Environment()
    clock = lambda: env.now
    if plant_kind in ("twin", "twin_delayed"):  # the fitted V100 model: compute_bound at 1530 MHz
        profile = V100 if plant_kind == "twin_delayed" else replace(V100, rise_delay_s=0.0)
        fleet = GpuFleet(profile, [1], [1], 300.0, 0.0, 0.0, sm_clock_mhz=1530.0)
        fleet.set_load(0.0, [0], 1.0, 0.0, workload=WORKLOADS.index("compute_bound"))
        raw = TwinGpuPlant(fleet, clock)
    else:
        raw = FakeGpuPlant([300.0], clock)
    ctl = Tier1Controller(env, SampleHoldPlant(raw, clock), P if params is None else params, setpoint_w=sp0)
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


# On the fleet's default V100, with the fitted 110 ms rise delay (5 % band from the command,
# true board power). Measured with the retuned law (the PI of kp 0.5 before it: 165 / 35 /
# 363 ms down, 231 / 338 / 350 ms up, docs/parameters.md):
#   downs 240->200 24 ms, 240->150 40 ms, 210->180 22 ms; power never goes below the setpoint
#   (lowest 0.3-0.4 W above it). Bound 0.06 s: the measured worst plus one NVML refresh.
#   ups 200->240 233 ms, 150->240 345 ms, 180->210 177 ms, overshoot <= 2.6 W. The plant's
#   own limit, the cap at its maximum from the command (110 ms, then 143.5 ms toward the
#   workload's uncapped 248 W): 236 / 338 / 159 ms. Bounds: measured + ~40 ms.
@pytest.mark.parametrize("sp0, sp1, within_s", [
    (240.0, 200.0, 0.06), (240.0, 150.0, 0.06), (210.0, 180.0, 0.06),
    (200.0, 240.0, 0.28), (150.0, 240.0, 0.39), (180.0, 210.0, 0.22),
])
def test_step_responses_on_the_plant_with_the_rise_delay(sp0, sp1, within_s):
    t, p, ctl = run_step("twin_delayed", sp0, sp1)
    assert settling_s(t, p, sp1, 0.05) <= within_s
    after = p[t > 0]
    if sp1 < sp0:
        assert after.min() >= 0.99 * sp1  # no undershoot: a cut below the target would wait out the delay
    else:
        assert after.max() <= 1.02 * sp1  # overshoot inside the 2 % settle band
    assert abs(p[-1] - sp1) <= P.settle_band_frac * sp1 + 0.5
    assert not ctl.awake


def test_sleeps_after_settling_and_wakes_on_a_new_setpoint():
    env = simpy.Environment()
    plant = FakeGpuPlant([300.0, 300.0], lambda: env.now, cap_w=[250.0, 250.0])
    # with P (eta_ff 0.98) the first window takes 62 ticks and cohort 1 sleeps 0.6 W high, so
    # its integral drifts its cap past the deadband in the next window
    ctl = Tier1Controller(env, plant, P_ETA1, setpoint_w=[250.0, 240.0])
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
    # asleep within 1 s (measured 182 ticks, 0.91 s): the integral waits until the lag model
    # has answered the raise (110 ms dead time, then 143.5 ms lag to within 1 W), then pushes
    # the cap to its limit
    assert not ctl.awake and ctl.ticks < 200
    assert plant.read_power_cap_w()[1] == 300.0  # pushed in vain, up to its limit


def test_thermal_fallback_engages_and_releases_in_the_controller():
    """A hot site (ambient 50 °C): at 280 W the junction settles at 93 °C, so the estimate
    crosses 85 °C; the controller, asleep by then, wakes on its thermal timer, caps 200 W,
    and restores the setpoint once the estimate is back below 83 °C."""
    # eta_ff = 1: the fake's power is min(demand, cap), so it settles at 280 W exactly and the
    # crossing time is the closed form below (with 0.98 it settles 1.4 W high, 70 ms earlier)
    p = replace(P_ETA1, ambient_c=50.0)
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
