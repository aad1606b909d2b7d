"""Block stepping (docs/performance.md) must not change results, to the last bit.

Between two SimPy events other than the base tick's and Tier 2's own timeouts, the engine
closes the ticks and Tier-2 periods in a plain loop (``Engine.try_block``): settled
stretches through ``GpuFleet.advance_block``, ``Site.close_block`` and one compiled Tier-2
call (``HostPowerPredictor.step_block``), other ticks through the per-tick calls. The same
run with ``Engine.block_stepping = False`` (one SimPy event per tick and per period) must
give identical series and summaries; each block method must equal its per-tick original.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import backend_via

from twin.control.tier2_ar import HostPowerPredictor, RlsAr
from twin.scenario import parse_scenario
from twin.sim.clock import BlockEnvironment
from twin.sim.engine import Engine
from twin.sim.metrics import summarise

BASE = {
    "name": "blocks",
    "start": "2025-07-15T00:00:00Z",
    "duration_h": 2.0,
    "base_tick_s": 1.0,
    "seed": 11,
    "facility": {"nodes": 20, "gpus_per_node": 4, "gpu_model": "V100-SXM2-16GB", "host_idle_w": 300.0,
                 "host_busy_w": 650.0},
    "cooling": {"model": "paper_eq4"},
    "weather": {"model": "climate", "site": "IT"},
    "workload": {"source": "synthetic", "offered_load": 0.8, "warmup_h": 2.0},
    "grid": {"country": "IT", "carbon_source": "synthetic"},
    "frequency": {"source": "synthetic", "ffr_dips": 2},
    "control": {"tier2": "rls_ar", "ffr_gpu": "island", "tier1": "pid"},
    "outputs": {"overview_png": False},
}
HOURLY = {"tier2": "rls_ar", "ffr_gpu": "island", "tier3": "pue_aware", "ffr_commitment_kw": 0.0,
          "reserve_band": 0.2, "ffr_min_commitment_kw": 1.0, "scheduler": "carbon_aware"}
# a stateful plant with the heat loop and a battery (the per-tick site calls in any block)
DLC = {"cooling": {"model": "dlc_warm_water"},
       "heat": {"model": "district_heating", "heat_pump_capacity_kw": 50.0, "annual_demand_mwh": 150.0,
                "tank_volume_m3": 10.0, "tank_ua_w_per_k": 5.0, "meter_permanent_flow_m3_per_h": 1.0},
       "battery": {"model": "lfp", "capacity_kwh": 25.0, "max_charge_kw": 25.0, "max_discharge_kw": 50.0,
                   "ffr_reserve_kw": 20.0, "recharge_kw": 5.0}}


def _run(folder, raw: dict, blocks: bool):
    folder.mkdir()
    eng = Engine(parse_scenario(json.loads(json.dumps(raw)), "blocks.toml"), folder)
    eng.block_stepping = blocks
    eng.run()
    eng.site.ledger.check()
    summary = summarise(eng, wall_s=1.0, peak_rss_mb=0.0, version="test")
    frames = {f: pd.read_parquet(folder / f) for f in ("timeseries.parquet", "ffr_windows.parquet",
                                                       "control_hourly.parquet") if (folder / f).exists()}
    return eng, summary, frames


def _numbers(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items():
            if k not in ("wall_s", "peak_rss_mb", "real_time_factor"):
                yield from _numbers(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _numbers(v, f"{path}[{i}]")
    else:
        yield path, x


# 20 nodes x 650 W + 80 V100 at 300 W = 37 kW design IT: 4 circuits of 12.5 kW, N+1 transformers, UPS
DIST = {"circuits": 4, "circuit_capacity_mw": 0.0125, "circuits_per_pdu": 2, "transformer_mva": 0.06,
        "ups_mw": 0.05}


@pytest.mark.parametrize("extra", [{}, {"control": HOURLY}, {"control": {}}, {"control": {}, "frequency": {}},
                                   {"distribution": DIST},
                                   {"frequency": {"source": "synthetic", "ffr_dips": 2, "log_tick_s": 0.3333333}}],
                         ids=["tier2_island_tier1", "tier3_scheduler", "island_off", "no_control_no_frequency",
                              "distribution_losses", "log_tick_off_the_second"])
def test_blocks_give_the_per_tick_results_bit_for_bit(tmp_path, extra, monkeypatch):
    from twin.sim import engine
    monkeypatch.setattr(engine, "BLOCK_MIN_TICKS", 2)   # every stretch length vectorised
    raw = dict(BASE, **extra)
    if "frequency" in extra and not extra["frequency"]:
        raw.pop("frequency")
    fast, s_fast, f_fast = _run(tmp_path / "blocks", raw, True)
    slow, s_slow, f_slow = _run(tmp_path / "ticks", raw, False)
    assert fast.blocks > 0 and fast.block_ticks > 0.5 * raw["duration_h"] * 3600  # most ticks in blocks
    assert slow.blocks == 0 and next(fast.env._eid) < next(slow.env._eid)  # fewer SimPy events
    if "ffr_windows.parquet" in f_fast:   # settled stretches of the 100 ms log windows as fine blocks
        assert fast.fine_blocks > 0 and fast.fine_block_subticks > 0.3 * len(f_fast["ffr_windows.parquet"])
        assert slow.fine_blocks == 0
    assert f_fast.keys() == f_slow.keys()
    for name in f_fast:
        pd.testing.assert_frame_equal(f_fast[name], f_slow[name], check_exact=True)
    if "distribution" in extra:   # the losses are in the rows (Site._eq4_rows' per-tick curve)
        assert f_fast["timeseries.parquet"]["distribution_loss_w"].gt(0).all()
    a, b = dict(_numbers(s_fast)), dict(_numbers(s_slow))
    assert a.keys() == b.keys()
    for k, x in a.items():
        assert x == b[k] or (isinstance(x, float) and math.isnan(x) and math.isnan(b[k])), (k, x, b[k])


@pytest.mark.parametrize("min_ticks", [8, 10 ** 9], ids=["default", "tick_by_tick_inside_blocks"])
def test_blocks_with_any_shortest_vectorised_stretch(tmp_path, monkeypatch, min_ticks):
    """BLOCK_MIN_TICKS only chooses between two exact paths: vectorised from the default
    length on, or never (every tick of a block one at a time): the per-tick results bit for
    bit either way (2, every length, in the test above)."""
    from twin.sim import engine
    monkeypatch.setattr(engine, "BLOCK_MIN_TICKS", min_ticks)
    raw = dict(BASE, duration_h=1.0)
    fast, s_fast, f_fast = _run(tmp_path / "blocks", raw, True)
    _, s_slow, f_slow = _run(tmp_path / "ticks", raw, False)
    assert fast.blocks > 0 and (fast.fine_blocks > 0) == (min_ticks == 8)
    for name in f_fast:
        pd.testing.assert_frame_equal(f_fast[name], f_slow[name], check_exact=True)
    a, b = dict(_numbers(s_fast)), dict(_numbers(s_slow))
    assert all(x == b[k] or (isinstance(x, float) and math.isnan(x) and math.isnan(b[k])) for k, x in a.items())


def test_blocks_with_a_stateful_plant_heat_loop_and_battery(tmp_path):
    raw = {k: v for k, v in BASE.items() if k != "control"}
    raw.update(DLC, duration_h=1.0, facility=dict(BASE["facility"], gpu_model="H100-SXM"))
    try:
        parse_scenario(json.loads(json.dumps(raw)), "blocks.toml")
    except Exception as exc:  # noqa: BLE001 - the keys below must exist; say which one did not
        pytest.fail(f"test scenario invalid: {exc}")
    fast, s_fast, f_fast = _run(tmp_path / "blocks", raw, True)
    _, s_slow, f_slow = _run(tmp_path / "ticks", raw, False)
    assert fast.block_ticks > 1800 and fast.fine_blocks > 0  # (default BLOCK_MIN_TICKS)   # (the heat loop's and battery's per-tick calls)
    pd.testing.assert_frame_equal(f_fast["ffr_windows.parquet"], f_slow["ffr_windows.parquet"], check_exact=True)
    pd.testing.assert_frame_equal(f_fast["timeseries.parquet"], f_slow["timeseries.parquet"], check_exact=True)
    a, b = dict(_numbers(s_fast)), dict(_numbers(s_slow))
    assert all(x == b[k] or (isinstance(x, float) and math.isnan(x) and math.isnan(b[k])) for k, x in a.items())


def test_block_environment_sees_only_foreign_events():
    env = BlockEnvironment()
    assert env.next_foreign_s() == math.inf
    env.own_timeout(1.0)
    assert env.next_foreign_s() == math.inf           # own timeouts do not count
    env.timeout(5.0)
    ev = env.event()
    assert env.next_foreign_s() == 5.0
    ev.succeed()                                       # scheduled now: a foreign event at t=0
    assert env.next_foreign_s() == 0.0
    env.step()                                         # the own timeout is at 1, ev at 0: ev first
    assert ev.processed and env.next_foreign_s() == 5.0
    env.run(until=5.5)
    assert env.next_foreign_s() >= 5.5                # the timeout at 5 s processed, dropped


def _fleet():
    from twin.facility.gpu_fleet import GpuFleet
    from twin.physics.gpu import GPU_PROFILES

    fleet = GpuFleet(GPU_PROFILES["V100-SXM2-16GB"], gpu_count=np.full(7, 4), host_count=np.ones(7), cap_w=300.0,
                     host_idle_w=300.0, host_busy_w=650.0)
    fleet.set_load(0.0, np.array([0, 2, 5]), gpu_util=[1.0, 0.4, 0.7], host_util=[1.0, 0.5, 0.2], workload=1)
    fleet.advance_to(200.0)   # settled
    return fleet


def test_fleet_advance_block_equals_advance_to_and_reads():
    a, b = _fleet(), _fleet()
    assert a.can_block_until() > 1e9 and a._settled
    times = [200.0 + k for k in range(1, 41)]
    want_g, want_h, want_gc, want_hc = [], [], [], []
    for t in times:
        a.advance_to(t)
        want_g.append(a.gpu_energy_total_j)
        want_h.append(a.host_energy_total_j)
        want_gc.append(a.gpu_energy_j.copy())
        want_hc.append(a.host_energy_j.copy())
    _ = b.progress_s   # a read applies the lazy intervals: none pending before the block
    gs, hs = b.advance_block(times)
    assert gs == want_g and hs == want_h
    g, h, gw, hw, dts = b.lazy_energy()
    assert len(dts) == len(times) and not gw.flags.writeable
    for r, d in enumerate(dts):   # what a read after each interval gives
        g += gw * d
        h += hw * d
        np.testing.assert_array_equal(g, want_gc[r])
        np.testing.assert_array_equal(h, want_hc[r])
    for name in ("gpu_energy_j", "host_energy_j", "progress_s"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name))
    assert (b.t_s, b.work_node_s) == (a.t_s, a.work_node_s)


def test_fleet_advance_block_refuses_a_moving_fleet_and_unordered_times():
    f = _fleet()
    with pytest.raises(ValueError, match="must increase"):
        f.advance_block([201.0, 201.0])
    f = _fleet()
    f.set_cap(f.t_s, np.array([0]), np.array([200.0]))
    f.advance_to(f.t_s + 0.01)
    assert f.can_block_until() == -math.inf
    with pytest.raises(ValueError, match="not settled"):
        f.advance_block([f.t_s + 1.0])


@pytest.mark.parametrize("backend", ["numpy", "numba-aot", "numba-jit"])
def test_step_block_equals_step_period_by_period(backend, monkeypatch):
    via, backend = backend, backend_via(backend, monkeypatch)
    rng = np.random.default_rng(5)
    n, k = 37, 25
    hi = np.full(n, 2300.0)
    a, b = (HostPowerPredictor(RlsAr(n, backend=backend), np.ones(n), 600.0, hi, 1.0) for _ in range(2))
    g0, h0 = rng.uniform(0, 1e6, n), rng.uniform(0, 1e5, n)
    a.start(g0 + h0)
    b.start(g0 + h0)
    ra, rb = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    g, h = g0.copy(), h0.copy()
    for r in range(k):   # both per period first (the first period sets the compiled arguments)
        g = g + rng.uniform(900.0, 2000.0, n)
        assert a.step(g.copy(), h.copy(), ra, r > 2) == b.step(g.copy(), h.copy(), rb, r > 2)
    gw, hw = rng.uniform(500.0, 1700.0, n), rng.uniform(100.0, 300.0, n)
    dts = [1.0] * (k - 3) + [0.5, 2.0, 1.0]
    ra[3] = rb[3] = True   # a reset pending at the block's first period
    score = [r % 3 != 0 for r in range(k)]
    want, ga, ha = [], g.copy(), h.copy()
    for r, d in enumerate(dts):
        ga += gw * d
        ha += hw * d
        want.append(a.step(ga.copy(), ha.copy(), ra, score[r]))
    gb, hb = g.copy(), h.copy()
    got = b.step_block(gb, hb, gw, hw, dts, rb, score)
    assert got == want
    if via == "numba-aot":   # the periods and the block ran the AOT kernels
        from twin import aot
        assert b._call is aot.kernels().power_tick
    np.testing.assert_array_equal(gb, g)   # the inputs are not changed
    np.testing.assert_array_equal(b.pred_w, a.pred_w)
    np.testing.assert_array_equal(b.model.coef, a.model.coef)
    assert not rb.any()
    bad_w = gw.copy()
    bad_w[5] = np.nan   # refused at the first period: nothing done
    with pytest.raises(ValueError, match="not finite"):
        b.step_block(ga, ha, bad_w, hw, [1.0, 1.0], rb, [True, True])
    np.testing.assert_array_equal(b.model.coef, a.model.coef)


@pytest.mark.parametrize("backend", ["numpy", "numba-aot", "numba-jit"])
def test_step_block_with_sub_intervals_equals_the_reads_of_the_per_sub_tick_path(backend, monkeypatch):
    """A fine block (FFR log window): several intervals per period (``ends``), intervals
    before the first period and after the last; the same as accumulating the energy
    interval by interval (a settled fleet's read) and stepping at each period's end."""
    backend = backend_via(backend, monkeypatch)
    rng = np.random.default_rng(8)
    n = 29
    hi = np.full(n, 2300.0)
    a, b = (HostPowerPredictor(RlsAr(n, backend=backend), np.ones(n), 600.0, hi, 1.0) for _ in range(2))
    g, h = rng.uniform(0, 1e6, n), rng.uniform(0, 1e5, n)
    ra, rb = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    for p in (a, b):
        p.start(g + h)
    for r in range(8):   # per period first
        g = g + rng.uniform(900.0, 2000.0, n)
        assert a.step(g.copy(), h.copy(), ra, r > 1) == b.step(g.copy(), h.copy(), rb, r > 1)
    gw, hw = rng.uniform(500.0, 1700.0, n), rng.uniform(100.0, 300.0, n)
    # 100 ms sub-ticks as the engine times them: 0.3 s left of a second, 3 whole seconds, 0.4 s
    t, dts, ends = 7.7, [], []
    for target in [7.8, 7.9, 8.0] + [8.0 + 0.1 * j for j in range(1, 31)] + [11.1, 11.2, 11.3, 11.4]:
        tn = t + max(0.0, target - t)
        dts.append(tn - t)
        ends.append(float(tn).is_integer())
        t = tn
    assert sum(ends) == 4
    ra[2] = rb[2] = True   # a reset pending at the block's first period
    score = [True, False, True, True]
    want, ga, ha, r = [], g.copy(), h.copy(), 0
    for d, e in zip(dts, ends):
        ga += gw * d
        ha += hw * d
        if e:
            want.append(a.step(ga.copy(), ha.copy(), ra, score[r]))
            r += 1
    got = b.step_block(g.copy(), h.copy(), gw, hw, dts, rb, score, ends)
    assert got == want and len(got) == 4
    np.testing.assert_array_equal(b.pred_w, a.pred_w)
    np.testing.assert_array_equal(b.model.coef, a.model.coef)
    with pytest.raises(ValueError, match="one flag per period"):
        b.step_block(g, h, gw, hw, dts, rb, score[:3], ends)
    with pytest.raises(ValueError, match="one flag per interval"):
        b.step_block(g, h, gw, hw, dts, rb, score, ends[:-1])


def _block_times_loop(k, t, n, dt, win_s, limit_s, until_s, max_ticks):
    """``Engine.try_block``'s stretch loop (the reference of ``_block_times``)."""
    times, tp, kk = [], t, k
    while kk < n - 1 and len(times) < max_ticks:
        t1 = (kk + 1) * dt
        if win_s < t1:
            break
        tn = tp + max(0.0, t1 - tp)
        if not tn < limit_s or not tn < until_s:
            break
        times.append(tn)
        tp, kk = tn, kk + 1
    return times


def test_block_times_closed_form_equals_the_loop():
    from twin.sim.engine import _block_times

    rng = np.random.default_rng(3)
    inf = math.inf
    for _ in range(4000):
        dt = float(rng.choice([1.0, 2.0, 3.0, 5.0, 60.0]))
        n = int(rng.integers(1, 400))
        k = int(rng.integers(0, n))
        t = k * dt

        def bound(k, t, dt):
            c = rng.random()
            if c < 0.15:
                return inf
            if c < 0.2:
                return -inf
            if c < 0.5:  # on a tick end exactly, or one ulp either side
                b = float(k + rng.integers(-2, 80)) * dt
                return float(rng.choice([b, np.nextafter(b, inf), np.nextafter(b, -inf)]))
            return t + float(rng.uniform(-5.0, 90.0)) * dt

        args = (k, t, n, dt, bound(k, t, dt), bound(k, t, dt), bound(k, t, dt), int(rng.choice([1, 2, 7, 256])))
        assert _block_times(*args) == _block_times_loop(*args), args
    # off the grid or not a whole tick: the loop's job
    assert _block_times(3, 3.5, 100, 1.0, inf, inf, inf, 256) is None
    assert _block_times(3, 0.3, 100, 0.1, inf, inf, inf, 256) is None
    assert _block_times(3, 3.0, 100, 1.0, inf, inf, inf, 256) == [float(i) for i in range(4, 100)]
    big = 2.0**53
    assert _block_times(int(big) - 10, big - 10, 2**60, 1.0, inf, inf, inf, 256) is None


@pytest.mark.parametrize("order", ["C", "F"])
def test_aggregate_blocks_equals_aggregate_rows_group_by_group(order):
    """The fine blocks' base-tick rows (engine._aggregate_blocks) against _aggregate_rows of
    each group of 10 sub-tick rows, bit for bit: NaN columns (no coolant loop), scattered
    NaN, zero IT power (PUE NaN), magnitudes 1e-3..1e6; from a C- or F-ordered block."""
    from twin.facility.site import Site
    from twin.sim.engine import _aggregate_blocks, _aggregate_rows
    rng = np.random.default_rng(21)
    c = len(Site.COLUMNS)
    for m in (1, 2, 7, 33):
        a = rng.normal(100.0, 30.0, (m * 10, c)) * rng.choice([1e-3, 1.0, 1e6], (1, c))
        a[:, rng.random(c) < 0.2] = np.nan
        a[rng.random(a.shape) < 0.03] = np.nan
        a[:10, Site.COLUMNS.index("it_power_w")] = 0.0   # the first group: PUE NaN
        x = np.asfortranarray(a) if order == "F" else a
        got = _aggregate_blocks(x.reshape(m, 10, c))
        want = [_aggregate_rows([tuple(r) for r in a[g * 10:(g + 1) * 10].tolist()]) for g in range(m)]
        assert len(got) == m
        for g, w in zip(got, want):
            np.testing.assert_array_equal(np.array(g), np.array(w))
        assert math.isnan(got[0][Site.COLUMNS.index("pue")])
