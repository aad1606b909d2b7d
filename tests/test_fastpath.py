"""The scalar fast paths of the per-tick physics agree with the numpy (array) paths.

Each function in ``twin.physics`` that a plant calls every tick has a branch for plain
floats (issue 9). Here every such function is evaluated on the same inputs both ways:
as Python floats (fast path) and as 1-element arrays (numpy path). Arithmetic-only paths
must agree exactly; paths using ``exp``/``tanh``/``expm1`` from :mod:`math` may differ
from numpy's by rounding (tolerance 1e-13 relative). Edge cases (zero, negative, NaN,
infinite limits, empty headroom) are included.

Run: ``.venv/bin/python -m pytest -q tests/test_fastpath.py`` (part of ``make test``).
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from twin.facility import cooling_plant as cp
from twin.facility.weather import ClimateWeather
from twin.physics import battery as bat
from twin.physics import chiller as ch
from twin.physics import cooling as co
from twin.physics import heat as he
from twin.physics.weather import SITE_CLIMATES

RNG = np.random.default_rng(9)
N = 400


def _arr(v):
    return np.array([v], dtype=float)


def _same(fast, slow, rtol=0.0):
    """Compare a scalar (or tuple/dict of scalars) with its 1-element array twin."""
    if isinstance(fast, dict):
        assert fast.keys() == slow.keys()
        for k in fast:
            _same(fast[k], slow[k], rtol)
        return
    if isinstance(fast, tuple):
        assert len(fast) == len(slow)
        for a, b in zip(fast, slow):
            _same(a, b, rtol)
        return
    assert isinstance(fast, float), type(fast)
    b = float(np.asarray(slow).reshape(-1)[0])
    if math.isnan(fast) or math.isnan(b):
        assert math.isnan(fast) and math.isnan(b), (fast, b)
    elif rtol == 0.0:
        assert fast == b, (fast, b)
    else:
        assert fast == pytest.approx(b, rel=rtol, abs=1e-300), (fast, b)


def _both(fn, *args, rtol=0.0, **kw):
    fast = fn(*(float(a) for a in args), **kw)
    slow = fn(*(_arr(a) for a in args), **kw)
    _same(fast, slow, rtol)


def _u(lo, hi, n=N):
    return RNG.uniform(lo, hi, n)


# ------------------------------------------------------------------------ cooling


def test_free_cooling_fraction():
    db = np.concatenate([_u(-20, 45), [25.0, 12.0, np.nan, 30.0]])
    wb = np.concatenate([db[:N] - _u(0, 12), [12.0, 12.0, 10.0, np.nan]])
    for d, w in zip(db, wb):
        _both(co.free_cooling_fraction, d, w)
        _both(co.free_cooling_fraction, d, w, 20.0, 5.0)


@pytest.mark.parametrize("fn", [co.fan_power_w, co.pump_power_w])
def test_part_load_fans_and_pumps(fn):
    for x in np.concatenate([_u(0, 1.3), [0.0, 0.15, 0.2, np.nan]]):
        _both(fn, x, 12_345.0, 0.2)


def test_affinity_power():
    for x in np.concatenate([_u(0, 1.3), [0.0, 0.15, np.nan]]):
        for n in (3.0, 2.4, 1.0):
            # numpy's vectorised pow may round differently from libm's (the old per-tick
            # path already used libm: np.float64 ** n)
            _both(co.affinity_power_w, x, 5e4, 0.15, n, rtol=1e-13)


def test_temperatures_and_economiser():
    for wb, db in zip(_u(-30, 30), _u(-30, 45)):
        _both(co.cooling_tower_leaving_water_c, wb, 2.8, 5.0)
        _both(co.cooling_tower_leaving_water_c, wb, 2.8, -np.inf)
        _both(co.dry_cooler_leaving_fluid_c, db, 5.0)
        _both(co.adiabatic_air_temperature_c, db, min(wb, db), 0.7, 32.0)
        _both(co.adiabatic_air_temperature_c, db, min(wb, db), 0.0)
        _both(co.economiser_fraction, wb, 10.0, 16.0, 1.5)
    _both(co.economiser_fraction, np.nan, 10.0, 16.0, 1.5)


# ------------------------------------------------------------------------ chiller


def test_eir_chiller():
    cap = 1.2e6
    loads = np.concatenate([_u(0, 1.5 * cap), [0.0, -5.0, 0.05 * cap, 0.15 * cap, np.nan]])
    for q, t_cond in zip(loads, np.resize(_u(15, 40), loads.size)):
        for e_plus in (True, False):
            _both(ch.eir_chiller, q, cap, 10.0, t_cond, motor_to_condenser_fraction=1.0,
                  false_load_to_condenser=e_plus)
    _both(ch.eir_chiller, 1e5, cap, 10.0, 400.0)  # no capacity left: CAPFT < 0


# --------------------------------------------------------------------------- heat


def test_heat_pump():
    for src, sup in zip(_u(30, 55), _u(70, 90)):
        _both(he.carnot_cop_heating, src, sup)
        _both(he.heat_pump_cop, src, sup)
        cop = he.heat_pump_cop(src, sup)
        for q in (0.0, 1.0, 3.3e5):
            _both(he.heat_pump_power_w, q, cop)
            _both(he.heat_pump_source_heat_w, q, cop)
            _both(he.heat_pump_output_from_source_w, q, cop)


def test_heat_pump_errors_match():
    for fn, args in ((he.carnot_cop_heating, (80.0, 70.0)), (he.heat_pump_cop, (-60.0, 90.0)),
                     (he.carnot_cop_heating, (45.0, 75.0, -1.0))):
        with pytest.raises(ValueError):
            fn(*args)
        with pytest.raises(ValueError):
            fn(*(_arr(a) for a in args))


def test_mixed_tank():
    c = he.water_heat_capacity_j_per_k(100.0)
    for t, p, amb, ua in zip(_u(60, 90), _u(-5e5, 5e5), _u(-10, 20), np.concatenate([[0.0], _u(0, 200, N - 1)])):
        _both(he.mixed_tank_step, t, p, amb, 1.0, c, ua, rtol=1e-13)
        _both(he.mixed_tank_step, t, p, amb, 0.1, c, ua, rtol=1e-13)
        _both(he.mixed_tank_power_to_reach_w, t, 75.0, amb, 1.0, c, ua, rtol=1e-13)


def test_heat_meter():
    for q, dt in zip(_u(0.01, 50), _u(3.0, 50)):
        for cls in (1, 2, 3):
            _both(he.heat_meter_mpe_pct, q, 10.0, dt, 3.0, accuracy_class=cls)
    with pytest.raises(ValueError):
        he.heat_meter_mpe_pct(1.0, 10.0, 2.0, 3.0)


# ------------------------------------------------------------------------ battery


def test_battery_efficiency_and_limits():
    eta = math.sqrt(0.85)
    for p in np.concatenate([_u(-5e5, 5e5), [0.0, -0.0, np.nan]]):
        _both(bat.stored_power_w, p, eta, eta)
        _both(bat.conversion_loss_power_w, p, eta, eta)
    cap_j = 250 * 3.6e6
    for soc in np.concatenate([_u(-0.1, 1.1), [0.1, 0.9, np.nan]]):
        for dt in (1.0, 0.1, 0.0):
            _both(bat.power_limits_w, soc, dt, cap_j, 0.1, 0.9, 2.5e5, 5e5, eta, eta)
            _both(bat.power_limits_w, soc, dt, cap_j, 0.1, 0.9, np.inf, np.inf, eta, eta)


def test_battery_ageing_rates():
    for soc in np.concatenate([_u(0, 1), [0.0, 1.0]]):
        _both(bat.anode_potential_v, soc, rtol=1e-13)
        ua = bat.anode_potential_v(soc)
        for t_k in (263.15, 298.15, 318.15):
            _both(bat.lfp_calendar_rate, t_k, ua, rtol=1e-13)
    for t_k in _u(250, 330):
        _both(bat.lfp_cycle_temperature_factor, t_k, rtol=1e-13)


def test_dispatch_laws():
    for load, prev, pref in zip(_u(0, 1e6), _u(0, 1e6), _u(0, 5e4)):
        _both(bat.ramp_smoothing_power_w, load, prev, 1.0, 1e3, pref)
    inf, nan = math.inf, math.nan
    for lo, hi, load in zip(-_u(0, 5e5), _u(0, 2.5e5), _u(0, 1.2e6)):
        for limit, ramp, ffr in ((inf, nan, nan), (1e6, nan, nan), (inf, 2e4, nan), (9e5, -3e4, -2e5),
                                 (inf, nan, -6e5), (inf, nan, 1e6)):
            for reserve in (0.0, 2e5):
                fast = bat.combine_setpoints_w(lo, hi, load, import_limit_w=limit, ramp_smoothing_w=ramp,
                                               recharge_power_w=5e4, ffr_w=ffr, ffr_reserve_w=reserve)
                slow = bat.combine_setpoints_w(_arr(lo), _arr(hi), _arr(load), import_limit_w=_arr(limit),
                                               ramp_smoothing_w=_arr(ramp), recharge_power_w=_arr(5e4),
                                               ffr_w=_arr(ffr), ffr_reserve_w=_arr(reserve))
                _same(fast, slow)


def test_fast_path_returns_python_floats():
    """The point of the fast path: no numpy scalars leak into per-tick arithmetic."""
    assert type(co.free_cooling_fraction(10.0, 8.0)) is float
    assert type(co.affinity_power_w(0.5, 1e4, 0.2, 3.0)) is float
    assert type(he.heat_pump_cop(45.0, 75.0)) is float
    assert all(type(v) is float for v in bat.power_limits_w(0.5, 1.0, 9e8, 0.1, 0.9, 2e5, 5e5, 0.9, 0.9))
    assert all(type(v) is float for v in ch.eir_chiller(5e5, 1e6, 10.0, 25.0).values())


# ------------------------------------------------------------------------ plants, weather and site
#
# The cooling plants' ``step_values`` (the site's per-tick call) inline the physics above
# for plain floats; each must equal the plant's reference path (the vectorised functions,
# ``_step_reference`` / ``_step``) bit for bit, state included, and raise the same errors.

DESIGN_W = 1.0e6


def _bits(a, b):
    """Two tuples of numbers are equal element by element, NaN equal to NaN."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y), (a, b)
        else:
            assert x == y, (a, b)


def _weather_cases(n=N):
    """(dry-bulb, wet-bulb) pairs: random, and on the free-cooling and range edges [°C]."""
    db = _u(-30.0, 45.0, n)
    wb = db - _u(0.0, 15.0, n)
    edges = [(25.0, 12.0), (25.0, 25.0), (12.0, 12.0), (13.0, 12.0), (30.0, 11.0), (-80.0, -80.0),
             (70.0, 40.0), (20.0, 20.0 + 1e-9), (0.0, -5.0), (37.0, 30.0)]
    return [(float(d), float(w)) for d, w in zip(db, wb)] + edges


def _loads(n=N):
    return [float(q) for q in _u(0.0, 1.3 * DESIGN_W, n)] + [0.0, 1.0, 0.15 * DESIGN_W, 0.2 * DESIGN_W, DESIGN_W]


PAPER_PARAMS = [cp.calibrate_paper_eq4(), cp.PaperEq4Params(),
                cp.PaperEq4Params(chiller_cop=3.2, pump_exponent=2.4, fan_exponent=1.7, pump_min_flow_fraction=0.0,
                                  fan_min_speed_fraction=0.0, free_cooling_zero_at_dry_bulb_c=18.0,
                                  free_cooling_full_at_wet_bulb_c=-3.0)]


@pytest.mark.parametrize("params", PAPER_PARAMS)
def test_paper_eq4_step_values_equal_the_reference(params):
    m = cp.PaperEq4Plant(params, DESIGN_W)
    cases = list(zip(_loads(), _weather_cases()))
    for q, (d, w) in cases:
        for dt in (1.0, 0.1, 300.0):
            fast = m.step_values(dt, q, d, w)
            assert all(type(v) is float for v in fast)
            _bits(fast, cp._values(m._step_reference(dt, q, d, w)))
            _bits(cp._values(m.step(dt, q, d, w)), fast)
            assert isinstance(m.step(dt, q, d, w), cp.CoolingFlows)


def _twins(name, params=None):
    return (cp.make_cooling_model(name, params or {}, DESIGN_W), cp.make_cooling_model(name, params or {}, DESIGN_W))


def _tick_inputs(n=300):
    """A walk of ticks over loads and weathers, with sudden steps (the loop state matters)."""
    out = []
    for k, (q, (d, w)) in enumerate(zip(_loads(n), _weather_cases(n))):
        out.append((float(RNG.choice([1.0, 0.1, 60.0, 600.0])), q, d, w))
    return out


@pytest.mark.parametrize("params", [{}, {"chw_supply_c": 7.0, "chiller_capacity_factor": 0.4, "tower_approach_k": 5.0,
                                         "loop_volume_l_per_kw": 0.5}])
def test_air_chiller_tick_values_equal_the_reference(params):
    fast, ref = _twins("air_chiller", params)
    for dt, q, d, w in _tick_inputs():
        a = fast._tick_values(dt, q, d, w)
        t = ref._step(dt, q, d, w)
        _bits(a, cp._values(t.flows) + (t.chiller_heat_w, t.chiller_capacity_w, t.free_heat_w, t.mechanical_heat_w))
        assert fast.return_temp_c == ref.return_temp_c
    # step and step_values go the same way
    a = fast.step(1.0, 5e5, 20.0, 15.0)
    b = ref.step_values(1.0, 5e5, 20.0, 15.0)
    _bits(cp._values(a), b)


@pytest.mark.parametrize("params", [{}, {"trim_capacity_fraction": 0.3, "adiabatic_effectiveness": 0.0},
                                    {"liquid_fraction": 1.0, "loop_volume_l_per_kw": 0.3, "supply_c": 20.0}])
def test_dlc_warm_water_step_values_equal_the_reference(params):
    fast, ref = _twins("dlc_warm_water", params)
    for dt, q, d, w in _tick_inputs():
        recovered = float(RNG.choice([0.0, RNG.uniform(0.0, 1.0) * fast.params.liquid_fraction * q]))
        a = fast.step_values(dt, q, d, w, recovered_heat_w=recovered)
        b = cp._values(ref._step_reference(dt, q, d, w, recovered))
        _bits(a, b)
        assert all(type(v) is float for v in a)
        assert fast.return_temp_c == ref.return_temp_c
        if fast.air is not None:
            assert fast.air.return_temp_c == ref.air.return_temp_c


@pytest.mark.parametrize("name", ["paper_eq4", "air_chiller", "dlc_warm_water"])
def test_plant_fast_path_other_input_types(name):
    """numpy float64 inputs take the scalar path with the same values; ints and 0-d arrays
    go through the reference path; both agree with plain floats."""
    fast, ref = _twins(name)
    for q, (d, w) in list(zip(_loads(40), _weather_cases(40))):
        plain = fast.step_values(1.0, q, d, w)
        _bits(ref.step_values(1.0, np.float64(q), np.float64(d), w), plain)
        _bits(fast.step_values(1.0, float(round(q)), d, w), ref.step_values(1, round(q), d, w))
    m = cp.make_cooling_model(name, {}, DESIGN_W)
    r = cp.make_cooling_model(name, {}, DESIGN_W)
    _bits(m.step_values(1.0, 4e5, 20.0, 15.0), r.step_values(1.0, np.array(4e5), 20.0, 15.0))


@pytest.mark.parametrize("name", ["paper_eq4", "air_chiller", "dlc_warm_water"])
@pytest.mark.parametrize("bad", [(0.0, 5e5, 20.0, 15.0), (math.nan, 5e5, 20.0, 15.0), (math.inf, 5e5, 20.0, 15.0),
                                 (1.0, -1.0, 20.0, 15.0), (1.0, math.nan, 20.0, 15.0), (1.0, math.inf, 20.0, 15.0),
                                 (1.0, 5e5, 71.0, 15.0), (1.0, 5e5, math.nan, 15.0), (1.0, 5e5, -81.0, -90.0),
                                 (1.0, 5e5, 20.0, 20.1), (1.0, 5e5, 20.0, math.nan), (1.0, 5e5, 20.0, -math.inf),
                                 (-1, 5e5, 20.0, 15.0), (1.0, np.float64(-2.0), 20.0, 15.0)])
def test_plant_fast_path_errors_match(name, bad):
    m = cp.make_cooling_model(name, {}, DESIGN_W)
    with pytest.raises(ValueError) as fast_err:
        m.step(*bad)
    with pytest.raises(ValueError) as ref_err:
        cp._check_step(*bad)
    assert str(fast_err.value) == str(ref_err.value)


def test_dlc_recovered_heat_error_matches():
    fast, ref = _twins("dlc_warm_water")
    for recovered in (-1.0, 0.9 * 5e5 * 1.001, math.nan):
        with pytest.raises(ValueError) as a:
            fast.step(1.0, 5e5, 20.0, 15.0, recovered_heat_w=recovered)
        with pytest.raises(ValueError) as b:
            ref._step_reference(1.0, 5e5, 20.0, 15.0, recovered)
        assert str(a.value) == str(b.value)


def test_flows_helper_builds_the_dataclass():
    v = tuple(float(x) for x in range(11))
    f = cp._flows(v)
    assert f == cp.CoolingFlows(*v) and hash(f) == hash(cp.CoolingFlows(*v)) and cp._values(f) == v
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.chiller_power_w = 1.0  # still frozen


def test_climate_weather_scalar_path_equals_the_numpy_path():
    start = datetime(2025, 3, 12, 0, 20, tzinfo=UTC)
    w = ClimateWeather(start, 3 * 86400.0, SITE_CLIMATES["DE"])
    lo, hi = -w.offset_s, w._span_s - w.offset_s
    ts = list(_u(lo, hi, 2000)) + [lo, hi, 0.0, 0.5, 3600.0 - w.offset_s, 7200.0 - w.offset_s, hi - 1e-9]
    for t in ts:
        fast = w.temperatures_c(float(t))
        slow = w.temperatures_c(np.asarray(t))  # the 0-d array branch
        assert all(type(v) is float for v in fast)
        _bits(fast, tuple(float(v) for v in slow))
        _bits(w.temperatures_c(np.float64(t)), fast)
    _bits(w.temperatures_c(3600), w.temperatures_c(3600.0))
    for t in (lo - 1.0, hi + 1.0, math.inf):
        with pytest.raises(ValueError, match="outside the prepared range"):
            w.temperatures_c(t)
    with pytest.raises(ValueError):
        w.temperatures_c(math.nan)


SITE_SCENARIO = {
    "name": "fast", "start": "2025-01-15T00:00:00Z", "duration_h": 0.5, "base_tick_s": 1.0, "seed": 3,
    "facility": {"nodes": 6, "gpus_per_node": 8, "gpu_model": "H100-SXM", "host_idle_w": 1000.0,
                 "host_busy_w": 2800.0},
    "weather": {"model": "climate", "site": "DE"},
    "workload": {"source": "synthetic", "offered_load": 0.8, "warmup_h": 1.0},
    "grid": {"country": "DE", "carbon_source": "synthetic"},
    "outputs": {"overview_png": False},
}


@pytest.mark.parametrize("extra", [
    {"cooling": {"model": "paper_eq4"}},
    {"cooling": {"model": "air_chiller"}},
    {"cooling": {"model": "dlc_warm_water"},
     "battery": {"model": "lfp", "capacity_kwh": 50.0, "max_charge_kw": 50.0, "max_discharge_kw": 100.0,
                 "ffr_reserve_kw": 40.0, "recharge_kw": 5.0},
     "heat": {"model": "district_heating", "heat_pump_capacity_kw": 100.0, "annual_demand_mwh": 120.0,
              "tank_volume_m3": 20.0, "tank_ua_w_per_k": 10.0, "meter_permanent_flow_m3_per_h": 3.0}},
])
def test_site_tuple_path_equals_the_flows_path(tmp_path, extra):
    """Site.close_tick with the plant's step_values equals the generic CoolingFlows path
    (a plant the site does not know), row by row and in the ledger; the generic site is
    driven by a numpy float64 clock (as SimPy's now after a job event), the other by floats."""
    import json

    from twin.scenario import parse_scenario
    from twin.sim.engine import Engine

    raw = json.loads(json.dumps(SITE_SCENARIO))
    raw.update(extra)
    sc = parse_scenario(raw, "fast.toml")
    fast = Engine(sc, tmp_path / "a").site
    slow = Engine(sc, tmp_path / "b").site
    assert fast._cooling_values is not None
    slow._cooling_values = None  # the CoolingFlows path
    fast.open_at(0.0)
    slow.open_at(0.0)
    t = 0.0
    for k in range(600):
        t += 0.1 if 200 <= k < 260 else 1.0
        _bits(fast.close_tick(t), slow.close_tick(np.float64(t)))
    assert fast.ledger.inflows == slow.ledger.inflows and fast.ledger.outflows == slow.ledger.outflows
    assert list(fast.ledger.inflows) == list(slow.ledger.inflows)
    assert fast.grid_carbon_free_j == slow.grid_carbon_free_j


def test_values_step_follows_a_replaced_step(monkeypatch):
    """The site uses step_values only while the plant's step is its class's own."""
    for name in ("paper_eq4", "air_chiller", "dlc_warm_water"):
        m = cp.make_cooling_model(name, {}, DESIGN_W)
        assert cp.values_step(m) == m.step_values
        m.step = lambda *a: None
        assert cp.values_step(m) is None

    class Sub(cp.PaperEq4Plant):
        pass

    assert cp.values_step(Sub(cp.PaperEq4Params(), DESIGN_W)) is None
    monkeypatch.setattr(cp.PaperEq4Plant, "step", lambda self, *a: None)
    assert cp.values_step(cp.PaperEq4Plant(cp.PaperEq4Params(), DESIGN_W)) is None


@pytest.mark.parametrize("name", ["paper_eq4", "air_chiller", "dlc_warm_water"])
def test_plant_fast_path_follows_changed_attributes(name):
    """A plant rescaled after construction (a chiller-staging study sets the capacities, a
    user may replace params or the design power) still steps as its reference path."""
    fast, ref = _twins(name)
    for k, (dt, q, d, w) in enumerate(_tick_inputs(120)):
        if k == 30:
            for m in (fast, ref):
                if name == "air_chiller":
                    m.chiller_reference_capacity_w *= 0.25
                elif name == "dlc_warm_water":
                    m.trim_capacity_w = 2e5
                    m.air.chiller_reference_capacity_w *= 0.5
                m.design_it_power_w = 0.8 * DESIGN_W
        if k == 60 and name == "paper_eq4":
            for m in (fast, ref):
                m.params = cp.PaperEq4Params(chiller_cop=3.0, free_cooling_full_at_wet_bulb_c=5.0)
        if k == 90 and name == "dlc_warm_water":
            for m in (fast, ref):
                m.params = cp.DlcWarmWaterParams(supply_c=30.0, trim_capacity_fraction=0.5)
        a = fast.step_values(dt, q, d, w)
        b = cp._values(ref._step_reference(dt, q, d, w) if name != "air_chiller" else ref._step(dt, q, d, w).flows)
        _bits(a, b)


@pytest.mark.parametrize("site, start", [("IT", datetime(2025, 7, 15, 0, 0, tzinfo=UTC)),
                                         ("DE", datetime(2025, 1, 31, 22, 17, 33, tzinfo=UTC))])
def test_weather_and_carbon_for_many_ticks_equal_the_one_tick_path(site, start):
    """ClimateWeather.temperatures_each and CarbonSignal.both_each (block stepping's rows)
    against temperatures_c / both_at one time at a time, bit for bit: random times, the
    hour boundaries, the range's ends; out of range, the same error as the one-tick path."""
    from twin.facility.grid import CarbonSignal
    from twin.facility.weather import DiurnalWeather

    days = 2
    w = ClimateWeather(start, days * 86400.0, SITE_CLIMATES[site])
    ci = CarbonSignal(start, start.replace(minute=0, second=0), RNG.uniform(50.0, 600.0, 24 * (days + 1)),
                      RNG.uniform(0.0, 1.0, 24 * (days + 1)))
    t = np.concatenate([RNG.uniform(0.0, days * 86400.0, 3000), np.arange(0.0, days * 86400.0, 3600.0),
                        np.arange(0.05, 7200.0, 0.1), [0.0, days * 86400.0, 1e-9, 3599.999999]])
    diurnal = DiurnalWeather(start, dry_bulb_mean_c=18.0, dry_bulb_range_k=9.0, wet_bulb_mean_c=12.0,
                             wet_bulb_range_k=5.0, peak_hour_utc=14.0)
    for weather in (w, diurnal):
        db, wb = weather.temperatures_each(t)
        one = [weather.temperatures_c(x) for x in t.tolist()]
        np.testing.assert_array_equal(db, [a for a, _ in one])
        np.testing.assert_array_equal(wb, [b for _, b in one])
    c, f = ci.both_each(t)
    one = [ci.both_at(x) for x in t.tolist()]
    np.testing.assert_array_equal(c, [a for a, _ in one])
    np.testing.assert_array_equal(f, [b for _, b in one])
    bad = np.array([10.0, -1e6, 5.0])
    with pytest.raises(ValueError, match="weather asked for t=-1000000.0 s") as want:
        w.temperatures_c(-1e6)
    with pytest.raises(ValueError) as got:
        w.temperatures_each(bad)
    assert str(got.value) == str(want.value)
    with pytest.raises(ValueError, match="carbon intensity asked for t=-1e\\+06 s"):
        ci.both_each(bad)
