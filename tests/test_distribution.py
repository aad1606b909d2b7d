"""Distribution topology (twin/facility/distribution.py): flows, failover, overload, shedding.

The hand-checked topology: meter -> T0, T1 (N+1, 100 kVA, P0 100 W, Pk 1000 W) ->
UPS0, UPS1 (N+1, 52 083.33 W each, double conversion) -> PDU0 (lossless) -> R0, R1
(50 kW racks, Titanium PSUs). Each rack carries 25 kW of IT load: 50 % PSU load, eta
0.96, input 26 041.667 W; the PDU carries 52 083.333 W; each UPS half of that, 50 % of
its rating, eta 0.95 (the assumed curve is flat at 95 % from 50 % up).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.facility.distribution import (
    Distribution,
    Pdu,
    Rack,
    ShedDecision,
    ShedLog,
    ShedScope,
    ShedWorkload,
    Transformer,
    Ups,
    Utility,
    plan_load_shedding,
    standard_topology,
)

RACK_IN = 25e3 / 0.96            # 26 041.667 W
PDU_OUT = 2 * RACK_IN            # 52 083.333 W
UPS_CAP = PDU_OUT                # so two UPS each run at 50 %


def small_n_plus_1() -> Distribution:
    return Distribution([
        Utility("meter", 200e3),
        Transformer("T0", ("meter",), 100e3, 100.0, 1000.0),
        Transformer("T1", ("meter",), 100e3, 100.0, 1000.0),
        Ups("UPS0", ("T0", "T1"), UPS_CAP),
        Ups("UPS1", ("T0", "T1"), UPS_CAP),
        Pdu("PDU0", ("UPS0", "UPS1"), 100e3, full_load_loss_fraction=0.0),
        Rack("R0", ("PDU0",), 50e3),
        Rack("R1", ("PDU0",), 50e3),
    ])


def expected_meter_w() -> float:
    # UPS input total: 52 083.333 / 0.95 = 54 824.561 W (both UPS at eta 0.95, or one at 100 %).
    # UPS input PF 0.99 (>= 25 % load), THD 0.03 -> S_rms = P / PF = 55 378.345 VA, split over
    # two transformers: x = 27 689.17 / 100e3 = 0.2768917; loss each 100 + 1000 x 0.076669
    # = 176.669 W; meter = 54 824.561 + 2 x 176.669 = 55 177.90 W
    p_ups_in = PDU_OUT / 0.95
    x = p_ups_in / 0.99 / 2 / 100e3
    return p_ups_in + 2 * (100.0 + 1000.0 * x * x)


def test_flows_losses_and_meter_by_hand():
    d = small_n_plus_1()
    f = d.compute({"R0": 25e3, "R1": 25e3})
    assert f.power_in_w["R0"] == pytest.approx(RACK_IN, rel=1e-12)
    assert f.power_out_w["PDU0"] == pytest.approx(PDU_OUT, rel=1e-12)
    assert f.power_out_w["UPS0"] == pytest.approx(PDU_OUT / 2, rel=1e-12)
    assert f.power_in_w["UPS0"] == pytest.approx(PDU_OUT / 2 / 0.95, rel=1e-12)
    assert f.meter_w == pytest.approx(expected_meter_w(), rel=1e-9)
    assert f.meter_w == pytest.approx(55_177.90, abs=0.01)
    # every watt between the racks' IT load and the meter is some element's loss
    assert f.meter_w - f.it_w == pytest.approx(f.total_loss_w, rel=1e-12)
    assert f.overloaded == () and f.unserved_racks == ()
    # meter power quality comes from the UPS input stage (PF 0.99, THD 0.03) with the
    # transformer losses added as real power: P_u = 54 824.56 W, cos(phi) = 0.99 sqrt(1.0009);
    # Q = P_u tan(phi), H = 0.03 P_u / cos(phi); THD = H / |P_m + jQ|, PF = P_m / sqrt(P_m^2 + Q^2 + H^2)
    p_u, p_m = PDU_OUT / 0.95, expected_meter_w()
    cos = 0.99 * math.sqrt(1.0009)
    q, h = p_u * math.tan(math.acos(cos)), 0.03 * p_u / cos
    assert f.thd_meter == pytest.approx(h / math.hypot(p_m, q), rel=1e-9)
    assert f.power_factor_meter == pytest.approx(p_m / math.sqrt(p_m**2 + q**2 + h**2), rel=1e-9)
    assert 0.0297 < f.thd_meter < 0.03 and 0.99 < f.power_factor_meter < 0.9905


def test_n_plus_1_failover_keeps_the_load_served():
    d = small_n_plus_1()
    ev = d.fail("UPS0", t_s=12.5)
    assert ev.t_s == 12.5 and ev.action == "fail" and d.events == [ev]
    f = d.compute({"R0": 25e3, "R1": 25e3})
    assert f.unserved_racks == () and f.it_w == pytest.approx(50e3)
    # UPS1 carries the whole PDU at 100 % of its rating (eta still 0.95): not over capacity
    assert f.power_out_w["UPS1"] == pytest.approx(PDU_OUT, rel=1e-12)
    assert f.power_out_w["UPS0"] == 0.0
    assert "UPS1" not in f.overloaded
    assert f.meter_w == pytest.approx(expected_meter_w(), rel=1e-9)
    # 1 % more load overloads the surviving UPS
    f2 = d.compute({"R0": 25.25e3, "R1": 25.25e3})
    assert "UPS1" in f2.overloaded
    d.restore("UPS0", t_s=20.0)
    assert d.compute({"R0": 25.25e3, "R1": 25.25e3}).overloaded == ()
    with pytest.raises(ValueError, match="not failed"):
        d.restore("UPS0", 21.0)


def test_2n_failover_and_loss_of_both_sides():
    d = standard_topology(4, 50e3, racks_per_pdu=2, redundancy="2N", ups_capacity_w=500e3)
    loads = {r: 40e3 for r in d.racks}
    f = d.compute(loads)
    # each rack splits its input over its A and B PDUs
    assert f.power_out_w["PDUA0"] == pytest.approx(f.power_out_w["PDUB0"], rel=1e-12)
    rack_in = f.power_in_w["R0"]
    assert f.power_out_w["PDUA0"] == pytest.approx(rack_in, rel=1e-12)    # 2 racks x 1/2
    d.fail("PDUA0", 1.0)
    f = d.compute(loads)
    assert f.unserved_racks == ()
    assert f.power_out_w["PDUB0"] == pytest.approx(2 * rack_in, rel=1e-12)
    d.fail("PDUB0", 2.0)
    f = d.compute(loads)
    assert set(f.unserved_racks) == {"R0", "R1"}
    assert f.unserved_it_w == pytest.approx(80e3) and f.it_w == pytest.approx(80e3)
    # losing a whole side's transformer keeps every rack served via the other side
    d2 = standard_topology(4, 50e3, racks_per_pdu=2, redundancy="2N", ups_capacity_w=500e3)
    d2.fail("TA0", 0.0)
    f = d2.compute(loads)
    assert f.unserved_racks == () and "TA0" not in f.alive and "UPSA0" not in f.alive


def test_overload_detection_and_headroom():
    d = small_n_plus_1()
    f = d.compute({"R0": 49e3, "R1": 10e3})
    # R0 input 49e3 / eta(0.98) = 49e3 / 0.912 = 53 728 W > 50 kW circuit
    assert "R0" in f.overloaded and "R1" not in f.overloaded
    f = d.compute({"R0": 25e3, "R1": 25e3})
    # rack headroom: 50 000 - 26 041.667 = 23 958.33 W; the PDU allows 100e3 - 52 083.3;
    # each UPS 0 W (at 50 % each they have 26 041.7 W left, x 2 sources = 52 083.3): the rack binds
    assert d.circuit_headroom_w("R0", f) == pytest.approx(50e3 - RACK_IN, rel=1e-12)
    # after a UPS failure the surviving UPS has 0 W headroom: so has every rack
    d.fail("UPS1", 0.0)
    f = d.compute({"R0": 25e3, "R1": 25e3})
    assert d.circuit_headroom_w("R0", f) == pytest.approx(0.0, abs=1e-6)
    assert d.circuit_headroom_w("PDU0", f) == pytest.approx(0.0, abs=1e-6)


def test_topology_validation():
    with pytest.raises(ValueError, match="exactly one"):
        Distribution([Rack("R0", ("X",), 1e3)])
    with pytest.raises(ValueError, match="no such element"):
        Distribution([Utility("m", 1e6), Rack("R0", ("PDU9",), 1e3)])
    with pytest.raises(ValueError, match="capacity_w"):
        Pdu("P", ("m",), -5.0)
    with pytest.raises(ValueError, match="redundancy"):
        standard_topology(2, 1e3, redundancy="N+2")
    with pytest.raises(ValueError, match="rack_it_w"):
        small_n_plus_1().compute({"R0": -1.0})


def test_vectorised_over_time():
    d = small_n_plus_1()
    f = d.compute({"R0": np.array([25e3, 25e3]), "R1": np.array([25e3, 0.0])})
    assert f.meter_w.shape == (2,)
    assert f.meter_w[0] == pytest.approx(expected_meter_w(), rel=1e-9)
    assert f.meter_w[1] < f.meter_w[0]


# ------------------------------------------------------------------------ shedding

WL = [
    ShedWorkload("crit", "critical", 20e3, ("R0",)),
    ShedWorkload("hi", "high", 10e3, ("R0",)),
    ShedWorkload("lo", "low", 10e3, ("R1",)),
    ShedWorkload("pre", "preemptible", 5e3, ("R1",)),
]
ALL = ShedScope("site", {"R0": 1.0, "R1": 1.0}, 24e3)


def test_shedding_lowest_priority_first_and_critical_protected():
    # load 45 kW, 24 kW available: excess 21 kW -> pre (5) -> lo (10) -> hi (10) = 25 >= 21;
    # give-back: re-admitting pre (5 kW) would leave 1 kW over: no
    d = plan_load_shedding(WL, [ALL], t_s=3.0, cause="UPS0 failure")
    assert [x.workload_id for x in d] == ["pre", "lo", "hi"]
    assert all(x.action == "shed" and x.t_s == 3.0 for x in d)
    assert "UPS0 failure" in d[0].reason and "preemptible" in d[0].reason and "critical never shed" in d[0].reason


def test_shedding_gives_back_what_is_not_needed():
    # excess 8 kW: pre (5) then lo (10) covers it with 7 kW to spare; pre (5) goes back
    d = plan_load_shedding(WL, [ShedScope("site", {"R0": 1.0, "R1": 1.0}, 37e3)], 0.0, "grid emergency")
    assert [x.workload_id for x in d] == ["lo"]


def test_shedding_reports_when_critical_load_alone_exceeds_capacity():
    d = plan_load_shedding(WL, [ShedScope("site", {"R0": 1.0, "R1": 1.0}, 15e3)], 0.0, "grid emergency")
    assert "crit" not in [x.workload_id for x in d if x.action == "shed"]
    last = d[-1]
    # everything but crit shed (25 kW); 20 kW critical vs 15 kW: 5 kW still over
    assert last.action == "insufficient" and last.power_w == pytest.approx(5e3)
    log = ShedLog()
    log.extend(d)
    assert log.shed_ids() == {"hi", "lo", "pre"} and len(log.to_rows()) == 4


def test_shedding_respects_scope_membership():
    # a limit on R1 only: only R1's workloads are candidates (lo and pre, 15 kW; limit 8 kW -> excess 7 kW:
    # pre (5) then lo (10); give back pre? 7 - 15 + 5 = -3 <= 0 -> yes): only lo shed
    d = plan_load_shedding(WL, [ShedScope("PDU-R1", {"R1": 1.0}, 8e3)], 0.0, "PDU overload")
    assert [x.workload_id for x in d] == ["lo"]


def test_end_to_end_grid_emergency_limit_at_the_meter():
    d = small_n_plus_1()
    loads = {"R0": 25e3, "R1": 25e3}
    f = d.compute(loads)
    wl = [ShedWorkload("a", "critical", 25e3, ("R0",)), ShedWorkload("b", "low", 15e3, ("R1",)),
          ShedWorkload("c", "preemptible", 10e3, ("R1",))]
    # meter limit 40 kW vs 55.18 kW: IT allowed 50e3 x 40e3 / 55 177.9 = 36 246 W, excess 13 754 W:
    # greedy c (10 kW) then b (15 kW); give-back: c fits again (13 754 - 15 000 < 0) -> shed b only
    scopes = d.shed_scopes(f, loads, meter_limit_w=40e3)
    assert len(scopes) == 1 and scopes[0].available_it_w == pytest.approx(50e3 * 40e3 / expected_meter_w(), rel=1e-9)
    dec = plan_load_shedding(wl, scopes, 7.0, "grid emergency signal")
    assert [x.workload_id for x in dec] == ["b"]
    assert isinstance(dec[0], ShedDecision) and dec[0].scope == "meter" and dec[0].t_s == 7.0
    # after shedding, the remaining 35 kW of IT fits under the meter limit
    assert d.compute({"R0": 25e3, "R1": 10e3}).meter_w < 40e3
