"""Facility components (twin/facility/): hand-computed energies, errors and the plant protocol.

Every expected number is worked out in the comment beside it; tolerances are stated.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pytest

from twin.control.plant import CapOutOfRangeError, GpuPlant, PlantError
from twin.facility.balance import EnergyBalanceError, EnergyLedger
from twin.facility.cooling_plant import make_cooling_model
from twin.facility.gpu_fleet import GpuFleet, TwinGpuPlant
from twin.facility.grid import CarbonSignal
from twin.facility.site import Site
from twin.facility.weather import DiurnalWeather
from twin.physics.gpu import GPU_PROFILES

V100 = GPU_PROFILES["V100-SXM2-32GB"]  # idle 56.58 W, limits 150-300 W, tau 7 ms
IDLE = V100.idle_w
TAU = V100.power_time_constant_s
UTC = timezone.utc
EQ4 = dict(chiller_cop=5.5, pump_design_fraction=0.02, fan_design_fraction=0.03, misc_fraction=0.03)


def two_cohorts(cap_w: float = 200.0) -> GpuFleet:
    # 2 cohorts x 2 GPUs, 1 host each; hosts 100 W idle, 300 W busy.
    return GpuFleet(V100, gpu_count=[2, 2], host_count=[1, 1], cap_w=cap_w, host_idle_w=100.0, host_busy_w=300.0)


# ---------------------------------------------------------------- GpuFleet


def test_fleet_energy_over_a_load_schedule():
    fleet = two_cohorts(cap_w=200.0)
    fleet.set_load(10.0, [0], gpu_util=0.5, host_util=0.5)
    fleet.set_load(70.0, [0], gpu_util=0.0, host_util=0.0)
    fleet.advance_to(100.0)
    # target = min(56.58 + 0.5 * (300 - 56.58), 200) = min(178.29, 200) = 178.29 W.
    target = min(IDLE + 0.5 * (300.0 - IDLE), 200.0)
    assert target == pytest.approx(178.29, rel=1e-14)
    # Cohort 0 (2 GPUs), per lag_step: E = target*dt + (p0 - target) * tau * (1 - exp(-dt/tau)).
    #   [10, 70):  2 * (target*60 + (idle - target) * tau * (1 - exp(-60/tau)))
    #   [70, 100): 2 * (idle*30  + (target - idle) * tau * (1 - exp(-30/tau)))
    # 60 s and 30 s are > 4000 tau, so exp(-dt/tau) == 0.0 in floating point and the
    # power at 70 s is exactly the target: the two lag terms are 2*tau*(idle - target)
    # and 2*tau*(target - idle), which cancel. What is left, with [0, 10) idle:
    #   E_gpu = 4 * idle * 100 + 2 * (target - idle) * 60
    #         = 22 632 + 14 605.2 = 37 237.2 J
    lag_in = 2 * (IDLE - target) * TAU * (1.0 - math.exp(-60.0 / TAU))
    lag_out = 2 * (target - IDLE) * TAU * (1.0 - math.exp(-30.0 / TAU))
    assert lag_in + lag_out == pytest.approx(0.0, abs=1e-12)
    expected_gpu_j = 4 * IDLE * 100.0 + 2 * (target - IDLE) * 60.0
    assert expected_gpu_j == pytest.approx(37237.2, rel=1e-12)
    # The fleet uses the fitted E2 dynamics: the rise at 10 s waits the rise delay, then
    # follows tau_up_after_delay; the fall at 70 s follows tau_down. The lag terms no longer
    # cancel: 2 * (target - idle) * (tau_down - delay - tau_after)
    #       = 2 * 121.71 * (0.0156 - 0.1101 - 0.1435) = -58.06 J
    expected_gpu_j += 2 * (target - IDLE) * (V100.tau_down_s - V100.rise_delay_s - V100.tau_up_after_delay_s)
    assert fleet.gpu_energy_total_j == pytest.approx(expected_gpu_j, rel=1e-9)
    # Per cohort: cohort 1 idle all along: 2 * 56.58 * 100 = 11 316 J.
    assert fleet.gpu_energy_j[1] == pytest.approx(2 * IDLE * 100.0, rel=1e-9)
    assert fleet.gpu_energy_j[0] == pytest.approx(expected_gpu_j - 2 * IDLE * 100.0, rel=1e-9)
    # Hosts: cohort 0 at 100 + 0.5 * 200 = 200 W for 60 s and 100 W for 40 s: 12 000 + 4 000 J;
    # cohort 1 at 100 W for 100 s: 10 000 J. Total 26 000 J.
    np.testing.assert_allclose(fleet.host_energy_j, [16000.0, 10000.0], rtol=1e-12)
    assert fleet.host_energy_total_j == pytest.approx(26000.0, rel=1e-12)
    assert fleet.t_s == 100.0
    # Back to idle: IT power now = 4 * 56.58 + 2 * 100 = 426.32 W.
    assert fleet.it_power_now_w() == pytest.approx(4 * IDLE + 200.0, rel=1e-12)


def test_fleet_energy_does_not_depend_on_how_often_it_is_advanced():
    # Closed-form integration: advancing in 1 ms steps gives the same energy as in one step.
    a, b = two_cohorts(), two_cohorts()
    a.set_load(0.0, [0, 1], gpu_util=1.0, host_util=1.0)
    b.set_load(0.0, [0, 1], gpu_util=1.0, host_util=1.0)
    for t in np.arange(1, 51) * 1e-3:
        a.advance_to(float(t))
    b.advance_to(0.05)
    assert a.gpu_energy_total_j == pytest.approx(b.gpu_energy_total_j, rel=1e-12)
    np.testing.assert_allclose(a.power_w, b.power_w, rtol=1e-12)


def test_fleet_cap_clips_a_high_demand():
    fleet = two_cohorts(cap_w=200.0)
    fleet.set_load(0.0, [0], gpu_util=1.0, host_util=1.0)
    # demand = 56.58 + 1 * (300 - 56.58) = 300 W > cap 200 W: target 200 W, in force once the
    # 110 ms rise delay has passed
    assert fleet.target_w[0] == IDLE
    fleet.advance_to(0.2)
    assert fleet.target_w[0] == 200.0
    assert fleet.target_w[1] == IDLE
    fleet.advance_to(10.0)  # 10 s = 40 tau_up: settled
    assert fleet.power_w[0] == pytest.approx(200.0, rel=1e-12)


def test_fleet_cannot_advance_backwards():
    fleet = two_cohorts()
    fleet.advance_to(5.0)
    with pytest.raises(ValueError, match="backwards"):
        fleet.advance_to(4.0)
    assert fleet.t_s == 5.0
    fleet.advance_to(5.0)  # zero-length advance is allowed and changes nothing
    assert fleet.gpu_energy_total_j == pytest.approx(4 * IDLE * 5.0, rel=1e-12)  # 4 * 56.58 * 5 = 1131.6 J


@pytest.mark.parametrize("bad_t_s", [float("nan"), float("inf")])
def test_fleet_rejects_a_non_finite_time_and_keeps_its_state(bad_t_s):
    fleet = two_cohorts()
    fleet.advance_to(5.0)
    with pytest.raises(ValueError, match="non-finite"):
        fleet.advance_to(bad_t_s)
    assert fleet.t_s == 5.0
    assert fleet.gpu_energy_total_j == pytest.approx(4 * IDLE * 5.0, rel=1e-12)


def test_set_cap_with_a_scalar_cohort_raises_the_plant_error():
    fleet = two_cohorts(cap_w=200.0)
    with pytest.raises(CapOutOfRangeError, match="cohort 0"):
        fleet.set_cap(0.0, 0, 400.0)
    fleet.set_cap(0.0, 0, 250.0)
    np.testing.assert_array_equal(fleet.cap_w, [250.0, 200.0])


@pytest.mark.parametrize("bad_cap_w", [400.0, 149.9, float("nan")])
def test_set_cap_out_of_range_names_value_and_range_and_sets_nothing(bad_cap_w):
    fleet = two_cohorts(cap_w=200.0)
    fleet.advance_to(1.0)
    e_before = fleet.gpu_energy_total_j
    with pytest.raises(CapOutOfRangeError) as info:
        fleet.set_cap(2.0, [0, 1], bad_cap_w)
    msg = str(info.value)
    assert f"{bad_cap_w:g} W" in msg
    assert "150-300 W" in msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, PlantError)
    np.testing.assert_array_equal(fleet.cap_w, [200.0, 200.0])
    assert fleet.t_s == 1.0 and fleet.gpu_energy_total_j == e_before


def test_set_cap_rejects_the_whole_request_if_one_cohort_is_out_of_range():
    fleet = two_cohorts(cap_w=200.0)
    with pytest.raises(CapOutOfRangeError, match="cohort 1"):
        fleet.set_cap(0.0, [0, 1], [250.0, 350.0])
    np.testing.assert_array_equal(fleet.cap_w, [200.0, 200.0])


def test_fleet_rejects_an_initial_cap_out_of_range():
    with pytest.raises(CapOutOfRangeError, match="100 W"):
        two_cohorts(cap_w=100.0)


# ---------------------------------------------------------------- TwinGpuPlant


class Clock:
    def __init__(self, t_s: float = 0.0):
        self.t_s = t_s

    def __call__(self) -> float:
        return self.t_s


def test_twin_plant_satisfies_the_protocol():
    plant = TwinGpuPlant(two_cohorts(), Clock())
    assert isinstance(plant, GpuPlant)
    assert plant.n_cohorts == 2


def test_twin_plant_power_converges_to_a_cap_step():
    fleet = two_cohorts(cap_w=300.0)
    clock = Clock()
    plant = TwinGpuPlant(fleet, clock)
    fleet.set_load(0.0, [0, 1], gpu_util=1.0, host_util=1.0)
    clock.t_s = 10.0  # 40 tau_up: settled at the 300 W demand
    np.testing.assert_allclose(plant.read_power_w(), [300.0, 300.0], rtol=1e-12)
    plant.set_power_cap_w(np.array([0]), np.array([200.0]))
    clock.t_s = 10.0 + 10 * V100.tau_down_s
    p = plant.read_power_w()
    # A step down follows tau_down: after 10 tau_down the gap is (300 - 200) * exp(-10) = 4.54e-3 W.
    assert p[0] - 200.0 == pytest.approx(100.0 * math.exp(-10.0), rel=1e-3)
    assert p[1] == pytest.approx(300.0, rel=1e-12)  # untouched cohort


def test_twin_plant_cap_reads_reflect_writes():
    clock = Clock()
    plant = TwinGpuPlant(two_cohorts(cap_w=200.0), clock)
    np.testing.assert_array_equal(plant.read_power_cap_w(), [200.0, 200.0])
    clock.t_s = 3.0
    plant.set_power_cap_w(np.array([1]), np.array([175.0]))
    np.testing.assert_array_equal(plant.read_power_cap_w(), [200.0, 175.0])
    with pytest.raises(CapOutOfRangeError):
        plant.set_power_cap_w(np.array([0]), np.array([500.0]))
    np.testing.assert_array_equal(plant.read_power_cap_w(), [200.0, 175.0])
    # a returned array is a copy
    plant.read_power_cap_w()[:] = 0.0
    np.testing.assert_array_equal(plant.read_power_cap_w(), [200.0, 175.0])


def test_twin_plant_power_limits_are_copies():
    fleet = two_cohorts()
    plant = TwinGpuPlant(fleet, Clock())
    lo, hi = plant.power_limits_w()
    np.testing.assert_array_equal(lo, [150.0, 150.0])
    np.testing.assert_array_equal(hi, [300.0, 300.0])
    lo[:] = 0.0
    hi[:] = 1e6
    np.testing.assert_array_equal(fleet.min_limit_w, [150.0, 150.0])
    np.testing.assert_array_equal(fleet.max_limit_w, [300.0, 300.0])
    lo2, hi2 = plant.power_limits_w()
    np.testing.assert_array_equal(lo2, [150.0, 150.0])
    np.testing.assert_array_equal(hi2, [300.0, 300.0])
    # and the range check still uses the true limits
    with pytest.raises(CapOutOfRangeError):
        plant.set_power_cap_w(np.array([0]), np.array([500.0]))


# ---------------------------------------------------------------- CarbonSignal


def carbon() -> CarbonSignal:
    # Run starts 00:30 UTC; hourly values from 00:00: covers 00:00-03:00.
    return CarbonSignal(datetime(2024, 1, 1, 0, 30, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC),
                        [100.0, 200.0, 300.0])


def test_carbon_signal_returns_the_hours_value():
    c = carbon()
    assert c.at(0.0) == 100.0  # 00:30
    assert c.at(1799.0) == 100.0  # 00:59:59
    assert c.at(1800.0) == 200.0  # 01:00
    assert c.at(5400.0) == 300.0  # 02:00
    assert c.at(8999.0) == 300.0  # 02:59:59
    assert c.at(-1800.0) == 100.0  # 00:00, before the run start but still covered


@pytest.mark.parametrize("t_s", [9000.0, -1801.0, 1e6])
def test_carbon_signal_outside_its_range_raises_with_the_range(t_s):
    with pytest.raises(ValueError) as info:
        carbon().at(t_s)
    msg = str(info.value)
    assert "2024-01-01T00:00:00+00:00 to 2024-01-01T03:00:00+00:00" in msg
    assert f"t={t_s:g} s" in msg


def test_carbon_signal_rejects_bad_series():
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="non-empty"):
        CarbonSignal(start, start, [])
    with pytest.raises(ValueError, match=">= 0"):
        CarbonSignal(start, start, [100.0, -1.0])
    with pytest.raises(ValueError, match="after the run start"):
        CarbonSignal(start, datetime(2024, 1, 1, 1, tzinfo=UTC), [100.0])


# ---------------------------------------------------------------- Site


def constant_site() -> Site:
    fleet = two_cohorts(cap_w=250.0)
    # util 1: demand 300 W, capped at 250 W per GPU -> 4 * 250 = 1000 W of GPUs;
    # hosts busy: 2 * 300 = 600 W. IT = 1600 W.
    fleet.set_load(0.0, [0, 1], gpu_util=1.0, host_util=1.0)
    start = datetime(2024, 7, 1, tzinfo=UTC)
    # Range 0 K: constant db 30 °C, wb 20 °C -> no free cooling.
    weather = DiurnalWeather(start, dry_bulb_mean_c=30.0, dry_bulb_range_k=0.0, wet_bulb_mean_c=20.0,
                             wet_bulb_range_k=0.0, peak_hour_utc=15.0)
    grid = CarbonSignal(start, start, [250.0] * 24)
    site = Site(fleet, make_cooling_model("paper_eq4", EQ4, 3200.0), weather, grid)
    site.open_at(60.0)  # 60 s = 8571 tau: board power settled at 250 W
    return site


def test_site_close_tick_on_a_constant_load():
    site = constant_site()
    row = site.close_tick(660.0)
    assert len(row) == len(Site.COLUMNS)
    r = dict(zip(Site.COLUMNS, row))
    assert r["gpu_power_w"] == pytest.approx(1000.0, rel=1e-9)
    assert r["host_power_w"] == pytest.approx(600.0, rel=1e-12)
    assert r["it_power_w"] == pytest.approx(1600.0, rel=1e-9)
    # Design 3200 W, load fraction 0.5, db 30 / wb 20 -> free 0:
    # chiller 1600/5.5 = 3200/11 W; pump 0.02*3200*0.125 = 8 W; fan 0.03*3200*0.125 = 12 W;
    # misc 0.03*3200 = 96 W. Facility = 1600 + 8 + 12 + 96 + 3200/11 = 22076/11 = 2006.909... W.
    fac_w = 22076.0 / 11.0
    assert r["free_cooling_fraction"] == 0.0
    assert (r["dry_bulb_c"], r["wet_bulb_c"]) == (30.0, 20.0)
    assert r["chiller_power_w"] == pytest.approx(3200.0 / 11.0, rel=1e-9)
    assert r["pump_power_w"] == pytest.approx(8.0, rel=1e-9)
    assert r["fan_power_w"] == pytest.approx(12.0, rel=1e-9)
    assert r["misc_power_w"] == pytest.approx(96.0, rel=1e-12)
    assert r["facility_power_w"] == pytest.approx(fac_w, rel=1e-9)
    assert r["pue"] == pytest.approx(r["facility_power_w"] / r["it_power_w"], rel=1e-15)
    assert r["pue"] == pytest.approx(fac_w / 1600.0, rel=1e-9)  # 1.254318...
    # co2 = 22076/11 W * 600 s / 3.6e6 J/kWh * 250 g/kWh = 22076/11 / 24 = 83.6212... g
    assert r["carbon_intensity_g_per_kwh"] == 250.0
    assert r["co2_g"] == pytest.approx(r["facility_power_w"] * 600.0 / 3.6e6 * 250.0, rel=1e-15)
    assert r["co2_g"] == pytest.approx(22076.0 / 264.0, rel=1e-9)


def test_site_ticks_are_consecutive_and_energy_is_not_double_counted():
    site = constant_site()
    rows = [dict(zip(Site.COLUMNS, site.close_tick(t))) for t in (360.0, 660.0)]
    for r in rows:
        assert r["it_power_w"] == pytest.approx(1600.0, rel=1e-9)
    # two 300 s ticks = one 600 s tick: 83.62 g split in halves
    assert rows[0]["co2_g"] + rows[1]["co2_g"] == pytest.approx(22076.0 / 264.0, rel=1e-9)


@pytest.mark.parametrize("t1_s", [60.0, 30.0])
def test_site_tick_of_zero_or_negative_length_raises(t1_s):
    site = constant_site()  # opened at 60 s
    with pytest.raises(ValueError, match="positive length"):
        site.close_tick(t1_s)


def test_site_books_a_balanced_ledger_and_a_leak_fails_it():
    site = constant_site()
    for t in (360.0, 660.0):
        site.close_tick(t)
    led = site.ledger
    # in: IT 1600 W + cooling (3200/11 + 8 + 12) W + misc 96 W over 600 s
    assert led.total_in_j == pytest.approx((1600.0 + 3200.0 / 11 + 20.0 + 96.0) * 600.0, rel=1e-12)
    assert led.check() < 1e-12
    # a 0.2 % leak in the heat the plant reports as rejected breaks the 0.1 % tolerance
    led.outflows["heat_rejected"] *= 0.998
    with pytest.raises(EnergyBalanceError, match="energy balance off by 0.1"):
        led.check()


def test_ledger_rejects_bad_tolerance_and_empty_is_balanced():
    assert EnergyLedger().rel_error() == 0.0
    with pytest.raises(ValueError, match="tolerance"):
        EnergyLedger(tolerance=0.0)


def test_junction_temperature_follows_the_rc_model_whatever_the_steps():
    # Cohort 0 at util 1 under a 250 W cap from t = 0; steady state 33.9 + 0.1537 * P.
    a, b = two_cohorts(cap_w=250.0), two_cohorts(cap_w=250.0)
    for f in (a, b):
        f.set_load(0.0, [0], gpu_util=1.0, host_util=1.0)
        # the RC model is fed each advance's mean power, so splits only agree exactly once the
        # board power is constant: let the 0.25 s rise settle first (40 tau_up)
        f.advance_to(10.0)
    for t in np.arange(10.5, 120.01, 0.5):  # many small advances (settled stretches deferred)
        a.advance_to(float(t))
    b.advance_to(120.0)
    np.testing.assert_allclose(a.junction_temp_c(), b.junction_temp_c(), rtol=1e-12)
    np.testing.assert_allclose(a.gpu_energy_j, b.gpu_energy_j, rtol=1e-12)
    # after 120 s = 6.2 tau_th the junction is within exp(-6.2) of steady state
    t_ss = a.ambient_c + V100.r_th_k_per_w * a.power_w[0]
    t0 = a.ambient_c + V100.r_th_k_per_w * IDLE
    # the 10 s rise is fed as one mean-power interval: within 0.1 K of the ideal step response
    assert a.junction_temp_c()[0] == pytest.approx(t_ss + (t0 - t_ss) * math.exp(-120.0 / V100.tau_th_s), abs=0.1)


def test_a_rise_waits_the_fitted_delay_then_follows_the_shorter_lag():
    # E2: power does not move for ~110 ms after a raised cap, then follows a 143.5 ms lag
    fleet = two_cohorts(cap_w=300.0)
    fleet.set_load(0.0, [0], gpu_util=1.0, host_util=1.0)  # target 300 W from 0.1101 s on
    d, tau = V100.rise_delay_s, V100.tau_up_after_delay_s
    fleet.advance_to(d * 0.99)
    assert fleet.power_w[0] == pytest.approx(IDLE, rel=1e-12)
    fleet.advance_to(d + tau)  # one time constant after the delay: 63 % of the way
    assert fleet.power_w[0] == pytest.approx(300.0 - (300.0 - IDLE) * math.exp(-1.0), rel=1e-9)
    # energy: exact whatever the split (one step over the due time == many small ones)
    other = two_cohorts(cap_w=300.0)
    other.set_load(0.0, [0], gpu_util=1.0, host_util=1.0)
    for t in np.linspace(0.01, d + tau, 37):
        other.advance_to(float(t))
    assert other.gpu_energy_total_j == pytest.approx(fleet.gpu_energy_total_j, rel=1e-12)


def test_a_fall_during_a_pending_rise_cancels_it():
    fleet = two_cohorts(cap_w=300.0)
    fleet.set_load(0.0, [0], gpu_util=1.0, host_util=1.0)
    fleet.set_load(0.05, [0], gpu_util=0.0, host_util=0.0)  # the job ends before the delay is over
    fleet.advance_to(1.0)
    assert fleet.power_w[0] == pytest.approx(IDLE, rel=1e-12)
    assert fleet.gpu_energy_j[0] == pytest.approx(2 * IDLE * 1.0, rel=1e-12)
