"""Cooling plant: part-load curves, heat rejection, the coolant loop and the plant models.

Sources of the check values: REFERENCE.md §2.1 (effective exponents of the ASHRAE 90.1
G3.1.3.15 VAV fan and the openstudio-standards VSD pump curves, "within 0.01" as issue
#3 asks), §2.3 (tower approach), §2.5 (Leonardo 37/47 °C), seed 004 §3.3 and §5.2
(Eq. 4, PUE 1.20). Expected PUE bands are worked out beside each test.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import twin.facility.cooling_plant as cp
from twin.facility.cooling_plant import (
    AIR_CHILLER_ROWS,
    DLC_WARM_WATER_ROWS,
    M100_DESIGN_DRY_BULB_C,
    M100_DESIGN_WET_BULB_C,
    MODEL_PARAMETER_ROWS,
    PAPER_EQ4_ROWS,
    AirChillerParams,
    AirChillerPlant,
    CoolingFlows,
    CoolingModel,
    DlcWarmWaterParams,
    PaperEq4Params,
    calibrate_paper_eq4,
    make_cooling_model,
)
from twin.physics.coolant_loop import (
    loop_equilibrium_c,
    loop_heat_capacity_j_per_k,
    loop_step,
    plant_heat_out_w,
)
from twin.physics.cooling import (
    VAV_FAN_CURVE,
    VSD_PUMP_CURVE,
    adiabatic_air_temperature_c,
    cooling_tower_heat_rejected_w,
    cooling_tower_leaving_water_c,
    dry_cooler_leaving_fluid_c,
    economiser_fraction,
    effective_exponent,
    facility_power_w,
    fan_power_w,
    part_load_power_fraction,
    pump_power_w,
    waterside_economiser_fraction,
)

MODELS = ("paper_eq4", "air_chiller", "dlc_warm_water")
DESIGN_W = 1e6


def wet_bulb_for(dry_bulb_c):
    """Test weather: wet-bulb 1 K below dry-bulb plus 0.27 K per K above 0 °C.

    0 -> -1.0, 15 -> 9.95, 30 -> 20.9, 35 -> 24.55 °C: relative humidity roughly 80 %
    in the cold falling to ~40 % in the heat (central-European summer afternoons).
    """
    return dry_bulb_c - 1.0 - 0.27 * np.maximum(dry_bulb_c, 0.0)


# ---------------------------------------------------------------- part-load curves (REFERENCE.md §2.1)


@pytest.mark.parametrize(("x", "n"), [(0.3, 1.71), (0.5, 1.74), (0.9, 1.76)])
def test_vav_fan_effective_exponent(x, n):
    assert effective_exponent(x, part_load_power_fraction(x, VAV_FAN_CURVE)) == pytest.approx(n, abs=0.01)


@pytest.mark.parametrize(("x", "n"), [(0.3, 2.36), (0.5, 2.44), (0.9, 2.48)])
def test_vsd_pump_effective_exponent(x, n):
    assert effective_exponent(x, part_load_power_fraction(x, VSD_PUMP_CURVE)) == pytest.approx(n, abs=0.01)


def test_curves_at_design_flow_and_monotone():
    # sum of coefficients: fan 0.0013 + 0.1470 + 0.9506 - 0.0998 = 0.9991; pump 1.0059
    assert part_load_power_fraction(1.0, VAV_FAN_CURVE) == pytest.approx(0.9991, abs=1e-12)
    assert part_load_power_fraction(1.0, VSD_PUMP_CURVE) == pytest.approx(1.0059, abs=1e-12)
    x = np.linspace(0.0, 1.0, 201)
    assert np.all(np.diff(part_load_power_fraction(x, VAV_FAN_CURVE)) > 0)
    assert np.all(np.diff(part_load_power_fraction(x, VSD_PUMP_CURVE)) > 0)


def test_floors():
    # Below the floor the flow stays at it: fan 15 %, pump 20 % (seed 004 §3.3).
    assert fan_power_w(0.0, 100.0) == fan_power_w(0.15, 100.0) == pytest.approx(
        100.0 * (0.0013 + 0.1470 * 0.15 + 0.9506 * 0.15**2 - 0.0998 * 0.15**3), rel=1e-12)
    assert pump_power_w(0.05, 100.0) == pump_power_w(0.2, 100.0)
    assert pump_power_w(0.5, 100.0) > pump_power_w(0.2, 100.0)


# ---------------------------------------------------------------- heat rejection temperatures


def test_cooling_tower_leaving_water():
    # wet-bulb + 2.8 K (REFERENCE.md §2.3), floored by the tower's control.
    assert cooling_tower_leaving_water_c(20.0) == pytest.approx(22.8, abs=1e-12)
    assert cooling_tower_leaving_water_c(20.0, approach_k=3.9) == pytest.approx(23.9, abs=1e-12)
    assert cooling_tower_leaving_water_c(-10.0, min_leaving_c=5.0) == 5.0
    np.testing.assert_allclose(cooling_tower_leaving_water_c(np.array([0.0, 10.0])), [2.8, 12.8])


def test_dry_cooler_leaving_fluid():
    assert dry_cooler_leaving_fluid_c(30.0, 5.0) == 35.0
    assert dry_cooler_leaving_fluid_c(-10.0, 4.0) == -6.0


def test_adiabatic_pre_cooling():
    # db 35, wb 20, eps 0.7: full spray gives 35 - 0.7 * 15 = 24.5 °C.
    assert adiabatic_air_temperature_c(35.0, 20.0, 0.7) == pytest.approx(24.5, abs=1e-12)
    # modulated to the 32 °C that suffices
    assert adiabatic_air_temperature_c(35.0, 20.0, 0.7, target_c=32.0) == 32.0
    # no spray when the dry air is cool enough, or with effectiveness 0
    assert adiabatic_air_temperature_c(20.0, 15.0, 0.7, target_c=32.0) == 20.0
    assert adiabatic_air_temperature_c(35.0, 20.0, 0.0, target_c=32.0) == 35.0


def test_waterside_economiser_band():
    # CHW 10 -> 16 °C, HX 1.5 K, tower 2.8 K: full at wb <= 10 - 4.3 = 5.7 °C, none at
    # wb >= 16 - 4.3 = 11.7 °C, linear between: wb 8.7 -> (16 - 13) / 6 = 0.5.
    f = waterside_economiser_fraction(np.array([-5.0, 5.7, 8.7, 11.7, 20.0]), 10.0, 16.0, 1.5, 2.8)
    np.testing.assert_allclose(f, [1.0, 1.0, 0.5, 0.0, 0.0], atol=1e-12)
    assert economiser_fraction(12.0, 10.0, 16.0) == pytest.approx(4.0 / 6.0, rel=1e-12)


def test_waterside_economiser_is_monotone_in_wet_bulb():
    wb = np.linspace(-20.0, 30.0, 2001)
    f = waterside_economiser_fraction(wb, 10.0, 16.0)
    assert np.all(np.diff(f) <= 0.0)
    assert f[0] == 1.0 and f[-1] == 0.0


def test_tower_heat_is_its_water_and_fan_terms():
    assert cooling_tower_heat_rejected_w(100.0, 20.0, 3.0, 2.0) == 125.0


# ---------------------------------------------------------------- coolant loop

C_J_PER_K = float(loop_heat_capacity_j_per_k(5.0))  # 5 m³ of water: 998.2 * 4182 * 5 = 20.87 MJ/K
W_W_PER_K = 1e6 / 6.0  # 1 MW at 6 K
TAU_S = C_J_PER_K / W_W_PER_K  # 125.2 s


def test_heat_capacity_by_hand():
    assert C_J_PER_K == pytest.approx(998.2 * 4182.0 * 5.0, rel=1e-15)


def test_load_step_time_constant():
    # From equilibrium at 0.5 MW (return 10 + 3 = 13 °C), step to 1 MW: the return rises
    # toward 16 °C as 1 - exp(-t/tau); 63.2 % at tau. Supply stays at the setpoint.
    t0 = loop_equilibrium_c(0.5e6, W_W_PER_K, 10.0)
    assert t0 == pytest.approx(13.0, rel=1e-15)
    r = loop_step(t0, 1e6, TAU_S, C_J_PER_K, W_W_PER_K, 10.0)
    frac = (r["return_temp_c"] - t0) / 3.0
    assert frac == pytest.approx(1.0 - math.exp(-1.0), rel=0.01)
    assert frac == pytest.approx(1.0 - math.exp(-1.0), rel=1e-12)
    assert r["supply_temp_c"] == 10.0
    assert r["stored_energy_change_j"] == C_J_PER_K * (r["return_temp_c"] - t0)  # exactly C * dT


def test_loop_energy_closes():
    r = loop_step(13.0, 1e6, 300.0, C_J_PER_K, W_W_PER_K, 10.0, free_limit_c=14.0, mechanical_capacity_w=2e5)
    total = r["free_heat_j"] + r["mechanical_heat_j"] + r["stored_energy_change_j"]
    assert total == pytest.approx(1e6 * 300.0, rel=1e-12)


REGIMES = {
    # (start temp, heat in, free limit, chiller capacity)
    "chiller only": (13.0, 1e6, math.inf, math.inf),
    "partial economiser": (16.0, 8e5, 14.0, math.inf),
    "capacity limited, rising": (16.0, 1.2e6, math.inf, 1e6),
    "capacity limited, free cooling helps": (11.0, 1.5e6, 18.0, 5e5),
    "falling through breakpoints": (30.0, 1e5, 14.0, 2e5),
    "below setpoint": (5.0, 3e5, 12.0, 1e6),
    "no free cooling, no chiller": (20.0, 1e5, math.inf, 0.0),
}


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_loop_tick_additivity(regime):
    t0, q, t_free, q_max = REGIMES[regime]
    one = loop_step(t0, q, 600.0, C_J_PER_K, W_W_PER_K, 10.0, t_free, q_max)
    t = t0
    acc = dict.fromkeys(("free_heat_j", "mechanical_heat_j", "stored_energy_change_j"), 0.0)
    for dt in (1.0, 49.0, 0.5, 149.5, 300.0, 100.0):  # 600 s in uneven pieces
        r = loop_step(t, q, dt, C_J_PER_K, W_W_PER_K, 10.0, t_free, q_max)
        t = r["return_temp_c"]
        for k in acc:
            acc[k] += r[k]
    assert t == pytest.approx(one["return_temp_c"], rel=1e-12, abs=1e-12)
    for k in acc:
        assert acc[k] == pytest.approx(one[k], rel=1e-9, abs=1e-3)  # J, of ~1e8 J


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_loop_matches_a_numerical_integration(regime):
    # Cross-check of the closed form against scipy's RK45 on the same ODE (rtol 1e-10).
    t0, q, t_free, q_max = REGIMES[regime]

    def rhs(_t, y):
        free, mech = plant_heat_out_w(y[0], 10.0, W_W_PER_K, t_free, q_max)
        return [(q - free - mech) / C_J_PER_K, free, mech]

    sol = solve_ivp(rhs, (0.0, 600.0), [t0, 0.0, 0.0], rtol=1e-10, atol=1e-6, max_step=5.0)
    r = loop_step(t0, q, 600.0, C_J_PER_K, W_W_PER_K, 10.0, t_free, q_max)
    assert r["return_temp_c"] == pytest.approx(sol.y[0, -1], abs=1e-6)
    assert r["free_heat_j"] == pytest.approx(sol.y[1, -1], rel=1e-6, abs=1.0)
    assert r["mechanical_heat_j"] == pytest.approx(sol.y[2, -1], rel=1e-6, abs=1.0)


def test_capacity_limited_supply_rises_and_settles():
    # Chiller 0.6 MW, no free cooling, 1 MW in: the return climbs without bound (flat
    # Q_out); with a free limit at 20 °C the loop settles where W (T - 20) + 0.6 MW = 1 MW,
    # T = 20 + 0.4e6 / W = 22.4 °C, supply 22.4 - 1e6 / W = 16.4 °C.
    r = loop_step(16.0, 1e6, 1000.0, C_J_PER_K, W_W_PER_K, 10.0, math.inf, 6e5)
    assert r["return_temp_c"] == pytest.approx(16.0 + 0.4e6 * 1000.0 / C_J_PER_K, rel=1e-12)
    assert r["supply_temp_c"] > 10.0
    t_eq = loop_equilibrium_c(1e6, W_W_PER_K, 10.0, 20.0, 6e5)
    assert t_eq == pytest.approx(22.4, rel=1e-12)
    r = loop_step(t_eq, 1e6, 100.0, C_J_PER_K, W_W_PER_K, 10.0, 20.0, 6e5)
    assert r["return_temp_c"] == pytest.approx(t_eq, rel=1e-12)
    assert r["supply_temp_c"] == pytest.approx(16.4, rel=1e-12)


def test_loop_vectorised_equals_scalar():
    rng = np.random.default_rng(1)
    n = 500
    args = (rng.uniform(0, 50, n), rng.uniform(0, 2e6, n), rng.uniform(0, 900, n), rng.uniform(1e6, 1e8, n),
            rng.uniform(1e4, 1e6, n), rng.uniform(5, 40, n),
            np.where(rng.random(n) < 0.3, np.inf, rng.uniform(-10, 60, n)),
            np.where(rng.random(n) < 0.3, np.inf, rng.uniform(0, 2e6, n)))
    vec = loop_step(*args)
    for i in range(0, n, 7):
        one = loop_step(*(float(a[i]) for a in args))
        for k, v in one.items():
            assert v == pytest.approx(vec[k][i], rel=1e-12, abs=1e-9)


# ---------------------------------------------------------------- plant models: interface and parameters


@pytest.mark.parametrize("name", MODELS)
def test_models_satisfy_the_protocol(name):
    m = make_cooling_model(name, {}, DESIGN_W)
    assert isinstance(m, CoolingModel)
    assert m.name == name
    f = m.step(1.0, 0.5 * DESIGN_W, 20.0, 15.0)
    assert isinstance(f, CoolingFlows)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.fan_power_w = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(("name", "rows", "cls"), [
    ("paper_eq4", PAPER_EQ4_ROWS, PaperEq4Params),
    ("air_chiller", AIR_CHILLER_ROWS, AirChillerParams),
    ("dlc_warm_water", DLC_WARM_WATER_ROWS, DlcWarmWaterParams),
])
def test_rows_match_the_dataclasses(name, rows, cls):
    assert dict(MODEL_PARAMETER_ROWS)[name] is rows
    defaults = cls()
    assert [r[0] for r in rows] == [f.name for f in dataclasses.fields(cls)]
    for key, kind, unit, default, desc, lo, hi, source in rows:
        assert getattr(defaults, key) == default, key
        assert kind in ("float", "str") and unit and desc and source, key
        if kind == "float":
            assert lo <= default <= hi, key


@pytest.mark.parametrize(("name", "params", "match"), [
    ("air_chiller", {"chw_supply_c": 50.0}, r"air_chiller\.chw_supply_c = 50\.0: expected a number in \[2, 20\]"),
    ("air_chiller", {"chiller_curves": "York"}, r"air_chiller\.chiller_curves = 'York'"),
    ("dlc_warm_water", {"liquid_fraction": 1.5}, r"dlc_warm_water\.liquid_fraction = 1\.5"),
    ("dlc_warm_water", {"supply_c": math.nan}, r"dlc_warm_water\.supply_c = nan"),
    ("paper_eq4", {"chiller_cop": True}, r"paper_eq4\.chiller_cop = True"),
    ("paper_eq4", {"free_cooling_full_at_wet_bulb_c": 30.0}, r"free_cooling_full_at_wet_bulb_c = 30\.0"),
    ("paper_eq4", {"chiller_cpo": 5.0}, r"paper_eq4\.chiller_cpo: unknown parameter"),
    ("air_cooler", {}, r"cooling model 'air_cooler': expected one of"),
])
def test_bad_parameters_raise_naming_them(name, params, match):
    with pytest.raises(ValueError, match=match):
        make_cooling_model(name, params, DESIGN_W)


def test_ints_are_accepted_as_floats():
    m = make_cooling_model("air_chiller", {"chw_supply_c": 9}, DESIGN_W)
    assert m.params.chw_supply_c == 9.0 and isinstance(m.params.chw_supply_c, float)


@pytest.mark.parametrize("design", [0.0, -1.0, math.inf])
def test_bad_design_power(design):
    with pytest.raises(ValueError, match="design_it_power_w"):
        make_cooling_model("air_chiller", {}, design)


@pytest.mark.parametrize(("args", "match"), [
    ((0.0, 1e5, 20.0, 15.0), "dt_s = 0.0"),
    ((1.0, -1.0, 20.0, 15.0), "it_heat_w = -1.0"),
    ((1.0, 1e5, 20.0, 21.0), "wet_bulb_c = 21.0"),
    ((1.0, 1e5, math.nan, 15.0), "dry_bulb_c = nan"),
])
@pytest.mark.parametrize("name", MODELS)
def test_bad_step_inputs(name, args, match):
    with pytest.raises(ValueError, match=match):
        make_cooling_model(name, {}, DESIGN_W).step(*args)


# ---------------------------------------------------------------- paper_eq4


def test_paper_eq4_calibration_arithmetic():
    # Design ambient 13.5 / 11.0 °C: wet-bulb <= 12 -> free cooling 1 -> no chiller term.
    # s = (1.20 - 1 - 0) / (0.02 + 0.03 + 0.03) = 2.5 -> 0.05 / 0.075 / 0.075.
    base = PaperEq4Params(pump_design_fraction=0.02, fan_design_fraction=0.03, misc_fraction=0.03)
    p = calibrate_paper_eq4(base=base)
    assert (p.pump_design_fraction, p.fan_design_fraction, p.misc_fraction) == pytest.approx((0.05, 0.075, 0.075),
                                                                                             rel=1e-12)
    # the defaults are these calibrated values
    d = PaperEq4Params()
    assert (d.pump_design_fraction, d.fan_design_fraction, d.misc_fraction) == pytest.approx(
        (p.pump_design_fraction, p.fan_design_fraction, p.misc_fraction), rel=1e-12)


def test_paper_eq4_pue_at_the_design_point():
    m = make_cooling_model("paper_eq4", {}, DESIGN_W)
    f = m.step(1.0, DESIGN_W, M100_DESIGN_DRY_BULB_C, M100_DESIGN_WET_BULB_C)
    pue = (DESIGN_W + f.cooling_power_w + f.misc_power_w) / DESIGN_W
    assert pue == pytest.approx(1.20, abs=1e-6)


def test_paper_eq4_calibration_at_a_hot_design_point():
    # At 30 / 20 °C there is no free cooling: chiller 1/5.5 = 0.181818; s * 0.08 = 0.018182.
    p = calibrate_paper_eq4(1.20, 30.0, 20.0, PaperEq4Params(pump_design_fraction=0.02, fan_design_fraction=0.03,
                                                             misc_fraction=0.03))
    assert p.pump_design_fraction == pytest.approx(0.02 * (0.2 - 1 / 5.5) / 0.08, rel=1e-12)
    m = cp.PaperEq4Plant(p, DESIGN_W)
    f = m.step(1.0, DESIGN_W, 30.0, 20.0)
    assert (DESIGN_W + f.cooling_power_w + f.misc_power_w) / DESIGN_W == pytest.approx(1.20, abs=1e-9)
    with pytest.raises(ValueError, match="target_pue = 1.1"):
        calibrate_paper_eq4(1.1, 30.0, 20.0)


def test_paper_eq4_plant_is_the_engine_function():
    # Same coefficients -> the same powers as twin.physics.cooling.facility_power_w.
    eq4 = dict(chiller_cop=5.5, pump_design_fraction=0.02, fan_design_fraction=0.03, misc_fraction=0.03)
    m = make_cooling_model("paper_eq4", eq4, DESIGN_W)
    for it, db, wb in [(5e5, 30.0, 20.0), (1e5, 18.5, 18.5), (9e5, 20.0, 15.0)]:
        f = m.step(1.0, it, db, wb)
        ref = facility_power_w(it, DESIGN_W, db, wb, **eq4)
        for k in ("chiller_power_w", "pump_power_w", "fan_power_w", "misc_power_w", "free_cooling_fraction"):
            assert getattr(f, k) == pytest.approx(float(ref[k]), rel=1e-15), k


# ---------------------------------------------------------------- a day of varying load and weather

STRESS = {
    # exercise every regime: economiser full/partial/none, chiller cycling and false
    # loading, capacity limits, trim chiller (on a hotter day, dry-bulb 0..40 °C)
    "paper_eq4": ({}, {}),
    "air_chiller": ({"chiller_capacity_factor": 0.7}, {}),
    "dlc_warm_water": ({"trim_capacity_fraction": 0.3, "adiabatic_effectiveness": 0.3},
                       {"db_mean_c": 20.0, "db_amp_k": 20.0}),
}


def day(dt_s=60.0, seed=0, db_mean_c=14.0, db_amp_k=19.0):
    """A day: IT load in random 15-min blocks of 5-100 % of design, dry-bulb -5..33 °C."""
    n = int(round(86400.0 / dt_s))
    t = (np.arange(n) + 0.5) * dt_s
    rng = np.random.default_rng(seed)
    blocks = rng.uniform(0.05, 1.0, size=int(86400 // 900) + 1)
    load_w = DESIGN_W * blocks[(t // 900).astype(int)]
    db = db_mean_c + db_amp_k * np.cos(2 * np.pi * (t / 3600.0 - 14.0) / 24.0)
    return dt_s, load_w, db, wet_bulb_for(db)


def run_day(model, dt_s, load_w, db, wb):
    rows = []
    for q, d, w in zip(load_w, db, wb):
        rows.append(model.step(dt_s, float(q), float(d), float(w)))
    return rows


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("stress", [False, True])
def test_energy_balance_over_a_day(name, stress):
    params, weather = STRESS[name] if stress else ({}, {})
    dt, load, db, wb = day(**weather)
    m = make_cooling_model(name, params, DESIGN_W)
    rows = run_day(m, dt, load, db, wb)
    e_in = np.array([(q + f.cooling_power_w) * dt for q, f in zip(load, rows)])
    res = np.array([f.balance_residual_j(dt, q) for q, f in zip(load, rows)])
    assert np.max(np.abs(res) / e_in) < 1e-9
    assert abs(res.sum()) / e_in.sum() < 1e-9
    # the day really did visit the regimes
    free = np.array([f.free_cooling_fraction for f in rows])
    assert free.max() > 0.95
    if name != "dlc_warm_water":
        assert free.min() < 0.05
    if name != "paper_eq4":
        stored = np.array([f.stored_energy_change_j for f in rows])
        assert np.abs(stored).max() > 1e-3 * e_in.max()  # the loop's thermal mass matters at 60 s ticks
    if stress and name == "air_chiller":
        assert max(f.supply_temp_c for f in rows) > m.params.chw_supply_c + 0.5  # ran out of chiller
        assert min(f.chiller_plr for f in rows if f.chiller_plr > 0) < 0.1  # and cycled at light load
    if stress and name == "dlc_warm_water":
        assert max(f.supply_temp_c for f in rows) > m.params.supply_c + 0.5  # trim chiller ran out
        assert free.min() < 0.8


LEAKS = {
    # model -> list of (module attribute, key in its result or None, label)
    "paper_eq4": [("condenser_heat_w", None, "chiller condenser")],
    "air_chiller": [
        ("eir_chiller", "condenser_heat_w", "chiller condenser"),
        ("loop_step", "free_heat_j", "economiser heat exchanger"),
        ("loop_step", "mechanical_heat_j", "chiller evaporator (loop side)"),
        ("loop_step", "stored_energy_change_j", "loop thermal mass"),
        ("cooling_tower_heat_rejected_w", None, "cooling tower"),
    ],
    "dlc_warm_water": [
        ("condenser_heat_w", None, "trim-chiller condenser"),
        ("loop_step", "free_heat_j", "dry cooler (water side)"),
        ("loop_step", "stored_energy_change_j", "loop thermal mass"),
        ("dry_cooler_heat_rejected_w", None, "dry cooler"),
        ("cooling_tower_heat_rejected_w", None, "air-side cooling tower"),
    ],
}


@pytest.mark.parametrize(("name", "attr", "key", "label"),
                         [(n, *leak) for n, leaks in LEAKS.items() for leak in leaks],
                         ids=[f"{n}: {leak[2]}" for n, leaks in LEAKS.items() for leak in leaks])
def test_a_leak_in_one_component_breaks_the_balance(monkeypatch, name, attr, key, label):
    """Scale one component's heat by 0.998 (a 0.2 % leak): the balance must show it.

    Because every heat term is computed by its own component, the tick's residual
    becomes exactly 0.2 % of that component's energy (> 0.001 of it), orders of
    magnitude above the 1e-9 the intact plant achieves.
    """
    original = getattr(cp, attr)
    seen = []  # energy of the component per call [J for loop terms, W otherwise]

    def leaky(*args, **kwargs):
        out = original(*args, **kwargs)
        if key is None:
            seen.append(float(out))
            return 0.998 * out
        out = dict(out)
        seen.append(float(out[key]))
        out[key] = 0.998 * out[key]
        return out

    monkeypatch.setattr(cp, attr, leaky)
    params, weather = STRESS[name]
    dt, load, db, wb = day(dt_s=300.0, **weather)
    m = make_cooling_model(name, params, DESIGN_W)
    hits = 0
    total_res = total_in = 0.0
    for q, d, w in zip(load, db, wb):
        before = len(seen)
        f = m.step(dt, float(q), float(d), float(w))
        comp_j = sum(seen[before:]) * (1.0 if key and key.endswith("_j") else dt)
        res = f.balance_residual_j(dt, float(q))
        e_in = (q + f.cooling_power_w) * dt
        total_res += res
        total_in += e_in
        if abs(comp_j) > 1e-5 * e_in:  # ticks where the component carries >= 10 ppm of the energy
            hits += 1
            assert res == pytest.approx(0.002 * comp_j, rel=1e-5)
            assert abs(res) > 0.001 * abs(comp_j)
            assert abs(res) > 10 * 1e-9 * e_in  # >= 10x the tolerance the intact plant meets
    assert hits > 10


# ---------------------------------------------------------------- dynamics


def test_air_chiller_load_step_shows_the_loop_time_constant():
    # Hot day (no economiser, chiller not at capacity): step IT 50 % -> 100 %. CRAH fan
    # and pump heat jump with the load, so the loop sees a step in Q_in and the return
    # rises by dQ/W with the time constant tau = C/W (5 L/kW * 1 MW = 5 m³; W = design
    # loop heat / 6 K): 63 % at tau.
    m = AirChillerPlant(AirChillerParams(), DESIGN_W)
    db, wb = 30.0, 22.0
    m.settle(0.5 * DESIGN_W, db, wb)
    t0 = m.return_temp_c
    m.settle(DESIGN_W, db, wb)
    t_inf = m.return_temp_c
    m.return_temp_c = t0
    tau = m.time_constant_s
    assert tau == pytest.approx(998.2 * 4182.0 * 5.0 / (1.045e6 / 6.0), rel=1e-12)  # 119.9 s
    f = m.step(tau, DESIGN_W, db, wb)
    assert (f.return_temp_c - t0) / (t_inf - t0) == pytest.approx(1.0 - math.exp(-1.0), rel=0.01)
    assert f.supply_temp_c == pytest.approx(10.0, abs=1e-9)
    # chiller power lags the IT step: after tau it is between the two steady states
    m.settle(DESIGN_W, db, wb)
    p_full = m.step(1.0, DESIGN_W, db, wb).chiller_power_w
    m.settle(0.5 * DESIGN_W, db, wb)
    p_half = m.step(1.0, 0.5 * DESIGN_W, db, wb).chiller_power_w
    p_now = m.step(1.0, DESIGN_W, db, wb).chiller_power_w
    assert p_half < p_now < p_half + 0.05 * (p_full - p_half)


def test_dlc_supply_rises_when_the_dry_coolers_cannot_hold_it():
    # No adiabatic, no trim, 40 °C dry-bulb: T_free = 45 °C > 37 °C. At steady state the
    # supply sits at 45 °C (all heat through the dry cooler) and the return above it.
    m = make_cooling_model("dlc_warm_water", {"adiabatic_effectiveness": 0.0}, DESIGN_W)
    m.settle(DESIGN_W, 40.0, 22.0)
    f = m.step(60.0, DESIGN_W, 40.0, 22.0)
    assert f.supply_temp_c == pytest.approx(45.0, abs=1e-9)
    # return - supply = (liquid heat + pump work) / W = (0.9 MW + 20.118 kW) / (0.92 MW / 10 K)
    assert f.return_temp_c - f.supply_temp_c == pytest.approx((0.9e6 + 0.02e6 * 1.0059) / 0.92e5, rel=1e-12)
    # with adiabatic pre-cooling (default 0.7): 40 - 0.7 * 18 = 27.4 <= 32 -> holds 37 °C
    m = make_cooling_model("dlc_warm_water", {}, DESIGN_W)
    m.settle(DESIGN_W, 40.0, 22.0)
    assert m.step(60.0, DESIGN_W, 40.0, 22.0).supply_temp_c == pytest.approx(37.0, abs=1e-9)


# ---------------------------------------------------------------- full-load PUE across the climate

# Expected bands at full IT load, -10..35 °C dry-bulb (wet_bulb_for), cooling only
# (misc counted for paper_eq4, which includes it; other models leave UPS/lighting to the
# electrical chain):
# * paper_eq4 (calibrated): 1.20 wherever wb <= 12 °C (full free cooling), at most
#   1 + 1/5.5 + 0.20 = 1.382 with none.
# * air_chiller: fans + pumps at design ~ 0.061 (CRAH 0.03, CHW 0.015, CW 0.015 at the
#   floor-free design flow, tower fan); full economiser below wb ~5.7 °C -> ~1.06; with
#   the chiller at COP ~6.4-7.1 (CHW 10 °C, condenser 20-27 °C) ~ +0.15 -> <= 1.25.
# * dlc_warm_water: pumps ~0.02 + dry-cooler fans 0.004-0.02 + 10 % air side at the
#   air_chiller's overhead -> 1.02-1.07; the adiabatic pre-cooler keeps 37 °C up to 35 °C.
PUE_BANDS = {"paper_eq4": (1.20, 1.3819), "air_chiller": (1.05, 1.25), "dlc_warm_water": (1.02, 1.07)}


def full_load_pue(name, db):
    m = make_cooling_model(name, {}, DESIGN_W)
    wb = float(wet_bulb_for(db))
    if hasattr(m, "settle"):
        m.settle(DESIGN_W, db, wb)
    f = m.step(1.0, DESIGN_W, db, wb)
    return (DESIGN_W + f.cooling_power_w + f.misc_power_w) / DESIGN_W, f


@pytest.mark.parametrize("name", MODELS)
def test_full_load_pue_band_and_monotone(name):
    lo, hi = PUE_BANDS[name]
    temps = np.arange(-10.0, 35.01, 0.5)
    pue = np.array([full_load_pue(name, float(t))[0] for t in temps])
    assert pue.min() >= lo - 1e-9 and pue.max() <= hi
    assert np.all(np.diff(pue) >= -1e-9)  # warmer weather never lowers PUE at full load
    assert pue[-1] - pue[0] > 0.01


@pytest.mark.parametrize("name", MODELS)
def test_free_cooling_fraction_monotone_in_wet_bulb(name):
    # db = wb + 8 K, so the wet-bulb sweeps on its own
    fr = []
    for wb in np.arange(-10.0, 25.01, 0.25):
        m = make_cooling_model(name, {}, DESIGN_W)
        if hasattr(m, "settle"):
            m.settle(DESIGN_W, float(wb) + 8.0, float(wb))
        fr.append(m.step(1.0, DESIGN_W, float(wb) + 8.0, float(wb)).free_cooling_fraction)
    fr = np.array(fr)
    assert np.all(np.diff(fr) <= 1e-12)
    assert fr[0] == pytest.approx(1.0) and fr[-1] < 0.95
