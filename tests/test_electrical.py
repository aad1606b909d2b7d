"""Electrical physics (twin/physics/electrical.py): PSU, PF/THD, transformer, UPS.

Expected values are hand-interpolated from the REFERENCE.md §8.3-8.5 tables (arithmetic
in the comments). Tolerances: 1e-12 relative unless stated (pure arithmetic).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.physics.electrical import (
    TRANSFORMER_2500KVA_TIER2_PLACEHOLDER as T25,
)
from twin.physics.electrical import (
    Curve,
    harmonic_terms,
    iec_61000_3_2_class_d_h3_limit_a,
    power_factor_from_thd,
    power_quality,
    psu_efficiency,
    psu_input_power_w,
    psu_loss_w,
    psu_power_factor,
    psu_thd,
    thd_from_power_factor,
    transformer_efficiency,
    transformer_loss_w,
    ups_efficiency,
    ups_input_power_factor,
    ups_input_power_w,
    ups_loss_w,
)


def test_psu_efficiency_titanium_and_platinum_points():
    # Titanium 90/94/96/91 % at 10/20/50/100 %; 35 % is halfway 20 -> 50: (0.94 + 0.96)/2 = 0.95;
    # 80 % : 0.96 + (0.91 - 0.96) x 0.6 = 0.93; outside the table held flat: 5 % -> 0.90, 120 % -> 0.91
    np.testing.assert_allclose(psu_efficiency([0.1, 0.2, 0.35, 0.5, 0.8, 1.0, 0.05, 1.2]),
                               [0.90, 0.94, 0.95, 0.96, 0.93, 0.91, 0.90, 0.91], rtol=1e-12)
    # Platinum 10 % point is Intel P4000IP's 82 %
    assert psu_efficiency(0.1, "80plus_platinum") == pytest.approx(0.82, rel=1e-12)
    with pytest.raises(ValueError, match="psu curve"):
        psu_efficiency(0.5, "80plus_gold")


def test_psu_input_power_and_loss():
    # 500 W out of a 1000 W PSU: 50 % load, eta 0.96 -> 520.8333 W in, 20.8333 W lost
    assert psu_input_power_w(500.0, 1000.0) == pytest.approx(500.0 / 0.96, rel=1e-12)
    assert psu_loss_w(500.0, 1000.0) == pytest.approx(500.0 / 0.96 - 500.0, rel=1e-12)


def test_power_factor_floor_and_derived_thd():
    # ENERGY STAR floor 0.65/0.80/0.90/0.95; 35 % -> (0.80 + 0.90)/2 = 0.85
    assert psu_power_factor(0.35) == pytest.approx(0.85, rel=1e-12)
    # THD = sqrt(1/PF^2 - 1): PF 0.95 -> sqrt(1/0.9025 - 1) = 0.3286841...; PF 0.65 -> 1.1691...
    assert psu_thd(1.0) == pytest.approx(math.sqrt(1 / 0.9025 - 1), rel=1e-12)
    assert psu_thd(0.1) == pytest.approx(math.sqrt(1 / 0.4225 - 1), rel=1e-12)
    assert psu_thd(1.0) == pytest.approx(0.3286841, rel=1e-6)
    # round trip through the distortion factor
    assert power_factor_from_thd(thd_from_power_factor(0.9)) == pytest.approx(0.9, rel=1e-12)
    # displacement 0.8 and THD 0.75: 0.8 / sqrt(1.5625) = 0.64
    assert power_factor_from_thd(0.75, 0.8) == pytest.approx(0.64, rel=1e-12)


def test_iec_class_d_third_harmonic_limit():
    # 3.4 mA/W x 500 W = 1.7 A; 1 kW would be 3.4 A, capped at class A 2.30 A
    np.testing.assert_allclose(iec_61000_3_2_class_d_h3_limit_a([500.0, 1000.0]), [1.7, 2.30], rtol=1e-12)


def test_transformer_losses_with_placeholder_flagged():
    assert T25.verified is False and "placeholder" in T25.source
    # 1.25 MVA on 2.5 MVA: x = 0.5; 1575 + 0.25 x 18 500 = 6200 W
    assert transformer_loss_w(1.25e6, T25.rated_va, T25.no_load_loss_w, T25.load_loss_w) == pytest.approx(6200.0)
    # no load still costs P0
    assert transformer_loss_w(0.0, 2.5e6, 1575.0, 18500.0) == pytest.approx(1575.0)
    # efficiency at 1.25 MW, PF 1: 1.25e6 / (1.25e6 + 6200) = 0.995065 (REFERENCE.md §8.4: 99.50 %)
    assert transformer_efficiency(1.25e6, 2.5e6, 1575.0, 18500.0) == pytest.approx(1.25e6 / 1.2562e6, rel=1e-12)
    # full load: 1575 + 18 500 = 20 075 W; 2.5e6/2.520075e6 = 0.99203 (REFERENCE: 99.20 %)
    assert transformer_efficiency(2.5e6, 2.5e6, 1575.0, 18500.0) == pytest.approx(0.99203, abs=5e-6)
    # at PF 0.9 the apparent load is 1.25e6/0.9 VA: 1575 + (0.5/0.9)^2 x 18500 = 7284.6 W
    eta = transformer_efficiency(1.25e6, 2.5e6, 1575.0, 18500.0, power_factor=0.9)
    assert eta == pytest.approx(1.25e6 / (1.25e6 + 1575.0 + (0.5 / 0.9) ** 2 * 18500.0), rel=1e-12)


def test_ups_efficiency_modes():
    # assumed double-conversion curve 88/93/95/95 % at 10/25/50/100 %; eco: 1 - 0.05/3 = 0.983333
    assert ups_efficiency(0.75) == pytest.approx(0.95, rel=1e-12)
    assert ups_efficiency(0.375) == pytest.approx(0.94, rel=1e-12)   # halfway 0.93 -> 0.95
    assert ups_efficiency(0.75, "eco") == pytest.approx(1 - 0.05 / 3, rel=1e-12)
    # 500 kW out of 1 MW in double conversion: 500e3 / 0.95 = 526 315.79 W in
    assert ups_input_power_w(500e3, 1e6) == pytest.approx(526_315.789, rel=1e-9)
    # eco: 500e3 x (1/(1 - 0.05/3) - 1) = 500e3 x 0.0169492 = 8474.58 W (vs 26 315.79 W)
    assert ups_loss_w(500e3, 1e6, "eco") == pytest.approx(8474.576, rel=1e-6)
    assert ups_loss_w(500e3, 1e6) == pytest.approx(26_315.789, rel=1e-6)
    with pytest.raises(ValueError, match="mode"):
        ups_efficiency(0.5, "bypass")


def test_ups_input_power_factor_steps():
    # Galaxy VL: > 0.99 above 25 %, > 0.95 above 15 % (and held below)
    np.testing.assert_allclose(ups_input_power_factor([0.1, 0.2, 0.25, 0.9]), [0.95, 0.95, 0.99, 0.99])


def test_harmonic_terms_and_bus_power_quality():
    # P 100 W, THD 0.3, unity displacement: Q = 0, H = 30 VA; PF = 100/sqrt(100^2 + 30^2) = 0.957826
    q, h = harmonic_terms(100.0, 0.3)
    assert q == pytest.approx(0.0, abs=1e-12) and h == pytest.approx(30.0, rel=1e-12)
    thd, pf = power_quality(100.0, q, h)
    assert thd == pytest.approx(0.3, rel=1e-12) and pf == pytest.approx(100 / math.hypot(100, 30), rel=1e-12)
    # displacement 0.8: Q = P x 0.6/0.8 = 75 var
    q, _ = harmonic_terms(100.0, 0.0, 0.8)
    assert q == pytest.approx(75.0, rel=1e-12)
    # two loads, THD 0.2 on 100 W and 0 on 300 W: bus THD = 20 / 400 = 0.05
    q1, h1 = harmonic_terms(np.array([100.0, 300.0]), np.array([0.2, 0.0]))
    thd, _ = power_quality(400.0, q1.sum(), h1.sum())
    assert thd == pytest.approx(0.05, rel=1e-12)
    # no power: THD 0, PF 1
    assert power_quality(0.0, 0.0, 0.0) == (0.0, 1.0)


def test_curve_validation():
    with pytest.raises(ValueError, match="strictly increasing"):
        Curve((0.5, 0.2), (0.9, 0.9), "bad")
    with pytest.raises(ValueError, match="values"):
        Curve((0.1, 0.2), (0.9,), "bad")
