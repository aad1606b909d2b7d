"""Grid-compatible smoothing (twin/control/smoothing.py): limiter, floors, throttling, metrics.

Every expected number is hand-worked in the comment beside it; tolerances stated.
Sign convention: battery power > 0 charges; grid = load + floor - throttle + battery.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from traces.training import TrainingPowerParams, TrainingPowerTrace
from twin.control.smoothing import (
    BatteryLimits,
    GpuSmoothingProfile,
    SmoothingParams,
    SmoothingState,
    count_destabilising_events,
    energy_j,
    max_ramp_w_per_s,
    prepare_for_workload,
    simulate_smoothing,
    smooth_step,
    window_average_w,
)

MW = 1e6
MWH = 3.6e9
DT = 0.1


@pytest.fixture(scope="module")
def swing_load():
    """120 s of a 600 MW job swinging 300 MW (low 300 MW), already running, as 100 ms means."""
    p = TrainingPowerParams(600 * MW, start_s=-100.0, data_load_duration_s=0.0, checkpoint_duration_s=0.0)
    tr = TrainingPowerTrace(p)
    t = np.arange(0.0, 120.0, DT)
    return tr.energy_j(t, t + DT) / DT, tr.mean_iteration_power_w()


def test_smoothing_keeps_the_meter_ramp_within_the_limit_on_a_300_mw_swing(swing_load):
    load, mean_w = swing_load
    # mean = 0.7 x 600 + 0.3 x 300 = 510 MW
    assert mean_w == pytest.approx(510 * MW, rel=1e-12)
    params = SmoothingParams(max_ramp_w_per_s=10 * MW)
    run = simulate_smoothing(load, DT, params, capacity_j=50 * MWH, max_charge_w=300 * MW,
                             max_discharge_w=300 * MW, initial_soc=0.5, soc_min=0.1, soc_max=0.9,
                             initial_state=SmoothingState.steady(mean_w))
    # the limiter moves at most 10 MW/s x 0.1 s = 1 MW per tick; rounding ~1e-7 W
    assert max_ramp_w_per_s(run.grid_w, DT) <= 10 * MW * (1 + 1e-9)
    assert count_destabilising_events(run.grid_w, DT) == 0
    assert np.all((run.soc >= 0.1) & (run.soc <= 0.9))
    # the battery carries the swing: about +-300 MW around the mean (charging up to 210, giving up to 90)
    assert run.battery_w.max() > 200 * MW and run.battery_w.min() < -80 * MW
    assert energy_j(run.floor_w, DT) == 0.0 and energy_j(run.throttle_w, DT) == 0.0
    # energy closes tick by tick: grid = load + battery (no floor, no throttle)
    np.testing.assert_allclose(run.grid_w, load + run.battery_w, rtol=1e-12)


def test_without_smoothing_every_edge_is_a_destabilising_event(swing_load):
    load, _ = swing_load
    # 120 s / 1.5 s = 80 iterations, each with a 300 MW rise and a 300 MW fall in 40 ms: 160 events
    assert count_destabilising_events(load, DT) == 160
    # the job started at -100 s, so iterations start at 0.5 s + 1.5 k: the rise 300 -> 600 MW runs
    # over 0.50-0.54 s; the tick [0.5, 0.6) averages (0.04 x 450 + 0.06 x 600) / 0.1 = 540 MW
    # after a 300 MW tick: 240 MW / 0.1 s = 2400 MW/s
    assert max_ramp_w_per_s(load, DT) == pytest.approx(2400 * MW, rel=1e-9)


def _step(load_before, load_after, n=200):
    return np.concatenate((np.full(10, load_before), np.full(n, load_after)))


def test_floors_burn_power_when_the_battery_cannot_charge():
    # pure ramp limiter (lowpass 0, no SoC restoring), battery cannot charge, load steps 300 -> 150 MW.
    # grid falls 1 MW per tick: at tick k after the step grid = 300 - k MW and the floor burns
    # 150 - k MW for k = 1..150: energy = 0.1 s x sum_{j=0}^{149} j MW = 0.1 x 11 175 = 1117.5 MJ
    params = SmoothingParams(max_ramp_w_per_s=10 * MW, lowpass_s=0.0, soc_restore_s=math.inf)
    load = _step(300 * MW, 150 * MW)
    run = simulate_smoothing(load, DT, params, capacity_j=10 * MWH, max_charge_w=0.0, max_discharge_w=100 * MW,
                             initial_state=SmoothingState.steady(300 * MW))
    assert energy_j(run.floor_w, DT) == pytest.approx(1117.5 * MW, rel=1e-9)
    assert max_ramp_w_per_s(run.grid_w, DT) <= 10 * MW * (1 + 1e-9)
    assert np.all(run.battery_w == 0.0) and energy_j(run.throttle_w, DT) == 0.0


def test_battery_first_then_floor_when_it_is_full():
    # same step with a battery that may charge 100 MW: it takes the first 100 MW of the gap,
    # the floor the rest: floor = max(0, 150 - k - 100) MW for k = 1..49: 0.1 x sum_{j=1}^{49} j
    # = 0.1 x 1225 = 122.5 MJ
    params = SmoothingParams(max_ramp_w_per_s=10 * MW, lowpass_s=0.0, soc_restore_s=math.inf)
    run = simulate_smoothing(_step(300 * MW, 150 * MW), DT, params, capacity_j=10 * MWH, max_charge_w=100 * MW,
                             max_discharge_w=100 * MW, initial_state=SmoothingState.steady(300 * MW))
    assert energy_j(run.floor_w, DT) == pytest.approx(122.5 * MW, rel=1e-9)
    assert run.battery_w.max() == pytest.approx(100 * MW)


def test_throttling_is_the_last_resort_on_a_rise_and_without_it_the_meter_jumps():
    # step 150 -> 300 MW with an empty battery: the load is held back 150 - k MW, k = 1..150: 1117.5 MJ
    params = SmoothingParams(max_ramp_w_per_s=10 * MW, lowpass_s=0.0, soc_restore_s=math.inf)
    load = _step(150 * MW, 300 * MW)
    kw = {"capacity_j": 10 * MWH, "max_charge_w": 100 * MW, "max_discharge_w": 100 * MW, "initial_soc": 0.0,
              "initial_state": SmoothingState.steady(150 * MW)}
    run = simulate_smoothing(load, DT, params, **kw)
    assert energy_j(run.throttle_w, DT) == pytest.approx(1117.5 * MW, rel=1e-9)
    assert max_ramp_w_per_s(run.grid_w, DT) <= 10 * MW * (1 + 1e-9)
    # throttling off: the meter sees the 150 MW step in one tick: 1500 MW/s, one DCPI event
    off = simulate_smoothing(load, DT, SmoothingParams(max_ramp_w_per_s=10 * MW, lowpass_s=0.0,
                                                       soc_restore_s=math.inf, throttle=False), **kw)
    assert max_ramp_w_per_s(off.grid_w, DT) == pytest.approx(1500 * MW, rel=1e-9)
    assert count_destabilising_events(off.grid_w, DT) == 1


def test_soc_restoring_term_and_vectorised_step():
    # steady load 100 MW, SoC 0.4 vs target 0.5 on 1 MWh (3.6e9 J), restore over 600 s:
    # preferred charge (0.1 x 3.6e9) / 600 = 600 kW, but the grid may move only 1 MW per tick: it
    # takes 0.6 MW; battery +0.6 MW
    params = SmoothingParams(max_ramp_w_per_s=10 * MW)
    st = SmoothingState.steady(np.array([100 * MW, 100 * MW]))
    bat = BatteryLimits(np.array([-50 * MW, -50 * MW]), np.array([50 * MW, 50 * MW]), np.array([0.4, 0.5]), MWH)
    res = smooth_step(st, np.array([100 * MW, 100 * MW]), DT, params, bat)
    np.testing.assert_allclose(res.battery_w, [0.6 * MW, 0.0], atol=1e-6)
    np.testing.assert_allclose(res.grid_w, [100.6 * MW, 100 * MW], rtol=1e-12)
    with pytest.raises(ValueError, match="dt_s"):
        smooth_step(st, 1.0, 0.0, params, bat)
    with pytest.raises(ValueError, match="battery limits"):
        smooth_step(st, 1.0, DT, params, BatteryLimits(1.0, 2.0))


def test_gpu_profile_maps_nvml_parameters_to_fleet_limits():
    prof = GpuSmoothingProfile(n_gpus=1000, secondary_power_floor_w=300.0, ramp_down_rate_w_per_s=500.0)
    p = SmoothingParams.with_gpu_profile(prof, max_ramp_w_per_s=1 * MW)
    # 1000 x 300 W = 300 kW floor; 1000 x 500 W/s = 0.5 MW/s ramp-down
    assert p.floor_w == pytest.approx(300e3) and p.ramp_down_w_per_s == pytest.approx(0.5 * MW)
    with pytest.raises(ValueError, match="secondary_power_floor_w"):
        GpuSmoothingProfile(n_gpus=1, secondary_power_floor_w=-1.0)
    with pytest.raises(ValueError, match="max_ramp_w_per_s"):
        SmoothingParams(max_ramp_w_per_s=0.0)


def test_metrics_on_hand_series():
    p = np.array([0.0, 0.0, 10.0, 10.0, 30.0, 30.0])       # 50 ms samples
    np.testing.assert_allclose(window_average_w(p, 0.05, 0.1), [0.0, 10.0, 30.0])
    # 100 ms means 0, 10, 30: largest step 20 W / 0.1 s = 200 W/s
    assert max_ramp_w_per_s(p, 0.05) == pytest.approx(200.0)
    # configurable rule: > 15 W within < 0.25 s (lags of 1 or 2 windows): 0 -> 30 in 0.2 s, one rising run
    assert count_destabilising_events(p, 0.05, delta_w=15.0, within_s=0.25) == 1
    # > 25 W within < 0.15 s (lag 1 only): steps are 10 and 20: none
    assert count_destabilising_events(p, 0.05, delta_w=25.0, within_s=0.15) == 0
    # up then down by 60 MW: two events; a 10 MW/s ramp to 200 MW: none
    assert count_destabilising_events([0, 0, 60e6, 60e6, 0, 0], 0.1) == 2
    assert count_destabilising_events(np.arange(0.0, 200e6, 1e6), 0.1) == 0
    with pytest.raises(ValueError, match="window_s"):
        window_average_w(p, 0.03, 0.1)


def test_predictive_preparation_schedule():
    # 300 MW start at 10 MW/s: E = 300e6^2 / (2 x 10e6) = 4.5e9 J (1.25 MWh);
    # 10 MWh = 3.6e10 J battery, soc_min 0.1: target 0.1 + 4.5e9/3.6e10 = 0.225;
    # from SoC 0.2 at 100 MW: 0.025 x 3.6e10 / 1e8 = 9 s of charging, from t = 991 s
    plan = prepare_for_workload(0.0, 1000.0, 300 * MW, max_ramp_w_per_s=10 * MW, soc=0.2, capacity_j=10 * 3.6e9,
                                soc_min=0.1, soc_max=0.9, max_charge_w=100 * MW)
    assert plan.start_energy_j == pytest.approx(4.5e9) and plan.soc_target == pytest.approx(0.225)
    assert plan.battery_lead_s == pytest.approx(9.0) and plan.feasible
    assert [(s.t_s, s.system, s.action) for s in plan.steps] == [
        (700.0, "cooling", "prestage_w"), (991.0, "battery", "charge_to_soc"),
        (1000.0, "battery", "reserve_discharge_j")]
    # announced only 5 s ahead: not feasible, and the reason says why
    late = prepare_for_workload(995.0, 1000.0, 300 * MW, max_ramp_w_per_s=10 * MW, soc=0.2,
                                capacity_j=10 * 3.6e9, soc_min=0.1, soc_max=0.9, max_charge_w=100 * MW)
    assert not late.feasible and "charging needs 9 s" in late.reason
    # a 1 MWh battery cannot hold 1.25 MWh: not feasible
    small = prepare_for_workload(0.0, 1000.0, 300 * MW, max_ramp_w_per_s=10 * MW, soc=0.5, capacity_j=3.6e9,
                                 soc_min=0.1, soc_max=0.9, max_charge_w=100 * MW)
    assert not small.feasible and "soc_max" in small.reason
