"""The scalar fast paths of the per-tick physics agree with the numpy (array) paths.

Each function in ``twin.physics`` that a plant calls every tick has a branch for plain
floats (issue 9). Here every such function is evaluated on the same inputs both ways:
as Python floats (fast path) and as 1-element arrays (numpy path). Arithmetic-only paths
must agree exactly; paths using ``exp``/``tanh``/``expm1`` from :mod:`math` may differ
from numpy's by rounding (tolerance 1e-13 relative). Edge cases (zero, negative, NaN,
infinite limits, empty headroom) are included.

Run: ``.venv/bin/python -m pytest -q bench/test_fastpath.py`` (``make bench`` runs it first).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.physics import battery as bat
from twin.physics import chiller as ch
from twin.physics import cooling as co
from twin.physics import heat as he

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
