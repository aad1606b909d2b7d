"""Hand-checked values for the pure physics functions (twin/physics/).

Every expected number is worked out in the comment beside it; tolerances are stated.
Eq. 4 and its limits: seed 004 §3.3 (free cooling 0 at 25 °C dry-bulb, 1 at 12 °C
wet-bulb, linear between; pump / fan affinity floors 20 % / 15 %); COP 5.5:
REFERENCE.md §2.2; PUE decomposition: REFERENCE.md §2.4.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from twin.physics.cooling import (
    affinity_power_w,
    chiller_power_w,
    facility_power_w,
    free_cooling_fraction,
)
from twin.physics.gpu import GPU_PROFILES, capped_power_w, demand_power_w, lag_step
from twin.physics.weather import diurnal_temperature_c, wet_bulb_never_exceeds_dry_bulb
from twin.scenario import load_scenario

# ---------------------------------------------------------------- free cooling


@pytest.mark.parametrize(
    ("temp_c", "expected"),
    [
        (25.0, 0.0),  # at the zero point
        (12.0, 1.0),  # at the full point
        (18.5, 0.5),  # (25 - 18.5) / 13 = 6.5 / 13 = 0.5
        (30.0, 0.0),  # hotter than 25 °C: clipped at 0
        (5.0, 1.0),  # colder than 12 °C: clipped at 1
        (20.0, 5.0 / 13.0),  # (25 - 20) / 13
    ],
)
def test_free_cooling_equal_temperatures_is_the_linear_ramp(temp_c, expected):
    # With db == wb the formula is (25 - T) / ((25 - T) + (T - 12)) = (25 - T) / 13.
    assert free_cooling_fraction(temp_c, temp_c) == pytest.approx(expected, rel=1e-15, abs=1e-15)


def test_free_cooling_half_way_is_exact():
    # 6.5 / 13 is exactly 0.5 in binary floating point.
    assert free_cooling_fraction(18.5, 18.5) == 0.5


def test_free_cooling_split_temperatures():
    # db 20, wb 15: below_zero = 25 - 20 = 5 K, above_full = 15 - 12 = 3 K,
    # f = 5 / (5 + 3) = 0.625 (exact in binary).
    assert free_cooling_fraction(20.0, 15.0) == 0.625
    # db 24, wb 20: 1 / (1 + 8) = 1/9
    assert free_cooling_fraction(24.0, 20.0) == pytest.approx(1.0 / 9.0, rel=1e-15)


@pytest.mark.parametrize(("db_c", "wb_c"), [(25.0, 12.0), (30.0, 10.0), (40.0, -5.0)])
def test_free_cooling_cold_wet_bulb_wins_over_hot_dry_bulb(db_c, wb_c):
    # Wet-bulb at or below 12 °C gives 1 even when the dry-bulb is at or above 25 °C.
    assert free_cooling_fraction(db_c, wb_c) == 1.0


def test_free_cooling_hot_dry_bulb_with_warm_wet_bulb_is_zero():
    # db 26 (>= 25), wb 13 (> 12): no free cooling.
    assert free_cooling_fraction(26.0, 13.0) == 0.0


def test_free_cooling_custom_limits():
    # Limits 30 / 10, db = wb = 20: (30 - 20) / (30 - 10) = 0.5.
    assert free_cooling_fraction(20.0, 20.0, zero_at_dry_bulb_c=30.0, full_at_wet_bulb_c=10.0) == 0.5


def test_free_cooling_scalar_in_float_out_array_in_array_out():
    scalar = free_cooling_fraction(20.0, 15.0)
    assert type(scalar) is float
    arr = free_cooling_fraction(np.array([25.0, 18.5, 12.0, 20.0]), np.array([25.0, 18.5, 12.0, 15.0]))
    assert isinstance(arr, np.ndarray)
    assert arr.shape == (4,)
    np.testing.assert_allclose(arr, [0.0, 0.5, 1.0, 0.625], rtol=0, atol=1e-15)
    # broadcasting: one wet-bulb against three dry-bulbs
    b = free_cooling_fraction(np.array([20.0, 24.0, 30.0]), 15.0)
    np.testing.assert_allclose(b, [5 / 8, 1 / 4, 0.0], rtol=0, atol=1e-15)  # 1/(1+3)=1/4


def test_free_cooling_stays_in_unit_interval_over_a_grid():
    db, wb = np.meshgrid(np.linspace(-30.0, 50.0, 161), np.linspace(-30.0, 50.0, 161))
    f = free_cooling_fraction(db, wb)
    assert f.shape == db.shape
    assert np.all(np.isfinite(f))
    assert f.min() == 0.0 and f.max() == 1.0
    assert np.all((f >= 0.0) & (f <= 1.0))


def test_free_cooling_is_monotone_in_each_temperature():
    # Warmer air never gives more free cooling.
    t = np.linspace(-10.0, 40.0, 501)
    f_db = free_cooling_fraction(t, 15.0)
    f_wb = free_cooling_fraction(20.0, t)
    assert np.all(np.diff(f_db) <= 0.0) and f_db[0] > f_db[-1]
    assert np.all(np.diff(f_wb) <= 0.0) and f_wb[0] > f_wb[-1]


# ---------------------------------------------------------------- pumps, fans, chiller


def test_affinity_cube_law_above_the_floor():
    # 1000 W at design, half flow: 1000 * 0.5**3 = 125 W.
    assert affinity_power_w(0.5, 1000.0, 0.2) == pytest.approx(125.0, rel=1e-15)
    assert affinity_power_w(1.0, 1000.0, 0.2) == pytest.approx(1000.0, rel=1e-15)
    # Other exponent: 1000 * 0.5**2.4 = 189.464571...
    assert affinity_power_w(0.5, 1000.0, 0.2, exponent=2.4) == pytest.approx(1000.0 * 0.5**2.4, rel=1e-15)


def test_affinity_floor_binds_below_min_fraction():
    # Load 0.1 < floor 0.2: power = 0.2**3 * 1000 = 8 W (not 0.1**3 * 1000 = 1 W).
    assert affinity_power_w(0.1, 1000.0, 0.2) == pytest.approx(8.0, rel=1e-14)
    assert affinity_power_w(0.0, 1000.0, 0.2) == pytest.approx(8.0, rel=1e-14)
    # Fan floor 0.15: 0.15**3 * 1000 = 3.375 W.
    assert affinity_power_w(0.05, 1000.0, 0.15) == pytest.approx(3.375, rel=1e-14)
    # vectorised
    np.testing.assert_allclose(affinity_power_w(np.array([0.1, 0.5, 1.0]), 1000.0, 0.2),
                               [8.0, 125.0, 1000.0], rtol=1e-14)


def test_chiller_power():
    # 1 MW heat, no free cooling, COP 5.5: 1e6 / 5.5 = 181818.18... W.
    assert chiller_power_w(1e6, 0.0, 5.5) == pytest.approx(1e6 / 5.5, rel=1e-15)
    # 25 % free: 0.75e6 / 5.5 = 136363.63... W.
    assert chiller_power_w(1e6, 0.25, 5.5) == pytest.approx(136363.63636363636, rel=1e-14)
    # All free: 0 W.
    assert chiller_power_w(1e6, 1.0, 5.5) == 0.0


# ---------------------------------------------------------------- Eq. 4


EQ4 = dict(chiller_cop=5.5, pump_design_fraction=0.02, fan_design_fraction=0.03, misc_fraction=0.03)


def test_facility_power_at_a_hand_computed_point():
    # Design 1 MW, IT 500 kW (load fraction 0.5), db 30 °C (>= 25) wb 20 °C (> 12): free = 0.
    # chiller = 500e3 / 5.5           =  90 909.0909... W
    # pump    = 0.02 * 1e6 * 0.5**3   =   2 500 W   (0.5 > floor 0.20)
    # fan     = 0.03 * 1e6 * 0.5**3   =   3 750 W   (0.5 > floor 0.15)
    # misc    = 0.03 * 1e6            =  30 000 W
    # total   = 500 000 + 90 909.0909 + 2 500 + 3 750 + 30 000 = 627 159.0909... W
    #         = 536 250 + 1e6/11 W;  PUE = total / 500e3 = 1.2543181818...
    c = facility_power_w(500e3, 1e6, 30.0, 20.0, **EQ4)
    assert c["free_cooling_fraction"] == 0.0
    assert c["chiller_power_w"] == pytest.approx(500e3 / 5.5, rel=1e-12)
    assert c["pump_power_w"] == pytest.approx(2500.0, rel=1e-12)
    assert c["fan_power_w"] == pytest.approx(3750.0, rel=1e-12)
    assert c["misc_power_w"] == pytest.approx(30000.0, rel=1e-12)
    total = 536250.0 + 1e6 / 11.0
    assert c["facility_power_w"] == pytest.approx(total, rel=1e-12)
    assert c["facility_power_w"] / 500e3 == pytest.approx(1.2543181818181818, rel=1e-12)


def test_facility_power_low_load_hits_both_floors():
    # Design 1 MW, IT 100 kW (0.1 < both floors), db = wb = 18.5 °C: free = 0.5.
    # chiller = 0.5 * 100e3 / 5.5 = 9 090.909... W
    # pump    = 0.02 * 1e6 * 0.20**3 = 160 W;  fan = 0.03 * 1e6 * 0.15**3 = 101.25 W
    # misc    = 30 000 W;  total = 100 000 + 9 090.909 + 160 + 101.25 + 30 000 = 139 352.159... W
    c = facility_power_w(100e3, 1e6, 18.5, 18.5, **EQ4)
    assert c["free_cooling_fraction"] == 0.5
    assert c["pump_power_w"] == pytest.approx(160.0, rel=1e-12)
    assert c["fan_power_w"] == pytest.approx(101.25, rel=1e-12)
    assert c["facility_power_w"] == pytest.approx(130261.25 + 50e3 / 5.5, rel=1e-12)


def test_facility_power_is_vectorised_over_it_power():
    it = np.array([100e3, 500e3, 1e6])
    c = facility_power_w(it, 1e6, 30.0, 20.0, **EQ4)
    assert c["facility_power_w"].shape == (3,)
    assert c["misc_power_w"].shape == (3,)
    for i, p in enumerate(it):
        one = facility_power_w(float(p), 1e6, 30.0, 20.0, **EQ4)
        assert c["facility_power_w"][i] == pytest.approx(one["facility_power_w"], rel=1e-15)


def test_full_load_pue_of_the_shipped_m100_defaults(scenarios_dir):
    sc = load_scenario(scenarios_dir / "m100_day.toml")
    assert sc.cooling.model == "paper_eq4"
    params = dict(sc.cooling.params)
    # The shipped (calibrated) coefficients are the ones this arithmetic assumes.
    assert (params["chiller_cop"], params["pump_design_fraction"], params["fan_design_fraction"],
            params["misc_fraction"]) == (5.5, 0.05, 0.075, 0.075)
    design = 1e6
    # No free cooling (db 30, wb 20): PUE = 1 + 1/5.5 + 0.05 + 0.075 + 0.075 = 1.381818...
    hot = facility_power_w(design, design, 30.0, 20.0, **params)
    assert hot["facility_power_w"] / design == pytest.approx(1.0 + 1.0 / 5.5 + 0.2, rel=1e-12)
    # Full free cooling (db 10, wb 5): PUE = 1 + 0 + 0.2 = 1.20, the Marconi100 design point
    cold = facility_power_w(design, design, 10.0, 5.0, **params)
    assert cold["facility_power_w"] / design == pytest.approx(1.20, rel=1e-12)


# ---------------------------------------------------------------- GPU board power


def test_demand_power():
    # V100: idle 56.58 W, max 300 W; util 0.5: 56.58 + 0.5 * 243.42 = 178.29 W.
    assert demand_power_w(0.5, 56.58, 300.0) == pytest.approx(178.29, rel=1e-14)
    assert demand_power_w(0.0, 56.58, 300.0) == 56.58
    assert demand_power_w(1.0, 56.58, 300.0) == 300.0
    np.testing.assert_allclose(demand_power_w(np.array([0.0, 0.25, 1.0]), 56.58, 300.0),
                               [56.58, 56.58 + 0.25 * 243.42, 300.0], rtol=1e-14)


def test_capped_power():
    assert capped_power_w(178.29, 200.0) == 178.29  # below the cap: unchanged
    assert capped_power_w(300.0, 200.0) == 200.0  # above: clipped
    np.testing.assert_array_equal(capped_power_w(np.array([100.0, 250.0, 300.0]), np.array([150.0, 200.0, 300.0])),
                                  [100.0, 200.0, 300.0])


def test_v100_profile_matches_reference():
    # REFERENCE.md §1.1: V100-SXM2-32GB limits 150-300 W, idle 56.58 W.
    p = GPU_PROFILES["V100-SXM2-32GB"]
    assert (p.min_limit_w, p.max_limit_w, p.idle_w) == (150.0, 300.0, 56.58)
    # tau = 21 ms settling to 5 % / 3 = 7 ms (seed 004 §5.1 E2)
    assert p.power_time_constant_s == pytest.approx(0.007, rel=1e-15)


@pytest.mark.parametrize(("p0_w", "target_w", "dt_s", "tau_s"),
                         [(300.0, 150.0, 0.02, 0.007), (56.58, 200.0, 0.005, 0.007), (100.0, 250.0, 3.0, 1.0)])
def test_lag_step_matches_numerical_integration(p0_w, target_w, dt_s, tau_s):
    # dp/dt = (target - p)/tau, dE/dt = p, integrated with DOP853 at rtol 1e-12:
    # the closed form must agree within rel 1e-6 (integration error is far smaller).
    sol = solve_ivp(lambda t, y: [(target_w - y[0]) / tau_s, y[0]], (0.0, dt_s), [p0_w, 0.0],
                    method="DOP853", rtol=1e-12, atol=1e-12)
    assert sol.success
    p_end, e = lag_step(p0_w, target_w, dt_s, tau_s)
    assert p_end == pytest.approx(sol.y[0, -1], rel=1e-6)
    assert e == pytest.approx(sol.y[1, -1], rel=1e-6)


def test_lag_step_closed_form_by_hand():
    # p0 300, target 200, tau 1 s, dt 1 s:
    # p_end = 200 + 100 * e**-1 = 236.787944...
    # E     = 200 * 1 + 100 * 1 * (1 - e**-1) = 263.212055... J
    p_end, e = lag_step(300.0, 200.0, 1.0, 1.0)
    assert p_end == pytest.approx(200.0 + 100.0 * np.exp(-1.0), rel=1e-15)
    assert e == pytest.approx(200.0 + 100.0 * (1.0 - np.exp(-1.0)), rel=1e-15)


def test_lag_step_energy_is_additive():
    # Two half steps must give the same end power and energy as one step.
    p0, target, dt, tau = 300.0, 150.0, 0.02, 0.007
    p_full, e_full = lag_step(p0, target, dt, tau)
    p_half, e1 = lag_step(p0, target, dt / 2, tau)
    p_two, e2 = lag_step(p_half, target, dt / 2, tau)
    assert p_two == pytest.approx(p_full, rel=1e-12)
    assert e1 + e2 == pytest.approx(e_full, rel=1e-12)


def test_lag_step_zero_interval():
    p_end, e = lag_step(250.0, 150.0, 0.0, 0.007)
    assert p_end == 250.0
    assert e == 0.0


def test_lag_step_vectorised():
    p0 = np.array([300.0, 56.58])
    tgt = np.array([150.0, 200.0])
    p_end, e = lag_step(p0, tgt, 0.01, 0.007)
    for i in range(2):
        pi, ei = lag_step(p0[i], tgt[i], 0.01, 0.007)
        assert p_end[i] == pytest.approx(pi, rel=1e-15)
        assert e[i] == pytest.approx(ei, rel=1e-15)


# ---------------------------------------------------------------- weather


def test_diurnal_max_at_peak_and_min_twelve_hours_later():
    # mean 19.5, range 10, peak 15 h: max 19.5 + 5 = 24.5 at 15 h, min 14.5 at 3 h (15 + 12 wraps to 27 = 3).
    assert diurnal_temperature_c(15.0, 19.5, 10.0, 15.0) == pytest.approx(24.5, abs=1e-12)
    assert diurnal_temperature_c(27.0, 19.5, 10.0, 15.0) == pytest.approx(14.5, abs=1e-12)
    assert diurnal_temperature_c(3.0, 19.5, 10.0, 15.0) == pytest.approx(14.5, abs=1e-12)
    # six hours off the peak the cosine is 0: the mean
    assert diurnal_temperature_c(9.0, 19.5, 10.0, 15.0) == pytest.approx(19.5, abs=1e-12)
    h = np.linspace(0.0, 24.0, 2401)
    t = diurnal_temperature_c(h, 19.5, 10.0, 15.0)
    assert t.max() == pytest.approx(24.5, abs=1e-12) and h[t.argmax()] == pytest.approx(15.0, abs=1e-12)
    assert t.min() == pytest.approx(14.5, abs=1e-12) and h[t.argmin()] == pytest.approx(3.0, abs=1e-12)


def test_diurnal_mean_over_a_day():
    # Equally spaced samples over a whole period: the cosine terms sum to 0.
    h = np.arange(96) * 0.25
    t = diurnal_temperature_c(h, 19.5, 10.0, 15.0)
    assert t.mean() == pytest.approx(19.5, abs=1e-12)


def test_diurnal_wraps_every_24_hours_and_returns_float_for_scalar():
    a = diurnal_temperature_c(5.3, 10.0, 8.0, 14.0)
    assert type(a) is float
    assert diurnal_temperature_c(5.3 + 24.0, 10.0, 8.0, 14.0) == pytest.approx(a, abs=1e-12)


@pytest.mark.parametrize(
    ("db_mean", "db_range", "wb_mean", "wb_range", "expected"),
    [
        (19.5, 10.0, 15.3, 5.0, True),  # gap mean 4.2 >= |10 - 5| / 2 = 2.5
        (20.0, 10.0, 19.0, 2.0, False),  # gap mean 1 < |10 - 2| / 2 = 4
        (20.0, 10.0, 16.0, 2.0, True),  # 4 >= 4: touches at the trough, never exceeds
        (20.0, 2.0, 19.0, 6.0, False),  # wet-bulb swings more: 1 < |2 - 6| / 2 = 2
        (15.0, 5.0, 16.0, 5.0, False),  # wet-bulb mean above dry-bulb mean
    ],
)
def test_wet_bulb_never_exceeds_dry_bulb(db_mean, db_range, wb_mean, wb_range, expected):
    assert wet_bulb_never_exceeds_dry_bulb(db_mean, db_range, wb_mean, wb_range) is expected
    # Cross-check by sampling the day (peak hour is irrelevant: both curves share it).
    h = np.linspace(0.0, 24.0, 4801)
    gap = diurnal_temperature_c(h, db_mean, db_range, 15.0) - diurnal_temperature_c(h, wb_mean, wb_range, 15.0)
    assert bool(gap.min() >= -1e-12) is expected
