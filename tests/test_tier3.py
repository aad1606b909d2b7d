"""Tier-3 selector: known optima, CI-only vs PUE-aware, island-table rows (hand-worked values)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.control.island_table import decode_table
from twin.control.tier3_selector import (
    Tier3Params,
    Tier3Selector,
    fr_quality,
    island_caps_w,
    meter_reserve_w,
    operating_grid,
    score_grid,
    select_operating_point,
)

P_MAX_W = 1.0e6  # 1 MW of IT at u = 1


def test_grid_is_the_stated_one():
    u, r = operating_grid(Tier3Params())
    # u: 0.40, 0.45, ..., 1.00 -> (1 - 0.4) / 0.05 + 1 = 13 points; r: 0.00 .. 0.40 by 0.01 -> 41
    assert u.size == 13 and r.size == 41
    assert u[0] == 0.4 and u[-1] == 1.0 and r[0] == 0.0 and r[-1] == 0.4
    np.testing.assert_allclose(np.diff(u), 0.05, atol=1e-12)
    np.testing.assert_allclose(np.diff(r), 0.01, atol=1e-12)


def test_green_hour_runs_flat_out_with_the_smallest_sufficient_band():
    # CI-only (F = identity), cff = 1, CI = 0: J = u (w_cfe cff) + u (w_work) + Q = 2u + Q.
    # R = 0.25 MW: Q = min(1, r P / R) = 1 from r = 0.25 on; ties go to the smallest r.
    # Optimum u = 1, r = 0.25, J = 2 + 1 = 3.
    u, r, j, table = select_operating_point(P_MAX_W, 0.0, 1.0, 100.0, committed_reserve_w=0.25 * P_MAX_W)
    assert u == 1.0
    assert r == pytest.approx(0.25, abs=1e-12)
    assert j == pytest.approx(3.0, abs=1e-12)
    assert table.objective.shape == (13, 41)


def test_dirty_hour_trades_carbon_against_reserve_quality():
    # cff = 0, CI / CI_ref = 300 / 100 = 3: J = -3u + u + Q = -2u + Q, trigger floor u - r >= 0.2.
    # u = 0.40: r <= 0.20 -> Q = 0.20 / 0.25 = 0.8, J = -0.8 + 0.8 = 0.0
    # u = 0.45: r = 0.25 feasible -> Q = 1,          J = -0.9 + 1.0 = 0.1   <- optimum
    # u = 0.50: r = 0.25 -> Q = 1,                   J = -1.0 + 1.0 = 0.0 (and lower for larger u)
    p = Tier3Params(trigger_floor_fraction=0.2)
    u, r, j, table = select_operating_point(P_MAX_W, 300.0, 0.0, 100.0, 0.25 * P_MAX_W, params=p)
    assert u == pytest.approx(0.45, abs=1e-12)
    assert r == pytest.approx(0.25, abs=1e-12)
    assert j == pytest.approx(0.1, abs=1e-9)
    # infeasible cells (u - r < 0.2) are -inf: u = 0.4 allows r <= 0.2 only
    assert np.isinf(table.objective[0, 21]) and np.isfinite(table.objective[0, 20])
    assert table.fr_quality[0, 20] == pytest.approx(0.8, abs=1e-9)


def test_no_commitment_means_no_band():
    # R = 0: Q = 1 everywhere, so every r ties and the smallest (0) wins
    u, r, _, _ = select_operating_point(P_MAX_W, 0.0, 1.0, 100.0, committed_reserve_w=0.0)
    assert (u, r) == (1.0, 0.0)


def test_score_grid_matches_a_plain_loop_for_random_inputs():
    # an independent scalar evaluation of J(u, r) for a non-linear facility model
    rng = np.random.default_rng(7)
    for _ in range(40):
        a, b, c = rng.uniform(1.0, 1.5), rng.uniform(0.0, 0.3), rng.uniform(0.0, 0.2)

        def fac(p, a=a, b=b, c=c):
            x = np.asarray(p) / P_MAX_W
            return P_MAX_W * (a * x + b + c * x**3)

        p = Tier3Params(w_cfe=rng.uniform(0, 2), w_fr=rng.uniform(0, 2), w_co2=rng.uniform(0, 2),
                        w_work=rng.uniform(0, 2), trigger_floor_fraction=rng.uniform(0, 0.4))
        ci, cff, ref, rc = rng.uniform(0, 600), rng.uniform(0, 1), rng.uniform(50, 400), rng.uniform(0, 0.4) * P_MAX_W
        t = score_grid(P_MAX_W, ci, cff, ref, rc, fac, p)
        best = -math.inf
        for iu, u in enumerate(t.u_grid):
            for ir, r in enumerate(t.r_grid):
                if u - r < p.trigger_floor_fraction - 1e-12:
                    assert t.objective[iu, ir] == -math.inf
                    continue
                e = float((fac(u * P_MAX_W) - fac(0.0)) / P_MAX_W)
                d = float(fac(u * P_MAX_W) - fac((u - r) * P_MAX_W))
                q = 1.0 if rc == 0 else min(1.0, max(0.0, d / rc))
                jj = p.w_cfe * cff * e - p.w_co2 * ci / ref * e + p.w_fr * q + p.w_work * u
                assert t.objective[iu, ir] == pytest.approx(jj, rel=1e-12, abs=1e-12)
                best = max(best, jj)
        choice = select_operating_point(P_MAX_W, ci, cff, ref, rc, fac, p)
        assert choice.objective == pytest.approx(best, rel=1e-12, abs=1e-12)


def test_pue_aware_and_ci_only_differ_when_pue_varies():
    # F(p) = 1.1 p + 0.4 P_max: PUE = 1.1 + 0.4 / u varies with load; marginal factor 1.1.
    def fac(p):
        return 1.1 * np.asarray(p) + 0.4 * P_MAX_W

    rc = 0.22 * P_MAX_W  # reserve committed at the meter
    # Dirty hour: cff = 0, CI / CI_ref = 1.2.
    # CI-only: e(u) = u, J = -1.2u + u + Q = -0.2u + Q -> u = 0.4; it sizes r on IT power:
    #   r P = 0.22 P -> r = 0.22; J = -0.08 + 1 = 0.92.
    # PUE-aware: e(u) = (F(uP) - F(0)) / P = 1.1u (the 0.4 P_max overhead is sunk: only the
    #   marginal 1.1 W per IT W follows u), J = -1.2 x 1.1u + u + Q, slope 1 - 1.32 = -0.32 < 0
    #   -> u = 0.4, curtailed like CI-only (each IT watt costs 1.1 W at the meter); r: 1.1 r P =
    #   0.22 P -> r = 0.2; J = -1.32 x 0.4 + 0.4 + 1 = 0.872.
    ci_only = select_operating_point(P_MAX_W, 120.0, 0.0, 100.0, rc)
    aware = select_operating_point(P_MAX_W, 120.0, 0.0, 100.0, rc, facility_power_fn=fac)
    assert (ci_only.u, ci_only.r) == pytest.approx((0.4, 0.22), abs=1e-12)
    assert ci_only.objective == pytest.approx(0.92, abs=1e-9)
    assert (aware.u, aware.r) == pytest.approx((0.4, 0.2), abs=1e-12)
    assert aware.objective == pytest.approx(0.872, abs=1e-9)
    # A cleaner hour, CI / CI_ref = 0.95: CI-only slope 1 - 0.95 > 0 -> u = 1; PUE-aware slope
    # 1 - 0.95 x 1.1 = -0.045 < 0 -> u = 0.4: the meter's marginal factor tips the decision
    assert select_operating_point(P_MAX_W, 95.0, 0.0, 100.0, 0.0).u == 1.0
    assert select_operating_point(P_MAX_W, 95.0, 0.0, 100.0, 0.0, facility_power_fn=fac).u == pytest.approx(0.4)
    # At the real meter the CI-only band delivers 1.1 x 0.22 = 0.242 MW for 0.22 committed
    # (10 % over-delivery, 0.02 of P_max curtailed for nothing); the PUE-aware one 0.22 MW.
    assert meter_reserve_w(P_MAX_W, ci_only.u, ci_only.r, fac) == pytest.approx(0.242 * P_MAX_W, rel=1e-9)
    assert meter_reserve_w(P_MAX_W, aware.u, aware.r, fac) == pytest.approx(0.22 * P_MAX_W, rel=1e-9)
    # With a constant-PUE-1 model both variants agree exactly
    same = select_operating_point(P_MAX_W, 120.0, 0.0, 100.0, rc, facility_power_fn=lambda p: np.asarray(p) * 1.0)
    assert (same.u, same.r) == (ci_only.u, ci_only.r)


def test_paper_eq4_model_plugs_in():
    # The injected model may be the paper's Eq. 4 (twin.physics.cooling) with coefficients bound.
    from twin.physics.cooling import facility_power_w

    def eq4(p):
        return facility_power_w(p, P_MAX_W, 30.0, 22.0, chiller_cop=5.5, pump_design_fraction=0.03,
                                fan_design_fraction=0.03, misc_fraction=0.05)["facility_power_w"]

    # Hot day (wet-bulb 22 > 12 °C, dry-bulb 30 > 25 °C: no free cooling), u = 1:
    # D(1, r) = r P (1 + 1/5.5) + (0.03 + 0.03) P (1 - (1 - r)^3)   (misc is constant)
    #   r = 0.22: 0.26000 + 0.06 x (1 - 0.78^3 = 0.525448) = 0.29153 MW < 0.3
    #   r = 0.23: 0.27182 + 0.06 x (1 - 0.77^3 = 0.543467) = 0.30443 MW >= 0.3  -> r = 0.23
    # (CI-only would take r = 0.30)
    aware = select_operating_point(P_MAX_W, 0.0, 1.0, 100.0, 0.3 * P_MAX_W, facility_power_fn=eq4)
    assert aware.u == 1.0
    assert aware.r == pytest.approx(0.23, abs=1e-12)
    assert meter_reserve_w(P_MAX_W, 1.0, 0.23, eq4) == pytest.approx(0.30443e6, rel=1e-4)
    assert meter_reserve_w(P_MAX_W, 1.0, 0.22, eq4) == pytest.approx(0.29153e6, rel=1e-4)


def test_fr_quality_definition():
    # min(1, delivered / committed); nothing committed -> 1; negative delivery -> 0
    np.testing.assert_allclose(fr_quality([0.5e6, 1.2e6, -1.0], 1.0e6), [0.5, 1.0, 0.0])
    np.testing.assert_allclose(fr_quality([0.0, 3.0], 0.0), [1.0, 1.0])
    with pytest.raises(ValueError, match="committed_w"):
        fr_quality(1.0, -1.0)


def test_island_caps_hand_checked():
    # V100 (P_max 300 W, limits 150-300 W) and H100 (700 W, 200-700 W)
    normal, trig = island_caps_w(0.9, 0.2, [300.0, 700.0], [150.0, 200.0])
    np.testing.assert_allclose(normal, [270.0, 630.0])   # 0.9 x 300, 0.9 x 700
    np.testing.assert_allclose(trig, [210.0, 490.0])     # 0.7 x 300, 0.7 x 700
    normal, trig = island_caps_w(0.45, 0.25, [300.0, 700.0], [150.0, 200.0])
    np.testing.assert_allclose(normal, [150.0, 315.0])   # 135 -> clipped to 150; 0.45 x 700
    np.testing.assert_allclose(trig, [150.0, 200.0])     # 60 -> 150; 140 -> 200
    with pytest.raises(ValueError, match="0 <= r <= u <= 1"):
        island_caps_w(0.4, 0.5, [300.0], [150.0])


def test_selector_writes_versioned_island_tables():
    sel = Tier3Selector()  # CI-only
    with pytest.raises(ValueError, match="no decision yet"):
        sel.island_rows([300.0], [150.0])
    d = sel.decide(0.0, P_MAX_W, 0.0, 1.0, 100.0, committed_reserve_w=0.25 * P_MAX_W)
    assert (d.version, d.u, d.r) == (1, 1.0, pytest.approx(0.25, abs=1e-12))
    # cohorts: V100 300 W (150-300), H100 700 W (200-700), a V100 cohort whose P_max is 250 W
    pmax, lo, hi = [300.0, 700.0, 250.0], [150.0, 200.0, 150.0], [300.0, 700.0, 300.0]
    data = sel.island_table_bytes(1.7e9, pmax, lo, hi, cohort_ids=[4, 5, 9])
    t = decode_table(data)
    assert list(t.levels_hz) == [49.7, 49.6, 49.5, 49.9]
    assert t.kinds == ("trigger", "trigger", "trigger", "release")
    # trigger rows: (u - r) P_max = 0.75 x (300, 700, 250) = (225, 525, 187.5); release: u P_max
    for i in range(3):
        np.testing.assert_allclose(t.caps_w[i], [225.0, 525.0, 187.5], atol=1e-4)
    np.testing.assert_allclose(t.caps_w[3], [300.0, 700.0, 250.0], atol=1e-4)
    assert list(t.cohort_ids) == [4, 5, 9]
    assert t.meta["decision_version"] == 1 and t.meta["writer"] == "tier3"
    assert t.meta["u"] == 1.0 and t.meta["pue_aware"] is False
    assert t.created_s == 1.7e9 and t.expires_s == 1.7e9 + 7200.0
    # next hour: a dirty hour moves the operating point and bumps the version
    d2 = sel.decide(3600.0, P_MAX_W, 300.0, 0.0, 100.0, committed_reserve_w=0.25 * P_MAX_W)
    assert d2.version == 2 and d2.u == pytest.approx(0.4)
    t2 = decode_table(sel.island_table_bytes(1.7e9 + 3600, pmax, lo, hi))
    assert t2.meta["decision_version"] == 2
    # (0.4 - 0.25) x 300 = 45 -> 150 W (min limit); x 700 = 105 -> 200 W; x 250 = 37.5 -> 150 W
    np.testing.assert_allclose(t2.caps_w[0], [150.0, 200.0, 150.0], atol=1e-4)
    np.testing.assert_allclose(t2.caps_w[3], [150.0, 280.0, 150.0], atol=1e-4)  # 120 -> 150, 280, 100 -> 150


def test_no_release_row_when_disabled():
    sel = Tier3Selector(Tier3Params(release_level_hz=None, trigger_levels_hz=(49.5,)))
    sel.decide(0.0, P_MAX_W, 0.0, 1.0, 100.0, 0.1 * P_MAX_W)
    levels, kinds, caps = sel.island_rows([300.0], [150.0])
    assert levels == (49.5,) and kinds == ("trigger",)
    np.testing.assert_allclose(caps, [[270.0]])  # (1 - 0.1) x 300


@pytest.mark.parametrize("kw, field", [
    ({"w_fr": -1.0}, "w_fr"),
    ({"w_co2": math.nan}, "w_co2"),
    ({"u_min": 1.0}, "u_min"),
    ({"u_step": 0.07}, "u_step"),
    ({"r_step": 0.03}, "r_step"),
    ({"r_max": 1.5}, "r_max"),
    ({"trigger_levels_hz": (49.5, 49.7)}, "trigger_levels_hz"),
    ({"release_level_hz": 49.6}, "release_level_hz"),
    ({"table_validity_s": 0.0}, "table_validity_s"),
])
def test_bad_params_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        Tier3Params(**kw)


def test_bad_inputs_and_models_are_refused():
    with pytest.raises(ValueError, match="carbon_free_fraction"):
        select_operating_point(P_MAX_W, 100.0, 1.5, 100.0)
    with pytest.raises(ValueError, match="ci_ref_g_per_kwh"):
        select_operating_point(P_MAX_W, 100.0, 0.5, 0.0)
    with pytest.raises(ValueError, match="committed_reserve_w"):
        select_operating_point(P_MAX_W, 100.0, 0.5, 100.0, -1.0)
    with pytest.raises(ValueError, match="same shape"):
        select_operating_point(P_MAX_W, 100.0, 0.5, 100.0, facility_power_fn=lambda p: 1.2)
    with pytest.raises(ValueError, match="below IT power"):
        select_operating_point(P_MAX_W, 100.0, 0.5, 100.0, facility_power_fn=lambda p: 0.9 * np.asarray(p))
